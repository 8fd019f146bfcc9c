"""A primitive of one's own: what ``Function.apply`` refuses in a new ``forward``, at once and naming it.

A Tensor given by keyword (keywords are constants, which forward gets as they are), a ``forward`` that returns
anything but one array of the backend (a tuple of two results, a Tensor) or a floating result of another dtype
than its inputs (``x * xp.asarray(2.0)``, float64 of float32), and ``torch.autograd.Function``'s form
(``@staticmethod def forward(ctx, x)``): each would fail later, elsewhere, in words about something else.
"""

from __future__ import annotations

import numpy as np
import pytest

import minitransformer as mt


class Scale(mt.Function):
    """y = x s, the scale a keyword option (a constant): dL/dx = dL/dy s."""

    def forward(self, x, s):
        self.s = s
        return x * s

    def backward(self, grad):
        return (grad * self.s,)


def test_a_tensor_given_by_keyword_is_refused_naming_the_function_and_the_keyword():
    """On NumPy forward would return a Tensor inside a Tensor (and ``.sum()`` fail on NumPy's ``out=``); on
    array-api-strict forward would fail with "Expected Array or Python scalar"."""
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    w = mt.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"^Scale\.apply: the keyword s= is a Tensor \(float32 with shape \(2,\)\); "
                                        r"keyword options are constants.*positionally \(Scale\.apply\(x, s\).*"
                                        r"s=<the tensor>\.data\)"):
        Scale.apply(x, s=w)
    y = Scale.apply(x, s=w.data)  # a constant: its array
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    assert w.grad is None


def test_a_forward_returning_two_results_is_refused():
    class Two(mt.Function):
        def forward(self, x):
            return x, -x

        def backward(self, grad):
            return (grad,)

    x = mt.tensor([1.0, 2.0], requires_grad=True)
    name = mt.backend.current().name
    with pytest.raises(TypeError, match=rf"^Two\.forward returned a tuple of 2 items, not an array of the backend "
                                        rf"\({name}\); a Function has one output"):
        Two.apply(x)


def test_a_forward_returning_a_tensor_or_a_number_is_refused():
    w = mt.tensor([3.0, 4.0])

    class ClosesOverATensor(mt.Function):
        def forward(self, x):
            return w * x  # a Tensor: forward computes on arrays

        def backward(self, grad):
            return (grad,)

    class Number(mt.Function):
        def forward(self, x):
            return 2.0

        def backward(self, grad):
            return (grad,)

    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"^ClosesOverATensor\.forward returned a Tensor, not an array of the backend"):
        ClosesOverATensor.apply(x)
    with pytest.raises(TypeError, match=r"^Number\.forward returned a float, not an array of the backend .*"
                                        r"self\.xp\.asarray\(value, dtype=x\.dtype\)"):
        Number.apply(x)


def test_a_forward_returning_another_floating_dtype_is_refused_at_forward_not_blamed_on_backward():
    """``x * xp.asarray(2.0)`` is float64 of float32 input (silent promotion): refused where it happens, not at
    backward() as "a float64 gradient for a float32 input" of backward."""

    class Double(mt.Function):
        def forward(self, x):
            return x * self.xp.asarray(2.0, dtype=self.xp.float64)

        def backward(self, grad):
            return (grad * 2.0,)

    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"^Double\.forward returned float64 for float32 input \(shape \(2,\)\); a "
                                        r"result has its inputs' dtype"):
        Double.apply(x)
    with mt.no_grad(), pytest.raises(TypeError, match=r"^Double\.forward returned float64"):
        Double.apply(x)  # refused without a graph too: it is the result that is wrong


def test_results_of_another_dtype_that_are_no_promotion_pass():
    """Comparisons (bool), argmax-like integer results, and a cast (``mixed_dtypes``) change the dtype rightly."""

    class Positive(mt.Function):
        differentiable = False

        def forward(self, x):
            return x > 0

    class ArgMax(mt.Function):
        differentiable = False

        def forward(self, x):
            return self.xp.argmax(x, axis=-1)

    x = mt.tensor([[1.0, -2.0], [-1.0, 3.0]], requires_grad=True)
    assert Positive.apply(x).dtype_name == "bool"
    assert ArgMax.apply(x).dtype_name == "int64"
    assert x.to("float64").dtype_name == "float64"


def test_a_torch_style_function_is_refused_where_it_is_defined():
    """``@staticmethod def forward(ctx, x)`` would fail at the first apply: "forward() missing 1 required positional
    argument: 'x'"."""
    with pytest.raises(TypeError, match=r"^Sq: forward and backward are @staticmethods, as in torch\.autograd\.Function"
                                        r"; here they are plain methods .*def forward\(self, x\).*"
                                        r"docs/from-pytorch\.md, \"Same idea, another name\""):

        class Sq(mt.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.x = x
                return x * x

            @staticmethod
            def backward(ctx, grad):
                return (2 * ctx.x * grad,)

    with pytest.raises(TypeError, match=r"^Half: backward is a @staticmethod"):

        class Half(mt.Function):
            def forward(self, x):
                return x

            @staticmethod
            def backward(ctx, grad):
                return (grad,)


@pytest.mark.needs("docs/from-pytorch.md")
@pytest.mark.single_backend
def test_the_section_the_torch_style_message_names_exists():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "from-pytorch.md").read_text(encoding="utf-8")
    assert "\n## Same idea, another name\n" in text
    assert "@staticmethod" in text.split("\n## Same idea, another name\n")[1].split("\n## ")[0]
