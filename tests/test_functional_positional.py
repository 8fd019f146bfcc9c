"""sinusoidal_positional_encoding: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitransformer.functional as F


@pytest.mark.assignment(3, points=10)
def test_pe_for_positions_0_to_3_with_d_model_4_by_hand():
    # d_model = 4: frequencies 1 / 10000^(0/4) = 1 and 1 / 10000^(2/4) = 1/100
    expected = [[math.sin(pos), math.cos(pos), math.sin(pos / 100), math.cos(pos / 100)] for pos in range(4)]
    PE = F.sinusoidal_positional_encoding(4, 4, dtype="float64")
    assert PE.shape == (4, 4) and not PE.requires_grad
    np.testing.assert_allclose(PE.numpy(), expected, rtol=1e-14, atol=1e-15,
                               err_msg="row pos = 0, 1, 2, 3: [sin(pos), cos(pos), sin(pos / 100), cos(pos / 100)]")


@pytest.mark.parametrize("d_model", [6, 7])
@pytest.mark.assignment(3, points=10)
def test_pe_matches_the_formula_element_by_element(d_model):
    PE = F.sinusoidal_positional_encoding(10, d_model, dtype="float64").numpy()
    assert PE.shape == (10, d_model)
    for pos in range(10):
        for col in range(d_model):
            two_i = col - col % 2  # columns 2i and 2i + 1 share the frequency
            angle = pos / 10000 ** (two_i / d_model)
            formula = f"{'sin' if col % 2 == 0 else 'cos'}({pos} / 10000^({two_i}/{d_model}))"
            assert PE[pos, col] == pytest.approx(math.sin(angle) if col % 2 == 0 else math.cos(angle), abs=1e-14), (
                f"PE[{pos}, {col}] = {formula}")


@pytest.mark.assignment(3, points=5)
def test_pe_with_odd_d_model_ends_with_a_sine():
    PE = F.sinusoidal_positional_encoding(5, 3, dtype="float64").numpy()
    # column 2 is 2i = 2: sin(pos / 10000^(2/3)), its cosine partner would be column 3, cut off
    np.testing.assert_allclose(PE[:, 2], [math.sin(pos / 10000 ** (2 / 3)) for pos in range(5)], rtol=1e-14)


@pytest.mark.assignment(3, points=5)
def test_pe_is_float32_by_default_and_bounded():
    PE = F.sinusoidal_positional_encoding(50, 16)
    assert PE.dtype_name == "float32"
    values = PE.numpy()
    assert np.all(np.abs(values) <= 1.0)
    np.testing.assert_array_equal(values[0], [0.0, 1.0] * 8,  # position 0: sin 0 = 0, cos 0 = 1
                                  err_msg="position 0: sin 0 = 0 in the even columns, cos 0 = 1 in the odd ones")
    # the angles pos / 10000^(2i/d_model) in float64, rounded to float32 once at the end: an angle of 1000 held in
    # float32 is off by up to 3e-5, and so is its sine, 500 times float32's rounding near 1
    PE = F.sinusoidal_positional_encoding(1000, 16).numpy()
    angle = np.arange(1000.0)[:, None] / 10000.0 ** (np.arange(0, 16, 2) / 16)
    formula = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(1000, 16)
    np.testing.assert_allclose(PE, formula, rtol=0, atol=1.2e-7, err_msg=(
        "PE(1000, 16) in float32: sin and cos of pos / 10000^(2i/16) computed in float64, then rounded once; "
        "computed in float32, the angles near pos = 1000 are off by up to 3e-5"))


def test_pe_sizes_may_be_numpy_integers():
    np.testing.assert_array_equal(F.sinusoidal_positional_encoding(np.int64(3), np.int32(4)).numpy(),
                                  F.sinusoidal_positional_encoding(3, 4).numpy())


def test_pe_bad_input():
    with pytest.raises(ValueError, match=r"sinusoidal_positional_encoding: d_model must be a positive integer, got 0"):
        F.sinusoidal_positional_encoding(4, 0)
    with pytest.raises(ValueError, match=r"sinusoidal_positional_encoding: max_len must be an integer >= 0, got 2.5"):
        F.sinusoidal_positional_encoding(2.5, 4)


@pytest.mark.parametrize("d_model", [1, 4, 5])
def test_pe_with_no_positions_is_an_empty_table(d_model):
    PE = F.sinusoidal_positional_encoding(0, d_model)
    assert PE.shape == (0, d_model) and PE.dtype_name == "float32"


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_pe_refuses_a_dtype_that_is_not_floating_point(dtype):
    """An integer table would silently hold only sin, cos truncated to 0 and 1."""
    with pytest.raises(TypeError, match=rf"sinusoidal_positional_encoding: dtype must be floating point, got {dtype}"):
        F.sinusoidal_positional_encoding(3, 4, dtype=dtype)
