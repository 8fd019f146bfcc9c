"""tools/mutants.py: the mutants it makes of a small file (running them takes the whole suite: see the tool)."""

from __future__ import annotations

import importlib.util
import json
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
    path.write_text(SOURCE, encoding="utf-8")
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
    if (!(x[0] > 0)) y[0] = (T)0.0;
}
"""
OTHER = "a + 1"  # another string: left alone
'''


def test_the_mutants_of_the_c_code_in_a_string(tmp_path, monkeypatch):
    tool = _tool(monkeypatch)
    path = tmp_path / "kernels.py"
    path.write_text(C_MODULE, encoding="utf-8")
    made = [(m.line, m.old, m.new, m.language) for m in tool.c_mutants_of(path, "SOURCE")]
    assert made == [  # the pointer stars of T* stay; so do ++, [], casts and names
        (5, "<", "<=", "c"), (5, "&&", "||", "c"), (5, "!", "", "c"), (5, "+=", "-=", "c"), (5, "*", "/", "c"),
        (5, "+", "-", "c"), (5, "0.5", "1.0", "c"), (5, "+", "-", "c"), (5, "7ULL", "8ULL", "c"), (5, "*", "/", "c"),
        (6, "!", "", "c"), (6, "0", "1", "c"), (6, ">", ">=", "c"), (6, "0", "1", "c"), (6, "0", "1", "c"),
        (6, "0.0", "1.0", "c"),  # a zero doubled is zero: it becomes 1.0
    ]  # (not the hexadecimal number)
    for m in tool.c_mutants_of(path, "SOURCE"):
        changed = tool.apply(C_MODULE, m)
        assert sum(a != b for a, b in zip(changed.splitlines(), C_MODULE.splitlines())) == 1
    assert tool.mutants_of(path) == []  # no Python inside a function: nothing for the Python mutants


PROJECT = {
    "small.py": '''SOURCE = r"""
T twice(T x) { return x * 2; }
"""


def add(a, b):
    return a + b


def small_enough(x):
    return x <= 3


def unused(x):
    return -x


def halve(x):
    return x / 2
''',
    "conftest.py": '''def pytest_addoption(parser):
    parser.addoption("--backends")  # the option the tool passes, as the project's conftest has it
''',
    "tests/test_small.py": '''from small import add, small_enough


def test_add():
    assert add(2, 3) == 5


def test_small_enough():
    assert small_enough(1) and not small_enough(5)  # (not at 3 or 4: <= for <, or 4 for 3, is missed)
''',
    "tests/test_thread.py": '''import threading

from small import halve


def test_halve_in_a_thread():
    halves = []
    thread = threading.Thread(target=lambda: halves.append(halve(4)))
    thread.start()
    thread.join()
    assert halves == [2]
''',
    "tests/test_source.py": '''import small


def test_source_doubles():
    assert "x * 2" in small.SOURCE
''',
}


def test_the_tool_runs_each_mutant_against_the_tests_that_reach_it(tmp_path, monkeypatch, capsys):
    tool = _tool(monkeypatch)
    for name, text in PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(tool, "ROOT", tmp_path)  # the checkout it copies and mutates
    report, lines = tmp_path / "report.json", tmp_path / "lines.json"
    assert tool.main([str(tmp_path / "small.py"), "--workers", "1", "--report", str(report), "--lines", str(lines),
                      "--c-source", "SOURCE", "--c-tests", "tests/test_source.py"]) == 0
    fields = ("line", "old", "new", "status", "tests", "language")
    made = [tuple(m[k] for k in fields) for m in json.loads(report.read_text(encoding="utf-8"))]
    source = PROJECT["small.py"].splitlines()
    assert all(m["text"] == source[m["line"] - 1]  # (how --again finds it)
               for m in json.loads(report.read_text(encoding="utf-8")))
    assert made == [
        (7, "+", "-", "killed", 1, "python"),  # only test_add runs add
        (11, "<=", "<", "survived", 1, "python"), (11, "3", "4", "survived", 1, "python"),  # no test at 3 or 4
        (15, "-", "", "not run", 0, "python"),  # no test runs unused
        (19, "/", "*", "killed", 1, "python"), (19, "2", "3", "killed", 1, "python"),  # run in a thread of a test
        (2, "*", "/", "killed", 1, "c"), (2, "2", "3", "killed", 1, "c"),  # the C code, by --c-tests
    ]
    out = capsys.readouterr().out
    assert "[survived] small.py:11: `<=` -> `<`" in out and "killed: 5 survived: 2 timeout: 0 not run: 1" in out
    assert (tmp_path / "small.py").read_text(encoding="utf-8") == PROJECT["small.py"]  # mutated in copies only
    # again, after a test at the boundary: only what was not killed runs, from the saved map of lines
    boundary = "    assert small_enough(3) and not small_enough(4)\n"
    (tmp_path / "tests" / "test_small.py").write_text(PROJECT["tests/test_small.py"] + boundary, encoding="utf-8")
    assert tool.main([str(tmp_path / "small.py"), "--workers", "1", "--again", str(report), "--lines", str(lines)]) == 0
    out = capsys.readouterr().out
    assert "3 mutants in 1 files" in out and "killed: 2 survived: 0 timeout: 0 not run: 1" in out
    # only some lines: FILE:FIRST-LAST, twice for two ranges
    ranged = tmp_path / "ranged.json"
    assert tool.main([f"{tmp_path / 'small.py'}:7-7", f"{tmp_path / 'small.py'}:15-15", "--workers", "1",
                      "--lines", str(lines), "--report", str(ranged)]) == 0
    assert [(m["line"], m["status"]) for m in json.loads(ranged.read_text(encoding="utf-8"))] == [
        (7, "killed"), (15, "not run")]
    with pytest.raises(SystemExit, match="FIRST <= LAST"):
        tool.main([f"{tmp_path / 'small.py'}:9-8"])
    # --pytest's words split as a shell splits them: a -k expression in quotes is one argument
    picked = tmp_path / "picked.json"
    assert tool.main([f"{tmp_path / 'small.py'}:7-7", "--workers", "1", "--report", str(picked),
                      "--pytest", "-k 'not add and not halve'"]) == 0  # test_add, which runs add, is left out
    assert [(m["line"], m["status"], m["tests"]) for m in json.loads(picked.read_text(encoding="utf-8"))] == [
        (7, "not run", 0)]


CACHED = {
    "cache.py": '''def build(n):
    return [n] * 2
''',
    "conftest.py": PROJECT["conftest.py"],
    "tests/test_cache.py": '''import pytest

from cache import build


@pytest.fixture(autouse=True, scope="module")
def quiet():  # every test of the module has it: no reason to run them all
    yield


@pytest.fixture(scope="module")
def built():  # what a test builds, the later ones read: as tests/test_assignments.py's copies
    made = {}

    def of(n):
        if n not in made:
            made[n] = build(n)
        return made[n]

    return of


@pytest.fixture
def three(built):
    return built(3)


def test_builds(built):
    assert built(3)  # builds it, and does not look at it


def test_reads(three):
    assert three == [3, 3]  # reads what test_builds built


def test_other():
    assert build(1)
''',
}


def test_a_mutant_runs_the_tests_that_share_a_fixture_with_those_that_reach_it(tmp_path, monkeypatch, capsys):
    # build's line runs in test_builds and test_other only: test_reads reads the list test_builds built, through a
    # fixture that outlives a test. It was not run, and the mutant survived
    tool = _tool(monkeypatch)
    for name, text in CACHED.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    report, lines = tmp_path / "report.json", tmp_path / "lines.json"
    run = [str(tmp_path / "cache.py"), "--workers", "1", "--report", str(report), "--lines", str(lines)]
    assert tool.main(run) == 0
    traced = json.loads(lines.read_text(encoding="utf-8"))
    tests = [t.split("::")[1] for t, _ in traced["tests"]]
    assert tests == ["test_builds", "test_reads", "test_other"] and traced["lines"]["cache.py"]["2"] == [0, 2]
    assert traced["shared"] == [["test_cache.built"], ["test_cache.built"], []]  # not quiet: autouse
    made = {m["new"]: (m["status"], m["tests"], m["by"]) for m in json.loads(report.read_text(encoding="utf-8"))}
    assert made["3"] == ("killed", 3, "FAILED tests/test_cache.py::test_reads")  # test_other's [1, 1, 1] passes
    # a map traced before the fixtures were kept runs the tests that reached the line, as then
    del traced["shared"]
    lines.write_text(json.dumps(traced), encoding="utf-8")
    assert tool.main(run) == 0
    made = {m["new"]: (m["status"], m["tests"]) for m in json.loads(report.read_text(encoding="utf-8"))}
    assert made == {"/": ("killed", 2), "3": ("survived", 2)}


DOCTESTED = {  # as the project is laid out: --backends defined by tests/conftest.py, doctests in the package
    "pytest.ini": "[pytest]\ntestpaths = tests pkg\naddopts = --doctest-modules\n",
    "pkg/__init__.py": "",
    "pkg/maths.py": '''def double(x):
    """Twice x.

    >>> double(3)
    6
    """
    return 2 * x


def triple(x):
    """Three times x (the example does not look at the result).

    >>> _ = triple(1)
    """
    return 3 * x
''',
    "tests/conftest.py": '''def pytest_addoption(parser):
    parser.addoption("--backends")
''',
    "tests/test_nothing.py": '''def test_nothing():
    pass
''',
}


def test_a_mutant_only_doctests_reach_runs_them_and_a_mutant_no_test_ran_is_not_killed(tmp_path, monkeypatch,
                                                                                        capsys):
    # the doctests alone were run with --backends, which only tests/conftest.py defines: pytest exited 4 (a usage
    # error) before any test ran, and the tool counted every such mutant as killed
    tool = _tool(monkeypatch)
    for name, text in DOCTESTED.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    report = tmp_path / "report.json"
    assert tool.main([str(tmp_path / "pkg" / "maths.py"), "--workers", "1", "--report", str(report)]) == 0
    rows = json.loads(report.read_text(encoding="utf-8"))
    made = {(m["line"], m["old"], m["new"]): (m["status"], m["by"]) for m in rows}
    assert made == {
        (7, "2", "3"): ("killed", "FAILED pkg/maths.py::pkg.maths.double"),  # its doctest ran and failed
        (7, "*", "/"): ("killed", "FAILED pkg/maths.py::pkg.maths.double"),
        (15, "3", "4"): ("survived", ""), (15, "*", "/"): ("survived", ""),  # its doctest ran and passed
    }
    assert "killed: 2 survived: 2 timeout: 0 not run: 0" in capsys.readouterr().out
    # no --backends where no test under tests/ is selected; with one, the option is passed
    assert "--backends" not in tool.pytest_command(["pkg/maths.py::pkg.maths.double"])
    command = tool.pytest_command(["pkg/maths.py::pkg.maths.double", "tests/test_nothing.py"])
    assert command[command.index("--backends") + 1] == "numpy"  # by default, NumPy alone
    command = tool.pytest_command(["tests/test_nothing.py"], "numpy,array_api_strict")
    assert command[command.index("--backends") + 1] == "numpy,array_api_strict"
    # a test that is gone (pytest exits 4) and no test at all (5): not run, and said why
    m = tool.mutants_of(tmp_path / "pkg" / "maths.py", name="pkg/maths.py")[0]
    for rc, tests in {4: ["tests/test_gone.py::test_gone"], 5: ["tests/test_nothing.py", "-k", "xyz"]}.items():
        tool.run_mutant(m, tests, 60, tmp_path)
        assert (m.status, m.by.split(":")[0]) == ("not run", f"pytest rc {rc} ({tool.NOTHING_RAN[rc]})"), m.by
    assert (tmp_path / "pkg" / "maths.py").read_text(encoding="utf-8") == DOCTESTED["pkg/maths.py"]
    # a mutant that breaks the package where the conftest imports it: pytest exits 4 as well, and that is a kill
    (tmp_path / "tests" / "conftest.py").write_text(DOCTESTED["tests/conftest.py"] + "import pkg.maths\n"
                                                    "assert pkg.maths.double(3) == 6\n", encoding="utf-8")
    m = next(m for m in tool.mutants_of(tmp_path / "pkg" / "maths.py", name="pkg/maths.py") if m.new == "3")
    tool.run_mutant(m, ["tests/test_nothing.py"], 60, tmp_path)
    assert m.status == "killed", m.by
    # one that breaks the collecting of the test asked for, where the conftest parametrizes it (as the project's
    # does over the backends): its id is not found and pytest exits 4 (a module failing at import exits 2) -- a kill
    (tmp_path / "tests" / "conftest.py").write_text(DOCTESTED["tests/conftest.py"] + """import pkg.maths


def pytest_generate_tests(metafunc):  # raises under the mutant, as the project's does where backend.get() raises
    if "six" in metafunc.fixturenames:
        if pkg.maths.double(3) != 6:
            raise ValueError("double(3) is not 6")
        metafunc.parametrize("six", [6])
""", encoding="utf-8")
    (tmp_path / "tests" / "test_uses.py").write_text("def test_uses(six):\n    assert six == 6\n", encoding="utf-8")
    tool.run_mutant(m, ["tests/test_uses.py::test_uses[6]"], 60, tmp_path)
    assert (m.status, m.by) == ("killed", "ERROR tests/test_uses.py")
    m = next(m for m in tool.mutants_of(tmp_path / "pkg" / "maths.py", name="pkg/maths.py") if m.line == 15)
    tool.run_mutant(m, ["tests/test_uses.py::test_uses[6]"], 60, tmp_path)  # triple is not called there: it runs
    assert (m.status, m.by) == ("survived", "")
    assert tool.broke_loading("ERROR tests/test_x.py::test_y - AssertionError") is None  # a test's error, not loading
