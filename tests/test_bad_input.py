"""Bad input gets a clear exception naming the operation and the shapes, dtypes or backends at fault,
raised before any arithmetic: never a NaN, a silent broadcast, or a traceback from inside NumPy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn
from minitransformer.autograd import fused as fused_ops
from minitransformer.autograd._torch_names import TORCH_IN_PLACE, TORCH_KEYWORDS, TORCH_NAMES
from minitransformer.backend import BackendError


def other_backend() -> str:
    return "array_api_strict" if mt.backend.current().name == "numpy" else "numpy"


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize(
    "a, b, message",
    [
        ((2, 3), (2, 3), r"matmul: \(2, 3\) @ \(2, 3\): inner dimensions differ \(3 != 2\)"),
        ((4, 2, 3), (4, 5), r"matmul: \(4, 2, 3\) @ \(4, 5\): inner dimensions differ \(3 != 4\)"),
        ((3,), (4,), r"matmul: \(3,\) @ \(4,\): inner dimensions differ \(3 != 4\)"),  # the user's shapes
        ((2, 3), (2,), r"matmul: \(2, 3\) @ \(2,\): inner dimensions differ \(3 != 2\)"),
        ((2, 2, 3), (3, 3, 4), r"MatMul \(2, 2, 3\) @ \(3, 3, 4\), batch axes: shapes \(2,\) and \(3,\) do not "
                               r"broadcast"),
    ],
)
def test_matmul_shape_mismatch(a, b, message):
    with pytest.raises(ValueError, match=message):
        mt.zeros(*a) @ mt.zeros(*b)


def test_matmul_of_a_scalar():
    with pytest.raises(ValueError, match=r"matmul: operands must have at least one dimension, got \(2, 3\) @ \(\)"):
        mt.matmul(mt.zeros(2, 3), mt.tensor(2.0))


@pytest.mark.parametrize(
    "op, name",
    [(lambda a, b: a + b, "Add"), (lambda a, b: a * b, "Mul"), (lambda a, b: a - b, "Sub"),
     (lambda a, b: a / b, "Div"), (mt.maximum, "Maximum"), (lambda a, b: a**b, "Pow")],
)
def test_elementwise_shapes_that_do_not_broadcast(op, name):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(4, 1, 3\) and \(2, 2\) do not broadcast "
                                         r"\(axis -1 has sizes \[2, 3\]\)"):
        op(mt.ones(4, 1, 3), mt.ones(2, 2))


def test_where_shapes_that_do_not_broadcast():
    # named by the function called, its arguments in order (not by the operation Where inside)
    with pytest.raises(ValueError, match=r"^where\(condition, a, b\): shapes \(2,\) and \(2, 3\) and \(2, 3\) do not "
                                         r"broadcast"):
        mt.where(mt.tensor([True, False]), mt.zeros(2, 3), mt.ones(2, 3))
    # x and the mask only: the fill value's () is no shape the user gave
    with pytest.raises(ValueError, match=r"^masked_fill\(x, mask\): shapes \(2, 2\) and \(3,\) do not broadcast"):
        mt.zeros(2, 2).masked_fill(mt.tensor([True, False, True]), 0.0)
    with pytest.raises(ValueError, match=r"^masked_fill\(x, mask\): shapes \(2, 3\) and \(2,\) do not broadcast"):
        mt.masked_fill(mt.ones(2, 3), [True, False], 0.0)  # a mask given as a list too


def test_a_tensors_data_takes_an_array_of_its_backend_or_a_tensor_there_and_refuses_the_rest():
    """``w.data = w.data - lr * w.grad`` (PyTorch's manual update; a NumPy array minus a tensor is a tensor) stored
    the tensor as the array, and the next use failed deep inside (a BufferError from DLPack); now a tensor gives its
    array, as in PyTorch, and what is no array of the backend is refused at once, naming what it got."""
    w = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (w * w).sum().backward()  # grad 2w
    if w.backend.name == "numpy":
        w.data = w.data - 0.1 * w.grad
    else:  # array-api-strict's array minus a tensor is a TypeError
        w.data = w.detach() - 0.1 * w.grad
    assert w.backend.owns(w.data) and w.requires_grad and w.grad is not None
    np.testing.assert_allclose(w.numpy(), [0.8, 1.6, 2.4], rtol=1e-6)
    w.data = w.data - 0.5 * w.grad.data  # the array form, as the optimizers write it
    np.testing.assert_allclose(w.numpy(), [-0.2, -0.4, -0.6], rtol=1e-6)
    here, there = w.backend.name, other_backend()
    for value, got in (([1.0, 2.0, 3.0], "a list"), (0.5, "a float")):
        with pytest.raises(TypeError, match=rf"^Tensor.data: an array of backend '{here}' was expected, got {got}; "
                                            r"mt.tensor\(values\).data is an array of the current backend$"):
            w.data = value
    for value, got in ((mt.ones(3, backend=there), r"a Tensor of shape \(3,\)"),
                       (mt.ones(2, 3, backend=there).data, r"an array of shape \(2, 3\)")):
        with pytest.raises(BackendError, match=rf"^Tensor.data: an array of backend '{here}' was expected, got {got} "
                                               rf"on backend '{there}'; move it first: mt.backend.get\('{here}'\)"
                                               rf".asarray\(array\), or tensor.to\('{here}'\)$"):
            w.data = value
    np.testing.assert_allclose((w * 2).numpy(), [-0.4, -0.8, -1.2], rtol=1e-6)  # left as it was, and usable


def test_numpy_reads_a_tensors_values_on_the_numpy_backend_and_elsewhere_says_to_write_numpy():
    """``np.asarray(x)`` made an object array of one-element tensors (``plt.imshow(weights[0, 0])`` then failed with
    "Image data of dtype object"); now NumPy reads the values from a tensor on NumPy, and on another backend, where it
    would copy from the device unseen, the TypeError says to write ``x.numpy()``."""
    x = mt.tensor([[0.5, 1.0], [2.0, 4.0]], requires_grad=True)
    if x.backend.name != "numpy":
        for read in (np.asarray, lambda t: np.stack([t, t]), lambda t: mt.tensor([t, t])):
            with pytest.raises(TypeError, match=rf"^NumPy reads a tensor's values itself only on backend 'numpy'; "
                                                rf"this \(2, 2\) float32 tensor is on backend '{x.backend.name}': "
                                                r"write x.numpy\(\), which copies them to the host$"):
                read(x)
        return
    values = np.asarray(x)
    assert values.dtype == np.float32 and values.tolist() == [[0.5, 1.0], [2.0, 4.0]] and values is x.data
    assert np.asarray(x, dtype=np.float64).dtype == np.float64 and np.array(x) is not x.data  # np.array copies
    assert np.asarray(x, dtype=np.float32) is x.data  # the dtype it has: no copy, as NumPy's asarray of an array
    assert np.stack([x, x]).shape == (2, 2, 2) and np.allclose(x, [[0.5, 1], [2, 4]])
    assert mt.tensor([x[0], x[1]]).tolist() == [[0.5, 1.0], [2.0, 4.0]]  # as torch.tensor([...]): values, no graph
    assert isinstance(np.float32(2.0) * x, mt.Tensor) and isinstance(values + x, mt.Tensor)  # still x's operators
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    assert axes.imshow(x).get_array().tolist() == [[0.5, 1.0], [2.0, 4.0]]
    plt.close(figure)


def test_masked_fill_mask_must_be_boolean_and_on_the_tensors_backend():
    with pytest.raises(TypeError, match=r"^masked_fill: mask must be boolean, got float32 with shape \(3,\)"):
        mt.zeros(3).masked_fill(mt.ones(3), 0.0)
    there = other_backend()
    with pytest.raises(BackendError, match=rf"^masked_fill: mask is on backend {there}, expected "):
        mt.zeros(3).masked_fill(mt.tensor([True, False, True], backend=there), 0.0)
    with pytest.raises(BackendError, match=rf"^where: condition is on backend {there}"):
        mt.where(mt.tensor([True, False, True], backend=there), mt.zeros(3), 1.0)
    with pytest.raises(TypeError, match=r"^masked_fill: x must be a Tensor, got list"):
        mt.masked_fill([1.0, 2.0], mt.tensor([True, False]), 0.0)


@pytest.mark.parametrize("op, call", [("maximum", lambda: mt.maximum(1.0, 2.0)),
                                      ("where", lambda: mt.where(mt.tensor([True]), 1.0, 2.0))],
                         ids=["maximum", "where"])
def test_maximum_and_where_of_two_numbers(op, call):
    # maximum raised AttributeError: 'float' object has no attribute 'dtype'
    with pytest.raises(TypeError, match=rf"{op}: a or b must be a Tensor, got float and float "
                                        r"\(make one with mt\.tensor\(\.\.\.\)\)"):
        call()


def test_where_condition_must_be_boolean():
    with pytest.raises(TypeError, match="where: condition must be boolean, got int64"):
        mt.where(mt.tensor([1, 0, 1]), mt.zeros(3), mt.ones(3))


@pytest.mark.parametrize(
    "shape, message",
    [
        ((4, 2), r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \(4, 2\) \(8 elements\)"),
        ((4, -1), r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \(4, -1\)"),
        ((-1, -1), r"reshape: only one -1 allowed in \(-1, -1\)"),
    ],
)
def test_bad_reshape(shape, message):
    with pytest.raises(ValueError, match=message):
        mt.zeros(2, 3).reshape(*shape)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: x.sum(axis=2), r"sum: axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda x: x.mean(axis=(0, 5)), r"mean: axis 5 is out of range for a tensor with 2 dimensions"),
        (lambda x: x.max(axis=-3), r"max: axis -3 is out of range for a tensor with 2 dimensions"),
        (lambda x: x.swapaxes(0, 2), r"swapaxes: axis 2 is out of range"),
        (lambda x: x.permute(0, 0), r"permute: \(0, 0\) is not a permutation of the 2 axes"),
        (lambda x: x.permute(1, 0, 2), r"permute: axis 2 is out of range"),
        (lambda x: mt.take(x, [0], axis=3), r"take: axis 3 is out of range"),
        (lambda x: mt.concat([x, x], axis=2), r"concat: axis 2 is out of range"),
        (lambda x: mt.stack([x, x], axis=-4), r"stack: axis -4 is out of range for a tensor with 3 dimensions"),
        (lambda x: x.split(2, axis=-1), r"split: axis 1 of size 3 does not divide into 2 equal parts"),
        (lambda x: x.split([1, 1], axis=1), r"split: sizes \[1, 1\] add up to 2, axis 1 has size 3"),
    ],
)
def test_bad_axis(call, message):
    with pytest.raises(ValueError, match=message):
        call(mt.zeros(2, 3))


def test_a_zero_dimensional_tensor_reduces_over_axis_0_or_minus_1_as_in_pytorch():
    """A 0-d tensor has no axis; axis 0 and -1 mean none (PyTorch's rule), others are out of range."""
    x = mt.tensor(2.0, requires_grad=True)
    for reduce in (lambda t: t.sum(axis=0), lambda t: t.mean(axis=-1), lambda t: t.max(axis=(0,))):
        y = reduce(x)
        assert y.shape == () and y.item() == 2.0
    (x * x).sum(axis=0).backward()
    assert x.grad.item() == 4.0
    with pytest.raises(ValueError, match=r"sum: axis 1 is out of range for a tensor with 0 dimensions"):
        x.sum(axis=1)


def test_operator_misuse_is_named():
    with pytest.raises(TypeError, match=r"matmul: operands must be tensors .* got 2.0; to scale by a number use \*"):
        mt.ones(2, 2) @ 2.0
    with pytest.raises(TypeError, match=r"matmul: operands must be tensors"):
        2.0 @ mt.ones(2, 2)
    with pytest.raises(ValueError, match=r"pow: an integer tensor \(2,\) to the negative power -1 .*\.to\('float32'\)"):
        mt.tensor([2, 3]) ** -1
    assert (mt.tensor([2, 3]) ** 2).numpy().tolist() == [4, 9]


@pytest.mark.single_backend
def test_a_value_in_a_message_is_on_one_line_and_cut_only_past_its_limit():
    from minitransformer._arguments import shown

    assert shown("a" * 38, 40) == "'" + "a" * 38 + "'"  # 40 characters with its quotes: whole
    assert shown("a" * 39, 40) == "'" + "a" * 36 + "..."  # 41: cut to 40, the last three "..."
    assert shown(np.array([[1, 2], [3, 4]]), 40) == "array([[1, 2], [3, 4]])"


def test_concat_and_stack_shape_mismatch():
    with pytest.raises(ValueError, match=r"Concat: shapes \(2, 3\), \(2, 2\) differ outside axis 0"):
        mt.concat([mt.zeros(2, 3), mt.zeros(2, 2)], axis=0)
    with pytest.raises(ValueError, match=r"Stack: all shapes must be equal, got \(2, 3\), \(3, 2\)"):
        mt.stack([mt.zeros(2, 3), mt.zeros(3, 2)])
    with pytest.raises(ValueError, match="concat: needs at least one tensor"):
        mt.concat([])


# ------------------------------------------------------------------ backward
def test_backward_on_a_non_scalar_without_grad():
    y = mt.ones(2, 3, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"backward\(\): output has shape \(2, 3\); pass grad= of that shape"):
        y.backward()


def test_backward_with_a_grad_of_the_wrong_shape_or_dtype():
    y = mt.ones(2, 3, requires_grad=True) * 2.0
    with pytest.raises(ValueError, match=r"backward\(\): grad has shape \(3,\), output has shape \(2, 3\)"):
        y.backward(mt.ones(3))
    with pytest.raises(TypeError, match=r"backward\(\): grad is float64 on \w+, output is float32"):
        y.backward(mt.ones(2, 3, dtype="float64"))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match=r"backward\(\): this tensor does not require grad"):
        mt.ones(3).sum().backward()


class _Given(mt.Function):
    """y = the sum of the inputs (broadcast); ``backward`` returns whatever ``wrong(self, grad)`` gives: the
    mistakes a student's ``backward`` can make, each of which the engine must name."""

    wrong = None

    def forward(self, *xs):
        y = xs[0] * 1.0
        for x in xs[1:]:
            y = y + x
        return y

    def backward(self, grad):
        return type(self).wrong(self, grad)


def _given(name, wrong):
    return type(name, (_Given,), {"wrong": wrong})


WRONG_BACKWARDS = [
    ("Transposed", lambda f, g: (f.xp.matrix_transpose(g),), [(2, 3)], ValueError,
     r"Transposed\.backward, input 0: a gradient of shape \(3, 2\) for an input of shape \(2, 3\)"),
    ("TooSmall", lambda f, g: (f.xp.sum(g, axis=0, keepdims=True),), [(2, 3)], ValueError,
     r"TooSmall\.backward, input 0: a gradient of shape \(1, 3\) for an input of shape \(2, 3\)"),
    ("Squeezed", lambda f, g: (f.xp.reshape(g, (3,)),), [(1, 3)], ValueError,
     r"Squeezed\.backward, input 0: a gradient of shape \(3,\) for an input of shape \(1, 3\)"),
    ("TooFew", lambda f, g: (g,), [(2,), (2,)], ValueError,
     r"TooFew\.backward returned 1 gradient for 2 inputs; return one per input \(None for an input without one\)"),
    ("Bare", lambda f, g: g * 2.0, [(3,)], TypeError,
     r"Bare\.backward must return a tuple of 1 gradient, one per input, got an array of shape \(3,\); "
     r"for one input write `return \(grad_x,\)`"),
    ("Float64", lambda f, g: (f.xp.astype(g, f.xp.float64),), [(2,)], TypeError,
     r"Float64\.backward, input 0: a float64 gradient for a float32 input of shape \(2,\)"),
    ("ATensor", lambda f, g: (mt.Tensor(g),), [(2,)], TypeError,
     r"ATensor\.backward, input 0: a gradient is an array \(or None\), got a Tensor; return its \.data"),
    ("ANumber", lambda f, g: (2.0,), [(2,)], TypeError,
     r"ANumber\.backward, input 0: a gradient is an array \(or None\), got float"),
]


@pytest.mark.parametrize("name, wrong, shapes, error, message", WRONG_BACKWARDS, ids=[w[0] for w in WRONG_BACKWARDS])
@pytest.mark.parametrize("leaf", [True, False], ids=["leaf", "intermediate"])
def test_a_wrong_backward_result_is_named(name, wrong, shapes, error, message, leaf):
    # students write backward in the assignments: each mistake gets the Function, the input and the shapes,
    # not a wrong gradient (a transposed one of the same size was reshaped), a missing one, or a float64 .grad
    xs = [mt.ones(*shape, requires_grad=True) for shape in shapes]
    inputs = xs if leaf else [x * 1.0 for x in xs]
    with pytest.raises(error, match=message) as caught:
        _given(name, wrong).apply(*inputs).sum().backward()
    assert all(x.grad is None for x in xs)
    # the engine's check, not its frames (unbroadcast, an A1 body too), is what the grade names as where it arose
    assert caught.value.__notes__[-1] == f"(checked after {name}.backward returned)"


def test_a_gradient_of_the_broadcast_shape_is_summed_to_the_input():
    # the legitimate difference: a gradient of the output's shape (2, 4, 3) for inputs that were broadcast
    # (returned as a list, which will do as well as a tuple)
    Add = _given("Add", lambda f, g: [g, g])
    a, b = mt.ones(2, 1, 3, requires_grad=True), mt.ones(4, 1, requires_grad=True)
    Add.apply(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((2, 1, 3), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full((4, 1), 6.0))


def test_unbroadcast_sums_only_what_broadcasting_explains():
    xp = mt.backend.current().xp
    grad = xp.ones((2, 3, 4))
    assert mt.autograd.unbroadcast(xp, grad, (3, 1)).shape == (3, 1)
    with pytest.raises(ValueError, match=r"unbroadcast: a gradient of shape \(2, 3, 4\) for an input of shape "
                                         r"\(4, 3\): neither that shape nor a broadcast of it"):
        mt.autograd.unbroadcast(xp, grad, (4, 3))  # summed over axis 0, 12 elements like (4, 3): it was reshaped
    with pytest.raises(ValueError, match=r"for an input of shape \(1, 2, 3, 4\)"):
        mt.autograd.unbroadcast(xp, grad, (1, 2, 3, 4))


# ------------------------------------------------------------------ backends and dtypes do not mix
def test_mixing_backends():
    here, there = mt.backend.current().name, other_backend()
    x, y = mt.ones(2), mt.ones(2, backend=there)
    message = rf"inputs live on different backends \({here} and {there}\); move one with \.to\('{here}'\)"
    with pytest.raises(BackendError, match=rf"Add: {message}"):
        x + y
    with pytest.raises(BackendError, match=rf"MatMul: {message}"):
        mt.ones(2, 2) @ mt.ones(2, 2, backend=there)
    with pytest.raises(BackendError, match=rf"Concat: {message}"):
        mt.concat([x, y])
    with pytest.raises(BackendError, match=rf"take: table is on {here}, indices on {there}"):
        mt.take(mt.ones(3, 2), mt.tensor([0, 1], backend=there))


def test_mixing_float32_and_float64():
    with pytest.raises(TypeError, match=r"Add: cannot mix dtypes float32 \(2,\) and float64 \(2,\); "
                                        r"convert one with \.to\('float32'\)"):
        mt.ones(2) + mt.ones(2, dtype="float64")
    with pytest.raises(TypeError, match=r"MatMul: cannot mix dtypes float64 \(2, 2\) and float32 \(2, 2\)"):
        mt.ones(2, 2, dtype="float64") @ mt.ones(2, 2)
    with pytest.raises(TypeError, match=r"Mul: cannot mix dtypes float32 \(3,\) and int64 \(3,\)"):
        mt.ones(3) * mt.arange(3)


def test_an_array_of_another_dtype_is_refused_with_the_conversion_to_write():
    # an array has no .to(...): the message of two tensors would name a fix that cannot be applied to it
    x, a = mt.tensor([1.0, 2.0]), np.array([0.5, 0.25])  # NumPy's float64
    for combine in (lambda: x + a, lambda: a * x, lambda: x @ a):
        with pytest.raises(TypeError, match=r"^(add \(\+\)|multiply \(\*\)|matmul \(@\)): cannot combine a "
                                                r"float32 tensor of shape \(2,\) with a float64 array of "
                                                r"shape \(2,\) \(NumPy's floats are float64 unless told\): .* "
                                            r"mt\.tensor\(a, dtype='float32'\)$"):
            combine()
    with pytest.raises(TypeError, match=r"with a int64 array of shape \(2,\): make the array"):
        x + np.array([1, 2])
    written = x + mt.tensor(a, dtype="float32")  # what the message says to write
    assert written.dtype_name == "float32"
    np.testing.assert_array_equal(written.numpy(), np.array([1.5, 2.25], dtype=np.float32))
    assert (x + a.astype(np.float32)).dtype_name == "float32"  # an array of the tensor's dtype combines as before


def x64(*shape):
    return mt.ones(*shape, dtype="float64")


# call -> the error's start: the formula or layer the user called, its weight (or argument) and the refused input
DTYPE_MIXES = {
    "F.linear": (lambda: F.linear(x64(2, 4), mt.ones(4, 3)),
                 r"linear: W is float32 \(4, 3\) but x is float64 \(2, 4\)"),
    "F.linear b": (lambda: F.linear(mt.ones(2, 4), mt.ones(4, 3), x64(3)),
                   r"linear: W is float32 \(4, 3\) but b is float64"),
    "F.layer_norm": (lambda: F.layer_norm(x64(2, 4), mt.ones(4)),
                     r"layer_norm: gamma is float32 \(4,\) but x is float64"),
    "F.scaled_dot_product_attention": (lambda: F.scaled_dot_product_attention(mt.ones(2, 4), x64(2, 4), mt.ones(2, 4)),
                                       r"scaled_dot_product_attention: Q is float32 \(2, 4\) but K is float64"),
    "Linear": (lambda: nn.Linear(4, 3)(x64(2, 4)),
               r"Linear: weight is float32 \(4, 3\) but input is float64 \(2, 4\)"),
    "LayerNorm": (lambda: nn.LayerNorm(4)(x64(2, 4)), r"LayerNorm: gamma is float32 \(4,\) but input is float64"),
    "FeedForward": (lambda: nn.FeedForward(4, 8)(x64(2, 4)), r"FeedForward: W_1.weight is float32 \(4, 8\) but input"),
    "LearnedPositionalEmbedding": (lambda: nn.LearnedPositionalEmbedding(5, 4)(x64(1, 3, 4)),
                                   r"LearnedPositionalEmbedding: weight is float32 \(5, 4\) but input is float64"),
    "MultiHeadAttention": (lambda: nn.MultiHeadAttention(4, 2)(x64(1, 3, 4)),
                           r"MultiHeadAttention: W_Q.weight is float32 \(4, 4\) but query is float64 \(1, 3, 4\)"),
    "MultiHeadAttention value": (lambda: nn.MultiHeadAttention(4, 2)(mt.ones(1, 3, 4), mt.ones(1, 3, 4), x64(1, 3, 4)),
                                 r"MultiHeadAttention: W_Q.weight is float32 \(4, 4\) but value is float64"),
    "EncoderLayer": (lambda: nn.EncoderLayer(4, 2, 8)(x64(1, 3, 4)), r"EncoderLayer: self_attn.W_Q.weight is float32"),
    "DecoderLayer memory": (lambda: nn.DecoderLayer(4, 2, 8)(mt.ones(1, 3, 4), memory=x64(1, 3, 4)),
                            r"DecoderLayer: self_attn.W_Q.weight is float32 \(4, 4\) but memory is float64"),
    "Encoder": (lambda: nn.Encoder(4, 2, 8, 2)(x64(1, 3, 4)), r"Encoder: layers.0.self_attn.W_Q.weight is float32"),
    "Decoder": (lambda: nn.Decoder(4, 2, 8, 2)(x64(1, 3, 4), memory=mt.ones(1, 3, 4)),
                r"Decoder: layers.0.self_attn.W_Q.weight is float32 \(4, 4\) but input is float64"),
}


@pytest.mark.parametrize("call", list(DTYPE_MIXES))
def test_a_float64_input_to_float32_weights_is_named_where_the_user_called(call):
    """Not by Affine, Add or MatMul inside (operations the user never called), and with the way out."""
    make, message = DTYPE_MIXES[call]
    with pytest.raises(TypeError, match=message) as refused:
        make()
    assert "to('float32')" in str(refused.value)
    if not call.startswith("F."):  # a layer: convert the input or the whole model
        assert str(refused.value).endswith("or the model with model.to('float64')")


@pytest.mark.single_backend
def test_a_float16_input_to_a_layer_is_not_told_to_make_the_model_float16():
    """It said '... or the model with model.to('float16')', which Module.to refuses."""
    x16 = mt.tensor(np.ones((2, 3, 4)), dtype="float16")
    for call, message in [
        (lambda: nn.Linear(4, 4)(x16), r"^Linear: weight is float32 \(4, 4\) but input is float16 \(2, 3, 4\); "),
        (lambda: nn.MultiHeadAttention(4, 2)(x16, x16, x16), r"^MultiHeadAttention: W_Q\.weight is float32 .* query "),
        (lambda: nn.Encoder(4, 2, 8, 2)(x16), r"^Encoder: layers\.0\.self_attn\.W_Q\.weight is float32"),
    ]:
        with pytest.raises(TypeError, match=message + r".*\.to\('float32'\) \(a model cannot be float16: Module\.to "
                                                      r"takes float32 and float64\)$"):
            call()


def test_a_float64_model_takes_float64_input():
    """The way out the message names works: the model converted, the same call runs (and sinusoids fit any dtype)."""
    layer = nn.EncoderLayer(4, 2, 8).to("float64")
    assert layer(x64(1, 3, 4)).dtype_name == "float64"
    assert nn.SinusoidalPositionalEncoding(4, 8)(x64(1, 3, 4)).dtype_name == "float64"


FLOAT_ONLY = {
    "x / 2": ("Div", lambda x: x / 2), "2 / x": ("Div", lambda x: 2 / x), "x / x": ("Div", lambda x: x / x),
    "exp": ("Exp", lambda x: x.exp()), "log": ("Log", lambda x: x.log()),
    "log1p": ("Log1p", lambda x: x.log1p()), "sqrt": ("Sqrt", lambda x: x.sqrt()),
    "tanh": ("Tanh", lambda x: x.tanh()), "relu": ("ReLU", lambda x: x.relu()), "mean": ("Mean", lambda x: x.mean()),
    # the fused operations, called as Function.apply: the functions of mt.functional refuse integers before them
    "fused softmax": ("Softmax", lambda x: fused_ops.Softmax.apply(x, axis=-1)),
    "fused attention weights": ("ScaledMaskedSoftmax",
                                lambda x: fused_ops.ScaledMaskedSoftmax.apply(x, allowed=None, divisor=2.0)),
    "fused log_softmax": ("LogSoftmax", lambda x: fused_ops.LogSoftmax.apply(x, axis=-1)),
    "fused layer_norm": ("LayerNorm", lambda x: fused_ops.LayerNorm.apply(x, None, None, eps=1e-5)),
    "fused gelu": ("Gelu", lambda x: fused_ops.Gelu.apply(x)),
    "fused cross_entropy": ("CrossEntropy", lambda x: fused_ops.CrossEntropy.apply(
        x, targets=mt.tensor(0).data, kept=None, label_smoothing=0.0, reduction="mean")),
    "fused bce": ("BinaryCrossEntropyWithLogits", lambda x: fused_ops.BinaryCrossEntropyWithLogits.apply(
        x, targets=mt.zeros(2).data, reduction="mean")),
}


@pytest.mark.parametrize("call", list(FLOAT_ONLY))
def test_float_only_operations_refuse_integers(call):
    # NumPy made float64 of these (PyTorch float32, or an error for mean), array-api-strict raised its own
    # TypeError: every backend now says what to do, as for int * 2.5
    name, op = FLOAT_ONLY[call]
    with pytest.raises(TypeError, match=rf"{name}: needs floating-point input, got int64 with shape \(2,\); "
                                        r"convert it first, e\.g\. \.to\('float32'\)"):
        op(mt.tensor([1, 2]))
    assert op(mt.tensor([1, 2]).to("float32")).dtype_name == "float32"


def test_integer_arithmetic_that_stays_integer_is_allowed():
    x = mt.tensor([1, 2])
    for y in (x + 1, 3 - x, x * x, x**2, x.sum(), x.max(), mt.maximum(x, 0)):
        assert y.dtype_name == "int64"


BOOL_REFUSED = {"a - b": ("Sub", lambda a, b: a - b), "-a": ("Neg", lambda a, b: -a),
                "a ** b": ("Pow", lambda a, b: a**b), "a @ b": ("MatMul", lambda a, b: a @ b),
                "sum": ("Sum", lambda a, b: a.sum()), "max": ("Max", lambda a, b: a.max(axis=0)),
                "maximum": ("Maximum", lambda a, b: mt.maximum(a, b))}


def test_bool_tensors_add_as_or_multiply_as_and_and_refuse_the_rest_on_every_backend(backend):
    """No silent promotion, one behaviour: NumPy gave or/and, an int64 sum, int8 powers, int64 for mask + 1, and its
    own errors for - ; array-api-strict refused all of it with its own errors."""
    a, b = mt.tensor([True, True, False, False]), mt.tensor([True, False, True, False])
    results = {"a + b": (a + b, [True, True, True, False]), "a * b": (a * b, [True, False, False, False]),
               "a + False": (a + False, [True, True, False, False]), "True * b": (True * b, [True, False, True, False]),
               "Add.apply": (mt.autograd.ops.Add.apply(a, b), [True, True, True, False])}
    for call, (y, expected) in results.items():
        assert (y.dtype_name, y.backend, y.numpy().tolist()) == ("bool", backend, expected), call
    for written, (name, op) in BOOL_REFUSED.items():
        with pytest.raises(TypeError, match=rf"^{name}: bool tensors have no arithmetic but \+ \(or\), \* \(and\) and "
                                            r"~ \(not\), as in PyTorch; got bool with shape \((1, 4|4,)\)\. Cast "
                                            r"first, e\.g\. \.to\('int64'\)"):
            op(a, b)
            pytest.fail(f"{written} on bool tensors was not refused")
    with pytest.raises(TypeError, match=r"Compare: bools have no order \(less of bool with shape \(4,\)\)"):
        _ = a < b
    with pytest.raises(TypeError, match=r"cannot combine a bool tensor of shape \(4,\) with the int 1; cast the "
                                        r"tensor first, e\.g\. \.to\('int64'\)"):
        a + 1
    with pytest.raises(TypeError, match=r"cannot combine a bool tensor of shape \(4,\) with the float 2\.0"):
        2.0 * a
    with pytest.raises(TypeError, match=r"cannot combine a float32 tensor of shape \(2,\) with the bool True; "
                                        r"write the number \(1 or 0\) instead"):
        mt.ones(2) + True
    with pytest.raises(TypeError, match=r"cannot combine a int64 tensor of shape \(2,\) with the bool False"):
        mt.where(mt.tensor([True, False]), mt.tensor([1, 2]), False)
    assert a.to("int64").sum().item() == 2 and a.eq(False).numpy().tolist() == [False, False, True, True]


def test_invert_is_the_logical_not_of_a_bool_tensor_and_refuses_other_dtypes(backend):
    """``~mask`` turns a mask of PyTorch's nn.MultiheadAttention (True = blocked) into this library's, as there;
    ``~`` of an integer (NumPy's and PyTorch's bitwise not, ~1 == -2) or of a float (refused there too) is refused."""
    mask = mt.tensor([[True, False], [False, True]])
    inverted = ~mask
    assert (inverted.dtype_name, inverted.backend, inverted.requires_grad) == ("bool", backend, False)
    assert inverted.numpy().tolist() == [[False, True], [True, False]]
    assert (~~mask).numpy().tolist() == mask.numpy().tolist()
    for x in (mt.tensor([1, 2]), mt.tensor([1.0, 2.0], requires_grad=True)):
        with pytest.raises(TypeError, match=rf"^~ \(logical not\) takes a bool tensor, got {x.dtype_name} with shape "
                                            r"\(2,\); make a mask by a comparison first"):
            _ = ~x



@pytest.mark.parametrize("symbol", ["==", "!="])
def test_equality_with_a_number_array_or_list_is_refused_pointing_to_eq_and_ne(backend, symbol):
    """``ids != pad_id`` gave the Python bool True (``==`` is identity, as for any object), where torch and NumPy give
    a mask: a custom pooling ``(ids != 0).to(...)`` then failed far from the cause, and ``(pred == y).mean()`` was a
    wrong number. Against a number, an array or a list it is refused, naming .eq/.ne; between tensors it stays
    identity (a tensor is a dict key, and ``p in params`` must work)."""
    compare = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b}[symbol]
    method = {"==": "eq", "!=": "ne"}[symbol]
    ids = mt.tensor([[5, 0, 7]])
    for other in (0, 0.0, True, np.int64(0), np.zeros(3, dtype=np.int64), [5, 0, 7], (5, 0, 7)):
        for a, b in ((ids, other), (other, ids)):
            with pytest.raises(TypeError, match=rf"^Tensor {re.escape(symbol)} {type(other).__name__} "
                                                rf"{re.escape(repr(other))}: "
                                                rf".*compare the elements with x\.{method}\(\.\.\.\) \(a bool "
                                                rf"tensor of shape \(1, 3\)"):
                compare(a, b)
    same, twin = ids, mt.tensor([[5, 0, 7]])
    assert compare(ids, same) is (symbol == "==") and compare(ids, twin) is (symbol == "!=")
    assert compare(ids, None) is (symbol == "!=") and {ids: 1}[ids] == 1 and ids in [twin, ids]
    assert getattr(ids, method)(0).numpy().tolist() == [[symbol == "!=", symbol == "==", symbol == "!="]]


@pytest.mark.single_backend
@pytest.mark.parametrize("op, number, torch_op", [("eq", 0, "=="), ("ne", 1, "!="), ("eq", 1, "=="), ("ne", 0, "!=")])
def test_a_mask_compared_with_0_or_1_is_told_its_bool_and_that_gives_torchs_answer(op, number, torch_op):
    """PyTorch's ``scores.masked_fill(mask == 0, -1e9)``: ``mask == 0`` is refused naming ``.eq``, and
    ``mask.eq(0)`` of a bool mask said to cast it to int64; it now says which bool 0 or 1 is for a mask, and that the
    comparison is ``~mask`` or ``mask``, which gives torch's answer."""
    mask = F.causal_mask(3)
    inverted = (op == "eq") == (number == 0)
    with pytest.raises(TypeError, match=rf"^{op}: cannot combine a bool tensor of shape \(3, 3\) with the int "
                                        rf"{number}; a mask's {number} is {bool(number)}: "
                                        rf"mask\.{op}\({bool(number)}\), which "
                                        rf"is {'~mask' if inverted else 'mask'}$"):
        getattr(mask, op)(number)
    said = getattr(mask, op)(bool(number)).numpy()
    np.testing.assert_array_equal(said, (~mask if inverted else mask).numpy())
    torch = pytest.importorskip("torch")
    theirs = eval(f"mask {torch_op} {number}", {"mask": torch.tensor(mask.numpy())})  # torch's mask == 0
    np.testing.assert_array_equal(said, theirs.numpy())


def test_the_equality_refusal_shows_the_value_and_names_in_index_and_count():
    """``1 in [t, 1]``, ``[t, 2].count(2)`` and ``list.index`` compare ``t == 1`` where the reader wrote no ``==``: the
    message says so, and shows the value at fault (a long one cut to 40 characters, on one line)."""
    ids = mt.tensor([[5, 0, 7]])
    note = r"\(`in`, list\.index and list\.count compare with == too\)$"
    with pytest.raises(TypeError, match=rf"^Tensor == int 1: == compares whether two tensors .*{note}"):
        _ = 1 in [ids, 1]
    with pytest.raises(TypeError, match=rf"^Tensor == int 2: .*{note}"):
        [ids, 2].count(2)
    with pytest.raises(TypeError, match=r"^Tensor == ndarray array\(\[ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,\.\.\.: "):
        _ = ids == np.arange(100)
    with pytest.raises(TypeError, match=r"^Parameter != float 0\.0: .*as torch's !=\)$"):  # no `in` for !=
        _ = nn.Parameter(mt.ones(2)) != 0.0


@pytest.mark.single_backend
@pytest.mark.parametrize(("typo", "suggested"), [("nn.Linaer", "Linear"), ("mt.concatt", "concat"),
                                                  ("F.rellu", "relu")])
def test_a_typo_in_a_module_still_gets_pythons_did_you_mean(typo, suggested):
    """The modules' ``__getattr__`` (PyTorch's names) raised the AttributeError without ``obj``, so the interpreter's
    "Did you mean ...?" was lost for every typo; Python 3.11 adds it only when it prints the error, hence a run."""
    run = _python_run(typo)
    assert run.returncode == 1 and run.stderr.strip().endswith(f"Did you mean: '{suggested}'?"), run.stderr


def _python_run(statement: str) -> subprocess.CompletedProcess:
    """``statement`` run by a new Python with ``mt``, ``F`` and ``nn`` imported: what a user sees printed."""
    code = f"import minitransformer as mt, minitransformer.functional as F; from minitransformer import nn; {statement}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8",
                          env={**os.environ, "PYTHONPATH": str(Path(mt.__file__).parents[1])})


@pytest.mark.single_backend
@pytest.mark.parametrize("torch_name", ["mt.cat", "mt.randn(2).float()", "F.mse_loss", "nn.MultiheadAttention"])
def test_a_pytorch_name_gets_its_hint_without_pythons_guess(torch_name):
    """A name of PyTorch's table says what to write here; Python's "Did you mean ...?" would add a guess of its own
    after it (``mt.cat``: 'cast', in Python 3.12 even in the message that doctest compares): not given."""
    run = _python_run(torch_name)
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode == 1 and last.endswith(" (docs/from-pytorch.md)") and " here" in last, run.stderr


@pytest.mark.single_backend
@pytest.mark.parametrize("owner,name", [(F, "mse_loss"), (F, "l1_loss"), (nn, "MSELoss"), (nn, "L1Loss")])
def test_the_hint_for_a_loss_written_by_hand_says_the_shapes_must_match(owner, name):
    """The hint for F.mse_loss handed over ((x - y) ** 2).mean() without torch's warning: pred (4, 1) minus y (4,)
    averaged a (4, 4) grid. The hint now says so, and what to write for a Linear(d, 1) output."""
    with pytest.raises(AttributeError, match=r" here, x and y of one shape: pred\[:, 0\] for a Linear\(d, 1\) output, "
                                             r"whose \(B, 1\) minus targets of \(B,\) would broadcast to a \(B, B\) "
                                             r"grid and average it without an error \(torch warns\) "
                                             r"\(docs/from-pytorch\.md\)$"):
        getattr(owner, name)
    with pytest.raises(AttributeError, match=r"'nll_loss'; PyTorch's .*\) here \(docs/from-pytorch\.md\)$"):
        F.nll_loss  # noqa: B018 - a hint without the caveat ends as before


def _answer(value, torch):
    """What an expression of the hint table gave, to compare, as a NumPy array: shape, dtype and values (of each
    part, for a tuple or list of tensors: a split)."""
    if isinstance(value, tuple | list) and value and isinstance(value[0], mt.Tensor | torch.Tensor):
        return [_answer(part, torch) for part in value]
    array = value.numpy() if isinstance(value, mt.Tensor | torch.Tensor) else np.asarray(value)
    return array.shape, array.dtype, array.astype(np.float64).round(5).tolist()  # float32 rounding aside


def _dropout_rates(module, dropout: type) -> set[float]:
    """Every dropout rate in ``module``: its Dropout layers' ``p`` and attention's ``dropout``."""
    return {m.p if isinstance(m, dropout) else m.dropout for m in module.modules()
            if isinstance(m, dropout) or isinstance(getattr(m, "dropout", None), float)}


def _assert_same_module(ours: nn.Module, theirs, torch) -> None:
    """``ours`` is the module torch built: its twin's class and weight shapes, the same dropout rates, and, with
    torch's weights loaded, the same output on one ``(2, 3, 8)`` input in eval mode (post-LN or pre-LN, relu or
    gelu); a decoder attends to a ``(2, 4, 8)`` memory."""
    from minitransformer.nn.convert import from_torch_state_dict, to_torch

    twin = to_torch(ours)
    assert type(twin) is type(theirs)
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert _dropout_rates(ours, nn.Dropout) == _dropout_rates(theirs, torch.nn.Dropout)
    from_torch_state_dict(ours, theirs.state_dict())
    rng = np.random.default_rng(0)
    x, memory = (rng.standard_normal(shape).astype(np.float32) for shape in ((2, 3, 8), (2, 4, 8)))
    ours_args, theirs_args, causal = (mt.tensor(x),), (torch.tensor(x),), {}
    if isinstance(theirs, torch.nn.MultiheadAttention):
        theirs_args *= 3  # query, key, value
    elif "Decoder" in type(theirs).__name__:  # ours is always causal; torch's, given the mask (True: hidden)
        ours_args, theirs_args = (*ours_args, mt.tensor(memory)), (*theirs_args, torch.tensor(memory))
        causal = {"tgt_mask": torch.ones(3, 3, dtype=torch.bool).triu(1)}
    with torch.no_grad(), nn.evaluating(ours):
        got, expected = ours(*ours_args), theirs.eval()(*theirs_args, **causal)
    got, expected = (got[0], expected[0]) if isinstance(got, tuple) else (got, expected)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("where", list(TORCH_NAMES))
def test_a_pytorch_name_gets_what_to_write_here_and_that_gives_torchs_answer(where, tmp_path):
    """``x.float()``, ``x.argmax(-1)``, ``mt.cat(...)``, ``F.mse_loss(...)``, ``nn.MultiheadAttention(...)`` raised a
    bare AttributeError; each of PyTorch's names in the table now says what to write here, and what it says runs and
    gives torch's answer: the same numbers (shape, dtype, values), or the module torch builds (its twin's class and
    weight shapes, its dropout rates, and its output with torch's weights)."""
    owner = {"Tensor": mt.zeros(2), "Module": nn.Linear(3, 2), "minitransformer": mt, "minitransformer.functional": F,
             "minitransformer.nn": nn}
    start = {"Tensor": "'Tensor' object", "Module": "'Linear' object"}.get(where, f"module '{where}'")
    for name, (torch_writes, here) in TORCH_NAMES[where].items():
        with pytest.raises(AttributeError, match=rf"^{start} has no attribute '{name}'; PyTorch's "
                                                 rf"{re.escape(torch_writes)} is {re.escape(here)} here"):
            getattr(owner[where], name)
    with pytest.raises(AttributeError, match=rf"^{start} has no attribute 'frobnicate'$") as excinfo:
        owner[where].frobnicate  # noqa: B018 - a name PyTorch lacks too: the plain message
    assert excinfo.value.obj is owner[where]  # what Python's "Did you mean ...?" looks in
    torch = pytest.importorskip("torch")  # the messages above need no torch; the answers below do
    if where == "Module":  # what each makes of a model: the same parameters' dtypes, on the CPU (cuda: no GPU here)
        for name, (torch_writes, here) in TORCH_NAMES[where].items():
            if name != "cuda":
                got = eval(here, {"model": nn.LayerNorm(3)}).state_dict()
                expected = eval(torch_writes, {"model": torch.nn.LayerNorm(3)}).state_dict()
                assert sorted(str(a.dtype) for a in got.values()) == \
                    sorted(str(t.dtype).removeprefix("torch.") for t in expected.values()), name
        return
    values = np.array([[[0.5, -1.0, 2.0]], [[3.0, 0.0, -2.0]]], dtype=np.float32)  # (2, 1, 3): squeeze(1) works
    other, positive, ids = values[::-1] * 0.5 + 0.25, np.abs(values) + 0.5, np.array([[0, 2], [1, 1]])
    logits, labels, targets = values.reshape(2, 3), np.array([2, 0]), np.array([[1, 0, 1], [0, 0.5, 1]], np.float32)

    def ours():  # made for each name: an in-place one (x.zero_(), nn.init.zeros_(x)) changes its x
        return {"mt": mt, "F": F, "nn": nn, "a": values, "x": mt.tensor(values), "y": mt.tensor(other),
                "xs": [mt.tensor(values), mt.tensor(other)], "ids": mt.tensor(ids), "W": mt.tensor(values[0].T),
                "logits": mt.tensor(logits), "labels": mt.tensor(labels), "p": mt.tensor(positive),
                "targets": mt.tensor(targets)}

    def theirs():
        return {"torch": torch, "F": torch.nn.functional, "nn": torch.nn, "a": values, "x": torch.tensor(values),
                "y": torch.tensor(other.copy()), "xs": [torch.tensor(values), torch.tensor(other.copy())],
                "ids": torch.tensor(ids), "W": torch.tensor(values[0].T.copy()), "logits": torch.tensor(logits),
                "labels": torch.tensor(labels), "p": torch.tensor(positive), "targets": torch.tensor(targets)}

    for name, (torch_writes, here) in TORCH_NAMES[where].items():
        if not (where == "Tensor" and name in ("cuda", "device") or name in ("save", "load", "get_rng_state",
                                                                             "set_rng_state")):  # below
            if name == "half" and not hasattr(mt.backend.current().xp, "float16"):
                continue  # not in the array API standard: array-api-strict lacks it
            got, expected = eval(here, ours()), eval(torch_writes, theirs())
            if isinstance(got, nn.Module):
                _assert_same_module(got, expected, torch)
            elif name in ("normal_", "uniform_"):  # random numbers: their shape and dtype
                assert _answer(got, torch)[:2] == _answer(expected, torch)[:2], name
            else:
                assert _answer(got, torch) == _answer(expected, torch), (where, name)
    if "save" in TORCH_NAMES[where]:
        _assert_saved_and_loaded(TORCH_NAMES[where]["save"], TORCH_NAMES[where]["load"], torch, tmp_path)
    if "get_rng_state" in TORCH_NAMES[where]:  # each library: the state kept, a draw, the state put back, the same draw
        get, put = TORCH_NAMES[where]["get_rng_state"], TORCH_NAMES[where]["set_rng_state"]
        for lib, names in ((torch, {"torch": torch}), (mt, {"mt": mt})):
            state = eval(get[0] if lib is torch else get[1], names)
            drawn = lib.randn(4).numpy()
            eval(put[0] if lib is torch else put[1], {**names, "state": state})
            np.testing.assert_array_equal(lib.randn(4).numpy(), drawn)


def _assert_saved_and_loaded(save, load, torch, folder) -> None:
    """``save`` and ``load``'s two expressions, torch's and the one here, each save a model and load what they saved
    into another model of the same class, which then holds the first one's weights (and did not before)."""
    from minitransformer import train

    def weights(model):
        return {k: v.detach().numpy() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}

    for lib, saved, loaded, file in ((torch, save[0], load[0], "model.pt"), (mt, save[1], load[1], "model.npz")):
        lib.manual_seed(0)
        model, other = ((torch.nn if lib is torch else nn).Linear(3, 2) for _ in range(2))
        assert not np.array_equal(weights(other)["weight"], weights(model)["weight"])
        names = {"torch": torch, "train": train, "path": str(folder / file)}
        eval(saved, {**names, "model": model})
        eval(loaded, {**names, "model": other})
        expected, got = weights(model), weights(other)
        assert list(got) == list(expected) and all(np.array_equal(got[k], expected[k]) for k in got), (saved, loaded)


def test_pytorchs_in_place_methods_say_there_are_none_here_and_what_gives_their_answer():
    """``x.masked_fill_(...)``, ``x.add_(y)``, ``x.exp_()`` got Python's bare AttributeError; each of torch's in-place
    methods whose answer there is here now says what to write, ``x = ...``, and that gives torch's answer."""
    values = np.array([[[0.5, -1.5, 2.0]], [[3.0, 0.25, -2.0]]], dtype=np.float32)  # (2, 1, 3): squeeze_(1) works
    try:
        import torch
    except ImportError:  # the messages need no torch; the answers do
        torch = None
    unchecked = set()
    for name in sorted(TORCH_IN_PLACE):
        x = mt.tensor(values)
        with pytest.raises(AttributeError, match=rf"^'Tensor' object has no attribute '{name}'; PyTorch's in-place "
                                                 rf"x\.{name}\(.*\) is x (= .+|[-+*/]= y) here "
                                                 r"\(docs/from-pytorch.md\)$") as e:
            getattr(x, name)
        theirs, here = re.search(r"PyTorch's in-place (.+) is (x .+) here \(", str(e.value)).groups()
        if "..." in theirs:  # the method's own arguments: x.masked_fill_(...) is x = x.masked_fill(...)
            unchecked.add(name)
        elif torch is not None:
            y, positive = values[::-1] * 0.5 + 0.25, np.abs(values) + 0.5
            data = positive if name in ("log_", "sqrt_") else values
            expected = eval(theirs, {"x": torch.tensor(data), "y": torch.tensor(y.copy())})
            names = {"mt": mt, "F": F, "x": mt.tensor(data), "y": mt.tensor(y)}
            before = names["x"]
            exec(here, names)  # x = ..., or x += y: in place, as torch's (the same tensor holds the answer)
            assert names["x"] is before or not re.match(r"x [-+*/]=", here), name
            assert _answer(names["x"], torch) == _answer(expected, torch), name
    assert unchecked == {"masked_fill_"}  # and x.masked_fill(mask, v) has its own tests


@pytest.mark.parametrize("ours, torch_writes", [
    ("x.sum(dim=-1, keepdim=True)", "x.sum(dim=-1, keepdim=True)"),
    ("x.mean(dim=0)", "x.mean(dim=0)"),
    ("x.max(keepdim=True, dim=-1)", "x.amax(keepdim=True, dim=-1)"),
    ("x.split(3, dim=-1)", "x.chunk(3, dim=-1)"),
    ("mt.split(x, [1, 2], dim=-1)", "torch.split(x, [1, 2], dim=-1)"),
    ("mt.concat(xs, dim=1)", "torch.concat(xs, dim=1)"),
    ("mt.stack(xs, dim=0)", "torch.stack(xs, dim=0)"),
    ("mt.take(x, ids, dim=2)", "x[:, :, ids]"),
    ("F.softmax(x, dim=-1)", "F.softmax(x, dim=-1)"),
    ("F.log_softmax(x, dim=1)", "F.log_softmax(x, dim=1)"),
])
def test_pytorchs_dim_and_keepdim_get_what_to_write_here_and_that_gives_torchs_answer(ours, torch_writes):
    """``x.sum(dim=-1)`` raised Python's bare "unexpected keyword argument 'dim'"; each function that takes an axis
    now says which keywords are written otherwise here, with their values, and what it says gives torch's answer."""
    values = np.array([[[0.5, -1.0, 2.0]], [[3.0, 0.0, -2.0]]], dtype=np.float32)  # (2, 1, 3)
    ids = np.array([[0, 2], [1, 1]])
    here = {"mt": mt, "F": F, "x": mt.tensor(values), "xs": [mt.tensor(values), mt.tensor(-values)],
            "ids": mt.tensor(ids)}
    given = dict(re.findall(r"(\w+)=([^,)]+)", ours))
    said = ", ".join(f"{k}={v}" for k, v in given.items())
    written = ", ".join(f"{'axis' if k == 'dim' else 'keepdims'}={v}" for k, v in given.items())
    name = {"x": "Tensor.", "mt": "", "F": ""}[ours.split(".")[0]] + ours.split(".")[1].split("(")[0]
    with pytest.raises(TypeError, match=rf"^{re.escape(name)}\(\) got an unexpected keyword argument "
                                        rf"'{next(iter(given))}'; PyTorch's {re.escape(said)} (is|are) "
                                        rf"{re.escape(written)} here \(NumPy's names?; docs/from-pytorch.md\)$"):
        eval(ours, here)
    got = eval(ours.replace("keepdim=", "keepdims=").replace("dim=", "axis="), here)
    torch = pytest.importorskip("torch")
    theirs = {"torch": torch, "F": torch.nn.functional, "x": torch.tensor(values),
              "xs": [torch.tensor(values), torch.tensor(-values)], "ids": torch.tensor(ids)}
    assert _answer(got, torch) == _answer(eval(torch_writes, theirs), torch)


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_numpys_functions_of_a_tensor_and_torchs_dtype_and_out_get_what_to_write(reduction):
    """np.mean(x) calls x.mean(axis=None, dtype=None, out=None): Python's bare "unexpected keyword argument 'dtype'"
    named nothing to write; torch's x.sum(dtype=...) and torch.sum(x, out=...) got the same. What the message says
    gives NumPy's answer; NumPy's dtype=None, passed on, is not named (it is not the user's)."""
    values = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -2.0]], dtype=np.float32)
    x = mt.tensor(values)
    numpys = {"sum": np.sum, "mean": np.mean, "max": np.max}[reduction]
    with pytest.raises(TypeError, match=rf"^Tensor\.{reduction}\(\) got an unexpected keyword argument 'out'; "
                                        r"PyTorch's out= is left out here [^;]*; "
                                        r"np\.sum\(x\), np\.mean\(x\) and np\.max\(x\) pass out=: write x\.sum\(\), "
                                        r"x\.mean\(\), x\.max\(\) \(with a gradient\) or np\.mean\(x\.numpy\(\)\) "
                                        r"\(docs/from-pytorch\.md\)$"):
        numpys(x)
    with pytest.raises(TypeError, match=rf"^Tensor\.{reduction}\(\) got an unexpected keyword argument 'dtype'; "
                                        r"PyTorch's dtype= is left out here \(cast first: "
                                        r"x\.to\('float64'\)\.mean\(\)\)"):
        getattr(x, reduction)(dtype="float64")
    assert getattr(x, reduction)().item() == pytest.approx(float(numpys(values)))  # what it says to write
    assert getattr(x.to("float64"), reduction)().dtype_name == "float64"
    assert numpys(x.numpy()) == numpys(values)


@pytest.mark.parametrize("call", ["x.size()", "x.size(-1)", "x.size(0)", "x.size(dim=1)"])
def test_pytorchs_size_call_gets_what_to_write_here_and_that_gives_torchs_answer(call):
    """``d_k = q.size(-1)`` got Python's bare "'int' object is not callable" (``size`` is NumPy's, the number of
    elements); the TypeError now says what to write, which gives torch's answer, and ``x.size`` is still that int."""
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = mt.tensor(values)
    assert x.size == 24 and isinstance(x.size, int) and repr(x.size) == "24" and json.dumps(x.size) == "24"
    assert type(x.size + 1) is int and x.size // x.shape[0] == 12 and mt.zeros(0, 3).size == 0
    assert mt.arange(30)[x.size].item() == 24 and mt.arange(30)[x.size:].shape == (6,)  # an index, as an int is
    said = r"^'int' object is not callable: Tensor.size is the number of elements, 24 \(NumPy's name\); PyTorch's "
    with pytest.raises(TypeError, match=said + r"(.+) is (.+) here \(docs/from-pytorch.md\)$") as err:
        eval(call, {"x": x})
    theirs, ours = re.search(r"PyTorch's (.+) is (.+) here", str(err.value)).groups()
    assert theirs == call.replace("dim=", "")
    torch = pytest.importorskip("torch")
    assert eval(ours, {"x": x}) == eval(call, {"x": torch.tensor(values)})


FIFTH = re.escape(" (torch's fifth argument is activation: here it comes after norm_first, write activation=...)")


@pytest.mark.parametrize("make, message", [
    # PyTorch's order: nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation)
    (lambda: nn.EncoderLayer(8, 2, 16, 0.1, "gelu"), rf"EncoderLayer: norm_first must be True or False{FIFTH}, "
                                                     r"got 'gelu'"),
    (lambda: nn.DecoderLayer(8, 2, 16, 0.1, "gelu"), rf"DecoderLayer: norm_first must be True or False{FIFTH}, "
                                                     r"got 'gelu'"),
    # nn.Embedding(num_embeddings, embedding_dim, padding_idx)
    (lambda: nn.Embedding(10, 4, 0), r"Embedding: scale must be True or False \(torch's third argument is "
                                     r"padding_idx: here the padding is masked out of attention, and of the loss by "
                                     r"ignore_index\), got 0"),
    (lambda: nn.Transformer(8, 8, 8, 2, 16, 1, 1, 0.1, 50, 1), r"Transformer: norm_first must be True or False, got 1"),
    (lambda: nn.Transformer(8, 8, 8, 2, 16, tie_output="yes"), r"Transformer: tie_output must be True or False, got "
                                                               r"'yes'"),
    (lambda: nn.Transformer(8, 8, 8, 2, 16, share_embeddings=None), r"Transformer: share_embeddings must be True or "
                                                                    r"False, got None"),
    (lambda: nn.DecoderOnlyLM(8, 8, 2, 16, tie_output=0), r"DecoderOnlyLM: tie_output must be True or False, got 0"),
    (lambda: nn.DecoderOnlyLM(8, 8, 2, 16, norm_first="pre"), r"DecoderOnlyLM: norm_first must be True or False"),
    (lambda: nn.TransformerClassifier(8, 8, 2, 16, norm_first=1), r"TransformerClassifier: norm_first must be True "
                                                                  r"or False, got 1"),
    (lambda: nn.Encoder(8, 2, 16, 1, 0.1, "gelu"), r"Encoder: norm_first must be True or False, got 'gelu'"),
    (lambda: nn.Decoder(8, 2, 16, 1, cross_attention=0), r"Decoder: cross_attention must be True or False, got 0"),
    (lambda: nn.DecoderLayer(8, 2, 16, cross_attention="no"), r"DecoderLayer: cross_attention must be True or "
                                                              r"False, got 'no'"),
    (lambda: nn.MultiHeadAttention(8, 2, literal=1), r"MultiHeadAttention: literal must be True or False, got 1"),
    (lambda: nn.KVCache(static="yes"), r"KVCache: static must be True or False, got 'yes'"),
])
def test_a_flag_takes_true_or_false_and_says_where_pytorchs_order_put_something_else(make, message):
    """``nn.EncoderLayer(512, 8, 2048, 0.1, "gelu")``, torch's order, built a pre-LN layer with ReLU, and
    ``nn.Embedding(V, d, 0)`` (torch's padding_idx) an unscaled one, without a word: each flag was read by
    Python's truth; now each takes True or False (a NumPy bool too) and the error says what torch puts there."""
    with pytest.raises(TypeError, match=f"^{message}"):
        make()
    assert nn.EncoderLayer(8, 2, 16, 0.1, np.bool_(True)).norm_first is True
    assert nn.EncoderLayer(8, 2, 16, 0.1, activation="gelu").ffn.activation == "gelu"


@pytest.mark.parametrize("ours, torch_writes", [
    ("nn.EncoderLayer(d_model=8, nhead=2, dim_feedforward=16)",
     "nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)"),
    ("nn.DecoderLayer(8, nhead=2, dim_feedforward=16, dropout=0.2)",
     "nn.TransformerDecoderLayer(8, nhead=2, dim_feedforward=16, dropout=0.2, batch_first=True)"),
    ("nn.MultiHeadAttention(embed_dim=8, num_heads=2)",
     "nn.MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True)"),
])
def test_pytorchs_layer_keywords_get_the_papers_names_and_that_builds_torchs_layer(ours, torch_writes):
    """``nn.EncoderLayer(d_model=8, nhead=2, dim_feedforward=16)`` raised Python's bare "unexpected keyword argument
    'nhead'"; the TypeError now gives the paper's names, with the values, and what it says builds torch's layer
    (its twin's class and shapes, dropout, and output with torch's weights)."""
    given = dict(re.findall(r"(nhead|dim_feedforward|embed_dim|num_heads)=(\d+)", ours))
    said = ", ".join(f"{k}={v}" for k, v in given.items())
    written = ", ".join(f"{TORCH_KEYWORDS[k][0]}={v}" for k, v in given.items())
    with pytest.raises(TypeError, match=rf"^\w+.__init__\(\) got an unexpected keyword argument '{next(iter(given))}'; "
                                        rf"PyTorch's {said} (is|are) {written} here \(the paper's names?; "
                                        r"docs/from-pytorch.md\)$"):
        eval(ours, {"nn": nn})
    for k in given:
        ours = ours.replace(f"{k}=", f"{TORCH_KEYWORDS[k][0]}=")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    _assert_same_module(eval(ours, {"nn": nn}), eval(torch_writes, {"nn": torch.nn}), torch)


@pytest.mark.single_backend
@pytest.mark.parametrize("model, wrong, right", [
    ("DecoderOnlyLM", "vocab_size", ["vocab"]),
    ("DecoderOnlyLM", "src_vocab", ["vocab"]),
    ("TransformerClassifier", "vocab", ["vocab_size"]),
    ("Transformer", "vocab", ["src_vocab", "tgt_vocab"]),
    ("Transformer", "vocab_size", ["src_vocab", "tgt_vocab"]),
])
def test_another_models_name_of_the_vocabulary_says_what_this_one_takes(model, wrong, right):
    """nn.DecoderOnlyLM(vocab_size=10) was Python's bare "unexpected keyword argument": the models name the vocabulary
    each their own way (their checkpoints save the names, so they stay), and another's name says this one's; what it
    says builds the model."""
    sizes = dict(d_model=8, heads=2, d_ff=16)
    written = ", ".join(f"{k}=12" for k in right)
    with pytest.raises(TypeError, match=rf"^{model}\.__init__\(\) got an unexpected keyword argument '{wrong}'; "
                                        rf"{wrong}=12 is {written} here \(each model names its vocabulary size its own "
                                        r"way, which its checkpoints save: Transformer src_vocab=, tgt_vocab=; "
                                        r"DecoderOnlyLM vocab=; TransformerClassifier vocab_size=\)$"):
        getattr(nn, model)(**{wrong: 12}, **sizes)
    built = getattr(nn, model)(**dict.fromkeys(right, 12), **sizes)
    assert all(built.config[k] == 12 for k in right)


def test_pytorchs_attention_keywords_say_what_to_write_and_that_gives_torchs_answer():
    """``mha(x, x, x, attn_mask=...)``, ``is_causal=``, ``key_padding_mask=``, ``batch_first=``: each TypeError says
    what to write, and, where torch's masks are the other way round (nn.MultiheadAttention's), how to turn them; what
    it says gives torch's output."""
    mha = nn.MultiHeadAttention(8, 2)
    x = mt.randn(2, 4, 8)
    for call, keyword, says in [
        (lambda: mha(x, x, x, attn_mask=None), "attn_mask", r"attn_mask= is mask= here, True where a query may attend "
                                                            r"a key, where torch's is True where it may not: "
                                                            r"mask=~attn_mask, or F.causal_mask\(L\)"),
        (lambda: mha(x, key_padding_mask=None), "key_padding_mask", r"key_padding_mask= is mask=F.padding_mask\(ids, "
                                                                    r"pad_id\) here, True at the tokens \(torch's is "
                                                                    r"True at the padding\)"),
        (lambda: mha(x, average_attn_weights=True), "average_attn_weights", r"average_attn_weights= has no equal here"),
        (lambda: F.scaled_dot_product_attention(x, x, x, is_causal=True), "is_causal", r"is_causal= is "
                                                                                      r"mask=F.causal_mask\(L\) here"),
        (lambda: F.scaled_dot_product_attention(x, x, x, attn_mask=None), "attn_mask", r"attn_mask= is mask= here, "
                                                                                       r"True where a query may attend "
                                                                                       r"a key, as torch's boolean "
                                                                                       r"attn_mask in this function"),
        (lambda: nn.MultiHeadAttention(8, 2, batch_first=True), "batch_first", r"batch_first= is left out here: every "
                                                                               r"layer takes \(batch, seq, d_model\)"),
        (lambda: nn.Embedding(5, 3, padding_idx=0), "padding_idx", r"padding_idx= has no equal here: the padding is "
                                                                   r"masked out of attention"),
        (lambda: F.gelu(x, approximate="tanh"), "approximate", r"approximate= has no equal here: this GELU is the tanh "
                                                               r"approximation, torch's approximate='tanh'"),
    ]:
        with pytest.raises(TypeError, match=rf"^[\w.]+\(\) got an unexpected keyword argument '{keyword}'; PyTorch's "
                                            rf"{says}.* \(docs/from-pytorch.md\)$"):
            call()
    torch = pytest.importorskip("torch")
    from minitransformer.nn.convert import to_torch

    theirs, values = to_torch(mha).eval(), torch.tensor(x.numpy())
    hidden = torch.ones(4, 4, dtype=torch.bool).triu(1)  # torch's causal attn_mask: True where a query may not attend
    ids = np.array([[5, 6, 7, 0], [5, 0, 0, 0]])  # 0: the padding
    with torch.no_grad():
        expected = theirs(values, values, values, attn_mask=hidden)[0].numpy()
        padded = theirs(values, values, values, key_padding_mask=torch.tensor(ids == 0))[0].numpy()
        sdpa = torch.nn.functional.scaled_dot_product_attention(values, values, values, attn_mask=~hidden).numpy()
        causal = torch.nn.functional.scaled_dot_product_attention(values, values, values, is_causal=True).numpy()
    with nn.evaluating(mha):
        np.testing.assert_allclose(mha(x, mask=mt.tensor(~hidden.numpy()))[0].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(mha(x, mask=F.causal_mask(4))[0].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(mha(x, mask=F.padding_mask(mt.tensor(ids), 0))[0].numpy(), padded, atol=1e-5)
    np.testing.assert_allclose(F.scaled_dot_product_attention(x, x, x, mask=mt.tensor(~hidden.numpy()))[0].numpy(),
                               sdpa, atol=1e-5)
    np.testing.assert_allclose(F.scaled_dot_product_attention(x, x, x, mask=F.causal_mask(4))[0].numpy(), causal,
                               atol=1e-5)
    np.testing.assert_allclose(F.gelu(x).numpy(), torch.nn.functional.gelu(values, approximate="tanh").numpy(),
                               atol=1e-6)
    # torch's fourth argument is key_padding_mask (True at the padding): here mask= is by keyword only
    with pytest.raises(TypeError, match=r"takes from 2 to 4 positional arguments but 5 were given"):
        mha(x, x, x, F.padding_mask(mt.tensor(ids), 0))
    # torch's sixth argument is is_causal; here training is by keyword only, so it cannot take it unseen
    with pytest.raises(TypeError, match=r"takes from 3 to 5 positional arguments but 6 were given"):
        F.scaled_dot_product_attention(x, x, x, None, 0.0, True)


def test_a_modules_registered_names_are_in_its_dir_for_completion_and_did_you_mean():
    """``dir(model)`` lacked its parameters and layers: Jupyter did not complete ``model.enc<Tab>``, and Python's
    "Did you mean ...?" (which reads ``dir`` of the AttributeError's ``obj``) could not find ``weight`` for
    ``wieght``."""
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
    model.register_buffer("scale", mt.ones(1))
    assert {"0", "1", "scale", "forward", "parameters"} <= set(dir(model)) and "weight" in dir(model[0])
    with pytest.raises(AttributeError, match=r"^'Linear' object has no attribute 'wieght'$") as excinfo:
        model[0].wieght  # noqa: B018
    assert excinfo.value.name == "wieght" and excinfo.value.obj is model[0]


def test_an_attribute_error_inside_a_property_keeps_its_cause_and_a_subclass_is_named():
    """Python calls ``__getattr__`` also when a property raises AttributeError, and it answered with the property's
    name ("no attribute 'scale'") for a typo inside it; and a Parameter was called 'Tensor'."""

    class Scaled(mt.Tensor):
        @property
        def scale(self):
            return self.scael  # the typo

    x = Scaled([1.0, 2.0])
    with pytest.raises(AttributeError, match=r"^'Scaled' object has no attribute 'scael'$"):
        _ = x.scale
    p = nn.Parameter(mt.zeros(2))
    with pytest.raises(AttributeError, match=r"^'Parameter' object has no attribute 'float'; PyTorch's x\.float"):
        p.float()
    with pytest.raises(AttributeError, match=r"^'Parameter' object has no attribute 'frobnicate'$"):
        _ = p.frobnicate


@pytest.mark.parametrize("name, numpy_formula", [
    ("abs", lambda x: np.abs(x)),
    ("min", lambda x: x.min(-1)),
    ("clamp", lambda x: np.clip(x, -1, 1)),
    ("std", lambda x: x.std(-1, ddof=1)),
])
def test_what_the_hints_write_for_abs_min_clamp_and_std_has_numpys_values_and_passes_gradcheck(name, numpy_formula):
    """abs, min, clip and std are no primitives: the hint writes each with maximum, max, where, mean and sqrt. Their
    values are NumPy's, and their gradients pass gradcheck in float64 away from the kinks; at a kink they follow
    maximum's rule, half to each side of a tie, so the gradient of ``mt.maximum(-x, x)`` at 0 is 0 (as torch's
    abs), and that of ``-(-x).max()`` is shared among equal minima (as ``torch.amin``)."""
    here = TORCH_NAMES["Tensor"][name][1]
    assert TORCH_NAMES["Tensor"]["clip"][1] == TORCH_NAMES["Tensor"]["clamp"][1]  # torch's two names, one answer
    values = np.array([[0.3, -1.7, 2.2, -0.4], [1.3, 0.8, -0.6, -2.5]])  # away from 0, from +-1, and no ties
    x = mt.tensor(values, requires_grad=True)
    np.testing.assert_allclose(eval(here, {"mt": mt, "x": x}).numpy(), numpy_formula(values), rtol=1e-12)
    assert mt.gradcheck(lambda x: eval(here, {"mt": mt, "x": x}), x)
    at_kinks = mt.tensor([[0.0, 0.0, -1.0, 1.0]], dtype="float64", requires_grad=True)
    eval(here, {"mt": mt, "x": at_kinks}).sum().backward()
    expected = {"abs": [0.0, 0.0, -1.0, 1.0], "min": [0.0, 0.0, 1.0, 0.0], "clamp": [1.0, 1.0, 1.0, 1.0]}
    if name in expected:  # abs'(0) = 0; one minimum takes it all; clamp passes [-1, 1] inclusive, as torch's
        assert at_kinks.grad.numpy()[0].tolist() == expected[name]
    tie = mt.tensor([[2.0, 1.0, 1.0]], dtype="float64", requires_grad=True)
    if name == "min":
        eval(here, {"mt": mt, "x": tie}).sum().backward()
        assert tie.grad.numpy().tolist() == [[0.0, 0.5, 0.5]]


COMPARISONS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b, "eq": lambda a, b: a.eq(b), "ne": lambda a, b: a.ne(b)}


@pytest.mark.parametrize("op", list(COMPARISONS))
def test_comparisons_are_checked_as_arithmetic(op):
    # they went straight to the array library: NumPy's unnamed message for shapes, float32 against float64 and
    # a tensor of another backend compared silently
    compare = COMPARISONS[op]
    with pytest.raises(ValueError, match=r"Compare: shapes \(2,\) and \(3,\) do not broadcast"):
        compare(mt.ones(2), mt.ones(3))
    with pytest.raises(TypeError, match=r"Compare: cannot mix dtypes float32 \(2,\) and float64 \(2,\)"):
        compare(mt.ones(2), mt.ones(2, dtype="float64"))
    with pytest.raises(BackendError, match=r"Compare: inputs live on different backends"):
        compare(mt.ones(2), mt.ones(2, backend=other_backend()))
    with pytest.raises(TypeError, match=r"cannot combine a int64 tensor of shape \(2,\) with the float 1.5"):
        compare(mt.tensor([1, 2]), 1.5)
    x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = compare(x, mt.tensor([[2.0], [3.0]]))  # broadcast: (3,) against (2, 1)
    assert y.shape == (2, 3) and y.dtype_name == "bool" and not y.requires_grad and y.is_leaf
    assert compare(x, 2.0).dtype_name == "bool" and compare(mt.tensor([1, 2]), 1).dtype_name == "bool"


@pytest.mark.parametrize("make", [lambda: mt.tensor([1, 2], requires_grad=True),
                                  lambda: mt.zeros(3, dtype="int64", requires_grad=True),
                                  lambda: mt.tensor([True]).requires_grad_()])
def test_requires_grad_on_a_non_float_tensor(make):
    with pytest.raises(TypeError, match=r"requires_grad: only floating-point tensors can have gradients, got "
                                        r"(int64|bool) with shape \(\d,\)"):
        make()


def test_unknown_dtype():
    with pytest.raises(TypeError, match=r"unknown dtype 'float128'"):
        mt.tensor([1.0], dtype="float128")


# ------------------------------------------------------------------ lookups
def test_take_with_float_indices():
    with pytest.raises(TypeError, match=r"Take: indices must be integers, got float32 with shape \(2,\)"):
        mt.take(mt.ones(5, 3), mt.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"Take: indices must be integers, got bool"):
        mt.take(mt.ones(5, 3), mt.tensor([True, False, True, False, True]))
    with pytest.raises(IndexError, match=r"getitem: boolean masks are not supported"):  # x[mask] names indexing
        mt.ones(5, 3)[mt.tensor([True, False, True, False, True])]


@pytest.mark.parametrize(
    "ids, axis, message",
    [
        ([0, 5, 1], 0, r"Take: index 5 is out of range for axis 0 of size 5 \(table shape \(5, 3\), "
                        r"indices shape \(3,\)\)"),
        ([[0], [-6]], 0, r"Take: index -6 is out of range for axis 0 of size 5 .*indices shape \(2, 1\)"),
        ([3], 1, r"Take: index 3 is out of range for axis 1 of size 3"),
    ],
)
@pytest.mark.usefixtures("checking_values")
def test_take_with_out_of_range_ids(ids, axis, message):
    E = mt.ones(5, 3, requires_grad=True)
    with pytest.raises(IndexError, match=message):
        mt.take(E, ids, axis=axis)
    with pytest.raises(IndexError, match=message):
        mt.take(E, mt.tensor(np.asarray(ids)), axis=axis)


LATER = " - found at this read of the device, not where the values were used: with check_values off"


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda E: mt.take(E, [0, 7, 1]), r"^Take: index 7 is out of range for axis 0 of size 5 "
                                          r"\(table shape \(5, 3\), indices shape \(3,\)\)"),
        (lambda E: mt.take(E, mt.tensor([[0], [-6]])), r"^Take: index -6 is out of range for axis 0 of size 5 "
                                                       r"\(table shape \(5, 3\), indices shape \(2, 1\)\)"),
        (lambda E: nn.Embedding(5, 3)(mt.tensor([[1, 9]])), r"^Embedding: ids holds token id 9, out of range for a "
                                                            r"vocabulary of 5 \(ids must be in 0\.\.4\)"),
        (lambda E: F.cross_entropy(E, mt.tensor([0, 1, -1, 2, 0])), r"^cross_entropy: target -1 is out of range for "
                                                                    r"C = 3 classes \(expected 0\.\.2\)"),
    ],
    ids=["take", "take-negative", "embedding", "cross_entropy"],
)
def test_a_range_check_put_off_raises_at_the_next_read_of_the_device(checking_later, bad, message):
    """On CuPy a bad token id, target or index read another row silently (check_values off: reading values would make
    each step wait for the GPU). Its min and max are now computed on the device, and the next read of the device
    (``to_host``: ``.item()``, ``.numpy()``, a log) raises the error the check gives at once elsewhere, saying where
    it was found; once raised, it is gone. The same on every backend with check_values off."""
    E = mt.ones(5, 3, requires_grad=True)
    out = bad(E)  # no error here: the step goes on
    other = mt.ones(2) * 2.0
    with pytest.raises(IndexError, match=message + re.escape(LATER)):
        other.numpy()  # any read of the device, not only of the result at fault
    assert other.numpy().tolist() == [2.0, 2.0] and out.numpy() is not None  # made once: later reads go through
    checking_later.check_values = True  # on: at once, without the tail
    with pytest.raises(IndexError, match=message + r"$"):
        bad(E)


def test_a_range_checks_hint_is_said_for_the_value_at_fault_at_once_and_put_off(backend):
    """check_range(hints=): cross_entropy's word on torch's -100 target is said where -100 is the value at fault (its
    own check cost five array operations a call), at once and at the next read of the device."""
    be = backend
    for at_once in (True, False):
        previous, be.check_values = be.check_values, at_once
        try:
            with pytest.raises(IndexError, match=r"^target -100 is out of 0\.\.2; torch's padding" +
                                                 ("$" if at_once else re.escape(LATER))):
                be.check_range(be.xp.asarray([0, -100]), 0, 2, "target {bad} is out of 0..2",
                               hints={-100: "torch's padding", 7: "not this one"})
                mt.ones(2).numpy()
            tail = "$" if at_once else re.escape(LATER)
            with pytest.raises(IndexError, match=r"^target 5 is out of 0\.\.2" + tail):
                be.check_range(be.xp.asarray([0, 5]), 0, 2, "target {bad} is out of 0..2", hints={-100: "torch's"})
                mt.ones(2).numpy()
        finally:
            be.check_values = previous


def test_range_checks_put_off_stay_few_on_the_device_and_keep_the_worst(checking_later):
    """A loop that never reads the device (no log) keeps CHECKS_KEPT (min, max) pairs a check, no more, reduced to
    one as the next comes; the one bad id among 300 lookups is still the one named, and good ids raise nothing."""
    emb = nn.Embedding(5, 3)
    most = 0
    for step in range(300):
        emb(mt.tensor([[step % 5, 6 if step == 10 else 0]]))
        most = max([most] + [len(kept) for kept in checking_later._checks_later.values()])
    assert most == checking_later.CHECKS_KEPT
    with pytest.raises(IndexError, match=r"^Embedding: ids holds token id 6, out of range"):
        emb.weight.numpy()
    for step in range(100):
        emb(mt.tensor([[step % 5]]))
    assert emb(mt.tensor([[4]])).numpy().shape == (1, 1, 3) and not checking_later._checks_later


def test_the_checks_put_off_are_read_in_one_read_of_the_device(checking_later, monkeypatch):
    """Each message is a check of its own, and messages name shapes: a run of padded batches of many lengths keeps
    tens of them. Their minima and maxima come to the host in one read (two a check before: tens of waits for the
    GPU at each log), and the first check at fault is still the one named."""
    E = mt.ones(5, 3)
    for length in range(1, 9):  # 8 shapes of indices, 8 messages (Take's names the shapes)
        mt.take(E, mt.tensor([1] * length))
    mt.take(E, mt.tensor([0, 7, 0, 0, 0, 0, 0, 0, 0]))
    assert len(checking_later._checks_later) == 9
    reads = []
    copy = checking_later._copy_to_host
    monkeypatch.setattr(checking_later, "_copy_to_host", lambda a: reads.append(1) or copy(a))
    with pytest.raises(IndexError, match=r"^Take: index 7 is out of range for axis 0 of size 5 \(table shape \(5, 3\), "
                                         r"indices shape \(9,\)\)"):
        mt.ones(2).numpy()
    assert len(reads) == 1 and not checking_later._checks_later


def test_decodings_read_a_step_is_one_read_of_the_device_with_the_checks_put_off(checking_later, monkeypatch):
    """Each decoding step leaves an id check put off (its embedding) and reads its flag (all finished?): the two come
    to the host in one read, not two (one more wait for the GPU a generated token)."""
    from minitransformer.train import greedy_decode

    mt.manual_seed(0)
    model = nn.Transformer(6, 6, d_model=8, heads=2, d_ff=16, num_encoder_layers=1, num_decoder_layers=1,
                           max_len=8).eval()
    reads, flags = [], []
    copy, read_bool = checking_later._copy_to_host, checking_later.read_bool
    monkeypatch.setattr(checking_later, "_copy_to_host", lambda a: reads.append(1) or copy(a))
    monkeypatch.setattr(checking_later, "read_bool", lambda f: flags.append(1) or read_bool(f))
    greedy_decode(model, mt.tensor([[4, 5, 3]]), max_len=6)
    assert flags and len(reads) == len(flags)


@pytest.mark.parametrize("decode", ["greedy_decode", "beam_search", "generate"])
def test_decodings_read_of_the_device_makes_the_checks_put_off(checking_later, decode):
    """Decoding reads one flag a step (all finished?) to know when to stop: that read goes through to_host
    (Backend.read_bool), so a source id out of the vocabulary is refused there, at the first step, rather than the
    loop decoding with another row's embedding until the caller's next .numpy()."""
    from minitransformer.train import beam_search, generate, greedy_decode

    mt.manual_seed(0)
    if decode == "generate":
        model = nn.DecoderOnlyLM(6, d_model=8, heads=2, d_ff=16, num_layers=1, max_len=8).eval()
        call = lambda: generate(model, mt.tensor([[1, 9]]), max_new_tokens=3, eos_id=2)  # noqa: E731
    else:
        model = nn.Transformer(6, 6, d_model=8, heads=2, d_ff=16, num_encoder_layers=1, num_decoder_layers=1,
                               max_len=8).eval()
        decoder = {"greedy_decode": greedy_decode, "beam_search": beam_search}[decode]
        call = lambda: decoder(model, mt.tensor([[4, 9]]), max_len=4)  # noqa: E731
    with pytest.raises(IndexError, match=r"(ids|src) holds token id 9, out of range for a vocabulary of 6 .*"
                                         + re.escape(LATER)):
        call()


def test_getitem_with_two_index_arrays():
    with pytest.raises(IndexError, match=r"getitem: only one integer array, on the first axis, is supported"):
        mt.ones(3, 3)[[0, 1], [1, 2]]


def test_item_of_many_elements():
    with pytest.raises(ValueError, match=r"item\(\): tensor has shape \(3,\); only one-element tensors convert"):
        mt.ones(3).item()


# ------------------------------------------------------------------ options: a real number in a range
# each case: the call with the option set to v, and the message's stem (then ", got <v>")
REAL_OPTIONS = {
    "layer_norm eps": (lambda v: F.layer_norm(mt.zeros(2, 3), eps=v), r"layer_norm: eps must be a finite number >= 0"),
    "LayerNorm eps": (lambda v: nn.LayerNorm(3, eps=v), r"LayerNorm: eps must be a finite number >= 0"),
    "cross_entropy label_smoothing": (lambda v: F.cross_entropy(mt.zeros(2, 3), [0, 1], label_smoothing=v),
                                      r"cross_entropy: label_smoothing must be a number in \[0, 1\]"),
    "dropout p": (lambda v: F.dropout(mt.zeros(3), v),
                  r"dropout: the dropout probability p must be a number in \[0, 1\)"),
    "Dropout p": (lambda v: nn.Dropout(v), r"Dropout: the dropout probability p must be a number in \[0, 1\)"),
    "attention dropout_p": (lambda v: F.scaled_dot_product_attention(mt.zeros(2, 3), mt.zeros(2, 3), mt.zeros(2, 3),
                                                                     dropout_p=v, training=True),
                            r"scaled_dot_product_attention: the dropout probability p must be a number in \[0, 1\)"),
}


@pytest.mark.parametrize("value", ["1e-5", None, True, [0.1], mt.tensor(0.1)], ids=repr)
@pytest.mark.parametrize("option", list(REAL_OPTIONS))
def test_an_option_that_is_not_a_real_number(option, value):
    """A TypeError naming the formula, the option and the value (eps="1e-5" raised Python's own '>=' error)."""
    call, message = REAL_OPTIONS[option]
    with pytest.raises(TypeError, match=message + ", got "):
        call(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), -0.5, np.float32(-0.5)], ids=repr)
@pytest.mark.parametrize("option", list(REAL_OPTIONS))
def test_an_option_out_of_its_range(option, value):
    """NaN, inf (eps = inf made every output 0) and negatives: a ValueError, before any arithmetic."""
    call, message = REAL_OPTIONS[option]
    with pytest.raises(ValueError, match=message + ", got "):
        call(value)


@pytest.mark.parametrize("option", list(REAL_OPTIONS))
def test_an_option_given_as_a_numpy_number(option):
    """np.float32(0.1) is a real number in range ('must be in [0, 1]' said otherwise), on every backend."""
    call, _ = REAL_OPTIONS[option]
    call(np.float32(0.1))
    call(np.float64(0.1))


def test_numpy_numbers_as_options_give_the_same_results_as_python_floats():
    x = mt.tensor([[1.0, 2.0, 4.0]], dtype="float64")
    for fused in (True, False):
        np.testing.assert_array_equal(F.layer_norm(x, eps=np.float32(0.5), fused=fused).numpy(),
                                      F.layer_norm(x, eps=float(np.float32(0.5)), fused=fused).numpy())
        np.testing.assert_array_equal(
            F.cross_entropy(x, [2], label_smoothing=np.float32(0.1), fused=fused).numpy(),
            F.cross_entropy(x, [2], label_smoothing=float(np.float32(0.1)), fused=fused).numpy())
    norm = nn.LayerNorm(3, eps=np.float32(1e-3))
    assert type(norm.eps) is float and norm.eps == float(np.float32(1e-3))


# ------------------------------------------------------------------ making tensors
@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: mt.zeros(-1, 2), ValueError, r"^zeros: sizes must be >= 0, got -1 in shape \(-1, 2\)$"),
        (lambda: mt.ones((2, -3)), ValueError, r"^ones: sizes must be >= 0, got -3 in shape \(2, -3\)$"),
        (lambda: mt.zeros(2.5), TypeError, r"^zeros: a size must be an integer, got \(2\.5,\) \(2\.5 is a float\)$"),
        (lambda: mt.zeros(2, True), TypeError, r"^zeros: a size must be an integer, got \(2, True\)"),
        (lambda: mt.randn(-2), ValueError, r"^randn: sizes must be >= 0, got -2 in shape \(-2,\)$"),
        (lambda: mt.rand(2, None), TypeError, r"^rand: a size must be an integer, got \(2, None\)"),
        (lambda: mt.randn(2, dtype="int64"), TypeError, r"^randn: dtype must be floating .*got int64$"),
        (lambda: mt.randint(5, 2, (3,)), ValueError, r"^randint: low=5 must be below high=2"),
        (lambda: mt.randint(0, 2.5, (3,)), TypeError, r"^randint: high must be an integer, got 2\.5$"),
        (lambda: mt.randint(0, 5, (3, -1)), ValueError, r"^randint: sizes must be >= 0, got -1 in shape \(3, -1\)$"),
        (lambda: mt.arange(0, 5, 0), ValueError, r"^arange: step must not be 0 \(start=0, stop=5\)$"),
        (lambda: mt.arange(float("inf")), TypeError, r"^arange: stop must be a finite number, got inf$"),
        (lambda: mt.arange("3"), TypeError, r"^arange: stop must be a finite number, got '3'$"),
        (lambda: mt.full((2,), "a"), TypeError, r"^full: value must be a number, got 'a'$"),
        (lambda: mt.full((2,), 2.5, dtype="int64"), ValueError, r"^full: value 2\.5 is not a whole number, and dtype "
                                                                r"is int64"),
        (lambda: mt.full((2,), 2**70, dtype="int64"), OverflowError, r"^full: value 1180591620717411303424 is outside "
                                                                     r"int64's range \[-9223372036854775808, "),
        (lambda: mt.full((2, -1), 0.0), ValueError, r"^full: sizes must be >= 0, got -1 in shape \(2, -1\)$"),
    ],
)
def test_bad_sizes_and_values_for_a_new_tensor(call, error, message):
    """Each was NumPy's own error (negative dimensions, 'float' object cannot be interpreted as an integer, low >= high,
    could not convert string to float) or a ZeroDivisionError from inside array_api_compat, or a silent truncation."""
    with pytest.raises(error, match=message):
        call()


def test_good_sizes_and_values_for_a_new_tensor_still_work():
    assert mt.zeros(np.int64(2), 0).shape == (2, 0) and mt.ones([3]).shape == (3,) and mt.zeros().shape == ()
    assert mt.full(2, 0.5).tolist() == [0.5, 0.5] and mt.full((2,), 3.0, dtype="int64").tolist() == [3, 3]
    assert mt.full((1,), True).tolist() == [1.0] and mt.zeros(2, dtype="bool").tolist() == [False, False]
    assert mt.randint(0, np.int64(3), 4).shape == (4,) and mt.arange(0, 1, 0.5).tolist() == [0.0, 0.5]
    # 0-d NumPy arrays are numbers, as NumPy takes them; an int past int64 is a number like any other in floats
    assert mt.full((2,), np.array(0.5)).tolist() == [0.5, 0.5] and mt.arange(np.array(3)).tolist() == [0, 1, 2]
    assert mt.ones(12).reshape(np.array(4), 3).shape == (4, 3) and mt.zeros(np.array(2)).shape == (2,)
    assert mt.tensor([2**64], dtype="float64").tolist() == [2.0**64]
    assert mt.tensor([1.0, 10**20], dtype="float64").tolist() == [1.0, 1e20]


@pytest.mark.parametrize(
    "data, message",
    [
        ([[1.0], [1.0, 2.0]], r"^tensor: data is ragged: its lists at depth 1 have lengths 1, 2; a tensor needs lists "
                              r"of equal lengths at each depth$"),
        ([[[1], [2]], [[3], [4, 5]]], r"^tensor: data is ragged: its lists at depth 2 have lengths 1, 2"),
        ([1, [2]], r"^tensor: data is ragged: at depth 1 some elements are lists and some are numbers"),
    ],
)
def test_ragged_data(data, message):
    """NumPy's 'setting an array element with a sequence ... inhomogeneous shape', with a dtype given or not."""
    with pytest.raises(ValueError, match=message):
        mt.tensor(data)
    with pytest.raises(ValueError, match=message):
        mt.tensor(data, dtype="float32")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mt.tensor([1, 2]) + 2**70, r"^add \(\+\): cannot combine a int64 tensor of shape \(2,\) with the int "
                                            r"1180591620717411303424: it is outside int64's range "
                                            r"\[-9223372036854775808, 9223372036854775807\]$"),
        (lambda: mt.tensor([1, 2]) * 2**63, r"with the int 9223372036854775808: it is outside int64's range"),
        (lambda: mt.tensor([1, 2], dtype="uint8") + -1, r"^add \(\+\): cannot combine a uint8 tensor of "
                                                        r"shape \(2,\) with the int -1: it is outside uint8's range "
                                                        r"\[0, 255\]$"),
        (lambda: mt.ones(2) + 2**200, r"^add \(\+\): cannot combine a float32 tensor of shape \(2,\) with the "
                                      r"int 16069380\.\.\. \(61 digits\): it is outside float32's range "
                                      r"\[-3\.403e\+38, 3\.403e\+38\]$"),
        (lambda: mt.tensor([[1], [2**70]]), r"^tensor: the int 1180591620717411303424 is outside int64's range"),
        (lambda: mt.tensor([-2**64, 1], dtype="int64"), r"^tensor: the int -18446744073709551616 is outside int64's "),
        (lambda: mt.tensor(2**64), r"^tensor: the int 18446744073709551616 is outside int64's range"),
        (lambda: mt.tensor([2**63]), r"^tensor: the int 9223372036854775808 is outside int64's range"),
    ],
)
def test_an_int_that_does_not_fit_the_dtype(call, message):
    """NumPy's 'Python int too large to convert to C long' from inside Add.forward (array-api-strict's own words), a
    silent wrap-around to a negative int64, or 'NumPy reads it as object'."""
    with pytest.raises(OverflowError, match=message):
        call()



@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: mt.tensor([300], dtype="uint8"), OverflowError, r"^tensor: value 300 is outside uint8's range "
                                                                 r"\[0, 255\]$"),
        (lambda: mt.tensor(300, dtype="int8"), OverflowError, r"^tensor: value 300 is outside int8's range "
                                                              r"\[-128, 127\]$"),
        (lambda: mt.tensor([[1, -1]], dtype="uint8"), OverflowError, r"^tensor: value -1 is outside uint8's range"),
        (lambda: mt.tensor([1.5], dtype="int64"), ValueError, r"^tensor: value 1\.5 is not a whole number, and dtype "
                                                              r"is int64; give a floating dtype, or a whole number$"),
        (lambda: mt.tensor([1.0, float("nan")], dtype="int32"), ValueError, r"^tensor: value nan is not a whole "),
        (lambda: mt.tensor([0.5], dtype="bool"), ValueError, r"^tensor: value 0\.5 is not a whole number, and dtype "
                                                             r"is bool"),
        (lambda: mt.tensor([1e39]), OverflowError, r"^tensor: value 1e\+39 is outside float32's range "
                                                   r"\[-3\.403e\+38, 3\.403e\+38\] \(finfo\('float32'\)\.max is "),
        (lambda: mt.full((2,), 300.0, dtype="uint8"), OverflowError, r"^full: value 300\.0 is outside uint8's range "
                                                                     r"\[0, 255\]$"),
    ],
)
def test_numbers_that_do_not_fit_the_dtype_asked_for_are_refused_on_the_host(backend, call, error, message):
    """NumPy cast them silently: 300 as uint8 was 44, 1.5 as int64 was 1, 1e39 as float32 inf (full's float 300.0 too,
    where its int 300 was refused), where torch.tensor([300], dtype=torch.uint8) refuses."""
    with pytest.raises(error, match=message):
        call()
    assert mt.tensor([255, 0], dtype="uint8").tolist() == [255, 0] and mt.tensor([2.0], dtype="int64").tolist() == [2]
    assert mt.tensor([2, 0], dtype="bool").tolist() == [True, False]
    assert mt.tensor([float("inf"), -1e300], dtype="float64").tolist() == [float("inf"), -1e300]
    assert mt.tensor(np.array([300]), dtype="uint8").dtype_name == "uint8"  # an array is cast as asked, as .to casts


@pytest.mark.single_backend
def test_a_float_past_float16s_largest_is_refused_naming_the_op_and_the_most_negative_number():
    """float16's -1e9 became -inf with only NumPy's 'overflow encountered in cast', and a row with every score
    masked then softmaxed to NaN; full's 70000.0 was inf: torch says 'cannot be converted to type c10::Half without
    overflow'."""
    scores, keep = mt.zeros(2, 3, dtype="float16"), mt.tensor([[True, False, False], [False, False, False]])
    with pytest.raises(OverflowError, match=r"^masked_fill: cannot combine a float16 tensor of shape \(2, 3\) with the "
                                            r"float -1000000000\.0: it is outside float16's range \[-6\.55e\+04, "
                                            r"6\.55e\+04\] \(finfo\('float16'\)\.max is 65504\.0\), and would become "
                                            r"-inf; for the most negative float16 write "
                                            r"float\(np\.finfo\('float16'\)\.min\) \(as this library's attention masks "
                                            r"do\) or float\('-inf'\)"):
        scores.masked_fill(~keep, -1e9)
    with pytest.raises(OverflowError, match=r"^where: cannot combine a float16 tensor .* float 70000\.0: .*would "
                                            r"become inf; write float\(np\.finfo\('float16'\)\.max\) for the largest "):
        mt.where(keep, scores, 70000.0)
    with pytest.raises(OverflowError, match=r"^add \(\+\): cannot combine a float16 tensor of shape \(2, 3\) with the "
                                            r"float "
                                            r"-100000\.0: it is outside float16's range"):
        scores + -1e5
    with pytest.raises(OverflowError, match=r"^full: value 70000\.0 is outside float16's range \[-6\.55e\+04, "
                                            r"6\.55e\+04\] \(finfo\('float16'\)\.max is 65504\.0\), and would "):
        mt.full((2,), 70000.0, dtype="float16")
    most_negative = float(np.finfo("float16").min)
    assert scores.masked_fill(~keep, most_negative).numpy()[1].tolist() == [most_negative] * 3
    assert np.isneginf(scores.masked_fill(~keep, float("-inf")).numpy()[1]).all()
    assert np.isnan((scores + float("nan")).numpy()).all()

# ------------------------------------------------------------------ indexing, reductions, concat
@pytest.mark.parametrize(
    "index, error, message",
    [
        (5, IndexError, r"^getitem: index 5 is out of range for axis 0 of size 2 \(shape \(2, 3\)\)$"),
        ((0, -4), IndexError, r"^getitem: index -4 is out of range for axis 1 of size 3 \(shape \(2, 3\)\)$"),
        ((..., 3), IndexError, r"^getitem: index 3 is out of range for axis 1 of size 3"),
        ((None, 1, 3), IndexError, r"^getitem: index 3 is out of range for axis 1 of size 3"),
        (0.5, IndexError, r"^getitem: 0\.5 \(a float\) on axis 0 is no index; an index is an int, a slice, None, "
                          r"\.\.\., or one integer array picking rows$"),
        ((0, "a"), IndexError, r"^getitem: 'a' \(a str\) on axis 1 is no index"),
        ((0, 0, 0), IndexError, r"^getitem: 3 indices for a tensor of shape \(2, 3\) \(2 dimensions\)$"),
        ((..., 0, ...), IndexError, r"^getitem: an index may have one \.\.\. \(Ellipsis\), got 2$"),
        (slice(0, 2.5), TypeError, r"^getitem: a slice's start, stop and step must be ints or None, got "
                                   r"slice\(0, 2\.5, None\) \(2\.5 is a float\)$"),
        ((0, slice(None, None, 0)), ValueError, r"^getitem: slice\(None, None, 0\) on axis 1: a slice's step must not "
                                                r"be 0$"),
    ],
)
def test_bad_index(index, error, message):
    """Each was NumPy's IndexError (or array-api-strict's) from inside GetItem.forward."""
    with pytest.raises(error, match=message):
        mt.zeros(2, 3)[index]


def test_good_indices_still_work():
    x = mt.arange(6).reshape(2, 3)
    assert x[-1, np.int64(2)].item() == 5 and x[..., 1].tolist() == [1, 4] and x[None, 1, ...].shape == (1, 3)
    assert x[1, None].shape == (1, 3) and x[:, ::2].tolist() == [[0, 2], [3, 5]] and x[...].shape == (2, 3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mt.zeros(0).max(), r"^Max: axis 0 has size 0 \(shape \(0,\)\): the max of no elements is undefined$"),
        (lambda: mt.zeros(0).mean(), r"^Mean: axis 0 has size 0 \(shape \(0,\)\): the mean of no elements is "
                                     r"undefined$"),
        (lambda: mt.zeros(2, 0).mean(axis=1), r"^Mean: axis 1 has size 0 \(shape \(2, 0\)\)"),
        (lambda: mt.zeros(2, 0, 3).max(axis=(0, 1)), r"^Max: axis 1 has size 0 \(shape \(2, 0, 3\)\)"),
    ],
)
def test_mean_or_max_over_an_empty_axis(call, message):
    """NaN with a RuntimeWarning (mean; PyTorch too gives nan), or NumPy's 'zero-size array to reduction operation
    maximum which has no identity'. A sum of nothing is 0, and an empty axis that is not reduced is fine."""
    with pytest.raises(ValueError, match=message):
        call()
    assert mt.zeros(2, 0).sum(axis=1).tolist() == [0.0, 0.0]
    assert mt.zeros(0, 3).mean(axis=1).shape == (0,) and mt.zeros(0, 3).max(axis=1).shape == (0,)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: x.sum(axis=1.0), TypeError, r"^sum: axis must be an int, a tuple of ints or None, got 1\.0$"),
        (lambda x: x.sum(axis=True), TypeError, r"^sum: axis must be an int, a tuple of ints or None, got True$"),
        (lambda x: x.mean(axis=(0, "1")), TypeError, r"^mean: axis must be an int, a tuple of ints or None, got "
                                                     r"\(0, '1'\) \('1' is a str\)$"),
        (lambda x: x.max(axis=(1, -1)), ValueError, r"^max: axis \(1, -1\) names an axis twice"),
        (lambda x: x.swapaxes(0, 1.0), TypeError, r"^swapaxes: axis must be an int, got 1\.0$"),
        (lambda x: mt.concat([x, x], axis=None), TypeError, r"^concat: axis must be an int, got None$"),
        (lambda x: x.reshape(3, 2.0), TypeError, r"^reshape: a size must be an integer, got \(3, 2\.0\) \(2\.0 is a "
                                                 r"float\)$"),
        (lambda x: x.reshape(-2, -3), ValueError, r"^reshape: sizes must be >= 0 \(or one -1, inferred\), got -2 in "
                                                  r"shape \(-2, -3\)$"),
    ],
)
def test_axes_and_sizes_that_are_not_ints(call, error, message):
    """sum(axis=1.0) was "'float' object is not iterable"; axis=True meant axis 1 and reshape(3, 2.0) was accepted,
    silently; concat's axis=None meant axis 0."""
    with pytest.raises(error, match=message):
        call(mt.zeros(2, 3))
    assert mt.zeros(2, 3).sum(axis=np.int64(1)).shape == (2,)
    assert mt.zeros(2, 3).reshape(np.int64(3), -1).shape == (3, 2)


@pytest.mark.parametrize("call, message", [
    (lambda v: nn.Linear(v, 4), r"Linear: d_in must be a positive integer, got "),
    (lambda v: F.causal_mask(v), r"causal_mask: T must be an integer >= 0, got "),
    (lambda v: nn.MultiHeadAttention(16, v), r"MultiHeadAttention: heads must be a positive integer, got "),
], ids=["Linear", "causal_mask", "MultiHeadAttention"])
def test_a_count_of_the_wrong_type_is_a_type_error(call, message):
    """nn.Linear(2.5, 4) was a ValueError while mt.zeros(2.5) and nn.Dropout('0.1') are TypeErrors: what is not an
    integer is a TypeError, an integer out of range a ValueError, with the same message."""
    for bad in (2.5, "4", True):
        with pytest.raises(TypeError, match="^" + message + re.escape(repr(bad)) + "$"):
            call(bad)
    with pytest.raises(ValueError, match="^" + message + "-1$"):
        call(-1)


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
def test_softmax_axis_is_checked_as_tensor_sums(op):
    """softmax(x, axis=np.int64(-1)) was refused as "out of range" and axis=True taken as axis 1: the axis is checked
    as Tensor.sum's, a NumPy integer taken, a bool or a float a TypeError."""
    name, x = op.__name__, mt.ones(2, 3)
    assert op(x, axis=np.int64(-1)).shape == (2, 3)
    np.testing.assert_array_equal(op(x, axis=np.int64(0)).numpy(), op(x, axis=0).numpy())
    for axis in (True, 1.0, "1"):
        with pytest.raises(TypeError, match=rf"^{name}: axis must be an int, got {re.escape(repr(axis))}$"):
            op(x, axis=axis)
    with pytest.raises(ValueError, match=rf"^{name}: axis 2 is out of range for a tensor with 2 dimensions$"):
        op(x, axis=np.int64(2))


def test_concat_and_stack_of_something_that_is_not_a_tensor():
    """concat([t, [1.0]]) was AttributeError: 'list' object has no attribute 'ndim' (from inside Concat)."""
    t = mt.ones(2)
    with pytest.raises(TypeError, match=r"^concat: tensors\[1\] is a list, not a Tensor; make it one with "
                                        r"mt\.tensor\(\.\.\.\)$"):
        mt.concat([t, [1.0]])
    with pytest.raises(TypeError, match=r"^stack: tensors\[0\] is a float, not a Tensor"):
        mt.stack([1.0, t])
    with pytest.raises(TypeError, match=r"^concat: tensors must be a list or tuple of Tensors, got a Tensor of shape "
                                        r"\(2,\)$"):
        mt.concat(t)  # it was cut into its rows, 0-d tensors
    with pytest.raises(TypeError, match=r"^Concat: tensors\[1\] is a list, not a Tensor"):
        mt.autograd.ops.Concat.apply(t, [1.0], axis=0)
    assert mt.concat(x for x in (t, t)).shape == (4,)  # any iterable of tensors


# ------------------------------------------------------------------ setting .grad
def test_grad_set_to_an_array_of_the_backend_is_wrapped_in_a_tensor():
    """p.grad = an array was kept as it was, and SGD.step() failed with "'memoryview' object has no attribute
    'dtype'" (or "'list' object has no attribute 'data'")."""
    p = mt.zeros(2, requires_grad=True)
    p.grad = p.backend.asarray(np.ones(2, np.float32))
    assert isinstance(p.grad, mt.Tensor) and p.grad.backend is p.backend
    mt.optim.SGD([p], lr=0.5).step()
    assert p.tolist() == [-0.5, -0.5]


@pytest.mark.parametrize(
    "value, error, message",
    [
        ([1.0, 2.0], TypeError, r"^grad: a gradient is a Tensor or an array of backend \w+, got a list, for a float32 "
                                r"tensor of shape \(2,\); make it one with mt\.tensor\(\.\.\., dtype='float32', "),
        ("other", TypeError, r"^grad: a gradient is a Tensor or an array of backend \w+, got an array of backend \w+"),
        (np.ones(3, np.float32), ValueError, r"^grad: a gradient of shape \(3,\) and dtype float32 for a tensor of "
                                             r"shape \(2,\) and dtype float32; a gradient has its tensor's shape and "
                                             r"dtype$"),
        (np.ones(2), TypeError, r"^grad: a gradient of shape \(2,\) and dtype float64 for a tensor of shape \(2,\) "
                                r"and dtype float32"),
        ("tensor (3,)", ValueError, r"^grad: a gradient of shape \(3,\) and dtype float32 for a tensor of shape "
                                    r"\(2,\)"),  # backward() would have broadcast into it
        ("tensor float64", TypeError, r"^grad: a gradient of shape \(2,\) and dtype float64 for a tensor of shape "
                                      r"\(2,\) and dtype float32"),
    ],
)
def test_grad_set_to_something_else_is_refused(value, error, message):
    p = mt.zeros(2, requires_grad=True)
    if isinstance(value, np.ndarray):
        value = p.backend.asarray(value)
    elif value == "other":
        value = mt.backend.get(other_backend()).asarray(np.ones(2, np.float32))
    elif value == "tensor (3,)":
        value = mt.ones(3)
    elif value == "tensor float64":
        value = mt.ones(2, dtype="float64")
    with pytest.raises(error, match=message):
        p.grad = value
    assert p.grad is None


def test_grad_set_to_a_tensor_of_another_backend_is_refused():
    p = mt.zeros(2, requires_grad=True)
    with pytest.raises(BackendError, match=rf"^grad: a gradient on backend {other_backend()} for a tensor on "
                                           rf"{p.backend.name} \(shape \(2,\)\); move it with \.to\("):
        p.grad = mt.ones(2, backend=other_backend())
    p.grad = mt.ones(2)  # a Tensor of the backend, shape and dtype
    assert p.grad.shape == (2,)
    p.grad = None
    assert p.grad is None


# ------------------------------------------------------------------ torch habits and float16, said in its words
@pytest.mark.single_backend
def test_layer_norm_refuses_float16_as_module_to_does():
    """float16 squares of 300 pass 65504: the variance was inf and the result zeros, fused or not."""
    x = mt.tensor(np.full((2, 4), 300.0, dtype=np.float16))
    for fused in (True, False):
        with pytest.raises(TypeError, match=r"^layer_norm: x is float16 \(2, 4\), which is not supported \(as "
                                            r"Module\.to refuses float16\): .*65504.*; convert x with "
                                            r"x\.to\('float32'\)$"):
            F.layer_norm(x, fused=fused)


@pytest.mark.single_backend
def test_adam_refuses_float16_parameters_as_module_to_does():
    """eps = 1e-8 rounds to 0 in float16: Adam's first step on [1, 2] with gradients [0, 1e-3] gave [nan, -inf],
    with NumPy's divide warnings, where its docstring promises that eps keeps the step finite."""
    with pytest.raises(TypeError, match="Module.to: float16 is not supported: ") as module_to:
        nn.Linear(2, 2).to("float16")
    why = str(module_to.value).split("float16 is not supported: ", 1)[1].split("; use ")[0]
    for Adam in (mt.optim.Adam, mt.optim.AdamW):
        w = mt.tensor([1.0, 2.0], dtype="float16", requires_grad=True)
        with pytest.raises(TypeError, match=rf"^{Adam.__name__}: parameter 0 \(shape \(2,\)\) of group 1 is float16, "
                                            r"which is not supported \(as Module\.to refuses float16: "
                                            + re.escape(why) + r"\): in Adam's step eps \(1e-8 by default\) rounds "
                                            r"to 0 in float16, .* NaN where g is 0, inf elsewhere; make the parameters "
                                            r"float32 \(the default\) or float64$"):
            Adam([{"params": [mt.ones(2, requires_grad=True)]}, {"params": [w]}], lr=1e-3)
    # SGD's step is its formula rounded to float16 (no division): finite, and taken
    w = mt.tensor([1.0, 2.0], dtype="float16", requires_grad=True)
    opt = mt.optim.SGD([w], lr=0.5, momentum=0.9)
    w.grad = mt.tensor([0.0, 1.0], dtype="float16")
    opt.step()
    assert w.tolist() == [1.0, 1.5]


@pytest.mark.single_backend
def test_half_and_int_say_what_to_write_and_that_float16_is_not_for_training():
    """x.half(), model.half() and x.int() raised a bare AttributeError, where x.double() and x.long() said what to
    write here; half's answer says why training in float16 is refused, in Module.to's words."""
    with pytest.raises(TypeError, match="Module.to: float16 is not supported: ") as module_to:
        nn.Linear(2, 2).to("float16")
    why = re.escape(str(module_to.value).split("float16 is not supported: ", 1)[1].split("; use ")[0])
    with pytest.raises(AttributeError, match=r"^'Tensor' object has no attribute 'half'; PyTorch's x\.half\(\) is "
                                             r"x\.to\('float16'\) here, but float16 is not supported for training "
                                             rf"\(Module\.to and Adam refuse it\): {why} \(docs/from-pytorch\.md\)$"):
        mt.ones(2).half()
    with pytest.raises(AttributeError, match=r"^'Linear' object has no attribute 'half'; PyTorch's model\.half\(\) "
                                             r"has no equal here: model\.to\('float16'\) is refused: float16 is not "
                                             rf"supported: {why}; keep the model float32 \(the default\), or "
                                             r"model\.to\('float64'\) \(docs/from-pytorch\.md\)$"):
        nn.Linear(2, 2).half()
    with pytest.raises(AttributeError, match=r"^'Tensor' object has no attribute 'int'; PyTorch's x\.int\(\) is "
                                             r"x\.to\('int32'\) here \(ids are int64 here, x\.to\('int64'\), as "
                                             r"torch's x\.long\(\)\) \(docs/from-pytorch\.md\)$"):
        mt.ones(2).int()
    assert mt.tensor([1.5, -2.0]).to("int32").tolist() == [1, -2] and mt.ones(2).to("float16").dtype_name == "float16"


@pytest.mark.parametrize("symbol", ["//", "%"])
def test_floor_division_and_remainder_of_a_tensor_are_refused_by_name(backend, symbol):
    """Python's 'unsupported operand type(s) for //: 'Tensor' and 'int''; as / refuses integer tensors, these name
    what they are and what to write."""
    said = {"//": "floor division", "%": "a remainder"}[symbol]
    what = (rf"{said} \({re.escape(symbol)}\) is no operation of tensors here \(no formula of the Transformer needs "
            r"one, and it has no gradient\); compute it on the host and make a tensor of the result, e\.g\. "
            rf"mt\.tensor\(x\.numpy\(\) {re.escape(symbol)} 2\)$")
    ids = mt.tensor([7, 8])
    with pytest.raises(TypeError, match=rf"^a int64 tensor of shape \(2,\) {symbol} the int 2: {what}"):
        eval(f"ids {symbol} 2")
    with pytest.raises(TypeError, match=rf"^the int 7 {symbol} a int64 tensor of shape \(2,\): {said}"):
        eval(f"7 {symbol} ids")
    with pytest.raises(TypeError, match=rf"^a float32 tensor of shape \(2,\) {symbol} a int64 tensor of shape "):
        eval(f"mt.ones(2) {symbol} ids")
    with pytest.raises(TypeError, match=rf"^a int64 tensor of shape \(2,\) {symbol} the int 2: {said}"):
        exec(f"ids {symbol}= 2")
    assert mt.tensor(ids.numpy() // 2).tolist() == [3, 4] and mt.tensor(ids.numpy() % 2).tolist() == [1, 0]


@pytest.mark.single_backend
def test_layer_norm_given_torchs_normalized_shape_says_what_it_takes():
    with pytest.raises(TypeError, match=r"^layer_norm: gamma must be a Tensor, got tuple \(4,\): torch's second "
                                        r"argument, normalized_shape, is not taken here: .* write layer_norm\(x\) or "
                                        r"layer_norm\(x, gamma, beta\)$"):
        F.layer_norm(mt.ones(2, 4), (4,))
    with pytest.raises(TypeError, match=r"^layer_norm: gamma must be a Tensor, got int64 np\.int64\(4\): torch's "):
        F.layer_norm(mt.ones(2, 4), np.int64(4))


@pytest.mark.single_backend
def test_nn_gelu_refuses_approximate_as_f_gelu_does():
    with pytest.raises(TypeError) as theirs:
        F.gelu(mt.ones(2), approximate="none")
    with pytest.raises(TypeError, match=r"^GELU\.__init__\(\) got an unexpected keyword argument 'approximate'; "
                                        r"PyTorch's approximate= has no equal here: this GELU is the tanh "
                                        r"approximation") as ours:
        nn.GELU(approximate="none")
    assert str(ours.value).split("; ", 1)[1] == str(theirs.value).split("; ", 1)[1]
    assert nn.GELU()(mt.ones(1)).shape == (1,)


@pytest.mark.single_backend
def test_cross_entropy_given_torchs_ignore_index_says_to_write_it():
    with pytest.raises(IndexError, match=r"^cross_entropy: target -100 is out of range for C = 4 classes \(expected "
                                         r"0\.\.3\); -100 is torch's default ignore_index, none here: .* write "
                                         r"ignore_index=-100$"):
        F.cross_entropy(mt.ones(3, 4), [1, -100, 0])
    assert np.isfinite(F.cross_entropy(mt.ones(3, 4), [1, -100, 0], ignore_index=-100).item())


@pytest.mark.single_backend
def test_an_embedding_given_ids_of_another_backend_names_the_layer_and_how_to_make_the_batches():
    pytest.importorskip("array_api_strict")
    with mt.backend.use("array_api_strict"):
        emb = nn.Embedding(10, 4)
    with pytest.raises(BackendError, match=r"^Embedding: the ids tensor is on backend numpy, the embedding's weights "
                                           r"\(the model's\) on array_api_strict: make the batches on the model's "
                                           r"backend \(the data helpers' backend='array_api_strict' argument, or "
                                           r"mt\.backend\.use\('array_api_strict'\) before making them\)"):
        emb(mt.tensor([[1, 2]]))
