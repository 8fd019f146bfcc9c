r"""Layer 3: the formulas of the Transformer as functions of Tensors.

Every function here is composed of the autograd engine's primitive operations, so its gradient
comes for free, and each states its formula and source in its docstring. Seven of them run, by
default, as one fused operation with a hand-derived backward (:mod:`minitransformer.autograd.fused`:
``softmax``, ``log_softmax``, ``layer_norm``, ``gelu``, ``linear``, ``cross_entropy``,
``binary_cross_entropy_with_logits``); ``fused=False`` runs the
composition, which stays as the reference they are tested against:

==========================================  ===========================================================
:func:`softmax`, :func:`log_softmax`        :math:`e^{x_i} / \sum_j e^{x_j}` (max subtracted, stable)
:func:`relu`, :func:`gelu`                  the feed-forward activations
:func:`sigmoid`                             :math:`1 / (1 + e^{-x})`, no exponent positive (stable)
:func:`dropout`                             inverted dropout (paper section 5.4)
:func:`layer_norm`                          :math:`\gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`
:func:`linear`                              :math:`xW + b`
:func:`cross_entropy`                       with label smoothing and ``ignore_index``
:func:`binary_cross_entropy_with_logits`    for a yes/no classifier
:func:`scaled_dot_product_attention`        :math:`\mathrm{softmax}(QK^\top / \sqrt{d_k})\, V` (eq. 1)
:func:`causal_mask`, :func:`padding_mask`   which keys a query may see
:func:`sinusoidal_positional_encoding`      :math:`PE_{(pos, 2i)} = \sin(pos / 10000^{2i/d_{model}})`
==========================================  ===========================================================

Use it as ``import minitransformer.functional as F`` (PyTorch's habit).
"""

import typing as _typing

from ..autograd._torch_names import no_attribute as _no_attribute
from .activations import gelu, log_softmax, relu, sigmoid, softmax
from .attention import scaled_dot_product_attention
from .dropout import dropout
from .linear import linear
from .losses import binary_cross_entropy_with_logits, cross_entropy
from .masks import causal_mask, combine_masks, padding_mask
from .normalization import layer_norm
from .positional import sinusoidal_positional_encoding

__all__ = [
    "softmax", "log_softmax", "relu", "gelu", "sigmoid", "dropout", "layer_norm", "linear", "cross_entropy",
    "binary_cross_entropy_with_logits", "scaled_dot_product_attention", "causal_mask", "padding_mask",
    "combine_masks", "sinusoidal_positional_encoding",
]


if not _typing.TYPE_CHECKING:  # a type checker that saw it would take any name for a real one
    def __getattr__(name: str):
        # called only for a name the module lacks (PEP 562): PyTorch's names get the one to write here
        raise _no_attribute(__name__, name)
