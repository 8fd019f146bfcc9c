"""scaled_dot_product_attention: by hand, by finite differences (with masks), and against PyTorch."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.testing import close_to_torch, name_known_mistake_of
from minitransformer.testing import rel_err as _rel_err


def _attention_np(Q, K, V, allowed=None, d_k_power=0.5, axis=-1, hidden=None, inverted=False, empty_rows_zero=True):
    """softmax(Q K^T / sqrt(d_k)) V in plain float64 NumPy, hidden keys left out of each row's sum; returns
    ``(output, weights)``.

    The other keywords compute the known wrong answers that :func:`_known_mistake` names: the scores divided by
    ``d_k ** d_k_power`` (0.5: sqrt(d_k)), the softmax along ``axis``, hidden scores set to ``hidden`` (not the most
    negative float), the mask ``inverted``, and rows with no allowed key left as the softmax makes them
    (``empty_rows_zero=False``).
    """
    scores = Q @ np.swapaxes(K, -1, -2) / Q.shape[-1] ** d_k_power
    if allowed is not None:
        allowed = np.broadcast_to(np.asarray(allowed, dtype=bool), scores.shape)
        kept = ~allowed if inverted else allowed  # (inverted: in the where only, as `where(mask, hidden, scores)`)
        scores = np.where(kept, scores, np.finfo(np.float64).min if hidden is None else hidden)
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    weights = e / e.sum(axis=axis, keepdims=True)
    if allowed is not None and empty_rows_zero:
        weights = np.where(allowed.any(axis=-1, keepdims=True), weights, 0.0)
    return weights @ V, weights


#: the known wrong answers (the keywords of _attention_np that compute each) and what a message says of them
MISTAKES = (
    ({"d_k_power": 1.0}, "the scores divided by d_k, not sqrt(d_k)?"),
    ({"d_k_power": 0.0}, "the scores not divided by sqrt(d_k)?"),
    ({"axis": -2}, "the softmax over the queries (axis -2), not over the keys (axis -1)?"),
    ({"inverted": True}, "the mask's polarity inverted? It is True where a query may attend: keep those scores"),
    ({"hidden": 0.0}, "the hidden scores set to 0, not to the dtype's most negative number? exp(0 - max) still "
                      "weighs them"),
    ({"empty_rows_zero": False}, "a query with no allowed key left with uniform weights, not 0?"),
)


def _known_mistake(out, weights, Q, K, V, allowed=None, tol=1e-12) -> str:
    """Which known wrong answer ``out`` or ``weights`` equals at ``tol`` (the assertion's), as "; it equals ...
    <mistake>", or ""; a "mistake" that gives the right answer here (no mask, no empty row, d_k = 1) is never named."""
    return name_known_mistake_of(functools.partial(_attention_np, Q, K, V, allowed), MISTAKES, (out, weights),
                                 rtol=tol, atol=tol)


def check_attention(out, weights, Q, K, V, allowed=None, where="", tol=1e-12):
    """``out, weights = scaled_dot_product_attention(Q, K, V, mask=allowed)`` against :func:`_attention_np`, the
    weights first, with messages that name the formula, ``where`` (the mask, the case) and a known mistake."""
    out, weights = (t.numpy() if isinstance(t, mt.Tensor) else t for t in (out, weights))
    Q, K, V = (np.asarray(t.numpy() if isinstance(t, mt.Tensor) else t, dtype=np.float64) for t in (Q, K, V))
    expected_out, expected_w = _attention_np(Q, K, V, allowed)
    mistake = _known_mistake(out, weights, Q, K, V, allowed, tol=tol)
    assert weights.shape == expected_w.shape, f"{where}: weights of shape {weights.shape}; expected (..., L, S) = " \
                                              f"{expected_w.shape}"
    np.testing.assert_allclose(weights, expected_w, rtol=tol, atol=tol, err_msg=(
        f"{where}: weights (..., L, S) = {expected_w.shape}, softmax(Q K^T / sqrt(d_k)) over the keys (axis -1), "
        f"d_k = {Q.shape[-1]}" + ("" if allowed is None else ", hidden keys weight 0, a row with no key all 0")
        + mistake))
    np.testing.assert_allclose(out, expected_out, rtol=tol, atol=tol, err_msg=(
        f"{where}: output (..., L, d_v) = {expected_out.shape}, weights @ V; the weights are right{mistake}"))


@pytest.mark.assignment(2, points=15)
def test_attention_on_3_tokens_by_hand():
    # Q = K: token 2 = token 0 + token 1; d_k = 2, so scores = Q K^T / sqrt(2)
    Q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    V = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
    # query 0 scores keys 0, 1, 2 as [1, 0, 1] / sqrt 2: weights e^a, 1, e^a over their sum, a = 1/sqrt 2
    a = math.exp(1 / math.sqrt(2))
    w0 = [a / (2 * a + 1), 1 / (2 * a + 1), a / (2 * a + 1)]
    out0 = [w0[0] * 1 + w0[2] * 10, w0[1] * 1 + w0[2] * 10]
    out, w = F.scaled_dot_product_attention(mt.tensor(Q), mt.tensor(Q), mt.tensor(V))
    mistake = _known_mistake(out.numpy(), w.numpy(), Q, Q, V)
    np.testing.assert_allclose(w.numpy()[0], w0, rtol=1e-12, err_msg=(
        f"weights of query 0: softmax([1, 0, 1] / sqrt(2)) over the keys, computed by hand{mistake}"))
    np.testing.assert_allclose(out.numpy()[0], out0, rtol=1e-12,
                               err_msg=f"output of query 0: its weights times V (its weights are right){mistake}")
    check_attention(out, w, Q, Q, V, where="3 tokens, no mask")
    np.testing.assert_allclose(w.numpy().sum(axis=-1), 1.0, rtol=1e-12, err_msg="each row of weights sums to 1")


@pytest.mark.assignment(2, points=5)
def test_cross_attention_shapes_and_values(rng):
    # L = 2 queries, S = 5 keys, d_k = 3, d_v = 4, batch (2, heads 3)
    Q, K, V = rng.standard_normal((2, 3, 2, 3)), rng.standard_normal((2, 3, 5, 3)), rng.standard_normal((2, 3, 5, 4))
    out, w = F.scaled_dot_product_attention(mt.tensor(Q), mt.tensor(K), mt.tensor(V))
    assert (out.shape, w.shape) == ((2, 3, 2, 4), (2, 3, 2, 5)), (
        f"output {out.shape}, weights {w.shape}: expected (..., L, d_v) = (2, 3, 2, 4), (..., L, S) = (2, 3, 2, 5)")
    check_attention(out, w, Q, K, V, where="cross-attention, L = 2 queries, S = 5 keys, batch (2, 3), no mask")


@pytest.mark.assignment(2, points=5)
def test_causal_mask_hides_the_future(rng):
    Q, K, V = (rng.standard_normal((4, 2)) for _ in range(3))
    causal = np.tril(np.ones((4, 4), dtype=bool))
    out, w = F.scaled_dot_product_attention(mt.tensor(Q), mt.tensor(K), mt.tensor(V), mask=F.causal_mask(4))
    mistake = _known_mistake(out.numpy(), w.numpy(), Q, K, V, causal)
    np.testing.assert_array_equal(np.triu(w.numpy(), k=1), 0.0, err_msg=(
        f"weights above the diagonal (the future): 0; the mask is True where allowed{mistake}"))
    np.testing.assert_allclose(out.numpy()[0], V[0], rtol=1e-12, err_msg=(
        f"the first token sees only itself: its weights [1, 0, 0, 0], its output V[0]{mistake}"))
    check_attention(out, w, Q, K, V, causal, where="causal mask (4, 4), each row's allowed keys 0..i")


@pytest.mark.assignment(2, points=5)
def test_padding_mask_is_the_same_as_dropping_the_padded_keys(rng):
    Q, K, V = rng.standard_normal((1, 1, 3, 2)), rng.standard_normal((1, 1, 4, 2)), rng.standard_normal((1, 1, 4, 3))
    mask = F.padding_mask(mt.tensor([[5, 6, 0, 0]]), pad_id=0)  # (1, 1, 1, 4): keys 2 and 3 are padding
    out, w = F.scaled_dot_product_attention(mt.tensor(Q), mt.tensor(K), mt.tensor(V), mask=mask)
    mistake = _known_mistake(out.numpy(), w.numpy(), Q, K, V, mask.numpy())
    short_out, short_w = _attention_np(Q, K[..., :2, :], V[..., :2, :])
    same = "attention over keys 0 and 1 alone (keys 2, 3 are padding, hidden by the mask before the softmax)"
    np.testing.assert_array_equal(w.numpy()[..., 2:], 0.0, err_msg=f"weights of the padding keys 2, 3: 0{mistake}")
    np.testing.assert_allclose(w.numpy()[..., :2], short_w, rtol=1e-12,
                               err_msg=f"weights of keys 0, 1: {same}{mistake}")
    np.testing.assert_allclose(out.numpy(), short_out, rtol=1e-12,
                               err_msg=f"output: {same}; the weights are right{mistake}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.assignment(2, points=5)
def test_fully_masked_rows_give_zero_weights_output_and_gradient(dtype, rng):
    Q, K, V = (mt.tensor(rng.standard_normal((3, 2)) * 10, dtype=dtype, requires_grad=True) for _ in range(3))
    allowed = mt.tensor([[True, False, True], [False, False, False], [True, True, True]])  # query 1 sees nothing
    out, w = F.scaled_dot_product_attention(Q, K, V, mask=allowed)
    arrays = [t.numpy().astype(np.float64) for t in (Q, K, V)]
    mistake = _known_mistake(out.numpy(), w.numpy(), *arrays, allowed.numpy(), tol=1e-5)
    assert np.all(np.isfinite(out.numpy())) and np.all(np.isfinite(w.numpy())), (
        "query 1 sees no key: its weights, output and gradient are 0, never NaN (hide with the dtype's most negative "
        "finite number, not -inf, and zero the rows with no allowed key)")
    np.testing.assert_array_equal(w.numpy()[1], 0.0,
                                  err_msg=f"weights of query 1, which sees no key: 0, not uniform{mistake}")
    np.testing.assert_array_equal(out.numpy()[1], 0.0, err_msg=f"output of query 1, which sees no key: 0{mistake}")
    tol = 1e-5 if dtype == "float32" else 1e-12
    check_attention(out, w, *arrays, allowed.numpy(), tol=tol,
                    where=f"{dtype}, mask [[1, 0, 1], [0, 0, 0], [1, 1, 1]] (query 1 sees no key)")
    (out.sum() + w.sum()).backward()
    for name, t in zip("QKV", (Q, K, V)):
        assert np.all(np.isfinite(t.grad.numpy())), f"the gradient of {name} is not finite: {t.grad.numpy().tolist()}"
    np.testing.assert_array_equal(Q.grad.numpy()[1], 0.0,  # nothing flows back into the masked query
                                  err_msg="the gradient of query 1, which sees no key: 0")
    # batched: each query's row is looked at on its own, whatever the mask's leading axes
    Qb, Kb, Vb = (mt.tensor(rng.standard_normal((2, 2, 3, 2)), dtype=dtype) for _ in range(3))  # (batch, heads, ...)
    for shape in ((2, 2, 3, 3), (1, 3, 3), (2, 1, 3, 3)):
        allowed = rng.uniform(size=shape) > 0.3
        allowed[..., 0, :] = False  # query 0 sees nothing (in every mask) ...
        allowed[..., 1, 1] = True  # ... the others see something
        allowed[..., 2, 2] = True
        allowed.reshape(-1, 3, 3)[0, 1] = False  # and in the first (or only) one, query 1 sees nothing too
        out, w = F.scaled_dot_product_attention(Qb, Kb, Vb, mask=mt.tensor(allowed))
        check_attention(out, w, Qb, Kb, Vb, allowed, tol=tol,
                        where=f"{dtype}, Q (2, 2, 3, 2), a mask of shape {shape} with rows of no key")


@pytest.mark.assignment(2, points=10)
def test_attention_gradcheck_with_masks(rng):
    """The forward against NumPy first (gradcheck compares the backward with the forward's own finite differences,
    so it would pass a wrong forward), then gradcheck: with no mask, a mask with a row of no key, causal."""
    Q = mt.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)  # (batch, L, d_k)
    K = mt.tensor(rng.standard_normal((2, 4, 2)), requires_grad=True)  # (batch, S, d_k)
    V = mt.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)  # (batch, S, d_v)
    allowed = np.array([[[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1]],
                        [[0, 1, 0, 1], [1, 1, 1, 1], [0, 0, 0, 1]]], dtype=bool)  # one row all masked
    Kc = mt.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)
    Vc = mt.tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)
    cases = [("no mask", None, K, V), ("a (2, 3, 4) mask, query 1 of batch 0 sees no key", allowed, K, V),
             ("causal mask (3, 3)", np.tril(np.ones((3, 3), dtype=bool)), Kc, Vc)]
    for where, mask, k, v in cases:
        m = None if mask is None else mt.tensor(mask)
        with mt.no_grad():
            check_attention(*F.scaled_dot_product_attention(Q, k, v, mask=m), Q, k, v, mask,
                            where=f"the forward, before the gradcheck, {where}")
        assert mt.gradcheck(lambda q, k, v, m=m: F.scaled_dot_product_attention(q, k, v, mask=m), Q, k, v)


@pytest.mark.parametrize("case", ["no_mask", "bool_mask", "causal"])
@pytest.mark.assignment(2, points=5)
def test_attention_agrees_with_torch(case, rng):
    torch = pytest.importorskip("torch")
    L, S = (4, 4) if case == "causal" else (3, 5)
    Q, K, V = rng.standard_normal((2, 2, L, 4)), rng.standard_normal((2, 2, S, 4)), rng.standard_normal((2, 2, S, 3))
    if case == "bool_mask":
        allowed = rng.uniform(size=(2, 1, L, S)) > 0.4
        allowed[..., 0] = True  # PyTorch gives NaN for a fully masked row: keep one key per row
    ours = [mt.tensor(a, requires_grad=True) for a in (Q, K, V)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (Q, K, V)]
    mask = {"no_mask": None, "bool_mask": mt.tensor(allowed) if case == "bool_mask" else None,
            "causal": F.causal_mask(L)}[case]
    out, weights = F.scaled_dot_product_attention(*ours, mask=mask)
    allowed = {"no_mask": None, "bool_mask": allowed if case == "bool_mask" else None,
               "causal": np.tril(np.ones((L, L), dtype=bool))}[case]
    mistake = _known_mistake(out.numpy(), weights.numpy(), Q, K, V, allowed)  # named as the other tests name it
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if case == "causal":
        t_out = sdpa(*theirs, is_causal=True)
    else:
        t_out = sdpa(*theirs, attn_mask=None if case == "no_mask" else torch.tensor(allowed))
    v = rng.standard_normal(out.shape)
    (out * mt.tensor(v)).sum().backward()
    (t_out * torch.tensor(v)).sum().backward()
    name = f"softmax(Q K^T / sqrt(d_k)) V, {case.replace('_', ' ')}"
    close_to_torch(_rel_err(out.numpy(), t_out.detach().numpy()), f"{name}, the output (forward){mistake}")
    for label, a, b in zip("QKV", ours, theirs):
        close_to_torch(_rel_err(a.grad.numpy(), b.grad.numpy()), f"{name}, the gradient of {label} (backward)")


@pytest.mark.assignment(2, points=5)
def test_attention_dropout_drops_weights_only_while_training(rng):
    Q, K, V = (mt.tensor(rng.standard_normal((2, 4, 3))) for _ in range(3))
    plain, w = F.scaled_dot_product_attention(Q, K, V)
    check_attention(plain, w, Q, K, V, tol=1e-6, where="float32, no dropout (dropout_p=0)")
    evaluated, _ = F.scaled_dot_product_attention(Q, K, V, dropout_p=0.5, training=False)
    np.testing.assert_array_equal(evaluated.numpy(), plain.numpy(), err_msg="training=False: no dropout")
    # training left out: torch's function would drop, a default of False would not; neither is guessed
    with pytest.raises(TypeError, match=r"^scaled_dot_product_attention: dropout_p=0\.5 needs training= given: "
                                        r"training=self\.training in a Module"):
        F.scaled_dot_product_attention(Q, K, V, dropout_p=0.5)
    mt.manual_seed(11)
    trained, w_trained = F.scaled_dot_product_attention(Q, K, V, dropout_p=0.5, training=True)
    np.testing.assert_array_equal(w_trained.numpy(), w.numpy(),
                                  err_msg="training=True: the weights returned are those before dropout")
    mt.manual_seed(11)
    dropped = F.dropout(w, 0.5).numpy()  # the same draw from the generator: m / (1 - p)
    expected = dropped @ V.numpy()
    rescaled = ""
    if np.allclose(trained.numpy(), expected * 0.5, rtol=1e-6):
        rescaled = "; it equals the output with the kept weights not rescaled: times 1 / (1 - p)?"
    np.testing.assert_allclose(trained.numpy(), expected, rtol=1e-6, err_msg=(
        f"training=True, dropout_p=0.5: output dropout(weights) @ V, the kept weights times 1 / (1 - p), one draw "
        f"from the generator{rescaled}"))
    assert not np.allclose(trained.numpy(), plain.numpy()), "training=True, dropout_p=0.5: the output changed nothing"


def test_attention_keeps_float32():
    out, w = F.scaled_dot_product_attention(mt.ones(2, 3), mt.ones(2, 3), mt.ones(2, 3), mask=F.causal_mask(2))
    assert out.dtype_name == w.dtype_name == "float32"


def test_attention_bad_input():
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: Q \(3, 4\) and K \(5, 2\) must have the same "
                                         r"d_k \(last axis\): 4 != 2"):
        sdpa(mt.zeros(3, 4), mt.zeros(5, 2), mt.zeros(5, 2))
    with pytest.raises(ValueError, match=r"K \(5, 4\) and V \(6, 2\) must have the same number of keys S"):
        sdpa(mt.zeros(3, 4), mt.zeros(5, 4), mt.zeros(6, 2))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 4\) does not broadcast to the scores \(\.\.\., L, S\) "
                                         r"= \(3, 5\)"):
        sdpa(mt.zeros(3, 4), mt.zeros(5, 4), mt.zeros(5, 2), mask=mt.ones(3, 4, dtype="bool"))
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3, 5\) does not broadcast"):
        sdpa(mt.zeros(3, 4), mt.zeros(5, 4), mt.zeros(5, 2), mask=mt.ones(2, 3, 5, dtype="bool"))
    with pytest.raises(TypeError, match=r"scaled_dot_product_attention: the mask must be boolean .*, got float32"):
        sdpa(mt.zeros(3, 4), mt.zeros(5, 4), mt.zeros(5, 2), mask=mt.zeros(3, 5))
    # the shapes the user passed, not positions in the tuple of batch axes ("axis -1 has sizes [2, 3]" was axis 0 of Q)
    with pytest.raises(ValueError, match=r"^scaled_dot_product_attention: the batch axes \(all but the last two\) of "
                                         r"Q \(2, 3, 4\), K \(3, 5, 4\) and V \(3, 5, 2\) do not broadcast: \(2,\), "
                                         r"\(3,\) and \(3,\)$"):
        sdpa(mt.zeros(2, 3, 4), mt.zeros(3, 5, 4), mt.zeros(3, 5, 2))
    with pytest.raises(ValueError, match=r"Q must have shape \(\.\.\., seq, features\), got \(4,\)"):
        sdpa(mt.zeros(4), mt.zeros(5, 4), mt.zeros(5, 2))
    with pytest.raises(ValueError, match=r"dropout probability p must be a number in \[0, 1\), got 1.0"):
        sdpa(mt.zeros(3, 4), mt.zeros(5, 4), mt.zeros(5, 2), dropout_p=1.0)
    # mixed dtypes: named as passed (not by the product inside, with K transposed)
    with pytest.raises(TypeError, match=r"^scaled_dot_product_attention: Q is float64 \(3, 4\) but K is float32 "
                                        r"\(5, 4\); convert one with \.to\('float64'\)$"):
        sdpa(mt.zeros(3, 4, dtype="float64"), mt.zeros(5, 4), mt.zeros(5, 2))
    with pytest.raises(TypeError, match=r"Q is float32 \(3, 4\) but V is float64 \(5, 2\)"):
        sdpa(mt.zeros(3, 4), mt.zeros(5, 4), mt.zeros(5, 2, dtype="float64"))


@pytest.mark.parametrize("mask", [None, np.ones((3, 0), dtype=bool)], ids=["no mask", "mask"])
def test_attention_with_no_keys_is_refused(mask):
    """S = 0: the softmax over the keys would be over nothing (it ended in NumPy's 'zero-size array to reduction')."""
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: K \(0, 4\) and V \(0, 4\) have no keys "
                                         r"\(S = 0\)"):
        F.scaled_dot_product_attention(mt.zeros(3, 4), mt.zeros(0, 4), mt.zeros(0, 4), mask=mask)


def test_attention_with_d_k_0_is_refused():
    """d_k = 0: Q K^T / sqrt(d_k) is 0 / 0; every weight and output came out NaN."""
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: Q \(3, 0\) and K \(5, 0\) have d_k = 0"):
        F.scaled_dot_product_attention(mt.zeros(3, 0), mt.zeros(5, 0), mt.ones(5, 2))


def test_attention_with_no_queries_is_empty():
    """L = 0 is fine: no rows of scores, an empty output."""
    out, w = F.scaled_dot_product_attention(mt.zeros(2, 0, 4), mt.zeros(2, 5, 4), mt.zeros(2, 5, 3))
    assert out.shape == (2, 0, 3) and w.shape == (2, 0, 5)


# ------------------------------------------------------------------ the graded tests' messages
def _with_every_kind_of_row(rng):
    """Q (2, 4, 3), K (2, 5, 3), V (2, 5, 2) and a mask (2, 4, 5) whose rows have hidden keys and allowed ones, but
    query 1 of batch 0, which sees no key: each known mistake changes the answer here (d_k = 3, not 1)."""
    Q, K, V = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 2))
    allowed = np.ones((2, 4, 5), dtype=bool)
    allowed[..., 1::2] = False
    allowed[1, :, 1] = True
    allowed[0, 1] = False
    return Q, K, V, allowed


@pytest.mark.single_backend  # (NumPy arrays alone)
@pytest.mark.parametrize("options, said", MISTAKES,
                         ids=[",".join(f"{k}={v}" for k, v in options.items()) for options, _ in MISTAKES])
def test_check_attention_names_each_known_wrong_answer(options, said, rng):
    """check_attention, the graded tests' assertion, given a known wrong answer, names it (and no other)."""
    Q, K, V, allowed = _with_every_kind_of_row(rng)
    out, weights = _attention_np(Q, K, V, allowed, **options)
    differs = not np.allclose(weights, _attention_np(Q, K, V, allowed)[1])
    assert differs, f"the case must tell apart {said}"
    with pytest.raises(AssertionError, match=r"a mistake: weights \(\.\.\., L, S\) .*; it equals the known wrong "
                                             r"answer with " + re.escape(said)):
        check_attention(out, weights, Q, K, V, allowed, where="a mistake")
    # the output alone (the weights right) names it too
    assert _known_mistake(out, None, Q, K, V, allowed) == f"; it equals the known wrong answer with {said}"


@pytest.mark.single_backend
def test_check_attention_names_no_mistake_in_the_right_answer(rng):
    Q, K, V, allowed = _with_every_kind_of_row(rng)
    out, weights = _attention_np(Q, K, V, allowed)
    assert _known_mistake(out, weights, Q, K, V, allowed) == ""
    check_attention(out, weights, Q, K, V, allowed, where="the right answer")
    # and without a mask, the mask's mistakes are the right answer: none is named
    assert _known_mistake(*_attention_np(Q, K, V), Q, K, V) == ""
