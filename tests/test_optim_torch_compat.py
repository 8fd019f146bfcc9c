"""Code written for ``torch.optim`` and ``torch.nn.utils``, run here: the same numbers, or a clear refusal.

Each case was a silent difference or a puzzling error before: a positional argument that meant another setting
here than in torch (``clip_grad_norm_``'s third, ``SGD``'s fourth), a torch setting missing here, a schedule written
the torch way. Where torch has the same function, the result is compared against torch (skipped without it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.optim import clip_grad_norm_


def _torch_clip(torch, grads, *args, **kwargs):
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.tensor(g)
    total = torch.nn.utils.clip_grad_norm_(tparams, *args, **kwargs)
    return float(total), [tp.grad.numpy() for tp in tparams]


# ------------------------------------------------------------------ clip_grad_norm_(params, max_norm, norm_type)
@pytest.mark.parametrize("norm_type,norm", [(2.0, 13.0), (2, 13.0), (float("inf"), 12.0), ("inf", 12.0)],
                         ids=["2.0", "2", "inf", "'inf'"])
def test_clip_grad_norm_takes_torchs_third_argument_norm_type(norm_type, norm):
    """``clip_grad_norm_(p, 1.0, 2.0)`` used eps = 2 (grads [3, 4] -> [0.4286, 0.5714], torch [0.6, 0.8]), and
    ``float('inf')`` was refused as "eps must be ..."."""
    grads = [np.array([3.0, -4.0]), np.array([[12.0]])]  # ||g||_2 = 13, ||g||_inf = 12
    a, b = mt.zeros(2, dtype="float64", requires_grad=True), mt.zeros(1, 1, dtype="float64", requires_grad=True)
    a.grad, b.grad = mt.tensor(grads[0]), mt.tensor(grads[1])
    total = clip_grad_norm_([a, b], 1.0, norm_type)
    assert total.item() == pytest.approx(norm, rel=1e-12)
    factor = 1.0 / (norm + 1e-6)  # max_norm / (||g|| + eps)
    for p, g in zip((a, b), grads):
        np.testing.assert_allclose(p.grad.numpy(), g * factor, rtol=1e-12)
    torch = pytest.importorskip("torch")
    torch_total, torch_grads = _torch_clip(torch, grads, 1.0, norm_type)
    assert total.item() == pytest.approx(torch_total, rel=1e-12)
    for p, tg in zip((a, b), torch_grads):
        np.testing.assert_allclose(p.grad.numpy(), tg, rtol=1e-12)


def test_clip_grad_norm_inf_of_zero_large_and_non_finite_gradients_is_torchs():
    w = mt.zeros(3, requires_grad=True)
    cases = [[0.0, 0.0, 0.0], [0.5, -0.25, 0.0], [3e38, -1e38, 1.0], [1.0, float("inf"), 0.0], [1.0, float("nan"), 0.0]]
    torch = pytest.importorskip("torch")
    for g in cases:
        w.grad = mt.tensor(g)
        with np.errstate(invalid="ignore"):  # inf / inf
            total = clip_grad_norm_([w], 1.0, math.inf)
        tp = torch.zeros(3, requires_grad=True)
        tp.grad = torch.tensor(g, dtype=torch.float32)
        torch_total = torch.nn.utils.clip_grad_norm_([tp], 1.0, math.inf)
        np.testing.assert_array_equal(np.array(total.item(), dtype=np.float32), torch_total.numpy(), err_msg=str(g))
        np.testing.assert_allclose(w.grad.numpy(), tp.grad.numpy(), rtol=1e-6, err_msg=str(g))
        assert w.grad.dtype_name == "float32"


@pytest.mark.single_backend
@pytest.mark.parametrize("norm_type,hint", [(1.0, ""), (3, ""), (-math.inf, ""), (0.0, "eps is keyword only"),
                                            (1e-6, "eps is keyword only"), ("fro", ""), (True, ""), (None, "")])
def test_clip_grad_norm_refuses_another_norm_type_naming_the_two_it_takes(norm_type, hint):
    w = mt.zeros(2, requires_grad=True)
    w.grad = mt.tensor([3.0, 4.0])
    with pytest.raises(ValueError, match=r"^clip_grad_norm_: norm_type must be 2 \(the L2 norm, sqrt\(sum g\^2\)\) or "
                                         r"inf \(float\('inf'\) or 'inf': max \|g\|\), got .*; other norms are not "
                                         r"supported") as e:
        clip_grad_norm_([w], 1.0, norm_type)
    assert hint in str(e.value) and (hint or "eps" not in str(e.value))
    assert w.grad.tolist() == [3.0, 4.0]  # refused before any scaling


@pytest.mark.single_backend
def test_clip_grad_norm_takes_eps_by_keyword_only():
    w = mt.zeros(2, requires_grad=True)
    w.grad = mt.tensor([3.0, 4.0])
    with pytest.raises(TypeError, match="positional argument"):
        clip_grad_norm_([w], 1.0, 2.0, 1e-6)
    assert clip_grad_norm_([w], 1.0, eps=0.5).item() == 5.0
    np.testing.assert_allclose(w.grad.numpy(), np.array([3.0, 4.0]) / 5.5, rtol=1e-6)
    with pytest.raises(ValueError, match=r"^clip_grad_norm_: eps must be a finite number >= 0, got -1\.0$"):
        clip_grad_norm_([w], 1.0, eps=-1.0)


def test_clip_grad_norm_inf_makes_no_host_synchronisation(monkeypatch):
    """As the L2 norm (tests/test_host_sync.py): no conversion of an array to a Python value or a host array."""
    xs = pytest.importorskip("array_api_strict")
    Array = type(xs.asarray(0.0))
    calls = []
    for name in ("__bool__", "__int__", "__float__", "__index__", "__array__", "__dlpack__"):
        original = getattr(Array, name, None)
        if original is not None:
            def hooked(self, *args, _name=name, _original=original, **kwargs):
                calls.append(_name)
                return _original(self, *args, **kwargs)
            monkeypatch.setattr(Array, name, hooked)
    with mt.backend.use("array_api_strict"):
        w = mt.zeros(3, requires_grad=True)
        w.grad = mt.tensor([3.0, -4.0, 1.0])
        for norm_type in (2.0, math.inf, "inf"):
            total = clip_grad_norm_([w], 1.0, norm_type)
            assert calls == [], (norm_type, calls)
    assert total.item() == pytest.approx(4 / (math.sqrt(26) + 1e-6), rel=1e-5)  # max |g| after the L2 clip
