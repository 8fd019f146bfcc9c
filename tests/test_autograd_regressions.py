"""Bugs found once, kept found."""

import numpy as np
import pytest

import minitransformer as mt


def test_node_reached_by_paths_of_different_lengths_gets_every_gradient():
    # h feeds the output directly and through h.sum(): the topological order must put h after both
    # (softmax, e / e.sum(), has exactly this shape). L = sum_i h_i * S, S = sum_j h_j, h = x^2:
    # dL/dh_k = S + sum_i h_i = 2S, dL/dx_k = 2S * 2 x_k = 4 S x_k; S = 5 -> [20, 40].
    x = mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    h = x * x
    (h * h.sum()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 40.0])


def test_integer_tensor_with_a_float_number_is_refused_not_promoted():
    ids = mt.tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"int64 tensor of shape \(3,\) with the float 2.5"):
        ids * 2.5
    assert (ids * 2).dtype_name == "int64"  # an int keeps the dtype


@pytest.mark.parametrize("exponent", [0, 0.0])
def test_x_to_the_zero_has_gradient_zero_also_at_zero(exponent):
    # b a^(b-1) = 0 * inf = NaN at a = 0; y = a^0 = 1 is constant, and PyTorch gives 0
    x = mt.tensor([0.0, 2.0, -1.0], requires_grad=True)
    (x**exponent).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_a_zero_tensor_exponent_has_gradient_zero_also_at_zero():
    # as PyTorch: abar = 0 where b = 0; bbar = y ln a, taken as 0 at a = 0
    a = mt.tensor([0.0, 0.0, 2.0, 3.0], requires_grad=True)
    b = mt.tensor([0.0, 2.0, 0.0, 2.0], requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 0.0, 0.0, 6.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.0, np.log(2.0), 9.0 * np.log(3.0)], rtol=1e-6)


def test_a_zero_tensor_exponent_has_gradient_zero_also_at_an_infinite_base():
    # y = a^0 = 1 is constant for every a, so abar = 0, as PyTorch and as with the number exponent 0 (above); it was
    # b a^1 = 0 * inf = NaN at a = +-inf and NaN (and 0 * a^2 would be NaN at a = 1e20, whose square overflows float32)
    a = mt.tensor([np.inf, -np.inf, np.nan, 1e20, 2.0], requires_grad=True)
    b = mt.zeros(5, requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0, 0.0, 0.0, 0.0])


class _Position:
    """Not an array, not an int, but usable as one (``__index__``), like a NumPy integer."""

    def __index__(self):
        return 1


@pytest.mark.parametrize("i", [np.int64(1), np.int32(1), np.uint8(1), _Position()], ids=lambda i: type(i).__name__)
def test_numpy_integers_index_like_python_ints(i):
    # x[np.int64(1), 0] was refused as "only one integer array": a NumPy integer has a dtype, like an array
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x[i, 0].item() == 3.0 and x[0, i].item() == 2.0 and x[..., i].tolist() == [2.0, 4.0]
    assert x[i].tolist() == [3.0, 4.0]
    x[i, 0].backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 0.0], [1.0, 0.0]])


def test_arange_with_a_float_argument_is_float():
    # arange(1, 2, 0.25) was int64 by default: [1, 1, 1, 1]; as PyTorch, a float argument makes it float32
    np.testing.assert_array_equal(mt.arange(1, 2, 0.25).numpy(), np.array([1.0, 1.25, 1.5, 1.75], dtype=np.float32))
    assert mt.arange(2.5).tolist() == [0.0, 1.0, 2.0] and mt.arange(2.5).dtype_name == "float32"
    assert mt.arange(3).dtype_name == "int64" and mt.arange(np.int64(3)).dtype_name == "int64"
    with pytest.raises(ValueError, match=r"arange: start=1, stop=2, step=0.25 are not all whole numbers"):
        mt.arange(1, 2, 0.25, dtype="int64")


def test_masked_fill_of_an_integer_tensor_with_an_int():
    # float(value) made the 0 a float, refused with an int64 tensor ("the float 0.0", which the user never wrote)
    mask = mt.tensor([True, False, True])
    filled = mt.tensor([1, 2, 3]).masked_fill(mask, 0)
    assert filled.tolist() == [0, 2, 0] and filled.dtype_name == "int64"
    assert mt.masked_fill(mt.tensor([1.0, 2.0, 3.0]), mask, 0).tolist() == [0.0, 2.0, 0.0]  # an int fills a float
    with pytest.raises(TypeError, match=r"int64 tensor of shape \(3,\) with the float 0.5"):
        mt.tensor([1, 2, 3]).masked_fill(mask, 0.5)
    # a NumPy 0-d array is a number: it fills a float32 tensor as 5.0 does (it was refused as float64)
    assert mt.masked_fill(mt.zeros(3), mask, np.array(5.0)).tolist() == [5.0, 0.0, 5.0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own warnings about 0 ** -1 and (-2) ** 2.5
@pytest.mark.assignment(1, points=5)  # a Pow.backward of bbar = ybar y ln(a) everywhere passed every other graded test
def test_the_exponent_gradient_is_zero_wherever_the_base_is_not_positive():
    # bbar = ybar y ln a is taken as 0 where a <= 0 (the docstring says so); it was NaN where y is inf or NaN
    # (0 ** -1 = inf: inf * 0; (-2) ** 2.5 = NaN), and 0 elsewhere
    a = mt.tensor([0.0, 0.0, -2.0, -2.0, 2.0], dtype="float64", requires_grad=True)
    b = mt.tensor([-1.0, 2.0, 2.0, 2.5, 3.0], dtype="float64", requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.0, 0.0, 0.0, 8.0 * np.log(2.0)],
                               err_msg="Pow.backward: bbar = ybar y ln(a) where a > 0, and 0 where a <= 0")
    for base in (0.0, -2.0):  # a Python number as the base
        x = mt.tensor([-1.0, 2.0, 2.5], dtype="float64", requires_grad=True)
        (base**x).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0],
                                      err_msg=f"Pow.backward of {base} ** x: bbar = 0, the base is not positive")


@pytest.mark.parametrize("index", [lambda x: x[:, 0] > 2.0, lambda x: [True, False, True], lambda x: True,
                                   lambda x: False, lambda x: np.bool_(True), lambda x: (slice(None), [True, False]),
                                   lambda x: (slice(None), x[0] > 1.0)],
                         ids=["tensor mask", "list of bools", "True", "False", "numpy bool", "mask on axis 1",
                              "tensor mask on axis 1"])
def test_a_boolean_mask_index_is_refused_by_getitem(index):
    # x[mask] said "Take: indices must be integers, got bool"; x[True] was read as x[1] on some backends
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    with pytest.raises(IndexError, match=r"^getitem: boolean masks are not supported .* where\(mask, x, 0\.0\)"):
        x[index(x)]


def test_an_empty_list_index_picks_no_rows():
    # x[[]] said "Take: indices must be integers, got float64 with shape (0,)"
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x[[]]
    assert y.shape == (0, 2) and y.dtype_name == "float32"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 2)))
