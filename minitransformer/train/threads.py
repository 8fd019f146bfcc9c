"""How many threads NumPy's BLAS (the library under ``matmul``) uses, changed while the program runs.

A small Transformer multiplies many small matrices. OpenBLAS splits each product over all cores,
and for matrices this small the threads spend more time waiting for each other than computing;
on a busy machine much more. Measured on a 2-core machine running other jobs: a training step of
the reverse task's model (d_model 64, 2+2 layers, batch 64) took 368 ms with 2 BLAS threads and
109 ms with 1.

The usual switch, ``OPENBLAS_NUM_THREADS=1``, works only if set before NumPy is imported. This
calls the running OpenBLAS's own ``set_num_threads`` instead (what ``threadpoolctl`` does), found
among the shared libraries the process has loaded (Linux) or where NumPy's wheel keeps it (Windows,
macOS). Where there is no OpenBLAS (MKL, Accelerate) nothing changes and the functions say so.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from .._arguments import require_int

__all__ = ["set_blas_threads", "get_blas_threads"]

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
            "openblas_get_num_threads")


def _openblas():
    """The loaded OpenBLAS library (ctypes handle), or None."""
    import numpy  # (NumPy loads its OpenBLAS; find that one)

    for path in [*_mapped(), *_bundled(Path(numpy.__file__).parent)]:
        try:
            return ctypes.CDLL(path)  # the library already loaded, by its path: the same one, not a second copy
        except OSError:
            continue
    return None


def _mapped() -> list[str]:
    """The OpenBLAS libraries the process has loaded, from ``/proc/self/maps``; none where there is none (not Linux)."""
    try:
        with open("/proc/self/maps", "rb") as f:  # bytes: a path is the system's bytes, whatever the locale says
            found = {line.split()[-1] for line in f if b"openblas" in line.lower() and b".so" in line}
    except OSError:
        return []
    return [path for path in sorted(map(os.fsdecode, found)) if os.path.exists(path)]


def _bundled(numpy_folder: Path) -> list[str]:
    """The OpenBLAS a NumPy wheel carries, which it loads from there: ``numpy.libs`` beside the package (Windows'
    ``libscipy_openblas*.dll``), ``numpy/.dylibs`` (macOS's ``libscipy_openblas*.dylib``)."""
    folders = (numpy_folder.parent / "numpy.libs", numpy_folder / ".dylibs")
    return sorted(str(p) for folder in folders for p in folder.glob("*openblas*") if p.suffix in (".dll", ".dylib"))


def get_blas_threads() -> int | None:
    """Threads the loaded OpenBLAS uses now, or None where it cannot be found.

    Returns
    -------
    int or None
        The number of threads, or None without an OpenBLAS (MKL, Accelerate, another OS).

    Examples
    --------
    >>> n = get_blas_threads()
    >>> n is None or n >= 1
    True
    """
    lib = _openblas()
    for name in _GETTERS if lib is not None else ():
        if hasattr(lib, name):
            return int(getattr(lib, name)())
    return None


def set_blas_threads(n: int) -> bool:
    """Make NumPy's OpenBLAS use ``n`` threads from now on; returns whether it could.

    Parameters
    ----------
    n : int
        Threads, >= 1 (1 is fastest for a small Transformer).

    Returns
    -------
    bool
        True if the loaded OpenBLAS took the setting; False where there is none (nothing changes).

    Examples
    --------
    >>> before = get_blas_threads()
    >>> if set_blas_threads(1):
    ...     assert get_blas_threads() == 1
    ...     _ = set_blas_threads(before)
    """
    n = require_int("set_blas_threads", "n", n, low=1)
    lib = _openblas()
    for name in _SETTERS if lib is not None else ():
        if hasattr(lib, name):
            getattr(lib, name)(ctypes.c_int(n))
            return True
    return False
