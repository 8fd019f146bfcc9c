"""``minitransformer.cuda_emulator``: CUDA kernels of one's own run on the CPU, and what the emulation refuses.

Each kernel here is small and says what it shows; the library's own kernels run on the emulator in
``tests/test_kernels.py``. Without g++ (or on Windows) these tests skip, but for the message that says so.
"""

from __future__ import annotations

import platform
import re
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from minitransformer import cuda_emulator as emu

pytestmark = pytest.mark.single_backend  # NumPy arrays on the CPU, whatever the backend

SOURCE = r"""
// one thread per entry, a grid-stride loop: y = a x
extern "C" __global__ void scale(const float* x, float* y, float a, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = a * x[i];
}

// thread 0 adds the block's values up in order (not the tree: that is A7's exercise, and every copy holds this file)
__device__ double block_sum(double v, double* s) {
    s[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x == 0)
        for (unsigned int k = 1; k < blockDim.x; ++k) s[0] += s[k];
    __syncthreads();
    double total = s[0];
    __syncthreads();
    return total;
}

// one block per row of n entries: out[r] = the row's sum
extern "C" __global__ void row_sums(const double* x, double* out, long long n) {
    extern __shared__ double s[];
    double v = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) v += x[blockIdx.x * n + i];
    v = block_sum(v, s);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}

// the tree without its barriers: a race
extern "C" __global__ void racy_sum(const double* x, double* out) {
    extern __shared__ double s[];
    s[threadIdx.x] = x[threadIdx.x];
    for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1)
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
    if (threadIdx.x == 0) out[0] = s[0];
}

// a barrier only some threads reach
extern "C" __global__ void early_return(double* out) {
    if (threadIdx.x >= 2) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

// where each thread of a 2-D block in a 2-D grid is: out[row][column] = 1000 blockIdx.y + 100 blockIdx.x + ...
extern "C" __global__ void where(int* out, int width) {
    int column = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y * blockDim.y + threadIdx.y;
    out[row * width + column] = 1000 * blockIdx.y + 100 * blockIdx.x + 10 * threadIdx.y + threadIdx.x;
}

// out[i] = x[i + shift] for i < n, and -1 for the next `extra`: a shift reads past x, an extra writes past out
extern "C" __global__ void shifted(const float* x, float* out, long long n, long long shift, long long extra) {
    long long i = threadIdx.x;
    if (i < n) out[i] = x[i + shift];
    else if (i < n + extra) out[i] = -1;
}

// a fixed __shared__ array, an atomic, and a stub
extern "C" __global__ void histogram(const int* x, int* counts, long long n) {
    __shared__ int local[4];
    if (threadIdx.x < 4) local[threadIdx.x] = 0;
    __syncthreads();
    for (long long i = threadIdx.x; i < n; i += blockDim.x) atomicAdd(&local[x[i]], 1);
    __syncthreads();
    if (threadIdx.x < 4) counts[threadIdx.x] = local[threadIdx.x];
}
extern "C" __global__ void unwritten(float* y) {
    not_implemented("E1: unwritten: y[i] = 2 x[i]");
}
// a fixed __shared__ array written at `at` by thread 0 (past its end from 128; before its start below 0), then by
// each thread at its own index (past the end in a block of more than 128); two declarators on one line are plain,
// unguarded arrays
__shared__ double block_total;
extern "C" __global__ void static_past(double* out, int at) {
    __shared__ float buf[128];
    __shared__ int a[2], b[2];
    if (threadIdx.x == 0) buf[at] = 2.0f, a[0] = b[0] = 1, block_total = 3;
    __syncthreads();
    buf[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = threadIdx.x < 128 ? buf[threadIdx.x] + a[0] + b[0] + block_total : 0;
}
extern "C" __global__ void shared_past(double* out) {
    extern __shared__ double s[];
    s[threadIdx.x + 1] = 1.0;  // one past the block's entries
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}
"""


@pytest.fixture(scope="module")
def module():
    if reason := emu.missing():
        pytest.skip(reason)
    return emu.RawModule(code=SOURCE, name="tests/test_cuda_emulator.py")


def test_an_elementwise_kernel_strides_over_a_grid_smaller_than_the_array(module):
    x = np.arange(1000, dtype=np.float32)
    y = emu.empty(1000, np.float32)
    module.get_function("scale")((3,), (32,), (x, y, np.float32(2.5), 1000))  # 96 threads; a Python int for n
    np.testing.assert_array_equal(y, 2.5 * x)
    assert module.warnings == ""  # g++ -Wall finds nothing to say
    assert module.kernels == ("scale", "row_sums", "racy_sum", "early_return", "where", "shifted", "histogram",
                              "unwritten", "static_past", "shared_past")


def test_a_kernel_named_like_a_c_library_function_runs_itself():
    """``times`` is also the C library's (the process times): the launcher must call the kernel, not libc's."""
    if reason := emu.missing():
        pytest.skip(reason)
    source = """extern "C" __global__ void times(float* x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 2 * x[i];
}"""
    x = np.arange(4, dtype=np.float32)
    emu.RawModule(code=source).get_function("times")((1,), (4,), (x, np.int64(4)))
    np.testing.assert_array_equal(x, [0, 2, 4, 6])


@pytest.mark.parametrize("n, block", [(1, 32), (5, 8), (300, 64)])
def test_a_block_reduction_in_shared_memory_gives_each_rows_sum(module, n, block):
    x = np.random.default_rng(0).integers(-9, 9, size=(3, n)).astype(np.float64)  # whole numbers: any order exact
    out = emu.empty(3)
    module.get_function("row_sums")(3, block, (x, out, np.int64(n)), shared_mem=block * 8)
    np.testing.assert_array_equal(out, x.sum(axis=1))


def test_blocks_and_threads_in_two_axes_see_their_own_indices(module):
    out = emu.empty((4, 6), np.int32)  # a grid of 3 x 2 blocks of 2 x 2 threads
    module.get_function("where")((3, 2), (2, 2), (out, np.int32(6)))
    rows, columns = np.indices((4, 6))
    np.testing.assert_array_equal(out, 1000 * (rows // 2) + 100 * (columns // 2) + 10 * (rows % 2) + columns % 2)


def test_a_missing_barrier_is_a_race_that_names_the_argument_and_the_entry(module):
    x, out = np.arange(8.0), emu.empty(1)
    with pytest.raises(emu.LaunchError, match=r"^racy_sum: race: a barrier is missing\? .* argument 1 \(double\* out"
                                              r"\) differs at 1 of 1 entries; the first, \[0\], is .* with blocks and "
                                              r"threads run first to last, .* last to first$"):
        module.get_function("racy_sum")(1, 8, (x, out), shared_mem=64)
    with pytest.raises(emu.LaunchError) as race:  # (a source with no atomics: no word of them)
        module.get_function("racy_sum")(1, 8, (x, out), shared_mem=64)
    assert "atomic" not in str(race.value)
    assert np.isnan(out[0]) or out[0] > 1e300  # the user's array is left as it was (the guard bytes of empty)


ATOMIC_TOTAL = r"""
// every thread adds its entry into one total, atomically: correct on a GPU, but a float sum rounds by its order
extern "C" __global__ void atomic_total(const float* x, float* total) {
    atomicAdd(total, x[threadIdx.x]);
}
"""


def test_a_float_atomic_sums_order_is_named_where_the_two_runs_differ():
    if reason := emu.missing():
        pytest.skip(reason)
    atomic_total = emu.RawModule(code=ATOMIC_TOTAL).get_function("atomic_total")
    total = np.zeros(1, np.float32)
    atomic_total(1, 8, (np.arange(8, dtype=np.float32), total))  # whole numbers: exact in any order
    assert total[0] == 28
    x = np.random.default_rng(1).normal(size=8).astype(np.float32)  # the two orders round differently
    with pytest.raises(emu.LaunchError, match=r"^atomic_total: race: .* last to first\. Or this kernel's atomicAdd "
                                              r"or atomicSub on floats: .* sum in a fixed order instead"):
        atomic_total(1, 8, (x, np.zeros(1, np.float32)))


def test_a_barrier_that_some_threads_never_reach_names_the_block_and_two_threads(module):
    with pytest.raises(emu.LaunchError, match=r"^early_return: some threads of a block reached a __syncthreads\(\) "
                                              r"that others never reach .* In block 0, thread 1 waits at one that "
                                              r"thread 7 never reaches \(it ended\)$"):
        module.get_function("early_return")(1, 8, (emu.empty(8),))  # the last thread runs first: it returns
    with pytest.raises(emu.LaunchError, match=r"In block 1, thread 1 waits at one that thread 3 never reaches"):
        module.get_function("early_return")(2, 4, (emu.empty(8),))


def test_reading_past_an_array_reads_the_guard_and_writing_past_it_is_caught(module):
    x, out = np.arange(4, dtype=np.float32), emu.empty(4, np.float32)
    shifted = module.get_function("shifted")
    shifted(1, 32, (x, out, np.int64(4), np.int64(1), np.int64(0)))  # out[3] = x[4]: past x's end
    np.testing.assert_array_equal(out[:3], x[1:])
    assert out[3] == emu.empty(1, np.float32)[0] > 3e38  # the guard: a huge number, not a plausible one
    with pytest.raises(emu.LaunchError, match=r"^shifted: wrote past the end of an array \(argument 1 \(float\* out\), "
                                              r"4 entries of float32\): a loop.s bound one too far \(i <= n"):
        shifted(1, 32, (x, out, np.int64(4), np.int64(0), np.int64(2)))
    with pytest.raises(emu.LaunchError, match=r"^shared_past: wrote past the shared memory it asked \(0 bytes"):
        module.get_function("shared_past")(1, 4, (emu.empty(4),))  # CuPy's default: no dynamic shared memory
    with pytest.raises(emu.LaunchError, match=r"wrote past the shared memory it asked \(32 bytes"):
        module.get_function("shared_past")(1, 4, (emu.empty(4),), shared_mem=32)


def test_writing_past_a_fixed_shared_array_is_caught_naming_it_and_the_next_launch_runs(module):
    # (a write past it used to land on the emulation's own memory: a crash, or a hang, in some later launch)
    static_past, out = module.get_function("static_past"), emu.empty(160)
    static_past(2, 128, (out, np.int32(5)))
    np.testing.assert_array_equal(out[:128], 6.0)
    for at, threads in ((200, 128), (128, 32), (12000, 32), (0, 160)):
        with pytest.raises(emu.LaunchError, match=r"^static_past: wrote past the end of its __shared__ array float "
                                                  r"buf\[128\] \(in block [01]\): an index past its size\?"):
            static_past(2, threads, (out, np.int32(at)))
    with pytest.raises(emu.LaunchError, match=r"^static_past: wrote before the start of its __shared__ array float "
                                              r"buf\[128\] \(in block 1\): a negative index\?"):
        static_past(2, 32, (out, np.int32(-1)))
    static_past(1, 128, (out, np.int32(127)))  # the launches after run as before
    np.testing.assert_array_equal(out[:128], 6.0)


def test_a_fixed_shared_array_and_atomics_work_as_on_a_gpu(module):
    x = np.array([0, 1, 1, 3, 3, 3, 2, 0, 3], dtype=np.int32)
    counts = emu.empty(4, np.int32)
    module.get_function("histogram")(1, 4, (x, counts, np.int64(9)))
    np.testing.assert_array_equal(counts, np.bincount(x, minlength=4))


CUDA_MATH = r"""
// what CUDA has and C lacks: max and min of mixed types, rsqrt, the intrinsics, FLT_MAX, an int to atomicAdd a float
extern "C" __global__ void cuda_math(const float* x, const double* d, float* y, double* z, int* i) {
    __shared__ float count;
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    atomicAdd(&count, 1);
    __syncthreads();
    float v = x[0];
    y[0] = max(v, 0);
    y[1] = min(v, 1.5);  // a float and a double: a double
    y[2] = rsqrtf(v) + __expf(v) + __logf(v) + __powf(v, 2.0f) + __fdividef(v, 2.0f) + __frcp_rn(v);
    y[3] = fminf(v, FLT_MAX) + fmaxf(v, -INFINITY) + __saturatef(v) + count;
    z[0] = max(d[0], 1) + rsqrt(d[0]) + __drcp_rn(d[0]) + DBL_MAX / 1e308;
    i[0] = max(3, 7u) + min(-1, 2) + __float_as_int(1.0f);
}

// a __shared__ array and number of a fixed size, in a __device__ function: the block's, as on a GPU
__device__ double block_mean(double v, bool read_unwritten) {
    __shared__ double part[64];
    __shared__ double mean;
    part[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        mean = 0;
        for (unsigned int t = 0; t < blockDim.x; ++t) mean += part[t];
        mean /= blockDim.x;
        if (read_unwritten) mean = part[blockDim.x];  // past what the block wrote: the guard bytes
    }
    __syncthreads();
    double m = mean;
    __syncthreads();
    return m;
}
extern "C" __global__ void row_means(const double* x, double* out, int read_unwritten) {
    out[blockIdx.x * blockDim.x + threadIdx.x] = block_mean(x[blockIdx.x * blockDim.x + threadIdx.x], read_unwritten);
}

// a sum never set before it is added to (T total;): g++ warns, and a launch's error says so
extern "C" __global__ void unset(const double* x, double* out) {
    extern __shared__ double s[];
    double total;
    total += x[threadIdx.x];
    s[threadIdx.x] = total;
    if (threadIdx.x == 0) out[0] = s[blockDim.x - 1];
}
"""


def test_cuda_math_functions_and_constants_compute_as_on_a_gpu():
    if reason := emu.missing():
        pytest.skip(reason)
    kernel = emu.RawModule(CUDA_MATH, name="math.cu").get_function("cuda_math")
    x, d = np.array([0.25], np.float32), np.array([4.0])
    y, z, i = emu.empty(4, np.float32), emu.empty(1), emu.empty(1, np.int32)
    kernel(1, 3, (x, d, y, z, i))
    v = np.float32(0.25)
    np.testing.assert_allclose(y, [0.25, 0.25, 1 / np.sqrt(v) + np.exp(v) + np.log(v) + v**2 + v / 2 + 1 / v,
                                   0.25 + 0.25 + 0.25 + 3], rtol=1e-6)
    np.testing.assert_allclose(z, [4 + 0.5 + 0.25 + np.finfo(np.float64).max / 1e308], rtol=1e-15)
    assert i[0] == 7 - 1 + 0x3F800000


SUBNORMALS = r"""
// y = a x, alone or after a barrier (then each thread a fiber); and a copy, which computes nothing
extern "C" __global__ void times(const float* a, const float* x, float* y) {
    y[threadIdx.x] = a[threadIdx.x] * x[threadIdx.x];
}
extern "C" __global__ void times_after_a_barrier(const float* a, const float* x, float* y) {
    __syncthreads();
    y[threadIdx.x] = a[threadIdx.x] * x[threadIdx.x];
}
extern "C" __global__ void copy(const float* x, float* y) { y[threadIdx.x] = x[threadIdx.x]; }
extern "C" __global__ void times_in_double(const double* a, const double* x, double* y) {
    y[threadIdx.x] = a[threadIdx.x] * x[threadIdx.x];
}
"""


@pytest.mark.parametrize("kernel", ["times", "times_after_a_barrier"])
def test_a_float_kernel_flushes_subnormals_to_zero_as_cupys_ftz_does_and_leaves_doubles_and_numpy_as_they_are(kernel):
    """CuPy compiles its kernels with -ftz=true: a float subnormal (below 1.2e-38) that a kernel computes (1e-30 x
    1e-10) or reads as an operand (1e-40 x 1e10) is a zero of its sign; a copy moves the bits as they are. Doubles
    keep theirs (1e-300 x 1e-10), and so does NumPy after the launch."""
    if reason := emu.missing():
        pytest.skip(reason)
    module = emu.RawModule(SUBNORMALS, name="subnormals.cu")
    a, x = np.array([1e-10, 1e-10, 1e10, 1e-10], np.float32), np.array([1e-30, -1e-30, 1e-40, 1.0], np.float32)
    y = emu.empty(4, np.float32)
    module.get_function(kernel)(1, 4, (a, x, y))
    np.testing.assert_array_equal(y, np.array([0.0, -0.0, 0.0, 1e-10], np.float32))
    assert np.signbit(y).tolist() == [False, True, False, False]
    copied = emu.empty(4, np.float32)
    module.get_function("copy")(1, 4, (x, copied))
    np.testing.assert_array_equal(copied, x)
    y64 = emu.empty(4)
    module.get_function("times_in_double")(1, 4, (a.astype(np.float64), np.array([1e-300, -1e-300, 1e-310, 1.0]), y64))
    np.testing.assert_allclose(y64, [1e-310, -1e-310, 1e-300, 1e-10], rtol=1e-6)
    assert np.float32(1e-30) * np.float32(1e-10) > 0  # NumPy's own arithmetic, after the launch


def test_a_fixed_shared_array_in_a_device_function_is_the_blocks_and_starts_unwritten():
    if reason := emu.missing():
        pytest.skip(reason)
    means = emu.RawModule(CUDA_MATH, name="math.cu").get_function("row_means")
    x = np.arange(12.0).reshape(3, 4)
    out = emu.empty((3, 4))
    means(3, 4, (x, out, np.int32(0)))
    np.testing.assert_array_equal(out, np.repeat(x.mean(axis=1, keepdims=True), 4, axis=1))  # each block its own
    means(3, 4, (x, out, np.int32(1)))
    assert (out > 1e306).all()  # each block's __shared__ memory starts as the guard bytes, not the last block's


def test_a_variable_never_set_is_named_by_g_plus_plus_in_the_launchs_error():
    if reason := emu.missing():
        pytest.skip(reason)
    module = emu.RawModule(CUDA_MATH, name="math.cu", first_line=100)
    assert re.search(r"^math.cu:142:\d+: warning: .total. is used uninitialized", module.warnings)
    with pytest.raises(emu.LaunchError, match=r"^unset: wrote past the end .*\(g\+\+ warned: math.cu:142:.*total"):
        module.get_function("unset")(1, 4, (np.arange(4.0), emu.empty(0)), shared_mem=32)


@pytest.mark.parametrize("line, message", [
    ("y[0] = __shfl_down(y[0], 1);",
     r"^mine.cu: does not compile .*:\nmine.cu:2:\d+: not emulated: __shfl_down \(a warp shuffle without a mask, "
     r"gone since CUDA 9 on Volta and later: use its _sync form, __shfl_down_sync\(0xffffffff, v, delta\)\)\n"),
    ("y[0] = __activemask();", r"\nmine.cu:2:\d+: not emulated: __activemask \(the lanes of a warp that run "
                               r"together now: here a warp's lanes run one at a time"),
    ("namespace cg = cooperative_groups;", r"\nmine.cu:2:\d+: not emulated: cooperative_groups \(cooperative groups: "
                                           r"use __syncthreads\(\) and the warp operations"),
    ("y[0] = __sqrtf(y[0]);",  # (glibc declares it: it compiles, and the linker does not find it)
     r"\nnot emulated: __sqrtf \(no function of that name here; a CUDA intrinsic the emulation lacks\?\)"),
])
def test_what_is_not_emulated_is_refused_naming_it_and_what_to_use(line, message):
    if reason := emu.missing():
        pytest.skip(reason)
    with pytest.raises(emu.CompileError, match=message):
        emu.RawModule(f'extern "C" __global__ void f(float* y) {{\n    {line}\n}}\n', name="mine.cu")


# ------------------------------------------------------------------ warp-level operations
WARPS = r"""
// the block's linear thread index (x fastest, then y, z): lanes 32w .. 32w + 31 are warp w
__device__ int linear() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

// each lane the mask names takes a shuffle of x: kind 0 __shfl_sync from lane arg - lane (negative and past the
// width too), 1 up, 2 down, 3 xor by arg; the other lanes return
template <class T> __device__ void shuffle(const T* x, T* y, int kind, int arg, int width, unsigned mask) {
    int t = linear(), lane = t % 32;
    if (!(mask >> lane & 1)) return;
    y[t] = kind == 0 ? __shfl_sync(mask, x[t], arg - lane, width) : kind == 1 ? __shfl_up_sync(mask, x[t], arg, width)
         : kind == 2 ? __shfl_down_sync(mask, x[t], arg, width) : __shfl_xor_sync(mask, x[t], arg, width);
}
extern "C" __global__ void shuffle_i4(const int* x, int* y, int k, int a, int w, unsigned m) {
    shuffle(x, y, k, a, w, m);
}
extern "C" __global__ void shuffle_u4(const unsigned* x, unsigned* y, int k, int a, int w, unsigned m) {
    shuffle(x, y, k, a, w, m);
}
extern "C" __global__ void shuffle_i8(const long long* x, long long* y, int k, int a, int w, unsigned m) {
    shuffle(x, y, k, a, w, m);
}
extern "C" __global__ void shuffle_u8(const unsigned long long* x, unsigned long long* y, int k, int a, int w,
                                      unsigned m) {
    shuffle(x, y, k, a, w, m);
}
extern "C" __global__ void shuffle_f4(const float* x, float* y, int k, int a, int w, unsigned m) {
    shuffle(x, y, k, a, w, m);
}
extern "C" __global__ void shuffle_f8(const double* x, double* y, int k, int a, int w, unsigned m) {
    shuffle(x, y, k, a, w, m);
}

// the votes and the reductions of the lanes the mask names, of threads below `alive` (the others have returned)
extern "C" __global__ void votes(const int* x, long long* out, unsigned mask, int alive) {
    int t = linear();
    if (t >= alive || !(mask >> t % 32 & 1)) return;
    int v = x[t];
    unsigned u = (unsigned)v;
    long long* o = out + 12 * t;
    o[0] = __ballot_sync(mask, v > 0), o[1] = __any_sync(mask, v > 90), o[2] = __all_sync(mask, v > -90);
    o[3] = __reduce_add_sync(mask, v), o[4] = __reduce_min_sync(mask, v), o[5] = __reduce_max_sync(mask, v);
    o[6] = __reduce_add_sync(mask, u), o[7] = __reduce_min_sync(mask, u), o[8] = __reduce_max_sync(mask, u);
    o[9] = __reduce_and_sync(mask, u), o[10] = __reduce_or_sync(mask, u), o[11] = __reduce_xor_sync(mask, u);
}

// a block's sum and max as fast CUDA code writes them: each warp's by shuffles, then warp 0 takes the warps' results
// from shared memory (the other warps call no shuffle there)
__device__ double warp_sum(double v) {
    for (int k = 16; k > 0; k >>= 1) v += __shfl_down_sync(0xffffffff, v, k);
    return v;  // in lane 0
}
__device__ float warp_max(float v) {  // down to lane 0, then from it (the xor butterfly is notebook 12's exercise)
    for (int k = 16; k > 0; k >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffff, v, k));
    return __shfl_sync(0xffffffff, v, 0);  // in every lane
}
extern "C" __global__ void warp_reductions(const double* x, const float* z, double* sums, float* maxes) {
    __shared__ double partial[32];
    __shared__ float partial_max[32];
    int t = linear(), lane = t % 32, warp = t / 32, n = blockDim.x * blockDim.y * blockDim.z, warps = n / 32;
    double v = warp_sum(x[blockIdx.x * n + t]);
    float m = warp_max(z[blockIdx.x * n + t]);
    if (lane == 0) partial[warp] = v, partial_max[warp] = m;
    __syncthreads();
    if (warp == 0) {
        v = warp_sum(lane < warps ? partial[lane] : 0.0);
        m = warp_max(lane < warps ? partial_max[lane] : -INFINITY);
    }
    if (t == 0) sums[blockIdx.x] = v, maxes[blockIdx.x] = m;
}

// warp 0 alone shuffles: in a block of 64, the last thread (run first, last to first) meets neither a barrier nor a
// warp operation, yet the others must run as fibers
extern "C" __global__ void first_warp_only(const int* x, int* y) {
    if (threadIdx.x < 32) y[threadIdx.x] = __shfl_down_sync(0xffffffff, x[threadIdx.x], 1);
}

// warp operations between __syncthreads(): half a warp with a mask of its own, then the whole warp, a __syncwarp()
extern "C" __global__ void interleaved(const int* x, int* out) {
    extern __shared__ int s[];
    int t = threadIdx.x, lane = t % 32, warp = t / 32;
    int v = x[t];
    if (lane >= 16) v += __shfl_down_sync(0xffff0000, v, 8, 16);
    v = __shfl_xor_sync(0xffffffff, v, 1);
    s[t] = v;
    __syncthreads();
    v = s[blockDim.x - 1 - t];  // another warp's
    __syncwarp();
    v += __shfl_sync(0xffffffff, v, warp % 32);
    __syncthreads();
    out[t] = v;
}

// a mask of its own for each half of a warp in round 0, the whole warp's in round 1: the upper half comes to round 0's
// shuffle while the lower half waits at round 1's, the same operation with another mask (right: it comes on after)
extern "C" __global__ void masks_by_round(const int* x, int* y) {
    int lane = threadIdx.x % 32, v = x[threadIdx.x];
    for (int round = 0; round < 2; ++round) {
        unsigned mask = round == 1 ? 0xffffffff : lane < 16 ? 0x0000ffff : 0xffff0000;
        v += __shfl_xor_sync(mask, v, 1);
    }
    y[threadIdx.x] = v;
}

// the tree of a warp in shared memory: with no barrier between its steps (the old "volatile" warp-synchronous code,
// wrong since Volta) a race; with a __syncwarp() between each read and write, right
extern "C" __global__ void warp_tree(const float* x, float* out, int synced) {
    extern __shared__ float tree[];  // (not s: nvcc refuses an extern __shared__ of interleaved's name, another type)
    tree[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    if (threadIdx.x < 32) {
        volatile float* v = tree;
        for (int k = 16; k > 0; k >>= 1) {
            float sum = v[threadIdx.x] + v[threadIdx.x + k];
            if (synced) __syncwarp();
            v[threadIdx.x] = sum;
            if (synced) __syncwarp();
        }
    }
    if (threadIdx.x == 0) out[0] = tree[0];
}

// a warp operation where a __syncthreads() belongs: it orders the lanes of its own warp that its mask names only, so
// each is a race (the emulation runs a block warp by warp: a warp operation is no barrier for the other warps)
__device__ float warp_sum_f(float v) {
    for (int k = 16; k > 0; k >>= 1) v += __shfl_down_sync(0xffffffff, v, k);
    return v;
}
extern "C" __global__ void syncwarp_for_syncthreads(const float* x, float* out) {
    __shared__ float s[32];
    int t = linear(), lane = t % 32, warp = t / 32, warps = blockDim.x * blockDim.y * blockDim.z / 32;
    float v = warp_sum_f(x[t]);
    if (lane == 0) s[warp] = v;
    __syncwarp();  // warp 0 reads the other warps' s[w]: a __syncthreads() belongs here
    v = warp_sum_f(lane < warps ? s[lane] : 0.0f);
    out[t] = __shfl_sync(0xffffffff, v, 0);
}
extern "C" __global__ void shuffle_for_syncthreads(const float* x, float* out) {
    __shared__ float s[32];
    unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    float v = x[threadIdx.x];
    if (lane == 0) s[warp] = v;
    v = __shfl_sync(0xffffffff, v, 0);  // no __syncthreads()
    out[threadIdx.x] = v + (lane < warps ? s[lane] : 0.0f);
}
extern "C" __global__ void half_a_warp_synced(const float* x, float* out) {
    __shared__ float s[32];
    unsigned lane = threadIdx.x % 32;
    s[lane] = x[lane];
    if (lane < 16) {
        __syncwarp(0xffff);  // lanes 16 to 31 wrote s[16..31] before or after it
        out[lane] = s[lane + 16];
    } else {
        out[lane] = 0;
    }
}

// what a GPU leaves undefined
extern "C" __global__ void not_named(float* y) { y[threadIdx.x] = __shfl_sync(0xffff, y[threadIdx.x], 0); }
extern "C" __global__ void bad_width(float* y) { y[threadIdx.x] = __shfl_sync(0xffffffff, y[threadIdx.x], 0, 12); }
extern "C" __global__ void half_then_barrier(float* y) {
    if (threadIdx.x < 16) y[threadIdx.x] = __shfl_down_sync(0xffffffff, y[threadIdx.x], 1);
    __syncthreads();
}
extern "C" __global__ void two_operations(float* y) {
    if (threadIdx.x < 16) y[threadIdx.x] = __shfl_down_sync(0xffffffff, y[threadIdx.x], 1);
    else y[threadIdx.x] = __ballot_sync(0xffffffff, 1);
}
extern "C" __global__ void two_masks(float* y) { __syncwarp(linear() == 0 ? 0xffff : 0xffffffff); }
extern "C" __global__ void reads_ended(float* y) {
    if (threadIdx.x >= 16) return;
    y[threadIdx.x] = __shfl_down_sync(0xffffffff, y[threadIdx.x], 8);
}
extern "C" __global__ void reads_past_the_block(float* y) {
    y[threadIdx.x] = __shfl_down_sync(0xffffffff, y[threadIdx.x], 8);
}
extern "C" __global__ void reads_unnamed(float* y) {
    if (threadIdx.x < 16) y[threadIdx.x] = __shfl_down_sync(0xffff, y[threadIdx.x], 8);
}
extern "C" __global__ void reads_skipped(float* y) {  // lanes 16 to 31 skip the call, named by its mask
    if (threadIdx.x < 16) y[threadIdx.x] = __shfl_sync(0xffffffff, y[threadIdx.x], threadIdx.x + 3);
}
extern "C" __global__ void mixed_masks(float* y) {  // lanes 16 to 31 meet among themselves, then end
    unsigned mask = threadIdx.x < 16 ? 0xffffffff : 0xffff0000;
    y[threadIdx.x] = __shfl_xor_sync(mask, y[threadIdx.x], 1);
}
extern "C" __global__ void mixed_sizes(float* y) {  // a double is two of a GPU's 32-bit shuffles, a float one
    if (threadIdx.x < 16) y[threadIdx.x] = (float)__shfl_xor_sync(0xffffffff, (double)y[threadIdx.x], 1);
    else y[threadIdx.x] = __shfl_xor_sync(0xffffffff, y[threadIdx.x], 1);
}
extern "C" __global__ void mixed_signs(float* y) {
    if (threadIdx.x % 2) y[threadIdx.x] = __reduce_min_sync(0xffffffff, (int)y[threadIdx.x]);
    else y[threadIdx.x] = __reduce_min_sync(0xffffffff, (unsigned)y[threadIdx.x]);
}
extern "C" __global__ void match_not_named(float* y) { y[threadIdx.x] = __match_any_sync(0xfffffffe, y[threadIdx.x]); }
extern "C" __global__ void match_then_barrier(float* y) {
    if (threadIdx.x < 16) y[threadIdx.x] = __match_any_sync(0xffffffff, y[threadIdx.x]);
    __syncthreads();
}
extern "C" __global__ void match_any_or_all(float* y) {
    int same;
    if (threadIdx.x < 16) y[threadIdx.x] = __match_any_sync(0xffffffff, y[threadIdx.x]);
    else y[threadIdx.x] = __match_all_sync(0xffffffff, y[threadIdx.x], &same);
}
extern "C" __global__ void match_sizes(float* y) {  // a double is PTX's match.sync.b64, a float its .b32
    int same;
    if (threadIdx.x < 16) y[threadIdx.x] = __match_all_sync(0xffffffff, (double)y[threadIdx.x], &same);
    else y[threadIdx.x] = __match_all_sync(0xffffffff, y[threadIdx.x], &same);
}

// each lane the mask names, of the threads below `alive` (the others have returned), matches its value among its
// warp's: any[t], the lanes whose value is its own; all[t] and pred[t], the lanes and 1 where all values are the same
template <class T> __device__ void match(const T* x, unsigned* any, unsigned* all, int* pred, unsigned mask,
                                         int alive) {
    int t = linear();
    if (t >= alive || !(mask >> t % 32 & 1)) return;
    any[t] = __match_any_sync(mask, x[t]);
    all[t] = __match_all_sync(mask, x[t], &pred[t]);
}
extern "C" __global__ void match_int(const int* x, unsigned* any, unsigned* all, int* pred, unsigned m, int a) {
    match(x, any, all, pred, m, a);
}
extern "C" __global__ void match_unsigned(const unsigned* x, unsigned* any, unsigned* all, int* pred, unsigned m,
                                          int a) {
    match(x, any, all, pred, m, a);
}
extern "C" __global__ void match_long(const long* x, unsigned* any, unsigned* all, int* pred, unsigned m, int a) {
    match(x, any, all, pred, m, a);
}
extern "C" __global__ void match_unsigned_long(const unsigned long* x, unsigned* any, unsigned* all, int* pred,
                                               unsigned m, int a) {
    match(x, any, all, pred, m, a);
}
extern "C" __global__ void match_long_long(const long long* x, unsigned* any, unsigned* all, int* pred, unsigned m,
                                           int a) {
    match(x, any, all, pred, m, a);
}
extern "C" __global__ void match_unsigned_long_long(const unsigned long long* x, unsigned* any, unsigned* all,
                                                    int* pred, unsigned m, int a) {
    match(x, any, all, pred, m, a);
}
extern "C" __global__ void match_float(const float* x, unsigned* any, unsigned* all, int* pred, unsigned m, int a) {
    match(x, any, all, pred, m, a);
}
extern "C" __global__ void match_double(const double* x, unsigned* any, unsigned* all, int* pred, unsigned m, int a) {
    match(x, any, all, pred, m, a);
}
"""


@pytest.fixture(scope="module")
def warps():
    if reason := emu.missing():
        pytest.skip(reason)
    return emu.RawModule(code=WARPS, name="warps.cu")


def _shuffled(x, kind: int, arg: int, width: int, mask: int):
    """What each lane of ``x`` (the block's threads, linear) gets, as PTX's ``shfl`` computes it: lanes the mask does
    not name get 0."""
    t = np.arange(x.size)
    lane = t % 32
    start = lane & ~(width - 1)
    b = ((arg - lane) if kind == 0 else np.full_like(lane, arg)) & 31
    j = [start | (b & (width - 1)), lane - b, lane + b, lane ^ b][kind]
    inside = j >= start if kind == 1 else j <= start + width - 1
    got = x[np.where(inside, j, lane) + t - lane]
    return np.where(mask >> lane & 1, got, 0).astype(x.dtype)


WARP_TYPES = {"i4": np.int32, "u4": np.uint32, "i8": np.int64, "u8": np.uint64, "f4": np.float32, "f8": np.float64}


@pytest.mark.parametrize("kind, arg, width, mask, block", [
    (0, 5, 32, 0xFFFFFFFF, 32), (0, 3, 8, 0xFFFFFFFF, (16, 4)), (0, -7, 16, 0xFFFF0000, 96),
    (0, 40, 4, 0xF0F0F0F0, 64), (1, 3, 32, 0xFFFFFFFF, 64), (1, 2, 16, 0xFFFF0000, 96), (1, 1, 2, 0xFFFFFFFF, 1024),
    (2, 1, 32, 0xFFFFFFFF, 1024), (2, 5, 8, 0x0000FFFF, 64), (2, 16, 32, 0xFFFFFFFF, (8, 4, 3)),
    (2, 0, 1, 0xFFFFFFFF, 32), (3, 7, 32, 0xFFFFFFFF, (8, 4, 3)), (3, 16, 32, 0xFFFFFFFF, 32),
    (3, 3, 4, 0xFF00FF00, 64), (3, 8, 8, 0xFFFFFFFF, 32),
], ids=str)
def test_each_warp_shuffle_gives_each_lane_the_lane_ptx_names(warps, kind, arg, width, mask, block):
    # (an xor past the lane's segment of width gives its own value, one before it another segment's: (3, 8, 8, ...))
    n = int(np.prod(block))
    rng = np.random.default_rng(kind * 100 + abs(arg))
    for code, dtype in WARP_TYPES.items():
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
        x = (rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True) if info else
             rng.normal(size=n).astype(dtype))  # 64-bit numbers whose two halves both differ from lane to lane
        y = np.zeros(n, dtype)
        warps.get_function(f"shuffle_{code}")(1, block, (x, y, np.int32(kind), np.int32(arg), np.int32(width),
                                                        np.uint32(mask)))
        np.testing.assert_array_equal(y, _shuffled(x, kind, arg, width, mask), err_msg=f"{code}, block {block}")


@pytest.mark.parametrize("mask, alive, block", [(0xFFFFFFFF, 96, 96), (0x0F0F0F0F, 64, 64), (0xFFFFFFFF, 40, 64),
                                                (0xFFFFFFFF, 1024, 1024), (0xFFFFFFFF, 45, (10, 5))], ids=str)
def test_warp_votes_and_reductions_take_the_lanes_the_mask_names_that_have_not_ended(warps, mask, alive, block):
    n = int(np.prod(block))
    x = np.random.default_rng(alive).integers(-100, 100, size=n).astype(np.int32)
    out = np.zeros((n, 12), np.int64)
    warps.get_function("votes")(1, block, (x, out, np.uint32(mask), np.int32(alive)))
    for t in range(n):
        if t >= alive or not mask >> t % 32 & 1:
            assert not out[t].any()
            continue
        lanes = [u for u in range(t - t % 32, t - t % 32 + 32) if u < alive and mask >> u % 32 & 1]
        v, u = x[lanes].astype(np.int64), x[lanes].astype(np.uint32).astype(np.int64)
        want = [sum(1 << w % 32 for w in lanes if x[w] > 0), (v > 90).any(), (v > -90).all(), v.sum(), v.min(),
                v.max(), u.sum() % 2**32, u.min(), u.max(), np.bitwise_and.reduce(u), np.bitwise_or.reduce(u),
                np.bitwise_xor.reduce(u)]
        np.testing.assert_array_equal(out[t], want, err_msg=f"thread {t}")


def _matched(x, mask: int, alive: int):
    """What each thread of ``x`` (the block's, linear) gets of ``__match_any_sync`` and ``__match_all_sync`` (the
    lanes, and the predicate), as PTX's ``match.sync`` computes them from the values' bits over the lanes the mask
    names that have not returned (below ``alive``); 0 for a thread that returned or the mask does not name."""
    bits = x.view(f"u{x.itemsize}")
    any_, all_, pred = np.zeros(x.size, np.uint32), np.zeros(x.size, np.uint32), np.zeros(x.size, np.int32)
    for t in range(min(alive, x.size)):
        if mask >> t % 32 & 1:
            lanes = [u for u in range(t - t % 32, min(t - t % 32 + 32, alive)) if mask >> u % 32 & 1]
            same = [u for u in lanes if bits[u] == bits[t]]
            any_[t] = sum(1 << u % 32 for u in same)
            pred[t] = same == lanes
            all_[t] = sum(1 << u % 32 for u in lanes) if pred[t] else 0
    return any_, all_, pred


#: the values each type's match draws from: some alike in value and not in bits (0.0 and -0.0), or in bits and not
#: in value (a NaN and itself), or in their low 32 bits only (1 and 1 + 2^32; the doubles 1.0, 2.0, 0.0, -0.0, the NaN)
MATCH_VALUES = {
    **dict.fromkeys(["int", "unsigned"], np.array([0, 7, 0xFFFFFFFF, 0x80000000], np.uint32)),
    **dict.fromkeys(["long", "unsigned_long", "long_long", "unsigned_long_long"],
                    np.array([1, 1 + 2**32, 2**64 - 1, 2**32], np.uint64)),
    "float": np.array([0, 0x80000000, 0x7FC00000, 0x7FC00001], np.uint32),  # 0.0, -0.0, a NaN, another NaN
    "double": np.array([0x3FF0 << 48, 0x4000 << 48, 0x7FF8 << 48, 0x8000 << 48, 0, (0x7FF8 << 48) + 1], np.uint64),
}
#: each match kernel's type
MATCH_TYPES = {"int": np.int32, "unsigned": np.uint32, "long": np.int64, "unsigned_long": np.uint64,
               "long_long": np.int64, "unsigned_long_long": np.uint64, "float": np.float32, "double": np.float64}


@pytest.mark.parametrize("mask, alive, block", [(0xFFFFFFFF, 96, 96), (0x0F0F0F0F, 64, 64), (0xFFFFFFFF, 40, 64),
                                                (0xFFFF0000, 64, (16, 4)), (0xFFFFFFFF, 45, (10, 5))], ids=str)
def test_warp_matches_compare_the_bits_of_the_lanes_the_mask_names_that_have_not_ended(warps, mask, alive, block):
    """``__match_any_sync`` and ``__match_all_sync`` of each type: warp 0 and 2 hold values of a few groups, warp 1
    one value alone (a NaN for the floats, -1 for the integers), where ``__match_all_sync`` gives the lanes the mask
    names that have not returned (all 32 but where some returned) and sets its predicate."""
    n = int(np.prod(block))
    rng = np.random.default_rng(alive)
    for name, dtype in MATCH_TYPES.items():
        values = MATCH_VALUES[name]
        x = values[rng.integers(0, values.size, size=n)]
        x[32:64] = values[2]
        x = x.view(dtype)
        got = [np.zeros(n, np.uint32), np.zeros(n, np.uint32), np.zeros(n, np.int32)]
        warps.get_function(f"match_{name}")(1, block, (x, *got, np.uint32(mask), np.int32(alive)))
        for what, g, want in zip(("any", "all", "pred"), got, _matched(x, mask, alive)):
            np.testing.assert_array_equal(g, want, err_msg=f"__match_{what}_sync of {name}, block {block}")


@pytest.mark.parametrize("block", [32, 64, 96, 1024, (32, 3), (8, 4, 2)], ids=str)
def test_a_block_reduction_by_warp_shuffles_gives_each_blocks_sum_and_max(warps, block):
    n = int(np.prod(block))
    rng = np.random.default_rng(n)
    x = rng.integers(-1000, 1000, size=(3, n)).astype(np.float64)  # whole numbers: any order exact
    z = rng.normal(size=(3, n)).astype(np.float32) - 10
    sums, maxes = emu.empty(3), emu.empty(3, np.float32)
    warps.get_function("warp_reductions")(3, block, (x, z, sums, maxes))
    np.testing.assert_array_equal(sums, x.sum(axis=1))
    np.testing.assert_array_equal(maxes, z.max(axis=1))


def test_a_warp_operation_that_the_blocks_first_thread_never_meets_runs_all_threads_as_fibers(warps):
    x, y = np.arange(64, dtype=np.int32), np.zeros(64, np.int32)
    warps.get_function("first_warp_only")(1, 64, (x, y))
    np.testing.assert_array_equal(y, np.r_[np.arange(1, 32), 31, np.zeros(32)])


def test_warp_operations_interleave_with_barriers(warps):
    n = 96
    x = np.random.default_rng(2).integers(-99, 99, size=n).astype(np.int32)
    out = emu.empty(n, np.int32)
    warps.get_function("interleaved")(1, n, (x, out), shared_mem=4 * n)
    t = np.arange(n)
    lane, base = t % 32, t - t % 32
    v = x.copy()
    upper = lane >= 16
    v[upper] += x[np.where(lane + 8 <= 31, t + 8, t)][upper]  # the upper half's segment of 16: lanes 16 .. 31
    v = v[base + (lane ^ 1)]
    v = v[n - 1 - t]
    np.testing.assert_array_equal(out, v + v[base + (t // 32) % 32])


def test_a_lane_may_come_to_an_operation_with_another_mask_while_others_wait_at_it_and_come_again(warps):
    x = np.random.default_rng(3).integers(-99, 99, size=64).astype(np.int32)
    y = emu.empty(64, np.int32)
    warps.get_function("masks_by_round")(1, 64, (x, y))
    pair = x + x[np.arange(64) ^ 1]
    np.testing.assert_array_equal(y, 2 * pair)


def test_a_warps_tree_in_shared_memory_is_a_race_without_syncwarp_and_right_with_it(warps):
    x = np.arange(64, dtype=np.float32)
    tree = warps.get_function("warp_tree")
    with pytest.raises(emu.LaunchError, match=r"^warp_tree: race: .* argument 1 \(float\* out\) differs"):
        tree(1, 64, (x, emu.empty(1, np.float32), np.int32(0)), shared_mem=256)
    out = emu.empty(1, np.float32)
    tree(1, 64, (x, out, np.int32(1)), shared_mem=256)
    assert out[0] == x[:32].sum()


@pytest.mark.parametrize("kernel, block", [("syncwarp_for_syncthreads", 256), ("shuffle_for_syncthreads", 256),
                                           ("half_a_warp_synced", 32), ("syncwarp_for_syncthreads", (16, 4, 2))])
def test_a_warp_operation_where_a_syncthreads_belongs_is_a_race_that_says_it_orders_its_own_lanes_only(warps, kernel,
                                                                                                       block):
    n = int(np.prod(block))
    with pytest.raises(emu.LaunchError, match=rf"^{kernel}: race: .* argument 1 \(float\* out\) differs .*This kernel "
                                              r"calls warp operations: a __syncwarp\(\) or a shuffle orders only the "
                                              r"lanes of its own warp that its mask names, not the block's other"):
        warps.get_function(kernel)(1, block, (np.arange(n, dtype=np.float32), np.zeros(n, np.float32)))


@pytest.mark.parametrize("kernel, block, message", [
    ("not_named", 32, r"in block 0, thread 31 \(lane 31 of warp 0\) calls __shfl_sync\(mask 0x0000ffff\), whose mask "
                      r"does not name its own lane 31: on a GPU each calling thread's bit must be set"),
    ("bad_width", 32, r"calls __shfl_sync\(mask 0xffffffff, width 12\): a width is a power of two from 1 to 32"),
    ("half_then_barrier", 32, r"thread 0 \(lane 0 of warp 0\) waits at __shfl_down_sync\(mask 0xffffffff\) for thread "
                              r"16 \(lane 16 of warp 0\), which its mask names but which waits at a __syncthreads\(\): "
                              r"on a GPU every lane a mask names that has not ended must come to the same operation"),
    ("two_operations", 64, r"thread 0 .* waits at __shfl_down_sync\(mask 0xffffffff\) for thread 16 \(lane 16 of warp "
                           r"0\), which its mask names but which waits at __ballot_sync\(mask 0xffffffff\)"),
    ("two_masks", (8, 4), r"in block 0, thread \(0, 0, 0\) \(lane 0 of warp 0\) waits at __syncwarp\(mask "
                          r"0x0000ffff\) for thread \(1, 0, 0\) \(lane 1 of warp 0\), .* waits at __syncwarp\(mask "
                          r"0xffffffff\)"),
    ("reads_ended", 32, r"thread 8 \(lane 8 of warp 0\) reads lane 16 through __shfl_down_sync\(mask 0xffffffff, "
                        r"delta 8\), a lane that did not call it \(it ended first: it returned, or took another "
                        r"branch of an if and ran to the kernel's end\): a GPU gives an undefined value there .*; name "
                        r"in the mask only the lanes that call it$"),
    ("reads_skipped", 32, r"thread 13 \(lane 13 of warp 0\) reads lane 16 through __shfl_sync\(mask 0xffffffff, "
                          r"srcLane 16\), a lane that did not call it \(it ended first: it returned, or took another "
                          r"branch of an if"),
    ("reads_past_the_block", 48, r"thread 40 \(lane 8 of warp 1\) reads lane 16 through __shfl_down_sync\(mask "
                                 r"0xffffffff, delta 8\), a lane that does not exist \(the block has 48 threads, so "
                                 r"its last warp has 16 lanes: make the block a whole number of warps, a multiple of "
                                 r"32 threads, or name in the mask only the lanes that exist\)"),
    ("reads_unnamed", 32, r"reads lane 16 through __shfl_down_sync\(mask 0x0000ffff, delta 8\), a lane that the mask "
                          r"does not name: a GPU gives an undefined value there \(.*\); with width 16 \(the last "
                          r"argument\), each 16 lanes shuffle among themselves, and a lane whose source lies outside "
                          r"its 16 keeps its own value$"),
    ("mixed_masks", 32, r"in block 0, thread 0 \(lane 0 of warp 0\) waits at __shfl_xor_sync\(mask 0xffffffff\) for "
                        r"thread 16 \(lane 16 of warp 0\), which its mask names but which came to "
                        r"__shfl_xor_sync\(mask 0xffff0000\) while it waited, and then ended: on a GPU every lane a "
                        r"mask names that has not ended must come to the same operation with the same mask "
                        r"\(undefined otherwise\)"),
    ("mixed_sizes", 32, r"waits at __shfl_xor_sync\(mask 0xffffffff\) of 8 bytes \(a long long, a double\) for thread "
                        r"16 \(lane 16 of warp 0\), which its mask names but which waits at __shfl_xor_sync\(mask "
                        r"0xffffffff\) of 4 bytes \(an int, an unsigned, a float\): .* and a value of the same type"),
    ("mixed_signs", 32, r"waits at __reduce_min_sync\(mask 0xffffffff\) of an (int|unsigned) for thread \d+ "
                        r"\(lane \d+ of warp 0\), which its mask names but which waits at "
                        r"__reduce_min_sync\(mask 0xffffffff\) of an (int|unsigned)"),
    ("match_not_named", 32, r"in block 0, thread 0 \(lane 0 of warp 0\) calls __match_any_sync\(mask 0xfffffffe\), "
                            r"whose mask does not name its own lane 0"),
    ("match_then_barrier", 64, r"thread 0 \(lane 0 of warp 0\) waits at __match_any_sync\(mask 0xffffffff\) for "
                               r"thread 16 \(lane 16 of warp 0\), which its mask names but which waits at a "
                               r"__syncthreads\(\)"),
    ("match_any_or_all", 32, r"thread 0 \(lane 0 of warp 0\) waits at __match_any_sync\(mask 0xffffffff\) for "
                             r"thread 16 \(lane 16 of warp 0\), which its mask names but which waits at "
                             r"__match_all_sync\(mask 0xffffffff\)"),
    ("match_sizes", 32, r"thread 0 \(lane 0 of warp 0\) waits at __match_all_sync\(mask 0xffffffff\) of 8 bytes \(a "
                        r"long long, a double\) for thread 16 \(lane 16 of warp 0\), which its mask names but which "
                        r"waits at __match_all_sync\(mask 0xffffffff\) of 4 bytes \(an int, an unsigned, a float\)"),
])
def test_what_a_gpu_leaves_undefined_in_a_warp_operation_stops_the_launch_naming_the_lanes(warps, kernel, block,
                                                                                           message):
    y = np.zeros(int(np.prod(block)), np.float32)
    with pytest.raises(emu.LaunchError, match=f"^{kernel}: {'' if message.startswith('in block') else '.*'}{message}"):
        warps.get_function(kernel)(1, block, (y,))
    warps.get_function("first_warp_only")(1, 64, (np.arange(64, dtype=np.int32), np.zeros(64, np.int32)))  # runs on


def test_the_warp_kernels_are_cuda_that_nvcc_compiles(tmp_path):
    """The warp tests' kernels (:data:`WARPS`) are CUDA, not a dialect of the emulation's: nvcc compiles them to PTX
    for sm_90 (the matches need sm_70, the reductions sm_80), each kernel an entry, the matches PTX's ``match.sync``
    of 32 and 64 bits."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not installed")
    source, ptx = tmp_path / "warps.cu", tmp_path / "warps.ptx"
    source.write_text(WARPS, encoding="utf-8")
    done = subprocess.run(["nvcc", "--ptx", "-arch=sm_90", str(source), "-o", str(ptx)], capture_output=True,
                          encoding="utf-8")
    assert done.returncode == 0, done.stderr
    ptx = ptx.read_text(encoding="utf-8")
    names = re.findall(r'extern "C" __global__ void (\w+)\(', WARPS)
    assert {"votes", "match_double", "match_sizes"} <= set(names)
    for name in names:
        assert f".entry {name}(" in ptx
    for instruction in ("match.any.sync.b32", "match.any.sync.b64", "match.all.sync.b32", "match.all.sync.b64"):
        assert instruction in ptx


def test_a_warp_operation_whose_name_a_macro_makes_is_named_where_its_kernel_ran_without_fibers():
    """The emulation runs a kernel's threads as fibers where its source names a warp operation; where a macro makes
    the name, a thread run without a fiber (the block's first ended without a barrier) cannot wait for its lanes."""
    if reason := emu.missing():
        pytest.skip(reason)
    source = r"""#define SHUFFLE(kind) __shfl_##kind##_sync
extern "C" __global__ void hidden(float* y) {
    if (threadIdx.x < 16) y[threadIdx.x] = SHUFFLE(down)(0xffff, y[threadIdx.x], 1);
}"""
    with pytest.raises(emu.LaunchError, match=r"^hidden: in block 0, thread 15 \(lane 15 of warp 0\) calls "
                                              r"__shfl_down_sync\(mask 0x0000ffff\) in a kernel run without fibers: "
                                              r"the emulation found no warp operation's name in it, nor in a "
                                              r"function or a macro it names \(one made by a macro's ##\? a call "
                                              r"through a pointer\?\); write the call out$"):
        emu.RawModule(source).get_function("hidden")(1, 32, (np.zeros(32, np.float32),))


CALL_GRAPH = r"""
#define WARP_SUM(v) do { for (int k = 16; k > 0; k >>= 1) v += __shfl_down_sync(0xffffffff, v, k); } while (0)
#define TWICE(v) (2 * (v))
__device__ float lane_sum(float v) { WARP_SUM(v); return v; }
template <class T> __device__ T broadcast(T v) { return __shfl_sync(0xffffffff, v, 0); }
__device__ float sum_then_broadcast(float v) { return broadcast(lane_sum(v)); }  // (named before its callees')
__device__ float twice(float v) { return TWICE(v); }  // "__shfl_sync" in a string or a comment is no call
__device__ const char* said() { return "__shfl_sync(){"; }
extern "C" __global__ void elementwise(const float* x, float* y) { y[threadIdx.x] = twice(x[threadIdx.x]); }
extern "C" __global__ void through_two(const float* x, float* y) {
    y[threadIdx.x] = sum_then_broadcast(x[threadIdx.x]);
}
extern "C" __global__ void by_a_macro(const float* x, float* y) {
    float v = x[threadIdx.x];
    WARP_SUM(v);
    y[threadIdx.x] = v;
}
extern "C" __global__ void itself(const float* x, float* y) { __syncwarp(); y[threadIdx.x] = x[threadIdx.x]; }
"""


@pytest.mark.parametrize("extra, fibers", [
    ("", {"through_two", "by_a_macro", "itself"}),
    ("struct Warp { __device__ float sum(float v) { return __reduce_add_sync(0xffffffff, (int)v); } };",
     {"elementwise", "through_two", "by_a_macro", "itself"}),  # a method: not known by its name, so every kernel's
    ("__device__ unsigned peers(float v) { return __match_any_sync(0xffffffff, v); }\nextern \"C\" __global__ void "
     "by_a_match(const float* x, float* y) { y[threadIdx.x] = __popc(peers(x[threadIdx.x])); }",
     {"through_two", "by_a_macro", "itself", "by_a_match"}),
])
def test_a_kernel_runs_as_fibers_where_it_or_a_function_or_macro_it_names_calls_a_warp_operation(extra, fibers):
    """Every thread a fiber, for a kernel that may reach a warp operation only: a kernel beside an uncalled warp
    helper keeps its fast path (it ran 13 times slower, 64 blocks of 1,024 threads)."""
    if reason := emu.missing():
        pytest.skip(reason)
    module = emu.RawModule(code=CALL_GRAPH + extra)
    assert module.warp_kernels == fibers and isinstance(module.warp_kernels, frozenset)
    for kernel in module.kernels:
        x, y = np.arange(64, dtype=np.float32), emu.empty(64, np.float32)
        module.get_function(kernel)(1, 64, (x, y))
        sums = np.repeat(x.reshape(2, 32).sum(axis=1), 32)
        want = {"elementwise": 2 * x, "through_two": sums, "by_a_macro": np.where(np.arange(64) % 32, y, sums),
                "itself": x, "by_a_match": np.ones(64)}[kernel]  # (each value its lane's alone)
        np.testing.assert_array_equal(y, want, err_msg=kernel)


def test_the_call_graph_holds_each_kernel_function_and_macro_whole_and_the_rest_apart():
    """What the warp kernels are found in (no g++ needed): each kernel's text from its head to its closing brace (one
    right after another's too; a declaration is none), each ``__device__`` function's head and body by its name, a
    macro's texts (defined twice: both), and the rest -- the heads of the named functions, a struct -- apart."""
    code = (
        "#define TWICE(v) (2 * (v))\n"
        "__device__ float twice(float v) { return TWICE(v); }\n"
        "#undef TWICE\n"
        "#define TWICE(v) ((v) + (v))\n"
        'extern "C" __global__ void k(float* y) { y[0] = twice(y[0]); }'
        'extern "C" __global__ void m(float* y) { if (1) { y[0] = 0; } }\n'
        'extern "C" __global__ void declared(float* y);\n'
        "struct Pair { float a, b; };\n"
        "__device__ float first(Pair p) { return p.a; }\n"
    )
    bodies, texts, rest = emu._call_graph(code)
    assert bodies == {"k": 'extern "C" __global__ void k(float* y) { y[0] = twice(y[0]); }',
                      "m": 'extern "C" __global__ void m(float* y) { if (1) { y[0] = 0; } }'}
    assert texts == {"TWICE": "(v) (2 * (v))(v) ((v) + (v))",
                     "twice": "\n__device__ float twice(float v) { return TWICE(v); }",
                     "first": "\n__device__ float first(Pair p) { return p.a; }"}
    assert rest == ("\n__device__ float twice(float v) " + "\n" * 4 + 'extern "C" __global__ void declared(float* y);\n'
                    "struct Pair { float a, b; };\n__device__ float first(Pair p) \n")


def test_the_bit_intrinsics_count_find_and_reverse_bits_as_cuda_defines_them():
    """``__popc``, ``__ffs``, ``__clz``, ``__brev`` and their ``ll`` forms (with which a ballot's lanes are counted),
    against Python's integers: of the low 32 bits as an ``int`` or ``unsigned``, and of all 64."""
    if reason := emu.missing():
        pytest.skip(reason)
    source = r"""
extern "C" __global__ void bits(const unsigned long long* x, unsigned long long* out) {
    unsigned long long v = x[threadIdx.x];
    unsigned int low = (unsigned int)v;
    unsigned long long* o = out + 8 * threadIdx.x;
    o[0] = __popc(low), o[1] = __ffs((int)low), o[2] = __clz((int)low), o[3] = __brev(low);
    o[4] = __popcll(v), o[5] = __ffsll((long long)v), o[6] = __clzll((long long)v), o[7] = __brevll(v);
}"""
    rng = np.random.default_rng(5)
    x = np.concatenate([np.array([0, 1, 2, 3, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1, 0x00F0_0000_0000_0100],
                                 np.uint64), rng.integers(0, 2**64 - 1, size=22, dtype=np.uint64, endpoint=True)])
    out = np.zeros((x.size, 8), np.uint64)
    emu.RawModule(code=source).get_function("bits")(1, x.size, (x, out))
    for v, got in zip(x.tolist(), out.tolist()):
        want = []
        for bits, value in ((32, v % 2**32), (64, v)):
            want += [value.bit_count(), (value & -value).bit_length(), bits - value.bit_length(),
                     int(f"{value:0{bits}b}"[::-1], 2)]
        assert got == want, f"x = {v:#x}: got {got}, want {want} (popc, ffs, clz, brev; then the ll forms)"


def test_a_warp_operation_a_macro_makes_whose_mask_names_the_first_thread_alone_is_done():
    """The block's first thread, run before the others as a kernel with no warp operation's name runs, waits at one
    whose mask names its own lane alone; in a block of one thread no other lane comes to complete it (it hung: run in
    a process of its own, with a timeout)."""
    if reason := emu.missing():
        pytest.skip(reason)
    script = r"""import numpy as np
from minitransformer import cuda_emulator as emu
source = '''#define SYNC_LANE __sync##warp
extern "C" __global__ void alone(float* y) { SYNC_LANE(1u << threadIdx.x % 32); y[threadIdx.x] = 1; }'''
for threads in (1, 33):
    y = np.zeros(threads, np.float32)
    emu.RawModule(code=source).get_function("alone")(1, threads, (y,))
    print(y.sum())
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, encoding="utf-8", timeout=120)
    assert run.stdout.split() == ["1.0", "33.0"], run.stderr


def test_a_stub_raises_not_implemented_with_its_message(module):
    with pytest.raises(NotImplementedError, match=r"^E1: unwritten: y\[i\] = 2 x\[i\] \(reached in the launch of "
                                                  r"unwritten\)$"):
        module.get_function("unwritten")(1, 4, (emu.empty(4, np.float32),))


def test_an_array_passed_twice_is_one_array(module):
    x = np.arange(6, dtype=np.float32)
    module.get_function("scale")(1, 8, (x, x, np.float32(3.0), np.int64(6)))  # in place: y is x
    np.testing.assert_array_equal(x, 3 * np.arange(6))


@pytest.mark.parametrize("args, message", [
    ((np.arange(3.0), "y", np.float32(1), np.int64(3)),
     r"^scale: argument 0 \(const float\* x\) points to float32 entries; got a float64 array"),
    ((np.arange(3.0, dtype=np.float32), 7, np.float32(1), np.int64(3)),
     r"^scale: argument 1 \(float\* y\) is a pointer: pass a NumPy array, got int$"),
    ((np.ones(3, np.float32), np.ones(3, np.float32), 2.0, np.int64(3)),
     r"^scale: argument 2 \(float a\) is float32; got float 2.0, which CuPy would pass as float64: pass "
     r"np.float32\(2.0\)$"),
    ((np.ones(3, np.float32), np.ones(3, np.float32), 2, np.int64(3)),
     r"^scale: argument 2 \(float a\) is float32; got int 2, which CuPy would pass as int64: pass np.float32\(2\)$"),
    ((np.ones(3, np.float32), np.ones(3, np.float32), np.float32(1), np.int32(3)),
     r"^scale: argument 3 \(long long n\) is int64; got int32"),
    ((np.ones(3, np.float32), np.ones(3, np.float32), np.float32(1)),
     r"^scale: 3 arguments for its 4 parameters \(const float\* x, float\* y, float a, long long n\)$"),
])
def test_arguments_of_the_wrong_type_are_refused_naming_the_parameter(module, args, message):
    with pytest.raises(ValueError, match=message):
        module.get_function("scale")(1, 32, args)


def test_a_python_int_passes_for_an_unsigned_64_bit_number_from_0_but_nothing_else_does():
    """CuPy passes a Python int as an int64, whose bits an unsigned long long reads as the same number from 0 up."""
    if reason := emu.missing():
        pytest.skip(reason)
    put = emu.RawModule('extern "C" __global__ void put(unsigned long long* y, unsigned long long v) { y[0] = v; }'
                        ).get_function("put")
    y = np.ones(1, np.uint64)
    for v in (0, 5):
        put(1, 1, (y, v))
        assert int(y[0]) == v
    for v, what in [(-1, "int -1"), (1.0, "float 1.0")]:
        with pytest.raises(ValueError, match=rf"^put: argument 1 \(unsigned long long v\) is uint64; got {what}, "
                                             rf"which CuPy would pass as {type(v).__name__}64: "):
            put(1, 1, (y, v))


@pytest.mark.parametrize("grid, block, shared, message", [
    (0, 32, 0, r"^scale: a grid of \(0, 1, 1\) blocks of \(32, 1, 1\) threads \(CUDA: invalid configuration"),
    (1, 2048, 0, r"^scale: 2048 threads in a block \(2048, 1, 1\) \(CUDA allows 1024"),
    (1, (32, 32, 2), 0, r"^scale: 2048 threads"),
    (1, 32, 64 * 1024, r"^scale: 65536 bytes of dynamic shared memory"),
    (1, (1, 1, 65), 0, r"^scale: 65 threads in a block \(1, 1, 65\) \(CUDA allows 1024, and 64 in z\)$"),
    ((1, 1, 1, 1), 32, 0, r"^scale: the grid is an int or a tuple of 1 to 3 ints"),
])
def test_a_launch_a_gpu_refuses_is_refused(module, grid, block, shared, message):
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=message):
        module.get_function("scale")(grid, block, (x, x, np.float32(1), np.int64(3)), shared_mem=shared)


def test_a_launch_at_the_limits_a_gpu_allows_runs(module):
    """64 threads in z and all the dynamic shared memory CUDA gives without opting in: allowed, as on a GPU."""
    for block, shared in [((1, 1, 64), 0), (32, emu.MAX_DYNAMIC_SHARED)]:
        x, y = np.arange(3, dtype=np.float32), emu.empty(3, np.float32)
        module.get_function("scale")(1, block, (x, y, np.float32(2), np.int64(3)), shared_mem=shared)
        np.testing.assert_array_equal(y, 2 * x)


def test_a_block_or_thread_is_named_as_cuda_numbers_it():
    """x fastest, then y, then z: the 24 threads of a block (4, 3, 2); one axis alone: its number."""
    assert emu._where(23, (4, 3, 2)) == "(3, 2, 1)" and emu._where(6, (4, 3, 2)) == "(2, 1, 0)"
    assert emu._where(5, (8, 1, 1)) == "5"


def test_an_unknown_kernel_and_a_source_that_does_not_compile_say_what_is_wrong(module):
    with pytest.raises(ValueError, match=r"^tests/test_cuda_emulator.py: no kernel 'scal'; its kernels \(extern \"C\" "
                                         r"__global__\): scale, row_sums, "):
        module.get_function("scal")
    broken = 'extern "C" __global__ void f(float* y) {\n    y[0] = undeclared;\n}\n'
    with pytest.raises(emu.CompileError, match=r"^mine.cu: does not compile for the CPU emulation of CUDA \(g\+\+ "
                                               r"-std=c\+\+20\):\nmine.cu:11:12: error: .undeclared. was not declared"):
        emu.RawModule(broken, name="mine.cu", first_line=10)


def test_a_source_is_compiled_once(module, monkeypatch):
    def no_compiler(*args, **kwargs):
        raise AssertionError("g++ ran again")

    monkeypatch.setattr(emu.subprocess, "run", no_compiler)
    again = emu.RawModule(code=SOURCE, name="tests/test_cuda_emulator.py")  # the same library, loaded once
    assert again._library is module._library
    monkeypatch.setattr(emu, "_LOADED", {})  # a new process: the file in the cache folder, not compiled again
    assert emu.RawModule(code=SOURCE, name="tests/test_cuda_emulator.py").kernels == module.kernels
    assert list(emu.cache_folder().glob("*.so"))


def test_on_arm64_g_plus_plus_probes_a_frames_pages_for_a_guard_of_one_page():
    # ARM64's g++ assumes a 64 KiB guard below a stack; a thread's guard here is one page (4 KiB)
    assert emu._compiler("x86_64") == emu.COMPILER
    for machine in ("aarch64", "arm64"):
        assert emu._compiler(machine) == [*emu.COMPILER, "--param", "stack-clash-protection-guard-size=12"]


def test_the_compiler_of_this_machine_compiles_the_source(tmp_path, monkeypatch):
    compiled = []
    run = emu.subprocess.run
    monkeypatch.setattr(emu.subprocess, "run", lambda command, **kw: compiled.append(command) or run(command, **kw))
    monkeypatch.setattr(emu, "_LOADED", {})
    monkeypatch.setattr(emu.tempfile, "gettempdir", lambda: str(tmp_path))  # an empty cache: compiled here
    emu.RawModule(code=SOURCE, name="tests/test_cuda_emulator.py")
    assert compiled and compiled[0][:len(emu.COMPILER)] == emu.COMPILER
    assert compiled[0][:-3] == emu._compiler(emu.platform.machine())


def test_without_g_plus_plus_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(emu.shutil, "which", lambda name: None)
    assert emu.missing() == "g++ is not installed: the CPU emulation of the CUDA kernels needs it"
    with pytest.raises(RuntimeError, match=r"^cuda_emulator: g\+\+ is not installed: .* Install it: sudo apt install "
                                           r"g\+\+ .*cupy.RawModule\(code=source\)"):
        emu.RawModule(code=SOURCE)


def test_empty_arrays_hold_the_guard_bytes():
    a = emu.empty((2, 3), np.float64)
    assert a.shape == (2, 3) and a.dtype == np.float64 and (a.view(np.uint8) == emu.GUARD_BYTE).all()
    assert emu.empty(4, np.int32).shape == (4,)


COMMENTED = r"""
// extern "C" __global__ void old_twice(float* x) { x[threadIdx.x] *= 2; }  (the first try, kept for the record)
/* extern "C" __global__ void older_twice(float* x);
   extern "C" __global__ void oldest_twice(float* x); */
#if 0
extern "C" __global__ void unfinished(float* x) {
#if 1
    x[0] = 1;
#else  // the #else of an #if inside the #if 0: skipped still
}
extern "C" __global__ void in_a_nested_else(float* x) {
#endif
}
#elif 0
extern "C" __global__ void second_try(float* x) { x[0] = 2; }
#endif
#if false  // false is 0 to C++'s preprocessor
extern "C" __global__ void third_try(float* x) { x[0] = 3; }
#elif false
extern "C" __global__ void fourth_try(float* x) { x[0] = 4; }
#endif
#if 0
extern "C" __global__ void fifth_try(float* x) { x[0] = 5; }
#else  // the #if 0's own #else: code again
extern "C" __global__ void twice(float* x) {  /* a comment */
    const char* open = "/*";  // in a string: not a comment's start, nor its end, below
    x[threadIdx.x] *= 2 + 0 * open[0];
}
#endif
extern "C" __global__ void thrice(float* x) {
    const char* close = "*/", *quoted = R"(extern "C" __global__ void f(float* y))";
    x[threadIdx.x] *= 3 + 0 * close[0] * quoted[0];
}
"""


def test_kernels_in_comments_and_in_if_0_or_if_false_are_not_kernels():
    if reason := emu.missing():
        pytest.skip(reason)
    module = emu.RawModule(COMMENTED, name="commented.cu")
    assert module.kernels == ("twice", "thrice")
    x = np.arange(4, dtype=np.float32)
    module.get_function("twice")(1, 4, (x,))
    module.get_function("thrice")(1, 4, (x,))
    np.testing.assert_array_equal(x, [0, 6, 12, 18])


FAULTS = r"""
import ctypes, signal, threading
import numpy as np
from minitransformer import cuda_emulator as emu
source = '''
// a local array larger than a thread's stack (STACK_BYTES), of which only the far end is written: past the guard
// page, in the next thread's stack, unless the frame's pages are touched in order (-fstack-clash-protection);
// thread 0, whose far end lies below all the stacks, returns first
extern "C" __global__ void too_large(double* out) {
    volatile double local[9000];  // 72,000 bytes
    if (threadIdx.x == 0) return;
    local[0] = threadIdx.x;
    out[threadIdx.x] = local[0];
}
// thread 2 reads x[at], the others x[0]
extern "C" __global__ void far(const float* x, float* out, long long at) {
    out[threadIdx.x] = x[threadIdx.x == 2 ? at : 0];
}
extern "C" __global__ void at_address(float* out, long long address) {
    out[threadIdx.x] = *(volatile float*)address;
}
extern "C" __global__ void divide(int* x, int d) { x[threadIdx.x] /= d; }
// thread 1 recurses depth times, in 1 KiB frames; with no barrier it runs on the launching thread's own stack
__device__ int deep(int n) { volatile char pad[1024]; pad[0] = (char)n; return n == 0 ? 0 : deep(n - 1) + pad[0]; }
extern "C" __global__ void recurse(int* out, int depth) { out[threadIdx.x] = deep(threadIdx.x == 1 ? depth : 0); }
extern "C" __global__ void stub_then_fault(float* out) {
    not_implemented("E9: not written yet");
    out[threadIdx.x] = *(volatile float*)16;  // what follows a stub may use what it did not write
}
extern "C" __global__ void fill(float* x) { x[threadIdx.x] = 1; }
'''
module = emu.RawModule(source, name="faults.cu")
libc = ctypes.CDLL(None)
def handlers():  # what the C library has for each signal, and the signal stack
    found = []
    for number in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE):
        action = ctypes.create_string_buffer(256)
        libc.sigaction(number, None, action)
        found.append(action.raw[:8])  # the handler, struct sigaction's first field
    stack = ctypes.create_string_buffer(64)
    libc.sigaltstack(None, stack)
    return found + [stack.raw[:24]]
before = handlers()
def launch(name, *args):
    try:
        module.get_function(name)(*args)
        print(name, "ran")
    except (emu.LaunchError, NotImplementedError) as e:
        print(e)
launch("too_large", 1, 4, (np.zeros(4),))
launch("too_large", 1, 4, (np.zeros(4),))  # again: the jump out of the handler unblocked the signal
launch("far", 1, 4, (np.zeros(16, np.float32), np.zeros(4, np.float32), np.int64(-(1 << 38))))  # 1 TiB before x
launch("at_address", 1, 4, (np.zeros(4, np.float32), np.int64(16)))
launch("at_address", 1, 4, (np.zeros(4, np.float32), np.int64(1 << 62)))  # not an address, on x86-64
launch("divide", 1, 4, (np.ones(4, np.int32), np.int32(0)))
launch("stub_then_fault", 1, 4, (np.zeros(4, np.float32),))
thread = threading.Thread(target=launch, args=("too_large", 1, 4, (np.zeros(4),)))  # no signal stack of its own
thread.start()
thread.join()
threading.stack_size(1 << 20)  # a thread of a known stack (the main thread's may have no limit)
thread = threading.Thread(target=launch, args=("recurse", 1, 4, (np.zeros(4, np.int32), np.int32(1 << 30))))
thread.start()
thread.join()
x = np.zeros(4, np.float32)
launch("fill", 1, 4, (x,))
print(x.tolist())
print("the handlers of before:", handlers() == before)
print("NumPy's float subnormals after the faults:", np.float32(1e-30) * np.float32(1e-10) > 0)  # switches put back
ctypes.string_at(0)  # outside a launch: a crash, as without the emulator, which faulthandler reports
"""


@pytest.fixture(scope="module")
def faults():
    """The output of FAULTS, run in a process of its own (with faulthandler): its lines, and how it ended."""
    if reason := emu.missing():
        pytest.skip(reason)
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c", FAULTS], capture_output=True, encoding="utf-8",
                         timeout=120)
    return run.stdout.splitlines(), run


def test_a_thread_whose_locals_pass_its_stack_stops_the_launch_instead_of_writing_over_another_threads(faults):
    lines, run = faults
    overflow = ("too_large: a stack overflow in thread 3 of block 0 (thread 3's stack is 65536 bytes: a large local "
                "array? Keep it in shared or global memory)")
    assert lines[:2] == [overflow] * 2, (lines, run.stderr)  # (it ran on, its frames over the next thread's, before)
    assert lines[7] == overflow  # launched from a Python thread other than the main one


def test_a_read_where_no_memory_is_stops_the_launch_naming_the_thread(faults):
    lines, run = faults
    assert re.fullmatch(r"far: a read or write at address 0x[0-9a-f]+ outside every array \(an index far out of "
                        r"range\?\), by thread 2 of block 0", lines[2]), (lines, run.stderr)
    assert lines[3] == ("at_address: a read or write at address 0x10 outside every array (a null pointer?), by "
                        "thread 3 of block 0")
    if platform.machine() == "x86_64":  # (elsewhere the processor may give the address: the line above's words)
        assert lines[4] == ("at_address: a read or write at an address no memory can have, outside every array (an "
                            "index far out of range?), by thread 3 of block 0")


def test_a_thread_run_on_the_launching_threads_stack_that_passes_it_is_a_stack_overflow(faults):
    lines, run = faults
    assert lines[8] == ("recurse: a stack overflow in thread 1 of block 0 (it ran on the launching Python thread's "
                        "stack, of 1.0 MiB, as every thread but a block's first does in a kernel without barriers: a "
                        "recursion that does not end? A local array too large? Keep it in shared or global memory)"), (
        lines, run.stderr)


def test_an_integer_division_by_zero_stops_the_launch_on_x86_64_and_runs_on_as_a_gpu_does_elsewhere(faults):
    lines, run = faults
    if platform.machine() in ("x86_64", "AMD64"):  # the processor traps (SIGFPE)
        assert lines[5] == ("divide: an integer division by zero (x / 0 or x % 0; or INT_MIN / -1), by thread 3 of "
                            "block 0: a GPU gives a meaningless number there, the CPU stops"), (lines, run.stderr)
    else:  # ARM64's division gives 0 and no signal, as a GPU's gives an unspecified number and no error
        assert lines[5] == "divide ran", (lines, run.stderr)


def test_a_stub_reached_before_a_fault_is_the_error(faults):
    lines, run = faults
    assert lines[6] == "E9: not written yet (reached in the launch of stub_then_fault)", (lines, run.stderr)


def test_after_a_fault_launches_run_and_a_fault_outside_a_launch_is_a_crash_as_before(faults):
    lines, run = faults
    assert lines[9:] == ["fill ran", "[1.0, 1.0, 1.0, 1.0]", "the handlers of before: True",
                         "NumPy's float subnormals after the faults: True"], (lines, run.stderr)
    assert run.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in run.stderr and "in string_at" in run.stderr


CRASHES = r"""
import ctypes, os, signal, sys, threading, time
import numpy as np
from minitransformer import cuda_emulator as emu
source = '''
extern "C" __global__ void wait(int* flags) {
    flags[0] = 1;  // it started: the other Python thread may fault now
    while (((volatile int*)flags)[1] == 0) {}  // nothing ends it but the end of the process
}
extern "C" __global__ void length(long long* out, long long address) { out[0] = strlen((const char*)address); }
'''
module = emu.RawModule(source, name="crashes.cu")
how = sys.argv[1]
if how == "in the C library":  # strlen's code, not the kernel's: a jump out of it might leave a lock held
    module.get_function("length")(1, 1, (np.zeros(1, np.int64), np.int64(16)))
memory = np.zeros(4, np.int32)
flags = memory[::2]  # not contiguous: passed where it lies, so that the other thread sees flags[0] written
def fault():
    while memory[0] == 0:
        time.sleep(0.01)
    if how == "another thread's fault":
        ctypes.string_at(0)
    else:
        os.kill(os.getpid(), signal.SIGSEGV)
threading.Thread(target=fault).start()
module.get_function("wait")(1, 1, (flags,))
"""


@pytest.mark.parametrize("how", ["in the C library", "another thread's fault", "a SIGSEGV sent by kill"])
def test_a_fault_not_of_the_kernels_own_code_during_a_launch_is_a_crash_as_before(how):
    """The handler there was before (faulthandler's) takes it: the emulator's would jump into the launch from
    another thread, or out of a function of the C library that may hold a lock."""
    if reason := emu.missing():
        pytest.skip(reason)
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CRASHES, how], capture_output=True,
                         encoding="utf-8", timeout=120)
    assert run.returncode == -signal.SIGSEGV, (run.returncode, run.stdout, run.stderr)
    assert "Fatal Python error: Segmentation fault" in run.stderr and "LaunchError" not in run.stderr


def test_two_python_threads_launching_at_once_each_get_their_own_result(module):
    def launches(n: int, block: int, results: list) -> None:
        x = np.arange(4 * n, dtype=np.float64).reshape(4, n)
        for _ in range(20):
            out = emu.empty(4)
            module.get_function("row_sums")(4, block, (x, out, np.int64(n)), shared_mem=block * 8)
            results.append(np.array_equal(out, x.sum(axis=1)))

    results = [[], []]
    threads = [threading.Thread(target=launches, args=(n, block, r)) for n, block, r in [(50, 16, results[0]),
                                                                                             (300, 128, results[1])]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[True] * 20] * 2


FIRST_MODULES_AT_ONCE = r"""
import threading, time
import numpy as np
from minitransformer import cuda_emulator as emu
mapping, both_mapping = emu.mmap.mmap, threading.Barrier(2)
def waiting_mmap(*args):  # waits (2 s at most) for the other thread to map the stacks too: without a lock it does,
    try:                  # and maps them again once the first has kept its own
        if both_mapping.wait(timeout=2) == 0:
            time.sleep(1)
    except threading.BrokenBarrierError:
        pass
    return mapping(*args)
emu.mmap.mmap = waiting_mmap
at_once, results = threading.Barrier(2), {}
def first(a):
    source = 'extern "C" __global__ void times_k(float* x) { x[threadIdx.x] *= %d; }' % a
    at_once.wait()
    kernel = emu.RawModule(source, name=f"times{a}.cu").get_function("times_k")
    at_once.wait()  # both made: each launches on the stacks its library was given
    x = np.ones(8, dtype=np.float32)
    kernel(1, 8, (x,))
    results[a] = x.tolist()
threads = [threading.Thread(target=first, args=(a,)) for a in (2, 3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(results.items()))
"""


def test_two_threads_making_their_first_modules_at_once_share_one_set_of_stacks():
    """Without a lock both mapped the stacks and the first library kept the address of memory unmapped since: a
    crash (a fresh process: the stacks are made once in it)."""
    if reason := emu.missing():
        pytest.skip(reason)
    run = subprocess.run([sys.executable, "-c", FIRST_MODULES_AT_ONCE], capture_output=True, encoding="utf-8",
                         timeout=120)
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)
    assert run.stdout == f"{[(2, [2.0] * 8), (3, [3.0] * 8)]}\n"


LAUNCH_IN_A_HANDLER = r"""
import signal
import numpy as np
from minitransformer import cuda_emulator as emu
kernel = emu.RawModule('extern "C" __global__ void one(float* x) { x[threadIdx.x] = 1; }', name="one.cu"
                       ).get_function("one")
x = np.zeros(4, dtype=np.float32)
def handler(signum, frame):
    kernel(1, 4, (x,))
signal.signal(signal.SIGUSR1, handler)
run = kernel._run
def interrupted(*args):  # the signal arrives while the launch runs
    signal.raise_signal(signal.SIGUSR1)
    run(*args)
kernel._run = interrupted
try:
    kernel(1, 4, (x,))
except RuntimeError as e:
    print(e)
kernel._run = run
kernel(1, 4, (x,))  # the lock was let go
print(x.tolist())
"""


def test_a_launch_from_a_signal_handler_during_a_launch_is_refused_instead_of_hanging():
    if reason := emu.missing():
        pytest.skip(reason)
    run = subprocess.run([sys.executable, "-c", LAUNCH_IN_A_HANDLER], capture_output=True, encoding="utf-8",
                         timeout=120)
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)
    assert run.stdout == ("cuda_emulator: a launch inside a launch (from a signal handler?): one was launched while "
                          "this thread's launch in progress had not returned; launch after it returns\n"
                          "[1.0, 1.0, 1.0, 1.0]\n")


def test_a_cache_folder_others_may_write_to_is_refused_and_one_they_may_read_made_private(tmp_path, monkeypatch):
    monkeypatch.setattr(emu.tempfile, "gettempdir", lambda: str(tmp_path))
    folder = emu.cache_folder()
    assert folder.parent == tmp_path and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o755)  # others may read: nothing of theirs can be there
    assert emu.cache_folder() == folder and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)  # others may write: a library of theirs may be there
    with pytest.raises(RuntimeError, match=r"^cuda_emulator: the cache folder .*-cuda-emulator-\d+ may be written by "
                                           r"other users \(mode drwxrwxrwx\), who could put a library there that "
                                           r"this process would load; remove it \(rm -r "):
        emu.cache_folder()
    folder.chmod(0o700)
    folder.rename(tmp_path / "elsewhere")
    folder.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RuntimeError, match=r"is not a folder \(a link\?\)"):
        emu.cache_folder()
    (tmp_path / "elsewhere").rmdir()  # a link to nothing: the same, not mkdir's FileExistsError
    with pytest.raises(RuntimeError, match=r"is not a folder \(a link\?\)"):
        emu.cache_folder()
