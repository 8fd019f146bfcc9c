"""Convergence benchmark: do the default training runs reach their targets on a CPU, and how fast?

    python tools/convergence.py                          # reverse, classify, charlm with their defaults
    python tools/convergence.py --tasks reverse --json convergence.json
    python tools/convergence.py --tasks dates

For each task it trains the setup of ``minitransformer train --task TASK`` (the defaults in
``minitransformer/train/tasks.py``) on NumPy, with one BLAS thread (set before NumPy is imported:
for these small matrices that is several times faster than the library's default on a 2-core
machine), and reports the wall time, the steps, the final held-out metrics and the machine's load.
It checks the targets the project promises:

* ``reverse``  -- the encoder-decoder reaches >= 99% exact-sequence accuracy on held-out sequences
  (lengths 8-12, 10 digits) within 5 minutes;
* ``dates``    -- the encoder-decoder reads held-out dates written by people ("the 3rd of March 2021") and writes
  >= 95% of them exactly in ISO 8601 ("2021-03-03") within 2 minutes;
* ``classify`` -- the classifier reaches >= 95% held-out accuracy (a bag of words cannot pass 75%);
* ``charlm``   -- the character LM's validation loss ends well below (>= 0.5 nats under) that of a
  unigram model counted on the training text and scored on the same validation characters
  (``unigram_val_loss``).

This is a benchmark, not a test: timings depend on the machine and on what else runs on it (the load
average is printed before and after). It exits with status 1 if a target is missed, 2 before any run if a task
is unknown or cannot run with its defaults alone (``translate`` needs a file of pairs).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads its BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import minitransformer as mt  # noqa: E402
from minitransformer.train import get_blas_threads, reaches_target  # noqa: E402
from minitransformer.train.tasks import build, settings  # noqa: E402

TIME_LIMIT_S = 300.0  # the reverse task's promise: 99% within 5 minutes
DATES_TIME_LIMIT_S = 120.0  # the dates task's: 95% within 2 minutes
CHECKS = {
    "reverse": ("test_exact_sequence_accuracy", ">=", 0.99),
    "dates": ("test_exact_sequence_accuracy", ">=", 0.95),
    "classify": ("test_accuracy", ">=", 0.95),
    "charlm": ("val_loss_below_unigram", ">=", 0.5),
    "sort": ("test_exact_sequence_accuracy", ">=", 0.99),  # no promise made; checked the same way as reverse
    "copy": ("test_exact_sequence_accuracy", ">=", 0.99),
}
#: the mode of ``reaches_target`` each check's comparison stands for: higher is better (an accuracy), or lower (a loss)
MODES = {">=": "max", "<=": "min"}


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def bench(task: str, progress: bool, **overrides) -> dict:
    """Train ``task`` with its defaults; the time, steps and metrics, and when the validation metric first passed."""
    load_before = _load()
    start = time.perf_counter()
    setup = build(task, **overrides)
    s = setup.settings
    metric = "val_loss" if setup.kind == "lm" else "val_accuracy"
    seen = []  # (step, seconds since start, value) at each evaluation

    def timed_eval(model):
        results = setup.eval_fn(model)
        seen.append((trainer.step, round(time.perf_counter() - start, 1), results[metric]))
        return results

    trainer = setup.trainer(eval_fn=timed_eval, log_every=50, progress=progress)
    trainer.fit(setup.train_data, s["steps"])
    train_time = time.perf_counter() - start
    metrics = setup.final_metrics(setup.model)
    total = time.perf_counter() - start
    name, op, threshold = CHECKS.get(task, (None, None, None))
    passed = None if name is None else reaches_target(metrics[name], threshold, MODES[op])
    limit = {"reverse": TIME_LIMIT_S, "dates": DATES_TIME_LIMIT_S}.get(task)  # a promise of time too
    if limit is not None:
        passed = passed and total <= limit
    first_pass = None
    if setup.kind != "lm":
        goal = 0.95 if task in ("classify", "dates") else 0.99
        first_pass = next(([step, sec] for step, sec, v in seen if reaches_target(v, goal)), None)
    return {
        "task": task, "passed": passed, "check": f"{name} {op} {threshold}" if name else None,
        "steps": trainer.step, "wall_time_s": round(total, 1), "train_time_s": round(train_time, 1),
        "final_metrics": metrics, "validation": [list(x) for x in seen],
        "first_validation_pass_step_and_s": first_pass,
        "parameters": setup.model.num_parameters(), "settings": s,
        "load_before": load_before, "load_after": _load(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="reverse,classify,charlm", help="comma-separated tasks")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    machine = {
        "python": platform.python_version(), "numpy": np.__version__, "minitransformer": mt.__version__,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "blas_threads": get_blas_threads(), "processor": platform.processor() or platform.machine(),
    }
    tasks = [task.strip() for task in args.tasks.split(",")]
    for task in tasks:  # a task misspelt, or one that needs a file (translate), refused before minutes of the others
        try:
            settings(task)
        except ValueError as e:
            print(f"convergence: {e}", file=sys.stderr)
            return 2
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    results = []
    for task in tasks:
        r = bench(task, args.progress)
        results.append(r)
        m = r["final_metrics"]
        shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items())
        verdict = {True: "PASS", False: "FAIL", None: "-"}[r["passed"]]
        print(f"{task:9s} {verdict}  {r['check']}  steps={r['steps']}  wall={r['wall_time_s']} s  "
              f"(load {r['load_before']} -> {r['load_after']})\n          {shown}\n"
              f"          validation (step, s, value): {r['validation']}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": machine, "results": results}, f, indent=2)
        print(f"wrote {args.json}")
    return 0 if all(r["passed"] is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
