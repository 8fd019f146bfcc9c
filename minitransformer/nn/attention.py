r"""Multi-head attention (paper section 3.2.2; document section 4.1.2), in two forms that agree.

.. math::
    \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^O,
    \qquad \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q,\; K W_i^K,\; V W_i^V)

The document gives only the first line; the second, from the paper, says what a head is. Each
head has its own projections :math:`W_i^Q, W_i^K \in \mathbb R^{d_\text{model} \times d_k}`,
:math:`W_i^V \in \mathbb R^{d_\text{model} \times d_v}`, with
:math:`d_k = d_v = d_\text{model} / h`, and :math:`W^O \in \mathbb R^{h d_v \times d_\text{model}}`.

Heads are numbered :math:`i = 1, \ldots, h`, as in the paper; arrays index from 0, so head :math:`i` is index
``i - 1``. The :math:`h` matrices :math:`W_i^Q` sit side by side as the column blocks of one
``(d_model, d_model)`` weight, ``W_Q.weight[:, (i-1)*d_k : i*d_k]``, and likewise for K and V. The
*literal* form loops over the heads and slices those blocks, exactly as the formula reads; the
*batched* form (the default, faster) projects once with the whole matrix and reshapes the result
into heads, which computes the same numbers (a test checks values and gradients agree).

For decoding one token at a time, a :class:`KVCache` keeps the keys and values of the positions
already seen, so a step projects only the new position and attends from it alone.
"""

from __future__ import annotations

from .. import functional as F
from .._arguments import require_bool, require_int
from ..autograd import Tensor, concat, stack
from ..autograd._torch_names import BATCH_FIRST, MHA_MASKS, torch_keywords
from ..autograd.engine import _broadcasts_to
from ..functional._checks import as_mask, require_float
from ..functional.dropout import check_probability
from .layers import Linear, check_dtype
from .module import Module

__all__ = ["MultiHeadAttention", "KVCache"]


def check_heads(op: str, d_model: int, heads: int) -> tuple[int, int]:
    """``(d_model, heads)`` as Python ints; a clear error, before anything is built, when the heads cannot split
    ``d_model`` evenly.

    Each of the ``heads`` heads gets :math:`d_k = d_\\text{model} / h` features (paper 3.2.2).

    Parameters
    ----------
    op : str
        The name of the layer or model being built, to start the message with.
    d_model, heads : int
        The width and the number of heads asked for (Python or NumPy integers).

    Returns
    -------
    tuple of int
        ``(d_model, heads)`` as Python ints.

    Raises
    ------
    ValueError
        If ``d_model`` or ``heads`` is not a positive integer, or ``heads`` does not divide ``d_model``.

    Examples
    --------
    >>> from minitransformer.nn.attention import check_heads
    >>> check_heads("MyLayer", d_model=8, heads=2)      # d_k = 4: fine
    (8, 2)
    >>> check_heads("MyLayer", d_model=8, heads=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: MyLayer: d_model=8 is not divisible by heads=3 (each head gets d_k = d_model / heads ...)
    """
    d_model, heads = require_int(op, "d_model", d_model, low=1), require_int(op, "heads", heads, low=1)
    if d_model % heads:
        raise ValueError(
            f"{op}: d_model={d_model} is not divisible by heads={heads} "
            f"(each head gets d_k = d_model / heads features, paper 3.2.2)"
        )
    return d_model, heads


def check_mask(op: str, name: str, mask, scores: tuple[int, int, int, int], like: Tensor) -> Tensor:
    """``mask`` as a Tensor on ``like``'s backend (a bool array or nested lists become one) if it is boolean, on that
    backend, and its shape broadcasts to the attention scores ``(batch, heads, L, S)``; else an error naming ``op``
    and the backends or shapes (the user's shape, not the one it is reshaped to).

    A 3-D mask ``(n, L, S)`` with ``n > 1`` is refused: it would broadcast as one mask per *head*, and where
    ``n`` equals the batch size that silently puts example ``i``'s mask on head ``i``."""
    allowed = as_mask(op, mask, like, name=f"the {name}")  # bool, on like's backend, or an error naming op
    mask = mask if isinstance(mask, Tensor) else Tensor(allowed, backend=like.backend)
    if mask.ndim == 3 and mask.shape[0] != 1:
        raise ValueError(
            f"{op}: a 3-D {name} {mask.shape} is ambiguous (one per example, or one per head?); pass "
            f"(batch, 1, L, S) for one per example or (1, heads, L, S) for one per head"
        )
    if not _broadcasts_to(mask.shape, scores):
        raise ValueError(
            f"{op}: {name} of shape {mask.shape} does not broadcast to the scores (batch, heads, L, S) = "
            f"{scores}; a mask per example needs a head axis: (batch, 1, L, S)"
        )
    return mask


def refuse_hiding_every_key(op: str, name: str, mask: Tensor, scores: tuple[int, int, int, int],
                            causal: bool = False) -> None:
    r"""Refuse ``mask`` (one :func:`check_mask` passed for ``scores``, ``(batch, heads, L, S)``) where it hides every
    key from every query of an example, with the causal mask (the last ``L`` of ``S`` positions: query :math:`i` sees
    key :math:`j \le S - L + i`) where the layer adds it: that example's attention weights would all be 0
    (:func:`~minitransformer.functional.scaled_dot_product_attention`'s rule for a query with no key), its attention
    layers would add nothing, and the model would train on without a word. Such a mask is mostly PyTorch's, which
    hides where True: ``~mask`` is ours (its padding mask, inverted, hides every key of the longest example). An
    example of padding only has nothing to attend either: the batches refuse one (``make_seq2seq_batch``). Made on
    the device: a GPU waits for nothing (:meth:`~minitransformer.backend.Backend.check_all` reads the answer at the
    next read of the device)."""
    allowed, xp = mask.data, mask.backend.xp
    if causal:
        L, S = scores[-2:]
        allowed = xp.logical_and(allowed, F.causal_mask(S, backend=mask.backend).data[S - L:, :])  # (..., L, S)
    hidden = f"{name} and the causal mask hide" if causal else f"{name} hides"
    mask.backend.check_all(xp.any(allowed, axis=(-2, -1)),  # per example (and head): some query sees some key
                           f"{op}: {hidden} every key from every query of an example ({name} of shape {mask.shape}): "
                           "its attention weights would all be 0. True marks a key a query may attend; torch's masks "
                           "of nn.Transformer and nn.MultiheadAttention are the other way round (True hides): write "
                           "~mask")


class KVCache:
    r"""The keys and values one attention layer has already computed, kept between decoding steps.

    A decoder generates one token at a time. At step :math:`t` the new position's query must see
    the keys and values of positions :math:`0..t`, but those of :math:`0..t-1` have not changed
    since the last step (the causal mask keeps every earlier position from seeing the new one).
    So instead of running the whole prefix again (:math:`t` queries, :math:`O(t^2)` work per step),
    the layer keeps :math:`K = X W^K` and :math:`V = X W^V` here, appends the new position's
    row and computes attention for the one new query: :math:`O(t)` per step.

    Generate under ``mt.no_grad()``: otherwise each step's graph is kept alive through the cache.

    Parameters
    ----------
    static : bool
        ``False`` (self-attention): every call appends the new positions' keys and values.
        ``True`` (cross-attention): the first call stores the keys and values of the encoder's
        output, which do not change while decoding; later calls reuse them and ignore ``key`` and
        ``value``.

    Attributes
    ----------
    K, V : Tensor or None
        ``(batch, heads, positions so far, d_k)``, after the projections and the split into heads;
        ``None`` before the first call. ``len(cache)`` is the number of positions held.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mha, cache = nn.MultiHeadAttention(8, 2), nn.KVCache()
    >>> x = mt.randn(1, 3, 8)
    >>> for t in range(3):
    ...     out, w = mha(x[:, t:t + 1], cache=cache)   # one query; keys 0..t
    >>> len(cache), w.shape
    (3, (1, 2, 1, 3))
    """

    def __init__(self, static: bool = False):
        self.static = require_bool("KVCache", "static", static)
        self.K: Tensor | None = None
        self.V: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.K is None else self.K.shape[-2]

    def __repr__(self) -> str:
        shape = None if self.K is None else self.K.shape
        return f"KVCache(static={self.static}, positions={len(self)}, K shape={shape})"

    def reset(self) -> None:
        """Forget everything (start a new sequence)."""
        self.K = self.V = None

    def update(self, K: Tensor, V: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``K``, ``V`` ``(batch, heads, new, d_k)`` along the positions; return everything held."""
        if self.K is None:
            self.K, self.V = K, V
        else:
            self.K, self.V = concat([self.K, K], axis=2), concat([self.V, V], axis=2)  # (B, h, S + new, d_k)
        return self.K, self.V

    @property
    def filled(self) -> bool:
        """A static cache that holds its keys and values (the encoder's memory, projected once)."""
        return self.static and self.K is not None


class MultiHeadAttention(Module):
    r"""Multi-head attention: :math:`h` scaled dot-product attentions side by side, each on its own projection.

    .. math::
        \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^O,
        \qquad \mathrm{head}_i = \mathrm{softmax}\!\left(\frac{(Q W_i^Q)(K W_i^K)^\top}{\sqrt{d_k}}\right) V W_i^V

    (paper section 3.2.2, document section 4.1.2; the paper uses :math:`h = 8`,
    :math:`d_k = 512/8 = 64`). Self-attention passes one sequence as query, key and value;
    the decoder's cross-attention passes the decoder's sequence as query and the encoder's output
    as key and value, of another length.

    Shapes: ``query`` ``(batch, L, d_model)``, ``key`` and ``value`` ``(batch, S, d_model)`` -> output
    ``(batch, L, d_model)`` and weights ``(batch, heads, L, S)``.

    Parameters
    ----------
    d_model : int
        Features of every input and of the output.
    heads : int
        :math:`h`; must divide ``d_model``.
    dropout : float
        Dropout on the attention weights while training.
    bias : bool
        Biases on the four projections (the paper's equations have none; PyTorch adds them).
    literal : bool
        Loop over the heads as the formula reads (``True``) or compute all heads in one batched
        product (``False``, the default). An attribute: switch it at any time.

    Attributes
    ----------
    W_Q, W_K, W_V : Linear
        ``(d_model, d_model)``; head :math:`i`'s ``(d_model, d_k)`` projection is column block
        ``(i-1)*d_k : i*d_k`` (heads :math:`i = 1, \ldots, h`; arrays index from 0).
    W_O : Linear
        :math:`W^O`, ``(d_model, d_model)`` (rows ``(i-1)*d_k : i*d_k`` take head :math:`i`'s output).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mha = nn.MultiHeadAttention(d_model=8, heads=2)
    >>> x = mt.randn(3, 5, 8)                      # (batch, seq, d_model)
    >>> out, weights = mha(x)                       # self-attention
    >>> out.shape, weights.shape                    # (B, L, d_model), (B, heads, L, S)
    ((3, 5, 8), (3, 2, 5, 5))
    """

    dropout_rate = "dropout"  # the attribute that draws masks in training mode (testing.gradcheck_module refuses them)

    @torch_keywords(batch_first=BATCH_FIRST)
    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, bias: bool = True, literal: bool = False):
        super().__init__()
        d_model, heads = check_heads("MultiHeadAttention", d_model, heads)
        self.d_model, self.heads, self.d_k = d_model, heads, d_model // heads
        self.dropout = check_probability("MultiHeadAttention", dropout)
        self.literal = require_bool("MultiHeadAttention", "literal", literal)
        self.W_Q = Linear(d_model, d_model, bias)
        self.W_K = Linear(d_model, d_model, bias)
        self.W_V = Linear(d_model, d_model, bias)
        self.W_O = Linear(d_model, d_model, bias)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, heads={self.heads}, d_k={self.d_k}, dropout={self.dropout}, "
            f"literal={self.literal}"
        )

    # ------------------------------------------------------------ checks, before any arithmetic
    def _check(self, query, key, value, mask, cache=None):
        """The inputs as ``(B, L, d_model)``, ``(B, S, d_model)`` x2 and the mask as ``(B|1, h|1, L|1, S|1)``.

        With a cache, ``S`` counts the positions it holds too.
        """
        op = "MultiHeadAttention"
        for name, t in (("query", query), ("key", key), ("value", value)):
            require_float(op, name, t)
            if t.ndim not in (2, 3) or t.shape[-1] != self.d_model:
                raise ValueError(
                    f"{op}: {name} has shape {t.shape}; expected (batch, seq, d_model={self.d_model}) "
                    f"or (seq, d_model={self.d_model})"
                )
            check_dtype(op, name, t, ("W_Q.weight", self.W_Q.weight))  # here, not as Affine inside W_Q
        if not query.ndim == key.ndim == value.ndim:
            raise ValueError(
                f"{op}: query {query.shape}, key {key.shape} and value {value.shape} must all be batched or all not"
            )
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(
                f"{op}: key has {key.shape[-2]} positions and value has {value.shape[-2]}; each key needs "
                f"one value (key {key.shape}, value {value.shape})"
            )
        if query.ndim == 3 and not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(
                f"{op}: batch sizes differ: query {query.shape}, key {key.shape}, value {value.shape}"
            )
        B = query.shape[0] if query.ndim == 3 else 1
        S = key.shape[-2]
        if cache is not None:
            S = self._check_cache(cache, B, S)
        if mask is None:
            return mask
        mask = check_mask(op, "mask", mask, (B, self.heads, query.shape[-2], S), query)
        if mask.ndim < 4:
            mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
        return mask  # (B|1, h|1, L|1, S|1)

    def _check_cache(self, cache, B: int, S: int) -> int:
        """The number of keys the scores will have once ``cache`` is used (``S`` new ones, or the cached ones)."""
        op = "MultiHeadAttention"
        if not isinstance(cache, KVCache):
            raise TypeError(f"{op}: cache must be a KVCache (or None), got {type(cache).__name__}")
        if cache.K is None:
            return S
        want = (B, self.heads, self.d_k)
        held = (cache.K.shape[0], cache.K.shape[1], cache.K.shape[3])
        if held != want:
            raise ValueError(
                f"{op}: the cache holds keys of shape {cache.K.shape} (batch, heads, positions, d_k), which does "
                f"not fit this call's (batch, heads, d_k) = {want}; use a new KVCache for a new batch"
            )
        return len(cache) if cache.static else len(cache) + S

    # ------------------------------------------------------------ forward
    @torch_keywords(**MHA_MASKS)
    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *, mask=None,
                need_weights: bool = True, cache: KVCache | None = None) -> tuple[Tensor, Tensor | None]:
        """Attend from each position of ``query`` to the positions of ``key``/``value``.

        Parameters
        ----------
        query : Tensor
            ``(batch, L, d_model)`` (or ``(L, d_model)``).
        key : Tensor, optional
            ``(batch, S, d_model)``; ``query`` if left out (self-attention).
        value : Tensor, optional
            ``(batch, S, d_model)``; ``key`` if left out.
        mask : Tensor, optional
            Boolean, True where a query **may** attend a key, broadcastable to
            ``(batch, heads, L, S)``: :func:`~minitransformer.functional.causal_mask` ``(L, L)``,
            :func:`~minitransformer.functional.padding_mask` ``(batch, 1, 1, S)``. A mask per example
            is ``(batch, 1, L, S)``; a 3-D ``(n, L, S)`` with ``n > 1`` is refused as ambiguous. By keyword
            only, as the rest: torch's fourth argument is ``key_padding_mask``, True at the padding, which
            taken here would show each query only the padding.
        need_weights : bool
            Return the attention weights too (else ``None`` in their place).
        cache : KVCache, optional
            Keys and values of earlier positions (see :class:`KVCache`): the new positions' keys and
            values are appended (or, for a static cache already filled, the cached ones are used)
            and ``S`` counts every cached position. A cached call always computes the heads in the
            batched form (the two forms agree).

        Returns
        -------
        output : Tensor
            ``(batch, L, d_model)`` (``(L, d_model)`` for an unbatched query).
        weights : Tensor or None
            ``(batch, heads, L, S)``: head :math:`i`'s attention map (heads count from 1) is ``weights[:, i-1]``
            (``(heads, L, S)`` for an unbatched query).
        """
        key = query if key is None else key
        value = key if value is None else value
        mask = self._check(query, key, value, mask, cache)
        unbatched = query.ndim == 2
        if unbatched:  # one sequence: give it a batch axis of 1, removed at the end
            query, key, value = (t.reshape(1, *t.shape) for t in (query, key, value))
        if cache is not None:
            output, weights = self._batched(query, key, value, mask, cache)
        else:
            attend = self._literal if self.literal else self._batched
            output, weights = attend(query, key, value, mask)
        if unbatched:
            output, weights = output.reshape(output.shape[1:]), weights.reshape(weights.shape[1:])
        return output, (weights if need_weights else None)

    def _literal(self, query, key, value, mask):
        r"""The formula as written: per head, slice :math:`W_i^Q, W_i^K, W_i^V` and attend; concat; :math:`W^O`.

        .. math::
            \mathrm{head}_i = \mathrm{softmax}\!\left(\frac{(Q W_i^Q)(K W_i^K)^\top}{\sqrt{d_k}}\right) V W_i^V,
            \qquad \mathrm{output} = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^O

        (``docs/formulas/multi-head-attention.md``). :math:`W_i^Q` is column block ``(i-1)*d_k : i*d_k`` of
        ``self.W_Q.weight``, its bias the same slice of ``self.W_Q.bias`` (``_block`` below gives both; ``F.linear``
        applies them); likewise ``W_K``, ``W_V``. ``self.W_O`` is a whole :class:`Linear`: call it on the concat.
        Attend with :func:`~minitransformer.functional.scaled_dot_product_attention` (which divides by
        :math:`\sqrt{d_k}` and masks), with ``dropout_p=self.dropout, training=self.training``: dropout on the
        weights is this method's to ask for.

        Parameters
        ----------
        query : Tensor
            ``(B, L, d_model)`` (:meth:`forward` gives an unbatched query a batch axis of 1 first).
        key, value : Tensor
            ``(B, S, d_model)`` each.
        mask : Tensor or None
            Boolean, True where a query may attend a key, already 4-D: ``(B|1, h|1, L|1, S|1)`` (:meth:`_check`
            turns a ``(L, S)`` mask into ``(1, 1, L, S)``). Head :math:`i`'s is ``mask[:, i-1]`` (``mask[:, 0]`` when
            its head axis is 1), ``(B|1, L|1, S|1)``: each head's attention gets its own 3-D mask, not the 4-D one.

        Returns
        -------
        output : Tensor
            ``(B, L, d_model)``.
        weights : Tensor
            ``(B, h, L, S)``: each head's weights (before dropout), stacked on axis 1.
        """
        ### BEGIN SOLUTION A3: for each head i = 1..h, attend with column block i of W_Q, W_K, W_V; concat; W_O
        heads, maps = [], []
        for i in range(1, self.heads + 1):  # the paper's head_1 .. head_h
            cols = slice((i - 1) * self.d_k, i * self.d_k)  # head i's column block
            QW_i = F.linear(query, *_block(self.W_Q, cols))  # Q W_i^Q: (B, L, d_k)
            KW_i = F.linear(key, *_block(self.W_K, cols))  # K W_i^K: (B, S, d_k)
            VW_i = F.linear(value, *_block(self.W_V, cols))  # V W_i^V: (B, S, d_k)
            mask_i = None if mask is None else mask[:, i - 1 if mask.shape[1] > 1 else 0]  # (B|1, L|1, S|1)
            head_i, weights_i = F.scaled_dot_product_attention(
                QW_i, KW_i, VW_i, mask_i, dropout_p=self.dropout, training=self.training
            )  # (B, L, d_k), (B, L, S)
            heads.append(head_i)
            maps.append(weights_i)
        output = self.W_O(concat(heads, axis=-1))  # Concat(head_1, ..., head_h) W^O: (B, L, d_model)
        return output, stack(maps, axis=1)  # (B, L, d_model), (B, h, L, S)
        ### END SOLUTION

    def _batched(self, query, key, value, mask, cache=None):
        r"""All heads at once: project with the whole matrices, split the features into heads, one batched attention.

        The same numbers as :meth:`_literal` (``docs/formulas/multi-head-attention.md``, "Why they are the same
        computation"): ``self.W_Q(query)`` is ``(B, L, d_model)``, all heads' :math:`Q W_i^Q` side by side; split it
        with ``reshape(B, L, h, d_k)`` then ``permute(0, 2, 1, 3)`` into ``(B, h, L, d_k)`` (a reshape straight to
        ``(B, h, L, d_k)`` mixes positions and heads); likewise K and V ``(B, h, S, d_k)``. One call of
        :func:`~minitransformer.functional.scaled_dot_product_attention` (which divides by :math:`\sqrt{d_k}` and
        masks) with ``dropout_p=self.dropout, training=self.training`` gives the heads ``(B, h, L, d_k)``; merge them
        back with the inverse permute and reshape to ``(B, L, d_model)``, then ``self.W_O``.

        Parameters
        ----------
        query : Tensor
            ``(B, L, d_model)``.
        key, value : Tensor
            ``(B, S, d_model)`` each (with a filled static cache, not used).
        mask : Tensor or None
            Boolean, True where a query may attend a key, already 4-D ``(B|1, h|1, L|1, S|1)``: it broadcasts to the
            scores ``(B, h, L, S)`` as it is. ``S`` counts the cached keys too.
        cache : KVCache or None
            The keys and values of earlier positions, ``(B, h, positions, d_k)`` after the split (:class:`KVCache`).
            A filled static one (``cache.filled``: cross-attention after the first step) is used as it is, ``K, V =
            cache.K, cache.V``, and ``key``, ``value`` are ignored; any other: project and split this call's ``key``
            and ``value``, then ``K, V = cache.update(K, V)`` (all positions so far).

        Returns
        -------
        output : Tensor
            ``(B, L, d_model)``.
        weights : Tensor
            ``(B, h, L, S)``, as the attention returns them (before dropout).
        """
        ### BEGIN SOLUTION A3: project, split d_model into h heads (B, h, L, d_k), attend, merge heads, W_O
        B, L, S, h, d_k = query.shape[0], query.shape[1], key.shape[1], self.heads, self.d_k
        Q = self.W_Q(query).reshape(B, L, h, d_k).permute(0, 2, 1, 3)  # (B, L, d_model) -> (B, h, L, d_k)
        if cache is not None and cache.filled:  # cross-attention: the memory's K, V, projected at the first step
            K, V = cache.K, cache.V
        else:
            K = self.W_K(key).reshape(B, S, h, d_k).permute(0, 2, 1, 3)  # (B, S, d_model) -> (B, h, S, d_k)
            V = self.W_V(value).reshape(B, S, h, d_k).permute(0, 2, 1, 3)  # (B, S, d_model) -> (B, h, S, d_k)
            if cache is not None:
                K, V = cache.update(K, V)  # (B, h, cached + S, d_k)
        heads, weights = F.scaled_dot_product_attention(
            Q, K, V, mask, dropout_p=self.dropout, training=self.training
        )  # (B, h, L, d_k), (B, h, L, S)
        concatenated = heads.permute(0, 2, 1, 3).reshape(B, L, h * d_k)  # (B, h, L, d_k) -> (B, L, d_model)
        return self.W_O(concatenated), weights  # (B, L, d_model), (B, h, L, S)
        ### END SOLUTION


def _block(linear: Linear, cols: slice) -> tuple[Tensor, Tensor | None]:
    """Head i's part of a projection: columns ``cols``, ``(i-1)*d_k : i*d_k``, of the weight (and of the bias)."""
    W_i = linear.weight[:, cols]  # (d_model, d_k)
    b_i = None if linear.bias is None else linear.bias[cols]  # (d_k,)
    return W_i, b_i
