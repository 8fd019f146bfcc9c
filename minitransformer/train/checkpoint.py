r"""Checkpoints: everything a run needs to continue, in one ``.npz`` file read without pickle.

One file holds

* the model's weights (``model.state_dict()``: NumPy arrays, whatever backend trained them, so a
  checkpoint written on a GPU loads on a CPU), its class name, its ``config`` and the class of each of its modules
  (by path: a model whose modules differ, a sublayer swapped after it was built, is refused when loading);
* the optimizer's state (Adam's moments ...) and the learning-rate schedule's position;
* the step, the random generator's state, the data position and the metrics history, so that a
  resumed run computes exactly the losses the uninterrupted one would have;
* the tokenizer (as :meth:`~minitransformer.data.Tokenizer.to_dict` data), so the file alone can
  turn text into ids and back.

Layout inside the ``.npz`` (a zip of ``.npy`` arrays)::

    __meta__          uint8   UTF-8 JSON: format, version, model type, config, step, rng state,
                              tokenizer, history, ...; every array in it replaced by {"__array__": key}
    __checksum__      uint8   hex SHA-256 of __meta__ and of every array (name, dtype, shape, bytes)
    model/<name>              one array per entry of model.state_dict()
    optimizer/state/<i>/<k>   the optimizer's arrays (its nested dict, flattened into keys)

The file is written atomically: to a temporary file in the same folder, flushed to disk
(``fsync``), then renamed over the target with :func:`os.replace`. A crash mid-write leaves the
old checkpoint as it was. Reading checks the format, the version and the checksum before anything
is loaded; a damaged, truncated or mismatched file is refused with a :class:`CheckpointError`
that says what is wrong.

>>> import tempfile, os
>>> from minitransformer import nn
>>> model = nn.Linear(3, 2)
>>> path = os.path.join(tempfile.mkdtemp(), "linear.npz")
>>> _ = save_checkpoint(path, model, step=7)
>>> ckpt = load_checkpoint(path, nn.Linear(3, 2))
>>> ckpt.step, ckpt.model_type, sorted(ckpt.model_state)
(7, 'Linear', ['bias', 'weight'])
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import inspect
import json
import math
import os
import re
import secrets
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np  # checkpoints live on the host: NumPy arrays in, NumPy arrays out (averages are summed there)

from .. import backend as _backend
from .._arguments import require_int, shown
from ..autograd.engine import _add_note
from ..data import tokenizers as _tokenizers
from ..nn.module import ClassedState, Module, StateDictError, _first_class_difference, module_classes
from ..optim import LRScheduler, Optimizer

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "read_checkpoint", "load_checkpoint", "FORMAT",
           "VERSION", "average_checkpoints"]

#: what ``__meta__["format"]`` says in every checkpoint this module writes
FORMAT = "minitransformer-checkpoint"
#: the layout's version; a file of another version is refused rather than misread
VERSION = 1

_META, _CHECKSUM = "__meta__", "__checksum__"
#: the key of the one-entry dict that stands, in ``__meta__``, for an array stored under its own name
_ARRAY = "__array__"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, damaged, of another format, or not fitting the model.

    The message says what is wrong with the file, in the user's terms.

    Examples
    --------
    >>> try:
    ...     read_checkpoint("no/such/checkpoint.npz")
    ... except CheckpointError as e:
    ...     print(e)
    checkpoint 'no/such/checkpoint.npz': no such file
    """


@dataclass
class Checkpoint:
    """The contents of a checkpoint file, as plain data (NumPy arrays and Python values).

    Attributes
    ----------
    path : str
        The file it was read from.
    version : int
        The layout's version (:data:`~minitransformer.train.checkpoint.VERSION`).
    model_type : str
        The model's class name (``"Transformer"``, ``"DecoderOnlyLM"``, ...).
    config : dict or None
        The model's ``config`` (the keyword arguments that rebuild it), if it has one.
    model_state : dict of str to numpy.ndarray
        ``model.state_dict()``; where the checkpoint records ``modules``, a
        ``ClassedState`` that carries them, so that ``model.load_state_dict`` refuses
        a model whose modules differ.
    modules : dict of str to str or None
        The class name of each module of the model, by dotted path (``{"positional":
        "SinusoidalPositionalEncoding", ...}``), or None in a checkpoint written before they were recorded (which
        loads without this check).
    optimizer_state : dict or None
        ``optimizer.state_dict()`` (arrays as NumPy, numbers as Python numbers).
    optimizer_type : str or None
        The optimizer's class name (``"Adam"``).
    schedule_state : dict or None
        ``schedule.state_dict()``.
    schedule_type : str or None
        The schedule's class name (``"WarmupSchedule"``).
    step : int
        Optimizer steps taken.
    rng_state : dict or None
        The backend generator's state (``Backend.get_rng_state()``; NumPy's PCG64 on the CPU, the
        :class:`~minitransformer.backend.CounterRNG` on the GPU), or None if none was saved.
    tokenizer : dict or None
        ``tokenizer.to_dict()``.
    history : dict of str to list
        The metrics history.
    trainer_state : dict
        Where the trainer stood: data position, early-stopping counters, and (``Trainer(restore_best=True)``) a
        copy of the best parameters, ``best_params``, or, once the model holds the best, the last, ``last_params``.
    extra : dict
        Anything else JSON-able the caller saved (the task's name and settings, ...).

    Examples
    --------
    >>> import os, tempfile
    >>> from minitransformer import nn
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(os.path.join(tmp, "m.npz"), nn.Linear(3, 2), step=5, extra={"note": "hi"})
    ...     ckpt = read_checkpoint(path)
    >>> ckpt.model_type, ckpt.step, ckpt.extra, ckpt.optimizer_state
    ('Linear', 5, {'note': 'hi'}, None)
    >>> {name: a.shape for name, a in ckpt.model_state.items()}      # NumPy arrays
    {'weight': (3, 2), 'bias': (2,)}
    """

    path: str
    version: int
    model_type: str
    config: dict | None
    model_state: dict
    optimizer_state: dict | None = None
    optimizer_type: str | None = None
    schedule_state: dict | None = None
    schedule_type: str | None = None
    step: int = 0
    rng_state: dict | None = None
    tokenizer: dict | None = None
    history: dict = field(default_factory=dict)
    trainer_state: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    modules: dict | None = None

    def __post_init__(self):
        if self.modules is not None and getattr(self.model_state, "module_classes", None) != self.modules:
            self.model_state = ClassedState(self.model_state, self.modules)


# ------------------------------------------------------------------------------------------ writing
def save_checkpoint(path, model, optimizer=None, schedule=None, step: int = 0, rng_state="current", tokenizer=None,
                    history=None, trainer_state=None, extra=None, config=None, allow_nonfinite: bool = False) -> Path:
    """Write ``model`` (and whatever else is given) to ``path`` as one checkpoint, atomically.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file to write (its folder is created); an existing file is replaced only once
        the new one is complete on disk.
    model : Module
        Its ``state_dict()``, class name, ``config`` attribute (if any) and the class of each of its modules are
        saved. A ``config`` that lacks an argument of the class's ``__init__`` (a subclass's own, such as
        ``activation``) gets a warning naming it: a model rebuilt from the checkpoint (``cls(**ckpt.config)``) would
        have its default, not this model's value. A subclass puts its own arguments into ``self.config``.
    optimizer : Optimizer, optional
        Its ``state_dict()`` and class name are saved.
    schedule : LRScheduler, optional
        Its ``state_dict()`` and class name are saved.
    step : int
        Optimizer steps taken.
    rng_state : dict, "current" or None
        ``"current"``: the current backend's generator state (on every backend, the GPU's included).
    tokenizer : Tokenizer or dict, optional
        Saved as :meth:`~minitransformer.data.Tokenizer.to_dict` data. A tokenizer that
        :func:`~minitransformer.data.tokenizer_from_dict` would not read back as itself (a subclass without a
        ``kind`` of its own, which would come back as its parent) is refused.
    history : dict of str to list, optional
        The metrics history.
    trainer_state, extra : dict, optional
        JSON-able data (numbers, strings, lists, dicts; NumPy arrays are stored as arrays).
    config : dict, optional
        The model's configuration; by default ``model.config`` if the model has one.
    allow_nonfinite : bool
        Write the model's weights and the optimizer's state even where they hold a NaN or an infinity (a run that
        diverged, saved to look into); by default they are refused: saved every N steps of a loop of one's own, they
        would replace the last good checkpoint with a model that computes only NaN.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    CheckpointError
        ``path`` is a folder, or lies under a file; or the data hold something a checkpoint cannot (a Python
        object, a dict ``{"__array__": ...}``: the form the file uses inside for an array, a tokenizer that would
        not read back as itself); or, unless ``allow_nonfinite``, the model's weights or the optimizer's state hold
        a NaN or an infinity (the message names the first such parameter and the step). Everything is
        checked before the file is written: a refused save leaves an older checkpoint at ``path`` as it was.
    TypeError, ValueError
        An argument of the wrong kind (``model`` not a Module, ``step`` not an integer >= 0, ...).

    Examples
    --------
    >>> import os, tempfile
    >>> from minitransformer import nn, optim
    >>> model = nn.Linear(3, 2)
    >>> opt = optim.Adam(model.parameters())
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(os.path.join(tmp, "run", "ckpt.npz"), model, opt, step=3)   # folder created
    ...     files = sorted(os.listdir(os.path.dirname(path)))
    ...     ckpt = read_checkpoint(path)
    >>> path.name, files, ckpt.optimizer_type
    ('ckpt.npz', ['ckpt.npz'], 'Adam')
    """
    path = _destination(path)
    if not isinstance(model, Module):
        raise TypeError(f"save_checkpoint: model must be an nn.Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"save_checkpoint: optimizer must be an Optimizer or None, got {type(optimizer).__name__}")
    if schedule is not None and not isinstance(schedule, LRScheduler):
        raise TypeError(f"save_checkpoint: schedule must be an LRScheduler or None, got {type(schedule).__name__}")
    step = require_int("save_checkpoint", "step", step, low=0)
    for name, value in (("history", history), ("trainer_state", trainer_state), ("extra", extra)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"save_checkpoint: {name} must be a dict or None, got {type(value).__name__}")
    if tokenizer is not None and not isinstance(tokenizer, dict) and not hasattr(tokenizer, "to_dict"):
        raise TypeError(f"save_checkpoint: tokenizer must be a Tokenizer (with to_dict()), its dict or None, got "
                        f"{type(tokenizer).__name__}")
    if rng_state == "current":
        rng_state = _backend.current().get_rng_state()
    if config is None:
        config = getattr(model, "config", None)
    _warn_config_lacks_arguments(model, config)
    if tokenizer is not None and hasattr(tokenizer, "to_dict"):
        tokenizer = _tokenizer_data(tokenizer)
    arrays: dict[str, np.ndarray] = {}
    model_state = model.state_dict()
    for name, value in model_state.items():
        arrays[f"model/{name}"] = _check_array(f"model/{name}", value)
    optimizer_state = None if optimizer is None else optimizer.state_dict()
    if not allow_nonfinite:  # on the host copies the file is written from: no read of the device more
        _refuse_not_finite(path, step, model, optimizer, model_state, optimizer_state)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model_type": type(model).__name__,
        "config": _flatten("config", config, arrays),
        "model_keys": list(model_state),
        "modules": [[path, name] for path, name in module_classes(model).items()],
        "step": step,
        "rng_state": _flatten("rng_state", rng_state, arrays),
        "tokenizer": _flatten("tokenizer", tokenizer, arrays),
        "optimizer": _flatten("optimizer", optimizer_state, arrays),
        "optimizer_type": None if optimizer is None else type(optimizer).__name__,
        "schedule": _flatten("schedule", None if schedule is None else schedule.state_dict(), arrays),
        "schedule_type": None if schedule is None else type(schedule).__name__,
        "history": _flatten("history", history or {}, arrays),
        "trainer": _flatten("trainer", trainer_state or {}, arrays),
        "extra": _flatten("extra", extra or {}, arrays),
    }
    meta_bytes = json.dumps(meta, allow_nan=True, sort_keys=True).encode("utf-8")
    arrays[_META] = np.frombuffer(meta_bytes, dtype=np.uint8)
    arrays[_CHECKSUM] = np.frombuffer(_checksum(arrays).encode("ascii"), dtype=np.uint8)
    _write_atomically(path, lambda f: np.savez(f, **arrays))
    return path


def _refuse_not_finite(path: Path, step: int, model, optimizer, model_state: dict, optimizer_state) -> None:
    """Refuse to save weights, or an optimizer's state (Adam's moments), holding a NaN or an infinity, naming the
    first such parameter (the optimizer's state by the model's name of its parameter) and the step. Buffers are not
    weights: a constant one may hold -inf by design (an additive causal mask), and is saved as it is."""
    named = {id(p): name for name, p in model.named_parameters()}
    weights = set(named.values())
    bad = [f"parameter {name!r}" for name, a in model_state.items()
           if name in weights and a.dtype.kind == "f" and not np.isfinite(a).all()]
    if optimizer_state:
        params = list({id(p): p for group in optimizer.param_groups for p in group["params"]}.values())  # its i
        bad += [f"the optimizer's {key!r} of parameter {named.get(id(params[i]), i)!r}"
                for i, state in optimizer_state["state"].items() for key, a in state.items()
                if isinstance(a, np.ndarray) and a.dtype.kind == "f" and not np.isfinite(a).all()]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise CheckpointError(f"save_checkpoint: {bad[0]}{more} holds NaN or infinity at step {step}: the run "
                              f"diverged; {str(path)!r} is not written (a checkpoint there stays as it was); "
                              "allow_nonfinite=True writes it all the same, to look into")


def _warn_config_lacks_arguments(model: Module, config) -> None:
    """Warn where ``config`` (the model's, saved to rebuild it) lacks a named argument of its class's ``__init__``:
    rebuilt from the checkpoint, the model would get that argument's default, whatever this one was built with (a
    subclass's ``activation="gelu"``). Arguments gathered by ``*args``/``**kwargs`` are not named, and not checked."""
    if not isinstance(config, dict):
        return
    cls = type(model)
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # (after self)
    except (TypeError, ValueError):  # a constructor Python cannot describe
        return
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    missing = [p.name for p in parameters if p.kind in named and p.name not in config]
    if missing:
        shown_missing = ", ".join(map(repr, missing))
        warnings.warn(
            f"save_checkpoint: {cls.__name__}.__init__ takes {shown_missing}, which the model's config lacks (it holds "
            f"{sorted(config)}): a {cls.__name__} rebuilt from this checkpoint ({cls.__name__}(**ckpt.config), or "
            f"read into one built so) gets the default, not this model's value. A subclass puts its own arguments "
            f"into self.config in its __init__ (self.config = {{**self.config, {missing[0]!r}: {missing[0]}}})",
            UserWarning, stacklevel=3)


def _tokenizer_data(tokenizer) -> dict:
    """``tokenizer.to_dict()``, refused (a :class:`CheckpointError` saying what the class needs) where
    :func:`~minitransformer.data.tokenizer_from_dict` would not read it back as the tokenizer it is: a subclass
    without a ``kind`` of its own would come back as its parent, tokenizing otherwise."""
    try:
        state = tokenizer.to_dict()
    except _tokenizers._NotSaveable as e:
        raise CheckpointError(f"save_checkpoint: {e}") from e
    if isinstance(tokenizer, _tokenizers.Tokenizer | _tokenizers.TokenizerPair):
        try:
            _tokenizers._check_reads_back(tokenizer, state, "save_checkpoint")
        except TypeError as e:
            raise CheckpointError(str(e)) from e
    return state


def _check_array(key: str, value) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype.kind not in "biuf":  # anything else would need pickle to read back
        raise CheckpointError(f"save_checkpoint: {key!r} holds dtype {value.dtype}; only numbers can be saved")
    return np.ascontiguousarray(value)


def _flatten(prefix: str, value, arrays: dict):
    """``value`` as JSON data; each NumPy array inside goes to ``arrays[prefix/...]`` and leaves a reference.

    A nested dict such as an optimizer's ``{"state": {0: {"m": array}}}`` becomes the JSON
    ``{"state": {"0": {"m": {"__array__": "optimizer/state/0/m"}}}}`` plus the array under that key.
    """
    if isinstance(value, np.ndarray):
        key, n = prefix, 1
        while key in arrays:  # {"a/b": x, "a": {"b": y}}: two arrays, one path; each gets its own name
            key, n = f"{prefix}~{n}", n + 1
        arrays[key] = _check_array(prefix, value)
        return {_ARRAY: key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:  # it would be read back as the array of that name (or refused as missing)
            raise CheckpointError(
                f"save_checkpoint: {prefix!r} is the dict {{{_ARRAY!r}: {value[_ARRAY]!r}}}, the form a checkpoint "
                f"uses inside for an array stored apart; it cannot be saved as data (give it another key, or more "
                f"than one)"
            )
        out = {}
        for k, v in value.items():
            if not isinstance(k, str | int) or isinstance(k, bool):
                raise CheckpointError(f"save_checkpoint: key {k!r} under {prefix!r} is not a string or an integer")
            out[str(k)] = _flatten(f"{prefix}/{k}", v, arrays)
        return out
    if isinstance(value, list | tuple):
        return [_flatten(f"{prefix}/{i}", v, arrays) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if hasattr(value, "shape") and _backend._backend_name_of(value) is not None:  # a device array
        return _flatten(prefix, _backend.get(_backend._backend_name_of(value)).to_host(value), arrays)
    raise CheckpointError(
        f"save_checkpoint: {prefix!r} is a {type(value).__name__}; a checkpoint holds numbers, strings, lists, "
        "dicts and NumPy arrays only (no pickle)"
    )


def _destination(path) -> Path:
    """``path`` as a Path a file can be written to, checked before anything is: not empty, not a folder, not
    under a file (else the rename at the end would fail with the system's words, or the folder not be made)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"save_checkpoint: path must be a str or a Path, got {type(path).__name__}")
    if str(path) == "":
        raise CheckpointError("save_checkpoint: path is empty; give a file name such as 'checkpoint.npz'")
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"save_checkpoint: {str(path)!r} is a folder; give a file path such as "
                              f"{str(path / 'checkpoint.npz')!r}")
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise CheckpointError(f"save_checkpoint: {str(path)!r} cannot be written: {str(blocker)!r} is a file, "
                              "not a folder")
    return path


def _file_in_the_way(folder) -> Path | None:
    """The first of ``folder`` and the folders above it that exists and is not a folder (a file where a folder is
    needed), or None if ``folder`` can be made or already is one.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(os.path.join(tmp, "notes.txt"), "wb").close()
    ...     print(_file_in_the_way(os.path.join(tmp, "run")))
    ...     print(_file_in_the_way(os.path.join(tmp, "notes.txt", "run")).name)
    None
    notes.txt
    """
    folder = Path(folder)
    for above in (folder, *folder.parents):
        if above.exists() and not above.is_dir():
            return above
    return None


def _checksum(arrays: dict) -> str:
    """SHA-256 over every entry but the checksum itself: name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        if key == _CHECKSUM:
            continue
        a = np.ascontiguousarray(arrays[key])  # (a 0-d array's shape is (1,) here, in every stored checksum)
        h.update(key.encode("utf-8") + b"\0" + a.dtype.str.encode() + b"\0" + repr(a.shape).encode() + b"\0")
        h.update(a)  # its buffer, not a copy of it (a.tobytes(): the same bytes)
    return h.hexdigest()


def _remove_stale_temporaries(path) -> list[Path]:
    """Delete the temporary files that writes of ``path`` killed midway left beside it (``.<name>.<random>.tmp``:
    a write interrupted by an exception removes its own; one killed by SIGKILL or a power cut cannot). Call it
    when no other write of ``path`` can be running, as a training run does at its start. Returns what it removed.
    """
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def _temporary_file_beside(path: Path, folder: Path) -> tuple[int, Path]:
    """A new empty file ``folder/.<name>.<random>.tmp``, open for writing, and its path.

    Made with mode ``0o666`` which the system reduces by the umask, as for any new file (``tempfile.mkstemp``
    would give ``0o600``, which the rename would keep): the checkpoint's mode is the one ``metrics.json``
    beside it gets, with no umask to read and no window in which the file has another.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # O_EXCL: a new file, never another's
    while True:
        tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # a name already taken: draw another
            continue


#: the seconds waited before each new try of a rename that Windows refused, the file being open in another program
#: (an ``evaluate`` reading the checkpoint, an antivirus, a search indexer), which lets go of it within moments
_REPLACE_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8)
#: whether a rename over a file may be refused because another program has it open (Windows); elsewhere a refusal
#: is about permissions, and neither waiting nor closing a program helps
_OPEN_FILES_BLOCK_RENAMES = os.name == "nt"


def _replace(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)``, tried again on Windows while it raises PermissionError (``path`` is open in another
    program). An error names ``path``, the file the user knows, not the temporary file."""
    waits = _REPLACE_WAITS if _OPEN_FILES_BLOCK_RENAMES else ()
    for wait in (*waits, None):
        try:
            os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
            return
        except OSError as e:
            if isinstance(e, PermissionError) and wait is not None and not os.path.isdir(path):
                time.sleep(wait)
                continue
            if os.path.isdir(path):  # (Windows says "Access is denied", Linux "Is a directory")
                why = "is a folder, not a file: remove or rename it"
            elif isinstance(e, PermissionError) and _OPEN_FILES_BLOCK_RENAMES:
                why = (f"{e.strerror or e}; it may be open in another program (an evaluate, an antivirus, a file "
                       "indexer): close it and run again")
            else:
                why = e.strerror or str(e)
            raise OSError(e.errno, why, str(path)) from e


def _write_atomically(path: Path, write) -> None:
    """``write(f)`` into a temporary file beside ``path``, fsync it, rename it over ``path``: all or nothing.

    How training writes its files (the checkpoint, ``metrics.json``): a crash or a full disk mid-write leaves the
    old file as it was, and no temporary file behind (where the system refuses to remove it, a note on the error
    names it). Every error names ``path``, not the temporary file.
    """
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = _temporary_file_beside(path, folder)
    except OSError as e:  # named by the file the user knows, not by the temporary file's random name
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        _replace(tmp, path)
    except BaseException as e:
        error = e
        if isinstance(e, OSError) and (e.filename is None or str(e.filename) == str(tmp)):  # (a full disk: no name)
            error = OSError(e.errno, e.strerror or str(e), str(path))
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        except OSError as left:  # (a folder made read-only meanwhile) said, but the error in flight is the one raised
            _add_note(error, f"its temporary file {str(tmp)!r} was left behind ({left.strerror or left})")
        if error is e:
            raise
        raise error from e
    try:  # make the rename itself durable (POSIX; Windows cannot open a folder)
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ------------------------------------------------------------------------------------------ reading
def read_checkpoint(path) -> Checkpoint:
    """Read and verify a checkpoint file; nothing is loaded into any model.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_checkpoint`.

    Returns
    -------
    Checkpoint
        Its contents: NumPy arrays and Python values.

    Raises
    ------
    CheckpointError
        The file is missing, not a regular file, not a ``.npz``, holds Python objects, is truncated, damaged
        (checksum), of another format or version, or lacks an array its description names; or it is not what
        :func:`save_checkpoint` writes (a hand-made or tampered file): a member its description does not name (refused
        unread: nothing is inflated that a checkpoint does not use), a member that is no ``.npy`` array of numbers,
        whose header's shape and dtype do not make its size, or that inflates to over 256 MiB and 100 times its size in
        the file, members that inflate to over 256 MiB in all and 10 times their size in the file, a description
        (``__meta__``) of over 16 MiB, or a field of it of the wrong kind (the message names it: ``field 'step' must be
        a whole number >= 0, got 'abc'``). The description is read first, and each member's header before its data.
        Reading that runs out of memory is refused too, naming the size its members inflate to.

    Examples
    --------
    A file whose bytes changed is refused before anything is loaded:

    >>> import os, tempfile
    >>> from minitransformer import nn
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(os.path.join(tmp, "m.npz"), nn.Linear(3, 2), step=1)
    ...     print(read_checkpoint(path).step)
    ...     data = bytearray(path.read_bytes())
    ...     data[len(data) // 2] ^= 0xFF                              # flip the bits of one byte
    ...     _ = path.write_bytes(bytes(data))
    ...     try:
    ...         read_checkpoint(path)
    ...     except CheckpointError as e:
    ...         print("refused")
    1
    refused
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a folder, not a checkpoint file (such as "
                              f"{str(path / 'checkpoint.npz')!r})")
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r}: no such file")
    if not path.is_file():  # a FIFO would block the read, /dev/zero never end it
        raise CheckpointError(f"checkpoint {str(path)!r} is not a regular file (a pipe, a device, ...)")
    if not _starts_as_a_zip(path):  # else NumPy takes it for a pickle and says how to load it unsafely
        raise CheckpointError(f"{str(path)!r} is not a minitransformer checkpoint: it is not a .npz archive "
                              "(a zip of NumPy arrays)")
    where = f"checkpoint {str(path)!r}"
    inflated = None  # (what its members inflate to, for a message)
    try:
        with zipfile.ZipFile(path) as z:
            inflated, packed = _inflated_size(z)
            if inflated > _SMALL_TOTAL and inflated > _MAX_TOTAL_RATIO * packed:
                raise CheckpointError(f"{where}: its members inflate to {inflated:,} bytes in all from {packed:,} in "
                                      f"the file (more than {_MAX_TOTAL_RATIO} times: a zip bomb?); refused unread")
            members = _member_headers(path, z)
            meta_bytes = _read_member(z, members[_META]).tobytes()
            stored = _read_member(z, members[_CHECKSUM]).tobytes()
            with _cycle_collector_paused():  # (a description may hold millions of lists and dicts)
                try:
                    meta = json.loads(meta_bytes.decode("utf-8"))
                    stored = stored.decode("ascii")
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise CheckpointError(f"{where}: its description cannot be decoded ({e})") from e
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
                    raise CheckpointError(f"{str(path)!r} is not a minitransformer checkpoint (format {found!r})")
                if meta.get("version") != VERSION:
                    raise CheckpointError(f"{where} has format version {meta.get('version')!r}; this minitransformer "
                                          f"reads version {VERSION}")
                slots = _check_meta(meta, where)
            named = {f"model/{k}" for k in meta.get("model_keys", [])} | {holder[k][_ARRAY] for holder, k in slots}
            unnamed = sorted(set(members) - named - {_META, _CHECKSUM})
            if unnamed:  # refused unread: nothing a checkpoint does not use is inflated (a zip bomb)
                raise CheckpointError(f"{where} holds members not named by its description: "
                                      f"{', '.join(map(repr, unnamed[:8]))}{', ...' if len(unnamed) > 8 else ''} "
                                      "(save_checkpoint writes none: a hand-made or tampered file)")
            lacking = sorted(named - set(members))
            if lacking:
                raise CheckpointError(f"{where} lacks the arrays its description names: "
                                      f"{', '.join(map(repr, lacking[:8]))}{', ...' if len(lacking) > 8 else ''}")
            for key in sorted(named):
                _check_size(where, key, members[key])
            arrays = {key: _read_member(z, members[key]) for key in named}
    except RecursionError:
        raise CheckpointError(f"{where}: its description is nested too deeply to read (a hand-made or "
                              "tampered file)") from None
    except CheckpointError:
        raise
    except MemoryError:  # (not a damaged file: one too big for this machine, or one that says it is)
        size = "" if inflated is None else f": its members inflate to {inflated:,} bytes in all"
        raise CheckpointError(f"{where}: ran out of memory reading it{size}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{where} cannot be read as a .npz file (truncated or damaged?): {_reason(e)}") from e
    except Exception as e:  # zlib.error and friends: any failure to read is a damaged file
        raise CheckpointError(f"{where} is damaged: {type(e).__name__}{f': {e}' if str(e) else ''}") from e
    arrays[_META] = np.frombuffer(meta_bytes, dtype=np.uint8)
    actual = _checksum(arrays)
    if actual != stored:
        raise CheckpointError(
            f"{where} is damaged: its checksum does not match its contents "
            f"(stored sha256 {stored[:12]}..., computed {actual[:12]}...)"
        )
    modules = meta.get("modules")  # (absent from a checkpoint written before they were recorded)
    modules = None if modules is None else dict(modules)

    for holder, k in slots:  # in place: the description is this function's own (a copy of a large one took
        holder[k] = arrays[holder[k][_ARRAY]]  # as much memory again); named, present and read: checked above

    return Checkpoint(
        path=str(path),
        version=meta["version"],
        model_type=meta["model_type"],
        config=meta.get("config"),
        model_state={k: arrays[f"model/{k}"] for k in meta.get("model_keys", [])},
        optimizer_state=meta.get("optimizer"),
        optimizer_type=meta.get("optimizer_type"),
        schedule_state=meta.get("schedule"),
        schedule_type=meta.get("schedule_type"),
        step=meta.get("step", 0),
        rng_state=meta.get("rng_state"),
        tokenizer=meta.get("tokenizer"),
        history=meta.get("history") or {},
        trainer_state=meta.get("trainer") or {},
        extra=meta.get("extra") or {},
        modules=modules,
    )


#: the fields of the description that hold values of Python (dicts), arrays among them as ``{"__array__": name}``
_FIELDS_OF_ARRAYS = ("config", "optimizer", "schedule", "rng_state", "tokenizer", "history", "trainer", "extra")
#: the kinds of dtype a checkpoint's arrays have (bool, int, uint, float; save_checkpoint writes no other)
_NUMBER_KINDS = "biuf"
#: the most bytes ``__meta__`` may take. Its JSON holds the config, the tokenizer, the history and so on, some 20 KB
#: for the tasks' defaults; 1.9 MB for a translate task of 86,000 words a side (its vocabularies, 0.96 MB each: 8 times
#: less than the cap; a word not in ASCII takes up to 6 bytes a letter). Parsed, JSON takes up to some 30 times its
#: bytes (``[[],[],...]``: a list of 72 bytes for every 3): the cap bounds the memory a hostile description takes
#: (570 MB at 16 MiB, where 256 MiB, the cap before, asked for 20 GB)
_MAX_META_BYTES = 1 << 24
#: a member that inflates to more than this many times its size in the file, and to more than ``_SMALL`` bytes, is
#: refused unread (a zip bomb: deflated zeros inflate 1,000 times). save_checkpoint stores its members uncompressed;
#: a file compressed by hand (``zip -9``, ``np.savez_compressed``) can pass the ratio too (Adam's moments of embedding
#: rows never seen are zeros), so only members of over 256 MiB are held to it; ``__meta__`` (real ones deflate some 6
#: times) of over ``_SMALL_META``
_MAX_RATIO, _SMALL, _SMALL_META = 100, 1 << 28, 1 << 20
#: the members together may inflate to at most this many times their size in the file, where they inflate to more than
#: ``_SMALL_TOTAL`` bytes: each member under its own cap, six deflated members of 250 MiB took 1.6 GB before the
#: checksum refused the file. A real checkpoint compressed by hand inflates some 1.1 times (float32 weights compress
#: little), 3.3 at most (Adam's two moments all zeros); checked from the zip's directory, before any member is read
_MAX_TOTAL_RATIO, _SMALL_TOTAL = 10, 1 << 28


@dataclass(frozen=True)
class _Member:
    """A ``.npy`` member of the zip as its header declares it, read before its data are."""

    info: zipfile.ZipInfo
    version: tuple
    shape: tuple
    fortran: bool
    dtype: np.dtype
    data_at: int  # where the data begin, after the header

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _member_headers(path: Path, z: zipfile.ZipFile) -> dict[str, _Member]:
    """Each member of the zip by its array's name (``model/weight`` for ``model/weight.npy``), as its ``.npy`` header
    declares it: only the first bytes of each are inflated. Refused (a :class:`CheckpointError`): an array of Python
    objects, a zip without ``__meta__`` and ``__checksum__`` (a PyTorch file: a pointer to the converter), a member
    that is not a ``.npy`` array, a name held twice, a header NumPy cannot read."""
    where = f"checkpoint {str(path)!r}"
    members, other, objects = {}, [], []
    for info in z.infolist():
        if not info.filename.endswith(".npy"):
            other.append(info.filename)
            continue
        key = info.filename[:-len(".npy")]
        if key in members:
            raise CheckpointError(f"{where} holds the member {info.filename!r} twice (a hand-made or tampered file)")
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # (3.0 is written for field names outside latin-1 only: no array of numbers has it)
                raise CheckpointError(f"{where}: its member {key!r} is a .npy array of version {version}, which no "
                                      "checkpoint is")
            members[key] = _Member(info, version, shape, fortran, dtype, f.tell())
        if dtype.hasobject:
            objects.append(key)
    if objects:
        raise CheckpointError(f"{str(path)!r} is not a minitransformer checkpoint: it holds arrays of Python objects "
                              f"(dtype object), not numbers: {', '.join(map(repr, objects[:8]))}")
    if other and (_META in members or _META in other):  # a description beside (or as) a member of raw bytes
        raise CheckpointError(f"{where}: its member {other[0]!r} is not a NumPy array (.npy), which every member of a "
                              "checkpoint is (a hand-made or tampered file)")
    if _META not in members or _CHECKSUM not in members:
        names = sorted([*members, *other])
        torch = any(n.endswith("data.pkl") for n in names)
        raise CheckpointError(
            f"{str(path)!r} is a .npz file but not a minitransformer checkpoint (it has no {_META}/{_CHECKSUM} "
            f"entries; its arrays are {names[:8]})"
            + ("; it looks like a PyTorch file (torch.save): load it with torch, then put its state dict into a "
               "model with minitransformer.nn.convert.from_torch_state_dict(model, state_dict) and save that with "
               "save_checkpoint" if torch else "")
        )
    for key in (_META, _CHECKSUM):
        m = members[key]
        limit = 64 if key == _CHECKSUM else _MAX_META_BYTES
        if m.dtype != np.uint8 or len(m.shape) != 1 or m.shape[0] > limit:
            raise CheckpointError(f"{where}: its member {key!r} is not the bytes it should be (uint8, at most {limit:,}"
                                  f"; it declares {m.dtype} of shape {m.shape})")
        _check_size(where, key, m)
    return members


def _reason(e: Exception) -> str:
    """What went wrong reading a file, for a message: the error's text, or where it has none (zipfile's bare
    ``EOFError`` of a member cut short) what its kind says."""
    if str(e):
        return str(e)
    return "a member ends before its data do" if isinstance(e, EOFError) else type(e).__name__


def _inflated_size(z: zipfile.ZipFile) -> tuple[int, int]:
    """The bytes the members of the zip inflate to, and take in the file, as its directory declares them (what
    :mod:`zipfile` inflates a member to at most)."""
    infos = z.infolist()
    return sum(i.file_size for i in infos), sum(i.compress_size for i in infos)


def _check_size(where: str, key: str, m: _Member) -> None:
    """Refuse a member before its data are inflated or allocated: of a dtype no checkpoint holds, whose size in the
    zip is not what its header's shape and dtype make, or that inflates far more than its compressed bytes (and to
    over ``_SMALL`` bytes; ``_SMALL_META``, the description)."""
    if m.dtype.kind not in _NUMBER_KINDS or m.dtype.names is not None:
        raise CheckpointError(f"{where}: its member {key!r} holds {m.dtype} values; a checkpoint holds numbers only "
                              "(bool, integers, floats)")
    if any(n < 0 for n in m.shape) or m.info.file_size != m.data_at + m.nbytes:
        raise CheckpointError(
            f"{where}: its member {key!r} declares shape {m.shape} of {m.dtype} ({m.nbytes:,} bytes) but holds "
            f"{m.info.file_size - m.data_at:,} (a damaged or tampered file)")
    small = _SMALL_META if key == _META else _SMALL
    if m.info.file_size > small and m.info.file_size > _MAX_RATIO * m.info.compress_size:
        raise CheckpointError(
            f"{where}: its member {key!r} inflates to {m.info.file_size:,} bytes from {m.info.compress_size:,} in the "
            f"file (more than {_MAX_RATIO} times: a zip bomb?); refused unread")


def _read_member(z: zipfile.ZipFile, m: _Member) -> np.ndarray:
    """The array of a member whose header was read and checked (:func:`_member_headers`, :func:`_check_size`)."""
    with z.open(m.info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _check_meta(meta: dict, where: str) -> list[tuple]:
    """Refuse a description whose fields are not of the kinds :func:`save_checkpoint` writes (a
    :class:`CheckpointError`: ``checkpoint PATH: field 'step' must be ..., got ...``); return where, inside the fields
    that hold arrays (:data:`_FIELDS_OF_ARRAYS`), it refers to one: each ``(dict or list, key)`` whose item is an
    ``{"__array__": name}``."""
    def refuse(key: str, wanted: str, value):
        raise CheckpointError(f"{where}: field {key!r} must be {wanted}, got {shown(value, 60)}")

    if not isinstance(meta.get("model_type"), str):
        refuse("model_type", "a class name (a string)", meta.get("model_type"))
    keys = meta.get("model_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        refuse("model_keys", "a list of names (strings)", keys)
    step = meta.get("step", 0)
    if type(step) is not int or step < 0:  # (not a bool; a float, inf or NaN is no step)
        refuse("step", "a whole number >= 0", step)
    for key in ("optimizer_type", "schedule_type"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            refuse(key, "a class name or null", meta[key])
    for key in _FIELDS_OF_ARRAYS:
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            refuse(key, "a dict or null", meta[key])
    modules = meta.get("modules")  # (absent from a checkpoint written before they were recorded)
    if modules is not None and not (isinstance(modules, list) and all(
            isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m) for m in modules)):
        refuse("modules", "a list of [path, class name] pairs", modules)
    slots = [(meta, key) for key in _FIELDS_OF_ARRAYS if _is_array(meta.get(key))]
    level = [meta.get(key) for key in _FIELDS_OF_ARRAYS]
    while level:  # breadth first, in comprehensions: a loop (the description may be deep), 8 bytes a node (a path and
        # a tuple for each of a hostile description's millions of nodes took gigabytes, and a loop of Python 10 s)
        dicts = [v for v in level if type(v) is dict and not _is_array(v)]
        lists = [v for v in level if type(v) is list]
        slots += [(d, k) for d in dicts for k, v in d.items() if type(v) is dict and _is_array(v)]
        slots += [(a, i) for a in lists for i, v in enumerate(a) if type(v) is dict and _is_array(v)]
        level = [v for d in dicts for v in d.values() if type(v) in (dict, list)] + \
                [v for a in lists for v in a if type(v) in (dict, list)]
    for holder, k in slots:
        name = holder[k][_ARRAY]
        if not isinstance(name, str) or name in (_META, _CHECKSUM):
            raise CheckpointError(f"{where}: {_path_to(meta, holder[k])!r} refers to the array {shown(name, 60)}, "
                                  "which is not the name of an array of data")
    return slots


def _path_to(meta: dict, node) -> str:
    """The path of ``node`` inside the description's fields, ``extra/runs/0/note``, for a message: depth first, one
    iterator a level (as deep as the description, never as large), the keys joined only once it is found."""
    keys, levels = [], [iter([(key, meta.get(key)) for key in _FIELDS_OF_ARRAYS])]
    while levels:
        item = next(levels[-1], None)
        if item is None:  # this level is done
            levels.pop()
            keys = keys[:len(levels) - 1]
            continue
        key, value = item
        if value is node:
            return "/".join(map(str, [*keys, key]))
        if type(value) in (dict, list):
            keys.append(key)
            levels.append(iter(value.items()) if type(value) is dict else enumerate(value))
    return "?"  # (not reached: node is inside the fields)


@contextlib.contextmanager
def _cycle_collector_paused():
    """Python's cycle collector off for the block (and back as it was): JSON makes no cycles, and a description of
    millions of lists had it go over all of them again and again, 90% of the time of parsing and checking it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _is_array(value) -> bool:
    """Whether a value of the description stands for an array: ``{"__array__": name}``."""
    return isinstance(value, dict) and len(value) == 1 and _ARRAY in value


def _starts_as_a_zip(path: Path) -> bool:
    """Whether the file begins with a zip's first header, as every ``.npz`` does."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError as e:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {e.strerror or e}") from e


def load_checkpoint(path, model, optimizer=None, schedule=None, restore_rng: bool | None = None) -> Checkpoint:
    """Read a checkpoint and load it into ``model`` (and ``optimizer``, ``schedule``): all of it, or nothing.

    Everything that can be checked is checked before anything changes: the model's class, ``config``,
    the class of each of its modules (where the checkpoint records them) and shapes, the optimizer's and the
    schedule's class, and (with ``restore_rng``) the kind of random generator. If loading still fails part-way,
    the model, the optimizer, the schedule and the generator are all put back as they were, and a
    :class:`CheckpointError` names the part that did not fit.

    The weights are NumPy arrays, so a checkpoint written on any backend loads on any other (a GPU
    run evaluated on a laptop). Only the random generator's state is tied to the backend that
    wrote it: NumPy's PCG64 on the CPU, a :class:`~minitransformer.backend.CounterRNG` on the GPU.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_checkpoint`.
    model : Module
        Gets the saved weights (of the saved class, config and shapes).
    optimizer : Optimizer, optional
        Restored if given (the checkpoint must hold an optimizer state of the same class).
    schedule : LRScheduler, optional
        Restored if given (the checkpoint must hold a schedule state of the same class).
    restore_rng : bool, optional
        Also restore the current backend's random generator (to resume a run exactly). A state of
        another kind of generator (a checkpoint written on another backend) is refused before
        anything is loaded: load it without ``restore_rng``, or resume it on the backend that wrote it.
        None (the default): restored where an ``optimizer`` is given, to resume training (without it, the
        dropout masks after the resume were another stream's, and the run not the one it continues), and the
        checkpoint's generator is of this backend's kind; else not (evaluating draws no random numbers).

    Returns
    -------
    Checkpoint
        What the file holds (step, history, tokenizer, ...).

    Raises
    ------
    CheckpointError
        The file cannot be read (see :func:`read_checkpoint`) or does not fit the model, optimizer, schedule
        or (with ``restore_rng``) the current backend's random generator.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> model, other = nn.Linear(3, 2), nn.Linear(3, 2)          # two different initialisations
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(os.path.join(tmp, "m.npz"), model, step=5)
    ...     ckpt = load_checkpoint(path, other)
    ...     try:
    ...         load_checkpoint(path, nn.Linear(4, 2))             # another shape: refused, unchanged
    ...     except CheckpointError:
    ...         print("does not fit")
    does not fit
    >>> ckpt.step, np.array_equal(other.weight.numpy(), model.weight.numpy())
    (5, True)
    """
    ckpt = read_checkpoint(path)
    if restore_rng is None:  # resuming training: the random stream too, where this backend can continue it
        restore_rng = (optimizer is not None and ckpt.rng_state is not None
                       and _rng_state_fits(ckpt.rng_state, _backend.current()))
    _load_read(ckpt, model, optimizer, schedule, restore_rng)
    return ckpt


def _load_read(ckpt: Checkpoint, model, optimizer=None, schedule=None, restore_rng: bool = False) -> None:
    """Load a checkpoint already read (:func:`read_checkpoint`) into ``model``, ``optimizer``, ``schedule`` and the
    current backend's generator: :func:`load_checkpoint` without reading the file again."""
    where = f"checkpoint {ckpt.path!r}"
    if ckpt.model_type != type(model).__name__:
        raise CheckpointError(f"{where} holds a {ckpt.model_type}, not a {type(model).__name__}")
    own = getattr(model, "config", None)
    if isinstance(own, dict) and isinstance(ckpt.config, dict):
        differ = [f"{k}: checkpoint {ckpt.config.get(k)!r}, model {own.get(k)!r}"
                  for k in sorted(set(own) | set(ckpt.config)) if not _same(own.get(k), ckpt.config.get(k))]
        if differ:
            raise CheckpointError(
                f"{where} was saved from a {ckpt.model_type} with another config: " + "; ".join(differ)
            )
    differ = None if ckpt.modules is None else _first_class_difference(ckpt.modules, model)
    if differ is not None:  # same names and shapes, another computation (a sublayer swapped after it was built)
        path, theirs, ours = differ
        raise CheckpointError(
            f"{where} was saved from a {ckpt.model_type} whose module {path!r} is a {theirs}; this model's is a "
            f"{ours}. Its config does not say so (a module assigned after the model was built): build the model as "
            f"it was saved (assign the same modules) before loading it"
        )
    if optimizer is not None:
        if ckpt.optimizer_state is None:
            _refuse_model_only(ckpt, "load_checkpoint")  # saying why it holds none
            raise CheckpointError(f"{where} holds no optimizer state")
        if ckpt.optimizer_type != type(optimizer).__name__:
            raise CheckpointError(
                f"{where} holds the state of a {ckpt.optimizer_type}, not a {type(optimizer).__name__}"
            )
    if schedule is not None:
        if ckpt.schedule_state is None:
            raise CheckpointError(f"{where} holds no learning-rate schedule state")
        if ckpt.schedule_type != type(schedule).__name__:
            raise CheckpointError(f"{where} holds the state of a {ckpt.schedule_type}, not a {type(schedule).__name__}")
    be = _backend.current()
    restore_rng = restore_rng and ckpt.rng_state is not None
    if restore_rng and not _rng_state_fits(ckpt.rng_state, be):
        theirs = _backend.rng_state_kind(ckpt.rng_state)
        raise CheckpointError(
            f"{where} was written on another backend: its random generator is {theirs}, the {be.name} backend's is "
            f"{be.rng_kind}, so it cannot resume that random stream exactly here. Its weights "
            f"load on any backend: load it without restore_rng (to evaluate or generate), resume it on the backend "
            f"that wrote it ({_WRITTEN_BY.get(theirs, 'the one whose generator that is')}), or continue with a fresh "
            "random stream seeded from the checkpoint (Trainer.load(path, rng='reseed'); `minitransformer train "
            "--resume` does that)"
        )
    # snapshots of everything this changes, put back if a step below fails (state_dict() returns copies)
    before = model.state_dict()
    optimizer_before = None if optimizer is None else optimizer.state_dict()
    schedule_before = None if schedule is None else schedule.state_dict()
    rng_before = be.get_rng_state() if restore_rng else None
    part = "model"
    try:
        model.load_state_dict(ckpt.model_state)
        if optimizer is not None:
            part = "optimizer"
            optimizer.load_state_dict(ckpt.optimizer_state)
        if schedule is not None:
            part = "learning-rate schedule"
            schedule.load_state_dict(ckpt.schedule_state)
        if restore_rng:
            part = "random generator"
            be.set_rng_state(ckpt.rng_state)
    except (StateDictError, ValueError, TypeError, KeyError, _backend.BackendError) as e:
        # all or nothing; the schedule before the optimizer, so that the groups' lr ends as it was
        model.load_state_dict(before)
        if schedule_before is not None:
            schedule.load_state_dict(schedule_before)
        if optimizer_before is not None:
            optimizer.load_state_dict(optimizer_before)
        if rng_before is not None:
            be.set_rng_state(rng_before)
        if part == "model":
            raise CheckpointError(f"{where} does not fit this {type(model).__name__}: {e}") from e
        raise CheckpointError(f"{where}: its {part} state does not fit: {e}") from e


#: the backend whose generator each kind is, for the message that refuses another's state
_WRITTEN_BY = {"CounterRNG": "--backend cupy, or array_api_strict", "PCG64": "--backend numpy"}


def _rng_state_fits(state, backend=None) -> bool:
    """Whether ``state`` (a checkpoint's ``rng_state``) is of ``backend``'s kind of generator: can it be restored?

    NumPy's backend draws from a PCG64, CuPy's (and array-api-strict's) from a
    :class:`~minitransformer.backend.CounterRNG`: the random stream of a run written on one cannot continue
    exactly on the other.

    Parameters
    ----------
    state : dict
        A generator's state (``Backend.get_rng_state()``).
    backend : Backend, optional
        By default the current one.

    Examples
    --------
    >>> import numpy as np
    >>> from minitransformer import backend
    >>> from minitransformer.backend import CounterRNG
    >>> numpy_backend = backend.get("numpy")
    >>> _rng_state_fits(numpy_backend.get_rng_state(), numpy_backend)
    True
    >>> _rng_state_fits(CounterRNG(np, seed=0).state, numpy_backend)      # a GPU run's generator
    False
    """
    be = _backend.current() if backend is None else backend
    return _backend.rng_state_kind(state) == be.rng_kind


def _seed_from_rng_state(state) -> int:
    """A seed computed from a generator's state: the same state (its keys in any order) gives the same seed, on any
    backend.

    How a run resumed on another backend (:meth:`~minitransformer.train.Trainer.load` with
    ``rng="reseed"``) gets a random stream that is fresh but still a function of its checkpoint.

    Examples
    --------
    >>> import numpy as np
    >>> from minitransformer.backend import CounterRNG
    >>> _seed_from_rng_state(CounterRNG(np, seed=3).state) == _seed_from_rng_state(CounterRNG(np, seed=3).state)
    True
    >>> _seed_from_rng_state({"seed": 3, "counter": 0}) == _seed_from_rng_state({"counter": 0, "seed": 3})
    True
    """
    text = json.dumps(state, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)


def _same(a, b) -> bool:
    """Config values equal after a JSON round trip (tuples come back as lists, ints may come back as floats)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# ------------------------------------------------------------------------------------------ the copies a run keeps
def _kept_form(checkpoint_path) -> tuple[str, str]:
    """The name under which ``keep_checkpoints`` keeps each step's copy of ``checkpoint_path``, around the step: what
    comes before it and after it (``checkpoint.npz``: ``checkpoint-step`` and ``.npz``). The one place it is spelled.
    """
    path = Path(checkpoint_path)
    return f"{path.stem}-step", path.suffix


def _kept_path(checkpoint_path, step: int | str) -> Path:
    """Where ``keep_checkpoints`` keeps the checkpoint of ``step``: beside ``checkpoint_path``, its step in the name
    with 6 digits at least, so that the names sort by step up to 999,999; ``step="*"``: the glob of every step's.

    >>> _kept_path("runs/reverse/checkpoint.npz", 400).as_posix()
    'runs/reverse/checkpoint-step000400.npz'
    >>> _kept_path("runs/reverse/checkpoint.npz", "*").name
    'checkpoint-step*.npz'
    """
    before, after = _kept_form(checkpoint_path)
    return Path(checkpoint_path).with_name(f"{before}{step if isinstance(step, str) else f'{step:06d}'}{after}")


def _is_kept_name(checkpoint_path, name) -> bool:
    """Whether ``name`` is the file name (no folder) of a step's copy of ``checkpoint_path`` (:func:`_kept_path`).

    >>> [_is_kept_name("run/checkpoint.npz", name) for name in ("checkpoint-step000400.npz",
    ...                                                         "checkpoint-step1000000.npz", "checkpoint-step400.npz",
    ...                                                         "../checkpoint-step000400.npz", "notes.npz",
    ...                                                         "checkpoint-step١٢٣٤٥٦.npz")]
    [True, True, False, False, False, False]
    """
    before, after = _kept_form(checkpoint_path)  # [0-9], not \d: that takes any script's digits ("١٢٣٤٥٦")
    return isinstance(name, str) and re.fullmatch(re.escape(before) + "[0-9]{6,}" + re.escape(after), name) is not None


def _kept_by(checkpoint_path, path, names) -> list[str]:
    """The kept copies a checkpoint at ``path`` names (its run's ``kept_checkpoints``) that a run writing
    ``checkpoint_path`` takes as its own, to go on deleting them (a resumed run) or to delete them (a run that replaces
    that one): only where ``path`` lies in ``checkpoint_path``'s folder, and only names of the form of its copies (a
    file name, no folder: a checkpoint cannot make a run delete anything else)."""
    if checkpoint_path is None or not isinstance(names, list):
        return []
    if Path(path).resolve().parent != Path(checkpoint_path).resolve().parent:
        return []
    return [name for name in names if _is_kept_name(checkpoint_path, name)]


# ------------------------------------------------------------------------------------------ averaging
#: the key of ``Checkpoint.extra`` under which :func:`average_checkpoints` records the steps and files it averaged
AVERAGED = "averaged"
#: the key of ``Checkpoint.extra`` under which :class:`~minitransformer.train.Trainer` saves its run's id (new for
#: each run, the same in every checkpoint of it, a resumed one's included)
RUN_ID = "run_id"


def _new_run_id() -> str:
    """A fresh run's id: 16 random hex digits, from the system's randomness (the run's generator is left as it is)."""
    return secrets.token_hex(8)


def average_checkpoints(paths) -> Checkpoint:
    r"""The element-wise mean of the weights of several checkpoints of one run: a model to evaluate, not to resume.

    The paper (section 6.1): "For the base models, we used a single model obtained by averaging the last 5
    checkpoints, which were written at 10-minute intervals. For the big models, we averaged the last 20
    checkpoints." For each parameter :math:`\theta` (each entry of the state dict),

    .. math:: \bar\theta = \frac{1}{n} \sum_{i=1}^{n} \theta_i ,

    summed in float64 in the order of the checkpoints' steps (whatever the order of ``paths``: a shell's ``*`` lists
    ``step1000000`` before ``step999000``), and cast back to the parameter's dtype (one checkpoint averages to itself,
    bit for bit). An entry that is not floating point (an integer buffer) is not averaged: it must be the same in
    every checkpoint.

    Everything else is the last checkpoint's, the one of the highest step: the model's class, ``config`` and
    tokenizer must agree across all of them, and so must their run: the run's id (``extra["run_id"]``, which
    :class:`~minitransformer.train.Trainer` saves: the same in every checkpoint of a run, a resumed one's included,
    whatever its ``steps``), or, where a checkpoint has none (written before run ids, or by hand), all of ``extra``
    (the task and its settings). The step and the history are the last one's.
    The optimizer's state (Adam's moments), the learning-rate schedule and the random state are not averaged and
    not kept: the average is a model to evaluate or decode with. :meth:`~minitransformer.train.Trainer.load` and
    :func:`load_checkpoint` with an optimizer refuse it, saying so (an average is not a point the run passed
    through; train on from one of the checkpoints it averaged). ``extra["averaged"]`` records the steps and files.

    Parameters
    ----------
    paths : list of str or Path
        Checkpoint files (:func:`save_checkpoint`) of one run, such as those
        :class:`~minitransformer.train.Trainer` keeps with ``keep_checkpoints``, in any order; each file and each
        step once. A checkpoint whose weights ``restore_best`` put back at the end of its run, or when it diverged
        (those of an earlier step, under the last step: its ``trainer_state`` holds ``last_params``, or its
        ``stop_reason`` is "diverged"), is refused: average the copies the run kept under their steps.

    Returns
    -------
    Checkpoint
        The averaged weights in ``model_state``; ``optimizer_state``, ``schedule_state`` and ``rng_state`` None.
        Write it with :func:`save_checkpoint` from a model holding it (``minitransformer average`` does).

    Raises
    ------
    CheckpointError
        A file cannot be read, holds restored weights, or is not of the same run as the last: another model class,
        ``config``, tokenizer, run id or (without run ids) ``extra`` (the message names the file, the key and the
        two values), a parameter missing, or of another shape or dtype (named, with both).
    ValueError
        No paths, one file given twice, or two files of the same step.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from minitransformer import nn
    >>> model = nn.Linear(2, 1)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = []
    ...     for step, w in ((100, 1.0), (200, 2.0), (300, 6.0)):
    ...         _ = model.load_state_dict({"weight": np.full((2, 1), w, np.float32), "bias": np.zeros(1, np.float32)})
    ...         paths.append(save_checkpoint(os.path.join(tmp, f"m-{step}.npz"), model, step=step))
    ...     avg = average_checkpoints(paths)
    ...     backwards = average_checkpoints(paths[::-1])                   # taken in the order of their steps
    >>> avg.model_state["weight"].ravel(), avg.step, avg.extra["averaged"]["steps"]
    (array([3., 3.], dtype=float32), 300, [100, 200, 300])
    >>> backwards.extra["averaged"]["steps"], backwards.step
    ([100, 200, 300], 300)
    """
    if isinstance(paths, str | os.PathLike):
        raise TypeError(f"average_checkpoints: paths must be a list of checkpoint files, got the one path {paths!r}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("average_checkpoints: no checkpoints given")
    seen: dict[Path, Path] = {}
    for path in paths:
        if path.resolve() in seen:  # counted twice, its weights would weigh double
            raise ValueError(f"average_checkpoints: {str(path)!r} is given twice (as {str(seen[path.resolve()])!r} "
                             "too); give each checkpoint once")
        seen[path.resolve()] = path
    steps, ids, last = {}, {}, None  # first their steps and run ids (read, then let go: two in memory at most) ...
    for path in paths:
        ckpt = read_checkpoint(path)
        _refuse_restored(ckpt)
        steps[path], ids[path] = ckpt.step, ckpt.extra.get(RUN_ID)
        if last is None or ckpt.step > last.step:
            last = ckpt
    paths = sorted(paths, key=steps.get)  # ... then in the order of their steps
    for before, path in zip(paths, paths[1:]):
        if steps[before] == steps[path]:
            raise ValueError(f"average_checkpoints: {str(before)!r} and {str(path)!r} both hold step {steps[path]}: "
                             "the same weights would count twice (a run's checkpoint and the copy it keeps of its "
                             "last step are one where it ended on the checkpoint_every grid); give each step once")
    _refuse_two_runs(paths, ids)
    sums = {name: np.zeros(a.shape, dtype=np.float64) for name, a in last.model_state.items() if a.dtype.kind == "f"}
    first_not_finite: dict = {}  # the first checkpoint's entries holding an infinity: the others' must equal them
    for i, path in enumerate(paths):
        ckpt = last if path is paths[-1] else read_checkpoint(path)
        _check_same_run(ckpt, last)
        _refuse_not_finite_weights(ckpt, last.model_state if i == 0 else first_not_finite)
        if i == 0:
            first_not_finite = {name: a for name, a in ckpt.model_state.items()
                                if a.dtype.kind == "f" and not np.isfinite(a).all()}
        for name, total in sums.items():
            total += ckpt.model_state[name].astype(np.float64)  # (float64 holds every float32 and float16 exactly)
    model_state = {name: (sums[name] / len(paths)).astype(a.dtype) if name in sums else a
                   for name, a in last.model_state.items()}
    return Checkpoint(
        path=_averaged_name(paths), version=VERSION, model_type=last.model_type, config=last.config,
        model_state=model_state, modules=last.modules, step=last.step, tokenizer=last.tokenizer, history=last.history,
        extra={**last.extra, AVERAGED: {"steps": [steps[p] for p in paths], "files": [str(p) for p in paths]}},
    )


def _restored(ckpt: Checkpoint) -> bool:
    """Whether the checkpoint's weights are not those of its step: ``restore_best`` put back those of an earlier one
    (``trainer_state["restored_step"]``) at the end of the run, and the weights of its step, which training goes on
    from, are its ``trainer_state["last_params"]``; or the run diverged, and its weights of that step, not finite,
    are not saved (:func:`_refuse_model_only`)."""
    state = ckpt.trainer_state
    return isinstance(state, dict) and ("last_params" in state
                                        or (_diverged(ckpt) and state.get("restored_step") is not None))


def _diverged(ckpt: Checkpoint) -> bool:
    """Whether the checkpoint was written when its run diverged (``trainer_state["stop_reason"]`` "diverged"): a model
    to evaluate, with no optimizer state to train on from."""
    return isinstance(ckpt.trainer_state, dict) and ckpt.trainer_state.get("stop_reason") == "diverged"


def _refuse_not_finite_weights(ckpt: Checkpoint, other: dict) -> None:
    """Refuse to average a checkpoint whose weights hold a NaN or an infinity (written with ``allow_nonfinite``, or
    by hand): the mean would too, whatever the other checkpoints hold. An infinity equal in ``other`` (another
    checkpoint's state: the same entry there) is a constant of the model, a buffer such as an additive mask's -inf:
    its mean is itself."""
    def bad_entry(name: str, a: np.ndarray) -> bool:
        if a.dtype.kind != "f" or np.isfinite(a).all():
            return False
        return not np.array_equal(a, other.get(name))  # (NaN never equals NaN: always refused)

    bad = [name for name, a in ckpt.model_state.items() if bad_entry(name, a)]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise CheckpointError(f"average_checkpoints: {ckpt.path!r} (step {ckpt.step}): its parameter {bad[0]!r}"
                              f"{more} holds NaN or infinity: the mean would too; leave that checkpoint out")


def _refuse_restored(ckpt: Checkpoint) -> None:
    """Refuse to average a checkpoint whose weights are another step's (:func:`_restored`): they would count as its
    step's."""
    if not _restored(ckpt):
        return
    restored = ckpt.trainer_state.get("restored_step")
    raise CheckpointError(
        f"average_checkpoints: {ckpt.path!r} holds the weights of step {'?' if restored is None else restored}, "
        f"which restore_best put back {_put_back_when(ckpt)}, under its last step, {ckpt.step}: averaged, they would "
        f"count as step {ckpt.step}'s. Average the copies the run kept under their steps "
        f"({_kept_path(ckpt.path, '*').name}: keep_checkpoints, train --keep-checkpoints) instead"
    )


def _put_back_when(ckpt: Checkpoint) -> str:
    """When ``restore_best`` put back the weights of a :func:`_restored` checkpoint: at the end of its run, or when the
    run diverged (``trainer_state["stop_reason"]``)."""
    return "when the run diverged" if _diverged(ckpt) else "at the end of the run"


def _averaged_name(paths: list[Path]) -> str:
    """How an average is named in messages: ``the average of a.npz, b.npz`` (the first and the last of many)."""
    shown = [str(p) for p in paths] if len(paths) <= 3 else [str(paths[0]), "...", str(paths[-1])]
    return f"the average of {len(paths)} checkpoints ({', '.join(shown)})"


def _refuse_two_runs(paths: list[Path], ids: dict) -> None:
    """Refuse checkpoints that hold more than one run id (``ids``: path -> its id, or None), whichever lack one: each
    is compared with the last only (:func:`_check_same_run`), which, without an id, compares their settings alone."""
    named = [path for path in paths if ids[path] is not None]
    for first, path in zip(named, named[1:]):
        if ids[first] != ids[path]:
            raise CheckpointError(
                f"average_checkpoints: {str(first)!r} and {str(path)!r} are not checkpoints of one model: "
                f"extra/{RUN_ID} is {_shown(ids[first])} in the first, {_shown(ids[path])} in the second: checkpoints "
                "of two runs (of two folders, or one run and the earlier one it replaced)")


def _check_same_run(ckpt: Checkpoint, last: Checkpoint) -> None:
    """Refuse ``ckpt`` unless it is a checkpoint of the model and the run ``last`` is: class, config, tokenizer, run
    id (where either lacks one, all of extra but the record of an earlier average), and parameters of the same names,
    shapes and dtypes (equal, where not floats)."""
    def refuse(what: str) -> CheckpointError:
        return CheckpointError(f"average_checkpoints: {ckpt.path!r} and {last.path!r} are not checkpoints of one "
                               f"model: {what}")

    ids = ckpt.extra.get(RUN_ID), last.extra.get(RUN_ID)
    if None not in ids:  # one run, whatever changed on a resume (its steps): what the run's id says
        run = {RUN_ID: ids[0]}, {RUN_ID: ids[1]}
    else:  # written before run ids (or by hand): the same task and settings
        run = tuple({k: v for k, v in c.extra.items() if k not in (AVERAGED, RUN_ID)} for c in (ckpt, last))
    parts = {"model_type": (ckpt.model_type, last.model_type), "config": (ckpt.config, last.config),
             "tokenizer": (ckpt.tokenizer, last.tokenizer), "extra": run}
    if ckpt.modules is not None and last.modules is not None:  # (a checkpoint written before they were recorded)
        parts["modules"] = ckpt.modules, last.modules
    for key, (theirs, ours) in parts.items():
        differ = _first_difference(theirs, ours, key)
        if differ is not None:
            where, a, b = differ
            why = (": checkpoints of two runs (of two folders, or one run and the earlier one it replaced)"
                   if where == f"extra/{RUN_ID}" else "")
            raise refuse(f"{where} is {_shown(a)} in the first, {_shown(b)} in the second{why}")
    for name in [*last.model_state, *(k for k in ckpt.model_state if k not in last.model_state)]:  # (in order)
        if name not in ckpt.model_state or name not in last.model_state:
            has, lacks = (last, ckpt) if name in last.model_state else (ckpt, last)
            raise refuse(f"parameter {name!r} (shape {has.model_state[name].shape}) is in {has.path!r}, not in "
                         f"{lacks.path!r}")
        a, b = ckpt.model_state[name], last.model_state[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise refuse(f"parameter {name!r} has shape {a.shape} and dtype {a.dtype} in the first, shape {b.shape} "
                         f"and dtype {b.dtype} in the second")
        if a.dtype.kind != "f" and not np.array_equal(a, b):
            raise refuse(f"{name!r} holds {a.dtype} values, which are not averaged, and they differ")


_ABSENT = object()  # a key one dict has and the other lacks


def _first_difference(a, b, where: str):
    """``(key path, value in a, value in b)`` where two JSON-like values (dicts, lists, numbers, strings, NumPy
    arrays) first differ, or None where they agree (as :func:`_same` compares: a tuple is the list it is saved as).

    >>> _first_difference({"settings": {"lr": 1e-3, "seed": 0}}, {"settings": {"lr": 2e-3, "seed": 0}}, "extra")
    ('extra/settings/lr', 0.001, 0.002)
    """
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys(), key=str):
            differ = _first_difference(a.get(key, _ABSENT), b.get(key, _ABSENT), f"{where}/{key}")
            if differ is not None:
                return differ
        return None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            differ = _first_difference(x, y, f"{where}/{i}")
            if differ is not None:
                return differ
        return None
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        same = (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        return None if same else (where, a, b)
    if a is _ABSENT or b is _ABSENT or not _same(a, b):
        return where, a, b
    return None


def _shown(value) -> str:
    """A value in a message: its repr, cut to 60 characters; "absent" for a key not there."""
    return "absent" if value is _ABSENT else shown(value, 60)


def _refuse_model_only(ckpt: Checkpoint, what: str) -> None:
    """Refuse to resume training from a checkpoint that holds a model and no optimizer, schedule or random state,
    saying why: an average (:func:`average_checkpoints`), no point the run passed through; or the checkpoint of a run
    that diverged (``trainer_state["stop_reason"]`` "diverged", written by :class:`~minitransformer.train.Trainer`
    with ``restore_best``), the model of its best evaluation, its optimizer's state no longer finite. ``what`` names
    the caller."""
    averaged = ckpt.extra.get(AVERAGED) if isinstance(ckpt.extra, dict) else None
    if isinstance(averaged, dict):
        files = averaged.get("files") or ["?"]
        raise CheckpointError(
            f"{what}: {ckpt.path!r} is an average of checkpoints (steps "
            f"{', '.join(map(str, averaged.get('steps', [])))}), a model to evaluate or decode with: it holds no "
            f"optimizer state, schedule or random state to train on from. Resume from one of the checkpoints it "
            f"averaged (the last: {files[-1]!r})"
        )
    if _diverged(ckpt):
        best = ckpt.trainer_state.get("restored_step", "?")
        raise CheckpointError(
            f"{what}: {ckpt.path!r} was written when its run diverged (the training loss or the parameters became NaN "
            f"or infinite by step {ckpt.step}): it holds the model of its best evaluation, step {best}, to evaluate "
            "or decode with, and no optimizer state to train on from (it was no longer finite). Start a new run, with "
            "a lower learning rate"
        )
