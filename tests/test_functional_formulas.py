"""The checks every formula of ``minitransformer.functional`` must pass, driven by one table built on ``F.__all__``.

Each formula's own file (``test_functional_*.py``) checks it by hand, against NumPy and in its corner cases. Here
one row per function of ``F.__all__`` that has a gradient (``FORMULAS``: its float64 inputs, and its PyTorch twin)
runs four tests: ``gradcheck`` in float64, float32 in and out (outputs and gradients), PyTorch's shapes, values and
gradients (or a reason in ``NO_TORCH``), and an integer or a float32-with-float64 input refused with a message that
starts with the formula's own name (not a fused operation's). A function with a ``fused`` parameter runs in both
forms. The functions without a gradient (masks, the positional table) have one bad input each in ``NO_GRADIENT``.
``test_every_function_of_functional_has_a_row`` fails, naming it, for a function of ``F.__all__`` in neither table:
a new formula is checked from the day it is exported. See the checklist of docs/contributing.md.
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.testing import close_to_torch, rel_err

HOW_TO = 'see the checklist of docs/contributing.md'
ALLOWED = np.tril(np.ones((3, 5), dtype=bool), k=2)  # (L, S): every query sees a key (PyTorch gives NaN otherwise)
TARGETS = [0, 3, 1, 4]  # class indices of the cross-entropy row; 1 is ignore_index
IGNORED = 1


def formula(call, *shapes, torch=None, **gradcheck):
    """A row: ``call(*tensors, **form)`` on float64 inputs of ``shapes`` (standard normal values), the same formula
    in PyTorch, ``torch(torch_module, *tensors)``, and options for gradcheck."""
    return {"call": call, "shapes": shapes, "torch": torch, "gradcheck": gradcheck}


def _dropout(x, **form):
    mt.manual_seed(3)  # one mask for every evaluation gradcheck's finite differences make
    return F.dropout(x, 0.4, **form)


def _torch_attention(torch, Q, K, V):
    """PyTorch's output, and its weights from its own softmax (its function returns the output only)."""
    allowed = torch.from_numpy(ALLOWED)
    weights = torch.softmax((Q @ K.mT / math.sqrt(Q.shape[-1])).masked_fill(~allowed, -math.inf), dim=-1)
    return torch.nn.functional.scaled_dot_product_attention(Q, K, V, attn_mask=allowed), weights


FORMULAS = {
    "softmax": formula(lambda x, **form: F.softmax(x, **form), (3, 4),
                       torch=lambda torch, x: torch.softmax(x, dim=-1)),
    "log_softmax": formula(lambda x, **form: F.log_softmax(x, **form), (3, 4),
                           torch=lambda torch, x: torch.log_softmax(x, dim=-1)),
    "relu": formula(lambda x, **form: F.relu(x, **form), (3, 4), torch=lambda torch, x: torch.relu(x)),
    "gelu": formula(lambda x, **form: F.gelu(x, **form), (3, 4),
                    torch=lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh")),
    "sigmoid": formula(lambda x, **form: F.sigmoid(x, **form), (3, 4), torch=lambda torch, x: torch.sigmoid(x)),
    "dropout": formula(_dropout, (3, 4)),
    "layer_norm": formula(lambda x, gamma, beta, **form: F.layer_norm(x, gamma, beta, **form), (2, 3, 5), (5,), (5,),
                          torch=lambda torch, x, gamma, beta: torch.nn.functional.layer_norm(x, (5,), gamma, beta,
                                                                                             eps=1e-5)),
    "linear": formula(lambda x, W, b, **form: F.linear(x, W, b, **form), (2, 3, 4), (4, 5), (5,),
                      torch=lambda torch, x, W, b: torch.nn.functional.linear(x, W.T, b)),  # torch's W: (d_out, d_in)
    "cross_entropy": formula(
        lambda z, **form: F.cross_entropy(z, mt.tensor(TARGETS), ignore_index=IGNORED, label_smoothing=0.1, **form),
        (4, 5), torch=lambda torch, z: torch.nn.functional.cross_entropy(z, torch.tensor(TARGETS), ignore_index=IGNORED,
                                                                         label_smoothing=0.1)),
    "binary_cross_entropy_with_logits": formula(
        lambda z, **form: F.binary_cross_entropy_with_logits(z, mt.tensor(np.eye(3, 4)), **form), (3, 4),
        torch=lambda torch, z: torch.nn.functional.binary_cross_entropy_with_logits(z, torch.eye(3, 4).double())),
    "scaled_dot_product_attention": formula(
        lambda Q, K, V, **form: F.scaled_dot_product_attention(Q, K, V, mask=ALLOWED, **form), (2, 3, 4), (2, 5, 4),
        (2, 5, 3), torch=_torch_attention),
}

#: formulas of FORMULAS with no PyTorch comparison, and why
NO_TORCH = {
    "dropout": "random: PyTorch draws another mask; test_functional_dropout.py checks the expectation, the survivors' "
               "1 / (1 - p) and the gradient through the same mask",
}

#: functions of F.__all__ without a gradient, each with why, one bad call, its error and the message's start
NO_GRADIENT = {
    "causal_mask": ("a bool table of a length", lambda: F.causal_mask(-1), ValueError, "T must be an integer >= 0"),
    "padding_mask": ("a bool table of token ids", lambda: F.padding_mask(mt.tensor([[1.5, 0.0]]), 0), TypeError,
                     "ids must be integer token ids"),
    "combine_masks": ("the logical and of two bool tables",
                      lambda: F.combine_masks(F.causal_mask(2), mt.ones(2, 2)), TypeError, "the mask must be boolean"),
    "sinusoidal_positional_encoding": ("a fixed table of two sizes",
                                       lambda: F.sinusoidal_positional_encoding(4, 0), ValueError,
                                       "d_model must be a positive integer"),
}


def _forms(name: str) -> list[dict]:
    """The forms a function runs in: fused and composed where it has a ``fused`` parameter, else the one."""
    if "fused" in inspect.signature(getattr(F, name)).parameters:
        return [{}, {"fused": False}]
    return [{}]


CASES = [pytest.param(name, form, id=name + ("-composed" if form else "-fused" if len(_forms(name)) > 1 else ""))
         for name in FORMULAS for form in _forms(name)]


def _form(name: str, form: dict) -> str:
    return f"{name}{' (fused=False)' if form else ''}"


def _tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _arrays(name, rng) -> list[np.ndarray]:
    return [rng.standard_normal(shape) for shape in FORMULAS[name]["shapes"]]


def _inputs(name, rng, dtype="float64"):
    return [mt.tensor(a.astype(dtype), requires_grad=True) for a in _arrays(name, rng)]


# ------------------------------------------------------------------ every function has a row
@pytest.mark.single_backend
def test_every_function_of_functional_has_a_row():
    rows = set(FORMULAS) | set(NO_GRADIENT)
    problems = [f"{name} (in minitransformer.functional.__all__) has no row in FORMULAS (its float64 inputs and its "
                f"PyTorch twin) or, if it has no gradient, NO_GRADIENT of tests/test_functional_formulas.py: add one "
                f"({HOW_TO})" for name in sorted(set(F.__all__) - rows)]
    problems += [f"{name} has a row in tests/test_functional_formulas.py but is not in minitransformer.functional."
                 "__all__: take it off" for name in sorted(rows - set(F.__all__))]
    problems += [f"{name} is in both FORMULAS and NO_GRADIENT" for name in sorted(set(FORMULAS) & set(NO_GRADIENT))]
    no_twin = {name for name, row in FORMULAS.items() if row["torch"] is None}
    problems += [f"{name} has no PyTorch twin in FORMULAS: add one, or say why it has none in NO_TORCH"
                 for name in sorted(no_twin - set(NO_TORCH))]
    problems += [f"{name} is in NO_TORCH but has a PyTorch twin in FORMULAS (or no row): take it off NO_TORCH"
                 for name in sorted(set(NO_TORCH) - no_twin)]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the checks of each row
@pytest.mark.parametrize("name, form", CASES)
def test_every_formula_passes_gradcheck(name, form, rng):
    row = FORMULAS[name]
    assert mt.gradcheck(lambda *xs: row["call"](*xs, **form), *_inputs(name, rng), **row["gradcheck"])


@pytest.mark.parametrize("name, form", CASES)
def test_every_formula_keeps_float32(name, form, rng):
    """float32 in, float32 out, and float32 gradients: a float64 constant in a forward or backward makes a float64
    array, which the engine refuses in backward() (a float64 gradient for a float32 input), and only a backward
    run in float32 sees it."""
    xs = _inputs(name, rng, "float32")
    outs = _tuple(FORMULAS[name]["call"](*xs, **form))
    for k, o in enumerate(outs):
        assert o.dtype_name == "float32", f"{_form(name, form)}: output {k} is {o.dtype_name} for float32 inputs"
    sum((o * mt.tensor(rng.standard_normal(o.shape).astype(np.float32))).sum() for o in outs).backward()
    for k, x in enumerate(xs):
        got = None if x.grad is None else x.grad.dtype_name
        assert got == "float32", f"{_form(name, form)}: the gradient of input {k} is {got} for float32 inputs"


@pytest.mark.parametrize("name, form", [case for case in CASES if FORMULAS[case.values[0]]["torch"] is not None])
def test_every_formula_agrees_with_torch(name, form, rng):
    """Shapes, values and the gradients of <v, outputs> (v random), float64, to 1e-10 (rel_err)."""
    torch = pytest.importorskip("torch")
    arrays = _arrays(name, rng)
    xs = [mt.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    mine, theirs = _tuple(FORMULAS[name]["call"](*xs, **form)), _tuple(FORMULAS[name]["torch"](torch, *ts))
    assert len(mine) == len(theirs), f"{_form(name, form)}: {len(mine)} outputs, PyTorch's twin {len(theirs)}"
    for k, (a, b) in enumerate(zip(mine, theirs)):  # first: rel_err broadcasts, so a (1,) loss would pass for a scalar
        assert a.shape == tuple(b.shape), f"{_form(name, form)}: output {k} is {a.shape}, PyTorch's {tuple(b.shape)}"
    vs = [rng.standard_normal(o.shape) for o in mine]
    sum((o * mt.tensor(v)).sum() for o, v in zip(mine, vs)).backward()
    sum((o * torch.from_numpy(v)).sum() for o, v in zip(theirs, vs)).backward()
    for k, (a, b) in enumerate(zip(mine, theirs)):
        close_to_torch(rel_err(a.numpy(), b.detach().numpy()), f"{_form(name, form)}: output {k}", tol=1e-10)
    for k, (x, t) in enumerate(zip(xs, ts)):
        close_to_torch(rel_err(x.grad.numpy(), t.grad.numpy()), f"{_form(name, form)}: the gradient of input {k}",
                       tol=1e-10)


BAD_INPUTS = [pytest.param(name, k, id=f"{name}-input{k}") for name in FORMULAS
              for k in range(len(FORMULAS[name]["shapes"]))]


@pytest.mark.parametrize("name, k", BAD_INPUTS)
def test_every_formula_refuses_an_integer_input_by_its_own_name(name, k, rng):
    # without the formula's own check (require_float), a fused operation refuses it, naming itself ("Softplus:
    # needs floating-point input"), or the arithmetic goes on in integers
    xs = _inputs(name, rng)
    xs[k] = mt.tensor(np.arange(xs[k].size).reshape(xs[k].shape))  # int64
    for form in _forms(name):
        with pytest.raises(TypeError, match=rf"^{name}: ") as refused:
            FORMULAS[name]["call"](*xs, **form)
        assert "int64" in str(refused.value), f"{_form(name, form)}: the message does not say int64: {refused.value}"


MIXED = [case for case in BAD_INPUTS if len(FORMULAS[case.values[0]]["shapes"]) > 1]


@pytest.mark.parametrize("name, k", MIXED)
def test_every_formula_refuses_float32_with_float64_by_its_own_name(name, k, rng):
    # without the formula's check (require_same_dtype), the operation inside that combines them refuses, naming itself
    xs = _inputs(name, rng)
    xs[k] = xs[k].detach().to("float32")
    for form in _forms(name):
        with pytest.raises(TypeError, match=rf"^{name}: .*float32") as refused:
            FORMULAS[name]["call"](*xs, **form)
        assert "float64" in str(refused.value), f"{_form(name, form)}: the message does not say float64"


@pytest.mark.parametrize("name", list(NO_GRADIENT))
def test_every_function_without_a_gradient_refuses_bad_input_by_its_own_name(name):
    _, call, error, message = NO_GRADIENT[name]
    with pytest.raises(error, match=rf"^{name}: {message}"):
        call()


# ------------------------------------------------------------------ each reads as its formula
#: the most lines of code a formula runs before the formula itself (its checks, a GPU path): more hide the formula
#: from a reader who comes from the paper (a formula page includes the function); move them into one helper, as
#: scaled_dot_product_attention's _check_attention_inputs
MOST_LINES_BEFORE_THE_FORMULA = 10


def _lines_before_the_formula(f) -> int | None:
    """The lines of code (not blank, not a comment) between ``f``'s docstring and its formula: the body between
    ``### BEGIN SOLUTION`` and ``### END SOLUTION``, or the composition after ``if fused:``; None where ``f`` has
    neither (its whole body is short, or has no formula to hide)."""
    lines, _ = inspect.getsourcelines(inspect.unwrap(f))
    node = ast.parse(textwrap.dedent("".join(lines))).body[0]
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    starts = [i + 1 for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line]  # (lines from 1, as ast's)
    starts += [s.lineno for s in body if isinstance(s, ast.If) and ast.unparse(s.test) == "fused"]
    if not body or not starts:
        return None
    before = [line.strip() for line in lines[body[0].lineno - 1:min(starts) - 1]]
    return sum(1 for line in before if line and not line.startswith("#"))


@pytest.mark.single_backend
def test_every_formula_has_its_checks_in_a_few_lines_before_the_formula():
    """A formula's function reads as the formula: its checks in a few lines (a helper where there are many), then the
    formula's lines. scaled_dot_product_attention ran 37 lines of checks before ``scores = Q @ K.mT /
    math.sqrt(d_k)``, layer_norm 28 before ``mu = x.mean(...)``, on the pages that include them whole."""
    counted = {name: _lines_before_the_formula(getattr(F, name)) for name in F.__all__}
    assert counted["scaled_dot_product_attention"] is not None and counted["layer_norm"] is not None  # (both found)
    buried = [f"{name}: {n} lines of code before its formula (at most {MOST_LINES_BEFORE_THE_FORMULA}): move its "
              "checks into one helper next to it, called in one line" for name, n in counted.items()
              if n is not None and n > MOST_LINES_BEFORE_THE_FORMULA]
    assert not buried, "\n".join(buried)
