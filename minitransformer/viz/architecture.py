r"""The paper's figure 1, drawn from a model: every box is one of its modules, named as you would type it.

The encoder stack stands on the left, the decoder stack on the right (as in "Attention Is All You
Need", figure 1): the embeddings and the positional encoding at the bottom, one layer of each stack
inside a frame marked ``N x``, the output projection and the softmax at the top. A decoder-only
model (:class:`~minitransformer.nn.DecoderOnlyLM`) has the right column only, without cross-attention;
the classifier (:class:`~minitransformer.nn.TransformerClassifier`) the left one, with its pooling and
head on top.

Nothing is drawn from a template: the boxes come from walking the model's modules
(``named_children``), so each is labelled with its attribute path (``decoder.layers[i].cross_attn``,
``i`` for any of the ``N`` layers), and with its sizes (``heads``, ``d_k``, ``d_ff``) read off it.
Where the layer norm goes follows the model's ``norm_first``:

* post-LN (the paper): sublayer, then ``Add & Norm``, :math:`\mathrm{LayerNorm}(x + \mathrm{Sublayer}(x))`;
* pre-LN: ``Norm``, sublayer, then the addition, :math:`x + \mathrm{Sublayer}(\mathrm{LayerNorm}(x))`,
  and one more ``norm`` on top of the stack.

The residual connection of each sublayer is the arrow around it, from the branch point below
to the addition above.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ..nn import (
    DecoderOnlyLM,
    Embedding,
    FeedForward,
    LayerNorm,
    LearnedPositionalEmbedding,
    Linear,
    Module,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    Transformer,
    TransformerClassifier,
)
from ..nn.transformer import Decoder, DecoderLayer, Encoder
from .graph import FONT_SIZE, box_size, draw_arrow, draw_box

__all__ = ["draw_architecture"]

GAP, LANE, COLUMN_GAP, MARGIN = 0.26, 0.3, 1.0, 0.2  # inches: between boxes, to a residual lane, between stacks
#: inches between a residual arrow and the frame around its layer (any closer and the two read as a doubled frame)
CLEAR = 0.2
#: the colours of the paper's figure 1 (embeddings pink, attention orange, feed-forward blue, norms yellow)
STYLE = {
    "input": dict(boxstyle="square,pad=0.3", fc="none", ec="none"),
    "embedding": dict(boxstyle="round,pad=0.3", fc="#f9d6da", ec="0.2"),
    "positional": dict(boxstyle="round,pad=0.3", fc="white", ec="0.2"),
    "attention": dict(boxstyle="round,pad=0.3", fc="#fde3c2", ec="0.2"),
    "ffn": dict(boxstyle="round,pad=0.3", fc="#cfe6f7", ec="0.2"),
    "norm": dict(boxstyle="round,pad=0.3", fc="#f6f2b4", ec="0.2"),
    "add": dict(boxstyle="circle,pad=0.2", fc="white", ec="0.2"),
    "linear": dict(boxstyle="round,pad=0.3", fc="#d9d2ee", ec="0.2"),
    "loss": dict(boxstyle="round,pad=0.3", fc="white", ec="0.4", ls="--"),  # not a module: the loss applies it
}
KINDS = "nn.Transformer, nn.DecoderOnlyLM or nn.TransformerClassifier"


def _child(model: Module, kind) -> tuple[str, Module] | None:
    """``(name, module)`` of the first direct sub-module of type ``kind``, or None."""
    return next(((n, m) for n, m in model.named_children() if isinstance(m, kind)), None)


def _path(stack: str, layer: str) -> str:
    """``encoder.layers[i].self_attn`` from the stack's name and a layer's sub-module name."""
    return f"{stack}.layers[i].{layer}"


class _Column:
    """One stack's boxes, bottom to top, and the arrows between them; ``side`` is where its residuals run
    (-1 left, +1 right). Positions are in inches: ``y`` grows upwards, ``x`` is relative to the column's axis."""

    def __init__(self, side: int):
        self.side, self.y = side, MARGIN
        self.boxes: list[dict] = []  # text, kind, y (centre), w, h, flow (an arrow from the box below)
        self.residuals: list[tuple[int, int]] = []  # (box whose incoming arrow branches, box where it adds)
        self.frame: tuple[int, int, str] | None = None  # first and last box of the layer, the "N x" label

    def add(self, text: str, kind: str, flow: bool = True) -> int:
        """A box of ``kind`` (a key of :data:`STYLE`) on top; ``flow``: with an arrow from the box below."""
        w, h = box_size(text, ellipse=kind == "add")
        self.boxes.append(dict(text=text, kind=kind, y=self.y + h / 2, w=w, h=h, flow=flow))
        self.y += h + GAP
        return len(self.boxes) - 1

    def layer(self, stack: str, layer: Module, N: int, memory: bool) -> int | None:
        """The boxes of one layer of ``stack`` (any of its ``N``); the index of its cross-attention, if any."""
        subs = [(n, m) for n, m in layer.named_children() if isinstance(m, MultiHeadAttention | FeedForward)]
        norms = [n for n, m in layer.named_children() if isinstance(m, LayerNorm)]
        if len(subs) != len(norms):  # each sublayer has its norm, in the order forward() calls them
            raise ValueError(f"draw_architecture: {stack}.layers[0] has sublayers {[n for n, _ in subs]} but norms "
                             f"{norms}; expected one LayerNorm per sublayer")
        self.y += CLEAR  # room below the layer's first box for the residual's branch, clear of the frame's bottom
        first, cross = len(self.boxes), None
        for k, ((name, sub), norm) in enumerate(zip(subs, norms)):
            if isinstance(sub, FeedForward):
                text = f"{_path(stack, name)}\nFeed Forward ({sub.activation})\n{sub.d_model} -> {sub.d_ff} -> " \
                       f"{sub.d_model}"
                kind = "ffn"
            else:
                decoder = isinstance(layer, DecoderLayer)
                what = ("Multi-Head Attention (self)" if not decoder else "Masked Multi-Head Attention" if k == 0
                        else "Multi-Head Attention (cross)")
                text, kind = f"{_path(stack, name)}\n{what}\nheads = {sub.heads}, d_k = {sub.d_k}", "attention"
            if layer.norm_first:  # pre-LN: x + Sublayer(LayerNorm(x))
                branch = self.add(f"{_path(stack, norm)}\nNorm: LayerNorm({sub.d_model})", "norm")
                at = self.add(text, kind)
                added = self.add("+", "add")
            else:  # post-LN: LayerNorm(x + Sublayer(x))
                branch = at = self.add(text, kind)
                added = self.add(f"{_path(stack, norm)}\nAdd & Norm: LayerNorm({sub.d_model})", "norm")
            self.residuals.append((branch, added))
            if memory and kind == "attention" and k == 1:
                cross = at
        self.frame = (first, len(self.boxes) - 1, f"N = {N} x")
        return cross

    @property
    def width(self) -> float:
        """Of the widest box, plus the residual lane and the frame's margin on its side."""
        return max(b["w"] for b in self.boxes) + 2 * (LANE + CLEAR + 0.05)


def _embedding_boxes(col: _Column, model: Module, embed: str, ids: str, seq: str, positional: tuple[str, Module],
                     note: str = "") -> None:
    """The input ids ``(B, seq)``, their embedding (times sqrt(d_model)) and the positional encoding added to them."""
    E = getattr(model, embed)
    col.add(f"{ids} (B, {seq})\n{note}" if note else f"{ids} (B, {seq})", "input", flow=False)
    col.add(f"{embed}\nEmbedding{' x sqrt(d_model)' if E.scale else ''}\n(B, {seq}) -> (B, {seq}, {E.d_model})",
            "embedding")
    name, pe = positional
    what, table = ("sinusoidal", "PE") if isinstance(pe, SinusoidalPositionalEncoding) else ("learned", "P")
    col.add(f"{name}\nPositional Encoding ({what})\n+ {table}[pos], max_len = {pe.max_len}", "positional")


def _stack_boxes(col: _Column, model: Module, kind, memory: bool) -> tuple[str, int | None]:
    """The layer of the stack of type ``kind`` (and its final norm); its name and the cross-attention's box."""
    stack, module = _child(model, kind)
    cross = col.layer(stack, module.layers[0], len(module.layers), memory)
    if module.norm is not None:
        col.add(f"{stack}.norm\nLayerNorm({module.d_model})", "norm")
    return stack, cross


def _output_boxes(col: _Column, model: Module, embed: str, seq: str, vocab: int) -> None:
    """The projection to the vocabulary (or the tied embedding) and the softmax the loss applies."""
    out = _child(model, Linear)
    if out is None:
        d = getattr(model, embed).d_model
        col.add(f"{embed}.weight.mT\nLinear (tied: x E^T)\n{seq}, {d}) -> {seq}, {vocab})", "linear")
    else:
        name, lin = out
        col.add(f"{name}\nLinear {lin.d_in} -> {lin.d_out}\n{seq}, {lin.d_in}) -> {seq}, {lin.d_out})", "linear")
    col.add("Softmax\nin F.cross_entropy and decoding,\nnot in the model: it returns logits", "loss")
    col.add("Output Probabilities", "input")


def _columns(model: Module) -> tuple[list[_Column], tuple | None, str]:
    """The columns of ``model``, the memory arrow ``(encoder column's top box, decoder column's cross-attention)``
    if any, and the title."""
    positional = _child(model, SinusoidalPositionalEncoding | LearnedPositionalEmbedding)
    embeds = [n for n, m in model.named_children() if isinstance(m, Embedding)]  # in the order they are made
    c = model.config
    N = (f"{c['num_encoder_layers']} + {c['num_decoder_layers']} layers" if isinstance(model, Transformer)
         else f"{c['num_layers']} layer" + "s" * (c["num_layers"] > 1))
    ln = "\npre-LN (norm_first=True)" if c["norm_first"] else "\npost-LN (norm_first=False, the paper)"
    title = f"{type(model).__name__}: N = {N}, d_model = {c['d_model']}, heads = {c['heads']}, d_ff = {c['d_ff']},{ln}"
    if isinstance(model, Transformer):
        enc, dec = _Column(side=-1), _Column(side=+1)
        _embedding_boxes(enc, model, embeds[0], "src", "S", positional)
        _embedding_boxes(dec, model, embeds[1], "tgt_in", "T", positional, "(shifted right)")
        if getattr(model, embeds[1]) is getattr(model, embeds[0]):  # share_embeddings: one table
            dec.boxes[1]["text"] = dec.boxes[1]["text"].replace(embeds[1], f"{embeds[1]} (= {embeds[0]})", 1)
        _stack_boxes(enc, model, Encoder, memory=False)
        _, cross = _stack_boxes(dec, model, Decoder, memory=True)
        _output_boxes(dec, model, embeds[-1], "(B, T", c["tgt_vocab"])
        return [enc, dec], (len(enc.boxes) - 1, cross), title
    if isinstance(model, DecoderOnlyLM):
        dec = _Column(side=+1)
        _embedding_boxes(dec, model, embeds[0], "ids", "T", positional)
        _stack_boxes(dec, model, Decoder, memory=False)
        _output_boxes(dec, model, embeds[0], "(B, T", c["vocab"])
        return [dec], None, title
    enc = _Column(side=-1)
    _embedding_boxes(enc, model, embeds[0], "ids", "S", positional,
                     "[CLS] first: model.cls" if c["pooling"] == "cls" else "")
    _stack_boxes(enc, model, Encoder, memory=False)
    enc.add(f"pool(h, real)\npooling = {c['pooling']!r}, not padding\n(B, S, {c['d_model']}) -> (B, "
            f"{c['d_model']})", "positional")
    name, head = _child(model, Linear)
    enc.add(f"{name}\nLinear {head.d_in} -> {head.d_out}\n(B, {head.d_in}) -> (B,), one logit", "linear")
    enc.add("Sigmoid\nin the loss and predict_proba,\nnot in the model: it returns logits", "loss")
    enc.add("p(yes)", "input")
    return [enc], None, title


def draw_architecture(model, title: str | None = None) -> Figure:
    r"""Draw ``model`` as the paper's figure 1: each box a module, labelled with its attribute path and sizes.

    Parameters
    ----------
    model : Transformer, DecoderOnlyLM or TransformerClassifier
        A model of :mod:`minitransformer.nn`. One layer of each stack is drawn (its boxes say
        ``layers[i]``), inside a frame marked with the number of layers ``N``.
    title : str, optional
        Above the picture; by default the model's class, ``N``, ``d_model``, ``heads``, ``d_ff`` and
        whether it is post-LN or pre-LN.

    Returns
    -------
    matplotlib.figure.Figure
        Its texts (``fig.axes[0].texts``) are the title, the boxes (each box's first line the module's
        path, ``encoder.layers[i].norm1``, or what it is: ``src (B, S)``, ``+``, ``Softmax``) and the frames'
        ``N = ... x``; one inch of the figure is one unit of the axes. Save it with
        ``fig.savefig("architecture.png")``.

    Examples
    --------
    >>> from minitransformer import nn
    >>> model = nn.Transformer.from_config("tiny")
    >>> fig = draw_architecture(model)
    >>> [t.get_text().split("\n")[0] for t in fig.axes[0].texts if "cross_attn" in t.get_text()]
    ['decoder.layers[i].cross_attn']
    >>> draw_architecture(nn.Linear(2, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: draw_architecture: model must be an nn.Transformer, ... or nn.TransformerClassifier, got Linear
    """
    if not isinstance(model, Transformer | DecoderOnlyLM | TransformerClassifier):
        raise TypeError(f"draw_architecture: model must be an {KINDS}, got {type(model).__name__}")
    columns, memory, default_title = _columns(model)
    title = default_title if title is None else title
    label_w = max(box_size(c.frame[2])[0] for c in columns) + 0.15  # the "N = 6 x" beside each frame
    width = sum(c.width for c in columns) + COLUMN_GAP * (len(columns) - 1) + 2 * (MARGIN + label_w)
    title_w, title_h = (size * (FONT_SIZE + 1) / FONT_SIZE for size in box_size(title))  # at its font size
    width = max(width, title_w + 2 * MARGIN)
    height = max(c.y for c in columns) - GAP + title_h + 2 * MARGIN
    x = (width - sum(c.width for c in columns) - COLUMN_GAP * (len(columns) - 1)) / 2
    for c in columns:
        c.x = x + c.width / 2
        x += c.width + COLUMN_GAP

    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    ax.text(width / 2, height - MARGIN - title_h / 2, title, ha="center", va="center", fontsize=FONT_SIZE + 1,
            family="monospace", weight="bold")
    drawn = [[draw_box(ax, (c.x, b["y"]), b["text"], dict(STYLE[b["kind"]])) for b in c.boxes] for c in columns]
    for c, frames in zip(columns, drawn):
        _draw_column(ax, c, frames)
    if memory is not None:
        _draw_memory(ax, columns, drawn, *memory, model.config["d_model"])
    return fig


def _draw_column(ax, c: _Column, frames: list) -> None:
    """The arrows up the column, the residual arrows beside it, and the frame around its layer."""
    for k, b in enumerate(c.boxes):
        if k and b["flow"]:
            below = c.boxes[k - 1]
            draw_arrow(ax, (c.x, below["y"]), (c.x, b["y"]), frames[k - 1], frames[k])
    lane = c.x + c.side * (max(b["w"] for b in c.boxes) / 2 + LANE)
    for branch, added in c.residuals:
        b, a = c.boxes[branch], c.boxes[added]
        y = b["y"] - b["h"] / 2 - GAP / 2  # the middle of the arrow into the first box of the sublayer
        draw_arrow(ax, (c.x, y), (lane, y), head=False, gid="residual")
        draw_arrow(ax, (lane, y), (lane, a["y"]), head=False, gid="residual")
        draw_arrow(ax, (lane, a["y"]), (c.x, a["y"]), None, frames[added], gid="residual")
    first, last, label = c.frame
    bottom = c.boxes[first]["y"] - c.boxes[first]["h"] / 2 - GAP / 2 - CLEAR  # CLEAR below the residual's branch
    top = c.boxes[last]["y"] + c.boxes[last]["h"] / 2 + GAP * 0.3
    half = c.width / 2 - 0.05
    ax.add_patch(FancyBboxPatch((c.x - half, bottom), 2 * half, top - bottom, boxstyle="round,pad=0,rounding_size=0.12",
                                fc="0.96", ec="0.4", lw=1.0, zorder=1, gid="frame"))
    ax.text(c.x + c.side * (half + 0.1), (bottom + top) / 2, label, ha="left" if c.side > 0 else "right",
            va="center", fontsize=FONT_SIZE + 1, family="monospace", weight="bold")


def _draw_memory(ax, columns: list[_Column], drawn: list, top: int, cross: int, d_model: int) -> None:
    """The encoder's output, its memory, from the top of the left column into the right one's cross-attention."""
    enc, dec = columns
    t, a = enc.boxes[top], dec.boxes[cross]
    up = t["y"] + t["h"] / 2 + GAP  # clear of the frame around a post-LN layer
    mid = (enc.x + enc.width / 2 + dec.x - dec.width / 2) / 2  # between the two stacks' frames
    for start, end in (((enc.x, t["y"]), (enc.x, up)), ((enc.x, up), (mid, up)), ((mid, up), (mid, a["y"]))):
        draw_arrow(ax, start, end, drawn[0][top] if start[1] == t["y"] else None, head=False, gid="memory")
    draw_arrow(ax, (mid, a["y"]), (dec.x, a["y"]), None, drawn[1][cross], gid="memory")
    ax.text((enc.x + mid) / 2, up + 0.05, f"memory (B, S, {d_model})", ha="center", va="bottom", fontsize=FONT_SIZE - 1,
            family="monospace", color="0.3")
