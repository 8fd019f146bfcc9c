"""The fused primitives (autograd/fused.py) against the compositions they replace, and the engine's economies.

Each fused operation must give the numbers of its reference, the formula composed from primitive
operations (``fused=False``), values and gradients, in float64 to 1e-12; and its hand-written
backward must pass ``gradcheck`` (central differences) on its own. The engine keeps less than it
used to (intermediate arrays nobody needs are freed, gradients are added in place): tests at the
end check that this changes no result.
"""

from __future__ import annotations

import functools
import gc
import inspect
import re
import types
import weakref

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.autograd import fused
from minitransformer.autograd.graph import graph
from minitransformer.testing import name_known_mistake_of

from references import LAYER_NORM_MISTAKES, layer_norm_np

TOL = {"rtol": 1e-12, "atol": 1e-12}


def _leaves(*arrays):
    """float64 tensors that want gradients (the current backend)."""
    return [mt.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]


def _values_and_grads(fn, arrays, cotangent):
    """``fn`` on fresh float64 leaves made of ``arrays``: its value and the gradient of <cotangent, fn>."""
    xs = _leaves(*arrays)
    y = fn(*xs)
    (y * mt.tensor(cotangent)).sum().backward()
    return y.numpy(), [None if x.grad is None else x.grad.numpy() for x in xs]


def _agree(fused_fn, reference_fn, arrays, rng, name=""):
    """The fused and the reference function give the same values and the same gradients (1e-12); ``name``, the
    function's, starts each message."""
    shape = reference_fn(*_leaves(*arrays)).shape
    cotangent = np.asarray(rng.standard_normal(shape), dtype=np.float64)  # a random upstream gradient
    ref_value, ref_grads = _values_and_grads(reference_fn, arrays, cotangent)
    new_value, new_grads = _values_and_grads(fused_fn, arrays, cotangent)
    # both sides may be a student's: name them (ACTUAL is the fused operation, DESIRED the composition)
    where = f"{name}: " if name else ""
    np.testing.assert_allclose(new_value, ref_value, **TOL, err_msg=f"{where}values: ACTUAL fused, DESIRED fused=False")
    for k, (g_new, g_ref) in enumerate(zip(new_grads, ref_grads)):
        assert (g_new is None) == (g_ref is None), f"{where}input {k}"
        if g_ref is not None:
            np.testing.assert_allclose(g_new, g_ref, **TOL,
                                       err_msg=f"{where}gradient of input {k}: ACTUAL fused, DESIRED fused=False")
    return new_value, new_grads


# ------------------------------------------------------------------ softmax, log-softmax
@pytest.mark.parametrize("shape, axis", [((7,), 0), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4, 6), -1), ((2, 3, 4), 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_fused_softmax_agrees_with_the_composition(name, shape, axis, rng):
    f = getattr(F, name)
    x = rng.standard_normal(shape) * 3
    _agree(lambda t: f(t, axis=axis), lambda t: f(t, axis=axis, fused=False), [x], rng)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_fused_softmax_is_stable_for_huge_scores(name, rng):
    # exp(1000) overflows; both subtract the row maximum first, so both stay finite and agree
    x = np.array([[1000.0, 999.0, -1000.0], [0.0, 1e-3, -2.0]])
    value, grads = _agree(lambda t: getattr(F, name)(t), lambda t: getattr(F, name)(t, fused=False), [x], rng)
    assert np.isfinite(value).all() and np.isfinite(grads[0]).all()


@pytest.mark.assignment(2, points=5)
def test_fused_softmax_by_hand():
    # softmax([0, ln 3]) = [1/4, 3/4]; with ybar = [1, 0]: xbar = y * (ybar - <ybar, y>) = [1/4 * 3/4, 3/4 * -1/4]
    x = mt.tensor([0.0, np.log(3.0)], dtype="float64", requires_grad=True)
    y = fused.Softmax.apply(x, axis=0)
    np.testing.assert_allclose(y.numpy(), [0.25, 0.75], rtol=1e-15,
                               err_msg="y, the fused softmax's forward (_softmax): softmax([0, ln 3]) = [1/4, 3/4]")
    np.testing.assert_array_equal(x.numpy(), [0.0, np.log(3.0)], err_msg=(
        "_softmax changed its input x (x -= max in place?): compute x - max into a new array; the caller's x may be "
        "what another operation kept for its backward"))
    ybar = mt.tensor([1.0, 0.0], dtype="float64")
    y.backward(ybar)
    np.testing.assert_allclose(x.grad.numpy(), [3 / 16, -3 / 16], rtol=1e-14, err_msg=(
        "x.grad, the fused softmax's backward (_softmax_backward) with ybar = [1, 0]: xbar = y (ybar - <ybar, y>) = "
        "[1/4 (1 - 1/4), 3/4 (0 - 1/4)]"))
    np.testing.assert_array_equal(ybar.numpy(), [1.0, 0.0], err_msg=(
        "_softmax_backward changed ybar, the gradient it was given: start from a new array (grad * y, not grad *= y)"))
    np.testing.assert_allclose(y.numpy(), [0.25, 0.75], rtol=1e-15, err_msg="the backward changed y, the forward's "
                               "result: compute into a new array")


@pytest.mark.parametrize("op", [fused.Softmax, fused.LogSoftmax])
@pytest.mark.parametrize("axis", [0, -1])
def test_fused_softmax_gradcheck(op, axis, rng):
    (x,) = _leaves(rng.standard_normal((3, 4)))
    assert mt.gradcheck(lambda t: op.apply(t, axis=axis % 2), x)


def _short_rows(n, dtype, rng):
    """Rows ``(3, r, n)`` of scores, as many as :func:`~minitransformer.autograd.fused._max_along` takes by halves,
    with what a shift can get wrong: a huge entry, hidden entries (-inf), a row all -inf, a row with a NaN."""
    x = rng.standard_normal((3, fused.MANY_ROWS // 3 + 1, n)) * 3
    x[0, 0, n // 2] = 1e4 if dtype == "float64" else 1e3
    x[0, 1, : n - 1] = -np.inf  # one key left
    x[1, 2] = -np.inf  # none left: NaN, as exp(-inf - (-inf))
    x[2, 3, n // 3] = np.nan
    return x.astype(dtype)


LENGTHS = [1, 2, 3, 7, 8, 9, 13, 16, 17, 33, fused.SHORT_ROW - 1, fused.SHORT_ROW, fused.SHORT_ROW + 1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_softmax_shift_taken_by_halves_is_the_maximum_exactly(dtype, backend, rng):
    # _max_along takes a short last axis's maximum by halves on the CPU: it must be xp.max's, to the bit
    xp = backend.xp
    for n in LENGTHS:
        x = backend.asarray(_short_rows(n, dtype, rng))
        want = backend.to_host(xp.max(x, axis=-1, keepdims=True))
        for got, how in ((fused._last_axis_max_by_halves(xp, x), "_last_axis_max_by_halves"),
                         (fused._max_along(xp, x, -1), "_max_along, axis -1"),
                         (fused._max_along(xp, x, 2), "_max_along, axis 2")):
            np.testing.assert_array_equal(backend.to_host(got), want, err_msg=f"{how}, rows of {n} ({dtype})")
        np.testing.assert_array_equal(backend.to_host(fused._max_along(xp, x, 0)),
                                      backend.to_host(xp.max(x, axis=0, keepdims=True)), err_msg=f"axis 0, n = {n}")


@pytest.mark.parametrize("op", [fused.Softmax, fused.LogSoftmax])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_softmax_over_short_rows_is_the_formula_to_the_bit(op, dtype, backend, rng):
    # the shift by halves changes no number: the arrays' formula (_softmax, _log_softmax; a GPU's kernels are
    # checked in tests/test_kernels.py) gives exp(x - max) / sum as NumPy does (-inf gives 0 exactly, a row all -inf
    # NaN, as before); the operation's gradients are the composition's
    on_arrays = fused._softmax if op is fused.Softmax else fused._log_softmax
    for n in LENGTHS:
        x = _short_rows(n, dtype, rng)
        with np.errstate(invalid="ignore"):  # -inf - (-inf) in the row all -inf, on both sides
            z = x - x.max(axis=-1, keepdims=True)
            want = (np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True) if op is fused.Softmax
                    else z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))
            got = backend.to_host(on_arrays(backend.xp, backend.asarray(x), -1))
        np.testing.assert_array_equal(got, want, err_msg=f"rows of {n}")
        finite = rng.standard_normal((2, 3, n)).astype(dtype)
        ybar = rng.standard_normal(finite.shape).astype(dtype)
        fused_value, fused_grad = _values_and_grads_as(op.apply, finite, ybar, axis=-1)
        name = "softmax" if op is fused.Softmax else "log_softmax"
        composed_value, composed_grad = _values_and_grads_as(getattr(F, name), finite, ybar, axis=-1, fused=False)
        tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else TOL  # float32: two orders of rounding
        np.testing.assert_allclose(fused_value, composed_value, **tol, err_msg=f"values, rows of {n}")
        np.testing.assert_allclose(fused_grad, composed_grad, **tol, err_msg=f"gradients, rows of {n}")


def _values_and_grads_as(fn, x, ybar, **options):
    """``fn(x, **options)`` on a leaf made of ``x`` (its dtype kept) and its gradient for the upstream gradient
    ``ybar``."""
    leaf = mt.tensor(x, requires_grad=True)
    y = fn(leaf, **options)
    y.backward(mt.tensor(ybar))
    return y.numpy(), leaf.grad.numpy()


# ------------------------------------------------------------------ attention's weights: scaled, masked softmax
MASKS = {  # for scores (2, 3, 4, 5): batch, heads, queries, keys
    "none": None,
    "padding": np.array([[True] * 3 + [False] * 2, [False] * 5]).reshape(2, 1, 1, 5),  # batch 1 sees no key
    "causal": np.tril(np.ones((4, 5), dtype=bool)),
    "rows": np.random.default_rng(3).uniform(size=(2, 1, 4, 5)) < 0.4,  # some queries with no key at all
    "heads": np.random.default_rng(4).uniform(size=(2, 3, 4, 5)) < 0.7,  # one mask per head; below, one empty row
}
MASKS["heads"][0, 0, 1] = False  # query 1 of head 0 sees nothing; in heads 1 and 2 it sees keys


def _attention_weights_composed(x, allowed, divisor):
    """The composition of scaled_dot_product_attention: divide, hide (most negative float), softmax, zero empty rows."""
    z = x / divisor
    if allowed is None:
        return F.softmax(z, fused=False)
    hidden = float(np.finfo(x.dtype_name).min)
    y = F.softmax(mt.where(mt.tensor(allowed), z, hidden), fused=False)
    return mt.where(mt.tensor(allowed.any(axis=-1, keepdims=True)), y, 0.0)


@pytest.mark.parametrize("mask", list(MASKS))
def test_fused_attention_weights_agree_with_the_composition(mask, rng):
    allowed = MASKS[mask]
    x = rng.standard_normal((2, 3, 4, 5)) * 3
    fused_fn = lambda t: fused.ScaledMaskedSoftmax.apply(t, allowed=None if allowed is None else  # noqa: E731
                                                         mt.tensor(allowed).data, divisor=np.sqrt(6.0))
    value, (grad,) = _agree(fused_fn, lambda t: _attention_weights_composed(t, allowed, np.sqrt(6.0)), [x], rng)
    if allowed is not None:
        assert (value[~np.broadcast_to(allowed, value.shape)] == 0).all()  # hidden keys: weight 0 exactly
        assert (grad[~np.broadcast_to(allowed, grad.shape)] == 0).all()  # and gradient 0 exactly


def test_fused_attention_weights_by_hand():
    # z = [2, 0, 5] / 2 with the 5 hidden: softmax([1, 0]) = [e, 1] / (e + 1); a row with no key: 0
    x = mt.tensor([[2.0, 0.0, 5.0], [1.0, 1.0, 1.0]], dtype="float64", requires_grad=True)
    allowed = np.array([[True, True, False], [False, False, False]])
    y = fused.ScaledMaskedSoftmax.apply(x, allowed=mt.tensor(allowed).data, divisor=2.0)
    e = np.e
    np.testing.assert_allclose(y.numpy(), [[e / (e + 1), 1 / (e + 1), 0.0], [0.0, 0.0, 0.0]], rtol=1e-15)
    # ybar = [1, 0, 7]: xbar = y (ybar - <ybar, y>) / 2 = [p (1 - p), -p (1 - p), 0] / 2 with p = e / (e + 1)
    y.backward(mt.tensor([[1.0, 0.0, 7.0], [1.0, 2.0, 3.0]], dtype="float64"))
    p = e / (e + 1)
    np.testing.assert_allclose(x.grad.numpy(), [[p * (1 - p) / 2, -p * (1 - p) / 2, 0.0], [0.0, 0.0, 0.0]],
                               rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("mask", ["none", "rows"])
def test_fused_attention_weights_gradcheck(mask, rng):
    allowed = MASKS[mask]
    (x,) = _leaves(rng.standard_normal((2, 1, 4, 5)))
    options = {"allowed": None if allowed is None else mt.tensor(allowed).data, "divisor": 1.7}
    assert mt.gradcheck(lambda t: fused.ScaledMaskedSoftmax.apply(t, **options), x)


# ------------------------------------------------------------------ layer norm
AFFINE = pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
EPS = pytest.mark.parametrize("eps", [1e-5, 0.0], ids=["eps1e-5", "eps0"])


def _gain_and_bias(affine, gamma, beta):
    """``(gamma, beta)`` with those the case ``affine`` leaves out as None."""
    return (gamma if affine in ("both", "gamma") else None), (beta if affine in ("both", "beta") else None)


def _layer_norm_backward_np(x, gamma, beta, eps, ybar):
    """The docstring's backward in float64 NumPy: the gradients ``xbar, gammabar, betabar`` of <ybar, y> (None for a
    gain or bias left out)."""
    _, x_hat, inv_std = layer_norm_np(x, gamma, eps=eps, return_stats=True)
    g = ybar * (1.0 if gamma is None else gamma)
    xbar = (g - g.mean(-1, keepdims=True) - x_hat * (g * x_hat).mean(-1, keepdims=True)) * inv_std
    rows = tuple(range(x.ndim - 1))  # every axis but the features
    return xbar, None if gamma is None else (ybar * x_hat).sum(rows), None if beta is None else ybar.sum(rows)


def _check_layer_norm_forward(y, x, gamma, beta, eps, form, where=""):
    """``y`` against the NumPy formula, with a message naming the form and a known mistake (the unbiased variance,
    eps outside the square root, gamma or beta left out)."""
    formula = functools.partial(layer_norm_np, x, gamma=gamma, beta=beta, eps=eps)  # a mistake's keywords replace them
    mistake = name_known_mistake_of(formula, LAYER_NORM_MISTAKES, y, **TOL)
    np.testing.assert_allclose(y, formula(), **TOL, err_msg=(
        f"{where}{form}, the forward: y = gamma (x - mu) / sqrt(sigma^2 + eps) + beta per row, sigma^2 the biased "
        f"variance (divided by d), eps = {eps}{mistake}"))


@AFFINE
@EPS
def test_fused_layer_norm_agrees_with_the_composition(affine, eps, rng):
    """The two forms, values and gradients (not graded: each form is graded against NumPy on its own, so that
    one form's mistake does not cost the other's points; here each is checked against NumPy first)."""
    d = 6
    x = rng.standard_normal((2, 3, d)) * 5 + 2
    gamma, beta = rng.standard_normal(d), rng.standard_normal(d)

    def call(fused):
        def f(x, gamma, beta):
            return F.layer_norm(x, *_gain_and_bias(affine, gamma, beta), eps=eps, fused=fused)
        return f

    for is_fused, form in ((True, "fused LayerNorm (test_fused_layer_norm_matches_plain_numpy)"),
                           (False, "composed layer_norm, fused=False (test_layer_norm_by_hand, its composed cases)")):
        with mt.no_grad():
            y = call(is_fused)(*_leaves(x, gamma, beta)).numpy()
        _check_layer_norm_forward(y, x, *_gain_and_bias(affine, gamma, beta), eps, form,
                                  where="the forms disagree; fix this one first: ")
    _, grads = _agree(call(True), call(False), [x, gamma, beta], rng)
    assert (grads[1] is None) == (affine not in ("both", "gamma"))
    assert (grads[2] is None) == (affine not in ("both", "beta"))


@AFFINE
@EPS
@pytest.mark.assignment(4, points=10)
def test_fused_layer_norm_matches_plain_numpy(affine, eps, rng):
    """The fused LayerNorm against the docstring's formulas written out in NumPy, forward and backward, on a
    (batch, seq, d) input: each gradient in its input's shape, gammabar and betabar summed over every row."""
    x, ybar = rng.standard_normal((2, 3, 5)) * 3 + 1, rng.standard_normal((2, 3, 5))
    gamma, beta = _gain_and_bias(affine, rng.standard_normal(5), rng.standard_normal(5))
    expected = _layer_norm_backward_np(x, gamma, beta, eps, ybar)
    X, G, B = _leaves(x, 0.0 if gamma is None else gamma, 0.0 if beta is None else beta)
    G, B = (None if gamma is None else G), (None if beta is None else B)
    y = fused.LayerNorm.apply(X, G, B, eps=eps)
    form = f"fused LayerNorm ({affine if affine != 'none' else 'no'} gain/bias, eps = {eps})"
    _check_layer_norm_forward(y.numpy(), x, gamma, beta, eps, form)
    seed = mt.tensor(ybar)
    grads = [None if g is None else X.backend.to_host(g) for g in y.grad_fn.backward(seed.data)]
    np.testing.assert_array_equal(seed.numpy(), ybar, err_msg="LayerNorm.backward changed ybar, the gradient it was "
                                  "given: gbar = gamma ybar goes in a new array (grad * gamma, not grad *= gamma)")
    backward = f"{form}, the backward"
    np.testing.assert_allclose(grads[0], expected[0], **TOL, err_msg=(
        f"{backward}: xbar = (gbar - <gbar> - x_hat <gbar x_hat>) / sqrt(sigma^2 + eps), gbar = gamma ybar, <.> the "
        "mean over the features"))
    for k, name, formula in ((1, "gammabar", "sum over rows of ybar x_hat"), (2, "betabar", "sum over rows of ybar")):
        if expected[k] is None:
            assert grads[k] is None, f"{backward}: {name} for a {name[:-3]} of None: return None in its place"
            continue
        shape = None if grads[k] is None else tuple(grads[k].shape)
        assert shape == (5,), (f"{backward}: {name} of shape {shape}, not (d,) = (5,): the {formula}, summed over "
                               "every axis but the features (batch and seq; axis=0 alone leaves seq)")
        np.testing.assert_allclose(grads[k], expected[k], **TOL, err_msg=f"{backward}: {name}, the {formula}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norms_means_as_products_are_the_weighted_means(dtype, backend, rng):
    # LayerNorm's means over the features are v @ (w / d) (_feature_mean): xp.mean(w * v)'s numbers, rounded
    # in another order (float32: a few units of the last place; float64 to 1e-12)
    fn = types.SimpleNamespace(xp=backend.xp, backend=backend)  # what the helpers read of an operation
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else TOL
    for shape in [(5,), (3, 1), (4, 13, 64), (2, 3, 96)]:
        v = rng.standard_normal(shape) * 3 + 1000  # far from 0: a sum rounded badly shows
        w = rng.standard_normal(shape[-1])
        for weights in (None, w):
            w_given = None if weights is None else backend.asarray(weights, dtype=dtype)
            got = backend.to_host(fused._feature_mean(fn, backend.asarray(v, dtype=dtype), w_given))
            want = (v * (1.0 if weights is None else weights)).mean(axis=-1, keepdims=True)
            assert got.shape == want.shape and got.dtype == np.dtype(dtype), (got.shape, got.dtype, shape)
            np.testing.assert_allclose(got, want, **tol, err_msg=f"{shape}, weights {weights is not None}")
    nothing = fused._feature_mean(fn, backend.asarray(np.zeros((2, 0)), dtype=dtype))  # no features: 0, no 0 / 0
    np.testing.assert_array_equal(backend.to_host(nothing), np.zeros((2, 1)))


@AFFINE
def test_fused_layer_norm_in_float32_agrees_with_the_formula_in_float64(affine, rng):
    # the float32 path (its means as matrix-vector products) against the docstring's formulas in float64
    d = 64
    x, ybar = rng.standard_normal((4, 13, d)) * 3 + 1, rng.standard_normal((4, 13, d))
    gamma, beta = _gain_and_bias(affine, 1 + 0.1 * rng.standard_normal(d), rng.standard_normal(d))
    X = mt.tensor(x.astype(np.float32), requires_grad=True)
    G, B = (None if p is None else mt.tensor(p.astype(np.float32), requires_grad=True) for p in (gamma, beta))
    y = fused.LayerNorm.apply(X, G, B, eps=1e-5)
    y.backward(mt.tensor(ybar.astype(np.float32)))
    np.testing.assert_allclose(y.numpy(), layer_norm_np(x, gamma=gamma, beta=beta, eps=1e-5), rtol=1e-5, atol=1e-5)
    expected = _layer_norm_backward_np(x, gamma, beta, 1e-5, ybar)
    for got, want, name in ((X, expected[0], "xbar"), (G, expected[1], "gammabar"), (B, expected[2], "betabar")):
        if want is not None:
            assert got.grad.dtype_name == "float32", name
            np.testing.assert_allclose(got.grad.numpy(), want, rtol=1e-4, atol=1e-5 * np.abs(want).max(),
                                       err_msg=f"{name}, float32 against float64")


@pytest.mark.single_backend  # (NumPy arrays alone)
@pytest.mark.parametrize("options, said", LAYER_NORM_MISTAKES, ids=[next(iter(o)) for o, _ in LAYER_NORM_MISTAKES])
def test_the_layer_norm_check_names_each_known_wrong_answer(options, said, rng):
    """The graded tests' check of the forward, given a known wrong answer, names it; given the right one, passes."""
    # rows far from zero in float32, where the one-pass variance differs too
    x = (rng.standard_normal((2, 3, 5)) * 3 + 1000).astype(np.float32)
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    formula = functools.partial(layer_norm_np, x, gamma=gamma, beta=beta, eps=1e-5)
    wrong = formula(**options)
    differs = not np.allclose(wrong, formula(), **TOL)
    assert differs, f"the case must tell apart {said}"
    with pytest.raises(AssertionError, match=r"the forward: .*; it equals the known wrong answer with "
                                             + re.escape(said)):
        _check_layer_norm_forward(wrong, x, gamma, beta, 1e-5, "a mistake")
    _check_layer_norm_forward(formula(), x, gamma, beta, 1e-5, "the right answer")


@pytest.mark.assignment(4, points=2)
def test_fused_layer_norm_gradcheck(rng):
    """The forward against NumPy first (gradcheck compares the backward with the forward's own finite differences:
    a forward that differs from the formula the backward assumes fails there as a gradient), then gradcheck."""
    x, gamma, beta = _leaves(rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(4))
    with mt.no_grad():
        y = fused.LayerNorm.apply(x, gamma, beta, eps=1e-5).numpy()
    _check_layer_norm_forward(y, x.numpy(), gamma.numpy(), beta.numpy(), 1e-5, "fused LayerNorm",
                              where="before the gradcheck (fix test_fused_layer_norm_matches_plain_numpy first): ")
    assert mt.gradcheck(lambda a, b, c: fused.LayerNorm.apply(a, b, c, eps=1e-5), x, gamma, beta)
    assert mt.gradcheck(lambda a: fused.LayerNorm.apply(a, None, None, eps=0.0), x)


# ------------------------------------------------------------------ the affine map
@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_agrees_with_the_composition(x_shape, bias, rng):
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal((4, 5)), rng.standard_normal(5)

    def call(fused):
        return lambda x, W, b: F.linear(x, W, b if bias else None, fused=fused)

    _agree(call(True), call(False), [x, W, b], rng)


@pytest.mark.assignment(1, points=5)
def test_fused_linear_gradcheck(rng):
    x, W, b = _leaves(rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2))
    assert mt.gradcheck(lambda x, W, b: fused.Affine.apply(x, W, b), x, W, b)


@pytest.mark.parametrize("op", ["linear", "layer_norm"])
def test_fused_backward_sums_a_bias_over_every_row_itself(op, rng):
    # Affine's and LayerNorm's backward return each gradient in its input's shape (their docstrings): the bias's
    # (and gamma's) summed over all rows, batch and time, (2, 3, d) -> (d,), not left to the engine to finish
    x, W, b = _leaves(rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4))
    y = fused.Affine.apply(x, W, b) if op == "linear" else fused.LayerNorm.apply(x, W[0], b, eps=0.0)
    ybar = rng.standard_normal(y.shape)
    grads = [x.backend.to_host(g) for g in y.grad_fn.backward(mt.tensor(ybar).data)]
    assert [g.shape for g in grads] == [(2, 3, 4), (4, 4) if op == "linear" else (4,), (4,)]
    np.testing.assert_allclose(grads[2], ybar.sum(axis=(0, 1)), **TOL)  # the bias (beta): sum of ybar over rows
    if op == "layer_norm":  # gamma: the sum over rows of ybar x_hat
        x_hat = layer_norm_np(x.numpy(), eps=0.0)
        np.testing.assert_allclose(grads[1], (ybar * x_hat).sum(axis=(0, 1)), **TOL)


def test_fused_linear_through_a_strided_weight(rng):
    # the literal multi-head form passes column blocks of W (views that are not contiguous)
    x, W = _leaves(rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 6)))
    _agree(lambda x, W: F.linear(x, W[:, 2:4]), lambda x, W: F.linear(x, W[:, 2:4], fused=False),
           [x.numpy(), W.numpy()], rng)


# ------------------------------------------------------------------ cross-entropy
CROSS_ENTROPY_CASES = [
    dict(),
    dict(label_smoothing=0.1),
    dict(ignore_index=2),
    dict(ignore_index=2, label_smoothing=0.2),
    dict(reduction="sum", label_smoothing=0.1),
    dict(reduction="none", ignore_index=0),
    dict(reduction="sum", ignore_index=1, label_smoothing=1.0),
]


@pytest.mark.parametrize("options", CROSS_ENTROPY_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 5)])
def test_fused_cross_entropy_agrees_with_the_composition(options, shape, rng):
    logits = rng.standard_normal(shape) * 2
    targets = mt.tensor(rng.integers(0, shape[-1], shape[:-1]))
    _agree(lambda z: F.cross_entropy(z, targets, **options),
           lambda z: F.cross_entropy(z, targets, fused=False, **options), [logits], rng)


def test_fused_cross_entropy_with_every_target_ignored_is_zero_with_zero_gradient(rng):
    (z,) = _leaves(rng.standard_normal((3, 4)))
    loss = F.cross_entropy(z, mt.tensor([1, 1, 1]), ignore_index=1, label_smoothing=0.1)
    loss.backward()
    assert loss.item() == 0.0
    np.testing.assert_array_equal(z.grad.numpy(), np.zeros((3, 4)))


def test_fused_cross_entropy_matches_plain_numpy(rng):
    z, y, eps, C = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2]), 0.1, 4
    kept = y != 1
    # the docstring's formulas in NumPy: q, log-softmax, the mean over kept rows, and softmax - q
    q = (1 - eps) * np.eye(C)[y] + eps / C
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    expected = (-(q * log_p).sum(-1) * kept).sum() / kept.sum()
    zbar = (np.exp(log_p) - q) * kept[:, None] / kept.sum()
    (Z,) = _leaves(z)
    loss = F.cross_entropy(Z, mt.tensor(y), ignore_index=1, label_smoothing=eps)
    loss.backward()
    np.testing.assert_allclose(loss.item(), expected, **TOL)
    np.testing.assert_allclose(Z.grad.numpy(), zbar, **TOL)


class _WithoutTakeAlongAxis:
    """An array namespace as ``xp``, less ``take_along_axis`` (added to the array API standard in 2024.12)."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        if name == "take_along_axis":
            raise AttributeError(name)
        return getattr(self._xp, name)


def test_fused_cross_entropy_without_take_along_axis_picks_through_the_one_hot(rng, monkeypatch):
    # a backend without take_along_axis picks log p_{n, y_n} as sum_c [c = y_n] log p_{n,c}: over the classes (the
    # last axis of (batch, T, C)), where a non-target class adds nothing
    z, y, C = rng.standard_normal((2, 3, 5)), np.array([[0, 4, 2], [1, 3, 3]]), 5
    (Z,) = _leaves(z)
    monkeypatch.setattr(Z.backend, "xp", _WithoutTakeAlongAxis(Z.backend.xp))
    loss = F.cross_entropy(Z, mt.tensor(y), reduction="none")
    loss.backward(mt.tensor(np.ones(y.shape)))
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    np.testing.assert_allclose(loss.numpy(), -np.take_along_axis(log_p, y[..., None], -1)[..., 0], **TOL)
    np.testing.assert_allclose(Z.grad.numpy(), np.exp(log_p) - (np.arange(C) == y[..., None]), **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_cross_entropy_gradcheck(reduction, rng):
    (z,) = _leaves(rng.standard_normal((2, 3, 4)))
    targets = mt.tensor(np.array([[0, 3, 2], [1, 1, 3]]))
    kept = targets.data != 1
    assert mt.gradcheck(lambda z: fused.CrossEntropy.apply(z, targets=targets.data, kept=kept, label_smoothing=0.1,
                                                           reduction=reduction), z)


BCE_LOGITS = [np.array([0.0, -1000.0, 1000.0, 2.5, -0.5, 1e-3]), np.array([[3.0, -2.0], [0.0, 40.0]])]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("z", BCE_LOGITS, ids=["edges", "2d"])
def test_fused_binary_cross_entropy_agrees_with_the_composition(z, reduction, rng):
    y = mt.tensor(rng.uniform(size=z.shape))  # soft labels, and the ties at z = 0 (gradient 1/2 - y both ways)
    _agree(lambda t: F.binary_cross_entropy_with_logits(t, y, reduction=reduction),
           lambda t: F.binary_cross_entropy_with_logits(t, y, reduction=reduction, fused=False), [z], rng)


def test_fused_binary_cross_entropy_matches_plain_numpy(rng):
    z, y = rng.standard_normal(7) * 3, rng.integers(0, 2, 7).astype(np.float64)
    # the docstring's formulas in NumPy: -[y log s + (1 - y) log(1 - s)] with s = sigma(z), and (s - y) / N
    s = 1.0 / (1.0 + np.exp(-z))
    expected = -(y * np.log(s) + (1 - y) * np.log(1 - s)).mean()
    (Z,) = _leaves(z)
    loss = F.binary_cross_entropy_with_logits(Z, mt.tensor(y))
    loss.backward()
    np.testing.assert_allclose(loss.item(), expected, **TOL)
    np.testing.assert_allclose(Z.grad.numpy(), (s - y) / 7, **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_binary_cross_entropy_gradcheck(reduction, rng):
    (z,) = _leaves(rng.standard_normal((3, 4)) * 3)
    y = rng.uniform(size=(3, 4))
    assert mt.gradcheck(lambda z: fused.BinaryCrossEntropyWithLogits.apply(z, targets=mt.tensor(y).data,
                                                                           reduction=reduction), z)


# ------------------------------------------------------------------ float32 stays float32
def test_fused_attention_weights_keep_float32(rng):
    # the one fused operation with no function of its own (NOT_FUSABLE); the others run in float32, both forms, in
    # test_every_formula_keeps_float32 of tests/test_functional_formulas.py
    x = mt.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    y = fused.ScaledMaskedSoftmax.apply(x, allowed=mt.tensor(np.eye(3, 4) > 0).data, divisor=2.0)
    (y * y).sum().backward()
    assert y.dtype_name == "float32" and x.grad.dtype_name == "float32"


# ------------------------------------------------------------------ fused by default; fused=False composes primitives
#: each function of mt.functional with a fused form, by its name, with a call and the fused operation it runs
FUSABLE = {
    "softmax": (lambda x, W, **kw: F.softmax(x, **kw), fused.Softmax),
    "log_softmax": (lambda x, W, **kw: F.log_softmax(x, **kw), fused.LogSoftmax),
    "gelu": (lambda x, W, **kw: F.gelu(x, **kw), fused.Gelu),
    "layer_norm": (lambda x, W, **kw: F.layer_norm(x, W[0], W[1], **kw), fused.LayerNorm),
    "linear": (lambda x, W, **kw: F.linear(x, W, W[2], **kw), fused.Affine),
    "cross_entropy": (lambda x, W, **kw: F.cross_entropy(x, mt.tensor([0, 1, 3]), ignore_index=1,
                                                         label_smoothing=0.1, **kw), fused.CrossEntropy),
    "binary_cross_entropy_with_logits": (
        lambda x, W, **kw: F.binary_cross_entropy_with_logits(x, mt.tensor(np.eye(3, 4)), **kw),
        fused.BinaryCrossEntropyWithLogits),
}


@pytest.mark.parametrize("name", list(FUSABLE))
def test_functions_are_fused_by_default_and_composed_of_primitives_with_fused_false(name, rng):
    # the documented default is the fused operation (one step in the graph); fused=False, the reference every test
    # here compares against, must hold no fused operation (a fused log_softmax inside it would check itself)
    call, op = FUSABLE[name]
    x, W = _leaves(rng.standard_normal((3, 4)), rng.standard_normal((4, 4)))
    assert type(call(x, W).grad_fn) is op
    ops = {node["label"] for node in graph(call(x, W, fused=False))[0] if node["kind"] == "op"}
    assert ops and not ops & set(fused.__all__), ops


@pytest.mark.parametrize("name", list(FUSABLE))
def test_every_fusable_function_agrees_with_its_composition(name, rng):
    # the row above checks which operations run; this, that they compute the same: values and gradients, float64
    call, _ = FUSABLE[name]
    _agree(lambda x, W: call(x, W), lambda x, W: call(x, W, fused=False),
           [rng.standard_normal((3, 4)), rng.standard_normal((4, 4))], rng, name=name)


@pytest.mark.single_backend
def test_every_function_with_a_fused_form_is_in_fusable():
    with_fused = {name for name in F.__all__ if "fused" in inspect.signature(getattr(F, name)).parameters}
    problems = [f"{name} takes fused= but has no row in FUSABLE of tests/test_fused.py (keyed by the function's "
                "name): add one, so that its two forms are compared" for name in sorted(with_fused - set(FUSABLE))]
    problems += [f"FUSABLE of tests/test_fused.py has a row {name!r}, which is no function of minitransformer."
                 "functional.__all__ with a fused parameter" for name in sorted(set(FUSABLE) - with_fused)]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the engine keeps less, computes the same
def test_an_intermediate_nobody_needs_is_freed_before_backward():
    x = mt.tensor([1.0, -2.0, 3.0], dtype="float64", requires_grad=True)
    h = x * 3.0  # its array: needed by no backward (ReLU keeps only where x > 0)
    freed = weakref.ref(h.data)
    y = h.relu().sum()
    del h
    gc.collect()
    assert freed() is None
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 3.0])


def test_an_intermediate_the_user_holds_keeps_its_values_name_and_retained_grad():
    x = mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    h = (x * 2.0).retain_grad()
    h.name = "h"
    y = (h * h).sum()
    nodes, _ = mt.autograd.graph(y)
    assert any(n["label"].startswith("h ") for n in nodes)  # the graph shows h's name, given after h was made
    y.backward()
    np.testing.assert_array_equal(h.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(h.grad.numpy(), [4.0, 8.0])  # d(h^2)/dh = 2h
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 16.0])


def test_gradients_added_in_place_stay_separate():
    # Add hands one array to both its inputs; each later sum must go into an array of its own
    a, b = (mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True) for _ in range(2))
    h = a * 1.0
    y = h + b  # h and b receive the same gradient array
    z = (y * 2.0 + h + h).sum()  # h gets three gradients, added up
    z.backward()
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 4.0])
    assert a.grad.data is not b.grad.data
    z2 = (a + b).sum()  # a second backward adds into the existing .grad arrays
    z2.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [5.0, 5.0])
    np.testing.assert_array_equal(b.grad.numpy(), [3.0, 3.0])


def test_a_parameter_gradient_from_a_product_is_not_copied_but_owned():
    W = mt.tensor(np.eye(2), requires_grad=True)
    x = mt.tensor(np.ones((3, 2)), requires_grad=True)
    (x @ W).sum().backward()
    first = W.grad.data
    (x @ W).sum().backward()  # accumulates into the same array
    assert W.grad.data is first
    np.testing.assert_array_equal(W.grad.numpy(), np.full((2, 2), 6.0))


@pytest.mark.parametrize("c_wants_grad", [False, True])
def test_a_product_keeps_a_factor_only_for_the_other_factors_gradient(c_wants_grad):
    x = mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    c = mt.tensor([3.0, 4.0], dtype="float64", requires_grad=c_wants_grad)
    h = x * 2.0  # keeps nothing of x (the 2.0 needs no gradient)
    kept = weakref.ref(h.data)
    y = (h * c).sum()  # keeps h only if c's gradient is wanted
    del h
    gc.collect()
    assert (kept() is not None) == c_wants_grad
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 8.0])
    if c_wants_grad:
        np.testing.assert_array_equal(c.grad.numpy(), [2.0, 4.0])


# ------------------------------------------------------------------ GELU
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4)])
def test_fused_gelu_agrees_with_the_composition(shape, rng):
    x = rng.standard_normal(shape) * 3
    _agree(lambda t: F.gelu(t), lambda t: F.gelu(t, fused=False), [x], rng)


def test_fused_gelu_by_hand():
    # x = 0: y = 0 and dy/dx = 1/2 exactly; far from 0 GELU is x (x > 0) or 0 (x < 0), and so is its slope
    x = mt.tensor([0.0, 10.0, -10.0], dtype="float64", requires_grad=True)
    y = fused.Gelu.apply(x)
    np.testing.assert_allclose(y.numpy(), [0.0, 10.0, 0.0], atol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 1.0, 0.0], atol=1e-12)


def test_fused_gelu_gradcheck(rng):
    (x,) = _leaves(rng.standard_normal((3, 4)) * 2)
    assert mt.gradcheck(fused.Gelu.apply, x)
