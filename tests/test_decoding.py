"""Decoding: the key/value cache changes nothing but the cost, beam 1 is greedy, beam search finds sequences at
least as likely as greedy's (scored independently here), and sampling draws from softmax(z / T) (top-k cut)."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from minitransformer.data import EOS, PAD, pad_sequences
from minitransformer.train.decoding import _pick, beam_search, generate, greedy_decode, length_penalty


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


def test_greedy_with_and_without_the_cache_gives_the_same_tokens(seq2seq):
    model, src = seq2seq
    cached = greedy_decode(model, src, max_len=12, use_cache=True).numpy()
    full = greedy_decode(model, src, max_len=12, use_cache=False).numpy()
    np.testing.assert_array_equal(cached, full)
    assert cached.shape[0] == 3 and cached.dtype == np.int64
    assert model.training  # decoding switched to eval mode and back


def test_greedy_picks_the_argmax_of_the_teacher_forced_logits(seq2seq):
    model, src = seq2seq
    out = greedy_decode(model, src[:1], max_len=6).numpy()[0]
    model.eval()
    prefix = [1]
    for t in range(len(out)):  # each token is the arg-max given the tokens before it, recomputed from scratch
        with mt.no_grad():
            logits = model(src[:1, :5], mt.tensor([prefix])).numpy()[0, -1]
        assert out[t] == int(np.argmax(logits))
        if out[t] == EOS:
            assert (out[t + 1:] == PAD).all()
            break
        prefix.append(int(out[t]))


def test_beam_of_one_is_greedy(seq2seq):
    model, src = seq2seq
    greedy = greedy_decode(model, src, max_len=10).numpy()
    for use_cache in (True, False):
        beam = beam_search(model, src, beam_size=1, max_len=10, use_cache=use_cache).numpy()
        np.testing.assert_array_equal(beam, greedy)


def test_beam_search_scores_are_log_probabilities_at_least_greedys(seq2seq):
    model, src = seq2seq
    greedy = greedy_decode(model, src, max_len=10).numpy()
    tokens, scores = beam_search(model, src, beam_size=4, max_len=10, return_scores=True)
    tokens, scores = tokens.numpy(), scores.numpy()
    # the score it reports is log P(Y | X) of the sequence it returns, recomputed independently
    np.testing.assert_allclose(scores, _log_prob(model, src, tokens), atol=2e-4)
    assert (scores >= _log_prob(model, src, greedy) - 2e-4).all()
    cached = beam_search(model, src, beam_size=4, max_len=10, use_cache=False).numpy()
    np.testing.assert_array_equal(cached, tokens)


def test_length_penalty_is_gnmt_eq_14():
    assert length_penalty(1, 0.6) == 1.0
    assert length_penalty(7, 0.6) == pytest.approx((12 / 6) ** 0.6)
    assert length_penalty(9, 0.0) == 1.0


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


def test_lm_top_k_one_is_greedy(lm):
    greedy = generate(lm, mt.tensor([[4, 5]]), 6, temperature=0.0).numpy()
    sampled = generate(lm, mt.tensor([[4, 5]]), 6, temperature=1.3, top_k=1).numpy()
    np.testing.assert_array_equal(greedy, sampled)


def test_lm_stops_at_eos(lm):
    # find which token greedy decoding produces first, and call it <eos>: the row must stop there
    first = int(generate(lm, mt.tensor([[4, 5]]), 1, temperature=0.0).numpy()[0, -1])
    out = generate(lm, mt.tensor([[4, 5]]), 8, temperature=0.0, eos_id=first).numpy()
    assert out.shape == (1, 3) and out[0, -1] == first


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.5, None), (2.0, 2)])
def test_sampling_draws_from_the_tempered_softmax(backend, temperature, top_k):
    z = np.array([1.0, 0.0, -1.0, 0.5], dtype=np.float32)
    n = 20000
    logits = mt.tensor(np.tile(z, (n, 1))).data  # n independent draws from one distribution
    draws = mt.backend.current().to_host(_pick(backend, logits, temperature, top_k))
    expected = np.exp(z.astype(np.float64) / temperature)
    if top_k is not None:
        expected[np.argsort(-z)[top_k:]] = 0.0  # only the k largest logits can be drawn
    expected /= expected.sum()
    freq = np.bincount(draws, minlength=4) / n
    np.testing.assert_allclose(freq, expected, atol=0.015)  # ~4 standard errors at n = 20000


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


@pytest.mark.parametrize("top_k", [None, 3])
def test_a_tiny_temperature_samples_as_greedy_decoding_does(lm, top_k):
    prompt = mt.tensor([[4, 5, 6], [7, 7, 8]])
    greedy = generate(lm, prompt, 8, temperature=0.0).numpy()
    for temperature in (1e-6, 1e-30, 1e-300, 5e-324):  # the last ones are 0 in float32: z / T would overflow
        mt.manual_seed(1)
        np.testing.assert_array_equal(generate(lm, prompt, 8, temperature=temperature, top_k=top_k).numpy(), greedy)


def test_a_huge_temperature_draws_evenly_among_the_top_k(backend):
    z = np.array([1.0, 0.0, -1.0, 0.5], dtype=np.float32)
    logits = mt.tensor(np.tile(z, (4000, 1))).data
    for temperature in (1e30, 1e300):  # 1e300 is inf in float32: -inf / inf would be NaN
        draws = mt.backend.current().to_host(_pick(backend, logits, temperature, 2))
        freq = np.bincount(draws, minlength=4) / len(draws)
        assert freq[1] == freq[2] == 0.0  # never outside the 2 largest logits
        np.testing.assert_allclose(freq[[0, 3]], 0.5, atol=0.04)  # T -> inf: uniform over those kept


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
    with pytest.raises(ValueError, match="prompt has 13 tokens, more than the model's max_len=12"):
        generate(lm, mt.tensor([[4] * 13]), 3)


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
