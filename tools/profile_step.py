"""Where the time of one training step goes: the host's share against the device's, phase by phase.

    python tools/profile_step.py seed                       # NumPy
    MINITRANSFORMER_BACKEND=cupy python tools/profile_step.py seed --torch

On a GPU a step is bound by whichever is slower: the host issuing the kernels (Python, the autograd
graph, CuPy's launch path) or the device running them. Timing steps without waiting for the device
gives the host's time; waiting at the end gives the step's. When the two are close, the step is
host-bound and the profile (Python's cProfile, sorted by own time) says where the host spends it.
With ``--torch`` the same model in PyTorch eager is timed the same way, for comparison.

With ``--calls`` it first times single calls of the kinds a step makes (matrix products, a sum over the rows,
an elementwise add, a CUDA kernel, an allocation, views) at the SEED model's sizes: microseconds to issue
one (host) and to finish it (total), beside PyTorch's same call with ``--torch``. That says which calls make
a host-bound step slow, and what replacing one by another would save. Rows starting "the same" time the row
above another way: the library's own function without array-api-compat's wrapper; rows "kernel matmul", where
the backend has CUDA kernels, the same product as the step computes it there (one cuBLAS call, transposes read in
place).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minitransformer as mt  # noqa: E402
from minitransformer import bench  # noqa: E402


def host_and_total(fn, steps: int) -> tuple[float, float]:
    """Milliseconds per call of ``fn``: issuing ``steps`` calls (host), and until the device is done (total)."""
    fn()
    bench._sync()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    host = time.perf_counter() - start
    bench._sync()
    total = time.perf_counter() - start
    return 1e3 * host / steps, 1e3 * total / steps


def phases(ours: dict, steps: int) -> dict:
    """Host milliseconds per step of forward + loss, backward and the optimizer step, each issued alone."""
    out = {"forward + loss": 0.0, "backward": 0.0, "optimizer": 0.0}
    for _ in range(steps):
        ours["optimizer"].zero_grad()
        t0 = time.perf_counter()
        value = ours["loss"]()
        t1 = time.perf_counter()
        value.backward()
        t2 = time.perf_counter()
        ours["optimizer"].step()
        t3 = time.perf_counter()
        bench._sync()
        for name, dt in zip(out, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            out[name] += 1e3 * dt / steps
    return out


def profile(fn, steps: int, top: int) -> str:
    """cProfile of ``steps`` calls of ``fn``: the ``top`` functions by own time."""
    fn()
    bench._sync()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        fn()
    bench._sync()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def call_cases(rows: int = 3200, d: int = 512, heads: int = 8, seq: int = 100, torch=None) -> dict:
    """``{kind: (ours, PyTorch's or None)}``: one call each, on the current backend, at the SEED model's sizes.

    ``rows`` = batch x seq rows of ``d`` features; attention's stacks ``(rows / seq, heads, seq, d / heads)``.
    """
    be = mt.backend.current()
    xp, B, d_k = be.xp, rows // seq, d // heads
    X, W = xp.ones((rows, d), dtype=xp.float32), xp.ones((d, d), dtype=xp.float32)
    Q = xp.ones((B, heads, seq, d_k), dtype=xp.float32)
    P = xp.permute_dims(xp.ones((B, seq, heads, d_k), dtype=xp.float32), (0, 2, 1, 3))  # split heads: a view
    if torch is not None:  # the same arrays in PyTorch
        device = bench.torch_device(torch)
        tX, tW, tQ = (torch.ones(shape, device=device) for shape in ((rows, d), (d, d), (B, heads, seq, d_k)))
        tP = torch.ones((B, seq, heads, d_k), device=device).permute(0, 2, 1, 3)
    cases = [  # (kind, ours, PyTorch's)
        ("matmul (rows, d) @ (d, d)", lambda: xp.matmul(X, W), lambda: tX @ tW),
        ("matmul (rows, d) @ (d, d)^T", lambda: xp.matmul(X, xp.matrix_transpose(W)), lambda: tX @ tW.T),
        ("matmul stacks Q @ K^T, K contiguous", lambda: xp.matmul(Q, xp.matrix_transpose(Q)),
         lambda: tQ @ tQ.transpose(-2, -1)),
        ("matmul stacks Q @ K^T, split heads", lambda: xp.matmul(P, xp.matrix_transpose(P)),
         lambda: tP @ tP.transpose(-2, -1)),
        ("sum over rows (rows, d) -> (d,)", lambda: xp.sum(X, axis=0), lambda: tX.sum(0)),
        ("add (rows, d) + (rows, d)", lambda: X + X, lambda: tX + tX),
        ("multiply (rows, d) * (d,)", lambda: X * W[0], lambda: tX * tW[0]),
        ("empty (d,)", lambda: xp.empty((d,), dtype=xp.float32), lambda: torch.empty(d, device=device)),
        ("reshape (rows, d) -> (B, seq, d)", lambda: xp.reshape(X, (B, seq, d)), lambda: tX.reshape(B, seq, d)),
        ("slice of a vector", lambda: W[0][: d // 2], lambda: tW[0][: d // 2]),
    ]
    library = be.native
    if library is not None:  # the same calls to the library itself, without array-api-compat's wrapper around them
        cases.insert(1, (f"  the same, {library.__name__}.matmul itself", lambda: library.matmul(X, W), None))
        cases.insert(-1, (f"  the same, {library.__name__}.reshape itself", lambda: library.reshape(X, (B, seq, d)),
                          None))
    if be.kernels is not None:  # each product as the kernels compute it (one cuBLAS call), then two kernels
        products = {"matmul (rows, d) @ (d, d)": ("X W", X, W),
                    "matmul (rows, d) @ (d, d)^T": ("X W^T", X, xp.matrix_transpose(W)),
                    "matmul stacks Q @ K^T, K contiguous": ("Q K^T", Q, xp.matrix_transpose(Q)),
                    "matmul stacks Q @ K^T, split heads": ("Q K^T, split heads", P, xp.matrix_transpose(P))}
        for kind, (product, a, b) in products.items():
            cases.insert([case[0] for case in cases].index(kind) + 1,
                         (f"  kernel matmul {product}", lambda a=a, b=b: be.kernels.matmul(a, b), None))
        cases += [("kernel column_sums (rows, d)", lambda: be.kernels.column_sums(X), None),
                  ("kernel softmax_forward (rows, d)", lambda: be.kernels.softmax_forward(X), None)]
    return {kind: (ours, theirs if torch is not None else None) for kind, ours, theirs in cases}


def call_costs(cases: dict, calls: int = 100) -> str:
    """A table of microseconds per call, host (issuing ``calls`` calls) and total (until the device is done)."""
    lines = [f"{'one call':38}{'host us':>10}{'total us':>10}{'PyTorch host':>14}{'total':>10}"]
    for kind, (ours, theirs) in cases.items():
        cells = []
        for fn in (ours, theirs):
            if fn is None:
                cells.append(f"{'-':>14}{'-':>10}" if cells else f"{'-':>10}{'-':>10}")
                continue
            try:
                host, total = host_and_total(lambda fn=fn: [fn() for _ in range(calls)], 1)
            except Exception as e:  # a probe that fails says why, and the table goes on
                cells.append(f"  failed: {type(e).__name__}: {e}"[:120])
                break
            width = (10, 10) if not cells else (14, 10)
            cells.append(f"{1e3 * host / calls:{width[0]}.1f}{1e3 * total / calls:{width[1]}.1f}")
        lines.append(f"{kind:38}" + "".join(cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(bench.MODELS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--torch", action="store_true", help="time PyTorch eager's step the same way")
    parser.add_argument("--calls", action="store_true", help="first, what single calls cost (SEED's sizes)")
    args = parser.parse_args(argv)
    torch = None
    if args.torch:
        torch, why = bench._import_torch()
        if torch is None:
            raise SystemExit(f"--torch: PyTorch cannot be imported ({why})")
    if args.calls:
        print(f"single calls on {mt.backend.current().name}, float32, microseconds per call")
        print(call_costs(call_cases(torch=torch)) + "\n")
    config = bench.MODELS[args.model]
    batch = bench.make_batch(config)
    ours = bench.build_ours(config, batch)
    be = mt.backend.current()
    print(f"{args.model} on {be.name}, kernels: {'on' if be.kernels else 'off'}; ms per step, {args.steps} steps")
    rows = {"ours, training step": host_and_total(ours["train_step"], args.steps),
            "ours, forward only": host_and_total(ours["forward_step"], args.steps)}
    if torch is not None:
        theirs = bench.build_torch(torch, config, batch, ours["model"])
        rows["PyTorch, training step"] = host_and_total(theirs["train_step"], args.steps)
        rows["PyTorch, forward only"] = host_and_total(theirs["forward_step"], args.steps)
    print(f"{'':28}{'host':>8}{'total':>8}")
    for name, (host, total) in rows.items():
        print(f"{name:28}{host:8.2f}{total:8.2f}")
    print("ours, host time by phase: " + ", ".join(f"{k} {v:.2f}" for k, v in phases(ours, args.steps).items()))
    print(profile(ours["train_step"], args.steps, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
