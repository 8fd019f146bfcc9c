r"""Weights to and from PyTorch: this library's modules and their ``torch.nn`` twins hold the same numbers.

===============================  =====================================  =================================
here                             ``torch.nn``                           how the weights differ
===============================  =====================================  =================================
``Linear`` ``weight`` (in, out)  ``Linear`` ``weight`` (out, in)        transposed: here :math:`y = xW`,
                                                                        there :math:`y = xW^\top`
``LayerNorm`` ``gamma, beta``    ``LayerNorm`` ``weight, bias``         renamed
``Embedding`` ``weight``         ``Embedding`` ``weight``               the same
``MultiHeadAttention``           ``MultiheadAttention``                 ``in_proj_weight`` is
``W_Q, W_K, W_V, W_O``           ``in_proj_*, out_proj``                :math:`[W_Q^\top; W_K^\top; W_V^\top]`
                                                                        stacked, ``(3 d_model, d_model)``
``EncoderLayer``                 ``TransformerEncoderLayer``            ``ffn.W_1/W_2`` are ``linear1/2``
``DecoderLayer``                 ``TransformerDecoderLayer``            ``cross_attn`` is ``multihead_attn``
``Encoder`` / ``Decoder``        ``TransformerEncoder/Decoder``         ``layers.i``, ``norm``
``ReLU``, ``GELU``               ``ReLU``, ``GELU("tanh")``             no weights
``Identity``, ``Dropout``        ``Identity``, ``Dropout(0.0)``         no weights; dropout 0, as above
``Sequential``, ``ModuleList``   ``Sequential``, ``ModuleList``         each part converted, under its
                                                                        own name (``0.weight``)
``ModuleDict``                   ``ModuleDict``                         the same, by key (``key.bias``)
===============================  =====================================  =================================

:func:`to_torch_state_dict` and :func:`from_torch_state_dict` translate state dicts;
:func:`to_torch` builds the twin (``batch_first=True``, dropout 0) with the weights copied. The
masks differ too: here True means *may* attend; torch's boolean masks mean *may not*
(``torch_mask = ~mask``), or a float mask adds :math:`-\infty` where not allowed.

PyTorch is imported only inside these functions: the package itself never needs it.

>>> from minitransformer import nn
>>> torch_twin(nn.EncoderLayer(d_model=8, heads=2, d_ff=16))
'TransformerEncoderLayer'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np  # host copies only: state dicts are NumPy on the host

from .attention import MultiHeadAttention
from .layers import GELU, Dropout, Embedding, FeedForward, Identity, LayerNorm, Linear, ReLU
from .module import Module, ModuleDict, ModuleList, Sequential, StateDictError, _host_copy
from .transformer import Decoder, DecoderLayer, Encoder, EncoderLayer

__all__ = ["to_torch_state_dict", "from_torch_state_dict", "to_torch", "torch_twin"]

#: module types with a ``torch.nn`` twin, here -> there
_TWINS = {
    Linear: "Linear",
    LayerNorm: "LayerNorm",
    Embedding: "Embedding",
    MultiHeadAttention: "MultiheadAttention",
    EncoderLayer: "TransformerEncoderLayer",
    DecoderLayer: "TransformerDecoderLayer",
    Encoder: "TransformerEncoder",
    Decoder: "TransformerDecoder",
    ReLU: "ReLU",
    GELU: "GELU",
    Identity: "Identity",
    Dropout: "Dropout",
    Sequential: "Sequential",
    ModuleList: "ModuleList",
    ModuleDict: "ModuleDict",
}

#: The layers without weights, each with its twin's arguments (the tanh GELU, as here; dropout 0, to compare).
_NO_WEIGHTS = {ReLU: {}, GELU: {"approximate": "tanh"}, Identity: {}, Dropout: {"p": 0.0}}


def torch_twin(module: Module) -> str:
    """The name of the ``torch.nn`` class equivalent to ``module``, or a TypeError saying there is none.

    Needs no PyTorch: it only looks the module's type up in the table above.

    Examples
    --------
    >>> from minitransformer import nn
    >>> from minitransformer.nn.convert import torch_twin
    >>> torch_twin(nn.Linear(2, 3)), torch_twin(nn.MultiHeadAttention(8, 2))
    ('Linear', 'MultiheadAttention')
    """
    name = _TWINS.get(type(module))
    if name is None:
        raise TypeError(
            f"convert: {type(module).__name__} has no torch.nn twin; convertible modules are "
            f"{', '.join(t.__name__ for t in _TWINS)} (convert a model's parts, e.g. model.encoder)"
        )
    if isinstance(module, DecoderLayer | Decoder) and not module.cross_attention:
        raise TypeError(
            f"convert: a {type(module).__name__} without cross-attention (a decoder-only model's) has no torch.nn "
            "twin: torch's TransformerDecoderLayer always has cross-attention"
        )
    return name


def _import_torch():
    """PyTorch, imported only when a conversion needs it, or an ImportError saying how to get it."""
    try:
        import torch
    except ImportError as error:
        raise ImportError("convert: this function needs PyTorch, which is not installed (pip install torch)") from error
    return torch


# ------------------------------------------------------------------ the name map
def _pairs(module: Module, ours: str = "", theirs: str = "") -> Iterator[tuple[str, list[str], str]]:
    """``(torch name, [our names], how)`` for each tensor of the torch twin; ``how`` says how the values map.

    ``"copy"``: the same array; ``"T"``: transposed; ``"T_cat"``: our arrays transposed and stacked
    along the rows (``in_proj_weight``); ``"cat"``: stacked (``in_proj_bias``).
    """
    if isinstance(module, Linear):
        yield theirs + "weight", [ours + "weight"], "T"  # (d_in, d_out) here, (d_out, d_in) there
        if module.bias is not None:
            yield theirs + "bias", [ours + "bias"], "copy"
    elif isinstance(module, LayerNorm):
        yield theirs + "weight", [ours + "gamma"], "copy"
        yield theirs + "bias", [ours + "beta"], "copy"
    elif isinstance(module, Embedding):
        yield theirs + "weight", [ours + "weight"], "copy"
    elif isinstance(module, MultiHeadAttention):
        qkv = [ours + f"{w}." for w in ("W_Q", "W_K", "W_V")]
        yield theirs + "in_proj_weight", [p + "weight" for p in qkv], "T_cat"  # [W_Q^T; W_K^T; W_V^T]
        if module.W_Q.bias is not None:
            yield theirs + "in_proj_bias", [p + "bias" for p in qkv], "cat"
        yield from _pairs(module.W_O, ours + "W_O.", theirs + "out_proj.")
    elif isinstance(module, FeedForward):  # torch keeps these two in the layer itself
        yield from _pairs(module.W_1, ours + "W_1.", theirs + "linear1.")
        yield from _pairs(module.W_2, ours + "W_2.", theirs + "linear2.")
    elif isinstance(module, EncoderLayer | DecoderLayer):
        yield from _pairs(module.self_attn, ours + "self_attn.", theirs + "self_attn.")
        if isinstance(module, DecoderLayer):
            yield from _pairs(module.cross_attn, ours + "cross_attn.", theirs + "multihead_attn.")
        yield from _pairs(module.ffn, ours + "ffn.", theirs)
        norms = ("norm1", "norm2", "norm3") if isinstance(module, DecoderLayer) else ("norm1", "norm2")
        for norm in norms:
            yield from _pairs(getattr(module, norm), ours + f"{norm}.", theirs + f"{norm}.")
    elif isinstance(module, Encoder | Decoder):
        for i, layer in enumerate(module.layers):
            yield from _pairs(layer, ours + f"layers.{i}.", theirs + f"layers.{i}.")
        if module.norm is not None:
            yield from _pairs(module.norm, ours + "norm.", theirs + "norm.")
    elif isinstance(module, ModuleList | ModuleDict):  # Sequential too: each part under its own name
        for key, part in module.named_children():
            torch_twin(part)  # a part without a twin is named
            yield from _pairs(part, ours + f"{key}.", theirs + f"{key}.")
    else:  # a layer without weights (_NO_WEIGHTS) has nothing to pair; a module without a twin is named
        torch_twin(module)


def _to_host(value) -> np.ndarray:
    """A torch tensor, or any array-like, as a NumPy array on the host."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy().copy()
    return _host_copy(value)


def _torch_arrays(module: Module, state: Mapping | None = None) -> dict[str, np.ndarray]:
    """The torch twin's state as NumPy arrays, from ``state`` (our names) or the module's own weights."""
    torch_twin(module)
    state = module.state_dict() if state is None else {k: _to_host(v) for k, v in state.items()}
    pairs = list(_pairs(module))
    missing = [name for _, names, _ in pairs for name in names if name not in state]
    if missing:
        raise StateDictError(f"to_torch_state_dict: the state lacks {', '.join(map(repr, missing))}")
    out = {}
    for theirs, names, how in pairs:
        arrays = [state[name] for name in names]
        if how == "copy":
            out[theirs] = arrays[0]
        elif how == "T":
            out[theirs] = arrays[0].T
        elif how == "T_cat":
            out[theirs] = np.concatenate([a.T for a in arrays], axis=0)
        else:  # "cat"
            out[theirs] = np.concatenate(arrays, axis=0)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


# ------------------------------------------------------------------ public functions
def to_torch_state_dict(module: Module, state: Mapping | None = None) -> dict:
    """The state dict of ``module``'s ``torch.nn`` twin: torch's names, torch's orientation, torch tensors.

    Parameters
    ----------
    module : Module
        A module with a twin (see :func:`torch_twin`).
    state : mapping, optional
        Arrays under this library's names to translate instead of the module's weights (e.g. the
        parameters' gradients, to compare them with torch's).

    Returns
    -------
    dict of str to torch.Tensor
        Same dtype as the arrays (float64 stays float64). ``twin.load_state_dict(...)`` accepts it.

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")   # this example needs PyTorch (skipped without it)
    >>> from minitransformer import nn
    >>> from minitransformer.nn.convert import to_torch_state_dict
    >>> state = to_torch_state_dict(nn.Linear(4, 3))
    >>> {name: tuple(t.shape) for name, t in state.items()}   # torch's weight is (d_out, d_in)
    {'weight': (3, 4), 'bias': (3,)}
    """
    arrays = _torch_arrays(module, state)  # a module with no twin fails here, torch or not
    torch = _import_torch()

    return {name: torch.from_numpy(array) for name, array in arrays.items()}


def from_torch_state_dict(module: Module, torch_state: Mapping) -> Module:
    """Load the state dict of ``module``'s ``torch.nn`` twin into ``module`` (in place); returns ``module``.

    Every key and shape is checked first; a :class:`~minitransformer.nn.StateDictError` lists the
    missing, unexpected and wrongly shaped ones, and nothing changes. Values are cast to the
    module's dtype and moved to its backend. Transposes and stacking are exact, so
    ``from_torch_state_dict(m, to_torch_state_dict(m))`` changes no bit.

    Parameters
    ----------
    module : Module
        A module with a twin (see :func:`torch_twin`), changed in place.
    torch_state : mapping
        The twin's state dict: torch tensors, or any arrays (NumPy works too), under torch's names
        and in torch's shapes.

    Returns
    -------
    Module
        ``module`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> from minitransformer import nn
    >>> from minitransformer.nn.convert import from_torch_state_dict
    >>> W = np.arange(6.0).reshape(3, 2)                      # torch's (d_out, d_in) = (3, 2)
    >>> lin = from_torch_state_dict(nn.Linear(2, 3), {"weight": W, "bias": np.zeros(3)})
    >>> lin.weight.numpy()                                    # here (d_in, d_out): transposed
    array([[0., 2., 4.],
           [1., 3., 5.]], dtype=float32)
    """
    if not hasattr(torch_state, "keys"):
        raise TypeError(f"from_torch_state_dict: expected a mapping name -> tensor, got {type(torch_state).__name__}")
    expected = _torch_arrays(module)  # the twin's names and shapes
    given = {k: _to_host(v) for k, v in torch_state.items()}
    problems = []
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    if missing:
        problems.append(f"missing keys: {', '.join(map(repr, missing))}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(map(repr, unexpected))}")
    wrong = [f"{k!r}: the twin of {type(module).__name__} has shape {expected[k].shape}, the state {given[k].shape}"
             for k in expected if k in given and given[k].shape != expected[k].shape]
    if wrong:
        problems.append("wrong shapes: " + "; ".join(wrong))
    if problems:
        raise StateDictError(
            f"from_torch_state_dict: the state is not that of torch.nn.{torch_twin(module)} matching this "
            f"{type(module).__name__}; nothing was loaded.\n  " + "\n  ".join(problems)
        )
    ours = {}
    for theirs, names, how in _pairs(module):
        array = given[theirs]
        if how == "copy":
            ours[names[0]] = array
        elif how == "T":
            ours[names[0]] = array.T
        else:  # "T_cat" / "cat": the rows split back into W_Q, W_K, W_V
            parts = np.split(array, len(names), axis=0)
            for name, part in zip(names, parts):
                ours[name] = part.T if how == "T_cat" else part
    module.load_state_dict({k: np.ascontiguousarray(v) for k, v in ours.items()})
    return module


def _torch_activation(layer: EncoderLayer | DecoderLayer):
    """Torch's activation for the layer's FFN: ``"relu"``, or GELU in the same tanh approximation as here."""
    import functools

    torch = _import_torch()
    if layer.ffn.activation == "relu":
        return "relu"
    return functools.partial(torch.nn.functional.gelu, approximate="tanh")


def _build(module: Module, torch, dtype):
    """An untrained torch twin of ``module``'s shape (weights are loaded afterwards)."""
    torch_twin(module)  # a module without a twin, or a part of a container without one, is named
    nn = torch.nn
    if isinstance(module, Linear):
        return nn.Linear(module.d_in, module.d_out, bias=module.bias is not None, dtype=dtype)
    if isinstance(module, LayerNorm):
        return nn.LayerNorm(module.d_model, eps=module.eps, dtype=dtype)
    if isinstance(module, Embedding):
        if module.scale:
            raise ValueError(
                "to_torch: this Embedding multiplies by sqrt(d_model) (scale=True) and torch.nn.Embedding does not; "
                "use to_torch_state_dict for its weights and multiply torch's output by sqrt(d_model)"
            )
        return nn.Embedding(module.num_embeddings, module.d_model, dtype=dtype)
    if isinstance(module, MultiHeadAttention):
        return nn.MultiheadAttention(module.d_model, module.heads, dropout=0.0, bias=module.W_Q.bias is not None,
                                     batch_first=True, dtype=dtype)
    if isinstance(module, EncoderLayer | DecoderLayer):
        twin = nn.TransformerEncoderLayer if isinstance(module, EncoderLayer) else nn.TransformerDecoderLayer
        return twin(module.d_model, module.self_attn.heads, module.ffn.d_ff, dropout=0.0,
                    activation=_torch_activation(module), layer_norm_eps=module.norm1.eps, batch_first=True,
                    norm_first=module.norm_first, dtype=dtype)
    if type(module) in _NO_WEIGHTS:
        return getattr(nn, _TWINS[type(module)])(**_NO_WEIGHTS[type(module)])
    if isinstance(module, Sequential):
        return nn.Sequential(*_parts(module, torch, dtype).values())
    if isinstance(module, ModuleList):
        return nn.ModuleList(_parts(module, torch, dtype).values())
    if isinstance(module, ModuleDict):
        return nn.ModuleDict(_parts(module, torch, dtype))
    if isinstance(module, Encoder | Decoder):
        layer = _build(module.layers[0], torch, dtype)
        norm = None if module.norm is None else _build(module.norm, torch, dtype)
        if isinstance(module, Encoder):
            return nn.TransformerEncoder(layer, len(module.layers), norm=norm, enable_nested_tensor=False)
        return nn.TransformerDecoder(layer, len(module.layers), norm=norm)
    torch_twin(module)  # raises
    return None


def _parts(module: Module, torch, dtype) -> dict:
    """The twin of each part of a container, under its name."""
    return {key: _build(part, torch, dtype) for key, part in module.named_children()}


def to_torch(module: Module):
    """The ``torch.nn`` twin of ``module`` with the same weights: ``batch_first=True``, dropout 0, same dtype.

    Made for comparing: run both on the same input (with the masks converted, ``~mask``) and the
    outputs agree to rounding. A pre-LN :class:`~minitransformer.nn.Encoder`'s final LayerNorm
    becomes the ``norm`` of ``torch.nn.TransformerEncoder``; a ``Sequential``, ``ModuleList`` or ``ModuleDict``
    becomes torch's, of its parts' twins. A module with no twin (a whole model, a FeedForward alone, a decoder
    without cross-attention, a module of one's own, or a container holding one) gets a TypeError naming it.

    Examples
    --------
    >>> import pytest
    >>> torch = pytest.importorskip("torch")   # this example needs PyTorch (skipped without it)
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> from minitransformer.nn.convert import to_torch
    >>> layer = nn.EncoderLayer(d_model=8, heads=2, d_ff=16, dropout=0.0)
    >>> twin = to_torch(layer)                                # torch.nn.TransformerEncoderLayer
    >>> x = mt.randn(2, 5, 8)                                 # (batch, seq, d_model)
    >>> theirs = twin(torch.from_numpy(x.numpy())).detach().numpy()
    >>> theirs.shape, bool(abs(theirs - layer(x).numpy()).max() < 1e-5)
    ((2, 5, 8), True)
    """
    torch_twin(module)
    torch = _import_torch()
    first = next(module.parameters(), None)  # none in a ReLU: float32, the default
    twin = _build(module, torch, getattr(torch, "float32" if first is None else first.dtype_name))
    twin.load_state_dict(to_torch_state_dict(module), strict=True)
    return twin
