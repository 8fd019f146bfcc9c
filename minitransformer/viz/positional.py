r"""Positional encodings as pictures: the table, a few of its columns as waves, and which positions look alike.

.. math::
    PE_{(pos, 2i)} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad
    PE_{(pos, 2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)

(document section 4.1.3; paper section 3.5). Each function takes any ``(positions, d_model)``
table: the sinusoids of :func:`~minitransformer.functional.sinusoidal_positional_encoding`, or the
trained rows of a learned positional embedding, to compare the two.

======================================  ======================================================
:func:`positional_encoding_heatmap`     the whole table: position down, dimension across
:func:`positional_encoding_curves`      chosen columns against the position: waves, fast to slow
:func:`position_similarity`             :math:`PE\,PE^\top`: how alike every two positions are
======================================  ======================================================
"""

from __future__ import annotations

import numpy as np  # the host side of a picture
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .. import autograd
from ..autograd import Tensor, no_grad
from ..autograd.creation import tensor
from .attention import FONT, MAX_ANNOTATED, _annotate, _draw_map, _labels, _ticks, to_host
from .curves import _series_style

__all__ = ["positional_encoding_heatmap", "positional_encoding_curves", "position_similarity"]


def _table(PE, where: str) -> np.ndarray:
    P = to_host(PE, "PE", where)
    if P.ndim != 2:
        raise ValueError(f"{where}: PE must be 2-D (positions, d_model), got shape {tuple(P.shape)}"
                         + (" (drop the batch axis: PE[0])" if P.ndim == 3 else ""))
    if 0 in P.shape:
        raise ValueError(f"{where}: PE (positions, d_model) has an empty axis: shape {tuple(P.shape)}")
    return P


def _symmetric(P: np.ndarray) -> Normalize:
    """A colour scale centred on 0: at least [-1, 1], the range of a sine, wider for a learned table."""
    limit = max(1.0, float(np.abs(P).max()))
    return Normalize(-limit, limit)


def positional_encoding_heatmap(PE, title: str | None = None, *, cmap: str = "RdBu_r") -> Figure:
    r"""The positional-encoding table as an image: row :math:`pos`, column :math:`j`, colour :math:`PE_{pos, j}`.

    For the sinusoids, the left columns change fast with the position (wavelength :math:`2\pi`)
    and the right ones slowly (up to :math:`2\pi \cdot 10000^{(d-2)/d}`, just under
    :math:`10000 \cdot 2\pi` for a wide table): read down a column, the bands get longer from left
    to right, and over a few dozen positions the rightmost columns hardly change (sines near 0,
    cosines near 1).

    Parameters
    ----------
    PE : Tensor or array
        ``(positions, d_model)``.
    title : str, optional
    cmap : str
        A diverging colour map: red positive, blue negative, white 0.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the table and its colour bar; the table's ticks are whole positions and dimensions.

    Examples
    --------
    >>> from minitransformer.functional import sinusoidal_positional_encoding
    >>> fig = positional_encoding_heatmap(sinusoidal_positional_encoding(50, 32))
    >>> len(fig.axes), fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    (2, 'dimension j', 'position pos')
    """
    P = _table(PE, "positional_encoding_heatmap")
    n, d = P.shape
    fig = Figure(figsize=(min(12.0, max(4.5, 1.6 + d * 0.12)), min(9.0, max(3.2, 1.2 + n * 0.08))),
                 layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(P, cmap=cmap, norm=_symmetric(P), aspect="auto", interpolation="nearest")
    for axis in (ax.xaxis, ax.yaxis):  # rows and columns are whole numbers: no tick at position 0.5
        axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    ax.set_xlabel("dimension j")
    ax.set_ylabel("position pos")
    ax.set_title(title or f"positional encoding PE, {n} positions x {d} dimensions", fontsize=FONT + 1)
    fig.colorbar(im, ax=ax, label="PE(pos, j)")
    return fig


def _default_dims(d: int) -> tuple[int, ...]:
    """A sine/cosine pair of the fastest frequency, then sines of slower ones: 0, 1, d/8, d/4, d/2 (even)."""
    picks = [0, 1] + [2 * (d // (2 * k)) for k in (8, 4, 2)]
    return tuple(sorted({j for j in picks if j < d}))


def positional_encoding_curves(PE, dims=None, title: str | None = None) -> Figure:
    r"""Chosen columns of the table against the position: each is a wave of its own frequency.

    Column :math:`2i` is :math:`\sin(pos / 10000^{2i/d})` and :math:`2i+1` the cosine of the same
    frequency, so dimensions 0 and 1 form a quarter-period-shifted pair and higher dimensions
    oscillate more slowly.

    Parameters
    ----------
    PE : Tensor or array
        ``(positions, d_model)``.
    dims : int or sequence of int, optional
        The column or columns to draw; by default 0, 1 (the fastest pair) and the sines at about
        :math:`d/8, d/4, d/2`.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one line per dimension, each labelled ``dim j`` in the legend.

    Examples
    --------
    >>> from minitransformer.functional import sinusoidal_positional_encoding
    >>> fig = positional_encoding_curves(sinusoidal_positional_encoding(64, 16), dims=(0, 1, 6))
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['dim 0', 'dim 1', 'dim 6']
    """
    where = "positional_encoding_curves"
    P = _table(PE, where)
    n, d = P.shape
    if isinstance(dims, int | np.integer) and not isinstance(dims, bool):
        dims = (dims,)  # one column
    elif dims is not None and not hasattr(dims, "__iter__"):
        raise TypeError(f"{where}: dims must be a column of PE or a sequence of them, got {dims!r}")
    dims = _default_dims(d) if dims is None else tuple(dims)
    if not dims:
        raise ValueError(f"{where}: dims is empty; give at least one column of PE (0..{d - 1})")
    for j in dims:
        if isinstance(j, bool) or not isinstance(j, int | np.integer) or not 0 <= j < d:
            raise ValueError(f"{where}: dims must be columns of PE (positions, d_model) = {P.shape}, "
                             f"ints in 0..{d - 1}, got {j!r}")
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(n)
    for line, j in enumerate(dims):
        ax.plot(positions, P[:, j], label=f"dim {j}", **_series_style(line, n))
    ax.set_xlabel("position pos")
    ax.set_ylabel("PE(pos, j)")
    ax.grid(True, color="0.9")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=FONT, title="dimension", title_fontsize=FONT,
              handlelength=3)  # long enough to show a line's dashes, not only its colour
    ax.set_title(title or "positional encoding: one wave per dimension", fontsize=FONT + 1)
    return fig


def position_similarity(PE, labels=None, title: str | None = None, annotate=None, *, normalize: bool = False,
                        vmin: float | None = None, vmax: float | None = None, cmap: str = "RdBu_r", fmt: str = ".2f",
                        max_annotated: int = MAX_ANNOTATED) -> Figure:
    r"""How alike the encodings of every two positions are: the matrix :math:`PE\,PE^\top`.

    .. math:: S_{pq} = PE_p \cdot PE_q = \sum_j PE_{p,j}\, PE_{q,j}

    For the sinusoids, :math:`PE_p \cdot PE_q = \sum_i \cos\big((p - q)/10000^{2i/d}\big)`
    depends only on the offset :math:`p - q`: the same bands run parallel to the diagonal. It is
    largest on the diagonal and, for :math:`d \ge 16`, next largest one position away (a narrower
    table can come closer at some far offset), but it does not fall steadily beyond: for
    :math:`d = 16`, positions 5 apart (6.137) are more alike than positions 3 apart (5.543), because
    the fast pairs come round again. (With ``normalize=True``, the cosine similarity
    :math:`S_{pq} / (\lVert PE_p \rVert \lVert PE_q \rVert)`; a row of zeros has no direction, and its
    similarities are drawn as 0.)

    The colour scale is symmetric about 0 by default, from minus to plus the largest :math:`|S_{pq}|` (so 0 is
    white with ``RdBu_r``); for the sinusoids, whose similarities are mostly positive, the blue half is little
    used: ``vmin=0, vmax=1`` with a sequential ``cmap`` (``"viridis"``) spreads their cosines over the colours.

    Parameters
    ----------
    PE : Tensor or array
        ``(positions, d_model)``.
    labels : list of str, optional
        One per position (0, 1, ... by default); every k-th only where a cell is smaller than the labels' font.
    title : str, optional
    annotate : bool, optional
        Values in the cells; by default when there are at most ``max_annotated`` positions.
    normalize : bool
        Cosine similarity instead of the dot product.
    vmin, vmax : float, optional
        The ends of the colour scale; by default minus and plus the largest :math:`|S_{pq}|`.
    cmap : str
        A colour map: by default ``RdBu_r``, diverging, red positive, blue negative, white 0.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the ``(positions, positions)`` map and its colour bar.

    Examples
    --------
    >>> from minitransformer.functional import sinusoidal_positional_encoding
    >>> fig = position_similarity(sinusoidal_positional_encoding(4, 8))
    >>> len(fig.axes), len(fig.axes[0].texts)
    (2, 16)
    """
    where = "position_similarity"
    P = _table(PE, where)
    n = P.shape[0]
    names = _labels(labels, n, "labels", "position: row of PE", where)
    T = PE if isinstance(PE, Tensor) else tensor(P)  # computed by the library: the formula on its own backend
    with no_grad():  # a picture: no graph, even for a trained (learned) table
        S = T @ T.mT  # (positions, positions): S_pq = PE_p . PE_q
        if normalize:
            norms = (T * T).sum(axis=-1, keepdims=True).sqrt()  # (positions, 1): ||PE_p||
            denominator = norms @ norms.mT
            S = S / autograd.where(denominator > 0, denominator, 1.0)  # a zero row's S_pq is 0: drawn 0, not 0/0 = NaN
    S = to_host(S, "PE PE^T", where)
    show_values = _annotate(annotate, n, n, max_annotated)
    cell = 0.55 if show_values else 0.3
    side = min(11.0, max(3.5, n * cell + 1.5))
    cell = min(cell, (side - 1.5) / n)  # smaller where 11 inches cap the figure
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    limit = float(np.abs(S).max()) or 1.0
    low, high = -limit if vmin is None else vmin, limit if vmax is None else vmax
    if not low < high:
        raise ValueError(f"{where}: the colour scale needs vmin < vmax, got vmin={low!r}, vmax={high!r}"
                         + (" (the other end is the default, +-max |S_pq|)" if vmin is None or vmax is None else ""))
    im = _draw_map(ax, S, Normalize(low, high), cmap, show_values, fmt, FONT - 1)
    _ticks(ax, names, "x", True, FONT, cell)
    _ticks(ax, names, "y", True, FONT, cell)
    ax.set_xlabel("position q")
    ax.set_ylabel("position p")
    what = "cosine similarity" if normalize else "PE_p · PE_q"
    ax.set_title(title or f"similarity of positions: {what}", fontsize=FONT + 1)
    fig.colorbar(im, ax=ax, label=what, shrink=min(1.0, max(0.6, n / 10)))
    return fig
