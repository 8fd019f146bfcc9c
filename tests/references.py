"""What several test files compare with: formulas written again in plain float64 NumPy, and inputs they share.

The test files import it by name (``from references import layer_norm_np``): ``pythonpath = tests`` in setup.cfg
puts this folder on ``sys.path``, which ``--import-mode=importlib`` does not. Grading runs the instructor's
tests with that setup.cfg (``-c``), so it finds this module beside them; a student copy holds it too.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np


def module_from_file(path, name: str):
    """The Python file ``path`` run as a module named ``name``, which ``sys.modules`` does not list: a script of tools/
    or another test file, which no package holds (the tests are imported by path, ``--import-mode=importlib``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layer_norm_np(x, gamma=None, beta=None, eps=1e-5, unbiased=False, eps_outside=False, one_pass=False,
                  return_stats=False):
    r"""Layer norm over the last axis: :math:`y = \gamma \hat x + \beta`, :math:`\hat x = (x - \mu) /
    \sqrt{\sigma^2 + \epsilon}`, :math:`\sigma^2` the biased variance, the mean of :math:`(x - \mu)^2`.

    Parameters
    ----------
    x : array_like
        ``(..., d)``, taken as float64.
    gamma, beta : array_like or None
        ``(d,)``; None leaves the gain (the bias) out.
    eps : float
        Added to the variance under the square root.
    unbiased, eps_outside, one_pass : bool
        Known wrong answers, to name them: the variance divided by ``d - 1``; ``eps`` added to the square root;
        the variance as ``mean(x^2) - mu^2`` in ``x``'s own dtype (in float32 it loses every digit of the variance
        of a row far from zero: in float64, or near zero, it is the right answer).
    return_stats : bool
        Also return ``x_hat`` ``(..., d)`` and ``inv_std`` :math:`1 / \sqrt{\sigma^2 + \epsilon}` ``(..., 1)``, what a
        backward reads.

    Returns
    -------
    ndarray or (ndarray, ndarray, ndarray)
        ``y`` ``(..., d)``, or ``(y, x_hat, inv_std)``.

    Examples
    --------
    >>> layer_norm_np([[1.0, 3.0]], eps=3.0)  # mu = 2, sigma^2 = 1: (x - 2) / sqrt(1 + 3)
    array([[-0.5,  0.5]])
    """
    given = np.asarray(x)
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    # the mean of (x - mu)^2, not mean(x^2) - mu^2: that loses every digit of the variance of a row far from 0
    var = ((x - mu) ** 2).sum(axis=-1, keepdims=True) / (x.shape[-1] - (1 if unbiased else 0))
    if one_pass:  # the mistake, as a float32 input computes it
        given = given if np.issubdtype(given.dtype, np.floating) else x
        var = ((given * given).mean(axis=-1, keepdims=True)
               - given.mean(axis=-1, keepdims=True) ** 2).astype(np.float64)
    inv_std = 1 / (np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps))
    x_hat = (x - mu) * inv_std
    y = x_hat * (1.0 if gamma is None else np.asarray(gamma)) + (0.0 if beta is None else np.asarray(beta))
    return (y, x_hat, inv_std) if return_stats else y


def params_np(module) -> dict[str, np.ndarray]:
    """A module's parameters by name (``W_Q.weight``, ``self_attn.W_O.bias``), as float64 NumPy arrays."""
    return {name: p.numpy().astype(np.float64) for name, p in module.named_parameters()}


def heads_np(P, x, name, heads, transposed=True):
    """``x W + b`` split into heads, as multi-head attention and a KVCache hold them: ``(B, S, d_model) -> (B, heads,
    S, d_k)``, ``W`` and ``b`` the parameters ``name.weight`` and ``name.bias`` (``W_K``; no bias: 0) of ``P``
    (:func:`mha_np`).

    ``transposed=False`` is the known mistake: a reshape straight to ``(B, heads, S, d_k)``, which mixes positions
    and heads.
    """
    B, S, d_model = np.shape(x)
    y = x @ P[f"{name}.weight"] + P.get(f"{name}.bias", 0.0)  # (B, S, d_model)
    if not transposed:
        return y.reshape(B, heads, S, d_model // heads)
    return y.reshape(B, S, heads, d_model // heads).transpose(0, 2, 1, 3)


def mha_np(P, q, k, v, heads, mask=None, scaled=True, transposed=True):
    r"""Multi-head attention in float64 NumPy: :math:`\mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h) W^O +
    b^O`, :math:`\mathrm{head}_i = \mathrm{softmax}(Q_i K_i^T / \sqrt{d_k}) V_i`, :math:`Q_i` the columns of head
    :math:`i` of :math:`q W^Q + b^Q` (:func:`heads_np`), :math:`K_i` and :math:`V_i` likewise of ``k`` and ``v``.

    Parameters
    ----------
    P : dict of str to ndarray
        The parameters by name, as :func:`params_np` of a ``MultiHeadAttention`` gives them: ``W_Q.weight``
        ``(d_model, d_model)`` and ``W_Q.bias`` ``(d_model,)`` (none where the module has no biases), the same of
        ``W_K``, ``W_V`` and ``W_O``.
    q, k, v : ndarray
        The query ``(B, L, d_model)``, the key and the value ``(B, S, d_model)``.
    heads : int
        ``h``; ``d_k = d_model / h``.
    mask : array_like of bool or None
        Broadcasts to ``(B, h, L, S)``: True where a query may attend to a key.
    scaled, transposed : bool
        Known wrong answers, to name them: ``scaled=False`` leaves out the division by :math:`\sqrt{d_k}`,
        ``transposed=False`` splits and merges the heads by a reshape alone.

    Returns
    -------
    (ndarray, ndarray)
        The output ``(B, L, d_model)`` and the attention weights ``(B, h, L, S)``.
    """
    B, L, d_model = np.shape(q)
    Q, K, V = (heads_np(P, x, name, heads, transposed) for x, name in ((q, "W_Q"), (k, "W_K"), (v, "W_V")))
    scores = Q @ K.transpose(0, 1, 3, 2) / (math.sqrt(d_model // heads) if scaled else 1.0)  # (B, h, L, S)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    A = np.exp(scores - scores.max(-1, keepdims=True))
    A = A / A.sum(-1, keepdims=True)
    head = A @ V  # (B, h, L, d_k)
    merged = (head.transpose(0, 2, 1, 3) if transposed else head).reshape(B, L, d_model)
    return merged @ P["W_O.weight"] + P.get("W_O.bias", 0.0), A


def pe_np(max_len, d_model, exponent=lambda col, d: (col - col % 2) / d, swap=False, blocks=False, start=0):
    """The sinusoidal positional encoding's table ``(max_len, d_model)`` in float64 NumPy, its rows the positions
    ``start`` to ``start + max_len - 1``: column ``col`` is sin (even) or cos (odd) of pos / 10000^exponent, the
    formula's exponent 2i/d_model shared by columns 2i and 2i + 1. The options give the known wrong tables, to name
    them (``MISTAKES`` in tests/test_functional_positional.py)."""
    pos = np.arange(start, start + max_len, dtype=np.float64)[:, None]
    cols = np.arange(d_model)
    if blocks:  # all the sines, then all the cosines: column c is pair c (c < half) or c - half
        half = (d_model + 1) // 2
        pair, cosine = np.where(cols < half, cols, cols - half), cols >= half
    else:
        pair, cosine = cols // 2, cols % 2 == 1
    angle = pos / 10000.0 ** exponent(2 * pair + cosine, d_model)  # 2 * pair + cosine: its interleaved column
    return np.where(cosine != swap, np.cos(angle), np.sin(angle))


#: the known wrong answers of layer norm (the keywords of layer_norm_np that compute each) and what a message says
LAYER_NORM_MISTAKES = (
    ({"unbiased": True}, "the unbiased variance (divided by d - 1)?"),
    ({"eps_outside": True}, "eps outside the square root?"),
    ({"gamma": None}, "gamma left out?"),
    ({"beta": None}, "beta left out?"),
    ({"one_pass": True}, "sigma^2 as mean(x^2) - mu^2, which in float32 loses every digit of the variance of a row "
                         "far from zero: take the mean of (x - mu)^2?"),
)

#: masks for attention's scores (2, 3, 4, S) (batch, heads, queries, keys) as attention passes them, broadcast
#: views read through their strides; A7's graded tests (tests/test_kernels_a7.py) and the kernels' own
#: (tests/test_kernels.py) run each
ATTENTION_MASKS = {
    "none": lambda S: None,
    "padding": lambda S: (np.arange(S) < np.array([[2], [0]]))[:, None, None, :],  # batch 1 sees no key at all
    "causal": lambda S: np.tril(np.ones((4, S), dtype=bool)),
    "each-query": lambda S: np.random.default_rng(5).uniform(size=(2, 1, 4, S)) < 0.3,  # some see no key
    "keys-broadcast": lambda S: np.array([True, False, True, True]).reshape(4, 1),  # one per query: key stride 0
    "every-axis": lambda S: np.random.default_rng(6).uniform(size=(2, 3, 4, S)) < 0.6,  # each batch, head, query
}

#: a few dozen hand-written English-French pairs (a Tatoeba export in miniature), in tests/data; the fixture
#: ``pairs_file`` (tests/conftest.py) writes them to a file
PAIRS = (Path(__file__).parent / "data" / "en-fr.tsv").read_text(encoding="utf-8")
