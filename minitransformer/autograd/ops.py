r"""The primitive operations: each ``forward`` beside its ``backward``, the derivative in the docstring.

Notation: :math:`y` is the output, :math:`\bar y = \partial L/\partial y` the gradient arriving
from above (``grad``), and each ``backward`` returns :math:`\bar x = \partial L/\partial x` for
every input :math:`x`. Broadcast inputs get their gradient summed back to their shape by the
engine (``engine.unbroadcast``), so the formulas here are written for equal shapes.
"""

from __future__ import annotations

import math

from .. import backend as _backend
from .engine import Function, Tensor, broadcast_shapes


def _is_number(x) -> bool:
    """A Python number, not an array: NumPy gives a 0-d result as ``numpy.float64``, a float subclass."""
    return isinstance(x, int | float) and not hasattr(x, "dtype")


def _shape(x):
    return tuple(x.shape) if isinstance(x, Tensor) else ()


def _full(index: tuple) -> tuple:
    """``index`` with a trailing ``...``: the array API (array-api-strict) wants every axis indexed."""
    return index if any(i is Ellipsis for i in index) else index + (Ellipsis,)


class _Elementwise(Function):
    """Binary elementwise operations: the operands must broadcast (checked before any arithmetic)."""

    @classmethod
    def check(cls, a, b, **options):
        shape_a, shape_b = _shape(a), _shape(b)
        if shape_a != shape_b and shape_a and shape_b:  # equal shapes and numbers always broadcast
            broadcast_shapes(cls.__name__, shape_a, shape_b)


# ------------------------------------------------------------------ arithmetic
class Add(_Elementwise):
    r""":math:`y = a + b`; :math:`\bar a = \bar y`, :math:`\bar b = \bar y`."""

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(_Elementwise):
    r""":math:`y = a - b`; :math:`\bar a = \bar y`, :math:`\bar b = -\bar y`."""

    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        return grad, (-grad if self.needs_grad(1) else None)


class Mul(_Elementwise):
    r""":math:`y = a b`; :math:`\bar a = \bar y\, b`, :math:`\bar b = \bar y\, a`."""

    fresh_grads = True

    def forward(self, a, b):
        # keep each factor only for the other's gradient: x * 2.0 keeps nothing of x
        self.a = a if self.needs_grad(1) else None
        self.b = b if self.needs_grad(0) else None
        return a * b

    def backward(self, grad):
        return (grad * self.b if self.needs_grad(0) else None), (grad * self.a if self.needs_grad(1) else None)


class Div(_Elementwise):
    r""":math:`y = a / b`; :math:`\bar a = \bar y / b`, :math:`\bar b = -\bar y\, a / b^2 = -\bar y\, y / b`."""

    fresh_grads = True

    def forward(self, a, b):
        self.b = b
        y = a / b
        self.y = y if self.needs_grad(1) else None  # only the divisor's gradient uses y
        return y

    def backward(self, grad):
        grad_a = grad / self.b
        return (grad_a if self.needs_grad(0) else None), (-grad_a * self.y if self.needs_grad(1) else None)


class Neg(Function):
    r""":math:`y = -x`; :math:`\bar x = -\bar y`."""

    fresh_grads = True

    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Pow(_Elementwise):
    r""":math:`y = a^b`; :math:`\bar a = \bar y\, b\, a^{b-1}`, :math:`\bar b = \bar y\, y \ln a` (for a > 0)."""

    fresh_grads = True

    def forward(self, a, b):
        self.a, self.b = a, b
        y = a**b
        self.y = y if self.needs_grad(1) else None  # only the exponent's gradient uses y
        return y

    def backward(self, grad):
        xp, a, b = self.xp, self.a, self.b
        grad_a = None if _is_number(a) or not self.needs_grad(0) else grad * b * a ** (b - 1)
        grad_b = None
        if not _is_number(b) and self.needs_grad(1):
            # ln a only where a > 0; elsewhere a^b has no real derivative in b, taken as 0
            log_a = (math.log(a) if a > 0 else 0.0) if _is_number(a) else xp.log(xp.where(a > 0, a, 1.0))
            grad_b = grad * self.y * log_a
        return grad_a, grad_b


class Exp(Function):
    r""":math:`y = e^x`; :math:`\bar x = \bar y\, e^x = \bar y\, y`."""

    fresh_grads = True

    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, grad):
        return (grad * self.y,)


class Log(Function):
    r""":math:`y = \ln x`; :math:`\bar x = \bar y / x`."""

    fresh_grads = True

    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, grad):
        return (grad / self.x,)


class Sqrt(Function):
    r""":math:`y = \sqrt{x}`; :math:`\bar x = \bar y / (2\sqrt{x}) = \bar y / (2y)`."""

    fresh_grads = True

    def forward(self, x):
        self.y = self.xp.sqrt(x)
        return self.y

    def backward(self, grad):
        return (grad / (2.0 * self.y),)


class Tanh(Function):
    r""":math:`y = \tanh x`; :math:`\bar x = \bar y\,(1 - y^2)`."""

    fresh_grads = True

    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, grad):
        return (grad * (1.0 - self.y * self.y),)


class ReLU(Function):
    r""":math:`y = \max(0, x)`; :math:`\bar x = \bar y\,[x > 0]`."""

    fresh_grads = True

    def forward(self, x):
        self.positive = x > 0 if self.needs_grad(0) else None  # kept as booleans: 1/4 of a float mask
        return self.xp.maximum(x, 0.0)  # (not `where`: with a data-dependent mask it is many times slower)

    def backward(self, grad):
        return (grad * self.xp.astype(self.positive, grad.dtype),)


class Maximum(_Elementwise):
    r""":math:`y = \max(a, b)`; :math:`\bar a = \bar y\,[a > b] + \tfrac12 \bar y\,[a = b]`, and
    :math:`\bar b` likewise: at a tie each side gets half (as PyTorch does)."""

    fresh_grads = True

    def forward(self, a, b):
        self.a, self.b = a, b
        return self.xp.maximum(a, b)

    def backward(self, grad):
        xp = self.xp
        share_a = xp.astype(self.a > self.b, grad.dtype) + 0.5 * xp.astype(self.a == self.b, grad.dtype)
        grad_a = grad * share_a if self.needs_grad(0) else None
        return grad_a, (grad * (1.0 - share_a) if self.needs_grad(1) else None)


class Cast(Function):
    r""":math:`y = x` in another dtype; :math:`\bar x = \bar y` cast back."""

    mixed_dtypes = True
    fresh_grads = True  # astype copies

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return self.xp.astype(x, dtype)

    def backward(self, grad):
        return (self.xp.astype(grad, self.dtype),)


# ------------------------------------------------------------------ reductions
def _expand(xp, grad, shape, axis, keepdims):
    """Broadcast a reduced gradient back to the input's shape (reinserting the reduced axes)."""
    if not keepdims:
        grad = xp.reshape(grad, tuple(1 if i in axis else n for i, n in enumerate(shape)))
    return xp.broadcast_to(grad, shape)


class Sum(Function):
    r""":math:`y = \sum_{i \in \text{axis}} x_i`; :math:`\bar x_i = \bar y` (copied to every summed element)."""

    def forward(self, x, axis, keepdims):
        self.shape, self.axis, self.keepdims = tuple(x.shape), axis, keepdims
        return self.xp.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return (_expand(self.xp, grad, self.shape, self.axis, self.keepdims),)


class Mean(Function):
    r""":math:`y = \frac1n \sum_{i \in \text{axis}} x_i`; :math:`\bar x_i = \bar y / n`."""

    def forward(self, x, axis, keepdims):
        self.shape, self.axis, self.keepdims = tuple(x.shape), axis, keepdims
        self.n = 1
        for a in axis:
            self.n *= x.shape[a]
        return self.xp.mean(x, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return (_expand(self.xp, grad / self.n, self.shape, self.axis, self.keepdims),)


class Max(Function):
    r""":math:`y = \max_{i \in \text{axis}} x_i`; :math:`\bar x_i = \bar y\,[x_i = y] / \#\{j : x_j = y\}`:
    the gradient goes to the largest element, shared equally among ties (as ``torch.amax``)."""

    fresh_grads = True

    def forward(self, x, axis, keepdims):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.y = self.xp.max(x, axis=axis, keepdims=True)
        return self.y if keepdims else self.xp.reshape(self.y, tuple(n for i, n in enumerate(x.shape) if i not in axis))

    def backward(self, grad):
        xp = self.xp
        winners = xp.astype(self.x == self.y, grad.dtype)
        count = xp.sum(winners, axis=self.axis, keepdims=True)
        return (winners * _expand(xp, grad, tuple(self.x.shape), self.axis, self.keepdims) / count,)


# ------------------------------------------------------------------ matrix product
class MatMul(Function):
    r""":math:`Y = A B` (batched over leading axes, which broadcast);
    :math:`\bar A = \bar Y B^\top`, :math:`\bar B = A^\top \bar Y`."""

    fresh_grads = True

    @classmethod
    def check(cls, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"MatMul: operands need 2 or more dimensions, got {a.shape} @ {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"MatMul: {a.shape} @ {b.shape}: inner dimensions differ ({a.shape[-1]} != {b.shape[-2]})"
            )
        broadcast_shapes(f"MatMul {a.shape} @ {b.shape}, batch axes", a.shape[:-2], b.shape[:-2])

    def forward(self, a, b):
        self.a = a if self.needs_grad(1) else None  # A for B's gradient, B for A's
        self.b = b if self.needs_grad(0) else None
        self.shared_weight = b.ndim == 2 and a.ndim > 2
        return _shared_weight_matmul(self.xp, a, b)

    def backward(self, grad):
        xp, a, b = self.xp, self.a, self.b
        grad_a = _shared_weight_matmul(xp, grad, xp.matrix_transpose(b)) if self.needs_grad(0) else None
        if not self.needs_grad(1):
            return grad_a, None
        if self.shared_weight:
            # a shared weight: fold the batch axes into rows, one (D, N) @ (N, E) product, not B of them
            rows_a = xp.reshape(a, (-1, a.shape[-1]))
            rows_g = xp.reshape(grad, (-1, grad.shape[-1]))
            return grad_a, xp.matmul(xp.matrix_transpose(rows_a), rows_g)
        return grad_a, xp.matmul(xp.matrix_transpose(a), grad)


def _shared_weight_matmul(xp, a, b):
    """``a @ b``; when ``b`` is one matrix shared by a stack ``a`` (..., N, D) laid out row after row, as one
    (rows, D) @ (D, E) product: one large BLAS call instead of one small call per matrix of the stack."""
    flags = getattr(a, "flags", None)  # NumPy and CuPy say whether the reshape is free; other arrays: not folded
    if b.ndim == 2 and a.ndim > 2 and flags is not None and flags.c_contiguous:
        rows = xp.matmul(xp.reshape(a, (-1, a.shape[-1])), b)
        return xp.reshape(rows, (*a.shape[:-1], b.shape[-1]))
    return xp.matmul(a, b)


# ------------------------------------------------------------------ shapes
class Reshape(Function):
    r""":math:`y = \mathrm{reshape}(x)`; :math:`\bar x = \mathrm{reshape}(\bar y)` to x's shape."""

    def forward(self, x, shape):
        self.shape = tuple(x.shape)
        return self.xp.reshape(x, shape)

    def backward(self, grad):
        return (self.xp.reshape(grad, self.shape),)


class Permute(Function):
    r""":math:`y = x` with axes reordered by :math:`\pi`; :math:`\bar x = \bar y` reordered by :math:`\pi^{-1}`."""

    def forward(self, x, axes):
        self.inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
        return self.xp.permute_dims(x, axes)

    def backward(self, grad):
        return (self.xp.permute_dims(grad, self.inverse),)


class GetItem(Function):
    r""":math:`y = x[\text{index}]` (basic indexing);
    :math:`\bar x` is zero except :math:`\bar x[\text{index}] = \bar y`."""

    fresh_grads = True

    def forward(self, x, index):
        index = _full(index)
        self.shape, self.dtype = tuple(x.shape), x.dtype
        # the array API allows ``None`` (new axes) when reading but not when writing: backward
        # writes through the index without them, into a place of the shape it selects
        self.target = tuple(i for i in index if i is not None)
        self.target_shape = tuple(x[self.target].shape)
        return x[index]

    def backward(self, grad):
        xp = self.xp
        out = xp.zeros(self.shape, dtype=self.dtype)
        out[self.target] = xp.reshape(grad, self.target_shape)
        return (out,)


class Take(Function):
    r"""Rows of a table by integer index, the embedding lookup: :math:`y[\ldots, n, \ldots] = x[\ldots, i_n, \ldots]`.

    :math:`\bar x[\ldots, v, \ldots] = \sum_{n: i_n = v} \bar y[\ldots, n, \ldots]`: a row used
    twice gets both gradients (a scatter-add, provided by the backend).
    """

    mixed_dtypes = True
    fresh_grads = True

    @classmethod
    def check(cls, x, indices, axis):
        xp = x.backend.xp
        if not xp.isdtype(indices.dtype, "integral"):
            raise TypeError(
                f"Take: indices must be integers, got {_backend.dtype_name(indices.dtype)} "
                f"with shape {tuple(indices.shape)}"
            )
        size = x.shape[axis]
        if x.backend.check_values and math.prod(indices.shape) > 0:
            lo, hi = int(xp.min(indices)), int(xp.max(indices))
            if lo < -size or hi >= size:
                raise IndexError(
                    f"Take: index {hi if hi >= size else lo} is out of range for axis {axis} of size {size} "
                    f"(table shape {x.shape}, indices shape {tuple(indices.shape)})"
                )

    def forward(self, x, indices, axis):
        xp = self.xp
        self.shape, self.axis = tuple(x.shape), axis
        self.flat = xp.reshape(indices, (-1,)) % x.shape[axis]  # negative indices count from the end
        self.ids_shape = tuple(indices.shape)
        out = xp.take(x, self.flat, axis=axis)
        return xp.reshape(out, self.shape[:axis] + self.ids_shape + self.shape[axis + 1 :])

    def backward(self, grad):
        xp, axis = self.xp, self.axis
        n = self.flat.shape[0]
        # move the looked-up axis to the front, scatter-add rows of the gradient there, move it back
        g = xp.moveaxis(xp.reshape(grad, self.shape[:axis] + (n,) + self.shape[axis + 1 :]), axis, 0)
        table_shape = (self.shape[axis],) + self.shape[:axis] + self.shape[axis + 1 :]
        return (xp.moveaxis(self.backend.scatter_add(table_shape, self.flat, g), 0, axis),)


class Concat(Function):
    r""":math:`y = [x_1; x_2; \ldots]` along an axis;
    :math:`\bar x_k` is the slice of :math:`\bar y` where :math:`x_k` went."""

    @classmethod
    def check(cls, *xs, axis):
        first = xs[0].shape
        for x in xs[1:]:
            if x.ndim != len(first) or any(a != b for i, (a, b) in enumerate(zip(x.shape, first)) if i != axis):
                raise ValueError(
                    f"Concat: shapes {', '.join(str(t.shape) for t in xs)} differ outside axis {axis}"
                )

    def forward(self, *xs, axis):
        self.axis, self.sizes = axis, [x.shape[axis] for x in xs]
        return self.xp.concat(xs, axis=axis)

    def backward(self, grad):
        parts, start = [], 0
        for size in self.sizes:
            index = (slice(None),) * self.axis + (slice(start, start + size), ...)
            parts.append(grad[index])
            start += size
        return tuple(parts)


class Stack(Function):
    r""":math:`y[\ldots, k, \ldots] = x_k` along a new axis; :math:`\bar x_k = \bar y[\ldots, k, \ldots]`."""

    @classmethod
    def check(cls, *xs, axis):
        if any(x.shape != xs[0].shape for x in xs):
            raise ValueError(f"Stack: all shapes must be equal, got {', '.join(str(t.shape) for t in xs)}")

    def forward(self, *xs, axis):
        self.axis, self.n = axis, len(xs)
        return self.xp.stack(xs, axis=axis)

    def backward(self, grad):
        return tuple(grad[(slice(None),) * self.axis + (k, ...)] for k in range(self.n))


class Where(Function):
    r""":math:`y = c ? a : b` elementwise; :math:`\bar a = \bar y\,[c]`, :math:`\bar b = \bar y\,[\lnot c]`."""

    @classmethod
    def check(cls, a, b, condition):
        broadcast_shapes("Where", tuple(condition.shape), _shape(a), _shape(b))

    fresh_grads = True

    def forward(self, a, b, condition):
        self.condition = condition
        return self.xp.where(condition, a, b)

    def backward(self, grad):
        xp, c = self.xp, self.condition
        grad_a = xp.where(c, grad, 0.0) if self.needs_grad(0) else None
        return grad_a, (xp.where(c, 0.0, grad) if self.needs_grad(1) else None)
