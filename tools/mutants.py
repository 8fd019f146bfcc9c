"""Which one-token changes to the code do the tests miss? (mutation testing)

    python tools/mutants.py minitransformer/functional/attention.py      # one file
    python tools/mutants.py minitransformer/functional minitransformer/optim --workers 2 --report mutants.json
    python tools/mutants.py minitransformer/functional minitransformer/optim --again mutants.json   # after new tests
    python tools/mutants.py minitransformer/train/tasks.py:368-431      # only those lines (a function, a change)

A test that passes whatever the formula says cannot fail, and coverage cannot tell: a line can run under a
test that never looks at its result. This makes each small change a typo or a wrong formula would make, one
at a time (a mutant): ``+`` for ``-``, ``*`` for ``/``, ``**`` for ``*``, ``<`` for ``<=``, ``is`` for
``is not``, a number plus one (or doubled), ``True`` for ``False``, a minus sign dropped, a ``not`` dropped;
then runs the tests that execute the changed line, and stops at the first failure (the mutant is *killed*).
A mutant every test passes (*survived*) is a behaviour nothing checks: a missing test, or a change that
cannot be seen (``eps`` doubled under a tolerance; ``x.sum(keepdims=True)`` of a one-element axis), which
a reader decides. A mutant no test executes is *not run*, and so is one whose tests pytest ran none of (exit code 4,
a usage error, or 5, no tests collected: never counted as killed, unless the mutant broke their loading); the tool
says which.

Which tests execute which line is found first, by one run of the suite (on NumPy, or ``--backends``) under a tracer that
watches only the mutated files; each mutant then runs only those tests, the quickest first, in a copy of
the checkout (``--workers`` copies at once), and after them the tests that share a fixture of module or session
scope with them: the tracer sees what such a fixture builds (a copy of the package, a trained model, a site) run
in the first test that asks for it only, and the others read it. Only code inside functions is changed (a default value
counts, under the function's tests); strings, annotations and lines marked ``# no mutate`` are left.
The notebooks', the documentation's and the project's tests (see ``IGNORED``) are left out of the tracing run:
they take minutes and run their code in other processes, where nothing is traced. Other tests that start a
subprocess (the CLI's, the assignments') are traced for what they run in-process, and a mutant they select
runs in their subprocesses too (they inherit its ``PYTHONPATH``).

The CUDA kernels are C++ inside a Python string (``SOURCE`` of ``minitransformer/kernels.py``), which no tracer
sees run: ``--c-source SOURCE`` mutates the C code of the module-level strings of that name too (an operator
between spaces swapped as above, ``&&`` for ``||``, a ``!`` dropped, a number plus one or doubled; comments and
pointer stars left alone), and runs each such mutant against ``--c-tests`` (the kernels' tests: on a machine
without a GPU they compile the source for the CPU under an emulation of CUDA).

    python tools/mutants.py minitransformer/kernels.py --c-source SOURCE --report kernels.json
"""

from __future__ import annotations

import argparse
import ast
import bisect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: test files that take minutes and run their code in other processes (notebooks, Sphinx, pip): nothing to trace
IGNORED = ("tests/test_docs.py", "tests/test_notebooks.py", "tests/test_project.py")
#: seconds a mutant of the C code may take where the tracing run did not time its tests (else 60 s + 5 times theirs):
#: a loop that never ends times out
C_BUDGET = 120
SWAPS = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"), ast.Pow: ("**", "*"),
         ast.FloorDiv: ("//", "/"), ast.Mod: ("%", "//")}
COMPARISONS = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
               ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is"),
               ast.In: ("in", "not in"), ast.NotIn: ("not in", "in")}
#: C operators and what each becomes; changed only between spaces (``a * b``, not the pointer star of ``T* x``)
C_SWAPS = {"+": "-", "-": "+", "*": "/", "/": "*", "%": "/", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=",
           "!=": "==", "&&": "||", "||": "&&", "+=": "-=", "-=": "+=", "*=": "/=", "/=": "*="}
#: a C token: a comment, a hex or decimal number, a name, an operator (longest first), any other character
C_TOKEN = re.compile(r"//[^\n]*|0[xX][0-9a-fA-F]+\w*|\d+\.\d*(?:[eE][-+]?\d+)?|\d+\w*|[A-Za-z_]\w*"
                     r"|<<=|>>=|<<|>>|&&|\|\||[-+*/%<>=!]=|\+\+|--|->|\S")


@dataclass
class Mutant:
    file: str  # relative to the checkout
    line: int
    col: int  # where the replaced text starts on its line
    old: str
    new: str
    lines: tuple[int, int]  # the lines whose execution selects the tests (a default value: its function's body)
    text: str = ""  # the line as it was (finds the mutant again after the file has changed: --again)
    status: str = "not run"  # killed, survived, timeout, not run (no test executes it, or pytest ran none: see by)
    tests: int = 0  # how many tests execute it
    by: str = ""  # the first test that failed on it
    language: str = "python"  # or "c": the code of a C string (--c-source), run against --c-tests

    def describe(self, source_lines: list[str]) -> str:
        text = source_lines[self.line - 1]
        changed = text[:self.col] + self.new + text[self.col + len(self.old):]
        return f"{self.file}:{self.line}: `{self.old}` -> `{self.new}`\n    {text.strip()}\n    {changed.strip()}"


# ------------------------------------------------------------------ making the mutants
def _lines_and_starts(source: str) -> tuple[list[str], list[int]]:
    """The lines of ``source`` (with their ends), and where each starts in it (one more: where the last ends)."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for text in lines:
        starts.append(starts[-1] + len(text))
    return lines, starts


def _offset(starts: list[int], line: int, col: int) -> int:
    return starts[line - 1] + col


def _between(source: str, starts: list[int], a: ast.AST, b: ast.AST, token: str) -> int | None:
    """Where ``token`` (an operator) stands between the end of ``a`` and the start of ``b``; None if not alone."""
    lo, hi = _offset(starts, a.end_lineno, a.end_col_offset), _offset(starts, b.lineno, b.col_offset)
    gap = source[lo:hi]
    code = "".join(c if c not in "()\\" else " " for c in gap)
    if code.strip() != token:  # a comment in between, or parentheses that hide another token: leave it
        return None
    return lo + code.index(token)


def _unknown_length(node: ast.AST) -> bool:
    """``-1`` (or its ``1``) in the shape a ``reshape`` is given: NumPy reads any negative length as unknown."""
    minus = node.parent if isinstance(node, ast.Constant) else node
    if not (isinstance(minus, ast.UnaryOp) and isinstance(minus.op, ast.USub)
            and isinstance(minus.operand, ast.Constant) and minus.operand.value == 1):
        return False
    call = getattr(minus.parent, "parent", None)
    name = getattr(getattr(call, "func", None), "attr", getattr(getattr(call, "func", None), "id", ""))
    return isinstance(minus.parent, ast.Tuple) and isinstance(call, ast.Call) and name == "reshape"


def mutants_of(path: Path, name: str | None = None) -> list[Mutant]:
    """Every mutant of one file, in order; ``name`` is the file's path in the checkout (default: ``path``'s)."""
    source = path.read_text(encoding="utf-8")
    lines, starts = _lines_and_starts(source)
    tree = ast.parse(source)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent
    found: list[Mutant] = []
    rel = name or (str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path))

    def add(at: int, old: str, new: str, span: tuple[int, int]):
        line = bisect.bisect_right(starts, at)
        if "no mutate" in lines[line - 1]:
            return
        found.append(Mutant(rel, line, at - starts[line - 1], old, new, span, lines[line - 1].rstrip("\n")))

    def visit(node: ast.AST, span: tuple[int, int] | None, inside: bool):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            body = node.body if isinstance(node.body, list) else [node.body]
            inner = (body[0].lineno, body[-1].end_lineno)
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
                inner = (body[1].lineno, body[-1].end_lineno)  # not the docstring
            for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                visit(d, inner, True)
            for child in body:
                visit(child, None, True)
            return
        if isinstance(node, (ast.JoinedStr, ast.arg)) or (isinstance(node, ast.Expr)
                                                          and isinstance(node.value, ast.Constant)):
            return  # f-strings (messages), annotations, docstrings
        if inside and hasattr(node, "lineno"):  # module and class level run at import, under no test
            mutate(node, span or (node.lineno, node.end_lineno))
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child, span, inside)

    def mutate(node: ast.AST, span: tuple[int, int]):
        if _unknown_length(node):
            return
        if isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
            old, new = SWAPS[type(node.op)]
            at = _between(source, starts, node.left, node.right, old)
            if at is not None:
                add(at, old, new, span)
        elif isinstance(node, ast.AugAssign) and type(node.op) in SWAPS:
            old, new = SWAPS[type(node.op)]
            at = _between(source, starts, node.target, node.value, old + "=")
            if at is not None:
                add(at, old + "=", new + "=", span)
        elif isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                if type(op) in COMPARISONS:
                    old, new = COMPARISONS[type(op)]
                    lo, hi = _offset(starts, left.end_lineno, left.end_col_offset), _offset(starts, right.lineno,
                                                                                           right.col_offset)
                    gap = source[lo:hi]
                    if " ".join(gap.replace("(", " ").replace(")", " ").split()) == old:
                        at = lo + gap.index(old.split()[0])
                        add(at, source[at:hi].rstrip(" ("), new, span)
                left = right
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            at = _offset(starts, node.lineno, node.col_offset)
            old = "-" if isinstance(node.op, ast.USub) else "not "
            if source.startswith(old, at):
                add(at, old, "", span)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            at = _offset(starts, node.lineno, node.col_offset)
            old = source[at:_offset(starts, node.end_lineno, node.end_col_offset)]
            if isinstance(node.value, bool):
                new = str(not node.value)
            elif isinstance(node.value, int):
                new = str(node.value + 1)
            else:
                new = repr(node.value * 2 if node.value else 1.0)
            add(at, old, new, span)

    visit(tree, None, False)
    return found


def c_mutants_of(path: Path, constant: str, name: str | None = None) -> list[Mutant]:
    """The mutants of the C code in ``path``'s module-level strings assigned to ``constant`` (``SOURCE``)."""
    source = path.read_text(encoding="utf-8")
    lines, starts = _lines_and_starts(source)
    rel = name or str(path)
    found = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and any(isinstance(x, ast.Name) and x.id == constant for x in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            continue
        lo = _offset(starts, node.value.lineno, node.value.col_offset)
        hi = _offset(starts, node.value.end_lineno, node.value.end_col_offset)
        code = source[lo:hi]  # the literal as written (r-string: as the compiler reads it)
        for token in C_TOKEN.finditer(code):
            old, at = token.group(), lo + token.start()
            before, after = source[at - 1], source[at + len(old)]
            if old in C_SWAPS and before == " " and after == " ":
                new = C_SWAPS[old]
            elif old == "!" and (after.isalpha() or after in "_("):
                new = ""
            elif old[0].isdigit() and not old.startswith(("0x", "0X")):
                number = re.match(r"\d+(\.\d*(?:[eE][-+]?\d+)?)?", old)
                if number.group(1):  # a float: doubled (0 becomes 1.0)
                    value = float(number.group())
                    new = repr(value * 2 if value else 1.0) + old[number.end():]
                else:  # an integer (a suffix such as ULL kept)
                    new = str(int(number.group()) + 1) + old[number.end():]
            else:
                continue
            line = bisect.bisect_right(starts, at)
            found.append(Mutant(rel, line, at - starts[line - 1], old, new, (line, line), lines[line - 1].rstrip("\n"),
                                language="c"))
    return found


def apply(source: str, m: Mutant) -> str:
    lines = source.splitlines(keepends=True)
    text = lines[m.line - 1]
    assert text[m.col:m.col + len(m.old)] == m.old, (m, text)
    lines[m.line - 1] = text[:m.col] + m.new + text[m.col + len(m.old):]
    return "".join(lines)


# ------------------------------------------------------------------ which tests run which lines
class LineTracer:
    """A pytest plugin: for each test, the lines of the watched files it executes (``sys.settrace``), in the threads
    it starts too."""

    def __init__(self, files: list[str], out: str):
        self.files = {str(Path(f).resolve()): f for f in files}  # run in the checkout it traces
        self.out = out
        self.lines: dict[str, dict[int, list[int]]] = {f: {} for f in files}  # file -> line -> test indices
        self.tests: list[tuple[str, float]] = []  # node id, seconds
        self.shared: list[list[str]] = []  # each test's fixtures that outlive it (shared_fixtures)
        self.hit: set[tuple[str, int]] = set()

    def _call(self, frame, event, arg):
        return self._line if frame.f_code.co_filename in self.files else None

    def _line(self, frame, event, arg):
        if event == "line":
            self.hit.add((frame.f_code.co_filename, frame.f_lineno))
        return self._line

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):  # set-up, call and tear-down
        self.hit = set()
        start = time.perf_counter()
        sys.settrace(self._call)
        threading.settrace(self._call)  # threads started from here on
        try:
            return (yield)
        finally:
            sys.settrace(None)
            threading.settrace(None)
            index = len(self.tests)
            self.tests.append((item.nodeid, time.perf_counter() - start))
            self.shared.append(shared_fixtures(item))
            for filename, line in self.hit:
                self.lines[self.files[filename]].setdefault(line, []).append(index)

    def pytest_sessionfinish(self, session):
        Path(self.out).write_text(json.dumps({"tests": self.tests, "lines": self.lines, "shared": self.shared}),
                                  encoding="utf-8")


def shared_fixtures(item) -> list[str]:
    """The fixtures of the project (not pytest's own) that outlive a test (module or session scope) and that ``item``
    asks for, itself or through its fixtures (an autouse one is left out: every test has it), each as
    ``module.function[param]``. What one test builds there, when it is set up or when the test calls what it gave
    (a cache), the later tests read, and the tracer sees those lines run in the first test only."""
    info = getattr(item, "_fixtureinfo", None)
    defs, found, todo, seen = (info.name2fixturedefs, [], list(info.argnames), set()) if info else ({}, [], [], set())
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:  # (request, and a parameter of the test's own)
            continue
        seen.add(name)
        d = defs[name][-1]  # the one that applies here: the closest to the test
        todo += d.argnames
        if d.scope != "function" and not d.func.__module__.startswith(("_pytest", "pytest")):
            index = item.callspec.indices.get(name) if hasattr(item, "callspec") else None
            found.append(f"{d.func.__module__}.{d.func.__qualname__}" + ("" if index is None else f"[{index}]"))
    return sorted(found)


def with_their_fixtures_users(chosen: list[int], shared: list[list[str]]) -> list[int]:
    """``chosen`` (tests' indices), then the other tests that ask for a fixture one of them asks for that outlives a
    test (:func:`shared_fixtures`): a mutant the first reaches may have changed what it built for them."""
    theirs, picked = {f for i in chosen for f in shared[i]}, set(chosen)
    return chosen + [i for i, fixtures in enumerate(shared) if i not in picked and theirs.intersection(fixtures)]


def trace_lines(files: list[str], pytest_args: list[str], out: Path, checkout: Path, backends: str = "numpy") -> dict:
    """Runs the suite once in ``checkout`` under the tracer (in a subprocess), each test on ``backends``, and returns
    its map."""
    tracer = f"mutants.LineTracer({files!r}, {str(out)!r})"
    code = (f"import sys, pytest; sys.path.insert(0, {str(Path(__file__).parent)!r}); import mutants; "
            f"sys.exit(pytest.main(sys.argv[1:], plugins=[{tracer}]))")
    args = [sys.executable, "-c", code, "-p", "no:cacheprovider", "-q", "--backends", backends]
    args += [f"--ignore={f}" for f in IGNORED] + pytest_args
    # PYTHONIOENCODING: pytest's output in UTF-8, read as such here, whatever the locale (Windows: cp1252)
    env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    run = subprocess.run(args, cwd=checkout, env=env, capture_output=True, encoding="utf-8")
    if not out.exists() or run.returncode not in (0, 1):
        sys.exit(f"the traced run did not finish (rc {run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    failed = [t.split(" - ")[0] for t in run.stdout.splitlines() if t.startswith(("FAILED ", "ERROR "))]
    if failed:  # a test that fails only under the tracer (Ctrl-C tests do) still selects its lines; say so
        print(f"{len(failed)} tests failed while traced (check they pass without it):\n  " + "\n  ".join(failed))
    return json.loads(out.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ running the mutants
def copy_checkout(where: Path) -> Path:
    shutil.copytree(ROOT, where, ignore=shutil.ignore_patterns(".git", ".venv", ".whl", ".snap", "__pycache__",
                                                               ".pytest_cache", ".hypothesis", "*.egg-info", "_build"))
    return where


#: pytest's exit codes that say no test ran, whatever the mutant did: 4, a usage error (an option no conftest
#: loaded defines, a test id that is gone), 5, no test collected. Such a mutant is *not run*, never *killed* --
#: unless the mutant broke the tests' loading, which pytest reports with 4 too: the conftest failed to import the
#: mutated package, or a test module (or the conftest's parametrizing of it) raised while being collected, so the
#: tests asked for were not found. The unmutated tests collected (the tracing run), so that one is killed
NOTHING_RAN = {4: "usage error", 5: "no tests collected"}


def broke_loading(output: str) -> str | None:
    """The line of pytest's ``output`` saying the mutant broke the tests' loading (see NOTHING_RAN), or None."""
    if "ImportError while loading conftest" in output:
        return "ImportError while loading conftest"
    for line in output.splitlines():  # a test module that failed to collect: "ERROR tests/test_x.py - ValueError: ..."
        where = line.split(" - ")[0]
        if where.startswith("ERROR ") and where[6:].strip() and "::" not in where:  # (a test's own error has "::")
            return where
    return None


def pytest_command(tests: list[str], backends: str = "numpy") -> list[str]:
    """The command that runs ``tests`` (node ids, traced on ``backends``) against a mutant. ``--backends`` is defined
    by tests/conftest.py, which pytest loads only when a selected test lies under tests/: the doctests of the package
    alone run without it (on the default backend, NumPy), where the option would be a usage error."""
    chosen = ["--backends", backends] if any(t.replace("\\", "/").startswith("tests/") for t in tests) else []
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *chosen,
            "-W", "ignore::pytest.PytestUnraisableExceptionWarning", *tests]


def run_mutant(m: Mutant, tests: list[str], budget: float, checkout: Path, backends: str = "numpy") -> None:
    path = checkout / m.file
    original = path.read_text(encoding="utf-8")
    path.write_text(apply(original, m), encoding="utf-8")
    # PYTHONIOENCODING: pytest's output in UTF-8, read as such here, whatever the locale (Windows: cp1252)
    env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    try:
        run = subprocess.run(pytest_command(tests, backends), cwd=checkout, env=env, capture_output=True,
                             encoding="utf-8", timeout=budget)
        broken = broke_loading(run.stdout + run.stderr)
        if run.returncode in NOTHING_RAN and broken is None:  # no test ran at all, and not for the mutant's sake
            m.status = "not run"
            last = (run.stderr.strip() or run.stdout.strip() or "").splitlines()
            m.by = f"pytest rc {run.returncode} ({NOTHING_RAN[run.returncode]})" + (f": {last[-1]}" if last else "")
            return
        m.status = "survived" if run.returncode == 0 else "killed"
        if run.returncode in NOTHING_RAN:
            m.by = broken
        elif run.returncode != 0:
            failed = [t for t in run.stdout.splitlines() if t.startswith(("FAILED ", "ERROR "))]
            m.by = failed[0].split(" - ")[0] if failed else f"rc {run.returncode}"
    except subprocess.TimeoutExpired:
        m.status = "timeout"
    finally:
        path.write_text(original, encoding="utf-8")


def _paths_and_ranges(args: list[str]) -> tuple[list[str], dict[str, list[tuple[int, int]]]]:
    """The paths of ``FILE`` or ``FILE:FIRST-LAST`` arguments, and each ranged file's line ranges (by its path in the
    checkout): ``git diff -U0 REV -- FILE`` gives the ranges of what changed since REV."""
    paths, ranges = [], {}
    for a in args:
        match = re.fullmatch(r"(.+):(\d+)-(\d+)", a)
        if match is None:
            paths.append(a)
            continue
        path, first, last = match[1], int(match[2]), int(match[3])
        if not Path(path).is_file() or first > last:
            raise SystemExit(f"mutants: {a}: FILE:FIRST-LAST takes a file and FIRST <= LAST")
        paths.append(path)
        ranges.setdefault(str(Path(path).resolve().relative_to(ROOT)), []).append((first, last))
    return paths, ranges


def _key(m: dict) -> tuple:
    """What identifies a mutant across edits elsewhere in its file: the file, its line's text, the change."""
    return m["file"], m["text"].strip(), m["col"], m["old"], m["new"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="files or folders of the package to mutate; FILE:FIRST-LAST "
                        "only the lines FIRST to LAST of FILE (repeat the file for several ranges)")
    parser.add_argument("--workers", type=int, default=2, help="mutants run at once, each in its own copy")
    parser.add_argument("--report", help="write every mutant and what became of it as JSON here")
    parser.add_argument("--lines", help="the map of which tests run which lines: read from this file if it exists "
                        "(the same paths), else traced and written there")
    parser.add_argument("--pytest", default="", help="extra pytest arguments for the tracing run, split as a shell "
                        "splits them (-k 'not build' keeps its words together)")
    parser.add_argument("--c-source", help="also mutate the C code of the module-level strings of this name "
                        "(SOURCE: the CUDA kernels)")
    parser.add_argument("--c-tests", default="tests/test_kernels.py",
                        help="the tests each mutant of the C code runs (default: %(default)s)")
    parser.add_argument("--backends", default="numpy",
                        help="the array backends each test runs on (tests/conftest.py's option; default %(default)s): "
                        "numpy,array_api_strict adds the path a GPU takes, as CI runs it, for code that moves arrays "
                        "between backends (about twice the time; a --lines map must be traced with the same)")
    parser.add_argument("--again", help="run only the mutants that an earlier --report says survived (found by "
                        "their line's text, so the files may have changed since): are they killed now?")
    args = parser.parse_args(argv)
    paths, ranges = _paths_and_ranges(args.paths)
    files = sorted({str(p.resolve().relative_to(ROOT)) for a in paths
                    for p in ([Path(a)] if Path(a).is_file() else Path(a).rglob("*.py"))})

    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        # copies first: the checkout may change while the mutants run
        checkouts = [copy_checkout(Path(tmp) / f"w{i}") for i in range(args.workers)]
        sources = {f: (checkouts[0] / f).read_text(encoding="utf-8") for f in files}
        mutants = [m for f in files for m in mutants_of(checkouts[0] / f, name=f)]
        if args.c_source:
            mutants += [m for f in files for m in c_mutants_of(checkouts[0] / f, args.c_source, name=f)]
        mutants = [m for m in mutants if m.file not in ranges or any(a <= m.line <= b for a, b in ranges[m.file])]
        if args.again:
            report = [m for m in json.loads(Path(args.again).read_text(encoding="utf-8")) if m["status"] != "killed"]
            earlier = {_key(m) for m in report}
            if not args.c_source and any(m.get("language") == "c" for m in report):
                print("the report has mutants of C code not killed: add --c-source to run them too", flush=True)
            mutants = [m for m in mutants if _key(asdict(m)) in earlier]
        print(f"{len(mutants)} mutants in {len(files)} files", flush=True)
        saved = Path(args.lines or Path(tmp) / "lines.json")
        line_map = (json.loads(saved.read_text(encoding="utf-8")) if saved.exists()
                    else trace_lines(files, shlex.split(args.pytest), saved, checkouts[0], args.backends))
        tests = line_map["tests"]
        print(f"traced {len(tests)} tests", flush=True)
        c_time = sum(seconds for test, seconds in tests if test.startswith(tuple(args.c_tests.split())))
        c_budget = 60 + 5 * c_time if c_time else C_BUDGET
        free, done = list(checkouts), []

        def one(m: Mutant):
            if m.language == "c":  # C code: no tracer sees it run
                selected, budget = args.c_tests.split(), c_budget
            else:
                chosen = sorted({i for line in range(m.lines[0], m.lines[1] + 1)
                                 for i in line_map["lines"].get(m.file, {}).get(str(line), [])},
                                key=lambda i: (tests[i][1], i))  # the quickest first
                if "shared" in line_map:  # (a map traced before it was kept: the tests that reached the line)
                    chosen = with_their_fixtures_users(chosen, line_map["shared"])
                selected, budget = [tests[i][0] for i in chosen], 60 + 5 * sum(tests[i][1] for i in chosen)
            m.tests = len(selected)
            if selected:
                checkout = free.pop()
                try:
                    run_mutant(m, selected, budget, checkout, args.backends)
                finally:
                    free.append(checkout)
            done.append(m)
            if m.status in ("survived", "timeout"):
                print(f"[{m.status}] " + m.describe(sources[m.file].splitlines()), flush=True)
            elif m.status == "not run" and m.tests:  # tests were selected, yet pytest ran none of them
                print(f"[not run: {m.by}] " + m.describe(sources[m.file].splitlines()), flush=True)
            if len(done) % 100 == 0:
                print(f"... {len(done)} of {len(mutants)} done", flush=True)

        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(one, mutants))

    counts = {s: sum(m.status == s for m in mutants) for s in ("killed", "survived", "timeout", "not run")}
    print(" ".join(f"{k}: {v}" for k, v in counts.items()))
    if unrun := sum(m.status == "not run" and m.tests > 0 for m in mutants):
        print(f"({unrun} of those not run had tests selected that pytest did not run: see [not run: ...] above)")
    if args.report:
        Path(args.report).write_text(json.dumps([asdict(m) for m in mutants], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
