r"""Boolean attention masks: True where a query may attend to a key.

The convention is PyTorch's boolean ``attn_mask`` of ``scaled_dot_product_attention``: a mask
broadcasts against the scores ``(batch, heads, L, S)`` (queries by keys), and ``True`` means
*allowed*. Masks combine with a logical and (:func:`combine_masks`).
"""

from __future__ import annotations

from .. import backend as _backend
from .._arguments import is_integer, require_int
from ..autograd import Tensor, broadcast_shapes
from ._checks import as_mask, require_tensor, require_token_ids

__all__ = ["causal_mask", "padding_mask", "combine_masks"]


def causal_mask(T: int, backend=None) -> Tensor:
    r"""The decoder's "no peeking ahead" mask: query :math:`i` may attend key :math:`j` when :math:`j \le i`.

    .. math:: M_{ij} = [\, j \le i \,]

    This is the masking of the paper's section 3.2.3 ("setting to :math:`-\infty` all values ...
    which correspond to illegal connections"), and PyTorch's ``is_causal=True``.

    Parameters
    ----------
    T : int
        Sequence length.
    backend : str, optional
        The current backend by default.

    Returns
    -------
    Tensor
        ``(T, T)`` bool, True on and below the diagonal; broadcasts against ``(batch, heads, T, T)``.

    Examples
    --------
    >>> from minitransformer.functional import causal_mask
    >>> causal_mask(3).numpy().astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    T = require_int("causal_mask", "T", T, low=0)  # the sequence length
    be = _backend.get(backend)
    xp = be.xp
    i = xp.arange(T)[:, None]  # query positions, a column
    j = xp.arange(T)[None, :]  # key positions, a row
    return Tensor(j <= i, backend=be)


def padding_mask(ids: Tensor, pad_id: int) -> Tensor:
    r"""Hide padding keys: True at real tokens, False at ``pad_id``.

    .. math:: M_{b,1,1,s} = [\, \mathrm{ids}_{b,s} \ne \mathrm{pad\_id} \,]

    Parameters
    ----------
    ids : Tensor or array_like
        ``(batch, S)`` integer token ids of the keys' sequence; a NumPy array or nested lists too, as
        :class:`~minitransformer.nn.Embedding` and the models take them.
    pad_id : int
        The id of the padding token (a Python or NumPy integer).

    Returns
    -------
    Tensor
        ``(batch, 1, 1, S)`` bool: broadcasts against the scores ``(batch, heads, L, S)``, so every
        head and every query sees the same keys hidden.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import padding_mask
    >>> padding_mask(mt.tensor([[5, 7, 0]]), pad_id=0).numpy().astype(int)
    array([[[[1, 1, 0]]]])
    >>> padding_mask([[5, 7, 0]], pad_id=0).shape
    (1, 1, 1, 3)
    """
    ids = ids if isinstance(ids, Tensor) else Tensor(ids)  # lifted as Embedding lifts them
    require_token_ids("padding_mask", "ids", ids)
    xp = ids.backend.xp
    if ids.ndim != 2:
        raise ValueError(f"padding_mask: ids must have shape (batch, S), got {ids.shape}")
    if not is_integer(pad_id):  # None, 0.5 or "0" would compare unequal to every id: nothing hidden, silently
        raise TypeError(f"padding_mask: pad_id must be an int (the id of the padding token), got {pad_id!r}")
    B, S = ids.shape
    real = ids.data != int(pad_id)  # (B, S); a Python int: array-api-strict refuses a NumPy integer here
    return Tensor(xp.reshape(real, (B, 1, 1, S)), backend=ids.backend)


def combine_masks(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    r"""Allowed only where both masks allow: :math:`M = A \land B` (broadcast); ``None`` means "no mask".

    Typically a padding mask ``(batch, 1, 1, S)`` and a causal mask ``(S, S)`` give
    ``(batch, 1, S, S)``.

    Parameters
    ----------
    a, b : Tensor or None
        Boolean masks whose shapes broadcast together; ``None`` allows everything.

    Returns
    -------
    Tensor or None
        Bool, of the broadcast shape of ``a`` and ``b``; the other mask itself when one is ``None``,
        and ``None`` when both are.

    Examples
    --------
    >>> from minitransformer.functional import causal_mask, combine_masks
    >>> combine_masks(None, None) is None
    True
    >>> combine_masks(causal_mask(2), None).numpy().astype(int)
    array([[1, 0],
           [1, 1]])
    """
    if a is None or b is None:
        return b if a is None else a
    require_tensor("combine_masks", "a", a)
    require_tensor("combine_masks", "b", b)
    A = as_mask("combine_masks", a, a)
    B = as_mask("combine_masks", b, a)
    broadcast_shapes("combine_masks", a.shape, b.shape)
    return Tensor(a.backend.xp.logical_and(A, B), backend=a.backend)
