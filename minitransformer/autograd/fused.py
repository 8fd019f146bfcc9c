r"""Fused primitives: a whole formula as one operation, its derivative worked out by hand.

:func:`~minitransformer.functional.linear`, ``softmax`` (also scaled and masked, as attention's weights),
``log_softmax``, ``layer_norm``, ``gelu``, ``cross_entropy`` and ``binary_cross_entropy_with_logits`` are written
in :mod:`minitransformer.functional` as compositions of the engine's primitives (``matmul``, ``exp``, ``sum``,
``/``, ...), which is how a reader checks them against the formula, and how their gradient comes for free.
Composed, each records two to eleven operations, each allocating
an array and keeping its inputs for ``backward``. Here each is one :class:`Function`: ``forward``
runs the formula on arrays, keeping only what the derivative needs, and ``backward`` is the
derivative simplified by hand (written in each docstring) and computed in a few array passes.

The functions in :mod:`minitransformer.functional` use these by default (``fused=True``) and keep
the composition as the reference (``fused=False``); ``tests/test_fused.py`` proves the two agree,
values and gradients, and checks each of these against finite differences.

On a GPU, softmax (also scaled and masked, as attention's weights), layer norm, GELU and the binary
cross-entropy run as one CUDA kernel each way, and the affine map's products as direct cuBLAS calls
(:mod:`minitransformer.kernels`; ``MINITRANSFORMER_KERNELS=0`` turns them off): the same formulas,
checked against these.

Notation as in :mod:`.ops`: :math:`\bar y = \partial L/\partial y` arrives, :math:`\bar x` is returned.
"""

from __future__ import annotations

import functools
import math

from .engine import Function
from .ops import _matmul, _rows, _shared_weight_matmul

__all__ = ["Affine", "Softmax", "ScaledMaskedSoftmax", "LogSoftmax", "LayerNorm", "Gelu", "CrossEntropy",
           "BinaryCrossEntropyWithLogits"]

#: :math:`\sqrt{2/\pi}` and the cubic coefficient of GELU's tanh approximation
SQRT_2_OVER_PI, GELU_CUBIC = math.sqrt(2.0 / math.pi), 0.044715


def _kernels_for(backend, x, axis: int):
    """The backend's CUDA kernels (:mod:`minitransformer.kernels`) if it has them and they take ``x`` along
    ``axis``, else None: the formula below runs on arrays."""
    kernels = backend.kernels
    return kernels if kernels is not None and kernels.fits(x, axis) else None


def _sums_over_rows(fn, ybar, x_hat=None, ybar_x_hat=None):
    r""":math:`(\sum_{\text{rows}} \bar y,\; \sum_{\text{rows}} \bar y\, \hat x)` over every axis but the last
    (the second None without ``x_hat``): a bias's gradient, and layer norm's :math:`\bar\beta` and :math:`\bar\gamma`.

    ``(..., d)`` -> ``(d,)``. Where ``fn``'s backend has CUDA kernels, one kernel gives both: CuPy's own sum costs
    the host about two kernel launches, and there are two per layer norm and one per projection. Elsewhere
    ``ybar_x_hat``, the product :math:`\bar y\, \hat x` where the caller has it already, is summed as it is.
    """
    kernels = _kernels_for(fn.backend, ybar, -1)
    if kernels:
        return kernels.column_sums(ybar, x_hat)
    rows = tuple(range(ybar.ndim - 1))
    if x_hat is not None and ybar_x_hat is None:
        ybar_x_hat = ybar * x_hat
    return fn.xp.sum(ybar, axis=rows), (None if x_hat is None else fn.xp.sum(ybar_x_hat, axis=rows))


def _feature_mean(fn, v, w=None):
    r""":math:`\langle w v \rangle = \tfrac1d \sum_i w_i v_i`, the mean of ``v`` ``(..., d)`` over its last axis
    (weighted by ``w`` ``(d,)`` where given), as ``(..., 1)``: layer norm's means over the features.

    One matrix-vector product, ``v @ (w / d)`` (:func:`~minitransformer.autograd.ops._shared_weight_matmul`),
    rather than ``xp.mean(w * v, axis=-1, keepdims=True)``: NumPy's reduction loops over each row of a short last
    axis on its own (a layer norm's 64 features), and the weighted product would be one array more. The sums are
    rounded in another order than the mean's: a few units of the last place apart in float32.
    """
    d = v.shape[-1]
    column = _uniform_column(fn.backend, d, v.dtype) if w is None else fn.xp.reshape(w / max(d, 1), (d, 1))
    return _shared_weight_matmul(fn, v, column)


@functools.lru_cache(maxsize=32)
def _uniform_column(backend, d: int, dtype):
    """The column ``(d, 1)`` of :math:`1/d`, made once for each backend, width and dtype rather than at every layer
    norm (no features: a sum of none, 0, not a division by 0)."""
    return backend.xp.full((d, 1), 1.0 / max(d, 1), dtype=dtype)


#: the longest last axis whose maximum :func:`_max_along` takes by halves on the CPU (half of it in float64), and the
#: fewest rows (NumPy's own reduction is the faster beyond the first, float64 from about 48, float32 from about
#: 128, and below the second, its loop per row costing less than the halves' dozen calls on a few rows)
SHORT_ROW, MANY_ROWS = 64, 1024


def _max_along(xp, x, axis: int):
    r""":math:`m = \max_j x_j` along ``axis``, kept as an axis of length 1: the shift of softmax and log-softmax.

    The same numbers as ``xp.max(x, axis=axis, keepdims=True)``, NaN and ``-inf`` included (a maximum is exact,
    whatever the order it is taken in), so the softmax's results do not change. On the CPU, :data:`MANY_ROWS` rows
    or more of a last axis of at most :data:`SHORT_ROW` entries (attention's keys, a small vocabulary; a training
    batch's scores, not one decoding step's) go to :func:`_last_axis_max_by_halves`:
    NumPy reduces each row in a loop of its own, which costs more than the row's few entries (the max of
    ``(32, 4, 64, 64)`` float32 scores took three times their sum). On a GPU one reduction is one kernel launch
    where the halves would be ten, and a long row's loop pays for itself: both keep ``xp.max``.
    """
    if type(x).__module__ == "numpy" and x.ndim and axis in (-1, x.ndim - 1):  # NumPy's ndarray (not CuPy's)
        n, short = x.shape[-1], SHORT_ROW if x.dtype.itemsize <= 4 else SHORT_ROW // 2
        if 0 < n <= short and x.size >= MANY_ROWS * n:
            return _last_axis_max_by_halves(xp, x)
    return xp.max(x, axis=axis, keepdims=True)


def _last_axis_max_by_halves(xp, x):
    """The maximum of each row of ``x`` ``(..., n)``, ``n >= 1``, as ``(..., 1)``, by operations on whole arrays.

    While a row is longer than 8, it is replaced by the elementwise maximum of its two halves (overlapping by one
    entry where ``n`` is odd: ``max(a, a) = a``); the last few columns are then taken one by one. About
    ``log2(n) + 7`` elementwise ``xp.maximum`` calls, none of them a reduction; ``xp.maximum`` propagates NaN as
    ``xp.max`` does.
    """
    m = x
    while m.shape[-1] > 8:
        half = (m.shape[-1] + 1) // 2
        m = xp.maximum(m[..., :half], m[..., -half:])  # (..., ceil(n / 2))
    top = m[..., :1]
    for j in range(1, m.shape[-1]):
        top = xp.maximum(top, m[..., j:j + 1])
    return top


def _log_softmax(xp, x, axis: int):
    r""":math:`(x - m) - \log \sum_j e^{x_j - m}` along ``axis``, :math:`m = \max_j x_j` (every exponent <= 0)."""
    z = x - _max_along(xp, x, axis)
    z -= xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))
    return z


class Affine(Function):
    r"""The affine map :math:`y = xW + b` of every projection, as one operation.

    ``x`` ``(..., d_in)``, ``W`` ``(d_in, d_out)``, ``b`` ``(d_out,)`` or ``None``. With every leading axis of
    ``x`` folded into rows (:math:`X` is ``(rows, d_in)``):

    .. math:: \bar X = \bar Y W^\top, \qquad \bar W = X^\top \bar Y, \qquad \bar b = \sum_{\text{rows}} \bar Y

    The bias is added into the product's new array in place: the composed ``x @ W + b`` makes a
    second array of the output's size, and records a second operation.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import Affine
    >>> x = mt.ones(2, 5, 3, requires_grad=True)                 # (..., d_in) = (2, 5, 3)
    >>> W = mt.ones(3, 4, requires_grad=True)                    # (d_in, d_out)
    >>> b = mt.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
    >>> y = Affine.apply(x, W, b)
    >>> y.shape, y.numpy()[0, 0]
    ((2, 5, 4), array([3., 4., 5., 6.], dtype=float32))
    >>> y.sum().backward()
    >>> b.grad.numpy()                                           # summed over 2 * 5 rows
    array([10., 10., 10., 10.], dtype=float32)
    """

    fresh_grads = True

    def forward(self, x, W, b):
        r"""``x @ W + b``: ``(..., d_in)`` -> ``(..., d_out)``; keeps ``x`` and ``W`` only for the gradients wanted."""
        self.x = x if self.needs_grad(1) else None  # x for W's gradient, W for x's
        self.W = W if self.needs_grad(0) else None
        self.has_b = b is not None
        y = _shared_weight_matmul(self, x, W)  # (..., d_out)
        if b is not None:
            y += b
        return y

    def backward(self, grad):
        r""":math:`(\bar X, \bar W, \bar b)` by the formulas above, shaped as ``x``, ``W``, ``b`` (or ``None``)."""
        ### BEGIN SOLUTION A1: Affine.backward: Xbar = Ybar W^T, Wbar = X^T Ybar over all rows, bbar = sum of rows
        xp, x, W = self.xp, self.x, self.W
        rows_g = _rows(xp, grad)  # (rows, d_out); copied only if grad is not row after row
        grad_x = None
        if self.needs_grad(0):  # Ybar W^T, one (rows, d_out) @ (d_out, d_in) product, back in x's shape
            grad_x = xp.reshape(_matmul(self, rows_g, xp.matrix_transpose(W)), (*grad.shape[:-1], W.shape[0]))
        grad_W = None
        if self.needs_grad(1):
            grad_W = _matmul(self, xp.matrix_transpose(_rows(xp, x)), rows_g)  # X^T Ybar
        grad_b = _sums_over_rows(self, rows_g)[0] if self.has_b and self.needs_grad(2) else None  # sum of rows
        return grad_x, grad_W, grad_b
        ### END SOLUTION


class Softmax(Function):
    r"""Softmax along ``axis``: :math:`y_i = e^{x_i - m} / \sum_j e^{x_j - m}`, :math:`m = \max_j x_j`.

    Its Jacobian is :math:`\partial y_i / \partial x_k = y_i([i = k] - y_k)`, so the gradient is

    .. math:: \bar x_k = \sum_i \bar y_i\, y_i ([i = k] - y_k) = y_k \Big(\bar y_k - \sum_i \bar y_i y_i\Big)

    two products, one sum, one subtraction: no :math:`n \times n` Jacobian is formed. Only :math:`y` is kept.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import Softmax
    >>> Softmax.apply(mt.tensor([[1.0, 2.0, 3.0]]), axis=-1).numpy().round(4)
    array([[0.09  , 0.2447, 0.6652]], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x, axis: int):
        """Softmax along ``axis`` (same shape as ``x``); keeps the result ``y``."""
        self.axis = axis
        self.kernels = _kernels_for(self.backend, x, axis)
        if self.kernels:  # on a GPU, the same formula as one CUDA kernel (minitransformer.kernels)
            self.y = self.kernels.softmax_forward(x)
        else:
            self.y = _softmax(self.xp, x, axis)
        return self.y

    def backward(self, grad):
        r""":math:`\bar x = y\,(\bar y - \sum_i \bar y_i y_i)` along ``axis``, as a one-tuple."""
        if self.kernels:
            return (self.kernels.softmax_backward(grad, self.y),)
        return (_softmax_backward(self.xp, self.y, grad, self.axis),)


def _softmax(xp, x, axis: int):
    r""":math:`y = e^{x - m} / \sum_j e^{x_j - m}` along ``axis``, :math:`m = \max_j x_j`, on arrays: the forward of
    :class:`Softmax` and of attention's weights (:class:`ScaledMaskedSoftmax`)."""
    ### BEGIN SOLUTION A2: return exp(x - max) / sum along axis, max and sum with keepdims=True (arrays)
    y = xp.exp(x - _max_along(xp, x, axis))
    y /= xp.sum(y, axis=axis, keepdims=True)
    return y
    ### END SOLUTION


def _softmax_backward(xp, y, grad, axis: int):
    r""":math:`\bar x = y\,(\bar y - \sum_i \bar y_i y_i)` along ``axis``, on arrays, from the softmax's output ``y``
    and :math:`\bar y` (``grad``): the backward of :class:`Softmax` and :class:`ScaledMaskedSoftmax`."""
    ### BEGIN SOLUTION A2: return xbar = y * (ybar - sum(ybar * y)), the sum along axis with keepdims=True
    grad_x = grad * y  # y_k ybar_k
    grad_x -= y * xp.sum(grad_x, axis=axis, keepdims=True)  # - y_k sum_i ybar_i y_i
    return grad_x
    ### END SOLUTION


class ScaledMaskedSoftmax(Function):
    r"""Attention's weights as one operation: the softmax of :math:`z = x / \sqrt{d_k}` over the allowed keys.

    :math:`y = \mathrm{softmax}(\mathrm{where}(M, z, -\infty))` along the last axis, where the mask :math:`M` is
    True for a key the query may see; a query with no allowed key gets weights 0 (never NaN). It is the middle of
    :func:`~minitransformer.functional.scaled_dot_product_attention` (a division, a ``where``, the softmax and a
    second ``where``, composed there) in one operation. Since a hidden key's weight is exactly 0, its gradient
    vanishes on its own, and the derivative is the softmax's (:class:`Softmax`) divided by :math:`\sqrt{d_k}`:

    .. math:: \bar x = y\,\Big(\bar y - \sum_j \bar y_j y_j\Big) \Big/ \sqrt{d_k}

    Only :math:`y` is kept. Inputs: scores ``x`` ``(..., L, S)``; options ``allowed`` (booleans broadcastable to
    ``x``, or None) and ``divisor`` (:math:`\sqrt{d_k}`). Attention uses it on a GPU, where it is one CUDA kernel
    each way (:meth:`~minitransformer.kernels.CudaKernels.masked_softmax_forward`).

    Examples
    --------
    >>> import math
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import ScaledMaskedSoftmax
    >>> scores = mt.tensor([[2.0, 0.0, 5.0], [1.0, 1.0, 1.0]])
    >>> allowed = mt.tensor([[True, True, False], [False, False, False]]).data
    >>> ScaledMaskedSoftmax.apply(scores, allowed=allowed, divisor=math.sqrt(4.0)).numpy().round(4)
    array([[0.7311, 0.2689, 0.    ],
           [0.    , 0.    , 0.    ]], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x, allowed, divisor: float):
        """The weights ``(..., L, S)``; keeps them for ``backward``."""
        xp, self.divisor = self.xp, float(divisor)
        kernels = self.backend.kernels
        self.kernels = kernels if kernels is not None and kernels.fits_mask(x, allowed) else None
        if self.kernels:  # on a GPU, one CUDA kernel (minitransformer.kernels)
            self.y = self.kernels.masked_softmax_forward(x, allowed, self.divisor)
            return self.y
        # the composition of scaled_dot_product_attention, on arrays, around the softmax
        z = x / self.divisor
        if allowed is not None:
            z = xp.where(allowed, z, float(xp.finfo(x.dtype).min))  # hidden: exp(min - max) = 0
        self.kernels = _kernels_for(self.backend, z, -1)  # a GPU where the mask's kernel does not fit: the softmax's
        y = self.kernels.softmax_forward(z) if self.kernels else _softmax(xp, z, -1)
        if allowed is not None:  # a query with no allowed key: 0, not uniform weights over hidden keys
            y = xp.where(xp.any(allowed, axis=-1, keepdims=True), y, 0.0)  # (and so gradient 0)
        self.y = y
        return y

    def backward(self, grad):
        r""":math:`\bar x = y\,(\bar y - \sum_j \bar y_j y_j) / \sqrt{d_k}` along the last axis, as a one-tuple."""
        if self.kernels:
            return (self.kernels.softmax_backward(grad, self.y, self.divisor),)
        return (_softmax_backward(self.xp, self.y, grad, -1) / self.divisor,)


class LogSoftmax(Function):
    r"""Log-softmax along ``axis``: :math:`y_i = (x_i - m) - \log \sum_j e^{x_j - m}`.

    :math:`\partial y_i / \partial x_k = [i = k] - \mathrm{softmax}(x)_k`, and :math:`\mathrm{softmax}(x) = e^y`, so

    .. math:: \bar x_k = \bar y_k - e^{y_k} \sum_i \bar y_i

    Only :math:`y` is kept.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import LogSoftmax
    >>> LogSoftmax.apply(mt.tensor([[1.0, 2.0, 3.0]]), axis=-1).numpy().round(4)
    array([[-2.4076, -1.4076, -0.4076]], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x, axis: int):
        """Log-softmax along ``axis`` (same shape as ``x``); keeps the result ``y``."""
        self.axis = axis
        self.y = _log_softmax(self.xp, x, axis)
        return self.y

    def backward(self, grad):
        r""":math:`\bar x = \bar y - e^{y} \sum_i \bar y_i` along ``axis``, as a one-tuple."""
        xp = self.xp
        grad_x = xp.exp(self.y)  # softmax(x)
        grad_x *= -xp.sum(grad, axis=self.axis, keepdims=True)
        grad_x += grad
        return (grad_x,)


class LayerNorm(Function):
    r"""Layer normalisation over the last axis (:math:`d` features), optional gain :math:`\gamma`, bias :math:`\beta`.

    .. math::
        \mu = \tfrac1d \textstyle\sum_i x_i, \quad \sigma^2 = \tfrac1d \sum_i (x_i - \mu)^2, \quad
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y = \gamma \hat x + \beta

    With :math:`\bar g = \gamma \bar y` (the gradient reaching :math:`\hat x`) and :math:`\langle\cdot\rangle` the
    mean over the :math:`d` features, the chain through :math:`\mu` and :math:`\sigma^2` simplifies to

    .. math::
        \bar x = \frac{1}{\sqrt{\sigma^2 + \epsilon}} \left(\bar g - \langle \bar g \rangle
            - \hat x\, \langle \bar g\, \hat x \rangle\right), \qquad
        \bar\gamma = \sum_{\text{rows}} \bar y\, \hat x, \qquad \bar\beta = \sum_{\text{rows}} \bar y

    (the first term is the direct path, the second the path through :math:`\mu`, the third through
    :math:`\sigma^2`). Kept: :math:`\hat x` and :math:`1/\sqrt{\sigma^2 + \epsilon}` per row. On arrays, each mean
    over the features is a matrix-vector product (``_feature_mean``), :math:`\langle \bar g\, \hat x \rangle` that
    of :math:`\bar y\, \hat x` weighted by :math:`\gamma`: :math:`\bar y\, \hat x` is formed once, for
    :math:`\bar\gamma` and for the third term.
    Inputs: ``x`` ``(..., d)``, ``gamma`` and ``beta`` ``(d,)`` or ``None``.

    Examples
    --------
    Without gain and bias each row comes out with mean 0 and variance 1:

    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import LayerNorm
    >>> LayerNorm.apply(mt.tensor([[1.0, 2.0, 3.0, 4.0]]), None, None, eps=1e-5).numpy().round(4)
    array([[-1.3416, -0.4472,  0.4472,  1.3416]], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x, gamma, beta, eps: float):
        r"""``(..., d)`` -> ``(..., d)``; sets what :meth:`backward` reads: ``self.x_hat`` (:math:`\hat x`,
        ``(..., d)``), ``self.inv_std`` (:math:`1/\sqrt{\sigma^2 + \epsilon}`, ``(..., 1)``), ``self.gamma`` and
        ``self.has_beta`` (whether ``beta`` was given)."""
        xp = self.xp
        self.kernels = _kernels_for(self.backend, x, -1)
        if self.kernels:  # on a GPU, the same formula as one CUDA kernel (minitransformer.kernels)
            y, self.x_hat, self.inv_std = self.kernels.layer_norm_forward(x, gamma, beta, eps)
            self.gamma, self.has_beta = gamma, beta is not None
            return y
        ### BEGIN SOLUTION A4: LayerNorm.forward: return gamma x_hat + beta; set self.x_hat, inv_std, gamma, has_beta
        x_hat = x - _feature_mean(self, x)  # x - mu
        std = xp.sqrt(_feature_mean(self, x_hat * x_hat) + eps)  # sqrt(sigma^2 + eps): (..., 1)
        x_hat /= std
        self.x_hat, self.inv_std, self.gamma, self.has_beta = x_hat, 1.0 / std, gamma, beta is not None
        if gamma is None:
            return x_hat if beta is None else x_hat + beta
        y = x_hat * gamma
        if beta is not None:
            y += beta
        return y
        ### END SOLUTION

    def backward(self, grad):
        r""":math:`(\bar x, \bar\gamma, \bar\beta)` from the formulas above (``None`` where not wanted)."""
        x_hat, gamma = self.x_hat, self.gamma
        ### BEGIN SOLUTION A4: LayerNorm.backward: xbar, gammabar, betabar from the formulas in the docstring
        want_gamma, want_beta = gamma is not None and self.needs_grad(1), self.has_beta and self.needs_grad(2)
        on_arrays = self.needs_grad(0) and not self.kernels
        ybar_x_hat = grad * x_hat if on_arrays else None  # for gammabar and for the path through sigma^2
        grad_gamma = grad_beta = None
        if want_gamma or want_beta:  # sums over every axis but the features
            grad_beta, grad_gamma = _sums_over_rows(self, grad, x_hat if want_gamma else None, ybar_x_hat)
            grad_beta = grad_beta if want_beta else None
        grad_x = None
        if self.needs_grad(0) and self.kernels:
            grad_x = self.kernels.layer_norm_backward(grad, x_hat, gamma, self.inv_std)
        elif on_arrays:
            g = grad if gamma is None else grad * gamma  # gbar = gamma ybar
            grad_x = g - _feature_mean(self, g)
            grad_x -= x_hat * _feature_mean(self, ybar_x_hat, gamma)  # <gbar x_hat> = <gamma (ybar x_hat)>
            grad_x *= self.inv_std
        return grad_x, grad_gamma, grad_beta
        ### END SOLUTION


class Gelu(Function):
    r"""GELU in its tanh form, :math:`y = \tfrac12 x (1 + t)`, :math:`t = \tanh u`, :math:`u = c\,(x + \kappa x^3)`.

    :math:`c = \sqrt{2/\pi}`, :math:`\kappa = 0.044715` (``GELU_CUBIC``; see :func:`~minitransformer.functional.gelu`).
    With :math:`\tanh' = 1 - \tanh^2`, the derivative is

    .. math:: \frac{dy}{dx} = \tfrac12 (1 + t) + \tfrac12\, x\, (1 - t^2)\, c\, (1 + 3 \kappa x^2)

    so :math:`\bar x = \bar y\, dy/dx`, from :math:`x` and :math:`t`, the two arrays kept.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import Gelu
    >>> x = mt.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    >>> y = Gelu.apply(x)
    >>> y.numpy().round(4)
    array([-0.1588,  0.    ,  0.8412], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad.numpy().round(4)                # dy/dx; 1/2 at x = 0
    array([-0.083,  0.5  ,  1.083], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, x):
        r"""Elementwise GELU, the shape of ``x``; keeps ``x`` and :math:`t = \tanh u`."""
        self.x, self.kernels = x, _kernels_for(self.backend, x, -1)
        if self.kernels:  # on a GPU, the same formula as one CUDA kernel (minitransformer.kernels)
            y, self.t = self.kernels.gelu_forward(x)
            return y
        self.t = self.xp.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x))  # t = tanh(c (x + kappa x^3))
        return 0.5 * x * (1.0 + self.t)

    def backward(self, grad):
        r""":math:`\bar x = \bar y \cdot \tfrac12 ((1 + t) + x (1 - t^2) c (1 + 3 \kappa x^2))` (a one-tuple)."""
        x, t = self.x, self.t
        if self.kernels:
            return (self.kernels.gelu_backward(grad, x, t),)
        du = (1.0 - t * t) * (SQRT_2_OVER_PI * (1.0 + 3 * GELU_CUBIC * x * x))  # dt/dx = (1 - t^2) c (1 + 3 kappa x^2)
        return (grad * 0.5 * ((1.0 + t) + x * du),)


class CrossEntropy(Function):
    r"""Cross-entropy of ``softmax(z)`` against class indices, with label smoothing, ``ignore_index`` and reduction.

    .. math::
        \ell_n = -\sum_c q_{n,c} \log \mathrm{softmax}(z_n)_c, \qquad
        q_{n,c} = (1 - \epsilon_{ls})[c = y_n] + \epsilon_{ls} / C

    computed as :math:`\ell_n = -(1 - \epsilon_{ls}) \log p_{n,y_n} - \epsilon_{ls} \langle \log p_n \rangle`
    (the mean over the :math:`C` classes), so no :math:`q` of shape ``(..., C)`` is formed; :math:`\ell_n = 0`
    where ``kept`` is False. Since :math:`\sum_c q_{n,c} = 1`, the derivative of :math:`\ell_n` is

    .. math:: \frac{\partial \ell_n}{\partial z_{n,c}} = \mathrm{softmax}(z_n)_c - q_{n,c}

    and :math:`\bar z_n = w_n(\mathrm{softmax}(z_n) - q_n)` with :math:`w_n = \bar\ell_n` (``"none"``),
    :math:`\bar L` (``"sum"``) or :math:`\bar L / |\text{kept}|` (``"mean"``), and 0 where not kept. Kept: the
    log-probabilities. Inputs: logits ``z`` ``(..., C)``; options ``targets`` (``(...)`` integers in
    ``[0, C)``), ``kept`` (``(...)`` bool or ``None`` for all), ``label_smoothing``, ``reduction``.

    Examples
    --------
    The options are arrays of the logits' backend (``mt.functional.cross_entropy`` makes them):

    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import CrossEntropy
    >>> z = mt.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)     # N = 2, C = 3
    >>> loss = CrossEntropy.apply(z, targets=mt.tensor([0, 2]).data, kept=None,
    ...                           label_smoothing=0.0, reduction="mean")
    >>> round(loss.item(), 4)                  # (-log softmax(z_0)_0 - log softmax(z_1)_2) / 2
    0.6691
    >>> loss.backward()
    >>> z.grad.numpy().round(4)                # (softmax(z_n) - onehot(y_n)) / 2
    array([[-0.1065,  0.0533,  0.0533],
           [ 0.1667,  0.1667, -0.3333]], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, z, targets, kept, label_smoothing: float, reduction: str):
        """Logits ``(..., C)`` -> the loss ``(...)`` (``"none"``) or its 0-d sum or mean; keeps log-probabilities."""
        xp = self.xp
        self.targets, self.kept, self.eps, self.reduction = targets, kept, label_smoothing, reduction
        self.log_p = log_p = _log_softmax(xp, z, -1)  # (..., C)
        loss = -(1.0 - label_smoothing) * self._picked(log_p)  # -(1 - eps) log p_{n, y_n}: (...)
        if label_smoothing:
            loss -= label_smoothing * xp.mean(log_p, axis=-1)  # - eps <log p_n>
        if kept is not None:
            loss = xp.where(kept, loss, 0.0)
        if reduction == "none":
            return loss
        total = xp.sum(loss)
        if reduction == "sum":
            return total
        if kept is None:
            self.count = max(targets.size, 1)
        else:  # counted on the device: no host synchronisation
            n_kept = xp.sum(xp.astype(kept, z.dtype))
            self.count = xp.where(n_kept > 0, n_kept, 1.0)
        return total / self.count

    def _picked(self, log_p):
        """:math:`\\log p_{n, y_n}` for every n: ``(...)``."""
        xp, y = self.xp, self.targets
        if hasattr(xp, "take_along_axis"):
            return xp.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]
        return xp.sum(xp.where(self._one_hot(), log_p, 0.0), axis=-1)  # older array APIs: through the one-hot mask

    def _one_hot(self):
        """:math:`[c = y_n]` as a boolean ``(..., C)``."""
        xp, y = self.xp, self.targets
        # the classes counted in int64, whatever the targets' dtype: arange(300) in uint8 would wrap past 255
        return y[..., None] == xp.arange(self.log_p.shape[-1], dtype=xp.int64)

    def backward(self, grad):
        r""":math:`\bar z_n = w_n(\mathrm{softmax}(z_n) - q_n)`, of the logits' shape ``(..., C)``, as a one-tuple."""
        xp, eps = self.xp, self.eps
        w = grad if self.reduction != "mean" else grad / self.count  # (...) or a 0-d array
        if self.kept is not None:
            w = xp.where(self.kept, w, 0.0)
        grad_z = xp.exp(self.log_p)  # softmax(z)
        if eps:
            grad_z -= eps / grad_z.shape[-1]  # - eps / C
        grad_z = xp.where(self._one_hot(), grad_z - (1.0 - eps), grad_z)  # - (1 - eps)[c = y_n]
        grad_z *= w[..., None] if w.ndim else w
        return (grad_z,)


class BinaryCrossEntropyWithLogits(Function):
    r"""Binary cross-entropy from the logits, one operation: :math:`\ell = \max(z, 0) - z y + \log(1 + e^{-|z|})`.

    The formula of :func:`~minitransformer.functional.binary_cross_entropy_with_logits` (ten operations
    composed), its last term as :math:`\mathrm{log1p}(e^{-|z|})` (exact where :math:`1 + e^{-|z|}` rounds to 1).
    Its derivative is the sigmoid's error,

    .. math:: \frac{\partial \ell}{\partial z} = \sigma(z) - y, \qquad
              \sigma(z) = \frac{1}{1 + e^{-|z|}} \ (z \ge 0), \quad \frac{e^{-|z|}}{1 + e^{-|z|}} \ (z < 0)

    with :math:`e^{-|z|}` kept from ``forward`` (no exponent is positive), scaled by :math:`\bar\ell`
    (``"none"``), :math:`\bar L` (``"sum"``) or :math:`\bar L / N` (``"mean"``). Inputs: logits ``z`` (any
    shape); options ``targets`` (an array of ``z``'s shape and dtype) and ``reduction``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.fused import BinaryCrossEntropyWithLogits
    >>> z = mt.tensor([0.0, 2.0], requires_grad=True)
    >>> loss = BinaryCrossEntropyWithLogits.apply(z, targets=mt.tensor([1.0, 0.0]).data, reduction="mean")
    >>> round(loss.item(), 4)                  # (log 2 + 2 + log(1 + e^-2)) / 2
    1.41
    >>> loss.backward()
    >>> z.grad.numpy().round(4)                # (sigma(z) - y) / 2
    array([-0.25  ,  0.4404], dtype=float32)
    """

    float_only = True
    fresh_grads = True

    def forward(self, z, targets, reduction: str):
        """Logits -> the losses (``"none"``) or their 0-d sum or mean; keeps z, y and :math:`e^{-|z|}`."""
        xp = self.xp
        self.z, self.y, self.reduction = z, targets, reduction
        self.kernels = _kernels_for(self.backend, z, -1)
        if self.kernels:  # on a GPU, the same formula as one CUDA kernel each way (minitransformer.kernels)
            loss, self.e = self.kernels.bce_with_logits_forward(z, targets)
        else:
            self.e = e = xp.exp(-xp.abs(z))  # e^{-|z|}, in (0, 1]
            loss = xp.maximum(z, 0.0) - z * targets + xp.log1p(e)  # log1p: 1 + e would round to 1 for |z| > 37
        if reduction == "none":
            return loss
        return xp.sum(loss) if reduction == "sum" or z.size == 0 else xp.mean(loss)  # the mean of none: 0

    def backward(self, grad):
        r""":math:`\bar z = w(\sigma(z) - y)`, of the logits' shape, as a one-tuple."""
        xp, z = self.xp, self.z
        if self.kernels:
            count = max(z.size, 1) if self.reduction == "mean" else 1
            return (self.kernels.bce_with_logits_backward(grad, z, self.y, self.e, count, self.reduction == "none"),)
        sigma = xp.where(z >= 0, 1.0, self.e) / (1.0 + self.e)
        w = grad / max(z.size, 1) if self.reduction == "mean" else grad
        return ((sigma - self.y) * w,)
