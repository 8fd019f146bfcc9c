"""The layers, each against plain float64 NumPy written here, finite differences, and PyTorch where installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.testing import close_to_torch, gradcheck_module, name_known_mistake, rel_err

from references import layer_norm_np, pe_np


def f64(rng, *shape, requires_grad=True):
    return mt.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=requires_grad)


#: the relative error against PyTorch of these float64 layers that :func:`close_to_torch` allows, unless told
TORCH_TOL = 1e-12


# ------------------------------------------------------------------ init
def test_xavier_uniform_limit_and_variance():
    W = nn.init.xavier_uniform_(nn.Parameter(mt.zeros(200, 300)))
    a = math.sqrt(6 / (200 + 300))  # the limit, by the formula
    values = W.numpy().astype(np.float64)
    assert np.abs(values).max() <= a
    assert values.var() == pytest.approx(a**2 / 3, rel=0.05)  # Var U[-a, a] = a^2 / 3
    assert W.grad is None and W.requires_grad


def test_xavier_normal_std_and_gain():
    W = nn.init.xavier_normal_(nn.Parameter(mt.zeros(200, 300)), gain=2.0)
    sigma = 2.0 * math.sqrt(2 / (200 + 300))
    assert W.numpy().std() == pytest.approx(sigma, rel=0.03)
    assert abs(W.numpy().astype(np.float64).mean()) < 5 * sigma / math.sqrt(200 * 300)  # N(0, sigma^2): centred


def test_uniform_and_normal_default_to_U01_and_N01():
    # the defaults of torch.nn.init.uniform_ (a=0, b=1) and normal_ (mean=0, std=1): 100000 draws each, the mean
    # and std within 5 standard errors of the distribution's
    n = 100_000
    u = nn.init.uniform_(mt.zeros(n)).numpy().astype(np.float64)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)  # U[0, 1): mean 1/2, variance 1/12
    # Var(std) ~ (mu_4 - sigma^4) / (4 sigma^2 n), with mu_4 = 1/80 and sigma^2 = 1/12
    assert abs(u.std() - math.sqrt(1 / 12)) < 5 * math.sqrt((1 / 80 - 1 / 144) / (4 / 12 * n))
    z = nn.init.normal_(mt.zeros(n)).numpy().astype(np.float64)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.std() - 1.0) < 5 / math.sqrt(2 * n)


def test_init_follows_manual_seed():
    mt.manual_seed(7)
    first = nn.Linear(5, 5).weight.numpy()
    mt.manual_seed(7)
    np.testing.assert_array_equal(nn.Linear(5, 5).weight.numpy(), first)
    mt.manual_seed(8)
    assert not np.array_equal(nn.Linear(5, 5).weight.numpy(), first)


def test_init_needs_two_axes():
    with pytest.raises(ValueError, match=r"init: fan_in and fan_out need a weight of 2 or more dimensions, got shape"):
        nn.init.xavier_uniform_(nn.Parameter(mt.zeros(3)))


# ------------------------------------------------------------------ Linear
def test_linear_matches_numpy(rng):
    lin = nn.Linear(4, 3)
    lin.bias = nn.Parameter(rng.standard_normal(3).astype(np.float32))
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    W, b = lin.weight.numpy().astype(np.float64), lin.bias.numpy().astype(np.float64)
    np.testing.assert_allclose(lin(mt.tensor(x)).numpy(), x.astype(np.float64) @ W + b, rtol=1e-5, atol=1e-6)
    assert lin.weight.shape == (4, 3) and [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert np.abs(W).max() <= math.sqrt(6 / (4 + 3))  # Xavier limit
    np.testing.assert_allclose(lin(mt.tensor(x[0, 0])).numpy(), x[0, 0].astype(np.float64) @ W + b, rtol=1e-5,
                               atol=1e-6)  # one vector (d_in,) -> (d_out,)
    assert not nn.Linear(4, 3).bias.numpy().any()  # biases start at zero


def test_linear_without_bias():
    lin = nn.Linear(4, 3, bias=False)
    assert lin.bias is None and [n for n, _ in lin.named_parameters()] == ["weight"]
    x = mt.ones(1, 4)
    np.testing.assert_allclose(lin(x).numpy(), lin.weight.numpy().sum(axis=0, keepdims=True), rtol=1e-6)


def test_linear_gradcheck(rng):
    lin = nn.Linear(3, 2).to("float64")
    lin.bias = nn.Parameter(rng.standard_normal(2))
    assert gradcheck_module(lin, f64(rng, 2, 4, 3))


def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"Linear: input has shape \(2, 5\); its last axis must be d_in=4"):
        nn.Linear(4, 3)(mt.zeros(2, 5))
    with pytest.raises(ValueError, match=r"Linear: input has shape \(\); its last axis must be d_in=4"):
        nn.Linear(4, 3)(mt.tensor(1.0))  # a 0-d input has no feature axis at all
    with pytest.raises(ValueError, match="Linear: d_out must be a positive integer, got 0"):
        nn.Linear(4, 0)
    # the layer's name, not its formula's (linear) or an operation's inside it
    with pytest.raises(TypeError, match=r"^Linear: input must be floating point, got int64 with shape \(2, 4\)$"):
        nn.Linear(4, 3)(mt.ones(2, 4, dtype="int64"))
    with pytest.raises(TypeError, match=r"^Linear: input must be a Tensor, got list"):
        nn.Linear(4, 3)([[1.0, 2.0, 3.0, 4.0]])


@pytest.mark.parametrize("build", [
    lambda n: nn.Linear(n(4), n(3)),
    lambda n: nn.Embedding(n(10), n(4)),
    lambda n: nn.LayerNorm(n(4)),
    lambda n: nn.FeedForward(n(4), n(8)),
    lambda n: nn.SinusoidalPositionalEncoding(n(4), n(8)),
    lambda n: nn.LearnedPositionalEmbedding(n(8), n(4)),
    lambda n: nn.MultiHeadAttention(n(4), n(2)),
], ids=["Linear", "Embedding", "LayerNorm", "FeedForward", "SinusoidalPE", "LearnedPE", "MultiHeadAttention"])
def test_sizes_may_be_numpy_integers_and_are_kept_as_python_ints(build):
    """np.int64(4) is an integer (a size read from an array often is one); a bool is not, even though Python says so."""
    plain, numpy_sized = build(int), build(np.int64)
    assert repr(numpy_sized) == repr(plain)
    sizes = [v for m in numpy_sized.modules() for k, v in vars(m).items() if k.startswith(("d_", "num_", "max_"))]
    assert sizes and all(type(v) is int for v in sizes)
    with pytest.raises(TypeError, match=r"must be a positive integer, got True"):
        build(lambda k: True if k == 4 else k)


def test_positional_start_may_be_a_numpy_integer():
    pe = nn.SinusoidalPositionalEncoding(4, max_len=8)
    x = mt.zeros(1, 2, 4)
    np.testing.assert_array_equal(pe(x, start=np.int64(3)).numpy(), pe(x, start=3).numpy())
    with pytest.raises(ValueError, match=r"SinusoidalPositionalEncoding: start must be an integer >= 0, got -1"):
        pe(x, start=-1)


def run_with_torch(torch, ours, theirs, x, G):
    """``ours`` and ``theirs`` (PyTorch's layer, its weights copied) on the same input ``x``, float64 numbers (their
    gradient wanted) or token ids, then each one's backward from ``G``: ``(y, yt, x, xt)``, ``x`` as each tensor."""
    floats = np.asarray(x).dtype.kind == "f"
    x, xt = mt.tensor(x, requires_grad=floats), torch.tensor(x, requires_grad=floats)
    y, yt = ours(x), theirs(xt)
    y.backward(G)
    yt.backward(torch.from_numpy(G))
    return y, yt, x, xt


def test_linear_against_torch(rng):
    torch = pytest.importorskip("torch")
    lin = nn.Linear(4, 3).to("float64")
    lin.bias = nn.Parameter(rng.standard_normal(3))
    ref = torch.nn.Linear(4, 3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(lin.weight.numpy().T))  # torch stores W^T, (d_out, d_in)
        ref.bias.copy_(torch.from_numpy(lin.bias.numpy()))
    y, yt, x, xt = run_with_torch(torch, lin, ref, rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 3)))
    form = "nn.Linear, x W + b"
    close_to_torch(rel_err(y.numpy(), yt.detach().numpy()), f"{form}, the forward", tol=TORCH_TOL)
    close_to_torch(rel_err(lin.weight.grad.numpy(), ref.weight.grad.numpy().T), f"{form}, the gradient of W",
                   tol=TORCH_TOL)
    close_to_torch(rel_err(lin.bias.grad.numpy(), ref.bias.grad.numpy()), f"{form}, the gradient of b", tol=TORCH_TOL)
    close_to_torch(rel_err(x.grad.numpy(), xt.grad.numpy()), f"{form}, the gradient of x", tol=TORCH_TOL)


# ------------------------------------------------------------------ Embedding
IDS = [[1, 4, 1], [0, 4, 4]]  # repeated ids: their gradients must add up


def test_embedding_is_a_row_lookup_with_optional_scale():
    emb = nn.Embedding(5, 8)
    E = emb.weight.numpy().astype(np.float64)
    np.testing.assert_array_equal(emb(mt.tensor(IDS)).numpy(), E[np.array(IDS)])
    np.testing.assert_array_equal(emb(IDS).numpy(), E[np.array(IDS)])  # nested lists work too
    scaled = nn.Embedding(5, 8, scale=True)
    scaled.load_state_dict(emb.state_dict())
    np.testing.assert_allclose(scaled(mt.tensor(IDS)).numpy(), E[np.array(IDS)] * math.sqrt(8), rtol=1e-6)


def test_embedding_gradient_adds_repeated_ids(rng):
    emb = nn.Embedding(5, 3, scale=True).to("float64")
    G = rng.standard_normal((2, 3, 3))
    emb(mt.tensor(IDS)).backward(G)
    expected = np.zeros((5, 3))
    np.add.at(expected, np.array(IDS), G * math.sqrt(3))
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected, rtol=1e-12)
    assert not emb.weight.grad.numpy()[[2, 3]].any()  # ids never used get no gradient


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16"])
def test_embedding_takes_narrow_integer_ids(rng, dtype):
    """Bytes as token ids (uint8) index a table of 300 rows, which uint8 cannot count to: same rows, same gradient."""
    emb = nn.Embedding(300, 3, scale=True).to("float64")
    ids = np.array([[5, 100, 5], [0, 127, 1]], dtype=dtype)
    G = rng.standard_normal((2, 3, 3))
    y = emb(mt.tensor(ids))
    np.testing.assert_array_equal(y.numpy(), emb(mt.tensor(ids.astype(np.int64))).numpy())
    y.backward(G)
    expected = np.zeros((300, 3))
    np.add.at(expected, ids.astype(np.int64), G * math.sqrt(3))
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected, rtol=1e-12)


def test_embedding_init_variance():
    emb = nn.Embedding(1000, 64)
    assert emb.weight.numpy().std() == pytest.approx(64**-0.5, rel=0.03)  # N(0, 1/d_model)


@pytest.mark.usefixtures("checking_values")
def test_embedding_bad_ids():
    emb = nn.Embedding(10, 4)
    with pytest.raises(TypeError, match=r"Embedding: ids must be integer token ids .*, got float32 with shape \(2,\)"):
        emb(mt.tensor([1.0, 2.0]))
    vocab = r"Embedding: ids holds token id 10, out of range for a vocabulary of 10 \(ids must be in 0..9\)"
    with pytest.raises(IndexError, match=vocab):
        emb(mt.tensor([[3, 10], [2, 1]]))
    with pytest.raises(IndexError, match="token id -1, out of range for a vocabulary of 10"):
        emb(mt.tensor([-1, 2]))  # a lookup by take would read -1 as the last row: an embedding refuses it


def test_embedding_against_torch(rng):
    torch = pytest.importorskip("torch")
    emb = nn.Embedding(5, 3).to("float64")
    ref = torch.nn.Embedding(5, 3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(emb.weight.numpy()))
    y, yt, _, _ = run_with_torch(torch, emb, ref, IDS, rng.standard_normal((2, 3, 3)))
    assert rel_err(y.numpy(), yt.detach().numpy()) == 0.0, "nn.Embedding, the forward: the rows of E, exactly"
    close_to_torch(rel_err(emb.weight.grad.numpy(), ref.weight.grad.numpy()), "nn.Embedding, the gradient of E (each "
                   "id's row of G added to its row, a repeated id's twice)", tol=TORCH_TOL)


# ------------------------------------------------------------------ LayerNorm
@pytest.mark.assignment(4, points=5)
def test_layer_norm_matches_numpy(rng):
    norm = nn.LayerNorm(6, eps=1e-3).to("float64")
    assert [n for n, _ in norm.named_parameters()] == ["gamma", "beta"]
    np.testing.assert_array_equal(norm.gamma.numpy(), np.ones(6))
    np.testing.assert_array_equal(norm.beta.numpy(), np.zeros(6))
    norm.load_state_dict({"gamma": rng.standard_normal(6), "beta": rng.standard_normal(6)})
    x = rng.standard_normal((2, 3, 6)) * 5 + 3
    expected = layer_norm_np(x, norm.gamma.numpy(), norm.beta.numpy(), 1e-3)
    np.testing.assert_allclose(norm(mt.tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=(
        "nn.LayerNorm(6, eps=1e-3) (the fused LayerNorm), the forward: gamma (x - mu) / sqrt(sigma^2 + eps) + beta "
        "per row of a (2, 3, 6) input, the biased variance"))


def test_layer_norm_gradcheck(rng):
    norm = nn.LayerNorm(4).to("float64")
    norm.load_state_dict({"gamma": rng.standard_normal(4), "beta": rng.standard_normal(4)})
    assert gradcheck_module(norm, f64(rng, 2, 3, 4))


def test_layer_norm_bad_input():
    with pytest.raises(ValueError, match=r"LayerNorm: input has shape \(2, 5\); its last axis must be d_model=4"):
        nn.LayerNorm(4)(mt.zeros(2, 5))
    with pytest.raises(TypeError, match=r"^LayerNorm: input must be floating point, got int64"):
        nn.LayerNorm(4)(mt.ones(2, 4, dtype="int64"))
    with pytest.raises(ValueError, match="LayerNorm: eps must be a finite number >= 0, got -1.0"):
        nn.LayerNorm(4, eps=-1.0)


def test_layer_norm_against_torch(rng):
    torch = pytest.importorskip("torch")
    norm = nn.LayerNorm(6).to("float64")
    norm.load_state_dict({"gamma": rng.standard_normal(6), "beta": rng.standard_normal(6)})
    ref = torch.nn.LayerNorm(6, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(norm.gamma.numpy()))
        ref.bias.copy_(torch.from_numpy(norm.beta.numpy()))
    y, yt, x, xt = run_with_torch(torch, norm, ref, rng.standard_normal((2, 3, 6)), rng.standard_normal((2, 3, 6)))
    form = "nn.LayerNorm, gamma (x - mu) / sqrt(sigma^2 + eps) + beta"
    close_to_torch(rel_err(y.numpy(), yt.detach().numpy()), f"{form}, the forward", tol=TORCH_TOL)
    close_to_torch(rel_err(x.grad.numpy(), xt.grad.numpy()), f"{form}, the gradient of x", tol=1e-10)
    close_to_torch(rel_err(norm.gamma.grad.numpy(), ref.weight.grad.numpy()), f"{form}, the gradient of gamma",
                   tol=TORCH_TOL)
    close_to_torch(rel_err(norm.beta.grad.numpy(), ref.bias.grad.numpy()), f"{form}, the gradient of beta",
                   tol=TORCH_TOL)


# ------------------------------------------------------------------ Dropout
def test_dropout_in_training_and_evaluation():
    y = nn.Dropout()(mt.ones(100, 100)).numpy()  # by default the paper's P_drop = 0.1 (section 5.4)
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.9)} and (y == 0).mean() == pytest.approx(0.1, abs=0.02)
    drop = nn.Dropout(0.25)
    x = mt.ones(100, 100)
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert (y == 0).mean() == pytest.approx(0.25, abs=0.02)
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match=r"Dropout: the dropout probability p must be a number in \[0, 1\), got 1.0"):
        nn.Dropout(1.0)


# ------------------------------------------------------------------ FeedForward
def gelu_np(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


ACTIVATIONS = {"relu": lambda h: np.maximum(0, h), "gelu": gelu_np}


def check_ffn(got, x, params, activation, where="", masks=None, p=0.0):
    """``got`` = FFN(x) = act(x W_1 + b_1) W_2 + b_2 (``masks``: the hidden layer's dropout factors m / (1 - p)),
    with a message naming the formula and a known mistake: the other activation, dropout not rescaled."""
    W_1, b_1, W_2, b_2 = params
    m = 1.0 if masks is None else masks

    def ffn(act, m):
        return (ACTIVATIONS[act](x @ W_1 + b_1) * m) @ W_2 + b_2

    expected = ffn(activation, m)
    other = "gelu" if activation == "relu" else "relu"
    wrong = [(ffn(other, m), f"{other} in place of {activation}: self.activation?")]
    if masks is not None:
        wrong.append((ffn(activation, m * (1 - p)), "the kept activations not rescaled: times 1 / (1 - p)?"))
    mistake = name_known_mistake(got, expected, wrong, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=(
        f"{where}FFN(x) = {activation}(x W_1 + b_1) W_2 + b_2 (paper eq. 2), x {tuple(np.shape(x))}, "
        f"d_ff = {W_1.shape[1]}"
        + ("" if masks is None else f", dropout p={p} on the hidden activations only") + mistake))


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.assignment(4, points=5)
def test_feed_forward_matches_equation_2(rng, activation):
    ffn = nn.FeedForward(4, 16, activation=activation).to("float64")
    assert [n for n, _ in ffn.named_parameters()] == ["W_1.weight", "W_1.bias", "W_2.weight", "W_2.bias"]
    ffn.W_1.bias = nn.Parameter(rng.standard_normal(16))
    ffn.W_2.bias = nn.Parameter(rng.standard_normal(4))
    W_1, b_1, W_2, b_2 = (p.numpy() for p in ffn.parameters())
    x = rng.standard_normal((2, 3, 4))
    check_ffn(ffn(mt.tensor(x)).numpy(), x, (W_1, b_1, W_2, b_2), activation)  # max(0, x W_1 + b_1) W_2 + b_2


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.assignment(4, points=5)
def test_feed_forward_gradcheck(rng, activation):
    """The forward against NumPy first (gradcheck compares the backward with the forward's own finite differences,
    so it would pass a wrong forward), then gradcheck."""
    ffn = nn.FeedForward(3, 5, activation=activation).to("float64")
    x = f64(rng, 2, 2, 3)
    with mt.no_grad():
        got = ffn(x).numpy()
    check_ffn(got, x.numpy(), [q.numpy() for q in ffn.parameters()], activation,
              where="the forward, before the gradcheck (fix test_feed_forward_matches_equation_2 first): ")
    assert gradcheck_module(ffn, x)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.assignment(4, points=5)
def test_feed_forward_drops_out_the_hidden_layer_only_while_training(rng, activation):
    """Dropout on the hidden activations (as PyTorch's TransformerEncoderLayer), not on the input or the output:
    in training, with the mask of the same seed, FFN(x) = (act(x W_1 + b_1) * m / (1 - p)) W_2 + b_2."""
    p = 0.5
    ffn = nn.FeedForward(4, 16, dropout=p, activation=activation).to("float64")
    ffn.W_1.bias = nn.Parameter(rng.standard_normal(16))
    ffn.W_2.bias = nn.Parameter(rng.standard_normal(4))
    params = [q.numpy() for q in ffn.parameters()]
    x = rng.standard_normal((2, 3, 4))
    mt.manual_seed(4)
    m = F.dropout(mt.ones(2, 3, 16, dtype="float64"), p).numpy()  # m / (1 - p), the hidden layer's mask
    mt.manual_seed(4)
    check_ffn(ffn(mt.tensor(x)).numpy(), x, params, activation, masks=m, p=p, where="training: ")
    ffn.eval()  # evaluation: equation 2 itself
    check_ffn(ffn(mt.tensor(x)).numpy(), x, params, activation, where="eval(), no dropout: ")


def test_feed_forward_bad_arguments():
    with pytest.raises(ValueError, match="FeedForward: activation must be one of 'relu', 'gelu', got 'tanh'"):
        nn.FeedForward(4, 8, activation="tanh")
    with pytest.raises(ValueError, match=r"FeedForward: input has shape \(2, 3\); its last axis must be d_model=4"):
        nn.FeedForward(4, 8)(mt.zeros(2, 3))


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.assignment(4, points=5)
def test_feed_forward_against_torch(rng, activation):
    torch = pytest.importorskip("torch")
    ffn = nn.FeedForward(4, 8, activation=activation).to("float64")
    ffn.W_1.bias = nn.Parameter(rng.standard_normal(8))
    act = torch.nn.ReLU() if activation == "relu" else torch.nn.GELU(approximate="tanh")
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), act, torch.nn.Linear(8, 4)).double()
    with torch.no_grad():
        for ours, theirs in ((ffn.W_1, ref[0]), (ffn.W_2, ref[2])):
            theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().T))
            theirs.bias.copy_(torch.from_numpy(ours.bias.numpy()))
    y, yt, x, xt = run_with_torch(torch, ffn, ref, rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4)))
    form = f"FFN(x) = {activation}(x W_1 + b_1) W_2 + b_2"
    close_to_torch(rel_err(y.numpy(), yt.detach().numpy()), f"{form}, the forward", tol=TORCH_TOL)
    close_to_torch(rel_err(x.grad.numpy(), xt.grad.numpy()), f"{form}, the gradient of x (the backward)",
                   tol=TORCH_TOL)
    for name, ours, theirs in (("W_1", ffn.W_1, ref[0]), ("W_2", ffn.W_2, ref[2])):
        close_to_torch(rel_err(ours.weight.grad.numpy(), theirs.weight.grad.numpy().T), f"{form}, the gradient of "
                       f"{name}.weight", tol=TORCH_TOL)
        close_to_torch(rel_err(ours.bias.grad.numpy(), theirs.bias.grad.numpy()), f"{form}, the gradient of "
                       f"{name}.bias", tol=TORCH_TOL)


# ------------------------------------------------------------------ positional encodings
def test_sinusoidal_encoding_adds_the_fixed_table(rng):
    pe = nn.SinusoidalPositionalEncoding(6, max_len=10)
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(pe(mt.tensor(x)).numpy(), x + pe_np(10, 6)[:4], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pe(mt.tensor(x), start=3).numpy(), x + pe_np(10, 6)[3:7], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pe(mt.tensor(x[0])).numpy(), x[0] + pe_np(10, 6)[:4], rtol=1e-6, atol=1e-6)  # (seq, d)
    assert list(pe.parameters()) == [] and pe.num_parameters() == 0


def test_sinusoidal_encoding_passes_gradient_unchanged(rng):
    pe = nn.SinusoidalPositionalEncoding(4, max_len=5).to("float64")
    x = f64(rng, 2, 3, 4)
    G = rng.standard_normal((2, 3, 4))
    pe(x).backward(G)
    np.testing.assert_array_equal(x.grad.numpy(), G)


def test_positional_encodings_refuse_long_sequences():
    with pytest.raises(ValueError, match="SinusoidalPositionalEncoding: a sequence of length 9 does not fit max_len=8"):
        nn.SinusoidalPositionalEncoding(4, max_len=8)(mt.zeros(1, 9, 4))
    with pytest.raises(ValueError, match="a sequence of length 3 starting at position 6 does not fit max_len=8"):
        nn.SinusoidalPositionalEncoding(4, max_len=8)(mt.zeros(1, 3, 4), start=6)
    # max_len by default 5000, as PyTorch's tutorial and the Annotated Transformer (and the base preset here)
    with pytest.raises(ValueError, match="a sequence of length 5001 does not fit max_len=5000"):
        nn.SinusoidalPositionalEncoding(4)(mt.zeros(5001, 4))
    with pytest.raises(ValueError, match="LearnedPositionalEmbedding: a sequence of length 9 does not fit max_len=8"):
        nn.LearnedPositionalEmbedding(8, 4)(mt.zeros(1, 9, 4))
    with pytest.raises(ValueError, match=r"input has shape \(1, 9, 5\); its last axis must be d_model=4"):
        nn.SinusoidalPositionalEncoding(4, max_len=8)(mt.zeros(1, 9, 5))


def test_positional_encodings_name_their_argument_order_when_the_sizes_look_swapped():
    """Sinusoidal takes (d_model, max_len) and Learned (max_len, d_model): an input as wide as max_len says so."""
    x = mt.zeros(1, 3, 8)  # d_model = 8, max_len = 16 meant
    with pytest.raises(ValueError, match=r"SinusoidalPositionalEncoding: input has shape \(1, 3, 8\); its last axis "
                       r"must be d_model=16, and it is max_len=8: were the two swapped\? The order is "
                       r"SinusoidalPositionalEncoding\(d_model, max_len\)"):
        nn.SinusoidalPositionalEncoding(16, 8)(x)  # the Learned layer's order
    with pytest.raises(ValueError, match=r"swapped\? The order is LearnedPositionalEmbedding\(max_len, d_model\)"):
        nn.LearnedPositionalEmbedding(8, 16)(x)  # the Sinusoidal layer's order
    for pe in (nn.SinusoidalPositionalEncoding(d_model=8, max_len=16), nn.LearnedPositionalEmbedding(d_model=8,
                                                                                                      max_len=16)):
        assert pe(x).shape == (1, 3, 8)  # by keyword, either way round


def test_learned_positional_embedding_is_a_trained_table(rng):
    pos = nn.LearnedPositionalEmbedding(max_len=6, d_model=4).to("float64")
    assert [n for n, _ in pos.named_parameters()] == ["weight"] and pos.weight.shape == (6, 4)
    P = pos.weight.numpy()
    x = f64(rng, 2, 3, 4)
    np.testing.assert_allclose(pos(x).numpy(), x.numpy() + P[:3], rtol=1e-12)
    np.testing.assert_allclose(pos(x[0]).numpy(), x.numpy()[0] + P[:3], rtol=1e-12)  # one sequence (seq, d_model)
    G = rng.standard_normal((2, 3, 4))
    pos(x).backward(G)
    expected = np.zeros((6, 4))
    expected[:3] = G.sum(axis=0)  # each row gets the gradient of its position, summed over the batch
    np.testing.assert_allclose(pos.weight.grad.numpy(), expected, rtol=1e-12)
    assert gradcheck_module(pos, f64(rng, 1, 2, 4))


def test_learned_positions_start_as_N_0_0_02():
    # the docstring's N(0, 0.02^2), as GPT-2's (nanoGPT, Hugging Face): 64000 draws, within 5 standard errors
    P = nn.LearnedPositionalEmbedding(max_len=1000, d_model=64).weight.numpy().astype(np.float64)
    assert abs(P.mean()) < 5 * 0.02 / math.sqrt(P.size)
    assert abs(P.std() - 0.02) < 5 * 0.02 / math.sqrt(2 * P.size)
