r"""Whole models: the encoder-decoder Transformer, a decoder-only language model, a text classifier.

Each takes integer token ids ``(batch, seq)`` and returns logits (scores before a softmax or a
sigmoid); the loss applies the softmax (``F.cross_entropy``) or the sigmoid
(``F.binary_cross_entropy_with_logits``). Each keeps its constructor's arguments in ``config``,
so ``type(model)(**model.config)`` rebuilds it (what a checkpoint stores beside the weights). A subclass with
arguments of its own adds them to ``self.config`` after ``super().__init__(...)``, or a model rebuilt from a
checkpoint gets their defaults (``save_checkpoint`` warns, naming them).
"""

from __future__ import annotations

from .._arguments import is_integer, require_bool, require_int
from ..autograd import Tensor, concat, where
from ..autograd._torch_names import BATCH_FIRST, torch_keywords, vocab_aliases
from ..autograd.creation import zeros
from ..functional._checks import as_mask, require_token_ids
from . import init
from .attention import check_heads
from .layers import Dropout, Embedding, LearnedPositionalEmbedding, Linear, SinusoidalPositionalEncoding
from .module import Module, Parameter, evaluating
from .transformer import Decoder, Encoder, check_stack_mask

__all__ = ["Transformer", "DecoderOnlyLM", "TransformerClassifier"]


# ------------------------------------------------------------------ shared pieces
def check_ids(op: str, name: str, ids, max_len: int, start: int = 0, like: Tensor | None = None) -> Tensor:
    """``ids`` as integer token ids ``(batch, seq)`` that fit ``max_len`` after ``start`` cached positions, or a
    clear error. Their range, ``0..vocab-1``, is the embedding's to check (it owns the vocabulary): once, when it
    looks them up (:func:`~minitransformer.functional._checks.check_token_ids`)."""
    if not isinstance(ids, Tensor):
        ids = Tensor(ids, backend=None if like is None else like.backend)
    require_token_ids(op, name, ids)
    if ids.ndim != 2:
        raise ValueError(f"{op}: {name} must have shape (batch, seq), got {ids.shape}")
    seq = ids.shape[1]
    if start + seq > max_len:
        where_ = f" after {start} cached positions" if start else ""
        raise ValueError(
            f"{op}: {name} has {seq} positions{where_}, more than max_len={max_len}: the positional encoding PE "
            f"has rows for positions 0..{max_len - 1} only; build the model with a larger max_len"
        )
    return ids


def check_positions(op: str, real, h: Tensor):
    """``real`` (a bool Tensor, bool array or nested lists) as a bool array ``(batch, S)`` on ``h``'s backend,
    one entry per position of ``h`` ``(batch, S, d_model)``; else a clear error."""
    real = as_mask(op, real, h, name="real", meaning="True at real tokens, False at padding")
    if tuple(real.shape) != tuple(h.shape[:2]):
        raise ValueError(
            f"{op}: real has shape {tuple(real.shape)}; it must be (batch, S) = {tuple(h.shape[:2])}, "
            f"one entry per position of h {h.shape}"
        )
    return real


def _output_logits(x: Tensor, output: Linear | None, embedding: Embedding) -> Tensor:
    r"""Scores over the vocabulary: :math:`x W_{out} + b` or, tied (paper 3.4), :math:`x E^\top`."""
    return output(x) if output is not None else x @ embedding.weight.mT  # (batch, seq, vocab)


def _tied(output: Linear | None, embedding: str) -> str:
    """What ``repr`` says of the output: where it is tied, that the logits use the embedding's table (no line shows
    an output layer then); else nothing (its ``(output)`` line shows it)."""
    return f"tie_output=True: logits = x @ {embedding}.weight^T, no output layer" if output is None else ""


class _Configured(Module):
    """A model that remembers its arguments in ``config`` and can be built from a preset or a dict."""

    presets: dict[str, dict] = {}

    @classmethod
    def from_config(cls, config="tiny", **overrides):
        """Build from a preset name (see ``presets``) or a ``config`` dict, with any argument overridden."""
        if isinstance(config, str):
            if config not in cls.presets:
                raise ValueError(
                    f"{cls.__name__}.from_config: unknown preset {config!r}; choose one of {sorted(cls.presets)} "
                    "or pass a dict of arguments"
                )
            config = cls.presets[config]
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.from_config: config must be a preset name or a dict, got {config!r}")
        return cls(**{**config, **overrides})


# ------------------------------------------------------------------ Transformer
class Transformer(_Configured):
    r"""The encoder-decoder Transformer of "Attention Is All You Need" (paper section 3, figure 1).

    .. math::
        z &= \mathrm{Encoder}(\mathrm{Dropout}(E_{src}[\mathrm{src}] \sqrt{d_{model}} + PE)) \\
        \mathrm{logits} &= \mathrm{Decoder}(\mathrm{Dropout}(E_{tgt}[\mathrm{tgt}] \sqrt{d_{model}} + PE),\ z)\,
            W_{out} + b_{out}

    The embeddings are multiplied by :math:`\sqrt{d_{model}}` (paper 3.4), the sinusoidal
    :math:`PE` is added (3.5) and dropout applied to the sum (5.4). ``tgt_in`` is the target
    shifted right (it starts with a begin token); the decoder's causal mask lets position
    :math:`i` see ``tgt_in[:i+1]`` only, so ``logits[:, i]`` scores the token that comes next.

    ``Transformer.from_config("base")`` is the paper's base model (shared 37000-token vocabulary,
    tied output; 63,082,496 parameters, where the paper's Table 3 says 65M without saying how it counts;
    ``dropout`` also in two places the paper does not name, below); ``"tiny"`` is small enough to train on a
    laptop's CPU.

    Shapes: integer ids ``src`` ``(batch, S)`` and ``tgt_in`` ``(batch, T)`` -> logits
    ``(batch, T, tgt_vocab)``.

    Parameters
    ----------
    src_vocab, tgt_vocab : int
        Vocabulary sizes.
    d_model, heads, d_ff : int
        512, 8, 2048 in the paper's base model.
    num_encoder_layers, num_decoder_layers : int
        N = 6 each in the paper.
    dropout : float
        :math:`P_{drop} = 0.1` (paper 5.4), on the sums of embeddings and :math:`PE` and on each sub-layer's
        output, as in the paper, and also on the attention weights and the feed-forward's hidden units, as in
        PyTorch's ``nn.Transformer`` and the Annotated Transformer (the paper names neither;
        ``docs/formulas/dropout.md``).
    max_len : int
        Longest sequence (rows of :math:`PE`).
    norm_first : bool
        Pre-LN (True) or the paper's post-LN (False); see :mod:`minitransformer.nn.transformer`.
    share_embeddings : bool
        One embedding table for source and target (the paper's shared BPE vocabulary; needs
        ``src_vocab == tgt_vocab``).
    tie_output : bool
        Use the target embedding as the output projection, :math:`\mathrm{logits} = x E_{tgt}^\top`
        (paper 3.4: "we share the same weight matrix between the two embedding layers and the
        pre-softmax linear transformation"); no output bias then.

    Attributes
    ----------
    src_embed, tgt_embed : Embedding
        The same module when shared.
    positional : SinusoidalPositionalEncoding
    encoder : Encoder
    decoder : Decoder
    output : Linear or None
        ``(d_model, tgt_vocab)``; None when tied.
    config : dict
        The arguments: ``Transformer(**model.config)`` builds the same architecture.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> model = nn.Transformer.from_config("tiny", src_vocab=11, tgt_vocab=13)
    >>> model(mt.tensor([[1, 2, 3]]), mt.tensor([[1, 5]])).shape   # (batch, T, tgt_vocab)
    (1, 2, 13)
    """

    presets = {
        # the paper's Table 3 "base": shared source-target BPE vocabulary of about 37000 tokens (section 5.1)
        "base": dict(src_vocab=37000, tgt_vocab=37000, d_model=512, heads=8, d_ff=2048, num_encoder_layers=6,
                     num_decoder_layers=6, dropout=0.1, max_len=5000, norm_first=False, share_embeddings=True,
                     tie_output=True),
        "tiny": dict(src_vocab=100, tgt_vocab=100, d_model=32, heads=4, d_ff=64, num_encoder_layers=2,
                     num_decoder_layers=2, dropout=0.1, max_len=256, norm_first=False, share_embeddings=False,
                     tie_output=False),
    }

    @torch_keywords(batch_first=BATCH_FIRST, aliases=vocab_aliases("Transformer"))
    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 512, heads: int = 8, d_ff: int = 2048,
                 num_encoder_layers: int = 6, num_decoder_layers: int = 6, dropout: float = 0.1, max_len: int = 5000,
                 norm_first: bool = False, share_embeddings: bool = False, tie_output: bool = False):
        super().__init__()
        op = "Transformer"
        src_vocab = require_int(op, "src_vocab", src_vocab, low=1)
        tgt_vocab = require_int(op, "tgt_vocab", tgt_vocab, low=1)
        d_model, heads = check_heads(op, d_model, heads)
        d_ff, max_len = require_int(op, "d_ff", d_ff, low=1), require_int(op, "max_len", max_len, low=1)
        num_encoder_layers = require_int(op, "num_encoder_layers", num_encoder_layers, low=1)
        num_decoder_layers = require_int(op, "num_decoder_layers", num_decoder_layers, low=1)
        norm_first, tie_output = require_bool(op, "norm_first", norm_first), require_bool(op, "tie_output", tie_output)
        share_embeddings = require_bool(op, "share_embeddings", share_embeddings)
        if share_embeddings and src_vocab != tgt_vocab:
            raise ValueError(
                f"{op}: share_embeddings=True needs one vocabulary, but src_vocab={src_vocab} != tgt_vocab={tgt_vocab}"
            )
        self.config = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, d_model=d_model, heads=heads, d_ff=d_ff,
                           num_encoder_layers=num_encoder_layers, num_decoder_layers=num_decoder_layers,
                           dropout=dropout, max_len=max_len, norm_first=norm_first,
                           share_embeddings=share_embeddings, tie_output=tie_output)
        self.d_model, self.max_len = d_model, max_len
        self.src_embed = Embedding(src_vocab, d_model, scale=True)  # E[ids] * sqrt(d_model), paper 3.4
        self.tgt_embed = self.src_embed if share_embeddings else Embedding(tgt_vocab, d_model, scale=True)
        self.positional = SinusoidalPositionalEncoding(d_model, max_len)
        self.dropout = Dropout(dropout)
        self.encoder = Encoder(d_model, heads, d_ff, num_encoder_layers, dropout, norm_first)
        self.decoder = Decoder(d_model, heads, d_ff, num_decoder_layers, dropout, norm_first)
        self.output = None if tie_output else Linear(d_model, tgt_vocab)

    def encode(self, src, src_mask=None) -> Tensor:
        """The encoder's output ("memory") ``(batch, S, d_model)`` for source ids ``(batch, S)``.

        ``src_mask``: True where a source position may be attended, e.g. ``F.padding_mask(src, pad_id)``; None
        attends every position, padding included (:meth:`forward`).
        """
        op = "Transformer.encode"
        src = check_ids(op, "src", src, self.max_len, like=self.src_embed.weight)
        x = self.dropout(self.positional(self.src_embed(src, op=op, name="src")))  # Dropout(E[src] sqrt(d_model) + PE)
        heads = self.encoder.layers[0].self_attn.heads
        src_mask = check_stack_mask(op, "src_mask", src_mask, x, heads, x.shape[-2], some_key=True)
        return self.encoder(x, src_mask)

    def decode(self, tgt_in, memory: Tensor, src_mask=None, tgt_mask=None, cache: list | None = None) -> Tensor:
        """Logits ``(batch, T, tgt_vocab)`` for the target ids ``tgt_in`` ``(batch, T)`` given the memory.

        The causal mask is built inside; ``tgt_mask`` can hide more (target padding). With a
        ``cache`` (:meth:`new_cache`), ``tgt_in`` holds only the new positions, placed after the
        cached ones (their positional encoding starts there), and each step costs one position's
        attention per layer.
        """
        op = "Transformer.decode"
        start = self.decoder.cached_positions(cache)  # positions already decoded (0 without a cache)
        tgt_in = check_ids(op, "tgt_in", tgt_in, self.max_len, start, like=self.tgt_embed.weight)
        y = self.dropout(self.positional(self.tgt_embed(tgt_in, op=op, name="tgt_in"), start))  # (B, T, d_model)
        heads = self.decoder.layers[0].self_attn.heads
        tgt_mask = check_stack_mask(op, "tgt_mask", tgt_mask, y, heads, start + y.shape[-2], causal=True, some_key=True)
        if isinstance(memory, Tensor) and memory.ndim == 3:  # (else the decoder names what memory should be)
            src_mask = check_stack_mask(op, "src_mask", src_mask, y, heads, memory.shape[-2], some_key=True)
        y = self.decoder(y, memory, src_mask, tgt_mask, cache)
        return _output_logits(y, self.output, self.tgt_embed)  # (B, T, tgt_vocab)

    def forward(self, src, tgt_in, src_mask=None, tgt_mask=None) -> Tensor:
        """Logits ``(batch, T, tgt_vocab)``: ``decode(tgt_in, encode(src, src_mask), src_mask, tgt_mask)``.

        The model does not know which id is padding: without ``src_mask`` every source position is attended, the
        padding of a padded batch too, and the logits differ from those of the unpadded sources. Give
        ``src_mask=F.padding_mask(src, pad_id)`` for a padded batch, as
        :func:`~minitransformer.train.seq2seq_loss` and the decoders (:func:`~minitransformer.train.greedy_decode`,
        :func:`~minitransformer.train.beam_search`) do (as ``src_key_padding_mask`` must be given to PyTorch's
        ``nn.Transformer``).
        """
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask, tgt_mask)

    def extra_repr(self) -> str:
        """Whether the embeddings are shared (``(tgt_embed)`` then says it is ``src_embed``) and the output tied."""
        shared = f"share_embeddings={self.tgt_embed is self.src_embed}"
        return ", ".join(filter(None, [shared, _tied(self.output, "tgt_embed")]))

    def new_cache(self) -> list:
        """Empty key/value caches for :meth:`decode`, one per decoder layer."""
        return self.decoder.new_cache()


# ------------------------------------------------------------------ decoder-only language model
class DecoderOnlyLM(_Configured):
    r"""A GPT-style language model: the Transformer's decoder without cross-attention, predicting the next token.

    .. math::
        \mathrm{logits} = \mathrm{Decoder}(\mathrm{Dropout}(E[\mathrm{ids}]\sqrt{d_{model}} + PE))\, W_{out}
            + b_{out}

    ``logits[:, t]`` scores the token at position :math:`t+1` from the tokens up to :math:`t`;
    the causal mask is built inside. Pre-LN by default (``norm_first=True``), as GPT-2; the
    :class:`Decoder` then ends in the final LayerNorm that pre-LN needs. The embeddings are scaled
    by :math:`\sqrt{d_{model}}` as in the Transformer; ``positional="learned"`` puts a trained table
    in place of the sinusoids (GPT).

    Shapes: integer ids ``(batch, T)`` -> logits ``(batch, T, vocab)``.

    Parameters
    ----------
    vocab : int
        Vocabulary size.
    d_model, heads, d_ff, num_layers, dropout
        As :class:`Transformer` (by default the paper's base sizes: 512, 8, 2048, 6 layers, 0.1).
    max_len : int
        The longest sequence it takes; 1024 by default, GPT-2's context.
    norm_first : bool
        Pre-LN (the default here, as GPT-2) or post-LN (``False``, as the paper).
    tie_output : bool
        ``logits = x E^T`` (GPT-2 does this).
    positional : {"sinusoidal", "learned"}
        :class:`SinusoidalPositionalEncoding` or :class:`LearnedPositionalEmbedding`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> lm = nn.DecoderOnlyLM(vocab=20, d_model=16, heads=2, d_ff=32, num_layers=2, max_len=32)
    >>> lm(mt.tensor([[1, 2, 3, 4]])).shape   # (batch, T, vocab)
    (1, 4, 20)
    """

    presets = {
        "tiny": dict(vocab=100, d_model=32, heads=4, d_ff=64, num_layers=2, max_len=256, dropout=0.1,
                     norm_first=True, tie_output=False, positional="sinusoidal"),
    }

    @torch_keywords(batch_first=BATCH_FIRST, aliases=vocab_aliases("DecoderOnlyLM"))
    def __init__(self, vocab: int, d_model: int = 512, heads: int = 8, d_ff: int = 2048, num_layers: int = 6,
                 max_len: int = 1024, dropout: float = 0.1, norm_first: bool = True, tie_output: bool = False,
                 positional: str = "sinusoidal"):
        super().__init__()
        op = "DecoderOnlyLM"
        vocab, (d_model, heads) = require_int(op, "vocab", vocab, low=1), check_heads(op, d_model, heads)
        d_ff, num_layers = require_int(op, "d_ff", d_ff, low=1), require_int(op, "num_layers", num_layers, low=1)
        max_len = require_int(op, "max_len", max_len, low=1)
        norm_first, tie_output = require_bool(op, "norm_first", norm_first), require_bool(op, "tie_output", tie_output)
        if positional not in ("sinusoidal", "learned"):
            raise ValueError(f"{op}: positional must be 'sinusoidal' or 'learned', got {positional!r}")
        self.config = dict(vocab=vocab, d_model=d_model, heads=heads, d_ff=d_ff, num_layers=num_layers,
                           max_len=max_len, dropout=dropout, norm_first=norm_first,
                           tie_output=tie_output, positional=positional)
        self.vocab, self.max_len = vocab, max_len
        self.embed = Embedding(vocab, d_model, scale=True)
        self.positional = (SinusoidalPositionalEncoding(d_model, max_len) if positional == "sinusoidal"
                           else LearnedPositionalEmbedding(max_len, d_model))
        self.dropout = Dropout(dropout)
        self.decoder = Decoder(d_model, heads, d_ff, num_layers, dropout, norm_first, cross_attention=False)
        self.output = None if tie_output else Linear(d_model, vocab)

    def forward(self, ids, mask=None, cache: list | None = None) -> Tensor:
        """Logits ``(batch, T, vocab)`` for ids ``(batch, T)``.

        ``mask`` can hide more keys (padding; with a cache its key axis counts every position so
        far). With a ``cache`` (:meth:`new_cache`), ``ids`` holds only the new positions.
        """
        op = "DecoderOnlyLM"
        start = self.decoder.cached_positions(cache)  # positions already generated (0 without a cache)
        ids = check_ids(op, "ids", ids, self.max_len, start, like=self.embed.weight)
        x = self.dropout(self.positional(self.embed(ids, op=op, name="ids"), start))  # (B, T, d_model)
        heads = self.decoder.layers[0].self_attn.heads
        mask = check_stack_mask(op, "mask", mask, x, heads, start + x.shape[-2], causal=True, some_key=True)
        x = self.decoder(x, tgt_mask=mask, cache=cache)
        return _output_logits(x, self.output, self.embed)  # (B, T, vocab)

    def extra_repr(self) -> str:
        """The positional encoding's kind and whether the output is tied to the embedding."""
        kind = "learned" if isinstance(self.positional, LearnedPositionalEmbedding) else "sinusoidal"
        return ", ".join(filter(None, [f"positional={kind!r}", _tied(self.output, "embed")]))

    def new_cache(self) -> list:
        """Empty key/value caches, one per layer, for generating one token at a time."""
        return self.decoder.new_cache()


# ------------------------------------------------------------------ classifier (the document's section 5.2)
class TransformerClassifier(_Configured):
    r"""A yes/no text classifier: what the document's section 5.2 Keras code meant to build.

    .. math::
        h = \mathrm{Encoder}(\mathrm{Dropout}(E[\mathrm{ids}]\sqrt{d_{model}} + PE)), \qquad
        \mathrm{logit} = \mathrm{pool}(h)\, w + b, \qquad p(\text{yes}) = \sigma(\mathrm{logit})

    Embedding(10000, 512), sinusoidal positional encoding, a Transformer encoder block (8 heads,
    :math:`d_{ff}` = 2048), pooling over the non-padding positions, Dense(1). The output is one
    logit per text, ``(batch,)``; the sigmoid belongs to the loss
    (``F.binary_cross_entropy_with_logits``), or :meth:`predict_proba` applies it.

    **What the document's code gets wrong.**

    * ``from tensorflow.keras.layers import TransformerBlock`` fails: Keras has no such layer.
      (The keras.io text-classification example *defines* a ``TransformerBlock`` class itself,
      with an ``embed_dim`` argument the document does not pass; KerasNLP's is
      ``keras_nlp.layers.TransformerEncoder``.)
    * There is no pooling: the block's output is ``(batch, 100, 512)``, so ``Dense(1)`` gives
      ``(batch, 100, 1)``, a probability per *token*, not per text. Here ``pooling`` makes one
      vector per text (``"mean"``, the keras.io example's ``GlobalAveragePooling1D``; ``"max"``;
      or ``"cls"``, a learned vector put before the text whose output is used, as BERT's [CLS]).
    * There is no positional encoding: self-attention alone is blind to word order (permuting the
      tokens permutes the outputs), so the model would see a bag of words.
    * Padding is not masked: padded positions would be attended and averaged in. Here
      ``pad_id`` tokens are hidden from attention and left out of the pooling, so appending
      padding does not change the output.
    * Section 5.4 trains on ``x_train = np.random.rand(100, 100)``: floats in [0, 1), which an
      embedding truncates to token id 0 everywhere (this class refuses non-integer ids), and on
      ``y_train = np.random.rand(100, 1)``: floats in [0, 1) too, soft labels unrelated to the
      inputs, from which nothing can be learned. Its "accuracy" is not chance but about 0: with
      ``binary_crossentropy``, Keras computes ``metrics=['accuracy']`` as binary accuracy, the share
      of labels *equal* to the prediction thresholded at 0.5 (0 or 1), and a random float is almost
      never 0 or 1.

    Shapes: integer ids ``(batch, seq)`` -> one logit per text ``(batch,)``.

    Parameters
    ----------
    vocab_size, d_model, heads, d_ff, num_layers, max_len, dropout
        The document's values by default (``max_sequence_length`` = 100, one block).
    pooling : {"mean", "cls", "max"}
        How the encoder's outputs become one vector per text (see :meth:`pool`).
    pad_id : int
        The padding token.
    norm_first : bool
        Post-LN by default (as the keras.io ``TransformerBlock``).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> clf = nn.TransformerClassifier.from_config("tiny").eval()   # eval(): no dropout
    >>> text, padded = mt.tensor([[5, 6, 7]]), mt.tensor([[5, 6, 7, 0, 0]])   # pad_id = 0
    >>> clf(padded).shape, bool(abs(clf(text).item() - clf(padded).item()) < 1e-5)   # padding changes nothing
    ((1,), True)
    """

    presets = {
        "document": dict(vocab_size=10000, d_model=512, heads=8, d_ff=2048, num_layers=1, max_len=100,
                         dropout=0.1, pooling="mean", pad_id=0, norm_first=False),
        "tiny": dict(vocab_size=100, d_model=32, heads=4, d_ff=64, num_layers=1, max_len=64, dropout=0.1,
                     pooling="mean", pad_id=0, norm_first=False),
    }
    poolings = ("mean", "cls", "max")

    @torch_keywords(batch_first=BATCH_FIRST, aliases=vocab_aliases("TransformerClassifier"))
    def __init__(self, vocab_size: int = 10000, d_model: int = 512, heads: int = 8, d_ff: int = 2048,
                 num_layers: int = 1, max_len: int = 100, dropout: float = 0.1, pooling: str = "mean",
                 pad_id: int = 0, norm_first: bool = False):
        super().__init__()
        op = "TransformerClassifier"
        vocab_size, (d_model, heads) = require_int(op, "vocab_size", vocab_size, low=1), check_heads(op, d_model, heads)
        d_ff, num_layers = require_int(op, "d_ff", d_ff, low=1), require_int(op, "num_layers", num_layers, low=1)
        max_len = require_int(op, "max_len", max_len, low=1)
        if pooling not in self.poolings:
            raise ValueError(f"{op}: pooling must be one of {self.poolings}, got {pooling!r}")
        if not is_integer(pad_id) or not 0 <= pad_id < vocab_size:
            raise ValueError(f"{op}: pad_id must be a token id in 0..{vocab_size - 1}, got {pad_id!r}")
        pad_id, norm_first = int(pad_id), require_bool(op, "norm_first", norm_first)
        self.config = dict(vocab_size=vocab_size, d_model=d_model, heads=heads, d_ff=d_ff, num_layers=num_layers,
                           max_len=max_len, dropout=dropout, pooling=pooling, pad_id=pad_id,
                           norm_first=norm_first)
        self.vocab_size, self.max_len, self.pooling, self.pad_id = vocab_size, max_len, pooling, pad_id
        self.embed = Embedding(vocab_size, d_model, scale=True)
        if pooling == "cls":  # a learned [CLS] vector before the text: variance 1, as the scaled embeddings
            self.cls = init.normal_(Parameter(zeros(d_model)), 0.0, 1.0)
        self.positional = SinusoidalPositionalEncoding(d_model, max_len + (pooling == "cls"))
        self.dropout = Dropout(dropout)
        self.encoder = Encoder(d_model, heads, d_ff, num_layers, dropout, norm_first)
        self.head = Linear(d_model, 1)  # the document's Dense(1), without the sigmoid

    def forward(self, ids) -> Tensor:
        """One logit per text, ``(batch,)``, for token ids ``(batch, seq)`` (``pad_id`` = padding)."""
        op = "TransformerClassifier"
        ids = check_ids(op, "ids", ids, self.max_len, like=self.embed.weight)
        xp, B = ids.backend.xp, ids.shape[0]
        real = ids.data != self.pad_id  # (B, S): True at real tokens
        x = self.embed(ids, op=op, name="ids")  # (B, S, d_model)
        if self.pooling == "cls":
            cls = self.cls.reshape(1, 1, -1) + zeros(B, 1, 1, dtype=x.dtype_name, backend=x.backend)  # (B, 1, d)
            x = concat([cls, x], axis=1)  # (B, 1 + S, d_model)
            real = xp.concat([xp.ones((B, 1), dtype=xp.bool), real], axis=1)
        mask = Tensor(xp.reshape(real, (B, 1, 1, real.shape[1])), backend=ids.backend)  # keys: real tokens
        h = self.encoder(self.dropout(self.positional(x)), mask)  # (B, S', d_model)
        return self.head(self.pool(h, real)).reshape(B)  # (B, d_model) -> (B, 1) -> (B,)

    def extra_repr(self) -> str:
        """How the outputs become one vector per text, and the padding id left out of it."""
        return f"pooling={self.pooling!r}, pad_id={self.pad_id}"

    def pool(self, h: Tensor, real) -> Tensor:
        r"""One vector per text from ``h`` ``(batch, S, d_model)``, over the positions where ``real`` ``(batch, S)``.

        mean: :math:`\sum_s m_s h_s / \sum_s m_s`; max: :math:`\max_{s: m_s} h_s`; cls: :math:`h_0`.
        A text of padding only gets the zero vector (mean, max). ``real`` is boolean, a Tensor or an array.
        """
        xp, real = h.backend.xp, check_positions("TransformerClassifier.pool", real, h)
        if self.pooling == "cls":
            return h[:, 0]  # the [CLS] position: (B, d_model)
        m = xp.reshape(real, (*real.shape, 1))  # (B, S, 1)
        if self.pooling == "mean":
            m_s = xp.astype(m, h.dtype)  # 1 at real tokens, 0 at padding
            count = xp.maximum(xp.sum(m_s, axis=1, keepdims=True), 1.0)  # (B, 1, 1); at least 1: padding only gives 0
            return (h * Tensor(m_s / count, backend=h.backend)).sum(axis=1)  # sum_s (m_s / sum m) h_s: (B, d_model)
        any_real = Tensor(xp.any(m, axis=1), backend=h.backend)  # (B, 1)
        lowest = float(xp.finfo(h.dtype).min)
        pooled = where(Tensor(m, backend=h.backend), h, lowest).max(axis=1)  # (B, d_model)
        return where(any_real, pooled, 0.0)

    def predict_proba(self, ids) -> Tensor:
        r"""Probability of the positive class, ``(batch,)``: :math:`\sigma(z) = 1 / (1 + e^{-z})`, :math:`z` the logit.

        ``z.sigmoid()`` (:func:`~minitransformer.functional.sigmoid`) computes it as :math:`1/(1 + e^{-|z|})` or
        :math:`e^{-|z|}/(1 + e^{-|z|})`, so no exponent is positive and nothing overflows. No gradient. The model
        runs in eval mode (no dropout: the probability, not a noisy sample of it, also right after training) and is
        put back in its mode.
        """
        with evaluating(self):
            return self(ids).sigmoid()  # sigma(z), (batch,)

