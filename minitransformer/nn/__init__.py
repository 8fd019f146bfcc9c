r"""Layer 4: modules, PyTorch's habits: ``Module``, ``Parameter`` and the layers of the Transformer.

=======================================  ==================================================================
:class:`Module`, :class:`Parameter`      ``parameters()``, ``state_dict()``, ``train()``/``eval()``, ``to()``
:class:`ModuleList`, :class:`Sequential` containers
:class:`Linear`                          :math:`xW + b`
:class:`Embedding`                       :math:`E_{i,:}` (times :math:`\sqrt{d_{model}}`, paper 3.4)
:class:`LayerNorm`                       :math:`\gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`
:class:`Dropout`                         inverted dropout, off after ``eval()``
:class:`FeedForward`                     :math:`\max(0, xW_1 + b_1) W_2 + b_2` (paper eq. 2)
:class:`SinusoidalPositionalEncoding`    :math:`x + PE` (fixed sinusoids, paper 3.5)
:class:`LearnedPositionalEmbedding`      :math:`x + P` (a trained table)
:class:`MultiHeadAttention`              :math:`\mathrm{Concat}(\mathrm{head}_1..\mathrm{head}_h) W^O` (paper 3.2.2)
:mod:`init`                              Xavier/Glorot initialisation
=======================================  ==================================================================
"""

from . import init
from .attention import MultiHeadAttention
from .layers import (
    Dropout,
    Embedding,
    FeedForward,
    LayerNorm,
    LearnedPositionalEmbedding,
    Linear,
    SinusoidalPositionalEncoding,
)
from .module import LoadResult, Module, ModuleList, Parameter, Sequential, StateDictError

__all__ = [
    "init", "Module", "Parameter", "ModuleList", "Sequential", "StateDictError", "LoadResult", "Linear",
    "Embedding", "LayerNorm", "Dropout", "FeedForward", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
    "MultiHeadAttention",
]
