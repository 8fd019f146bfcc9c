r"""Initial values of weights, drawn from the backend's seeded generator (``mt.manual_seed``).

Each function fills a tensor in place (the trailing ``_`` says so, as in PyTorch) and returns it.
Weights here are stored ``(d_in, d_out)`` (a layer computes ``x @ W``), so
:math:`\text{fan}_\text{in}` is ``shape[-2]`` and :math:`\text{fan}_\text{out}` is ``shape[-1]``.

>>> import minitransformer as mt
>>> from minitransformer import nn
>>> mt.manual_seed(0)
>>> W = nn.init.xavier_uniform_(nn.Parameter(mt.zeros(300, 100)))
>>> limit = (6 / (300 + 100)) ** 0.5
>>> bool(abs(W.numpy()).max() <= limit)
True
"""

from __future__ import annotations

import math

from ..autograd import Tensor

__all__ = ["fans", "xavier_uniform_", "xavier_normal_", "uniform_", "normal_", "zeros_", "ones_", "constant_"]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    r"""(fan_in, fan_out) of a weight of ``shape`` (``(d_in, d_out)``, or a stack ``(..., d_in, d_out)``).

    :math:`\text{fan}_\text{in}` = ``shape[-2]``, :math:`\text{fan}_\text{out}` = ``shape[-1]``; a shape of
    fewer than 2 dimensions is a ValueError.

    Examples
    --------
    >>> from minitransformer.nn.init import fans
    >>> fans((512, 2048)), fans((8, 512, 64))   # a weight; a stack of 8 weights
    ((512, 2048), (512, 64))
    """
    if len(shape) < 2:
        raise ValueError(f"init: fan_in and fan_out need a weight of 2 or more dimensions, got shape {tuple(shape)}")
    return shape[-2], shape[-1]


def _fill(tensor: Tensor, array) -> Tensor:
    """Replace the values of ``tensor`` (no graph: initialisation is not part of the model)."""
    tensor.data = array
    tensor.grad = None
    return tensor


def uniform_(tensor: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    """Fill ``tensor`` with samples of :math:`U[\\text{low}, \\text{high})`.

    Parameters
    ----------
    tensor : Tensor
        Any shape, floating point; its values are replaced, its shape and dtype kept.
    low, high : float
        The interval the samples come from.

    Returns
    -------
    Tensor
        ``tensor`` itself.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.nn import init
    >>> mt.manual_seed(0)
    >>> w = init.uniform_(mt.zeros(1000), -0.5, 0.5)
    >>> bool(w.numpy().min() >= -0.5 and w.numpy().max() < 0.5), w.shape
    (True, (1000,))
    """
    return _fill(tensor, tensor.backend.uniform(tensor.shape, low, high, dtype=tensor.dtype_name))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    r"""Fill ``tensor`` with samples of :math:`\mathcal N(\text{mean}, \text{std}^2)`.

    Parameters
    ----------
    tensor : Tensor
        Any shape, floating point; its values are replaced, its shape and dtype kept.
    mean, std : float
        Of the normal distribution.

    Returns
    -------
    Tensor
        ``tensor`` itself.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.nn import init
    >>> mt.manual_seed(0)
    >>> w = init.normal_(mt.zeros(10000), mean=1.0, std=2.0)
    >>> round(float(w.numpy().mean()), 1), round(float(w.numpy().std()), 1)
    (1.0, 2.0)
    """
    return _fill(tensor, tensor.backend.normal(tensor.shape, mean, std, dtype=tensor.dtype_name))


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill ``tensor`` (any shape) with ``value``; returns ``tensor``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.nn import init
    >>> init.constant_(mt.zeros(3), 0.5).numpy()
    array([0.5, 0.5, 0.5], dtype=float32)
    """
    xp = tensor.backend.xp
    return _fill(tensor, xp.full(tensor.shape, value, dtype=tensor.dtype))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` (any shape) with 0 (biases, LayerNorm's :math:`\\beta`); returns ``tensor``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.nn import init
    >>> init.zeros_(mt.ones(2, 2)).numpy()
    array([[0., 0.],
           [0., 0.]], dtype=float32)
    """
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` (any shape) with 1 (LayerNorm's :math:`\\gamma`); returns ``tensor``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.nn import init
    >>> init.ones_(mt.zeros(3)).numpy()
    array([1., 1., 1.], dtype=float32)
    """
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    r"""Xavier/Glorot uniform initialisation (Glorot & Bengio 2010, eq. 16):

    .. math:: W \sim U[-a, a], \qquad a = \text{gain} \cdot \sqrt{\frac{6}{n_\text{in} + n_\text{out}}}

    (:math:`n_\text{in}, n_\text{out}` = fan_in, fan_out), which gives
    :math:`\operatorname{Var}(W) = a^2/3 = \text{gain}^2 \cdot 2/(n_\text{in} + n_\text{out})`:
    the variance of activations and of gradients stays about the same from layer to layer.

    Parameters
    ----------
    tensor : Tensor
        A weight ``(d_in, d_out)`` (or a stack ``(..., d_in, d_out)``), filled in place.
    gain : float
        A factor for the bound :math:`a`.

    Returns
    -------
    Tensor
        ``tensor`` itself.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> W = nn.init.xavier_uniform_(nn.Parameter(mt.zeros(300, 100)))
    >>> bool(abs(W.numpy()).max() <= (6 / (300 + 100)) ** 0.5)   # inside [-a, a]
    True
    >>> round(float(W.numpy().var()) / (2 / (300 + 100)), 1)     # Var(W) = 2 / (n_in + n_out)
    1.0
    """
    fan_in, fan_out = fans(tensor.shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    r"""Xavier/Glorot normal initialisation:

    .. math:: W \sim \mathcal N(0, \sigma^2), \quad \sigma = \text{gain} \cdot \sqrt{2 / (n_\text{in} + n_\text{out})}

    (the same variance as :func:`xavier_uniform_`).

    Parameters
    ----------
    tensor : Tensor
        A weight ``(d_in, d_out)`` (or a stack ``(..., d_in, d_out)``), filled in place.
    gain : float
        A factor for :math:`\sigma`.

    Returns
    -------
    Tensor
        ``tensor`` itself.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> W = nn.init.xavier_normal_(nn.Parameter(mt.zeros(300, 100)))
    >>> round(float(W.numpy().std()) / (2 / (300 + 100)) ** 0.5, 1)   # sigma = sqrt(2 / (n_in + n_out))
    1.0
    """
    fan_in, fan_out = fans(tensor.shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std)
