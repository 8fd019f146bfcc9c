"""Build the step-through notebooks from this file, run them, and write them with their outputs.

The notebooks in ``notebooks/`` are generated: each one is a list of cells here, markdown and code,
so that a change to a notebook is a reviewable change to Python source, and a notebook can always
be rebuilt from scratch. ``tests/test_notebooks.py`` checks that the committed notebooks' sources
equal what this file generates (outputs excluded) and runs every notebook top to bottom.

    python tools/make_notebooks.py               # build, execute and write every notebook
    python tools/make_notebooks.py 02 05         # only these (by number or file name)
    python tools/make_notebooks.py --check       # exit 1 if a committed notebook's sources drifted
    python tools/make_notebooks.py --no-execute  # write the sources without outputs

Run it from anywhere with the project's environment (``.venv/bin/python``); the notebooks are
executed with the ``python3`` kernel, in ``notebooks/`` as their working directory. After running,
progress bars are collapsed to their final line (as a terminal shows them) and consecutive prints
merged, so the committed outputs read cleanly on a code-hosting site.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
CELL_TIMEOUT = 120  # seconds per cell


# ------------------------------------------------------------------ cells
def md(text: str) -> tuple[str, str]:
    """A markdown cell (the text is dedented and stripped)."""
    return ("markdown", textwrap.dedent(text).strip())


def code(text: str) -> tuple[str, str]:
    """A code cell (the text is dedented and stripped)."""
    return ("code", textwrap.dedent(text).strip())


_MARKER = re.compile(r"^\s*### BEGIN SOLUTION A(\d+): ", re.M)


def exercise(grade_id: str, text: str) -> tuple[str, str, dict]:
    """An exercise code cell: a code cell whose solution is marked for the student copies, with nbgrader's metadata.

    The solution sits between ``### BEGIN SOLUTION A<N>: <hint>`` and ``### END SOLUTION`` (read by
    ``minitransformer/assignments/strip.py`` and by nbgrader); in assignment N's copy it becomes
    ``raise NotImplementedError("A<N>: <hint>")``. ``grade_id`` is ``"a<N>-<short-name>"``, unique in its
    notebook, and every marker of the cell must belong to that assignment ``N``.
    """
    kind, source = code(text)
    wanted = re.fullmatch(r"a(\d+)-[a-z0-9-]+", grade_id)
    found = sorted(f"A{n}" for n in set(_MARKER.findall(source)))
    if wanted is None or found != [f"A{wanted[1]}"]:
        raise ValueError(f"make_notebooks: exercise {grade_id!r} needs a grade_id 'a<N>-<short-name>' and solution "
                         f"markers of A<N> only; its markers are of {found or 'no assignment'}")
    return (kind, source, {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                                        "solution": True}})


SETUP = code("""
    %matplotlib inline
    import numpy as np

    import minitransformer as mt
    import minitransformer.functional as F
    from minitransformer import nn, viz

    np.set_printoptions(precision=4, suppress=True)
    mt.manual_seed(0)
    print("minitransformer", mt.__version__, "on", mt.backend.current().name)
""")


# ====================================================================================== 01
NB01 = [
    md(r"""
    # 01 · Autograd from scratch

    **What this notebook teaches.** How `backward()` finds the derivative of a result with respect to
    every number that went into it. Each operation records itself in a *computation graph* as it runs;
    `backward()` walks that graph from the result back to the inputs and applies the chain rule at every
    node. Writing $\bar v = \partial L / \partial v$ for the gradient of the final result $L$ with respect
    to a node $v$ (its *adjoint*), the whole algorithm is one rule:

    $$
    \bar v \;=\; \sum_{u\ \text{uses}\ v} \bar u \,\frac{\partial u}{\partial v},
    \qquad \bar L = 1 .
    $$

    Each node passes its adjoint to its inputs, multiplied by its local derivative; a node used twice
    receives (and adds up) two contributions. That is reverse-mode automatic differentiation, the engine
    under every Transformer in this library (`minitransformer/autograd/engine.py`, each primitive's
    `forward` beside its `backward` in `autograd/ops.py`).

    Steps: **1** a tiny expression, computed by hand · **2** its graph, as a picture and as DOT text ·
    **3** backward one node at a time · **4** `backward()` and `retain_grad()` · **5** a node used twice ·
    **6** gradcheck, finite differences as the referee · **7** a new primitive, written here as a
    `Function` subclass with its `backward`, and gradcheck'ed.

    **Exercises in the text** (assignment A1, `minitransformer assignments list`): the backward of Mul,
    MatMul and Sum (section 3) and of a small expression (section 5), in NumPy, each followed by a cell
    that checks your answer against the library.
    """),
    SETUP,
    md(r"""
    ## 1. A computation graph by hand

    The expression (micrograd's first example):

    $$ e = a\,b, \qquad d = e + c, \qquad L = d\,f $$

    with $a = 2$, $b = -3$, $c = 10$, $f = -2$. Forward, by hand: $e = 2 \cdot (-3) = -6$,
    $d = -6 + 10 = 4$, $L = 4 \cdot (-2) = -8$.

    Backward, by hand, from the top, one local derivative at a time:

    | node | rule | adjoint |
    |---|---|---|
    | $L$ | start | $\bar L = 1$ |
    | $d$ | $\partial L/\partial d = f$ | $\bar d = \bar L \cdot f = -2$ |
    | $f$ | $\partial L/\partial f = d$ | $\bar f = \bar L \cdot d = 4$ |
    | $e$ | $\partial d/\partial e = 1$ | $\bar e = \bar d \cdot 1 = -2$ |
    | $c$ | $\partial d/\partial c = 1$ | $\bar c = \bar d \cdot 1 = -2$ |
    | $a$ | $\partial e/\partial a = b$ | $\bar a = \bar e \cdot b = 6$ |
    | $b$ | $\partial e/\partial b = a$ | $\bar b = \bar e \cdot a = -4$ |

    Now the same with tensors. `requires_grad=True` marks the inputs we want gradients for; `name=`
    only labels the picture.
    """),
    code("""
    def inputs():
        a = mt.tensor(2.0, requires_grad=True, name="a")
        b = mt.tensor(-3.0, requires_grad=True, name="b")
        c = mt.tensor(10.0, requires_grad=True, name="c")
        f = mt.tensor(-2.0, requires_grad=True, name="f")
        return a, b, c, f

    def expression(a, b, c, f):
        e = a * b
        e.name = "e"
        d = e + c
        d.name = "d"
        L = d * f
        L.name = "L"
        return e, d, L

    a, b, c, f = inputs()
    e, d, L = expression(a, b, c, f)
    for t in (a, b, c, f, e, d, L):
        print(f"{t.name} = {t.item():5g}  shape {t.shape}  {t.dtype_name}  leaf: {t.is_leaf!s:5}  grad_fn: {t.grad_fn}")
    """),
    md(r"""
    `a, b, c, f` are *leaves* (made by us); `e, d, L` were made by operations, and each remembers its
    operation in `grad_fn`, which remembers its inputs. Those links are the graph.

    ## 2. The graph, as a picture and as DOT text

    `viz.draw_graph` draws what `backward()` will walk: tensors are boxes (green: a leaf that will
    receive `.grad`), operations are ellipses, data flows left to right. `to_dot` gives the same graph in
    Graphviz's language (paste it into any DOT viewer).
    """),
    code("""
    viz.draw_graph(L)
    """),
    code("""
    from minitransformer.autograd import to_dot

    print(to_dot(L))
    """),
    md(r"""
    ## 3. Backward, one node at a time

    Each primitive knows one thing about derivatives: given the adjoint of its output, $\bar y$, its
    `backward` returns the adjoint of each input, $\bar y$ times the local derivative. Write three of
    them yourself first.

    ### Exercise A1 · the backward of Mul, MatMul and Sum, in NumPy

    Given the output's adjoint, write each input's adjoint (it has the input's shape):

    | operation | forward | backward |
    |---|---|---|
    | Mul | $y = a \odot b$, elementwise, $(5,)$ | $\bar a = \bar y \odot b$; $\;\bar b = \bar y \odot a$ |
    | MatMul | $Y = A B$, $(3, 4) \cdot (4, 2)$ | $\bar A = \bar Y B^\top$; $\;\bar B = A^\top \bar Y$ |
    | Sum | $s_j = \sum_i x_{ij}$, over axis 0 | $\bar x_{ij} = \bar s_j$: $\bar s$ copied to each row |

    (In a student copy the cell holds `raise NotImplementedError(...)`: replace those lines by yours.)
    """),
    exercise("a1-mul-matmul-sum", """
    rng = np.random.default_rng(1)
    a, b, y_bar = rng.standard_normal((3, 5))                          # y = a * b; y_bar = dL/dy, (5,) each
    A, B, Y_bar = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    x, s_bar = rng.standard_normal((3, 4)), rng.standard_normal(4)     # s = x.sum(axis=0), (4,); s_bar = dL/ds

    ### BEGIN SOLUTION A1: a_bar, b_bar of y = a * b; A_bar, B_bar of Y = A @ B; x_bar of s = x.sum(axis=0)
    a_bar, b_bar = y_bar * b, y_bar * a                                # Mul
    A_bar, B_bar = Y_bar @ B.T, A.T @ Y_bar                            # MatMul: (3, 2)(2, 4), (4, 3)(3, 2)
    x_bar = np.broadcast_to(s_bar, x.shape)                            # Sum: s_bar copied to each of 3 rows
    ### END SOLUTION
    print("a_bar", a_bar.shape, " b_bar", b_bar.shape, " A_bar", A_bar.shape, " B_bar", B_bar.shape,
          " x_bar", x_bar.shape)
    """),
    md(r"""
    **Check.** The library's `backward()` on $L = \langle \bar y, y \rangle$ (so that $\partial L / \partial y =
    \bar y$) must give the same numbers.
    """),
    code("""
    def library_grads(loss, *arrays):
        \"\"\"Each array's gradient by the library's backward() of the scalar loss(*tensors).\"\"\"
        tensors = [mt.tensor(arr, requires_grad=True) for arr in arrays]   # float64, as the arrays
        loss(*tensors).backward()
        return [t.grad.numpy() for t in tensors]

    lib_a, lib_b = library_grads(lambda a, b: (a * b * mt.tensor(y_bar)).sum(), a, b)
    lib_A, lib_B = library_grads(lambda A, B: ((A @ B) * mt.tensor(Y_bar)).sum(), A, B)
    (lib_x,) = library_grads(lambda x: (x.sum(axis=0) * mt.tensor(s_bar)).sum(), x)
    for name, mine, lib in (("a_bar", a_bar, lib_a), ("b_bar", b_bar, lib_b), ("A_bar", A_bar, lib_A),
                            ("B_bar", B_bar, lib_B), ("x_bar", x_bar, lib_x)):
        np.testing.assert_allclose(mine, lib, rtol=1e-12, atol=1e-12, err_msg=name)
    print("all five agree with the library's backward()")
    """),
    md(r"""
    `backward()` applies such rules over a whole graph, in this order: sort the nodes so that every
    node comes after its inputs (a *topological order*), then go through it **backwards**, so that a
    node's adjoint is complete (all its users have sent their share) before it is passed on, as the
    table of section 1 does. Here are those steps written out with the graph's own links:
    `grad_fn.inputs` and each primitive's `grad_fn.backward(adjoint)`, which returns one gradient per input.
    """),
    code("""
    def topological_order(root):
        order, seen = [], set()
        def visit(t):
            if id(t) in seen or t.grad_fn is None:
                return
            seen.add(id(t))
            for x in t.grad_fn.inputs:
                visit(x)
            order.append(t)            # after its inputs
        visit(root)
        return order

    a, b, c, f = inputs()
    e, d, L = expression(a, b, c, f)
    adjoint = {L.name: np.float32(1.0)}                  # dL/dL = 1
    for node in reversed(topological_order(L)):          # L first, then d, then e
        fn = node.grad_fn
        grads = fn.backward(adjoint[node.name])          # the local chain rule of this operation
        for x, g in zip(fn.inputs, grads):
            adjoint[x.name] = adjoint.get(x.name, 0) + g  # "+=": a node used twice gets both shares
            print(f"{node.name} = {fn}({', '.join(i.name for i in fn.inputs)}):  sends {g:5g} to {x.name}")
    print({k: float(v) for k, v in adjoint.items()})
    """),
    md(r"""
    The same numbers as the hand-computed table. (The real engine also frees the graph as it goes and
    sums gradients of broadcast inputs back to their shape; see `_run_backward` in
    `autograd/engine.py`, about 50 lines: the same loop, plus freeing, checks of what each `backward`
    returns, and adding into gradient arrays in place where no one else holds them.)

    ## 4. `backward()`, and `retain_grad()` to see inside

    After `L.backward()`, every leaf with `requires_grad=True` holds its gradient in `.grad`. Intermediate
    tensors pass their gradient on and keep nothing, unless asked with `retain_grad()`.
    """),
    code("""
    a, b, c, f = inputs()
    e, d, L = expression(a, b, c, f)
    for t in (e, d, L):
        t.retain_grad()
    L.backward()
    for t in (L, d, e, f, c, a, b):
        print(f"dL/d{t.name} = {t.grad.item():5g}")
    """),
    md(r"""
    ## 5. A node used twice: gradients add up

    For $y = x \cdot x + x$, $x$ feeds two operations, so its adjoint has two terms:
    $\bar x = \bar y\,(x + x) + \bar y \cdot 1 = 2x + 1$, which is $7$ at $x = 3$. The engine adds them
    (`+=`, as micrograd does); assigning instead of adding would lose one and give a wrong answer.
    The same happens with tensors: a matrix product's gradient, row by row.
    """),
    code("""
    x = mt.tensor(3.0, requires_grad=True, name="x")
    y = x * x + x
    y.backward()
    print("dy/dx =", x.grad.item(), "  by hand: 2x + 1 =", 2 * 3 + 1)

    X = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)   # (2, 2)
    W = mt.tensor([[0.5], [-1.0]], requires_grad=True)             # (2, 1)
    out = (X @ W).sum()                                            # scalar
    out.backward()
    print("X @ W:", (X @ W).shape, " X.grad:", X.grad.shape, " W.grad:", W.grad.shape)
    print("dL/dW =", W.grad.numpy().ravel(), "  by hand: column sums of X =", X.numpy().sum(axis=0))
    """),
    md(r"""
    ### Exercise A1 · a small expression, backward by hand

    The expression that section 6 checks, summed: $L = \sum_{ij} \tanh(XW)_{ij}$ with $X$ of shape $(2, 3)$ and
    $W$ of shape $(3, 4)$. Its graph is $Z = XW$, $T = \tanh Z$, $L = \sum T$; go through it backwards:

    $$ \bar T = 1 \text{ (every entry)}, \qquad \bar Z = \bar T \odot (1 - T^2), \qquad
       \bar X = \bar Z\, W^\top, \qquad \bar W = X^\top \bar Z . $$
    """),
    exercise("a1-tanh-expression", """
    X_np = np.array([[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]])              # (2, 3)
    W_np = np.random.default_rng(0).standard_normal((3, 4))            # (3, 4)
    Z = X_np @ W_np                                                    # (2, 4)
    T = np.tanh(Z)                                                     # (2, 4)

    ### BEGIN SOLUTION A1: T_bar = 1 everywhere, Z_bar = T_bar * (1 - T^2), then X_bar and W_bar as for MatMul
    T_bar = np.ones_like(T)                                            # dL/dT: L is the sum of T
    Z_bar = T_bar * (1 - T**2)                                         # tanh' = 1 - tanh^2
    X_bar, W_bar = Z_bar @ W_np.T, X_np.T @ Z_bar                      # (2, 3), (3, 4)
    ### END SOLUTION
    print("X_bar", X_bar.shape, "\\n", X_bar)
    """),
    md(r"""
    **Check** against the library's `backward()` of the same expression:
    """),
    code("""
    Xt = mt.tensor(X_np, requires_grad=True)
    Wt = mt.tensor(W_np, requires_grad=True)
    (Xt @ Wt).tanh().sum().backward()
    np.testing.assert_allclose(X_bar, Xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(W_bar, Wt.grad.numpy(), rtol=1e-12, atol=1e-12)
    print("X_bar and W_bar agree with the library's backward()")
    """),
    md(r"""
    ## 6. gradcheck: finite differences as the referee

    A hand-written derivative can be wrong. The referee is the definition of the derivative itself: nudge
    one input element by $\pm\epsilon$ and watch the output,

    $$ \frac{\partial s}{\partial x_i} \approx \frac{s(x + \epsilon e_i) - s(x - \epsilon e_i)}{2\epsilon}. $$

    `mt.gradcheck(fn, *inputs)` compares `backward()` with this central difference for every element of
    every input (for a non-scalar output it checks $s = \langle v, f(x)\rangle$ with a random $v$). Use
    float64: in float32 the difference quotient itself is only good to about $10^{-3}$.
    """),
    code("""
    x = mt.tensor([[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]], dtype="float64", requires_grad=True)   # (2, 3)
    W = mt.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)        # (3, 4) float64
    print("x", x.shape, x.dtype_name, "  W", W.shape, W.dtype_name)
    print(mt.gradcheck(lambda x, W: (x @ W).tanh(), x, W))
    print(mt.gradcheck(lambda x: x.exp() / x.exp().sum(axis=-1, keepdims=True), x))   # a softmax, from primitives
    """),
    md(r"""
    ## 7. A new primitive: a `Function` subclass with its backward

    Every primitive of the engine is a class with a `forward` on arrays and a `backward` beside it. Here
    is one written in this notebook, the logistic sigmoid:

    $$ \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \frac{d\sigma}{dx} = \sigma(x)\,\bigl(1 - \sigma(x)\bigr),
    \qquad \bar x = \bar y\, y\,(1 - y). $$

    `forward` receives the arrays and computes with `self.xp`, the backend's array namespace (so the same
    lines run on NumPy and on CuPy), and saves what `backward` will need. `backward` gets $\bar y$ and
    returns one gradient per input.
    """),
    code("""
    class Sigmoid(mt.Function):
        r\"\"\"y = 1 / (1 + e^{-x});  dL/dx = dL/dy * y * (1 - y).\"\"\"

        def forward(self, x):
            self.y = 1.0 / (1.0 + self.xp.exp(-x))   # saved for backward
            return self.y

        def backward(self, grad):
            return (grad * self.y * (1.0 - self.y),)

    def sigmoid(x):
        return Sigmoid.apply(x)

    x = mt.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    y = sigmoid(x)
    y.sum().backward()
    print("y      =", y.numpy(), y.shape)
    print("x.grad =", x.grad.numpy(), "  by hand y(1-y):", (y.numpy() * (1 - y.numpy())))
    x64 = mt.tensor(np.linspace(-4, 4, 7), requires_grad=True)    # float64 for the check
    print("gradcheck:", mt.gradcheck(sigmoid, x64))
    """),
    md(r"""
    And what gradcheck says when the derivative is wrong: here the backward forgets the factor $y$.
    The error names the input, the element, and both numbers.
    """),
    code("""
    class WrongSigmoid(Sigmoid):
        def backward(self, grad):
            return (grad * (1.0 - self.y),)      # forgot a factor y

    try:
        mt.gradcheck(lambda t: WrongSigmoid.apply(t), x64)
    except AssertionError as err:               # mt.autograd.GradcheckError
        print(type(err).__name__ + ":", err)
    """),
    md(r"""
    The picture of a graph that uses the new primitive: it is a node like any other.
    """),
    code("""
    w = mt.tensor([0.5, -0.5, 1.0], requires_grad=True, name="w")
    x = mt.tensor([1.0, 2.0, 3.0], name="x")
    loss = sigmoid(x * w).sum()
    loss.name = "loss"
    viz.draw_graph(loss)
    """),
    md(r"""
    ## Exercises

    1. Change $f$ to $3$ in section 1. Recompute the adjoint table by hand, then check it with
       `retain_grad()`.
    2. Write `Tanh` as a `Function` subclass ($\bar x = \bar y\,(1 - y^2)$), gradcheck it, and compare it
       with the library's `x.tanh()` on the same input.
    3. In the loop of section 3, replace `reversed(topological_order(L))` by `topological_order(L)`. It stops
       at the first node: why has that node no adjoint yet? Now start every adjoint at 0
       (`adjoint.get(node.name, 0)`) and try it on $y = x\cdot x + x$ at $x = 3$: which adjoint comes out
       wrong, and why must a node wait until every node that uses it has sent its share?
    4. Make gradcheck pass *wrongly*: find an input at which `WrongSigmoid` agrees with the central
       difference. What does that say about choosing test inputs?
    5. A `Function` whose backward returns the gradient of a *broadcast* input: compute `x + b` with
       `x` of shape `(4, 3)` and `b` of shape `(3,)`. What shape does `b.grad` have, and who summed it?
    """),
]


# ====================================================================================== 02
NB02 = [
    md(r"""
    # 02 · Scaled dot-product attention

    **What this notebook teaches.** The one formula at the heart of the Transformer (source document,
    section 4.1.1; "Attention Is All You Need", equation 1):

    $$
    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V
    $$

    Each of the $L$ queries (rows of $Q$, shape $(L, d_k)$) is compared with each of the $S$ keys (rows of
    $K$, shape $(S, d_k)$) by a dot product; the scores are divided by $\sqrt{d_k}$; a softmax over the keys
    turns each row of scores into **weights** that are positive and sum to 1; and each query's output is
    the weighted average of the values (rows of $V$, shape $(S, d_v)$). Three things, three names:

    | name | formula | shape |
    |---|---|---|
    | scores | $QK^\top / \sqrt{d_k}$ | $(L, S)$, any real numbers |
    | weights (the *attention map*) | $\mathrm{softmax}$ of the scores, row by row | $(L, S)$, rows sum to 1 |
    | output | weights $\cdot\, V$ | $(L, d_v)$ |

    Steps: **1** the formula with NumPy, one line per step · **2** the same by the library ·
    **3** the attention map · **4** why $\sqrt{d_k}$ · **5** the document's worked example 4.3.1 by hand, and
    what its stated output $[0.2, 0.3, 0.5]$ really is · **6** masks: causal, padding, and a row with
    nothing to attend to.

    **Exercises in the text** (assignment A2, `minitransformer assignments list`): the softmax and the
    attention of section 1, in NumPy, each followed by a cell that checks your answer.
    """),
    SETUP,
    md(r"""
    ## 1. The formula with NumPy, step by step

    Four tokens; each has a query, a key and a value vector of $d_k = d_v = 4$ numbers (in a model they are
    projections of the token embeddings; here they are random).
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

    A softmax turns a row of scores into weights that are positive and sum to 1:

    $$ \mathrm{softmax}(x)_j = \frac{e^{x_j}}{\sum_k e^{x_k}} = \frac{e^{x_j - m}}{\sum_k e^{x_k - m}},
       \qquad m = \max_k x_k . $$

    Both forms are the same number, but only the second is safe: $e^{x - m} \le 1$ cannot overflow, while
    $e^{1000}$ is `inf` in float64. Write `softmax(x, axis)` along any axis (`keepdims=True` keeps the
    reduced axis, so that the division broadcasts).
    """),
    exercise("a2-softmax", """
    def softmax(x, axis=-1):
        \"\"\"exp(x - max) / sum(exp(x - max)) along `axis`: x's shape, positive, sums to 1 along `axis`.\"\"\"
        ### BEGIN SOLUTION A2: e = exp(x - max(x)) along axis, then e / sum(e); keepdims=True keeps the axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))   # subtracting the max changes nothing but overflow
        return e / e.sum(axis=axis, keepdims=True)
        ### END SOLUTION


    weights = softmax(scores)                             # (L, S): softmax over the keys
    print("weights = softmax(scores)", weights.shape, "  row sums:", weights.sum(axis=-1))
    print(weights)
    """),
    md(r"""
    **Check** on values worked out beforehand, on scores that would overflow, and on the rows of `weights`:
    """),
    code("""
    np.testing.assert_allclose(softmax(np.array([1.0, 2.0, 3.0])), [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)
    np.testing.assert_allclose(softmax(np.array([1000.0, 1000.0, 999.0])), [0.4223188, 0.4223188, 0.1553624],
                               rtol=1e-6)                 # no overflow
    np.testing.assert_allclose(softmax(np.array([[1.0, 1.0], [0.0, 2.0]]), axis=0), [[0.7310586, 0.2689414],
                               [0.2689414, 0.7310586]], rtol=1e-6)   # along axis 0
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

    Row $i$ is query $i$'s weights over the keys; every map in this library is drawn on the same scale,
    0 to 1, so maps can be compared by eye.
    """),
    code("""
    viz.attention_heatmap(w_t, tokens, tokens, title="softmax(QK^T / sqrt(d_k)), random Q, K")
    """),
    md(r"""
    ## 4. Why divide by $\sqrt{d_k}$

    If the entries of $q$ and $k$ are independent with mean 0 and variance 1, the dot product
    $q \cdot k = \sum_{j=1}^{d_k} q_j k_j$ has variance $d_k$. With the paper's $d_k = 64$ the scores would
    spread over about $\pm 16$, and the softmax of such numbers is nearly one-hot: one weight near 1, the
    rest near 0, and gradients near 0. Dividing by $\sqrt{d_k}$ brings the variance back to 1.
    """),
    code("""
    d = 64
    q = rng.standard_normal((1000, d))
    k = rng.standard_normal((1000, d))
    raw = (q[:, None, :] * k[None, :10, :]).sum(-1)          # (1000, 10) scores against 10 keys
    for name, s in (("q.k", raw), ("q.k / sqrt(d_k)", raw / np.sqrt(d))):
        e = np.exp(s - s.max(-1, keepdims=True))
        w = e / e.sum(-1, keepdims=True)
        print(f"{name:16} variance {s.var():6.1f}   mean largest weight {w.max(-1).mean():.2f} (of 10 keys)")
    """),
    md(r"""
    ## 5. The document's worked example (section 4.3.1)

    The document takes $Q = K = V = [1.0, 2.0, 3.0]$ "with a dimension of $d = 3$" and states

    $$ \text{Output} = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt 3}\right) V = [0.2, 0.3, 0.5]. $$

    Its $Q$, $K$ and $V$ already depart from the formulas. The text has just added positional encodings to
    the embeddings and says the three "are all generated by the embedding layer", yet each is the bare
    input $[1, 2, 3]$: the encoding is in none of them. In the paper they are three learned projections
    $XW^Q$, $XW^K$, $XW^V$ of $X$ = embedding + $PE$ (notebook 03), so a token's query, key and value differ
    (erratum 8 in `docs/errata.md`). What follows keeps the document's $Q = K = V = [1, 2, 3]$.

    The document does not say whether $[1, 2, 3]$ is **one token** of dimension 3 or **three tokens** of dimension 1,
    so compute both by hand.

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
        s = col @ col.T / divisor                             # (3, 3)
        w = np.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        print(f"three tokens, divided by {why}:")
        print("  weights (3, 3):\\n", w.round(3))
        print("  output  (3, 1):", (w @ col).ravel().round(3))
    """),
    md(r"""
    Neither reading gives $[0.2, 0.3, 0.5]$, and no reading can: an output is a weighted **average** of the
    values, so each of its numbers lies between the smallest and the largest value, 1 and 3. But
    $0.2 + 0.3 + 0.5 = 1$, the way a row of **weights** sums to 1. The library's
    `worked_examples.self_attention_example()` computes every candidate reading of the stated numbers and
    ranks them by distance:
    """),
    code("""
    from minitransformer import worked_examples

    sa = worked_examples.self_attention_example()
    print("document:", list(sa.document_output))
    for setup, (out, w) in sa.attention.items():
        print(f"  {setup:42} output {out.numpy().ravel().round(3)}  weights {w.shape}")
    print("\\nreadings, closest first:  max |difference|, rounds to the document's numbers?")
    for r in sa.readings[:5]:
        print(f"  {r.distance:.4f}  {'yes' if r.rounds_to_document else 'no ':3}  {r.name:40} {np.round(r.value, 3)}")
    """),
    md(r"""
    **The plausible reading.** The closest is the first row of the **weights** for three scalar tokens,
    divided by $\sqrt 3$: $[0.168, 0.299, 0.533]$, which rounds to the document's $[0.2, 0.3, 0.5]$. So the
    document most likely computed the attention weights of the first token (not the output), and divided
    by the square root of the sequence length (3) where the formula divides by $\sqrt{d_k} = \sqrt 1$.
    ($V / \sum V = [0.167, 0.333, 0.5]$ also rounds to it, but uses no $Q$, no $K$ and no softmax.) The full
    list of the document's discrepancies is in `docs/errata.md`.

    The weights of that reading, as a map:
    """),
    code("""
    _, w_doc = sa.attention["three scalar tokens, divided by sqrt(3)"]
    viz.attention_heatmap(w_doc, ["1", "2", "3"], ["1", "2", "3"],
                          title="Q = K = V = [1, 2, 3] as three tokens, / sqrt(3)")
    """),
    md(r"""
    ## 6. Masks

    A mask says which keys each query **may** see: a boolean `(L, S)` table (or anything that broadcasts to
    the scores), `True` = allowed, as in the boolean `attn_mask` of PyTorch's
    `scaled_dot_product_attention` (its `nn.MultiheadAttention` takes the opposite: `True` = hidden). A hidden score is
    replaced by a very negative number (the paper writes $-\infty$), so its weight is 0.

    **Causal mask** (the decoder, paper 3.2.3): position $i$ may look at positions $j \le i$ only, so a
    model predicting the next token cannot peek at it.
    """),
    code("""
    causal = F.causal_mask(L)                                 # (L, L) bool
    print("causal mask", causal.shape)
    print(causal.numpy().astype(int))
    _, w_causal = F.scaled_dot_product_attention(Qt, Kt, Vt, mask=causal)
    viz.attention_heatmap(w_causal, tokens, tokens, title="causal mask: no looking ahead")
    """),
    md(r"""
    **Padding mask.** Sequences of different lengths are padded to one length with a `<pad>` token
    (id 0). Nobody should attend to padding: `F.padding_mask(ids, pad_id)` is `(batch, 1, 1, S)`, which
    broadcasts over heads and queries. Combined with the causal mask (logical and) it gives the decoder's
    `(batch, 1, S, S)` mask.
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
                          title="padding mask: the pads get no weight")
    """),
    md(r"""
    **A row with nothing to attend to.** If every key of a query is hidden, the softmax has nothing to
    share its weight over. With a literal $-\infty$ the row becomes $e^{-\infty - (-\infty)}$: NaN, which
    then spreads through everything downstream. The library makes such a row's weights, output and
    gradient **0** instead:
    """),
    code("""
    mask = np.ones((L, S), dtype=bool)
    mask[2] = False                                          # query 2 may see no key at all
    naive = np.where(mask, scores, -np.inf)
    with np.errstate(invalid="ignore"):
        e = np.exp(naive - naive.max(-1, keepdims=True))
        print("NumPy with -inf, row 2:", (e / e.sum(-1, keepdims=True))[2])

    Qg = mt.tensor(Q, requires_grad=True)
    out_m, w_m = F.scaled_dot_product_attention(Qg, Kt, Vt, mask=mt.tensor(mask))
    out_m.sum().backward()
    print("library, weights row 2:", w_m.numpy()[2], "  output row 2:", out_m.numpy()[2])
    print("gradient of Q, row 2:  ", Qg.grad.numpy()[2], "  any NaN anywhere:", np.isnan(Qg.grad.numpy()).any())
    """),
    md(r"""
    ## Exercises

    1. Give query 0 of section 1 the same vector as key 2 times 10 (`Q[0] = 10 * K[2]`). Predict the map's
       first row before you draw it.
    2. Show that attention without masks is *permutation-equivariant*: permute the rows of $Q$ (and of
       $K$, $V$ together) and check how the output rows move. Why does this mean a Transformer needs
       positional encodings (notebook 04)?
    3. Repeat section 4 with $d_k = 4, 16, 256$. At which $d_k$ does the unscaled softmax become nearly
       one-hot?
    4. In the document's example, with three tokens of dimension 1 and the formula's divisor, which
       tokens attend most to themselves? Explain from the scores $x_i x_j$ why tokens 1 and 2 do not.
    5. Build the decoder mask of a batch where one *query* row is padding (the second sequence of
       section 6 with the combined mask). Which rows of its weights are all zero, if any, and why?
    """),
]


# ====================================================================================== 03
NB03 = [
    md(r"""
    # 03 · Multi-head attention

    **What this notebook teaches.** Multi-head attention runs $h$ scaled dot-product attentions side by
    side, each on its own learned projection of the input, and mixes their results. The source document
    (section 4.1.2) gives the first line; the paper (section 3.2.2) gives the second, which says what a
    head *is*:

    $$
    \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^O,
    \qquad
    \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q,\; K W_i^K,\; V W_i^V)
    $$

    with $W_i^Q, W_i^K \in \mathbb{R}^{d_\text{model} \times d_k}$, $W_i^V \in \mathbb{R}^{d_\text{model}
    \times d_v}$, $W^O \in \mathbb{R}^{h d_v \times d_\text{model}}$ and $d_k = d_v = d_\text{model}/h$
    (the paper: $h = 8$, $d_k = 512/8 = 64$). Shapes for one sequence of $L$ tokens:

    | step | shape |
    |---|---|
    | input $X$ (self-attention: $Q = K = V = X$) | $(L, d_\text{model})$ |
    | $X W_i^Q$, $X W_i^K$, $X W_i^V$ | $(L, d_k)$ each |
    | $\mathrm{head}_i$ | $(L, d_v)$ |
    | $\mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)$ | $(L, h\,d_v) = (L, d_\text{model})$ |
    | $\ldots W^O$ | $(L, d_\text{model})$ |

    Steps: **1** a module and its weights · **2** the formula literally: a loop over the heads · **3** Concat
    and $W^O$ · **4** the same by the library, looped and batched, agreeing · **5** the batched form, shape by
    shape · **6** one map per head · **7** the document's example 4.3.2, and why heads need their own
    projections · **8** what $h$ costs.

    **Exercise in the text** (assignment A3, `minitransformer assignments list`): splitting the features
    into heads and merging them back, in NumPy (section 3), followed by a cell that checks your answer.
    """),
    SETUP,
    md(r"""
    ## 1. A module and its weights

    `nn.MultiHeadAttention(d_model, heads)` holds four `Linear` layers, `W_Q`, `W_K`, `W_V`, `W_O`, each
    $(d_\text{model}, d_\text{model})$. The $h$ matrices $W_i^Q$ are not stored separately: they sit side by
    side as the column blocks of `W_Q.weight`, so $W_i^Q$ is `W_Q.weight[:, i*d_k:(i+1)*d_k]`. (These layers
    also have biases, as PyTorch's; the paper's equations have none. `bias=False` removes them.)
    """),
    code("""
    tokens = ["the", "cat", "saw", "the", "dog"]
    vocab = {"the": 0, "cat": 1, "saw": 2, "dog": 3}
    L, d_model, h = len(tokens), 8, 2
    d_k = d_model // h
    mha = nn.MultiHeadAttention(d_model, h, literal=True).to("float64")   # float64: comparisons to rounding error
    print(mha)

    E = np.random.default_rng(0).standard_normal((len(vocab), d_model))   # an embedding table (vocab, d_model)
    E[:, :d_k] = 3.0 * np.eye(len(vocab), d_k)                             # features 0..3 say which word it is
    X = mt.tensor(E[[vocab[t] for t in tokens]][None])                     # (batch=1, L, d_model)
    print("X", X.shape, X.dtype_name, "  d_k = d_model / h =", d_k)
    """),
    md(r"""
    ## 2. The formula, literally: one head at a time

    For head $i$: slice its blocks of the projections, project, attend.
    """),
    code("""
    heads, maps = [], []
    for i in range(h):
        block = slice(i * d_k, (i + 1) * d_k)                       # head i's columns
        W_Qi, W_Ki, W_Vi = (lin.weight[:, block] for lin in (mha.W_Q, mha.W_K, mha.W_V))
        b_Qi, b_Ki, b_Vi = (lin.bias[block] for lin in (mha.W_Q, mha.W_K, mha.W_V))
        Q_i = X @ W_Qi + b_Qi                                        # (1, L, d_k)
        K_i = X @ W_Ki + b_Ki                                        # (1, L, d_k)
        V_i = X @ W_Vi + b_Vi                                        # (1, L, d_k)
        head_i, weights_i = F.scaled_dot_product_attention(Q_i, K_i, V_i)
        print(f"head {i + 1}: W_{i + 1}^Q {W_Qi.shape}  Q_{i + 1} {Q_i.shape}  weights {weights_i.shape}"
              f"  head_{i + 1} {head_i.shape}")
        heads.append(head_i)
        maps.append(weights_i)
    """),
    md(r"""
    ## 3. Concat and $W^O$

    The heads' outputs are put side by side along the features, and $W^O$ mixes them: every output feature
    can draw on every head. (Row block $i$ of $W^O$ is what head $i$'s output is multiplied by.)
    """),
    code("""
    concat = mt.concat(heads, axis=-1)                              # (1, L, h * d_k)
    by_hand = concat @ mha.W_O.weight + mha.W_O.bias               # (1, L, d_model)
    print("Concat(head_1, head_2)", concat.shape, "  W^O", mha.W_O.weight.shape, "  output", by_hand.shape)
    """),
    md(r"""
    ### Exercise A3 · split into heads, merge back, in NumPy

    The loop above slices head $i$'s columns out of every weight matrix. The library's fast form projects
    once with the whole matrix, $XW^Q$ of shape $(B, L, d_\text{model})$ with $d_\text{model} = h\,d_k$, and
    then regroups the features so that every head becomes one slice of a batch axis:

    * `split_heads(x, h)`: $(B, L, h\,d_k) \to (B, h, L, d_k)$, with `[:, i]` = features $i d_k \ldots
      (i+1) d_k - 1$ of every token, head $i$'s block. Reshape to $(B, L, h, d_k)$, then move the head axis
      forward (`transpose(0, 2, 1, 3)`).
    * `merge_heads(x)`: the inverse, $(B, h, L, d_k) \to (B, L, h\,d_k)$; applied to the heads' outputs it
      is $\mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)$.
    """),
    exercise("a3-split-merge-heads", """
    def split_heads(x, h):
        \"\"\"(B, L, h * d_k) -> (B, h, L, d_k): x[:, :, i * d_k:(i + 1) * d_k] becomes [:, i].\"\"\"
        ### BEGIN SOLUTION A3: reshape to (B, L, h, d_k), then move the head axis forward: (B, h, L, d_k)
        B, L, d = x.shape
        return x.reshape(B, L, h, d // h).transpose(0, 2, 1, 3)
        ### END SOLUTION


    def merge_heads(x):
        \"\"\"(B, h, L, d_k) -> (B, L, h * d_k): the inverse of split_heads, the Concat of the heads.\"\"\"
        ### BEGIN SOLUTION A3: the inverse of split_heads: back to (B, L, h, d_k), then reshape to (B, L, h * d_k)
        B, h, L, d_k = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, L, h * d_k)
        ### END SOLUTION


    Q_all, K_all, V_all = (lin(X).numpy() for lin in (mha.W_Q, mha.W_K, mha.W_V))   # (1, L, d_model) each
    Q_h, K_h, V_h = (split_heads(a, h) for a in (Q_all, K_all, V_all))               # (1, h, L, d_k) each
    print("X W^Q", Q_all.shape, "-> split_heads", Q_h.shape, "-> merge_heads", merge_heads(Q_h).shape)
    """),
    md(r"""
    **Check.** Head $i$ must get feature block $i$, merging must undo splitting, and attention on all the
    heads at once (one library call on $(B, h, L, d_k)$ arrays), merged, must equal the loop's Concat:
    """),
    code("""
    for i in range(h):
        np.testing.assert_array_equal(Q_h[:, i], Q_all[:, :, i * d_k:(i + 1) * d_k])   # head i = block i
    np.testing.assert_array_equal(merge_heads(Q_h), Q_all)                               # merge undoes split
    heads_all, _ = F.scaled_dot_product_attention(*(mt.tensor(a) for a in (Q_h, K_h, V_h)))   # every head at once
    np.testing.assert_allclose(merge_heads(heads_all.numpy()), concat.numpy(), rtol=1e-10, atol=1e-12)
    print("split_heads and merge_heads: head i = block i, merge undoes split, merged heads = the loop's Concat")
    """),
    md(r"""
    ## 4. The library's two forms agree with the hand computation

    `MultiHeadAttention` has a switch: `literal=True` loops over the heads as above (the formula as written);
    `literal=False`, the default, computes all heads in one batched product (section 5), faster. Same weights,
    same numbers, and the same gradients:
    """),
    code("""
    out_literal, w_literal = mha(X)                 # literal=True: the loop
    mha.literal = False
    out_batched, w_batched = mha(X)                 # the batched form
    print("output", out_batched.shape, "  weights", w_batched.shape, "(batch, heads, L, S)")
    print(f"max |literal - by hand|  {np.abs(out_literal.numpy() - by_hand.numpy()).max():.1e}")
    print(f"max |batched - literal|  {np.abs(out_batched.numpy() - out_literal.numpy()).max():.1e}"
          f"   (weights {np.abs(w_batched.numpy() - w_literal.numpy()).max():.1e})")

    grads = {}
    for literal in (True, False):
        mha.literal = literal
        mha.zero_grad()
        (mha(X)[0] ** 2).sum().backward()
        grads[literal] = {name: p.grad.numpy() for name, p in mha.named_parameters()}
    worst = max(np.abs(grads[True][n] - grads[False][n]).max() for n in grads[True])
    print(f"max |gradient difference| over all {len(grads[True])} parameters: {worst:.1e}")
    """),
    md(r"""
    ## 5. The batched form, shape by shape

    Project once with the whole matrix, then *reshape* the $d_\text{model}$ features into $h$ groups of
    $d_k$ and move the head axis forward: all heads become one batched matrix product. Column block $i$ of
    `W_Q.weight` produces features $i d_k \ldots (i+1) d_k - 1$, which is exactly group $i$ after the reshape.
    This is `MultiHeadAttention._batched`, line by line:
    """),
    code("""
    B = X.shape[0]
    Q = mha.W_Q(X)                                           # (B, L, d_model)
    print("W_Q(X)                    ", Q.shape)
    Q = Q.reshape(B, L, h, d_k)                              # (B, L, h, d_k): split the features into heads
    print("reshape(B, L, h, d_k)     ", Q.shape)
    Q = Q.permute(0, 2, 1, 3)                                # (B, h, L, d_k): heads become a batch axis
    print("permute(0, 2, 1, 3)       ", Q.shape)
    K = mha.W_K(X).reshape(B, L, h, d_k).permute(0, 2, 1, 3)
    V = mha.W_V(X).reshape(B, L, h, d_k).permute(0, 2, 1, 3)
    heads_b, weights_b = F.scaled_dot_product_attention(Q, K, V)   # one call, every head
    print("attention: heads          ", heads_b.shape, "  weights", weights_b.shape)
    concat_b = heads_b.permute(0, 2, 1, 3).reshape(B, L, h * d_k)  # back to (B, L, d_model): the Concat
    print("permute + reshape = Concat", concat_b.shape)
    print(f"same as the loop's Concat:  max |difference| {np.abs(concat_b.numpy() - concat.numpy()).max():.1e}")
    """),
    md(r"""
    ## 6. One map per head

    `weights[0, i]` is head $i$'s attention map for the first sequence. With random weights the heads
    look at nothing in particular; training is what shapes them (notebook 05). To see that a head's
    projections decide *what it looks at*, set head 1's query and key blocks by hand to read features
    0..3 of the embedding as they are ($W_1^Q = W_1^K$ = the first $d_k$ columns of the identity, no bias).
    Those features say which word a token is, so head 1 becomes a "same word" detector: each token
    attends to every copy of its own word. Head 2 stays random.
    """),
    code("""
    state = mha.state_dict()                                  # NumPy copies of every parameter
    for name in ("W_Q", "W_K"):
        state[f"{name}.weight"][:, :d_k] = np.eye(d_model)[:, :d_k]   # head 1's block: features 0..3 as they are
        state[f"{name}.bias"][:d_k] = 0.0
    mha.load_state_dict(state)
    _, weights = mha(X)
    print("weights", weights.shape, "-> head maps", weights[0].shape)
    viz.attention_heads(weights[0], tokens, tokens, title="head 1 set by hand (same word), head 2 random")
    """),
    md(r"""
    Head 1 cannot tell the two "the" apart: they have the same embedding, and nothing in $X$ says where a
    token stands. That is what positional encodings add (notebook 04).

    ## 7. The document's example (section 4.3.2), and why each head needs its own projections

    The document computes two heads as

    $$ \text{Attention Scores}^1 = \mathrm{softmax}\!\left(\tfrac{QK^\top}{\sqrt 3}\right)V, \qquad
       \text{Attention Scores}^2 = \mathrm{softmax}\!\left(\tfrac{QK^\top}{\sqrt 3}\right)V $$

    the **same** expression of the same $Q, K, V$ twice: without $W_i^Q, W_i^K, W_i^V$, two heads given the
    same input are identical, so the concatenation holds two copies of one head. (The document also gives
    each head its own positional encoding, with a "+1" in the angle. That makes its two heads differ, but
    gives head 2 nothing head 1 lacks: notebook 04, section 6.) `worked_examples.multi_head_example()` does
    it the paper's way, with one positional encoding shared by both heads, $d_\text{model} = 6$, two heads
    of $d_k = 3$ and seeded random projections, beside the document's formulas on the same $X$:
    """),
    code("""
    from minitransformer import worked_examples

    ex = worked_examples.multi_head_example(seed=0)
    print("X = embeddings + PE", ex.X.shape, "  W_Q", ex.W_Q.shape, "  weights", ex.weights.shape,
          "  heads", ex.heads.shape, "  output", ex.output.shape)
    print(f"with projections W_i (the paper):   max |head_1 - head_2| = {ex.heads_difference:.3f}")
    print(f"without (the document's formulas):  max |head_1 - head_2| = {ex.unprojected_heads_difference:.1e}"
          "  (one shared X)")
    print("scores of head 1, query 1 (any real numbers):", ex.scores.numpy()[0, 0].round(3))
    print("weights of head 1, query 1 (sum to 1):      ", ex.weights.numpy()[0, 0].round(3))
    print("head_1 output of query 1 (d_v numbers):     ", ex.heads.numpy()[0, 0].round(3))
    viz.attention_heads(ex.weights, ["1", "2", "3"], ["1", "2", "3"], title="document 4.3.2, done as the paper does")
    """),
    md(r"""
    The last three lines are three different things that the document's wording mixes up as "attention
    scores" (erratum 6 in `docs/errata.md`): the scores $QK^\top/\sqrt{d_k}$, their softmax (the weights,
    what a map shows), and the weighted values (the head's output).

    ## 8. What $h$ costs

    Splitting $d_\text{model}$ into $h$ heads changes how the features are grouped, not how many weights
    there are: $4\,d_\text{model}^2$ (plus $4\,d_\text{model}$ biases) for any $h$ dividing $d_\text{model}$.
    The compute is the same too; what changes is that $h$ maps are computed instead of one.
    """),
    code("""
    for heads in (1, 2, 4, 8):
        m = nn.MultiHeadAttention(512, heads)
        print(f"h = {heads}:  d_k = {512 // heads:3}   parameters {sum(p.size for p in m.parameters()):,}")
    print("4 d_model^2 + 4 d_model =", f"{4 * 512**2 + 4 * 512:,}")
    try:
        nn.MultiHeadAttention(10, 3)
    except ValueError as err:
        print("ValueError:", err)
    """),
    md(r"""
    ## Exercises

    1. In section 2, use `bias=False` and check that the output equals
       $\mathrm{Concat}(\mathrm{head}_1, \mathrm{head}_2) W^O$ with no bias terms at all.
    2. Show that $\mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h) W^O = \sum_i \mathrm{head}_i\, W^O_i$,
       where $W^O_i$ is row block $i$ of $W^O$. Compute it both ways.
    3. Time `literal=True` against `literal=False` for $d_\text{model} = 256$, $h = 8$, $L = 128$, batch 16
       (use `time.perf_counter`). Where does the loop lose time?
    4. Set head 2's blocks by hand too, so that each token attends to the token *before* it. (Hint: with
       positional information in $X$ this is possible; with the random $X$ here, what would you need?)
    5. Cross-attention: call `mha(query, key, value)` with a query of 3 positions and keys/values of 6.
       What shape do the weights have, and which axis sums to 1?
    """),
]


# ====================================================================================== 04
NB04 = [
    md(r"""
    # 04 · Positional encoding

    **What this notebook teaches.** Attention compares every token with every other by dot products,
    and a dot product does not care where a token stands: without extra information a Transformer sees
    a *bag* of tokens. The paper (section 3.5) and the source document (section 4.1.3) add to each token's
    embedding a vector that depends only on its position $pos$:

    $$
    PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad
    PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)
    $$

    for $i = 0, 1, \ldots, d/2 - 1$ ($d = d_\text{model}$). Each pair of columns $(2i, 2i+1)$ is a sine and a
    cosine of one frequency $\omega_i = 10000^{-2i/d}$; the wavelengths grow geometrically from $2\pi$ to
    $10000 \cdot 2\pi$.

    Steps: **1** the formula with NumPy and by the library · **2** why positions are needed ·
    **3** the document's listed values (4.3.1) against the formula · **4** pictures: the table and its waves ·
    **5** why sin and cos: $PE_{pos+k}$ is a *rotation* of $PE_{pos}$, the same for every $pos$ ·
    **6** the document's per-head "+1" (4.3.2) · **7** fixed or learned (4.2.3's claim).

    **Exercise in the text** (assignment A3, `minitransformer assignments list`): the table $PE$ in NumPy
    (section 1), followed by a cell that checks your answer.
    """),
    SETUP,
    md(r"""
    ## 1. The formula, with NumPy and by the library

    Positions count from 0 (as in the paper's code and PyTorch). The column index $j$ is $2i$ for a sine
    and $2i+1$ for a cosine, so both columns of a pair share the divisor $10000^{2i/d}$.

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
    **Check** on values worked out by hand (at $pos = 0$ every sine is 0 and every cosine 1; at $pos = 1$
    the pair $i = 1$ has divisor $10000^{2/16} = \sqrt{10}$), then against the library's table:
    """),
    code("""
    np.testing.assert_allclose(PE_np[0], np.tile([0.0, 1.0], d // 2), atol=1e-15)
    np.testing.assert_allclose(PE_np[1, :4], [np.sin(1), np.cos(1), np.sin(10**-0.5), np.cos(10**-0.5)], rtol=1e-12)

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
    **The plausible reading.** The document's values are reproduced exactly by dividing by $10000$ in
    every dimension, i.e. the exponent $2i/d$ replaced by 1, a frequency no column of a 3-wide table has;
    it is approached only by the slowest pair of a wide table (columns 510 and 511 of $d = 512$). Its indices
    1 and 2 carry the formula's cos and sin when read 0-based, so component 0 is missing: 2 numbers per
    position cannot be added to 3-dimensional embeddings. With the document's divisor the encodings hardly
    change from one position to the next, which makes them nearly useless for telling positions apart.
    (Details: `docs/errata.md`, errata 2 and 3.)

    ## 4. Pictures: the table and its waves

    Left columns change fast with the position, right columns slowly: stripes that widen to the right.
    """),
    code("""
    PE = F.sinusoidal_positional_encoding(64, 64)
    viz.positional_encoding_heatmap(PE)
    """),
    code("""
    viz.positional_encoding_curves(F.sinusoidal_positional_encoding(50, 64), dims=(0, 1, 8, 16, 32))
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
    (a Toeplitz matrix), largest on the main diagonal: nearby positions are the most alike.
    """),
    code("""
    S = PE @ PE.T                                                               # (60, 60)
    spread = max(np.ptp(np.diagonal(S, offset=o)) for o in range(-max_len + 1, max_len))
    print(f"largest spread of PE_p . PE_q along any diagonal p - q = const: {spread:.1e}")
    print("PE_p . PE_(p+k) for k = 0..5:", np.diagonal(S, offset=0)[0].round(3),
          *(np.diagonal(S, offset=o)[0].round(3) for o in range(1, 6)))
    viz.position_similarity(F.sinusoidal_positional_encoding(24, 16), normalize=True)
    """),
    md(r"""
    ## 6. The document's per-head "+1" (section 4.3.2)

    The document gives head 2 its own encoding, $\cos(pos/10000 + 1)$ and $\sin(pos/10000 + 1)$. Adding a
    constant to every angle turns every pair by 1 radian, at every position: $PE^2 = PE^1 M$, with $M$ the
    rotation by 1 rad. As in section 5, no dot product between two positions' encodings changes:
    $PE^2 PE^{2\top} = PE^1 M M^\top PE^{1\top} = PE^1 PE^{1\top}$.
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
    applied to the embeddings turned by $-1$ rad, its output turned back by $M$. Check it on the first two
    columns of the example's embeddings, with the document's formulas (no projections, divisor $\sqrt 3$):
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
    Taken one at a time, with learned embeddings, neither head can represent anything the other cannot:
    the "+1" only makes head 2 read the same embeddings at another angle to the position. The paper has no
    per-head encodings at all: one $PE$ is added to the embeddings, before any head, and
    `multi_head_example` does the same, which is why its two heads without projections (notebook 03) are
    identical.

    ## 7. Fixed or learned

    The document's section 4.2.3 says "positional encoding vectors are learned during the training
    process". The formula of its section 4.1.3 is **fixed**: nothing in it is trained. A *learned positional
    embedding* (BERT, GPT-2) is a different, also common choice: a trainable table with one free row per
    position. The paper tried both, found nearly the same results (its Table 3, row E), and kept the
    sinusoids because they may extrapolate to longer sequences. In this library both exist:
    """),
    code("""
    d_model, max_len = 512, 1024
    fixed = nn.SinusoidalPositionalEncoding(d_model, max_len)
    learned = nn.LearnedPositionalEmbedding(max_len, d_model)
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

    1. Recompute section 1 with positions counted from 1, as the document does. Which row of the library's
       table equals your first row?
    2. Find $R_k$ for a *negative* offset $k = -3$ and check $PE_{p-3} = PE_p R_{-3}$. How is $R_{-3}$
       related to $R_3$?
    3. Redo section 2 with a learned positional embedding (`nn.LearnedPositionalEmbedding`) freshly
       initialised. Does it break the permutation symmetry too? Why?
    4. Plot `viz.position_similarity` with `d_model = 4` and 100 positions. Why are far-apart positions
       sometimes *more* alike than near ones, and how does a larger $d_\text{model}$ help?
    5. The base 10000 sets the longest wavelength. Try base 100 on a 500-position table: what goes wrong
       in `position_similarity`?
    """),
]


# ====================================================================================== 07
NB07 = [
    md(r"""
    # 07 · The same code on a GPU

    **What this notebook teaches.** Every formula in this library takes its array functions from a
    *backend* (`x.backend.xp`: `xp.exp`, `xp.matmul`, ...), never from `numpy` by name. So the same lines
    run on NumPy (CPU) and on CuPy (an NVIDIA GPU): switching is one call, `mt.backend.use("cupy")`.
    What a GPU buys is throughput on large array operations. A Transformer step is dominated by matrix
    products; one product of an $(m \times k)$ by a $(k \times n)$ matrix costs

    $$ \text{FLOPs} = 2\,m\,k\,n, \qquad \text{throughput} = \frac{\text{FLOPs}}{\text{seconds}} , $$

    and a GPU reaches tens of TFLOP/s where two CPU cores reach tens of GFLOP/s. But every operation also
    pays a fixed launch cost of a few microseconds on a GPU, so tiny arrays gain nothing.

    **This notebook runs anywhere.** On a machine without a GPU (or without CuPy) switching fails with a
    `BackendError` that says why; the notebook prints that message, skips the GPU timing, and shows the rest
    with `array_api_strict`, a CPU stand-in for "another array library" that runs the very same code path.

    Steps: **1** which backends work here · **2** switching, and what happens without a GPU · **3** the same
    model on two backends gives the same numbers · **4** moving data: tensors, weights, checkpoints ·
    **5** timing NumPy against CuPy on a matmul-heavy step.
    """),
    SETUP,
    md(r"""
    ## 1. Which backends work here
    """),
    code("""
    print("available here:", mt.backend.available())
    print("current:", mt.backend.current())
    """),
    md(r"""
    ## 2. Switching: `mt.backend.use("cupy")`

    `mt.backend.use(name)` makes a backend current from now on (a plain module-level setting, so it holds
    from one notebook cell to the next); `with mt.backend.use(name):` only inside the block. New tensors and
    modules are made on the current backend. Without a GPU the call raises `BackendError` with the reason:
    """),
    code("""
    try:
        mt.backend.use("cupy")
        GPU = mt.backend.current()
        print("switched to", GPU, "- a GPU is here:", GPU.native.cuda.runtime.getDeviceProperties(0)["name"].decode())
    except mt.backend.BackendError as err:
        GPU = None
        print("No GPU backend on this machine, so the GPU timing below is skipped. The message says why:")
        print("   ", err)
    finally:
        mt.backend.use("numpy")                  # back to the CPU for what follows
    print("current:", mt.backend.current())
    """),
    md(r"""
    ## 3. The same model on two backends: the same numbers

    Build an encoder layer once, copy its weights (`state_dict()`, always NumPy arrays) into a twin on
    another backend, and run the same batch through both, forward and backward. The other backend is CuPy
    when there is a GPU, otherwise `array_api_strict`. Results agree to float32 rounding (a GPU adds in
    another order).
    """),
    code("""
    other = "cupy" if GPU is not None else "array_api_strict"
    d_model, heads, d_ff, B, L = 64, 4, 128, 8, 32
    layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)
    x_host = np.random.default_rng(0).standard_normal((B, L, d_model)).astype(np.float32)

    def run(backend):
        \"\"\"Loss and every parameter's gradient for the same weights and batch on `backend`, as NumPy.\"\"\"
        with mt.backend.use(backend):
            twin = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)   # made on `backend`
            twin.load_state_dict(layer.state_dict())                   # the same weights
            x = mt.tensor(x_host)                                      # (B, L, d_model) on `backend`
            loss = (twin(x) ** 2).mean()
            loss.backward()
            print(f"{backend:17} x on {x.backend.name:17} loss {loss.item():.6f}")
            return loss.item(), {n: p.grad.numpy() for n, p in twin.named_parameters()}   # on the host

    loss_a, grads_a = run("numpy")
    loss_b, grads_b = run(other)
    scale = max(np.abs(g).max() for g in grads_a.values())                 # the largest gradient of the model
    worst = max(np.abs(grads_a[n] - grads_b[n]).max() for n in grads_a)
    print(f"relative difference: loss {abs(loss_a - loss_b) / abs(loss_a):.1e}; "
          f"gradients (all {len(grads_a)} parameters) {worst / scale:.1e} of the largest gradient")
    """),
    md(r"""
    ## 4. Moving data between backends

    Backends never mix silently: an operation on tensors of two backends is a `BackendError` that says how
    to fix it. `t.to("cupy")` / `t.to("numpy")` moves a tensor, `model.to("cupy")` a whole model,
    `t.numpy()` always gives a NumPy copy on the host, and `state_dict()` always holds NumPy arrays, so a
    checkpoint written on a GPU loads on a laptop. (Shown with `array_api_strict` when there is no GPU.)
    """),
    code("""
    a = mt.tensor([1.0, 2.0, 3.0])                          # NumPy
    b = a.to(other)                                         # the same numbers on the other backend
    print("a on", a.backend.name, "  b on", b.backend.name, "  b.numpy():", b.numpy(), type(b.numpy()).__name__)
    try:
        a + b
    except mt.backend.BackendError as err:
        print("BackendError:", err)
    print("a + b.to('numpy') =", (a + b.to("numpy")).numpy())

    moved = nn.Linear(4, 2).to(other)
    print("Linear moved to", moved.weight.backend.name, "; its state_dict holds",
          {k: type(v).__name__ for k, v in moved.state_dict().items()})
    """),
    md(r"""
    ## 5. Timing: NumPy against CuPy on a matmul-heavy step

    One training step's arithmetic, forward and backward, of a Transformer encoder layer: a **tiny** one
    (the notebooks' sizes), a **large** one and, where there is a GPU, a **big** one (the paper's base
    width, $d_\text{model} = 512$, $d_{ff} = 2048$, 32 sequences of 256 tokens). Two rules of timing a GPU:
    run once before timing (the first call compiles kernels), and wait for the GPU to finish before reading
    the clock (work is queued asynchronously; `synchronize()`).
    """),
    code("""
    import time


    def sync(backend):
        if backend.name == "cupy":
            backend.native.cuda.Device().synchronize()   # wait for the queued GPU work

    def time_step(backend_name, d_model, heads, d_ff, B, L, repeats):
        \"\"\"Median seconds of one forward + backward of an encoder layer on (B, L, d_model).\"\"\"
        with mt.backend.use(backend_name) as be:
            layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0)
            x = mt.randn(B, L, d_model)

            def step():
                layer.zero_grad()
                (layer(x) ** 2).mean().backward()

            step()                                     # warm-up: kernels compiled, memory allocated
            sync(be)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                sync(be)
                times.append(time.perf_counter() - start)
            return float(np.median(times))

    def step_flops(d_model, d_ff, B, L):
        \"\"\"2mkn per product: 4 projections, 2 FFN layers, QK^T and weights V; backward about twice the forward.\"\"\"
        forward = 2 * B * L * (4 * d_model * d_model + 2 * d_model * d_ff) + 2 * 2 * B * L * L * d_model
        return 3 * forward

    sizes = {"tiny": dict(d_model=32, heads=4, d_ff=64, B=4, L=16),
             "large": dict(d_model=256, heads=8, d_ff=1024, B=8, L=64)}
    if GPU is not None:
        sizes["big"] = dict(d_model=512, heads=8, d_ff=2048, B=32, L=256)   # too slow for a laptop's CPU
    results = {}
    for size, cfg in sizes.items():
        flops = step_flops(cfg["d_model"], cfg["d_ff"], cfg["B"], cfg["L"])
        for backend_name in ["numpy"] + (["cupy"] if GPU is not None else []):
            seconds = time_step(backend_name, **cfg, repeats=10 if size == "tiny" else 3)
            results[size, backend_name] = seconds
            print(f"{size:5} {backend_name:6} {seconds * 1e3:9.2f} ms per step   {flops / seconds / 1e9:8.1f} GFLOP/s")
    if GPU is None:
        print("\\nCuPy timing skipped: no GPU backend here (see section 2).")
    else:
        for size in sizes:
            print(f"{size}: CuPy is {results[size, 'numpy'] / results[size, 'cupy']:.1f}x NumPy's speed")
    """),
    md(r"""
    What to expect on a GPU: the tiny step is *slower* there (its many small operations each pay the GPU's
    launch cost, with too little arithmetic to hide it), the large step a few times faster, and the
    big one nearly a hundred times. Measured once with this notebook on one NVIDIA H200 (CuPy 14, a 16-core
    host), to compare with your own run:

    | size | NumPy (16 cores) | CuPy (H200) | CuPy's speed-up |
    |---|---|---|---|
    | tiny | 1.1 ms | 4.0 ms | 0.3x |
    | large | 18 ms (140 GFLOP/s) | 4.8 ms (525 GFLOP/s) | 3.7x |
    | big | 698 ms (240 GFLOP/s) | 7.8 ms (21.6 TFLOP/s) | 90x |

    The lesson for training: give the GPU big batches and long sequences. The library's
    `tools/gpu_check.sh` runs the whole test suite on CuPy, checks that NumPy and CuPy give the same
    gradients, trains a model and benchmarks the engine against PyTorch.

    To get a GPU backend: `pip install "minitransformer[cuda12]"` (or `[cuda13]`, matching the driver's CUDA
    version), then `mt.backend.use("cupy")` or `MINITRANSFORMER_BACKEND=cupy python train.py`.

    ## Exercises

    1. Time a single `(n, n) @ (n, n)` matrix product on NumPy for $n = 256, 512, 1024, 2048$ and compute the
       GFLOP/s ($2n^3$ FLOPs). Where does your CPU level off?
    2. In section 5, find the smallest batch size at which CuPy beats NumPy for the large layer (on a
       machine with a GPU), or estimate it from the launch cost: about 10 µs for each of the step's operations.
    3. Remove `sync(be)` from `time_step` and time CuPy again. Why does it look faster, and why is that
       number wrong?
    4. Train on the GPU, save with `save_checkpoint`, and load the checkpoint with the NumPy backend. Which
       line of the library guarantees that this works? (Hint: `Module.state_dict`.)
    5. Run section 3 with `float64` weights and inputs (`layer.to("float64")`): how much smaller is the
       difference between the backends, and why?
    """),
]


# ====================================================================================== 05
NB05 = [
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

    summed over the batch's sequences $n$ and their $T_n$ real (non-padding) target tokens, averaged over all
    $\sum_n T_n$ of those tokens, and minimised with Adam (paper 5.3). The
    **training loop is the lesson** here: forward, loss, `backward()`, clip, `step()`, schedule, written
    out in full. (The library's `train.Trainer` wraps the same lines with logging, evaluation and
    checkpoints; notebook 06 uses it.)

    To reverse, output position $t$ must copy source position $S - 1 - t$: the decoder's
    **cross-attention** has to learn to look there. Its map should become an anti-diagonal.

    Steps: **1** the data and one batch · **2** the pieces by hand: layer norm, the feed-forward network,
    the warm-up schedule, Adam · **3** the model · **4** attention maps before training · **5** the training
    loop · **6** the curves · **7** attention maps after training · **8** greedy decoding · **9** accuracy on
    held-out sequences · **10** a checkpoint (in a temporary folder).

    **Exercises in the text** (assignments A4 and A5, `minitransformer assignments list`): the four pieces of
    section 2, in NumPy, each followed by a cell that checks your answer against the library.
    """),
    SETUP,
    md(r"""
    **One BLAS thread.** A small Transformer multiplies many small matrices; NumPy's BLAS splits each
    product over all cores, and for matrices this small the threads spend more time waiting for each other
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
    thetas = [theta]
    for step_t, g in enumerate(grads, start=1):
        ### BEGIN SOLUTION A5: new m, v; bias-corrected m_hat, v_hat; theta -= alpha m_hat / (sqrt(v_hat) + eps)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        m_hat, v_hat = m / (1 - beta_1**step_t), v / (1 - beta_2**step_t)
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + epsilon)
        ### END SOLUTION
        thetas.append(theta)
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
    feed-forward) and a linear layer to the vocabulary. A tiny one: $d_\text{model} = 32$, 2 heads, two
    layers each, pre-LN (`norm_first=True`, which trains more easily without the paper's long warm-up; the
    paper's post-LN is `norm_first=False`).
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
    ## 4. Attention before training

    One held-out example, teacher-forced. Row $t$ of a cross-attention map is the decoder position that
    reads `tgt_in[t]` and predicts the next output token; column $j$ is source position $j$. One row of
    maps per decoder layer, one column per head. Untrained, the heads spread their weight without a
    pattern.
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
    gradient norm, take an Adam step, move the learning-rate schedule. The rate warms up linearly over the
    first 10% of the steps and then decays to 0 along a cosine (`train.tasks.warmup_schedule`; with
    `kind="noam"` it is the paper's equation 3). The held-out loss is measured every 50 steps. About 15 s on
    two CPU cores.
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
    """),
    code("""
    viz.training_curves(history, log_y=("loss",))
    """),
    md(r"""
    ## 7. Attention after training

    The same example. Row $t$ now looks at source position $S - 1 - t$, the digit it must write next: the
    anti-diagonal, sharpest in the last layer. (The last row reads the last digit and predicts `<eos>`;
    where it looks matters little.)
    """),
    code("""
    viz.attention_layers(cross_attention(model, example), tgt_labels, src_labels,
                         title="cross-attention after training")
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
        tok_acc = token_accuracy(model(v.src, v.tgt_in, v.src_mask, v.tgt_mask), v.tgt_out).item()
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
    ## Exercises

    1. Train on `"copy"` instead of `"reverse"`. What shape does the cross-attention map take, and why?
       Then try `"sort"`: what can a map of a sorting model show, and what can it not?
    2. Length generalisation: decode held-out sources of length 9 and 10 (`digit_task_splits(...,
       min_len=9, max_len=10)`, and a model built with a larger `max_len`). Where do the errors start?
    3. Replace the schedule with a constant rate (`kind="constant"`) and then with the paper's
       (`kind="noam"`). Compare the curves after 600 steps.
    4. Remove `clip_grad_norm_` and raise the rate to `2e-2`. What happens to the loss?
    5. Set `norm_first=False` (the paper's post-LN) with the same settings. Does it still learn in 600
       steps? Look at the curves.
    """),
]


# ====================================================================================== 06
NB06 = [
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

    where $R$ are the real (non-padding) positions: one vector per text (mean pooling), one logit $z$, and
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

    1. `from tensorflow.keras.layers import TransformerBlock` fails: Keras has no such layer (the keras.io
       example *defines* one, with an `embed_dim` argument the document does not pass).
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
    md(r"""
    ## 2. The document's configuration, built right

    `TransformerClassifier.from_config("document")` is what section 5.2 meant: `Embedding(10000, 512)`, the
    sinusoidal encoding, one encoder block with 8 heads and $d_{ff} = 2048$, sequences of 100, mean pooling
    over the real tokens, `Dense(1)` giving one logit per text. Its parameters:
    """),
    code("""
    from collections import Counter

    document = nn.TransformerClassifier.from_config("document")
    parts = Counter()
    for name, p in document.named_parameters():
        parts[name.split(".")[0]] += p.size
    print(f"{document.num_parameters():,} parameters:", {k: f"{v:,}" for k, v in parts.items()})
    with mt.no_grad():
        print("logits for a batch of 2 texts of 100 token ids:", document(mt.randint(4, 10000, (2, 100))).shape)
    """),
    md(r"""
    Five million of those are the embedding table. Training it on random inputs, as section 5.4 does,
    teaches nothing; it also does not fit in a notebook on a CPU. (`minitransformer train --task classify
    --seed-config document` trains exactly this configuration on the task below, for those with time.) The
    rest of this notebook trains a small configuration on a task that has something to learn.

    ## 3. A task worth learning: negation

    Short synthetic reviews, each with exactly one sentiment word and exactly one "not". When "not" stands
    right before the sentiment word it flips it (25% of reviews); anywhere else it negates nothing:

    $$ \text{label} = [\text{sentiment word is positive}] \;\oplus\; [\text{the word before it is "not"}] $$

    Every review has the same *bag* of words whether or not it is negated, so a bag-of-words classifier can
    at best read the sentiment word and ignore the negation: right on the 75% of reviews that are not
    negated, wrong on the rest. **75% is the bag-of-words ceiling**; above it, a model must use word order.
    """),
    code("""
    from minitransformer.data import NEGATION_WORDS, DataLoader, make_classification_batch, negation_task

    train, held_out, tok = negation_task(n_train=4000, n_val=1000, seed=0, min_words=4, max_words=10)
    val, test = held_out[:500], held_out[500:]
    print(f"{len(train)} training, {len(val)} validation, {len(test)} test reviews; vocabulary {tok.vocab_size}")
    for ids, label in train[:5]:
        print(f"  {label}  {tok.decode(ids)}")

    positive, sentiment = set(NEGATION_WORDS["positive"]), set(NEGATION_WORDS["positive"] + NEGATION_WORDS["negative"])

    def negated(ids):
        words = tok.decode(ids).split()
        return any(a == "not" and b in sentiment for a, b in zip(words, words[1:]))

    def bag_of_words_rule(ids):
        \"\"\"The best a bag of words can do: the sentiment word's own polarity.\"\"\"
        return int(any(w in positive for w in tok.decode(ids).split()))

    same_bag = sorted("the plot was not good".split()) == sorted("not the plot was good".split())
    print("'the plot was not good' (0) and 'not the plot was good' (1) have the same bag of words:", same_bag)
    """),
    md(r"""
    ## 4. Training with the library's `Trainer`

    A small configuration: $d_\text{model} = 32$, 4 heads, one encoder layer, pre-LN, no dropout. The pieces
    come from the library: the loss and the metrics of `train.tasks` (binary cross-entropy of the logits;
    accuracy), the paper's Adam, a warm-up-then-cosine schedule, and `train.Trainer`, which runs the loop
    (the loop of notebook 05) with gradient clipping, a progress bar and an evaluation every 100 steps.
    One BLAS thread, as in notebook 05: small matrices are faster without threads. About 10 s.
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
    the sentiment words), stays there a while, and then breaks through once attention has learned to relate
    "not" to the word after it.

    ## 5. Accuracy against the bag-of-words ceiling

    On the 500 test reviews, never used during training, split by whether the sentiment word is negated:
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
    """),
    md(r"""
    ## 6. What attention looks at

    The maps of the trained encoder layer for two test reviews with a positive word: one where "not" flips
    it (label 0), one where "not" stands elsewhere (label 1). Bright **columns** mean every position reads
    the same key: in this run some heads gather "not" into every position and others the sentiment word
    (another seed may give the roles to other heads). The gathered vectors carry their positions, since
    $PE$ was added to each token, so the feed-forward layer after attention can check whether "not"
    stands right before the sentiment word, and mean pooling hands the answer to the output layer.
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
       that returns its input). Train again: where does the validation accuracy stop, and why exactly there?
    2. Train with `pooling="cls"` and `pooling="max"`. Which learns fastest? Look at the `[cls]` row of the
       maps.
    3. Set `negation_rate=0.5` in `negation_task`. What is the bag-of-words ceiling now, and how does
       training change?
    4. "not really a bad film" has a word between "not" and "bad". What does the task's rule say, what does
       the model say, and what would you want it to say?
    5. Build the document's configuration (`from_config("document")`) with `vocab_size=tok.vocab_size` and
       train it on this task for 100 steps. How long does one step take compared to the small model, and
       why?
    """),
]


# ====================================================================================== 08
NB08 = [
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
    (section 6), in NumPy, each checked against the library.
    """),
    SETUP,
    md(r"""
    One BLAS thread, as in notebook 05: for matrices this small, threads cost more than they save.
    """),
    code("""
    import time
    import warnings

    from tqdm import TqdmWarning

    from minitransformer.train import set_blas_threads

    warnings.filterwarnings("ignore", category=TqdmWarning)   # no ipywidgets here: tqdm falls back to a text bar
    print("one BLAS thread:", set_blas_threads(1))
    """),
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
    **Check** against the library's `greedy_decode`, and the two accuracies on the test set: the teacher-forced
    accuracy per token and the exact-sequence accuracy of greedy decoding (every token right, then `<eos>`),
    as `setup.final_metrics` measures them:
    """),
    code("""
    from minitransformer.train import greedy_decode

    generated = greedy_decode(model, tb.src, tb.src_mask).numpy()        # (500, T'): given its OWN prefix
    assert mine.shape == generated.shape and (mine == generated).all()
    final = setup.final_metrics(model)
    print("greedy_decode gives the same tokens")
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
    wrong.
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

    print(f"per token, all positions:       teacher-forced {tf_right.sum() / real.sum():.1%}, "
          f"generated {gen_right.sum() / real.sum():.1%}")
    print(f"per token, after a first mistake ({after.sum()} positions in {(first_error < width).sum()} sequences): "
          f"teacher-forced {tf_right[after].sum() / after.sum():.1%}, "
          f"generated {gen_right[after].sum() / after.sum():.1%}")
    """),
    md(r"""
    After a first mistake, teacher forcing, fed the right prefix, still gets 97.4% of the remaining tokens
    right; generation, reading its own mistake, 59.8%. Training never showed the model a wrong prefix, so
    it has not learned to recover from one (a skipped, repeated or swapped digit moves the digits after it).
    The loss and the token accuracy measured in training are teacher-forced: they measure the first kind
    of prediction, and only decoding measures the second.

    ## 3. The causal mask, seen from the decoder

    In training, all positions are computed at once, and `tgt_in` holds the whole target: position $t$
    reads $y_t$ (with $y_0$ = `<bos>`) and predicts $y_{t+1}$, which sits at position $t + 1$ of the same
    input. Were position $t$ allowed to attend to position $t+1$, it could copy the answer. The decoder's
    self-attention therefore uses the causal mask $M_{ij} = [\, j \le i \,]$ (paper 3.2.3,
    [masks](../docs/formulas/masks.md)); the library's `DecoderLayer` builds it itself, always, so it cannot
    be forgotten. The self-attention maps of the example above, teacher-forced, one row per layer and one
    column per head:
    """),
    code("""
    one = make_seq2seq_batch([test[i]])
    with mt.no_grad():
        model(one.src, one.tgt_in, one.src_mask, one.tgt_mask)
    maps = [w[0] for w in model.decoder.self_attn_weights]    # per layer: (heads, T, T)
    labels = [tok.itos[v] for v in one.tgt_in.numpy()[0]]
    print("self-attention weights", maps[0].shape, "per layer;  largest weight above the diagonal:",
          max(float(np.triu(w.numpy(), k=1).max()) for w in maps))
    viz.attention_layers(maps, labels, labels, title="decoder self-attention (teacher-forced): no looking ahead")
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
    every kept hypothesis $Y$ by every token $v$, scores the $k \times V$ extensions by
    $\log P(Y v \mid X) = \log P(Y \mid X) + \log p(v \mid Y, X)$ and keeps the $k$ best. A hypothesis that has
    produced `<eos>` stays in the beam as it is and competes with its score. With $k = 1$ this is greedy.

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
    The first of those sources, both outputs and their log-probabilities:
    """),
    code("""
    j = int(better[0])
    src_j, tgt_j = test[j]
    print(f"source {j}: {show(src_j)}    target: {show(tgt_j)}")
    for name, y, lp in (("greedy", generated[j], greedy_logp[j]), ("beam", beam[j], beam_logp.numpy()[j])):
        verdict = "right" if strip_after_eos(y) == tgt_j else "wrong"
        print(f"  {name:6} {show(y):18} log P = {lp:7.3f}   P = {np.exp(lp):.3f}   {verdict}")
    """),
    md(r"""
    ### Exercise A6 · one beam step

    **What the beam keeps**, written out for that source, hypothesis by hypothesis. A hypothesis is a pair
    (tokens `ys` from `<bos>`, $\log P$). Write one step: a hypothesis that has ended (its last token is
    `<eos>`) stays a candidate as it is; every other one is extended by every token $v$, scored
    $\log P + \log p(v \mid \text{ys}, x)$ (the log-softmax of the newest position's logits); the $k$ best
    candidates are the new hypotheses. Printed: the $k = 4$ kept after every step, as tokens with their
    $\log P$, and the winner, checked against `beam_search`.
    """),
    exercise("a6-beam-step", """
    from minitransformer.train import length_penalty


    def beam_by_hand(model, src, k, alpha, max_len, verbose=False):
        \"\"\"Beam search for one source, hypothesis by hypothesis: the final k (tokens, log P) and the winner.\"\"\"
        src_ids = mt.tensor([src])
        src_mask = F.padding_mask(src_ids, PAD)
        with mt.no_grad():
            memory = model.encode(src_ids, src_mask)                      # (1, S, d_model)
            hyps = [([BOS], 0.0)]                                         # one hypothesis to start: <bos>, log P = 0
            for step in range(1, max_len + 1):
                ### BEGIN SOLUTION A6: an ended hypothesis stays; others -> (ys + [v], s + log p(v)) for every v; k best
                candidates = []
                for ys, s in hyps:
                    if ys[-1] == EOS:                                     # ended: stays, with its score
                        candidates.append((ys, s))
                        continue
                    z = model.decode(mt.tensor([ys]), memory, src_mask).numpy()[0, -1]   # (V,)
                    logp = z - z.max() - np.log(np.exp(z - z.max()).sum())              # log-softmax
                    candidates += [(ys + [v], s + logp[v]) for v in range(len(logp))]    # every extension
                hyps = sorted(candidates, key=lambda c: -c[1])[:k]        # the k best by log P
                ### END SOLUTION
                if verbose:
                    print(f"step {step}:", " | ".join(f"{' '.join(tok.itos[v] for v in ys[1:])} {s:.2f}"
                                                      for ys, s in hyps))
                if all(ys[-1] == EOS for ys, _ in hyps):
                    break
        # the winner: best log P / lp(|Y|), |Y| counting <eos> (not <bos>)
        best = max(hyps, key=lambda h: h[1] / length_penalty(len(h[0]) - 1, alpha))
        return hyps, best


    final_beam, best = beam_by_hand(model, src_j, k=4, alpha=0.0, max_len=model.max_len, verbose=True)
    print("winner:", show(best[0][1:]), f"log P = {best[1]:.3f};  beam_search:", show(beam[j]),
          f"log P = {beam_logp.numpy()[j]:.3f}")
    """),
    md(r"""
    **Check** on the first 20 test sources, with $k = 2$ and $k = 4$: the same winner as `beam_search`, and the
    same $\log P$.
    """),
    code("""
    for k in (2, 4):
        tokens, scores = beam_search(model, tb.src[:20], beam_size=k, src_mask=tb.src_mask[:20], return_scores=True)
        for n, (s, _) in enumerate(test[:20]):
            _, (ys, logp) = beam_by_hand(model, s, k=k, alpha=0.0, max_len=model.max_len)
            assert strip_after_eos(ys[1:]) == strip_after_eos(tokens.numpy()[n])
            assert abs(logp - scores.numpy()[n]) < 1e-4
    print("beam_by_hand: beam_search's winners and scores, k = 2 and 4")
    """),
    md(r"""
    Greedy's path is the top line up to step 5. At step 4 greedy took `1` (log P $-0.70$) over `5`
    ($-1.44$); the beam kept both, and at step 6 the hypothesis through `5` ranks first. Greedy's own
    output ends last of the four, at $-2.571$ against $-1.928$.
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

    where $\lvert Y \rvert$ counts the tokens with `<eos>`. The library (`train.length_penalty`) applies it
    only to choose among the $k$ hypotheses left at the end; while searching, the beam is ranked by
    $\log P$. ($\alpha = 0$ makes $lp = 1$.) Compute $lp$ for $\lvert Y \rvert = 1, \ldots, 10$ at once; it is
    checked against the library's `length_penalty`:
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
    for ys, s in final_beam:
        n = len(ys) - 1
        print(f"  {' '.join(tok.itos[v] for v in ys[1:]):24} |Y| = {n}  log P = {s:7.3f}  "
              f"/ lp: alpha 0 {s:7.3f}, alpha 0.6 {s / length_penalty(n, 0.6):7.3f}")
    beam_06 = beam_search(model, tb.src, beam_size=4, src_mask=tb.src_mask, alpha=0.6).numpy()
    differ = sum(strip_after_eos(x) != strip_after_eos(y) for x, y in zip(beam, beam_06))
    print(f"test set: alpha 0.6 changes the winner for {differ} of {len(test)} sources; exact-sequence accuracy "
          f"{exact_match(beam_06, tb.tgt_out.numpy()):.1%}")
    """),
    md(r"""
    In the example's beam, $\alpha = 0.6$ swaps the second and third hypotheses: the one a digit short
    ($\lvert Y \rvert = 8$, $\log P = -2.326$) falls behind a complete one ($\lvert Y \rvert = 9$, $-2.357$). The
    winner stays, here and for all 500 test sources.
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
    [softmax](../docs/formulas/softmax.md) of $-\infty$). The distribution of the step where generation went
    wrong in section 2's example, at several temperatures:
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
    assert (top3 > 0).sum() == 3 and np.isclose(top3.sum(), 1) and top3.argmax() == z.argmax()
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
    lost (77.2% against 69.4%). In the example, most samples repeat greedy's mistake: at its step 6, the
    wrong 7 has $p = 0.673$ and the right 4 only $0.294$.
    """),
    md(r"""
    **The library's sampler** is `train.generate`, for a decoder-only language model (`nn.DecoderOnlyLM`,
    the decoder without cross-attention: GPT). It draws with the Gumbel-max trick,
    $v = \arg\max_v (z_v / \tau + g_v)$ with $g_v = -\log(-\log u_v)$, which samples exactly from
    $\mathrm{softmax}(z / \tau)$. A check: an untrained model (the sampler, not the model, is what is
    checked), 20000 rows of the same 3-token prompt, one new token each; the share of each token against
    $p_\tau$ computed here:
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
       (Answer: all of them, in practice: the second most likely token has $(0.294 / 0.673)^{20} \approx
       6 \cdot 10^{-8}$ times the probability of the first.)
    4. For $T = 100$ decoded tokens, how many self-attention score entries per head and layer are computed
       with and without the cache? (Answer: $5050$ and $338350$, $67$ times as many.)
    5. The causal mask lets position $t$ see itself ($j = t$) but not $t + 1$. What would a model trained
       with the mask shifted by one ($j \le t + 1$) learn, what would its training loss do, and why would it
       fail at generation? (Answer: position $t$ would read $y_{t+1}$, the token it predicts, and learn to
       copy it, so the training loss falls to about 0; in generation that position does not exist yet when
       $y_{t+1}$ is chosen, so there is nothing to copy.)
    """),
]


# ====================================================================================== 09
NB09 = [
    md(r"""
    # 09 · Residual connections and layer normalisation

    **What this notebook teaches.** What lets a deep stack of layers train. Every sub-layer of the
    Transformer (self-attention, cross-attention, the feed-forward network) sits inside a *residual
    connection*, which adds the sub-layer's input to its output, and a *layer normalisation*. The paper
    (section 3.1) normalises after the addition, *post-LN*; most models since normalise the sub-layer's
    input instead, *pre-LN*:

    $$
    \text{post-LN (the paper)}:\ x \leftarrow \mathrm{LayerNorm}(x + \mathrm{Sublayer}(x)), \qquad
    \text{pre-LN}:\ x \leftarrow x + \mathrm{Sublayer}(\mathrm{LayerNorm}(x)) .
    $$

    The library has both, as one named switch: `nn.EncoderLayer(..., norm_first=False)` is post-LN and
    `norm_first=True` is pre-LN (the same for `DecoderLayer`, `Encoder`, `Decoder` and the models). The
    addition sends the gradient back along two paths, through the sub-layer and around it:

    $$ y = x + f(x) \quad\Rightarrow\quad \bar x = \bar y + J_f^\top \bar y , $$

    where $\bar y = \partial \mathcal L / \partial y$ and $J_f$ is the Jacobian of $f$.

    Steps: **1** one post-LN encoder layer step by step, checked against `nn.EncoderLayer` · **2** the same
    weights wired pre-LN · **3** the residual's gradient · **4** a 12-layer stack at initialisation: the
    gradient that reaches each layer, post-LN, pre-LN and without residual connections · **5** the last
    layer's gradient as the stack gets deeper · **6** the scale of the residual stream through depth, with
    and without layer norm, and how alike the tokens become · **7** a short training run: post-LN against
    pre-LN, with and without warm-up · **8** what the source document says.

    The formulas, their derivatives and checks by hand: [layer normalisation](../docs/formulas/layer-norm.md),
    [the encoder and decoder layers](../docs/formulas/encoder-decoder.md) (its section "The derivative"
    derives the gradients of both wirings), [the feed-forward network](../docs/formulas/feed-forward.md),
    [the warm-up schedule](../docs/formulas/schedule.md).
    """),
    SETUP,
    md(r"""
    **One BLAS thread**, as in notebook 05: for matrices this small, one thread is faster than several.
    """),
    code("""
    from minitransformer.train import get_blas_threads, set_blas_threads

    print("BLAS threads:", get_blas_threads(), "-> 1:", set_blas_threads(1))
    """),
    md(r"""
    ## 1. One encoder layer, step by step (post-LN)

    The paper's encoder layer is two sub-layers, each followed by "Add & Norm":

    $$ x_1 = \mathrm{LayerNorm}_1(x + \mathrm{MultiHead}(x, x, x)), \qquad
       y = \mathrm{LayerNorm}_2(x_1 + \mathrm{FFN}(x_1)) . $$

    Small sizes: $d_\text{model} = 16$, 4 heads, $d_{ff} = 32$, a batch of 2 sequences of 5 tokens, float64
    and no dropout, so the NumPy lines below must give the library's numbers to rounding error. The norms'
    $\gamma$ and $\beta$ start as 1 and 0; they are set to random values here, so that a $\gamma$ or $\beta$
    applied in the wrong place would show. Multi-head attention comes from the library (notebook 03 builds
    it by hand); the additions, the layer norms and the FFN are written in NumPy.
    """),
    code("""
    d_model, heads, d_ff = 16, 4, 32
    mt.manual_seed(0)
    layer = nn.EncoderLayer(d_model, heads, d_ff, dropout=0.0, norm_first=False).to("float64")   # post-LN
    rng = np.random.default_rng(0)
    W = layer.state_dict()                                               # name -> NumPy array
    for name in ("norm1", "norm2"):
        W[f"{name}.gamma"] = 1 + 0.3 * rng.standard_normal(d_model)      # (d_model,)
        W[f"{name}.beta"] = 0.3 * rng.standard_normal(d_model)           # (d_model,)
    layer.load_state_dict(W)
    x = rng.standard_normal((2, 5, d_model))                             # (batch, L, d_model)
    print("x", x.shape, "  W_1", W["ffn.W_1.weight"].shape, "  W_2", W["ffn.W_2.weight"].shape,
          "  gamma, beta", W["norm1.gamma"].shape)
    """),
    code("""
    def layer_norm(z, gamma, beta, eps=1e-5):
        \"\"\"(..., d) -> (..., d): each token to mean 0 and variance 1, then scaled by gamma and shifted by beta.\"\"\"
        mu = z.mean(axis=-1, keepdims=True)                              # (..., 1)
        var = z.var(axis=-1, keepdims=True)                              # (..., 1), divided by d
        return gamma * (z - mu) / np.sqrt(var + eps) + beta


    def attention(z):
        \"\"\"MultiHead(z, z, z) by the library, as a NumPy array: (..., L, d_model) -> (..., L, d_model).\"\"\"
        Z = mt.tensor(z)
        return layer.self_attn(Z, Z, Z)[0].numpy()


    def ffn(z):
        \"\"\"max(0, z W_1 + b_1) W_2 + b_2 (the paper's equation 2); also the hidden units.\"\"\"
        hidden = np.maximum(0, z @ W["ffn.W_1.weight"] + W["ffn.W_1.bias"])    # (..., d_ff)
        return hidden @ W["ffn.W_2.weight"] + W["ffn.W_2.bias"], hidden        # (..., d_model)
    """),
    code("""
    a = attention(x)                                                     # sub-layer 1
    z1 = x + a                                                           # Add: the residual connection
    x1 = layer_norm(z1, W["norm1.gamma"], W["norm1.beta"])               # & Norm
    print("MultiHead(x, x, x)", a.shape, "-> x + MultiHead", z1.shape, "-> LayerNorm_1", x1.shape)

    f, hidden = ffn(x1)                                                  # sub-layer 2
    z2 = x1 + f                                                          # Add
    y_post = layer_norm(z2, W["norm2.gamma"], W["norm2.beta"])           # & Norm
    print("FFN(x_1)", f.shape, f"(hidden {hidden.shape})", "-> x_1 + FFN", z2.shape, "-> LayerNorm_2", y_post.shape)

    Y = layer(mt.tensor(x))
    print(f"nn.EncoderLayer(norm_first=False) {Y.shape}: max |library - NumPy| = "
          f"{np.abs(Y.numpy() - y_post).max():.1e}")
    """),
    md(r"""
    Whatever the layer did, its output is a layer norm's output: undo $\gamma$ and $\beta$ and every token
    has mean 0 and variance 1 (just under 1, because of $\epsilon$). A post-LN stack resets the scale of its
    activations after every sub-layer.
    """),
    code("""
    x_hat = (y_post - W["norm2.beta"]) / W["norm2.gamma"]                # (2, 5, 16)
    print(f"per token, over its 16 features: |mean| at most {np.abs(x_hat.mean(-1)).max():.0e};",
          "variance from", x_hat.var(-1).min().round(6), "to", x_hat.var(-1).max().round(6))
    """),
    md(r"""
    ## 2. The same weights, pre-LN

    Pre-LN normalises what goes **into** each sub-layer and adds the sub-layer's output to the un-normalised
    stream:

    $$ x_1 = x + \mathrm{MultiHead}(n_1, n_1, n_1),\ n_1 = \mathrm{LayerNorm}_1(x), \qquad
       y = x_1 + \mathrm{FFN}(\mathrm{LayerNorm}_2(x_1)) . $$

    `norm_first` is an attribute of the layer: switching it keeps every weight and changes only the wiring.
    """),
    code("""
    layer.norm_first = True                                              # the same weights, wired pre-LN
    n1 = layer_norm(x, W["norm1.gamma"], W["norm1.beta"])                # (2, 5, 16)
    x1 = x + attention(n1)                                               # x + MultiHead(n_1, n_1, n_1)
    n2 = layer_norm(x1, W["norm2.gamma"], W["norm2.beta"])
    y_pre = x1 + ffn(n2)[0]                                              # x_1 + FFN(LayerNorm_2(x_1))
    print("LayerNorm_1(x)", n1.shape, "-> x_1", x1.shape, "-> y", y_pre.shape)

    Y_pre = layer(mt.tensor(x))
    print(f"nn.EncoderLayer(norm_first=True) {Y_pre.shape}: max |library - NumPy| = "
          f"{np.abs(Y_pre.numpy() - y_pre).max():.1e}")
    layer.norm_first = False
    """),
    md(r"""
    The pre-LN output is $x$ plus two sub-layer outputs, normalised by nothing: each layer of a pre-LN
    stack adds to a sum that nothing rescales (section 6 follows it through 12 layers). This is why a
    pre-LN stack ends with one more LayerNorm, `nn.Encoder(..., norm_first=True).norm`, while a post-LN
    stack already ends in one.

    ## 3. What the residual connection does to the gradient

    $x$ is used twice in $y = x + f(x)$, by the addition and by $f$, so the autograd engine adds the two
    gradients that come back: $\bar x = \bar y + J_f^\top \bar y$. The first term is $\bar y$ itself,
    whatever $f$ is. Checked with $f$ = the layer's FFN and the loss $\mathcal L = \sum c \odot y$ for a
    random $c$, so that $\bar y = c$:
    """),
    code("""
    c = rng.standard_normal(x.shape)                                     # L = sum(c * y): y-bar = c
    X = mt.tensor(x, requires_grad=True)
    (mt.tensor(c) * (X + layer.ffn(X))).sum().backward()                 # y = x + f(x)
    X_f = mt.tensor(x, requires_grad=True)
    (mt.tensor(c) * layer.ffn(X_f)).sum().backward()                     # f alone: x-bar = J_f^T y-bar
    np.testing.assert_allclose(X.grad.numpy(), c + X_f.grad.numpy(), rtol=1e-12, atol=1e-12)
    print("x-bar = y-bar + J_f^T y-bar", X.grad.shape, "   norms: |y-bar|", np.linalg.norm(c).round(3),
          "  |J_f^T y-bar|", np.linalg.norm(X_f.grad.numpy()).round(3),
          "  |x-bar|", np.linalg.norm(X.grad.numpy()).round(3))
    """),
    md(r"""
    **In a stack.** Pre-LN sub-layer $l$ computes $x_l = x_{l-1} + f_l(\mathrm{LN}_l(x_{l-1}))$, so
    $\bar x_{l-1} = (I + J_l^\top)\, \bar x_l$, where $J_l$ is the Jacobian of $x \mapsto f_l(\mathrm{LN}_l(x))$,
    $J_l^\top = J_{\mathrm{LN}_l}^\top J_{f_l}^\top$, and over $n$ sub-layers

    $$ \bar x_0 = (I + J_1^\top)(I + J_2^\top) \cdots (I + J_n^\top)\, \bar x_n
       = \bar x_n + \sum_l J_l^\top \bar x_n + \ldots $$

    The gradient below the final LayerNorm, $\bar x_n$, reaches the bottom unchanged, plus what the
    sub-layers add. In post-LN, $x_l = \mathrm{LN}(x_{l-1} + f_l(x_{l-1}))$, the path around each sub-layer
    passes through a layer norm's backward, which removes two directions from the gradient and divides it
    by the standard deviation of $x_{l-1} + f_l(x_{l-1})$ ([layer norm](../docs/formulas/layer-norm.md), "The
    derivative"). Without the residual connection only the product of the $J_l^\top$ is left. What this does
    to the gradients of a real stack is measured next.

    ## 4. A deep stack at initialisation: the gradient each layer receives

    An `nn.Encoder` of 12 layers, $d_\text{model} = 32$, 4 heads, $d_{ff} = 64$, no dropout, wired three
    ways: post-LN, pre-LN (with its final LayerNorm), and the post-LN layer with both residual
    connections taken out, $x \leftarrow \mathrm{LayerNorm}(\mathrm{Sublayer}(x))$. Each wiring is built from
    the same seed, so the weights are the same and only the wiring differs. On top, a linear read-out to 20
    classes and the cross-entropy against random targets: the loss of a model that has learnt nothing yet.
    The input is a batch of 8 sequences of 16 random vectors of variance 1, the scale of the scaled
    embeddings ([embedding](../docs/formulas/embedding.md); adding $PE$, whose entries have mean square 1/2,
    would make it about 1.5). For each layer $l$ the measure is the norm of the gradient of all its
    parameters, $\lVert \partial \mathcal L / \partial \theta_l \rVert$.
    """),
    code("""
    N, d_model, heads, d_ff, batch, S, classes = 12, 32, 4, 64, 8, 16, 20


    def no_residual(layer, x):
        \"\"\"A post-LN layer with its two residual connections taken out: LayerNorm(Sublayer(x)), twice.\"\"\"
        x = layer.norm1(layer.self_attn(x, x, x)[0])
        return layer.norm2(layer.ffn(x))


    def no_norm(layer, x):
        \"\"\"The residual connections without any layer norm: x + Sublayer(x), twice (used in section 6).\"\"\"
        x = x + layer.self_attn(x, x, x)[0]
        return x + layer.ffn(x)


    WIRINGS = {"post-LN": None, "pre-LN": None, "no residual": no_residual, "no norm": no_norm}


    def stack(wiring, seed, num_layers=N):
        \"\"\"The encoder and the read-out: the same weights for every wiring built from the same seed.\"\"\"
        mt.manual_seed(seed)
        encoder = nn.Encoder(d_model, heads, d_ff, num_layers, dropout=0.0, norm_first=(wiring == "pre-LN"))
        return encoder, nn.Linear(d_model, classes)


    def data(seed):
        \"\"\"A random input (batch, S, d_model) of variance 1 and random targets (batch, S).\"\"\"
        rng = np.random.default_rng(seed)
        x = mt.tensor(rng.standard_normal((batch, S, d_model)).astype(np.float32))
        return x, mt.tensor(rng.integers(0, classes, (batch, S)))


    def run(wiring, seed, num_layers=N):
        \"\"\"One forward and backward at initialisation: each layer's gradient norm; the stream after each.\"\"\"
        encoder, readout = stack(wiring, seed, num_layers)
        x, targets = data(seed)
        stream = []
        for layer in encoder.layers:
            x = WIRINGS[wiring](layer, x) if WIRINGS[wiring] else layer(x)
            stream.append(x.numpy())                                     # (batch, S, d_model) after layer l
        if encoder.norm is not None:                                     # pre-LN's final LayerNorm
            x = encoder.norm(x)
        F.cross_entropy(readout(x), targets).backward()
        grads = [np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in layer.parameters() if p.grad is not None))
                 for layer in encoder.layers]                            # no norm: the norms' parameters get none
        return np.array(grads), stream
    """),
    md(r"""
    **Check** that `run`'s loop is what `nn.Encoder` computes, post-LN and pre-LN, and that the wirings share
    their weights:
    """),
    code("""
    post, readout = stack("post-LN", 0)
    pre, _ = stack("pre-LN", 0)
    x_in, _ = data(0)
    for wiring, encoder in (("post-LN", post), ("pre-LN", pre)):
        top = mt.tensor(run(wiring, 0)[1][-1])                           # run's stream after the last layer
        if encoder.norm is not None:                                     # pre-LN's final LayerNorm
            top = encoder.norm(top)
        print(f"{wiring}: run's loop and nn.Encoder the same:", np.array_equal(top.numpy(), encoder(x_in).numpy()))
    same = all(np.array_equal(a, b) for a, b in zip(post.layers.state_dict().values(),
                                                    pre.layers.state_dict().values()))
    print("x", x_in.shape, "-> encoder", pre(x_in).shape, "-> read-out", readout(pre(x_in)).shape,
          "  post-LN and pre-LN layers have the same weights:", same)
    """),
    md(r"""
    16 seeds (weights, input and targets) per wiring; the picture shows the mean over the seeds and, shaded,
    the range between the 4th and the 13th of the 16 sorted values.
    """),
    code("""
    seeds = range(16)
    runs = {w: [run(w, s) for s in seeds] for w in WIRINGS}
    G = {w: np.stack([g for g, _ in runs[w]]) for w in WIRINGS}          # (seeds, N) each
    print("mean over", len(seeds), "seeds of |dL/dtheta_l|, layers 1, 6, 12:")
    for w in ("post-LN", "pre-LN", "no residual"):
        m = G[w].mean(axis=0)
        print(f"  {w:12} {m[0]:5.2f} {m[5]:5.2f} {m[11]:5.2f}   layer 12 / layer 1: {m[11] / m[0]:.2f}")
    """),
    code("""
    from matplotlib.figure import Figure

    COLOURS = {"post-LN": "C0", "pre-LN": "C1", "no residual": "C2", "no norm": "C3"}
    STYLES = {"post-LN": dict(marker="o"), "pre-LN": dict(marker="o"), "no residual": dict(marker="s", linestyle="--"),
              "no norm": dict(marker="^")}
    layers = np.arange(1, N + 1)
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for w in ("post-LN", "pre-LN", "no residual"):
        low, high = np.sort(G[w], axis=0)[[3, 12]]
        ax.plot(layers, G[w].mean(axis=0), color=COLOURS[w], label=w, **STYLES[w])
        ax.fill_between(layers, low, high, color=COLOURS[w], alpha=0.15)
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set_xlabel("layer l (1 = next to the input, 12 = next to the loss)")
    ax.set_ylabel("|dL/dtheta_l|")
    ax.set_title("gradient reaching each layer's parameters, at initialisation")
    ax.grid(True, color="0.9")
    ax.legend()
    fig
    """),
    md(r"""
    What the figure shows, for this stack at initialisation:

    * post-LN's gradient **grows towards the output**: 1.8 times as large at layer 12 as at layer 1;
    * pre-LN's **shrinks towards the output**: at layer 12 it is about half its size at layer 1, and about a
      quarter of post-LN's there (0.52 against 2.02);
    * without residual connections the gradient grows towards the output too, and it is the largest of the
      three at every layer.

    None of the three wirings plotted has a gradient that vanishes or explodes over 12 layers (the fourth,
    `no norm`, does: section 6); the spread between seeds (the shaded bands) is wide, and the bands of
    post-LN and pre-LN overlap in the lower layers.

    Xiong et al. 2020 ("On Layer Normalization in the Transformer Architecture") prove with mean field
    theory that at initialisation the expected gradients of post-LN's parameters near the output are large,
    and that pre-LN's are well-behaved; a large learning rate from the first step then makes post-LN's
    training unstable, which a warm-up avoids. The figure agrees with the first part: post-LN's gradients
    are largest next to the loss, and larger than pre-LN's there. Pre-LN's gradients are not the same at
    every layer in this stack: they fall with the layer's index (a lower layer collects the gradient of more
    sub-layers above it, checked next).

    **Why pre-LN's gradient falls.** The gradient of a pre-LN sub-layer's parameters,
    $(\partial f_l / \partial \theta_l)^\top \bar x_l$, takes from the backward pass only $\bar x_l$, the
    gradient at the sub-layer's output, never the stream's gradient below the layer norm in front of it. By
    section 3's product, $\bar x_l = \bar x_n + \sum_{k > l} J_k^\top \bar x_n + \ldots$: the top sub-layer
    gets $\bar x_n$ alone, and each one below gets $\bar x_n$ plus terms from every sub-layer above it. The
    same 16 stacks once more, with every sub-layer reading a detached copy of the stream,
    `norm1(x.detach())`: the forward computes the same numbers, but no $J_k^\top$ term comes down, and
    every sub-layer gets $\bar x_n$ alone, the identity path of section 3:
    """),
    code("""
    def identity_path_only(seed):
        \"\"\"Pre-LN's |dL/dtheta_l| when every sub-layer reads a detached copy of the stream: the same forward,
        but the stream's gradient comes down only along the identity path (x-bar_l = x-bar_n for every l).\"\"\"
        encoder, readout = stack("pre-LN", seed)
        x, targets = data(seed)
        for layer in encoder.layers:
            n1 = layer.norm1(x.detach())                                 # reads x; sends no gradient back to it
            x = x + layer.self_attn(n1, n1, n1)[0]
            x = x + layer.ffn(layer.norm2(x.detach()))
        F.cross_entropy(readout(encoder.norm(x)), targets).backward()
        return np.array([np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in layer.parameters()))
                         for layer in encoder.layers])


    G_identity = np.stack([identity_path_only(s) for s in seeds])       # (seeds, N)
    print("mean over", len(seeds), "seeds of |dL/dtheta_l|, layers 1, 6, 12:")
    for name, g in (("pre-LN", G["pre-LN"]), ("identity path only", G_identity)):
        m = g.mean(axis=0)
        print(f"  {name:18} {m[0]:5.2f} {m[5]:5.2f} {m[11]:5.2f}   layer 12 / layer 1: {m[11] / m[0]:.2f}")
    fig = Figure(figsize=(6.5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(layers, G["pre-LN"].mean(axis=0), color=COLOURS["pre-LN"], marker="o", label="pre-LN")
    ax.plot(layers, G_identity.mean(axis=0), color=COLOURS["pre-LN"], marker="o", linestyle=":",
            label="pre-LN, identity path only")
    ax.set_yscale("log")
    ax.set_xticks(layers)
    ax.set_xlabel("layer l")
    ax.set_ylabel("|dL/dtheta_l|")
    ax.set_title("pre-LN's gradient with and without the J^T terms")
    ax.grid(True, color="0.9")
    ax.legend()
    fig
    """),
    md(r"""
    Along the identity path alone the gradient rises from layer 1 to layer 12 (0.30 to 0.52) instead of
    falling (1.12 to 0.52). At layer 12, which has no sub-layer above it but its own FFN, the two agree to
    two decimals. So the fall of pre-LN's curve comes from the $J_k^\top$ terms: the lower the layer, the
    more of them it collects, and at layer 1 they make its gradient larger than $\bar x_n$ alone would.

    ## 5. The last layer's gradient as the stack gets deeper

    Xiong et al.'s Theorem 1 bounds, from above, the gradient of the last layer's FFN output weights
    ($W_2$ of layer $N$): for post-LN by a quantity that does not depend on the number of layers $N$, for pre-LN by
    one that falls as $1/\sqrt{N}$. Measured here, as the norm of the gradient of all the last layer's
    parameters, for $N$ = 2, 4, 8 and 16 layers, 8 seeds each:
    """),
    code("""
    depths = [2, 4, 8, 16]
    last = {w: [np.mean([run(w, s, n)[0][-1] for s in range(8)]) for n in depths] for w in ("post-LN", "pre-LN")}
    print("mean |dL/dtheta_N| of the last layer, over 8 seeds:")
    for i, n in enumerate(depths):
        print(f"  N = {n:2}: post-LN {last['post-LN'][i]:.2f}   pre-LN {last['pre-LN'][i]:.2f}   "
              f"post / pre {last['post-LN'][i] / last['pre-LN'][i]:.1f}")
    fig = Figure(figsize=(5.5, 3.5), layout="constrained")
    ax = fig.subplots()
    for w in ("post-LN", "pre-LN"):
        ax.plot(depths, last[w], marker="o", color=COLOURS[w], label=w)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(depths, [str(n) for n in depths])
    ax.set_xlabel("number of layers N")
    ax.set_ylabel("|dL/dtheta_N|, last layer")
    ax.set_title("the last layer's gradient against depth")
    ax.grid(True, color="0.9")
    ax.legend()
    fig
    """),
    md(r"""
    Post-LN's last-layer gradient grows from 0.88 at $N = 2$ to about 2 at $N = 8$ and $N = 16$; pre-LN's
    stays near 0.65 up to $N = 8$ and falls to 0.40 at $N = 16$. So the ratio between them grows with depth,
    from 1.3 to 4.7, in the direction the bounds suggest, but pre-LN's gradient does not fall as $1/\sqrt N$
    over this range, which would halve it from $N = 2$ to $N = 8$. (An upper bound says how large the
    gradient can be, not what it is; and these are small stacks, 8 seeds, and all the last layer's
    parameters rather than $W_2$ alone.)

    ## 6. The residual stream through depth

    The *residual stream* is what one layer hands to the next. Its scale, the standard deviation of its
    entries after each layer, for the three wirings and a fourth, the residual connections **without any
    layer norm**, $x \leftarrow x + \mathrm{Sublayer}(x)$ (`no_norm` above; the same 16 seeds):
    """),
    code("""
    def token_similarity(h):
        \"\"\"Mean cosine similarity of two different positions' vectors in a sequence; h (batch, S, d).\"\"\"
        u = h / np.linalg.norm(h, axis=-1, keepdims=True)                  # (batch, S, d), unit vectors
        cos = u @ u.transpose(0, 2, 1)                                     # (batch, S, S)
        n = h.shape[1]
        return (cos.sum(axis=(1, 2)) - n).mean() / (n * n - n)            # the diagonal (1s) left out


    scale = {w: np.mean([[h.std() for h in stream] for _, stream in runs[w]], axis=0) for w in WIRINGS}   # (N,)
    alike = {w: np.mean([[token_similarity(h) for h in stream] for _, stream in runs[w]], axis=0) for w in WIRINGS}
    print("after layer:                 1       2       6      12")
    for w in WIRINGS:
        print(f"  std, {w:12}  " + " ".join(f"{scale[w][l - 1]:7.2f}" for l in (1, 2, 6, 12)))
    for w in WIRINGS:
        print(f"  cosine, {w:12}" + " ".join(f"{alike[w][l - 1]:7.2f}" for l in (1, 2, 6, 12)))
    print("mean |dL/dtheta_l| without norm, layers 1, 6, 12:", G["no norm"].mean(axis=0)[[0, 5, 11]].round(0))
    """),
    code("""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_scale, ax_alike = fig.subplots(1, 2)
    for w in WIRINGS:
        ax_scale.plot(layers, scale[w], color=COLOURS[w], label=w, **STYLES[w])
        ax_alike.plot(layers, alike[w], color=COLOURS[w], label=w, **STYLES[w])
    ax_scale.set_yscale("log")
    ax_scale.set_ylabel("standard deviation of the stream")
    ax_scale.set_title("the stream's scale after each layer")
    ax_alike.set_ylabel("mean cosine similarity of two positions")
    ax_alike.set_title("how alike the tokens become")
    ax_alike.set_ylim(-0.05, 1.05)
    for ax in (ax_scale, ax_alike):
        ax.set_xticks(layers)
        ax.set_xlabel("layer l")
        ax.grid(True, color="0.9")
        ax.legend()
    fig
    """),
    md(r"""
    **The scale (left).** Post-LN's stream leaves every layer through a layer norm: its standard deviation is
    1.00 at every depth, and so is that of the stack without residual connections (the two lines lie on each
    other). Pre-LN's stream is the input plus every sub-layer's output so far, and it grows with depth, to
    3.52 after 12 layers. Each pre-LN sub-layer reads a normalised copy of the stream, so what it adds does
    not grow with the stream: a deeper layer changes the stream relatively less. The stream's scale reaches
    pre-LN's gradients through the layer norms' backward, which divides by the standard deviation of the
    norm's input: the final LayerNorm divides $\bar x_n$ by the top stream's (about 3.5), and each
    $J_l^\top$ of section 3 holds the division of the norm in front of its sub-layer. A sub-layer's own
    parameters take $\bar x_l$ without that norm's division (section 4). Without any layer norm the stream grows by
    a factor at every layer, to 387 after 12 layers, and the mean gradient of the first layer's parameters
    is about $10^7$: this is what the norms prevent.

    **How alike the tokens are (right).** The input's positions are independent random vectors (cosine
    near 0). Without residual connections the positions are nearly the same vector after two layers (cosine
    0.97) and identical to two decimals after six (1.00). With the residual connections each position keeps
    its own $x$: pre-LN's positions stay the most distinct (0.73 after 12 layers); post-LN's become more
    alike with depth too, and after 12 layers they are, to two decimals, the same vector. At its top, a
    stack whose positions are all one vector cannot tell them apart, whatever its gradients.

    Why the positions become alike: $\mathrm{MultiHead}(x, x, x)$ gives each position a weighted average of
    the same value vectors, and at initialisation each query spreads its weight over many positions (the
    largest weight of a row is about a quarter, printed below), so the outputs are more alike than the
    inputs; the residual connection adds each position's own $x$ back. The first layer, for one seed:
    """),
    code("""
    encoder, _ = stack("post-LN", 0)
    x_in, _ = data(0)
    a, weights = encoder.layers[0].self_attn(x_in, x_in, x_in)            # (batch, S, d_model), (batch, heads, S, S)
    print("attention weights", weights.shape, ": the largest of a row, on average",
          weights.numpy().max(-1).mean().round(3), "(uniform: 1/16 =", 1 / 16, ")")
    print("cosine of two positions:  x", token_similarity(x_in.numpy()).round(3), "  MultiHead(x, x, x)",
          token_similarity(a.numpy()).round(3), "  x + MultiHead(x, x, x)",
          token_similarity((x_in + a).numpy()).round(3))
    """),
    md(r"""
    ## 7. Training: post-LN against pre-LN, with and without warm-up

    The same small task for four runs: a character language model on the library's tiny corpus
    (`nn.DecoderOnlyLM`, 6 layers, $d_\text{model} = 32$, 4 heads, $d_{ff} = 64$, no dropout), 150 steps of 16
    windows of 32 characters, the same batches and the same initial weights in every run. Adam with the
    paper's $\beta_1, \beta_2, \epsilon$ at a peak rate of $3 \cdot 10^{-3}$, without gradient clipping, so that
    nothing else tames the first steps; either the full rate from step 1, or a linear warm-up over the first
    40 steps and then the full rate (`warmup_schedule(..., kind="constant")`; the paper's schedule also decays
    after its warm-up, [schedule](../docs/formulas/schedule.md)). The dotted line is the unigram entropy of
    the text: the loss of predicting each character from its frequency alone, ignoring the context. This
    is the notebook's longest cell.
    """),
    code("""
    import time

    from minitransformer import optim
    from minitransformer.data import CharTokenizer, load_corpus, make_lm_batch, split_corpus, unigram_entropy
    from minitransformer.train.tasks import warmup_schedule

    text = load_corpus("tiny")
    train_text, val_text = split_corpus(text, 0.1)
    tok = CharTokenizer.from_text(text)
    train_ids, val_ids = np.asarray(tok.encode(train_text)), np.asarray(tok.encode(val_text))
    H = unigram_entropy(text)
    T, B, steps, lr = 32, 16, 150, 3e-3
    b = make_lm_batch(train_ids, T, B, rng=[0, 1])
    print(f"{len(train_ids):,} training and {len(val_ids):,} held-out characters, {tok.vocab_size} distinct;",
          f"unigram entropy {H:.3f} nats (uniform over the vocabulary: {np.log(tok.vocab_size):.3f})")
    print("a batch: tgt_in", b.tgt_in.shape, " tgt_out", b.tgt_out.shape, "(the next character at every position)")


    def train(norm_first, warmup):
        \"\"\"150 steps from the same weights and batches: each step's loss and rate; the held-out loss.\"\"\"
        mt.manual_seed(0)
        model = nn.DecoderOnlyLM(tok.vocab_size, d_model=32, heads=4, d_ff=64, num_layers=6, max_len=T,
                                 dropout=0.0, norm_first=norm_first)
        opt = optim.Adam.paper(model.parameters(), lr=lr)
        schedule = warmup_schedule(opt, warmup=warmup, steps=steps, kind="constant")   # lr t / warmup, then lr
        losses, rates = [], []
        for step in range(1, steps + 1):
            b = make_lm_batch(train_ids, T, B, rng=[0, step])          # the same batches in every run
            loss = F.cross_entropy(model(b.tgt_in), b.tgt_out)
            opt.zero_grad()
            loss.backward()
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            schedule.step()
            losses.append(loss.item())
        with mt.no_grad():
            v = make_lm_batch(val_ids, T, 64, rng=[1, 0])              # 64 held-out windows
            held_out = F.cross_entropy(model(v.tgt_in), v.tgt_out).item()
        return np.array(losses), np.array(rates), held_out
    """),
    code("""
    start = time.perf_counter()
    results = {}
    for norm_first in (False, True):
        for warmup in (1, 40):                                            # warmup=1: the full rate from step 1
            name = ("pre-LN" if norm_first else "post-LN") + (", warm-up 40" if warmup > 1 else ", no warm-up")
            results[name] = train(norm_first, warmup)
    print(f"4 runs in {time.perf_counter() - start:.0f} s")
    print("                        loss, steps 1-10   steps 141-150   held-out")
    for name, (losses, _, held_out) in results.items():
        print(f"  {name:22} {losses[:10].mean():9.3f} {losses[-10:].mean():15.3f} {held_out:10.3f}")
    """),
    code("""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_loss, ax_lr = fig.subplots(1, 2, width_ratios=[2, 1])
    window = np.ones(10) / 10                                            # a moving average over 10 steps
    for name, (losses, rates, _) in results.items():
        colour, style = COLOURS[name.split(",")[0]], "-" if "no warm-up" in name else "--"
        ax_loss.plot(np.arange(10, steps + 1), np.convolve(losses, window, mode="valid"), color=colour,
                     linestyle=style, label=name)
        if name.startswith("post-LN"):
            ax_lr.plot(np.arange(1, steps + 1), rates, color="0.3", linestyle=style, label=name.split(", ")[1])
    ax_loss.axhline(H, color="0.5", linestyle=":", label=f"unigram entropy {H:.2f}")
    ax_loss.set_title("training loss (mean of the last 10 steps)")
    ax_loss.set_ylabel("cross-entropy, nats per character")
    ax_lr.set_title("learning rate")
    ax_lr.set_ylabel("learning rate")
    for ax in (ax_loss, ax_lr):
        ax.set_xlabel("step")
        ax.grid(True, color="0.9")
        ax.legend(fontsize=9)
    fig
    """),
    md(r"""
    What happened, in this run (one seed, 150 steps):

    * **Pre-LN trained faster than post-LN**, with and without warm-up: the mean loss of its last 10 steps
      is 2.387 without warm-up and 2.429 with it, post-LN's 2.736 and 2.619; the held-out losses come in the
      same order.
    * **Post-LN stalled near the unigram entropy** (3.07, the dotted line) from about step 50 to about step
      100, at the loss of predicting each character from its frequency alone, before its loss fell again.
      Pre-LN's loss passed that line without stopping.
    * **The warm-up helped post-LN and cost pre-LN a little**: post-LN ended lower with it (2.619 against
      2.736), pre-LN slightly higher (2.429 against 2.387), having spent its first 40 steps at smaller rates.

    This is one small setting and the start of a training run, not its end; exercise 2 reruns it at other
    rates. Notebook 05 trains a pre-LN model; its exercise 5 asks for the post-LN one.

    ## 8. What the source document says

    The source document never mentions either part. Its list of what a Transformer is made of (section
    3.2.2, "Define Model Architecture") names "embedding layers, self-attention layers, multi-head attention
    layers, and feedforward neural networks", and its Transformer block (section 5.3.1) "contains multi-head
    attention and feedforward neural networks"; its formulas (section 4) are attention and positional
    encoding only. The paper's figure 1 draws an "Add & Norm" after every sub-layer, and its section 3.1
    writes the output of each sub-layer as $\mathrm{LayerNorm}(x + \mathrm{Sublayer}(x))$. The library's
    encoder layer has both: the printout lists the two norms beside the attention and the FFN, and
    `forward` adds each sub-layer's input to its output.
    """),
    code("""
    print(nn.EncoderLayer(d_model=16, heads=4, d_ff=32))
    """),
    md(r"""
    Sections 4 and 6 measured what each part does in a 12-layer stack at initialisation: with layer norms but
    no residual connections, the positions become the same vector within a few layers; with residual
    connections but no layer norms (`no norm`), the stream's scale grew from 1 to 387. `docs/errata.md` lists the
    document's errors in section 4; this omission is in sections 3.2.2 and 5.3.1.

    ## Exercises

    1. Take the residual connections out of **pre-LN**: $x \leftarrow \mathrm{Sublayer}(\mathrm{LayerNorm}(x))$,
       a function like `no_residual`. Predict its curve in the right panel of section 6 before you draw it,
       then check. (Which operation of section 6 makes the positions alike, and does this wiring still
       have it?)
    2. Rerun section 7 at `lr = 1e-2` and at `lr = 1e-3` (one number), then with `num_layers=4` instead of 6.
       When is the gap between post-LN and pre-LN largest, and when does it almost close? Do 40 steps of
       warm-up rescue post-LN at `1e-2`?
    3. Show with NumPy that a layer norm ignores the scale of its input: `layer_norm(10 * z, 1, 0)` against
       `layer_norm(z, 1, 0)` for a random `z`. Then, with the library, show that the gradient it sends back
       is divided by that scale: compare `x.grad` for the inputs `z` and `10 * z` and the same $\bar y$. Which
       factors of section 3's product contain such a division, and which do not?
    4. Set the FFN's output weights to zero (`layer.ffn.W_2.weight` and `.bias` of the layer of section 3)
       and compute $\bar x$ for $y = x + \mathrm{FFN}(x)$ again. What does $\bar x$ equal, and why? (A
       sub-layer that starts at zero makes its residual block the identity: several initialisation schemes
       for deep networks start this way.)
    5. Remove pre-LN's final LayerNorm (`encoder.norm = None` in `run`) and compare the standard deviation
       of the read-out's logits with and without it, for 12 layers. Why does post-LN not need one?
    """),
]


# ====================================================================================== 10
NB10 = [
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
    md(r"""
    One BLAS thread, as in notebook 05: for matrices this small, threads cost more than they save.
    """),
    code("""
    import re
    import warnings

    from matplotlib.figure import Figure
    from tqdm import TqdmWarning

    from minitransformer.train import set_blas_threads

    warnings.filterwarnings("ignore", category=TqdmWarning)   # no ipywidgets here: tqdm falls back to a text bar
    print("one BLAS thread:", set_blas_threads(1))
    """),
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
    ## 3. Baselines to beat, by counting

    Two models that need no training, fitted by counting characters in the training text and scored on the
    validation text, with the same measure as the Transformer: the mean of $-\log p(x_{t+1} \mid \ldots)$
    in nats per character.

    * **Unigram**: every character from its frequency alone, $p(c) = \mathrm{count}(c) / N$, whatever came
      before. On the text it was counted on, its cross-entropy is the entropy of the frequencies,
      $H = -\sum_c p_c \ln p_c$: the library's `unigram_entropy`, the line a language model must go below.
    * **Bigram**: the next character from the one before, $p(b \mid a) = \mathrm{count}(a\,b) /
      \mathrm{count}(a)$. A pair never seen in training would get probability 0 and an infinite loss, so
      both models are smoothed by **add-one** (Laplace): every count gets 1 more, over the same $V$ = 71
      outcomes as the Transformer's softmax (the four specials never occur, so they keep only that 1).
    """),
    code("""
    from minitransformer.data import unigram_entropy

    freq = np.bincount(tok.encode(text), minlength=V) / len(text)     # (V,) frequencies in the whole text
    H = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    print(f"entropy of the whole text's character frequencies: {H:.4f} nats; unigram_entropy(text) = "
          f"{unigram_entropy(text):.4f}")
    np.testing.assert_allclose(H, unigram_entropy(text), rtol=1e-12)

    counts = np.bincount(train_ids, minlength=V)                      # (V,) in the training text
    p_uni = (counts + 1) / (counts.sum() + V)                         # add-one
    ce_uni = -np.log(p_uni[val_ids]).mean()

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
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(change, cmap="magma")
    ax.set_xlabel("position whose logits are read")
    ax.set_ylabel("t: characters after t replaced")
    ax.set_title("largest change of a logit")
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
    step. Every 50 steps it measures the loss on the whole validation text, cut into consecutive windows of
    64 (`setup.eval_fn`). This is the notebook's longest cell (the time is printed).
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
    print(f"validation loss {final['val_loss']:.3f} nats, perplexity {final['val_perplexity']:.2f}")
    print(f"bigram          {ce_bi:.3f} nats, perplexity {np.exp(ce_bi):.2f}")
    passed = next(step_ for step_, v in history["val_loss"] if v < ce_bi)
    print(f"the validation loss was first below the bigram's at step {passed}; the last training loss "
          f"(mean of steps 291-300) {history['train_loss'][-1][1]:.3f}")
    """),
    md(r"""
    The untrained model starts above the uniform guess (4.829 on the validation text, against ln 71 =
    4.263). Both losses pass the unigram line within the first 50 steps; the validation loss is below the
    bigram's from step 100 on and ends at 2.098 nats, a perplexity of 8.15 against the bigram's 10.93. The
    training loss ends a little lower, 1.997: the model fits the text it trains on slightly better than
    text it has not seen.
    """),
    md(r"""
    ## 6. Sampling: greedy, temperature, top-$k$

    `train.generate` writes one character at a time: it runs the model on the text so far, takes the last
    position's logits $z$ and picks the next character from $\mathrm{softmax}(z / \tau)$, $\tau$ the
    temperature (notebook 08, section 6, draws the same distribution by hand). $\tau = 0$ is greedy, the
    arg-max; $\tau < 1$ sharpens the distribution, $\tau > 1$ flattens it; top-$k$ draws only among the $k$
    likeliest characters. `context=64`: the model reads at most the 64 positions it was trained on
    (section 7 shows why). Every sample starts from the prompt "The "; as a rough measure of sense, the
    share of its words of 3 letters or more that occur in the training text is printed.
    """),
    code("""
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
    Greedy takes the likeliest character every time, so once a stretch of text recurs, the same context
    gives the same choice again: after its first words it goes round "the", "she" and "wat" (53 words, 9
    different). Sampling leaves such cycles by chance. The temperature trades safety for variety: at 0.5
    the samples keep to common words (51% of their words of 3 letters or more occur in the training text),
    at 0.8 they invent more (34%), at 1, the model's own distribution, more still (15%), and at 1.2 (13%)
    odd capitals and punctuation appear. Top-5 at $\tau = 1$ keeps the model's own distribution over its 5
    likeliest characters and removes the long tail: 43% against 15% without it. The softmax gives every one
    of the 71 ids some probability, and over 200 draws the unlikely ones add up.

    ## 7. The context trap

    The model was trained on windows of `seq_len` = 64 characters, but its positional table has
    `max_len` = 128 rows, and a forward pass accepts up to 128 positions. Positions 64 to 127 never occurred
    in training. By default `generate` reads up to `max_len` positions; the `charlm` task passes
    `context=seq_len` (its samples used to fall apart after about 64 characters, until it did).

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
    print(f"{n_windows} windows of {L_max}; mean loss at positions 8-63: {by_position[8:T].mean():.3f}, "
          f"at positions 64-127: {by_position[T:].mean():.3f}")
    print("in blocks of 8 positions:", by_position.reshape(-1, 8).mean(1).round(2))
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
    The first position costs the most (no context to go on); from about position 8 the loss is flat at
    2.09, a little higher in the last block before 64 (2.18). From position 64 on, where training never
    went, it jumps to about 2.55 and stays there, worse than the bigram model: the mean over positions 64 to
    127 is 2.541, against 2.098 over positions 8 to 63.

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
    chance. After that, the default's text falls apart: of its words of 3 letters or more, 16% occur in the
    training text, against 39% in the first 64 characters; with `context=64`, 34%. Sample 1 shows it: the
    same 65 characters, then "thean be bow thee seath susiled havers" against "theand atis thean argghe s
    alof lashefun".

    **Why.** Two things are new to the model at position 64 and later, and they can be told apart:

    * **rows of $PE$ it never saw.** The sinusoidal rows 64 to 127 exist (they are computed from the
      formula, not learned), but no weight was ever trained on a vector made with them. They are not just
      more of the same: in most of the 64 dimensions, the slow sinusoids there take values outside the
      range they have at positions 0 to 63.
    * **more keys than in training.** At position 100 a query spreads its softmax over 101 keys; in
      training it never had more than 64.

    A banded mask separates the two: every query may see only the last 64 positions (itself included), so
    no query has more keys than in training, but positions 64 to 127 still carry their unseen rows:
    """),
    code("""
    PE = F.sinusoidal_positional_encoding(L_max, s["d_model"]).numpy()          # (128, 64), no parameters
    low, high = PE[:T].min(axis=0), PE[:T].max(axis=0)
    outside = ((PE[T:] < low - 1e-6) | (PE[T:] > high + 1e-6)).any(axis=0)      # (64,) per dimension
    print(f"PE {PE.shape}: in {outside.sum()} of {s['d_model']} dimensions, rows 64-127 leave the range of rows 0-63")

    i = np.arange(L_max)
    band = mt.tensor((i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - T))   # (128, 128): the last 64
    banded, _ = loss_by_position(val_ids, L_max, mask=band)
    print(f"mean loss at positions 64-127: all earlier keys {by_position[T:].mean():.3f}, "
          f"only the last 64 {banded[T:].mean():.3f};  positions 8-63: {by_position[8:T].mean():.3f}")
    """),
    md(r"""
    With at most 64 keys per query, positions 64 to 127 are as bad as with all of them (2.570 against
    2.541): the number of keys is not what hurts this model; the unseen rows of $PE$ are. The paper
    (section 3.5) chose the sinusoids because they "may allow the model to extrapolate to sequence lengths
    longer than the ones encountered during training"; for this model and this training, they do not. What
    avoids the trap: train on windows as long as the longest context used (`seq_len` = `max_len`), or read
    at most `seq_len` positions, as `generate(..., context=seq_len)` does.

    The source document's section 4.2.3 says "positional encoding vectors are learned during the training
    process" (erratum 5 in `docs/errata.md`: its own formula 4.1.3 is the fixed sinusoids). With a learned
    table (`positional="learned"`, as GPT-2), rows 64 to 127 would not even be new sinusoids: they would
    never receive a gradient, and would keep their random initial values:
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

    The attention weights of the trained model, both layers, all four heads, on one line of the validation
    text (row: the query, the position predicting the next character; column: the key it reads; `_` is a
    space):
    """),
    code("""
    line = "it borrows it from the sea."
    assert line in val_text
    with mt.no_grad():
        model(mt.tensor([tok.encode(line)]))
    maps = [w.numpy()[0] for w in model.decoder.self_attn_weights]   # per layer (heads, L, L)
    labels = [show(c) for c in line]
    print(len(maps), "layers, weights", maps[0].shape, "(heads, queries, keys) each")
    viz.attention_layers(maps, labels, labels, title=repr(line))
    """),
    code("""
    b_at = line.index("borrows")                                      # the position of its "b"
    print("layer 2, head 1: the weight each letter of 'borrows' gives to its 'b':")
    print("  ".join(f"{line[q]} {maps[1][0, q, b_at]:.2f}" for q in range(b_at + 1, b_at + 7)))
    """),
    md(r"""
    The first row has a single key, so its weight is 1 in every head. In layer 1 the bright cells lie on
    the diagonal or just left of it: each position reads itself and the few characters before it. Layer 2,
    head 1 has a bright column under the "b" of "borrows": the next four letters put 0.86 to 0.99 of their
    weight on the first letter of their word, "w" and "s" less. Heads 2 and 3 of layer 2 also have columns,
    keys read by positions several characters later.
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

    The source document teaches the encoder–decoder Transformer (its section 4) and a classifier (its
    section 5); it trains no language model and says nothing about decoder-only models (its section 9.1
    names GPT among "typical AI large models", without describing it). Three of its general statements
    touch this notebook:

    * Section 3.1: self-attention computes weights "based on all information in the input sequence when
      generating each output". For a model that generates, each position may use only the positions before
      it (section 4's check).
    * Section 3.2.1: data preparation includes "removing stop words, punctuation, and special characters".
      For a language model, these are part of what it must predict: in this text, spaces and line breaks
      are 19.8% of the characters and punctuation 3.2% (counted below), and the commonest words ("the",
      "and", "of") are stop words. A model trained without them could not write them.
    * Section 4.2.3: positional encodings "are learned during the training process" (erratum 5). The formula
      it gives is fixed; section 7 showed what each choice does at positions beyond training.
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
    2. Fit a **trigram** model by counting, $p(c \mid a\,b)$ with add-one smoothing over the 71 ids, and
       score it on the validation text. Does it beat the bigram's 2.39 nats? Then try add-$\alpha$ with
       $\alpha = 0.1$ and $0.01$: why does the amount of smoothing matter more for the trigram?
    3. Sampling at temperature $\tau$ draws from $p_\tau \propto p^{1/\tau}$. Take the model's distribution
       of the next character after "The s" and compute its entropy at $\tau = 0.5, 1, 2$; which $\tau$ gives
       the entropy of a uniform choice among 71, in the limit?
    4. In section 4, replace the characters *before* position $t$ instead of after it. Which logits
       change now, and why can the change not stop at the replaced positions?
    5. Train the model of section 7's last cell, `positional="learned"`, with `Trainer`, `setup.train_data`
       and `setup.loss_fn` for 300 steps (its own `optim.Adam.paper` and `warmup_schedule`). Check that rows
       64 to 127 of its table still equal their initial values, redraw the loss by position, and generate
       with `context=128`. Does it fall apart the same way as the sinusoidal model?
    """),
]


NOTEBOOKS: dict[str, list[tuple]] = {
    "01_autograd": NB01,
    "02_scaled_dot_product_attention": NB02,
    "03_multi_head_attention": NB03,
    "04_positional_encoding": NB04,
    "05_training_reverse": NB05,
    "06_text_classifier": NB06,
    "07_gpu": NB07,
    "08_decoding": NB08,
    "09_residuals_and_layer_norm": NB09,
    "10_character_language_model": NB10,
}


# ------------------------------------------------------------------ building, running, cleaning
def build(name: str):
    """The notebook ``name`` (e.g. ``"01_autograd"``) as an nbformat node, without outputs."""
    import nbformat

    cells = []
    for i, (kind, source, *metadata) in enumerate(NOTEBOOKS[name]):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cells.append(make(source, id=f"cell-{i:02d}", metadata=metadata[0] if metadata else {}))  # stable ids
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def sources(nb) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell: what the drift check compares (outputs excluded)."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


_TERMINAL_LINE = re.compile(r"[^\n]*\r(?!\n)")


def _as_terminal(text: str) -> str:
    r"""What a terminal shows: within a line, text before a carriage return is overwritten."""
    return _TERMINAL_LINE.sub("", text.replace("\r\n", "\n"))


def clean(nb):
    """Merge consecutive prints of one stream and collapse progress bars to their last state."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if out.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                    and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":  # a progress bar pads its line with spaces: drop them
                out.text = "\n".join(line.rstrip() for line in _as_terminal(out.text).split("\n"))
        cell.outputs = [out for out in merged if out.output_type != "stream" or out.text.strip()]
    return nb


def execute(nb, timeout: int = CELL_TIMEOUT):
    """Run every cell with the ``python3`` kernel in ``notebooks/``; returns ``(nb, seconds)``.

    The kernel imports ``minitransformer`` from this checkout, the repository root first on its
    ``PYTHONPATH`` (as ``tests/test_notebooks.py`` runs them): from ``notebooks/`` the package is not on
    the path, and the copy installed in the environment (another checkout's, for a worktree) was run.
    """
    from nbclient import NotebookClient

    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute(env=env)
    return clean(nb), time.perf_counter() - start


def path_of(name: str) -> Path:
    return NOTEBOOK_DIR / f"{name}.ipynb"


def _select(names: list[str]) -> list[str]:
    if not names:
        return list(NOTEBOOKS)
    chosen = []
    for n in names:
        matches = [k for k in NOTEBOOKS if k == n or k.startswith(n) or k == Path(n).stem]
        if not matches:
            raise SystemExit(f"make_notebooks: no notebook {n!r}; there are {', '.join(NOTEBOOKS)}")
        chosen += matches
    return chosen


def drifted(name: str) -> str | None:
    """Why the committed notebook ``name`` differs from the generated one in its sources, or None."""
    import nbformat

    path = path_of(name)
    if not path.exists():
        return f"{path.relative_to(ROOT)} is missing"
    committed, generated = sources(nbformat.read(path, as_version=4)), sources(build(name))
    if committed == generated:
        return None
    if len(committed) != len(generated):
        return f"{path.name}: {len(committed)} cells committed, {len(generated)} generated"
    i = next(i for i, (a, b) in enumerate(zip(committed, generated)) if a != b)
    return f"{path.name}: cell {i} differs from tools/make_notebooks.py"


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (number or name); all by default")
    parser.add_argument("--check", action="store_true", help="only compare the committed sources with these")
    parser.add_argument("--no-execute", action="store_true", help="write the sources without running them")
    args = parser.parse_args(argv)
    names = _select(args.names)
    if args.check:
        problems = [p for p in map(drifted, names) if p]
        print("\n".join(problems) or f"{len(names)} notebooks match tools/make_notebooks.py")
        return 1 if problems else 0
    NOTEBOOK_DIR.mkdir(exist_ok=True)
    for name in names:
        nb = build(name)
        if not args.no_execute:
            nb, seconds = execute(nb)
            print(f"{name}: executed in {seconds:.1f} s")
        nbformat.validate(nb)
        nbformat.write(nb, path_of(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
