r"""Layer 4: modules, PyTorch's habits: ``Module``, ``Parameter`` and the layers of the Transformer.

========================================  ==================================================================
:class:`Module`, :class:`Parameter`       ``parameters()``, ``state_dict()``, ``train()``/``eval()``, ``to()``
:class:`ModuleList`, :class:`Sequential`  containers; :class:`ModuleDict` keyed by name
:class:`Linear`                           :math:`xW + b`
:class:`Embedding`                        :math:`E_{i,:}` (times :math:`\sqrt{d_{model}}`, paper 3.4)
:class:`LayerNorm`                        :math:`\gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`
:class:`Dropout`                          inverted dropout, off after ``eval()``
:class:`ReLU`, :class:`GELU`              :math:`\max(0, x)`, GELU: the functions as steps of ``Sequential``
:class:`Identity`                         :math:`x` itself
:class:`FeedForward`                      :math:`\max(0, xW_1 + b_1) W_2 + b_2` (paper eq. 2)
:class:`SinusoidalPositionalEncoding`     :math:`x + PE` (fixed sinusoids, paper 3.5)
:class:`LearnedPositionalEmbedding`       :math:`x + P` (a trained table)
:class:`MultiHeadAttention`               :math:`\mathrm{Concat}(\mathrm{head}_1..\mathrm{head}_h) W^O` (paper 3.2.2)
:class:`KVCache`                          keys and values kept between decoding steps
:class:`EncoderLayer`, :class:`Encoder`   self-attention + FFN, residuals, LayerNorm (post-LN or pre-LN), x N
:class:`DecoderLayer`, :class:`Decoder`   masked self-attention + cross-attention + FFN, x N
:class:`Transformer`                      the encoder-decoder model of the paper (``from_config("base")``)
:class:`DecoderOnlyLM`                    a GPT-style language model
:class:`TransformerClassifier`            the document's section 5.2 classifier, done right
:mod:`~minitransformer.nn.convert`        weights to and from ``torch.nn`` (``to_torch``)
:mod:`~minitransformer.nn.init`           Xavier/Glorot initialisation
========================================  ==================================================================
"""

import typing as _typing

from ..autograd._torch_names import no_attribute as _no_attribute
from . import convert, init
from .attention import KVCache, MultiHeadAttention
from .layers import (
    GELU,
    Dropout,
    Embedding,
    FeedForward,
    Identity,
    LayerNorm,
    LearnedPositionalEmbedding,
    Linear,
    ReLU,
    SinusoidalPositionalEncoding,
)
from .models import DecoderOnlyLM, Transformer, TransformerClassifier
from .module import LoadResult, Module, ModuleDict, ModuleList, Parameter, Sequential, StateDictError, evaluating
from .transformer import Decoder, DecoderLayer, Encoder, EncoderLayer

__all__ = [
    "init", "Module", "Parameter", "ModuleList", "ModuleDict", "Sequential", "StateDictError", "LoadResult",
    "evaluating", "Linear", "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "Identity", "FeedForward",
    "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
    "MultiHeadAttention", "KVCache", "EncoderLayer", "DecoderLayer", "Encoder", "Decoder", "Transformer",
    "DecoderOnlyLM", "TransformerClassifier", "convert",
]


if not _typing.TYPE_CHECKING:  # a type checker that saw it would take any name for a real one
    def __getattr__(name: str):
        # called only for a name the module lacks (PEP 562): PyTorch's names get the one to write here
        raise _no_attribute(__name__, name)
