"""The computation graph behind a tensor: as data, as an indented tree of text, and as Graphviz DOT text
(pictures: ``viz.draw_graph``).

With ``values=True`` each small tensor (at most ``MAX_SHOWN`` = 4 elements) is labelled with its values and,
where ``backward()`` set it, its ``.grad``, to 4 significant digits, as micrograd's ``draw_dot`` labels each node
``data | grad``; a larger tensor keeps its shape only. After ``backward(retain_graph=True)`` the graph is still
there to be drawn with its gradients (a plain ``backward()`` frees it). Only leaves and the tensors that called
``retain_grad()`` keep a ``.grad``, as in PyTorch; an intermediate result that no variable holds any more has
left its shape in the graph and not its values, and says ``(values freed)``.
"""

from __future__ import annotations

from .engine import Tensor, _result

__all__ = ["graph", "to_dot", "to_text"]

#: the most elements a tensor may have to be labelled with its values (and gradient) under ``values=True``
MAX_SHOWN = 4


def _label(t: Tensor) -> str:
    name = f"{t.name} " if t.name else ""
    return f"{name}{t.shape}"


def _compact(array) -> str:
    """The values of ``array`` to 4 significant digits, nested as its axes: ``2``, ``[0.5, -1]``, ``[[1, 2], [3, 4]]``
    (a bool as ``True``)."""
    def fmt(v):
        if isinstance(v, list):
            return "[" + ", ".join(map(fmt, v)) + "]"
        return str(v) if isinstance(v, bool) else f"{v:.4g}"

    return fmt(array.tolist())


def _values(node: Tensor) -> tuple[str, ...]:
    """The lines ``values=True`` adds to a tensor's label: ``data ...`` and, where set, ``grad ...``.

    ``node`` is the graph's node: a leaf itself, or the stand-in of a result, through which the result is
    reached while it lives. None for more than ``MAX_SHOWN`` = 4 elements (the shape says enough).
    """
    if node.size > MAX_SHOWN:
        return ()
    t = _result(node)
    if t is None:
        return ("(values freed)",)
    lines = (f"data {_compact(t.numpy())}",)
    return lines + ((f"grad {_compact(t._grad.numpy())}",) if t._grad is not None else ())  # (.grad would warn)


def _escaped(text: str) -> str:
    """``text`` inside a DOT string: a backslash or a double quote would end or change it."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def graph(root: Tensor, values: bool = False) -> tuple[list[dict], list[tuple[int, int]]]:
    """Nodes and edges of the graph that made ``root`` (call before ``backward()``, which frees it, or after
    ``backward(retain_graph=True)``).

    Parameters
    ----------
    root : Tensor
        The result whose graph to walk (usually the loss).
    values : bool
        Fill each tensor's ``values`` (below); by default they are left empty.

    Returns
    -------
    nodes : list of dict
        Each with ``id``, ``kind`` (``"tensor"``, ``"op"``, or ``"const"`` for a Python number an
        operation was given), ``label`` (a tensor's name and shape, an operation's name) and ``note``
        (``"leaf, requires_grad"`` for parameters and inputs that want a gradient, ``"leaf"`` for other
        tensors no recorded operation made, such as constant inputs; empty otherwise) and ``values`` (a tuple of
        lines: with ``values=True``, a tensor of at most ``MAX_SHOWN`` = 4 elements has ``"data ..."`` and, where
        ``.grad`` is set, ``"grad ..."``, to 4 significant digits; empty otherwise).
    edges : list of tuple
        ``(from_id, to_id)``, in the direction data flows.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.autograd.graph import graph
    >>> x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> nodes, edges = graph((x * 3.0).sum())
    >>> [n["label"] for n in nodes]
    ['()', 'Sum', '(2,)', 'Mul', '3.0', 'x (2,)']
    >>> len(edges)
    5
    >>> y = (x * 3.0).sum()
    >>> y.backward(retain_graph=True)
    >>> [n["values"] for n in graph(y, values=True)[0] if n["kind"] == "tensor"]  # y, x * 3.0 (gone), x
    [('data 9',), ('(values freed)',), ('data [1, 2]', 'grad [3, 3]')]
    """
    if not isinstance(root, Tensor):  # graph, to_dot, to_text and viz.draw_graph all come here
        raise TypeError(f"graph of operations: root must be the Tensor whose graph to walk (usually the loss), "
                        f"got {type(root).__name__}")
    nodes, edges, seen = [], [], set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        leaf = "leaf, requires_grad" if t.is_leaf and t.requires_grad else ("leaf" if t.is_leaf else "")
        nodes.append({"id": id(t), "kind": "tensor", "label": _label(t), "note": leaf,
                      "values": _values(t) if values else ()})
        fn = t._ctx
        if fn is None:
            continue
        nodes.append({"id": id(fn), "kind": "op", "label": repr(fn), "note": "", "values": ()})
        edges.append((id(fn), id(t)))
        for x in fn.inputs:
            if isinstance(x, Tensor):
                edges.append((id(x), id(fn)))
                stack.append(x)
            else:
                const = ("const", id(fn), repr(x))
                nodes.append({"id": const, "kind": "const", "label": repr(x), "note": "", "values": ()})
                edges.append((const, id(fn)))
    return nodes, edges


def to_dot(root: Tensor, values: bool = False) -> str:
    """The graph of ``root`` in Graphviz's DOT language (paste into any DOT viewer).

    Tensors are boxes, operations ellipses, Python numbers plain text; edges run as data flows
    (left to right). The nodes and edges are those of :func:`graph`; quotes and backslashes in a
    name are escaped, so any name gives valid DOT. With ``values=True`` a tensor of at most
    ``MAX_SHOWN`` = 4 elements has its ``data`` and ``grad`` on lines of their own, as :func:`graph` gives them.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> print(to_dot((x * 3.0).sum()).splitlines()[0])
    digraph {
    """
    nodes, edges = graph(root, values)
    ids = {n["id"]: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["digraph {", "  rankdir=LR;"]
    for n in nodes:
        shape = {"tensor": "box", "op": "ellipse", "const": "plaintext"}[n["kind"]]
        label = "\\n".join(_escaped(line) for line in (n["label"], n["note"], *n["values"]) if line)
        lines.append(f'  {ids[n["id"]]} [label="{label}", shape={shape}];')
    for a, b in edges:
        lines.append(f"  {ids[a]} -> {ids[b]};")
    lines.append("}")
    return "\n".join(lines)


def to_text(root: Tensor, values: bool = False) -> str:
    """The graph of ``root`` as an indented tree, from the result back to the leaves: the way ``backward()``
    walks it. One line per tensor, ``<-`` the operation that made it; below it, that operation's inputs in
    order. A tensor an operation made and two use is written out under the first; the second's line says
    ``(above)``. A leaf is written under each use. With ``values=True`` a tensor of at most ``MAX_SHOWN`` = 4
    elements has its ``data`` and ``grad`` after its shape, as :func:`graph` gives them.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> h = (x * 3.0).tanh()
    >>> print(to_text((h * h).sum()))
    ()  <- Sum
    └── (2,)  <- Mul
        ├── (2,)  <- Tanh
        │   └── (2,)  <- Mul
        │       ├── x (2,)  leaf, requires_grad
        │       └── 3.0
        └── (2,)  (above)
    >>> sq = (x * x).retain_grad()   # held by a variable, and keeping its .grad
    >>> y = sq.sum()
    >>> y.backward(retain_graph=True)
    >>> print(to_text(y, values=True))
    ()  data 5  <- Sum
    └── (2,)  data [1, 4]  grad [1, 1]  <- Mul
        ├── x (2,)  data [1, 2]  grad [2, 4]  leaf, requires_grad
        └── x (2,)  data [1, 2]  grad [2, 4]  leaf, requires_grad
    """
    nodes, edges = graph(root, values)
    node = {n["id"]: n for n in nodes}
    made_by, inputs = {}, {}
    for a, b in edges:  # graph() lists an operation's inputs in order
        if node[b]["kind"] == "op":
            inputs.setdefault(b, []).append(a)
        else:
            made_by[b] = a
    lines, shown = [], set()
    stack = [(id(root), "", "")]  # (node, the start of its line, the start of its inputs' lines)
    while stack:  # a loop, not recursion: a graph can be thousands of operations deep
        i, first, rest = stack.pop()
        n = node[i]
        if i in shown and i in made_by:
            lines.append(f"{first}{n['label']}  (above)")
            continue
        shown.add(i)
        tail = f"  <- {node[made_by[i]]['label']}" if i in made_by else (f"  {n['note']}" if n["note"] else "")
        lines.append(f"{first}{'  '.join((n['label'], *n['values']))}{tail}")
        args = inputs.get(made_by.get(i), [])
        for k, arg in reversed(list(enumerate(args))):
            last = k == len(args) - 1
            stack.append((arg, rest + ("└── " if last else "├── "), rest + ("    " if last else "│   ")))
    return "\n".join(lines)
