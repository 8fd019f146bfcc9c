r"""Decoding: turning a trained model's next-token scores into whole sequences.

A Transformer's decoder scores the next token given the tokens so far; generating means calling it
again and again, one new position at a time (autoregressive decoding, paper section 3: "consuming
the previously generated symbols as additional input when generating the next").

===============================  ===================================================================
:func:`greedy_decode`            encoder-decoder: the most likely token at every step
:func:`beam_search`              encoder-decoder: keep the ``beam_size`` best partial sequences
                                 (paper 6.1: beam size 4, length penalty :math:`\alpha = 0.6`)
:func:`generate`                 decoder-only LM: greedy, temperature, top-k and nucleus (top-p) sampling
===============================  ===================================================================

**The key/value cache.** At step :math:`t` the new position's query needs the keys and values of
positions :math:`0..t`; those of :math:`0..t-1` were computed at earlier steps and have not
changed (the causal mask keeps an old position from seeing a new one). With ``use_cache=True`` each
attention layer keeps them (:class:`~minitransformer.nn.KVCache`) and a step runs the decoder on
the one new position: :math:`O(t)` work per step instead of :math:`O(t^2)`. ``use_cache=False``
runs the whole prefix every step; both give the same tokens (a test checks it).

Everything is computed with the model's backend (``xp``), the sampling noise included, so the same
code decodes on NumPy, CuPy and array-api-strict. The only host reads are one boolean per step
(greedy search: has every sequence ended? beam search: may every source stop?).
"""

from __future__ import annotations

import math

from .. import functional as F
from .._arguments import require_int, require_real
from ..autograd import Tensor
from ..backend import clip, dtype_name
from ..data.tokenizers import BOS, EOS, PAD
from ..functional._checks import require_token_ids
from ..nn import Module, evaluating

__all__ = ["greedy_decode", "beam_search", "generate", "length_penalty"]


#: the advice for rows of different lengths, by what they are; a source's padding is hidden by its mask, a prompt's
#: is not (generate would continue a padded prompt after its pads)
_RAGGED = {"src": "give them one at a time, or padded to one length (the mask hides the padding): "
                  "data.pad_sequences(rows, pad_id)",
           "prompt": "give them one at a time, or of one length: generate has no padding mask, and would continue a "
                     "padded prompt after its pads"}


def _ids(op: str, name: str, ids, like) -> Tensor:
    """Token ids as an int64 ``(batch, seq)`` Tensor on the model's backend (a 1-D input becomes batch 1).

    Floats are refused, whole ones too (``[5.7, 6.2]`` would be truncated to other tokens), as the models refuse
    them: integers of any kind (Python ints, NumPy or Tensor integer arrays) are widened to int64, nothing else
    is cast. Rows of different lengths, or rows mixed with single ids, are refused saying what to do (``_RAGGED``,
    by ``name``: ``"src"`` or ``"prompt"``)."""
    def is_row(row):  # a sequence; not an int, nor a 0-d array (which has __len__ but no length)
        return hasattr(row, "__len__") and getattr(row, "ndim", 1) != 0

    if isinstance(ids, list | tuple) and any(is_row(row) for row in ids):
        single = [i for i, row in enumerate(ids) if not is_row(row)]
        if single:
            raise ValueError(f"{op}: {name} mixes rows of token ids with single ids ({name}[{single[0]}] is "
                             f"{ids[single[0]]!r}): give rows (batch, seq), or one sequence (seq,)")
        lengths = sorted({len(row) for row in ids})
        if len(lengths) > 1:
            raise ValueError(f"{op}: the rows of {name} have different lengths ({', '.join(map(str, lengths))}); "
                             f"{_RAGGED[name]}")
    t = ids if isinstance(ids, Tensor) else Tensor(ids, backend=like.backend)
    if t.ndim == 1:
        t = t.reshape(1, t.shape[0])
    if t.ndim != 2 or t.shape[1] == 0:
        raise ValueError(f"{op}: expected token ids of shape (batch, seq) with seq >= 1, got {t.shape}")
    require_token_ids(op, name, t)
    return t if t.dtype_name == "int64" else t.to("int64")


def _check_model(op: str, model, seq2seq: bool, **special) -> None:
    """Refuse a model of the wrong kind by name, saying which decoding function fits it, and special token ids
    (``bos_id``, ``eos_id``, ...) outside its vocabulary (an ``eos_id`` never produced would never stop a row).

    :func:`greedy_decode` and :func:`beam_search` run an encoder-decoder (``encode``, ``decode``); :func:`generate`
    a decoder-only language model (``model(ids, cache=...)``); both need ``new_cache()`` and ``max_len``. The
    vocabulary is read from the model's ``config`` (``tgt_vocab``, or ``vocab``) where it has one. Python only."""
    name = type(model).__name__
    if not isinstance(model, Module):
        raise TypeError(f"{op}: model must be a Module, got {name}")
    encoder_decoder = hasattr(model, "encode") and hasattr(model, "decode")
    if seq2seq and not encoder_decoder:
        fits = "; continue a language model's prompt with generate" if hasattr(model, "new_cache") else ""
        raise TypeError(f"{op}: decodes an encoder-decoder (a Transformer, with encode() and decode()), got a "
                        f"{name}{fits}")
    if not seq2seq and encoder_decoder:
        raise TypeError(f"{op}: continues a decoder-only language model (a DecoderOnlyLM), got a {name}, an "
                        "encoder-decoder: decode it with greedy_decode or beam_search")
    missing = [a for a in ("new_cache", "max_len") if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{op}: a {name} cannot decode: it has no {' and no '.join(missing)} (a "
                        f"{'Transformer' if seq2seq else 'DecoderOnlyLM'} has new_cache() and max_len)")
    config = getattr(model, "config", None)
    vocab = config.get("tgt_vocab" if seq2seq else "vocab") if isinstance(config, dict) else None
    for what, token in special.items():
        if token is None:
            continue
        require_int(op, what, token, low=0)
        if isinstance(vocab, int) and token >= vocab:
            raise ValueError(f"{op}: {what}={token} is outside the {name}'s vocabulary of {vocab} (ids 0..{vocab - 1})")


def _first_param(model):
    p = next(iter(model.parameters()), None)
    if p is None:
        raise ValueError(f"decoding: {type(model).__name__} has no parameters")
    return p


def _max_steps(op: str, max_len, default: int, model) -> int:
    steps = default if max_len is None else max_len
    steps = require_int(op, "max_len", steps, low=1)  # a Python int: array-api-strict takes no NumPy one in shapes
    if steps > model.max_len:  # the decoder reads <bos> and all generated tokens but the last: `steps` positions
        raise ValueError(f"{op}: max_len={steps} needs {steps} decoder positions, the model has max_len="
                         f"{model.max_len}")
    return steps


def _encode(model, op, src, src_mask, pad_id):
    src = _ids(op, "src", src, _first_param(model))
    if src_mask is None:
        src_mask = F.padding_mask(src, pad_id)  # (B, 1, 1, S): real source tokens
    memory = model.encode(src, src_mask)  # (which checks a src_mask given)
    return src, src_mask if isinstance(src_mask, Tensor) else Tensor(src_mask, backend=src.backend), memory


def _limits(op: str, max_len, model, src, src_mask):
    r"""The steps to run, a Python int, and each source's own most tokens, ``(B,)`` int64: ``max_len`` for every
    source where it is given, else :math:`S_b + 10` for source :math:`b` of :math:`S_b` real tokens (those
    ``src_mask`` lets the decoder attend), at most ``model.max_len``. A source's output does not depend on what it is
    batched with: the padded width :math:`S` would give a short source a longer limit next to a long one. The steps,
    :math:`\min(S + 10, \text{model.max\_len})`, bound every source's limit without reading it back from the device.
    """
    steps = _max_steps(op, max_len, min(src.shape[1] + 10, model.max_len), model)
    xp = src.backend.xp
    B, S = src.shape
    if max_len is not None:
        return steps, xp.full((B,), steps, dtype=xp.int64)
    m = src_mask.data  # bool, broadcasts to the scores (B, heads, L, S)
    m = xp.reshape(m, (1,) * (4 - m.ndim) + tuple(m.shape))
    m = xp.broadcast_to(m, (B, m.shape[1], m.shape[2], S))
    real = xp.max(xp.reshape(xp.sum(xp.astype(m, xp.int64), axis=-1), (B, -1)), axis=1)  # (B,): most of any head
    return steps, clip(xp, real + 10, high=model.max_len)


# ------------------------------------------------------------------ encoder-decoder
def greedy_decode(model, src, src_mask=None, max_len: int | None = None, bos_id: int = BOS, eos_id: int = EOS,
                  pad_id: int = PAD, use_cache: bool = True) -> Tensor:
    r"""Decode by taking the most likely token at every step: :math:`y_t = \arg\max_v p(v \mid y_{<t}, x)`.

    Parameters
    ----------
    model : Transformer
        With ``encode(src, src_mask)``, ``decode(tgt_in, memory, src_mask, tgt_mask, cache)``, ``new_cache()``.
    src : Tensor or array_like
        Source ids ``(batch, S)`` (padded with ``pad_id``) or one sequence ``(S,)``.
    src_mask : Tensor, optional
        ``(batch, 1, 1, S)``; by default from the padding.
    max_len : int, optional
        Most tokens to generate (``<eos>`` included), for every source; by default each source's own
        :math:`S_b + 10`, :math:`S_b` its real tokens (not the batch's padded width: a source decodes as it does
        alone), at most the model's ``max_len``. The paper (6.1) allows :math:`S_b + 50` for real translation.
    bos_id, eos_id, pad_id : int
        The ids of ``<bos>`` (the decoder's first input), ``<eos>`` (ends a row) and ``<pad>``.
    use_cache : bool
        Decode one new position per step with the key/value cache (True) or run the whole prefix.

    Returns
    -------
    Tensor
        ``(batch, T)`` int64, the generated tokens without ``<bos>``; each row ends at its ``<eos>`` or its
        source's limit, padded with ``pad_id`` after it. ``T <= max_len``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> model = nn.Transformer(14, 14, d_model=16, heads=2, d_ff=32, num_encoder_layers=1,
    ...                        num_decoder_layers=1, max_len=20)          # untrained: any tokens
    >>> src = mt.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])                    # two sources, the second padded
    >>> out = greedy_decode(model, src, max_len=6)
    >>> out.shape[0], out.shape[1] <= 6, out.dtype_name
    (2, True, 'int64')
    >>> bool((greedy_decode(model, src, max_len=6, use_cache=False).numpy() == out.numpy()).all())
    True
    """
    op = "greedy_decode"
    _check_model(op, model, seq2seq=True, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    with evaluating(model):
        src, src_mask, memory = _encode(model, op, src, src_mask, pad_id)
        steps, limit = _limits(op, max_len, model, src, src_mask)  # limit (B,): each source's own most tokens
        be = memory.backend
        xp = be.xp
        B = src.shape[0]
        ys = xp.full((B, 1), bos_id, dtype=xp.int64)  # (B, 1): <bos>
        done = xp.zeros((B,), dtype=xp.bool)
        cache = model.new_cache() if use_cache else None
        for t in range(1, steps + 1):  # t: the tokens each row has after this step
            new = ys[:, -1:] if use_cache else ys  # with a cache only the newest position goes in
            logits = model.decode(Tensor(new, backend=be), memory, src_mask, None, cache)  # (B, t, V)
            # the step: y_t = arg-max_v of the newest position's logits, (B,); a row that has ended takes pad_id;
            # done marks the rows that have produced eos_id; ys (B, t) -> (B, t + 1)
            ### BEGIN SOLUTION A6: y = argmax of logits.data[:, -1, :] (B,), pad_id where done; update done and ys
            token = xp.argmax(logits.data[:, -1, :], axis=-1)  # (B,)
            token = xp.where(done, xp.asarray(pad_id, dtype=token.dtype), token)
            done = done | (token == eos_id)
            ys = xp.concat([ys, xp.reshape(token, (B, 1))], axis=1)
            ### END SOLUTION
            done = done | (limit <= t)  # a row at its source's own limit ends too
            if be.read_bool(xp.all(done)):  # the one host read per step: stop once every row has ended
                break
        return Tensor(ys[:, 1:], backend=be)


def length_penalty(length, alpha: float):
    r"""The length penalty of Wu et al. 2016 (GNMT, eq. 14), used by the Transformer paper (6.1, :math:`\alpha = 0.6`).

    .. math:: lp(Y) = \frac{(5 + |Y|)^\alpha}{(5 + 1)^\alpha}

    A hypothesis is ranked by :math:`\log P(Y \mid X) / lp(Y)`: without it, every extra token adds
    a negative log-probability and beam search prefers short outputs. :math:`\alpha = 0` turns it off.

    Parameters
    ----------
    length : int, float or array
        :math:`|Y| \ge 1`, the hypothesis' length (an array gives one penalty per element; its values are not
        checked: that would make a GPU wait).
    alpha : float
        :math:`\alpha` >= 0.

    Returns
    -------
    float or array
        :math:`lp(Y)`, of the shape of ``length``; 1 at length 1.

    Examples
    --------
    >>> length_penalty(1, 0.6), round(length_penalty(7, 0.6), 4)    # ((5 + 7) / 6)^0.6 = 2^0.6
    (1.0, 1.5157)
    """
    alpha = require_real("length_penalty", "alpha", alpha, low=0.0)
    if not hasattr(length, "shape"):  # a number (an array is beam search's own lengths, never below 1)
        length = require_real("length_penalty", "length", length, low=1.0)  # a hypothesis has its <eos> at least
    ### BEGIN SOLUTION A6: lp = (5 + |Y|)^alpha / (5 + 1)^alpha, of a number or element by element of an array
    return ((5.0 + length) / 6.0) ** alpha
    ### END SOLUTION


def beam_search(model, src, beam_size: int = 4, src_mask=None, max_len: int | None = None, alpha: float = 0.0,
                bos_id: int = BOS, eos_id: int = EOS, pad_id: int = PAD, use_cache: bool = True,
                return_scores: bool = False):
    r"""Beam search: extend the ``beam_size`` most likely unfinished outputs step by step, and keep the
    ``beam_size`` best finished ones apart.

    With :math:`k` = ``beam_size``, each source keeps :math:`k` *alive* hypotheses :math:`Y` (none has produced
    ``<eos>``) with scores :math:`s(Y) = \log P(Y \mid X) = \sum_t \log p(y_t \mid y_{<t}, X)`, and a set of at most
    :math:`k` *finished* ones (ended by ``<eos>``), ranked by :math:`s(Y) / lp(|Y|)` (:func:`length_penalty`,
    ``alpha``; :math:`|Y|` counts the ``<eos>``). Keeping the finished apart is what tensor2tensor's beam search,
    which the paper used (6.1: :math:`k = 4`, :math:`\alpha = 0.6`), GNMT's and Hugging Face's ``BeamSearchScorer`` do;
    which ``<eos>`` may finish (step 2) is Hugging Face's rule (tensor2tensor offers every one of the :math:`2k`).
    Step :math:`t`:

    1. score the :math:`k \times V` one-token extensions :math:`s(Y) + \log p(v \mid Y, X)` of the alive ones and
       take the :math:`2k` best (``_best_extensions``): at most :math:`k` of them end with ``<eos>`` (one a
       hypothesis), so :math:`k` that go on remain;
    2. those of the :math:`k` best that end with ``<eos>`` are offered to the finished set at
       :math:`s / lp(t)`, which keeps its :math:`k` best (``_finish``; of equal ones, the one found earlier,
       then the better-ranked candidate). An ``<eos>`` ranked below the :math:`k` best of the :math:`2k` is not:
       the beam itself would not have kept it (Hugging Face's rule);
    3. the :math:`k` best of the others, by :math:`s`, are the new alive ones (their rows and key/value caches
       follow them);
    4. stop once, for every source, :math:`k` have finished and the best alive one cannot beat the worst of them:
       :math:`s_{best} / lp(\text{max\_len}) \le` the worst finished :math:`s / lp` (:math:`s` only falls as
       tokens are added, and :math:`lp(|Y|) \le lp(\text{max\_len})` for :math:`\alpha \ge 0`).

    The winner is the best :math:`s / lp` of the finished ones and, where the search ran to ``max_len``, the alive
    ones, ranked at their own length (they did not end); of equal ones, a finished one. An ended hypothesis never
    takes the place of an alive one: the search goes on with :math:`k` alive hypotheses however many have ended.

    With ``beam_size=1`` and ``alpha=0`` this is exactly :func:`greedy_decode`: the one alive hypothesis is the
    arg-max at every step; an ``<eos>`` is offered only when it is the best candidate, so the first finished
    hypothesis is greedy's output, and the alive one that goes on scores no more than it, so the search stops
    there (with ``alpha=0`` the bound is :math:`s_{best} \le` the finished :math:`s`). With ``beam_size=1`` and
    ``alpha > 0`` it may go on past greedy's ``<eos>``: an output that ends later has a larger :math:`lp`, and
    where its :math:`s / lp` is better it wins. That is the search doing what it is asked, not a fault.

    The :math:`k` alive hypotheses of all sources run as one batch of :math:`B k` rows (source :math:`b`'s are rows
    :math:`bk .. bk + k - 1`, best first); after each step the rows (and their key/value caches) are reordered to
    follow the hypotheses kept. The only host read is one boolean per step (may every source stop?).

    Parameters
    ----------
    model, src, src_mask, max_len, bos_id, eos_id, pad_id, use_cache
        As :func:`greedy_decode` (``max_len`` each source's own :math:`S_b + 10` by default; the paper's
        translations allow :math:`S_b + 50`). A source is decided at its own limit exactly as a search run alone to
        ``max_len`` = that limit is (``_winners`` then), so its winner does not depend on what it is batched with.
    beam_size : int
        :math:`k` (the paper uses 4).
    alpha : float
        The length penalty's :math:`\alpha` (the paper uses 0.6, as ``minitransformer generate --beam`` does by
        default; 0, the default here, ranks by :math:`\log P` alone, the plain beam search).
    return_scores : bool
        Also return each winner's :math:`\log P(Y \mid X)` (not divided by :math:`lp`), ``(batch,)``.

    Returns
    -------
    Tensor or (Tensor, Tensor)
        ``(batch, T)`` int64, the winners' tokens without ``<bos>``, each padded with ``pad_id`` after its
        ``<eos>``; ``T <= max_len`` is the number of steps the search ran. With ``return_scores``,
        ``(tokens, scores)``, ``scores`` ``(batch,)`` float.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> model = nn.Transformer(14, 14, d_model=16, heads=2, d_ff=32, num_encoder_layers=1,
    ...                        num_decoder_layers=1, max_len=20)          # untrained: any tokens
    >>> src = mt.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])                    # two sources, the second padded
    >>> tokens, scores = beam_search(model, src, beam_size=3, max_len=6, alpha=0.6, return_scores=True)
    >>> tokens.shape[0], scores.shape, bool((scores.numpy() <= 0).all())    # log-probabilities
    (2, (2,), True)
    >>> greedy = greedy_decode(model, src, max_len=6)
    >>> bool((beam_search(model, src, beam_size=1, max_len=6).numpy() == greedy.numpy()).all())
    True
    """
    op = "beam_search"
    _check_model(op, model, seq2seq=True, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    beam_size = require_int(op, "beam_size", beam_size, low=1)
    alpha = require_real(op, "alpha", alpha, low=0.0)
    k = beam_size
    with evaluating(model):
        src, src_mask, memory = _encode(model, op, src, src_mask, pad_id)
        steps, limit = _limits(op, max_len, model, src, src_mask)  # limit (B,): each source's own most tokens
        be = memory.backend
        xp = be.xp
        B = src.shape[0]
        rows = xp.reshape(xp.broadcast_to(xp.reshape(xp.arange(B), (B, 1)), (B, k)), (B * k,))  # source of each row
        memory = Tensor(xp.take(memory.data, rows, axis=0), backend=be)  # (B k, S, d_model)
        src_mask = Tensor(xp.take(src_mask.data, rows, axis=0), backend=be)
        # the alive hypotheses, (B k, 1 + t): <bos> y_1 .. y_t, and their log P; only the first of a source's k is
        # alive at the start (the others would repeat it: -inf keeps them out)
        ys = xp.full((B * k, 1), bos_id, dtype=xp.int64)
        first = xp.where(xp.arange(k) == 0, xp.zeros((k,), dtype=xp.float32), xp.full((k,), -math.inf,
                                                                                        dtype=xp.float32))
        scores = xp.reshape(xp.broadcast_to(first, (B, k)), (B * k,))
        # the finished hypotheses, k places a source, best s / lp first: tokens (B k, 1 + t) padded with pad_id
        # after their <eos>, log P, and s / lp(|Y|) (-inf: a place still empty)
        finished = (xp.full((B * k, 1), bos_id, dtype=xp.int64), xp.full((B * k,), -math.inf, dtype=xp.float32),
                    xp.full((B * k,), -math.inf, dtype=xp.float32))
        cache = model.new_cache() if use_cache else None
        lp_max = length_penalty(xp.astype(limit, xp.float32), alpha)  # (B,): the largest lp a source's can reach
        # a source is decided at its own limit, as a search run to it ends: its winner (tokens padded to 1 + steps
        # and log P) is kept, whatever later steps, run for longer sources, do with its hypotheses
        decided = xp.zeros((B,), dtype=xp.bool)
        won_ys, won_scores = xp.full((B, 1 + steps), pad_id, dtype=xp.int64), xp.zeros((B,), dtype=xp.float32)
        ends = set(be.to_host(limit).tolist())  # the steps some source is decided at (one read, before the loop)
        stopped = False
        for t in range(1, steps + 1):  # t: the length the hypotheses reach at this step
            new = ys[:, -1:] if use_cache else ys
            logits = model.decode(Tensor(new, backend=be), memory, src_mask, None, cache)  # (B k, t, V)
            logp = F.log_softmax(logits[:, -1, :], axis=-1).data  # (B k, V): log p(v | Y, X)
            cand_scores, parent, token = _best_extensions(xp, scores, logp, k)  # (B n,) each, n = min(2k, k V)
            cand_ys = xp.concat([xp.take(ys, parent, axis=0), xp.reshape(token, (-1, 1))], axis=1)  # (B n, 1 + t)
            ended = token == eos_id
            finished = _finish(xp, finished, cand_ys, cand_scores, ended, length_penalty(t, alpha), k, pad_id)
            # the new alive ones: each source's k best candidates (by s) that do not end, n = cand_scores.shape[0] // B
            # a source (an <eos> one gets -inf: where fewer than k go on, it fills a place, not alive); ys, scores and
            # parent become the kept rows', (B k,) each: _reorder makes the cache follow parent
            ### BEGIN SOLUTION A6: keep (B k,): a source's k best of its n by s, <eos> ones out; ys, scores, parent
            n = cand_scores.shape[0] // B  # 2k candidates a source (k V where that is fewer)
            going_on = xp.where(ended, xp.asarray(-math.inf, dtype=cand_scores.dtype), cand_scores)
            keep = xp.argsort(xp.reshape(going_on, (B, n)), axis=-1, descending=True, stable=True)[:, :k]  # (B, k)
            keep = _rows(xp, keep, n)  # (B k,): rows of the B n
            # going_on, not cand_scores: where fewer than k go on, an <eos> one fills a place at -inf, not alive
            ys, scores, parent = (xp.take(a, keep, axis=0) for a in (cand_ys, going_on, parent))
            ### END SOLUTION
            if cache is not None:
                _reorder(cache, parent)
            if t in ends:
                now = limit == t  # (B,): the sources whose own limit is this step
                win_ys, win_scores = _winners(xp, finished, ys, scores, length_penalty(t, alpha), k, alive=True)
                win_ys = xp.concat([win_ys, xp.full((B, steps - t), pad_id, dtype=win_ys.dtype)], axis=1)
                won_ys = xp.where(xp.reshape(now, (B, 1)), win_ys, won_ys)
                won_scores, decided = xp.where(now, win_scores, won_scores), decided | now
            if be.read_bool(xp.all(_may_stop(xp, scores, finished[2], lp_max, k) | decided)):  # the host read
                stopped = True
                break
        tokens, scores = _winners(xp, finished, ys, scores, length_penalty(t, alpha), k, alive=not stopped)
        tokens = xp.where(xp.reshape(decided, (B, 1)), won_ys[:, :1 + t], tokens)
        scores = xp.where(decided, won_scores, scores)
        tokens = Tensor(tokens[:, 1:], backend=be)
        return (tokens, Tensor(scores, backend=be)) if return_scores else tokens


def _best_extensions(xp, scores, logp, k: int):
    r"""Each source's ``n = min(2k, k V)`` best one-token extensions :math:`s(Y) + \log p(v \mid Y, X)`, best first.

    Parameters
    ----------
    scores : array
        ``(B k,)`` the alive hypotheses' :math:`s(Y)` (source ``b``'s in rows ``b k .. b k + k - 1``; ``-inf``:
        not alive).
    logp : array
        ``(B k, V)`` :math:`\log p(v \mid Y, X)` of every token after each.

    Returns
    -------
    tuple of arrays
        ``(B n,)`` each, source ``b``'s ``n`` in rows ``b n ..``: the candidates' scores; ``parent``, the row (of the
        ``B k``) each extends; ``token``, the token that extends it. Of equal scores, the lower row, then the lower
        token, first.
    """
    # a stable sort, best first (ties in index order): xp.argsort(x, axis=-1, descending=True, stable=True)
    # and _rows(xp, index, width) turns positions within each source's rows into rows of the whole batch
    ### BEGIN SOLUTION A6: candidates (B, k V) = s(Y) + log p(v | Y); best (B, n), stable sort; parent b k + i // V
    B, V = scores.shape[0] // k, logp.shape[-1]
    n = min(2 * k, k * V)
    candidates = xp.reshape(xp.reshape(scores, (B * k, 1)) + logp, (B, k * V))  # (B, k V)
    best = xp.argsort(candidates, axis=-1, descending=True, stable=True)[:, :n]  # (B, n): ties -> first
    cand_scores = xp.take(xp.reshape(candidates, (B * k * V,)), _rows(xp, best, k * V), axis=0)  # (B n,)
    parent = _rows(xp, best // V, k)  # (B n,): the row each extends
    return cand_scores, parent, xp.reshape(best % V, (B * n,))
    ### END SOLUTION


def _finish(xp, finished, cand_ys, cand_scores, ended, lp: float, k: int, pad_id: int):
    r"""The finished set after a step: each source's ``k`` best by :math:`s / lp(|Y|)` of its finished hypotheses
    and the candidates among its ``k`` best that end with ``<eos>``.

    Parameters
    ----------
    finished : tuple of arrays
        Tokens ``(B k, t)`` (one position shorter than the candidates') padded with ``pad_id`` after ``<eos>``,
        :math:`s` ``(B k,)`` and :math:`s / lp` ``(B k,)`` (``-inf``: an empty place), each source's best first.
    cand_ys, cand_scores, ended : array
        The step's candidates (``_best_extensions``): tokens ``(B n, 1 + t)``, :math:`s` ``(B n,)``, and whether
        each ends with ``<eos>`` ``(B n,)``; a source's best first.
    lp : float
        :math:`lp(t)`, the penalty at the candidates' length.

    Returns
    -------
    tuple of arrays
        As ``finished``, the tokens one position longer ``(B k, 1 + t)``. Of equal :math:`s / lp`, the one found
        at an earlier step first, then the better-ranked candidate (a stable sort of the finished set followed by
        the candidates).
    """
    # the finished tokens (finished[0]) take a column of pad_id; a candidate is offered at s / lp where it ends and
    # is among its source's first k (of n), else at -inf (its s may stay: s / lp alone ranks); each source's k best
    # of its finished, then its candidates (_per_source), by xp.argsort(..., descending=True, stable=True)
    ### BEGIN SOLUTION A6: pad finished[0]; offered = s / lp if ended and among the k best, else -inf; k best of both
    done_ys, done_scores, done_norm = finished
    B = done_scores.shape[0] // k
    n = cand_scores.shape[0] // B
    done_ys = xp.concat([done_ys, xp.full((B * k, 1), pad_id, dtype=done_ys.dtype)], axis=1)  # pad to 1 + t
    in_beam = xp.reshape(xp.broadcast_to(xp.arange(n) < k, (B, n)), (B * n,))  # among the source's k best
    offered = xp.where(ended & in_beam, cand_scores / lp, xp.asarray(-math.inf, dtype=cand_scores.dtype))  # (B n,)
    norm = xp.concat([xp.reshape(done_norm, (B, k)), xp.reshape(offered, (B, n))], axis=1)  # (B, k + n)
    best = xp.argsort(norm, axis=-1, descending=True, stable=True)[:, :k]  # (B, k): the earlier found first
    pick = _rows(xp, best, k + n)  # (B k,)
    both = (_per_source(xp, done_ys, cand_ys, B), _per_source(xp, done_scores, cand_scores, B),
            _per_source(xp, done_norm, offered, B))  # (B (k + n), ...): a source's finished, then its candidates
    return tuple(xp.take(a, pick, axis=0) for a in both)
    ### END SOLUTION


def _rows(xp, index, width: int):
    """Rows of the whole batch, ``(B m,)``, of ``index`` ``(B, m)``: positions within each source's ``width`` rows
    (source ``b``'s rows are ``b width .. b width + width - 1``)."""
    B, m = index.shape
    return xp.reshape(index + xp.reshape(xp.arange(B) * width, (B, 1)), (B * m,))


def _per_source(xp, first, second, B: int):
    """Two arrays of ``B`` sources' rows, ``(B m, ...)`` and ``(B n, ...)``, as one ``(B (m + n), ...)``: source
    ``b``'s ``m`` rows of ``first``, then its ``n`` of ``second``."""
    rest = tuple(first.shape[1:])
    if tuple(second.shape[1:]) != rest:
        raise ValueError(f"_per_source: the two arrays' rows must have one shape, got (B m, ...) = "
                         f"{tuple(first.shape)} and (B n, ...) = {tuple(second.shape)}: _finish pads the finished "
                         "tokens (B k, t) with a column of pad_id to the candidates' (B n, 1 + t) first")
    m, n = first.shape[0] // B, second.shape[0] // B
    both = xp.concat([xp.reshape(first, (B, m, *rest)), xp.reshape(second, (B, n, *rest))], axis=1)
    return xp.reshape(both, (B * (m + n), *rest))


def _may_stop(xp, scores, done_norm, lp_max, k: int):
    r"""Whether each source's search may stop, ``(B,)`` bool: ``k`` have finished and the best alive one cannot beat
    the worst of them, :math:`s_{best} / lp(\text{max\_len}) \le s_{worst} / lp(|Y_{worst}|)`.

    ``scores`` ``(B k,)`` are the alive :math:`s`, ``done_norm`` ``(B k,)`` the finished :math:`s / lp`, each
    source's best first (an empty place is ``-inf``, so a source with fewer than ``k`` finished goes on, unless its
    alive ones are all ``-inf`` too: none can go on); ``lp_max`` ``(B,)``, each source's :math:`lp` at its own
    ``max_len``."""
    ### BEGIN SOLUTION A6: the alive best (each source's first) / lp_max <= the worst finished (each source's last)
    B = scores.shape[0] // k
    return xp.reshape(scores, (B, k))[:, 0] / lp_max <= xp.reshape(done_norm, (B, k))[:, k - 1]
    ### END SOLUTION


def _winners(xp, finished, ys, scores, lp: float, k: int, alive: bool):
    r"""Each source's best :math:`s / lp(|Y|)` of its finished hypotheses and, where ``alive``, its alive ones at
    their own length (``lp`` = :math:`lp(t)`, none has ended): tokens ``(B, 1 + t)`` and :math:`s` ``(B,)``.

    ``finished`` and ``ys`` ``(B k, 1 + t)``, ``scores`` ``(B k,)`` as in :func:`beam_search`. Of equal ones, the
    finished one (found first) wins. A search stopped early leaves the alive ones out: none of them, and none of
    their extensions, can beat the finished (``_may_stop``)."""
    # the finished are ranked at their own length (finished[2] holds s / lp(|Y|)), the alive at lp (none has ended)
    ### BEGIN SOLUTION A6: norm (B, 2k): finished[2], then alive s / lp (-inf unless alive); winner = first argmax
    done_ys, done_scores, done_norm = finished
    B = scores.shape[0] // k
    alive_norm = scores / lp if alive else xp.full(scores.shape, -math.inf, dtype=scores.dtype)
    norm = xp.reshape(_per_source(xp, done_norm, alive_norm, B), (B, 2 * k))
    winner = _rows(xp, xp.reshape(xp.argmax(norm, axis=-1), (B, 1)), 2 * k)  # (B,): the first of equal best
    return (xp.take(_per_source(xp, done_ys, ys, B), winner, axis=0),
            xp.take(_per_source(xp, done_scores, scores, B), winner, axis=0))
    ### END SOLUTION


def _reorder(cache: list, parent) -> None:
    """Make every self-attention cache follow the surviving hypotheses: row ``i`` takes row ``parent[i]``.

    The cross-attention caches hold the encoder's output, the same for all hypotheses of a source,
    and hypotheses never move between sources, so they stay as they are.
    """
    for layer in cache:
        kv = layer["self_attn"]
        if kv.K is not None:
            xp = kv.K.backend.xp
            kv.K = Tensor(xp.take(kv.K.data, parent, axis=0), backend=kv.K.backend)
            kv.V = Tensor(xp.take(kv.V.data, parent, axis=0), backend=kv.V.backend)


# ------------------------------------------------------------------ decoder-only language model
def generate(model, prompt, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             eos_id: int | None = None, use_cache: bool = True, context: int | None = None,
             seed: int | None = None, top_p: float | None = None) -> Tensor:
    r"""Continue ``prompt`` with a language model, one token at a time.

    Each new token is drawn from :math:`p(v) = \mathrm{softmax}(z / T)_v` over the last position's
    logits :math:`z`, with temperature :math:`T` (``temperature``): :math:`T < 1` sharpens the
    distribution, :math:`T > 1` flattens it, and ``temperature=0`` takes the arg-max (greedy).
    ``top_k`` keeps only the :math:`k` largest logits (the rest get probability 0) before drawing; logits tied with
    the :math:`k`-th largest are all kept, so a row may keep more than :math:`k` (as Hugging Face's
    ``TopKLogitsWarper`` does). ``top_p`` (nucleus sampling, Holtzman et al. 2020) then keeps, in each row, the
    smallest set of most likely tokens whose probabilities :math:`\mathrm{softmax}(z / T)` (after top-k) sum to at
    least :math:`p`, the token that crosses :math:`p` included, as Hugging Face's ``TopPLogitsWarper`` does (and in
    its order: temperature, top-k, top-p); tokens as likely as the last one kept are all kept. Greedy decoding
    (``temperature=0``) takes the arg-max, which both keep: it ignores them.

    The draw is the Gumbel-max trick, :math:`v = \arg\max_v (z_v / T + g_v)` with
    :math:`g_v = -\log(-\log u_v)`, :math:`u_v \sim U(0, 1)`, which samples exactly from
    :math:`\mathrm{softmax}(z / T)`: only an arg-max and the backend's seeded uniform numbers
    (``mt.manual_seed`` makes it repeatable), so it runs on every backend. With ``seed`` the numbers come from a
    generator of the call's own (:meth:`~minitransformer.backend.Backend.new_generator`): the same tokens for the
    same seed whatever else draws random numbers meanwhile, another thread (a server) included.

    The model reads at most ``context`` positions at once (by default ``model.max_len``, the rows of
    its positional encoding): of a longer prompt, its last ``context`` tokens. When the text outgrows
    the window, decoding starts again from the last ``context // 2`` tokens (at least one; the cache is refilled
    from them); the uncached path uses the same windows, so both give the same tokens. A model
    trained on windows of ``T`` tokens has never been trained at positions ``T`` and later: give it
    ``context=T``, or its text falls apart once it is ``T`` tokens long (the ``charlm`` task passes
    its ``seq_len``).

    Parameters
    ----------
    model : DecoderOnlyLM
        ``model(ids, cache=...)`` -> logits ``(batch, T, vocab)``; ``new_cache()``; ``max_len``.
    prompt : Tensor or array_like
        ``(batch, P)`` or ``(P,)`` token ids, ``P >= 1`` (the model reads at most the last ``context``).
    max_new_tokens : int
        How many tokens to add (>= 0).
    temperature : float
        Finite, >= 0; 0 is greedy, and a tiny one approaches it.
    top_k : int, optional
        Draw only among the ``top_k`` most likely tokens (and those tied with the ``top_k``-th); None: among all.
    eos_id : int, optional
        Stop a row at this token (later positions are filled with it); None: always ``max_new_tokens``.
    use_cache : bool
        Run one new position per step with the key/value cache (True) or the whole context.
    context : int, optional
        The most positions the model reads at once, ``1 <= context <= model.max_len``; None: ``model.max_len``.
    seed : int, optional
        Draw from a generator of this call's own seeded with it, leaving the backend's alone; None: the backend's
        generator (``mt.manual_seed``).
    top_p : float, optional
        Draw only among the nucleus, the most likely tokens that together hold at least ``top_p`` of the
        probability, ``0 < top_p <= 1`` (1 keeps every token); None: among all.

    Returns
    -------
    Tensor
        ``(batch, P + max_new_tokens)`` int64 (or shorter when every row has produced ``eos_id``): the
        prompt followed by the new tokens.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mt.manual_seed(0)
    >>> lm = nn.DecoderOnlyLM(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16)   # untrained
    >>> prompt = mt.tensor([[4, 5, 6]])
    >>> mt.manual_seed(1); a = generate(lm, prompt, max_new_tokens=5, temperature=0.8, top_k=5)
    >>> mt.manual_seed(1); b = generate(lm, prompt, max_new_tokens=5, temperature=0.8, top_k=5)
    >>> a.shape, a.numpy()[0, :3]                  # the prompt, then 5 new tokens
    ((1, 8), array([4, 5, 6]))
    >>> bool((a.numpy() == b.numpy()).all())       # the same seed draws the same tokens
    True
    >>> c = generate(lm, prompt, max_new_tokens=5, temperature=0.8, top_k=5, seed=1)   # the call's own generator
    >>> bool((c.numpy() == a.numpy()).all())       # manual_seed(1)'s numbers, without touching the backend's
    True
    """
    op = "generate"
    _check_model(op, model, seq2seq=False, eos_id=eos_id)
    max_new_tokens = require_int(op, "max_new_tokens", max_new_tokens, low=0)
    temperature = require_real(op, "temperature", temperature, low=0.0)  # 0: greedy
    top_k = None if top_k is None else require_int(op, "top_k", top_k, low=1)
    top_p = None if top_p is None else require_real(op, "top_p", top_p, low=0.0, high=1.0, low_open=True)
    window = model.max_len if context is None else require_int(op, "context", context, low=1)
    if window > model.max_len:
        raise ValueError(f"{op}: context={window} is more than the model's max_len={model.max_len}")
    with evaluating(model):
        ids = _ids(op, "prompt", prompt, _first_param(model))
        be = ids.backend
        xp = be.xp
        rng = None if seed is None else be.new_generator(seed, op=op)  # None: the backend's generator
        B, seq = ids.shape[0], ids.data
        done = xp.zeros((B,), dtype=xp.bool)
        start = max(seq.shape[1] - window, 0)  # the context is seq[:, start:]: at most the last `window` tokens
        cache, fed = None, 0  # with a cache: seq[:, start:start + fed] are in it
        for _ in range(max_new_tokens):
            if seq.shape[1] - start > window:  # outgrown: keep the last half (at least one token)
                start = seq.shape[1] - max(window // 2, 1)
                cache = None
            if not use_cache:
                logits = model(Tensor(seq[:, start:], backend=be))
            else:
                if cache is None:
                    cache, fed = model.new_cache(), 0
                logits = model(Tensor(seq[:, start + fed:], backend=be), cache=cache)
                fed = seq.shape[1] - start
            z = logits.data[:, -1, :]  # (B, V) the next token's logits
            token = _pick(be, z, temperature, top_k, rng, top_p=top_p)
            if eos_id is not None:
                token = xp.where(done, xp.asarray(eos_id, dtype=token.dtype), token)
                done = done | (token == eos_id)
            seq = xp.concat([seq, xp.reshape(token, (B, 1))], axis=1)
            if eos_id is not None and be.read_bool(xp.all(done)):
                break
        return Tensor(seq, backend=be)


def _pick(be, z, temperature: float, top_k: int | None, rng=None, top_p: float | None = None):
    """The next token of each row from logits ``z`` ``(B, V)``: arg-max, or a Gumbel-max draw from softmax(z/T)
    (among the ``top_k`` largest logits, then the nucleus of ``top_p``: :func:`_nucleus`) with uniform numbers from
    ``rng`` (None: the backend's generator)."""
    xp = be.xp
    ### BEGIN SOLUTION A6: top-k: in each row of z (B, V), the logits below the row's top_k-th largest become -inf
    if top_k is not None and top_k < z.shape[-1]:
        kth = xp.sort(z, axis=-1, descending=True)[:, top_k - 1 : top_k]  # (B, 1): the k-th largest logit
        z = xp.where(z < kth, xp.asarray(-math.inf, dtype=z.dtype), z)
    ### END SOLUTION
    if temperature == 0:
        return xp.argmax(z, axis=-1)  # (top-k and top-p keep the arg-max: greedy needs neither)
    if top_p is not None:
        z = _nucleus(xp, z, temperature, top_p)  # after top-k and at the temperature, as Hugging Face's order has it
    # u ~ U[0, 1): be.uniform(z.shape, dtype=dtype_name(z.dtype), rng=rng), the backend's generator or the call's
    # (mt.manual_seed or seed= repeat a draw; NumPy's own would not), kept off 0 and 1
    ### BEGIN SOLUTION A6: v ~ softmax(z / T) per row, (B,): argmax(_tempered(xp, z, T) + g), g = -log(-log u)
    u = be.uniform(tuple(z.shape), dtype=dtype_name(z.dtype), rng=rng)  # U[0, 1)
    tiny = 1e-12
    u = clip(xp, u, tiny, 1.0 - 1e-7)  # keep log(u) and log(-log u) finite (backend.clip: no host read on CuPy)
    g = -xp.log(-xp.log(u))  # Gumbel(0, 1) noise, within [-3.4, 16.2]
    return xp.argmax(_tempered(xp, z, temperature) + g, axis=-1)
    ### END SOLUTION


def _nucleus(xp, z, temperature: float, top_p: float):
    r"""Nucleus (top-p) sampling's cut (Holtzman et al. 2020): in each row of ``z`` ``(B, V)``, the logits of the
    tokens outside the smallest set of most likely ones whose probabilities :math:`p = \mathrm{softmax}(z / T)` sum
    to at least ``top_p`` become ``-inf``.

    With :math:`p_{(1)} \ge p_{(2)} \ge \dots` a row's probabilities sorted, token :math:`(i)` is cut where those
    before it already hold ``top_p``, :math:`\sum_{j < i} p_{(j)} \ge` ``top_p``: the token that crosses ``top_p`` is
    kept, as in Hugging Face's ``TopPLogitsWarper``, and so is the most likely, always. Tokens as likely as the last
    one kept are all kept (Hugging Face keeps those its sort puts first), as top-k keeps all those tied with its
    :math:`k`-th. ``top_p = 1`` keeps every token. A sort and a cumulative sum of the array API: no host read.
    """
    if top_p >= 1:
        return z
    e = xp.exp(_tempered(xp, z, temperature))  # (B, V): softmax(z / T) times each row's sum; -inf -> 0
    p = e / xp.sum(e, axis=-1, keepdims=True)  # (B, V)
    p_sorted = xp.sort(p, axis=-1, descending=True)  # (B, V), each row's most likely first
    before = xp.cumulative_sum(p_sorted, axis=-1) - p_sorted  # (B, V): what the more likely tokens hold
    first = xp.arange(p.shape[-1]) == 0  # the most likely: kept even where top_p rounds to 0 in p's dtype
    kept = xp.where((before < top_p) | first, p_sorted, xp.asarray(math.inf, dtype=p.dtype))
    last = xp.min(kept, axis=-1, keepdims=True)  # (B, 1): the probability of the least likely token kept
    return xp.where(p < last, xp.asarray(-math.inf, dtype=z.dtype), z)


def _tempered(xp, z, temperature: float):
    """``(z - max z) / T`` per row, ``(B, V)``: softmax(z / T) up to a constant, finite for every finite ``T > 0``.

    Subtracting the max first makes the largest logit 0 and the others fall towards -inf as ``T -> 0``,
    so sampling approaches the arg-max (greedy) instead of overflowing; masked logits (-inf) stay -inf.
    ``T`` is kept within the dtype's range, and ``d`` is floored at ``floor = -1e4 T`` (no lower than the
    dtype's lowest), so ``d / T >= -1e4``: far below the Gumbel noise's span of 20, the floor changes no
    draw, but ``d / T`` cannot overflow.
    """
    info = xp.finfo(z.dtype)
    T = min(max(float(temperature), float(info.smallest_normal)), float(info.max))
    floor = max(-1e4 * T, float(info.min))
    ### BEGIN SOLUTION A6: d = z - max(z) per row, (B, V); return d / T, d clipped at floor (-1e4 T) first, -inf kept
    d = z - xp.max(z, axis=-1, keepdims=True)  # (B, V) <= 0; -inf where top_k masked
    return xp.where(d == -math.inf, d, clip(xp, d, floor) / T)  # (backend.clip: no host read on CuPy)
    ### END SOLUTION

