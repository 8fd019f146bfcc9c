r"""The encoder and decoder of the Transformer (paper section 3.1, figure 1): one layer of each, and N of them.

Each layer is a few *sub-layers* (self-attention, cross-attention, the feed-forward network),
each wrapped in a residual connection and a layer normalisation. Where the normalisation goes is
a named switch, ``norm_first``:

.. math::
    \text{post-LN (the paper, 3.1 and 5.4; } \texttt{norm\_first=False}\text{)}: \quad
        x \leftarrow \mathrm{LayerNorm}(x + \mathrm{Dropout}(\mathrm{Sublayer}(x)))

    \text{pre-LN (} \texttt{norm\_first=True}\text{)}: \quad
        x \leftarrow x + \mathrm{Dropout}(\mathrm{Sublayer}(\mathrm{LayerNorm}(x)))

The paper writes the first. The Annotated Transformer's code uses the second (its
``SublayerConnection`` is ``x + dropout(sublayer(norm(x)))``) and says so only in that class's
docstring ("for code simplicity the norm is first as opposed to last"), while its prose quotes the
paper's post-LN. GPT-2 and most later models use pre-LN too: with the norm inside the residual
branch, the gradient stays well scaled through deep stacks, and Xiong et al. (2020) show that it
can even train without the learning-rate warm-up post-LN needs. Here the choice is explicit.
A pre-LN stack's output is a sum of un-normalised residuals, so :class:`Encoder` and
:class:`Decoder` end it with one more LayerNorm; a post-LN stack already ends in one.

Masks follow :func:`~minitransformer.functional.causal_mask` and :func:`~minitransformer.functional.padding_mask`:
boolean, True where attention is **allowed**. The decoder builds its causal ("no peeking ahead") mask itself.
"""

from __future__ import annotations

from .. import functional as F
from .._arguments import require_bool, require_int
from ..autograd import Tensor
from ..autograd._torch_names import BATCH_FIRST, torch_keywords
from .attention import KVCache, MultiHeadAttention, check_heads, check_mask, refuse_hiding_every_key
from .layers import Dropout, FeedForward, LayerNorm, check_features
from .module import Module, ModuleList

__all__ = ["EncoderLayer", "DecoderLayer", "Encoder", "Decoder"]

#: why a layer's fifth argument, norm_first, may hold a string (torch's TransformerEncoderLayer's fifth is activation)
_TORCH_FIFTH = " (torch's fifth argument is activation: here it comes after norm_first, write activation=...)"


def _dtype_weight(layer: Module) -> tuple[str, Tensor]:
    """``(name, tensor)`` of the weight whose dtype a layer's (or a stack's) input must have: its self-attention's
    :math:`W^Q` (a model's weights share one dtype), for :func:`~minitransformer.nn.layers.check_features`."""
    if isinstance(layer, Encoder | Decoder):
        name, weight = _dtype_weight(layer.layers[0])
        return f"layers.0.{name}", weight
    return "self_attn.W_Q.weight", layer.self_attn.W_Q.weight


class EncoderLayer(Module):
    r"""One encoder layer: self-attention, then the feed-forward network, each with residual and LayerNorm.

    Post-LN (``norm_first=False``, the paper's section 3.1: "the output of each sub-layer is
    LayerNorm(x + Sublayer(x))", with dropout on the sub-layer's output, section 5.4):

    .. math::
        x &\leftarrow \mathrm{LayerNorm}_1(x + \mathrm{Dropout}(\mathrm{MultiHead}(x, x, x))) \\
        x &\leftarrow \mathrm{LayerNorm}_2(x + \mathrm{Dropout}(\mathrm{FFN}(x)))

    Pre-LN (``norm_first=True``): :math:`x \leftarrow x + \mathrm{Dropout}(\mathrm{MultiHead}(n, n, n))`
    with :math:`n = \mathrm{LayerNorm}_1(x)`, then the same for the FFN with :math:`\mathrm{LayerNorm}_2`.
    The Annotated Transformer's code uses pre-LN (noted only in a code docstring) while its prose
    and the paper say post-LN; here it is this named switch. It is ``torch.nn.TransformerEncoderLayer``
    with ``batch_first=True`` (the same sub-modules and the same numbers; see
    :mod:`minitransformer.nn.convert`).

    Shapes: ``(batch, L, d_model)`` -> ``(batch, L, d_model)``.

    Parameters
    ----------
    d_model, heads, d_ff : int
        Widths (512, 8, 2048 in the paper's base model).
    dropout : float
        On each sub-layer's output, on the attention weights, and inside the FFN (as PyTorch).
    norm_first : bool
        Pre-LN (True) or the paper's post-LN (False).
    activation : {"relu", "gelu"}
        Of the FFN.

    Attributes
    ----------
    self_attn : MultiHeadAttention
    ffn : FeedForward
    norm1, norm2 : LayerNorm
        The norms of the attention and of the FFN sub-layer.
    dropout : Dropout
    self_attn_weights : Tensor or None
        ``(batch, heads, L, L)``, the attention weights of the last forward (detached), for pictures.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> layer = nn.EncoderLayer(d_model=8, heads=2, d_ff=16)
    >>> layer(mt.randn(3, 5, 8)).shape, layer.self_attn_weights.shape
    ((3, 5, 8), (3, 2, 5, 5))
    """

    @torch_keywords(batch_first=BATCH_FIRST)
    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = False,
                 activation: str = "relu"):
        super().__init__()
        d_model, heads = check_heads("EncoderLayer", d_model, heads)
        self.d_model, self.norm_first = d_model, require_bool("EncoderLayer", "norm_first", norm_first, _TORCH_FIFTH)
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = LayerNorm(d_model)
        self.norm2 = LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.self_attn_weights: Tensor | None = None

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"

    def _attend(self, x: Tensor, mask) -> Tensor:
        """MultiHead(x, x, x), keeping the weights for pictures."""
        out, weights = self.self_attn(x, x, x, mask=mask)
        self.self_attn_weights = weights.detach()
        return out

    def forward(self, x: Tensor, mask=None) -> Tensor:
        """The two sub-layers: ``x`` ``(batch, L, d_model)`` -> ``(batch, L, d_model)``.

        ``mask``: True where a query may attend a key, e.g. ``padding_mask(src)``.
        """
        check_features("EncoderLayer", "input", x, self.d_model, weight=_dtype_weight(self))
        ### BEGIN SOLUTION A4: attention, FFN: LN(x + Dropout(Sub(x))); norm_first: x + Dropout(Sub(LN(x)))
        if self.norm_first:  # pre-LN: x + Sublayer(LayerNorm(x))
            x = x + self.dropout(self._attend(self.norm1(x), mask))
            x = x + self.dropout(self.ffn(self.norm2(x)))
        else:  # post-LN, the paper: LayerNorm(x + Sublayer(x))
            x = self.norm1(x + self.dropout(self._attend(x, mask)))
            x = self.norm2(x + self.dropout(self.ffn(x)))
        return x  # (batch, L, d_model)
        ### END SOLUTION


class DecoderLayer(Module):
    r"""One decoder layer: masked self-attention, cross-attention to the encoder's output, the feed-forward network.

    Post-LN (the paper, section 3.1), with :math:`m` the encoder's output ("memory"):

    .. math::
        x &\leftarrow \mathrm{LayerNorm}_1(x + \mathrm{Dropout}(\mathrm{MultiHead}(x, x, x;\ \text{causal})))\\
        x &\leftarrow \mathrm{LayerNorm}_2(x + \mathrm{Dropout}(\mathrm{MultiHead}(x, m, m))) \\
        x &\leftarrow \mathrm{LayerNorm}_3(x + \mathrm{Dropout}(\mathrm{FFN}(x)))

    and pre-LN with ``norm_first=True`` as in :class:`EncoderLayer`. The self-attention is always
    causal (paper 3.2.3: position :math:`i` may attend positions :math:`\le i` only): the layer
    builds that mask itself, so forgetting it cannot leak the answer; ``tgt_mask`` can only hide
    more (padding). It is ``torch.nn.TransformerDecoderLayer`` (there ``multihead_attn`` is this
    ``cross_attn``) given ``tgt_mask`` = the causal mask.

    With ``cross_attention=False`` there is no :math:`\mathrm{MultiHead}(x, m, m)` and no
    ``norm2``: the layer of a decoder-only language model (GPT), which has no encoder.

    Shapes: ``x`` ``(batch, L, d_model)``, ``memory`` ``(batch, S, d_model)`` -> ``(batch, L, d_model)``.

    Parameters
    ----------
    d_model, heads, d_ff, dropout, norm_first, activation
        As :class:`EncoderLayer`.
    cross_attention : bool
        Whether to attend to an encoder's output (True for the Transformer's decoder).

    Attributes
    ----------
    self_attn, cross_attn : MultiHeadAttention
        ``cross_attn`` is None without cross-attention.
    ffn : FeedForward
    norm1, norm2, norm3 : LayerNorm
        Of the self-attention, the cross-attention (None without it) and the FFN.
    self_attn_weights, cross_attn_weights : Tensor or None
        ``(batch, heads, L, L)`` and ``(batch, heads, L, S)`` of the last forward (detached). With a cache the
        self-attention's are ``(batch, heads, L, S)`` too, ``S`` counting the cached positions and the new ones.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> layer = nn.DecoderLayer(d_model=8, heads=2, d_ff=16)
    >>> y = layer(mt.randn(3, 4, 8), memory=mt.randn(3, 6, 8))
    >>> y.shape, layer.cross_attn_weights.shape
    ((3, 4, 8), (3, 2, 4, 6))
    """

    @torch_keywords(batch_first=BATCH_FIRST)
    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = False,
                 activation: str = "relu", cross_attention: bool = True):
        super().__init__()
        d_model, heads = check_heads("DecoderLayer", d_model, heads)
        self.d_model, self.norm_first = d_model, require_bool("DecoderLayer", "norm_first", norm_first, _TORCH_FIFTH)
        self.cross_attention = require_bool("DecoderLayer", "cross_attention", cross_attention)
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout) if cross_attention else None
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = LayerNorm(d_model)
        self.norm2 = LayerNorm(d_model) if cross_attention else None
        self.norm3 = LayerNorm(d_model)
        self.dropout = Dropout(dropout)
        self.self_attn_weights: Tensor | None = None
        self.cross_attn_weights: Tensor | None = None

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}, cross_attention={self.cross_attention}"

    def new_cache(self) -> dict[str, KVCache]:
        """Empty key/value caches for decoding one position at a time: ``{"self_attn": ..., "cross_attn": ...}``."""
        cache = {"self_attn": KVCache()}
        if self.cross_attention:
            cache["cross_attn"] = KVCache(static=True)  # the memory does not change while decoding
        return cache

    def check_cache(self, cache) -> None:
        """Nothing if ``cache`` is None or what :meth:`new_cache` returns (a dict of a :class:`KVCache` for each of
        the layer's attentions); else a TypeError."""
        if cache is None:
            return
        keys = ["cross_attn", "self_attn"] if self.cross_attention else ["self_attn"]
        if not isinstance(cache, dict) or sorted(cache) != keys or not all(isinstance(c, KVCache) for c in
                                                                            cache.values()):
            raise TypeError(f"DecoderLayer: cache must be what layer.new_cache() returns, a dict of a KVCache for "
                            f"each of {keys}; got {cache!r}")

    def _check(self, x, memory, tgt_mask, cache):
        """``tgt_mask`` as a Tensor (or None), once the input, memory, cache and mask are checked to fit."""
        op = "DecoderLayer"
        check_features(op, "input", x, self.d_model, weight=_dtype_weight(self))
        if x.ndim not in (2, 3):
            raise ValueError(f"{op}: input has shape {x.shape}; expected (batch, L, d_model) or (L, d_model)")
        if self.cross_attention and memory is None:
            raise ValueError(f"{op}: cross-attention needs memory, the encoder's output (batch, S, d_model)")
        if not self.cross_attention and memory is not None:
            raise ValueError(f"{op}: this layer has no cross-attention (cross_attention=False); do not pass memory")
        if memory is not None:
            check_features(op, "memory", memory, self.d_model, weight=_dtype_weight(self))
        self.check_cache(cache)
        if tgt_mask is None:
            return None
        B, L = (x.shape[0] if x.ndim == 3 else 1), x.shape[-2]
        S = L if cache is None else len(cache["self_attn"]) + L  # the causal keys: every position so far
        return check_mask(op, "tgt_mask", tgt_mask, (B, self.self_attn.heads, L, S), x)

    def _self_attend(self, x: Tensor, tgt_mask, cache) -> Tensor:
        """Masked MultiHead(x, x, x): the new positions attend every earlier one and themselves, never a later one."""
        start = 0 if cache is None else len(cache["self_attn"])  # positions decoded before these
        L = x.shape[-2]
        causal = F.causal_mask(start + L, backend=x.backend)[start:]  # (L, start + L): key j <= query start + i
        out, weights = self.self_attn(x, x, x, mask=F.combine_masks(causal, tgt_mask),
                                      cache=None if cache is None else cache["self_attn"])
        self.self_attn_weights = weights.detach()
        return out

    def _cross_attend(self, x: Tensor, memory: Tensor, src_mask, cache) -> Tensor:
        """MultiHead(x, m, m): each position looks at the encoder's output."""
        out, weights = self.cross_attn(x, memory, memory, mask=src_mask,
                                       cache=None if cache is None else cache["cross_attn"])
        self.cross_attn_weights = weights.detach()
        return out

    def forward(self, x: Tensor, memory: Tensor | None = None, src_mask=None, tgt_mask=None,
                cache: dict | None = None) -> Tensor:
        """Run the layer.

        Parameters
        ----------
        x : Tensor
            ``(batch, L, d_model)``, the target so far (embedded).
        memory : Tensor
            ``(batch, S, d_model)``, the encoder's output (None without cross-attention).
        src_mask : Tensor, optional
            Which memory positions may be attended, e.g. ``padding_mask(src)`` ``(batch, 1, 1, S)``.
        tgt_mask : Tensor or array_like, optional
            Extra keys to hide in the self-attention (e.g. ``padding_mask(tgt)``), boolean and
            broadcastable to ``(batch, heads, L, S)`` as a mask of :class:`MultiHeadAttention`; combined
            with the causal mask, which is always applied. With a cache its key axis counts every position so far.
        cache : dict, optional
            From :meth:`new_cache`: ``x`` holds only the new positions, which come after the cached ones.

        Returns
        -------
        Tensor
            ``(batch, L, d_model)``.
        """
        tgt_mask = self._check(x, memory, tgt_mask, cache)
        ### BEGIN SOLUTION A4: self-attn, cross-attn (if any), FFN; post-LN, or pre-LN if norm_first
        if self.norm_first:  # pre-LN: x + Sublayer(LayerNorm(x))
            x = x + self.dropout(self._self_attend(self.norm1(x), tgt_mask, cache))
            if self.cross_attention:
                x = x + self.dropout(self._cross_attend(self.norm2(x), memory, src_mask, cache))
            x = x + self.dropout(self.ffn(self.norm3(x)))
        else:  # post-LN, the paper: LayerNorm(x + Sublayer(x))
            x = self.norm1(x + self.dropout(self._self_attend(x, tgt_mask, cache)))
            if self.cross_attention:
                x = self.norm2(x + self.dropout(self._cross_attend(x, memory, src_mask, cache)))
            x = self.norm3(x + self.dropout(self.ffn(x)))
        return x  # (batch, L, d_model)
        ### END SOLUTION


def _final_norm(d_model: int, norm_first: bool, final_norm: bool | None) -> LayerNorm | None:
    """The stack's last LayerNorm: by default only after pre-LN layers, whose output is not normalised."""
    return LayerNorm(d_model) if (norm_first if final_norm is None else final_norm) else None


class Encoder(Module):
    r"""The encoder: ``num_layers`` :class:`EncoderLayer` one after another (N = 6 in the paper).

    .. math:: z = \mathrm{Layer}_N(\cdots \mathrm{Layer}_1(x))\quad(\text{then } \mathrm{LayerNorm}(z)
        \text{ if pre-LN})

    **The final LayerNorm.** With pre-LN layers the output is :math:`x` plus un-normalised
    sub-layer outputs, so a last ``norm`` follows (``final_norm=None`` decides by ``norm_first``);
    post-LN layers already end in a LayerNorm and get none. ``torch.nn.TransformerEncoder`` has
    the same slot, ``norm``, empty unless given, whatever ``norm_first`` is, while
    ``torch.nn.Transformer`` always fills it, even for post-LN layers, so their outputs are
    normalised twice; ``final_norm=True`` builds that (:func:`~minitransformer.nn.convert.to_torch`
    gives the matching ``TransformerEncoder`` either way).

    Shapes: ``(batch, S, d_model)`` -> ``(batch, S, d_model)``.

    Parameters
    ----------
    d_model, heads, d_ff : int
        As :class:`EncoderLayer`.
    num_layers : int
        :math:`N`, the number of layers.
    dropout, norm_first, activation
        As :class:`EncoderLayer`; every layer gets its own freshly initialised weights.
    final_norm : bool, optional
        Add the last LayerNorm; by default exactly when ``norm_first``.

    Attributes
    ----------
    layers : ModuleList of EncoderLayer
    norm : LayerNorm or None

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> encoder = nn.Encoder(d_model=8, heads=2, d_ff=16, num_layers=2, norm_first=True)
    >>> encoder(mt.randn(3, 5, 8)).shape, len(encoder.layers), encoder.norm is not None   # pre-LN: final norm
    ((3, 5, 8), 2, True)
    """

    @torch_keywords(batch_first=BATCH_FIRST)
    def __init__(self, d_model: int, heads: int, d_ff: int, num_layers: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", final_norm: bool | None = None):
        super().__init__()
        d_model, heads = check_heads("Encoder", d_model, heads)
        num_layers = require_int("Encoder", "num_layers", num_layers, low=1)
        self.d_model, self.norm_first = d_model, require_bool("Encoder", "norm_first", norm_first)
        self.layers = ModuleList(
            EncoderLayer(d_model, heads, d_ff, dropout, norm_first, activation) for _ in range(num_layers)
        )
        self.norm = _final_norm(d_model, norm_first, final_norm)

    def forward(self, x: Tensor, mask=None) -> Tensor:
        """Every layer in turn (then the final norm): ``(batch, S, d_model)`` -> ``(batch, S, d_model)``.

        ``mask`` as :meth:`EncoderLayer.forward`.
        """
        check_features("Encoder", "input", x, self.d_model, weight=_dtype_weight(self))
        mask = check_stack_mask("Encoder", "mask", mask, x, self.layers[0].self_attn.heads, x.shape[-2])
        for layer in self.layers:
            x = layer(x, mask)
        return x if self.norm is None else self.norm(x)

    @property
    def self_attn_weights(self) -> list[Tensor | None]:
        """Each layer's attention weights of the last forward, ``(batch, heads, S, S)``."""
        return [layer.self_attn_weights for layer in self.layers]


def check_stack_mask(op: str, name: str, mask, x: Tensor, heads: int, S: int, causal: bool = False,
                     some_key: bool = False) -> Tensor | None:
    """``mask`` (or None) checked once for a whole stack of layers, under the name the caller gave it: its shape
    against the scores ``(batch, heads, L, S)`` of the input ``x`` ``(batch, L, d_model)``; with ``some_key``, also
    that it (with the causal mask, where ``causal``) leaves some query a key (:func:`refuse_hiding_every_key`: the
    models ask it of the masks a user gives them, not of those they make, such as a classifier's of a batch of
    padding only)."""
    if mask is None:
        return None
    scores = ((x.shape[0] if x.ndim == 3 else 1), heads, x.shape[-2], S)
    mask = check_mask(op, name, mask, scores, x)
    if some_key:
        refuse_hiding_every_key(op, name, mask, scores, causal)
    return mask


class Decoder(Module):
    r"""The decoder: ``num_layers`` :class:`DecoderLayer` one after another, then LayerNorm if pre-LN.

    .. math:: y = \mathrm{Layer}_N(\cdots \mathrm{Layer}_1(x, m) \cdots, m)\quad(\text{then }
        \mathrm{LayerNorm}(y) \text{ if pre-LN})

    with :math:`m` the encoder's output ("memory"). See :class:`Encoder` for the final LayerNorm
    (and how ``torch.nn.TransformerDecoder`` and ``torch.nn.Transformer`` handle it). With
    ``cross_attention=False`` this is the stack of a decoder-only language model.

    Shapes: ``x`` ``(batch, L, d_model)``, ``memory`` ``(batch, S, d_model)`` -> ``(batch, L, d_model)``.

    Parameters
    ----------
    d_model, heads, d_ff, num_layers, dropout, norm_first, activation, final_norm
        As :class:`Encoder`.
    cross_attention : bool
        As :class:`DecoderLayer`.

    Attributes
    ----------
    layers : ModuleList of DecoderLayer
    norm : LayerNorm or None

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> decoder = nn.Decoder(d_model=8, heads=2, d_ff=16, num_layers=2)
    >>> y = decoder(mt.randn(3, 4, 8), memory=mt.randn(3, 6, 8))
    >>> y.shape, [w.shape for w in decoder.cross_attn_weights]   # one (batch, heads, L, S) map per layer
    ((3, 4, 8), [(3, 2, 4, 6), (3, 2, 4, 6)])
    """

    @torch_keywords(batch_first=BATCH_FIRST)
    def __init__(self, d_model: int, heads: int, d_ff: int, num_layers: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", final_norm: bool | None = None,
                 cross_attention: bool = True):
        super().__init__()
        d_model, heads = check_heads("Decoder", d_model, heads)
        num_layers = require_int("Decoder", "num_layers", num_layers, low=1)
        self.d_model, self.norm_first = d_model, require_bool("Decoder", "norm_first", norm_first)
        self.cross_attention = require_bool("Decoder", "cross_attention", cross_attention)
        self.layers = ModuleList(
            DecoderLayer(d_model, heads, d_ff, dropout, norm_first, activation, cross_attention)
            for _ in range(num_layers)
        )
        self.norm = _final_norm(d_model, norm_first, final_norm)

    def new_cache(self) -> list[dict[str, KVCache]]:
        """One empty cache per layer (see :meth:`DecoderLayer.new_cache`), for decoding one position at a time."""
        return [layer.new_cache() for layer in self.layers]

    def cached_positions(self, cache: list | None) -> int:
        """How many positions ``cache`` holds (0 for None), once it is checked to be :meth:`new_cache`'s list: one
        layer cache per layer, each a dict of the layer's caches; else a TypeError. A model calls it before it reads
        the cache (its positional encoding starts after the cached positions)."""
        if cache is None:
            return 0
        if not isinstance(cache, list | tuple) or len(cache) != len(self.layers):
            raise TypeError(
                f"Decoder: cache must be a list of {len(self.layers)} layer caches (decoder.new_cache()), got "
                f"{type(cache).__name__}" + (f" of length {len(cache)}" if isinstance(cache, list | tuple) else "")
            )
        for layer, layer_cache in zip(self.layers, cache):
            layer.check_cache(layer_cache)
        return len(cache[0]["self_attn"])

    def forward(self, x: Tensor, memory: Tensor | None = None, src_mask=None, tgt_mask=None,
                cache: list | None = None) -> Tensor:
        """As :meth:`DecoderLayer.forward`; ``cache`` is :meth:`new_cache`'s list, one entry per layer."""
        start = self.cached_positions(cache)  # a clear error for a cache that is not new_cache()'s list
        check_features("Decoder", "input", x, self.d_model, weight=_dtype_weight(self))
        heads = self.layers[0].self_attn.heads
        tgt_mask = check_stack_mask("Decoder", "tgt_mask", tgt_mask, x, heads, start + x.shape[-2])
        if memory is not None:
            check_features("Decoder", "memory", memory, self.d_model, weight=_dtype_weight(self))
            src_mask = check_stack_mask("Decoder", "src_mask", src_mask, x, heads, memory.shape[-2])
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, src_mask, tgt_mask, None if cache is None else cache[i])
        return x if self.norm is None else self.norm(x)

    @property
    def self_attn_weights(self) -> list[Tensor | None]:
        """Each layer's self-attention weights of the last forward, ``(batch, heads, L, L)``; with a cache
        ``(batch, heads, L, S)``, ``S`` counting the cached positions and the new ones."""
        return [layer.self_attn_weights for layer in self.layers]

    @property
    def cross_attn_weights(self) -> list[Tensor | None]:
        """Each layer's cross-attention weights of the last forward, ``(batch, heads, L, S)``."""
        return [layer.cross_attn_weights for layer in self.layers]
