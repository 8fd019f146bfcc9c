"""Notebook 05_training_reverse: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, exercise, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "5e-2": "exercise 4's learning rate, a setting of the exercise",
}

CELLS = [
    md(r"""
    # 05 · A tiny Transformer learns to reverse sequences

    **What this notebook teaches.** The whole encoder–decoder Transformer of the paper (its figure 1),
    trained from scratch on a task small enough for a laptop: read a digit sequence, write it backwards
    (`3 1 4 1 5` → `5 1 4 1 3`). The decoder is trained with *teacher forcing*: it reads the target shifted
    right behind a `<bos>` token and, at every position $t$, scores the next token; the loss is the
    cross-entropy of the right token,

    $$
    \mathcal{L}(\theta) = -\frac{1}{\sum_n T_n} \sum_{n} \sum_{t=1}^{T_n} \log p_\theta\!\left(y^{(n)}_t
    \,\middle|\, y^{(n)}_{<t},\, x^{(n)}\right),
    $$

    summed over the batch's sequences $n$ and their $T_n$ real (non-padding) target tokens, the closing `<eos>`
    included (the model must learn where to stop), averaged over all $\sum_n T_n$ of those tokens, and minimised
    with Adam (paper 5.3). The
    **training loop is the lesson** here: forward, loss, `backward()`, clip, `step()`, schedule, written
    out in full. (The library's `train.Trainer` wraps the same lines with logging, evaluation and
    checkpoints; notebook 06 uses it.)

    To reverse, output position $t$ must copy source position $S - 1 - t$: the decoder's
    **cross-attention** has to learn to look there. Its map should become an anti-diagonal.

    Steps: **1** the data and one batch · **2** the pieces by hand: layer norm, the feed-forward network,
    the warm-up schedule, Adam · **3** the model, and its picture · **4** attention maps before training ·
    **5** the training loop · **6** the curves · **7** attention maps after training · **8** greedy decoding ·
    **9** accuracy on held-out sequences · **10** a checkpoint (in a temporary folder) · **11** the paper's
    learning-rate schedule and label smoothing, pictured.

    **Exercises in the text** (assignments A4 and A5, `minitransformer assignments list`): the four pieces of
    section 2, in NumPy, each followed by a cell that checks your answer against the library. In assignment
    A4's student copy (`minitransformer assignments build 4 DIR`) the library's own A4 bodies are taken out
    too: the layer-norm and feed-forward checks of section 2 and the first cell of section 3 that runs the model
    stop at a `NotImplementedError` until you have written them in `minitransformer/functional/normalization.py`,
    `autograd/fused.py`, `nn/layers.py` and `nn/transformer.py`. In A5's copy the warm-up and Adam checks of
    section 2, the training loop of section 5 and section 11's schedules raise until you have written `noam_lr` in
    `minitransformer/optim/schedule.py` and `Adam.update` in `optim/adam.py`; until then section 6 has no
    curves to draw and sections 7 to 10 show the untrained model.
    """),
    SETUP,
    md(r"""
    **One BLAS thread.** A small Transformer multiplies many small matrices; NumPy's BLAS splits each
    product (BLAS: the library of matrix products NumPy calls) over all cores, and for matrices this small the
    threads spend more time waiting for each other
    than computing. One thread is several times faster here (see `train/threads.py` for measurements).
    """),
    code("""
    from minitransformer.train import get_blas_threads, set_blas_threads

    print("BLAS threads:", get_blas_threads(), "-> 1:", set_blas_threads(1))
    """),
    md(r"""
    ## 1. The data

    5000 training and 200 held-out pairs of lengths 5 to 8 (no held-out source appears in training).
    Digits are tokens 4..13; ids 0..3 are `<pad>`, `<bos>`, `<eos>`, `<unk>`. A batch pads the sources and
    targets and carries the masks: `src_mask` hides source padding, `tgt_mask` is causal and hides target
    padding.
    """),
    code("""
    from minitransformer.data import PAD, DataLoader, digit_task_splits, digit_tokenizer, make_seq2seq_batch

    tok = digit_tokenizer()
    train_pairs, val_pairs = digit_task_splits("reverse", n_train=5000, n_val=200, seed=0, min_len=5, max_len=8)
    src, tgt = train_pairs[0]
    print(f"vocabulary: {tok.vocab_size} tokens.  example: {' '.join(tok.decode(src))} -> {' '.join(tok.decode(tgt))}")
    print("as ids:", src, "->", tgt)

    loader = DataLoader(train_pairs, batch_size=32, shuffle=True, seed=0, drop_last=True, collate=make_seq2seq_batch)
    b = next(iter(loader))
    for name in ("src", "src_mask", "tgt_in", "tgt_out", "tgt_mask"):
        print(f"{name:9}", getattr(b, name).shape, getattr(b, name).dtype_name)
    print("first example: tgt_in ", b.tgt_in.numpy()[0], " (<bos> = 1 + target)")
    print("               tgt_out", b.tgt_out.numpy()[0], " (target + <eos> = 2; 0 = padding)")
    """),
    md(r"""
    ## 2. The pieces, by hand

    Before the model is built: two of its layers and the optimizer's arithmetic, written in NumPy and checked
    against the library. (These are exercises of assignments A4 and A5; the library's own versions are in
    `functional/normalization.py`, `nn/layers.py`, `optim/schedule.py` and `optim/adam.py`.)

    ### Exercise A4 · layer norm

    Each token's vector $x \in \mathbb{R}^d$ (the last axis) is normalised on its own, then scaled and shifted
    by the learned $\gamma, \beta \in \mathbb{R}^d$ (the "Norm" of the paper's "Add & Norm"):

    $$ \mu = \frac1d \sum_{i=1}^d x_i, \qquad \sigma^2 = \frac1d \sum_{i=1}^d (x_i - \mu)^2, \qquad
       y_i = \gamma_i \,\frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i , $$

    with the biased variance (divided by $d$, as PyTorch) and $\epsilon = 10^{-5}$.
    """),
    exercise("a4-layer-norm", """
    rng = np.random.default_rng(0)
    x = 3 * rng.standard_normal((2, 5, 8)) + 1                       # (batch, seq, d_model): 10 vectors of 8
    gamma, beta = 1 + 0.1 * rng.standard_normal(8), 0.1 * rng.standard_normal(8)   # (d_model,) each
    eps = 1e-5

    ### BEGIN SOLUTION A4: mu, var (biased) of the last axis; y_ln = gamma (x - mu) / sqrt(var + eps) + beta
    mu = x.mean(axis=-1, keepdims=True)                              # (2, 5, 1)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)               # (2, 5, 1), divided by d
    y_ln = gamma * (x - mu) / np.sqrt(var + eps) + beta              # (2, 5, 8)
    ### END SOLUTION
    print("layer norm", x.shape, "->", y_ln.shape)
    """),
    md(r"""
    **Check.** Undoing $\gamma$ and $\beta$ must leave every token with mean 0 and variance (almost) 1, and
    the library's `F.layer_norm` must agree:
    """),
    code("""
    x_hat = (y_ln - beta) / gamma                                    # (2, 5, 8)
    np.testing.assert_allclose(x_hat.mean(axis=-1), 0, atol=1e-10)
    np.testing.assert_allclose(x_hat.var(axis=-1), 1, atol=1e-5)     # sigma^2 / (sigma^2 + eps), just under 1
    library = F.layer_norm(mt.tensor(x), mt.tensor(gamma), mt.tensor(beta), eps=eps)
    np.testing.assert_allclose(y_ln, library.numpy(), rtol=1e-10, atol=1e-12)
    print("layer norm: mean 0, variance 1 per token, and the library's numbers")
    """),
    md(r"""
    ### Exercise A4 · the feed-forward network

    The paper's equation 2, the same two layers applied at every position, $d_\text{model} \to d_{ff} \to
    d_\text{model}$:

    $$ \mathrm{FFN}(x) = \max(0,\; x W_1 + b_1)\, W_2 + b_2 . $$

    Use the weights of a library `nn.FeedForward(d_model=8, d_ff=32)`: `ffn.W_1.weight` is $W_1$, $(8, 32)$,
    `ffn.W_1.bias` is $b_1$, $(32,)$, and so on. Apply it to the `x` above.
    """),
    exercise("a4-feed-forward", """
    ffn = nn.FeedForward(d_model=8, d_ff=32).to("float64")
    W_1, b_1 = ffn.W_1.weight.numpy(), ffn.W_1.bias.numpy()          # (8, 32), (32,)
    W_2, b_2 = ffn.W_2.weight.numpy(), ffn.W_2.bias.numpy()          # (32, 8), (8,)

    ### BEGIN SOLUTION A4: hidden = max(0, x W_1 + b_1), (2, 5, 32); y_ffn = hidden W_2 + b_2, (2, 5, 8)
    hidden = np.maximum(0, x @ W_1 + b_1)                            # (2, 5, 32)
    y_ffn = hidden @ W_2 + b_2                                       # (2, 5, 8)
    ### END SOLUTION
    print("FFN", x.shape, "->", hidden.shape, "->", y_ffn.shape)
    """),
    md(r"""
    **Check** against the library's `FeedForward`, on the whole batch and on one position alone (the same
    numbers: nothing mixes positions):
    """),
    code("""
    np.testing.assert_allclose(y_ffn, ffn(mt.tensor(x)).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y_ffn[:, 2:3], ffn(mt.tensor(x[:, 2:3])).numpy(), rtol=1e-10, atol=1e-12)
    print("FFN: the library's numbers, position by position")
    """),
    md(r"""
    ### Exercise A5 · the warm-up schedule

    The paper's learning rate (section 5.3, its equation 3) at step $t = 1, 2, \ldots$:

    $$ lrate = d_\text{model}^{-0.5} \cdot \min\!\left(t^{-0.5},\; t \cdot warmup^{-1.5}\right) . $$

    Compute it for the paper's $d_\text{model} = 512$ and $warmup = 4000$, for steps 1 to 20000 at once, as a
    NumPy array (`np.minimum` takes the smaller of two arrays, element by element). It rises linearly,
    peaks at $t = warmup$, where both terms are $warmup^{-0.5}$, and then decays as $t^{-0.5}$.
    """),
    exercise("a5-warmup-schedule", """
    d_model, warmup = 512, 4000
    t = np.arange(1, 20001)                                          # steps 1 .. 20000

    ### BEGIN SOLUTION A5: lrate = d_model^-0.5 * min(t^-0.5, t * warmup^-1.5), element by element
    lrate = d_model**-0.5 * np.minimum(t**-0.5, t * warmup**-1.5)   # (20000,)
    ### END SOLUTION
    print(f"step 1: {lrate[0]:.2e}   peak at step {t[lrate.argmax()]}: {lrate.max():.2e}   step 20000: {lrate[-1]:.2e}")
    """),
    md(r"""
    **Check** on values worked out by hand and against the library's `optim.noam_lr`:
    """),
    code("""
    from minitransformer import optim

    np.testing.assert_allclose(lrate[[0, 3999, 15999]], [512**-0.5 * 4000**-1.5, (512 * 4000) ** -0.5,
                                                         (512 * 16000) ** -0.5], rtol=1e-12)
    steps_checked = [1, 100, 3999, 4000, 4001, 20000]
    np.testing.assert_allclose(lrate[np.array(steps_checked) - 1],
                               [optim.noam_lr(s, d_model, warmup) for s in steps_checked], rtol=1e-12)
    print("warm-up schedule: the hand-worked values and optim.noam_lr's")
    """),
    md(r"""
    ### Exercise A5 · two Adam steps

    Adam (Kingma & Ba 2015, Algorithm 1) keeps two running averages per parameter, $m_0 = v_0 = 0$. At
    step $t = 1, 2, \ldots$ with gradient $g_t$:

    $$ m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, $$

    $$ \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
       \theta_t = \theta_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} , $$

    with the paper's $\beta_1 = 0.9$, $\beta_2 = 0.98$, $\epsilon = 10^{-9}$. Take two steps from $\theta_0$
    with the two gradients given. At $t = 1$, $\hat m_1 = g_1$ and $\hat v_1 = g_1^2$: the first step moves
    every parameter by about $\alpha$, however large or small its gradient.
    """),
    exercise("a5-adam-steps", """
    alpha, beta_1, beta_2, epsilon = 0.1, 0.9, 0.98, 1e-9
    theta = np.array([1.0, -2.0, 0.5])                               # theta_0
    grads = [np.array([0.5, -3.0, 0.001]), np.array([1.0, 1.0, 0.001])]   # g_1, g_2
    m, v = np.zeros(3), np.zeros(3)                                  # m_0 = v_0 = 0
    thetas = [theta.copy()]                                          # copies: theta may be updated in place
    for step_t, g in enumerate(grads, start=1):
        ### BEGIN SOLUTION A5: new m, v; bias-corrected m_hat, v_hat; theta = theta - alpha m_hat / (sqrt(v_hat) + eps)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat, v_hat = m / (1 - beta_1**step_t), v / (1 - beta_2**step_t)
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + epsilon)
        ### END SOLUTION
        thetas.append(theta.copy())
        print(f"step {step_t}: theta = {theta.round(4)}")
    """),
    md(r"""
    **Check** against the library's `optim.Adam.paper` given the same gradients, and the first step's size:
    """),
    code("""
    w = mt.tensor(thetas[0], requires_grad=True)                     # float64, as theta
    adam = optim.Adam.paper([w], lr=alpha)
    for g, expected in zip(grads, thetas[1:]):
        w.grad = mt.tensor(g)                                        # the gradient, as backward() would leave it
        adam.step()
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(thetas[1] - thetas[0], -alpha * np.sign(grads[0]), atol=1e-6)
    print("Adam: the library's two steps; the first moved every parameter by alpha")
    """),
    md(r"""
    ## 3. The model

    `nn.Transformer` is the paper's model: embeddings $\times \sqrt{d_\text{model}}$ plus the sinusoidal
    $PE$, an encoder (self-attention + feed-forward), a decoder (masked self-attention + cross-attention +
    feed-forward) and a linear layer to the vocabulary, whose outputs are the *logits*: a score per token of
    the vocabulary, at every target position, which a softmax turns into the probabilities of the next token.
    A tiny one: $d_\text{model} = 32$, 2 heads, two
    layers each, pre-LN (`norm_first=True`: each sublayer $F$ computes $x + F(\mathrm{LN}(x))$, where the
    paper's post-LN, `norm_first=False`, computes $\mathrm{LN}(x + F(x))$; notebook 09 compares them). In deep
    models pre-LN trains without the paper's long warm-up, where post-LN needs one: exercise 5.
    """),
    code("""
    mt.manual_seed(0)
    model = nn.Transformer(tok.vocab_size, tok.vocab_size, d_model=32, heads=2, d_ff=64, num_encoder_layers=2,
                           num_decoder_layers=2, dropout=0.0, max_len=10, norm_first=True)
    print(f"{model.num_parameters():,} parameters")
    logits = model(b.src, b.tgt_in, b.src_mask, b.tgt_mask)
    print("logits", logits.shape, "= (batch, target positions, vocabulary)")
    """),
    md(r"""
    The paper's figure 1, drawn from this `model` by `viz.draw_architecture`: every box is one of its modules,
    under the name you would type (`model.decoder.layers[0].cross_attn`; `i` stands for any of the $N = 2$
    layers), with its sizes. Pre-LN: each norm stands below its sublayer, the residual arrow runs around
    both and is added above ($+$), and each stack ends in one more norm (`encoder.norm`, `decoder.norm`). The
    encoder's output, the memory, enters the cross-attention of every decoder layer. Notebook 09 compares
    this order with the paper's post-LN (`viz.draw_architecture` draws both).
    """),
    code("""
    viz.draw_architecture(model)
    """),
    md(r"""
    ## 4. Attention before training

    One held-out example, teacher-forced. Row $t$ of a cross-attention map is the decoder position that
    reads `tgt_in[t]` and predicts the next output token; column $j$ is source position $j$. One row of
    maps per decoder layer, one column per head. Untrained, no head shows the anti-diagonal: the weights are
    spread out or, as in layer 2, head 1, lean on one arbitrary source position.
    """),
    code("""
    example = next(p for p in val_pairs if len(p[0]) == 8)
    src_labels = [tok.itos[i] for i in example[0]]
    tgt_labels = ["<bos>"] + [tok.itos[i] for i in example[1]]

    def cross_attention(model, pair):
        \"\"\"Every decoder layer's cross-attention weights, (heads, T, S) each, for one teacher-forced pair.\"\"\"
        one = make_seq2seq_batch([pair])
        model.eval()
        with mt.no_grad():
            model(one.src, one.tgt_in, one.src_mask, one.tgt_mask)
        model.train()
        return [w[0] for w in model.decoder.cross_attn_weights]       # w: (batch=1, heads, T, S)

    print("source:", " ".join(src_labels), "  target:", " ".join(tgt_labels[1:]))
    viz.attention_layers(cross_attention(model, example), tgt_labels, src_labels,
                         title="cross-attention before training")
    """),
    md(r"""
    ## 5. The training loop

    Every step is the same seven lines: forward, loss, zero the old gradients, `backward()`, clip the global
    gradient norm (every gradient scaled by one factor, so that all of them together, as one long vector, have an
    L2 norm of at most 1: `optim.clip_grad_norm_`), take an Adam step, move the learning-rate schedule. The rate
    warms up linearly over the
    first 10% of the steps and then decays to 0 along a cosine (`train.tasks.warmup_schedule`; with
    `kind="noam"` it has the shape of the paper's equation 3, scaled so that its peak is `lr`). The held-out
    loss is measured every 50 steps. About 10 s on two CPU cores.
    """),
    code("""
    import itertools
    import sys

    from tqdm import tqdm

    from minitransformer import optim
    from minitransformer.train.tasks import warmup_schedule

    steps = 600
    opt = optim.Adam.paper(model.parameters(), lr=4e-3)            # beta = (0.9, 0.98), eps = 1e-9 (paper 5.3)
    schedule = warmup_schedule(opt, warmup=steps // 10, steps=steps)
    val_batch = make_seq2seq_batch(val_pairs)
    batches = (batch for epoch in itertools.count() for batch in loader)   # epoch after epoch, each reshuffled
    history = {"train_loss": [], "val_loss": [], "lr": []}

    bar = tqdm(range(1, steps + 1), desc="reverse", file=sys.stdout)
    for step in bar:
        b = next(batches)
        logits = model(b.src, b.tgt_in, b.src_mask, b.tgt_mask)        # (B, T, vocab)
        loss = F.cross_entropy(logits, b.tgt_out, ignore_index=PAD)    # mean over the real target tokens
        opt.zero_grad()
        loss.backward()                                                # gradients of all parameters
        optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
        history["lr"].append([step, opt.param_groups[0]["lr"]])
        opt.step()                                                     # theta <- theta - lr * Adam's direction
        schedule.step()

        history["train_loss"].append([step, loss.item()])
        if step % 50 == 0:
            model.eval()
            with mt.no_grad():
                v = val_batch
                val_loss = F.cross_entropy(model(v.src, v.tgt_in, v.src_mask, v.tgt_mask), v.tgt_out, ignore_index=PAD)
            model.train()
            history["val_loss"].append([step, val_loss.item()])
            bar.set_postfix(loss=f"{loss.item():.3f}", val_loss=f"{val_loss.item():.3f}")
    """),
    md(r"""
    ## 6. The curves

    The loss printed above and the curves below are those of the run shown; a run of yours may differ in the
    last digits, as float32 rounding differs between machines and library versions.
    """),
    code("""
    viz.training_curves(history, log_y=("loss",))
    """),
    md(r"""
    ## 7. Attention after training

    The same example. Row $t$ reads the digit at source position $S - t$ (row 0 reads `<bos>`) and must write
    the one at $S - 1 - t$. Printed: where each map's row looks most, and with what weight. The anti-diagonal
    $S - 1 - t$ is layer 2's: its head 1 looks at the digit to write on every row, with weights of 0.51 to
    0.89, its head 2 on every row but row 4, where it looks at the digit just read, $S - t$. Layer 1 is
    vaguer: its head 2 leans to the same positions on rows 2 to 6, with weights of only 0.27 to 0.47, and
    its head 1 only tells the first rows, drawn to the end of the source, from the last, drawn to its start.
    (The last row reads the last digit and predicts `<eos>`; where it looks matters little.)
    """),
    code("""
    trained = cross_attention(model, example)                         # [(heads, T, S)] per decoder layer
    S = len(src_labels)
    print("row t:                         ", np.arange(len(tgt_labels)))
    print("S - 1 - t, the digit to write: ", S - 1 - np.arange(len(tgt_labels)))
    for layer, w in enumerate(trained, start=1):
        for head, rows in enumerate(w.numpy(), start=1):               # rows: (T, S)
            print(f"layer {layer}, head {head}: argmax", rows.argmax(-1), "  its weight", rows.max(-1).round(2))
    viz.attention_layers(trained, tgt_labels, src_labels, title="cross-attention after training")
    """),
    md(r"""
    ## 8. Greedy decoding

    At inference there is no target to read: the decoder starts from `<bos>`, takes the most likely token,
    appends it, and repeats until `<eos>` (`train.greedy_decode`, with a key/value cache so each step costs
    one position). Held-out sequences:
    """),
    code("""
    from minitransformer.train import exact_match, greedy_decode, strip_after_eos, token_accuracy

    shown = val_pairs[:8]
    sb = make_seq2seq_batch(shown)
    out = greedy_decode(model, sb.src, sb.src_mask)                  # (8, T) ids, <eos>, then padding
    print("decoded", out.shape)
    for (s, t), o in zip(shown, out.numpy()):
        pred = strip_after_eos(o)
        verdict = "ok" if pred == t else f"wrong (expected {' '.join(tok.decode(t))})"
        print(f"{' '.join(tok.decode(s)):16} -> {' '.join(tok.decode(pred)):16} {verdict}")
    """),
    md(r"""
    ## 9. Accuracy on the 200 held-out sequences

    *Exact-sequence accuracy* counts a sequence as right only if every token is right and it stops at the
    right place; *token accuracy* is teacher-forced, per position.
    """),
    code("""
    out = greedy_decode(model, val_batch.src, val_batch.src_mask)
    model.eval()
    with mt.no_grad():
        v = val_batch
        tok_acc = token_accuracy(model(v.src, v.tgt_in, v.src_mask, v.tgt_mask), v.tgt_out, ignore_index=PAD).item()
    print(f"exact-sequence accuracy {exact_match(out.numpy(), val_batch.tgt_out.numpy()):.1%}   "
          f"token accuracy {tok_acc:.1%}   (chance: 10% per digit)")
    """),
    md(r"""
    The library's recipe, `minitransformer train --task reverse`, trains a larger model on longer sequences
    (lengths 8 to 12) and writes its checkpoint, curves and attention maps.

    ## 10. A checkpoint, in a temporary folder

    `save_checkpoint` writes the weights (as NumPy arrays, so a GPU-trained model loads on a CPU), the
    optimizer, the schedule, the model's `config` and the tokenizer into one `.npz`, atomically; loading
    checks everything before it changes anything.
    """),
    code("""
    import tempfile
    from pathlib import Path

    from minitransformer.train import load_checkpoint, save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(Path(tmp) / "reverse.npz", model, opt, schedule, step=steps, tokenizer=tok)
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
        restored = nn.Transformer(**model.config)                     # the same architecture, fresh weights
        ckpt = load_checkpoint(path, restored)
    again = greedy_decode(restored, sb.src, sb.src_mask)
    print("step", ckpt.step, "; the restored model decodes the same:", bool((again.numpy() == greedy_decode(
        model, sb.src, sb.src_mask).numpy()).all()))
    """),
    md(r"""
    ## 11. The learning-rate schedule and label smoothing, pictured

    Two choices of the paper's training (its sections 5.3 and 5.4), drawn as The Annotated Transformer
    draws them; nothing is trained here.

    **The schedule.** Left: the paper's equation 3, `optim.noam_lr`, for the three settings The Annotated
    Transformer plots. The rate rises linearly to its peak at $t = warmup$, of height
    $(d_\text{model} \cdot warmup)^{-0.5}$, then falls as $t^{-0.5}$: a narrower model or a shorter warm-up
    peaks higher, and after the warm-up the two settings with $d_\text{model} = 512$ follow one curve. Right:
    what section 5 used, `warmup_schedule` (the tasks' and the trainer's schedule): a linear warm-up over
    the first 10% of the 600 steps to the peak `lr` = 4e-3, then a cosine to 0; beside it its other two
    kinds (exercise 3), `"noam"`, the paper's $t^{-0.5}$ decay scaled to peak at `lr`, and `"constant"`.
    The cosine is checked against the rates the loop of section 5 recorded.
    """),
    code("""
    from matplotlib.figure import Figure


    def rates(kind, lr=4e-3):
        \"\"\"The rate of each of section 5's steps under warmup_schedule(kind=...), off a throwaway optimizer.\"\"\"
        sgd = optim.SGD([mt.zeros(1, requires_grad=True)], lr=lr)
        by_step = warmup_schedule(sgd, warmup=steps // 10, steps=steps, kind=kind)
        out = []
        for _ in range(steps):
            out.append(by_step.get_last_lr()[0])
            by_step.step()
        return np.array(out)

    np.testing.assert_allclose(rates("cosine"), [lr for _, lr in history["lr"]], rtol=1e-12)   # what the loop used

    t = np.arange(1, 20001)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for d_model, warmup in [(512, 4000), (512, 8000), (256, 4000)]:
        left.plot(t, [optim.noam_lr(s, d_model, warmup) for s in t], label=f"d_model = {d_model}, warmup = {warmup}")
    left.set(xlabel="step t", ylabel="learning rate", title="the paper's schedule, optim.noam_lr (eq. 3)")
    left.legend()
    for kind in ("cosine", "noam", "constant"):
        right.plot(np.arange(1, steps + 1), rates(kind), label=f'warmup_schedule(kind="{kind}")')
    right.set(xlabel="step t", ylabel="learning rate",
              title=f"section 5's {steps} steps: warm-up {steps // 10}, peak 4e-3")
    right.legend(loc="lower left", bbox_to_anchor=(0.12, 0.02))
    for ax in (left, right):
        ax.grid(True, color="0.9")
    fig
    """),
    md(r"""
    **Label smoothing** (paper 5.4, $\epsilon_{ls} = 0.1$) trains against a target that is not one-hot: for
    a position whose right class is $y$, among $C$ classes, the library's `F.cross_entropy(...,
    label_smoothing=eps)` uses

    $$ q_c = (1 - \epsilon_{ls})\,[c = y] + \frac{\epsilon_{ls}}{C}, \qquad
       \ell = -\sum_{c=1}^{C} q_c \log p_c , $$

    $\epsilon_{ls}/C$ on *every* class, the right one included, as PyTorch does (`docs/formulas/cross-entropy.md`).
    The paper's own code, tensor2tensor's `smoothing_cross_entropy`, puts $\epsilon_{ls}/(C - 1)$ on every class
    but the right one instead (its `(1 - confidence) / (vocab_size - 1)`), as do TensorFlow's official
    Transformer and Flax's WMT example: at the paper's vocabulary of about 37000 tokens the two conventions
    hardly differ, but at $C = 5$ they do (1.3229 against 1.3828 for the first position below). (The Annotated
    Transformer spreads $\epsilon_{ls}$ over the $C - 2$ classes that are neither the right one nor padding.)
    Below, $q$ for four positions of $C = 5$ classes at $\epsilon_{ls} = 0.4$, as The Annotated Transformer
    shows it, and the check that the library's loss is $-\sum_c q_c \log p_c$ with this $q$, and not with
    $\epsilon_{ls}/(C - 1)$ on the other classes:
    """),
    code("""
    C, eps = 5, 0.4
    y = np.array([2, 1, 0, 3])                                           # the right class at four positions
    q = (1 - eps) * np.eye(C)[y] + eps / C                               # (4, C): eps/C on all, 1 - eps more on y
    z = np.random.default_rng(0).standard_normal((4, C))                 # any logits, (4, C)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))            # log softmax(z)
    library = F.cross_entropy(mt.tensor(z), mt.tensor(y), label_smoothing=eps, reduction="none").numpy()   # (4,)
    np.testing.assert_allclose(library, -(q * log_p).sum(axis=-1), rtol=1e-12)
    q_others = (1 - eps) * np.eye(C)[y] + eps / (C - 1) * (1 - np.eye(C)[y])   # the other convention: eps/(C-1) off y
    print("F.cross_entropy(..., label_smoothing=0.4):", library.round(4))
    print("-sum_c q log p, eps/C on every class:     ", (-(q * log_p).sum(axis=-1)).round(4))
    print("-sum_c q log p, eps/(C-1) on the others:  ", (-(q_others * log_p).sum(axis=-1)).round(4))

    fig = Figure(figsize=(5.5, 2.8), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(q, cmap="viridis", vmin=0, vmax=1)
    for (n, c), value in np.ndenumerate(q):
        ax.text(c, n, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.5 else "black")
    ax.set_xticks(range(C))
    ax.set_yticks(range(len(y)), [f"position {n}, y = {k}" for n, k in enumerate(y)])
    ax.set(xlabel="class c", title=f"smoothed targets q, C = {C} classes, eps = {eps}")
    fig.colorbar(im, ax=ax, label="q[n, c]")
    fig
    """),
    md(r"""
    **What the smoothed loss asks of the model.** Let it give the right class probability $p$ and spread
    $1 - p$ evenly over the other $C - 1$. Without smoothing the loss is $-\log p$, which falls all the way
    to $p = 1$: the logits are pushed apart forever. With smoothing, writing $q_y = 1 - \epsilon_{ls} +
    \epsilon_{ls}/C$,

    $$ \ell(p) = -q_y \log p - (1 - q_y) \log\frac{1 - p}{C - 1}, \qquad
       \ell'(p) = -\frac{q_y}{p} + \frac{1 - q_y}{1 - p} = 0 \iff p = q_y , $$

    so the loss is smallest at $p = 0.92$ for $\epsilon_{ls} = 0.1$ and $C = 5$ (0.68 for 0.4), where it
    equals the entropy of $q$, above 0, and it rises again as the model grows more sure. The curves are the
    library's loss, given the logits $\log p$, $\log\frac{1 - p}{C - 1}, \ldots$ (a softmax gives back the
    distribution); the dots are the minima found on the grid. This is why a loss curve trained with label
    smoothing levels off above zero; section 5's loop uses none (`label_smoothing=0.1` in its
    `F.cross_entropy` would add it).
    """),
    code("""
    C = 5
    p = np.linspace(0.02, 0.998, 500)                                  # the right class's predicted probability
    dist = np.column_stack([p] + [(1 - p) / (C - 1)] * (C - 1))        # (500, C): p on class 0, the rest evenly
    logits, right = mt.tensor(np.log(dist)), mt.tensor(np.zeros(len(p), dtype=np.int64))   # softmax(log dist) = dist

    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for eps in (0.0, 0.1, 0.4):
        loss = F.cross_entropy(logits, right, label_smoothing=eps, reduction="none").numpy()   # (500,)
        best = 1 - eps + eps / C                                         # q's mass on the right class
        line, = ax.plot(p, loss, label=f"eps = {eps}: " + (f"smallest at p = 1 - eps + eps/C = {best:.2f}" if eps > 0
                                                          else "no smoothing, -log p, smallest at p = 1"))
        if eps > 0:
            assert abs(p[loss.argmin()] - best) <= p[1] - p[0]           # the grid's minimum is there
            ax.plot(best, loss.min(), "o", color=line.get_color())
            ax.axvline(best, color=line.get_color(), linestyle=":", linewidth=1)
            print(f"eps = {eps}: smallest loss {loss.min():.4f} at p = {p[loss.argmin()]:.3f};  "
                  f"1 - eps + eps/C = {best:.3f}")
    ax.set(xlabel="p, the predicted probability of the right class (the rest spread evenly)",
           ylabel="cross-entropy loss", title=f"the loss of one position, C = {C} classes", ylim=(0, 4))
    ax.grid(True, color="0.9")
    ax.legend()
    fig
    """),
    md(r"""
    ## Exercises

    1. Train on `"copy"` instead of `"reverse"`. What shape does the cross-attention map take, and why?
       Then try `"sort"`: what can a map of a sorting model show, and what can it not? (Answer: for copy, the
       main diagonal instead of the anti-diagonal: output position $i$ needs source position $i$. For sort,
       the map can show which source position each output digit was read from (with repeated digits the
       weight splits between the equal ones), but not how the model found it: the comparisons that rank
       the digits happen in the encoder's self-attention and the feed-forward layers, not in this map.)
    2. Length generalisation: decode held-out sources of length 9 and 10 (`digit_task_splits(...,
       min_len=9, max_len=10)`, and a model built with a larger `max_len`). Where do the errors start?
       (Answer, not measured here: the model only saw lengths 5 to 8, so expect it to fail where a position
       beyond 8 matters: the first output digits, which must read source positions it never attended to, and
       the end, where it has learned to write `<eos>` after at most 8 digits. Lengths up to 8 stay right.)
    3. Replace the cosine with a constant rate after the warm-up (`kind="constant"`) and then with the
       paper's decay (`kind="noam"`). Compare the curves after 600 steps. (Answer, expected rather than
       measured here: all three fall alike
       while the rates are close; late in the run the constant rate's loss stays higher and noisier, as its
       steps never shrink, the cosine's ends lowest as its rate goes to 0, and the paper's decay, which
       shrinks only as $t^{-0.5}$, ends in between. The order of the last two can swap from run to run.)
    4. Raise the rate to `2e-2`, then `5e-2`, each with and without `clip_grad_norm_`. What happens to the
       loss? Why does clipping change so little under Adam? (Multiply every gradient by a constant $c$: what
       happens to $\hat m_t / \sqrt{\hat v_t}$? Clipping's factor is no constant: it changes from step to step.
       So ask how steady it is over the steps Adam averages, about $1/(1 - \beta_1) = 10$ steps for $m$ and
       $1/(1 - \beta_2) = 50$ for $v$ with the paper's $\beta_2 = 0.98$.) (Answer: the higher the rate, the
       noisier the loss, with spikes; at the highest it may stall well above the loss of section 5 or
       diverge. $\hat m_t$ scales by $c$ and $\sqrt{\hat v_t}$ by $\lvert c \rvert$, so their ratio, and the
       step, do not change (up to $\epsilon$). While the gradient's norm stays above the threshold and
       changes slowly, clipping multiplies the gradients of those 10 to 50 steps by nearly the same factor,
       which cancels; only a sudden spike, clipped on its own, is damped.)
    5. Set `norm_first=False` (the paper's post-LN). Does it still learn in 600 steps? Then build 6 encoder
       and 6 decoder layers and use `warmup=1`, once pre-LN and once post-LN (about half a minute each). What
       happens to post-LN, and why does the warm-up matter for it? (Answer, expected rather
       than measured here: with 2 layers and the warm-up,
       post-LN still learns. With 6 and 6 layers and no warm-up, pre-LN still trains but post-LN does not:
       its loss stalls high or blows up. In post-LN every sublayer's output passes through a layer norm on
       the main path, and at initialisation the gradients of the last layers are large (Xiong et al. 2020);
       Adam's first steps, taken at the full rate before its $v$ has averaged many gradients, move them too
       far. The warm-up keeps those first steps small.)
    """),
]
