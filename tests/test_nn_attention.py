"""MultiHeadAttention: against NumPy written here, literal vs batched form, finite differences, PyTorch."""

from __future__ import annotations

import functools
import importlib.util
import re

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.testing import gradcheck_module, name_known_mistake_of, rel_err

from references import heads_np, mha_np, params_np


def f64(rng, *shape, requires_grad=True):
    return mt.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=requires_grad)


def mha64(rng, d_model=8, heads=2, bias=True, **kwargs):
    """A float64 MultiHeadAttention with random (not zero) biases, so every parameter matters."""
    mha = nn.MultiHeadAttention(d_model, heads, bias=bias, **kwargs).to("float64")
    if bias:
        for proj in (mha.W_Q, mha.W_K, mha.W_V, mha.W_O):
            proj.bias = nn.Parameter(rng.standard_normal(d_model) * 0.5)
    return mha


#: what the message says of a result that equals a known wrong answer (mha_np's options that compute it)
MISTAKES = (
    ({"scaled": False}, "the scores not divided by sqrt(d_k): softmax(Q_i K_i^T) in place of "
                        "softmax(Q_i K_i^T / sqrt(d_k))?"),
    ({"transposed": False}, "the heads split without the transpose: (B, L, d_model) reshaped straight to "
                            "(B, h, L, d_k) (which mixes positions and heads), not reshape(B, L, h, d_k) then "
                            "permute(0, 2, 1, 3)?"),
)


def known_mistake(mha, weights, output, *arrays, mask=None) -> str:
    """Which known wrong answer ``weights`` or ``output`` equals (``arrays``: query, key, value), or "", at the
    tolerances of :func:`check_attention`; one that is right here (one head: no transpose to miss) is never named."""
    reference = functools.partial(mha_np, params_np(mha), *arrays, mha.heads, mask)
    return name_known_mistake_of(reference, MISTAKES, (output, weights), rtol=1e-12, atol=(1e-12, 1e-14))


def check_attention(mha, out, w, *arrays, mask=None, where=""):
    """``out, w = mha(*arrays, mask=mask)`` against :func:`mha_np`, with messages that name the formula, the shapes
    and a known wrong answer that the result equals."""
    out, w = out.numpy(), w.numpy()
    expected, A = mha_np(params_np(mha), *arrays, mha.heads, mask)
    mistake = known_mistake(mha, w, out, *arrays, mask=mask)
    d_k = mha.d_k
    assert w.shape == A.shape, f"{where}: weights of shape {w.shape}; expected (B, h, L, S) = {A.shape}"
    np.testing.assert_allclose(w, A, rtol=1e-12, atol=1e-14, err_msg=(
        f"{where}: weights (B, h, L, S) = {A.shape}, head i's softmax(Q_i K_i^T / sqrt(d_k)), d_k = {d_k}, "
        f"Q_i = query W_i^Q + b_i^Q (column block i of W_Q and of its bias), K_i likewise{mistake}"))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg=(
        f"{where}: output (B, L, d_model) = {expected.shape}, Concat(head_1, ..., head_h) W_O + b_O, head_i = "
        f"weights_i V_i (B, L, d_k) with d_k = {d_k}; the weights are right: the merge (B, h, L, d_k) -> "
        f"(B, L, h, d_k) -> (B, L, d_model), or W_O?{mistake}"))


# ------------------------------------------------------------------ shapes
@pytest.mark.assignment(3, points=5)
def test_shapes_of_self_cross_and_unbatched_attention():
    mha = nn.MultiHeadAttention(8, 2)
    out, w = mha(mt.randn(2, 5, 8))
    assert (out.shape, w.shape) == ((2, 5, 8), (2, 2, 5, 5))
    out, w = mha(mt.randn(2, 3, 8), mt.randn(2, 7, 8))  # cross-attention, value defaults to key
    assert (out.shape, w.shape) == ((2, 3, 8), (2, 2, 3, 7))
    out, w = mha(mt.randn(5, 8))
    assert (out.shape, w.shape) == ((5, 8), (2, 5, 5))
    out, w = mha(mt.randn(2, 5, 8), need_weights=False)
    assert out.shape == (2, 5, 8) and w is None
    assert [n for n, _ in mha.named_parameters()] == [
        f"{p}.{kind}" for p in ("W_Q", "W_K", "W_V", "W_O") for kind in ("weight", "bias")
    ]
    assert mha.d_k == 4 and mha.W_Q.weight.shape == (8, 8)


# ------------------------------------------------------------------ against NumPy
@pytest.mark.parametrize("literal", [False, True], ids=["batched", "literal"])
@pytest.mark.assignment(3, points=15)
def test_matches_numpy_with_masks(rng, literal):
    mha = mha64(rng, d_model=8, heads=4, literal=literal)
    q, kv = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 6, 8))
    form = ("literal form (_literal)" if literal else
            "batched form (_batched): (B, L, d_model) -> (B, L, h, d_k) -> (B, h, L, d_k) and back")
    out, w = mha(mt.tensor(q))  # no mask, self-attention
    check_attention(mha, out, w, q, q, q, where=f"self-attention, no mask, {form}")

    causal = np.tril(np.ones((5, 5), dtype=bool))  # (L, L): position i sees 0..i
    out, w = mha(mt.tensor(q), mask=F.causal_mask(5))
    check_attention(mha, out, w, q, q, q, mask=causal, where=f"causal mask (5, 5), {form}")
    hidden = w.numpy()[..., ~causal]
    assert not hidden.any(), f"causal mask, {form}: weight {abs(hidden).max():.3g} on a key the mask hides"

    ids = mt.tensor([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 0]])  # 0 = padding
    pad = F.padding_mask(ids, 0)  # (B, 1, 1, S)
    out, w = mha(mt.tensor(q), mt.tensor(kv), mask=pad)
    check_attention(mha, out, w, q, kv, kv, mask=pad.numpy(),
                    where=f"cross-attention, padding mask (2, 1, 1, 6), {form}")


# ------------------------------------------------------------------ literal form == batched form
def run(mha, literal, inputs, G, mask):
    """Output, weights and every gradient (inputs, then parameters) for one form, by name."""
    mha.literal = literal
    mha.zero_grad()
    for t in inputs:
        t.grad = None
    out, w = mha(*inputs, mask=mask)
    (out * mt.tensor(G)).sum().backward()
    got = {"output": out, "weights": w}
    got |= {f"the gradient of {name}": t.grad for name, t in zip(("query", "key", "value"), inputs)}
    got |= {f"the gradient of {name}": p.grad for name, p in mha.named_parameters()}
    form = "literal" if literal else "batched"
    for name, value in got.items():
        assert value is not None, f"{form} form: {name} is None: is every projection (W_Q, W_K, W_V, W_O) used?"
    return {name: value.numpy() for name, value in got.items()}


@pytest.mark.parametrize("case", ["self", "cross-padding", "per-head-mask"])
@pytest.mark.assignment(3, points=5)
def test_literal_and_batched_forms_agree_in_values_and_gradients(rng, case):
    B, L, S, d_model, heads = 2, 4, 5, 12, 3
    mha = mha64(rng, d_model, heads)
    if case == "self":
        inputs, mask = [f64(rng, B, L, d_model)], F.causal_mask(L)
    elif case == "cross-padding":
        inputs = [f64(rng, B, L, d_model), f64(rng, B, S, d_model), f64(rng, B, S, d_model)]
        mask = F.padding_mask(mt.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]), 0)  # (B, 1, 1, S)
    else:
        inputs = [f64(rng, B, L, d_model), f64(rng, B, S, d_model)]
        mask = mt.tensor(rng.random((B, heads, L, S)) < 0.7)  # a different mask for every head
        mask = mt.tensor(mask.numpy() | (np.arange(S) == 0))  # every query sees at least one key
    G = rng.standard_normal((B, L, d_model))
    batched = run(mha, False, inputs, G, mask)
    literal = run(mha, True, inputs, G, mask)
    assert len(batched) == 2 + len(inputs) + 8
    for name, a in batched.items():
        np.testing.assert_allclose(a, literal[name], rtol=1e-12, atol=1e-12, err_msg=(
            f"{name}: ACTUAL the batched form, DESIRED the literal one (test_matches_numpy_with_masks says which "
            f"differs from the formula)"))


@pytest.mark.parametrize("literal", [False, True], ids=["batched", "literal"])
@pytest.mark.assignment(3, points=10)
def test_gradcheck_inputs_and_parameters(rng, literal):
    mha = mha64(rng, d_model=4, heads=2, literal=literal)
    q, k, v = f64(rng, 1, 2, 4), f64(rng, 1, 3, 4), f64(rng, 1, 3, 4)
    mask = mt.tensor([[True, True, False], [True, False, True]])  # (L, S)
    assert gradcheck_module(_Masked(mha, mask), q, k, v)


class _Masked(nn.Module):
    """``mha(q, k, v, mask=mask)`` as a module of the same parameters (for gradcheck_module)."""

    def __init__(self, mha, mask):
        super().__init__()
        self.mha, self.mask = mha, mask

    def forward(self, q, k, v):
        return self.mha(q, k, v, mask=self.mask)



# ------------------------------------------------------------------ the key/value cache of decoding
#: said of the call without a cache that a cache test makes first: a mistake there is not the cache's
WITHOUT_THE_CACHE = ("without a cache first, the batched form (_batched), which the cache's path shares: fix "
                     "test_matches_numpy_with_masks[batched] first, this test checks the cache on top of it")


@pytest.mark.assignment(3, points=10)
def test_cached_decoding_equals_attention_over_the_whole_sequence(rng):
    # a prompt of 3 positions, then 2 more at once, then 1: each call appends its keys and values to the cache
    mha = mha64(rng, d_model=8, heads=2)
    x = rng.standard_normal((2, 6, 8))
    causal = np.tril(np.ones((6, 6), dtype=bool))  # i sees 0..i
    expected, A = mha_np(params_np(mha), x, x, x, mha.heads, causal)
    check_attention(mha, *mha(mt.tensor(x), mask=mt.tensor(causal)), x, x, x, mask=causal, where=WITHOUT_THE_CACHE)
    cache = nn.KVCache()
    for start, stop in ((0, 3), (3, 5), (5, 6)):
        mask = mt.tensor(np.tril(np.ones((stop - start, stop), dtype=bool), k=start))  # (L, cached + L)
        out, w = mha(mt.tensor(x[:, start:stop]), mask=mask, cache=cache)
        said = f"positions {start} to {stop - 1} with the cache: they attend every key so far (cache.update's)"
        np.testing.assert_allclose(out.numpy(), expected[:, start:stop], rtol=1e-12, atol=1e-12, err_msg=said)
        np.testing.assert_allclose(w.numpy(), A[:, :, start:stop, :stop], rtol=1e-12, atol=1e-14, err_msg=said)
        assert len(cache) == stop and cache.K.shape == cache.V.shape == (2, 2, stop, 4)  # (B, h, so far, d_k)
    P = params_np(mha)
    np.testing.assert_allclose(cache.K.numpy(), heads_np(P, x, "W_K", mha.heads), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cache.V.numpy(), heads_np(P, x, "W_V", mha.heads), rtol=1e-12, atol=1e-12)


@pytest.mark.assignment(3, points=5)
def test_a_static_cache_projects_the_memory_once_and_then_ignores_key_and_value(rng):
    # cross-attention while decoding: the encoder's memory (with padding) is projected at the first step only
    mha = mha64(rng, d_model=8, heads=2)
    q, memory = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 6, 8))
    pad = F.padding_mask(mt.tensor([[3, 4, 5, 6, 0, 0], [1, 2, 3, 4, 5, 6]]), 0)  # (B, 1, 1, S)
    expected, A = mha_np(params_np(mha), q, memory, memory, mha.heads, pad.numpy())
    check_attention(mha, *mha(mt.tensor(q), mt.tensor(memory), mask=pad), q, memory, memory, mask=pad.numpy(),
                    where=WITHOUT_THE_CACHE)
    cache = nn.KVCache(static=True)
    for t in range(3):
        kv = mt.tensor(memory if t == 0 else memory * 0.0)  # from the second step on, only the cache counts
        out, w = mha(mt.tensor(q[:, t:t + 1]), kv, kv, mask=pad, cache=cache)
        said = f"step {t}: a filled static cache (cache.filled) is used as it is, key and value ignored"
        np.testing.assert_allclose(out.numpy(), expected[:, t:t + 1], rtol=1e-12, atol=1e-12, err_msg=said)
        np.testing.assert_allclose(w.numpy(), A[:, :, t:t + 1], rtol=1e-12, atol=1e-14, err_msg=said)
        assert len(cache) == 6 and cache.K.shape == (2, 2, 6, 4)
    P = params_np(mha)
    np.testing.assert_allclose(cache.K.numpy(), heads_np(P, memory, "W_K", mha.heads), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cache.V.numpy(), heads_np(P, memory, "W_V", mha.heads), rtol=1e-12, atol=1e-12)


def test_an_unbatched_query_is_one_example_for_the_cache_and_the_mask(rng):
    # (L, d_model) is a batch of one: its cache holds (1, heads, positions, d_k), a mask per example of 2 is refused
    mha = mha64(rng, d_model=8, heads=2)
    x = rng.standard_normal((3, 8))
    causal = np.tril(np.ones((3, 3), dtype=bool))
    expected, A = mha_np(params_np(mha), x[None], x[None], x[None], mha.heads, causal)
    cache = nn.KVCache()
    assert repr(cache) == "KVCache(static=False, positions=0, K shape=None)"
    for t in range(3):  # one query a step: it sees the keys 0..t, as the causal mask's row t
        out, w = mha(mt.tensor(x[t:t + 1]), cache=cache)
        np.testing.assert_allclose(out.numpy(), expected[0, t:t + 1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w.numpy(), A[0, :, t:t + 1, :t + 1], rtol=1e-12, atol=1e-14)
    assert repr(cache) == "KVCache(static=False, positions=3, K shape=(1, 2, 3, 4))"
    scores = r"mask of shape \(2, 1, 3, 3\) does not broadcast to the scores \(batch, heads, L, S\) = \(1, 2, 3, 3\)"
    with pytest.raises(ValueError, match=scores):
        mha(mt.tensor(x), mask=mt.ones(2, 1, 3, 3, dtype="bool"))


def test_each_head_of_the_literal_form_gets_its_own_mask_with_two_heads_too(rng):
    # mask[:, i] is head i's whenever the mask has a head axis, 2 heads as any other number
    mha = mha64(rng, d_model=8, heads=2, literal=True)
    q, kv = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 4, 8))
    mask = np.zeros((1, 2, 3, 4), dtype=bool)
    mask[:, 0, :, :2] = True  # head 0 sees keys 0, 1; head 1 keys 2, 3
    mask[:, 1, :, 2:] = True
    out, w = mha(mt.tensor(q), mt.tensor(kv), mask=mt.tensor(mask))
    expected, A = mha_np(params_np(mha), q, kv, kv, mha.heads, mask)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), A, rtol=1e-12, atol=1e-14)
    assert not w.numpy()[:, 0, :, 2:].any() and not w.numpy()[:, 1, :, :2].any()


# ------------------------------------------------------------------ dropout and modes
@pytest.mark.parametrize("literal", [False, True], ids=["batched", "literal"])
@pytest.mark.assignment(3, points=5)
def test_attention_dropout_only_while_training(literal):
    mha = nn.MultiHeadAttention(8, 2, dropout=0.5, literal=literal)
    x = mt.randn(2, 6, 8)
    trained, w = mha(x)
    sums = w.numpy().sum(-1)
    rows_sum_to_1 = bool(np.allclose(sums, 1.0))
    assert rows_sum_to_1, (f"the weights returned are those before dropout: each row sums to 1, not "
                           f"{sums.min():.3g} to {sums.max():.3g}")
    mha.eval()
    first, _ = mha(x)
    np.testing.assert_array_equal(first.numpy(), mha(x)[0].numpy(), err_msg="eval(): no dropout, the same output")
    changed = not np.allclose(trained.numpy(), first.numpy())
    assert changed, ("dropout=0.5 while training changed nothing: drop the attention weights (dropout_p=self.dropout, "
                     "training=self.training)")


# ------------------------------------------------------------------ bad input
def test_bad_input_is_refused_before_arithmetic():
    with pytest.raises(ValueError, match=r"^MultiHeadAttention: d_model=10 is not divisible by heads=3 "
                                         r"\(each head gets d_k = d_model / heads features, paper 3.2.2\)$"):
        nn.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="MultiHeadAttention: the dropout probability p must be a number in"):
        nn.MultiHeadAttention(8, 2, dropout=1.5)
    mha = nn.MultiHeadAttention(8, 4)
    with pytest.raises(ValueError, match=r"query has shape \(2, 5, 6\); expected \(batch, seq, d_model=8\)"):
        mha(mt.zeros(2, 5, 6))
    with pytest.raises(ValueError, match=r"MultiHeadAttention: key has shape \(2, 5, 4\)"):
        mha(mt.zeros(2, 5, 8), mt.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="MultiHeadAttention: key has 5 positions and value has 4; each key needs"):
        mha(mt.zeros(2, 3, 8), mt.zeros(2, 5, 8), mt.zeros(2, 4, 8))
    with pytest.raises(ValueError, match="MultiHeadAttention: batch sizes differ"):
        mha(mt.zeros(2, 3, 8), mt.zeros(3, 5, 8))
    scores = r"mask of shape \(2, 1, 3, 4\) does not broadcast to the scores \(batch, heads, L, S\) = \(2, 4, 3, 3\)"
    with pytest.raises(ValueError, match=scores):
        mha(mt.zeros(2, 3, 8), mask=mt.ones(2, 1, 3, 4, dtype="bool"))
    # named with the shape the user passed, not the (1, 1, 3, 3) it is reshaped to
    with pytest.raises(TypeError, match=r"MultiHeadAttention: the mask must be boolean .*float32 with shape \(3, 3\)"):
        mha(mt.zeros(2, 3, 8), mask=mt.ones(3, 3))


def test_a_mask_on_another_backend_is_named_by_the_layer_called():
    """Not by scaled_dot_product_attention or combine_masks inside (check_mask used to drop as_mask's answer)."""
    here = mt.backend.current().name
    there = "array_api_strict" if here == "numpy" else "numpy"
    mask = mt.ones(3, 3, dtype="bool", backend=there)
    moved = rf"the {{}} is on backend {there}, expected {here}; move it with \.to\('{here}'\)"
    with pytest.raises(mt.backend.BackendError, match="^MultiHeadAttention: " + moved.format("mask")):
        nn.MultiHeadAttention(8, 2)(mt.zeros(2, 3, 8), mask=mask)
    with pytest.raises(mt.backend.BackendError, match="^DecoderLayer: " + moved.format("tgt_mask")):
        nn.DecoderLayer(8, 2, 16, cross_attention=False)(mt.zeros(2, 3, 8), tgt_mask=mask)
    nn.MultiHeadAttention(8, 2)(mt.zeros(2, 3, 8), mask=mask.to(here))  # moved, as the message says: fine


def test_a_mask_per_example_without_a_head_axis_is_refused_not_put_on_the_heads():
    """(batch, L, S) broadcasts as one mask per head: with batch == heads, example i's mask would land on head i."""
    mha = nn.MultiHeadAttention(8, 2)
    per_example = mt.tensor(np.array([[[True, True, False]] * 3, [[True, True, True]] * 3]))   # (2, 3, 3)
    with pytest.raises(ValueError, match=r"a 3-D mask \(2, 3, 3\) is ambiguous .* \(batch, 1, L, S\)"):
        mha(mt.zeros(2, 3, 8), mask=per_example)
    _, weights = mha(mt.randn(2, 3, 8), mask=per_example.reshape(2, 1, 3, 3))   # the head axis: as meant
    assert np.all(weights.numpy()[0, :, :, 2] == 0) and np.all(weights.numpy()[1, :, :, 2] > 0)
    mha(mt.zeros(2, 3, 8), mask=mt.ones(1, 3, 3, dtype="bool"))                   # one mask for all: fine


# ------------------------------------------------------------------ against PyTorch
def torch_copy(mha, torch):
    """A torch.nn.MultiheadAttention holding the same weights (torch stores each W transposed, Q|K|V stacked)."""
    d, bias = mha.d_model, mha.W_Q.bias is not None
    ref = torch.nn.MultiheadAttention(d, mha.heads, bias=bias, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.from_numpy(np.concatenate([mha.W_Q.weight.numpy().T,
                                                                  mha.W_K.weight.numpy().T,
                                                                  mha.W_V.weight.numpy().T])))
        ref.out_proj.weight.copy_(torch.from_numpy(mha.W_O.weight.numpy().T))
        if bias:
            ref.in_proj_bias.copy_(torch.from_numpy(np.concatenate([mha.W_Q.bias.numpy(), mha.W_K.bias.numpy(),
                                                                    mha.W_V.bias.numpy()])))
            ref.out_proj.bias.copy_(torch.from_numpy(mha.W_O.bias.numpy()))
    return ref


@pytest.mark.parametrize("literal", [False, True], ids=["batched", "literal"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", ["self-causal", "cross-padding"])
@pytest.mark.assignment(3, points=5)
def test_against_torch(rng, literal, bias, case):
    torch = pytest.importorskip("torch")
    B, L, S, d_model, heads = 2, 4, 6, 8, 2
    mha = mha64(rng, d_model, heads, bias=bias, literal=literal)
    ref = torch_copy(mha, torch)
    q_np = rng.standard_normal((B, L, d_model))
    if case == "self-causal":
        arrays = [q_np]
        mask = F.causal_mask(L)  # (L, L), True = may attend
        torch_mask = {"attn_mask": torch.from_numpy((~mask).numpy())}  # torch: True = may NOT attend
    else:
        arrays = [q_np, rng.standard_normal((B, S, d_model)), rng.standard_normal((B, S, d_model))]
        ids = np.array([[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 5, 6]])
        mask = F.padding_mask(mt.tensor(ids), 0)  # (B, 1, 1, S)
        torch_mask = {"key_padding_mask": torch.from_numpy(ids == 0)}
    ours = [mt.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    G = rng.standard_normal((B, L, d_model))

    out, w = mha(*ours, mask=mask)
    (out * mt.tensor(G)).sum().backward()
    t_in = theirs if len(theirs) == 3 else theirs * 3
    out_t, w_t = ref(*t_in, need_weights=True, average_attn_weights=False, **torch_mask)
    out_t.backward(torch.from_numpy(G))
    _, w_avg = ref(*t_in, need_weights=True, average_attn_weights=True, **torch_mask)

    errors = {
        "output": rel_err(out.numpy(), out_t.detach().numpy()),
        "weights per head": rel_err(w.numpy(), w_t.detach().numpy()),
        "weights averaged": rel_err(w.numpy().mean(axis=1), w_avg.detach().numpy()),
    }
    W_in = ref.in_proj_weight.grad.numpy()
    for i, name in enumerate(("W_Q", "W_K", "W_V")):
        proj = getattr(mha, name)
        errors[f"{name}.weight"] = rel_err(proj.weight.grad.numpy(), W_in[i * d_model:(i + 1) * d_model].T)
        if bias and name == "W_K":
            # q . b_K adds the same number to every score of a row, and softmax ignores that: the
            # gradient of the key bias is 0 in exact arithmetic, so both sides hold only rounding
            key_bias = {"ours": np.abs(proj.bias.grad.numpy()).max(),
                        "torch's": np.abs(ref.in_proj_bias.grad.numpy()[d_model:2 * d_model]).max()}
        elif bias:
            errors[f"{name}.bias"] = rel_err(proj.bias.grad.numpy(),
                                             ref.in_proj_bias.grad.numpy()[i * d_model:(i + 1) * d_model])
    errors["W_O.weight"] = rel_err(mha.W_O.weight.grad.numpy(), ref.out_proj.weight.grad.numpy().T)
    if bias:
        errors["W_O.bias"] = rel_err(mha.W_O.bias.grad.numpy(), ref.out_proj.bias.grad.numpy())
    for k, (a, b) in enumerate(zip(ours, theirs)):
        errors[f"input {k}"] = rel_err(a.grad.numpy(), b.grad.numpy())
    worst = max(errors, key=errors.get)
    form = f"{case}, {'literal' if literal else 'batched'} form, {'with' if bias else 'no'} biases"
    mistake = known_mistake(mha, w.numpy(), out.numpy(), *(arrays if len(arrays) == 3 else arrays * 3),
                            mask=mask.numpy())
    all_errors = ", ".join(f"{name} {e:.1e}" for name, e in errors.items())
    agrees = errors[worst] < 1e-6
    assert agrees, (f"vs torch.nn.MultiheadAttention ({form}): relative errors {all_errors}{mistake}; the largest, "
                    f"{worst}: {errors[worst]:.2e}")
    if bias:  # (after the comparison: a wrong result makes this gradient wrong too)
        zero = all(e < 1e-12 for e in key_bias.values())
        assert zero, (f"{form}: the gradient of W_K.bias must be 0 (q . b_K adds one number to a whole row of scores, "
                      f"which softmax ignores): the largest |entry| of {key_bias}")


# ------------------------------------------------------------------ the graded tests' messages
def _batched_without_the_transpose(self, query, key, value, mask, cache=None):
    """A known mistake in MultiHeadAttention._batched: the heads split and merged by a reshape alone (the cache's
    code right)."""
    B, L, S, h, d_k = query.shape[0], query.shape[1], key.shape[1], self.heads, self.d_k
    Q = self.W_Q(query).reshape(B, h, L, d_k)
    if cache is not None and cache.filled:
        K, V = cache.K, cache.V
    else:
        K, V = self.W_K(key).reshape(B, h, S, d_k), self.W_V(value).reshape(B, h, S, d_k)
        if cache is not None:
            K, V = cache.update(K, V)
    heads, weights = F.scaled_dot_product_attention(Q, K, V, mask, dropout_p=self.dropout, training=self.training)
    return self.W_O(heads.reshape(B, L, h * d_k)), weights


@pytest.mark.parametrize("mistake", ["no sqrt(d_k)", "no transpose"])
def test_a_known_wrong_answer_is_named_and_the_cache_tests_point_at_the_call_without_the_cache(monkeypatch, mistake):
    """With the split's transpose left out and the cache code right, the cache tests blamed the cache."""
    if mistake == "no transpose":
        monkeypatch.setattr(nn.MultiHeadAttention, "_batched", _batched_without_the_transpose)
    else:  # the scores not divided by sqrt(d_k): Q sqrt(d_k) K^T / sqrt(d_k)
        attend = F.scaled_dot_product_attention
        monkeypatch.setattr(F, "scaled_dot_product_attention",
                            lambda Q, K, V, *args, **kwargs: attend(Q * Q.shape[-1] ** 0.5, K, V, *args, **kwargs))
    said = re.escape("it equals the known wrong answer with " + MISTAKES[mistake == "no transpose"][1])
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    with pytest.raises(AssertionError, match=r"self-attention, no mask, batched form .*softmax\(Q_i K_i\^T / "
                                             r"sqrt\(d_k\)\), d_k = 2.*" + said):
        test_matches_numpy_with_masks(rng(), literal=False)
    for cached in (test_cached_decoding_equals_attention_over_the_whole_sequence,
                   test_a_static_cache_projects_the_memory_once_and_then_ignores_key_and_value):
        with pytest.raises(AssertionError, match=re.escape(WITHOUT_THE_CACHE) + ".*" + said):
            cached(rng())
    if importlib.util.find_spec("torch"):  # its message: every error, the known mistake, the largest error last
        with pytest.raises(AssertionError, match=r"vs torch\.nn\.MultiheadAttention \(self-causal, batched form, "
                                                 r"with biases\): relative errors output .*" + said
                                                 + r".*; the largest, [^:]+: \d\.\d\de[+-]\d\d\n"):
            test_against_torch(rng(), literal=False, bias=True, case="self-causal")


def test_the_dropout_message_is_the_tests_own(monkeypatch):
    """Not followed by pytest's rewrite of np.allclose with both arrays printed."""
    attend = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention",
                        lambda Q, K, V, mask=None, dropout_p=0.0, training=False: attend(Q, K, V, mask))
    with pytest.raises(AssertionError, match="dropout=0.5 while training changed nothing") as failed:
        test_attention_dropout_only_while_training(literal=False)
    assert "array(" not in str(failed.value) and "allclose" not in str(failed.value)
