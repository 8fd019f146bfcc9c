"""Functions composed of primitives: ``matmul``, ``getitem`` (``x[...]``), ``take``, ``cast``, ``where``,
``masked_fill``, ``maximum``, ``concat``, ``stack`` and ``split``.

Each checks its arguments, names what is wrong, and builds its result from the primitive operations of
``ops.py`` (one ``Function`` each), so that it needs no backward of its own: the engine (``engine.py``) sends
the gradient back through the primitives it recorded. ``Tensor``'s methods (``a @ b``, ``x[i]``, ``x.to(dtype)``,
``x.masked_fill``, ``x.split``) call these.
"""

from __future__ import annotations

import operator

import numpy as np  # only to read list indices and recognise NumPy arrays on the host

from .. import backend as _backend
from . import ops
from ._torch_names import torch_keywords
from .engine import Tensor, _axis, _integer, _is_floating, _kind, _lift, _tensor_list, broadcast_shapes


def matmul(a: Tensor, b: Tensor) -> Tensor:
    r"""``a @ b`` with NumPy's rules: batched and broadcast over leading axes; 1-D operands allowed.

    .. math:: C_{\ldots ij} = \sum_k A_{\ldots ik} B_{\ldots kj}

    Shapes: ``(..., n, k) @ (..., k, m) -> (..., n, m)``, the leading axes broadcast; a 1-D ``a``
    ``(k,)`` is a row and a 1-D ``b`` ``(k,)`` a column, and that axis is dropped from the result.
    The gradients are :math:`\bar A = \bar C B^\top` and :math:`\bar B = A^\top \bar C`
    (:class:`~minitransformer.autograd.ops.MatMul`).

    Examples
    --------
    >>> import minitransformer as mt
    >>> a = mt.ones(4, 2, 3)                    # a batch of 4 matrices (2, 3)
    >>> w = mt.ones(3, 5)                       # one matrix, shared by the batch
    >>> mt.matmul(a, w).shape
    (4, 2, 5)
    >>> mt.matmul(mt.tensor([1.0, 2.0]), mt.tensor([3.0, 4.0])).item()
    11.0
    """
    for t in (a, b):
        if not isinstance(t, Tensor):  # a number: @ has no scalar form (NumPy's rule); * scales
            raise TypeError(f"matmul: operands must be tensors of at least one dimension, got {t!r}; "
                            "to scale by a number use *")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dimension, got {a.shape} @ {b.shape}")
    inner_a, inner_b = a.shape[-1], b.shape[-2 if b.ndim > 1 else 0]
    if inner_a != inner_b:  # checked here, on the shapes the user gave, before 1-D operands are reshaped
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions differ ({inner_a} != {inner_b})")
    if a.ndim == 1 and b.ndim == 1:
        return ops.MatMul.apply(a.reshape(1, -1), b.reshape(-1, 1)).reshape(())
    if a.ndim == 1:
        out = ops.MatMul.apply(a.reshape(1, -1), b)
        return out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        return ops.MatMul.apply(a, b.reshape(-1, 1)).reshape(a.shape[:-1])
    return ops.MatMul.apply(a, b)


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]``: basic indexing (ints, slices, ``...``, ``None``) or one integer array (rows).

    Shapes as NumPy's. The gradient of basic indexing is zero except at the places selected
    (:class:`~minitransformer.autograd.ops.GetItem`); an integer array (a Tensor, an array or a
    list) picks rows, as :func:`take` along axis 0. Boolean masks (``x[x > 0]``) are refused: the
    result's shape would depend on the values; :func:`where` and :func:`masked_fill` keep the shape.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.arange(12).reshape(3, 4).to("float32")
    >>> mt.autograd.getitem(x, (slice(None), 1)).numpy()       # x[:, 1]
    array([1., 5., 9.], dtype=float32)
    >>> mt.autograd.getitem(x, [2, 0]).shape                   # x[[2, 0]]
    (2, 4)
    """
    if _is_index_array(index):
        if isinstance(index, list):  # read here: empty lists are no rows (NumPy would read them as float64)
            index = np.asarray(index)
            index = index.astype(np.int64) if index.size == 0 else index
        if _kind(index.dtype) == "b":
            raise IndexError(_NO_MASKS)
        return take(x, index, axis=0)
    index = tuple(_position(i) for i in index) if isinstance(index, tuple) else (_position(index),)
    if any(_is_index_array(i) for i in index):
        if any(isinstance(i, list) and np.asarray(i).dtype == bool or hasattr(i, "dtype") and _kind(i.dtype) == "b"
               for i in index):
            raise IndexError(_NO_MASKS)
        raise IndexError(
            "getitem: only one integer array, on the first axis, is supported (x[ids]); "
            "use take(x, ids, axis) for other axes"
        )
    return ops.GetItem.apply(x, index=index)


_NO_MASKS = (
    "getitem: boolean masks are not supported (the result's shape would depend on the values); keep the shape "
    "with where(mask, x, 0.0) or x.masked_fill(~mask, 0.0), or pick rows with integer ids, x[ids]"
)


def _is_index_array(i) -> bool:
    """Whether ``i`` picks rows (a Tensor, a list, an array) rather than one position (an int, a NumPy integer)."""
    return isinstance(i, Tensor | list) or (hasattr(i, "dtype") and not isinstance(i, np.generic))


def _position(i):
    """One entry of a basic index, with a NumPy integer or an int subclass (``x.size``; anything with ``__index__``
    that is not an array) as the Python int it stands for: array-api-strict takes only Python ints."""
    if i is True or i is False or isinstance(i, np.bool_):  # NumPy reads x[True] as a mask (a new axis), not as 1
        raise IndexError(_NO_MASKS)
    if type(i) is int or not hasattr(i, "__index__") or _is_index_array(i):
        return i
    return operator.index(i)


@torch_keywords
def take(x: Tensor, indices, axis: int = 0, *, in_range: bool = False) -> Tensor:
    r"""``x`` indexed by an integer array along ``axis``: the embedding lookup ``E[ids]``.

    :math:`y[\ldots, n, \ldots] = x[\ldots, i_n, \ldots]` for every index :math:`i_n`; a row used
    twice gets the sum of both gradients (a scatter-add, :class:`~minitransformer.autograd.ops.Take`).

    Parameters
    ----------
    x : Tensor
        The table, ``(..., V, ...)`` with its ``V`` rows along ``axis``.
    indices : Tensor or array_like
        Integers in ``[-V, V)``, of any shape ``I`` and any integer dtype (``uint8`` bytes too); a negative
        index counts from the end, as in NumPy: ``-1`` is row ``V - 1``. One outside that range is an
        ``IndexError``: at once where the backend checks values (``backend.check_values``, on by default except on
        CuPy, where looking would make the host wait for the GPU), else at the next read of the device, the lookup
        having wrapped around, modulo ``V``, in between (``Backend.check_range``).
    axis : int
        The axis of ``x`` the indices pick from.
    in_range : bool
        True when the caller has already checked the indices' range, so that they are not read a second time
        (:class:`~minitransformer.nn.Embedding` checks its ids against its vocabulary, ``0..V-1``).

    Returns
    -------
    Tensor
        ``(..., *I, ...)``: the axis ``axis`` of ``x`` replaced by the axes of ``indices``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> E = mt.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], requires_grad=True)   # V = 3 rows
    >>> y = mt.take(E, mt.tensor([[0, 2], [2, 2]]))
    >>> y.shape
    (2, 2, 2)
    >>> y.sum().backward()
    >>> E.grad.numpy()                          # row 2 was looked up three times
    array([[1., 1.],
           [0., 0.],
           [3., 3.]], dtype=float32)
    """
    be = x.backend
    if isinstance(indices, Tensor):
        if indices.backend is not be:
            raise _backend.BackendError(
                f"take: table is on {be.name}, indices on {indices.backend.name}; move one with .to({be.name!r})"
            )
        ids = indices.data
    else:
        ids = be.asarray(indices)
    return ops.Take.apply(x, indices=ids, axis=_axis(axis, x.ndim, "take"), in_range=bool(in_range))


def cast(x: Tensor, dtype) -> Tensor:
    r"""``x`` converted to ``dtype`` (differentiable between floating dtypes).

    :math:`y = x` in the new dtype, same shape; :math:`\bar x = \bar y` cast back to ``x``'s dtype
    (:class:`~minitransformer.autograd.ops.Cast`). An integer or boolean result has no gradient.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.tensor([1.5, -2.0], requires_grad=True)
    >>> y = mt.cast(x, "float64")
    >>> y.dtype_name, y.requires_grad
    ('float64', True)
    >>> mt.cast(x, "int64").tolist()
    [1, -2]
    """
    return ops.Cast.apply(x, dtype=x.backend.dtype(dtype))


def sigmoid(x: Tensor) -> Tensor:
    r"""The logistic sigmoid, :math:`\sigma(x) = 1 / (1 + e^{-x})`, elementwise, composed so that no exponent is
    positive: with :math:`e = e^{-|x|} \in (0, 1]`,

    .. math:: \sigma(x) = \frac{1}{1 + e} \ (x \ge 0), \qquad \sigma(x) = \frac{e^{x}}{1 + e^{x}} = \frac{e}{1 + e}
              \ (x < 0),

    two forms of one function. Written as ``1 / (1 + (-x).exp())``, :math:`e^{-x}` overflows for a very negative
    :math:`x` (:math:`e^{100}` is inf in float32) and its backward divides inf by inf: NaN. The gradient,
    :math:`\sigma(x)(1 - \sigma(x))`, comes from the primitives' (``where``, ``exp``, ``/``); as in PyTorch
    it rounds to 0 for a large positive :math:`x` (beyond about 17 in float32).

    >>> import minitransformer as mt
    >>> x = mt.tensor([-100.0, 100.0], requires_grad=True)
    >>> y = sigmoid(x)
    >>> y.sum().backward()
    >>> y.numpy().round(4), x.grad.numpy().round(4)      # no inf: e^-100 / (1 + e^-100), 1 / (1 + e^-100)
    (array([0., 1.], dtype=float32), array([0., 0.], dtype=float32))
    """
    if not _is_floating(x.dtype):  # named here: the first primitive to refuse would be Exp, inside
        raise TypeError(f"sigmoid: needs floating-point input, got {x.dtype_name} with shape {x.shape}; convert it "
                        "first, e.g. .to('float32')")
    positive = x >= 0.0
    e = (-where(positive, x, -x)).exp()  # e^{-|x|} in (0, 1]; |x| by branch, so that at 0 its slope is 1, not 0
    return where(positive, 1.0, e) / (1.0 + e)  # 1 / (1 + e^{-x}) for x >= 0, e^{x} / (1 + e^{x}) below


def where(condition, a, b) -> Tensor:
    r"""``a`` where ``condition`` is True, ``b`` elsewhere; the gradient goes to the branch chosen.

    :math:`y = c\ ?\ a : b` elementwise, :math:`\bar a = \bar y\,[c]`, :math:`\bar b = \bar y\,[\lnot c]`.
    ``condition`` (boolean), ``a`` and ``b`` (tensors or Python numbers, at least one a Tensor)
    broadcast together; the result has the broadcast shape.

    Examples
    --------
    >>> import minitransformer as mt
    >>> a = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = mt.where(a > 1.5, a, 0.0)
    >>> y.numpy()
    array([0., 2., 3.], dtype=float32)
    >>> y.sum().backward()
    >>> a.grad.numpy()
    array([0., 1., 1.], dtype=float32)
    """
    like = _tensor_of("where", a, b)
    cond = _condition("where", "condition", condition, like)
    a, b = _lift(a, like, op="where"), _lift(b, like, op="where")
    broadcast_shapes("where(condition, a, b)", tuple(cond.shape), ops._shape(a), ops._shape(b))
    return ops.Where.apply(a, b, condition=cond)


def _condition(op: str, name: str, condition, like: Tensor, meaning: str = ""):
    """``condition`` (a bool Tensor, array or nested lists) as a bool array on ``like``'s backend; else an error
    naming ``op`` and the argument ``name`` (and, given, its ``meaning``: ``"True where attention is allowed"``).
    The one check of a mask: ``where``, ``masked_fill`` and attention's masks (``functional._checks.as_mask``)."""
    backend = like.backend
    if isinstance(condition, Tensor):
        if condition.backend is not backend:
            raise _backend.BackendError(
                f"{op}: {name} is on backend {condition.backend.name}, expected {backend.name}; "
                f"move it with .to({backend.name!r})"
            )
        cond = condition.data
    elif backend.owns(condition):  # already an array of the backend: no call into the array library
        cond = condition
    elif isinstance(condition, list) and np.asarray(condition).size == 0:  # nested empty lists: no values to be
        cond = backend.asarray(np.asarray(condition, dtype=bool))  # bool, which NumPy would read as float64
    else:
        cond = backend.asarray(condition)
    if _backend.dtype_name(cond.dtype) != "bool":
        raise TypeError(f"{op}: {name} must be boolean" + (f" ({meaning})" if meaning else "")
                        + f", got {_backend.dtype_name(cond.dtype)} with shape {tuple(cond.shape)}")
    return cond


def masked_fill(x: Tensor, mask, value) -> Tensor:
    r"""``value`` where ``mask`` is True, ``x`` elsewhere: how attention hides a position.

    The paper writes :math:`-\infty` for a hidden score; this library's attention uses the dtype's most
    negative finite number instead, so that a row with every position hidden gives no NaN (and
    :class:`detect_anomaly`, which stops at any infinity, stays quiet).

    ``mask`` is boolean; ``x`` and ``mask`` broadcast together (as in PyTorch), so the result has
    ``x``'s shape when the mask broadcasts to it, and the larger, broadcast shape otherwise. ``value``
    is a number of ``x``'s kind (an int or a float for a floating ``x``, an int for an integer one).
    No gradient reaches ``x`` at the filled places.

    Examples
    --------
    >>> import minitransformer as mt
    >>> scores = mt.zeros(2, 3)
    >>> future = mt.tensor([[False, True, True], [False, False, True]])
    >>> mt.masked_fill(scores, future, float("-inf")).numpy()
    array([[  0., -inf, -inf],
           [  0.,   0., -inf]], dtype=float32)
    >>> mt.masked_fill(mt.zeros(3), future, 1.0).shape     # a larger mask: the broadcast shape
    (2, 3)
    >>> mt.tensor([1, 2, 3]).masked_fill(future[0], 0).tolist()
    [1, 0, 0]
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"masked_fill: x must be a Tensor, got {type(x).__name__} (make one with mt.tensor(...))")
    if isinstance(value, np.ndarray) and value.ndim == 0:  # a NumPy 0-d array is a number too
        value = value.item()
    mask = _condition("masked_fill", "mask", mask, x)
    broadcast_shapes("masked_fill(x, mask)", x.shape, tuple(mask.shape))  # named here, not as where's 3 shapes
    value = _lift(value, x, op="masked_fill")  # named here too: float16's -1e9 would be refused as where's
    return where(mask, value, x)


def maximum(a, b) -> Tensor:
    r"""Elementwise max(a, b); at ties the gradient is split equally (as in PyTorch).

    :math:`y = \max(a, b)`, :math:`\bar a = \bar y\,([a > b] + \tfrac12 [a = b])`, and :math:`\bar b`
    likewise. ``a`` and ``b`` (tensors or Python numbers) broadcast; the result has the broadcast shape.
    Where either is NaN, :math:`y` is NaN and the whole gradient goes to ``b`` (PyTorch gives it to both).

    Examples
    --------
    >>> import minitransformer as mt
    >>> a = mt.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    >>> y = mt.maximum(a, 0.0)
    >>> y.numpy()
    array([0., 0., 2.], dtype=float32)
    >>> y.sum().backward()
    >>> a.grad.numpy()                          # the tie at 0 gets half
    array([0. , 0.5, 1. ], dtype=float32)
    """
    like = _tensor_of("maximum", a, b)
    return ops.Maximum.apply(_lift(a, like, op="maximum"), _lift(b, like, op="maximum"))


def _tensor_of(op: str, a, b) -> Tensor:
    """The operand that is a Tensor (``a`` if both are): the other, a number, is lifted to its backend and dtype."""
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        raise TypeError(
            f"{op}: a or b must be a Tensor, got {type(a).__name__} and {type(b).__name__} "
            "(make one with mt.tensor(...))"
        )
    return like


@torch_keywords
def concat(tensors, axis: int = 0) -> Tensor:
    """The tensors joined along ``axis`` (``Concat(head_1, ..., head_h)``).

    Shapes: ``(..., n_1, ...)``, ..., ``(..., n_k, ...)``, equal outside ``axis`` ->
    ``(..., n_1 + ... + n_k, ...)``. Each input's gradient is its slice of the output's.

    Examples
    --------
    >>> import minitransformer as mt
    >>> heads = [mt.ones(2, 5, 4) for _ in range(3)]      # h = 3 heads, each (B, L, d_v)
    >>> mt.concat(heads, axis=-1).shape
    (2, 5, 12)
    """
    tensors = _tensor_list("concat", tensors)
    return ops.Concat.apply(*tensors, axis=_axis(axis, tensors[0].ndim, "concat"))


@torch_keywords
def stack(tensors, axis: int = 0) -> Tensor:
    """The tensors (all of one shape) stacked along a new ``axis``.

    Shapes: ``k`` tensors of one shape -> that shape with a new axis of size ``k`` at ``axis``.
    Each input's gradient is its slice of the output's.

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.stack([mt.zeros(2, 3), mt.ones(2, 3)], axis=0).shape
    (2, 2, 3)
    >>> mt.stack([mt.zeros(2, 3), mt.ones(2, 3)], axis=-1).shape
    (2, 3, 2)
    """
    tensors = _tensor_list("stack", tensors)
    return ops.Stack.apply(*tensors, axis=_axis(axis, tensors[0].ndim + 1, "stack"))



@torch_keywords
def split(x: Tensor, sections, axis: int = -1) -> list[Tensor]:
    r"""``x`` cut along ``axis`` into ``sections`` equal parts (an int) or parts of the sizes given.

    Each part is a slice, so the gradient of each flows back to its place in ``x``.
    Shapes: ``(..., n, ...)`` -> a list of ``(..., n_i, ...)``, :math:`\sum_i n_i = n`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> q, k, v = mt.split(mt.ones(2, 5, 12), 3)          # a fused QKV projection, cut in three
    >>> q.shape
    (2, 5, 4)
    >>> [part.shape for part in mt.split(mt.arange(5), [2, 3])]
    [(2,), (3,)]
    """
    axis = _axis(axis, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(sections, int):
        if sections <= 0 or n % sections:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into {sections} equal parts")
        sizes = [n // sections] * sections
    else:
        sizes = [_integer("split", "the parts' sizes", size, sections, "ints") for size in sections]
        if any(size < 0 for size in sizes):  # [4, -1] adds up to 3 too, and slices would clamp the 4
            raise ValueError(f"split: sizes {sizes} must each be >= 0")
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, axis {axis} has size {n}")
    parts, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        parts.append(ops.GetItem.apply(x, index=index))
        start += size
    return parts
