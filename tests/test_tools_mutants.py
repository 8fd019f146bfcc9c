"""tools/mutants.py: the mutants it makes of a small file (running them takes the whole suite: see the tool)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.single_backend

SOURCE = '''"""A module."""
LIMIT = 3                                   # module level: runs at import, not mutated


def f(x, eps=1e-5, *, flag=True):
    """A docstring: 1 + 2 is not code."""
    if x is not None and x.size <= LIMIT:   # is not, <=
        x += eps * 2                        # +=, *, 2
        return -x / (1 - eps)               # unary -, /, -, 1
    raise ValueError(f"{x} > {LIMIT + 1}")  # an f-string: a message, left alone


def g(y):
    return y ** 2  # no mutate


def h(y):
    return y.reshape((-1, 2))  # NumPy reads any negative length as unknown: only the 2 is changed
'''


def _tool(monkeypatch):
    spec = importlib.util.spec_from_file_location("mutants", Path(__file__).parents[1] / "tools" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutants", module)  # dataclasses looks its module up; gone after the test
    spec.loader.exec_module(module)
    return module


def test_the_mutants_of_a_small_file(tmp_path, monkeypatch):
    tool = _tool(monkeypatch)
    path = tmp_path / "small.py"
    path.write_text(SOURCE)
    made = [(m.line, m.old, m.new, m.lines) for m in tool.mutants_of(path)]
    body = (7, 10)  # a default value selects the tests that run the function's body
    assert made == [
        (5, "1e-5", "2e-05", body), (5, "True", "False", body),
        (7, "is not", "is", (7, 7)), (7, "<=", "<", (7, 7)),
        (8, "+=", "-=", (8, 8)), (8, "*", "/", (8, 8)), (8, "2", "3", (8, 8)),
        (9, "/", "*", (9, 9)), (9, "-", "", (9, 9)), (9, "-", "+", (9, 9)), (9, "1", "2", (9, 9)),
        (18, "2", "3", (18, 18)),
    ]
    for m in tool.mutants_of(path):  # each changes its one token and compiles
        changed = tool.apply(SOURCE, m)
        compile(changed, "small.py", "exec")
        assert changed.splitlines()[m.line - 1] != SOURCE.splitlines()[m.line - 1]
        assert sum(a != b for a, b in zip(changed.splitlines(), SOURCE.splitlines())) == 1


C_MODULE = '''"""Kernels."""
SOURCE = r"""
// a comment: x + 1 is not code
extern "C" __global__ void axpy(const T* x, T* y, long long n, T a) {
    for (long long i = threadIdx.x; i < n && !done(i); i += blockDim.x) y[i] = a * x[i] + (T)0.5 + 7ULL * 0x1F;
}
"""
OTHER = "a + 1"  # another string: left alone
'''


def test_the_mutants_of_the_c_code_in_a_string(tmp_path, monkeypatch):
    tool = _tool(monkeypatch)
    path = tmp_path / "kernels.py"
    path.write_text(C_MODULE)
    made = [(m.line, m.old, m.new, m.language) for m in tool.c_mutants_of(path, "SOURCE")]
    assert made == [  # the pointer stars of T* stay; so do ++, [], casts and names
        (5, "<", "<=", "c"), (5, "&&", "||", "c"), (5, "!", "", "c"), (5, "+=", "-=", "c"), (5, "*", "/", "c"),
        (5, "+", "-", "c"), (5, "0.5", "1.0", "c"), (5, "+", "-", "c"), (5, "7ULL", "8ULL", "c"), (5, "*", "/", "c"),
    ]  # (not the hexadecimal number)
    for m in tool.c_mutants_of(path, "SOURCE"):
        changed = tool.apply(C_MODULE, m)
        assert sum(a != b for a, b in zip(changed.splitlines(), C_MODULE.splitlines())) == 1
    assert tool.mutants_of(path) == []  # no Python inside a function: nothing for the Python mutants
