"""Notebook 09_residuals_and_layer_norm: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "1.5 1.2": "an estimate: 1 + 1/2, the mean square of the inputs plus PE's, and its square root",
    "2.654 2.657 2.386 2.426 2.841 2.824 2.346 2.386 2.508 2.451 2.325 2.364 2.743 2.562 2.381 2.415 0.04 0.003 0.18 "
    "0.11": "section 7's table of four other seeds, measured separately (16 runs, not a cell), and the differences "
            "it and this run's 2.727 - 2.620 give",
    "1e-2 1e-3": "exercise 2's learning rates, settings of the exercise",
}

CELLS = [
    md(r"""
    # 09 · Residual connections and layer normalisation

    **What this notebook teaches.** What lets a deep stack of layers train. Every sub-layer of the
    Transformer (self-attention, cross-attention, the feed-forward network) sits inside a *residual
    connection*, which adds the sub-layer's input to its output, and a *layer normalisation*. The paper
    (section 3.1) normalises after the addition, *post-LN*; most models since normalise the sub-layer's
    input instead, *pre-LN*:

    $$
    \text{post-LN (the paper)}:\ x \leftarrow \mathrm{LayerNorm}(x + \mathrm{Sublayer}(x)), \qquad
    \text{pre-LN}:\ x \leftarrow x + \mathrm{Sublayer}(\mathrm{LayerNorm}(x)) .
    $$

    The library has both, as one named switch: `nn.EncoderLayer(..., norm_first=False)` is post-LN and
    `norm_first=True` is pre-LN (the same for `DecoderLayer`, `Encoder`, `Decoder` and the models). The
    addition sends the gradient back along two paths, through the sub-layer and around it:

    $$ y = x + f(x) \quad\Rightarrow\quad \bar x = \bar y + J_f^\top \bar y , $$

    where $\bar y = \partial \mathcal L / \partial y$ and $J_f$ is the Jacobian of $f$.

    Steps: **1** one post-LN encoder layer step by step, checked against `nn.EncoderLayer` · **2** the same
    weights wired pre-LN · **3** the residual's gradient · **4** a 12-layer stack at initialisation: the
    gradient that reaches each layer, post-LN, pre-LN and without residual connections · **5** the last
    layer's gradient as the stack gets deeper · **6** the scale of the residual stream through depth, with
    and without layer norm, and how alike the tokens become · **7** a short training run: post-LN against
    pre-LN, with and without warm-up · **8** what the source document says.

    The formulas, their derivatives and checks by hand: [layer normalisation](../docs/formulas/layer-norm.md),
    [the encoder and decoder layers](../docs/formulas/encoder-decoder.md) (its section "The derivative"
    derives the gradients of both wirings), [the feed-forward network](../docs/formulas/feed-forward.md),
    [the warm-up schedule](../docs/formulas/schedule.md).
    """),
    SETUP,
    md(r"""
    **One BLAS thread**, as in notebook 05: for matrices this small, one thread is faster than several.
    """),
    code("""
    from minitransformer.train import get_blas_threads, set_blas_threads

    print("BLAS threads:", get_blas_threads(), "-> 1:", set_blas_threads(1))
    """),
    md(r"""
    ## 1. One encoder layer, step by step (post-LN)

    The paper's encoder layer is two sub-layers, each followed by "Add & Norm":

    $$ x_1 = \mathrm{LayerNorm}_1(x + \mathrm{MultiHead}(x, x, x)), \qquad
       y = \mathrm{LayerNorm}_2(x_1 + \mathrm{FFN}(x_1)) . $$

    Small sizes: $d_\text{model} = 16$, 4 heads, $d_{ff} = 32$, a batch of 2 sequences of 5 tokens, float64
    and no dropout, so the NumPy lines below must give the library's numbers to rounding error: the checks
    assert that they differ by at most $10^{-12}$, and a difference near $10^{-5}$, the layer norm's
    $\epsilon$, would mean that $\epsilon$ is in the wrong place (added to the standard deviation instead of
    the variance, say). The norms'
    $\gamma$ and $\beta$ start as 1 and 0; they are set to random values here, so that a $\gamma$ or $\beta$
    applied in the wrong place would show. Multi-head attention comes from the library (notebook 03 builds
    it by hand); the additions, the layer norms and the FFN are written in NumPy.
    """),
    code("""
    d_model, heads, d_ff = 16, 4, 32
    mt.manual_seed(0)
    layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0, norm_first=False).to("float64")   # post-LN
    rng = np.random.default_rng(0)
    W = layer.state_dict()                                               # name -> NumPy array
    for name in ("norm1", "norm2"):
        W[f"{name}.gamma"] = 1 + 0.3 * rng.standard_normal(d_model)      # (d_model,)
        W[f"{name}.beta"] = 0.3 * rng.standard_normal(d_model)           # (d_model,)
    layer.load_state_dict(W)
    x = rng.standard_normal((2, 5, d_model))                             # (batch, L, d_model)
    print("x", x.shape, "  W_1", W["ffn.W_1.weight"].shape, "  W_2", W["ffn.W_2.weight"].shape,
          "  gamma, beta", W["norm1.gamma"].shape)
    """),
    code("""
    def layer_norm(z, gamma, beta, eps=1e-5):
        \"\"\"(..., d) -> (..., d): each token to mean 0 and variance 1, then scaled by gamma and shifted by beta.\"\"\"
        mu = z.mean(axis=-1, keepdims=True)                              # (..., 1)
        var = z.var(axis=-1, keepdims=True)                              # (..., 1), divided by d
        return gamma * (z - mu) / np.sqrt(var + eps) + beta


    def attention(z):
        \"\"\"MultiHead(z, z, z) by the library, as a NumPy array: (..., L, d_model) -> (..., L, d_model).\"\"\"
        Z = mt.tensor(z)
        return layer.self_attn(Z, Z, Z)[0].numpy()


    def ffn(z):
        \"\"\"max(0, z W_1 + b_1) W_2 + b_2 (the paper's equation 2); also the hidden units.\"\"\"
        hidden = np.maximum(0, z @ W["ffn.W_1.weight"] + W["ffn.W_1.bias"])    # (..., d_ff)
        return hidden @ W["ffn.W_2.weight"] + W["ffn.W_2.bias"], hidden        # (..., d_model)
    """),
    code("""
    a = attention(x)                                                     # sub-layer 1
    z1 = x + a                                                           # Add: the residual connection
    x1 = layer_norm(z1, W["norm1.gamma"], W["norm1.beta"])               # & Norm
    print("MultiHead(x, x, x)", a.shape, "-> x + MultiHead", z1.shape, "-> LayerNorm_1", x1.shape)

    f, hidden = ffn(x1)                                                  # sub-layer 2
    z2 = x1 + f                                                          # Add
    y_post = layer_norm(z2, W["norm2.gamma"], W["norm2.beta"])           # & Norm
    print("FFN(x_1)", f.shape, f"(hidden {hidden.shape})", "-> x_1 + FFN", z2.shape, "-> LayerNorm_2", y_post.shape)

    Y = layer(mt.tensor(x))
    print(f"nn.EncoderLayer(norm_first=False) {Y.shape} {Y.numpy().dtype}: max |library - NumPy| = "
          f"{np.abs(Y.numpy() - y_post).max():.1e}")
    np.testing.assert_allclose(Y.numpy(), y_post, rtol=0, atol=1e-12)   # float64: rounding error only
    """),
    md(r"""
    Whatever the layer did, its output is a layer norm's output: undo $\gamma$ and $\beta$ and every token
    has mean 0 and variance 1 (just under 1, because of $\epsilon$). A post-LN stack resets the scale of its
    activations after every sub-layer.
    """),
    code("""
    x_hat = (y_post - W["norm2.beta"]) / W["norm2.gamma"]                # (2, 5, 16)
    print(f"per token, over its 16 features: |mean| at most {np.abs(x_hat.mean(-1)).max():.0e};",
          "variance from", x_hat.var(-1).min().round(6), "to", x_hat.var(-1).max().round(6))
    """),
    md(r"""
    ## 2. The same weights, pre-LN

    Pre-LN normalises what goes **into** each sub-layer and adds the sub-layer's output to the un-normalised
    stream:

    $$ x_1 = x + \mathrm{MultiHead}(n_1, n_1, n_1),\ n_1 = \mathrm{LayerNorm}_1(x), \qquad
       y = x_1 + \mathrm{FFN}(\mathrm{LayerNorm}_2(x_1)) . $$

    `norm_first` is an attribute of the layer: switching it keeps every weight and changes only the wiring.
    """),
    code("""
    layer.norm_first = True                                              # the same weights, wired pre-LN
    n1 = layer_norm(x, W["norm1.gamma"], W["norm1.beta"])                # (2, 5, 16)
    x1 = x + attention(n1)                                               # x + MultiHead(n_1, n_1, n_1)
    n2 = layer_norm(x1, W["norm2.gamma"], W["norm2.beta"])
    y_pre = x1 + ffn(n2)[0]                                              # x_1 + FFN(LayerNorm_2(x_1))
    print("LayerNorm_1(x)", n1.shape, "-> x_1", x1.shape, "-> y", y_pre.shape)

    Y_pre = layer(mt.tensor(x))
    print(f"nn.EncoderLayer(norm_first=True) {Y_pre.shape} {Y_pre.numpy().dtype}: max |library - NumPy| = "
          f"{np.abs(Y_pre.numpy() - y_pre).max():.1e}")
    layer.norm_first = False
    np.testing.assert_allclose(Y_pre.numpy(), y_pre, rtol=0, atol=1e-12)
    """),
    md(r"""
    The pre-LN output is $x$ plus two sub-layer outputs, normalised by nothing: each layer of a pre-LN
    stack adds to a sum that nothing rescales (section 6 follows it through 12 layers). This is why a
    pre-LN stack ends with one more LayerNorm, `nn.Encoder(..., norm_first=True).norm`, while a post-LN
    stack already ends in one.

    The two wirings drawn by `viz.draw_architecture`. It draws whole models only (an `nn.Transformer`,
    `nn.DecoderOnlyLM` or `nn.TransformerClassifier`), not a lone `nn.EncoderLayer`, so the layer is drawn
    inside two small classifiers, one of each: the smallest whole model around an encoder stack, with its
    pooling and head on top (notebook 05 draws the whole encoder-decoder). Post-LN is the paper's "Add & Norm":
    the residual arrow ends in the norm, on the path every later layer reads. Pre-LN moves the norm below its
    sub-layer, into the branch: the residual arrow carries $x$ around it to a plain $+$, and the stack ends in
    `encoder.norm`.
    """),
    code("""
    from IPython.display import display

    for norm_first in (False, True):                                     # post-LN (the paper), then pre-LN
        classifier = nn.TransformerClassifier(vocab_size=100, d_model=16, heads=4, d_ff=32, num_layers=2, max_len=5,
                                              norm_first=norm_first)
        display(viz.draw_architecture(classifier))
    """),
    md(r"""
    ## 3. What the residual connection does to the gradient

    $x$ is used twice in $y = x + f(x)$, by the addition and by $f$, so the autograd engine adds the two
    gradients that come back: $\bar x = \bar y + J_f^\top \bar y$. The first term is $\bar y$ itself,
    whatever $f$ is. Checked with $f$ = the layer's FFN and the loss $\mathcal L = \sum c \odot y$ for a
    random $c$, so that $\bar y = c$:
    """),
    code("""
    c = rng.standard_normal(x.shape)                                     # L = sum(c * y): y-bar = c
    X = mt.tensor(x, requires_grad=True)
    (mt.tensor(c) * (X + layer.ffn(X))).sum().backward()                 # y = x + f(x)
    X_f = mt.tensor(x, requires_grad=True)
    (mt.tensor(c) * layer.ffn(X_f)).sum().backward()                     # f alone: x-bar = J_f^T y-bar
    np.testing.assert_allclose(X.grad.numpy(), c + X_f.grad.numpy(), rtol=1e-12, atol=1e-12)
    print("x-bar = y-bar + J_f^T y-bar", X.grad.shape, "   norms: |y-bar|", np.linalg.norm(c).round(3),
          "  |J_f^T y-bar|", np.linalg.norm(X_f.grad.numpy()).round(3),
          "  |x-bar|", np.linalg.norm(X.grad.numpy()).round(3))
    """),
    md(r"""
    **In a stack.** Pre-LN sub-layer $l$ computes $x_l = x_{l-1} + f_l(\mathrm{LN}_l(x_{l-1}))$, so
    $\bar x_{l-1} = (I + J_l^\top)\, \bar x_l$, where $J_l$ is the Jacobian of $x \mapsto f_l(\mathrm{LN}_l(x))$,
    $J_l^\top = J_{\mathrm{LN}_l}^\top J_{f_l}^\top$, and over $n$ sub-layers

    $$ \bar x_0 = (I + J_1^\top)(I + J_2^\top) \cdots (I + J_n^\top)\, \bar x_n
       = \bar x_n + \sum_l J_l^\top \bar x_n + \ldots $$

    The gradient below the final LayerNorm, $\bar x_n$, reaches the bottom unchanged, plus what the
    sub-layers add. In post-LN, $x_l = \mathrm{LN}(x_{l-1} + f_l(x_{l-1}))$, the path around each sub-layer
    passes through a layer norm's backward, which removes two directions from the gradient and divides it
    by the standard deviation of $x_{l-1} + f_l(x_{l-1})$ ([layer norm](../docs/formulas/layer-norm.md), "The
    derivative"). Without the residual connection only the product of the $J_l^\top$ is left. What this does
    to the gradients of a real stack is measured next.

    ## 4. A deep stack at initialisation: the gradient each layer receives

    An `nn.Encoder` of 12 layers, $d_\text{model} = 32$, 4 heads, $d_{ff} = 64$, no dropout, wired three
    ways: post-LN, pre-LN (with its final LayerNorm), and the post-LN layer with both residual
    connections taken out, $x \leftarrow \mathrm{LayerNorm}(\mathrm{Sublayer}(x))$. Each wiring is built from
    the same seed, so the weights are the same and only the wiring differs. On top, a linear read-out to 20
    classes and the cross-entropy against random targets: the loss of a model that has learnt nothing yet.
    The input is a batch of 8 sequences of 16 random vectors of variance 1, the scale of the scaled
    embeddings ([embedding](../docs/formulas/embedding.md); adding $PE$, whose entries have mean square 1/2,
    would make their mean square about 1.5, a standard deviation of about 1.2). For each layer $l$ the
    measure is the norm of the gradient of all its parameters,
    $\lVert \partial \mathcal L / \partial \theta_l \rVert$.
    """),
    code("""
    N, d_model, heads, d_ff, batch, S, classes = 12, 32, 4, 64, 8, 16, 20


    def no_residual(layer, x):
        \"\"\"A post-LN layer with its two residual connections taken out: LayerNorm(Sublayer(x)), twice.\"\"\"
        x = layer.norm1(layer.self_attn(x, x, x)[0])
        return layer.norm2(layer.ffn(x))


    def no_norm(layer, x):
        \"\"\"The residual connections without any layer norm: x + Sublayer(x), twice (used in section 6).\"\"\"
        x = x + layer.self_attn(x, x, x)[0]
        return x + layer.ffn(x)


    WIRINGS = {"post-LN": None, "pre-LN": None, "no residual": no_residual, "no norm": no_norm}


    def stack(wiring, seed, num_layers=N):
        \"\"\"The encoder and the read-out: the same weights for every wiring built from the same seed.\"\"\"
        mt.manual_seed(seed)
        encoder = nn.Encoder(d_model, heads, d_ff, num_layers, dropout=0.0, norm_first=(wiring == "pre-LN"))
        return encoder, nn.Linear(d_model, classes)


    def data(seed):
        \"\"\"A random input (batch, S, d_model) of variance 1 and random targets (batch, S).\"\"\"
        rng = np.random.default_rng(seed)
        x = mt.tensor(rng.standard_normal((batch, S, d_model)).astype(np.float32))
        return x, mt.tensor(rng.integers(0, classes, (batch, S)))


    def run(wiring, seed, num_layers=N):
        \"\"\"One forward and backward at initialisation: each layer's gradient norm; the stream after each; the
        encoder, its gradients filled in (section 5 reads one of them).\"\"\"
        encoder, readout = stack(wiring, seed, num_layers)
        x, targets = data(seed)
        stream = []
        for layer in encoder.layers:
            x = WIRINGS[wiring](layer, x) if WIRINGS[wiring] else layer(x)
            stream.append(x.numpy())                                     # (batch, S, d_model) after layer l
        if encoder.norm is not None:                                     # pre-LN's final LayerNorm
            x = encoder.norm(x)
        F.cross_entropy(readout(x), targets).backward()
        grads = [np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in layer.parameters() if p.grad is not None))
                 for layer in encoder.layers]                            # no norm: the norms' parameters get none
        return np.array(grads), stream, encoder
    """),
    md(r"""
    **Check** that `run`'s loop is what `nn.Encoder` computes, post-LN and pre-LN, and that the wirings share
    their weights:
    """),
    code("""
    post, readout = stack("post-LN", 0)
    pre, _ = stack("pre-LN", 0)
    x_in, _ = data(0)
    for wiring, encoder in (("post-LN", post), ("pre-LN", pre)):
        top = mt.tensor(run(wiring, 0)[1][-1])                           # run's stream after the last layer
        if encoder.norm is not None:                                     # pre-LN's final LayerNorm
            top = encoder.norm(top)
        print(f"{wiring}: run's loop and nn.Encoder the same:", np.array_equal(top.numpy(), encoder(x_in).numpy()))
    same = all(np.array_equal(a, b) for a, b in zip(post.layers.state_dict().values(),
                                                    pre.layers.state_dict().values()))
    print("x", x_in.shape, "-> encoder", pre(x_in).shape, "-> read-out", readout(pre(x_in)).shape,
          "  post-LN and pre-LN layers have the same weights:", same)
    """),
    md(r"""
    16 seeds (weights, input and targets) per wiring; the picture shows the mean over the seeds and, shaded,
    the range between the 4th and the 13th of the 16 sorted values.
    """),
    code("""
    seeds = range(16)
    runs = {w: [run(w, s) for s in seeds] for w in WIRINGS}
    G = {w: np.stack([g for g, *_ in runs[w]]) for w in WIRINGS}         # (seeds, N) each
    print("mean over", len(seeds), "seeds of |dL/dtheta_l|, layers 1, 6, 12:")
    for w in ("post-LN", "pre-LN", "no residual"):
        m = G[w].mean(axis=0)
        print(f"  {w:12} {m[0]:5.2f} {m[5]:5.2f} {m[11]:5.2f}   layer 12 / layer 1: {m[11] / m[0]:.2f}")
    """),
    code("""
    from matplotlib.figure import Figure

    COLOURS = {"post-LN": "C0", "pre-LN": "C1", "no residual": "C2", "no norm": "C3"}
    STYLES = {"post-LN": dict(marker="o"), "pre-LN": dict(marker="o"), "no residual": dict(marker="s", linestyle="--"),
              "no norm": dict(marker="^")}
    layers = np.arange(1, N + 1)
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for w in ("post-LN", "pre-LN", "no residual"):
        low, high = np.sort(G[w], axis=0)[[3, 12]]
        ax.plot(layers, G[w].mean(axis=0), color=COLOURS[w], label=w, **STYLES[w])
        ax.fill_between(layers, low, high, color=COLOURS[w], alpha=0.15)
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set_xlabel("layer l (1 = next to the input, 12 = next to the loss)")
    ax.set_ylabel("|dL/dtheta_l|")
    ax.set_title("gradient reaching each layer's parameters, at initialisation")
    ax.grid(True, color="0.9")
    ax.legend()
    fig
    """),
    md(r"""
    What the figure shows, for this stack at initialisation:

    * post-LN's gradient **grows towards the output**: 1.8 times as large at layer 12 as at layer 1;
    * pre-LN's **shrinks towards the output**: at layer 12 it is about half its size at layer 1, and about a
      quarter of post-LN's there (0.52 against 2.02);
    * without residual connections the gradient grows towards the output too, and it is the largest of the
      three at every layer.

    None of the three wirings plotted has a gradient that vanishes or explodes over 12 layers (the fourth,
    `no norm`, does: section 6); the spread between seeds (the shaded bands) is wide, and the bands of
    post-LN and pre-LN overlap in the lower layers.

    Xiong et al. 2020 ("On Layer Normalization in the Transformer Architecture") prove that at
    initialisation the expected gradients of post-LN's parameters near the output are large, and that
    pre-LN's are well-behaved; a large learning rate from the first step then makes post-LN's training
    unstable, which a warm-up avoids. Their proof uses *mean field theory*: it treats the initial weights as
    random and reasons about expected values over them (the expected squared norm of each layer's output,
    say), not about any one network. They also measured the gradient of each layer at initialisation (their
    figure 3): post-LN's grows with the layer's index, and pre-LN's is about the same at every layer. The
    figure here agrees with the first part: post-LN's gradients are largest next to the loss, and larger
    than pre-LN's there. Pre-LN's gradients are not the same at every layer in this stack: they fall with
    the layer's index (a lower layer collects the gradient of more sub-layers above it, checked next).

    **Why pre-LN's gradient falls.** The gradient of a pre-LN sub-layer's parameters,
    $(\partial f_l / \partial \theta_l)^\top \bar x_l$, takes from the backward pass only $\bar x_l$, the
    gradient at the sub-layer's output, never the stream's gradient below the layer norm in front of it. By
    section 3's product, $\bar x_l = \bar x_n + \sum_{k > l} J_k^\top \bar x_n + \ldots$: the top sub-layer
    gets $\bar x_n$ alone, and each one below gets $\bar x_n$ plus terms from every sub-layer above it. The
    same 16 stacks once more, with every sub-layer reading a detached copy of the stream,
    `norm1(x.detach())`: the forward computes the same numbers, but no $J_k^\top$ term comes down, and
    every sub-layer gets $\bar x_n$ alone, the identity path of section 3:
    """),
    code("""
    def identity_path_only(seed):
        \"\"\"Pre-LN's |dL/dtheta_l| when every sub-layer reads a detached copy of the stream: the same forward,
        but the stream's gradient comes down only along the identity path (x-bar_l = x-bar_n for every l).\"\"\"
        encoder, readout = stack("pre-LN", seed)
        x, targets = data(seed)
        for layer in encoder.layers:
            n1 = layer.norm1(x.detach())                                 # reads x; sends no gradient back to it
            x = x + layer.self_attn(n1, n1, n1)[0]
            x = x + layer.ffn(layer.norm2(x.detach()))
        F.cross_entropy(readout(encoder.norm(x)), targets).backward()
        return np.array([np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in layer.parameters()))
                         for layer in encoder.layers])


    G_identity = np.stack([identity_path_only(s) for s in seeds])       # (seeds, N)
    print("mean over", len(seeds), "seeds of |dL/dtheta_l|, layers 1, 6, 12:")
    for name, g in (("pre-LN", G["pre-LN"]), ("identity path only", G_identity)):
        m = g.mean(axis=0)
        print(f"  {name:18} {m[0]:5.2f} {m[5]:5.2f} {m[11]:5.2f}   layer 12 / layer 1: {m[11] / m[0]:.2f}")
    fig = Figure(figsize=(6.5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(layers, G["pre-LN"].mean(axis=0), color=COLOURS["pre-LN"], marker="o", label="pre-LN")
    ax.plot(layers, G_identity.mean(axis=0), color=COLOURS["pre-LN"], marker="o", linestyle=":",
            label="pre-LN, identity path only")
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set_xlabel("layer l")
    ax.set_ylabel("|dL/dtheta_l|")
    ax.set_title("pre-LN's gradient with and without the J^T terms")
    ax.grid(True, color="0.9")
    ax.legend()
    fig
    """),
    md(r"""
    Along the identity path alone the gradient rises from layer 1 to layer 12 (0.30 to 0.52) instead of
    falling (1.12 to 0.52). At layer 12, which has no sub-layer above it but its own FFN, the two agree to
    two decimals. So the fall of pre-LN's curve comes from the $J_k^\top$ terms: the lower the layer, the
    more of them it collects, and at layer 1 they make its gradient larger than $\bar x_n$ alone would.

    ## 5. The last layer's gradient as the stack gets deeper

    Xiong et al.'s Theorem 1 bounds, from above, the gradient of the last layer's FFN output weights
    ($W_2$ of layer $N$): for post-LN by a quantity that does not depend on the number of layers $N$, for pre-LN by
    one that falls as $1/\sqrt{N}$. Measured here for $N$ = 2, 4, 8 and 16 layers, 8 seeds each, both as the
    norm of the gradient of all the last layer's parameters (the measure of section 4) and of its $W_2$ alone
    (the theorem's), with $1/\sqrt{N}$ drawn from pre-LN's $W_2$ at $N = 2$ for comparison:
    """),
    code("""
    def last_layer(wiring, seed, num_layers):
        \"\"\"|dL/dtheta_N| of all the last layer's parameters, and of its W_2 alone (Xiong et al.'s W^{2,L}).\"\"\"
        grads, _, encoder = run(wiring, seed, num_layers)
        return grads[-1], np.linalg.norm(encoder.layers[-1].ffn.W_2.weight.grad.numpy())


    depths = [2, 4, 8, 16]
    last = {w: np.array([np.mean([last_layer(w, s, n) for s in range(8)], axis=0) for n in depths])
            for w in ("post-LN", "pre-LN")}                                  # (depths, 2): all, W_2
    print("|dL/dtheta| of the last layer, mean over 8 seeds:")
    print("          all its parameters            its W_2 alone")
    print("          post-LN  pre-LN  post / pre   post-LN  pre-LN  post / pre")
    for i, n in enumerate(depths):
        (post_all, post_w2), (pre_all, pre_w2) = last["post-LN"][i], last["pre-LN"][i]
        print(f"  N = {n:2}  {post_all:7.2f} {pre_all:7.2f} {post_all / pre_all:11.1f}"
              f"   {post_w2:7.2f} {pre_w2:7.2f} {post_w2 / pre_w2:11.1f}")
    fig = Figure(figsize=(8, 3.8), layout="constrained")
    ax = fig.subplots()
    for w in ("post-LN", "pre-LN"):
        ax.plot(depths, last[w][:, 0], marker="o", color=COLOURS[w], label=f"{w}, all parameters")
        ax.plot(depths, last[w][:, 1], marker="s", linestyle="--", color=COLOURS[w], label=f"{w}, W_2 alone")
    ax.plot(depths, last["pre-LN"][0, 1] * np.sqrt(2 / np.array(depths)), color="0.5", linestyle=":",
            label="1/sqrt(N), from pre-LN's W_2 at N = 2")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(depths, [str(n) for n in depths])
    ax.set_yticks([0.1, 0.2, 0.5, 1, 2], ["0.1", "0.2", "0.5", "1", "2"])
    ax.minorticks_off()
    ax.set_xlabel("number of layers N")
    ax.set_ylabel("|dL/dtheta|, last layer")
    ax.set_title("the last layer's gradient against depth")
    ax.grid(True, color="0.9")
    ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig
    """),
    md(r"""
    Post-LN's last-layer gradient grows with depth, from 0.88 at $N = 2$ to about 2 at $N = 8$ and
    $N = 16$ (its $W_2$ alone: from 0.47 to 0.97 and 0.90); pre-LN's stays near 0.65 up to $N = 8$ and falls
    to 0.40 at $N = 16$ (its $W_2$: 0.37, 0.33, 0.30, then 0.18). So the ratio between them grows with depth,
    from 1.3 to 4.7 (to 4.9 for $W_2$), but mainly because post-LN's gradient **rises**: a bound that does
    not depend on $N$ allows that, but does not predict it. Pre-LN's $W_2$ does fall, but from $N = 2$ to
    $N = 8$ by about a fifth, slower than $1/\sqrt N$, which would halve it (the dotted line), and from 8 to 16
    a little faster than $1/\sqrt N$. An upper bound says how large a gradient can be, not what it is, and
    these are small stacks and 8 seeds: they neither confirm the theorem nor contradict it.

    ## 6. The residual stream through depth

    The *residual stream* is what one layer hands to the next. Its scale, the standard deviation of its
    entries after each layer, for the three wirings and a fourth, the residual connections **without any
    layer norm**, $x \leftarrow x + \mathrm{Sublayer}(x)$ (`no_norm` above; the same 16 seeds):
    """),
    code("""
    def token_similarity(h):
        \"\"\"Mean cosine similarity of two different positions' vectors in a sequence; h (batch, S, d).\"\"\"
        u = h / np.linalg.norm(h, axis=-1, keepdims=True)                  # (batch, S, d), unit vectors
        cos = u @ u.transpose(0, 2, 1)                                     # (batch, S, S)
        n = h.shape[1]
        return (cos.sum(axis=(1, 2)) - n).mean() / (n * n - n)            # the diagonal (1s) left out


    scale = {w: np.mean([[h.std() for h in stream] for _, stream, _ in runs[w]], axis=0) for w in WIRINGS}   # (N,)
    alike = {w: np.mean([[token_similarity(h) for h in stream] for _, stream, _ in runs[w]], axis=0)
             for w in WIRINGS}
    print("after layer:                 1       2       6      12")
    for w in WIRINGS:
        print(f"  std, {w:12}  " + " ".join(f"{scale[w][l - 1]:7.2f}" for l in (1, 2, 6, 12)))
    for w in WIRINGS:
        print(f"  cosine, {w:12}" + " ".join(f"{alike[w][l - 1]:7.2f}" for l in (1, 2, 6, 12)))
    g = G["no norm"]                                                      # (seeds, N): heavy-tailed, so the median
    print("|dL/dtheta_l| without norm, median over the seeds, layers 1, 6, 12:",
          " ".join(f"{v:.1e}" for v in np.median(g, axis=0)[[0, 5, 11]]),
          f";  layer 1 from {g[:, 0].min():.1e} to {g[:, 0].max():.1e}")
    """),
    code("""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_scale, ax_alike = fig.subplots(1, 2)
    for w in WIRINGS:
        ax_scale.plot(layers, scale[w], color=COLOURS[w], label=w, **STYLES[w])
        ax_alike.plot(layers, alike[w], color=COLOURS[w], label=w, **STYLES[w])
    ax_scale.set_yscale("log")
    ax_scale.set_ylabel("standard deviation of the stream")
    ax_scale.set_title("the stream's scale after each layer")
    ax_alike.set_ylabel("mean cosine similarity of two positions")
    ax_alike.set_title("how alike the tokens become")
    ax_alike.set_ylim(-0.05, 1.05)
    for ax in (ax_scale, ax_alike):
        ax.set_xticks(layers)
        ax.set_xlabel("layer l")
        ax.grid(True, color="0.9")
        ax.legend()
    fig
    """),
    md(r"""
    **The scale (left).** Post-LN's stream leaves every layer through a layer norm: its standard deviation is
    1.00 at every depth, and so is that of the stack without residual connections (the two lines lie on each
    other). Pre-LN's stream is the input plus every sub-layer's output so far, and it grows with depth, to
    3.52 after 12 layers. Each pre-LN sub-layer reads a normalised copy of the stream, so what it adds does
    not grow with the stream: a deeper layer changes the stream relatively less. The stream's scale reaches
    pre-LN's gradients through the layer norms' backward, which divides by the standard deviation of the
    norm's input: the final LayerNorm's backward divides the read-out's gradient by the top stream's
    standard deviation (about 3.5), giving $\bar x_n$, and each
    $J_l^\top$ of section 3 holds the division of the norm in front of its sub-layer. A sub-layer's own
    parameters take $\bar x_l$ without that norm's division (section 4). Without any layer norm the stream grows by
    a factor at every layer, to 387 after 12 layers, and the gradient of the first layer's parameters is
    between about $5 \cdot 10^5$ and $3 \cdot 10^8$ over the 16 seeds (median about $3 \cdot 10^6$; the
    other wirings' are between 1 and 2): this is what the norms prevent. (The median, because a few seeds
    are far larger than the rest: their mean would be dominated by the largest one.)

    **How alike the tokens are (right).** The input's positions are independent random vectors (cosine
    near 0). Without residual connections the positions are nearly the same vector after two layers (cosine
    0.97) and identical to two decimals after six (1.00). With the residual connections each position keeps
    its own $x$: pre-LN's positions stay the most distinct (0.73 after 12 layers); post-LN's become more
    alike with depth too, and after 12 layers they are, to two decimals, the same vector. At its top, a
    stack whose positions are all one vector cannot tell them apart, whatever its gradients.

    Why the positions become alike: $\mathrm{MultiHead}(x, x, x)$ gives each position a weighted average of
    the same value vectors, and at initialisation each query spreads its weight over many positions (the
    largest weight of a row is about a quarter, printed below), so the outputs are more alike than the
    inputs; the residual connection adds each position's own $x$ back. The first layer, for one seed:
    """),
    code("""
    encoder, _ = stack("post-LN", 0)
    x_in, _ = data(0)
    a, weights = encoder.layers[0].self_attn(x_in, x_in, x_in)            # (batch, S, d_model), (batch, heads, S, S)
    print("attention weights", weights.shape, ": the largest of a row, on average",
          weights.numpy().max(-1).mean().round(3), "(uniform: 1/16 =", 1 / 16, ")")
    print("cosine of two positions:  x", token_similarity(x_in.numpy()).round(3), "  MultiHead(x, x, x)",
          token_similarity(a.numpy()).round(3), "  x + MultiHead(x, x, x)",
          token_similarity((x_in + a).numpy()).round(3))
    """),
    md(r"""
    ## 7. Training: post-LN against pre-LN, with and without warm-up

    The same small task for four runs: a character language model on the library's tiny corpus
    (`nn.DecoderOnlyLM`, 6 layers, $d_\text{model} = 32$, 4 heads, $d_{ff} = 64$, no dropout), 150 steps of 16
    windows of 32 characters, the same batches and the same initial weights in every run. Adam with the
    paper's $\beta_1, \beta_2, \epsilon$ at a peak rate of $3 \cdot 10^{-3}$, without gradient clipping, so that
    nothing else tames the first steps; either the full rate from step 1, or a linear warm-up over the first
    40 steps and then the full rate (`warmup_schedule(..., kind="constant")`; the paper's schedule also decays
    after its warm-up, [schedule](../docs/formulas/schedule.md)). The dotted line is the unigram entropy of
    the text: the loss of predicting each character from its frequency alone, ignoring the context. This
    is the notebook's longest cell.

    What the task needs, in one line: `make_lm_batch` cuts random windows of the text, the input `tgt_in`
    is a window and the target `tgt_out` the same window one character on, and the loss is the mean
    cross-entropy of the next character, in nats per character. Notebook 10, sections 1 to 3, builds this
    task step by step (the text, the objective, the unigram and bigram baselines).
    """),
    code("""
    import time

    from minitransformer import optim
    from minitransformer.data import CharTokenizer, load_corpus, make_lm_batch, split_corpus, unigram_entropy
    from minitransformer.train.tasks import warmup_schedule

    text = load_corpus("tiny")
    train_text, val_text = split_corpus(text, 0.1)
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = np.asarray(tok.encode(train_text)), np.asarray(tok.encode(val_text))
    H = unigram_entropy(text)
    T, B, steps, lr = 32, 16, 150, 3e-3
    b = make_lm_batch(train_ids, T, B, rng=[0, 1])
    print(f"{len(train_ids):,} training and {len(val_ids):,} held-out characters, {tok.vocab_size} distinct;",
          f"unigram entropy {H:.3f} nats (uniform over the vocabulary: {np.log(tok.vocab_size):.3f})")
    print("a batch: tgt_in", b.tgt_in.shape, " tgt_out", b.tgt_out.shape, "(the next character at every position)")


    def train(norm_first, warmup):
        \"\"\"150 steps from the same weights and batches: each step's loss and rate; the held-out loss.\"\"\"
        mt.manual_seed(0)
        model = nn.DecoderOnlyLM(tok.vocab_size, d_model=32, heads=4, d_ff=64, num_layers=6, max_len=T,
                                 dropout=0.0, norm_first=norm_first)
        opt = optim.Adam.paper(model.parameters(), lr=lr)
        schedule = warmup_schedule(opt, warmup=warmup, steps=steps, kind="constant")   # lr t / warmup, then lr
        losses, rates = [], []
        for step in range(1, steps + 1):
            b = make_lm_batch(train_ids, T, B, rng=[0, step])          # the same batches in every run
            loss = F.cross_entropy(model(b.tgt_in), b.tgt_out)
            opt.zero_grad()
            loss.backward()
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            schedule.step()
            losses.append(loss.item())
        with mt.no_grad():
            v = make_lm_batch(val_ids, T, 64, rng=[1, 0])              # 64 held-out windows
            held_out = F.cross_entropy(model(v.tgt_in), v.tgt_out).item()
        return np.array(losses), np.array(rates), held_out
    """),
    code("""
    start = time.perf_counter()
    results = {}
    for norm_first in (False, True):
        for warmup in (1, 40):                                            # warmup=1: the full rate from step 1
            name = ("pre-LN" if norm_first else "post-LN") + (", warm-up 40" if warmup > 1 else ", no warm-up")
            results[name] = train(norm_first, warmup)
    print(f"4 runs in {time.perf_counter() - start:.0f} s")
    print("                        loss, steps 1-10   steps 141-150   held-out")
    for name, (losses, _, held_out) in results.items():
        print(f"  {name:22} {losses[:10].mean():9.3f} {losses[-10:].mean():15.3f} {held_out:10.3f}")
    """),
    code("""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_loss, ax_lr = fig.subplots(1, 2, width_ratios=[2, 1])
    window = np.ones(10) / 10                                            # a moving average over 10 steps
    for name, (losses, rates, _) in results.items():
        colour, style = COLOURS[name.split(",")[0]], "-" if "no warm-up" in name else "--"
        ax_loss.plot(np.arange(10, steps + 1), np.convolve(losses, window, mode="valid"), color=colour,
                     linestyle=style, label=name)
        if name.startswith("post-LN"):
            ax_lr.plot(np.arange(1, steps + 1), rates, color="0.3", linestyle=style, label=name.split(", ")[1])
    ax_loss.axhline(H, color="0.5", linestyle=":", label=f"unigram entropy {H:.2f}")
    ax_loss.set_title("training loss (mean of the last 10 steps)")
    ax_loss.set_ylabel("cross-entropy, nats per character")
    ax_lr.set_title("learning rate")
    ax_lr.set_ylabel("learning rate")
    for ax in (ax_loss, ax_lr):
        ax.set_xlabel("step")
        ax.grid(True, color="0.9")
        ax.legend(fontsize=9)
    fig
    """),
    md(r"""
    What happened, in this run (one seed, 150 steps; a run of yours may differ in the last digits, as float32
    rounding differs between machines and library versions):

    * **Pre-LN trained faster than post-LN**, with and without warm-up: the mean loss of its last 10 steps
      is 2.387 without warm-up and 2.429 with it, post-LN's 2.727 and 2.620; the held-out losses come in the
      same order.
    * **Post-LN stalled near the unigram entropy** (3.07, the dotted line) from about step 40 to about step
      110, at the loss of predicting each character from its frequency alone, before its loss fell again.
      Pre-LN's loss passed that line without stopping.
    * **The warm-up helped post-LN and cost pre-LN a little**: post-LN ended lower with it (2.620 against
      2.727), pre-LN slightly higher (2.429 against 2.387), having spent its first 40 steps at smaller rates.

    How much of this is the seed? Measured separately (not a cell here: 16 more runs), with four other seeds
    (`mt.manual_seed(seed)` and `rng=[seed, step]` in `train`: other weights and other batches), the mean
    loss of the last 10 steps, without → with warm-up:

    | seed | post-LN | pre-LN |
    |---|---|---|
    | 1 | 2.654 → 2.657 | 2.386 → 2.426 |
    | 2 | 2.841 → 2.824 | 2.346 → 2.386 |
    | 3 | 2.508 → 2.451 | 2.325 → 2.364 |
    | 4 | 2.743 → 2.562 | 2.381 → 2.415 |

    Pre-LN ended below post-LN every time, and the warm-up cost pre-LN about 0.04 every time; its gain for
    post-LN ranged from nothing (seed 1, where it ended 0.003 higher) to 0.18 (seed 4): this run's 0.11 is
    the second largest of the five.

    This is one small setting and the start of a training run, not its end; exercise 2 reruns it at other
    rates. Notebook 05 trains a pre-LN model; its exercise 5 asks for the post-LN one.

    ## 8. What the source document says

    The source document never mentions either part. Its list of what a Transformer is made of (section
    3.2.2, "Define Model Architecture") names "embedding layers, self-attention layers, multi-head attention
    layers, and feedforward neural networks", and its Transformer block (section 5.3.1) "contains multi-head
    attention and feedforward neural networks"; its formulas (section 4) are attention and positional
    encoding only. The paper's figure 1 draws an "Add & Norm" after every sub-layer, and its section 3.1
    writes the output of each sub-layer as $\mathrm{LayerNorm}(x + \mathrm{Sublayer}(x))$. The library's
    encoder layer has both: the printout lists the two norms beside the attention and the FFN, and
    `forward` adds each sub-layer's input to its output.
    """),
    code("""
    print(nn.EncoderLayer(d_model=16, heads=4, d_ff=32))
    """),
    md(r"""
    Sections 4 and 6 measured what each part does in a 12-layer stack at initialisation: with layer norms but
    no residual connections, the positions become the same vector within a few layers; with residual
    connections but no layer norms (`no norm`), the stream's scale grew from 1 to 387. `docs/errata.md` lists the
    document's errors in section 4; this omission is in sections 3.2.2 and 5.3.1.

    ## Exercises

    The cell after this one defines `check_ex1`, `check_ex3`, `check_ex4` and `check_ex5`: each computes the
    right answer itself and raises an `AssertionError` that says what is wrong, or prints that your answer is
    right. Exercise 2 is a question of judgement: its answer line says what one run found.

    1. Take the residual connections out of **pre-LN**: $x \leftarrow \mathrm{Sublayer}(\mathrm{LayerNorm}(x))$,
       a function like `no_residual`; check it with `check_ex1(your_function)`. Predict its curve in the right
       panel of section 6 before you draw it, then check. (Which operation of section 6 makes the positions
       alike, and does this wiring still have it?) (Answer: attention's averaging; nothing adds each
       position's own $x$ back, so its positions become alike as fast as `no residual`'s.)
    2. Rerun section 7 at `lr = 1e-2` and at `lr = 1e-3` (one number), then with `num_layers=4` instead of 6.
       When is the gap between post-LN and pre-LN largest, and when does it almost close? Do 40 steps of
       warm-up rescue post-LN at `1e-2`? (Answer, in the run that wrote this line: largest at `1e-2`, where
       post-LN stays at the unigram entropy with or without the warm-up, so no; it almost closes with 4
       layers.)
    3. Show with NumPy that a layer norm ignores the scale of its input: `layer_norm(10 * z, 1, 0)` against
       `layer_norm(z, 1, 0)` for a random `z`. Then, with the library, show that the gradient it sends back
       is divided by that scale: compare `x.grad` for the inputs `z` and `10 * z` and the same $\bar y$, and
       check them with `check_ex3(z, y_bar, grad_z, grad_10z)`. Which factors of section 3's product contain
       such a division, and which do not? (Answer: each $J_l^\top$, through the norm in front of its
       sub-layer; the identity $I$ does not.)
    4. Set the FFN's output weights to zero (`layer.ffn.W_2.weight` and `.bias` of the layer of section 3)
       and compute $\bar x$ for $y = x + \mathrm{FFN}(x)$ again, with section 3's `x` and `c`; check it with
       `check_ex4(x_bar)`. What does $\bar x$ equal, and why? (A sub-layer that starts at zero makes its
       residual block the identity: several initialisation schemes for deep networks start this way.)
    5. Remove pre-LN's final LayerNorm (`encoder.norm = None` in `run`) and compare the standard deviation
       of the read-out's logits with and without it, for 12 layers; check both with
       `check_ex5(std_with, std_without, seed)` for the seed of `stack` and `data`. Why does post-LN not
       need one? (Answer: its stack already ends in a layer norm, the last sub-layer's.)
    """),
    code("""
    import copy

    FFN_WEIGHTS = copy.deepcopy(layer.ffn.state_dict())                  # section 3's FFN, before exercise 4


    def check_ex1(wiring):
        \"\"\"Exercise 1: wiring(layer, x) must be pre-LN without residuals, Sublayer(LayerNorm(x)), twice.\"\"\"
        encoder, _ = stack("post-LN", 0)
        x_in, _ = data(0)
        one = encoder.layers[0]
        n1 = one.norm1(x_in)
        h = one.self_attn(n1, n1, n1)[0]
        want = one.ffn(one.norm2(h)).numpy()                             # (batch, S, d_model)
        got = wiring(one, x_in).numpy()
        assert got.shape == want.shape, f"check_ex1: the output is {want.shape}; yours is {got.shape}"
        if np.allclose(got, no_residual(one, x_in).numpy()):
            raise AssertionError("check_ex1: that is LayerNorm(Sublayer(x)), post-LN without residuals; pre-LN "
                                 "normalises the sub-layer's input")
        one.norm_first = True
        assert not np.allclose(got, one(x_in).numpy()), "check_ex1: that is pre-LN with its residual connections"
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), "check_ex1: not Sublayer(LayerNorm(x)) for both sub-layers"
        print("check_ex1: right")


    def _ln_grad(z, y_bar):
        \"\"\"x.grad of the library's layer norm (no gamma, beta) at the input z, for the loss sum(y_bar * y).\"\"\"
        Z = mt.tensor(np.asarray(z, dtype=np.float64), requires_grad=True)
        (mt.tensor(np.asarray(y_bar, dtype=np.float64)) * F.layer_norm(Z)).sum().backward()
        return Z.grad.numpy()


    def check_ex3(z, y_bar, grad_z, grad_10z):
        \"\"\"Exercise 3: the layer norm's input gradients for the inputs z and 10 z, the same y-bar.\"\"\"
        z, y_bar = (a.numpy() if isinstance(a, mt.Tensor) else np.asarray(a) for a in (z, y_bar))
        grad_z, grad_10z = (a.numpy() if isinstance(a, mt.Tensor) else np.asarray(a) for a in (grad_z, grad_10z))
        want, want_10 = _ln_grad(z, y_bar), _ln_grad(10 * z, y_bar)

        def close(a, b):
            return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max())

        assert close(grad_z, want), "check_ex3: grad_z is not the layer norm's gradient for the input z"
        assert not close(grad_10z, want), ("check_ex3: grad_10z equals grad_z: the output ignores the scale, the "
                                           "gradient does not")
        assert not np.allclose(grad_10z, 100 * want_10, rtol=1e-2), \\
            "check_ex3: grad_10z is multiplied by the scale, not divided"
        assert close(grad_10z, want_10), "check_ex3: grad_10z is not the layer norm's gradient for the input 10 z"
        print(f"check_ex3: right; |grad_z| / |grad_10z| = {np.linalg.norm(grad_z) / np.linalg.norm(grad_10z):.4f}")


    def check_ex4(x_bar):
        \"\"\"Exercise 4: x-bar for y = x + FFN(x) with the FFN's W_2 (weight and bias) zero, section 3's x and c.\"\"\"
        x_bar = x_bar.numpy() if isinstance(x_bar, mt.Tensor) else np.asarray(x_bar)

        def grad(weights, residual=True):
            ffn = copy.deepcopy(layer.ffn)
            ffn.load_state_dict(weights)
            X_in = mt.tensor(x, requires_grad=True)
            (mt.tensor(c) * ((X_in if residual else 0) + ffn(X_in))).sum().backward()
            return X_in.grad.numpy()

        zeroed = {k: v * 0 if k.startswith("W_2.") else v for k, v in FFN_WEIGHTS.items()}
        assert x_bar.shape == x.shape, f"check_ex4: x-bar has x's shape, {x.shape}; yours is {x_bar.shape}"
        assert not np.allclose(x_bar, grad(FFN_WEIGHTS)), "check_ex4: that is x-bar with section 3's W_2; zero it first"
        assert not np.allclose(x_bar, grad(zeroed, residual=False)), \\
            "check_ex4: that is J_f^T y-bar alone, the path through the FFN; y = x + FFN(x) adds the residual's"
        assert np.allclose(x_bar, grad(zeroed), rtol=1e-10, atol=1e-12), "check_ex4: not x-bar for W_2 = 0"
        print("check_ex4: right")


    def check_ex5(std_with, std_without, seed=0, num_layers=12):
        \"\"\"Exercise 5: the std of pre-LN's read-out logits with and without its final LayerNorm, stack(seed).\"\"\"
        encoder, readout = stack("pre-LN", seed, num_layers)
        h, _ = data(seed)
        for one in encoder.layers:
            h = one(h)
        want = readout(encoder.norm(h)).numpy().std(), readout(h).numpy().std()
        assert not np.allclose([std_with, std_without], want[::-1], rtol=1e-3), "check_ex5: with and without swapped"
        for name, got, w in (("std_with", std_with, want[0]), ("std_without", std_without, want[1])):
            assert not np.isclose(got, h.numpy().std(), rtol=1e-3), \\
                f"check_ex5: {name} is the stream's std, not the logits'"
            assert np.isclose(got, w, rtol=1e-3), \\
                f"check_ex5: {name} is too {'large' if got > w else 'small'} (seed {seed})"
        print(f"check_ex5: right, seed {seed}")
    """),
]
