"""Making tensors: from data, filled with a constant, or random (from the backend's seeded generator)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend as _backend
from .._arguments import host_scalar, is_integer, is_real
from .engine import Tensor, _check_fits, _integer, _kind, _sizes

__all__ = ["tensor", "zeros", "ones", "full", "arange", "randn", "rand", "randint", "zeros_like", "ones_like"]


def _shape(op: str, shape) -> tuple[int, ...]:
    """The sizes given to ``op`` as separate ints or one tuple (or list), checked: ints >= 0, else an error naming
    ``op`` and the shape."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else tuple(shape)
    return _sizes(op, shape)


def _shape_argument(op: str, shape) -> tuple[int, ...]:
    """A ``shape`` argument (a tuple or list of sizes, or one int) as checked sizes."""
    return _sizes(op, (shape,) if is_integer(shape) else tuple(shape))


def _float_dtype(op: str, be, dtype):
    """``dtype`` (float32 by default) if it is floating, else a TypeError naming ``op``: samples of a
    distribution on the real line, cast to integers, would be truncated silently."""
    if dtype is not None and _kind(be.dtype(dtype)) != "f":
        raise TypeError(f"{op}: dtype must be floating (the samples are real numbers), got "
                        f"{_backend.dtype_name(be.dtype(dtype))}")
    return dtype


def _fill_value(op: str, value, dtype):
    """``value`` if ``dtype`` can hold it, else an error naming ``op`` and the value: a real number (a bool, an int,
    a float, a NumPy number); whole for an integer or bool dtype (NumPy would truncate 2.5 to 2); inside ``dtype``'s
    range (NumPy would wrap 300 to 44 in uint8, and make inf of 70000.0 in float16)."""
    value = host_scalar(value)  # np.array(0.5) as 0.5
    if not isinstance(value, numbers.Real):  # a bool too: full((2,), True) is a mask of ones
        raise TypeError(f"{op}: value must be a number, got {value!r}")
    _check_fits(op, value, dtype)
    return value


def tensor(data, dtype=None, requires_grad: bool = False, backend=None, name: str | None = None) -> Tensor:
    """A tensor from ``data`` on the current backend (see :class:`Tensor`).

    The shape is that of ``data``. As in PyTorch, Python numbers become float32 if any of them is a
    float, else int64 if any is an int (bools among ints count as ints), else bool; arrays keep their
    dtype unless ``dtype`` is given. An array (or tensor) given as ``data`` is copied, as ``torch.tensor``
    copies: changing it later does not change the tensor.

    Parameters
    ----------
    data : array_like
        A number, nested lists, a NumPy array or an array of any backend.
    dtype : str, optional
        ``"float32"``, ``"float64"``, ``"int64"``, ``"bool"``, ...
    requires_grad : bool
        Whether ``backward()`` should compute ``.grad`` for it (floating dtypes only).
    backend : str, optional
        A backend name; the current backend by default.
    name : str, optional
        A label for the graph pictures.

    Returns
    -------
    Tensor
        A new leaf tensor, with an array of its own.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.tensor([[1, 2], [3, 4]])
    >>> x.shape, x.dtype_name
    ((2, 2), 'int64')
    >>> mt.tensor([1, 2.5]).dtype_name                # one float makes all of them float
    'float32'
    >>> mt.tensor([0.5], dtype="float64", requires_grad=True)
    Tensor([0.5], dtype=float64, requires_grad=True)
    """
    t = Tensor(data, dtype=dtype, requires_grad=requires_grad, backend=backend, name=name)
    if hasattr(data, "dtype"):  # an array (or Tensor) the caller still holds: Tensor() may have used it as it is
        t.data = t.backend.xp.asarray(t.data, copy=True)
    return t


def full(shape, value, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    """A tensor of ``shape`` with every element ``value``.

    Parameters
    ----------
    shape : tuple of int
        The shape of the result.
    value : int or float
        The value of every element.
    dtype : str, optional
        float32 by default.
    requires_grad : bool
        Whether ``backward()`` should compute ``.grad`` for it.
    backend : str, optional
        A backend name; the current backend by default.

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.full((2, 3), 0.5).numpy()
    array([[0.5, 0.5, 0.5],
           [0.5, 0.5, 0.5]], dtype=float32)
    """
    return _full("full", _shape_argument("full", shape), value, dtype, requires_grad, backend)


def _full(op: str, shape: tuple[int, ...], value, dtype, requires_grad: bool, backend) -> Tensor:
    """:func:`full` of sizes already checked, with ``value`` checked against the dtype and errors naming ``op``."""
    be = _backend.get(backend)
    dtype = be.dtype(dtype)
    value = _fill_value(op, value, dtype)
    return Tensor._wrap(be.xp.full(shape, value, dtype=dtype), be).requires_grad_(requires_grad)


def zeros(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    """A tensor of zeros; the shape as separate ints or one tuple (float32 unless ``dtype`` says otherwise).

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.zeros(2, 3).shape
    (2, 3)
    >>> mt.zeros((2, 3), dtype="int64").tolist()
    [[0, 0, 0], [0, 0, 0]]
    """
    return _full("zeros", _shape("zeros", shape), 0, dtype, requires_grad, backend)


def ones(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    """A tensor of ones; the shape as separate ints or one tuple (float32 unless ``dtype`` says otherwise).

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.ones(3).numpy()
    array([1., 1., 1.], dtype=float32)
    >>> mt.ones((2, 4)).shape
    (2, 4)
    """
    return _full("ones", _shape("ones", shape), 1, dtype, requires_grad, backend)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros with the shape, dtype and backend of ``t``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> z = mt.zeros_like(mt.tensor([[1, 2, 3]]))
    >>> z.shape, z.dtype_name
    ((1, 3), 'int64')
    """
    return _full("zeros_like", t.shape, 0, t.dtype_name, requires_grad, t.backend)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """A tensor of ones with the shape, dtype and backend of ``t``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.ones_like(mt.zeros(2, dtype="float64")).numpy()
    array([1., 1.])
    """
    return _full("ones_like", t.shape, 1, t.dtype_name, requires_grad, t.backend)


def arange(start, stop=None, step=1, dtype=None, backend=None) -> Tensor:
    r"""``start, start + step, ...`` below ``stop`` (``arange(n)`` is 0..n-1).

    The result is 1-D, of length :math:`\lceil (\text{stop} - \text{start}) / \text{step} \rceil`. As in
    PyTorch, it is int64 when ``start``, ``stop`` and ``step`` are all integers and float32 when any of
    them is a float, unless ``dtype`` says otherwise; an integer ``dtype`` with a fractional argument is
    refused (NumPy would give ``arange(1, 2, 0.25)`` as ``[1, 1, 1, 1]``).

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.arange(5).tolist()
    [0, 1, 2, 3, 4]
    >>> mt.arange(1, 2, 0.25).numpy()
    array([1.  , 1.25, 1.5 , 1.75], dtype=float32)
    >>> mt.arange(3, dtype="float64").numpy()
    array([0., 1., 2.])
    """
    be = _backend.get(backend)
    if stop is None:
        start, stop = 0, start
    start, stop, step = given = tuple(host_scalar(v) for v in (start, stop, step))  # np.array(5) as 5
    for name, v in zip(("start", "stop", "step"), given):
        if not is_real(v) or not math.isfinite(v):
            raise TypeError(f"arange: {name} must be a finite number, got {v!r}")
    if step == 0:
        raise ValueError(f"arange: step must not be 0 (start={start}, stop={stop})")
    floats = [v for v in given if isinstance(v, float | np.floating)]
    if dtype is None:
        dtype = _backend.DEFAULT_FLOAT if floats else "int64"
    elif not _backend.dtype_name(be.dtype(dtype)).startswith("float") and any(v != int(v) for v in floats):
        raise ValueError(
            f"arange: start={start}, stop={stop}, step={step} are not all whole numbers, and dtype is "
            f"{_backend.dtype_name(be.dtype(dtype))}; leave dtype out (float32) or give a floating dtype"
        )
    return Tensor._wrap(be.xp.arange(start, stop, step, dtype=be.dtype(dtype)), be)


def randn(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    r"""Standard normal samples from the backend's seeded generator (``mt.manual_seed``).

    Every element :math:`x_i \sim \mathcal N(0, 1)`, independent; the shape as separate ints or one tuple.

    Examples
    --------
    The same seed gives the same numbers:

    >>> import minitransformer as mt
    >>> mt.manual_seed(0)
    >>> a = mt.randn(2, 3)
    >>> mt.manual_seed(0)
    >>> a.shape, bool((mt.randn(2, 3).numpy() == a.numpy()).all())
    ((2, 3), True)
    """
    be = _backend.get(backend)
    shape = _shape("randn", shape)
    return Tensor._wrap(be.normal(shape, dtype=_float_dtype("randn", be, dtype)), be).requires_grad_(requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False, backend=None) -> Tensor:
    r"""Uniform samples in [0, 1) from the backend's seeded generator.

    Every element :math:`x_i \sim U[0, 1)`, independent; the shape as separate ints or one tuple.

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.manual_seed(0)
    >>> u = mt.rand(1000).numpy()
    >>> u.shape, bool((u >= 0).all() and (u < 1).all())
    ((1000,), True)
    """
    be = _backend.get(backend)
    shape = _shape("rand", shape)
    return Tensor._wrap(be.uniform(shape, dtype=_float_dtype("rand", be, dtype)), be).requires_grad_(requires_grad)


def randint(low: int, high: int, shape, backend=None) -> Tensor:
    """Integers drawn uniformly from [low, high) (int64), of shape ``shape`` (a tuple).

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.manual_seed(0)
    >>> ids = mt.randint(0, 10, (2, 5))              # a batch of 2 sequences of 5 token ids
    >>> ids.shape, ids.dtype_name, bool(0 <= ids.numpy().min() and ids.numpy().max() < 10)
    ((2, 5), 'int64', True)
    """
    be = _backend.get(backend)
    low = _integer("randint", "low", low, low, "an integer")
    high = _integer("randint", "high", high, high, "an integer")
    if low >= high:
        raise ValueError(f"randint: low={low} must be below high={high} (integers are drawn from [low, high))")
    return Tensor._wrap(be.integers(_shape_argument("randint", shape), low, high), be)
