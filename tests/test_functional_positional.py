"""sinusoidal_positional_encoding: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same)."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.testing import name_known_mistake_of

from references import pe_np

#: the known wrong tables (the keywords of pe_np that compute each) and what a message says of them
MISTAKES = (
    ({"exponent": lambda col, d: col / d}, "the exponent from the column index, 10000^(c/d_model) for column c "
                                           "(columns 2i and 2i + 1 share 2i/d_model)?"),
    ({"exponent": lambda col, d: 2 * col / d}, "the exponent 2c/d_model, i taken as the column index c (i counts the "
                                               "pairs: columns 2i, 2i + 1)?"),
    ({"exponent": lambda col, d: (col // 2) / d}, "the exponent i/d_model, the 2 of 2i/d_model left out?"),
    ({"swap": True}, "sin and cos swapped (sin belongs in the even columns 2i, cos in the odd ones)?"),
    ({"blocks": True}, "all the sines, then all the cosines (tensor2tensor's layout), not interleaved sin, cos, sin, "
                       "cos, ...?"),
    ({"start": 1}, "the positions counted from 1, not 0?"),
)


def known_mistake(PE, rtol=0.0, atol=1e-6) -> str:
    """Which known wrong table ``PE`` (``(max_len, d_model)``) equals at the assertion's ``rtol``, ``atol``, said as
    the end of a message, or "" (a wrong table equal to the right one for this shape is never named)."""
    PE = np.asarray(PE, dtype=np.float64)
    return name_known_mistake_of(functools.partial(pe_np, *PE.shape), MISTAKES, PE, rtol=rtol, atol=atol, what="table")


@pytest.mark.assignment(3, points=10)
def test_pe_for_positions_0_to_3_with_d_model_4_by_hand():
    # d_model = 4: frequencies 1 / 10000^(0/4) = 1 and 1 / 10000^(2/4) = 1/100
    expected = [[math.sin(pos), math.cos(pos), math.sin(pos / 100), math.cos(pos / 100)] for pos in range(4)]
    PE = F.sinusoidal_positional_encoding(4, 4, dtype="float64")
    assert PE.shape == (4, 4), f"PE of shape {PE.shape}: (max_len, d_model) = (4, 4)"
    assert not PE.requires_grad, "the table is fixed, not learned: no gradient"
    mistake = known_mistake(PE.numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(PE.numpy(), expected, rtol=1e-14, atol=1e-15, err_msg=(
        f"row pos = 0, 1, 2, 3: [sin(pos), cos(pos), sin(pos / 100), cos(pos / 100)]{mistake}"))


@pytest.mark.parametrize("d_model", [6, 7])
@pytest.mark.assignment(3, points=10)
def test_pe_matches_the_formula_element_by_element(d_model):
    PE = F.sinusoidal_positional_encoding(10, d_model, dtype="float64").numpy()
    assert PE.shape == (10, d_model), f"PE of shape {PE.shape}: (max_len, d_model) = {(10, d_model)}"
    mistake = known_mistake(PE, atol=1e-14)
    for pos in range(10):
        for col in range(d_model):
            two_i = col - col % 2  # columns 2i and 2i + 1 share the frequency
            angle = pos / 10000 ** (two_i / d_model)
            formula = f"{'sin' if col % 2 == 0 else 'cos'}({pos} / 10000^({two_i}/{d_model}))"
            assert PE[pos, col] == pytest.approx(math.sin(angle) if col % 2 == 0 else math.cos(angle), abs=1e-14), (
                f"PE[{pos}, {col}] = {formula}{mistake}")


@pytest.mark.assignment(3, points=5)
def test_pe_with_odd_d_model_ends_with_a_sine():
    PE = F.sinusoidal_positional_encoding(5, 3, dtype="float64").numpy()
    assert PE.shape == (5, 3), f"PE of shape {PE.shape}: (max_len, d_model) = (5, 3)"
    # column 2 is 2i = 2: sin(pos / 10000^(2/3)), its cosine partner would be column 3, cut off
    np.testing.assert_allclose(PE[:, 2], [math.sin(pos / 10000 ** (2 / 3)) for pos in range(5)], rtol=1e-14, err_msg=(
        "the last column of d_model = 3, column 2 = 2i: sin(pos / 10000^(2/3)) for pos = 0..4 (its cosine partner "
        f"would be column 3, cut off){known_mistake(PE, 1e-14, 0.0)}"))


@pytest.mark.assignment(3, points=5)
def test_pe_is_float32_by_default_and_bounded():
    PE = F.sinusoidal_positional_encoding(50, 16)
    assert PE.dtype_name == "float32", f"the table is float32 by default, got {PE.dtype_name}"
    values = PE.numpy()
    assert np.all(np.abs(values) <= 1.0), f"sines and cosines lie in [-1, 1], not {abs(values).max()}"
    np.testing.assert_array_equal(values[0], [0.0, 1.0] * 8,  # position 0: sin 0 = 0, cos 0 = 1
                                  err_msg="position 0: sin 0 = 0 in the even columns, cos 0 = 1 in the odd ones"
                                          + known_mistake(values))
    # the angles pos / 10000^(2i/d_model) in float64, rounded to float32 once at the end: an angle of 1000 held in
    # float32 is off by up to 3e-5, and so is its sine, 500 times float32's rounding near 1
    PE = F.sinusoidal_positional_encoding(1000, 16).numpy()
    angle = np.arange(1000.0)[:, None] / 10000.0 ** (np.arange(0, 16, 2) / 16)
    formula = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(1000, 16)
    PE64 = F.sinusoidal_positional_encoding(1000, 16, dtype="float64").numpy()
    if np.allclose(PE64, formula, rtol=0, atol=1e-12):  # then only the float32 table's rounding can be at fault
        why = ("the float64 table is right: compute the angles in float64 whatever the dtype, and round to float32 "
               "once at the end (computed in float32, the angles near pos = 1000 are off by up to 3e-5)")
    else:
        why = ("the float64 table is wrong too, so the formula is: fix test_pe_matches_the_formula_element_by_element "
               f"first{known_mistake(PE64, atol=1e-12)}")
    np.testing.assert_allclose(PE, formula, rtol=0, atol=1.2e-7, err_msg=(
        f"PE(1000, 16) in float32: sin and cos of pos / 10000^(2i/16) computed in float64, then rounded once; {why}"))


def test_pe_sizes_may_be_numpy_integers():
    np.testing.assert_array_equal(F.sinusoidal_positional_encoding(np.int64(3), np.int32(4)).numpy(),
                                  F.sinusoidal_positional_encoding(3, 4).numpy())


def test_pe_bad_input():
    with pytest.raises(ValueError, match=r"sinusoidal_positional_encoding: d_model must be a positive integer, got 0"):
        F.sinusoidal_positional_encoding(4, 0)
    with pytest.raises(TypeError, match=r"sinusoidal_positional_encoding: max_len must be an integer >= 0, got 2.5"):
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


# ------------------------------------------------------------------ the graded tests' messages
@pytest.mark.parametrize("options, said", MISTAKES, ids=[f"mistake{k}" for k in range(len(MISTAKES))])
def test_each_graded_test_names_a_known_wrong_table(monkeypatch, options, said):
    def wrong(max_len, d_model, dtype=None, backend=None):
        return mt.tensor(pe_np(max_len, d_model, **options), dtype=dtype or "float32")

    monkeypatch.setattr(F, "sinusoidal_positional_encoding", wrong)
    tests = [test_pe_for_positions_0_to_3_with_d_model_4_by_hand, test_pe_is_float32_by_default_and_bounded,
             lambda: test_pe_matches_the_formula_element_by_element(7)]
    if not np.allclose(pe_np(5, 3, **options)[:, 2], pe_np(5, 3)[:, 2]):  # (exponent c/d_model: column 2i right)
        tests.append(test_pe_with_odd_d_model_ends_with_a_sine)
    for test in tests:
        with pytest.raises(AssertionError, match=re.escape(f"it equals the known wrong table with {said}")):
            test()


def test_the_float32_hint_is_the_rounding_only_when_the_float64_table_is_right(monkeypatch):
    """With the exponent wrong, the float32 test said the angles lost precision in float32; it blames the rounding
    only when the float64 table is right, and else the formula."""
    right = F.sinusoidal_positional_encoding

    def angles_in_float32(max_len, d_model, dtype=None, backend=None):
        if dtype == "float64":
            return right(max_len, d_model, dtype="float64")
        angle = np.arange(max_len, dtype=np.float32)[:, None] / np.float32(10000.0) ** (
            np.arange(0, d_model, 2, dtype=np.float32) / np.float32(d_model))
        return mt.tensor(np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(max_len, -1)[:, :d_model])

    monkeypatch.setattr(F, "sinusoidal_positional_encoding", angles_in_float32)
    with pytest.raises(AssertionError, match="the float64 table is right: compute the angles in float64") as failed:
        test_pe_is_float32_by_default_and_bounded()
    assert "wrong too" not in str(failed.value)
    monkeypatch.setattr(F, "sinusoidal_positional_encoding",
                        lambda max_len, d_model, dtype=None: mt.tensor(pe_np(max_len, d_model, **MISTAKES[2][0]),
                                                                      dtype=dtype or "float32"))
    with pytest.raises(AssertionError, match=r"the float64 table is wrong too, so the formula is: fix "
                                             r"test_pe_matches_the_formula_element_by_element first; it equals the "
                                             r"known wrong table with the exponent i/d_model") as failed:
        test_pe_is_float32_by_default_and_bounded()
    assert "the float64 table is right" not in str(failed.value)
