r"""Ready-made training runs: the data, the model, the loss and the metrics of each task, with settings that work.

==========  ================================  ==========================================================
task        model                             data, loss and the final metric
==========  ================================  ==========================================================
reverse     :class:`Transformer`              digit sequences (lengths 8-12) and their reverse;
copy                                          cross-entropy;
sort                                          exact-sequence accuracy of greedy decoding on held-out sources
dates       :class:`Transformer`              dates written by people (``"the 3rd of March 2021"``) to ISO
                                              (``"2021-03-03"``); as the digit tasks, on held-out dates
translate   :class:`Transformer`              ``source<TAB>target`` lines of a file of your own (``pairs``),
                                              word by word; as the digit tasks, on held-out sources
classify    :class:`TransformerClassifier`    the negation task (a bag of words cannot exceed 75%);
                                              binary cross-entropy; held-out accuracy and F1
charlm      :class:`DecoderOnlyLM`            the shipped ``tiny`` corpus or a text file of your own
                                              (``corpus``), character by character; cross-entropy;
                                              validation loss against a unigram model counted on
                                              the training text
==========  ================================  ==========================================================

Every task takes the settings of :data:`EVERY_TASK`: ``seed``, ``accumulate`` (``accumulate`` batches of
``batch_size`` make one optimizer step, :class:`~minitransformer.train.Trainer`'s gradient accumulation; 1 by
default), and ``restore_best`` (the Trainer's: True or False; None, the default, keeps the best model with
``patience`` or ``target``). Every task's training loss takes the setting ``label_smoothing`` (in [0, 1], 0 by
default; the paper's section 5.4 uses 0.1); the losses measured on held-out data are never smoothed.

(the dates task reads words (lower-cased, punctuation split off) and writes the ISO date's characters; a held-out
date is a day no training example names, in any format (:func:`~minitransformer.data.dates_task_splits`). The
translate task lower-cases both sides unless ``lower`` is False, splits punctuation off, and keeps the
``vocab_size`` most frequent words of each side's training split (the others read as ``<unk>``); its
``val_fraction`` and ``test_fraction`` of the distinct sources are held out, and pairs with a side longer than
``max_len`` words are left out of every split. Its figures are exact match and per-token accuracy, where a reference
``<unk>`` is a miss (:func:`~minitransformer.train.seq2seq_metrics`); no BLEU.)

(the charlm's "val" split is the last 10% of the corpus, cut at a line; it serves as its test split too. Its
setting ``corpus`` is the name of a shipped corpus, :func:`~minitransformer.data.available_corpora`, or else the
path of a UTF-8 text file, which the settings record as an absolute path. Its setting ``tokenizer`` is ``"char"``,
one token per character, or ``"bpe"``: a :class:`~minitransformer.data.BPETokenizer` whose merges are learned on
the training split until the vocabulary holds ``bpe_vocab`` entries (its alphabet is the whole corpus's). With
``"bpe"`` every figure is per token, a piece of about 2.5 characters: its loss is not comparable with a character
model's; ``val_bits_per_char``, the same total loss spread over the characters predicted, in bits, is. With ``"bpe"``
``steps`` defaults to 300, not 1,000, unless given: :func:`settings`.)

Each task is one entry of :data:`REGISTRY`, a :class:`Task`: its settings (the command line's defaults, chosen so
that ``minitransformer train --task reverse`` converges on a laptop's CPU: see ``tools/convergence.py``), its
builder, and what ``generate`` and the end of ``train`` do with it (:data:`TASKS`, ``KIND`` and :data:`DEFAULTS`
are made from it). :func:`settings` changes the settings by the overrides and checks them, for :func:`build` and the
command line; :func:`build` returns a :class:`TaskSetup` with everything :class:`~minitransformer.train.Trainer`
needs.

Each run has three disjoint splits where the data allow: *train*, *val* (watched during
training, for early stopping) and *test* (measured once at the end, so the figure reported was not
used to decide when to stop).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np  # host-side data: token id lists and NumPy id arrays

from .. import functional as F
from .. import nn, optim
from .._arguments import is_integer, is_real, require_int, require_real
from ..autograd import Tensor, concat, no_grad
from ..backend import manual_seed
from ..data import (
    BOS,
    DIGIT_TASKS,
    DIGITS,
    PAD,
    SPECIAL_TOKENS,
    UNK,
    BPETokenizer,
    CharTokenizer,
    CorpusError,
    DataLoader,
    Tokenizer,
    TokenizerPair,
    WordTokenizer,
    available_corpora,
    bag_of_words_ceiling,
    dates_task_splits,
    digit_task_splits,
    digit_tokenizer,
    is_negated,
    load_corpus,
    make_classification_batch,
    make_lm_batch,
    make_seq2seq_batch,
    negation_task,
    read_pairs,
    read_text,
    seq2seq_length,
    split_corpus,
    split_pairs,
    unigram_cross_entropy,
)
from ..data.batching import Batch
from .decoding import beam_search, generate, greedy_decode
from .metrics import (
    RunningMean,
    _exact_hits,
    _share,
    _token_hits,
    binary_accuracy,
    binary_f1,
    binary_labels,
    perplexity,
    strip_after_eos,
)
from .trainer import Trainer

__all__ = ["Task", "REGISTRY", "TASKS", "TEXT_SEQ2SEQ", "ISO_DATE_CHARS", "DEFAULTS", "EVERY_TASK", "TaskSetup",
           "settings", "build", "model_from_checkpoint", "warmup_schedule", "MODEL_TYPES"]

#: the settings of a digit task, which those of dates and translate change
_SEQ2SEQ_DEFAULTS = dict(
    steps=1000, batch_size=64, d_model=64, heads=4, layers=2, d_ff=256, dropout=0.0, lr=2e-3, warmup=200,
    schedule="cosine", label_smoothing=0.0, clip=1.0, n_train=20000, n_val=300, n_test=1000, min_len=8, max_len=12,
    norm_first=True, eval_every=100, target=None, patience=None, max_tokens=None,
)

#: the settings every task takes beside its own in :data:`DEFAULTS`, the seed of the data, the weights and the batch
#: order, the batches a step (:class:`~minitransformer.train.Trainer`'s gradient accumulation), and whether the run
#: ends with the model of its best evaluation (the Trainer's ``restore_best``; None: with ``patience`` or ``target``)
EVERY_TASK = dict(seed=0, accumulate=1, restore_best=None)


def _without(settings: dict, *names) -> dict:
    return {k: v for k, v in settings.items() if k not in names}


#: the learning-rate schedules of :func:`~minitransformer.train.warmup_schedule` (the setting ``schedule``)
SCHEDULES = ("cosine", "noam", "constant")
#: the charlm's tokenizers (the setting ``tokenizer``)
LM_TOKENIZERS = ("char", "bpe")

#: the model classes a checkpoint may name (its ``model_type``), by name, for
#: :func:`~minitransformer.train.model_from_checkpoint`
MODEL_TYPES = {"Transformer": nn.Transformer, "DecoderOnlyLM": nn.DecoderOnlyLM,
               "TransformerClassifier": nn.TransformerClassifier}


@dataclass
class TaskSetup:
    """One task, ready to train.

    Attributes
    ----------
    name : str
        The task (one of :data:`TASKS`).
    kind : {"seq2seq", "classify", "lm"}
        What the model does: :class:`Transformer`, :class:`TransformerClassifier` or :class:`DecoderOnlyLM`.
    settings : dict
        Every setting used (defaults with the overrides applied): saved with the checkpoint.
    model : Module
        The model, made on the current backend from ``settings["seed"]``.
    tokenizer : Tokenizer or TokenizerPair
        Turns the task's text into ids; for the dates and translate tasks a
        :class:`~minitransformer.data.TokenizerPair`: one tokenizer for the sources, one for the targets.
    optimizer : Optimizer
        Adam over the model's parameters.
    schedule : LRScheduler
        :func:`~minitransformer.train.warmup_schedule` of ``settings["schedule"]``.
    train_data : DataLoader or callable
        What :meth:`~minitransformer.train.Trainer.fit` takes.
    loss_fn : callable
        ``(model, batch) -> loss``.
    eval_fn : callable
        ``model -> dict`` on the *val* split, during training.
    final_metrics : callable
        ``model -> dict`` on the *test* split, once at the end.
    sample : callable
        ``model -> list of (name, weights (heads, L, S), query labels, key labels, mask)``: attention maps of
        one held-out example, for pictures, each with the mask its weights were computed with (a bool array,
        True where attention was allowed, broadcasting to ``(heads, L, S)``: causal for a language model's
        self-attention, the source's padding for a Transformer's): the ``mask`` of
        :func:`~minitransformer.viz.attention_heads` (a task of one's own whose tuples end at the key labels is
        drawn without one).
    val, test : list or array
        The held-out examples ``eval_fn`` and ``final_metrics`` measure: ``(src_ids, tgt_ids)`` pairs
        (seq2seq), ``(ids, label)`` pairs (classify); for the character LM the validation text's ids, and
        ``test`` None (it has no test split).

    Examples
    --------
    >>> from minitransformer.train import Trainer
    >>> setup = build("reverse", steps=2, batch_size=8, n_train=16, n_val=4, n_test=4, d_model=16, heads=2,
    ...               layers=1, d_ff=32)
    >>> trainer = Trainer(setup.model, setup.optimizer, setup.loss_fn, schedule=setup.schedule, log_every=1,
    ...                   progress=False)
    >>> history = trainer.fit(setup.train_data, steps=2)
    >>> setup.kind, trainer.step, len(history["train_loss"])
    ('seq2seq', 2, 2)
    >>> sorted(setup.eval_fn(setup.model))                   # on the val split
    ['val_accuracy', 'val_loss', 'val_token_accuracy']
    """

    name: str
    kind: str
    settings: dict
    model: nn.Module
    tokenizer: Tokenizer | TokenizerPair
    optimizer: optim.Optimizer
    schedule: optim.LRScheduler
    train_data: DataLoader | Callable[[int], Batch]
    loss_fn: Callable
    eval_fn: Callable
    final_metrics: Callable
    sample: Callable
    val: list | np.ndarray | None = None
    test: list | np.ndarray | None = None

    def trainer(self, **options) -> Trainer:
        """A :class:`~minitransformer.train.Trainer` of this setup: its model, optimizer, schedule, loss and
        evaluation, with the settings' ``clip`` (0: none), ``accumulate``, ``eval_every``, ``patience``, ``target``
        and ``restore_best``, watching the validation loss (``lm``) or accuracy; ``options`` add to these or replace
        them (``progress``, ``log_every``, ``checkpoint_path``, ...).

        >>> setup = build("copy", steps=2, batch_size=8, n_train=16, n_val=4, n_test=4, d_model=16, heads=2,
        ...               layers=1, d_ff=32)
        >>> trainer = setup.trainer(progress=False)
        >>> trainer.clip, trainer.monitor, trainer.fit(setup.train_data, steps=2) is trainer.history
        (1.0, 'val_accuracy', True)
        """
        s = self.settings
        defaults = dict(schedule=self.schedule, clip=s["clip"] or None, accumulate=s["accumulate"],
                        eval_fn=self.eval_fn, eval_every=s["eval_every"], patience=s["patience"], target=s["target"],
                        restore_best=s["restore_best"], monitor="val_loss" if self.kind == "lm" else "val_accuracy",
                        tokenizer=self.tokenizer, desc=self.name)
        return Trainer(self.model, self.optimizer, self.loss_fn, **{**defaults, **options})


#: the model class each kind of task builds (a checkpoint's ``model_type``)
_MODEL_OF_KIND = {"seq2seq": "Transformer", "classify": "TransformerClassifier", "lm": "DecoderOnlyLM"}


@dataclass(frozen=True)
class Task:
    """A task of the command line, all that the rest of the code asks of it: one entry of :data:`REGISTRY`.

    Attributes
    ----------
    name : str
        What :func:`build` and ``minitransformer train --task`` take.
    kind : {"seq2seq", "classify", "lm"}
        What its model does, :class:`TaskSetup`'s ``kind`` (:attr:`model_type` names the model's class).
    defaults : dict
        Its settings, with those of :data:`EVERY_TASK` the command line's defaults (checked by :func:`settings`).
    build : callable
        ``settings -> TaskSetup``: its data, model, loss and metrics, from settings :func:`settings` checked.
    reads : str
        What ``generate`` reads, in words ("digits", "a date", ...), for its messages.
    example : callable or None
        ``setup -> str``: the input ``generate`` runs where none is given; None: an input is needed.
    answer : callable
        ``answer(setup, text, example, **options) -> str``: what ``generate`` prints for ``text`` (``example`` where
        ``text`` is None). Its keyword parameters after these three are the options of ``generate`` it reads
        (``beam`` and ``alpha``, ``temperature``, ...): the others, given, are named on stderr as ignored.
    show : callable
        ``setup -> None``: prints what the trained model does with one held-out input, at the end of ``train``.
    option : str
        The command-line option that gives ``generate`` its input: ``--input``, or ``--prompt``.

    Examples
    --------
    >>> task = REGISTRY["reverse"]
    >>> task.kind, task.model_type, task.reads, task.defaults["steps"]
    ('seq2seq', 'Transformer', 'digits', 1000)
    >>> setup = task.build(settings("reverse", n_train=16, n_val=4, n_test=4, min_len=3, max_len=5, d_model=16,
    ...                             heads=2, layers=1, d_ff=32))
    >>> task.example(setup)                     # what ``generate`` reads where no --input is given
    '3 1 4 1 5'
    """

    name: str
    kind: str
    defaults: dict
    build: Callable
    reads: str
    example: Callable | None
    answer: Callable
    show: Callable
    option: str = "--input"

    @property
    def model_type(self) -> str:
        """The name of its model's class (``Transformer``, ``TransformerClassifier`` or ``DecoderOnlyLM``)."""
        return _MODEL_OF_KIND[self.kind]


def warmup_schedule(optimizer, warmup: int, steps: int, kind: str = "cosine") -> optim.LambdaLR:
    r"""The learning rate: a linear warm-up to the optimizer's ``lr`` over ``warmup`` steps, then a decay.

    .. math::
        \eta_t = \eta \cdot \begin{cases} t / w & t \le w \\
            \tfrac12 \left(1 + \cos\!\left(\pi \frac{t - w}{steps - w}\right)\right) & \text{cosine} \\
            \sqrt{w / t} & \text{noam (the paper's eq. 3, scaled to peak at } \eta\text{)} \\
            1 & \text{constant} \end{cases}

    The paper's schedule (``"noam"``) is :func:`~minitransformer.optim.noam_lr` divided by its peak,
    so ``lr`` is the highest rate reached; ``"cosine"`` falls to 0 at step ``steps``, which
    lets a short run end with small, careful steps.

    Parameters
    ----------
    optimizer : Optimizer
        Its groups' ``lr`` now is the peak :math:`\eta`.
    warmup : int
        :math:`w`, steps of linear warm-up (at least 1; the paper's ``warmup_steps``).
    steps : int
        :math:`steps`, the run's length (where the cosine reaches 0).
    kind : {"cosine", "noam", "constant"}
        What follows the warm-up.

    Returns
    -------
    LambdaLR
        The schedule, already at step 1 (rate :math:`\eta / w`).

    Examples
    --------
    >>> import minitransformer as mt
    >>> opt = optim.SGD([mt.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = warmup_schedule(opt, warmup=2, steps=4, kind="cosine")
    >>> rates = [s.get_last_lr()[0]]
    >>> for _ in range(3):
    ...     s.step(); rates.append(round(s.get_last_lr()[0], 3))
    >>> rates                     # 1/2, 1 (peak), (1 + cos(pi/2))/2, (1 + cos(pi))/2
    [0.5, 1.0, 0.5, 0.0]
    """
    if kind not in SCHEDULES:
        raise ValueError(f"warmup_schedule: kind must be 'cosine', 'noam' or 'constant', got {kind!r}")
    w = require_int("warmup_schedule", "warmup", warmup, low=1, why=" (steps of warm-up)")
    steps = require_int("warmup_schedule", "steps", steps, low=1, why=" (the run's length)")

    def factor(t: int) -> float:
        if t <= w:
            return t / w
        if kind == "noam":
            return optim.noam_lr(t, 1, w) * math.sqrt(w)  # min(t^-1/2, t w^-3/2) * w^1/2 = sqrt(w / t)
        if kind == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (t - w) / max(steps - w, 1))))

    return optim.LambdaLR(optimizer, factor)


# ------------------------------------------------------------------ the settings: every check, one table a kind
#: the kind of value a setting takes whose default is None (the others take their default's kind)
_KIND_OF_NONE = {"target": float, "patience": int, "vocab_size": int, "corpus_sha256": str, "pairs": str,
                 "pairs_sha256": str, "restore_best": bool, "max_tokens": int}
_KIND_NAMES = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}
#: the smallest value of each integer setting (counts and sizes from 1; the seed from 0; a review holds a sentiment
#: word and maybe "not")
_LOWEST = {"seed": 0, "min_words": 2, "max_words": 2,
           **dict.fromkeys(("steps", "batch_size", "d_model", "heads", "layers", "d_ff", "warmup", "n_train", "n_val",
                            "n_test", "min_len", "max_len", "seq_len", "eval_every", "patience", "vocab_size",
                            "bpe_vocab", "accumulate", "max_tokens"), 1)}
#: the most examples a task makes of each split (they are made in memory before anything trains; 10**9 would fill it)
_MOST_EXAMPLES = dict.fromkeys(("n_train", "n_val", "n_test"), 10_000_000)
#: the range of each number setting, as (low, high, low_open, high_open); ``target`` is an accuracy, in [0, 1]
_RANGE = {"lr": (0.0, None, True, False), "dropout": (0.0, 1.0, False, True), "clip": (0.0, None, False, False),
          "val_fraction": (0.0, 1.0, True, True), "test_fraction": (0.0, 1.0, True, True),
          "label_smoothing": (0.0, 1.0, False, False), "target": (0.0, 1.0, False, False)}
#: ranges that differ by task (charlm's ``target`` is a validation loss, any number >= 0)
_RANGE_OF_TASK = {("charlm", "target"): (0.0, None, False, False)}
#: the values a word setting may take
_CHOICES = {"schedule": SCHEDULES, "tokenizer": LM_TOKENIZERS, "pooling": nn.TransformerClassifier.poolings}
#: settings that name a file, recorded as an absolute path (a ``corpus`` that names a shipped corpus stays a name)
_FILES = ("corpus", "pairs")
#: the settings a task cannot do without (their default is None), and what the error says
_REQUIRED = {"pairs": "trains on a file of source<TAB>target lines: give it with --pairs FILE (the setting pairs)"}
#: checks of two settings together, where a task has both, as (a, b, whether their values pass, what a failure says)
_TOGETHER = (
    ("min_len", "max_len", lambda a, b: a <= b, "{a}={x} is longer than {b}={y}"),
    ("min_words", "max_words", lambda a, b: a <= b, "{a}={x} is longer than {b}={y}"),
    ("max_words", "max_len", lambda a, b: a <= b, "{a}={x} is longer than {b}={y}"),  # a review, the model's positions
    ("seq_len", "max_len", lambda a, b: a <= b, "{a}={x} is longer than {b}={y}"),  # a window, the model's positions
    ("d_model", "heads", lambda a, b: a % b == 0, "{a}={x} is not divisible by {b}={y}"),
    ("val_fraction", "test_fraction", lambda a, b: a + b < 1.0,
     "{a}={x} and {b}={y} hold out every source: together they must be below 1"),
)
#: defaults that depend on another setting, where the overrides leave them out, as (task, setting, value) ->
#: defaults. A BPE token of the shipped corpus is some 2.5 characters; its 11,700 training tokens, read 175 times over
#: in 1,000 steps, are learned by heart (val_bits_per_char 4.20 at 1,000 steps, 2.64 at 300, in docs/training.md)
_DEFAULTS_WHEN = {("charlm", "tokenizer", "bpe"): dict(steps=300)}


def _defaults(task: str) -> dict:
    """Every setting of ``task`` with its default: its entry's in :data:`REGISTRY` and :data:`EVERY_TASK`."""
    if task not in REGISTRY:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(REGISTRY)}")
    return {**REGISTRY[task].defaults, **EVERY_TASK}


def _checked(task: str, name: str, value, default):
    """``value`` of setting ``name`` (not None) if it is of its default's kind, in its range, one of its choices; as
    a Python int or float, a file's path absolute. Else a ValueError naming the task, the setting, what it takes and
    the value."""
    kind = _KIND_OF_NONE[name] if default is None else type(default)
    if kind is str and isinstance(value, os.PathLike):  # a corpus or pairs file given as a Path
        value = os.fspath(value)
    fits = {bool: lambda v: isinstance(v, bool), int: is_integer, float: is_real, str: lambda v: isinstance(v, str)}
    if not fits[kind](value):
        raise ValueError(f"task {task!r}: setting {name} must be {_KIND_NAMES[kind]} (the default is {default!r}), "
                         f"got {value!r}")
    if name in _LOWEST:  # --set steps=0 or seq_len=0 would train nothing or fail deep inside
        value = require_int(f"task {task!r}", name, value, low=_LOWEST[name])
    if name in _MOST_EXAMPLES and value > _MOST_EXAMPLES[name]:
        raise ValueError(f"task {task!r}: {name} must be at most {_MOST_EXAMPLES[name]:,} (the examples are made in "
                         f"memory before training), got {value!r}")
    if name in _RANGE:
        low, high, low_open, high_open = _RANGE_OF_TASK.get((task, name), _RANGE[name])
        value = require_real(f"task {task!r}", name, value, low, high, low_open=low_open, high_open=high_open)
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"task {task!r}: {name} must be one of {', '.join(_CHOICES[name])}, got {value!r}")
    if name in _FILES and not (name == "corpus" and value in available_corpora()):
        value = os.path.abspath(value)
    return kind(value) if kind in (int, float) else value


def settings(task: str, **overrides) -> dict:
    """Every setting of ``task``, checked: :data:`DEFAULTS` and :data:`EVERY_TASK` changed by ``overrides``.

    The one place a task's settings are made and checked: :func:`build` takes them from here, and so do
    ``minitransformer train`` (its ``--set``, ``--config`` and named options, and ``--resume``'s comparison with the
    checkpoint's settings) and ``tools/convergence.py``. Each check is a row of a table above this function: the
    kind of value (its default's), the lowest integer, the range of a number, the choices of a word, two settings
    together (``d_model`` divisible by ``heads``, ``seq_len`` not longer than ``max_len``, ...). What needs the data
    (a ``corpus`` that is no text file, a ``bpe_vocab`` below its alphabet) is checked where the task is built.

    A default may depend on another setting: with ``tokenizer="bpe"``, charlm's ``steps`` is 300 unless given (the
    shipped corpus is some 11,700 BPE tokens, which the 1,000 steps of the characters' default learn by heart).

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    **overrides
        Settings of :data:`DEFAULTS` and :data:`EVERY_TASK` to change; None keeps the default. Each takes a value of
        its default's kind (an integer for ``steps``, True or False for ``norm_first``; an integer where a number is
        wanted is a number; ``corpus`` and ``pairs`` a path, a string or an ``os.PathLike``).

    Returns
    -------
    dict
        Every setting of the task, numbers as Python's int and float (for JSON); ``pairs``, and a ``corpus`` that
        names no shipped corpus (:func:`~minitransformer.data.available_corpora`), as absolute paths.

    Raises
    ------
    ValueError
        An unknown task or setting, or a value its setting does not take: the message names the task, the setting,
        what it takes and the value.

    Examples
    --------
    >>> settings("reverse", lr=1)["lr"], settings("charlm")["steps"], settings("charlm", tokenizer="bpe")["steps"]
    (1.0, 1000, 300)
    >>> settings("charlm", tokenizer="bpe", steps=1000)["steps"]     # the steps given always win
    1000
    >>> settings("reverse", heads=3)
    Traceback (most recent call last):
    ...
    ValueError: task 'reverse': d_model=64 is not divisible by heads=3
    """
    defaults = _defaults(task)
    given = {name: value for name, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"task {task!r}: unknown setting(s) {unknown}; it takes {sorted(defaults)}")
    s = {name: value if value is None else _checked(task, name, value, defaults[name])
         for name, value in {**defaults, **given}.items()}
    for (owner, name, value), changed in _DEFAULTS_WHEN.items():
        if owner == task and s[name] == value:
            s.update({k: _checked(task, k, v, defaults[k]) for k, v in changed.items() if k not in given})
    for name, why in _REQUIRED.items():
        if name in s and s[name] is None:
            raise ValueError(f"task {task!r} {why}")
    for a, b, passes, says in _TOGETHER:
        if a in s and b in s and not passes(s[a], s[b]):
            raise ValueError(f"task {task!r}: " + says.format(a=a, b=b, x=s[a], y=s[b]))
    return s


def _loader(train, s: dict, collate, length=None) -> DataLoader:
    """The training batches: ``batch_size`` examples in a random order, or, with the setting ``max_tokens``, the
    paper's batches (section 5.1) of at most that many padded tokens, each example counting ``length(example)``
    (:func:`~minitransformer.data.seq2seq_length` for pairs: every tensor of the batch is within the budget),
    examples of similar length together (:func:`~minitransformer.data.token_batches`)."""
    if s["max_tokens"] is not None:
        return DataLoader(train, max_tokens=s["max_tokens"], shuffle=True, seed=s["seed"], collate=collate,
                          length=length)
    return DataLoader(train, s["batch_size"], shuffle=True, seed=s["seed"], drop_last=len(train) > s["batch_size"],
                      collate=collate)


def _optimizer(model, s: dict):
    # the paper's Adam (beta_2 = 0.98, eps = 1e-9) for the Transformer runs; plain Adam for the document's classifier
    opt = optim.Adam.paper(model.parameters(), lr=s["lr"]) if s["schedule"] != "constant" else \
        optim.Adam(model.parameters(), lr=s["lr"])
    return opt, warmup_schedule(opt, s["warmup"], s["steps"], s["schedule"])


def build(task: str, **overrides) -> TaskSetup:
    """Data, model, optimizer, schedule, loss and metrics of ``task``, with :data:`DEFAULTS` changed by ``overrides``.

    The model is made on the current backend, from ``mt.manual_seed(seed)`` (``seed`` also orders
    the batches), so the same settings give the same run.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    **overrides
        Settings of :data:`DEFAULTS` and :data:`EVERY_TASK` to change; None keeps the default. Each takes a
        value of its default's kind (an integer for ``steps``, True or False for ``norm_first``, ...), checked by
        :func:`settings`. ``clip`` caps the gradients' global norm; ``clip=0`` trains without clipping.

    Returns
    -------
    TaskSetup
        Everything :class:`~minitransformer.train.Trainer` needs.

    Raises
    ------
    ValueError
        An unknown task or setting, or a value its setting does not take (:func:`settings`); a ``bpe_vocab`` below
        the corpus's alphabet, or a classifier's ``vocab_size`` below its tokenizer's.
    CorpusError
        A ``corpus`` of charlm that is no text file (no such file, a folder, not UTF-8, empty), or too short for one
        window of ``seq_len + 1`` characters in its training part and in its validation part.

    Examples
    --------
    >>> setup = build("reverse", steps=10, n_train=64, n_val=8, n_test=8, d_model=16, heads=2, layers=1, d_ff=32)
    >>> setup.kind, type(setup.model).__name__, setup.tokenizer.vocab_size
    ('seq2seq', 'Transformer', 14)
    """
    s = settings(task, **overrides)
    manual_seed(s["seed"])
    return REGISTRY[task].build(s)


# ------------------------------------------------------------------ a trained model's answer to one input
def _batch_of_one(ids) -> Tensor:
    """The ids of one input as a batch of one, ``(1, len(ids))``."""
    return Tensor(np.asarray([ids], dtype=np.int64))


def _decoded(model, ids, beam: int = 1, alpha: float = 0.0, max_len: int | None = None) -> list[int]:
    """What a :class:`Transformer` writes for the source ``ids``, up to its ``<eos>``: greedy decoding (``beam`` 1) or
    a beam search of ``beam`` hypotheses with the length penalty ``alpha``."""
    src = _batch_of_one(ids)
    out = greedy_decode(model, src, max_len=max_len) if beam == 1 else \
        beam_search(model, src, beam_size=beam, max_len=max_len, alpha=alpha)
    return strip_after_eos(out.numpy()[0])


def _check_length(setup, n: int, unit: str, trained: tuple[int, int]) -> None:
    """An input of ``n`` tokens the model has no positions for is refused naming the task, before the model's own
    message, which says to build it with a larger ``max_len`` (an option the command line does not have). One whose
    length is outside ``trained`` runs, with a note on stderr: a model trained on 8 to 12 digits has never ended an
    output after 5, and does not."""
    if n > setup.model.max_len:  # the rows of its positional encoding
        raise ValueError(f"generate: the {setup.name} model reads at most {setup.model.max_len} {unit}, got {n}")
    low, high = trained
    if not low <= n <= high:
        print(f"minitransformer: generate: the {setup.name} model was trained on {low} to {high} {unit}, not {n}: "
              "its output may be wrong", file=sys.stderr)


def _note_unknown(setup, tok, text: str | None) -> None:
    """Name on stderr the words (characters) of ``text`` that ``tok``, the tokenizer that reads the input, reads as
    ``<unk>``: a model that never saw them answers anyway ("the film was not terrible" is "the film was not <unk>" to
    the classify task)."""
    unknown = dict.fromkeys(p for p in tok.tokenize(text or "") if p not in tok.stoi)  # each once, in order
    if unknown:
        print(f"minitransformer: generate: not in the {setup.name} model's vocabulary, read as <unk>: "
              f"{', '.join(map(repr, unknown))}", file=sys.stderr)


# ------------------------------------------------------------------ sequence to sequence
def _require_batch(op: str, b, how: str) -> Batch:
    """``b`` if it is a :class:`~minitransformer.data.batching.Batch`, else a TypeError saying ``how`` one is made (a
    DataLoader without ``collate`` gives lists of examples, which failed deep inside: "'list' object has no attribute
    'src'")."""
    if not isinstance(b, Batch):
        raise TypeError(f"{op}: expected a Batch, got {type(b).__name__}; {how}")
    return b


_BY_COLLATE = "make one with data.{0}(examples), or give the DataLoader collate=data.{0}"


def seq2seq_loss(model, b: Batch, label_smoothing: float = 0.0) -> Tensor:
    """Teacher-forced cross-entropy of ``model(src, tgt_in, ...)`` against ``tgt_out``, over the real target tokens
    (the batch's padding left out; smoothed as in :func:`~minitransformer.functional.cross_entropy`, paper 5.4).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import data, nn
    >>> mt.manual_seed(0)
    >>> model = nn.Transformer(10, 10, d_model=8, heads=2, d_ff=16, num_encoder_layers=1, num_decoder_layers=1,
    ...                        max_len=6, dropout=0.0)
    >>> b = data.make_seq2seq_batch([([4, 5, 6], [6, 5, 4]), ([7, 8], [8, 7])])
    >>> loss = seq2seq_loss(model, b)          # the mean over b.n_tokens = 7 targets: 5 ids and 2 <eos>
    >>> loss.shape, b.n_tokens, round(loss.item(), 2)   # untrained (a uniform guess of 10 ids: ln 10 = 2.30)
    ((), 7, 3.06)
    """
    b = _require_batch("seq2seq_loss", b, _BY_COLLATE.format("make_seq2seq_batch"))
    logits = model(b.src, b.tgt_in, b.src_mask, b.tgt_mask)  # (B, T, vocab)
    return F.cross_entropy(logits, b.tgt_out, ignore_index=b.pad_id, label_smoothing=label_smoothing)


#: an id no model writes, compared in the metrics in place of a reference ``<unk>`` (:func:`seq2seq_metrics`)
_NO_ID = -1


def seq2seq_metrics(pairs, batch_size: int = 500) -> Callable:
    """``model -> {"loss", "token_accuracy", "accuracy"}`` on ``pairs``: teacher-forced loss and accuracy per
    token, and the exact-sequence accuracy of greedy decoding (every output token right, then ``<eos>``).
    The model runs in eval mode (no dropout), and is put back in its mode afterwards.

    A reference ``<unk>`` (a word outside the target vocabulary: translate's held-out sentences have them) is a
    miss whatever the model writes: writing ``<unk>`` for it is not writing the word (sacreBLEU scores against the
    raw text, where no ``<unk>`` is). The digit tasks' and dates' targets hold none.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> model = nn.Transformer(10, 10, d_model=8, heads=2, d_ff=16, num_encoder_layers=1, num_decoder_layers=1,
    ...                        max_len=6)
    >>> metrics = seq2seq_metrics([([4, 5, 6], [6, 5, 4]), ([7, 8], [8, 7])])
    >>> sorted(metrics(model)), model.training    # untrained: its accuracies are near 0; dropout on again after
    (['accuracy', 'loss', 'token_accuracy'], True)
    """

    def metrics(model) -> dict:
        loss = RunningMean()
        token_hits = tokens = hits = 0  # counts, summed in integers (token_hits and tokens on the device)
        with nn.evaluating(model):
            for i in range(0, len(pairs), batch_size):
                chunk = pairs[i:i + batch_size]
                b = make_seq2seq_batch(chunk)
                logits = model(b.src, b.tgt_in, b.src_mask, b.tgt_mask)
                loss.add(F.cross_entropy(logits, b.tgt_out, ignore_index=b.pad_id), b.n_tokens)  # mean per token
                be, y = logits.backend, b.tgt_out.data
                reference = be.xp.where(y == UNK, be.xp.asarray(_NO_ID, dtype=y.dtype), y)  # <unk>: never a hit
                right, kept = _token_hits(logits, reference, ignore_index=b.pad_id)  # (on the device)
                token_hits, tokens = token_hits + right, tokens + kept
                out = greedy_decode(model, b.src, b.src_mask, max_len=min(b.tgt_out.shape[1] + 1, model.max_len))
                hits += _exact_hits(out.numpy(), be.to_host(reference))[0]
        return {"loss": loss.compute(), "token_accuracy": _share(token_hits, tokens, logits.backend).item(),
                "accuracy": hits / len(pairs)}

    return metrics


def _seq2seq(task: str, s: dict) -> TaskSetup:
    tok = digit_tokenizer()
    train, held_out = digit_task_splits(task, s["n_train"], s["n_val"] + s["n_test"], seed=s["seed"],
                                        min_len=s["min_len"], max_len=s["max_len"])
    val, test = held_out[:s["n_val"]], held_out[s["n_val"]:]
    return _encoder_decoder(task, s, tok, tok, tok, train, val, test, max_len=s["max_len"] + 2)


def _example_digits(setup) -> str:
    """The digits of pi, as many as the model was trained on (at most 11), spaced: a digit task's example input."""
    return " ".join("31415926535"[: setup.settings["max_len"]])


def _answer_digits(setup, text: str | None, example: str, beam: int, alpha: float) -> str:
    """The digits a digit task's model writes for ``text`` (spaces optional), at most 2 more than it reads."""
    digits = "".join((example if text is None else text).split())
    if not digits:
        raise ValueError("generate: the input is empty")
    if set(digits) - set(DIGITS):
        raise ValueError(f"generate: the {setup.name} task reads digits 0-9, got {text!r}")
    _check_length(setup, len(digits), "digits", (setup.settings["min_len"], setup.settings["max_len"]))
    tok = setup.tokenizer
    ids = _decoded(setup.model, tok.encode(digits), beam, alpha, max_len=min(len(digits) + 2, setup.model.max_len))
    return " ".join(tok.itos[i] for i in ids)


def _show_digits(setup) -> None:
    tok = setup.tokenizer
    src = tok.encode("".join(_example_digits(setup).split()))
    print(f"\nexample: {tok.decode(src)} -> {tok.decode(_decoded(setup.model, src))}")


def _encoder_decoder(task: str, s: dict, tokenizer, src_tok, tgt_tok, train, val, test, max_len: int,
                     example: int = 0) -> TaskSetup:
    """The :class:`Transformer` run of pairs of ids ``(src_ids, tgt_ids)``: ``src_tok`` made the sources, ``tgt_tok``
    the targets (the same one for the digit tasks); ``tokenizer`` is what the checkpoint saves; ``max_len`` the
    model's positions (a source, or ``<bos>`` + a target); ``test[example]`` the pair whose attention is drawn."""
    model = nn.Transformer(src_tok.vocab_size, tgt_tok.vocab_size, d_model=s["d_model"], heads=s["heads"],
                           d_ff=s["d_ff"], num_encoder_layers=s["layers"], num_decoder_layers=s["layers"],
                           dropout=s["dropout"], max_len=max_len, norm_first=s["norm_first"])
    opt, schedule = _optimizer(model, s)
    loader = _loader(train, s, make_seq2seq_batch, seq2seq_length)
    val_metrics, test_metrics = seq2seq_metrics(val), seq2seq_metrics(test)

    def eval_fn(model):
        return {f"val_{k}": v for k, v in val_metrics(model).items()}

    def final_metrics(model):
        m = test_metrics(model)
        return {"test_exact_sequence_accuracy": m["accuracy"], "test_token_accuracy": m["token_accuracy"],
                "test_loss": m["loss"], "n_test": len(test)}

    def sample(model):
        src, _ = test[example]
        out = greedy_decode(model, _batch_of_one(src))
        with no_grad():  # run the decoder on <bos> + its own output: the maps of the tokens it generated
            model.eval()
            # the tokens it wrote up to its <eos>, but a <bos> or <pad> (an untrained model writes them: no target
            # may hold them), cut so that <bos> + body fits max_len
            body = [t for t in strip_after_eos(out.numpy()[0]) if t not in (PAD, BOS)][: model.max_len - 1]
            body = body or [src[0]]
            b = make_seq2seq_batch([(src, body)])
            model(b.src, b.tgt_in, b.src_mask, b.tgt_mask)
        src_labels = [src_tok.itos[i] for i in src]
        tgt_labels = [tgt_tok.itos[i] for i in b.tgt_in.numpy()[0]]
        src_mask = b.src_mask.numpy()[0]  # (1, 1, S): the source's padding, hidden from both (none in a batch of one)
        return [
            ("cross_attention", model.decoder.cross_attn_weights[-1].numpy()[0], tgt_labels, src_labels, src_mask),
            ("encoder_self_attention", model.encoder.self_attn_weights[-1].numpy()[0], src_labels, src_labels,
             src_mask),
        ]

    return TaskSetup(task, "seq2seq", s, model, tokenizer, opt, schedule, loader,
                     partial(seq2seq_loss, label_smoothing=s["label_smoothing"]),
                     eval_fn, final_metrics, sample, val=val, test=test)


#: the target alphabet of the dates task, ISO 8601's digits and hyphen
ISO_DATE_CHARS = "-0123456789"


def _encoded(pairs, tok: TokenizerPair) -> list[tuple[list[int], list[int]]]:
    return [(tok.source.encode(src), tok.target.encode(tgt)) for src, tgt in pairs]


def _dates(s: dict) -> TaskSetup:
    train, held_out = dates_task_splits(s["n_train"], s["n_val"] + s["n_test"], seed=s["seed"])
    tok = TokenizerPair(WordTokenizer.from_texts([src for src, _ in train]), CharTokenizer(ISO_DATE_CHARS))
    train, held_out = _encoded(train, tok), _encoded(held_out, tok)
    longest = max(max(len(src), len(tgt) + 1) for src, tgt in train + held_out)  # a source, or <bos> + a date
    test = held_out[s["n_val"]:]
    wordy = max(range(min(len(test), 20)), key=lambda i: len(test[i][0]), default=0)  # words to align: a picture
    return _encoder_decoder("dates", s, tok, tok.source, tok.target, train, held_out[:s["n_val"]], test,
                            max_len=longest, example=wordy)


def _translate(s: dict) -> TaskSetup:
    where = f"task 'translate': pairs {s['pairs']!r}"
    try:
        pairs, text = read_pairs(s["pairs"])
    except CorpusError as e:
        raise CorpusError(where, e.problem) from None
    _check_digest(s, "pairs", text, where)
    short = [(a, b) for a, b in pairs if max(len(_WORDS.tokenize(a)), len(_WORDS.tokenize(b))) <= s["max_len"]]
    try:
        words = WordTokenizer([], lower=s["lower"])  # sources that read the same are one source
        train, val, test = split_pairs(short, s["val_fraction"], s["test_fraction"], seed=s["seed"],
                                       same=lambda source: " ".join(words.tokenize(source)))
    except ValueError as e:
        raise CorpusError(where, f"{e} (of {len(pairs)} pairs, {len(pairs) - len(short)} have a side longer than "
                                 f"max_len={s['max_len']} words)") from None
    sides = [WordTokenizer.from_texts([pair[i] for pair in train], lower=s["lower"], max_vocab=s["vocab_size"])
             for i in (0, 1)]
    tok = TokenizerPair(*sides)
    return _encoder_decoder("translate", s, tok, tok.source, tok.target, _encoded(train, tok), _encoded(val, tok),
                            _encoded(test, tok), max_len=s["max_len"] + 1)  # <bos> + the longest target


_WORDS = WordTokenizer([])  # cuts a text into words as the translate task's tokenizers will (case aside)


def _answer_words(setup, text: str | None, example: str | None, beam: int, alpha: float) -> str:
    """What the dates or translate model writes for ``text``, at most as many tokens as the model has positions."""
    tok = setup.tokenizer
    ids = tok.source.encode(example if text is None else text)
    if not ids:
        raise ValueError("generate: the input is empty")
    _note_unknown(setup, tok.source, text)
    if len(ids) > setup.model.max_len:
        raise ValueError(f"generate: the {setup.name} model reads at most {setup.model.max_len} words, got {len(ids)}")
    return tok.target.decode(_decoded(setup.model, ids, beam, alpha))


def _show_words(setup) -> None:
    tok, (src, reference) = setup.tokenizer, setup.test[0]  # a held-out source, beside its reference
    print(f"\nexample: {tok.source.decode(src)!r} -> {tok.target.decode(_decoded(setup.model, src))!r} "
          f"(reference {tok.target.decode(reference)!r})")


# ------------------------------------------------------------------ classification (the document's section 5)
def classification_loss(model, b: Batch, label_smoothing: float = 0.0) -> Tensor:
    r"""Binary cross-entropy of the model's one logit per text against the 0/1 label (the document's section 5.3).

    With label smoothing :math:`\epsilon` the target is :math:`y' = y (1 - \epsilon) + \epsilon / 2`, as
    Keras's ``BinaryCrossentropy(label_smoothing=...)`` does: the two-class case of the smoothed target
    :math:`q` of :func:`~minitransformer.functional.cross_entropy`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import data, nn
    >>> mt.manual_seed(0)
    >>> model = nn.TransformerClassifier(10, d_model=8, heads=2, d_ff=16, num_layers=1, max_len=6, dropout=0.0)
    >>> b = data.make_classification_batch([([4, 5, 6], 1), ([7, 8], 0)])
    >>> loss = classification_loss(model, b)   # untrained (a guess of 1/2 scores ln 2 = 0.69)
    >>> loss.shape, round(loss.item(), 2)
    ((), 0.63)
    """
    z = model(_require_batch("classification_loss", b, _BY_COLLATE.format("make_classification_batch")).src)  # (B,)
    y = Tensor(binary_labels("classification_loss", b.labels, z), backend=z.backend)  # (B,) labels 0 or 1
    if label_smoothing:
        y = y.astype(z.dtype_name) * (1.0 - label_smoothing) + label_smoothing / 2
    return F.binary_cross_entropy_with_logits(z, y)


def classification_metrics(examples, batch_size: int = 500) -> Callable:
    """``model -> {"loss", "accuracy", "f1"}`` over ``examples`` ``(ids, label)``, in eval mode (no dropout).

    The F1 is that of the positive class over all the examples at once (:func:`~minitransformer.train.binary_f1`),
    which the document's section 3.2.4 asks for beside the accuracy.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> model = nn.TransformerClassifier(10, d_model=8, heads=2, d_ff=16, num_layers=1, max_len=6)
    >>> metrics = classification_metrics([([4, 5, 6], 1), ([7, 8], 0), ([9], 1)])
    >>> sorted(metrics(model))
    ['accuracy', 'f1', 'loss']
    """
    labels = np.asarray([label for _, label in examples], dtype=np.int64)

    def metrics(model) -> dict:
        loss, logits = RunningMean(), []
        with nn.evaluating(model):
            for i in range(0, len(examples), batch_size):
                b = make_classification_batch(examples[i:i + batch_size])
                z = model(b.src)
                loss.add(F.binary_cross_entropy_with_logits(z, b.labels), len(b))
                logits.append(z)
        z = concat(logits)  # (N,): every text's logit, for the accuracy and the F1 of them all at once
        return {"loss": loss.compute(), "accuracy": binary_accuracy(z, labels).item(),
                "f1": binary_f1(z, labels).item()}

    return metrics


def _classify(s: dict) -> TaskSetup:
    train, held_out, tok = negation_task(s["n_train"], s["n_val"] + s["n_test"], seed=s["seed"],
                                         min_words=s["min_words"], max_words=s["max_words"])
    val, test = held_out[:s["n_val"]], held_out[s["n_val"]:]
    vocab = s["vocab_size"] or tok.vocab_size  # the document's 10000 rows work too: the extra ones go unused
    if vocab < tok.vocab_size:
        raise ValueError(f"task 'classify': vocab_size={vocab} is smaller than the tokenizer's {tok.vocab_size}")
    model = nn.TransformerClassifier(vocab, d_model=s["d_model"], heads=s["heads"], d_ff=s["d_ff"],
                                     num_layers=s["layers"], max_len=s["max_len"], dropout=s["dropout"],
                                     pooling=s["pooling"], pad_id=PAD, norm_first=s["norm_first"])
    opt, schedule = _optimizer(model, s)
    loader = _loader(train, s, make_classification_batch)
    val_metrics, test_metrics = classification_metrics(val), classification_metrics(test)

    def eval_fn(model):
        return {f"val_{k}": v for k, v in val_metrics(model).items()}

    ceiling = bag_of_words_ceiling(test, tok)  # what the sentiment word's polarity alone scores on this test split

    def final_metrics(model):
        m = test_metrics(model)
        return {"test_accuracy": m["accuracy"], "test_f1": m["f1"], "test_loss": m["loss"], "n_test": len(test),
                "bag_of_words_ceiling": round(ceiling, 4)}

    def sample(model):
        # a held-out review whose "not" flips the sentiment word: the case a bag of words gets wrong
        ids = next((ids for ids, _ in test if is_negated(ids, tok)), test[0][0])
        with no_grad():
            model.eval()
            model(_batch_of_one(ids))
        labels = [tok.itos[i] for i in ids]
        real = [i != PAD for i in ids]  # the classifier's mask: its keys are the real tokens
        if s["pooling"] == "cls":
            labels, real = ["[cls]"] + labels, [True] + real
        mask = np.asarray(real)[None, :]  # (1, S)
        return [("encoder_self_attention", model.encoder.self_attn_weights[-1].numpy()[0], labels, labels, mask)]

    loss_fn = partial(classification_loss, label_smoothing=s["label_smoothing"])
    return TaskSetup("classify", "classify", s, model, tok, opt, schedule, loader, loss_fn, eval_fn,
                     final_metrics, sample, val=val, test=test)


def _p_positive(model, ids) -> float:
    return float(model.predict_proba(_batch_of_one(ids)).numpy()[0])


def _answer_review(setup, text: str | None, example: str) -> str:
    """The class the classify model gives ``text``, with its probability."""
    ids = setup.tokenizer.encode(example if text is None else text)
    if not ids:
        raise ValueError("generate: the input is empty")
    _note_unknown(setup, setup.tokenizer, text)
    _check_length(setup, len(ids), "words", (setup.settings["min_words"], setup.settings["max_words"]))
    p = _p_positive(setup.model, ids)
    return f"{'positive' if p > 0.5 else 'negative'} (p(positive) = {p:.3f})"


def _show_reviews(setup) -> None:
    for text in ("the plot was not good", "not the plot was good"):  # "not" flips the sentiment word, or nothing
        print(f"example: {text!r} -> p(positive) = {_p_positive(setup.model, setup.tokenizer.encode(text)):.3f}")


# ------------------------------------------------------------------ character language model
def lm_loss(model, b: Batch, label_smoothing: float = 0.0) -> Tensor:
    """Next-character cross-entropy: ``logits[:, t]`` (from characters ``0..t``) against character ``t + 1``
    (smoothed as in :func:`~minitransformer.functional.cross_entropy`).

    Examples
    --------
    >>> import numpy as np
    >>> import minitransformer as mt
    >>> from minitransformer import data, nn
    >>> mt.manual_seed(0)
    >>> model = nn.DecoderOnlyLM(10, d_model=8, heads=2, d_ff=16, num_layers=1, max_len=8, dropout=0.0)
    >>> b = data.make_lm_batch(np.arange(40) % 6 + 4, seq_len=8, batch_size=2, rng=np.random.default_rng(0))
    >>> loss = lm_loss(model, b)                # the next id at 2 x 8 positions, untrained (uniform: ln 10 = 2.30)
    >>> loss.shape, round(loss.item(), 2)
    ((), 2.17)
    """
    b = _require_batch("lm_loss", b, "make one with data.make_lm_batch(ids, seq_len, batch_size, rng=...)")
    return F.cross_entropy(model(b.tgt_in), b.tgt_out, label_smoothing=label_smoothing)


def _lm_windows(n_ids: int, seq_len: int) -> int:
    """How many consecutive windows of ``seq_len`` ids, each with its next-id targets, ``n_ids`` ids hold:
    ``k = (n_ids - 1) // seq_len`` windows, predicting ids 1 .. ``k * seq_len``."""
    return (n_ids - 1) // seq_len


def lm_metrics(ids: np.ndarray, seq_len: int, batch_size: int = 64) -> Callable:
    """``model -> {"loss"}``: mean next-character cross-entropy over ``ids`` cut into consecutive windows, in eval
    mode (no dropout).

    Examples
    --------
    >>> import numpy as np
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> model = nn.DecoderOnlyLM(10, d_model=8, heads=2, d_ff=16, num_layers=1, max_len=8)
    >>> metrics = lm_metrics(np.arange(41) % 6 + 4, seq_len=8)   # 5 windows of 8 ids, each with its next ids
    >>> list(metrics(model))
    ['loss']
    """
    n = _lm_windows(len(ids), seq_len)
    if n < 1:
        raise ValueError(f"lm_metrics: the validation text has {len(ids)} characters, fewer than seq_len + 1 = "
                         f"{seq_len + 1}")
    starts = np.arange(n) * seq_len

    def metrics(model) -> dict:
        loss = RunningMean()
        with nn.evaluating(model):
            for i in range(0, n, batch_size):
                window = starts[i:i + batch_size, None] + np.arange(seq_len)[None, :]  # (B, T) positions
                x, y = Tensor(ids[window]), Tensor(ids[window + 1])
                loss.add(F.cross_entropy(model(x), y), window.size)
        return {"loss": loss.compute()}

    return metrics


def _corpus(s: dict) -> str:
    """The text of ``s["corpus"]``: a shipped corpus by name, else a file (its path absolute: :func:`settings`).

    ``s["corpus_sha256"]`` records the text's digest (the first 16 hex digits); given one (a checkpoint's settings),
    a text that differs from it is refused: evaluated or trained on, an edited file would give other figures."""
    if s["corpus"] in available_corpora():
        text = load_corpus(s["corpus"])
    else:
        try:
            text = read_text(s["corpus"])
        except CorpusError as e:
            raise CorpusError(f"task 'charlm': corpus {s['corpus']!r}", e.problem) from None
    _check_digest(s, "corpus", text, f"task 'charlm': corpus {s['corpus']!r}")
    return text


def _check_digest(s: dict, key: str, text: str, where: str) -> None:
    """Record in ``s[key + "_sha256"]`` the first 16 hex digits of ``text``'s SHA-256; refuse a text that differs from
    one recorded there already (a checkpoint's settings: an edited file would give other figures)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    if s[key + "_sha256"] not in (None, digest):
        raise CorpusError(where, f"changed since: its SHA-256 begins {digest}, not {s[key + '_sha256']}")
    s[key + "_sha256"] = digest


def _visible(token: str) -> str:
    """A token as a picture's label shows it: a line break as ``\\n`` (as ``repr`` writes it), a space as ``␣`` (a
    blank label reads as no label)."""
    return repr(token)[1:-1].replace(" ", "\u2423")


def _charlm(s: dict) -> TaskSetup:
    text = _corpus(s)
    train_text, val_text = split_corpus(text, s["val_fraction"]) if len(text) > 1 else (text, "")
    need = s["seq_len"] + 1  # one window and its next-character targets, in each part
    if min(len(train_text), len(val_text)) < need:
        raise CorpusError(
            f"task 'charlm': corpus {s['corpus']!r}",
            f"too short: {len(text)} characters, {len(train_text)} for training and {len(val_text)} for validation "
            f"(the last {s['val_fraction']:.0%}, from a line start), where each part needs seq_len + 1 = {need}")
    if s["tokenizer"] == "char":
        tok = CharTokenizer.from_text(text)
    else:  # merges learned on the training text only; the alphabet is the whole text's, so no validation <unk>
        try:
            tok = BPETokenizer.from_text(train_text, s["bpe_vocab"], alphabet=text)
        except ValueError as e:
            raise ValueError(f"task 'charlm': bpe_vocab: {e}") from None
    train_ids = np.asarray(tok.encode(train_text), dtype=np.int64)
    val_ids = np.asarray(tok.encode(val_text), dtype=np.int64)
    if min(len(train_ids), len(val_ids)) < need:
        raise CorpusError(
            f"task 'charlm': corpus {s['corpus']!r}",
            f"too short: {len(train_ids)} tokens for training and {len(val_ids)} for validation, where each part "
            f"needs seq_len + 1 = {need}")
    model = nn.DecoderOnlyLM(tok.vocab_size, d_model=s["d_model"], heads=s["heads"], d_ff=s["d_ff"],
                             num_layers=s["layers"], max_len=s["max_len"], dropout=s["dropout"],
                             norm_first=s["norm_first"])
    opt, schedule = _optimizer(model, s)
    seed, T, B = s["seed"], s["seq_len"], s["batch_size"]

    def train_data(i: int) -> Batch:  # random windows, seeded by the batch's index (the step, with accumulate 1, or
        return make_lm_batch(train_ids, T, B, rng=[seed, i])  # step * accumulate + micro-batch): a resumed run too

    val_metrics = lm_metrics(val_ids, T)
    n = _lm_windows(len(val_ids), T)  # lm_metrics' windows predict tokens 1 .. n T of the validation text
    predicted = [tok.itos[i] for i in val_ids[1:1 + n * T]]
    unigram = unigram_cross_entropy(tok.tokenize(train_text), predicted, tok.itos)  # scored on those same tokens
    chars_per_token = sum(map(len, predicted)) / len(predicted)

    def eval_fn(model):
        return {"val_loss": val_metrics(model)["loss"]}

    def final_metrics(model):
        loss = val_metrics(model)["loss"]
        return {"val_loss": loss, "val_perplexity": perplexity(loss), "unigram_val_loss": unigram,
                "val_loss_below_unigram": unigram - loss,
                "val_bits_per_char": loss / chars_per_token / math.log(2)}  # nats per token -> bits per character

    def sample(model):
        ids = val_ids[:min(32, T, len(val_ids))]  # at most the seq_len positions the model was trained on
        with no_grad():
            model.eval()
            model(Tensor(ids[None, :]))
        labels = [_visible(tok.itos[i]) for i in ids]
        weights = model.decoder.self_attn_weights[-1].numpy()[0]
        causal = F.causal_mask(len(ids)).numpy()  # (L, L): the mask the model builds, no key after the query
        return [("self_attention", weights, labels, labels, causal)]

    loss_fn = partial(lm_loss, label_smoothing=s["label_smoothing"])
    return TaskSetup("charlm", "lm", s, model, tok, opt, schedule, train_data, loss_fn, eval_fn,
                     final_metrics, sample, val=val_ids)


def _example_prompt(tok) -> str:
    """The charlm's example prompt: "The ", or for a text without those characters a line break, or else its first
    character (a prompt of characters the model never saw would start its text with <unk>). A BPE model's is "The":
    its space belongs to the next word (" cat"), so a prompt ending in a space ends in a token it rarely saw."""
    for prompt in ("The ", "\n"):
        if all(c in tok.stoi for c in prompt):
            return prompt.rstrip(" ") if isinstance(tok, BPETokenizer) else prompt
    return tok.itos[len(SPECIAL_TOKENS)]  # the first character after the specials


def _answer_prompt(setup, text: str | None, example: str, max_new_tokens: int, temperature: float,
                   top_k: int | None, seed: int, top_p: float | None) -> str:
    """The prompt ``text`` and the text the charlm model samples after it, seeded by ``seed``."""
    tok, T = setup.tokenizer, setup.settings["seq_len"]
    ids = tok.encode(example if text is None else text)  # a blank prompt is text too
    if not ids:
        raise ValueError("generate: the prompt is empty")
    _note_unknown(setup, tok, text)
    if len(ids) > T:
        unit = "tokens" if isinstance(tok, BPETokenizer) else "characters"
        print(f"minitransformer: generate: the charlm model reads the last {T} {unit} of the prompt "
              f"({len(ids)} given), the positions it was trained on", file=sys.stderr)
    out = generate(setup.model, _batch_of_one(ids), max_new_tokens, temperature=temperature, top_k=top_k, context=T,
                   seed=seed, top_p=top_p)
    return tok.decode(out.numpy()[0])


def _show_prompt(setup) -> None:
    tok = setup.tokenizer
    ids = generate(setup.model, _batch_of_one(tok.encode(_example_prompt(tok))), 120, temperature=0.8, top_k=10,
                   context=setup.settings["seq_len"])  # the positions it was trained on
    print(f"\nexample (temperature 0.8, top-k 10): {tok.decode(ids.numpy()[0])!r}")


# ------------------------------------------------------------------ the registry: a task is one entry
def _digit_task(name: str) -> Task:
    """The task of the transform ``name`` of :data:`~minitransformer.data.DIGIT_TASKS`: the digit tasks differ in it
    alone (a row there is a task here)."""
    return Task(name, "seq2seq", dict(_SEQ2SEQ_DEFAULTS), build=partial(_seq2seq, name), reads="digits",
                example=_example_digits, answer=_answer_digits, show=_show_digits)


#: every task of the command line, by name, in the order the command line lists them
REGISTRY: dict[str, Task] = {task.name: task for task in (
    *map(_digit_task, DIGIT_TASKS),
    Task("dates", "seq2seq", _without(dict(_SEQ2SEQ_DEFAULTS, steps=600), "min_len", "max_len"),  # the formats' lengths
         build=_dates, reads="a date", example=lambda setup: "the 3rd of March 2021", answer=_answer_words,
         show=_show_words),
    Task("translate", "seq2seq",
         _without(dict(_SEQ2SEQ_DEFAULTS, steps=2000, d_model=128, d_ff=512, dropout=0.1, label_smoothing=0.1,
                       eval_every=250, max_len=40, val_fraction=0.1, test_fraction=0.1, vocab_size=8000, lower=True,
                       pairs=None, pairs_sha256=None),
                  "n_train", "n_val", "n_test", "min_len"),  # its pairs are the file's
         build=_translate, reads="a sentence", example=None, answer=_answer_words, show=_show_words),
    Task("classify", "classify",
         dict(steps=2000, batch_size=64, d_model=32, heads=4, layers=2, d_ff=64, dropout=0.0, lr=2e-3, warmup=50,
              schedule="cosine", label_smoothing=0.0, clip=1.0, n_train=16000, n_val=500, n_test=1000, min_words=5,
              max_words=16, max_len=100, vocab_size=None, pooling="mean", norm_first=True, eval_every=250,
              target=None, patience=None, max_tokens=None),
         build=_classify, reads="a review", example=lambda setup: "the acting was not bad", answer=_answer_review,
         show=_show_reviews),
    Task("charlm", "lm",
         dict(steps=1000, batch_size=32, d_model=64, heads=4, layers=2, d_ff=256, dropout=0.0, lr=2e-3, warmup=100,
              schedule="cosine", label_smoothing=0.0, clip=1.0, seq_len=64, max_len=128, val_fraction=0.1,
              norm_first=True, eval_every=250, target=None, patience=None, corpus="tiny", corpus_sha256=None,
              tokenizer="char", bpe_vocab=512),
         build=_charlm, reads="a prompt to continue", example=lambda setup: _example_prompt(setup.tokenizer),
         answer=_answer_prompt, show=_show_prompt, option="--prompt"),
)}

# the registry seen by one field at a time, made from it at import (a task registered later is in REGISTRY alone)
#: the names of the ready-made runs, what :func:`build` and ``minitransformer train --task`` take
TASKS = tuple(REGISTRY)
#: what each task's model does (its ``TaskSetup.kind``)
KIND = {name: task.kind for name, task in REGISTRY.items()}
#: each task's settings (with those of :data:`EVERY_TASK`); ``build(task, **overrides)`` changes any of them, and so
#: does the command line's ``--set KEY=VALUE``
DEFAULTS = {name: task.defaults for name, task in REGISTRY.items()}
#: the sequence-to-sequence tasks on digits, one for each transform of :data:`~minitransformer.data.DIGIT_TASKS`
SEQ2SEQ = tuple(DIGIT_TASKS)
#: the sequence-to-sequence tasks on words, whose tokenizer is a :class:`~minitransformer.data.TokenizerPair`
TEXT_SEQ2SEQ = tuple(name for name in TASKS if KIND[name] == "seq2seq" and name not in SEQ2SEQ)


def model_from_checkpoint(ckpt) -> nn.Module:
    """Rebuild the model a :class:`~minitransformer.train.checkpoint.Checkpoint` describes (class and ``config``).

    How a notebook loads the model a ``minitransformer train`` run saved (exported as
    ``minitransformer.train.model_from_checkpoint``)::

        ckpt = read_checkpoint("train-output/reverse/checkpoint.npz")
        model = model_from_checkpoint(ckpt)
        model.load_state_dict(ckpt.model_state)

    Parameters
    ----------
    ckpt : Checkpoint
        From :func:`~minitransformer.train.read_checkpoint`, of a model in
        :data:`~minitransformer.train.tasks.MODEL_TYPES`.

    Returns
    -------
    Module
        A new model of the saved class and config, with fresh weights: load the saved ones with
        ``model.load_state_dict(ckpt.model_state)``.

    Raises
    ------
    CheckpointError
        The checkpoint names another class, or its config does not build one: no config, a key the class does not
        take, a value the class refuses (the message names the checkpoint, then the class's own words), or a size
        its saved arrays contradict (``src_vocab`` beside the embedding's rows, ``d_model``, ``d_ff``, the count of
        layers, a learned positional table's ``max_len``) or, where no array shows it, ``max_len`` over 1,048,576
        positions. Sizes are checked before the model is built: a config that lies about them allocates nothing.

    Examples
    --------
    >>> import os, tempfile
    >>> from minitransformer.train import read_checkpoint, save_checkpoint
    >>> lm = nn.DecoderOnlyLM(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ckpt = read_checkpoint(save_checkpoint(os.path.join(tmp, "lm.npz"), lm))
    >>> model = model_from_checkpoint(ckpt)
    >>> type(model).__name__, model.config == lm.config
    ('DecoderOnlyLM', True)
    >>> _ = model.load_state_dict(ckpt.model_state)
    """
    from .checkpoint import CheckpointError

    cls = MODEL_TYPES.get(ckpt.model_type)
    if cls is None:
        raise CheckpointError(f"checkpoint {ckpt.path!r} holds a {ckpt.model_type}: model_from_checkpoint rebuilds "
                              f"only the library's models {sorted(MODEL_TYPES)}; for a model of your own, build a "
                              f"{ckpt.model_type} and load the file into it, load_checkpoint(path, model)")
    where = f"checkpoint {ckpt.path!r}"
    if not isinstance(ckpt.config, dict):
        raise CheckpointError(f"{where} has no model config to rebuild the {ckpt.model_type} from")
    takes = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    unknown = sorted(set(ckpt.config) - set(takes))
    if unknown:
        raise CheckpointError(f"{where}: its config holds {', '.join(map(repr, unknown))}, which a {ckpt.model_type} "
                              f"does not take (it takes {', '.join(takes)}): a hand-made or edited file")
    _check_config_sizes(ckpt, where)
    try:
        return cls(**ckpt.config)
    except (TypeError, ValueError) as e:  # a size that is no integer, a rate out of range, ...
        said = " ".join(str(e).split())  # (on one line, cut: a value may be a long array)
        raise CheckpointError(f"{where}: its config does not build a {ckpt.model_type}: "
                              f"{said if len(said) <= 300 else said[:297] + '...'}") from e
    except MemoryError as e:
        raise CheckpointError(f"{where}: its config asks for a {ckpt.model_type} larger than this machine's memory "
                              f"({e}); its sizes: {_shown_config(ckpt.config)}") from e


#: for each model class, the sizes in its config that its saved arrays show, as (config key, array, axis), checked
#: before the model is built, so that a config that lies about them allocates nothing (``src_vocab=3_000_000`` beside
#: an embedding of 14 rows)
_SIZES_IN_STATE = {
    "Transformer": (("src_vocab", "src_embed.weight", 0), ("tgt_vocab", "tgt_embed.weight", 0),
                    ("d_model", "src_embed.weight", 1), ("d_ff", "encoder.layers.0.ffn.W_1.weight", 1)),
    "DecoderOnlyLM": (("vocab", "embed.weight", 0), ("d_model", "embed.weight", 1),
                      ("d_ff", "decoder.layers.0.ffn.W_1.weight", 1), ("max_len", "positional.weight", 0)),
    "TransformerClassifier": (("vocab_size", "embed.weight", 0), ("d_model", "embed.weight", 1),
                              ("d_ff", "encoder.layers.0.ffn.W_1.weight", 1)),
}
#: for each model class, its counts of layers, as (config key, the prefix of each layer's arrays)
_LAYERS_IN_STATE = {
    "Transformer": (("num_encoder_layers", "encoder.layers."), ("num_decoder_layers", "decoder.layers.")),
    "DecoderOnlyLM": (("num_layers", "decoder.layers."),),
    "TransformerClassifier": (("num_layers", "encoder.layers."),),
}
#: the most positions a checkpoint's config may give where no array shows them (a sinusoidal table of max_len x
#: d_model numbers is made when the model is built)
_MOST_POSITIONS = 1 << 20


def _check_config_sizes(ckpt, where: str) -> None:
    """Refuse a config whose sizes its arrays contradict (:data:`_SIZES_IN_STATE`, :data:`_LAYERS_IN_STATE`), or
    whose ``max_len`` no array shows and exceeds :data:`_MOST_POSITIONS`, before the model is built. A size that is no
    integer, or an array the checkpoint lacks, is left to the model's own checks and to loading."""
    from .checkpoint import CheckpointError

    config, state = ckpt.config, ckpt.model_state
    shown_by_arrays = set()
    for key, name, axis in _SIZES_IN_STATE.get(ckpt.model_type, ()):
        a = state.get(name)
        if a is None or not is_integer(config.get(key)) or getattr(a, "ndim", 0) <= axis:
            continue
        shown_by_arrays.add(key)
        if config[key] != a.shape[axis]:
            raise CheckpointError(
                f"{where}: its config gives {key}={config[key]!r}, but its array {name!r} has shape {a.shape} "
                f"({key} {a.shape[axis]}): a hand-made or edited file (the model is not built)")
    for key, prefix in _LAYERS_IN_STATE.get(ckpt.model_type, ()):
        layers = {name[len(prefix):].split(".", 1)[0] for name in state if name.startswith(prefix)}
        if layers and is_integer(config.get(key)) and config[key] != len(layers):
            raise CheckpointError(f"{where}: its config gives {key}={config[key]!r}, but it holds the arrays of "
                                  f"{len(layers)} layers ({prefix}*): a hand-made or edited file (the model is not "
                                  "built)")
    max_len = config.get("max_len")
    if "max_len" not in shown_by_arrays and is_integer(max_len) and max_len > _MOST_POSITIONS:
        raise CheckpointError(f"{where}: its config gives max_len={max_len!r} positions, more than the "
                              f"{_MOST_POSITIONS:,} a checkpoint may ask for (the model would make a table of "
                              f"max_len x d_model numbers; it is not built)")


def _shown_config(config: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.items() if is_integer(v))
