"""Argument checks shared by the formulas: each raises a clear error before any arithmetic."""

from __future__ import annotations

from ..autograd import Tensor
from ..autograd.engine import _is_floating
from ..backend import BackendError, dtype_name


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


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    """``axis`` as a non-negative index (negatives count from the end), or a ValueError naming ``op``."""
    if not isinstance(axis, int) or not -ndim <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis!r} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim if ndim else 0


def as_mask(op: str, mask, like: Tensor):
    """``mask`` (a bool Tensor, bool array or nested lists) as a bool array on ``like``'s backend."""
    backend = like.backend
    if isinstance(mask, Tensor):
        if mask.backend is not backend:
            raise BackendError(
                f"{op}: the mask is on backend {mask.backend.name}, expected {backend.name}; "
                f"move it with mask.to({backend.name!r})"
            )
        array = mask.data
    else:
        array = backend.asarray(mask)
    if not backend.xp.isdtype(array.dtype, "bool"):
        raise TypeError(
            f"{op}: the mask must be boolean (True where attention is allowed), got "
            f"{dtype_name(array.dtype)} with shape {tuple(array.shape)}"
        )
    return array
