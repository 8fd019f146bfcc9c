"""layer_norm and linear: by hand, by finite differences, and against PyTorch."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.testing import close_to_torch, name_known_mistake_of
from minitransformer.testing import rel_err as _rel_err

from references import LAYER_NORM_MISTAKES, layer_norm_np


def _form(fused: bool) -> str:
    """The body a message is about: the fused operation (its forward on arrays) or the composition."""
    return ("fused form (LayerNorm.forward in autograd/fused.py)" if fused else
            "composed form (fused=False: the primitives in functional/normalization.py)")


# ------------------------------------------------------------------ layer_norm
# the graded hand values run both forms: the fused operation and the composition of primitives (fused=False)
FORMS = pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])


@FORMS
@pytest.mark.assignment(4, points=5)
def test_layer_norm_by_hand(fused):
    # row [1, 2, 3]: mu = 2, sigma^2 = (1 + 0 + 1) / 3 = 2/3, so y = (x - 2) / sqrt(2/3) = [-1.2247, 0, 1.2247]
    # row [2, 2, 8]: mu = 4, sigma^2 = (4 + 4 + 16) / 3 = 8,  so y = (x - 4) / sqrt(8)   = [-0.7071, -0.7071, 1.4142]
    x = mt.tensor([[1.0, 2.0, 3.0], [2.0, 2.0, 8.0]], dtype="float64")
    r1, r2 = math.sqrt(2 / 3), math.sqrt(8)
    expected = [[-1 / r1, 0.0, 1 / r1], [-2 / r2, -2 / r2, 4 / r2]]
    y = F.layer_norm(x, eps=0.0, fused=fused).numpy()
    mistake = name_known_mistake_of(functools.partial(layer_norm_np, x.numpy(), eps=0.0), LAYER_NORM_MISTAKES, y,
                                    rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15,
                               err_msg=f"{_form(fused)}: (x - mu) / sqrt(sigma^2) per row, the biased variance "
                                       f"(divided by d), no gamma, beta{mistake}")
    # gamma scales and beta shifts each column
    gamma = mt.tensor([1.0, 2.0, -1.0], dtype="float64")
    beta = mt.tensor([0.5, 0.0, 1.0], dtype="float64")
    y = F.layer_norm(x, gamma, beta, eps=0.0, fused=fused).numpy()
    np.testing.assert_allclose(y, np.array(expected) * [1.0, 2.0, -1.0] + [0.5, 0.0, 1.0], rtol=1e-12, atol=1e-15,
                               err_msg=f"{_form(fused)}: gamma x_hat + beta, gamma = [1, 2, -1], beta = [0.5, 0, 1]")
    # eps goes under the square root, with the biased variance: [1, 3] has mu = 2, sigma^2 = (1 + 1) / 2 = 1, and
    # with eps = 3, y = (x - 2) / sqrt(1 + 3) = [-0.5, 0.5] (eps outside, (x - 2) / (1 + 3), gives [-0.25, 0.25];
    # the unbiased variance 2 gives [-0.4472, 0.4472])
    y = F.layer_norm(mt.tensor([[1.0, 3.0]], dtype="float64"), eps=3.0, fused=fused).numpy()
    np.testing.assert_allclose(y, [[-0.5, 0.5]], rtol=1e-12,
                               err_msg=f"{_form(fused)}: layer_norm([[1, 3]], eps=3) = (x - 2) / sqrt(1 + 3), eps "
                                       "under the square root (outside: [-0.25, 0.25]; unbiased variance: +-0.4472)")


@pytest.mark.assignment(4, points=5)
def test_layer_norm_matches_plain_numpy_with_eps(rng):
    x = rng.standard_normal((2, 3, 5)) * 4 + 1
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    y = F.layer_norm(mt.tensor(x), mt.tensor(gamma), mt.tensor(beta)).numpy()
    formula = functools.partial(layer_norm_np, x, gamma=gamma, beta=beta)
    mistake = name_known_mistake_of(formula, LAYER_NORM_MISTAKES, y, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(y, formula(), rtol=1e-12, atol=1e-13,
                               err_msg=f"{_form(True)}, the default: gamma (x - mu) / sqrt(sigma^2 + eps) + beta on a "
                                       f"(2, 3, 5) input, eps = 1e-5 by default{mistake}")


@pytest.mark.assignment(4, points=5)
def test_layer_norm_of_a_constant_vector_is_beta():
    # sigma^2 = 0: eps keeps it finite, and x - mu = 0 leaves just beta
    y = F.layer_norm(mt.full((2, 4), 3.0), beta=mt.tensor([1.0, 2.0, 3.0, 4.0])).numpy()
    np.testing.assert_array_equal(y, [[1.0, 2.0, 3.0, 4.0]] * 2, err_msg=(
        f"{_form(True)}: rows of 3.0, sigma^2 = 0: x - mu = 0, so y = beta (eps keeps 0 / sqrt(0 + eps) finite)"))
    assert y.dtype == np.float32, f"layer_norm of a float32 input gave {y.dtype}: keep float32"


@pytest.mark.assignment(4, points=3)
def test_layer_norm_gradcheck(rng):
    """The forward against NumPy first (gradcheck compares the backward with the forward's own finite differences:
    a forward that differs from the formula the backward assumes fails there as a gradient), then gradcheck."""
    x = mt.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    gamma = mt.tensor(rng.standard_normal(4), requires_grad=True)
    beta = mt.tensor(rng.standard_normal(4), requires_grad=True)
    with mt.no_grad():
        y = F.layer_norm(x, gamma, beta).numpy()
    formula = functools.partial(layer_norm_np, x.numpy(), gamma=gamma.numpy(), beta=beta.numpy())
    mistake = name_known_mistake_of(formula, LAYER_NORM_MISTAKES, y, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(y, formula(), rtol=1e-12, atol=1e-13, err_msg=(
        f"{_form(True)}, the forward, before the gradcheck: gamma (x - mu) / sqrt(sigma^2 + eps) + beta, the biased "
        f"variance; fix it first (test_layer_norm_by_hand){mistake}"))
    assert mt.gradcheck(lambda a, g, b: F.layer_norm(a, g, b), x, gamma, beta)
    assert mt.gradcheck(lambda a: F.layer_norm(a), x)


@pytest.mark.assignment(4, points=5)
def test_layer_norm_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    x, gamma, beta = rng.standard_normal((2, 3, 6)) * 3 + 2, rng.standard_normal(6), rng.standard_normal(6)
    v = rng.standard_normal(x.shape)
    ours = [mt.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    y = F.layer_norm(*ours, eps=1e-5)
    (y * mt.tensor(v)).sum().backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    ty = torch.nn.functional.layer_norm(theirs[0], (6,), theirs[1], theirs[2], eps=1e-5)
    (ty * torch.tensor(v)).sum().backward()
    form = f"gamma (x - mu) / sqrt(sigma^2 + eps) + beta, {_form(True)}"
    close_to_torch(_rel_err(y.numpy(), ty.detach().numpy()), f"{form}, the forward")
    for name, a, b in zip(("x", "gamma", "beta"), ours, theirs):
        close_to_torch(_rel_err(a.grad.numpy(), b.grad.numpy()), f"{form}, the gradient of {name} (the backward)")


@FORMS
@pytest.mark.assignment(4, points=5)  # the one-pass variance, mean(x^2) - mu^2, passed every other graded test
def test_layer_norm_of_rows_far_from_zero_in_float32(fused, rng):
    # sigma^2 as the mean of (x - mu)^2: written as mean(x^2) - mu^2 (or (x + mu)(x - mu)), float32 keeps 7 digits
    # of x^2 ~ 1e6 and the variance ~1 loses them all (the error here: 0.1; NaN at an offset of 1e4); the message
    # says so where the result is that mistake (LAYER_NORM_MISTAKES' one_pass), not of another (the unbiased variance)
    x = (1000.0 + rng.standard_normal((4, 8))).astype(np.float32)
    y = F.layer_norm(mt.tensor(x), fused=fused).numpy()
    mistake = name_known_mistake_of(functools.partial(layer_norm_np, x), LAYER_NORM_MISTAKES, y, atol=1e-3)
    np.testing.assert_allclose(y, layer_norm_np(x), atol=1e-3, err_msg=(
        f"{_form(fused)}: rows 1000 + N(0, 1) in float32, (x - mu) / sqrt(sigma^2 + eps), sigma^2 the mean of "
        f"(x - mu)^2 (divided by d){mistake}"))


def _layer_norm_with(**mistake):
    """A ``layer_norm`` that gives the reference's known wrong answer ``mistake`` (in ``x``'s dtype), to check what
    the graded tests say of it."""

    def layer_norm(x, gamma=None, beta=None, eps=1e-5, fused=True):
        g, b = (None if t is None else t.numpy() for t in (gamma, beta))
        return mt.tensor(layer_norm_np(x.numpy(), g, b, eps=eps, **mistake).astype(x.numpy().dtype))

    return layer_norm


@pytest.mark.single_backend  # (NumPy arrays alone)
def test_the_layer_norm_messages_name_the_unbiased_variance_and_the_one_pass_one_only_where_it_is(monkeypatch, rng):
    monkeypatch.setattr(F, "layer_norm", _layer_norm_with(unbiased=True))
    for test in (test_layer_norm_by_hand, functools.partial(test_layer_norm_of_rows_far_from_zero_in_float32,
                                                            rng=rng)):
        with pytest.raises(AssertionError, match=r"known wrong answer with the unbiased variance") as failed:
            test(fused=False)
        assert "mean(x^2)" not in str(failed.value), test
    monkeypatch.setattr(F, "layer_norm", _layer_norm_with(one_pass=True))
    with pytest.raises(AssertionError, match=re.escape("known wrong answer with sigma^2 as mean(x^2) - mu^2")):
        test_layer_norm_of_rows_far_from_zero_in_float32(False, rng)
    test_layer_norm_by_hand(False)  # in float64, near zero, the one-pass variance is right


@FORMS
def test_layer_norm_of_a_vector_and_of_a_scalar(fused):
    # one axis is enough: [1, 2, 3] has mu = 2, sigma^2 = 2/3; a 0-d tensor has no axis to normalise
    y = F.layer_norm(mt.tensor([1.0, 2.0, 3.0], dtype="float64"), eps=0.0, fused=fused)
    np.testing.assert_allclose(y.numpy(), np.array([-1.0, 0.0, 1.0]) / math.sqrt(2 / 3), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match=r"layer_norm: x must have at least one axis .*, got a scalar"):
        F.layer_norm(mt.tensor(1.0), fused=fused)


def test_layer_norm_bad_input():
    x = mt.zeros(2, 3)
    with pytest.raises(ValueError, match=r"layer_norm: gamma has shape \(4,\), expected \(3,\)"):
        F.layer_norm(x, gamma=mt.ones(4))
    with pytest.raises(ValueError, match=r"layer_norm: beta has shape \(1, 3\), expected \(3,\)"):
        F.layer_norm(x, beta=mt.ones(1, 3))
    with pytest.raises(ValueError, match=r"layer_norm: eps must be a finite number >= 0, got -1.0"):
        F.layer_norm(x, eps=-1.0)
    with pytest.raises(TypeError, match=r"layer_norm: x must be floating point"):
        F.layer_norm(mt.tensor([[1, 2]]))


# ------------------------------------------------------------------ linear
def test_linear_by_hand():
    # x = [1, 2]; W columns are [1, 0], [0, 1], [1, 1]; b = [0, 0, 10]  ->  [1, 2, 1 + 2 + 10]
    x = mt.tensor([[1.0, 2.0]])
    W = mt.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(F.linear(x, W, mt.tensor([0.0, 0.0, 10.0])).numpy(), [[1.0, 2.0, 13.0]])
    np.testing.assert_array_equal(F.linear(x, W).numpy(), [[1.0, 2.0, 3.0]])


def test_linear_batched_gradcheck_and_torch(rng):
    x = mt.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    W = mt.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    b = mt.tensor(rng.standard_normal(5), requires_grad=True)
    assert mt.gradcheck(F.linear, x, W, b)
    torch = pytest.importorskip("torch")
    # PyTorch stores the weight transposed: (d_out, d_in)
    expected = torch.nn.functional.linear(torch.tensor(x.numpy()), torch.tensor(W.numpy()).T, torch.tensor(b.numpy()))
    close_to_torch(_rel_err(F.linear(x, W, b).numpy(), expected.numpy()), "linear x W + b, the forward")


def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"linear: x \(2, 3\) @ W \(4, 5\): the last axis of x must equal d_in = 4$"):
        F.linear(mt.zeros(2, 3), mt.zeros(4, 5))
    # W as torch's F.linear takes it, (d_out, d_in): the message says so, and W.T gives torch's answer
    W = mt.tensor(np.arange(15, dtype=np.float32).reshape(5, 3) / 10)
    with pytest.raises(ValueError, match=r"linear: x \(2, 3\) @ W \(5, 3\): the last axis of x must equal d_in = 5; "
                                         r"W \(5, 3\) is torch's layout, \(d_out, d_in\), where W here is "
                                         r"\(d_in, d_out\): write W.T$"):
        F.linear(mt.ones(2, 3), W)
    for x in (mt.ones(3), mt.ones(2, 4, 3)):  # one vector, a batch of sequences: the same hint
        with pytest.raises(ValueError, match=r"must equal d_in = 5; W \(5, 3\) is torch's layout"):
            F.linear(x, W)
        assert F.linear(x, W.T).shape == x.shape[:-1] + (5,)
    with pytest.raises(ValueError, match=r"linear: x \(\) @ W \(3, 5\): the last axis of x must equal d_in = 3$"):
        F.linear(mt.tensor(2.0), W.T)  # a number has no last axis
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(F.linear(mt.ones(2, 3), W.T).numpy(),
                               torch.nn.functional.linear(torch.ones(2, 3), torch.tensor(W.numpy())).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"linear: b has shape \(4,\), expected \(d_out,\) = \(5,\)"):
        F.linear(mt.zeros(2, 4), mt.zeros(4, 5), mt.zeros(4))
    with pytest.raises(ValueError, match=r"linear: W must have shape \(d_in, d_out\), got \(4,\)"):
        F.linear(mt.zeros(2, 4), mt.zeros(4))
