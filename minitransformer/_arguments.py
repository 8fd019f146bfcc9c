"""Checks of plain Python arguments (counts, sizes, rates, tolerances, seeds), shared by every layer: each refuses
a bad value with an error naming the function and the option, before any work. The bottom layer, beside
``backend``: it imports nothing of the package, so anything may use it."""

from __future__ import annotations

import math
import numbers

import numpy as np  # to recognise NumPy's numbers and 0-d arrays; no arithmetic


def host_scalar(value):
    """A 0-d NumPy array (what ``.numpy()`` of a loss gives) as its NumPy number; anything else as it is."""
    return value[()] if type(value) is np.ndarray and value.ndim == 0 else value


def is_integer(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``np.int64(3)``, a 0-d integer array too), but not a bool
    (Python counts it one)."""
    if type(value) is int:
        return True
    value = host_scalar(value)
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """Whether ``value`` is a real number: a Python or NumPy one (a 0-d NumPy array of one too), but not a bool."""
    if type(value) is float or type(value) is int:
        return True
    value = host_scalar(value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_int(op: str, name: str, value, low: int | None = None, why: str = "") -> int:
    """``value`` as a Python int if it is an integer (a NumPy one too, not a bool) of at least ``low``; else an error
    naming ``op``, the option and the value (a count, a size, a length: ``"3"``, 2.5 or -1 would fail later inside
    Python or NumPy, or silently give nothing): a TypeError for what is not an integer (a float, a string, a bool),
    a ValueError for an integer below ``low``, as :func:`require_real` and the engine's sizes. ``why``, if given,
    follows what is wanted in the message, e.g. ``" (steps count from 1)"``.

    >>> import numpy as np
    >>> require_int("negation_reviews", "n", np.int64(3), low=0)
    3
    >>> require_int("Embedding", "vocab_size", 2.5, low=1)
    Traceback (most recent call last):
    ...
    TypeError: Embedding: vocab_size must be a positive integer, got 2.5
    >>> require_int("Embedding", "vocab_size", 0, low=1)
    Traceback (most recent call last):
    ...
    ValueError: Embedding: vocab_size must be a positive integer, got 0
    """
    integer = is_integer(value)
    if not integer or (low is not None and value < low):
        wanted = "an integer" if low is None else "a positive integer" if low == 1 else f"an integer >= {low}"
        raise (ValueError if integer else TypeError)(f"{op}: {name} must be {wanted}{why}, got {value!r}")
    return int(value)


def require_real(op: str, name: str, value, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a Python float if it is a finite real number between ``low`` and ``high`` (either may be None;
    each end included unless ``low_open``/``high_open``); else an error naming ``op``, the option and the value.

    A Python or NumPy number (``np.float32(0.1)`` too), not a bool, NaN or inf: a TypeError for anything else, a
    ValueError for a number out of range. The result is a Python float because NumPy scalars do not mix with every
    backend's arrays (array-api-strict refuses them).

    >>> require_real("dropout", "p", 0.5, 0.0, 1.0, high_open=True)
    0.5
    >>> require_real("layer_norm", "eps", float("inf"), low=0.0)
    Traceback (most recent call last):
    ...
    ValueError: layer_norm: eps must be a finite number >= 0, got inf
    """
    if not is_real(value):
        raise TypeError(f"{op}: {name} must be {_wanted(low, high, low_open, high_open)}, got {value!r}")
    x = float(value)
    below = low is not None and (x <= low if low_open else x < low)
    above = high is not None and (x >= high if high_open else x > high)
    if not math.isfinite(x) or below or above:
        raise ValueError(f"{op}: {name} must be {_wanted(low, high, low_open, high_open)}, got {value!r}")
    return x


def require_bool(op: str, name: str, value, why: str = "") -> bool:
    """``value`` as a Python bool if it is one (a NumPy bool too); else a TypeError naming ``op``, the option and the
    value. A flag is not read as true or false by Python's rules: a number or a string in its place is most often
    an argument in PyTorch's order (``nn.Embedding(V, d, 0)``: torch's third is ``padding_idx``), which ``why``,
    if given, says after what is wanted.

    >>> require_bool("EncoderLayer", "norm_first", "gelu", " (torch's fifth argument is activation)")
    Traceback (most recent call last):
    ...
    TypeError: EncoderLayer: norm_first must be True or False (torch's fifth argument is activation), got 'gelu'
    """
    if value is True or value is False or isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{op}: {name} must be True or False{why}, got {value!r}")


def _wanted(low, high, low_open: bool, high_open: bool) -> str:
    """What :func:`require_real` asks for, in words (made only for a message: checks run in every forward)."""
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return "a finite number"


def shown(value, limit: int) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters with "..." (an array's is long), for a message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
