"""Decoding: the key/value cache changes nothing but the cost, beam 1 is greedy, beam search finds sequences at
least as likely as greedy's (scored independently here), and sampling draws from softmax(z / T) (top-k cut).

The tests marked ``assignment(6, ...)`` grade A6 (greedy search, beam search, sampling; docs/assignments.md). They
compare with what is computed here from the model's teacher-forced logits alone (one forward pass per prefix, no
decoding code): greedy's arg-max at every step, every output of a 5-token vocabulary enumerated with its
probability, a beam search written hypothesis by hypothesis, GNMT's length penalty, and the shares of tokens drawn
against softmax(z / T), each within six standard errors (a right sampler's share is outside with a probability of
about 2e-9).
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.assignments.strip import BEGIN
from minitransformer.data import BOS, EOS, PAD, pad_sequences
from minitransformer.train import decoding
from minitransformer.train.decoding import (
    _nucleus,
    _pick,
    _tempered,
    beam_search,
    generate,
    greedy_decode,
    length_penalty,
)


@pytest.fixture
def seq2seq():
    mt.manual_seed(3)
    model = nn.Transformer(14, 14, d_model=16, heads=2, d_ff=32, num_encoder_layers=2, num_decoder_layers=2,
                           dropout=0.1, max_len=24)
    src = mt.tensor(pad_sequences([[5, 6, 7, 8, 9], [13, 12, 4], [4, 4, 4, 4, 4, 4, 4]]))  # padded with 0
    return model, src


def _log_prob(model, src, tokens):
    """log P(tokens | src) by teacher forcing, summed in float64 NumPy: each row up to and including <eos>."""
    tokens = np.asarray(tokens)
    rows = []
    for b in range(tokens.shape[0]):
        row = list(tokens[b])
        row = row[: row.index(EOS) + 1] if EOS in row else row
        rows.append(row)
    total = []
    model.eval()
    with mt.no_grad():
        for b, row in enumerate(rows):
            s = src[b:b + 1]
            real = int((s.numpy() != PAD).sum())
            s = s[:, :real]
            logits = model(s, mt.tensor([[1] + row[:-1]])).numpy().astype(np.float64)[0]  # (T, V)
            logp = logits - logits.max(-1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
            total.append(sum(logp[t, tok] for t, tok in enumerate(row)))
    return np.array(total)


@pytest.fixture
def tiny():
    """An untrained encoder-decoder over 5 tokens (<pad> <bos> <eos> and two more), its logits sharpened (x 2) and
    <eos> made likelier (+0.5): its outputs end at different lengths, and greedy and beam search disagree. Four
    sources, padded."""
    return _sharpened(7), mt.tensor(pad_sequences([[4], [3, 4], [3], [4, 4, 4, 4]]))


def _sharpened(seed):
    """The ``tiny`` fixture's model, drawn on NumPy after ``mt.manual_seed(seed)``, on the current backend: the cases
    built on a seed's model (outputs of different lengths, a beam of 4 against 5) hold on every backend, where CuPy's
    generator (a CounterRNG) would draw another model."""
    here = mt.backend.current()
    with mt.backend.use("numpy"):
        mt.manual_seed(seed)
        model = nn.Transformer(5, 5, d_model=16, heads=2, d_ff=32, num_encoder_layers=1, num_decoder_layers=1,
                               dropout=0.1, max_len=8)
    state = model.state_dict()
    state["output.weight"] = 2 * state["output.weight"]
    state["output.bias"] = state["output.bias"] + 0.5 * (np.arange(5) == EOS)
    model.load_state_dict(state)
    return model.to(here)


def _next_log_probs(model, src_row, prefixes):
    """log p(v | <bos> prefix, x) of every token v after each prefix (all of one length): (n, V) float64.

    One teacher-forced pass of the whole model per call (no cache, no decoding code), log-softmax in NumPy."""
    n = len(prefixes)
    src = mt.tensor(np.repeat(np.asarray(src_row)[None], n, axis=0))  # (n, S)
    tgt_in = mt.tensor(np.array([[BOS, *p] for p in prefixes], dtype=np.int64))  # (n, 1 + len(prefix))
    model.eval()
    with mt.no_grad():
        z = model(src, tgt_in, F.padding_mask(src, PAD)).numpy().astype(np.float64)[:, -1]  # (n, V)
    model.train()
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _lp(length, alpha):
    """GNMT's length penalty, eq. 14: (5 + |Y|)^alpha / (5 + 1)^alpha."""
    return (5 + length) ** alpha / 6**alpha


def _every_output(model, src_row, T):
    """Every output of at most T tokens -- ended by its first <eos>, or T tokens without one -- with its log P(Y | x)
    summed over its steps: a list of (tokens, log P)."""
    outputs, growing = [], [((), 0.0)]
    for _ in range(T):
        logp = _next_log_probs(model, src_row, [y for y, _ in growing])  # (n, V)
        grown = []
        for (y, s), row in zip(growing, logp):
            for v, lp_v in enumerate(row):
                (outputs if v == EOS else grown).append((y + (v,), s + lp_v))
        growing = grown
    return outputs + growing


def _greedy_by_hand(model, src_row, T):
    """The arg-max token after each prefix, until <eos> or T tokens; checks that no step is a near tie."""
    y = ()
    while len(y) < T and EOS not in y:
        logp = _next_log_probs(model, src_row, [y])[0]
        second, first = np.sort(logp)[-2:]
        assert first - second > NEAR, "a near tie: float32 and float64 could pick different tokens"
        y += (int(np.argmax(logp)),)
    return y


#: scores closer than this may compare one way in the library's float32 and the other in float64 here (a near tie)
NEAR = 1e-4


def _padded(outputs, width=None, pad_id=PAD):
    """Token tuples as one (n, width) array (by default the longest's), padded with ``pad_id``."""
    out = np.full((len(outputs), width or max(map(len, outputs))), pad_id, dtype=np.int64)
    for i, y in enumerate(outputs):
        out[i, :len(y)] = y
    return out


def _log_p(h):
    """The log P of hypothesis ``h`` (tokens, log P): what the beam ranks by."""
    return h[1]


def _best(hyps, key):
    """The first of hypotheses ``hyps`` by ``key`` (largest first; a stable sort), checked by :func:`_first`."""
    return _first(sorted(hyps, key=key, reverse=True), 1, key, "at the best")[0]


def _first(hyps, n, key, where):
    """The first ``n`` of hypotheses ``hyps`` (tokens, log P), sorted by ``key``, largest first, checked to lead the
    next by more than rounding (else float32 could keep another ``n``, and the case would not test the search), or to
    tie it exactly as siblings: one prefix and equal logits, whose equal log-softmaxes any float gives, ranked by
    token in both."""
    if len(hyps) > n:
        last, after = hyps[n - 1], hyps[n]
        siblings = last[0][:-1] == after[0][:-1] and key(last) == key(after)
        assert siblings or key(last) - key(after) > NEAR, f"a near tie {where}: float32 and float64 rank apart"
    return hyps[:n]


#: said by a failed beam test where length_penalty is wrong: the mistake is length_penalty's, not the search's
RANKS_BY_LP = ("fix test_length_penalty_is_gnmt_eq_14 first; this test ranks the beam's winner by s(Y) / "
               "length_penalty(|Y|, alpha)")


def _length_penalty_wrong() -> str:
    """How length_penalty differs from GNMT's eq. 14 on beam search's float32 lengths in a way that changes the
    beam's ranking; "" where it does not (a positive factor, constant across lengths for an alpha, ranks the same)."""
    lengths = np.arange(1, 13, dtype=np.float32)
    for alpha in (0.0, 0.6, 4.0, 6.0):
        try:
            got = np.asarray(length_penalty(lengths, alpha), dtype=np.float64)
        except NotImplementedError:
            return "length_penalty is not written yet"
        want = _lp(lengths.astype(np.float64), alpha)
        if got.shape != want.shape:
            return (f"length_penalty is wrong: length_penalty(lengths of shape {want.shape}, {alpha}) has shape "
                    f"{got.shape}")
        ratio = got / want
        if not (np.all(np.isfinite(ratio)) and ratio[0] > 0 and np.allclose(ratio, ratio[0], rtol=1e-5, atol=0)):
            n = int(lengths[np.argmax(~np.isclose(ratio, ratio[0], rtol=1e-5, atol=0))]) if ratio[0] > 0 else 12
            return (f"length_penalty is wrong, and not by a positive factor that ranks the same: length_penalty(1, "
                    f"{alpha}) gave {got[0]:.6g} and length_penalty({n}, {alpha}) {got[n - 1]:.6g}, (5 + |Y|)^alpha / "
                    f"(5 + 1)^alpha = {want[0]:.6g} and {want[n - 1]:.6g}")
    return ""


def _blames_length_penalty(test):
    """The beam test ``test``, whose failure, where length_penalty would rank differently from GNMT's eq. 14, is
    named as length_penalty's too (fix its own test first), the test's own message after it: the winner is ranked by
    it, and a wrong penalty reads as a wrong search. Checked only once the test has failed."""
    @functools.wraps(test)
    def checked(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except (AssertionError, NotImplementedError) as e:
            wrong = _length_penalty_wrong()
            if wrong:
                raise AssertionError(f"{wrong}: {RANKS_BY_LP}.\nThe test's own message: {e}") from e
            raise
    return checked


@pytest.mark.parametrize("penalty, blamed", [
    (lambda L, alpha: _lp(np.asarray(L, dtype=np.float64), alpha), False),
    (lambda L, alpha: 2 * _lp(np.asarray(L, dtype=np.float64), alpha), False),  # ranks the same: not blamed
    (lambda L, alpha: np.asarray(L, dtype=np.float64) ** alpha, True),  # right at alpha = 0 only
    (lambda L, alpha: -_lp(np.asarray(L, dtype=np.float64), alpha), True),  # flips the ranking
], ids=["right", "doubled", "no-5", "negated"])
def test_a_failed_beam_test_blames_length_penalty_only_where_it_ranks_differently(monkeypatch, penalty, blamed):
    """A failed search with a penalty off by a positive constant factor keeps its own message; where the penalty
    ranks differently, the message names it first and keeps the test's own after it."""
    monkeypatch.setitem(globals(), "length_penalty", penalty)

    def search_fails():
        raise AssertionError("beam_search(beam_size=2, ...), source 1: returned [3, 0, 2]")

    with pytest.raises(AssertionError) as failed:
        _blames_length_penalty(search_fails)()
    message = str(failed.value)
    assert message.endswith("source 1: returned [3, 0, 2]")
    assert ("fix test_length_penalty_is_gnmt_eq_14 first" in message) == blamed, message


@pytest.mark.assignment(6, points=15)
@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("rows, max_len", [((0, 1, 2, 3), 3), ((0, 1, 2, 3), 6), ((1, 2), 6)],
                         ids=["rows=all-max_len=3", "rows=all-max_len=6", "rows=ended-max_len=6"])
def test_greedy_decode_takes_the_arg_max_at_every_step(tiny, rows, max_len, use_cache):
    """y_t = arg-max_v p(v | y_<t, x) until <eos>, then <pad>; it stops once every row has ended (or at max_len)."""
    model, src = tiny
    src = mt.tensor(src.numpy()[list(rows)])
    out = greedy_decode(model, src, max_len=max_len, use_cache=use_cache).numpy()
    expected = [_greedy_by_hand(model, row, max_len) for row in src.numpy()]
    assert len({len(y) for y in expected}) > 1 and any(EOS in y for y in expected)  # rows end at different steps
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, _padded(expected),
                                  err_msg=f"tokens (rows, steps): the arg-max of the newest position's logits, <pad> "
                                          f"after a row's <eos>, stopping once every row has ended (max_len {max_len})")
    out = greedy_decode(model, src, F.padding_mask(src, PAD), max_len=max_len, pad_id=4, use_cache=use_cache).numpy()
    np.testing.assert_array_equal(out, _padded(expected, pad_id=4),
                                  err_msg="greedy_decode(..., pad_id=4): a row that has ended takes pad_id, not <pad> "
                                          f"({PAD})")


def test_greedy_with_and_without_the_cache_gives_the_same_tokens(seq2seq):
    model, src = seq2seq
    cached = greedy_decode(model, src, max_len=12, use_cache=True).numpy()
    full = greedy_decode(model, src, max_len=12, use_cache=False).numpy()
    np.testing.assert_array_equal(cached, full)
    assert cached.shape[0] == 3 and cached.dtype == np.int64
    assert model.training  # decoding switched to eval mode and back


@pytest.mark.assignment(6, points=5)
def test_greedy_picks_the_argmax_of_the_teacher_forced_logits(seq2seq):
    model, src = seq2seq
    out = greedy_decode(model, src[:1], max_len=6).numpy()[0]
    model.eval()
    prefix = [1]
    for t in range(len(out)):  # each token is the arg-max given the tokens before it, recomputed from scratch
        with mt.no_grad():
            logits = model(src[:1, :5], mt.tensor([prefix])).numpy()[0, -1]
        assert out[t] == int(np.argmax(logits)), f"token {t}: the arg-max of the logits given the tokens before it"
        if out[t] == EOS:
            assert (out[t + 1:] == PAD).all()
            break
        prefix.append(int(out[t]))


@pytest.mark.assignment(6, points=5)
def test_beam_of_one_is_greedy(seq2seq):
    """A beam of 1 keeps each step's best extension: greedy decoding's tokens, computed here from the teacher-forced
    logits (not by greedy_decode: a mistake there is not beam search's)."""
    model, src = seq2seq
    greedy = _padded([_greedy_by_hand(model, row, 10) for row in src.numpy()])
    for use_cache in (True, False):
        beam = _beam(model, src, beam_size=1, max_len=10, use_cache=use_cache).numpy()
        np.testing.assert_array_equal(beam, greedy, err_msg=f"beam_search(beam_size=1, use_cache={use_cache}): greedy "
                                                            "decoding's tokens, the arg-max at every step")
    # <eos> is the second candidate at step 1, more probable than greedy's 3 <eos>: only the k best may finish
    table, k, alpha, T = TABLES["every <eos> finishes"]
    model = _Table(table)
    beam = _beam(model, mt.tensor([[3, 4]]), beam_size=1, max_len=T, use_cache=False).numpy()
    np.testing.assert_array_equal(beam, _padded([_greedy_by_hand(model, [3, 4], T)]),
                                  err_msg=f"beam_search(beam_size=1) on a hand-made model: greedy's tokens; "
                                          f"{WHY['every <eos> finishes']}")


@pytest.mark.assignment(6, points=5)
@_blames_length_penalty
def test_beam_search_scores_are_log_probabilities_at_least_greedys(seq2seq):
    """The score returned is log P(Y | X) of the tokens returned, recomputed here; a beam of 4 finds one at least as
    likely as greedy decoding's (computed here from the teacher-forced logits, not by greedy_decode)."""
    model, src = seq2seq
    greedy = _padded([_greedy_by_hand(model, row, 10) for row in src.numpy()])
    tokens, scores = _beam(model, src, beam_size=4, max_len=10, return_scores=True)
    tokens, scores = tokens.numpy(), scores.numpy()
    np.testing.assert_allclose(scores, _log_prob(model, src, tokens), atol=2e-4,
                               err_msg="beam_search(beam_size=4, max_len=10): the scores, log P(Y | X) of the tokens "
                                       "returned, a sum of log-softmaxes")
    greedys = _log_prob(model, src, greedy)
    lower = np.flatnonzero(scores < greedys - 2e-4)
    if lower.size:
        raise AssertionError(f"beam_search(beam_size=4, max_len=10): sources {lower.tolist()} got a log P "
                             f"{scores[lower].round(4).tolist()} lower than greedy decoding's "
                             f"{greedys[lower].round(4).tolist()}")
    cached = _beam(model, src, beam_size=4, max_len=10, use_cache=False).numpy()
    np.testing.assert_array_equal(cached, tokens, err_msg="use_cache=False: the same tokens as with the cache")


@pytest.mark.assignment(6, points=10)
@_blames_length_penalty
def test_a_beam_wider_than_every_hypothesis_finds_the_best_output_of_all(tiny):
    """With k at least the number of outputs (341 of at most 4 tokens over 5 tokens), no hypothesis is ever dropped:
    beam search returns the output of best log P / lp of all, which is found here by listing them all."""
    model, src = tiny
    every = [_every_output(model, row, 4) for row in src.numpy()]
    assert len(every[0]) == 1 + 4 + 4**2 + 4**3 + 4**4  # ended at step 1, 2, 3 or 4, and never ended
    winners = {}
    for alpha in (0.0, 0.6, 6.0):
        tokens, scores = _beam(model, src, beam_size=len(every[0]), max_len=4, alpha=alpha, return_scores=True)
        best = [_best(outputs, key=lambda o: o[1] / _lp(len(o[0]), alpha)) for outputs in every]
        np.testing.assert_array_equal(tokens.numpy(), _padded([y for y, _ in best]),
                                      err_msg=f"alpha {alpha}: the best log P / lp(|Y|) of all outputs, |Y| counting "
                                              "<eos>; an ended hypothesis extends by <pad> only, at no cost")
        np.testing.assert_allclose(scores.numpy(), [s for _, s in best], atol=1e-4,  # log P, not divided by lp
                                   err_msg=f"alpha {alpha}: the winner's log P (not divided by lp)")
        winners[alpha] = [y for y, _ in best]
    # the case tests the search, the penalty, and that |Y| counts the <eos>: at alpha = 6 that decides a winner
    greedy = [_greedy_by_hand(model, row, 4) for row in src.numpy()]
    assert winners[0.0] != greedy and winners[6.0] != winners[0.0]
    without_eos = [max(o, key=lambda o: o[1] / _lp(len(o[0]) - (EOS in o[0]), 6.0))[0] for o in every]
    assert without_eos != winners[6.0]


#: the mistakes :func:`_beam_hyps` can make on purpose, to check that a case tells them apart (``_why`` names them,
#: several of one output in this order: first the two that graded hand-made cases of :data:`TABLES` are made for)
MISTAKES = ("finished ranked by log P", "bound without lp(max_len)", "k candidates", "every <eos> finishes",
            "no final merge", "finished at lp(t) at the end", "<eos> kept alive")


def _beam_hyps(model, src_row, k, alpha, T, stop=False, kept=None, mistake=None, stops=None):
    """Beam search of one source, hypothesis by hypothesis: its finished and its alive hypotheses at the end, lists
    of (tokens, log P), and the number of steps it ran.

    Each step extends every alive hypothesis by every token, s(Y v) = s(Y) + log p(v | Y, x), and takes the 2k best
    (ties: the earlier hypothesis, then the lower token, as a stable sort of them in that order gives); those among
    the first k that end with <eos> join the finished, which keep their k best by s / lp(|Y|) (ties: the one found
    earlier); the k best of the others by s are the new alive ones. ``stop``: end once k have finished and the best
    alive s / lp(T) is no better than the worst finished s / lp (then no alive one is returned: none can win).
    ``kept``, a list, gets each step's alive tokens, best first (the order of beam search's rows); ``stops``, a list,
    the first step after which the search may stop (T where it never may). ``mistake``, one of :data:`MISTAKES`,
    searches with that mistake, to check that a case tells it apart from the right search."""
    def normalised(h):
        return h[1] if mistake == "finished ranked by log P" else h[1] / _lp(len(h[0]), alpha)

    def ran(t, finished, alive):
        """The search's result after t steps, its first step that may stop (t where none may) put in ``stops``."""
        if stops is not None:
            stops.append(first_stop or t)
        return finished, alive, t

    alive, finished, first_stop = [((), 0.0)], [], None
    for t in range(1, T + 1):
        logp = _next_log_probs(model, src_row, [y for y, _ in alive])  # (n, V)
        candidates = [(y + (v,), s + lp_v) for (y, s), row in zip(alive, logp) for v, lp_v in enumerate(row)]
        # each cut of a ranking that decides a hypothesis' fate in the right search is checked for a near tie
        # (_first), and the stop's comparison; there the cut at 2k decides none: at most k of the 2k end (one a
        # hypothesis), so the k that go on are the first k of all that do not end, checked there. Under the mistakes
        # "k candidates" and "every <eos> finishes" that cut decides too (which go on, which <eos> finish), unchecked:
        # a near tie there could only change which mistake a failing test names
        ranked = sorted(candidates, key=_log_p, reverse=True)
        candidates = ranked[:k if mistake == "k candidates" else 2 * k]
        in_beam = candidates if mistake == "every <eos> finishes" else _first(ranked, k, _log_p, "at the k best")
        finished = sorted(finished + [c for c in in_beam if c[0][-1] == EOS], key=normalised, reverse=True)
        finished = _first(finished, k, normalised, "at the finished set's k best")
        going_on = [c for c in ranked if c[0][-1] != EOS or mistake == "<eos> kept alive"]
        alive = [c for c in _first(going_on, k, _log_p, "at the k that go on") if c in candidates]
        if not alive:  # only a mistake ("k candidates") can leave none
            return ran(t, finished, alive)
        if kept is not None:
            kept.append([y for y, _ in alive])
        bound = 1.0 if mistake == "bound without lp(max_len)" else _lp(T, alpha)
        if len(finished) == k:
            assert abs(alive[0][1] / bound - normalised(finished[-1])) > NEAR, "a near tie at the stop: float32 and " \
                "float64 could stop at different steps"
        if len(finished) == k and alive[0][1] / bound <= normalised(finished[-1]):
            first_stop = first_stop or t
            if stop:
                return ran(t, finished, [])
    return ran(T, finished, alive)


@pytest.mark.single_backend
def test_the_search_by_hand_refuses_a_near_tie_at_a_cut_or_the_stop_but_ranks_equal_siblings_by_token():
    """A cut between scores closer than NEAR, or a stop's comparison, could fall the other way in float32; siblings
    of equal logits tie in any float, and both searches rank them by token."""
    hyps = [((3, 4), -1.0), ((3, 2), -1.0 - NEAR / 2), ((4, 4), -2.0)]
    assert _first(hyps, 2, _log_p, "here") == hyps[:2]
    with pytest.raises(AssertionError, match="a near tie at the cut here"):
        _first(hyps, 1, _log_p, "at the cut here")
    siblings = [((3, 2), -1.0), ((3, 4), -1.0), ((4, 4), -1.0)]
    assert _first(siblings, 1, _log_p, "here") == siblings[:1]
    with pytest.raises(AssertionError, match="a near tie here"):  # equal, of two prefixes: their sums may round apart
        _first(siblings, 2, _log_p, "here")
    # k = 1: <eos> finishes at step 1, and the 3 that goes on has s / lp(7) = s(<eos>) where lp(7) = 2^alpha
    model = _Table(lambda prefix: {(): {EOS: 0.5, 3: 0.3, 4: 0.2}}.get(prefix))
    logp = _next_log_probs(model, [3, 4], [()])[0]
    with pytest.raises(AssertionError, match="a near tie at the stop"):
        _beam_hyps(model, [3, 4], 1, np.log2(logp[3] / logp[EOS]), 7)


def _beam_by_hand(model, src_row, k, alpha, T, kept=None, mistake=None, stops=None):
    """Beam search of one source (:func:`_beam_hyps`, run to T steps: it never stops early, but for the mistake
    "bound without lp(max_len)", whose early stop is the mistake), then the best s(Y) / lp(|Y|) of its finished and
    alive hypotheses (a finished one first where two are equal): (tokens, log P). ``stops`` gets the step after which
    the search may stop. With a mistake, the finished are ranked at the end as that search stores them."""
    finished, alive, _ = _beam_hyps(model, src_row, k, alpha, T, stop=mistake == "bound without lp(max_len)",
                                    kept=kept, mistake=mistake, stops=stops)
    if mistake == "no final merge" and finished:
        alive = []
    lp_done = {"finished ranked by log P": lambda h: 1.0, "finished at lp(t) at the end": lambda h: _lp(T, alpha)}.get(
        mistake, lambda h: _lp(len(h[0]), alpha))
    score = {h: h[1] / lp_done(h) for h in finished} | {h: h[1] / _lp(len(h[0]), alpha) for h in alive}
    return _best(list(score), key=score.get)  # (finished first: the first of two equal)


def _beam(model, src, **kwargs):
    """``beam_search(model, src, **kwargs)``; an IndexError is said in beam search's terms: the line of the package
    that raised it, and the ranges its row indices (``parent``, ``winner``) and candidate indices (``best``) lie in;
    a key/value cache of the wrong number of rows, as ``parent``'s (the cache follows it)."""
    try:
        return beam_search(model, src, **kwargs)
    except ValueError as e:
        if "KVCache" not in str(e):
            raise
        B, k = src.shape[0], kwargs.get("beam_size", 4)
        raise AssertionError(
            f"beam_search(beam_size={k}) on B = {B} sources: the key/value cache no longer has the B k = {B * k} rows "
            f"of the alive hypotheses ({e}). After each step _reorder makes the cache follow parent: parent must "
            f"become the kept rows' parents, (B k,) = ({B * k},), like ys and scores (a new cache is not the fix)"
        ) from e
    except IndexError as e:
        B, k = src.shape[0], kwargs.get("beam_size", 4)
        package = Path(mt.__file__).parent
        ours = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).is_relative_to(package)]
        at = f" at {Path(ours[-1].filename).relative_to(package.parent).as_posix()}:{ours[-1].lineno}, " \
             f"{ours[-1].line}" if ours else ""
        raise AssertionError(
            f"beam_search(beam_size={k}) on B = {B} sources raised IndexError({e}){at}. Its B k = {B * k} rows are "
            f"the alive hypotheses, source b's in rows b k to b k + k - 1: a row index (parent, the row a candidate "
            f"extends) lies in 0..{B * k - 1}. best picks each source's 2k best of its k V candidates, (B, k V): "
            "candidate i (0..k V - 1) extends the source's hypothesis i // V by token i % V, so parent = b k + i // V"
        ) from e


#: what each known mistake returns, in the words of the algorithm (``_why`` says it where a wrong output is that
#: mistake's; :data:`MISTAKES` are searched by hand, "past <eos>" is seen in the output itself)
WHY = {
    "past <eos>": "a candidate that ends with <eos> joins the finished set only, never the alive ones (those that go "
                  "on are the k best candidates that do not end), and a finished hypothesis' tokens are padded with "
                  "pad_id after its <eos>",
    "finished ranked by log P": "that is what keeping the finished set's k best by log P alone returns: it keeps "
                                "its k best by s / lp(|Y|), |Y| counting the <eos>",
    "k candidates": "that is what taking each source's k best candidates, not 2k, returns: the <eos> ones among them "
                    "leave fewer than k to go on; with 2k, k that do not end remain",
    "<eos> kept alive": "that is what keeping an <eos> candidate among the alive ones returns: it joins the finished "
                        "set only, and the k best candidates that do not end go on (an <eos> one gets -inf there)",
    "every <eos> finishes": "that is what letting every <eos> of the 2k candidates finish returns: only those among "
                            "the k best do (the beam would not have kept the others; so beam_size=1 is greedy)",
    "no final merge": "that is the best finished hypothesis alone: where the search runs to max_len, the alive ones "
                      "join the finished at the end, ranked by s / lp(|Y|) at their own length",
    "bound without lp(max_len)": "that is what stopping once the best alive s (or s / lp(t)) is no better than the "
                                 "worst finished s / lp returns: an alive one may still grow to max_len, where its lp "
                                 "is largest, so the bound is its s / lp(max_len)",
    "finished at lp(t) at the end": "that is what ranking the finished at the end by s / lp(t), t the steps run, "
                                    "returns: each is ranked at its own length, s / lp(|Y|), which finished[2] holds",
    "pad_id": "a finished hypothesis' tokens are padded with pad_id, the argument, after its <eos>",
    "steps": "a source may stop once k of its hypotheses have finished and its best alive s / lp(max_len) is no "
             "better than the worst of them, s / lp (an empty place of the finished set is -inf: it goes on); the "
             "search stops once every source may, and runs to max_len otherwise",
}


def _why(out, model, src_row, k, alpha, T, pad_id=PAD):
    """What a beam's wrong output ``out`` (a row of tokens, padded with ``pad_id``) tells of the mistake
    (:data:`WHY`): every known mistake that returns it (those that also run as many steps as ``out`` is long, where
    some do), "" where none does. Where several do, this output alone cannot tell them apart (each returns it whole,
    so none is likelier from it alone): the search's own outputs on the other hand-made models narrow them
    (:func:`_narrowed`), and where nothing narrows the message says that they cannot be told apart."""
    ended = list(out).index(EOS) if EOS in list(out) else len(out)
    y, after = tuple(int(v) for v in out[:ended + 1]), np.asarray(out[ended + 1:])
    if (after != pad_id).any():
        if pad_id != PAD and (after == PAD).all():
            return f"it pads with <pad> ({PAD}) after its <eos>, not pad_id={pad_id}: {WHY['pad_id']}"
        return f"it goes on past its <eos> ({np.asarray(out).tolist()}): {WHY['past <eos>']}"
    named, also_steps = [], []  # the mistakes that return y, and those of them that also run len(out) steps
    for mistake in MISTAKES:
        stops = []
        try:
            wrong = _beam_by_hand(model, src_row, k, alpha, T, mistake=mistake, stops=stops)[0]
        except AssertionError:  # a near tie in the mistaken search: it tells nothing
            continue
        if y == wrong:
            named.append(mistake)
            if stops == [len(out)]:
                also_steps.append(mistake)
    steps, named = (" in as many steps", also_steps) if also_steps else ("", named)
    if len(named) < 2:
        return "".join(WHY[m] for m in named)
    kept, told = _narrowed(named)
    if told:
        how = "; ".join(f"on the hand-made model of TABLES[{case!r}] your search returned what "
                        f"{' or '.join(map(repr, ours))} returns, not what {' or '.join(map(repr, others))} returns"
                        for case, ours, others in told)
        return "; or ".join(WHY[m] for m in kept) + f" ({len(named)} known mistakes return this output{steps}: " \
            f"{', '.join(repr(m) for m in named)}; {how})"
    # in MISTAKES' order: a graded hand-made case's own mistake first
    return f"{len(named)} known mistakes return this output{steps}, which alone cannot tell them apart: " + \
        "; or ".join(WHY[m] for m in named)


def _narrowed(mistakes):
    """The known ``mistakes`` (of one output) that beam_search's own outputs on the hand-made models of
    :data:`TABLES` do not rule out, and how: a list of (case, the mistakes kept, those ruled out there). On each
    case where their searches by hand return different outputs, the search is run, and only the mistakes that
    return its output there are kept. A case tells nothing where a mistake's search by hand meets a near tie (that
    mistake stays), where the search raises, or where it returns what none of them does (another mistake, or two)."""
    told = []
    for case, (table, k, alpha, T) in TABLES.items():  # (the output's own case tells nothing: all return it there)
        model, returns = _Table(table), {}
        for mistake in mistakes:
            try:
                returns[mistake] = _beam_by_hand(model, [3, 4], k, alpha, T, mistake=mistake)[0]
            except AssertionError:  # a near tie: this mistake tells nothing here
                pass
        if len(set(returns.values())) < 2:
            continue
        try:
            out = _beam(model, mt.tensor([[3, 4]]), beam_size=k, max_len=T, alpha=alpha, use_cache=False).numpy()
            out = out[0].tolist()
        except Exception:  # a search that crashes here tells nothing of the mistake in its output
            continue
        ours = [m for m, y in returns.items() if out == list(y) + [PAD] * (len(out) - len(y))]
        if ours:
            told.append((case, ours, [m for m in returns if m not in ours]))
            mistakes = [m for m in mistakes if m in ours or m not in returns]
    return mistakes, told


def _check_beam(model, src, k, alpha, T, use_cache=True, hint="", pad_id=PAD):
    """beam_search against the search by hand, source by source: each wrong row named with what it tells (``_why``),
    else ``hint``; then the number of steps it ran (the tokens' width: where every source may stop, no more) and the
    scores, log P (not divided by lp). Returns the winners' tokens, one tuple a source."""
    mask = {} if pad_id == PAD else {"src_mask": F.padding_mask(src, PAD)}  # src is padded with <pad>
    tokens, scores = _beam(model, src, beam_size=k, max_len=T, alpha=alpha, use_cache=use_cache, return_scores=True,
                           pad_id=pad_id, **mask)
    tokens, scores = tokens.numpy(), scores.numpy()
    stops = []
    expected = [_beam_by_hand(model, row, k, alpha, T, stops=stops) for row in src.numpy()]
    case = f"beam_search(beam_size={k}, alpha={alpha}, max_len={T}, use_cache={use_cache}, pad_id={pad_id})"
    for b, (row, (y, s)) in enumerate(zip(src.numpy(), expected)):
        out = tokens[b]
        if out[:len(y)].tolist() != list(y) or (out[len(y):] != pad_id).any():
            why = _why(out, model, row, k, alpha, T, pad_id) or hint
            raise AssertionError(f"{case}, source {b} {row[row != PAD].tolist()}: returned {out.tolist()}, the search "
                                 f"by hand {list(y)} (log P {s:.4f}, lp(|Y|) {_lp(len(y), alpha):.4f}); {why}")
    if tokens.shape[1] != max(stops):
        raise AssertionError(f"{case}: ran {tokens.shape[1]} steps (the tokens' width); by the search by hand each "
                             f"source may stop after {stops} steps, so the search after {max(stops)}: {WHY['steps']}")
    np.testing.assert_allclose(scores, [s for _, s in expected], atol=1e-4,
                               err_msg=f"{case}: the winner's log P (not divided by lp)")
    return [y for y, _ in expected]


#: what each step of beam search does, said where a wrong output tells nothing more
KEEPS_THE_K_BEST = ("each step takes the 2k best of a source's k V extensions s(Y) + log p(v | Y, X) of its alive "
                    "hypotheses; those of the k best that end with <eos> join the finished set (its k best by s / "
                    "lp(|Y|)), the k best of the others by s go on; at the end the best s / lp(|Y|) of the finished "
                    "and (at max_len) the alive ones wins")


@pytest.mark.assignment(6, points=10)
@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("k", [2, 3], ids=["k=2", "k=3"])
@_blames_length_penalty
def test_beam_search_keeps_the_k_best_as_a_search_by_hand_does(tiny, k, use_cache):
    """Two hand-made models of :data:`TABLES`, where a finished set ranked by log P, and an early stop whose bound is
    not s / lp(max_len), each return another output (the others tell the other known mistakes apart); then the search
    by hand, k = 2 and 3, alpha = 0, 0.6 and 4 on the tiny model, the tokens, the steps run and the scores (k = 3
    pads with pad_id=4): the cases tell beam search from greedy decoding, and alpha = 4 from alpha = 0."""
    for case in ("finished ranked by log P", "bound without lp(max_len)"):  # first: where they fail, they name it
        table, beam, alpha, T = TABLES[case]
        _check_beam(_Table(table), mt.tensor([[3, 4]]), beam, alpha, T, use_cache=False, hint=KEEPS_THE_K_BEST)
    model, src = tiny
    pad_id = {2: PAD, 3: 4}[k]
    found = {alpha: _check_beam(model, src, k, alpha, 6, use_cache, KEEPS_THE_K_BEST, pad_id)
             for alpha in (0.0, 0.6, 4.0)}
    greedy = [_greedy_by_hand(model, row, 6) for row in src.numpy()]
    assert found[0.0] != greedy and found[4.0] != found[0.0]
    _check_beam(model, mt.tensor(src.numpy()[1:3]), k, 0.6, 7, use_cache, KEEPS_THE_K_BEST, pad_id)  # these end


class _Table(nn.Module):
    """An encoder-decoder whose next-token probabilities are written out by hand, the same for every source:
    ``table(prefix)`` (a prefix is a tuple of tokens after <bos>) gives some tokens' probabilities after it, a
    dict, and the others get a few in a million; where it gives None, <eos> 0.9, tokens 3 and 4 0.06 and 0.04. It
    runs the whole prefix (decode it with ``use_cache=False``)."""

    V = 5
    OTHERS = np.log(np.array([1e-6, 3e-6, 2e-6, 4e-6, 5e-6], dtype=np.float32))  # the tokens a row does not give

    def __init__(self, table, max_len=8):
        super().__init__()
        self.table, self.max_len = table, max_len
        self.weight = nn.Parameter(np.zeros((1,), dtype=np.float32))  # decoding reads the backend off a parameter
        self.config = {"tgt_vocab": self.V}

    def new_cache(self):
        return []

    def encode(self, src, src_mask):
        xp = src.backend.xp
        return mt.Tensor(xp.zeros((*src.shape, 1), dtype=xp.float32), backend=src.backend)  # (B, S, 1): unused

    def _logits(self, tgt_in):
        """(n, t, V): the log-probabilities after each row's prefix at its last position (only that one is read)."""
        rows = mt.backend.current().to_host(tgt_in.data)
        z = np.broadcast_to(self.OTHERS, (*rows.shape, self.V)).copy()
        for i, row in enumerate(rows):
            for v, p in (self.table(tuple(int(v) for v in row[1:])) or {EOS: 0.9, 3: 0.06, 4: 0.04}).items():
                z[i, -1, v] = np.log(p)
        return mt.tensor(z)

    def decode(self, tgt_in, memory, src_mask, tgt_mask=None, cache=None):
        return self._logits(tgt_in)

    def forward(self, src, tgt_in, src_mask=None):
        return self._logits(tgt_in)


def _two_chains(after_3):
    """A table (:class:`_Table`): first <eos> 0.30, 3 0.45, 4 0.25; after 3s, ``after_3``; after 4s, 4 again
    (0.9999): a long output of 4s, whose s / lp at alpha = 0.6 beats the short <eos> and the 3s."""
    def table(prefix):
        if not prefix:
            return {3: 0.45, EOS: 0.30, 4: 0.25}
        if set(prefix) == {3}:
            return after_3
        if set(prefix) == {4}:
            return {4: 0.9999, EOS: 5e-5}
        return None
    return table


def _one_place_short(prefix):
    """A table (:class:`_Table`): first 3 0.55, <eos> 0.25, 4 0.20; after 3, 3 0.5, 4 0.35, <eos> 0.15; after 3 3,
    <eos> 0.95; after a 4, 4 again (0.9999); after an <eos> (read only by a search that keeps an ended hypothesis
    alive), 3 0.9, as after the 3s of :func:`_two_chains`; None elsewhere. With k = 2 the right search, taking k
    candidates, and keeping an <eos> alive return three different outputs (:data:`TABLES`)."""
    if EOS in prefix:
        return {3: 0.9, EOS: 0.06, 4: 0.04}
    if prefix[-1:] == (4,):
        return {4: 0.9999, EOS: 5e-5}
    return {(): {3: 0.55, EOS: 0.25, 4: 0.2}, (3,): {3: 0.5, 4: 0.35, EOS: 0.15},
            (3, 3): {EOS: 0.95, 3: 0.03, 4: 0.02}}.get(prefix)


#: hand-made models on which a known mistake returns another output than the right search: (table, k, alpha, T)
TABLES = {
    # the old search kept ended hypotheses in the beam: <eos> takes one of the 2 places, and the one left alive
    # follows the 3s; at alpha = 0.6 the 4s (the third candidate at step 1) win
    "an ended one takes a place": (_two_chains({3: 0.9, EOS: 0.06, 4: 0.04}), 2, 0.6, 7),
    # ... ranked by log P, the short <eos> (log P -1.20) pushes the 4s (-0.92 / 1.52 at length 7) out, and wins
    "ranked by log P in the beam": (_two_chains({3: 0.4, EOS: 0.35, 4: 0.25}), 2, 0.6, 7),
    # <eos> (0.25) is among the k = 2 best at step 1 and finishes; 3 and 4 go on; at step 2 4 4 (0.20) beats 3 4
    # (0.19) and 3 3 (0.275) goes on to 3 3 <eos> (s / lp(3) -1.13); the 4s win (-1.06 at length 7). Taking k
    # candidates, not 2k, leaves 3 alone to go on: 3 3 and 3 4 go on at step 2, and 3 4 4 4 4 4 4 (-1.09) wins.
    # Keeping <eos> alive instead takes 4's place at step 1, and its own child <eos> 3 (0.225) takes 3 4's at step
    # 2: 3 3 <eos> wins (an ended one's children go on with 3s, never above it). Here the two differ
    "k candidates": (_one_place_short, 2, 0.6, 7),
    "no final merge": (_two_chains({3: 0.9, EOS: 0.06, 4: 0.04}), 2, 0.6, 7),
    "finished at lp(t) at the end": (_two_chains({3: 0.9, EOS: 0.06, 4: 0.04}), 2, 0.6, 7),
    "<eos> kept alive": (_two_chains({3: 0.9, EOS: 0.06, 4: 0.04}), 2, 0.6, 7),
    # <eos> first (0.45) is the second candidate: a beam of 1 goes on with 3, and 3 <eos> (0.44) is greedy's
    "every <eos> finishes": (lambda p: {(): {3: 0.55, EOS: 0.45}, (3,): {EOS: 0.8, 3: 0.12, 4: 0.08}}.get(p), 1,
                             0.0, 4),
    # three end: <eos> (log P -1.02), 3 <eos> (-1.30), and 4 4 4 4 4 4 <eos> (-1.42, but / lp(7) = 1.52 the best)
    "finished ranked by log P": (lambda p: {(): {EOS: 0.36, 3: 0.34, 4: 0.30}, (3,): {EOS: 0.8, 3: 0.12, 4: 0.08},
                                            (4,) * 6: {EOS: 0.85, 4: 0.1, 3: 0.05}}.get(p, {4: 0.99, EOS: 5e-3, 3: 5e-3}
                                                                                   if set(p) == {4} else None),
                                 2, 0.6, 7),
    # <eos> first (0.5) and finished after step 1; 3 (0.49), then 3s: its s is below the finished <eos>'s, but
    # s / lp(7) is above it, and 3 3 3 3 3 3 3 wins at alpha = 0.6: bounding by s or s / lp(t) stops at step 1
    "bound without lp(max_len)": (lambda p: {(): {EOS: 0.5, 3: 0.49}}.get(p, {3: 0.9999, EOS: 5e-5}
                                                                         if set(p) == {3} else None), 1, 0.6, 7),
}


@pytest.mark.assignment(6, points=5)
@pytest.mark.parametrize("case", ["an ended one takes a place", "ranked by log P in the beam"])
@_blames_length_penalty
def test_an_ended_hypothesis_leaves_the_beam_for_the_finished_set(case):
    """An <eos> candidate joins a separate set of finished hypotheses; the k places of the beam stay with hypotheses
    that go on, and the finished are ranked by s / lp(|Y|). The old search kept an ended hypothesis in the beam, at
    its log P: with k = 2 one place was left to go on (the first case: it returned the 3s), and the short <eos>
    outranked on log P the 4s that win on s / lp (the second: it returned <eos>)."""
    table, k, alpha, T = TABLES[case]
    y = _check_beam(_Table(table), mt.tensor([[3, 4]]), k, alpha, T, use_cache=False, hint=KEEPS_THE_K_BEST)
    assert y == [(4,) * T], "the case needs the long output of 4s to win"


def _search_by_hand_with(mistake):
    """A beam_search that makes ``mistake``, as a student's might: the search by hand's winners, a row a source."""
    def search(model, src, beam_size=4, max_len=None, alpha=0.0, **_):
        return mt.tensor(_padded([_beam_by_hand(model, row, beam_size, alpha, max_len, mistake=mistake)[0]
                                  for row in src.numpy()]))
    return search


@pytest.mark.single_backend
@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_known_mistake_is_told_apart_and_named(monkeypatch, mistake):
    """On a hand-made model each mistake of :data:`MISTAKES` returns another output than the right search, and
    ``_why`` names that mistake for it (with any other that returns the same, in as many steps, and that the search
    that makes it does not rule out on the other hand-made models, saying that they cannot be told apart); an output
    that goes on past its <eos> is named too."""
    monkeypatch.setitem(globals(), "beam_search", _search_by_hand_with(mistake))  # _why runs it on the other cases
    table, k, alpha, T = TABLES[mistake]
    model = _Table(table)
    right = _beam_by_hand(model, [3, 4], k, alpha, T)[0]
    steps = []
    wrong = _beam_by_hand(model, [3, 4], k, alpha, T, mistake=mistake, stops=steps)[0]
    assert wrong != right, f"the case needs {mistake!r} to return another output"
    out = np.full(steps[0], PAD)  # as wide as the mistaken search runs
    out[:len(wrong)] = wrong
    message = _why(out, model, [3, 4], k, alpha, T)
    named = [m for m in MISTAKES if WHY[m] in message]  # (with k = 1, k candidates stop too)
    assert mistake in named, message
    assert ("cannot tell them apart" in message) == (len(named) > 1), message
    out[len(wrong):] = 3
    if len(wrong) < len(out):
        assert _why(out, model, [3, 4], k, alpha, T).startswith("it goes on past its <eos>")


def test_beam_search_stops_once_no_alive_hypothesis_can_beat_the_finished(monkeypatch, tiny):
    """Once every source has k finished and its best alive s / lp(max_len) is no better than its worst finished
    s / lp (s only falls as tokens are added; lp(|Y|) <= lp(max_len)), the search stops: at the step the search by
    hand says, before max_len, returning what the search by hand run to max_len without stopping returns."""
    model, src = tiny
    src = mt.tensor(src.numpy()[1:3])  # sources whose outputs end (the others' never do within 7 tokens)
    calls = _widths(monkeypatch, model, "decode")
    for k, alpha in ((1, 0.6), (2, 0.0), (2, 0.6), (3, 1.0)):
        stops = [_beam_hyps(model, row, k, alpha, 7, stop=True)[2] for row in src.numpy()]
        assert max(stops) < 7, f"the case needs a search that stops early (k = {k}, alpha = {alpha})"
        calls.clear()
        _beam(model, src, beam_size=k, max_len=7, alpha=alpha)
        assert len(calls) == max(stops), (f"beam_search(beam_size={k}, alpha={alpha}, max_len=7) ran {len(calls)} "
                                          f"steps; each source may stop after {stops} (the last: {max(stops)})")
        _check_beam(model, src, k, alpha, 7, hint=KEEPS_THE_K_BEST)  # against the search that never stops
    table, k, alpha, T = TABLES["bound without lp(max_len)"]  # a bound by lp(t) would stop at step 1
    assert _check_beam(_Table(table), mt.tensor([[3, 4]]), k, alpha, T, use_cache=False) == [(3,) * 7]


def test_an_index_error_in_beam_search_says_which_line_and_what_the_indices_range_over(tiny, monkeypatch):
    """parent = b k + best, the candidate's index for its hypothesis' (i // V): beam search's own IndexError (index
    9 is out of bounds for axis 0 with size 8) is said with the line that raised it and the ranges of the indices."""
    if mt.backend.current().name == "cupy":
        pytest.skip("CuPy's take wraps an index out of range around, raising nothing (the outputs' tests see it)")
    right = "parent = _rows(xp, best // V, k)"
    _with_mistake(monkeypatch, "_best_extensions", right, right.replace(" // V", ""))
    model, src = tiny
    with pytest.raises(AssertionError, match=r"^beam_search\(beam_size=2\) on B = 4 sources raised IndexError\(index "
                                             r"\d+ is out of bounds for axis 0 with size 8\) at "
                                             r"minitransformer/train/decoding\.py:\d+, cand_ys = xp\.concat\(\[xp\."
                                             r"take\(ys, parent.*B k = 8 rows .*in 0\.\.7\. .*parent = b k \+ i // V$"):
        _beam(model, src, beam_size=2, max_len=4)


def _with_mistake(monkeypatch, function, right, wrong):
    """Replace ``function`` of decoding.py by itself with the line ``right`` made ``wrong`` (compiled at decoding.py's
    lines); skipped in A6's copy, where the body is a stub or the student's. Returns the function with the mistake."""
    source, first = inspect.getsourcelines(getattr(decoding, function))
    source = "".join(source)
    if f"{BEGIN} A6" not in source and right not in source:
        pytest.skip("beam search's body is A6's copy's own (a stub, or the student's)")
    assert right in source, f"the line this test breaks is not in {function}: {right!r} (rewritten? update the test)"
    namespace = dict(vars(decoding))
    exec(compile("\n" * (first - 1) + source.replace(right, wrong), decoding.__file__, "exec"), namespace)
    monkeypatch.setattr(decoding, function, namespace[function])
    return namespace[function]


def test_a_cache_that_does_not_follow_parent_is_said_in_beam_searchs_terms(tiny, monkeypatch):
    """The keep step leaves parent as the B n candidates' parents: the cache's own error (use a new KVCache) is said
    as parent's shape, the kept rows' parents (B k,)."""
    right = "ys, scores, parent = (xp.take(a, keep, axis=0) for a in (cand_ys, going_on, parent))"
    wrong = "ys, scores = (xp.take(a, keep, axis=0) for a in (cand_ys, going_on))"
    monkeypatch.setitem(globals(), "beam_search", _with_mistake(monkeypatch, "beam_search", right, wrong))
    model, src = tiny
    with pytest.raises(AssertionError, match=r"^beam_search\(beam_size=2\) on B = 4 sources: the key/value cache no "
                                             r"longer has the B k = 8 rows .*parent must become the kept rows' "
                                             r"parents, \(B k,\) = \(8,\)"):
        _beam(model, src, beam_size=2, max_len=4)


def test_finished_tokens_not_padded_are_said_by_per_source():
    """_finish must pad the finished tokens (B k, t) to the candidates' 1 + t: _per_source says so, not a reshape."""
    with pytest.raises(ValueError, match=r"^_per_source: .* \(B m, \.\.\.\) = \(6, 3\) and \(B n, \.\.\.\) = "
                                         r"\(12, 4\): _finish pads the finished tokens \(B k, t\) with a column "
                                         r"of pad_id"):
        decoding._per_source(np, np.zeros((6, 3)), np.zeros((12, 4)), 3)


def test_finish_ranks_an_earlier_finished_hypothesis_before_an_equal_candidate(backend):
    """Of equal s / lp, _finish keeps the hypothesis finished at an earlier step first, then the better-ranked
    candidate (a stable sort of the finished set followed by the candidates); the order decides the winner, the
    first of the finished set's equal best (_winners). Exact ties, written by hand: no model's float32 gives them.

    One source, k = 2, at step t = 2 (lp(2) = 2 here): <eos> finished at step 1 with s = -1 (s / lp = -1), the
    second place empty; of the 2k = 4 candidates the first two end with s = -2, s / lp = -1 each."""
    xp = backend.xp

    def array(values, dtype):
        return mt.tensor(np.array(values, dtype=dtype)).data

    finished = (array([[BOS, EOS], [BOS, PAD]], np.int64), array([-1.0, -np.inf], np.float32),
                array([-1.0, -np.inf], np.float32))
    cand_ys = array([[BOS, 3, EOS], [BOS, 4, EOS], [BOS, 3, 3], [BOS, 4, 4]], np.int64)
    cand_scores = array([-2.0, -2.0, -2.5, -3.0], np.float32)
    ended = array([True, True, False, False], np.bool_)
    ys, scores, norm = (mt.backend.current().to_host(a)
                        for a in decoding._finish(xp, finished, cand_ys, cand_scores, ended, 2.0, 2, PAD))
    np.testing.assert_array_equal(
        ys, [[BOS, EOS, PAD], [BOS, 3, EOS]],
        err_msg="_finish: <eos> (finished at step 1, s / lp = -1) and the candidates 3 <eos> and 4 <eos> (s / lp = "
                "-1 each) tie; of equal s / lp the finished set keeps the one found earlier first, then the "
                "better-ranked candidate: sort the finished set followed by the candidates, stable")
    np.testing.assert_array_equal(scores, [-1.0, -2.0], err_msg="_finish: s of the kept, not divided by lp")
    np.testing.assert_array_equal(norm, [-1.0, -1.0], err_msg="_finish: s / lp of the kept")


@pytest.mark.parametrize("mistake", ["best finished", "no lp(max_len)"])
def test_a_wrong_stop_is_said_by_the_steps_run_or_named(tiny, monkeypatch, mistake):
    """_may_stop against the best finished (not the worst of k): the steps run are wrong, and said with the rule;
    without / lp_max: the output is wrong, and named."""
    model, src = tiny
    if mistake == "best finished":
        _with_mistake(monkeypatch, "_may_stop", "(B, k))[:, k - 1]", "(B, k))[:, 0]")
        with pytest.raises(AssertionError, match=r"alpha=0\.6, max_len=7.*: ran 2 steps \(the tokens' width\); .*"
                                                 r"may stop after \[3, 2\] steps, so the search after 3: a source may "
                                                 r"stop once k"):
            _check_beam(model, mt.tensor(src.numpy()[1:3]), 2, 0.6, 7)
    else:
        _with_mistake(monkeypatch, "_may_stop", "[:, 0] / lp_max <=", "[:, 0] <=")
        table, k, alpha, T = TABLES["bound without lp(max_len)"]
        wanted = r"returned \[2\], the search by hand \[3, 3, 3, 3, 3, 3, 3\].*"
        with pytest.raises(AssertionError, match=wanted + re.escape(WHY["bound without lp(max_len)"])):
            _check_beam(_Table(table), mt.tensor([[3, 4]]), k, alpha, T, use_cache=False)


@pytest.mark.parametrize("mistake, other, case, function, right, wrong", [
    ("finished at lp(t) at the end", "no final merge", "finished ranked by log P", "_winners",
     "_per_source(xp, done_norm, alive_norm, B)", "_per_source(xp, done_scores / lp, alive_norm, B)"),
    ("k candidates", "<eos> kept alive", "k candidates", "_best_extensions", "n = min(2 * k, k * V)",
     "n = min(k, k * V)"),
    ("<eos> kept alive", "k candidates", "k candidates", "beam_search",
     "going_on = xp.where(ended, xp.asarray(-math.inf, dtype=cand_scores.dtype), cand_scores)",
     "going_on = cand_scores"),
], ids=["finished at lp(t)", "k candidates", "<eos> kept alive"])
def test_mistakes_of_one_output_are_told_apart_by_the_search_on_another_hand_made_model(monkeypatch, mistake, other,
                                                                                         case, function, right, wrong):
    """On TABLES["an ended one takes a place"] two known mistakes return one output: "no final merge" and "finished
    at lp(t) at the end" <eos>, "k candidates" and "<eos> kept alive" 3 3 3 3 3 3 3; on another hand-made model
    (TABLES["finished ranked by log P"], TABLES["k candidates"]) they return different outputs. A beam search that
    makes one of them (made here: _winners ranks the finished at the end by s / lp(t); _best_extensions takes k
    candidates; beam_search keeps an <eos> candidate alive) returns that one's output there: it is named alone, with
    how it was told apart."""
    made = _with_mistake(monkeypatch, function, right, wrong)
    if function == "beam_search":
        monkeypatch.setitem(globals(), "beam_search", made)  # _beam calls this module's name
    table, k, alpha, T = TABLES["an ended one takes a place"]
    with pytest.raises(AssertionError) as failed:
        _check_beam(_Table(table), mt.tensor([[3, 4]]), k, alpha, T, use_cache=False)
    message = str(failed.value)
    assert WHY[mistake] in message and WHY[other] not in message, message
    both = ", ".join(repr(m) for m in MISTAKES if m in (mistake, other))
    assert message.endswith(f"(2 known mistakes return this output in as many steps: {both}; on the hand-made model "
                            f"of TABLES[{case!r}] your search returned what {mistake!r} returns, not what {other!r} "
                            "returns)"), message


def _crashes(*args, **kwargs):
    """A beam_search that raises."""
    raise RuntimeError("a search that crashes")


@pytest.mark.single_backend
@pytest.mark.parametrize("search", [lambda *args, **kwargs: mt.tensor([[3, EOS]]), _crashes],
                         ids=["neither's output", "raises"])
def test_mistakes_of_one_output_stay_named_together_where_the_other_hand_made_models_tell_nothing(monkeypatch,
                                                                                                  search):
    """Where the search returns neither mistake's output on the hand-made model that tells them apart, or raises
    there, nothing narrows them: the message is the one that says this output cannot tell them apart."""
    monkeypatch.setitem(globals(), "beam_search", search)
    table, k, alpha, T = TABLES["an ended one takes a place"]
    out = np.full(T, PAD)
    out[0] = EOS
    assert _why(out, _Table(table), [3, 4], k, alpha, T) == (
        "2 known mistakes return this output in as many steps, which alone cannot tell them apart: "
        f"{WHY['no final merge']}; or {WHY['finished at lp(t) at the end']}")


def test_padding_with_pad_not_pad_id_is_named():
    """A finished hypothesis padded with <pad> (0) where pad_id is 4: named as such, not as tokens past <eos>."""
    table, k, alpha, T = TABLES["k candidates"]
    model = _Table(table)
    out = np.full(T, PAD)
    out[:2] = [3, EOS]
    assert _why(out, model, [3, 4], k, alpha, T, pad_id=4).startswith("it pads with <pad> (0) after its <eos>, not "
                                                                      "pad_id=4: a finished hypothesis' tokens")


def _padded_as(tokens, outputs, case):
    """``outputs`` (token tuples, one a source) padded to the width of beam search's ``tokens`` ``(B, T)``; tokens
    of fewer rows, or narrower than the longest output, are said with both shapes and what that usually is."""
    need = (len(outputs), max(map(len, outputs)))
    if tokens.ndim != 2 or tokens.shape[0] != need[0] or tokens.shape[1] < need[1]:
        raise AssertionError(f"{case}: tokens of shape {tokens.shape}, where the search by hand's winners need "
                             f"({need[0]}, T >= {need[1]}): one row a source, as wide as the steps run, and a winner "
                             "has as many tokens as the step it finished at. Narrower usually means a search that "
                             f"stopped too early: {WHY['steps']}")
    return _padded(outputs, tokens.shape[1])


def test_beam_search_defaults_to_a_beam_of_4_ranked_by_log_p_alone():
    """beam_size=4 (the paper's) and alpha=0 (no length penalty), against the search by hand, on two models (the tiny
    one's, other seeds): on the first alpha = 1 picks another output for some source, on the second a beam of 5."""
    src = mt.tensor(pad_sequences([[4], [3, 4], [3], [4, 4, 4, 4], [3, 3], [4, 3]]))
    for seed, other in ((31, (4, 1.0)), (44, (5, 0.0))):
        model = _sharpened(seed)
        tokens, scores = beam_search(model, src, max_len=6, return_scores=True)
        expected = [_beam_by_hand(model, row, 4, 0.0, 6) for row in src.numpy()]
        case = f"beam_search(model, src, max_len=6) with the default beam_size and alpha, seed {seed}"
        np.testing.assert_array_equal(tokens.numpy(), _padded_as(tokens.numpy(), [y for y, _ in expected], case),
                                      err_msg=case)
        np.testing.assert_allclose(scores.numpy(), [s for _, s in expected], atol=1e-4, err_msg=case)
        k, alpha = other  # the case tells the defaults from it
        assert [_beam_by_hand(model, row, k, alpha, 6)[0] for row in src.numpy()] != [y for y, _ in expected]


def test_beam_search_breaks_ties_towards_the_first_token():
    """Among equally likely hypotheses the first (token order, as arg-max and greedy decoding take it), on every
    backend: a model whose logits are its output bias alone, the largest shared by tokens 3, 10, 17, ..., 59, makes
    every output of those tokens equally likely; each beam returns 3 3 3 3 3 (an unstable sort kept others)."""
    mt.manual_seed(0)
    model = nn.Transformer(64, 64, d_model=16, heads=2, d_ff=32, num_encoder_layers=1, num_decoder_layers=1,
                           max_len=8)
    state = model.state_dict()
    state["output.weight"] = np.zeros_like(state["output.weight"])
    state["output.bias"] = (np.arange(64) % 7 == 3).astype(np.float32)
    model.load_state_dict(state)
    src = mt.tensor([[5, 6, 7], [8, 9, 0]])
    for k in (1, 4, 8):
        np.testing.assert_array_equal(beam_search(model, src, beam_size=k, max_len=5).numpy(), np.full((2, 5), 3),
                                      err_msg=f"beam_size={k}")


def _no_eos(model):
    """The model with <eos> made unlikely (its output bias -1e4): no row ends before max_len."""
    state = model.state_dict()
    state["output.bias"] = state["output.bias"] - 1e4 * (np.arange(state["output.bias"].shape[0]) == EOS)
    model.load_state_dict(state)
    return model


def test_decoding_generates_at_most_s_plus_10_tokens_by_default(seq2seq):
    """max_len=None: S_b + 10 for a source of S_b real tokens (its own, not the batch's padded width), at most the
    model's max_len (24 here); the batch runs as many steps as its longest needs."""
    model, src = seq2seq
    model = _no_eos(model)  # sources of 5, 3 and 7 tokens: 15, 13 and 17 tokens, then <pad>
    for out in (greedy_decode(model, src), beam_search(model, src, beam_size=2),
                greedy_decode(model, src, F.padding_mask(src, PAD), pad_id=4)):  # the mask tells the real tokens
        assert out.shape == (3, 17)
        assert ((out.numpy() != PAD) & (out.numpy() != 4)).sum(axis=1).tolist() == [15, 13, 17]
    long = mt.tensor([[4] * 20])  # S = 20: 30, cut to the model's 24
    assert greedy_decode(model, long).shape == (1, 24)
    assert beam_search(model, long, beam_size=2).shape == (1, 24)
    assert greedy_decode(model, mt.tensor(pad_sequences([[5, 6], [4] * 20]))).numpy()[0, 12:].tolist() == [PAD] * 12


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_a_source_decodes_as_alone_whatever_it_is_batched_with(use_cache):
    """The default max_len was the batch's padded width + 10: a 2-token source batched with a 12-token one was greedily
    decoded to 22 tokens (12 alone), and beam search returned another winner. Each source's limit is its own now, and
    beam search decides a source at it as a search run alone to it does: alone and in a batch (in either order) give
    the same tokens and scores, greedy and beam (alpha 0 and 0.6), on an untrained model whose rows never end (every
    source runs to its limit) and on one whose rows may."""
    mt.manual_seed(0)
    model = nn.Transformer(14, 14, d_model=16, heads=2, d_ff=32, num_encoder_layers=1, num_decoder_layers=1,
                           max_len=40)
    sources = [[5, 6], [7] * 12, [8, 9, 10, 11, 12]]
    for never_ends in (False, True):  # (the first model may end rows: _no_eos changes it in place)
        if never_ends:
            model = _no_eos(model)
        beams = [(f"beam_search(alpha={alpha})", functools.partial(beam_search, alpha=alpha, return_scores=True,
                                                                   use_cache=use_cache)) for alpha in (0.0, 0.6)]
        for name, decode in [("greedy_decode", functools.partial(greedy_decode, use_cache=use_cache)), *beams]:
            alone = [decode(model, [row]) for row in sources]
            for order in ([0, 1, 2], [2, 1, 0]):
                batched = decode(model, mt.tensor(pad_sequences([sources[b] for b in order], PAD)))
                for i, b in enumerate(order):
                    case = f"{name}, use_cache={use_cache}, source {sources[b]} in a batch of {order}"
                    if name == "greedy_decode":
                        want, got = alone[b].numpy()[0], batched.numpy()[i]
                    else:
                        want, got = alone[b][0].numpy()[0], batched[0].numpy()[i]
                        np.testing.assert_allclose(batched[1].numpy()[i], alone[b][1].numpy()[0], atol=1e-5,
                                                   err_msg=case)
                    if never_ends:
                        assert len(want) == len(sources[b]) + 10, case
                    np.testing.assert_array_equal(got, _padded([tuple(want)], len(got))[0], err_msg=case)


def test_max_len_one_decodes_the_first_token(tiny):
    """max_len=1 is one step: y_1 = arg-max_v p(v | <bos>, x) (a beam keeps its best first token, alpha = 0);
    max_len=0 is refused."""
    model, src = tiny
    first = [_greedy_by_hand(model, row, 1) for row in src.numpy()]
    np.testing.assert_array_equal(greedy_decode(model, src, max_len=1).numpy(), first)
    np.testing.assert_array_equal(beam_search(model, src, beam_size=3, max_len=1).numpy(), first)
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        greedy_decode(model, src, max_len=0)


def test_one_sequence_is_a_batch_of_one(tiny, lm):
    """A 1-D source or prompt, (S,), is decoded as (1, S); a one-token one too; a prompt of no token is refused."""
    model, src = tiny
    for row in src.numpy():
        expected = _padded([_greedy_by_hand(model, row, 6)])
        np.testing.assert_array_equal(greedy_decode(model, row, max_len=6).numpy(), expected)
        np.testing.assert_array_equal(beam_search(model, list(row), beam_size=1, max_len=6).numpy(), expected)
    for prompt in ([4], [4, 5, 6]):
        out = generate(lm, np.array(prompt), 5, temperature=0.0).numpy()
        assert out.tolist() == [_continue_by_hand(lm, prompt, 5, lm.max_len)]
    with pytest.raises(ValueError, match=r"generate: expected token ids of shape \(batch, seq\) with seq >= 1"):
        generate(lm, np.zeros((1, 0), dtype=np.int64), 3)


def test_decoding_rows_of_different_lengths_are_refused_by_the_decoding_function(seq2seq, lm):
    """Sources or prompts of different lengths as lists got "tensor: data is ragged ...", naming no decoding function
    nor what to do. A source may be padded (its mask hides the padding); a prompt may not: generate has no mask, and
    continued a padded prompt after its pads, as the shared message advised. A single id among the rows raised a bare
    "object of type 'int' has no len()"."""
    model, _ = seq2seq
    rows = [[5, 6, 7], [8, 9]]
    padding = r"one at a time, or padded to one length \(the mask hides the padding\): data\.pad_sequences\(rows, " \
              r"pad_id\)$"
    one_length = r"one at a time, or of one length: generate has no padding mask, and would continue a padded prompt"
    for op, name, call, advice in [
            ("greedy_decode", "src", lambda ids: greedy_decode(model, ids, max_len=4), padding),
            ("beam_search", "src", lambda ids: beam_search(model, ids, beam_size=2, max_len=4), padding),
            ("generate", "prompt", lambda ids: generate(lm, ids, 3, temperature=0.0), one_length)]:
        with pytest.raises(ValueError, match=rf"^{op}: the rows of {name} have different lengths \(2, 3\); give "
                                             f"them {advice}") as refused:
            call(rows)
        assert ("pad_sequences" in str(refused.value)) == (name == "src")
        for mixed, at, single in (([[5, 6], [7], 5], 2, "5"), ([4, [5, 6]], 0, "4"),
                                  ([[5, 6], np.array(7)], 1, "array(7)")):
            with pytest.raises(ValueError, match=rf"^{op}: {name} mixes rows of token ids with single ids "
                                                 rf"\({name}\[{at}\] is {re.escape(single)}\): give rows \(batch, "
                                                 r"seq\), or one sequence \(seq,\)$"):
                call(mixed)
    padded = greedy_decode(model, pad_sequences(rows, PAD), max_len=4)  # what the message says, for a source
    alone = greedy_decode(model, rows[1], max_len=4)
    assert padded.numpy()[1, :alone.shape[1]].tolist() == alone.numpy()[0].tolist()


@pytest.mark.parametrize("floats", [
    lambda ids: [[x + 0.3 for x in row] for row in ids],           # Python floats: 5.3 read as token 5 before
    lambda ids: np.asarray(ids, dtype=np.float64),                 # whole numbers in a float array
    lambda ids: mt.tensor(ids, dtype="float32"),
    lambda ids: np.asarray(ids) > 4,                               # bools
], ids=["list", "numpy-float64", "tensor-float32", "bool"])
def test_decoding_refuses_non_integer_ids_as_the_models_do(seq2seq, lm, floats):
    """Token ids that are not integers are refused with the decoding function's name, never truncated to other
    tokens, as model(...) refuses them; integers of any kind (Python, NumPy int32, int Tensors) decode as int64."""
    model, src = seq2seq
    rows = [[5, 6, 7], [8, 9, 4]]
    bad = floats(rows)
    kind = "bool" if "bool" in str(getattr(bad, "dtype", "")) else "float"
    for op, call in [("greedy_decode", lambda ids: greedy_decode(model, ids, max_len=4)),
                     ("beam_search", lambda ids: beam_search(model, ids, beam_size=2, max_len=4)),
                     ("generate", lambda ids: generate(lm, ids, 3, temperature=0.0))]:
        name = "prompt" if op == "generate" else "src"
        with pytest.raises(TypeError, match=rf"{op}: {name} must be integer token ids .*, got {kind}\w* "
                                            r"with shape \(2, 3\)"):
            call(bad)
        with pytest.raises(TypeError, match=rf"{op}: {name} must be integer token ids"):
            call(bad[0])  # one sequence too
        expected = call(rows).numpy()
        for good in (np.asarray(rows, dtype=np.int32), mt.tensor(rows, dtype="int32"), mt.tensor(rows)):
            out = call(good)
            assert out.dtype_name == "int64"
            np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(TypeError, match="must be integer token ids"):  # what model(...) says of the same input
        lm(floats(rows))


def _widths(monkeypatch, model, method):
    """Record (rows, positions) of the ids given to each call of ``model.<method>``."""
    calls, inner = [], getattr(model, method)

    def spy(ids, *args, **kwargs):
        calls.append(tuple(ids.shape))
        return inner(ids, *args, **kwargs)

    monkeypatch.setattr(model, method, spy)
    return calls


def test_the_cache_is_used_by_default_and_runs_one_new_position_per_step(monkeypatch, seq2seq, lm):
    """use_cache=True (the default) gives the model only the newest position after the first step: O(t) work per
    step; use_cache=False the whole prefix. (The tokens are the same either way: only what the model runs shows
    which path was taken.)"""
    model, src = seq2seq
    model = _no_eos(model)
    calls = _widths(monkeypatch, model, "decode")
    greedy_decode(model, src, max_len=4)
    assert calls == [(3, 1)] * 4
    calls.clear()
    greedy_decode(model, src, max_len=4, use_cache=False)
    assert calls == [(3, 1), (3, 2), (3, 3), (3, 4)]
    calls.clear()
    beam_search(model, src, max_len=4)  # the paper's beam of 4: 3 sources x 4 hypotheses
    assert calls == [(12, 1)] * 4
    calls.clear()
    beam_search(model, src, max_len=4, use_cache=False)
    assert calls == [(12, 1), (12, 2), (12, 3), (12, 4)]
    calls = _widths(monkeypatch, lm, "forward")
    prompt = mt.tensor([[4, 5, 6]])
    for use_cache, widths in (({}, [3, 1, 1, 1]), ({"use_cache": True}, [3, 1, 1, 1]),
                              ({"use_cache": False}, [3, 4, 5, 6])):
        calls.clear()
        generate(lm, prompt, 4, temperature=0.0, **use_cache)
        assert calls == [(1, w) for w in widths], use_cache


@pytest.mark.assignment(6, points=5)
def test_length_penalty_is_gnmt_eq_14():
    """lp(|Y|) = (5 + |Y|)^alpha / (5 + 1)^alpha, of a number and element by element of an array."""
    for length, alpha in ((1, 0.6), (7, 0.6), (9, 0.0), (3, 2.5)):
        got, want = length_penalty(length, alpha), (5 + length) ** alpha / 6**alpha
        if not abs(got - want) <= 1e-9 * want:
            raise AssertionError(f"length_penalty({length}, {alpha}) = {got}; GNMT eq. 14 gives (5 + {length})^{alpha} "
                                 f"/ (5 + 1)^{alpha} = {want:.6g}")
    lengths = np.arange(1, 13)
    for alpha in (0.0, 0.6, 1.0, 2.5):  # an array gives one penalty per length
        np.testing.assert_allclose(length_penalty(lengths, alpha), (5 + lengths) ** alpha / 6**alpha, rtol=1e-12,
                                   err_msg=f"length_penalty(lengths 1..12, {alpha}): (5 + |Y|)^alpha / (5 + 1)^alpha, "
                                           "element by element")
    shape = np.shape(length_penalty(np.ones((2, 3), dtype=np.float32), 0.6))
    if shape != (2, 3):
        raise AssertionError(f"length_penalty(lengths of shape (2, 3), 0.6) has shape {shape}: one penalty a length")


@pytest.mark.parametrize("alpha", [-1.0, float("nan"), "0.6", None])
def test_length_penalty_refuses_a_bad_alpha(alpha):
    with pytest.raises((ValueError, TypeError), match="length_penalty: alpha must be"):  # -1 gave 0.6, silently
        length_penalty(5, alpha)


@pytest.mark.single_backend
@pytest.mark.parametrize("length, error", [(0, ValueError), (-5, ValueError), (0.5, ValueError),
                                           (float("nan"), ValueError), ("3", TypeError)])
def test_length_penalty_refuses_a_length_below_1(length, error):
    """A hypothesis holds its <eos> at least: 0 gave (5/6)^alpha, -5 a penalty of 0 (scores / 0), silently."""
    with pytest.raises(error, match=rf"^length_penalty: length must be a finite number >= 1, got {length!r}$"):
        length_penalty(length, 0.6)


@pytest.fixture
def lm():
    mt.manual_seed(5)
    return nn.DecoderOnlyLM(vocab=11, d_model=16, heads=2, d_ff=32, num_layers=2, max_len=12, dropout=0.1)


@pytest.mark.parametrize("temperature, top_k", [(0.0, None), (1.0, None), (0.7, 3)])
def test_lm_generation_with_and_without_the_cache_agree(lm, temperature, top_k):
    prompt = mt.tensor([[4, 5, 6], [7, 7, 8]])
    outs = []
    for use_cache in (True, False):
        mt.manual_seed(11)  # the same noise for both
        outs.append(generate(lm, prompt, 20, temperature=temperature, top_k=top_k, use_cache=use_cache).numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert outs[0].shape == (2, 23)  # past max_len=12: the context window restarts, identically in both
    np.testing.assert_array_equal(outs[0][:, :3], prompt.numpy())


def _continue_by_hand(lm, prompt: list, n: int, context: int) -> list:
    """n greedy tokens, the whole window run again for each: the model reads at most the last ``context`` tokens
    of the prompt, and when the text outgrows the window it starts again from the last context // 2 (at least 1)."""
    seq, start = list(prompt), max(len(prompt) - context, 0)
    lm.eval()
    with mt.no_grad():
        for _ in range(n):
            if len(seq) - start > context:
                start = len(seq) - max(context // 2, 1)
            z = lm(mt.tensor([seq[start:]])).numpy()[0, -1]  # (V,) the next token's logits
            seq.append(int(z.argmax()))
    lm.train()
    return seq


@pytest.mark.parametrize("context", [None, 5, 1])
@pytest.mark.parametrize("prompt", [[4, 5, 6], [4, 5, 6, 7, 8, 9, 4, 5, 6, 7, 8, 9, 10]])  # 3 tokens, 13 (> 12)
@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_reads_at_most_context_positions(lm, context, prompt, use_cache):
    """A model trained on windows of T tokens is given context=T (its later positions were never trained); of a
    longer prompt it reads the last T tokens, and the output keeps the whole prompt."""
    window = lm.max_len if context is None else context
    out = generate(lm, mt.tensor([prompt]), 15, temperature=0.0, use_cache=use_cache, context=context).numpy()[0]
    assert out.tolist() == _continue_by_hand(lm, prompt, 15, window)


def test_generate_refuses_a_context_the_model_cannot_read(lm):
    with pytest.raises(ValueError, match=r"generate: context=13 is more than the model's max_len=12"):
        generate(lm, mt.tensor([[4]]), 3, context=13)
    with pytest.raises(ValueError, match=r"generate: context must be a positive integer, got 0"):
        generate(lm, mt.tensor([[4]]), 3, context=0)


@pytest.fixture
def top_k_leaves_a_logit(monkeypatch):
    """_pick's top-k must leave each row its largest logit at least: checked where _pick hands the logits to
    _tempered, so that a cut of every logit (z <= kth) is named, not met as NaN's RuntimeWarning inside _tempered."""
    from minitransformer.train import decoding

    tempered = decoding._tempered

    def checked(xp, z, temperature):
        none_left = np.flatnonzero(~(mt.backend.current().to_host(z) > -np.inf).any(axis=-1))
        if none_left.size:
            raise AssertionError(f"_pick: top-k left rows {none_left[:5].tolist()} of z {tuple(z.shape)} no finite "
                                 "logit (all -inf): keep the top_k largest, those >= the k-th largest (z < kth becomes "
                                 "-inf, not z <= kth)")
        return tempered(xp, z, temperature)

    monkeypatch.setattr(decoding, "_tempered", checked)


def _drawn_as(share, p, bound, case):
    """Each token's share of the draws within ``bound`` of its probability ``p`` (softmax(z / T) over the top k), and
    none drawn outside the top k; else the tokens at fault, their shares and probabilities."""
    outside = np.flatnonzero((p == 0) & (share > 0))
    if outside.size:
        raise AssertionError(f"{case}: tokens {outside.tolist()} drawn {share[outside].round(4).tolist()} of the time, "
                             "outside the top k (only the k largest logits: those below the k-th largest are -inf, "
                             "and stay -inf after the temperature)")
    far = np.flatnonzero(np.abs(share - p) >= bound)
    never = np.flatnonzero((share == 0) & (p > 0))
    cut = (f"; tokens {never.tolist()} never drawn: top-k keeps the k largest logits, those >= the k-th largest (z < "
           "kth becomes -inf)" if never.size else "")
    if far.size:
        raise AssertionError(f"{case}: tokens {far.tolist()} drawn {share[far].round(4).tolist()} of the time, where "
                             f"softmax(z / T) over the top k gives {p[far].round(4).tolist()} (more than 6 standard "
                             f"errors off){cut}; all shares {share.round(4).tolist()}, all p {p.round(4).tolist()}")


@pytest.mark.assignment(6, points=10)
@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.6, 4), (1.7, None), (None, None)],
                         ids=["T=1.0", "T=0.6-top_k=4", "T=1.7", "defaults"])
@pytest.mark.usefixtures("top_k_leaves_a_logit")
def test_generate_draws_the_next_token_from_the_tempered_softmax_of_the_lm(lm, temperature, top_k):
    """20000 rows of one prompt, one new token each: the share of each token against softmax(z / T) over the top k
    logits z, computed here in float64. A share outside 6 standard errors (+ 5 draws) is a wrong sampler. (None,
    None): neither given, so the defaults, T = 1 and every token."""
    given = {} if temperature is None else {"temperature": temperature, "top_k": top_k}
    temperature = 1.0 if temperature is None else temperature
    prompt = np.array([[4, 5, 6]])
    lm.eval()
    with mt.no_grad():
        z = lm(mt.tensor(prompt)).numpy().astype(np.float64)[0, -1]  # (V,) the next token's logits
    lm.train()
    if top_k is not None:
        z = np.where(z < np.sort(z)[-top_k], -np.inf, z)  # below the k-th largest: probability 0
    p = np.exp((z - z.max()) / temperature)
    p /= p.sum()
    n = 20000
    mt.manual_seed(2)
    drawn = generate(lm, np.repeat(prompt, n, axis=0), 1, **given).numpy()[:, -1]
    share = np.bincount(drawn, minlength=p.size) / n
    _drawn_as(share, p, 6 * np.sqrt(p * (1 - p) / n) + 5 / n, f"T = {temperature}, top_k = {top_k}")


def test_generate_zero_new_tokens_returns_the_prompt(lm):
    prompt = mt.tensor([[4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(generate(lm, prompt, 0).numpy(), prompt.numpy())
    with pytest.raises(ValueError, match="max_new_tokens must be"):
        generate(lm, prompt, -1)


@pytest.mark.assignment(6, points=3)
@pytest.mark.usefixtures("top_k_leaves_a_logit")
def test_lm_top_k_one_is_greedy(lm):
    greedy = generate(lm, mt.tensor([[4, 5]]), 6, temperature=0.0).numpy()
    sampled = generate(lm, mt.tensor([[4, 5]]), 6, temperature=1.3, top_k=1).numpy()
    np.testing.assert_array_equal(sampled, greedy, err_msg="generate(lm, 6 new tokens, temperature=1.3, top_k=1) "
                                                           "should equal greedy decoding's (temperature=0): top-k "
                                                           "keeps only the largest logit")


def test_lm_stops_at_eos(lm):
    # find which token greedy decoding produces first, and call it <eos>: the row must stop there
    first = int(generate(lm, mt.tensor([[4, 5]]), 1, temperature=0.0).numpy()[0, -1])
    out = generate(lm, mt.tensor([[4, 5]]), 8, temperature=0.0, eos_id=first).numpy()
    assert out.shape == (1, 3) and out[0, -1] == first


@pytest.mark.assignment(6, points=10)
@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.5, None), (2.0, 2), (0.8, 3)],
                         ids=["T=1.0", "T=0.5", "T=2.0-top_k=2", "T=0.8-top_k=3"])
@pytest.mark.usefixtures("top_k_leaves_a_logit")
def test_sampling_draws_from_the_tempered_softmax(backend, temperature, top_k):
    z = np.array([1.0, 0.0, -1.0, 0.5], dtype=np.float32)
    n = 100000
    logits = mt.tensor(np.tile(z, (n, 1))).data  # n independent draws from one distribution
    draws = mt.backend.current().to_host(_pick(backend, logits, temperature, top_k))
    expected = np.exp(z.astype(np.float64) / temperature)
    if top_k is not None:
        expected[np.argsort(-z)[top_k:]] = 0.0  # only the k largest logits can be drawn
    expected /= expected.sum()
    freq = np.bincount(draws, minlength=4) / n
    # 6 standard errors (at most 0.0095 here): a right sampler's share is outside with a probability of about 2e-9
    _drawn_as(freq, expected, 6 * np.sqrt(expected * (1 - expected) / n) + 1e-12,
              f"z = {z.tolist()}, T = {temperature}, top_k = {top_k}")


def _nucleus_by_hand(z, temperature, top_k, top_p):
    """softmax(z / T) over the top_k largest logits, then over the nucleus of top_p, in float64 (Hugging Face's order
    and rule: a token is cut where the more likely ones before it hold top_p), and the kept tokens; z (V,)."""
    z = np.asarray(z, dtype=np.float64)
    if top_k is not None:
        z = np.where(z < np.sort(z)[-top_k], -np.inf, z)
    p = np.exp((z - z.max()) / temperature)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    before = np.cumsum(p[order]) - p[order]
    kept = np.sort(order[before < top_p])
    p = np.where(np.isin(np.arange(p.size), kept), p, 0.0)
    return p / p.sum(), kept.tolist()


def _kept(backend, z, temperature, top_p):
    """The tokens _nucleus keeps (its finite logits) of each row of ``z``, a list a row."""
    cut = backend.to_host(_nucleus(backend.xp, mt.tensor(np.asarray(z, dtype=np.float32)).data, temperature, top_p))
    return [np.flatnonzero(np.isfinite(row)).tolist() for row in cut]


def test_top_p_keeps_the_smallest_set_of_likeliest_tokens_that_holds_p_by_hand(backend):
    """Probabilities 0.05, 0.5, 0.15, 0.3: the nucleus of p is the likeliest tokens until they hold p, the one that
    crosses p included; the temperature changes the probabilities first; a tiny p keeps the arg-max alone, p = 1
    every token; a logit top-k cut (-inf) has probability 0; tokens as likely as the last kept are all kept."""
    z = np.log([[0.05, 0.5, 0.15, 0.3]])
    every = [0, 1, 2, 3]
    for top_p, kept in ((1e-6, [1]), (0.45, [1]), (0.6, [1, 3]), (0.85, [1, 2, 3]), (0.9, [1, 2, 3]), (0.97, every),
                        (1.0, every)):
        assert _kept(backend, z, 1.0, top_p) == [kept], f"top_p = {top_p}: the likeliest tokens until they hold p"
        assert _nucleus_by_hand(z[0], 1.0, None, top_p)[1] == kept
    assert _kept(backend, z, 0.5, 0.9) == [[1, 3]]  # T = 0.5: p proportional to p^2, 0.685 and 0.247 hold 0.93
    assert _kept(backend, [[-np.inf, np.log(0.5), -np.inf, np.log(0.3)]], 1.0, 0.6) == [[1]]  # 0.625 after top-2
    assert _kept(backend, [[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]], 1.0, 0.3) == [[0, 1, 2]] * 2  # ties: all
    # a p that rounds to 0 in the logits' dtype (float32's smallest is 1.4e-45) kept no token, and every draw was 0
    assert _kept(backend, z, 1.0, 1e-46) == [[1]]


@pytest.mark.parametrize("temperature, top_k, top_p, kept", [
    (1.0, None, 0.8, [0, 1, 3]), (0.5, None, 0.8, [0, 3]), (1.0, 2, 0.6, [0]), (2.0, 3, 0.8, [0, 1, 3]),
    (1.0, None, 1.0, [0, 1, 2, 3]), (1.0, None, 1e-6, [0])],
    ids=["T=1-p=0.8", "T=0.5-p=0.8", "T=1-top_k=2-p=0.6", "T=2-top_k=3-p=0.8", "p=1", "p=1e-6"])
def test_sampling_with_top_p_draws_from_the_nucleus(backend, temperature, top_k, top_p, kept):
    """100000 draws of one row (z as in test_sampling_draws_from_the_tempered_softmax): the shares against softmax(z
    / T) over the top k, then over the nucleus of top_p, within six standard errors. top_k = 2, p = 0.6 keeps token 0
    alone (0.622 of the two kept by top-k), where the nucleus taken before top-k would keep two: top-k comes first."""
    z = np.array([1.0, 0.0, -1.0, 0.5], dtype=np.float32)
    expected, nucleus = _nucleus_by_hand(z, temperature, top_k, top_p)
    assert nucleus == kept
    n = 100000
    logits = mt.tensor(np.tile(z, (n, 1))).data
    draws = mt.backend.current().to_host(_pick(backend, logits, temperature, top_k, top_p=top_p))
    freq = np.bincount(draws, minlength=4) / n
    _drawn_as(freq, expected, 6 * np.sqrt(expected * (1 - expected) / n) + 1e-12,
              f"z = {z.tolist()}, T = {temperature}, top_k = {top_k}, top_p = {top_p}")


@pytest.mark.single_backend
def test_top_p_keeps_what_hugging_faces_rule_keeps_in_torch():
    """Hugging Face's TopPLogitsWarper's rule written with torch ops (sort, softmax, cumulative sum, a token cut where
    the cumulative probability less its own holds p), on random logits, after top-k and at several temperatures."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((64, 50)) * 2).astype(np.float32)
    be = mt.backend.current()
    for temperature, top_k, top_p in ((1.0, None, 0.9), (0.7, None, 0.5), (1.5, 10, 0.8), (1.0, 10, 0.1),
                                      (2.0, None, 0.99)):
        t = torch.tensor(z, dtype=torch.float64) / temperature
        if top_k is not None:
            t = t.masked_fill(t < torch.topk(t, top_k).values[:, -1:], -torch.inf)
        sorted_logits, order = torch.sort(t, descending=True)
        probs = sorted_logits.softmax(-1)
        cut_sorted = probs.cumsum(-1) - probs >= top_p
        cut = cut_sorted.scatter(-1, order, cut_sorted)
        near = ((probs.cumsum(-1) - probs - top_p).abs() < 1e-5).any(-1).numpy()  # float32 may fall either way
        masked = np.where(z < np.sort(z, axis=-1)[:, -top_k:-top_k + 1], -np.inf, z) if top_k else z
        ours = ~np.isfinite(be.to_host(_nucleus(be.xp, mt.tensor(masked).data, temperature, top_p)))
        case = f"T = {temperature}, top_k = {top_k}, top_p = {top_p}"
        assert near.sum() < 3, case
        np.testing.assert_array_equal(ours[~near], cut.numpy()[~near], err_msg=case)
        assert (~cut.numpy()).sum(-1).min() >= 1 and (ours.sum(-1) < z.shape[1]).any(), case  # the case cuts some


def test_generate_with_top_p_is_greedy_at_temperature_0_and_refuses_a_p_outside_0_to_1(lm):
    """temperature=0 takes the arg-max, which every nucleus keeps (as top-k): top_p changes nothing there; top_p = 1
    keeps every token (the draws of no top_p); 0, a negative p, one above 1, NaN are refused naming the option."""
    prompt = mt.tensor([[4, 5, 6], [7, 7, 8]])
    greedy = generate(lm, prompt, 6, temperature=0.0).numpy()
    np.testing.assert_array_equal(generate(lm, prompt, 6, temperature=0.0, top_p=1e-3, top_k=3).numpy(), greedy)
    np.testing.assert_array_equal(generate(lm, prompt, 6, temperature=1.0, top_p=1e-6).numpy(), greedy)
    draws = [generate(lm, prompt, 6, temperature=0.9, seed=4, **p).numpy() for p in ({}, {"top_p": 1.0})]
    np.testing.assert_array_equal(draws[0], draws[1])
    for use_cache in (True, False):  # the cache changes nothing with top_p either
        draws[use_cache] = generate(lm, prompt, 20, temperature=0.9, top_p=0.7, seed=5, use_cache=use_cache).numpy()
    np.testing.assert_array_equal(draws[0], draws[1])
    for bad in (0, 0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError, match=rf"^generate: top_p must be a number in \(0, 1\], got "
                                             rf"{re.escape(repr(bad))}$"):
            generate(lm, prompt, 3, top_p=bad)
    with pytest.raises(TypeError, match=r"^generate: top_p must be"):
        generate(lm, prompt, 3, top_p="0.9")


@pytest.mark.assignment(6, points=5)
def test_mt_manual_seed_repeats_a_draw(backend, lm):
    """The uniform numbers come from the backend's generator (be.uniform), which mt.manual_seed seeds: the same seed
    draws the same tokens, another seed other ones (NumPy's own global generator would ignore mt.manual_seed)."""
    z = mt.tensor(np.zeros((256, 5), dtype=np.float32)).data  # 256 rows, each of the 5 tokens as likely

    def draw(seed):
        mt.manual_seed(seed)
        return mt.backend.current().to_host(_pick(backend, z, 1.0, None))

    first = draw(1)
    np.testing.assert_array_equal(draw(1), first, err_msg="_pick after mt.manual_seed(1), twice: not the same draw")
    assert (draw(2) != first).any(), "mt.manual_seed(1) and mt.manual_seed(2) drew the same 256 tokens"
    prompt = mt.tensor([[4, 5, 6]] * 4)
    mt.manual_seed(3)
    once = generate(lm, prompt, 6, temperature=1.0).numpy()
    mt.manual_seed(3)
    np.testing.assert_array_equal(generate(lm, prompt, 6, temperature=1.0).numpy(), once,
                                  err_msg="generate after mt.manual_seed(3), twice: not the same tokens")


def test_generate_seed_draws_from_a_generator_of_its_own(backend, lm):
    """generate(seed=s) draws what mt.manual_seed(s) would, leaves the backend's generator where it was, and gives the
    same tokens while other threads draw from the backend's generator meanwhile (a server's seeded requests)."""
    prompt = mt.tensor([[4, 5, 6]] * 4)
    mt.manual_seed(3)
    expected = generate(lm, prompt, 6, temperature=1.0).numpy()
    mt.manual_seed(11)
    state = backend.get_rng_state()
    np.testing.assert_array_equal(generate(lm, prompt, 6, temperature=1.0, seed=3).numpy(), expected,
                                  err_msg="generate(seed=3) did not draw what mt.manual_seed(3) then generate drew")
    assert backend.get_rng_state() == state, "generate(seed=3) moved the backend's generator"
    assert (generate(lm, prompt, 6, temperature=1.0, seed=4).numpy() != expected).any(), "seeds 3 and 4 drew alike"

    stop, results = threading.Event(), []

    def draw_meanwhile():
        with mt.backend.use(backend):
            while not stop.is_set():
                backend.uniform((64,))

    other = threading.Thread(target=draw_meanwhile)
    other.start()
    try:
        for _ in range(3):
            results.append(generate(lm, prompt, 6, temperature=1.0, seed=3).numpy())
    finally:
        stop.set()
        other.join()
    for got in results:
        np.testing.assert_array_equal(got, expected, err_msg="generate(seed=3) beside a drawing thread: other tokens")
    with pytest.raises(ValueError, match=r"generate: seed must be an integer >= 0, got -1"):
        generate(lm, prompt, 2, seed=-1)


@pytest.mark.assignment(6, points=5)
def test_tempered_logits_by_hand(backend):
    """_tempered(z, T) = (z - max z) / T per row; d = z - max z is floored at -1e4 T first (so d / T >= -1e4 cannot
    overflow), and a -inf (cut by top-k) stays -inf."""

    def tempered(rows, T, dtype="float64"):
        z = mt.tensor(np.array(rows, dtype=dtype)).data
        return mt.backend.current().to_host(_tempered(backend.xp, z, T))

    # row 0: d = [-2, -1, 0], / 0.5; row 1: d = [0, -1, -2e4], floored at -5000, / 0.5
    np.testing.assert_allclose(tempered([[1.0, 2.0, 3.0], [1e4, 1e4 - 1, -1e4]], 0.5), [[-4, -2, 0], [0, -2, -1e4]],
                               rtol=1e-12, err_msg="_tempered(z, T=0.5)")
    # the maximum subtracted before dividing: logits near float32's largest stay finite
    np.testing.assert_allclose(tempered([[3e38, 2e38, 0.0]], 1.0, "float32"), [[0, -1e4, -1e4]], rtol=1e-6,
                               err_msg="_tempered(z, T=1) of float32 logits near 3.4e38")
    # a tiny T: d / T would be -1e30; floored, it is -1e4
    np.testing.assert_allclose(tempered([[0.0, -1.0, 1.0]], 1e-30), [[-1e4, -1e4, 0]], rtol=1e-12,
                               err_msg="_tempered(z, T=1e-30)")
    # top-k's -inf stays -inf (not the floor)
    np.testing.assert_array_equal(tempered([[0.0, -np.inf, 1.0]], 2.0), [[-0.5, -np.inf, 0]],
                                  err_msg="_tempered(z, T=2) with a -inf")


def test_decoding_takes_numpy_numbers_as_settings(seq2seq, lm):
    """np.float32 temperature and alpha were refused as 'not a number'; they are, on every backend."""
    model, src = seq2seq
    prompt = mt.tensor([[4, 5, 6]])
    mt.manual_seed(0)
    ours = generate(lm, prompt, 3, temperature=np.float32(0.5))
    mt.manual_seed(0)
    np.testing.assert_array_equal(ours.numpy(), generate(lm, prompt, 3, temperature=float(np.float32(0.5))).numpy())
    np.testing.assert_array_equal(beam_search(model, src, beam_size=2, max_len=6, alpha=np.float32(0.5)).numpy(),
                                  beam_search(model, src, beam_size=2, max_len=6, alpha=0.5).numpy())


@pytest.mark.assignment(6, points=4)
@pytest.mark.parametrize("top_k", [None, 3], ids=["top_k=None", "top_k=3"])
@pytest.mark.usefixtures("top_k_leaves_a_logit")
def test_a_tiny_temperature_samples_as_greedy_decoding_does(backend, lm, top_k):
    """T -> 0: softmax(z / T) puts all its mass on the arg-max, so sampling gives greedy decoding's tokens; with
    (z - max z) / T (d floored at -1e4 T), not z / T, which overflows for the smallest T."""
    prompt = mt.tensor([[4, 5, 6], [7, 7, 8]])
    greedy = generate(lm, prompt, 8, temperature=0.0).numpy()
    for temperature in (1e-6, 1e-30, 1e-300, 5e-324):  # the last ones are 0 in float32: z / T would overflow
        mt.manual_seed(1)
        np.testing.assert_array_equal(generate(lm, prompt, 8, temperature=temperature, top_k=top_k).numpy(), greedy,
                                      err_msg=f"generate(lm, 8 new tokens, temperature={temperature}, top_k={top_k}) "
                                              "should equal greedy decoding's (temperature=0), the arg-max")
    # large logits: z / T is beyond float32 for T = 1e-37, (z - max z) / T is not (and the arg-max is not first)
    z = np.array([99.0, 100.0, -50.0, 98.0], dtype=np.float32)
    logits = mt.tensor(np.tile(z, (1000, 1))).data
    for temperature in (1e-6, 1e-37, 1e-300):
        drawn = mt.backend.current().to_host(_pick(backend, logits, temperature, top_k))
        if (drawn != 1).any():
            raise AssertionError(f"_pick(z = {z.tolist()}, T = {temperature}, top_k = {top_k}) drew tokens "
                                 f"{np.unique(drawn).tolist()}, where the arg-max, 1, has all the mass: (z - max z) / "
                                 "T, not z / T, which overflows float32")


@pytest.mark.assignment(6, points=3)
@pytest.mark.usefixtures("top_k_leaves_a_logit")
def test_a_huge_temperature_draws_evenly_among_the_top_k(backend):
    """T -> inf: softmax(z / T) is uniform over the top k, and a logit cut by top-k (-inf) stays -inf: T = 1e300 is
    beyond float32 (-inf / inf would be NaN; the floor of d at -1e4 T must not make -inf finite)."""
    z = np.array([1.0, 0.0, -1.0, 0.5], dtype=np.float32)
    logits = mt.tensor(np.tile(z, (20000, 1))).data
    for temperature in (1e30, 1e300):
        draws = mt.backend.current().to_host(_pick(backend, logits, temperature, 2))
        freq = np.bincount(draws, minlength=4) / len(draws)
        # 0.022: 6 standard errors of a share of 1/2 in 20000 draws
        _drawn_as(freq, np.array([0.5, 0.0, 0.0, 0.5]), 0.022, f"_pick(z = {z.tolist()}, T = {temperature}, top_k = 2)")


def test_decoding_refuses_bad_settings(seq2seq, lm):
    model, src = seq2seq
    with pytest.raises(ValueError, match="beam_size must be a positive int"):
        beam_search(model, src, beam_size=0)
    with pytest.raises(ValueError, match="max_len=30 needs 30 decoder positions, the model has max_len=24"):
        greedy_decode(model, src, max_len=30)
    with pytest.raises(ValueError, match="generate: temperature must be a finite number >= 0, got -1.0"):
        generate(lm, mt.tensor([[4]]), 3, temperature=-1.0)
    with pytest.raises(ValueError, match="generate: temperature must be a finite number >= 0, got inf"):
        generate(lm, mt.tensor([[4]]), 3, temperature=float("inf"))  # logits / inf: NaN where a logit is -inf
    with pytest.raises(TypeError, match="generate: temperature must be a finite number >= 0, got '1'"):
        generate(lm, mt.tensor([[4]]), 3, temperature="1")
    with pytest.raises(ValueError, match="beam_search: alpha must be a finite number >= 0, got nan"):
        beam_search(model, src, alpha=float("nan"))


def test_sizes_may_be_numpy_integers_as_python_ints(lm, seq2seq):
    # an index from np.argmax or a size from a NumPy array was refused as "not an int"
    model, src = seq2seq[0], seq2seq[1]
    mt.manual_seed(3)
    a = generate(lm, mt.tensor([[4, 5]]), 5, temperature=1.0, top_k=3).numpy()
    mt.manual_seed(3)
    b = generate(lm, mt.tensor([[4, 5]]), np.int64(5), temperature=1.0, top_k=np.int64(3)).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(greedy_decode(model, src, max_len=np.int64(6)).numpy(),
                                  greedy_decode(model, src, max_len=6).numpy())
    np.testing.assert_array_equal(beam_search(model, src[:1], beam_size=np.int64(2)).numpy(),
                                  beam_search(model, src[:1], beam_size=2).numpy())


# ------------------------------------------------------------------ the wrong model, or a special id outside it
@pytest.mark.single_backend
def test_each_decoding_function_refuses_the_other_kind_of_model_by_name():
    """generate(Transformer) was "forward() got an unexpected keyword argument 'cache'", greedy_decode(DecoderOnlyLM)
    an AttributeError about encode."""
    mt.manual_seed(0)
    seq2seq = nn.Transformer(14, 14, d_model=16, heads=2, d_ff=32, num_encoder_layers=1, num_decoder_layers=1,
                             max_len=20)
    lm = nn.DecoderOnlyLM(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16)
    classifier = nn.TransformerClassifier(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16)
    with pytest.raises(TypeError, match=r"^generate: continues a decoder-only language model \(a DecoderOnlyLM\), "
                                        r"got a Transformer, an encoder-decoder: decode it with greedy_decode or "
                                        r"beam_search$"):
        generate(seq2seq, [[4, 5]], 3)
    for decode in (greedy_decode, beam_search):
        with pytest.raises(TypeError, match=rf"^{decode.__name__}: decodes an encoder-decoder \(a Transformer, with "
                                            r"encode\(\) and decode\(\)\), got a DecoderOnlyLM; continue a language "
                                            r"model's prompt with generate$"):
            decode(lm, [[4, 5]])
    with pytest.raises(TypeError, match=r"^generate: a TransformerClassifier cannot decode: it has no new_cache"):
        generate(classifier, [[4, 5]], 3)
    with pytest.raises(TypeError, match=r"^greedy_decode: model must be a Module, got str$"):
        greedy_decode("model", [[4, 5]])


@pytest.mark.single_backend
def test_a_special_id_outside_the_vocabulary_is_refused():
    """An eos_id the model cannot produce never stopped a row: every sequence ran to max_len, silently."""
    mt.manual_seed(0)
    seq2seq = nn.Transformer(14, 14, d_model=16, heads=2, d_ff=32, num_encoder_layers=1, num_decoder_layers=1,
                             max_len=20)
    lm = nn.DecoderOnlyLM(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16)
    with pytest.raises(ValueError, match=r"^greedy_decode: eos_id=14 is outside the Transformer's vocabulary of 14 "
                                         r"\(ids 0\.\.13\)$"):
        greedy_decode(seq2seq, [[4, 5]], eos_id=14)
    with pytest.raises(ValueError, match=r"^beam_search: bos_id must be an integer >= 0, got -1$"):
        beam_search(seq2seq, [[4, 5]], bos_id=-1)
    with pytest.raises(ValueError, match=r"^generate: eos_id=20 is outside the DecoderOnlyLM's vocabulary of 20"):
        generate(lm, [[4, 5]], 3, eos_id=20)
    assert generate(lm, [[4, 5]], 3, eos_id=19).shape[0] == 1
