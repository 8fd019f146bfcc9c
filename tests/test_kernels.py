"""The CUDA kernels of ``minitransformer.kernels`` against the formulas they replace.

Three ways, so that they are checked even where no GPU is:

- **compiled** with ``nvcc`` (where installed) for float32 and float64, as CuPy would compile them;
- **run on the CPU** by :mod:`minitransformer.cuda_emulator`, the package's emulation of CUDA: the same source
  compiled by ``g++`` after a prelude that defines ``threadIdx``, ``blockIdx``, ``blockDim`` and
  ``__syncthreads()``, each CUDA thread a fiber run in turn up to its next barrier, each launch run in both orders
  (a race shows as a difference), arrays between guard bytes. ``CudaKernels``' own Python (shapes, contiguity,
  arguments) drives it, with NumPy standing in for CuPy (:class:`EmulatedKernels`), and the library's Functions use
  it as the numpy backend's kernels: values and gradients must match the formulas. The tests of the emulator itself
  are in ``tests/test_cuda_emulator.py``. A7's graded tests (``tests/test_kernels_a7.py``) run a student's kernels
  on it;
- **on a GPU** (CuPy), the real kernels against the formulas, float32 under 1e-5, float64 under 1e-12.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import array_api_compat.numpy
import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import cuda_emulator as emu
from minitransformer import kernels as K
from minitransformer import optim
from minitransformer.autograd.fused import LayerNorm, ScaledMaskedSoftmax, Softmax
from minitransformer.backend import CounterRNG

from references import ATTENTION_MASKS, layer_norm_np, module_from_file

pytestmark = pytest.mark.single_backend

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
SHAPES = [(3, 1), (2, 5), (4, 100), (2, 3, 300)]  # rows of one, of a few, and longer than a block (strided)

#: kernels for the tests alone, compiled after SOURCE: block_sum and block_max on their own (A7's tests). Each thread
#: i (its global index) gets the reduction over its block of v[i] in out[i], then of w[i] in out2[i] by a second
#: reduction on the same shared memory, as a kernel's second one
REDUCTIONS = r"""
#line 1 "tests/test_kernels.py REDUCTIONS"
extern "C" __global__ void block_sums(const T* v, const T* w, T* out, T* out2) {
    extern __shared__ T s[];
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    out[i] = block_sum(v[i], s);
    out2[i] = block_sum(w[i], s);
}
extern "C" __global__ void block_maxes(const T* v, const T* w, T* out, T* out2) {
    extern __shared__ T s[];
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    out[i] = block_max(v[i], s);
    out2[i] = block_max(w[i], s);
}
"""


class HostCublas:
    r"""cuBLAS's two products as its documentation states them, on the host, for the emulation: CuPy's binding
    (``cupy_backends.cuda.libs.cublas``) with raw addresses, read and written as cuBLAS would.

    ``gemmEx``: :math:`C = \alpha\, \mathrm{op}(A)\, \mathrm{op}(B) + \beta C`, ``op(A)`` m x k, ``op(B)`` k x n,
    ``C`` m x n; every matrix column-major, column j starting ``ld`` entries after column j - 1; ``op`` is
    the transpose where its flag is ``CUBLAS_OP_T`` (1). ``gemmStridedBatchedEx``: the same for i < batchCount,
    matrix i of each operand ``stride`` entries after matrix i - 1. A leading dimension under the matrix's
    rows is refused (cuBLAS's ``CUBLAS_STATUS_INVALID_VALUE``), and so are type codes that disagree.
    """

    CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_64F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT = 68, 70, 77, -1
    TYPES = {0: (ctypes.c_float, (68, 77)), 1: (ctypes.c_double, (70,))}  # runtime's CUDA_R_32F, CUDA_R_64F

    def __init__(self, launches: list):
        self.launches, self.calls = launches, []

    @staticmethod
    def _matrices(address, c_type, rows, cols, ld, stride, count):
        """The ``count`` column-major ``rows x cols`` matrices from ``address``, as one writable NumPy view."""
        item = ctypes.sizeof(c_type)
        extent = (count - 1) * stride + (cols - 1) * ld + rows
        flat = np.ctypeslib.as_array((c_type * extent).from_address(address))
        return np.lib.stride_tricks.as_strided(flat, (count, rows, cols), (stride * item, item, ld * item))

    def gemmStridedBatchedEx(self, handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb,
                             strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo):
        self.launches.append("gemm")
        self.calls.append({"m": m, "n": n, "k": k, "transa": transa, "transb": transb, "batch": batchCount,
                           "compute": computeType, "handle": handle})
        assert Atype == Btype == Ctype and computeType in self.TYPES[Ctype][1] and algo == self.CUBLAS_GEMM_DEFAULT
        assert transa in (0, 1) and transb in (0, 1) and min(m, n, k, batchCount) >= 1
        a_rows, b_rows = (k if transa else m), (n if transb else k)  # the matrices as stored
        assert lda >= a_rows and ldb >= b_rows and ldc >= m, "cuBLAS: a leading dimension under its matrix's rows"
        c_type = self.TYPES[Ctype][0]
        read = lambda address: c_type.from_address(address).value  # noqa: E731  (alpha and beta: host pointers)
        op_A = self._matrices(A, c_type, a_rows, m if transa else k, lda, strideA, batchCount)
        op_B = self._matrices(B, c_type, b_rows, k if transb else n, ldb, strideB, batchCount)
        op_A, op_B = (op_A.transpose(0, 2, 1) if transa else op_A), (op_B.transpose(0, 2, 1) if transb else op_B)
        out = self._matrices(C, c_type, m, n, ldc, strideC, batchCount)
        product = read(alpha) * (op_A @ op_B)
        out[...] = product if read(beta) == 0 else product + read(beta) * out  # beta 0: C is not read

    def gemmEx(self, handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
               computeType, algo):
        self.gemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C,
                                  Ctype, ldc, 0, 1, computeType, algo)


class GuardedNumPy:
    """NumPy standing in for CuPy, its new arrays (``empty``, ``empty_like``) filled with the emulation's guard bytes
    (:func:`minitransformer.cuda_emulator.empty`): an entry a kernel never writes shows, as a huge number."""

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, shape, dtype=np.float64):
        return emu.empty(shape, dtype)

    def empty_like(self, x):
        return emu.empty(x.shape, x.dtype)


class EmulatedKernels(K.CudaKernels):
    """``CudaKernels`` with NumPy for CuPy (:class:`GuardedNumPy`), each launch run by the CUDA emulator
    (:mod:`minitransformer.cuda_emulator`: both orders, the race check, guard bytes) on the source compiled for its
    dtype, and the products by :class:`HostCublas`; ``launches`` names the kernels launched."""

    def __init__(self, modules: dict):
        super().__init__(GuardedNumPy())
        self._modules = self.modules = modules  # dtype -> cuda_emulator.RawModule, where CudaKernels keeps CuPy's
        self.launches = []
        self.cublas = HostCublas(self.launches)
        self._cublas = self.cublas, types.SimpleNamespace(CUDA_R_32F=0, CUDA_R_64F=1, is_hip=False)

    def _run(self, name, dtype, grid, block, args, shared_mem=0):
        self.launches.append(name)
        super()._run(name, dtype, grid, block, args, shared_mem=shared_mem)

    def _cublas_handle(self) -> int:
        return 0

    def _compute_capability(self) -> int:
        return 90  # an H100 or H200

    def _address(self, x) -> int:
        return x.ctypes.data


def emulated_kernels(source: str | None = None, dtypes=tuple(K.C_TYPES)) -> EmulatedKernels:
    """The kernels run on the CPU by :mod:`minitransformer.cuda_emulator`, for float32 and float64 (skips without g++).

    Also what ``pytest --emulated-kernels`` gives the numpy backend for the whole suite (``tests/conftest.py``).
    ``source`` in place of SOURCE (a student's copy, a mistake), and only ``dtypes``, for the tests of the emulation.
    g++'s errors name the lines of kernels.py.
    """
    if reason := emu.missing():
        pytest.skip(reason)
    text = (K.SOURCE if source is None else source) + REDUCTIONS
    return EmulatedKernels({dtype: emu.RawModule(text.replace("{T}", K.C_TYPES[dtype]),
                                                 name="minitransformer/kernels.py", first_line=_line_of_source())
                            for dtype in dtypes})


def _line_of_source() -> int:
    """The line of kernels.py that SOURCE's first line is (SOURCE's "\n" ends the line of ``SOURCE = r\"\"\"``)."""
    text = Path(K.__file__).read_text(encoding="utf-8")
    start = text.find('SOURCE = r"""')
    return text.count(chr(10), 0, start) + 1 if start >= 0 and K.SOURCE.startswith("\n") else 1


@pytest.fixture(scope="module")
def emulated():
    """The kernels, compiled by g++ for the CPU under the emulation, for float32 and float64."""
    return emulated_kernels()


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def test_numpy_backend_has_kernels_only_with_the_emulation_option(request):
    emulating = request.config.getoption("--emulated-kernels")
    assert (mt.backend.get("numpy").kernels is not None) == emulating


def test_the_suite_runs_on_the_emulated_kernels_with_an_option():
    if reason := emu.missing():
        pytest.skip(reason)
    here = Path(__file__).resolve()
    test = f"{here}::test_numpy_backend_has_kernels_only_with_the_emulation_option"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--emulated-kernels",
                          "--backends", "numpy", test], cwd=here.parents[1], capture_output=True, encoding="utf-8",
                         timeout=600)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]


# ------------------------------------------------------------------ compiled as CUDA
def a7_student_source() -> str:
    """SOURCE as A7's student copy has it: the marked kernels' bodies stubs (skips in a copy: no markers left)."""
    from minitransformer.assignments.strip import strip_source

    source, stubs = strip_source(K.SOURCE, 7)
    if not stubs:
        pytest.skip("not in a student copy: the kernels' solutions (minitransformer/kernels.py has no A7 markers)")
    return source


@pytest.mark.parametrize("copy", ["solution", "A7 student", "warp shuffles"])
@pytest.mark.parametrize("dtype", list(K.C_TYPES))
def test_the_source_compiles_with_nvcc(dtype, copy, tmp_path):
    """As CUDA compiles it: the library's kernels, A7's student copy (stubs: not_implemented, printf and __trap) and
    the warp-shuffle reductions that the emulation runs (:data:`A7_WARP_SHUFFLES`)."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not installed")
    source = tmp_path / "kernels.cu"
    text = {"solution": K.SOURCE, "A7 student": a7_student_source, "warp shuffles": a7_warp_shuffle_source}[copy]
    text = text if isinstance(text, str) else text()
    source.write_text(text.replace("{T}", K.C_TYPES[dtype]), encoding="utf-8")
    done = subprocess.run(["nvcc", "--ptx", "-arch=sm_80", str(source), "-o", str(tmp_path / "kernels.ptx")],
                          capture_output=True, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    ptx = (tmp_path / "kernels.ptx").read_text(encoding="utf-8")
    names = re.findall(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(', K.SOURCE)
    assert {"softmax_forward", "masked_softmax_forward", "layer_norm_backward", "scatter_add_sorted",
            "column_sums"} <= set(names)
    for name in names:
        assert f".entry {name}(" in ptx  # extern "C": the names CuPy's get_function asks for
    column_sums = ptx[ptx.index(".entry column_sums("):]
    assert f".maxntid {K.COLUMN_SUM_BLOCK}, 1, 1" in column_sums[:column_sums.index("{")]  # its launch bound


def test_block_size_is_a_power_of_two_from_a_warp_to_the_maximum():
    for n in range(1, 2000, 7):
        b = K.block_size(n)
        assert b & (b - 1) == 0 and 32 <= b <= K.MAX_BLOCK and (b >= n or b == K.MAX_BLOCK)


# ------------------------------------------------------------------ run on the CPU, emulated
def _formulas(kernels, fn):
    """``fn()`` run with the numpy backend's kernels set to ``kernels`` (None: the array formulas)."""
    be = mt.backend.get("numpy")
    previous, be.kernels = be.kernels, kernels
    try:
        return fn()
    finally:
        be.kernels = previous


def alternating_large(shape):
    """1e4, -1e4, 1e4, ... in rows of ``shape``: first entries far apart from row to row, so that a kernel that
    takes another row's entry into its row's maximum (or a sum) over- or underflows."""
    return 1e4 * (-1.0) ** np.arange(int(np.prod(shape))).reshape(shape)


def _agree(emulated, run, launches: list[str], dtype: str) -> None:
    """``run()`` with the emulated kernels launches ``launches`` and gives the formulas' arrays, dtypes, shapes."""
    emulated.launches.clear()
    with_kernels, formulas = _formulas(emulated, run), _formulas(None, run)
    assert emulated.launches == launches
    for k, f in zip(with_kernels, formulas, strict=True):
        assert k.dtype == np.dtype(dtype) and k.shape == f.shape
        assert rel_err(k, f) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_emulated_softmax_matches_the_formula(emulated, shape, dtype, rng):
    x = rng.normal(scale=3.0, size=shape).astype(dtype)
    x[..., 0] = alternating_large(x.shape[:-1])  # a large entry: the max is subtracted first, each row's own
    grad = rng.normal(size=shape).astype(dtype)

    def run():
        t = mt.tensor(x, requires_grad=True)
        y = Softmax.apply(t, axis=-1)
        y.backward(mt.tensor(grad))
        return y.numpy(), t.grad.numpy()

    _agree(emulated, run, ["softmax_forward", "softmax_backward"], dtype)


def a7_graded_tests():
    """``tests/test_kernels_a7.py``, A7's graded tests, as a module: its test functions, called here on kernels
    compiled from another source."""
    return module_from_file(Path(__file__).with_name("test_kernels_a7.py"), "a7_graded")


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("S", [1, 5, 300])
@pytest.mark.parametrize("mask", list(ATTENTION_MASKS))
def test_emulated_attention_weights_match_the_formula(emulated, mask, S, dtype, rng):
    x = rng.normal(scale=3.0, size=(2, 3, 4, S)).astype(dtype)
    x[..., 0] = alternating_large(x.shape[:-1])  # far from the other keys: the largest allowed score must be subtracted
    grad = rng.normal(size=x.shape).astype(dtype)
    allowed = ATTENTION_MASKS[mask](S)

    def run():
        t = mt.tensor(x, requires_grad=True)
        y = ScaledMaskedSoftmax.apply(t, allowed=allowed, divisor=float(np.sqrt(8.0)))
        y.backward(mt.tensor(grad))
        return y.numpy(), t.grad.numpy()

    _agree(emulated, run, ["masked_softmax_forward", "softmax_backward"], dtype)


@pytest.mark.parametrize("shape, launches", [
    ((6, 7), ["masked_softmax_forward", "softmax_backward"]),
    ((3, 6, 7), ["masked_softmax_forward", "softmax_backward"]),
    # more axes than the masked kernel reads: the division and the masks on arrays, the softmax by its kernels
    ((2, 1, 2, 6, 7), ["softmax_forward", "softmax_backward"]),
], ids=str)
def test_emulated_attention_weights_on_other_numbers_of_axes(emulated, shape, launches, rng):
    x, allowed = rng.normal(size=shape), rng.uniform(size=shape[-2:]) < 0.5

    def run():
        t = mt.tensor(x, requires_grad=True)
        y = ScaledMaskedSoftmax.apply(t, allowed=allowed, divisor=2.0)
        y.backward(mt.tensor(np.cos(x)))
        return y.numpy(), t.grad.numpy()

    _agree(emulated, run, launches, "float64")


@pytest.mark.parametrize("mask", ["none", "padding", "causal"])
def test_attention_with_emulated_kernels_matches_its_composition(emulated, mask, rng):
    Q, K_, V = (rng.normal(size=(2, 3, 4, 8)) for _ in range(3))
    allowed = ATTENTION_MASKS[mask](4)

    def run():
        leaves = [mt.tensor(a, requires_grad=True) for a in (Q, K_, V)]
        out, weights = F.scaled_dot_product_attention(*leaves, mask=None if allowed is None else mt.tensor(allowed))
        (out * out).sum().backward()
        return [out.numpy(), weights.numpy()] + [t.grad.numpy() for t in leaves]

    # with the kernels: the weights one operation (a kernel each way), between the products Q K^T and A V (cuBLAS,
    # two each way); without: the composition attention.py writes out
    launches = ["gemm", "masked_softmax_forward", "gemm"] + ["gemm", "gemm", "softmax_backward", "gemm", "gemm"]
    _agree(emulated, run, launches, "float64")


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("shape", [(3, 1), (2, 7), (2, 3, 300)], ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["gamma-beta", "plain"])
def test_emulated_layer_norm_matches_the_formula(emulated, shape, dtype, affine, rng):
    x = (rng.normal(size=shape) * 4 + 2).astype(dtype)
    grad = rng.normal(size=shape).astype(dtype)
    d = shape[-1]
    gamma, beta = rng.normal(size=d).astype(dtype), rng.normal(size=d).astype(dtype)

    def run():
        t = mt.tensor(x, requires_grad=True)
        g = mt.tensor(gamma, requires_grad=True) if affine else None
        b = mt.tensor(beta, requires_grad=True) if affine else None
        y = LayerNorm.apply(t, g, b, eps=1e-5)
        y.backward(mt.tensor(grad))
        grads = [t.grad.numpy()] + ([g.grad.numpy(), b.grad.numpy()] if affine else [])
        return [y.numpy(), *grads]

    # gamma's and beta's gradients: one column sum (after the kernel of x's)
    _agree(emulated, run, ["layer_norm_forward"] + (["column_sums"] if affine else []) + ["layer_norm_backward"],
           dtype)


def test_emulated_layer_norm_forward_returns_what_the_formula_keeps(emulated, rng):
    # (y, x_hat, inv_std): x_hat (..., d) and 1 / sqrt(var + eps) (..., 1), what backward reads
    x = rng.normal(size=(2, 3, 5)) * 4 + 2
    y, x_hat, inv_std = emulated.layer_norm_forward(x, None, None, 1e-5)
    _, want_hat, inv = layer_norm_np(x, return_stats=True)
    assert inv_std.shape == (2, 3, 1) and rel_err(inv_std, inv) < 1e-12
    assert x_hat.shape == y.shape == x.shape and rel_err(x_hat, want_hat) < 1e-12
    assert rel_err(y, x_hat) < 1e-12  # no gamma, no beta


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (40, 33), (2, 70, 5), (5,)], ids=str)
@pytest.mark.parametrize("times", [False, True], ids=["sum", "sum-and-product"])
def test_emulated_column_sums_match_numpys(emulated, shape, times, dtype, rng):
    # columns of one, of a few and more than a block's 32 (one partial block); rows fewer and more than its 32
    # lanes, over several axes, and a single row (a vector)
    g, h = rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)
    emulated.launches.clear()
    sum_g, sum_gh = emulated.column_sums(g, h if times else None)
    rows = tuple(range(len(shape) - 1))
    assert emulated.launches == ["column_sums"] and sum_g.shape == (shape[-1],) and sum_g.dtype == np.dtype(dtype)
    assert rel_err(sum_g, g.sum(axis=rows, dtype=np.float64)) < TOLERANCE[dtype]
    if times:
        assert sum_gh.shape == (shape[-1],) and sum_gh.dtype == np.dtype(dtype)
        assert rel_err(sum_gh, (g.astype(np.float64) * h).sum(axis=rows)) < TOLERANCE[dtype]
    else:
        assert sum_gh is None


def test_the_column_sums_launch_bound_is_the_block_it_is_launched_with():
    # a 1,024-thread launch needs at most 64 registers a thread: __launch_bounds__ tells NVRTC so (the emulator
    # ignores it, so only its number is checked here)
    bound = re.search(r"__launch_bounds__\((\d+)\)\s+column_sums\(", K.SOURCE)
    assert bound is not None and int(bound.group(1)) == K.COLUMN_SUM_BLOCK


def test_emulated_column_sums_over_many_rows_keep_float32s_precision(emulated, rng):
    # 20000 rows: each of a column's threads adds 625 of them, in double; float32 sums that long would drift
    g = rng.normal(loc=1.0, size=(20000, 3)).astype(np.float32)
    sum_g, _ = emulated.column_sums(g)
    assert rel_err(sum_g, g.sum(axis=0, dtype=np.float64)) < 1e-6


@pytest.mark.parametrize("bias", [True, False])
def test_a_projections_bias_gradient_is_one_column_sum_with_emulated_kernels(emulated, bias, rng):
    from minitransformer.autograd.fused import Affine

    x, W, b = rng.normal(size=(2, 5, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)

    def run():
        leaves = [mt.tensor(a, requires_grad=True) for a in (x, W, b)]
        y = Affine.apply(leaves[0], leaves[1], leaves[2] if bias else None)
        (y * y).sum().backward()
        return [y.numpy()] + [t.grad.numpy() for t in leaves[:2 + bias]]

    # x W, then the gradients Ybar W^T and X^T Ybar (cuBLAS, transposes read in place), and b's: one column sum
    _agree(emulated, run, ["gemm"] * 3 + (["column_sums"] if bias else []), "float64")


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("shape", [(1,), (3, 7), (5, 300)], ids=str)
def test_emulated_gelu_matches_the_formula(emulated, shape, dtype, rng, monkeypatch):
    monkeypatch.setattr(K, "MAX_GRID", 2)  # 1500 entries on 2 blocks: each thread strides
    x = (rng.normal(size=shape) * 3).astype(dtype)
    grad = rng.normal(size=shape).astype(dtype)

    def run():
        t = mt.tensor(x, requires_grad=True)
        y = F.gelu(t)
        y.backward(mt.tensor(grad))
        return y.numpy(), t.grad.numpy()

    _agree(emulated, run, ["gelu_forward", "gelu_backward"], dtype)


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("shape", [(), (7,), (3, 300)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_emulated_binary_cross_entropy_matches_the_formula(emulated, reduction, shape, dtype, rng, monkeypatch):
    monkeypatch.setattr(K, "MAX_GRID", 2)  # 900 entries on 2 blocks: each thread strides
    z = (rng.normal(size=shape) * 4).astype(dtype)
    z.reshape(-1)[:2] = [0.0, -60.0][: z.size]  # the tie at z = 0, and an exponent that underflows
    y = rng.uniform(size=shape).astype(dtype)  # soft labels
    grad = rng.normal(size=shape if reduction == "none" else ()).astype(dtype)

    def run():
        t = mt.tensor(z, requires_grad=True)
        loss = F.binary_cross_entropy_with_logits(t, mt.tensor(y), reduction=reduction)
        loss.backward(mt.tensor(grad))
        return loss.numpy(), t.grad.numpy()

    _agree(emulated, run, ["bce_with_logits_forward", "bce_with_logits_backward"], dtype)


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
def test_emulated_binary_cross_entropy_of_confident_right_answers_is_log1p(emulated, dtype):
    """The kernel's ln(1 + e^{-|z|}) is log1p(e): as log(1 + e) it was 0 at z = 40 (1 + e rounds to 1 in double;
    in float already at z = 20)."""
    z, y = np.array([20.0, 40.0, -20.0], dtype=dtype), np.array([1.0, 1.0, 0.0], dtype=dtype)
    emulated.launches.clear()
    loss = _formulas(emulated, lambda: F.binary_cross_entropy_with_logits(mt.tensor(z), mt.tensor(y),
                                                                          reduction="none").numpy())
    assert emulated.launches == ["bce_with_logits_forward"]
    expected = np.log1p(np.exp(-np.abs(z.astype(np.float64))))  # float64, by NumPy
    np.testing.assert_allclose(loss, expected, rtol=1e-12 if dtype == "float64" else 1e-6, atol=0)


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("make", [
    lambda p: optim.Adam(p, lr=0.05), lambda p: optim.Adam(p, lr=0.05, betas=(0.8, 0.95), weight_decay=1.0),
    lambda p: optim.AdamW(p, lr=0.05, weight_decay=0.3)], ids=["Adam", "Adam-L2", "AdamW"])
def test_emulated_adam_matches_the_formula(emulated, make, dtype, rng):
    values = [rng.normal(size=shape).astype(dtype) for shape in ((3, 4), (5,), (), (2, 300))]
    grads = [[rng.normal(size=v.shape).astype(dtype) for v in values] for _ in range(4)]

    def run():
        params = [mt.tensor(v, requires_grad=True) for v in values]
        opt = make(params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = mt.tensor(g)
            opt.step()
        moments = [opt.state[p][k] for p in params for k in ("m", "v")]
        assert all(opt.state[p]["step"] == 4 for p in params)
        return [p.numpy() for p in params] + [np.asarray(a) for a in moments]

    _agree(emulated, run, ["adam_update"] * 4, dtype)  # one launch a step for all four parameters


@pytest.mark.parametrize("shape", [(), (1,), (3, 2)], ids=str)
def test_emulated_adam_on_one_parameter_alone_keeps_its_shape(emulated, shape, rng):
    value, grads = rng.normal(size=shape), [rng.normal(size=shape) for _ in range(3)]

    def run():
        p = mt.tensor(value, requires_grad=True)
        # one parameter: laid out all the same, as a long array of the optimizer's own, which the kernel updates in
        # place; p's first array (here `value` itself, which mt.tensor does not copy) is left as it was, or the
        # formulas' run below would start from other numbers
        opt = optim.AdamW([p], lr=0.1, weight_decay=0.1)
        for g in grads:
            p.grad = mt.tensor(g)
            opt.step()
        assert p.shape == opt.state[p]["m"].shape == opt.state[p]["v"].shape == shape
        return [p.numpy(), np.asarray(opt.state[p]["m"])]

    _agree(emulated, run, ["adam_update"] * 3, "float64")


def test_a_subclass_that_changes_update_gets_its_own_formula_with_kernels(emulated):
    calls = []

    class Watched(optim.Adam):
        def update(self, xp, theta, g, group, state):
            calls.append(tuple(theta.shape))
            return super().update(xp, theta, g, group, state)

    params = [mt.tensor(np.ones(s), requires_grad=True) for s in ((2, 3), (4,))]
    for p in params:
        p.grad = mt.ones_like(p)
    emulated.launches.clear()
    _formulas(emulated, Watched(params, lr=0.1).step)
    assert calls == [(10,)] and emulated.launches == []  # its update, laid end to end; not Adam's kernel
    plain = optim.AdamW(params, lr=0.1)  # AdamW keeps Adam's update: the kernel computes it
    _formulas(emulated, plain.step)
    assert emulated.launches == ["adam_update"]
    before = [p.numpy().copy() for p in params]
    _formulas(emulated, optim.SGD(params, lr=0.5).step)  # no kernel of its own: its formula, theta - lr * g
    assert emulated.launches == ["adam_update"]
    for p, theta in zip(params, before):
        np.testing.assert_allclose(p.numpy(), theta - 0.5, rtol=1e-12)


def test_emulated_adam_updates_parameters_and_moments_in_place(emulated, rng):
    params = [mt.tensor(rng.normal(size=s), requires_grad=True) for s in ((3, 4), (5,))]
    opt = optim.Adam(params, lr=0.1)

    def step():
        for p in params:
            p.grad = mt.tensor(rng.normal(size=p.shape))
        _formulas(emulated, opt.step)

    step()  # the first step lays the parameters end to end: each becomes a view of one long array
    moments = [opt.state[p]["m"] for p in params]
    old = [p.data for p in params]
    before = [np.array(a) for a in old + moments]
    step()
    # the same views, with new values: the kernel wrote theta, m and v in place, as PyTorch's optimizers do
    assert all(opt.state[p]["m"] is m for p, m in zip(params, moments))
    assert all(p.data is o for p, o in zip(params, old))
    assert all((a != b).any() for a, b in zip(old + moments, before))
    assert np.shares_memory(params[0].data, params[1].data) is False  # views of one array, not overlapping
    assert params[0].data.base is params[1].data.base is not None


def test_emulated_kernels_take_only_the_last_axis_of_floats(emulated, rng):
    emulated.launches.clear()
    x = mt.tensor(rng.normal(size=(3, 4)))
    _formulas(emulated, lambda: (F.softmax(x, axis=0), F.softmax(x.to("float16"), axis=-1)))
    assert emulated.launches == []  # neither fits: the formula ran
    _formulas(emulated, lambda: F.softmax(x, axis=1))
    assert emulated.launches == ["softmax_forward"]
    assert emulated.fits(np.ones((2, 3))) and not emulated.fits(np.ones((0, 3)))  # empty: a grid of no blocks


@pytest.mark.parametrize("kind, launched", [
    ("lm", {"masked_softmax_forward", "softmax_backward", "layer_norm_forward", "layer_norm_backward",
            "column_sums"}),
    # the document's classifier: a padding mask, mean pooling, the binary cross-entropy
    ("classifier", {"masked_softmax_forward", "softmax_backward", "layer_norm_forward", "layer_norm_backward",
                    "column_sums", "bce_with_logits_forward", "bce_with_logits_backward", "scatter_add_chains",
                    "adam_update"}),
])
def test_a_training_step_with_emulated_kernels_matches_the_formulas(emulated, kind, launched):
    from minitransformer import bench

    tiny = {"kind": kind, "vocab": 11, "d_model": 8, "heads": 2, "num_layers": 2, "d_ff": 16, "seq": 6, "batch": 3}
    batch = bench.make_batch(tiny)

    def losses():
        step = bench.build_ours(tiny, batch)["train_step"]
        return [step().item() for _ in range(3)]

    # (the bench's model uses ReLU; GELU's kernels are checked on their own above)
    emulated.launches.clear()
    with_kernels, formulas = _formulas(emulated, losses), _formulas(None, losses)
    assert launched <= set(emulated.launches)
    np.testing.assert_allclose(with_kernels, formulas, rtol=1e-5)


@pytest.mark.parametrize("n", [0, 1, 1000, 3000])
def test_emulated_counter_uniforms_are_the_generators_to_the_bit(emulated, n, monkeypatch):
    monkeypatch.setattr(K, "MAX_BLOCK", 64)  # few blocks of few threads: 3000 draws stride over the grid
    monkeypatch.setattr(K, "MAX_GRID", 4)
    for seed, counter in ((0, 0), (7, 5), (2**64 - 1, 2**64 - 10)):  # the last wraps around 2^64
        plain = CounterRNG(np, seed)
        plain.state = {"bit_generator": "CounterRNG", "seed": seed, "counter": counter}
        fast = CounterRNG(np, seed, kernels=emulated)
        fast.state = plain.state
        np.testing.assert_array_equal(fast.random((n,)), plain.random((n,)))
        assert fast.state == plain.state


def test_the_gpu_backend_draws_its_uniforms_with_the_kernel_once_given_it(emulated):
    gpu = mt.backend.Backend("cupy", array_api_compat.numpy, native=np)  # NumPy standing in for CuPy
    expected = gpu.uniform((4, 5), dtype="float32")
    gpu.manual_seed(0)
    emulated.launches.clear()
    gpu.kernels = emulated  # the generator already made gets them too
    np.testing.assert_array_equal(gpu.uniform((4, 5), dtype="float32"), expected)
    gpu.manual_seed(0)  # and a new one
    np.testing.assert_array_equal(gpu.uniform((4, 5), dtype="float32"), expected)
    assert emulated.launches == ["counter_uniform", "counter_uniform"]


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("ids, rest", [
    ([0], (3,)),                               # one row
    ([2, 0, 2, 2, 1, 0, 2], (5,)),             # repeated ids, runs of several
    ([4] * 300 + [1, 3] * 50, (2, 3)),         # one long run (a padding id), rows of several axes
    ([1, 0, 2], ()),                           # a table of numbers: rows of one entry
], ids=["one", "repeats", "long-run", "scalars"])
@pytest.mark.parametrize("chained", [True, False], ids=["chains", "sorted"])
def test_emulated_scatter_add_is_numpys_add_at_to_the_bit(emulated, ids, rest, dtype, chained, rng, monkeypatch):
    monkeypatch.setattr(K, "MAX_BLOCK", 32)  # few threads: the entries stride over the grid
    monkeypatch.setattr(K, "MAX_GRID", 3)
    if not chained:  # more positions than chains are found for: the sort instead
        monkeypatch.setattr(K, "CHAIN_MAX", len(ids) - 1)
    ids = np.asarray(ids)
    values = rng.normal(scale=10.0, size=(len(ids), *rest)).astype(dtype)  # sums that round differently by order
    table = (int(ids.max()) + 2, *rest)  # the last row is never looked up: it stays 0
    expected = np.zeros(table, dtype=dtype)
    np.add.at(expected, ids, values)  # in the order of n
    gpu = mt.backend.Backend("cupy", array_api_compat.numpy, native=np)  # NumPy standing in for CuPy
    gpu.kernels = emulated
    emulated.launches.clear()
    np.testing.assert_array_equal(gpu.scatter_add(table, ids, values), expected)
    assert emulated.launches == (["id_chains", "scatter_add_chains"] if chained else ["scatter_add_sorted"])


def test_the_embedding_gradient_goes_through_the_scatter_kernel(emulated, rng):
    E = mt.tensor(rng.normal(size=(6, 4)), requires_grad=True)
    ids = mt.tensor([[1, 5, 1], [0, 1, 5]])
    expected = np.zeros((6, 4))
    np.add.at(expected, ids.numpy().ravel(), np.arange(24.0).reshape(6, 4))
    emulated.launches.clear()
    _formulas(emulated, lambda: mt.take(E, ids).backward(mt.tensor(np.arange(24.0).reshape(2, 3, 4))))
    assert emulated.launches == ["id_chains", "scatter_add_chains"]
    np.testing.assert_array_equal(E.grad.numpy(), expected)


#: operands of a product and how cuBLAS takes each (transposed?, batch count): row after row, transposed views,
#: a slice of columns (rows further apart than their length), vectors, stacks; a permuted view is copied first
PRODUCTS = {
    "rows @ rows": (lambda g: (g((5, 3)), g((3, 4))), (False, False, 1)),
    "rows @ W^T": (lambda g: (g((5, 3)), g((4, 3)).T), (True, False, 1)),
    "X^T @ rows": (lambda g: (g((3, 5)).T, g((3, 4))), (False, True, 1)),
    "slices": (lambda g: (g((5, 7))[:, 2:5], g((3, 9))[:, 1:5]), (False, False, 1)),
    "row @ column": (lambda g: (g((1, 6)), g((6, 1))), (False, False, 1)),
    "column @ row": (lambda g: (g((6, 1)), g((1, 6))), (False, False, 1)),
    "stacks": (lambda g: (g((2, 3, 5, 4)), g((2, 3, 4, 6))), (False, False, 6)),
    "a stack of two": (lambda g: (g((2, 5, 4)), g((2, 4, 6))), (False, False, 2)),
    "Q @ K^T": (lambda g: (g((2, 3, 5, 4)), np.swapaxes(g((2, 3, 6, 4)), -1, -2)), (True, False, 6)),
    "A^T @ G, a stack of one": (lambda g: (np.swapaxes(g((1, 4, 5)), -1, -2), g((1, 4, 3))), (False, True, 1)),
    "split heads (copied)": (lambda g: (g((2, 5, 3, 4)).transpose(0, 2, 1, 3), g((2, 3, 4, 6))), (False, False, 6)),
}


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("case", list(PRODUCTS))
def test_emulated_matmul_is_the_matrix_product(emulated, case, dtype, rng):
    make, (trans_b, trans_a, batch) = PRODUCTS[case]
    a, b = make(lambda shape: rng.normal(size=shape).astype(dtype))
    emulated.launches.clear()
    c = emulated.matmul(a, b)
    assert emulated.launches == ["gemm"] and c.dtype == np.dtype(dtype) and c.flags.c_contiguous
    assert c.shape == np.matmul(a, b).shape and rel_err(c, np.matmul(a, b)) < TOLERANCE[dtype]
    call = emulated.cublas.calls[-1]  # C^T = B^T A^T: cuBLAS's first operand is b
    assert (call["transa"], call["transb"], call["batch"]) == (trans_b, trans_a, batch)
    full, tf32 = 68, 77  # float32 in full precision unless CUPY_TF32=1
    assert call["compute"] == (70 if dtype == "float64" else tf32 if emulated.tf32 else full)


def test_emulated_matmul_leaves_broadcasts_and_other_dtypes_to_the_array_api(emulated, rng):
    x = rng.normal(size=(2, 3, 4))
    assert emulated.matmul(x, rng.normal(size=(1, 4, 5))) is None  # batch axes broadcast
    assert emulated.matmul(x, rng.normal(size=(4, 5))) is None  # one matrix for a stack (the caller folds rows)
    assert emulated.matmul(x.astype(np.int64), np.ones((2, 4, 5), dtype=np.int64)) is None
    assert emulated.matmul(x.astype(np.float32), rng.normal(size=(2, 4, 5))) is None  # mixed dtypes
    assert emulated.matmul(np.ones((2, 0)), np.ones((0, 3))) is None  # nothing to multiply: matmul gives zeros
    assert emulated.matmul(np.ones((0, 4)), np.ones((4, 3))) is None  # no rows: an empty product
    assert emulated.matmul(np.ones((2, 4)), np.ones((4, 0))) is None  # no columns
    for batch in ((0,), (2, 0)):  # an empty stack: NumPy and CuPy give it strides 0, which no layout reads
        assert emulated.matmul(np.ones((*batch, 3, 4)), np.ones((*batch, 4, 5))) is None
    assert emulated.matmul(np.ones(4), np.ones((4, 3))) is None  # a vector


def test_matmul_uses_tf32_for_float32_as_cupy_does_with_its_variable(emulated, monkeypatch, rng):
    monkeypatch.delenv("CUPY_TF32", raising=False)
    assert not EmulatedKernels(emulated.modules).tf32
    monkeypatch.setenv("CUPY_TF32", "1")
    tf32 = EmulatedKernels(emulated.modules)  # read when the kernels are made, as CuPy reads it once
    assert tf32.tf32
    tf32.matmul(rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32))
    assert tf32.cublas.calls[-1]["compute"] == 77  # CUBLAS_COMPUTE_32F_FAST_TF32
    tf32.matmul(rng.normal(size=(2, 3)), rng.normal(size=(3, 2)))
    assert tf32.cublas.calls[-1]["compute"] == 70  # float64 stays float64
    ampere = EmulatedKernels(emulated.modules)
    monkeypatch.setattr(ampere, "_compute_capability", lambda: 80)  # an A100: the first with TF32
    ampere.matmul(rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32))
    assert ampere.cublas.calls[-1]["compute"] == 77
    older = EmulatedKernels(emulated.modules)
    monkeypatch.setattr(older, "_compute_capability", lambda: 75)  # a T4: no TF32, so CuPy computes in float32
    older.matmul(rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32))
    assert older.cublas.calls[-1]["compute"] == 68


def test_cublas_layout_reads_rows_columns_and_strided_stacks():
    x = np.zeros((2, 3, 4, 5), dtype=np.float32)
    assert K.cublas_layout(x) == (False, 5, 20, 6)
    assert K.cublas_layout(np.swapaxes(x, -1, -2)) == (True, 5, 20, 6)
    assert K.cublas_layout(x[:, 1]) == (False, 5, 60, 2)  # every other stack of matrices: one stride still
    assert K.cublas_layout(x[:, :2]) is None  # two strides (20 within a group of two, 60 between groups)
    assert K.cublas_layout(x.transpose(0, 2, 1, 3)) is None  # heads split from the features
    assert K.cublas_layout(x[..., ::2]) is None  # entries of a row apart
    assert K.cublas_layout(np.broadcast_to(x[:1], x.shape)) is None  # a broadcast stack: stride 0
    assert K.cublas_layout(np.broadcast_to(x[0, 0], (3, 4, 5))) is None  # one matrix for three: stride 0
    W = np.zeros((4, 6), dtype=np.float32)
    assert K.cublas_layout(W[:, ::3]) is None  # two columns, entries 3 apart: neither rows nor columns
    assert K.cublas_layout(W[::2]) == (False, 12, 0, 1)  # two rows, every other one: 12 entries apart
    assert K.cublas_layout(W[:, 1:2]) == (False, 6, 0, 1)  # one column: its rows 6 apart
    assert K.cublas_layout(W.T[:1]) == (True, 6, 0, 1)  # one row of W^T (a column of W): entries 6 apart


class DeviceArray(np.ndarray):
    """A NumPy array that gives its address as CuPy's arrays do (``a.data.ptr``)."""

    data = property(lambda self: types.SimpleNamespace(ptr=self.ctypes.data))


@pytest.fixture
def cupy_binding(monkeypatch):
    """``(cupy, cublas, runtime)``: what the emulation stands in for, itself stood in for: CuPy's binding of cuBLAS
    imported by its module paths (HostCublas behind it), CuPy's cuBLAS handle (7), arrays with ``a.data.ptr``."""
    cublas, runtime = HostCublas([]), types.SimpleNamespace(CUDA_R_32F=0, CUDA_R_64F=1, is_hip=False)
    for name, module in [("cupy_backends", types.ModuleType("cupy_backends")),
                         ("cupy_backends.cuda", types.ModuleType("cupy_backends.cuda")),
                         ("cupy_backends.cuda.api", types.SimpleNamespace(runtime=runtime)),
                         ("cupy_backends.cuda.libs", types.SimpleNamespace(cublas=cublas))]:
        monkeypatch.setitem(sys.modules, name, module)
    cupy = types.SimpleNamespace(
        dtype=np.dtype, empty=lambda shape, dtype: np.empty(shape, dtype).view(DeviceArray),
        ascontiguousarray=lambda x: np.ascontiguousarray(x).view(DeviceArray),
        cuda=types.SimpleNamespace(device=types.SimpleNamespace(get_cublas_handle=lambda: 7),
                                   Device=lambda: types.SimpleNamespace(compute_capability="75")))
    return cupy, cublas, runtime


def test_the_products_reach_cuBLAS_through_cupys_binding_handle_and_addresses(cupy_binding, monkeypatch, rng):
    monkeypatch.setenv("CUPY_TF32", "1")  # and the device's compute capability, asked before TF32 is used
    cupy, cublas, _ = cupy_binding
    a, b = rng.normal(size=(4, 5)).view(DeviceArray), rng.normal(size=(3, 5)).view(DeviceArray)
    c = K.CudaKernels(cupy).matmul(a, b.T)
    assert cublas.launches == ["gemm"] and cublas.calls[0]["handle"] == 7
    assert rel_err(c, np.asarray(a) @ np.asarray(b).T) < 1e-12
    c = K.CudaKernels(cupy).matmul(a.astype(np.float32).view(DeviceArray), b.T.astype(np.float32).view(DeviceArray))
    assert cublas.calls[-1]["compute"] == 68  # compute capability 7.5: float32, whatever CUPY_TF32 says


def test_on_rocm_the_products_are_left_to_cupy(cupy_binding, rng):
    # hipBLAS sits behind the same binding on ROCm, with type codes of its own: CuPy's matmul does the products
    cupy, cublas, runtime = cupy_binding
    runtime.is_hip = True
    kernels, a = K.CudaKernels(cupy), rng.normal(size=(2, 3, 4)).view(DeviceArray)
    heads = a.transpose(1, 0, 2)
    assert kernels.matmul(a, a.mT) is None and kernels.readable(heads) is heads
    assert cublas.launches == []


def test_without_cupys_binding_the_products_are_left_to_cupy_with_a_warning(cupy_binding, monkeypatch, rng):
    cupy, cublas, _ = cupy_binding
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs", None)  # a CuPy that moved or dropped the binding
    kernels, a = K.CudaKernels(cupy), rng.normal(size=(3, 4)).view(DeviceArray)
    with pytest.warns(RuntimeWarning, match="cuBLAS is not where it was"):
        assert kernels.matmul(a, a.T) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not at every product
        assert kernels.matmul(a, a.T) is None
    assert cublas.launches == []


def test_each_kernel_is_compiled_once_per_dtype_and_looked_up_once():
    # CuPy's side of a launch: a RawModule per dtype (the source with its T), one get_function per kernel and dtype
    built, looked_up, launched = [], [], []

    class RawModule:
        def __init__(self, code):
            built.append(code)

        def get_function(self, name):
            looked_up.append(name)
            return lambda grid, block, args, shared_mem: launched.append((name, grid, block, args, shared_mem))

    kernels = K.CudaKernels(types.SimpleNamespace(RawModule=RawModule))
    for dtype in ("float32", "float64", "float32"):
        kernels._run("softmax_forward", dtype, 3, 32, ("x",), shared_mem=128)
    kernels._run("gelu_forward", "float32", 1, 256, ())
    assert built == [K.SOURCE.replace("{T}", K.C_TYPES[dtype]) for dtype in ("float32", "float64")]
    assert looked_up == ["softmax_forward", "softmax_forward", "gelu_forward"]
    assert launched[0] == ("softmax_forward", (3,), (32,), ("x",), 128) and len(launched) == 4
    assert launched[-1] == ("gelu_forward", (1,), (256,), (), 0)  # no shared memory unless asked


def test_readable_copies_only_what_cublas_cannot_read_in_place(emulated, rng):
    x = rng.normal(size=(2, 5, 3, 4))
    for same in (x, np.swapaxes(x, -1, -2), x[:, 1], np.ones(4), x.astype(np.int64), np.ones((0, 3))):
        assert emulated.readable(same) is same  # read in place, or left to the array API
    heads = x.transpose(0, 2, 1, 3)  # (batch, heads, seq, d_k) split from the features
    copy = emulated.readable(heads)
    assert copy.flags.c_contiguous and np.array_equal(copy, heads)
    every_other = x[0, 0][:, ::2]  # one matrix, its entries 2 apart
    copy = emulated.readable(every_other)
    assert copy.flags.c_contiguous and np.array_equal(copy, every_other)


def test_attention_products_copy_each_split_head_once(emulated, rng):
    # Q, K^T and V are permuted views: copied once in the forward and kept so, for the backward's products too
    q, k, v = (rng.normal(size=(2, 5, 3, 4)) for _ in range(3))

    def run():
        Q, K_, V = (mt.tensor(a, requires_grad=True).permute(0, 2, 1, 3) for a in (q, k, v))
        scores = Q @ K_.mT
        out = scores @ V
        saved = [scores._ctx.a, scores._ctx.b, out._ctx.b]
        out.sum().backward()
        return saved

    assert all(a.flags.c_contiguous for a in _formulas(emulated, run))
    assert not any(a.flags.c_contiguous for a in _formulas(None, run))  # the formula path keeps the views


@pytest.mark.parametrize("shared", [False, True], ids=["stacks", "shared weight"])
def test_matmul_with_emulated_cublas_matches_the_formulas(emulated, shared, rng):
    a = rng.normal(size=(2, 3, 4, 5))
    b = rng.normal(size=(5, 6) if shared else (2, 3, 5, 6))

    def run():
        A, B = mt.tensor(a, requires_grad=True), mt.tensor(np.swapaxes(b, -1, -2), requires_grad=True)
        y = A @ B.mT  # B^T: a transposed view, read in place
        (y * y).sum().backward()
        return [y.numpy(), A.grad.numpy(), B.grad.numpy()]

    _agree(emulated, run, ["gemm"] * 3, "float64")


# ------------------------------------------------------------------ A7: a student's kernels under the emulation
def test_a7_stubs_raise_their_message_in_the_kernels_that_reach_them_only(rng):
    """In A7's copy each stub fails the launches that reach it, at run time, with its hint; the other kernels run."""
    kernels = emulated_kernels(a7_student_source(), dtypes=("float64",))
    x = rng.normal(size=(2, 5))
    with pytest.raises(NotImplementedError, match=r"^A7: softmax_forward: .* \(reached in the launch of "
                                                  r"softmax_forward\)$"):
        kernels.softmax_forward(x)
    with pytest.raises(NotImplementedError, match=r"^A7: block_sum: .*layer_norm_backward\)$"):  # (it calls block_sum)
        kernels.layer_norm_backward(x, x, None, np.ones((2, 1)))
    y, t = kernels.gelu_forward(x)  # no stub on their way: they run
    assert rel_err(t, np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))) < 1e-12
    assert rel_err(kernels.column_sums(x)[0], x.sum(axis=0)) < 1e-12


#: realistic mistakes in A7's kernels: (the solution's text, the mistake, the graded test that must fail, its
#: arguments, what its message must say)
A7_MISTAKES = {
    "barrier missing": ("    __syncthreads();  // s is reused by the next reduction\n", "",
                        "test_block_sum_gives_every_thread_the_sum_of_its_block", {"block": 32},
                        r"block_sums: race: a barrier is missing\?"),
    "barrier inside an if": ("if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];\n        __syncthreads();",
                             "if (threadIdx.x < k) { s[threadIdx.x] += s[threadIdx.x + k]; __syncthreads(); }",
                             "test_block_sum_gives_every_thread_the_sum_of_its_block", {"block": 64},
                             r"reached a __syncthreads\(\) that others never reach"),
    "a round left out": ("k > 0; k >>= 1) {\n        if (threadIdx.x < k) s[threadIdx.x] +=",
                         "k > 1; k >>= 1) {\n        if (threadIdx.x < k) s[threadIdx.x] +=",
                         "test_block_sum_gives_every_thread_the_sum_of_its_block", {"block": 128},
                         r"^(?!.*shfl)block_sum .*thread 0 of block 0 got .*a round left out, or one too many\? in a "
                         r"tree, k from blockDim.x / 2 down to 1"),  # (a tree's hint only: no shuffle's)
    "max the wrong way": ("s[threadIdx.x + k] > s[threadIdx.x]) s[threadIdx.x]",
                          "s[threadIdx.x + k] < s[threadIdx.x]) s[threadIdx.x]",
                          "test_block_max_gives_every_thread_the_max_of_its_block", {"block": 32},
                          r"every thread got the block's minimum"),
    "no max shift": ("T e = exp(xr[i] - m);", "T e = exp(xr[i]);", "test_softmax_forward_is_the_formula",
                     {"shape": (3, 1)}, r"inf or nan in the result: is the row's max m subtracted"),
    "no stride loop": ("for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] /= total;",
                       "if (threadIdx.x < n) yr[threadIdx.x] /= total;", "test_softmax_forward_is_the_formula",
                       {"shape": (2, 1000)}, r"right on each row's first 256 entries, wrong past them"),
    "rows overlap": ("long long row = (long long)blockIdx.x * n;\n    T dot", "long long row = blockIdx.x;\n    T dot",
                     "test_softmax_backward_is_the_formula", {"shape": (2, 5), "divisor": 1.0},
                     r"or two blocks write the same entries"),
    "backward sign": ("(grad[row + i] * y[row + i] - y[row + i] * dot)",
                      "(y[row + i] * dot - grad[row + i] * y[row + i])", "test_softmax_backward_is_the_formula",
                      {"shape": (2, 5), "divisor": 1.0},
                      r"the negative of the formula: a sign\?"),
    "backward not divided": ("y[row + i] * dot) / divisor;", "y[row + i] * dot);",
                             "test_softmax_backward_is_the_formula", {"shape": (2, 5), "divisor": 2.0},
                             r"it is not divided \(the last argument, divisor\)"),
    "every block row 0": ("    long long row = (long long)blockIdx.x * d;\n    T total = 0;",
                          "    long long row = 0;\n    T total = 0;", "test_layer_norm_forward_is_the_formula",
                          {"shape": (2, 7), "affine": "plain"},
                          r"never written .*none in row 0: does block r write row r"),
    "unbiased variance": ("T std = sqrt(block_sum(squares, s) / (T)d + eps);",
                          "T std = sqrt(block_sum(squares, s) / (T)(d - 1) + eps);",
                          "test_layer_norm_forward_is_the_formula", {"shape": (3, 1), "affine": "plain"},
                          r"\(x_hat\): inf or nan .*the biased one, / d"),
    "one-pass variance": ("        T c = x[row + i] - mu;\n        squares += c * c;\n    }\n"
                          "    T std = sqrt(block_sum(squares, s) / (T)d + eps);",
                          "        T c = x[row + i];\n        squares += c * c;\n    }\n"
                          "    T std = sqrt(block_sum(squares, s) / (T)d - mu * mu + eps);",
                          "test_layer_norm_forward_is_the_formula", {"shape": (2, 7), "affine": "plain"},
                          r"wrong on the last row only, the one far from 0 .*not mean\(x\^2\) - mu\^2"),
    "one past the row": ("for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] /= total;",
                         "for (long long i = threadIdx.x; i <= n; i += blockDim.x) yr[i] /= total;",
                         "test_softmax_forward_is_the_formula", {"shape": (2, 5)},
                         r"^softmax_forward: wrote past the end of an array \(argument 1 \(T\* y\), 10 entries of "
                         r"float64\): a loop's bound one too far \(i <= n for i < n\?\)"),
    "divided by a thread's part": ("    total = block_sum(total, s);\n    for (long long i = threadIdx.x; i < n; i += "
                                   "blockDim.x) yr[i] /= total;",
                                   "    for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] /= total;\n"
                                   "    total = block_sum(total, s);",
                                   "test_softmax_forward_is_the_formula", {"shape": (2, 1000)},
                                   r"inf or nan in the result: .*divided by the row's sum once complete "
                                   r"\(block_sum's result, not a thread's own part\)"),
    "hidden keys weighed": ("T e = (!has_mask || allowed[j * s_n]) ? exp(xr[j] / divisor - m) : (T)0;",
                            "T e = exp(xr[j] / divisor - m);", "test_masked_softmax_forward_is_attentions_weights",
                            {"S": 5, "mask": "causal"}, r"a hidden key \(mask false\) got weight"),
    "0 / 0 with no key": ("yr[j] = total > 0 ? yr[j] / total : (T)0;", "yr[j] = yr[j] / total;",
                          "test_masked_softmax_forward_is_attentions_weights", {"S": 5, "mask": "padding"},
                          r"a row with no allowed key must be 0 everywhere"),
    "scores not divided": ("T z = xr[j] / divisor;\n        if ((!has_mask || allowed[j * s_n]) && z > m) m = z;\n"
                           "    }\n    m = block_max(m, s);\n    T total = 0;\n    for (long long j = threadIdx.x; j "
                           "< n; j += blockDim.x) {\n        T e = (!has_mask || allowed[j * s_n]) ? exp(xr[j] / "
                           "divisor - m)",
                           "T z = xr[j];\n        if ((!has_mask || allowed[j * s_n]) && z > m) m = z;\n"
                           "    }\n    m = block_max(m, s);\n    T total = 0;\n    for (long long j = threadIdx.x; j "
                           "< n; j += blockDim.x) {\n        T e = (!has_mask || allowed[j * s_n]) ? exp(xr[j] - m)",
                           "test_masked_softmax_forward_is_attentions_weights", {"S": 300, "mask": "none"},
                           r"the softmax of x, not of z = x / divisor"),
    "a sum never set": ("    T total = 0;\n    for (long long i = threadIdx.x; i < n; i += blockDim.x) {\n"
                        "        T e = exp(xr[i] - m);",
                        "    T total;\n    for (long long i = threadIdx.x; i < n; i += blockDim.x) {\n"
                        "        T e = exp(xr[i] - m);",
                        "test_softmax_forward_is_the_formula", {"shape": (4, 100)},
                        r"g\+\+ warned: minitransformer/kernels.py:\d+:\d+: warning: .total. (may be|is) used "
                        r"uninitialized"),
    "max over the row's first block only": (
        "    for (long long i = threadIdx.x; i < n; i += blockDim.x) m = xr[i] > m ? xr[i] : m;\n",
        "    if (threadIdx.x < n) m = xr[threadIdx.x] > m ? xr[threadIdx.x] : m;\n",
        "test_softmax_forward_is_the_formula", {"shape": (2, 1000)},
        r"^softmax_forward \(each row's large entry last\): inf or nan .*the max of the whole row"),
    "max from 0": ("    T m = xr[0];\n", "    T m = 0;\n", "test_softmax_forward_is_the_formula", {"shape": (2, 5)},
                   r"^softmax_forward \(every entry far below 0 \(x - 2e4\)\): inf or nan"),
    "max in float": ("s[threadIdx.x + k] > s[threadIdx.x]) s[threadIdx.x] = s[threadIdx.x + k];",
                     "s[threadIdx.x + k] > s[threadIdx.x]) s[threadIdx.x] = fmaxf(s[threadIdx.x], s[threadIdx.x + k]);",
                     "test_block_max_gives_every_thread_the_max_of_its_block", {"block": 32},
                     r"a thread got the block's max rounded to float32: is it taken in float \(fmaxf"),
    "hidden keys in the max": ("if ((!has_mask || allowed[j * s_n]) && z > m) m = z;", "if (z > m) m = z;",
                               "test_masked_softmax_forward_is_attentions_weights", {"S": 5, "mask": "padding"},
                               r"^masked_softmax_forward \(.*the mask \(2, 1, 1, 5\).*\): row \d+ is 0 everywhere, "
                               r"with keys allowed: .*hidden keys left out of it"),
    "the mask's head axis left out": ("const bool* allowed = mask + a * s_a + b * s_b + l * s_l;",
                                      "const bool* allowed = mask + a * s_a + l * s_l;",
                                      "test_masked_softmax_forward_is_attentions_weights",
                                      {"S": 5, "mask": "every-axis"},
                                      r"^masked_softmax_forward \(the mask \(2, 3, 4, 5\): s_a, s_b, s_l, s_n = 60, "
                                      r"20, 5, 1\)"),
    "the mask's key stride left out": ("T e = (!has_mask || allowed[j * s_n])", "T e = (!has_mask || allowed[j])",
                                       "test_masked_softmax_forward_is_attentions_weights",
                                       {"S": 5, "mask": "keys-broadcast"},
                                       r"^masked_softmax_forward \(the mask \(4, 1\): s_a, s_b, s_l, s_n = 0, 0, 1, "
                                       r"0\)"),
}


def test_a_kernel_that_wrote_past_an_array_costs_the_other_kernels_nothing(rng):
    """The emulation checks each launch on its own: after one that wrote past the end of an array, the same
    kernels' next launches (other kernels, correct) pass, as their graded tests must."""
    old = "for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] /= total;"
    kernels = emulated_kernels(K.SOURCE.replace(old, old.replace("i < n", "i <= n")), dtypes=("float64",))
    graded = a7_graded_tests()
    with pytest.raises(emu.LaunchError, match=r"^softmax_forward: wrote past the end of an array"):
        graded.test_softmax_forward_is_the_formula(emulated_cuda=kernels, shape=(2, 5), dtype="float64", rng=rng)
    graded.test_softmax_backward_is_the_formula(emulated_cuda=kernels, shape=(2, 5), divisor=1.0, dtype="float64",
                                                rng=rng)
    graded.test_layer_norm_forward_is_the_formula(emulated_cuda=kernels, shape=(2, 7), affine="plain",
                                                  dtype="float64", rng=rng)


@pytest.mark.parametrize("mistake", list(A7_MISTAKES))
def test_a7s_graded_tests_fail_a_mistake_and_say_what_it_likely_is(mistake, rng):
    old, new, test, args, message = A7_MISTAKES[mistake]
    a7_student_source()  # (skips in a copy, which has no solution to make mistakes in)
    assert K.SOURCE.count(old) == 1, f"{mistake}: not once in SOURCE: {old!r}"
    kernels = emulated_kernels(K.SOURCE.replace(old, new), dtypes=("float64",))
    with pytest.raises(AssertionError, match=message):
        getattr(a7_graded_tests(), test)(emulated_cuda=kernels, dtype="float64", rng=rng, **args)


#: A7's block_sum and block_max as fast CUDA reductions are written: each warp's by shuffles, then the warps' results
#: through shared memory; right on a GPU, so they earn A7's points as the tree does (by their heads in SOURCE)
A7_WARP_SHUFFLES = {
    "__device__ T block_sum(T v, T* s) {": r"""
__device__ T warp_sum(T v) {  // lane l adds lane l + k's value: lane 0 ends with the warp's sum
    for (int k = 16; k > 0; k >>= 1) v += __shfl_down_sync(0xffffffff, v, k);
    return v;
}
__device__ T block_sum(T v, T* s) {
    unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    T total = warp_sum(v);
    if (lane == 0) s[warp] = total;
    __syncthreads();
    total = warp_sum(lane < warps ? s[lane] : (T)0);  // every warp adds the warps' sums, in the same order
    total = __shfl_sync(0xffffffff, total, 0);         // lane 0's to every lane
    __syncthreads();                                   // all have read s before the next reduction writes it
    return total;
}
""",
    "__device__ T block_max(T v, T* s) {": r"""
__device__ T warp_max(T v) {  // lane l takes the larger of its own and lane l ^ k's: every lane ends with the max
    for (int k = 16; k > 0; k >>= 1) v = max(v, __shfl_xor_sync(0xffffffff, v, k));
    return v;
}
__device__ T block_max(T v, T* s) {
    unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    T m = warp_max(v);
    if (lane == 0) s[warp] = m;
    __syncthreads();
    m = warp_max(s[lane < warps ? lane : 0]);
    __syncthreads();
    return m;
}
""",
}


def a7_warp_shuffle_source() -> str:
    """SOURCE with :data:`A7_WARP_SHUFFLES` in place of block_sum's and block_max's definitions."""
    source = K.SOURCE
    for head, definition in A7_WARP_SHUFFLES.items():
        start = source.index(head)
        end = source.index("\n}\n", start) + 3
        source = source[:start] + definition.lstrip("\n") + source[end:]
    return source


def test_a7s_reductions_written_with_warp_shuffles_earn_every_point_of_their_tests(rng):
    """A student's block_sum and block_max by warp shuffles, and the kernels that call them, pass A7's graded tests
    (the reductions' on every block size and both dtypes; softmax, its backward, the masked softmax, layer norm)."""
    kernels = emulated_kernels(a7_warp_shuffle_source())
    graded = a7_graded_tests()
    for dtype in K.C_TYPES:
        for block in (32, 128, 256):
            graded.test_block_sum_gives_every_thread_the_sum_of_its_block(kernels, block, dtype, rng)
            graded.test_block_max_gives_every_thread_the_max_of_its_block(kernels, block, dtype, rng)
        for shape in graded.SHAPES:
            graded.test_softmax_forward_is_the_formula(kernels, shape, dtype, rng)
        graded.test_softmax_backward_is_the_formula(kernels, (2, 1000), 2.0, dtype, rng)
        graded.test_masked_softmax_forward_is_attentions_weights(kernels, 300, "causal", dtype, rng)
        graded.test_layer_norm_forward_is_the_formula(kernels, (2, 3, 300), "gamma-beta", dtype, rng)


#: what a race's message says of a kernel (its name in {}) with warp operations
WARP_RACE = (r"^{}: race: .*This kernel calls warp operations: a __syncwarp\(\) or a shuffle orders only the lanes of "
             r"its own warp that its mask names, not the block's other warps")
#: block_sum's last line but one in :data:`A7_WARP_SHUFFLES`, the barrier after the warps' sums are read
SUMS_READ = ("    __syncthreads();                                   // all have read s before the next reduction "
             "writes it\n")
#: mistakes in the warp-shuffle reductions (:data:`A7_WARP_SHUFFLES`): (its text, the mistake, the graded test
#: that must fail, its arguments, what its message must say)
A7_WARP_MISTAKES = {
    "up for down": ("__shfl_down_sync(0xffffffff, v, k)", "__shfl_up_sync(0xffffffff, v, k)",
                    "test_block_sum_gives_every_thread_the_sum_of_its_block", {"block": 64},
                    r"^(?!.*in a tree)block_sum .*thread 0 of block 0 got .* with warp shuffles, lane l adds lane "
                    r"l \+ k's value, "
                    r"__shfl_down_sync\(0xffffffff, v, k\) .*\(__shfl_up_sync leaves it in lane 31\); or lane l \^ "
                    r"k's, __shfl_xor_sync\(0xffffffff, v, k\) for the same k, which leaves it in every lane\)"),
    # notebook 12's A7 exercise: block_max by __shfl_xor_sync, which leaves the max in every lane; its hint says so
    "a round of the xor butterfly left out": (
        "for (int k = 16; k > 0; k >>= 1) v = max(", "for (int k = 16; k > 1; k >>= 1) v = max(",
        "test_block_max_gives_every_thread_the_max_of_its_block", {"block": 32},
        r"^(?!.*in a tree)block_max .*thread 0 of block 1 got .*a round left out, or one too many\? with warp "
        r"shuffles, lane l takes the larger of its own and lane l \+ k's value, .*; or lane l \^ k's, "
        r"__shfl_xor_sync\(0xffffffff, v, k\) for the same k, which leaves it in every lane\)$"),
    "no broadcast from lane 0": ("    total = __shfl_sync(0xffffffff, total, 0);         // lane 0's to every lane\n",
                                 "", "test_block_sum_gives_every_thread_the_sum_of_its_block", {"block": 128},
                                 r"thread 0 has it: .*with warp shuffles, __shfl_down_sync leaves a warp's sum in its "
                                 r"lane 0 only: pass it on, __shfl_sync\(0xffffffff, v, 0\)"),
    "half a warp's mask": ("__shfl_xor_sync(0xffffffff, v, k)", "__shfl_xor_sync(0xffff, v, k)",
                           "test_block_max_gives_every_thread_the_max_of_its_block", {"block": 32},
                           r"^block_maxes: in block 2, thread 31 \(lane 31 of warp 0\) calls __shfl_xor_sync\(mask "
                           r"0x0000ffff\), whose mask does not name its own lane 31"),
    "a warp's lanes past the block's warps read": ("warp_sum(lane < warps ? s[lane] : (T)0)", "warp_sum(s[lane])",
                                                   "test_block_sum_gives_every_thread_the_sum_of_its_block",
                                                   {"block": 128},
                                                   r"got \S*e\+3\d+, .*: some thread read shared memory that no "
                                                   r"thread wrote this launch .*: with warp shuffles, lanes past the "
                                                   r"number of warps reading s\[lane\] in the second reduction"),
    # a warp operation orders its own warp's lanes only: where the warps meet, a __syncthreads() (a race without it)
    "__syncwarp() for block_sum's first __syncthreads()": (
        "s[warp] = total;\n    __syncthreads();", "s[warp] = total;\n    __syncwarp();",
        "test_block_sum_gives_every_thread_the_sum_of_its_block", {"block": 128}, WARP_RACE.format("block_sums")),
    "__syncwarp() for block_max's first __syncthreads()": (
        "s[warp] = m;\n    __syncthreads();", "s[warp] = m;\n    __syncwarp();",
        "test_block_max_gives_every_thread_the_max_of_its_block", {"block": 256}, WARP_RACE.format("block_maxes")),
    "no __syncthreads() after the warps' sums are read": (
        SUMS_READ, "", "test_block_sum_gives_every_thread_the_sum_of_its_block", {"block": 128},
        WARP_RACE.format("block_sums")),
    "no __syncthreads() after the warps' sums are read, in layer norm": (
        SUMS_READ, "", "test_layer_norm_forward_is_the_formula", {"shape": (2, 3, 300), "affine": "gamma-beta"},
        WARP_RACE.format("layer_norm_forward")),
}


def test_a7s_hints_tell_shuffles_from_a_tree_by_the_emulations_warp_kernels():
    """A7's hints (``_shuffles``) read ``RawModule.warp_kernels``: a tree's block_sum calls no warp operation, the
    shuffles' does, and kernels not the emulation's (a ``cupy.RawModule`` has no ``warp_kernels``) cannot tell: None,
    whose hints give both."""
    graded = a7_graded_tests()
    tree, shuffles = (emulated_kernels(source, dtypes=("float64",)) for source in (K.SOURCE, a7_warp_shuffle_source()))
    assert graded._shuffles(tree, "float64", "block_sums") is False
    assert graded._shuffles(shuffles, "float64", "block_sums") is True
    assert graded._shuffles(types.SimpleNamespace(modules={"float64": object()}), "float64", "block_sums") is None


@pytest.mark.parametrize("mistake", list(A7_WARP_MISTAKES))
def test_a7s_graded_tests_fail_a_warp_shuffle_mistake_and_say_what_it_likely_is(mistake, rng):
    old, new, test, args, message = A7_WARP_MISTAKES[mistake]
    source = a7_warp_shuffle_source()
    assert source.count(old) == 1, f"{mistake}: not once in the warp-shuffle source: {old!r}"
    kernels = emulated_kernels(source.replace(old, new), dtypes=("float64",))
    with pytest.raises(AssertionError, match=message):
        getattr(a7_graded_tests(), test)(emulated_cuda=kernels, dtype="float64", rng=rng, **args)


# ------------------------------------------------------------------ on a GPU
def _cupy():
    if "cupy" not in mt.backend.available():
        pytest.skip("needs CuPy and a GPU")
    import cupy

    return cupy


def _gpu_agree(run, dtype: str, scales=None) -> None:
    """``run()`` on the CuPy backend gives the same arrays with the real kernels as with the formulas.

    The error is relative to the array, or to ``scales[i]`` where given: the size of the terms whose
    difference the array is (layer norm's gradient on rows of one entry is exactly 0 by the formula,
    a difference of terms of size |g| / sqrt(eps) that the kernel's fused multiply-adds round differently).
    """
    be = mt.backend.get("cupy")
    previous = be.kernels
    try:
        be.kernels = K.CudaKernels(_cupy())
        with_kernels = run()
        be.kernels = None
        formulas = run()
    finally:
        be.kernels = previous
    scales = scales or [None] * len(formulas)
    for k, f, scale in zip(with_kernels, formulas, scales, strict=True):
        size = max(np.linalg.norm(np.asarray(f, dtype=np.float64)), scale or 0.0, 1e-300)
        assert np.linalg.norm(np.asarray(k, dtype=np.float64) - f) / size < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("shape", SHAPES + [(8, 1024)], ids=str)
def test_gpu_kernels_match_the_formulas(shape, dtype, rng):
    _cupy()
    x = rng.normal(scale=3.0, size=shape).astype(dtype)
    grad = rng.normal(size=shape).astype(dtype)
    gamma, beta = rng.normal(size=shape[-1]).astype(dtype), rng.normal(size=shape[-1]).astype(dtype)

    def run():
        with mt.backend.use("cupy"):
            t = mt.tensor(x, requires_grad=True)
            y = Softmax.apply(t, axis=-1)
            y.backward(mt.tensor(grad))
            u = mt.tensor(x, requires_grad=True)
            g, b = mt.tensor(gamma, requires_grad=True), mt.tensor(beta, requires_grad=True)
            z = LayerNorm.apply(u, g, b, eps=1e-5)
            z.backward(mt.tensor(grad))
            w = mt.tensor(x, requires_grad=True)
            h = F.gelu(w)
            h.backward(mt.tensor(grad))
            v = mt.tensor(x, requires_grad=True)
            loss = F.binary_cross_entropy_with_logits(v, mt.tensor((grad > 0).astype(dtype)))
            loss.backward()
            return [a.numpy() for a in (y, t.grad, z, u.grad, g.grad, b.grad, h, w.grad, loss, v.grad)]

    # layer norm's gradient subtracts terms of size |gamma g| / sqrt(sigma^2 + eps), up to 1/sqrt(eps)
    scale = float(np.linalg.norm(grad * gamma)) / np.sqrt(1e-5)
    _gpu_agree(run, dtype, scales=[None, None, None, scale, None, None, None, None, None, None])


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("shape", [(1, 1), (40, 33), (2, 70, 5), (3200, 512), (20000, 3)], ids=str)
def test_gpu_column_sums_match_numpys(shape, dtype, rng):
    cupy = _cupy()
    g, h = rng.normal(loc=0.5, size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)
    sum_g, sum_gh = K.CudaKernels(cupy).column_sums(cupy.asarray(g), cupy.asarray(h))
    rows = tuple(range(len(shape) - 1))
    assert sum_g.shape == sum_gh.shape == (shape[-1],) and sum_g.dtype == np.dtype(dtype)
    assert rel_err(sum_g.get(), g.sum(axis=rows, dtype=np.float64)) < TOLERANCE[dtype]
    assert rel_err(sum_gh.get(), (g.astype(np.float64) * h).sum(axis=rows)) < TOLERANCE[dtype]
    # and a projection's bias gradient, through them
    x, W, b = rng.normal(size=(4, 6, 8)).astype(dtype), rng.normal(size=(8, 5)).astype(dtype), np.zeros(5, dtype)

    def run():
        with mt.backend.use("cupy"):
            leaves = [mt.tensor(a, requires_grad=True) for a in (x, W, b)]
            y = F.linear(*leaves)
            (y * y).sum().backward()
            return [t.grad.numpy() for t in leaves]

    _gpu_agree(run, dtype)


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("mask", list(ATTENTION_MASKS))
def test_gpu_attention_matches_its_composition(mask, dtype, rng):
    _cupy()
    Q, K_, V = (rng.normal(size=(2, 3, 4, 64)).astype(dtype) for _ in range(3))
    allowed = ATTENTION_MASKS[mask](4)

    def run():
        with mt.backend.use("cupy"):
            leaves = [mt.tensor(a, requires_grad=True) for a in (Q, K_, V)]
            m = None if allowed is None else mt.tensor(allowed)
            out, weights = F.scaled_dot_product_attention(*leaves, mask=m)
            (out * out).sum().backward()
            return [out.numpy(), weights.numpy()] + [t.grad.numpy() for t in leaves]

    _gpu_agree(run, dtype)


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
def test_gpu_scatter_add_is_numpys_add_at_to_the_bit_at_every_run(dtype, rng, monkeypatch):
    cupy = _cupy()
    ids = rng.integers(0, 50, 3200)
    ids[:1000] = 0  # a long run, like padding
    values = rng.normal(scale=10.0, size=(3200, 64)).astype(dtype)
    expected = np.zeros((60, 64), dtype=dtype)
    np.add.at(expected, ids, values)
    kernels = K.CudaKernels(cupy)
    for chain_max in (K.CHAIN_MAX, 100):  # the ids chained, then sorted
        monkeypatch.setattr(K, "CHAIN_MAX", chain_max)
        for _ in range(3):  # CuPy's atomic scatter-add differs from run to run in the last bits; this must not
            out = cupy.zeros((60, 64), dtype=dtype)
            kernels.scatter_add(out, cupy.asarray(ids), cupy.asarray(values))
            np.testing.assert_array_equal(cupy.asnumpy(out), expected)


def test_gpu_counter_uniforms_are_the_generators_to_the_bit():
    cupy = _cupy()
    fast = CounterRNG(cupy, 3, kernels=K.CudaKernels(cupy))
    plain = CounterRNG(cupy, 3)
    for n in (1, 1000, 1_000_003):
        assert bool(cupy.all(fast.random((n,)) == plain.random((n,))))


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
def test_gpu_adam_matches_the_formula(dtype, rng):
    _cupy()
    values = [rng.normal(size=shape).astype(dtype) for shape in ((64, 32), (32,), (1000, 3))]
    grads = [[rng.normal(size=v.shape).astype(dtype) for v in values] for _ in range(3)]

    def run():
        with mt.backend.use("cupy"):
            params = [mt.tensor(v, requires_grad=True) for v in values]
            opt = optim.AdamW(params, lr=0.05, weight_decay=0.1)
            for step in grads:
                for p, g in zip(params, step):
                    p.grad = mt.tensor(g)
                opt.step()
            return [p.numpy() for p in params]

    _gpu_agree(run, dtype)


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("case", list(PRODUCTS))
def test_gpu_matmul_is_cupys_product(case, dtype, rng):
    cupy = _cupy()
    a, b = PRODUCTS[case][0](lambda shape: cupy.asarray(rng.normal(size=shape).astype(dtype)))
    c = K.CudaKernels(cupy).matmul(a, b)
    assert c.dtype == a.dtype and c.shape == cupy.matmul(a, b).shape
    assert rel_err(cupy.asnumpy(c), cupy.asnumpy(cupy.matmul(a, b))) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
def test_gpu_compiles_the_a7_copy_and_a_stub_stops_its_kernel(dtype, tmp_path):
    """CuPy's compiler (NVRTC, not nvcc) takes A7's student copy, stubs and all; a launch that reaches a stub
    stops with a CUDA error (in a process of its own: the error ends that process's use of the GPU)."""
    cupy = _cupy()
    source = a7_student_source().replace("{T}", K.C_TYPES[dtype])
    cupy.RawModule(code=source).get_function("softmax_forward")  # compiles, or raises with NVRTC's log
    script = tmp_path / "stub.py"
    script.write_text(f"""import cupy
source = {source!r}
x = cupy.ones((2, 8), dtype={dtype!r})
cupy.RawModule(code=source).get_function("softmax_forward")((2,), (32,), (x, cupy.empty_like(x), cupy.int64(8)),
                                                            shared_mem=2 * 32 * x.itemsize)
cupy.cuda.runtime.deviceSynchronize()
""", encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, encoding="utf-8", timeout=120)
    assert run.returncode != 0 and "CUDA" in run.stderr.upper(), run.stdout[-2000:] + run.stderr[-2000:]


@pytest.mark.parametrize("dtype", list(K.C_TYPES))
@pytest.mark.parametrize("block", [32, 256, 1024])
def test_gpu_runs_the_warp_shuffle_reductions_as_the_emulation_does(block, dtype, rng):
    """:data:`A7_WARP_SHUFFLES` on a GPU (NVRTC, CuPy's launch) and on the emulation: every thread gets its block's
    sum and max, the same to the bit (each adds in the same order on both)."""
    cupy = _cupy()
    source = (a7_warp_shuffle_source() + REDUCTIONS).replace("{T}", K.C_TYPES[dtype])
    v, w = (rng.normal(scale=3.0, size=4 * block).astype(dtype) for _ in range(2))
    gpu, cpu = cupy.RawModule(code=source), emu.RawModule(source) if not emu.missing() else None
    for name, reduce in (("block_sums", np.sum), ("block_maxes", np.max)):
        out = [cupy.empty_like(cupy.asarray(v)) for _ in range(2)]
        gpu.get_function(name)((4,), (block,), (cupy.asarray(v), cupy.asarray(w), *out),
                               shared_mem=block * v.itemsize)
        on_gpu = [cupy.asnumpy(o) for o in out]
        for got, x in zip(on_gpu, (v, w), strict=True):
            expected = np.repeat(reduce(x.reshape(4, block).astype(np.float64), axis=1), block)
            assert np.allclose(got, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * block), (name, dtype)
        if cpu is not None:
            emulated = [emu.empty(v.shape, v.dtype) for _ in range(2)]
            cpu.get_function(name)((4,), (block,), (v, w, *emulated), shared_mem=block * v.itemsize)
            for got, e in zip(on_gpu, emulated, strict=True):
                assert np.array_equal(got, e), (name, dtype, "the GPU and the emulation differ")
