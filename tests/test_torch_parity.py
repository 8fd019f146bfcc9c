"""The layers and stacks against their torch.nn twins, weights copied by ``nn.convert``: values and every gradient.

float64, dropout 0. Masks are converted explicitly: here True = *may* attend; torch's boolean
masks mean *may not* (``~mask``), its float masks add ``-inf``. Each test records its largest
relative error as the pytest property ``max_rel_error`` (``-o junit_family=xunit1 --junitxml=FILE`` lists
them); nothing is printed.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.nn.convert import from_torch_state_dict, to_torch, to_torch_state_dict, torch_twin
from minitransformer.testing import rel_err

D, H, D_FF, B, L, S = 8, 2, 12, 2, 5, 6
TOLERANCE = 1e-10  # float64 agrees to rounding: ~1e-15 relative


def randomize(module, rng):
    """Random values in every parameter (biases, gamma, beta too), so each one is checked."""
    for name, p in module.named_parameters():
        values = rng.standard_normal(p.shape) * 0.5 + (1.0 if name.endswith("gamma") else 0.0)
        p.data = p.backend.asarray(values)
    return module


BUILDERS = {
    "EncoderLayer": lambda nf: nn.EncoderLayer(D, H, D_FF, dropout=0.0, norm_first=nf),
    "DecoderLayer": lambda nf: nn.DecoderLayer(D, H, D_FF, dropout=0.0, norm_first=nf),
    "Encoder": lambda nf: nn.Encoder(D, H, D_FF, 2, dropout=0.0, norm_first=nf),
    "Decoder": lambda nf: nn.Decoder(D, H, D_FF, 2, dropout=0.0, norm_first=nf),
}


def masks(torch, kind: str, mask_type: str, src_ids, tgt_ids):
    """Our masks (True = allowed) and torch's keyword arguments (True = NOT allowed, or float -inf) for ``kind``."""
    def theirs(allowed):  # torch's form of one of our masks
        allowed = np.asarray(allowed)
        if mask_type == "bool":
            return torch.from_numpy(~allowed)
        return torch.from_numpy(np.where(allowed, 0.0, -np.inf))

    src_real, tgt_real = src_ids != 0, tgt_ids != 0  # (B, S), (B, L)
    src_pad = F.padding_mask(mt.tensor(src_ids), 0)  # (B, 1, 1, S)
    causal = np.tril(np.ones((L, L), dtype=bool))  # key j <= query i
    if kind.startswith("Encoder"):
        ours = {"mask": src_pad}
        torch_kw = {"src_key_padding_mask": theirs(src_real)}
        if mask_type == "float":  # also an attention mask of the encoder's own (torch's src_mask / mask): causal
            ours = {"mask": F.combine_masks(F.causal_mask(S), src_pad)}
            torch_kw["src_mask" if kind == "EncoderLayer" else "mask"] = theirs(np.tril(np.ones((S, S), bool)))
        return ours, torch_kw
    ours = {"src_mask": src_pad, "tgt_mask": F.padding_mask(mt.tensor(tgt_ids), 0)}  # causal: built inside
    torch_kw = {"tgt_mask": theirs(causal), "tgt_key_padding_mask": theirs(tgt_real),
                "memory_key_padding_mask": theirs(src_real)}
    return ours, torch_kw


@pytest.mark.parametrize("mask_type", ["bool", "float"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("kind", list(BUILDERS))
def test_forward_and_every_gradient_match_torch(rng, kind, norm_first, mask_type, record_property):
    torch = pytest.importorskip("torch")
    ours = randomize(BUILDERS[kind](norm_first).to("float64"), rng)
    ref = to_torch(ours)
    assert type(ref).__name__ == torch_twin(ours)
    decoder = kind.startswith("Decoder")
    src_ids = np.array([[4, 5, 6, 7, 0, 0], [1, 2, 3, 4, 5, 6]])
    tgt_ids = np.array([[4, 5, 6, 0, 0], [1, 2, 3, 4, 5]])
    arrays = [rng.standard_normal((B, L if decoder else S, D))] + ([rng.standard_normal((B, S, D))] if decoder else [])
    mine = [mt.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_masks, torch_masks = masks(torch, kind, mask_type, src_ids, tgt_ids)

    out = ours(*mine, **our_masks)
    G = rng.standard_normal(out.shape)
    (out * mt.tensor(G)).sum().backward()
    out_t = ref(*theirs, **torch_masks)
    out_t.backward(torch.from_numpy(G))

    errors = {"output": rel_err(out.numpy(), out_t.detach().numpy())}
    grads = to_torch_state_dict(ours, {name: p.grad for name, p in ours.named_parameters()})  # torch's names
    torch_grads = dict(ref.named_parameters())
    assert set(grads) == set(torch_grads)  # every parameter of the twin is compared
    for name, g in grads.items():
        errors[f"grad {name}"] = rel_err(g.numpy(), torch_grads[name].grad.numpy())
    for k, (a, b) in enumerate(zip(mine, theirs)):
        errors[f"grad input {k}"] = rel_err(a.grad.numpy(), b.grad.numpy())
    worst = max(errors, key=errors.get)
    record_property("max_rel_error", f"{errors[worst]:.2e} ({worst})")
    assert errors[worst] < TOLERANCE, {k: v for k, v in errors.items() if v >= TOLERANCE}


@pytest.mark.parametrize("bias", [True, False])
def test_multihead_attention_matches_torch(rng, bias, record_property):
    torch = pytest.importorskip("torch")
    mha = randomize(nn.MultiHeadAttention(D, H, bias=bias).to("float64"), rng)
    ref = to_torch(mha)
    q, kv = rng.standard_normal((B, L, D)), rng.standard_normal((B, S, D))
    ids = np.array([[1, 2, 3, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    out, w = mha(mt.tensor(q), mt.tensor(kv), mt.tensor(kv), mask=F.padding_mask(mt.tensor(ids), 0))
    out_t, w_t = ref(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), key_padding_mask=torch.from_numpy(ids == 0),
                     average_attn_weights=False)
    err = max(rel_err(out.numpy(), out_t.detach().numpy()), rel_err(w.numpy(), w_t.detach().numpy()))
    record_property("max_rel_error", f"{err:.2e}")
    assert err < TOLERANCE


def test_gelu_layer_matches_torch_with_the_same_tanh_approximation(rng, record_property):
    torch = pytest.importorskip("torch")
    layer = randomize(nn.DecoderLayer(D, H, D_FF, dropout=0.0, activation="gelu").to("float64"), rng)
    x, m = rng.standard_normal((B, L, D)), rng.standard_normal((B, S, D))
    causal = torch.from_numpy(~np.tril(np.ones((L, L), dtype=bool)))
    err = rel_err(layer(mt.tensor(x), mt.tensor(m)).numpy(),
                  to_torch(layer)(torch.tensor(x), torch.tensor(m), tgt_mask=causal).detach().numpy())
    record_property("max_rel_error", f"{err:.2e}")
    assert err < TOLERANCE


@pytest.mark.parametrize("activation", ["ReLU", "GELU", "Identity"])
def test_a_sequential_mlp_and_its_twin_agree_values_and_gradients(rng, activation, record_property):
    """``nn.Sequential(nn.Linear, nn.ReLU(), ...)`` converts to torch's Sequential of the parts' twins, in order."""
    torch = pytest.importorskip("torch")
    ours = randomize(nn.Sequential(nn.Linear(D, D_FF), getattr(nn, activation)(), nn.Dropout(0.5),
                                   nn.Linear(D_FF, 3)).to("float64"), rng).eval()
    twin = to_torch(ours)
    assert [type(m).__name__ for m in twin] == ["Linear", activation, "Dropout", "Linear"]
    x = rng.standard_normal((B, L, D))
    y = ours(mt.tensor(x))
    y.sum().backward()
    theirs = twin(torch.tensor(x))
    theirs.sum().backward()
    grads = to_torch_state_dict(ours, {name: p.grad for name, p in ours.named_parameters()})
    err = max([rel_err(y.numpy(), theirs.detach().numpy())]
              + [rel_err(grads[name].numpy(), p.grad.numpy()) for name, p in twin.named_parameters()])
    record_property("max_rel_error", f"{err:.2e}")
    assert err < TOLERANCE


# ------------------------------------------------------------------ the conversion itself
ROUND_TRIP = {
    **BUILDERS,
    "MultiHeadAttention": lambda nf: nn.MultiHeadAttention(D, H),
    "MultiHeadAttention without bias": lambda nf: nn.MultiHeadAttention(D, H, bias=False),
    "Linear": lambda nf: nn.Linear(3, 5),
    "LayerNorm": lambda nf: nn.LayerNorm(D),
    "Embedding": lambda nf: nn.Embedding(7, D),
    "Decoder with torch.nn.Transformer's final norm": lambda nf: nn.Decoder(D, H, D_FF, 2, final_norm=True),
    "Encoder of one layer": lambda nf: nn.Encoder(D, H, D_FF, 1, dropout=0.0, norm_first=nf),
    "Sequential MLP": lambda nf: nn.Sequential(nn.Linear(D, D_FF), nn.GELU(), nn.Dropout(0.1), nn.Linear(D_FF, D)),
    "ModuleDict of a ModuleList": lambda nf: nn.ModuleDict({"head": nn.Linear(D, 3),
                                                            "stack": nn.ModuleList([nn.LayerNorm(D), nn.ReLU()])}),
}


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("kind", list(ROUND_TRIP))
def test_round_trip_is_exact(rng, kind, norm_first):
    torch = pytest.importorskip("torch")
    ours = randomize(ROUND_TRIP[kind](norm_first).to("float64"), rng)
    state = to_torch_state_dict(ours)
    twin = to_torch(ours)
    assert all(torch.equal(twin.state_dict()[k], v) for k, v in state.items())
    assert set(twin.state_dict()) == set(state)
    fresh = ROUND_TRIP[kind](norm_first).to("float64")  # other random weights
    from_torch_state_dict(fresh, state)
    for name, value in ours.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name], value)
    # and from torch's side: values made in torch survive the trip both ways
    other = to_torch(ROUND_TRIP[kind](norm_first).to("float64"))
    with torch.no_grad():
        for p in other.parameters():
            p.normal_()
    from_torch_state_dict(fresh, other.state_dict())
    assert all(torch.equal(to_torch_state_dict(fresh)[k], v) for k, v in other.state_dict().items())


def test_encoder_twin_matches_in_torchs_inference_fast_path(rng):
    """eval() and no_grad: torch runs its fused path, and with nested tensors (enable_nested_tensor=True) it would
    return 0 at padded positions, where the encoder computes a value as at any other position."""
    torch = pytest.importorskip("torch")
    ours = randomize(nn.Encoder(D, H, D_FF, 2, dropout=0.0).to("float64"), rng)
    twin = to_torch(ours).eval()
    x, ids = rng.standard_normal((B, S, D)), np.array([[4, 5, 6, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        theirs = twin(torch.tensor(x), src_key_padding_mask=torch.from_numpy(ids == 0)).numpy()
    assert rel_err(ours(mt.tensor(x), mask=F.padding_mask(mt.tensor(ids), 0)).numpy(), theirs) < TOLERANCE


def test_linear_weight_is_transposed_and_in_proj_stacked(rng):
    torch = pytest.importorskip("torch")
    mha = randomize(nn.MultiHeadAttention(D, H).to("float64"), rng)
    state = to_torch_state_dict(mha)
    W = state["in_proj_weight"].numpy()  # (3 d_model, d_model): [W_Q^T; W_K^T; W_V^T]
    np.testing.assert_array_equal(W[D:2 * D], mha.W_K.weight.numpy().T)
    np.testing.assert_array_equal(state["out_proj.weight"].numpy(), mha.W_O.weight.numpy().T)
    assert state["in_proj_bias"].dtype == torch.float64
    assert to_torch(nn.Linear(3, 4)).weight.dtype == torch.float32  # the module's own dtype


def test_conversion_errors():
    with pytest.raises(TypeError, match="Transformer has no torch.nn twin"):
        to_torch_state_dict(nn.Transformer(10, 10, D, H, D_FF, 1, 1, max_len=8))
    with pytest.raises(TypeError, match="FeedForward has no torch.nn twin"):
        to_torch(nn.FeedForward(D, D_FF))
    with pytest.raises(TypeError, match="without cross-attention"):
        to_torch(nn.DecoderOnlyLM(10, D, H, D_FF, num_layers=1, max_len=8).decoder)
    with pytest.raises(TypeError, match="FeedForward has no torch.nn twin"):  # a container's part is named
        to_torch_state_dict(nn.Sequential(nn.Linear(D, D), nn.FeedForward(D, D_FF)))
    with pytest.raises(TypeError, match="DecoderLayer without cross-attention"):
        to_torch_state_dict(nn.ModuleDict({"x": nn.DecoderLayer(D, H, D_FF, cross_attention=False)}))
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="scale=True"):
        to_torch(nn.Embedding(5, D, scale=True))
    layer = nn.EncoderLayer(D, H, D_FF)
    before = layer.state_dict()
    state = dict(to_torch_state_dict(layer))
    state["norm3.weight"] = state.pop("norm2.weight")
    state["linear1.weight"] = torch.zeros(3, 3)
    with pytest.raises(nn.StateDictError, match=r"missing keys: 'norm2.weight'[\s\S]*unexpected keys: 'norm3.weight'"
                                               r"[\s\S]*'linear1.weight'.*\(12, 8\), the state \(3, 3\)"):
        from_torch_state_dict(layer, state)
    assert all(np.array_equal(v, layer.state_dict()[k]) for k, v in before.items())  # nothing was loaded
