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

    two block reductions (a max, then a sum), checked against `F.softmax`. These are the kernels the library
    runs on a GPU (`minitransformer/kernels.py`), and assignment A7's exercise.

    **No GPU needed.** The kernels run on the CPU under `minitransformer.cuda_emulator`, an emulation of
    CUDA: the source is compiled by `g++`, each CUDA thread runs in turn up to its next barrier, and every
    launch runs twice, blocks and threads first to last and last to first, which must agree to the bit (a
    GPU promises neither order). It takes the calls of CuPy's `cupy.RawModule`, so on a GPU the same source
    and the same lines run with `cupy` in place of `cuda_emulator` and CuPy arrays in place of NumPy's. It
    needs `g++` (Linux): the first code cell says so where it is missing.

    Steps: **1** a first kernel: one thread per entry, the grid-stride loop · **2** a block's sum in shared
    memory, round by round · **3** a race made visible · **4** softmax, one block per row, against
    `F.softmax` · **5** the library's kernels and A7.

    The two cells whose first line marks them as A7's solutions (a comment naming `A7` and what to write) hold
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

    A thread may read what *another* wrote only after a **barrier** that both reach, `__syncthreads()`:
    no thread passes it before every thread of the block has arrived. So: one after the threads fill $s$,
    and one after each round.

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
        s[t] = x[blockIdx.x * blockDim.x + t];
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
    """),
    md(r"""
    Round 1 added the second half onto the first ($3 + 5$, $1 + 9$, $4 + 2$, $1 + 6$), round 2 the second
    quarter onto the first, round 3 the last two: $s_0 = 31$. The entries from $k$ on keep old values; no
    thread reads them again.

    ## 3. A race made visible

    Leave the barriers out and a thread may read $s_{t+k}$ before the thread that writes it has written it,
    or after it wrote the next round's value. A GPU runs a block's threads in **warps**, groups of 32 threads
    that execute together, the warps in an order nobody promises; the result then depends on which warp runs
    first, and changes from run to run, from GPU to GPU. The emulator runs every launch in two orders and
    compares them to the bit: where they differ, it raises `LaunchError` naming the kernel, the argument
    (counted from 0: `x` is argument 0, `total` argument 1), the entry, and both values.
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
    for rows, n, B in [(3, 5, 32), (2, 300, 64), (4, 1000, 256)]:   # rows shorter and longer than the block
        x = (100.0 + rng.normal(scale=3.0, size=(rows, n))).astype(np.float32)   # exp(100) overflows float32
        y = emu.empty((rows, n), np.float32)
        softmax_rows((rows,), (B,), (x, y, np.int64(n)), shared_mem=B * 4)
        reference = F.softmax(mt.tensor(x), axis=-1).numpy()
        print(f"{rows} rows of {n:4d}, blocks of {B:3d} threads: max |kernel - F.softmax| = "
              f"{np.abs(y - reference).max():.2e}, row sums {y.sum(axis=-1).round(6)}")
    """),
    md(r"""
    Every entry of these rows is near 100, so every entry counts in a row's sum (a `block_sum` that skipped
    the tree, or missed a thread's part, would be far off), and $e^{100}$ overflows `float32` (above about
    $e^{88.7}$): without the max subtracted, the kernel would return `nan`. The differences from `F.softmax`
    are float32 rounding, about $10^{-7}$ at most: the kernel adds the terms in another order than NumPy does.

    ## 5. The library's kernels, and A7

    `minitransformer/kernels.py` holds the CUDA source the library runs on a GPU (`SOURCE`: softmax and its
    gradient, attention's masked softmax, layer norm each way, GELU, Adam, ...), its type `T` written `{T}`
    and compiled once for `float` and once for `double`. Its `block_sum`, `block_max`, `softmax_forward` are
    the kernels above. The emulator runs that source too: the suite's `tests/test_kernels.py` checks each
    kernel against the formulas on the CPU, and `python -m pytest --emulated-kernels` runs any test with the
    numpy backend on them (the code path CuPy takes).

    **Assignment A7** (`minitransformer assignments build 7`, `docs/assignments.md`) takes out the bodies of
    `block_sum`, `block_max`, `softmax_forward`, `softmax_backward` and `layer_norm_forward` in `kernels.py`;
    `tests/test_kernels_a7.py` grades them under this emulator, saying what a wrong result likely comes from.
    In A7's copy the cell below stops at the first body not written yet; a copy for another assignment has
    no `kernels.py` at all.
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
    3. Write `layer_norm_rows`: one block per row, $\mu$ and $\sigma^2 = \overline{(x - \mu)^2}$ by two
       `block_sum` calls, $\hat x = (x - \mu)/\sqrt{\sigma^2 + \epsilon}$; check it against `F.layer_norm`.
       (A7's `layer_norm_forward` also keeps $1/\sqrt{\sigma^2 + \epsilon}$ per row for the backward.)
    4. Write `softmax_backward_rows`, $\bar x_i = y_i (\bar y_i - \sum_j \bar y_j y_j)$, with one `block_sum`;
       check it against `mt.tensor(x, requires_grad=True)` and `backward`.
    5. A 2-D launch: a kernel that transposes a $(64, 96)$ matrix with blocks of $16 \times 16$ threads
       (`threadIdx.y`, `blockIdx.y`), first directly, then through a tile `__shared__ float tile[16][17]`
       (on a GPU the tile makes both the reads and the writes of neighbouring threads neighbouring entries).
    """),
]
