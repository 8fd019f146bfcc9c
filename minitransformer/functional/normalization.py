r"""Layer normalisation (Ba, Kiros and Hinton, 2016): the "Norm" of the paper's "Add & Norm"."""

from __future__ import annotations

from .._arguments import is_integer, require_real
from ..autograd import Tensor
from ..autograd.fused import LayerNorm
from ._checks import require_float, require_same_dtype

__all__ = ["layer_norm"]


def layer_norm(x: Tensor, gamma: Tensor | None = None, beta: Tensor | None = None, eps: float = 1e-5,
               fused: bool = True) -> Tensor:
    r"""Normalise each vector over its last axis to mean 0 and variance 1, then scale and shift.

    .. math::
        \mu = \frac1d \sum_{i=1}^d x_i, \qquad
        \sigma^2 = \frac1d \sum_{i=1}^d (x_i - \mu)^2, \qquad
        y_i = \gamma_i\, \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i

    The variance is the biased one (divided by :math:`d`, not :math:`d - 1`), as in PyTorch's
    ``layer_norm``. :math:`\epsilon` keeps the division finite for a constant vector. Each token is
    normalised on its own: nothing is shared across the batch or the sequence (unlike batch norm).

    Parameters
    ----------
    x : Tensor
        ``(..., d)``, e.g. ``(batch, seq, d_model)``.
    gamma, beta : Tensor, optional
        ``(d,)`` learned gain and bias; left out, :math:`\gamma = 1` and :math:`\beta = 0`.
    eps : float
        :math:`\epsilon \ge 0` added to the variance (finite). With :math:`\epsilon = 0` a constant
        vector gives :math:`0/0` = NaN, as in PyTorch.
    fused : bool
        One operation whose backward is the simplified derivative :math:`\bar x = (\bar g - \langle \bar g
        \rangle - \hat x \langle \bar g \hat x \rangle) / \sqrt{\sigma^2 + \epsilon}` with
        :math:`\bar g = \gamma \bar y` (:class:`~minitransformer.autograd.fused.LayerNorm`, the default), or the
        composition below, nine recorded operations for :math:`\hat x` and two for :math:`\gamma`, :math:`\beta`
        (``False``, the reference).

    Returns
    -------
    Tensor
        ``(..., d)``, the shape of ``x``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import layer_norm
    >>> layer_norm(mt.tensor([[1.0, 2.0, 3.0]]), eps=0.0).numpy().round(4)   # mu = 2, sigma^2 = 2/3
    array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """
    eps = _check_layer_norm_inputs(x, gamma, beta, eps)
    if fused:
        return LayerNorm.apply(x, gamma, beta, eps=eps)
    ### BEGIN SOLUTION A4: from primitives: (x - mean) / sqrt(var + eps) on the last axis, then gamma, beta
    mu = x.mean(axis=-1, keepdims=True)  # (..., 1)
    var = ((x - mu) * (x - mu)).mean(axis=-1, keepdims=True)  # (..., 1), biased: divided by d
    x_hat = (x - mu) / (var + eps).sqrt()  # (..., d)
    y = x_hat if gamma is None else gamma * x_hat
    return y if beta is None else y + beta
    ### END SOLUTION


def _check_layer_norm_inputs(x: Tensor, gamma: Tensor | None, beta: Tensor | None, eps) -> float:
    """The checks of :func:`layer_norm`, kept apart so that its body reads as the formula: each refuses, before any
    arithmetic, what the formula cannot take (an integer or a float16 ``x``, a scalar, torch's ``normalized_shape``
    where ``gamma`` goes, a ``gamma`` or ``beta`` of another dtype or shape than ``(d,)``, an ``eps`` that is not a
    finite number >= 0), naming the function and the value at fault. Returns ``eps`` as a float.
    """
    require_float("layer_norm", "x", x)
    if x.dtype == getattr(x.backend.xp, "float16", None):  # as Module.to("float16") refuses it (no wider sums here)
        raise TypeError(
            f"layer_norm: x is float16 {x.shape}, which is not supported (as Module.to refuses float16): the squared "
            "deviations pass its largest number, 65504, once inputs reach about 256, and the result comes out zeros; "
            "convert x with x.to('float32')"
        )
    if x.ndim == 0:
        raise ValueError("layer_norm: x must have at least one axis (the one normalised), got a scalar")
    d = x.shape[-1]
    if isinstance(gamma, tuple | list) or is_integer(gamma):  # torch's F.layer_norm(x, (d,), ...)
        raise TypeError(
            f"layer_norm: gamma must be a Tensor, got {type(gamma).__name__} {gamma!r}: torch's second argument, "
            "normalized_shape, is not taken here: layer_norm(x, gamma=None, beta=None, eps=1e-5) normalises over the "
            f"last axis of x (here {d}), gamma and beta being ({d},) Tensors (torch's weight and bias); write "
            "layer_norm(x) or layer_norm(x, gamma, beta)"
        )
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None:
            require_float("layer_norm", name, p)
            require_same_dtype("layer_norm", name, p, "x", x,
                               fix=f"convert x with x.to('{{a}}') or {name} with .to('{{b}}') "
                                   "(all of a model's weights: model.to(...))")
            if p.shape != (d,):
                raise ValueError(
                    f"layer_norm: {name} has shape {p.shape}, expected ({d},) to match the last axis of x {x.shape}"
                )
    return require_real("layer_norm", "eps", eps, low=0.0)
