"""dropout: reproducible, unbiased (inverted scaling), identity in evaluation, gradient through kept elements."""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F


def test_dropout_is_reproducible_after_manual_seed():
    x = mt.ones(4, 50)
    mt.manual_seed(7)
    a = F.dropout(x, 0.3).numpy()
    b = F.dropout(x, 0.3).numpy()
    mt.manual_seed(7)
    c = F.dropout(x, 0.3).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)  # the generator moved on between the first two calls


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_the_expectation(p):
    n = 200_000
    y = F.dropout(mt.full((n,), 3.0, dtype="float64"), p).numpy()
    kept = y != 0
    # survivors are scaled by 1 / (1 - p); the fraction kept is about 1 - p
    np.testing.assert_allclose(y[kept], 3.0 / (1.0 - p), rtol=1e-12)
    std_kept = np.sqrt(p * (1 - p) / n)  # standard error of the kept fraction
    assert abs(kept.mean() - (1 - p)) < 6 * std_kept
    # so the mean stays 3 (within 6 standard errors of the mean of 3 m / (1 - p))
    std_mean = 3.0 / (1 - p) * std_kept
    assert abs(y.mean() - 3.0) < 6 * std_mean


def test_dropout_is_the_identity_in_eval_or_with_p_0():
    x = mt.randn(3, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_gradient_is_the_same_mask_scaled():
    x = mt.tensor(np.arange(1.0, 41.0).reshape(4, 10), requires_grad=True)
    y = F.dropout(x, 0.25)
    y.sum().backward()
    mask = y.numpy() != 0  # every x is non-zero, so y == 0 exactly where dropped
    np.testing.assert_array_equal(x.grad.numpy(), mask / 0.75)
    np.testing.assert_allclose(y.numpy(), mask * x.numpy() / 0.75, rtol=1e-15)


def test_dropout_gradcheck_with_a_fixed_mask():
    x = mt.tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4), requires_grad=True)

    def fn(t):
        mt.manual_seed(3)  # the same mask for every evaluation the finite differences make
        return F.dropout(t, 0.4)

    assert mt.gradcheck(fn, x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), np.float32(1.0)])
def test_dropout_rejects_p_outside_0_1(p):
    with pytest.raises(ValueError, match=r"dropout: the dropout probability p must be a number in \[0, 1\), got"):
        F.dropout(mt.ones(3), p)


@pytest.mark.parametrize("p", ["0.1", None, True])
def test_dropout_rejects_p_that_is_not_a_number(p):
    with pytest.raises(TypeError, match=r"dropout: the dropout probability p must be a number in \[0, 1\), got"):
        F.dropout(mt.ones(3), p)
