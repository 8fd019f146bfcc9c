"""PyTorch's names that are written otherwise here, and the errors that say so.

A student coming from PyTorch writes ``x.float()``, ``mt.cat(...)``, ``F.mse_loss(...)`` or
``nn.MultiheadAttention(...)``; each misses here, and the AttributeError names what to write instead.
One table, keyed by where the name is looked up: on a tensor, on a module, in the package, in ``functional``, in
``nn``.
Each entry is what torch writes and what to write here; a test runs both and compares the answers
(``tests/test_bad_input.py``; ``save`` and ``load``: each pair saves a model and loads it into another), so only names
with a real equivalent are listed. docs/from-pytorch.md lists the other differences.

PyTorch's keywords ``dim=`` and ``keepdim=`` are ``axis=`` and ``keepdims=`` here (NumPy's names), ``nhead=`` and
``dim_feedforward=`` are ``heads=`` and ``d_ff=`` (the paper's): a function that takes these is wrapped by
:func:`torch_keywords`, whose TypeError says so, and says what to do with torch's ``batch_first=``, ``attn_mask=``.
``x.size`` is NumPy's, the number of elements, an :class:`ElementCount`: called as PyTorch's ``x.size(-1)``, it says
to write ``x.shape[-1]``.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

P = ParamSpec("P")
R = TypeVar("R")

#: PyTorch's name -> (what torch writes, what to write here), for each place a name is looked up
TORCH_NAMES = {
    "Tensor": {
        "float": ("x.float()", "x.to('float32')"),
        "double": ("x.double()", "x.to('float64')"),
        "long": ("x.long()", "x.to('int64')"),
        "int": ("x.int()", "x.to('int32')"),
        "half": ("x.half()", "x.to('float16')"),  # a tensor may be float16; training in it is refused (TORCH_CAVEATS)
        "bool": ("x.bool()", "x.to('bool')"),
        "dim": ("x.dim()", "x.ndim"),
        "numel": ("x.numel()", "x.size"),
        "view": ("x.view(2, -1)", "x.reshape(2, -1)"),
        "view_as": ("x.view_as(y)", "x.reshape(y.shape)"),
        "reshape_as": ("x.reshape_as(y)", "x.reshape(y.shape)"),
        "type": ("x.type(torch.float64)", "x.to('float64')"),
        "type_as": ("ids.type_as(x)", "ids.to(x.dtype_name)"),
        "nelement": ("x.nelement()", "x.size"),
        "ndimension": ("x.ndimension()", "x.ndim"),
        "is_cuda": ("x.is_cuda", "x.backend.name == 'cupy'"),
        "flatten": ("x.flatten()", "x.reshape(-1)"),
        "unsqueeze": ("x.unsqueeze(1)", "x[:, None]"),
        "squeeze": ("x.squeeze(1)", "x[:, 0]"),
        "t": ("W.t()", "W.T"),
        "argmax": ("x.argmax(-1)", "x.numpy().argmax(-1)"),
        "argmin": ("x.argmin(-1)", "x.numpy().argmin(-1)"),
        "cpu": ("x.cpu()", "x.to('numpy')"),
        "cuda": ("x.cuda()", "x.to('cupy')"),
        "device": ("x.device", "x.backend"),
        "softmax": ("x.softmax(-1)", "F.softmax(x, axis=-1)"),
        "log_softmax": ("x.log_softmax(-1)", "F.log_softmax(x, axis=-1)"),
        "any": ("x.any()", "x.numpy().any()"),
        "all": ("x.all()", "x.numpy().all()"),
        "amax": ("x.amax(-1)", "x.max(-1)"),
        "pow": ("x.pow(2)", "x ** 2"),
        "matmul": ("x.matmul(y.mT)", "x @ y.mT"),
        "add": ("x.add(y)", "x + y"),
        "mul": ("x.mul(y)", "x * y"),
        "sub": ("x.sub(y)", "x - y"),
        "div": ("x.div(y)", "x / y"),
        "neg": ("x.neg()", "-x"),
        "norm": ("x.norm()", "(x ** 2).sum().sqrt()"),
        "contiguous": ("x.contiguous()", "x"),  # every array here is one a reshape can take
        # torch's x.split(size, dim) cuts parts of that size; here x.split(n, axis) cuts n parts (NumPy's meaning)
        "chunk": ("x.chunk(3, dim=-1)", "x.split(3, axis=-1)"),
        # no primitives of their own: written with those there are (docs/from-pytorch.md, "Written with what there is")
        "abs": ("x.abs()", "mt.maximum(-x, x)"),
        "min": ("x.min(-1).values", "-(-x).max(-1)"),
        "clamp": ("x.clamp(-1, 1)", "mt.where(x < -1, -1.0, mt.where(x > 1, 1.0, x))"),
        "clip": ("x.clip(-1, 1)", "mt.where(x < -1, -1.0, mt.where(x > 1, 1.0, x))"),
        "std": ("x.std(-1)", "(((x - x.mean(-1, keepdims=True)) ** 2).sum(-1) / (x.shape[-1] - 1)).sqrt()"),
        # in place: the initializers change a tensor's array, as these do (other names ending in _: in_place)
        "zero_": ("x.zero_()", "nn.init.zeros_(x)"),
        "fill_": ("x.fill_(0.5)", "nn.init.constant_(x, 0.5)"),
        "normal_": ("x.normal_(0.0, 0.02)", "nn.init.normal_(x, 0.0, 0.02)"),
        "uniform_": ("x.uniform_(-0.1, 0.1)", "nn.init.uniform_(x, -0.1, 0.1)"),
    },
    "Module": {
        "cuda": ("model.cuda()", "model.to('cupy')"),
        "cpu": ("model.cpu()", "model.to('numpy')"),
        "float": ("model.float()", "model.to('float32')"),
        "double": ("model.double()", "model.to('float64')"),
    },
    "minitransformer": {
        "cat": ("torch.cat(xs, dim=-1)", "mt.concat(xs, axis=-1)"),
        "argmax": ("torch.argmax(x, dim=-1)", "x.numpy().argmax(-1)"),
        "abs": ("torch.abs(x)", "mt.maximum(-x, x)"),
        "exp": ("torch.exp(x)", "x.exp()"),
        "log": ("torch.log(p)", "p.log()"),
        "sqrt": ("torch.sqrt(p)", "p.sqrt()"),
        "tanh": ("torch.tanh(x)", "x.tanh()"),
        "sum": ("torch.sum(x, dim=-1)", "x.sum(axis=-1)"),
        "mean": ("torch.mean(x, dim=-1)", "x.mean(axis=-1)"),
        "softmax": ("torch.softmax(x, dim=-1)", "F.softmax(x, axis=-1)"),
        "from_numpy": ("torch.from_numpy(a)", "mt.tensor(a)"),
        "cuda": ("torch.cuda.is_available()", "'cupy' in mt.backend.available()"),
        "clamp": ("torch.clamp(x, -1, 1)", "mt.where(x < -1, -1.0, mt.where(x > 1, 1.0, x))"),
        "sigmoid": ("torch.sigmoid(x)", "x.sigmoid()"),
        "tril": ("torch.tril(torch.ones(3, 3, dtype=torch.bool))", "F.causal_mask(3)"),
        "triu": ("torch.triu(torch.ones(3, 3, dtype=torch.bool), diagonal=1)", "~F.causal_mask(3)"),
        "bmm": ("torch.bmm(x, y.mT)", "x @ y.mT"),
        "chunk": ("torch.chunk(x, 3, dim=-1)", "x.split(3, axis=-1)"),
        "reshape": ("torch.reshape(x, (3, 2))", "x.reshape(3, 2)"),
        "transpose": ("torch.transpose(x, 0, 2)", "x.swapaxes(0, 2)"),
        "permute": ("torch.permute(x, (2, 0, 1))", "x.permute(2, 0, 1)"),
        "unsqueeze": ("torch.unsqueeze(x, 1)", "x[:, None]"),
        "squeeze": ("torch.squeeze(x, 1)", "x[:, 0]"),
        "amax": ("torch.amax(x, dim=-1)", "x.max(axis=-1)"),
        "max": ("torch.max(x, dim=-1).values", "x.max(axis=-1)"),
        "pow": ("torch.pow(x, 2)", "x ** 2"),
        "norm": ("torch.norm(x)", "(x ** 2).sum().sqrt()"),
        # a checkpoint here: one .npz file, read without pickle (docs/training.md); a test saves and loads with each
        "save": ("torch.save(model.state_dict(), path)", "train.save_checkpoint(path, model)"),
        "load": ("model.load_state_dict(torch.load(path))", "train.load_checkpoint(path, model)"),
        # the generator of the current backend (a test draws, restores and draws the same again with each)
        "get_rng_state": ("torch.get_rng_state()", "mt.backend.current().get_rng_state()"),
        "set_rng_state": ("torch.set_rng_state(state)", "mt.backend.current().set_rng_state(state)"),
    },
    "minitransformer.functional": {
        "mse_loss": ("F.mse_loss(x, y)", "((x - y) ** 2).mean()"),
        "l1_loss": ("F.l1_loss(x, y)", "mt.maximum(y - x, x - y).mean()"),
        "tanh": ("F.tanh(x)", "x.tanh()"),
        "embedding": ("F.embedding(ids, W)", "mt.take(W, ids, axis=0)"),
        "one_hot": ("F.one_hot(ids, 3)", "ids[..., None].eq(mt.arange(3)).to('int64')"),
        # the losses take the logits and apply log_softmax or the sigmoid themselves, in one stable formula
        "nll_loss": ("F.nll_loss(F.log_softmax(logits, dim=-1), labels)", "F.cross_entropy(logits, labels)"),
        "binary_cross_entropy": ("F.binary_cross_entropy(torch.sigmoid(logits), targets)",
                                 "F.binary_cross_entropy_with_logits(logits, targets)"),
    },
    "minitransformer.nn": {
        "MultiheadAttention": ("nn.MultiheadAttention(8, 2, batch_first=True)", "nn.MultiHeadAttention(8, 2)"),
        "TransformerEncoderLayer": ("nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)",
                                    "nn.EncoderLayer(8, 2, 16)"),
        "TransformerDecoderLayer": ("nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)",
                                    "nn.DecoderLayer(8, 2, 16)"),
        "TransformerEncoder": ("nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2)",
                               "nn.Encoder(8, 2, 16, 2)"),
        "TransformerDecoder": ("nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), 2)",
                               "nn.Decoder(8, 2, 16, 2)"),
        "CrossEntropyLoss": ("nn.CrossEntropyLoss()(logits, labels)", "F.cross_entropy(logits, labels)"),
        "MSELoss": ("nn.MSELoss()(x, y)", "((x - y) ** 2).mean()"),
        "Softmax": ("nn.Softmax(dim=-1)(x)", "F.softmax(x, axis=-1)"),
        "LogSoftmax": ("nn.LogSoftmax(dim=-1)(x)", "F.log_softmax(x, axis=-1)"),
        "BCEWithLogitsLoss": ("nn.BCEWithLogitsLoss()(logits, targets)",
                              "F.binary_cross_entropy_with_logits(logits, targets)"),
        "L1Loss": ("nn.L1Loss()(x, y)", "mt.maximum(y - x, x - y).mean()"),
        "Tanh": ("nn.Tanh()(x)", "x.tanh()"),
        "Sigmoid": ("nn.Sigmoid()(x)", "x.sigmoid()"),
        "Flatten": ("nn.Flatten()(x)", "x.reshape(x.shape[0], -1)"),
    },
}

#: Why float16 is refused (by ``Module.to``, the optimizers whose step breaks in it, ``x.half()``, ``model.half()``):
#: no loss scaling and no wider accumulation here, so its largest number, 65504, is soon passed
FLOAT16_WHY = ("a layer norm's squared deviations pass its largest number, 65504, once inputs reach about 256, and "
               "nothing here scales the loss as training in float16 needs")

#: What a hint of :data:`TORCH_NAMES` adds where the answer hides a trap of its own (``x - y`` broadcasts where
#: torch's loss would warn, and a ``Linear(d, 1)`` output ``(B, 1)`` minus targets ``(B,)`` averages a ``(B, B)`` grid)
_SAME_SHAPE = (", x and y of one shape: pred[:, 0] for a Linear(d, 1) output, whose (B, 1) minus targets of (B,) "
               "would broadcast to a (B, B) grid and average it without an error (torch warns)")
TORCH_CAVEATS = {
    "Tensor": {"int": " (ids are int64 here, x.to('int64'), as torch's x.long())",
               "half": f", but float16 is not supported for training (Module.to and Adam refuse it): {FLOAT16_WHY}"},
    "minitransformer.functional": {"mse_loss": _SAME_SHAPE, "l1_loss": _SAME_SHAPE},
    "minitransformer.nn": {"MSELoss": _SAME_SHAPE, "L1Loss": _SAME_SHAPE},
}


#: PyTorch's names with no equal here, each with why (the AttributeError says it), as ``Module.to`` refuses them
TORCH_REFUSED = {
    "Module": {"half": ("model.half()", f"model.to('float16') is refused: float16 is not supported: {FLOAT16_WHY}; "
                                        "keep the model float32 (the default), or model.to('float64')")},
}


def no_attribute(where: str, name: str, obj=None) -> AttributeError:
    """The AttributeError for ``name`` missing from ``where`` (a key of :data:`TORCH_NAMES`), in Python's words,
    with what to write here where PyTorch has the name.

    ``obj`` is what lacks the name (the tensor, whose type is named; for a module, the module itself by default):
    Python's traceback reads ``name`` and ``obj`` to add "Did you mean ...?" for a typo, as ``nn.Linaer`` ->
    ``'Linear'``. A name of the table gets no ``name``: its hint says what to write, where Python would guess
    another name (``mt.cat``: "Did you mean: 'cast'?", from Python 3.12 in the message itself); ``obj`` is given all
    the same, since the interpreter fills in ``name`` and ``obj`` of an AttributeError that has neither.
    """
    of_an_object = where in ("Tensor", "Module")  # else a module of the package, looked up by its name
    if obj is None and not of_an_object:
        obj = sys.modules[where]
    owner = f"{type(obj).__name__!r} object" if of_an_object else f"module {where!r}"
    message = f"{owner} has no attribute {name!r}"
    hint = TORCH_NAMES[where].get(name) or (in_place(name, obj) if where == "Tensor" else None)
    if hint:
        torch, here = hint
        caveat = TORCH_CAVEATS.get(where, {}).get(name, "")
        return AttributeError(f"{message}; PyTorch's {torch} is {here} here{caveat} (docs/from-pytorch.md)", obj=obj)
    if name in TORCH_REFUSED.get(where, {}):
        torch, why = TORCH_REFUSED[where][name]
        return AttributeError(f"{message}; PyTorch's {torch} has no equal here: {why} (docs/from-pytorch.md)", obj=obj)
    return AttributeError(message, name=name, obj=obj)


def in_place(name: str, x) -> tuple[str, str] | None:
    """PyTorch's in-place ``x.name(...)`` (one of :data:`TORCH_IN_PLACE`) and what to write here: ``x += y`` for its
    arithmetic (in place here too, outside a graph), else ``x = ...``, the method of ``x`` without the ``_`` or a
    tensor's answer in :data:`TORCH_NAMES`; else None. No array is written in place here: every array a graph saved
    for ``backward()`` stays as it was."""
    if name not in TORCH_IN_PLACE:
        return None
    if name in _AUGMENTED:  # in place here too, outside a graph: p.sub_(lr * g) under no_grad is p -= lr * g
        return f"in-place x.{name}(y)", f"x {_AUGMENTED[name]}= y"
    base = name[:-1]
    if base in TORCH_NAMES["Tensor"]:
        torch, here = TORCH_NAMES["Tensor"][base]
        return f"in-place {torch.replace(f'.{base}(', f'.{name}(', 1)}", f"x = {here}"
    args = "..." if len(inspect.signature(getattr(type(x), base)).parameters) > 1 else ""  # beside self
    return f"in-place x.{name}({args})", f"x = x.{base}({args})"


#: PyTorch's in-place arithmetic whose answer is Python's augmented assignment (Tensor.__iadd__ ...)
_AUGMENTED = {"add_": "+", "sub_": "-", "mul_": "*", "div_": "/"}
#: PyTorch's in-place methods whose answer is a method here or a tensor's name above (x.transpose_ is not, NumPy's
#: transpose is another operation)
TORCH_IN_PLACE = {"add_", "sub_", "mul_", "div_", "pow_", "neg_", "exp_", "log_", "sqrt_", "tanh_", "relu_", "abs_",
                  "clamp_", "clip_", "sigmoid_", "masked_fill_", "unsqueeze_", "squeeze_"}

#: PyTorch's keyword -> (the one here, whose name it is), for a function that takes the one here
TORCH_KEYWORDS = {
    "dim": ("axis", "NumPy's"), "keepdim": ("keepdims", "NumPy's"),
    "nhead": ("heads", "the paper's"), "num_heads": ("heads", "the paper's"),  # h
    "embed_dim": ("d_model", "the paper's"), "embedding_dim": ("d_model", "the paper's"),
    "dim_feedforward": ("d_ff", "the paper's"),
}

#: each whole model's keyword(s) of the vocabulary size, which differ and stay so (a checkpoint's config saves them);
#: another model's name given to one of them says what to write there (:func:`vocab_aliases`)
VOCAB_KEYWORDS = {"Transformer": ("src_vocab", "tgt_vocab"), "DecoderOnlyLM": ("vocab",),
                  "TransformerClassifier": ("vocab_size",)}


def vocab_aliases(model: str) -> dict[str, tuple[tuple[str, ...], str]]:
    """The other models' keywords of the vocabulary size -> ``(model's keywords, why)``, the ``aliases`` of
    :func:`torch_keywords` for ``model``'s constructor."""
    why = ("each model names its vocabulary size its own way, which its checkpoints save: "
           + "; ".join(f"{m} {', '.join(k + '=' for k in ks)}" for m, ks in VOCAB_KEYWORDS.items()))
    ours = VOCAB_KEYWORDS[model]
    return {k: (ours, why) for keywords in VOCAB_KEYWORDS.values() for k in keywords if k not in ours}


#: what a layer that takes sequences says to torch's ``batch_first=``
BATCH_FIRST = "is left out here: every layer takes (batch, seq, d_model)"
#: what a reduction (``x.sum()``, ``x.mean()``, ``x.max()``) says to the keywords of torch's and of NumPy's
#: functions, which call the method of the same name: ``np.mean(x)`` is ``x.mean(axis=None, dtype=None, out=None)``
REDUCTION_KEYWORDS = {
    "dtype": "is left out here (cast first: x.to('float64').mean())",
    "out": "is left out here (a reduction gives a new tensor); np.sum(x), np.mean(x) and np.max(x) pass out=: write "
           "x.sum(), x.mean(), x.max() (with a gradient) or np.mean(x.numpy())",
}
_ONE_UPDATE = ("is left out here: the update is already one array operation over all the parameters laid end to end "
               "(one CUDA kernel where the backend has kernels)")
#: what the optimizers say to torch's keywords that have no equal here
OPTIMIZER_KEYWORDS = {
    "maximize": "has no equal here: minimise the negated objective (a loss_fn that returns -objective)",
    "foreach": _ONE_UPDATE,
    "fused": _ONE_UPDATE,
    "capturable": "is left out here (no CUDA graphs)",
    "differentiable": "is left out here: an update is never part of a graph",
    "decoupled_weight_decay": "is optim.AdamW here (torch's Adam(..., decoupled_weight_decay=True) is its AdamW)",
}
#: ... and gradient clipping
CLIP_KEYWORDS = {
    "error_if_nonfinite": "is left out here: a norm that is not finite makes the gradients so, as torch's default "
                          "does, and a Trainer reports the loss that follows (a check here would make the host wait "
                          "for the norm at every step)",
    "foreach": "is left out here: the norm is a few array operations over all the gradients laid end to end",
}
#: what attention's forward says to torch's masks, which nn.MultiheadAttention has True where a query may *not* attend
MHA_MASKS = {
    "attn_mask": "is mask= here, True where a query may attend a key, where torch's is True where it may not: "
                 "mask=~attn_mask, or F.causal_mask(L)",
    "key_padding_mask": "is mask=F.padding_mask(ids, pad_id) here, True at the tokens (torch's is True at the padding)",
    "is_causal": "is mask=F.causal_mask(L) here",
    "average_attn_weights": "has no equal here: every head's weights are returned, (B, h, L, S), and "
                            "weights.mean(axis=1) is torch's default",
}
#: ... and F.scaled_dot_product_attention's, whose boolean attn_mask is True where a query may attend, as here
SDPA_MASKS = {
    "attn_mask": "is mask= here, True where a query may attend a key, as torch's boolean attn_mask in this function",
    "is_causal": "is mask=F.causal_mask(L) here",
}


# The signatures a type checker sees: the wrapped function's own (a class's, where its __init__ is wrapped), so that
# a misspelt keyword is flagged. ``aliases`` has a signature of its own: a table passed as **instead might hold the
# key "aliases" for all a checker knows, and would not match.
@overload
def torch_keywords(f: Callable[P, R], **instead: str) -> Callable[P, R]: ...
@overload
def torch_keywords(**instead: str) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
@overload
def torch_keywords(*, aliases: dict[str, tuple[tuple[str, ...], str]] | None,
                   **instead: str) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def torch_keywords(f: Any = None, *, aliases: Any = None, **instead: Any) -> Any:
    """``f`` with PyTorch's keywords refused by Python's TypeError for a keyword ``f`` does not take, followed by
    what to write here: a keyword of :data:`TORCH_KEYWORDS` whose name here ``f`` takes, with its value
    (``x.sum(dim=-1)``: "PyTorch's dim=-1 is axis=-1 here"), and each of ``instead``, a keyword torch has and ``f``
    not, with what to do (``@torch_keywords(batch_first=BATCH_FIRST)``: "PyTorch's batch_first= is left out here ...").
    ``aliases`` does the same for names of this library's own that ``f`` spells otherwise: keyword -> (``f``'s
    keywords, why), as :func:`vocab_aliases` gives (``DecoderOnlyLM(vocab_size=10)``: "vocab_size=10 is vocab=10
    here (...)").

    >>> import minitransformer as mt
    >>> mt.ones(2, 3).sum(dim=-1, keepdim=True)
    Traceback (most recent call last):
    TypeError: Tensor.sum() got an unexpected keyword argument 'dim'; PyTorch's dim=-1, keepdim=True are axis=-1, \
keepdims=True here (NumPy's names; docs/from-pytorch.md)
    """
    if f is None:
        return functools.partial(torch_keywords, aliases=aliases, **instead)
    takes, aliases = inspect.signature(f).parameters, aliases or {}
    renamed = {k: v for k, v in TORCH_KEYWORDS.items() if v[0] in takes}
    theirs = renamed.keys() | instead.keys() | aliases.keys()

    @functools.wraps(f)
    def takes_torchs_keywords(*args: Any, **kwargs: Any) -> Any:
        if kwargs and not theirs.isdisjoint(kwargs):
            raise TypeError(_keywords_message(f.__qualname__, kwargs, renamed, instead, aliases))
        return f(*args, **kwargs)

    return takes_torchs_keywords


def _keywords_message(name: str, kwargs: dict, renamed: dict, instead: dict, aliases: dict) -> str:
    """Python's words for the first of PyTorch's keywords (or of ``aliases``) in ``kwargs``, then what to write for
    each of them. NumPy's functions pass their defaults on (``np.mean(x)`` calls ``x.mean(axis=None, dtype=None,
    out=None)``): there, a keyword given as None is not the user's and is not named."""
    if kwargs.get("out", ...) is None:
        kwargs = {k: v for k, v in kwargs.items() if v is not None or k == "out"}
    first = next(k for k in kwargs if k in renamed or k in instead or k in aliases)
    said = [f"{name}() got an unexpected keyword argument {first!r}"]
    said += [f"{k}={kwargs[k]!r} is {', '.join(f'{ours}={kwargs[k]!r}' for ours in aliases[k][0])} here "
             f"({aliases[k][1]})" for k in kwargs if k in aliases]  # the library's own names: not torch's docs
    given, others = [k for k in kwargs if k in renamed], [k for k in kwargs if k in instead]
    if not given and not others:
        return "; ".join(said)
    if given:
        whose = " and ".join(sorted({renamed[k][1] for k in given}))
        theirs = ", ".join(f"{k}={kwargs[k]!r}" for k in given)
        ours = ", ".join(f"{renamed[k][0]}={kwargs[k]!r}" for k in given)
        are, names = ("is", "name") if len(given) == 1 else ("are", "names")
        if not others:
            return "; ".join(said) + f"; PyTorch's {theirs} {are} {ours} here ({whose} {names}; docs/from-pytorch.md)"
        said.append(f"PyTorch's {theirs} {are} {ours} here ({whose} {names})")
    said += [f"PyTorch's {k}= {instead[k]}" for k in others]
    return "; ".join(said) + " (docs/from-pytorch.md)"


class ElementCount(int):
    """``x.size``: the number of elements, an int, as NumPy's ``a.size`` is. PyTorch's ``x.size()`` and ``x.size(dim)``
    call it (``d_k = q.size(-1)`` is a line of most attention code): Python's TypeError, "'int' object is not
    callable", then says what to write here.

    >>> import minitransformer as mt
    >>> q = mt.zeros(2, 5, 8)
    >>> q.size, q.size * 2, q.shape[-1]
    (80, 160, 8)
    >>> q.size(-1)
    Traceback (most recent call last):
    TypeError: 'int' object is not callable: Tensor.size is the number of elements, 80 (NumPy's name); PyTorch's \
x.size(-1) is x.shape[-1] here (docs/from-pytorch.md)
    """

    def __call__(self, *args, **kwargs):
        dim = args[0] if args else kwargs.get("dim")
        theirs, ours = ("x.size()", "x.shape") if dim is None else (f"x.size({dim!r})", f"x.shape[{dim!r}]")
        raise TypeError(f"'int' object is not callable: Tensor.size is the number of elements, {int(self)} (NumPy's "
                        f"name); PyTorch's {theirs} is {ours} here (docs/from-pytorch.md)")
