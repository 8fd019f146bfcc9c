"""Notebook 08_decoding: its cells, built by ``tools/make_notebooks.py``."""

from .cells import ONE_BLAS_THREAD, SETUP, code, exercise, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "10%": "chance among the 10 digits",
    "-3.0 -3.4 -2.138 -2.208": "exercise 2's own log-probabilities, and its answer worked out from them, -3.4 / lp(8) "
                               "and -3.0 / lp(5)",
    "2e-8": "exercise 3's answer, (0.283 / 0.684)^20, worked out from two printed probabilities",
}

CELLS = [
    md(r"""
    # 08 · Decoding: from next-token scores to a whole sequence

    **What this notebook teaches.** A trained decoder does not write a sequence: it scores the *next*
    token given the tokens before it. Writing means asking again and again, each time with one more token
    (the paper, section 3: the model is "auto-regressive, consuming the previously generated symbols as
    additional input when generating the next"). The probability of an output $Y = y_1 \ldots y_T$ (its
    last token `<eos>`) given the input $X$ is the product of the next-token probabilities,

    $$
    \log P(Y \mid X) = \sum_{t=1}^{T} \log p(y_t \mid y_{<t}, X),
    $$

    and decoding methods differ in how they choose $Y$:

    | method | what it does | in `minitransformer.train` |
    |---|---|---|
    | greedy | $y_t = \arg\max_v p(v \mid y_{<t}, X)$ | `greedy_decode` |
    | beam search | keeps the $k$ most probable prefixes; picks the best $\log P(Y \mid X) / lp(Y)$ | `beam_search` |
    | sampling | draws $y_t$ from $\mathrm{softmax}(z_t / \tau)$ or its top $k$ | `generate` (decoder-only LMs) |

    with the length penalty $lp(Y) = \left(\frac{5 + \lvert Y \rvert}{6}\right)^\alpha$ of Wu et al. 2016, the logits
    $z_t$ (the scores before the softmax) and the temperature $\tau$. Section 6 writes a sampler for the
    encoder–decoder.

    Steps: **1** a model trained on the reverse task of notebook 05, briefly, so that it still makes
    mistakes · **2** teacher forcing (training) against generation (inference): greedy decoding of a batch,
    written out as a loop against `greedy_decode`, and what one mistake does · **3** the causal mask seen from
    the decoder · **4** greedy decoding of one source, step by step · **5** beam search: what it keeps, the
    length penalty, a source where it finds a more probable output than greedy · **6** sampling with
    temperature and top-$k$ · **7** the key/value cache: the same numbers for less work · **8** what the
    source document says about generating.

    **Exercises in the text** (assignment A6, `minitransformer assignments list`): greedy decoding of a batch
    (section 2), one beam step and the length penalty (section 5), the tempered softmax with top-$k$
    (section 6), in NumPy, each checked against the library. In assignment A6's student copy
    (`minitransformer assignments build 6 DIR`) the library's own A6 bodies are taken out too: from the check
    after section 2's exercise on, the notebook stops at the first cell that calls one (`greedy_decode`, later
    `beam_search`, `length_penalty` and `generate`) with `NotImplementedError`, until you have written them in
    `minitransformer/train/decoding.py`.
    """),
    SETUP,
    *ONE_BLAS_THREAD,
    md(r"""
    ## 1. A model that reverses digit sequences

    Notebook 05's task (`3 1 4 1 5` → `5 1 4 1 3`, lengths 5 to 8) and model (notebook 05's `nn.Transformer`,
    the [encoder–decoder](../docs/formulas/encoder-decoder.md), $d_\text{model} = 32$, 2 heads, two encoder and
    two decoder layers, pre-LN; the paper's is post-LN), made by `train.tasks.build("reverse", ...)` and trained by
    `train.Trainer` for 300 steps: half of notebook 05's 600, so that it reverses most sequences but still
    makes mistakes for the decoders to differ on. It takes seconds (the time is printed).
    """),
    code("""
    from minitransformer.data import BOS, EOS, PAD, make_seq2seq_batch
    from minitransformer.train import Trainer, strip_after_eos
    from minitransformer.train.tasks import build

    settings = dict(min_len=5, max_len=8, n_train=5000, n_val=200, n_test=500, d_model=32, heads=2, layers=2, d_ff=64,
                    batch_size=32, steps=300, warmup=30, lr=4e-3)
    # data, model, the paper's Adam, warm-up + cosine schedule (as notebook 05), loss; seed 0
    setup = build("reverse", **settings)
    model, tok = setup.model, setup.tokenizer
    print(f"{model.num_parameters():,} parameters; {tok.vocab_size} tokens:", " ".join(tok.itos))
    trainer = Trainer(model, setup.optimizer, setup.loss_fn, schedule=setup.schedule, clip=1.0, desc="reverse")
    history = trainer.fit(setup.train_data, steps=settings["steps"])
    print(f"{trainer.step} steps in {trainer.elapsed:.1f} s")
    """),
    md(r"""
    The 500 test pairs, which training never saw, as one batch:
    """),
    code("""
    test = setup.test                                      # build()'s test split: (source, target) id lists
    tb = make_seq2seq_batch(test)
    for name in ("src", "src_mask", "tgt_in", "tgt_out"):
        print(f"{name:8}", getattr(tb, name).shape)
    model.eval()                                           # no dropout from here on (it is 0 here anyway)


    def show(ids):
        \"\"\"Token ids as text, up to the first <eos>: `3 1 4`.\"\"\"
        return " ".join(tok.itos[i] for i in strip_after_eos(list(ids)))
    """),
    md(r"""
    ## 2. Teacher forcing against generation

    **Training: teacher forcing.** The decoder reads the *true* target shifted right, `tgt_in` =
    `<bos>` $y_1 \ldots y_{T-1}$, and every position $t$ scores the next token, all positions in one forward
    pass. The loss ([cross-entropy](../docs/formulas/cross-entropy.md)) is
    $-\frac{1}{\sum_n T_n} \sum_n \sum_t \log p(y^{(n)}_t \mid y^{(n)}_{<t}, X^{(n)})$ (notebook 05), the mean over
    the real target tokens, with the true prefix $y_{<t}$.

    **Inference: generation.** There is no true target. The decoder reads `<bos>` and then its own
    outputs, $\hat y_t = \arg\max_v p(v \mid \hat y_{<t}, X)$, one forward pass per token. While
    $\hat y_{<t} = y_{<t}$ the two are the same computation; after the first mistake the model reads a prefix
    unlike anything it was trained on, and is exposed to its own mistake (*exposure bias*).
    """),
    md(r"""
    ### Exercise A6 · greedy decoding of a batch

    Generation for the 500 test sources at once. Encode the sources once; every row starts from `<bos>`;
    at every step run the decoder on the prefixes `ys` `(B, t)`, take the logits of the newest position
    `(B, V)` and append their arg-max to every row. A row that has produced `<eos>` has ended: it takes
    `<pad>` from then on. Stop when every row has ended, or after `max_len` tokens.
    """),
    exercise("a6-greedy-batch", """
    def greedy(model, src, src_mask, max_len):
        \"\"\"Greedy decoding of a batch: source ids (B, S) -> tokens (B, <= max_len), without <bos>.\"\"\"
        with mt.no_grad():
            memory = model.encode(src, src_mask)                             # (B, S, d_model)
            ys = np.full((src.shape[0], 1), BOS)                             # (B, 1)
            done = np.zeros(src.shape[0], dtype=bool)
            for _ in range(max_len):
                z = model.decode(mt.tensor(ys), memory, src_mask).numpy()[:, -1]   # (B, V): newest position
                ### BEGIN SOLUTION A6: y = z.argmax(-1) (B,), PAD where done; done |= y == EOS; append y to ys; stop
                y = np.where(done, PAD, z.argmax(-1))                        # (B,): an ended row takes <pad>
                done |= y == EOS
                ys = np.concatenate([ys, y[:, None]], axis=1)                # (B, t + 1)
                if done.all():
                    break
                ### END SOLUTION
        return ys[:, 1:]


    mine = greedy(model, tb.src, tb.src_mask, max_len=model.max_len)
    print("greedy:", mine.shape, "= (test sources, tokens);  the first:", show(mine[0]), "  target:", show(test[0][1]))
    """),
    md(r"""
    **Check** against the library's `greedy_decode`: the same tokens, and the same stop once every row has
    ended, checked on the first source alone (in the whole batch some row takes all `max_len` = 10 steps).
    Then the two accuracies on the test set: the teacher-forced
    accuracy per token and the exact-sequence accuracy of greedy decoding (every token right, then `<eos>`),
    as `setup.final_metrics` measures them:
    """),
    code("""
    from minitransformer.train import greedy_decode

    generated = greedy_decode(model, tb.src, tb.src_mask).numpy()        # (500, T'): given its OWN prefix
    assert mine.shape == generated.shape and (mine == generated).all()
    first = greedy(model, tb.src[:1], tb.src_mask[:1], max_len=model.max_len)   # one row: it stops at its <eos>
    assert first.shape == greedy_decode(model, tb.src[:1], tb.src_mask[:1]).numpy().shape
    final = setup.final_metrics(model)
    print("greedy_decode gives the same tokens; the first source alone stops at its <eos>:", first.shape)
    print(f"test: token accuracy (teacher-forced) {final['test_token_accuracy']:.1%}, "
          f"exact-sequence accuracy (greedy) {final['test_exact_sequence_accuracy']:.1%}")
    """),
    md(r"""
    Both on the whole test set, and the first test source that generation gets wrong:
    """),
    code("""
    with mt.no_grad():
        tf_logits = model(tb.src, tb.tgt_in, tb.src_mask, tb.tgt_mask)   # (500, T, V): every position at once
    tf_pred = tf_logits.numpy().argmax(-1)                  # (500, T): the next token given the TRUE prefix
    print("teacher-forced predictions", tf_pred.shape, "  generated", generated.shape)

    i = next(n for n, (src, tgt) in enumerate(test) if strip_after_eos(generated[n]) != tgt)
    src, tgt = test[i]
    T = len(tgt) + 1                                       # the target's tokens and <eos>
    print(f"\\ntest source {i}: {show(src)}")
    print(f"{'position':27}", " ".join(f"{t:>5}" for t in range(T)))
    for name, row in (("target", tb.tgt_out.numpy()[i]), ("teacher-forced prediction", tf_pred[i]),
                      ("generated", generated[i])):
        print(f"{name:27}", " ".join(f"{tok.itos[v]:>5}" for v in row[:T]))
    """),
    md(r"""
    At position 5 both make the same mistake, 7 for 4: up to there they read the same prefix, so they
    compute the same thing. After it, teacher forcing is handed the true 4 and predicts the rest right;
    generation reads its own 7 and writes, at position 6, the 4 it skipped: one mistake has caused a
    second. How far a mistake carries, over the whole test set: the accuracy per token of the two, and the
    same counted only at the positions *after* the first mistake of each sequence that generation gets
    wrong, the position right after it apart from the rest; then what the wrong outputs look like.
    """),
    code("""
    target = tb.tgt_out.numpy()                              # (500, T): target + <eos>, 0 after it
    width = target.shape[1]
    gen = np.full_like(target, PAD)
    gen[:, :min(width, generated.shape[1])] = generated[:, :width]   # generated, on the target's positions
    real = target != PAD                                     # (500, T)
    tf_right, gen_right = (tf_pred == target) & real, (gen == target) & real
    first_error = np.where((~gen_right & real).any(1), (~gen_right & real).argmax(1), width)   # (500,)
    after = real & (np.arange(width) > first_error[:, None])  # positions after a generation mistake
    just_after = after & (np.arange(width) == first_error[:, None] + 1)   # the position right after it
    later = after & ~just_after                               # two or more positions after it

    print(f"per token, all positions:       teacher-forced {tf_right.sum() / real.sum():.1%}, "
          f"generated {gen_right.sum() / real.sum():.1%}")
    print(f"per token, after a first mistake ({after.sum()} positions in {(first_error < width).sum()} sequences): "
          f"teacher-forced {tf_right[after].sum() / after.sum():.1%}, "
          f"generated {gen_right[after].sum() / after.sum():.1%}")
    for name, where in (("  just after it", just_after), ("  from the next on", later)):
        print(f"{name} ({where.sum():3} positions):  teacher-forced {tf_right[where].mean():.1%}, "
              f"generated {gen_right[where].mean():.1%}")

    wrong = [(strip_after_eos(g), t) for g, (_, t) in zip(generated, test) if strip_after_eos(g) != t]
    swapped = sum(any(g == t[:k] + [t[k + 1], t[k]] + t[k + 2:] for k in range(len(t) - 1)) for g, t in wrong)
    print(f"\\nof the {len(wrong)} wrong outputs: {swapped} are the target with two neighbouring digits swapped, "
          f"{sum(len(g) != len(t) for g, t in wrong)} have a digit too few or too many")
    """),
    md(r"""
    The figures here are those of the run shown; a run of yours may differ in the last digits, as float32
    rounding differs between machines and library versions. After a first mistake, teacher forcing, fed the
    right prefix, still gets 97.3% of the remaining tokens right; generation, reading its own mistake, 58.9%.
    Most of that gap is the very next token (15.2% right against 100%): most of generation's wrong outputs
    here (21 of 33) are the target with two neighbouring digits swapped, as in the example. The model writes a
    digit one step early, then the one it skipped, which is wrong there, and from then on it is right again
    (77.2% of the later positions, where chance is about 10%). A skipped or repeated digit instead shifts
    every digit after it (5 outputs are a digit too short or too long). Training showed the model only right
    prefixes, so what it does after a wrong one is not something it was taught. The loss and the token
    accuracy measured in training are teacher-forced: they measure the first kind of prediction, and only
    decoding measures the second.

    ## 3. The causal mask, seen from the decoder

    In training, all positions are computed at once, and `tgt_in` holds the whole target: position $t$
    reads $y_t$ (with $y_0$ = `<bos>`) and predicts $y_{t+1}$, which sits at position $t + 1$ of the same
    input. Were position $t$ allowed to attend to position $t+1$, it could copy the answer. The decoder's
    self-attention therefore uses the causal mask $M_{ij} = [\, j \le i \,]$ (paper 3.2.3,
    [masks](../docs/formulas/masks.md)); the library's `DecoderLayer` builds it itself, always, so it cannot
    be forgotten. The self-attention maps of the example above, teacher-forced, one row per layer and one
    column per head, drawn with that mask (`mask=`, as in notebook 02): the keys it hides are hatched grey, so
    that an empty cell is not taken for a weight of 0 the model chose:
    """),
    code("""
    one = make_seq2seq_batch([test[i]])
    with mt.no_grad():
        model(one.src, one.tgt_in, one.src_mask, one.tgt_mask)
    maps = [w[0] for w in model.decoder.self_attn_weights]    # per layer: (heads, T, T)
    labels = [tok.itos[v] for v in one.tgt_in.numpy()[0]]
    print("self-attention weights", maps[0].shape, "per layer;  largest weight above the diagonal:",
          max(float(np.triu(w.numpy(), k=1).max()) for w in maps))
    viz.attention_layers(maps, labels, labels, title="decoder self-attention (teacher-forced): no looking ahead",
                         mask=F.causal_mask(len(labels)))          # the hidden keys hatched, not weights of 0
    """),
    md(r"""
    What the mask guarantees, checked: change the token at position 4 of `tgt_in`, and the logits of
    positions 0 to 3 do not change at all; those of positions 4 and after do.
    """),
    code("""
    changed = one.tgt_in.numpy().copy()                     # (1, T)
    changed[0, 4] = tok.stoi["9"] if changed[0, 4] != tok.stoi["9"] else tok.stoi["0"]
    with mt.no_grad():
        before = model(one.src, one.tgt_in, one.src_mask).numpy()[0]           # (T, V)
        after_change = model(one.src, mt.tensor(changed), one.src_mask).numpy()[0]
    print("tgt_in  ", " ".join(tok.itos[v] for v in one.tgt_in.numpy()[0]), " ->",
          " ".join(tok.itos[v] for v in changed[0]), "(position 4 changed; <bos> is position 0)")
    print("max |change of the logits| per position:", np.abs(after_change - before).max(-1).round(3))
    print("positions 0-3 bitwise equal:", np.array_equal(after_change[:4], before[:4]))
    """),
    md(r"""
    **At inference the mask has nothing left to hide.** When the decoder has read positions $0 \ldots t$, the
    only output used is that of the newest, $t$, which may see all of them: the last row of the
    causal mask is all True. With the key/value cache (section 7) the decoder computes that one row only;
    the library's mask for it is `causal_mask(t + 1)[t:]`, a single row of True. The earlier positions were
    computed at earlier steps, each when it was the newest, before any later token existed: the order of
    computation does what the mask does in training. (Without the cache the whole prefix is recomputed,
    and the mask keeps the earlier positions as they were, and as they were in training.)
    """),
    code("""
    t = 5
    causal = F.causal_mask(t + 1).numpy()                    # (t + 1, t + 1)
    print(f"causal mask of {t + 1} positions:\\n{causal.astype(int)}")
    print(f"the newest position's row, causal_mask({t + 1})[{t}:]:", causal[t:].astype(int), causal[t:].shape)
    """),
    md(r"""
    ## 4. Greedy decoding, written out

    $\hat y_t = \arg\max_v p(v \mid \hat y_{<t}, X)$: encode the source once; start from `<bos>`; at every step
    run the decoder on the prefix, take the logits of its last position, append the arg-max; stop at
    `<eos>`. The example source, step by step:
    """),
    code("""
    src_ids = mt.tensor([src])                                  # (1, S)
    src_mask = F.padding_mask(src_ids, PAD)                     # (1, 1, 1, S): real source tokens
    with mt.no_grad():
        memory = model.encode(src_ids, src_mask)                # (1, S, d_model): once for all steps
        print("source", src_ids.shape, "-> memory", memory.shape)
        ys = [BOS]
        for step in range(1, model.max_len + 1):
            logits = model.decode(mt.tensor([ys]), memory, src_mask)    # (1, t, V): every position of the prefix
            z = logits.numpy()[0, -1]                           # (V,): the newest position's logits
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()  # softmax
            ys.append(int(p.argmax()))
            print(f"step {step}: decoder input (1, {len(ys) - 1}) -> logits {logits.shape}; "
                  f"next {tok.itos[ys[-1]]:5} with p = {p.max():.3f}")
            if ys[-1] == EOS:
                break
    print("greedy:", show(ys[1:]), "  target:", show(tgt))
    """),
    md(r"""
    Section 2's exercise, `greedy`, is the same loop for a whole batch: every row advances together.
    """),
    md(r"""
    ## 5. Beam search

    Greedy commits to each token as it goes: a token that looks best now can lead to a less probable whole
    sequence. Beam search (`train.beam_search`) keeps the $k$ best *prefixes* instead. Each step extends
    every *alive* hypothesis $Y$ by every token $v$, scores the $k \times V$ extensions by
    $\log P(Y v \mid X) = \log P(Y \mid X) + \log p(v \mid Y, X)$ and takes the $2k$ best. Those among the $k$
    best that end with `<eos>` leave the beam for a separate set of the $k$ best *finished* hypotheses; the
    $k$ best of the others are the new alive ones, so the search always goes on with $k$ (with $2k$
    candidates, at most $k$ of which end, $k$ that go on remain). Keeping the finished apart is what the paper's
    tensor2tensor, GNMT and Hugging Face do; letting only an `<eos>` among the $k$ best finish is Hugging Face's
    rule (tensor2tensor lets any of the $2k$). It stops once $k$ have finished and the best alive one
    cannot beat them. With $k = 1$ this is greedy.

    The probability of a whole output, $\log P(Y \mid X)$, is one teacher-forced forward pass on $Y$:
    """),
    code("""
    from minitransformer.train import beam_search, exact_match


    def log_prob(model, pairs):
        \"\"\"log P(y | x) = sum_t log p(y_t | y_<t, x) of each pair (x, y); y without <eos>, which is added.\"\"\"
        b = make_seq2seq_batch(pairs)
        with mt.no_grad():
            logp = F.log_softmax(model(b.src, b.tgt_in, b.src_mask, b.tgt_mask), axis=-1).numpy()   # (N, T, V)
        y = b.tgt_out.numpy()                                                      # (N, T)
        picked = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]           # (N, T): log p(y_t | ...)
        return np.where(y != PAD, picked, 0.0).sum(-1)                             # (N,)

    beam, beam_logp = beam_search(model, tb.src, beam_size=4, src_mask=tb.src_mask, return_scores=True)
    beam = beam.numpy()
    greedy_logp = log_prob(model, [(s, strip_after_eos(y)) for (s, _), y in zip(test, generated)])
    np.testing.assert_allclose(beam_logp.numpy(), log_prob(model, [(s, strip_after_eos(y)) for (s, _), y in
                                                                    zip(test, beam)]), atol=1e-4)
    print("beam_search's scores are log P(Y | X), as the teacher-forced pass computes them")
    print("beam_size=1 gives greedy's tokens:", bool((beam_search(model, tb.src, beam_size=1,
                                                                  src_mask=tb.src_mask).numpy() == generated).all()))
    better = np.flatnonzero(beam_logp.numpy() > greedy_logp + 1e-4)
    print(f"beam (k = 4) found a more probable output than greedy for {len(better)} of {len(test)} sources")
    print(f"exact-sequence accuracy: greedy {exact_match(generated, tb.tgt_out.numpy()):.1%}, "
          f"beam {exact_match(beam, tb.tgt_out.numpy()):.1%}")
    """),
    md(r"""
    The first of those sources, both outputs and their log-probabilities (a run that finds none, as training on
    another CPU may, shows source 0, where beam search then finds nothing more probable than greedy's output):
    """),
    code("""
    j = int(better[0]) if len(better) else 0                 # none better: source 0
    src_j, tgt_j = test[j]
    print(f"source {j}: {show(src_j)}    target: {show(tgt_j)}")
    for name, y, lp in (("greedy", generated[j], greedy_logp[j]), ("beam", beam[j], beam_logp.numpy()[j])):
        verdict = "right" if strip_after_eos(y) == tgt_j else "wrong"
        print(f"  {name:6} {show(y):18} log P = {lp:7.3f}   P = {np.exp(lp):.3f}   {verdict}")
    """),
    md(r"""
    ### Exercise A6 · one beam step

    **What the beam keeps**, written out for that source, hypothesis by hypothesis. A hypothesis is a pair
    (tokens `ys` from `<bos>`, $\log P$). Write one step: every alive hypothesis is extended by every token
    $v$, scored $\log P + \log p(v \mid \text{ys}, x)$ (the log-softmax of the newest position's logits), and
    the $2k$ best candidates are taken; those among the first $k$ that end with `<eos>` join `finished`, which
    keeps its $k$ best by $\log P / lp(\lvert Y \rvert)$ (`length_penalty`, $\lvert Y \rvert$ counting the
    `<eos>`, not `<bos>`); the $k$ best of the candidates that do not end are the new alive ones. Keep both lists
    best first: the stop line below reads `alive[0]` as the best and `finished[-1]` as the worst. Printed: the
    $k = 4$ alive after every step, as tokens with their $\log P$, the finished ones marked `done:`, and the
    winner, checked against `beam_search`.
    """),
    exercise("a6-beam-step", """
    from minitransformer.train import length_penalty


    def beam_by_hand(model, src, k, alpha, max_len, verbose=False):
        \"\"\"Beam search for one source, hypothesis by hypothesis: the finished and the alive (tokens, log P) at the
        end, and the winner.\"\"\"
        src_ids = mt.tensor([src])
        src_mask = F.padding_mask(src_ids, PAD)

        def normalised(h):                                                # log P / lp(|Y|), |Y| without <bos>
            return h[1] / length_penalty(len(h[0]) - 1, alpha)

        with mt.no_grad():
            memory = model.encode(src_ids, src_mask)                      # (1, S, d_model)
            alive, finished = [([BOS], 0.0)], []                          # one hypothesis to start: <bos>, log P = 0
            for step in range(1, max_len + 1):
                ### BEGIN SOLUTION A6: extend alive by every v; 2k best; <eos> ones of the first k -> finished; k others
                candidates = []
                for ys, s in alive:
                    z = model.decode(mt.tensor([ys]), memory, src_mask).numpy()[0, -1]   # (V,)
                    logp = z - z.max() - np.log(np.exp(z - z.max()).sum())              # log-softmax
                    candidates += [(ys + [v], s + logp[v]) for v in range(len(logp))]    # every extension
                candidates = sorted(candidates, key=lambda c: -c[1])[:2 * k]            # the 2k best by log P
                finished += [c for c in candidates[:k] if c[0][-1] == EOS]              # ended among the k best
                finished = sorted(finished, key=lambda h: -normalised(h))[:k]          # the k best by log P / lp
                alive = [c for c in candidates if c[0][-1] != EOS][:k]                  # the k best that go on
                ### END SOLUTION
                if verbose:
                    print(f"step {step}:", " | ".join(f"{' '.join(tok.itos[v] for v in ys[1:])} {s:.2f}"
                                                      for ys, s in alive))
                    print("   done:", " | ".join(f"{' '.join(tok.itos[v] for v in ys[1:-1])} {s:.2f}"
                                                 for ys, s in finished))
                # stop: k finished, and the best alive log P (it only falls) / the largest lp cannot beat the worst
                if len(finished) == k and alive[0][1] / length_penalty(max_len, alpha) <= normalised(finished[-1]):
                    alive = []                                            # none of them can win
                    break
        # the winner: the best log P / lp(|Y|) of the finished and the alive ones (a finished one first of equal)
        return finished, alive, max(finished + alive, key=normalised)


    final_finished, _, best = beam_by_hand(model, src_j, k=4, alpha=0.0, max_len=model.max_len, verbose=True)
    print("winner:", show(best[0][1:]), f"log P = {best[1]:.3f};  beam_search:", show(beam[j]),
          f"log P = {beam_logp.numpy()[j]:.3f}")
    """),
    md(r"""
    **Check** with $k = 2$ and $k = 4$, on the first 20 test sources and on every source where beam search beats
    greedy (`better`; on the others the beam's winner is greedy's output, so plain greedy decoding would pass):
    the same winner as `beam_search`, and the same $\log P$. And the example's finished set holds $k$ different
    hypotheses, ranked by $\log P$ itself at $\alpha = 0$, highest first (not by $\log P$ per token, which
    favours the longer ones).
    """),
    code("""
    checked = list(range(20)) + [int(n) for n in better]      # better: where beam_search beats greedy
    for k in (2, 4):
        tokens, scores = beam_search(model, tb.src, beam_size=k, src_mask=tb.src_mask, return_scores=True)
        for n in checked:
            _, _, (winner, logp) = beam_by_hand(model, test[n][0], k=k, alpha=0.0, max_len=model.max_len)
            assert strip_after_eos(winner[1:]) == strip_after_eos(tokens.numpy()[n]), f"source {n}, k = {k}"
            assert abs(logp - scores.numpy()[n]) < 1e-4, f"source {n}, k = {k}: log P {logp} vs {scores.numpy()[n]}"
    logps = [s for _, s in final_finished]
    assert logps == sorted(logps, reverse=True), f"the finished set is not ranked by log P: {logps}"
    assert len({tuple(ys) for ys, _ in final_finished}) == len(final_finished) == 4, "finished: 4 different ones"
    print(f"beam_by_hand: beam_search's winners and scores, k = 2 and 4, on {len(checked)} sources; "
          f"the example's finished set ranked by log P")
    """),
    md(r"""
    In the run shown, greedy's path is the top line up to step 5. At step 4 greedy took `1` (log P $-0.69$) over `5`
    ($-1.44$); the beam kept both, and at step 6 the hypothesis through `5` ranks first. At step 8 the first
    hypothesis ends, `1 6 0 1 5 2 8 <eos>` ($-2.24$): it leaves the beam for the finished set, and the beam
    goes on with four alive ones. At step 9 four have finished, and the best alive one ($-6.81$) is already
    worse than the worst of them, so the search stops. Greedy's own output ends last of the four, at
    $-2.591$ against $-1.963$.
    """),
    md(r"""
    ### Exercise A6 · the length penalty

    Every token adds a negative $\log p$, so a longer hypothesis has a lower
    $\log P$, and ranking by $\log P$ alone favours short outputs. The Transformer paper (section 6.1) uses
    beam size 4 with the length penalty of Wu et al. 2016 (GNMT, equation 14, without its coverage penalty
    $cp$; the Transformer paper names only the length penalty), $\alpha = 0.6$: the winner is
    the hypothesis with the best

    $$
    \frac{\log P(Y \mid X)}{lp(Y)}, \qquad lp(Y) = \frac{(5 + \lvert Y \rvert)^\alpha}{(5 + 1)^\alpha},
    $$

    where $\lvert Y \rvert$ counts the tokens with `<eos>`. The library (`train.length_penalty`), as the
    reference implementation (tensor2tensor's beam search) does, ranks the finished hypotheses by it, each at
    its own length, and the alive ones at the end; while searching, the alive ones all have the same length,
    so ranking them by $\log P$ is ranking them by $\log P / lp$. ($\alpha = 0$ makes $lp = 1$.) Keeping the
    finished apart matters here: a short finished hypothesis left in the beam would take the place of an alive
    one, and, ranked there by $\log P$, could push out one that wins on $\log P / lp$. Compute $lp$ for
    $\lvert Y \rvert = 1, \ldots, 10$ at once; it is checked against the library's `length_penalty`:
    """),
    exercise("a6-length-penalty", """
    lengths = np.arange(1, 11)
    for alpha in (0.0, 0.6, 1.0):
        ### BEGIN SOLUTION A6: lp = (5 + |Y|)^alpha / (5 + 1)^alpha for every length at once, (10,)
        lp = ((5 + lengths) / 6) ** alpha                   # GNMT eq. 14
        ### END SOLUTION
        np.testing.assert_allclose(lp, length_penalty(lengths, alpha))
        print(f"alpha {alpha}: lp(|Y| = 1..10) =", lp.round(3))
    a, b = (-2.0, 4), (-2.5, 9)                              # (log P, |Y|) of two hypotheses
    for alpha in (0.0, 0.6):
        ranked = [s / length_penalty(n, alpha) for s, n in (a, b)]
        print(f"alpha {alpha}: log P / lp = {ranked[0]:.3f} (|Y| = 4) against {ranked[1]:.3f} (|Y| = 9)")
    """),
    md(r"""
    With $\alpha = 0.6$ the longer hypothesis wins although it is less probable. Here the hypotheses of a
    source have about the same length (the source's plus `<eos>`), so the penalty decides little. The
    example's final beam, and the whole test set with both $\alpha$:
    """),
    code("""
    for hyp, s in final_finished:
        n = len(hyp) - 1
        print(f"  {' '.join(tok.itos[v] for v in hyp[1:]):24} |Y| = {n}  log P = {s:7.3f}  "
              f"/ lp: alpha 0 {s:7.3f}, alpha 0.6 {s / length_penalty(n, 0.6):7.3f}")
    beam_06 = beam_search(model, tb.src, beam_size=4, src_mask=tb.src_mask, alpha=0.6).numpy()
    differ = [n for n, (x, y) in enumerate(zip(beam, beam_06)) if strip_after_eos(x) != strip_after_eos(y)]
    print(f"test set: alpha 0.6 changes the winner for {len(differ)} of {len(test)} sources; exact-sequence accuracy "
          f"{exact_match(beam_06, tb.tgt_out.numpy()):.1%} (alpha 0: {exact_match(beam, tb.tgt_out.numpy()):.1%})")
    for n in differ:                                         # each output's log P, and its |Y| with <eos>
        outputs = [strip_after_eos(beam[n]), strip_after_eos(beam_06[n])]
        s0, s6 = log_prob(model, [(test[n][0], y) for y in outputs])
        print(f"  source {n}, target {show(test[n][1])}:  alpha 0 {show(beam[n])} (|Y| = {len(outputs[0]) + 1}, "
              f"log P = {s0:.3f}),  alpha 0.6 {show(beam_06[n])} (|Y| = {len(outputs[1]) + 1}, log P = {s6:.3f})")
    """),
    md(r"""
    In the example's finished set, $\alpha = 0.6$ nearly swaps the second and third hypotheses: the one a digit
    short ($\lvert Y \rvert = 8$, $\log P = -2.239$) stays ahead of a complete one ($\lvert Y \rvert = 9$,
    $-2.362$) only just, $-1.408$ against $-1.421$ once divided by $lp$. The winner stays here. On the whole
    test set, in the run shown, $\alpha = 0.6$ changes the winner for one source, and for the worse: at
    $\alpha = 0$ the right output wins ($\log P = -1.415$); divided by its larger $lp$, an output a digit too
    long (a 9 repeated, $-1.427$) beats it, and the exact-sequence accuracy drops from 94.6% to 94.4%. The
    penalty is meant for the opposite case, a right output that loses to one cut short, which an earlier run
    of this notebook showed. Either way it is a knife-edge: the numbers' last digits differ from one CPU to
    another (see the notebooks' README), and another run may change no winner.
    """),
    md(r"""
    ## 6. Sampling with temperature and top-$k$

    Greedy and beam search look for the most probable output: right for a task with one right answer
    (reversing, translating). A model that writes open-ended text instead *samples*, so that it does not
    always give the same most-likely continuation:

    $$
    p_\tau(v) = \mathrm{softmax}(z / \tau)_v = \frac{e^{z_v / \tau}}{\sum_u e^{z_u / \tau}} .
    $$

    The temperature $\tau$ (`temperature`) divides the logits: $\tau < 1$ sharpens the distribution,
    $\tau \to 0$ is the arg-max (greedy), $\tau = 1$ is the model's own distribution, $\tau > 1$ flattens it
    towards uniform. Top-$k$ keeps the $k$ largest logits and gives the others probability 0 (the
    [softmax](../docs/formulas/softmax.md) of $-\infty$); logits tied with the $k$-th largest are all kept, so a
    row may keep more than $k$ (Hugging Face's `TopKLogitsWarper` does the same). The distribution of the step
    where generation went wrong in section 2's example, at several temperatures:
    """),
    code("""
    step_wrong = int(first_error[i])                        # the first position generation got wrong
    prefix = [BOS] + list(generated[i][:step_wrong])
    with mt.no_grad():
        memory = model.encode(mt.tensor([src]), F.padding_mask(mt.tensor([src]), PAD))
        z = model.decode(mt.tensor([prefix]), memory, F.padding_mask(mt.tensor([src]), PAD)).numpy()[0, -1]   # (V,)
    right = int(target[i, step_wrong])                      # the target's token there (<eos> included)
    print(f"prefix {show(prefix[1:])!r}: the right next token is {tok.itos[right]}, greedy took "
          f"{tok.itos[generated[i][step_wrong]]}")
    """),
    md(r"""
    ### Exercise A6 · temperature and top-$k$

    Write $p_\tau$ for one row of logits `z` `(V,)`: with `top_k`, the logits below the $k$-th largest become
    $-\infty$ first; then $\mathrm{softmax}(z / \tau)$, computed as $e^{(z - \max z)/\tau}$ divided by its sum,
    so that a small $\tau$ does not overflow ($e^{100 / 0.01}$ is `inf`).
    """),
    exercise("a6-tempered-softmax", """
    def p_tau(z, tau, top_k=None):
        \"\"\"softmax(z / tau) over the top_k largest logits (all if None): (V,) -> (V,).\"\"\"
        ### BEGIN SOLUTION A6: below np.sort(z)[-top_k] -> -inf (if top_k); e = exp((z - max z) / tau); e / sum(e)
        if top_k is not None:
            z = np.where(z < np.sort(z)[-top_k], -np.inf, z)  # below the k-th largest: probability 0
        e = np.exp((z - z.max()) / tau)
        return e / e.sum()
        ### END SOLUTION


    print("p_tau(z, 1), the model's own distribution:", p_tau(z, 1.0).round(3))
    """),
    md(r"""
    **Check** against the library's softmax of $z / \tau$, on how $\tau$ acts ($p_{1/2} \propto p_1^2$), on
    top-$k$, and on logits that would overflow:
    """),
    code("""
    for tau in (0.5, 1.0, 2.0):
        np.testing.assert_allclose(p_tau(z, tau), F.softmax(mt.tensor(z / tau)).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p_tau(z, 0.5), p_tau(z, 1.0) ** 2 / (p_tau(z, 1.0) ** 2).sum(), rtol=1e-5, atol=1e-12)
    top3 = p_tau(z, 1.0, top_k=3)
    assert (top3 > 0).sum() == (z >= np.sort(z)[-3]).sum() >= 3  # the 3 largest, and any tied with the third
    assert np.isclose(top3.sum(), 1) and top3.argmax() == z.argmax()
    np.testing.assert_allclose(p_tau(np.array([100.0, 99.0, 0.0]), 0.01), [1.0, 0.0, 0.0], atol=1e-12)
    print("p_tau: the softmax of z / tau, p_0.5 proportional to p_1 squared, top-k, no overflow")
    """),
    code("""
    from matplotlib.figure import Figure

    panels = [(0.5, None), (1.0, None), (2.0, None), (1.0, 3)]
    fig = Figure(figsize=(12, 2.8), layout="constrained")
    for ax, (tau, k) in zip(fig.subplots(1, len(panels), sharey=True), panels):
        p = p_tau(z, tau, k)
        ax.bar(range(len(p)), p, color=["C3" if v == right else "C0" for v in range(len(p))])
        ax.set_xticks(range(len(p)), tok.itos, rotation=90, fontsize=7)
        ax.set_title(f"tau = {tau}" + (f", top-{k}" if k else ""))
        print(f"tau {tau}{f', top-{k}' if k else '':8} largest p = {p.max():.3f}  p(right token) = "
              f"{p[right]:.3f}  entropy = {-(p[p > 0] * np.log(p[p > 0])).sum():.2f} nats")
    fig.axes[0].set_ylabel("p(next token)")
    fig.supxlabel("next token")
    fig.suptitle("softmax(z / tau): the right token in red")
    fig
    """),
    md(r"""
    Whole sequences sampled for the 500 test sources, with the greedy loop of section 2 drawing the token
    instead of taking the arg-max (by the inverse of the cumulative distribution: the first token whose
    cumulative probability exceeds a uniform draw $u$). The lower the temperature, the closer to greedy:
    """),
    code("""
    def sample(model, src, src_mask, max_len, tau, top_k=None, rng=None):
        \"\"\"Like greedy() above, drawing each token from softmax(z / tau) over the top_k logits.\"\"\"
        with mt.no_grad():
            memory = model.encode(src, src_mask)
            ys = np.full((src.shape[0], 1), BOS)
            done = np.zeros(src.shape[0], dtype=bool)
            for _ in range(max_len):
                z = model.decode(mt.tensor(ys), memory, src_mask).numpy()[:, -1]       # (B, V)
                p = np.stack([p_tau(row, tau, top_k) for row in z])                    # (B, V)
                u = rng.random((len(p), 1))                                            # (B, 1) ~ U[0, 1)
                y = np.minimum((p.cumsum(-1) < u).sum(-1), p.shape[1] - 1)             # (B,) inverse CDF
                y = np.where(done, PAD, y)
                done |= y == EOS
                ys = np.concatenate([ys, y[:, None]], axis=1)
                if done.all():
                    break
        return ys[:, 1:]


    rng = np.random.default_rng(0)
    for tau, k in ((0.5, None), (1.0, None), (1.0, 2), (2.0, None)):
        drawn = sample(model, tb.src, tb.src_mask, model.max_len, tau, k, rng)
        accuracy = exact_match(drawn, tb.tgt_out.numpy())
        print(f"tau {tau}{f', top-{k}' if k else '':8} exact-sequence accuracy {accuracy:.1%}")
    print("greedy (tau -> 0)    ", f"exact-sequence accuracy {exact_match(generated, tb.tgt_out.numpy()):.1%}")
    repeat = np.repeat(tb.src.numpy()[i:i + 1], 5, axis=0)                     # (5, S): the example 5 times
    drawn = sample(model, mt.tensor(repeat), F.padding_mask(mt.tensor(repeat), PAD), model.max_len, 1.0, None, rng)
    print(f"\\nfive samples at tau 1 for {show(src)} (target {show(tgt)}):", " | ".join(show(y) for y in drawn))
    """),
    md(r"""
    Top-2 at $\tau = 1$ draws only between the two most likely tokens, and gets back part of what sampling
    lost (77.4% against 69.4%). In the example, most samples repeat greedy's mistake: at its step 6, the
    wrong 7 has $p = 0.684$ and the right 4 only $0.283$.
    """),
    md(r"""
    **The library's sampler** is `train.generate`, for a decoder-only language model (`nn.DecoderOnlyLM`,
    the decoder without cross-attention: GPT). It draws with the Gumbel-max trick,
    $v = \arg\max_v (z_v / \tau + g_v)$ with $g_v = -\log(-\log u_v)$, which samples exactly from
    $\mathrm{softmax}(z / \tau)$. It also takes `top_p` (nucleus sampling: only the smallest set of likeliest
    tokens whose probabilities hold at least $p$, after top-$k$). A check: an untrained model (the sampler, not
    the model, is what is checked), 20000 rows of the same 3-token prompt, one new token each; the share of each
    token against $p_\tau$ computed here:
    """),
    code("""
    from minitransformer.train import generate

    mt.manual_seed(0)
    lm = nn.DecoderOnlyLM(tok.vocab_size, d_model=32, heads=2, d_ff=64, num_layers=2, max_len=256, dropout=0.0)
    prompt = np.array([[4, 5, 6]])                                    # (1, 3)
    with mt.no_grad():
        z_lm = lm(mt.tensor(prompt)).numpy()[0, -1]                   # (V,) the next token's logits
    N = 20000
    for tau, k in ((1.0, None), (0.5, 5)):
        mt.manual_seed(1)
        drawn = generate(lm, np.repeat(prompt, N, axis=0), max_new_tokens=1, temperature=tau, top_k=k).numpy()[:, -1]
        share = np.bincount(drawn, minlength=tok.vocab_size) / N     # (V,)
        p = p_tau(z_lm, tau, k)
        bound = 4 * np.sqrt(p * (1 - p) / N).max()                    # 4 standard errors
        outside = f";  tokens outside the top {k} drawn: {int(share[p == 0].sum() * N)}" if k else ""
        print(f"tau {tau}{f', top-{k}' if k else '':8} max |share - p_tau| = {np.abs(share - p).max():.4f} "
              f"(4 standard errors: {bound:.4f}){outside}")
        assert np.abs(share - p).max() < bound
    """),
    md(r"""
    ## 7. The key/value cache

    Step $t$ of decoding reads $t$ positions (`<bos>` and the $t - 1$ tokens generated so far) and needs the
    newest position's query against the keys and values of all $t$. Without a cache the decoder recomputes
    all $t$ positions: $t \times t$ self-attention scores per head and layer (and $t \times S$
    cross-attention scores), of which only the last row is used. The causal mask makes the rest
    unnecessary: an earlier position cannot see the new one, so its keys and values are the same as at the
    step that computed them. With a cache (`nn.KVCache`,
    [multi-head attention](../docs/formulas/multi-head-attention.md)) each layer keeps them, appends the new
    position's, and computes one row: $1 \times t$ scores. Over $T$ steps, per head and layer,

    $$
    \sum_{t=1}^{T} t^2 = \frac{T (T+1)(2T+1)}{6} \quad\text{scores without the cache, against}\quad
    \sum_{t=1}^{T} t = \frac{T(T+1)}{2} \quad\text{with it.}
    $$

    The cross-attention's keys and values, projections of the encoder's output, do not change at all: its
    cache is filled at the first step and then only read. Section 4's example, step by step both ways; the
    score entries are counted from the shapes of the attention weights each step computed,
    `(batch, heads, L, S)` per layer:
    """),
    code("""
    def scores_computed(model):
        \"\"\"Attention score entries of the last decode: every layer's self- and cross-attention (B, h, L, S).\"\"\"
        return sum(int(np.prod(w.shape)) for w in model.decoder.self_attn_weights + model.decoder.cross_attn_weights)


    print("ys:", " ".join(tok.itos[v] for v in ys), f"  (section 4: test source {i}, {show(src)}, greedy)")
    counts = {"without cache": 0, "with cache": 0}
    worst = 0.0
    with mt.no_grad():
        cache = model.new_cache()                               # one {self_attn, cross_attn} per decoder layer
        for t in range(1, len(ys)):                             # ys: <bos> + section 4's greedy tokens
            full = model.decode(mt.tensor([ys[:t]]), memory, src_mask)               # (1, t, V): all t positions
            counts["without cache"] += scores_computed(model)
            new = model.decode(mt.tensor([ys[t - 1:t]]), memory, src_mask, cache=cache)   # (1, 1, V): the newest
            counts["with cache"] += scores_computed(model)
            worst = max(worst, float(np.abs(full.numpy()[:, -1] - new.numpy()[:, -1]).max()))
            if t in (1, 2, len(ys) - 1):
                print(f"step {t}: input {full.shape[:2]} against {new.shape[:2]};", cache[0]["self_attn"], ";",
                      cache[0]["cross_attn"])
    T, S, h, layers = len(ys) - 1, len(src), model.config["heads"], len(model.decoder.layers)
    print(f"\\nlargest difference of the newest position's logits: {worst:.1e} (float32)")
    print(f"score entries over {T} steps: {counts['without cache']} without the cache, {counts['with cache']} with it "
          f"({counts['without cache'] / counts['with cache']:.2f} times as many)")
    formula = {"without cache": h * layers * (T * (T + 1) * (2 * T + 1) // 6 + S * T * (T + 1) // 2),   # t x t, t x S
               "with cache": h * layers * (T * (T + 1) // 2 + S * T)}                             # 1 x t, 1 x S
    print("by the formulas, times heads and layers:", formula, " the same:", formula == counts)
    """),
    md(r"""
    Time, measured in this run, with and without the cache (`use_cache`): `greedy_decode` on the 500 test
    sources (at most 10 tokens each, `model.max_len`; the best of three runs), and `generate` with the
    untrained language model of section 6 (greedy, `temperature=0`), 200 new tokens for each of 16 prompts
    (the best of two):
    """),
    code("""
    import time


    def best_time(f, repeat):
        \"\"\"The shortest of `repeat` runs of f(), in seconds, and f's result.\"\"\"
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            result = f()
            times.append(time.perf_counter() - start)
        return min(times), result


    prompts = np.repeat(prompt, 16, axis=0)                      # (16, 3)
    runs = {                                                      # name: (repeats, run with or without the cache)
        "greedy_decode, 500 sources, <= 10 tokens": (3, lambda c: greedy_decode(model, tb.src, tb.src_mask,
                                                                                use_cache=c)),
        "generate, 16 prompts, 200 tokens": (2, lambda c: generate(lm, prompts, 200, temperature=0, use_cache=c)),
    }
    for name, (repeat, run) in runs.items():
        t_no, out_no = best_time(lambda run=run: run(False), repeat)
        t_yes, out_yes = best_time(lambda run=run: run(True), repeat)
        print(f"{name:40} {t_no * 1e3:5.0f} ms without the cache, {t_yes * 1e3:4.0f} ms with it: "
              f"{t_no / t_yes:4.1f} times as fast; the same tokens: {bool((out_no.numpy() == out_yes.numpy()).all())}")

    P, new = prompt.shape[1], 200                         # step n reads the prompt and n - 1 generated tokens
    without = sum((P + n - 1) ** 2 for n in range(1, new + 1))                # all positions against all
    with_cache = P * P + sum(P + n - 1 for n in range(2, new + 1))           # the prompt at once, then one row a step
    print(f"\\ngenerate's self-attention scores per head and layer: {without} without the cache, {with_cache} with it "
          f"({without / with_cache:.0f} times as many)")
    """),
    md(r"""
    The cache saves arithmetic: without it, $T$ steps compute $(2T + 1)/3$ times as many self-attention
    scores, and run the projections and feed-forward layers on $(T + 1)/2$ times as many positions. The
    time saved is much smaller than that: every step also has costs the cache does not touch (Python, the
    library's checks, a few hundred small NumPy calls), and with sequences this short and a model this
    small they are a large part of the time. With a larger batch, model and $T$ the time should come closer
    to the arithmetic (not measured here).

    ## 8. What the source document says

    The source document has no decoding section; two of its sentences touch on it, outside the
    formulas of section 4 that `docs/errata.md` covers.

    * Section 3.1: "The self-attention mechanism allows the model to dynamically compute weights based on
      **all information in the input sequence** when generating each output." That holds for the encoder
      and for the decoder's cross-attention (every source position). The decoder's self-attention, which
      reads the output generated so far, sees only the positions before the one it is generating, and
      itself: section 3 showed the mask and that a later token changes nothing before it.
    * Section 6.3: "Google's WaveNet model has achieved high-quality speech synthesis through **generative
      adversarial networks (GANs)**." WaveNet (van den Oord et al. 2016) is not a GAN. It is an
      autoregressive model, $p(x) = \prod_t p(x_t \mid x_1, \ldots, x_{t-1})$ over audio samples, trained by
      maximum likelihood with its true past as input (teacher forcing) and generating by sampling one audio
      sample at a time, each fed back as input: the loop of this notebook, with causal convolutions in
      place of the causal mask.

    ## Exercises

    1. Train with `steps=600, warmup=60` instead of 300 and 30 (as notebook 05). How do the two accuracies
       of section 2 change, and for how many test sources does beam search still beat greedy? (Check: rerun
       sections 1, 2 and 5.)
    2. By hand: two hypotheses have $\log P = -3.0$ with $\lvert Y \rvert = 5$ and $\log P = -3.4$ with
       $\lvert Y \rvert = 8$. Which one wins at $\alpha = 0$, and which at $\alpha = 0.6$? Check with
       `length_penalty`. (Answer: at $\alpha = 0$ the first, $-3.0 > -3.4$; at $\alpha = 0.6$ the second,
       $-3.4 / lp(8) = -2.138$ against $-3.0 / lp(5) = -2.208$.)
    3. Show from the formula that $\mathrm{softmax}(z / \tau)$ has the same arg-max as $z$ for every
       $\tau > 0$, and that it tends to the one-hot arg-max as $\tau \to 0$ (when the largest logit is unique).
       Then sample 1000 tokens from section 6's distribution at $\tau = 0.05$: how many are the arg-max?
       (Answer: all of them, in practice: the second most likely token has $(0.283 / 0.684)^{20} \approx
       2 \cdot 10^{-8}$ times the probability of the first.)
    4. For $T = 100$ decoded tokens, how many self-attention score entries per head and layer are computed
       with and without the cache? (Answer: $5050$ and $338350$, $67$ times as many.)
    5. The causal mask lets position $t$ see itself ($j = t$) but not $t + 1$. What would a model trained
       with the mask shifted by one ($j \le t + 1$) learn, what would its training loss do, and why would it
       fail at generation? (Answer: position $t$ would read $y_{t+1}$, the token it predicts, and learn to
       copy it, so the training loss falls to about 0; in generation that position does not exist yet when
       $y_{t+1}$ is chosen, so there is nothing to copy.)
    """),
]
