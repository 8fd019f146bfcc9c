"""Notebook 03_multi_head_attention: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, exercise, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "0.9": "exercise 4's threshold for its check, a setting of the exercise",
}

CELLS = [
    md(r"""
    # 03 · Multi-head attention

    **What this notebook teaches.** Multi-head attention runs $h$ scaled dot-product attentions side by
    side, each on its own learned projection of the input, and mixes their results. The source document
    (section 4.1.2) gives the first equation; the paper (section 3.2.2) gives the second, which says what a
    head *is*:

    $$
    \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^O,
    \qquad
    \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q,\; K W_i^K,\; V W_i^V)
    $$

    with $W_i^Q, W_i^K \in \mathbb{R}^{d_\text{model} \times d_k}$, $W_i^V \in \mathbb{R}^{d_\text{model}
    \times d_v}$, $W^O \in \mathbb{R}^{h d_v \times d_\text{model}}$ and $d_k = d_v = d_\text{model}/h$
    (the paper: $h = 8$, $d_k = 512/8 = 64$). Shapes for one sequence of $L$ tokens:

    | step | shape |
    |---|---|
    | input $X$ (self-attention: $Q = K = V = X$) | $(L, d_\text{model})$ |
    | $X W_i^Q$, $X W_i^K$, $X W_i^V$ | $(L, d_k)$ each |
    | $\mathrm{head}_i$ | $(L, d_v)$ |
    | $\mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)$ | $(L, h\,d_v) = (L, d_\text{model})$ |
    | $\ldots W^O$ | $(L, d_\text{model})$ |

    Steps: **1** a module and its weights · **2** the formula literally: a loop over the heads · **3** Concat
    and $W^O$ · **4** the same by the library, looped and batched, agreeing · **5** the batched form, every
    head in one call, and which of its steps copy (strides and views) · **6** one map per head · **7** the
    document's example 4.3.2, and why heads need their own projections · **8** what $h$ costs.

    **Exercises in the text** (assignment A3, `minitransformer assignments list`): splitting the features
    into heads and merging them back, in NumPy (section 3), then every head in one call with the library's
    tensors (section 5), each followed by a cell that checks your answer.
    In assignment A3's student copy (`minitransformer assignments build 3 DIR`) the library's own A3 bodies
    are taken out too: from section 4 on, the cells that call them raise `NotImplementedError` until you
    have written them in `minitransformer/nn/attention.py` (`MultiHeadAttention._literal` and `_batched`,
    sections 4 and 6) and `minitransformer/functional/positional.py` (notebook 04's sinusoidal table, which
    section 7 here uses).
    """),
    SETUP,
    md(r"""
    ## 1. A module and its weights

    `nn.MultiHeadAttention(d_model, heads)` holds four `Linear` layers, `W_Q`, `W_K`, `W_V`, `W_O`, each
    $(d_\text{model}, d_\text{model})$. A `Linear(d_in, d_out)` computes $xW + b$ with `weight` $W$ of shape
    $(d_\text{in}, d_\text{out})$, the paper's $XW^Q$ (PyTorch's `nn.Linear` stores the transpose, $(d_\text{out},
    d_\text{in})$, and computes $xW^\top + b$: `docs/from-pytorch.md`). The $h$ matrices $W_i^Q$ are not stored
    separately: they sit side by side as the column blocks of `W_Q.weight`, so $W_i^Q$ is
    `W_Q.weight[:, (i-1)*d_k : i*d_k]`. (These layers also have biases, as PyTorch's; the paper's equations have
    none. `bias=False` removes them.)

    **Counting.** Tokens, queries and keys are named by their index, from 0, as in notebook 02 and as NumPy
    counts ("query 0" is the first token); heads count from 1, as in the paper, and every slice here is written
    for that $i$: $\mathrm{head}_i$ is `weights[:, i - 1]` ($\mathrm{head}_1$ is `weights[:, 0]`). Section 7's
    maps label their rows with the document's positions, which count from 1 ("pos 1" is query 0;
    `docs/errata.md`, which follows the document, calls it query 1).
    """),
    code("""
    tokens = ["the", "cat", "saw", "the", "dog"]
    vocab = {"the": 0, "cat": 1, "saw": 2, "dog": 3}
    L, d_model, h = len(tokens), 8, 2
    d_k = d_model // h
    mha = nn.MultiHeadAttention(d_model, h, literal=True).to("float64")   # float64: comparisons to rounding error
    print(mha)

    E = np.random.default_rng(0).standard_normal((len(vocab), d_model))   # an embedding table (vocab, d_model)
    E[:, :d_k] = 3.0 * np.eye(len(vocab), d_k)                             # features 0..3 say which word it is
    X = mt.tensor(E[[vocab[t] for t in tokens]][None])                     # (batch=1, L, d_model)
    print("X", X.shape, X.dtype_name, "  d_k = d_model / h =", d_k)
    """),
    md(r"""
    ## 2. The formula, literally: one head at a time

    For head $i$: slice its blocks of the projections, project, attend.
    """),
    code("""
    heads, maps = [], []
    for i in range(1, h + 1):                                       # head_1 .. head_h
        block = slice((i - 1) * d_k, i * d_k)                       # head i's columns
        W_Qi, W_Ki, W_Vi = (lin.weight[:, block] for lin in (mha.W_Q, mha.W_K, mha.W_V))
        b_Qi, b_Ki, b_Vi = (lin.bias[block] for lin in (mha.W_Q, mha.W_K, mha.W_V))
        Q_i = X @ W_Qi + b_Qi                                        # (1, L, d_k)
        K_i = X @ W_Ki + b_Ki                                        # (1, L, d_k)
        V_i = X @ W_Vi + b_Vi                                        # (1, L, d_k)
        head_i, weights_i = F.scaled_dot_product_attention(Q_i, K_i, V_i)
        print(f"head {i}: W_{i}^Q {W_Qi.shape}  Q_{i} {Q_i.shape}  weights {weights_i.shape}  head_{i} {head_i.shape}")
        heads.append(head_i)
        maps.append(weights_i)
    """),
    md(r"""
    ## 3. Concat and $W^O$

    The heads' outputs are put side by side along the features, and $W^O$ mixes them: every output feature
    can draw on every head. (Row block $i$ of $W^O$ is what head $i$'s output is multiplied by.)
    """),
    code("""
    concat = mt.concat(heads, axis=-1)                              # (1, L, h * d_k)
    by_hand = concat @ mha.W_O.weight + mha.W_O.bias               # (1, L, d_model)
    print("Concat(head_1, head_2)", concat.shape, "  W^O", mha.W_O.weight.shape, "  output", by_hand.shape)
    """),
    md(r"""
    ### Exercise A3 · split into heads, merge back, in NumPy

    The loop above slices head $i$'s columns out of every weight matrix. The library's fast form projects
    once with the whole matrix, $XW^Q$ of shape $(B, L, d_\text{model})$ with $d_\text{model} = h\,d_k$, and
    then regroups the features so that every head becomes one slice of a batch axis:

    * `split_heads(x, h)`: $(B, L, h\,d_k) \to (B, h, L, d_k)$, with `[:, i - 1]` = features $(i-1) d_k \ldots
      i d_k - 1$ of every token, head $i$'s block. Reshape to $(B, L, h, d_k)$, then move the head axis
      forward (`transpose(0, 2, 1, 3)`).
    * `merge_heads(x)`: the inverse, $(B, h, L, d_k) \to (B, L, h\,d_k)$; applied to the heads' outputs it
      is $\mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)$.
    """),
    exercise("a3-split-merge-heads", """
    def split_heads(x, h):
        \"\"\"(B, L, h * d_k) -> (B, h, L, d_k): x[:, :, (i - 1) * d_k:i * d_k] becomes [:, i - 1].\"\"\"
        ### BEGIN SOLUTION A3: reshape to (B, L, h, d_k), then move the head axis forward: (B, h, L, d_k)
        B, L, d = x.shape
        return x.reshape(B, L, h, d // h).transpose(0, 2, 1, 3)
        ### END SOLUTION


    def merge_heads(x):
        \"\"\"(B, h, L, d_k) -> (B, L, h * d_k): the inverse of split_heads, the Concat of the heads.\"\"\"
        ### BEGIN SOLUTION A3: the inverse of split_heads: back to (B, L, h, d_k), then reshape to (B, L, h * d_k)
        B, h, L, d_k = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, L, h * d_k)
        ### END SOLUTION


    Q_all, K_all, V_all = (lin(X).numpy() for lin in (mha.W_Q, mha.W_K, mha.W_V))   # (1, L, d_model) each
    Q_h, K_h, V_h = (split_heads(a, h) for a in (Q_all, K_all, V_all))               # (1, h, L, d_k) each
    print("X W^Q", Q_all.shape, "-> split_heads", Q_h.shape, "-> merge_heads", merge_heads(Q_h).shape)
    """),
    md(r"""
    **Check.** Head $i$ must get feature block $i$ of every sequence of a batch (ours, and a random batch of
    two), merging must undo splitting, and attention on all the heads at once (one library call on
    $(B, h, L, d_k)$ arrays), merged, must equal the loop's Concat:
    """),
    code("""
    for i in range(1, h + 1):
        np.testing.assert_array_equal(Q_h[:, i - 1], Q_all[:, :, (i - 1) * d_k:i * d_k])   # head i = block i
    np.testing.assert_array_equal(merge_heads(Q_h), Q_all)                               # merge undoes split
    x_b = np.random.default_rng(1).standard_normal((2, 5, 8))                          # a batch of 2, L = 5, d = 8
    split_b = split_heads(x_b, h)
    assert split_b.shape == (2, h, 5, d_k), f"split_heads gave {split_b.shape}, not (B, h, L, d_k) = (2, {h}, 5, {d_k})"
    for b in range(2):
        for i in range(1, h + 1):
            np.testing.assert_array_equal(split_b[b, i - 1], x_b[b, :, (i - 1) * d_k:i * d_k])   # sequence b, head i
    np.testing.assert_array_equal(merge_heads(split_b), x_b)
    heads_all, _ = F.scaled_dot_product_attention(*(mt.tensor(a) for a in (Q_h, K_h, V_h)))   # every head at once
    np.testing.assert_allclose(merge_heads(heads_all.numpy()), concat.numpy(), rtol=1e-10, atol=1e-12)
    print("split_heads and merge_heads: head i = block i (batches of 1 and 2), merge undoes split, "
          "merged heads = the loop's Concat")
    """),
    md(r"""
    ## 4. The library's two forms agree with the hand computation

    `MultiHeadAttention` has a switch: `literal=True` loops over the heads as above (the formula as written);
    `literal=False`, the default, computes all heads in one batched product (section 5), faster. Same weights,
    same numbers, and the same gradients:
    """),
    code("""
    out_literal, w_literal = mha(X)                 # literal=True: the loop
    mha.literal = False
    out_batched, w_batched = mha(X)                 # the batched form
    print("output", out_batched.shape, "  weights", w_batched.shape, "(batch, heads, L, S)")
    print(f"max |literal - by hand|  {np.abs(out_literal.numpy() - by_hand.numpy()).max():.1e}")
    print(f"max |batched - literal|  {np.abs(out_batched.numpy() - out_literal.numpy()).max():.1e}"
          f"   (weights {np.abs(w_batched.numpy() - w_literal.numpy()).max():.1e})")

    grads = {}
    for literal in (True, False):
        mha.literal = literal
        mha.zero_grad()
        (mha(X)[0] ** 2).sum().backward()
        grads[literal] = {name: p.grad.numpy() for name, p in mha.named_parameters()}
    worst = max(np.abs(grads[True][n] - grads[False][n]).max() for n in grads[True])
    print(f"max |gradient difference| over all {len(grads[True])} parameters: {worst:.1e}")
    """),
    md(r"""
    ## 5. The batched form, with the library's tensors

    Project once with the whole matrix, then *reshape* the $d_\text{model}$ features into $h$ groups of
    $d_k$ and move the head axis forward: all heads become one batched matrix product. Column block $i$ of
    `W_Q.weight` produces features $(i-1) d_k \ldots i d_k - 1$, which is exactly group `i - 1` after the reshape.
    This is the core of `MultiHeadAttention._batched` (without its masks, dropout, cache and $W^O$).

    ### Exercise A3 · every head in one call

    `batched(X)`: section 3's split and merge, now on tensors (`Tensor.reshape`, `Tensor.permute`), with one
    call of `F.scaled_dot_product_attention` between them on $(B, h, L, d_k)$ queries, keys and values. Project
    with `mha.W_Q`, `mha.W_K`, `mha.W_V`, the whole `Linear` layers. Return the heads before the merge too:
    the aside below looks at how they lie in memory.
    """),
    exercise("a3-batched-heads", """
    def batched(X):
        \"\"\"X (B, L, d_model) -> heads (B, h, L, d_k), weights (B, h, L, L), their Concat (B, L, h * d_k).\"\"\"
        ### BEGIN SOLUTION A3: split each of W_Q(X), W_K(X), W_V(X) as in section 3; attend once; merge the heads back
        B, L, _ = X.shape
        Q, K, V = (lin(X).reshape(B, L, h, d_k).permute(0, 2, 1, 3) for lin in (mha.W_Q, mha.W_K, mha.W_V))
        heads, weights = F.scaled_dot_product_attention(Q, K, V)   # one call, every head
        return heads, weights, heads.permute(0, 2, 1, 3).reshape(B, L, h * d_k)
        ### END SOLUTION


    heads_b, weights_b, concat_b = batched(X)
    print("X", X.shape, "-> heads", heads_b.shape, "  weights", weights_b.shape, "-> Concat", concat_b.shape)
    """),
    md(r"""
    **Check.** The Concat must be the loop's (section 3), the weights and $W^O$ of the Concat the library's
    (section 4, `literal=False`). A split by a reshape alone, straight to $(B, h, L, d_k)$, is the usual
    mistake; the check names it, and a merge by a reshape alone too:
    """),
    code("""
    heads_b, weights_b, concat_b = batched(X)                 # (B, h, L, d_k), (B, h, L, L), (B, L, h * d_k)
    assert (heads_b.shape, weights_b.shape, concat_b.shape) == ((1, h, L, d_k), (1, h, L, L), (1, L, h * d_k)), (
        f"batched gave {heads_b.shape}, {weights_b.shape}, {concat_b.shape}, not (B, h, L, d_k) = (1, {h}, {L}, {d_k}),"
        f" (B, h, L, L) = (1, {h}, {L}, {L}) and (B, L, h * d_k) = (1, {L}, {h * d_k})")
    alone = (lin(X).reshape(1, h, L, d_k) for lin in (mha.W_Q, mha.W_K, mha.W_V))   # split by a reshape alone
    _, reshaped_alone = F.scaled_dot_product_attention(*alone)
    assert not np.allclose(weights_b.numpy(), reshaped_alone.numpy()), (
        "batched splits the heads without the transpose: (B, L, d_model) reshaped straight to (B, h, L, d_k), which "
        "mixes positions and heads; reshape to (B, L, h, d_k), then permute(0, 2, 1, 3)")
    assert not np.allclose(concat_b.numpy(), heads_b.reshape(1, L, h * d_k).numpy()), (
        "batched merges the heads without the transpose: (B, h, L, d_k) reshaped straight to (B, L, h * d_k); "
        "permute(0, 2, 1, 3) back to (B, L, h, d_k) first")
    np.testing.assert_allclose(concat_b.numpy(), concat.numpy(), rtol=1e-10, atol=1e-12,
                               err_msg="batched's Concat is not the loop's (section 3)")
    mha.literal = False
    out_lib, w_lib = mha(X)                                   # the library's batched form (section 4)
    np.testing.assert_allclose(weights_b.numpy(), w_lib.numpy(), rtol=1e-10, atol=1e-12,
                               err_msg="batched's weights are not the library's (section 4)")
    np.testing.assert_allclose(mha.W_O(concat_b).numpy(), out_lib.numpy(), rtol=1e-10, atol=1e-12,
                               err_msg="W_O of batched's Concat is not the library's output (section 4)")
    print(f"batched: the loop's Concat, max |difference| {np.abs(concat_b.numpy() - concat.numpy()).max():.1e};"
          " the library's weights and, after W_O, its output")
    """),
    md(r"""
    **Aside: strides, and which of these steps copy.** An array is one flat block of memory plus, for each
    axis, a *stride*: how many bytes to step to reach the next index along that axis. A tensor's own array
    is `t.data`, whose strides are printed below (`t.numpy()` is a copy, on every backend, so that writing
    into it cannot change the tensor). A `reshape` of elements that are already in row order only writes new
    shape and strides over the same memory: a *view*, no element moves. `permute` never moves an element
    either: it reorders the strides, another view. But the `reshape` after the permute, the Concat, must
    merge the axes $h$ and
    $d_k$ into one axis with one stride, and in the permuted order a token's features 0..3 (head 1) lie at
    byte offsets 0, 8, 16, 24 and its features 4..7 (head 2) at 160, 168, 176, 184: head 2 starts one head's
    stride, $L\,d_k \cdot 8 = 160$ bytes, after head 1, so from feature 3 to feature 4 the step is 136 bytes,
    not 8. No single stride walks that, so the reshape first copies the elements into row order: a new
    array. (PyTorch says so out loud:
    its `view` refuses such a tensor, which is why PyTorch code, The Annotated Transformer's among it, writes
    `.transpose(1, 2).contiguous().view(...)`; its `reshape`, like NumPy's, copies only when it must.)
    """),
    code("""
    B = X.shape[0]
    heads_b = batched(X)[0]                                   # your heads (B, h, L, d_k), from section 5
    projected = mha.W_Q(X)                                    # (B, L, d_model)
    split = projected.reshape(B, L, h, d_k)                   # (B, L, h, d_k)
    moved = heads_b.permute(0, 2, 1, 3)                       # (B, h, L, d_k) -> (B, L, h, d_k)
    merged = moved.reshape(B, L, h * d_k)                     # (B, L, h * d_k): the Concat
    print(f"{heads_b.dtype_name}: {heads_b.data.itemsize} bytes per element;  heads_b.numpy() shares memory with "
          f"heads_b.data: {np.shares_memory(heads_b.numpy(), heads_b.data)} (a copy)")
    for name, t, base in [("W_Q(X)", projected, None), ("  .reshape(B, L, h, d_k)", split, projected),
                          ("heads_b", heads_b, None), ("  .permute(0, 2, 1, 3)", moved, heads_b),
                          ("  .reshape(B, L, h * d_k)", merged, moved)]:
        shares = "" if base is None else f"  shares memory with the one above: {np.shares_memory(t.data, base.data)}"
        print(f"{name:26} {str(t.shape):13} strides {str(t.data.strides):18} row order: "
              f"{t.data.flags.c_contiguous!s:5}{shares}")
    """),
    md(r"""
    ## 6. One map per head

    `weights[0, i - 1]` is head $i$'s attention map for the first sequence (heads count from 1, as in the
    paper). With random weights the heads look at nothing in particular; training is what shapes them
    (notebook 05). To see that a head's projections decide *what it looks at*, set head 1's query and key
    blocks by hand to read features 0..3 of the embedding as they are ($W_1^Q = W_1^K$ = the first $d_k$
    columns of the identity, no bias). Those features say which word a token is, so head 1 becomes a
    "same word" detector: each token attends to every copy of its own word. Head 2 stays random.
    """),
    code("""
    state = mha.state_dict()                                  # NumPy copies of every parameter
    for name in ("W_Q", "W_K"):
        state[f"{name}.weight"][:, :d_k] = np.eye(d_model)[:, :d_k]   # head 1's block: features 0..3 as they are
        state[f"{name}.bias"][:d_k] = 0.0
    mha.load_state_dict(state)
    _, weights = mha(X)
    print("weights", weights.shape, "-> head maps", weights[0].shape)
    viz.attention_heads(weights[0], tokens, tokens, title="head 1 set by hand (same word), head 2 random")
    """),
    md(r"""
    Head 1 cannot tell the two "the" apart: they have the same embedding, and nothing in $X$ says where a
    token stands. That is what positional encodings add (notebook 04).

    ## 7. The document's example (section 4.3.2), and why each head needs its own projections

    The document computes two heads as

    $$ \text{Attention Scores}^1 = \mathrm{softmax}\!\left(\tfrac{QK^\top}{\sqrt 3}\right)V, \qquad
       \text{Attention Scores}^2 = \mathrm{softmax}\!\left(\tfrac{QK^\top}{\sqrt 3}\right)V $$

    the **same** expression, written with the same $Q, K, V$, twice: without $W_i^Q, W_i^K, W_i^V$, two heads
    given the same input are identical, so the concatenation holds two copies of one head (erratum 7 in
    `docs/errata.md`). (The document also gives each head its own positional encoding, with a "+1" in the
    angle, so its two heads do not get the same input after all. That makes them differ, but gives head 2
    nothing head 1 lacks: notebook 04, section 6, and erratum 4.) `worked_examples.multi_head_example()` does
    it the paper's way, with one positional encoding shared by both heads, $d_\text{model} = 6$, two heads
    of $d_k = 3$ and seeded random projections, beside the document's formulas on the same $X$:
    """),
    code("""
    from minitransformer import worked_examples

    ex = worked_examples.multi_head_example(seed=0)
    print("X = embeddings + PE", ex.X.shape, "  W_Q", ex.W_Q.shape, "  weights", ex.weights.shape,
          "  heads", ex.heads.shape, "  output", ex.output.shape)
    print(f"with projections W_i (the paper):   max |head_1 - head_2| = {ex.heads_difference:.3f}")
    print(f"without (the document's formulas):  max |head_1 - head_2| = {ex.unprojected_heads_difference:.1e}"
          "  (on one shared X; with the document's per-head '+1' they differ, notebook 04 section 6)")
    print("scores of head 1, query 0 (any real numbers):", ex.scores.numpy()[0, 0].round(3))
    print("weights of head 1, query 0 (sum to 1):      ", ex.weights.numpy()[0, 0].round(3))
    print("head_1 output of query 0 (d_v numbers):     ", ex.heads.numpy()[0, 0].round(3))
    positions = ["pos 1", "pos 2", "pos 3"]                   # the document's positions, from 1: query 0 is pos 1
    viz.attention_heads(ex.weights, positions, positions, title="document 4.3.2, done as the paper does")
    """),
    md(r"""
    The last three lines are three different things that the document's wording mixes up as "attention
    scores" (erratum 6 in `docs/errata.md`): the scores $QK^\top/\sqrt{d_k}$, their softmax (the weights,
    what a map shows), and the weighted values (the head's output).

    ## 8. What $h$ costs

    Splitting $d_\text{model}$ into $h$ heads changes how the features are grouped, not how many weights
    there are: $4\,d_\text{model}^2$ (plus $4\,d_\text{model}$ biases) for any $h$ dividing $d_\text{model}$.
    The matrix products cost the same too; what grows with $h$ is the softmax and the stored weights: $h$
    maps of $L \times S$ instead of one.
    """),
    code("""
    for heads in (1, 2, 4, 8):
        m = nn.MultiHeadAttention(512, heads)
        print(f"h = {heads}:  d_k = {512 // heads:3}   parameters {sum(p.size for p in m.parameters()):,}")
    print("4 d_model^2 + 4 d_model =", f"{4 * 512**2 + 4 * 512:,}")
    try:
        nn.MultiHeadAttention(10, 3)
    except ValueError as err:
        print("ValueError:", err)
    """),
    md(r"""
    ## Exercises

    1. Build the module of section 1 with `bias=False`, drop the bias terms in sections 2 and 3, and check
       that the output equals $\mathrm{Concat}(\mathrm{head}_1, \mathrm{head}_2) W^O$ with no bias terms at all.
    2. Show that $\mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h) W^O = \sum_i \mathrm{head}_i\, W^O_i$,
       where $W^O_i$ is row block $i$ of $W^O$. Compute it both ways (plus $W^O$'s bias, once).
    3. Time `literal=True` against `literal=False` for $d_\text{model} = 256$, $h = 8$, $L = 128$, batch 16
       (use `time.perf_counter`). Where does the loop lose time?
    4. Head 2 and the token *before*: make each token $i \ge 1$ attend to token $i - 1$, setting head 2's
       blocks by hand (columns $d_k$ to $2d_k - 1$ of `W_Q.weight` and `W_K.weight`, biases 0, as in section 6).
       Check with `w = mha(X_in)[1][0, 1].numpy()` and `(w[np.arange(1, L), np.arange(L - 1)] > 0.9).all()`.
       (a) With the $X$ here, it cannot be done. Why not? (Hint: tokens 0 and 3 are both "the". Compare their
       keys, whatever $W_2^K$ is, and the most weight that tokens 1 and 4 can then give their predecessor.)
       (b) With positions it can. By notebook 04, section 5, $PE_{i-1} = PE_i R_{-1}$, so $W_2^Q = c\,R_{-1}$
       and $W_2^K = I$, each cut to its first $d_k$ columns (the two fastest sine-cosine pairs, features
       0..3), score query $i$ against key $j$ by $c\,PE_{i-1} \cdot PE_j$ plus terms with the embeddings,
       and $PE_{i-1} \cdot PE_j$ is largest at $j = i - 1$. Build $R_{-1}$ for $d = 8$ and try it on
       `X_in = X + PE`, with `PE = F.sinusoidal_positional_encoding(L, d_model, dtype="float64")`, then on
       `X + 10 * PE`. Why does the first fail? (Hint: which features say which word a token is, and how large
       are they?) In a trained model, the embeddings and $W^Q$, $W^K$ learn to keep the two apart. Harder:
       it can be done on `X + PE` itself too, for this one sentence: its 5 rows are linearly independent,
       so any $5 \times 5$ table of scores of rank at most $d_k$ is $X A X^\top$ for some
       $A = W_2^Q W_2^{K\top}$ (try the pseudo-inverse, then split $A$ with an SVD).
    5. Cross-attention: call `mha(query, key, value)` with a query of 3 positions and keys/values of 6.
       What shape do the weights have, and which axis sums to 1?
    """),
]
