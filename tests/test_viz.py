"""The pictures (minitransformer.viz): each returns a Figure with the axes, labels and cell values it should have,
takes tensors of the current backend, and refuses bad shapes with a message that says what is wrong."""

from __future__ import annotations

import math
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import viz


def _weights(rng, *shape):
    """Random attention weights (rows sum to 1) as a tensor of the current backend, and the NumPy copy."""
    z = rng.standard_normal(shape)
    w = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return mt.tensor(w.astype(np.float32)), w.astype(np.float32).astype(np.float64)


def _ticks(labels):
    return [t.get_text() for t in labels]


def _map_axes(fig):
    """The axes holding an attention map (the colour bar holds no AxesImage of its own)."""
    return [ax for ax in fig.axes if ax.images]


# ------------------------------------------------------------------ attention_heatmap
def test_heatmap_labels_values_and_colour_bar(rng):
    W, w = _weights(rng, 3, 4)
    q, k = ["I", "love", "attention"], ["<s>", "I", "love", "attention"]
    fig = viz.attention_heatmap(W, q, k, title="one head")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the map and its colour bar
    ax, bar = fig.axes
    assert _ticks(ax.get_xticklabels()) == k and _ticks(ax.get_yticklabels()) == q
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("key", "query", "one head")
    assert bar.get_ylabel() == "attention weight"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 3 * 4  # small map: every weight written in its cell, row by row
    assert texts == [f"{v:.2f}" for v in w.ravel()]
    np.testing.assert_allclose(ax.images[0].get_array(), w, rtol=1e-6)
    assert ax.images[0].get_clim() == (0.0, 1.0)


def test_heatmap_annotates_small_maps_only(rng):
    W12, _ = _weights(rng, 12, 12)
    W13, _ = _weights(rng, 13, 12)
    assert len(viz.attention_heatmap(W12).axes[0].texts) == 144
    assert len(viz.attention_heatmap(W13).axes[0].texts) == 0
    assert len(viz.attention_heatmap(W13, annotate=True).axes[0].texts) == 13 * 12
    assert len(viz.attention_heatmap(W12, annotate=False).axes[0].texts) == 0
    # positions 0.. when no labels are given
    assert _ticks(viz.attention_heatmap(W13).axes[0].get_yticklabels()) == [str(i) for i in range(13)]


def test_heatmap_takes_backend_arrays_and_lists(rng):
    W, w = _weights(rng, 2, 3)
    raw = W.data  # an array of the current backend, not a Tensor
    for x in (raw, w, w.tolist()):
        np.testing.assert_allclose(viz.attention_heatmap(x).axes[0].images[0].get_array(), w, rtol=1e-6)
    fig = viz.attention_heatmap(W, vmax=None)
    assert fig.axes[0].images[0].get_clim() == pytest.approx((0.0, w.max()), rel=1e-6)


def test_heatmap_of_the_libraries_attention_weights():
    Q = mt.tensor([[1.0], [2.0], [3.0]])
    _, weights = F.scaled_dot_product_attention(Q, Q, Q)
    fig = viz.attention_heatmap(weights, ["1", "2", "3"], ["1", "2", "3"])
    # by hand: row 1 = softmax([1, 2, 3]) = [0.09, 0.24, 0.67]
    assert [t.get_text() for t in fig.axes[0].texts][:3] == ["0.09", "0.24", "0.67"]


@pytest.mark.single_backend
def test_short_key_labels_stand_upright_and_long_ones_rotated():
    """A rotated ``-`` reads as ``'``: labels of up to 2 characters stay upright under every kind of map."""
    keys = ["1969", "-", "07", "-", "20", "<eos>"]
    W = np.full((2, 6), 1 / 6)
    maps = [viz.attention_heatmap(W, None, keys).axes[0], _map_axes(viz.attention_heads(W[None], None, keys))[0],
            _map_axes(viz.attention_layers([W[None]], None, keys))[0]]
    for ax in maps:
        assert [(t.get_text(), t.get_rotation()) for t in ax.get_xticklabels()] == \
            [("1969", 90), ("-", 0), ("07", 0), ("-", 0), ("20", 0), ("<eos>", 90)]


def _spans(labels, axis: str) -> list[tuple[float, float]]:
    """Where each drawn tick label lies along its axis, in pixels, in order (the figure drawn first)."""
    boxes = [t.get_window_extent() for t in labels if t.get_text()]
    return sorted(tuple(b.intervalx if axis == "x" else b.intervaly) for b in boxes)


@pytest.mark.single_backend
@pytest.mark.parametrize("n", [10, 60, 200])
def test_attention_maps_label_every_position_whose_cell_has_room_for_its_label(n):
    """Labels are thinned by the room a cell has against the font, not to a fixed count: 60 tokens on a 16-inch map
    (about 16 points a cell for 9-point labels) were labelled every 2nd position. Every map labels each position while
    its cells have room for a label, and the labels it draws never overlap."""
    W = np.full((n, n), 1 / n)
    tokens = [f"w{i}" for i in range(n)]
    maps = [viz.attention_heatmap(W, tokens, tokens).axes[0],
            _map_axes(viz.attention_heads(np.stack([W, W]), tokens, tokens, mask=F.causal_mask(n)))[0],
            _map_axes(viz.attention_layers([W[None]] * 2, tokens, tokens))[-1]]  # bottom left: both axes labelled
    for ax in maps:
        ax.figure.draw_without_rendering()  # the labels where the layout put them
        for axis, labels in (("x", ax.get_xticklabels()), ("y", ax.get_yticklabels())):
            spans = _spans(labels, axis)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (axis, "labels overlap")
            shown = _ticks(labels)
            step = 1 if len(shown) == n else int(ax.get_xticks()[1] if axis == "x" else ax.get_yticks()[1])
            assert shown == tokens[::step]
    heatmap = maps[0]
    if n <= 60:  # 16 inches have room for 60 labels (the map of 60 tokens labelled 30)
        assert _ticks(heatmap.get_yticklabels()) == _ticks(heatmap.get_xticklabels()) == tokens
    else:  # about 5 points a cell: every 3rd query, every 4th key (its upright 2-letter labels are wider)
        assert _ticks(heatmap.get_yticklabels()) == tokens[::3] and _ticks(heatmap.get_xticklabels()) == tokens[::4]
    rows = [f"w{i}" for i in range(60)]
    tall = viz.attention_heatmap(np.ones((60, 1)), rows, ["k"]).axes[0]  # one key: as tall as 60 queries
    assert _ticks(tall.get_yticklabels()) == rows
    blank = viz.attention_heatmap(np.full((2, 2), 0.5), None, [" ", "a"]).axes[0]  # a space measured: it draws nothing
    assert _ticks(blank.get_xticklabels()) == [" ", "a"]


@pytest.mark.parametrize(
    "shape, match",
    [((3,), r"2-D \(L queries, S keys\), got shape \(3,\)"),
     ((2, 3, 3), r"got shape \(2, 3, 3\) \(attention_heads takes"),
     ((1, 2, 3, 3), r"weights\[0\]"),
     ((0, 3), "empty axis")],
)
def test_heatmap_refuses_bad_shapes(shape, match):
    with pytest.raises(ValueError, match="attention_heatmap: weights .*" + match):
        viz.attention_heatmap(mt.zeros(*shape))


def test_heatmap_refuses_wrong_labels(rng):
    W, _ = _weights(rng, 3, 4)
    with pytest.raises(ValueError, match=r"attention_heatmap: 2 query_labels given, 3 needed \(one per query: row"):
        viz.attention_heatmap(W, ["a", "b"], list("abcd"))
    with pytest.raises(ValueError, match=r"5 key_labels given, 4 needed \(one per key"):
        viz.attention_heatmap(W, list("abc"), list("abcde"))
    with pytest.raises(TypeError, match="list of 3 labels.*got the string 'abc'"):
        viz.attention_heatmap(W, "abc", list("abcd"))
    with pytest.raises(TypeError, match="attention_heatmap: weights must be"):
        viz.attention_heatmap({"not": "an array"})


def _hidden_cells(ax):
    """The cells (query, key) of a map drawn as masked: masked in the image's array."""
    return {tuple(int(v) for v in c) for c in np.argwhere(np.ma.getmaskarray(ax.images[0].get_array()))}


def _texts_at(ax):
    """The cells (query, key) with a value written in them."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])) for t in ax.texts}


def _hatched_cells(ax, L, S):
    """The cells the hatched 'masked' patch covers, each whole: a cell it covers in part (a rectangle half a cell
    too short or too tall) fails. Four points inside each cell (i, j), the square (j +- 0.5, i +- 0.5), are tried."""
    patches = [p for p in ax.patches if p.get_gid() == "masked"]
    if not patches:
        return set()
    (patch,) = patches
    assert patch.get_hatch() == viz.attention.MASKED_HATCH
    assert patch.get_linewidth() == 0  # no outline: hidden cells meet allowed ones edge to edge, as in the image
    path, corners = patch.get_path(), [(dx, dy) for dx in (-0.3, 0.3) for dy in (-0.3, 0.3)]
    covered = {(i, j): [path.contains_point((j + dx, i + dy)) for dx, dy in corners]
               for i in range(L) for j in range(S)}
    assert not [cell for cell, inside in covered.items() if any(inside) and not all(inside)], "a cell hatched in part"
    return {cell for cell, inside in covered.items() if all(inside)}


def test_heatmap_draws_masked_cells_apart_from_weights_of_0():
    """A masked weight is exactly 0, as is an allowed weight that underflows: with the mask, the masked cells are
    masked in the image (drawn in the colour map's 'bad' grey), hatched, and have no value written in them; an
    allowed 0 is still drawn as a weight (darkest colour, "0.00")."""
    causal = F.causal_mask(3)                                              # a Tensor of the current backend
    w = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])     # (1, 0) is allowed and 0
    hidden = {(0, 1), (0, 2), (1, 2)}
    allowed = {(i, j) for i in range(3) for j in range(3)} - hidden
    fig = viz.attention_heatmap(w, mask=causal)
    ax = fig.axes[0]
    assert _hidden_cells(ax) == hidden
    assert _hatched_cells(ax, 3, 3) == hidden
    assert _texts_at(ax) == allowed and len(ax.texts) == 6
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.00", "1.00", "0.20", "0.30", "0.50"]
    np.testing.assert_allclose(ax.images[0].get_array().compressed(), w[np.tril_indices(3)])
    assert ax.images[0].cmap.get_bad() == pytest.approx(to_rgba(viz.attention.MASKED_FACE))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["masked: not allowed (weight 0)"]
    (swatch,) = fig.legends[0].legend_handles  # drawn as a masked cell is: grey, hatched, no outline
    assert swatch.get_facecolor() == pytest.approx(to_rgba(viz.attention.MASKED_FACE))
    assert (swatch.get_hatch(), swatch.get_linewidth()) == (viz.attention.MASKED_HATCH, 0)
    # without a mask, as before: nothing masked, no patch, no legend, every value written
    plain = viz.attention_heatmap(w)
    assert not _hidden_cells(plain.axes[0]) and not plain.axes[0].patches and not plain.legends
    assert len(plain.axes[0].texts) == 9 and plain.axes[0].images[0].cmap.get_bad()[3] == 0  # NaN: transparent
    # a mask that hides nothing draws as no mask
    everything = viz.attention_heatmap(w, mask=np.ones((3, 3), dtype=bool))
    assert not everything.axes[0].patches and not everything.legends and len(everything.axes[0].texts) == 9


@pytest.mark.parametrize("transpose", [False, True])
def test_heatmap_hatches_each_run_of_masked_cells_of_a_map_not_square(transpose):
    """Runs of hidden cells that end before the last key, and a row that hides a cell the row above allows: each
    hidden cell hatched whole, no allowed cell hatched at all (the causal masks above hide runs that end at the right
    edge, under rows that hide more), on an (L, S) map with L < S and with L > S."""
    allowed = np.array([[True, False, True, True, False],
                        [False, True, True, False, True],
                        [True, True, True, True, True]])                  # (3, 5)
    if transpose:
        allowed = allowed.T.copy()                                         # (5, 3)
    L, S = allowed.shape
    hidden = {(int(i), int(j)) for i, j in np.argwhere(~allowed)}
    fig = viz.attention_heatmap(np.full((L, S), 1 / S), mask=allowed)
    ax = fig.axes[0]
    assert _hidden_cells(ax) == hidden and _hatched_cells(ax, L, S) == hidden
    assert _texts_at(ax) == {(i, j) for i in range(L) for j in range(S)} - hidden


def test_heatmap_mask_of_any_kind_broadcasts():
    """A Tensor, an array of the backend, a NumPy array or lists; an (L, S) mask, a padding mask's (1, S) or its
    (1, 1, 1, S) for one example, and one row of a combined (batch, 1, S, S) mask: leading axes of 1 are dropped."""
    w = np.full((4, 4), 0.25)
    causal = F.causal_mask(4)
    lower = {(i, j) for i in range(4) for j in range(4) if j > i}
    for mask in (causal, causal.data, causal.numpy(), causal.numpy().tolist()):
        assert _hidden_cells(viz.attention_heatmap(w, mask=mask).axes[0]) == lower
    ids = mt.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    pad = F.padding_mask(ids, pad_id=0)                                    # (2, 1, 1, 4)
    pads = {(i, j) for i in range(4) for j in (2, 3)}
    for mask in (pad[1:2], pad[1, 0], pad.numpy()[1, 0, 0]):
        assert _hidden_cells(viz.attention_heatmap(w, mask=mask).axes[0]) == pads
    both = F.combine_masks(pad, causal)                                    # (2, 1, 4, 4)
    assert _hidden_cells(viz.attention_heatmap(w, mask=both[1]).axes[0]) == pads | lower


@pytest.mark.parametrize(
    "mask, error, match",
    [(np.ones((3, 4), dtype=bool), ValueError,
      r"attention_heatmap: mask of shape \(3, 4\) does not broadcast to the weights' shape \(3, 3\) "
      r"\(L queries, S keys\)$"),  # a 2-D mask: no hint to pick one example's mask of a batch
     (np.ones((2, 1, 1, 3), dtype=bool), ValueError, r"mask of shape \(2, 1, 1, 3\) .* e\.g\. mask\[b, 0\]"),
     (np.ones((3, 3)), TypeError, r"attention_heatmap: mask must be boolean .*got float64 with shape \(3, 3\)"),
     ([[1, 0, 0]] * 3, TypeError, "attention_heatmap: mask must be boolean"),
     ("causal", TypeError, "attention_heatmap: mask must be a Tensor or an array of a known backend, got str")],
)
def test_heatmap_refuses_a_bad_mask(mask, error, match):
    with pytest.raises(error, match=match):
        viz.attention_heatmap(np.full((3, 3), 1 / 3), mask=mask)


def test_heatmap_refuses_a_mask_tensor_that_does_not_broadcast():
    with pytest.raises(ValueError, match=r"attention_heatmap: mask of shape \(4, 4\) .* shape \(3, 3\)"):
        viz.attention_heatmap(mt.tensor(np.full((3, 3), 1 / 3)), mask=F.causal_mask(4))


def _wcag_contrast(a, b) -> float:
    """WCAG 2.x contrast of two sRGB colours, written out here apart from the library's."""
    def L(rgb):
        c = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in to_rgba(rgb)[:3]]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    light, dark = sorted((L(a), L(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.single_backend
def test_text_colour_of_a_cell_is_the_one_of_larger_wcag_contrast():
    """By hand: mid-grey (0.5, 0.5, 0.5) has L = (0.555 / 1.055)^2.4 = 0.2140: white gives 1.05 / 0.2640 = 3.98:1,
    black 0.2640 / 0.05 = 5.28:1, so black; viridis at 0.618, where Rec.601 luma of the encoded colour (< 0.5) chose
    white at 2.86:1, gets black at 7.34:1."""
    from minitransformer.viz.attention import _contrast_ratio, _relative_luminance, _text_colours

    np.testing.assert_allclose(_relative_luminance(np.array([0.5, 0.5, 0.5])), 0.21404, atol=1e-5)
    assert _relative_luminance(np.array([[1.0, 1.0, 1.0, 0.3], [0.0, 0.0, 0.0, 1.0]])).tolist() == [1.0, 0.0]
    np.testing.assert_allclose([_contrast_ratio(1.0, 0.21404), _contrast_ratio(0.0, 0.21404)], [3.977, 5.281],
                               atol=1e-3)
    assert _contrast_ratio(0.0, 1.0) == _contrast_ratio(1.0, 0.0) == 21.0
    mid = matplotlib.colormaps["viridis"](0.618)
    assert _text_colours(np.array([(0.5, 0.5, 0.5), mid[:3], (0.1, 0.1, 0.4)])).tolist() == ["black", "black",
                                                                                            "white"]
    np.testing.assert_allclose([_wcag_contrast(mid, "white"), _wcag_contrast(mid, "black")], [2.86, 7.34], atol=0.01)


@pytest.mark.single_backend
@pytest.mark.parametrize("cmap", ["viridis", "cividis", "RdBu_r"])
def test_values_written_in_the_cells_have_wcag_aa_contrast_on_every_colour_of_the_map(cmap):
    """256 cells spanning the colour map: each value is written in white or black with contrast >= 4.5:1 (WCAG AA
    for text) on its cell; Rec.601 luma of the encoded colour, < 0.5 for white, left 18%, 5% and 8% of them under it."""
    values = np.linspace(0.0, 1.0, 256).reshape(16, 16)
    fig = viz.attention_heatmap(values, annotate=True, cmap=cmap)
    ax, colours = fig.axes[0], matplotlib.colormaps[cmap](values)
    assert len(ax.texts) == 256
    worst = min(_wcag_contrast(colours[round(t.get_position()[1]), round(t.get_position()[0])], t.get_color())
                for t in ax.texts)
    assert worst >= 4.5, worst


# ------------------------------------------------------------------ attention_heads, attention_layers
def test_heads_grid(rng):
    W, w = _weights(rng, 3, 4, 5)
    q, k = list("abcd"), list("vwxyz")
    fig = viz.attention_heads(W, q, k, title="layer 1", ncols=2)
    maps = _map_axes(fig)
    assert len(maps) == 3 and len(fig.axes) == 3 + 1  # the empty 4th cell is removed; one shared colour bar
    assert [ax.get_title() for ax in maps] == ["head 1", "head 2", "head 3"]
    assert fig.get_suptitle() == "layer 1"
    for h, ax in enumerate(maps):
        np.testing.assert_allclose(ax.images[0].get_array(), w[h], rtol=1e-6)
        assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in w[h].ravel()]
    # tokens on the left column and under the lowest map of each column
    assert _ticks(maps[0].get_yticklabels()) == q and _ticks(maps[2].get_yticklabels()) == q
    assert _ticks(maps[1].get_yticklabels()) == [""] * 4
    assert _ticks(maps[0].get_xticklabels()) == [""] * 5  # head 3 is below it
    assert _ticks(maps[1].get_xticklabels()) == k and _ticks(maps[2].get_xticklabels()) == k
    assert len({ax.images[0].get_clim() for ax in maps}) == 1  # one colour scale


@pytest.mark.parametrize("heads, tokens", [(4, 32), (8, 32)])
def test_a_large_heads_grid_fits_30_inches_and_its_maps_fill_it(rng, heads, tokens):
    """The charlm picture (4 heads of 32 characters) was capped at 30 inches wide but kept its full height: the maps
    filled half of it, between two bands of white."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    W, _ = _weights(rng, heads, tokens, tokens)
    labels = [chr(97 + i % 26) for i in range(tokens)]
    fig = viz.attention_heads(W, labels, labels, title="charlm: self attention (last layer)")
    FigureCanvasAgg(fig).draw()
    width, height = fig.get_size_inches()
    assert width <= 30 and height <= 30
    assert sum(ax.get_position().height for ax in _map_axes(fig)[::4]) > 0.7  # the first column's maps


def test_heads_refuses_bad_input(rng):
    with pytest.raises(ValueError, match=r"attention_heads: weights must be 3-D \(heads, L queries, S keys\), got "
                                         r"shape \(3, 3\) \(attention_heatmap takes one map"):
        viz.attention_heads(mt.zeros(3, 3))
    with pytest.raises(ValueError, match=r"weights\[0\]"):
        viz.attention_heads(mt.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match="attention_heads: 2 key_labels given, 3 needed"):
        viz.attention_heads(mt.zeros(2, 3, 3), key_labels=["a", "b"])
    with pytest.raises(ValueError, match="ncols must be a positive int"):
        viz.attention_heads(mt.zeros(2, 3, 3), ncols=0)


def test_layers_grid(rng):
    layers = [_weights(rng, 2, 3, 3) for _ in range(3)]
    fig = viz.attention_layers([W for W, _ in layers], list("abc"), list("abc"), title="3 layers")
    maps = _map_axes(fig)
    assert len(maps) == 3 * 2 and len(fig.axes) == 3 * 2 + 1
    assert [ax.get_title() for ax in maps] == ["head 1", "head 2"] + [""] * 4
    assert [maps[2 * n].get_ylabel() for n in range(3)] == [f"layer {n + 1}\nquery" for n in range(3)]
    for n, (_, w) in enumerate(layers):
        for h in range(2):
            np.testing.assert_allclose(maps[2 * n + h].images[0].get_array(), w[h], rtol=1e-6)
    assert sum(len(ax.texts) for ax in maps) == 6 * 9  # 3x3 maps are annotated
    assert {ax.images[0].get_clim() for ax in maps} == {(0.0, 1.0)}  # by default the range of a weight, 0 to 1
    stretched = _map_axes(viz.attention_layers([W for W, _ in layers], vmax=None))
    top = max(w.max() for _, w in layers)  # vmax=None: the largest weight of every layer, one scale for the grid
    assert [ax.images[0].get_clim() for ax in stretched] == [pytest.approx((0.0, top), rel=1e-6)] * 6
    big = viz.attention_layers([mt.zeros(1, 9, 9)])
    assert len(big.axes) == 2 and len(big.axes[0].texts) == 0  # a grid annotates only up to 8x8


def test_a_grid_too_large_for_30_inches_gets_smaller_cells_not_a_larger_frame(rng):
    """A figure is at most 30 inches a side. Capping the width alone kept the height of the uncapped maps, so the
    maps (square cells, shrunk to the capped width) filled 59% of the height for 2 x 4 maps of 27 x 27 and 21% for
    2 x 8 maps of 64 x 64, the rest empty; the cells shrink instead."""
    for L, heads, layers in ((27, 4, 2), (64, 8, 2)):
        fig = viz.attention_layers([rng.dirichlet(np.ones(L), size=(heads, L)) for _ in range(layers)])
        fig.draw_without_rendering()                                  # the constrained layout places the axes
        assert max(fig.get_size_inches()) <= 30
        rows = {round(ax.get_position().y0, 3): ax.get_position().height for ax in _map_axes(fig)}  # one per row
        filled = sum(rows.values())
        assert filled > 0.75, f"{layers} x {heads} maps of {L} x {L} fill {filled:.0%} of the figure's height"


def test_layers_refuses_bad_input():
    with pytest.raises(TypeError, match="attention_layers: layers must be a non-empty list"):
        viz.attention_layers([])
    with pytest.raises(TypeError, match="one per layer, got Tensor"):
        viz.attention_layers(mt.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"layer 2 has weights of shape \(2, 3, 4\), layer 1 \(2, 3, 3\)"):
        viz.attention_layers([mt.zeros(2, 3, 3), mt.zeros(2, 3, 4)])
    with pytest.raises(ValueError, match=r"attention_layers \(layer 2\): weights must be 3-D"):
        viz.attention_layers([mt.zeros(2, 3, 3), mt.zeros(3, 3)])


def test_heads_and_layers_draw_masked_cells(rng):
    """One causal (L, L) mask for every head and layer, or one per head; the masked cells of each map are masked in
    its image, hatched and have no value; one legend for the figure."""
    L, H = 3, 2
    causal = F.causal_mask(L)
    hidden = {(0, 1), (0, 2), (1, 2)}
    _, w = F.scaled_dot_product_attention(*(mt.tensor(rng.standard_normal((H, L, 4))) for _ in range(3)),
                                          mask=causal)
    heads = viz.attention_heads(w, mask=causal)
    layers = viz.attention_layers([w, w, w], mask=causal)
    for fig, n_maps in ((heads, H), (layers, 3 * H)):
        maps = _map_axes(fig)
        assert len(maps) == n_maps and len(fig.legends) == 1
        for ax in maps:
            assert _hidden_cells(ax) == hidden and _hatched_cells(ax, L, L) == hidden
            assert len(ax.texts) == 6 and not _texts_at(ax) & hidden
    # one mask per head: head 2 may also not see key 0 (query 0 then sees no key at all)
    per_head = np.stack([causal.numpy(), causal.numpy() & (np.arange(L) > 0)])
    maps = _map_axes(viz.attention_heads(w, mask=per_head))
    assert _hidden_cells(maps[0]) == hidden and _hidden_cells(maps[1]) == hidden | {(0, 0), (1, 0), (2, 0)}
    assert not viz.attention_heads(w).legends and not any(ax.patches for ax in _map_axes(viz.attention_heads(w)))


def test_heads_and_layers_refuse_a_mask_that_does_not_broadcast():
    w = np.full((3, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"attention_heads: mask of shape \(2, 3, 3\) does not broadcast to the "
                                         r"weights' shape \(3, 3, 3\) \(heads, L queries, S keys\)"):
        viz.attention_heads(w, mask=np.ones((2, 3, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"attention_layers: mask of shape \(4, 4\) does not broadcast to the "
                                         r"weights' shape \(3, 3, 3\) .*the same for every layer"):
        viz.attention_layers([w, w], mask=F.causal_mask(4))
    with pytest.raises(TypeError, match="attention_layers: mask must be boolean"):
        viz.attention_layers([w, w], mask=np.ones((3, 3), dtype=int))


# ------------------------------------------------------------------ positional encodings
def pe_numpy(n, d):
    pos, j = np.arange(n)[:, None], np.arange(d)[None, :]
    angle = pos / 10000 ** ((j // 2 * 2) / d)
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle))


def test_positional_encoding_heatmap():
    PE = F.sinusoidal_positional_encoding(20, 16)
    fig = viz.positional_encoding_heatmap(PE)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), pe_numpy(20, 16), atol=1e-6)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("dimension j", "position pos")
    assert ax.images[0].get_clim() == (-1.0, 1.0)  # symmetric: white is 0
    assert fig.axes[1].get_ylabel() == "PE(pos, j)"
    learned = mt.tensor(np.full((4, 6), -3.0))  # a learned table may leave [-1, 1]: the scale widens
    assert viz.positional_encoding_heatmap(learned).axes[0].images[0].get_clim() == (-3.0, 3.0)


@pytest.mark.single_backend
@pytest.mark.parametrize("n, d", [(1, 16), (3, 4), (50, 128)])
def test_positional_encoding_heatmap_ticks_whole_positions_and_dimensions(n, d):
    """A short table had ticks at positions -0.5, 0.5, 1.5 and dimension -1: every tick drawn is a row or a column."""
    ax = viz.positional_encoding_heatmap(pe_numpy(n, d)).axes[0]
    ax.figure.draw_without_rendering()
    for ticks, (low, high), size in ((ax.get_yticks(), sorted(ax.get_ylim()), n), (ax.get_xticks(), ax.get_xlim(), d)):
        drawn = [t for t in ticks if low <= t <= high]  # (a locator may offer ticks beyond the axis' ends)
        assert drawn and all(t == int(t) and 0 <= t < size for t in drawn), drawn
    if n <= 3:
        assert [t for t in ax.get_yticks() if 0 <= t < n] == list(range(n))  # each of the few positions named


def test_positional_encoding_curves():
    PE = F.sinusoidal_positional_encoding(50, 64)
    fig = viz.positional_encoding_curves(PE)
    assert len(fig.axes) == 1
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["dim 0", "dim 1", "dim 8", "dim 16", "dim 32"]  # 64/8, /4, /2
    for line in lines:
        j = int(line.get_label().split()[1])
        np.testing.assert_allclose(line.get_ydata(), pe_numpy(50, 64)[:, j], atol=1e-6)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(50))
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [line.get_label() for line in lines]
    assert [line.get_label() for line in viz.positional_encoding_curves(PE, dims=[3]).axes[0].get_lines()] == \
        ["dim 3"]
    # one column as a number ("'int' object is not iterable" before); a string is no column
    assert [line.get_label() for line in viz.positional_encoding_curves(PE, dims=2).axes[0].get_lines()] == ["dim 2"]
    with pytest.raises(ValueError, match=r"positional_encoding_curves: dims must be columns of PE .* got '0'"):
        viz.positional_encoding_curves(PE, dims="0")
    with pytest.raises(TypeError, match=r"positional_encoding_curves: dims must be a column of PE or a sequence"):
        viz.positional_encoding_curves(PE, dims=2.0)
    # a narrow table draws only the columns it has: d = 8 gives 0, 1, 8/4, 8/2 (8/8 rounds to the even 0);
    # d = 1 has column 0 only (a default of "1" there would be refused as no column of PE)
    for d, expected in [(8, ["dim 0", "dim 1", "dim 2", "dim 4"]), (1, ["dim 0"])]:
        lines = viz.positional_encoding_curves(pe_numpy(5, d)).axes[0].get_lines()
        assert [line.get_label() for line in lines] == expected
        np.testing.assert_allclose(lines[0].get_xydata(), np.c_[np.arange(5), np.sin(np.arange(5))], atol=1e-12)


def _told_apart_without_colour(ax):
    """Each line of ``ax`` differs from every other in (line style, marker), not only in colour."""
    styles = [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()]
    return len(set(styles)) == len(styles)


@pytest.mark.single_backend
def test_positional_encoding_curves_tell_their_lines_apart_without_colour():
    """Under deuteranopia dims 8/16 and 0/32 of the default lines took the same colour: all solid with "." markers,
    they were one. Each line has a line style and a marker of its own (28 pairs), in the legend too."""
    for n, dims in ((50, None), (200, range(12)), (10, range(28))):
        ax = viz.positional_encoding_curves(F.sinusoidal_positional_encoding(n, 64), dims=dims).axes[0]
        assert _told_apart_without_colour(ax), [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()]
        assert all(line.get_marker() not in ("None", "", ".") for line in ax.get_lines())
        legend = ax.get_legend().get_lines()
        assert [(h.get_linestyle(), h.get_marker()) for h in legend] == \
            [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()]


def test_positional_encoding_refuses_bad_input():
    PE = F.sinusoidal_positional_encoding(10, 8)
    with pytest.raises(ValueError, match=r"positional_encoding_heatmap: PE must be 2-D \(positions, d_model\), got "
                                         r"shape \(1, 10, 8\) \(drop the batch axis"):
        viz.positional_encoding_heatmap(PE.reshape(1, 10, 8))
    for draw in (viz.positional_encoding_heatmap, viz.positional_encoding_curves, viz.position_similarity):
        with pytest.raises(ValueError, match=r"PE \(positions, d_model\) has an empty axis: shape \(0, 8\)"):
            draw(np.zeros((0, 8)))
    one = viz.positional_encoding_heatmap(pe_numpy(1, 8))  # one position is a table, not an empty one
    np.testing.assert_allclose(one.axes[0].images[0].get_array(), [[0, 1, 0, 1, 0, 1, 0, 1]], atol=1e-12)
    with pytest.raises(ValueError, match=r"ints in 0..7, got 8"):
        viz.positional_encoding_curves(PE, dims=(0, 8))
    with pytest.raises(ValueError, match="dims is empty"):
        viz.positional_encoding_curves(PE, dims=())
    with pytest.raises(ValueError, match="got True"):
        viz.positional_encoding_curves(PE, dims=(True,))
    with pytest.raises(ValueError, match=r"position_similarity: PE must be 2-D"):
        viz.position_similarity(mt.zeros(8))
    with pytest.raises(ValueError, match=r"position_similarity: 3 labels given, 10 needed \(one per position"):
        viz.position_similarity(PE, labels=["a", "b", "c"])


def test_position_similarity_is_pe_pe_transpose():
    PE = F.sinusoidal_positional_encoding(6, 8)
    P = pe_numpy(6, 8)
    fig = viz.position_similarity(PE)
    assert len(fig.axes) == 2
    S = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(S, P @ P.T, atol=1e-5)
    # the sinusoids: PE_p . PE_q = sum_i cos((p - q) / 10000^(2i/d)) depends on p - q only, and PE_p . PE_p = d/2
    np.testing.assert_allclose(np.diag(S), 8 / 2, atol=1e-5)
    np.testing.assert_allclose(S[1, 3], S[2, 4], atol=1e-5)
    assert len(fig.axes[0].texts) == 36 and fig.axes[0].texts[1].get_text() == f"{(P @ P.T)[0, 1]:.2f}"
    cos = viz.position_similarity(PE, normalize=True).axes[0].images[0].get_array()
    norms = np.linalg.norm(P, axis=1)
    np.testing.assert_allclose(cos, (P @ P.T) / np.outer(norms, norms), atol=1e-5)
    many = viz.position_similarity(F.sinusoidal_positional_encoding(100, 8))
    assert len(many.axes[0].texts) == 0
    # 100 positions in 9.5 inches: 7 points a cell, a 9-point label on every 2nd row, every 3rd column (two digits
    # standing upright are wider than a line)
    assert _ticks(many.axes[0].get_yticklabels()) == [str(i) for i in range(0, 100, 2)]
    assert _ticks(many.axes[0].get_xticklabels()) == [str(i) for i in range(0, 100, 3)]
    assert _ticks(fig.axes[0].get_yticklabels()) == ["0", "1", "2", "3", "4", "5"]


def test_cosine_similarity_of_a_zero_row_is_drawn_as_0():
    """A zero row has no direction (0/0): its similarities are 0, with no warning and the scale still [-1, 1]."""
    P = np.vstack([np.zeros((1, 4)), np.ones((2, 4)), -np.ones((1, 4))]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "invalid value encountered in divide" fails the test
        image = viz.position_similarity(mt.tensor(P), normalize=True).axes[0].images[0]
    expected = np.array([[0, 0, 0, 0], [0, 1, 1, -1], [0, 1, 1, -1], [0, -1, -1, 1]])
    np.testing.assert_allclose(image.get_array(), expected, atol=1e-6)
    assert image.get_clim() == pytest.approx((-1.0, 1.0))
    # a cosine does not depend on the length: rows of norm 0.02 (||PE_p|| ||PE_q|| = 0.0004 < 1) are divided too
    small = viz.position_similarity(mt.tensor(P / 100), normalize=True).axes[0].images[0].get_array()
    np.testing.assert_allclose(small, expected, atol=1e-5)
    # all rows zero: every similarity 0, on the cosine's scale [-1, 1]
    zeros = viz.position_similarity(mt.zeros((3, 4)), normalize=True).axes[0].images[0]
    np.testing.assert_array_equal(zeros.get_array(), np.zeros((3, 3)))
    assert zeros.get_clim() == pytest.approx((-1.0, 1.0))


def test_position_similarity_colour_scale_can_be_set():
    """By default symmetric about 0 (+-max |S|); vmin and vmax set either end, e.g. 0..1 for the sinusoids' cosines."""
    PE = F.sinusoidal_positional_encoding(24, 16)
    assert viz.position_similarity(PE).axes[0].images[0].get_clim() == pytest.approx((-8.0, 8.0), rel=1e-6)
    image = viz.position_similarity(PE, normalize=True, vmin=0, vmax=1, cmap="viridis").axes[0].images[0]
    assert image.get_clim() == pytest.approx((0.0, 1.0))
    P = pe_numpy(24, 16)
    np.testing.assert_allclose(image.get_array(), P @ P.T / 8, atol=1e-5)  # the values do not change, only the colours
    assert viz.position_similarity(PE, vmin=0).axes[0].images[0].get_clim() == pytest.approx((0.0, 8.0), rel=1e-6)
    with pytest.raises(ValueError, match=r"position_similarity: the colour scale needs vmin < vmax, got vmin=9, "
                                         r"vmax=[78]\.\d+ \(the other end is the default, \+-max \|S_pq\|\)"):
        viz.position_similarity(PE, vmin=9)  # above the largest |S| = d/2 = 8
    with pytest.raises(ValueError, match=r"position_similarity: the colour scale needs vmin < vmax, got vmin=1, "
                                         r"vmax=1$"):
        viz.position_similarity(PE, vmin=1, vmax=1)


def test_positional_pictures_grow_with_the_table_and_fit_a_notebook():
    """More dimensions or positions get a larger figure (a 64-column table on the 16-column one's canvas has
    columns of a few pixels), up to 12 x 9 inches for the table and 11 inches high for the similarity map."""
    def size(fig):
        return tuple(fig.get_size_inches())

    narrow, wide, tall = (size(viz.positional_encoding_heatmap(pe_numpy(n, d))) for n, d in [(20, 16), (20, 64),
                                                                                              (80, 16)])
    assert wide[0] > narrow[0] and tall[1] > narrow[1]
    huge = size(viz.positional_encoding_heatmap(pe_numpy(512, 512)))
    assert huge[0] <= 12 and huge[1] <= 9
    few, more, many = (size(viz.position_similarity(pe_numpy(n, 8))) for n in (6, 20, 100))
    assert more[1] > few[1] and many[1] <= 11
    assert all(width > height for width, height in (few, more, many))  # room for the colour bar beside the square


def test_position_similarity_of_a_learned_table_builds_no_graph(rng):
    P = mt.tensor(rng.standard_normal((5, 4)).astype(np.float32), requires_grad=True)
    fig = viz.position_similarity(P)
    p = P.numpy().astype(np.float64)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), p @ p.T, rtol=1e-5)
    assert P.grad is None


# ------------------------------------------------------------------ training curves
def test_training_curves_panels_and_series():
    history = {"train_loss": [2.0, 1.5, 1.2, 1.0], "val_loss": [(0, 2.1), (2, 1.4)],
               "train_acc": [0.1, 0.4, 0.6, 0.7], "lr": [mt.tensor(1e-3)] * 4}
    fig = viz.training_curves(history, title="run", x_label="epoch", log_y=("loss",))
    assert len(fig.axes) == 3
    loss, acc, lr = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "acc", "lr"]
    assert [line.get_label() for line in loss.get_lines()] == ["train_loss", "val_loss"]
    np.testing.assert_array_equal(loss.get_lines()[1].get_xdata(), [0, 2])
    np.testing.assert_array_equal(loss.get_lines()[0].get_xdata(), [0, 1, 2, 3])
    np.testing.assert_allclose(lr.get_lines()[0].get_ydata(), 1e-3, rtol=1e-6)
    assert loss.get_yscale() == "log" and acc.get_yscale() == "linear"
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss (log scale)", "acc", "lr"]
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train_loss", "val_loss"]
    assert fig.get_suptitle() == "run"
    # four panels on three columns: the empty cell of the second row is removed
    assert len(viz.training_curves({f"m{i}": [1.0, 2.0] for i in range(4)}).axes) == 4


@pytest.mark.single_backend
@pytest.mark.single_backend
def test_training_curves_keep_an_accuracy_within_0_and_1():
    """An accuracy of 0 throughout was drawn on an axis from -0.04 to 0.04 (matplotlib's margins): a fraction's axis
    stays within [0, 1], the whole of it for a flat line; a percentage, or a loss, is left as matplotlib scales it."""
    fig = viz.training_curves({"val_accuracy": [(10, 0.0), (20, 0.0)], "val_f1": [(10, 0.9), (20, 1.0)],
                               "token_accuracy": [(10, 0.2), (20, 0.3)], "loss": [0.0, 0.0],
                               "percent_accuracy": [50.0, 100.0]})
    accuracy, f1, token, loss, percent = (ax.get_ylim() for ax in fig.axes)
    assert accuracy == (0.0, 1.0) and f1[1] == 1.0 and 0.0 < f1[0] < 0.9
    assert 0.0 < token[0] < 0.2 and 0.3 < token[1] < 1.0  # room for the line, as matplotlib gives it
    assert loss[0] < 0.0 and percent[1] > 100.0


def test_training_curves_takes_one_log_panel_as_a_string():
    history = {"train_loss": [2.0, 1.0], "lr": [1e-3, 1e-3]}
    loss, lr = viz.training_curves(history, log_y="loss").axes  # one name, not the letters l, o, s, s
    assert loss.get_yscale() == "log" and lr.get_yscale() == "linear"
    with pytest.raises(ValueError, match=r"training_curves: log_y names \['acc'\]"):
        viz.training_curves(history, log_y="acc")


def test_training_curves_draws_a_diverged_run():
    fig = viz.training_curves({"loss": [1.0, math.inf, math.nan, 0.5]})
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert np.isnan(y[1]) and np.isnan(y[2]) and y[3] == 0.5


@pytest.mark.single_backend
def test_training_curves_marks_steps_across_every_panel():
    """A vertical line at each marked step, in every panel, named in its legend after the series (a diverged run's
    step and its kept model's); none by default. The axis reaches a step past the last value (the divergence)."""
    history = {"train_loss": [(1, 2.0), (2, 1.5), (3, 1.2)], "val_loss": [(2, 1.4)], "lr": [(1, 1e-3), (3, 1e-3)]}
    marks = {"diverged (step 5)": 5, "model kept (step 2)": 2}
    fig = viz.training_curves(history, log_y="loss", marks={"diverged (step 5)": np.int64(5),
                                                             "model kept (step 2)": np.float32(2.0)})  # NumPy's too
    for ax, series in zip(fig.axes, (["train_loss", "val_loss"], ["lr"])):
        lines = ax.get_lines()[len(series):]
        assert [line.get_label() for line in lines] == list(marks)
        assert [list(line.get_xdata()) for line in lines] == [[5, 5], [2, 2]]  # vertical: one x, the step
        assert [line.get_linestyle() for line in lines] == ["--", ":"]  # told apart without colour
        assert [t.get_text() for t in ax.get_legend().get_texts()] == series + list(marks)
        assert ax.get_xlim()[1] >= 5
    assert [line.get_label() for line in viz.training_curves(history).axes[0].get_lines()] == ["train_loss",
                                                                                               "val_loss"]


@pytest.mark.single_backend
def test_training_curves_tell_their_series_and_marks_apart_without_colour():
    """val_loss and test_loss looked alike under protanopia, both solid: each series of a panel has a line style and
    a marker of its own, and the marked steps (grey "--", ":", "-.", no marker) differ from every series, a long
    series too (markers every k-th point)."""
    history = {"train_loss": [(s, 3 - s / 300) for s in range(1, 301)], "val_loss": [(s, 2.5) for s in (100, 200)],
               "test_loss": [(300, 2.4)], "dev_loss": [1.0] * 40, "eval_loss": [2.0] * 5}
    fig = viz.training_curves(history, marks={"a": 10, "b": 20, "c": 30})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == [*history, "a", "b", "c"]
    assert _told_apart_without_colour(ax), [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()]
    series, marks = ax.get_lines()[:5], ax.get_lines()[5:]
    assert all(line.get_marker() not in ("None", "") for line in series)
    assert all(line.get_marker() == "None" for line in marks)
    assert [line.get_markevery()[1] for line in series] == [12, 1, 1, 2, 1]  # about 25 markers a line at most


@pytest.mark.parametrize(
    "history, kwargs, error, match",
    [({}, {}, TypeError, "non-empty dict"),
     ([1.0, 2.0], {}, TypeError, "got list"),
     ({"loss": []}, {}, ValueError, r"history\['loss'\] is empty"),
     ({"loss": 1.0}, {}, TypeError, r"history\['loss'\] must be a list"),
     ({"loss": [1.0, (1, 2.0)]}, {}, ValueError, "mixes numbers and"),
     ({"loss": [(1, 2.0, 3.0)]}, {}, ValueError, "is not a .step, value. pair"),
     ({"loss": ["high"]}, {}, TypeError, r"history\['loss'\]\[0\] must be a number"),
     ({"loss": [1.0, -1.0]}, {"log_y": True}, ValueError, "values <= 0 and cannot use a log scale"),
     ({"loss": [1.0]}, {"log_y": ("accuracy",)}, ValueError, r"log_y names \['accuracy'\]"),
     ({"loss": [1.0]}, {"marks": [5]}, TypeError, "marks must be a dict of label -> step, got list"),
     ({"loss": [1.0]}, {"marks": {"diverged": "5"}}, TypeError, r"a finite number\), got 'diverged': '5'"),
     ({"loss": [1.0]}, {"marks": {"diverged": math.nan}}, TypeError, r"got 'diverged': nan"),
     ({"loss": [1.0]}, {"marks": {5: 5}}, TypeError, r"got 5: 5"),
     ({"loss": [1.0]}, {"marks": {"kept": np.bool_(True)}}, TypeError, r"got 'kept': np\.True_"),
     ({"loss": [1.0]}, {"marks": {"kept": 2 + 0j}}, TypeError, r"got 'kept': \(2\+0j\)"),
     ({"loss": [1.0]}, {"marks": {"kept": np.complex64(2)}}, TypeError, r"got 'kept': np\.complex64\(2\+0j\)"),
     ({"loss": [1.0]}, {"marks": {"kept": np.str_("5")}}, TypeError, r"got 'kept': np\.str_\('5'\)"),
     ],
)
def test_training_curves_refuses_bad_history(history, kwargs, error, match):
    with pytest.raises(error, match="training_curves: .*" + match):
        viz.training_curves(history, **kwargs)


@pytest.mark.single_backend
def test_panel_names():
    from minitransformer.viz.curves import panel_name

    assert [panel_name(n) for n in ("train_loss", "val_loss", "loss/valid", "test-accuracy", "lr", "train")] == \
        ["loss", "loss", "loss", "accuracy", "lr", "train"]


@pytest.mark.single_backend
def test_every_function_is_exported():
    assert set(viz.__all__) == {"draw_graph", "draw_architecture", "attention_heatmap", "attention_heads",
                                "attention_layers", "positional_encoding_heatmap", "positional_encoding_curves",
                                "position_similarity", "training_curves", "training_pictures"}


@pytest.mark.single_backend
@pytest.mark.parametrize("task", ["reverse", "classify", "charlm"])
def test_training_pictures_draw_each_map_with_the_mask_its_weights_had(task, tmp_path, monkeypatch):
    """The command line's pictures drew the character LM's self-attention without its causal mask: the future keys
    looked like allowed keys given weight 0 (plain dark), no hatching, no legend. Each map now has the mask its
    weights were computed with: causal for the LM; the source's padding, none for one example, elsewhere."""
    from minitransformer.train import tasks
    from minitransformer.viz import attention

    sizes = {"charlm": dict(seq_len=8, max_len=16), "classify": dict(n_train=16, n_val=4, n_test=4),
             "reverse": dict(n_train=16, n_val=4, n_test=4)}[task]
    setup = tasks.build(task, d_model=16, heads=2, layers=1, d_ff=32, **sizes)
    drawn, draw = [], attention.attention_heads
    monkeypatch.setattr(attention, "attention_heads", lambda *a, **k: drawn.append(draw(*a, **k)) or drawn[-1])
    viz.training_pictures(setup, {"train_loss": [(1, 2.5), (2, 2.0)]}, tmp_path)
    assert len(drawn) == len(setup.sample(setup.model)) >= 1
    for fig in drawn:
        L, S = _map_axes(fig)[0].images[0].get_array().shape
        hidden = {(i, j) for i in range(L) for j in range(S) if j > i} if task == "charlm" else set()
        for ax in _map_axes(fig):
            assert _hatched_cells(ax, L, S) == hidden
        assert [t.get_text() for legend in fig.legends for t in legend.get_texts()] == \
            (["masked: not allowed (weight 0)"] if hidden else [])


@pytest.mark.single_backend
def test_training_pictures_draw_a_sample_of_before_without_a_mask(tmp_path):
    """A task of one's own (docs/contributing.md) whose sample gives (name, weights, queries, keys), as every sample
    did before the masks, is drawn without one; it failed with 'not enough values to unpack (expected 5, got 4)'."""
    from minitransformer.train import tasks

    setup = tasks.build("reverse", d_model=16, heads=2, layers=1, d_ff=32, n_train=16, n_val=4, n_test=4)
    with_masks = setup.sample
    setup.sample = lambda model: [(name, w, q, k) for name, w, q, k, _ in with_masks(model)]
    paths = viz.training_pictures(setup, {"train_loss": [(1, 2.5), (2, 2.0)]}, tmp_path)
    assert [p.name for p in paths] == ["curves.png", "attention_cross_attention.png",
                                      "attention_encoder_self_attention.png"]


@pytest.mark.single_backend
def test_training_pictures_on_a_full_disk_leave_the_old_picture_whole_and_name_it(tmp_path, monkeypatch):
    """savefig wrote into the file itself: a full disk cut an earlier run's curves.png to its first bytes, and the
    error named no file ("minitransformer: No space left on device")."""
    import errno
    import os

    from minitransformer.train import tasks

    setup = tasks.build("reverse", n_train=16, n_val=4, n_test=4, d_model=16, heads=2, layers=1, d_ff=32)
    (tmp_path / "curves.png").write_bytes(b"the picture of the run before")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as e:
        viz.training_pictures(setup, {"train_loss": [(1, 2.5), (2, 2.0)]}, tmp_path)
    monkeypatch.undo()
    assert e.value.filename == str(tmp_path / "curves.png") and e.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == ["curves.png"]
    assert (tmp_path / "curves.png").read_bytes() == b"the picture of the run before"
