"""Notebook 12_gpu_kernels: its cells, built by ``tools/make_notebooks.py``."""

from .cells import code, exercise, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "3.4e38": "float32's largest value, which the emulator fills fresh arrays and shared memory with",
    "88.7": "ln of float32's largest value (a formula's constant)",
}

CELLS = [
    md(r"""
    # 12 · Writing GPU kernels: threads, blocks, shared memory

    **What this notebook teaches.** How a CUDA kernel computes, written in CUDA C++ and run from Python: one
    thread per entry and the grid-stride loop; a sum over a block of threads in shared memory, a tree of
    $\log_2$ of the block's size rounds,

    $$ s_t \leftarrow s_t + s_{t+k} \quad (t < k), \qquad k = \tfrac{B}{2}, \tfrac{B}{4}, \dots, 1, $$

    each round ended by a barrier, `__syncthreads()`; what goes wrong without the barrier (a race); and
    softmax with one block per row,

    $$ y_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad m = \max_j x_j , $$

    two block reductions (a max, then a sum), checked against `F.softmax`; then how the 32 threads of a
    **warp** add up their values with no shared memory, each lane $\ell$ taking lane $\ell + k$'s value by a
    shuffle,

    $$ v_\ell \leftarrow v_\ell + v_{\ell + k}, \qquad k = 16, 8, 4, 2, 1 , $$

    and a block's sum from its warps' sums with 2 barriers where the tree has $1 + \log_2 B$. These are the
    kernels the library runs on a GPU (`minitransformer/kernels.py`), and assignment A7's exercise.

    **No GPU needed.** The kernels run on the CPU under `minitransformer.cuda_emulator`, an emulation of
    CUDA: the source is compiled by `g++`, each CUDA thread runs in turn up to its next barrier (or warp
    operation: section 5), and every launch runs twice, blocks and threads first to last and last to first,
    which must agree to the bit (a GPU promises neither order; section 3 says what this catches, and what
    not). It takes CuPy's calls,
    `RawModule(code=source)`, `get_function(name)` and the launch `kernel(grid, block, args, shared_mem=...)`:
    on a GPU the same CUDA source runs with the same launches, `cupy` in place of `cuda_emulator` and CuPy
    arrays in place of NumPy's. What is the emulator's own:

    - `emu.empty` fills a new array with a huge number, so that an entry no thread wrote shows (`cupy.empty`
      leaves whatever the memory held);
    - a `RawModule`'s `kernels` (its source's kernels, by name) and its argument `name` (what messages call
      the source): `cupy.RawModule` has neither (it takes `code`, `options`, `name_expressions`, ...);
    - `emu.LaunchError` (a race, a barrier not every thread reaches, a write past an array) and `emu.missing()`
      (why the emulator cannot run here): a GPU reports none of these; it gives wrong numbers, hangs, or
      stops the kernel;
    - the results are NumPy arrays, checked here against `F.softmax` on the NumPy backend: on a GPU, copy a
      result to the host first (`cupy.asnumpy(y)`).

    It needs `g++` (Linux): the first code cell says so where it is missing.

    Steps: **1** a first kernel: one thread per entry, the grid-stride loop · **2** a block's sum in shared
    memory, round by round · **3** a race made visible · **4** softmax, one block per row, against
    `F.softmax`, and the subnormals a GPU flushes to zero · **5** warps: sums by shuffles, the mask, a block's
    sum from its warps' · **6** the library's kernels and A7.

    The three cells whose first line marks them as A7's solutions (a comment naming `A7` and what to write) hold
    the answers to assignment A7's exercises: in a student copy (`minitransformer assignments build 7`) the
    marked lines are replaced by `raise NotImplementedError(...)`, and you write them (as in notebook 01).
    """),
    code("""
    import numpy as np

    import minitransformer as mt
    import minitransformer.functional as F
    from minitransformer import cuda_emulator as emu

    if emu.missing():   # no g++ (or Windows): nothing below can run
        raise RuntimeError(f"This notebook runs CUDA kernels on the CPU with minitransformer.cuda_emulator, and here "
                           f"{emu.missing()}. Install it: {emu.INSTALL}; then restart the kernel.")
    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    print("g++ is here: CUDA kernels compile for the CPU emulation (minitransformer", mt.__version__ + ")")
    """),
    md(r"""
    ## 1. A first kernel: one thread per entry

    A kernel is a function that every thread of a launch runs. A launch is a **grid** of blocks, each a
    **block** of threads; inside the kernel a thread knows where it is: `blockIdx.x` (its block),
    `threadIdx.x` (its place in the block), `blockDim.x` (threads per block), `gridDim.x` (blocks). Entry
    $i = \text{blockIdx.x} \cdot \text{blockDim.x} + \text{threadIdx.x}$ is this thread's. The kernel below
    writes $y = a x$, and also which block and thread wrote each entry (`100 * block + thread`).

    `__global__` marks a kernel: a function launched from the host (Python here) and run by every thread of
    the launch; `extern "C"` keeps its name as written, which `get_function` looks up. `blockIdx.x` and
    `blockDim.x` are 32-bit unsigned integers, so their product wraps around past $2^{32}$ entries; the cast
    to `long long` (64 bits) before multiplying keeps the index right for any array. A launch is a call
    `kernel(grid, block, args, shared_mem=bytes)`: `grid` the number of blocks and `block` the threads per
    block, each a tuple (`(blocks,)`, one dimension here), `args` the kernel's arguments in order, and
    `shared_mem` the bytes of shared memory per block (section 2; none here). A number is passed as a NumPy
    scalar of the parameter's type (`np.float32` for a `float`), an array as a NumPy array of the pointer's
    type. `emu.empty` gives arrays filled with a huge number (3.4e38), so that an entry no thread wrote shows.
    """),
    code(r'''
    FIRST = r"""
    extern "C" __global__ void scale(const float* x, float* y, float* who, float a, long long n) {
        long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) {                     // the last block may have threads past the end
            y[i] = a * x[i];
            who[i] = 100 * blockIdx.x + threadIdx.x;
        }
    }

    // the same with a grid-stride loop: a grid of any size covers any n, each thread taking every
    // (gridDim.x * blockDim.x)-th entry from its own
    extern "C" __global__ void scale_strided(const float* x, float* y, float* who, float a, long long n) {
        long long stride = (long long)gridDim.x * blockDim.x;
        for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
            y[i] = a * x[i];
            who[i] = 100 * blockIdx.x + threadIdx.x;
        }
    }
    """
    first = emu.RawModule(code=FIRST)
    print("kernels:", first.kernels)

    n = 10
    x = np.arange(n, dtype=np.float32)
    y, who = emu.empty(n, np.float32), emu.empty(n, np.float32)
    blocks = -(-n // 4)                                     # ceil(n / 4) blocks of 4 threads: 12 threads, 10 entries
    first.get_function("scale")((blocks,), (4,), (x, y, who, np.float32(2.0), np.int64(n)))
    print("y   =", y)
    print("who =", who.astype(int), "  (100 * block + thread)")
    '''),
    md(r"""
    With the `if (i < n)` left out, the two threads past the end (threads 2 and 3 of block 2) write past the
    arrays; on a GPU that silently overwrites whatever lies there, but the emulator keeps guard bytes around
    each array, checks them after the launch, and says so (arguments are counted from 0: `x` is argument 0):
    """),
    code("""
    UNGUARDED = FIRST.replace("if (i < n) {", "{")              # the same kernels, no bound check
    assert UNGUARDED != FIRST
    try:
        emu.RawModule(code=UNGUARDED).get_function("scale")((blocks,), (4,), (x, y, who, np.float32(2.0), np.int64(n)))
    except emu.LaunchError as err:
        print("LaunchError:", err)
    """),
    md(r"""
    A grid-stride loop lets a grid of a fixed size (here 2 blocks of 4 threads, 8 threads for 10 entries)
    cover any $n$: thread 0 of block 0 takes entries 0 and 8. The library's elementwise kernels (GELU, Adam's
    step) are written so. Fresh arrays, so that an entry the loop missed would show as 3.4e38:
    """),
    code("""
    y, who = emu.empty(n, np.float32), emu.empty(n, np.float32)
    first.get_function("scale_strided")((2,), (4,), (x, y, who, np.float32(2.0), np.int64(n)))
    print("y   =", y)
    print("who =", who.astype(int))
    """),
    md(r"""
    ## 2. A block's sum in shared memory, round by round

    A row of softmax needs its sum: every thread holds part of it, and the threads of a block add them up
    together. They share a block's **shared memory** (`extern __shared__ float s[]`, as many bytes as the
    launch asks with `shared_mem`). Each thread $t$ puts its value in $s_t$; then in $\log_2 B$ rounds,
    $k = B/2, B/4, \dots, 1$, each thread $t < k$ adds $s_{t+k}$ into $s_t$. After the last round $s_0$
    holds the sum: $B - 1$ additions, as a loop would, but in $\log_2 B$ steps of time.

    A **barrier**, `__syncthreads()`, orders the threads of a block: no thread passes it before every thread
    of the block has arrived. Two rules follow. A thread may read what *another* wrote only after a barrier
    that both reach (read after write); and it may overwrite what another still has to read only after a
    barrier too (write after read: section 4's `block_sum` ends with one for that). Here: one after the
    threads fill $s$, and one after each round, before the next reads its sums.

    The exercise (A7): write the tree, for a block of $B$ threads (a power of two). The kernel also copies
    $s$ into `trace` after each round, to print below.
    """),
    exercise("a7-tree-sum", r'''
    ### BEGIN SOLUTION A7: tree_sum: s[t] = x; for k = B/2 .. 1: s[t] += s[t + k] if t < k; barriers before, after each
    TREE = r"""
    // one block sums its blockDim.x entries of x; trace[r][t] = s[t] after round r (round 0: the values put in)
    extern "C" __global__ void tree_sum(const float* x, float* total, float* trace) {
        extern __shared__ float s[];
        unsigned int t = threadIdx.x;
        s[t] = x[(long long)blockIdx.x * blockDim.x + t];
        __syncthreads();                                  // every s[t] written before any is read
        trace[t] = s[t];
        int round = 1;
        for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1, ++round) {
            if (t < k) s[t] += s[t + k];
            __syncthreads();                              // this round's sums written before the next reads them
            trace[round * blockDim.x + t] = s[t];
        }
        if (t == 0) total[blockIdx.x] = s[0];
    }
    """
    ### END SOLUTION
    tree_sum = emu.RawModule(code=TREE).get_function("tree_sum")
    '''),
    code("""
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.float32)   # one block of B = 8 threads
    total, trace = emu.empty(1, np.float32), emu.empty((4, 8), np.float32)
    tree_sum((1,), (8,), (x, total, trace), shared_mem=8 * 4)  # 8 floats of shared memory
    print("        t = ", np.arange(8))
    for r, s in enumerate(trace):
        k = 8 >> r   # after round r, s[0 .. k) hold partial sums; the rest is no longer read
        print(f"round {r} (k = {8 >> r if r else '-'}):", s, " live:", s[:k])
    print("total:", total[0], "  x.sum():", x.sum())
    assert total[0] == x.sum()
    for B in (4, 16):   # other blocks: the rounds follow blockDim.x (whole numbers: every order sums them exactly)
        xB = np.arange(1, B + 1, dtype=np.float32) ** 2
        totalB, traceB = emu.empty(1, np.float32), emu.empty((B.bit_length(), B), np.float32)
        tree_sum((1,), (B,), (xB, totalB, traceB), shared_mem=B * 4)
        assert totalB[0] == xB.sum(), f"blocks of {B}: tree_sum gave {totalB[0]}, not {xB.sum()}"
        print(f"a block of {B:2d} threads: total {totalB[0]:g} = sum of 1^2 .. {B}^2")
    """),
    md(r"""
    Round 1 added the second half onto the first ($3 + 5$, $1 + 9$, $4 + 2$, $1 + 6$), round 2 the second
    quarter onto the first, round 3 the last two: $s_0 = 31$. The entries from $k$ on keep old values; no
    thread reads them again.

    ## 3. A race made visible

    Leave the barriers out and a thread may read $s_{t+k}$ before thread $t + k$ has put its value there, or
    before it has added its own earlier rounds into it. Without a barrier nothing orders the threads of a
    block. A GPU issues them in **warps** of 32, but since Volta (2017) even the threads of one warp are
    scheduled independently, and code that counts on them running in step is wrong (NVIDIA's *Volta Tuning
    Guide*, "Independent Thread Scheduling"). So this racy tree is wrong even though its 8 threads are one
    warp, and even where a GPU happens to print 31 every time: another GPU, compiler or block size may not.
    The emulator runs every launch in two orders and compares them to the bit: where they differ, it raises
    `LaunchError` naming the kernel, the argument (counted from 0: `x` is argument 0, `total` argument 1), the
    entry, and both values.
    """),
    code("""
    RACY = TREE.replace("__syncthreads();", "")          # the same tree, no barriers
    racy = emu.RawModule(code=RACY).get_function("tree_sum")
    try:
        racy((1,), (8,), (x, total, trace), shared_mem=8 * 4)
    except emu.LaunchError as err:
        print("LaunchError:", err)
    """),
    md(r"""
    Why the two orders give these values: the emulator runs each thread in turn up to its next barrier, and
    with no barrier left that is the whole kernel. First to last, thread 0 runs every round before any other
    thread has put its value in $s$: it adds $s_4$, still the 3.4e38 the emulator fills shared memory with
    (as `emu.empty` does arrays), and the sum overflows to `inf`. Last to first, thread 7 runs first and
    thread 0 last: whenever a thread $t$ reads $s_{t+k}$, thread $t + k$ has already finished all its rounds,
    so every value it reads is one the tree would have given it, and $s_0 = 31$ comes out right, by luck of
    the order. Neither order is promised on a GPU: the emulator's point is that they must agree.

    Two orders are not every order: the check catches the usual races, a barrier left out as here, but a
    kernel that passes it is not proved free of races. Threads adding into one shared variable with `+=`
    (not `atomicAdd`) agree in both orders on whole numbers, and pass; a correct float `atomicAdd` into one
    total may fail, its additions coming in another order, rounded otherwise, in each run (the message then
    says so). Code that counts on the 32 threads of a warp running in step (this tree with no barrier in its
    last rounds, as older books teach) is a race too, caught as above: section 5 shows it, and the warp's own
    operations, which order its lanes.

    A barrier must be reached by **every** thread of the block. One inside an `if` that only some threads
    take (here the threads $t < k$ of a round) hangs a GPU or gives undefined results; the emulator names the
    block and two threads, one that waits at the barrier and one that never comes:
    """),
    code(r'''
    INSIDE_IF = TREE.replace("if (t < k) s[t] += s[t + k];\n        __syncthreads();",
                             "if (t < k) { s[t] += s[t + k]; __syncthreads(); }")
    assert INSIDE_IF != TREE, "TREE's round is not written as above: move its __syncthreads() into the if by hand"
    try:
        emu.RawModule(code=INSIDE_IF).get_function("tree_sum")((1,), (8,), (x, total, trace), shared_mem=8 * 4)
    except emu.LaunchError as err:
        print("LaunchError:", err)
    '''),
    md(r"""
    ## 4. Softmax, one block per row

    A row of $n$ entries goes to one block; its $B$ threads stride over the row ($t$, $t + B$, $t + 2B$,
    ... below $n$), so a row may be longer or shorter than the block. Three passes over the row, two block
    reductions between them: each thread's max of its entries, then `block_max` gives every thread the
    row's $m$; each thread's sum of $e^{x_i - m}$ (kept in $y$), then `block_sum` the row's total; then
    $y_i = e^{x_i - m} / \text{total}$. `block_sum` and `block_max` are `__device__` functions, called from
    the kernel by every thread; each ends with a barrier, since the next reduction writes the same $s$.
    `fmaxf` and `expf` are C's `fmax` and `exp` for a `float` (those two take and return `double`).

    The exercise (A7): the two reductions and the kernel, as `minitransformer/kernels.py` has them.
    """),
    exercise("a7-softmax-rows", r'''
    ### BEGIN SOLUTION A7: softmax_rows: m = block_max of the row, total = block_sum of exp(x - m), y = e / total
    SOFTMAX = r"""
    __device__ float block_sum(float v, float* s) {
        s[threadIdx.x] = v;
        __syncthreads();
        for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
            if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
            __syncthreads();
        }
        float total = s[0];
        __syncthreads();                                  // s is reused by the next reduction
        return total;
    }

    __device__ float block_max(float v, float* s) {
        s[threadIdx.x] = v;
        __syncthreads();
        for (unsigned int k = blockDim.x / 2; k > 0; k >>= 1) {
            if (threadIdx.x < k) s[threadIdx.x] = fmaxf(s[threadIdx.x], s[threadIdx.x + k]);
            __syncthreads();
        }
        float m = s[0];
        __syncthreads();
        return m;
    }

    // block r takes row r of x (n entries) and writes row r of y
    extern "C" __global__ void softmax_rows(const float* x, float* y, long long n) {
        extern __shared__ float s[];
        const float* xr = x + (long long)blockIdx.x * n;
        float* yr = y + (long long)blockIdx.x * n;
        float m = xr[0];                                  // a thread with no entry: a value that changes no max
        for (long long i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, xr[i]);
        m = block_max(m, s);
        float total = 0;
        for (long long i = threadIdx.x; i < n; i += blockDim.x) {
            float e = expf(xr[i] - m);
            yr[i] = e;
            total += e;
        }
        total = block_sum(total, s);
        for (long long i = threadIdx.x; i < n; i += blockDim.x) yr[i] /= total;
    }
    """
    ### END SOLUTION
    softmax_rows = emu.RawModule(code=SOFTMAX).get_function("softmax_rows")
    '''),
    code("""
    rng = np.random.default_rng(0)
    around, first = np.array([100.0, -1000.0, 0.0]), np.array([-1e4, -1e4, 1e4])   # three kinds of row, in turn
    for rows, n, B in [(3, 5, 32), (3, 300, 64), (4, 1000, 256)]:   # rows shorter and longer than the block
        kind = np.arange(rows) % 3
        x = rng.normal(scale=3.0, size=(rows, n)) + around[kind, None]
        x[:, 0] = first[kind]
        x = x.astype(np.float32)
        y = emu.empty((rows, n), np.float32)
        softmax_rows((rows,), (B,), (x, y, np.int64(n)), shared_mem=B * 4)
        reference = F.softmax(mt.tensor(x.astype(np.float64)), axis=-1).numpy()
        np.testing.assert_allclose(y, reference, rtol=1e-5, atol=0, err_msg=f"{rows} rows of {n}, blocks of {B}")
        nonzero = reference > 0
        relative = np.abs(y[nonzero] / reference[nonzero] - 1).max()
        print(f"{rows} rows of {n:4d}, blocks of {B:3d} threads: largest |kernel / F.softmax - 1| = {relative:.1e}")
    """),
    md(r"""
    Three kinds of row, each row's max its own and far from the others': around 100, where $e^x$ overflows
    `float32` (above about $e^{88.7}$), so that a kernel not subtracting the max returns `nan`; around
    $-1000$, where $e^x$ is 0, so that a max started from 0 instead of from an entry of the row gives $0/0$;
    and around 0 with a first entry of $10^4$. The first entry of the others is $-10^4$: a kernel that takes
    its row's first entry for the max, or another row's max, overflows or gets $0/0$ there. Each entry must
    agree with `F.softmax` in float64 to a relative $10^{-5}$ (and one that is 0 must be 0): `float32` keeps
    about 7 digits, and the kernel adds the terms in another order than NumPy does.
    """),
    md(r"""
    One thing a GPU's kernel does that NumPy does not. CuPy compiles every kernel with `-ftz=true` ("flush to
    zero"): a `float32` below the smallest normal one (printed below) is a *subnormal*, with fewer digits, and the
    kernel takes it as 0, read or computed. NumPy keeps subnormals, down to the smallest printed below. The
    emulator does as the GPU does in a kernel that takes a `float`. A row whose two entries lie 100 apart:
    """),
    code("""
    smallest = float(np.finfo(np.float32).smallest_subnormal)
    print("smallest normal float32:", np.finfo(np.float32).tiny, "  smallest subnormal:", smallest)
    x = np.array([[0.0, -100.0]], np.float32)
    y = emu.empty((1, 2), np.float32)
    softmax_rows((1,), (32,), (x, y, np.int64(2)), shared_mem=32 * 4)
    y_numpy = F.softmax(mt.tensor(x), axis=-1).numpy()
    print("softmax_rows (as on a GPU):", y[0].tolist())               # tolist: set_printoptions' suppress shows 0
    print("F.softmax (NumPy):         ", y_numpy[0].tolist(), "=", y_numpy[0, 1] / smallest, "x the smallest")
    print("e^-100 in float64:         ", np.exp(-100.0))
    """),
    md(r"""
    $e^{-100} = 3.72 \cdot 10^{-44}$; the nearest `float32`, a subnormal, is 27 times the smallest one,
    $3.78 \cdot 10^{-44}$, right to one digit only. NumPy keeps it, the kernel gives 0. Beside the row's 1 neither
    is wrong to `float32`'s digits, and the check above asks no more. It matters where the small number is
    then divided by or its logarithm taken: $\log 0 = -\infty$. One more reason why the library computes
    log-softmax as $x_i - m - \log \sum_j e^{x_j - m}$, never as the logarithm of a softmax.
    """),
    md(r"""
    ## 5. Warps: sharing values without shared memory

    A GPU runs a block's threads in **warps** of 32: threads 0 to 31 are warp 0, 32 to 63 warp 1, and so on
    (in a 1-D block; a 2-D block counts its threads x fastest). A thread's place in its warp is its **lane**,
    `threadIdx.x % 32`, and its warp `threadIdx.x / 32`. The lanes of a warp can hand each other a value
    directly, from one's register to another's, with a **shuffle**: no shared memory, no `__syncthreads()`.

    `__shfl_down_sync(mask, v, k)` gives each lane $\ell$ the `v` of lane $\ell + k$; a lane whose $\ell + k$
    is past 31 gets its own `v` back. Adding that, $v_\ell \leftarrow v_\ell + v_{\ell + k}$, for
    $k = 16, 8, 4, 2, 1$ is section 2's tree over 32 values, lanes in place of threads and the shuffle in place
    of $s_{t+k}$: lane 0 ends with the warp's sum after 5 rounds. The shuffle is itself a barrier for the lanes
    its `mask` names (`0xffffffff`: all 32; more on it below): each lane puts in its `v` and waits until every
    lane named has come, then all take their values, so no lane reads a sum before it is made.

    The kernel below runs one warp and writes each lane's `v` after each round into `trace`, as section 2's
    did; printed lane by lane (a column per round), a value is in parentheses where no later round reads it on
    its way to lane 0: after the round with $k$, the lanes $\ell \ge k$.
    """),
    code(r'''
    WARP_TRACE = r"""
    // one warp adds up its 32 values; trace[r][lane] = v after round r (round 0: the value put in)
    extern "C" __global__ void warp_sum_down(const float* x, float* trace) {
        unsigned int lane = threadIdx.x % 32;
        float v = x[threadIdx.x];
        trace[lane] = v;
        int round = 1;
        for (int k = 16; k > 0; k >>= 1, ++round) {
            v += __shfl_down_sync(0xffffffff, v, k);     // lane + k's v; past lane 31, its own
            trace[round * 32 + lane] = v;
        }
    }

    // the same rounds, each lane taking the v of lane ^ k (its lane number with bit k flipped)
    extern "C" __global__ void warp_sum_xor(const float* x, float* trace) {
        unsigned int lane = threadIdx.x % 32;
        float v = x[threadIdx.x];
        trace[lane] = v;
        int round = 1;
        for (int k = 16; k > 0; k >>= 1, ++round) {
            v += __shfl_xor_sync(0xffffffff, v, k);
            trace[round * 32 + lane] = v;
        }
    }
    """
    warp_trace = emu.RawModule(code=WARP_TRACE)


    def show_lanes(trace, read):
        """Print trace (6 rounds, 32 lanes) a line per lane; a value that read(round, lane) is False for in ()."""
        print("lane " + "".join(f"{head:>8}" for head in ["x", *(f"k = {k}" for k in (16, 8, 4, 2, 1))]))
        for lane in range(32):
            values = [f"{v:g}" if read(r, lane) else f"({v:g})" for r, v in enumerate(trace[:, lane])]
            print(f"{lane:4d} " + "".join(f"{v:>8}" for v in values))


    x = np.arange(32, dtype=np.float32)                    # lane l holds l: the sum is 0 + 1 + ... + 31
    trace = emu.empty((6, 32), np.float32)
    warp_trace.get_function("warp_sum_down")((1,), (32,), (x, trace))   # one block of one warp
    show_lanes(trace, read=lambda r, lane: lane < 32 >> r)  # round r had k = 32 >> r: lanes below k still count
    print("lane 0:", trace[-1, 0], "  x.sum():", x.sum())
    assert trace[-1, 0] == x.sum()
    '''),
    md(r"""
    Round 1 ($k = 16$) gave lane 0 its own 0 plus lane 16's 16, and lane 15 its 15 plus lane 31's 31: 46.
    Lanes 16 to 31 had nothing above them to read and got their own value back, so they doubled it (lane 16:
    32). Those values are never read on the way to lane 0, as the entries from $k$ on in section 2's tree were
    not; each round halves the lanes that count, and after round 5 lane 0 holds 496. Each lane made 5
    additions, and on a GPU the 32 lanes make them together: 5 steps of time for 31 additions.

    Only lane 0 has the sum. Softmax needs its max and its sum in **every** thread (each divides by the
    total). `__shfl_xor_sync(mask, v, k)` gives lane $\ell$ the `v` of lane $\ell \oplus k$, $\ell$ with its
    bit of value $k$ flipped: for $k = 16$, lanes 3 and 19 trade values, and both add the other's, so both hold the
    same pair's sum; $k = 8$ adds two such pairs, and so on. After the 5 rounds (a **butterfly**, from the
    picture of its exchanges) every lane holds the sum of all 32, with no value wasted:
    """),
    code("""
    trace = emu.empty((6, 32), np.float32)
    warp_trace.get_function("warp_sum_xor")((1,), (32,), (x, trace))
    show_lanes(trace, read=lambda r, lane: True)
    print("every lane holds x.sum():", (trace[-1] == x.sum()).all())
    """),
    md(r"""
    ### The mask: which lanes take part

    The first argument of a shuffle (and of every `..._sync` operation) names the lanes that take part, a bit
    per lane: `0xffffffff` all 32, `0x0000ffff` lanes 0 to 15. Every lane it names must come to the same
    call with the same mask, and the call waits for them, as `__syncthreads()` waits for a block's threads
    (a lane that has ended counts as come; one waiting elsewhere does not). So `0xffffffff` is a promise that
    all 32 lanes reach the call: inside an `if` that only some lanes take it is wrong, and on a GPU the result
    is undefined or the warp hangs. The caller's own lane must be in its mask too.

    Below, half a warp (lanes 0 to 15) adds up its 16 values by the butterfly, $k = 8, 4, 2, 1$ (then
    $\ell \oplus k$ stays below 16), inside `if (lane < 16)`, and then the block goes on to a `__syncthreads()`.
    With the mask `0xffffffff` lane 0 waits for lane 16, which is at the barrier: the emulator stops the launch
    and says so. With `0x0000ffff`, the lanes that do take part, it runs. The third launch lets all 32 lanes
    into the `if` (`lane < 32`) and keeps `0x0000ffff`: now lanes 16 to 31 call the shuffle with a mask that
    leaves them out.
    """),
    code(r'''
    HALF = r"""
    // lanes 0 to 15 of a warp add up their 16 values; every thread writes its v
    extern "C" __global__ void half_warp_sum(const float* x, float* y) {
        unsigned int lane = threadIdx.x % 32;
        float v = x[threadIdx.x];
        if (lane < 16)
            for (int k = 8; k > 0; k >>= 1) v += __shfl_xor_sync(MASK, v, k);
        __syncthreads();                                  // the block goes on together (a next pass, say)
        y[threadIdx.x] = v;
    }
    """
    EVERY_LANE = HALF.replace("if (lane < 16)", "if (lane < 32)")   # all 32 lanes call the shuffle
    assert EVERY_LANE != HALF
    for source, mask in [(HALF, "0xffffffff"), (HALF, "0x0000ffff"), (EVERY_LANE, "0x0000ffff")]:
        y = emu.empty(32, np.float32)
        launch = "lanes 0 to 15" if source is HALF else "all 32 lanes"
        try:
            emu.RawModule(code=source.replace("MASK", mask)).get_function("half_warp_sum")((1,), (32,), (x, y))
            print(f"{launch}, mask {mask}: lanes 0 to 15 hold {np.unique(y[:16])}, x[:16].sum() = {x[:16].sum()}")
        except emu.LaunchError as err:
            print(f"{launch}, mask {mask}: LaunchError:", err)
    '''),
    md(r"""
    ### A block's sum from its warps' sums

    A block of $B$ threads is $B / 32$ warps, at most 32 (1024 threads). Each warp adds up its values by
    shuffles, and its lane 0 puts the warp's sum in `s[warp]`; **one barrier**; then the first warp adds up
    those (lane $\ell$ takes `s[lane]`, or 0 past the last warp) and puts the total in `s[0]`; **a second
    barrier**, and every thread reads it. Two barriers for any block, where the tree of sections 2 and 4 waits
    at one after filling $s$ and one per round, $1 + \log_2 B$ (section 4's `block_sum` has one more at its
    end, for the next reduction that writes $s$; a `block_sum` by warps called twice would need it as well).
    The kernel below sums by warps, counting the barriers it passes (`++passed` after each `__syncthreads()`),
    and writes every thread's result; your `tree_sum` of section 2 sums the same values, and its trace has a row
    for each barrier it passed:
    """),
    code(r'''
    WARPS = r"""
    __device__ float warp_sum(float v) {                 // lane 0 ends with its warp's sum
        for (int k = 16; k > 0; k >>= 1) v += __shfl_down_sync(0xffffffff, v, k);
        return v;
    }

    // by warps (blockDim.x a multiple of 32): each warp's sum to s, a barrier, the first warp adds those up
    __device__ float block_sum_warps(float v, float* s, int& passed) {
        unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
        v = warp_sum(v);
        if (lane == 0) s[warp] = v;
        __syncthreads(); ++passed;                      // every warp's sum written before the first warp reads them
        if (warp == 0) {                                // all 32 lanes of the first warp: the mask names them
            v = warp_sum(lane < warps ? s[lane] : 0.0f);
            if (lane == 0) s[0] = v;
        }
        __syncthreads(); ++passed;                      // the total written before every thread reads it
        return s[0];
    }

    // one block per row of blockDim.x entries; every thread writes the row's sum, thread 0 the barriers
    extern "C" __global__ void block_sums(const float* x, float* by_warps, int* passed) {
        extern __shared__ float s[];
        long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
        int warps = 0;
        by_warps[i] = block_sum_warps(x[i], s, warps);
        if (threadIdx.x == 0) passed[blockIdx.x] = warps;
    }
    """
    block_sums = emu.RawModule(code=WARPS).get_function("block_sums")
    for B in (32, 64, 256, 1024):
        xB = rng.integers(0, 10, size=B).astype(np.float32)   # whole numbers: every order adds them exactly
        by_warps, passed = emu.empty(B, np.float32), emu.empty(1, np.int32)
        block_sums((1,), (B,), (xB, by_warps, passed), shared_mem=B * 4)
        by_tree, trace = emu.empty(1, np.float32), emu.empty((B.bit_length() + 1, B), np.float32)  # a row to spare
        tree_sum((1,), (B,), (xB, by_tree, trace), shared_mem=B * 4)   # yours, from section 2
        rows = int((trace != emu.empty(1, np.float32)[0]).all(axis=1).sum())   # the rows it wrote, one per barrier
        assert by_tree[0] == xB.sum() and (by_warps == xB.sum()).all(), f"blocks of {B}"
        print(f"a block of {B:4d} threads: the sum {xB.sum():g} by both (every thread holds it by warps); "
              f"barriers passed: tree {rows:2d} (1 + log2 {B}), warps {passed[0]}")
    '''),
    md(r"""
    ### What the emulator shows, and what not

    On a GPU, shuffles are the fast way to reduce within a warp: a value goes from one lane's register to
    another's, with no write to shared memory and no read back, and a block waits at 2 barriers however large
    it is. The emulator shows none of that speed: it times nothing, and it runs a warp's lanes **one at a
    time** between warp operations, each shuffle a stop where the lanes its mask names meet (this notebook
    measures no GPU either: how much faster is a question for a GPU and a profiler).

    Running the lanes one at a time is also what lets it catch code that counts on a warp running in step.
    Older books end the tree with its last rounds written for one warp without barriers ("warp-synchronous":
    the 32 threads were taken to run each line together, the shared memory marked `volatile`). Since Volta
    (2017) the threads of a warp are scheduled independently (section 3), and this is a race on a GPU too. A
    block of 64 threads, the last 6 rounds with no barrier:
    """),
    code(r'''
    WARP_SYNCHRONOUS = r"""
    extern "C" __global__ void last_rounds_in_step(const float* x, float* total) {
        extern __shared__ float s[];
        unsigned int t = threadIdx.x;
        s[t] = x[t];
        __syncthreads();
        if (t < 32) {                                     // one warp, taken to run each line together: wrong
            volatile float* w = s;
            for (unsigned int k = 32; k > 0; k >>= 1) w[t] = w[t] + w[t + k];
        }
        if (t == 0) *total = s[0];
    }
    """
    x64, total = np.arange(64, dtype=np.float32), emu.empty(1, np.float32)
    try:
        emu.RawModule(code=WARP_SYNCHRONOUS).get_function("last_rounds_in_step")((1,), (64,), (x64, total),
                                                                                 shared_mem=64 * 4)
    except emu.LaunchError as err:
        print("LaunchError:", err)
    # the fix: __syncwarp(), a barrier for the warp's lanes, between each round's reads and its writes
    SYNCWARP = WARP_SYNCHRONOUS.replace("w[t] = w[t] + w[t + k];",
                                        "{ float v = w[t] + w[t + k]; __syncwarp(); w[t] = v; __syncwarp(); }")
    assert SYNCWARP != WARP_SYNCHRONOUS
    emu.RawModule(code=SYNCWARP).get_function("last_rounds_in_step")((1,), (64,), (x64, total), shared_mem=64 * 4)
    print("with __syncwarp():", total[0], "  x64.sum():", x64.sum())
    '''),
    md(r"""
    First to last, thread 0 ran all its rounds before thread 1 had added anything: its total is the sum of
    only the 7 values it read ($0 + 32 + 16 + 8 + 4 + 2 + 1 = 63$); last to first, each thread read values the
    others had already added into many times over. The fix is the warp's own operations: the shuffles above,
    or, as in the last launch, `__syncwarp()` between each round's reads and its writes (a barrier for the
    lanes of a warp: in each round every lane reads before any writes).

    ### The exercise (A7): a block's max by `__shfl_xor_sync`

    Write `block_max_rows(const float* x, float* m)`: block $r$ takes row $r$ of `x`, one entry per thread
    (`blockDim.x` a multiple of 32), and every thread $t$ writes the row's max into `m[r * blockDim.x + t]`.
    A `warp_max` by the butterfly, `fmaxf` in place of `+`, gives every lane its warp's max; lane 0 of each
    warp puts it in `s[warp]` (the launch gives one `float` of shared memory per warp); one barrier; then
    every warp takes the butterfly max of `s[0]` to `s[warps - 1]`. All warps get the same, so every thread
    has the row's max after that one barrier (a lane past the last warp can take `s[0]`, which changes no max).

    `check_block_max_xor` launches it with blocks of 32, 64, 256 and 1024 threads, on rows whose max lies in
    lane 0 of warp 0, in lane 31 of warp 0, in a warp in the middle and in the last lane of the last warp,
    every entry below 0 (a max started from 0 gives 0), and checks that every thread holds its row's max,
    naming the first that does not and what it holds.
    """),
    code('''
    def check_block_max_xor(kernel):
        """Section 5's exercise: kernel(x, m), one block per row of blockDim.x entries, gives every thread the row's
        max in m."""
        rng = np.random.default_rng(5)
        for B in (32, 64, 256, 1024):
            warps = B // 32
            at = [0, 31, 32 * (warps // 2) + 7, B - 1]  # where each row's max lies (lane, warp: below)
            x = (-200 + 100 * rng.random((len(at), B))).astype(np.float32)   # every entry below 0
            x[np.arange(len(at)), at] = -1.0 - np.arange(len(at))
            m = emu.empty(x.shape, np.float32)
            kernel((len(at),), (B,), (x, m), shared_mem=warps * 4)
            for r, t in enumerate(at):
                wrong = np.flatnonzero(m[r] != x[r, t])
                if wrong.size == 0:
                    continue
                u = wrong[0]
                got = m[r, u]
                why = ("a max started from 0? Every entry is below 0" if got == 0 else
                       "a read past the shared memory the launch gives (a float per warp), which holds 3.4e38 here?"
                       if got > 1e38 else
                       "only lane 0 holds the max? __shfl_down_sync leaves it there alone; __shfl_xor_sync's "
                       "butterfly gives it to every lane" if m[r, 0] == x[r, t] and u % 32 != 0 else
                       "its own warp's max: are the warps' maxima (s[warp], a barrier) taken together?"
                       if got == x[r, 32 * (u // 32):32 * (u // 32 + 1)].max() else
                       "a lane or a warp left out?")
                raise AssertionError(
                    f"block_max_rows, a block of {B} threads, row {r}: its max {x[r, t]:g} lies at thread {t} (lane "
                    f"{t % 32} of warp {t // 32}), but {wrong.size} of the {B} threads hold another value; the first, "
                    f"thread {u} (lane {u % 32} of warp {u // 32}), holds {got:g}: {why}")
        print("block_max_rows gives every thread its row's max: blocks of 32 to 1024 threads, the max in any lane")
    '''),
    exercise("a7-block-max-xor", r'''
    ### BEGIN SOLUTION A7: block_max_rows: warp_max by __shfl_xor_sync, k = 16 .. 1; s[warp] = it; a barrier; max of s
    WARP_MAX = r"""
    __device__ float warp_max(float v) {                 // every lane ends with its warp's max (the butterfly)
        for (int k = 16; k > 0; k >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, k));
        return v;
    }

    // block r takes row r of x (blockDim.x entries, a multiple of 32); every thread writes the row's max
    extern "C" __global__ void block_max_rows(const float* x, float* m) {
        extern __shared__ float s[];                      // a float per warp
        unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
        long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
        float v = warp_max(x[i]);
        if (lane == 0) s[warp] = v;
        __syncthreads();                                  // every warp's max written before any is read
        m[i] = warp_max(s[lane < warps ? lane : 0]);      // every warp takes them all: the same max in every lane
    }
    """
    ### END SOLUTION
    block_max_rows = emu.RawModule(code=WARP_MAX).get_function("block_max_rows")
    check_block_max_xor(block_max_rows)
    '''),
    md(r"""
    ## 6. The library's kernels, and A7

    `minitransformer/kernels.py` holds the CUDA source the library runs on a GPU (`SOURCE`: softmax and its
    gradient, attention's masked softmax, layer norm each way, GELU, Adam, ...), its type `T` written `{T}`
    and compiled once for `float` and once for `double`. Its `block_sum`, `block_max`, `softmax_forward` are
    the kernels of section 4. The emulator runs that source too: the suite's `tests/test_kernels.py` checks each
    kernel against the formulas on the CPU, and `python -m pytest --emulated-kernels` runs any test with the
    numpy backend on them (the code path CuPy takes).

    **Assignment A7** (`minitransformer assignments build 7`, `docs/assignments.md`) takes out the bodies of
    six: `block_sum`, `block_max`, `softmax_forward`, `softmax_backward`, `masked_softmax_forward` (attention's
    weights) and `layer_norm_forward` in `kernels.py`; `tests/test_kernels_a7.py` grades them under this
    emulator, saying what a wrong result likely comes from. `block_sum` and `block_max` may be written either
    way, by the tree of section 4 or by warps as in section 5: `tests/test_kernels.py` grades such a body by
    warps (its `A7_WARP_SHUFFLES`), which earns every point. In A7's copy the cell below stops at the first body
    not written yet; a copy for another assignment has no `kernels.py` at all.

    The library's threads per row, `K.block_size(n)`: a power of two (the tree halves the block each round),
    at least 32, a warp (a GPU issues a block's threads by whole warps: a smaller block leaves some of a warp's
    lanes idle), and at most 256 (`K.MAX_BLOCK`): a longer row is strided over, each thread first adding up
    several entries of its own. 256 is a common choice, not one measured here.
    """),
    code("""
    try:
        from minitransformer import kernels as K
    except ImportError:
        K = None
        print("no minitransformer/kernels.py in this copy (only A7's copy holds it)")
    if K is not None:
        library = emu.RawModule(K.SOURCE.replace("{T}", "float"), name="minitransformer/kernels.py")
        print("kernels.py's kernels:", ", ".join(library.kernels))
        rows, n = 4, 1000
        B = K.block_size(n)                                   # threads per row: a power of two, 32 to 256
        x = rng.normal(scale=3.0, size=(rows, n)).astype(np.float32)
        y_library, y_ours = emu.empty((rows, n), np.float32), emu.empty((rows, n), np.float32)
        try:
            library.get_function("softmax_forward")((rows,), (B,), (x, y_library, np.int64(n)), shared_mem=B * 4)
            softmax_rows((rows,), (B,), (x, y_ours, np.int64(n)), shared_mem=B * 4)
            print(f"softmax_forward of kernels.py, blocks of {B}: max |library - ours| = "
                  f"{np.abs(y_library - y_ours).max():.2e}")
        except NotImplementedError as err:                   # A7's copy, its bodies not written yet
            print("A7:", err)
    """),
    md(r"""
    ## Exercises

    1. Launch `tree_sum` with a block of 6 threads (not a power of two) on 6 entries, with a trace sized for
       it: `trace = emu.empty((3, 6), np.float32)` (round 0, then $k = 3$ and $k = 1$). Which entries does the
       tree add, and which does it miss? How does `kernels.py` avoid this (`block_size`)?
    2. Take the barrier before `return` out of `block_max` (after `float m = s[0];`) and launch `softmax_rows`:
       which race does the emulator find, and which two reductions share $s$? Then put it back and take out
       the one in `block_sum` ("s is reused by the next reduction") instead: the emulator finds nothing. Why
       not? (What writes $s$ after `softmax_rows`' `block_sum`? Where would the barrier matter: think of
       exercise 3's two `block_sum` calls.)
    3. Write `layer_norm_rows(const float* x, float* y, long long n, float eps)`: one block per row, $\mu$
       and $\sigma^2 = \overline{(x - \mu)^2}$ by two `block_sum` calls, $\hat x = (x - \mu)/\sqrt{\sigma^2 +
       \epsilon}$ into $y$; `check_layer_norm_rows` below checks it against `F.layer_norm`. Why two passes
       over the row, $\mu$ first, and not one that sums $x$ and $x^2$ together, $\sigma^2 = \overline{x^2} -
       \mu^2$? The check's last row lies 1000 from 0: there $\overline{x^2}$ and $\mu^2$ are about $10^6$,
       which `float32` holds to 7 significant digits, and their difference, a variance of about 16, keeps only
       a few of them; $x - \mu$ subtracts before squaring, while the digits are still there. (A7's
       `layer_norm_forward` also keeps $1/\sqrt{\sigma^2 + \epsilon}$ per row for the backward.)
    4. Write `softmax_backward_rows(const float* y, const float* ybar, float* xbar, long long n)`,
       $\bar x_i = y_i (\bar y_i - \sum_j \bar y_j y_j)$, with one `block_sum`; `check_softmax_backward_rows`
       below checks it against the gradient that `backward` gives.
    5. A 2-D launch: a kernel that transposes a $(64, 96)$ matrix with blocks of $16 \times 16$ threads
       (`threadIdx.y`, `blockIdx.y`), first directly, then through a tile `__shared__ float tile[16][17]`;
       check `(b == a.T).all()`. On a GPU the tile makes both the reads and the writes of neighbouring
       threads neighbouring entries; its 17th column is padding: shared memory is 32 banks of 4-byte words
       (word $w$ in bank $w \bmod 32$), and the 16 entries of a column of `tile[16][16]`, 16 words apart,
       lie in 2 banks, 8 to a bank; a bank serves one word at a time, so a warp's read of a column takes 8
       turns (a bank conflict). 17 words apart they lie in 16 banks. The emulator models neither banks nor
       any timing: both tiles give the same result here, and it says nothing of their speed.
    """),
    code('''
    def check_layer_norm_rows(kernel, eps=1e-5):
        """Exercise 3: kernel(x, y, n, eps), one block per row, against F.layer_norm in float64."""
        for rows, n, B in [(3, 5, 32), (4, 300, 64)]:
            x = rng.normal(scale=4.0, size=(rows, n)) + 2
            x[1] = rng.normal(scale=0.01, size=n)    # a variance of about 1e-4, where eps counts (inside the root)
            x[-1] += 1000.0                          # far from 0: one pass, mean(x^2) - mu^2, loses the digits
            x = x.astype(np.float32)
            y = emu.empty((rows, n), np.float32)
            kernel((rows,), (B,), (x, y, np.int64(n), np.float32(eps)), shared_mem=B * 4)
            want = F.layer_norm(mt.tensor(x.astype(np.float64)), eps=eps).numpy()
            np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4, err_msg=f"layer_norm_rows: {rows} rows of {n}")
        print("layer_norm_rows agrees with F.layer_norm")


    def check_softmax_backward_rows(kernel):
        """Exercise 4: kernel(y, ybar, xbar, n), one block per row, against backward's gradient in float64."""
        for rows, n, B in [(3, 5, 32), (4, 300, 64)]:
            x = mt.tensor(rng.normal(scale=3.0, size=(rows, n)), requires_grad=True)
            y, ybar = F.softmax(x, axis=-1), rng.normal(size=(rows, n)).astype(np.float32)
            (y * mt.tensor(ybar.astype(np.float64))).sum().backward()   # x.grad: the x-bar of sum(ybar * y)
            xbar = emu.empty((rows, n), np.float32)
            kernel((rows,), (B,), (y.numpy().astype(np.float32), ybar, xbar, np.int64(n)), shared_mem=B * 4)
            np.testing.assert_allclose(xbar, x.grad.numpy(), rtol=1e-4, atol=1e-6,
                                       err_msg=f"softmax_backward_rows: {rows} rows of {n}")
        print("softmax_backward_rows agrees with backward")
    '''),
]
