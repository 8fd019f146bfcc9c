"""``gradcheck`` itself, and property-based gradient checks over random shapes and values.

First: gradcheck must catch a wrong derivative (a deliberately broken ``Function`` defined here)
and say which input, which element, and both numbers (for a loss, its derivatives themselves); it must
refuse float32 inputs and outputs. Then hypothesis
draws broadcastable shapes and values for the binary elementwise operations and random axes for
the reductions, and every draw must pass gradcheck.

Values are drawn from a grid (multiples of 1/4) so that ties are exact or far apart: an exact tie
of two is fine for max/maximum (the central difference also gives 1/2), a near tie is not.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitransformer as mt
from minitransformer.autograd import GradcheckError, numerical_grad
from minitransformer.testing import (
    close_to_torch,
    gradcheck_module,
    name_known_mistake,
    name_known_mistake_of,
    rel_err,
)


# ------------------------------------------------------------------ a deliberately wrong Function
class WrongExp(mt.Function):
    """y = e^x with a backward off by a factor 2: d/dx e^x is e^x, not 2 e^x."""

    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, grad):
        return (2.0 * grad * self.y,)


class WrongSecondInput(mt.Function):
    """y = a b with the gradient of b wrong in its sign (the gradient of a is right)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        return grad * self.b, -grad * self.a


_NUMBER = r"(-?[0-9.]+(?:e[-+]?\d+)?)"


def test_gradcheck_fails_on_wrong_derivative():
    x = mt.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3,\)\) at index \(\d,\): received d<v, f>/dx") as e:
        mt.gradcheck(WrongExp.apply, x)
    message = str(e.value)
    received = float(re.search(rf"received d<v, f>/dx {_NUMBER}", message).group(1))
    expected = float(re.search(rf"expected {_NUMBER} from central difference", message).group(1))
    # the broken backward doubles the true derivative v_i e^{x_i}, whatever the cotangent v_i is
    assert received == pytest.approx(2 * expected, rel=1e-6)
    assert "ratio 2;" in message and "3 of 3 elements outside tolerance" in message
    assert "v: a random cotangent of f's shape (3,), seed 0" in message  # says the numbers are not df/dx


class BadSquare(mt.Function):
    """y = x^2 with a backward that forgot the factor 2 of dy/dx = 2x."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return (grad * self.x,)


def test_gradcheck_of_a_loss_reports_the_derivative_itself():
    # a one-element output is checked as it is (v = 1): d(sum x^2)/dx_1 at x_1 = 2 is 4, and the wrong backward
    # gives 2. (A random scalar v made it "received 0.2515, expected 0.5029": 0.1257 times the derivatives.)
    w = mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True, name="w")
    with pytest.raises(GradcheckError, match=r"^gradcheck: input 0 'w' \(shape \(2,\)\) at index \(1,\): received "
                                             r"derivative 2, expected 4(\.0+\d*)? from central difference "
                                             r"\(ratio 0\.5;"):
        mt.gradcheck(lambda t: BadSquare.apply(t).sum(), w)
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])  # the analytic gradient it compared, v = 1


def test_gradcheck_says_when_no_gradient_reached_an_input():
    # fn reads a detached: its value moves the output, but no gradient flows back to it
    a = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = mt.tensor(np.array([3.0, 4.0]), requires_grad=True, name="b")
    with pytest.raises(GradcheckError, match=r"no gradient reached input 0 \(shape \(2,\)\): its \.grad is None .* "
                                             r"\(is it detached, or used under no_grad, in fn\?\)"):
        mt.gradcheck(lambda a, b: (a.detach() * b).sum(), a, b)
    # an input fn does not use has no gradient either, and that is right
    assert mt.gradcheck(lambda a, b: (a * 2.0).sum(), a, b)
    assert b.grad is None


def test_gradcheck_refuses_a_float32_output_by_name():
    x = mt.tensor(np.array([0.5, -1.0]), requires_grad=True)
    with pytest.raises(TypeError, match=r"^gradcheck: fn is float32 with shape \(2,\); it must be a float64 tensor"):
        mt.gradcheck(lambda t: t.to("float32"), x)
    with pytest.raises(TypeError, match=r"^gradcheck: output 1 of fn is float32 with shape \(\)"):
        mt.gradcheck(lambda t: (t, t.sum().to("float32")), x)


def test_gradcheck_names_the_wrong_input():
    a = mt.tensor(np.array([[0.5, -1.0], [2.0, 1.5]]), requires_grad=True)
    b = mt.tensor(np.array([1.0, 3.0]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2,\)\) at index \(\d,\)"):
        mt.gradcheck(WrongSecondInput.apply, a, b)
    b.name = "b"  # a named input is named in the message
    with pytest.raises(GradcheckError, match=r"input 1 'b' \(shape \(2,\)\) at index \(\d,\)"):
        mt.gradcheck(WrongSecondInput.apply, a, b)
    # the same inputs with the right operation pass
    assert mt.gradcheck(lambda a, b: a * b, a, b)


def test_gradcheck_can_return_false():
    x = mt.tensor(np.array([0.5, -1.0]), requires_grad=True)
    assert mt.gradcheck(WrongExp.apply, x, raise_exception=False) is False
    assert mt.gradcheck(lambda t: t.exp(), x, raise_exception=False) is True


def test_gradcheck_refuses_float32():
    x = mt.tensor([0.5, -1.0], dtype="float32", requires_grad=True)
    with pytest.raises(TypeError, match=r"gradcheck: input 0 is float32; use float64"):
        mt.gradcheck(lambda t: t.exp(), x)


def test_gradcheck_skips_inputs_without_grad():
    """Only inputs with requires_grad=True are checked: a wrong-in-b function passes if b is constant."""
    a = mt.tensor(np.array([0.5, -1.0]), requires_grad=True)
    b = mt.tensor(np.array([1.0, 3.0]))
    assert mt.gradcheck(WrongSecondInput.apply, a, b)


def test_gradcheck_refuses_inputs_of_which_none_requires_grad():
    """Nothing to check: said by gradcheck (it was backward()'s "this tensor does not require grad")."""
    x = mt.tensor(np.array([0.5, -1.0]))
    with pytest.raises(ValueError, match=r"^gradcheck: no input requires grad, so there is nothing to check "
                                         r"\(inputs: float64 \(2,\), float\); make those to check with "
                                         r"requires_grad=True"):
        mt.gradcheck(lambda t, c: t * c, x, 2.0)


class NanBackward(mt.Function):
    """y = 2x with a backward that makes NaN at x = 0, where the central difference is 2 v."""

    def forward(self, x):
        self.x = x
        return 2.0 * x

    def backward(self, grad):
        return (self.xp.where(self.x != 0.0, 2.0 * grad, float("nan")),)


class NanBelowZero(mt.Function):
    """y = x for x >= 0 and NaN below, with backward 1: at x = 0 the central difference is NaN."""

    def forward(self, x):
        return self.xp.where(x >= 0.0, x, float("nan"))

    def backward(self, grad):
        return (grad,)


@pytest.mark.parametrize("fn, received, expected", [(NanBackward.apply, "nan", _NUMBER),
                                                    (NanBelowZero.apply, _NUMBER, "nan")],
                         ids=["analytic", "numerical"])
def test_gradcheck_fails_on_a_nan_in_either_gradient(fn, received, expected):
    # NaN > tolerance is False: a check written as `error > tolerance` lets every NaN through
    x = mt.tensor(np.array([1.0, 0.0]), requires_grad=True)
    with pytest.raises(GradcheckError, match=rf"input 0 \(shape \(2,\)\) at index \(1,\): received d<v, f>/dx "
                                             rf"{received}, expected {expected} from central difference"):
        mt.gradcheck(fn, x)
    assert mt.gradcheck(fn, x, raise_exception=False) is False


def test_gradcheck_of_one_tensor_passed_twice():
    # its gradient is the sum over both uses, and so is the central difference (both arguments move): as PyTorch
    x = mt.tensor(np.array([1.0, -2.0]), requires_grad=True)
    assert mt.gradcheck(lambda a, b: a * b, x, x)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2,\)\)"):
        mt.gradcheck(WrongSecondInput.apply, x, x)  # b's wrong sign cancels a's gradient: 0 for 2 v x


def test_gradcheck_of_an_intermediate_tensor():
    # a result of operations keeps no .grad: it is checked as a leaf of its own, and the graph behind it is left alone
    w = mt.tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    x = w.to("float64")
    assert not x.is_leaf and mt.gradcheck(lambda a: a * a, x)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2,\)\)"):
        mt.gradcheck(WrongExp.apply, x)
    assert w.grad is None


def test_gradcheck_leaves_the_grad_of_other_parameters_alone():
    w = mt.tensor(np.array([3.0, 4.0]), requires_grad=True)  # a parameter fn uses, not an input
    w.grad = mt.tensor(np.array([10.0, 20.0]))
    unused = mt.tensor(np.array([5.0]), requires_grad=True)
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert mt.gradcheck(lambda a: a * w + unused, x)
    np.testing.assert_array_equal(w.grad.numpy(), [10.0, 20.0])
    assert unused.grad is None


class OffBy(mt.Function):
    """y = c x (elementwise) with a backward off by ``delta``: it returns (c + delta) grad instead of c grad."""

    def forward(self, x, c, delta):
        self.c = self.xp.asarray(c, dtype=x.dtype)
        self.delta = self.xp.asarray(delta, dtype=x.dtype)
        return self.c * x

    def backward(self, grad):
        return ((self.c + self.delta) * grad,)


@pytest.mark.parametrize("x, c, delta, passes", [
    (0.0, 0.0, 1e-6, True),  # central difference 0 exactly: allowed atol = 1e-6, and the rule is <= (error == atol)
    (0.0, 0.0, 1.5e-6, False),  # atol 2e-6 would let it through
    (1.0, 100.0, 0.9e-2, True),  # allowed 1e-6 + 1e-4 * 100 = 0.010001
    (1.0, 100.0, 1.1e-2, False),  # rtol 2e-4 would let it through
])
def test_gradcheck_default_tolerance_is_atol_1e_6_plus_rtol_1e_4(x, c, delta, passes):
    # documented: |analytic - numerical| <= atol + rtol |numerical|, atol = 1e-6, rtol = 1e-4; the central
    # difference of a linear function is c (exactly 0 for c = 0), so the analytic derivative is off by delta
    t = mt.tensor([x], dtype="float64", requires_grad=True)
    assert mt.gradcheck(lambda t: OffBy.apply(t, c=c, delta=delta).sum(), t, raise_exception=False) is passes


def test_gradcheck_default_step_is_1e_6():
    # the central difference of x^3 is 3 x^2 + eps^2 exactly: at x = 0 it is eps^2, 1e-12 for eps = 1e-6; an
    # analytic derivative off by 1 makes the message show it
    x = mt.tensor([0.0], dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError, match=r"received derivative 1, expected 1e-12 from central difference"):
        mt.gradcheck(lambda t: (t**3).sum() + OffBy.apply(t, c=0.0, delta=1.0).sum(), x)


def test_gradcheck_names_the_worst_element_outside_tolerance_and_the_ratio():
    # element 0 is off by 0.005 but within 1e-6 + 1e-4 * 100; element 1 is off by 1e-3, 1000 times its tolerance:
    # the worst is the one furthest outside (not the largest error plus tolerance)
    x = mt.tensor([1.0, 0.0], dtype="float64", requires_grad=True)
    with pytest.raises(GradcheckError, match=r"at index \(1,\): received derivative 0\.001, expected 0 from central "
                                             r"difference \(abs error 0\.001, .* 1 of 2 elements outside"):
        mt.gradcheck(lambda t: OffBy.apply(t, c=[100.0, 0.0], delta=[0.005, 1e-3]).sum(), x)
    # the ratio analytic / numerical where the central difference is not 0: here exactly 1 (of y = x at 0)
    with pytest.raises(GradcheckError, match=r"received derivative 2, expected 1 from central difference \(ratio 2; "):
        mt.gradcheck(lambda t: OffBy.apply(t, c=1.0, delta=1.0).sum(), x[1:])


@pytest.mark.parametrize("c, passes", [(1e-6, True), (1.5e-6, False)])
def test_gradcheck_judges_a_missing_gradient_as_a_zero_one(c, passes):
    # .grad None is a gradient of 0: fine where |numerical| <= atol (1e-6; the central difference at 0 is c exactly)
    x, y = (mt.tensor([0.0], dtype="float64", requires_grad=True) for _ in range(2))
    assert mt.gradcheck(lambda t, u: (c * t.detach() + u).sum(), x, y, raise_exception=False) is passes


class NoGradForA(mt.Function):
    """y = a b with a backward that returns None for a, which wants a gradient."""

    def forward(self, a, b):
        self.a = a
        return a * b

    def backward(self, grad):
        return None, grad * self.a


def test_a_backward_that_returns_none_for_an_input_wanting_a_gradient_is_named():
    # it gave no gradient silently, and gradcheck said only that none reached the input, not which backward lost it:
    # a wrong Mul.backward (which gradcheck's own <v, f> goes through) left every gradcheck saying so of its inputs
    a = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = mt.tensor(np.array([3.0, 4.0]), requires_grad=True)
    with pytest.raises(TypeError, match=r"^NoGradForA\.backward returned None for input 0 \(shape \(2,\)\), "
                                        r"which wants a gradient \(needs_grad\(0\) is True\)"):
        NoGradForA.apply(a, b).sum().backward()
    c = mt.tensor(np.array([3.0, 4.0]))  # a constant: None is its gradient
    NoGradForA.apply(c, b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [3.0, 4.0])


def test_gradcheck_of_several_outputs_sums_them():
    # s = <v_1, f_1> + <v_2, f_2>, v = 1 for one-element outputs: x.grad holds ds/dx = 1 + 2x afterwards
    x = mt.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
    assert mt.gradcheck(lambda t: (t.sum(), (t * t).sum()), x)
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -1.0])


def test_numerical_grad_matches_hand_derivative():
    # s(x) = <v, x^3>, so ds/dx_i = 3 v_i x_i^2
    x = mt.tensor(np.array([[0.5, -1.0], [2.0, 1.5]]))
    v = np.array([[1.0, -2.0], [0.5, 3.0]])
    got = numerical_grad(lambda t: t**3, [x], [v], 0, eps=1e-6)
    np.testing.assert_allclose(got, 3 * v * x.numpy() ** 2, rtol=1e-8)
    # x moves in the arguments only (the argument, not x itself): a fn that also reads x sees it unchanged,
    # d<v, t x>/dt = v x
    got = numerical_grad(lambda t: t * x, [x], [v], 0, eps=1e-6)
    np.testing.assert_allclose(got, v * x.numpy(), rtol=1e-8)


# ------------------------------------------------------------------ minitransformer.testing
def test_rel_err_is_scaled_by_the_largest_element_of_the_reference():
    # max|got - expected| / max|expected|, also when the reference is below 1: 0.001 / 0.01, not the absolute 0.001
    assert rel_err([0.011, -0.001], [0.01, -0.001]) == pytest.approx(0.1, rel=1e-12)
    assert rel_err([1.1, 100.0], [1.0, 100.0]) == pytest.approx(1e-3, rel=1e-12)
    assert rel_err([0.0, 0.0], [0.0, 0.0]) == 0.0 and rel_err([], []) == 0.0  # equal: 0, not 0/0


def test_name_known_mistake_never_names_a_candidate_equal_to_the_right_answer():
    right, off = np.array([1.0, 2.0]), np.array([1.0, 2.0]) * (1 + 1e-10)  # wrong at rtol 1e-12, not at 1e-9
    doubled = (2 * right, "x doubled?")
    # "uniform rows" under a causal mask, "divided by d_k" with d_k = 1: the candidate is the right answer
    assert name_known_mistake(off, right, [(right.copy(), "the right one"), doubled], rtol=1e-12) == ""
    assert name_known_mistake(right, right, [(right, "the right one")], rtol=1e-12, atol=1e-12) == ""
    # named at the assertion's own tolerance: off by 1e-10 from a candidate is not equal to it at rtol 1e-12
    assert name_known_mistake(2 * off, right, [doubled], rtol=1e-12) == ""
    said = "; it equals the known wrong answer with x doubled?"
    assert name_known_mistake(2 * off, right, [doubled], rtol=1e-9) == said
    # the first wrong candidate that the result equals; another shape is passed over; the noun is the caller's
    assert name_known_mistake(2 * right, right, [([2.0], "a scalar"), (right, "right"), doubled, (2 * right, "second")],
                              what="table") == "; it equals the known wrong table with x doubled?"


def test_rel_err_against_an_all_zero_reference_divides_by_1e_300_not_by_zero():
    assert rel_err([1e-300, 0.0], [0.0, 0.0]) == pytest.approx(1.0, rel=1e-12)
    assert rel_err([-1e-3], [0.0]) == pytest.approx(1e297, rel=1e-12)  # huge, not inf or NaN


def test_close_to_torch_passes_an_error_under_1e_6_by_default_and_names_what_was_compared(capsys):
    close_to_torch(9.99e-7, "softmax, the forward")
    assert capsys.readouterr().out == "REL_ERR softmax, the forward 9.990e-07\n"
    for err in (1e-6, float("nan")):  # tol itself is too much; NaN is never under it
        with pytest.raises(AssertionError, match=rf"softmax, the forward: relative error {err:.3g} against "
                                                 r"PyTorch, not under 1e-06"):
            close_to_torch(err, "softmax, the forward")
    close_to_torch(1e-5, "layer norm", tol=2e-5)
    with pytest.raises(AssertionError, match="not under 1e-08"):
        close_to_torch(1e-8, "layer norm", tol=1e-8)


def test_name_known_mistake_compares_at_rtol_1e_7_and_no_atol_by_default():
    right = np.array([1.0, 2.0])
    doubled = [(2 * right, "x doubled?")]
    said = "; it equals the known wrong answer with x doubled?"
    assert name_known_mistake(2 * right * (1 + 0.9e-7), right, doubled) == said
    assert name_known_mistake(2 * right * (1 + 1.5e-7), right, doubled) == ""  # 1.5e-7 apart: another answer
    assert name_known_mistake(2 * right + 0.5, right, doubled) == ""  # 0.5 apart: no atol

    def formula(doubled=False, shifted=0.0):
        return (2 if doubled else 1) * right + shifted

    mistakes = [({"doubled": True}, "x doubled?"), ({"shifted": 1.0}, "x shifted?")]
    assert name_known_mistake_of(formula, mistakes, 2 * right * (1 + 0.9e-7)) == said
    assert name_known_mistake_of(formula, mistakes, 2 * right * (1 + 1.5e-7)) == ""
    assert name_known_mistake_of(formula, mistakes, right + 0.5) == ""  # 0.5 from "shifted": no atol
    assert name_known_mistake_of(formula, mistakes, right + 1.0) == "; it equals the known wrong answer with x shifted?"


class WrongInParameter(mt.nn.Module):
    """x w through WrongSecondInput: the derivative with respect to the parameter w has the wrong sign."""

    def __init__(self):
        super().__init__()
        self.w = mt.nn.Parameter(mt.tensor([2.0, -1.0], dtype="float64"))
        self.register_parameter("b", None)  # an empty slot, as a bias=False layer's: skipped

    def forward(self, x):
        return WrongSecondInput.apply(x, self.w)


def test_gradcheck_module_checks_the_parameters_too():
    # x's derivative is right, w's is not: w is passed to gradcheck after the one input, as input 1
    module = WrongInParameter()
    x = mt.tensor(np.array([0.5, 3.0]), requires_grad=True)
    assert mt.gradcheck(lambda t: WrongSecondInput.apply(t, module.w.detach()), x)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2,\)\)"):
        gradcheck_module(module, x)
    assert isinstance(module.w, mt.nn.Parameter) and module._parameters["b"] is None  # both put back



def test_gradcheck_module_names_a_float32_parameter_by_its_dotted_name_and_module_to():
    """It said 'gradcheck: input 1 is float32; use float64 (x.to('float64'))' of the weight, which gradcheck_module
    passes after the inputs, where the one input given was float64."""
    x = mt.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    with pytest.raises(TypeError, match=r"^gradcheck_module: parameter 'weight' of Linear is float32 \(3, 2\); use "
                                        r"float64 \(module\.to\('float64'\)\), since float32 central differences "):
        gradcheck_module(mt.nn.Linear(3, 2).eval(), x)
    with pytest.raises(TypeError, match=r"^gradcheck_module: parameter 'W_1\.weight' of FeedForward is float32 "):
        gradcheck_module(mt.nn.FeedForward(3, 4).eval(), x)
    assert gradcheck_module(mt.nn.Linear(3, 2).to("float64"), x)


def test_gradcheck_module_refuses_dropout_in_training_mode_naming_it_and_eval():
    """A module in training mode with dropout draws a new mask at each call: the check failed with a bare mismatch
    (received 0, expected 740765), saying nothing of why; it is refused before any check, naming the dropout."""
    mt.manual_seed(0)
    ffn = mt.nn.FeedForward(4, 8, dropout=0.3).to("float64")
    x = mt.randn(2, 3, 4, dtype="float64", requires_grad=True)
    with pytest.raises(ValueError, match=r"^gradcheck_module: FeedForward is in training mode with dropout \(dropout: "
                                         r"Dropout, p=0\.3\): dropout draws a new mask at each call.*call "
                                         r"FeedForward\.eval\(\) first"):
        gradcheck_module(ffn, x)
    mha = mt.nn.MultiHeadAttention(4, 2, dropout=0.1).to("float64")
    with pytest.raises(ValueError, match=r"with dropout \(itself: MultiHeadAttention, dropout=0\.1\)"):
        gradcheck_module(mha, x, x, x)
    assert gradcheck_module(ffn.eval(), x)
    assert gradcheck_module(mt.nn.FeedForward(4, 8, dropout=0.0).to("float64"), x)  # training, but no dropout

    class PowerMean(mt.nn.Module):  # a number called p that is no dropout: checked, in training mode
        def __init__(self):
            super().__init__()
            self.p = 3.0
            self.w = mt.nn.Parameter(mt.ones(4, dtype="float64"))

        def forward(self, x):
            return ((self.w * x) ** 2 + 1.0).mean(axis=-1) ** (1 / self.p)

    assert PowerMean().training and gradcheck_module(PowerMean(), x)


def test_a_random_fn_is_said_to_be_random_not_a_wrong_gradient():
    """Two calls with the same inputs that differ (dropout in training mode, in a plain fn): said so, not reported
    as a gradient mismatch of a huge ratio."""
    mt.manual_seed(0)
    x = mt.tensor(np.array([0.5, -1.0, 2.0, 1.5]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"^gradcheck: fn differs between two calls with the same inputs \(at "
                                             r"index \(\d+,\): .*, then .*\): fn is random \(dropout in training "
                                             r"mode\? call module\.eval\(\) first"):
        mt.gradcheck(lambda t: mt.functional.dropout(t * 1.0, 0.5, training=True), x)
    with pytest.raises(GradcheckError, match=r"^gradcheck: output 1 of fn differs between two calls"):
        mt.gradcheck(lambda t: (t * 2.0, t * mt.randn(4, dtype="float64")), x)

    def seeded(t):  # the same mask at each call: deterministic, and checked as such
        mt.manual_seed(1)
        return mt.functional.dropout(t, 0.5, training=True)

    assert mt.gradcheck(seeded, x)
    assert mt.gradcheck(lambda t: t * mt.randn(4, dtype="float64"), x, raise_exception=False) is False
    # inf twice is the same output: the check goes on (and fails, on the NaN of inf - inf), not called random
    positive = mt.tensor(np.array([0.5, 2.0]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"^gradcheck: input 0 \(shape \(2,\)\) at index \(0,\): received "
                                             r"derivative inf, expected nan"):
        mt.gradcheck(lambda t: (t * math.inf).sum(), positive)

# ------------------------------------------------------------------ property-based checks
PROPERTY = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

GRID = st.integers(-8, 8).map(lambda k: k / 4)  # -2 .. 2 in steps of 1/4
AWAY_FROM_ZERO = st.sampled_from([-2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0])
OFF_GRID = st.integers(-8, 7).map(lambda k: (k + 0.5) / 4)  # never 0: relu's kink


def _tensor(array):
    return mt.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


BINARY = {
    "add": (lambda a, b: a + b, GRID),
    "sub": (lambda a, b: a - b, GRID),
    "mul": (lambda a, b: a * b, GRID),
    "div": (lambda a, b: a / b, AWAY_FROM_ZERO),
    "maximum": (mt.maximum, GRID),
    "pow": (lambda a, b: a.exp() ** b, GRID),  # base e^a > 0, so the exponent's gradient exists
    "where": (lambda a, b: mt.where((a + b) >= 0.0, a * b, a - b), GRID),
}


@pytest.mark.parametrize("op", list(BINARY))
@PROPERTY
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_binary_ops_broadcast_and_pass_gradcheck(op, data, shapes):
    fn, elements_b = BINARY[op]
    a = data.draw(hnp.arrays(np.float64, shapes.input_shapes[0], elements=GRID), label="a")
    b = data.draw(hnp.arrays(np.float64, shapes.input_shapes[1], elements=elements_b), label="b")
    if op == "where":  # near (a + b) = 0 the condition flips within eps: keep a and b off that line
        b = b + 0.125
    x, y = _tensor(a), _tensor(b)
    out = fn(x, y)
    assert out.shape == shapes.result_shape
    assert mt.gradcheck(fn, x, y)
    assert x.grad.shape == x.shape and y.grad.shape == y.shape


UNARY = {
    "exp": (lambda x: x.exp(), GRID),
    "tanh": (lambda x: x.tanh(), GRID),
    "sigmoid": (lambda x: (4.0 * x).sigmoid(), GRID),  # -8 .. 8: both branches, and x = 0 where they meet
    "relu": (lambda x: x.relu(), OFF_GRID),
    "log": (lambda x: (x * x + 0.25).log(), GRID),
    "log1p": (lambda x: (x * x - 0.75).log1p(), GRID),  # 1 + x * x - 0.75 >= 0.25
    "sqrt": (lambda x: (x * x + 0.25).sqrt(), GRID),
    "neg": (lambda x: -x, GRID),
}


@pytest.mark.parametrize("op", list(UNARY))
@PROPERTY
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
def test_unary_ops_pass_gradcheck(op, data, shape):
    fn, elements = UNARY[op]
    x = _tensor(data.draw(hnp.arrays(np.float64, shape, elements=elements)))
    assert mt.gradcheck(fn, x)


REDUCTIONS = {
    "sum": (lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims), np.sum),
    "mean": (lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims), np.mean),
    "max": (lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims), np.max),
}


@st.composite
def _axis(draw, ndim):
    """None, one axis (maybe negative), or a tuple of distinct axes (maybe negative)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]) if ndim else st.just("none"))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(draw(st.sampled_from([a, a - ndim])) for a in axes)


@pytest.mark.parametrize("op", list(REDUCTIONS))
@PROPERTY
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), keepdims=st.booleans())
def test_reductions_over_random_axes_pass_gradcheck(op, data, shape, keepdims):
    fn, np_fn = REDUCTIONS[op]
    n = math.prod(shape)
    # distinct values half a unit apart: no ties for max, and no near ties either
    order = data.draw(st.permutations(range(n)), label="order")
    values = (np.asarray(order, dtype=np.float64).reshape(shape) - n / 2) / 2
    axis = data.draw(_axis(len(shape)), label="axis")
    x = _tensor(values)
    out = fn(x, axis, keepdims)
    np.testing.assert_allclose(out.numpy(), np_fn(values, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert mt.gradcheck(lambda t: fn(t, axis, keepdims), x)


@PROPERTY
@given(data=st.data(), batch=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=2),
       dims=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))
def test_matmul_broadcast_batches_pass_gradcheck(data, batch, dims):
    n, k, m = dims
    a = data.draw(hnp.arrays(np.float64, batch.input_shapes[0] + (n, k), elements=GRID), label="a")
    b = data.draw(hnp.arrays(np.float64, batch.input_shapes[1] + (k, m), elements=GRID), label="b")
    x, y = _tensor(a), _tensor(b)
    np.testing.assert_allclose((x @ y).numpy(), a @ b, rtol=1e-12)
    assert mt.gradcheck(mt.matmul, x, y)


@pytest.mark.parametrize(
    "option, value, error, message",
    [
        ("eps", 0, ValueError, r"^gradcheck: eps must be a finite number > 0, got 0$"),  # was ZeroDivisionError
        ("eps", -1e-6, ValueError, r"^gradcheck: eps must be a finite number > 0, got -1e-06$"),
        ("atol", -1, ValueError, r"^gradcheck: atol must be a finite number >= 0, got -1$"),  # failed every element
        ("rtol", float("nan"), ValueError, r"^gradcheck: rtol must be a finite number >= 0, got nan$"),
        ("eps", "1e-6", TypeError, r"^gradcheck: eps must be a finite number > 0, got '1e-6'$"),
    ],
)
def test_gradcheck_refuses_a_bad_step_or_tolerance(option, value, error, message):
    x = mt.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
    with pytest.raises(error, match=message):
        mt.gradcheck(lambda t: t * t, x, **{option: value})
    with pytest.raises(ValueError, match=r"^numerical_grad: eps must be a finite number > 0, got 0$"):
        numerical_grad(lambda t: t * t, [x], [np.ones(2)], 0, 0)


def test_gradcheck_of_a_list_of_inputs_says_to_pass_them_separately():
    """It said "no input requires grad (inputs: list)", without saying why."""
    x = mt.tensor([0.5, -1.0], dtype="float64", requires_grad=True)
    with pytest.raises(TypeError, match=r"^gradcheck: input 0 is a list of 2 items; pass the tensors as separate "
                                        r"arguments, gradcheck\(fn, \*inputs\) or gradcheck\(fn, x, y\)"):
        mt.gradcheck(lambda a, b: a * b, [x, x])
    assert mt.gradcheck(lambda a, b: a * b, *[x, x])


@pytest.mark.single_backend
def test_close_to_torch_fails_under_python_O_too(tmp_path):
    """A bare assert: under python -O (which removes asserts) every comparison against PyTorch passed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("from minitransformer.testing import close_to_torch\n"
            "try:\n    close_to_torch(0.5, 'softmax, the forward')\n"
            "except AssertionError as e:\n    print('refused:', e)")
    env = {**os.environ, "PYTHONPATH": str(Path(mt.__file__).parents[1])}
    run = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, encoding="utf-8", env=env,
                         cwd=tmp_path, timeout=120)
    assert run.stdout.splitlines()[-1] == ("refused: softmax, the forward: relative error 0.5 against PyTorch, not "
                                           "under 1e-06"), run.stderr
