r"""The primitive operations: each ``forward`` beside its ``backward``, the derivative in the docstring.

Notation: :math:`y` is the output, :math:`\bar y = \partial L/\partial y` the gradient arriving
from above (``grad``), and each ``backward`` returns :math:`\bar x = \partial L/\partial x` for
every input :math:`x`. Broadcast inputs get their gradient summed back to their shape by the
engine (``engine.unbroadcast``), so the formulas here are written for equal shapes.

Tensor operators and methods reach these (``a * b`` is ``Mul.apply(a, b)``, ``x.exp()`` is
``Exp.apply(x)``); each class states its derivative in one line, and its ``backward`` computes it.
From what you write to the class, and its derivative (``ybar`` arrives, ``y`` is the output; whole
formulas as one operation, such as softmax and layer norm, are in ``fused.py``):

=====================================================  ==========  ==================================================
You write                                              Class       Gradients
=====================================================  ==========  ==================================================
``a + b``                                              Add         abar = ybar, bbar = ybar
``a - b``                                              Sub         abar = ybar, bbar = -ybar
``a * b``                                              Mul         abar = ybar b, bbar = ybar a
``a / b``                                              Div         abar = ybar / b, bbar = -ybar y / b
``-x``                                                 Neg         xbar = -ybar
``a ** b``                                             Pow         abar = ybar b a^(b-1), bbar = ybar y ln a (a > 0)
``x.exp()``                                            Exp         xbar = ybar y
``x.log()``                                            Log         xbar = ybar / x
``x.log1p()``                                          Log1p       xbar = ybar / (1 + x)
``x.sqrt()``                                           Sqrt        xbar = ybar / (2 y)
``x.tanh()``                                           Tanh        xbar = ybar (1 - y^2)
``x.relu()``                                           ReLU        xbar = ybar [x > 0]
``mt.maximum(a, b)``                                   Maximum     abar = ybar ([a > b] + [a = b] / 2), bbar alike
``x.sum(axis)``                                        Sum         xbar = ybar, copied along ``axis``
``x.mean(axis)``                                       Mean        xbar = ybar / n, copied along ``axis``
``x.max(axis)``                                        Max         xbar = ybar at the maxima, shared among ties
``a @ b``, ``mt.matmul``                               MatMul      Abar = Ybar B^T, Bbar = A^T Ybar
``x.reshape(...)``                                     Reshape     xbar = ybar in x's shape
``x.permute(...)``, ``.T``, ``.mT``, ``.swapaxes``     Permute     xbar = ybar, axes put back
``x[0, 1:3, None]`` (basic indexing), ``mt.split``     GetItem     xbar = 0, with ybar at the index
``x[ids]``, ``mt.take(x, ids, axis)``                  Take        xbar = rows of ybar added at ids
``mt.concat``                                          Concat      xbar_k = the slice of ybar from x_k
``mt.stack``                                           Stack       xbar_k = ybar[k] along the new axis
``mt.where(c, a, b)``, ``x.masked_fill``               Where       abar = ybar [c], bbar = ybar [not c]
``x.to(dtype)``, ``mt.cast``                           Cast        xbar = ybar in x's dtype
``<``, ``>``, ``eq``, ...; ``+`` and ``*`` of bools    Compare     none (a boolean result)
=====================================================  ==========  ==================================================

A new primitive needs rows in the tests' tables (``CASES`` of ``tests/test_autograd_primitives.py`` and
more); its tests fail, naming the table, until it has them: see "How to add a primitive or a formula" in
docs/testing.md. Arrays go through ``self.xp``, never numpy by name.

Writing them (assignment A1): start with ``Add``, ``Mul`` and ``Sum``. Every gradient check reduces an
operation's output to one number through them (:math:`s = \sum v \odot f(x)`), so until they are written
every test stops there, whichever operation it checks.

Examples
--------
A tensor used twice gets the gradient of both uses, added:

>>> import minitransformer as mt
>>> from minitransformer.autograd.ops import Mul
>>> a = mt.tensor([1.0, 2.0], requires_grad=True)
>>> Mul.apply(a, a).sum().backward()        # y = a a: abar = ybar a + ybar a
>>> a.grad.numpy()
array([2., 4.], dtype=float32)
"""

from __future__ import annotations

import math

from .. import backend as _backend
from .engine import Function, Tensor, _integer, _kind, _tensor_list, broadcast_shapes


def _is_number(x) -> bool:
    """A Python number, not an array: NumPy gives a 0-d result as ``numpy.float64``, a float subclass."""
    return isinstance(x, int | float) and not hasattr(x, "dtype")


def _shape(x):
    return tuple(x.shape) if isinstance(x, Tensor) else ()


def _nonempty(op: str, x, axis: tuple) -> None:
    """Refuse a reduction over an axis of size 0, which has no elements to average or compare (NumPy gives NaN with
    a warning, or its own error): a ValueError naming ``op``, the axis and the shape."""
    for a in axis:
        if x.shape[a] == 0:
            raise ValueError(f"{op}: axis {a} has size 0 (shape {x.shape}): the {op.lower()} of no elements is "
                             "undefined")


def _full(index: tuple, shape: tuple[int, ...]) -> tuple:
    """``index`` as the array API (array-api-strict) reads it: every axis indexed (a trailing ``...``), and each
    slice's bounds inside its axis (NumPy and CuPy read ``x[:10]`` of 3 elements as ``x[:3]``; the standard leaves
    bounds beyond the axis undefined, and array-api-strict refuses them)."""
    indexed = sum(i is not None and i is not Ellipsis for i in index)
    full, axis = [], 0
    for i in index:
        if type(i) is slice:
            i = _inside(i, shape[axis])
        if i is Ellipsis:
            axis += len(shape) - indexed
        elif i is not None:
            axis += 1
        full.append(i)
    return tuple(full) if Ellipsis in full else (*full, Ellipsis)


def _inside(s: slice, n: int) -> slice:
    """The slice ``s`` of an axis of size ``n`` with its bounds inside the axis, selecting what NumPy selects."""
    r = range(*s.indices(n))
    if not r:
        return slice(0, 0)
    return slice(r.start, r.stop if r.stop >= 0 else None, r.step)  # stop -1 going down: past index 0, i.e. None


class _Elementwise(Function):
    """Binary elementwise operations: the operands must broadcast (checked before any arithmetic)."""

    @classmethod
    def check(cls, a, b, **options):
        shape_a, shape_b = _shape(a), _shape(b)
        if shape_a != shape_b and shape_a and shape_b:  # equal shapes and numbers always broadcast
            broadcast_shapes(cls.__name__, shape_a, shape_b)


# ------------------------------------------------------------------ arithmetic
class Add(_Elementwise):
    r""":math:`y = a + b`; :math:`\bar a = \bar y`, :math:`\bar b = \bar y`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Add
    >>> a = mt.tensor([1.0, 2.0], requires_grad=True)
    >>> b = mt.tensor([10.0], requires_grad=True)                   # broadcast to (2,)
    >>> Add.apply(a, b).sum().backward()
    >>> a.grad.numpy(), b.grad.numpy()                              # b's gradient summed back to (1,)
    (array([1., 1.], dtype=float32), array([2.], dtype=float32))
    """

    on_bool = "logical_or"  # a + b on bools is "a or b"

    def forward(self, a, b):
        """``a + b`` (arrays or numbers), of the broadcast shape."""
        return a + b

    def backward(self, grad):
        r""":math:`(\bar y, \bar y)`."""
        ### BEGIN SOLUTION A1: Add.backward: abar = ybar, bbar = ybar (the engine unbroadcasts); do Add, Mul, Sum first
        return grad, grad
        ### END SOLUTION


class Sub(_Elementwise):
    r""":math:`y = a - b`; :math:`\bar a = \bar y`, :math:`\bar b = -\bar y`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Sub
    >>> a = mt.tensor([1.0, 2.0], requires_grad=True)
    >>> b = mt.tensor([3.0, 5.0], requires_grad=True)
    >>> Sub.apply(a, b).sum().backward()
    >>> a.grad.numpy(), b.grad.numpy()
    (array([1., 1.], dtype=float32), array([-1., -1.], dtype=float32))
    """

    on_bool = "refuse"

    def forward(self, a, b):
        """``a - b`` (arrays or numbers), of the broadcast shape."""
        return a - b

    def backward(self, grad):
        r""":math:`(\bar y, -\bar y)`."""
        ### BEGIN SOLUTION A1: Sub.backward: abar = ybar and bbar = -ybar (None when b needs no gradient)
        return grad, (-grad if self.needs_grad(1) else None)
        ### END SOLUTION


class Mul(_Elementwise):
    r""":math:`y = a b`; :math:`\bar a = \bar y\, b`, :math:`\bar b = \bar y\, a`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Mul
    >>> a = mt.tensor([1.0, 2.0], requires_grad=True)
    >>> b = mt.tensor([3.0, 5.0], requires_grad=True)
    >>> Mul.apply(a, b).sum().backward()
    >>> a.grad.numpy(), b.grad.numpy()                              # b, a
    (array([3., 5.], dtype=float32), array([1., 2.], dtype=float32))
    """

    on_bool = "logical_and"  # a * b on bools is "a and b"
    fresh_grads = True

    def forward(self, a, b):
        """``a * b``, of the broadcast shape; keeps each factor only if the other one's gradient is wanted."""
        # keep each factor only for the other's gradient: x * 2.0 keeps nothing of x
        self.a = a if self.needs_grad(1) else None
        self.b = b if self.needs_grad(0) else None
        return a * b

    def backward(self, grad):
        r""":math:`(\bar y\, b, \bar y\, a)`."""
        ### BEGIN SOLUTION A1: Mul.backward: abar = ybar * b, bbar = ybar * a (kept in forward); do Add, Mul, Sum first
        return (grad * self.b if self.needs_grad(0) else None), (grad * self.a if self.needs_grad(1) else None)
        ### END SOLUTION


class Div(_Elementwise):
    r""":math:`y = a / b`; :math:`\bar a = \bar y / b`, :math:`\bar b = -\bar y\, a / b^2 = -\bar y\, y / b`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Div
    >>> a = mt.tensor([1.0, 6.0], requires_grad=True)
    >>> b = mt.tensor([2.0, 3.0], requires_grad=True)
    >>> Div.apply(a, b).sum().backward()
    >>> a.grad.numpy().round(4), b.grad.numpy().round(4)            # 1 / b, -a / b^2
    (array([0.5   , 0.3333], dtype=float32), array([-0.25  , -0.6667], dtype=float32))
    """

    float_only = True
    fresh_grads = True

    def forward(self, a, b):
        """``a / b``, of the broadcast shape; keeps ``b``, and ``y`` if the divisor's gradient is wanted."""
        self.b = b
        y = a / b
        self.y = y if self.needs_grad(1) else None  # only the divisor's gradient uses y
        return y

    def backward(self, grad):
        r""":math:`(\bar y / b, -\bar y\, y / b)`."""
        ### BEGIN SOLUTION A1: Div.backward: abar = ybar / b and bbar = -ybar * y / b
        grad_a = grad / self.b
        return (grad_a if self.needs_grad(0) else None), (-grad_a * self.y if self.needs_grad(1) else None)
        ### END SOLUTION


class Neg(Function):
    r""":math:`y = -x`; :math:`\bar x = -\bar y`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Neg
    >>> x = mt.tensor([1.0, -2.0], requires_grad=True)
    >>> Neg.apply(x).sum().backward()
    >>> x.grad.numpy()
    array([-1., -1.], dtype=float32)
    """

    on_bool = "refuse"
    fresh_grads = True

    def forward(self, x):
        """``-x``, same shape."""
        return -x

    def backward(self, grad):
        r""":math:`(-\bar y,)`."""
        ### BEGIN SOLUTION A1: Neg.backward: xbar = -ybar, returned as a one-element tuple
        return (-grad,)
        ### END SOLUTION


class Pow(_Elementwise):
    r""":math:`y = a^b`; :math:`\bar a = \bar y\, b\, a^{b-1}`, :math:`\bar b = \bar y\, y \ln a` (for a > 0).

    Where :math:`b = 0`, :math:`y = 1` is constant and :math:`\bar a = 0`, also at :math:`a = 0` (where
    :math:`b\, a^{b-1}` would be :math:`0 \cdot \infty`); for :math:`b < 1` at :math:`a = 0` it is
    infinite, as in PyTorch.

    Where :math:`a \le 0`, :math:`\bar b` is taken as 0: :math:`\ln a` is not real there (for :math:`a < 0`,
    :math:`a^b` is real only at integer :math:`b`, so it has no derivative in :math:`b`), and at :math:`a = 0`,
    :math:`b > 0`, :math:`y = 0` does not change with :math:`b`. PyTorch agrees at :math:`a = 0`, :math:`b \ge 0`,
    and gives NaN where :math:`a < 0` and :math:`-\infty` at :math:`a = 0`, :math:`b < 0`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Pow
    >>> a = mt.tensor([2.0, 3.0], requires_grad=True)
    >>> Pow.apply(a, 2.0).sum().backward()
    >>> a.grad.numpy()                                              # 2 a
    array([4., 6.], dtype=float32)
    """

    on_bool = "refuse"
    fresh_grads = True

    def forward(self, a, b):
        """``a ** b``, of the broadcast shape; keeps ``a``, ``b``, and ``y`` if the exponent's gradient is wanted."""
        self.a, self.b = a, b
        y = a**b
        self.y = y if self.needs_grad(1) else None  # only the exponent's gradient uses y
        return y

    def backward(self, grad):
        r""":math:`(\bar y\, b\, a^{b-1}, \bar y\, y \ln a)`, ``None`` for a Python-number operand.

        Tell one with ``_is_number`` or ``self.needs_grad(i)``, not ``isinstance(b, float)``: NumPy gives a 0-d
        result (``x.sum()``) as ``numpy.float64``, a float subclass, and such a tensor's exponent wants a gradient.
        """
        ### BEGIN SOLUTION A1: Pow.backward: abar = ybar b a^(b-1), bbar = ybar y ln(a) for a > 0 (else 0)
        xp, a, b = self.xp, self.a, self.b
        grad_a = None
        if not _is_number(a) and self.needs_grad(0):
            # where b = 0, y = 1 has derivative 0, not b a^(b-1) = 0 * inf at a = 0
            if _is_number(b):
                grad_a = grad * b * a ** (b - 1) if b != 0 else xp.zeros_like(grad)
            else:
                grad_a = grad * b * a ** xp.where(b == 0, 0.0, b - 1)  # 0 * a^0 = 0 where b = 0, a = inf too
        grad_b = None
        if not _is_number(b) and self.needs_grad(1):
            # y ln a only where a > 0; elsewhere 0 (ln a is not real), also where y is inf or NaN (0 ** -1, (-2) ** 0.5)
            if _is_number(a):
                grad_b = grad * self.y * math.log(a) if a > 0 else xp.zeros_like(grad)
            else:
                positive = a > 0
                grad_b = grad * xp.where(positive, self.y, 0.0) * xp.log(xp.where(positive, a, 1.0))
        return grad_a, grad_b
        ### END SOLUTION


class Exp(Function):
    r""":math:`y = e^x`; :math:`\bar x = \bar y\, e^x = \bar y\, y`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Exp
    >>> x = mt.tensor([0.0, 1.0], requires_grad=True)
    >>> Exp.apply(x).sum().backward()
    >>> x.grad.numpy().round(4)                                     # e^x
    array([1.    , 2.7183], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x):
        r""":math:`e^x`, same shape; keeps it (it is its own derivative)."""
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, grad):
        r""":math:`(\bar y\, y,)`."""
        ### BEGIN SOLUTION A1: Exp.backward: xbar = ybar * e^x = ybar * y
        return (grad * self.y,)
        ### END SOLUTION


class Log(Function):
    r""":math:`y = \ln x`; :math:`\bar x = \bar y / x`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Log
    >>> x = mt.tensor([1.0, 4.0], requires_grad=True)
    >>> Log.apply(x).sum().backward()
    >>> x.grad.numpy()                                              # 1 / x
    array([1.  , 0.25], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x):
        r""":math:`\ln x`, same shape; keeps ``x``."""
        self.x = x
        return self.xp.log(x)

    def backward(self, grad):
        r""":math:`(\bar y / x,)`."""
        ### BEGIN SOLUTION A1: Log.backward: xbar = ybar / x
        return (grad / self.x,)
        ### END SOLUTION


class Log1p(Function):
    r""":math:`y = \ln(1 + x)`; :math:`\bar x = \bar y / (1 + x)`.

    The same number as ``(1 + x).log()``, but exact where :math:`|x|` is tiny: there :math:`1 + x` rounds,
    to 1 when :math:`|x|` is at most half the dtype's epsilon (a quarter for a negative :math:`x`), so the log
    gives 0 instead of :math:`x`; a little above that it keeps only a few of :math:`x`'s digits.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Log1p
    >>> x = mt.tensor([1e-10, 3.0], requires_grad=True)
    >>> y = Log1p.apply(x)
    >>> y.numpy()                                                   # ln(1 + 1e-10) = 1e-10, ln 4
    array([1.0000000e-10, 1.3862944e+00], dtype=float32)
    >>> (1.0 + x).log().numpy()                                     # in float32, 1 + 1e-10 rounds to 1
    array([0.       , 1.3862944], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad.numpy()                                              # 1 / (1 + x)
    array([1.  , 0.25], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x):
        r""":math:`\ln(1 + x)`, same shape; keeps ``x``."""
        self.x = x
        return self.xp.log1p(x)

    def backward(self, grad):
        r""":math:`(\bar y / (1 + x),)`."""
        ### BEGIN SOLUTION A1: Log1p.backward: xbar = ybar / (1 + x)
        return (grad / (1.0 + self.x),)
        ### END SOLUTION


class Sqrt(Function):
    r""":math:`y = \sqrt{x}`; :math:`\bar x = \bar y / (2\sqrt{x}) = \bar y / (2y)`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Sqrt
    >>> x = mt.tensor([1.0, 4.0], requires_grad=True)
    >>> Sqrt.apply(x).sum().backward()
    >>> x.grad.numpy()                                              # 1 / (2 sqrt x)
    array([0.5 , 0.25], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x):
        r""":math:`\sqrt{x}`, same shape; keeps it."""
        self.y = self.xp.sqrt(x)
        return self.y

    def backward(self, grad):
        r""":math:`(\bar y / 2y,)`."""
        ### BEGIN SOLUTION A1: Sqrt.backward: xbar = ybar / (2 sqrt(x)) = ybar / (2 y)
        return (grad / (2.0 * self.y),)
        ### END SOLUTION


class Tanh(Function):
    r""":math:`y = \tanh x`; :math:`\bar x = \bar y\,(1 - y^2)`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Tanh
    >>> x = mt.tensor([0.0, 1.0], requires_grad=True)
    >>> Tanh.apply(x).sum().backward()
    >>> x.grad.numpy().round(4)                                     # 1 - tanh^2 x
    array([1.  , 0.42], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x):
        r""":math:`\tanh x`, same shape; keeps it."""
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, grad):
        r""":math:`(\bar y\,(1 - y^2),)`."""
        ### BEGIN SOLUTION A1: Tanh.backward: xbar = ybar * (1 - y^2)
        return (grad * (1.0 - self.y * self.y),)
        ### END SOLUTION


class ReLU(Function):
    r""":math:`y = \max(0, x)`; :math:`\bar x = \bar y\,[x > 0]`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import ReLU
    >>> x = mt.tensor([-1.0, 2.0], requires_grad=True)
    >>> y = ReLU.apply(x)
    >>> y.sum().backward()
    >>> y.numpy(), x.grad.numpy()
    (array([0., 2.], dtype=float32), array([0., 1.], dtype=float32))
    """

    float_only = True
    fresh_grads = True

    def forward(self, x):
        r""":math:`\max(0, x)`, same shape; keeps the mask :math:`x > 0` as booleans."""
        self.positive = x > 0 if self.needs_grad(0) else None  # kept as booleans: 1/4 of a float mask
        return self.xp.maximum(x, 0.0)  # (not `where`: with a data-dependent mask it is many times slower)

    def backward(self, grad):
        r""":math:`(\bar y\,[x > 0],)`."""
        ### BEGIN SOLUTION A1: ReLU.backward: xbar = ybar where x > 0, else 0
        return (grad * self.xp.astype(self.positive, grad.dtype),)
        ### END SOLUTION


class Maximum(_Elementwise):
    r""":math:`y = \max(a, b)`; :math:`\bar a = \bar y\,[a > b] + \tfrac12 \bar y\,[a = b]`, and
    :math:`\bar b` likewise: at a tie each side gets half (as PyTorch does). Where either is NaN, no
    comparison holds and the whole gradient goes to :math:`b` (PyTorch gives it to both).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Maximum
    >>> a = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> b = mt.tensor([2.0, 2.0, 2.0], requires_grad=True)
    >>> Maximum.apply(a, b).sum().backward()
    >>> a.grad.numpy(), b.grad.numpy()                              # a tie in the middle
    (array([0. , 0.5, 1. ], dtype=float32), array([1. , 0.5, 0. ], dtype=float32))
    """

    on_bool = "refuse"
    fresh_grads = True

    def forward(self, a, b):
        """Elementwise ``max(a, b)``, of the broadcast shape; keeps ``a`` and ``b``."""
        self.a, self.b = a, b
        return self.xp.maximum(a, b)

    def backward(self, grad):
        r"""Each side's share of :math:`\bar y`: all of it where it is larger, half at a tie."""
        ### BEGIN SOLUTION A1: Maximum.backward: ybar goes to the larger operand, split in half on ties
        xp = self.xp
        share_a = xp.astype(self.a > self.b, grad.dtype) + 0.5 * xp.astype(self.a == self.b, grad.dtype)
        grad_a = grad * share_a if self.needs_grad(0) else None
        return grad_a, (grad * (1.0 - share_a) if self.needs_grad(1) else None)
        ### END SOLUTION


class Cast(Function):
    r""":math:`y = x` in another dtype; :math:`\bar x = \bar y` cast back.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Cast
    >>> x = mt.tensor([1.5], requires_grad=True)
    >>> y = Cast.apply(x, dtype=x.backend.dtype("float64"))
    >>> y.sum().backward()
    >>> y.dtype_name, x.grad.dtype_name, x.grad.numpy()
    ('float64', 'float32', array([1.], dtype=float32))
    """

    mixed_dtypes = True
    fresh_grads = True  # astype copies

    def forward(self, x, dtype):
        """``x`` as ``dtype``, same shape; keeps ``x``'s dtype."""
        self.dtype = x.dtype
        return self.xp.astype(x, dtype)

    def backward(self, grad):
        r""":math:`(\bar y,)` cast back to ``x``'s dtype."""
        ### BEGIN SOLUTION A1: Cast.backward: cast ybar back to the input's dtype (no gradient for an integer input)
        return (self.xp.astype(grad, self.dtype),)
        ### END SOLUTION


class Compare(_Elementwise):
    r"""An elementwise comparison (``name`` is ``"less"``, ``"greater_equal"``, ``"equal"``, ...) or logical
    operation (``"logical_or"``, ``"logical_and"``): a boolean array, with no gradient.

    ``<``, ``<=``, ``>``, ``>=``, ``eq`` and ``ne`` of tensors (masks, accuracy) come here, so their operands
    are checked as arithmetic's are: one backend, one dtype, shapes that broadcast; so do ``+`` (or) and ``*``
    (and) of bool tensors. Bools have no order here (NumPy puts False before True, the array API standard
    refuses): ``<`` of bool tensors is refused on every backend.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Compare
    >>> x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = Compare.apply(x, 2.0, name="greater")                   # x > 2.0
    >>> y.numpy(), y.requires_grad
    (array([False, False,  True]), False)
    """

    differentiable = False

    @classmethod
    def check(cls, a, b, name):
        """Refuse shapes that do not broadcast, and an order of bools."""
        super().check(a, b)
        t = a if isinstance(a, Tensor) else b
        if name in ("less", "less_equal", "greater", "greater_equal") and _kind(t.dtype) == "b":
            raise TypeError(f"Compare: bools have no order ({name} of bool with shape {t.shape}); cast first, "
                            "e.g. .to('int64')")

    def forward(self, a, b, name):
        """``xp.<name>(a, b)``, boolean, of the broadcast shape."""
        return getattr(self.xp, name)(a, b)


# ------------------------------------------------------------------ reductions
def _expand(xp, grad, shape, axis, keepdims):
    """Broadcast a reduced gradient back to the input's shape (reinserting the reduced axes)."""
    if not keepdims:
        grad = xp.reshape(grad, tuple(1 if i in axis else n for i, n in enumerate(shape)))
    return xp.broadcast_to(grad, shape)


class Sum(Function):
    r""":math:`y = \sum_{i \in \text{axis}} x_i`; :math:`\bar x_i = \bar y` (copied to every summed element).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Sum
    >>> x = mt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    >>> y = Sum.apply(x, axis=(1,), keepdims=False)
    >>> (y * mt.tensor([1.0, 10.0])).sum().backward()
    >>> y.numpy(), x.grad.numpy()                                   # each row gets its ybar
    (array([ 6., 15.], dtype=float32), array([[ 1.,  1.,  1.],
           [10., 10., 10.]], dtype=float32))
    """

    on_bool = "refuse"

    def forward(self, x, axis, keepdims):
        """The sum over ``axis`` (a tuple), the axes dropped or kept (``keepdims``); keeps the input's shape."""
        self.shape, self.axis, self.keepdims = tuple(x.shape), axis, keepdims
        return self.xp.sum(x, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        r""":math:`(\bar y,)` broadcast back to the input's shape."""
        ### BEGIN SOLUTION A1: Sum.backward: copy ybar to every summed element (see _expand); do Add, Mul, Sum first
        return (_expand(self.xp, grad, self.shape, self.axis, self.keepdims),)
        ### END SOLUTION


class Mean(Function):
    r""":math:`y = \frac1n \sum_{i \in \text{axis}} x_i`; :math:`\bar x_i = \bar y / n`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Mean
    >>> x = mt.tensor([[1.0, 2.0, 3.0, 4.0]], requires_grad=True)
    >>> y = Mean.apply(x, axis=(1,), keepdims=False)
    >>> y.sum().backward()
    >>> y.numpy(), x.grad.numpy()                                   # ybar / n, n = 4
    (array([2.5], dtype=float32), array([[0.25, 0.25, 0.25, 0.25]], dtype=float32))
    """

    float_only = True

    @classmethod
    def check(cls, x, axis, keepdims):
        """Refuse an axis of size 0 to average over (NumPy would give NaN)."""
        _nonempty(cls.__name__, x, axis)

    def forward(self, x, axis, keepdims):
        """The mean over ``axis`` (a tuple), the axes dropped or kept (``keepdims``); keeps the shape and :math:`n`."""
        self.shape, self.axis, self.keepdims = tuple(x.shape), axis, keepdims
        self.n = 1
        for a in axis:
            self.n *= x.shape[a]
        return self.xp.mean(x, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        r""":math:`(\bar y / n,)` broadcast back to the input's shape."""
        ### BEGIN SOLUTION A1: Mean.backward: copy ybar / n to every averaged element (see _expand)
        return (_expand(self.xp, grad / self.n, self.shape, self.axis, self.keepdims),)
        ### END SOLUTION


class Max(Function):
    r""":math:`y = \max_{i \in \text{axis}} x_i`; :math:`\bar x_i = \bar y\,[x_i = y] / \#\{j : x_j = y\}`:
    the gradient goes to the largest element, shared equally among ties (as ``torch.amax``).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Max
    >>> x = mt.tensor([[1.0, 3.0, 3.0], [5.0, 0.0, 2.0]], requires_grad=True)
    >>> y = Max.apply(x, axis=(1,), keepdims=False)
    >>> y.sum().backward()
    >>> y.numpy(), x.grad.numpy()                                   # a tie in row 0
    (array([3., 5.], dtype=float32), array([[0. , 0.5, 0.5],
           [1. , 0. , 0. ]], dtype=float32))
    """

    on_bool = "refuse"
    fresh_grads = True

    @classmethod
    def check(cls, x, axis, keepdims):
        """Refuse an axis of size 0 to take the largest element of."""
        _nonempty(cls.__name__, x, axis)

    def forward(self, x, axis, keepdims):
        """The max over ``axis`` (a tuple), the axes dropped or kept (``keepdims``); keeps ``x`` and the max."""
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.y = self.xp.max(x, axis=axis, keepdims=True)
        return self.y if keepdims else self.xp.reshape(self.y, tuple(n for i, n in enumerate(x.shape) if i not in axis))

    def backward(self, grad):
        r""":math:`\bar y` to the largest elements, shared equally among ties, of the input's shape."""
        ### BEGIN SOLUTION A1: Max.backward: ybar to the largest elements only, shared equally among ties
        xp = self.xp
        winners = xp.astype(self.x == self.y, grad.dtype)
        count = xp.sum(winners, axis=self.axis, keepdims=True)
        return (winners * _expand(xp, grad, tuple(self.x.shape), self.axis, self.keepdims) / count,)
        ### END SOLUTION


# ------------------------------------------------------------------ matrix product
class MatMul(Function):
    r""":math:`Y = A B` (batched over leading axes, which broadcast);
    :math:`\bar A = \bar Y B^\top`, :math:`\bar B = A^\top \bar Y`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import MatMul
    >>> A = mt.ones(4, 2, 3, requires_grad=True)                    # a batch of 4 (2, 3)
    >>> B = mt.ones(3, 5, requires_grad=True)                       # one (3, 5), shared
    >>> Y = MatMul.apply(A, B)
    >>> Y.sum().backward()
    >>> Y.shape, B.grad.shape, float(B.grad.numpy()[0, 0])          # B's gradient summed over 4 * 2 rows
    ((4, 2, 5), (3, 5), 8.0)
    """

    on_bool = "refuse"
    fresh_grads = True

    @classmethod
    def check(cls, a, b):
        """Refuse operands of fewer than 2 axes, unequal inner dimensions, or batch axes that do not broadcast."""
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"MatMul: operands need 2 or more dimensions, got {a.shape} @ {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"MatMul: {a.shape} @ {b.shape}: inner dimensions differ ({a.shape[-1]} != {b.shape[-2]})"
            )
        broadcast_shapes(f"MatMul {a.shape} @ {b.shape}, batch axes", a.shape[:-2], b.shape[:-2])

    def forward(self, a, b):
        """``a @ b``: ``(..., n, k) @ (..., k, m) -> (..., n, m)``; keeps each operand for the other's gradient."""
        a, b = _for_products(self, a), _for_products(self, b)  # kept as the backward's products read them, too
        self.a = a if self.needs_grad(1) else None  # A for B's gradient, B for A's
        self.b = b if self.needs_grad(0) else None
        self.shared_weight = b.ndim == 2 and a.ndim > 2
        return _shared_weight_matmul(self, a, b)

    def backward(self, grad):
        r""":math:`(\bar Y B^\top, A^\top \bar Y)`, a shared weight's gradient summed over the batch."""
        grad = _for_products(self, grad)  # (for cuBLAS: a permuted view copied once, not in each product)
        ### BEGIN SOLUTION A1: MatMul.backward: Abar = Ybar B^T, Bbar = A^T Ybar (use xp.matrix_transpose)
        xp, a, b = self.xp, self.a, self.b
        if self.shared_weight:  # fold the batch axes into rows: one product each, not one per matrix of the stack
            rows_g = _rows(xp, grad)  # (N, E); copied only if grad is not row after row
            grad_a = grad_b = None
            if self.needs_grad(0):  # Ybar B^T: (N, E) @ (E, D), back in A's shape
                grad_a = xp.reshape(_matmul(self, rows_g, xp.matrix_transpose(b)), (*grad.shape[:-1], b.shape[0]))
            if self.needs_grad(1):  # A^T Ybar: (D, N) @ (N, E)
                grad_b = _matmul(self, xp.matrix_transpose(_rows(xp, a)), rows_g)
            return grad_a, grad_b
        grad_a = _matmul(self, grad, xp.matrix_transpose(b)) if self.needs_grad(0) else None
        return grad_a, (_matmul(self, xp.matrix_transpose(a), grad) if self.needs_grad(1) else None)
        ### END SOLUTION


def _rows(xp, x):
    """``x`` of shape ``(..., d)`` as ``(rows, d)``, the leading axes folded into one. (The rows are counted, not
    left to ``-1``: with ``d = 0`` a reshape cannot infer them.)"""
    return xp.reshape(x, (math.prod(x.shape[:-1]), x.shape[-1]))


def _matmul(fn, a, b):
    """``a @ b`` for operation ``fn``: ``xp.matmul``, or where ``fn``'s backend has CUDA kernels, one cuBLAS call
    that reads transposed operands in place (:meth:`~minitransformer.kernels.CudaKernels.matmul`)."""
    kernels = fn.backend.kernels
    product = None if kernels is None else kernels.matmul(a, b)
    return fn.xp.matmul(a, b) if product is None else product


def _for_products(fn, x):
    """``x``, or where ``fn``'s backend has CUDA kernels, ``x`` laid out so that cuBLAS reads it in place: a
    permuted view (attention's heads) is copied once here rather than inside each product that uses it."""
    kernels = fn.backend.kernels
    return x if kernels is None else kernels.readable(x)


def _shared_weight_matmul(fn, a, b):
    """``a @ b``; when ``b`` is one matrix shared by a stack ``a`` (..., N, D) laid out row after row, as one
    (rows, D) @ (D, E) product: one large BLAS call instead of one small call per matrix of the stack."""
    xp, flags = fn.xp, getattr(a, "flags", None)  # NumPy and CuPy say whether the reshape is free; others: not folded
    if b.ndim == 2 and a.ndim > 2 and flags is not None and flags.c_contiguous:
        rows = _matmul(fn, _rows(xp, a), b)
        return xp.reshape(rows, (*a.shape[:-1], b.shape[-1]))
    return _matmul(fn, a, b)


# ------------------------------------------------------------------ shapes
class Reshape(Function):
    r""":math:`y = \mathrm{reshape}(x)`; :math:`\bar x = \mathrm{reshape}(\bar y)` to x's shape.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Reshape
    >>> x = mt.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], requires_grad=True)
    >>> y = Reshape.apply(x, shape=(2, 3))
    >>> (y * mt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
    >>> y.shape, x.grad.numpy()
    ((2, 3), array([1., 2., 3., 4., 5., 6.], dtype=float32))
    """

    def forward(self, x, shape):
        """``x`` in ``shape`` (same number of elements); keeps the old shape."""
        self.shape = tuple(x.shape)
        return self.xp.reshape(x, shape)

    def backward(self, grad):
        r""":math:`(\bar y,)` in the input's shape."""
        ### BEGIN SOLUTION A1: Reshape.backward: reshape ybar back to the input's shape
        return (self.xp.reshape(grad, self.shape),)
        ### END SOLUTION


class Permute(Function):
    r""":math:`y = x` with axes reordered by :math:`\pi`; :math:`\bar x = \bar y` reordered by :math:`\pi^{-1}`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Permute
    >>> x = mt.ones(2, 3, 4, requires_grad=True)
    >>> y = Permute.apply(x, axes=(2, 0, 1))
    >>> y.sum().backward()
    >>> y.shape, x.grad.shape
    ((4, 2, 3), (2, 3, 4))
    """

    def forward(self, x, axes):
        """``x`` with its axes in the order ``axes``; keeps the inverse permutation."""
        self.inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
        return self.xp.permute_dims(x, axes)

    def backward(self, grad):
        r""":math:`(\bar y,)` with its axes put back by the inverse permutation."""
        ### BEGIN SOLUTION A1: Permute.backward: permute ybar by the inverse permutation
        return (self.xp.permute_dims(grad, self.inverse),)
        ### END SOLUTION


class GetItem(Function):
    r""":math:`y = x[\text{index}]` (basic indexing);
    :math:`\bar x` is zero except :math:`\bar x[\text{index}] = \bar y`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import GetItem
    >>> x = mt.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    >>> y = GetItem.apply(x, index=(slice(1, 3),))                  # x[1:3]
    >>> y.sum().backward()
    >>> y.numpy(), x.grad.numpy()
    (array([2., 3.], dtype=float32), array([0., 1., 1., 0.], dtype=float32))
    """

    fresh_grads = True

    @classmethod
    def check(cls, x, index):
        """Refuse more indices than axes, an int outside its axis, and anything but ints, slices, ``None`` and one
        ``...`` (an index array is :class:`Take`'s), naming the index, the axis and the shape."""
        indexed = ellipses = 0
        for i in index:
            if i is Ellipsis:
                ellipses += 1
            elif i is not None:
                indexed += 1
        if indexed > x.ndim:
            raise IndexError(f"getitem: {indexed} indices for a tensor of shape {x.shape} ({x.ndim} dimensions)")
        if ellipses > 1:
            raise IndexError(f"getitem: an index may have one ... (Ellipsis), got {ellipses}")
        axis = 0
        for i in index:
            if i is None:
                continue
            if i is Ellipsis:
                axis += x.ndim - indexed
            elif type(i) is int:
                size = x.shape[axis]
                if not -size <= i < size:
                    raise IndexError(f"getitem: index {i} is out of range for axis {axis} of size {size} "
                                     f"(shape {x.shape})")
                axis += 1
            elif type(i) is slice:
                for part in (i.start, i.stop, i.step):
                    if part is not None and type(part) is not int:
                        _integer("getitem", "a slice's start, stop and step", part, i, "ints or None")
                if i.step == 0:
                    raise ValueError(f"getitem: {i} on axis {axis}: a slice's step must not be 0")
                axis += 1
            else:
                raise IndexError(
                    f"getitem: {i!r} (a {type(i).__name__}) on axis {axis} is no index; an index is an int, a "
                    "slice, None, ..., or one integer array picking rows"
                )

    def forward(self, x, index):
        """``x[index]``; keeps the input's shape and dtype and where ``index`` points."""
        index = _full(index, x.shape)
        self.shape, self.dtype = tuple(x.shape), x.dtype
        # the array API allows ``None`` (new axes) when reading but not when writing: backward
        # writes through the index without them, into a place of the shape it selects
        self.target = tuple(i for i in index if i is not None)
        self.target_shape = tuple(x[self.target].shape)
        return x[index]

    def backward(self, grad):
        r"""Zeros of the input's shape with :math:`\bar y` at ``index``, as a one-tuple."""
        ### BEGIN SOLUTION A1: GetItem.backward: zeros of the input's shape, with ybar written at the index
        xp = self.xp
        out = xp.zeros(self.shape, dtype=self.dtype)
        out[self.target] = xp.reshape(grad, self.target_shape)
        return (out,)
        ### END SOLUTION


class Take(Function):
    r"""Rows of a table by integer index, the embedding lookup: :math:`y[\ldots, n, \ldots] = x[\ldots, i_n, \ldots]`.

    :math:`\bar x[\ldots, v, \ldots] = \sum_{n: i_n = v} \bar y[\ldots, n, \ldots]`: a row used
    twice gets both gradients (a scatter-add, provided by the backend).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Take
    >>> E = mt.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    >>> ids = mt.tensor([2, 0, 2]).data                             # options are arrays
    >>> y = Take.apply(E, indices=ids, axis=0)
    >>> y.sum().backward()
    >>> y.shape, E.grad.numpy()                                     # row 2 used twice
    ((3, 2), array([[1., 1.],
           [0., 0.],
           [2., 2.]], dtype=float32))
    """

    mixed_dtypes = True
    fresh_grads = True

    @classmethod
    def check(cls, x, indices, axis, in_range=False):
        """Refuse non-integer indices, and indices outside ``[-V, V)`` (at once, or at the next read of the device
        where the backend does not check values at once: ``Backend.check_range``), unless the caller says it has
        checked them (``in_range=True``: an Embedding checks its ids against its vocabulary)."""
        xp = x.backend.xp
        if not xp.isdtype(indices.dtype, "integral"):
            raise TypeError(
                f"Take: indices must be integers, got {_backend.dtype_name(indices.dtype)} "
                f"with shape {tuple(indices.shape)}"
            )
        size = x.shape[axis]
        if not in_range:
            x.backend.check_range(indices, -size, size - 1, f"Take: index {{bad}} is out of range for axis {axis} of "
                                                            f"size {size} (table shape {x.shape}, indices shape "
                                                            f"{tuple(indices.shape)})")

    def forward(self, x, indices, axis, in_range=False):
        """Rows of ``x`` along ``axis``: ``(..., V, ...)`` -> ``(..., *I, ...)``; keeps the flat indices."""
        xp = self.xp
        self.shape, self.axis = tuple(x.shape), axis
        flat = xp.reshape(indices, (-1,))
        if flat.dtype != xp.int64:  # a narrow dtype may not hold V (uint8 ids, 300 rows): % V would overflow
            flat = xp.astype(flat, xp.int64)
        self.flat = flat % x.shape[axis]  # negative indices count from the end
        self.ids_shape = tuple(indices.shape)
        out = xp.take(x, self.flat, axis=axis)
        return xp.reshape(out, self.shape[:axis] + self.ids_shape + self.shape[axis + 1 :])

    def backward(self, grad):
        r"""The rows of :math:`\bar y` scatter-added into a zero table of ``x``'s shape, as a one-tuple."""
        ### BEGIN SOLUTION A1: Take.backward: scatter-add rows of ybar into the table (self.backend.scatter_add)
        xp, axis = self.xp, self.axis
        n = self.flat.shape[0]
        # move the looked-up axis to the front, scatter-add rows of the gradient there, move it back
        g = xp.moveaxis(xp.reshape(grad, self.shape[:axis] + (n,) + self.shape[axis + 1 :]), axis, 0)
        table_shape = (self.shape[axis],) + self.shape[:axis] + self.shape[axis + 1 :]
        return (xp.moveaxis(self.backend.scatter_add(table_shape, self.flat, g), 0, axis),)
        ### END SOLUTION


class Concat(Function):
    r""":math:`y = [x_1; x_2; \ldots]` along an axis;
    :math:`\bar x_k` is the slice of :math:`\bar y` where :math:`x_k` went.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Concat
    >>> a = mt.ones(2, 3, requires_grad=True)
    >>> b = mt.ones(2, 1, requires_grad=True)
    >>> y = Concat.apply(a, b, axis=1)
    >>> (y * mt.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    >>> y.shape, b.grad.numpy().ravel()                             # b's slice of ybar
    ((2, 4), array([4., 4.], dtype=float32))
    """

    @classmethod
    def check(cls, *xs, axis):
        """Refuse inputs that are not tensors, or whose shapes differ outside ``axis``."""
        _tensor_list(cls.__name__, xs)
        first = xs[0].shape
        for x in xs[1:]:
            if x.ndim != len(first) or any(a != b for i, (a, b) in enumerate(zip(x.shape, first)) if i != axis):
                raise ValueError(
                    f"Concat: shapes {', '.join(str(t.shape) for t in xs)} differ outside axis {axis}"
                )

    def forward(self, *xs, axis):
        """The arrays joined along ``axis``; keeps their sizes along it."""
        self.axis, self.sizes = axis, [x.shape[axis] for x in xs]
        return self.xp.concat(xs, axis=axis)

    def backward(self, grad):
        r"""For each input, its slice of :math:`\bar y`."""
        ### BEGIN SOLUTION A1: Concat.backward: cut ybar along the axis into the inputs' sizes
        parts, start = [], 0
        for size in self.sizes:
            index = (slice(None),) * self.axis + (slice(start, start + size), ...)
            parts.append(grad[index])
            start += size
        return tuple(parts)
        ### END SOLUTION


class Stack(Function):
    r""":math:`y[\ldots, k, \ldots] = x_k` along a new axis; :math:`\bar x_k = \bar y[\ldots, k, \ldots]`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Stack
    >>> a = mt.tensor([1.0, 2.0], requires_grad=True)
    >>> b = mt.tensor([3.0, 4.0], requires_grad=True)
    >>> y = Stack.apply(a, b, axis=0)
    >>> (y * mt.tensor([[1.0], [10.0]])).sum().backward()
    >>> y.shape, b.grad.numpy()
    ((2, 2), array([10., 10.], dtype=float32))
    """

    @classmethod
    def check(cls, *xs, axis):
        """Refuse inputs that are not tensors, or of different shapes."""
        _tensor_list(cls.__name__, xs)
        if any(x.shape != xs[0].shape for x in xs):
            raise ValueError(f"Stack: all shapes must be equal, got {', '.join(str(t.shape) for t in xs)}")

    def forward(self, *xs, axis):
        """The arrays (one shape) stacked along a new ``axis``; keeps their number."""
        self.axis, self.n = axis, len(xs)
        return self.xp.stack(xs, axis=axis)

    def backward(self, grad):
        r"""For each input, :math:`\bar y` at its index along ``axis``."""
        ### BEGIN SOLUTION A1: Stack.backward: slice k of ybar along the new axis is input k's gradient
        return tuple(grad[(slice(None),) * self.axis + (k, ...)] for k in range(self.n))
        ### END SOLUTION


class Where(Function):
    r""":math:`y = c ? a : b` elementwise; :math:`\bar a = \bar y\,[c]`, :math:`\bar b = \bar y\,[\lnot c]`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.ops import Where
    >>> a = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> c = (a > 1.5).data                                          # the condition is an array option
    >>> y = Where.apply(a, 0.0, condition=c)
    >>> y.sum().backward()
    >>> y.numpy(), a.grad.numpy()
    (array([0., 2., 3.], dtype=float32), array([0., 1., 1.], dtype=float32))
    """

    @classmethod
    def check(cls, a, b, condition):
        """Refuse a condition and operands whose shapes do not broadcast together."""
        broadcast_shapes("Where", tuple(condition.shape), _shape(a), _shape(b))

    fresh_grads = True

    def forward(self, a, b, condition):
        """``a`` where ``condition``, else ``b``, of the broadcast shape; keeps the condition."""
        self.condition = condition
        return self.xp.where(condition, a, b)

    def backward(self, grad):
        r""":math:`(\bar y\,[c], \bar y\,[\lnot c])`."""
        ### BEGIN SOLUTION A1: Where.backward: abar = ybar where the condition holds, bbar = ybar where it does not
        xp, c = self.xp, self.condition
        grad_a = xp.where(c, grad, 0.0) if self.needs_grad(0) else None
        return grad_a, (xp.where(c, 0.0, grad) if self.needs_grad(1) else None)
        ### END SOLUTION
