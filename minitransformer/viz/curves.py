"""Training curves: a history of numbers per step, drawn one panel per quantity (loss, accuracy, ...).

A history is a dict of lists, as a training loop records it::

    {"train_loss": [2.3, 1.9, ...], "val_loss": [(100, 2.0), (200, 1.7), ...], "lr": [...]}

A list of numbers is drawn against its index (step 0, 1, ...); a list of ``(step, value)`` pairs
against its steps, so a validation loss measured every 100 steps lines up with the training loss.
Series that differ only by a ``train``/``val``/``valid``/``test``/``eval`` prefix or suffix share
a panel: ``train_loss`` and ``val_loss`` are drawn together, ``lr`` alone.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np  # the host side of a picture
from matplotlib.figure import Figure

from .._arguments import require_int
from ..autograd import Tensor
from .attention import FONT

__all__ = ["training_curves", "panel_name", "training_pictures"]

SPLITS = ("train", "training", "val", "valid", "validation", "test", "eval", "dev")
#: a panel whose name holds one of these measures a fraction, so its axis stays within [0, 1]
FRACTIONS = ("accuracy", "f1")
#: what tells the lines of one axes apart besides their colour (a colour-blind reader, a grey print) -- line n takes
#: style n % 4 and marker n % 7, a pair no other of the first 28 lines has; the marks of training_curves, grey vertical
#: lines "--", ":", "-.", have no marker
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: at most about this many markers on a line, on every point of a short one, on every k-th of a long one
MARKERS_PER_LINE = 25


def panel_name(series: str) -> str:
    """The quantity a series measures: ``"train_loss"``, ``"val_loss"`` and ``"loss/val"`` are all ``"loss"``.

    The name is split at ``_``, ``/`` and ``-``, and the parts naming a split (``SPLITS``: ``train``,
    ``val``, ``test``, ...) are dropped; a name made only of such parts is kept whole.

    Parameters
    ----------
    series : str
        A key of a training history.

    Returns
    -------
    str
        The panel the series is drawn in by :func:`training_curves`.

    Examples
    --------
    >>> [panel_name(s) for s in ("train_loss", "val_loss", "loss/val", "val-token-accuracy", "lr", "train")]
    ['loss', 'loss', 'loss', 'token_accuracy', 'lr', 'train']
    """
    parts = [p for p in series.replace("/", "_").replace("-", "_").split("_") if p]
    kept = [p for p in parts if p.lower() not in SPLITS]
    return "_".join(kept) if kept else series


def _number(v, where: str, name: str, n: int) -> float:
    if isinstance(v, Tensor):
        if v.size != 1:
            raise ValueError(f"{where}: history[{name!r}][{n}] is a Tensor of shape {v.shape}; record .item()")
        return float(v.item())
    if isinstance(v, bool) or not isinstance(v, Real | np.generic):
        raise TypeError(f"{where}: history[{name!r}][{n}] must be a number or a (step, value) pair, got {v!r}")
    return float(v)


def _series(values, where: str, name: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of one history entry: numbers against their index, or (step, value) pairs."""
    if isinstance(values, str) or not hasattr(values, "__len__"):
        raise TypeError(f"{where}: history[{name!r}] must be a list of numbers or (step, value) pairs, "
                        f"got {type(values).__name__}")
    if len(values) == 0:
        raise ValueError(f"{where}: history[{name!r}] is empty: nothing to draw")
    pairs = [isinstance(v, tuple | list) for v in values]
    if any(pairs) and not all(pairs):
        raise ValueError(f"{where}: history[{name!r}] mixes numbers and (step, value) pairs; use one form")
    if not pairs[0]:
        return list(range(len(values))), [_number(v, where, name, n) for n, v in enumerate(values)]
    for n, v in enumerate(values):
        if len(v) != 2:
            raise ValueError(f"{where}: history[{name!r}][{n}] = {v!r} is not a (step, value) pair")
    return ([_number(s, where, name, n) for n, (s, _) in enumerate(values)],
            [_number(v, where, name, n) for n, (_, v) in enumerate(values)])


def training_curves(history: dict, title: str | None = None, *, x_label: str = "step", log_y=(),
                    ncols: int | None = None, marks: dict | None = None) -> Figure:
    """Draw a training history: one panel per quantity, the train/validation series of a quantity together.

    Parameters
    ----------
    history : dict of str -> list
        Each entry a list of numbers (drawn against the index) or of ``(step, value)`` pairs.
        Non-finite values (a diverged run) leave gaps instead of failing.
    title : str, optional
    x_label : str
        The horizontal axis ("step" or "epoch").
    log_y : bool, str or iterable of str
        Panels drawn on a logarithmic scale: ``True`` for all, one name such as ``"loss"``, or names such as
        ``("loss", "lr")``.
    ncols : int, optional
        Panels per row (at most 3 by default).
    marks : dict of str -> number, optional
        Steps to mark across every panel, ``{label: step}``: a vertical line each, named in the legend (a run
        that diverged: ``{"diverged (step 40)": 40, "model kept (step 30)": 30}``). None (the default) marks none.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per quantity (titled with it), one line per series with its name in the legend, then one
        vertical line per mark.

    Examples
    --------
    >>> fig = training_curves({"train_loss": [2.0, 1.5, 1.2], "val_loss": [(0, 2.1), (2, 1.4)], "lr": [1e-3] * 3})
    >>> [ax.get_title() for ax in fig.axes], [line.get_label() for line in fig.axes[0].get_lines()]
    (['loss', 'lr'], ['train_loss', 'val_loss'])
    >>> fig = training_curves({"train_loss": [2.0, 1.5, 1.2]}, marks={"diverged (step 3)": 3})
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]     # and a dashed vertical line at step 3
    ['train_loss', 'diverged (step 3)']
    """
    where = "training_curves"
    if not isinstance(history, dict) or not history:
        raise TypeError(f"{where}: history must be a non-empty dict of name -> list of values, "
                        f"got {type(history).__name__ if not isinstance(history, dict) else 'an empty dict'}")
    panels: dict[str, list[tuple[str, list[float], list[float]]]] = {}
    for name, values in history.items():
        steps, ys = _series(values, where, str(name))
        panels.setdefault(panel_name(str(name)), []).append((str(name), steps, ys))
    names = list(panels)
    if log_y is True or log_y is False:
        log_panels = set(names) if log_y else set()
    else:
        log_panels = {panel_name(str(p)) for p in ((log_y,) if isinstance(log_y, str) else log_y)}  # not its letters
        unknown = log_panels - set(names)
        if unknown:
            raise ValueError(f"{where}: log_y names {sorted(unknown)}, which are not panels; panels: {names}")
    for panel in log_panels:
        if any(y <= 0 for _, _, ys in panels[panel] for y in ys if math.isfinite(y)):
            raise ValueError(f"{where}: panel {panel!r} has values <= 0 and cannot use a log scale")
    marks = _marks(marks, where)
    ncols = min(len(names), 3) if ncols is None else ncols
    ncols = min(require_int(where, "ncols", ncols, low=1), len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(4.2 * ncols + 0.4, 3.2 * nrows + 0.4 * bool(title)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, names):
        for n, (series, steps, ys) in enumerate(panels[panel]):
            ys = [y if math.isfinite(y) else math.nan for y in ys]
            ax.plot(steps, ys, label=series, **_series_style(n, len(ys)))
        for n, (label, step) in enumerate(marks.items()):
            ax.axvline(step, color="0.3", linestyle=LINE_STYLES[1:][n % 3], linewidth=1.2, label=label)  # (not solid)
        if panel in log_panels:
            ax.set_yscale("log")
        elif limits := _fraction_limits(panel, panels[panel], ax.get_ylim()):
            ax.set_ylim(limits)
        ax.set_title(panel, fontsize=FONT + 1)
        ax.set_xlabel(x_label)
        ax.set_ylabel(panel + (" (log scale)" if panel in log_panels else ""))  # the scale said, not only ticked
        ax.grid(True, color="0.9")
        ax.legend(fontsize=FONT, handlelength=3)  # long enough to show a line's dashes, not only its colour
    for ax in axes[len(names):]:
        ax.remove()  # empty cells of the grid
    if title:
        fig.suptitle(title)
    return fig


def _series_style(n: int, points: int) -> dict:
    """The line style and markers of the ``n``-th line (from 0) of an axes, of ``points`` points: keywords of
    ``ax.plot``, which gives the colour. The markers of a long line are spaced ``k`` points apart and shifted by a
    fifth of that per line, so that lines measured at the same steps do not put theirs on each other.

    Examples
    --------
    >>> _series_style(0, 10), _series_style(1, 100)["markevery"], _series_style(2, 500)["markevery"]
    ({'linestyle': '-', 'marker': 'o', 'markersize': 4, 'markevery': (0, 1)}, (1, 4), (8, 20))
    """
    every = max(1, round(points / MARKERS_PER_LINE))
    return {"linestyle": LINE_STYLES[n % len(LINE_STYLES)], "marker": MARKERS[n % len(MARKERS)], "markersize": 4,
            "markevery": (n * math.ceil(every / 5) % every, every)}


def _fraction_limits(panel: str, series: list, limits: tuple[float, float]) -> tuple[float, float] | None:
    """The y limits of a panel that measures a fraction (:data:`FRACTIONS`), ``limits`` (matplotlib's) kept within
    [0, 1], whose margins ran past them (-0.04..0.04 for an accuracy of 0 throughout); None for any other panel, and
    for a fraction given in percent."""
    values = [y for _, _, ys in series for y in ys if math.isfinite(y)]
    if not set(panel.split("_")) & set(FRACTIONS) or not values or not all(0 <= y <= 1 for y in values):
        return None
    if min(values) == max(values):  # a flat line, which matplotlib centres in a band of its own: the whole range
        return 0.0, 1.0
    return max(limits[0], 0.0), min(limits[1], 1.0)


def _marks(marks, where: str) -> dict[str, float]:
    """``marks`` (:func:`training_curves`'s) checked: ``{label: step}``, each step a finite number; ``{}`` for None."""
    if marks is None:
        return {}
    if not isinstance(marks, dict):
        raise TypeError(f"{where}: marks must be a dict of label -> step, got {type(marks).__name__}")
    for label, step in marks.items():
        # NumPy's integers and floats are Real; its bool_ is refused as Python's bool is
        if not isinstance(label, str) or isinstance(step, bool | np.bool_) or not isinstance(step, Real) \
                or not math.isfinite(step):
            raise TypeError(f"{where}: marks must be a dict of label -> step (a finite number), got "
                            f"{label!r}: {step!r}")
    return {label: float(step) for label, step in marks.items()}


def training_pictures(setup, history: dict, out, *, marks: dict | None = None) -> list:
    """The training curves and the attention maps of one held-out example of a run of ``train.run.train``, as PNG
    files in ``out``: what ``minitransformer train`` draws (passed as ``train(..., pictures=training_pictures)``, as
    ``train`` is a layer below this one). ``setup`` is the run's :class:`~minitransformer.train.tasks.TaskSetup`,
    ``history`` its trainer's, ``marks`` the steps to mark on the curves (:func:`training_curves`'s: ``train`` gives
    that of the model kept, where the run put back its best evaluation's, and that of a divergence); returns the
    paths written. Each map is drawn with the mask its weights had (``setup.sample``'s), its hidden keys hatched.
    Each picture is written atomically: one already there is replaced whole or left as it was.

    Examples
    --------
    >>> import tempfile
    >>> from minitransformer.train import tasks
    >>> setup = tasks.build("reverse", n_train=16, n_val=4, n_test=4, d_model=16, heads=2, layers=1, d_ff=32)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     [p.name for p in training_pictures(setup, {"train_loss": [(1, 2.5), (2, 2.0)]}, out)]
    ['curves.png', 'attention_cross_attention.png', 'attention_encoder_self_attention.png']
    """
    from pathlib import Path

    from .attention import attention_heads

    out, paths = Path(out), []
    curves = {k: v for k, v in history.items() if v and k != "grad_norm"}
    if curves:
        positive = all(v > 0 for k, pairs in curves.items() if "loss" in k for _, v in pairs)
        fig = training_curves(curves, title=f"{setup.name}: training", log_y=("loss",) if positive else (),
                              marks=marks)
        paths.append(out / "curves.png")
        _save_png(fig, paths[-1])
    for name, weights, queries, keys, *mask in setup.sample(setup.model):  # (a sample of before: no mask)
        # with the mask the weights had: a hidden key (a causal map's future) is drawn hatched, not as a weight of 0
        fig = attention_heads(weights, queries, keys, mask=mask[0] if mask else None,
                              title=f"{setup.name}: {name.replace('_', ' ')} (last layer)")
        paths.append(out / f"attention_{name}.png")
        _save_png(fig, paths[-1])
    return paths


def _save_png(fig: Figure, path) -> None:
    """``fig`` as a PNG at ``path``, written atomically as the run's checkpoint is: a full disk or a kill midway leaves
    the picture an earlier run drew there whole (``savefig`` into the file cut it short), and an error names ``path``.
    """
    import io

    from ..train.checkpoint import _write_atomically  # (train is the layer below: imported only when saving)

    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    _write_atomically(path, lambda f: f.write(png.getbuffer()))
