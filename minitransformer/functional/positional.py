r"""The sinusoidal positional encoding of "Attention Is All You Need" (section 3.5; document section 4.1.3)."""

from __future__ import annotations

from .. import backend as _backend
from .._arguments import require_int
from ..autograd import Tensor
from ..autograd.engine import _is_floating
from ..backend import dtype_name

__all__ = ["sinusoidal_positional_encoding"]


def sinusoidal_positional_encoding(max_len: int, d_model: int, dtype=None, backend=None) -> Tensor:
    r"""The table of fixed position vectors added to the token embeddings.

    .. math::
        PE_{(pos,\, 2i)} = \sin\!\left(\frac{pos}{10000^{2i/d_{model}}}\right), \qquad
        PE_{(pos,\, 2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d_{model}}}\right)

    for positions :math:`pos = 0, 1, \ldots, max\_len - 1` (counted from 0, as in the paper's
    code, tensor2tensor, whose table otherwise differs: all sines, then all cosines, at the
    frequencies :math:`10000^{-i/(d_{model}/2 - 1)}`, the slowest exactly :math:`1/10000`) and
    :math:`i = 0, 1, \ldots`. Each pair of columns :math:`(2i, 2i+1)` is a sine and a
    cosine of one frequency; the wavelengths grow geometrically from :math:`2\pi` up to
    :math:`2\pi \cdot 10000^{(d_{model}-2)/d_{model}}` (even :math:`d_{model}`), just under
    :math:`10000 \cdot 2\pi` for a wide table (:math:`3162 \cdot 2\pi` for :math:`d_{model} = 16`,
    :math:`9647 \cdot 2\pi` for 512), so nearby positions get similar vectors and, for any offset
    :math:`k`, :math:`PE_{pos+k}` is a fixed linear function (a rotation in each pair; even
    :math:`d_{model}`) of :math:`PE_{pos}`.

    **Fixed, not learned.** These vectors are computed by the formula and never trained. The
    document's section 4.2.3 says "positional encoding vectors are learned during the training
    process": that describes a different, also common choice, the *learned positional embedding*
    (BERT, GPT-2), a trainable ``(max_len, d_model)`` table with one free row per position, which
    cannot say anything about positions beyond ``max_len``. The paper tried both, found nearly
    identical results (its Table 3, row E), and kept the sinusoid because it "may allow the model
    to extrapolate to sequence lengths longer than the ones encountered during training". Here the
    learned kind is ``nn.LearnedPositionalEmbedding``; this function is the fixed kind.

    An odd ``d_model`` is allowed: the last column, :math:`2i = d_{model} - 1`, is a sine whose
    cosine partner would fall outside the table.

    Parameters
    ----------
    max_len : int
        Number of positions (rows).
    d_model : int
        Width of the embeddings (columns).
    dtype : str, optional
        A floating-point dtype, ``"float32"`` by default. The angles are computed in float64 and rounded once at
        the end.
    backend : str, optional
        The current backend by default.

    Returns
    -------
    Tensor
        ``(max_len, d_model)``, no gradient; add it to embeddings ``(batch, seq, d_model)`` as
        ``x + PE[:seq]``.

    Examples
    --------
    >>> from minitransformer.functional import sinusoidal_positional_encoding
    >>> sinusoidal_positional_encoding(2, 4).numpy().round(4)   # pos 1: sin 1, cos 1, sin 0.01, cos 0.01
    array([[0.    , 1.    , 0.    , 1.    ],
           [0.8415, 0.5403, 0.01  , 1.    ]], dtype=float32)
    """
    op = "sinusoidal_positional_encoding"
    max_len, d_model = require_int(op, "max_len", max_len, low=0), require_int(op, "d_model", d_model, low=1)
    be = _backend.get(backend)
    xp, f64, out_dtype = be.xp, be.dtype("float64"), be.dtype(dtype)
    if not _is_floating(out_dtype):  # sines and cosines in [-1, 1]: an integer table would be all 0s and 1s
        raise TypeError(f"{op}: dtype must be floating point, got {dtype_name(out_dtype)}")
    ### BEGIN SOLUTION A3: PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(...)
    pos = xp.reshape(xp.arange(max_len, dtype=f64), (max_len, 1))  # (max_len, 1)
    two_i = xp.arange(0, d_model, 2, dtype=f64)  # (ceil(d_model / 2),): 0, 2, 4, ...
    angle = pos / 10000.0 ** (two_i / d_model)  # (max_len, ceil(d_model / 2))
    # interleave: column 2i is sin, column 2i+1 is cos, then drop the last cos when d_model is odd
    # (the width spelled out, not -1: with max_len = 0 a -1 cannot be worked out)
    PE = xp.reshape(xp.stack((xp.sin(angle), xp.cos(angle)), axis=-1), (max_len, 2 * two_i.shape[0]))[:, :d_model]
    return Tensor(xp.astype(PE, out_dtype), backend=be)
    ### END SOLUTION
