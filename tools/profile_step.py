"""Where the time of one training step goes: the host's share against the device's, phase by phase.

    python tools/profile_step.py seed                       # NumPy
    MINITRANSFORMER_BACKEND=cupy python tools/profile_step.py seed --torch

On a GPU a step is bound by whichever is slower: the host issuing the kernels (Python, the autograd
graph, CuPy's launch path) or the device running them. Timing steps without waiting for the device
gives the host's time; waiting at the end gives the step's. When the two are close, the step is
host-bound and the profile (Python's cProfile, sorted by own time) says where the host spends it.
With ``--torch`` the same model in PyTorch eager is timed the same way, for comparison.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(bench.MODELS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--torch", action="store_true", help="time PyTorch eager's step the same way")
    args = parser.parse_args(argv)
    config = bench.MODELS[args.model]
    batch = bench.make_batch(config)
    ours = bench.build_ours(config, batch)
    be = mt.backend.current()
    print(f"{args.model} on {be.name}, kernels: {'on' if be.kernels else 'off'}; ms per step, {args.steps} steps")
    rows = {"ours, training step": host_and_total(ours["train_step"], args.steps),
            "ours, forward only": host_and_total(ours["forward_step"], args.steps)}
    if args.torch:
        torch, why = bench._import_torch()
        if torch is None:
            raise SystemExit(f"--torch: PyTorch cannot be imported ({why})")
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
