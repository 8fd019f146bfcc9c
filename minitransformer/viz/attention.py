r"""Attention maps: the weights :math:`\mathrm{softmax}(QK^\top/\sqrt{d_k})` as pictures, one cell per (query, key).

Row :math:`i` of a map is query :math:`i`'s weights over the keys (it sums to 1); column :math:`j` is
key :math:`j`. Queries run down the left edge, keys along the bottom, and every map is drawn on
the same colour scale, 0 to 1 by default, so that heads and layers can be compared by eye.
Given the ``mask`` the weights were computed with, a map draws the cells it hides in hatched light
grey, with no value written in them: "not allowed", told apart from "allowed, weight 0".

==================================  =====================================================
:func:`attention_heatmap`           one map ``(L, S)``, token labels, values in the cells
:func:`attention_heads`             every head of a layer ``(heads, L, S)``, one colour bar
:func:`attention_layers`            every layer and head for one input, a grid
==================================  =====================================================

Every function returns a :class:`matplotlib.figure.Figure`, built without ``pyplot`` (no global
state): show it in a notebook as the cell's value, or ``fig.savefig("attention.png")``. Inputs
are Tensors or arrays of any backend (NumPy, CuPy, array-api-strict), moved to the host here.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np  # the host side of a picture: matplotlib draws NumPy arrays
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path
from matplotlib.textpath import text_to_path

from .. import backend as _backend
from .._arguments import require_int
from ..autograd import Tensor

__all__ = ["attention_heatmap", "attention_heads", "attention_layers", "to_host"]

#: a map is annotated with its values when it has at most this many rows and columns
MAX_ANNOTATED = 12
CELL = 0.42  # inches per cell; larger when the values are written in
CELL_ANNOTATED = 0.55
FONT = 9
#: a token label needs this many times its font size along an axis (its line, and a little space to the next one);
#: where a cell is narrower, only every k-th position is labelled, k the fewest cells that give a label that room
LABEL_ROOM = 1.25
#: a key label of at most this many characters is written upright under its column; a longer one, rotated
UPRIGHT = 2
#: how a masked cell (a key the query may not attend to) is drawn -- this face, this hatch in this colour, no value
MASKED_FACE, MASKED_HATCH, MASKED_HATCH_COLOUR = "#e4e4e4", "///", "#8c8c8c"


def to_host(x, name: str = "array", where: str = "viz") -> np.ndarray:
    """A Tensor, an array of any backend, or nested lists, as a float64 NumPy array on the host.

    Parameters
    ----------
    x : Tensor, array or nested lists
        Numbers of any shape, on any backend (NumPy, CuPy, array-api-strict).
    name, where : str
        How an error message names ``x`` and the function that received it.

    Returns
    -------
    numpy.ndarray
        float64, of the same shape as ``x``.

    Raises
    ------
    TypeError
        When ``x`` is not numbers, or is an array of no known backend.

    Examples
    --------
    >>> import minitransformer as mt
    >>> to_host(mt.tensor([[1, 2, 3]])).dtype, to_host([[0.5], [1.5]]).shape
    (dtype('float64'), (2, 1))
    """
    return _host(x, name, where, np.float64)


def _host(x, name: str, where: str, dtype=None) -> np.ndarray:
    """:func:`to_host` as ``dtype``, or in the dtype ``x`` has when None (a mask stays bool)."""
    what = "numbers" if dtype is not None else "an array"
    if isinstance(x, Tensor):
        return np.asarray(x.numpy(), dtype=dtype)
    if isinstance(x, np.ndarray | np.generic | list | tuple | int | float):
        try:
            return np.asarray(x, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}: {name} must be {what} (a Tensor or an array), got {type(x).__name__}: {e}") \
                from None
    for be_name in _backend.available():
        be = _backend.get(be_name)
        if be.owns(x):
            return np.asarray(be.to_host(x), dtype=dtype)
    raise TypeError(f"{where}: {name} must be a Tensor or an array of a known backend, got {type(x).__name__}")


def _labels(labels, n: int, name: str, axis: str, where: str) -> list[str]:
    """``labels`` as ``n`` strings (positions 0..n-1 when None), or a clear error naming the mismatch."""
    if labels is None:
        return [str(i) for i in range(n)]
    if isinstance(labels, str):
        raise TypeError(f"{where}: {name} must be a list of {n} labels (one per {axis}), got the string {labels!r}")
    labels = [str(label) for label in labels]
    if len(labels) != n:
        raise ValueError(f"{where}: {len(labels)} {name} given, {n} needed (one per {axis})")
    return labels


def _weights(weights, ndim: int, where: str, shape_name: str) -> np.ndarray:
    """The weights on the host, checked to have ``ndim`` axes and no empty one."""
    W = to_host(weights, "weights", where)
    if W.ndim != ndim:
        hint = {2: "attention_heatmap takes one map (L, S)", 3: "attention_heads takes (heads, L, S)",
                4: "pick one example of the batch, e.g. weights[0]"}.get(W.ndim, "")
        raise ValueError(f"{where}: weights must be {ndim}-D {shape_name}, got shape {tuple(W.shape)}"
                         + (f" ({hint})" if hint else ""))
    if 0 in W.shape:
        raise ValueError(f"{where}: weights {shape_name} has an empty axis: shape {tuple(W.shape)}")
    return W


def _mask(mask, shape: tuple[int, ...], where: str, shape_name: str) -> np.ndarray | None:
    """The mask on the host, bool, broadcast to the weights' ``shape`` (None stays None), or a clear error.

    Leading axes of size 1 are dropped first, so that ``combine_masks(pad, causal)[b]``, ``(1, L, S)``,
    does for one map ``(L, S)`` too.
    """
    if mask is None:
        return None
    M = _host(mask, "mask", where)
    if M.dtype != np.bool_:
        raise TypeError(f"{where}: mask must be boolean (True where attention is allowed, as F.causal_mask and "
                        f"F.padding_mask make), got {M.dtype} with shape {tuple(M.shape)}")
    given = tuple(M.shape)
    while M.ndim > len(shape) and M.shape[0] == 1:
        M = M[0]
    try:
        return np.broadcast_to(M, shape)
    except ValueError:
        hint = " (pick the example's mask, e.g. mask[b, 0] of a (batch, 1, L, S) mask)" if len(given) > len(shape) \
            else ""
        raise ValueError(f"{where}: mask of shape {given} does not broadcast to the weights' shape {tuple(shape)} "
                         f"{shape_name}{hint}") from None


def _runs(hidden: np.ndarray) -> Path:
    """The hidden cells of an ``(L, S)`` map as one path: a rectangle per run of hidden cells in a row.

    One path, hatched once, instead of a patch per cell: a causal mask of 200 positions is 200 rectangles, not
    20,100 patches.
    """
    vertices, codes = [], []
    for i in range(hidden.shape[0]):
        row = np.concatenate([[False], hidden[i], [False]]).astype(np.int8)
        starts, ends = np.flatnonzero(np.diff(row) == 1), np.flatnonzero(np.diff(row) == -1)
        for j0, j1 in zip(starts, ends, strict=True):  # cells j0 .. j1 - 1 are hidden
            x0, x1, y0, y1 = j0 - 0.5, j1 - 0.5, i - 0.5, i + 0.5
            vertices += [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
            codes += [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
    return Path(vertices, codes)


def _masked_note(fig: Figure):
    """A one-entry legend under the figure: the hatched swatch is a masked cell."""
    swatch = Patch(facecolor=MASKED_FACE, edgecolor=MASKED_HATCH_COLOUR, hatch=MASKED_HATCH, linewidth=0,
                   label="masked: not allowed (weight 0)")
    fig.legend(handles=[swatch], loc="outside lower right", frameon=False, fontsize=FONT - 1, handlelength=1.6,
               handleheight=1.2)


def _annotate(annotate, L: int, S: int, limit: int) -> bool:
    return (L <= limit and S <= limit) if annotate is None else bool(annotate)


def _draw_map(ax, W: np.ndarray, norm: Normalize, cmap: str, annotate: bool, fmt: str, fontsize: float,
              allowed: np.ndarray | None = None):
    """One (L, S) map on ``ax``: the image, and (optionally) each value written in its cell.

    Where ``allowed`` is False the image's array is masked (drawn in :data:`MASKED_FACE`), one hatched
    :class:`~matplotlib.patches.PathPatch` covers those cells, and no value is written in them.
    """
    if allowed is None:
        hidden, image = np.zeros(W.shape, dtype=bool), W
    else:  # the masked cells take the colour map's "bad" colour
        hidden = ~allowed
        image = np.ma.masked_array(W, mask=hidden)
        cmap = (matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap).with_extremes(bad=MASKED_FACE)
    im = ax.imshow(image, cmap=cmap, norm=norm, aspect="equal", interpolation="nearest")
    if hidden.any():
        ax.add_patch(PathPatch(_runs(hidden), facecolor="none", edgecolor=MASKED_HATCH_COLOUR, linewidth=0,
                               hatch=MASKED_HATCH, gid="masked"))
    if annotate:
        colours = _text_colours(im.cmap(norm(W)))  # (L, S): the more readable of white and black on each cell
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                if not hidden[i, j]:
                    ax.text(j, i, format(W[i, j], fmt), ha="center", va="center", fontsize=fontsize,
                            color=colours[i, j])
    return im


def _relative_luminance(rgb: np.ndarray) -> np.ndarray:
    r"""WCAG 2.x relative luminance of sRGB colours ``(..., 3)`` (or RGBA ``(..., 4)``, alpha ignored), in [0, 1].

    .. math:: L = 0.2126\,R + 0.7152\,G + 0.0722\,B, \qquad
              R = \begin{cases} R_s / 12.92 & R_s \le 0.04045 \\ ((R_s + 0.055) / 1.055)^{2.4} & \text{else} \end{cases}

    from the linearised channels, not the gamma-encoded ones (Rec.601 luma of those puts white text on mid-viridis,
    2.9:1, where black gives 7.3:1).
    """
    encoded = np.asarray(rgb, dtype=np.float64)[..., :3]
    linear = np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def _contrast_ratio(L1, L2):
    r"""WCAG 2.x contrast ratio of two relative luminances, :math:`(L_{light} + 0.05) / (L_{dark} + 0.05)`, 1 to 21."""
    return (np.maximum(L1, L2) + 0.05) / (np.minimum(L1, L2) + 0.05)


def _text_colours(background: np.ndarray) -> np.ndarray:
    """``"white"`` or ``"black"`` for text on each colour of ``background`` ``(..., 3 or 4)``: the one of the larger
    WCAG contrast ratio: at least 4.58:1 on any colour (the two tie at L = 0.179), over WCAG's 4.5:1 for text."""
    L = _relative_luminance(background)
    return np.where(_contrast_ratio(L, 1.0) > _contrast_ratio(L, 0.0), "white", "black")


def _ticks(ax, labels: list[str], axis: str, show: bool, fontsize: float, cell: float):
    """Token labels on an axis whose cells are ``cell`` inches long, or none: every k-th label where a cell is
    narrower than a label (:data:`LABEL_ROOM` times the font size; an upright label's width where it is wider).

    Under a map, labels of more than :data:`UPRIGHT` characters stand rotated (they would overlap); shorter
    ones stay upright, since a rotated ``-`` reads as ``'`` or ``|``, ``<`` as ``^``.
    """
    upright = {label for label in labels if len(label) <= UPRIGHT} if axis == "x" else set()
    font = FontProperties(size=fontsize)
    widest = max((text_to_path.get_text_width_height_descent(label, font, ismath=False)[0] for label in upright),
                 default=0.0)  # (a label's advance: a space is as wide as it is, though it draws nothing)
    room = max(LABEL_ROOM * fontsize, widest + 0.3 * fontsize)  # points a label needs along the axis
    step = max(1, math.ceil(room / (72 * cell)))  # 72 points to the inch
    positions, labels = range(0, len(labels), step), labels[::step]
    if axis == "x":
        ax.set_xticks(positions, labels=labels if show else [], fontsize=fontsize)
        for tick, label in zip(ax.get_xticklabels(), labels):
            tick.set_rotation(90 if len(label) > UPRIGHT else 0)
    else:
        ax.set_yticks(positions, labels=labels if show else [], fontsize=fontsize)
    ax.tick_params(length=0)


def _size(n: int, cell: float, labels: list[str], lo: float = 0.0) -> float:
    """Inches for ``n`` cells plus room for the longest label."""
    return n * cell + 0.08 * max(map(len, labels)) + lo


def attention_heatmap(weights, query_labels=None, key_labels=None, title: str | None = None, annotate=None, *,
                      mask=None, vmin: float = 0.0, vmax: float | None = 1.0, cmap: str = "viridis",
                      fmt: str = ".2f", max_annotated: int = MAX_ANNOTATED) -> Figure:
    r"""One attention map: how much each query (row) attends to each key (column).

    A masked key's weight is exactly 0, which the colours alone draw as any weight of 0 (the darkest colour,
    "0.00"). Pass the ``mask`` the weights were computed with and the cells it hides are drawn in hatched light
    grey, with no value written in them, and a note under the map says so: "not allowed" is then told apart from
    "allowed, but weight 0". (An allowed weight too small to see is told apart by ``annotate``, to ``fmt``'s
    digits.)

    Parameters
    ----------
    weights : Tensor or array
        ``(L, S)`` attention weights, e.g. the second result of
        :func:`~minitransformer.functional.scaled_dot_product_attention` for one example and head.
    query_labels, key_labels : list of str, optional
        The tokens of the ``L`` queries and the ``S`` keys (positions 0, 1, ... by default). Where a cell is
        smaller than a label's font (a long sequence), only every k-th position is labelled.
    title : str, optional
    annotate : bool, optional
        Write each weight in its cell; by default when the map has at most ``max_annotated``
        (12) rows and columns.
    mask : Tensor or array of bool, optional
        True where the query may attend to the key, as :func:`~minitransformer.functional.causal_mask`
        and :func:`~minitransformer.functional.padding_mask` make; broadcasts to ``(L, S)`` (leading
        axes of size 1 are dropped). Its False cells are drawn hatched grey, with no value, whatever
        their weight.
    vmin, vmax : float
        The colour scale, 0 to 1 by default (the range of a weight) so that maps compare;
        ``vmax=None`` stretches it to the largest weight.
    cmap, fmt : str
        Colour map; format of the written values.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the map (``fig.axes[0]``) and its colour bar; with a mask that hides a cell, the
        map's image array is masked there, one hatched patch covers those cells, and the figure has
        a legend.

    Raises
    ------
    ValueError
        When ``weights`` is not ``(L, S)``, the labels are not ``L`` and ``S``, or ``mask`` does not
        broadcast to ``(L, S)``.
    TypeError
        When ``weights`` is not numbers, or ``mask`` is not boolean.

    Examples
    --------
    >>> fig = attention_heatmap([[0.9, 0.1], [0.3, 0.7]], ["I", "am"], ["I", "am"])
    >>> len(fig.axes), len(fig.axes[0].texts)
    (2, 4)

    With the causal mask the weights were computed with, the hidden cell (query 0, key 1) has no value:

    >>> from minitransformer.functional import causal_mask
    >>> fig = attention_heatmap([[1.0, 0.0], [0.3, 0.7]], ["I", "am"], ["I", "am"], mask=causal_mask(2))
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['1.00', '0.30', '0.70']
    """
    where = "attention_heatmap"
    W = _weights(weights, 2, where, "(L queries, S keys)")
    L, S = W.shape
    allowed = _mask(mask, W.shape, where, "(L queries, S keys)")
    rows = _labels(query_labels, L, "query_labels", "query: row of weights", where)
    cols = _labels(key_labels, S, "key_labels", "key: column of weights", where)
    show_values = _annotate(annotate, L, S, max_annotated)
    cell = CELL_ANNOTATED if show_values else CELL
    frame_w, frame_h = _size(0, cell, rows, 2.0), _size(0, cell, cols, 1.2 + 0.3 * bool(title))  # not cells
    width, height = min(16.0, max(3.5, frame_w + S * cell)), min(16.0, max(3.0, frame_h + L * cell))
    cell = min(cell, (width - frame_w) / S, (height - frame_h) / L)  # smaller where 16 inches cap the figure
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    norm = Normalize(vmin, float(W.max()) if vmax is None else vmax)
    im = _draw_map(ax, W, norm, cmap, show_values, fmt, FONT - 1, allowed)
    _ticks(ax, cols, "x", True, FONT, cell)
    _ticks(ax, rows, "y", True, FONT, cell)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, label="attention weight", shrink=min(1.0, max(0.5, L / 8)))
    if allowed is not None and not allowed.all():
        _masked_note(fig)
    return fig


def _grid(fig: Figure, maps: list[list[np.ndarray]], rows: list[str], cols: list[str], annotate: bool,
          row_titles: list[str] | None, titles: list[list[str]], norm: Normalize, cmap: str, fmt: str, cell: float,
          allowed: list[list[np.ndarray]] | None = None):
    """A grid of maps ``maps[r][c]`` titled ``titles[r][c]`` (masked where ``allowed[r][c]`` is False), of cells
    ``cell`` inches wide; token labels on the left column and bottom row only."""
    nrows, ncols = len(maps), max(map(len, maps))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fontsize = FONT - 2
    drawn = []
    for r in range(nrows):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(maps[r]):
                ax.remove()  # an empty cell of the grid (heads not a multiple of the columns)
                continue
            im = _draw_map(ax, maps[r][c], norm, cmap, annotate, fmt, fontsize,
                           None if allowed is None else allowed[r][c])
            below_is_empty = r + 1 >= nrows or c >= len(maps[r + 1])
            _ticks(ax, cols, "x", below_is_empty, FONT - 1, cell)
            _ticks(ax, rows, "y", c == 0, FONT - 1, cell)
            if below_is_empty:
                ax.set_xlabel("key", fontsize=FONT)
            if c == 0:
                ax.set_ylabel(("" if row_titles is None else row_titles[r] + "\n") + "query", fontsize=FONT)
            ax.set_title(titles[r][c], fontsize=FONT)
            drawn.append(ax)
    fig.colorbar(im, ax=drawn, label="attention weight", shrink=0.9 if nrows > 1 else 1.0)
    if allowed is not None and not all(a.all() for row in allowed for a in row):
        _masked_note(fig)
    return drawn


def _grid_size(nrows: int, ncols: int, L: int, S: int, annotate: bool, rows: list[str], cols: list[str],
               title: bool, ragged: bool = False) -> tuple[float, float, float]:
    """Inches for a grid of maps, width and height, and for each cell; a ragged grid (a short last row) has key
    labels under every row.

    A grid wider or taller than 30 inches gets smaller cells, not a smaller frame around maps of the same
    size: capping one side alone left the maps (square cells) filling a fraction of the other.
    """
    key_labels = 0.08 * max(map(len, cols)) + 0.4  # the rotated tokens and the word "key"
    frame_w = ncols * 0.35 + 0.08 * max(map(len, rows)) + 1.6  # the inches that are not cells
    frame_h = nrows * 0.45 + key_labels * (nrows if ragged else 1) + 0.3 + 0.35 * title
    cell = (CELL_ANNOTATED if annotate else CELL) * 0.9
    cell = max(min(cell, (30.0 - frame_w) / (ncols * S), (30.0 - frame_h) / (nrows * L)), 0.01)  # fit 30 inches
    return min(frame_w + ncols * S * cell, 30.0), min(frame_h + nrows * L * cell, 30.0), cell


def attention_heads(weights, query_labels=None, key_labels=None, title: str | None = None, annotate=None, *,
                    mask=None, ncols: int | None = None, vmin: float = 0.0, vmax: float | None = 1.0,
                    cmap: str = "viridis", fmt: str = ".2f", max_annotated: int = MAX_ANNOTATED) -> Figure:
    r"""Every head of one attention layer side by side: what :math:`\mathrm{head}_1 \ldots \mathrm{head}_h` look at.

    Parameters
    ----------
    weights : Tensor or array
        ``(heads, L, S)``: one example's weights from a multi-head attention layer
        (``weights[0]`` of a ``(batch, heads, L, S)`` result).
    query_labels, key_labels : list of str, optional
        Tokens of the queries and keys (shared by all heads); every k-th only where a cell is smaller than the
        labels' font.
    title : str, optional
    annotate : bool, optional
        Values in the cells; by default when ``L, S <= max_annotated``.
    mask : Tensor or array of bool, optional
        True where attention is allowed; broadcasts to ``(heads, L, S)``: a causal ``(L, L)`` mask,
        a padding mask's ``(1, 1, S)`` or ``(1, S)``, or one per head. Hidden cells are drawn as in
        :func:`attention_heatmap`.
    ncols : int, optional
        Heads per row (at most 4 by default).
    vmin, vmax, cmap, fmt
        As in :func:`attention_heatmap`; one colour scale for all heads.

    Returns
    -------
    matplotlib.figure.Figure
        ``heads`` map axes titled ``head 1`` ... ``head h`` (the paper counts from 1), then one
        colour bar: ``heads + 1`` axes (and a legend when a mask hides a cell).

    Examples
    --------
    >>> fig = attention_heads([[[1.0, 0.0], [0.5, 0.5]], [[0.2, 0.8], [0.6, 0.4]]], ["a", "b"], ["a", "b"])
    >>> [ax.get_title() for ax in fig.axes[:2]], len(fig.axes)
    (['head 1', 'head 2'], 3)
    """
    where = "attention_heads"
    W = _weights(weights, 3, where, "(heads, L queries, S keys)")
    H, L, S = W.shape
    M = _mask(mask, W.shape, where, "(heads, L queries, S keys)")
    rows = _labels(query_labels, L, "query_labels", "query", where)
    cols = _labels(key_labels, S, "key_labels", "key", where)
    if ncols is None:
        ncols = min(H, 4)
    ncols = min(require_int(where, "ncols", ncols, low=1), H)
    nrows = math.ceil(H / ncols)
    maps = [[W[h] for h in range(r * ncols, min(H, (r + 1) * ncols))] for r in range(nrows)]
    titles = [[f"head {h + 1}" for h in range(r * ncols, min(H, (r + 1) * ncols))] for r in range(nrows)]
    allowed = None if M is None else [[M[h] for h in range(r * ncols, min(H, (r + 1) * ncols))]
                                      for r in range(nrows)]
    show_values = _annotate(annotate, L, S, max_annotated)
    *size, cell = _grid_size(nrows, ncols, L, S, show_values, rows, cols, bool(title), ragged=H % ncols != 0)
    fig = Figure(figsize=size, layout="constrained")
    norm = Normalize(vmin, float(W.max()) if vmax is None else vmax)
    _grid(fig, maps, rows, cols, show_values, None, titles, norm, cmap, fmt, cell, allowed)
    if title:
        fig.suptitle(title)
    return fig


def attention_layers(layers, query_labels=None, key_labels=None, title: str | None = None, annotate=None, *,
                     mask=None, vmin: float = 0.0, vmax: float | None = 1.0, cmap: str = "viridis", fmt: str = ".2f",
                     max_annotated: int = 8) -> Figure:
    r"""All layers (rows) by all heads (columns) for one input: how attention changes with depth.

    Parameters
    ----------
    layers : list of Tensor or array
        One ``(heads, L, S)`` per layer, all the same shape (e.g. each encoder layer's
        self-attention weights for one example).
    query_labels, key_labels : list of str, optional
        As in :func:`attention_heads` (every k-th where a cell is smaller than the labels' font).
    title : str, optional
    annotate : bool, optional
        Values in the cells; by default when ``L, S <= max_annotated`` (8: the grid is dense).
    mask : Tensor or array of bool, optional
        True where attention is allowed; broadcasts to ``(heads, L, S)`` and is the same for every
        layer (one input's mask, e.g. a causal ``(L, L)``). Hidden cells are drawn as in
        :func:`attention_heatmap`.
    vmin, vmax, cmap, fmt
        As in :func:`attention_heatmap`; one colour scale for the whole grid.

    Returns
    -------
    matplotlib.figure.Figure
        ``layers * heads`` map axes (row by row; rows labelled ``layer 1`` ..., columns titled
        ``head 1`` ...), then one colour bar (and a legend when a mask hides a cell).

    Examples
    --------
    >>> fig = attention_layers([[[[1.0, 0.0], [0.5, 0.5]]]] * 3)
    >>> len(fig.axes)
    4
    """
    where = "attention_layers"
    if isinstance(layers, Tensor) or not isinstance(layers, list | tuple) or not layers:
        raise TypeError(f"{where}: layers must be a non-empty list of (heads, L, S) weights, one per layer, "
                        f"got {type(layers).__name__}")
    Ws = [_weights(w, 3, f"{where} (layer {n + 1})", "(heads, L queries, S keys)") for n, w in enumerate(layers)]
    shape = Ws[0].shape
    for n, W in enumerate(Ws):
        if W.shape != shape:
            raise ValueError(f"{where}: layer {n + 1} has weights of shape {W.shape}, layer 1 {shape}: "
                             "every layer must have the same (heads, L, S)")
    H, L, S = shape
    M = _mask(mask, shape, where, "(heads, L queries, S keys), the same for every layer")
    rows = _labels(query_labels, L, "query_labels", "query", where)
    cols = _labels(key_labels, S, "key_labels", "key", where)
    show_values = _annotate(annotate, L, S, max_annotated)
    *size, cell = _grid_size(len(Ws), H, L, S, show_values, rows, cols, bool(title))
    fig = Figure(figsize=size, layout="constrained")
    norm = Normalize(vmin, max(float(W.max()) for W in Ws) if vmax is None else vmax)
    maps = [[W[h] for h in range(H)] for W in Ws]
    titles = [[f"head {h + 1}" if n == 0 else "" for h in range(H)] for n in range(len(Ws))]  # heads named on top
    allowed = None if M is None else [[M[h] for h in range(H)] for _ in Ws]
    _grid(fig, maps, rows, cols, show_values, [f"layer {n + 1}" for n in range(len(Ws))], titles, norm, cmap, fmt,
          cell, allowed)
    if title:
        fig.suptitle(title)
    return fig
