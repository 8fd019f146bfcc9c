"""``minitransformer bench``: what the engine costs, measured beside NumPy and PyTorch in the same run.

``bench autograd``: the cost per operation. The workload is a chain of small elementwise operations on
a tensor of a few elements, where the arithmetic is nearly free and what is measured is the
bookkeeping around it: making a ``Tensor``, recording the ``Function``, and visiting it again in
``backward()``. The chain cycles through

.. math:: y \\leftarrow y \\cdot 1.0001, \\qquad y \\leftarrow y + 0.0001, \\qquad y \\leftarrow \\tanh(y)

for exactly ``--chain`` operations. Variants: raw NumPy (the arithmetic alone, no gradients),
minitransformer forward only (under ``no_grad``), minitransformer forward + backward, and, where
``import torch`` works, PyTorch eager forward only and forward + backward.

``bench small`` / ``bench seed``: a whole training step (forward, loss, backward, one Adam step) and a
forward-only step of two models, ours and the same architecture written in plain PyTorch eager
operations here (:func:`build_torch`), float32 on the CPU, same shapes, same data, starting from
our weights copied (their losses are checked equal first). SMALL is a decoder-only language model
(vocab 64, d_model 128, 4 heads, 2 layers, d_ff 512, seq 64, batch 32); SEED the document's
section 5 classifier (vocab 10000, d_model 512, 8 heads, 1 layer, d_ff 2048, seq 100, batch 32).
Reported: median milliseconds, the ratio to PyTorch, the peak memory of a training step, and the
**BLAS floor**: the step's matrix-product FLOPs counted from the formulas (:func:`matmul_flops`)
over this machine's float32 matmul rate measured in the same run (:func:`matmul_rate`), with each
step's multiple of it. ``bench all`` runs the three; ``--sweep`` times training steps against
sequence length and d_model (:func:`run_sweep`); ``--threads N`` runs NumPy's BLAS and PyTorch on
N threads each (on a shared machine, ``--threads 1`` gives steadier figures).

Every variant runs in the same process, interleaved (one sample of each in turn, the order
rotating), so a busy machine slows all of them alike; the figures to read are the ratios, not the
milliseconds.
"""

from __future__ import annotations

import errno
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import minitransformer as mt
from minitransformer.train.threads import get_blas_threads, set_blas_threads

__all__ = [
    "main", "run_autograd", "format_table", "run_model", "format_model_table", "run_sweep", "format_sweep_table",
    "matmul_flops", "matmul_rate", "build_ours", "build_torch", "make_batch", "peak_memory_ours",
    "peak_memory_torch", "set_threads", "torch_device", "tf32", "MODELS", "count_operations",
    "CountingArrays",
]

#: the three steps the chain cycles through, in this order
STEPS = ("mul", "add", "tanh")
#: each timed sample repeats the chain until it lasts about this long (seconds)
SAMPLE_SECONDS = 0.04


# ------------------------------------------------------------------ the chain, once per library
def _chain(y, n_ops: int, tanh):
    """The chain itself, the same lines for every library: mul, add, tanh, repeated ``n_ops`` times.

    Python floats keep float32 in all three (NEP 50 in NumPy); ``tanh`` is the library's own.
    """
    for i in range(n_ops):
        step = i % 3
        if step == 0:
            y = y * 1.0001
        elif step == 1:
            y = y + 0.0001
        else:
            y = tanh(y)
    return y


def _numpy_chain(x0: np.ndarray, n_ops: int):
    def run():
        return _chain(x0, n_ops, np.tanh)

    return run


def _mt_forward(x: mt.Tensor, n_ops: int) -> mt.Tensor:
    return _chain(x, n_ops, mt.Tensor.tanh)


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
    return _chain(x, n_ops, torch.tanh)


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
    """Wait for a GPU to finish (a no-op on the CPU), so a sample times the work, not its launch.

    Both libraries' queues: CuPy's, and PyTorch's when it has started on the GPU.
    """
    if mt.backend.current().name == "cupy":
        mt.backend.current().native.cuda.Device().synchronize()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.synchronize()


def torch_device(torch) -> str:
    """Where the PyTorch reference runs: ``"cuda"`` when ours runs on the GPU (CuPy), else ``"cpu"``.

    Examples
    --------
    >>> class NoTorch:  # what matters here: ours runs on NumPy, so the reference runs on the CPU
    ...     pass
    >>> torch_device(NoTorch)
    'cpu'
    """
    return "cuda" if mt.backend.current().name == "cupy" and torch.cuda.is_available() else "cpu"


def tf32() -> bool:
    """Whether float32 matrix products may run in TF32 on the GPU: ``CUPY_TF32=1`` in the environment.

    CuPy reads the variable when it starts, and so do the kernels' products
    (:func:`~minitransformer.backend.tf32_requested`); PyTorch's reference on the GPU follows it
    (:func:`build_torch` sets its ``allow_tf32``), so a ratio always compares the same arithmetic. Off by
    default: full float32.

    >>> import os
    >>> tf32() == (os.environ.get("CUPY_TF32", "0") not in ("", "0"))
    True
    """
    return mt.backend.tf32_requested()


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


def set_threads(n: int | None, torch=None) -> None:
    """Run NumPy's BLAS (where it is OpenBLAS) and PyTorch on ``n`` threads each (``None``: leave both as they are).

    Parameters
    ----------
    n : int or None
        Threads, at least 1 (``--threads``).
    torch : module, optional
        The imported ``torch``, when PyTorch's threads are to be set too.

    Raises
    ------
    ValueError
        When ``n < 1``.

    Examples
    --------
    >>> from minitransformer.train.threads import get_blas_threads, set_blas_threads
    >>> before = get_blas_threads()       # None where NumPy's BLAS is not OpenBLAS
    >>> set_threads(1)
    >>> get_blas_threads() in (1, None)
    True
    >>> if before is not None:
    ...     _ = set_blas_threads(before)
    >>> set_threads(0)
    Traceback (most recent call last):
        ...
    ValueError: bench: --threads must be at least 1, got 0
    """
    if n is None:
        return
    if int(n) < 1:
        raise ValueError(f"bench: --threads must be at least 1, got {n}")
    set_blas_threads(int(n))
    if torch is not None:
        torch.set_num_threads(int(n))


def machine(torch=None) -> dict:
    """What the figures were measured on: CPU count, versions, threads, backend."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas_threads": get_blas_threads(),
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "minitransformer": mt.__version__,
        "backend": mt.backend.current().name,
        "device": _device_name(torch),
        "tf32": tf32() if mt.backend.current().name == "cupy" else None,
        "kernels": mt.backend.current().kernels is not None,  # minitransformer.kernels: CUDA kernels, cuBLAS products
    }


def _device_name(torch) -> str:
    """The GPU's name when ours runs on CuPy, else ``"cpu"``."""
    be = mt.backend.current()
    if be.name != "cupy":
        return "cpu"
    name = be.native.cuda.runtime.getDeviceProperties(be.native.cuda.Device().id)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


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

    Examples
    --------
    A chain of 3 operations on 2 elements, one sample per variant, without PyTorch:

    >>> report = run_autograd(chain=3, size=2, repeat=1, use_torch=False)
    >>> sorted(report["results"]), report["torch_missing"]
    (['mt_forward', 'mt_forward_backward', 'numpy_forward'], 'not requested')
    >>> all(r["us_per_op"] > 0 for r in report["results"].values())
    True
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
    """The figures of :func:`run_autograd` as a text table, with the machine they came from.

    One row per variant: microseconds per operation, and the ratios to NumPy and to PyTorch.

    Examples
    --------
    >>> text = format_table(run_autograd(chain=3, size=2, repeat=1, use_torch=False))
    >>> print(text.splitlines()[0])
    autograd overhead: a chain of 3 elementwise ops (mul, add, tanh, repeated) on 2 float32 elements
    >>> sum(label in text for label in LABELS.values())   # no PyTorch rows
    3
    """
    m, results = report["machine"], report["results"]
    torch_text = f"torch {m['torch']} ({m['torch_threads']} threads)" if m["torch"] else "torch not found"
    lines = [
        f"autograd overhead: a chain of {report['ops_per_chain']} elementwise ops "
        f"({', '.join(report['steps'])}, repeated) on {report['size']} float32 elements",
        f"median of {report['repeat']} interleaved samples; backend {m['backend']}",
        f"machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}, numpy {m['numpy']} "
        f"(BLAS threads {m.get('numpy_blas_threads')}), {torch_text}",
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


# ====================================================================== whole training steps, beside PyTorch
#: the two workloads of the comparison, a small language model and the document's section 5 classifier
MODELS = {
    "small": {"kind": "lm", "vocab": 64, "d_model": 128, "heads": 4, "num_layers": 2, "d_ff": 512, "seq": 64,
              "batch": 32},
    "seed": {"kind": "classifier", "vocab": 10000, "d_model": 512, "heads": 8, "num_layers": 1, "d_ff": 2048,
             "seq": 100, "batch": 32},
    # for a GPU: one step is about 6 TFLOP (minutes on a laptop's CPU, so `bench large` wants CuPy)
    "large": {"kind": "lm", "vocab": 1000, "d_model": 1024, "heads": 16, "num_layers": 4, "d_ff": 4096,
              "seq": 1024, "batch": 16},
}
DESCRIPTIONS = {
    "lm": "decoder-only LM (pre-LN, causal), cross-entropy",
    "classifier": "TransformerClassifier (post-LN, padding mask, mean pooling), binary cross-entropy",
}
#: the Adam learning rate of the timed steps (any value would do; both libraries take the same)
LEARNING_RATE = 1e-3
#: side of the square float32 product that measures the machine's matmul rate
RATE_SIZE = 1024


def matmul_flops(config: dict) -> dict:
    r"""Floating-point operations of the matrix products of one step of ``config``, counted from the formulas.

    A product :math:`(m \times k)(k \times n)` costs :math:`2mnk` (a multiply and an add per term).
    With :math:`N = \text{batch} \cdot \text{seq}` tokens, :math:`d = d_{model}`, :math:`T = \text{seq}`,
    each layer costs, forward:

    .. math::
        \underbrace{4 \cdot 2 N d^2}_{W^Q, W^K, W^V, W^O}
        + \underbrace{2 \cdot 2 N T d}_{Q K^\top \text{ and weights} \cdot V \text{, all heads}}
        + \underbrace{2 \cdot 2 N d\, d_{ff}}_{W_1, W_2}

    plus the output layer: :math:`2 N d V` for the language model's logits, :math:`2\,\text{batch}\, d` for the
    classifier's ``Dense(1)``. The backward pass of :math:`Y = AB` computes :math:`\bar A = \bar Y B^\top` and
    :math:`\bar B = A^\top \bar Y`, two products of the same size: twice the forward. Elementwise work
    (softmax, layer norm, Adam) is not counted: this is the floor that the BLAS alone sets.

    Returns
    -------
    dict
        ``{"forward", "backward", "step"}`` (step = forward + backward = 3 x forward).

    Examples
    --------
    >>> matmul_flops({"kind": "lm", "vocab": 2, "d_model": 1, "heads": 1, "num_layers": 1, "d_ff": 1, "seq": 1,
    ...               "batch": 1})["forward"]   # 8 + 4 + 4 + 4
    20
    """
    N, T, d, d_ff = config["batch"] * config["seq"], config["seq"], config["d_model"], config["d_ff"]
    per_layer = 4 * 2 * N * d * d + 2 * 2 * N * T * d + 2 * 2 * N * d * d_ff
    output = 2 * N * d * config["vocab"] if config["kind"] == "lm" else 2 * config["batch"] * d
    forward = config["num_layers"] * per_layer + output
    return {"forward": forward, "backward": 2 * forward, "step": 3 * forward}


def _matmul_probe(size: int):
    """One float32 product ``(n, n) @ (n, n)`` of the current backend, as a function to time (2 n^3 FLOPs)."""
    be = mt.backend.current()
    a = be.normal((size, size), dtype="float32")
    b = be.normal((size, size), dtype="float32")
    return lambda: be.xp.matmul(a, b)


def matmul_rate(size: int | None = None, repeat: int = 5) -> float:
    """The float32 matmul rate of this machine now, in FLOP/s: the median of ``repeat`` products ``(n, n) @ (n, n)``.

    (:func:`run_model` times the same product interleaved with the steps, so the floor and the steps
    see the same machine.)

    Parameters
    ----------
    size : int, optional
        ``n``, the side of the square float32 matrices (``RATE_SIZE``, 1024, by default).
    repeat : int
        Timed products; the median is kept.

    Returns
    -------
    float
        :math:`2 n^3` over the median seconds of one product.

    Examples
    --------
    >>> matmul_rate(size=64, repeat=3) > 1e6   # any machine does 2 * 64**3 FLOPs in less than half a second
    True
    """
    size = RATE_SIZE if size is None else size
    probe = _matmul_probe(size)
    probe()  # warm-up: threads started, pages touched
    _sync()
    return 2 * size**3 / statistics.median(_time(probe, 1) for _ in range(repeat))


# ------------------------------------------------------------------ the data of one batch
def make_batch(config: dict, seed: int = 0) -> dict:
    """Token ids and targets of one batch, as NumPy arrays (both libraries get the same numbers).

    The language model gets ``ids`` and next-token ``targets`` ``(batch, seq)``; the classifier gets
    ``ids`` ``(batch, seq)`` whose texts have random lengths from seq/2 to seq, padded with id 0
    (so the padding mask does work), and labels 0 or 1 ``(batch,)``.

    Parameters
    ----------
    config : dict
        Sizes as in :data:`MODELS` (``kind``, ``vocab``, ``seq``, ``batch`` are used).
    seed : int
        Seeds a private NumPy generator.

    Returns
    -------
    dict
        ``{"ids": int64 (batch, seq), "targets": int64 (batch, seq) or float32 (batch,)}``.

    Examples
    --------
    >>> b = make_batch({"kind": "classifier", "vocab": 30, "seq": 6, "batch": 4})
    >>> b["ids"].shape, b["targets"].shape, b["targets"].dtype
    ((4, 6), (4,), dtype('float32'))
    >>> bool((b["ids"] == 0).any()), bool((b["ids"][:, :3] != 0).all())   # padding, never in the first half
    (True, True)
    """
    rng = np.random.default_rng(seed)
    B, T, V = config["batch"], config["seq"], config["vocab"]
    if config["kind"] == "lm":
        return {"ids": rng.integers(0, V, (B, T)), "targets": rng.integers(0, V, (B, T))}
    ids = rng.integers(1, V, (B, T))
    lengths = rng.integers(max(1, T // 2), T + 1, B)
    ids[np.arange(T)[None, :] >= lengths[:, None]] = 0  # padding after each text
    return {"ids": ids, "targets": rng.integers(0, 2, B).astype(np.float32)}


def _steps(loss, optimizer, no_grad) -> dict:
    """``{"train_step", "forward_step", "loss", "optimizer"}`` of a model's ``loss()``, in either library.

    ``train_step()`` runs forward, loss, backward and one optimizer step and returns the loss;
    ``forward_step()`` runs forward and loss under the library's ``no_grad``.
    """

    def train_step():
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
        return value

    def forward_step():
        with no_grad():
            return loss()

    return {"train_step": train_step, "forward_step": forward_step, "loss": loss, "optimizer": optimizer}


# ------------------------------------------------------------------ ours
def build_ours(config: dict, batch: dict, seed: int = 0) -> dict:
    """The model of ``config`` in minitransformer (dropout 0, so both libraries compute the same numbers).

    Returns ``{"model", "train_step", "forward_step", "loss", "optimizer"}``: ``train_step()`` runs forward,
    loss, backward and one Adam step and returns the loss; ``forward_step()`` runs forward and loss under
    ``no_grad``; ``loss()`` is the forward pass and loss, ``optimizer`` the Adam that steps.

    The language model maps ``ids`` ``(batch, seq)`` to logits ``(batch, seq, vocab)``, scored by
    cross-entropy against ``targets`` ``(batch, seq)``; the classifier maps them to one logit per
    text ``(batch,)``, scored by binary cross-entropy.

    Examples
    --------
    >>> tiny = {"kind": "lm", "vocab": 11, "d_model": 8, "heads": 2, "num_layers": 1, "d_ff": 16, "seq": 5,
    ...         "batch": 2}
    >>> ours = build_ours(tiny, make_batch(tiny))
    >>> losses = [ours["train_step"]().item() for _ in range(3)]   # the same batch: the loss falls
    >>> losses[0] > losses[1] > losses[2]
    True
    """
    from . import functional as F
    from . import nn, optim

    mt.manual_seed(seed)
    c = config
    if c["kind"] == "lm":
        model = nn.DecoderOnlyLM(c["vocab"], c["d_model"], c["heads"], c["d_ff"], c["num_layers"], max_len=c["seq"],
                                 dropout=0.0)
    else:
        model = nn.TransformerClassifier(c["vocab"], c["d_model"], c["heads"], c["d_ff"], c["num_layers"],
                                         max_len=c["seq"], dropout=0.0)
    ids, targets = mt.tensor(batch["ids"]), mt.tensor(batch["targets"])
    optimizer = optim.Adam(model.parameters(), lr=LEARNING_RATE)

    def loss():
        if c["kind"] == "lm":
            return F.cross_entropy(model(ids), targets)  # (B, T, V) against (B, T)
        return F.binary_cross_entropy_with_logits(model(ids), targets)  # (B,) against (B,)

    return {"model": model, **_steps(loss, optimizer, mt.no_grad)}


# ------------------------------------------------------------------ the same architecture in plain PyTorch
def _torch_layer_norm(torch, P, name, x):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], P[name + ".gamma"], P[name + ".beta"], 1e-5)


def _torch_linear(P, name, x):
    return x @ P[name + ".weight"] + P[name + ".bias"]  # our W is (d_in, d_out): x W + b


def _torch_attention(torch, P, name, x, allowed, heads):
    """MultiHead(x, x, x) in eager ops: project, split heads, softmax(Q K^T / sqrt(d_k)) V, concat, W_O."""
    B, T, d = x.shape
    d_k = d // heads
    Q, K, V = (_torch_linear(P, f"{name}.{w}", x).view(B, T, heads, d_k).transpose(1, 2) for w in ("W_Q", "W_K", "W_V"))
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_k)  # (B, h, T, T)
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    heads_out = torch.softmax(scores, dim=-1) @ V  # (B, h, T, d_k)
    return _torch_linear(P, f"{name}.W_O", heads_out.transpose(1, 2).reshape(B, T, d))


def _torch_ffn(torch, P, name, x):
    return _torch_linear(P, f"{name}.W_2", torch.relu(_torch_linear(P, f"{name}.W_1", x)))


def _torch_loss(torch, P, PE, config, ids, targets):
    """The loss of ``config``'s model, written with PyTorch eager operations on the parameters ``P`` (by our names)."""
    F = torch.nn.functional
    h, d = config["heads"], config["d_model"]
    x = P["embed.weight"][ids] * math.sqrt(d) + PE  # (B, T, d)
    if config["kind"] == "lm":
        T = ids.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()
        for i in range(config["num_layers"]):  # pre-LN
            p = f"decoder.layers.{i}"
            n = _torch_layer_norm(torch, P, p + ".norm1", x)
            x = x + _torch_attention(torch, P, p + ".self_attn", n, causal, h)
            x = x + _torch_ffn(torch, P, p + ".ffn", _torch_layer_norm(torch, P, p + ".norm3", x))
        logits = _torch_linear(P, "output", _torch_layer_norm(torch, P, "decoder.norm", x))  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    real = ids != 0  # (B, T)
    for i in range(config["num_layers"]):  # post-LN
        p = f"encoder.layers.{i}"
        x = _torch_layer_norm(torch, P, p + ".norm1", x + _torch_attention(torch, P, p + ".self_attn", x,
                                                                           real[:, None, None, :], h))
        x = _torch_layer_norm(torch, P, p + ".norm2", x + _torch_ffn(torch, P, p + ".ffn", x))
    weight = real[..., None].to(x.dtype)  # (B, T, 1)
    pooled = (x * weight).sum(1) / weight.sum(1).clamp(min=1.0)  # (B, d)
    return F.binary_cross_entropy_with_logits(_torch_linear(P, "head", pooled).reshape(-1), targets)


def build_torch(torch, config: dict, batch: dict, model, device: str | None = None,
                foreach: bool | None = None) -> dict:
    """The same model in plain PyTorch eager operations (float32), starting from ``model``'s weights.

    On ``device``: by default :func:`torch_device`, the GPU when ours runs on CuPy, else the CPU.
    ``foreach`` goes to ``torch.optim.Adam`` (its default: the multi-tensor path on a GPU, a loop on the CPU).

    Returns ``{"train_step", "forward_step", "loss", "optimizer"}`` as :func:`build_ours`, with ``torch.optim.Adam``.

    Examples
    --------
    Needs PyTorch (skipped here: importing it takes seconds; ``tests/test_bench.py`` runs it):

    >>> tiny = {"kind": "lm", "vocab": 11, "d_model": 8, "heads": 2, "num_layers": 1, "d_ff": 16, "seq": 5,
    ...         "batch": 2}
    >>> batch = make_batch(tiny)
    >>> ours = build_ours(tiny, batch)
    >>> import torch  # doctest: +SKIP
    >>> theirs = build_torch(torch, tiny, batch, ours["model"])  # doctest: +SKIP
    >>> math.isclose(ours["train_step"]().item(), theirs["train_step"]().item(), rel_tol=1e-3)  # doctest: +SKIP
    True
    """
    device = device or torch_device(torch)
    if device == "cuda":  # TF32 in both libraries or in neither (see tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32()
    P = {name: torch.tensor(p.numpy(), dtype=torch.float32, device=device, requires_grad=True)
         for name, p in model.named_parameters()}
    PE = torch.tensor(model.positional.PE.numpy()[: config["seq"]], dtype=torch.float32, device=device)
    ids = torch.tensor(batch["ids"], dtype=torch.int64, device=device)
    targets = torch.tensor(batch["targets"], device=device)
    optimizer = torch.optim.Adam(list(P.values()), lr=LEARNING_RATE, foreach=foreach)

    def loss():
        return _torch_loss(torch, P, PE, config, ids, targets)

    return _steps(loss, optimizer, torch.no_grad)


# ------------------------------------------------------------------ arrays computed per step
#: the miniature of a configuration whose operations are counted (the count does not depend on the sizes)
MINIATURE = {"vocab": 50, "d_ff": 8, "seq": 6, "batch": 2}


def _phases(step: dict, count) -> dict:
    """``count()`` before and after each phase of one training step: forward (with the loss), backward, optimizer."""
    step["optimizer"].zero_grad()
    start = count()
    value = step["loss"]()
    after_forward = count()
    value.backward()
    after_backward = count()
    step["optimizer"].step()
    return {"forward": after_forward - start, "backward": after_backward - after_forward,
            "optimizer": count() - after_backward}


class CountingArrays:
    """Count the arrays array-api-strict computes inside the ``with`` block (``.made``); views are not counted.

    Every result of an array-api-strict function or operator is made by ``Array._new``, which this
    watches. A computed array owns its memory; a view (reshape, slice, transpose) does not, and a
    Python number promoted to a 0-d array is no work on a GPU (CuPy hands it to the kernel).

    Examples
    --------
    >>> import array_api_strict as xs
    >>> a, b = xs.ones((2, 3)), xs.ones((2, 3))
    >>> with CountingArrays() as counter:
    ...     c = a * b + 1.0                   # two computed arrays
    ...     d = xs.reshape(c, (3, 2))         # a view
    >>> counter.made
    2
    """

    def __init__(self):
        import array_api_strict

        self.Array = type(array_api_strict.asarray(0.0))  # the class is not exported by name
        self.new = self.Array.__dict__.get("_new")
        if not isinstance(self.new, classmethod):
            raise RuntimeError(f"array-api-strict {array_api_strict.__version__} makes its arrays differently; "
                               f"cannot count them")
        self.made = 0

    def __enter__(self):
        new = self.new.__func__

        def counting(cls, *args, **kwargs):
            out = new(cls, *args, **kwargs)
            if out._array.flags.owndata and sys._getframe(1).f_code.co_name != "_promote_scalar":
                self.made += 1
            return out

        self.Array._new = classmethod(counting)
        return self

    def __exit__(self, *exc):
        self.Array._new = self.new


def _count_ours(config: dict, batch: dict) -> dict | str:
    """Arrays computed by one training step of ours, counted on array-api-strict (or why they cannot be)."""
    try:
        counter = CountingArrays()
    except ImportError:
        return "array-api-strict is not installed"
    except RuntimeError as error:
        return str(error)
    with mt.backend.use("array_api_strict") as be:
        previous, be.check_values = be.check_values, False  # as on CuPy: token ids checked on the device
        try:
            ours = build_ours(config, batch)
            ours["train_step"]()  # the first step creates Adam's moments: count the second, as every later one
            with counter:
                return _phases(ours, lambda: counter.made)
        finally:
            be.check_values = previous


def _count_torch(torch, config: dict, batch: dict, model) -> dict:
    """Operators that compute a tensor in one PyTorch training step (views and ``.item()`` left out)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    skip = {torch.ops.aten._local_scalar_dense}  # .item(): a copy to the host, not a computation

    class Counting(TorchDispatchMode):
        made = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view and func.overloadpacket not in skip:
                Counting.made += 1
            return func(*args, **(kwargs or {}))

    theirs = build_torch(torch, config, batch, model, device="cpu", foreach=True)  # foreach: as on a GPU
    theirs["train_step"]()
    with Counting():
        return _phases(theirs, lambda: Counting.made)


def count_operations(config: dict, torch=None) -> dict:
    """Arrays computed by one training step, phase by phase, ours beside PyTorch's: about one GPU kernel each.

    On a GPU every computed array is at least one kernel launch, and when the arrays are small the launches,
    not the arithmetic, set the pace; so this count predicts how a step scales there. Views (reshape,
    slice, transpose) are not counted. The count does not depend on the sizes, so it is taken on a
    miniature of ``config`` (``MINIATURE``, ``d_model`` = 2 per head), the same layers and heads:

    - ours on the array-api-strict backend, whose Python-level arrays can be watched, without the
      checks of token ids' values (off on CuPy, where they would make the host wait);
    - PyTorch's by a ``TorchDispatchMode`` counting ATen operators, with the multi-tensor
      (``foreach``) Adam it uses on a GPU.

    Parameters
    ----------
    config : dict
        Sizes as in :data:`MODELS`.
    torch : module, optional
        PyTorch, to count its step too.

    Returns
    -------
    dict
        ``{"ours": {"forward", "backward", "optimizer", "step"}, "torch": {...}}``; a side that could not be
        counted holds the reason as a string instead.

    Examples
    --------
    >>> counts = count_operations(MODELS["seed"])
    >>> counts["ours"]["optimizer"] < 30      # Adam on all 19 parameters at once (one update, laid end to end)
    True
    """
    mini = {**config, **MINIATURE, "d_model": 2 * config["heads"]}
    batch = make_batch(mini)
    ours = _count_ours(mini, batch)
    theirs = "not requested"
    if torch is not None:
        with mt.backend.use("numpy"):
            model = build_ours(mini, batch)["model"]
        theirs = _count_torch(torch, mini, batch, model)
    for side in (ours, theirs):
        if isinstance(side, dict):
            side["step"] = side["forward"] + side["backward"] + side["optimizer"]
    return {"ours": ours, "torch": theirs}


# ------------------------------------------------------------------ peak memory
def peak_memory_ours(step) -> int:
    """Bytes allocated by ``step()`` above what was live when it started, at their peak (``tracemalloc``).

    NumPy reports its array allocations to ``tracemalloc``. One step runs first with tracing on, so the arrays
    that persist between steps (the new parameters, Adam's moments, the gradients) were traced when
    allocated and count as freed when the next step frees them.

    Examples
    --------
    >>> def step():
    ...     a = np.ones(1_000_000, dtype=np.float32)   # 4,000,000 bytes, freed before the step returns
    ...     return float(a[0])
    >>> 4_000_000 <= peak_memory_ours(step) < 4_100_000
    True
    """
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        step()
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        step()
        return max(0, tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()


def peak_memory_torch(torch, step) -> tuple[int, str]:
    """Bytes PyTorch's CPU allocator held above the start of ``step()``, at their peak, and how it was measured.

    PyTorch keeps no CPU allocator statistics, but its profiler records every allocation and free against
    the operation that made it: the running sum of those, operation by operation in time order, peaks at
    the answer (to within one operation's temporaries, which are freed before the operation ends).

    Examples
    --------
    Needs PyTorch (skipped here: importing it takes seconds; ``tests/test_bench.py`` runs it):

    >>> import torch  # doctest: +SKIP
    >>> def step():
    ...     a = torch.ones(1_000_000) * 2.0   # two float32 tensors of 4,000,000 bytes, alive together
    ...     return float(a[0])
    >>> peak, method = peak_memory_torch(torch, step)  # doctest: +SKIP
    >>> 8_000_000 <= peak < 8_100_000  # doctest: +SKIP
    True
    """
    from torch.profiler import ProfilerActivity, profile

    step()
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    live = peak = 0
    for event in events:
        live += event.self_cpu_memory_usage  # allocated minus freed by this event itself, not its children
        peak = max(peak, live)
    return peak, "torch.profiler (CPU allocator events, per operation)"


# ------------------------------------------------------------------ timing whole steps
def _interleaved(variants: dict, repeat: int) -> dict:
    """Seconds per call of each variant: ``repeat`` samples each, one of every variant in turn, the order rotating.

    One untimed call of each first (it warms up, and tells how many calls make a sample last ``SAMPLE_SECONDS``).
    """
    inner = {}
    for name, fn in variants.items():
        one = max(_time(fn, 1), 1e-7)
        inner[name] = max(1, math.ceil(SAMPLE_SECONDS / one))
    samples = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeat):
        for name in names[r % len(names):] + names[: r % len(names)]:
            samples[name].append(_time(variants[name], inner[name]) / inner[name])
    return samples


def _paired_ratio(a: list, b: list) -> float:
    """Median over the repetitions of a / b, each pair measured moments apart (see :func:`_ratio`)."""
    return statistics.median(x / y for x, y in zip(a, b))


def _check_same_loss(ours: dict, theirs: dict) -> list[float]:
    """Two steps of each: the losses agree (same weights, same data, same Adam), or the comparison is void.

    To 1e-3 relative (1e-2 with TF32 products, whose inputs keep 10 bits of mantissa).
    """
    losses = []
    rel_tol = 1e-2 if tf32() and mt.backend.current().name == "cupy" else 1e-3
    for _ in range(2):
        mine, torchs = float(ours["train_step"]().item()), float(theirs["train_step"]().item())
        if not math.isclose(mine, torchs, rel_tol=rel_tol, abs_tol=1e-4):
            raise RuntimeError(f"bench: the PyTorch reference's loss {torchs} differs from ours {mine}")
        losses.append(mine)
    return losses


def run_model(name: str = "small", repeat: int = 5, use_torch: bool = True, config: dict | None = None,
              memory: bool = True, forward: bool = True, check: bool = True) -> dict:
    """Time one training step and one forward-only step of a whole model, ours beside PyTorch's.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS` (``"small"`` or ``"seed"``), or any label when ``config`` is given.
    repeat : int
        Interleaved samples per variant; medians are reported.
    use_torch : bool
        Include the PyTorch reference when ``import torch`` works.
    config : dict, optional
        Sizes in place of ``MODELS[name]`` (same keys).
    memory : bool
        Also measure the peak memory of a training step.
    forward : bool
        Also time the forward-only step.
    check : bool
        First check that both libraries give the same loss, before and after an Adam step.

    Returns
    -------
    dict
        ``{"benchmark", "config", "flops", "matmul_gflops", "results", "ratios", "floor", "memory", ...}``: per
        variant ``ms`` (median) and ``samples_ms``; ``ratios`` ours over PyTorch's; ``floor`` the BLAS floor
        in ms and each training step's multiple of it.

    Examples
    --------
    A tiny language model, one sample per variant, without PyTorch:

    >>> tiny = {"kind": "lm", "vocab": 11, "d_model": 8, "heads": 2, "num_layers": 1, "d_ff": 16, "seq": 5,
    ...         "batch": 2}
    >>> report = run_model("tiny", repeat=1, use_torch=False, config=tiny, memory=False, forward=False)
    >>> list(report["results"]), report["flops"]["step"] == 3 * report["flops"]["forward"]
    (['mt_train'], True)
    >>> report["floor"]["mt_train_x_floor"] > 1   # no step is faster than its matrix products alone
    True
    """
    if int(repeat) < 1:
        raise ValueError(f"bench {name}: --repeat must be at least 1, got {repeat}")
    if config is None:
        if name not in MODELS:
            raise ValueError(f"bench: unknown model {name!r}; available: {', '.join(MODELS)}")
        config = MODELS[name]
    torch, why = _import_torch() if use_torch else (None, "not requested")
    batch = make_batch(config)
    ours = build_ours(config, batch)
    variants = {"mt_train": ours["train_step"]}
    losses = None
    if torch is not None:
        theirs = build_torch(torch, config, batch, ours["model"])
        losses = _check_same_loss(ours, theirs) if check else None
        variants["torch_train"] = theirs["train_step"]
    if forward:
        variants["mt_forward"] = ours["forward_step"]
        if torch is not None:
            variants["torch_forward"] = theirs["forward_step"]
    variants["matmul"] = _matmul_probe(RATE_SIZE)  # the machine's matmul rate, sampled among the steps
    samples = _interleaved(variants, repeat)
    rate = 2 * RATE_SIZE**3 / statistics.median(samples.pop("matmul"))  # FLOP/s

    results = {k: {"ms": statistics.median(s) * 1e3, "samples_ms": [x * 1e3 for x in s]} for k, s in samples.items()}
    ratios = {}
    for kind in ("train", "forward"):
        if f"torch_{kind}" in samples:
            ratios[f"{kind}_vs_torch"] = _paired_ratio(samples[f"mt_{kind}"], samples[f"torch_{kind}"])
    flops = matmul_flops(config)
    floor = {"train_ms": flops["step"] / rate * 1e3, "forward_ms": flops["forward"] / rate * 1e3}
    for k in results:
        kind = "train" if k.endswith("train") else "forward"
        floor[f"{k}_x_floor"] = results[k]["ms"] / floor[f"{kind}_ms"]
    report = {
        "benchmark": name,
        "description": DESCRIPTIONS[config["kind"]],
        "config": dict(config),
        "repeat": repeat,
        "machine": machine(torch),
        "torch_missing": why,
        "losses_agree": losses,
        "flops": flops,
        "matmul_gflops": rate / 1e9,
        "results": results,
        "ratios": ratios,
        "floor": floor,
        "operations": count_operations(config, torch),
    }
    if memory and mt.backend.current().name != "cupy":  # tracemalloc sees host memory only: not measured on a GPU
        report["memory"] = {"mt_train_bytes": peak_memory_ours(ours["train_step"]),
                            "mt_method": "tracemalloc (NumPy reports its allocations to it)"}
        if torch is not None:
            report["memory"]["torch_train_bytes"], report["memory"]["torch_method"] = peak_memory_torch(
                torch, theirs["train_step"])
            report["ratios"]["memory_vs_torch"] = report["memory"]["mt_train_bytes"] / max(
                report["memory"]["torch_train_bytes"], 1)
    return report


MODEL_LABELS = {
    "mt_train": "minitransformer, training step",
    "torch_train": "PyTorch eager, training step",
    "mt_forward": "minitransformer, forward only",
    "torch_forward": "PyTorch eager, forward only",
}


def format_model_table(report: dict) -> str:
    """The figures of :func:`run_model` as a text table.

    One row per variant: milliseconds, the ratio to PyTorch and the multiple of the BLAS floor; then
    the peak memory and whether the two libraries' losses agree.

    Examples
    --------
    >>> tiny = {"kind": "lm", "vocab": 11, "d_model": 8, "heads": 2, "num_layers": 1, "d_ff": 16, "seq": 5,
    ...         "batch": 2}
    >>> text = format_model_table(run_model("tiny", repeat=1, use_torch=False, config=tiny, memory=False,
    ...                                     forward=False))
    >>> for line in text.splitlines()[:2]:
    ...     print(line)
    tiny: decoder-only LM (pre-LN, causal), cross-entropy
    vocab 11, d_model 8, heads 2, layers 1, d_ff 16, seq 5, batch 2; float32, dropout 0, Adam
    """
    c, m, results, ratios, floor = (report[k] for k in ("config", "machine", "results", "ratios", "floor"))
    torch_text = f"torch {m['torch']} ({m['torch_threads']} threads)" if m["torch"] else "torch not found"
    lines = [
        f"{report['benchmark']}: {report['description']}",
        f"vocab {c['vocab']}, d_model {c['d_model']}, heads {c['heads']}, layers {c['num_layers']}, "
        f"d_ff {c['d_ff']}, seq {c['seq']}, batch {c['batch']}; float32, dropout 0, Adam",
        f"median of {report['repeat']} interleaved samples; backend {m['backend']}; {m['cpu_count']} CPUs, "
        f"numpy {m['numpy']} (BLAS threads {m['numpy_blas_threads']}), {torch_text}",
        *([f"GPU: {m['device']}, both libraries on it; TF32 for float32 products: "
           f"{'on (CUPY_TF32=1)' if m['tf32'] else 'off (full float32)'}; ours with "
           + ("its CUDA kernels and cuBLAS products" if m.get("kernels")
              else "array formulas (MINITRANSFORMER_KERNELS=0)")]
          if m.get("device", "cpu") != "cpu" else []),
        f"BLAS floor: {report['flops']['step'] / 1e9:.2f} GFLOP per training step "
        f"({report['flops']['forward'] / 1e9:.2f} forward) at {report['matmul_gflops']:.1f} GFLOP/s "
        f"(a float32 {RATE_SIZE}x{RATE_SIZE} matmul timed among the steps) = {floor['train_ms']:.1f} ms "
        f"({floor['forward_ms']:.1f} forward)",
        "",
        f"{'variant':<34}{'ms':>10}{'x PyTorch':>11}{'x floor':>9}",
        "-" * 64,
    ]
    for name, label in MODEL_LABELS.items():
        if name not in results:
            continue
        kind = "train" if name.endswith("train") else "forward"
        vs_torch = ratios.get(f"{kind}_vs_torch") if name.startswith("mt_") else (1.0 if ratios else None)
        vs_torch = "" if vs_torch is None else f"{vs_torch:.2f}"
        lines.append(f"{label:<34}{results[name]['ms']:>10.1f}{vs_torch:>11}{floor[f'{name}_x_floor']:>9.2f}")
    lines += _format_operations(report.get("operations"))
    if "memory" in report:
        mem = report["memory"]
        lines += ["", f"peak memory of a training step, above its start: minitransformer "
                  f"{mem['mt_train_bytes'] / 2**20:.1f} MiB ({mem['mt_method']})"]
        if "torch_train_bytes" in mem:
            lines.append(f"  PyTorch {mem['torch_train_bytes'] / 2**20:.1f} MiB ({mem['torch_method']}); "
                         f"ratio {ratios['memory_vs_torch']:.2f}")
    if report["torch_missing"]:
        lines.append(f"PyTorch: not found ({report['torch_missing']}); install torch to compare against it.")
    elif report["losses_agree"]:
        lines.append("the two give the same loss, before and after one Adam step: "
                     + ", ".join(f"{v:.5f}" for v in report["losses_agree"]))
    return "\n".join(lines)


def _format_operations(counts: dict | None) -> list[str]:
    """The lines of :func:`count_operations` in :func:`format_model_table`."""
    if not counts:
        return []

    def side(c):
        if isinstance(c, str):
            return f"not counted ({c})"
        return f"{c['step']} (forward {c['forward']}, backward {c['backward']}, Adam {c['optimizer']})"

    lines = ["", "arrays computed per training step (about one GPU kernel each; views not counted):",
             f"  minitransformer {side(counts['ours'])}"]
    if counts["torch"] != "not requested":
        lines.append(f"  PyTorch         {side(counts['torch'])}, with its multi-tensor Adam")
        if isinstance(counts["ours"], dict) and isinstance(counts["torch"], dict):
            lines[-1] += f"; ratio {counts['ours']['step'] / counts['torch']['step']:.2f}"
    return lines


# ------------------------------------------------------------------ sweep
#: sequence lengths and widths of the sweep (the SMALL model otherwise)
SWEEP_SEQ = (64, 128, 256, 512, 1024)
SWEEP_D_MODEL = (64, 128, 256, 512, 1024)
#: tokens per batch in the sequence-length sweep (batch = tokens / seq), so only attention grows with seq
SWEEP_TOKENS = 2048


def sweep_configs() -> list[tuple[str, int, dict]]:
    """``(axis, value, config)`` for each point: seq at 2048 tokens per batch, then d_model (d_ff = 4 d_model)."""
    base = MODELS["small"]
    points = [("seq", T, {**base, "seq": T, "batch": max(1, SWEEP_TOKENS // T)}) for T in SWEEP_SEQ]
    points += [("d_model", d, {**base, "d_model": d, "d_ff": 4 * d}) for d in SWEEP_D_MODEL]
    return points


def run_sweep(repeat: int = 3, use_torch: bool = True, points=None) -> dict:
    """Training-step time of the SMALL language model against sequence length and against d_model, beside PyTorch.

    Parameters
    ----------
    repeat : int
        Samples per variant at each point; medians are reported.
    use_torch : bool
        Include the PyTorch reference when ``import torch`` works.
    points : list of (str, int, dict), optional
        ``(axis, value, config)`` for each point; ``sweep_configs()`` by default (minutes).

    Returns
    -------
    dict
        ``{"benchmark": "sweep", "repeat", "machine", "torch_missing", "matmul_gflops", "points"}``; each
        point holds ``mt_ms``, ``torch_ms``, ``ratio``, ``floor_ms`` and ``mt_x_floor``.

    Examples
    --------
    >>> tiny = {"kind": "lm", "vocab": 11, "d_model": 8, "heads": 2, "num_layers": 1, "d_ff": 16, "seq": 5,
    ...         "batch": 2}
    >>> report = run_sweep(repeat=1, use_torch=False, points=[("seq", 5, tiny)])
    >>> [(p["axis"], p["value"], p["torch_ms"]) for p in report["points"]], report["points"][0]["mt_ms"] > 0
    ([('seq', 5, None)], True)
    """
    torch, why = _import_torch() if use_torch else (None, "not requested")
    rows = []
    for axis, value, config in points if points is not None else sweep_configs():
        r = run_model(f"{axis}={value}", repeat=repeat, use_torch=torch is not None, config=config, memory=False,
                      forward=False, check=False)
        rows.append({"axis": axis, "value": value, "config": config, "mt_ms": r["results"]["mt_train"]["ms"],
                     "torch_ms": r["results"].get("torch_train", {}).get("ms"),
                     "ratio": r["ratios"].get("train_vs_torch"), "floor_ms": r["floor"]["train_ms"],
                     "mt_x_floor": r["floor"]["mt_train_x_floor"], "matmul_gflops": r["matmul_gflops"]})
    return {"benchmark": "sweep", "repeat": repeat, "machine": machine(torch), "torch_missing": why,
            "matmul_gflops": statistics.median(row["matmul_gflops"] for row in rows) if rows else None,
            "points": rows}


def format_sweep_table(report: dict) -> str:
    """The figures of :func:`run_sweep` as a text table.

    One row per point: batch, milliseconds of ours and of PyTorch, their ratio, the BLAS floor and
    our multiple of it.

    Examples
    --------
    One point, with made-up figures (a real report comes from :func:`run_sweep`):

    >>> row = {"axis": "seq", "value": 64, "config": {"batch": 32}, "mt_ms": 30.0, "torch_ms": 10.0, "ratio": 3.0,
    ...        "floor_ms": 2.0, "mt_x_floor": 15.0}
    >>> text = format_sweep_table({"repeat": 3, "matmul_gflops": 100.0, "points": [row], "torch_missing": None})
    >>> for line in text.splitlines()[2:]:
    ...     print(line)
    point            batch     mt ms  torch ms  x PyTorch  floor ms  x floor
    ------------------------------------------------------------------------
    seq=64              32      30.0      10.0       3.00       2.0    15.00
    """
    lines = [f"sweep: training step of the SMALL LM (batch x seq = {SWEEP_TOKENS} tokens when seq varies; "
             f"d_ff = 4 d_model when d_model varies); median of {report['repeat']}; "
             f"matmul {report['matmul_gflops']:.1f} GFLOP/s (median over the points; each point's floor uses "
             "its own)", "",
             f"{'point':<16}{'batch':>6}{'mt ms':>10}{'torch ms':>10}{'x PyTorch':>11}{'floor ms':>10}{'x floor':>9}",
             "-" * 72]
    for row in report["points"]:
        torch_ms = "" if row["torch_ms"] is None else f"{row['torch_ms']:.1f}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"{row['axis'] + '=' + str(row['value']):<16}{row['config']['batch']:>6}{row['mt_ms']:>10.1f}"
                     f"{torch_ms:>10}{ratio:>11}{row['floor_ms']:>10.1f}{row['mt_x_floor']:>9.2f}")
    if report["torch_missing"]:
        lines.append(f"PyTorch: not found ({report['torch_missing']}).")
    return "\n".join(lines)


# ------------------------------------------------------------------ the command
WHAT = ("autograd", "small", "seed", "large", "all")


def _repeat(args, default: int) -> int:
    """``--repeat`` if given (0 is refused later, with a message), else this benchmark's default."""
    return default if getattr(args, "repeat", None) is None else args.repeat


def main(args) -> int:
    """Entry point of ``minitransformer bench``: run, print the tables, write JSON if asked.

    ``what``: ``autograd`` (per-operation overhead), ``small`` / ``seed`` (whole training steps), ``all``;
    ``--sweep`` adds the sweep (alone when no ``what`` is given).

    Parameters
    ----------
    args : argparse.Namespace
        As parsed by ``minitransformer bench`` (``minitransformer.cli.build_parser``): ``what``,
        ``sweep``, ``repeat``, ``threads``, ``chain``, ``size``, ``json``.

    Returns
    -------
    int
        The exit status: 0; 2 for a bad argument, 1 if the figures cannot be written (a message on stderr).

    Examples
    --------
    >>> import argparse
    >>> main(argparse.Namespace(what="everything", sweep=False))
    2
    """
    what = getattr(args, "what", None)
    sweep = getattr(args, "sweep", False)
    if what is None:
        what = None if sweep else "autograd"
    if what is not None and what not in WHAT:
        print(f"bench: unknown benchmark {what!r}; available: {', '.join(WHAT)}", file=sys.stderr)
        return 2
    names = [] if what is None else (["autograd", "small", "seed"] if what == "all" else [what])
    json_path = getattr(args, "json", None)
    if json_path and _refuse_json(json_path):
        return 2
    if "large" in names and mt.backend.current().name != "cupy":
        print("bench large: one step is about 6 TFLOP, minutes on a CPU; run it on a GPU "
              "(MINITRANSFORMER_BACKEND=cupy)", file=sys.stderr)
        return 2
    reports = {}
    try:
        set_threads(getattr(args, "threads", None), _import_torch()[0])
        for name in names:
            if name == "autograd":
                reports[name] = run_autograd(chain=args.chain, size=args.size, repeat=_repeat(args, 7))
                print(format_table(reports[name]))
            else:
                reports[name] = run_model(name, repeat=_repeat(args, 7 if name == "small" else 5),
                                          memory=name != "large")
                print(format_model_table(reports[name]))
            print()
        if sweep:
            reports["sweep"] = run_sweep(repeat=_repeat(args, 3))
            print(format_sweep_table(reports["sweep"]))
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    if json_path:
        report = reports[names[0]] if len(reports) == 1 and names else {"benchmark": what or "sweep", **reports}
        try:
            with open(json_path, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2)
        except OSError as e:  # permission denied, disk full: one line, as the other commands say it
            print(f"bench: {e.filename or json_path}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"figures written to {json_path}")
    return 0


def _refuse_json(path: str) -> bool:
    """True, with one line on stderr, if ``--json`` cannot be written, tried before minutes of measuring: a file is
    made and removed in its folder (a missing folder, a parent that is a file, no permission all fail there)."""
    target = Path(path)
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder")
        with tempfile.TemporaryFile(dir=target.absolute().parent):
            pass
    except OSError as e:
        print(f"bench: --json {path!r}: {e.strerror or e}", file=sys.stderr)
        return True
    return False
