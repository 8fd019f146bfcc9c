"""Making tensors: from data, filled with a constant, or random (from the backend's seeded generator)."""

from __future__ import annotations

from .. import backend as _backend
from .engine import Tensor

__all__ = ["tensor", "zeros", "ones", "full", "arange", "randn", "rand", "randint", "zeros_like", "ones_like"]


def _shape(shape) -> tuple[int, ...]:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else tuple(shape)


def tensor(data, dtype=None, requires_grad: bool = False, backend=None, name: str | None = None) -> Tensor:
    """A tensor from ``data`` on the current backend (see :class:`Tensor`)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, backend=backend, name=name)


def full(shape, value, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    """A tensor of ``shape`` with every element ``value``."""
    be = _backend.get(backend)
    return Tensor._wrap(be.xp.full(tuple(shape), value, dtype=be.dtype(dtype)), be).requires_grad_(requires_grad)


def zeros(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    return full(_shape(shape), 0, dtype, requires_grad, backend)


def ones(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    return full(_shape(shape), 1, dtype, requires_grad, backend)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return full(t.shape, 0, t.dtype_name, requires_grad, t.backend)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return full(t.shape, 1, t.dtype_name, requires_grad, t.backend)


def arange(start, stop=None, step=1, dtype="int64", backend=None) -> Tensor:
    """``start, start + step, ...`` below ``stop`` (``arange(n)`` is 0..n-1)."""
    be = _backend.get(backend)
    if stop is None:
        start, stop = 0, start
    return Tensor._wrap(be.xp.arange(start, stop, step, dtype=be.dtype(dtype)), be)


def randn(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    """Standard normal samples from the backend's seeded generator (``mt.manual_seed``)."""
    be = _backend.get(backend)
    return Tensor._wrap(be.normal(_shape(shape), dtype=dtype), be).requires_grad_(requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    """Uniform samples in [0, 1) from the backend's seeded generator."""
    be = _backend.get(backend)
    return Tensor._wrap(be.uniform(_shape(shape), dtype=dtype), be).requires_grad_(requires_grad)


def randint(low: int, high: int, shape, backend=None) -> Tensor:
    """Integers drawn uniformly from [low, high) (int64)."""
    be = _backend.get(backend)
    return Tensor._wrap(be.integers(tuple(shape), low, high), be)
