"""The paper's figure 1 drawn from a model (``viz.draw_architecture``): its boxes are the model's modules, by the
names ``named_modules`` gives them, with the model's N and sizes; pre-LN and post-LN differ where the norm goes."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minitransformer import nn
from minitransformer.viz import draw_architecture

pytestmark = pytest.mark.single_backend  # a picture of the model's structure: no arithmetic on any backend

MODELS = {
    "transformer, post-LN": lambda: nn.Transformer.from_config("tiny"),
    "transformer, pre-LN": lambda: nn.Transformer.from_config("tiny", norm_first=True),
    "transformer, shared and tied": lambda: nn.Transformer.from_config("tiny", share_embeddings=True,
                                                                        tie_output=True),
    "decoder-only, pre-LN": lambda: nn.DecoderOnlyLM.from_config("tiny"),
    "decoder-only, post-LN, learned, tied": lambda: nn.DecoderOnlyLM.from_config(
        "tiny", norm_first=False, positional="learned", tie_output=True),
    "classifier, post-LN": lambda: nn.TransformerClassifier.from_config("tiny"),
    "classifier, pre-LN, cls": lambda: nn.TransformerClassifier.from_config("tiny", norm_first=True, pooling="cls"),
}
SUBLAYERS = (nn.MultiHeadAttention, nn.FeedForward)


def _picture(model):
    """The figure, its texts, and each text's drawn frame in inches (the axes' data coordinates are inches)."""
    fig = draw_architecture(model)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    inches = fig.dpi_scale_trans.inverted()
    texts = fig.axes[0].texts
    frames = [(t.get_bbox_patch() or t).get_window_extent(renderer).transformed(inches) for t in texts]
    return fig, texts, frames


def _expected_paths(model) -> set[str]:
    """What a student types for each module the picture must show, from ``named_modules``: the model's own
    layers (embeddings, positional encoding, output), each stack's final norm, and the sublayers and norms of a
    stack's layers, with the layer's number written ``i``. Dropout is not drawn; the insides of attention and
    FFN (``W_Q``, ``W_1``) neither."""
    paths = set()
    for name, module in model.named_modules(remove_duplicate=False):
        parts = name.split(".")
        if len(parts) == 4 and parts[1] == "layers" and isinstance(module, SUBLAYERS + (nn.LayerNorm,)):
            paths.add(f"{parts[0]}.layers[i].{parts[3]}")  # encoder.layers.0.norm1 -> encoder.layers[i].norm1
        elif len(parts) == 2 and parts[1] == "norm":
            paths.add(name)  # a pre-LN stack's final norm
        elif len(parts) == 1 and not isinstance(module, nn.Dropout | nn.Encoder | nn.Decoder) and name:
            paths.add(name)
    return paths


def _shown_paths(model, texts) -> set[str]:
    """The first word of each box whose first word starts with one of the model's attributes."""
    children = {name for name, _ in model.named_children()}
    words = {t.get_text().split("\n")[0].split(" ")[0] for t in texts}
    return {w for w in words if w.split(".")[0] in children}


def _box(texts, path):
    """The one text whose first line starts with ``path``."""
    (found,) = [t for t in texts if t.get_text().split("\n")[0].split(" ")[0] == path]
    return found


@pytest.mark.parametrize("kind", MODELS)
def test_every_box_is_a_module_by_the_name_named_modules_gives_it(kind):
    model = MODELS[kind]()
    fig, texts, _ = _picture(model)
    assert isinstance(fig, Figure)
    expected = _expected_paths(model)
    assert len(expected) >= 6
    shown = _shown_paths(model, texts)
    tied = {f"{name}.weight.mT" for name in shown if model.config.get("tie_output")}
    assert shown - tied == expected
    assert bool(tied & shown) == bool(model.config.get("tie_output"))  # a tied output is the embedding's table


def test_shared_embeddings_say_so():
    model = MODELS["transformer, shared and tied"]()
    _, texts, _ = _picture(model)
    assert _box(texts, "tgt_embed").get_text().startswith("tgt_embed (= src_embed)\n")
    assert _box(texts, "tgt_embed.weight.mT").get_text().split("\n")[1] == "Linear (tied: x E^T)"


def test_N_and_the_sizes_are_the_models():
    model = nn.Transformer(src_vocab=17, tgt_vocab=19, d_model=24, heads=3, d_ff=40, num_encoder_layers=3,
                           num_decoder_layers=1, max_len=12)
    fig, texts, _ = _picture(model)
    frames = sorted((t.get_position()[0], t.get_text()) for t in texts if re.fullmatch(r"N = \d+ x", t.get_text()))
    assert [text for _, text in frames] == ["N = 3 x", "N = 1 x"]  # the encoder's on the left
    assert texts[0].get_text().startswith("Transformer: N = 3 + 1 layers, d_model = 24, heads = 3, d_ff = 40,")
    for path in ("encoder.layers[i].self_attn", "decoder.layers[i].self_attn", "decoder.layers[i].cross_attn"):
        assert _box(texts, path).get_text().endswith("heads = 3, d_k = 8")
    for path in ("encoder.layers[i].ffn", "decoder.layers[i].ffn"):
        assert _box(texts, path).get_text().endswith("24 -> 40 -> 24")
    assert _box(texts, "src_embed").get_text().endswith("(B, S) -> (B, S, 24)")
    assert _box(texts, "output").get_text().split("\n")[1:] == ["Linear 24 -> 19", "(B, T, 24) -> (B, T, 19)"]
    positional = [t for t in texts if t.get_text().startswith("positional\n")]  # one module, in both columns
    assert len(positional) == 2 and all("max_len = 12" in t.get_text() for t in positional)
    lm = nn.DecoderOnlyLM(vocab=11, d_model=16, heads=4, d_ff=8, num_layers=5, max_len=9, positional="learned")
    _, texts, _ = _picture(lm)
    assert [t.get_text() for t in texts if t.get_text().startswith("N = ")] == ["N = 5 x"]
    assert _box(texts, "positional").get_text().split("\n")[1:] == ["Positional Encoding (learned)",
                                                                    "+ P[pos], max_len = 9"]
    assert _box(texts, "decoder.layers[i].self_attn").get_text().endswith("heads = 4, d_k = 4")


def _sublayer_norms(model):
    """``(sublayer path, its norm's path)`` of each layer, paired in forward order, from named_children."""
    pairs = []
    for stack in ("encoder", "decoder"):
        if stack in dict(model.named_children()):
            layer = getattr(model, stack).layers[0]
            subs = [n for n, m in layer.named_children() if isinstance(m, SUBLAYERS)]
            norms = [n for n, m in layer.named_children() if isinstance(m, nn.LayerNorm)]
            pairs += [(f"{stack}.layers[i].{s}", f"{stack}.layers[i].{n}") for s, n in zip(subs, norms)]
    return pairs


@pytest.mark.parametrize("kind", MODELS)
def test_pre_ln_draws_each_norm_below_its_sublayer_and_post_ln_above(kind):
    """Post-LN, LayerNorm(x + Sublayer(x)): the norm is the "Add & Norm" above its sublayer. Pre-LN,
    x + Sublayer(LayerNorm(x)): the norm comes first, and a "+" above the sublayer adds the residual."""
    model = MODELS[kind]()
    _, texts, _ = _picture(model)
    pairs = _sublayer_norms(model)
    assert len(pairs) in (2, 3, 5)  # encoder 2, decoder-only 2, decoder with cross-attention 3
    pre = model.config["norm_first"]
    for sub, norm in pairs:
        y_sub, y_norm = _box(texts, sub).get_position()[1], _box(texts, norm).get_position()[1]
        assert (y_norm < y_sub) == pre, (sub, norm)
        assert _box(texts, norm).get_text().split("\n")[1].startswith("Norm: " if pre else "Add & Norm: ")
    adds = [t for t in texts if t.get_text() == "+"]
    assert len(adds) == (len(pairs) if pre else 0)


def test_pre_and_post_ln_of_one_model_differ_only_in_the_layer():
    post, pre = (nn.Transformer.from_config("tiny", norm_first=f) for f in (False, True))
    order = {}
    for model in (post, pre):
        _, texts, _ = _picture(model)
        column = sorted((t for t in texts if t.get_text().startswith("decoder.")), key=lambda t: t.get_position()[1])
        order[model.config["norm_first"]] = [t.get_text().split("\n")[0] for t in column]
    assert order[False] == ["decoder.layers[i].self_attn", "decoder.layers[i].norm1", "decoder.layers[i].cross_attn",
                            "decoder.layers[i].norm2", "decoder.layers[i].ffn", "decoder.layers[i].norm3"]
    assert order[True] == ["decoder.layers[i].norm1", "decoder.layers[i].self_attn", "decoder.layers[i].norm2",
                           "decoder.layers[i].cross_attn", "decoder.layers[i].norm3", "decoder.layers[i].ffn",
                           "decoder.norm"]  # pre-LN's stack ends in one more norm


def _pieces(fig, gid):
    """The arrows of a kind (``gid``) as (start, end, has a head), ends in inches."""
    out = []
    for patch in fig.axes[0].patches:
        if patch.get_gid() == gid:
            vertices = patch.get_path().vertices
            head = patch.get_arrowstyle().__class__.__name__ == "CurveFilledB"
            out.append((vertices[0], vertices[2], head))  # an arc3 curve: start, control, end
    return out


def _stack_frames(fig):
    """The frames drawn around each stack's layer, left to right (the encoder's first)."""
    return sorted((p for p in fig.axes[0].patches if p.get_gid() == "frame"), key=lambda p: p.get_x())


@pytest.mark.parametrize("kind", MODELS)
def test_each_sublayer_has_a_residual_arrow_around_it_into_its_addition(kind):
    """Three pieces per residual: out of the main line below the sublayer (below its norm, pre-LN), up a lane
    beside the boxes, and into the addition (the "Add & Norm" post-LN, the "+" pre-LN) with a head."""
    model = MODELS[kind]()
    fig, texts, frames = _picture(model)
    pairs = _sublayer_norms(model)
    pieces = _pieces(fig, "residual")
    assert len(pieces) == 3 * len(pairs)
    heads = [p for p in pieces if p[2]]
    assert len(heads) == len(pairs)
    frame = {t.get_text().split("\n")[0]: f for t, f in zip(texts, frames)}
    adds = sorted((f for t, f in zip(texts, frames) if t.get_text() == "+"), key=lambda f: f.y0)
    pre = model.config["norm_first"]
    for sub, norm in pairs:
        first = frame[norm] if pre else frame[sub]  # the residual leaves the main line below this box
        into = adds[[a.y0 > frame[sub].y1 for a in adds].index(True)] if pre else frame[norm]
        start, end, _ = min(heads, key=lambda p: abs(p[1][1] - into.y0 - into.height / 2))
        assert into.y0 < start[1] < into.y1 and into.y0 - 0.05 < end[1] < into.y1 + 0.05  # level with the addition
        assert min(abs(end[0] - into.x0), abs(end[0] - into.x1)) < 0.1  # ... and ending at its side
        lane = start[0]
        assert not frame[sub].x0 - 0.1 < lane < frame[sub].x1 + 0.1  # around the sublayer, not through it
        branch = [p for p in pieces if not p[2] and abs(p[1][0] - lane) < 1e-9 and abs(p[0][1] - p[1][1]) < 1e-9]
        assert any(b[0][1] < first.y0 for b in branch)  # leaves from below the sublayer's first box


@pytest.mark.parametrize("kind", MODELS)
def test_the_residual_arrows_run_clear_of_the_frame_around_the_layer(kind):
    """A residual arrow a few pixels inside the frame's edge reads as a doubled frame line: the branch runs at
    least 0.15 in above the frame's bottom, the lane at least 0.15 in inside its side."""
    fig, _, _ = _picture(MODELS[kind]())
    frames = [(p.get_x(), p.get_y(), p.get_width()) for p in _stack_frames(fig)]
    assert len(frames) == (2 if kind.startswith("transformer") else 1)
    for start, end, _ in _pieces(fig, "residual"):
        for x, y in (start, end):
            x0, y0, w = min(frames, key=lambda f: abs(f[0] + f[2] / 2 - x))  # the frame of this arrow's column
            assert x0 + 0.15 < x < x0 + w - 0.15 and y > y0 + 0.15, (x, y, x0, y0, w)


def test_the_memory_runs_from_the_encoders_top_into_the_cross_attention():
    for norm_first in (False, True):
        model = nn.Transformer.from_config("tiny", norm_first=norm_first)
        fig, texts, frames = _picture(model)
        pieces = _pieces(fig, "memory")
        assert len(pieces) == 4 and [p[2] for p in pieces] == [False, False, False, True]
        frame = {t.get_text().split("\n")[0]: f for t, f in zip(texts, frames)}
        top = frame["encoder.norm" if norm_first else "encoder.layers[i].norm2"]
        cross = frame["decoder.layers[i].cross_attn"]
        assert abs(pieces[0][0][0] - (top.x0 + top.x1) / 2) < 1e-6 and pieces[0][1][1] > top.y1 - 0.05
        assert cross.y0 < pieces[-1][1][1] < cross.y1 and abs(pieces[-1][1][0] - cross.x0) < 0.1
        assert any(t.get_text() == "memory (B, S, 32)" for t in texts)


@pytest.mark.parametrize("kind", MODELS)
def test_no_two_texts_overlap_and_all_fit_the_figure(kind):
    fig, texts, frames = _picture(MODELS[kind]())
    width, height = fig.get_size_inches()
    assert 5 < width < 11 and 6 < height < 13  # a page, as the docs and notebooks show it
    for (i, a), (j, b) in itertools.combinations(enumerate(frames), 2):
        assert not a.overlaps(b), (texts[i].get_text(), texts[j].get_text())
    for t, f in zip(texts, frames):
        assert f.x0 >= 0 and f.y0 >= 0 and f.x1 <= width and f.y1 <= height, t.get_text()
    # the boxes of one column share its axis; the flow runs straight up it
    xs = np.array([t.get_position()[0] for t in texts if t.get_bbox_patch() is not None])
    assert len(np.unique(xs.round(6))) == (2 if isinstance(MODELS[kind](), nn.Transformer) else 1)


@pytest.mark.parametrize("thing, name", [(nn.Linear(2, 3), "Linear"), (nn.Encoder(8, 2, 16, 2), "Encoder"),
                                         (3, "int"), ("Transformer", "str")])
def test_what_is_not_a_model_is_refused_by_name(thing, name):
    with pytest.raises(TypeError, match=rf"^draw_architecture: model must be an nn.Transformer, nn.DecoderOnlyLM or "
                                        rf"nn.TransformerClassifier, got {name}$"):
        draw_architecture(thing)


def test_a_title_replaces_the_default():
    fig = draw_architecture(nn.DecoderOnlyLM.from_config("tiny"), title="my model")
    assert fig.axes[0].texts[0].get_text() == "my model"


def test_each_attention_says_which_it_is_and_the_title_counts_layers():
    """The encoder's and the classifier's attention is self-attention; a decoder's first is masked, its second (the
    encoder-decoder model's) the cross-attention; "1 layer", "2 layers"."""
    said = {}
    for model in (nn.Transformer.from_config("tiny"), nn.DecoderOnlyLM.from_config("tiny", num_layers=1),
                  nn.TransformerClassifier.from_config("tiny", num_layers=2)):
        _, texts, _ = _picture(model)
        said[type(model).__name__] = texts[0].get_text().split(",")[0]
        for t in texts:
            if t.get_text().split("\n")[0].endswith("attn"):
                said[t.get_text().split("\n")[0]] = t.get_text().split("\n")[1]
    assert said == {
        "Transformer": "Transformer: N = 2 + 2 layers",
        "encoder.layers[i].self_attn": "Multi-Head Attention (self)",
        "decoder.layers[i].self_attn": "Masked Multi-Head Attention",
        "decoder.layers[i].cross_attn": "Multi-Head Attention (cross)",
        "DecoderOnlyLM": "DecoderOnlyLM: N = 1 layer",
        "TransformerClassifier": "TransformerClassifier: N = 2 layers",  # its encoder's self_attn: said above
    }


def test_only_what_is_so_is_said_of_embeddings_and_pooling():
    _, texts, _ = _picture(nn.Transformer.from_config("tiny"))
    assert _box(texts, "tgt_embed").get_text().startswith("tgt_embed\n")  # two tables: no "(= src_embed)"
    for pooling, first in (("cls", "ids (B, S)\n[CLS] first: model.cls"), ("mean", "ids (B, S)")):
        _, texts, _ = _picture(nn.TransformerClassifier.from_config("tiny", pooling=pooling))
        assert [t.get_text() for t in texts if t.get_text().startswith("ids (B, S)")] == [first]


@pytest.mark.parametrize("kind", MODELS)
def test_the_flow_runs_from_each_box_into_the_next_and_the_residuals_of_an_encoder_on_the_left(kind):
    """As the paper's figure 1: each arrow up a column joins two boxes one above the other (the input ids have
    none coming in); an encoder's residual lane lies left of its column, a decoder's right."""
    model = MODELS[kind]()
    fig, texts, frames = _picture(model)
    boxed = [(t, f) for t, f in zip(texts, frames) if t.get_bbox_patch() is not None]
    columns = {}
    for t, f in boxed:
        columns.setdefault(round(t.get_position()[0], 6), []).append(f)
    flows = _pieces(fig, None)  # the arrows of no other kind
    for x, column in columns.items():
        column.sort(key=lambda f: f.y0)
        joined = set()
        for (x0, y0), (x1, y1), _ in flows:
            if abs(x0 - x) < 1e-6 and abs(x1 - x) < 1e-6:  # straight up this column
                below = [k for k, f in enumerate(column) if abs(f.y1 - y0) < 0.05]
                above = [k for k, f in enumerate(column) if abs(f.y0 - y1) < 0.05]
                assert len(below) == len(above) == 1 and above[0] == below[0] + 1, (x, y0, y1)
                joined.add(above[0])
        assert joined == set(range(1, len(column)))  # every box but the first has its arrow from the one below
    lanes = {start[0] for start, end, _ in _pieces(fig, "residual") if abs(start[0] - end[0]) < 1e-9}  # the uprights
    stacks = sorted(columns)  # the encoder's column left of the decoder's
    sides = {np.sign(lane - min(stacks, key=lambda x: abs(x - lane))) for lane in lanes}
    assert sides == ({-1.0, 1.0} if len(stacks) == 2 else {1.0} if "decoder" in kind else {-1.0})


@pytest.mark.parametrize("kind", MODELS)
def test_the_frame_around_a_stack_holds_its_layer_and_nothing_else(kind):
    """The "N x" frame is one layer: every box of ``layers[i]`` (and a pre-LN layer's "+") inside it, the
    embeddings, a stack's final norm and the output outside."""
    fig, texts, frames = _picture(MODELS[kind]())
    patches = _stack_frames(fig)
    for t, f in zip(texts, frames):
        if t.get_bbox_patch() is None:
            continue  # the title, the "N x" labels, the memory's label
        (frame,) = [p for p in patches if p.get_x() < (f.x0 + f.x1) / 2 < p.get_x() + p.get_width()]
        inside = frame.get_y() < f.y0 and f.y1 < frame.get_y() + frame.get_height()
        assert inside == (".layers[i]." in t.get_text() or t.get_text() == "+"), t.get_text()


@pytest.mark.parametrize("kind", MODELS)
def test_the_N_x_label_stands_beside_its_frame_on_the_side_of_the_residuals(kind):
    fig, texts, frames = _picture(MODELS[kind]())
    patches = _stack_frames(fig)
    labels = sorted((f for t, f in zip(texts, frames) if re.fullmatch(r"N = \d+ x", t.get_text())), key=lambda f: f.x0)
    assert len(labels) == len(patches)
    for frame, label in zip(patches, labels):
        left, right = frame.get_x(), frame.get_x() + frame.get_width()
        encoder = frame is patches[0] if len(patches) == 2 else kind.startswith("classifier")
        outside = label.x1 < left if encoder else label.x0 > right  # an encoder's on the left, a decoder's right
        assert outside and min(abs(label.x1 - left), abs(label.x0 - right)) < 0.2  # ... and close to it
        assert frame.get_y() < label.y0 and label.y1 < frame.get_y() + frame.get_height()


def test_the_memory_rises_between_the_two_frames():
    fig, texts, frames = _picture(nn.Transformer.from_config("tiny"))
    enc, dec = _stack_frames(fig)
    uprights = [s[0] for s, e, _ in _pieces(fig, "memory") if abs(s[0] - e[0]) < 1e-9]
    assert len(uprights) == 2  # out of the encoder's top, then down to the cross-attention's height
    x = max(uprights)
    assert enc.get_x() + enc.get_width() < x < dec.get_x()
    assert abs(x - (enc.get_x() + enc.get_width() + dec.get_x()) / 2) < 0.1  # in the middle of the gap
