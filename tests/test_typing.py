"""What a user's type checker (an IDE's mypy or pyright) sees of the package: the annotations, not the runtime.

The runtime tests cannot see a wrong annotation; here mypy checks a short user script, whose lines that must be
flagged end in ``# E: <mypy's error code>``, and every other line must pass. The package itself is followed
silently (its own errors, mostly Optional narrowing, are not the user's). Skipped where mypy is not installed.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.single_backend

USER_SCRIPT = '''
from typing_extensions import assert_type  # (mypy's own copy: the script is checked, never run)

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim
from minitransformer.data import CharTokenizer, Tokenizer, TokenizerPair, WordTokenizer
from minitransformer.train.tasks import build

x = mt.randn(2, 3)
F.softmax(x, axs=-1)  # E: call-arg
nn.Transformer(12, 12, d_modle=16)  # E: call-arg
optim.Adam([], lr="fast")  # E: arg-type
mt.concat([x, x], axsi=0)  # E: call-arg
x.sum(axis=-1, keepdims=True).mean()
with mt.no_grad():
    y = x * 2.0
with mt.enable_grad():
    y = x * 2.0
assert_type(mt.no_grad(), mt.no_grad)


@mt.no_grad()
def evaluate(t: mt.Tensor) -> mt.Tensor:
    return t.sum()


@mt.no_grad
def evaluate2(t: mt.Tensor) -> mt.Tensor:
    return t.sum()


r: mt.Tensor = evaluate(x)
r2: mt.Tensor = evaluate2(x)
evaluate(x, 1)  # E: call-arg
x.unsqueeze(0)  # E: attr-defined
mt.cat([x, x])  # E: attr-defined
F.mse_loss(x, x)  # E: attr-defined
lin: nn.Linear = nn.Linear(2, 2).eval()
lin.wieght  # E: attr-defined
lin.weight.grad
model: nn.Transformer = nn.Transformer(12, 12).to("float64").train()
model.training
assert_type(mt.tensor(7).item(), int | float | bool)
k: int = mt.tensor(7).item()  # E: assignment
mt.data.DataLoader
mt.train.Trainer
setup = build("reverse", steps=2)
assert_type(setup.tokenizer, Tokenizer | TokenizerPair)
setup.tokenizer.to_dict()
assert_type(CharTokenizer.from_dict({}), CharTokenizer)
c: CharTokenizer = CharTokenizer.from_dict(WordTokenizer(["a"]).to_dict())


class Softplus(mt.Function):  # as docs/extending.md writes one
    float_only = True
    on_bool = "refuse"

    def forward(self, x):
        self.e = self.xp.exp(-self.xp.abs(x))
        return self.xp.log1p(self.e) + self.xp.maximum(x, 0)

    def backward(self, grad):
        return (grad * (1 - self.e),)


fn = Softplus.apply(x).grad_fn
if fn is not None:
    fn.inputs, fn.backend.name, fn.needs_input_grad
'''


def test_a_user_s_type_checker_flags_their_mistakes_and_nothing_else(tmp_path):
    """Wrong or missing annotations made every name of the package Any (no py.typed; torch_keywords untyped, so
    F.softmax, nn.Transformer, optim.Adam took any keyword; the __getattr__ that redirect PyTorch's names took any
    attribute) or flagged correct code (``with mt.no_grad():``, ``nn.Linear(2, 2).eval()`` as an nn.Linear,
    ``setup.tokenizer.to_dict()``, a Function's ``on_bool = "refuse"``)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT, encoding="utf-8")
    (tmp_path / "mypy.ini").write_text("[mypy]\nfollow_imports = silent\nwarn_unused_ignores = False\n",
                                       encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(tmp_path / "mypy.ini"), "--cache-dir",
         str(tmp_path / "cache"), "--no-error-summary", "--show-error-codes", str(script)],
        capture_output=True, encoding="utf-8", cwd=tmp_path, timeout=300,
        env={**os.environ, "MYPYPATH": str(ROOT)},  # this checkout, whatever is installed (an editable install's
    )                                               # import hook is invisible to mypy)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    found = {(int(line), code) for line, code in re.findall(r"^.*user\.py:(\d+): error: .*\[([a-z-]+)\]$",
                                                            done.stdout, re.MULTILINE)}
    wanted = {(n, code) for n, text in enumerate(USER_SCRIPT.splitlines(), start=1)
              for code in re.findall(r"# E: ([a-z-]+)$", text)}
    assert found == wanted, done.stdout


def test_a_wrapped_function_keeps_its_signature_and_annotations():
    """What a checker reads statically, as Python shows it at run time: torch_keywords and no_grad wrap a function
    (F.softmax, nn.Transformer.__init__) without hiding its parameters from inspect or get_type_hints."""
    assert list(inspect.signature(F.softmax).parameters) == ["x", "axis", "fused"]
    assert "d_model" in inspect.signature(nn.Transformer).parameters
    assert typing.get_type_hints(F.softmax)["return"] is mt.Tensor

    @mt.no_grad()
    def evaluate(t: mt.Tensor, scale: float = 1.0) -> mt.Tensor:
        return t.sum() * scale

    assert list(inspect.signature(evaluate).parameters) == ["t", "scale"]
    assert typing.get_type_hints(evaluate)["return"] is mt.Tensor
    assert not evaluate(mt.ones(2, requires_grad=True)).requires_grad
