r"""Softmax, log-softmax, the two activations of the feed-forward layer (ReLU, GELU) and the sigmoid.

Each is composed from the engine's primitive operations (``exp``, ``sum``, ``tanh``, ...), so its
gradient comes from theirs: nothing here writes a ``backward``. Softmax, log-softmax and GELU run, by
default, as one fused operation each (:mod:`minitransformer.autograd.fused`: the same formula, its
derivative worked out by hand); ``fused=False`` runs the composition written here, the reference
the fused operation is tested against.
"""

from __future__ import annotations

from ..autograd import Tensor
from ..autograd._torch_names import torch_keywords
from ..autograd.fused import GELU_CUBIC, SQRT_2_OVER_PI, Gelu, LogSoftmax, Softmax
from ._checks import normalize_axis, require_float

__all__ = ["softmax", "log_softmax", "relu", "gelu", "sigmoid"]


@torch_keywords
def softmax(x: Tensor, axis: int = -1, fused: bool = True) -> Tensor:
    r"""Turn scores into probabilities along ``axis``.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}
              = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j

    Subtracting the maximum :math:`m` changes nothing mathematically (it cancels between numerator
    and denominator) but keeps every exponent :math:`\le 0`, so logits of :math:`10^4` do not
    overflow. :math:`m` is detached: since the shift cancels, its gradient is exactly zero, and
    leaving it out of the graph saves work. This is the softmax of the attention formula (document
    section 4.1.1) and of the output layer.

    Parameters
    ----------
    x : Tensor
        Scores of any shape, floating point.
    axis : int
        The axis that sums to one (the last by default).
    fused : bool
        One operation with the hand-derived gradient :math:`\bar x = y \odot (\bar y - \sum_j \bar y_j y_j)`
        (:class:`~minitransformer.autograd.fused.Softmax`, the default), or (``False``) the composition of primitives
        that ends this function: :math:`m` by ``max`` (keepdims, detached), ``exp`` of :math:`x - m`, divided by its
        ``sum`` along ``axis`` (keepdims), its gradient the primitives'.

    Returns
    -------
    Tensor
        Same shape as ``x``; non-negative, summing to 1 along ``axis``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import softmax
    >>> softmax(mt.tensor([1.0, 2.0, 3.0])).numpy().round(4)
    array([0.09  , 0.2447, 0.6652], dtype=float32)
    """
    require_float("softmax", "x", x)
    axis = normalize_axis("softmax", axis, x.ndim)
    if x.shape[axis] == 0:  # no scores to normalise (and no maximum to subtract): empty, x's shape, as torch
        return x * 0.0
    if fused:
        return Softmax.apply(x, axis=axis)
    ### BEGIN SOLUTION A2: softmax from primitives: e = exp(x - max(x)), then e / sum(e) along axis
    m = x.max(axis=axis, keepdims=True).detach()  # the shift: cancels, so no gradient flows through it
    e = (x - m).exp()
    return e / e.sum(axis=axis, keepdims=True)
    ### END SOLUTION


@torch_keywords
def log_softmax(x: Tensor, axis: int = -1, fused: bool = True) -> Tensor:
    r"""The logarithm of :func:`softmax`, computed without forming the probabilities.

    .. math:: \log \mathrm{softmax}(x)_i = (x_i - m) - \log \sum_j e^{x_j - m}, \quad m = \max_j x_j

    Taking ``softmax(x).log()`` instead would give :math:`\log 0 = -\infty` for a probability that
    underflows to zero; this form stays finite. Losses (:func:`cross_entropy`) use it.

    Parameters
    ----------
    x : Tensor
        Scores (logits) of any shape, floating point.
    axis : int
        The axis of the classes (the last by default).
    fused : bool
        One operation with the gradient :math:`\bar x = \bar y - e^{y} \sum_j \bar y_j`
        (:class:`~minitransformer.autograd.fused.LogSoftmax`, the default), or the composition below (``False``).

    Returns
    -------
    Tensor
        Same shape as ``x``; ``exp`` of it sums to 1 along ``axis``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import log_softmax
    >>> log_softmax(mt.tensor([0.0, 0.0])).numpy().round(4)   # log(1/2)
    array([-0.6931, -0.6931], dtype=float32)
    """
    require_float("log_softmax", "x", x)
    axis = normalize_axis("log_softmax", axis, x.ndim)
    if x.shape[axis] == 0:  # no scores to normalise (and no maximum to subtract): empty, x's shape, as torch
        return x * 0.0
    if fused:
        return LogSoftmax.apply(x, axis=axis)
    z = x - x.max(axis=axis, keepdims=True).detach()  # z <= 0: exp(z) cannot overflow
    return z - z.exp().sum(axis=axis, keepdims=True).log()


def relu(x: Tensor) -> Tensor:
    r"""The rectified linear unit of the paper's feed-forward layer (eq. 2): :math:`\mathrm{ReLU}(x) = \max(0, x)`.

    Its derivative is 1 where :math:`x > 0` and 0 elsewhere (0 at :math:`x = 0` exactly, as PyTorch).

    Parameters
    ----------
    x : Tensor
        Any shape, floating point.

    Returns
    -------
    Tensor
        The shape of ``x``, elementwise :math:`\max(0, x)`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import relu
    >>> relu(mt.tensor([-1.0, 0.0, 2.0])).numpy()
    array([0., 0., 2.], dtype=float32)
    """
    require_float("relu", "x", x)
    return x.relu()


#: What PyTorch's ``approximate=`` gets from :func:`gelu` and ``nn.GELU``, which compute the tanh form alone.
GELU_APPROXIMATE = ("has no equal here: this GELU is the tanh approximation, torch's approximate='tanh' (its exact "
                    "one, the default, differs by up to 5e-4)")


@torch_keywords(approximate=GELU_APPROXIMATE)
def gelu(x: Tensor, fused: bool = True) -> Tensor:
    r"""The Gaussian error linear unit, in its tanh approximation (Hendrycks and Gimpel, 2016).

    .. math::
        \mathrm{GELU}(x) \approx \tfrac12\, x \left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\, x^3)\right)\right)

    The exact GELU is :math:`x\,\Phi(x) = \tfrac12 x (1 + \mathrm{erf}(x/\sqrt2))`, but the Python
    array API standard (and so this library's backends) has no ``erf``; the tanh form differs from
    it by at most about :math:`5 \cdot 10^{-4}` (at :math:`|x| \approx 2.7`) and is what GPT-2 and Google's BERT
    code use. It equals PyTorch's
    ``torch.nn.functional.gelu(x, approximate="tanh")``. (The original Transformer uses ReLU;
    GELU is the usual alternative in later models.)

    Parameters
    ----------
    x : Tensor
        Any shape, floating point.
    fused : bool
        One operation with its derivative worked out by hand (:class:`~minitransformer.autograd.fused.Gelu`,
        the default), or the composition below (``False``), whose gradient comes from the primitives'.

    Returns
    -------
    Tensor
        The shape of ``x``, GELU applied elementwise.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import gelu
    >>> gelu(mt.tensor([-1.0, 0.0, 1.0])).numpy().round(4)
    array([-0.1588,  0.    ,  0.8412], dtype=float32)
    """
    require_float("gelu", "x", x)
    if fused:
        return Gelu.apply(x)
    return 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)).tanh())


def sigmoid(x: Tensor) -> Tensor:
    r"""The logistic sigmoid, a logit to a probability: :math:`\sigma(x) = \dfrac{1}{1 + e^{-x}}`.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-|x|}} \ (x \ge 0), \qquad
              \sigma(x) = \frac{e^{-|x|}}{1 + e^{-|x|}} \ (x < 0), \qquad
              \sigma'(x) = \sigma(x)\,(1 - \sigma(x))

    ``x.sigmoid()``, composed of primitives (``sigmoid`` of ``autograd/compose.py``), which takes for each
    element the form whose exponent is not positive: ``1 / (1 + (-x).exp())`` overflows to inf at :math:`x = -100` in
    float32, and its gradient is NaN there; this one gives :math:`\sigma(-100) \approx 3.8 \cdot 10^{-44}`, and a
    finite gradient. The output of the document's classifier (``Dense(1, activation='sigmoid')``, section 5.2)
    is :math:`\sigma(z)` of its logit :math:`z`: :meth:`~minitransformer.nn.TransformerClassifier.predict_proba`;
    for training, :func:`binary_cross_entropy_with_logits` applies it inside the loss. It equals
    ``torch.sigmoid``.

    Parameters
    ----------
    x : Tensor
        Any shape, floating point.

    Returns
    -------
    Tensor
        The shape of ``x``, elementwise :math:`\sigma(x)`, in :math:`[0, 1]`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import sigmoid
    >>> x = mt.tensor([-100.0, 0.0, 2.0], requires_grad=True)
    >>> y = sigmoid(x)
    >>> y.numpy().round(4)                                # e^-100 / (1 + e^-100), 1/2, 1 / (1 + e^-2)
    array([0.    , 0.5   , 0.8808], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad.numpy().round(4)                           # y (1 - y): finite at -100
    array([0.   , 0.25 , 0.105], dtype=float32)
    """
    require_float("sigmoid", "x", x)
    return x.sigmoid()
