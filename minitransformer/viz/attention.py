r"""Attention maps: the weights :math:`\mathrm{softmax}(QK^\top/\sqrt{d_k})` as pictures, one cell per (query, key).

Row :math:`i` of a map is query :math:`i`'s weights over the keys (it sums to 1); column :math:`j` is
key :math:`j`. Queries run down the left edge, keys along the bottom, and every map is drawn on
the same colour scale, 0 to 1 by default, so that heads and layers can be compared by eye.

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

import numpy as np  # the host side of a picture: matplotlib draws NumPy arrays
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .. import backend as _backend
from ..autograd import Tensor
from ..functional._checks import require_int

__all__ = ["attention_heatmap", "attention_heads", "attention_layers", "to_host"]

#: a map is annotated with its values when it has at most this many rows and columns
MAX_ANNOTATED = 12
CELL = 0.42  # inches per cell; larger when the values are written in
CELL_ANNOTATED = 0.55
#: a long axis labels every (positions // MAX_TICKS)-th position only: 200 labels would overlap
MAX_TICKS = 24
FONT = 9


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
    if isinstance(x, Tensor):
        return x.numpy().astype(np.float64)
    if isinstance(x, np.ndarray | np.generic | list | tuple | int | float):
        try:
            return np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}: {name} must be numbers (a Tensor or an array), got {type(x).__name__}: {e}") \
                from None
    for be_name in _backend.available():
        be = _backend.get(be_name)
        if be.owns(x):
            return np.asarray(be.to_host(x), dtype=np.float64)
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


def _annotate(annotate, L: int, S: int, limit: int) -> bool:
    return (L <= limit and S <= limit) if annotate is None else bool(annotate)


def _draw_map(ax, W: np.ndarray, norm: Normalize, cmap: str, annotate: bool, fmt: str, fontsize: float):
    """One (L, S) map on ``ax``: the image, and (optionally) each value written in its cell."""
    im = ax.imshow(W, cmap=cmap, norm=norm, aspect="equal", interpolation="nearest")
    if annotate:
        colours = im.cmap(norm(W))  # (L, S, 4): the cell colours, to pick a readable text colour
        luminance = colours[..., :3] @ np.array([0.299, 0.587, 0.114])
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                ax.text(j, i, format(W[i, j], fmt), ha="center", va="center", fontsize=fontsize,
                        color="white" if luminance[i, j] < 0.5 else "black")
    return im


def _ticks(ax, labels: list[str], axis: str, show: bool, fontsize: float):
    """Token labels on an axis (rotated when long; past :data:`MAX_TICKS` of them, every k-th), or none."""
    step = max(1, len(labels) // MAX_TICKS)  # fewer than 2 * MAX_TICKS labels: they fit at a figure's largest size
    positions, labels = range(0, len(labels), step), labels[::step]
    if axis == "x":
        rotate = max(map(len, labels)) > 2
        ax.set_xticks(positions, labels=labels if show else [], rotation=90 if rotate else 0, fontsize=fontsize)
    else:
        ax.set_yticks(positions, labels=labels if show else [], fontsize=fontsize)
    ax.tick_params(length=0)


def _size(n: int, cell: float, labels: list[str], lo: float = 0.0) -> float:
    """Inches for ``n`` cells plus room for the longest label."""
    return n * cell + 0.08 * max(map(len, labels)) + lo


def attention_heatmap(weights, query_labels=None, key_labels=None, title: str | None = None, annotate=None, *,
                      vmin: float = 0.0, vmax: float | None = 1.0, cmap: str = "viridis", fmt: str = ".2f",
                      max_annotated: int = MAX_ANNOTATED) -> Figure:
    r"""One attention map: how much each query (row) attends to each key (column).

    A masked key's weight is exactly 0 and is drawn as any weight of 0 is (the darkest colour, "0.00"): the map
    shows weights, not the mask; a weight too small to see is told apart by ``annotate`` only to ``fmt``'s digits.

    Parameters
    ----------
    weights : Tensor or array
        ``(L, S)`` attention weights, e.g. the second result of
        :func:`~minitransformer.functional.scaled_dot_product_attention` for one example and head.
    query_labels, key_labels : list of str, optional
        The tokens of the ``L`` queries and the ``S`` keys (positions 0, 1, ... by default).
    title : str, optional
    annotate : bool, optional
        Write each weight in its cell; by default when the map has at most ``max_annotated``
        (12) rows and columns.
    vmin, vmax : float
        The colour scale, 0 to 1 by default (the range of a weight) so that maps compare;
        ``vmax=None`` stretches it to the largest weight.
    cmap, fmt : str
        Colour map; format of the written values.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the map (``fig.axes[0]``) and its colour bar.

    Examples
    --------
    >>> fig = attention_heatmap([[0.9, 0.1], [0.3, 0.7]], ["I", "am"], ["I", "am"])
    >>> len(fig.axes), len(fig.axes[0].texts)
    (2, 4)
    """
    where = "attention_heatmap"
    W = _weights(weights, 2, where, "(L queries, S keys)")
    L, S = W.shape
    rows = _labels(query_labels, L, "query_labels", "query: row of weights", where)
    cols = _labels(key_labels, S, "key_labels", "key: column of weights", where)
    show_values = _annotate(annotate, L, S, max_annotated)
    cell = CELL_ANNOTATED if show_values else CELL
    width = min(16.0, max(3.5, _size(S, cell, rows, 2.0)))
    height = min(16.0, max(3.0, _size(L, cell, cols, 1.2 + 0.3 * bool(title))))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    norm = Normalize(vmin, float(W.max()) if vmax is None else vmax)
    im = _draw_map(ax, W, norm, cmap, show_values, fmt, FONT - 1)
    _ticks(ax, cols, "x", True, FONT)
    _ticks(ax, rows, "y", True, FONT)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, label="attention weight", shrink=min(1.0, max(0.5, L / 8)))
    return fig


def _grid(fig: Figure, maps: list[list[np.ndarray]], rows: list[str], cols: list[str], annotate: bool,
          row_titles: list[str] | None, titles: list[list[str]], norm: Normalize, cmap: str, fmt: str):
    """A grid of maps ``maps[r][c]`` titled ``titles[r][c]``; token labels on the left column and bottom row only."""
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
            im = _draw_map(ax, maps[r][c], norm, cmap, annotate, fmt, fontsize)
            below_is_empty = r + 1 >= nrows or c >= len(maps[r + 1])
            _ticks(ax, cols, "x", below_is_empty, FONT - 1)
            _ticks(ax, rows, "y", c == 0, FONT - 1)
            if below_is_empty:
                ax.set_xlabel("key", fontsize=FONT)
            if c == 0:
                ax.set_ylabel(("" if row_titles is None else row_titles[r] + "\n") + "query", fontsize=FONT)
            ax.set_title(titles[r][c], fontsize=FONT)
            drawn.append(ax)
    fig.colorbar(im, ax=drawn, label="attention weight", shrink=0.9 if nrows > 1 else 1.0)
    return drawn


def _grid_size(nrows: int, ncols: int, L: int, S: int, annotate: bool, rows: list[str], cols: list[str],
               title: bool, ragged: bool = False) -> tuple[float, float]:
    """Inches for a grid of maps; a ragged grid (a short last row) has key labels under every row.

    A grid wider or taller than 30 inches gets smaller cells, not a smaller frame around maps of the same
    size: capping one side alone left the maps (square cells) filling a fraction of the other.
    """
    key_labels = 0.08 * max(map(len, cols)) + 0.4  # the rotated tokens and the word "key"
    frame_w = ncols * 0.35 + 0.08 * max(map(len, rows)) + 1.6  # the inches that are not cells
    frame_h = nrows * 0.45 + key_labels * (nrows if ragged else 1) + 0.3 + 0.35 * title
    cell = (CELL_ANNOTATED if annotate else CELL) * 0.9
    cell = max(min(cell, (30.0 - frame_w) / (ncols * S), (30.0 - frame_h) / (nrows * L)), 0.01)  # fit 30 inches
    return min(frame_w + ncols * S * cell, 30.0), min(frame_h + nrows * L * cell, 30.0)


def attention_heads(weights, query_labels=None, key_labels=None, title: str | None = None, annotate=None, *,
                    ncols: int | None = None, vmin: float = 0.0, vmax: float | None = 1.0, cmap: str = "viridis",
                    fmt: str = ".2f", max_annotated: int = MAX_ANNOTATED) -> Figure:
    r"""Every head of one attention layer side by side: what :math:`\mathrm{head}_1 \ldots \mathrm{head}_h` look at.

    Parameters
    ----------
    weights : Tensor or array
        ``(heads, L, S)``: one example's weights from a multi-head attention layer
        (``weights[0]`` of a ``(batch, heads, L, S)`` result).
    query_labels, key_labels : list of str, optional
        Tokens of the queries and keys (shared by all heads).
    title : str, optional
    annotate : bool, optional
        Values in the cells; by default when ``L, S <= max_annotated``.
    ncols : int, optional
        Heads per row (at most 4 by default).
    vmin, vmax, cmap, fmt
        As in :func:`attention_heatmap`; one colour scale for all heads.

    Returns
    -------
    matplotlib.figure.Figure
        ``heads`` map axes titled ``head 1`` ... ``head h`` (the paper counts from 1), then one
        colour bar: ``heads + 1`` axes.

    Examples
    --------
    >>> fig = attention_heads([[[1.0, 0.0], [0.5, 0.5]], [[0.2, 0.8], [0.6, 0.4]]], ["a", "b"], ["a", "b"])
    >>> [ax.get_title() for ax in fig.axes[:2]], len(fig.axes)
    (['head 1', 'head 2'], 3)
    """
    where = "attention_heads"
    W = _weights(weights, 3, where, "(heads, L queries, S keys)")
    H, L, S = W.shape
    rows = _labels(query_labels, L, "query_labels", "query", where)
    cols = _labels(key_labels, S, "key_labels", "key", where)
    if ncols is None:
        ncols = min(H, 4)
    ncols = min(require_int(where, "ncols", ncols, low=1), H)
    nrows = math.ceil(H / ncols)
    maps = [[W[h] for h in range(r * ncols, min(H, (r + 1) * ncols))] for r in range(nrows)]
    titles = [[f"head {h + 1}" for h in range(r * ncols, min(H, (r + 1) * ncols))] for r in range(nrows)]
    show_values = _annotate(annotate, L, S, max_annotated)
    size = _grid_size(nrows, ncols, L, S, show_values, rows, cols, bool(title), ragged=H % ncols != 0)
    fig = Figure(figsize=size, layout="constrained")
    norm = Normalize(vmin, float(W.max()) if vmax is None else vmax)
    _grid(fig, maps, rows, cols, show_values, None, titles, norm, cmap, fmt)
    if title:
        fig.suptitle(title)
    return fig


def attention_layers(layers, query_labels=None, key_labels=None, title: str | None = None, annotate=None, *,
                     vmin: float = 0.0, vmax: float | None = 1.0, cmap: str = "viridis", fmt: str = ".2f",
                     max_annotated: int = 8) -> Figure:
    r"""All layers (rows) by all heads (columns) for one input: how attention changes with depth.

    Parameters
    ----------
    layers : list of Tensor or array
        One ``(heads, L, S)`` per layer, all the same shape (e.g. each encoder layer's
        self-attention weights for one example).
    query_labels, key_labels : list of str, optional
    title : str, optional
    annotate : bool, optional
        Values in the cells; by default when ``L, S <= max_annotated`` (8: the grid is dense).
    vmin, vmax, cmap, fmt
        As in :func:`attention_heatmap`; one colour scale for the whole grid.

    Returns
    -------
    matplotlib.figure.Figure
        ``layers * heads`` map axes (row by row; rows labelled ``layer 1`` ..., columns titled
        ``head 1`` ...), then one colour bar.

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
    rows = _labels(query_labels, L, "query_labels", "query", where)
    cols = _labels(key_labels, S, "key_labels", "key", where)
    show_values = _annotate(annotate, L, S, max_annotated)
    fig = Figure(figsize=_grid_size(len(Ws), H, L, S, show_values, rows, cols, bool(title)), layout="constrained")
    norm = Normalize(vmin, max(float(W.max()) for W in Ws) if vmax is None else vmax)
    maps = [[W[h] for h in range(H)] for W in Ws]
    titles = [[f"head {h + 1}" if n == 0 else "" for h in range(H)] for n in range(len(Ws))]  # heads named on top
    _grid(fig, maps, rows, cols, show_values, [f"layer {n + 1}" for n in range(len(Ws))], titles, norm, cmap, fmt)
    if title:
        fig.suptitle(title)
    return fig
