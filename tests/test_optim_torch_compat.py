"""Code written for ``torch.optim`` and ``torch.nn.utils``, run here: the same numbers, or a clear refusal.

Each case was a silent difference or a puzzling error before: a positional argument that meant another setting
here than in torch (``clip_grad_norm_``'s third, ``SGD``'s fourth), a torch setting missing here, a schedule written
the torch way. Where torch has the same function, the result is compared against torch (skipped without it).
"""

from __future__ import annotations

import math
import re

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


# ------------------------------------------------------------------ SGD(params, lr, momentum, *, dampening, ...)
def _sgd_reference(theta, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD's formula in float64 NumPy: b_1 = g_1, b_t = mu b + (1 - dampening) g."""
    theta, b = np.array(theta, dtype=np.float64), None
    for g in grads:
        g = g + weight_decay * theta
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
    return theta


SGD_TORCH_CASES = [
    dict(lr=0.1, momentum=0.9, dampening=0.1),
    dict(lr=0.05, momentum=0.5, dampening=0.5, weight_decay=0.1),
    dict(lr=0.05, momentum=0.8, dampening=1.0),  # the buffer keeps g_1 and forgets it slowly
    dict(lr=0.1, dampening=0.3),  # without momentum dampening does nothing, as in torch
]


@pytest.mark.parametrize("config", SGD_TORCH_CASES, ids=str)
def test_sgd_dampening_is_torchs(config, rng):
    theta = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    w = mt.tensor(theta, requires_grad=True)
    opt = mt.optim.SGD([w], **config)
    for g in grads:
        w.grad = mt.tensor(g)
        opt.step()
    np.testing.assert_allclose(w.numpy(), _sgd_reference(theta, grads, **config), rtol=1e-12, atol=1e-12)
    torch = pytest.importorskip("torch")
    tw = torch.tensor(theta, requires_grad=True)
    topt = torch.optim.SGD([tw], **config)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.single_backend
def test_sgd_takes_only_params_lr_and_momentum_by_position():
    """``SGD(p, 0.1, 0.9, 0.1)`` set weight_decay = 0.1 here, dampening = 0.1 in torch; now it is refused."""
    w = mt.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match=r"takes from 2 to 4 positional arguments but 5 were given"):
        mt.optim.SGD([w], 0.1, 0.9, 0.1)
    group = mt.optim.SGD([w], 0.1, 0.9, dampening=0.1, weight_decay=0.01, nesterov=False).param_groups[0]
    assert (group["lr"], group["momentum"], group["dampening"], group["weight_decay"]) == (0.1, 0.9, 0.1, 0.01)


@pytest.mark.single_backend
@pytest.mark.parametrize("config,error,message", [
    (dict(lr=0.1, momentum=0.9, dampening=-0.1), ValueError,
     r"^SGD: dampening must be a number in \[0, 1\], got -0\.1$"),
    (dict(lr=0.1, momentum=0.9, dampening=1.5), ValueError, r"^SGD: dampening must be a number in \[0, 1\], got 1\.5$"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"^SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got momentum=0\.9, dampening=0\.1$"),
])
def test_sgd_refuses_a_bad_dampening_as_torch_does(config, error, message):
    with pytest.raises(error, match=message):
        mt.optim.SGD([mt.zeros(2, requires_grad=True)], **config)
    torch = pytest.importorskip("torch")
    if config.get("nesterov"):  # torch refuses it too ("Nesterov momentum requires a momentum and zero dampening")
        with pytest.raises(ValueError, match="Nesterov"):
            torch.optim.SGD([torch.zeros(2, requires_grad=True)], **config)


@pytest.mark.single_backend
def test_sgd_state_saved_before_dampening_existed_loads_with_none():
    w = mt.tensor([1.0, 2.0], requires_grad=True)
    opt = mt.optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = mt.tensor([1.0, 1.0])
    opt.step()
    state = opt.state_dict()
    old = {**state, "param_groups": [{k: v for k, v in g.items() if k != "dampening"} for g in state["param_groups"]]}
    other = mt.optim.SGD([mt.tensor([1.0, 2.0], requires_grad=True)], lr=0.5, momentum=0.5, dampening=0.5)
    other.load_state_dict(old)
    assert {k: v for k, v in other.param_groups[0].items() if k != "params"} == {
        "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}
    with pytest.raises(ValueError, match=r"is this the state of another kind of optimizer\?$"):
        other.load_state_dict({**state, "param_groups": [{"params": [0], "lr": 0.1}]})


# ------------------------------------------------------------------ SGD's lr, given by the groups
@pytest.mark.single_backend
def test_sgd_needs_no_lr_when_every_group_sets_one():
    a, b = mt.zeros(1, requires_grad=True), mt.zeros(1, requires_grad=True)
    opt = mt.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01, "momentum": 0.9}])
    a.grad, b.grad = mt.ones(1), mt.ones(1)
    opt.step()
    assert (a.item(), b.item()) == (pytest.approx(-0.1), pytest.approx(-0.01))
    message = (r"^SGD: lr is required: SGD\(params, lr=\.\.\.\), unless every parameter group sets its own 'lr' "
               r"\(parameter group {} sets none; torch's default lr=1e-3 is not assumed here\)$")
    with pytest.raises(TypeError, match=message.format(0)):
        mt.optim.SGD([a])
    with pytest.raises(TypeError, match=message.format(1)):
        mt.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b]}])
    with pytest.raises(TypeError, match=message.format(1)):
        opt_a = mt.optim.SGD([{"params": [a], "lr": 0.1}])
        opt_a.add_param_group({"params": [b]})
    assert len(opt_a.param_groups) == 1
    opt_a.add_param_group({"params": [b], "lr": 0.3})
    assert [g["lr"] for g in opt_a.param_groups] == [0.1, 0.3]


# ------------------------------------------------------------------ Adam and AdamW in torch's positional order
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_takes_torchs_arguments_by_position(name, rng):
    """(params, lr, betas, eps, weight_decay, amsgrad), torch's order: the same numbers."""
    args = (0.02, (0.8, 0.95), 1e-6, 0.1, False)
    theta = rng.normal(size=(4,))
    grads = [rng.normal(size=(4,)) for _ in range(4)]
    w = mt.tensor(theta, requires_grad=True)
    opt = getattr(mt.optim, name)([w], *args)
    assert {k: v for k, v in opt.param_groups[0].items() if k != "params"} == {
        "lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}
    for g in grads:
        w.grad = mt.tensor(g)
        opt.step()
    torch = pytest.importorskip("torch")
    tw = torch.tensor(theta, requires_grad=True)
    topt = getattr(torch.optim, name)([tw], *args)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.single_backend
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_amsgrad_is_refused_by_name(name):
    w = mt.zeros(2, requires_grad=True)
    cls = getattr(mt.optim, name)
    message = (rf"^{name}: amsgrad=True \(AMSGrad, Reddi et al\. 2018: the step divided by the largest sqrt\(v_hat\) "
               rf"so far\) is not implemented; {name} here steps by alpha m_hat / \(sqrt\(v_hat\) \+ eps\)")
    with pytest.raises(ValueError, match=message):
        cls([w], amsgrad=True)
    with pytest.raises(ValueError, match=message):
        cls([w], 1e-3, (0.9, 0.999), 1e-8, 0.0, True)  # torch's sixth positional argument
    with pytest.raises(TypeError, match=rf"^{name}: amsgrad must be False \(the only form here\), got 'yes'$"):
        cls([w], amsgrad="yes")
    assert "amsgrad" not in cls([w], amsgrad=False).param_groups[0]  # nothing to save: the one form


@pytest.mark.single_backend
@pytest.mark.parametrize("call, torchs, says", [
    ("SGD", "SGD", {"maximize": "minimise the negated objective", "foreach": "one array operation over all",
                    "fused": "one array operation over all", "differentiable": "never part of a graph"}),
    ("Adam", "Adam", {"maximize": "minimise", "foreach": "one array operation", "capturable": "no CUDA graphs",
                      "decoupled_weight_decay": r"is optim\.AdamW here"}),
    ("AdamW", "AdamW", {"maximize": "minimise", "fused": "one array operation"}),
    ("clip_grad_norm_", "clip_grad_norm_", {"error_if_nonfinite": "makes the gradients so, as torch's default",
                                            "foreach": "a few array operations over all the gradients"}),
])
def test_torchs_other_optimizer_keywords_get_what_to_do_here(call, torchs, says):
    """torch's maximize=, foreach=, fused=, capturable=, differentiable=, decoupled_weight_decay= and clip's
    error_if_nonfinite= got Python's bare "unexpected keyword argument": each says what to do here. Each is a keyword
    torch 2.13 takes (checked where torch is installed)."""
    w = mt.zeros(2, requires_grad=True)
    w.grad = mt.ones(2)
    for keyword, hint in says.items():
        with pytest.raises(TypeError, match=rf"^{call}(\.__init__)?\(\) got an unexpected keyword argument "
                                            rf"{keyword!r}; PyTorch's {keyword}= .*{hint}"):
            if call == "clip_grad_norm_":
                clip_grad_norm_([w], 1.0, **{keyword: True})
            else:
                getattr(mt.optim, call)([w], lr=0.1, **{keyword: True})
    torch = pytest.importorskip("torch")
    import inspect

    theirs = torch.nn.utils.clip_grad_norm_ if torchs == "clip_grad_norm_" else getattr(torch.optim, torchs)
    assert set(says) <= set(inspect.signature(theirs).parameters)


# ------------------------------------------------------------------ schedules written by hand, or the torch way
def _two_groups(lr=0.5):
    a, b = mt.zeros(1, requires_grad=True), mt.zeros(1, requires_grad=True)
    return mt.optim.SGD([{"params": [a]}, {"params": [b]}], lr=lr)


@pytest.mark.single_backend
def test_a_schedule_returning_too_few_or_too_many_rates_is_refused():
    """zip set the first group's rate and left the second's at 0.5, silently."""
    class Short(mt.optim.LRScheduler):
        def lr_at(self, step):
            return [0.1] if step < 3 else [0.1, 0.1, 0.1]

    opt = _two_groups()
    with pytest.raises(ValueError, match=r"^Short\.lr_at\(1\) returned 1 rate\(s\), the optimizer has 2 parameter "
                                         r"group\(s\); return one rate per group$"):
        Short(opt)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]

    class LongLater(mt.optim.LRScheduler):
        def lr_at(self, step):
            return [0.1, 0.2] if step < 3 else [0.1, 0.2, 0.3]

    schedule = LongLater(opt)
    schedule.step()
    with pytest.raises(ValueError, match=r"^LongLater\.lr_at\(3\) returned 3 rate\(s\), the optimizer has 2 "):
        schedule.step()
    assert schedule.step_num == 2 and schedule.get_last_lr() == [0.1, 0.2]  # the refused step changed nothing


@pytest.mark.single_backend
def test_a_schedule_may_return_a_lone_rate_for_one_group_and_is_told_otherwise():
    class Constant(mt.optim.LRScheduler):
        def lr_at(self, step):
            return 0.1 / step

    one = mt.optim.SGD([mt.zeros(1, requires_grad=True)], lr=1.0)
    schedule = Constant(one)
    schedule.step()
    assert schedule.get_last_lr() == [0.05] and type(schedule.get_last_lr()[0]) is float
    with pytest.raises(ValueError, match=r"^Constant\.lr_at\(1\) returned one rate, 0\.1, for 2 parameter groups; "
                                         r"return a list, one rate per group$"):
        Constant(_two_groups())

    class Nothing(mt.optim.LRScheduler):
        def lr_at(self, step):
            self.optimizer.param_groups[0]["lr"] = 0.1  # torch's habit of setting it by hand; returns None

    with pytest.raises(TypeError, match=r"^Nothing\.lr_at\(1\) returned NoneType; a schedule's lr_at returns a list of "
                                        r"rates, one per parameter group \(1\)$"):
        Nothing(one)


@pytest.mark.single_backend
def test_a_schedule_written_the_torch_way_is_told_to_write_lr_at():
    class TorchStyle(mt.optim.LRScheduler):
        def get_lr(self):
            return [0.1 for _ in self.optimizer.param_groups]

    class Empty(mt.optim.LRScheduler):
        pass

    opt = mt.optim.SGD([mt.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(NotImplementedError, match=r"^TorchStyle overrides torch's get_lr, which this library does not "
                                                  r"call: override lr_at\(self, step\) instead, returning each "
                                                  r"parameter group's rate at step "
                                                  r"\(from 1: torch's last_epoch \+ 1\)$"):
        TorchStyle(opt)
    with pytest.raises(NotImplementedError, match=r"^Empty: override lr_at\(self, step\), returning each parameter "
                                                  r"group's rate at step \(from 1\)$"):
        Empty(opt)


@pytest.mark.single_backend
@pytest.mark.parametrize("bad,error,shown", [(-0.1, ValueError, "-0.1"), (float("inf"), ValueError, "inf"),
                                             (float("nan"), ValueError, "nan"), ("0.1", TypeError, "'0.1'")])
def test_a_bad_rate_is_refused_where_the_schedule_sets_it_naming_the_schedule_and_the_step(bad, error, shown):
    """It was refused at the next optimizer step only, as "param_groups[0] was changed since it was added"."""
    class Falling(mt.optim.LRScheduler):
        def lr_at(self, step):
            return [0.1, 0.2 if step < 3 else bad]

    opt = _two_groups()
    schedule = Falling(opt)
    schedule.step()
    with pytest.raises(error, match=rf"^Falling\.lr_at\(3\): the rate of group 1 must be a finite number >= 0, "
                                    rf"got {re.escape(shown)}$"):
        schedule.step()
    assert schedule.step_num == 2 and schedule.get_last_lr() == [0.1, 0.2]


# ------------------------------------------------------------------ a custom schedule's settings in its state_dict
class _StepDecay(mt.optim.LRScheduler):
    saved_settings = ("peak", "every")

    def __init__(self, optimizer, peak, every):
        self.peak, self.every = peak, every
        super().__init__(optimizer)

    def lr_at(self, step):
        return [self.peak * 0.5 ** ((step - 1) // self.every)] * len(self.optimizer.param_groups)


@pytest.mark.single_backend
@pytest.mark.parametrize("via_npz", [False, True], ids=["dict", "npz"])
def test_a_custom_schedules_saved_settings_replace_the_objects_as_the_librarys_own_do(via_npz, tmp_path):
    schedule = _StepDecay(_two_groups(), peak=0.1, every=2)
    for _ in range(3):
        schedule.step()
    saved = schedule.state_dict()
    assert saved == {"step_num": 4, "peak": 0.1, "every": 2}
    if via_npz:  # as a checkpoint gives it back: 0-d arrays
        np.savez(tmp_path / "s.npz", **saved)
        with np.load(tmp_path / "s.npz") as f:
            saved = {k: f[k] for k in f.files}
    other = _StepDecay(_two_groups(), peak=1.0, every=10)
    other.load_state_dict(saved)
    assert (other.peak, other.every, other.step_num) == (0.1, 2, 4)
    assert other.get_last_lr() == schedule.get_last_lr() == [0.05, 0.05]
    # the library's own schedules do the same: the saved settings replace the object's
    warm = mt.optim.WarmupSchedule(_two_groups(1.0), d_model=16, warmup_steps=4)
    warm.load_state_dict({"step_num": 2, "d_model": 64, "warmup_steps": 8, "factor": 2.0})
    assert (warm.d_model, warm.warmup_steps, warm.factor) == (64, 8, 2.0)
    assert warm.get_last_lr() == [mt.optim.noam_lr(2, 64, 8, 2.0)] * 2


@pytest.mark.single_backend
def test_a_refused_state_changes_nothing_and_a_setting_left_unsaved_stays():
    schedule = _StepDecay(_two_groups(), peak=0.1, every=2)
    with pytest.raises(ValueError, match=r"^_StepDecay\.load_state_dict: expected the keys \['every', 'peak', "
                                         r"'step_num'\], got \['step_num'\]$"):
        schedule.load_state_dict({"step_num": 3})
    with pytest.raises(ValueError, match=r"^_StepDecay\.lr_at\(3\): the rate of group 0 must be a finite number >= 0, "
                                         r"got -0\.5$"):
        schedule.load_state_dict({"step_num": 3, "peak": -1.0, "every": 2})  # -1 * 0.5
    assert (schedule.peak, schedule.every, schedule.step_num, schedule.get_last_lr()) == (0.1, 2, 1, [0.1, 0.1])

    class Unsaved(_StepDecay):
        saved_settings = ("peak",)

    other = Unsaved(_two_groups(), peak=1.0, every=10)
    other.load_state_dict({"step_num": 3, "peak": 0.1})
    assert (other.peak, other.every, other.get_last_lr()) == (0.1, 10, [0.1, 0.1])  # every: not saved, its own kept


@pytest.mark.single_backend
def test_a_schedule_written_the_torch_way_may_pass_last_epoch_on():
    """torch's subclasses call super().__init__(optimizer, last_epoch), -1 by default: that start is taken (it failed
    with Python's "takes 2 positional arguments but 3 were given"); another value, torch's way to resume, is refused,
    naming the state_dict."""
    class Halving(mt.optim.LRScheduler):
        def __init__(self, optimizer, last_epoch=-1):
            super().__init__(optimizer, last_epoch)

        def lr_at(self, step):
            return 0.5 ** step

    opt = mt.optim.SGD([mt.zeros(1, requires_grad=True)], lr=1.0)
    assert Halving(opt).get_last_lr() == [0.5]
    with pytest.raises(ValueError, match=r"^Halving: last_epoch=4 \(torch's way to start a schedule part way\) is not "
                                         r"taken here, .* load its state_dict"):
        Halving(opt, last_epoch=4)


@pytest.mark.single_backend
def test_torchs_lambda_lr_and_this_one_agree_one_step_apart():
    """Also a check of the schedule base: torch's LambdaLR at last_epoch t - 1 is this one at step t."""
    torch = pytest.importorskip("torch")
    rule = lambda t: 1.0 / (1 + t)  # noqa: E731
    opt = _two_groups(0.5)
    ours = mt.optim.LambdaLR(opt, lambda t: rule(t - 1))
    tp = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    theirs = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]]}], lr=0.5),
                                               rule)
    for _ in range(4):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15)
        theirs.optimizer.step()
        ours.step()
        theirs.step()
