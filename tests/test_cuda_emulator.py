"""``minitransformer.cuda_emulator``: CUDA kernels of one's own run on the CPU, and what the emulation refuses.

Each kernel here is small and says what it shows; the library's own kernels run on the emulator in
``tests/test_kernels.py``. Without g++ (or on Windows) these tests skip, but for the message that says so.
"""

from __future__ import annotations

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

__device__ double block_sum(double v, double* s) {
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
        __syncthreads();
    }
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
    assert module.kernels == ("scale", "row_sums", "racy_sum", "early_return", "where", "shifted", "histogram",
                              "unwritten", "shared_past")


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
    assert np.isnan(out[0]) or out[0] > 1e300  # the user's array is left as it was (the guard bytes of empty)


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
                                              r"4 entries of float32\)$"):
        shifted(1, 32, (x, out, np.int64(4), np.int64(0), np.int64(2)))
    with pytest.raises(emu.LaunchError, match=r"^shared_past: wrote past the shared memory it asked \(0 bytes"):
        module.get_function("shared_past")(1, 4, (emu.empty(4),), shared_mem=0)
    with pytest.raises(emu.LaunchError, match=r"wrote past the shared memory it asked \(32 bytes"):
        module.get_function("shared_past")(1, 4, (emu.empty(4),), shared_mem=32)


def test_a_fixed_shared_array_and_atomics_work_as_on_a_gpu(module):
    x = np.array([0, 1, 1, 3, 3, 3, 2, 0, 3], dtype=np.int32)
    counts = emu.empty(4, np.int32)
    module.get_function("histogram")(1, 4, (x, counts, np.int64(9)))
    np.testing.assert_array_equal(counts, np.bincount(x, minlength=4))


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
    ((np.ones(3, np.float32), np.ones(3, np.float32), np.float32(1), np.int32(3)),
     r"^scale: argument 3 \(long long n\) is int64; got int32"),
    ((np.ones(3, np.float32), np.ones(3, np.float32), np.float32(1)),
     r"^scale: 3 arguments for its 4 parameters \(const float\* x, float\* y, float a, long long n\)$"),
])
def test_arguments_of_the_wrong_type_are_refused_naming_the_parameter(module, args, message):
    with pytest.raises(ValueError, match=message):
        module.get_function("scale")(1, 32, args)


@pytest.mark.parametrize("grid, block, shared, message", [
    (0, 32, 0, r"^scale: a grid of \(0, 1, 1\) blocks of \(32, 1, 1\) threads \(CUDA: invalid configuration"),
    (1, 2048, 0, r"^scale: 2048 threads in a block \(2048, 1, 1\) \(CUDA allows 1024"),
    (1, (32, 32, 2), 0, r"^scale: 2048 threads"),
    (1, 32, 64 * 1024, r"^scale: 65536 bytes of dynamic shared memory"),
    ((1, 1, 1, 1), 32, 0, r"^scale: the grid is an int or a tuple of 1 to 3 ints"),
])
def test_a_launch_a_gpu_refuses_is_refused(module, grid, block, shared, message):
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=message):
        module.get_function("scale")(grid, block, (x, x, np.float32(1), np.int64(3)), shared_mem=shared)


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
