"""Every primitive operation, three ways: forward against plain NumPy float64, backward against
central differences (``gradcheck``), and backward against PyTorch's autograd where torch is installed.

One table, ``CASES``, drives all three tests: each row gives the operation written for minitransformer,
the same operation in NumPy and in PyTorch, and the shapes (and value domain) of its inputs. Shapes
include broadcasting ones, (2, 3) + (3,) and (4, 1, 3) * (2, 1), whose gradients the engine must sum
back. Random data has no ties (max, maximum, relu); ties get their own tests later. The same rows run
on float32 inputs (everything stays float32) and on int64 inputs (refused, or an integer result).

At the end, the safety net for a new primitive: every ``Function`` of ``autograd/ops.py`` must have a row
in ``CASES`` and in the property tables of ``tests/test_gradcheck.py``, every ``float_only`` one a row in
``FLOAT_ONLY`` of ``tests/test_bad_input.py``, every fused one of ``autograd/fused.py`` a row in ``FUSABLE``
of ``tests/test_fused.py`` (or an exemption, with its reason, here); and the operations and formulas may
not call numpy by name. See "How to add a primitive or a formula" in docs/testing.md.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.autograd import fused

from references import module_from_file

# ------------------------------------------------------------------ the table


def case(mt_fn, np_fn, torch_fn, *shapes, domain="any", gradcheck=None):
    """A row of the table: ``domain`` is one name for all inputs or a tuple, one per input."""
    domains = (domain,) * len(shapes) if isinstance(domain, str) else domain
    return {"mt": mt_fn, "np": np_fn, "torch": torch_fn, "shapes": shapes, "domains": domains,
            "gradcheck": gradcheck or {}}


def _torch():
    import torch

    return torch


def _t(array):
    """A constant NumPy array as a torch tensor (inside the torch lambdas)."""
    return _torch().from_numpy(np.asarray(array))


def _np_split(a, sizes, axis):
    return tuple(np.split(a, np.cumsum(sizes)[:-1], axis=axis))


COND = np.array([[True, False, True], [False, False, True]])
COND_ROW = np.array([False, True, True])
IDS = np.array([[1, 4, 1], [0, 1, 4]])  # repeated ids: rows 1 and 4 used twice

CASES = {
    # arithmetic, including broadcasting and Python numbers
    "add (2,3)+(3,)": case(lambda a, b: a + b, np.add, lambda a, b: a + b, (2, 3), (3,)),
    "add (4,1,3)+(2,1)": case(lambda a, b: a + b, np.add, lambda a, b: a + b, (4, 1, 3), (2, 1)),
    # b's size-1 axis meets the output's axis 3 (4 + 1 - 2 axes in): counted from the left, axis 1 has size 1 too
    "add (2,1,1,3)+(4,1)": case(lambda a, b: a + b, np.add, lambda a, b: a + b, (2, 1, 1, 3), (4, 1)),
    "add ()+(2,3)": case(lambda a, b: a + b, np.add, lambda a, b: a + b, (), (2, 3)),
    "add number": case(lambda a: 2.5 + a, lambda a: 2.5 + a, lambda a: 2.5 + a, (2, 3)),
    "sub (3,)-(2,3)": case(lambda a, b: a - b, np.subtract, lambda a, b: a - b, (3,), (2, 3)),
    "sub number": case(lambda a: 1.5 - a, lambda a: 1.5 - a, lambda a: 1.5 - a, (2, 3)),
    "mul (4,1,3)*(2,1)": case(lambda a, b: a * b, np.multiply, lambda a, b: a * b, (4, 1, 3), (2, 1)),
    "mul (2,3)*(1,)": case(lambda a, b: a * b, np.multiply, lambda a, b: a * b, (2, 3), (1,)),
    "mul number": case(lambda a: a * -3.0, lambda a: a * -3.0, lambda a: a * -3.0, (2, 3)),
    "div (2,3)/(3,)": case(lambda a, b: a / b, np.divide, lambda a, b: a / b, (2, 3), (3,), domain=("any", "pos")),
    "div (3,1)/(1,4)": case(lambda a, b: a / b, np.divide, lambda a, b: a / b, (3, 1), (1, 4), domain=("any", "pos")),
    "div number by tensor": case(lambda a: 2.0 / a, lambda a: 2.0 / a, lambda a: 2.0 / a, (2, 3), domain="pos"),
    "neg": case(lambda a: -a, np.negative, lambda a: -a, (2, 3)),
    "pow 3": case(lambda a: a**3, lambda a: a**3, lambda a: a**3, (2, 3)),
    "pow 2.5": case(lambda a: a**2.5, lambda a: a**2.5, lambda a: a**2.5, (2, 3), domain="pos"),
    "pow -1.5": case(lambda a: a**-1.5, lambda a: a**-1.5, lambda a: a**-1.5, (2, 3), domain="pos"),
    "pow tensor exponent": case(lambda a, b: a**b, np.power, lambda a, b: a**b, (2, 3), (3,), domain=("pos", "any")),
    # 0-d results (NumPy returns them as numpy.float64 scalars, which must not pass for Python numbers)
    "pow 0-d results": case(lambda a, b: a.sum() ** b.sum(), lambda a, b: a.sum() ** b.sum(),
                            lambda a, b: a.sum() ** b.sum(), (3,), (2,), domain="pos"),
    "pow number base": case(lambda b: 2.0**b, lambda b: 2.0**b, lambda b: 2.0**b, (2, 3)),
    "pow number base < 1": case(lambda b: 0.5**b, lambda b: 0.5**b, lambda b: 0.5**b, (2, 3)),  # log 0.5 < 0
    # elementwise functions
    "exp": case(lambda a: a.exp(), np.exp, lambda a: a.exp(), (2, 3)),
    "log": case(lambda a: a.log(), np.log, lambda a: a.log(), (2, 3), domain="pos"),
    "log1p": case(lambda a: a.log1p(), np.log1p, lambda a: a.log1p(), (2, 3), domain="gt-1"),
    "sqrt": case(lambda a: a.sqrt(), np.sqrt, lambda a: a.sqrt(), (2, 3), domain="pos"),
    "tanh": case(lambda a: a.tanh(), np.tanh, lambda a: a.tanh(), (2, 3)),
    "sigmoid": case(lambda a: a.sigmoid(), lambda a: 1.0 / (1.0 + np.exp(-a)), lambda a: a.sigmoid(), (2, 3)),
    "relu": case(lambda a: a.relu(), lambda a: np.where(a > 0, a, 0.0), lambda a: a.relu(), (3, 4), domain="nonzero"),
    "maximum (2,3),(3,)": case(mt.maximum, np.maximum, lambda a, b: _torch().maximum(a, b), (2, 3), (3,)),
    "maximum number": case(lambda a: mt.maximum(a, 0.3), lambda a: np.maximum(a, 0.3),
                           lambda a: _torch().clamp_min(a, 0.3), (3, 4)),
    # reductions: all axes, one axis, negative axes, tuples, keepdims
    "sum all": case(lambda a: a.sum(), np.sum, lambda a: a.sum(), (2, 3, 4)),
    "sum 0": case(lambda a: a.sum(axis=0), lambda a: a.sum(axis=0), lambda a: a.sum(dim=0), (2, 3, 4)),
    "sum -1 keepdims": case(lambda a: a.sum(axis=-1, keepdims=True), lambda a: a.sum(axis=-1, keepdims=True),
                            lambda a: a.sum(dim=-1, keepdim=True), (2, 3, 4)),
    "sum 1": case(lambda a: a.sum(axis=1), lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), (2, 3, 4)),
    # square: ybar of shape (3,) broadcasts to (3, 3) without its axis put back, along the wrong axis, silently
    "sum -1 square": case(lambda a: a.sum(axis=-1), lambda a: a.sum(axis=-1), lambda a: a.sum(dim=-1), (3, 3)),
    "sum (0,2)": case(lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(axis=(0, 2)),
                      lambda a: a.sum(dim=(0, 2)), (2, 3, 4)),
    "sum (0,-1) keepdims": case(lambda a: a.sum(axis=(0, -1), keepdims=True),
                                lambda a: a.sum(axis=(0, -1), keepdims=True),
                                lambda a: a.sum(dim=(0, -1), keepdim=True), (2, 3, 4)),
    "mean all": case(lambda a: a.mean(), np.mean, lambda a: a.mean(), (2, 3, 4)),
    "mean -2": case(lambda a: a.mean(axis=-2), lambda a: a.mean(axis=-2), lambda a: a.mean(dim=-2), (2, 3, 4)),
    "mean (1,2) keepdims": case(lambda a: a.mean(axis=(1, 2), keepdims=True),
                                lambda a: a.mean(axis=(1, 2), keepdims=True),
                                lambda a: a.mean(dim=(1, 2), keepdim=True), (2, 3, 4)),
    "max all": case(lambda a: a.max(), np.max, lambda a: a.amax(), (2, 3, 4)),
    "max 1": case(lambda a: a.max(axis=1), lambda a: a.max(axis=1), lambda a: a.amax(dim=1), (2, 3, 4)),
    "max -1 keepdims": case(lambda a: a.max(axis=-1, keepdims=True), lambda a: a.max(axis=-1, keepdims=True),
                            lambda a: a.amax(dim=-1, keepdim=True), (2, 3, 4)),
    "max (0,2)": case(lambda a: a.max(axis=(0, 2)), lambda a: a.max(axis=(0, 2)),
                      lambda a: a.amax(dim=(0, 2)), (2, 3, 4)),
    # matrix products: plain, batched (B,T,D)@(D,E), broadcast batch axes, 1-D operands
    "affine (B,T,D)W + b": case(lambda x, W, b: fused.Affine.apply(x, W, b), lambda x, W, b: x @ W + b,
                                lambda x, W, b: x @ W + b, (2, 3, 4), (4, 5), (5,)),
    "affine xW": case(lambda x, W: fused.Affine.apply(x, W, None), np.matmul, lambda x, W: x @ W, (3, 4), (4, 2)),
    "matmul (2,3)@(3,4)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (2, 3), (3, 4)),
    "matmul (B,T,D)@(D,E)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (4, 2, 3), (3, 5)),
    "matmul (D,E)@(B,E,F)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (2, 3), (4, 3, 2)),
    "matmul (2,1,2,3)@(3,3,2)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (2, 1, 2, 3), (3, 3, 2)),
    "matmul (3,)@(3,)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (3,), (3,)),
    "matmul (3,)@(2,3,4)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (3,), (2, 3, 4)),
    "matmul (2,3,4)@(4,)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (2, 3, 4), (4,)),
    # size-0 inner or outer axes: the folded (rows, d) product must not leave its row count to reshape's -1
    "matmul (2,3,0)@(0,4)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (2, 3, 0), (0, 4)),
    "matmul (2,3,4)@(4,0)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (2, 3, 4), (4, 0)),
    "matmul (2,3,0)@(0,)": case(mt.matmul, np.matmul, lambda a, b: a @ b, (2, 3, 0), (0,)),
    "affine (2,3,0)W(0,4)": case(lambda x, W: fused.Affine.apply(x, W, None), np.matmul, lambda x, W: x @ W,
                                 (2, 3, 0), (0, 4)),
    "affine (2,3,4)W(4,0)": case(lambda x, W: fused.Affine.apply(x, W, None), np.matmul, lambda x, W: x @ W,
                                 (2, 3, 4), (4, 0)),
    # shapes
    "reshape": case(lambda a: a.reshape(6, 4), lambda a: a.reshape(6, 4), lambda a: a.reshape(6, 4), (2, 3, 4)),
    "reshape -1 tuple": case(lambda a: a.reshape((4, -1)), lambda a: a.reshape(4, -1),
                             lambda a: a.reshape(4, -1), (2, 3, 4)),
    "permute": case(lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1),
                    lambda a: a.permute(2, 0, 1), (2, 3, 4)),
    "transpose()": case(lambda a: a.transpose(), lambda a: a.transpose(), lambda a: a.permute(2, 1, 0), (2, 3, 4)),
    "transpose(1,0,2)": case(lambda a: a.transpose(1, 0, 2), lambda a: a.transpose(1, 0, 2),
                             lambda a: a.permute(1, 0, 2), (2, 3, 4)),
    "swapaxes(0,-1)": case(lambda a: a.swapaxes(0, -1), lambda a: a.swapaxes(0, -1),
                           lambda a: a.swapaxes(0, -1), (2, 3, 4)),
    "mT": case(lambda a: a.mT, lambda a: a.swapaxes(-1, -2), lambda a: a.mT, (2, 3, 4)),
    "T": case(lambda a: a.T, lambda a: a.T, lambda a: a.T, (3, 4)),
    # basic indexing
    "getitem int": case(lambda a: a[1], lambda a: a[1], lambda a: a[1], (2, 3, 4)),
    "getitem -1": case(lambda a: a[-1], lambda a: a[-1], lambda a: a[-1], (2, 3, 4)),
    "getitem ints": case(lambda a: a[0, 2, 1], lambda a: a[0, 2, 1], lambda a: a[0, 2, 1], (2, 3, 4)),
    "getitem slices": case(lambda a: a[:, 1:3], lambda a: a[:, 1:3], lambda a: a[:, 1:3], (2, 3, 4)),
    "getitem step": case(lambda a: a[::2, :, 1::2], lambda a: a[::2, :, 1::2], lambda a: a[::2, :, 1::2], (3, 3, 4)),
    # bounds beyond the axis, read as NumPy reads them (array-api-strict refuses them: the index is clamped first)
    "getitem bounds beyond": case(lambda a: a[1:10, -7:2, 9::-2], lambda a: a[1:10, -7:2, 9::-2],
                                  lambda a: a[1:10, -7:2].flip(-1)[..., ::2], (3, 3, 4)),
    "getitem past the end": case(lambda a: a[5:, :1], lambda a: a[5:, :1], lambda a: a[5:, :1], (3, 4)),
    "getitem of no rows": case(lambda a: a[:1], lambda a: a[:1], lambda a: a[:1], (0, 4)),
    "getitem None": case(lambda a: a[None], lambda a: a[None], lambda a: a[None], (2, 3)),
    "getitem None mid": case(lambda a: a[:, None, 1], lambda a: a[:, None, 1], lambda a: a[:, None, 1], (2, 3, 4)),
    "getitem ellipsis": case(lambda a: a[..., 0], lambda a: a[..., 0], lambda a: a[..., 0], (2, 3, 4)),
    "getitem int ellipsis None": case(lambda a: a[1, ..., None, 1:], lambda a: a[1, ..., None, 1:],
                                      lambda a: a[1, ..., None, 1:], (2, 3, 4)),
    # integer-array lookups
    "getitem ids (repeated)": case(lambda a: a[[0, 2, 0]], lambda a: a[[0, 2, 0]],
                                   lambda a: a[[0, 2, 0]], (3, 4)),
    "take embedding (repeated ids)": case(lambda E: mt.take(E, IDS), lambda E: E[IDS],
                                          lambda E: E[_t(IDS)], (5, 3)),
    "take embedding Tensor ids": case(lambda E: E[mt.tensor(IDS)], lambda E: E[IDS],
                                      lambda E: E[_t(IDS)], (5, 3)),
    "take axis 1": case(lambda a: mt.take(a, [3, 0, 3], axis=1), lambda a: np.take(a, [3, 0, 3], axis=1),
                        lambda a: a[:, [3, 0, 3]], (2, 4, 3)),
    "take axis -1 negative ids": case(lambda a: mt.take(a, [[2, 2], [0, -1]], axis=-1),
                                      lambda a: np.take(a, [[2, 2], [0, -1]], axis=-1),
                                      lambda a: a[..., _t([[2, 2], [0, 2]])], (2, 3)),
    "take ids -V and V - 1": case(lambda a: mt.take(a, [-4, 3], axis=1), lambda a: np.take(a, [-4, 3], axis=1),
                                  lambda a: a[:, [0, 3]], (2, 4, 3)),  # the first and the last row, both ways
    # joining and cutting
    "concat axis 0": case(lambda a, b: mt.concat([a, b], axis=0), lambda a, b: np.concatenate([a, b], axis=0),
                          lambda a, b: _torch().cat([a, b], dim=0), (2, 3), (1, 3)),
    "concat axis -1 three": case(lambda a, b, c: mt.concat([a, b, c], axis=-1),
                                 lambda a, b, c: np.concatenate([a, b, c], axis=-1),
                                 lambda a, b, c: _torch().cat([a, b, c], dim=-1), (2, 3), (2, 1), (2, 2)),
    "stack axis 0": case(lambda a, b: mt.stack([a, b]), lambda a, b: np.stack([a, b]),
                         lambda a, b: _torch().stack([a, b]), (2, 3), (2, 3)),
    "stack axis -1": case(lambda a, b: mt.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], axis=-1),
                          lambda a, b: _torch().stack([a, b], dim=-1), (2, 3), (2, 3)),
    "stack axis 1": case(lambda a, b, c: mt.stack([a, b, c], axis=1), lambda a, b, c: np.stack([a, b, c], axis=1),
                         lambda a, b, c: _torch().stack([a, b, c], dim=1), (2, 3), (2, 3), (2, 3)),
    "stack one": case(lambda a: mt.stack([a], axis=1), lambda a: np.stack([a], axis=1),
                      lambda a: _torch().stack([a], dim=1), (2, 3)),
    "split equal": case(lambda a: tuple(a.split(3, axis=-1)), lambda a: tuple(np.split(a, 3, axis=-1)),
                        lambda a: a.split(2, dim=-1), (4, 6)),
    "split sizes": case(lambda a: tuple(mt.split(a, [1, 3], axis=0)), lambda a: _np_split(a, [1, 3], 0),
                        lambda a: a.split([1, 3], dim=0), (4, 2)),
    # selecting
    "where": case(lambda a, b: mt.where(mt.tensor(COND), a, b), lambda a, b: np.where(COND, a, b),
                  lambda a, b: _torch().where(_t(COND), a, b), (2, 3), (3,)),
    "where broadcast cond, number": case(lambda a: mt.where(mt.tensor(COND_ROW), a, 0.5),
                                         lambda a: np.where(COND_ROW, a, 0.5),
                                         lambda a: _torch().where(_t(COND_ROW), a, 0.5), (2, 3)),
    "masked_fill": case(lambda a: a.masked_fill(mt.tensor(COND_ROW), -5.0), lambda a: np.where(COND_ROW, -5.0, a),
                        lambda a: a.masked_fill(_t(COND_ROW), -5.0), (2, 3)),
    "masked_fill function": case(lambda a: mt.masked_fill(a, mt.tensor(COND), 2.0), lambda a: np.where(COND, 2.0, a),
                                 lambda a: a.masked_fill(_t(COND), 2.0), (2, 3)),
    # dtype: float64 -> float32 -> float64 (central differences need a wide step through float32)
    "cast round trip": case(lambda a: mt.cast(mt.cast(a, "float32"), "float64"),
                            lambda a: a.astype(np.float32).astype(np.float64),
                            lambda a: a.float().double(), (2, 3), gradcheck={"eps": 1e-2, "atol": 1e-5}),
    "to float32 and back": case(lambda a: a.to("float32").to("float64"),
                                lambda a: a.astype(np.float32).astype(np.float64),
                                lambda a: a.float().double(), (3,), gradcheck={"eps": 1e-2, "atol": 1e-5}),
}


def _sample(shape, domain, rng):
    if domain == "pos":  # log, sqrt, divisors, bases of real powers
        return rng.uniform(0.5, 2.0, size=shape)
    if domain == "gt-1":  # log1p: defined above -1; negatives too
        return rng.uniform(-0.9, 2.0, size=shape)
    if domain == "nonzero":  # relu: keep away from the kink at 0
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 2.0, size=shape)
    return rng.standard_normal(size=shape)


def _arrays(spec, rng):
    return [np.asarray(_sample(s, d, rng), dtype=np.float64) for s, d in zip(spec["shapes"], spec["domains"])]


def _tuple(out):
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def _mt_grads(spec, arrays, cotangents):
    """Gradients of <v, f(x)> from minitransformer's backward, as NumPy float64."""
    xs = [mt.tensor(a, requires_grad=True) for a in arrays]
    outs = _tuple(spec["mt"](*xs))
    loss = sum((o * mt.tensor(v)).sum() for o, v in zip(outs, cotangents))
    loss.backward()
    return [x.grad.numpy() for x in xs]


PARAMS = pytest.mark.parametrize("name", list(CASES))


# ------------------------------------------------------------------ the three tests
@PARAMS
def test_forward_matches_numpy(name, rng):
    spec = CASES[name]
    arrays = _arrays(spec, rng)
    got = _tuple(spec["mt"](*[mt.tensor(a) for a in arrays]))
    want = _tuple(spec["np"](*arrays))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.backend is mt.backend.current()
        assert g.dtype_name == "float64"
        assert g.shape == np.shape(w)
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-14)


@PARAMS
@pytest.mark.assignment(1, points=20)
def test_gradcheck(name, rng):
    spec = CASES[name]
    xs = [mt.tensor(a, requires_grad=True) for a in _arrays(spec, rng)]
    assert mt.gradcheck(spec["mt"], *xs, **spec["gradcheck"])


@PARAMS
@pytest.mark.assignment(1, points=20)
def test_gradient_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    spec = CASES[name]
    arrays = _arrays(spec, rng)
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    outs = _tuple(spec["torch"](*ts))
    cotangents = [rng.standard_normal(tuple(o.shape)) for o in outs]
    loss = sum((o * torch.from_numpy(v)).sum() for o, v in zip(outs, cotangents))
    want = torch.autograd.grad(loss, ts)
    got = _mt_grads(spec, arrays, cotangents)
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{name}: the gradient of input {k} (shape {g.shape}) vs torch.autograd")


@PARAMS
@pytest.mark.assignment(1, points=5)
def test_backward_leaves_ybar_and_what_forward_kept_alone(name, rng):
    """Each output's backward is run twice, from a seed ybar handed in by the caller: the seed, the inputs and the
    outputs must come out unchanged, and the second run must give the same gradient (it adds to .grad: twice the
    first). A backward that writes into ybar (``grad *= y``) or into what forward kept (``self.y **= 2``) passed
    every other test: each of them runs backward once, from a ybar no one else reads."""
    spec = CASES[name]
    arrays = _arrays(spec, rng)
    xs = [mt.tensor(a, requires_grad=True) for a in arrays]
    outs = _tuple(spec["mt"](*xs))
    values = [o.numpy().copy() for o in outs]
    seeds = [rng.standard_normal(o.shape) for o in outs]
    for run in (1, 2):
        for k, (o, v) in enumerate(zip(outs, seeds)):
            seed = mt.tensor(v, dtype="float64")
            o.backward(seed, retain_graph=True)
            np.testing.assert_array_equal(seed.numpy(), v, err_msg=f"{name}: backward {run} of output {k} changed "
                                          "ybar, the gradient it was given: compute into a new array (grad * y, "
                                          "not grad *= y); the engine may hand the same ybar to another input")
        if run == 1:
            first = [x.grad.numpy().copy() for x in xs]
    for k, (x, a) in enumerate(zip(xs, arrays)):
        np.testing.assert_array_equal(x.numpy(), a, err_msg=f"{name}: backward changed input {k}")
    for k, (o, v) in enumerate(zip(outs, values)):
        np.testing.assert_array_equal(o.numpy(), v, err_msg=f"{name}: backward changed output {k}: the forward's "
                                      "result, which backward may read (y of exp, tanh, sqrt), must stay as it was")
    for k, (x, g) in enumerate(zip(xs, first)):
        np.testing.assert_allclose(x.grad.numpy(), 2 * g, rtol=1e-12, atol=1e-14, err_msg=(
            f"{name}: input {k}: two backward runs through the same graph must add the same gradient twice; the "
            "second differs, so the first changed what forward kept (self.x, self.y) or ybar"))


@pytest.mark.parametrize("name", [n for n in CASES if len(CASES[n]["shapes"]) > 1])
def test_each_input_alone_gets_the_same_gradient(name, rng):
    """Only input k wants a gradient (a frozen weight, a constant): the operation keeps what k's gradient needs
    and computes it, the same as when every input wants one, and gives the others none."""
    spec = CASES[name]
    arrays = _arrays(spec, rng)
    cotangents = [rng.standard_normal(np.shape(o)) for o in _tuple(spec["np"](*arrays))]
    every = _mt_grads(spec, arrays, cotangents)
    for k in range(len(arrays)):
        xs = [mt.tensor(a, requires_grad=i == k) for i, a in enumerate(arrays)]
        sum((o * mt.tensor(v)).sum() for o, v in zip(_tuple(spec["mt"](*xs)), cotangents)).backward()
        np.testing.assert_allclose(xs[k].grad.numpy(), every[k], rtol=1e-12, atol=1e-14, err_msg=f"input {k}")
        assert all(x.grad is None for i, x in enumerate(xs) if i != k)


# ------------------------------------------------------------------ properties of single operations
def test_python_number_keeps_dtype():
    """A Python number is weakly typed: it takes the tensor's dtype instead of promoting it."""
    for dtype in ("float32", "float64"):
        x = mt.ones(2, dtype=dtype)
        for y in (x + 1.5, 2.0 * x, x / 3.0, 1.0 - x, x**2, 2.0**x, mt.maximum(x, 0.5)):
            assert y.dtype_name == dtype


@pytest.mark.assignment(1, points=5)
def test_broadcast_gradient_has_input_shape():
    # (4,1,3) * (2,1) -> (4,2,3): each element of b meets 4*3 elements of a; db[i] = sum over them of a
    a = mt.tensor(np.arange(12.0).reshape(4, 1, 3), requires_grad=True)
    b = mt.tensor(np.ones((2, 1)), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (4, 1, 3) and b.grad.shape == (2, 1)
    np.testing.assert_array_equal(b.grad.numpy(), np.full((2, 1), sum(range(12))))
    np.testing.assert_array_equal(a.grad.numpy(), np.full((4, 1, 3), 2.0))


@pytest.mark.assignment(1, points=5)
def test_take_repeated_ids_add_up():
    """Embedding gradient: a row looked up k times gets k copies of the incoming gradient."""
    E = mt.tensor(np.zeros((5, 2)), requires_grad=True)
    mt.take(E, [[1, 4, 1], [1, 0, 3]]).sum().backward()
    counts = np.array([1, 3, 0, 1, 1], dtype=np.float64)  # id 1 three times, id 2 never
    np.testing.assert_array_equal(E.grad.numpy(), np.repeat(counts[:, None], 2, axis=1))


@pytest.mark.assignment(1, points=5)
def test_masked_fill_minus_inf_gives_zero_gradient():
    """Attention's mask: exp(-inf) = 0, and the hidden positions get gradient 0, not NaN."""
    x = mt.tensor(np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), requires_grad=True)
    mask = mt.tensor(np.array([[False, True, True], [False, False, True]]))
    y = x.masked_fill(mask, float("-inf")).exp()
    np.testing.assert_array_equal(y.numpy(), np.where(mask.numpy(), 0.0, np.exp(x.numpy())))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask.numpy(), 0.0, np.exp(x.numpy())))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log1p_is_exact_where_one_plus_x_rounds(dtype):
    """ln(1 + x) = x - x^2/2 + ...: for x = 1e-20, x itself; (1 + x).log() gives 0 (1 + 1e-20 rounds to 1)."""
    x = mt.tensor([1e-20, -1e-20, 1e-10], dtype=dtype, requires_grad=True)
    y = x.log1p()
    assert y.dtype_name == dtype
    np.testing.assert_allclose(y.numpy(), [1e-20, -1e-20, 1e-10 - 5e-21], rtol=1e-6 if dtype == "float32" else 1e-15)
    assert (1.0 + x).log().numpy()[0] == 0.0  # what log1p avoids
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0], rtol=1e-7)  # 1 / (1 + x)


def test_cast_to_integer_has_no_gradient():
    x = mt.tensor([1.5, -2.5], dtype="float64", requires_grad=True)
    ids = mt.cast(x, "int64")
    assert ids.dtype_name == "int64" and not ids.requires_grad
    np.testing.assert_array_equal(ids.numpy(), [1, -2])


@pytest.mark.assignment(1, points=5)
def test_cast_gradient_comes_back_in_input_dtype():
    x = mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = mt.cast(x, "float32")
    assert y.dtype_name == "float32"
    (y * y).sum().backward()
    assert x.grad.dtype_name == "float64"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


# ------------------------------------------------------------------ ties: the gradient is shared equally
@pytest.mark.assignment(1, points=5)
def test_max_ties_share_gradient():
    # row 0: max 3 twice -> 1/2 each; row 1: max 2 twice -> 1/2 each; the whole: max 3 twice
    x = mt.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [0.5, 0.5, 0]],
                                  err_msg="Max.backward: ybar shared equally among the tied largest elements")
    x.grad = None
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]],
                                  err_msg="Max.backward over all axes: ybar shared by the two 3s")


@pytest.mark.assignment(1, points=5)
def test_max_three_way_tie_splits_in_thirds():
    x = mt.tensor(np.array([2.0, 2.0, 2.0, 1.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1 / 3, 1 / 3, 1 / 3, 0],
                               err_msg="Max.backward: ybar / 3 to each of three tied largest elements")


@pytest.mark.assignment(1, points=5)
def test_maximum_tie_splits_in_half():
    a = mt.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = mt.tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True)
    mt.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0, 0.5, 1], err_msg="Maximum.backward, a: half of ybar at a tie")
    np.testing.assert_array_equal(b.grad.numpy(), [1, 0.5, 0], err_msg="Maximum.backward, b: half of ybar at a tie")


@pytest.mark.assignment(1, points=5)
def test_relu_at_zero_has_gradient_zero():
    x = mt.tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1])


def test_ties_match_torch():
    torch = pytest.importorskip("torch")
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    other = np.array([3.0, 2.0, 0.0])
    x, o = mt.tensor(data, requires_grad=True), mt.tensor(other, requires_grad=True)
    tx, to = (torch.tensor(a, requires_grad=True) for a in (data, other))
    (x.max(axis=-1).sum() + mt.maximum(x, o).sum() + x.relu().sum() + x.max()).backward()
    (tx.amax(dim=-1).sum() + torch.maximum(tx, to).sum() + tx.relu().sum() + tx.amax()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(o.grad.numpy(), to.grad.numpy(), rtol=1e-12)


def test_take_with_no_ids():
    """An empty lookup (a batch without tokens) gives an empty result and a zero gradient."""
    E = mt.tensor(np.ones((4, 3)), requires_grad=True)
    y = mt.take(E, mt.tensor(np.zeros((0,), dtype=np.int64)))
    assert y.shape == (0, 3)
    y.sum().backward()
    np.testing.assert_array_equal(E.grad.numpy(), np.zeros((4, 3)))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint16", "int32", "uint64"])
def test_take_any_integer_dtype_even_narrower_than_the_table(dtype):
    """Ids of a dtype that cannot hold the table's size V (uint8 ids, 300 rows) pick the same rows as int64 ids,
    and their gradient adds up the same way; a negative int8 id counts from the end of the table, as in NumPy."""
    V = 300
    table = np.arange(V * 2, dtype=np.float64).reshape(V, 2)
    top = min(np.iinfo(dtype).max, V - 1)  # 255 for uint8, 127 for int8
    last = -1 if np.dtype(dtype).kind == "i" else 1  # -1: row V - 1
    ids = np.array([[5, top, 5], [0, last, 1]], dtype=dtype)  # 5 twice
    E = mt.tensor(table, requires_grad=True)
    y = mt.take(E, mt.tensor(ids))
    np.testing.assert_array_equal(y.numpy(), table[ids.astype(np.int64)])
    y.sum().backward()
    counts = np.bincount(ids.astype(np.int64).ravel() % V, minlength=V).astype(np.float64)
    np.testing.assert_array_equal(E.grad.numpy(), np.repeat(counts[:, None], 2, axis=1))


# ------------------------------------------------------------------ float32 stays float32
#: rows whose purpose is a dtype change: their output is not of their input's dtype, on purpose
CHANGES_DTYPE = {
    "cast round trip": "float64 -> float32 -> float64: the output is float64 whatever the input",
    "to float32 and back": "the same, through Tensor.to",
}


@pytest.mark.parametrize("name", [n for n in CASES if n not in CHANGES_DTYPE])
@pytest.mark.assignment(1, points=5)
def test_float32_stays_float32(name, rng):
    """The table's rows on float32 inputs: every output and every gradient is float32. The other tests run in
    float64 only, where a float64 constant in a forward (``xp.asarray(0.5)``, ``np.float64``) changes nothing;
    in float32 it made the result float64, silently (the engine does not check it: Function.apply is the hot path)."""
    spec = CASES[name]
    arrays = _arrays(spec, rng)
    xs = [mt.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    outs = _tuple(spec["mt"](*xs))
    hint = ("; a constant in forward or backward must be a Python number or made with xp.asarray(c, dtype=x.dtype). "
            "If this row's purpose is a change of dtype, add it to CHANGES_DTYPE with the reason")
    for k, (o, w) in enumerate(zip(outs, _tuple(spec["np"](*arrays)))):
        assert o.dtype_name == "float32", f"{name}: output {k} is {o.dtype_name} for float32 inputs{hint}"
        np.testing.assert_allclose(o.numpy(), w, rtol=1e-4, atol=1e-5, err_msg=f"{name}: output {k} in float32")
    cotangents = [mt.tensor(rng.standard_normal(o.shape).astype(np.float32)) for o in outs]
    sum((o * v).sum() for o, v in zip(outs, cotangents)).backward()
    for k, x in enumerate(xs):
        got = None if x.grad is None else x.grad.dtype_name
        assert got == "float32", f"{name}: the gradient of input {k} is {got} for float32 inputs{hint}"


@pytest.mark.parametrize("name", [n for n in CASES if n not in CHANGES_DTYPE])
def test_integer_input_is_refused_or_stays_integer(name, rng):
    """The table's rows on int64 inputs: refused (a TypeError: float_only, or a float number with an int tensor),
    or an integer result. An operation that needs floats (e^x, 1/x) but does not set float_only gave float64 of
    int64 silently on NumPy."""
    xs = [mt.tensor(np.abs(np.rint(2 * a)).astype(np.int64) + 1) for a in _arrays(CASES[name], rng)]
    try:
        outs = _tuple(CASES[name]["mt"](*xs))
    except TypeError as e:  # only these two refusals: another TypeError is a failure of its own
        assert re.search(r"^\w+: needs floating-point input, got int64|"
                         r"^\w+( \(\W+\))?: cannot combine a int64 tensor .* with the float",  # each names itself
                         str(e)), f"{name}: {e}"
        return
    for k, o in enumerate(outs):
        assert o.dtype_name in ("int64", "bool"), (
            f"{name}: output {k} is {o.dtype_name} for int64 inputs: an operation that needs floats must set "
            f"float_only = True (and have a row in FLOAT_ONLY of tests/test_bad_input.py); {HOW_TO}")


# ------------------------------------------------------------------ every primitive is in the tables that check it
# A new Function passes every other test of the project whatever its backward says until it has rows in these
# tables: the tests below fail, naming the table, for one that has none (see "How to add a primitive" in
# docs/testing.md). Tables are matched by what their rows compute (the class of the operation that made a row's
# output, its grad_fn), not by their names, so a row counts for the operation it actually checks.
ROOT = Path(__file__).resolve().parents[1]
HOW_TO = 'see "How to add a primitive or a formula" in docs/testing.md'


def _test_module(name: str):
    """Another test file of tests/, loaded as a module of its own to read its tables."""
    return module_from_file(Path(__file__).with_name(f"{name}.py"), f"_tables_of_{name}")


def _functions(module) -> dict[str, type]:
    """The Function subclasses ``module`` defines (not the bases whose name starts with _), by name."""
    return {name: cls for name, cls in vars(module).items() if isinstance(cls, type) and issubclass(cls, mt.Function)
            and cls.__module__ == module.__name__ and not name.startswith("_")}


PRIMITIVES = _functions(mt.autograd.ops)  # ops.py
FUSED = _functions(fused)  # fused.py
assert PRIMITIVES and FUSED and not PRIMITIVES.keys() & FUSED.keys()

#: primitives of ops.py with no row in CASES, and why
NOT_IN_CASES = {
    "Compare": "no gradient (a bool result): test_bad_input.py and test_autograd_engine.py check its values",
}
#: primitives of ops.py in none of the property-based tables of tests/test_gradcheck.py, and why
NOT_IN_PROPERTY_TABLES = {
    "MatMul": "its own property test there, test_matmul_broadcast_batches_pass_gradcheck",
    "Cast": "a change of dtype: gradcheck needs float64 through it both ways (CASES' round trips)",
    "Compare": "no gradient",
    "Reshape": "moves values without arithmetic: CASES covers its shapes", "Permute": "the same",
    "GetItem": "the same, for its indices", "Take": "the same, for its ids", "Concat": "the same", "Stack": "the same",
}
#: fused operations of fused.py not in FUSABLE of tests/test_fused.py (a function of mt.functional fused by default,
#: composed of primitives with fused=False, which the fused operation's tests compare against), and why
NOT_FUSABLE = {
    "ScaledMaskedSoftmax": "runs only on a GPU (backend.kernels), inside scaled_dot_product_attention; "
                           "test_fused_attention_weights_* in tests/test_fused.py check it against the composition",
}


def _made_by(outputs) -> set[str]:
    """The names of the operations that made ``outputs`` (a tensor or a tuple of them)."""
    return {type(o.grad_fn).__name__ for o in _tuple(outputs) if o.grad_fn is not None}


def _float64(*values):
    return mt.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def _missing(wanted: dict, have: set[str], exempt: dict, table: str) -> str:
    missing = sorted(set(wanted) - have - set(exempt))
    stale = sorted(name for name in exempt if name not in wanted or name in have)
    lines = [f"{name} ({wanted[name].__module__}) has no row in {table}: add one ({HOW_TO}), or, if it cannot "
             "have one, say why in this file's list of exemptions" for name in missing]
    lines += [f"{name} is exempt from {table} but has a row there now, or is no operation any more: take it off "
              "the list of exemptions" for name in stale]
    return "\n".join(lines)


@pytest.mark.single_backend
def test_every_primitive_has_a_row_in_cases(rng):
    # forward against NumPy, gradcheck and PyTorch (the three tests above), float32 kept (test_float32_stays_float32)
    have = set()
    for spec in CASES.values():
        have |= _made_by(spec["mt"](*[mt.tensor(a, requires_grad=True) for a in _arrays(spec, rng)]))
    assert not (message := _missing(PRIMITIVES, have, NOT_IN_CASES, "CASES of tests/test_autograd_primitives.py")), \
        message


@pytest.mark.single_backend
def test_every_primitive_has_a_row_in_the_property_tables():
    # UNARY, BINARY and REDUCTIONS of tests/test_gradcheck.py: hypothesis draws shapes and values for each row
    tables = _test_module("test_gradcheck")
    have = set()
    for fn, _ in tables.UNARY.values():
        have |= _made_by(fn(_float64(0.5, 1.5)))
    for fn, _ in tables.BINARY.values():
        have |= _made_by(fn(_float64(0.5, 1.5), _float64(1.0, 0.25)))
    for fn, _ in tables.REDUCTIONS.values():
        have |= _made_by(fn(_float64(0.5, 1.5), None, False))
    assert not (message := _missing(PRIMITIVES, have, NOT_IN_PROPERTY_TABLES,
                                    "UNARY, BINARY or REDUCTIONS of tests/test_gradcheck.py")), message


@pytest.mark.single_backend
def test_every_float_only_operation_has_a_row_in_float_only_and_only_those():
    # FLOAT_ONLY of tests/test_bad_input.py names each row's operation as the message does: by its class's name
    listed = {name for name, _ in _test_module("test_bad_input").FLOAT_ONLY.values()}
    every = {**PRIMITIVES, **FUSED}
    float_only = {name for name, cls in every.items() if cls.float_only}
    problems = [f"{name} sets float_only = True but has no row in FLOAT_ONLY of tests/test_bad_input.py: add one "
                f"(an int64 input must be refused by name; {HOW_TO})" for name in sorted(float_only - listed)]
    problems += [f"FLOAT_ONLY of tests/test_bad_input.py has a row for {name}, which "
                 + ("does not set float_only = True" if name in every else "is no operation of ops.py or fused.py")
                 for name in sorted(listed - float_only)]
    assert not problems, "\n".join(problems)


@pytest.mark.single_backend
def test_every_fused_operation_is_in_fusable():
    have = {op.__name__ for _, op in _test_module("test_fused").FUSABLE.values()}
    assert not (message := _missing(FUSED, have, NOT_FUSABLE, "FUSABLE of tests/test_fused.py")), message


# ------------------------------------------------------------------ through the backend's namespace, not numpy by name
#: where the library's operations may use numpy by name, per file and function: (function, attribute) -> why. The
#: operations and formulas go through the backend's namespace (self.xp, x.backend.xp), never numpy (DESIGN): on
#: CuPy a NumPy call copies to the host or fails, and on array-api-strict it hides what the standard lacks
NUMPY_ALLOWED = {
    "minitransformer/autograd/engine.py": {
        ("_read_numbers", "ndarray"): "reads what the user gave (nested lists, NumPy arrays) on the host, once",
        ("_read_numbers", "asarray"): "the same",
        ("_read_numbers", "uint64"): "finds, on the host, a Python int past int64 to name it",
        ("_read_numbers", "dtype"): "the same",
        ("_read_numbers", "int64"): "the same",
        ("_read_numbers", "float64"): "reads such ints as floats on the host where a floating dtype is asked",
        ("_check_fits", "asarray"): "checks the numbers the user gave (read on the host by _read_numbers, or full's "
                                    "value) against the dtype asked for, before they become a tensor; never a device's",
        ("_check_fits", "dtype"): "the same",
        ("_check_fits", "isfinite"): "the same",
        ("_check_fits", "trunc"): "the same",
        ("_number_range", "finfo"): "the range of a dtype, by name, for Python numbers checked against it on the host",
        ("_number_range", "iinfo"): "the same, for integer dtypes",
        ("_lift", "generic"): "recognises a NumPy scalar (np.float32(2.0)) as a number",
        ("_is_index_array", "generic"): "the same, among indices",
        ("_position", "bool_"): "recognises a NumPy bool index (NumPy reads x[True] as a new axis)",
        ("masked_fill", "ndarray"): "recognises a NumPy 0-d array as a number",
        ("getitem", "asarray"): "reads a list index on the host before it goes to the backend",
        ("getitem", "zeros"): "the empty list index, as int64",
        ("getitem", "int64"): "the same",
    },
}
NO_NUMPY = ["minitransformer/autograd/ops.py", "minitransformer/autograd/fused.py",
            *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "minitransformer" / "functional").glob("*.py"))]


def _numpy_uses(path: Path) -> list[tuple[int, str, str]]:
    """(line, enclosing function, attribute) of each use of numpy by name in ``path`` (``np.exp``: "exp"); an import
    from numpy as (line, function, "from numpy import exp")."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases, uses = set(), []

    def visit(node, function):
        if isinstance(node, ast.Import):
            aliases.update(a.asname or a.name for a in node.names if a.name == "numpy")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numpy":
            uses.append((node.lineno, function, f"from {node.module} import {', '.join(a.name for a in node.names)}"))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            uses.append((node.lineno, function, node.attr))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return uses


@pytest.mark.single_backend
@pytest.mark.parametrize("file", NO_NUMPY + list(NUMPY_ALLOWED))
def test_operations_use_the_backends_namespace_not_numpy(file):
    path = Path(mt.__file__).resolve().parents[1] / file  # the package imported (a student's copy too)
    allowed = NUMPY_ALLOWED.get(file, {})
    wrong = [f"{file}:{line}: " + (attr if attr.startswith("from ") else f"numpy.{attr}") + f" (in {function})"
             for line, function, attr in _numpy_uses(path) if (function, attr) not in allowed]
    assert not wrong, ("\n".join(wrong) + "\nuse the backend's array namespace instead: self.xp in a Function, "
                       "x.backend.xp for a Tensor x (NumPy would copy CuPy arrays to the host, and hide from "
                       "array-api-strict what the standard lacks); a use that must be numpy's goes in NUMPY_ALLOWED "
                       "of tests/test_autograd_primitives.py, with the reason")
