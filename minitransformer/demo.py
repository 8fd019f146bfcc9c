"""``minitransformer demo``: a short tour of the engine, printed, with pictures saved to a folder.

Each section is one small function, run in order by :func:`run`:

1. :func:`forward` -- a small expression, its values step by step;
2. :func:`show_graph` -- the graph ``backward()`` will walk, as a tree of text and as a PNG (and Graphviz DOT);
3. :func:`gradients` -- ``backward()``, beside the derivative written out by hand;
4. :func:`check_gradients` -- the same gradients against central differences (float64);
5. :func:`train_xor` -- a two-layer network learning XOR with the engine and plain gradient descent;
6. :func:`worked_examples` -- the source document's worked examples: its values beside the formulas';
7. :func:`pictures` -- the attention map of its example and the positional-encoding table, as PNGs;
8. :func:`train_reverse` -- a short run of a Transformer learning to reverse digit sequences.

Runs on the current backend (NumPy unless ``MINITRANSFORMER_BACKEND`` says otherwise), in seconds,
with nothing downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np  # only to print and to compute the hand-written derivatives on the host

import minitransformer as mt
from minitransformer.autograd import to_dot, to_text

__all__ = ["run", "forward", "show_graph", "gradients", "check_gradients", "train_xor", "worked_examples",
           "pictures", "train_reverse"]


def section(title: str) -> None:
    """Print a section heading."""
    print(f"\n== {title} " + "=" * max(2, 70 - len(title)))


def _fmt(t) -> str:
    return np.array2string(np.asarray(t.numpy() if isinstance(t, mt.Tensor) else t), precision=4, suppress_small=True)


# ------------------------------------------------------------------ 1. forward
def forward():
    r"""Build :math:`y = \tanh(\sum_i x_i w_i + b)` from named tensors and print each step.

    Returns ``(x, w, b, y)``; ``y`` still holds its graph (``backward()`` has not run).
    Shapes: ``x`` and ``w`` ``(3,)``, ``b`` and ``y`` ``()``.

    Examples
    --------
    >>> x, w, b, y = forward()
    <BLANKLINE>
    == 1. forward: y = tanh(sum(x * w) + b) ==================================
    x = [ 0.5 -1.   2. ]   w = [ 0.3  0.2 -0.1]   b = 0.1
    x * w          = [ 0.15 -0.2  -0.2 ]
    s = sum(x * w) = -0.25
    z = s + b      = -0.15
    y = tanh(z)    = -0.1489
    >>> y.shape, y.requires_grad
    ((), True)
    """
    section("1. forward: y = tanh(sum(x * w) + b)")
    x = mt.tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    w = mt.tensor([0.3, 0.2, -0.1], requires_grad=True, name="w")
    b = mt.tensor(0.1, requires_grad=True, name="b")
    xw = x * w
    xw.name = "x*w"  # each named before its first use: the graph of section 2 shows the names
    s = xw.sum()
    s.name = "s"
    z = s + b
    z.name = "z"
    y = z.tanh()
    y.name = "y"
    print(f"x = {_fmt(x)}   w = {_fmt(w)}   b = {_fmt(b)}")
    print(f"x * w          = {_fmt(xw)}")
    print(f"s = sum(x * w) = {_fmt(s)}")
    print(f"z = s + b      = {_fmt(z)}")
    print(f"y = tanh(z)    = {_fmt(y)}")
    return x, w, b, y


# ------------------------------------------------------------------ 2. the graph
def show_graph(y: mt.Tensor, out: Path) -> Path:
    """Print the graph of ``y`` as a tree of text and save it as ``out/graph.png`` (and Graphviz's ``graph.dot``).

    Call it before ``y.backward()``, which frees the graph. Returns the path of the PNG.

    Examples
    --------
    Rendering the PNG takes most of a second (skipped here; ``tests/test_cli.py`` runs the demo):

    >>> import tempfile
    >>> x, w, b, y = forward()  # doctest: +ELLIPSIS
    <BLANKLINE>
    == 1. forward: ...
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     path = show_graph(y, Path(tmp))
    ...     sorted(p.name for p in Path(tmp).iterdir())
    <BLANKLINE>
    == 2. the computation graph (backward() walks it from y down to the leaves) ==
    y ()  <- Tanh
    └── z ()  <- Add
    ...
    ['graph.dot', 'graph.png']
    """
    from minitransformer.viz import draw_graph  # matplotlib is imported only when a picture is drawn

    section("2. the computation graph (backward() walks it from y down to the leaves)")
    print(to_text(y))
    (out / "graph.dot").write_text(to_dot(y) + "\n", encoding="utf-8")
    path = out / "graph.png"
    draw_graph(y).savefig(path, dpi=120)
    print(f"picture: {path.resolve()} (the same graph as Graphviz DOT text: graph.dot)")
    return path


# ------------------------------------------------------------------ 3. backward
def gradients(x: mt.Tensor, w: mt.Tensor, b: mt.Tensor, y: mt.Tensor) -> None:
    r"""Run ``y.backward()`` and print each gradient beside the chain rule written out.

    With :math:`z = \sum_i x_i w_i + b` and :math:`\tanh'(z) = 1 - \tanh^2(z)`:
    :math:`\partial y/\partial x_i = (1 - y^2)\, w_i`, :math:`\partial y/\partial w_i = (1 - y^2)\, x_i`,
    :math:`\partial y/\partial b = 1 - y^2`.

    Examples
    --------
    >>> x, w, b, y = forward()  # doctest: +ELLIPSIS
    <BLANKLINE>
    == 1. forward: ...
    >>> gradients(x, w, b, y)
    <BLANKLINE>
    == 3. backward: dy/dx, dy/dw, dy/db ======================================
              backward()                  by hand
    dy/dx     [ 0.2933  0.1956 -0.0978]   (1 - y^2) * w   = [ 0.2933  0.1956 -0.0978]
    dy/dw     [ 0.4889 -0.9778  1.9557]   (1 - y^2) * x   = [ 0.4889 -0.9778  1.9557]
    dy/db     0.9778                      1 - y^2         = 0.9778
    """
    section("3. backward: dy/dx, dy/dw, dy/db")
    y.backward()
    dz = 1.0 - float(y.item()) ** 2  # dy/dz = 1 - tanh(z)^2
    by_hand = {"x": ("(1 - y^2) * w", dz * w.numpy()), "w": ("(1 - y^2) * x", dz * x.numpy()),
               "b": ("1 - y^2", np.asarray(dz))}
    print(f"{'':10}{'backward()':<28}by hand")
    for t in (x, w, b):
        formula, value = by_hand[t.name]
        print(f"dy/d{t.name:<5} {_fmt(t.grad):<28}{formula:<15} = {_fmt(value)}")


# ------------------------------------------------------------------ 4. gradcheck
def check_gradients() -> None:
    r"""Check the engine's gradients of the same expression against central differences, in float64.

    :func:`minitransformer.gradcheck` compares every entry of ``backward()``'s gradient with
    :math:`(f(v + \epsilon) - f(v - \epsilon)) / 2\epsilon` and raises on a mismatch; the two printed lines
    say that both checks passed.

    Examples
    --------
    >>> check_gradients()
    <BLANKLINE>
    == 4. gradcheck: backward() against finite differences (float64) =========
    tanh(sum(x * w) + b): gradients of x, w, b match (f(v + eps) - f(v - eps)) / (2 eps), eps = 1e-6
    tanh(x @ W), W of shape (3, 4): gradient matches too
    """
    section("4. gradcheck: backward() against finite differences (float64)")
    x = mt.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True)
    w = mt.tensor([0.3, 0.2, -0.1], dtype="float64", requires_grad=True)
    b = mt.tensor(0.1, dtype="float64", requires_grad=True)
    mt.gradcheck(lambda x, w, b: ((x * w).sum() + b).tanh(), x, w, b)
    print("tanh(sum(x * w) + b): gradients of x, w, b match (f(v + eps) - f(v - eps)) / (2 eps), eps = 1e-6")
    W = mt.randn(3, 4, dtype="float64", requires_grad=True)
    mt.gradcheck(lambda W: (x.detach() @ W).tanh(), W)
    print("tanh(x @ W), W of shape (3, 4): gradient matches too")


# ------------------------------------------------------------------ 5. training
def train_xor(steps: int = 500, hidden: int = 8, lr: float = 0.05, every: int = 50) -> float:
    r"""Fit XOR with a two-layer network, :math:`p = \tanh(X W_1 + b_1)\, W_2 + b_2`, by gradient descent.

    The loss is the mean squared error :math:`L = \frac{1}{4}\sum_n (p_n - t_n)^2`; each step is
    :math:`\theta \leftarrow \theta - \eta\, \partial L/\partial \theta`. Returns the final loss.

    Shapes: X (4, 2), W_1 (2, hidden), b_1 (hidden,), W_2 (hidden, 1), b_2 (1,), p and t (4, 1).

    Examples
    --------
    >>> loss = train_xor(every=500)  # doctest: +ELLIPSIS
    <BLANKLINE>
    == 5. training: a 2-layer tanh network learns XOR (500 steps of gradient descent, lr=0.05) ==
    step    0   loss ...
    step  500   loss ...
    inputs -> prediction (target):
      [0. 0.] -> ... (0)
      [0. 1.] -> ... (1)
      [1. 0.] -> ... (1)
      [1. 1.] -> ... (0)
    >>> loss < 0.05   # from about 0.3 at step 0 (the mean squared error of guessing 0.5 is 0.25)
    True
    """
    section(f"5. training: a 2-layer tanh network learns XOR ({steps} steps of gradient descent, lr={lr})")
    mt.manual_seed(0)
    X = mt.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    t = mt.tensor([[0.0], [1.0], [1.0], [0.0]])
    W1 = mt.randn(2, hidden, requires_grad=True)
    b1 = mt.zeros(hidden, requires_grad=True)
    W2 = (mt.randn(hidden, 1) * (1.0 / hidden**0.5)).detach().requires_grad_()
    b2 = mt.zeros(1, requires_grad=True)
    params = [W1, b1, W2, b2]

    def predict(X):
        return (X @ W1 + b1).tanh() @ W2 + b2  # (4, hidden) -> (4, 1)

    for step in range(steps + 1):  # the loss at step k is that of the weights after k updates
        loss = ((predict(X) - t) ** 2).mean()
        if step % every == 0:
            print(f"step {step:4d}   loss {loss.item():.6f}")
        if step == steps:
            break  # no update after the last loss: the predictions below are of these weights
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= lr * p.grad.data  # the update is not part of the graph
    with mt.no_grad():
        p = predict(X)
    print("inputs -> prediction (target):")
    for xi, pi, ti in zip(X.numpy(), p.numpy()[:, 0], t.numpy()[:, 0]):
        print(f"  {xi} -> {pi:+.3f} ({ti:.0f})")
    return float(loss.item())


# ------------------------------------------------------------------ 6. the document's worked examples
def worked_examples() -> None:
    """Print section 4.3's examples: what the document states beside what the formulas give.

    The text is :func:`minitransformer.worked_examples.report`.

    Examples
    --------
    >>> worked_examples()  # doctest: +ELLIPSIS
    <BLANKLINE>
    == 6. the source document's worked examples (its section 4.3) against the formulas ==
    The source document, an article on AI start-ups this project started from, states the Transformer's
    ...
    Document section 4.3.1: self-attention, Q = K = V = [1, 2, 3]
      document: Output = [0.2, 0.3, 0.5]
    ...
    Errata: 10 places where the document and the formulas disagree (each in full: docs/errata.md, or ...)
      1. [4.3.1] Output = softmax(QK^T / sqrt(3)) V = [0.2, 0.3, 0.5], ...
    """
    from . import worked_examples as examples

    section("6. the source document's worked examples (its section 4.3) against the formulas")
    print("The source document, an article on AI start-ups this project started from, states the Transformer's\n"
          "formulas in its section 4.1 (4.1.1 attention, 4.1.2 multi-head, 4.1.3 positional encoding) and works\n"
          "them on small numbers in 4.3. Its numbers beside what the formulas give, and readings that explain them:\n")
    print(examples.report(errata_in_full=False))


# ------------------------------------------------------------------ 7. pictures
def pictures(out: Path) -> list[Path]:
    r"""Save the attention map of example 4.3.1 and the sinusoidal table PE as PNG files in ``out``.

    The map is :math:`\mathrm{softmax}(QK^\top/\sqrt{d_k})` ``(3, 3)`` for the three scalar tokens
    1, 2, 3 (the formula, :math:`d_k = 1`; notebook 02 draws the document's reading, divided by
    :math:`\sqrt 3`, beside it); the table is :math:`PE` ``(64, 128)``. Returns the paths written.

    Examples
    --------
    Rendering the PNGs takes about a second (skipped here; ``tests/test_cli.py`` runs the demo):

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     [p.name for p in pictures(Path(tmp))]
    <BLANKLINE>
    == 7. pictures: attention weights and positional encodings ...
    ['attention_4_3_1.png', 'positional_encoding.png']
    """
    from . import functional as F
    from . import viz

    section("7. pictures: attention weights and positional encodings")
    tokens = mt.tensor([[1.0], [2.0], [3.0]], dtype="float64")  # 4.3.1's [1, 2, 3] as three scalar tokens
    _, weights = F.scaled_dot_product_attention(tokens, tokens, tokens)
    labels = ["1", "2", "3"]
    figures = {
        "attention_4_3_1.png": viz.attention_heatmap(
            weights, labels, labels, title="softmax(QK^T / sqrt(d_k)): tokens 1, 2, 3 as scalars, d_k = 1"),
        "positional_encoding.png": viz.positional_encoding_heatmap(F.sinusoidal_positional_encoding(64, 128)),
    }
    written = []
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110, bbox_inches="tight")
        written.append(out / name)
        print(f"saved {(out / name).resolve()}")
    return written


# ------------------------------------------------------------------ 8. a Transformer learns
def train_reverse(out: Path, steps: int = 300, progress: bool | str = True) -> dict:
    """Train the encoder-decoder on the reverse task for ``steps`` steps (about 25 s for 300 on 2 cores), its
    ``progress`` shown as :class:`~minitransformer.train.Trainer`'s is.

    The full run, ``minitransformer train --task reverse``, reaches 99% exact-sequence accuracy
    on held-out sequences; this short one shows the loss falling and the accuracy rising. Returns
    the final metrics of :func:`minitransformer.train.run.train`; its files go to ``out/reverse``.

    Examples
    --------
    Even one step takes seconds (data, model, evaluation, checkpoint), so this is skipped here:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     metrics = train_reverse(Path(tmp), steps=1)
    >>> metrics["steps"]  # doctest: +SKIP
    1
    """
    from .train.run import train
    from .viz import training_pictures

    section(f"8. a Transformer learns to reverse digit sequences ({steps} steps)")
    print("The paper's encoder-decoder, small, with three settings of its own: layer norm before each sublayer\n"
          "(norm_first=True; the paper's post-LN needs a longer warm-up), a cosine decay after the warm-up and\n"
          "no dropout (a short run has little to overfit). Notebooks 05 and 09 try the paper's choices.\n"
          "val_accuracy: the share of held-out sequences reversed exactly (test_exact_sequence_accuracy below).\n")
    return train("reverse", out / "reverse", backend=mt.backend.current().name, steps=steps,
                 eval_every=max(1, steps // 3), pictures=training_pictures, overwrite=True,  # a demo reruns
                 progress=progress)


def run(out: str | Path = "demo-output", train_steps: int = 300, progress: bool | str = True) -> int:
    """Run every section; pictures go to the folder ``out`` (created). Returns 0 (an exit status).

    Parameters
    ----------
    out : str or Path
        Folder for the pictures (``graph.png``, ``attention_4_3_1.png``, ...), created if missing.
    train_steps : int
        Steps of the closing Transformer run (:func:`train_reverse`); 0 skips it.
    progress : bool or {"bar", "lines", "none"}
        How that run shows its progress: :class:`~minitransformer.train.Trainer`'s ``progress``.

    Examples
    --------
    The whole tour takes seconds (skipped here; ``minitransformer demo`` runs it):

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     run(tmp, train_steps=0)
    minitransformer ... demo, backend: numpy
    ...
    0
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"minitransformer {mt.__version__} demo, backend: {mt.backend.current().name}")
    x, w, b, y = forward()
    show_graph(y, out)  # before backward(), which frees the graph
    gradients(x, w, b, y)
    check_gradients()
    train_xor()
    worked_examples()
    pictures(out)
    if train_steps > 0:
        train_reverse(out, train_steps, progress)
    print(f"\ndone; pictures in {out.resolve()}")
    return 0
