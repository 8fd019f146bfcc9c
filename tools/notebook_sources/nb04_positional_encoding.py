"""Notebook 04_positional_encoding: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, exercise, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "6.3": "2 pi, the wavelength of the first pair (a formula's constant)",
    "0.456": "the smallest cosine of the 24-position map drawn in section 5 (S.min(); a picture, not printed)",
}

CELLS = [
    md(r"""
    # 04 · Positional encoding

    **What this notebook teaches.** Attention compares every token with every other by dot products,
    and a dot product does not care where a token stands: without extra information a Transformer sees
    a *bag* of tokens. The paper (section 3.5) and the source document (section 4.1.3) add to each token's
    embedding (in the paper scaled first, $E[\mathrm{ids}]\sqrt{d_\text{model}} + PE$: its section 3.4 and
    `docs/formulas/embedding.md`) a vector that depends only on its position $pos$:

    $$
    PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad
    PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)
    $$

    for $i = 0, 1, \ldots, d/2 - 1$ ($d = d_\text{model}$). Each pair of columns $(2i, 2i+1)$ is a sine and a
    cosine of one frequency $\omega_i = 10000^{-2i/d}$; the wavelengths grow geometrically from $2\pi$ up
    to $2\pi \cdot 10000^{(d-2)/d}$, just under $10000 \cdot 2\pi$ for a wide table (for $d = 16$:
    $3162 \cdot 2\pi$).

    Steps: **1** the formula with NumPy and by the library · **2** why positions are needed ·
    **3** the document's listed values (4.3.1) against the formula · **4** pictures: the table and its waves ·
    **5** why sin and cos: $PE_{pos+k}$ is a *rotation* of $PE_{pos}$, the same for every $pos$ ·
    **6** the document's per-head "+1" (4.3.2) · **7** fixed or learned (4.2.3's claim).

    **Exercise in the text** (assignment A3, `minitransformer assignments list`): the table $PE$ in NumPy
    (section 1), followed by a cell that checks your answer. In assignment A3's student copy
    (`minitransformer assignments build 3 DIR`) the library's own A3 bodies are taken out too: from the
    comparison with the library's table in section 1 on, the cells that call them raise
    `NotImplementedError` until you have written them in `minitransformer/functional/positional.py`
    (`sinusoidal_positional_encoding`) and, for section 2, `minitransformer/nn/attention.py`
    (`MultiHeadAttention`, notebook 03).
    """),
    SETUP,
    md(r"""
    ## 1. The formula, with NumPy and by the library

    Positions count from 0 (as in the paper's code and PyTorch's tutorials). The column index $j$ is $2i$
    for a sine and $2i+1$ for a cosine, so both columns of a pair share the divisor $10000^{2i/d}$.

    ### Exercise A3 · the table $PE$, in NumPy

    For $d = 16$ and positions $0 \ldots 49$: the angles $pos / 10000^{2i/d}$ as a $(50, d/2)$ array (broadcast
    the column `pos` against the row `two_i`), then the $(50, d)$ table with $\sin$ of the angles in the even
    columns `0::2` and $\cos$ in the odd columns `1::2`.
    """),
    exercise("a3-positional-table", """
    max_len, d = 50, 16
    pos = np.arange(max_len)[:, None]                   # (max_len, 1)
    two_i = np.arange(0, d, 2)[None, :]                 # (1, d/2): 2i = 0, 2, 4, ...

    ### BEGIN SOLUTION A3: angle = pos / 10000^(2i/d), (max_len, d/2); PE_np: sin in even columns, cos in odd
    angle = pos / 10000 ** (two_i / d)                  # (max_len, d/2)
    PE_np = np.zeros((max_len, d))
    PE_np[:, 0::2] = np.sin(angle)                      # even columns: sin
    PE_np[:, 1::2] = np.cos(angle)                      # odd columns: cos
    ### END SOLUTION
    print("angle", angle.shape, " PE", PE_np.shape)
    print("divisors 10000^(2i/d):", (10000 ** (two_i / d)).ravel().round(2))
    """),
    md(r"""
    **Check** on values worked out by hand: at $pos = 0$ every sine is 0 and every cosine 1; at $pos = 1$
    the pair $i = 1$ has divisor $10000^{2/16} = \sqrt{10}$.
    """),
    code("""
    np.testing.assert_allclose(PE_np[0], np.tile([0.0, 1.0], d // 2), atol=1e-15)
    np.testing.assert_allclose(PE_np[1, :4], [np.sin(1), np.cos(1), np.sin(10**-0.5), np.cos(10**-0.5)], rtol=1e-12)
    print("PE_np: row pos = 0 and the first 4 columns of row pos = 1 match the values worked out by hand")
    """),
    md(r"""
    Then against the library's table (in A3's student copy, this needs your `functional/positional.py`):
    """),
    code("""
    PE = F.sinusoidal_positional_encoding(max_len, d, dtype="float64")
    print("library", PE.shape, PE.dtype_name, " requires_grad:", PE.requires_grad,
          f"  max |library - NumPy| = {np.abs(PE.numpy() - PE_np).max():.1e}")
    np.testing.assert_allclose(PE.numpy(), PE_np, rtol=1e-10, atol=1e-12)
    print("rows pos = 0, 1 (first 6 columns):\\n", PE.numpy()[:2, :6])
    """),
    md(r"""
    ## 2. Why positions are needed

    Self-attention without positions is *permutation-equivariant*: shuffle the input tokens and the output
    rows are shuffled the same way, nothing else changes. "dog bites man" and "man bites dog" would get
    the same vectors per word. Adding $PE$ breaks that.
    """),
    code("""
    d_model, L = 16, 5
    mha = nn.MultiHeadAttention(d_model, heads=2).to("float64")
    X = mt.tensor(np.random.default_rng(0).standard_normal((L, d_model)))     # (L, d_model): one sequence
    perm = [2, 0, 4, 1, 3]
    out, _ = mha(X)
    out_perm, _ = mha(X[perm])                                                # the same tokens, shuffled
    print("X", X.shape, " output", out.shape)
    print(f"no positions:   max |f(X[perm]) - f(X)[perm]| = {np.abs(out_perm.numpy() - out.numpy()[perm]).max():.1e}")

    PE = F.sinusoidal_positional_encoding(L, d_model, dtype="float64")         # (L, d_model)
    out, _ = mha(X + PE)
    out_perm, _ = mha(X[perm] + PE)                                           # shuffled tokens, positions in place
    print(f"with X + PE:    max |f(X[perm]) - f(X)[perm]| = {np.abs(out_perm.numpy() - out.numpy()[perm]).max():.2f}")
    """),
    md(r"""
    ## 3. The document's values (section 4.3.1) against the formula

    For its 3-token example with $d = 3$ the document lists
    $PE_{(pos,1)} = \cos(pos/10000)$ and $PE_{(pos,2)} = \sin(pos/10000)$ for $pos = 1, 2, 3$. The formula
    with $d = 3$ gives something else: its first pair has divisor $10000^0 = 1$, so $\sin(pos)$ and
    $\cos(pos)$, which turn by a whole radian per position. `worked_examples.positional_encoding_example()`
    computes both and ranks candidate readings of the document's numbers:
    """),
    code("""
    from minitransformer import worked_examples

    pe = worked_examples.positional_encoding_example()
    print("pos  document [cos, sin](pos/10000)   formula d = 3 [PE_0, PE_1, PE_2] = [sin, cos, sin]")
    for p, row in zip(pe.positions, pe.document_table):
        print(f"{p:3}  {np.round(row, 4)!s:32} {pe.formula_table.numpy()[p].round(4)}")
    print("divisors 10000^(2i/d) of the 3 columns:", np.round(pe.divisors, 2))
    print("\\nreadings, closest first (max |difference|):")
    for r in pe.readings:
        print(f"  {r.distance:9.2e}  {r.name}")
    """),
    md(r"""
    **The plausible reading.** The document divides both listed components by $10000$: the exponent $2i/d$
    equal to 1, so $2i = d$. No column of a 3-wide table has that, nor any column of the formula counted from
    0, whose slowest pair only comes close (columns 510 and 511 of $d = 512$). Counted from 1, the last pair
    has $2i = d$ exactly, and with $d = 2$, the two components the document lists, that pair $i = 1$ is its
    indices 1 and 2: the cosine at $2i - 1 = 1$, the sine at $2i = 2$, both of $pos/10000$, reproduce every
    listed value (the first reading above). The cos and sin of indices 1 and 2 also fit the formula read
    0-based, but then they are in two pairs, with divisors 1 and 464.16, not one argument $pos/10000$. Every
    way, 2 numbers per position cannot be added to 3-dimensional embeddings. With the document's divisor the
    encodings hardly change from one position to the next, which makes them nearly useless for telling
    positions apart. (Details: `docs/errata.md`, errata 2 and 3; head 2's encodings in 4.3.2, section 6
    below, have the same arguments plus 1.)

    ## 4. Pictures: the table and its waves

    Left columns change fast with the position, right columns slowly: read down a column, the bands get
    longer from left to right, and the rightmost columns hardly change over 64 positions (sines near 0,
    cosines near 1).
    """),
    code("""
    PE = F.sinusoidal_positional_encoding(64, 64)
    viz.positional_encoding_heatmap(PE)
    """),
    md(r"""
    Five columns of a 64-wide table as waves. The table holds them at whole positions only (the dots); the
    thin curves are the formula between them. Even columns are sines, odd ones cosines: columns 0 and 1 are
    the fastest pair, $\sin(pos)$ and $\cos(pos)$, with a wavelength of $2\pi \approx 6.3$ positions, so their
    dots, about 6 per period, zigzag; columns 8, 16 and 32 are sines of slower frequencies.
    (`viz.positional_encoding_curves` draws chosen columns of any table, a learned one too, at its positions
    only.)
    """),
    code("""
    from matplotlib.figure import Figure

    d_wide, n = 64, 50
    PE_wide = F.sinusoidal_positional_encoding(n, d_wide, dtype="float64").numpy()   # (50, 64)
    between = np.linspace(0, n - 1, 2000)                                           # positions and in between
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for j in (0, 1, 8, 16, 32):
        two_i, wave = j - j % 2, (np.sin if j % 2 == 0 else np.cos)              # column j = 2i (sin) or 2i + 1 (cos)
        divisor = 10000 ** (two_i / d_wide)
        (line,) = ax.plot(between, wave(between / divisor), lw=0.7, alpha=0.6)  # the formula, thin
        ax.plot(np.arange(n), PE_wide[:, j], ".", ms=6, color=line.get_color(),   # the table: whole positions
                label=f"dim {j}: {wave.__name__}(pos / {divisor:.4g})")
    ax.set(xlabel="position pos", ylabel="PE(pos, j)", title="one wave per dimension, sampled at whole positions")
    ax.grid(True, color="0.9")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="dimension j", title_fontsize=8)
    fig
    """),
    md(r"""
    ## 5. Why sin and cos: a shift in position is a rotation

    For one frequency $\omega$, the pair $(\sin \omega p, \cos \omega p)$ at position $p + k$ is, by the
    angle-addition formulas,

    $$
    \begin{pmatrix} \sin \omega(p+k) & \cos \omega(p+k) \end{pmatrix}
    = \begin{pmatrix} \sin \omega p & \cos \omega p \end{pmatrix}
    \begin{pmatrix} \cos \omega k & -\sin \omega k \\ \sin \omega k & \cos \omega k \end{pmatrix} .
    $$

    So $PE_{p+k} = PE_p\, R_k$, where $R_k$ is block-diagonal with one $2 \times 2$ rotation per pair, and
    depends on the offset $k$ only, **not on $p$**. A linear map (such as $W^Q$, $W^K$) can therefore
    express "the token $k$ places away" the same way everywhere in the sequence. Build $R_k$ and check it on
    every position at once:
    """),
    code("""
    d, max_len, k = 16, 60, 3
    PE = F.sinusoidal_positional_encoding(max_len, d, dtype="float64").numpy()   # (60, 16)
    omega = 1.0 / 10000 ** (np.arange(0, d, 2) / d)                            # (d/2,) frequencies

    R_k = np.zeros((d, d))
    for i, w in enumerate(omega):                                               # one 2x2 rotation per pair
        c, s = np.cos(w * k), np.sin(w * k)
        R_k[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]
    print("R_k", R_k.shape, f"  orthogonal: max |R R^T - I| = {np.abs(R_k @ R_k.T - np.eye(d)).max():.1e}")
    print(f"max over p of |PE[p + k] - PE[p] R_k| = {np.abs(PE[k:] - PE[:-k] @ R_k).max():.1e}")
    print("top-left 4x4 block of R_3:\\n", R_k[:4, :4])
    """),
    md(r"""
    A consequence: the dot product of two encodings depends only on their distance,
    $PE_p \cdot PE_{p+k} = \sum_i \cos(\omega_i k)$, so $PE\,PE^\top$ has the same value along each diagonal
    (a Toeplitz matrix), largest on the main diagonal and, for this $d = 16$, next largest one position
    away. Beyond that it does not fall steadily: in the line below, positions 5 apart (6.137) are more
    alike than positions 3 apart (5.543), because the fast pairs come round again (exercise 4).

    The pictures show the **cosine similarity**, the dot product divided by the two encodings' lengths
    (`normalize=True` in `viz.position_similarity`). Every pair of columns adds $\sin^2 + \cos^2 = 1$ to a
    row's squared length, so every row has length $\sqrt{d/2}$ and the cosine is the dot product divided by
    $d/2 = 8$: 1 on the diagonal, 0.693 three positions apart, 0.767 five apart. First the map's row 0 as a
    line, then the whole map, on a colour scale from 0 to 1 (the cosines here lie between 0.456 and 1).
    """),
    code("""
    S = PE @ PE.T                                                               # (60, 60)
    spread = max(np.ptp(np.diagonal(S, offset=o)) for o in range(-max_len + 1, max_len))
    print(f"largest spread of PE_p . PE_q along any diagonal p - q = const: {spread:.1e}")
    print("PE_p . PE_(p+k) for k = 0..5:", np.diagonal(S, offset=0)[0].round(3),
          *(np.diagonal(S, offset=o)[0].round(3) for o in range(1, 6)))
    norms = np.linalg.norm(PE, axis=1)                                          # (60,): ||PE_p||
    print(f"||PE_p|| from {norms.min():.6f} to {norms.max():.6f};  sqrt(d/2) = {np.sqrt(d / 2):.6f}")
    cosine = S / (d / 2)                                                        # (60, 60): the cosine similarity
    print("cosine of PE_0 and PE_k for k = 0..5:", cosine[0, :6].round(3))

    ks = np.arange(24)
    fig = Figure(figsize=(7.5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(ks, cosine[0, ks], marker="o", ms=4)
    for k_apart, text_x in ((3, 1.5), (5, 6.5)):
        ax.annotate(f"{k_apart} apart: {cosine[0, k_apart]:.3f}", (k_apart, cosine[0, k_apart]), xytext=(text_x, 0.3),
                    ha="center", fontsize=8, arrowprops={"arrowstyle": "->", "lw": 0.7})
    ax.set(xlabel="distance k", ylabel="cosine of PE_p and PE_(p+k)", ylim=(0, 1.05),
           title=f"row 0 of the map below (the same for every p), d = {d}")
    ax.grid(True, color="0.9")
    fig
    """),
    code("""
    viz.position_similarity(F.sinusoidal_positional_encoding(24, 16), normalize=True, vmin=0, vmax=1, cmap="viridis")
    """),
    md(r"""
    ## 6. The document's per-head "+1" (section 4.3.2)

    The document gives head 2 its own encoding, $\cos(pos/10000 + 1)$ and $\sin(pos/10000 + 1)$. Adding a
    constant to every angle turns every pair by 1 radian, at every position: $PE^2 = PE^1 M$, with $M$ the
    rotation by 1 rad. As in section 5, no dot product between two positions' encodings changes:
    $PE^2 PE^{2\top} = PE^1 M M^\top PE^{1\top} = PE^1 PE^{1\top}$. (Erratum 4 in `docs/errata.md`.)
    """),
    code("""
    ex = worked_examples.multi_head_example(seed=0)
    head_pe = ex.document_head_pe.numpy()                            # (2 heads, 3 positions, 2)
    print("head 1 PE:\\n", head_pe[0].round(4), "\\nhead 2 PE (+1):\\n", head_pe[1].round(4))
    print("angle between the heads' vectors at each position (rad):", np.round(ex.head_pe_rotation, 4))
    gram = head_pe @ head_pe.transpose(0, 2, 1)                       # (2, 3, 3): PE_p . PE_q per head
    print(f"max |PE^1 PE^1^T - PE^2 PE^2^T| = {np.abs(gram[0] - gram[1]).max():.1e}")
    """),
    md(r"""
    The scores do change. The document adds each head's encoding to the same embeddings $E$, and

    $$ (E + PE)(E + PE)^\top = EE^\top + E\,PE^\top + PE\,E^\top + PE\,PE^\top: $$

    the cross terms $E\,PE^\top$ compare embeddings with positions, and turning the positions changes them.
    What does not change is what a head can do: $E + PE^1 M = (E M^\top + PE^1)\, M$, so head 2 is head 1
    applied to the embeddings turned by $-1$ rad, its output turned back by $M$. That uses
    $\mathrm{head}(YM) = \mathrm{head}(Y)\,M$, true of this head because its scores do not see the turn,
    $(YM)(YM)^\top = Y M M^\top Y^\top = YY^\top$ for the orthogonal $M$, so its weights are the same and its
    output, the weights times $YM$, is turned by $M$; and true only because this head has no projections
    ($YMW^Q \ne YW^Q M$ in general). Check it on the first two columns of the example's embeddings, with the
    document's formulas (no projections, divisor $\sqrt 3$):
    """),
    code("""
    def head(X):                                                     # softmax(X X^T / sqrt(3)) X, no W_i
        s = X @ X.T / np.sqrt(3)
        w = np.exp(s - s.max(-1, keepdims=True))
        return w / w.sum(-1, keepdims=True) @ X

    E = ex.document_embeddings.numpy()                               # (3, 2)
    M = np.array([[np.cos(1), np.sin(1)], [-np.sin(1), np.cos(1)]])  # (cos a, sin a) M = (cos(a+1), sin(a+1))
    X1, X2 = E + head_pe[0], E + head_pe[1]
    print(f"max |PE^2 - PE^1 M| = {np.abs(head_pe[1] - head_pe[0] @ M).max():.1e}")
    print(f"max |scores^1 - scores^2| = {np.abs(X1 @ X1.T - X2 @ X2.T).max() / np.sqrt(3):.3f}   "
          f"max |head_1 - head_2| = {np.abs(head(X1) - head(X2)).max():.3f}")
    print(f"max |head_2(E) - head_1(E M^T) M| = {np.abs(head(X2) - head(E @ M.T + head_pe[0]) @ M).max():.1e}")
    """),
    md(r"""
    Taken one at a time, with learned embeddings, neither head can represent anything the other cannot (up
    to that fixed turn of the output, which $W^O$ absorbs): the "+1" only makes head 2 read the same
    embeddings at another angle to the position. The paper has no per-head encodings at all: one $PE$ is
    added to the embeddings, before any head, and `multi_head_example` does the same, which is why its two
    heads without projections (notebook 03) are identical.

    ## 7. Fixed or learned

    The document's section 4.2.3 says "positional encoding vectors are learned during the training
    process". The formula of its section 4.1.3 is **fixed**: nothing in it is trained. A *learned positional
    embedding* (BERT, GPT-2) is a different, also common choice: a trainable table with one free row per
    position. The paper tried both, found nearly the same results (its Table 3, row E), and kept the
    sinusoids because they may extrapolate to longer sequences (erratum 5 in `docs/errata.md`). In this
    library both exist. Mind their arguments' order: `SinusoidalPositionalEncoding(d_model, max_len)` (the
    formula's width first, as PyTorch's tutorial) but `LearnedPositionalEmbedding(max_len, d_model)` (its table's
    shape, as `Embedding(num_embeddings, d_model)`). Keywords, as below, say which is which; an input as wide as
    `max_len` is refused as a likely swap.
    """),
    code("""
    d_model, max_len = 512, 1024
    fixed = nn.SinusoidalPositionalEncoding(d_model=d_model, max_len=max_len)
    learned = nn.LearnedPositionalEmbedding(max_len=max_len, d_model=d_model)
    print(f"SinusoidalPositionalEncoding({d_model}, {max_len}):  {fixed.num_parameters():>9,} parameters")
    print(f"LearnedPositionalEmbedding({max_len}, {d_model}):    {learned.num_parameters():>9,} parameters"
          " (max_len x d_model)")

    x = mt.zeros(1, 4, d_model)
    print("both add to x (batch, seq, d_model):", fixed(x).shape, learned(x).shape)
    print("the formula has a row for any position, e.g. 5000:",
          F.sinusoidal_positional_encoding(5001, 8).numpy()[5000].round(3))
    try:
        learned(mt.zeros(1, max_len + 1, d_model))
    except ValueError as err:
        print("ValueError:", err)
    """),
    md(r"""
    ## Exercises

    The cell after this one defines `check_ex1` to `check_ex5`, one per exercise: each computes the right
    answer itself and raises an `AssertionError` that says what is wrong, or prints that your answer is right.

    1. Recompute section 1 with positions counted from 1, as the document does. Which row of the library's
       table equals your first row? Check both with `check_ex1(PE_from_1, row)`.
    2. Find $R_k$ for a *negative* offset $k = -3$ and check $PE_{p-3} = PE_p R_{-3}$, then with
       `check_ex2(R)`. How is $R_{-3}$ related to $R_3$? (Answer: it is $R_3^\top = R_3^{-1}$, each pair
       turned back by the same angle.)
    3. Redo section 2 with a learned positional embedding (`nn.LearnedPositionalEmbedding`) freshly
       initialised. Does it break the permutation symmetry too? Why? Check your measurement, the largest
       difference as in section 2, with `check_ex3(pos_emb, gap)`. (Answer: yes, since each position has its
       own row, but barely at first: the rows start small; training makes them what helps.)
    4. Plot `viz.position_similarity` with `d_model = 4` and 100 positions. Why are far-apart positions
       sometimes *more* alike than near ones (as in section 5 at $d = 16$, but far more so here), and how
       does a larger $d_\text{model}$ help? Check the distance $k \ge 1$ at which a position is most like
       position 0 with `check_ex4(k)`, and at $d = 16$ with `check_ex4(k, d_model=16)`. (Answer: a distance
       that brings the fast pair nearly round while the slow one has hardly turned gives almost the same
       vector; with more pairs, all must come round together, which is far rarer.)
    5. The base 10000 sets the longest wavelength. Try base 100 on a 500-position table, $d = 16$, with your
       NumPy code of section 1 (`F.sinusoidal_positional_encoding` has no base argument): what goes wrong
       in `position_similarity`? Check your table with `check_ex5(PE_100)`. (Answer: the slowest pair's
       wavelength, $2\pi \cdot 100^{14/16}$, is under 400 positions: far-apart positions come round to
       nearly the same encoding.)
    """),
    code("""
    def _table(positions, d, base=10000):
        \"\"\"The formula's rows for `positions` (the checks' own NumPy, not yours): (len(positions), d).\"\"\"
        angle = np.asarray(positions, dtype=float)[:, None] / base ** (np.arange(0, d, 2) / d)
        table = np.zeros((len(angle), d))
        table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
        return table


    def _array(a):
        return a.numpy() if isinstance(a, mt.Tensor) else np.asarray(a)


    def check_ex1(PE_from_1, row):
        \"\"\"Exercise 1: the table for positions 1, 2, ...; the row of the library's table equal to its first.\"\"\"
        table = _array(PE_from_1)
        n, d = table.shape
        assert not np.allclose(table, _table(np.arange(n), d)), "check_ex1: that table counts positions from 0"
        assert np.allclose(table, _table(np.arange(1, n + 1), d)), \\
            f"check_ex1: that is not the formula for positions 1 to {n}, d = {d}"
        library = F.sinusoidal_positional_encoding(n + 1, d, dtype="float64").numpy()
        [want] = [r for r in range(n + 1) if np.allclose(library[r], table[0])]
        assert int(row) == want, f"check_ex1: row {row} of the library's table is not your first row"
        print("check_ex1: right")


    def check_ex2(R):
        \"\"\"Exercise 2: R_(-3), (d, d), such that PE_(p-3) = PE_p R for every position p.\"\"\"
        R = _array(R)
        PE = _table(np.arange(60), R.shape[0])                          # (60, d)
        assert not np.allclose(PE[:-3] @ R, PE[3:]), "check_ex2: that is R_3: it takes PE_p to PE_(p+3)"
        bad = np.abs(PE[3:] @ R - PE[:-3]).max(axis=1)                  # (57,): per p = 3, 4, ...
        assert bad.max() < 1e-9, (f"check_ex2: PE_p R is not PE_(p-3), e.g. at p = {bad.argmax() + 3} (max "
                                  f"difference {bad.max():.2g})")
        print("check_ex2: right, PE_(p-3) = PE_p R for p = 3 to 59")


    def check_ex3(pos_emb, gap):
        \"\"\"Exercise 3: section 2's max |f(X[perm] + P) - f(X)[perm] with P| for your fresh learned table P.\"\"\"
        length, width = X.shape
        P = mt.tensor(pos_emb.weight.numpy()[:length].astype(np.float64))   # (L, d_model): its first rows
        out, out_perm = mha(X + P)[0].numpy(), mha(X[perm] + P)[0].numpy()
        want = np.abs(out_perm - out[perm]).max()
        moved = np.abs(mha(X[perm] + P[perm])[0].numpy() - out[perm]).max()   # positions moved with their tokens
        assert not (np.isclose(gap, moved, rtol=1e-3) and not np.isclose(gap, want, rtol=1e-3)), \\
            "check_ex3: the positions moved with the tokens (X[perm] + P[perm]); keep them in place, X[perm] + P"
        assert np.isclose(gap, want, rtol=1e-3), (f"check_ex3: not what this table gives: {gap:.3g} is "
                                                 f"{'too large' if gap > want else 'too small'}")
        print("check_ex3: right")


    def check_ex4(k, d_model=4, n=100):
        \"\"\"Exercise 4: the distance k >= 1 at which the cosine of PE_0 and PE_k is largest, n positions.\"\"\"
        cosine = _table(np.arange(n), d_model) @ _table([0], d_model)[0] / (d_model / 2)   # (n,): row 0 of the map
        want = int(cosine[1:].argmax()) + 1
        assert 1 <= int(k) < n, f"check_ex4: a distance from 1 to {n - 1}, not {k}"
        assert int(k) == want, (f"check_ex4: at d_model = {d_model}, positions {k} apart have cosine "
                                f"{cosine[int(k)]:.3f}; another distance has a larger one")
        print(f"check_ex4: right, at d_model = {d_model}")


    def check_ex5(PE_100):
        \"\"\"Exercise 5: the 500-position table with base 100, d = 16.\"\"\"
        table = _array(PE_100)
        n, d = table.shape
        assert (n, d) == (500, 16), f"check_ex5: the table is (500, 16); yours is {table.shape}"
        assert not np.allclose(table, _table(np.arange(n), d)), "check_ex5: that is the table of base 10000"
        assert np.allclose(table, _table(np.arange(n), d, base=100)), "check_ex5: that is not the formula with base 100"
        print("check_ex5: right")
    """),
]
