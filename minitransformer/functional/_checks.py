"""Argument checks of tensors shared by the formulas (those of plain numbers are in ``minitransformer/_arguments.py``):
each raises a clear error before any arithmetic."""

from __future__ import annotations

from ..autograd import Tensor
from ..autograd.compose import _condition
from ..autograd.engine import _axis, _is_floating
from ..backend import BackendError, dtype_name


def as_targets(op: str, targets, like: Tensor, classes: bool = False, name: str = "targets"):
    """``targets`` (a Tensor, an array or nested lists, called ``name`` in the errors) as an array on ``like``'s
    backend (the logits'): numbers, integer class indices where ``classes``; else a clear error naming ``op``. The one
    reading of a loss's or a metric's targets."""
    if isinstance(targets, Tensor):
        if targets.backend is not like.backend:
            raise BackendError(
                f"{op}: {name} are on backend {targets.backend.name}, logits on {like.backend.name}; "
                f"move them with {name}.to({like.backend.name!r})"
            )
        y = targets.data
    else:
        try:
            y = like.backend.asarray(targets)
        except (ValueError, TypeError) as e:  # ragged nested lists; text, where the backend refuses its dtype
            raise TypeError(f"{op}: {name} must be a rectangular array of numbers; this {type(targets).__name__} "
                            "is not (text, or nested lists of different lengths?)") from e
    if not dtype_name(y.dtype).startswith(("float", "int", "uint", "bool")):
        raise TypeError(f"{op}: {name} must be numbers, got {dtype_name(y.dtype)} with shape {tuple(y.shape)}")
    if classes and not like.backend.xp.isdtype(y.dtype, "integral"):
        xp, cast = like.backend.xp, (f"{name}.to('int64')" if isinstance(targets, Tensor)
                                     else f"mt.tensor({name}, dtype='int64')")
        if dtype_name(y.dtype) == "bool":
            hint = (f"; bools are no class indices: as ids 0 and 1, {cast}; for two classes, "
                    "binary_cross_entropy_with_logits takes them as floats")
        elif tuple(y.shape) == tuple(like.shape):
            hint = "; floats of the logits' shape are PyTorch's class probabilities (soft targets), not taken here" + (
                ": their loss is -(p * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()" if op == "cross_entropy"
                else "")
        elif like.backend.read_bool(xp.all(y == xp.round(y))):  # (an error's path: one read is no cost)
            hint = f"; whole numbers held as floats become class indices with {cast}"
        else:
            hint = " (and not whole numbers: a cast would truncate them)"
        raise TypeError(f"{op}: {name} must be integer class indices, got {dtype_name(y.dtype)} with shape "
                        f"{tuple(y.shape)}{hint}")
    return y


def require_tensor(op: str, name: str, x) -> Tensor:
    """``x`` itself if it is a Tensor; otherwise a TypeError naming the formula and the argument."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__} (make one with mt.tensor(...))")
    return x


def require_float(op: str, name: str, x: Tensor) -> Tensor:
    """``x`` if it holds floating-point numbers (a formula with gradients needs them)."""
    require_tensor(op, name, x)
    if not _is_floating(x.dtype):  # remembered per dtype: every formula asks
        raise TypeError(f"{op}: {name} must be floating point, got {x.dtype_name} with shape {x.shape}")
    return x


def require_same_dtype(op: str, first: str, a: Tensor, second: str, b: Tensor,
                       fix: str = "convert one with .to('{a}')") -> Tensor:
    """``b`` if it has the dtype of ``a``; else a TypeError naming ``op``, both arguments with their dtypes and shapes,
    and ``fix``, where ``{a}`` and ``{b}`` become the two dtypes' names (filled in only for the error: the check runs
    on every call). float32 and float64 do not mix: nothing is promoted silently, and the error names the formula
    the user called, not the operation inside it that would refuse.

    >>> import minitransformer as mt
    >>> require_same_dtype("linear", "W", mt.ones(4, 3), "x", mt.ones(2, 4, dtype="float64"))
    Traceback (most recent call last):
    ...
    TypeError: linear: W is float32 (4, 3) but x is float64 (2, 4); convert one with .to('float32')
    """
    if b.data.dtype != a.data.dtype and b.dtype_name != a.dtype_name:  # names only when they may differ
        raise TypeError(f"{op}: {first} is {a.dtype_name} {a.shape} but {second} is {b.dtype_name} {b.shape}; "
                        + fix.format(a=a.dtype_name, b=b.dtype_name))
    return b


def require_token_ids(op: str, name: str, ids: Tensor) -> Tensor:
    """``ids`` if it holds integers (a bool or a float, even a whole one, is refused: a lookup would truncate it),
    else a TypeError naming ``op``, the argument, its dtype and shape. Reads no values."""
    if not ids.backend.xp.isdtype(ids.dtype, "integral"):
        raise TypeError(
            f"{op}: {name} must be integer token ids (rows of the embedding table E), got {ids.dtype_name} "
            f"with shape {ids.shape}"
        )
    return ids


def check_token_ids(op: str, name: str, ids: Tensor, vocab: int) -> Tensor:
    """``ids`` if it holds integer token ids in ``0..vocab-1``, else an error naming ``op``, the argument, the
    offending id and the vocabulary size: the one check of ids against a vocabulary (an embedding lookup makes it).

    Reading the range (min and max) makes the host wait for the device: where the backend does not check values
    at once (``backend.check_values``, off on CuPy), the error comes at the next read of the device
    (:meth:`~minitransformer.backend.Backend.check_range`).

    >>> import minitransformer as mt
    >>> check_token_ids("Embedding", "ids", mt.tensor([[3, 10]]), vocab=10)
    Traceback (most recent call last):
    ...
    IndexError: Embedding: ids holds token id 10, out of range for a vocabulary of 10 (ids must be in 0..9)
    """
    require_token_ids(op, name, ids)
    ids.backend.check_range(ids.data, 0, vocab - 1, f"{op}: {name} holds token id {{bad}}, out of range for a "
                                                    f"vocabulary of {vocab} (ids must be in 0..{vocab - 1})")
    return ids


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    """``axis`` as a non-negative index (negatives count from the end), or an error naming ``op``: a TypeError for what
    is not a Python or NumPy integer (a bool, a float), a ValueError for an axis out of range; the checks of
    ``Tensor.sum``'s axis (:func:`~minitransformer.autograd.engine._axis`)."""
    if ndim == 0:
        raise ValueError(f"{op}: x must have at least one axis (the one normalised), got a scalar")
    return _axis(axis, ndim, op)


def as_mask(op: str, mask, like: Tensor, name: str = "the mask", meaning: str = "True where attention is allowed"):
    """``mask`` (a bool Tensor, bool array or nested lists) as a bool array on ``like``'s backend; ``name`` and
    ``meaning`` say in an error what it is (the check of :func:`~minitransformer.autograd.where`'s condition)."""
    return _condition(op, name, mask, like, meaning)
