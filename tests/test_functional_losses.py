"""cross_entropy and binary_cross_entropy_with_logits: by hand, by finite differences, and against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.testing import close_to_torch
from minitransformer.testing import rel_err as _rel_err
from minitransformer.train.metrics import token_accuracy


def _agrees_with_torch(loss, t_loss, logits, t_logits, name, rng):
    """``loss`` of ``logits`` against PyTorch's ``t_loss`` of ``t_logits``: the values, then the gradients of the
    logits from one random cotangent (a sum of the losses would weigh every element the same)."""
    torch = pytest.importorskip("torch")
    v = rng.standard_normal(loss.shape)
    (loss * mt.tensor(v)).sum().backward()
    (t_loss * torch.tensor(v)).sum().backward()
    close_to_torch(_rel_err(loss.numpy(), t_loss.detach().numpy()), f"{name}, the forward")
    close_to_torch(_rel_err(logits.grad.numpy(), t_logits.grad.numpy()), f"{name}, the gradient of the logits "
                   "(backward)")


def _log_softmax_np(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# ------------------------------------------------------------------ cross_entropy
def test_cross_entropy_by_hand():
    # logits [1, 2, 3], target 2: -log softmax_2 = log(e + e^2 + e^3) - 3 = 0.4076
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    loss = F.cross_entropy(mt.tensor([[1.0, 2.0, 3.0]], dtype="float64"), mt.tensor([2]))
    assert loss.shape == ()
    assert loss.item() == pytest.approx(lse - 3.0, rel=1e-12)
    # label smoothing 0.1 over C = 3: q = [0.1/3, 0.1/3, 0.9 + 0.1/3], loss = -sum_c q_c (c + 1 - lse)
    q = [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3]
    smoothed = -sum(q_c * (c + 1 - lse) for c, q_c in enumerate(q))
    loss = F.cross_entropy(mt.tensor([[1.0, 2.0, 3.0]], dtype="float64"), mt.tensor([2]), label_smoothing=0.1)
    assert loss.item() == pytest.approx(smoothed, rel=1e-12)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_plain_numpy_with_ignore_index(label_smoothing, reduction, rng):
    z = rng.standard_normal((2, 4, 5)) * 2  # (batch, T, C)
    y = np.array([[0, 4, 2, -100], [1, -100, -100, 3]])
    logp = _log_softmax_np(z)
    C, eps = 5, label_smoothing
    kept = y != -100
    q = (1 - eps) * (np.arange(C) == np.where(kept, y, 0)[..., None]) + eps / C
    per = np.where(kept, -(q * logp).sum(-1), 0.0)
    expected = {"none": per, "sum": per.sum(), "mean": per.sum() / kept.sum()}[reduction]
    loss = F.cross_entropy(mt.tensor(z), mt.tensor(y), ignore_index=-100, label_smoothing=eps, reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12, atol=1e-15)


def test_cross_entropy_mean_skips_ignored_targets():
    z = mt.tensor([[1.0, 2.0, 3.0], [5.0, -1.0, 0.0]], dtype="float64", requires_grad=True)
    loss = F.cross_entropy(z, mt.tensor([2, 0]), ignore_index=0)  # the second row's target is ignored
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert loss.item() == pytest.approx(lse - 3.0, rel=1e-12)  # the mean is over one row, not two
    loss.backward()
    np.testing.assert_array_equal(z.grad.numpy()[1], [0.0, 0.0, 0.0])


@pytest.mark.parametrize("fused", [True, False])
def test_cross_entropy_with_a_masked_out_class_is_finite_both_ways(fused):
    """A logit of -inf (a class masked out) has p = 0 and log p = -inf; with q = 0 there it adds nothing
    (0 log 0 = 0), in the composition too, where q * log p would be 0 * -inf = NaN."""
    z = mt.tensor([[-math.inf, 0.0, 1.0]], dtype="float64", requires_grad=True)
    loss = F.cross_entropy(z, mt.tensor([2]), fused=fused)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-12)  # -log(e / (1 + e))
    loss.backward()
    p = np.array([0.0, 1.0, math.e]) / (1 + math.e)
    np.testing.assert_allclose(z.grad.numpy(), [p - [0, 0, 1]], rtol=1e-12, atol=1e-15)
    # smoothed, q is eps / C > 0 on the masked class too: the loss is infinite, both ways alike
    assert F.cross_entropy(z, mt.tensor([2]), label_smoothing=0.1, fused=fused).item() == math.inf


@pytest.mark.parametrize("fused", [True, False])
def test_cross_entropy_with_every_target_ignored_is_zero_not_nan(fused):
    # the mean's divisor |kept| = 0 is taken as 1 (0 / 0 would be NaN), in the composition too
    z = mt.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64", requires_grad=True)
    loss = F.cross_entropy(z, mt.tensor([-1, -1]), ignore_index=-1, fused=fused)
    assert loss.item() == 0.0
    loss.backward()
    np.testing.assert_array_equal(z.grad.numpy(), np.zeros((2, 2)))


def test_cross_entropy_gradcheck(rng):
    z = mt.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    y = mt.tensor([[0, 3, -100], [2, 2, 1]])
    assert mt.gradcheck(lambda t: F.cross_entropy(t, y, ignore_index=-100, label_smoothing=0.1), z)
    assert mt.gradcheck(lambda t: F.cross_entropy(t, y, ignore_index=-100, reduction="none"), z)
    flat = mt.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert mt.gradcheck(lambda t: F.cross_entropy(t, mt.tensor([0, 2, 1, 1]), reduction="sum"), flat)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_agrees_with_torch(label_smoothing, reduction, rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((3, 4, 7)) * 3  # (batch, T, C)
    y = rng.integers(0, 7, size=(3, 4))
    y[0, 1] = y[2, 3] = y[1, 0] = -100  # some padding
    ours = mt.tensor(z, requires_grad=True)
    loss = F.cross_entropy(ours, mt.tensor(y), ignore_index=-100, label_smoothing=label_smoothing, reduction=reduction)
    theirs = torch.tensor(z, requires_grad=True)
    # PyTorch wants the classes on axis 1: (batch, C, T)
    t_loss = torch.nn.functional.cross_entropy(theirs.permute(0, 2, 1), torch.tensor(y), ignore_index=-100,
                                               label_smoothing=label_smoothing, reduction=reduction)
    _agrees_with_torch(loss, t_loss, ours, theirs, f"cross_entropy(reduction={reduction!r}, label_smoothing="
                       f"{label_smoothing})", rng)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype, targets", [("uint8", [5, 255, 200, 43]), ("int8", [5, 127, 100, 0]),
                                            ("int16", [5, 299, 260, 130])])
def test_cross_entropy_with_narrow_integer_targets_and_more_classes_than_they_hold(dtype, targets, fused, rng):
    """C = 300 classes, targets in uint8/int8/int16: the one-hot [c = y_n] must not count classes in the targets'
    dtype, where 256..299 would wrap around onto 0..43 (uint8) and every class past 127 onto negatives (int8)."""
    C, eps = 300, 0.1
    z = rng.standard_normal((4, C))
    y = np.array(targets, dtype=dtype)
    # plain NumPy, float64, targets as int64
    logp = _log_softmax_np(z)
    q = (1 - eps) * (np.arange(C) == y.astype(np.int64)[:, None]) + eps / C
    expected_loss = -(q * logp).sum(-1).mean()
    expected_grad = (np.exp(logp) - q) / len(y)  # (softmax(z_n) - q_n) / N
    ours = mt.tensor(z, requires_grad=True)
    loss = F.cross_entropy(ours, y, label_smoothing=eps, fused=fused)
    loss.backward()
    assert loss.item() == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), expected_grad, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype, ignore_index", [("uint8", -100), ("int8", 300)])
def test_cross_entropy_with_narrow_targets_and_an_ignore_index_they_cannot_hold(dtype, ignore_index, fused):
    """PyTorch's ignore_index = -100 with uint8 targets (300 with int8): no target equals it, so nothing is ignored;
    the targets are compared as int64 (array-api-strict refuses a Python int out of the array's dtype's range)."""
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0], dtype=dtype)
    expected = -_log_softmax_np(z)[[0, 1], [2, 0]].mean()
    loss = F.cross_entropy(mt.tensor(z), y, ignore_index=ignore_index, fused=fused)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.single_backend
def test_fused_cross_entropy_counts_classes_past_its_targets_dtype(rng):
    """The fused operation on its own (its gradient's one-hot), given uint8 targets and C = 300."""
    from minitransformer.autograd.fused import CrossEntropy

    z = mt.tensor(rng.standard_normal((2, 300)), requires_grad=True)
    CrossEntropy.apply(z, targets=np.array([5, 200], dtype=np.uint8), kept=None, label_smoothing=0.0,
                       reduction="sum").backward()
    hot = np.zeros((2, 300))
    hot[0, 5] = hot[1, 200] = 1.0
    softmax = np.exp(_log_softmax_np(z.numpy()))
    np.testing.assert_allclose(z.grad.numpy(), softmax - hot, rtol=1e-10, atol=1e-15)  # no extra -1 at class 261


@pytest.mark.parametrize("ignore_index", ["pad", 1.5, True, [1], np.float64(1.0), np.bool_(True)])
def test_cross_entropy_refuses_an_ignore_index_that_is_not_an_integer(ignore_index):
    """A string or a float would ignore nothing, True would ignore class 1: all are refused, before any arithmetic."""
    with pytest.raises(TypeError, match=r"cross_entropy: ignore_index must be None or an integer .*, got "):
        F.cross_entropy(mt.zeros(3, 4), mt.tensor([1, 2, 1]), ignore_index=ignore_index)


@pytest.mark.parametrize("fused", [True, False])
def test_cross_entropy_takes_a_numpy_integer_ignore_index(fused):
    z = mt.tensor([[1.0, 2.0, 3.0], [5.0, -1.0, 0.0]], dtype="float64")
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    for ignore_index in (0, np.int64(0), np.uint8(0)):
        loss = F.cross_entropy(z, mt.tensor([2, 0]), ignore_index=ignore_index, fused=fused)
        assert loss.item() == pytest.approx(lse - 3.0, rel=1e-12)  # the second row's target is ignored


def test_cross_entropy_keeps_float32():
    assert F.cross_entropy(mt.zeros(2, 3), mt.tensor([0, 1])).dtype_name == "float32"


@pytest.mark.usefixtures("checking_values")
def test_cross_entropy_bad_input():
    z = mt.zeros(2, 3)
    with pytest.raises(ValueError, match=r"cross_entropy: targets have shape \(3,\), expected \(2,\) for logits "
                                         r"\(2, 3\) \(classes on the last axis\)$"):
        F.cross_entropy(z, mt.tensor([0, 1, 2]))
    # torch's layout, (N, C, T): the message says so, and the permuted logits give torch's loss
    logits, targets = mt.tensor(np.linspace(-2, 2, 70, dtype=np.float32).reshape(2, 5, 7)), mt.randint(0, 5, (2, 7))
    with pytest.raises(ValueError, match=r"expected \(2, 5\) for logits \(2, 5, 7\) \(classes on the last axis\); "
                                         r"logits \(N, C, T\) with the classes on axis 1 are torch's layout: here "
                                         r"\(N, T, C\), as the models give them$"):
        F.cross_entropy(logits, targets)
    with pytest.raises(TypeError, match=r"cross_entropy: targets must be integer class indices, got float32 with "
                                        r"shape \(2,\); whole numbers held as floats become class indices with "
                                        r"targets\.to\('int64'\)$"):
        F.cross_entropy(z, mt.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"got float64 with shape \(2,\); .* mt\.tensor\(targets, dtype='int64'\)$"):
        F.cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of range for C = 3 classes"):
        F.cross_entropy(z, mt.tensor([0, 3]))
    with pytest.raises(IndexError, match=r"cross_entropy: target -1 is out of range .* or ignore_index=-100"):
        F.cross_entropy(z, mt.tensor([-1, -100]), ignore_index=-100)
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be a number in \[0, 1\], got 1.5"):
        F.cross_entropy(z, mt.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        F.cross_entropy(z, mt.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"cross_entropy: logits must be \(N, C\) or \(batch, T, C\)"):
        F.cross_entropy(mt.zeros(3), mt.tensor(1))
    with pytest.raises(ValueError, match=r"cross_entropy: logits \(0, 0\) have no classes \(C = 0"):
        F.cross_entropy(mt.zeros(0, 0), np.zeros(0, dtype=np.int64))
    torch = pytest.importorskip("torch")  # last: what the message says gives torch's loss
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits.numpy()), torch.tensor(targets.numpy()))
    np.testing.assert_allclose(F.cross_entropy(logits.permute(0, 2, 1), targets).item(), expected.item(), rtol=1e-5)


# ------------------------------------------------------------------ binary_cross_entropy_with_logits
def test_cross_entropy_given_class_probabilities_names_the_loss_to_write_and_it_is_torchs(rng):
    """torch's cross_entropy takes float targets of the logits' shape as class probabilities; here they are refused,
    and the message's expression gives torch's soft-target loss (checked in float64 with plain NumPy, and with torch
    where installed)."""
    z = rng.standard_normal((3, 4))
    p = rng.dirichlet(np.ones(4), size=3)
    logits = mt.tensor(z, dtype="float64")
    with pytest.raises(TypeError, match=r"got float64 with shape \(3, 4\); floats of the logits' shape are PyTorch's "
                                        r"class probabilities \(soft targets\), not taken here: their loss "
                                        r"is -\(p \* F\.log_softmax\(logits, axis=-1\)\)\.sum\(axis=-1\)\.mean\(\)$"):
        F.cross_entropy(logits, mt.tensor(p))
    with pytest.raises(TypeError, match=r"^token_accuracy: .*\(soft targets\), not taken here$"):  # no loss's formula
        token_accuracy(logits, mt.tensor(p))
    with pytest.raises(TypeError, match=r"got bool with shape \(3,\); bools are no class indices: as ids 0 and 1, "
                                        r"targets\.to\('int64'\); for two classes, binary_cross_entropy_with_logits"):
        F.cross_entropy(logits, mt.tensor([True, False, True]))
    with pytest.raises(TypeError, match=r"got float32 with shape \(3,\) \(and not whole numbers: a cast would "
                                        r"truncate them\)$"):
        F.cross_entropy(logits, mt.tensor([0.5, 1.0, 2.0]))
    advised = -(mt.tensor(p) * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()
    log_softmax = z - z.max(axis=-1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(advised.item(), -(p * log_softmax).sum(axis=-1).mean(), rtol=1e-12)
    torch = pytest.importorskip("torch")
    soft = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(p))  # probabilities as targets
    np.testing.assert_allclose(advised.item(), soft.item(), rtol=1e-12)


def test_bce_with_logits_by_hand():
    # z = 0, y = 1: -log sigma(0) = log 2;  z = 2, y = 0: -log(1 - sigma(2)) = log(1 + e^2)
    z = mt.tensor([0.0, 2.0], dtype="float64")
    y = mt.tensor([1.0, 0.0], dtype="float64")
    per = F.binary_cross_entropy_with_logits(z, y, reduction="none").numpy()
    np.testing.assert_allclose(per, [math.log(2), math.log(1 + math.exp(2))], rtol=1e-12)
    mean = F.binary_cross_entropy_with_logits(z, y).item()
    assert mean == pytest.approx((math.log(2) + math.log(1 + math.exp(2))) / 2, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_is_stable_for_huge_logits(dtype):
    z = mt.tensor([1000.0, -1000.0, 1000.0, -1000.0], dtype=dtype, requires_grad=True)
    y = mt.tensor([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(z, y, reduction="sum")
    # a confident wrong answer costs |z|; a confident right one costs (almost) nothing
    assert loss.item() == pytest.approx(2000.0, rel=1e-6)
    loss.backward()
    # d loss / dz = sigma(z) - y
    np.testing.assert_allclose(z.grad.numpy(), [1.0, -1.0, 0.0, 0.0], atol=1e-7)


# z = 20 and 40 with y = 1, z = -20 with y = 0: a right answer, each loss log(1 + e^{-|z|}) ~ e^{-|z|}
CONFIDENT_Z, CONFIDENT_Y = [20.0, 40.0, -20.0], [1.0, 1.0, 0.0]


@pytest.mark.parametrize("fused", [True, False])
def test_bce_with_logits_of_confident_right_answers_is_log1p_not_zero(fused):
    """log(1 + e^{-40}) is 4.25e-18: computed as log(1 + e) it was 0 (1 + e rounds to 1 in float64), and at
    z = 20 off by 3e-8 relative. Reference: math.log1p, every entry to 1e-12 relative."""
    z = mt.tensor(CONFIDENT_Z, dtype="float64", requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, mt.tensor(CONFIDENT_Y, dtype="float64"), reduction="none",
                                              fused=fused)
    expected = [math.log1p(math.exp(-abs(v))) for v in CONFIDENT_Z]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12, atol=0)
    loss.sum().backward()  # sigma(z) - y = -e^{-z} / (1 + e^{-z}) for y = 1, e^{z} / (1 + e^{z}) for y = 0
    e = [math.exp(-abs(v)) for v in CONFIDENT_Z]
    # the fused gradient forms sigma(z) - 1 and rounds like torch's: to 1e-16 absolute (gradients are O(1))
    np.testing.assert_allclose(z.grad.numpy(), [-e[0] / (1 + e[0]), -e[1] / (1 + e[1]), e[2] / (1 + e[2])],
                               rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("fused", [True, False])
def test_bce_with_logits_of_confident_right_answers_in_float32(fused):
    """In float32 1 + e^{-|z|} rounds to 1 already past |z| = 17: log1p keeps e^{-20} = 2.06e-9."""
    z = mt.tensor([20.0, -20.0], dtype="float32")
    loss = F.binary_cross_entropy_with_logits(z, mt.tensor([1.0, 0.0]), reduction="none", fused=fused)
    np.testing.assert_allclose(loss.numpy(), [math.exp(-20.0)] * 2, rtol=1e-6, atol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_bce_with_logits_of_confident_right_answers_agrees_with_torch(fused):
    """Losses at z = 20 and 40 (y = 1) to 1e-12 relative. Not the loss at z = -20, y = 0: torch computes
    it as (1 - y) z - log sigmoid(z) = -20 + 20.000000002..., which cancels to 2.0611530e-09, 3e-7 off the
    2.0611536e-09 that math.log1p gives (and that the test above checks)."""
    torch = pytest.importorskip("torch")
    z = mt.tensor(CONFIDENT_Z, dtype="float64", requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, mt.tensor(CONFIDENT_Y, dtype="float64"), reduction="none",
                                              fused=fused)
    theirs = torch.tensor(CONFIDENT_Z, dtype=torch.float64, requires_grad=True)
    t_loss = torch.nn.functional.binary_cross_entropy_with_logits(
        theirs, torch.tensor(CONFIDENT_Y, dtype=torch.float64), reduction="none")
    np.testing.assert_allclose(loss.numpy()[:2], t_loss.detach().numpy()[:2], rtol=1e-12, atol=0)
    loss.sum().backward()
    t_loss.sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-16)  # as above


def test_bce_with_logits_gradcheck(rng):
    z = mt.tensor(rng.standard_normal((3, 4)) * 3, requires_grad=True)
    y = mt.tensor(rng.uniform(size=(3, 4)))  # soft labels too
    assert mt.gradcheck(lambda t: F.binary_cross_entropy_with_logits(t, y), z)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_agrees_with_torch(reduction, rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((4, 5)) * 4
    z[0, :3] = 0.0  # exactly at the kink of max(z, 0) and |z|: the gradient must still be sigma(0) - y
    y = (rng.uniform(size=(4, 5)) > 0.5).astype(np.float64)
    y[1] = rng.uniform(size=5)  # and a row of soft labels
    ours = mt.tensor(z, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(ours, mt.tensor(y), reduction=reduction)
    theirs = torch.tensor(z, requires_grad=True)
    t_loss = torch.nn.functional.binary_cross_entropy_with_logits(theirs, torch.tensor(y), reduction=reduction)
    _agrees_with_torch(loss, t_loss, ours, theirs, f"binary_cross_entropy_with_logits(reduction={reduction!r})", rng)


def test_bce_with_logits_bad_input():
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: targets have shape \(3,\), logits \(2,\)"):
        F.binary_cross_entropy_with_logits(mt.zeros(2), mt.zeros(3))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: reduction must be one of"):
        F.binary_cross_entropy_with_logits(mt.zeros(2), mt.zeros(2), reduction="mean ")
    with pytest.raises(TypeError, match=r"binary_cross_entropy_with_logits: targets must be .*numbers"):
        F.binary_cross_entropy_with_logits(mt.zeros(2), ["a", "b"])  # NumPy reads text; array-api-strict refuses it
    with pytest.raises(TypeError, match=r"cross_entropy: targets must be a rectangular array of numbers"):
        F.cross_entropy(mt.zeros(2, 3), [[0], [1, 2]])


@pytest.mark.parametrize("fused", [True, False])
def test_bce_with_logits_mean_of_no_losses_is_zero_not_nan(fused):
    z = mt.zeros(0, dtype="float64", requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, mt.zeros(0, dtype="float64"), fused=fused)
    assert loss.item() == 0.0  # as cross_entropy's mean over no kept targets
    loss.backward()
    assert z.grad.shape == (0,)
