"""``minitransformer info``: versions, backends and devices, for bug reports and GPU set-up.

Every line says what was found or why something cannot be used (a CuPy that cannot reach its
CUDA runtime, a PyTorch that fails to import), so the answer to "why is the GPU not used?" is here.
"""

from __future__ import annotations

import importlib
import os
import platform

import minitransformer as mt

__all__ = ["report"]


def _version(module_name: str) -> str:
    """The module's version, ``"not installed"``, or why it fails to import."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return "not installed"
    except Exception as e:  # a broken install fails with anything
        return f"installed but fails to import ({type(e).__name__}: {e})"
    return str(getattr(module, "__version__", "installed (version unknown)"))


def _cupy() -> str:
    """CuPy's version and the GPU it sees (name, memory), or why it cannot be used."""
    try:
        import cupy
    except ImportError:
        return ("not installed (GPU: pip install 'minitransformer[cuda12]' or '[cuda13]'; "
                "in a clone: pip install -e '.[cuda12]')")
    except Exception as e:
        return f"installed but fails to import ({type(e).__name__}: {e})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count == 0:
            return f"{cupy.__version__}, but no GPU is visible (check CUDA_VISIBLE_DEVICES)"
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        free, total = cupy.cuda.Device(0).mem_info
        runtime = cupy.cuda.runtime.runtimeGetVersion()
    except Exception as e:  # no driver, or a CUDA runtime of the wrong major version
        return (
            f"{cupy.__version__}, unusable: {type(e).__name__}: {e} "
            "(check `nvidia-smi` and that the cupy-cuda1Nx package matches the driver's CUDA major version)"
        )
    gib = 1024**3
    return (
        f"{cupy.__version__}, CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}, {count} GPU(s); "
        f"device 0: {name}, {total / gib:.1f} GiB ({free / gib:.1f} GiB free)"
    )


def _torch() -> str:
    """PyTorch's version and threads, or ``"not installed"``."""
    try:
        import torch
    except ImportError:
        return "not installed (optional: tests and `bench` compare against it where present)"
    except Exception as e:
        return f"installed but fails to import ({type(e).__name__}: {e})"
    cuda = "CUDA available" if torch.cuda.is_available() else "CPU only"
    return f"{torch.__version__}, {cuda}, {torch.get_num_threads()} threads"


def report() -> str:
    """A few lines: versions, the GPU, and which array backends work here.

    Returns
    -------
    str
        One line per item, ``name  value``: versions of the library, Python, NumPy, CuPy (with the GPU it
        sees, or why it cannot be used), PyTorch and matplotlib; the current backend and those available.

    Examples
    --------
    >>> "backends available" in report()
    True
    """
    rows = [
        ("minitransformer", mt.__version__),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()}, {platform.platform()})"),
        ("CPUs", str(os.cpu_count())),
        ("NumPy", _version("numpy")),
        ("array-api-compat", _version("array_api_compat")),
        ("array-api-strict", _version("array_api_strict")),
        ("CuPy", _cupy()),
        ("PyTorch", _torch()),
        ("matplotlib", _version("matplotlib")),
        ("backend now", mt.backend.current().name),
        ("backends available", ", ".join(mt.backend.available())),
    ]
    env = os.environ.get("MINITRANSFORMER_BACKEND")
    if env:
        rows.append(("MINITRANSFORMER_BACKEND", env))
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)
