"""What the host issues in one training step: calls into the array library, phase by phase, with and without kernels.

    python tools/count_calls.py seed             # the array formulas, then the CUDA kernels standing in
    python tools/count_calls.py seed --sites     # and where each call of the kernels' step is made

On a GPU a small model's step is bound by the host (docs/benchmarks.md): every call into the array library
costs its Python and CuPy's launch path, 10 to 30 microseconds on the H200, whether it launches a kernel or only makes a
view. This counts those calls on array-api-strict, whose functions and operators can be watched, for a
miniature of the model (the same layers and heads; the count does not depend on the sizes):

- with the array formulas (every backend without kernels);
- with the CUDA kernels of ``minitransformer.kernels`` (CuPy's default), here replaced by stand-ins that
  return arrays of the right shapes without computing them (the values do not change the count) and count
  what ``CudaKernels`` calls on CuPy: the launch, and the arrays it allocates for the results. Its matrix
  products are one cuBLAS call each ("kernel matmul"), after a copy of an operand cuBLAS cannot read in place
  (``ascontiguousarray``: a permuted view).

"launch" counts the calls that start work on a GPU; views (reshape, transpose, slices, broadcasts) and
allocations do not. The count follows CuPy where array-api-strict would differ: the library folds a stack of
rows into one matrix product where an array says it is laid out row after row (``flags``, which NumPy and
CuPy arrays have), and CuPy's ``matmul`` copies the operands of more than two axes that are not, each copy a
launch of its own ("copy inside matmul"); so does a reshape that cannot be a view ("copy inside reshape").
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minitransformer as mt  # noqa: E402
from minitransformer import bench  # noqa: E402
from minitransformer.kernels import CudaKernels, cublas_layout  # noqa: E402

#: where the library's files are: a call is counted at the line of the library that made it
PACKAGE = str(Path(mt.__file__).resolve().parent) + os.sep
#: calls that make no new array on a GPU: views and allocations
NO_LAUNCH = {"reshape", "permute_dims", "matrix_transpose", "moveaxis", "broadcast_to", "expand_dims", "squeeze",
             "__getitem__", "asarray", "empty", "empty_like"}
#: the arrays each kernel of CudaKernels allocates for its results on CuPy (its launch aside)
ALLOCATIONS = {"softmax_forward": 1, "softmax_backward": 1, "masked_softmax_forward": 1, "layer_norm_forward": 3,
               "layer_norm_backward": 1, "gelu_forward": 2, "gelu_backward": 1, "bce_with_logits_forward": 2,
               "bce_with_logits_backward": 1, "adam_update": 0, "scatter_add": 1, "counter_uniform": 1,
               "column_sums": 1, "matmul": 1}  # (and one more for the sums of g h, when asked)
#: the array operations besides the launch: the scatter-add casts its ids first (a no-op for int64), then launches
#: two kernels (the ids' chains, then the sums)
EXTRA_CALLS = {"scatter_add": ("astype", "kernel id_chains")}
#: the namespace's functions that only answer questions about dtypes, on the host: not counted
HOST_ONLY = {"isdtype", "finfo", "iinfo", "result_type", "can_cast"}
#: Array operators that are calls into the library
OPERATORS = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
             "__neg__", "__pow__", "__rpow__", "__matmul__", "__getitem__", "__setitem__", "__iadd__", "__isub__",
             "__imul__", "__itruediv__", "__gt__", "__ge__", "__lt__", "__le__", "__eq__", "__ne__", "__and__",
             "__or__", "__invert__")


class Calls:
    """Counts the calls into array-api-strict's namespace and its Array's operators while ``on``, and where each is."""

    def __init__(self, xp):
        self.xp, self.Array = xp, type(xp.asarray(0.0))
        self.on, self.by_name, self.by_site = False, collections.Counter(), collections.Counter()
        self.saved = []

    def add(self, name: str, n: int = 1) -> None:
        if self.on and n:
            frames = [f for f in traceback.extract_stack(limit=8)[:-2] if f.filename.startswith(PACKAGE)]
            site = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
            self.by_name[name] += n
            self.by_site[name, site] += n

    def _watch(self, owner, name: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def watched(*args, **kwargs):
            if not self.on:
                return original(*args, **kwargs)
            self.add(name)
            if name in ("matmul", "__matmul__"):
                self.add("copy inside matmul", cupy_matmul_copies(*args[:2]))
            self.on = False  # the library calling itself is not another call
            try:
                out = original(*args, **kwargs)
            finally:
                self.on = True
            if name == "reshape":
                self.add("copy inside reshape", reshape_copies(args[0], out))
            return out

        self.saved.append((owner, name, original))
        setattr(owner, name, watched)

    def __enter__(self):
        # NumPy's and CuPy's arrays say whether they are laid out row after row, and the library folds a stack
        # of rows into one matrix product where they are (ops._shared_weight_matmul): array-api-strict's too, here
        self.Array.flags = property(lambda a: a._array.flags)
        for name in dir(self.xp):
            function = getattr(self.xp, name)
            if not name.startswith("_") and name not in HOST_ONLY and callable(function) and not isinstance(function,
                                                                                                         type):
                self._watch(self.xp, name)
        for name in OPERATORS:
            if hasattr(self.Array, name):
                self._watch(self.Array, name)
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved.clear()
        del self.Array.flags

    def total(self) -> int:
        return sum(self.by_name.values())

    def launches(self) -> int:
        return sum(n for name, n in self.by_name.items() if name not in NO_LAUNCH)


def cupy_matmul_copies(a, b) -> int:
    """The kernels CuPy's matmul launches besides the product, for array-api-strict's ``a @ b``.

    With more than two axes (``cupy._core._routines_linalg.matmul``) it copies each operand that is not
    C-contiguous (a transposed or permuted view), and for a stack multiplied by one shared matrix it first
    computes the addresses of the matrices, three kernels more. Two-axis products take transposes as they are.
    """
    A, B = a._array, b._array
    if max(A.ndim, B.ndim) <= 2:
        return 0
    return (not A.flags.c_contiguous) + (not B.flags.c_contiguous) + 3 * (A.shape[:-2] != B.shape[:-2])


def reshape_copies(x, y) -> int:
    """1 if reshaping array-api-strict's ``x`` into ``y`` copied it, else 0. A reshape is a view only where the
    strides allow it (a transposed or permuted view is copied), under the same rule in NumPy and CuPy; CuPy's copy
    is a kernel launch."""
    return int(y._array.size > 0 and not np.shares_memory(x._array, y._array))


class Decisions(CudaKernels):
    """:class:`~minitransformer.kernels.CudaKernels`' own answers (which arrays its kernels take, which products
    cuBLAS computes, which operands it reads in place), asked of NumPy arrays: those inside array-api-strict's.
    Float32 and float64 products go to cuBLAS, as on CUDA."""

    _blas_types = {np.dtype("float32"): None, np.dtype("float64"): None}


class StandInKernels:
    """The methods of :class:`~minitransformer.kernels.CudaKernels` on array-api-strict: right shapes, values not
    computed, each counted as its launch, its allocations and any other calls it makes on CuPy. What they take
    is what ``CudaKernels`` takes (:class:`Decisions`)."""

    def __init__(self, calls: Calls):
        self.calls, self.xp = calls, calls.xp
        self.cupy = calls.xp  # (Adam makes its first moments with kernels.cupy.zeros_like)
        self.decisions = Decisions(np)

    def fits(self, x, axis: int = -1) -> bool:
        return self.decisions.fits(x._array, axis)

    def fits_mask(self, x, mask) -> bool:
        return self.decisions.fits_mask(x._array, None if mask is None else mask._array)

    def _kernel(self, name: str, *shapes_like):
        self.calls.add(f"kernel {name}")
        for extra in EXTRA_CALLS.get(name, ()):
            self.calls.add(extra)
        self.calls.add("empty", ALLOCATIONS[name])
        results = tuple(self._unseen(like.shape, like.dtype) for like in shapes_like)
        return results[0] if len(results) == 1 else results

    def _unseen(self, shape, dtype):
        """Zeros standing for a kernel's result, not counted (the kernel's allocations are)."""
        on, self.calls.on = self.calls.on, False
        try:
            return self.xp.zeros(shape, dtype=dtype)
        finally:
            self.calls.on = on

    def softmax_forward(self, x):
        return self._kernel("softmax_forward", x)

    def softmax_backward(self, grad, y, divisor=1.0):
        return self._kernel("softmax_backward", y)

    def masked_softmax_forward(self, x, mask, divisor):
        return self._kernel("masked_softmax_forward", x)

    def layer_norm_forward(self, x, gamma, beta, eps):
        inv_std = self._unseen((*x.shape[:-1], 1), x.dtype)
        y, x_hat = self._kernel("layer_norm_forward", x, x)
        return y, x_hat, inv_std

    def layer_norm_backward(self, grad, x_hat, gamma, inv_std):
        return self._kernel("layer_norm_backward", x_hat)

    def gelu_forward(self, x):
        return self._kernel("gelu_forward", x, x)

    def gelu_backward(self, grad, x, t):
        return self._kernel("gelu_backward", x)

    def bce_with_logits_forward(self, z, y):
        return self._kernel("bce_with_logits_forward", z, z)

    def bce_with_logits_backward(self, grad, z, y, e, count, per_entry):
        return self._kernel("bce_with_logits_backward", z)

    def column_sums(self, g, h=None):
        like = self._unseen(g.shape[-1:], g.dtype)
        sums = self._kernel("column_sums", like)
        if h is not None:
            self.calls.add("empty")
        return sums, (None if h is None else self._unseen(g.shape[-1:], g.dtype))

    def matmul(self, a, b):
        """One cuBLAS call, after a copy of each operand it cannot read in place; None where CuPy's would be used."""
        A, B = a._array, b._array
        if not self.decisions.cublas_takes(A, B):
            return None
        self.calls.add("ascontiguousarray", (cublas_layout(A) is None) + (cublas_layout(B) is None))
        return self._kernel("matmul", self._unseen((*A.shape[:-1], B.shape[-1]), a.dtype))

    def readable(self, x):
        """``x``, or (a permuted view of floats) a copy laid out row after row: one launch."""
        if self.decisions.readable(x._array) is x._array:
            return x
        self.calls.add("ascontiguousarray")
        return self._unseen(x.shape, x.dtype)

    def adam_update(self, theta, g, m, v, *scalars):
        self._kernel("adam_update")
        return theta, m, v  # all three in place, as on CuPy

    def scatter_add(self, out, indices, values):
        self._kernel("scatter_add")

    def counter_uniform(self, n: int, start: int, key: int):
        self.calls.add("kernel counter_uniform")
        self.calls.add("empty", ALLOCATIONS["counter_uniform"])
        return self._unseen((n,), self.xp.float64)


def miniature(model: str) -> dict:
    """The configuration counted for ``model`` (a key of ``bench.MODELS``): its layers and heads, small sizes."""
    return {**bench.MODELS[model], **bench.MINIATURE, "d_model": 2 * bench.MODELS[model]["heads"]}


def count(config: dict, kernels: bool) -> tuple[dict, Calls]:
    """Calls of one training step (the second: the first creates Adam's moments) by phase: ``{phase: (calls,
    launches)}``, and the counter (its ``by_site`` for the whole step)."""
    batch = bench.make_batch(config)
    with mt.backend.use("array_api_strict") as be:
        previous = be.check_values, be.kernels
        be.check_values = False  # as on CuPy: no looking at token ids
        calls = Calls(be.xp)
        try:
            if kernels:
                be.kernels = StandInKernels(calls)
            ours = bench.build_ours(config, batch)
            ours["train_step"]()
            with calls:
                ours["optimizer"].zero_grad()
                loss, forward = _phase(calls, ours["loss"])
                _, backward = _phase(calls, loss.backward)
                _, optimizer = _phase(calls, ours["optimizer"].step)
        finally:
            be.check_values, be.kernels = previous
    return {"forward": forward, "backward": backward, "optimizer": optimizer}, calls


def _phase(calls: Calls, fn):
    """``fn()`` with the counter on: its result, and ``(calls, launches)`` it made."""
    before = calls.total(), calls.launches()
    calls.on = True
    try:
        out = fn()
    finally:
        calls.on = False
    return out, (calls.total() - before[0], calls.launches() - before[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(bench.MODELS))
    parser.add_argument("--sites", action="store_true", help="where each call of the kernels' step is made")
    args = parser.parse_args(argv)
    config = miniature(args.model)
    print(f"{args.model}: calls into the array library per training step (launches in brackets), array-api-strict")
    print(f"{'':24}{'forward':>12}{'backward':>12}{'optimizer':>12}{'step':>12}")
    for label, kernels in (("array formulas", False), ("CUDA kernels (stand-in)", True)):
        phases, calls = count(config, kernels)
        cells = [f"{total} ({launched})" for total, launched in phases.values()]
        step = [sum(v[i] for v in phases.values()) for i in (0, 1)]
        print(f"{label:24}" + "".join(f"{c:>12}" for c in cells) + f"{f'{step[0]} ({step[1]})':>12}")
    if args.sites:
        for (name, site), n in sorted(calls.by_site.items(), key=lambda item: item[0][1]):
            print(f"  {n:4} {name:28} {site}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
