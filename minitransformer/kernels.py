r"""CUDA kernels: softmax, attention's weights, layer norm, GELU, BCE (each way); column sums; Adam; random numbers;
and the matrix products as direct cuBLAS calls.

On CuPy each formula of :mod:`minitransformer.autograd.fused` launches one kernel per array
operation: softmax's forward five (max, subtract, exp, sum, divide), layer norm's about eight, and
each reads and writes the whole array again. Here each direction of each is **one** kernel. A
thread block takes one row (the last axis): its threads stride over the row, reduce it in shared
memory (a sum or a max, in :math:`\log_2` of the block's size steps), and write the result. The
formulas are the ones of :mod:`~minitransformer.autograd.fused`, in the same order of operations:

- softmax: :math:`y_i = e^{x_i - m} / \sum_j e^{x_j - m}`, :math:`m = \max_j x_j`; backward
  :math:`\bar x_i = \bar y_i y_i - y_i \sum_j \bar y_j y_j`;
- attention's weights, :math:`\mathrm{softmax}(Q K^\top / \sqrt{d_k})` over the keys the mask allows, in one
  kernel instead of a division, two ``where`` and an ``any`` around the softmax; its backward is softmax's,
  divided by :math:`\sqrt{d_k}`;
- layer norm: :math:`\hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}`, :math:`y = \gamma \hat x + \beta`;
  backward :math:`\bar x = (\bar g - \langle \bar g \rangle - \hat x \langle \bar g \hat x \rangle)
  / \sqrt{\sigma^2 + \epsilon}` with :math:`\bar g = \gamma \bar y`;
- the sums over the rows, column by column, of a bias's gradient :math:`\sum_{\text{rows}} \bar Y`, and of
  layer norm's :math:`\bar\beta = \sum_{\text{rows}} \bar y` and :math:`\bar\gamma = \sum_{\text{rows}} \bar y
  \hat x` together: one kernel where CuPy's reduction costs the host about twice a launch (and γ̄ a product
  first);
- GELU (tanh form), elementwise: :math:`t = \tanh(c (x + \kappa x^3))`, :math:`y = \tfrac12 x (1 + t)`, and
  its derivative from :math:`x` and :math:`t` (:class:`~minitransformer.autograd.fused.Gelu`);
- binary cross-entropy from the logits, elementwise each way (ten array operations forward, seven backward);
- Adam's step (:class:`~minitransformer.optim.Adam`, :class:`~minitransformer.optim.AdamW`), elementwise,
  on all the parameters laid end to end: one kernel instead of about eighteen array operations;
- the uniforms of :class:`~minitransformer.backend.CounterRNG` (dropout's masks, initial weights):
  SplitMix64 on a counter, one kernel instead of fifteen array operations on 64-bit words;
- the scatter-add of a row lookup's gradient (the embedding's), in a fixed order: CuPy's own adds with
  atomics in whatever order the threads arrive, so a training run on the GPU would not repeat itself;
  here each id's positions are chained (or, for very many, sorted) and added in their order;
- the matrix products :math:`A B` of every projection and of attention, each one call of cuBLAS (no kernel of
  ours): CuPy's ``matmul`` reaches the same routine through a general front end, and copies each operand
  of more than two axes that is not laid out row after row, a transposed :math:`K^\top` too; here cuBLAS is
  told which operands are transposed (:meth:`CudaKernels.matmul`).

The array-API formulas stay the reference on every backend; ``tests/test_kernels.py`` compiles this
source with ``nvcc`` where it is installed, runs it on the CPU under an emulation of CUDA's blocks,
threads and barriers (the products under a stand-in of cuBLAS's two routines, as its documentation states
them), and, on a GPU, checks it against the formulas (the products against CuPy's ``matmul``).

The CuPy backend uses them by default (``backend.kernels``); ``MINITRANSFORMER_KERNELS=0`` turns them off
and runs the array formulas instead. The H200 run of ``tools/gpu_check.sh`` (at 4078fca) checked softmax, layer
norm, GELU, Adam, the random numbers and the scatter-add by sorting; what came after it (attention's weights, the
binary cross-entropy, the column sums, the chained scatter-add, Adam's update in place, the products) is so far
checked on the CPU only, under the emulation.
"""

from __future__ import annotations

import ctypes
import functools
import warnings

from .backend import tf32_requested  # defined there, for a copy without this file; exported here as before

__all__ = ["CudaKernels", "SOURCE", "C_TYPES", "block_size", "cublas_layout", "tf32_requested"]

#: the CUDA C++ source, compiled once per dtype with ``{T}`` replaced by the C type
SOURCE = r"""
typedef {T} T;

// What a body not written yet calls (a stub of A7's student copy, `minitransformer assignments build 7`): on a GPU
// it stops the kernel with an error (an illegal instruction), printing its message first where nvcc compiled it.
// The CPU emulation (minitransformer/cuda_emulator.py) defines its own, which raises NotImplementedError(message)
// once the launch is over.
#ifdef __CUDACC__
__device__ void not_implemented(const char* message) {
#ifndef __CUDACC_RTC__  // nvcc declares printf; NVRTC (CuPy's compiler) may not, and this source must always compile
    if (threadIdx.x == 0 && blockIdx.x == 0) printf("%s\n", message);
#endif
    __trap();
}
#endif

// The sum over the block of each thread's v; every thread gets it. blockDim.x is a power of two and s holds
// blockDim.x entries of shared memory. A tree: each thread t (threadIdx.x) puts its v in s[t]; then in
// log2(blockDim.x) rounds, k = blockDim.x / 2, ..., 2, 1, each thread t < k adds s[t + k] into s[t], until s[0]
// holds the sum. A thread may read what another wrote only after a __syncthreads() that both reach between the
// write and the read: before the first round, after each, and before returning (the next reduction writes s).
__device__ T block_sum(T v, T* s) {
    T total = v;
    // BEGIN SOLUTION A7: block_sum: s[t] = v; for k = blockDim.x/2 .. 1, s[t] += s[t + k] if t < k; all read s[0]
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
        __syncthreads();
    }
    total = s[0];
    __syncthreads();  // s is reused by the next reduction
    // END SOLUTION
    return total;
}

// The max over the block of each thread's v, every thread gets it: block_sum's tree, with max in place of +
__device__ T block_max(T v, T* s) {
    T m = v;
    // BEGIN SOLUTION A7: block_max: block_sum's tree, with the larger of s[t] and s[t + k] in place of their sum
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k && s[threadIdx.x + k] > s[threadIdx.x]) s[threadIdx.x] = s[threadIdx.x + k];
        __syncthreads();
    }
    m = s[0];
    __syncthreads();
    // END SOLUTION
    return m;
}

// y = exp(x - m) / sum_j exp(x_j - m), m = max_j x_j (without it exp overflows for x of a few hundred). Block r
// takes row r (n entries, from x + r n), and its blockDim.x threads stride over it: thread t takes entries t,
// t + blockDim.x, t + 2 blockDim.x, ... < n (a row may be longer than the block, or shorter: a thread with no entry
// still takes part in each block reduction, with a value that changes nothing, the row's first entry for the max)
extern "C" __global__ void softmax_forward(const T* x, T* y, long long n) {
    extern __shared__ T s[];
    // BEGIN SOLUTION A7: softmax_forward: row max (block_max), e = exp(x - max) and its sum (block_sum), y = e / sum
    const T* xr = x + (long long)blockIdx.x * n;
    T* yr = y + (long long)blockIdx.x * n;
    T m = xr[0];
    for (long long i = threadIdx.x; i < n; i += blockDim.x) m = xr[i] > m ? xr[i] : m;
    m = block_max(m, s);
    T total = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        T e = exp(xr[i] - m);
        yr[i] = e;
        total += e;
    }
    total = block_sum(total, s);
    for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] /= total;  // each thread its own entries
    // END SOLUTION
}

// xbar = (ybar y - y sum_j ybar_j y_j) / divisor: softmax's (divisor 1), or attention's weights' (divisor sqrt(d_k));
// grad is ybar; block r takes row r (n entries) of grad, y and grad_x, as in softmax_forward
extern "C" __global__ void softmax_backward(const T* grad, const T* y, T* grad_x, long long n, T divisor) {
    extern __shared__ T s[];
    // BEGIN SOLUTION A7: softmax_backward: dot = sum_j ybar_j y_j (block_sum), then (ybar y - y dot) / divisor
    long long row = (long long)blockIdx.x * n;
    T dot = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) dot += grad[row + i] * y[row + i];
    dot = block_sum(dot, s);
    for (long long i = threadIdx.x; i < n; i += blockDim.x)
        grad_x[row + i] = (grad[row + i] * y[row + i] - y[row + i] * dot) / divisor;
    // END SOLUTION
}

// Attention's weights, y = softmax over the allowed keys of z = x / divisor: 0 at a hidden key, and 0 in a row
// with no allowed key. Block r takes row r of the scores (A, B, L, n), query (a, b, l); the mask is read at
// a s_a + b s_b + l s_l + j s_n (its strides, broadcast over the scores, in entries), or is absent (has_mask 0):
// key j of row r is allowed where !has_mask || mask[a s_a + b s_b + l s_l + j s_n], with l = r % L, b = (r / L) % B,
// a = r / (L B). A hidden key stands for z = lowest (the most negative finite T, as the formula writes it):
// exp(lowest - m) = 0. So m, the largest allowed z, starts from lowest; e = exp(z - m) at an allowed key, 0 at a
// hidden one; a row whose sum of e is 0 (no key allowed) gets 0 everywhere, not 0 / 0
extern "C" __global__ void masked_softmax_forward(const T* x, const bool* mask, T* y, long long n, T divisor,
                                                  T lowest, long long B, long long L, long long s_a, long long s_b,
                                                  long long s_l, long long s_n, int has_mask) {
    extern __shared__ T s[];
    // BEGIN SOLUTION A7: masked_softmax_forward: softmax_forward's steps on z = x / divisor, allowed keys only
    long long r = blockIdx.x, l = r % L, b = (r / L) % B, a = r / (L * B);
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const bool* allowed = mask + a * s_a + b * s_b + l * s_l;
    T m = lowest;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        T z = xr[j] / divisor;
        if ((!has_mask || allowed[j * s_n]) && z > m) m = z;
    }
    m = block_max(m, s);
    T total = 0;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) {
        T e = (!has_mask || allowed[j * s_n]) ? exp(xr[j] / divisor - m) : (T)0;
        yr[j] = e;
        total += e;
    }
    total = block_sum(total, s);  // 0 only when no key is allowed (the largest allowed term is exp(0) = 1)
    for (long long j = threadIdx.x; j < n; j += blockDim.x) yr[j] = total > 0 ? yr[j] / total : (T)0;
    // END SOLUTION
}

// x_hat = (x - mu) / sqrt(var + eps), y = gamma x_hat + beta; keeps x_hat and 1 / sqrt(var + eps) per row.
// mu and var = mean((x - mu)^2) (the biased variance) over the row of d entries, blockIdx.x's (its threads stride
// over it as in softmax_forward); gamma and beta (d entries, one per column) only where has_gamma and has_beta are
// not 0 (absent: as if 1 and 0); inv_std has one entry per row
extern "C" __global__ void layer_norm_forward(const T* x, const T* gamma, const T* beta, T* y, T* x_hat,
                                              T* inv_std, long long d, T eps, int has_gamma, int has_beta) {
    extern __shared__ T s[];
    // BEGIN SOLUTION A7: layer_norm_forward: mu, var (block_sum); x_hat = (x - mu) / sqrt(var + eps); y; inv_std
    long long row = (long long)blockIdx.x * d;
    T total = 0;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) total += x[row + i];
    T mu = block_sum(total, s) / (T)d;
    T squares = 0;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) {
        T c = x[row + i] - mu;
        squares += c * c;
    }
    T std = sqrt(block_sum(squares, s) / (T)d + eps);
    for (long long i = threadIdx.x; i < d; i += blockDim.x) {
        T h = (x[row + i] - mu) / std;
        x_hat[row + i] = h;
        T out = has_gamma ? h * gamma[i] : h;
        y[row + i] = has_beta ? out + beta[i] : out;
    }
    if (threadIdx.x == 0) inv_std[blockIdx.x] = (T)1 / std;
    // END SOLUTION
}

// xbar = ((g - <g>) - x_hat <g x_hat>) / sqrt(var + eps), g = gamma ybar, <.> the mean over the row
extern "C" __global__ void layer_norm_backward(const T* grad, const T* x_hat, const T* gamma, const T* inv_std,
                                               T* grad_x, long long d, int has_gamma) {
    extern __shared__ T s[];
    long long row = (long long)blockIdx.x * d;
    T sum_g = 0, sum_gh = 0;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) {
        T g = has_gamma ? grad[row + i] * gamma[i] : grad[row + i];
        sum_g += g;
        sum_gh += g * x_hat[row + i];
    }
    T mean_g = block_sum(sum_g, s) / (T)d;
    T mean_gh = block_sum(sum_gh, s) / (T)d;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) {
        T g = has_gamma ? grad[row + i] * gamma[i] : grad[row + i];
        grad_x[row + i] = ((g - mean_g) - x_hat[row + i] * mean_gh) * inv_std[blockIdx.x];
    }
}

// Sums over the rows of g (rows, n), column by column: sum_g[c] = sum_r g[r, c], and where has_h,
// sum_gh[c] = sum_r g[r, c] h[r, c] (a bias's gradient; layer norm's gamma and beta). Block k takes columns 32k to
// 32k + 31: thread t reads column 32k + t % 32 of the rows t / 32, t / 32 + lanes, ... (lanes = blockDim.x / 32;
// a warp reads 32 neighbouring entries of a row), adds them in double, then the lanes are added in shared memory.
// Launched with 1,024 threads (COLUMN_SUM_BLOCK): the bound holds the compiler to registers enough for that many
// (64 a thread at most; nvcc 13.0 gives it 28 for sm_90), where a launch would fail "too many resources requested".
extern "C" __global__ void __launch_bounds__(1024) column_sums(const T* g, const T* h, T* sum_g, T* sum_gh,
                                                               long long rows, long long n, int has_h) {
    extern __shared__ T s[];  // 2 blockDim.x: the lanes' sums of g, then of g h
    unsigned int lane = threadIdx.x / 32, lanes = blockDim.x / 32;
    long long c = (long long)blockIdx.x * 32 + threadIdx.x % 32;
    double a = 0, b = 0;
    if (c < n) {
        for (long long r = lane; r < rows; r += lanes) {
            double v = g[r * n + c];
            a += v;
            if (has_h) b += v * (double)h[r * n + c];
        }
    }
    s[threadIdx.x] = (T)a;
    s[blockDim.x + threadIdx.x] = (T)b;
    __syncthreads();
    for (unsigned int k = lanes / 2; k > 0; k >>= 1) {  // lanes is a power of two
        if (lane < k) {
            s[threadIdx.x] += s[threadIdx.x + 32 * k];
            s[blockDim.x + threadIdx.x] += s[blockDim.x + threadIdx.x + 32 * k];
        }
        __syncthreads();
    }
    if (lane == 0 && c < n) {
        sum_g[c] = s[threadIdx.x];
        if (has_h) sum_gh[c] = s[blockDim.x + threadIdx.x];
    }
}

// GELU, tanh form: t = tanh(c (x + kappa x^3)), y = x (1 + t) / 2; c = sqrt(2/pi), kappa = 0.044715; keeps t
extern "C" __global__ void gelu_forward(const T* x, T* y, T* t, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T xi = x[i];
        T ti = tanh((T)0.7978845608028654 * (xi + (T)0.044715 * xi * xi * xi));
        t[i] = ti;
        y[i] = (T)0.5 * xi * ((T)1 + ti);
    }
}

// xbar = ybar ((1 + t) + x (1 - t^2) c (1 + 3 kappa x^2)) / 2
extern "C" __global__ void gelu_backward(const T* grad, const T* x, const T* t, T* grad_x, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T xi = x[i], ti = t[i];
        T du = ((T)1 - ti * ti) * ((T)0.7978845608028654 * ((T)1 + (T)(3 * 0.044715) * xi * xi));
        grad_x[i] = grad[i] * (T)0.5 * (((T)1 + ti) + xi * du);
    }
}

// Binary cross-entropy from the logits, entry by entry: e = exp(-|z|), loss = (max(z, 0) - z y) + log1p(e); keeps e
// (log1p: for |z| past 37 in double, 17 in float, 1 + e rounds to 1 and log would give 0)
extern "C" __global__ void bce_with_logits_forward(const T* z, const T* y, T* loss, T* e, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T zi = z[i], ei = exp(-fabs(zi));
        e[i] = ei;
        loss[i] = ((zi > 0 ? zi : (T)0) - zi * y[i]) + log1p(ei);
    }
}

// zbar = (sigma(z) - y) w, sigma(z) = (z >= 0 ? 1 : e) / (1 + e); w = grad[i] (reduction "none") or grad[0] / count
// (the mean's N, or 1 for the sum)
extern "C" __global__ void bce_with_logits_backward(const T* grad, const T* z, const T* y, const T* e, T* grad_z,
                                                    long long n, T count, int per_entry) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T sigma = (z[i] >= 0 ? (T)1 : e[i]) / ((T)1 + e[i]);
        grad_z[i] = (sigma - y[i]) * (per_entry ? grad[i] : grad[0] / count);
    }
}

// Adam's step (minitransformer.optim.Adam.update) on every entry: weight decay (L2 into g, or decoupled: theta
// shrinks), the moments m and v, their bias corrections, the new theta; the scalars come from the host
extern "C" __global__ void adam_update(const T* theta, const T* g, const T* m, const T* v, T* theta_out, T* m_out,
                                       T* v_out, long long n, T alpha, T beta_1, T one_minus_beta_1, T beta_2,
                                       T one_minus_beta_2, T correction_1, T correction_2, T eps, T lam, T shrink,
                                       int decoupled) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T th = theta[i], gi = g[i];
        if (lam != 0) {
            if (decoupled) th = th * shrink;  // theta (1 - alpha lambda)
            else gi = gi + lam * th;          // g + lambda theta
        }
        T mi = beta_1 * m[i] + one_minus_beta_1 * gi;
        T vi = beta_2 * v[i] + one_minus_beta_2 * gi * gi;
        m_out[i] = mi;
        v_out[i] = vi;
        T m_hat = mi / correction_1, v_hat = vi / correction_2;
        theta_out[i] = th - alpha * m_hat / (sqrt(v_hat) + eps);
    }
}

// CounterRNG's uniforms (minitransformer.backend.CounterRNG.random): u_i = (mix(key + (start + i) g) >> 11) / 2^53
// with SplitMix64's finaliser mix, all modulo 2^64; a grid-stride loop, each thread its own entries
extern "C" __global__ void counter_uniform(double* u, long long n, unsigned long long start,
                                           unsigned long long key) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        unsigned long long z = (start + (unsigned long long)i) * 0x9E3779B97F4A7C15ULL + key;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        u[i] = (double)(z >> 11) * (1.0 / 9007199254740992.0);
    }
}

// The gradient of a row lookup without atomics and without sorting, for up to CHAIN_MAX positions: the positions
// of each id form a chain, walked in order. chains[i] = the next position m > i with ids[m] = ids[i] (-1: none), and
// chains[n + i] = 1 where no position before i has its id (i starts a chain). O(n) per position, from cache.
extern "C" __global__ void id_chains(const long long* ids, long long* chains, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        long long id = ids[i], next = -1, first = 1;
        for (long long m = 0; m < i; ++m)
            if (ids[m] == id) { first = 0; break; }
        for (long long m = i + 1; m < n; ++m)
            if (ids[m] == id) { next = m; break; }
        chains[i] = next;
        chains[n + i] = first;
    }
}

// out[id] += values[m] for the positions m of each id's chain, one after another from its first: the thread of
// (first position i, column c) adds them, so the sums are those of NumPy's add.at (in the order of n) at every run
extern "C" __global__ void scatter_add_chains(const long long* ids, const long long* chains, const T* values, T* out,
                                             long long n, long long d) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < n * d; k += stride) {
        long long i = k / d, c = k % d;
        if (!chains[n + i]) continue;  // not the first of its id: the first adds the chain
        T s = out[ids[i] * d + c];
        for (long long m = i; m >= 0; m = chains[m]) s += values[m * d + c];
        out[ids[i] * d + c] = s;
    }
}

// The gradient of a row lookup without atomics: out[id] += values[n] for every n with ids[n] = id, added in the
// order of n. `order` sorts the ids stably and `sorted_ids` = ids[order]; the thread of the first position of a
// run of equal ids and of column c adds up that run's rows one after another. The sums are the same at every
// run, and the same as NumPy's add.at (which adds in the order of n).
extern "C" __global__ void scatter_add_sorted(const long long* sorted_ids, const long long* order, const T* values,
                                              T* out, long long n, long long d) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < n * d; k += stride) {
        long long i = k / d, c = k % d, id = sorted_ids[i];
        if (i > 0 && sorted_ids[i - 1] == id) continue;  // not the first of its run: the first adds the run
        T s = out[id * d + c];
        for (long long j = i; j < n && sorted_ids[j] == id; ++j) s += values[order[j] * d + c];
        out[id * d + c] = s;
    }
}
"""

#: the C type of each dtype the kernels take
C_TYPES = {"float32": "float", "float64": "double"}
#: threads per block, at most (a row longer than this is strided over)
MAX_BLOCK = 256
#: blocks of an elementwise kernel, at most (each thread strides over the entries beyond)
MAX_GRID = 4096
#: threads of a column sum, 32 columns each read by 32 threads a row apart (:meth:`CudaKernels.column_sums`)
COLUMN_SUM_BLOCK = 1024
#: positions up to which a scatter-add chains its ids rather than sorting them (:meth:`CudaKernels.scatter_add`):
#: chaining reads up to all n ids for each position, O(n^2) in all (from cache), where sorting costs O(n log n)
CHAIN_MAX = 32768
#: the largest m, n, k, leading dimension or batch count cuBLAS's 32-bit interface takes (:meth:`CudaKernels.matmul`)
CUBLAS_INT_MAX = 2**31 - 1


def cublas_layout(x) -> tuple[bool, int, int, int] | None:
    r"""How cuBLAS reads each matrix of ``x`` ``(..., r, c)`` where it lies: ``(transposed, ld, stride, count)``.

    cuBLAS reads a matrix column after column, column j starting ``ld`` entries after column j - 1. A matrix
    laid out row after row (rows ``ld >= c`` entries apart) is, read that way, its transpose: cuBLAS is told
    to use it as stored (``transposed`` False). One laid out column after column (a transposed view,
    :math:`W^\top`) is read as it is and used transposed (True). The leading axes must step through the
    ``count`` matrices at one ``stride``, as cuBLAS's strided batches do. In entries; None where cuBLAS cannot
    read ``x`` in place (a permuted view: heads split from the features), which is then copied.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.zeros((3, 4), dtype=np.float32)
    >>> cublas_layout(W), cublas_layout(W.T), cublas_layout(W[:, :2])
    ((False, 4, 0, 1), (True, 4, 0, 1), (False, 4, 0, 1))
    >>> heads = np.zeros((2, 5, 3, 4), dtype=np.float32)         # (batch, seq, heads, d_k)
    >>> cublas_layout(heads), cublas_layout(heads.transpose(0, 2, 1, 3))
    ((False, 4, 12, 10), None)
    """
    shape, strides, item = x.shape, x.strides, x.itemsize
    r, c, s_r, s_c = shape[-2], shape[-1], strides[-2] // item, strides[-1] // item
    if c == 1:  # the stride of an axis of one entry is never used: take the layout's own
        s_c = 1
    if r == 1:
        s_r = c if s_c == 1 else 1
    if s_c == 1 and s_r >= c:
        transposed, ld = False, s_r
    elif s_r == 1 and s_c >= r:
        transposed, ld = True, s_c
    else:
        return None
    stride, count = 0, 1
    for axis in range(len(shape) - 3, -1, -1):  # the batch axes, innermost first: each steps over all inner ones
        n, s = shape[axis], strides[axis] // item
        if n == 1:
            continue
        if count == 1:
            stride = s
        if s <= 0 or s != stride * count:
            return None
        count *= n
    return transposed, max(ld, 1), stride, count


def block_size(n: int) -> int:
    """Threads for a row of ``n``: the power of two at or above ``n``, from 32 (a warp) to ``MAX_BLOCK``.

    Examples
    --------
    >>> [block_size(n) for n in (1, 32, 33, 100, 512, 100_000)]
    [32, 32, 64, 128, 256, 256]
    """
    return min(MAX_BLOCK, max(32, 1 << (int(n) - 1).bit_length()))


class CudaKernels:
    """The kernels of :data:`SOURCE` on CuPy, compiled per dtype on first use (``cupy.RawModule``).

    Each method takes and returns CuPy arrays; rows are the last axis. :meth:`fits` says which
    arrays they take: float32 or float64, reduced over the last axis, not empty.

    Parameters
    ----------
    cupy : module
        The ``cupy`` module.

    Examples
    --------
    Needs a GPU (``tests/test_kernels.py`` runs it there):

    >>> import cupy  # doctest: +SKIP
    >>> kernels = CudaKernels(cupy)  # doctest: +SKIP
    >>> kernels.softmax_forward(cupy.asarray([[1.0, 2.0, 3.0]])).round(4)  # doctest: +SKIP
    array([[0.09  , 0.2447, 0.6652]])
    """

    def __init__(self, cupy):
        self.cupy = cupy
        self._modules: dict[str, object] = {}
        self._functions: dict[tuple[str, str], object] = {}
        self._cublas = None  # CuPy's binding of cuBLAS and its runtime's type codes, at the first product
        self._no_mask = None  # what masked_softmax_forward passes for no mask
        #: float32 products in TF32 (on GPUs of compute capability 8.0 and later), as CuPy's own are with CUPY_TF32=1
        self.tf32 = tf32_requested()

    def fits(self, x, axis: int = -1) -> bool:
        """Whether the kernels take ``x`` reduced along ``axis``."""
        return x.dtype.name in C_TYPES and axis in (-1, x.ndim - 1) and x.size > 0

    def _run(self, name: str, dtype: str, grid: int, block: int, args: tuple, shared_mem: int = 0) -> None:
        """Launch kernel ``name`` of the module compiled for ``dtype`` on ``grid`` blocks of ``block`` threads."""
        function = self._functions.get((dtype, name))
        if function is None:  # looked up once: RawModule.get_function builds a new RawKernel at every call
            if dtype not in self._modules:
                self._modules[dtype] = self.cupy.RawModule(code=SOURCE.replace("{T}", C_TYPES[dtype]))
            function = self._functions[dtype, name] = self._modules[dtype].get_function(name)
        function((grid,), (block,), args, shared_mem=shared_mem)

    def _launch(self, name: str, x, args: tuple) -> None:
        """Run row kernel ``name`` for ``x``'s dtype: one block per row of ``x``'s last axis."""
        n = x.shape[-1]
        block = block_size(n)
        self._run(name, x.dtype.name, x.size // n, block, args, shared_mem=block * x.itemsize)

    def _contiguous(self, a):
        # the kernels index rows and entries as one flat block; ascontiguousarray makes a 0-d array 1-d
        if isinstance(a, self.cupy.ndarray) and a.flags.c_contiguous:
            return a  # itself, so that an array updated in place is still the one its views show
        return self.cupy.ascontiguousarray(a).reshape(a.shape)

    def _scalar(self, x, value):
        return x.dtype.type(value)  # passed to the kernel as exactly T

    def softmax_forward(self, x):
        """Softmax along the last axis: ``(..., n)`` -> ``(..., n)``."""
        x = self._contiguous(x)
        y = self.cupy.empty_like(x)
        self._launch("softmax_forward", x, (x, y, self.cupy.int64(x.shape[-1])))
        return y

    def softmax_backward(self, grad, y, divisor: float = 1.0):
        r""":math:`\bar x` from :math:`\bar y` ``grad`` and the softmax ``y``, both ``(..., n)``; divided by
        ``divisor`` (:math:`\sqrt{d_k}` for attention's weights, :meth:`masked_softmax_forward`)."""
        grad, y = self._contiguous(grad), self._contiguous(y)
        grad_x = self.cupy.empty_like(y)
        self._launch("softmax_backward", y, (grad, y, grad_x, self.cupy.int64(y.shape[-1]), self._scalar(y, divisor)))
        return grad_x

    def fits_mask(self, x, mask) -> bool:
        """Whether :meth:`masked_softmax_forward` takes scores ``x`` ``(..., L, S)`` (at most 4 axes) and ``mask``
        (None, or booleans that broadcast to ``x`` by non-negative strides)."""
        if not self.fits(x) or not 2 <= x.ndim <= 4:
            return False
        if mask is None:
            return True
        return mask.dtype == self.cupy.bool_ and mask.ndim <= x.ndim and min(mask.strides, default=0) >= 0

    def masked_softmax_forward(self, x, mask, divisor: float):
        r"""Attention's weights: softmax along the last axis of ``x / divisor`` over the keys ``mask`` allows.

        ``x`` ``(..., L, S)`` (up to 4 axes), ``mask`` booleans broadcastable to it, or None. A hidden key gets
        weight 0, and so does every key of a query with none allowed
        (:class:`~minitransformer.autograd.fused.ScaledMaskedSoftmax`). Its gradient is :meth:`softmax_backward`
        with the same ``divisor``.
        """
        x = self._contiguous(x)
        y = self.cupy.empty_like(x)
        A, B, L = (1,) * (4 - x.ndim) + x.shape[:-1]
        strides = (0, 0, 0, 0)
        if mask is not None:  # the mask's entries as the scores see them: a broadcast axis has stride 0
            seen = self.cupy.broadcast_to(mask, x.shape)
            strides = (0,) * (4 - x.ndim) + tuple(step // seen.itemsize for step in seen.strides)
        else:  # none is read (has_mask 0): an empty mask of the kernel's type, made once
            if self._no_mask is None:
                self._no_mask = self.cupy.empty((0,), dtype=self.cupy.bool_)
            seen = self._no_mask
        int64 = self.cupy.int64
        self._launch("masked_softmax_forward", x,
                     (x, seen, y, int64(x.shape[-1]), self._scalar(x, divisor),
                      self._scalar(x, self.cupy.finfo(x.dtype).min), int64(B), int64(L), *(int64(k) for k in strides),
                      self.cupy.int32(mask is not None)))
        return y

    def _elementwise(self, name: str, dtype: str, n: int, args: tuple) -> None:
        """Run elementwise kernel ``name`` over ``n`` entries: blocks enough to fill the GPU, each thread striding."""
        if n:
            self._run(name, dtype, min(-(-n // MAX_BLOCK), MAX_GRID), MAX_BLOCK, args)

    def gelu_forward(self, x):
        r"""``(y, t)``: GELU of ``x`` and :math:`t = \tanh(c (x + \kappa x^3))`, both the shape of ``x``."""
        x = self._contiguous(x)
        y, t = self.cupy.empty_like(x), self.cupy.empty_like(x)
        self._elementwise("gelu_forward", x.dtype.name, x.size, (x, y, t, self.cupy.int64(x.size)))
        return y, t

    def gelu_backward(self, grad, x, t):
        r""":math:`\bar x` from :math:`\bar y` ``grad``, ``x`` and ``t``, all of one shape."""
        grad, x, t = self._contiguous(grad), self._contiguous(x), self._contiguous(t)
        grad_x = self.cupy.empty_like(x)
        self._elementwise("gelu_backward", x.dtype.name, x.size, (grad, x, t, grad_x, self.cupy.int64(x.size)))
        return grad_x

    def bce_with_logits_forward(self, z, y):
        r"""``(loss, e)``: the binary cross-entropy of logits ``z`` against targets ``y``, and :math:`e^{-|z|}`.

        ``z`` and ``y`` of one shape and dtype; both results have it
        (:class:`~minitransformer.autograd.fused.BinaryCrossEntropyWithLogits`).
        """
        z, y = self._contiguous(z), self._contiguous(y)
        loss, e = self.cupy.empty_like(z), self.cupy.empty_like(z)
        self._elementwise("bce_with_logits_forward", z.dtype.name, z.size, (z, y, loss, e, self.cupy.int64(z.size)))
        return loss, e

    def bce_with_logits_backward(self, grad, z, y, e, count: int, per_entry: bool):
        r""":math:`\bar z = (\sigma(z) - y)\, w`: ``w`` is ``grad`` (of ``z``'s shape) where ``per_entry``, else the
        0-d ``grad`` divided by ``count`` (the mean's number of entries, 1 for a sum)."""
        grad, z, y, e = (self._contiguous(a) for a in (grad, z, y, e))
        grad_z = self.cupy.empty_like(z)
        self._elementwise("bce_with_logits_backward", z.dtype.name, z.size,
                          (grad, z, y, e, grad_z, self.cupy.int64(z.size), self._scalar(z, count),
                           self.cupy.int32(per_entry)))
        return grad_z

    def adam_update(self, theta, g, m, v, t: int, lr: float, beta_1: float, beta_2: float, eps: float,
                    weight_decay: float, decoupled: bool):
        """``(theta, m, v)`` after step ``t`` of :class:`~minitransformer.optim.Adam`, each shaped as ``theta``.

        All three are updated in place and returned (each entry is read before it is written), as PyTorch's
        optimizers update parameters: views of them stay valid, so the optimizer makes no new views of the
        parameters laid end to end at each step (on SEED 27 calls fewer; each costs the host a few
        microseconds on CuPy).
        """
        theta, g, m, v = (self._contiguous(a) for a in (theta, g, m, v))
        out = [theta, m, v]
        scalars = (lr, beta_1, 1 - beta_1, beta_2, 1 - beta_2, 1 - beta_1**t, 1 - beta_2**t, eps, weight_decay,
                   1 - lr * weight_decay)  # each computed as Adam.update computes it, then cast to T
        scalars = tuple(self._scalar(theta, c) for c in scalars)
        self._elementwise("adam_update", theta.dtype.name, theta.size,
                          (theta, g, m, v, *out, self.cupy.int64(theta.size), *scalars, self.cupy.int32(decoupled)))
        return tuple(out)

    def scatter_add(self, out, indices, values) -> None:
        r"""``out[indices[n]] += values[n]`` for every n, in the order of n: the same sums at every run.

        ``out`` ``(V, *rest)`` (C-contiguous, changed in place), ``indices`` ``(N,)`` integers in ``[0, V)``,
        ``values`` ``(N, *rest)``. CuPy's own scatter-add uses atomic additions, whose order (and so the
        rounding of the sums) changes from run to run. Here each id's positions are found as a chain (the
        next position with the same id), and one thread per first position and column adds its chain in
        order; beyond ``CHAIN_MAX`` positions, where finding the chains would cost O(n^2), the ids are
        sorted instead (a stable sort keeps the order of n within each id).
        """
        cp = self.cupy
        ids = self._contiguous(indices.astype(cp.int64, copy=False))
        n = ids.shape[0]
        d = out.size // out.shape[0] if out.shape[0] else 0
        values = self._contiguous(values)
        if n <= CHAIN_MAX:  # each id's positions as a chain: two launches, where a sort costs the host many
            chains = cp.empty((2 * n,), dtype=cp.int64)
            self._elementwise("id_chains", out.dtype.name, n, (ids, chains, cp.int64(n)))
            self._elementwise("scatter_add_chains", out.dtype.name, n * d,
                              (ids, chains, values, out, cp.int64(n), cp.int64(d)))
            return
        order = cp.argsort(ids, kind="stable")  # many positions: finding the chains would take O(n^2)
        sorted_ids = cp.take(ids, order)
        self._elementwise("scatter_add_sorted", out.dtype.name, n * d,
                          (sorted_ids, order, values, out, cp.int64(n), cp.int64(d)))

    def counter_uniform(self, n: int, start: int, key: int):
        """``(n,)`` float64 uniforms of :class:`~minitransformer.backend.CounterRNG` from position ``start`` on."""
        u = self.cupy.empty((n,), dtype=self.cupy.float64)
        self._elementwise("counter_uniform", "float64", n,
                          (u, self.cupy.int64(n), self.cupy.uint64(start % 2**64), self.cupy.uint64(key)))
        return u

    def layer_norm_forward(self, x, gamma, beta, eps: float):
        r"""``(y, x_hat, inv_std)``: ``y``, :math:`\hat x` ``(..., d)``; :math:`1/\sqrt{\sigma^2+\epsilon}` ``(..., 1)``

        ``gamma`` and ``beta`` ``(d,)`` may be None.
        """
        x = self._contiguous(x)
        y, x_hat = self.cupy.empty_like(x), self.cupy.empty_like(x)
        inv_std = self.cupy.empty((*x.shape[:-1], 1), dtype=x.dtype)
        gamma_ = x if gamma is None else self._contiguous(gamma)  # (an unread stand-in when absent)
        beta_ = x if beta is None else self._contiguous(beta)
        self._launch("layer_norm_forward", x, (x, gamma_, beta_, y, x_hat, inv_std, self.cupy.int64(x.shape[-1]),
                                               self._scalar(x, eps), self.cupy.int32(gamma is not None),
                                               self.cupy.int32(beta is not None)))
        return y, x_hat, inv_std

    def layer_norm_backward(self, grad, x_hat, gamma, inv_std):
        r""":math:`\bar x` ``(..., d)`` from :math:`\bar y`, :math:`\hat x`, :math:`\gamma` (or None), ``inv_std``."""
        grad, x_hat = self._contiguous(grad), self._contiguous(x_hat)
        grad_x = self.cupy.empty_like(x_hat)
        gamma_ = x_hat if gamma is None else self._contiguous(gamma)
        inv_std = self._contiguous(inv_std)
        d, has_gamma = self.cupy.int64(x_hat.shape[-1]), self.cupy.int32(gamma is not None)
        self._launch("layer_norm_backward", x_hat, (grad, x_hat, gamma_, inv_std, grad_x, d, has_gamma))
        return grad_x

    def column_sums(self, g, h=None):
        r"""``(sum_g, sum_gh)``: :math:`\sum_{\text{rows}} g` and :math:`\sum_{\text{rows}} g\,h` (None without ``h``).

        ``g`` (and ``h``, of its shape) ``(..., n)``: every axis but the last is a row; both sums are ``(n,)``. A
        bias's gradient is :math:`\sum_{\text{rows}} \bar Y`; layer norm's :math:`\bar\beta` and :math:`\bar\gamma`
        are :math:`\sum_{\text{rows}} \bar y` and :math:`\sum_{\text{rows}} \bar y \hat x`, in one launch.
        """
        g = self._contiguous(g)
        h_ = g if h is None else self._contiguous(h)  # (an unread stand-in when absent)
        n = g.shape[-1]
        sum_g = self.cupy.empty((n,), dtype=g.dtype)
        sum_gh = sum_g if h is None else self.cupy.empty((n,), dtype=g.dtype)
        rows, block = g.size // n, COLUMN_SUM_BLOCK
        self._run("column_sums", g.dtype.name, -(-n // 32), block,  # a block per 32 columns
                  (g, h_, sum_g, sum_gh, self.cupy.int64(rows), self.cupy.int64(n), self.cupy.int32(h is not None)),
                  shared_mem=2 * block * g.itemsize)
        return sum_g, (None if h is None else sum_gh)

    def matmul(self, a, b):
        r""":math:`A B` by one cuBLAS call: ``(..., n, k) @ (..., k, m)`` -> ``(..., n, m)``, float32 or float64.

        CuPy's own ``matmul`` reaches the same cuBLAS routine through a general (NumPy-like) front end, and with
        more than two axes copies every operand that is not laid out row after row: each transposed one
        (:math:`K^\top`) too. Here each operand is read where it lies (:func:`cublas_layout`): a transposed one
        with cuBLAS's transpose flag, a stack of matrices one stride apart as a strided batch; only one that
        cuBLAS cannot read that way (a permuted view) is copied first.

        cuBLAS reads matrices column after column, and a C-contiguous ``(n, m)`` array read that way is
        :math:`C^\top`. So it is asked for :math:`C^\top = B^\top A^\top`: the product, row after row.

        Returns None where :meth:`cublas_takes` says no: the caller uses ``matmul`` of the array API
        (``minitransformer.autograd.ops._matmul``).
        """
        if not self.cublas_takes(a, b):
            return None
        shape_a, shape_b = a.shape, b.shape
        n, k, m = shape_a[-2], shape_a[-1], shape_b[-1]
        blas = self._blas_types[a.dtype]
        (a, (t_a, ld_a, stride_a, count)), (b, (t_b, ld_b, stride_b, _)) = self._laid_out(a), self._laid_out(b)
        if max(ld_a, ld_b, count) > CUBLAS_INT_MAX:
            return None
        c = self.cupy.empty((*shape_a[:-2], n, m), dtype=a.dtype)
        # C^T (m, n) = op(B^T) op(A^T): cuBLAS's first operand is b, its second a; C^T has m rows, column j = row j of C
        self._gemm(blas, t_b, t_a, m, n, k, b, ld_b, stride_b, a, ld_a, stride_a, c, m, n * m, count)
        return c

    def cublas_takes(self, a, b) -> bool:
        """Whether :meth:`matmul` computes ``a @ b`` by cuBLAS. Not for a vector, where the batch axes differ (a
        broadcast), where the dtypes are not both float32 or both float64 (or cuBLAS is not there), where the
        matrices do not chain, or where nothing is to be computed (an empty matrix or stack). (``matmul`` still
        declines operands whose strides, as laid out for cuBLAS, pass its 32-bit limit: sizes no test reaches.)"""
        shape_a, shape_b = a.shape, b.shape
        if len(shape_a) < 2 or len(shape_b) < 2:  # a vector: the array API's rules for it
            return False
        return (a.dtype in self._blas_types and b.dtype == a.dtype and shape_a[:-2] == shape_b[:-2]
                and shape_b[-2] == shape_a[-1] and a.size > 0 and b.size > 0  # (an empty stack: strides 0)
                and max(*shape_a[-2:], shape_b[-1]) <= CUBLAS_INT_MAX)

    def readable(self, x):
        """``x`` itself if :meth:`matmul` reads it in place (or leaves it to the array API), else a copy laid out row
        after row: for an operand used by several products, one copy instead of one in each."""
        if len(x.shape) < 2 or x.dtype not in self._blas_types or x.size == 0:
            return x
        return self._laid_out(x)[0]

    def _laid_out(self, x) -> tuple:
        """``(x, its cublas_layout)``; ``x`` copied row after row first where cuBLAS cannot read it (permuted)."""
        layout = cublas_layout(x)
        if layout is None:
            x = self.cupy.ascontiguousarray(x)
            layout = cublas_layout(x)
        return x, layout

    @functools.cached_property
    def _blas_types(self) -> dict:
        """``{dtype: (data type, compute type, alpha, beta)}`` for cuBLAS, per dtype the products take (made at the
        first product); alpha = 1 and beta = 0 as C scalars on the host, kept here, so alive whenever cuBLAS reads
        them. Empty, so that CuPy's own ``matmul`` does every product, on ROCm (hipBLAS behind the same binding
        takes other type codes) or without the binding (with a warning)."""
        if self._cublas is None:
            try:
                from cupy_backends.cuda.api import runtime
                from cupy_backends.cuda.libs import cublas
            except ImportError as e:
                warnings.warn(f"CudaKernels.matmul: CuPy's binding of cuBLAS is not where it was ({e}); the matrix "
                              "products go through cupy.matmul", RuntimeWarning, stacklevel=3)
                return {}
            self._cublas = cublas, runtime
        cublas, runtime = self._cublas
        blas = {}
        if not runtime.is_hip:
            tf32 = self.tf32 and self._compute_capability() >= 80  # as CuPy: TF32 exists from Ampere on
            f32 = cublas.CUBLAS_COMPUTE_32F_FAST_TF32 if tf32 else cublas.CUBLAS_COMPUTE_32F
            for name, data, compute, scalar in (("float32", runtime.CUDA_R_32F, f32, ctypes.c_float),
                                                ("float64", runtime.CUDA_R_64F, cublas.CUBLAS_COMPUTE_64F,
                                                 ctypes.c_double)):
                blas[self.cupy.dtype(name)] = data, compute, scalar(1), scalar(0)
        return blas

    def _gemm(self, blas: tuple, trans_a: bool, trans_b: bool, m: int, n: int, k: int, A, lda: int, stride_a: int, B,
              ldb: int, stride_b: int, C, ldc: int, stride_c: int, count: int) -> None:
        r"""cuBLAS's :math:`C_i = \mathrm{op}(A_i)\, \mathrm{op}(B_i)` for ``i < count``, column-major, ``op``
        transposing where asked: ``gemmEx``, or ``gemmStridedBatchedEx`` for a stack, on CuPy's handle and stream.
        ``blas`` is the dtype's entry of :attr:`_blas_types`."""
        cublas = self._cublas[0]
        data, compute, one, zero = blas
        alpha, beta = ctypes.addressof(one), ctypes.addressof(zero)  # read by cuBLAS on the host, during the call
        handle, a, b, c = self._cublas_handle(), self._address(A), self._address(B), self._address(C)
        if count == 1:
            cublas.gemmEx(handle, int(trans_a), int(trans_b), m, n, k, alpha, a, data, lda, b, data, ldb, beta, c, data,
                          ldc, compute, cublas.CUBLAS_GEMM_DEFAULT)
        else:
            cublas.gemmStridedBatchedEx(handle, int(trans_a), int(trans_b), m, n, k, alpha, a, data, lda, stride_a, b,
                                        data, ldb, stride_b, beta, c, data, ldc, stride_c, count, compute,
                                        cublas.CUBLAS_GEMM_DEFAULT)

    def _compute_capability(self) -> int:
        return int(self.cupy.cuda.Device().compute_capability)  # e.g. 90 for an H100 or H200

    def _cublas_handle(self) -> int:
        return self.cupy.cuda.device.get_cublas_handle()  # this device's; cuBLAS's calls set CuPy's current stream

    def _address(self, x) -> int:
        return x.data.ptr  # of x's first entry
