"""Notebook 10_character_language_model: its cells, built by ``tools/make_notebooks.py``."""

from .cells import ONE_BLAS_THREAD, SETUP, code, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "3.19 2.21": "docs/training.md's run of `minitransformer train --task charlm --steps 300` (the task's rate and "
                 "warm-up): its bits per character and its loss",
    "2.30 2.00": "exercise 2's answer: the add-one, add-0.1 and add-0.01 trigrams' validation cross-entropy, "
                 "counted as section 3 counts the bigram (deterministic; 2.299, 2.001, 2.000)",
    "1.90": "exercise 2's answer: the 1,000-step run of docs/training.md, its val_loss",
    "0.11": "a difference: the loss of the training page's 300-step run, 2.21, less this notebook's printed 2.097",
}

CELLS = [
    md(r"""
    # 10 · A character language model: a decoder-only Transformer writes text

    **What this notebook teaches.** The Transformer's decoder on its own, without an encoder and without
    cross-attention, trained to predict the **next character** of a text: the recipe of GPT, on 32 KB of
    English that ships with the library. The model reads characters $x_0 \ldots x_t$ and scores every
    character of the vocabulary as $x_{t+1}$:

    $$
    p_\theta(\,\cdot \mid x_{\le t}) = \mathrm{softmax}(z_t), \qquad
    z = \mathrm{LayerNorm}\big(\mathrm{Decoder}(E[x]\sqrt{d_\text{model}} + PE)\big)\, W_\text{out} + b_\text{out},
    $$

    and it is trained to make the right next character likely, at every position $t$ of a window of
    $T$ characters at once; the loss is the mean cross-entropy, and its exponential the *perplexity*:

    $$
    \mathcal{L}(\theta) = -\frac{1}{T} \sum_{t=0}^{T-1} \log p_\theta(x_{t+1} \mid x_{\le t}), \qquad
    \mathrm{perplexity} = e^{\mathcal{L}} .
    $$

    The decoder's self-attention is causal (paper 3.2.3): position $t$ sees positions $\le t$ only, so one
    window of $T$ characters is $T$ training examples.

    Steps: **1** the text and its characters, the train/validation split · **2** the objective: one batch,
    $y$ = $x$ shifted by one, the loss by hand · **3** baselines to beat, by counting: unigram and bigram ·
    **4** the causal mask: later characters change nothing · **5** training with `train.Trainer`, the curves
    against the baselines · **6** sampling: greedy, temperature, top-$k$ · **7** the context trap: a model
    trained on windows of 64 characters, made to read 128 · **8** what the heads look at ·
    **9** what the source document says.

    The formulas, their code and checks: [embedding](../docs/formulas/embedding.md),
    [positional encoding](../docs/formulas/positional-encoding.md), [masks](../docs/formulas/masks.md),
    [attention](../docs/formulas/attention.md), [multi-head attention](../docs/formulas/multi-head-attention.md),
    [layer norm](../docs/formulas/layer-norm.md), [feed-forward](../docs/formulas/feed-forward.md),
    [cross-entropy](../docs/formulas/cross-entropy.md), [Adam](../docs/formulas/adam.md),
    [the schedule](../docs/formulas/schedule.md).
    """),
    SETUP,
    *ONE_BLAS_THREAD,
    md(r"""
    ## 1. The text and its characters

    `load_corpus("tiny")` is the corpus shipped inside the package (public-domain poems, speeches and
    openings of novels, retold fables and short pieces written for the package; the list is in
    `minitransformer/data/corpus.py`). `CharTokenizer` gives every distinct character an id, after the four
    special tokens every vocabulary of the library has. `split_corpus` keeps the last 10% of the text, cut
    at a line start, for validation: a contiguous piece, so the model cannot score well on it by
    remembering neighbouring characters from training.
    """),
    code("""
    from minitransformer.data import CharTokenizer, load_corpus, split_corpus

    text = load_corpus("tiny")
    train_text, val_text = split_corpus(text, val_fraction=0.1)     # train_text + val_text == text
    tok = CharTokenizer.from_text(text)
    V = tok.vocab_size
    print(f"{len(text):,} characters in {len(text.splitlines()):,} lines, {len(set(text))} distinct:")
    print(repr("".join(tok.itos[4:])))
    print(f"vocabulary: V = {V} ids = the specials {tok.itos[:4]} + the {len(set(text))} characters")
    print(f"training text {len(train_text):,} characters, validation text {len(val_text):,} "
          f"({len(val_text) / len(text):.1%}); every validation character occurs in training:",
          set(val_text) <= set(train_text))
    """),
    code("""
    print("the first lines:")
    print("\\n".join(text.splitlines()[:6]))
    print("\\nthe validation text starts:")
    print(val_text[:240])
    """),
    code("""
    train_ids = np.asarray(tok.encode(train_text))                  # (29417,) int ids
    val_ids = np.asarray(tok.encode(val_text))                      # (3244,)
    print("train_ids", train_ids.shape, train_ids.dtype, " val_ids", val_ids.shape)
    print("'The sea' ->", tok.encode("The sea"), "->", repr(tok.decode(tok.encode("The sea"))))
    """),
    md(r"""
    ## 2. The objective: the next character, at every position

    `make_lm_batch` cuts `batch_size` windows of $T$ = `seq_len` characters at random offsets of the training
    text. The input $x$ (`tgt_in`) is the window; the target $y$ (`tgt_out`) is the same window moved one
    character on, so $y_t = x_{t+1}$: at every position the right answer is the character that follows.
    """),
    code("""
    from minitransformer.data import make_lm_batch

    b = make_lm_batch(train_ids, seq_len=16, batch_size=4, rng=0)
    x, y = b.tgt_in.numpy(), b.tgt_out.numpy()                       # (B, T) each
    print("x = tgt_in", b.tgt_in.shape, "  y = tgt_out", b.tgt_out.shape, "  tgt_mask", b.tgt_mask.shape,
          "(causal)")
    for row_x, row_y in zip(x[:2], y[:2]):
        print(f"  x: {tok.decode(row_x)!r}\\n  y: {tok.decode(row_y)!r}")
    assert (y[:, :-1] == x[:, 1:]).all()                              # y is x shifted by one
    print("y[:, :-1] == x[:, 1:]: y is x shifted by one character")
    """),
    md(r"""
    The model and everything around it come from `train.tasks.build("charlm", ...)`: an `nn.DecoderOnlyLM`
    with the task's defaults ($d_\text{model} = 64$, 4 heads, 2 layers, $d_{ff} = 256$, pre-LN, no dropout,
    a sinusoidal positional table of `max_len` = 128 rows, trained on windows of `seq_len` = 64 characters),
    the paper's Adam, a warm-up-then-cosine schedule, the loss and the evaluation on the validation text.
    The run is shortened to 300 steps, with a 30-step warm-up and a peak rate of $5 \cdot 10^{-3}$ (the
    task's defaults: 1000 steps, 100 of warm-up, $2 \cdot 10^{-3}$), so that it trains in well under a minute.

    Its logits for the batch above, and the loss written out in NumPy: a log-softmax over the vocabulary,
    the log-probability of the right next character at each position, the mean of their negatives.
    """),
    code("""
    from minitransformer.train.tasks import DEFAULTS, build

    steps = 300
    setup = build("charlm", steps=steps, warmup=30, lr=5e-3)           # seed 0: the initial weights, the batches
    model, s = setup.model, setup.settings
    print({k: s[k] for k in ("d_model", "heads", "layers", "d_ff", "norm_first", "dropout", "seq_len", "max_len",
                             "batch_size", "steps", "warmup", "lr")})
    print("the task's defaults:", {k: DEFAULTS["charlm"][k] for k in ("steps", "warmup", "lr")})
    print(f"{type(model).__name__}, {model.num_parameters():,} parameters")

    logits = model(b.tgt_in)                                          # (B, T, V)
    print("logits", logits.shape, "= (batch, positions, vocabulary)")
    """),
    code("""
    z = logits.numpy().astype(np.float64)                             # (B, T, V)
    log_p = z - z.max(axis=-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=-1, keepdims=True))        # log softmax over the V characters
    nll = -np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]   # (B, T): -log p(x_{t+1} | x_<=t)
    loss_numpy = nll.mean()                                           # the mean over all B * T positions
    print("-log p per position", nll.shape, "  loss (NumPy)", round(loss_numpy, 5))
    print("F.cross_entropy     ", round(F.cross_entropy(logits, b.tgt_out).item(), 5))
    print("setup.loss_fn       ", round(setup.loss_fn(model, b).item(), 5))
    np.testing.assert_allclose(loss_numpy, F.cross_entropy(logits, b.tgt_out).item(), rtol=1e-5)
    np.testing.assert_allclose(loss_numpy, setup.loss_fn(model, b).item(), rtol=1e-5)
    print(f"untrained: {loss_numpy:.3f} nats, more than ln V = ln {V} = {np.log(V):.3f}, the loss of a uniform guess;")
    print(f"the initial logits of a position spread with a standard deviation of {z.std(axis=-1).mean():.2f}")
    """),
    md(r"""
    **Why the untrained loss is above $\ln V$.** With $\bar z$ the mean of a position's $V$ logits, its loss
    is the sum of two terms:

    $$
    -\log p(y) = \Big(\log \sum_v e^{z_v} - \bar z\Big) + \big(\bar z - z_y\big) .
    $$

    The first depends on the spread of the logits alone. For $V$ logits drawn independently from
    $\mathcal N(\bar z, \sigma^2)$ the sum is about $V$ times the mean of $e^{z}$, so
    $\log \sum_v e^{z_v} \approx \ln V + \ln \mathrm E[e^{z}] = \ln V + \bar z + \sigma^2/2$ (the mean of a
    log-normal): the first term is about $\ln V + \sigma^2/2$, whatever the targets. The second is how far
    the right character's logit lies below the mean: 0 on average if it were any one of the $V$ at random.
    Both terms, for the batch above and for the validation text as section 5's evaluation cuts it (its 50
    consecutive windows of 64):
    """),
    code("""
    def loss_parts(z, y):
        \"\"\"The mean loss of logits z (..., V) for targets y (...), its two terms, ln V + sigma^2 / 2 (sigma per
        position), and the second term with z_y - mean z replaced by its character's mean over the positions.\"\"\"
        lse = z.max(-1) + np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1))   # (...) log sum_v e^{z_v}
        z_y = np.take_along_axis(z, y[..., None], axis=-1)[..., 0]               # (...) the right character's logit
        z_mean = z.mean(-1)                                                      # (...)
        offset = (z - z_mean[..., None]).reshape(-1, z.shape[-1]).mean(0)       # (V,) each character's offset
        return ((lse - z_y).mean(), (lse - z_mean).mean(), (z_mean - z_y).mean(),
                np.log(z.shape[-1]) + (z.std(-1) ** 2).mean() / 2, -offset[y].mean())


    n_val = (len(val_ids) - 1) // s["seq_len"]                      # the windows setup.eval_fn reads
    win = np.arange(n_val)[:, None] * s["seq_len"] + np.arange(s["seq_len"])   # (50, 64) positions in val_ids
    with mt.no_grad():
        z_val = model(mt.tensor(val_ids[win])).numpy().astype(np.float64)      # (50, 64, V)
    print("loss = first term (log sum e^z - mean z) + second term (mean z - z_y), means over the positions")
    print("                        loss   first  second   ln V + sigma^2/2   second, z_y at its character's offset")
    for name, (zz, yy) in (("the batch, 4 x 16", (z, y)), ("validation, 50 x 64", (z_val, val_ids[win + 1]))):
        loss, spread, below, estimate, by_offset = loss_parts(zz, yy)
        print(f"  {name:20} {loss:6.3f} {spread:7.3f} {below:7.3f} {estimate:18.3f} {by_offset:38.3f}")
    np.testing.assert_allclose(loss_parts(z_val, val_ids[win + 1])[0], setup.eval_fn(model)["val_loss"], rtol=1e-5)
    """),
    md(r"""
    On both, the first term is what $\ln V + \sigma^2/2$ says (4.736 against 4.748 on the batch, 4.718
    against 4.712 on the validation text); the two losses differ in the second: on the batch the right
    character's logit lies 0.433 below the mean, on the validation text 0.110. At initialisation the logits
    are **correlated across positions**: the hidden vectors of different positions are alike, so each
    character's logit, their product with that character's output weights, carries an offset of its own,
    much the same at every position. A frequent character that starts low costs at every position where it
    is the answer: replacing $z_y$ by that character's mean logit over the positions (its offset, last
    column) gives almost the same second term. The batch's 64 predictions, from 4 short stretches of text,
    are more at the mercy of those offsets than the validation text's 3,200.
    """),
    md(r"""
    ## 3. Baselines to beat, by counting

    Two models that need no training, fitted by counting characters in the training text and scored on the
    validation text, with the same measure as the Transformer: the mean of $-\log p(x_{t+1} \mid \ldots)$
    in nats per character.

    * **Unigram**: every character from its frequency alone, $p(c) = \mathrm{count}(c) / N$, whatever came
      before. On the text it was counted on, its cross-entropy is the entropy of the frequencies,
      $H = -\sum_c p_c \ln p_c$ (the library's `unigram_entropy`); on text held out from the counting it is
      the library's `unigram_cross_entropy`, the baseline the `charlm` task reports its validation loss against.
    * **Bigram**: the next character from the one before, $p(b \mid a) = \mathrm{count}(a\,b) /
      \mathrm{count}(a)$. A pair never seen in training would get probability 0 and an infinite loss, so
      both models are smoothed by **add-one** (Laplace): every count gets 1 more, over the same $V$ = 71
      outcomes as the Transformer's softmax (the four specials never occur, so they keep only that 1).
    """),
    code("""
    from minitransformer.data import unigram_cross_entropy, unigram_entropy

    freq = np.bincount(tok.encode(text), minlength=V) / len(text)     # (V,) frequencies in the whole text
    H = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    print(f"entropy of the whole text's character frequencies: {H:.4f} nats; unigram_entropy(text) = "
          f"{unigram_entropy(text):.4f}")
    np.testing.assert_allclose(H, unigram_entropy(text), rtol=1e-12)

    counts = np.bincount(train_ids, minlength=V)                      # (V,) in the training text
    p_uni = (counts + 1) / (counts.sum() + V)                         # add-one
    ce_uni = -np.log(p_uni[val_ids]).mean()
    np.testing.assert_allclose(ce_uni, unigram_cross_entropy(train_text, val_text, tok.itos), rtol=1e-12)

    pairs = np.zeros((V, V))
    np.add.at(pairs, (train_ids[:-1], train_ids[1:]), 1)              # pairs[a, b] = count of "a b"
    p_bi = (pairs + 1) / (pairs + 1).sum(axis=1, keepdims=True)       # (V, V): row a is p(. | a), add-one
    ce_bi = -np.log(p_bi[val_ids[:-1], val_ids[1:]]).mean()

    print("\\non the validation text   cross-entropy   perplexity")
    for name, ce in (("uniform, 1 / V", np.log(V)), ("unigram, add-one", ce_uni), ("bigram, add-one", ce_bi)):
        print(f"  {name:22} {ce:9.3f} nats {np.exp(ce):10.1f}")
    print(f"(the validation text's own frequencies have entropy {unigram_entropy(val_text):.3f}: "
          f"it is a little more predictable than the whole text)")
    """),
    md(r"""
    The perplexity reads as a number of choices: a model with perplexity 10.9 is, on average, as unsure
    as if it picked uniformly among 10.9 characters. Knowing only the previous character, the bigram
    model cuts the 71 of a uniform guess and the 19.6 of the unigram to 10.9. A few of its rows (`_` is the
    space, `\n` the line break), and both models as pictures:
    """),
    code("""
    from matplotlib.figure import Figure


    def show(c):
        \"\"\"A character as a tick label, the space and the line break made visible.\"\"\"
        return {" ": "_", "\\n": "\\\\n"}.get(c, c)

    for a in (" ", "q", "t", "."):
        top = np.argsort(p_bi[tok.stoi[a]])[::-1][:4]
        print(f"after {show(a):2} ({counts[tok.stoi[a]]:4} times in training):",
              "  ".join(f"{show(tok.itos[c]):2} {p_bi[tok.stoi[a], c]:.2f}" for c in top))

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_uni, ax_bi = fig.subplots(1, 2, width_ratios=[1.3, 1])
    order = np.argsort(freq)[::-1][:25]
    ax_uni.bar(range(25), freq[order])
    ax_uni.set_xticks(range(25), [show(tok.itos[c]) for c in order])
    ax_uni.set_title("unigram: the 25 most frequent characters")
    ax_uni.set_ylabel("frequency")
    letters = [tok.stoi[c] for c in " abcdefghijklmnopqrstuvwxyz"]
    im = ax_bi.imshow(p_bi[np.ix_(letters, letters)], cmap="viridis")
    ax_bi.set_xticks(range(27), list("_abcdefghijklmnopqrstuvwxyz"))
    ax_bi.set_yticks(range(27), list("_abcdefghijklmnopqrstuvwxyz"))
    ax_bi.set_xlabel("next character b")
    ax_bi.set_ylabel("character a")
    ax_bi.set_title("bigram p(b | a) ('_' is the space)")
    fig.colorbar(im, ax=ax_bi, shrink=0.9)
    fig
    """),
    md(r"""
    Add-one is crude where counts are small: "q" occurs 15 times in the training text, always before "u",
    yet the 71 added counts leave "u" a probability of only 0.19 after it. Where counts are large (the
    space, "t") it changes little: after "t", "h" has 0.37.

    ## 4. The causal mask: one window is $T$ examples

    The decoder hides every later position from every query (paper 3.2.3; the
    [masks](../docs/formulas/masks.md) page), so the logits at position $t$ are a function of
    $x_0 \ldots x_t$ alone. That is what makes the loss of section 2 honest (position $t$ cannot read the
    answer $x_{t+1}$, which is its input at position $t + 1$) and efficient: one forward pass over a window
    of $T$ characters gives $T$ predictions, each from its own prefix, so a batch of 32 windows of 64 is
    2048 training examples.

    The check, for every $t$ at once: row $t$ of a batch is one validation window whose characters after
    position $t$ are replaced by random ones. The logits at positions $\le t$ must not change at all; those
    after $t$ may. (It holds for any weights; this is the untrained model.)
    """),
    code("""
    T = s["seq_len"]                                                  # 64
    window = val_ids[:T]                                              # (T,)
    rng = np.random.default_rng(0)
    changed = np.tile(window, (T, 1))                                 # (T, T): row t changes positions > t
    for t in range(T):
        changed[t, t + 1:] = rng.integers(4, V, T - t - 1)
    with mt.no_grad():                                                # both (T, T): the same arithmetic
        z_same = model(mt.tensor(np.tile(window, (T, 1)))).numpy()   # (T, T, V): the window T times
        z_changed = model(mt.tensor(changed)).numpy()                 # (T, T, V)
    change = np.abs(z_changed - z_same).max(axis=-1)                  # (T, T): [t, position] largest change
    before = np.tril(np.ones((T, T), dtype=bool))                     # positions <= t
    print("largest change of a logit at positions <= t:", change[before].max())
    print("at positions > t:  smallest", change[~before].min().round(4), " largest", change[~before].max().round(3))
    assert change[before].max() == 0.0
    """),
    code("""
    import matplotlib

    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    ax = fig.subplots()
    magma = matplotlib.colormaps["magma"].with_extremes(bad="0.8")    # the masked cells: light grey
    im = ax.imshow(np.ma.masked_equal(change, 0.0), cmap=magma, vmin=0)   # exact zeros masked, small values dark
    ax.set_xlabel("position whose logits are read")
    ax.set_ylabel("t: characters after t replaced")
    ax.set_title("largest change of a logit (grey: exactly 0)")
    fig.colorbar(im, ax=ax, shrink=0.9)
    fig
    """),
    md(r"""
    Below the diagonal (and on it) the change is exactly 0: no later character reaches an earlier position.
    The source document's section 3.1 says self-attention computes its weights "based on all information in
    the input sequence when generating each output". That holds for the encoder; a decoder that generates
    may use only what it has already generated, and the picture above is that restriction.

    ## 5. Training

    `train.Trainer` runs the loop of notebook 05 (forward, loss, `backward()`, clip, Adam step, schedule) on
    the task's batches, `setup.train_data(step)`: 32 random training windows of 64 characters, seeded by the
    step. Every 50 steps it measures the loss on the validation text cut into 50 consecutive windows of 64
    (3,200 of its 3,243 predictions; `setup.eval_fn`). This is the notebook's longest cell (the time is
    printed).
    """),
    code("""
    from minitransformer.train import Trainer

    val_at_0 = setup.eval_fn(model)["val_loss"]                       # before the first step
    trainer = Trainer(model, setup.optimizer, setup.loss_fn, schedule=setup.schedule, clip=s["clip"],
                      eval_fn=setup.eval_fn, eval_every=50, desc="charlm")
    history = trainer.fit(setup.train_data, steps=steps)
    history["val_loss"].insert(0, [0, val_at_0])
    print(f"{trainer.step} steps in {trainer.elapsed:.1f} s")
    """),
    code("""
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, label in (("train_loss", "training loss (mean of 10 steps)"), ("val_loss", "validation loss")):
        step_, value = np.array(history[name]).T
        ax.plot(step_, value, marker="." if name == "val_loss" else None, label=label)
    for ce, name, style in ((np.log(V), f"uniform, ln {V}", "-."), (ce_uni, "unigram", "--"), (ce_bi, "bigram", ":")):
        ax.axhline(ce, color="0.4", linestyle=style, linewidth=1, label=f"{name} on the validation text, {ce:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy, nats per character")
    ax.set_ylim(1.8, 5.5)
    ax.grid(True, color="0.9")
    ax.legend()
    fig
    """),
    code("""
    print("validation loss:", [(step_, round(v, 3)) for step_, v in history["val_loss"]])
    final = setup.final_metrics(model)
    print(f"validation loss {final['val_loss']:.3f} nats, perplexity {final['val_perplexity']:.2f}, "
          f"{final['val_bits_per_char']:.3f} bits per character")
    print(f"bigram          {ce_bi:.3f} nats, perplexity {np.exp(ce_bi):.2f}, {ce_bi / np.log(2):.3f} bits per "
          "character")
    np.testing.assert_allclose(final["val_bits_per_char"], final["val_loss"] / np.log(2), rtol=1e-12)   # nats / ln 2
    np.testing.assert_allclose(final["val_perplexity"], 2 ** final["val_bits_per_char"], rtol=1e-12)  # e^loss = 2^bits
    passed = next(step_ for step_, v in history["val_loss"] if v < ce_bi)
    print(f"the validation loss was first below the bigram's at step {passed}; the last training loss "
          f"(mean of steps 291-300) {history['train_loss'][-1][1]:.3f}")
    """),
    md(r"""
    The figures here are those of the run shown; a run of yours may differ in the last digits, as float32
    rounding differs between machines and library versions. The untrained model starts above the uniform guess
    (4.829 on the validation text, against ln 71 = 4.263; section 2 splits it in two). Both losses pass the
    unigram line within the first 50 steps; the validation loss is below the bigram's from step 100 on and
    ends at 2.097 nats, a perplexity of 8.15 against the bigram's 10.93. The training loss ends a little
    lower, 1.996: the model fits the text it trains on slightly better than text it has not seen.

    **The same loss in other units.** *Bits per character* (`val_bits_per_char`) is the loss in bits,
    nats divided by $\ln 2$: 2.097 nats are 3.026 bits per character. Where a token is not one character
    (the task's `tokenizer=bpe`), the loss per token is first divided by the characters per token, so
    that models with different tokens can be compared. The perplexity is $e^{\text{loss}} = 2^{\text{bits}}$
    (for characters), 8.15 here. `docs/training.md` reports 3.19 bits per character (2.21 nats) for
    `minitransformer train --task charlm --steps 300`: the same model, seed and 300 steps, but the task's
    default peak rate and warm-up, $2 \cdot 10^{-3}$ over 100 steps, where this notebook uses
    $5 \cdot 10^{-3}$ over 30 (section 2). In so short a run the faster start is worth 0.11 nats; the
    command line with `--lr 5e-3 --warmup 30` gives this notebook's 2.097.
    """),
    md(r"""
    ## 6. Sampling: greedy, temperature, top-$k$

    `train.generate` writes one character at a time: it runs the model on the text so far, takes the last
    position's logits $z$ and picks the next character from $\mathrm{softmax}(z / \tau)$, $\tau$ the
    temperature (notebook 08, section 6, draws the same distribution by hand). $\tau = 0$ is greedy, the
    arg-max; $\tau < 1$ sharpens the distribution, $\tau > 1$ flattens it; top-$k$ draws only among the $k$
    likeliest characters. `context=64`: the model reads at most the 64 positions it was trained on
    (section 7 shows why). When the text outgrows them, `generate` does not slide a window of 64 along it:
    it starts again from the text's last 32 characters (`context // 2`), refilling its key/value cache, and
    reads from 32 up to 64 positions until the next restart. Every sample starts from the prompt "The "; as a
    rough measure of sense, the share of its words of 3 letters or more that occur in the training text is
    printed.
    """),
    code("""
    import re
    from collections import Counter

    from minitransformer.train import generate

    known = set(re.findall(r"[a-z]+", train_text.lower()))

    def known_share(sample):
        \"\"\"The share of the sample's words of 3 letters or more that occur in the training text.\"\"\"
        words = re.findall(r"[a-z]{3,}", sample.lower())
        return np.mean([w in known for w in words]) if words else np.nan

    prompt = mt.tensor([tok.encode("The ")])                           # (1, 4)
    greedy = tok.decode(generate(model, prompt, 200, temperature=0.0, context=T).numpy()[0])
    words = greedy.split()
    print(f"greedy (temperature 0):\\n{greedy!r}")
    print(f"{len(words)} words, {len(set(words))} different; the commonest:", Counter(words).most_common(4))
    """),
    code("""
    prompts = mt.tensor([tok.encode("The ")] * 8)                     # (8, 4): eight samples at once
    for tau, k in ((0.5, None), (0.8, None), (1.0, None), (1.2, None), (1.0, 5)):
        mt.manual_seed(0)                                             # the same random numbers for each setting
        out = generate(model, prompts, 200, temperature=tau, top_k=k, context=T)   # (8, 204)
        texts = [tok.decode(row) for row in out.numpy()]
        print(f"temperature {tau}" + (f", top-{k}" if k else "") + ": known words in the 8 samples "
              f"{np.mean([known_share(t[4:]) for t in texts]):.0%}; sample 1:\\n  {texts[0]!r}")
    """),
    md(r"""
    The samples quoted here are those of the run shown above. Where the arithmetic's last digits differ,
    the samples do too; the tendencies stay the same.

    Greedy takes the likeliest character every time, so once a stretch of text recurs, the same context
    gives the same choice again: after its first words it goes round "the", "she" and "wat" (53 words, 8
    different). Sampling leaves such cycles by chance. The temperature trades safety for variety: at 0.5
    the samples keep to common words (49% of their words of 3 letters or more occur in the training text),
    at 0.8 they invent more (30%), at 1, the model's own distribution, more still (17%), and at 1.2 (13%)
    more again, with odd capitals inside words ("BucMalld", "OFor") and stray punctuation ("hefr?", "an-;").
    Top-5 at $\tau = 1$ keeps the model's own distribution over its 5 likeliest characters and
    removes the long tail: 43% against 17% without it. The softmax gives every one of the 71 ids some
    probability, and over 200 draws the unlikely ones add up.

    ## 7. The context trap

    The model was trained on windows of `seq_len` = 64 characters, but its positional table has
    `max_len` = 128 rows, and a forward pass accepts up to 128 positions. Positions 64 to 127 never occurred
    in training. By default `generate` reads up to `max_len` positions; the command line's `train` and
    `generate` for the `charlm` task pass `context=seq_len` (`minitransformer/train/run.py`).

    **(a) The loss by position.** Windows of 128 validation characters (every 8th start), the mean loss at
    each position:
    """),
    code("""
    def loss_by_position(ids, length, stride=8, mask=None):
        \"\"\"Mean -log p(next) at each position 0 .. length - 1 over windows of ids starting every `stride`.\"\"\"
        starts = np.arange(0, len(ids) - length - 1, stride)
        win = starts[:, None] + np.arange(length)[None, :]            # (N, length) positions in ids
        with mt.no_grad():
            z = model(mt.tensor(ids[win]), mask=mask).numpy().astype(np.float64)   # (N, length, V)
        log_p = z - z.max(-1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
        return -np.take_along_axis(log_p, ids[win + 1][..., None], -1)[..., 0].mean(0), len(starts)

    model.eval()
    L_max = model.max_len                                             # 128
    by_position, n_windows = loss_by_position(val_ids, L_max)
    print(f"{n_windows} windows of {L_max}; loss at position 0: {by_position[0]:.3f}; mean loss at positions 8-63: "
          f"{by_position[8:T].mean():.3f}, at positions 64-127: {by_position[T:].mean():.3f}")
    print("in blocks of 8 positions:", by_position.reshape(-1, 8).mean(1).round(2))
    on_train, n_train = loss_by_position(train_ids, T, stride=32)
    print(f"the training text, {n_train} windows of {T}, in blocks of 8 positions:",
          on_train.reshape(-1, 8).mean(1).round(2))
    """),
    code("""
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(by_position, ".", color="C0", alpha=0.5, label="loss at each position")
    ax.plot(np.arange(4, L_max, 8), by_position.reshape(-1, 8).mean(1), color="C0", label="mean of 8 positions")
    ax.axvline(T - 0.5, color="C3", label=f"seq_len = {T}: trained on positions 0-{T - 1} only")
    ax.axhline(ce_bi, color="0.4", linestyle=":", label=f"bigram, {ce_bi:.2f}")
    ax.set_xlabel("position in a window of 128 validation characters")
    ax.set_ylabel("cross-entropy, nats")
    ax.grid(True, color="0.9")
    ax.legend(fontsize=9)
    fig
    """),
    md(r"""
    Position 0 predicts from one character, as the bigram does, and costs about as much (2.433 against the
    bigram's 2.392). From position 1 on the loss is flat at about 2.08, until it rises in the last block
    before 64 (2.18). Those positions were trained, and the rise is there on the training text too (2.10
    against 1.97 to 2.01 at positions 8 to 55): the last rows the model was trained on are already handled
    less well. From position 64 on, where training never went, it keeps climbing, through 2.46 in the
    first block to about 2.55, and stays there, worse than the bigram model: the mean over positions 64 to
    127 is 2.539, against 2.097 over positions 8 to 63.

    **(b) Generated text.** The same model, the same prompt and the same random numbers, once reading at
    most 64 positions (`context=64`: when the text outgrows 64 characters, `generate` starts again from
    the last 32), once the default, up to `max_len` = 128. Eight samples each, as one batch:
    """),
    code("""
    samples = {}
    for name, context in (("context=64", T), ("context=max_len=128", None)):
        mt.manual_seed(1)
        out = generate(model, prompts, 236, temperature=0.8, top_k=10, context=context)   # (8, 240)
        samples[name] = [tok.decode(row) for row in out.numpy()]
    a, c = samples["context=64"], samples["context=max_len=128"]
    same = [next((i for i, (p, q) in enumerate(zip(u, v)) if p != q), len(u)) for u, v in zip(a, c)]
    print("characters the two agree on, sample by sample:", same)
    for name, texts in samples.items():
        print(f"{name:20} known words: characters 4-63 {np.mean([known_share(t[4:T]) for t in texts]):.0%}, "
              f"64-239 {np.mean([known_share(t[T:]) for t in texts]):.0%}")
    for name, texts in samples.items():
        print(f"\\n{name}, sample 1:\\n{texts[0]!r}")
    """),
    md(r"""
    Until the text is 64 characters long both read the same positions, so they write the same first 65
    characters (the 65th is the last one predicted from 64 positions); in some samples a few more agree by
    chance. Then they part: with `context=64`, `generate` starts again from the last 32 characters and from
    then on reads 32 to 64 positions, all of them trained ones; the default reads the whole text, up to 128
    positions (past 128 characters it too starts again, from the last 64). The default's text falls apart:
    of its words of 3 letters or more, 23% occur in the training text, against 43% in the first 64
    characters; with `context=64`, 33% (in the run shown). Sample 1 shows it: the same 66 characters (up to
    "she wo sased f"), then "o the the at fould stil s hashe" against " weligathee arked sstilff
    lashefun".

    **Why.** Two things are new to the model at position 64 and later, and they can be told apart:

    * **rows of $PE$ it never saw.** The sinusoidal rows 64 to 127 exist (they are computed from the
      formula, not learned), but no weight was ever trained on a vector made with them. They are not just
      more of the same: a sinusoid with a period longer than 64 positions (46 of the 64 dimensions, counted
      below) has not come round by row 63, and in 20 of them (periods of 112 to 3,533 positions) rows 64
      to 127 go more than 0.1 outside the range of rows 0 to 63, by up to 1.07. The 18 fastest have come
      round and only repeat values close to those already seen; the slowest hardly move in 128 positions.
    * **more keys than in training, further back.** At position 100 a query spreads its softmax over 101
      keys, up to 100 positions back; in training it never had more than 64, at most 63 back.

    A banded mask separates the two (`model(ids, mask=...)` combines it with its own causal mask: a key
    must be allowed by both): every query may see only the last 64 positions (itself included), so
    no query has more keys than in training, but positions 64 to 127 still carry their unseen rows:
    """),
    code("""
    PE = F.sinusoidal_positional_encoding(L_max, s["d_model"]).numpy()          # (128, 64), no parameters
    low, high = PE[:T].min(axis=0), PE[:T].max(axis=0)
    excess = np.maximum(PE[T:].max(axis=0) - high, low - PE[T:].min(axis=0)).clip(0)   # (64,) how far outside
    print(f"PE {PE.shape}: rows 64-127 go outside the range of rows 0-63 by more than 0.1 in {(excess > 0.1).sum()} "
          f"of {s['d_model']} dimensions (by up to {excess.max():.2f}), by less than 0.01 in {(excess < 0.01).sum()}")
    period = 2 * np.pi * 10000 ** (2 * (np.arange(s["d_model"]) // 2) / s["d_model"])   # (64,) positions per turn
    far = excess > 0.1
    print(f"{(period > T).sum()} dimensions have a period longer than {T} positions; the {far.sum()} that go out by "
          f"more than 0.1 have periods of {period[far].min():.0f} to {period[far].max():,.0f} positions")

    i = np.arange(L_max)
    band = mt.tensor((i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - T))   # (128, 128): the last 64
    banded, _ = loss_by_position(val_ids, L_max, mask=band)
    print(f"mean loss at positions 64-127: all earlier keys {by_position[T:].mean():.3f}, "
          f"only the last 64 {banded[T:].mean():.3f};  positions 8-63: {by_position[8:T].mean():.3f}")
    """),
    md(r"""
    With at most 64 keys per query, positions 64 to 127 are no better than with all of them (2.568 against
    2.539; a little worse, perhaps because the keys the band removes are the earliest, whose rows were
    trained). Limiting the keys does not help: the unseen rows of $PE$ are enough to do all the damage. A
    second test makes it plain: windows of 64 characters, never more keys than in training, read with the
    rows shifted along the table (rows 32 to 95, or 64 to 127, in place of 0 to 63):
    """),
    code("""
    def loss_by_position_from(first_row, stride=8):
        \"\"\"loss_by_position on validation windows of T, read with rows first_row .. first_row + T - 1 of PE.\"\"\"
        starts = np.arange(0, len(val_ids) - T - 1, stride)
        win = starts[:, None] + np.arange(T)[None, :]                  # (N, T) positions in val_ids
        with mt.no_grad():
            x = model.embed(mt.tensor(val_ids[win]))                   # (N, T, d_model), scaled by sqrt(d_model)
            h = x + model.positional.PE[first_row:first_row + T].to(x.dtype_name)   # model() adds rows 0 .. T - 1
            z = model.output(model.decoder(h)).numpy().astype(np.float64)           # (N, T, V)
        log_p = z - z.max(-1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
        return -np.take_along_axis(log_p, val_ids[win + 1][..., None], -1)[..., 0].mean(0)

    np.testing.assert_allclose(loss_by_position_from(0), loss_by_position(val_ids, T)[0], rtol=1e-5)  # = model()
    for first_row in (0, 32, 64):
        print(f"rows {first_row:2}-{first_row + T - 1:3}, in blocks of 8 characters:",
              loss_by_position_from(first_row).reshape(-1, 8).mean(1).round(2))
    """),
    md(r"""
    With rows 32 to 95 the loss is about as in training for the first 24 characters, then rises at the
    same rows as before, to the same values as in the windows of 128 (2.18 at rows 56 to 63, 2.46 at rows
    64 to 71, 2.53 to 2.55 beyond), which here are characters 24 to 63 of the window, where a query has
    only 25 to 64 keys. With rows 64 to 127 it is high from the start: 2.28 in the first 8 characters, then
    2.48 to 2.62. The trap moves with the rows, not with the number of keys. (Whether more keys than in
    training would also hurt on rows the model knows, this model cannot tell: no row past 63 was trained.)

    The paper (section 3.5) chose the sinusoids because they "may allow the model to extrapolate to
    sequence lengths longer than the ones encountered during training"; for this model and this training,
    they do not. What avoids the trap: train on windows as long as the longest context used (`seq_len` =
    `max_len`), or read at most `seq_len` positions, as `generate(..., context=seq_len)` does.

    The source document's section 4.2.3 says "Positional encoding vectors are learned during the training
    process" (erratum 5 in `docs/errata.md`: its own formula 4.1.3 is the fixed sinusoids). With a learned
    table (`positional="learned"`, as GPT-2), rows 64 to 127 would not even be new sinusoids: they would
    never receive a gradient, and would keep their random initial values, drawn from
    $\mathcal N(0, 0.02^2)$: next to the embeddings, whose entries start at about ±1 after the
    $\sqrt{d_\text{model}}$ scale, almost nothing:
    """),
    code("""
    mt.manual_seed(0)
    learned = nn.DecoderOnlyLM(V, d_model=64, heads=4, d_ff=256, num_layers=2, max_len=L_max, dropout=0.0,
                               positional="learned")
    batch = make_lm_batch(train_ids, T, 32, rng=0)                     # windows of 64, as in training
    F.cross_entropy(learned(batch.tgt_in), batch.tgt_out).backward()
    grad = np.abs(learned.positional.weight.grad.numpy())              # (128, 64)
    print("sinusoidal table: parameters", model.positional.num_parameters(),
          "| learned table: parameters", learned.positional.num_parameters())
    print(f"learned table, |gradient| summed over rows 0-63: {grad[:T].sum():.3f}, over rows 64-127: {grad[T:].sum()}")
    """),
    md(r"""
    ## 8. What the heads look at

    The attention weights of the trained model's second layer, all four heads, on one line of the
    validation text (row: the query, the position predicting the next character; column: the key it reads;
    `_` is a space), drawn with the causal mask (`mask=`, as in notebook 02): the later keys, hidden, are
    hatched grey, not weights of 0. `viz.attention_layers(maps, labels, labels, mask=causal)` would draw both
    layers at once, a grid of eight maps too wide to read at a notebook's width;
    `viz.attention_heads(maps[0], labels, labels, ncols=2, mask=causal)` draws the first layer.
    """),
    code("""
    line = "it borrows it from the sea."
    assert line in val_text
    with mt.no_grad():
        model(mt.tensor([tok.encode(line)]))
    maps = [w.numpy()[0] for w in model.decoder.self_attn_weights]   # per layer (heads, L, L)
    labels = [show(c) for c in line]
    print(len(maps), "layers, weights", maps[0].shape, "(heads, queries, keys) each")
    causal = F.causal_mask(len(line))                                # (L, L): the keys each query may see
    fig = viz.attention_heads(maps[1], labels, labels, ncols=2, title=f"layer 2 on {line!r}", mask=causal)
    width, height = fig.get_size_inches()
    fig.set_size_inches(14, height * 14 / width)                     # about a notebook's width (drawn: 23 inches)
    fig
    """),
    code("""
    b_at = line.index("borrows")                                      # the position of its "b"
    print("layer 2, head 1: the weight each letter of 'borrows' gives to its 'b':")
    print("  ".join(f"{line[q]} {maps[1][0, q, b_at]:.2f}" for q in range(b_at + 1, b_at + 7)))
    """),
    md(r"""
    The first row has a single key, so its weight is 1 in every head. Head 1 has a bright column under the
    "b" of "borrows": the next four letters put 0.88 to 0.99 of their weight on the first letter of their
    word, "w" and "s" less. Heads 2 and 3 also have columns, keys read by positions several characters
    later. Head 4's bright cells lie on the diagonal or just left of it: each position reads itself and the
    few characters before it. The heads of layer 1 mostly look like this one (draw them with the line above,
    `maps[0]`); the next cell measures every head's reach.
    """),
    md(r"""
    One line is one example. Over the whole validation text (windows of 64, queries at positions 16 and
    later, so that every query has at least 16 keys), the mean weight each head gives to the key $k$
    characters back ($k = 0$: itself), and how much goes further back than 8:
    """),
    code("""
    starts = np.arange(0, len(val_ids) - T, 16)
    with mt.no_grad():
        model(mt.tensor(val_ids[starts[:, None] + np.arange(T)]))     # (N, 64) windows
    A = [w.numpy() for w in model.decoder.self_attn_weights]          # per layer (N, heads, 64, 64)
    queries = np.arange(16, T)
    profile = np.array([[[a[:, h, queries, queries - k].mean() for k in range(9)] for h in range(a.shape[1])]
                        for a in A])                                  # (layers, heads, 9)
    for layer, rows in enumerate(profile, start=1):
        for h, row in enumerate(rows, start=1):
            print(f"layer {layer} head {h}: k = 0..8 {row.round(2)}  beyond 8: {1 - row.sum():.2f}")

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    for ax, rows, layer in zip(fig.subplots(1, 2, sharey=True), profile, (1, 2)):
        for h, row in enumerate(rows, start=1):
            ax.plot(range(9), row, marker="o", label=f"head {h}")
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("k: characters back")
        ax.grid(True, color="0.9")
    fig.axes[0].set_ylabel("mean attention weight")
    fig.axes[0].legend()
    fig
    """),
    md(r"""
    Over the whole text the heads differ mainly in reach. Layer 1, head 4 is the most local: 0.21 on the
    character just before, and only 0.11 further back than 8 characters. The heads of layer 2 all send 0.35
    to 0.45 of their weight further back than 8 characters (those of layer 1: 0.11 to 0.39), and layer 2,
    head 2 gives its own position almost nothing (0.02).
    Every head gives more weight to the previous character than to the one before that. After 300 steps
    no head is a sharp "previous character" head: each spreads its weight over several keys.
    """),
    md(r"""
    ## 9. What the source document says

    The source document gives the Transformer's formulas (its section 4: self-attention, multi-head
    attention, positional encoding; it never mentions an encoder, a decoder or a mask) and a classifier
    (its section 5); it trains no language model and says nothing about decoder-only models (its section
    9.1 names GPT among "typical AI large models", without describing it). Three of its general statements
    touch this notebook:

    * Section 3.1: self-attention computes weights "based on all information in the input sequence when
      generating each output". For a model that generates, each position may use only itself and the
      positions before it (section 4's check).
    * Section 3.2.1: data preparation includes "removing stop words, punctuation, and special characters".
      For a language model, these are part of what it must predict: in this text, spaces and line breaks
      are 19.8% of the characters and punctuation 3.2% (counted below), and the commonest words ("the",
      "and", "of") are stop words. A model trained without them could not write them.
    * Section 4.2.3: positional encodings "are learned during the training process" (erratum 5). The formula
      it gives is fixed; section 7 showed what the fixed sinusoids do at positions beyond training, and
      that a learned table's rows there are never trained (exercise 5 asks what that model then does).
    """),
    code("""
    letters_digits = sum(c.isalnum() for c in text)
    spaces = sum(c in " \\n" for c in text)
    print(f"letters and digits {letters_digits / len(text):.1%}, spaces and line breaks {spaces / len(text):.1%}, "
          f"punctuation {(len(text) - letters_digits - spaces) / len(text):.1%}")
    """),
    md(r"""
    ## Exercises

    1. Train with `seq_len=128` (`build("charlm", seq_len=128, ...)`, the same 300 steps) and redraw
       section 7's loss by position. Does the jump at 64 go away? What does each step cost now, and why?
       (Answer, not measured here: expect yes: positions 64 to 127 are now trained, so the loss stays flat
       past 64, up to a rise in the last positions like the one before 64 here. A step costs roughly twice
       as much or more: twice the tokens per window for the embeddings, projections and feed-forward
       layers, and four times the attention scores, $T^2$ per head.)
    2. Fit a **trigram** model by counting, $p(c \mid a\,b)$ with add-one smoothing over the 71 ids, and
       score it on the validation text. Does it beat the bigram's 2.39 nats? Then try add-$\alpha$ with
       $\alpha = 0.1$ and $0.01$: why does the amount of smoothing matter more for the trigram? Compare the
       best with the Transformer's 2.097 after 300 steps, then train with the task's defaults
       (`build("charlm")`, 1000 steps): what does the Transformer need to pass a table of counts?
       (Answer: counting has no randomness, so these hold on any machine: add-one gives 2.30 nats, a little
       better than the bigram; add-0.1 gives 2.00 and add-0.01 also 2.00. A trigram has 71 pseudo-counts to
       spread in each of its $71^2$ contexts, most of them seen a few times or never, so add-one drowns
       their real counts; a bigram's 71 contexts have many counts each. The best trigram beats the
       Transformer after 300 steps; the task's 1000 steps bring it to about 1.90 (docs/training.md's
       run): it needs enough steps to use more than the last two characters.)
    3. Sampling at temperature $\tau$ draws from $p_\tau \propto p^{1/\tau}$. Take the model's distribution
       of the next character after "The s" and compute its entropy at $\tau = 0.5, 1, 2$; which $\tau$ gives
       the entropy of a uniform choice among 71, in the limit? (Answer: the entropy grows with $\tau$:
       lowest at 0.5, the model's own at 1, highest at 2. As $\tau \to \infty$, $p^{1/\tau} \to 1$ for every
       character, so $p_\tau$ tends to the uniform distribution and its entropy to $\ln 71$ = 4.263 nats; as
       $\tau \to 0$ it tends to 0, the arg-max alone.)
    4. In section 4, replace the characters *before* position $t$ instead of after it. Which logits
       change now, and why can the change not stop at the replaced positions? (Answer: the logits at the
       first replaced position and at every position after it, $t$ included; those before it stay the same.
       Every later position attends to the replaced ones under the causal mask, directly and through the
       layers below, so what they read changes too.)
    5. Train the model of section 7's last cell, `positional="learned"`, with `Trainer`, `setup.train_data`
       and `setup.loss_fn` for 300 steps (its own `optim.Adam.paper` and `train.tasks.warmup_schedule`).
       Check that rows 64 to 127 of its table still equal their initial values, redraw the loss by
       position, and generate with `context=128`. Does it fall apart the same way as the sinusoidal model?
       (Answer: those rows never reach the loss, so their gradient is 0 at every step and Adam, with $m$ and
       $v$ both 0, leaves them as they were. Expect the loss to jump past 64 as with the sinusoidal table,
       and the text with `context=128` to fall apart too: from position 64 on the model adds its initial
       random rows, vectors it never learned to read, where the sinusoidal rows at least continue a pattern it
       saw.)
    """),
]
