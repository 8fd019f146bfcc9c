"""Notebook 02_scaled_dot_product_attention: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, exercise, md

CELLS = [
    md(r"""
    # 02 · Scaled dot-product attention

    **What this notebook teaches.** The one formula at the heart of the Transformer (source document,
    section 4.1.1; "Attention Is All You Need", equation 1):

    $$
    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V
    $$

    Each of the $L$ queries (rows of $Q$, shape $(L, d_k)$) is compared with each of the $S$ keys (rows of
    $K$, shape $(S, d_k)$) by a dot product; the scores are divided by $\sqrt{d_k}$; a softmax over the keys
    turns each row of scores into **weights** that are non-negative and sum to 1; and each query's output is
    the weighted average of the values (rows of $V$, shape $(S, d_v)$). Three things, three names:

    | name | formula | shape |
    |---|---|---|
    | scores | $QK^\top / \sqrt{d_k}$ | $(L, S)$, any real numbers |
    | weights (the *attention map*) | $\mathrm{softmax}$ of the scores, row by row | $(L, S)$, rows sum to 1 |
    | output | weights $\cdot\, V$ | $(L, d_v)$ |

    Steps: **1** the formula with NumPy, one line per step · **2** the same by the library ·
    **3** the attention map · **4** why $\sqrt{d_k}$ · **5** the document's worked example 4.3.1 by hand, and
    what its stated output $[0.2, 0.3, 0.5]$ most likely is · **6** masks: causal, padding, and a row with
    nothing to attend to.

    **Exercises in the text** (assignment A2, `minitransformer assignments list`): the softmax and the
    attention of section 1, in NumPy, each followed by a cell that checks your answer. In assignment A2's
    student copy (`minitransformer assignments build 2 DIR`) the library's own A2 bodies are taken out too:
    from section 2 on, the cells that call them raise `NotImplementedError` until you have written them,
    `scaled_dot_product_attention` in `minitransformer/functional/attention.py` and the softmax it uses,
    `_softmax` and `_softmax_backward` in `autograd/fused.py` (the backward for section 6's gradient). Each
    error names the body to write.
    """),
    SETUP,
    md(r"""
    ## 1. The formula with NumPy, step by step

    Four tokens; each has a query, a key and a value vector of $d_k = d_v = 4$ numbers (in a model they are
    projections of the token embeddings; here they are random).

    **Counting.** In this notebook queries, keys, tokens and rows are named by their index in the arrays,
    from 0, as NumPy counts: "query 0" is the first row of $Q$. The only exception is section 5, where the
    document's tokens are named by their values 1, 2, 3 (its map's labels), and the library's names of the
    readings count rows from 1, as the document counts positions ("weights row 1" is the first row).
    """),
    code("""
    tokens = ["the", "cat", "sat", "down"]
    rng = np.random.default_rng(0)
    L, S, d_k, d_v = 4, 4, 4, 4
    Q = rng.standard_normal((L, d_k))
    K = rng.standard_normal((S, d_k))
    V = rng.standard_normal((S, d_v))
    print("Q", Q.shape, " K", K.shape, " V", V.shape)
    """),
    code("""
    scores = Q @ K.T / np.sqrt(d_k)                      # (L, S): query i against key j
    print("scores = Q K^T / sqrt(d_k)", scores.shape)
    print(scores)
    """),
    md(r"""
    ### Exercise A2 · softmax, in NumPy

    A softmax turns a row of scores into weights that are non-negative and sum to 1:

    $$ \mathrm{softmax}(x)_j = \frac{e^{x_j}}{\sum_k e^{x_k}} = \frac{e^{x_j - m}}{\sum_k e^{x_k - m}},
       \qquad m = \max_k x_k . $$

    Both forms are the same number, but only the second is safe: $e^{x - m} \le 1$ cannot overflow, while
    $e^{1000}$ is `inf` in float64. Write `softmax(x, axis)` along any axis (`keepdims=True` keeps the
    reduced axis, so that the division broadcasts).
    """),
    exercise("a2-softmax", """
    def softmax(x, axis=-1):
        \"\"\"exp(x - max) / sum(exp(x - max)) along `axis`: x's shape, non-negative, sums to 1 along `axis`.\"\"\"
        ### BEGIN SOLUTION A2: e = exp(x - max(x)) along axis, then e / sum(e); keepdims=True keeps the axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))   # subtracting the max changes nothing but overflow
        return e / e.sum(axis=axis, keepdims=True)
        ### END SOLUTION


    weights = softmax(scores)                             # (L, S): softmax over the keys
    print("weights = softmax(scores)", weights.shape, "  row sums:", weights.sum(axis=-1))
    print(weights)
    """),
    md(r"""
    **Check** on values worked out beforehand (a vector, and matrices along either axis, whose rows have
    different maxima), on scores that would overflow, and on the rows of `weights`:
    """),
    code("""
    np.testing.assert_allclose(softmax(np.array([1.0, 2.0, 3.0])), [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0, 999.0])), [0.4223188, 0.4223188, 0.1553624],
                               rtol=1e-6)                 # no overflow
    np.testing.assert_allclose(softmax(np.array([[1.0, 1.0], [0.0, 2.0]]), axis=0), [[0.7310586, 0.2689414],
                               [0.2689414, 0.7310586]], rtol=1e-6)   # along axis 0
    np.testing.assert_allclose(softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 10.0]])),   # along the last axis, by row
                               [[0.09003057, 0.24472847, 0.66524096], [4.539581e-05, 4.539581e-05, 0.9999092]],
                               rtol=1e-6)
    np.testing.assert_allclose(softmax(np.array([[1000.0, 999.0], [0.0, 1.0]])),        # each row's own max
                               [[0.7310586, 0.2689414], [0.2689414, 0.7310586]], rtol=1e-6)
    np.testing.assert_allclose(weights.sum(axis=-1), np.ones(L))
    print("softmax: right values, no overflow, any axis, rows of weights sum to 1")
    """),
    md(r"""
    ### Exercise A2 · attention, in NumPy

    With your `softmax`, the whole formula, returning the output and the weights:

    $$ \mathrm{weights} = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) \text{ over the keys}, \qquad
       \mathrm{output} = \mathrm{weights}\; V . $$

    Let it work on leading axes too, `(..., L, d_k)`: write $K^\top$ as `K.swapaxes(-1, -2)`.
    """),
    exercise("a2-attention", """
    def attention(Q, K, V):
        \"\"\"(..., L, d_k), (..., S, d_k), (..., S, d_v) -> output (..., L, d_v), weights (..., L, S).\"\"\"
        ### BEGIN SOLUTION A2: weights = softmax(Q K^T / sqrt(d_k)) over the keys; return (weights V, weights)
        d_k = Q.shape[-1]
        w = softmax(Q @ K.swapaxes(-1, -2) / np.sqrt(d_k))    # (..., L, S)
        return w @ V, w                                      # (..., L, d_v), (..., L, S)
        ### END SOLUTION


    output, weights = attention(Q, K, V)                     # (L, S) @ (S, d_v) -> (L, d_v)
    print("output = weights V", output.shape)
    print(output)
    """),
    md(r"""
    **Check** on the document's worked example (section 5 below), $Q = K = V = [1, 2, 3]$ read two ways, and
    on a batch of two:
    """),
    code("""
    x = np.array([1.0, 2.0, 3.0])
    out_one, w_one = attention(x[None, :], x[None, :], x[None, :])      # one token of dimension 3
    np.testing.assert_allclose(w_one, [[1.0]])                          # a single weight, 1
    np.testing.assert_allclose(out_one, [[1.0, 2.0, 3.0]])              # so the output is V itself
    out_three, w_three = attention(x[:, None], x[:, None], x[:, None])  # three tokens of dimension 1
    np.testing.assert_allclose(w_three[0], [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)   # softmax(1 * x)
    np.testing.assert_allclose(out_three.ravel(), [2.57521038, 2.85093709, 2.94797458], rtol=1e-6)
    out_batch, w_batch = attention(*(np.stack([M, 2 * M]) for M in (Q, K, V)))   # (2, L, d): a batch of two
    np.testing.assert_allclose(out_batch[0], output)
    np.testing.assert_allclose(w_batch[1], softmax(4 * Q @ K.T / np.sqrt(d_k)))
    print("attention: the worked example's numbers, and batches work")
    """),
    md(r"""
    ## 2. The same by the library

    `F.scaled_dot_product_attention(Q, K, V)` returns the output **and** the weights (to draw them). In
    float64 it agrees with the NumPy lines above to rounding error. It works on any leading axes too:
    `(batch, heads, L, d_k)` is what multi-head attention passes it.
    """),
    code("""
    Qt, Kt, Vt = (mt.tensor(a) for a in (Q, K, V))          # float64, as the NumPy arrays
    out_t, w_t = F.scaled_dot_product_attention(Qt, Kt, Vt)
    print("output", out_t.shape, out_t.dtype_name, " weights", w_t.shape)
    print(f"max |library - NumPy|: output {np.abs(out_t.numpy() - output).max():.1e}, "
          f"weights {np.abs(w_t.numpy() - weights).max():.1e}")
    """),
    md(r"""
    ## 3. The attention map

    Row $i$ is query $i$'s weights over the keys; every map in this library is drawn by default on the same
    scale, 0 to 1, so maps can be compared by eye.
    """),
    code("""
    viz.attention_heatmap(w_t, tokens, tokens, title="softmax(QK^T / sqrt(d_k)), random Q, K")
    """),
    md(r"""
    ## 4. Why divide by $\sqrt{d_k}$

    If the entries of $q$ and $k$ are independent with mean 0 and variance 1, the dot product
    $q \cdot k = \sum_{j=1}^{d_k} q_j k_j$ has variance $d_k$. With the paper's $d_k = 64$ the scores would
    spread over about $\pm 16$, and the softmax of such numbers is nearly one-hot: one weight near 1, the
    rest near 0. Dividing by $\sqrt{d_k}$ brings the variance back to 1.

    What a one-hot row does to learning is in the softmax's derivative. From $w_i = e^{x_i} / \sum_k e^{x_k}$,
    $\partial w_i / \partial x_j = w_i (\delta_{ij} - w_j)$ ($\delta_{ij}$ is 1 where $i = j$, else 0): the
    Jacobian $J = \mathrm{diag}(w) - ww^\top$. Where one weight is 1 and the others 0, every entry
    $w_i(\delta_{ij} - w_j)$ is 0: the row is *saturated* and passes almost no gradient back to its scores,
    nor to $q$ and $k$. But dividing costs something too: the scores are $x = qK^\top / \sqrt{d_k}$, so the
    gradient that reaches $q$ is $\partial w / \partial q = J K / \sqrt{d_k}$, $\sqrt{d_k} = 8$ times smaller
    for the same $J$. Which wins? Measure both, the size (Frobenius norm) of $J$ and of $\partial w/\partial q$,
    for 1000 queries against 10 keys:
    """),
    code("""
    d = 64
    q = rng.standard_normal((1000, d))
    k = rng.standard_normal((1000, d))
    raw = (q[:, None, :] * k[None, :10, :]).sum(-1)          # (1000, 10) scores against 10 keys
    for name, s, divisor in (("q.k", raw, 1.0), ("q.k / sqrt(d_k)", raw / np.sqrt(d), np.sqrt(d))):
        w = softmax(s)                                        # (1000, 10): your softmax, over the keys
        J = w[:, :, None] * np.eye(10) - w[:, :, None] * w[:, None, :]   # (1000, 10, 10): diag(w) - w w^T per row
        size_J = np.linalg.norm(J, axis=(1, 2))               # (1000,)
        size_q = np.linalg.norm(J @ k[:10] / divisor, axis=(1, 2))      # (1000,): |dw/dq|, dw/dq = J K / divisor
        print(f"{name:16} variance {s.var():4.1f}   mean largest weight {w.max(-1).mean():.2f} (of 10 keys)   "
              f"saturated rows (|J| < 0.01): {np.mean(size_J < 0.01):.1%}")
        print(f"{'':16} |J|     10th percentile {np.percentile(size_J, 10):.1e}   median {np.median(size_J):.3f}")
        print(f"{'':16} |dw/dq| 10th percentile {np.percentile(size_q, 10):.1e}   median {np.median(size_q):.3f}")
    """),
    md(r"""
    In the run committed with this notebook (the unscaled variance is 58.3, not 64: an estimate from only 10
    keys), the typical row is not the point: at the median, $|J|$ is 0.087 unscaled against 0.344 scaled, but
    the factor $1/\sqrt{d_k}$ more than makes up for it, and the gradient reaching $q$ is *larger* unscaled
    (median $|\partial w/\partial q|$ 0.653 against 0.329). What scaling removes is the tail: unscaled, 29.7%
    of the rows are saturated ($|J| < 0.01$; a tenth of all rows even below $2.6 \cdot 10^{-4}$, and a tenth
    pass $q$ a gradient below $2.1 \cdot 10^{-3}$), scaled none is (the 10th percentiles are 0.33 and 0.30). Without
    the division many rows saturate and pass almost no gradient, so their queries and keys barely learn;
    with it, every row passes a gradient of about the same size.
    """),
    md(r"""
    ## 5. The document's worked example (section 4.3.1)

    The document starts from "an input sequence `[1, 2, 3]` with a dimension of `d=3`", takes
    $Q = K = V = [1.0, 2.0, 3.0]$, and states

    $$ \text{Output} = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt 3}\right) V = [0.2, 0.3, 0.5]. $$

    Its $Q$, $K$ and $V$ already depart from the paper, and from the document's own text. The text has
    just added positional encodings to the embeddings and says the three "are all generated by the
    embedding layer", yet each is the bare input $[1, 2, 3]$: the encoding is in none of them. In the
    paper they are three learned projections $XW^Q$, $XW^K$, $XW^V$ of $X$ = embedding + $PE$ (in the
    first layer; notebook 03), so a token's query, key and value differ (erratum 8 in `docs/errata.md`).
    What follows keeps the document's $Q = K = V = [1, 2, 3]$.

    The document's hints point both ways: it calls $[1, 2, 3]$ an input *sequence* and lists positional
    encodings for positions 1, 2 and 3 (**three tokens** of dimension 1), but gives it "a dimension of
    `d=3`" (**one token** of dimension 3). So compute both by hand.

    **One token, $d_k = 3$.** $QK^\top = 1 + 4 + 9 = 14$, a $1 \times 1$ score; the softmax of a single
    number is 1; the output is $1 \cdot V = [1, 2, 3]$.

    **Three tokens of dimension 1.** $Q, K, V$ are $(3, 1)$; $QK^\top$ is the $3 \times 3$ table of
    products $x_i x_j$.
    """),
    code("""
    x = np.array([1.0, 2.0, 3.0])
    one = x[None, :]                                          # (1, 3): one token of dimension 3
    print("one token:    scores", (one @ one.T).shape, "=", (one @ one.T).ravel(), "-> output = V =", one.ravel())

    col = x[:, None]                                          # (3, 1): three tokens of dimension 1
    for divisor, why in ((1.0, "sqrt(d_k) = sqrt(1), the formula"), (np.sqrt(3), "sqrt(3), the document's divisor")):
        w = softmax(col @ col.T / divisor)                    # (3, 3)
        print(f"three tokens, divided by {why}:")
        print("  weights (3, 3):\\n", w.round(3))
        print("  output  (3, 1):", (w @ col).ravel().round(3))
    """),
    md(r"""
    Neither reading gives $[0.2, 0.3, 0.5]$, and no output can: an output is a weighted **average** of the
    values, so each of its numbers lies between the smallest and the largest value, 1 and 3. But
    $0.2 + 0.3 + 0.5 = 1$, the way a row of **weights** sums to 1. The library's
    `worked_examples.self_attention_example()` computes twelve candidate readings of the stated numbers: the
    output of each of the three set-ups above (3), each row of the weights of three scalar tokens, with either
    divisor (6), those two outputs divided by their sum (2), and $V / \sum V$ (1). It ranks them by their
    largest difference from the document's numbers, closest first (`sa.readings`; all twelve below):
    """),
    code("""
    from minitransformer import worked_examples

    sa = worked_examples.self_attention_example()
    print("document:", list(sa.document_output))
    for setup, (out, w) in sa.attention.items():
        print(f"  {setup:42} output {out.numpy().ravel().round(3)}  weights {w.shape}")
    print(f"\\n{len(sa.readings)} readings, closest first:  max |difference|, rounds to the document's numbers?")
    for r in sa.readings:
        print(f"  {r.distance:.4f}  {'yes' if r.rounds_to_document else 'no ':3}  {r.name:40} {np.round(r.value, 3)}")
    """),
    md(r"""
    **The plausible reading.** Two readings round to the document's numbers, and they are equally close
    (0.0329 and 0.0333: numbers given to one decimal cannot tell them apart). One is the first row of the
    **weights** for three scalar tokens divided by $\sqrt 3$, $[0.168, 0.299, 0.533]$: it uses the document's
    own formula, its $Q$, $K$, softmax and $\sqrt 3$. The other is $V / \sum V = [0.167, 0.333, 0.5]$, which
    uses no $Q$, no $K$ and no softmax. So the document most likely computed the attention weights of the
    first token (not the output), and divided by $\sqrt 3$ (its "`d=3`", which for three scalar tokens is
    the sequence length) where the formula divides by $\sqrt{d_k} = \sqrt 1$. The full list of the
    document's discrepancies is in `docs/errata.md`.

    How firmly do three numbers given to one decimal pin the divisor down? Try every divisor $t$ from 1 to 4:
    """),
    code("""
    low, high, best, far = sa.divisors            # computed on a grid of steps of 0.001
    print(f"softmax([1, 2, 3] / t) rounds to {list(sa.document_output)} for every t from {low:.3f} to {high:.3f}")
    print(f"closest at t = {best:.3f} (max difference {far:.4f}); sqrt(3) = {np.sqrt(3):.3f} is inside, and so is 2")
    """),
    md(r"""
    Not firmly: any divisor from about 1.6 to 3 fits, and $\sqrt 3$ is not even the closest. It is the
    plausible one because the document writes it, not because the numbers demand it.

    The weights of that reading, as a map:
    """),
    code("""
    _, w_doc = sa.attention["three scalar tokens, divided by sqrt(3)"]
    viz.attention_heatmap(w_doc, ["1", "2", "3"], ["1", "2", "3"],            # labels: the tokens' values
                          title="Q = K = V = [1, 2, 3] as three tokens, / sqrt(3)")
    """),
    md(r"""
    ## 6. Masks

    A mask says which keys each query **may** see: a boolean `(L, S)` table (or anything that broadcasts to
    the scores), `True` = allowed, as in the boolean `attn_mask` of PyTorch's
    `scaled_dot_product_attention` (its `nn.MultiheadAttention` takes the opposite: `True` = hidden). A hidden score is
    replaced by a very negative number (the paper writes $-\infty$), so its weight is 0.

    In a map, a weight of 0 looks the same whether the key was hidden or allowed and ignored. So the maps
    below are also given the mask (`mask=`): the cells it hides are drawn hatched grey, with no number.

    **Causal mask** (the decoder, paper 3.2.3): position $i$ may look at positions $j \le i$ only, so a
    model predicting the next token cannot peek at it.
    """),
    code("""
    causal = F.causal_mask(L)                                 # (L, L) bool
    print("causal mask", causal.shape)
    print(causal.numpy().astype(int))
    _, w_causal = F.scaled_dot_product_attention(Qt, Kt, Vt, mask=causal)
    viz.attention_heatmap(w_causal, tokens, tokens, title="causal mask: no looking ahead", mask=causal)
    """),
    md(r"""
    **Padding mask.** Sequences of different lengths are padded to one length with a `<pad>` token
    (id 0). Nobody should attend to padding: `F.padding_mask(ids, pad_id)` is `(batch, 1, 1, S)`, which
    broadcasts over heads and queries. Combined with the causal mask (logical and) it gives the decoder's
    `(batch, 1, S, S)` mask. It hides *keys* only: the pads' own rows (as queries) still get weights, as
    the map below shows. What a pad position computes is thrown away later: the loss skips pad targets
    (`ignore_index`) and `nn.TransformerClassifier`'s pooling leaves the pads out.
    """),
    code("""
    ids = mt.tensor([[5, 6, 7, 8],
                     [5, 6, 0, 0]])                            # (batch=2, S=4); the second has 2 pads
    pad = F.padding_mask(ids, pad_id=0)
    both = F.combine_masks(pad, causal)
    print("padding mask", pad.shape, " combined with causal", both.shape)
    print(both.numpy()[1, 0].astype(int))

    Qb, Kb, Vb = (mt.tensor(np.stack([a, a])[:, None]) for a in (Q, K, V))   # (batch=2, heads=1, 4, 4)
    print("Q", Qb.shape, "(batch, heads, L, d_k): the mask's axes line up with the scores (batch, heads, L, S)")
    _, w_pad = F.scaled_dot_product_attention(Qb, Kb, Vb, mask=pad)
    print("weights", w_pad.shape, "  (batch, heads=1, L, S)")
    viz.attention_heatmap(w_pad[1, 0], tokens[:2] + ["<pad>"] * 2, tokens[:2] + ["<pad>"] * 2,
                          title="padding mask: the pads get no weight", mask=pad[1, 0])   # (1, S): every query
    """),
    md(r"""
    **A row with nothing to attend to.** If every key of a query is hidden, the softmax has nothing to
    share its weight over. With a literal $-\infty$ the row becomes $e^{-\infty - (-\infty)}$: NaN, which
    then spreads through everything downstream. With a very negative finite number every score in the row
    is the same, so the softmax spreads the weight evenly over the keys the mask hides: no NaN, but
    silently wrong. The library makes such a row's weights, output and gradient **0** instead:
    """),
    code("""
    mask = np.ones((L, S), dtype=bool)
    mask[2] = False                                          # query 2 may see no key at all
    naive = np.where(mask, scores, -np.inf)
    with np.errstate(invalid="ignore"):
        print("NumPy with -inf, row 2:", softmax(naive)[2])  # your softmax: max = -inf, and -inf - (-inf) is NaN

    Qg = mt.tensor(Q, requires_grad=True)
    out_m, w_m = F.scaled_dot_product_attention(Qg, Kt, Vt, mask=mt.tensor(mask))
    out_m.sum().backward()
    print("library, weights row 2:", w_m.numpy()[2], "  output row 2:", out_m.numpy()[2])
    print("gradient of Q, row 2:  ", Qg.grad.numpy()[2], "  any NaN anywhere:", np.isnan(Qg.grad.numpy()).any())
    """),
    md(r"""
    ## Exercises

    The cell after this one defines `check_ex1` to `check_ex5`, one per exercise: each computes the right
    answer itself and raises an `AssertionError` that says what is wrong, or prints that your answer is right.

    1. Give query 0 of section 1 the same vector as key 2 times 10 (`Q[0] = 10 * K[2]`). Predict the map's
       first row before you draw it, then check your prediction, four weights, with `check_ex1(row)` (to
       within 0.01, so two decimals are enough).
    2. Show that attention without masks is *permutation-equivariant*: permute the rows of $Q$ (and of
       $K$, $V$ together) and check how the output rows move. Write what you found as a function,
       `check_ex2(lambda output, perm: ...)`, that gives the output for `Q[perm], K[perm], V[perm]` from the
       output for `Q, K, V`. Why does this mean a Transformer needs positional encodings (notebook 04)?
       (Answer: attention sees the tokens as a set: reordering them only reorders the outputs, so a word gets
       the same vector wherever it stands; adding a position's own vector makes the order count.)
    3. Repeat section 4 with $d_k = 4, 16, 256$. How do the mean largest weight and the size of the
       softmax's gradient change with $d_k$, unscaled and scaled? Check each measurement with
       `check_ex3(q, k, scaled, largest, size_J)`: your queries and keys, whether you divided by
       $\sqrt{d_k}$, the mean largest weight over the first 10 keys, and the median $|J|$. (Answer: unscaled, the
       largest weight tends to 1 and $|J|$ to 0 as $d_k$ grows; scaled, both stay about the same.)
    4. In the document's example, with three tokens of dimension 1 and the formula's divisor, which
       tokens attend most to themselves? Check the rows with `check_ex4(rows)`, e.g. `check_ex4([0, 1])`.
       Explain from the scores $x_i x_j$ why the tokens with values 1 and 2 (the first two, rows 0 and 1) do
       not. (Answer: for $x_i > 0$, row $i$'s scores $x_i x_j$ are largest at the largest $x_j$.)
    5. Pad on the left instead, `ids = [[0, 0, 5, 6]]`, and build the decoder's combined mask. Which query
       rows have no key left, what do their weights become, and why can right padding (section 6) never
       cause this with a causal mask? Check your mask and the rows with `check_ex5(mask, rows)`. (Answer:
       the library makes their weights 0; with right padding key 0 is a real token, which every query may
       see.)
    """),
    code("""
    def _softmax_rows(s):
        \"\"\"The checks' own softmax over the last axis (yours may be what is being checked).\"\"\"
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


    def _attend(Q, K, V):
        return _softmax_rows(Q @ K.swapaxes(-1, -2) / np.sqrt(Q.shape[-1])) @ V


    def _array(a):
        return a.numpy() if isinstance(a, mt.Tensor) else np.asarray(a)


    def check_ex1(row):
        \"\"\"Exercise 1: row 0 of section 1's map once Q[0] = 10 K[2], to within 0.01.\"\"\"
        row = _array(row).astype(float)
        want = _softmax_rows(10 * K[2] @ K.T / np.sqrt(d_k))            # (S,): query 0 = 10 K[2] against every key
        assert row.shape == want.shape, f"check_ex1: the map's first row has {want.size} weights; yours is {row.shape}"
        assert np.abs(row - _softmax_rows(scores[0])).max() > 0.01, \\
            "check_ex1: that is row 0 of section 1's map, the old query 0; set Q[0] = 10 * K[2] first"
        assert abs(row.sum() - 1) <= 0.01, f"check_ex1: a row of weights sums to 1; yours sums to {row.sum():.3f}"
        j = np.abs(row - want).argmax()
        off = row[j] - want[j]
        assert abs(off) <= 0.01, (f"check_ex1: your weight on key {j}, {row[j]:.3f}, is too "
                                  f"{'large' if off > 0 else 'small'} by {abs(off):.3f}")
        print("check_ex1: right, to within 0.01")


    def check_ex2(permuted):
        \"\"\"Exercise 2: permuted(output, perm) must be attention's output for Q[perm], K[perm], V[perm].\"\"\"
        r = np.random.default_rng(2)
        Q5, K5, V5 = (r.standard_normal((5, 4)) for _ in range(3))
        out = _attend(Q5, K5, V5)                                       # (5, 4)
        for perm in (np.array([1, 2, 3, 4, 0]), np.array([2, 0, 4, 1, 3])):   # neither is its own inverse
            want, got = _attend(Q5[perm], K5[perm], V5[perm]), _array(permuted(out.copy(), perm))
            assert got.shape == want.shape, f"check_ex2: the output is {want.shape}; your function gave {got.shape}"
            if np.allclose(got, want):
                continue
            assert not np.allclose(got, out), "check_ex2: you left the output as it was; its rows move"
            assert not np.allclose(got, out[np.argsort(perm)]), \\
                "check_ex2: the rows moved the other way, by the inverse permutation"
            raise AssertionError(f"check_ex2: wrong for perm = {perm.tolist()}")
        print("check_ex2: right, for two permutations of 5 tokens")


    def check_ex3(q, k, scaled, largest, size_J):
        \"\"\"Exercise 3: section 4's measurements for your q (n, d_k) against the first 10 of your keys k.\"\"\"
        q, k = _array(q), _array(k)[:10]
        d_k = q.shape[-1]
        raw = q @ k.T                                                   # (n, 10)
        measured = {}
        for name, divisor in (("unscaled", 1.0), ("scaled", np.sqrt(d_k)), ("divided by d_k", float(d_k))):
            w = _softmax_rows(raw / divisor)
            J = w[:, :, None] * np.eye(len(k)) - w[:, :, None] * w[:, None, :]
            measured[name] = w.max(-1).mean(), np.median(np.linalg.norm(J, axis=(1, 2)))
        want = measured["scaled" if scaled else "unscaled"]
        for i, (what, got) in enumerate((("the mean largest weight", largest), ("the median |J|", size_J))):
            if np.isclose(got, want[i], rtol=1e-6, atol=1e-12):
                continue
            also = [name for name, m in measured.items() if np.isclose(got, m[i], rtol=1e-6, atol=1e-12)]
            raise AssertionError(f"check_ex3: {what}, d_k = {d_k}, {'scaled' if scaled else 'unscaled'}: not "
                                 f"{got:.4g}" + (f", which is the {also[0]} one" if also else ""))
        print(f"check_ex3: right, d_k = {d_k}, {'scaled' if scaled else 'unscaled'}")


    def check_ex4(rows):
        \"\"\"Exercise 4: the rows (from 0) of Q = K = V = [1, 2, 3] as three tokens, divisor 1, whose largest weight
        is on themselves.\"\"\"
        values = np.array([1.0, 2.0, 3.0])                              # the document's input
        w = _softmax_rows(np.outer(values, values))                     # (3, 3): the scores x_i x_j, / sqrt(1)
        rows = sorted(int(i) for i in np.atleast_1d(rows))
        assert set(rows) <= {0, 1, 2}, f"check_ex4: rows count from 0 (the token with value v is row v - 1): {rows}"
        for i in range(3):
            top = int(w[i].argmax())
            assert (i in rows) == (top == i), (f"check_ex4: row {i} puts most weight on row {top}" if i in rows else
                                               f"check_ex4: row {i} puts most weight on itself, and is not in {rows}")
        print("check_ex4: right")


    def check_ex5(mask, rows):
        \"\"\"Exercise 5: the decoder's mask for ids = [[0, 0, 5, 6]] (pad id 0), and the query rows that see no key.
        \"\"\"
        ids_left = np.array([[0, 0, 5, 6]])
        keys = ids_left != 0                                            # (1, S): the keys that are not pads
        want = keys[:, None, None, :] & np.tril(np.ones((4, 4), dtype=bool))   # (1, 1, L, S): and with causal
        mask = _array(mask)
        assert mask.dtype == bool, f"check_ex5: a mask is bool; yours is {mask.dtype}"
        assert mask.size == want.size, f"check_ex5: the combined mask is {want.shape}; yours is {mask.shape}"
        mask = mask.reshape(want.shape)
        assert not (mask == (keys[:, None, None, :] | np.tril(np.ones((4, 4), dtype=bool)))).all(), \\
            "check_ex5: that mask lets a query see a key either mask allows; combine them with a logical and"
        wrong = np.argwhere(mask[0, 0] != want[0, 0])
        assert not wrong.size, (f"check_ex5: query {wrong[0][0]}, key {wrong[0][1]}: "
                                f"{'hidden' if want[0, 0][tuple(wrong[0])] else 'allowed'} in the decoder's mask")
        empty = [i for i in range(4) if not want[0, 0, i].any()]
        rows = sorted(int(i) for i in np.atleast_1d(rows))
        for i in sorted(set(rows) ^ set(empty)):
            seen = np.flatnonzero(want[0, 0, i]).tolist()
            raise AssertionError(f"check_ex5: query row {i} " + (f"sees keys {seen}" if seen else "sees no key"))
        print("check_ex5: right")
    """),
]
