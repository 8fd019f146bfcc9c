r"""Scaled dot-product attention: the one formula at the heart of the Transformer."""

from __future__ import annotations

import math

from ..autograd import Tensor, broadcast_shapes, where
from ..autograd._torch_names import SDPA_MASKS, torch_keywords
from ..autograd.engine import _broadcasts_to
from ..autograd.fused import ScaledMaskedSoftmax
from ._checks import as_mask, require_float, require_same_dtype
from .activations import softmax
from .dropout import check_probability, dropout

__all__ = ["scaled_dot_product_attention"]


@torch_keywords(**SDPA_MASKS)
def scaled_dot_product_attention(Q: Tensor, K: Tensor, V: Tensor, mask=None, dropout_p: float = 0.0, *,
                                 training: bool | None = None) -> tuple[Tensor, Tensor]:
    r"""Each query takes a weighted average of the values, weighted by how well it matches each key.

    .. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V

    (document section 4.1.1; paper eq. 1). The scores :math:`Q K^\top` compare every query with
    every key; dividing by :math:`\sqrt{d_k}` keeps their variance near 1 when the entries of
    :math:`Q` and :math:`K` have variance 1, so the softmax does not saturate; the softmax over the
    keys turns each row into weights that sum to 1; and the weights average the rows of :math:`V`.

    A mask hides some keys from some queries: a hidden score is replaced by the most negative
    finite number of the dtype (the paper writes :math:`-\infty`), so its weight is 0. A query
    whose keys are *all* hidden (a sequence of padding only, or a padding position at the start
    of a sequence under the causal and padding masks combined) would otherwise get uniform weights; here its weights,
    its output and its gradient are 0, never NaN.

    Parameters
    ----------
    Q : Tensor
        ``(..., L, d_k)`` queries, e.g. ``(batch, heads, L, d_k)``.
    K : Tensor
        ``(..., S, d_k)`` keys.
    V : Tensor
        ``(..., S, d_v)`` values.
    mask : Tensor, optional
        Boolean, broadcastable to the scores ``(..., L, S)``; True where query :math:`i` **may**
        attend key :math:`j` (the boolean ``attn_mask`` of PyTorch's ``scaled_dot_product_attention``;
        PyTorch's ``nn.MultiheadAttention`` takes the opposite). See :func:`causal_mask`,
        :func:`padding_mask`.
    dropout_p : float
        Dropout on the attention weights while ``training``, as in PyTorch and in tensor2tensor's
        ``transformer_base_v2`` and later (``attention_dropout = 0.1``). (The paper's section 5.4 drops
        the sub-layer outputs and the embedding sums, not the weights, and tensor2tensor's paper-era
        ``transformer_base_v1`` has ``attention_dropout = 0.0``.)
    training : bool
        Dropout is applied only when True; with ``dropout_p > 0`` it must be given (in a Module,
        ``training=self.training``, so that ``model.eval()`` turns dropout off): torch's function has no ``training``
        and drops whenever ``dropout_p > 0``, and a default of False would drop nothing, silently. By keyword only:
        torch's sixth argument is ``is_causal``, which, given here, would have turned dropout on and left every key
        visible.

    Returns
    -------
    output : Tensor
        ``(..., L, d_v)``.
    weights : Tensor
        ``(..., L, S)``, the attention weights (before dropout): row :math:`i` is how much query
        :math:`i` looks at each key. Plot them as an attention map.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import scaled_dot_product_attention
    >>> Q = mt.tensor([[1.0, 0.0]]); K = mt.tensor([[1.0, 0.0], [0.0, 1.0]]); V = mt.tensor([[0.0], [1.0]])
    >>> out, w = scaled_dot_product_attention(Q, K, V)   # scores [1, 0] / sqrt(2)
    >>> w.numpy().round(4), out.numpy().round(4)
    (array([[0.6698, 0.3302]], dtype=float32), array([[0.3302]], dtype=float32))
    """
    allowed, d_k, dropout_p = _check_attention_inputs(Q, K, V, mask, dropout_p, training)  # allowed: (..., L, S)|None
    if Q.backend.kernels is not None:  # on a GPU: the division, the masking and the softmax as one CUDA kernel
        weights = ScaledMaskedSoftmax.apply(Q @ K.mT, allowed=allowed, divisor=math.sqrt(d_k))
        return dropout(weights, dropout_p, training=training) @ V, weights

    ### BEGIN SOLUTION A2: return (softmax(Q K^T / sqrt(d_k)) V, weights); masks, dropout: see docstring
    scores = Q @ K.mT / math.sqrt(d_k)  # (..., L, S)
    if allowed is not None:
        hidden = float(Q.backend.xp.finfo(Q.dtype).min)  # a large finite negative: exp(hidden - max) = 0, no inf - inf
        scores = where(Tensor(allowed, backend=Q.backend), scores, hidden)
    weights = softmax(scores, axis=-1)  # (..., L, S), rows sum to 1
    if allowed is not None:
        # a query with no allowed key: its row would be uniform over hidden keys; make it 0
        has_key = Q.backend.xp.any(allowed, axis=-1, keepdims=True)  # (..., L or 1, 1)
        # (on the CPU, look first: a causal mask always leaves a key, and the pass can be skipped;
        # on a GPU, looking would make the host wait, so the pass always runs)
        if not Q.backend.check_values or not bool(Q.backend.xp.all(has_key)):
            weights = where(Tensor(has_key, backend=Q.backend), weights, 0.0)
    dropped = dropout(weights, dropout_p, training=training)
    return dropped @ V, weights  # (..., L, d_v), (..., L, S)
    ### END SOLUTION


def _check_attention_inputs(Q: Tensor, K: Tensor, V: Tensor, mask, dropout_p,
                            training: bool | None) -> tuple[object | None, int, float]:
    """The checks of :func:`scaled_dot_product_attention`, kept apart so that its body reads as the formula: each
    refuses, before any arithmetic, what the formula cannot take (an integer or mixed dtype, shapes of Q, K and V
    that do not fit, no keys, d_k = 0, a mask that is not boolean or does not broadcast to the scores, a dropout
    probability outside [0, 1), or one above 0 without ``training``), naming the function and the shapes or values
    at fault.

    Returns ``(allowed, d_k, dropout_p)``: the mask as a bool array on Q's backend (None without one), the width
    :math:`d_k` of the queries and keys, and the dropout probability as a float.
    """
    op = "scaled_dot_product_attention"
    for name, t in (("Q", Q), ("K", K), ("V", V)):
        require_float(op, name, t)
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have shape (..., seq, features), got {t.shape}")
    for name, t in (("K", K), ("V", V)):  # named here, before a product deep inside names K transposed
        require_same_dtype(op, "Q", Q, name, t)
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(f"{op}: Q {Q.shape} and K {K.shape} must have the same d_k (last axis): "
                         f"{Q.shape[-1]} != {K.shape[-1]}")
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"{op}: K {K.shape} and V {V.shape} must have the same number of keys S (axis -2): "
                         f"{K.shape[-2]} != {V.shape[-2]}")
    try:
        batch = broadcast_shapes(op, Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    except ValueError:  # its axis -1 would be a position in the batch axes, not an axis of Q, K or V
        raise ValueError(f"{op}: the batch axes (all but the last two) of Q {Q.shape}, K {K.shape} and V {V.shape} "
                         f"do not broadcast: {Q.shape[:-2]}, {K.shape[:-2]} and {V.shape[:-2]}") from None
    L, S, d_k = Q.shape[-2], K.shape[-2], Q.shape[-1]
    if S == 0:
        raise ValueError(f"{op}: K {K.shape} and V {V.shape} have no keys (S = 0): a query's softmax over the keys "
                         "would be over nothing")
    if d_k == 0:
        raise ValueError(f"{op}: Q {Q.shape} and K {K.shape} have d_k = 0: the scores Q K^T / sqrt(d_k) would be "
                         "0 / 0")
    scores_shape = batch + (L, S)
    allowed = None
    if mask is not None:
        allowed = as_mask(op, mask, Q)
        mask_shape = tuple(allowed.shape)
        if not _broadcasts_to(mask_shape, scores_shape):
            raise ValueError(f"{op}: mask of shape {mask_shape} does not broadcast to the scores (..., L, S) = "
                             f"{scores_shape}")
    dropout_p = check_probability(op, dropout_p)
    if dropout_p > 0.0 and training is None:  # torch's function drops whenever p > 0: no silent default either way
        raise TypeError(f"{op}: dropout_p={dropout_p} needs training= given: training=self.training in a Module (so "
                        "that model.eval() turns dropout off), or training=True; torch's scaled_dot_product_attention "
                        "has no training and drops whenever dropout_p > 0")
    return allowed, d_k, dropout_p
