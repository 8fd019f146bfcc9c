"""Notebook 11_translating_dates: its cells, built by ``tools/make_notebooks.py``."""

from .cells import ONE_BLAS_THREAD, SETUP, code, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "0.59 0.24 0.49 0.57 0.43 0.32 0.13 0.14": "read off the annotated attention maps of section 4 "
                                              "(pictures: their values are not printed as text)",
}

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
    Q = Y W^Q, \quad K = M W^K, \quad V = M W^V ,
    $$

    one map per head, row $t$ (a target position) a distribution over the $S$ source words. Its maps show
    the alignment the model learned, with no alignment ever given to it.

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
    the run is 300 steps, 60 of warm-up, peak $3 \cdot 10^{-3}$, so that it trains in about half a minute on two
    CPU cores (the time is printed) and the notebook runs in under a minute.
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
    projections, index $h - 1$ of the head axis in the code (`A[1, 0]` below is head 1). Below, for a batch
    of two sources of different lengths (the shorter padded), $M$ = `model.encode(src, src_mask)`, and,
    standing in for the decoder's states, the embedded target (`tgt_embed` plus the positional encoding, as
    `decode` makes them): the weights by NumPy against the layer's.

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
        _, weights = layer(y, memory, memory, mask=b.src_mask)       # (B, heads, T, S)

    M, Y = memory.numpy(), y.numpy()
    Q = Y @ layer.W_Q.weight.numpy() + layer.W_Q.bias.numpy()        # (B, T, d_model): from the decoder
    K = M @ layer.W_K.weight.numpy() + layer.W_K.bias.numpy()        # (B, S, d_model): from the encoder
    d_k = layer.d_k
    Q_h = Q.reshape(*Q.shape[:2], layer.heads, d_k).transpose(0, 2, 1, 3)   # (B, h, T, d_k): head i's columns
    K_h = K.reshape(*K.shape[:2], layer.heads, d_k).transpose(0, 2, 1, 3)   # (B, h, S, d_k)
    scores = Q_h @ K_h.transpose(0, 1, 3, 2) / np.sqrt(d_k)          # (B, h, T, S)
    scores = np.where(b.src_mask.numpy(), scores, -np.inf)           # padding: no weight at all
    A = np.exp(scores - scores.max(axis=-1, keepdims=True))
    A /= A.sum(axis=-1, keepdims=True)                               # softmax over the S source words
    np.testing.assert_allclose(A, weights.numpy(), rtol=1e-5, atol=1e-6)
    print("memory", M.shape, " Q", Q.shape, " K", K.shape, " weights", A.shape, ": the layer's, by NumPy")
    print("second source, head 1, weight on its 2 padding columns:", A[1, 0, :, 4:].max(),
          "; rows sum to", A[1, 0].sum(axis=-1).round(6))
    """),
    md(r"""
    ## 3. Training

    `train.Trainer` runs notebook 05's loop (forward, teacher-forced cross-entropy, `backward()`, clipping,
    Adam, the warm-up-then-cosine schedule) on the task's batches of 64 pairs, and every 50 steps measures the
    validation split with `setup.eval_fn`: the loss (`val_loss`), the per-character accuracy
    (`val_token_accuracy`), and the *exact match* of greedy decoding, `val_accuracy` (a date counts only if all
    ten characters and the end are right; on the test split the same measure is
    `test_exact_sequence_accuracy`). `Trainer(..., monitor="val_accuracy", target=0.95)` (the command line's
    `--target 0.95`) would stop the run as soon as the exact match reached 0.95; here the schedule is short
    enough to run to its end, where the rate has decayed to 0.
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
    accuracies measured every 50 steps. In the run shown (a run of yours may differ in the last digits, as
    float32 rounding differs between machines and library versions), at step 50 the model writes 64% of the
    characters right (`val_token_accuracy`) and not one whole date (`val_accuracy`, the exact match, is 0);
    the exact match then climbs from 0 to about 0.95 between steps 50 and 150, as the cross-attention learns
    where each field is, and the test split, measured once at the end, agrees with the validation split.

    ## 4. What the decoder looks at

    `setup.sample(model)` gives the maps of one held-out date, the one `minitransformer train --task dates`
    draws into `attention_cross_attention.png` and `attention_encoder_self_attention.png` (through
    `viz.training_pictures`, which calls `viz.attention_heads` on each): the last layer, every head. Rows are
    the decoder's positions, labelled by their *input*: the row of `<bos>` writes the first digit, the row of
    each character writes the next one, the last row writes `<eos>`.
    """),
    code("""
    maps = {name: (w, queries, keys) for name, w, queries, keys in setup.sample(model)}
    w, queries, keys = maps["cross_attention"]
    print("source:", keys, "  decoder inputs:", "".join(queries[1:]))
    viz.attention_heads(w, queries, keys, title="dates: cross attention (last layer)")
    """),
    md(r"""
    To read a map by the character written, and for any date, `cross_attention(text)` below decodes a text
    greedily, runs the decoder again on `<bos>` + its own output (as `setup.sample` does), and returns every
    layer's cross-attention weights; `alignment` prints, for each character written, the source word with the
    largest weight in the last layer, averaged over the heads: `2 <- 2010 (0.64)` reads "the row that writes
    `2` puts most weight on `2010`, 0.64 of it on average over the four heads".
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
    over the heads; the last two (`1`, `0`) with most of the weight in every head, the first two not in every
    head: in the map below, the row that writes `2` puts 0.59 on `06` in head 1 (0.24 on `2010`), and the row
    that writes the first `0` puts 0.49 on the first `/` in head 2; heads 3 and 4 keep both rows on `2010`. The
    month's second digit looks at `06` and the day's second digit at `07`, with most of the weight in every
    head. Those are the digits that need the source; the first digit of a month (`0` or `1`) or a day (`0` to
    `3`) is partly guessed, and its row spreads over the separators and the year. The hyphens, whose place never
    changes, need no source word; they look at a neighbouring field. The weekday, `monday`, is redundant (the
    date fixes it) and gets little: its largest weight in the last layer, printed below with its head and row,
    comes from the first row of one head, the row that writes the first digit before anything is written, a
    place to put weight rather than a source of information (exercise 3 tests that); no other row of any head
    gives it much. The maps of that layer: the same weights as the map `setup.sample` drew above (the same date,
    the last layer; the cell checks it), drawn again with each row labelled by the character it writes instead
    of by its input:
    """),
    code("""
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
    (`Mar 31 '88`, read as 1988): the year's digits find the year's word wherever it is, the month's digits
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
    **How the heads differ** (the map of `monday 07/06/2010` above, in the run shown). All four agree on the
    year and on the second digits of month and day. Elsewhere they split the work: head 3 is the plainest
    aligner, each field's rows mostly on that field's word; head 4 already looks at `06` from the hyphen that
    precedes the month; heads 1 and 2 put the first digits of month and day on the slashes around them, and
    head 2 the hyphens on the year. Below, both layers: the first (top row) aligns already, with the boundaries
    between fields a row earlier or later in some heads, and in its head 2 the first row rests on `monday`.
    """),
    code("""
    viz.attention_layers(layers, written, keys, title="monday 07/06/2010: cross-attention, both layers")
    """),
    md(r"""
    **The encoder's self-attention** (the second map `setup.sample` gives, the last encoder layer) has no
    reordering to do; it builds the memory the decoder reads (the same date again). In the run shown, head 1
    keeps the words from the first `/` on mostly on themselves (`06` 0.57 on itself, `2010` 0.43) but not the
    first two: `monday` puts 0.32 on `06` and 0.13 on itself, `07` 0.32 on the `/` after it and 0.14 on
    itself. Heads 2 and 4 gather the separators' attention on `2010`, and in head 2 `06` looks at `07`, the
    number before it. In `07/06/2010` nothing but order tells the day from the month, so a word's vector in
    the memory must carry its place among the numbers; the positional encoding and this attention put it there.
    """),
    code("""
    w, queries, keys_self = maps["encoder_self_attention"]
    viz.attention_heads(w, queries, keys_self, title="dates: encoder self attention (last layer)")
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
    def translate(dates):
        \"\"\"Greedy and beam decoding of (text, date) pairs, each output marked right or wrong.\"\"\"
        ids = [src_tok.encode(text) for text, _ in dates]
        b = make_seq2seq_batch([(i, [0]) for i in ids])               # pads the sources (the targets are unused)
        greedy = greedy_decode(model, b.src, b.src_mask).numpy()
        beam = beam_search(model, b.src, beam_size=4, src_mask=b.src_mask).numpy()
        for (text, date), i, g, bm in zip(dates, ids, greedy, beam):
            g, bm = (tgt_tok.decode(strip_after_eos(o)) for o in (g, bm))
            g_ok, bm_ok = ("ok   " if out == date.isoformat() else "WRONG" for out in (g, bm))
            unknown = [src_tok.itos[j] for j in i].count("<unk>")
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
    **Where it fails.** Two inputs outside the task: an ISO date as the source (the format the model writes,
    never one it reads), and a year outside 1969–2068, whose word the vocabulary does not hold:
    """),
    code("""
    outside = [("1969-07-20", moon), ("4 July 1776", datetime.date(1776, 7, 4)),
               ("the 4th of July 2100", datetime.date(2100, 7, 4))]
    translate(outside)
    for text, _ in outside[1:]:
        alignment(text)
    layers_f, written_f, keys_f = alignment(outside[0][0])
    viz.attention_heads(layers_f[-1], written_f, keys_f, title=f"{outside[0][0]}: cross-attention, last layer")
    """),
    md(r"""
    In the run shown every date in the task's formats, and every one in the four formats outside them, is
    right, by greedy decoding and by beam search alike: a model this sure of every character leaves a beam
    little to find. The words are what matter, not the template: `20/7/1969` has slashes as `dd/mm/yyyy` and
    an unpadded month as `d.m.yyyy`, and `1969 july 20` puts the year where no format of the task does.

    The failures explain themselves through the tokens and the map. A year outside 1969–2068 is a word the
    source vocabulary does not hold: it reads as `<unk>`, and the model writes some year of its range (the
    year's rows look mostly at `<unk>`, which carries no digits: for `4 July 1776`, the last three of the four,
    the first looking at `july`), with the right month and day. The ISO source keeps
    its words known (`1969`, `07`, `20` and `-`), and the year and month come out right; but the day's rows
    split, in the run shown, between `20` and the hyphens and `07`, and the day comes out wrong. In training
    the hyphen only ever stood inside a day written out (`twenty - third`): a word means what its training
    contexts made it mean, and here it pulls the day's rows away from `20`.
    """),
    md(r"""
    ## Exercises

    1. Which head aligns the year? For twenty held-out dates, find the head of the last layer whose weight on
       the year's word, summed over the rows that write the year, is largest. Is it the same head each time?
       Does the answer change between the two layers?
    2. Train with the task's defaults and `Trainer(..., monitor="val_accuracy", target=0.95)`. At which step
       does it stop, and what is the test exact match then, against section 3's? Which dates does it get wrong,
       and what does the map of one of them show?
    3. Mask the weekday: decode `monday 07/06/2010` with the `monday` column of `src_mask` set to False. Does
       the output change? Then replace the weekday with the wrong one (`tuesday 07/06/2010`). What does this
       say about what the model learned from the weekday? (`greedy_decode(model, ids, src_mask)` takes the mask
       as a bool tensor $(1, 1, 1, S)$, True where a source word may be looked at: `mask = np.ones((1, 1, 1,
       ids.shape[1]), dtype=bool)`, `mask[..., j] = False` for the weekday's position `j`, then
       `greedy_decode(model, ids, mt.tensor(mask))` with `ids` as in `cross_attention`.)
    4. Set `heads=1` in `build("dates", ...)` (and then `layers=1`). Does the run still reach a good exact
       match in 300 steps? What does the single map look like?
    """),
]
