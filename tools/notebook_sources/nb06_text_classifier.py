"""Notebook 06_text_classifier: its cells, built by ``tools/make_notebooks.py``."""

import ast
import re
from pathlib import Path

from .cells import SETUP, code, md

#: numbers the prose takes from elsewhere than this notebook's outputs and code, and why (see tools/make_notebooks.py)
QUOTED_ELSEWHERE = {
    "25% 75%": "the task's design: negation_task negates with probability negation_rate=0.25, its default",
    "27.6%": "138 / 500, the printed count of negated test reviews as a share",
    "0.1": "the document preset's dropout (nn/models.py): keras.io's block's rate and the paper's P_drop, in the "
           "settings table",
    "1e-4": "the document's Adam(learning_rate=1e-4), quoted in the settings table",
    "1e-7": "Keras's Adam's default epsilon, the document's Adam's, in the settings table",
    "0.756 0.704 0.797": "exercise 1's answer: one run without the positional encoding (seed 0, the settings of "
                         "section 4, 2026-12-02 on a shared 2-core machine): the peak and last validation accuracy "
                         "and the last training accuracy",
    "0.99": "exercise 2's answer: where the three poolings' validation accuracy ended in one run of ours, not "
            "this notebook's",
    "0.9": "exercise 3's answer: one run with negation_rate=0.5 (seed 0, the settings of section 4, 2026-12-02 on a "
           "shared 2-core machine): its validation accuracy at step 600, 0.922",
    "96.0% 99.7% 94.10% 93.78% 94.8%": "the runs of minitransformer.examples.seed_classifier its docstring reports, "
                                       "with their commands and machines (cpu: five runs, 2026-11-30 and 2026-12-02; "
                                       "document: 2026-11-30, a shared 2-core machine; 94.8%: the document run's "
                                       "first, 2026-11-28 on an H200)",
}

_SEED_CLASSIFIER = Path(__file__).resolve().parents[2] / "minitransformer" / "examples" / "seed_classifier.py"


def _inline(rst: str) -> str:
    """RST inline markup as markdown: ``x`` and roles as code, :math: as $...$."""
    text = re.sub(r":math:`([^`]*)`", r"$\1$", rst)
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?(\w+)`", r"`\1`", text)
    return re.sub(r"``([^`]*)``", r"`\1`", text)


def _settings_table() -> str:
    """The keep/change table of ``seed_classifier``'s docstring (an RST simple table) as a markdown table: one
    source for the script's documentation and this notebook."""
    doc = ast.get_docstring(ast.parse(_SEED_CLASSIFIER.read_text(encoding="utf-8")))
    lines = doc.splitlines()
    top, header_end, bottom = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line)][:3]
    starts = [m.start() for m in re.finditer(r"=+", lines[top])]

    def row(line):
        return "| " + " | ".join(_inline(line[a:b].strip()) for a, b in zip(starts, starts[1:] + [None])) + " |"

    body = [row(line) for line in lines[header_end + 1:bottom] if line.strip()]
    return "\n".join([row(lines[top + 1]), "|" + "---|" * len(starts), *body])

CELLS = [
    md(r"""
    # 06 · The document's text classifier (section 5), done properly

    **What this notebook teaches.** How a Transformer *encoder* classifies a text, what the source
    document's Keras code gets wrong, and how to tell whether a classifier learned something a bag of words
    could not. The model:

    $$
    h = \mathrm{Encoder}\!\left(E[\text{ids}]\,\sqrt{d_\text{model}} + PE\right), \qquad
    z = \Big(\frac{1}{|R|} \sum_{s \in R} h_s\Big)\, w + b, \qquad
    p(\text{positive}) = \sigma(z) = \frac{1}{1 + e^{-z}},
    $$

    where $R$ are the real (non-padding) positions: one vector per text (mean pooling), one logit $z$ (a logit:
    a score before the sigmoid, or the softmax, turns it into a probability; $z > 0$ reads as positive), and
    the binary cross-entropy loss $\mathcal{L} = -\left[y \log \sigma(z) + (1 - y) \log(1 - \sigma(z))\right]$.

    Steps: **1** the document's code and what is wrong with it · **2** the document's configuration, built
    right · **3** a task worth learning: negation, and the bag-of-words ceiling · **4** training a small
    model with the library's `Trainer` · **5** accuracy against the ceiling · **6** what attention looks at,
    on reviews with "not" · **7** your own reviews.
    """),
    SETUP,
    md(r"""
    ## 1. The document's code

    Section 5.2 of the document builds the classifier like this (TensorFlow/Keras), and section 5.4 trains it:

    ```python
    import tensorflow as tf
    from tensorflow.keras.layers import Embedding, TransformerBlock, Dense
    ...
    inputs = tf.keras.Input(shape=(max_sequence_length,))
    embedding = Embedding(vocab_size, embed_dim)(inputs)
    transformer_block = TransformerBlock(num_heads, ff_dim)(embedding)
    outputs = Dense(1, activation='sigmoid')(transformer_block)
    ...
    x_train = np.random.rand(100, max_sequence_length)
    y_train = np.random.rand(100, 1)
    model.fit(x_train, y_train, epochs=5, batch_size=32, validation_data=(x_val, y_val))
    ```

    What is wrong (the full list is in the docstring of `nn.TransformerClassifier`):

    1. Importing `TransformerBlock` from `tensorflow.keras.layers` fails: Keras has no such layer (the
       keras.io example *defines* one, with an `embed_dim` argument the document does not pass).
    2. **No pooling.** The block's output is `(batch, 100, 512)`, so `Dense(1)` gives `(batch, 100, 1)`: a
       probability per *token*, not per text.
    3. **No positional encoding.** Self-attention alone cannot see word order: the model would see a bag of
       words.
    4. **Padding is not masked:** padded positions would be attended to and averaged in.
    5. **Nothing to learn, and an accuracy of about 0.** `np.random.rand` gives floats in $[0, 1)$, which an
       embedding truncates to token id 0 everywhere, and the labels `np.random.rand(100, 1)` are floats in
       $[0, 1)$ too: soft labels, unrelated to the inputs. With `binary_crossentropy`, Keras computes
       `metrics=['accuracy']` as binary accuracy, the share of labels *equal* to the prediction thresholded
       at 0.5, which is 0 or 1. A random float is almost never 0 or 1, so the accuracy it would print is
       about 0, not the 50% of chance. (It prints nothing: the import of point 1 fails first.)

    Points 2 to 5, checked:
    """),
    code("""
    from minitransformer.data import PAD, negation_tokenizer

    print("2. Dense(1) on (batch, 100, 512):", nn.Linear(512, 1)(mt.zeros(2, 100, 512)).shape, "- one output per token")

    # 3. without PE, mean-pooled self-attention is blind to order: shuffle the words, get the same vector
    tok = negation_tokenizer()
    ids = mt.tensor([tok.encode("the plot was not good and quite slow")])      # (1, 8)
    shuffled = mt.tensor([tok.encode("good the quite was slow and not plot")])
    embed, encoder = nn.Embedding(tok.vocab_size, 32, scale=True), nn.Encoder(32, 4, 64, num_layers=1, dropout=0.0)
    PE = F.sinusoidal_positional_encoding(8, 32)
    for name, add_pe in (("without PE", False), ("with PE   ", True)):
        a, b = (encoder(embed(x) + PE if add_pe else embed(x)).mean(axis=1) for x in (ids, shuffled))
        print(f"3. {name}: max |pooled(text) - pooled(shuffled text)| = {np.abs(a.numpy() - b.numpy()).max():.1e}")

    # 4. the library's classifier masks padding: appending <pad> tokens changes nothing
    model = nn.TransformerClassifier.from_config("tiny", vocab_size=tok.vocab_size, dropout=0.0)
    padded = mt.tensor([tok.encode("the plot was not good and quite slow") + [PAD] * 5])
    print("4. logit of the text:", model(ids).numpy(), "  with 5 <pad> appended:", model(padded).numpy())

    # 5. random floats are not token ids
    try:
        model(np.random.rand(2, 100))
    except TypeError as err:
        print("5. TypeError:", err)

    # 5. Keras' binary accuracy, mean(y_true == (y_pred > 0.5)), on section 5.4's labels and any predictions
    y_val, y_pred = np.random.rand(20, 1), np.random.rand(20, 1)
    print("5. binary accuracy on random float labels:", np.mean(y_val == (y_pred > 0.5)))
    """),
    ("markdown", md(r"""
    ## 2. The document's configuration, built right

    `TransformerClassifier.from_config("document")` takes section 5.2's settings: `Embedding(10000, 512)`,
    one encoder block with 8 heads and $d_{ff} = 2048$, sequences of up to 100, `Dense(1)` giving one logit
    per text. But the document's `TransformerBlock` is never defined, and its model has no positional
    encoding, pooling or padding mask, so building it takes choices the document never mentions: the
    paper's, where it has one. The table lists what is kept, changed and chosen, for the two configurations
    of `python -m minitransformer.examples.seed_classifier` (it is the table of that script's docstring):
    `--config document` is the faithful run, `--config cpu` a scaled-down one a laptop trains in a minute.
    """)[1] + "\n\n" + _settings_table() + "\n\n" + md(r"""
    The parameters of `from_config("document")`, beside those the document's model would have with the one
    `TransformerBlock` Keras users have, the keras.io example's, layer by layer as Keras's `model.summary()`
    would list them (each count written as its formula):
    """)[1]),
    code("""
    from collections import Counter

    document = nn.TransformerClassifier.from_config("document")
    ours = Counter()
    for name, p in document.named_parameters():   # embed.weight, encoder.layers.0.self_attn.W_Q.weight, ...
        ours[next((part for part in ("self_attn", "ffn", "norm") if part in name), name.split(".")[0])] += p.size


    def keras_summary(vocab_size=10000, embed_dim=512, num_heads=8, ff_dim=2048, key_dim=512):
        \"\"\"Parameters of the document's model with keras.io's TransformerBlock, which builds
        MultiHeadAttention(num_heads, key_dim=embed_dim): query, key and value each project embed_dim to
        num_heads x key_dim (value_dim = key_dim), the output projects them back.\"\"\"
        return {"embed": vocab_size * embed_dim,                                        # Embedding
                "self_attn": 3 * (embed_dim * num_heads * key_dim + num_heads * key_dim)   # query, key, value
                             + num_heads * key_dim * embed_dim + embed_dim,             # output: kernel, bias
                "ffn": (embed_dim * ff_dim + ff_dim) + (ff_dim * embed_dim + embed_dim),   # the two Dense
                "norm": 2 * (embed_dim + embed_dim),                                    # 2 x (gamma, beta)
                "head": embed_dim + 1}                                                  # Dense(1)


    keras = keras_summary()
    print(f"{'':20}{'Keras (keras.io block)':>24}{'this library':>14}")
    for part, layer in (("embed", "Embedding"), ("self_attn", "MultiHeadAttention"), ("ffn", "feed-forward"),
                        ("norm", "2 layer norms"), ("head", "Dense(1)")):
        print(f"{layer:20}{keras[part]:>24,}{ours[part]:>14,}")
    total = sum(keras.values())
    print(f"{'total':20}{total:>24,}{document.num_parameters():>14,}   "
          f"Keras's is {total / document.num_parameters():.2f} times this library's")
    print(f"(keras.io's example also learns a position embedding, Embedding(100, 512): {100 * 512:,} more)")
    print(f"the same formulas with key_dim = 512 / 8 = 64: {sum(keras_summary(key_dim=512 // 8).values()):,}")

    # the negation task below has 50 words: the other rows of the embedding never get a gradient
    cpu = nn.TransformerClassifier(d_model=64, d_ff=256, dropout=0.0)   # seed_classifier's cpu configuration
    for config, m in (("document", document), ("cpu", cpu)):
        unused = (m.vocab_size - tok.vocab_size) * m.config["d_model"]
        print(f"{config}: {m.vocab_size - tok.vocab_size:,} embedding rows unused, {unused:,} of its "
              f"{m.num_parameters():,} parameters ({unused / m.num_parameters():.1%})")
    with mt.no_grad():
        print("logits for a batch of 2 texts of 100 token ids:", document(mt.randint(4, 10000, (2, 100))).shape)
    """),
    md(r"""
    The difference is all in the attention. keras.io's block passes `key_dim=embed_dim`, so each of its 8
    heads is 512 wide (query, key and value project 512 to 8 × 512); the paper splits $d_\text{model}$ among
    the heads, $d_k = d_\text{model} / h = 64$ (its section 3.2.2), so 8 heads cost what one full-width head
    does. This library follows the paper: the same formulas with a key_dim of 64 give its count exactly.

    Five million of the parameters are the embedding table, and on the task below most of them are dead
    weight. `vocab_size = 10000` and `max_sequence_length = 100` are kept in name only: the task has 50 words
    (specials included), so 9,950 rows of the table stand for no word, are never looked up and never get a
    gradient, 61.6% of the parameters (92.3% of the scaled-down `cpu` configuration's); and its reviews have
    at most 16 words (10 in this notebook), each batch padded to its own longest review, not to 100.
    Training this configuration on random inputs, as section 5.4 does, teaches nothing. On the negation task
    it is the faithful run, `python -m minitransformer.examples.seed_classifier --config document` (or
    `minitransformer train --task classify --seed-config document`): 2,500 steps, 12 to 20 minutes on a
    CPU, too long for a notebook. Without the word `document` both commands run the scaled-down `cpu`
    configuration. The rest of this notebook trains a smaller model still, on shorter reviews.

    ## 3. A task worth learning: negation

    Short synthetic reviews, each with exactly one sentiment word and exactly one "not". When "not" stands
    right before the sentiment word it flips it (in 25% of reviews, on average); anywhere else it negates
    nothing:

    $$ \text{label} = [\text{sentiment word is positive}] \;\oplus\; [\text{the word before it is "not"}] $$

    Every review has the same *bag* of words whether or not it is negated, so a bag-of-words classifier can
    at best read the sentiment word and ignore the negation: right on the reviews that are not negated (75%
    of them on average), wrong on the rest. **75% is the bag-of-words ceiling**: above it, a model must use
    word order. It is an expectation on unseen reviews, not a bound on a finite set. On a given set the
    best rule scores one minus the share that is negated (`bag_of_words_ceiling` counts it: 75.8% on the
    validation reviews here, 72.4% on the test reviews), and a bag-of-words model that memorises the bags
    of its training reviews can score above 75% on those, however badly it does on new ones.
    """),
    code("""
    from minitransformer.data import (
        NEGATION_WORDS,
        DataLoader,
        bag_of_words_ceiling,
        is_negated,
        make_classification_batch,
        negation_task,
    )

    train, held_out, tok = negation_task(n_train=4000, n_val=1000, seed=0, min_words=4, max_words=10)
    val, test = held_out[:500], held_out[500:]
    print(f"{len(train)} training, {len(val)} validation, {len(test)} test reviews; vocabulary {tok.vocab_size}")
    for ids, label in train[:5]:
        print(f"  {label}  {tok.decode(ids)}")

    positive = set(NEGATION_WORDS["positive"])

    def negated(ids):
        return is_negated(ids, tok)   # "not" right before the sentiment word

    def bag_of_words_rule(ids):
        \"\"\"The best a bag of words can do: the sentiment word's own polarity.\"\"\"
        return int(any(w in positive for w in tok.decode(ids).split()))

    same_bag = sorted("the plot was not good".split()) == sorted("not the plot was good".split())
    print("'the plot was not good' (0) and 'not the plot was good' (1) have the same bag of words:", same_bag)
    for name, split in (("validation", val), ("test", test)):
        n_neg, right = sum(negated(ids) for ids, _ in split), np.mean([bag_of_words_rule(ids) == y for ids, y in split])
        print(f"{name}: {n_neg} of {len(split)} reviews negated; the bag-of-words rule is right on {right:.1%} "
              f"(bag_of_words_ceiling: {bag_of_words_ceiling(split, tok):.1%})")
    print("the first 32 training reviews as a batch of ids:", make_classification_batch(train[:32]).src.shape,
          "- padded to the longest of them")
    """),
    md(r"""
    ## 4. Training with the library's `Trainer`

    A small configuration: $d_\text{model} = 32$, 4 heads, one encoder layer, pre-LN, no dropout. The pieces
    come from the library: the loss and the metrics of `train.tasks` (binary cross-entropy of the logits;
    accuracy and F1: the harmonic mean of the precision, the share of the texts called positive that are, and
    the recall, the share of the positive texts called so, $2 \cdot$ precision $\cdot$ recall / (precision +
    recall)), the paper's Adam, a
    warm-up-then-cosine schedule, and `train.Trainer`, which runs the loop
    (the loop of notebook 05) with gradient clipping, a progress bar and an evaluation every 100 steps.
    One BLAS thread, as in notebook 05: small matrices are faster without threads. About 10 s.

    These are not section 5.2's settings, which are Adam at a constant $10^{-4}$ and $d_\text{model} = 512$
    (the document says nothing of where the layer norms go, of clipping, warm-up or dropout: its
    `TransformerBlock` is never defined). These train a small model fast, which is what this notebook needs.
    The faithful run is `python -m minitransformer.examples.seed_classifier --config document` (or
    `minitransformer train --task classify --seed-config document`): the document's sizes and optimizer,
    with post-LN as keras.io's block has it and no clipping as Keras's `Adam` has none. Its docstring
    reports 94.10% validation accuracy (F1 93.78%) after its 5 epochs, rerun on a shared 2-core machine
    with NumPy (the first run, on an H200 GPU with CuPy when the script was written, gave 94.8%); on a CPU
    it takes 12 to 20 minutes, and its steps are on batches of 14 to 16 tokens, not the 100 of
    `max_sequence_length`. Without `--config document` both
    commands run the scaled-down `cpu` configuration ($d_\text{model} = 64$, learning rate $10^{-3}$, no
    dropout, 10 epochs): `python -m minitransformer.examples.seed_classifier --no-progress` ended at
    96.0% to 99.7% validation accuracy in five runs on two machines and three BLAS kernels (one to three
    minutes on a shared 2-core machine): its last epochs can overshoot, and, as Keras's `fit`, it keeps the
    last epoch's model (it prints the best epoch beside it). The script's docstring lists what each keeps
    and changes (the table of section 2).
    """),
    code("""
    import warnings

    from tqdm import TqdmWarning

    from minitransformer import optim
    from minitransformer.train import Trainer, set_blas_threads
    from minitransformer.train.tasks import classification_loss, classification_metrics, warmup_schedule

    warnings.filterwarnings("ignore", category=TqdmWarning)   # no ipywidgets here: tqdm falls back to a text bar
    set_blas_threads(1)
    mt.manual_seed(0)
    model = nn.TransformerClassifier(tok.vocab_size, d_model=32, heads=4, d_ff=64, num_layers=1, max_len=16,
                                     dropout=0.0, pooling="mean", pad_id=PAD, norm_first=True)
    print(f"{model.num_parameters():,} parameters")

    steps = 1500
    opt = optim.Adam.paper(model.parameters(), lr=5e-3)
    schedule = warmup_schedule(opt, warmup=steps // 10, steps=steps)
    val_metrics = classification_metrics(val)
    trainer = Trainer(model, opt, classification_loss, schedule=schedule, clip=1.0, eval_every=100,
                      eval_fn=lambda m: {f"val_{k}": v for k, v in val_metrics(m).items()}, desc="negation")
    loader = DataLoader(train, batch_size=32, shuffle=True, seed=0, drop_last=True, collate=make_classification_batch)
    history = trainer.fit(loader, steps=steps)
    print(f"stopped after {trainer.step} steps ({trainer.stop_reason}), {trainer.elapsed:.1f} s")
    """),
    code("""
    viz.training_curves({k: history[k] for k in ("train_loss", "val_loss", "val_accuracy")}, log_y=("loss",))
    """),
    md(r"""
    The validation accuracy climbs quickly to about 75%, the bag-of-words plateau (the model has learned
    the sentiment words; on these validation reviews the ceiling is 75.8%), stays there until about step 300,
    and then breaks through once attention has learned to relate "not" to the word after it. These are the
    figures of the run shown; a run of yours may differ in the last digits, as float32 rounding differs
    between machines and library versions.

    ## 5. Accuracy against the bag-of-words ceiling

    On the 500 test reviews, never used during training, split by whether the sentiment word is negated.
    138 of them (27.6%) happen to be negated, so this test set's bag-of-words ceiling is 72.4%:
    """),
    code("""
    test_ids = [ids for ids, _ in test]
    labels = np.array([y for _, y in test])
    with mt.no_grad():
        p = np.concatenate([model.predict_proba(make_classification_batch(test[i:i + 250]).src).numpy()
                            for i in range(0, len(test), 250)])
    model_pred = (p > 0.5).astype(int)
    bow_pred = np.array([bag_of_words_rule(ids) for ids in test_ids])
    is_neg = np.array([negated(ids) for ids in test_ids])
    print(f"{'':22}{'all':>8}{'negated':>10}{'not negated':>13}")
    for name, pred in (("bag-of-words rule", bow_pred), ("Transformer", model_pred)):
        right = pred == labels
        print(f"{name:22}{right.mean():8.1%}{right[is_neg].mean():10.1%}{right[~is_neg].mean():13.1%}")
    print(f"({is_neg.sum()} of {len(test)} test reviews are negated)")
    print(f"F1 of the positive class, which the document's section 3.2.4 asks for beside accuracy: "
          f"{classification_metrics(test)(model)['f1']:.1%}")
    """),
    md(r"""
    ## 6. What attention looks at

    The maps of the trained encoder layer for two test reviews with a positive word: one where "not" flips
    it (label 0), one where "not" stands elsewhere (label 1). Bright **columns** mean every position reads
    the same key. In this run heads 2 and 4 gather the sentiment word in both reviews. Head 3 gathers "not"
    when it stands right before the sentiment word (first map) and the sentiment word when it does not
    (second map); head 1 does the same in part (in the second map the rows of "brilliant", "quite" and
    "not" still read "not", those of "it" and "cast" in part).
    So attention itself already reacts to whether "not" is adjacent: its queries and keys carry the
    positions that $PE$ added to each token. The feed-forward layer after attention and mean pooling then
    hand the result to the output layer. (Another seed may give these roles to other heads.)
    """),
    code("""
    def encoder_maps(ids):
        model.eval()
        with mt.no_grad():
            prob = model.predict_proba(mt.tensor([ids])).item()
        return model.encoder.self_attn_weights[-1][0], prob          # (heads, S, S) of the one layer

    flipped = next(ids for ids, _ in test if negated(ids) and bag_of_words_rule(ids) and 6 <= len(ids) <= 8)
    elsewhere = next(ids for ids, _ in test if not negated(ids) and bag_of_words_rule(ids) and 6 <= len(ids) <= 8)
    figures = []
    for ids in (flipped, elsewhere):
        words = tok.decode(ids).split()
        weights, prob = encoder_maps(ids)
        label = int(bag_of_words_rule(ids) != negated(ids))
        print(f"{' '.join(words)!r}: label {label}, p(positive) = {prob:.3f}")
        figures.append(viz.attention_heads(weights, words, words, title=" ".join(words)))
    figures[0]
    """),
    code("""
    figures[1]
    """),
    md(r"""
    ## 7. Your own reviews

    Any sentence made of the task's words (others become `<unk>`):
    """),
    code("""
    for text in ("the plot was good", "the plot was not good", "not the plot was good", "the acting was not bad",
                 "not really a bad film", "this film was not boring"):
        with mt.no_grad():
            prob = model.predict_proba(mt.tensor([tok.encode(text)])).item()
        print(f"{text:28} p(positive) = {prob:.3f}")
    """),
    md(r"""
    ## Exercises

    1. Remove the positional encoding (build the classifier, then replace `model.positional` with a module
       that returns its input). Train again: where does the validation accuracy peak, what happens next, and
       what is the training accuracy at the end? Which of them does the 75% ceiling of section 3 bound?
       (Answer: without positions, attention and mean pooling see a set of words, so the model is a bag of
       words. The validation accuracy peaks near the ceiling within the first few hundred steps, then drifts
       down while the training loss keeps falling: the model learns its training reviews by heart, word
       combination by word combination, and its training accuracy ends above 75%. In one run of ours, the
       validation accuracy peaked at 0.756 near step 500 and ended at 0.704; the training accuracy ended at
       0.797. The ceiling bounds the validation accuracy, on reviews not trained on, not the training one.)
    2. Train with `pooling="cls"` and `pooling="max"`. Which learns fastest? Look at the `[cls]` row of the
       maps (with `"cls"` they are $(heads, S + 1, S + 1)$: prepend `"[cls]"` to the labels). (Answer: all
       three reach the same plateau at the ceiling and then pass it; the differences are a few hundred steps
       and another seed can reorder them. In one run of ours, max and mean left the plateau at about the same
       step and cls about a hundred steps later, all ending near 0.99. The `[cls]` row should put its weight
       on the sentiment word and on the "not" before it, the two words the label depends on.)
    3. Set `negation_rate=0.5` in `negation_task`. What is the bag-of-words ceiling now, and how does
       training change? (Answer: a half, chance: `max(negation_rate, 1 - negation_rate)`, since a
       sentiment word is now negated as often as not and says nothing alone. There is no plateau to rest on:
       the validation accuracy stays near chance until attention relates "not" to the word after it, then
       climbs as before. In one run of ours it was still near chance at step 300 and above 0.9 by step 600.)
    4. "not really a bad film" has a word between "not" and "bad". What does the task's rule say, what does
       the model say, and what would you want it to say? (Answer: the rule negates only a sentiment word
       right after "not", so here "bad" stands and the label is negative; the model agrees, with p(positive)
       near 0 in section 7. A reader would call the film at least not bad, mildly positive: the model learned
       the task's rule, not English.)
    5. Build the document's configuration (`from_config("document")`) with `vocab_size=tok.vocab_size` and
       train it on this task for 100 steps. How long does one step take compared to the small model, and
       why? (Its batches are as long as their longest review, at most 10 tokens here: what would a step on the
       100 tokens of `max_sequence_length` cost?) (Answer: tens of times longer; about 25 times in one run of
       ours, both on the same CPU. Its $d_\text{model}$ is 16 times as large, so every matrix product of a
       token costs about 256 times as much, and Adam updates every parameter, unused embedding rows included,
       at every step; the small model's steps are mostly fixed overhead, which hides part of the ratio. On 100
       tokens instead of 10 the per-token layers cost 10 times as much and the attention scores, $S^2$ per
       head, 100 times.)
    """),
]
