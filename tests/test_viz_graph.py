"""The graph picture (``viz.draw_graph``) and its text forms (``autograd.to_dot``, ``autograd.to_text``) show every
node and edge."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import ArrowStyle
from matplotlib.path import Path

import minitransformer as mt
from minitransformer.autograd import graph, to_dot, to_text
from minitransformer.viz import draw_graph
from minitransformer.viz.graph import _size


def _expression():
    """((x * w).sum() + b).tanh(): 11 nodes, counted by hand below."""
    x = mt.tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    w = mt.tensor([0.3, 0.2, -0.1], requires_grad=True, name="w")
    b = mt.tensor(0.1, requires_grad=True, name="b")
    return ((x * w).sum() + b).tanh()


def _mlp_loss():
    """A small network's loss: a wider graph, with constants, a repeated input and arrows that skip columns."""
    X = mt.randn(4, 2)
    W1 = mt.randn(2, 8, requires_grad=True)
    b1 = mt.zeros(8, requires_grad=True)
    W2 = mt.randn(8, 1, requires_grad=True)
    h = (X @ W1 + b1).tanh()
    p = h @ W2
    return ((p - 1.0) ** 2).mean() + (W1 * W1).sum() * 0.01 + h.mean()


def _label(node):
    return node["label"] + (f"\n{node['note']}" if node["note"] else "")


def _picture(y, values=False):
    """Draw y's graph as a reader sees it, in inches (the axes' data coordinates are inches).

    Returns the figure, its texts, their drawn boxes, each text's column (the distinct x of the
    texts, left to right), the columns' x, and the arrow pieces as (start, control, end, has_head):
    an arc3 path is a quadratic curve, straight when its control point lies on the chord.
    """
    fig = draw_graph(y, values=values)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = fig.axes[0].texts
    inches = fig.dpi_scale_trans.inverted()
    boxes = [t.get_bbox_patch().get_window_extent(renderer).transformed(inches) for t in texts]
    xs = sorted({round(t.get_position()[0], 6) for t in texts})
    column = [xs.index(round(t.get_position()[0], 6)) for t in texts]
    pieces = []
    for patch in fig.axes[0].patches:
        path = patch.get_path()
        curve, *rest = np.split(np.arange(len(path.codes)), np.flatnonzero(path.codes == Path.MOVETO)[1:])
        assert list(path.codes[curve]) == [Path.MOVETO, Path.CURVE3, Path.CURVE3], "an arc3 arrow's curve"
        start, control, end = path.vertices[curve]
        head = isinstance(patch.get_arrowstyle(), ArrowStyle.CurveFilledB)
        if head:  # the other sub-paths are the head: the end a reader sees is its tip, the point farthest out
            tip = np.concatenate([path.vertices[p][path.codes[p] != Path.CLOSEPOLY] for p in rest])
            end = tip[np.argmax(np.hypot(*(tip - start).T))]
        pieces.append((start, control, end, head))
    return fig, texts, boxes, column, xs, pieces


def _crossings(pieces):
    """Pairs of straight arrow pieces that cross each other (strictly: touching at a box is not crossing)."""
    def side(u, v, w):
        return np.sign((v[0] - u[0]) * (w[1] - u[1]) - (v[1] - u[1]) * (w[0] - u[0]))

    return sum(side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0
               for (a, _, b, _), (c, _, d, _) in itertools.combinations(pieces, 2))


def _curved(piece, tol=1e-3):
    start, control, end, _ = piece
    chord = end - start
    return abs(chord[0] * (control - start)[1] - chord[1] * (control - start)[0]) / np.hypot(*chord) > tol


def test_one_text_label_per_node():
    y = _expression()
    nodes, edges = graph(y)
    # by hand: tensors x, w, b, x*w, sum, sum+b, tanh (7) and ops Mul, Sum, Add, Tanh (4)
    assert len(nodes) == 11 and len(edges) == 10
    fig = draw_graph(y)
    assert isinstance(fig, Figure)
    texts = fig.axes[0].texts
    assert len(texts) == len(nodes)
    assert sorted(t.get_text() for t in texts) == sorted(_label(n) for n in nodes)


@pytest.mark.single_backend
@pytest.mark.parametrize("walk", [graph, to_dot, to_text, draw_graph])
def test_what_is_not_a_tensor_is_refused_by_name(walk):
    with pytest.raises(TypeError, match=r"graph of operations: root must be the Tensor .* got int"):
        walk(3)  # an AttributeError about _ctx before


@pytest.mark.single_backend
def test_constants_are_drawn_as_text():
    x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    nodes, _ = graph((x * 3.0).sum())
    fig = draw_graph((x * 3.0).sum())
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert len(labels) == len(nodes) == 6  # x, 3.0, Mul, x * 3.0, Sum, the sum
    const = next(t for t in fig.axes[0].texts if t.get_text() == "3.0")
    assert const.get_bbox_patch().get_edgecolor()[3] == 0  # no frame around a number
    # and printed grey, lighter than the black of the tensors' and operations' labels
    grey = to_rgb(const.get_color())
    assert grey[0] == grey[1] == grey[2] and 0 < grey[0] < 1
    assert all(to_rgb(t.get_color()) == (0, 0, 0) for t in fig.axes[0].texts if t is not const)


@pytest.mark.single_backend
def test_layout_flows_left_to_right_without_overlaps(tmp_path):
    """Every arrow points right; no two labels overlap; none is cut off by the figure's edge."""
    y = _mlp_loss()
    nodes, edges = graph(y)
    fig, texts, boxes, *_ = _picture(y)
    assert len(texts) == len(nodes)
    width, height = fig.get_size_inches()
    for i, a in enumerate(boxes):
        assert a.x0 >= 0 and a.y0 >= 0 and a.x1 <= width and a.y1 <= height, texts[i].get_text()
        for j in range(i + 1, len(boxes)):
            assert not a.overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    # texts were added in graph() order: each edge's source lies left of its target
    where = {n["id"]: t.get_position()[0] for n, t in zip(nodes, texts)}
    assert all(where[a] < where[b] for a, b in edges)
    path = tmp_path / "graph.png"
    fig.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.single_backend
def test_sources_stand_one_column_before_their_first_use_and_the_result_last():
    """Leaves and numbers sit beside the operation that first uses them (not all in column 0); the result is last."""
    y = _mlp_loss()
    nodes, edges = graph(y)
    _, _, _, column, xs, _ = _picture(y)
    col = {n["id"]: c for n, c in zip(nodes, column)}
    targets = {b for _, b in edges}
    sources = [n["id"] for n in nodes if n["id"] not in targets]
    assert len(sources) == 7  # X, W1, b1, W2, and the numbers 1.0, 2, 0.01
    for s in sources:
        assert col[s] == min(col[b] for a, b in edges if a == s) - 1, s
    assert col[id(y)] == len(xs) - 1 and column.count(len(xs) - 1) == 1


@pytest.mark.single_backend
def test_an_arrow_that_skips_k_columns_is_k_plus_1_pieces_and_one_head():
    """An arrow over k columns runs through k invisible waypoints: k + 1 straight pieces, each one column long,
    left to right; only the last piece, the one that reaches the box, has a head."""
    y = _mlp_loss()
    nodes, edges = graph(y)
    _, _, boxes, column, xs, pieces = _picture(y)
    col = {n["id"]: c for n, c in zip(nodes, column)}
    spans = [col[b] - col[a] for a, b in edges]
    assert max(spans) > 1  # the premise: some arrows skip columns
    assert len(pieces) == sum(spans)
    assert sum(head for *_, head in pieces) == len(edges)
    eps = 1e-6

    def at_box(point, tol=0.15):  # a head stops a point or two short of the box; a waypoint is far (0.3 in) from any
        return any(b.x0 - tol <= point[0] <= b.x1 + tol and b.y0 - tol <= point[1] <= b.y1 + tol for b in boxes)

    for start, _, end, head in pieces:
        c = max(k for k, x in enumerate(xs) if x <= start[0] + eps)  # the column the piece leaves from
        assert start[0] < end[0] <= xs[c + 1] + eps  # one column to the right, not beyond
        assert at_box(end) == head  # a head where the arrow reaches a box; none at a waypoint (in mid-air)
        # a waypoint stands on its column's axis, and the pieces meet there: the arrow is unbroken
        if not head:
            assert abs(end[0] - xs[c + 1]) < eps
        if not at_box(start):
            assert abs(start[0] - xs[c]) < eps


@pytest.mark.single_backend
def test_an_input_used_twice_gets_a_second_curved_arrow_and_all_others_are_straight():
    # x * x: two arrows from x into Mul; drawn straight both would lie on top of each other
    x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    *_, pieces = _picture((x * x).sum())
    assert len(pieces) == 5 and sum(map(_curved, pieces)) == 1  # x->Mul twice, Mul->x*x, ->Sum, ->sum
    # the small network: W1 * W1 is its one repeated edge; every other piece, waypoints' too, is straight
    y = _mlp_loss()
    _, edges = graph(y)
    *_, pieces = _picture(y)
    assert sum(map(_curved, pieces)) == len(edges) - len(set(edges)) == 1


@pytest.mark.single_backend
def test_an_operations_inputs_stand_top_to_bottom_in_argument_order():
    """The module's promise: ``x * w`` draws x above w (and ``w * x`` w above x)."""
    x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    w = mt.tensor([3.0, 4.0], requires_grad=True, name="w")
    h = x.tanh()
    h.name = "h"  # h * w: w, a leaf, stands in the column of h and must still come second
    cases = (((x * w).sum(), "x", "w"), ((w * x).sum(), "w", "x"), ((h * w).sum(), "h", "w"))
    for y, top, bottom in cases:
        fig = draw_graph(y)
        height = {t.get_text().split()[0]: t.get_position()[1] for t in fig.axes[0].texts}
        assert height[top] > height[bottom]


def _shared_product():
    a = mt.tensor([1.0, 2.0], requires_grad=True, name="a")
    b = mt.tensor([3.0, 4.0], requires_grad=True, name="b")
    s = a * b
    return (s.exp() * a) + (s.tanh() * b)


def _abcd():
    a, b, c, d = (mt.tensor([1.0, 2.0], requires_grad=True, name=n) for n in "abcd")
    return (a + b) * (a + (d * c))


def _twice_shared():
    a = mt.tensor([1.0, 2.0], requires_grad=True, name="a")
    b = mt.tensor([3.0, 4.0], requires_grad=True, name="b")
    u = a * b + b
    return (u * b) * u


def _bcd():
    b, c, d = (mt.tensor([1.0, 2.0], requires_grad=True, name=n) for n in "bcd")
    return ((b + c) + c) * (d + b)


@pytest.mark.single_backend
@pytest.mark.parametrize("make", [_shared_product, _abcd, _twice_shared, _bcd])
def test_the_barycenter_sweeps_uncross_every_arrow(make):
    """Graphs that can be drawn without crossings, but whose first order (a walk from the result, inputs in
    argument order) crosses one or two pairs of arrows where an input is used in two places (counted with
    _crossings on the unswept order): the sweeps must uncross them all."""
    *_, pieces = _picture(make())
    assert _crossings(pieces) == 0


@pytest.mark.single_backend
@pytest.mark.parametrize("make", [_expression, _mlp_loss, _shared_product])
def test_columns_are_centred_evenly_spaced_and_the_figure_hugs_them(make):
    """Each column's boxes are centred on the figure's middle line (for a column without waypoints, whose
    invisible slots would shift the visible boxes); the blank between adjacent columns is the same all along;
    the figure leaves no more than a small margin (0.3 in) around the boxes (above and below: where no
    waypoint takes the tallest column's room)."""
    y = make()
    nodes, edges = graph(y)
    fig, _, boxes, column, xs, pieces = _picture(y)
    width, height = fig.get_size_inches()
    with_waypoints = {round(end[0], 6) for _, _, end, head in pieces if not head}
    for c, x in enumerate(xs):
        mine = [b for b, k in zip(boxes, column) if k == c]
        if round(x, 6) not in with_waypoints:
            assert abs((max(b.y1 for b in mine) + min(b.y0 for b in mine)) / 2 - height / 2) < 0.02, c
    right = [max(b.x1 for b, k in zip(boxes, column) if k == c) for c in range(len(xs))]
    left = [min(b.x0 for b, k in zip(boxes, column) if k == c) for c in range(len(xs))]
    gaps = [left[c + 1] - right[c] for c in range(len(xs) - 1)]
    assert max(gaps) - min(gaps) < 0.08  # the drawn boxes are a few % wider than predicted
    assert 0 < left[0] < 0.3 and 0 < width - right[-1] < 0.3
    if not with_waypoints:
        assert 0 < min(b.y0 for b in boxes) < 0.3 and 0 < height - max(b.y1 for b in boxes) < 0.3


@pytest.mark.single_backend
def test_each_box_is_drawn_the_size_the_layout_reserves_for_it():
    """The layout places boxes by their predicted size (``_size``, in inches); the drawn box must match it
    within the font's rounding (25%), or boxes overlap or float far apart. Ellipses need about sqrt(2) more."""
    y = (_mlp_loss() * 3.0).sum()
    nodes, _ = graph(y)
    _, texts, boxes, *_ = _picture(y)
    kinds = set()
    for node, text, box in zip(nodes, texts, boxes):
        w, h = _size(node)
        assert 0.75 < box.width / w < 1.25 and 0.75 < box.height / h < 1.25, (text.get_text(), box, w, h)
        kinds.add(node["kind"])
    assert kinds == {"tensor", "op", "const"}


@pytest.mark.single_backend
def test_leaves_that_want_a_gradient_are_green_and_the_result_is_outlined_boldest():
    """The docstring: leaves are drawn green when they require grad (X, an input without, is not); the result
    has the thickest frame."""
    y = _mlp_loss()
    nodes, _ = graph(y)
    fig = draw_graph(y)
    for node, text in zip(nodes, fig.axes[0].texts):
        r, g, b = to_rgb(text.get_bbox_patch().get_facecolor())
        green = g > r + 0.05 and g > b + 0.05
        assert green == (node["note"] == "leaf, requires_grad"), text.get_text()
    widths = {n["id"]: t.get_bbox_patch().get_linewidth() for n, t in zip(nodes, fig.axes[0].texts)}
    assert all(widths[id(y)] > w for k, w in widths.items() if k != id(y))


@pytest.mark.single_backend
def test_a_freed_graph_draws_what_is_left():
    y = _expression()
    y.backward()  # frees the graph: at most the result and a trace of its last operation are left
    nodes, _ = graph(y)
    assert len(nodes) < 11
    assert len(draw_graph(y).axes[0].texts) == len(nodes)


@pytest.mark.single_backend
def test_too_large_a_graph_is_refused_with_the_count():
    y = _expression()
    with pytest.raises(ValueError, match=r"draw_graph: the graph has 11 nodes, more than max_nodes=5"):
        draw_graph(y, max_nodes=5)
    assert len(draw_graph(y, max_nodes=11).axes[0].texts) == 11  # as many as allowed: drawn
    # the default allows 300 nodes: a chain of 150 tanh has 1 + 2 * 150 = 301 (each adds an op and a tensor)
    x = mt.tensor([1.0], requires_grad=True, name="x")
    for _ in range(150):
        x = x.tanh()
    with pytest.raises(ValueError, match=r"the graph has 301 nodes, more than max_nodes=300 "):
        draw_graph(x)


def test_to_dot_has_one_line_per_node_and_edge():
    y = _mlp_loss()
    nodes, edges = graph(y)
    lines = to_dot(y).splitlines()
    assert lines[0] == "digraph {" and lines[-1] == "}"
    node_lines = [m for line in lines if (m := re.fullmatch(r'  (n\d+) \[label="[^"]+", shape=(\w+)\];', line))]
    edge_lines = [m for line in lines if (m := re.fullmatch(r"  (n\d+) -> (n\d+);", line))]
    assert len(node_lines) == len(nodes) and len(edge_lines) == len(edges)
    assert len(lines) == 3 + len(nodes) + len(edges)  # digraph {, rankdir, ..., }
    names = {m.group(1) for m in node_lines}
    assert len(names) == len(nodes)
    assert all(m.group(1) in names and m.group(2) in names for m in edge_lines)
    kinds = {"tensor": "box", "op": "ellipse", "const": "plaintext"}
    assert sorted(m.group(2) for m in node_lines) == sorted(kinds[n["kind"]] for n in nodes)


def test_to_dot_escapes_quotes_and_backslashes_in_names():
    # a name with a quote ended the DOT string early: label="a "quoted" (2,)" is not valid DOT
    x = mt.tensor([1.0, 2.0], requires_grad=True, name='a "quoted" \\ name')
    lines = to_dot((x * 3.0).sum()).splitlines()
    string = r'"((?:[^"\\]|\\.)*)"'  # a DOT string: anything but a bare quote or backslash, or an escaped character
    labels = [m.group(1) for line in lines if (m := re.fullmatch(rf"  n\d+ \[label={string}, shape=\w+\];", line))]
    assert len(labels) == 6
    assert r'a \"quoted\" \\ name (2,)\nleaf, requires_grad' in labels


def test_to_text_is_the_tree_backward_walks():
    y = _expression()
    y.name = "y"
    assert to_text(y) == (
        "y ()  <- Tanh\n"
        "└── ()  <- Add\n"
        "    ├── ()  <- Sum\n"
        "    │   └── (3,)  <- Mul\n"
        "    │       ├── x (3,)  leaf, requires_grad\n"
        "    │       └── w (3,)  leaf, requires_grad\n"
        "    └── b ()  leaf, requires_grad")
    # the inputs in the operation's order, a constant as its number, a leaf without gradient as "leaf"
    c = mt.tensor([2.0, 3.0], name="c")
    x = mt.tensor([1.0, 4.0], requires_grad=True, name="x")
    assert to_text(c - x * 0.5).splitlines() == [
        "(2,)  <- Sub", "├── c (2,)  leaf", "└── (2,)  <- Mul", "    ├── x (2,)  leaf, requires_grad", "    └── 0.5"]


def test_to_text_writes_each_input_of_each_operation_once():
    y = _mlp_loss()
    nodes, edges = graph(y)
    kind = {n["id"]: n["kind"] for n in nodes}
    lines = to_text(y).splitlines()
    uses = sum(kind[b] == "op" for _, b in edges)  # an arrow into an operation: one input, one line
    assert len(lines) == 1 + uses
    ops = [n["label"] for n in nodes if n["kind"] == "op"]
    assert sorted(m.group(1) for line in lines if (m := re.search(r"  <- (\w+)$", line))) == sorted(ops)
    # h feeds both the product h @ W2 and h.mean(): expanded under the first, "(above)" under the second
    assert sum(line.endswith("(4, 8)  <- Tanh") for line in lines) == 1
    assert [line for line in lines if line.endswith("(above)")] == ["    └── (4, 8)  (above)"]
    assert sum(line.endswith("── (2, 8)  leaf, requires_grad") for line in lines) == 3  # W1, in W1 * W1 twice


def test_names_of_intermediates_stay_in_the_graph_after_they_are_gone():
    def loss(x):  # the intermediates die when it returns: the graph holds stand-ins, not them
        h = x * 2.0
        h.name = "h"  # named before its first use
        s = h.tanh()
        s.name = "s"
        y = s.sum()
        s.name = "renamed"  # while s lives, the graph shows its name now ...
        assert to_text(y).splitlines()[1] == "└── renamed (2,)  <- Tanh"
        return y

    x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = loss(x)
    assert to_text(y).splitlines()[1:3] == ["└── s (2,)  <- Tanh", "    └── h (2,)  <- Mul"]  # ... then its first


def test_to_text_of_a_graph_deeper_than_python_recursion():
    x = mt.tensor([1.0], requires_grad=True, name="x")
    y = x
    for _ in range(1200):  # Python's default recursion limit is 1000
        y = y.tanh()
    lines = to_text(y).splitlines()
    assert len(lines) == 1201 and lines[-1].endswith("└── x (1,)  leaf, requires_grad")


# ------------------------------------------------------------------ values=True: data and grad in the labels
def _named_expression():
    """tanh(sum(x * w) + b) with every intermediate named, held, and keeping its .grad; y, the result, does not."""
    x = mt.tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    w = mt.tensor([0.3, 0.2, -0.1], requires_grad=True, name="w")
    b = mt.tensor(0.1, requires_grad=True, name="b")
    p = (x * w).retain_grad()
    s = p.sum().retain_grad()
    z = (s + b).retain_grad()
    y = z.tanh()
    for t, name in zip((p, s, z, y), "pszy"):
        t.name = name
    return y, (x, w, b, p, s, z)


_NUMBER = r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?|nan|-?inf"


def _numbers(text):
    """The numbers of a label line such as ``data [0.5, -1, 2]``, as a float array; each has at most 4 significant
    digits (digits after leading zeros, without the exponent)."""
    found = re.findall(_NUMBER, text)
    for number in found:
        mantissa = number.split("e")[0].lstrip("-").replace(".", "").lstrip("0")
        assert len(mantissa) <= 4, (number, text)
    return np.array(found, dtype=float)


@pytest.mark.single_backend
def test_values_label_each_small_tensor_with_its_data_and_grad_after_backward_with_retain_graph():
    y, (x, w, b, p, s, z) = _named_expression()
    # the values and the chain rule, in NumPy (float64): y = tanh(z), z = sum(x * w) + b
    X, W, B = np.array([0.5, -1.0, 2.0]), np.array([0.3, 0.2, -0.1]), 0.1
    Z = (X * W).sum() + B
    dz = 1 - np.tanh(Z) ** 2  # dy/dz, and dy/ds, dy/db, dy/dp_i (all 1 times it)
    want = {"x": (X, W * dz), "w": (W, X * dz), "b": (B, dz), "p": (X * W, np.full(3, dz)),
            "s": ((X * W).sum(), dz), "z": (Z, dz), "y": (np.tanh(Z), None)}
    y.backward(retain_graph=True)
    nodes, edges = graph(y, values=True)
    assert len(nodes) == 11 and len(edges) == 10  # the whole graph is still there, as before backward()
    tensors = {n["label"].split()[0]: n["values"] for n in nodes if n["kind"] == "tensor"}
    assert sorted(tensors) == sorted(want)
    for name, (data, grad) in want.items():
        lines = tensors[name]
        assert lines[0].startswith("data "), (name, lines)
        np.testing.assert_allclose(_numbers(lines[0]), np.ravel(data), rtol=5e-4, err_msg=name)
        if grad is None:  # y kept no .grad (no retain_grad(), as in PyTorch): no line for it
            assert len(lines) == 1
            with pytest.warns(UserWarning, match=r"^Tensor\.grad: this \(\) tensor is not a leaf \(Tanh made it\)"):
                assert y.grad is None
        else:
            assert len(lines) == 2 and lines[1].startswith("grad "), (name, lines)
            np.testing.assert_allclose(_numbers(lines[1]), np.ravel(grad), rtol=5e-4, err_msg=name)
    assert tensors["x"] == ("data [0.5, -1, 2]", f"grad [{W[0] * dz:.4g}, {W[1] * dz:.4g}, {W[2] * dz:.4g}]")
    # operations and numbers get no values; without values=True no tensor does, and the labels are as before
    assert all(n["values"] == () for n in nodes if n["kind"] != "tensor")
    assert all(n["values"] == () for n in graph(y)[0])
    assert [n["label"] for n in graph(y)[0]] == [n["label"] for n in nodes]


@pytest.mark.single_backend
def test_values_before_backward_show_data_only_and_a_result_no_variable_holds_says_so():
    x = mt.tensor([1.0, -2.0], requires_grad=True, name="x")
    y = (x * 3.0).tanh().sum()  # x * 3.0 and its tanh live only in the graph
    nodes, _ = graph(y, values=True)
    lines = [n["values"] for n in nodes if n["kind"] == "tensor"]
    assert lines[0] == (f"data {np.tanh(3.0) + np.tanh(-6.0):.4g}",)  # y, no grad yet
    assert lines[1:3] == [("(values freed)",)] * 2
    assert lines[3] == ("data [1, -2]",)  # x: no .grad before backward()


@pytest.mark.single_backend
@pytest.mark.parametrize("shape, shown", [((4,), True), ((2, 2), True), ((5,), False), ((2, 3), False)])
def test_values_of_at_most_4_elements_are_shown_larger_tensors_keep_their_shape_only(shape, shown):
    x = mt.tensor(np.arange(np.prod(shape), dtype="float32").reshape(shape) / 8, requires_grad=True, name="x")
    y = (x * x).sum()
    y.backward(retain_graph=True)
    leaf = next(n for n in graph(y, values=True)[0] if n["label"].startswith("x "))
    if shown:
        values = np.arange(np.prod(shape)) / 8
        np.testing.assert_allclose(_numbers(leaf["values"][0]), values, rtol=5e-4)
        np.testing.assert_allclose(_numbers(leaf["values"][1]), 2 * values, rtol=5e-4)
        text = leaf["values"][0].removeprefix("data ")  # nested as the axes: [[0, 0.125], [0.25, 0.375]]
        assert len(text) - len(text.lstrip("[")) == len(shape), text
    else:
        assert leaf["values"] == () and leaf["label"] == f"x {shape}"


def test_values_in_dot_are_lines_of_a_valid_label():
    y, held = _named_expression()  # held: the intermediates live (their values are shown) while it does
    y.backward(retain_graph=True)
    nodes, edges = graph(y, values=True)
    lines = to_dot(y, values=True).splitlines()
    assert lines[0] == "digraph {" and lines[-1] == "}" and len(lines) == 3 + len(nodes) + len(edges)
    string = r'"((?:[^"\\]|\\.)*)"'  # a DOT string: anything but a bare quote or backslash, or an escaped character
    labels = [m.group(1) for line in lines if (m := re.fullmatch(rf"  n\d+ \[label={string}, shape=\w+\];", line))]
    assert len(labels) == len(nodes)
    # each label is the node's lines joined by DOT's newline escape \n, in graph()'s order
    assert labels == ["\\n".join(filter(None, (n["label"], n["note"], *n["values"]))) for n in nodes]
    assert sum("\\ngrad " in label for label in labels) == 6  # x, w, b, p, s, z; not y


def test_values_in_text_follow_each_shape():
    y, held = _named_expression()  # held: the intermediates live (their values are shown) while it does
    y.backward(retain_graph=True)
    lines = to_text(y, values=True).splitlines()
    plain = to_text(y).splitlines()
    assert len(lines) == len(plain) == 7
    for line, before in zip(lines, plain):  # the values sit between the shape and the rest of the line
        head, _, tail = before.partition(")  ")
        assert line.startswith(head + ")  data ") and line.endswith("  " + tail), (line, before)
    assert lines[-1].startswith("    └── b ()  data 0.1  grad ") and lines[-1].endswith("  leaf, requires_grad")


@pytest.mark.single_backend
def test_values_in_the_picture_are_lines_of_the_boxes_and_nothing_overlaps():
    y, held = _named_expression()  # held: the intermediates live (their values are shown) while it does
    y.backward(retain_graph=True)
    nodes, _ = graph(y, values=True)
    fig, texts, boxes, *_ = _picture(y, values=True)
    assert [t.get_text() for t in texts] == ["\n".join(filter(None, (n["label"], n["note"], *n["values"])))
                                             for n in nodes]
    for node, text, box in zip(nodes, texts, boxes):  # the layout reserved room for the longer labels
        w, h = _size(node)
        assert 0.75 < box.width / w < 1.25 and 0.75 < box.height / h < 1.25, text.get_text()
    for i, a in enumerate(boxes):
        assert all(not a.overlaps(other) for other in boxes[i + 1:]), texts[i].get_text()
