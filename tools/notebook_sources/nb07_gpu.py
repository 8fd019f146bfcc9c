"""Notebook 07_gpu: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "1.1 0.3 4.8 3.7 7.8 21.6": "the table of one run of this notebook on an H200 and its 16-core host, recorded in "
                                "its prose only (the benchmarks page has later runs of other steps), not the run of "
                                "the committed outputs",
    "6e-8": "2^-24, float32's relative rounding (a formula's constant)",
    "1.21": "the seed step's ratio to PyTorch on the H200 run of tools/gpu_check.sh (docs/benchmarks.md)",
}

CELLS = [
    md(r"""
    # 07 · The same code on a GPU

    **What this notebook teaches.** Every formula in this library takes its array functions from a
    *backend* (`x.backend.xp`: `xp.exp`, `xp.matmul`, ...), never from `numpy` by name. So the same lines
    run on NumPy (CPU) and on CuPy (an NVIDIA GPU): switching is one call, `mt.backend.use("cupy")`. (On a
    GPU the library also swaps a few of those lines for CUDA kernels of its own: below.)
    What a GPU buys is throughput on large array operations. A Transformer step is dominated by matrix
    products; one product of an $(m \times k)$ by a $(k \times n)$ matrix costs

    $$ \text{FLOPs} = 2\,m\,k\,n, \qquad \text{throughput} = \frac{\text{FLOPs}}{\text{seconds}} , $$

    and a GPU reaches tens of TFLOP/s, where a CPU reaches tens to a few hundred GFLOP/s: section 5 times
    this notebook's steps here, and its table gives one run on an H200 (21.6 TFLOP/s) and its 16-core host
    (140 and 240 GFLOP/s). But on a GPU every array operation also costs the host 10 to 30 µs, the Python
    that records it and CuPy's path to the launch (measured on an H200: `docs/benchmarks.md`), so tiny
    arrays gain nothing.

    **This notebook runs anywhere.** On a machine without a GPU (or without CuPy) switching fails with a
    `BackendError` that says why; the notebook prints that message, skips the GPU timing, and shows the rest
    with `array_api_strict`, a CPU stand-in for "another array library" that allows only what the array API
    standard allows (the `array-api-strict` package, which `pip install -e ".[notebooks]"` installs with
    Jupyter and matplotlib). What it proves: no NumPy-only call hides on the path of the array formulas, the
    path CuPy takes with `MINITRANSFORMER_KERNELS=0`. What it does not: by default CuPy runs softmax,
    attention's weights, layer norm, GELU, the binary cross-entropy, the gradients' column sums, Adam, the
    random numbers and the embedding's scatter-add as CUDA kernels of the library's own, and the matrix
    products as direct cuBLAS calls. Those are checked by `tests/test_kernels.py` (on a CPU under an
    emulation of CUDA, with `g++`; `python -m pytest --emulated-kernels` runs any test on them) and on a GPU
    by `tools/gpu_check.sh`.

    Steps: **1** which backends work here · **2** switching, and what happens without a GPU · **3** the same
    model on two backends gives the same numbers · **4** moving data: tensors, weights, checkpoints ·
    **5** timing NumPy against CuPy on a matmul-heavy step.
    """),
    SETUP,
    md(r"""
    ## 1. Which backends work here
    """),
    code("""
    print("available here:", mt.backend.available())
    print("current:", mt.backend.current())
    """),
    md(r"""
    ## 2. Switching: `mt.backend.use("cupy")`

    `mt.backend.use(name)` makes a backend current from now on (a plain module-level setting, so it holds
    from one notebook cell to the next); `with mt.backend.use(name):` only inside the block. New tensors and
    modules are made on the current backend. Without a GPU the call raises `BackendError` with the reason:
    """),
    code("""
    try:
        with mt.backend.use("cupy") as GPU:      # CuPy only inside the block
            name = GPU.native.cuda.runtime.getDeviceProperties(0)["name"].decode()
            print("switched to", mt.backend.current(), "- a GPU is here:", name)
    except mt.backend.BackendError as err:
        GPU = None
        print("No GPU backend on this machine, so the GPU timing below is skipped. The message says why:")
        print("   ", err)
    print("current:", mt.backend.current())     # what was current before the block
    """),
    md(r"""
    ## 3. The same model on two backends: the same numbers

    Build an encoder layer once, copy its weights (`state_dict()`, always NumPy arrays) into a twin on
    another backend, and run the same batch through both, forward and backward. The other backend is CuPy
    when there is a GPU, otherwise `array_api_strict`.

    The loss must depend on every weight, and `(y**2).mean()` does not: a post-LN layer ends in layer
    norm ($\gamma = 1$, $\beta = 0$ at the start), whose output has mean square
    $\sigma^2/(\sigma^2+\epsilon) \approx 1$ whatever the input and the weights, so all gradients but that
    layer norm's are near zero and an error in them would not show. A fixed random readout $w$ does:
    $L = \mathrm{mean}(y \odot w)$. Each parameter's gradient is compared with its own size,
    $\max|a-b| / \max|a|$ (`rel_err`), as `tools/backend_equivalence.py` does. One exception: the
    gradient of $W_K$'s bias is 0 in exact arithmetic (adding $q \cdot b_K$ to a whole row of scores
    leaves the softmax unchanged), so both backends hold rounding noise there; it is measured against the
    largest gradient.

    What to expect: `array_api_strict` does its arithmetic with NumPy, so the two agree exactly. A GPU adds
    in another order: relative differences of about $10^{-6}$ (each rounding is at most
    $2^{-24} \approx 6 \cdot 10^{-8}$ of its result, but a gradient is the end of many sums and products, and
    their roundings add up; the equivalence tool allows $10^{-5}$), and near $10^{-3}$ with `CUPY_TF32=1`,
    whose products keep 10 bits of mantissa. After the comparison, float32 against float64 shows that size on
    any machine.
    """),
    code("""
    from minitransformer.testing import rel_err  # max|got - expected| / max|expected|

    other = "cupy" if GPU is not None else "array_api_strict"
    dtype = "float32"                              # exercise 5: "float64"
    d_model, heads, d_ff, B, L = 64, 4, 128, 8, 32
    layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)
    x_host = np.random.default_rng(0).standard_normal((B, L, d_model)).astype(dtype)   # the batch
    w_host = np.random.default_rng(1).standard_normal((B, L, d_model)).astype(dtype)   # the readout w

    def run(backend, dtype=dtype):
        \"\"\"Loss and every parameter's gradient for the same weights and batch on `backend`, as NumPy.\"\"\"
        with mt.backend.use(backend):
            twin = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0).to(dtype)   # made on `backend`
            twin.load_state_dict(layer.state_dict())                             # the same weights
            x, w = mt.tensor(x_host.astype(dtype)), mt.tensor(w_host.astype(dtype))   # (B, L, d_model) there
            loss = (twin(x) * w).mean()                                          # every weight moves it
            loss.backward()
            print(f"{backend:17} {dtype}  x on {x.backend.name:17} loss {loss.item():+.6f}")
            return loss.item(), {n: p.grad.numpy() for n, p in twin.named_parameters()}   # on the host

    loss_a, grads_a = run("numpy")
    loss_b, grads_b = run(other)
    size = {n: np.abs(g).max() for n, g in grads_a.items()}
    rest = [s for n, s in size.items() if not n.endswith("W_K.bias")]
    print(f"max|gradient| of each parameter: {min(rest):.1e} to {max(rest):.1e}, "
          f"W_K.bias {size['self_attn.W_K.bias']:.1e}")
    scale = max(size.values())                                                  # the largest gradient
    error = {n: np.abs(grads_b[n] - g).max() / scale if n.endswith("W_K.bias") else rel_err(grads_b[n], g)
             for n, g in grads_a.items()}
    worst = max(error, key=error.get)
    print(f"relative difference: loss {rel_err(loss_b, loss_a):.1e}; gradients, each of the {len(error)} "
          f"parameters against its own size: worst {error[worst]:.1e}" + (f" ({worst})" if error[worst] else ""))
    """),
    md(r"""
    Without a GPU that difference is 0, and float32's rounding does not show. It shows against float64: the
    same weights and batch (float32 numbers, which float64 holds exactly) through the same layer on NumPy, in
    float64, whose roundings are $2^{-29}$ times smaller, so that what differs is float32's rounding alone.
    Another order of float32 sums (a GPU's) lands about as far from NumPy's float32 result.
    """),
    code("""
    loss_64, grads_64 = run("numpy", "float64")
    error_64 = {n: rel_err(grads_a[n], g) for n, g in grads_64.items() if not n.endswith("W_K.bias")}
    worst_64 = max(error_64.values())
    print(f"float32 against float64, relative: loss {rel_err(loss_a, loss_64):.1e}; gradients, the "
          f"{len(error_64)} parameters but W_K.bias: median {np.median(list(error_64.values())):.1e}, "
          f"worst {worst_64:.1e} = {worst_64 / 2**-24:.0f} x 2^-24")
    """),
    md(r"""
    ## 4. Moving data between backends

    Backends never mix silently: an operation on tensors of two backends is a `BackendError` that says how
    to fix it. `t.to("cupy")` / `t.to("numpy")` moves a tensor, `model.to("cupy")` a whole model,
    `t.numpy()` always gives a NumPy array on the host, a copy on every backend (writing into it changes
    nothing in the tensor; `t.data` is the tensor's own array), and `state_dict()` always holds NumPy arrays,
    copies, so a checkpoint written on a GPU loads on a laptop. (Shown with `array_api_strict` when there is no GPU.)
    """),
    code("""
    a = mt.tensor([1.0, 2.0, 3.0])                          # NumPy
    b = a.to(other)                                         # the same numbers on the other backend
    print("a on", a.backend.name, "  b on", b.backend.name, "  b.numpy():", b.numpy(), type(b.numpy()).__name__)
    try:
        a + b
    except mt.backend.BackendError as err:
        print("BackendError:", err)
    print("a + b.to('numpy') =", (a + b.to("numpy")).numpy())

    moved = nn.Linear(4, 2).to(other)
    print(f"Linear moved to {moved.weight.backend.name}; its state_dict holds",
          {k: type(v).__name__ for k, v in moved.state_dict().items()})
    """),
    md(r"""
    ## 5. Timing: NumPy against CuPy on a matmul-heavy step

    One training step's arithmetic, forward and backward, of a Transformer encoder layer: a **tiny** one
    (the notebooks' sizes), a **large** one and a **big** one (the paper's base width,
    $d_\text{model} = 512$, $d_{ff} = 2048$, 32 sequences of 256 tokens). Two rules of timing a GPU:
    run once before timing (the first call compiles kernels), and wait for the GPU to finish before reading
    the clock (work is queued asynchronously; `synchronize()`).
    """),
    code("""
    import time


    def sync(backend):
        if backend.name == "cupy":
            backend.native.cuda.Device().synchronize()   # wait for the queued GPU work

    def make_step(d_model, heads, d_ff, B, L):
        \"\"\"One forward + backward of a new encoder layer on (B, L, d_model), on the current backend.\"\"\"
        layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)
        x = mt.randn(B, L, d_model)

        def step():
            layer.zero_grad()
            (layer(x) ** 2).mean().backward()          # to time the arithmetic, any scalar will do
        return step

    def time_step(backend_name, d_model, heads, d_ff, B, L, repeats):
        \"\"\"Median seconds of one forward + backward of an encoder layer on (B, L, d_model).\"\"\"
        with mt.backend.use(backend_name) as be:
            step = make_step(d_model, heads, d_ff, B, L)
            step()                                     # warm-up: kernels compiled, memory allocated
            sync(be)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                sync(be)
                times.append(time.perf_counter() - start)
            return float(np.median(times))

    def step_flops(d_model, d_ff, B, L):
        \"\"\"2mkn per product: 4 projections, 2 FFN layers, QK^T and weights V; backward about twice the forward.\"\"\"
        forward = 2 * B * L * (4 * d_model * d_model + 2 * d_model * d_ff) + 2 * 2 * B * L * L * d_model
        return 3 * forward

    sizes = {"tiny": dict(d_model=32, heads=4, d_ff=64, B=4, L=16),
             "large": dict(d_model=256, heads=8, d_ff=1024, B=8, L=64),
             "big": dict(d_model=512, heads=8, d_ff=2048, B=32, L=256)}
    repeats = {"tiny": 10, "large": 3, "big": 1}     # NumPy's timed steps (big: seconds each); CuPy's: 10
    results = {}
    for size, cfg in sizes.items():
        flops = step_flops(cfg["d_model"], cfg["d_ff"], cfg["B"], cfg["L"])
        for backend_name in ["numpy"] + (["cupy"] if GPU is not None else []):
            seconds = time_step(backend_name, **cfg, repeats=repeats[size] if backend_name == "numpy" else 10)
            results[size, backend_name] = seconds
            print(f"{size:5} {backend_name:6} {seconds * 1e3:9.2f} ms per step   {flops / seconds / 1e9:8.1f} GFLOP/s")
    if GPU is None:
        print("\\nCuPy timing skipped: no GPU backend here (see section 2).")
    else:
        for size in sizes:
            print(f"{size}: CuPy is {results[size, 'numpy'] / results[size, 'cupy']:.1f}x NumPy's speed")
    """),
    md(r"""
    On a CPU the tiny step reaches a few GFLOP/s, the larger ones tens or more, as their products get big
    enough to keep BLAS busy (exercise 1 asks where your CPU levels off). The outputs shown come from a
    shared 2-core machine, where other jobs move these figures from run to run. What to expect on a GPU: the
    tiny step is *slower* there (each of its 113 launches, counted in the next cell among its calls into the
    array library, costs the host 10 to 30 µs, with too little arithmetic to hide it), the large step a few
    times faster, and the big one nearly a hundred times. Measured once with this notebook when it was
    written (commit bcbe77c, 2026-11-28) on one NVIDIA H200 (CuPy 14, float32 products without TF32, CuPy's
    default; a 16-core host).
    That was before the library had CUDA kernels of its own: CuPy's functions did all the work. The kernels
    first ran on an H200 later, in `tools/gpu_check.sh` at 4078fca, and all of today's (attention's weights,
    the binary cross-entropy, the column sums, the chained scatter-add, Adam in place, the products by cuBLAS
    too) at 5df81f2 on 2026-12-01, where their tests passed and the `seed` training step took 1.21 times
    PyTorch's (`docs/benchmarks.md`). To compare your own run with the table, the closer
    setting today is `MINITRANSFORMER_KERNELS=0` (set before Python starts: CuPy's functions for the array
    formulas, as then); the rest of the library has changed since too, so expect other figures even so.

    | size | NumPy (16 cores) | CuPy (H200) | CuPy's speed-up |
    |---|---|---|---|
    | tiny | 1.1 ms | 4.0 ms | 0.3x |
    | large | 18 ms (140 GFLOP/s) | 4.8 ms (525 GFLOP/s) | 3.7x |
    | big | 698 ms (240 GFLOP/s) | 7.8 ms (21.6 TFLOP/s) | 90x |

    The tiny step's array operations, counted: `tools/count_calls.py` watches every function of
    `array_api_strict`'s namespace and every operator of its arrays (its `Calls`), and counts apart the
    launches, the calls that would start work on a GPU (a view, such as a reshape or a transpose, starts
    none). Around one tiny step, with the array formulas (as at bcbe77c):
    """),
    code("""
    import sys
    from pathlib import Path

    tools = Path(mt.__file__).resolve().parents[1] / "tools"   # beside the package, wherever Python runs from
    if (tools / "count_calls.py").exists():
        sys.path.insert(0, str(tools))
        from count_calls import Calls

        with mt.backend.use("array_api_strict") as be:
            step = make_step(**sizes["tiny"])
            step()                                     # the first step, as timed: after the warm-up
            with Calls(be.xp) as calls:
                calls.on = True
                step()
                calls.on = False
        print(f"tiny step: {calls.total()} calls into the array library, {calls.launches()} of them launches")
    else:
        print("tools/count_calls.py is not here (a student copy): the repository has it")
    """),
    md(r"""
    At 10 to 30 µs of host time for each of the 113 launches, and some for each view (a view starts no work on the
    GPU, but its Python runs all the same), the calls make much of the tiny step's 4.0 ms on the H200: the
    launches alone a quarter of it at 10 µs each, most of it at 30 µs.
    `python tools/count_calls.py seed` counts a whole training step the same way, of a miniature of the
    `seed` model (a classifier: embedding, one encoder layer of 8 heads, pooling, binary cross-entropy,
    Adam's update): 292 calls (174 launches) with the array formulas, 228 (92) with the library's CUDA
    kernels standing in.

    The lesson for training: give the GPU big batches and long sequences. The library's
    `tools/gpu_check.sh` runs the test suite on CuPy (every test that depends on the backend), checks that
    NumPy and CuPy give the same gradients, trains a model and benchmarks the engine against PyTorch.

    To get a GPU backend, in the clone: `pip install -e ".[cuda12]"` (or `".[cuda13]"`, matching the CUDA
    version of the driver that `nvidia-smi` shows), then `mt.backend.use("cupy")`,
    `MINITRANSFORMER_BACKEND=cupy python train.py` or `minitransformer train --backend cupy`.
    The library reads `MINITRANSFORMER_KERNELS=0` (the array formulas instead of the kernels) and
    `CUPY_TF32=1` (TF32 products) once, when it makes the CuPy backend, which `mt.backend.available()` in
    section 1 already does: set them before Python starts. On CuPy the checks that read values come later,
    because reading a value makes the host wait for the GPU: a token id outside the vocabulary reads another
    row at first, and its min and max, computed on the GPU, are read at the next read of it (`loss.item()`,
    a log), which raises the IndexError there. `mt.backend.get("cupy").check_values = True` stops at the
    step instead, to debug.

    ## Exercises

    1. Time a single `(n, n) @ (n, n)` matrix product on NumPy for $n = 256, 512, 1024, 2048$ and compute the
       GFLOP/s ($2n^3$ FLOPs). Where does your CPU level off?
    2. In section 5, find the smallest batch size at which CuPy beats NumPy for the large layer (on a
       machine with a GPU), or estimate it from the table: a step on the GPU costs at least what the tiny
       one does, about 4 ms (its 113 launches, counted in section 5, at 10 to 30 µs of host time each, and
       its views), while NumPy's time grows about in proportion to B.
    3. (On a GPU.) Remove `sync(be)` from `time_step` and time CuPy again. Why does it look faster, and why
       is that number wrong?
    4. Train a small model on the GPU (without one, on `array_api_strict`), save it with `save_checkpoint`
       (`minitransformer.train`), and load the checkpoint into a new model on the NumPy backend with
       `load_checkpoint`. Which line of the library guarantees that this works? (Hint: `Module.state_dict`.)
    5. (On a GPU.) Run section 3 in float64 (`dtype = "float64"` there): how much smaller is the difference
       between the backends, and why? (On `array_api_strict` it is 0 either way.)
    """),
]
