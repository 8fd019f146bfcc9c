"""``minitransformer bench autograd``: what the engine costs per operation, beside NumPy and PyTorch.

The workload is a chain of small elementwise operations on a tensor of a few elements, where the
arithmetic is nearly free and what is measured is the bookkeeping around it: making a ``Tensor``,
recording the ``Function``, and visiting it again in ``backward()``. The chain cycles through

.. math:: y \\leftarrow y \\cdot 1.0001, \\qquad y \\leftarrow y + 0.0001, \\qquad y \\leftarrow \\tanh(y)

for exactly ``--chain`` operations. Every variant runs the same chain in the same process,
interleaved (one sample of each in turn, the order rotating), so a busy machine slows all of them
alike; the figures to read are the ratios, not the microseconds.

Variants: raw NumPy (the arithmetic alone, no gradients), minitransformer forward only (under
``no_grad``), minitransformer forward + backward, and, where ``import torch`` works, PyTorch eager
forward only and forward + backward (CPU, float32, its default number of threads).
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import minitransformer as mt

__all__ = ["main", "run_autograd", "format_table"]

#: the three steps the chain cycles through, in this order
STEPS = ("mul", "add", "tanh")
#: each timed sample repeats the chain until it lasts about this long (seconds)
SAMPLE_SECONDS = 0.04


# ------------------------------------------------------------------ the chain, once per library
def _numpy_chain(x0: np.ndarray, n_ops: int):
    def run():
        y = x0
        for i in range(n_ops):
            step = i % 3
            if step == 0:
                y = y * 1.0001  # a Python float keeps float32 (NEP 50)
            elif step == 1:
                y = y + 0.0001
            else:
                y = np.tanh(y)
        return y

    return run


def _mt_forward(x: mt.Tensor, n_ops: int) -> mt.Tensor:
    y = x
    for i in range(n_ops):
        step = i % 3
        if step == 0:
            y = y * 1.0001
        elif step == 1:
            y = y + 0.0001
        else:
            y = y.tanh()
    return y


def _mt_chain(x0: np.ndarray, n_ops: int, backward: bool):
    x = mt.tensor(x0, requires_grad=backward)
    seed = mt.ones(*x.shape)  # dL/dy = 1: backward() of a non-scalar, so no extra sum() op is timed

    def run_forward():
        with mt.no_grad():
            return _mt_forward(x, n_ops)

    def run_backward():
        x.grad = None
        y = _mt_forward(x, n_ops)
        y.backward(seed)
        return y

    return run_backward if backward else run_forward


def _torch_forward(torch, x, n_ops: int):
    y = x
    for i in range(n_ops):
        step = i % 3
        if step == 0:
            y = y * 1.0001
        elif step == 1:
            y = y + 0.0001
        else:
            y = torch.tanh(y)
    return y


def _torch_chain(torch, x0: np.ndarray, n_ops: int, backward: bool):
    x = torch.tensor(x0, dtype=torch.float32, requires_grad=backward)
    seed = torch.ones_like(x)

    def run_forward():
        with torch.no_grad():
            return _torch_forward(torch, x, n_ops)

    def run_backward():
        x.grad = None
        y = _torch_forward(torch, x, n_ops)
        y.backward(seed)
        return y

    return run_backward if backward else run_forward


# ------------------------------------------------------------------ timing
def _sync() -> None:
    """Wait for a GPU to finish (a no-op on the CPU), so a sample times the work, not its launch."""
    if mt.backend.current().name == "cupy":
        mt.backend.current().native.cuda.Device().synchronize()


def _time(fn, inner: int) -> float:
    """Seconds for ``inner`` calls of ``fn``, with the garbage collector off (as ``timeit`` does)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync()
        return time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()


def _calibrate(fn) -> int:
    """How many calls make one sample last about ``SAMPLE_SECONDS`` (after warm-up calls, which are not kept)."""
    for _ in range(3):
        fn()
    one = max(_time(fn, 3) / 3, 1e-7)
    return max(1, math.ceil(SAMPLE_SECONDS / one))


def _check_agreement(variants: dict, x0: np.ndarray, n_ops: int, torch) -> None:
    """The variants compute the same thing: same forward values, and (with torch) the same gradient."""
    expected = variants["numpy_forward"]()
    got = variants["mt_forward"]().numpy()
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-6):
        raise RuntimeError(f"bench: minitransformer forward differs from NumPy by {np.abs(got - expected).max()}")
    if torch is not None:
        x = mt.tensor(x0, requires_grad=True)
        _mt_forward(x, n_ops).backward(mt.ones(*x.shape))
        xt = torch.tensor(x0, requires_grad=True)
        y = _torch_forward(torch, xt, n_ops)
        y.backward(torch.ones_like(y))
        if not np.allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-6):
            raise RuntimeError("bench: minitransformer gradient differs from PyTorch's")


def _import_torch():
    """``(torch, None)``, or ``(None, why)`` when it cannot be imported."""
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install raising something else
        return None, f"{type(e).__name__}: {e}"
    return torch, None


def machine(torch=None) -> dict:
    """What the figures were measured on: CPU count, versions, backend."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "minitransformer": mt.__version__,
        "backend": mt.backend.current().name,
    }


def run_autograd(chain: int = 200, size: int = 16, repeat: int = 7, use_torch: bool = True) -> dict:
    """Time the chain in every variant; return the figures as plain data (microseconds per operation).

    Parameters
    ----------
    chain : int
        Number of elementwise operations in the chain (counted exactly: ``mul, add, tanh, mul, ...``).
    size : int
        Elements of the float32 tensor the chain runs on.
    repeat : int
        Timed samples per variant; the median is reported.
    use_torch : bool
        Include PyTorch when it imports.

    Returns
    -------
    dict
        ``{"chain", "size", "repeat", "ops_per_chain", "machine", "torch_missing", "results", "ratios"}``;
        ``results[name]`` holds ``us_per_op`` (the median), ``samples_us_per_op`` and ``calls_per_sample``.
    """
    for name, value in (("chain", chain), ("size", size), ("repeat", repeat)):
        if int(value) < 1:
            raise ValueError(f"bench autograd: --{name} must be at least 1, got {value}")
    torch, why = _import_torch() if use_torch else (None, "not requested")
    x0 = np.random.default_rng(0).uniform(-1.0, 1.0, size).astype(np.float32)

    variants = {
        "numpy_forward": _numpy_chain(x0, chain),
        "mt_forward": _mt_chain(x0, chain, backward=False),
        "mt_forward_backward": _mt_chain(x0, chain, backward=True),
    }
    if torch is not None:
        variants["torch_forward"] = _torch_chain(torch, x0, chain, backward=False)
        variants["torch_forward_backward"] = _torch_chain(torch, x0, chain, backward=True)
    _check_agreement(variants, x0, chain, torch)

    inner = {name: _calibrate(fn) for name, fn in variants.items()}
    samples = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeat):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate, so no variant always goes first
        for name in order:
            seconds = _time(variants[name], inner[name])
            samples[name].append(seconds / inner[name] / chain * 1e6)

    results = {
        name: {
            "us_per_op": statistics.median(s),
            "samples_us_per_op": s,
            "calls_per_sample": inner[name],
        }
        for name, s in samples.items()
    }
    return {
        "benchmark": "autograd",
        "chain": chain,
        "size": size,
        "repeat": repeat,
        "ops_per_chain": chain,
        "steps": list(STEPS),
        "machine": machine(torch),
        "torch_missing": why,
        "results": results,
        "ratios": _ratios(results),
    }


def _ratio(results: dict, name: str, reference: str) -> float:
    """Median over the repetitions of ``name``'s time over ``reference``'s in the same repetition.

    Pairing samples taken moments apart cancels most of a shared machine's drift, which the
    ratio of two separate medians would not.
    """
    pairs = zip(results[name]["samples_us_per_op"], results[reference]["samples_us_per_op"])
    return statistics.median(a / b for a, b in pairs)


def _ratios(results: dict) -> dict:
    """Each variant against NumPy's forward, and minitransformer against PyTorch doing the same."""
    ratios = {f"{name}_vs_numpy": _ratio(results, name, "numpy_forward") for name in results if name != "numpy_forward"}
    for kind in ("forward", "forward_backward"):
        if f"torch_{kind}" in results:
            ratios[f"mt_{kind}_vs_torch"] = _ratio(results, f"mt_{kind}", f"torch_{kind}")
    return ratios


LABELS = {
    "numpy_forward": "NumPy, forward (no gradients)",
    "mt_forward": "minitransformer, forward (no_grad)",
    "torch_forward": "PyTorch eager, forward (no_grad)",
    "mt_forward_backward": "minitransformer, forward + backward",
    "torch_forward_backward": "PyTorch eager, forward + backward",
}


def format_table(report: dict) -> str:
    """The figures of :func:`run_autograd` as a text table, with the machine they came from."""
    m, results = report["machine"], report["results"]
    torch_text = f"torch {m['torch']} ({m['torch_threads']} threads)" if m["torch"] else "torch not found"
    lines = [
        f"autograd overhead: a chain of {report['ops_per_chain']} elementwise ops "
        f"({', '.join(report['steps'])}, repeated) on {report['size']} float32 elements",
        f"median of {report['repeat']} interleaved samples; backend {m['backend']}",
        f"machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}, numpy {m['numpy']}, {torch_text}",
        "",
        f"{'variant':<38}{'us/op':>9}{'x NumPy':>10}{'x PyTorch':>11}",
        "-" * 68,
    ]
    ratios = report["ratios"]
    for name in LABELS:
        if name not in results:
            continue
        vs_numpy = ratios.get(f"{name}_vs_numpy", 1.0)
        vs_torch = ratios.get(f"{name}_vs_torch", 1.0 if name.startswith("torch_") else None)
        vs_torch = "" if vs_torch is None else f"{vs_torch:.2f}"
        lines.append(f"{LABELS[name]:<38}{results[name]['us_per_op']:>9.2f}{vs_numpy:>10.2f}{vs_torch:>11}")
    lines.append("")
    if report["torch_missing"]:
        lines.append(f"PyTorch: not found ({report['torch_missing']}); install torch to compare against it.")
    lines.append(
        "Ratios are medians of per-repetition ratios; x PyTorch compares like with like (forward with forward,\n"
        "forward + backward with forward + backward).\n"
        "The machine may be shared and noisy: read the ratios, not the microseconds."
    )
    return "\n".join(lines)


def main(args) -> int:
    """Entry point of ``minitransformer bench``: run, print the table, write JSON if asked."""
    if args.what != "autograd":
        print(f"bench: unknown benchmark {args.what!r}; available: autograd", file=sys.stderr)
        return 2
    try:
        report = run_autograd(chain=args.chain, size=args.size, repeat=args.repeat)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(format_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"figures written to {args.json}")
    return 0
