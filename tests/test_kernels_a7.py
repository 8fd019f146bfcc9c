"""A7's graded tests: the block reductions and the row kernels of ``minitransformer/kernels.py`` (softmax each way,
attention's masked softmax, layer norm), written in CUDA C++.

They run the kernels on the CPU under the package's emulation of CUDA, ``minitransformer.cuda_emulator`` (g++; the
fixture ``emulated_cuda`` of ``tests/conftest.py``, set up in ``tests/test_kernels.py``), through ``CudaKernels``'
own Python as CuPy would launch them, and compare with the formulas written out in NumPy here. Each launch runs
twice, its threads in two orders: a result that differs is a race (a ``__syncthreads()`` missing). Where a result is
wrong the message says how (entries never written, rows past the first wrong, entries past the block's threads
wrong, an overflow, a sign) and what in the kernel usually does that. Without g++ (or on Windows) they skip, and the
grade says so under its total.
"""

from __future__ import annotations

import numpy as np
import pytest

from references import ATTENTION_MASKS, layer_norm_np

pytestmark = pytest.mark.single_backend  # the kernels take NumPy arrays here, whatever the backend

#: relative error allowed, as in tests/test_kernels.py: float32 and float64 sums in a tree differ from NumPy's order
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
DTYPES = ["float32", "float64"]
#: rows of one entry, of a few (most threads have none), of about a block, and longer than the block (256 threads at
#: most: each thread strides over several entries)
SHAPES = [(3, 1), (2, 5), (4, 100), (2, 3, 300), (2, 1000)]


def _guarded(kernels, a):
    """``a`` copied into an array followed by the emulation's guard bytes: a kernel that reads past its end reads a
    huge number (3.4e38 or 1.4e306), which shows in a sum or a maximum."""
    out = kernels.cupy.empty(a.shape, a.dtype)
    out[...] = a
    return out


def _filler(dtype) -> float:
    """What an entry the kernel never wrote holds: the emulation fills new arrays with 0x7F bytes."""
    return float(np.frombuffer(bytes([0x7F]) * np.dtype(dtype).itemsize, dtype=dtype)[0])


def _rows(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)


def _diagnose(got, want, dtype, block: int, hint: str = "") -> str:
    """What is wrong in ``got`` against ``want`` (both ``(..., n)``, rows on the last axis, one block of ``block``
    threads per row), in words, or "" when they agree."""
    with np.errstate(all="ignore"):  # got may hold inf, nan and the huge numbers of entries never written
        return _what_is_wrong(_rows(got), _rows(want), dtype, block, hint)


def _what_is_wrong(got, want, dtype, block: int, hint: str) -> str:
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
    wrong = ~(np.abs(got - want) <= 10 * TOLERANCE[dtype] * scale)
    if not wrong.any():
        return ""
    rows, n = want.shape
    r, i = (int(k) for k in np.argwhere(wrong)[0])
    where = (f"first wrong: row {r}, entry {i}: {got[r, i]:.9g}, the formula {want[r, i]:.9g} ({rows} rows of {n} "
             f"entries, {block} threads a block)")
    unwritten = wrong & (got == _filler(dtype))
    if unwritten.any():
        u = np.argwhere(unwritten)
        said = f"{len(u)} entries were never written (row {u[0][0]}, entry {u[0][1]} the first)"
        if n > block and (u[:, 1] >= block).all():
            return (f"{said}, all past the block's {block} threads: each thread must go on along the row, i = "
                    f"threadIdx.x; i < n; i += blockDim.x; {where}")
        if (u[:, 0] > 0).all() and not unwritten[0].any():
            return f"{said}, none in row 0: does block r write row r, at r * n (blockIdx.x)?; {where}"
        return f"{said}: does every row get every entry written?; {where}"
    if not np.isfinite(got).all():
        hint = hint or "a division before the row's sum is complete (by a thread's own part, not block_sum's)?"
        return f"inf or nan in the result: {hint}; {where}{REDUCTIONS_FIRST}"
    if n > block and not wrong[:, :block].any():
        return (f"right on each row's first {block} entries, wrong past them: each thread must go on along the "
                f"row, i = threadIdx.x; i < n; i += blockDim.x; {where}")
    if rows > 1 and np.allclose(got, want[:1], rtol=10 * TOLERANCE[dtype], atol=10 * TOLERANCE[dtype] * scale):
        return f"every row is row 0's result: block r works on row r, from r * n (blockIdx.x); {where}"
    if np.allclose(got, -want, rtol=10 * TOLERANCE[dtype], atol=10 * TOLERANCE[dtype] * scale):
        return f"the negative of the formula: a sign?; {where}"
    return f"{where}{REDUCTIONS_FIRST}"


#: said under a wrong result of a row kernel, which may be right but for the reductions it calls
REDUCTIONS_FIRST = " (a wrong block_sum or block_max makes this wrong too: if their tests fail, start there)"


def _warned(kernels, dtype) -> str:
    """What g++ warned of on the lines of ``kernels.py`` (``-Wall``: a variable used uninitialized), to say under a
    wrong result; "" for nothing."""
    module = getattr(kernels, "modules", {}).get(str(np.dtype(dtype)))
    return f" (g++ warned: {module.warnings})" if getattr(module, "warnings", "") else ""


def _agree(name: str, got, want, dtype, block: int, hint: str = "", kernels=None) -> None:
    """``got`` (the kernel's, of ``dtype``) against the formula ``want``, with a message naming the mistake (and
    what g++ warned of in ``kernels``' source)."""
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape, (
        f"{name}: {got.dtype} {got.shape}, the formula {np.dtype(dtype)} {want.shape}")
    if why := _diagnose(got, want, dtype, block, hint):
        raise AssertionError(f"{name}: {why}{_warned(kernels, dtype)}")


def _block(n: int) -> int:
    from minitransformer.kernels import block_size  # (not at the top: a copy for A1 to A6 has no kernels.py)

    return block_size(n)


def alternating_large(shape):
    """1e4, -1e4, 1e4, ... one per row: a row whose first entry is 1e4 overflows exp unless its max is subtracted,
    and one whose first is -1e4 does when another row's max is taken for its own."""
    return 1e4 * (-1.0) ** np.arange(int(np.prod(shape))).reshape(shape)


# ------------------------------------------------------------------ block_sum and block_max, alone
def _reduce(kernels, name: str, block: int, v, w):
    """Run ``block_sums`` or ``block_maxes`` (the emulation's test kernels): each thread's result of the two
    reductions, ``(blocks, block)`` each."""
    out, out2 = kernels.cupy.empty(v.shape, v.dtype), kernels.cupy.empty(v.shape, v.dtype)
    kernels._run(name, v.dtype.name, v.shape[0], block, (_guarded(kernels, v), _guarded(kernels, w), out, out2),
                 shared_mem=block * v.itemsize)
    return out, out2


def _shuffles(kernels, dtype, kernel: str) -> bool | None:
    """Whether ``kernel`` of ``kernels``' source calls a warp operation, itself or through a function it calls (the
    emulation's ``RawModule.warp_kernels``: a student's reductions by shuffles, not a tree), or None where it cannot
    tell (kernels not the emulation's: CuPy's)."""
    module = getattr(kernels, "modules", {}).get(str(np.dtype(dtype)))
    warp_kernels = getattr(module, "warp_kernels", None)
    return None if warp_kernels is None else kernel in warp_kernels


def _hint(shuffles: bool | None, tree: str, warp: str) -> str:
    """The ``tree`` hint, the ``warp`` (shuffle) one, or both where the source's reductions are not known."""
    return {False: tree, True: warp}.get(shuffles, f"{tree}; {warp}")


def _reduction_agrees(name: str, got, want, which: str, warned: str = "", shuffles: bool | None = None) -> None:
    """Every thread of each block (a row of ``got``) holds the block's reduction ``want`` (one per block); ``warned``
    (:func:`_warned`) is said after a wrong one, and the hints are a tree's or warp shuffles' as ``shuffles``
    (:func:`_shuffles`) says."""
    right = got == want[:, None]
    if right.all():
        return
    b, t = (int(k) for k in np.argwhere(~right)[0])
    said = (f"{name} ({which}), {got.shape[1]} threads: thread {t} of block {b} got {got[b, t]:.17g}, not "
            f"{want[b]:.17g}")
    filler = _filler(got.dtype)
    if not np.isfinite(got[b, t]) or abs(got[b, t]) >= filler / 2:  # a 0x7F guard value in it (sums overflow: inf)
        raise AssertionError(
            f"{said}: some thread read shared memory that no thread wrote this launch (the emulation fills it with "
            f"0x7F bytes, {filler:.3g} each): " + _hint(
                shuffles, "in a tree, a round reading s[t + k] past the block (k from blockDim.x / 2, not blockDim.x)?",
                "with warp shuffles, lanes past the number of warps reading s[lane] in the second reduction (only "
                "lane < blockDim.x / 32 holds a warp's result: lane < warps ? s[lane] : 0)?") + warned)
    if right[:, 0].all():
        raise AssertionError(f"{said}; thread 0 has it: " + _hint(
            shuffles, "in a tree, every thread must read s[0] once the last round is done",
            "with warp shuffles, __shfl_down_sync leaves a warp's sum in its lane 0 only: pass it on, "
            "__shfl_sync(0xffffffff, v, 0), or through s") + warned)
    takes = "adds" if name == "block_sum" else "takes the larger of its own and"
    raise AssertionError(f"{said} (a round left out, or one too many? " + _hint(
        shuffles, "in a tree, k from blockDim.x / 2 down to 1, each thread t < k taking s[t + k], a __syncthreads() "
        "after each round", f"with warp shuffles, lane l {takes} lane l + k's value, __shfl_down_sync(0xffffffff, "
        "v, k) for k = 16, 8, 4, 2, 1, which leaves the result in lane 0 (__shfl_up_sync leaves it in lane 31); or "
        "lane l ^ k's, __shfl_xor_sync(0xffffffff, v, k) for the same k, which leaves it in every lane")
        + f"){warned}")


@pytest.mark.assignment(7, points=15)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block", [32, 128, 256])
def test_block_sum_gives_every_thread_the_sum_of_its_block(emulated_cuda, block, dtype, rng):
    # whole numbers, so that the sums are exact in any order; three blocks; the second reduction follows the first
    # on the same shared memory, as in every kernel that calls block_sum twice
    v = rng.integers(-1000, 1000, size=(3, block)).astype(dtype)
    w = rng.integers(1, 1000, size=(3, block)).astype(dtype)
    out, out2 = _reduce(emulated_cuda, "block_sums", block, v, w)
    warned, shuffles = _warned(emulated_cuda, dtype), _shuffles(emulated_cuda, dtype, "block_sums")
    _reduction_agrees("block_sum", out, v.sum(axis=1), "the first of two", warned, shuffles)
    _reduction_agrees("block_sum", out2, w.sum(axis=1), "the second, right after the first on the same s", warned,
                      shuffles)


@pytest.mark.assignment(7, points=10)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block", [32, 256])
def test_block_max_gives_every_thread_the_max_of_its_block(emulated_cuda, block, dtype, rng):
    # every value negative (a max that starts from 0 is wrong); the largest at the first thread, the last, a middle one;
    # in float64 none a float32 (a max taken in float, fmaxf, rounds it)
    v = -rng.permutation(np.arange(1, 3 * block + 1)).reshape(3, block).astype(dtype)
    w = v.copy()
    for b, t in enumerate((0, block - 1, block // 2 + 1)):
        v[b, t], w[b, block - 1 - t] = -0.5, -0.25
    if dtype == "float64":
        v, w = v + 2.0**-40, w + 2.0**-40
    out, out2 = _reduce(emulated_cuda, "block_maxes", block, v, w)
    if (out == v.min(axis=1)[:, None]).all():
        raise AssertionError("block_max: every thread got the block's minimum: is the comparison the wrong way?")
    warned = _warned(emulated_cuda, dtype)
    for got, want in ((out, v.max(axis=1)[:, None]), (out2, w.max(axis=1)[:, None])):
        if dtype == "float64" and ((got != want) & (got == want.astype(np.float32))).any():
            raise AssertionError("block_max: a thread got the block's max rounded to float32: is it taken in float "
                                 "(fmaxf, a float variable)? Compare in T (a > b, or max / fmax)" + warned)
    shuffles = _shuffles(emulated_cuda, dtype, "block_maxes")
    _reduction_agrees("block_max", out, v.max(axis=1), "the first of two", warned, shuffles)
    _reduction_agrees("block_max", out2, w.max(axis=1), "the second, right after the first on the same s", warned,
                      shuffles)


# ------------------------------------------------------------------ the row kernels
def softmax(x):
    """``exp(x - max) / sum exp(x - max)`` along the last axis, in float64."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.assignment(7, points=25)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_softmax_forward_is_the_formula(emulated_cuda, shape, dtype, rng):
    x = rng.normal(scale=3.0, size=shape).astype(dtype)
    x[..., 0] = alternating_large(shape[:-1])  # a large entry: the max is subtracted first, each row's own
    for rows, x_rows in _rows_to_try(x).items():
        _softmax_forward_agrees(emulated_cuda, x_rows, dtype, rows)


def _rows_to_try(x, hidden=None) -> dict:
    """``x`` (each row's first entry large, :func:`alternating_large`) and more, each named by what sets it apart,
    which a row's maximum taken over part of the row only gets wrong: each row reversed (its large entry last: a max
    over the first ``blockDim.x`` entries, or one that skips the row's tail, overflows); then for softmax (``hidden``
    None) every entry far below 0 (a max that starts from 0 in a thread with no entry underflows: 0 / 0), for the
    masked softmax (``hidden`` True at a mask's hidden keys, ``x``'s shape), where it hides any key, the hidden keys'
    scores far above the rest (a max that takes them in underflows). (Not x - 2e4 for the masked softmax: in float32,
    z = x / divisor rounds by more than the tolerance there.)"""
    out = {"": x, "each row's large entry last": x[..., ::-1].copy()}
    if hidden is None:
        out["every entry far below 0 (x - 2e4)"] = x - 2e4
    elif hidden.any():
        out["a hidden key's score far above the others (1e4)"] = np.where(hidden, np.asarray(1e4, x.dtype), x)
    return out


def _softmax_forward_agrees(kernels, x, dtype, rows: str) -> None:
    """softmax_forward on ``x`` against the formula; ``rows`` (:func:`_rows_to_try`) says which in a message."""
    name = f"softmax_forward ({rows})" if rows else "softmax_forward"
    y = kernels.softmax_forward(_guarded(kernels, x))
    want, block = softmax(x), _block(x.shape[-1])
    with np.errstate(over="ignore"):  # entries never written hold 1.4e306: _diagnose says so first
        sums = np.asarray(y, dtype=np.float64).sum(axis=-1)
    if (_diagnose(y, want, dtype, block).startswith("first wrong") and np.isfinite(sums).all()
            and not np.allclose(sums, 1, rtol=10 * TOLERANCE[dtype])):  # no more telling sign, but this one
        raise AssertionError(f"{name}: the rows do not sum to 1 (row sums {sums.ravel()[:3]}, ...): is each "
                             "e = exp(x - m) divided by the row's sum, block_sum of the e's?" + REDUCTIONS_FIRST)
    _agree(name, y, want, dtype, block,
           hint="is the row's max m subtracted, the max of the whole row (exp(x - m) overflows from x - m = 89 in "
                "float32, 710 in float64)? Is each e divided by the row's sum once complete (block_sum's result, not "
                "a thread's own part)? Does each thread read its row's entries only (i < n; a thread with none, n < "
                "blockDim.x, starts its max from an entry of the row)?", kernels=kernels)


@pytest.mark.assignment(7, points=10)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("divisor", [1.0, np.sqrt(8.0)], ids=["softmax", "attention"])
@pytest.mark.parametrize("shape", [(3, 1), (2, 5), (2, 3, 300), (2, 1000)], ids=str)
def test_softmax_backward_is_the_formula(emulated_cuda, shape, divisor, dtype, rng):
    y = softmax(rng.normal(scale=2.0, size=shape)).astype(dtype)
    grad = rng.normal(size=shape).astype(dtype)
    y64, grad64 = y.astype(np.float64), grad.astype(np.float64)
    want = (grad64 * y64 - y64 * (grad64 * y64).sum(axis=-1, keepdims=True)) / divisor
    got = emulated_cuda.softmax_backward(_guarded(emulated_cuda, grad), _guarded(emulated_cuda, y), divisor)
    if divisor != 1 and _diagnose(got, want, dtype, 1) and not _diagnose(got, want * divisor, dtype, 1):
        raise AssertionError(f"softmax_backward: divided by {divisor:.4g}, the result is right; as it is, it is not "
                             "divided (the last argument, divisor)")
    _agree("softmax_backward", got, want, dtype, _block(shape[-1]), kernels=emulated_cuda)


def masked_softmax(x, allowed, divisor):
    """Attention's weights in float64: softmax of ``x / divisor`` over the keys ``allowed`` (None: all) along the last
    axis; 0 at a hidden key, and 0 in a row with none allowed."""
    z = np.asarray(x, dtype=np.float64) / divisor
    ok = np.broadcast_to(True if allowed is None else allowed, z.shape)
    m = np.where(ok, z, -np.inf).max(axis=-1, keepdims=True)
    # exp at the allowed keys only (z - m <= 0): a hidden key's z may lie far above m
    e = np.where(ok, np.exp(np.where(ok, z - np.where(np.isfinite(m), m, 0), 0)), 0)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@pytest.mark.assignment(7, points=20)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask", list(ATTENTION_MASKS))
@pytest.mark.parametrize("S", [1, 5, 300])
def test_masked_softmax_forward_is_attentions_weights(emulated_cuda, S, mask, dtype, rng):
    x = rng.normal(scale=3.0, size=(2, 3, 4, S)).astype(dtype)
    x[..., 0] = alternating_large(x.shape[:-1])  # far from the other keys: the largest allowed z is subtracted
    allowed = ATTENTION_MASKS[mask](S)
    ok = np.broadcast_to(True if allowed is None else allowed, x.shape)
    for rows, x_rows in _rows_to_try(x, hidden=~ok).items():
        _masked_softmax_forward_agrees(emulated_cuda, x_rows, allowed, dtype, rows)


def _masked_softmax_forward_agrees(kernels, x, allowed, dtype, rows: str) -> None:
    """masked_softmax_forward on ``x`` and the mask ``allowed`` against the formula; a message says which ``rows``
    (:func:`_rows_to_try`) and the strides the kernel reads the mask with (0 on an axis it is broadcast over)."""
    said = [rows] if rows else []
    if allowed is not None:
        seen = np.broadcast_to(allowed, x.shape)
        strides = ", ".join(str(k // seen.itemsize) for k in seen.strides)
        said.append(f"the mask {allowed.shape}: s_a, s_b, s_l, s_n = {strides}")
    name = f"masked_softmax_forward ({'; '.join(said)})" if said else "masked_softmax_forward"
    divisor = float(np.sqrt(8.0))
    y = kernels.masked_softmax_forward(_guarded(kernels, x), allowed, divisor)
    want, block, warned = masked_softmax(x, allowed, divisor), _block(x.shape[-1]), _warned(kernels, dtype)
    ok = np.broadcast_to(True if allowed is None else allowed, x.shape)
    with np.errstate(all="ignore"):
        none = ~ok.any(axis=-1)
        if none.any() and (y[none] != 0).any():
            raise AssertionError(f"{name}: a row with no allowed key must be 0 everywhere (its sum of e is 0: no "
                                 f"division), got {y[none][0][:3]}{warned}")
        hidden = ~ok & (y != 0)
        if hidden.any():
            where = tuple(int(k) for k in np.argwhere(hidden)[0])
            raise AssertionError(f"{name}: a hidden key (mask false) got weight {y[where]:.9g} at {list(where)}: e = "
                                 f"0 at a hidden key (a row's m is its largest allowed z){warned}")
        if not _diagnose(y, masked_softmax(x, allowed, 1.0), dtype, block) and _diagnose(y, want, dtype, block):
            raise AssertionError(f"{name}: the softmax of x, not of z = x / divisor ({divisor:.4g}): divide each score "
                                 f"first{warned}")
        zero = (y == 0).all(axis=-1) & ~none
        if zero.any():
            r = int(np.argwhere(zero.reshape(-1))[0][0])
            raise AssertionError(f"{name}: row {r} is 0 everywhere, with keys allowed: every e = exp(z - m) "
                                 "underflowed to 0 (the row's sum is 0): is m the largest allowed z (hidden keys left "
                                 f"out of it, starting from lowest, not 0)?{warned}")
    _agree(name, y, want, dtype, block, kernels=kernels,
           hint="is the largest allowed z = x / divisor over the whole row subtracted, m starting from lowest (exp "
                "overflows otherwise)? Is each e divided by the row's sum once complete (block_sum's result), a row "
                "summing to 0 left 0?")


#: the offset of the last row of layer norm's x (its noise of size 4): the variance as mean(x^2) - mu^2 in one pass
#: loses the digits of such a row (float32 keeps 7, float64 16), (x - mu)^2 does not
FAR = {"float32": 1e3, "float64": 1e4}


@pytest.mark.assignment(7, points=20)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", ["gamma-beta", "gamma", "beta", "plain"])
@pytest.mark.parametrize("shape", [(3, 1), (2, 7), (4, 100), (2, 3, 300)], ids=str)
def test_layer_norm_forward_is_the_formula(emulated_cuda, shape, affine, dtype, rng):
    d, eps = shape[-1], 1e-5
    x = rng.normal(size=shape) * 4 + 2
    x.reshape(-1, d)[-1] += FAR[dtype]  # the last row far from 0
    x = x.astype(dtype)
    gamma = rng.normal(size=d).astype(dtype) if affine.startswith("gamma") else None
    beta = rng.normal(size=d).astype(dtype) if affine.endswith("beta") else None
    y, x_hat, inv_std = emulated_cuda.layer_norm_forward(
        _guarded(emulated_cuda, x), *(None if a is None else _guarded(emulated_cuda, a) for a in (gamma, beta)), eps)
    want_y, want_hat, inv = layer_norm_np(x, gamma, beta, eps, return_stats=True)
    block = _block(d)
    if _diagnose(x_hat, want_hat, dtype, block).startswith("first wrong") and not _diagnose(
            _rows(x_hat)[:-1], _rows(want_hat)[:-1], dtype, block):
        raise AssertionError(f"layer_norm_forward (x_hat): wrong on the last row only, the one far from 0 "
                             f"({FAR[dtype]:g} + noise of size 4): is the variance the mean of (x - mu)^2, not "
                             "mean(x^2) - mu^2 (which loses the digits of such a row)?" + _warned(emulated_cuda, dtype))
    _agree("layer_norm_forward (x_hat)", x_hat, want_hat, dtype, block,
           hint="is the variance the mean of (x - mu)^2 over the row (the biased one, / d), with eps added under the "
                "square root?", kernels=emulated_cuda)
    _agree("layer_norm_forward (inv_std: 1 / sqrt(var + eps), one per row)", inv_std, inv, dtype, block,
           kernels=emulated_cuda)
    formula = {"gamma-beta": "gamma x_hat + beta", "gamma": "gamma x_hat, no beta", "beta": "x_hat + beta, no gamma",
               "plain": "x_hat: no gamma, no beta"}
    _agree(f"layer_norm_forward (y = {formula[affine]})", y, want_y, dtype, block, kernels=emulated_cuda)
