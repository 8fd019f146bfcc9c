"""The computation graph behind a tensor, drawn: what ``backward()`` will walk through, in reverse.

Tensors are boxes (with their shape), operations are ellipses, Python numbers that entered an
operation are plain text. Data flows left to right: leaves on the left, the result on the right;
``backward()`` visits the same arrows from right to left. The nodes and edges come from
:func:`minitransformer.autograd.graph` (``to_dot`` gives the same graph as Graphviz text). With
``values=True`` small tensors also show their values and gradients, as micrograd's ``draw_dot`` does.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from ..autograd.graph import graph

__all__ = ["draw_graph"]

FONT_SIZE = 9
#: width and height of one character of the monospace font, in inches (0.6 em in DejaVu Sans Mono)
CHAR_W, LINE_H = 0.602 * FONT_SIZE / 72, 1.25 * FONT_SIZE / 72
PAD = 0.3 * FONT_SIZE / 72  # the bbox padding, in inches (boxstyle "...,pad=0.3" is in font sizes)
COLUMN_GAP, ROW_GAP, MARGIN = 0.55, 0.3, 0.15  # inches: room for arrows between columns, between rows

STYLE = {
    "tensor": dict(boxstyle="round,pad=0.3", fc="white", ec="0.2"),
    "leaf": dict(boxstyle="round,pad=0.3", fc="#d9f2d9", ec="0.2"),  # a leaf that will receive .grad
    "op": dict(boxstyle="ellipse,pad=0.3", fc="#dbe8f7", ec="0.2"),
    "const": dict(boxstyle="square,pad=0.3", fc="none", ec="none"),  # invisible: arrows still stop at its edge
}


def _layers(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Column of every node: the longest path from a leaf; then sources move next to their first use.

    Leaves (inputs, parameters, numbers) would otherwise all stand in column 0 with long arrows
    crossing the picture; placed one column before their first consumer they sit beside it.
    """
    preds = [[] for _ in range(n)]
    succs = [[] for _ in range(n)]
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    layer = [0] * n
    waiting = [len(p) for p in preds]
    ready = [i for i in range(n) if waiting[i] == 0]
    while ready:  # Kahn's topological order: a node's layer is final when all its inputs are placed
        i = ready.pop()
        for j in succs[i]:
            layer[j] = max(layer[j], layer[i] + 1)
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    for i in range(n):
        if not preds[i] and succs[i]:
            layer[i] = min(layer[j] for j in succs[i]) - 1
    return layer


def _order(columns: list[list[int]], edges: list[tuple[int, int]], root: int, sweeps: int = 4) -> list[list[int]]:
    """Order each column by the mean height of its neighbours (the barycenter heuristic), to uncross arrows.

    The first order is that of a walk from ``root`` through the inputs in argument order, so that
    ``x * w`` draws ``x`` above ``w``.
    """
    preds, succs = {}, {}
    for a, b in edges:  # graph() lists an operation's inputs in argument order
        preds.setdefault(b, []).append(a)
        succs.setdefault(a, []).append(b)
    rank, stack = {}, [root]
    while stack:
        i = stack.pop()
        if i not in rank:
            rank[i] = len(rank)
            stack.extend(reversed(preds.get(i, [])))
    columns = [sorted(col, key=lambda i: rank.get(i, len(rank))) for col in columns]

    def heights(cols):
        return {i: (len(col) - 1) / 2 - r for col in cols for r, i in enumerate(col)}

    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        neighbours = preds if forward else succs
        indices = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        for c in indices:
            y = heights(columns)
            key = {i: sum(y[j] for j in neighbours[i]) / len(neighbours[i]) if neighbours.get(i) else y[i]
                   for i in columns[c]}
            columns[c] = sorted(columns[c], key=lambda i: -key[i])  # stable: ties keep their order
    return columns


def _text(node: dict) -> str:
    return "\n".join(line for line in (node["label"], node["note"], *node["values"]) if line)


def box_size(text: str, ellipse: bool = False) -> tuple[float, float]:
    """Width and height in inches of ``text`` drawn by :func:`draw_box` (an ellipse needs about sqrt(2) more)."""
    lines = text.split("\n")
    w = max(len(line) for line in lines) * CHAR_W + 2 * PAD
    h = len(lines) * LINE_H + 2 * PAD
    return (w * 1.42, h * 1.42) if ellipse else (w, h)


def _size(node: dict) -> tuple[float, float]:
    """Width and height of the node's drawn box in inches."""
    return box_size(_text(node), ellipse=node["kind"] == "op")


def draw_box(ax, xy: tuple[float, float], text: str, bbox: dict, color="black", **kwargs):
    """``text`` centred at ``xy`` (inches) in a frame of style ``bbox`` (one of :data:`STYLE`); returns the frame,
    at which arrows stop. The frame is :func:`box_size` large."""
    drawn = ax.text(*xy, text, ha="center", va="center", fontsize=FONT_SIZE, family="monospace", color=color,
                    bbox=bbox, zorder=3, **kwargs)
    return drawn.get_bbox_patch()


def draw_arrow(ax, a, b, box_a=None, box_b=None, head: bool = True, rad: float = 0.0, **kwargs) -> FancyArrowPatch:
    """An arrow from ``a`` to ``b`` (inches) that stops at the frames ``box_a`` and ``box_b`` where given; ``rad``
    bends it (arc3). Drawn over the texts: their frames, which clip the arrow's ends, are placed when drawn."""
    return ax.add_patch(FancyArrowPatch(
        a, b, arrowstyle="-|>" if head else "-", mutation_scale=10, color="0.3", lw=0.9, patchA=box_a,
        patchB=box_b, shrinkA=1 if box_a is not None else 0, shrinkB=1 if box_b is not None else 0,
        connectionstyle=f"arc3,rad={rad}", zorder=4, **kwargs,
    ))


def _routes(layer: list[int], links: list[tuple[int, int]]):
    """Split every arrow that skips columns into steps through invisible waypoints, one per column skipped.

    The waypoints take a place in their column like a node, so the ordering keeps them clear of
    the boxes and the arrow never runs through one. Returns ``(layer, steps, routes)``: ``layer``
    extended with the waypoints, the one-column ``steps``, and for each link its list of node indices.
    """
    layer = list(layer)
    steps, routes = [], []
    for a, b in links:
        route = [a]
        for column in range(layer[a] + 1, layer[b]):
            layer.append(column)
            route.append(len(layer) - 1)
        route.append(b)
        steps.extend(zip(route, route[1:]))
        routes.append(route)
    return layer, steps, routes


def draw_graph(root, max_nodes: int = 300, values: bool = False) -> Figure:
    """Draw the graph of operations that made ``root`` (call it before ``backward()``, which frees the graph, or
    after ``backward(retain_graph=True)``, which keeps it).

    Parameters
    ----------
    root : Tensor
        The result, typically a loss. Leaves are drawn green when they require grad.
    max_nodes : int
        Refuse graphs larger than this (a picture of thousands of nodes is unreadable; use
        :func:`minitransformer.autograd.to_dot` and a Graphviz viewer instead).
    values : bool
        Label each tensor of at most 4 elements (``autograd.graph.MAX_SHOWN``) with its values, ``data ...``,
        and, where ``backward()`` set it, its gradient, ``grad ...`` (4 significant digits), like micrograd's
        ``draw_dot``; larger tensors show their shape only. Only leaves and tensors that called
        ``retain_grad()`` keep a ``.grad``; an intermediate result no variable holds says ``(values freed)``.

    Returns
    -------
    matplotlib.figure.Figure
        One text label per node of :func:`~minitransformer.autograd.graph` (``fig.axes[0].texts``),
        sized so that nothing overlaps; save it with ``fig.savefig("graph.png")``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    >>> fig = draw_graph((x * 3.0).sum())
    >>> len(fig.axes[0].texts)   # x, 3.0, Mul, x * 3.0, Sum, the sum
    6
    >>> y = (x * x).sum()
    >>> y.backward(retain_graph=True)
    >>> print(draw_graph(y, values=True).axes[0].texts[-1].get_text())   # the leaf x
    x (2,)
    leaf, requires_grad
    data [1, 2]
    grad [2, 4]
    """
    nodes, edges = graph(root, values)
    if len(nodes) > max_nodes:
        raise ValueError(
            f"draw_graph: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes} can show readably; "
            "pass a larger max_nodes, or use minitransformer.autograd.to_dot(root) with a Graphviz viewer"
        )
    n = len(nodes)
    index = {node["id"]: k for k, node in enumerate(nodes)}
    links = [(index[a], index[b]) for a, b in edges]
    layer, steps, routes = _routes(_layers(n, links), links)
    columns = [[] for _ in range(max(layer) + 1)]
    for k in range(len(layer)):
        columns[layer[k]].append(k)
    columns = _order(columns, steps, index[id(root)])

    # geometry in inches: the axes fill the figure and its data coordinates are inches
    sizes = [_size(node) for node in nodes] + [(0.0, 0.12)] * (len(layer) - n)  # waypoints: a thin slot
    col_w = [max(0.2, *(sizes[k][0] for k in col)) for col in columns]
    col_h = [sum(sizes[k][1] for k in col) + ROW_GAP * (len(col) - 1) for col in columns]
    width = sum(col_w) + COLUMN_GAP * (len(columns) - 1) + 2 * MARGIN
    height = max(col_h) + 2 * MARGIN
    centre, x = {}, MARGIN
    for c, col in enumerate(columns):
        top = height / 2 + col_h[c] / 2  # each column centred vertically
        for k in col:
            centre[k] = (x + col_w[c] / 2, top - sizes[k][1] / 2)
            top -= sizes[k][1] + ROW_GAP
        x += col_w[c] + COLUMN_GAP

    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    boxes = {}
    for k, node in enumerate(nodes):
        kind = "leaf" if node["kind"] == "tensor" and "requires_grad" in node["note"] else node["kind"]
        bbox = dict(STYLE[kind])
        if k == index[id(root)]:
            bbox["lw"] = 2.0  # the result
        boxes[k] = draw_box(ax, centre[k], _text(node), bbox, color="0.35" if kind == "const" else "black")
    drawn = {}
    for route in routes:
        repeat = drawn[route[0], route[-1]] = drawn.get((route[0], route[-1]), -1) + 1
        bend = 0.25 * repeat if len(route) == 2 else 0.0  # x * x: the second arrow curves, to be seen
        for i, (a, b) in enumerate(zip(route, route[1:])):
            last = i == len(route) - 2
            draw_arrow(ax, centre[a], centre[b], boxes.get(a), boxes.get(b), head=last, rad=bend)
    return fig
