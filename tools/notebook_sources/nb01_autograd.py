"""Notebook 01_autograd: its cells, built by ``tools/make_notebooks.py``."""

from .cells import SETUP, code, exercise, md

CELLS = [
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

    Steps: **1** a tiny expression, computed by hand · **2** its graph, as a picture and as text ·
    **3** backward one node at a time · **4** `backward()` and `retain_grad()` · **5** a node used twice ·
    **6** gradcheck, finite differences as the referee · **7** a new primitive, written here as a
    `Function` subclass with its `backward`, and gradcheck'ed.

    **Exercises in the text** (assignment A1, `minitransformer assignments list`): the backward of Mul,
    MatMul and Sum (section 3) and of a small expression (section 5), in NumPy, each followed by a cell
    that checks your answer by central differences, with the library's forward passes only. In assignment
    A1's student copy (`minitransformer assignments build 1 DIR`) the library's own A1 bodies are taken
    out too: from the loop of section 3 on, the cells that call them raise `NotImplementedError` until you
    have written them in `minitransformer/autograd/ops.py` (each primitive's `backward`; section 5's
    broadcast sum and section 6's softmax also need `unbroadcast` in `autograd/engine.py`). Each error names
    the body to write.
    """),
    SETUP,
    md(r"""
    ## 1. A computation graph by hand

    The expression (from Karpathy's micrograd lecture):

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
    only labels the picture and the printouts.
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

    ## 2. The graph, as a picture and as text

    `viz.draw_graph` draws what `backward()` will walk: tensors are boxes (green: a leaf that will
    receive `.grad`), operations are ellipses, data flows left to right. `to_text` prints the same graph
    as `backward()` walks it, from $L$ down to the leaves: each tensor, `<-` the operation that made it, and
    under it that operation's inputs. (`to_dot` gives it in Graphviz's language, for any DOT viewer.)
    """),
    code("""
    viz.draw_graph(L)
    """),
    code("""
    from minitransformer.autograd import to_text

    print(to_text(L))
    """),
    md(r"""
    ## 3. Backward, one node at a time

    Each primitive knows one thing about derivatives: given the adjoint of its output, $\bar y$, its
    `backward` returns the adjoint of each input, $\bar y$ times the local derivative. For arrays, "times
    the local derivative" is a vector-Jacobian product, of the input's shape, as the table below shows.
    Write three of them yourself first.

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
    **Check**, by the definition of the derivative (section 6 explains it): with $L = \langle \bar y, y \rangle$,
    so that $\partial L / \partial y = \bar y$, nudge each input element by $\pm\epsilon$ and watch $L$.
    `mt.autograd.numerical_grad` does that with the library's forward passes only, no `backward()`; your
    adjoints must agree with it.
    """),
    code("""
    from minitransformer.autograd import numerical_grad


    def by_differences(fn, arrays, y_bar):
        \"\"\"The gradient of <y_bar, fn(*arrays)> with respect to each array, by central differences.\"\"\"
        tensors = [mt.tensor(arr) for arr in arrays]                       # float64, as the arrays
        return [numerical_grad(fn, tensors, [y_bar], i, 1e-6) for i in range(len(tensors))]

    num_a, num_b = by_differences(lambda a, b: a * b, (a, b), y_bar)
    num_A, num_B = by_differences(lambda A, B: A @ B, (A, B), Y_bar)
    (num_x,) = by_differences(lambda x: x.sum(axis=0), (x,), s_bar)
    for name, mine, num in (("a_bar", a_bar, num_a), ("b_bar", b_bar, num_b), ("A_bar", A_bar, num_A),
                            ("B_bar", B_bar, num_B), ("x_bar", x_bar, num_x)):
        np.testing.assert_allclose(mine, num, rtol=1e-6, atol=1e-8, err_msg=name)
    print("all five agree with central differences of the forward")
    """),
    md(r"""
    `backward()` applies such rules over a whole graph, in this order: sort the nodes so that every
    node comes after its inputs (a *topological order*), then go through it **backwards**, so that a
    node's adjoint is complete (all its users have sent their share) before it is passed on, as the
    table of section 1 does. Here are those steps written out with what the graph records:
    `grad_fn.inputs`, the operation's inputs, and each primitive's `grad_fn.backward(adjoint)`, which returns
    one gradient per input. A leaf is in `grad_fn.inputs` as itself, but the result of an operation is there as
    a *stand-in*: a node with its shape, dtype and `grad_fn`, without its values, so that an intermediate
    array nobody needs any more can be freed before `backward()`. Each tensor has one stand-in, shared by
    every operation that uses it, so the `id` of a node in `grad_fn.inputs` still names one node of the graph.
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

    def backward_by_hand(root):
        \"\"\"Every node's adjoint, keyed by id(node): a result of an operation has no name unless given one.\"\"\"
        adjoint, node_of = {id(root): np.float32(1.0)}, {id(root): root}   # dL/dL = 1
        for node in reversed(topological_order(root)):        # L first, then d, then e
            fn = node.grad_fn
            grads = fn.backward(adjoint[id(node)])            # the local chain rule of this operation
            for x, g in zip(fn.inputs, grads):
                adjoint[id(x)] = adjoint.get(id(x), 0) + g    # "+=": a node used twice gets both shares
                node_of[id(x)] = x
                print(f"{node.name} = {fn}({', '.join(str(i.name) for i in fn.inputs)}):  sends {g:5g} to {x.name}")
        print("adjoints:", ", ".join(f"{node_of[k].name} {float(v):g}" for k, v in adjoint.items()))
        return adjoint

    a, b, c, f = inputs()
    e, d, L = expression(a, b, c, f)
    adjoint = backward_by_hand(L)
    print("L.grad_fn.inputs:", L.grad_fn.inputs)          # d's stand-in, and the leaf f itself
    print("d's adjoint:", adjoint[id(L.grad_fn.inputs[0])], "  id(d) in adjoint:", id(d) in adjoint)
    """),
    md(r"""
    The same numbers as the hand-computed table. The loop keys adjoints by `id`, not by name: a result
    of an operation has no name unless given one (in section 5's $x \cdot x + x$, neither $x \cdot x$ nor
    the sum has one). The `id` is the node's, as `grad_fn.inputs` holds it: for a leaf the tensor itself
    (`adjoint[id(a)]`), for an intermediate result its stand-in, so `adjoint[id(d)]` is a `KeyError` and
    $\bar d$ is `adjoint[id(L.grad_fn.inputs[0])]`.

    This loop is the algorithm, written for this graph of numbers; it fails on others. The engine keeps it
    as `_run_backward_reference` in `autograd/engine.py` (about 20 lines, the loop to read next), which
    differs where a graph needs it:

    - it sorts the graph with a stack of its own, not by recursion: `topological_order` above calls itself
      once per node of a path, so on a chain of 1,500 operations it passes Python's recursion limit (1,000
      by default) and raises `RecursionError`, where `backward()` goes through 100,000;
    - it skips the inputs that get no gradient: a Python number (`x * 3.0` has `3.0` among its inputs, and
      `visit(3.0)` fails: a float has no `grad_fn`), and a tensor without `requires_grad`, for which
      `backward` returns `None` (here `0 + None`, a `TypeError`);
    - it sums the gradient of a broadcast input back to the input's shape (section 5);
    - it prints nothing: the print above formats each gradient as one number, which fails for an array
      (section 7's graph).

    The one `backward()` runs, `_run_backward` beside it, also frees the graph as it goes, checks what each
    `backward` returns and adds into gradient arrays in place where no one else holds them; a test checks
    that the two agree.

    ## 4. `backward()`, and `retain_grad()` to see inside

    After `L.backward()`, every leaf with `requires_grad=True` holds its gradient in `.grad`. Intermediate
    tensors pass their gradient on and keep nothing, unless asked with `retain_grad()`.
    """),
    code("""
    a, b, c, f = inputs()
    e, d, L = expression(a, b, c, f)
    for t in (e, d, L):
        t.retain_grad()
    L.backward(retain_graph=True)  # keep the graph (backward() frees it), to draw it below
    for t in (L, d, e, f, c, a, b):
        print(f"dL/d{t.name} = {t.grad.item():5g}")
    """),
    md(r"""
    Section 2's picture again, after `backward()`, with `values=True`: each tensor shows its value
    (`data`) and its gradient (`grad`), as micrograd's `draw_dot` does (a tensor of more than 4 elements
    shows its shape only). `retain_graph=True` kept the graph and `retain_grad()` the gradients of
    $e, d, L$. Read each `grad` as $\partial L / \partial(\text{that node})$: how fast $L$ moves when that
    node alone moves, the adjoint of section 1's table.
    """),
    code("""
    viz.draw_graph(L, values=True)
    """),
    md(r"""
    `.grad` accumulates: each `backward()` *adds* its gradients to what the leaves hold, so a second
    `backward()` through the retained graph doubles them. Reset it before the next pass: `a.grad = None` for
    one tensor, `model.zero_grad()` or `optimizer.zero_grad()` for every parameter (as a training step does first).
    """),
    code("""
    print("a.grad after one backward():", a.grad.item())
    L.backward()                                   # the graph was retained: a second pass, added to a.grad
    print("after a second backward(): ", a.grad.item())
    a.grad = None                                  # reset
    print("after a.grad = None:       ", a.grad)
    """),
    md(r"""
    ## 5. A node used twice: gradients add up

    For $y = x \cdot x + x$, $x$ feeds two operations, so its adjoint has two terms:
    $\bar x = \bar y\,(x + x) + \bar y \cdot 1 = (2x + 1)\,\bar y$, which is $7$ at $x = 3$ with $\bar y = 1$.
    The engine adds them (`+=`, as micrograd does); assigning instead of adding would lose one and give a
    wrong answer.

    The same kind of sum also happens *inside* one operation: in $XW$, $W$ meets every row of $X$, so
    $\bar W = X^\top \bar Y$ adds one contribution per row (here $\bar Y$ is all ones, so $\bar W$ is the
    column sums of $X$). MatMul's backward computes that sum in one product; the engine's `+=` is not involved.

    A third kind of sum comes from broadcasting. In $x + b$ with $x$ of shape $(4, 3)$ and $b$ of shape
    $(3,)$, $b$ is added to each of the 4 rows, so $\bar b$ is the sum of the 4 rows of $\bar y$: with $L$ the
    sum of every entry, $\bar b = (4, 4, 4)$. Add's `backward` does not do that sum: it returns $\bar y$, of
    shape $(4, 3)$, for both inputs, and the engine sums it back to $b$'s shape (`unbroadcast` in
    `autograd/engine.py`: over the leading axes broadcasting added, and over the axes where the input had
    size 1). That is done once, by the engine, for every operation: no `backward` (nor yours in exercise A1)
    deals with broadcasting.
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

    x, b = mt.ones(4, 3, requires_grad=True), mt.tensor([0.1, 0.2, 0.3], requires_grad=True)   # (4, 3), (3,)
    (x + b).sum().backward()                                       # Add's backward returns (4, 3) for both
    print("b.grad =", b.grad.numpy(), b.grad.shape, "  the engine summed the 4 rows")
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
    **Check** against central differences of the same expression, as after the first exercise
    ($L = \langle 1, \tanh(XW) \rangle$):
    """),
    code("""
    num_X, num_W = by_differences(lambda X, W: (X @ W).tanh(), (X_np, W_np), np.ones((2, 4)))
    np.testing.assert_allclose(X_bar, num_X, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(W_bar, num_W, rtol=1e-6, atol=1e-8)
    print("X_bar and W_bar agree with central differences of the forward")
    """),
    md(r"""
    ## 6. gradcheck: finite differences as the referee

    A hand-written derivative can be wrong. The referee is the definition of the derivative itself: nudge
    one input element by $\pm\epsilon$ and watch the output,

    $$ \frac{\partial s}{\partial x_i} \approx \frac{s(x + \epsilon e_i) - s(x - \epsilon e_i)}{2\epsilon}, $$

    where $e_i$ is 1 in element $i$ and 0 elsewhere: only $x_i$ moves.

    `mt.gradcheck(fn, *inputs)` compares `backward()` with this central difference for every element of
    every input (a one-element output, a loss, is checked as it is, so a failure gives its derivatives; for a
    larger output it checks $s = \langle v, f(x)\rangle$ with a random $v$, and says so when it fails). It
    refuses float32 inputs (a `TypeError`): in float32 the difference quotient itself is only good to about
    $10^{-3}$.
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
    is one written in this notebook, the logistic sigmoid. (The library's `x.sigmoid()` is no primitive: it
    composes `where`, `exp` and `/` in a form whose exponent is never positive. Composed as written below,
    `1 / (1 + (-x).exp())`, its $e^{-x}$ is inf at $x = -100$ in float32 and the gradient through it NaN. This
    primitive's $e^{-x}$ overflows there too, and NumPy warns, but its backward reads only $y = 0$: the gradient
    $y(1 - y) = 0$ is right.)

    $$ \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \frac{d\sigma}{dx} = \sigma(x)\,\bigl(1 - \sigma(x)\bigr),
    \qquad \bar x = \bar y\, y\,(1 - y). $$

    `forward` receives the arrays and computes with `self.xp`, the backend's array namespace (so the same
    lines run on NumPy and on CuPy), and saves what `backward` will need. `backward` gets $\bar y$ and
    returns one gradient per input. `float_only = True` says that the operation needs floating-point
    input: $\sigma(1)$ is no integer, so an integer tensor is refused with a `TypeError` (without it, NumPy
    would silently make a float64 result of int64 input, and another backend raise an error of its own).
    In the library every operation whose result is not an integer for integer input (a division, `exp`,
    `log`, a mean, and the fused softmax, layer norm, GELU and losses of `autograd/fused.py`) sets it;
    `mt.Function`'s docstring lists the other class attributes.
    """),
    code("""
    class Sigmoid(mt.Function):
        r\"\"\"y = 1 / (1 + e^{-x});  dL/dx = dL/dy * y * (1 - y).\"\"\"
        float_only = True                            # sigma(1) is no integer: int input refused, not made float64

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
    try:
        sigmoid(mt.tensor([1, 2]))                   # int64
    except TypeError as err:
        print("TypeError:", err)
    """),
    md(r"""
    And what gradcheck says when the derivative is wrong: here the backward forgets the factor $y$. Checked on
    a sum (one number, as a loss is), the error names the input, the element, and both derivatives: it got
    $1 - y$ where the central difference says $y(1 - y)$, a ratio of $1/y$.
    """),
    code("""
    class WrongSigmoid(Sigmoid):
        def backward(self, grad):
            return (grad * (1.0 - self.y),)      # forgot a factor y

    try:
        mt.gradcheck(lambda t: WrongSigmoid.apply(t).sum(), x64)
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
    3. In `backward_by_hand` of section 3, replace `reversed(topological_order(root))` by
       `topological_order(root)`. On section 1's $L$ it stops at the first node: why has that node no adjoint
       yet? Now start every adjoint at 0 (`adjoint.get(id(node), 0)`) and try it on $y = x\cdot x + x$ at
       $x = 3$ (`backward_by_hand(y)[id(x)]`): which adjoint comes out wrong, and why must a node wait until
       every node that uses it has sent its share?
    4. Make gradcheck pass *wrongly*: find an input at which `WrongSigmoid` agrees with the central
       difference. What does that say about choosing test inputs?
    5. Broadcasting's backward (section 5): predict `b.grad`, its shape and values, for `(x + b).sum()` with
       `x` of shape `(4, 3)` and `b` of shape `(1, 3)`, then `(4, 1)`, then `()`; check. Then write an
       `AddBias` `Function` (`forward(x, b)` returns `x + b`) whose `backward` returns for `b` the transpose
       of $\bar y$, of shape `(3, 4)`: what does the engine say, and why does it refuse that gradient rather
       than sum it to `(3,)`?
    """),
]
