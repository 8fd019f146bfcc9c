r"""The training loop: forward, loss, backward, clip, step; with logging, evaluation, early stopping and checkpoints.

One step is the five lines every framework has (paper section 5: Adam, the warm-up schedule)::

    loss = loss_fn(model, batch)          # forward pass and the loss, a 0-d Tensor
    loss.backward()                       # gradients of every parameter
    clip_grad_norm_(params, clip)         # optional: cap the global gradient norm
    optimizer.step(); optimizer.zero_grad()
    schedule.step()                       # optional: the next step's learning rate

With ``accumulate=N`` (gradient accumulation, as nanoGPT's ``gradient_accumulation_steps``) the first two lines
run once for each of N micro-batches, each loss weighted by its share of the N micro-batches' tokens, so that the
gradients add up to those of one batch N times larger; the other lines run once, on the sum.

:class:`Trainer` wraps those lines with what a real run needs:

* **logging without stalls** -- the losses add up as a backend array (:class:`RunningMean`) and
  reach the host only every ``log_every`` steps, never with an ``.item()`` per step;
* **evaluation** every ``eval_every`` steps (``model.eval()``, no graph), **early stopping** when
  the monitored value stops improving for ``patience`` evaluations, or reaches ``target``. Only the
  evaluations every ``eval_every`` steps count: the one that ends a :meth:`Trainer.fit` off that grid
  is recorded, but neither stops nor counts, so a run resumed from there stops where the
  uninterrupted run stops;
* **the best model kept** (``restore_best``, as Keras's ``restore_best_weights``): a copy of the parameters
  at the best evaluation, put back at the end of :meth:`Trainer.fit`, and when the run diverges;
* **checkpoints** every ``checkpoint_every`` steps and at the end, holding the data position, the random
  generators (the model's backend's and the host's) and the running means of the steps since the last log, so that
  :meth:`Trainer.load` followed by :meth:`Trainer.fit` computes exactly the losses, and records exactly the
  history, the uninterrupted run would have; with ``keep_checkpoints`` N, the last N of those written every
  ``checkpoint_every`` steps are also kept, each under its step's name, to average
  (:func:`~minitransformer.train.average_checkpoints`, as the paper does in its section 6.1);
* **Ctrl-C** stops the run at the end of the step in progress, writes the checkpoint there and raises
  :class:`TrainingInterrupted` (a ``KeyboardInterrupt``); a second Ctrl-C stops at once, saving nothing;
* a tqdm **progress bar**, or a line per log and evaluation (``progress="lines"``: what a file or a pipe gets,
  which a screen reader reads once, and which no terminal's width cuts short); ``progress=False`` turns it off.

The history is a dict of lists of ``[step, value]`` pairs -- ``train_loss``, ``lr``, ``grad_norm``
and whatever the evaluation returns (``val_loss``, ``val_accuracy``, ...) -- the form
:func:`minitransformer.viz.training_curves` draws.
"""

from __future__ import annotations

import array
import contextlib
import errno
import math
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np  # host-side: a target rounded to float32, the metrics' precision

from .. import backend as _backend
from .._arguments import is_integer, is_real, require_int, require_real
from ..autograd import Tensor
from ..data.batching import DataLoader
from ..nn import Module, evaluating
from ..optim import LRScheduler, Optimizer, clip_grad_norm_
from .checkpoint import (
    RUN_ID,
    CheckpointError,
    _kept_by,
    _kept_path,
    _load_read,
    _new_run_id,
    _refuse_model_only,
    _rng_state_fits,
    _seed_from_rng_state,
    _write_atomically,
    read_checkpoint,
    save_checkpoint,
)
from .metrics import RunningMean

__all__ = ["Trainer", "TrainingDiverged", "TrainingInterrupted", "reaches_target"]

#: how Trainer's ``progress`` shows a run -- a bar redrawn in place (a line per log where it cannot be), a line on
#: stderr per log and evaluation, nothing (True and False are "bar" and "none")
PROGRESS = ("bar", "lines", "none")


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite (or the parameters did, before a checkpoint).

    :meth:`Trainer.fit` looks at each step's loss (and, at the first step with ``clip``, the gradient norm): where
    values are checked at once (NumPy, where reading a number costs nothing) it raises at the step that went NaN or
    infinite, before its update (the step and the schedule count it: its batch was used); where they are checked later
    (CuPy: a step waits for nothing) with the logged loss, naming the first step of those since the last log whose loss
    was not finite (one read of their losses, kept on the device until then).
    It also raises where it finds the parameters not finite before it writes a checkpoint. The message says nan or
    inf, the step and the learning rate, and what to change: the loss or the data for a loss not finite at step 1,
    a formula such as sqrt at 0 for a gradient not finite with a finite loss, else the learning rate. With
    ``restore_best`` and an evaluation kept, the model holds the parameters of the best evaluation again, and so
    does the checkpoint (without the optimizer's state), as the message says (:attr:`Trainer.restored_step`); else
    (or where those parameters are not finite either) nothing is put back, nor written.

    Attributes
    ----------
    step : int or None
        The step the message names: the first whose loss (or gradient norm) was NaN or infinite, or by which the
        parameters or the monitored metric were found so (where checked later, :attr:`Trainer.step`, the step
        :meth:`Trainer.fit` stopped at, can be later); None where raised by hand without it.
    lr : float or None
        The learning rate of the last update made before that step's loss (step ``step - 1``'s: its loss is computed
        from the parameters that update made), the one to lower; None where no update was made (step 1).
    restored_step : int or None
        The step of the best evaluation whose parameters the model (and the checkpoint) holds again
        (``restore_best``); None where nothing was put back.
    checkpoint : Path or None
        The checkpoint that holds those parameters, written as the run diverged (a model to evaluate, not to
        resume); None where none was written (no ``checkpoint_path``, or nothing put back: a checkpoint written
        before, if any, holds another model).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn, optim
    >>> model = nn.Linear(1, 1)
    >>> def loss_fn(model, x):                                       # NaN from step 3 on
    ...     return model(x).sum() * (float("nan") if trainer.step >= 2 else 1.0)
    >>> trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss_fn, log_every=10, progress=False)
    >>> try:
    ...     trainer.fit(lambda step: mt.ones(4, 1), steps=20)
    ... except TrainingDiverged as e:
    ...     print(e)
    ...     print(e.step, e.lr, e.restored_step, e.checkpoint)
    Trainer: the training loss became nan by step 3; lower the learning rate (lr was 0.1 at the
    last update) or clip the gradients (clip=1.0)
    3 0.1 None None
    """

    def __init__(self, message: str, step: int | None = None, lr: float | None = None,
                 restored_step: int | None = None, checkpoint=None):
        super().__init__(message)
        self.step, self.lr, self.restored_step = step, lr, restored_step
        self.checkpoint = None if checkpoint is None else Path(checkpoint)

    def restated(self, message: str, restored_step: int | None = ..., checkpoint=...) -> TrainingDiverged:
        """The same divergence (its step, its learning rate and, unless given, its ``restored_step`` and its
        ``checkpoint``) with ``message`` instead: what :meth:`Trainer.fit` and ``train`` raise once they say more
        of it."""
        return TrainingDiverged(message, self.step, self.lr,
                                self.restored_step if restored_step is ... else restored_step,
                                self.checkpoint if checkpoint is ... else checkpoint)


class _NotFinite(TrainingDiverged):
    """A step's loss (or, at step 1 with ``clip``, its gradient norm) found NaN or infinite as the step ran, before
    its update (where the backend checks values at once: NumPy); :meth:`Trainer.fit` counts the step, unmade."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :meth:`Trainer.fit` at the end of a step; the checkpoint, if the trainer has a path, holds it.

    Attributes
    ----------
    step : int
        The steps taken: :meth:`Trainer.load` of the checkpoint and :meth:`Trainer.fit` continue from here
        exactly as the uninterrupted run would have.
    checkpoint : Path or None
        The checkpoint written (None without ``checkpoint_path``).

    Examples
    --------
    A Ctrl-C, sent here by the loss function in the middle of step 3:

    >>> import os, signal, tempfile
    >>> import minitransformer as mt
    >>> from minitransformer import nn, optim
    >>> from minitransformer.train import read_checkpoint
    >>> model = nn.Linear(1, 1)
    >>> def loss_fn(model, x):
    ...     if trainer.step == 2:
    ...         signal.raise_signal(signal.SIGINT)                     # what a terminal sends on Ctrl-C
    ...     return (model(x) ** 2).mean()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss_fn, progress=False,
    ...                       checkpoint_path=os.path.join(tmp, "ckpt.npz"))
    ...     try:
    ...         trainer.fit(lambda step: mt.ones(4, 1), steps=10)
    ...     except TrainingInterrupted as e:
    ...         print(e.step, read_checkpoint(e.checkpoint).step)      # step 3 finished, then saved
    3 3
    """

    def __init__(self, step: int, checkpoint):
        self.step = step
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        saved = f"checkpoint {self.checkpoint}" if checkpoint is not None else "no checkpoint_path, nothing saved"
        super().__init__(f"Trainer: interrupted after step {step} ({saved})")


class _CtrlC:
    """While training, Ctrl-C (SIGINT) only sets ``pressed``: the loop stops at the end of the step, where a
    checkpoint resumes exactly, rather than wherever the interrupt lands. A second Ctrl-C raises at once. SIGTERM
    (what ``kill``, ``timeout``, ``docker stop`` and a batch system's preemption send) counts as a Ctrl-C: its
    default ended the process at once, the steps since the last checkpoint lost and nothing said. So does SIGHUP,
    where the system has it (a closed terminal, a dropped ssh connection), for the same reason; ``nohup``, which
    sets it ignored, keeps the run going as before.

    Signal handlers belong to the main thread; elsewhere (or where a signal is ignored) it is left as it is.
    """

    def __init__(self):
        self.pressed = False
        self._previous = {}  # signal -> its handler before training

    def _handler(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            if callable(signal.getsignal(signal.SIGINT)):
                self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handler)
            for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):  # (Windows has no SIGHUP)
                if signum is not None and signal.getsignal(signum) not in (signal.SIG_IGN, None):
                    self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


class Trainer:
    r"""Train ``model`` with ``optimizer`` on the loss ``loss_fn(model, batch)``.

    Each step: ``loss = loss_fn(model, batch)``, ``loss.backward()``, clip, ``optimizer.step()``,
    ``schedule.step()``; the history records the mean training loss of every ``log_every`` steps.

    Parameters
    ----------
    model : Module
        The model to train (its parameters that require grad).
    optimizer : Optimizer
        Holds the model's parameters: all, or some (those left out are frozen, not updated), but only the
        model's. A parameter of another model is refused: the loss does not reach it, and the checkpoints (which
        hold the model's weights) would not hold it.
    loss_fn : callable
        ``loss_fn(model, batch) -> Tensor``: the 0-d loss of one batch (the forward pass included).
    schedule : LRScheduler, optional
        Stepped after every optimizer step.
    clip : float, optional
        Clip the global gradient norm to this value (:func:`~minitransformer.optim.clip_grad_norm_`); with
        ``accumulate``, the norm of the accumulated gradient.
    accumulate : int
        Micro-batches a step: the gradients of ``accumulate`` batches are summed before one optimizer step (and one
        schedule step), so that a step equals one step on a batch ``accumulate`` times larger, in the memory of
        one. For a loss that is a mean, micro-batch :math:`i` holding :math:`n_i` of the step's items counts
        with the weight :math:`w_i = n_i / \sum_j n_j`:

        .. math:: \nabla L = \sum_i w_i \nabla L_i, \qquad L_i = \frac{1}{n_i} \sum_{t \in i} \ell_t
                  \quad\Rightarrow\quad \nabla L = \frac{1}{\sum_j n_j} \sum_{t} \nabla \ell_t,

        the gradient of the mean over all the step's items, even where the micro-batches hold different numbers of
        target tokens (padding). :math:`n_i` is the batch's ``n_tokens`` (a
        :class:`~minitransformer.data.batching.Batch`'s count of real target tokens, or of examples for
        classification: what the tasks' mean losses divide by, counted on the host: no synchronisation); where a
        micro-batch has none (or 0), all count equally, :math:`w_i = 1/N`: exact for micro-batches of equal size,
        an approximation otherwise (each item of micro-batch :math:`i` weighs :math:`\bar n / n_i` times what it
        weighs in the large batch), as is a loss that is a mean over something other than ``n_tokens``. Steps,
        ``log_every``, ``eval_every``, ``checkpoint_every``, the progress bar and the checkpoints count optimizer
        steps; the logged loss is the step's weighted mean, :math:`\sum_i w_i L_i`. A ``data`` function is called
        with the micro-batch's index, ``step * accumulate + i``. Dropout draws other masks than on the large batch.
    eval_fn : callable, optional
        ``eval_fn(model) -> dict[str, float]``, run under ``no_grad`` with the model in eval mode
        every ``eval_every`` steps and at the end; its values go into the history under their names.
    eval_every : int, optional
        Steps between evaluations (only at the end if None). Early stopping acts on the evaluations
        at multiples of ``eval_every`` only (``patience`` and ``target`` need it).
    log_every : int
        Steps between reading the running loss on the host (history, progress bar).
    progress : bool or {"bar", "lines", "none"}
        ``True`` or ``"bar"``: a tqdm progress bar, redrawn in place, where it can be (a terminal, Jupyter), else a
        line on stderr per log and evaluation (a file or a pipe); ``"lines"``: those lines everywhere; ``False`` or
        ``"none"``: nothing.
    patience : int, optional
        Stop when ``monitor`` has not improved for this many evaluations in a row (those every ``eval_every``
        steps; the one that ends a :meth:`fit` off that grid does not count).
    monitor : str
        The evaluation value early stopping watches (``"val_loss"``).
    mode : {"min", "max"}, optional
        Whether smaller or larger is better; by default "max" for names with "acc" in them, else "min".
    min_delta : float
        An improvement smaller than this (>= 0) does not count for ``patience`` (it does for ``restore_best``).
    target : float, optional
        Stop as soon as ``monitor`` reaches this value (e.g. ``val_accuracy`` 0.99), or equals it rounded to
        float32, the metrics' precision: an accuracy of 7 of 10, float32(0.7) = 0.699999988, reaches 0.7
        (:func:`reaches_target`).
    restore_best : bool, optional
        Keep a copy of the parameters at the best evaluation of ``monitor`` on the ``eval_every`` grid
        (``best_seen``, at ``best_seen_step``: any improvement counts here, ``min_delta`` only for ``patience``; a
        ``target`` stop so keeps the model that reached the target) and put it back at the end of :meth:`fit`,
        unless the last parameters are those, or the evaluation that ends the fit off the grid betters the best.
        By default on when ``patience`` or ``target`` is set: early stopping says the evaluations judge the run,
        and without it the model left would be the last, up to ``patience`` evaluations worse than the best
        (Keras's ``restore_best_weights`` is off by default, a known surprise). Needs ``eval_fn`` and ``eval_every``.
        The copy stays on the parameters' device (no host synchronisation): one more copy of the trainable
        parameters in memory, and in every checkpoint. The optimizer's state is not put back: the run ends
        there, and a later :meth:`fit` (more ``steps``, or a resumed run) first puts the last parameters back
        and trains on from them, exactly as the uninterrupted run would. A run that diverges
        (:class:`TrainingDiverged`) also ends with the best parameters, as Keras's ``EarlyStopping`` does after
        ``TerminateOnNaN``; its checkpoint holds them, but not the optimizer's state (no longer finite), and
        :meth:`load` refuses it. Unless they are not finite either (an update had made them so before the best
        evaluation): then nothing is put back, nor saved.
    checkpoint_path : str or Path, optional
        Where :meth:`save` writes every ``checkpoint_every`` steps and at the end. Its folder is made by the first
        checkpoint if need be; one removed during :meth:`fit` is not made again (FileNotFoundError naming it): another
        run may be writing there by then.
    checkpoint_every : int, optional
        Steps between checkpoints (only at the end if None); needs ``checkpoint_path``.
    keep_checkpoints : int, optional
        Also keep the last this many checkpoints written every ``checkpoint_every`` steps (which it needs), each a
        copy, written atomically, beside ``checkpoint_path`` under its step: ``checkpoint.npz`` keeps
        ``checkpoint-step000400.npz`` (6 digits at least, so that the names sort by step up to 999,999;
        :func:`~minitransformer.train.average_checkpoints` sorts them by step). The oldest kept beyond
        that number is deleted: only the files this run wrote (:attr:`kept_checkpoints`, saved in the checkpoint,
        so that a resumed run goes on deleting the files the run before kept), never another file of that folder.
        The checkpoint written at the end off the ``checkpoint_every`` grid, or on Ctrl-C, is not kept.
    tokenizer : Tokenizer, optional
        Saved in the checkpoints.
    extra : dict, optional
        JSON-able data saved in the checkpoints (the task and its settings), with the run's id (:attr:`run_id`)
        under ``"run_id"``.
    desc : str
        The progress bar's label.

    Attributes
    ----------
    step : int
        Optimizer steps taken so far.
    history : dict of str to list of [step, value]
        ``train_loss``, ``lr``, ``grad_norm`` (with ``clip``) and the values of ``eval_fn``.
    stop_reason : str or None
        Why the last :meth:`fit` stopped: "steps" (it reached ``steps``), "patience" or "target" (it stopped
        early, before ``steps``), "interrupted" (Ctrl-C), "diverged" (:class:`TrainingDiverged`).
    best : float or None
        The value ``patience`` counts from: the last evaluation on the ``eval_every`` grid that bettered the best
        before it (the previous ``best``) by more than ``min_delta`` (with ``min_delta`` 0, the best).
    best_step : int or None
        The step of that evaluation.
    bad_evals : int
        The evaluations on the grid since then (``patience`` stops the run when they reach it).
    best_seen : float or None
        The best value of ``monitor`` at the evaluations on the ``eval_every`` grid, better than those before it by
        any amount: the evaluation whose parameters ``restore_best`` keeps.
    best_seen_step : int or None
        The step of that evaluation.
    restored_step : int or None
        The step whose parameters the last :meth:`fit` put back (``restore_best``; also when the run diverged), or
        None where it kept the last ones (they were the best, no evaluation on the grid took place, or a checkpoint
        written before this option held no copy of the best).
    early_stop : str or None
        What the last evaluation on the ``eval_every`` grid said: "patience" or "target" if the run should stop
        there, else None. It is kept (and saved), so that a later :meth:`fit` -- with more ``steps``, or
        resumed from a checkpoint -- stops at once, where the uninterrupted run stopped (set it to None to train
        on regardless). :meth:`load` keeps a saved one only if this trainer has that ``patience`` or ``target``.
    rng_reseeded : bool
        Whether :meth:`load` (with ``rng="reseed"``) gave the generator a fresh seed, the checkpoint's state being
        of another backend's generator.
    run_id : str
        The run's id, saved in its checkpoints' ``extra``: random (16 hex digits), new for each Trainer, and taken
        from the checkpoint by :meth:`load` (where it has one), so that every checkpoint of a run, a resumed one's
        included, carries the same, and another run's another: how
        :func:`~minitransformer.train.average_checkpoints` tells the checkpoints of one run.
    kept_checkpoints : list of str
        The names of the step-numbered checkpoints this run keeps (``keep_checkpoints``), oldest first, in the folder
        of ``checkpoint_path``.

    Examples
    --------
    Fit :math:`y = 2x + 1` with a linear model, stopping once the validation loss reaches a target:

    >>> import minitransformer as mt
    >>> from minitransformer import nn, optim
    >>> mt.manual_seed(0)
    >>> model = nn.Linear(1, 1)
    >>> x = mt.tensor([[0.0], [1.0], [2.0], [3.0]])                   # (4, 1)
    >>> y = 2 * x + 1
    >>> def loss_fn(model, batch):
    ...     x, y = batch
    ...     return ((model(x) - y) ** 2).mean()
    >>> def eval_fn(model):
    ...     return {"val_loss": loss_fn(model, (x, y)).item()}
    >>> trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss_fn, eval_fn=eval_fn, eval_every=10,
    ...                   target=1e-4, log_every=10, progress=False)
    >>> history = trainer.fit(lambda step: (x, y), steps=500)         # data: step -> batch
    >>> trainer.stop_reason, trainer.step < 500, sorted(history)
    ('target', True, ['lr', 'train_loss', 'val_loss'])
    >>> model.weight.numpy().round(1), model.bias.numpy().round(1)
    (array([[2.]], dtype=float32), array([1.], dtype=float32))
    """

    def __init__(self, model, optimizer, loss_fn: Callable, schedule=None, clip: float | None = None,
                 eval_fn: Callable | None = None, eval_every: int | None = None, log_every: int = 10,
                 progress: bool | str = True, patience: int | None = None, monitor: str = "val_loss",
                 mode: str | None = None, min_delta: float = 0.0, target: float | None = None,
                 checkpoint_path=None, checkpoint_every: int | None = None, tokenizer=None, extra: dict | None = None,
                 desc: str = "train", accumulate: int = 1, keep_checkpoints: int | None = None,
                 restore_best: bool | None = None):
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Trainer: optimizer must be an Optimizer holding the model's parameters (e.g. "
                            f"optim.Adam(model.parameters())), got {type(optimizer).__name__}")
        _check_optimizer_holds_the_model(model, optimizer)
        if schedule is not None and not isinstance(schedule, LRScheduler):
            raise TypeError(f"Trainer: schedule must be an LRScheduler (e.g. optim.WarmupSchedule(optimizer, d_model)) "
                            f"or None, got {type(schedule).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be a function (model, batch) -> loss, got {type(loss_fn).__name__}")
        if eval_fn is not None and not callable(eval_fn):
            raise TypeError(f"Trainer: eval_fn must be a function model -> dict, got {type(eval_fn).__name__}")
        accumulate, eval_every, log_every, patience, checkpoint_every, keep_checkpoints = (  # Python ints (a NumPy
            None if value is None else require_int("Trainer", name, value, low=1)  # one is checked every step)
            for name, value in (("accumulate", accumulate), ("eval_every", eval_every), ("log_every", log_every),
                                ("patience", patience), ("checkpoint_every", checkpoint_every),
                                ("keep_checkpoints", keep_checkpoints)))
        if clip is not None:
            clip = require_real("Trainer", "clip", clip, low=0.0, low_open=True)
        if not isinstance(monitor, str):
            raise TypeError(f"Trainer: monitor must be the name of a value eval_fn returns (e.g. 'val_loss'), got "
                            f"{monitor!r}")
        min_delta = require_real("Trainer", "min_delta", min_delta, low=0.0)
        if target is not None:
            target = require_real("Trainer", "target", target)
        mode = mode or ("max" if "acc" in monitor else "min")
        if mode not in ("min", "max"):
            raise ValueError(f"Trainer: mode must be 'min' or 'max', got {mode!r}")
        if checkpoint_every is not None and checkpoint_path is None:
            raise ValueError("Trainer: checkpoint_every needs a checkpoint_path to write to")
        if keep_checkpoints is not None and checkpoint_every is None:
            raise ValueError(f"Trainer: keep_checkpoints={keep_checkpoints} keeps the checkpoints written every "
                             "checkpoint_every steps; give checkpoint_every (and checkpoint_path)")
        if (eval_fn is None or eval_every is None) and (patience is not None or target is not None):
            # else they would never stop the run: only the evaluations every eval_every steps count
            raise ValueError(f"Trainer: {'patience' if patience is not None else 'target'} stops the run on what "
                             f"eval_fn returns ({monitor!r}) every eval_every steps; give "
                             f"{'an eval_fn' if eval_fn is None else 'eval_every'}")
        if not isinstance(progress, bool) and progress not in PROGRESS:
            raise ValueError(f"Trainer: progress must be True, False or one of {', '.join(map(repr, PROGRESS))}, got "
                             f"{progress!r}")
        if restore_best is None:  # on with early stopping (see the docstring)
            restore_best = patience is not None or target is not None
        if not isinstance(restore_best, bool):
            raise TypeError(f"Trainer: restore_best must be True, False or None, got {restore_best!r}")
        if restore_best and (eval_fn is None or eval_every is None):
            raise ValueError(f"Trainer: restore_best puts back the parameters of the best of what eval_fn returns "
                             f"({monitor!r}) every eval_every steps; give "
                             f"{'an eval_fn' if eval_fn is None else 'eval_every'}, or restore_best=False")
        self.model, self.optimizer, self.loss_fn, self.schedule = model, optimizer, loss_fn, schedule
        self.clip, self.eval_fn, self.eval_every, self.log_every = clip, eval_fn, eval_every, log_every
        self.accumulate = accumulate
        self.progress, self.patience, self.monitor, self.mode = progress, patience, monitor, mode
        self.min_delta, self.target, self.restore_best = min_delta, target, restore_best
        self.checkpoint_path, self.checkpoint_every = checkpoint_path, checkpoint_every
        self.keep_checkpoints, self.kept_checkpoints = keep_checkpoints, []
        self._folder_there = False  # whether fit found or made checkpoint_path's folder (_check_folder_there)
        self.tokenizer, self.extra, self.desc = tokenizer, dict(extra or {}), desc
        self.run_id = _new_run_id()  # (from the system's randomness: the training's generator does not move)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self._named_params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.step = 0
        self.history: dict[str, list] = {}
        self.stop_reason: str | None = None
        self.elapsed = 0.0  # seconds spent in fit(), summed over resumed runs
        # where the data stand: epoch and batch within it (DataLoader); a callable needs only `step`
        self.epoch, self.batch_in_epoch = 0, 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_seen: float | None = None
        self.best_seen_step: int | None = None
        self.restored_step: int | None = None
        self._best_params: dict | None = None  # name -> a copy of the parameter's array at best_seen_step, on device
        self._last_params: dict | None = None  # the parameters a restore replaced: a later fit trains on from them
        self.bad_evals = 0
        self.early_stop: str | None = None
        self.rng_reseeded = False
        self._loss, self._norm = RunningMean(), RunningMean()
        self.last_eval: dict[str, float] = {}
        self._eval_step: int | None = None
        self._lr = optimizer.param_groups[0]["lr"]
        # the rate of the last update made (step k's loss comes from the parameters it made: step k-1's rate, not k's,
        # is the one to quote) and the highest of the run's updates so far
        self._update_lr: float | None = None
        self._peak_lr: float | None = None
        #: how the advice of a :class:`TrainingDiverged` writes each setting, ``{"clip": "clip={value}"}`` by default
        #: (this class's arguments), the command line's flags in its runs (``"--set clip={value}"``)
        self.spelled: dict[str, str] = {}
        #: the schedule's warm-up steps where known (the command line's run gives its ``warmup``), so that the advice
        #: of a divergence names a warm-up tiny beside the run (the peak rate reached at once, on Adam's first moments)
        self.warmup: int | None = None
        self._steps: int | None = None  # fit's steps: how long the run is
        self._unread = _Unread()  # the steps since the last log, where values are checked later (a GPU)
        self._first_norm: Tensor | None = None  # step 1's gradient norm (with clip), read with the first log

    # ------------------------------------------------------------------ data
    def _batches(self, data):
        """Batches from the current data position on, forever (the loop counts steps, not epochs).

        ``data`` is a :class:`DataLoader` (epoch ``e`` has its own seeded order; a resumed run skips
        the batches already seen in the current epoch without building them) or a function
        ``data(step) -> Batch`` (e.g. random windows of a text, seeded by the step; with ``accumulate`` N, called
        with the micro-batch's index ``step * N + i``, ``i`` = 0 .. N - 1).
        """
        if isinstance(data, DataLoader):
            if len(data) == 0:
                raise ValueError(f"Trainer.fit: the DataLoader has no batches ({data!r})")
            if self.batch_in_epoch > len(data):  # (a checkpoint's: it would skip the rest of the epoch in silence)
                raise ValueError(f"Trainer.fit: the data position is batch {self.batch_in_epoch} of epoch "
                                 f"{self.epoch}, beyond the DataLoader's {len(data)} batches an epoch: was the run "
                                 "resumed from a checkpoint of other data or another batch size, or a damaged one?")
            while True:
                for i, chunk in enumerate(data.epoch_batches(self.epoch)):
                    if i < self.batch_in_epoch:
                        continue  # seen before the checkpoint
                    self.batch_in_epoch = i + 1
                    yield data.collate(chunk) if data.collate is not None else chunk
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                data.set_epoch(self.epoch)
        elif callable(data):
            while True:  # (self.step moves on after the step's N micro-batches are drawn)
                for i in range(self.accumulate):
                    yield data(self.step * self.accumulate + i)
        else:
            raise TypeError(
                f"Trainer.fit: data must be a DataLoader or a function step -> batch, got {type(data).__name__} "
                "(a plain iterable cannot be resumed at the right place)"
            )

    # ------------------------------------------------------------------ the loop
    def train_step(self, batch) -> Tensor:
        r"""One optimisation step on ``batch`` (with ``accumulate`` N > 1, a list of N micro-batches); returns the loss
        (a 0-d Tensor, not read on the host): with micro-batches, their weighted mean :math:`\sum_i w_i L_i`.

        Zero the gradients; for each micro-batch, compute the loss (:meth:`compute_loss`) times its weight
        :math:`w_i` (1 for one batch; see ``accumulate``) and back-propagate it, which adds its gradients to those
        before; clip (:meth:`clip_gradients`, when ``clip`` is set), let the optimizer step, free the gradients,
        advance the schedule (when there is one).
        """
        self._lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses (before the schedule moves it)
        micro_batches, weights = self._micro_batches(batch)
        ### BEGIN SOLUTION A5: zero_grad; each micro-batch's compute_loss * w, backward; clip, optimizer, schedule
        self.optimizer.zero_grad()
        loss = None
        for micro_batch, w in zip(micro_batches, weights):
            part = self.compute_loss(micro_batch)
            if w != 1.0:  # w_i L_i: its share of the step's mean loss (one batch: all of it, no extra operation)
                part = part * w
            part.backward()  # adds w_i dL_i/dtheta to the .grad of the micro-batches before
            loss = part.detach() if loss is None else loss + part.detach()
        if self.clip is not None:
            self.clip_gradients()
        self.optimizer.step()
        self.optimizer.zero_grad()  # the gradients are not needed until the next step: free their memory
        if self.schedule is not None:
            self.schedule.step()
        ### END SOLUTION
        self._update_lr, self._peak_lr = self._lr, max(self._lr, self._peak_lr or self._lr)
        self.step += 1
        return loss

    def _micro_batches(self, batch) -> tuple[list, list[float]]:
        r"""``batch`` as the list of the step's micro-batches, and their weights :math:`w_i = n_i / \sum_j n_j`
        (``n_tokens``, host ints: no synchronisation; equal weights unless every micro-batch has a positive one);
        ``[batch], [1.0]`` without ``accumulate``."""
        if self.accumulate == 1:
            return [batch], [1.0]
        micro_batches = list(batch)
        if len(micro_batches) != self.accumulate:
            raise ValueError(f"Trainer.train_step: accumulate={self.accumulate} takes a list of {self.accumulate} "
                             f"micro-batches, got {len(micro_batches)}")
        n = [getattr(b, "n_tokens", 0) for b in micro_batches]
        if not all(is_integer(n_i) and n_i > 0 for n_i in n):  # (a Batch made by hand counts 0): equal shares
            n = [1] * len(micro_batches)
        total = sum(n)
        return micro_batches, [n_i / total for n_i in n]

    def compute_loss(self, batch) -> Tensor:
        """``loss_fn(model, batch)``, checked to be one number (a one-element Tensor); where the backend checks values
        at once (NumPy, where reading a number costs nothing), checked to be finite before its gradient and the
        update (:class:`TrainingDiverged`). On a GPU the logged mean says it, without a wait in the step."""
        loss = self.loss_fn(self.model, batch)
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"Trainer: loss_fn must return a one-element Tensor, got "
                            f"{getattr(loss, 'shape', type(loss).__name__)}")
        value = _read_at_once(loss)
        if value is not None and not math.isfinite(value):
            raise _NotFinite(self._not_finite_said(self.step + 1, "loss", value), self.step + 1, self._update_lr)
        return loss

    def clip_gradients(self) -> None:
        """Scale the gradients to a global norm of at most ``clip`` (:func:`~minitransformer.optim.clip_grad_norm_`);
        log the norm. The norm is checked to be finite, as the loss is, before the update where the backend checks
        values at once (NumPy: the read costs nothing), at every step: the NaN never reaches the weights; else step
        1's, with the first log. The loss was finite (checked first): at step 1 a norm NaN or infinite can only come
        from a formula whose gradient is not finite where its value is (sqrt at 0), which neither a lower rate nor
        clipping mends; after updates, also from updates too large (the message says both)."""
        norm = clip_grad_norm_(self.params, self.clip)
        value = _read_at_once(norm)
        if value is not None and not math.isfinite(value):
            raise _NotFinite(self._not_finite_said(self.step + 1, "norm", value), self.step + 1, self._update_lr)
        if self.step == 0:
            self._first_norm = norm
        self._norm.add(norm)

    def fit(self, data, steps: int) -> dict:
        """Train until ``self.step == steps`` (counting the steps of earlier and resumed runs), or an early stop.

        The model is left in training mode, as the steps ran it: measure or run it inside
        :func:`~minitransformer.nn.evaluating` (the task's metrics, decoding and ``predict_proba`` do). With
        ``restore_best``, it holds the parameters of the best evaluation (:attr:`restored_step` says which), also
        after :class:`TrainingDiverged`, but not after Ctrl-C or another error.

        Parameters
        ----------
        data : DataLoader or callable
            The training batches: a :class:`~minitransformer.data.DataLoader` or ``step -> Batch``. A function that
            draws at random without a seed of its own (``make_lm_batch(ids, T, B)``, whose ``rng=None`` draws from
            :func:`~minitransformer.backend.host_rng`) repeats in a resumed run too: the checkpoints hold the host
            generator's state, which :meth:`load` restores, and evaluations leave it as it was. Only that
            generator: one of the function's own (a ``numpy.random.Generator`` made once, outside) is in no
            checkpoint; seed each batch by its step instead (``rng=[seed, step]``).
        steps : int
            The total number of steps the run should reach.

        Returns
        -------
        dict
            The history (:attr:`history`).

        Raises
        ------
        TrainingDiverged
            The training loss became NaN or infinite, or the parameters did (found before a checkpoint is written:
            none is written with them). With ``restore_best`` and a copy of the best parameters, the model holds
            them again, and so does the checkpoint (``checkpoint_path``), without the optimizer's state; unless the
            copy is not finite either (evaluated after the update that made the parameters so): then nothing.
            NumPy's overflow and invalid-value warnings are off inside a training step (this error says it once; under
            ``-W error`` a warning would have stopped the run without it); ``mt.detect_anomaly()``
            still names the first operation that made a NaN or an infinity.
        TrainingInterrupted
            Ctrl-C: the step in progress was finished and the checkpoint written (with ``checkpoint_path``).
        """
        steps = require_int("Trainer.fit", "steps", steps, low=0)
        self._steps = steps
        try:  # the notebook widget bar where Jupyter can draw it, else the text bar (no "IProgress" warning)
            import ipywidgets  # noqa: F401
            from tqdm.auto import tqdm
        except ImportError:
            from tqdm.std import tqdm

        self.stop_reason = None
        if self._last_params is not None:  # the last fit put the best back: train on from where training was
            self._put_params(self._last_params)
            self._last_params = self.restored_step = None
        start = time.perf_counter()
        self.model.train()
        self._folder_there = self.checkpoint_path is not None and Path(self.checkpoint_path).parent.is_dir()
        shown = {True: "bar", False: "none"}.get(self.progress, self.progress)
        if shown == "bar" and not _draws_in_place(sys.stderr):
            shown = "lines"
        bar = (_LineBar if shown == "lines" else tqdm)(
            total=steps, initial=min(self.step, steps), desc=self.desc, disable=shown == "none", dynamic_ncols=True,
            leave=True)
        source = self._batches(data)
        with _CtrlC() as ctrl_c, self._on_divergence():
            try:
                while self.step < steps and self.early_stop is None:  # (set before: an early stop stays one)
                    if ctrl_c.pressed:  # at a step's end: the state a periodic checkpoint holds, saved below
                        self.stop_reason = "interrupted"
                        break
                    batch = next(source) if self.accumulate == 1 else [next(source) for _ in range(self.accumulate)]
                    try:
                        # NumPy's warnings of a diverging step (overflow, invalid value) at each operation:
                        # TrainingDiverged says it once, and a warning made an error (-W error, pytest's
                        # filterwarnings) would stop the run without it and without the best parameters' checkpoint;
                        # the step only (eval_fn and the data warn as they do); detect_anomaly checks values itself
                        with np.errstate(over="ignore", invalid="ignore"):
                            loss = self.train_step(batch)
                    except _NotFinite:  # (found at once: NumPy) the run stops at this step, its update not made:
                        self.optimizer.zero_grad()  # the step counts (its batch was used), and so does the schedule,
                        self.step += 1  # so that a run resumed from here has each step's rate
                        if self.schedule is not None:
                            self.schedule.step()
                        raise
                    self._loss.add(loss)
                    if not loss.backend.check_values:  # (else a loss not finite was refused at once)
                        self._unread.add(self.step, self._lr, loss)
                    bar.update(1)
                    if self.step % self.log_every == 0 or self.step == steps:
                        self._log(bar)
                    if self.eval_fn is not None and self.eval_every and self.step % self.eval_every == 0:
                        self._evaluate(bar, on_grid=True)
                    if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                        self.elapsed += time.perf_counter() - start
                        start = time.perf_counter()
                        self._save_on_the_grid()
                if self.stop_reason != "interrupted":
                    self._log(bar)
                    if self.eval_fn is not None and self._eval_step != self.step:
                        self._evaluate(bar, on_grid=False)  # recorded; off the grid, it neither stops nor counts
                    # "patience"/"target" only for a run that stopped before steps
                    self.stop_reason = "steps" if self.step >= steps else self.early_stop
                    if self.restore_best:
                        self._restore_best()
            finally:
                bar.close()
                self.elapsed += time.perf_counter() - start
            if self.checkpoint_path is not None:
                self._check_finite_params()
                self._check_folder_there()
                self.save(self.checkpoint_path)
        if self.stop_reason == "interrupted":  # (a Ctrl-C during the last step lets the run finish as it was)
            raise TrainingInterrupted(self.step, self.checkpoint_path)
        return self.history

    def _record(self, name: str, value: float) -> None:
        self.history.setdefault(name, []).append([self.step, float(value)])

    def _log(self, bar) -> None:
        """Read the running means on the host (the one synchronisation) and record them."""
        if self._loss.weight == 0:
            return
        loss = self._loss.compute()
        self._loss.reset()
        unread, self._unread = self._unread, _Unread(self._update_lr, self._peak_lr)
        first_norm, self._first_norm = self._first_norm, None
        if not math.isfinite(loss):
            raise self._not_finite_found(unread, first_norm, loss)
        self._record("train_loss", loss)
        self._record("lr", self._lr)
        shown = {"loss": f"{loss:.4f}", "lr": f"{self._lr:.2e}"}
        if self._norm.weight:
            self._record("grad_norm", self._norm.compute())
            self._norm.reset()
        if not isinstance(bar, _LineBar):  # a bar redrawn in place keeps the last evaluation in view; a log of
            # lines printed it once, at its step: repeated on each line, it reads as a validation that stopped moving
            shown.update({k: f"{v:.4f}" for k, v in self.last_eval.items()})
        bar.set_postfix(shown, refresh=False)

    def _advice(self, lr: float | None = ..., peak: float | None = ...) -> str:
        """What a diverged run should change: the learning rate (``lr``, that of the last update made before the
        values went wrong, and ``peak``, the highest until then: :attr:`_update_lr` and :attr:`_peak_lr` by
        default), and the clipping."""
        lr, peak = self._update_lr if lr is ... else lr, self._peak_lr if peak is ... else peak
        if lr is None:  # (a checkpoint written before the rates were kept)
            rate = ""
        elif peak is None or math.isclose(lr, peak, rel_tol=1e-9):
            rate = f" (lr was {lr:g} at the last update)"
        else:
            rate = f" (lr was {lr:g} at the last update, {peak:g} at the highest)"
        clipping = (f"or clip the gradients ({self._spelled('clip', 1.0)})" if self.clip is None else
                    f"(the gradients were clipped to a norm of {self.clip:g})")
        w, steps = self.warmup, self._steps
        warmup = ""
        if w is not None and steps and (w < 10 or 100 * w < steps):  # the defaults warm up over 2.5-20% of the run
            warmup = (f"; the warm-up, {w} step{'s' if w > 1 else ''} of {steps}, reaches the peak rate at once: a "
                      f"longer one ({self._spelled('warmup', min(steps, max(10, steps // 10)))}) may be enough")
        return f"lower the learning rate{rate} {clipping}{warmup}"

    def _spelled(self, name: str, value) -> str:
        """The setting ``name`` = ``value`` as the user writes it (:attr:`spelled`)."""
        return self.spelled.get(name, "{name}={value}").format(name=name, value=value)

    def _check_finite_params(self) -> None:
        """Raise :class:`TrainingDiverged` before a checkpoint is written where the parameters training goes on from
        (the last ones, also where ``restore_best`` put the best back) are NaN or infinite: a step whose loss was
        finite but not its gradients leaves them so, and the loss read next would say so only once a checkpoint
        (written over a good one) held them. The loss of the steps not yet logged is read first (its message says
        more); then one host read a checkpoint (:meth:`_not_finite`)."""
        self._running_means()  # (raises where the loss since the last log is not finite)
        params = self._last_params or {name: p.data for name, p in self._named_params.items()}
        bad = self._not_finite({**params, **self._optimizer_arrays()})  # Adam's v can overflow under finite weights
        if bad:
            weights = [name for name in bad if not name.startswith("the optimizer's")]
            what, bad = ("parameters", weights) if weights else ("optimizer's state", bad)
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise TrainingDiverged(f"Trainer: the {what} became NaN or infinite by step {self.step} "
                                   f"({bad[0]}{more}) while the training loss was finite; {self._advice()}",
                                   self.step, self._update_lr)

    def _optimizer_arrays(self) -> dict:
        """The optimizer's arrays of each trainable parameter (Adam's moments ``m``, ``v``), by ``(name, key)``."""
        return {(name, key): a for name, p in self._named_params.items()
                for key, a in (self.optimizer.state.get(p) or {}).items() if hasattr(a, "dtype")}

    def _not_finite(self, arrays: dict) -> list[str]:
        """The names of ``arrays`` (name -> the array of that trainable parameter, or a copy of it) holding a NaN or an
        infinity. Each array's all-finite flag is computed on its device and the flags are combined there: one host
        read (one a backend) says whether all are finite; only where some are not, one more a parameter names them."""
        flags: dict = {}  # backend -> {name: its 0-d all-finite flag, on the device}
        for name, a in arrays.items():
            be = self._named_params[name if isinstance(name, str) else name[0]].backend
            shown = name if isinstance(name, str) else f"the optimizer's {name[1]} of {name[0]}"
            flags.setdefault(be, {})[shown] = be.xp.all(be.xp.isfinite(a))
        bad = []
        for be, finite in flags.items():
            if not bool(be.xp.all(be.xp.stack(list(finite.values())))):  # the one read, where all are finite
                bad += [name for name, flag in finite.items() if not bool(flag)]
        return bad

    @contextlib.contextmanager
    def _on_divergence(self):
        """Around :meth:`fit`'s loop and its checkpoint: a :class:`TrainingDiverged` is raised as :meth:`_diverged`
        makes it."""
        try:
            yield
        except TrainingDiverged as e:
            raise self._diverged(e) from None

    def _not_finite_found(self, unread: _Unread, first_norm: Tensor | None, mean: float) -> TrainingDiverged:
        """The logged mean ``mean`` is not finite (where values are checked later: a GPU): which step's loss (of
        ``unread``, the steps since the last log) was first, in one read of the device, or step 1's gradient norm
        (``first_norm``, with ``clip``, read with the first log) where it was not finite either, named as at once."""
        found = f" (found at the read of the device after step {self.step}: the steps are not waited for)"
        if first_norm is not None and not math.isfinite(first_norm.item()):
            return TrainingDiverged(self._not_finite_said(1, "norm", first_norm.item(), found=found), 1, None)
        if unread.first is None:
            return TrainingDiverged(self._not_finite_said(self.step, "loss", mean), self.step, self._update_lr)
        losses = unread.read()
        i = next((i for i, v in enumerate(losses) if not math.isfinite(v)), len(losses) - 1)
        k, lr = unread.first + i, unread.lrs[i - 1] if i else unread.before  # the last update before step k's loss
        peak = max([r for r in (unread.peak, *unread.lrs[:i]) if r is not None], default=None)
        said = self._not_finite_said(k, "loss", losses[i], lr, "" if k == self.step else found, peak)
        return TrainingDiverged(said, k, lr)

    def _not_finite_said(self, k: int, what: str, value: float, lr: float | None = ..., found: str = "",
                         peak: float | None = ...) -> str:
        """What step ``k``'s loss or gradient norm (``what``: "loss", "norm"), NaN or infinite (``value``), says, with
        the advice that fits it: a loss not finite at step 1 comes from the loss or the data (no update was made yet);
        a gradient norm not finite at step 1 with a finite loss, from a formula whose gradient is not finite where its
        value is; after updates, from such a formula or from updates too large (weights they made huge overflow the
        gradient before the loss: ``lr 1e6`` does), both said; a loss not finite after finite steps, from updates too
        large (the learning rate ``lr`` of the last update made then, ``peak`` the highest)."""
        value = "nan" if math.isnan(value) else "inf"
        formula = ("a formula whose gradient is not finite where its value is, such as sqrt at 0 (write "
                   "sqrt(x + eps)), log at 0, or x ** p with p < 1 at 0")
        if what == "norm" and k == 1:
            return (f"Trainer: the gradient norm was {value} at step 1, before any update{found}, while the training "
                    f"loss was finite: {formula}; not the learning rate")
        if what == "norm":  # after updates, weights made huge by them can overflow the gradient before the loss
            return (f"Trainer: the gradient norm was {value} at step {k}, before its update{found}, while the training "
                    f"loss was finite: {formula}; or, where the loss grew before, updates too large: "
                    f"{self._advice(lr, peak)}")
        if k == 1:
            return (f"Trainer: the training loss was {value} at step 1, before any update{found}: look at the loss "
                    "function and the data (a log or a division at 0, an overflow, a NaN or an infinity in the inputs "
                    "or targets), not the learning rate")
        return f"Trainer: the training loss became {value} by step {k}{found}; {self._advice(lr, peak)}"

    def _diverged(self, e: TrainingDiverged) -> TrainingDiverged:
        """What :meth:`fit` raises for the divergence ``e``: with ``restore_best`` and a copy of the best parameters,
        the model gets them back (as at the end of a fit: :attr:`restored_step`) and, with ``checkpoint_path``, the
        checkpoint holds them (:meth:`_save_diverged`), both said in the message; else ``e``, nothing put back or saved.

        The last parameters are not kept (they are not finite: nothing to train on from), nor is a checkpoint written
        without a copy: the one on disk, of a step whose parameters were finite, stays. Nor with a copy that is not
        finite (one host read, :meth:`_not_finite`, on divergence only): the best evaluation can be of parameters an
        update had already made NaN, the loss of that update's step being finite (computed before it) and an accuracy
        scoring NaN logits (their argmax is class 0); the copy is dropped, and the message says so.
        """
        self.stop_reason = "diverged"
        if not self.restore_best or self._best_params is None:
            return e
        if self._not_finite(self._best_params):
            if self._last_params is not None:  # (the end of fit had put the copy back: the model holds the last again)
                self._put_params(self._last_params)
            self._best_params = self._last_params = self.restored_step = None
            kept = "" if self.checkpoint_path is None else (f", nor saved anything in {self.checkpoint_path} (the "
                                                            "checkpoint written last, if any, stays)")
            return e.restated(f"{e}; the parameters of the best evaluation, step {self.best_seen_step} "
                              f"({self.monitor} {self.best_seen:.4g}), were not finite either (an update had made "
                              f"them so): restore_best put nothing back{kept}", restored_step=None, checkpoint=None)
        self._put_params(self._best_params)
        self._last_params, self.restored_step = None, self.best_seen_step
        said = (f"{e}; restore_best put back the parameters of the best evaluation, step {self.restored_step} "
                f"({self.monitor} {self.best_seen:.4g})")
        if self.checkpoint_path is None:
            return e.restated(said, self.restored_step, checkpoint=None)
        self._save_diverged()
        return e.restated(f"{said}, and saved them in {self.checkpoint_path} (a model to evaluate, without the "
                          "optimizer's state: not to resume)", self.restored_step, self.checkpoint_path)

    def _save_diverged(self) -> None:
        """Write the checkpoint of a run that diverged: the model of its best evaluation (put back), the step, the
        history and where the run stood (``stop_reason`` "diverged", ``restored_step``), but no optimizer state,
        schedule or random state: the optimizer's moments are not finite, so that :meth:`load` refuses it
        (``_refuse_model_only``) rather than train on into NaN again."""
        self._check_folder_there()
        save_checkpoint(self.checkpoint_path, self.model, step=self.step, rng_state=None, tokenizer=self.tokenizer,
                        history=self.history, trainer_state=self.state(), extra={**self.extra, RUN_ID: self.run_id})

    def evaluate(self) -> dict:
        """Run ``eval_fn`` in eval mode without a graph; the random generators' states are left as they were.

        Saving and restoring the random states around the evaluation
        (:func:`~minitransformer.backend.random_state_kept`: every backend's generator, which dropout draws from, and
        :func:`~minitransformer.backend.host_rng`, which ``make_lm_batch(..., rng=None)`` draws windows from) keeps
        the training run's random numbers (dropout masks, the data a data function draws) the same whether or not,
        and how often, it is evaluated.
        """
        if self.eval_fn is None:
            raise ValueError("Trainer.evaluate: no eval_fn was given")
        with _backend.random_state_kept(), evaluating(self.model):
            results = self.eval_fn(self.model)
        if not isinstance(results, dict):
            raise TypeError(f"Trainer: eval_fn must return a dict of name -> number, got {type(results).__name__}")
        numbers_by_name = {}
        for name, value in results.items():
            if isinstance(value, Tensor) and value.size == 1:  # {"val_loss": loss}, as PyTorch code writes it
                value = value.item()
            if not isinstance(name, str) or not is_real(value):  # a 0-d NumPy array (loss.numpy()) is a number too
                raise TypeError(f"Trainer: eval_fn must return a dict of name -> number (a float, or a one-element "
                                f"Tensor), got {name!r}: {value!r}")
            numbers_by_name[name] = float(value)
        return numbers_by_name

    def _evaluate(self, bar, on_grid: bool) -> None:
        """Evaluate and record; on the ``eval_every`` grid, also update the early-stopping bookkeeping.

        The evaluation that ends a :meth:`fit` off the grid (``fit(steps)`` with ``steps`` not a multiple of
        ``eval_every``) must not count: a run split there would evaluate at other steps than the uninterrupted
        one, and stop elsewhere.
        """
        results = self.evaluate()
        self.last_eval, self._eval_step = results, self.step
        for name, value in results.items():
            self._record(name, value)
        bar.set_postfix({k: f"{v:.4f}" for k, v in results.items()}, refresh=False)
        if not on_grid:
            return
        if self.monitor not in results:
            if self.patience is not None or self.target is not None or self.restore_best:
                watcher = "restore_best" if self.patience is None and self.target is None else "early stopping"
                raise ValueError(
                    f"Trainer: {watcher} watches {self.monitor!r}, which eval_fn does not return (it returns "
                    f"{sorted(results)}); pass monitor= one of those"
                )
            return
        value = results[self.monitor]
        if math.isnan(value):  # neither better nor worse than any value: patience would run out, saying nothing
            if self.patience is None and self.target is None:
                return
            stop = f"patience={self.patience}" if self.patience is not None else f"target={self.target:g}"
            raise TrainingDiverged(
                f"Trainer: eval_fn gave {self.monitor!r} = nan at step {self.step}, which early stopping ({stop}) "
                f"cannot compare; the model's outputs may have become NaN: {self._advice()}", self.step,
                self._update_lr
            )
        if self._betters(value, self.best, self.min_delta):  # patience: only an improvement above min_delta counts
            self.best, self.bad_evals, self.best_step = value, 0, self.step
        else:
            self.bad_evals += 1
        if self._betters(value, self.best_seen):  # the model to keep: any improvement (else a target reached by less
            self.best_seen, self.best_seen_step = value, self.step  # than min_delta would put back a worse one)
            # Not checked to be finite here: the check (a pass over every parameter, and a host read) would cost every
            # run at each new best, where eval_fn's own reads are of its numbers, not the parameters; a copy that is
            # not finite belongs to a run that diverges, which _diverged finds (checking the copy once) and says.
            if self.restore_best:  # a copy, on the device (no host synchronisation); not a reference: a parameter
                self._best_params = None  # is a view of the optimizer's long array, which a kernel updates in place
                self._best_params = {name: p.backend.xp.asarray(p.data, copy=True)  # (the old copy freed first)
                                     for name, p in self._named_params.items()}
        if self.target is not None and reaches_target(value, self.target, self.mode):
            self.early_stop = "target"
        elif self.patience is not None and self.bad_evals >= self.patience:
            self.early_stop = "patience"

    def _betters(self, value: float, best: float | None, min_delta: float = 0.0) -> bool:
        """Whether ``value`` of ``monitor`` betters ``best`` (None: there is none yet) by more than ``min_delta`` (NaN
        never betters a number)."""
        return best is None or (value < best - min_delta if self.mode == "min" else value > best + min_delta)

    def _restore_best(self) -> None:
        """Put back the parameters of the best evaluation (``restore_best``), keeping the last ones to train on.

        Nothing to do where there is no copy, or the best evaluation was of the last parameters; nor where the
        evaluation that ended the fit off the grid betters the best (it cannot count for early stopping, but the
        parameters it measured are better than the copy).
        """
        self.restored_step = None
        if self._best_params is None or self.best_seen_step == self.step:
            return
        final = self.last_eval.get(self.monitor) if self._eval_step == self.step else None
        if final is not None and self._betters(final, self.best_seen):
            return
        self._last_params = {name: p.data for name, p in self._named_params.items()}
        self._put_params(self._best_params)  # the copy becomes the parameters' arrays: no other copy made
        self.restored_step = self.best_seen_step

    def _put_params(self, arrays: dict) -> None:
        """Make ``arrays`` (name -> array on the parameter's device) the trainable parameters' values."""
        for name, p in self._named_params.items():
            p.data = arrays[name]

    # ------------------------------------------------------------------ checkpoints
    def _save_on_the_grid(self) -> None:
        """The checkpoint every ``checkpoint_every`` steps; with ``keep_checkpoints``, also its step-numbered copy.

        In the order that leaves no file behind whatever step a kill interrupts: the oldest kept copies beyond the
        number are deleted first, then the checkpoint is written (naming the new copy among those kept: a resumed
        run deletes it in its turn), then copied.
        """
        self._check_finite_params()
        self._check_folder_there()
        if self.keep_checkpoints is None:
            self.save(self.checkpoint_path)
            return
        kept = _kept_path(self.checkpoint_path, self.step)
        self.kept_checkpoints = [name for name in self.kept_checkpoints if name != kept.name] + [kept.name]
        while len(self.kept_checkpoints) > self.keep_checkpoints:
            (kept.parent / self.kept_checkpoints.pop(0)).unlink(missing_ok=True)
        self.save(self.checkpoint_path)
        with open(self.checkpoint_path, "rb") as source:  # a copy of the bytes just written: no second serialising
            _write_atomically(kept, lambda f: shutil.copyfileobj(source, f))

    def _check_folder_there(self) -> None:
        """Refuse to write :meth:`fit`'s checkpoint into a folder removed since the run found it (or made it, with its
        first checkpoint): :func:`save_checkpoint` would make it anew, and a second run may write there meanwhile (the
        command line's lock went with the folder), the two runs' files mixed in it and this one's results lost."""
        folder = Path(self.checkpoint_path).parent
        if self._folder_there and not folder.is_dir():
            raise FileNotFoundError(errno.ENOENT, f"the folder {str(folder)!r} was removed during the run: its "
                                    "checkpoint is not written there (made anew, the folder could mix its files "
                                    "with another run's); start the run again", str(self.checkpoint_path))
        self._folder_there = True

    def _generator(self) -> _backend.Backend:
        """The backend whose random generator the model's dropout draws from: that of its weights (a model moved
        with ``model.to("cupy")`` draws there, whatever backend is current); the current one for a model without."""
        first = next(iter(self.model.parameters()), None)
        return _backend.current() if first is None else first.backend

    def state(self) -> dict:
        """Where the run stands, as JSON-able data (saved in checkpoints)."""
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "best": self.best,
                "bad_evals": self.bad_evals, "early_stop": self.early_stop, "elapsed_s": self.elapsed,
                "stop_reason": self.stop_reason, "last_eval": self.last_eval, "eval_step": self._eval_step,
                "accumulate": self.accumulate, "kept_checkpoints": list(self.kept_checkpoints),
                "best_step": self.best_step, "restored_step": self.restored_step, "best_seen": self.best_seen,
                "best_seen_step": self.best_seen_step, "update_lr": self._update_lr, "peak_lr": self._peak_lr}

    def _params_state(self) -> dict:
        """The copies of the parameters a checkpoint holds besides the model's (``restore_best``), so that a resumed
        run ends with the parameters the uninterrupted one ends with: the best ones (``best_params``), or, once
        :meth:`fit` put them back and the model holds them, the last ones (``last_params``), which training goes
        on from."""
        if self._last_params is not None:
            return {"last_params": self._last_params}
        return {} if self._best_params is None else {"best_params": self._best_params}

    def _running_means(self) -> dict:
        """The running means of the steps since the last log (loss, gradient norm) as host numbers
        (:meth:`RunningMean.state_dict`: one read of each), for the checkpoint: :meth:`load` restores them, so that a
        resumed run logs at the steps, and the means, of the uninterrupted run (folded into the history at a
        checkpoint off the ``log_every`` grid, they added an entry there and changed the next logged mean). Where the
        loss's sum is not finite, it is logged instead, which raises :class:`TrainingDiverged` naming the step: no
        checkpoint is written with it."""
        loss = self._loss.state_dict()
        if loss["sum"] is not None and not math.isfinite(loss["sum"]):
            self._log(_NoBar())  # raises
        return {"running_loss": loss, "running_norm": self._norm.state_dict()}

    def save(self, path, allow_nonfinite: bool = False) -> None:
        """Write a checkpoint of everything needed to resume: model, optimizer, schedule, step, the random generators
        (the model's backend's, and the host's, :func:`~minitransformer.backend.host_rng`), data position, history and
        the running means of the steps since the last log.

        Weights or an optimizer's state holding a NaN or an infinity are refused (a
        :class:`~minitransformer.train.CheckpointError` naming the parameter and the step; nothing is written, a
        checkpoint at ``path`` stays), as :meth:`fit` refuses them before its checkpoints, unless
        ``allow_nonfinite`` (:func:`~minitransformer.train.save_checkpoint`'s)."""
        save_checkpoint(path, self.model, self.optimizer, self.schedule, step=self.step, tokenizer=self.tokenizer,
                        allow_nonfinite=allow_nonfinite,
                        history=self.history,
                        trainer_state={**self.state(), **self._params_state(), **self._running_means(),
                                       "host_rng": _backend.host_rng().bit_generator.state},  # (PCG64's: ints)
                        extra={**self.extra, RUN_ID: self.run_id},
                        rng_state=self._generator().get_rng_state())  # the generator dropout draws from

    def load(self, path, rng: str = "exact"):
        """Restore a checkpoint written by :meth:`save` (model, optimizer, schedule, RNG, data position, history).

        The random generators are the model's backend's (``rng`` below) and the host's
        (:func:`~minitransformer.backend.host_rng`, restored where the checkpoint holds it: one written before it
        did leaves it as it is); the running means of the steps since the last log go on (one written before
        they were saved starts the log interval anew).

        All of it, or nothing (:func:`~minitransformer.train.load_checkpoint`).

        Parameters
        ----------
        path : str or Path
            The checkpoint.
        rng : {"exact", "reseed"}
            ``"exact"``: restore the random generator, so that :meth:`fit` computes exactly the losses of the
            uninterrupted run; a checkpoint written on another backend (another kind of generator: a GPU's
            :class:`~minitransformer.backend.CounterRNG`, NumPy's PCG64) is refused, and nothing is loaded.
            ``"reseed"``: the same, but a checkpoint of another backend loads, and the generator gets a seed
            computed from the saved state (:attr:`rng_reseeded` says so): the run continues, with fresh
            dropout masks rather than the ones the backend that wrote it would have drawn (its floats would
            differ there anyway).

        Returns
        -------
        Checkpoint
            What the file holds (see :func:`~minitransformer.train.load_checkpoint`).

        Raises
        ------
        CheckpointError
            The file cannot be read, or does not fit the model, the optimizer, the schedule or (``"exact"``) the
            generator; the trainer, its model, optimizer and schedule are unchanged.

        Notes
        -----
        With ``restore_best``, the checkpoint's copy of the best parameters is loaded too. Where the model it holds
        is the best one, put back at the end of a :meth:`fit`, the model gets the last parameters it also holds:
        :meth:`fit` trains on from them (and puts the best back at its end), as the uninterrupted run does. A
        checkpoint written without a copy (before this option, or by a trainer without it) keeps its ``best`` for
        ``patience``, but not its parameters: unless a later evaluation betters it, :meth:`fit` keeps the last
        parameters (:attr:`restored_step` None), and a warning says so.
        """
        if rng not in ("exact", "reseed"):
            raise ValueError(f"Trainer.load: rng must be 'exact' or 'reseed', got {rng!r}")
        be = self._generator()  # the generator dropout draws from: the model's backend's
        ckpt = read_checkpoint(path)
        t, history = _checked_run_state(path, ckpt)  # read below once the model is loaded: checked before it is
        _refuse_model_only(ckpt, "Trainer.load")  # (before the messages on what it lacks, which would not say why)
        copies = {what: self._checked_params(path, what, t.get(what))  # checked before loading
                  for what in ("best_params", "last_params") if t.get(what) is not None}
        saved = t.get("accumulate", 1)  # checkpoints from before accumulation made steps of one
        if saved != self.accumulate:  # a data function's batch step * accumulate + i would be another run's batch
            raise CheckpointError(f"Trainer.load: {path}: its run made each step of {saved} batch(es), this trainer "
                                  f"of {self.accumulate}; build the Trainer with accumulate={saved} to continue it")
        reseed = rng == "reseed" and ckpt.rng_state is not None and not _rng_state_fits(ckpt.rng_state, be)
        with _backend.use(be):  # restore_rng restores the current backend's: the model's, here
            _load_read(ckpt, self.model, self.optimizer, self.schedule, restore_rng=not reseed)
        if reseed:
            be.manual_seed(_seed_from_rng_state(ckpt.rng_state))
        self.rng_reseeded = reseed
        self.step = ckpt.step
        self.history = history
        self.epoch, self.batch_in_epoch = t.get("epoch", 0), t.get("batch_in_epoch", 0)
        self.best, self.bad_evals = t.get("best"), t.get("bad_evals", 0)
        self.best_step, self.restored_step = t.get("best_step"), t.get("restored_step")
        # written before best_seen: its copy of the best was taken at best_step (min_delta counted for both)
        self.best_seen = t["best_seen"] if "best_seen" in t else self.best
        self.best_seen_step = t["best_seen_step"] if "best_seen_step" in t else self.best_step
        self._best_params = self._last_params = None
        if "last_params" in copies:  # the model holds the best, put back: training goes on from the last ones
            self._best_params = {name: p.data for name, p in self._named_params.items()}
            self._last_params = copies["last_params"]
        elif self.restore_best and "best_params" in copies:
            self._best_params = copies["best_params"]
        elif self.restore_best and self.best_seen is not None:
            at = "" if self.best_seen_step is None else f" at step {self.best_seen_step}"
            warnings.warn(f"Trainer.load: {path} holds no copy of the parameters of its best evaluation "
                          f"({self.monitor} {self.best_seen:g}{at}), written before restore_best or without it: "
                          "unless a later evaluation betters it, fit keeps the last parameters", stacklevel=2)
        if not self.restore_best and self._last_params is not None:  # no best to keep: train on, from the last
            self._put_params(self._last_params)
            self._best_params = self._last_params = self.restored_step = None
        # a stop the checkpoint's run decided holds here only if this trainer asks for the same kind of stop
        stop = t.get("early_stop")
        self.early_stop = stop if {"patience": self.patience, "target": self.target}.get(stop) is not None else None
        self.elapsed = t.get("elapsed_s", 0.0)
        self.last_eval = dict(t.get("last_eval") or {})
        self._eval_step = t.get("eval_step")  # the step evaluated last: fit to that step again does not repeat it
        self.kept_checkpoints = _kept_by(self.checkpoint_path, path, t.get("kept_checkpoints"))
        if isinstance(ckpt.extra.get(RUN_ID), str):  # the run goes on; one written before run ids gets this one's
            self.run_id = ckpt.extra[RUN_ID]
        self._loss.reset()
        self._norm.reset()
        self._update_lr, self._peak_lr = t.get("update_lr"), t.get("peak_lr")
        self._unread, self._first_norm = _Unread(self._update_lr, self._peak_lr), None
        running = {key: t.get(key) for key in ("running_loss", "running_norm")}
        if all(isinstance(v, dict) for v in running.values()):  # (written before them: the log interval starts anew)
            self._loss.load_state_dict(running["running_loss"])
            self._norm.load_state_dict(running["running_norm"])
        if t["host_rng"] is not None:  # (checked above, None where the host's generator is left as it is)
            _backend.host_rng().bit_generator.state = t["host_rng"]
        return ckpt

    def _checked_params(self, path, what: str, state) -> dict:
        """A checkpoint's copy ``what`` of the trainable parameters (name -> host array) as arrays on each
        parameter's device, refused unless it holds exactly their names, shapes and a float dtype."""
        named = self._named_params
        if not isinstance(state, dict) or set(state) != set(named):
            names = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(f"Trainer.load: {path}: its {what} are not this model's trainable parameters "
                                  f"(it holds {names}, the model has {sorted(named)})")
        wrong = [f"{name}: {getattr(a, 'shape', type(a).__name__)} of {getattr(a, 'dtype', '?')}, the model's {p.shape}"
                 for name, p in named.items() for a in [state[name]]
                 if tuple(getattr(a, "shape", ())) != p.shape or getattr(getattr(a, "dtype", None), "kind", "") != "f"]
        if wrong:
            raise CheckpointError(f"Trainer.load: {path}: its {what} do not fit the model: {'; '.join(wrong)}")
        return {name: p.backend.asarray(state[name], dtype=p.dtype_name) for name, p in named.items()}


def _checked_run_state(path, ckpt) -> tuple[dict, dict]:
    """The run's record a checkpoint holds for :meth:`Trainer.load` (its ``trainer_state`` and ``history``), checked
    before anything is loaded, with the numbers as Python's; a :class:`CheckpointError` naming the field and its value
    where one is not what a :class:`Trainer` writes (a damaged or hand-edited file): found only after the model and
    the optimizer had been loaded, it left them changed (``int("x")``), or a value was taken as it was (a
    ``batch_in_epoch`` of -1). (:func:`~minitransformer.train.read_checkpoint` has checked the fields' kinds: the step,
    a dict for each of trainer_state, history and extra.)"""
    try:
        t = dict(ckpt.trainer_state)
        op = "its trainer_state"
        for name in ("epoch", "batch_in_epoch", "bad_evals"):
            if name in t:
                t[name] = require_int(op, name, t[name], low=0)
        if "accumulate" in t:
            t["accumulate"] = require_int(op, "accumulate", t["accumulate"], low=1)
        for name in ("best_step", "restored_step", "best_seen_step", "eval_step"):
            if t.get(name) is not None:  # (absent stays absent: best_seen_step falls back on best_step)
                if not is_integer(t[name]) or t[name] < 0:
                    raise ValueError(f"{op}: {name} must be None or an integer >= 0, got {t[name]!r}")
                t[name] = int(t[name])
        for name in ("best", "best_seen", "update_lr", "peak_lr"):  # (the rates only say, in a divergence)
            if t.get(name) is not None:
                if not is_real(t[name]):
                    raise TypeError(f"{op}: {name} must be None or a number, got {t[name]!r}")
                t[name] = float(t[name])
        if t.get("early_stop") not in (None, "patience", "target"):  # (a list would not even be looked up)
            raise ValueError(f"{op}: early_stop must be None, 'patience' or 'target', got {t['early_stop']!r}")
        if "elapsed_s" in t:
            t["elapsed_s"] = require_real(op, "elapsed_s", t["elapsed_s"], low=0.0)
        last = t.get("last_eval")
        if last is not None and (not isinstance(last, dict) or not all(
                isinstance(k, str) and is_real(v) for k, v in last.items())):
            raise TypeError(f"{op}: last_eval must be a dict of name -> number, got {last!r:.80}")
        for name in ("running_loss", "running_norm"):  # the means since the last log, tried on a scratch mean
            if isinstance(t.get(name), dict):
                RunningMean().load_state_dict(t[name])
        host, kind = t.get("host_rng"), type(_backend.host_rng().bit_generator)
        if not (isinstance(host, dict) and host.get("bit_generator") == kind.__name__):
            t["host_rng"] = None  # (written before it was saved, or by another generator: the host's is left as it is)
        else:
            try:  # tried on a scratch generator: a state NumPy refuses would fail once the model had been loaded
                kind().state = host
            except (TypeError, ValueError, KeyError, OverflowError) as e:
                raise ValueError(f"{op}: host_rng is not a state of NumPy's {kind.__name__} ({e})") from None
        kept = t.get("kept_checkpoints")
        if kept is not None and not isinstance(kept, list):  # (its entries: _kept_by keeps the run's own names)
            raise TypeError(f"{op}: kept_checkpoints must be a list of file names, got {kept!r:.80}")
        history = _checked_history(ckpt.history)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"Trainer.load: {path}: {e}") from None
    return t, history


def _checked_history(history) -> dict:
    """A checkpoint's ``history`` (name -> [[step, value], ...], as :meth:`Trainer.fit` logs it) as the trainer's, or a
    TypeError naming the entry that is not so."""
    out = {}
    for name, pairs in history.items():
        if not isinstance(name, str) or not isinstance(pairs, list | tuple):
            raise TypeError(f"its history[{name!r}] must be a list of [step, value] pairs, got {pairs!r:.80}")
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and is_integer(pair[0]) and pair[0] >= 0
                    and is_real(pair[1])):
                raise TypeError(f"its history[{name!r}][{i}] must be a [step, value] pair of an integer >= 0 and a "
                                f"number, got {pair!r:.80}")
        out[name] = [[int(step), float(value)] for step, value in pairs]
    return out


class _Unread:
    """The losses of the steps since the last log where values are checked later (a GPU), kept on the device unread:
    the log's mean says whether to look, and :meth:`read` then reads them all at once, to name the first step whose
    loss was not finite. The steps follow one another from :attr:`first`; each 256 losses are stacked into one array,
    so that a long log interval keeps a number a step on the device and one on the host (its learning rate), not an
    array and a tuple."""

    STACKED = 256

    def __init__(self, before: float | None = None, peak: float | None = None):
        self.first: int | None = None
        self.before, self.peak = before, peak  # the rates of the update before the first step, and the highest then
        self.backend = None
        self.lrs = array.array("d")  # each step's learning rate
        self.losses: list = []  # arrays of shape (STACKED,), then the last steps' (1,)
        self.loose = 0  # how many of those last

    def add(self, step: int, lr: float, loss: Tensor) -> None:
        """Keep step ``step``'s ``loss`` (one element, on the device) and learning rate ``lr``."""
        if self.first is None:
            self.first, self.backend = step, loss.backend
        xp = self.backend.xp
        self.lrs.append(lr)
        self.losses.append(xp.reshape(loss.data, (1,)))
        self.loose += 1
        if self.loose == self.STACKED:  # (an operation on the device, not a read)
            self.losses[-self.STACKED:] = [xp.concat(self.losses[-self.STACKED:])]
            self.loose = 0

    def read(self) -> list[float]:
        """The losses, step after step, as Python floats: one read of the device."""
        return self.backend.to_host(self.backend.xp.concat(self.losses)).tolist()


def _read_at_once(x: Tensor) -> float | None:
    """``x`` (one element) as a Python number where its backend checks values at once (NumPy: the array is in host
    memory, reading it costs nothing, as ``check_range`` reads ids there); None where reading would make the host wait
    for the device (CuPy)."""
    be = x.backend
    return float(be.xp.reshape(x.data, ())) if be.check_values else None


def reaches_target(value: float, target: float, mode: str = "max") -> bool:
    """Whether a metric's ``value`` reaches ``target``: at or above it in mode "max", at or below it in "min".

    The rule of :class:`Trainer`'s ``target`` (and of ``tools/convergence.py``'s checks). A value equal to
    ``target`` rounded to float32 reaches it too: the accuracies are float32, the library's dtype (a share ``k / n``
    rounded once), that come here as Python floats (``Trainer`` makes every figure ``float()``), so that a run at
    exactly 7 of 10 right, float32(0.7) = 0.699999988, would never reach ``target=0.7`` compared as it is (nor, in
    mode "min", float32(0.3) = 0.300000012 reach 0.3). A float64 value is compared as it is but where it equals
    that float32.

    Parameters
    ----------
    value : float
        The metric, as ``Trainer.evaluate`` gives it.
    target : float
        The figure to reach.
    mode : {"max", "min"}
        Whether higher (an accuracy) or lower (a loss) is better.

    Examples
    --------
    >>> import numpy as np
    >>> seven_of_ten = float(np.float32(7 / 10))
    >>> seven_of_ten, reaches_target(seven_of_ten, 0.7), reaches_target(0.69, 0.7)
    (0.699999988079071, True, False)
    >>> reaches_target(1.25, 1.3, mode="min")
    True
    """
    if mode not in ("min", "max"):
        raise ValueError(f"reaches_target: mode must be 'min' or 'max', got {mode!r}")
    with np.errstate(over="ignore"):  # a target beyond float32's range rounds to inf, which no metric "equals"
        rounded = float(np.float32(target))
    at_target = value == rounded and math.isfinite(rounded)
    return at_target or (value <= target if mode == "min" else value >= target)


def _check_optimizer_holds_the_model(model: Module, optimizer: Optimizer) -> None:
    """Refuse an optimizer that holds a parameter which is not ``model``'s (made for another model, or for a copy).

    Leaving some of the model's parameters out of the optimizer is how they are frozen: allowed. A parameter outside
    the model is not: ``loss_fn(model, batch)`` gives it no gradient, so training would change nothing it holds
    (and an optimizer of only such parameters would train nothing, silently), and a checkpoint, which saves the
    model's weights, would not hold it.
    """
    own = {id(p) for p in model.parameters()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    foreign = [p for p in params if id(p) not in own]
    if foreign:
        raise ValueError(
            f"Trainer: the optimizer holds {len(foreign)} of its {len(params)} parameters (the first of shape "
            f"{foreign[0].shape}) that are not parameters of the {type(model).__name__} being trained; build it "
            f"from this model's parameters, e.g. {type(optimizer).__name__}(model.parameters(), ...) (leave out "
            "the ones to freeze)"
        )


class _NoBar:
    """Stands in for a progress bar when logging outside :meth:`Trainer.fit`."""

    def set_postfix(self, *args, **kwargs) -> None:
        pass


def _draws_in_place(stream) -> bool:
    """Whether a progress bar redrawn in place (``\\r``) shows as one line on ``stream``: a terminal, or a Jupyter
    kernel's output (which draws it, or a widget); not a file or a pipe (``train ... 2> log``, ``nohup``, a batch
    system's log), where each redraw is kept, one long line of them."""
    ipython = sys.modules.get("IPython")  # imported by a Jupyter kernel; imported alone, it runs no shell
    if ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _LineBar:
    """The progress where a bar cannot be redrawn in place: one line on stderr per log and evaluation,
    ``reverse: step 200/1000, loss 0.1234, lr 1.00e-03, val_accuracy 0.9500``. What of tqdm's bar
    :meth:`Trainer.fit` uses: ``update``, ``set_postfix``, ``close``."""

    def __init__(self, total: int, initial: int, desc: str, **_):
        self.total, self.n, self.desc = total, initial, desc

    def update(self, n: int) -> None:
        self.n += n

    def set_postfix(self, shown: dict, refresh: bool = False) -> None:
        values = "".join(f", {name} {value}" for name, value in shown.items())
        print(f"{self.desc}: step {self.n}/{self.total}{values}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass
