"""softmax, log_softmax, relu, gelu, sigmoid: by hand, by finite differences, and against PyTorch."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.testing import close_to_torch
from minitransformer.testing import rel_err as _rel_err

# ------------------------------------------------------------------ softmax
# each graded softmax test runs both forms: the fused operation and the composition of primitives (fused=False)
FORMS = pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
#: the axes of the (3, 4) inputs, with ids that read "axis-1", not "-1"
AXES = pytest.mark.parametrize("axis", [0, 1, -1], ids=["axis0", "axis1", "axis-1"])


def _form(fused: bool) -> str:
    """The body a message is about: the fused operation's array code or the composition of primitives."""
    return ("fused form (Softmax / LogSoftmax in autograd/fused.py, _softmax)" if fused else
            "composed form (fused=False: the primitives in functional/activations.py)")


@FORMS
@pytest.mark.assignment(2, points=5)
def test_softmax_of_1_2_3_by_hand(fused):
    # e^1, e^2, e^3 over their sum
    total = math.exp(1) + math.exp(2) + math.exp(3)
    expected = [math.exp(1) / total, math.exp(2) / total, math.exp(3) / total]  # 0.0900, 0.2447, 0.6652
    out = F.softmax(mt.tensor([1.0, 2.0, 3.0], dtype="float64"), fused=fused)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12,
                               err_msg=f"softmax([1, 2, 3]) = e^x / sum(e^x), {_form(fused)}, the forward")


@FORMS
@AXES
@pytest.mark.assignment(2, points=5)
def test_softmax_and_log_softmax_match_plain_numpy(axis, rng, fused):
    x = rng.standard_normal((3, 4)) * 3
    e = np.exp(x)
    expected = e / e.sum(axis=axis, keepdims=True)  # the textbook formula, no shift (safe for these sizes)
    t = mt.tensor(x)
    np.testing.assert_allclose(F.softmax(t, axis=axis, fused=fused).numpy(), expected, rtol=1e-12,
                               err_msg=f"softmax along axis {axis} of a (3, 4) input, {_form(fused)}, the forward: "
                                       "each slice along the axis sums to 1")
    np.testing.assert_allclose(F.log_softmax(t, axis=axis, fused=fused).numpy(), np.log(expected), rtol=1e-12,
                               atol=1e-13, err_msg=f"log_softmax along axis {axis}: x - max - log(sum(exp(x - max))), "
                                                  f"{_form(fused)}, the forward")


#: the usual mistakes of a softmax's shift, each with what it does to logits of 1e4 (test_softmax_of_huge_logits...)
SHIFT_MISTAKES = {
    "no max is subtracted before exp: e^1e4 overflows to inf, and inf / inf is nan":
        lambda x: x,
    "the max is subtracted without keepdims=True: the max of shape (3,) is subtracted from this (3, 3) input along "
    "the wrong axis, row i getting column i's max, and exp overflows":
        lambda x: x - x.max(axis=-1),
    "the whole input's max (1e4) is subtracted, not each slice's own: row 2, [0, 1, 2] - 1e4, underflows to 0 / 0":
        lambda x: x - x.max(),
}


def _shift_mistake(x: np.ndarray, p: np.ndarray) -> str:
    """Which of :data:`SHIFT_MISTAKES` gives the softmax ``p`` of ``x`` (NaN where it does), else what to do."""
    with np.errstate(all="ignore"):
        for mistake, shifted in SHIFT_MISTAKES.items():
            e = np.exp(shifted(x))
            if np.allclose(p, e / e.sum(axis=-1, keepdims=True), atol=1e-7, equal_nan=True):
                return f"{mistake}; subtract each slice's own max along the axis, keepdims=True"
    return "subtract each slice's own max along the axis before exp, with keepdims=True"


@pytest.mark.single_backend
def test_each_shift_mistake_is_told_apart_on_logits_of_1e4():
    """The message of test_softmax_of_huge_logits_is_finite named the keepdims mistake to every softmax that was not
    finite there, including one that subtracted nothing (the most common)."""
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0], [-1e4, 1.0 - 1e4, 2.0 - 1e4]])
    named = []
    with np.errstate(all="ignore"):
        for shifted in SHIFT_MISTAKES.values():
            e = np.exp(shifted(x))
            named.append(_shift_mistake(x, e / e.sum(axis=-1, keepdims=True)))
    assert named == [f"{m}; subtract each slice's own max along the axis, keepdims=True" for m in SHIFT_MISTAKES]


@FORMS
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.assignment(2, points=10)
def test_softmax_of_huge_logits_is_finite(dtype, fused):
    # row 2 is [0, 1, 2] - 1e4: shifted by its own max, not the whole input's (1e4), or exp underflows to 0 / 0
    values = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0], [-1e4, 1.0 - 1e4, 2.0 - 1e4]], dtype=dtype)
    x = mt.tensor(values)
    with warnings.catch_warnings():  # an overflow in exp is named here, not left as a bare RuntimeWarning
        warnings.simplefilter("ignore", RuntimeWarning)
        p = F.softmax(x, fused=fused).numpy()
    shift = f"{_form(fused)}, the forward: {_shift_mistake(values, p)}"
    assert np.all(np.isfinite(p)), f"softmax of logits of 1e4: {p.tolist()} is not finite; {shift}"
    # exp(-1e4) underflows to 0: the largest logits take all the mass
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], e / e.sum()], atol=1e-7,
                               err_msg=f"softmax of logits of 1e4: {shift}")
    logp = F.log_softmax(x, fused=fused).numpy()
    assert np.all(np.isfinite(logp)), f"log_softmax of logits of 1e4: {logp.tolist()} is not finite, {_form(fused)}"
    # log_softmax = x - max - log(sum exp(x - max)): row 0 is [0, -1e4, -2e4], row 1 [-log 2, -log 2, -1e4 - log 2]
    np.testing.assert_allclose(logp, [[0.0, -1e4, -2e4], [-math.log(2), -math.log(2), -1e4 - math.log(2)],
                                      np.log(e / e.sum())], rtol=1e-6,
                               err_msg=f"log_softmax of logits of 1e4: x - max - log(sum(exp(x - max))), "
                                       f"{_form(fused)}")


@FORMS
@pytest.mark.assignment(2, points=5)
def test_softmax_gradient_is_the_jacobian_diag_s_minus_s_s_transposed(fused):
    # d s_k / d x_j = s_k (delta_kj - s_j): the shifted max must not change it
    x = mt.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    s = F.softmax(x, fused=fused)
    s[1].backward()
    p = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(x.grad.numpy(), p[1] * (np.eye(3)[1] - p), rtol=1e-12,
                               err_msg=f"the gradient of s_1 (x.grad): s_1 ([k = 1] - s_k), {_form(fused)}, the "
                                       "backward xbar = y (ybar - sum(ybar y)) with ybar = [0, 1, 0]")


@FORMS
@pytest.mark.parametrize("axis", [0, -1], ids=["axis0", "axis-1"])
@pytest.mark.assignment(2, points=5)
def test_softmax_and_log_softmax_gradcheck(axis, rng, fused):
    """The forward against NumPy first (gradcheck compares the backward with the forward's own finite differences,
    so a wrong forward would pass it), then gradcheck."""
    x = mt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    e = np.exp(x.numpy() - x.numpy().max(axis=axis, keepdims=True))
    np.testing.assert_allclose(F.softmax(x, axis=axis, fused=fused).numpy(), e / e.sum(axis=axis, keepdims=True),
                               rtol=1e-12, err_msg=f"softmax along axis {axis} of a (3, 4) input, {_form(fused)}, "
                                                   "the forward (before the gradcheck)")
    assert mt.gradcheck(lambda t: F.softmax(t, axis=axis, fused=fused), x)
    assert mt.gradcheck(lambda t: F.log_softmax(t, axis=axis, fused=fused), x)


@pytest.mark.assignment(2, points=5)
def test_softmax_and_log_softmax_agree_with_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 5)) * 4
    v = rng.standard_normal(x.shape)  # cotangent: compares the whole vector-Jacobian product
    for name, ours_fn, torch_fn in (
        ("softmax", F.softmax, torch.nn.functional.softmax),
        ("log_softmax", F.log_softmax, torch.nn.functional.log_softmax),
    ):
        form = _form(True)  # the default
        t = mt.tensor(x, requires_grad=True)
        y = ours_fn(t, axis=-1)
        (y * mt.tensor(v)).sum().backward()
        tt = torch.tensor(x, requires_grad=True)
        ty = torch_fn(tt, dim=-1)
        (ty * torch.tensor(v)).sum().backward()
        close_to_torch(_rel_err(y.numpy(), ty.detach().numpy()), f"{name} along axis -1, {form}, the forward")
        close_to_torch(_rel_err(t.grad.numpy(), tt.grad.numpy()), f"{name} along axis -1, {form}, the gradient "
                        "of <v, y> (the backward)")


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((2, 0), -1), ((0, 3, 2), 0), ((4, 0, 3), 1)], ids=str)
def test_softmax_over_an_empty_axis_is_empty(name, shape, axis, fused):
    """No scores to normalise: an empty result of the same shape, and an empty gradient (torch does the same),
    not NumPy's 'zero-size array to reduction operation maximum which has no identity'."""
    x = mt.zeros(*shape, dtype="float64", requires_grad=True)
    y = getattr(F, name)(x, axis=axis, fused=fused)
    assert y.shape == shape and y.dtype_name == "float64"
    y.sum().backward()
    assert x.grad.shape == shape


def test_softmax_over_an_empty_axis_agrees_with_torch():
    torch = pytest.importorskip("torch")
    for name in ("softmax", "log_softmax"):
        assert getattr(F, name)(mt.zeros(2, 0)).shape == tuple(getattr(torch, name)(torch.zeros(2, 0), -1).shape)


def test_softmax_bad_input():
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for a tensor with 2 dimensions"):
        F.softmax(mt.zeros(2, 3), axis=2)
    with pytest.raises(TypeError, match=r"log_softmax: x must be floating point, got int64"):
        F.log_softmax(mt.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match=r"softmax: x must be a Tensor"):
        F.softmax([1.0, 2.0])
    for name in ("softmax", "log_softmax"):  # a scalar has no axis to normalise over (axis 0 was an IndexError)
        for axis in (0, -1):
            with pytest.raises(ValueError, match=rf"^{name}: x must have at least one axis \(the one normalised\)"):
                getattr(F, name)(mt.tensor(2.0), axis=axis)


# ------------------------------------------------------------------ relu, gelu
def test_relu_by_hand():
    x = mt.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], dtype="float64", requires_grad=True)
    y = F.relu(x)
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0, 0.0, 0.5, 3.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 1.0, 1.0])  # derivative 0 at x = 0


def _gelu_tanh(x: float) -> float:
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def test_gelu_by_hand_and_close_to_the_exact_erf_form():
    xs = [-3.0, -1.0, -0.1, 0.0, 0.5, 2.0]
    y = F.gelu(mt.tensor(xs, dtype="float64")).numpy()
    np.testing.assert_allclose(y, [_gelu_tanh(x) for x in xs], rtol=1e-12, atol=1e-15)
    # the exact GELU x * Phi(x) differs from the tanh approximation by well under 1e-3
    exact = [0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))) for x in xs]
    np.testing.assert_allclose(y, exact, atol=1e-3)


def test_relu_and_gelu_gradcheck(rng):
    x = mt.tensor(rng.standard_normal(7) * 2 + 0.05, requires_grad=True)  # + 0.05: no element right at relu's kink
    assert mt.gradcheck(F.gelu, x)
    assert mt.gradcheck(F.relu, x)


def test_gelu_and_relu_agree_with_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 6)) * 3
    v = rng.standard_normal(x.shape)
    for name, ours_fn, torch_fn in (
        ("gelu", F.gelu, lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
        ("relu", F.relu, torch.nn.functional.relu),
    ):
        form = "the tanh approximation" if name == "gelu" else "max(0, x)"
        t = mt.tensor(x, requires_grad=True)
        y = ours_fn(t)
        (y * mt.tensor(v)).sum().backward()
        tt = torch.tensor(x, requires_grad=True)
        ty = torch_fn(tt)
        (ty * torch.tensor(v)).sum().backward()
        close_to_torch(_rel_err(y.numpy(), ty.detach().numpy()), f"{name} elementwise, {form}, the forward")
        close_to_torch(_rel_err(t.grad.numpy(), tt.grad.numpy()), f"{name} elementwise, {form}, the gradient "
                        "of <v, y> (the backward)")


def test_activations_keep_float32():
    x = mt.tensor([-1.0, 0.0, 1.0])
    for fn in (F.softmax, F.log_softmax, F.relu, F.gelu, F.sigmoid):
        assert fn(x).dtype_name == "float32", fn.__name__



# ------------------------------------------------------------------ sigmoid
def _sigmoid_by_hand(x: float) -> tuple[float, float]:
    """sigma(x) = 1 / (1 + e^-x) and its derivative e^-x / (1 + e^-x)^2, in Python floats (here |x| <= 30)."""
    e = math.exp(-x)
    return 1.0 / (1.0 + e), e / (1.0 + e) ** 2


@pytest.mark.parametrize("call", ["F.sigmoid(x)", "x.sigmoid()"])
def test_sigmoid_by_hand(call):
    # both branches of the stable form (x < 0: e^x / (1 + e^x); x >= 0: 1 / (1 + e^-x)) and the point where they meet
    xs = [-30.0, -3.0, -1.0, -0.1, 0.0, 0.5, 2.0, 30.0]
    x = mt.tensor(xs, dtype="float64", requires_grad=True)
    y = eval(call, {"F": F, "x": x})
    expected = [_sigmoid_by_hand(v) for v in xs]
    np.testing.assert_allclose(y.numpy(), [s for s, _ in expected], rtol=1e-14, err_msg=f"{call}, the forward")
    assert y.numpy()[4] == 0.5  # sigma(0) = 1 / (1 + 1)
    y.sum().backward()
    # sigma'(x) = e^-x / (1 + e^-x)^2, which the backward computes as y (1 - y); sigma'(0) = 1/4 exactly. At x = 30,
    # 1 - y = 9.4e-14 keeps only three digits of y's float64 (as in PyTorch): compared there to 1e-2
    np.testing.assert_allclose(x.grad.numpy()[:-1], [d for _, d in expected[:-1]], rtol=1e-13,
                               err_msg=f"{call}, the backward y (1 - y)")
    np.testing.assert_allclose(x.grad.numpy()[-1], expected[-1][1], rtol=1e-2)
    assert x.grad.numpy()[4] == 0.25


def test_sigmoid_of_minus_100_0_100_is_finite_with_a_finite_gradient_in_float32():
    # 1 / (1 + (-x).exp()) overflowed here: e^100 = inf in float32, and its backward divided inf by inf (NaN).
    # sigma(-100) = e^-100 / (1 + e^-100) = 3.72e-44, below float32's smallest normal number (1.2e-38): a
    # subnormal, one step of 1.4e-45 away at most, or 0 where subnormals are flushed; sigma(100) rounds to 1
    x = mt.tensor([-100.0, 0.0, 100.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow, no invalid value
        y = F.sigmoid(x)
        y.sum().backward()
    got, grad = y.numpy(), x.grad.numpy()
    assert got.dtype == np.float32 and grad.dtype == np.float32
    assert np.isfinite(got).all() and np.isfinite(grad).all(), (got, grad)
    assert got[0] == 0 or abs(float(got[0]) - math.exp(-100)) <= 1.5e-45, got[0]
    assert got[1] == 0.5 and got[2] == 1.0, got
    # y (1 - y): about y at -100 (1 - y = 1), 1/4 at 0, and 0 at 100 where 1 - y rounds to 0 (the true 3.7e-44 too)
    assert 0 <= grad[0] <= 4e-44 and grad[1] == 0.25 and 0 <= grad[2] <= 4e-44, grad
    # in float64, e^-100 is a normal number: sigma(-100) to the last digit, and its gradient too
    x64 = mt.tensor([-100.0, 100.0], dtype="float64", requires_grad=True)
    y64 = F.sigmoid(x64)
    y64.sum().backward()
    np.testing.assert_allclose(y64.numpy(), [math.exp(-100) / (1 + math.exp(-100)), 1.0], rtol=1e-15)
    np.testing.assert_allclose(x64.grad.numpy()[0], math.exp(-100), rtol=1e-15)


def test_what_pytorch_users_are_told_to_write_for_its_sigmoid_has_no_nan_at_minus_100():
    """The hints for torch.sigmoid(x), nn.Sigmoid() and x.sigmoid_() said to write 1 / (1 + (-x).exp()), whose
    gradient is NaN at x = -100 in float32; they now name x.sigmoid(), the stable composition (as x.sigmoid() and
    F.sigmoid(x), which exist now under torch's names), and what they name is finite there, values and gradients."""
    from minitransformer import nn
    from minitransformer.autograd._torch_names import TORCH_NAMES

    def run(expression):
        x = mt.tensor([-100.0, 0.0, 100.0], requires_grad=True)
        y = eval(expression, {"mt": mt, "F": F, "nn": nn, "x": x})
        y.sum().backward()
        return y.numpy(), x.grad.numpy()

    with warnings.catch_warnings():  # the old hint: e^100 overflows, and the backward divides inf by inf
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(run("1 / (1 + (-x).exp())")[1][0])
    said = []  # what the AttributeErrors of torch.sigmoid, nn.Sigmoid and x.sigmoid_ say to write
    for owner, name in ((mt, "sigmoid"), (nn, "Sigmoid"), (mt.zeros(2), "sigmoid_")):
        with pytest.raises(AttributeError, match=r"is (x = )?x\.sigmoid\(\) here \(docs/from-pytorch.md\)$") as e:
            getattr(owner, name)
        said.append(re.search(r" is (?:x = )?(.+) here \(docs", str(e.value)).group(1))
    assert "sigmoid" not in TORCH_NAMES["Tensor"] and "sigmoid" not in TORCH_NAMES["minitransformer.functional"]
    for expression in (*said, "F.sigmoid(x)"):  # torch's names x.sigmoid() and F.sigmoid(x) exist here
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            y, grad = run(expression)
        assert np.isfinite(y).all() and np.isfinite(grad).all(), (expression, y, grad)
        assert grad[1] == 0.25, expression


def test_sigmoid_gradcheck():
    # float64, both branches and far into each tail (the derivative there is e^-|x|, down to 6e-6)
    x = mt.tensor(np.linspace(-12.0, 12.0, 17), requires_grad=True)
    assert mt.gradcheck(F.sigmoid, x)
    assert mt.gradcheck(lambda t: t.sigmoid(), x)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_agrees_with_torch(rng, dtype):
    torch = pytest.importorskip("torch")
    x = np.concatenate([rng.standard_normal(19) * 5, [-100.0, -20.0, 0.0, 20.0, 100.0]]).astype(dtype).reshape(4, 6)
    v = rng.standard_normal(x.shape).astype(dtype)
    t = mt.tensor(x, requires_grad=True)
    y = F.sigmoid(t)
    (y * mt.tensor(v)).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    ty = torch.sigmoid(tt)
    (ty * torch.tensor(v)).sum().backward()
    tol = 1e-6 if dtype == "float64" else 1e-5
    close_to_torch(_rel_err(y.numpy(), ty.detach().numpy()), f"sigmoid elementwise, {dtype}, the forward", tol)
    close_to_torch(_rel_err(t.grad.numpy(), tt.grad.numpy()), f"sigmoid elementwise, {dtype}, the gradient of "
                   "<v, y> (the backward)", tol)
    assert np.isfinite(t.grad.numpy()).all() and np.isfinite(tt.grad.numpy()).all()


def test_sigmoid_bad_input():
    with pytest.raises(TypeError, match=r"^sigmoid: x must be floating point, got int64"):
        F.sigmoid(mt.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"^sigmoid: x must be a Tensor"):
        F.sigmoid([1.0, 2.0])
    with pytest.raises(TypeError, match=r"^sigmoid: needs floating-point input, got int64 with shape \(2,\)"):
        mt.tensor([1, 2]).sigmoid()  # named by the composition, not by Exp inside it
