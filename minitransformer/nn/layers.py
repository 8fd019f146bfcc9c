r"""The layers a Transformer is built from, each a :class:`~minitransformer.nn.Module` around one formula.

The formulas themselves live in :mod:`minitransformer.functional`; a layer owns the parameters
(:math:`W`, :math:`b`, :math:`\gamma`, :math:`\beta`, the embedding table) and calls its formula.
Shapes are written ``(batch, seq, d_model)``; any number of leading axes works where it makes sense.
"""

from __future__ import annotations

import math

from .. import functional as F
from .._arguments import require_bool, require_int, require_real
from ..autograd import Tensor, cast, take
from ..autograd._torch_names import torch_keywords
from ..autograd.creation import ones, zeros
from ..backend import BackendError
from ..functional._checks import check_token_ids, require_float, require_same_dtype
from ..functional.activations import GELU_APPROXIMATE
from ..functional.dropout import check_probability
from . import init
from .module import MODULE_DTYPES, Module, Parameter

__all__ = [
    "Linear",
    "Embedding",
    "LayerNorm",
    "Dropout",
    "ReLU",
    "GELU",
    "Identity",
    "FeedForward",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
]


# ------------------------------------------------------------------ argument checks (before any arithmetic)
def check_features(layer: str, name: str, x, d: int, what: str = "d_model",
                   weight: tuple[str, Tensor] | None = None) -> Tensor:
    """``x`` if it is a floating-point Tensor whose last axis has ``d`` features and, given the layer's ``weight``
    ``(its name, the tensor)``, of that weight's dtype (a model's weights share one); else an error naming
    ``layer``, not a formula or an operation inside it.

    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> lin = nn.Linear(4, 3)
    >>> check_features("Linear", "input", mt.ones(2, 4, dtype="float64"), 4, "d_in", ("weight", lin.weight))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Linear: weight is float32 (4, 3) but input is float64 (2, 4); convert the input with .to('float32') ...
    """
    require_float(layer, name, x)
    if x.ndim == 0 or x.shape[-1] != d:
        raise ValueError(f"{layer}: {name} has shape {x.shape}; its last axis must be {what}={d}")
    return x if weight is None else check_dtype(layer, name, x, weight)


def check_dtype(layer: str, name: str, x: Tensor, weight: tuple[str, Tensor]) -> Tensor:
    """``x`` if it has the dtype of the layer's ``weight`` ``(its name, the tensor)``; else a TypeError naming
    ``layer``, both dtypes and shapes, and the two ways out. (Each layer names one of its weights: walking its
    modules for one would cost every forward more than the check.) The model's way out is offered only for a dtype
    :meth:`Module.to` takes: a float16 model is refused."""
    if x.data.dtype == weight[1].data.dtype:  # every forward: no message to make
        return x
    model = (" or the model with model.to('{b}')" if x.dtype_name in MODULE_DTYPES
             else f" (a model cannot be {{b}}: Module.to takes {' and '.join(MODULE_DTYPES)})")
    return require_same_dtype(layer, weight[0], weight[1], name, x, fix=f"convert the {name} with .to('{{a}}')" + model)


# ------------------------------------------------------------------ Linear
class Linear(Module):
    r"""The affine map :math:`y = xW + b`, the projection every part of the Transformer is made of.

    Shapes: ``(..., d_in)`` -> ``(..., d_out)``.

    Parameters
    ----------
    d_in, d_out : int
        Features in and out.
    bias : bool
        Whether to add :math:`b` (the paper's attention projections have none; its feed-forward does).

    Attributes
    ----------
    weight : Parameter
        :math:`W`, shape ``(d_in, d_out)`` (the paper's orientation; PyTorch stores the transpose),
        Xavier-uniform initialised: :math:`U[-a, a]`, :math:`a = \sqrt{6/(d_\text{in} + d_\text{out})}`.
    bias : Parameter or None
        :math:`b`, shape ``(d_out,)``, zeros.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> lin = nn.Linear(4, 3)
    >>> lin(mt.ones(2, 5, 4)).shape, lin.weight.shape   # W is (d_in, d_out)
    ((2, 5, 3), (4, 3))
    """

    def __init__(self, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        self.d_in = require_int("Linear", "d_in", d_in, low=1)
        self.d_out = require_int("Linear", "d_out", d_out, low=1)
        self.weight = init.xavier_uniform_(Parameter(zeros(self.d_in, self.d_out)))
        self.bias = Parameter(zeros(self.d_out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """:math:`xW + b` over the last axis: ``(..., d_in)`` -> ``(..., d_out)``."""
        check_features("Linear", "input", x, self.d_in, "d_in", ("weight", self.weight))
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_out={self.d_out}, bias={self.bias is not None}"


# ------------------------------------------------------------------ Embedding
#: what takes the place of torch's Embedding(padding_idx=) here
_NO_PADDING_IDX = "the padding is masked out of attention, and of the loss by ignore_index"


class Embedding(Module):
    r"""Token ids to vectors: row :math:`i` of a learned table :math:`E` is the vector of token :math:`i`.

    .. math:: \text{Embedding}(i) = E_{i,:} \cdot (\sqrt{d_\text{model}} \text{ if scale})

    The paper (section 3.4) multiplies the embeddings by :math:`\sqrt{d_\text{model}}`: with
    ``scale=True`` this layer does. :math:`E` starts as :math:`\mathcal N(0, 1/d_\text{model})`, so
    the scaled vectors have entries of variance 1, about the size of the sinusoidal positional
    encoding added to them (whose entries have mean square 1/2).
    The lookup's gradient adds up the gradients of every position where a token occurs.

    Shapes: integer ids ``(batch, seq)`` -> ``(batch, seq, d_model)``.

    Parameters
    ----------
    num_embeddings : int
        Vocabulary size :math:`C` (as in ``docs/formulas/embedding.md``).
    d_model : int
        Vector size.
    scale : bool
        Multiply by :math:`\sqrt{d_\text{model}}` (paper 3.4).

    Attributes
    ----------
    weight : Parameter
        :math:`E`, shape ``(num_embeddings, d_model)``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> emb = nn.Embedding(10, 4)
    >>> v = emb(mt.tensor([[1, 2, 1]]))
    >>> v.shape, bool((v.numpy()[0, 0] == v.numpy()[0, 2]).all())   # token 1 twice: row E[1] twice
    ((1, 3, 4), True)
    """

    @torch_keywords(padding_idx=f"has no equal here: {_NO_PADDING_IDX}")
    def __init__(self, num_embeddings: int, d_model: int, scale: bool = False):
        super().__init__()
        self.num_embeddings = require_int("Embedding", "num_embeddings", num_embeddings, low=1)
        self.d_model = require_int("Embedding", "d_model", d_model, low=1)
        self.scale = require_bool("Embedding", "scale", scale, f" (torch's third argument is padding_idx: here "
                                                                f"{_NO_PADDING_IDX})")
        self.weight = init.normal_(Parameter(zeros(self.num_embeddings, self.d_model)), 0.0, self.d_model**-0.5)

    def forward(self, ids, *, op: str = "Embedding", name: str = "ids") -> Tensor:
        r"""Rows of :math:`E` for integer ``ids`` (times :math:`\sqrt{d_\text{model}}` if ``scale``).

        ``(batch, seq)`` (any shape of ids) -> ``(batch, seq, d_model)``. The ids are checked against the
        vocabulary here, once per lookup (an error names ``op`` and ``name``: a model passes its own, e.g.
        ``op="Transformer.encode", name="src"``); the lookup itself does not read them again.
        """
        ids = ids if isinstance(ids, Tensor) else Tensor(ids, backend=self.weight.backend)
        if ids.backend is not self.weight.backend:  # (else take would refuse, naming an operation not called)
            here, there = self.weight.backend.name, ids.backend.name
            raise BackendError(
                f"{op}: the {name} tensor is on backend {there}, the embedding's weights (the model's) on {here}: "
                f"make the batches on the model's backend (the data helpers' backend={here!r} argument, or "
                f"mt.backend.use({here!r}) before making them), or move them with {name}.to({here!r})"
            )
        check_token_ids(op, name, ids, self.num_embeddings)  # integers in 0..V-1 (V = num_embeddings)
        E = take(self.weight, ids, axis=0, in_range=True)  # (*ids.shape, d_model)
        return E * math.sqrt(self.d_model) if self.scale else E

    def extra_repr(self) -> str:
        return f"num_embeddings={self.num_embeddings}, d_model={self.d_model}, scale={self.scale}"


# ------------------------------------------------------------------ LayerNorm
class LayerNorm(Module):
    r"""Layer normalisation with a learned gain :math:`\gamma` and bias :math:`\beta` (the "Norm" of "Add & Norm").

    .. math:: \text{LayerNorm}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    with :math:`\mu, \sigma^2` the mean and (biased) variance over the last axis; see
    :func:`minitransformer.functional.layer_norm`. :math:`\gamma` starts at ones, :math:`\beta` at zeros.

    Shapes: ``(..., d_model)`` -> ``(..., d_model)``.

    Parameters
    ----------
    d_model : int
        Size of the last axis, the one normalised.
    eps : float
        :math:`\epsilon \ge 0`, added to the variance.

    Attributes
    ----------
    gamma, beta : Parameter
        ``(d_model,)``, the learned gain and bias.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> nn.LayerNorm(3)(mt.tensor([[1.0, 2.0, 3.0]])).numpy().round(4)   # mean 2, variance 2/3
    array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.d_model = require_int("LayerNorm", "d_model", d_model, low=1)
        self.eps = require_real("LayerNorm", "eps", eps, low=0.0)
        self.gamma = Parameter(ones(self.d_model))
        self.beta = Parameter(zeros(self.d_model))

    def forward(self, x: Tensor) -> Tensor:
        r""":math:`\gamma \odot (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`: ``(..., d_model)`` -> same shape."""
        check_features("LayerNorm", "input", x, self.d_model, weight=("gamma", self.gamma))
        return F.layer_norm(x, self.gamma, self.beta, self.eps)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, eps={self.eps}"


# ------------------------------------------------------------------ Dropout
class Dropout(Module):
    r"""Inverted dropout while ``training``; the identity after ``eval()``.

    .. math:: y_i = \frac{m_i x_i}{1 - p}, \quad m_i \sim \text{Bernoulli}(1 - p)

    See :func:`minitransformer.functional.dropout`. Shapes: any shape, unchanged.

    Parameters
    ----------
    p : float
        Probability of dropping an element, in [0, 1) (the paper's :math:`P_{drop} = 0.1`).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> drop, x = nn.Dropout(0.5), mt.ones(2, 4)
    >>> set(drop(x).numpy().ravel().tolist()) <= {0.0, 2.0}   # training: kept values scaled by 1 / (1 - p)
    True
    >>> drop.eval()(x) is x                                   # evaluation: the identity
    True
    """

    dropout_rate = "p"  # the attribute that draws masks in training mode (testing.gradcheck_module refuses them)

    def __init__(self, p: float = 0.1):
        super().__init__()
        self.p = check_probability("Dropout", p)

    def forward(self, x: Tensor) -> Tensor:
        """``F.dropout(x, p)`` while ``training``, ``x`` itself after ``eval()``; the shape is unchanged."""
        return F.dropout(x, self.p, training=self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# ------------------------------------------------------------------ activations, as modules for Sequential
class ReLU(Module):
    r""":math:`\max(0, x)` elementwise, as a module: a step of :class:`~minitransformer.nn.Sequential`.

    See :func:`minitransformer.functional.relu`. Shapes: any shape, unchanged. No parameters.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> mlp(mt.ones(3, 4)).shape, nn.ReLU()(mt.tensor([-1.0, 2.0])).numpy()
    ((3, 2), array([0., 2.], dtype=float32))
    """

    def forward(self, x: Tensor) -> Tensor:
        """``F.relu(x)``; the shape of ``x``."""
        return F.relu(x)


class GELU(Module):
    r"""GELU elementwise, in its tanh approximation, as a module: a step of :class:`~minitransformer.nn.Sequential`.

    See :func:`minitransformer.functional.gelu` (PyTorch's twin is ``nn.GELU(approximate="tanh")``).
    Shapes: any shape, unchanged. No parameters.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> nn.GELU()(mt.tensor([-1.0, 0.0, 1.0])).numpy().round(4)
    array([-0.1588,  0.    ,  0.8412], dtype=float32)
    """

    @torch_keywords(approximate=GELU_APPROXIMATE)  # (as F.gelu refuses it)
    def __init__(self):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        """``F.gelu(x)``; the shape of ``x``."""
        return F.gelu(x)


class Identity(Module):
    """``x`` itself: a step that does nothing, where a layer is optional (``nn.Identity()`` in place of a norm).

    Shapes: any shape, unchanged. No parameters.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> x = mt.ones(2, 3)
    >>> nn.Identity()(x) is x
    True
    """

    def forward(self, x: Tensor) -> Tensor:
        """``x``, the same tensor; any shape."""
        return x


# ------------------------------------------------------------------ FeedForward
class FeedForward(Module):
    r"""The position-wise feed-forward network (paper section 3.3, equation 2):

    .. math:: \text{FFN}(x) = \max(0,\, x W_1 + b_1)\, W_2 + b_2

    applied to each position separately and identically: ``d_model -> d_ff -> d_model``
    (512 -> 2048 -> 512 in the paper). ``activation="gelu"`` replaces :math:`\max(0, \cdot)` by GELU
    (as BERT and GPT do). With ``dropout > 0`` the hidden activations are dropped out while
    training, as PyTorch's ``TransformerEncoderLayer`` does; equation 2 itself has no dropout.

    Shapes: ``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``.

    Parameters
    ----------
    d_model, d_ff : int
        Widths of the input and output, and of the hidden layer.
    dropout : float
        On the hidden activations while training.
    activation : {"relu", "gelu"}
        The non-linearity between the two layers.

    Attributes
    ----------
    W_1 : Linear
        ``(d_model, d_ff)`` with bias :math:`b_1`.
    W_2 : Linear
        ``(d_ff, d_model)`` with bias :math:`b_2`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> ffn = nn.FeedForward(d_model=8, d_ff=32)
    >>> ffn(mt.ones(2, 5, 8)).shape, ffn.num_parameters()   # 8 * 32 + 32 + 32 * 8 + 8
    ((2, 5, 8), 552)
    """

    activations = {"relu": F.relu, "gelu": F.gelu}

    @torch_keywords
    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        if activation not in self.activations:
            raise ValueError(
                f"FeedForward: activation must be one of {', '.join(map(repr, self.activations))}, got {activation!r}"
            )
        self.d_model = require_int("FeedForward", "d_model", d_model, low=1)
        self.d_ff = require_int("FeedForward", "d_ff", d_ff, low=1)
        self.activation = activation
        self.W_1 = Linear(self.d_model, self.d_ff)
        self.W_2 = Linear(self.d_ff, self.d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        r""":math:`\mathrm{activation}(xW_1 + b_1) W_2 + b_2` at each position, the paper's activation
        being ReLU, :math:`\max(0, \cdot)`: ``(batch, seq, d_model)`` -> same shape."""
        check_features("FeedForward", "input", x, self.d_model, weight=("W_1.weight", self.W_1.weight))
        ### BEGIN SOLUTION A4: FFN(x) = activation(x W_1 + b_1) W_2 + b_2, dropout on the hidden
        hidden = self.activations[self.activation](self.W_1(x))  # activation(x W_1 + b_1): (batch, seq, d_ff)
        return self.W_2(self.dropout(hidden))  # (...) W_2 + b_2: (batch, seq, d_model)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_ff={self.d_ff}, activation={self.activation!r}"


# ------------------------------------------------------------------ positional encodings
def _positions(op: str, order: str, x: Tensor, d_model: int, start, max_len: int, hint: str,
               weight: tuple[str, Tensor] | None = None) -> tuple[int, int]:
    """``start`` (as an int) and the sequence length of ``x`` (..., seq, d_model), checked to fit rows
    ``start .. start + seq`` of the table (and, given the table's ``weight``, to have its dtype). ``order`` is the
    layer's arguments, ``"d_model, max_len"`` or the other way round, named when they look swapped."""
    if x.ndim and x.shape[-1] == max_len != d_model:  # the two layers take the sizes in opposite orders
        raise ValueError(
            f"{op}: input has shape {x.shape}; its last axis must be d_model={d_model}, and it is max_len={max_len}: "
            f"were the two swapped? The order is {op}({order}); keywords say which is which"
        )
    check_features(op, "input", x, d_model, weight=weight)
    if x.ndim < 2:
        raise ValueError(f"{op}: input has shape {x.shape}; expected (..., seq, d_model)")
    seq = x.shape[-2]
    start = require_int(op, "start", start, low=0)
    if start + seq > max_len:
        where = f" starting at position {start}" if start else ""
        raise ValueError(f"{op}: a sequence of length {seq}{where} does not fit max_len={max_len}; {hint}")
    return start, seq


class SinusoidalPositionalEncoding(Module):
    r"""Add the fixed sinusoidal positional encoding (paper 3.5, document 4.1.3) to a sequence of vectors.

    .. math::
        PE_{(pos, 2i)} = \sin\!\left(\frac{pos}{10000^{2i/d_\text{model}}}\right), \qquad
        PE_{(pos, 2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d_\text{model}}}\right)

    ``forward(x)`` returns :math:`x + PE_{[0:\text{seq}]}`. The table is computed once, for
    ``max_len`` positions, by :func:`minitransformer.functional.sinusoidal_positional_encoding`. It is
    a buffer, not a :class:`Parameter`: nothing here is learned (contrast
    :class:`LearnedPositionalEmbedding`), and it is left out of ``state_dict()`` since the formula
    rebuilds it. It is held in float64 and cast to the input's dtype where it is added: ``to(backend)``
    moves it, ``to(dtype)`` leaves it exact (a model cast to float32 and back adds the same table).

    Shapes: ``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``, ``seq <= max_len``.

    Parameters
    ----------
    d_model : int
        Width of the vectors (first: the formula's :math:`d_\text{model}`, as PyTorch's tutorial has it).
    max_len : int
        Number of positions in the table (rows of :math:`PE`). :class:`LearnedPositionalEmbedding` takes the
        two the other way round, ``(max_len, d_model)``, the shape of its table: keywords make either plain, and
        an input of width ``max_len`` is refused as a likely swap.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> pe = nn.SinusoidalPositionalEncoding(d_model=4, max_len=10)
    >>> pe(mt.zeros(1, 2, 4)).numpy().round(4)   # x = 0 shows PE: pos 0, then sin 1, cos 1, sin 0.01, cos 0.01
    array([[[0.    , 1.    , 0.    , 1.    ],
            [0.8415, 0.5403, 0.01  , 1.    ]]], dtype=float32)
    >>> pe.num_parameters(), pe.state_dict()     # nothing learned, nothing saved
    (0, {})
    """

    _keep_dtype = ("PE",)  # float64 through to(dtype), so no cast there rounds it for good
    PE: Tensor  # the buffer __init__ registers, declared for a type checker

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        self.d_model = require_int("SinusoidalPositionalEncoding", "d_model", d_model, low=1)
        self.max_len = require_int("SinusoidalPositionalEncoding", "max_len", max_len, low=1)
        # computed in float64 and cast per call to the input's dtype, so a float64 model (gradient
        # checks) gets the exact table and a float32 one the same table rounded
        self.register_buffer(
            "PE", F.sinusoidal_positional_encoding(self.max_len, self.d_model, dtype="float64"), persistent=False
        )

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """``x + PE[start : start + seq]`` (``start`` > 0 when decoding continues a sequence).

        ``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``.
        """
        start, seq = _positions("SinusoidalPositionalEncoding", "d_model, max_len", x, self.d_model, start,
                                self.max_len, "build it with a larger max_len")
        PE = self.PE[start : start + seq]  # (seq, d_model), broadcasts over the batch
        if PE.dtype != x.dtype:
            PE = cast(PE, x.dtype_name)
        return x + PE

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    r"""Add a learned vector per position: row :math:`pos` of a trained table :math:`P` (as BERT and GPT do).

    .. math:: y_{pos} = x_{pos} + P_{pos,:}

    Two different things are both called "positional encoding". The paper's (section 3.5) and
    the document's formula (4.1.3) are the *fixed* sinusoids of
    :class:`SinusoidalPositionalEncoding`: nothing is trained, and any position has a value. The
    document's 4.2.3 then says "positional encoding vectors are learned during the training
    process", which describes *this* layer instead, confusing the two. The paper tried both, found
    nearly identical results (Table 3, row E), and kept the sinusoids because they may extrapolate
    to sequences longer than any seen in training; a learned table has no row beyond ``max_len``.

    :math:`P` starts as :math:`\mathcal N(0, 0.02^2)`, as in nanoGPT's and Hugging Face's GPT-2 (OpenAI's
    own code draws positions with std 0.01 and tokens with 0.02: the two start alike there). Added to this
    library's embeddings scaled by :math:`\sqrt{d_\text{model}}` (entries of variance 1), :math:`P` starts
    about 50 times smaller than the tokens.

    Shapes: ``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``, ``seq <= max_len``.

    Parameters
    ----------
    max_len : int
        Number of positions with a row (no position beyond has one). First, as the table's shape
        ``(max_len, d_model)`` and as :class:`Embedding` ``(num_embeddings, d_model)``.
    d_model : int
        Width of the vectors. :class:`SinusoidalPositionalEncoding` takes the two the other way round,
        ``(d_model, max_len)``: keywords make either plain, and an input of width ``max_len`` is refused as a likely
        swap.

    Attributes
    ----------
    weight : Parameter
        :math:`P`, ``(max_len, d_model)``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> pos = nn.LearnedPositionalEmbedding(max_len=10, d_model=4)
    >>> x = mt.zeros(2, 3, 4)
    >>> y = pos(x)                                   # rows 0, 1, 2 of P, the same for every example
    >>> y.shape, bool((y.numpy()[1] == pos.weight.numpy()[:3]).all()), pos.num_parameters()
    ((2, 3, 4), True, 40)
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = require_int("LearnedPositionalEmbedding", "max_len", max_len, low=1)
        self.d_model = require_int("LearnedPositionalEmbedding", "d_model", d_model, low=1)
        self.weight = init.normal_(Parameter(zeros(self.max_len, self.d_model)), 0.0, 0.02)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """``x + P[start : start + seq]``: ``(batch, seq, d_model)`` -> ``(batch, seq, d_model)``."""
        start, seq = _positions("LearnedPositionalEmbedding", "max_len, d_model", x, self.d_model, start, self.max_len,
                                "a learned table has no row beyond the positions it was built with",
                                ("weight", self.weight))
        return x + self.weight[start : start + seq]  # (seq, d_model) broadcasts over the batch

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"
