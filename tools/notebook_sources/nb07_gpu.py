"""Notebook 07_gpu: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, md

CELLS = [
    md(r"""
    # 07 · The same code on a GPU

    **What this notebook teaches.** Every formula in this library takes its array functions from a
    *backend* (`x.backend.xp`: `xp.exp`, `xp.matmul`, ...), never from `numpy` by name. So the same lines
    run on NumPy (CPU) and on CuPy (an NVIDIA GPU): switching is one call, `mt.backend.use("cupy")`.
    What a GPU buys is throughput on large array operations. A Transformer step is dominated by matrix
    products; one product of an $(m \times k)$ by a $(k \times n)$ matrix costs

    $$ \text{FLOPs} = 2\,m\,k\,n, \qquad \text{throughput} = \frac{\text{FLOPs}}{\text{seconds}} , $$

    and a GPU reaches tens of TFLOP/s where two CPU cores reach tens of GFLOP/s. But every operation also
    pays a fixed launch cost of a few microseconds on a GPU, so tiny arrays gain nothing.

    **This notebook runs anywhere.** On a machine without a GPU (or without CuPy) switching fails with a
    `BackendError` that says why; the notebook prints that message, skips the GPU timing, and shows the rest
    with `array_api_strict`, a CPU stand-in for "another array library" that runs the very same code path.

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
        mt.backend.use("cupy")
        GPU = mt.backend.current()
        print("switched to", GPU, "- a GPU is here:", GPU.native.cuda.runtime.getDeviceProperties(0)["name"].decode())
    except mt.backend.BackendError as err:
        GPU = None
        print("No GPU backend on this machine, so the GPU timing below is skipped. The message says why:")
        print("   ", err)
    finally:
        mt.backend.use("numpy")                  # back to the CPU for what follows
    print("current:", mt.backend.current())
    """),
    md(r"""
    ## 3. The same model on two backends: the same numbers

    Build an encoder layer once, copy its weights (`state_dict()`, always NumPy arrays) into a twin on
    another backend, and run the same batch through both, forward and backward. The other backend is CuPy
    when there is a GPU, otherwise `array_api_strict`. Results agree to float32 rounding (a GPU adds in
    another order).
    """),
    code("""
    other = "cupy" if GPU is not None else "array_api_strict"
    d_model, heads, d_ff, B, L = 64, 4, 128, 8, 32
    layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)
    x_host = np.random.default_rng(0).standard_normal((B, L, d_model)).astype(np.float32)

    def run(backend):
        \"\"\"Loss and every parameter's gradient for the same weights and batch on `backend`, as NumPy.\"\"\"
        with mt.backend.use(backend):
            twin = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)   # made on `backend`
            twin.load_state_dict(layer.state_dict())                   # the same weights
            x = mt.tensor(x_host)                                      # (B, L, d_model) on `backend`
            loss = (twin(x) ** 2).mean()
            loss.backward()
            print(f"{backend:17} x on {x.backend.name:17} loss {loss.item():.6f}")
            return loss.item(), {n: p.grad.numpy() for n, p in twin.named_parameters()}   # on the host

    loss_a, grads_a = run("numpy")
    loss_b, grads_b = run(other)
    scale = max(np.abs(g).max() for g in grads_a.values())                 # the largest gradient of the model
    worst = max(np.abs(grads_a[n] - grads_b[n]).max() for n in grads_a)
    print(f"relative difference: loss {abs(loss_a - loss_b) / abs(loss_a):.1e}; "
          f"gradients (all {len(grads_a)} parameters) {worst / scale:.1e} of the largest gradient")
    """),
    md(r"""
    ## 4. Moving data between backends

    Backends never mix silently: an operation on tensors of two backends is a `BackendError` that says how
    to fix it. `t.to("cupy")` / `t.to("numpy")` moves a tensor, `model.to("cupy")` a whole model,
    `t.numpy()` always gives a NumPy copy on the host, and `state_dict()` always holds NumPy arrays, so a
    checkpoint written on a GPU loads on a laptop. (Shown with `array_api_strict` when there is no GPU.)
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
    print("Linear moved to", moved.weight.backend.name, "; its state_dict holds",
          {k: type(v).__name__ for k, v in moved.state_dict().items()})
    """),
    md(r"""
    ## 5. Timing: NumPy against CuPy on a matmul-heavy step

    One training step's arithmetic, forward and backward, of a Transformer encoder layer: a **tiny** one
    (the notebooks' sizes), a **large** one and, where there is a GPU, a **big** one (the paper's base
    width, $d_\text{model} = 512$, $d_{ff} = 2048$, 32 sequences of 256 tokens). Two rules of timing a GPU:
    run once before timing (the first call compiles kernels), and wait for the GPU to finish before reading
    the clock (work is queued asynchronously; `synchronize()`).
    """),
    code("""
    import time


    def sync(backend):
        if backend.name == "cupy":
            backend.native.cuda.Device().synchronize()   # wait for the queued GPU work

    def time_step(backend_name, d_model, heads, d_ff, B, L, repeats):
        \"\"\"Median seconds of one forward + backward of an encoder layer on (B, L, d_model).\"\"\"
        with mt.backend.use(backend_name) as be:
            layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)
            x = mt.randn(B, L, d_model)

            def step():
                layer.zero_grad()
                (layer(x) ** 2).mean().backward()

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
             "large": dict(d_model=256, heads=8, d_ff=1024, B=8, L=64)}
    if GPU is not None:
        sizes["big"] = dict(d_model=512, heads=8, d_ff=2048, B=32, L=256)   # too slow for a laptop's CPU
    results = {}
    for size, cfg in sizes.items():
        flops = step_flops(cfg["d_model"], cfg["d_ff"], cfg["B"], cfg["L"])
        for backend_name in ["numpy"] + (["cupy"] if GPU is not None else []):
            seconds = time_step(backend_name, **cfg, repeats=10 if size == "tiny" else 3)
            results[size, backend_name] = seconds
            print(f"{size:5} {backend_name:6} {seconds * 1e3:9.2f} ms per step   {flops / seconds / 1e9:8.1f} GFLOP/s")
    if GPU is None:
        print("\\nCuPy timing skipped: no GPU backend here (see section 2).")
    else:
        for size in sizes:
            print(f"{size}: CuPy is {results[size, 'numpy'] / results[size, 'cupy']:.1f}x NumPy's speed")
    """),
    md(r"""
    What to expect on a GPU: the tiny step is *slower* there (its many small operations each pay the GPU's
    launch cost, with too little arithmetic to hide it), the large step a few times faster, and the
    big one nearly a hundred times. Measured once with this notebook on one NVIDIA H200 (CuPy 14, a 16-core
    host), to compare with your own run:

    | size | NumPy (16 cores) | CuPy (H200) | CuPy's speed-up |
    |---|---|---|---|
    | tiny | 1.1 ms | 4.0 ms | 0.3x |
    | large | 18 ms (140 GFLOP/s) | 4.8 ms (525 GFLOP/s) | 3.7x |
    | big | 698 ms (240 GFLOP/s) | 7.8 ms (21.6 TFLOP/s) | 90x |

    The lesson for training: give the GPU big batches and long sequences. The library's
    `tools/gpu_check.sh` runs the whole test suite on CuPy, checks that NumPy and CuPy give the same
    gradients, trains a model and benchmarks the engine against PyTorch.

    To get a GPU backend: `pip install "minitransformer[cuda12]"` (or `[cuda13]`, matching the driver's CUDA
    version), then `mt.backend.use("cupy")` or `MINITRANSFORMER_BACKEND=cupy python train.py`.

    ## Exercises

    1. Time a single `(n, n) @ (n, n)` matrix product on NumPy for $n = 256, 512, 1024, 2048$ and compute the
       GFLOP/s ($2n^3$ FLOPs). Where does your CPU level off?
    2. In section 5, find the smallest batch size at which CuPy beats NumPy for the large layer (on a
       machine with a GPU), or estimate it from the launch cost: about 10 µs for each of the step's operations.
    3. Remove `sync(be)` from `time_step` and time CuPy again. Why does it look faster, and why is that
       number wrong?
    4. Train on the GPU, save with `save_checkpoint`, and load the checkpoint with the NumPy backend. Which
       line of the library guarantees that this works? (Hint: `Module.state_dict`.)
    5. Run section 3 with `float64` weights and inputs (`layer.to("float64")`): how much smaller is the
       difference between the backends, and why?
    """),
]
