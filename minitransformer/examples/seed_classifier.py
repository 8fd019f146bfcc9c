r"""The document's section 5 text classifier, done properly, with this library instead of Keras.

Run it::

    python -m minitransformer.examples.seed_classifier                   # the CPU configuration, a few minutes
    python -m minitransformer.examples.seed_classifier --config document # the document's sizes (slow on a CPU)
    minitransformer train --task classify --seed-config [cpu|document]   # the same through the command line

The document (section 5.2) builds a classifier with these settings, and this script keeps them:

==============================  =============  ==================================================
document (Keras)                ``document``   here
==============================  =============  ==================================================
``vocab_size = 10000``          10000          ``TransformerClassifier(vocab_size=...)``
``embed_dim = 512``             512            ``d_model``
``num_heads = 8``               8              ``heads``
``ff_dim = 2048``               2048           ``d_ff``
``max_sequence_length=100``     100            ``max_len`` (rows of the positional encoding)
``TransformerBlock``            1 block        ``num_layers=1``, post-LN, dropout 0.1 (as keras.io's)
``Dense(1, 'sigmoid')``         1 logit        ``head``; the sigmoid is inside the loss
``Adam(learning_rate=1e-4)``    1e-4           :class:`~minitransformer.optim.Adam`
``binary_crossentropy``                        :func:`~minitransformer.functional.binary_cross_entropy_with_logits`
``metrics=['accuracy']``                       :func:`~minitransformer.train.binary_accuracy`
``epochs=5, batch_size=32``                    the same
==============================  =============  ==================================================

What it changes, and why (:class:`~minitransformer.nn.TransformerClassifier` explains each point):

* **Data that can be learned.** Section 5.4 trains on ``np.random.rand`` inputs and labels: floats
  are not token ids, and random soft labels (floats in [0, 1)) carry nothing to learn; its accuracy,
  which counts labels equal to a 0-or-1 prediction, would be about 0, not chance. Here the
  data are the *negation task* (:func:`~minitransformer.data.negation_task`): short reviews whose
  label flips when ``"not"`` stands right before the sentiment word. A bag of words cannot score
  more than 75% on it; word order is needed, which is what attention with positional encodings gives.
* **A model that works.** Keras has no ``TransformerBlock`` layer (the import fails); the block's
  output needs pooling to give one probability per text, not one per token; a positional encoding
  (without it the model sees a bag of words); and a padding mask.

Where the document is silent (it never defines its ``TransformerBlock``), the choices are the paper's, and
some differ from the keras.io example the block's name comes from:

* **Heads of** :math:`d_k = d_{model}/h` = 64 (the paper's 3.2.2). keras.io's block passes
  ``key_dim=embed_dim``: heads 512 wide, 8,401,408 attention parameters where these have 1,050,624.
* **The sinusoidal positional encoding** of section 4.1.3 (fixed); keras.io learns one per position.
* **Embeddings scaled by** :math:`\sqrt{d_{model}}` (the paper's 3.4), and dropout on the sum of embedding
  and positional encoding (its 5.4); a Keras ``Embedding`` is neither.
* **Epsilons:** Adam's :math:`\epsilon` is :math:`10^{-8}` (Keras's default: :math:`10^{-7}`), layer
  norm's :math:`10^{-5}` (keras.io's block: :math:`10^{-6}`): PyTorch's defaults.
* **No gradient clipping**, as Keras's ``Adam(learning_rate=1e-4)``; the command line's other tasks clip at 1.0
  (``--seed-config`` sets ``clip=0``, and validates on the same 1000 reviews as this script).

The ``cpu`` configuration keeps the document's structure (one post-LN block, 8 heads,
:math:`d_{ff} = 4 d_{model}`, vocabulary 10000, sequences up to 100, constant-rate Adam, binary
cross-entropy, batches of 32) at a size a laptop trains in minutes: :math:`d_{model} = 64`,
learning rate :math:`10^{-3}` (a narrower model takes larger steps), no dropout, 10 epochs.
Measured: ``cpu`` reached 99.3% held-out accuracy after its 10 epochs (5000 steps, 107 s on a
shared 2-core machine, NumPy); ``document`` reached 94.8% after its 5 epochs (2500 steps, 45 s on
an H200 with CuPy; 0.28 s a step on that machine's CPU, 0.46 s on a shared 2-core one: 12 to 20
minutes), still rising: the document's
learning rate of :math:`10^{-4}` is slow but sound.
"""

from __future__ import annotations

import argparse
import sys
import time

from .. import backend as _backend
from .. import functional as F
from .. import nn, optim
from ..autograd import no_grad
from ..data import DataLoader, make_classification_batch, negation_task
from ..train import RunningMean, Trainer, binary_accuracy, set_blas_threads

__all__ = ["CONFIGS", "task_settings", "run", "main"]

#: the document's settings, and the CPU-sized ones (see the module docstring)
CONFIGS = {
    "document": dict(vocab_size=10000, embed_dim=512, num_heads=8, ff_dim=2048, max_sequence_length=100,
                     num_blocks=1, dropout=0.1, learning_rate=1e-4, epochs=5, batch_size=32, n_train=16000),
    "cpu": dict(vocab_size=10000, embed_dim=64, num_heads=8, ff_dim=256, max_sequence_length=100,
                num_blocks=1, dropout=0.0, learning_rate=1e-3, epochs=10, batch_size=32, n_train=16000),
}
N_VAL = 1000


def task_settings(config: str = "cpu") -> dict:
    """``CONFIGS[config]`` as settings of the ``classify`` task (what ``train --seed-config`` uses).

    The Keras names become the library's (``embed_dim`` -> ``d_model``, ``ff_dim`` -> ``d_ff``, ...), and
    epochs become optimizer steps: ``steps = epochs * (n_train // batch_size)``, with one evaluation
    per epoch.

    Parameters
    ----------
    config : str
        ``"cpu"`` or ``"document"`` (a key of :data:`CONFIGS`).

    Returns
    -------
    dict
        Keyword arguments of :func:`minitransformer.train.run.train` for the ``classify`` task.

    Examples
    --------
    >>> s = task_settings("cpu")
    >>> s["d_model"], s["heads"], s["d_ff"], s["steps"], s["eval_every"]
    (64, 8, 256, 5000, 500)
    """
    c = CONFIGS[config]
    return dict(vocab_size=c["vocab_size"], d_model=c["embed_dim"], heads=c["num_heads"], d_ff=c["ff_dim"],
                max_len=c["max_sequence_length"], layers=c["num_blocks"], dropout=c["dropout"], lr=c["learning_rate"],
                schedule="constant", warmup=1, batch_size=c["batch_size"], n_train=c["n_train"],
                steps=c["epochs"] * (c["n_train"] // c["batch_size"]), eval_every=c["n_train"] // c["batch_size"],
                pooling="mean", norm_first=False, label_smoothing=0.0,
                clip=0.0, n_val=N_VAL)  # as run(): no clipping (Keras's Adam clips nothing), 1000 held-out reviews


def run(config: str = "cpu", epochs: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Build, train and evaluate the section 5 classifier; returns ``{"val_loss", "val_accuracy", ...}``.

    Embedding -> sinusoidal positional encoding -> one post-LN Transformer block -> mean pooling over
    the real (unpadded) tokens -> ``Dense(1)``: token ids ``(batch, seq)`` in, one logit per text
    ``(batch,)`` out, trained with binary cross-entropy on the negation task. Prints the model, the
    validation figures of every epoch and the final ones.

    Parameters
    ----------
    config : str
        ``"cpu"`` or ``"document"`` (a key of :data:`CONFIGS`).
    epochs : int, optional
        Passes over the training reviews, in place of the configuration's.
    seed : int
        Seeds the data, the initial weights and the batch order.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``val_loss``, ``val_accuracy`` (on 1000 held-out reviews), ``train_accuracy`` and ``steps``.

    Examples
    --------
    A real run takes minutes (the ``cpu`` configuration, 10 epochs, reaches about 99%):

    >>> result = run("cpu", epochs=1, progress=False)  # doctest: +SKIP
    >>> sorted(result)  # doctest: +SKIP
    ['steps', 'train_accuracy', 'val_accuracy', 'val_loss']
    """
    c = dict(CONFIGS[config])
    if epochs is not None:
        c["epochs"] = epochs
    _backend.manual_seed(seed)

    # Data: the negation task instead of np.random.rand (section 5.4) -- labels that depend on word order
    train, val, tokenizer = negation_task(c["n_train"], N_VAL, seed=seed)
    x_val = make_classification_batch(val)

    # Build the model (section 5.2): Embedding -> positional encoding -> Transformer block -> pooling -> Dense(1)
    model = nn.TransformerClassifier(vocab_size=c["vocab_size"], d_model=c["embed_dim"], heads=c["num_heads"],
                                     d_ff=c["ff_dim"], num_layers=c["num_blocks"], max_len=c["max_sequence_length"],
                                     dropout=c["dropout"], pooling="mean", norm_first=False)

    # Compile the model: Adam(learning_rate), binary cross-entropy, accuracy
    optimizer = optim.Adam(model.parameters(), lr=c["learning_rate"])

    def loss_fn(model, batch):
        return F.binary_cross_entropy_with_logits(model(batch.src), batch.labels)

    def evaluate(model):
        with no_grad():
            z = model(x_val.src)
            return {"val_loss": F.binary_cross_entropy_with_logits(z, x_val.labels).item(),
                    "val_accuracy": binary_accuracy(z, x_val.labels).item()}

    # Print model structure (model.summary())
    print(model)
    print(f"config {config!r}: " + ", ".join(f"{k}={v}" for k, v in c.items()))

    # Train the model: model.fit(x_train, y_train, epochs, batch_size, validation_data=(x_val, y_val))
    loader = DataLoader(train, batch_size=c["batch_size"], shuffle=True, seed=seed, drop_last=True,
                        collate=make_classification_batch)
    trainer = Trainer(model, optimizer, loss_fn, eval_fn=evaluate, eval_every=len(loader), log_every=50,
                      progress=progress, monitor="val_accuracy", desc="fit")
    start = time.perf_counter()
    trainer.fit(loader, steps=c["epochs"] * len(loader))
    for epoch, ((_, loss), (_, acc)) in enumerate(zip(trainer.history["val_loss"], trainer.history["val_accuracy"])):
        print(f"epoch {epoch + 1}: val_loss {loss:.4f}, val_accuracy {acc:.4f}")

    # Evaluate the model (model.evaluate: dropout off)
    model.eval()
    train_accuracy = RunningMean()
    with no_grad():
        for i in range(0, len(train), 1000):
            b = make_classification_batch(train[i:i + 1000])
            train_accuracy.add(binary_accuracy(model(b.src), b.labels), len(b))
    result = evaluate(model)
    print(f"Validation Loss: {result['val_loss']:.4f}, Validation Accuracy: {result['val_accuracy']:.4f}")
    print(f"(a bag of words can reach at most 0.75; training accuracy {train_accuracy.compute():.4f}; "
          f"{trainer.step} steps in {time.perf_counter() - start:.0f} s)")
    return {**result, "steps": trainer.step, "train_accuracy": train_accuracy.compute()}


def main(argv=None) -> int:
    """``python -m minitransformer.examples.seed_classifier [--config cpu|document] [--epochs N]``.

    Parses ``argv`` (``sys.argv[1:]`` when None), sets one BLAS thread and calls :func:`run` on the
    chosen ``--backend``. Returns 0, an exit status.

    Examples
    --------
    A configuration that does not exist stops at the parser (its message goes to stderr):

    >>> main(["--config", "huge"])
    Traceback (most recent call last):
        ...
    SystemExit: 2

    A real run takes minutes:

    >>> main(["--epochs", "1", "--no-progress"])  # doctest: +SKIP
    0
    """
    parser = argparse.ArgumentParser(description="The document's section 5 classifier on the negation task.")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu",
                        help="cpu (default): small enough for a laptop; document: the document's sizes")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the 16000 training reviews")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy", "array_api_strict"])
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    set_blas_threads(1)  # small matrices: one BLAS thread is fastest (minitransformer/train/threads.py)
    with _backend.use(args.backend):
        run(args.config, epochs=args.epochs, seed=args.seed, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
