r"""Run a CUDA kernel on the CPU: CUDA's blocks, threads, shared memory and barriers, emulated, for learning.

A CUDA C++ source (``extern "C" __global__`` kernels, ``__device__`` helpers, ``extern __shared__`` memory) is
compiled by ``g++`` after a prelude that defines ``threadIdx``, ``blockIdx``, ``blockDim``, ``gridDim``,
``__syncthreads()`` and the warp-level operations, and launched from Python with NumPy arrays, as CuPy launches it
on a GPU: the same calls, :class:`RawModule` for ``cupy.RawModule``::

    module = RawModule(code=source)
    module.get_function("scale")((blocks,), (threads,), (x, y, np.float32(2.0), np.int64(n)))

How it runs. The blocks of a grid run one after another. In a block, each CUDA thread is a fiber (``ucontext``)
with a stack of its own, run in turn up to its next ``__syncthreads()``; a round ends when every thread has
arrived, so none passes a barrier before all have reached it, as on a GPU. A kernel whose first thread ends
without meeting a barrier (an elementwise one) runs its other threads one after another, with no fiber, on the
launching thread's stack (a fiber for each made a launch of 64 blocks of 1,024 threads 28 times slower: each switch
to a fiber and back calls the system, to save and restore the signal mask); one that may call a warp operation (it
names one, or names a ``__device__`` function or a macro that does, or one that names such a one, and so on) runs
every thread as a fiber, one warp after another (below).

Warps. A warp is the block's threads 32w to 32w + 31 by their linear index (x fastest, then y, z), as on a GPU.
``__shfl_sync``, ``__shfl_up_sync``, ``__shfl_down_sync`` and ``__shfl_xor_sync`` (with ``width``; of ``int``,
``unsigned``, ``long long``, ``unsigned long long``, ``float``, ``double``), ``__syncwarp``, ``__ballot_sync``,
``__any_sync``, ``__all_sync``, ``__reduce_add_sync``, ``_min``, ``_max`` (``int``, ``unsigned``), ``_and``,
``_or``, ``_xor``, and ``__match_any_sync`` and ``__match_all_sync`` (of the shuffles' types and ``long``,
``unsigned long``; values compare by their bits, as PTX's ``match.sync.b32`` and ``.b64`` do: ``-0.0f`` and ``0.0f``
differ, a NaN matches the same NaN) are each a barrier for the lanes its mask names: a lane deposits its value and
waits; once every lane named has come to the same operation with the same mask and a value of the same size (or
ended: CUDA counts only the lanes that have not exited), the results are computed together from the values
deposited, as PTX's ``shfl``, ``vote``, ``redux`` and ``match`` compute them, and those lanes run on. What a GPU
leaves undefined stops the launch, a :class:`LaunchError` naming the block, the thread, its lane and warp, and the
operation: a mask that does not name the caller's own lane, a width that is not a power of two from 1 to 32, a lane
the mask names that waits elsewhere (at a ``__syncthreads()``, another operation, the same one with another mask or
a value of another size or signedness: a GPU hangs or is undefined) or that came to the same one with another mask
while the others waited and then ended, and a shuffle that reads a lane not taking part in it (one the mask does not
name, one that ended, one past the block's end in a block that is not a whole number of warps): an error, not a
made-up value, since the value a GPU gives there is undefined. ``__popc``, ``__ffs``, ``__clz``, ``__brev`` and
their ``ll`` forms count a ballot's lanes.

A block runs warp by warp, in the launch's order: a warp's lanes run, one at a time, until none of them may run (all
wait at a ``__syncthreads()``, at a warp operation whose lanes have not all come, or ended), and only then the next
warp's; a warp operation done lets its lanes run on before the lanes that had not come to it. So a warp operation
orders only the lanes its mask names, as on a GPU: a ``__syncwarp()`` or a shuffle where a ``__syncthreads()``
belongs (a warp reading what another wrote) is a race, caught by the two orders, as is code that counts on a warp's
lanes running in step (the old "volatile" tree in shared memory with no ``__syncwarp()``). What a shuffle leaves
unsaid of memory is not checked (a lane that reads another's shared memory after a ``__shfl_sync`` alone, with no
``__syncwarp()``, reads what was written before it, as the lanes ran in turn).

What it checks, where a CPU would forgive what a GPU gets wrong (each a :class:`LaunchError` naming the kernel):

- **a race**: each launch runs twice from the same arrays, blocks and threads last to first, then first to
  last, and the two results must agree to the bit (a GPU promises neither order); the message names the
  argument and the entry that differ, and their two values. Two orders are not every order: this catches the usual
  races (a barrier missing), not every one (threads adding into one variable without an atomic agree in both orders
  on whole numbers); and a kernel that adds floats with ``atomicAdd`` may differ in the last digits though correct
  (its message then says so);
- **a barrier not every thread reaches** (inside an ``if``, or a loop the threads go round different numbers of
  times): the message names the block, a thread that waits there and one that ended first;
- **a write past an array or past the shared memory asked for**: each contiguous array is copied into a buffer
  with :data:`GUARD_BYTES` guard bytes before and after, filled with :data:`GUARD_BYTE` (0x7F: 3.4e38 as a float,
  1.4e306 as a double), and so is the shared memory past ``shared_mem``; a kernel that *reads* there gets a huge
  number that a sum or a maximum cannot hide, and a write there is caught after the launch. A ``__shared__`` array
  or number of a fixed size declared alone (``__shared__ float buf[128];``, not ``float a[4], b[4];``) lies between
  guard bytes too, :data:`GUARD_BYTES` before and :data:`MAX_DYNAMIC_SHARED` after (all a block's shared memory
  may hold), checked after each block: a write past it is named with its declaration, where it would land on the
  emulation's own memory;
- **an entry never written**: :func:`empty` gives arrays filled with the same bytes, as ``cupy.empty`` gives
  memory that holds whatever was there;
- **a fault**, which stops the launch, as a GPU stops a kernel with "an illegal memory access" (the message names
  the thread and its block): a read or write far outside every array (at an address where no memory is), a stack
  overflow (each fiber has a stack of :data:`STACK_BYTES` above a page no thread may touch: a local array of more
  than some thousands of numbers passes it, where it would write over another thread's; keep such an array in shared
  or global memory; a thread run without a fiber has the launching thread's stack, and passing its end is named a
  stack overflow too), and, on x86-64, an integer division by zero, where the processor traps (an ARM64 one gives 0
  and runs on; a GPU runs on too, with an unspecified number: PTX's ``div`` and ``rem`` by zero give "an unspecified,
  machine-specific value");
- **what a GPU refuses** (a :class:`ValueError`): no blocks, more than :data:`MAX_THREADS` threads in a block,
  more than :data:`MAX_DYNAMIC_SHARED` bytes of dynamic shared memory, and an argument of the wrong type (a
  float64 array for a ``float*``, a Python float for a ``float``: CuPy would pass 8 bytes where the kernel reads 4).

A body not written yet can call ``not_implemented("message")``: the launch then raises
``NotImplementedError(message)`` (assignment A7's student copy has such stubs).

Subnormals. CuPy compiles every kernel with ``-ftz=true``: a float's subnormal (below ``FLT_MIN``, 1.2e-38), read as
an operand or computed, is taken as a zero of its sign (a copy moves the bits as they are). A launch of a kernel that
takes a float (a ``float*`` or a ``float``) does the same here, with the processor's own switches, on during the
launch only (x86-64's MXCSR FTZ and DAZ, ARM64's FPCR.FZ): ``1e-30f * 1e-10f`` is 0, as on a GPU. The switches
flush doubles too (below 2.2e-308), which a GPU does not; a kernel that takes no float runs without them, and keeps
its doubles' subnormals.

What it does not emulate: ``__activemask()`` (the lanes that run together at that moment: here none do), the
shuffles and votes without a mask (``__shfl_down``: gone since CUDA 9 on Volta and later), cooperative groups,
textures, streams, the timing of a GPU, and the contraction of ``a * b + c`` into one fused multiply-add (one
rounding) that CUDA's compiler makes: a kernel's float results may differ from a GPU's in the last bits. Atomics
(``atomicAdd``, ...) are plain read-modify-writes: threads never run at once here. An access outside an array that
lands in memory the process has (past the guard bytes, in another array or Python's objects) is not caught: a read
gets what lies there, a write overwrites it. One launch runs at a time: a Python thread that launches while
another's launch runs waits for it.

How a fault stops a launch. While a launch runs, and then only (Python's ``faulthandler`` and any other handler are
put back after it), a handler of ``SIGSEGV``, ``SIGBUS`` and ``SIGFPE`` in the compiled library, on a signal stack
of its own (the thread's stack may be the one that overflowed), records the address, the block and the thread, and
jumps back (``siglongjmp``, which restores the signal mask) to the launcher: the launch returns, the error is
raised, and the next launch starts afresh (the jump skips the C++ destructors of the kernel's frames: a CUDA kernel's
variables have none). It takes the faults of the kernel's own code only; these it leaves to the handler there was
before (a crash, as without it): one in a function of the C library the kernel called (``printf`` or ``memcpy`` with
a wild pointer: jumping out of the C library might leave a lock of its held, and a later call hang), one in another
Python thread, one in the emulator's scheduler, a signal sent by ``kill``, a fault while the handler itself runs (the
three signals are blocked there, so the system ends the process), and every fault on a system other than Linux on
x86-64 or ARM64, where the handler does not know where the faulting instruction lies.

It needs ``g++`` (C++20) and ``ucontext`` (Linux; :func:`missing` says why not, :data:`INSTALL` what to install).
Each source is compiled once and kept in :func:`cache_folder` (a folder of the temporary folder), so a second
:class:`RawModule` of the same source costs nothing.

Examples
--------
>>> import numpy as np
>>> from minitransformer import cuda_emulator
>>> source = r'''
... extern "C" __global__ void scale(const float* x, float* y, float a, long long n) {
...     long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
...     if (i < n) y[i] = a * x[i];
... }'''
>>> x = np.arange(5, dtype=np.float32)
>>> y = cuda_emulator.empty(5, np.float32)
>>> scale = cuda_emulator.RawModule(code=source).get_function("scale")  # doctest: +SKIP
>>> scale((2,), (4,), (x, y, np.float32(2.0), np.int64(5)))  # 2 blocks of 4 threads  # doctest: +SKIP
>>> y  # doctest: +SKIP
array([0., 2., 4., 6., 8.], dtype=float32)
"""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

__all__ = ["RawModule", "Kernel", "LaunchError", "CompileError", "empty", "missing", "cache_folder", "INSTALL",
           "GUARD_BYTE", "GUARD_BYTES", "MAX_THREADS", "MAX_DYNAMIC_SHARED", "STACK_BYTES"]

#: the most threads a GPU allows in a block
MAX_THREADS = 1024
#: dynamic shared memory a launch may ask for without opting in to more (bytes), as on every GPU since 2010
MAX_DYNAMIC_SHARED = 48 * 1024
#: the byte that fills memory a kernel must not read before writing (guards, new arrays, shared memory)
GUARD_BYTE = 0x7F
#: guard bytes before and after each array a launch copies, and after the shared memory asked for
GUARD_BYTES = 64
#: the stack of each emulated thread in bytes, room for a few thousand local numbers (a LaunchError past it)
STACK_BYTES = 64 * 1024
#: what to install where :func:`missing` says the emulation cannot run
INSTALL = "sudo apt install g++ (Debian, Ubuntu; the emulation is tried on Linux only)"
#: g++'s command line, without the files (``-Bsymbolic`` binds each launcher's call to the kernel of its own
#: library, even one named like a function of the C library, ``times``, which it would call instead)
COMPILER = ["g++", "-std=c++20", "-O1", "-shared", "-fPIC", "-fstack-clash-protection", "-Wall", "-Wl,-z,defs",
            "-Wl,-Bsymbolic"]


def _compiler(machine: str) -> list[str]:
    """:data:`COMPILER` for a processor (``platform.machine()``): on ARM64, g++'s stack-clash protection assumes a
    64 KiB guard below a stack and probes a frame only past it; each thread's guard here is one page, so it is told
    4 KiB (2^12): a frame under 64 KiB then faults on the guard instead of writing over the next thread's stack."""
    arm64 = machine.lower() in ("aarch64", "arm64")
    return [*COMPILER, *(("--param", "stack-clash-protection-guard-size=12") if arm64 else ())]


class LaunchError(AssertionError):
    """A launch broke a rule of CUDA that the emulation checks: a race, a barrier not every thread of a block
    reaches, a write past an array or past the shared memory asked for, a fault (a stack overflow, a read or write far
    outside every array, an integer division by zero on x86-64).

    An ``AssertionError``, as ``numpy.testing``'s failures are: a test that launches a wrong kernel fails on it.

    >>> issubclass(LaunchError, AssertionError)
    True
    """


class CompileError(RuntimeError):
    """The source does not compile for the emulation: the message holds ``g++``'s errors, by the source's lines.

    >>> issubclass(CompileError, RuntimeError)
    True
    """


def missing() -> str:
    """Why the emulation cannot run here, or "" where it can: it needs ``g++`` and ``ucontext`` (POSIX: Linux).

    >>> missing() in ("", "g++ is not installed: the CPU emulation of the CUDA kernels needs it")
    True
    """
    if sys.platform == "win32":
        return "the CPU emulation of the CUDA kernels needs g++ and ucontext (POSIX: Linux): not on Windows"
    if shutil.which("g++") is None:
        return "g++ is not installed: the CPU emulation of the CUDA kernels needs it"
    return ""


def empty(shape, dtype=np.float64) -> np.ndarray:
    """A new array of ``shape`` and ``dtype`` filled with :data:`GUARD_BYTE` bytes: an entry a kernel never writes
    shows (3.4e38 as a float32, 1.4e306 as a float64), where ``np.empty`` might hold a plausible number.

    >>> empty((2,), np.float32)
    array([3.3961514e+38, 3.3961514e+38], dtype=float32)
    """
    dtype = np.dtype(dtype)
    shape = (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(n) for n in shape)
    return np.full(int(np.prod(shape)) * dtype.itemsize, GUARD_BYTE, dtype=np.uint8).view(dtype).reshape(shape)


def cache_folder() -> Path:
    """Where the compiled sources are kept: ``minitransformer-cuda-emulator-<user>`` in the temporary folder, made
    readable by its owner only (a library found there is loaded into the process).

    Raises
    ------
    RuntimeError
        Where the folder is not to be trusted: a link, another user's, or one that others may write to (a library
        they put there would be loaded). One that others may only read is made its owner's alone.

    Examples
    --------
    >>> cache_folder().name.startswith("minitransformer-cuda-emulator-")
    True
    """
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    folder = Path(tempfile.gettempdir()) / f"minitransformer-cuda-emulator-{user}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except FileExistsError:  # not a folder there (a file, a link to nothing): refused below, saying so
        if not hasattr(os, "getuid"):
            raise
    if not hasattr(os, "getuid"):
        return folder
    found = folder.lstat()
    refused = ("is not a folder (a link?)" if not stat.S_ISDIR(found.st_mode) else
               "belongs to another user" if found.st_uid != os.getuid() else
               f"may be written by other users (mode {stat.filemode(found.st_mode)}), who could put a library there "
               "that this process would load" if found.st_mode & 0o022 else "")
    if refused:
        raise RuntimeError(f"cuda_emulator: the cache folder {folder} {refused}; remove it (rm -r {folder}), and it "
                           "is made again, readable by its owner only")
    if found.st_mode & 0o077:  # readable by others, written by us alone: nothing there that we did not put
        folder.chmod(0o700)
    return folder


# ------------------------------------------------------------------ the C++ around the source
_PRELUDE = r"""
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#if defined(__linux__)
#include <link.h>  // dl_iterate_phdr: where the library's code lies (the launcher's handler of faults)
#endif
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#if defined(__x86_64__)
#include <xmmintrin.h>  // _mm_getcsr, _mm_setcsr: the switches that flush subnormals (emu_flushing)
#endif
struct dim3 { unsigned int x = 1, y = 1, z = 1; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;  // one CUDA thread runs at a time: it sees its own threadIdx
static const int warpSize = 32;
static void __syncthreads();  // the running thread waits for the block's other threads (emu_run_block below)
// a body not written yet calls it: the launch raises NotImplementedError(message)
static const char* emu_stub = nullptr;
[[maybe_unused]] static void not_implemented(const char* message) {
    if (!emu_stub) emu_stub = message;
}
// the dynamic shared memory (extern __shared__ arrays all start here), and guard bytes after the most a launch asks
alignas(16) static unsigned char emu_shared[EMU_SHARED_BYTES + EMU_GUARD_BYTES];
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
// a __shared__ variable of a fixed size (in a kernel, a __device__ function or outside them): one for the block,
// as on a GPU (one block runs at a time here), kept in a section of its own that each block starts filled with
// the guard bytes, as it starts with what the last kernel left on a GPU
#define __shared__ static __attribute__((section("emu_static_shared")))
// such an array or number declared alone (T name[N];: cuda_emulator.py rewrites the line, _FIXED_SHARED) is the v of
// an emu_guarded, between guard bytes: EMU_GUARD_BYTES before it and, after it, as many as a block's shared memory
// may hold, so that a write past it (an index past its size) lands there, not on the emulation's own memory, and is
// named at the block's end (emu_run_grid); emu_named lists each the first time its line runs
template <class V> struct emu_guarded {
    unsigned char before[EMU_GUARD_BYTES];
    V v;
    unsigned char after[EMU_SHARED_BYTES];
};
struct emu_static_array { const char* declared; const unsigned char* before; const unsigned char* after; };
static emu_static_array emu_statics[256];
static int emu_static_count = 0;
template <class V> static V& emu_named(emu_guarded<V>& g, const char* declared) {
    if (emu_static_count < 256) emu_statics[emu_static_count++] = {declared, g.before, g.after};
    return g.v;
}
#define __align__(n) alignas(n)
#define __launch_bounds__(...)
// CUDA's max and min: overloads for each type and mixed pairs, of the wider type (CUDA's float ones are fmaxf's)
template <class A, class B> static inline std::common_type_t<A, B> max(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return fmax((C)a, (C)b);
    else return (C)a > (C)b ? (C)a : (C)b;
}
template <class A, class B> static inline std::common_type_t<A, B> min(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return fmin((C)a, (C)b);
    else return (C)a < (C)b ? (C)a : (C)b;
}
// CUDA's math functions that C's lacks, and its intrinsics (fast, less exact on a GPU; here the exact functions).
// glibc declares some of these names (__expf, __powf, ...) for itself: they are macros, to emu_ functions
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
static inline double rcbrt(double x) { return 1.0 / cbrt(x); }
static inline float fdividef(float a, float b) { return a / b; }
static inline float emu_saturate(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }  // NaN: 0, as CUDA's
static inline float emu_sincosf(float x, float* s, float* c) { *s = sinf(x), *c = cosf(x); return 0; }
static inline float emu_float(float x) { return x; }
static inline double emu_double(double x) { return x; }
#define __expf(x) expf(x)
#define __exp10f(x) exp10f(x)
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __powf(x, y) powf(x, y)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __sincosf(x, s, c) ((void)emu_sincosf(x, s, c))
#define __fdividef(x, y) (emu_float(x) / emu_float(y))
#define __saturatef(x) emu_saturate(x)
#define __frcp_rn(x) (1.0f / emu_float(x))
#define __fsqrt_rn(x) sqrtf(x)
#define __frsqrt_rn(x) rsqrtf(x)
#define __fdiv_rn(x, y) (emu_float(x) / emu_float(y))
#define __fadd_rn(x, y) (emu_float(x) + emu_float(y))
#define __fsub_rn(x, y) (emu_float(x) - emu_float(y))
#define __fmul_rn(x, y) (emu_float(x) * emu_float(y))
#define __fmaf_rn(x, y, z) fmaf(x, y, z)
#define __drcp_rn(x) (1.0 / emu_double(x))
#define __dsqrt_rn(x) sqrt(x)
#define __ddiv_rn(x, y) (emu_double(x) / emu_double(y))
#define __dadd_rn(x, y) (emu_double(x) + emu_double(y))
#define __dsub_rn(x, y) (emu_double(x) - emu_double(y))
#define __dmul_rn(x, y) (emu_double(x) * emu_double(y))
#define __fma_rn(x, y, z) fma(x, y, z)
// the bits of a number as another type's (CUDA's __float_as_int, ...), and rounding to an integer
template <class To, class From> static inline To emu_bits(From x) {
    static_assert(sizeof(To) == sizeof(From));
    To y;
    memcpy(&y, &x, sizeof y);
    return y;
}
#define __float_as_int(x) emu_bits<int>(emu_float(x))
#define __float_as_uint(x) emu_bits<unsigned int>(emu_float(x))
#define __int_as_float(x) emu_bits<float>((int)(x))
#define __uint_as_float(x) emu_bits<float>((unsigned int)(x))
#define __double_as_longlong(x) emu_bits<long long>(emu_double(x))
#define __longlong_as_double(x) emu_bits<double>((long long)(x))
#define __float2int_rn(x) ((int)lrintf(x))
#define __double2int_rn(x) ((int)lrint(x))
#define __int2float_rn(x) ((float)(x))
// CUDA's constants (math_constants.h) that its kernels use most
#define CUDART_INF_F HUGE_VALF
#define CUDART_INF HUGE_VAL
#define CUDART_NAN_F NAN
#define CUDART_NAN ((double)NAN)
#define CUDART_PI_F 3.141592654f
#define CUDART_PI 3.1415926535897931e+0
// CUDA's bit intrinsics (a ballot's lanes are counted with them): GCC's builtins, and __clz(0) 32 as on a GPU (where
// __builtin_clz(0) is undefined)
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned int)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
template <class U> static inline U emu_bit_reverse(U x) {
    U y = 0;
    for (unsigned i = 0; i < 8 * sizeof(U); ++i, x >>= 1) y = (U)(y << 1 | (x & 1));
    return y;
}
static inline unsigned int __brev(unsigned int x) { return emu_bit_reverse(x); }
static inline unsigned long long __brevll(unsigned long long x) { return emu_bit_reverse(x); }
template <class V> static inline V __ldg(const V* p) { return *p; }
static inline void __threadfence() {}
static inline void __threadfence_block() {}
// atomics: one thread runs at a time, so a read-modify-write is atomic; v of p's type (an int 1 to a float* too)
template <class V> using emu_same = std::type_identity_t<V>;
template <class V> static V atomicAdd(V* p, emu_same<V> v) { V old = *p; *p = old + v; return old; }
template <class V> static V atomicSub(V* p, emu_same<V> v) { V old = *p; *p = old - v; return old; }
template <class V> static V atomicMax(V* p, emu_same<V> v) { V old = *p; *p = old > v ? old : v; return old; }
template <class V> static V atomicMin(V* p, emu_same<V> v) { V old = *p; *p = old < v ? old : v; return old; }
template <class V> static V atomicExch(V* p, emu_same<V> v) { V old = *p; *p = v; return old; }
template <class V> static V atomicAnd(V* p, emu_same<V> v) { V old = *p; *p = old & v; return old; }
template <class V> static V atomicOr(V* p, emu_same<V> v) { V old = *p; *p = old | v; return old; }
template <class V> static V atomicXor(V* p, emu_same<V> v) { V old = *p; *p = old ^ v; return old; }
template <class V> static V atomicCAS(V* p, emu_same<V> compare, emu_same<V> v) {
    V old = *p;
    if (old == compare) *p = v;
    return old;
}// warp-level operations: each is a barrier for the lanes its mask names (emu_warp in the launcher below: the lanes
// deposit their values, and once every lane named has come the results are computed together, as on a GPU); their
// codes (enum emu_warp_op: EMU_SYNCWARP, EMU_SHFL, ...) come before the prelude, from _WARP_OPERATIONS in
// cuda_emulator.py
static unsigned long long emu_warp(int op, unsigned mask, unsigned long long bits, int kind, int arg, int width);
// what a shuffle or a match carries: an integer narrower than int goes as an int (CUDA's overloads: int, unsigned,
// long, unsigned long, long long, unsigned long long, float, double)
template <class V> using emu_shuffled = std::conditional_t<std::is_integral_v<V> && sizeof(V) < sizeof(int), int, V>;
// the bits of what a shuffle or a match carries (emu_shuffled), in the low bytes: its kind is their number
template <class S> static unsigned long long emu_carried(S v) {
    static_assert(std::is_arithmetic_v<S> && (sizeof(S) == 4 || sizeof(S) == 8), "a warp shuffle or match takes a "
                  "number of 4 or 8 bytes");
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof v);
    return bits;
}
template <class V> static emu_shuffled<V> emu_shuffle(int op, unsigned mask, V var, int arg, int width) {
    emu_shuffled<V> v = (emu_shuffled<V>)var;
    unsigned long long bits = emu_warp(op, mask, emu_carried(v), sizeof v, arg, width);
    memcpy(&v, &bits, sizeof v);
    return v;
}
template <class V> static emu_shuffled<V> __shfl_sync(unsigned mask, V var, int src_lane, int width = warpSize) {
    return emu_shuffle(EMU_SHFL, mask, var, src_lane, width);
}
template <class V> static emu_shuffled<V> __shfl_up_sync(unsigned mask, V var, unsigned delta, int width = warpSize) {
    return emu_shuffle(EMU_SHFL_UP, mask, var, (int)delta, width);  // (PTX's shfl takes its 5 low bits: emu_source)
}
template <class V> static emu_shuffled<V> __shfl_down_sync(unsigned mask, V var, unsigned delta, int width = warpSize) {
    return emu_shuffle(EMU_SHFL_DOWN, mask, var, (int)delta, width);
}
template <class V> static emu_shuffled<V> __shfl_xor_sync(unsigned mask, V var, int lane_mask, int width = warpSize) {
    return emu_shuffle(EMU_SHFL_XOR, mask, var, lane_mask, width);
}
[[maybe_unused]] static void __syncwarp(unsigned mask = 0xffffffffu) { emu_warp(EMU_SYNCWARP, mask, 0, 4, 0, 32); }
[[maybe_unused]] static unsigned __ballot_sync(unsigned mask, int predicate) {
    return (unsigned)emu_warp(EMU_BALLOT, mask, predicate != 0, 4, 0, 32);
}
[[maybe_unused]] static int __any_sync(unsigned mask, int predicate) {
    return (int)emu_warp(EMU_ANY, mask, predicate != 0, 4, 0, 32);
}
[[maybe_unused]] static int __all_sync(unsigned mask, int predicate) {
    return (int)emu_warp(EMU_ALL, mask, predicate != 0, 4, 0, 32);
}
// the reductions of compute capability 8.0 on: add, min and max of int or unsigned, and, or and xor of unsigned
// (kind -4: a signed int, 4: an unsigned)
#define EMU_REDUCE(name, op)                                                                                         \
    [[maybe_unused]] static unsigned name(unsigned mask, unsigned value) {                                           \
        return (unsigned)emu_warp(op, mask, value, 4, 0, 32);                                                        \
    }
#define EMU_REDUCE_SIGNED(name, op)                                                                                  \
    EMU_REDUCE(name, op)                                                                                             \
    [[maybe_unused]] static int name(unsigned mask, int value) {                                                     \
        return (int)emu_warp(op, mask, (unsigned)value, -4, 0, 32);                                                  \
    }
EMU_REDUCE_SIGNED(__reduce_add_sync, EMU_REDUCE_ADD)
EMU_REDUCE_SIGNED(__reduce_min_sync, EMU_REDUCE_MIN)
EMU_REDUCE_SIGNED(__reduce_max_sync, EMU_REDUCE_MAX)
EMU_REDUCE(__reduce_and_sync, EMU_REDUCE_AND)
EMU_REDUCE(__reduce_or_sync, EMU_REDUCE_OR)
EMU_REDUCE(__reduce_xor_sync, EMU_REDUCE_XOR)
// the matches of compute capability 7.0 on (PTX's match.sync .b32 or .b64: values compare by their bits, so -0.0f and
// 0.0f differ and a NaN matches the same NaN): the lanes whose value is the caller's, and the lanes if all are equal
template <class V> static unsigned __match_any_sync(unsigned mask, V value) {
    emu_shuffled<V> v = (emu_shuffled<V>)value;
    return (unsigned)emu_warp(EMU_MATCH_ANY, mask, emu_carried(v), sizeof v, 0, 32);
}
template <class V> static unsigned __match_all_sync(unsigned mask, V value, int* pred) {
    emu_shuffled<V> v = (emu_shuffled<V>)value;
    unsigned lanes = (unsigned)emu_warp(EMU_MATCH_ALL, mask, emu_carried(v), sizeof v, 0, 32);
    *pred = lanes != 0;
    return lanes;
}
"""

_LAUNCHER = r"""
static const size_t EMU_STACK = EMU_STACK_BYTES;
static ucontext_t emu_scheduler, emu_template;
static std::vector<ucontext_t> emu_fibers;
static char* emu_stacks = nullptr;  // thread t's stack at emu_stacks + t emu_stack_step, above a guard page
static size_t emu_stack_step = 0;
static std::function<void()> emu_kernel;
static bool emu_finished, emu_direct;
static long long emu_thread, emu_block, emu_first;
static unsigned int emu_grid[3], emu_threads[3];
static size_t emu_shared_asked;
static int emu_reversed;
static bool emu_flush;  // the kernel takes a float: its float subnormals are flushed to zero (emu_flushing)
static bool emu_warps;  // the kernel may call a warp operation: every thread a fiber, no direct run (emu_run_block)
// a barrier not every thread reaches: the block, a thread that ended, one that waits at a barrier (-1: none)
static long long emu_diverged[3] = {-1, -1, -1};
// where each thread of the block is (emu_run_fibers): it may run, it waits at a __syncthreads() or at a warp
// operation, it ended; (EMU_MISSING: a lane past the block's end, in the failures of emu_warp_failure): enum
// emu_where, before the prelude, from _WHERE in cuda_emulator.py
static char emu_state[EMU_MAX_THREADS];
// what a thread waiting at a warp operation deposited (its value's bits, its kind: the bytes, negative where
// signed; a shuffle's lane, delta or lane mask, and width) and, once the operation is done, its result; when it came
// and when it left (emu_clock's), kept after, until its next one
struct emu_lane {
    int op;
    unsigned mask;
    unsigned long long bits, result;
    int kind, arg, width;
    long long came, left;
};
static long long emu_clock;  // counts the arrivals at and departures from warp operations
static emu_lane emu_lanes[EMU_MAX_THREADS];
static long long emu_n;  // threads in a block
// a warp operation that broke a rule (its code, then: the block, the thread, its operation, mask and width, the
// other thread at fault, where that one is, its operation and its mask; the thread's argument (a shuffle's lane,
// delta or lane mask) and kind, the other's kind; 0: none): it stops the launch (the codes, enum emu_warp_rule,
// before the prelude, from _WARP_RULES in cuda_emulator.py)
static long long emu_warp_failure[EMU_FAILURE_LENGTH];

extern "C" void emu_configure(unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                              unsigned int bz, size_t shared_asked, int reversed, int warps, int flush) {
    emu_grid[0] = gx, emu_grid[1] = gy, emu_grid[2] = gz;
    emu_threads[0] = bx, emu_threads[1] = by, emu_threads[2] = bz;
    emu_shared_asked = shared_asked;
    emu_reversed = reversed;
    emu_warps = warps;
    emu_flush = flush;
}
extern "C" unsigned char* emu_shared_memory() { return emu_shared; }
extern "C" void emu_use_stacks(char* stacks, size_t page) {  // the process's stacks (_stacks in cuda_emulator.py)
    emu_stacks = stacks + page, emu_stack_step = page + EMU_STACK;
}
extern "C" const char* emu_stub_reached() {  // the message of the first stub the last launch reached, or NULL
    const char* message = emu_stub;
    emu_stub = nullptr;
    return message;
}
extern "C" const long long* emu_divergence() { return emu_diverged; }
extern "C" const long long* emu_warp_failed() { return emu_warp_failure; }

// the i-th of n in the launch's order: first to last, or last to first (a GPU promises neither)
static long long emu_nth(long long i, long long n) { return emu_reversed ? n - 1 - i : i; }

static void emu_diverge(long long ended, long long waiting) {
    if (emu_diverged[0] < 0) emu_diverged[0] = emu_block, emu_diverged[1] = ended, emu_diverged[2] = waiting;
}

// A fault in the kernel's code (a stack overflow into a guard page or past the launcher's stack, a read or write where
// nothing is mapped, an integer division by zero on x86-64) while a launch runs: emu_on_fault, on a signal stack of
// its own (the thread's may be the one that overflowed), records it and jumps back to emu_launch, which returns 1.
// Any other fault (another thread's, one in the C library's code, whose locks the jump would leave held, one sent by
// kill) goes to the handler of before the launch, as if this one were not there. Installed by emu_launch only while
// the launch runs.
static const int emu_fault_signals[3] = {SIGSEGV, SIGBUS, SIGFPE};
static struct sigaction emu_previous[3];
static stack_t emu_previous_stack;
static bool emu_own_stack;  // whether emu_launch put emu_signal_stack in place (and puts the previous one back)
alignas(16) static char emu_signal_stack[1 << 16];
static sigjmp_buf emu_fault_jump;
static pthread_t emu_launcher;  // the thread running the launch
static volatile sig_atomic_t emu_in_kernel = 0;  // 1 while a CUDA thread runs (not the scheduler)
static uintptr_t emu_own_code[2];  // where this library's code lies: a fault there is the kernel's (or the emulator's)
// the last fault's signal, address, block, thread, si_code, stack pointer, and whether the thread ran on the
// launcher's own stack (emu_direct: every thread but a block's first in a kernel without barriers) or its fiber's
static long long emu_fault_info[7];

#if defined(__linux__)  // elsewhere no code is known as this library's: every fault is left to the handler of before
static int emu_find_code(dl_phdr_info* info, size_t, void*) {  // the executable segment that holds this function
    uintptr_t self = (uintptr_t)&emu_find_code;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + segment.p_vaddr;
        if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) && start <= self && self < start + segment.p_memsz) {
            emu_own_code[0] = start, emu_own_code[1] = start + segment.p_memsz;
            return 1;
        }
    }
    return 0;
}
#endif

// the faulting instruction's address and the stack pointer there (0 and 0 where this machine's are not known here)
static void emu_registers(void* context, uintptr_t& pc, uintptr_t& sp) {
    const ucontext_t* at = static_cast<const ucontext_t*>(context);
#if defined(__linux__) && defined(__x86_64__)
    pc = (uintptr_t)at->uc_mcontext.gregs[REG_RIP], sp = (uintptr_t)at->uc_mcontext.gregs[REG_RSP];
#elif defined(__linux__) && defined(__aarch64__)
    pc = (uintptr_t)at->uc_mcontext.pc, sp = (uintptr_t)at->uc_mcontext.sp;
#else
    pc = sp = 0 * (uintptr_t)at;
#endif
}

static void emu_on_fault(int sig, siginfo_t* info, void* context) {
    uintptr_t pc, sp;
    emu_registers(context, pc, sp);
    if (emu_in_kernel && info->si_code > 0 && pthread_equal(pthread_self(), emu_launcher) && emu_own_code[0] <= pc &&
        pc < emu_own_code[1]) {
        emu_in_kernel = 0;
        emu_fault_info[0] = sig, emu_fault_info[1] = (long long)(uintptr_t)info->si_addr;
        emu_fault_info[2] = emu_block, emu_fault_info[3] = emu_thread, emu_fault_info[4] = info->si_code;
        emu_fault_info[5] = (long long)sp, emu_fault_info[6] = emu_direct;
        siglongjmp(emu_fault_jump, 1);  // and the signal mask of emu_launch's sigsetjmp, which blocks none of these
    }
    for (int k = 0; k < 3; ++k)  // not the kernel's: the handler of before takes it, the instruction run again
        if (emu_fault_signals[k] == sig) sigaction(sig, &emu_previous[k], nullptr);
    if (info->si_code <= 0) raise(sig);  // sent, not a fault: sent again (blocked here, it arrives on return)
}

static void emu_catch_faults() {
#if defined(__linux__)
    if (!emu_own_code[1]) dl_iterate_phdr(emu_find_code, nullptr);
#endif
    stack_t ours = {};
    ours.ss_sp = emu_signal_stack, ours.ss_size = sizeof emu_signal_stack;
    emu_own_stack = sigaltstack(&ours, &emu_previous_stack) == 0;
    emu_launcher = pthread_self();
    struct sigaction action = {};
    action.sa_sigaction = emu_on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);  // all three blocked while it runs: a fault in the handler ends the process
    for (int k = 0; k < 3; ++k) sigaddset(&action.sa_mask, emu_fault_signals[k]);
    for (int k = 0; k < 3; ++k) sigaction(emu_fault_signals[k], &action, &emu_previous[k]);
}

static void emu_release_faults() {  // the handlers of before back, each where ours is still in place
    for (int k = 0; k < 3; ++k) {
        struct sigaction now;
        if (sigaction(emu_fault_signals[k], nullptr, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
            now.sa_sigaction == emu_on_fault)
            sigaction(emu_fault_signals[k], &emu_previous[k], nullptr);
    }
    if (emu_own_stack) sigaltstack(&emu_previous_stack, nullptr);
}
extern "C" const long long* emu_fault() { return emu_fault_info; }
extern "C" size_t emu_stack_bytes() {  // the calling thread's stack in bytes, 0 where not known (not for the handler)
    size_t bytes = 0;
#if defined(__linux__)
    pthread_attr_t attributes;
    if (pthread_getattr_np(pthread_self(), &attributes) == 0) {
        pthread_attr_getstacksize(&attributes, &bytes);
        pthread_attr_destroy(&attributes);
    }
#endif
    return bytes;
}

static void emu_set_thread(long long t) {  // threadIdx of the block's t-th thread, x fastest
    threadIdx.x = (unsigned int)(t % blockDim.x);
    threadIdx.y = (unsigned int)((t / blockDim.x) % blockDim.y);
    threadIdx.z = (unsigned int)(t / ((long long)blockDim.x * blockDim.y));
    emu_thread = t;
}

static void __syncthreads() {
    if (emu_direct) {  // the block's first thread ended without a barrier: this one will never be met
        emu_diverge(emu_first, emu_thread);
        return;
    }
    emu_state[emu_thread] = EMU_AT_BARRIER;
    swapcontext(&emu_fibers[emu_thread], &emu_scheduler);
}

static void emu_warp_fail(long long rule, long long t, long long other) {  // the first broken rule, kept
    if (emu_warp_failure[0]) return;
    const emu_lane& me = emu_lanes[t];
    long long where = other < 0 ? -1 : other >= emu_n ? EMU_MISSING : emu_state[other];
    const emu_lane* it = 0 <= other && other < emu_n ? &emu_lanes[other] : nullptr;
    long long failure[EMU_FAILURE_LENGTH] = {rule, emu_block, t, me.op, me.mask, me.width, other, where,
                                             it ? it->op : 0, it ? it->mask : 0, me.arg, me.kind, it ? it->kind : 0};
    memcpy(emu_warp_failure, failure, sizeof failure);
}

// the calling thread waits at a warp operation, its value deposited, until every lane its mask names has come to it
// (emu_complete): the result computed from the lanes' values; a rule broken stops the launch (emu_warp_failed)
static unsigned long long emu_warp(int op, unsigned mask, unsigned long long bits, int kind, int arg, int width) {
    long long t = emu_thread;
    emu_lanes[t] = {op, mask, bits, bits, kind, arg, width, ++emu_clock, 0};
    long long rule = !(mask >> (t & 31) & 1) ? EMU_NOT_NAMED : width < 1 || width > 32 || (width & (width - 1)) ?
                     EMU_BAD_WIDTH : emu_direct ? EMU_NO_FIBER : 0;
    if (rule) {
        emu_warp_fail(rule, t, -1);
        if (emu_direct) {  // on the launcher's stack: back to emu_launch now
            emu_in_kernel = 0;
            siglongjmp(emu_fault_jump, 2);
        }
    }  // and a fiber goes back to the scheduler, which sees the failure
    emu_state[t] = EMU_AT_WARP;
    swapcontext(&emu_fibers[t], &emu_scheduler);
    return emu_lanes[t].result;
}

// the lane a shuffle reads, as PTX's shfl computes it: its own where the source falls outside its segment of width
static int emu_source(int op, int lane, int arg, int width) {
    int start = lane & ~(width - 1), b = arg & 31;
    int j = op == EMU_SHFL ? start | (b & (width - 1)) : op == EMU_SHFL_UP ? lane - b : op == EMU_SHFL_DOWN ?
            lane + b : lane ^ b;
    bool inside = op == EMU_SHFL_UP ? j >= start : j <= start + width - 1;  // (an xor may read an earlier segment)
    return inside ? j : lane;
}

// thread u's result of the operation its warp's lanes `present` (bits) took part in, from their deposited values
static unsigned long long emu_result(long long u, long long base, unsigned present) {
    const emu_lane& me = emu_lanes[u];
    if (me.op >= EMU_SHFL && me.op <= EMU_SHFL_XOR) {
        int j = emu_source(me.op, (int)(u & 31), me.arg, me.width);
        if (!(present >> j & 1)) emu_warp_fail(EMU_READS, u, base + j);  // a lane not taking part: undefined
        return emu_lanes[base + j].bits;
    }
    unsigned votes = 0, same = 0;  // the lanes whose value is nonzero, and those whose value is this lane's
    long long total = me.op == EMU_REDUCE_AND ? ~0LL : 0, low = LLONG_MAX, high = LLONG_MIN;
    for (int l = 0; l < 32; ++l) {
        if (!(present >> l & 1)) continue;
        unsigned long long bits = emu_lanes[base + l].bits;
        long long v = me.kind < 0 ? (long long)(int)(unsigned)bits : (long long)(unsigned)bits;
        votes |= (unsigned)(bits != 0) << l, same |= (unsigned)(bits == me.bits) << l;
        total = me.op == EMU_REDUCE_AND ? total & v : me.op == EMU_REDUCE_OR ? total | v :
                me.op == EMU_REDUCE_XOR ? total ^ v : total + v;
        low = std::min(low, v), high = std::max(high, v);
    }
    switch (me.op) {
        case EMU_BALLOT: return votes;
        case EMU_ANY: return votes != 0;
        case EMU_ALL: return votes == present;
        case EMU_REDUCE_MIN: return (unsigned)low;
        case EMU_REDUCE_MAX: return (unsigned)high;
        case EMU_SYNCWARP: return 0;
        case EMU_MATCH_ANY: return same;
        case EMU_MATCH_ALL: return same == present ? present : 0;  // (the lanes named that have not exited: PTX's)
        default: return (unsigned)total;  // the sums wrap round, as the GPU's 32-bit ones
    }
}

// whether two lanes' warp operations are the same: the same operation, mask and kind (a double shuffled is two of a
// GPU's 32-bit shuffles, a float one; a signed reduction another instruction than an unsigned one)
static bool emu_same_operation(const emu_lane& a, const emu_lane& b) {
    return a.op == b.op && a.mask == b.mask && a.kind == b.kind;
}

// whether thread t's warp operation waits for lane l of its warp: its mask names it, it exists and has not ended
static bool emu_awaits(long long t, int l) {
    long long u = (t & ~31LL) + l;
    return (emu_lanes[t].mask >> l & 1) && u < emu_n && emu_state[u] != EMU_ENDED;
}

// the first lane thread t's warp operation waits for (emu_awaits) that is not at the same one (emu_same_operation):
// it keeps the operation from being done (-1: none)
static long long emu_blocker(long long t) {
    for (int l = 0; l < 32; ++l) {
        long long u = (t & ~31LL) + l;
        if (emu_awaits(t, l) && (emu_state[u] != EMU_AT_WARP || !emu_same_operation(emu_lanes[u], emu_lanes[t])))
            return u;
    }
    return -1;
}

// thread t waits at a warp operation: where every lane its mask names has come to the same one (emu_same_operation),
// ended or does not exist, the operation is done (each lane's result) and its lanes may run on (true). A lane named
// that ended after it came to this operation with another mask or kind, while these lanes waited, broke CUDA's rule
// (each lane named that has not exited comes with the same mask): it stops the launch
static bool emu_complete(long long t) {
    const emu_lane me = emu_lanes[t];
    long long base = t & ~31LL, since = LLONG_MAX;
    unsigned present = 0;
    if (emu_blocker(t) >= 0) return false;
    for (int l = 0; l < 32; ++l)
        if (emu_awaits(t, l)) present |= 1u << l, since = std::min(since, emu_lanes[base + l].came);
    for (int l = 0; l < 32; ++l) {
        long long u = base + l;
        if ((me.mask >> l & 1) && u < emu_n && emu_state[u] == EMU_ENDED && emu_lanes[u].op == me.op &&
            emu_lanes[u].left > since && !emu_same_operation(emu_lanes[u], me)) {
            emu_warp_fail(EMU_STUCK, base + __builtin_ctz(present), u);
            return false;
        }
    }
    for (int l = 0; l < 32; ++l)  // all results first: each from the values deposited
        if (present >> l & 1) emu_lanes[base + l].result = emu_result(base + l, base, present);
    ++emu_clock;
    for (int l = 0; l < 32; ++l)
        if (present >> l & 1) emu_state[base + l] = EMU_READY, emu_lanes[base + l].left = emu_clock;
    return true;
}

// no thread may run, and one waits at a warp operation: a lane its mask names waits elsewhere (at a __syncthreads(),
// at another operation or with another mask), where a GPU hangs or is undefined; the first such thread is named
static void emu_stuck() {
    for (long long t = 0, u; t < emu_n; ++t) {
        if (emu_state[t] == EMU_AT_WARP && (u = emu_blocker(t)) >= 0) {
            emu_warp_fail(EMU_STUCK, t, u);
            return;
        }
    }
}

static void emu_fiber() {
    emu_kernel();
    emu_finished = true;  // then back to the scheduler (uc_link)
}

static void emu_start(long long t) {
    emu_fibers[t] = emu_template;
    emu_fibers[t].uc_stack.ss_sp = emu_stacks + t * emu_stack_step;
    emu_fibers[t].uc_stack.ss_size = EMU_STACK;
    emu_fibers[t].uc_link = &emu_scheduler;
    makecontext(&emu_fibers[t], emu_fiber, 0);
    emu_state[t] = EMU_READY;
    emu_lanes[t].op = 0;  // at no warp operation yet (emu_complete looks at an ended lane's last)
}

static bool emu_resume(long long t) {  // thread t runs up to its next barrier; true where it ended instead
    emu_set_thread(t);
    emu_finished = false;
    emu_in_kernel = 1;
    swapcontext(&emu_scheduler, &emu_fibers[t]);
    emu_in_kernel = 0;
    return emu_finished;
}

// warp w's lanes run, in the launch's order, until none of them may run; a warp operation done starts their turn
// again, so that the lanes it let go run before the lanes that had not come to it (it orders its own lanes only);
// true where any ran. `live` counts the block's threads not ended, `ended` and `waiting` are the round's first thread
// to end and to wait at a __syncthreads() (-1: none yet)
static bool emu_run_warp(long long w, long long& live, long long& ended, long long& waiting) {
    long long first = 32 * w, count = std::min(32LL, emu_n - first);
    bool ran = false;
    for (long long i = 0; i < count; ++i) {
        long long t = first + emu_nth(i, count);
        if (emu_state[t] != EMU_READY) continue;
        ran = true;
        bool done = false;
        if (emu_resume(t)) {  // ended: an operation of its warp's that waited for it may be done
            emu_state[t] = EMU_ENDED, --live;
            ended = ended < 0 ? t : ended;
            for (long long u = first; u < first + count; ++u)
                if (emu_state[u] == EMU_AT_WARP) done = emu_complete(u) || done;
        } else if (emu_state[t] == EMU_AT_BARRIER) {
            waiting = waiting < 0 ? t : waiting;
        } else {
            done = emu_complete(t);
        }
        if (emu_warp_failure[0]) siglongjmp(emu_fault_jump, 2);
        if (done) i = -1;
    }
    return ran;
}

// every thread a fiber (`started`, the block's first, ran already and waits at a barrier or a warp operation; -1:
// none), run warp by warp in the launch's order, each warp up to where none of its lanes may run (emu_run_warp): a
// warp runs to its next __syncthreads() before the next warp starts, so what one warp writes before a __syncwarp() or
// a shuffle another sees in one order and not in the other, as a GPU's warps run in any order; a round of
// __syncthreads() ends once no thread may run and all wait there
static void emu_run_fibers(long long started) {
    for (long long t = 0; t < emu_n; ++t)
        if (t != started) emu_start(t);
    long long live = emu_n, ended = -1, waiting = -1, warps = (emu_n + 31) / 32;
    if (started >= 0 && emu_state[started] == EMU_AT_BARRIER) waiting = started;
    if (started >= 0 && emu_state[started] == EMU_AT_WARP) emu_complete(started);  // (its mask may name it alone)
    if (emu_warp_failure[0]) siglongjmp(emu_fault_jump, 2);
    for (bool ran = true;; ran = false) {
        for (long long i = 0; i < warps; ++i)
            ran = emu_run_warp(emu_nth(i, warps), live, ended, waiting) || ran;
        if (live == 0) return;
        if (ran) continue;
        emu_stuck();
        if (emu_warp_failure[0]) siglongjmp(emu_fault_jump, 2);
        if (ended >= 0) emu_diverge(ended, waiting);  // all wait at a __syncthreads(): the next round
        for (long long t = 0; t < emu_n; ++t)
            if (emu_state[t] == EMU_AT_BARRIER) emu_state[t] = EMU_READY;
        ended = waiting = -1;
    }
}

static void emu_run_block(long long n) {
    emu_n = n;
    emu_first = emu_nth(0, n);
    if (emu_warps) return emu_run_fibers(-1);  // a warp operation waits for lanes that have not run yet
    emu_start(emu_first);
    if (emu_resume(emu_first)) {  // it met no barrier: the threads never meet, each runs to its end in turn
        emu_direct = true;
        for (long long i = 1; i < n; ++i) {
            emu_set_thread(emu_nth(i, n));
            emu_in_kernel = 1;
            emu_kernel();
            emu_in_kernel = 0;
        }
        emu_direct = false;
        return;
    }
    emu_run_fibers(emu_first);  // it waits at a barrier: every thread a fiber
}

// where the linker put the source's __shared__ variables of a fixed size (none: both null)
extern "C" unsigned char __start_emu_static_shared[] __attribute__((weak, visibility("hidden")));
extern "C" unsigned char __stop_emu_static_shared[] __attribute__((weak, visibility("hidden")));

// a __shared__ array of a fixed size written past, found at the end of a block: its index in emu_statics, the
// block, and 0 before its start or 1 past its end (-1: none)
static long long emu_static_past[3] = {-1, -1, -1};
static bool emu_statics_intact() {
    for (int k = 0; k < emu_static_count; ++k)
        for (int side = 0; side < 2; ++side) {
            const unsigned char* guard = side ? emu_statics[k].after : emu_statics[k].before;
            for (size_t i = 0, n = side ? EMU_SHARED_BYTES : EMU_GUARD_BYTES; i < n; ++i)
                if (guard[i] != EMU_GUARD_BYTE) {
                    emu_static_past[0] = k, emu_static_past[1] = emu_block, emu_static_past[2] = side;
                    return false;
                }
        }
    return true;
}
extern "C" const long long* emu_static_written_past() { return emu_static_past; }
extern "C" const char* emu_static_declared(long long k) { return emu_statics[k].declared; }

static void emu_run_grid(long long blocks, long long n) {
    for (long long i = 0; i < blocks; ++i) {
        emu_block = emu_nth(i, blocks);
        blockIdx.x = (unsigned int)(emu_block % gridDim.x);
        blockIdx.y = (unsigned int)((emu_block / gridDim.x) % gridDim.y);
        blockIdx.z = (unsigned int)(emu_block / ((long long)gridDim.x * gridDim.y));
        memset(emu_shared, EMU_GUARD_BYTE, emu_shared_asked);  // a block's shared memory holds what it writes only
        if (__start_emu_static_shared)  // and its __shared__ variables of a fixed size too
            memset(__start_emu_static_shared, EMU_GUARD_BYTE, __stop_emu_static_shared - __start_emu_static_shared);
        emu_run_block(n);
        if (!emu_statics_intact()) return;  // the next block's memset would hide it
    }
}

// CuPy compiles every kernel with -ftz=true (cupy/cuda/compiler.py): a float's subnormal (below FLT_MIN, 1.2e-38),
// an operand or a result, is taken as a zero of its sign. The processor's own switches do that here, during the
// launch of a kernel that takes a float (emu_flush): x86-64's MXCSR FTZ (bit 15: results) and DAZ (bit 6: operands),
// ARM64's FPCR.FZ (bit 24). They flush a double's subnormals too (below 2.2e-308), which a GPU does not.
static unsigned long long emu_fp_control() {
#if defined(__x86_64__)
    return _mm_getcsr();
#elif defined(__aarch64__)
    unsigned long long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#else
    return 0;  // elsewhere nothing is flushed
#endif
}
static void emu_set_fp_control([[maybe_unused]] unsigned long long control) {
#if defined(__x86_64__)
    _mm_setcsr((unsigned)control);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"(control));
#endif
}
static unsigned long long emu_flushing(unsigned long long control) {
#if defined(__x86_64__)
    return control | 0x8040;
#elif defined(__aarch64__)
    return control | (1ull << 24);
#else
    return control;
#endif
}

// the launch of the configured grid: 0, or 1 where a fault in the kernel stopped it (emu_fault says which), 2 where
// a warp operation broke a rule (emu_warp_failed)
[[maybe_unused]] static int emu_launch(std::function<void()> kernel) {
    gridDim.x = emu_grid[0], gridDim.y = emu_grid[1], gridDim.z = emu_grid[2];
    blockDim.x = emu_threads[0], blockDim.y = emu_threads[1], blockDim.z = emu_threads[2];
    long long n = (long long)blockDim.x * blockDim.y * blockDim.z;
    long long blocks = (long long)gridDim.x * gridDim.y * gridDim.z;
    emu_fibers.resize(n);
    unsigned long long control = emu_fp_control();  // the caller's (NumPy's), put back after the launch
    if (emu_flush) emu_set_fp_control(emu_flushing(control));
    getcontext(&emu_template);  // with the switches: each fiber starts from it
    emu_kernel = kernel;
    emu_diverged[0] = emu_diverged[1] = emu_diverged[2] = -1;
    emu_static_past[0] = emu_static_past[1] = emu_static_past[2] = -1;
    emu_warp_failure[0] = 0;
    emu_catch_faults();
    int faulted = 0;
    switch (sigsetjmp(emu_fault_jump, 1)) {  // 1: the jump out of the handler restores this signal mask
        case 0: emu_run_grid(blocks, n); break;
        case 1: faulted = 1; break;
        default: faulted = 2; break;
    }
    emu_direct = false;  // after a jump: the fibers left where they were are made again at the next launch
    emu_release_faults();
    emu_set_fp_control(control);  // after a jump out of the handler of a fault too, which may have its own
    emu_kernel = nullptr;
    return faulted;
}

// a kernel's parameters as codes: "f4" float, "i8" long long, "u8" unsigned long long, "b1" bool, "*f4" float*, ...
template <class V> static std::string emu_code() {
    if constexpr (std::is_pointer_v<V>) return "*" + emu_code<std::remove_cv_t<std::remove_pointer_t<V>>>();
    else if constexpr (std::is_void_v<V>) return "V";
    else if constexpr (std::is_same_v<V, bool>) return "b1";
    else if constexpr (std::is_floating_point_v<V>) return "f" + std::to_string(sizeof(V));
    else if constexpr (std::is_integral_v<V>) return (std::is_signed_v<V> ? "i" : "u") + std::to_string(sizeof(V));
    else return "V";  // a struct: not passed from Python
}
template <class... A> static std::string emu_signature(void (*)(A...)) {
    std::string s;
    ((s += emu_code<A>() + " "), ...);
    return s;
}
// the kernel called with its arguments, each read from where args[i] points
template <class... A, size_t... I>
static void emu_call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}
template <class... A> static void emu_call(void (*kernel)(A...), void** args) {
    emu_call(kernel, args, std::index_sequence_for<A...>{});
}
"""

_KERNEL = """
extern "C" const char* emu_signature_{0}() {{
    static std::string s = emu_signature({0});
    return s.c_str();
}}
extern "C" int emu_launch_{0}(void** args) {{ return emu_launch([args] {{ emu_call({0}, args); }}); }}
"""

#: a kernel's definition or declaration, its name and then its parameters up to the parenthesis that closes them
_KERNEL_HEAD = re.compile(r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\([^)]*\)\s+)?void\s+'
                          r'(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(([^)]*)\)')
#: a call of ``atomicAdd`` or ``atomicSub``, whose float sums round by the order the threads come in
_ATOMIC_SUM = re.compile(r"\batomic(?:Add|Sub)\s*\(")
#: the warp-level operations emulated, in the order of their codes in the program (``emu_warp_op``, from 1, each
#: ``EMU_`` and its name without underscores or ``_sync``, ``EMU_SHFL_UP``; emitted by :func:`_program`)
_WARP_OPERATIONS = ("__syncwarp", "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                    "__ballot_sync", "__any_sync", "__all_sync", "__reduce_add_sync", "__reduce_min_sync",
                    "__reduce_max_sync", "__reduce_and_sync", "__reduce_or_sync", "__reduce_xor_sync",
                    "__match_any_sync", "__match_all_sync")
#: the rules of CUDA's a warp operation may break, in the order of their codes in the program (``emu_warp_rule``,
#: from 1, ``EMU_NOT_NAMED`` and so on), the first number of a failure the launcher records
_WARP_RULES = ("NOT_NAMED", "BAD_WIDTH", "STUCK", "READS", "NO_FIBER")
#: where a thread of the block is, in the order of their codes in the program (``emu_where``, from 0, ``EMU_READY``
#: and so on); ``MISSING`` is a lane past the block's end, in a failure
_WHERE = ("READY", "AT_BARRIER", "AT_WARP", "ENDED", "MISSING")
#: how many numbers the launcher records of a warp operation's failure (``emu_warp_failed``)
_FAILURE_LENGTH = 13
#: the name of a warp operation, which makes its kernel run every thread as a fiber (a lane waits for the others)
_WARP_CALL = re.compile(rf"\b(?:{'|'.join(_WARP_OPERATIONS)})\b")
#: ``extern __shared__ T s[];``, to become a pointer to the dynamic shared memory (on one line, as it was)
_EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w\s]*?)\s+"
                            r"(?:__align__\(\s*\d+\s*\)\s+)?(\w+)\s*\[\s*\]\s*;")

#: a ``__shared__`` array or number of a fixed size declared alone on its line (``__shared__ float buf[128];``), to
#: become the ``v`` of an ``emu_guarded`` of the prelude, between guard bytes (on one line, as it was); ``extern``
#: (group 1) ones are left
_FIXED_SHARED = re.compile(r"(\bextern[ \t]+)?\b__shared__[ \t]+((?:[A-Za-z_]\w*[ \t]+)*?[A-Za-z_]\w*)[ \t]+"
                           r"([A-Za-z_]\w*)[ \t]*((?:\[[^\[\];\n]+\][ \t]*)*);")


def _guarded_shared(m: re.Match) -> str:
    if m[1]:
        return m[0]
    kind, name, dims = m[2], m[3], m[4].replace(" ", "").replace("\t", "")
    return (f'__shared__ emu_guarded<{kind}{dims}> emu_guarded_{name}; static auto& {name} = '
            f'emu_named(emu_guarded_{name}, "{kind} {name}{dims}");')


#: a comment, or a literal (a raw string, a string, a character) that may hold what reads as one
_COMMENT_OR_LITERAL = re.compile(r'//[^\n]*|/\*.*?\*/|(?:u8|[uUL])?R"([^()\\\s]{0,16})\(.*?\)\1"|"(?:\\.|[^"\\\n])*"|'
                                 r"'(?:\\.|[^'\\\n])*'", re.S)
#: a preprocessor conditional, its directive and what follows it
_CONDITIONAL = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)$")
#: the conditions known to be false (C++'s preprocessor reads ``false`` as 0)
_FALSE = ("0", "false")


def _code_only(code: str) -> str:
    """``code`` without its comments, its raw strings' contents and its ``#if 0`` blocks: where to look for kernels,
    so that one in a comment (``// extern "C" __global__ void old(...)``) is not taken for one.

    Not a preprocessor: only a literal ``#if 0`` or ``#if false`` (and an ``#elif 0`` or ``#elif false`` after it) is
    known to be false; every other condition (``#if 1``, ``#ifdef X``, ``#elif 0`` after a branch of code) counts as
    code, all its branches too.
    """
    code = _COMMENT_OR_LITERAL.sub(lambda m: " " if m[0][0] == "/" else '""' if m[1] is not None else m[0], code)
    kept, depth = [], 0  # depth: the #if's open inside the #if 0 being skipped, itself included (0: not skipping)
    for line in code.splitlines():
        directive = _CONDITIONAL.match(line)
        if depth == 0:
            if directive and directive[1] == "if" and directive[2].strip() in _FALSE:
                depth = 1
            else:
                kept.append(line)
        elif directive and directive[1].startswith("if"):
            depth += 1
        elif directive and directive[1] == "endif":
            depth -= 1
        elif directive and depth == 1 and not (directive[1] == "elif" and directive[2].strip() in _FALSE):
            depth = 0  # the #if 0's own #else or #elif (but #elif 0): code again
    return "\n".join(kept)


_LOADED: dict[str, ctypes.CDLL] = {}  # the libraries loaded in this process, by their key, each once set up
#: the lock held while a library is looked up, compiled, loaded and set up, and while the stacks are made (two
#: threads making their first modules at once would map two sets of stacks, and a library keep the one unmapped)
_LOADING = threading.RLock()
#: the lock each launch holds, since a library's state is static (threadIdx, the fibers, the shared memory) and the
#: stacks are the process's, while ctypes lets another Python thread run during the call; reentrant, so that a
#: launch on the thread already launching (a signal handler's) is refused (``_LAUNCH_DEPTH``) instead of hanging
_LAUNCHING = threading.RLock()
_LAUNCH_DEPTH = [0]  # how many launches the thread holding _LAUNCHING is inside: 1 while one runs
_PROT_NONE = 0  # mprotect's flag for a page that no access may touch (Linux, macOS)
_SI_KERNEL = 0x80  # a SIGSEGV's si_code when the processor gives no address (Linux: a general protection fault)
_LOWEST_MAPPED = 65536  # below this no memory is mapped (Linux's vm.mmap_min_addr): an address there is a null's
#: how far above the stack pointer a frame's first access may lie (g++'s -fstack-clash-protection touches a frame's
#: pages in order past 4 KiB on x86-64, past 64 KiB on ARM64): a fault from a page below the stack pointer (a call's
#: return address, x86-64's red zone) to this far above it is where the stack ran out, the rest of it being mapped
_FRAME_REACH = 64 * 1024
_STACKS: list = []  # the threads' stacks, shared by the libraries (one launch runs at a time): the memory, its address


#: a preprocessor directive, its lines continued by a backslash too
_DIRECTIVE = re.compile(r"^[ \t]*#(?:[^\n\\]|\\.)*", re.M | re.S)
#: a ``#define``, the macro's name and what it stands for
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)((?:[^\n\\]|\\.)*)", re.M | re.S)
#: a name before an opening parenthesis (in a function's head, the function's)
_NAME_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*\b")


def _body_end(code: str, opening: int) -> int:
    """Where the block that opens at ``code[opening]`` (a ``{``) closes: the index of its ``}``."""
    depth = 0
    for end in range(opening, len(code)):
        depth += {"{": 1, "}": -1}.get(code[end], 0)
        if depth == 0:
            return end
    return len(code) - 1


def _call_graph(code: str) -> tuple[dict[str, str], dict[str, str], str]:
    """What :func:`_kernels_calling` looks in, from ``code`` (:func:`_code_only`'s): each kernel's body, each function's
    and macro's text (by its name), and the code outside the kernels that is no such function (a struct's method, a
    lambda).

    A function outside the kernels is known by the names before a parenthesis in its head (``warp_sum`` in
    ``__device__ T warp_sum(T v) {``).
    """
    code = re.sub(r'"(?:\\.|[^"\\\n])*"', lambda m: m[0] if m[0] == '"C"' else '""', code)  # no brace in a literal
    code = re.sub(r"'(?:\\.|[^'\\\n])*'", "' '", code)
    texts: dict[str, str] = {}  # a function's or a macro's name -> its text (an overload's too)
    for m in _DEFINE.finditer(code):
        texts[m[1]] = texts.get(m[1], "") + m[2]
    code = _DIRECTIVE.sub("", code)  # (a macro's braces are no block)
    bodies, outside, start = {}, [], 0
    for m in _KERNEL_HEAD.finditer(code):
        opening = re.compile(r"\s*\{").match(code, m.end())
        if opening is None or m.start() < start:  # a declaration, or a head inside the body of the one before
            continue
        end = _body_end(code, opening.end() - 1)
        outside.append(code[start:m.start()])
        bodies[m[1]] = bodies.get(m[1], "") + code[m.start():end + 1]
        start = end + 1
    rest, unknown, start = "".join(outside) + code[start:], [], 0
    for opening in re.finditer(r"\{", rest):  # the blocks outside the kernels: functions, structs, namespaces
        if opening.start() < start:
            continue
        head = rest[max(rest.rfind(";", start, opening.start()), rest.rfind("}", 0, opening.start()), start - 1) + 1:
                    opening.start()]
        end = _body_end(rest, opening.start())
        names = _NAME_CALLED.findall(head)
        for name in names:
            texts[name] = texts.get(name, "") + head + rest[opening.start():end + 1]
        unknown.append(rest[start:opening.start()] if names else rest[start:end + 1])
        start = end + 1
    return bodies, texts, "".join(unknown) + rest[start:]


def _kernels_calling(graph: tuple[dict[str, str], dict[str, str], str], call: re.Pattern) -> set[str]:
    """The kernels of a :func:`_call_graph` that may make a ``call`` (``atomicAdd``, a warp operation): in their own
    body, or in a function or a macro they name, or one that one of those names, and so on; code outside the kernels
    that makes the call and is no function known by its name counts for every kernel."""
    bodies, texts, unknown = graph
    if call.search(unknown):
        return set(bodies)
    reaching, grown = {name for name, text in texts.items() if call.search(text)}, True
    while grown:  # the functions and macros that name one that reaches the call reach it too
        grown = {name for name, text in texts.items() if name not in reaching and
                 reaching.intersection(_IDENTIFIER.findall(text))}
        reaching |= grown
    return {name for name, body in bodies.items()
            if call.search(body) or reaching.intersection(_IDENTIFIER.findall(body))}


def _stacks() -> int:
    """The address of :data:`MAX_THREADS` stacks of :data:`STACK_BYTES`, each above a page no thread may touch, so
    that a thread whose frames pass its stack (a local array too large) faults there (a :class:`LaunchError`) instead
    of writing over the next thread's (g++'s ``-fstack-clash-protection`` touches each page a large frame takes, in
    order)."""
    with _LOADING:  # made once: each library keeps the address
        if not _STACKS:
            page = mmap.PAGESIZE
            memory = mmap.mmap(-1, MAX_THREADS * (page + STACK_BYTES))
            start = ctypes.addressof(ctypes.c_char.from_buffer(memory))
            mprotect = ctypes.CDLL(None, use_errno=True).mprotect
            mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            for t in range(MAX_THREADS):
                if mprotect(start + t * (page + STACK_BYTES), page, _PROT_NONE):
                    raise OSError(ctypes.get_errno(), f"cuda_emulator: mprotect of the threads' guard pages failed: "
                                                      f"{os.strerror(ctypes.get_errno())}")
            _STACKS[:] = [memory, start]
        return _STACKS[1]


def _enum(name: str, members, first: int) -> str:
    """A C++ ``enum name``, each of ``members`` named with ``EMU_`` before it and numbered from ``first``."""
    return f"enum {name} {{ {', '.join(f'EMU_{m} = {i}' for i, m in enumerate(members, first))} }};\n"


def _program(code: str, name: str, first_line: int, kernels: list[str]) -> str:
    """The whole C++ file: the prelude, the source (its lines numbered as ``name``'s), a launcher per kernel."""
    source = _EXTERN_SHARED.sub(lambda m: f"{m[1]}* const {m[2]} = reinterpret_cast<{m[1]}*>(emu_shared);", code)
    source = _FIXED_SHARED.sub(_guarded_shared, source)
    defines = {"EMU_SHARED_BYTES": MAX_DYNAMIC_SHARED, "EMU_GUARD_BYTES": GUARD_BYTES, "EMU_GUARD_BYTE": GUARD_BYTE,
               "EMU_STACK_BYTES": STACK_BYTES, "EMU_MAX_THREADS": MAX_THREADS,
               "EMU_FAILURE_LENGTH": _FAILURE_LENGTH}
    ops = [op.strip("_").removesuffix("_sync").upper() for op in _WARP_OPERATIONS]
    enums = _enum("emu_warp_op", ops, 1) + _enum("emu_warp_rule", _WARP_RULES, 1) + _enum("emu_where", _WHERE, 0)
    head = "".join(f"#define {k} {v}\n" for k, v in defines.items()) + enums
    launchers = "".join(_KERNEL.format(k) for k in kernels)
    return (f'{head}#line 1 "cuda_emulator prelude"\n{_PRELUDE}#line {first_line} "{name}"\n{source}\n'
            f'#line 1 "cuda_emulator launchers"\n{_LAUNCHER}{launchers}')


#: what the emulation lacks of CUDA's warp-level operations and cooperative groups, by the names g++ then finds
#: undeclared, each with what it is and what to use instead
_NOT_EMULATED = {
    **dict.fromkeys(["__shfl", "__shfl_up", "__shfl_down", "__shfl_xor"],
                    "a warp shuffle without a mask, gone since CUDA 9 on Volta and later: use its _sync form, "
                    "__shfl_down_sync(0xffffffff, v, delta)"),
    **dict.fromkeys(["__ballot", "__any", "__all"], "a warp vote without a mask, gone since CUDA 9 on Volta and "
                                                    "later: use its _sync form, __ballot_sync(0xffffffff, p)"),
    "__activemask": ("the lanes of a warp that run together now: here a warp's lanes run one at a time, so none do; "
                     "name the lanes that call in a mask (0xffffffff for all)"),
    "cooperative_groups": "cooperative groups: use __syncthreads() and the warp operations (__shfl_down_sync, ...)",
}
_UNDECLARED = re.compile(r"^(.+?:\d+:\d+): error: [‘'`](\w+)[’'] (?:was not declared|has not been declared|is not a "
                         r"namespace)", re.M)
_NO_HEADER = re.compile(r"^(.+?:\d+:\d+): fatal error: (\S+): No such file or directory", re.M)
_UNDEFINED = re.compile(r"undefined reference to [`‘']([^'’]+)[’']")


def _compile_errors(stderr: str, limit: int = 12) -> str:
    """g++'s error lines (its first ``limit``), without the notes and the lines of context around them; first, in
    words, what the emulation does not have (a warp shuffle, a CUDA header, a function the linker did not find)."""
    hints = []
    for where, name in _UNDECLARED.findall(stderr):
        if name in _NOT_EMULATED:
            hints.append(f"{where}: not emulated: {name} ({_NOT_EMULATED[name]})")
    for where, header in _NO_HEADER.findall(stderr):
        hints.append(f"{where}: no CUDA headers here ({header}): the emulation declares CUDA's built-ins itself "
                     "(threadIdx, __syncthreads(), atomics, the math functions, FLT_MAX); leave the #include out")
    for name in dict.fromkeys(_UNDEFINED.findall(stderr)):
        hints.append(f"not emulated: {name} (no function of that name here; a CUDA intrinsic the emulation lacks?): "
                     "write the plain C function (expf, sqrtf, ...)")
    errors = [line for line in stderr.splitlines() if ": error: " in line or "undefined reference" in line]
    return "\n".join(list(dict.fromkeys(hints)) + (errors[:limit] or stderr.splitlines()[:limit]))


def _warnings(stderr: str, name: str, limit: int = 5) -> str:
    """g++'s warnings (``-Wall``) on the lines of the source ``name``, not the emulation's: a variable used
    uninitialized, say, which a launch shows only as a race or a wrong number."""
    warned = [line for line in stderr.splitlines() if line.startswith(f"{name}:") and ": warning: " in line]
    return "; ".join(warned[:limit])


def _library(program: str, name: str) -> ctypes.CDLL:
    """``program`` compiled (or found in :func:`cache_folder`) and loaded; its ``emu_warnings`` are g++'s warnings on
    ``name``'s lines (:func:`_warnings`)."""
    compiler = _compiler(platform.machine())  # part of the key: another command makes another library
    key = hashlib.sha256(" ".join(compiler).encode("utf-8") + b"\0" + program.encode("utf-8")).hexdigest()[:24]
    with _LOADING:  # one thread at a time: a library is compiled and set up once, and the stacks made once
        if key not in _LOADED:
            _LOADED[key] = _load(key, program, name, compiler)  # published only once set up
        return _LOADED[key]


def _load(key: str, program: str, name: str, compiler: list[str]) -> ctypes.CDLL:
    """:func:`_library`'s work for a library not loaded yet, under its lock: compiled by ``compiler`` unless in the
    cache, loaded, and set up."""
    folder = cache_folder()
    library, warnings = folder / f"{key}.so", folder / f"{key}.warnings"
    if not library.exists():
        with tempfile.TemporaryDirectory(dir=folder) as work:
            source, built = Path(work) / "kernels.cpp", Path(work) / "kernels.so"
            source.write_text(program, encoding="utf-8")
            done = subprocess.run([*compiler, str(source), "-o", str(built)], capture_output=True, encoding="utf-8")
            if done.returncode != 0:
                raise CompileError(f"{name}: does not compile for the CPU emulation of CUDA ({' '.join(COMPILER[:2])})"
                                   f":\n{_compile_errors(done.stderr)}")
            warnings.write_text(_warnings(done.stderr, name), encoding="utf-8")  # before the library: both there
            os.replace(built, library)  # whole, or not there: another process may be loading it
    loaded = ctypes.CDLL(str(library))
    loaded.emu_warnings = warnings.read_text(encoding="utf-8") if warnings.exists() else ""
    loaded.emu_stub_reached.restype = ctypes.c_char_p
    loaded.emu_divergence.restype = ctypes.POINTER(ctypes.c_longlong)
    loaded.emu_fault.restype = ctypes.POINTER(ctypes.c_longlong)
    loaded.emu_stack_bytes.restype = ctypes.c_size_t
    loaded.emu_static_written_past.restype = ctypes.POINTER(ctypes.c_longlong)
    loaded.emu_static_declared.restype = ctypes.c_char_p
    loaded.emu_static_declared.argtypes = [ctypes.c_longlong]
    loaded.emu_shared_memory.restype = ctypes.c_void_p
    loaded.emu_configure.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    loaded.emu_warp_failed.restype = ctypes.POINTER(ctypes.c_longlong)
    loaded.emu_use_stacks.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    loaded.emu_use_stacks(_stacks(), mmap.PAGESIZE)
    return loaded


def _parameters(text: str) -> list[str]:
    """A parameter list's declarations, each on one line (``const float* x``)."""
    return [" ".join(p.split()) for p in text.split(",") if p.strip() and p.strip() != "void"]


class RawModule:
    """A CUDA C++ source compiled for the CPU: its ``extern "C" __global__`` kernels, launched as CuPy's are.

    The same calls as ``cupy.RawModule``: ``RawModule(code=source).get_function(name)`` gives a :class:`Kernel`,
    called with ``(grid, block, args, shared_mem=...)``.

    Parameters
    ----------
    code : str
        The CUDA C++ source. Its kernels are ``extern "C" __global__ void name(...)`` (outside comments and ``#if 0``
        or ``#if false`` blocks); ``__device__`` functions, ``extern __shared__`` arrays (all at the start of the
        launch's dynamic shared memory) and ``__shared__`` arrays of a fixed size work as on a GPU.
    name : str
        What ``g++``'s errors and this module's messages call the source (a file name).
    first_line : int
        The number of the source's first line in ``name`` (a source that is a string inside a Python file).

    Raises
    ------
    RuntimeError
        Where the emulation cannot run (:func:`missing`), saying what to install.
    CompileError
        Where ``g++`` refuses the source, with its errors.

    Attributes
    ----------
    kernels : tuple of str
        The names of the source's kernels.
    warnings : str
        What ``g++ -Wall`` warned of on the source's lines ("" for nothing), a variable used uninitialized say; a
        :class:`LaunchError` of its kernels repeats it.
    warp_kernels : frozenset of str
        The kernels that may reach a warp operation (``__shfl_down_sync``, ``__syncwarp``, ...): they call one, or
        name a ``__device__`` function or a macro that does, or one that names such a one, and so on (code outside
        the kernels that calls one and is no function known by its name counts for every kernel). Each runs every
        thread as a fiber; a race in one says that a warp operation orders only its own warp's lanes. A name made by
        a macro's ``##``, or a call through a pointer, is not seen (a launch that then reaches the operation without
        fibers stops, saying so).

    Examples
    --------
    Needs g++ (the module's tests run it):

    >>> module = RawModule(code='extern "C" __global__ void twice(float* x) { x[threadIdx.x] *= 2; }')  # doctest: +SKIP
    >>> module.kernels  # doctest: +SKIP
    ('twice',)
    >>> module.warp_kernels  # doctest: +SKIP
    frozenset()
    """

    def __init__(self, code: str, *, name: str = "<cuda source>", first_line: int = 1):
        if reason := missing():
            raise RuntimeError(f"cuda_emulator: {reason}. Install it: {INSTALL}; or run the source on a GPU, where "
                               "cupy.RawModule(code=source) takes the same source and the same calls")
        self.name = name
        code_only = _code_only(code)
        heads = {m[1]: _parameters(m[2]) for m in _KERNEL_HEAD.finditer(code_only)}
        self.kernels = tuple(heads)
        graph = _call_graph(code_only)
        self._adds_atomically = _kernels_calling(graph, _ATOMIC_SUM)  # a race in floats: the atomics' order?
        self.warp_kernels = frozenset(_kernels_calling(graph, _WARP_CALL))  # run with every thread a fiber
        self._parameters = heads
        self._library = _library(_program(code, name, first_line, list(heads)), name)
        self.warnings = self._library.emu_warnings
        self._functions: dict[str, Kernel] = {}

    def get_function(self, name: str) -> Kernel:
        """The kernel ``name`` (a :class:`Kernel`); a clear error naming the source's kernels where it has none."""
        if name not in self._functions:
            if name not in self._parameters:
                raise ValueError(f"{self.name}: no kernel {name!r}; its kernels (extern \"C\" __global__): "
                               f"{', '.join(self.kernels) or 'none'}")
            self._functions[name] = Kernel(self, name)
        return self._functions[name]


#: the name CUDA's documentation gives a shuffle's third argument, by the shuffle's name
_SHUFFLE_ARGUMENT = {"__shfl_sync": "srcLane", "__shfl_up_sync": "delta", "__shfl_down_sync": "delta",
                     "__shfl_xor_sync": "laneMask"}


def _operand(op: int, kind: int) -> str:
    """What a warp operation (its code) took, by its kind (the bytes, negative where signed): ``4 bytes (an int, an
    unsigned, a float)``, or a reduction's ``int`` or ``unsigned``."""
    if _WARP_OPERATIONS[op - 1].startswith("__reduce"):
        return "an int" if kind < 0 else "an unsigned"
    return "4 bytes (an int, an unsigned, a float)" if kind == 4 else "8 bytes (a long long, a double)"


def _segment_hint(mask: int, width: int) -> str:
    """Where a shuffle's mask names a segment of ``w`` lanes (``0xffff``, ``0xff00``: ``w`` a power of two, the
    segment starting at a multiple of it) and its width is larger: the width that keeps the lanes among themselves.

    >>> _segment_hint(0xFFFF, 32).startswith("; with width 16 (the last argument), each 16 lanes shuffle among")
    True
    >>> _segment_hint(0xFFFF, 16), _segment_hint(0xFFFE, 32)
    ('', '')
    """
    w = mask.bit_count()
    low = (mask & -mask).bit_length() - 1
    if not 0 < w < width or w & (w - 1) or low % w or mask != (2**w - 1) << low:
        return ""
    return (f"; with width {w} (the last argument), each {w} lanes shuffle among themselves, and a lane whose source "
            f"lies outside its {w} keeps its own value")


def _dims(value, what: str, kernel: str) -> tuple[int, int, int]:
    """A grid's or a block's sizes as ``(x, y, z)``, from an int or a tuple of one to three ints."""
    sizes = (value,) if isinstance(value, int | np.integer) else tuple(value)
    if not 1 <= len(sizes) <= 3 or not all(isinstance(n, int | np.integer) for n in sizes):
        raise ValueError(f"{kernel}: the {what} is an int or a tuple of 1 to 3 ints (x, y, z), got {value!r}")
    return tuple(int(n) for n in sizes) + (1,) * (3 - len(sizes))


def _where(index: int, sizes: tuple[int, int, int]) -> str:
    """The ``index``-th block or thread (x fastest) as CUDA names it: ``3``, or ``(3, 1, 0)`` in 2 or 3 axes."""
    x, y, z = index % sizes[0], index // sizes[0] % sizes[1], index // (sizes[0] * sizes[1])
    return str(x) if sizes[1:] == (1, 1) else str((x, y, z))


class Kernel:
    """One kernel of a :class:`RawModule`, launched as a ``cupy.RawKernel``: ``kernel(grid, block, args)``.

    Attributes
    ----------
    name : str
        The kernel's name.
    parameters : list of str
        Its parameters as the source declares them (``const float* x``).

    Examples
    --------
    Needs g++ (the module's tests run it):

    >>> twice = RawModule(code='extern "C" __global__ void twice(float* x) { x[threadIdx.x] *= 2; }').get_function(
    ...     "twice")  # doctest: +SKIP
    >>> x = np.arange(4, dtype=np.float32)
    >>> twice((1,), (4,), (x,))  # one block of 4 threads  # doctest: +SKIP
    >>> x  # doctest: +SKIP
    array([0., 2., 4., 6.], dtype=float32)
    """

    def __init__(self, module: RawModule, name: str):
        self.module, self.name = module, name
        self.parameters = module._parameters[name]
        library = module._library
        self._launch = getattr(library, f"emu_launch_{name}")
        self._launch.argtypes, self._launch.restype = [ctypes.c_void_p], ctypes.c_int
        signature = getattr(library, f"emu_signature_{name}")
        signature.restype = ctypes.c_char_p
        self._codes = signature().decode().split()
        self._flush = any(code in ("f4", "*f4") for code in self._codes)  # float subnormals flushed, as by -ftz=true
        if len(self.parameters) != len(self._codes):  # (a parameter list that the simple reading above misread)
            self.parameters = [f"argument {i}" for i in range(len(self._codes))]

    def __call__(self, grid, block, args, *, shared_mem: int = 0) -> None:
        """Launch the kernel on ``grid`` blocks of ``block`` threads, twice (the two orders), and check it.

        Parameters
        ----------
        grid, block : int or tuple of int
            Blocks in the grid and threads in a block, ``(x,)``, ``(x, y)`` or ``(x, y, z)``.
        args : tuple
            One per parameter: a NumPy array for a pointer (its dtype the pointer's type: float32 for ``float*``),
            a NumPy scalar of the parameter's type for a number (``np.float32(2.0)`` for a ``float``, ``np.int64``
            for a ``long long``); a Python ``int`` is taken for 8-byte integers and a ``float`` for ``double``
            alone, as CuPy passes them. Arrays are read and written in place: after the launch they hold what
            the kernel wrote.
        shared_mem : int
            Bytes of dynamic shared memory, where the kernel's ``extern __shared__`` arrays start.

        Raises
        ------
        LaunchError
            A race, a barrier not every thread reaches, a write past an array or past the shared memory, a fault.
        NotImplementedError
            The kernel reached a stub, ``not_implemented(message)``.
        ValueError
            A launch a GPU refuses, or an argument of the wrong type or number.
        """
        name = self.name
        grid, block = _dims(grid, "grid", name), _dims(block, "block", name)
        threads = block[0] * block[1] * block[2]
        if min(grid) < 1 or min(block) < 1:
            raise ValueError(f"{name}: a grid of {grid} blocks of {block} threads (CUDA: invalid configuration "
                             "argument: every size at least 1)")
        if threads > MAX_THREADS or block[2] > 64:
            raise ValueError(f"{name}: {threads} threads in a block {block} (CUDA allows {MAX_THREADS}, and 64 in z)")
        if not 0 <= shared_mem <= MAX_DYNAMIC_SHARED:
            raise ValueError(f"{name}: {shared_mem} bytes of dynamic shared memory (CUDA gives {MAX_DYNAMIC_SHARED} "
                             "without opting in to more)")
        if len(args) != len(self._codes):
            raise ValueError(f"{name}: {len(args)} arguments for its {len(self._codes)} parameters "
                             f"({', '.join(self.parameters)})")
        try:
            with _LAUNCHING:
                if _LAUNCH_DEPTH[0]:  # this thread is inside a launch already: blocking on its own lock, it would hang
                    raise RuntimeError(f"cuda_emulator: a launch inside a launch (from a signal handler?): {name} was "
                                       "launched while this thread's launch in progress had not returned; launch "
                                       "after it returns")
                _LAUNCH_DEPTH[0] += 1
                try:
                    self._run(grid, block, args, shared_mem)
                finally:
                    _LAUNCH_DEPTH[0] -= 1
        except LaunchError as e:
            if not self.module.warnings:
                raise
            raise LaunchError(f"{e} (g++ warned: {self.module.warnings})") from None

    def _run(self, grid, block, args, shared_mem: int) -> None:
        """The launch in both orders, each checked, and the second's arrays copied back: ``__call__``'s work."""
        name = self.name
        launch = _Launch(self, args)
        library = self.module._library
        shared = np.ctypeslib.as_array((ctypes.c_uint8 * (MAX_DYNAMIC_SHARED + GUARD_BYTES)).from_address(
            library.emu_shared_memory()))
        results = []
        for reversed_ in (1, 0):  # last to first, then first to last: the second's arrays are the launch's result
            launch.reset()
            shared[:] = GUARD_BYTE
            library.emu_configure(*grid, *block, shared_mem, reversed_, name in self.module.warp_kernels, self._flush)
            faulted = self._launch(launch.argv)
            if stub := library.emu_stub_reached():  # first: a stub's caller may go on with what it did not write
                raise NotImplementedError(f"{stub.decode()} (reached in the launch of {name})")
            if faulted == 2:
                raise LaunchError(self._warp_failure(library.emu_warp_failed(), grid, block))
            if faulted:
                raise LaunchError(self._fault(library.emu_fault(), grid, block))
            self._check_static_shared(library, grid)
            self._check_barriers(library.emu_divergence(), grid, block)
            if not (shared[shared_mem:] == GUARD_BYTE).all():
                raise LaunchError(f"{name}: wrote past the shared memory it asked ({shared_mem} bytes: the launch's "
                                  "shared_mem)")
            launch.check_guards()
            results.append(launch.written())
        launch.compare(*results)
        launch.copy_back()

    def _fault(self, fault, grid, block) -> str:
        """What the fault that stopped a launch was (``fault``: the signal, the address, the block, the thread, the
        signal's ``si_code``, the stack pointer, and whether the thread ran on the launching thread's stack), in
        words: a stack overflow, an access outside every array, a division by zero."""
        number, address, code, sp, direct = fault[0], fault[1] % 2**64, fault[4], fault[5] % 2**64, fault[6]
        thread = _where(fault[3], block)
        by = f"thread {thread} of block {_where(fault[2], grid)}"
        if number == signal.SIGFPE:
            return (f"{self.name}: an integer division by zero (x / 0 or x % 0; or INT_MIN / -1), by {by}: a GPU "
                    "gives a meaningless number there, the CPU stops")
        page, step = mmap.PAGESIZE, mmap.PAGESIZE + STACK_BYTES
        offset = address - _STACKS[1]
        if 0 <= offset < MAX_THREADS * step and offset % step < page:  # in a stack's guard page
            return (f"{self.name}: a stack overflow in {by} (thread {thread}'s stack is {STACK_BYTES} bytes: a large "
                    "local array? Keep it in shared or global memory)")
        if direct and code != _SI_KERNEL and -page <= address - sp < _FRAME_REACH:  # where the stack ran out
            size = self.module._library.emu_stack_bytes()  # the launching thread's: this one's
            of = f", of {size / 2**20:.1f} MiB" if size else ""
            return (f"{self.name}: a stack overflow in {by} (it ran on the launching Python thread's stack{of}, as "
                    "every thread but a block's first does in a kernel without barriers: a recursion that does not "
                    "end? A local array too large? Keep it in shared or global memory)")
        if code == _SI_KERNEL:  # a general protection fault: no address given (one no memory can have, say)
            return (f"{self.name}: a read or write at an address no memory can have, outside every array (an index "
                    f"far out of range?), by {by}")
        hint = "a null pointer?" if address < _LOWEST_MAPPED else "an index far out of range?"
        return f"{self.name}: a read or write at address {address:#x} outside every array ({hint}), by {by}"

    def _warp_failure(self, failed, grid, block) -> str:
        """What rule of CUDA's a warp operation broke (``failed``: the rule, the block, the thread, its operation,
        mask and width, the other thread at fault, where that one is, its operation and mask, the thread's argument
        and kind, the other's kind), in words."""
        rule, b, t, op, mask, width, other, where, other_op, other_mask, arg, kind, other_kind = (
            failed[:_FAILURE_LENGTH])
        broken, where = _WARP_RULES[rule - 1], _WHERE[where] if where >= 0 else None
        n, mask, other_mask = block[0] * block[1] * block[2], mask % 2**32, other_mask % 2**32
        call = f"{_WARP_OPERATIONS[op - 1]}(mask {mask:#010x}{f', width {width}' if width != 32 else ''})"

        def lane(u: int) -> str:
            return f"thread {_where(u, block)} (lane {u % 32} of warp {u // 32})" if u < n else f"lane {u % 32}"

        by = f"{self.name}: in block {_where(b, grid)}, {lane(t)}"
        if broken == "NOT_NAMED":
            return (f"{by} calls {call}, whose mask does not name its own lane {t % 32}: on a GPU each calling "
                    "thread's bit must be set, or the result is undefined (0xffffffff names the whole warp: lanes "
                    "32w to 32w + 31 of the block's threads, x fastest)")
        if broken == "BAD_WIDTH":
            return f"{by} calls {call}: a width is a power of two from 1 to 32 (warpSize), undefined otherwise"
        if broken == "STUCK":
            kinds = other_op == op and other_kind != kind  # the same operation and mask, another type
            if kinds:
                call += f" of {_operand(op, kind)}"
            elsewhere = ("a __syncthreads()" if where == "AT_BARRIER" else f"{_WARP_OPERATIONS[other_op - 1]}(mask "
                         f"{other_mask:#010x}){f' of {_operand(op, other_kind)}' if kinds else ''}")
            rule = ("on a GPU every lane a mask names that has not ended must come to the same operation with the "
                    f"same mask{', and a value of the same type' if kinds else ''}")
            if where == "ENDED":  # it came to the same operation with another mask or type, then ended
                return (f"{by} waits at {call} for {lane(other)}, which its mask names but which came to {elsewhere} "
                        f"while it waited, and then ended: {rule} (undefined otherwise). Do all the lanes that call "
                        "it pass the same mask" + (", and a value of the same type?" if kinds else "?"))
            hint = ("Do all the lanes that call it pass a value of the same type (cast it: (double)v)?" if kinds else
                    "Is the call inside an if that not every lane takes, or in a loop they go round different "
                    "numbers of times? Name only the lanes that call it in the mask")
            return (f"{by} waits at {call} for {lane(other)}, which its mask names but which waits at {elsewhere}: "
                    f"{rule} (a hang, or undefined). {hint}")
        if broken == "READS":
            named = f", {_SHUFFLE_ARGUMENT[_WARP_OPERATIONS[op - 1]]} {arg}"
            call = call.replace(")", f"{named})", 1) if width == 32 else call.replace(", width", f"{named}, width")
            hint = ""
            if where == "MISSING":
                why = (f"does not exist (the block has {n} threads, so its last warp has {n % 32} "
                       f"lane{'s' if n % 32 > 1 else ''}: make the block a whole number of warps, a multiple of 32 "
                       "threads, or name in the mask only the lanes that exist)")
            elif not mask >> (other % 32) & 1:
                why, hint = "the mask does not name", _segment_hint(mask, width)
            else:
                why = ("did not call it (it ended first: it returned, or took another branch of an if and ran to "
                       "the kernel's end)")
                hint = "; name in the mask only the lanes that call it"
            return (f"{by} reads lane {other % 32} through {call}, a lane that {why}: a GPU gives an undefined value "
                    f"there (a shuffle reads only a lane that takes part in it){hint}")
        return (f"{by} calls {call} in a kernel run without fibers: the emulation found no warp operation's name in "
                "it, nor in a function or a macro it names (one made by a macro's ##? a call through a pointer?); "
                "write the call out")

    def _check_static_shared(self, library, grid) -> None:
        """A ``__shared__`` array of a fixed size written past (before its start or past its end) in the launch."""
        past = library.emu_static_written_past()
        if past[0] < 0:
            return
        declared, block = library.emu_static_declared(past[0]).decode(), _where(past[1], grid)
        if past[2] == 0:
            raise LaunchError(f"{self.name}: wrote before the start of its __shared__ array {declared} (in block "
                              f"{block}): a negative index?")
        raise LaunchError(f"{self.name}: wrote past the end of its __shared__ array {declared} (in block {block}): an "
                          "index past its size? (a fixed size smaller than the block's threads, blockDim.x, or the "
                          "row?)")

    def _check_barriers(self, diverged, grid, block) -> None:
        if diverged[0] < 0:
            return
        b, ended, waiting = diverged[0], diverged[1], diverged[2]
        raise LaunchError(
            f"{self.name}: some threads of a block reached a __syncthreads() that others never reach (one inside an "
            "if that not every thread takes, or in a loop that threads go round different numbers of times); on a "
            f"GPU every thread of the block must meet each barrier. In block {_where(b, grid)}, thread "
            f"{_where(waiting, block)} waits at one that thread {_where(ended, block)} never reaches (it ended)")


#: what a race's message adds where the kernel adds floats atomically, a difference the check cannot tell from a race
_ATOMIC_ORDER = (". Or this kernel's atomicAdd or atomicSub on floats: a GPU adds in whatever order the threads "
                 "come, and a float sum rounds differently in another order, so the two runs may differ in the last "
                 "digits even with no barrier missing; the emulation runs only kernels whose result does not depend "
                 "on the order: sum in a fixed order instead (a tree, as block_sum), or atomically add integers")

#: what a race's message adds where the kernel calls warp operations (the emulation runs a block warp by warp, each
#: up to its next __syncthreads(), so a warp operation put where a __syncthreads() belongs shows as a race)
_WARP_ORDER = (". This kernel calls warp operations: a __syncwarp() or a shuffle orders only the lanes of its own warp "
               "that its mask names, not the block's other warps (on a GPU they run before, after or beside it; here "
               "one warp runs up to its next __syncthreads() before the next starts, first to last, then last to "
               "first): warps meet at a __syncthreads() only")


class _Launch:
    """The arguments of one launch: each array copied between guard bytes (where it is contiguous and no other
    argument shares its memory) or passed where it lies, each number as the parameter's type."""

    def __init__(self, kernel: Kernel, args):
        self.kernel = kernel
        self.keep = []  # what the pointers in argv point to
        self.argv = (ctypes.c_void_p * max(len(args), 1))()
        self.staged = []  # (argument index, the user's array, its buffer with guards), one per distinct array
        self.in_place = []  # (argument index, the array, its bytes before the launch), arrays written where they lie
        arrays = [(i, a) for i, a in enumerate(args) if isinstance(a, np.ndarray)]
        buffers = {}  # id of an array passed more than once -> its buffer
        for i, (code, value) in enumerate(zip(kernel._codes, args)):
            self.argv[i] = self._argument(i, code, value, arrays, buffers)

    def _describe(self, i: int) -> str:
        return f"argument {i} ({self.kernel.parameters[i]})"

    def _argument(self, i, code, value, arrays, buffers) -> int:
        name = self.kernel.name
        if code.startswith("*"):
            if not isinstance(value, np.ndarray):
                raise ValueError(f"{name}: {self._describe(i)} is a pointer: pass a NumPy array, got "
                                 f"{type(value).__name__}")
            wanted = code[1:]
            if wanted[0] in "fiub" and value.dtype != np.dtype(wanted):
                raise ValueError(f"{name}: {self._describe(i)} points to {np.dtype(wanted).name} entries; got a "
                                 f"{value.dtype} array (cast it, or the kernel reads its bytes as "
                                 f"{np.dtype(wanted).name})")
            alone = not any(j != i and other is not value and np.may_share_memory(value, other)
                            for j, other in arrays)
            if value.flags.c_contiguous and alone:
                if id(value) not in buffers:
                    buffer = np.full(2 * GUARD_BYTES + value.nbytes, GUARD_BYTE, dtype=np.uint8)
                    buffers[id(value)] = buffer
                    self.staged.append((i, value, buffer))
                address = buffers[id(value)].ctypes.data + GUARD_BYTES
            else:  # a view with strides the kernel is told of, or memory another argument shares: where it lies
                if value.flags.writeable and all(a is not value for _, a, _ in self.in_place):
                    self.in_place.append((i, value, value.copy()))
                address = value.ctypes.data
            holder = ctypes.c_void_p(address)
            self.keep.append(holder)
            return ctypes.addressof(holder)
        return self._number(i, code, value)

    def _number(self, i, code, value) -> int:
        name, wanted = self.kernel.name, np.dtype(code) if code[0] in "fiub" else None
        if wanted is None:
            raise ValueError(f"{name}: {self._describe(i)}: the emulation passes numbers and pointers only")
        if isinstance(value, np.ndarray):
            raise ValueError(f"{name}: {self._describe(i)} is a number: pass a NumPy scalar, np.{wanted.name}(...), "
                             "not an array")
        python = {bool: np.dtype(bool), int: np.dtype(np.int64), float: np.dtype(np.float64)}.get(type(value))
        given = value.dtype if isinstance(value, np.generic) else python
        fits = given == wanted or (python == np.dtype(np.int64) and wanted == np.dtype(np.uint64) and value >= 0)
        if not fits:
            raise ValueError(f"{name}: {self._describe(i)} is {wanted.name}; got {type(value).__name__} {value!r}, "
                             f"which CuPy would pass as {getattr(given, 'name', 'nothing')}: pass "
                             f"np.{wanted.name}({value!r})")
        holder = np.array(value, dtype=wanted)
        self.keep.append(holder)
        return holder.ctypes.data

    def reset(self) -> None:
        """Every array as it was before the launch, each copied one between its guards."""
        for _, value, buffer in self.staged:
            buffer[:] = GUARD_BYTE
            buffer[GUARD_BYTES:GUARD_BYTES + value.nbytes] = value.reshape(-1).view(np.uint8)
        for _, value, before in self.in_place:
            np.copyto(value, before)

    def _data(self, value, buffer) -> np.ndarray:
        return buffer[GUARD_BYTES:GUARD_BYTES + value.nbytes].view(value.dtype).reshape(value.shape)

    def check_guards(self) -> None:
        for i, value, buffer in self.staged:
            for side, guard in (("before the start", buffer[:GUARD_BYTES]), ("past the end", buffer[-GUARD_BYTES:])):
                if (guard != GUARD_BYTE).any():
                    raise LaunchError(f"{self.kernel.name}: wrote {side} of an array ({self._describe(i)}, "
                                      f"{value.size} entries of {value.dtype}): a loop's bound one too far (i <= n "
                                      "for i < n?), or an index past its row")

    def written(self) -> list[np.ndarray]:
        """What the launch left in each array it may write, copied."""
        staged = [self._data(value, buffer).copy() for _, value, buffer in self.staged if value.flags.writeable]
        return staged + [value.copy() for _, value, _ in self.in_place]

    def compare(self, backwards: list, forwards: list) -> None:
        """The two orders' arrays agree to the bit, or the race is named: the argument, the entry, both values."""
        indices = [i for i, value, _ in self.staged if value.flags.writeable] + [i for i, _, _ in self.in_place]
        for i, b, f in zip(indices, backwards, forwards):
            rows_b, rows_f = (np.ascontiguousarray(a).reshape(-1).view(np.uint8).reshape(a.size, a.itemsize)
                              for a in (b, f))
            differ = np.flatnonzero((rows_b != rows_f).any(axis=1))
            if differ.size:
                k = int(differ[0])
                entry = np.unravel_index(k, b.shape) if b.ndim > 1 else k
                atomics = b.dtype.kind == "f" and self.kernel.name in self.kernel.module._adds_atomically
                warps = self.kernel.name in self.kernel.module.warp_kernels
                raise LaunchError(
                    f"{self.kernel.name}: race: a barrier is missing? Or a local variable never set? The result "
                    "depends on the order the threads run in: a thread read s[...] before or after another wrote it, "
                    "with no __syncthreads() between them that both reach (or two blocks write the same entries: "
                    "does block r write its own row only?; or a variable declared without a value, T total;, read "
                    f"before it is set). {self._describe(i)} differs at {differ.size} of {b.size} entries; the first, "
                    f"[{', '.join(map(str, np.atleast_1d(entry)))}], is {f.reshape(-1)[k].item()!r} with blocks and "
                    f"threads run first to last, {b.reshape(-1)[k].item()!r} last to first"
                    + (_WARP_ORDER if warps else "") + (_ATOMIC_ORDER if atomics else ""))

    def copy_back(self) -> None:
        for _, value, buffer in self.staged:
            if value.flags.writeable:
                np.copyto(value, self._data(value, buffer))
