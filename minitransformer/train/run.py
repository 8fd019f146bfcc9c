"""What ``minitransformer train / evaluate / generate / average`` do: a task trained end to end, a checkpoint used.

``train`` builds a task (:mod:`minitransformer.train.tasks`), trains it with a progress bar, prints
the final metrics on held-out data and writes into ``--out``. With ``--patience`` or ``--target`` the model it
measures and saves is that of the best evaluation (:class:`~minitransformer.train.Trainer`'s ``restore_best``):

==========================  ==========================================================================
``checkpoint.npz``          model, optimizer, schedule, step, RNG, tokenizer, history, the task's settings
``metrics.json``            the final metrics, the settings, steps, wall time and ``stop_reason``
``curves.png``              loss (train and validation), accuracy, learning rate against the step
``attention_*.png``         the attention maps of one held-out example, every head of the last layer
==========================  ==========================================================================

(the pictures drawn by the function the caller passes as ``pictures``, :func:`minitransformer.viz.training_pictures`
for the command line: ``viz`` is a layer above this one; without it, none). The curves mark the step of the model
kept, where the run put back that of its best evaluation (``model kept (step M)``), and that of a divergence.

A run that diverges (:class:`~minitransformer.train.TrainingDiverged`: its loss or its weights NaN or infinite) and
kept the model of its best evaluation (``--patience``, ``--target``: the checkpoint holds it) writes its record too
before the error is raised, as a finished run's: ``metrics.json`` with that model's held-out metrics,
``restored_step``, ``stop_reason`` "diverged", ``steps`` the step it was found at and the error's message under
``"error"``, and its pictures (its curves mark the step it diverged at and that of the model kept). One that kept
no model but wrote a checkpoint records the model of its last checkpoint so (``restored_step`` its step), in place of
the record of a run written there before (``--overwrite``, ``--resume``); one that wrote none writes nothing new:
the checkpoint, ``metrics.json`` and pictures in ``--out``, if any, are still those of the run written there before,
never mixed with this one's.

``evaluate CHECKPOINT`` rebuilds the task's held-out data from the settings saved in the checkpoint
and measures the model again (a charlm model trained on a text file of your own needs that file, with the
characters it had); ``generate CHECKPOINT`` runs it on an input of your own, from the checkpoint alone
(the model, its settings and its tokenizer are saved in it). ``average CHECKPOINT ... --out FILE`` writes the mean
of the weights of several checkpoints of one run (those ``train --keep-checkpoints`` keeps), which ``evaluate`` and
``generate`` read like any other.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np  # host-side numbers read from a checkpoint

from .. import backend as _backend
from .._arguments import require_real, shown
from ..data import CorpusError, tokenizer_from_dict
from . import tasks
from .checkpoint import (
    RUN_ID,
    CheckpointError,
    _kept_by,
    _kept_path,
    _put_back_when,
    _remove_stale_temporaries,
    _restored,
    _write_atomically,
    average_checkpoints,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from .threads import get_blas_threads, set_blas_threads
from .trainer import TrainingDiverged

__all__ = ["train", "evaluate", "generate_from_checkpoint", "average", "CHECKPOINT_NAME"]

#: the file name of the checkpoint that :func:`train` writes into its output folder
CHECKPOINT_NAME = "checkpoint.npz"


def _print_metrics(metrics: dict) -> None:
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():  # a time in seconds (name ending in _s) to 0.1 s, other numbers to 1e-4
        shown = f"{value:.{1 if name.endswith('_s') else 4}f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {shown}")


def train(task: str, out, backend: str = "numpy", progress: bool = True, blas_threads: int | None = 1,
          resume: bool = False, pictures: Callable | None = None, checkpoint_every: int | None = None,
          overwrite: bool = False, keep_checkpoints: int | None = None, spelled: dict | None = None,
          **overrides) -> dict:
    """Train ``task`` with :data:`~minitransformer.train.tasks.DEFAULTS` changed by ``overrides``; write into ``out``.

    Parameters
    ----------
    task : str
        One of :data:`~minitransformer.train.tasks.TASKS`.
    out : str or Path
        The folder for the checkpoint, the metrics and the pictures (created).
    backend : str
        ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
    progress : bool
        Show the progress bar.
    blas_threads : int or None
        Threads for NumPy's BLAS during the run (1 is fastest for these small matrices; None leaves it alone); the
        process's setting before the call is put back after it.
    resume : bool
        Continue from ``out/checkpoint.npz`` with its settings: ``overrides`` that differ from them are refused (a
        setting newer than the checkpoint counts as its default), except ``steps``, which may be raised (it stretches
        the learning-rate schedule to the new length: a note on stderr gives the rate before and after), not lowered
        below the step the checkpoint holds. A checkpoint written on another backend continues with a fresh random
        stream seeded from it (a note on stderr says so).
    pictures : callable, optional
        ``pictures(setup, history, out, marks=marks) -> list of Path``: draws the trained run's pictures into
        ``out`` (the command line passes :func:`minitransformer.viz.training_pictures`: the curves and the attention
        maps, a few seconds of matplotlib). None (or False) draws none. The caller passes it because ``train`` is a
        layer below ``viz`` and does not import it. ``marks`` is always given: a dict of the steps for the curves
        to mark (:func:`~minitransformer.viz.training_curves`'s ``marks``), ``{"model kept (step M)": M}`` where
        the run put back the model of its best evaluation (``restored_step``: ``patience``, ``target``), with
        ``"diverged (step N)": N`` for a run that diverged, else empty.
    checkpoint_every : int, optional
        Also write the checkpoint every this many steps (it is always written at the end, and on Ctrl-C). Resumed
        without it (or without ``keep_checkpoints``), a run goes on with the value its checkpoint was written with.
    overwrite : bool
        Start a new run where ``out`` holds a checkpoint already, replacing it, and delete the checkpoints its run
        kept under their steps (``keep_checkpoints``: those its checkpoint names, nothing else), which would be
        averaged with the new run's, at the end of the new run (a run that fails before its first checkpoint leaves
        the old one whole; one stopped before its end names them in its checkpoints, and its ``resume``, or
        the next ``overwrite``, deletes them); without it (and without ``resume``) that checkpoint is kept and the run
        refused: a trained model is not lost to a forgotten ``--resume``.
    spelled : dict, optional
        How the advice of a divergence writes a setting, name -> format of ``{name}`` and ``{value}``: the command
        line gives ``{"clip": "--set clip={value}", "warmup": "--warmup {value}", ...}``; by default ``clip=1.0``, as
        here (:attr:`~minitransformer.train.Trainer.spelled`).
    keep_checkpoints : int, optional
        Also keep the last this many checkpoints written every ``checkpoint_every`` steps (which it needs), as
        ``checkpoint-step000400.npz`` ... beside ``checkpoint.npz``, to :func:`average`
        (:class:`~minitransformer.train.Trainer`'s ``keep_checkpoints``).
    **overrides
        Settings of the task (``steps``, ``d_model``, ``lr``, ...); None values are ignored.

    Returns
    -------
    dict
        The final metrics, with ``steps``, ``wall_time_s`` and ``stop_reason``.

    Raises
    ------
    TrainingInterrupted
        Ctrl-C: the checkpoint holds the end of the step in progress, and ``resume=True`` continues from it
        exactly as the uninterrupted run would have.
    TrainingDiverged
        The training loss, or the weights, became NaN or infinite (its ``step``, ``lr``, ``restored_step`` and
        ``checkpoint`` say where and what was kept). Where the run kept the model of its best evaluation
        (``patience``, ``target``, ``restore_best``), the checkpoint holds it, to evaluate (the message says which
        step), and the error is raised once that model's ``metrics.json`` and pictures are written (see the
        module's notes: ``stop_reason`` "diverged", the message under ``"error"``); where they could not be, the
        message says so and why (the error is chained from that failure). Else nothing new is written: the
        checkpoint written last, if any, stays, and so do the ``metrics.json`` and pictures in ``out``, if any.

    Examples
    --------
    A two-step run of a tiny model (what it prints is left out here):

    >>> import contextlib, io, os, tempfile
    >>> with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
    ...     metrics = train("reverse", out, progress=False, blas_threads=None, pictures=False,
    ...                     steps=2, batch_size=8, n_train=16, n_val=4, n_test=4, min_len=3, max_len=5,
    ...                     d_model=16, heads=2, layers=1, d_ff=32)
    ...     files = sorted(os.listdir(out))
    >>> files, metrics["steps"], metrics["stop_reason"]
    (['checkpoint.npz', 'metrics.json'], 2, 'steps')
    """
    if pictures is False:
        pictures = None
    if pictures is not None and not callable(pictures):
        raise TypeError(f"train: pictures must be a function (setup, history, out, marks) -> paths, or None; got "
                        f"{pictures!r} (the command line's is minitransformer.viz.training_pictures)")
    out = Path(out)
    path = out / CHECKPOINT_NAME
    overrides = {k: v for k, v in overrides.items() if v is not None}
    with _blas_threads(blas_threads), _backend.use(backend), contextlib.ExitStack() as running:
        if resume:
            if not path.exists():  # (read_checkpoint would say "no such file", of a file the user never named)
                raise CheckpointError(f"train --resume: {out} holds no run to continue (no {CHECKPOINT_NAME}); give "
                                      "the --out of the run, or start one there without --resume")
            saved = read_checkpoint(path)
            if saved.extra.get("task") != task:
                raise CheckpointError(f"{path} was written by task {saved.extra.get('task')!r}, not {task!r}")
            settings = tasks.settings(task, **_saved_task(saved)[1])  # (a setting newer than the checkpoint: its
            checked = tasks.settings(task, **{**settings, **overrides})  # default); a bad value is refused here too
            overrides = {k: checked[k] for k in overrides}
            other = {k: v for k, v in overrides.items() if k != "steps" and settings.get(k, v) != v}
            if other:  # ignored, they would be a silent surprise: --resume trains on with the checkpoint's settings
                given = ", ".join(f"{k}={v!r} (saved: {settings[k]!r})" for k, v in other.items())
                raise ValueError(f"train --resume continues with the checkpoint's settings; only steps may change, "
                                 f"got {given}; to train another model shape, schedule, ..., start a new run "
                                 "(another --out, or --overwrite)")
            if overrides.get("steps", saved.step) < saved.step:
                raise ValueError(f"train --resume: steps={overrides['steps']} is below the step the checkpoint "
                                 f"holds, {saved.step}; give more steps, or evaluate the checkpoint as it is")
            setup = _build_saved(saved, task, {**settings, **{k: v for k, v in overrides.items() if k == "steps"}})
            # the copies a run keeps are part of it: resumed without the options, it goes on keeping them
            copies = saved.extra.get("checkpoints") or {}
            if not isinstance(copies, dict):
                raise CheckpointError(f"checkpoint {str(path)!r}: field 'extra/checkpoints' must be a dict (every, "
                                      f"keep) or null, got {shown(copies, 60)}")
            checkpoint_every = copies.get("every") if checkpoint_every is None else checkpoint_every
            keep_checkpoints = copies.get("keep") if keep_checkpoints is None else keep_checkpoints
        else:
            if path.exists() and not overwrite:
                raise FileExistsError(f"{path} holds a run already ({_described(path)}): add --resume to continue "
                                      "it, or --overwrite to start again and replace it")
            setup = tasks.build(task, **overrides)
        s = setup.settings
        _writable_folder(out)
        running.enter_context(_one_run_at_a_time(out))  # held to the end of the run
        if not resume and not overwrite and path.exists():  # written by a run that ended since the look above
            raise FileExistsError(f"{path} holds a run already ({_described(path)}), written while this one was being "
                                  "built: add --resume to continue it, or --overwrite to start again and replace it")
        _remove_stale_temporaries(path)  # left by a run killed while writing; no write of ours runs yet
        _remove_stale_temporaries(_kept_path(path, "*"))  # ... and while keeping one (a pattern: any step)
        # the copies a replaced run kept (--overwrite), read before the new run writes; its checkpoints name them, so
        # that a run killed before it deleted them deletes them when resumed
        replaced = _kept_by(path, path, saved.extra.get(REPLACED_COPIES)) if resume else \
            _kept_by_replaced(path) if overwrite else []
        print(f"task {task}: {type(setup.model).__name__} with {setup.model.num_parameters():,} parameters on "
              f"backend {_backend.current().name}")
        print("settings: " + ", ".join(f"{k}={v}" for k, v in s.items()))
        trainer = setup.trainer(log_every=max(1, min(50, s["eval_every"], s["steps"] // 30)), progress=progress,
                                checkpoint_path=path, checkpoint_every=checkpoint_every,
                                keep_checkpoints=keep_checkpoints,
                                extra={"task": task, "settings": s, **({REPLACED_COPIES: replaced} if replaced else {}),
                                       "checkpoints": {"every": checkpoint_every, "keep": keep_checkpoints}})
        trainer.spelled, trainer.warmup = dict(spelled or {}), s.get("warmup")
        if resume:
            trainer.load(path, rng="reseed")  # a run written on another backend continues, with a fresh random stream
            print(f"resumed from {path} at step {trainer.step}")
            _note_resumed(saved, trainer, setup)
            if trainer.early_stop is not None and trainer.step < s["steps"]:
                print(f"the run stopped early at step {trainer.step} ({trainer.early_stop}), as it would have with "
                      f"--steps {s['steps']}: nothing more to train")
        diverged = None
        try:
            trainer.fit(setup.train_data, s["steps"])
        except TrainingDiverged as e:  # raised below, recorded first where a model was kept
            diverged = e
        finally:  # not before: a new run that fails before its first checkpoint leaves the old run whole
            _remove_kept_by_replaced(path, replaced, trainer)
        if diverged is None:
            _note_best(trainer)
            return _record(task, backend, setup, trainer, out, pictures)
        if trainer.restored_step is None:  # no model kept by fit: that of this run's last checkpoint, if it wrote one
            kept = _put_back_checkpoint(trainer, setup, path)
            if kept is None:  # none: nothing new written, the files in --out (if any) stay the run's before, whole
                raise diverged from None
            diverged = diverged.restated(f"{diverged}; {path} holds the parameters of step {kept}, its last "
                                         "checkpoint before", restored_step=kept, checkpoint=path)
        _record_diverged(task, backend, setup, trainer, out, pictures,
                         diverged.restated(f"{diverged}; measure it with: minitransformer evaluate {path}"))


def _put_back_checkpoint(trainer, setup, path: Path) -> int | None:
    """After a divergence that kept no model: put the parameters of this run's checkpoint at ``path`` (the last it
    wrote, finite: fit checks before it writes) back into the model, and return its step (as
    :attr:`Trainer.restored_step`, the step of the model the record is of); None where this run wrote none. Its
    record is then written beside it: a run before's ``metrics.json`` and pictures (``--overwrite``, ``--resume``)
    would be left beside another model's checkpoint."""
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError:  # none there
        return None
    if ckpt.extra.get(RUN_ID) != trainer.run_id:  # the run before's: this one wrote none
        return None
    setup.model.load_state_dict(ckpt.model_state)
    trainer.restored_step = ckpt.step
    return ckpt.step


@contextlib.contextmanager
def _blas_threads(n: int | None):
    """``n`` BLAS threads inside the block (None: left alone), the previous setting put back after it: train or evaluate
    called from Python (a notebook, a server) leaves the process's setting as it found it. Where no OpenBLAS takes it,
    nothing changes (the command line says so, given --blas-threads)."""
    before = get_blas_threads() if n else None
    if n:
        set_blas_threads(n)
    try:
        yield
    finally:
        if before is not None:
            set_blas_threads(before)


def _record_diverged(task: str, backend: str, setup, trainer, out: Path, pictures, diverged) -> None:
    """Record a run that ``diverged`` (the :class:`TrainingDiverged` to raise) with the model of its best evaluation
    put back and saved by fit (:func:`_record`), then raise ``diverged``; a failure while recording does not hide
    the divergence: ``diverged`` is raised all the same, its message saying so and why, chained from that failure."""
    try:
        _record(task, backend, setup, trainer, out, pictures, diverged)
    except Exception as failure:
        raise diverged.restated(f"{diverged}; its record (metrics.json, pictures) could not be written: "
                                f"{type(failure).__name__}: {failure}") from failure
    raise diverged from None


def _record(task: str, backend: str, setup, trainer, out: Path, pictures, diverged=None) -> dict:
    """Measure the model ``trainer``'s run ends with (the checkpoint's), print its metrics and write the run's record
    into ``out``: ``metrics.json`` (atomically, as the checkpoint) and the pictures; return the metrics. A run that
    ``diverged`` (the :class:`TrainingDiverged` to raise; fit put back and saved the model of its best evaluation) is
    recorded as a finished one, with that error's message under ``"error"``."""
    setup.model.eval()  # the held-out figures and the example without dropout
    metrics = setup.final_metrics(setup.model)  # of the model fit left: the best one, with --patience or --target
    metrics.update(steps=trainer.step, wall_time_s=round(trainer.elapsed, 2),  # a resumed run's earlier steps too
                   stop_reason=trainer.stop_reason)
    if trainer.restored_step is not None:
        metrics["restored_step"] = trainer.restored_step
    print(f"\nfinal metrics ({'validation text' if setup.test is None else 'held-out test split'}):")
    _print_metrics(metrics)
    tasks.REGISTRY[task].show(setup)  # what the model does with one held-out input
    record = {"task": task, "metrics": metrics, "settings": setup.settings, "backend": backend}
    if diverged is not None:
        record["error"] = str(diverged)
    text = _json_text(record)
    trainer._check_folder_there()  # (--out removed since the checkpoint: not made anew for the metrics)
    _write_atomically(out / "metrics.json", lambda f: f.write(text.encode("utf-8")))  # as the checkpoint
    written = [trainer.checkpoint_path, out / "metrics.json",
               *(pictures(setup, trainer.history, out, marks=_marks_of_run(trainer, diverged)) if pictures else [])]
    print("\nwrote:")
    for p in written:
        print(f"  {p}")
    return metrics


def _json_text(record: dict) -> str:
    """``record`` as JSON text, as RFC 8259 has it: a number that is not finite (a perplexity past e^709.78, a loss
    that overflowed) is written ``null``, and ``"not_finite"`` names it by its path with its value as text
    (``{"metrics/val_perplexity": "inf"}``); Python's ``NaN``/``Infinity`` are not JSON, and strict readers (``jq``,
    JavaScript's ``JSON.parse``) refuse the whole file for one of them."""
    not_finite = {}

    def finite(value, where: str):
        if isinstance(value, float) and not math.isfinite(value):
            not_finite[where] = str(value)  # "inf", "-inf", "nan": null alone would not say which
            return None
        if isinstance(value, dict):
            return {k: finite(v, f"{where}/{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [finite(v, f"{where}/{i}") for i, v in enumerate(value)]
        return value

    safe = finite(record, "")
    if not_finite:
        safe["not_finite"] = not_finite
    return json.dumps(safe, indent=2, allow_nan=False)


def _marks_of_run(trainer, diverged=None) -> dict[str, int]:
    """The steps the curves of ``trainer``'s run mark, label -> step: where it ``diverged`` (the
    :class:`TrainingDiverged`, if any) was found, and the model kept where fit put back that of the best evaluation
    (``restored_step``); empty for a run that did neither."""
    marks = {} if diverged is None else {f"diverged (step {diverged.step})": diverged.step}
    if trainer.restored_step is not None:
        marks[f"model kept (step {trainer.restored_step})"] = trainer.restored_step
    return marks


#: the key of a checkpoint's ``extra`` naming the copies of the run it replaced (``--overwrite``), to delete
REPLACED_COPIES = "replaced_copies"


def _kept_by_replaced(path: Path) -> list[str]:
    """The checkpoints that the run whose checkpoint is at ``path``, to be replaced by a new one (``--overwrite``),
    kept under their steps, and those of the run it replaced if it was stopped before it deleted them: those it
    names, of their form, in its folder (a checkpoint cannot make a run delete anything else), to delete with
    :func:`_remove_kept_by_replaced`."""
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError:  # gone or unreadable: it names nothing
        return []
    state = ckpt.trainer_state
    own = _kept_by(path, path, state.get("kept_checkpoints") if isinstance(state, dict) else None)
    # and those of a run it replaced in its turn, where it was stopped before deleting them
    return list(dict.fromkeys(own + _kept_by(path, path, ckpt.extra.get(REPLACED_COPIES))))


def _remove_kept_by_replaced(path: Path, names: list[str], trainer) -> None:
    """Delete the copies ``names`` that a run replaced by ``trainer``'s kept (:func:`_kept_by_replaced`), once
    ``trainer`` wrote its checkpoint at ``path`` (so a new run that fails first leaves the old one whole), but for
    those ``trainer`` wrote again. Left there, ``average checkpoint-step*.npz`` would take them (refusing them: their
    run is another, but its files would still be in the way)."""
    if not names:
        return
    try:
        if read_checkpoint(path).extra.get(RUN_ID) != trainer.run_id:  # the old run's still: it keeps its copies
            return
    except CheckpointError:
        return
    removed = [name for name in names if name not in trainer.kept_checkpoints and (path.parent / name).is_file()]
    for name in removed:
        (path.parent / name).unlink(missing_ok=True)
    if removed:
        print(f"removed the {len(removed)} checkpoint(s) the replaced run kept: {', '.join(removed)}")


def _note_best(trainer) -> None:
    """Say which evaluation's parameters the run ends with, where it keeps the best (``--patience``, ``--target``):
    the best one's, put back, or the last one's (the best, said once, or better than the best on the ``eval_every``
    grid, or resumed from a checkpoint that held no copy of the best: a warning said so)."""
    if not trainer.restore_best or trainer.best_seen_step is None:
        return
    name = trainer.monitor
    step, value = trainer.history[name][-1]  # the last evaluation: of the last parameters
    if trainer.restored_step is not None:
        print(f"restored the model of the best evaluation: step {trainer.restored_step}, {name} "
              f"{trainer.best_seen:.4f} (the last, at step {step}: {value:.4f})")
    elif step == trainer.best_seen_step:  # the last evaluation is the best: said once
        print(f"kept the last model, that of the best evaluation: step {step}, {name} {value:.4f}")
    else:
        print(f"kept the last model: step {step}, {name} {value:.4f} (the best evaluation every eval_every steps: "
              f"step {trainer.best_seen_step}, {trainer.best_seen:.4f})")


def _note_resumed(saved, trainer, setup) -> None:
    """Say on stderr what a resumed run does differently from the uninterrupted one: a larger ``steps`` stretches the
    learning-rate schedule (the rate jumps to where the longer schedule is at this step), and a checkpoint written on
    another backend continues with a fresh random stream (its generator's state cannot be restored here)."""
    if trainer.rng_reseeded:
        print(f"minitransformer: train --resume: the checkpoint was written on another backend (its random generator "
              f"is {saved.rng_state.get('bit_generator')}); the run continues with a fresh random stream seeded from "
              f"it, not the one the uninterrupted run would have drawn (dropout {setup.settings['dropout']})",
              file=sys.stderr)
    groups = (saved.optimizer_state or {}).get("param_groups") or []
    if not groups or "lr" not in groups[0] or trainer.early_stop is not None:  # (no step will run at that rate)
        return
    before, after = float(np.asarray(groups[0]["lr"])), setup.optimizer.param_groups[0]["lr"]
    old_steps, new_steps = saved.extra["settings"].get("steps"), setup.settings["steps"]
    if old_steps != new_steps and not np.isclose(before, after, rtol=1e-9, atol=0.0):
        print(f"minitransformer: train --resume: --steps {new_steps} (was {old_steps}) stretches the "
              f"{setup.settings['schedule']} schedule: the learning rate jumps from {before:.3g} to {after:.3g} at "
              f"step {trainer.step + 1}, where the longer schedule is (no new warm-up)", file=sys.stderr)


#: generate's options that only some tasks read (those their ``answer`` takes), with their names on the command line
_OPTIONS = {"beam": "--beam", "alpha": "--alpha", "max_new_tokens": "--max-new-tokens", "temperature": "--temperature",
            "top_k": "--top-k", "top_p": "--top-p", "seed": "--seed"}


def _described(path: Path) -> str:
    """``task reverse, step 400`` for the checkpoint at ``path``, or why it cannot be read."""
    try:
        saved = read_checkpoint(path)
    except (CheckpointError, OSError) as e:
        return f"unreadable: {e}"
    return f"task {saved.extra.get('task')}, step {saved.step}"


#: the file a run holds locked in its folder while it runs (removed at its end)
LOCK_NAME = ".train.lock"


@contextlib.contextmanager
def _one_run_at_a_time(out: Path):
    """Hold ``out``'s :data:`LOCK_NAME` locked while the block runs: a second run started into the same folder meanwhile
    is refused (FileExistsError), where both would have written its checkpoint, the later one's kept. The lock is the
    system's (``flock``): a run killed at once leaves none held. Where there is none (Windows), nothing is held. A lock
    file the system refuses to remove at the end is a note on stderr, never an error hiding the block's own.

    The file is removed at the end, still locked: a run that opened it just before gets the lock of a file no longer
    in the folder once it is let go, and so checks that the file it locked is the folder's, and else opens it again
    (without, it ran beside a third run that made the folder's lock anew: two runs writing into one folder)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    lock = out / LOCK_NAME
    while True:
        f = open(lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise FileExistsError(f"{out} is being written by another run (process {holder}): "
                                  "wait for it to end, or give another --out") from None
        try:
            if os.path.samestat(os.fstat(f.fileno()), os.stat(lock)):  # the folder's lock file, not a removed one
                break
        except FileNotFoundError:
            pass
        f.close()  # opened just before the run that held it removed it: the folder's own is opened anew
    with f:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            try:
                lock.unlink(missing_ok=True)  # before the lock is let go with the file: the next run makes its own
            except OSError as e:  # (a folder made read-only meanwhile) the error in flight, if any, is the one to see
                print(f"minitransformer: {lock} could not be removed ({e.strerror or e}); it holds no run once this "
                      "one ends", file=sys.stderr)


def _writable_folder(out: Path) -> None:
    """Make ``out`` and write a file in it now: a folder that cannot be made or written fails before the run."""
    if out.is_symlink() and not out.exists():  # (mkdir says only "File exists", of a name that shows no file)
        raise FileExistsError(f"--out {str(out)!r} is a symbolic link to {os.readlink(out)!r}, which does not exist: "
                              "make that folder, or give another --out")
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:  # named by the folder given, not by the probe's random name
        raise OSError(e.errno, f"--out {str(out)!r} cannot be written to ({e.strerror}): give another folder") \
            from None


#: the control characters, C0, DEL and C1, but newline and tab, shown escaped since ESC begins the terminal's escape
#: sequences (OSC 52 writes the clipboard, OSC 0 the window title), and any model's output may hold them
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """``text`` to print on a terminal: each control character but newline and tab written as its escape, ``\\x1b``,
    so that model output never drives the terminal."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True)
class _Trained:
    """What ``generate`` needs of a checkpoint, as a :class:`~minitransformer.train.tasks.TaskSetup` holds it: the
    task's name and settings, the model with its weights, the tokenizer."""

    name: str
    settings: dict
    model: object
    tokenizer: object


def _saved_task(ckpt) -> tuple[str, dict]:
    """The task and settings a checkpoint written by :func:`train` names, refused where its model is not the one the
    task builds (a language model's checkpoint that says ``reverse``: its model would be run as a Transformer)."""
    task, settings = ckpt.extra.get("task"), ckpt.extra.get("settings")
    if not isinstance(task, str) or task not in tasks.REGISTRY or not isinstance(settings, dict):
        raise CheckpointError(f"checkpoint {ckpt.path!r} was not written by `minitransformer train` (it names no "
                              "task); load it with minitransformer.train.load_checkpoint in Python")
    wanted = tasks.REGISTRY[task].model_type
    if ckpt.model_type != wanted:
        theirs = [t.name for t in tasks.REGISTRY.values() if t.model_type == ckpt.model_type]
        fits = f" (the model of the {', '.join(theirs)} task{'s' if len(theirs) > 1 else ''})" if theirs else ""
        raise CheckpointError(f"checkpoint {ckpt.path!r} names the task {task!r}, whose model is a {wanted}, but "
                              f"holds a {ckpt.model_type!r}{fits}: a hand-made or edited file")
    return task, settings


def _check_saved_settings(ckpt, task: str, settings: dict) -> None:
    """Refuse a checkpoint's settings that disagree with its model's config (``d_model``, ``heads``, ``d_ff``,
    ``layers``, ``norm_first``; ``max_len`` where the task's model takes it as it is), before any data are made.
    (Each setting's own range, the most examples included, is :func:`~minitransformer.train.tasks.build`'s.)"""
    where = f"checkpoint {ckpt.path!r}"
    config = ckpt.config if isinstance(ckpt.config, dict) else {}
    same = {"d_model": ("d_model",), "heads": ("heads",), "d_ff": ("d_ff",), "norm_first": ("norm_first",),
            "layers": ("num_layers", "num_encoder_layers", "num_decoder_layers")}
    if tasks.REGISTRY[task].kind != "seq2seq":  # (a seq2seq model's positions are computed from its lengths)
        same["max_len"] = ("max_len",)
    for name, keys in same.items():
        for key in keys:
            if name in settings and key in config and settings[name] != config[key]:
                raise CheckpointError(f"{where}: its setting {name}={shown(settings[name], 40)} disagrees with its "
                                      f"model's config, {key}={shown(config[key], 40)}: a hand-made or edited file")


def _build_saved(ckpt, task: str, settings: dict):
    """``tasks.build(task, **settings)`` for a checkpoint's settings, refused if its data are gone or changed: a text
    file of one's own, moved or edited since (its digest is in the settings), or data that no longer give the
    tokenizer the checkpoint saved (the model would read them with other ids)."""
    where = f"checkpoint {ckpt.path!r}"
    _check_saved_settings(ckpt, task, settings)
    try:
        setup = tasks.build(task, **settings)
    except CorpusError as e:
        data = ("pairs", settings["pairs"]) if "pairs" in settings else ("text", settings.get("corpus"))
        raise CheckpointError(f"{where} was trained on the {data[0]} {data[1]!r}: {e.problem}") from None
    except ValueError as e:  # a setting out of its range (an edited file's n_test=10**9): before any data are made
        raise CheckpointError(f"{where}: its settings do not make the task: {e}") from None
    if ckpt.tokenizer is not None and not _same_tokenizer(ckpt.tokenizer, setup.tokenizer.to_dict()):
        then, now = _vocab(ckpt.tokenizer), _vocab(setup.tokenizer.to_dict())
        new, gone = [p for p in now if p not in then], [p for p in then if p not in now]
        changes = "; ".join(  # (each piece cut short: a hand-made file's may be any length)
            f"{what}: {', '.join(shown(p, 30) for p in pieces[:10])}{', ...' if len(pieces) > 10 else ''}"
            for what, pieces in (("new", new), ("gone", gone)) if pieces) or "another order"
        raise CheckpointError(f"{where}: the {task} task's data no longer give the tokenizer it saved ({changes})")
    return setup


def _same_tokenizer(saved, rebuilt: dict) -> bool:
    """Whether a checkpoint's tokenizer data ``saved`` are those its task's data give now, ``rebuilt``. A word
    tokenizer saved before combining marks stayed inside their words has no ``"marks_in_words"`` (it is read with
    the rule of then); where its vocabulary holds no combining mark, its texts had none to cut otherwise."""
    if saved == rebuilt:
        return True
    if not isinstance(saved, dict):
        return False
    if saved.get("type") == rebuilt.get("type") == "pair":
        return all(_same_tokenizer(saved.get(side), rebuilt[side]) for side in ("source", "target"))
    if saved.get("type") != "word" or "marks_in_words" in saved:
        return False
    pieces = saved.get("vocab", [])
    return (saved == {key: value for key, value in rebuilt.items() if key != "marks_in_words"}
            and not any(unicodedata.category(c).startswith("M") for piece in pieces for c in str(piece)))


def _vocab(state: dict) -> list:
    """The pieces a tokenizer's :meth:`~minitransformer.data.Tokenizer.to_dict` data hold (both sides of a pair's)."""
    if state.get("type") == "pair":
        return [*_vocab(state.get("source", {})), *_vocab(state.get("target", {}))]
    return list(state.get("vocab", []))


def _setup_from_checkpoint(path):
    """The task setup a checkpoint came from, with the checkpoint's weights loaded."""
    ckpt = read_checkpoint(path)
    task, settings = _saved_task(ckpt)
    setup = _build_saved(ckpt, task, {**settings, "target": None})  # not trained from here: an old checkpoint's
    load_checkpoint(path, setup.model)                                # target (unchecked then, 99 for 99%) is moot
    setup.model.eval()  # measured and run, never trained from here: no dropout
    return setup, ckpt


def _trained_model(path):
    """What ``generate`` needs, from the checkpoint alone when it holds the tokenizer: the model with its weights,
    the tokenizer, the task's name and settings. No data are rebuilt, so a charlm model trained on a text
    file runs without the file. A checkpoint without a tokenizer (saved by hand) rebuilds its task."""
    ckpt = read_checkpoint(path)
    task, settings = _saved_task(ckpt)
    if ckpt.tokenizer is None:
        return _setup_from_checkpoint(path)[0]
    model = tasks.model_from_checkpoint(ckpt)
    try:
        tokenizer = tokenizer_from_dict(ckpt.tokenizer)
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r}: its tokenizer cannot be read: {e}") from e
    _check_tokenizer_fits(ckpt, tokenizer, model)
    load_checkpoint(path, model)
    model.eval()
    return _Trained(task, tasks.settings(task, **{**settings, "target": None}), model, tokenizer)


def _check_tokenizer_fits(ckpt, tokenizer, model) -> None:
    """Refuse a tokenizer that gives ids the model has no rows for (more pieces than the config's vocabulary: the
    model would fail on the first such id, mid-generation)."""
    config = model.config
    if type(model).__name__ == "Transformer":
        pair = hasattr(tokenizer, "source")
        sides = (("source", tokenizer.source if pair else tokenizer, "src_vocab"),
                 ("target", tokenizer.target if pair else tokenizer, "tgt_vocab"))
    else:
        sides = (("", tokenizer, "vocab" if "vocab" in config else "vocab_size"),)
    for side, tok, key in sides:
        if tok.vocab_size > config[key]:
            raise CheckpointError(
                f"checkpoint {ckpt.path!r}: its {side + ' ' if side else ''}tokenizer has {tok.vocab_size} pieces, "
                f"more than the model's vocabulary, {key}={config[key]}: a hand-made or edited file")


def evaluate(path, backend: str = "numpy", blas_threads: int | None = 1) -> dict:
    """Measure a trained checkpoint again on its task's held-out data (rebuilt from the saved settings).

    Parameters
    ----------
    path : str or Path
        A checkpoint written by :func:`train` (it names its task and settings).
    backend : str
        ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
    blas_threads : int or None
        Threads for NumPy's BLAS during the call (None leaves it alone); the setting before it is put back after it.

    Returns
    -------
    dict
        The task's final metrics (as :func:`train` prints them) and ``steps``.

    Examples
    --------
    A checkpoint of an untrained model, saved the way :func:`train` saves it:

    >>> import contextlib, io, os, tempfile
    >>> from minitransformer.train import save_checkpoint
    >>> setup = tasks.build("reverse", steps=2, batch_size=8, n_train=16, n_val=4, n_test=4, min_len=3, max_len=5,
    ...                     d_model=16, heads=2, layers=1, d_ff=32)
    >>> with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
    ...     path = save_checkpoint(os.path.join(out, CHECKPOINT_NAME), setup.model,
    ...                            extra={"task": "reverse", "settings": setup.settings})
    ...     metrics = evaluate(path, blas_threads=None)
    >>> sorted(metrics)
    ['n_test', 'steps', 'test_exact_sequence_accuracy', 'test_loss', 'test_token_accuracy']
    """
    # (rebuilding the task seeds: not the caller's numbers)
    with _blas_threads(blas_threads), _backend.random_state_kept(), _backend.use(backend):
        setup, ckpt = _setup_from_checkpoint(path)
        metrics = setup.final_metrics(setup.model)
        metrics["steps"] = ckpt.step
        if _restored(ckpt):
            metrics["restored_step"] = ckpt.trainer_state.get("restored_step")
        print(f"checkpoint {path}: task {setup.name}, {ckpt.model_type} trained for {ckpt.step} steps"
              + _weights_of(ckpt))
        _print_metrics(metrics)
    return metrics


def generate_from_checkpoint(path, text: str | None = None, backend: str = "numpy", beam: int = 1,
                             max_new_tokens: int = 200, temperature: float = 0.8, top_k: int | None = 10,
                             seed: int = 0, alpha: float = 0.6, option: str | None = None,
                             top_p: float | None = None) -> str:
    """Run a checkpoint on ``text``: a digit sequence (digit tasks), a date (dates), a sentence (translate), a review
    (classify) or a prompt (charlm).

    Parameters
    ----------
    path : str or Path
        A checkpoint written by :func:`train`.
    text : str, optional
        The input; None: an example input of the task, named on stderr. An empty one (or, but for charlm, blank)
        is refused. Options the task does not read (``beam`` for charlm, ``temperature`` for the others, ...),
        given other than their defaults, are named on stderr as ignored.
    backend : str
        ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
    beam : int
        Beam size of a seq2seq task (1: greedy decoding).
    max_new_tokens, temperature, top_k, seed, top_p
        Sampling of the charlm task (see :func:`~minitransformer.train.generate`); ``max_new_tokens`` counts
        the model's tokens: characters, or the pieces of a :class:`~minitransformer.data.BPETokenizer`. ``seed``
        seeds this sampling alone: after the call the caller's random numbers (every backend's generator,
        :func:`~minitransformer.backend.host_rng`) go on as they were
        (:func:`~minitransformer.backend.random_state_kept`).
    alpha : float
        The beam search's length penalty (:func:`~minitransformer.train.length_penalty`'s ``alpha``): 0.6, the
        paper's (section 6.1); 0 ranks the hypotheses by log P alone. A finite number >= 0, checked for every task,
        before the checkpoint is read.
    option : {"--input", "--prompt"}, optional
        The command-line option ``text`` came from: ``--prompt`` is a charlm checkpoint's, ``--input`` the other
        tasks'; the other one is refused by name, rather than read as if it were the right one.

    Returns
    -------
    str
        What is printed: the output digits, the predicted class with its probability, or the text.

    Examples
    --------
    >>> import contextlib, io, os, tempfile
    >>> from minitransformer.train import save_checkpoint
    >>> setup = tasks.build("reverse", steps=2, batch_size=8, n_train=16, n_val=4, n_test=4, min_len=3, max_len=5,
    ...                     d_model=16, heads=2, layers=1, d_ff=32)
    >>> with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
    ...     path = save_checkpoint(os.path.join(out, CHECKPOINT_NAME), setup.model,
    ...                            extra={"task": "reverse", "settings": setup.settings})
    ...     result = generate_from_checkpoint(path, "3 1 4")
    >>> len(result.split()) <= 3 + 2          # untrained: any tokens, at most len + 2 of them before <eos>
    True
    """
    alpha = require_real("generate", "alpha", alpha, low=0.0)  # (beam_search checks it only where it runs)
    options = dict(beam=beam, alpha=alpha, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                   top_p=top_p, seed=seed)
    # the model rebuilt from the task's seed, the sampling's seed: the caller's random numbers go on as they were
    with _backend.random_state_kept(), _backend.use(backend):
        setup = _trained_model(path)
        task = tasks.REGISTRY[setup.name]
        if text is not None and option is not None and option != task.option:
            raise ValueError(f"generate: the {task.name} model reads {task.reads}: give it with {task.option}, not "
                             f"{option}")
        example = None if task.example is None else task.example(setup)
        if text is None and example is None:
            raise ValueError(f"generate: the {task.name} model needs {task.reads}: give it with {task.option}")
        reads = inspect.signature(task.answer).parameters  # the options the task reads: its answer's parameters
        result = task.answer(setup, text, example, **{k: v for k, v in options.items() if k in reads})
        defaults = inspect.signature(generate_from_checkpoint).parameters
        ignored = [flag for name, flag in _OPTIONS.items()
                   if name not in reads and options[name] != defaults[name].default]
        if ignored:
            print(f"minitransformer: generate: the {task.name} task does not read {', '.join(ignored)}; ignored",
                  file=sys.stderr)
        if text is None:
            print(f"minitransformer: generate: no {task.option} given; the example {example!r}", file=sys.stderr)
        print(_printable(result))
    return result


def _weights_of(ckpt) -> str:
    """Which weights a checkpoint holds, where they are not those of its step: ``, the average of steps 600, 800,
    1000`` for one :func:`average` wrote, ``, holding the model of its best evaluation, step 600 (...)`` for one
    whose run put back an earlier step's (``restore_best``); else nothing."""
    averaged = ckpt.extra.get("averaged")
    if isinstance(averaged, dict):
        return ", the average of steps " + ", ".join(map(str, averaged.get("steps", [])))
    if _restored(ckpt):
        return (f", holding the model of its best evaluation, step {ckpt.trainer_state.get('restored_step', '?')} "
                f"(put back {_put_back_when(ckpt)}: --patience, --target)")
    return ""


def average(paths, out, overwrite: bool = False):
    """Write the mean of the weights of the checkpoints ``paths`` to ``out``: a checkpoint ``evaluate`` and
    ``generate`` read like any other (:func:`~minitransformer.train.average_checkpoints`, as the paper's section 6.1
    averages its last 5 or 20 checkpoints).

    The task, its settings, the tokenizer and the model's configuration are the last checkpoint's, and must be those
    of every other; the step and the history are the last one's. No optimizer state, schedule or random state is
    written: the average is a model to evaluate, and ``train --resume`` refuses it.

    Parameters
    ----------
    paths : list of str or Path
        Checkpoints of one run (``train --keep-checkpoints N`` keeps its last N), in any order: they are taken in
        the order of their steps, and the last one's step and history are the average's. Two of the same step are
        refused: the same weights would count twice (``checkpoint.npz`` is the last kept checkpoint again where
        the run ended on the ``checkpoint_every`` grid), and so is a ``checkpoint.npz`` holding the model of its
        best evaluation (``--patience``, ``--target``), which is not that of its step.
    out : str or Path
        The file to write (atomically); one that exists is refused unless ``overwrite``.
    overwrite : bool
        Replace ``out`` if it exists (never one of ``paths``).

    Returns
    -------
    Checkpoint
        The average (:func:`~minitransformer.train.average_checkpoints`).

    Examples
    --------
    Two checkpoints of an untrained model, one of them with its weights doubled:

    >>> import contextlib, io, os, tempfile
    >>> setup = tasks.build("reverse", steps=2, batch_size=8, n_train=16, n_val=4, n_test=4, min_len=3, max_len=5,
    ...                     d_model=16, heads=2, layers=1, d_ff=32)
    >>> extra = {"task": "reverse", "settings": setup.settings}
    >>> with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
    ...     first = save_checkpoint(os.path.join(tmp, "a.npz"), setup.model, step=1, extra=extra)
    ...     _ = setup.model.load_state_dict({k: 2 * v for k, v in setup.model.state_dict().items()})
    ...     second = save_checkpoint(os.path.join(tmp, "b.npz"), setup.model, step=2, extra=extra)
    ...     avg = average([first, second], os.path.join(tmp, "avg.npz"))
    ...     written, w = read_checkpoint(os.path.join(tmp, "avg.npz")), read_checkpoint(first).model_state
    >>> written.step, written.extra["averaged"]["steps"], written.optimizer_state
    (2, [1, 2], None)
    >>> all(np.allclose(written.model_state[name], 1.5 * w[name]) for name in w)   # the mean of w and 2 w
    True
    """
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"average: --out {str(out)!r} is a folder; give the file to write, such as "
                         f"{str(out / 'average.npz')!r}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"average: {out} exists ({_described(out)}); add --overwrite to replace it")
    paths = [Path(p) for p in paths]
    if out.exists() and any(p.exists() and p.samefile(out) for p in paths):  # --overwrite or not: an input is lost
        raise ValueError(f"average: --out {str(out)!r} is one of the checkpoints averaged; the average would replace "
                         "it: give another file")
    avg = average_checkpoints(paths)
    steps = avg.extra["averaged"]["steps"]
    with _backend.use("numpy"):  # the weights are NumPy arrays: no device needed to write them
        model = tasks.model_from_checkpoint(avg)
        model.load_state_dict(avg.model_state)
        save_checkpoint(out, model, step=avg.step, rng_state=None, tokenizer=avg.tokenizer, history=avg.history,
                        extra=avg.extra)
    what = f"task {avg.extra['task']}" if "task" in avg.extra else avg.model_type
    print(f"averaged {len(paths)} checkpoints of {what}, steps {', '.join(map(str, steps))}")
    print(f"wrote {out}: the mean weights, a model to evaluate or generate with (no optimizer state: not to resume "
          "training from)")
    return avg
