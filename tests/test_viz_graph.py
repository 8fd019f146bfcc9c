"""The graph picture (``viz.draw_graph``) and its text form (``autograd.to_dot``) show every node and edge."""

from __future__ import annotations

import re

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minitransformer as mt
from minitransformer.autograd import graph, to_dot
from minitransformer.viz import draw_graph


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
def test_constants_are_drawn_as_text():
    x = mt.tensor([1.0, 2.0], requires_grad=True, name="x")
    nodes, _ = graph((x * 3.0).sum())
    fig = draw_graph((x * 3.0).sum())
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert len(labels) == len(nodes) == 6  # x, 3.0, Mul, x * 3.0, Sum, the sum
    const = next(t for t in fig.axes[0].texts if t.get_text() == "3.0")
    assert const.get_bbox_patch().get_edgecolor()[3] == 0  # no frame around a number


@pytest.mark.single_backend
def test_layout_flows_left_to_right_without_overlaps(tmp_path):
    """Every arrow points right; no two labels overlap; none is cut off by the figure's edge."""
    y = _mlp_loss()
    nodes, edges = graph(y)
    fig = draw_graph(y)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = fig.axes[0].texts
    assert len(texts) == len(nodes)
    boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        assert a.x0 >= 0 and a.y0 >= 0 and a.x1 <= fig.bbox.x1 and a.y1 <= fig.bbox.y1, texts[i].get_text()
        for j in range(i + 1, len(boxes)):
            assert not a.overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    # texts were added in graph() order: each edge's source lies left of its target
    where = {n["id"]: t.get_position()[0] for n, t in zip(nodes, texts)}
    assert all(where[a] < where[b] for a, b in edges)
    path = tmp_path / "graph.png"
    fig.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"


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
