"""Notebook 11_translating_dates: its cells, built by ``tools/make_notebooks.py``."""

from .cells import ONE_BLAS_THREAD, SETUP, code, md

CELLS = [
    md(r"""
    # 11 · Translating dates: cross-attention learns to reorder

    **What this notebook teaches.** The encoder–decoder of notebook 05 on a translation where the order
    changes: dates written the way people write them (`monday 07/06/2010`, `the 17th of July 2034`,
    `Mar 31 '88`) into ISO 8601 (`2010-06-07`). The ISO date puts the year first where most sources put it
    last, so while the decoder writes the year it must look at the end of the source, then at the month,
    then at the day. It looks through **cross-attention**: the queries come from the decoder, the keys and
    values from the encoder's output $M$ (the "memory", one vector per source word),

    $$
    \mathrm{CrossAttention}(Y, M) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right)V, \qquad
    Q = Y W^Q + b^Q, \quad K = M W^K + b^K, \quad V = M W^V + b^V ,
    $$

    one map per head, row $t$ (a target position) a distribution over the $S$ source words; the heads'
    outputs are concatenated and projected, $\mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h) W^O + b^O$,
    as in notebook 03. Its maps show the alignment the model learned, with no alignment ever given to it. It
    is the attention formula of the source document (section 4.1.1), which gives it only as *self*-attention,
    $Q$, $K$ and $V$ from one sequence; the paper's "encoder-decoder attention" (Vaswani et al. 2017, section
    3.2.3) takes $Q$ from the decoder instead, which the source document does not cover.

    Steps: **1** the data: a generator of dates in 12 formats, the split held out by day, the two
    tokenizers · **2** the model and the cross-attention formula, checked by hand; the masks · **3** training
    with `train.Trainer`, the curves · **4** the cross-attention maps of held-out dates: the reordering, the
    weekday, the heads; the encoder's self-attention · **5** greedy and beam decoding of dates the model never
    saw, and where it fails.

    The formulas, their code and checks: [attention](../docs/formulas/attention.md),
    [multi-head attention](../docs/formulas/multi-head-attention.md), [masks](../docs/formulas/masks.md),
    [the encoder–decoder](../docs/formulas/encoder-decoder.md). The same run from the command line:
    `minitransformer train --task dates` (docs/training.md, "Dates, and a translation of your own").
    """),
    SETUP,
    *ONE_BLAS_THREAD,
    md(r"""
    ## 1. The data

    `data.format_date` writes a date in one of the 12 formats of `data.DATE_FORMATS`; numbers always give
    the day before the month, and a two-digit year is read as POSIX reads it (69–99: 1969–1999, 00–68:
    2000–2068), so every source names exactly one date. One date in every format:
    """),
    code("""
    import datetime

    from minitransformer.data import DATE_FORMATS, FIRST_DATE, LAST_DATE, dates_task_splits, format_date

    day = datetime.date(2010, 6, 7)
    for style in DATE_FORMATS:
        print(f"{style:26} {format_date(day, style):32} -> {day.isoformat()}")
    print(f"dates from {FIRST_DATE} to {LAST_DATE}")
    """),
    md(r"""
    `train.tasks.build("dates", ...)` draws the task's pairs with `dates_task_splits`: the held-out days
    first, then the training days from the days left, each written in a format drawn at random. A held-out
    date is therefore a *day* the model never saw, in any format (not only a new wording of a day it knows).
    The task's defaults train 600 steps with a peak rate of $2 \cdot 10^{-3}$ after 200 steps of warm-up; here
    the run is 300 steps, 60 of warm-up, peak $3 \cdot 10^{-3}$, so that it trains in seconds on two CPU cores
    (the time is printed) and the notebook runs in under a minute.
    """),
    code("""
    from minitransformer.train.tasks import DEFAULTS, build

    setup = build("dates", steps=300, warmup=60, lr=3e-3)            # seed 0: the data, the weights, the batches
    model, s, tok = setup.model, setup.settings, setup.tokenizer
    print({k: s[k] for k in ("n_train", "n_val", "n_test", "steps", "warmup", "lr", "batch_size", "clip")})
    print("the task's defaults:", {k: DEFAULTS["dates"][k] for k in ("steps", "warmup", "lr")})

    train_text, held_text = dates_task_splits(s["n_train"], s["n_val"] + s["n_test"], seed=s["seed"])  # as build
    val_text, test_text = held_text[:s["n_val"]], held_text[s["n_val"]:]
    for source, iso in train_text[:4]:
        print(f"  train  {source:34} -> {iso}")
    for source, iso in test_text[:4]:
        print(f"  test   {source:34} -> {iso}")
    train_days = {iso for _, iso in train_text}
    print(f"{len(train_days):,} distinct training days; held-out days among them:",
          len({iso for _, iso in held_text} & train_days))
    """),
    md(r"""
    Two tokenizers, held together by a `TokenizerPair`: the source is cut into **words** (lower-cased,
    punctuation split off; the vocabulary is every word of the training split), the target into the ISO
    date's **characters**. Both vocabularies start with the four special tokens `<pad>`, `<bos>`, `<eos>`,
    `<unk>`. A source word outside the training vocabulary reads as `<unk>` (section 5 meets one).
    """),
    code("""
    src_tok, tgt_tok = tok.source, tok.target
    print(type(tok).__name__, "| source:", type(src_tok).__name__, src_tok.vocab_size, "tokens | target:",
          type(tgt_tok).__name__, tgt_tok.vocab_size, "tokens")
    print("target vocabulary:", tgt_tok.itos)
    print("some source words:", src_tok.itos[4:40])
    source, iso = test_text[10]
    ids = src_tok.encode(source)
    print(f"{source!r} -> {[src_tok.itos[i] for i in ids]} -> {ids}")
    print(f"{iso!r} -> {tgt_tok.encode(iso)}")
    np.testing.assert_array_equal(setup.test[10][0], ids)              # the task's own encoding of that pair
    """),
    md(r"""
    ## 2. The model, and cross-attention by hand

    The task's model is an `nn.Transformer` ([the encoder–decoder](../docs/formulas/encoder-decoder.md)):
    $d_\text{model} = 64$, 4 heads of $d_k = 16$, two encoder and two decoder layers, pre-LN, no dropout,
    and a sinusoidal positional table as long as the longest source (or `<bos>` + a date). Every decoder layer
    has three sublayers: masked self-attention over the characters written so far, cross-attention to the
    encoder's output, and the feed-forward network. The library prints each module with its parameter count;
    one decoder layer (`literal=False`: the heads computed together in one batched product, not one at a time
    in a loop; notebook 03 compares the two):
    """),
    code("""
    print(f"{type(model).__name__}: {model.num_parameters():,} parameters, max_len = {model.max_len}")
    for name, part in model.named_children():
        print(f"  {name:11} {part.num_parameters():>8,}")
    print(model.decoder.layers[0])
    """),
    md(r"""
    **Cross-attention, by hand.** The layer's `cross_attn` is a `MultiHeadAttention` called as
    `cross_attn(y, memory, memory, mask=src_mask)`: queries from the decoder's states $Y$ ($T$ positions),
    keys and values from the encoder's output $M$ ($S$ positions). Heads are counted from 1 here, as in the
    prints and the maps' titles (and the paper): head $h$ takes columns $(h-1) d_k \ldots h d_k - 1$ of the
    projections, index $h - 1$ of the head axis in the code (`A[:, 0]` below, $(B, T, S)$, is head 1). Below, for a
    batch of two sources of different lengths (the shorter padded), $M$ = `model.encode(src, src_mask)`. In the
    decoder the queries come from `norm2(x)`: this pre-LN layer's residual stream $x$ after its
    self-attention, layer-normed; standing in for it here, the embedded target (`tgt_embed` plus the
    positional encoding, as `decode` makes them). By NumPy: $Q$, $K$, $V$ with their biases, each head's
    weights $A_h$ and output $A_h V_h$, the heads concatenated, times $W^O$, plus $b^O$; against the layer's
    weights and output.

    The **mask** of cross-attention is the source's padding only, `src_mask` $(B, 1, 1, S)$: every target
    position may look at every real source word, including words "later" in the source (no causal mask here;
    the reordering needs exactly that). The causal mask belongs to the decoder's *self*-attention. Each
    decoder layer builds it itself and combines it (logical and) with the `tgt_mask` it is given;
    `make_seq2seq_batch`'s `tgt_mask`, $(B, 1, T, T)$, printed below, is already causal *and* hides the
    target's padding, so the causal part is applied twice, which changes nothing (the padding is what the
    batch's mask adds).
    """),
    code("""
    from minitransformer.data import make_seq2seq_batch

    pairs = [setup.test[10], setup.test[3]]                          # 6 words, then 4 (padded to 6)
    b = make_seq2seq_batch(pairs)
    print("src", b.src.shape, "src_mask", b.src_mask.shape, "tgt_in", b.tgt_in.shape, "tgt_mask", b.tgt_mask.shape)
    print("src_mask of the second source:", b.src_mask.numpy()[1, 0, 0])

    layer = model.decoder.layers[0].cross_attn
    with mt.no_grad():
        memory = model.encode(b.src, b.src_mask)                     # M: (B, S, d_model)
        y = model.positional(model.tgt_embed(b.tgt_in))              # Y: (B, T, d_model), a stand-in for the states
        out, weights = layer(y, memory, memory, mask=b.src_mask)     # (B, T, d_model), (B, heads, T, S)


    def linear(X, W):
        return X @ W.weight.numpy() + W.bias.numpy()                 # X W + b


    def split(X):                                                    # head h: columns (h-1) d_k ... h d_k - 1
        return X.reshape(*X.shape[:2], layer.heads, layer.d_k).transpose(0, 2, 1, 3)   # (B, h, L, d_k)


    M, Y, d_k = memory.numpy(), y.numpy(), layer.d_k
    Q, K, V = linear(Y, layer.W_Q), linear(M, layer.W_K), linear(M, layer.W_V)   # Q from the decoder; K, V: encoder
    scores = split(Q) @ split(K).transpose(0, 1, 3, 2) / np.sqrt(d_k)   # (B, h, T, S)
    scores = np.where(b.src_mask.numpy(), scores, -np.inf)           # padding: no weight at all
    A = np.exp(scores - scores.max(axis=-1, keepdims=True))
    A /= A.sum(axis=-1, keepdims=True)                               # softmax over the S source words
    np.testing.assert_allclose(A, weights.numpy(), rtol=1e-5, atol=1e-6)
    heads = A @ split(V)                                             # (B, h, T, d_k): head_h = A_h V_h
    concat = heads.transpose(0, 2, 1, 3).reshape(Y.shape)            # (B, T, d_model): Concat(head_1, ..., head_h)
    np.testing.assert_allclose(linear(concat, layer.W_O), out.numpy(), rtol=1e-4, atol=1e-5)
    print("memory", M.shape, " Q", Q.shape, " K", K.shape, " V", V.shape, " weights", A.shape,
          " output", out.shape, ": the layer's, by NumPy")
    second = weights.numpy()[1]                                      # the layer's weights, second source: (h, T, S)
    print("second source, the layer's weight on its 2 padding columns, any head:", second[:, :, 4:].max(),
          "; its rows sum to", np.unique(second.sum(axis=-1).round(6)))
    """),
    md(r"""
    ## 3. Training

    `train.Trainer` runs notebook 05's loop (forward, teacher-forced cross-entropy, `backward()`, clipping,
    Adam, the warm-up-then-cosine schedule) on the task's batches of 64 pairs, and every 50 steps measures the
    validation split with `setup.eval_fn`: the loss (`val_loss`), the per-character accuracy
    (`val_token_accuracy`), and the *exact match* of greedy decoding, `val_accuracy` (a date counts only if all
    ten characters and the end are right; on the test split the same measure is
    `test_exact_sequence_accuracy`). `Trainer(..., eval_every=50, monitor="val_accuracy", target=0.95)` (the
    command line's `--target 0.95`) would stop the run at the first evaluation whose exact match reached 0.95;
    here the schedule is short enough to run to its end, where the rate has decayed to 0.
    """),
    code("""
    from minitransformer.train import Trainer

    trainer = Trainer(model, setup.optimizer, setup.loss_fn, schedule=setup.schedule, clip=s["clip"],
                      eval_fn=setup.eval_fn, eval_every=50, desc="dates")
    history = trainer.fit(setup.train_data, steps=s["steps"])
    print(f"{trainer.step} steps in {trainer.elapsed:.1f} s")
    for name in ("val_token_accuracy", "val_accuracy"):
        print(f"{name:18}", [(step, round(v, 3)) for step, v in history[name]])
    """),
    code("""
    viz.training_curves(history, log_y=("loss",))
    """),
    code("""
    final = setup.final_metrics(model)                               # the test split, measured once
    print(f"test: exact match {final['test_exact_sequence_accuracy']:.3f} on {final['n_test']} held-out dates, "
          f"per-character accuracy {final['test_token_accuracy']:.4f}")
    """),
    md(r"""
    The curves: the loss of the training batches and of the validation split (log scale); `lr`, the schedule,
    up in 60 steps of warm-up to $3 \cdot 10^{-3}$, then down to 0 along a cosine; `grad_norm`, the gradients'
    global norm before clipping to `clip` (printed in section 1), a mean over each 10 steps; and the two
    accuracies measured every 50 steps. A run of yours will differ from the run shown: float32 rounding differs
    between machines and library versions, and from a few steps on the rounding trains a slightly different
    model, whose heads may share the work otherwise and whose few wrong dates are other dates. What the text
    below says of patterns (an alignment, a table's order) holds from run to run; its single weights and dates
    are the run shown's. In the run shown, at step 50 the model writes 64% of the
    characters right (`val_token_accuracy`) and not one whole date (`val_accuracy`, the exact match, is 0);
    the exact match then climbs from 0 to about 0.9 between steps 50 and 150 (the curves do not say which
    part of the model learned what; section 4 shows where the trained model looks). At the end every one of
    the 300 validation dates is right; the test split, measured once, nearly agrees: an exact match of 0.999,
    one of its 1000 held-out dates wrong.

    ## 4. What the decoder looks at

    `setup.sample(model)` gives the maps of one held-out date, the one `minitransformer train --task dates`
    draws into `attention_cross_attention.png` and `attention_encoder_self_attention.png` (through
    `viz.training_pictures`, which calls `viz.attention_heads` on each): the last layer, every head. Rows are
    the decoder's positions, labelled by their *input*: the row of `<bos>` writes the first digit, the row of
    each character writes the next one, the last row writes `<eos>`.
    """),
    code("""
    maps = {name: (w, queries, keys, mask) for name, w, queries, keys, mask in setup.sample(model)}
    w, queries, keys, mask = maps["cross_attention"]  # mask: the keys that are real tokens (this date has no padding)
    print("source:", keys, "  decoder inputs:", "".join(queries[1:]))
    viz.attention_heads(w, queries, keys, mask=mask, title="dates: cross attention (last layer)")
    """),
    md(r"""
    To read a map by the character written, and for any date, `cross_attention(text)` below decodes a text
    greedily, runs the decoder again on `<bos>` + its own output (as `setup.sample` does), and returns every
    layer's cross-attention weights; `alignment` prints, for each character written, the source word with the
    largest weight in the last layer, averaged over the heads: `2 <- 2010 (0.67)` reads "the row that writes
    `2` puts most weight on `2010`, 0.67 of it on average over the four heads".
    """),
    code("""
    from minitransformer.train import beam_search, greedy_decode, strip_after_eos


    def cross_attention(text):
        \"\"\"The greedy decoding of ``text``, and each decoder layer's cross-attention (heads, T, S) on it.\"\"\"
        ids = np.asarray([src_tok.encode(text)])                     # (1, S)
        out = strip_after_eos(greedy_decode(model, ids).numpy()[0])
        b = make_seq2seq_batch([(ids[0].tolist(), out)])
        with nn.evaluating(model), mt.no_grad():
            model(b.src, b.tgt_in, b.src_mask, b.tgt_mask)
        written = [tgt_tok.itos[i] for i in b.tgt_out.numpy()[0]]    # what each row writes: the date, then <eos>
        keys = [src_tok.itos[i] for i in ids[0]]
        return tgt_tok.decode(out), [w.numpy()[0] for w in model.decoder.cross_attn_weights], written, keys


    def alignment(text):
        date, layers, written, keys = cross_attention(text)
        mean = layers[-1].mean(axis=0)                               # (T, S): the last layer, heads averaged
        print(f"{text!r} -> {date}")
        best = mean.argmax(axis=1)                                   # each row's source word
        print("   ".join(f"{c} <- {keys[j]} ({mean[t, j]:.2f})" for t, (c, j) in enumerate(zip(written, best))))
        return layers, written, keys


    layers, written, keys = alignment(test_text[10][0])
    """),
    md(r"""
    The reordering, in the run shown: every year digit looks at `2010`, the last word of the source, on average
    over the heads; the last two (`1` and `0`) with most of the weight in every head, the first two not in
    every head. Printed below, head by head, the source word each row of the last layer weighs most: the row
    that writes `2` puts 0.64 on `06` in head 1, and the row that writes the first `0` puts 0.52 on the first
    `/` in head 2; heads 3 and 4 keep all four rows on `2010`. The day's second digit looks at `07` with most
    of the weight in every head, the month's second digit at `06` in every head. The rows that write the
    first digit of the month and of the day look elsewhere in most heads of this layer: at the slashes in
    heads 1 and 2, at the year in heads 3 and 4 for the month's, at a slash in head 4 and at `07` in head 3
    for the day's. That does not make those digits guesses: the first layer
    has read the field already (its row that writes the day's first `0` puts 0.7, 0.99, 0.94 and 0.98 on `07`
    in heads 1 to 4, printed below), and its
    output is added to the decoder's residual stream, which the last layer reads; and the memory's vector at a
    `/` is not the slash alone, since the encoder's self-attention has mixed other words into it (the end of
    this section). Weight on a separator does not mean the information is missing. The hyphens,
    whose place never changes, need no source word; they look at a slash (head 1), at the year (heads 2 and
    3) or at `06` (head 4). The weekday, `monday`, is redundant (the date fixes it) and gets little from most rows: its
    largest weight in the last layer, printed below with its head and row, 0.45, comes from the last row of
    head 1, the row that writes `<eos>` once the whole date is written, a place to put weight rather than a
    source of information (exercise 3 tests that). In this run one other row gives it much, the next
    largest printed, 0.30: in head 2, the row that writes the first digit before anything is written (the map
    shows it); every other row of every head puts less than a quarter of its weight on it. The maps of that
    layer: the same weights as the map `setup.sample` drew above (the same date, the last layer; the cell
    checks it), drawn again with each row labelled by the character it writes instead of by its input:
    """),
    code("""
    def strongest(w, rows, keys):
        \"\"\"Print, for each row of w (heads, rows, keys), each head's most weighted key and its weight.\"\"\"
        width = max(map(len, rows))
        print(" " * width + "".join(f"{f'head {h + 1}':>13}" for h in range(len(w))))
        for t, row in enumerate(rows):
            best = w[:, t].argmax(axis=-1)                           # (heads,): each head's key for row t
            print(f"{row:>{width}}" + "".join(f"{keys[j]:>8} {w[h, t, j]:.2f}" for h, j in enumerate(best)))


    print("the last layer, by the character each row writes:")
    strongest(layers[-1], written, keys)
    day_first = len(written) - 3                                     # the row that writes the day's first digit
    print(f"the first layer's row that writes the day's first digit ({written[day_first]!r}), its weight on "
          f"'07' in heads 1 to 4:", layers[0][:, day_first, keys.index("07")].round(2))
    weekday = keys.index("monday")
    on_weekday = layers[-1][:, :, weekday]                           # (heads, T): each row's weight on it
    h, t = np.unravel_index(on_weekday.argmax(), on_weekday.shape)
    print(f"largest weight on {keys[weekday]!r} in the last layer: {on_weekday[h, t]:.2f}, in head {h + 1}, "
          f"row {t + 1} (the row that writes {written[t]!r})")
    print(f"the next largest, any head and row: {np.sort(on_weekday, axis=None)[-2]:.2f}")
    np.testing.assert_allclose(layers[-1], maps["cross_attention"][0], atol=1e-6)   # the map drawn above
    viz.attention_heads(layers[-1], written, keys, title="monday 07/06/2010: cross-attention, last layer")
    """),
    md(r"""
    A month written as a word and the day as an ordinal (`the 17th of July 2034`), and a two-digit year
    (`Mar 31 '88`, read as 1988): the year's digits find the year's word wherever it is (in the run shown
    all four of 2034, the `0` with the least weight, 0.46 on average over the heads), the month's digits
    find the month's name or abbreviation, the day's find the ordinal. For `'88` the first two digits, `19`,
    are not in the source at all: the model reads the century off the two digits (69–99 → 19, 00–68 → 20);
    in the run shown the `9` looks partly at the apostrophe, the mark of a two-digit year in this format.
    """),
    code("""
    for k in (11, 3):
        layers_k, written_k, keys_k = alignment(test_text[k][0])
    viz.attention_heads(layers_k[-1], written_k, keys_k, title=f"{test_text[3][0]}: cross-attention, last layer")
    """),
    md(r"""
    **How the heads differ** (the map of `monday 07/06/2010` above and its table, in the run shown). All four
    agree on the year's last two digits, on the second digits of the month (on `06`) and of the day (on
    `07`); three of them on `<eos>` (on `07`), where head 1 puts most on `monday`.
    Elsewhere they split the work: head 3 is the plainest aligner, each field's rows mostly on that field's
    word; head 4 already looks at `06` from the hyphen that precedes the month; heads 1 and 2 put the first
    digits of month and day on the slashes (head 4 the day's), and heads 2 and 3 the hyphens on the year.
    Below, both layers: the first (top row) aligns already, with the boundaries between fields a row earlier
    or later in some heads, and in its head 2 the first row rests on `monday`.
    """),
    code("""
    viz.attention_layers(layers, written, keys, title="monday 07/06/2010: cross-attention, both layers")
    """),
    md(r"""
    **The encoder's self-attention** (the second map `setup.sample` gives, the last encoder layer) has no
    reordering to do; it builds the memory the decoder reads (the same date again). Printed below as above,
    each word's most weighted word head by head, then head 1 in full. In the run shown, head 1 gives `06`
    (0.56), the first `/` (0.44), `monday` (0.32) and `2010` (0.31) more weight on themselves than on any
    other word; the second `/` splits almost evenly between itself (0.36) and the first `/` (0.35); `07`
    alone looks mostly elsewhere: 0.32 on the `/` after it, 0.22 on `06`, 0.18 on `monday` and 0.11 on
    itself. Heads 2 to 4 gather the separators' attention on `2010`, and in head 2 `06` looks at the words
    before it, `07` most (0.39). In `07/06/2010` nothing but order tells the day from the month, so a
    word's vector in the memory must carry its place among the numbers; the positional encoding and this
    attention put it there.
    """),
    code("""
    w, queries, keys_self, mask = maps["encoder_self_attention"]
    strongest(w, queries, keys_self)
    print("head 1 in full, a row per word, its weights on", keys_self)
    print(w[0].round(2))
    viz.attention_heads(w, queries, keys_self, mask=mask, title="dates: encoder self attention (last layer)")
    """),
    md(r"""
    ## 5. Decoding dates the model never saw

    `greedy_decode` takes the most likely character at each step; `beam_search` keeps the 4 most likely
    partial dates (notebook 08). Below, three days that are no training day (the first moon landing, the fall of
    the Berlin Wall, a leap day), first in formats of the task, then in four outside its 12: slashes without
    zero padding, the year first, the day in words after the month, an ordinal before the month without
    "the ... of". The last column counts the `<unk>` tokens: words the source vocabulary does not hold.
    """),
    code("""
    def decode(texts, beam_size=None):
        \"\"\"The dates the model writes for ``texts``, by greedy decoding or, given ``beam_size``, beam search.\"\"\"
        b = make_seq2seq_batch([(src_tok.encode(text), [0]) for text in texts])   # pads the sources (no targets)
        if beam_size is None:
            out = greedy_decode(model, b.src, b.src_mask)
        else:
            out = beam_search(model, b.src, beam_size=beam_size, src_mask=b.src_mask)
        return [tgt_tok.decode(strip_after_eos(o)) for o in out.numpy()]


    def translate(dates):
        \"\"\"Greedy and beam decoding of (text, date) pairs, each output marked right or wrong.\"\"\"
        texts = [text for text, _ in dates]
        for (text, date), g, bm in zip(dates, decode(texts), decode(texts, beam_size=4)):
            g_ok, bm_ok = ("ok   " if out == date.isoformat() else "WRONG" for out in (g, bm))
            unknown = [src_tok.itos[j] for j in src_tok.encode(text)].count("<unk>")
            print(f"{text:26} greedy {g:10} {g_ok}  beam {bm:10} {bm_ok}" + f"  {unknown} <unk>" * (unknown > 0))


    moon, wall, leap = datetime.date(1969, 7, 20), datetime.date(1989, 11, 9), datetime.date(2024, 2, 29)
    new = [("the 20th of July 1969", moon), ("Sunday, July 20th, 1969", moon), ("Jul 20 '69", moon),
           ("Thursday 09/11/1989", wall), ("29 Feb 24", leap),                       # formats of the task
           ("20/7/1969", moon), ("1969 july 20", moon), ("July twentieth, 1969", moon),
           ("9th November 1989", wall)]                                              # formats outside its 12
    print("training days among them:", sorted({d.isoformat() for _, d in new} & train_days) or "none")
    translate(new)
    """),
    md(r"""
    **Where it fails.** Inputs outside the task: an ISO date as the source (the format the model writes,
    never one it reads), the year first with slashes, the day first with hyphens, the ISO date of section 4;
    and a year outside 1969–2068, whose word the vocabulary does not hold:
    """),
    code("""
    outside = [("1969-07-20", moon), ("1969/07/20", moon), ("20-07-1969", moon),
               ("2010-06-07", datetime.date(2010, 6, 7)),                     # section 4's date, in ISO
               ("4 July 1776", datetime.date(1776, 7, 4)), ("the 4th of July 2100", datetime.date(2100, 7, 4))]
    translate(outside)
    for text, _ in outside[4:]:
        alignment(text)
    layers_f, written_f, keys_f = alignment(outside[0][0])
    viz.attention_heads(layers_f[-1], written_f, keys_f, title=f"{outside[0][0]}: cross-attention, last layer")
    """),
    md(r"""
    In the run shown every date in the task's formats, and every one in the four formats outside them, is
    right, by greedy decoding and by beam search alike: a model this sure of every character leaves a beam
    little to find. `20/7/1969` keeps the task's order of the numbers, day, month, year (its unpadded month is
    as in `d.m.yyyy`); `1969 july 20` moves the year to the front, where no format of the task has it, and
    names the month with a word.

    A year outside 1969–2068 is a word the source vocabulary does not hold: it reads as `<unk>`, and the model
    writes some year of its range (the year's rows look mostly at `<unk>`, which carries no digits: for
    `4 July 1776`, the last three of the four, the first looking at `july`), with the right month and day. The
    numeric sources fail otherwise: all their words are known, yet in the run shown `1969-07-20` comes out as
    `1969-07-23` (the year right, the day wrong), `1969/07/20`, the year first with slashes, as `1969-07-07`,
    and `2010-06-07` as `2020-06-29`, while `20-07-1969`, hyphens with the day first, is right. Which of these
    few dates a model gets right changes from run to run (this notebook's previous run, before a change to the
    library summed some floats in another order, got `1969/07/20` right and `1969-07-20`'s year wrong); the
    counts over 300 dates below are what a rerun keeps, to within some tens: their order. The hyphen, or the
    order? Below, 300 held-out days written in numeric layouts, the year first or not, with slashes, hyphens
    or spaces (and the month as a word once), each field of the output counted right or wrong:
    """),
    code("""
    held_days = [datetime.date.fromisoformat(iso) for _, iso in test_text[:300]]   # days the model never saw
    fields = {"date": slice(0, 10), "year": slice(0, 4), "month": slice(5, 7), "day": slice(8, 10)}
    layouts = {"dd/mm/yyyy": "%d/%m/%Y", "dd-mm-yyyy": "%d-%m-%Y", "yyyy/mm/dd": "%Y/%m/%d", "yyyy-mm-dd": "%Y-%m-%d",
               "yyyy mm dd": "%Y %m %d", "yyyy month dd": "%Y %B %d", "mm/dd/yyyy": "%m/%d/%Y"}
    print(f"greedy decoding of {len(held_days)} held-out days; right:".ljust(42) + "".join(f"{f:>7}" for f in fields))
    outputs = {}
    for name, layout in layouts.items():
        outputs[name] = decode([d.strftime(layout) for d in held_days])
        right = [sum(o[cut] == d.isoformat()[cut] for o, d in zip(outputs[name], held_days)) for cut in fields.values()]
        print(f"{name:14} e.g. {held_days[0].strftime(layout):22}" + "".join(f"{n:7}" for n in right))
    swapped = [o == d.strftime("%Y-%d-%m") for o, d in zip(outputs["mm/dd/yyyy"], held_days) if d.day <= 12]
    print(f"mm/dd/yyyy, the {len(swapped)} days of 12 or less: {sum(swapped)} written with day and month swapped")
    """),
    md(r"""
    Bare numbers name no field, so the model tells them apart by their order: in every numeric format of the
    task (`dd/mm/yyyy`, `d.m.yyyy` and the weekday's) the day comes first, then the month, the year last. Read
    that way, `mm/dd/yyyy` gives every day of 12 or less back with day and month swapped (140 of 140), and a
    source with the year first is outside what the model has seen: `yyyy/mm/dd`, with the task's own
    slashes, gets 29 of the 300 dates right and their year 111 times (in the run shown `1969/07/20` above is
    not among the few right).
    The order is the main cause of the ISO failure, and the hyphen adds to it: in training a hyphen only ever
    stood inside a day written out (`twenty - third`), and `dd-mm-yyyy` gets 216 dates right against
    `dd/mm/yyyy`'s 300, `yyyy-mm-dd` 6 against `yyyy/mm/dd`'s 29. `yyyy-mm-dd` gets the year of 68 days in
    300, that of `1969-07-20` above among them, but the day of only 39 (the map of `1969-07-20` shows the
    day's first digit looking at the first hyphen in three heads). Words that
    name their field, month names and ordinals, can move; bare numbers cannot: with the month as a word and
    the year first, `yyyy month dd` gets the month right 299 times in 300, its year and day, bare numbers
    still, 239 and 252 times.
    """),
    md(r"""
    ## Exercises

    The cell after this one defines `check_ex1` and `check_ex3`, which check the answers of exercises 1 and 3
    (each raises an `AssertionError` that says what is wrong, or prints that the answer is right).

    1. Which head aligns the year? For the first twenty test dates, `test_text[:20]`, find the head of the
       last layer whose weight on the year's word, summed over the rows that write the year, is largest. Is it
       the same head each time? Does the answer change between the two layers? Check your twenty heads,
       counted from 1, with `check_ex1(heads)` for the last layer and `check_ex1(heads, layer=1)` for the
       first. (Hint: `cross_attention(text)` gives both layers' weights, (heads, T, S) each; the year's rows
       are the first four. In every format of the task the year is the source's last word, also when it has
       two digits: in `29 apr 52` it is `52`, not `29`.)
    2. Train with the task's defaults, `build("dates")`, and
       `Trainer(..., eval_fn=setup.eval_fn, eval_every=50, monitor="val_accuracy", target=0.95)` (without
       `eval_every` the trainer refuses `target`, and says why). At which step does it stop (`trainer.step`,
       `trainer.stop_reason`), and what is the test exact match then (`setup.final_metrics(model)`), against
       section 3's? Which dates does it get wrong, and what does the map of one of them show? (Hint: the target
       is looked at only at the evaluations, every 50 steps. `decode` and `cross_attention` use the name
       `model`: assign the new model to it, and use the new setup's `test` pairs.)
    3. Mask the weekday: decode `monday 07/06/2010` with the `monday` column of `src_mask` set to False. Does
       the output change? Then replace the weekday with the wrong one (`tuesday 07/06/2010`). What does this
       say about what the model learned from the weekday? (`greedy_decode(model, ids, src_mask)` takes the mask
       as a bool tensor $(1, 1, 1, S)$, True where a source word may be looked at: `mask = np.ones((1, 1, 1,
       ids.shape[1]), dtype=bool)`, `mask[..., j] = False` for the weekday's position `j`, then
       `greedy_decode(model, ids, mt.tensor(mask))` with `ids` as in `cross_attention`; check the mask first
       with `check_ex3(mask)`.) Beware the other convention: PyTorch's `key_padding_mask` is True where a word
       is *hidden*. Such a mask raises no error here; it hides every word but the weekday, and the model still
       writes a date. (Hint: one date says little; decode a few held-out dates of the three formats that write
       the weekday, with and without it.)
    4. Set `heads=1` in `build("dates", ...)` (and then `layers=1`). Does the run still reach a good exact
       match in 300 steps? What does the single map look like? (Hint: with one head, $d_k = d_\text{model} =
       64$; `viz.attention_heads` draws a panel per head, one here. The one-layer run takes seconds.)
    """),
    code("""
    def check_ex1(heads, layer=2):
        \"\"\"Exercise 1's answer: per date of test_text[:20], the head of `layer` that weighs the year most.\"\"\"
        texts = [text for text, _ in test_text[:20]]
        heads = [int(h) for h in heads]
        n_heads = model.decoder.layers[layer - 1].cross_attn.heads
        assert len(heads) == len(texts), f"check_ex1: {len(heads)} heads for the {len(texts)} dates of test_text[:20]"
        assert set(heads) <= set(range(1, n_heads + 1)), f"check_ex1: heads are counted from 1 to {n_heads}: {heads}"
        wrong = []
        for text, said in zip(texts, heads):
            on_year = cross_attention(text)[1][layer - 1][:, :4, -1].sum(axis=1)   # (heads,): year rows, last word
            if said != on_year.argmax() + 1:
                wrong.append(f"{text!r}: head {said}, but the sums by head are {on_year.round(2)}")
        assert not wrong, f"check_ex1, layer {layer}: {len(wrong)} of {len(texts)} wrong: " + "; ".join(wrong)
        print(f"check_ex1: right, layer {layer}, all {len(texts)} dates")


    def check_ex3(mask, text="monday 07/06/2010"):
        \"\"\"Exercise 3's mask for `text`, which must be bool, (1, 1, 1, S), False at the weekday (word 0) only.\"\"\"
        mask = mask.numpy() if isinstance(mask, mt.Tensor) else np.asarray(mask)
        words = [src_tok.itos[i] for i in src_tok.encode(text)]
        want = np.ones((1, 1, 1, len(words)), dtype=bool)
        want[..., 0] = False                                         # the weekday: hidden; the rest may be looked at
        assert mask.dtype == bool, f"check_ex3: the mask's dtype is {mask.dtype}; a mask is bool"
        assert mask.shape == want.shape, (f"check_ex3: the mask's shape is {mask.shape}; src_mask is (B, 1, 1, S), "
                                          f"{want.shape} for the {len(words)} words {words}")
        assert not (mask == ~want).all(), ("check_ex3: the mask is inverted. Here True means a word may be looked "
                                           f"at (PyTorch's key_padding_mask: True = hidden); this one hides all but "
                                           f"{words[0]!r}")
        hidden = [w for w, m in zip(words, mask.ravel()) if not m]
        assert (mask == want).all(), f"check_ex3: the mask hides {hidden}; it should hide {words[0]!r} only"
        print(f"check_ex3: right, the mask hides {words[0]!r} only")


    inverted = np.zeros((1, 1, 1, 6), dtype=bool)
    inverted[..., 0] = True                                          # the PyTorch habit: True = hidden
    try:
        check_ex3(inverted)
    except AssertionError as err:
        print("AssertionError:", err)
    """),
]
