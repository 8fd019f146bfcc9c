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
