"""The document's worked examples (section 4.3): the library's numbers against float64 NumPy written here,
the readings found for each discrepancy, and docs/errata.md kept equal to the code that writes it."""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import worked_examples as we

ROOT = Path(__file__).resolve().parents[1]
x = np.array([1.0, 2.0, 3.0])  # Q = K = V = [1, 2, 3] (document 4.3.1)
DOC = np.array([0.2, 0.3, 0.5])


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def pe_formula(positions, d):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...): the formula of 4.1.3, written out."""
    table = np.zeros((len(positions), d))
    for r, pos in enumerate(positions):
        for j in range(d):
            angle = pos / 10000 ** (2 * (j // 2) / d)
            table[r, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return table


def multi_head_numpy(seed) -> dict:
    """The multi-head example (3 tokens, d_model 6, 2 heads of d_k 3) in float64, from the seeded generator the
    example documents: X = E + PE, the W's / sqrt(6), and each head's scores, weights and output."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((3, 6))
    W_Q, W_K, W_V, W_O = (rng.standard_normal((6, 6)) / np.sqrt(6) for _ in range(4))
    X = E + pe_formula(range(3), 6)
    ex = {"X": X, "W_Q": W_Q, "W_K": W_K, "W_V": W_V, "W_O": W_O, "scores": [], "weights": [], "heads": []}
    for b in (slice(0, 3), slice(3, 6)):
        s = (X @ W_Q[:, b]) @ (X @ W_K[:, b]).T / np.sqrt(3)
        ex["scores"].append(s)
        ex["weights"].append(softmax(s))
        ex["heads"].append(softmax(s) @ (X @ W_V[:, b]))
    return ex


# ------------------------------------------------------------------ 4.3.1 self-attention
@pytest.fixture(scope="module")
def sa_numpy():
    """Every reading of [0.2, 0.3, 0.5], computed here independently."""
    scores = np.outer(x, x)  # three scalar tokens: q_i k_j
    W3, W1 = softmax(scores / np.sqrt(3)), softmax(scores / 1.0)
    return {"W3": W3, "W1": W1, "O3": W3 @ x, "O1": W1 @ x}


@pytest.mark.assignment(2, points=5)
def test_self_attention_outputs_match_numpy(to_numpy, sa_numpy):
    ex = we.self_attention_example()
    out, w = ex.attention["one token, d_k = 3"]
    np.testing.assert_allclose(to_numpy(out), [[1.0, 2.0, 3.0]], rtol=0, atol=1e-15,  # one key: weight 1, output V
                               err_msg="one token, d_k = 3: its one key gets weight 1, so the output is V")
    np.testing.assert_array_equal(to_numpy(w), [[1.0]], err_msg="one token, d_k = 3: the weights softmax([s]) = [[1]]")
    out, w = ex.attention["three scalar tokens, d_k = 1"]
    np.testing.assert_allclose(to_numpy(w), sa_numpy["W1"], rtol=1e-12, err_msg=(
        "three scalar tokens [1, 2, 3], d_k = 1: weights softmax(x x^T / 1) over the keys (axis -1)"))
    np.testing.assert_allclose(to_numpy(out)[:, 0], sa_numpy["O1"], rtol=1e-12,
                               err_msg="three scalar tokens, d_k = 1: output weights @ V")
    out, w = ex.attention["three scalar tokens, divided by sqrt(3)"]
    np.testing.assert_allclose(to_numpy(w), sa_numpy["W3"], rtol=1e-12, err_msg=(
        "three scalar tokens [1, 2, 3], divided by sqrt(3): weights softmax(x x^T / sqrt(3)) over the keys (axis -1)"))
    np.testing.assert_allclose(to_numpy(out)[:, 0], sa_numpy["O3"], rtol=1e-12,
                               err_msg="three scalar tokens, divided by sqrt(3): output weights @ V")
    assert all(out.dtype_name == "float64" for out, _ in ex.attention.values())
    # an output is an average of the values: inside [1, 3], so never the document's [0.2, 0.3, 0.5]
    assert sa_numpy["O1"].min() >= 1 and sa_numpy["O3"].max() <= 3
    # the divisor itself, which none of the readings shows (one key weighs 1 whatever the scores; d_k = 1 divides by
    # 1; the sqrt(3) reading divides before the call): the document's token and its reverse, d_k = 3
    X = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    _, w = F.scaled_dot_product_attention(*(mt.tensor(X) for _ in range(3)))
    by = {divisor: softmax(X @ X.T / divisor) for divisor in (np.sqrt(3), 3.0, 1.0)}
    said = {3.0: "; it equals the scores divided by d_k, not sqrt(d_k)",
            1.0: "; it equals the scores not divided by sqrt(d_k)"}
    mistake = next((why for d, why in said.items() if np.allclose(to_numpy(w), by[d], rtol=1e-12)), "")
    np.testing.assert_allclose(to_numpy(w), by[np.sqrt(3)], rtol=1e-12, err_msg=(
        "tokens [1, 2, 3] and [3, 2, 1], d_k = 3: weights softmax(Q K^T / sqrt(3)) over the keys" + mistake))


def test_self_attention_closest_reading_is_row_1_of_the_weights_divided_by_sqrt3(sa_numpy):
    ex = we.self_attention_example()
    # by hand: softmax([1, 2, 3] / sqrt 3) = [0.168, 0.299, 0.533] -> rounds to [0.2, 0.3, 0.5]
    row1 = sa_numpy["W3"][0]
    assert ex.closest.name == "weights row 1, scalar tokens, /sqrt(3)"
    np.testing.assert_allclose(ex.closest.value, row1, rtol=1e-12)
    assert ex.closest.distance == pytest.approx(np.abs(row1 - DOC).max(), rel=1e-12)
    assert ex.closest.distance == pytest.approx(0.0329, abs=1e-4)
    assert ex.closest.rounds_to_document and np.array_equal(np.round(row1, 1), DOC)
    # runner-up: V / sum(V) = [1/6, 1/3, 1/2], 1/30 away: also rounds to the document, but has no softmax
    second = ex.readings[1]
    assert second.name == "V / sum(V)"
    np.testing.assert_allclose(second.value, x / x.sum(), rtol=1e-15)
    assert second.distance == pytest.approx(1 / 30, rel=1e-12) and second.rounds_to_document
    assert ex.closest.distance < second.distance
    # the formula's own row 1 (d_k = 1) is further: softmax([1, 2, 3]) = [0.090, 0.245, 0.665]
    formula = ex.reading("weights row 1, scalar tokens, d_k = 1")
    np.testing.assert_allclose(formula.value, sa_numpy["W1"][0], rtol=1e-12)
    assert not formula.rounds_to_document


def test_self_attention_readings_are_ranked_and_complete(sa_numpy):
    ex = we.self_attention_example()
    distances = [r.distance for r in ex.readings]
    assert distances == sorted(distances)
    expected = {  # every candidate, computed here
        "output, one token of dimension 3": x,
        "output, scalar tokens, d_k = 1": sa_numpy["O1"],
        "output, scalar tokens, /sqrt(3)": sa_numpy["O3"],
        "output / sum, scalar tokens, d_k = 1": sa_numpy["O1"] / sa_numpy["O1"].sum(),
        "output / sum, scalar tokens, /sqrt(3)": sa_numpy["O3"] / sa_numpy["O3"].sum(),
        "V / sum(V)": x / x.sum(),
        **{f"weights row {i + 1}, scalar tokens, d_k = 1": sa_numpy["W1"][i] for i in range(3)},
        **{f"weights row {i + 1}, scalar tokens, /sqrt(3)": sa_numpy["W3"][i] for i in range(3)},
    }
    assert {r.name for r in ex.readings} == set(expected)
    for r in ex.readings:
        np.testing.assert_allclose(r.value, expected[r.name], rtol=1e-12, err_msg=r.name)
        assert r.distance == pytest.approx(np.abs(expected[r.name] - DOC).max(), rel=1e-12)
        assert r.rounds_to_document == bool(np.array_equal(np.round(expected[r.name], 1), DOC)), r.name
    assert [r.name for r in ex.readings if r.rounds_to_document] == ["weights row 1, scalar tokens, /sqrt(3)",
                                                                      "V / sum(V)"]


def test_self_attention_divisors_that_round_to_the_document():
    """The numbers do not single out sqrt(3): softmax([1, 2, 3] / t) rounds to them over a range of divisors t."""
    low, high, best, distance = we.self_attention_example().divisors
    t = np.arange(1000, 4001) / 1000
    e = np.exp(x[None, :] / t[:, None])
    rows = e / e.sum(axis=1, keepdims=True)
    rounds = np.all(np.round(rows, 1) == DOC, axis=1)
    assert rounds.any() and np.all(rounds[rounds.argmax():][:rounds.sum()])  # one interval
    assert (low, high) == (t[rounds].min(), t[rounds].max()) and low < np.sqrt(3) < high
    far = np.abs(rows - DOC).max(axis=1)
    assert best == t[far.argmin()] and distance == pytest.approx(far.min(), rel=1e-12)
    assert distance < we.self_attention_example().closest.distance  # closer than sqrt(3)'s row
    text = we.errata()[0].explanation
    assert f"for every divisor t from {low:.2f} to {high:.2f}, and comes closest at t = {best:.2f}" in text


# ------------------------------------------------------------------ 4.3.1 positional encoding
@pytest.mark.assignment(3, points=5)
def test_positional_encoding_tables_match_numpy(to_numpy):
    ex = we.positional_encoding_example()
    np.testing.assert_allclose(to_numpy(ex.formula_table), pe_formula(range(4), 3), rtol=0, atol=1e-15, err_msg=(
        "the formula's table for positions 0..3, d_model = 3: sinusoidal_positional_encoding(4, 3) in float64 (if "
        "test_functional_positional.py fails too, fix that first)"))
    pos = np.array([1, 2, 3])
    np.testing.assert_allclose(ex.document_table, np.stack([np.cos(pos / 1e4), np.sin(pos / 1e4)], axis=1),
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(ex.divisors, [1.0, 1.0, 10000 ** (2 / 3)], rtol=1e-15)
    assert ex.divisors[2] == pytest.approx(464.1589, abs=1e-4)


def test_positional_encoding_readings():
    ex = we.positional_encoding_example()
    pos = np.array([1, 2, 3])
    doc = np.stack([np.cos(pos / 1e4), np.sin(pos / 1e4)], axis=1)
    # the document's list is reproduced exactly by the formula with its pairs and columns counted from 1 and d = 2:
    # pair i = 1 is columns 2i - 1 = 1 (cos) and 2i = 2 (sin), both divided by 10000^(2i/d) = 10000^(2/2)
    d, i = 2, 1
    divisor = 10000 ** (2 * i / d)
    assert divisor == 10000
    counted_from_one = np.stack([np.cos(pos / divisor), np.sin(pos / divisor)], axis=1)
    assert ex.closest.name == "formula counted from 1, d = 2, pair i = 1"
    np.testing.assert_array_equal(ex.closest.value, counted_from_one)
    assert ex.closest.distance == np.abs(counted_from_one - doc).max() == 0.0
    # read 0-based, the document's indices 1 and 2 are in two pairs (i = 0, 1): different divisors, never both 10000
    np.testing.assert_allclose([10000 ** (2 * (j // 2) / 3) for j in (1, 2)], [1.0, 464.1589], rtol=1e-6)
    # dividing by 10000 in every dimension (the formula changed, not read) gives the same numbers
    same = ex.reading("pos/10000 in every dimension")
    assert same.distance < 1e-12 and ex.readings[1] is same
    # the formula, its indices read 0-based (index 1 -> column 1, 2 -> column 2) at positions 1..3
    zero_based = ex.reading("formula d = 3, 0-based indices, positions 1, 2, 3")
    expected = pe_formula(pos, 3)[:, [1, 2]]  # cos(pos), sin(pos / 10000^(2/3))
    np.testing.assert_allclose(zero_based.value, expected, rtol=1e-12)
    assert zero_based.distance == pytest.approx(np.abs(expected - doc).max(), rel=1e-12)
    assert zero_based.distance == pytest.approx(1 - np.cos(3), abs=1e-6)  # at pos 3: cos(0.0003) - cos(3) = 1.99
    one_based = ex.reading("formula d = 3, 1-based indices, positions 0, 1, 2 (1-based labels)")
    np.testing.assert_allclose(one_based.value, pe_formula(pos - 1, 3)[:, [0, 1]], rtol=1e-12)
    # the slowest pair of a 512-wide table is close: columns 511 (cos) and 510 (sin)
    wide = ex.reading("lowest-frequency pair of d = 512")
    np.testing.assert_allclose(wide.value, pe_formula(pos, 512)[:, [511, 510]], rtol=1e-12)
    assert wide.distance == pytest.approx(np.abs(pe_formula(pos, 512)[:, [511, 510]] - doc).max(), rel=1e-9)
    assert wide.distance < 2e-5
    # its stated divisor: by hand, 10000^(510/512) = 9646.6 (the wavelength factor 9647 of functional's docstring)
    assert wide.formula.endswith("divisor 10000^(510/512) = 9647")
    assert [r.distance for r in ex.readings] == sorted(r.distance for r in ex.readings)
    assert len(ex.readings) == 7


def test_positional_encoding_which_indices_match():
    ex = we.positional_encoding_example()
    # formula: even 0-based index -> sin, odd -> cos. Document: index 1 cos, index 2 sin.
    assert ex.function_agreement == {"0-based": (True, True), "1-based": (False, False)}
    full = pe_formula([1, 2, 3], 512)
    doc = np.stack([np.cos(np.arange(1, 4) / 1e4), np.sin(np.arange(1, 4) / 1e4)], axis=1)
    for n, k in enumerate((1, 2)):
        distances = np.abs(full - doc[:, [n]]).max(axis=0)
        assert ex.wide_columns[k][0] == int(distances.argmin())
        assert ex.wide_columns[k][1] == pytest.approx(distances.min(), rel=1e-9)
    assert {k: c for k, (c, _) in ex.wide_columns.items()} == {1: 511, 2: 510}


# ------------------------------------------------------------------ 4.3.2 multi-head
@pytest.mark.assignment(3, points=5)
def test_multi_head_example_matches_numpy(to_numpy):
    # graded for A3's positional encoding: the example's heads are A2's attention, a loop of its own
    ex = we.multi_head_example(seed=0)
    ref = multi_head_numpy(0)
    np.testing.assert_allclose(to_numpy(ex.X), ref["X"], rtol=1e-12, err_msg=(
        "X = embeddings + PE (3 positions, d_model = 6), PE from sinusoidal_positional_encoding: if "
        "test_functional_positional.py fails too, fix that first"))
    for name in ("W_Q", "W_K", "W_V", "W_O"):
        np.testing.assert_array_equal(to_numpy(getattr(ex, name)), ref[name])
    X, heads = ref["X"], ref["heads"]
    for name in ("scores", "weights", "heads"):
        np.testing.assert_allclose(to_numpy(getattr(ex, name)), np.stack(ref[name]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(ex.output), np.concatenate(heads, axis=1) @ ref["W_O"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(ex.weights).sum(axis=-1), 1.0, rtol=1e-12)
    assert ex.heads_difference == pytest.approx(np.abs(heads[0] - heads[1]).max(), rel=1e-9)
    # the document's heads (no W_i): the same expression twice, identical
    unprojected = softmax(X @ X.T / np.sqrt(3)) @ X
    np.testing.assert_allclose(to_numpy(ex.unprojected_heads), np.stack([unprojected] * 2), rtol=1e-10)
    assert ex.unprojected_heads_difference == 0.0


def test_multi_head_seed():
    a, b, c = we.multi_head_example(1), we.multi_head_example(1), we.multi_head_example(2)
    np.testing.assert_array_equal(a.output.numpy(), b.output.numpy())
    assert not np.allclose(a.output.numpy(), c.output.numpy())
    # the default is seed 0, the seed of docs/errata.md and of the notebooks' multi_head_example(seed=0)
    default = we.multi_head_example()
    assert default.seed == 0
    np.testing.assert_array_equal(default.document_embeddings.numpy(),
                                  np.random.default_rng(0).standard_normal((3, 6))[:, :2])


def test_per_head_plus_one_is_a_rotation_that_keeps_every_dot_product(to_numpy):
    ex = we.multi_head_example(seed=0)
    pos = np.arange(1, 4)
    h1 = np.stack([np.cos(pos / 1e4), np.sin(pos / 1e4)], axis=1)
    h2 = np.stack([np.cos(pos / 1e4 + 1), np.sin(pos / 1e4 + 1)], axis=1)
    np.testing.assert_allclose(to_numpy(ex.document_head_pe), np.stack([h1, h2]), rtol=0, atol=1e-15)
    assert ex.head_pe_gram_difference == pytest.approx(np.abs(h1 @ h1.T - h2 @ h2.T).max(), abs=1e-14)
    assert ex.head_pe_gram_difference < 1e-12
    np.testing.assert_allclose(ex.head_pe_rotation, 1.0, atol=1e-7)  # acos near 1 rad: well conditioned
    np.testing.assert_allclose(to_numpy(ex.PE), pe_formula(range(3), 6), atol=1e-15)


def test_per_head_plus_one_changes_the_scores_but_head_2_is_head_1_on_rotated_embeddings(to_numpy):
    """The document's reading of 4.3.2: each head's encoding added to the same embeddings, no projections."""
    ex = we.multi_head_example(seed=0)
    pos = np.arange(1, 4)
    pe = [np.stack([np.cos(pos / 1e4 + h), np.sin(pos / 1e4 + h)], axis=1) for h in (0, 1)]
    E = np.random.default_rng(0).standard_normal((3, 6))[:, :2]  # the example's embeddings, first 2 columns
    np.testing.assert_array_equal(to_numpy(ex.document_embeddings), E)
    X = [E + p for p in pe]
    scores = [x @ x.T / np.sqrt(3) for x in X]
    heads = [softmax(s) @ x for s, x in zip(scores, X, strict=True)]
    np.testing.assert_allclose(to_numpy(ex.document_scores), np.stack(scores), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_numpy(ex.document_heads), np.stack(heads), rtol=1e-12, atol=1e-14)
    # the encodings' own dot products agree, the scores do not: the cross terms E PE^T change
    assert np.abs(pe[0] @ pe[0].T - pe[1] @ pe[1].T).max() < 1e-12
    assert ex.document_scores_difference == pytest.approx(np.abs(scores[0] - scores[1]).max(), rel=1e-9)
    assert ex.document_heads_difference == pytest.approx(np.abs(heads[0] - heads[1]).max(), rel=1e-9)
    assert ex.document_scores_difference > 0.5 and ex.document_heads_difference > 0.5
    # head 2 on E is head 1 on E turned by -1 rad, its output turned back by +1 rad
    M = np.array([[np.cos(1.0), np.sin(1.0)], [-np.sin(1.0), np.cos(1.0)]])
    np.testing.assert_allclose(pe[1], pe[0] @ M, atol=1e-15)
    turned = E @ M.T + pe[0]
    np.testing.assert_allclose(heads[1], softmax(turned @ turned.T / np.sqrt(3)) @ turned @ M, atol=1e-14)
    assert ex.document_heads_rotated_difference < 1e-12


# ------------------------------------------------------------------ the errata
def test_errata_structure():
    errata = we.errata()
    assert [f.name for f in dataclasses.fields(we.Erratum)] == [
        "section", "claim", "document_value", "computed_value", "plausible_reading", "explanation"]
    assert [e.section for e in errata] == ["4.3.1", "4.3.1, 4.3.2 (head 1)", "4.3.1, 4.3.2 (head 1)", "4.3.2", "4.2.3",
                                           "4.3.1, 4.3.2 (and 4.1.1 in Chinese)", "4.1.2, 4.3.2", "4.3.1", "4.1.3",
                                           "4.2.2"]
    for e in errata:
        assert all(isinstance(getattr(e, f), str) and getattr(e, f) for f in
                   ("claim", "document_value", "computed_value", "plausible_reading", "explanation"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        errata[0].section = "x"


def test_errata_values(sa_numpy):
    output, pe_args, pe_indices, per_head, learned, naming, projections, bare_qkv, *_ = we.errata()
    fmt = lambda v: "[" + ", ".join(f"{a:.3f}" for a in v) + "]"  # noqa: E731
    assert output.document_value == "[0.2, 0.3, 0.5]"
    assert fmt(sa_numpy["O1"]) in output.computed_value and fmt(x) in output.computed_value
    assert output.plausible_reading.startswith(f"weights row 1, scalar tokens, /sqrt(3): {fmt(sa_numpy['W3'][0])}")
    assert f"{np.abs(sa_numpy['W3'][0] - DOC).max():.4f}" in output.plausible_reading
    assert f"V / sum(V) = {fmt(x / x.sum())}" in output.plausible_reading
    assert f"{10000 ** (2 / 3):.2f}" in pe_args.computed_value
    assert "pos 1: [1.0000, 0.0001]" in pe_args.document_value
    assert "pos 3: [0.1411, -0.9900, 0.0065]" in pe_args.computed_value  # sin 3, cos 3, sin(3 / 464.16)
    assert pe_args.plausible_reading.startswith("formula counted from 1, d = 2, pair i = 1: ")
    assert "(max difference 0.0)" in pe_args.plausible_reading
    assert "in two pairs, with divisors [1.00, 464.16]" in pe_args.explanation
    assert "divisors [1.00, 464.16] where the document has one argument" in pe_indices.plausible_reading
    assert "most likely meant" not in pe_indices.explanation and "no column of" not in pe_args.explanation
    assert "columns 511 and 510" in pe_args.plausible_reading
    assert "agree at 2 of 2" in pe_indices.plausible_reading and "at 0 of 2" in pe_indices.plausible_reading
    assert "[0.5402, 0.8415]" in per_head.document_value  # cos(1.0001), sin(1.0001)
    assert "below 1e-12" in per_head.plausible_reading
    ex = we.multi_head_example(0)
    assert f"max |scores^1 - scores^2| = {ex.document_scores_difference:.3f}" in per_head.explanation
    assert f"differ by up to {ex.document_heads_difference:.3f}" in per_head.explanation
    assert "head 2 is head 1 applied to the embeddings turned by -1 rad" in per_head.explanation
    assert "has 0 parameters" in learned.computed_value and f"has {3 * 6}" in learned.computed_value
    assert "requires_grad = False" in learned.computed_value
    assert "output (head_i)" in naming.plausible_reading
    assert f"{ex.heads_difference:.3f}" in projections.computed_value
    assert "below 1e-12 (identical heads)" in projections.computed_value
    assert f"per-head encodings (erratum 4; the embeddings' first 2 columns): {ex.document_heads_difference:.3f}" \
        in projections.computed_value
    # 8: Q = K = V = [1, 2, 3] holds neither the encoding nor the projections
    assert bare_qkv.document_value.startswith("Q = K = V = [1.0, 2.0, 3.0]")
    assert f"as one token of dimension 3, {fmt(x + pe_formula([0], 3)[0])}" in bare_qkv.computed_value
    assert f"as three tokens of dimension 1 (d = 1: PE = sin(pos)), {fmt(x + np.sin(np.arange(3)))}" \
        in bare_qkv.computed_value
    X, W_Q, W_K, W_V = (ex.X.numpy(), ex.W_Q.numpy(), ex.W_K.numpy(), ex.W_V.numpy())
    Q, K, V = X @ W_Q[:, :3], X @ W_K[:, :3], X @ W_V[:, :3]
    S = Q @ K.T / np.sqrt(3)
    assert f"max |Q - K| = {np.abs(Q - K).max():.3f}" in bare_qkv.computed_value
    assert f"max |Q - V| = {np.abs(Q - V).max():.3f}" in bare_qkv.computed_value
    assert f"max |S - S^T| = {np.abs(S - S.T).max():.3f}" in bare_qkv.computed_value
    assert "erratum 7" in bare_qkv.plausible_reading


def test_errata_numbers_in_the_text_match_numpy(sa_numpy):
    """Numbers the errata's text states, each recomputed here in plain NumPy."""
    output, pe_args, pe_indices, per_head, *_ = we.errata()
    fmt = lambda v, n=3: "[" + ", ".join(f"{a:.{n}f}" for a in v) + "]"  # noqa: E731
    # 1: the three scalar tokens divided by sqrt(3): softmax(x x^T / sqrt 3) x = [2.365, 2.637, 2.802]
    assert fmt(sa_numpy["O3"]) == "[2.365, 2.637, 2.802]"
    assert f"three scalar tokens divided by sqrt(3): {fmt(sa_numpy['O3'])}" in output.computed_value
    # ... and with d_k = 1, its first row of weights is [0.090, 0.245, 0.665], its output [2.575, 2.851, 2.948]
    assert f"its first row of weights is {fmt(sa_numpy['W1'][0])}" in output.explanation
    assert f"its output is {fmt(sa_numpy['O1'])}" in output.explanation
    # 2: the largest change of a component between neighbouring positions, the document's and the formula's
    pos = np.array([1, 2, 3])
    doc = np.stack([np.cos(pos / 1e4), np.sin(pos / 1e4)], axis=1)
    first_pair = pe_formula(pos, 3)[:, :2]  # sin(pos), cos(pos)
    doc_change, formula_change = np.abs(np.diff(doc, axis=0)).max(), np.abs(np.diff(first_pair, axis=0)).max()
    assert f"{doc_change:.4f}" == "0.0001" and f"{formula_change:.4f}" == "0.9564"
    assert f"(the largest change between neighbours: {doc_change:.4f})" in pe_args.explanation
    assert f"turns by a whole radian per position (largest change {formula_change:.4f})" in pe_args.explanation
    # 2: the formula with d = 3, indices read 1-based (index k -> column k - 1) at positions 1, 2, 3
    one_based = np.abs(pe_formula(pos, 3)[:, [0, 1]] - doc).max()
    zero_based = np.abs(pe_formula(pos, 3)[:, [1, 2]] - doc).max()
    assert f"{one_based:.4f}" == "0.9903"
    assert f"The formula with d = 3 is {one_based:.4f} (indices read 1-based) to {zero_based:.4f} (0-based) away" \
        in pe_args.plausible_reading
    # 3: the first token, pos = 0, has the encoding [sin 0, cos 0, sin 0] = [0, 1, 0]
    first = pe_formula([0], 3)[0]
    np.testing.assert_array_equal(first, [0.0, 1.0, 0.0])
    assert f"give the first token pos = 0, whose encoding is {fmt(first, 0)}:" in pe_indices.explanation
    # 4: head 2's "+1" is moving every position by 10000: cos((pos + 10000) / 10000) = cos(pos / 10000 + 1)
    head2 = np.stack([np.cos(pos / 1e4 + 1), np.sin(pos / 1e4 + 1)], axis=1)
    moved = np.stack([np.cos((pos + 10000) / 1e4), np.sin((pos + 10000) / 1e4)], axis=1)
    np.testing.assert_allclose(head2, moved, rtol=0, atol=1e-15)
    assert "which equals moving every position by 10000," in per_head.plausible_reading


def test_erratum_9_i_numbers_the_pairs_and_an_odd_d_leaves_a_sine_unpaired():
    """4.1.3's "i is the dimension index": the formula's columns are 2i and 2i + 1, so i numbers the pairs."""
    pair_index = we.errata()[8]
    assert pair_index.section == "4.1.3" and pair_index.document_value == "i is the dimension index"
    row = pe_formula([1], 3)[0]  # d = 3, pos = 1: sin(1), cos(1), sin(1 / 10000^(2/3))
    np.testing.assert_allclose(row, [np.sin(1), np.cos(1), np.sin(1 / 10000 ** (2 / 3))], rtol=1e-15)
    fmt = lambda v, n: "[" + ", ".join(f"{a:.{n}f}" for a in v) + "]"  # noqa: E731
    assert f"the library's table at pos = 1: {fmt(row, 4)} = [sin(1/1.00), cos(1/1.00), sin(1/464.16)]" \
        in pair_index.computed_value
    assert "i = j // 2 = [0, 0, 1], 2 frequencies for 3 columns" in pair_index.computed_value
    # column 2 of d = 3 is a sine whose cosine partner (column 3) is outside: the 4-wide table's column 3 is it
    wider = pe_formula([1], 4)[0]
    assert np.cos(1 / 10000 ** (2 / 4)) == pytest.approx(wider[3]) and row.shape == (3,)
    # i read as the dimension index j: one divisor per column, 10000^(2j/d), the last past 10000
    per_column = 10000 ** (2 * np.arange(3) / 3)
    assert f"divisors 10000^(2j/d) = {fmt(per_column, 2)}" in pair_index.computed_value and per_column[-1] > 10000
    assert "odd d" in pair_index.explanation and "unpaired" in pair_index.explanation


def test_erratum_10_every_head_weighs_every_position():
    """4.2.2's "each head focuses on different parts": a head's softmax covers every key; heads differ by W_i."""
    heads = we.errata()[9]
    assert heads.section == "4.2.2"
    ref = multi_head_numpy(0)
    weights = np.stack(ref["weights"])  # (heads, L, S)
    assert (weights > 0).all()
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    assert f"positive weight (smallest {weights.min():.3f}, largest {weights.max():.3f})" in heads.computed_value
    assert f"weights differ by up to {np.abs(weights[0] - weights[1]).max():.3f}" in heads.computed_value
    # without projections (the document's 4.3.2 on one X) the two heads are one expression: identical (the values
    # are checked against NumPy in test_multi_head_example_matches_numpy)
    assert "writes the heads: max |head_1 - head_2| below 1e-12" in heads.computed_value
    assert "erratum 7" in heads.explanation and "erratum 10" in we.errata()[6].explanation
    assert "attend to different things" not in we.errata()[6].explanation


@pytest.mark.needs("docs/conf.py")  # the site's sources: a copy's pages are rewritten as plain Markdown
def test_docs_errata_md_is_the_functions_output():
    """docs/errata.md is generated; regenerate with `python -m minitransformer.worked_examples --markdown --out ...`.

    Runs on every backend: the page must not depend on which one computed it.
    """
    committed = (ROOT / "docs" / "errata.md").read_text(encoding="utf-8")
    assert committed == we.errata_markdown(), (
        "docs/errata.md is out of date: python -m minitransformer.worked_examples --markdown --out docs/errata.md")


def test_markdown_escapes_table_pipes():
    text = we.errata_markdown()
    assert text.count("\n## ") == len(we.errata()) + 1  # and section 5's, last
    assert text.endswith("\n\n" + "\n".join(we.SECTION_5) + "\n")
    for line in text.splitlines():
        if line.startswith("| computed |") or line.startswith("| plausible reading |"):
            assert line.replace("\\|", "").count("|") == 3, line


def test_report_puts_document_beside_computation(sa_numpy):
    text = we.report()
    for heading in ("Document section 4.3.1: self-attention", "Document section 4.3.1: positional encodings",
                    "Document section 4.3.2: two heads", "Errata"):
        assert heading in text
    row = next(line for line in text.splitlines() if "weights row 1, scalar tokens, /sqrt(3)" in line)
    assert "yes" in row and "[0.168, 0.299, 0.533]" in row
    pos3 = next(line for line in text.splitlines() if line.strip().startswith("3  [1.0000, 0.0003]"))
    assert "[0.1411, -0.9900, 0.0065]" in pos3  # the document's and the formula's values on one line
    assert text.count("\n  1. [4.3.1]") == 1
    # the default seed is 0, as in docs/errata.md: its heads' difference, recomputed here
    head1, head2 = multi_head_numpy(0)["heads"]
    assert "two heads of d_k = 3 (seed 0)" in text
    assert f"max |head_1 - head_2|: {np.abs(head1 - head2).max():.3f} with W_i" in text


def test_report_with_errata_in_brief_lists_each_claim_on_one_line(sa_numpy):
    full, brief = we.report(), we.report(errata_in_full=False)
    assert brief.split("\n\nErrata")[0] == full.split("\n\nErrata")[0]  # the worked examples, unchanged
    claims = brief.split("\n\nErrata: ")[1].splitlines()[1:]
    assert claims == [f"  {n}. [{e.section}] {e.claim}" for n, e in enumerate(we.errata(), start=1)]
    assert "document:" not in brief.split("\n\nErrata")[1]
    # the document's cos, sin at indices 1, 2 are the formula's read 0-based (1 odd: cos; 2 even: sin), not 1-based
    assert "the formula's at those indices (sin at even, cos at odd): 2 of 2 read 0-based, 0 of 2 read 1-based" in full


def test_tiny_differences_are_printed_below_1e12_only_when_they_are():
    """A difference that should be zero is printed "below 1e-12": the bound printed is the bound tested."""
    assert we._tiny(0.0) == "below 1e-12" and we._tiny(3e-16) == "below 1e-12"
    assert we._tiny(1.5e-12) == "= 1.5e-12" and we._tiny(0.25) == "= 2.5e-01"


@pytest.mark.single_backend
def test_main_prints_markdown(capsys, monkeypatch):
    assert we.main(["--markdown"]) == 0
    assert capsys.readouterr().out == we.errata_markdown()
    assert we.main([]) == 0
    assert capsys.readouterr().out.startswith("Document section 4.3.1")
    # `python -m minitransformer.worked_examples --markdown`: no argv given, the flag read from sys.argv[1:]
    monkeypatch.setattr(sys, "argv", ["python -m minitransformer.worked_examples", "--markdown"])
    assert we.main() == 0
    assert capsys.readouterr().out == we.errata_markdown()


@pytest.mark.single_backend
def test_main_writes_the_page_in_utf8_and_prints_it_on_a_console_that_lacks_its_characters(tmp_path, monkeypatch,
                                                                                          capsys):
    """Windows' pipe is cp1252, which has no 注 or π: ``--markdown > docs/errata.md`` stopped with a
    UnicodeEncodeError and left the file empty. ``--out`` writes UTF-8 whatever the console; printed, they are ``?``."""
    out = tmp_path / "errata.md"
    assert we.main(["--markdown", "--out", str(out)]) == 0
    assert out.read_bytes() == we.errata_markdown().encode("utf-8") and capsys.readouterr().out == ""
    assert we.main(["--markdown", "--out"]) == 2
    assert "--out needs a FILE" in capsys.readouterr().err
    assert we.main(["--markdown", "--out", str(tmp_path)]) == 2  # a folder: one line, not an IsADirectoryError
    assert capsys.readouterr().err == (f"python -m minitransformer.worked_examples: --out {tmp_path}: is a folder, "
                                       "not a file: remove or rename it\n")
    console = io.TextIOWrapper(io.BytesIO(), encoding="cp1252", newline="\n")  # no \r\n on Windows
    monkeypatch.setattr(sys, "stdout", console)
    assert we.main(["--markdown"]) == 0
    console.flush()
    assert console.buffer.getvalue() == we.errata_markdown().encode("cp1252", "replace")


@pytest.mark.parametrize("call, error, message", [
    (lambda: we.multi_head_example(seed=-1), ValueError, r"multi_head_example: seed must be an integer >= 0, got -1"),
    (lambda: we.multi_head_example(seed="a"), TypeError, r"multi_head_example: seed must be an integer >= 0, got 'a'"),
    (lambda: we.errata(seed=1.5), TypeError, r"multi_head_example: seed must be an integer >= 0, got 1.5"),
    (lambda: we.multi_head_example(heads=0), ValueError,
     r"multi_head_example: heads must be a positive integer, got 0"),
    (lambda: we.multi_head_example(heads=1, d_k=1), ValueError,
     r"multi_head_example: heads \* d_k = 1; .* needs d_model >= 2"),
])
def test_examples_refuse_bad_arguments_by_name(call, error, message):
    # these failed inside NumPy's seeding, or blamed sinusoidal_positional_encoding for heads=0
    with pytest.raises(error, match=message):
        call()
