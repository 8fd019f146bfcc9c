"""Command line: ``minitransformer demo | bench | info | train | evaluate | generate | average | assignments``.

Each sub-command lives in the module that owns its work; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import ast
import glob
import inspect
import json
import os
import sys
from pathlib import Path

from ._console import print_what_the_console_can, quoted


def _demo(args) -> int:
    from .demo import run

    if _refuse_out(args, "demo"):
        return 2
    return _guard("demo", lambda: run(out=args.out, train_steps=args.steps, progress=args.progress))


def _bench(args) -> int:
    from . import bench

    code = []  # bench.main's own exit status, where _guard met no error
    return _guard("bench", lambda: code.append(bench.main(args))) or code[0]


def _info(args) -> int:
    from . import info

    return _guard("info", lambda: print(info.report()))


def _int_from(low: int):
    """An argparse type: an int >= ``low``; argparse's message names the option (``argument --seed: ...``)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = "int"  # argparse's message for a non-number: "invalid int value: 'x'"
    return parse


_positive_int, _non_negative_int = _int_from(1), _int_from(0)


def _blas_threads(text: str) -> int:
    """An argparse type: 0 (the library's own setting) up to the CPUs here; more only wait on each other (100000 made
    a step of 0.06 s take 15 s)."""
    value, cpus = _non_negative_int(text), os.cpu_count() or 1
    if value > cpus:
        raise argparse.ArgumentTypeError(f"must be at most {cpus}, the CPUs here (more threads wait on each other), "
                                         f"got {value}")
    return value


def _progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress {bar,lines,none}`` (Trainer's ``progress``) and ``--no-progress``, its ``none`` as it was."""
    from .train.trainer import PROGRESS

    parser.add_argument("--progress", choices=PROGRESS, default="bar",
                        help="how the training shows its progress on stderr: bar (the default): a bar redrawn in "
                             "place on a terminal, a line per log and evaluation into a file or a pipe; lines: those "
                             "lines on a terminal too (read once by a screen reader, not cut at the terminal's "
                             "width); none: nothing")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const="none",
                        help="the same as --progress none")


def _set_blas_threads(args, command: str) -> None:
    """Set NumPy's BLAS threads for ``train`` and ``evaluate`` (``run.train`` and ``run.evaluate`` then get None: the
    setting as it is): ``--blas-threads N``, said once where no OpenBLAS took it (Accelerate, MKL, one not found),
    with the variable that works where it is an OpenBLAS; not given, 1, not said (macOS' Accelerate, NumPy's BLAS
    there, has no setting to take it on any run); 0, NumPy's own."""
    from .train.threads import set_blas_threads

    n = args.blas_threads
    if n != 0 and not set_blas_threads(n or 1) and n:
        print(f"minitransformer: {command}: --blas-threads {n} had no effect here (no OpenBLAS found to set); "
              f"set OPENBLAS_NUM_THREADS={n} in the environment before starting Python", file=sys.stderr)


def _task_default(name: str) -> str:
    """The default of the task setting ``name`` in words, for a named option's help, from the tasks' own settings
    (those of each entry of :data:`~minitransformer.train.tasks.REGISTRY`, ``EVERY_TASK`` and a default that another
    setting changes): ``default: 1`` where every task has the same, else ``the task's default: 0; translate 0.1``, the
    value most tasks have first."""
    from .train import tasks

    def shown(value) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    by_value = {}  # value -> the tasks that have it, in the order of tasks.REGISTRY
    for task in tasks.REGISTRY:
        by_value.setdefault(shown(tasks._defaults(task)[name]), []).append(task)
    when = [f"{task} with {key}={value} {shown(changed[name])}"
            for (task, key, value), changed in tasks._DEFAULTS_WHEN.items() if name in changed]
    if len(by_value) == 1 and not when:
        return f"default: {next(iter(by_value))}"
    most = max(by_value, key=lambda value: len(by_value[value]))  # (a tie: the first task's)
    others = [f"{', '.join(names)} {value}" for value, names in by_value.items() if value != most]
    return "the task's default: " + "; ".join([most, *others, *when])


def _refuse_out(args, command: str) -> bool:
    """True, with one line on stderr, if ``--out`` cannot be a folder (empty, or it or a folder above it is a file,
    or the system refuses to look: a folder above that may not be searched, a name too long).

    Checked before any work: otherwise the run would fail only when it writes its results, at the end.
    """
    from .train.checkpoint import _file_in_the_way

    if not args.out.strip():  # Path("") is the current folder: the run's files would land among the user's own
        print(f"minitransformer {command}: --out {args.out!r} names no folder; give one, such as train-output/run",
              file=sys.stderr)
        return True
    out = Path(args.out)
    try:
        path = _file_in_the_way(out)
    except OSError as e:  # (Path.exists raises for these since Python 3.11: EACCES, ENAMETOOLONG)
        print(f"minitransformer {command}: --out {args.out!r} cannot be used ({e.strerror or e})", file=sys.stderr)
        return True
    if path is None:
        return False
    where = "is a file" if path == out else f"is inside {str(path)!r}, which is a file"
    print(f"minitransformer {command}: --out {args.out!r} {where}, not a folder", file=sys.stderr)
    return True


def _setting(text: str) -> tuple[str, object]:
    """An argparse type: ``KEY=VALUE`` as ``(key, value)``, the value read as a Python literal (``3``, ``1e-3``,
    ``False``, ``None``: the default) or else kept as the word it is (``noam``, a path); which keys a task takes, and
    the kind of value each takes, is checked by :func:`minitransformer.train.tasks.settings`."""
    key, equals, value = text.partition("=")
    key = key.strip().replace("-", "_")  # --set norm-first=False, spelled as the options are, is norm_first
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"give a setting as KEY=VALUE (e.g. schedule=noam), got {text!r}")
    try:
        return key, ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):  # not a literal: a word
        return key, value
    except (RecursionError, MemoryError):  # ("-" * 5000 + "1", "[" * 50000: too deep for Python's parser)
        raise argparse.ArgumentTypeError(f"the value of {key!r} ({len(value):,} characters) is nested too deeply to "
                                         "read") from None


#: the most bytes a --config file may hold, where a config is a few settings, a few hundred bytes (/dev/zero was read
#: until the memory ran out)
_MAX_CONFIG_BYTES = 1 << 20


def _read_config(path: str) -> dict:
    """The settings in the JSON file ``path``: one object, ``{"schedule": "noam", "norm_first": false}``."""
    where = f"train --config {path}"
    if os.path.exists(path) and not os.path.isdir(path) and not os.path.isfile(path):  # a FIFO would block the read
        raise ValueError(f"{where}: not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_CONFIG_BYTES + 1)
    except OSError as e:  # a folder, a file not there or not readable: named by the option
        raise ValueError(f"{where}: {e.strerror or e}") from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise ValueError(f"{where}: larger than {_MAX_CONFIG_BYTES:,} bytes; a config is a few settings")
    try:
        settings = json.loads(data.decode("utf-8-sig"))  # -sig: the byte-order mark Windows' Notepad may write first
    except ValueError as e:  # (json's JSONDecodeError, and a file that is not UTF-8)
        raise ValueError(f"{where}: not a JSON file ({e})") from None
    except RecursionError:
        raise ValueError(f"{where}: nested too deeply to read; a config is one object of settings") from None
    if not isinstance(settings, dict):
        raise ValueError(f"train --config {path}: must hold one JSON object of settings, such as "
                         f'{{"schedule": "noam", "norm_first": false}}, not a {type(settings).__name__}')
    return settings


#: the task ``train`` trains where ``--task`` is not given (nor, with ``--resume``, read from the checkpoint)
_DEFAULT_TASK = "reverse"


def _default_out(task, seed_config) -> str:
    """train's ``--out`` where it is not given: one folder a task (and seed preset), so that training another task
    by default does not meet this one's run."""
    return os.path.join("train-output", (task or _DEFAULT_TASK) + (f"-seed-{seed_config}" if seed_config else ""))


def _task_of_run(out) -> str | None:
    """The task of the run in the folder ``out``, that ``train --resume`` continues; None where its checkpoint cannot
    be read (:func:`minitransformer.train.run.train` then says why)."""
    from .train import CheckpointError, read_checkpoint
    from .train.run import CHECKPOINT_NAME

    try:
        return read_checkpoint(Path(out) / CHECKPOINT_NAME).extra.get("task")
    except (CheckpointError, OSError):
        return None


def _training_pictures():
    """:func:`minitransformer.viz.training_pictures`, imported only when pictures are drawn (matplotlib takes a
    second to import)."""
    from .viz import training_pictures

    return training_pictures


def _train(args) -> int:
    from .data import CorpusError
    from .train import TrainingInterrupted, run, tasks

    flags = {k: getattr(args, k) for k in ("steps", "batch_size", "max_tokens", "accumulate", "d_model", "heads",
                                             "layers", "d_ff", "lr", "warmup", "seed", "dropout", "label_smoothing",
                                             "eval_every", "target", "patience", "restore_best")}
    if args.task is None and args.seed_config:  # the preset is the classify task's, and no other's
        args.task = "classify"
    if args.out is None:
        args.out = _default_out(args.task, args.seed_config)
    if args.task is None:  # a run resumed goes on with its own task; one of another task given is refused by run
        args.task = (_task_of_run(args.out) if args.resume else None) or _DEFAULT_TASK
    overrides = {}  # later wins: --seed-config's preset, --config, each --set in order, the named options
    if args.seed_config:
        if args.task != "classify":
            print("minitransformer train: --seed-config is the document's section 5 classifier; use --task classify",
                  file=sys.stderr)
            return 2
        from .examples import seed_classifier

        overrides = seed_classifier.task_settings(args.seed_config)
        if args.resume:  # the checkpoint holds the preset's settings; its steps are the run's, unless --steps
            overrides.pop("steps", None)
    if args.config is not None:
        config = _guard("train", lambda: overrides.update(_read_config(args.config)))
        if config:
            return config
    overrides.update(args.set or [])
    overrides.update({k: v for k, v in flags.items() if v is not None})
    if args.task not in tasks.REGISTRY:
        print(f"minitransformer train: unknown task {args.task!r}", file=sys.stderr)
        return 2
    if overrides.get("batch_size") is not None and overrides.get("max_tokens") is not None:  # from any of them
        print("minitransformer train: a batch is batch_size examples or max_tokens tokens; give one (--batch-size, "
              "--max-tokens, or either in --set, --config or --seed-config's preset)", file=sys.stderr)
        return 2
    if args.max_tokens is not None and "max_tokens" not in tasks.REGISTRY[args.task].defaults:
        print(f"minitransformer train: --max-tokens groups sequences of different lengths; --task {args.task}'s "
              "batches are all alike (windows of seq_len): give --batch-size", file=sys.stderr)
        return 2
    if args.text is not None:
        if args.task != "charlm":
            print(f"minitransformer train: --text is the training text of --task charlm, not --task {args.task}",
                  file=sys.stderr)
            return 2
        overrides["corpus"] = os.path.abspath(args.text)  # a path, always: --text tiny is the file ./tiny
    pairs = args.pairs if args.pairs is not None else overrides.get("pairs")  # --pairs, --set pairs= or --config
    if (pairs is not None) != (args.task == "translate") and not (args.resume and pairs is None):
        print("minitransformer train: --pairs FILE is the training data of --task translate, which needs it",
              file=sys.stderr)
        return 2
    if isinstance(pairs, str):  # another kind is refused with the settings' message
        overrides["pairs"] = os.path.abspath(pairs)
    if not args.resume and _guard("train", lambda: tasks.settings(args.task, **overrides)):
        return 2  # a bad setting, before any work (resumed, the run checks them beside the checkpoint's)
    if _refuse_out(args, "train"):
        return 2
    if args.keep_checkpoints is not None and args.checkpoint_every is None:
        print("minitransformer train: --keep-checkpoints N keeps the last N checkpoints written every "
              "--checkpoint-every steps; give --checkpoint-every too", file=sys.stderr)
        return 2
    if args.resume and args.overwrite:
        print("minitransformer train: --resume continues the run in --out, --overwrite replaces it; give one",
              file=sys.stderr)
        return 2

    def saved(e: KeyboardInterrupt) -> str:
        """After "interrupted": the step the checkpoint holds (the last whole one) and how to continue."""
        again = f"minitransformer train --task {args.task} --out {quoted(args.out)} --resume"
        if args.backend is not None:  # not given: the same MINITRANSFORMER_BACKEND chooses it again
            again += f" --backend {args.backend}"
        if isinstance(e, TrainingInterrupted):
            return f" after step {e.step}, saved in {e.checkpoint}; continue with: {again}"
        checkpoint = os.path.join(args.out, run.CHECKPOINT_NAME)
        if os.path.isfile(checkpoint) and not args.overwrite:  # (--overwrite: the kept one is the run it replaces)
            return f"; the checkpoint written last, {checkpoint}, is kept; continue from it with: {again}"
        return ""

    # how the advice of a divergence names a setting: by its option where it has one (--warmup 100), else --set
    spelled = {**{name: "--set {name}={value}" for name in tasks.REGISTRY[args.task].defaults},
               **{name: f"--{name.replace('_', '-')} {{value}}" for name in flags if name != "restore_best"}}

    def work():
        import numpy as np

        try:  # overflows of a diverging run: TrainingDiverged says so, in one line, where NumPy would warn at each
            _set_blas_threads(args, "train")
            with np.errstate(over="ignore", invalid="ignore"):
                run.train(args.task, args.out, backend=_backend_of(args), progress=args.progress,
                          blas_threads=None, resume=args.resume,
                          pictures=None if args.no_pictures else _training_pictures(),
                          checkpoint_every=args.checkpoint_every, overwrite=args.overwrite,
                          keep_checkpoints=args.keep_checkpoints, spelled=spelled, **overrides)
        except CorpusError as e:
            if args.text is None:
                raise
            raise CorpusError(f"--text {args.text!r}", e.problem) from None  # named by its option, as given

    return _guard("train", work, saved)


def _evaluate(args) -> int:
    from .train import run

    def work():
        _set_blas_threads(args, "evaluate")
        return run.evaluate(args.checkpoint, backend=_backend_of(args), blas_threads=None)

    return _guard("evaluate", work)


def _generate(args) -> int:
    from .train import run

    text, option = (args.prompt, "--prompt") if args.prompt is not None else (args.input, "--input")
    return _guard("generate", lambda: run.generate_from_checkpoint(
        args.checkpoint, text, backend=_backend_of(args), beam=args.beam, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed, alpha=args.alpha,
        option=option))


def _average(args) -> int:
    from .train import run

    return _guard("average", lambda: run.average(_expanded(args.checkpoints, "average"), args.out,
                                                 overwrite=args.overwrite))


def _expanded(paths: list[str], command: str) -> list[str]:
    """``paths``, each pattern (``*``, ``?``, ``[``) that names no file replaced by the files it matches, in order:
    what a POSIX shell does, and Windows' cmd and PowerShell leave to the command."""
    found = []
    for path in paths:
        if not any(c in path for c in "*?[") or os.path.exists(path):
            found.append(path)
        elif matches := sorted(glob.glob(path)):
            found.extend(matches)
        else:
            raise ValueError(f"{command}: {path!r} matched no file")
    return found


def _assignments(args) -> int:
    from .assignments import commands

    return commands.main(args)


def _backend_of(args) -> str:
    """``--backend`` if given, else the current backend: ``MINITRANSFORMER_BACKEND``, or NumPy where it is unset
    (as for ``demo`` and ``bench``). A bad value of the variable is a BackendError that names it."""
    from . import backend

    return args.backend if args.backend is not None else backend.current().name


def _guard(command: str, work, interrupted=None) -> int:
    """Run ``work``; a user's mistake (bad checkpoint, unknown backend, bad setting) is one line on stderr, exit 2;
    a file the system refuses (permission denied, disk full, ...) or memory it cannot give is one line too, exit 1, and
    so is a run whose loss became NaN or infinite (:class:`~minitransformer.train.TrainingDiverged`, which says what
    to change); so is Ctrl-C,
    ``minitransformer <command>: interrupted`` and what ``interrupted(the KeyboardInterrupt)`` adds, exit 130."""
    from .backend import BackendError
    from .train import TrainingDiverged
    from .train.checkpoint import CheckpointError

    try:
        work()
    except KeyboardInterrupt as e:  # 130 = 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
        print(f"minitransformer {command}: interrupted{interrupted(e) if interrupted else ''}", file=sys.stderr)
        return 130
    except TrainingDiverged as e:  # a run that failed, not a mistake in the command: the settings were accepted
        print(f"minitransformer {command}: {e}", file=sys.stderr)
        return 1
    except (CheckpointError, BackendError, ValueError, FileExistsError) as e:  # FileExistsError: a run kept in --out
        print(f"minitransformer: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"minitransformer: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except MemoryError as e:  # NumPy's says how much one array wanted: "Unable to allocate 37.3 GiB for an array ..."
        print(f"minitransformer {command}: out of memory{f' ({e})' if str(e) else ''}: smaller settings need less "
              "(--d-model, --d-ff, --layers, --batch-size, --max-new-tokens, ...)", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``minitransformer`` argument parser: one sub-command each, its function in ``args.run``.

    Returns
    -------
    argparse.ArgumentParser
        Sub-commands ``demo``, ``bench``, ``info``, ``train``, ``evaluate``, ``generate``, ``average`` and
        ``assignments``.

    Examples
    --------
    >>> args = build_parser().parse_args(["train", "--task", "sort", "--steps", "100"])
    >>> args.command, args.task, args.steps, args.d_model   # unset options stay None: the task's default
    ('train', 'sort', 100, None)
    """
    from .train import run, tasks  # the task names and settings; generate's defaults

    parser = argparse.ArgumentParser(prog="minitransformer",
                                     description="The Transformer built from NumPy up, for learning.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="a tour of the engine and the formulas, on NumPy, with data that ships")
    demo.add_argument("--out", default="demo-output",
                      help="folder for the pictures and the closing run's checkpoint (default: demo-output)")
    demo.add_argument("--steps", type=_non_negative_int, default=300,
                      help="steps of the closing Transformer training run (0 skips it; default 300)")
    _progress_options(demo)
    demo.set_defaults(run=_demo)

    bench = sub.add_parser("bench", help="benchmarks, printed beside a reference measured in the same run")
    bench.add_argument("what", nargs="?", default=None, choices=["autograd", "small", "seed", "large", "all"],
                       help="what to time: per-operation overhead (autograd, the default), a training step of the "
                       "small LM or of the document's classifier beside PyTorch (small, seed), or all three; "
                       "large (d_model 1024, 4 layers, seq 1024, batch 16) is for a GPU, beside PyTorch CUDA; "
                       "set CUPY_TF32=1 to let both use TF32")
    bench.add_argument("--sweep", action="store_true",
                       help="also time training steps against sequence length and d_model, beside PyTorch (minutes); "
                            "alone if no benchmark is named")
    bench.add_argument("--repeat", type=int, default=None,
                       help="timed repetitions, the median is reported (default: 7 autograd, small; 5 seed, large; "
                            "3 sweep)")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for NumPy's BLAS and for PyTorch alike (default: each library's own choice)")
    bench.add_argument("--chain", type=int, default=200, help="length of the chain of small operations")
    bench.add_argument("--size", type=int, default=16, help="elements per tensor in the chain")
    bench.add_argument("--json", default=None, help="also write the figures to this JSON file")
    bench.set_defaults(run=_bench)

    info = sub.add_parser("info", help="backends available, devices, versions")
    info.set_defaults(run=_info)

    backends = ["numpy", "cupy", "array_api_strict"]
    threads_help = ("threads for NumPy's BLAS: 1 (the default) is fastest for these small matrices; "
                    "0 leaves the library's own setting")
    train = sub.add_parser("train", help="train a task end to end: progress, final metrics, checkpoint, pictures",
                           description="Train a Transformer on a task and write the checkpoint, metrics.json, "
                                       "curves.png and attention_*.png into --out (a run that diverges, NaN or "
                                       "infinite, exits with status 1: where it kept the model of its best "
                                       "evaluation, --patience or --target, it writes these files for that model "
                                       "first, stop_reason \"diverged\"; else nothing new). Every setting of the "
                                       "task (minitransformer.train.tasks.DEFAULTS) can be given with --set "
                                       "KEY=VALUE or "
                                       "in a --config file; where one is given several ways, the later wins: "
                                       "--seed-config's preset, then --config, then each --set in order, then the "
                                       "named options (--steps, --lr, ...).")
    train.add_argument("--task", choices=tuple(tasks.REGISTRY),
                       help="reverse/sort/copy: digit sequences (encoder-decoder); dates: dates written by people "
                            "to ISO 8601 (encoder-decoder); translate: the pairs of --pairs; classify: the negation "
                            "task; "
                            "charlm: a character language model on the shipped corpus, or on --text "
                            f"(default: {_DEFAULT_TASK}; with --resume, the task of the run in --out)")
    train.add_argument("--text", metavar="PATH",
                       help="with --task charlm: train on this UTF-8 text file instead of the shipped corpus (its "
                            "last 10%% is the validation text; evaluate needs the file, generate does not)")
    train.add_argument("--pairs", metavar="FILE",
                       help="with --task translate: train on this UTF-8 file of source<TAB>target lines (a third "
                            "column is ignored); 10%% of its distinct sources are held out for validation and 10%% "
                            "for the test; evaluate needs the file, generate does not")
    backend_help = "array backend (default: MINITRANSFORMER_BACKEND if set, else numpy)"
    train.add_argument("--backend", choices=backends, help=backend_help)
    train.add_argument("--steps", type=_positive_int, help=f"optimizer steps ({_task_default('steps')})")
    train.add_argument("--batch-size", type=_positive_int,
                       help=f"examples (sequences) in a batch ({_task_default('batch_size')})")
    train.add_argument("--max-tokens", type=_positive_int, metavar="N",
                       help="batches of at most N tokens (counted padded) in place of --batch-size, examples of "
                            "similar length together: the paper's batching (section 5.1); sequence tasks and classify")
    train.add_argument("--accumulate", type=_positive_int, metavar="N",
                       help="gradient accumulation: N batches of --batch-size make one optimizer step, as one batch N "
                            f"times larger would, in the memory of one ({_task_default('accumulate')})")
    train.add_argument("--d-model", type=_positive_int,
                       help=f"the width of the model, d_model ({_task_default('d_model')})")
    train.add_argument("--heads", type=_positive_int, help=f"attention heads, h ({_task_default('heads')})")
    train.add_argument("--layers", type=_positive_int,
                       help=f"layers of the encoder and of the decoder ({_task_default('layers')})")
    train.add_argument("--d-ff", type=_positive_int,
                       help=f"the inner width of the feed-forward layers, d_ff ({_task_default('d_ff')})")
    train.add_argument("--lr", type=float,
                       help=f"the peak learning rate (reached after the warm-up; {_task_default('lr')})")
    train.add_argument("--warmup", type=_positive_int, help=f"warm-up steps ({_task_default('warmup')})")
    train.add_argument("--dropout", type=float, help="the dropout rate, P_drop (paper section 5.4: 0.1; "
                                                     f"{_task_default('dropout')})")
    train.add_argument("--label-smoothing", type=float,
                       help="move this fraction (0 to 1) of each target's probability onto all classes evenly "
                            f"(paper section 5.4: 0.1; {_task_default('label_smoothing')})")
    train.add_argument("--eval-every", type=_positive_int, help="steps between evaluations on the validation split "
                                                                f"({_task_default('eval_every')})")
    train.add_argument("--target", type=float, help="stop once the validation accuracy (loss for charlm) reaches it; "
                       "the run ends with the model of its best evaluation")
    train.add_argument("--patience", type=_positive_int, help="stop after this many evaluations without improvement; "
                       "the run ends with the model of its best evaluation (saved, measured, and said which)")
    train.add_argument("--no-restore-best", dest="restore_best", action="store_const", const=False,
                       help="with --patience or --target: end with the last model, not that of the best evaluation "
                            "(the setting restore_best=False; a run that diverges then saves nothing)")
    train.add_argument("--seed", type=_non_negative_int,
                       help=f"seed of the data, the initial weights and the batch order ({_task_default('seed')})")
    train.add_argument("--set", action="append", type=_setting, metavar="KEY=VALUE",
                       help="any setting of the task, repeatable: --set schedule=noam --set norm_first=False (the "
                            "value is read as a Python literal, else as a word); it wins over --config, and the named "
                            "options win over it; an unknown key is refused, naming the keys the task takes")
    train.add_argument("--config", metavar="FILE.json",
                       help='settings of the task from a JSON object, {"schedule": "noam", "norm_first": false}; '
                            "--set and the named options win over it")
    _progress_options(train)
    train.add_argument("--out", help="folder for the results (default: train-output/TASK, one folder a task; "
                            "train-output/classify-seed-cpu and -document with --seed-config)")
    train.add_argument("--resume", action="store_true",
                       help="continue from --out/checkpoint.npz (written at the end, and at the end of the step "
                            "in progress on Ctrl-C)")
    train.add_argument("--overwrite", action="store_true",
                       help="start a new run where --out holds one already, replacing its checkpoint, and delete "
                            "the checkpoint-step*.npz the replaced run kept (those it names: at the end of the new "
                            "run, or of its --resume where it was stopped before); without it, and without --resume, "
                            "that run is kept and the command refused")
    train.add_argument("--checkpoint-every", type=_positive_int, help="also write the checkpoint every N steps")
    train.add_argument("--keep-checkpoints", type=_positive_int, metavar="N",
                       help="with --checkpoint-every: also keep the last N of those checkpoints, as "
                            "checkpoint-step000400.npz ... in --out (older ones this run kept are deleted), to "
                            "average with `minitransformer average`")
    train.add_argument("--no-pictures", action="store_true", help="skip the PNG files (curves, attention maps)")
    train.add_argument("--seed-config", nargs="?", const="cpu", choices=["cpu", "document"], default=None,
                       help="the document's section 5 classifier, of the classify task (the task where --task is "
                            "not given); 'cpu' (the default) is a smaller version, 'document' the full one "
                            "(Embedding 10000x512, 8 heads, d_ff 2048)")
    train.add_argument("--blas-threads", type=_blas_threads, help=threads_help)
    train.set_defaults(run=_train)

    evaluate = sub.add_parser("evaluate", help="measure a checkpoint written by `train` on its held-out data")
    evaluate.add_argument("checkpoint", help="a checkpoint.npz written by `minitransformer train`")
    evaluate.add_argument("--backend", choices=backends, help=backend_help)
    evaluate.add_argument("--blas-threads", type=_blas_threads, help=threads_help)
    evaluate.set_defaults(run=_evaluate)

    gen = sub.add_parser("generate", help="run a checkpoint on your own input",
                         description="reverse, copy, sort: --input '3 1 4 1 5 9 2 6' gives the output sequence "
                                     "(for the lengths trained on: 8 to 12 digits by default); dates: --input "
                                     "'march 3, 2021' gives 2021-03-03; translate: --input 'a sentence' gives its "
                                     "translation; classify: --input "
                                     "'the film was not bad' gives the label; charlm: --prompt 'The ' continues "
                                     "the text (with a BPE tokenizer, --prompt 'The': the space belongs to the "
                                     "next word's token).")
    gen.add_argument("checkpoint")
    what = gen.add_mutually_exclusive_group()
    what.add_argument("--prompt", help="text to continue (charlm)")
    what.add_argument("--input", help="digits (reverse, copy, sort), a date (dates), a sentence (translate) or a "
                                      "review (classify)")
    gen.add_argument("--backend", choices=backends, help=backend_help)
    default = {name: p.default for name, p in inspect.signature(run.generate_from_checkpoint).parameters.items()}
    gen.add_argument("--beam", type=_positive_int, default=default["beam"],
                     help="beam size for seq2seq (default: %(default)s, greedy decoding)")
    gen.add_argument("--alpha", type=float, default=default["alpha"],
                     help="with --beam above 1: the length penalty's alpha; the hypothesis with the best "
                          "log P / lp(Y), lp(Y) = ((5 + |Y|) / 6)^alpha, wins (default: %(default)s, the paper's, "
                          "section 6.1; 0 ranks by log P alone, which favours short outputs)")
    gen.add_argument("--max-new-tokens", type=_positive_int, default=default["max_new_tokens"],
                     help="tokens to generate (charlm): characters, or BPE pieces with --set tokenizer=bpe "
                          "(default: %(default)s)")
    gen.add_argument("--temperature", type=float, default=default["temperature"],
                     help="sampling temperature (charlm; 0: greedy; default: %(default)s)")
    gen.add_argument("--top-k", type=_positive_int, default=default["top_k"],
                     help="sample from the k likeliest (charlm; default: %(default)s)")
    gen.add_argument("--top-p", type=float, default=default["top_p"], metavar="P",
                     help="nucleus sampling: from the likeliest tokens that hold at least P of the probability, "
                          "0 < P <= 1, after --top-k (charlm; default: %(default)s, every token)")
    gen.add_argument("--seed", type=_non_negative_int, default=default["seed"],
                     help="seed of the sampling (charlm; default: %(default)s)")
    gen.set_defaults(run=_generate)

    average = sub.add_parser("average", help="average the weights of a run's last checkpoints (paper section 6.1)",
                             description="Write the element-wise mean of the weights of checkpoints of one run "
                                         "(those `train --keep-checkpoints N` keeps), as the paper averages its "
                                         "last 5 (base) or 20 (big) checkpoints: a checkpoint that evaluate and "
                                         "generate read like any other. The checkpoints must be of one run (its "
                                         "id, which --resume carries on) and one model; the task, settings and "
                                         "tokenizer are the last one's. It holds no optimizer state: a model to "
                                         "evaluate, not to resume training from.")
    average.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                         help="checkpoints of one run, in any order: taken in the order of their steps (the last "
                              "one's step and history are kept), e.g. runs/reverse/checkpoint-step*.npz")
    average.add_argument("--out", required=True, metavar="FILE", help="the averaged checkpoint to write")
    average.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    average.set_defaults(run=_average)

    from .assignments.catalog import CASE_TIMEOUT

    assign = sub.add_parser("assignments", help="classroom assignments: build a student copy, grade it",
                            description="Build a student copy of the package in which assignment N's formula "
                                        "bodies raise NotImplementedError, and grade a copy with the tests.")
    actions = assign.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the assignments A1 to A7")
    make = actions.add_parser("build", help="write a student copy (package, tests, notebooks) for assignment N")
    make.add_argument("number", help="the assignment, 1 to 7")
    make.add_argument("out", help="a new folder for the copy")
    make.add_argument("--solution", action="store_true", help="keep the solution (the instructor's copy)")
    mark = actions.add_parser("grade", help="run assignment N's tests on a copy: a table of tests and points, "
                                            "also written as JSON")
    mark.add_argument("number", help="the assignment, 1 to 7")
    mark.add_argument("path", nargs="?", default=".", help="the copy to grade (default: the current folder)")
    mark.add_argument("--json", default=None, help="where to write the grade (default: grade-A<N>.json)")
    mark.add_argument("--case-timeout", type=_positive_int, default=None, metavar="SECONDS",
                      help="a case that runs longer (a body that never returns) fails, saying where it was, and the "
                           "cases after it run again without it, as after a crash, the other cases of its test last "
                           f"(default: the assignment's own, {CASE_TIMEOUT} unless its entry in "
                           "minitransformer/assignments/catalog.py gives case_timeout; for a whole class, 10: the "
                           "solution's slowest case takes about 3 s, and each case out of time costs its limit)")
    mark.add_argument("--timeout", type=_positive_int, default=1800, metavar="SECONDS",
                      help="stop the tests after this long in all, reruns included: the cases that finished are "
                           "scored, the others fail (default: 1800)")
    assign.set_defaults(run=_assignments)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``minitransformer`` command: parse ``argv`` (``sys.argv[1:]`` when None) and run.

    Returns the exit status: 0; 2 for a user's mistake, 1 for a file the system refuses or a training run that
    diverged, 130 for Ctrl-C (each with one line on stderr).

    Examples
    --------
    >>> main(["train", "--task", "reverse", "--seed-config"])   # --seed-config is for --task classify
    2
    """
    print_what_the_console_can()
    args = build_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
