"""Optimizers, the warm-up schedule and gradient clipping.

Each update is checked against the same update written independently here in float64 NumPy and
against ``torch.optim`` (where installed); the schedule against values worked out by hand;
``state_dict`` by interrupting a run and continuing it; and each optimizer by solving a small
least-squares problem.
"""

from __future__ import annotations

import io
import math
import re
import warnings

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.optim import (
    SGD,
    Adam,
    AdamW,
    LambdaLR,
    WarmupSchedule,
    clip_grad_norm_,
    noam_lr,
)
from minitransformer.testing import name_known_mistake_of

SHAPES = [(3, 4), (5,), ()]
STEPS = 5


# ------------------------------------------------------------------ helpers
def initial_values(rng):
    return [rng.normal(size=shape) for shape in SHAPES]


def make_params(values, dtype="float64"):
    return [mt.tensor(np.array(v, dtype=dtype), requires_grad=True) for v in values]


def gradients(rng, steps=STEPS):
    """A gradient rule that depends on the current parameters: g = 2 (theta - c) + noise_t."""
    targets = [rng.normal(size=shape) for shape in SHAPES]
    noise = [[0.3 * rng.normal(size=shape) for shape in SHAPES] for _ in range(steps)]

    def grad(thetas, t):
        return [2 * (theta - c) + n for theta, c, n in zip(thetas, targets, noise[t])]

    return grad


def run_library(opt, params, grad, steps=STEPS, start=0):
    for t in range(start, start + steps):
        for p, g in zip(params, grad([p.numpy().astype(np.float64) for p in params], t)):
            p.grad = mt.tensor(np.asarray(g, dtype=p.dtype_name))
        opt.step()
    return [p.numpy() for p in params]


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# ------------------------------------------------------------------ independent float64 references
def reference_sgd(thetas, grad, lr, momentum=0.0, weight_decay=0.0, nesterov=False, steps=STEPS):
    thetas = [np.array(t, dtype=np.float64) for t in thetas]
    buffers = [None] * len(thetas)
    for t in range(steps):
        for i, g in enumerate(grad(thetas, t)):
            g = g + weight_decay * thetas[i]
            if momentum:
                buffers[i] = g.copy() if buffers[i] is None else momentum * buffers[i] + g
                g = g + momentum * buffers[i] if nesterov else buffers[i]
            thetas[i] = thetas[i] - lr * g
    return thetas


def reference_adam(thetas, grad, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False, steps=STEPS,
                   corrected=True):
    """Adam's (or, ``decoupled``, AdamW's) parameters after ``steps`` steps; ``corrected=False`` leaves out the bias
    corrections (a known mistake, for the messages)."""
    thetas = [np.array(t, dtype=np.float64) for t in thetas]
    m = [np.zeros_like(t) for t in thetas]
    v = [np.zeros_like(t) for t in thetas]
    b1, b2 = betas
    for t in range(1, steps + 1):
        for i, g in enumerate(grad(thetas, t - 1)):
            if decoupled:
                thetas[i] = thetas[i] - lr * weight_decay * thetas[i]
            else:
                g = g + weight_decay * thetas[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            # bias correction written the way torch does it: step size lr / (1 - b1^t), sqrt(v)/sqrt(1 - b2^t)
            step_size = lr / (1 - b1**t) if corrected else lr
            denom = (np.sqrt(v[i]) / math.sqrt(1 - b2**t) if corrected else np.sqrt(v[i])) + eps
            thetas[i] = thetas[i] - step_size * m[i] / denom
    return thetas


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.1, weight_decay=1.0),  # lambda = 1 decays as any other lambda > 0
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True),
]
ADAM_CASES = [
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    (Adam, dict(lr=0.02, weight_decay=1.0)),  # lambda = 1 decays as any other lambda > 0
    (AdamW, dict(lr=0.01)),  # default weight_decay 0.01
    (AdamW, dict(lr=0.02, betas=(0.85, 0.99), eps=1e-7, weight_decay=0.3)),
]


# ------------------------------------------------------------------ against NumPy
@pytest.mark.parametrize("config", SGD_CASES, ids=str)
def test_sgd_matches_numpy_reference(config, rng):
    values, grad = initial_values(rng), gradients(rng)
    params = make_params(values)
    opt = SGD(params, **config)
    got = run_library(opt, params, grad)
    expected = reference_sgd(values, grad, **config)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    if not config.get("momentum"):  # plain SGD keeps no state (as torch.optim.SGD): no buffer the size of the model
        assert opt.state_dict()["state"] == {}


def _adam_id(case) -> str:
    """``Adam-lr0.02-betas0.8,0.95-eps1e-06-wd0.1``: a case of ``ADAM_CASES`` as a short test id."""
    cls, config = case
    short = {"weight_decay": "wd"}
    parts = [f"{short.get(k, k)}{','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in config.items()]
    return "-".join([cls.__name__, *parts])


@pytest.mark.parametrize("cls,config", ADAM_CASES, ids=[_adam_id(c) for c in ADAM_CASES])
@pytest.mark.assignment(5, points=25)
def test_adam_matches_numpy_reference(cls, config, rng):
    values, grad = initial_values(rng), gradients(rng)
    decoupled = cls is AdamW
    settings = {"weight_decay": 0.01 if decoupled else 0.0, **config}
    formula = ("m_hat = m / (1 - beta_1^t), v_hat = v / (1 - beta_2^t), theta - lr m_hat / (sqrt(v_hat) + eps); weight "
               + ("decay decoupled: theta (1 - lr lambda) first, the moments of the plain g" if decoupled else
                  "decay as lambda theta added to g"))
    mistakes = [({"corrected": False}, "no bias correction: m and v as they are, not m / (1 - beta_1^t) and "
                                       "v / (1 - beta_2^t)?")]
    if settings["weight_decay"]:
        mistakes.append(({"decoupled": not decoupled}, "AdamW's weight decay (theta shrunk, outside the moments) where "
                         "Adam's was asked (lambda theta added to g), or the other way round?"))
    for steps in (1, STEPS):  # the first step alone (where a bias correction shows most), then several
        params = make_params(values)
        got = run_library(cls(params, **config), params, grad, steps=steps)
        expected = reference_adam(values, grad, decoupled=decoupled, steps=steps, **settings)

        def flat(steps=steps, **mistake):  # every parameter in one vector, as a known mistake computes it
            answer = reference_adam(values, grad, **{"decoupled": decoupled, "steps": steps, **settings, **mistake})
            return np.concatenate([np.ravel(a) for a in answer])

        mistake = name_known_mistake_of(flat, mistakes, np.concatenate([np.ravel(a) for a in got]), rtol=1e-12,
                                        atol=1e-12)
        for k, (a, b) in enumerate(zip(got, expected)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=(
                f"parameter {k} after {steps} step(s) of {cls.__name__}: {formula}{mistake}"))
    _steps_leave_the_old_arrays_alone(cls, config, values, grad)


def _steps_leave_the_old_arrays_alone(cls, config, values, grad):
    """Each step's ``update`` returns a new theta: the arrays the parameters held before it (which ``detach()``, or a
    forward keeping its input for backward, may share) keep their values. From the second step on,
    ``theta`` is the optimizer's long array of the step before, whose views the parameters are: ``theta -= ...``
    changed them in place, unseen by the comparison above. (The CUDA kernel of ``update_with_kernels`` may write it in
    place, as documented: on a backend with kernels there is nothing to check.)"""
    params = make_params(values)
    opt = cls(params, **config)
    if params[0].backend.kernels is not None:
        return
    for t in range(STEPS):
        held = [p.data for p in params]
        before = [p.numpy().copy() for p in params]
        run_library(opt, params, grad, steps=1, start=t)
        for k, (h, b) in enumerate(zip(held, before)):
            np.testing.assert_array_equal(
                params[k].backend.to_host(h), b, err_msg=f"parameter {k}, step {t + 1} of {cls.__name__}: update "
                "wrote theta in place (theta -= ...); return a new array, theta - lr m_hat / (sqrt(v_hat) + eps): the "
                "old one may be shared (Adam.update's docstring)")


def test_param_groups_use_their_own_settings(rng):
    values, grad = initial_values(rng), gradients(rng)
    params = make_params(values)
    opt = SGD([{"params": params[:1], "lr": 0.3, "momentum": 0.5}, {"params": params[1:]}], lr=0.1)
    got = run_library(opt, params, grad)
    # the rule per parameter only looks at that parameter, so each group's reference is a run of its own
    first = reference_sgd(values, grad, lr=0.3, momentum=0.5)[0]
    rest = reference_sgd(values, grad, lr=0.1)[1:]
    for a, b in zip(got, [first, *rest]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.1]


def test_default_settings_are_kingma_and_bas_and_the_papers_warm_up():
    # Adam's "good default settings" (Kingma & Ba 2015, Algorithm 1): alpha = 0.001, beta_1 = 0.9, beta_2 = 0.999,
    # eps = 1e-8, as torch.optim.Adam; AdamW's weight decay 0.01, as torch.optim.AdamW; Adam.paper keeps alpha until
    # a schedule sets the rate
    w = mt.zeros(2, requires_grad=True)
    for opt, betas, eps, decay in ((Adam([w]), (0.9, 0.999), 1e-8, 0.0), (AdamW([w]), (0.9, 0.999), 1e-8, 0.01),
                                   (Adam.paper([w]), (0.9, 0.98), 1e-9, 0.0)):
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (1e-3, betas, eps, decay)
    # the paper's warmup_steps = 4000 (section 5.3): step 1's rate is d_model^-0.5 * 1 * 4000^-1.5
    schedule = WarmupSchedule(Adam.paper([w]), d_model=512)
    assert schedule.get_last_lr() == [pytest.approx(1 / (math.sqrt(512) * 4000**1.5), rel=1e-9)]


def test_repr_shows_each_group_and_its_settings():
    a, b, c = (mt.zeros(n, requires_grad=True) for n in (2, 3, 4))
    opt = SGD([{"params": [a]}, {"params": [b, c], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert repr(opt) == (
        "SGD (\n"
        "  group 0: 1 params, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False\n"
        "  group 1: 2 params, lr=0.5, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False\n"
        ")"
    )


def test_repr_of_a_schedule_shows_its_settings_its_step_and_its_rates():
    """repr(WarmupSchedule(opt, d_model=16)) was object's, <...WarmupSchedule object at 0x...>: a schedule says what
    it was made with (its saved_settings; LambdaLR its function's name too), then its step and each group's rate."""
    opt = SGD([mt.zeros(2, requires_grad=True)], lr=0.5)
    warmup = WarmupSchedule(opt, d_model=16, warmup_steps=4)
    warmup.step()
    assert repr(warmup) == "WarmupSchedule(d_model=16, warmup_steps=4, factor=1.0)  # step_num=2, lr=[0.0625]"

    def halving(t):
        return 0.5**t

    assert repr(LambdaLR(opt, halving)) == (
        "LambdaLR(lr_lambda=test_repr_of_a_schedule_shows_its_settings_its_step_and_its_rates.<locals>.halving, "
        "base_lrs=[0.0625])  # step_num=1, lr=[0.03125]")


def test_momentum_buffer_is_not_the_gradient_array(rng):
    """Without zero_grad the engine adds the next gradient into p.grad in place; the buffer must not change."""
    w = mt.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    theta, g_total, b = np.array([1.0, -2.0]), np.zeros(2), None
    for _ in range(3):
        (w * w).sum().backward()  # accumulates: g_total += 2 w
        g_total = g_total + 2 * theta
        b = g_total.copy() if b is None else 0.9 * b + g_total
        theta = theta - 0.1 * b
        opt.step()
    np.testing.assert_allclose(w.numpy(), theta, rtol=1e-12)


# ------------------------------------------------------------------ against PyTorch
def _torch_run(torch, opt_cls, values, grad, config, steps=STEPS):
    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    opt = opt_cls(params, **config)
    for t in range(steps):
        for p, g in zip(params, grad([p.detach().numpy() for p in params], t)):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize(
    "name,config",
    [("SGD", c) for c in SGD_CASES] + [(cls.__name__, c) for cls, c in ADAM_CASES],
    ids=str,
)
def test_matches_torch_optim(name, config, rng):
    torch = pytest.importorskip("torch")
    values, grad = initial_values(rng), gradients(rng)
    params = make_params(values)
    ours = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name]
    got = run_library(ours(params, **config), params, grad)
    expected = _torch_run(torch, getattr(torch.optim, name), values, grad, config)
    for a, b in zip(got, expected):
        assert rel_err(a, b) < 1e-10, (name, config, rel_err(a, b))


@pytest.mark.assignment(5, points=10)
def test_adam_paper_preset_matches_torch(rng):
    torch = pytest.importorskip("torch")
    values, grad = initial_values(rng), gradients(rng)
    params = make_params(values)
    opt = Adam.paper(params, lr=0.01)
    group = opt.param_groups[0]
    assert (group["betas"], group["eps"], group["weight_decay"]) == ((0.9, 0.98), 1e-9, 0.0)  # paper section 5.3
    got = run_library(opt, params, grad)
    expected = _torch_run(torch, torch.optim.Adam, values, grad, dict(lr=0.01, betas=(0.9, 0.98), eps=1e-9))
    for k, (a, b) in enumerate(zip(got, expected)):
        err = rel_err(a, b)
        assert err < 1e-10, (f"parameter {k} after {STEPS} steps of Adam.paper (betas 0.9, 0.98, eps 1e-9, lr 0.01): "
                             f"relative error {err:.3g} against torch.optim.Adam, not below 1e-10; Adam.update's "
                             "formula: fix test_adam_matches_numpy_reference first")


# ------------------------------------------------------------------ what a step does and does not do
# ------------------------------------------------------------------ one update for all parameters, laid end to end
END_TO_END = [
    (SGD, dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True)),
    (Adam, dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    (AdamW, dict(lr=0.02, weight_decay=0.3)),
]


def one_at_a_time(cls):
    """The same optimizer with :meth:`update` applied to each parameter alone: the reference."""
    return type(f"{cls.__name__}OneAtATime", (cls,), {"elementwise": False})


@pytest.mark.parametrize("cls,config", END_TO_END, ids=lambda c: getattr(c, "__name__", ""))
def test_one_update_laid_end_to_end_equals_one_update_per_parameter(cls, config, rng):
    # four float64 parameters and a float32 one (dtypes never share an update); the second misses its
    # gradient at step 2, so its step count falls behind the others' and it is updated on its own after
    values = initial_values(rng) + [rng.normal(size=(2, 2)), rng.normal(size=(4,))]
    grads = [[rng.normal(size=np.shape(v)) for v in values] for _ in range(STEPS)]
    results = []
    for make in (cls, one_at_a_time(cls)):
        params = make_params(values[:-1]) + make_params(values[-1:], dtype="float32")
        opt = make(params, **config)
        for t in range(STEPS):
            for i, (p, g) in enumerate(zip(params, grads[t])):
                p.grad = None if (t == 2 and i == 1) else mt.tensor(np.asarray(g, dtype=p.dtype_name))
            if t == 3:  # a new array for one parameter: the long array of last step no longer holds it
                params[2].data = params[2].data + 0.5
            opt.step()
        results.append(([p.numpy() for p in params], opt.state_dict()["state"]))
    (laid, laid_state), (alone, alone_state) = results

    def same(a, b):
        """The same arithmetic on every entry: equal to the last bit. On a GPU the long arrays go through Adam's CUDA
        kernel, where the compiler fuses a * b + c into one rounding (an FMA), and the reference through the array
        formula: a few units in the last place apart, where a misplaced entry would be far off."""
        b = np.asarray(b)
        if mt.backend.current().kernels is None or not np.issubdtype(b.dtype, np.floating):  # step counts: exact
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=64 * np.finfo(b.dtype).eps, atol=0)

    for a, b in zip(laid, alone):
        same(a, b)
    assert laid_state.keys() == alone_state.keys()
    for key in laid_state:
        assert laid_state[key].keys() == alone_state[key].keys()
        for name, value in laid_state[key].items():
            same(value, alone_state[key][name])
            assert np.shape(value) == np.shape(alone_state[key][name])


def test_step_updates_all_parameters_of_a_kind_at_once(rng):
    shapes = []

    class Watched(Adam):
        def update(self, xp, theta, g, group, state):
            shapes.append(tuple(theta.shape))
            return super().update(xp, theta, g, group, state)

    params = make_params(initial_values(rng))  # sizes 12, 5 and 1
    opt = Watched(params, lr=0.1)
    for _ in range(2):
        for p in params:
            p.grad = mt.ones_like(p)
        opt.step()
    assert shapes == [(18,), (18,)]  # one update per step, on the 18 entries laid end to end
    for p in params:  # the parameters and their moments keep their own shapes
        assert p.shape == opt.state[p]["m"].shape == opt.state[p]["v"].shape
        assert opt.state[p]["step"] == 2
    shapes.clear()
    Watched.elementwise = False  # the reference path: one update per parameter
    opt.step()
    assert shapes == [(3, 4), (5,), ()]


def test_the_long_arrays_are_used_again_while_the_parameters_are_their_views(rng, monkeypatch, backend):
    params = make_params(initial_values(rng))
    opt = Adam(params, lr=0.1)
    joined = []
    concat = backend.xp.concat
    monkeypatch.setattr(backend.xp, "concat", lambda arrays, **kw: joined.append(len(arrays)) or concat(arrays, **kw))
    for step in range(3):
        for p in params:
            p.grad = mt.ones_like(p)
        joined.clear()
        opt.step()
        # the first step joins theta and the gradients (m and v are made by it); later ones only the gradients
        assert joined == ([3, 3] if step == 0 else [3])
    opt.state[params[1]]["m"] = opt.state[params[1]]["m"] * 1.0  # a new array: m is joined anew
    joined.clear()
    opt.step()
    assert joined == [3, 3]


def test_adams_step_holds_at_most_five_more_arrays_of_the_models_size(backend):
    """Adam updates its moments in place, as PyTorch does. Before, a step held seven more arrays of the model's size at
    its peak (new moments, m_hat, v_hat and three temporaries): on the document's classifier, 2.2 times PyTorch's peak
    for a whole training step. Now five (m_hat, v_hat and three temporaries of the last line)."""
    if backend.name == "cupy":
        pytest.skip("tracemalloc sees the host's allocations only")
    if backend.kernels is not None:  # --emulated-kernels
        pytest.skip("the CUDA emulation copies each array a launch takes, between guard bytes: the host's peak is "
                    "the emulation's, not Adam's")
    from minitransformer.bench import peak_memory_ours

    n = 1_000_000  # float32: 4 MB per array of the model's size
    w = mt.zeros(n, requires_grad=True)
    w.grad = mt.ones(n)
    opt = Adam([w], lr=0.1)
    opt.step()  # the first step makes the moments; the later steps are measured
    peak = peak_memory_ours(opt.step)
    assert peak < 5.5 * 4 * n, f"Adam's step held {peak / (4 * n):.1f} arrays of the model's size at its peak"


def test_an_update_that_is_not_elementwise_is_refused_laid_end_to_end(rng):
    class Normed(SGD):  # says it is elementwise, but keeps a norm in its state
        def update(self, xp, theta, g, group, state):
            state["norm"] = xp.sqrt(xp.sum(g * g))
            return theta - group["lr"] * g

    params = make_params(initial_values(rng))
    for p in params:
        p.grad = mt.ones_like(p)
    with pytest.raises(ValueError, match=r"Normed.update: state 'norm' has shape \(\) for 18 parameter entries.*"
                                         r"elementwise = False"):
        Normed(params, lr=0.1).step()
    Normed.elementwise = False
    Normed(params, lr=0.1).step()  # one parameter at a time, it works


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: Adam(p), lambda p: AdamW(p)])
def test_step_keeps_dtype_backend_and_builds_no_graph(make, rng):
    params = make_params(initial_values(rng), dtype="float32")
    opt = make(params)
    loss = sum(((p * p).sum() for p in params), mt.zeros((), dtype="float32"))
    loss.backward()
    opt.step()
    for p in params:
        assert p.dtype_name == "float32" and p.is_leaf and p.grad_fn is None and p.requires_grad
        assert p.backend.owns(p.data)
        for value in opt.state[p].values():
            if hasattr(value, "shape"):
                assert p.backend.owns(value) and mt.backend.dtype_name(value.dtype) == "float32"


def test_zero_grad_and_parameters_without_gradient(rng):
    values = initial_values(rng)
    params = make_params(values)
    opt = Adam(params, lr=0.1)
    params[0].grad = mt.tensor(np.ones(SHAPES[0]))
    opt.step()
    assert params[1] not in opt.state and params[2] not in opt.state  # no gradient: untouched, no state
    np.testing.assert_array_equal(params[1].numpy(), values[1])
    assert not np.allclose(params[0].numpy(), values[0])
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_zero_grad_keeps_zeros_with_set_to_none_false(rng):
    """PyTorch's optimizer.zero_grad(set_to_none=False), which Module.zero_grad takes too, was a TypeError."""
    params = make_params(initial_values(rng))
    opt = SGD(params, lr=0.1)
    params[0].grad = mt.tensor(np.ones(SHAPES[0]))
    opt.zero_grad(set_to_none=False)
    assert params[0].grad.shape == SHAPES[0] and not params[0].grad.numpy().any()
    assert params[1].grad is None  # no gradient: none made
    opt.zero_grad(set_to_none=True)
    assert params[0].grad is None


def test_step_with_closure_returns_the_loss():
    w = mt.tensor(np.array([3.0]), requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with mt.no_grad():  # the closure records its graph even so
        loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(w.numpy(), [3.0 - 0.25 * 6.0])


def test_numpy_scalar_settings_work_on_every_backend():
    """array-api-strict (like other array libraries) refuses NumPy scalars beside its arrays: settings become floats."""
    w = mt.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = Adam([w], lr=np.float32(0.5), betas=(np.float64(0.9), np.float64(0.999)), eps=np.float64(1e-8),
               weight_decay=np.float64(0.01))
    schedule = LambdaLR(opt, lambda t: np.float64(0.2) / t)  # lr of step 1: 0.5 * 0.2 = 0.1
    (w * w).sum().backward()  # g = 2 w = [2, -4], ||g|| = sqrt(20) > 1: clipped
    clip_grad_norm_([w], np.float64(1.0))
    opt.step()
    schedule.step()
    group = opt.param_groups[0]
    assert all(type(group[k]) is float for k in ("lr", "eps", "weight_decay")) and type(group["betas"][0]) is float
    # step 1 of Adam moves each element by lr * g / (|g| + eps): lr in the direction of -sign(g)
    np.testing.assert_allclose(w.numpy(), [1.0 - 0.1, -2.0 + 0.1], rtol=1e-7)
    assert group["lr"] == pytest.approx(0.05)


@pytest.mark.single_backend
def test_a_setting_changed_to_a_bad_value_after_construction_is_refused_at_the_step():
    """param_groups are plain dicts: lr -5 set by hand ascended the gradient, silently; nothing moves."""
    for opt, key, value, says in (
        (SGD, "lr", -5, r"lr must be a finite number >= 0, got -5"),
        (Adam, "lr", float("nan"), r"lr must be a finite number >= 0, got nan"),
        (Adam, "betas", (0.9, 1.0), r"beta_2 must be a number in \[0, 1\), got 1\.0"),
        (SGD, "momentum", "0.9", r"momentum must be a number in \[0, 1\), got '0\.9'"),
        (type("MySGD", (SGD,), {}), "momentum", 1.0, r"momentum must be a number in \[0, 1\), got 1\.0"),  # a subclass
    ):
        w = mt.tensor([1.0, -2.0], requires_grad=True)
        optimizer = opt([w], lr=0.1)
        (w * w).sum().backward()
        optimizer.param_groups[0][key] = value
        name = opt.__name__
        with pytest.raises((ValueError, TypeError), match=rf"^{name}\.step: param_groups\[0\] was changed since it "
                                                          rf"was added: {says}$"):
            optimizer.step()
        assert w.tolist() == [1.0, -2.0]


@pytest.mark.single_backend
def test_a_module_or_a_number_for_params_is_named():
    model = mt.nn.Linear(3, 1)
    with pytest.raises(TypeError, match=r"^Adam: params should be an iterable of Tensors or of dicts \(parameter "
                                        r"groups\), got the module Linear itself; pass its parameters: "
                                        r"Adam\(model\.parameters\(\), \.\.\.\)$"):
        Adam(model)
    # clip_grad_norm_ said Python's "'Linear' object is not iterable"; the optimizers' check is its too
    with pytest.raises(TypeError, match=r"^clip_grad_norm_: params should be a Tensor or an iterable of Tensors, got "
                                        r"the module Linear itself; pass its parameters: "
                                        r"clip_grad_norm_\(model\.parameters\(\), \.\.\.\)$"):
        clip_grad_norm_(model, 1.0)
    with pytest.raises(TypeError, match=r"^clip_grad_norm_: params should be a Tensor or an iterable of Tensors, got "
                                        r"float$"):
        clip_grad_norm_(0.1, 1.0)


@pytest.mark.single_backend
def test_a_used_up_parameters_generator_is_named_by_the_optimizers_and_clip_grad_norm_():
    """``params = model.parameters(); opt = SGD(params, ...)`` used the generator up: ``clip_grad_norm_(params, 1.0)``
    then clipped nothing and returned 0, and a second optimizer said the model had no parameters. An empty list, or
    a model without parameters, is refused too (torch's clip_grad_norm_ returns 0 for it)."""
    model = mt.nn.Linear(4, 4)
    params = model.parameters()
    SGD(params, lr=0.1)
    (model(mt.ones(2, 4)) * 100).sum().backward()
    used_up = (r"params is a generator that is used up: model\.parameters\(\) can be iterated once, and something "
               r"went through it before \(an optimizer given the same generator\?\); call model\.parameters\(\) "
               r"again here, or keep a list: params = list\(model\.parameters\(\)\)$")
    with pytest.raises(ValueError, match=rf"^clip_grad_norm_: {used_up}"):
        clip_grad_norm_(params, 1.0)
    with pytest.raises(ValueError, match=rf"^Adam: {used_up}"):
        Adam(params)
    no_parameters = r"got an empty parameter list \(did the model create no parameters\?\)$"
    for given in ([], mt.nn.ReLU().parameters()):  # a fresh generator of nothing: no parameters, not used up
        with pytest.raises(ValueError, match=rf"^clip_grad_norm_: {no_parameters}"):
            clip_grad_norm_(given, 1.0)
    with pytest.raises(ValueError, match=rf"^SGD: {no_parameters}"):
        SGD(mt.nn.ReLU().parameters(), lr=0.1)
    assert clip_grad_norm_(model.parameters(), 1.0).item() > 1.0  # a fresh one clips
    with pytest.raises(TypeError, match=r"^SGD: params should be an iterable of Tensors or of dicts \(parameter "
                                        r"groups\), got float$"):
        SGD(0.1, lr=0.1)


# ------------------------------------------------------------------ state_dict
def _only_plain_data(x) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, int | str) and _only_plain_data(v) for k, v in x.items())
    if isinstance(x, list | tuple):
        return all(_only_plain_data(v) for v in x)
    return type(x) in (int, float, bool) or type(x) is np.ndarray


def _flatten(tree, prefix=""):
    """A nested state dict as flat ``{"a/b/c": array}``, the form a ``.npz`` checkpoint stores."""
    out = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict)):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = np.asarray(v)
    return out


def _unflatten(flat):
    tree = {}
    for key, value in flat.items():
        *path, last = key.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    tree["param_groups"] = [tree["param_groups"][str(i)] for i in range(len(tree["param_groups"]))]
    tree.setdefault("state", {})
    return tree


OPTIMIZERS = [
    lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda p: Adam(p, lr=0.02, weight_decay=0.01),
    lambda p: AdamW(p, lr=0.02, betas=(0.8, 0.99)),
]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=["SGD", "Adam", "AdamW"])
@pytest.mark.parametrize("via_npz", [False, True], ids=["dict", "npz"])
def test_state_dict_round_trip_continues_the_same_run(make, via_npz, rng):
    values, grad = initial_values(rng), gradients(rng, steps=6)
    straight = make_params(values)
    opt = make(straight)
    run_library(opt, straight, grad, steps=6)

    first = make_params(values)
    opt_first = make(first)
    run_library(opt_first, first, grad, steps=3)
    saved = opt_first.state_dict()
    assert _only_plain_data(saved)
    if via_npz:
        buffer = io.BytesIO()
        np.savez(buffer, **_flatten(saved))
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as npz:
            saved = _unflatten(dict(npz))

    resumed = make_params([p.numpy() for p in first])
    opt_resumed = make(resumed)
    opt_resumed.load_state_dict(saved)
    for p in resumed:
        for value in opt_resumed.state[p].values():
            if hasattr(value, "shape"):
                assert p.backend.owns(value)
    run_library(opt_resumed, resumed, grad, steps=3, start=3)
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    # and the state mattered: continuing without it goes elsewhere
    fresh = make_params([p.numpy() for p in first])
    run_library(make(fresh), fresh, grad, steps=3, start=3)
    assert any(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(fresh, straight))


def test_state_dict_is_a_copy_and_restores_hyperparameters(rng):
    params = make_params(initial_values(rng))
    opt = Adam(params, lr=0.01)
    run_library(opt, params, gradients(rng), steps=2)
    saved = opt.state_dict()
    m_saved = saved["state"][0]["m"].copy()
    run_library(opt, params, gradients(rng), steps=2)
    np.testing.assert_array_equal(saved["state"][0]["m"], m_saved)  # later steps do not write into it
    assert saved["state"][0]["step"] == 2

    other = Adam(make_params(initial_values(rng)), lr=0.5, betas=(0.5, 0.5))
    other.load_state_dict(saved)
    assert other.param_groups[0]["lr"] == 0.01 and other.param_groups[0]["betas"] == (0.9, 0.999)

    # copies both ways: writing into a saved array changes neither the optimizer it came from nor the one loaded
    p, q = params[0], other.param_groups[0]["params"][0]
    host = mt.backend.current().to_host  # the moments live on the parameters' device
    m_opt, m_other = host(opt.state[p]["m"]).copy(), host(other.state[q]["m"]).copy()
    opt.state_dict()["state"][0]["m"][...] = 7.0
    saved["state"][0]["m"][...] = 7.0
    np.testing.assert_array_equal(host(opt.state[p]["m"]), m_opt)
    np.testing.assert_array_equal(host(other.state[q]["m"]), m_other)


def test_state_dict_loads_onto_another_backend(backend, rng):
    """A state saved on NumPy (a CPU checkpoint) goes to the parameters' backend on load."""
    values, grad = initial_values(rng), gradients(rng)
    with mt.backend.use("numpy"):
        host = make_params(values)
        opt = Adam(host, lr=0.05)
        run_library(opt, host, grad, steps=2)
        saved = opt.state_dict()
    params = make_params([p.numpy() for p in host])
    opt_here = Adam(params, lr=0.05)
    opt_here.load_state_dict(saved)
    assert all(p.backend is backend and backend.owns(opt_here.state[p]["m"]) for p in params)
    run_library(opt_here, params, grad, steps=2, start=2)
    with mt.backend.use("numpy"):
        run_library(opt, host, grad, steps=2, start=2)
    for a, b in zip(params, host):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_load_state_dict_refuses_a_mismatch(rng):
    params = make_params(initial_values(rng))
    opt = Adam(params, lr=0.01)
    run_library(opt, params, gradients(rng), steps=1)
    saved = opt.state_dict()

    with pytest.raises(ValueError, match=r"has 1 parameter group\(s\), this optimizer has 2"):
        Adam([{"params": make_params(initial_values(rng))[:1]}, {"params": make_params(initial_values(rng))[1:]}]
             ).load_state_dict(saved)
    with pytest.raises(ValueError, match="3 parameters, this optimizer's has 2"):
        Adam(make_params(initial_values(rng))[:2]).load_state_dict(saved)
    swapped = make_params([rng.normal(size=(4, 3)), rng.normal(size=5), rng.normal()])
    target = Adam(swapped)
    with pytest.raises(ValueError, match=r"state 'm' of parameter 0 has shape \(3, 4\).*\(4, 3\)"):
        target.load_state_dict(saved)
    assert target.state == {}  # a refused load changes nothing
    with pytest.raises(ValueError, match="another kind of optimizer"):
        SGD(make_params(initial_values(rng)), lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        Adam(make_params(initial_values(rng))).load_state_dict({"state": {}})


def _adam_state_after(rng, steps=2):
    """An Adam over the three test parameters after ``steps`` steps, and its state dict."""
    params = make_params(initial_values(rng))
    opt = Adam(params, lr=0.01)
    run_library(opt, params, gradients(rng), steps=steps)
    return opt, opt.state_dict()


def _refused_and_unchanged(make_target, saved, error, message):
    """Loading ``saved`` into a fresh optimizer is refused with ``message``, and leaves it as it was."""
    target = make_target()
    groups_before = [dict(g) for g in target.param_groups]
    with pytest.raises(error, match=message):
        target.load_state_dict(saved)
    assert target.state == {} and [dict(g) for g in target.param_groups] == groups_before


@pytest.mark.single_backend
def test_load_state_dict_refuses_a_state_for_only_some_parameters(rng):
    """Adam's state of one parameter removed loaded, and the resumed run silently took fresh moments for it."""
    _, saved = _adam_state_after(rng)
    partial = {**saved, "state": {k: v for k, v in saved["state"].items() if k != 1}}
    with_marker = {**partial, "state": {**partial["state"], 2: {}}}  # a state of today's, with {} for one
    _refused_and_unchanged(lambda: Adam(make_params(initial_values(rng)), lr=0.5), with_marker, ValueError,
                           r"^Adam\.load_state_dict: the saved state holds an entry for 2 of the 3 parameters: none "
                           r"for parameter 1 \(shape \(5,\)\)")
    # one written before the {}s left out the parameters not updated yet: it loads, and says which start afresh
    old = Adam(make_params(initial_values(rng)), lr=0.5)
    with pytest.warns(UserWarning, match=r"entry for 2 of the 3 parameters: none for parameter 1 \(shape \(5,\)\): "
                      r"they start with a fresh state"):
        old.load_state_dict(partial)
    assert [bool(old.state.get(p)) for p in old.param_groups[0]["params"]] == [True, False, True]
    # none at all is a fresh optimizer's (as a never-stepped one saves it), and loads
    fresh = Adam(make_params(initial_values(rng)), lr=0.5)
    assert Adam(make_params(initial_values(rng)), lr=0.01).state_dict()["state"] == {}
    fresh.load_state_dict({**saved, "state": {}})
    assert fresh.state == {} and fresh.param_groups[0]["lr"] == 0.01


@pytest.mark.single_backend
def test_a_parameter_never_updated_is_saved_as_an_empty_state_and_loads(rng):
    """A parameter without a gradient so far has no state; the state dict says so with {}, which loads (the
    refusal above is for a state that lacks the parameter altogether)."""
    params = make_params(initial_values(rng))
    opt = Adam(params, lr=0.01)
    for p in params[:2]:
        p.grad = mt.ones(*p.shape, dtype="float64")
    opt.step()
    saved = opt.state_dict()
    assert saved["state"][2] == {} and set(saved["state"][0]) == {"step", "m", "v"}
    other = Adam(make_params(initial_values(rng)))
    other.load_state_dict(saved)
    assert [bool(other.state.get(p)) for p in other.param_groups[0]["params"]] == [True, True, False]
    assert Adam(make_params(initial_values(rng))).state_dict()["state"] == {}  # none stepped: none listed
    assert SGD(params, lr=0.1).state_dict()["state"] == {}


@pytest.mark.single_backend
def test_a_subclass_with_its_own_update_loads_its_own_state(rng):
    """Adam's state_entries were applied to a subclass whose update writes another entry too: it could not load
    its own state ("holds 'v_max', which AMSGrad does not write"). A class that changes update says its own entries,
    or none are checked."""
    class AMSGrad(Adam):
        def update(self, xp, theta, g, group, state):
            new = super().update(xp, theta, g, group, state)
            state["v_max"] = state["v"] if "v_max" not in state else xp.maximum(state["v_max"], state["v"])
            return new

    params = make_params(initial_values(rng))
    opt = AMSGrad(params, lr=0.01)
    run_library(opt, params, gradients(rng), steps=2)
    again = AMSGrad(make_params(initial_values(rng)), lr=0.01)
    again.load_state_dict(opt.state_dict())
    assert set(again.state[again.param_groups[0]["params"][0]]) == {"step", "m", "v", "v_max"}


@pytest.mark.single_backend
def test_load_state_dict_refuses_a_state_without_the_entries_the_optimizer_writes(rng):
    """{"step": 4} without m, v loaded, then a raw KeyError 'm' in the middle of training."""
    _, saved = _adam_state_after(rng)
    for bad, message in [
        ({"step": 4}, r"state of parameter 0 lacks 'm', 'v'; Adam's state of a parameter holds 'step', 'm', 'v'"),
        ({**saved["state"][0], "evil": 1}, r"state of parameter 0 holds 'evil', which Adam does not write; Adam's "
                                           r"state of a parameter holds 'step', 'm', 'v'"),
    ]:
        _refused_and_unchanged(lambda: Adam(make_params(initial_values(rng))), {**saved, "state": {
            **saved["state"], 0: bad}}, ValueError, r"^Adam\.load_state_dict: " + message)


@pytest.mark.single_backend
@pytest.mark.parametrize("step", [-1, float("nan"), 2.5, "4", True, None])
def test_load_state_dict_refuses_a_step_count_that_is_not_a_count(step, rng):
    """Adam's step -1 or NaN loaded, and the resumed run diverged (bias corrections of a step that is not one)."""
    _, saved = _adam_state_after(rng)
    bad = {**saved, "state": {**saved["state"], 2: {**saved["state"][2], "step": step}}}
    _refused_and_unchanged(lambda: Adam(make_params(initial_values(rng))), bad, (TypeError, ValueError),
                           r"^Adam\.load_state_dict: state 'step' of parameter 2 must be an integer >= 0 "
                           r"\(the steps taken\), got " + re.escape(repr(step)))


@pytest.mark.single_backend
def test_load_state_dict_accepts_a_step_count_as_npz_and_json_give_it(rng):
    opt, saved = _adam_state_after(rng)
    as_read = {**saved, "state": {k: {**s, "step": np.array(s["step"])} for k, s in saved["state"].items()}}
    other = Adam(make_params(initial_values(rng)))
    other.load_state_dict(as_read)
    assert [s["step"] for s in other.state.values()] == [2, 2, 2]
    assert all(type(s["step"]) is int for s in other.state.values())
    other.load_state_dict({**saved, "state": {str(k): s for k, s in saved["state"].items()}})  # JSON's keys


@pytest.mark.single_backend
def test_load_state_dict_refuses_moments_of_another_shape_dtype_or_not_finite(rng):
    _, saved = _adam_state_after(rng)
    m = saved["state"][0]["m"]
    for value, message in [
        (m.T, r"state 'm' of parameter 0 has shape \(4, 3\), the parameter has shape \(3, 4\)"),
        (m.astype(np.int64), r"state 'm' of parameter 0 must be a float array of the parameter's shape \(3, 4\), "
                             r"got an array of int64"),
        (m.tolist(), r"state 'm' of parameter 0 must be a float array of the parameter's shape \(3, 4\), got a list"),
        (np.full_like(m, np.nan), r"state 'm' of parameter 0 holds nan"),
        (np.full_like(m, np.inf), r"state 'm' of parameter 0 holds inf"),
    ]:
        bad = {**saved, "state": {**saved["state"], 0: {**saved["state"][0], "m": value}}}
        _refused_and_unchanged(lambda: Adam(make_params(initial_values(rng))), bad, (TypeError, ValueError),
                               r"^Adam\.load_state_dict: " + message)
    bad = {**saved, "state": {**saved["state"], 1: {**saved["state"][1], "v": -saved["state"][1]["v"] - 1}}}
    _refused_and_unchanged(lambda: Adam(make_params(initial_values(rng))), bad, ValueError,
                           r"^Adam\.load_state_dict: state 'v' of parameter 1 holds -\d.*; it is an average of "
                           r"squares, >= 0")


@pytest.mark.single_backend
def test_load_state_dict_checks_sgd_states_by_its_own_entries(rng):
    """SGD with momentum keeps a buffer per parameter; without momentum, nothing (a state of none)."""
    params = make_params(initial_values(rng))
    opt = SGD(params, lr=0.05, momentum=0.9)
    run_library(opt, params, gradients(rng), steps=2)
    saved = opt.state_dict()
    assert set(saved["state"]) == {0, 1, 2} and all(set(s) == {"momentum_buffer"} for s in saved["state"].values())
    SGD(make_params(initial_values(rng)), lr=0.1).load_state_dict(saved)
    plain = SGD(make_params(initial_values(rng)), lr=0.1)
    plain.load_state_dict(SGD(params, lr=0.3).state_dict())  # no momentum: no state, and none needed
    assert plain.state == {} and plain.param_groups[0]["lr"] == 0.3
    bad = {**saved, "state": {**saved["state"], 1: {"momentum_buffer": saved["state"][1]["momentum_buffer"],
                                                    "step": 3}}}
    _refused_and_unchanged(lambda: SGD(make_params(initial_values(rng)), lr=0.1), bad, ValueError,
                           r"^SGD\.load_state_dict: state of parameter 1 holds 'step', which SGD does not write; "
                           r"SGD's state of a parameter holds 'momentum_buffer'")


@pytest.mark.single_backend
def test_load_state_dict_refuses_parameter_numbers_that_are_not_its_own(rng):
    _, saved = _adam_state_after(rng)
    for state, message in [
        ({**saved["state"], "x": saved["state"][0]}, r"the saved state's key 'x' is not a parameter number"),
        ({0: saved["state"][0], 1.5: saved["state"][1], 2: saved["state"][2]},
         r"the saved state's key 1\.5 is not a parameter number"),
    ]:
        _refused_and_unchanged(lambda: Adam(make_params(initial_values(rng))), {**saved, "state": state},
                               ValueError, r"^Adam\.load_state_dict: " + message)
    twice = {**saved, "param_groups": [{**saved["param_groups"][0], "params": [0, 1, 1]}]}
    _refused_and_unchanged(lambda: Adam(make_params(initial_values(rng))), twice, ValueError,
                           r"^Adam\.load_state_dict: group 0 of the saved state lists parameter 1 twice")


# ------------------------------------------------------------------ convergence
CONVERGING = [
    (lambda p: SGD(p, lr=0.1), 1e-7),
    (lambda p: SGD(p, lr=0.05, momentum=0.9), 1e-7),
    (lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True), 1e-7),
    (lambda p: Adam(p, lr=0.05), 1e-7),
    (lambda p: AdamW(p, lr=0.05, weight_decay=1e-3), 1e-5),  # decay moves the minimum a little off w_true
]


@pytest.mark.parametrize("make,tolerance", CONVERGING, ids=["SGD", "momentum", "nesterov", "Adam", "AdamW"])
def test_least_squares_converges(make, tolerance, rng):
    X_np = rng.normal(size=(32, 4))
    w_true = np.array([1.5, -2.0, 0.5, 3.0])
    X, y = mt.tensor(X_np), mt.tensor(X_np @ w_true + 0.5)
    w, b = mt.zeros(4, dtype="float64", requires_grad=True), mt.zeros((), dtype="float64", requires_grad=True)
    opt = make([w, b])

    def loss_fn():
        r = X @ w + b - y
        return (r * r).mean()

    first = loss_fn().item()
    for _ in range(200):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < tolerance * first
    np.testing.assert_allclose(w.numpy(), w_true, atol=1e-2)


# ------------------------------------------------------------------ the warm-up schedule
@pytest.mark.single_backend
@pytest.mark.assignment(5, points=15)
def test_noam_lr_hand_values():
    # d_model = 16, warmup = 4: d_model^-0.5 = 1/4, warmup^-1.5 = 1/8
    hand = [
        ((1, 16, 4), 1 / 32, "1/4 * min(1, 1 * 1/8)"),
        ((2, 16, 4), 2 / 32, "1/4 * min(2^-0.5, 2 * 1/8): warm-up is linear"),
        ((4, 16, 4), 1 / 8, "1/4 * min(4^-0.5, 4 * 1/8): the peak, at step = warmup"),
        ((8, 16, 4), 0.08838834764831845, "1/4 * min(8^-0.5, 8 * 1/8) = 1/sqrt(128)"),
        ((8, 16, 4, 2.0), 2 * 0.08838834764831845, "factor 2 * 1/4 * 8^-0.5"),
        # the paper's base model, d_model = 512, warmup = 4000
        ((1, 512, 4000), 1.7469281074217108e-07, "1 / (sqrt(512) * 4000^1.5) = 1/(22.627 * 252982)"),
        ((4000, 512, 4000), 6.987712429686843e-04, "1 / sqrt(512 * 4000) = 1/1431.08"),
        ((8000, 512, 4000), 4.941058844013093e-04, "1 / sqrt(512 * 8000) = 1/2023.86"),
    ]
    for args, rate, how in hand:
        got = noam_lr(*args)
        assert got == pytest.approx(rate), (f"noam_lr(step, d_model, warmup_steps[, factor]) = noam_lr{args} = {got}, "
                                            f"not {rate}: factor d_model^-0.5 min(step^-0.5, step warmup^-1.5) = {how}")


@pytest.mark.single_backend
@pytest.mark.assignment(5, points=5)
def test_noam_lr_rises_then_falls():
    warmup = 10
    rates = np.array([noam_lr(t, 64, warmup) for t in range(1, 4 * warmup + 1)])
    assert np.all(np.diff(rates[:warmup]) > 0), f"the rate rises up to step = warmup = 10: {rates[:warmup].tolist()}"
    assert np.all(np.diff(rates[warmup - 1:]) < 0), f"the rate falls after step 10: {rates[warmup - 1:].tolist()}"
    assert int(np.argmax(rates)) + 1 == warmup, f"the peak is at step = warmup = 10, not {int(np.argmax(rates)) + 1}"
    np.testing.assert_allclose(rates[:warmup], rates[0] * np.arange(1, warmup + 1),
                               err_msg="steps 1 to 10: linear warm-up, step * warmup^-1.5 (times d_model^-0.5)")
    t = np.arange(warmup, 4 * warmup + 1)
    np.testing.assert_allclose(rates[warmup - 1:], rates[warmup - 1] * np.sqrt(warmup / t),
                               err_msg="steps 10 to 40: step^-0.5 (times d_model^-0.5)")


@pytest.mark.assignment(5, points=10)
def test_warmup_schedule_sets_every_group_and_drives_the_step():
    a, b = mt.zeros(2, requires_grad=True), mt.zeros(3, requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": [b], "weight_decay": 0.5}], lr=1.0)  # (groups of other lr are refused)
    schedule = WarmupSchedule(opt, d_model=16, warmup_steps=4)
    uses = ("WarmupSchedule sets every group's lr to noam_lr(step, d_model, warmup_steps): fix "
            "test_noam_lr_hand_values first")
    assert schedule.get_last_lr() == [pytest.approx(1 / 32)] * 2, (  # step 1 set at once
        f"{uses}; at step 1, d_model 16, warmup 4: 16^-0.5 * 1 * 4^-1.5 = 1/32 = 0.03125, got {schedule.get_last_lr()}")
    for t in range(1, 7):
        lr = noam_lr(t, 16, 4)
        assert [g["lr"] for g in opt.param_groups] == [lr, lr], f"{uses}; step {t}: {lr}"
        before = a.numpy().copy()
        a.grad = mt.ones(2)
        opt.step()
        np.testing.assert_allclose(a.numpy(), before - lr, rtol=1e-6)  # the t-th update used the rate of step t
        schedule.step()
    assert schedule.step_num == 7

    saved = schedule.state_dict()
    assert saved == {"step_num": 7, "d_model": 16, "warmup_steps": 4, "factor": 1.0}
    other = WarmupSchedule(SGD([mt.zeros(1, requires_grad=True)], lr=1.0), d_model=16, warmup_steps=4)
    other.load_state_dict({k: np.asarray(v) for k, v in saved.items()})  # as an .npz gives them back
    assert other.step_num == 7 and other.get_last_lr() == [pytest.approx(noam_lr(7, 16, 4))]
    other.step()
    schedule.step()
    assert other.get_last_lr()[0] == pytest.approx(schedule.get_last_lr()[0])


def test_lambda_lr_scales_each_group_base_rate():
    a, b = mt.zeros(2, requires_grad=True), mt.zeros(3, requires_grad=True)
    opt = Adam([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01}])
    schedule = LambdaLR(opt, lambda t: 1 / t)
    assert schedule.get_last_lr() == pytest.approx([0.1, 0.01])
    schedule.step()
    schedule.step()
    assert schedule.get_last_lr() == pytest.approx([0.1 / 3, 0.01 / 3])
    groups = [{"params": [mt.zeros(1, requires_grad=True)]} for _ in range(2)]
    other = LambdaLR(Adam(groups), lambda t: 1 / t)
    other.load_state_dict(schedule.state_dict())
    assert other.get_last_lr() == pytest.approx([0.1 / 3, 0.01 / 3])


@pytest.mark.single_backend
def test_a_schedule_stepped_before_the_optimizer_warns_once_as_torch_does():
    """``backward(); schedule.step(); optimizer.step()`` (torch's pre-1.1 order) skipped the first rate without a word:
    a warm-up over 4 steps used 0.5, 0.75, 1.0. The right order, and a schedule moved on with no gradient waiting
    (its docstrings' examples), say nothing."""
    def run(schedule_first):
        w = mt.zeros(2, requires_grad=True)
        opt = SGD([w], lr=1.0)
        schedule = LambdaLR(opt, lambda t: min(1.0, t / 4))
        used = []
        for _ in range(3):
            (w * 1.0).sum().backward()
            if schedule_first:
                schedule.step()
            used.append(opt.param_groups[0]["lr"])
            opt.step()
            opt.zero_grad()
            if not schedule_first:
                schedule.step()
        return used

    with pytest.warns(UserWarning, match=r"^LambdaLR\.step\(\) was called before optimizer\.step\(\), with the "
                                         r"gradients of a backward\(\) waiting for it: call optimizer\.step\(\) first, "
                                         r"then schedule\.step\(\); in this order every update skips a rate of the "
                                         r"schedule, the first the rate of step 1$") as said:
        assert run(schedule_first=True) == [0.5, 0.75, 1.0]
    assert len(said) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run(schedule_first=False) == [0.25, 0.5, 0.75]
        opt = SGD([mt.zeros(1, requires_grad=True)], lr=1.0)
        schedule = LambdaLR(opt, lambda t: 1 / t)
        schedule.step()  # no backward() yet: a schedule moved on by hand
        assert schedule.get_last_lr() == [0.5]


@pytest.mark.single_backend
def test_schedule_bad_input():
    opt = SGD([mt.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="steps count from 1"):
        noam_lr(0, 512)
    with pytest.raises(ValueError, match="d_model"):
        noam_lr(1, 0)
    with pytest.raises(ValueError, match=r"^WarmupSchedule: warmup_steps must be a positive integer "
                                         r"\(steps of warm-up\), got 0$"):
        WarmupSchedule(opt, d_model=512, warmup_steps=0)
    with pytest.raises(ValueError, match=r"^WarmupSchedule: d_model must be a positive integer "
                                         r"\(the model width\), got 0$"):
        WarmupSchedule(opt, d_model=0)
    # the function and the schedule take the paper's name alike (noam_lr's was warmup=, the schedule's warmup_steps=)
    with pytest.raises(ValueError, match=r"^noam_lr: warmup_steps must be a positive integer \(steps of warm-up\), "
                                         r"got 0$"):
        noam_lr(1, 512, warmup_steps=0)
    with pytest.raises(ValueError, match="factor"):
        noam_lr(1, 512, factor=0.0)
    # require_int's TypeError for what is not an integer, as for every count and size (its ValueError: one too small)
    with pytest.raises(TypeError, match=r"^noam_lr: step must be a positive integer \(steps count from 1\), got 1.5$"):
        noam_lr(1.5, 512)
    with pytest.raises(TypeError, match="Optimizer"):
        WarmupSchedule([mt.zeros(1, requires_grad=True)], d_model=512)
    # LambdaLR reads the groups' rates before the base class checks: it checks first (was an AttributeError)
    with pytest.raises(TypeError, match=r"^LambdaLR: expected an Optimizer \(e\.g\. optim\.Adam\(model\.parameters"
                                        r"\(\)\)\), got str$"):
        LambdaLR("x", lambda t: 1.0)
    assert opt.param_groups[0]["lr"] == 0.1  # the refused schedule changed nothing
    with pytest.raises(ValueError, match="keys"):
        WarmupSchedule(opt, d_model=512).load_state_dict({"step_num": 3})
    with pytest.raises(ValueError, match=r"^WarmupSchedule.load_state_dict: warmup_steps must be a positive integer"):
        WarmupSchedule(opt, d_model=512).load_state_dict({"step_num": 3, "d_model": 512, "warmup_steps": 0,
                                                          "factor": 1.0})


# ------------------------------------------------------------------ clipping
def _grads_for_clipping(rng, scale=1.0):
    params = make_params(initial_values(rng))
    grads = [scale * rng.normal(size=shape) for shape in SHAPES]
    for p, g in zip(params, grads):
        p.grad = mt.tensor(g)
    return params, grads


@pytest.mark.parametrize("ratio", [0.3, 3.0], ids=["clips", "leaves"])
def test_clip_grad_norm_matches_formula_and_torch(ratio, rng):
    params, grads = _grads_for_clipping(rng)
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))  # ||g|| over all parameters
    max_norm = ratio * norm
    total = clip_grad_norm_(params, max_norm)
    assert isinstance(total, mt.Tensor) and total.shape == () and total.backend is params[0].backend
    assert total.item() == pytest.approx(norm, rel=1e-12)
    factor = min(1.0, max_norm / (norm + 1e-6))
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * factor, rtol=1e-12)
    if ratio > 1:
        for p, g in zip(params, grads):
            np.testing.assert_array_equal(p.grad.numpy(), g)  # factor exactly 1: untouched
    else:
        clipped = math.sqrt(sum(float(np.sum(p.grad.numpy() ** 2)) for p in params))
        assert clipped == pytest.approx(max_norm, rel=1e-6)

    torch = pytest.importorskip("torch")
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.tensor(g)
    torch_total = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    assert rel_err(total.numpy(), torch_total.numpy()) < 1e-12
    for p, tp in zip(params, tparams):
        assert rel_err(p.grad.numpy(), tp.grad.numpy()) < 1e-12


def test_clip_grad_norm_skips_missing_gradients_and_keeps_float32(rng):
    a, b = mt.zeros(3, requires_grad=True), mt.zeros(2, requires_grad=True)
    a.grad = mt.tensor([3.0, 0.0, 4.0])
    total = clip_grad_norm_([a, b], max_norm=1.0)
    assert total.dtype_name == "float32" and a.grad.dtype_name == "float32" and b.grad is None
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0, 0.8], rtol=1e-5)
    assert clip_grad_norm_([b], max_norm=1.0).item() == 0.0  # nothing to clip


@pytest.mark.parametrize("big", [2e19, 1e30, 1e38])
def test_clip_grad_norm_of_large_finite_gradients_does_not_overflow(big):
    """Their squares overflow float32 (max 3.4e38): the norm was inf and every gradient became 0, silently."""
    w = mt.zeros(4, requires_grad=True)
    w.grad = mt.tensor([big, -big, big, big])
    total = clip_grad_norm_([w], max_norm=1.0)
    assert total.dtype_name == "float32" and total.item() == pytest.approx(2 * big, rel=1e-6)  # ||g|| = 2 big
    np.testing.assert_allclose(w.grad.numpy(), [0.5, -0.5, 0.5, 0.5], rtol=1e-6)


def test_clip_grad_norm_of_tiny_or_zero_gradients_leaves_them():
    w = mt.zeros(3, requires_grad=True)
    cases = [([0.0, 0.0, 0.0], 0.0), ([3e-30, 0.0, 4e-30], 5e-30)]
    if mt.backend.current().name != "cupy":  # CuPy's kernels flush float32 subnormals to 0 (compiled with -ftz)
        cases.append(([1e-40, 0.0, 0.0], 1e-40))  # subnormal
    for g, norm in cases:
        w.grad = mt.tensor(g)
        assert clip_grad_norm_([w], max_norm=1.0).item() == pytest.approx(norm, rel=1e-4, abs=0)
        np.testing.assert_array_equal(w.grad.numpy(), np.array(g, dtype=np.float32))


def test_clip_grad_norm_of_empty_gradients_is_zero():
    """A parameter of no elements has a gradient of none: max |g| of nothing failed inside NumPy."""
    empty, w = mt.zeros(0, requires_grad=True), mt.zeros(2, requires_grad=True)
    empty.grad = mt.zeros(0)
    assert clip_grad_norm_([empty], 1.0).item() == 0.0
    w.grad = mt.tensor([3.0, 4.0])
    assert clip_grad_norm_([empty, w], 1.0).item() == pytest.approx(5.0)
    assert empty.grad.shape == (0,)


def test_clip_grad_norm_of_a_non_finite_gradient_is_as_pytorch_s():
    """inf: the norm is inf, the finite gradients become 0 and the infinite NaN; nan: all NaN (no host read to refuse
    it; the Trainer reports the NaN loss that follows)."""
    w = mt.zeros(3, requires_grad=True)
    w.grad = mt.tensor([1.0, float("inf"), 0.0])
    with np.errstate(invalid="ignore"):  # inf * 0
        assert clip_grad_norm_([w], max_norm=1.0).item() == float("inf")
    assert w.grad.numpy()[[0, 2]].tolist() == [0.0, 0.0] and np.isnan(w.grad.numpy()[1])
    w.grad = mt.tensor([1.0, float("nan"), 0.0])
    assert np.isnan(clip_grad_norm_([w], max_norm=1.0).item()) and np.isnan(w.grad.numpy()).all()


def test_clip_grad_norm_refuses_gradients_of_two_dtypes():
    """Their norm would come back float64, the float32 ones promoted silently: refused, as two backends are."""
    a, c = mt.zeros(3, requires_grad=True), mt.zeros(2, dtype="float64", requires_grad=True)
    a.grad, c.grad = mt.tensor([3.0, 0.0, 4.0]), mt.tensor(np.array([12.0, 0.0]))
    with pytest.raises(TypeError, match=r"^clip_grad_norm_: gradients have different dtypes \(float32 \(3,\) and "
                                        r"float64 \(2,\)\); give the parameters one dtype, "
                                        r"e\.g\. model\.to\('float32'\)$"):
        clip_grad_norm_([a, c], max_norm=1.0)
    assert a.grad.tolist() == [3.0, 0.0, 4.0] and c.grad.tolist() == [12.0, 0.0]  # refused before any scaling


@pytest.mark.single_backend
def test_clip_grad_norm_bad_input():
    w = mt.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        clip_grad_norm_([w], 0.0)
    with pytest.raises(TypeError, match="not a Tensor"):
        clip_grad_norm_([np.zeros(2)], 1.0)


# ------------------------------------------------------------------ bad input
@pytest.mark.single_backend
@pytest.mark.parametrize(
    "make,error,message",
    [
        (lambda p: SGD(p, lr=-0.1), ValueError, "lr must be a finite number >= 0, got -0.1"),
        (lambda p: SGD(p, lr="0.1"), TypeError, "lr must be a finite number >= 0, got '0.1'"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), ValueError, "momentum"),
        (lambda p: SGD(p, lr=0.1, momentum=1.0), ValueError, r"SGD: momentum must be a number in \[0, 1\), got 1.0"),
        (lambda p: SGD(p, lr=0.1, nesterov=True), ValueError, "Nesterov momentum needs momentum > 0"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda p: Adam(p, lr=-1e-3), ValueError, "lr must be a finite number >= 0"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), ValueError, r"beta_1 must be a number in \[0, 1\), got 1.0"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError, r"beta_2 must be a number in \[0, 1\), got -0.1"),
        (lambda p: Adam(p, betas=(0.9,)), ValueError, "pair"),
        (lambda p: AdamW(p, eps=-1e-8), ValueError, "eps"),
        (lambda p: Adam(p, eps=0.0), ValueError, "eps must be a finite number > 0, got 0.0"),  # else 0 / 0 = NaN
        (lambda p: Adam([{"params": p, "momentum": 0.9}]), ValueError, "unknown hyperparameter"),
        (lambda p: Adam([{"params": p, "lr": float("nan")}]), ValueError, "lr must be a finite number >= 0, got nan"),
        (lambda p: Adam(p, lr=float("inf")), ValueError, "lr must be a finite number >= 0, got inf"),
    ],
)
def test_bad_hyperparameters(make, error, message):
    with pytest.raises(error, match=message):
        make([mt.zeros(2, requires_grad=True)])


@pytest.mark.single_backend
def test_bad_parameters():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam(iter([]))
    with pytest.raises(ValueError, match=r"parameter 1 \(shape \(3,\)\) does not require grad"):
        SGD([mt.zeros(2, requires_grad=True), mt.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="one Tensor"):
        Adam(mt.zeros(2, requires_grad=True))
    with pytest.raises(TypeError, match="not a Tensor"):
        Adam([np.zeros(2)])
    w = mt.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"^Adam: parameter 0 \(shape \(2,\)\) of group 1 is listed already, as "
                                         r"parameter 0 of group 0; list each parameter once$"):
        Adam([{"params": [w]}, {"params": [w]}])
    v = mt.zeros(3, requires_grad=True)  # one group, w twice: it said "more than one group"
    with pytest.raises(ValueError, match=r"^Adam: parameter 2 \(shape \(2,\)\) of group 0 is listed already, as "
                                         r"parameter 0 of group 0; list each parameter once$"):
        Adam([w, v] * 2)
    with pytest.raises(ValueError, match="not a leaf"):
        Adam([w * 2])
    opt = SGD([w], lr=0.1)
    w.grad = mt.zeros(2)
    w.data = w.backend.xp.zeros(3, dtype=w.backend.xp.float32)  # the parameter replaced after its gradient was set
    with pytest.raises(ValueError, match=r"^SGD.step: a gradient of shape \(2,\) and dtype float32 for a tensor of "
                                         r"shape \(3,\) and dtype float32"):
        opt.step()
    w.data = w.backend.xp.zeros(2, dtype=w.backend.xp.float64)
    with pytest.raises(TypeError, match=r"^SGD.step: a gradient of shape \(2,\) and dtype float32 for a tensor of "
                                        r"shape \(2,\) and dtype float64"):
        opt.step()


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.1)],
                         ids=["sgd_momentum", "adam"])
def test_the_state_follows_the_parameters_dtype_after_model_to(make):
    """After model.to('float64') mid-training Adam's moments stayed float32; SGD's momentum, float64 after it, made
    the parameter float64 again at the step after model.to('float32'), and the next forward refused the model."""
    model = mt.nn.Linear(3, 2)
    opt = make(list(model.parameters()))

    def step():
        opt.zero_grad()
        model(mt.ones(2, 3, dtype=model.weight.dtype_name)).sum().backward()
        opt.step()

    step()
    for dtype in ("float64", "float32"):
        model.to(dtype)
        step()
        arrays = {k: v for k, v in opt.state[model.weight].items() if hasattr(v, "dtype")}
        assert model.weight.dtype_name == model.bias.dtype_name == dtype
        assert arrays and all(mt.backend.dtype_name(v.dtype) == dtype for v in arrays.values()), (dtype, arrays)
    assert model(mt.ones(1, 3)).dtype_name == "float32"


@pytest.mark.single_backend
def test_the_paper_schedule_refuses_groups_of_different_rates_and_names_the_schedule_that_keeps_them():
    """WarmupSchedule set every group's lr to the paper's one rate: a group given lr 1e-4 beside one of 1e-3 got the
    same, silently. What the message writes keeps their ratio and peaks at each group's rate."""
    a, b = mt.zeros(2, requires_grad=True), mt.zeros(2, requires_grad=True)
    opt = Adam([{"params": [a], "lr": 1e-4}, {"params": [b]}], lr=1e-3)
    with pytest.raises(ValueError, match=r"^WarmupSchedule: the parameter groups have different rates, lr \[0\.0001, "
                                         r"0\.001\], .* LambdaLR\(optimizer, lambda t: noam_lr\(t, 16, 4\) / "
                                         r"noam_lr\(4, 16, 4\)\)$") as e:
        WarmupSchedule(opt, d_model=16, warmup_steps=4)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3]  # refused before it set a rate
    written = re.search(r"(LambdaLR\(optimizer, .*\))$", str(e.value)).group(1)
    schedule = eval(written, {"LambdaLR": LambdaLR, "noam_lr": noam_lr, "optimizer": opt})
    for _ in range(3):
        schedule.step()
    assert schedule.get_last_lr() == [pytest.approx(1e-4), pytest.approx(1e-3)]  # step 4, the peak: each its own
    one = Adam([{"params": [a], "lr": 1e-3}, {"params": [b], "weight_decay": 0.1}], lr=1e-3)  # equal rates: as before
    assert WarmupSchedule(one, d_model=16, warmup_steps=4).get_last_lr() == [0.03125, 0.03125]
