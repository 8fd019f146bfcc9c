"""Encoder/decoder layers and stacks, the whole models, the key/value cache: against NumPy written here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.testing import name_known_mistake

from references import layer_norm_np, mha_np, params_np

D, H, D_FF = 8, 2, 12  # tiny widths: d_model, heads, d_ff
#: the two places of LayerNorm (norm_first), with the test ids that say which (not "True" / "False")
IDS = {False: "post_ln", True: "pre_ln"}
NORM_FIRST = pytest.mark.parametrize("norm_first", list(IDS), ids=list(IDS.values()))


# ------------------------------------------------------------------ helpers
def randomize(module, rng, scale=0.5):
    """Every parameter random (biases, gamma and beta too), so each one matters; returns the module."""
    for name, p in module.named_parameters():
        values = rng.standard_normal(p.shape) * scale
        if name.endswith("gamma"):
            values = 1.0 + values
        p.data = p.backend.asarray(values.astype(p.dtype_name))
    return module


def f64(rng, *shape, requires_grad=False):
    return mt.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=requires_grad)


def attn(P, pre, q, kv, allowed, h):
    """The output of the attention sub-layer ``pre`` (``self_attn.``, ``cross_attn.``) of the layer whose parameters are
    ``P``, on the query ``q`` and the key and value ``kv``: :func:`references.mha_np`."""
    return mha_np({name.removeprefix(pre): p for name, p in P.items() if name.startswith(pre)}, q, kv, kv, h,
                  allowed)[0]


def np_ffn(P, x):
    return np.maximum(0, x @ P["ffn.W_1.weight"] + P["ffn.W_1.bias"]) @ P["ffn.W_2.weight"] + P["ffn.W_2.bias"]


def np_encoder_layer(P, x, allowed, h, norm_first, drop=(1.0, 1.0), ln_residual=False):
    """``drop``: what each sub-layer's output is multiplied by (Dropout's m / (1 - p)), 1 without dropout;
    ``ln_residual``: the known wrong pre-LN, LN(x) + Sublayer(LN(x))."""
    d1, d2 = drop

    def norm(k, y):
        return layer_norm_np(y, P[f"norm{k}.gamma"], P[f"norm{k}.beta"])

    if norm_first:  # x + Dropout(Sublayer(LN(x)))
        x = (norm(1, x) if ln_residual else x) + d1 * attn(P, "self_attn.", norm(1, x), norm(1, x), allowed, h)
        return (norm(2, x) if ln_residual else x) + d2 * np_ffn(P, norm(2, x))
    x = norm(1, x + d1 * attn(P, "self_attn.", x, x, allowed, h))  # LN(x + Dropout(Sublayer(x)))
    return norm(2, x + d2 * np_ffn(P, x))


def np_decoder_layer(P, x, m, src_allowed, h, norm_first, drop=(1.0, 1.0, 1.0), tgt_allowed=True,
                     ln_residual=False):
    """``tgt_allowed``: the keys the self-attention may see besides the causal mask's (broadcast to (B, h, T, T));
    ``ln_residual``: the known wrong pre-LN, LN(x) + Sublayer(LN(x))."""
    T = x.shape[1]
    causal = np.tril(np.ones((T, T), dtype=bool)) & tgt_allowed  # key j <= query i
    d1, d2, d3 = drop

    def norm(k, y):
        return layer_norm_np(y, P[f"norm{k}.gamma"], P[f"norm{k}.beta"])

    if norm_first:
        x = (norm(1, x) if ln_residual else x) + d1 * attn(P, "self_attn.", norm(1, x), norm(1, x), causal, h)
        x = (norm(2, x) if ln_residual else x) + d2 * attn(P, "cross_attn.", norm(2, x), m, src_allowed, h)
        return (norm(3, x) if ln_residual else x) + d3 * np_ffn(P, norm(3, x))
    x = norm(1, x + d1 * attn(P, "self_attn.", x, x, causal, h))
    x = norm(2, x + d2 * attn(P, "cross_attn.", x, m, src_allowed, h))
    return norm(3, x + d3 * np_ffn(P, x))


#: each place of LayerNorm, as the messages say it
FORMS = {False: "post-LN (the paper): LN(x + Sublayer(x))", True: "pre-LN (norm_first=True): x + Sublayer(LN(x))"}


def check_layer(got, expected, where, wrong=()):
    """``got`` against ``expected`` (float64 NumPy), the message ``where`` naming the formula, and the first known
    wrong answer of ``wrong`` (pairs: the wrong array, what it is) that ``got`` equals."""
    mistake = name_known_mistake(got, expected, wrong, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"{where}{mistake}")


def layer_mistakes(np_layer, args, kwargs, norm_first, mask_at, mask_said):
    """The known wrong answers of an encoder or decoder layer (``np_layer(*args, **kwargs)`` with one thing
    changed): the mask at ``args[mask_at]`` left out, the other place of LayerNorm, pre-LN's residual from LN(x)."""
    no_mask = list(args)
    no_mask[mask_at] = None
    flipped = [*args[:-1], not norm_first]  # norm_first is the last argument
    wrong = [(np_layer(*no_mask, **kwargs), f"{mask_said}?"),
             (np_layer(*flipped, **kwargs), "post-LN and pre-LN swapped: norm_first=True is x + Sublayer(LN(x)), "
                                            "False (the paper) LN(x + Sublayer(x))?")]
    if norm_first:
        wrong.append((np_layer(*args, **kwargs, ln_residual=True),
                      "the residual taken from LN(x): LN(x) + Sublayer(LN(x)), not x + Sublayer(LN(x))?"))
    return wrong


def dropout_mistakes(np_layer, args, masks, p, names):
    """The known wrong answers of a layer in training: the masks not rescaled, or sub-layer k's output not dropped
    (the masks after it then drawn one sub-layer early); ``names``: the sub-layers, in order."""
    wrong = [(np_layer(*args, drop=[m * (1 - p) for m in masks]),
              "the kept outputs not rescaled: Dropout gives m / (1 - p), times 1 / (1 - p)?")]
    for k, name in enumerate(names):
        drop = [*masks[:k], 1.0, *masks[k:len(names) - 1]]
        wrong.append((np_layer(*args, drop=drop), f"no dropout on the {name}'s output (sub-layer {k + 1})?"))
    return wrong


def residual_dropout_only(layer):
    """The layer's dropout left on its residual connections only (none on the attention weights, none inside the FFN):
    in training its only random draws are then one mask per sub-layer, in the order of the sub-layers."""
    layer.self_attn.dropout = 0.0
    if getattr(layer, "cross_attn", None) is not None:
        layer.cross_attn.dropout = 0.0
    layer.ffn.dropout.p = 0.0
    return layer


def dropout_masks(n, shape, p, seed):
    """The factors m / (1 - p) of the first ``n`` dropouts of ``shape`` (float64) after ``mt.manual_seed(seed)``."""
    mt.manual_seed(seed)
    return [F.dropout(mt.ones(*shape, dtype="float64"), p).numpy() for _ in range(n)]


def gradcheck_with(module, names, fn, *inputs):
    """``mt.gradcheck`` of ``fn(*inputs)`` w.r.t. the inputs and the parameters ``names`` (swapped into their slots)."""
    slots = []
    for name in names:
        *path, attr = name.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        slots.append((owner, attr))
    originals = [owner._parameters[attr] for owner, attr in slots]
    n = len(inputs)

    def wrapped(*tensors):
        for (owner, attr), t in zip(slots, tensors[n:]):
            owner._parameters[attr] = t
        return fn(*tensors[:n])

    try:
        return mt.gradcheck(wrapped, *inputs, *originals)
    finally:
        for (owner, attr), p in zip(slots, originals):
            owner._parameters[attr] = p


# ------------------------------------------------------------------ layers against NumPy
@NORM_FIRST
@pytest.mark.assignment(4, points=5)
def test_encoder_layer_matches_numpy(rng, norm_first):
    layer = randomize(nn.EncoderLayer(D, H, D_FF, dropout=0.0, norm_first=norm_first).to("float64"), rng)
    x = rng.standard_normal((2, 5, D))
    ids = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]])
    mask = F.padding_mask(mt.tensor(ids), pad_id=0)  # (B, 1, 1, S)
    out = layer(mt.tensor(x), mask)
    args = (params_np(layer), x, (ids != 0)[:, None, None, :], H, norm_first)
    check_layer(out.numpy(), np_encoder_layer(*args), where=f"{FORMS[norm_first]}, self-attention with norm1 "
                "then the FFN with norm2; the batch's first sequence padded (keys 3, 4 hidden by the mask)",
                wrong=layer_mistakes(np_encoder_layer, args, {}, norm_first, 2, "the mask not passed to the "
                                     "self-attention"))
    assert layer.self_attn_weights.shape == (2, H, 5, 5)
    assert not layer.self_attn_weights.requires_grad  # kept for pictures, detached
    np.testing.assert_allclose(layer.self_attn_weights.numpy()[0, :, :, 3:], 0.0)  # padding keys get no weight


@NORM_FIRST
@pytest.mark.assignment(4, points=5)
def test_decoder_layer_matches_numpy_and_is_causal_by_itself(rng, norm_first):
    layer = randomize(nn.DecoderLayer(D, H, D_FF, dropout=0.0, norm_first=norm_first).to("float64"), rng)
    x, m = rng.standard_normal((2, 4, D)), rng.standard_normal((2, 6, D))
    src_ids = np.array([[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 5, 6]])
    out = layer(mt.tensor(x), mt.tensor(m), src_mask=F.padding_mask(mt.tensor(src_ids), 0))
    args = (params_np(layer), x, m, (src_ids != 0)[:, None, None, :], H, norm_first)
    check_layer(out.numpy(), np_decoder_layer(*args), where=f"{FORMS[norm_first]}: causal self-attention (norm1), "
                "cross-attention to the memory with src_mask (norm2), the FFN (norm3)",
                wrong=layer_mistakes(np_decoder_layer, args, {}, norm_first, 3, "src_mask not passed to the "
                                     "cross-attention"))
    assert layer.self_attn_weights.shape == (2, H, 4, 4)
    assert layer.cross_attn_weights.shape == (2, H, 4, 6)
    np.testing.assert_array_equal(np.triu(layer.self_attn_weights.numpy()[1, 0], k=1), 0.0)  # no peeking ahead


@NORM_FIRST
@pytest.mark.assignment(4, points=5)
def test_decoder_layer_hides_tgt_mask_keys_and_decodes_with_its_cache(rng, norm_first):
    """The layer hands ``tgt_mask`` (with the causal mask) to its self-attention and its cache to both attentions:
    with a padded target, the whole target at once and one position at a time from ``new_cache()`` are the NumPy
    formula. (A layer that dropped either passed every other graded test of A4.)"""
    layer = randomize(nn.DecoderLayer(D, H, D_FF, dropout=0.0, norm_first=norm_first).to("float64"), rng)
    x, m = rng.standard_normal((2, 4, D)), rng.standard_normal((2, 6, D))
    src_ids, tgt_ids = np.array([[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 5, 6]]), np.array([[5, 6, 0, 7], [1, 2, 3, 4]])
    src_mask, tgt_mask = F.padding_mask(mt.tensor(src_ids), 0), F.padding_mask(mt.tensor(tgt_ids), 0)
    expected = np_decoder_layer(params_np(layer), x, m, (src_ids != 0)[:, None, None, :], H, norm_first,
                                tgt_allowed=(tgt_ids != 0)[:, None, None, :])
    out = layer(mt.tensor(x), mt.tensor(m), src_mask=src_mask, tgt_mask=tgt_mask)
    without = np_decoder_layer(params_np(layer), x, m, (src_ids != 0)[:, None, None, :], H, norm_first)
    check_layer(out.numpy(), expected, where=f"{FORMS[norm_first]}, the whole target: tgt_mask's padding key 2 "
                "hidden from the self-attention (with the causal mask)",
                wrong=[(without, "tgt_mask not passed to the self-attention (the causal mask alone)?")])
    cache, keys = layer.new_cache(), tgt_mask.numpy()  # with a cache, tgt_mask's key axis counts every position so far
    for t in range(4):
        with mt.no_grad():
            step = layer(mt.tensor(x[:, t:t + 1]), mt.tensor(m), src_mask=src_mask, tgt_mask=keys[..., :t + 1],
                         cache=cache)
        held = (len(cache["self_attn"]), len(cache["cross_attn"]))
        assert held == (t + 1, 6), (f"after position {t} the caches hold {held} positions, not ({t + 1}, 6): pass the "
                                    "cache on to _self_attend and _cross_attend")
        np.testing.assert_allclose(step.numpy(), expected[:, t:t + 1], rtol=1e-12, atol=1e-12,
                                   err_msg=f"position {t} with the cache: as in the whole target")


@NORM_FIRST
@pytest.mark.assignment(4, points=5)
def test_encoder_layer_drops_out_each_sublayer_output_while_training(rng, norm_first):
    """Dropout on each sub-layer's output, before the residual sum (paper 5.4): in training, with the masks of the
    same seed, the layer is the NumPy formula with each sub-layer's output times its mask."""
    p = 0.5
    layer = randomize(nn.EncoderLayer(D, H, D_FF, dropout=p, norm_first=norm_first).to("float64"), rng)
    residual_dropout_only(layer)
    x = rng.standard_normal((2, 5, D))
    masks = dropout_masks(2, x.shape, p, seed=11)  # the attention's, then the FFN's
    mt.manual_seed(11)
    out = layer(mt.tensor(x)).numpy()  # training: a new layer trains
    form = "x + Dropout(Sublayer(LayerNorm(x)))" if norm_first else "LayerNorm(x + Dropout(Sublayer(x)))"
    args = (params_np(layer), x, None, H, norm_first)
    check_layer(out, np_encoder_layer(*args, drop=masks), where=f"training, dropout p={p}: {form} for each sub-layer "
                "(the self-attention, then the FFN), one draw each", wrong=dropout_mistakes(
                    np_encoder_layer, args, masks, p, ("self-attention", "FFN")))
    layer.eval()  # evaluation: no dropout
    check_layer(layer(mt.tensor(x)).numpy(), np_encoder_layer(*args), where=f"eval(): {form} with no dropout")


@NORM_FIRST
@pytest.mark.assignment(4, points=5)
def test_decoder_layer_drops_out_each_sublayer_output_while_training(rng, norm_first):
    """As the encoder's: a mask on the output of the self-attention, the cross-attention and the FFN, in that order."""
    p = 0.5
    layer = randomize(nn.DecoderLayer(D, H, D_FF, dropout=p, norm_first=norm_first).to("float64"), rng)
    residual_dropout_only(layer)
    x, m = rng.standard_normal((2, 4, D)), rng.standard_normal((2, 6, D))
    masks = dropout_masks(3, x.shape, p, seed=12)
    mt.manual_seed(12)
    out = layer(mt.tensor(x), mt.tensor(m)).numpy()
    form = "x + Dropout(Sublayer(LayerNorm(x)))" if norm_first else "LayerNorm(x + Dropout(Sublayer(x)))"
    args = (params_np(layer), x, m, None, H, norm_first)
    check_layer(out, np_decoder_layer(*args, drop=masks), where=f"training, dropout p={p}: {form} for each sub-layer "
                "(the self-attention, the cross-attention, the FFN), one draw each", wrong=dropout_mistakes(
                    np_decoder_layer, args, masks, p, ("self-attention", "cross-attention", "FFN")))
    layer.eval()
    check_layer(layer(mt.tensor(x), mt.tensor(m)).numpy(), np_decoder_layer(*args),
                where=f"eval(): {form} with no dropout")


def test_an_unbatched_decoder_layer_is_a_batch_of_one(rng):
    layer = randomize(nn.DecoderLayer(D, H, D_FF, dropout=0.0).to("float64"), rng)
    x, m = rng.standard_normal((4, D)), rng.standard_normal((6, D))  # (L, d_model), (S, d_model)
    out = layer(mt.tensor(x), mt.tensor(m))
    np.testing.assert_allclose(out.numpy(), np_decoder_layer(params_np(layer), x[None], m[None], None, H, False)[0],
                               rtol=1e-12, atol=1e-12)


def test_layers_and_stacks_default_to_the_papers_dropout_and_post_ln(rng):
    # P_drop = 0.1 (paper 5.4) on each sub-layer's output, on the attention weights and inside the FFN (as PyTorch);
    # LayerNorm(x + Sublayer(x)), post-LN (paper 3.1), so no final LayerNorm on the stacks
    encoder, decoder = nn.Encoder(D, H, D_FF, 2), nn.Decoder(D, H, D_FF, 2)
    assert encoder.norm is None and decoder.norm is None
    for layer in [nn.EncoderLayer(D, H, D_FF), nn.DecoderLayer(D, H, D_FF), *encoder.layers, *decoder.layers]:
        assert layer.dropout.p == layer.self_attn.dropout == layer.ffn.dropout.p == 0.1
        assert getattr(layer, "cross_attn", None) is None or layer.cross_attn.dropout == 0.1
        assert layer.norm_first is False
    # post-LN ends in a LayerNorm (gamma 1, beta 0 when built): every output row has mean 0 and variance 1
    x = f64(rng, 2, 5, D)
    for out in (nn.EncoderLayer(D, H, D_FF).to("float64").eval()(x),
                nn.DecoderLayer(D, H, D_FF).to("float64").eval()(x, f64(rng, 2, 3, D))):
        np.testing.assert_allclose(out.numpy().mean(-1), 0.0, atol=1e-10)
        np.testing.assert_allclose(out.numpy().var(-1), 1.0, rtol=1e-3)


def test_post_ln_and_pre_ln_really_differ(rng):
    post = nn.EncoderLayer(D, H, D_FF, dropout=0.0, norm_first=False).to("float64")
    pre = nn.EncoderLayer(D, H, D_FF, dropout=0.0, norm_first=True).to("float64")
    randomize(post, rng)
    pre.load_state_dict(post.state_dict())  # the same weights: only the place of LayerNorm differs
    x = f64(rng, 2, 5, D)
    a, b = post(x).numpy(), pre(x).numpy()
    assert np.abs(a - b).max() > 1e-2
    # post-LN ends in LayerNorm: each row is gamma * (zero mean, unit variance) + beta
    g, beta = post.norm2.gamma.numpy(), post.norm2.beta.numpy()
    z = (a - beta) / g
    np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-10)
    np.testing.assert_allclose(z.var(-1), 1.0, rtol=1e-4)


def test_stacks_final_norm_only_for_pre_ln_unless_asked():
    assert nn.Encoder(D, H, D_FF, 2, norm_first=False).norm is None
    assert isinstance(nn.Encoder(D, H, D_FF, 2, norm_first=True).norm, nn.LayerNorm)
    assert isinstance(nn.Decoder(D, H, D_FF, 2, norm_first=True).norm, nn.LayerNorm)
    assert isinstance(nn.Decoder(D, H, D_FF, 2, final_norm=True).norm, nn.LayerNorm)  # torch.nn.Transformer's way
    assert nn.Encoder(D, H, D_FF, 2, norm_first=True, final_norm=False).norm is None


@NORM_FIRST
def test_stacks_are_their_layers_in_order(rng, norm_first):
    enc = randomize(nn.Encoder(D, H, D_FF, 2, dropout=0.0, norm_first=norm_first).to("float64"), rng)
    dec = randomize(nn.Decoder(D, H, D_FF, 2, dropout=0.0, norm_first=norm_first).to("float64"), rng)
    x, y = rng.standard_normal((2, 5, D)), rng.standard_normal((2, 3, D))
    P_enc, P_dec = params_np(enc), params_np(dec)

    def sub(P, prefix):
        return {k[len(prefix):]: v for k, v in P.items() if k.startswith(prefix)}

    z = x
    for i in range(2):
        z = np_encoder_layer(sub(P_enc, f"layers.{i}."), z, None, H, norm_first)
    if norm_first:
        z = layer_norm_np(z, P_enc["norm.gamma"], P_enc["norm.beta"])
    memory = enc(mt.tensor(x))
    np.testing.assert_allclose(memory.numpy(), z, rtol=1e-11, atol=1e-11)
    out = y
    for i in range(2):
        out = np_decoder_layer(sub(P_dec, f"layers.{i}."), out, z, None, H, norm_first)
    if norm_first:
        out = layer_norm_np(out, P_dec["norm.gamma"], P_dec["norm.beta"])
    np.testing.assert_allclose(dec(mt.tensor(y), memory).numpy(), out, rtol=1e-11, atol=1e-11)
    assert [w.shape for w in dec.cross_attn_weights] == [(2, H, 3, 5)] * 2
    assert [w.shape for w in enc.self_attn_weights] == [(2, H, 5, 5)] * 2


# ------------------------------------------------------------------ gradients
@NORM_FIRST
@pytest.mark.assignment(4, points=5)
def test_gradcheck_encoder_layer(rng, norm_first):
    layer = randomize(nn.EncoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first).to("float64"), rng)
    mask = F.padding_mask(mt.tensor([[1, 1, 0], [1, 1, 1]]), 0)
    x = f64(rng, 2, 3, 4, requires_grad=True)
    args = (params_np(layer), x.numpy(), mask.numpy(), 2, norm_first)
    with mt.no_grad():
        out = layer(x, mask).numpy()
    check_layer(out, np_encoder_layer(*args), where=f"the forward, before the gradcheck (fix "
                f"test_encoder_layer_matches_numpy, its {IDS[norm_first]} cases, first): "
                f"{FORMS[norm_first]}, a padding mask",
                wrong=layer_mistakes(np_encoder_layer, args, {}, norm_first, 2, "the mask not passed to the "
                                     "self-attention"))
    assert gradcheck_with(layer, ["norm1.gamma", "self_attn.W_Q.weight", "ffn.W_1.bias"],
                          lambda x: layer(x, mask), x)


@NORM_FIRST
@pytest.mark.assignment(4, points=5)
def test_gradcheck_decoder_layer(rng, norm_first):
    layer = randomize(nn.DecoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first).to("float64"), rng)
    src_mask = F.padding_mask(mt.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]), 0)
    x, m = f64(rng, 2, 3, 4, requires_grad=True), f64(rng, 2, 4, 4, requires_grad=True)
    args = (params_np(layer), x.numpy(), m.numpy(), src_mask.numpy(), 2, norm_first)
    with mt.no_grad():
        out = layer(x, m, src_mask=src_mask).numpy()
    check_layer(out, np_decoder_layer(*args), where=f"the forward, before the gradcheck (fix "
                f"test_decoder_layer_matches_numpy_and_is_causal_by_itself, its {IDS[norm_first]} cases, first): "
                f"{FORMS[norm_first]}, a src_mask", wrong=layer_mistakes(
                    np_decoder_layer, args, {}, norm_first, 3, "src_mask not passed to the cross-attention"))
    assert gradcheck_with(layer, ["norm2.beta", "cross_attn.W_V.weight", "self_attn.W_O.bias"],
                          lambda x, m: layer(x, m, src_mask=src_mask), x, m)


# ------------------------------------------------------------------ whole models: shapes
def test_model_shapes():
    src, tgt = mt.randint(1, 11, (2, 7)), mt.randint(1, 13, (2, 5))
    model = nn.Transformer(11, 13, d_model=D, heads=H, d_ff=D_FF, num_encoder_layers=2, num_decoder_layers=1,
                           max_len=16)
    assert model(src, tgt).shape == (2, 5, 13)
    memory = model.encode(src)
    assert memory.shape == (2, 7, D)
    assert model.decode(tgt, memory).shape == (2, 5, 13)
    lm = nn.DecoderOnlyLM(17, D, H, D_FF, num_layers=2, max_len=16)
    assert lm(mt.randint(0, 17, (3, 6))).shape == (3, 6, 17)
    learned = nn.DecoderOnlyLM(17, D, H, D_FF, num_layers=1, max_len=16, positional="learned", tie_output=True)
    assert learned(mt.randint(0, 17, (3, 6))).shape == (3, 6, 17)
    for pooling in ("mean", "max", "cls"):
        clf = nn.TransformerClassifier(vocab_size=30, d_model=D, heads=H, d_ff=D_FF, max_len=10, pooling=pooling)
        assert clf(mt.randint(0, 30, (4, 10))).shape == (4,)  # one logit per text, not per token
        assert clf.predict_proba(mt.randint(0, 30, (4, 10))).shape == (4,)


def _sizes(layer) -> tuple[int, int, int, int]:
    """(d_model, heads, d_k, d_ff) of a built encoder/decoder layer, read off its weights: W_Q (d_model, d_model),
    W_1 (d_model, d_ff), W_2 (d_ff, d_model)."""
    attn, ffn = layer.self_attn, layer.ffn
    assert attn.W_Q.weight.shape == (attn.d_model, attn.d_model) and ffn.W_2.weight.shape == ffn.W_1.weight.shape[::-1]
    return attn.W_Q.weight.shape[0], attn.heads, attn.d_k, ffn.W_1.weight.shape[1]


def _dropouts(model) -> set[float]:
    """Every dropout probability in the model: Dropout modules and the attention weights' p."""
    ps = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    return ps | {m.dropout for m in model.modules() if isinstance(m, nn.MultiHeadAttention)}


@pytest.mark.single_backend
def test_transformer_defaults_are_the_papers_base_model():
    # Table 3 "base": d_model 512, h 8 (d_k = 64), d_ff 2048, N = 6 encoder and 6 decoder layers, P_drop 0.1 (5.4),
    # post-LN (3.1); PE rows for 5000 positions (PyTorch's tutorial, the Annotated Transformer). A tiny vocabulary:
    # 44M parameters, built in about 0.5 s
    model = nn.Transformer(11, 13)
    assert len(model.encoder.layers) == len(model.decoder.layers) == 6
    assert {_sizes(layer) for layer in [*model.encoder.layers, *model.decoder.layers]} == {(512, 8, 64, 2048)}
    assert model.src_embed.weight.shape == (11, 512) and model.tgt_embed.weight.shape == (13, 512)
    assert model.positional.PE.shape == (5000, 512) and model.max_len == 5000
    assert _dropouts(model) == {0.1} and model.dropout.p == 0.1
    assert model.encoder.norm is None and not any(layer.norm_first for layer in model.encoder.layers)
    assert model.src_embed is not model.tgt_embed and model.output.weight.shape == (512, 13)  # nothing shared


@pytest.mark.single_backend
def test_lm_defaults_are_the_base_sizes_pre_ln_and_gpt2_s_context():
    # as the Transformer's base model: d_model 512, h 8, d_ff 2048, 6 layers, P_drop 0.1; pre-LN with a final
    # LayerNorm, sinusoidal PE for GPT-2's context of 1024 positions, an output layer of its own
    lm = nn.DecoderOnlyLM(11)
    assert len(lm.decoder.layers) == 6
    assert {_sizes(layer) for layer in lm.decoder.layers} == {(512, 8, 64, 2048)}
    assert all(layer.cross_attn is None and layer.norm_first for layer in lm.decoder.layers)
    assert isinstance(lm.decoder.norm, nn.LayerNorm)
    assert isinstance(lm.positional, nn.SinusoidalPositionalEncoding) and lm.positional.PE.shape == (1024, 512)
    assert lm.max_len == 1024 and _dropouts(lm) == {0.1}
    assert lm.embed.weight.shape == (11, 512) and lm.output.weight.shape == (512, 11)


@pytest.mark.single_backend
def test_classifier_defaults_are_the_documents_sizes():
    # section 5.2: vocab_size 10000, embed_dim 512, num_heads 8, ff_dim 2048, max_sequence_length 100, one block;
    # P_drop 0.1 (the keras.io TransformerBlock's rate), post-LN, mean pooling over the text, pad_id 0
    clf = nn.TransformerClassifier()
    assert clf.embed.weight.shape == (10000, 512)
    assert len(clf.encoder.layers) == 1 and _sizes(clf.encoder.layers[0]) == (512, 8, 64, 2048)
    assert clf.positional.PE.shape == (100, 512) and clf.max_len == 100
    assert _dropouts(clf) == {0.1} and not clf.encoder.layers[0].norm_first
    assert (clf.pooling, clf.pad_id, clf.head.weight.shape) == ("mean", 0, (512, 1))
    import inspect

    config = nn.TransformerClassifier.presets["document"]
    defaults = {k: v.default for k, v in inspect.signature(nn.TransformerClassifier).parameters.items()}
    assert {k: defaults[k] for k in config} == config


# ------------------------------------------------------------------ classifier: padding, pooling, probability
@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_classifier_ignores_padding(pooling):
    clf = nn.TransformerClassifier(vocab_size=30, d_model=D, heads=H, d_ff=D_FF, num_layers=2, max_len=12,
                                   dropout=0.1, pooling=pooling, pad_id=0).to("float64").eval()
    ids = np.array([[5, 6, 7, 8, 9], [3, 4, 2, 0, 0]])  # the second text is already padded
    padded = np.concatenate([ids, np.zeros((2, 4), dtype=ids.dtype)], axis=1)
    a, b = clf(mt.tensor(ids)).numpy(), clf(mt.tensor(padded)).numpy()
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    # ... while a real token does count: the test could fail
    changed = ids.copy()
    changed[1, 0] = 11
    assert abs(clf(mt.tensor(changed)).numpy()[1] - a[1]) > 1e-6


def test_classifier_mean_pooling_is_the_average_of_real_positions(rng):
    clf = nn.TransformerClassifier(vocab_size=30, d_model=D, heads=H, d_ff=D_FF, max_len=8, dropout=0.0)
    h = f64(rng, 4, 4, D)
    # two, four, one real position (a count of 1 is no count clipped to 2), none: the zero vector (mean, max)
    real = np.array([[True, True, False, False], [True, True, True, True], [False, True, False, False],
                     [False] * 4])
    H_ = h.numpy()
    pooled = clf.pool(h, mt.tensor(real).data)
    expected = np.stack([H_[0, :2].mean(0), H_[1].mean(0), H_[2, 1], np.zeros(D)])
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-13)
    clf.pooling = "max"
    np.testing.assert_allclose(clf.pool(h, mt.tensor(real).data).numpy(),
                               np.stack([H_[0, :2].max(0), H_[1].max(0), H_[2, 1], np.zeros(D)]))
    clf.pooling = "cls"  # the [CLS] vector is put first: position 0, whatever the mask says
    np.testing.assert_array_equal(clf.pool(h, mt.tensor(real).data).numpy(), H_[:, 0])


def test_classifier_pool_takes_the_mask_as_a_tensor_and_refuses_a_wrong_one(rng):
    """``pool`` takes ``real`` as a Tensor or an array (padding_mask gives Tensors); a wrong mask is named, not
    a NumPy error from inside."""
    clf = nn.TransformerClassifier(vocab_size=30, d_model=D, heads=H, d_ff=D_FF, max_len=8, dropout=0.0)
    h = f64(rng, 2, 4, D)
    real = np.array([[True, True, False, False], [True, True, True, True]])
    expected = clf.pool(h, mt.tensor(real).data).numpy()
    np.testing.assert_array_equal(clf.pool(h, mt.tensor(real)).numpy(), expected)
    np.testing.assert_array_equal(clf.pool(h, real.tolist()).numpy(), expected)
    with pytest.raises(ValueError, match=r"pool: real has shape \(2, 5\); it must be \(batch, S\) = \(2, 4\)"):
        clf.pool(h, np.ones((2, 5), dtype=bool))
    with pytest.raises(TypeError, match=r"TransformerClassifier.pool: real must be boolean"):
        clf.pool(h, real.astype(np.int64))


def test_classifier_probability_and_loss(rng):
    clf = nn.TransformerClassifier(vocab_size=30, d_model=D, heads=H, d_ff=D_FF, max_len=8, dropout=0.0)
    clf = clf.to("float64")
    ids = mt.tensor(rng.integers(1, 30, (3, 8)))
    z = clf(ids).numpy()
    np.testing.assert_allclose(clf.predict_proba(ids).numpy(), 1 / (1 + np.exp(-z)), rtol=1e-13)
    y = np.array([1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(clf(ids), mt.tensor(y))
    expected = np.mean(-(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z)))))
    assert abs(loss.item() - expected) < 1e-12
    loss.backward()
    assert all(p.grad is not None for p in clf.parameters())
    # logits of both signs (predict_proba has one formula for z >= 0, another for z < 0): the output bias moves them
    bias = clf.head.bias.numpy().copy()
    for shift in (-(z.max() + 1.0), -np.median(z), -z.min() + 1.0):  # all negative, one of each and 0, all positive
        clf.head.bias.data = clf.head.bias.backend.asarray(bias + shift)
        z_shifted = clf(ids).numpy()
        np.testing.assert_allclose(clf.predict_proba(ids).numpy(), 1 / (1 + np.exp(-z_shifted)), rtol=1e-13)


@pytest.mark.single_backend
def test_classifier_cls_vector_is_drawn_from_n_0_1():
    # "variance 1, as the scaled embeddings": E ~ N(0, 1/d_model) times sqrt(d_model); 512 draws, 5 standard errors
    cls = nn.TransformerClassifier(vocab_size=11, num_layers=1, pooling="cls").cls.numpy().astype(np.float64)
    n = cls.size
    assert n == 512 and abs(cls.mean()) < 5 / math.sqrt(n) and abs(cls.std() - 1.0) < 5 / math.sqrt(2 * n)


def test_classifier_refuses_the_documents_float_inputs():
    clf = nn.TransformerClassifier(vocab_size=30, d_model=D, heads=H, d_ff=D_FF, max_len=8)
    x_train = np.random.default_rng(0).random((4, 8))  # section 5.4's np.random.rand: floats, not token ids
    with pytest.raises(TypeError, match="must be integer token ids"):
        clf(mt.tensor(x_train))


# ------------------------------------------------------------------ causality
def test_causal_lm_never_looks_ahead(rng):
    lm = nn.DecoderOnlyLM(20, D, H, D_FF, num_layers=2, max_len=16, dropout=0.0).to("float64")
    randomize(lm, rng, 0.3)
    ids = rng.integers(0, 20, (2, 7))
    changed = ids.copy()
    changed[:, 4] = (ids[:, 4] + 1) % 20
    a, b = lm(mt.tensor(ids)).numpy(), lm(mt.tensor(changed)).numpy()
    np.testing.assert_array_equal(a[:, :4], b[:, :4])  # positions before 4 cannot see token 4
    assert np.abs(a[:, 4:] - b[:, 4:]).min(axis=-1).max() > 0  # from 4 on, they do


def test_byte_level_lm_reads_uint8_ids():
    """Text as bytes: uint8 ids into a vocabulary of 256 (which uint8 cannot count to) act as int64 ids do."""
    lm = nn.DecoderOnlyLM(256, D, H, D_FF, num_layers=1, max_len=8, dropout=0.0)
    ids = np.frombuffer(b"hello", dtype=np.uint8).reshape(1, -1)
    logits = lm(mt.tensor(ids))
    np.testing.assert_array_equal(logits.numpy(), lm(mt.tensor(ids.astype(np.int64))).numpy())
    logits.sum().backward()
    assert lm.embed.weight.grad.numpy()[ord("l")].any() and not lm.embed.weight.grad.numpy()[ord("z")].any()


def test_models_take_ids_as_arrays_or_lists(rng):
    """Ids need not be a Tensor: a NumPy array or nested lists go to the model's backend, the same logits."""
    lm = nn.DecoderOnlyLM(20, D, H, D_FF, num_layers=1, max_len=8, dropout=0.0)
    model = nn.Transformer(20, 20, D, H, D_FF, 1, 1, dropout=0.0, max_len=8)
    ids = rng.integers(0, 20, (2, 5))
    expected, expected_seq2seq = lm(mt.tensor(ids)).numpy(), model(mt.tensor(ids), mt.tensor(ids[:, :3])).numpy()
    for src, tgt in ((ids, ids[:, :3]), (ids.tolist(), ids[:, :3].tolist())):
        np.testing.assert_array_equal(lm(src).numpy(), expected)
        np.testing.assert_array_equal(model(src, tgt).numpy(), expected_seq2seq)
    # a model moved to another backend than the current one takes them onto its own, not the current one
    there = "array_api_strict" if mt.backend.current().name == "numpy" else "numpy"
    clf = nn.TransformerClassifier(vocab_size=20, d_model=D, heads=H, d_ff=D_FF, max_len=8, dropout=0.0).eval()
    expected_clf = clf(mt.tensor(ids)).numpy()
    for m in (lm, model, clf):
        m.to(there)
    out = [lm(ids.tolist()), model(ids.tolist(), ids[:, :3].tolist()), clf(ids.tolist())]
    assert [o.backend.name for o in out] == [there] * 3
    for o, e in zip(out, (expected, expected_seq2seq, expected_clf)):
        np.testing.assert_allclose(o.numpy(), e, rtol=1e-6, atol=1e-6)


def test_transformer_decoder_never_looks_ahead_but_sees_all_the_source(rng):
    model = nn.Transformer(15, 15, D, H, D_FF, 1, 2, dropout=0.0, max_len=16).to("float64")
    src, tgt = rng.integers(0, 15, (2, 6)), rng.integers(0, 15, (2, 5))
    base = model(mt.tensor(src), mt.tensor(tgt)).numpy()
    tgt2 = tgt.copy()
    tgt2[:, 3] = (tgt[:, 3] + 1) % 15
    other = model(mt.tensor(src), mt.tensor(tgt2)).numpy()
    np.testing.assert_array_equal(base[:, :3], other[:, :3])
    src2 = src.copy()
    src2[:, -1] = (src[:, -1] + 1) % 15  # the last source token changes every target position
    assert np.abs(model(mt.tensor(src2), mt.tensor(tgt)).numpy() - base).max(axis=-1).min() > 0


# ------------------------------------------------------------------ key/value cache
def test_mha_cache_one_query_per_step_equals_causal_attention(rng):
    mha = nn.MultiHeadAttention(D, H).to("float64")
    x = f64(rng, 2, 5, D)
    full, _ = mha(x, mask=F.causal_mask(5))
    cache = nn.KVCache()
    for t in range(5):
        out, w = mha(x[:, t:t + 1], cache=cache)
        assert w.shape == (2, H, 1, t + 1)  # one query against the t + 1 keys so far: one position's attention
        np.testing.assert_allclose(out.numpy()[:, 0], full.numpy()[:, t], rtol=1e-12, atol=1e-12)
    assert len(cache) == 5 and cache.K.shape == (2, H, 5, D // H)


def test_mha_static_cache_projects_memory_once(rng):
    mha = nn.MultiHeadAttention(D, H).to("float64")
    q, m = f64(rng, 2, 3, D), f64(rng, 2, 6, D)
    full, _ = mha(q, m, m)
    cache = nn.KVCache(static=True)
    for t in range(3):
        out, w = mha(q[:, t:t + 1], m, m, cache=cache)
        assert w.shape == (2, H, 1, 6)
        np.testing.assert_allclose(out.numpy()[:, 0], full.numpy()[:, t], rtol=1e-12, atol=1e-12)
    K = cache.K
    mha(q[:, :1], m * 0.0, m * 0.0, cache=cache)  # a filled static cache ignores key and value
    assert cache.K is K and len(cache) == 6


@NORM_FIRST
def test_lm_with_cache_equals_full_forward(rng, norm_first):
    lm = nn.DecoderOnlyLM(20, D, H, D_FF, num_layers=2, max_len=16, dropout=0.1, norm_first=norm_first)
    lm = randomize(lm.to("float64"), rng, 0.3).eval()
    ids = mt.tensor(rng.integers(0, 20, (2, 7)))
    full = lm(ids).numpy()
    cache = lm.new_cache()
    with mt.no_grad():
        first = lm(ids[:, :3], cache=cache)  # a prompt of 3 at once, then one token at a time
        steps = [first.numpy()] + [lm(ids[:, t:t + 1], cache=cache).numpy() for t in range(3, 7)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-10, atol=1e-10)
    assert [len(c["self_attn"]) for c in cache] == [7, 7]
    assert lm.decoder.layers[1].self_attn_weights.shape == (2, H, 1, 7)


@NORM_FIRST
def test_transformer_decode_with_cache_equals_full_forward(rng, norm_first):
    model = nn.Transformer(15, 17, D, H, D_FF, 2, 2, dropout=0.1, max_len=16, norm_first=norm_first)
    model = randomize(model.to("float64"), rng, 0.3).eval()
    src, tgt = mt.tensor(rng.integers(1, 15, (2, 6))), mt.tensor(rng.integers(1, 17, (2, 5)))
    src_mask = F.padding_mask(mt.tensor(np.array([[1, 2, 3, 4, 0, 0], [1] * 6])), 0)
    full = model(src, tgt, src_mask=src_mask).numpy()
    memory, cache = model.encode(src, src_mask), model.new_cache()
    with mt.no_grad():
        steps = [model.decode(tgt[:, t:t + 1], memory, src_mask, cache=cache).numpy() for t in range(5)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-10, atol=1e-10)
    assert all(len(c["cross_attn"]) == 6 and len(c["self_attn"]) == 5 for c in cache)


def test_decoder_masks_may_be_arrays_or_lists_as_every_other_mask(rng):
    """The decoder takes the masks MultiHeadAttention and the encoder take: a Tensor, a NumPy bool array, lists."""
    lm = randomize(nn.DecoderOnlyLM(20, D, H, D_FF, num_layers=2, max_len=8, dropout=0.0).to("float64"), rng, 0.3)
    ids = mt.tensor([[1, 2, 0], [3, 4, 5]])
    mask = F.padding_mask(ids, 0)  # (2, 1, 1, 3)
    expected = lm(ids, mask=mask).numpy()
    for other in (mask.numpy(), mask.numpy().tolist()):
        np.testing.assert_array_equal(lm(ids, mask=other).numpy(), expected)
    cache = lm.new_cache()  # with a cache, the mask's key axis counts every position so far
    lm(ids[:, :2], mask=mask.numpy()[..., :2], cache=cache)
    np.testing.assert_allclose(lm(ids[:, 2:], mask=mask.numpy(), cache=cache).numpy(), expected[:, 2:], rtol=1e-12)
    model = nn.Transformer(20, 20, D, H, D_FF, 1, 1, dropout=0.0, max_len=8)
    memory = model.encode(ids)
    np.testing.assert_array_equal(model.decode(ids, memory, tgt_mask=mask.numpy()).numpy(),
                                  model.decode(ids, memory, tgt_mask=mask).numpy())


def test_a_decoder_mask_of_the_wrong_shape_is_named_by_the_decoder():
    lm = nn.DecoderOnlyLM(10, D, H, D_FF, num_layers=1, max_len=8)
    wrong = r"DecoderOnlyLM: mask of shape \(1, 1, 1, 4\) does not broadcast to the scores .* = \(1, 2, 3, 3\)"
    for mask in (mt.tensor(np.ones((1, 1, 1, 4), bool)), np.ones((1, 1, 1, 4), bool)):
        with pytest.raises(ValueError, match=wrong):
            lm(mt.tensor([[1, 2, 3]]), mask=mask)
    layer = nn.DecoderLayer(D, H, D_FF, cross_attention=False)
    cache = layer.new_cache()
    layer(mt.randn(1, 2, D), cache=cache)
    with pytest.raises(ValueError, match=r"tgt_mask of shape \(1, 1, 1, 2\) .* = \(1, 2, 1, 3\)"):
        layer(mt.randn(1, 1, D), tgt_mask=np.ones((1, 1, 1, 2), bool), cache=cache)  # keys: 2 cached + 1 new
    with pytest.raises(ValueError, match=r"DecoderLayer: tgt_mask of shape \(2, 1, 3, 3\) .* = \(1, 2, 3, 3\)"):
        layer(mt.randn(3, D), tgt_mask=np.ones((2, 1, 3, 3), bool))  # an unbatched input is a batch of one


def test_cache_misuse_is_refused():
    lm = nn.DecoderOnlyLM(20, D, H, D_FF, num_layers=2, max_len=6)
    cache = lm.new_cache()
    lm(mt.randint(0, 20, (2, 4)), cache=cache)
    with pytest.raises(ValueError, match="does not fit this call"):
        lm(mt.randint(0, 20, (3, 1)), cache=cache)  # another batch size
    with pytest.raises(ValueError, match="after 4 cached positions, more than max_len=6"):
        lm(mt.randint(0, 20, (2, 3)), cache=cache)
    with pytest.raises(TypeError, match="list of 2 layer caches"):
        lm(mt.randint(0, 20, (2, 1)), cache=cache[:1])
    with pytest.raises(TypeError, match="cache must be a KVCache"):
        nn.MultiHeadAttention(D, H)(mt.randn(1, 2, D), cache={})


@pytest.mark.parametrize("make", ["lm", "seq2seq"])
def test_a_malformed_cache_is_refused_before_it_is_read(make):
    """A model reads the cache's length (where its positions start) before the decoder runs: a cache of the wrong
    type, of the wrong number of layers or with a wrong layer entry gets the decoder's message, not a raw
    'string indices must be integers' or KeyError."""
    if make == "lm":
        model = nn.DecoderOnlyLM(20, D, H, D_FF, num_layers=2, max_len=6)
        run = lambda cache: model(mt.tensor([[1, 2]]), cache=cache)  # noqa: E731
    else:
        model = nn.Transformer(20, 20, D, H, D_FF, 1, 2, max_len=6)
        memory = model.encode(mt.tensor([[3, 4, 5]]))
        run = lambda cache: model.decode(mt.tensor([[1]]), memory, cache=cache)  # noqa: E731
    good = model.new_cache()
    for cache, message in [
        ("x", r"Decoder: cache must be a list of 2 layer caches \(decoder.new_cache\(\)\), got str$"),
        ({"self_attn": None}, r"list of 2 layer caches .*, got dict$"),
        ([], r"list of 2 layer caches .*, got list of length 0"),
        (good[:1], r"list of 2 layer caches .*, got list of length 1"),
        (good + good[:1], r"list of 2 layer caches .*, got list of length 3"),
        (["x", "y"], r"DecoderLayer: cache must be what layer.new_cache\(\) returns, a dict of a KVCache for each"),
        ([{}, {}], r"DecoderLayer: cache must be what layer.new_cache\(\) returns"),
        # the right keys, but not caches: Python's own "object of type 'NoneType' has no len()" before
        ([{k: None for k in layer} for layer in good], r"DecoderLayer: cache must be .* a dict of a KVCache"),
        ([{k: "abc" for k in layer} for layer in good], r"DecoderLayer: cache must be .* a dict of a KVCache"),
    ]:
        with pytest.raises(TypeError, match=message):
            run(cache)
    assert len(good[0]["self_attn"]) == 0  # nothing was written into the good cache along the way
    assert run(good).shape[:2] == (1, 2 if make == "lm" else 1)


# ------------------------------------------------------------------ configs, sizes, tying
@pytest.mark.single_backend
def test_base_config_has_the_papers_parameter_count():
    d, d_ff, V, N = 512, 2048, 37000, 6
    mha = 4 * (d * d + d)  # W_Q, W_K, W_V, W_O with biases
    ffn = d * d_ff + d_ff + d_ff * d + d
    ln = 2 * d
    expected = V * d + N * (mha + ffn + 2 * ln) + N * (2 * mha + ffn + 3 * ln)  # one shared, tied table
    assert expected == 63_082_496  # the paper's Table 3 rounds its own count (other details) to 65M
    model = nn.Transformer.from_config("base")
    assert model.num_parameters() == expected
    assert (model.config["d_model"], model.config["heads"], model.config["d_ff"], model.config["dropout"]) == (
        512, 8, 2048, 0.1)
    assert len(model.encoder.layers) == len(model.decoder.layers) == 6
    assert model.src_embed is model.tgt_embed and model.output is None


def test_config_rebuilds_the_model_and_from_config_overrides():
    model = nn.Transformer.from_config("tiny", src_vocab=11, tgt_vocab=13, norm_first=True)
    again = nn.Transformer(**model.config)
    shapes = [(k, v.shape) for k, v in model.state_dict().items()]
    assert shapes == [(k, v.shape) for k, v in again.state_dict().items()]
    again.load_state_dict(model.state_dict())
    assert nn.Transformer.from_config(model.config).config == model.config
    lm = nn.DecoderOnlyLM.from_config("tiny", vocab=9)
    assert nn.DecoderOnlyLM(**lm.config).num_parameters() == lm.num_parameters()
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        nn.Transformer.from_config("huge")


def test_shared_and_tied_weights(rng):
    model = nn.Transformer(12, 12, D, H, D_FF, 1, 1, dropout=0.0, max_len=8, share_embeddings=True,
                           tie_output=True).to("float64")
    untied = nn.Transformer(12, 12, D, H, D_FF, 1, 1, max_len=8)
    assert untied.num_parameters() - model.num_parameters() == 12 * D + (D * 12 + 12)  # one table, no W_out, b_out
    src, tgt = mt.tensor(rng.integers(0, 12, (2, 4))), mt.tensor(rng.integers(0, 12, (2, 3)))
    memory = model.encode(src)
    hidden = model.decoder(model.positional(model.tgt_embed(tgt)), memory).numpy()
    np.testing.assert_allclose(model(src, tgt).numpy(), hidden @ model.src_embed.weight.numpy().T, rtol=1e-12)
    with pytest.raises(ValueError, match="src_vocab=12 != tgt_vocab=13"):
        nn.Transformer(12, 13, D, H, D_FF, share_embeddings=True)


def test_embeddings_are_scaled_by_sqrt_d_model(rng):
    model = nn.Transformer(12, 12, D, H, D_FF, 1, 1, dropout=0.0, max_len=8).to("float64")
    ids = rng.integers(0, 12, (1, 4))
    x = model.positional(model.src_embed(mt.tensor(ids))).numpy()
    # the PE table is held in float64, so a float64 model adds the exact sinusoids
    pos, two_i = np.arange(4)[:, None], np.arange(0, D, 2)[None, :]
    pe = np.zeros((4, D))
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos / 10000 ** (two_i / D)), np.cos(pos / 10000 ** (two_i / D))
    np.testing.assert_allclose(x, model.src_embed.weight.numpy()[ids] * math.sqrt(D) + pe, rtol=1e-13)


# ------------------------------------------------------------------ bad input
@pytest.mark.usefixtures("checking_values")
def test_bad_input_gets_clear_errors():
    model = nn.Transformer(10, 10, D, H, D_FF, 1, 1, max_len=6)
    with pytest.raises(ValueError, match=r"src has 7 positions, more than max_len=6.*PE"):
        model.encode(mt.randint(0, 10, (1, 7)))
    memory = model.encode(mt.randint(0, 10, (1, 3)))
    with pytest.raises(ValueError, match="tgt_in has 8 positions, more than max_len=6"):
        model.decode(mt.randint(0, 10, (1, 8)), memory)
    with pytest.raises(IndexError, match=r"Transformer.encode: src holds token id 10, out of range for a vocabulary "
                                         r"of 10 \(ids must be in 0..9\)"):
        model(mt.tensor([[1, 10]]), mt.tensor([[1]]))
    with pytest.raises(IndexError, match="Transformer.decode: tgt_in holds token id -1, out of range"):
        model(mt.tensor([[1, 2]]), mt.tensor([[-1]]))
    with pytest.raises(TypeError, match="must be integer token ids.*float32"):
        model(mt.tensor([[1.0, 2.0]]), mt.tensor([[1]]))
    with pytest.raises(ValueError, match=r"must have shape \(batch, seq\)"):
        model.encode(mt.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="cross-attention needs memory"):
        model.decoder.layers[0](mt.randn(1, 2, D))
    lm = nn.DecoderOnlyLM(10, D, H, D_FF, num_layers=1, max_len=4)
    with pytest.raises(ValueError, match="ids has 5 positions, more than max_len=4"):
        lm(mt.randint(0, 10, (1, 5)))
    with pytest.raises(IndexError, match="DecoderOnlyLM: ids holds token id 12, out of range for a vocabulary of 10"):
        lm(mt.tensor([[1, 12]]))
    clf = nn.TransformerClassifier(vocab_size=10, d_model=D, heads=H, d_ff=D_FF, max_len=4)
    with pytest.raises(ValueError, match="ids has 5 positions, more than max_len=4"):
        clf(mt.randint(0, 10, (1, 5)))
    with pytest.raises(IndexError, match="TransformerClassifier: ids holds token id -2, out of range for a vocab"):
        clf(mt.tensor([[-2, 3]]))


@pytest.mark.parametrize("check_values", [True, False])
def test_a_forward_reads_the_range_of_each_lookups_ids_once(monkeypatch, backend, check_values):
    """The ids' min and max (a host read each where values are checked at once; on a GPU, launches whose answer is
    read at the next read of the device) are computed by the embedding alone, once per lookup: not again by the
    model's own checks or by the lookup (take)."""
    xp, reads = backend.xp, []

    def spy(reduction):
        inner = getattr(xp, reduction)

        def counted(x, *args, **kwargs):
            if x.dtype == xp.int64:  # ids; neither softmax's max of the scores nor a mask's int8 "some key seen" flag
                reads.append(reduction)
            return inner(x, *args, **kwargs)

        return counted

    for reduction in ("min", "max"):
        monkeypatch.setattr(xp, reduction, spy(reduction))
    monkeypatch.setattr(backend, "check_values", check_values)
    per_lookup = ["min", "max"]
    model = nn.Transformer(10, 10, D, H, D_FF, 1, 1, max_len=6)
    model(mt.tensor([[1, 2, 3]]), mt.tensor([[1, 4]]))
    assert reads == per_lookup * 2  # src, tgt_in
    reads.clear()
    lm = nn.DecoderOnlyLM(10, D, H, D_FF, num_layers=1, max_len=6)
    cache = lm.new_cache()
    lm(mt.tensor([[1, 2]]), cache=cache)
    lm(mt.tensor([[3]]), cache=cache)
    assert reads == per_lookup * 2  # one per call
    reads.clear()
    nn.TransformerClassifier(vocab_size=10, d_model=D, heads=H, d_ff=D_FF, max_len=4)(mt.tensor([[1, 2, 0]]))
    assert reads == per_lookup


@pytest.mark.parametrize("build", [
    lambda: nn.Transformer(10, 10, d_model=10, heads=3),
    lambda: nn.DecoderOnlyLM(10, d_model=10, heads=3),
    lambda: nn.TransformerClassifier(10, d_model=10, heads=3),
    lambda: nn.EncoderLayer(10, 3, 20),
    lambda: nn.Decoder(10, 3, 20, 2),
    lambda: nn.MultiHeadAttention(10, 3),  # one check, one message, for every layer and model
])
def test_d_model_not_divisible_by_heads(build):
    with pytest.raises(ValueError, match=r"d_model=10 is not divisible by heads=3 \(.*d_k = d_model / heads"):
        build()


@pytest.mark.parametrize("build", [
    lambda n: nn.Transformer(n(10), n(12), n(8), n(2), n(16), n(1), n(2), max_len=n(8)),
    lambda n: nn.DecoderOnlyLM(n(10), n(8), n(2), n(16), n(1), max_len=n(8)),
    lambda n: nn.TransformerClassifier(n(10), n(8), n(2), n(16), n(1), max_len=n(8), pad_id=n(1)),
], ids=["Transformer", "DecoderOnlyLM", "TransformerClassifier"])
def test_models_take_numpy_integers_and_keep_python_ints_in_config(build):
    """Sizes read from arrays (np.int64) build the same model; config holds Python ints, as JSON needs."""
    plain, numpy_sized = build(int), build(np.int64)
    assert numpy_sized.config == plain.config
    assert all(type(v) is int for v in numpy_sized.config.values() if not isinstance(v, bool | float | str))
    json.dumps(numpy_sized.config)
    assert [(k, v.shape) for k, v in numpy_sized.state_dict().items()] == [
        (k, v.shape) for k, v in plain.state_dict().items()]


def test_bad_settings():
    with pytest.raises(ValueError, match="pooling must be one of"):
        nn.TransformerClassifier(10, D, H, D_FF, pooling="sum")
    with pytest.raises(ValueError, match="pad_id must be a token id in 0..9"):
        nn.TransformerClassifier(10, D, H, D_FF, pad_id=10)
    with pytest.raises(ValueError, match="positional must be"):
        nn.DecoderOnlyLM(10, D, H, D_FF, positional="rotary")
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        nn.Encoder(D, H, D_FF, 0)


def test_classifier_probability_runs_without_dropout_whatever_the_mode():
    """predict_proba of a model left in training mode (as Trainer.fit leaves it) drew dropout masks: another
    probability at every call."""
    mt.manual_seed(0)
    clf = nn.TransformerClassifier(vocab_size=30, d_model=D, heads=H, d_ff=D_FF, max_len=8, dropout=0.5)
    ids = mt.tensor([[5, 6, 7, 8]])
    expected = clf.eval().predict_proba(ids).numpy()
    assert not clf.training
    clf.train()
    np.testing.assert_array_equal(clf.predict_proba(ids).numpy(), expected)
    np.testing.assert_array_equal(clf.predict_proba(ids).numpy(), expected)
    assert all(m.training for m in clf.modules())  # its mode put back


def test_a_mask_that_hides_every_key_from_every_query_is_refused_where_a_model_is_given_it():
    """PyTorch's masks of nn.Transformer and nn.MultiheadAttention hide where True. Passed here as they are, with the
    causal mask the decoder adds, they left no query a key (its padding mask: none of the longest example's): every
    attention weight 0 (the rule for a query with no key), the attention layers adding nothing, and the model
    training on without a word. (Each call reads the device,
    where a check put off, array-api-strict's and CuPy's default, is made.)"""
    ids = mt.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 1]])
    lm = nn.DecoderOnlyLM(10, D, H, D_FF, num_layers=1, max_len=8).eval()
    torch_causal = ~F.causal_mask(5)  # torch's causal mask, generate_square_subsequent_mask as a bool: True above
    with pytest.raises(ValueError, match=r"^DecoderOnlyLM: mask and the causal mask hide every key from every query "
                                         r"of an example \(mask of shape \(5, 5\)\): its attention weights would all "
                                         r"be 0\. True marks a key a query may attend; .* \(True hides\): write ~mask"):
        lm(ids, torch_causal).numpy()
    np.testing.assert_array_equal(lm(ids, ~torch_causal).numpy(), lm(ids).numpy())  # what the message says to write
    model = nn.Transformer(10, 10, D, H, D_FF, 1, 1, max_len=8)
    torch_padding = ~F.padding_mask(ids, 0)  # torch's key_padding_mask: True at the padding, here none
    with pytest.raises(ValueError, match=r"^Transformer\.encode: src_mask hides every key from every query of an "
                                         r"example \(src_mask of shape \(2, 1, 1, 5\)\)"):
        model(ids, ids, src_mask=torch_padding).numpy()
    padded = mt.tensor([[1, 2, 3, 0, 0], [6, 7, 8, 9, 1]])  # torch's, inverted, hides every key of the longest one
    with pytest.raises(ValueError, match=r"^Transformer\.encode: src_mask hides every key from every query of an "):
        model(padded, ids, src_mask=~F.padding_mask(padded, 0)).numpy()
    assert np.isfinite(model(padded, ids, src_mask=F.padding_mask(padded, 0)).numpy()).all()
    memory = model.encode(ids)
    with pytest.raises(ValueError, match=r"^Transformer\.decode: src_mask hides every key"):
        model.decode(ids, memory, src_mask=torch_padding).numpy()
    with pytest.raises(ValueError, match=r"^Transformer\.decode: tgt_mask and the causal mask hide every key"):
        model.decode(ids, memory, tgt_mask=~F.causal_mask(5)).numpy()
    # an example of padding only has nothing to attend either (the batches refuse one); a mask a model makes itself
    # is not looked at: a classifier's batch of texts of padding only is scored
    classifier = nn.TransformerClassifier(vocab_size=10, d_model=D, heads=H, d_ff=D_FF, max_len=8, pooling="mean")
    assert np.isfinite(classifier.predict_proba(mt.tensor([[0, 0, 0]])).numpy()).all()


def test_a_mask_that_hides_every_key_is_found_at_the_next_read_of_the_device_as_on_a_gpu(checking_later):
    """Where values are checked later (CuPy's default: the host waits for no step), the forward runs and the error
    comes at the next read of the device, saying so."""
    lm = nn.DecoderOnlyLM(10, D, H, D_FF, num_layers=1, max_len=8)
    logits = lm(mt.tensor([[1, 2, 3]]), ~F.causal_mask(3))  # no read of the device yet
    with pytest.raises(ValueError, match=r"^DecoderOnlyLM: mask and the causal mask hide every key .* found at this "
                                         r"read of the device"):
        logits.numpy()
    assert lm(mt.tensor([[1, 2, 3]]), F.causal_mask(3)).numpy().shape == (1, 3, 10)  # the error left nothing behind


def test_a_mask_of_the_wrong_shape_is_named_as_the_model_was_given_it():
    """src_mask given to a Transformer was named by the layer that met it: "MultiHeadAttention: mask of shape ..."."""
    model = nn.Transformer(10, 10, D, H, D_FF, 1, 1, max_len=8)
    ids = mt.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"^Transformer\.encode: src_mask of shape \(1, 4\) does not broadcast to the "
                                         r"scores \(batch, heads, L, S\) = \(1, 2, 3, 3\)"):
        model(ids, ids, src_mask=mt.ones(1, 4, dtype="bool"))
    with pytest.raises(ValueError, match=r"^Transformer\.decode: tgt_mask of shape \(2, 2\) does not broadcast"):
        model(ids, ids, tgt_mask=mt.ones(2, 2, dtype="bool"))
    with pytest.raises(ValueError, match=r"^Encoder: mask of shape \(1, 4\) does not broadcast"):
        model.encoder(mt.randn(1, 3, D), mt.ones(1, 4, dtype="bool"))  # a stack called directly: its own names


def test_self_attention_weights_with_a_cache_have_a_key_per_position_so_far():
    """As DecoderLayer's and Decoder's ``self_attn_weights`` say: ``(batch, heads, L, S)``, not ``(.., L, L)``, where
    ``S`` counts the cached positions too."""
    layer, memory = nn.DecoderLayer(D, H, D_FF).eval(), mt.randn(1, 6, D)
    cache = layer.new_cache()
    for t in range(3):
        layer(mt.randn(1, 1, D), memory, cache=cache)
        assert layer.self_attn_weights.shape == (1, H, 1, t + 1)
        assert layer.cross_attn_weights.shape == (1, H, 1, 6)
    decoder = nn.Decoder(D, H, D_FF, num_layers=2, cross_attention=False).eval()
    cache = decoder.new_cache()
    decoder(mt.randn(1, 2, D), cache=cache)
    decoder(mt.randn(1, 1, D), cache=cache)
    assert [w.shape for w in decoder.self_attn_weights] == [(1, H, 1, 3)] * 2
