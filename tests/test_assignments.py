"""The assignment kits: markers stripped right, student copies that import and fail where they should,
grades of 0 for a fresh copy and full points for the solution, notebooks that run to their first exercise.

The slow tests build each kit and grade it in a subprocess, once per assignment, running the graded
tests of every assignment in that one run (see ``_graded``)."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from minitransformer import cuda_emulator
from minitransformer.assignments import ASSIGNMENTS, build, get, grade, handout, strip_notebook, strip_source
from minitransformer.assignments.grade import (
    GXX_INSTALL,
    TORCH_INSTALL,
    Grade,
    TestResult,
    _score,
    format_table,
    graded_test_files,
    pythonpath,
    reason,
)
from minitransformer.assignments.handout import (
    ASSIGNMENT,
    ELSEWHERE,
    included,
    left_out_of_copies,
    missing_paths,
    plain_markdown,
    points_of,
)
from minitransformer.assignments.strip import LEFT_OUT, PACKAGE_CHECK, regions

pytestmark = pytest.mark.single_backend  # the kits are files; grading runs its own pytest, on NumPy

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = [a.number for a in ASSIGNMENTS]

MARKED = '''def f(x):
    """Docstring stays."""
    y = 2 * x
    ### BEGIN SOLUTION A2: return y squared, "quoted" too
    z = y * y
    return z
    ### END SOLUTION


def g(x):
    ### BEGIN SOLUTION A3: the other one
    return x
    ### END SOLUTION
'''


# ------------------------------------------------------------------ stripping
def test_the_assignments_body_becomes_a_stub_with_its_hint():
    text, n = strip_source(MARKED, 2)
    assert n == 1
    assert '    # YOUR CODE HERE\n    raise NotImplementedError("A2: return y squared, \\"quoted\\" too")\n' in text
    assert "z = y * y" not in text and "SOLUTION" not in text
    assert "    return x\n" in text  # A3's body is kept
    namespace: dict = {}
    exec(compile(text, "<stripped>", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r'^A2: return y squared, "quoted" too$'):
        namespace["f"](3)
    assert namespace["g"](3) == 3
    # a file that ends on its END marker, without a newline, ends on the stub without one; with one, with one
    assert strip_source(MARKED.rstrip("\n"), 3)[0].endswith('raise NotImplementedError("A3: the other one")')
    assert strip_source(MARKED, 3)[0].endswith('raise NotImplementedError("A3: the other one")\n')


CUDA = """__device__ T block_sum(T v, T* s) {
    T total = v;
    // BEGIN SOLUTION A7: block_sum: the "sum"
    total = v + v;
    // END SOLUTION
    return total;
}
"""


def test_a_cuda_body_becomes_a_call_that_fails_at_run_time_with_its_hint():
    """A body of C++ (marked with //) becomes not_implemented("A7: hint"), a C++ string literal; kept elsewhere."""
    text, n = strip_source(CUDA, 7)
    assert n == 1 and "SOLUTION" not in text and "v + v" not in text
    assert ('    T total = v;\n    // YOUR CODE HERE\n    not_implemented("A7: block_sum: the \\"sum\\"");\n'
            '    return total;\n') in text
    for number in (None, 2):
        kept, _ = strip_source(CUDA, number)
        assert "    total = v + v;\n" in kept and "SOLUTION" not in kept
    assert [r.comment for r in regions(MARKED + CUDA)] == ["###", "###", "//"]


def test_other_assignments_and_the_solution_keep_every_body():
    for number in (None, 1, 4):
        text, _ = strip_source(MARKED, number)
        assert "z = y * y" in text and "return x" in text and "SOLUTION" not in text
        namespace: dict = {}
        exec(compile(text, "<kept>", "exec"), namespace)
        assert namespace["f"](3) == 36
    assert strip_source(MARKED, None)[1] == 2  # the solution counts every region


@pytest.mark.parametrize("text, message", [
    ("    ### BEGIN SOLUTION A2: a\n    ### BEGIN SOLUTION A2: b\n",
     r"<source>:2: ### BEGIN SOLUTION inside the region opened at line 1"),
    ("    ### END SOLUTION\n", r"<source>:1: ### END SOLUTION without a ### BEGIN SOLUTION before it"),
    ("    ### BEGIN SOLUTION A2: a\n    x = 1\n",
     r"<source>:1: ### BEGIN SOLUTION A2 is never closed by ### END SOLUTION"),
    ("    ### BEGIN SOLUTION\n", r"<source>:1: a solution marker must read '### BEGIN SOLUTION A<N>: <hint>'"),
    ("    ### BEGIN SOLUTION A9: a\n    ### END SOLUTION\n", r"there is no assignment 9"),
    ("    ### BEGIN SOLUTION A2: a\n    ### END SOLUTION now\n", r"<source>:2: an end marker must be the line"),
    ("    // BEGIN SOLUTION A7: a\n    ### END SOLUTION\n",
     r"<source>:2: ### END SOLUTION closes the region opened at line 1 by '// BEGIN SOLUTION'"),
    ("    // BEGIN SOLUTION A7: a\n", r"<source>:1: // BEGIN SOLUTION A7 is never closed by // END SOLUTION"),
])
def test_malformed_markers_are_refused_with_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        strip_source(text, 2)


def test_a_notebook_loses_the_outputs_from_its_first_stub_on():
    cells = [
        {"cell_type": "code", "source": "x = 1\n", "outputs": [{"output_type": "stream"}], "execution_count": 1},
        {"cell_type": "markdown", "source": "### BEGIN SOLUTION A2: markdown is never stripped\n"},
        {"cell_type": "code", "source": ["### BEGIN SOLUTION A2: set y\n", "y = 2\n", "### END SOLUTION\n"],
         "outputs": [{"output_type": "stream"}], "execution_count": 2, "metadata": NBGRADER},
        {"cell_type": "code", "source": "x + y\n", "outputs": [{"output_type": "execute_result"}],
         "execution_count": 3, "metadata": {"nbgrader": {"grade": True}, "tags": ["kept"]}},
    ]
    stripped, n = strip_notebook({"cells": cells}, 2)
    assert n == 1
    assert [len(c.get("outputs", [])) for c in stripped["cells"]] == [1, 0, 0, 0]
    # a source keeps its form: a list of lines (as Jupyter saves it) stays one, a string stays a string
    assert stripped["cells"][2]["source"] == ["# YOUR CODE HERE\n", 'raise NotImplementedError("A2: set y")\n']
    assert stripped["cells"][0]["source"] == "x = 1\n"
    assert cells[2]["outputs"] and "nbgrader" in cells[2]["metadata"], "the input notebook is not modified"
    kept, _ = strip_notebook({"cells": cells}, 3)
    assert kept["cells"][2]["source"] == ["y = 2\n"] and kept["cells"][2]["outputs"]
    # a cell whose markers are gone, stub or kept body, is no longer nbgrader's solution cell (nbgrader would
    # replace the whole of it); the metadata of a cell that had no markers stays
    for notebook in (stripped, kept, strip_notebook({"cells": cells}, None)[0]):
        assert notebook["cells"][2]["metadata"] == {"tags": ["x"]}
        assert notebook["cells"][3]["metadata"] == cells[3]["metadata"]


NBGRADER = {"nbgrader": {"grade": False, "grade_id": "a2-y", "locked": False, "schema_version": 3, "solution": True},
            "tags": ["x"]}


# ------------------------------------------------------------------ the catalogue and the marks
def test_every_assignment_has_tests_worth_100_points():
    marks = points_of(ROOT / "tests")
    assert sorted(marks) == NUMBERS
    for number, tests in marks.items():
        assert sum(tests.values()) == 100, f"A{number}: {tests}"


def test_points_are_read_from_a_mark_by_position_or_by_name(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n\n@pytest.mark.assignment(2, points=7)\ndef test_a():\n    pass\n\n\n"
        "@pytest.mark.assignment(2, 3)\n@pytest.mark.parametrize('k', [1, 2])\ndef test_b(k):\n    pass\n\n\n"
        "@pytest.mark.assignment(number=2)\ndef test_c():\n    pass\n\n\n"
        "@pytest.mark.assignment(3, points=90)\ndef test_d():\n    pass\n", encoding="utf-8")
    assert points_of(tmp_path) == {2: {"tests/test_x.py::test_a": 7, "tests/test_x.py::test_b": 3,
                                       "tests/test_x.py::test_c": 1}, 3: {"tests/test_x.py::test_d": 90}}
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n\n@pytest.mark.assignment(2, point=7)\ndef test_e():\n    pass\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tests/test_x.py::test_e: its assignment marker: .*point"):
        points_of(tmp_path)  # a misspelt keyword is named with its test, not a bare TypeError


def test_building_a_copy_without_pytest_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pytest", None)  # import pytest now fails, as where it is not installed
    monkeypatch.delitem(sys.modules, "minitransformer.assignments.plugin", raising=False)
    (tmp_path / "test_x.py").write_text("", encoding="utf-8")
    with pytest.raises(ModuleNotFoundError, match=r'needs pytest: pip install -e "\.\[dev\]"'):
        points_of(tmp_path)


def test_every_marked_file_belongs_to_its_assignment_and_each_body_to_one():
    found: dict[str, set[int]] = {}
    for path in (ROOT / "minitransformer").rglob("*.py"):
        if "assignments" in path.parts:
            continue
        for number in NUMBERS:
            if strip_source(path.read_text(encoding="utf-8"), number, where=str(path))[1]:
                found.setdefault(path.relative_to(ROOT / "minitransformer").as_posix(), set()).add(number)
    for a in ASSIGNMENTS:
        assert {f for f, ns in found.items() if a.number in ns} == set(a.files), a.tag


def test_get_accepts_a_number_or_a_tag():
    assert get(3) is get("3") is get("A3")
    with pytest.raises(ValueError, match="there is no assignment 0"):
        get(0)


# ------------------------------------------------------------------ building
def test_build_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "kept.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        build(1, tmp_path)
    assert (tmp_path / "kept.txt").read_text(encoding="utf-8") == "mine"


def test_build_into_a_file_or_nowhere_is_one_line_naming_the_path(tmp_path, capsys):
    """A file as OUT gave a traceback ending in NotADirectoryError; a path the system refuses "[Errno 2] ..."."""
    from minitransformer.cli import main

    afile = tmp_path / "notes.txt"
    afile.write_text("mine", encoding="utf-8")
    assert main(["assignments", "build", "1", str(afile)]) == 2
    assert capsys.readouterr().err == f"minitransformer assignments: {afile}: Not a directory\n"
    assert afile.read_text(encoding="utf-8") == "mine"


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """``copies(number)``: ``(copy, stubs)``, assignment ``number``'s student copy, built once in this module for the
    tests that only read it."""
    built: dict[int, tuple[Path, dict]] = {}

    def copy_of(number):
        if number not in built:
            copy = tmp_path_factory.mktemp(f"a{number}") / "copy"
            built[number] = copy, build(number, copy)
        return built[number]

    return copy_of


@pytest.fixture(params=NUMBERS)
def student(request, copies):
    """``(number, copy, stubs)``: each assignment's student copy."""
    return request.param, *copies(request.param)


def test_a_student_copy_is_valid_python_with_stubs_only_for_its_assignment(student):
    number, copy, stubs = student
    assert (copy / "tests" / "conftest.py").is_file() and (copy / "setup.cfg").is_file()
    assert (copy / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()  # MIT: the notice goes with copies
    kept = get(number).keeps  # A7's copy holds the CUDA kernels, its exercise, and their tests
    assert all((ROOT / path).is_file() and (copy / path).exists() == (path in kept) for path in LEFT_OUT)
    assert not (copy / "tools").exists() and not (copy / "docs" / "assignments.md").exists()
    assert not (copy / "docs" / "api").exists() and not (copy / "docs" / "conf.py").exists()
    # the emulation of CUDA (no solution in it) is in every copy: A7's grading runs on it, notebook 12 too
    assert all((copy / path).is_file() for path in ("minitransformer/cuda_emulator.py", "tests/test_cuda_emulator.py"))
    readme = (copy / "README.md").read_text(encoding="utf-8").splitlines()  # says so, and what to do, under its title
    assert readme[0] == "# minitransformer" and readme[2].startswith(f"> **A copy for assignment A{number}, ")
    assert f"assignments grade {number} ." in readme[2] and f"[{ASSIGNMENT}]({ASSIGNMENT})" in readme[2]
    # nothing to clone, the demo waits for the bodies, the site and the notebooks' builder are the repository's
    assert "git clone" not in "\n".join(readme) and "once the assignment's bodies are written" in "\n".join(readme)
    assert "the Sphinx site (in the course's repository" in "\n".join(readme)
    assert "make_notebooks.py 05" not in (copy / "notebooks" / "README.md").read_text(encoding="utf-8")
    for path in (copy / "minitransformer").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        ast.parse(text, filename=str(path))  # no syntax error anywhere
        if "assignments" in path.parts:  # the kit's own code and docstrings, which show the markers
            continue
        assert "SOLUTION" not in text, path
        stubbed = f'raise NotImplementedError("A{number}: ' in text or f'not_implemented("A{number}: ' in text
        assert stubbed == (path.relative_to(copy).as_posix() in stubs)
    assert sum(stubs.values()) >= 3
    for nb in (copy / "notebooks").glob("*.ipynb"):
        data = json.loads(nb.read_text(encoding="utf-8"))
        sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in data["cells"]]
        assert not any("### BEGIN SOLUTION" in s for s in sources), nb.name


def _bodies_of(number) -> list[tuple[str, list[str]]]:
    """(where, lines stripped of their indent and of blank lines) of each body of assignment ``number`` in the
    package and the notebooks of the repository."""
    found = []
    sources = [(p, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "minitransformer").rglob("*.py"))
               if "assignments" not in p.parts]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        sources += [(nb, "".join(c["source"])) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]
                    if c["cell_type"] == "code"]
    for path, text in sources:
        lines = text.splitlines()
        for r in regions(text):
            if r.number == number:
                found.append((f"{path.relative_to(ROOT)}:{r.begin}",
                              [line.strip() for line in lines[r.begin:r.end - 1] if line.strip()]))
    return found


def _texts(copy: Path):
    """(file, its lines stripped of their indent and of blank lines) of every text in the copy: each file; of a
    notebook, each cell's source and outputs."""
    for path in sorted(p for p in copy.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # (a picture)
            continue
        parts = [text]
        if path.suffix == ".ipynb":
            cells = json.loads(text)["cells"]
            parts = ["".join(c["source"]) for c in cells] + [
                "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                for c in cells for o in c.get("outputs", [])]
        for part in parts:
            yield path.relative_to(copy).as_posix(), [line.strip() for line in part.splitlines() if line.strip()]


_COMMENT = re.compile(r"\s+(#|//) .*$")  # a comment after the code on its line


def _code(line: str) -> str:
    """A line as code: its comment after the code dropped, its runs of spaces made one."""
    return " ".join(_COMMENT.sub("", line).split())


def _holds(lines: list[str], body: list[str]) -> bool:
    """Whether ``lines`` hold ``body``, or two lines in a row of it (comments and spacing aside) of 30 characters
    or more each, more than a declaration or a barrier: a body rewritten around them (a counter after each barrier,
    another return) still gives it away."""
    lines, body = [_code(line) for line in lines], [_code(line) for line in body]
    if any(lines[i:i + len(body)] == body for i in range(len(lines) - len(body) + 1)):
        return True
    pairs = {(a, b) for a, b in zip(body, body[1:]) if min(len(a), len(b)) >= 30}
    return any(pair in pairs for pair in zip(lines, lines[1:]))


def test_no_file_of_a_copy_holds_a_body_of_its_assignment(student):
    """Not the package, the notebooks (their outputs too), nor the pages of docs/ (whose code is included from the
    package: a page of the repository shows every body) nor ASSIGNMENT.md."""
    number, copy, _ = student
    bodies = _bodies_of(number)
    assert len(bodies) >= 3
    texts = list(_texts(copy))
    assert any(name == "docs/formulas/softmax.md" for name, _ in texts)
    shown = [(where, name) for where, body in bodies for name, lines in texts if _holds(lines, body)]
    assert not shown, f"A{number}'s bodies in its copy: {shown}"
    # as the repository's pages would show them: this test sees a body a page shows
    page = [line.strip() for line in (ROOT / "minitransformer/functional/attention.py").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    assert any(_holds(page, body) for _, body in _bodies_of(2))


def test_a_copys_pages_are_plain_markdown_with_the_code_as_the_copy_holds_it(student):
    number, copy, stubs = student
    pages = sorted((copy / "docs").rglob("*.md"))
    assert {p.relative_to(copy / "docs").as_posix() for p in pages} >= {"formulas/index.md", "formulas/softmax.md",
                                                                        "glossary.md", "errata.md", "backend.md"}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"```\{|\{(doc|func|class|mod|meth|data|math)\}`|<!--", text), page
        assert not re.search(r"^\s*(###|//) (BEGIN|END) SOLUTION", text, re.MULTILINE), page  # (a marker of code)
    softmax = (copy / "docs/formulas/softmax.md").read_text(encoding="utf-8")
    code = "minitransformer/functional/activations.py"
    assert f"From [`{code}`](../../{code}), as this copy was handed out:\n\n```python\n" in softmax
    assert ("NotImplementedError(\"A2: softmax from primitives" in softmax) == (number == 2)
    index = (copy / "docs/formulas/index.md").read_text(encoding="utf-8")
    assert "- [Softmax and its Jacobian-vector product](softmax.md)" in index  # its toctree, with the pages' titles


def _links_of(copy: Path):
    """(file, text) of the README, ASSIGNMENT.md, the pages and each Markdown cell of the notebooks."""
    for path in [copy / "README.md", copy / ASSIGNMENT, *sorted(copy.glob("docs/**/*.md")),
                 *sorted(copy.glob("notebooks/*.md"))]:
        yield path.relative_to(copy).as_posix(), path.read_text(encoding="utf-8")
    for nb in sorted(copy.glob("notebooks/*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                yield nb.relative_to(copy).as_posix(), "".join(cell["source"])


def test_a_copys_links_lead_to_its_files_or_say_they_are_in_the_course_repository(student):
    number, copy, _ = student
    missing = [(name, path) for name, text in _links_of(copy) for path in missing_paths(text, name, copy)]
    assert not missing
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert f"`docs/assignments.md`, {ELSEWHERE})" in readme  # the instructors' page, linked from the README
    assert "[The formulas](docs/formulas/index.md)" in readme
    # what is true of the repository only is left out (the copy's pages are no site's sources)
    assert "They read here as Markdown" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "They read here as Markdown" not in readme and "<!--" not in readme
    # and the check sees a link to a file the copy lacks, from the folder of the file that has it
    assert missing_paths("[a](../docs/formulas/softmax.md) [b](../docs/nowhere.md)", "notebooks/x.ipynb", copy) == [
        "../docs/nowhere.md"]


def test_assignment_md_says_what_to_write_where_the_points_and_how_to_check(student):
    number, copy, stubs = student
    a = get(number)
    page = (copy / ASSIGNMENT).read_text(encoding="utf-8")
    assert page.startswith(f"# A{number}: {a.title}\n")
    assert f"copy of minitransformer for assignment A{number} (`minitransformer assignments build {number}`)" in page
    assert f"with the {handout.bodies_and_exercises(a.tag, stubs)} taken out." in page  # not the solution's "kept"
    assert "runs ungraded tests" in page and "Only the graded cases" in page  # what fails and does not count
    # every stub of the package, at its line, with its function and hint
    rows = re.findall(r"^\| \d+ \| \[`([^`]+):(\d+)`\]\([^)]+\) \| `([\w.]+)` \| (.*) \|$", page, re.MULTILINE)
    stubbed = [(rel, i + 1) for rel in stubs if not rel.endswith(".ipynb") for i, line in
               enumerate((copy / rel).read_text(encoding="utf-8").splitlines()) if line.strip() in (
                   "# YOUR CODE HERE", "// YOUR CODE HERE")]
    assert sorted((rel, int(line)) for rel, line, _, _ in rows) == sorted(stubbed)
    assert sum(stubs[rel] for rel in stubs if not rel.endswith(".ipynb")) == len(rows)
    # where the text says to start with some (A1: Add, Mul and Sum), they come first, and the rest as listed
    assert [name for _, _, name, _ in rows[:len(a.first)]] == list(a.first) and (number != 1 or a.first)
    # the notebooks' exercises, each by its cell (from 0; a cell may hold two) and its hint
    exercises = re.findall(r"^- \[`(notebooks/[\w.]+)`\]\(\1\) cell (\d+): (.*)$", page, re.MULTILINE)
    cells = {rel: json.loads((copy / rel).read_text(encoding="utf-8"))["cells"] for rel in stubs
             if rel.endswith(".ipynb")}
    assert sorted((rel, int(k)) for rel, k, _ in exercises) == sorted(
        (rel, k) for rel in cells for k, cell in enumerate(cells[rel])
        for line in "".join(cell["source"]).splitlines() if line.strip() == "# YOUR CODE HERE")
    assert len(exercises) == sum(n for rel, n in stubs.items() if rel in cells)
    assert all(hint.replace("\\|", "|") in "".join(cells[rel][int(k)]["source"]) for rel, k, hint in exercises)
    assert ("The notebooks' exercises" in page) == bool(exercises) == any(n for rel, n in stubs.items() if rel in cells)
    rest = [(rel, int(line)) for rel, line, name, _ in rows[len(a.first):]]
    assert rest == sorted(rest, key=lambda r: (a.paths.index(r[0]), r[1])), rest
    for rel, line, name, hint in rows:
        assert "said above" not in hint, (rel, line)  # "above" in ASSIGNMENT.md's table is its text: say which
        following = (copy / rel).read_text(encoding="utf-8").splitlines()[int(line)]
        assert hint.replace("\\|", "|") in json.loads(following.split("(", 1)[1].rsplit(")", 1)[0]), (rel, line)
        assert name.split(".")[-1] in "".join((copy / rel).read_text(encoding="utf-8").splitlines()[:int(line)])
    # the points of each graded test, which make up 100
    points = dict(re.findall(r"^\| `(tests/[\w.]+::\w+)` \| ([\d.]+) \|$", page, re.MULTILINE))
    assert {k: float(v) for k, v in points.items()} == points_of(ROOT / "tests")[number]
    assert sum(map(float, points.values())) == 100
    # docs/assignments.md's section of the assignment, and its part for students, without the instructors' parts
    source = (ROOT / "docs" / "assignments.md").read_text(encoding="utf-8")
    section = source.split(f"### A{number} ")[1].split("\n\n")[1]
    assert section.splitlines()[0].split("{")[0] in page
    assert f"**Check yourself** with `minitransformer assignments grade {number} .`" in page  # its number, not N
    assert "This section speaks to the student" not in page and "<!--" not in page
    assert "plan an afternoon" not in page.lower() and "Plan an afternoon" in source
    for nb in a.notebooks:
        assert f"- Notebook: [`notebooks/{nb}.ipynb`](notebooks/{nb}.ipynb)" in page
    read = re.findall(r"^- .*: \[`(docs/formulas/[\w-]+\.md)`\]", page, re.MULTILINE)
    assert read and all((copy / p).is_file() for p in read)
    needs = re.search(rf"^\| A{number} \| (.*) \| (.*) \|$", source, re.MULTILINE)  # the table of the seven
    assert f"What you write: {needs[1]}. What grading needs: {needs[2]}." in page
    # PyTorch (its CPU build) and g++ are asked for where the grading needs them only (A6 needs neither)
    torch = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert ("**PyTorch.**" in page) == (torch in page) == ("PyTorch" in needs[2]) == (number not in (6, 7))
    assert ("**g++.**" in page) == (number == 7) and "only where grading needs" not in page
    # the test run alone, as an example, is one of the assignment's own
    alone = re.findall(r'`python -m pytest "([^"]+)"`', page)
    assert len(alone) == 1 and alone[0] in points, alone


def test_assignment_md_shows_the_stub_of_its_first_row(copies, monkeypatch):
    # row 1 is the catalogue's first; its stub, not the first of its file's, is the one shown above the table
    copy, stubs = copies(1)
    sum_first = dataclasses.replace(get(1), first=("Sum.backward", "Add.backward", "Mul.backward"))
    monkeypatch.setattr(handout, "get", lambda number: sum_first)
    page = handout.assignment_page(ROOT, copy, 1, stubs, solution=False)
    shown = page.split("the first reads:\n\n```python\n")[1].split("\n```")[0]
    row = re.search(r"^\| 1 \| .* \| `([\w.]+)` \| (.*) \|$", page, re.MULTILINE)
    assert row[1] == "Sum.backward" and json.loads(shown.split("(", 1)[1].rsplit(")", 1)[0]) == f"A1: {row[2]}"


def test_included_code_is_what_sphinx_shows_with_a_stub_where_the_lines_enter_a_body(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(MARKED, encoding="utf-8")
    stub = regions(MARKED)[0].stub(2) + "\n"
    for options, number, expected in [
        ({"start-at": "return z", "end-at": "def g"}, 2, stub + "\n\ndef g(x):\n"),  # enters A2's body: its stub
        ({"start-at": "END SOLUTION", "end-at": "def g"}, 2, "\n\ndef g(x):\n"),  # at its END marker: it is over
        ({"start-at": "y = 2", "end-before": "BEGIN SOLUTION A3"}, 3, "    y = 2 * x\n    z = y * y\n"
                                                                     "    return z\n\n\ndef g(x):\n"),
        ({"start-after": "y = 2", "end-before": "### END"}, None, "    z = y * y\n    return z\n"),
        ({"end-before": "z = y"}, 2, 'def f(x):\n    """Docstring stays."""\n    y = 2 * x\n' + stub),
        ({"pyobject": "g"}, 3, "def g(x):\n" + regions(MARKED)[1].stub(3) + "\n"),
    ]:
        assert included(source, options, number) == expected, options
    # the lines are Sphinx's, on a file without bodies (and a last line without its newline, which a copy adds)
    sphinx = pytest.importorskip("sphinx.directives.code")
    from sphinx.config import Config

    source.write_text("import x\n\n\n@dec\ndef f(a):\n    return a\n\n\nclass C:\n    @property\n    def g(self):\n"
                      "        return 1\n\n    def h(self):\n        pass", encoding="utf-8")
    for options in [{"pyobject": "f"}, {"pyobject": "C.g"}, {"pyobject": "C.h"}, {"start-at": "def f",
                    "end-before": "class"}, {"start-after": "@dec", "end-at": "return a"}, {"end-at": "import"},
                    {"pyobject": "C", "start-after": "@property", "end-before": "def h"}, {"start-after": "pass"},
                    {"start-at": "def f", "end-at": "def f"}, {"start-after": "def f", "end-at": "f"}]:  # (self)
        shown = sphinx.LiteralIncludeReader(str(source), options, Config({}, {})).read()[0]
        assert included(source, options, 2) == shown + ("" if shown.endswith("\n") else "\n"), options


def test_a_page_shows_a_stub_where_its_include_starts_inside_a_body_and_names_what_it_cannot_show(tmp_path):
    source = ROOT / "minitransformer" / "functional" / "attention.py"
    inside = {"start-after": '"### BEGIN SOLUTION A2"', "end-before": '"### END SOLUTION"'}  # (docs/formulas/masks.md)
    assert included(source, inside, 2).startswith('    # YOUR CODE HERE\n    raise NotImplementedError("A2: ')
    with pytest.raises(ValueError, match=r"x\.md: literalinclude: :lines: is not handled in a copy \(only "
                                         r":language: and :end-at:"):
        included(source, {**inside, "lines": "1-3"}, 2, "x.md")
    body = included(source, inside, 3)
    assert "scores = Q @ K.mT / math.sqrt(d_k)" in body and "SOLUTION" not in body and "YOUR CODE" not in body
    # inline code is shown as it is: a role written in it is no role
    assert plain_markdown("as raw `{doc}` roles, {doc}`glossary`", "docs/x.md", ROOT, ROOT, 2) == (
        "as raw `{doc}` roles, [Glossary of symbols](glossary.md)")
    # a code span that crosses a line is one span, and the role after it is converted (docs/testing.md had one)
    crossing = ("applied by `(keywords of the reference, what the\nmessage says)`, applied by "
                "{func}`minitransformer.testing.name_known_mistake_of`;\n")
    assert plain_markdown(crossing, "docs/x.md", ROOT, ROOT, 2) == (
        "applied by `(keywords of the reference, what the\nmessage says)`, applied by "
        "`minitransformer.testing.name_known_mistake_of`;\n")
    # two objects of one name keep as much of their module as tells them apart (docs/formulas/layer-norm.md's API)
    assert plain_markdown("{func}`~minitransformer.functional.layer_norm`, {class}`~minitransformer.nn.LayerNorm`,\n"
                          "{class}`~minitransformer.autograd.fused.LayerNorm`.", "docs/x.md", ROOT, ROOT, 2) == (
        "`layer_norm`, `nn.LayerNorm`,\n`fused.LayerNorm`.")
    # a role's ``title <target>`` shows its title, a {doc} linking its target (docs/backend.md's API)
    assert plain_markdown("{func}`mt.manual_seed <minitransformer.backend.manual_seed>`, {doc}`the symbols <glossary>`",
                          "docs/x.md", ROOT, ROOT, 2) == "`mt.manual_seed`, [the symbols](glossary.md)"
    # a directive just after a code block: its own closing fence is looked for after it, not the block's
    assert plain_markdown("```\nx\n```\n```{toctree}\nglossary\n```\nafter\n", "docs/x.md", ROOT, ROOT, 2) == (
        "```\nx\n```\n- [Glossary of symbols](glossary.md)\nafter\n")
    # a command's --help, which the site writes when it is built
    assert plain_markdown("```{literalinclude} _generated/cli-minitransformer.txt\n```\n```{literalinclude} "
                          "_generated/cli-assignments-build.txt\n```\n", "docs/x.md", ROOT, ROOT, 2) == (
        "`minitransformer --help` prints it.\n`minitransformer assignments build --help` prints it.\n")
    # a directive's options, however many, then its content
    figure = "```{figure} pic.png\n:width: 50%\n:alt: The picture\nIts caption.\n```\n"
    assert plain_markdown(figure, "docs/x.md", ROOT, ROOT, 2) == (
        "*(A picture, drawn when the course's site is built. The picture.)* Its caption.\n")
    with pytest.raises(ValueError, match=r"docs/x.md:1: \{include\}: a student copy does not know how to show"):
        plain_markdown("```{include} ../README.md\n```\n", "docs/x.md", tmp_path, ROOT, 2)
    with pytest.raises(ValueError, match=r"docs/assignments.md:2: <!-- not in a student copy: begin --> inside"):
        left_out_of_copies("<!-- not in a student copy: begin -->\n<!-- not in a student copy: begin -->\n")
    with pytest.raises(ValueError, match=r"is never closed"):
        left_out_of_copies("<!-- not in a student copy: begin -->\ntext\n")


def test_a_pages_links_lead_to_the_copys_pages_by_their_titles_and_name_the_others(tmp_path):
    copy, root = tmp_path / "copy", tmp_path / "root"
    pages = {"docs/glossary.md": "# Glossary\n", "notebooks/README.md": "text\n# The notebooks\n"}
    for folder, present in ((copy, pages), (root, {**pages, "docs/errata.md": "# Errata\n"})):
        for name, text in present.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
    cells = [{"cell_type": "markdown", "source": ["# Softmax\n", "text"]}, {"cell_type": "markdown", "source": "# Not"}]
    (copy / "notebooks" / "02_softmax.ipynb").write_text(json.dumps({"cells": cells}), encoding="utf-8")
    text = ("{doc}`/glossary`, {doc}`../notebooks/index`, {doc}`the site's notebook <notebooks/02_softmax>`, "
            "{doc}`../notebooks/02_softmax`, {doc}`errata`;\n"
            "[errata.md](errata.md#top), [the errata](errata.md), [site](https://example.org/#x), "
            "`docs/glossary.md`, `docs/errata.md`.")
    assert plain_markdown(text, "docs/x.md", copy, root, 2) == (
        "[Glossary](glossary.md), [The notebooks](../notebooks/README.md), "
        "[the site's notebook](../notebooks/02_softmax.ipynb), [Softmax](../notebooks/02_softmax.ipynb), "
        f"Errata (`docs/errata.md`, {ELSEWHERE});\n"
        f"`docs/errata.md` ({ELSEWHERE}), the errata (`docs/errata.md`, {ELSEWHERE}), [site](https://example.org/#x), "
        f"`docs/glossary.md`, `docs/errata.md` ({ELSEWHERE}).")


def test_the_solution_copy_differs_from_the_student_copy_only_in_the_stubs(tmp_path):
    student, solution = tmp_path / "new" / "student", tmp_path / "solution"  # a folder to make, and an empty one
    solution.mkdir()
    stubs = build(2, student)
    assert build(2, solution, solution=True) == stubs
    for rel in stubs:
        if rel.endswith(".py"):
            a = (student / rel).read_text(encoding="utf-8")
            b = (solution / rel).read_text(encoding="utf-8")
            assert a != b and "NotImplementedError(\"A2: " not in b
    files = {p.relative_to(student) for p in student.rglob("*")}
    assert files == {p.relative_to(solution) for p in solution.rglob("*")}  # the same files, none left out of one
    same = [p for p in (student / "minitransformer").rglob("*.py") if p.relative_to(student).as_posix() not in stubs]
    assert all(p.read_bytes() == (solution / p.relative_to(student)).read_bytes() for p in same)
    # the notebooks are written as Jupyter writes them (nbformat), so saving one changes only what the student did
    nbformat = pytest.importorskip("nbformat")
    for nb in sorted(student.glob("notebooks/*.ipynb")) + sorted(solution.glob("notebooks/*.ipynb")):
        text = nb.read_text(encoding="utf-8")
        assert text == nbformat.writes(nbformat.reads(text, as_version=4)) + "\n", nb


def test_a_copys_notebooks_stop_when_they_import_another_package(copies, monkeypatch):
    """Run with the course's environment, a copy's notebook imported the course's minitransformer and every cell
    passed with its bodies: the build puts a check after the first cell's import (the repository's notebooks have
    none). The check passes for the copy's package, from notebooks/ or the copy's top, and refuses another."""
    copy, _ = copies(3)
    for nb in sorted((copy / "notebooks").glob("*.ipynb")):
        cells = [c for c in json.loads(nb.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        first = "".join(cells[0]["source"])
        assert f"import minitransformer as mt\n{PACKAGE_CHECK}" in first, nb.name
        assert sum(PACKAGE_CHECK in "".join(c["source"]) for c in cells) == 1, nb.name
    mark = PACKAGE_CHECK.splitlines()[0]
    assert not any(mark in p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb"))
    ours, theirs = (types.SimpleNamespace(__file__=str(r / "minitransformer" / "__init__.py")) for r in (copy, ROOT))
    for folder in (copy / "notebooks", copy):
        monkeypatch.chdir(folder)
        exec(PACKAGE_CHECK, {"mt": ours})
        with pytest.raises(ImportError, match=rf"imported minitransformer from {re.escape(str(ROOT))}.*not from this "
                                              r"copy's \.\./minitransformer: its cells would run that package's"):
            exec(PACKAGE_CHECK, {"mt": theirs})


def test_a_copy_cannot_be_built_from_and_says_so(tmp_path):
    build(4, tmp_path / "a4", solution=True)
    with pytest.raises(ValueError, match=r"has no marked bodies .*: it is a copy that `assignments build` wrote"):
        build(4, tmp_path / "again", source=tmp_path / "a4")
    assert not (tmp_path / "again").exists()


def test_a_checkout_without_docs_cannot_be_built_from_and_says_so(tmp_path):
    source = tmp_path / "source"  # the package and its tests, without docs/assignments.md
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "docs", "tools"))
    with pytest.raises(FileNotFoundError, match=r"has no docs/assignments\.md, which the copy's ASSIGNMENT\.md is "
                                                r"written from"):
        build(4, tmp_path / "a4", source=source)
    assert not (tmp_path / "a4").exists()


# the CuPy backend made with a stand-in CuPy that has one GPU: CudaKernels when kernels.py is there, else None
CUPY_KERNELS = """import sys, types
import array_api_compat.numpy
fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1)))
sys.modules["cupy"], sys.modules["array_api_compat.cupy"] = fake, array_api_compat.numpy
import minitransformer as mt
from minitransformer import bench
bench.tf32()
print(type(mt.backend._make("cupy").kernels).__name__)
"""


def test_a_copy_without_the_cuda_kernels_runs_the_formulas_on_cupy(tmp_path, copies, monkeypatch):
    """On a GPU a copy runs the student's formulas, not the CUDA kernels (which it leaves out); bench works too."""
    monkeypatch.delenv("MINITRANSFORMER_KERNELS", raising=False)
    a2, a7 = copies(2)[0], copies(7)[0]  # A7's copy holds them: the student's kernels
    for where, kernels in ((ROOT, "CudaKernels"), (a2, "NoneType"), (a7, "CudaKernels")):
        run = subprocess.run([sys.executable, "-c", CUPY_KERNELS], capture_output=True, encoding="utf-8", cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": pythonpath(where)})
        assert (run.returncode, run.stdout.strip()) == (0, kernels), run.stderr[-2000:]


NEEDS = '''import pytest


@pytest.mark.needs("tools")
def test_of_a_tool():
    pass


@pytest.mark.needs("minitransformer/kernels.py")  # looked for beside the package imported: the repository's here
def test_of_the_kernels():
    pass
'''


def test_a_test_that_needs_what_a_copy_lacks_skips_saying_so_and_a_graded_one_may_not(tmp_path):
    """tests/conftest.py's marker ``needs``, in a checkout with no tools/."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_bytes((ROOT / "tests" / "conftest.py").read_bytes())
    (tmp_path / "tests" / "test_needs.py").write_text(NEEDS, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--backends", "numpy", "-rs",
               "tests/test_needs.py"]
    env = {**os.environ, "PYTHONPATH": pythonpath(ROOT)}
    run = subprocess.run(command, capture_output=True, encoding="utf-8", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 passed, 1 skipped" in run.stdout
    assert "tests/test_needs.py:4: not in a student copy: tools (see LEFT_OUT and COPIED in" in run.stdout
    graded = NEEDS.replace('@pytest.mark.needs("tools")', '@pytest.mark.needs("tools")\n@pytest.mark.assignment(2, 1)')
    (tmp_path / "tests" / "test_needs.py").write_text(graded, encoding="utf-8")
    run = subprocess.run(command, capture_output=True, encoding="utf-8", cwd=tmp_path, env=env)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "test_needs.py::test_of_a_tool[numpy]: a graded test cannot be marked needs(tools)" in run.stderr


def test_the_command_line_builds_and_says_how_to_grade(tmp_path):
    out = tmp_path / "a5"
    run = subprocess.run([sys.executable, "-m", "minitransformer", "assignments", "build", "5", str(out)],
                         capture_output=True, encoding="utf-8", env={**os.environ, "PYTHONPATH": pythonpath(ROOT)})
    assert run.returncode == 0, run.stderr
    assert (f"the student starts with {out / ASSIGNMENT}; grade it with: minitransformer assignments grade 5 {out}"
            in run.stdout)
    assert "minitransformer/optim/adam.py: 1" in run.stdout
    # the package's bodies and the notebooks' exercises counted apart, as ASSIGNMENT.md counts them
    said = re.search(r": (\d+ bodies of A5 in the package and \d+ notebook exercises?), to write, in\n", run.stdout)
    page = (out / ASSIGNMENT).read_text(encoding="utf-8")
    assert said and f"with the {said[1]} taken out." in page, run.stdout
    # the page of one assignment says its number where docs/assignments.md says N
    assert "`minitransformer assignments grade 5 .` run inside the copy (it runs" in page and "`grade-A5.json`" in page
    assert "grade N ." not in page and "grade-AN" not in page
    again = subprocess.run([sys.executable, "-m", "minitransformer", "assignments", "build", "5", str(out)],
                           capture_output=True, encoding="utf-8", env={**os.environ, "PYTHONPATH": pythonpath(ROOT)})
    assert again.returncode == 2 and again.stderr.startswith(f"minitransformer assignments build: {out} exists")
    solution = tmp_path / "a5-solution"  # the instructor's copy is not spoken of as the student's
    run = subprocess.run([sys.executable, "-m", "minitransformer", "assignments", "build", "5", str(solution),
                          "--solution"], capture_output=True, encoding="utf-8",
                         env={**os.environ, "PYTHONPATH": pythonpath(ROOT)})
    assert run.returncode == 0 and "the student starts with" not in run.stdout, run.stdout + run.stderr
    assert (f"every body is written here; its grade, the full marks, is: minitransformer assignments grade 5 "
            f"{solution}") in run.stdout


@pytest.mark.skipif(os.name != "posix", reason="a POSIX shell's quotes")
def test_the_grade_command_printed_after_a_build_quotes_a_path_with_a_space(monkeypatch, capsys):
    """Copied as printed, ``grade 5 my copies/a5`` graded the folder ``my`` (a shell splits at the space); quoted as
    the system's shell reads it (cmd's double quotes on Windows)."""
    from minitransformer._console import quoted
    from minitransformer.assignments import commands

    monkeypatch.setattr(commands, "build", lambda number, out, solution: {})
    monkeypatch.setattr(commands, "bodies_and_exercises", lambda tag, stubs: "3 bodies")
    for solution in (False, True):
        args = types.SimpleNamespace(action="build", number=5, out="my copies/a5", solution=solution)
        assert commands.main(args) == 0
        assert capsys.readouterr().out.endswith("minitransformer assignments grade 5 'my copies/a5'\n")
    monkeypatch.setattr(os, "name", "nt")  # (only here: pathlib refuses to make a WindowsPath on POSIX)
    said = [quoted(p) for p in ("my copies/a5", "C:\\Users\\me\\R&D\\a5", "a5")]
    monkeypatch.undo()
    assert said == ['"my copies/a5"', '"C:\\Users\\me\\R&D\\a5"', "a5"]  # (cmd splits a command at an &)


# ------------------------------------------------------------------ grading (slow: a pytest run per kit)
def _graded(number, copy):
    """Grade ``copy`` for ``number``, running the graded tests of every assignment in the same run."""
    return grade(number, copy, numbers="all")


def _raised(test, number) -> bool:
    return any(e.startswith(f"NotImplementedError: A{number}: ") for e in test.errors)


# A student's stand-in for the grader (the audit's): if Python ever runs it, it writes full marks and stops
FAKE_GRADER = """import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(here, "fake-grader-ran"), "w").close()
if "--grade-json" in sys.argv:
    tests = [{"nodeid": f"tests/test_fake.py::test_{n}", "function": f"tests/test_fake.py::test_{n}",
              "assignment": n, "points": 100.0, "outcome": "passed", "errors": []} for n in range(1, 7)]
    with open(sys.argv[sys.argv.index("--grade-json") + 1], "w") as f:
        json.dump({"package": os.path.join(here, "minitransformer", "__init__.py"), "exitstatus": 0,
                   "collected": tests, "tests": tests}, f)
    os._exit(0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("number", NUMBERS)
def test_a_fresh_student_copy_imports_fails_only_where_it_should_and_grades_0(number, tmp_path):
    copy = tmp_path / f"a{number}"
    build(number, copy)
    imported = subprocess.run([sys.executable, "-c", "import minitransformer, minitransformer.nn; "
                               "print(minitransformer.__file__)"], capture_output=True, encoding="utf-8",
                              env={**os.environ, "PYTHONPATH": pythonpath(copy)}, cwd=tmp_path)
    assert imported.returncode == 0 and imported.stdout.strip() == str(copy / "minitransformer" / "__init__.py")
    for name in ("pytest.py", "sitecustomize.py"):  # what a student may add to fake the grade: never run
        (copy / name).write_text(FAKE_GRADER, encoding="utf-8")
    g = _graded(number, copy)
    assert not (copy / "fake-grader-ran").exists()
    assert not g.problem, g.problem
    assert g.own and g.score == 0 and g.max_score > 0
    # every graded case is collected and scored (none left out of both runs): the maximum and the points
    # skipped here make up the assignment's 100
    assert g.max_score + g.skipped_points == pytest.approx(100)
    not_stubbed = [(t.nodeid, t.outcome, t.errors[:1]) for t in g.own
                   if t.outcome != "skipped" and not _raised(t, number)]
    assert not not_stubbed, f"A{number} tests that did not fail with A{number}'s NotImplementedError: {not_stubbed}"
    earlier = [(t.nodeid, t.errors[:1]) for t in g.tests if t.assignment < number and t.outcome == "failed"]
    assert not earlier, f"earlier assignments' tests fail in A{number}'s copy: {earlier}"
    later = [(t.nodeid, t.errors[:1]) for t in g.tests
             if t.assignment > number and t.outcome == "failed" and not _raised(t, number)]
    assert not later, f"later assignments' tests fail in A{number}'s copy for another reason than its stubs: {later}"
    table = format_table(g)
    assert table.splitlines()[0].startswith(f"A{number}: {get(number).title}")
    total = [line for line in table.splitlines() if line.startswith("total ")]
    assert f"NotImplementedError: A{number}: " in table and total[0].endswith(f"0.00 / {g.max_score:6.2f}")
    assert not list(copy.rglob("__pycache__")), "grading wrote into the student's copy"


@pytest.mark.slow
def test_the_solution_earns_every_point_of_every_assignment(tmp_path):
    copy = tmp_path / "solution"
    build(7, copy, solution=True)  # every body kept, and A7's copy holds the kernels: all seven done
    g = _graded(1, copy)
    assert not g.problem, g.problem
    for number in NUMBERS:
        tests = [t for t in g.tests if t.assignment == number]
        failed = [(t.nodeid, t.errors[:1]) for t in tests if t.outcome == "failed"]
        assert tests and not failed, f"A{number}: {failed}"
        assert sum(t.points for t in tests) > 0
        assert sum(t.earned for t in tests) == pytest.approx(sum(t.points for t in tests))



@pytest.mark.slow
def test_leaving_any_one_body_a_stub_fails_a_graded_test_of_its_assignment(tmp_path):
    """A body that no graded test fails on gets full marks as a stub (A2's softmax from primitives did). One run
    of the graded tests (about 25 s) stubs each body in the tests that reach it: see tests/stub_each_body.py."""
    report = tmp_path / "bodies.json"
    env = {k: v for k, v in os.environ.items() if k != "MINITRANSFORMER_BACKEND"}
    env.update(PYTHONPATH=pythonpath(ROOT, ROOT / "tests"), MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-m", "pytest", *map(str, graded_test_files(ROOT / "tests")),
                          "-p", "minitransformer.assignments.plugin", "--assignment", "all", "-p", "stub_each_body",
                          "--stub-report", str(report), "--backends", "numpy", "-p", "no:cacheprovider",
                          "--rootdir", str(ROOT), "-c", str(ROOT / "setup.cfg"), "-q", "--no-header", "--tb=no"],
                         cwd=tmp_path, env=env, capture_output=True, encoding="utf-8")
    assert report.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    bodies = json.loads(report.read_text(encoding="utf-8"))
    package = [p for p in (ROOT / "minitransformer").rglob("*.py") if "assignments" not in p.parts]
    assert len(bodies) == sum(len(regions(p.read_text(encoding="utf-8"))) for p in package)
    ungraded = [f"minitransformer/{b['file']}:{b['line']} A{b['assignment']}: {b['hint']}"
                for b in bodies if not b["graded"]]
    assert not ungraded, "left a stub alone, these bodies fail no graded test:\n" + "\n".join(ungraded)

@pytest.mark.slow
def test_grade_prints_a_table_and_writes_json(tmp_path):
    copy = tmp_path / "a5"
    build(5, copy)
    run = subprocess.run([sys.executable, "-m", "minitransformer", "assignments", "grade", "5", str(copy),
                          "--json", str(tmp_path / "grade.json")], capture_output=True, encoding="utf-8",
                         env={**os.environ, "PYTHONPATH": pythonpath(ROOT)}, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    data = json.loads((tmp_path / "grade.json").read_text(encoding="utf-8"))
    assert (data["assignment"], data["problem"], data["score"]) == (5, "", 0)
    assert data["max_score"] == sum(t["points"] for t in data["tests"]) > 0
    ran = [t for t in data["tests"] if t["outcome"] != "skipped"]  # (PyTorch's comparisons skip without it)
    assert ran and all(t["outcome"] == "failed" and t["errors"][0].startswith("NotImplementedError: A5: ")
                       for t in ran)
    assert "tests/test_optim.py::test_noam_lr_hand_values" in run.stdout
    total = [line for line in run.stdout.splitlines() if line.startswith("total ")]
    assert total and total[0].endswith(f"  0.00 / {data['max_score']:6.2f}")
    assert "written to " in run.stdout


# ------------------------------------------------------------------ the notebooks of a student copy
@pytest.mark.slow
@pytest.mark.parametrize("number, name", [(a.number, nb) for a in ASSIGNMENTS for nb in a.notebooks])
def test_a_stripped_notebook_runs_up_to_its_first_exercise(number, name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    if name == "12_gpu_kernels" and (reason := cuda_emulator.missing()):  # it compiles CUDA kernels for the CPU
        pytest.skip(f"{name}: {reason}")
    copy = tmp_path / "copy"
    build(number, copy)
    nb = nbformat.read(copy / "notebooks" / f"{name}.ipynb", as_version=4)
    stub = f'raise NotImplementedError("A{number}: '
    exercises = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and stub in c.source]
    assert exercises, f"{name}: no A{number} exercise cell"
    first = exercises[0]
    assert all(not c.get("outputs") for c in nb.cells[first:] if c.cell_type == "code"), "solution outputs left"
    monkeypatch.setenv("PYTHONPATH", pythonpath(copy))  # the kernel imports the student's package
    monkeypatch.delenv("MINITRANSFORMER_BACKEND", raising=False)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(copy / "notebooks")}})
    with pytest.raises(nbclient.exceptions.CellExecutionError) as stopped:
        client.execute()
    assert stopped.value.ename == "NotImplementedError" and stopped.value.evalue.startswith(f"A{number}: ")
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is not None]
    assert ran and ran[-1] == first, f"{name}: stopped at cell {ran[-1] if ran else None}, not at {first}"
    failed = [i for i in ran if any(o.output_type == "error" for o in nb.cells[i].outputs)]
    assert failed == [first]


def test_a_case_the_run_does_not_report_counts_as_failed_and_one_not_collected_is_not_scored():
    case = {"function": "tests/t.py::test_a", "assignment": 2, "points": 10.0}
    expected = [{**case, "nodeid": f"tests/t.py::test_a[{k}]"} for k in (1, 2)]
    reported = [{**expected[0], "outcome": "passed", "errors": []},
                {**case, "nodeid": "tests/t.py::test_a[3]", "outcome": "passed", "errors": []}]  # 2 is missing
    tests, unexpected = _score(expected, reported)
    assert [(t.nodeid, t.outcome, t.earned, t.points, t.worth) for t in tests] == [
        ("tests/t.py::test_a[1]", "passed", 5.0, 5.0, 5.0), ("tests/t.py::test_a[2]", "failed", 0.0, 5.0, 5.0)]
    skipped = [{**expected[0], "outcome": "skipped", "errors": ["Skipped: no torch"]}]
    assert [(t.outcome, t.earned, t.points, t.worth) for t in _score(expected, skipped)[0]] == [
        ("skipped", 0.0, 0.0, 5.0), ("failed", 0.0, 5.0, 5.0)]  # out of the maximum, still worth its share
    assert tests[1].errors == ["the test run did not report this case"]
    assert unexpected == ["tests/t.py::test_a[3]"]


def test_a_mark_gives_its_assignment_and_points_by_position_or_by_name():
    """The marker is registered as ``assignment(number, points)``: ``assignment(3, 10)`` is worth 10 points too."""
    from minitransformer.assignments import plugin

    class Item:  # what the plugin reads of a collected test
        def __init__(self, mark):
            self.mark = mark

        def get_closest_marker(self, name):
            return self.mark if name == "assignment" else None

    for mark in (pytest.mark.assignment(3, points=10), pytest.mark.assignment(3, 10),
                 pytest.mark.assignment(number=3, points=10)):
        assert plugin._marker(Item(mark.mark)) == (3, 10.0)
    assert plugin._marker(Item(None)) is None  # an ungraded test
    Item.nodeid = "tests/test_x.py::test_e"
    with pytest.raises(pytest.UsageError, match=r"tests/test_x.py::test_e: its assignment marker: .*point"):
        plugin._marker(Item(pytest.mark.assignment(3, point=10).mark))  # misspelt: named with its test


def test_the_plugin_keeps_an_errors_notes_and_the_table_shows_the_first():
    """The engine notes on an array library's error which operation's forward or backward raised it: the JSON keeps
    the note under the message, and the table's reason shows it beside the message."""
    from minitransformer.assignments import plugin

    error = ValueError("matmul: Input operand 1 has a mismatch in its core dimension 0")
    error.__notes__ = ["(in MatMul.backward: inputs of shapes (2, 3), (3, 4), ybar (2, 4))"]  # add_note's (3.11+)
    said = plugin._said(error)
    assert said == ("ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0\n"
                    "(in MatMul.backward: inputs of shapes (2, 3), (3, 4), ybar (2, 4))")
    assert reason(said) == ("ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0; "
                            "(in MatMul.backward: inputs of shapes (2, 3), (3, 4), ybar (2, 4))")
    assert plugin._said(KeyError("x")) == "KeyError: 'x'"


def test_the_plugin_says_where_in_the_package_an_error_was_raised():
    """A TypeError of Python's (``bad operand type for unary ~``) names no file: the JSON and the table say the
    package's innermost frames; a failed check (the test's) and a stub (its hint) say enough without."""
    import minitransformer as mt
    from minitransformer.assignments import plugin

    def student_code():
        return ~mt.ones(2)  # a float tensor: refused by Tensor.__invert__

    with pytest.raises(TypeError) as raised:
        student_code()
    said = plugin._said(raised.value)
    where = r"\(raised at minitransformer/autograd/engine\.py:\d+ in __invert__\)"
    assert re.fullmatch(r"TypeError: ~ \(logical not\) takes a bool tensor.*\n" + where, said, flags=re.S), said
    assert re.search(r"; " + where + "$", reason(said)), reason(said)
    for error in (AssertionError("the weights"), NotImplementedError("A3: hint")):
        try:
            raise error
        except Exception as e:
            assert "raised at" not in plugin._said(e)

    class Transposed(mt.Function):  # the engine's check of what backward returned: the operation, not its frames
        def forward(self, a):
            return a * 1.0

        def backward(self, grad):
            return (self.xp.matrix_transpose(grad),)

    with pytest.raises(ValueError) as raised:
        Transposed.apply(mt.ones(2, 3, requires_grad=True)).sum().backward()
    assert plugin._said(raised.value) == (
        "ValueError: Transposed.backward, input 0: a gradient of shape (3, 2) for an input of shape (2, 3): neither "
        "that shape nor a broadcast of it\n(checked after Transposed.backward returned)")


def test_where_an_error_was_raised_names_only_the_imported_packages_frames(tmp_path):
    """A course cloned into a folder named minitransformer, its .venv inside: a library's frame there is not the
    package's (it was, by the folder's name in the path)."""
    import importlib.util

    import minitransformer as mt
    from minitransformer.assignments import plugin

    library = tmp_path / "minitransformer" / ".venv" / "arrlib.py"
    library.parent.mkdir(parents=True)
    library.write_text("def matmul(f):\n    return f()\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("arrlib", library)
    arrlib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arrlib)
    with pytest.raises(TypeError) as raised:
        arrlib.matmul(lambda: ~mt.ones(2))
    said = plugin._said(raised.value)
    assert re.search(r"\(raised at minitransformer/autograd/engine\.py:\d+ in __invert__\)$", said), said
    assert "arrlib" not in said and ".venv" not in said


def test_a_notebooks_package_check_follows_its_import_with_a_comment_or_as_the_cells_last_line():
    from minitransformer.assignments.strip import check_the_package

    for source in (["import numpy as np\n", "import minitransformer as mt  # the library\n", "mt.__version__"],
                   "import numpy as np\nimport minitransformer as mt", ["import minitransformer as mt"]):
        nb = check_the_package({"cells": [{"cell_type": "markdown", "source": ["import minitransformer as mt\n"]},
                                          {"cell_type": "code", "source": source}]})
        text = "".join(nb["cells"][1]["source"])
        assert PACKAGE_CHECK in text and text.index(PACKAGE_CHECK) > text.index("import minitransformer as mt"), text
        assert nb["cells"][0]["source"] == ["import minitransformer as mt\n"]  # a markdown cell is left alone
        assert type(nb["cells"][1]["source"]) is type(source)


def test_grading_without_pytest_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytest" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r'pytest, which is not installed.*pip install -e "\.\[dev\]"'):
        grade(1, tmp_path)


# ------------------------------------------------------------------ what the grade says
def _numpy_message(actual, desired, **options) -> str:
    try:
        np.testing.assert_allclose(actual, desired, **options)
    except AssertionError as e:
        return f"AssertionError: {e}"
    raise AssertionError("no mismatch")


def test_the_table_says_why_a_comparison_failed_and_keeps_a_whole_hint():
    """numpy's assert_allclose starts its message with an empty line: the table shows the test's message, the
    mismatches and the largest difference, not just 'AssertionError:'; a long stub message is not cut."""
    numeric = _numpy_message([[-0.25, 0.25]], [[-0.5, 0.5]], rtol=1e-12, err_msg="layer_norm([[1, 3]], eps=3)")
    assert numeric.splitlines()[0] == "AssertionError: "
    hint = ("NotImplementedError: A2: softmax's backward on arrays: xbar = y * (ybar - sum(ybar * y)) along axis, "
            "returned")
    g = Grade(2, "Softmax", "copy", 0.0, 10.0, [TestResult("tests/t.py::test_a", 2, "failed", 5.0, 0.0, [numeric]),
                                                TestResult("tests/t.py::test_b", 2, "failed", 5.0, 0.0, [hint])])
    table = " ".join(format_table(g).split())  # the reasons may be wrapped
    listed = "\nMismatch at indices:\n" in numeric  # NumPy lists the mismatches since 2.4
    first = ["first [0, 0]: -0.25 (ACTUAL), -0.5 (DESIRED); "] if listed else []
    assert ("AssertionError: Not equal to tolerance rtol=1e-12, atol=0; layer_norm([[1, 3]], eps=3); mismatched "
            f"2 / 2 (100%); {''.join(first)}max absolute difference 0.25") in table
    assert hint in table
    # a test's message printed over lines (an array) is not taken for the list of mismatches: "first" is its first
    message = reason(_numpy_message([[-0.25, 0.25]], [[-0.5, 0.5]], rtol=1e-12,
                                    err_msg=f"softmax of\n{np.array([[1.0, 2.0], [3.0, 4.0]])}"))
    assert [p for p in message.split("; ") if p.startswith("first ")] == [f.removesuffix("; ") for f in first]
    assert reason("AssertionError: assert 0.35 < 1e-06\n +  where 0.35 = _report('sdpa.forward', 0.35)\n"
                  " +    where 0.35 = _rel_err(array([1.0]), array([2.0]))") == (
        "AssertionError: assert 0.35 < 1e-06; + where 0.35 = _report('sdpa.forward', 0.35)")
    # after the test's own message, the comparison alone: no "+ where" (a function's repr, whole arrays), and none
    # for a bool's (assert np.all(...), message)
    assert reason("AssertionError: the loss should fall below 0.02\nassert 0.32 < 0.02\n +  where 0.32 = max([3.2, "
                  "0.32])") == "AssertionError: the loss should fall below 0.02; assert 0.32 < 0.02"
    assert reason("AssertionError: the rate rises: [0.1, 0.2]\nassert np.False_\n +  where np.False_ = <function all "
                  "at 0x7ff6>(array([0.1]) > 0)") == "AssertionError: the rate rises: [0.1, 0.2]"
    # where NumPy compared no values (the shapes differ, or where the infinities lie), what it says and the arrays
    for actual, desired, said in [(np.zeros((2, 1)), np.zeros((2, 3)), "(shapes (2, 1), (2, 3) mismatch)"),
                                  (np.array([-0.5, -1e4]), np.array([-0.5, -np.inf]), "inf location mismatch"),
                                  (np.array([np.inf]), np.array([-np.inf]), "inf values mismatch"),
                                  (np.zeros(2, np.float32), np.zeros(2), "(dtypes float32, float64 mismatch)")]:
        with pytest.raises(AssertionError) as caught:
            np.testing.assert_array_equal(actual, desired, err_msg="tokens (rows, steps)", strict=True)
        message = reason(f"AssertionError: {caught.value}")
        assert message.startswith("AssertionError: Arrays are not equal; tokens (rows, steps); ") and said in message
        assert "ACTUAL: array([" in message and "DESIRED: array([" in message and "\n" not in message


def test_a_reason_keeps_the_comparison_and_one_line_more_and_cuts_what_is_long():
    """pytest's assert: the comparison and the next line, not its whole diff; a part longer than 1000 characters
    keeps its head and its tail around " ... ", and so does the whole reason longer than ``limit``; one that fits is
    whole. A message with no "name: " keeps no colon after it."""
    # str() of the AssertionError of pytest's rewritten `assert [1, 2] == [1, 3]`
    diff = "AssertionError: assert [1, 2] == [1, 3]\n  \n  At index 1 diff: 2 != 3\n  Use -v to get more diff"
    assert reason(diff) == "AssertionError: assert [1, 2] == [1, 3]; At index 1 diff: 2 != 3"
    assert reason("ValueError: " + "a" * 1000) == "ValueError: " + "a" * 1000
    assert reason("ValueError: " + "a" * 1001 + "z") == "ValueError: " + "a" * 497 + " ... " + "a" * 497 + "z"
    long = "AssertionError: " + "a" * 1100 + "\n" + "b" * 1100 + "\n + where " + "c" * 300
    parts = "AssertionError: " + "a" * 497 + " ... " + "a" * 498 + "; " + "b" * 497 + " ... " + "b" * 498
    assert reason(long, limit=3000) == parts + "; + where " + "c" * 300
    assert reason(long) == reason(long, limit=3000)[:747] + " ... " + reason(long, limit=3000)[-748:]
    assert reason("ValueError: " + "a" * 50, limit=62) == "ValueError: " + "a" * 50
    assert reason("ValueError: " + "a" * 51, limit=62) == "ValueError: " + "a" * 16 + " ... " + "a" * 29
    assert reason("the test run did not report this case") == "the test run did not report this case"
    # a line that ends its sentence is followed by a space, not "; " (A6's beam tests wrote ".; The test's own")
    assert reason("AssertionError: fix test_a first; this test ranks by it.\nThe test's own message: x") == (
        "AssertionError: fix test_a first; this test ranks by it. The test's own message: x")
    assert reason("AssertionError: a\nb") == "AssertionError: a; b"


def test_an_a7_message_keeps_its_hint_in_the_table():
    """A7's messages say what the result looks like, then, at their end, what in the kernel usually does that: the
    table shows it whole."""
    hint = ("AssertionError: softmax_forward: inf or nan in the result: is the row's max m subtracted, y = exp(x - m) "
            "/ sum_j exp(x_j - m)? exp(x) overflows from x = 89 in float32; first wrong: row 0, entry 0: nan, the "
            "formula 1 (3 rows of 1 entries, 32 threads a block) (a wrong block_sum or block_max makes this wrong too: "
            "if their tests fail, start there)")
    table = format_table(Grade(7, "GPU kernels", "copy", 0.0, 5.0, [TestResult("tests/t.py::test_k", 7, "failed", 5.0,
                                                                                0.0, [hint])]))
    assert hint in " ".join(table.split()) and len(hint) > 300


def test_the_table_wraps_a_reason_between_words_only(monkeypatch):
    """A path in the reason moves to the next line whole, not cut after a hyphen of a folder's name."""
    monkeypatch.setenv("COLUMNS", "100")
    path = "/home/ana/machine-learning/course/student-a2/minitransformer/functional/attention.py"
    why = f"the tests did not run: SyntaxError: '(' was never closed ({path}, line 12)"
    table = format_table(Grade(2, "Softmax", "copy", 0.0, 5.0,
                               [TestResult("tests/t.py::test_a", 2, "failed", 5.0, 0.0, [why])]))
    assert any(f"({path}," in line for line in table.splitlines()), table


def test_the_table_names_the_points_not_graded_and_what_to_install():
    skipped = ["Skipped: could not import 'torch': No module named 'torch'"]
    g = Grade(4, "Layer norm", "copy", 90.0, 90.0,
              [TestResult("tests/t.py::test_a", 4, "passed", 90.0, 90.0),
               TestResult("tests/t.py::test_torch[x]", 4, "skipped", 0.0, 0.0, skipped, worth=5.0),
               TestResult("tests/t.py::test_torch[y]", 4, "skipped", 0.0, 0.0, skipped, worth=5.0)],
              skipped_points=10.0)
    table = format_table(g)
    assert "NOT GRADED HERE: 2 cases worth 10.00 of the assignment's 100.00 points" in table
    assert "could not import 'torch'" in table and f"To grade out of 100.00, install it and grade again: " \
        f"{TORCH_INSTALL}" in " ".join(table.split())
    data = json.loads(g.to_json())
    assert data["skipped_points"] == 10.0
    assert [(t["points"], t["worth"]) for t in data["tests"]] == [(90.0, 90.0), (0.0, 5.0), (0.0, 5.0)]
    assert "NOT GRADED" not in format_table(Grade(4, "Layer norm", "copy", 0.0, 0.0, []))


@pytest.mark.slow
def test_without_pytorch_the_skipped_points_are_counted_and_named(tmp_path, monkeypatch):
    hidden = tmp_path / "hidden" / "torch"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'torch\'", name="torch")\n',
                                        encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", pythonpath(hidden.parent))  # both runs of grade() see this "torch"
    copy = tmp_path / "a3"
    build(3, copy)
    g = grade(3, copy)
    torch_cases = [t for t in g.own if "torch" in t.nodeid]
    assert torch_cases and all(t.outcome == "skipped" and t.points == 0 and t.worth > 0 for t in torch_cases)
    assert g.skipped_points == 5 == sum(t.worth for t in torch_cases) and g.max_score == 95 and g.score == 0
    assert all(t.worth == t.points for t in g.own if t.outcome != "skipped")
    assert TORCH_INSTALL in " ".join(format_table(g).split())


def test_the_table_names_g_plus_plus_for_the_kernels_points_not_graded():
    skipped = ["Skipped: g++ is not installed: the CPU emulation of the CUDA kernels needs it"]
    g = Grade(7, "GPU kernels", "copy", 0.0, 0.0, [TestResult("tests/t.py::test_k", 7, "skipped", 0.0, 0.0, skipped,
                                                              worth=100.0)], skipped_points=100.0)
    table = " ".join(format_table(g).split())
    assert "NOT GRADED HERE: 1 case worth 100.00 of the assignment's 100.00 points was skipped" in table
    assert f"which needs g++ (and Linux). To grade out of 100.00, grade on such a machine with g++: " \
        f"{GXX_INSTALL}" in table and "PyTorch" not in table


@pytest.mark.slow
def test_without_g_plus_plus_the_kernels_points_are_skipped_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++ (nor nvcc) on it; grading starts Python by its full path
    copy = tmp_path / "a7"
    build(7, copy, solution=True)
    g = grade(7, copy)
    assert g.own and all(t.outcome == "skipped" for t in g.own), [(t.nodeid, t.outcome) for t in g.own]
    assert (g.score, g.max_score, g.skipped_points) == (0, 0, 100)
    assert "g++ is not installed" in format_table(g) and GXX_INSTALL in " ".join(format_table(g).split())


@pytest.mark.slow
def test_a_copy_that_does_not_import_grades_0_out_of_the_whole_maximum(tmp_path):
    copy = tmp_path / "a2"
    build(2, copy)
    with open(copy / "minitransformer" / "functional" / "attention.py", "a", encoding="utf-8") as f:
        f.write("\ndef broken(:\n")
    g = grade(2, copy)
    assert g.score == 0 and g.max_score == 100 and g.own
    assert all(t.outcome == "failed" and t.errors[0].startswith("the tests did not run: SyntaxError")
               and "attention.py, line " in t.errors[0] for t in g.own)
    assert "SyntaxError" in g.problem and "the tests did not run" in format_table(g)
    # its first line the copy's file and line; pytest's "while loading conftest" named the instructor's checkout
    assert re.match(r"the tests did not run: SyntaxError: .*\(.*attention\.py, line \d+\)\n", g.problem), g.problem
    assert "while loading conftest" not in g.problem and f"importing minitransformer from {copy}" in g.problem
    assert not list(copy.rglob("__pycache__")), "grading wrote into the student's copy"


# ------------------------------------------------------------------ grade() and its command, pytest stood in for
CASES = [{"nodeid": f"tests/t.py::test_a[{k}]", "function": "tests/t.py::test_a", "assignment": 2, "points": 10.0}
         for k in (1, 2)] + [{"nodeid": "tests/t.py::test_b", "function": "tests/t.py::test_b", "assignment": 3,
                              "points": 7.0}]


def _grade_with(monkeypatch, tmp_path, collected, ran, output, stopped=False, collection_stopped=False):
    """grade(2) of a bare copy with a timeout of 30 s, its two pytest runs stood in for: the collection finds
    ``collected`` (None: it failed; ``collection_stopped``: at the timeout), the graded run's plugin writes ``ran``
    (None: nothing) and is ``stopped`` at the timeout or not; both print ``output``."""
    import importlib

    grading = importlib.import_module("minitransformer.assignments.grade")  # the module, not the function
    copy = tmp_path / "copy"
    (copy / "minitransformer").mkdir(parents=True)
    (copy / "minitransformer" / "__init__.py").write_text("", encoding="utf-8")
    package = str(copy / "minitransformer" / "__init__.py")

    def run(folder, args, results, timeout):
        if "--collect-only" in args:
            return grading._Run(None if collected is None else {"package": package, "exitstatus": 0,
                                                                "collected": collected, "tests": []},
                                output, collection_stopped)
        return grading._Run(None if ran is None else {"package": package, "collected": collected, **ran}, output,
                            stopped)

    monkeypatch.setattr(grading, "_pytest", run)
    return grading.grade(2, copy, timeout=30)


def test_grade_scores_a_run_that_stopped_early_and_says_so(monkeypatch, tmp_path):
    output = "tests/t.py .F\n!!!!!!! KeyboardInterrupt !!!!!!!\n"
    reported = [{**CASES[0], "outcome": "passed", "errors": []}, {**CASES[1], "outcome": "failed", "errors": ["E"]},
                {**CASES[0], "nodeid": "tests/t.py::test_a[3]", "outcome": "passed", "errors": []}]
    g = _grade_with(monkeypatch, tmp_path, CASES, {"exitstatus": 2, "tests": reported}, output)
    assert (g.score, g.max_score) == (5.0, 10.0)  # A2's 10 points shared by its 2 cases; A3's test not counted
    assert g.problem == ("pytest stopped early:\n" + output + "\nthe test run reported cases that were not "
                         "collected (not scored): ['tests/t.py::test_a[3]']")
    assert format_table(g).endswith("\n\n" + g.problem)


def test_grade_of_a_run_that_reports_nothing_and_of_tests_that_do_not_collect(monkeypatch, tmp_path):
    # the runner itself failed (no pytest for it, say): its traceback has no "E   ...Error" line, its last line says why
    crash = ('Traceback (most recent call last):\n  File "runner.py", line 41, in main\n    import pytest\n'
             "ModuleNotFoundError: No module named 'pytest'\n")
    g = _grade_with(monkeypatch, tmp_path, CASES, None, crash)
    why = "the tests did not run: ModuleNotFoundError: No module named 'pytest'"
    assert (g.score, g.max_score, g.problem) == (0.0, 10.0, f"{why}\n{crash}")  # why first, then the output
    assert [t.errors for t in g.own] == [[why]] * 2
    broken = "ERROR tests/conftest.py - ImportError: cannot import name 'backend'\n"
    with pytest.raises(RuntimeError, match=r"could not be collected:\nERROR tests/conftest.py - ImportError"):
        _grade_with(monkeypatch, tmp_path / "again", None, None, broken)
    # the instructor's collection itself ran out of time: said so, with the way out, not an empty message
    with pytest.raises(RuntimeError, match=r"could not be collected:\ncollecting them took longer than the time "
                                           r"limit, 30 s \(a busy machine\? give more with --timeout\)$"):
        _grade_with(monkeypatch, tmp_path / "slow", None, None, "", collection_stopped=True)



SKIPS = {"torch": "Skipped: could not import 'torch': No module named 'torch'",
         "g++": "Skipped: g++ is not installed: the CPU emulation of the CUDA kernels needs it",
         "kernels": "Skipped: not in a student copy: minitransformer/kernels.py (see LEFT_OUT and COPIED in "
                    "minitransformer/assignments/strip.py)",
         "other": "Skipped: later"}


@pytest.mark.parametrize("here", [True, False], ids=["installed", "absent"])
def test_a_skip_that_this_machine_does_not_explain_is_the_submissions_and_fails(monkeypatch, tmp_path, here):
    """A student's own ``pytest.skip("could not import 'torch': ...")`` in a body was scored as skipped here: left out
    of the maximum (65 / 65 for A2), the grade asking to install PyTorch, which was installed. A graded case skipped
    for PyTorch, for g++ or for A7's kernels counts neither way only where that is absent; any other skip fails."""
    import importlib

    grading = importlib.import_module("minitransformer.assignments.grade")
    monkeypatch.setattr(grading, "_importable", lambda module: here and module == "torch")
    monkeypatch.setattr(grading.cuda_emulator, "missing", lambda: "" if here else SKIPS["g++"][len("Skipped: "):])
    cases = [{"nodeid": f"tests/t.py::test_{why}", "function": f"tests/t.py::test_{why}", "assignment": n,
              "points": 10.0} for why, n in (("torch", 2), ("g++", 2), ("kernels", 2), ("other", 2), ("a7", 7))]
    ran = [{**c, "outcome": "skipped", "errors": [SKIPS.get(c["nodeid"][17:], SKIPS["kernels"])]} for c in cases]
    g = _grade_with(monkeypatch, tmp_path, cases, {"exitstatus": 0, "tests": ran}, "")
    outcomes = {t.nodeid.removeprefix("tests/t.py::test_"): (t.outcome, t.errors[0]) for t in g.tests}
    by_the_submission = {"other", "kernels"} | (set() if not here else {"torch", "g++"})  # A2's copy keeps no kernels
    for why, (outcome, error) in outcomes.items():
        if why in by_the_submission:
            assert (outcome, error) == ("failed", f"skipped by the submission: {SKIPS[why][len('Skipped: '):]}"), why
        else:
            assert outcome == "skipped", why
    assert outcomes["a7"][0] == "skipped"  # A7's copy keeps the kernels, which this bare copy lacks
    assert (g.max_score, g.skipped_points) == ((40.0, 0.0) if here else (20.0, 20.0))
    assert ("install it and grade again" in " ".join(format_table(g).split())) == (not here)
    (tmp_path / "copy" / "minitransformer" / "kernels.py").write_text("", encoding="utf-8")
    assert not grading._explained(SKIPS["kernels"], 7, tmp_path / "copy", ROOT)  # where the copy holds them


def test_the_modules_graded_tests_skip_without_are_those_the_grader_checks():
    """A graded test that skips where a module does not import (``pytest.importorskip``) skips for what the grading
    machine lacks only if the grader knows that module (``IMPORTED``); else its skip would fail the case."""
    from minitransformer.assignments.grade import IMPORTED

    modules = set()
    for path in graded_test_files(ROOT / "tests"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any("assignment" in ast.unparse(d) for d in node.decorator_list):
                modules |= set(re.findall(r"importorskip\('([\w.]+)'", ast.unparse(node)))
    assert modules and modules <= set(IMPORTED), modules



def test_a_student_copy_graded_for_another_assignment_is_refused_naming_both(copies, monkeypatch, tmp_path):
    """An A2 copy graded as A1 earned 100 / 100 untouched: its A1 bodies are written. The copy records what it was
    built for (ASSIGNMENT.json), and the grade refuses another assignment; a solution copy, or a copy without the
    record, is graded for any, as before."""
    # imported here: grading collects this file with the copy's package, and a copy built before has no such names
    from minitransformer.assignments.strip import RECORD, built_for

    copy, _ = copies(2)
    assert built_for(copy) == {"assignment": 2, "title": get(2).title, "solution": False}
    with pytest.raises(ValueError, match=rf"^assignments grade: {re.escape(str(copy))} is a copy for A2, Softmax and "
                                         r"scaled dot-product attention \(its ASSIGNMENT\.json\), not for A1: grade it "
                                         r"with `minitransformer assignments grade 2 \.\.\.`$"):
        grade(1, copy)
    ran = {"exitstatus": 0, "tests": [{**c, "outcome": "passed", "errors": []} for c in CASES]}
    for name, record in (("solution", '{"assignment": 5, "title": "Adam", "solution": true}'), ("none", None),
                         ("broken", "{")):
        if record is not None:
            (tmp_path / name / "copy").mkdir(parents=True)
            (tmp_path / name / "copy" / RECORD).write_text(record, encoding="utf-8")
        if name == "broken":
            with pytest.raises(ValueError, match=r"ASSIGNMENT\.json, which `assignments build` wrote to say what the "
                                                 r"copy is for, cannot be read \(JSONDecodeError: .*\); delete it"):
                _grade_with(monkeypatch, tmp_path / name, CASES, ran, "")
        else:
            assert _grade_with(monkeypatch, tmp_path / name, CASES, ran, "").score == 10.0  # grade(2)


# The grading run (-X utf8) writes the package's file name in UTF-8 to a grader whose locale is C: a stand-in for it
C_LOCALE_GRADE = """import importlib, json, subprocess, sys
grading = importlib.import_module("minitransformer.assignments.grade")
assert sys.getfilesystemencoding() == "ascii", sys.getfilesystemencoding()
REPORT = ("import json, os, sys; json.dump({'package': os.path.abspath(os.path.join(sys.argv[1], 'minitransformer', "
          "'__init__.py')), 'exitstatus': 0, 'collected': json.loads(sys.argv[3]), 'tests': json.loads(sys.argv[4])}, "
          "open(sys.argv[2], 'w'))")
CASE = {"nodeid": "tests/t.py::test_a", "function": "tests/t.py::test_a", "assignment": 2, "points": 10.0}

def run(folder, args, results, timeout):
    ran = [] if "--collect-only" in args else [{**CASE, "outcome": "passed", "errors": []}]
    subprocess.run([sys.executable, "-X", "utf8", "-c", REPORT, folder, results, json.dumps([CASE]), json.dumps(ran)],
                   check=True)
    return grading._Run(json.loads(results.read_text()), "", False)

grading._pytest = run
print(grading.grade(2, sys.argv[1], timeout=30).score)
"""


@pytest.mark.skipif(os.name != "posix", reason="a POSIX locale's file name encoding")
def test_a_grader_in_a_c_locale_finds_a_copy_whose_path_is_not_ascii(tmp_path):
    """The grading run reports the package it imported in UTF-8; a grader whose locale is C (ASCII) looked that file
    up by the name decoded as UTF-8, which its file system encoding could not encode ("'ascii' codec can't encode
    character '\\xfc'"), for a copy in a folder named ``ü``."""
    copy = tmp_path / "dir with spaces" / "\u00fcn\u00ef" / "a2"
    try:
        (copy / "minitransformer").mkdir(parents=True)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses the folder's name")
    (copy / "minitransformer" / "__init__.py").write_text("", encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONPATH": pythonpath(ROOT)}
    run = subprocess.run([sys.executable, "-c", C_LOCALE_GRADE, str(copy)], capture_output=True, encoding="utf-8",
                         errors="replace", env=env, cwd=tmp_path)
    assert (run.returncode, run.stdout.strip()) == (0, "10.0"), run.stderr[-2000:]


def test_a_run_stopped_at_its_timeout_scores_what_finished_and_names_where_it_was_stuck(monkeypatch, tmp_path):
    """The plugin had written the cases that finished when the run was stopped: they count, each other case fails
    saying so, and the problem names the first of them (in the order they run) as the likely endless one."""
    finished = [{**CASES[0], "outcome": "passed", "errors": []}]
    g = _grade_with(monkeypatch, tmp_path, CASES, {"exitstatus": None, "tests": finished}, "tests/t.py .", stopped=True)
    stuck = ("the tests were stopped after 30 seconds; the first case that did not finish, tests/t.py::test_a[2], is "
             "likely one that never ends (an endless loop?)")
    assert (g.score, g.max_score, g.problem) == (5.0, 10.0, stuck)
    assert [(t.nodeid, t.outcome, t.earned, t.errors) for t in g.tests] == [
        ("tests/t.py::test_a[1]", "passed", 5.0, []), ("tests/t.py::test_a[2]", "failed", 0.0, [stuck]),
        ("tests/t.py::test_b", "failed", 0.0, [stuck])]
    # stopped before the tests were collected (an import that never returns): every case fails, out of the maximum
    g = _grade_with(monkeypatch, tmp_path / "early", CASES, None, "", stopped=True)
    why = ("the tests did not run: stopped after 30 seconds, before the tests were collected (an import that never "
           "ends?)")
    assert (g.score, g.max_score, g.problem) == (0.0, 10.0, why + "\n")
    assert all(t.errors == [why] for t in g.tests)
    # stopped once every graded case had finished (in the last teardown, say): each keeps its outcome
    done = [{**c, "outcome": "passed", "errors": []} for c in CASES]
    g = _grade_with(monkeypatch, tmp_path / "late", CASES, {"exitstatus": None, "tests": done}, "", stopped=True)
    assert (g.score, g.max_score) == (10.0, 10.0)
    assert g.problem == "the tests were stopped after 30 seconds, after every graded case had finished"


def test_grade_refuses_a_timeout_that_is_not_positive(tmp_path):
    with pytest.raises(ValueError, match=r"assignments grade: the timeout must be a positive number of seconds, "
                                         r"got 0"):
        grade(2, tmp_path, timeout=0)


def test_grade_refuses_a_case_timeout_that_is_not_positive(tmp_path):
    with pytest.raises(ValueError, match=r"assignments grade: the time limit of a case must be a positive number of "
                                         r"seconds \(or None\), got -1"):
        grade(2, tmp_path, case_timeout=-1)


# ------------------------------------------------------------------ a crash, a case that never ends: real runs, tiny
# a checkout of five graded cases (the instructor's package right), and a copy whose package crashes (a wild read:
# a segmentation fault, as in a C function that one of A7's kernels calls with a wild pointer: native code in the
# graded process, a fault the emulation leaves a crash) or loops forever for
# some k; pytest's --backends, which grading passes, comes from the checkout's conftest.py
FAKE_TESTS = """import pytest

import minitransformer as mt


@pytest.mark.assignment(2, points=10)
def test_before():
    assert mt.kernel(0) == 0


@pytest.mark.assignment(2, points=40)
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_kernel(k):
    assert mt.kernel(k) == k


@pytest.mark.assignment(2, points=50)
def test_after():
    assert mt.kernel(9) == 9
"""
FAKE_PACKAGE = """import ctypes


def kernel(k):
    if k in {crash}:
        ctypes.string_at(0)  # a read at address 0: a segmentation fault
    while k in {loop}:
        pass
    if k in {spawn}:  # a process that would outlive the graded one, then no end
        import subprocess

        with open({pid_file!r}, "w", encoding="utf-8") as f:
            f.write(str(subprocess.Popen(["sleep", "45"]).pid))
        while True:
            pass
    return k
"""


def _crashing(tmp_path, crash=(), loop=(), at_import=False, case_timeout=30, spawn=(), timeout=1800, graded="copy"):
    """grade(2) of a copy whose ``kernel(k)`` crashes for ``k`` in ``crash`` (or on import) and never returns for
    ``k`` in ``loop``, against a checkout of ``FAKE_TESTS``; each run of pytest takes about a second. ``graded``:
    "checkout" grades the checkout against its own tests."""
    root, copy = tmp_path / "checkout", tmp_path / "copy"
    pid_file = str(tmp_path / "spawned.pid")
    for folder, package in ((root, FAKE_PACKAGE.format(crash=(), loop=(), spawn=(), pid_file=pid_file)),
                            (copy, FAKE_PACKAGE.format(crash=tuple(crash), loop=tuple(loop), spawn=tuple(spawn),
                                                       pid_file=pid_file))):
        (folder / "minitransformer").mkdir(parents=True)
        (folder / "minitransformer" / "__init__.py").write_text(
            package + ("\nctypes.string_at(0)\n" if at_import and folder == copy else ""), encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_fake.py").write_text(FAKE_TESTS, encoding="utf-8")
    (root / "tests" / "conftest.py").write_text('def pytest_addoption(parser):\n    parser.addoption("--backends")\n',
                                                encoding="utf-8")
    (root / "setup.cfg").write_text("[tool:pytest]\n", encoding="utf-8")
    return grade(2, tmp_path / graded, source=root, timeout=timeout, case_timeout=case_timeout)


def _outcomes(g) -> dict[str, tuple[str, float]]:
    return {t.nodeid.removeprefix("tests/test_fake.py::"): (t.outcome, t.earned) for t in g.own}


def test_a_grade_by_the_copys_own_tests_says_whose_tests_and_that_it_is_a_self_check(tmp_path, monkeypatch):
    """``grade N .`` run in a copy imports the copy's package, so the copy's own tests and conftest.py graded it (one
    whose hook passes every test gave an all-stub copy 100 / 100), in a table and JSON like a grade's. Every grade
    names the checkout whose tests ran; the copy's own (or another copy's) make it a self-check, not a grade."""
    import importlib

    grading = importlib.import_module("minitransformer.assignments.grade")
    g = _crashing(tmp_path, graded="checkout")  # the student's check of themselves: the copy grades itself
    root = tmp_path / "checkout"
    said = (f"SELF-CHECK, NOT A GRADE: the tests that ran are this copy's own ({root / 'tests'}), which the copy may "
            "have changed, not the course's; the course grades it with `minitransformer assignments grade 2 COPY` run "
            "from its own checkout.")
    assert (g.tests_from, g.problem, g.score) == (str(root), said, 100.0)
    assert json.loads(g.to_json())["tests_from"] == str(root)
    table = format_table(g)
    assert table.splitlines()[1] == f"graded with the tests of {root}  -- the copy's own: A SELF-CHECK, NOT A GRADE"
    assert table.endswith(said)
    (root / "ASSIGNMENT.json").write_text(json.dumps({"assignment": 2, "title": "t", "solution": False}),
                                          encoding="utf-8")
    assert grading._not_the_courses(get(2), tmp_path / "copy", root) == (
        f"NOT A GRADE: the tests that ran are those of {root}, a copy that `assignments build` wrote, not the "
        "course's; grade from the course's checkout.")
    ran = {"exitstatus": 0, "tests": [{**c, "outcome": "passed", "errors": []} for c in CASES]}
    g = _grade_with(monkeypatch, tmp_path / "course", CASES, ran, "")  # the course's checkout (this one) grades
    assert (g.tests_from, g.problem) == (str(ROOT), "")
    assert format_table(g).splitlines()[1] == f"graded with the tests of {ROOT}"


def test_a_case_that_crashes_fails_saying_so_and_the_cases_after_it_keep_their_points(tmp_path):
    """kernel(2) crashes the graded process: that case fails, saying it crashed, why it may have and where; the
    cases after it are run again without it, and pass; the problem holds faulthandler's report from its start."""
    g = _crashing(tmp_path, crash=[2])
    assert _outcomes(g) == {"test_before": ("passed", 10.0), "test_kernel[1]": ("passed", 10.0),
                            "test_kernel[2]": ("failed", 0.0), "test_kernel[3]": ("passed", 10.0),
                            "test_kernel[4]": ("passed", 10.0), "test_after": ("passed", 50.0)}
    error = g.own[2].errors[0]
    assert error.startswith("the tests crashed in this case (") and "\n" not in error, error
    if sys.platform == "linux":
        assert error.startswith("the tests crashed in this case (Segmentation fault: a read or write far outside an "
                                "array?); it was at ctypes/__init__.py:"), error
    assert error.endswith(" in string_at <- minitransformer/__init__.py:6 in kernel <- tests/test_fake.py:14 in "
                          "test_kernel"), error
    assert g.problem.startswith(f"tests/test_fake.py::test_kernel[2]: {error}; the cases not yet run were run again "
                                "without it\n"), g.problem
    assert "Fatal Python error: " in g.problem or "Windows fatal exception: " in g.problem
    assert "_pytest" not in g.problem  # pytest's own frames, the same in every case, are left out
    assert error in " ".join(format_table(g).split())
    copy = tmp_path / "copy"  # the graded runs wrote nothing there (where they were, what faulthandler said)
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")) == ["minitransformer",
                                                                               "minitransformer/__init__.py"]


def test_a_case_that_never_ends_fails_at_its_time_limit_and_the_cases_after_it_keep_their_points(tmp_path):
    g = _crashing(tmp_path, loop=[4], case_timeout=1)
    assert _outcomes(g) == {"test_before": ("passed", 10.0), "test_kernel[1]": ("passed", 10.0),
                            "test_kernel[2]": ("passed", 10.0), "test_kernel[3]": ("passed", 10.0),
                            "test_kernel[4]": ("failed", 0.0), "test_after": ("passed", 50.0)}
    # the loop is `while k in {loop}:` (line 7) and `pass` (line 8): the time limit lands on either
    line = 8 if g.own[4].errors[0:1] and "__init__.py:8 " in g.own[4].errors[0] else 7
    said = (f"this case did not finish in 1 s (too slow, or an endless loop?); it was at "
            f"minitransformer/__init__.py:{line} in kernel <- tests/test_fake.py:14 in test_kernel")
    assert g.own[4].errors == [said]
    assert g.problem.startswith(f"tests/test_fake.py::test_kernel[4]: {said}; the cases not yet run were run again "
                                "without it\nTimeout (0:00:01)!\n"), g.problem
    assert not format_table(g).rstrip().endswith(":")


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_processes_a_case_started_end_with_its_run(tmp_path):
    """A case out of time ends the graded process; a process it started (a sleep) ended too, not left running."""
    g = _crashing(tmp_path, spawn=[4], case_timeout=1)
    assert _outcomes(g)["test_kernel[4]"] == ("failed", 0.0) and _outcomes(g)["test_after"] == ("passed", 50.0)
    pid = int((tmp_path / "spawned.pid").read_text(encoding="utf-8"))
    for _ in range(100):  # ended: gone once reaped by whoever adopted it (a zombie until then)
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists() or stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the sleep the case started, process {pid}, still runs")


def test_time_out_before_a_rerun_says_so_not_that_a_case_never_ends(tmp_path, monkeypatch):
    """A crash with no time left to run the other cases again: they did not run for lack of time, not because the
    first of them never ends (what a run stopped at the timeout says)."""
    import importlib

    clock = iter([0.0])  # the deadline set at 0 s, passed at the crash
    monkeypatch.setattr(importlib.import_module("minitransformer.assignments.grade"), "time",
                        types.SimpleNamespace(monotonic=lambda: next(clock, 1e9)))
    g = _crashing(tmp_path, crash=[2])
    why = "the tests ran out of their 1800 seconds before the cases not yet run could run again"
    assert _outcomes(g)["test_kernel[3]"] == ("failed", 0.0) and g.own[3].errors == [why]
    assert why in g.problem and "never ends" not in g.problem


def test_after_a_case_out_of_time_its_tests_other_cases_run_after_the_others_and_the_reruns_are_bounded(tmp_path,
                                                                                                        monkeypatch):
    """A crash or a case out of time costs that case only: every case not yet run is run again, the other cases of a
    test whose case ran out of time after all the others (they may never end either, costing a rerun and the time
    limit each: the other tests are graded first). After ``RERUNS`` reruns, the cases not yet run fail, saying so."""
    g = _crashing(tmp_path / "a", crash=[1], loop=[2], case_timeout=2)
    assert _outcomes(g) == {"test_before": ("passed", 10.0), "test_kernel[1]": ("failed", 0.0),
                            "test_kernel[2]": ("failed", 0.0), "test_kernel[3]": ("passed", 10.0),
                            "test_kernel[4]": ("passed", 10.0), "test_after": ("passed", 50.0)}
    assert g.own[1].errors[0].startswith("the tests crashed in this case (")
    assert g.own[2].errors[0].startswith("this case did not finish in 2 s (too slow, or an endless loop?)")
    line = 8 if "__init__.py:8 " in g.own[2].errors[0] else 7  # the loop's `while` or its `pass`: either, as above
    assert ("tests/test_fake.py::test_kernel[2]: this case did not finish in 2 s (too slow, or an endless loop?); "
            f"it was at minitransformer/__init__.py:{line} in kernel <- tests/test_fake.py:14 in test_kernel; the "
            "cases not yet run were run again without it, the other cases of its test after all the others\n"
            ) in g.problem, g.problem
    import importlib

    # kernel(3) never ends either: the rerun after kernel(2) runs test_after first, then kernel(3), which is the last
    # rerun's end; kernel(4), which could run, then fails unrun, saying why
    monkeypatch.setattr(importlib.import_module("minitransformer.assignments.grade"), "RERUNS", 1)
    g = _crashing(tmp_path / "b", loop=[2, 3], case_timeout=2)
    assert _outcomes(g) == {"test_before": ("passed", 10.0), "test_kernel[1]": ("passed", 10.0),
                            "test_kernel[2]": ("failed", 0.0), "test_kernel[3]": ("failed", 0.0),
                            "test_kernel[4]": ("failed", 0.0), "test_after": ("passed", 50.0)}
    assert g.own[3].errors[0].startswith("this case did not finish in 2 s")
    assert g.own[4].errors == ["not run: the tests crashed or ran out of time 2 times"]
    assert "; the cases not yet run were not run again: the tests had been run again 1 times\n" in g.problem


def test_the_docs_count_the_runs_of_a_grade_as_the_grader_does():
    """docs/assignments.md said a grade can take "up to 20 times the limit (20 minutes)": with ``RERUNS`` 20 the
    grader gives up at the end of the 21st run that a case ends (the first and its 20 reruns, as the test above shows
    with ``RERUNS`` 1: 2 runs, "2 times"), each costing the limit where a case ran out of time."""
    from minitransformer.assignments.catalog import CASE_TIMEOUT
    from minitransformer.assignments.grade import RERUNS

    text = " ".join((ROOT / "docs" / "assignments.md").read_text(encoding="utf-8").split())
    said = re.search(r"run again at most (\d+) times in one grade .* ran out of time (\d+) times`\. .* take up to "
                     r"(\d+) times the limit \((\d+) minutes: the first run and its (\d+) reruns", text)
    assert said, "docs/assignments.md no longer says how many times a grade runs the tests"
    assert [int(n) for n in said.groups()] == [RERUNS, RERUNS + 1, RERUNS + 1, (RERUNS + 1) * CASE_TIMEOUT // 60,
                                               RERUNS]


def test_each_assignment_gives_its_cases_time_limit_and_case_timeout_overrides_it(tmp_path, monkeypatch):
    """Each case's limit is its assignment's ``case_timeout`` in the catalogue (A2's here, not the others'), unless
    ``grade(case_timeout=...)`` (``--case-timeout``) gives one for all."""
    import dataclasses
    import importlib

    module = importlib.import_module("minitransformer.assignments.grade")
    monkeypatch.setattr(module, "ASSIGNMENTS", tuple(dataclasses.replace(a, case_timeout=2 if a.number == 2 else 1)
                                                     for a in ASSIGNMENTS))
    for case_timeout, limit in ((None, 2), (1, 1)):
        g = _crashing(tmp_path / str(case_timeout), loop=[4], case_timeout=case_timeout, timeout=120)
        assert _outcomes(g)["test_kernel[4]"] == ("failed", 0.0) and _outcomes(g)["test_after"] == ("passed", 50.0)
        assert g.own[4].errors[0].startswith(f"this case did not finish in {limit} s (too slow, or an endless "
                                             "loop?)")
        assert f"\nTimeout (0:00:0{limit})!\n" in g.problem, g.problem  # faulthandler's: the limit it was given


def test_where_a_run_ended_names_the_innermost_frame_and_the_outermost_below_the_test():
    """A7's crash is deep in the emulation: the grade names where it crashed, then the kernel's method and the test;
    pytest's frames are left out, and at a timeout (every thread listed, none current) the thread running the tests
    is the one named."""
    from minitransformer.assignments.grade import _where

    stack = [("/copy/minitransformer/cuda_emulator.py", 717, "_run"),
             ("/copy/minitransformer/cuda_emulator.py", 699, "__call__"),
             ("/copy/minitransformer/kernels.py", 490, "_run"),
             ("/root/tests/test_kernels.py", 143, "_run"),
             ("/copy/minitransformer/kernels.py", 496, "_launch"),
             ("/copy/minitransformer/kernels.py", 511, "softmax_forward"),
             ("/root/tests/test_kernels_a7.py", 187, "test_softmax"),
             ("/venv/site-packages/_pytest/python.py", 187, "pytest_pyfunc_call")]
    frames = "".join(f'  File "{file}", line {line} in {name}\n' for file, line, name in stack)
    where = ("minitransformer/cuda_emulator.py:717 in _run <- ... <- minitransformer/kernels.py:496 in _launch <- "
             "minitransformer/kernels.py:511 in softmax_forward <- tests/test_kernels_a7.py:187 in test_softmax")
    crash = f"Fatal Python error: Segmentation fault\n\nCurrent thread 0x01 (most recent call first):\n{frames}"
    assert _where(crash, Path("/copy"), Path("/root")) == where
    other = 'Thread 0x02 (most recent call first):\n  File "/usr/lib/python3/threading.py", line 320 in wait\n'
    timeout = f"Timeout (0:01:00)!\n{other}Thread 0x01 (most recent call first):\n{frames}"
    assert _where(timeout, Path("/copy"), Path("/root")) == where
    assert _where("", Path("/copy"), Path("/root")) == ""


COLLECT = """import sys
import pytest
status = pytest.main(sys.argv[1:])
print("references from", sys.modules["references"].__file__ if "references" in sys.modules else None)
sys.exit(status)
"""


def test_a_students_own_check_collects_the_copys_graded_tests_with_its_references(copies):
    """In a copy, ``minitransformer assignments grade N .`` (docs/assignments.md, "Check yourself") runs the copy's own
    graded tests with the copy's setup.cfg; they import ``references`` (tests/references.py) by name, which grading
    by an instructor takes from the checkout: here the copy's tests collect with the copy's own."""
    copy = copies(4)[0]
    files = graded_test_files(copy / "tests")
    run = subprocess.run([sys.executable, "-c", COLLECT, *map(str, files), "--collect-only", "-q", "--backends",
                          "numpy", "-p", "no:cacheprovider", "--rootdir", str(copy), "-c", str(copy / "setup.cfg")],
                         capture_output=True, encoding="utf-8", cwd=copy, env={**os.environ,
                                                                                "PYTHONPATH": pythonpath(copy)})
    assert files and run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert f"references from {copy / 'tests' / 'references.py'}" in run.stdout, run.stdout[-3000:]


def test_a_copy_that_crashes_on_import_grades_0_saying_so(tmp_path):
    g = _crashing(tmp_path, at_import=True)
    assert (g.score, g.max_score) == (0.0, 100.0)
    errors = {t.errors[0] for t in g.own}
    assert len(errors) == 1 and errors.pop().startswith("the tests did not run: the tests crashed outside a test "
                                                        "case (")
    assert re.search(r"it was at ctypes/__init__\.py:\d+ in string_at <- minitransformer/__init__\.py:18 in <module> "
                     r"<- tests/test_fake\.py:3 in <module>\n", g.problem), g.problem


ENDLESS = "### BEGIN SOLUTION A2: "


@pytest.mark.slow
def test_a_body_that_never_returns_is_stopped_and_the_cases_that_finished_are_scored(tmp_path):
    """A2's attention loops forever in this copy: grading stops at its timeout, softmax's cases (which run first)
    keep their points, and the first case of attention, where the run was stuck, is named."""
    source = tmp_path / "source"  # the library with attention's body an endless loop: the copy is built from it
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "_build", "_generated",
                                                                "tools"))  # docs/: ASSIGNMENT.md is written from it
    path = source / "minitransformer" / "functional" / "attention.py"
    text = path.read_text(encoding="utf-8")
    marker = text.index(ENDLESS)
    indent = text[text.rindex("\n", 0, marker) + 1:marker]
    path.write_text(text.replace(text[marker:text.index("\n", marker)],
                                 text[marker:text.index("\n", marker)] + f"\n{indent}while True:\n{indent}    pass", 1),
                    encoding="utf-8")
    copy = tmp_path / "a2"
    build(2, copy, source=source, solution=True)
    # the timeout covers starting pytest and collecting the copy's tests too: 10 s was too short on a machine whose
    # two cores ran six processes (load 6.8), where softmax's cases had not all finished
    g = grade(2, copy, source=source, timeout=25)
    outcomes = {t.nodeid: t.outcome for t in g.own}
    softmax = [t for t in g.own if t.nodeid.startswith("tests/test_functional_activations.py::")]
    assert softmax and all(t.outcome in ("passed", "skipped") for t in softmax), outcomes
    unfinished = [t for t in g.own if t.outcome == "failed"]
    first = unfinished[0].nodeid
    assert first.startswith("tests/test_functional_attention.py::"), outcomes
    assert all(t.errors == [g.problem] for t in unfinished)
    assert g.problem.startswith("the tests were stopped after 25 seconds; the first case that did not finish, "
                                f"{first}, is likely one that never ends")
    assert 0 < g.score < g.max_score
    assert "stopped after 25 seconds" in format_table(g)


def test_the_grade_command_exits_1_when_the_tests_did_not_all_run(monkeypatch, tmp_path, capsys):
    import argparse
    import importlib

    commands = importlib.import_module("minitransformer.assignments.commands")
    args = argparse.Namespace(action="grade", number=2, path="copy", json=str(tmp_path / "g.json"), timeout=7,
                              case_timeout=3)
    for problem, status in (("", 0), ("pytest stopped early:\n...", 1)):  # documented in docs/assignments.md
        g = Grade(2, "Softmax", "copy", 5.0, 10.0, [TestResult("tests/t.py::test_a", 2, "passed", 10.0, 5.0)], problem)
        monkeypatch.setattr(commands, "grade", lambda number, path, timeout, case_timeout, g=g: (timeout, case_timeout)
                            == (7, 3) and g)
        assert commands.main(args) == status
        assert json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))["problem"] == problem
    assert "written to " in capsys.readouterr().out
    from minitransformer.cli import build_parser

    parsed = build_parser().parse_args(["assignments", "grade", "2", "--case-timeout", "5"])
    assert (parsed.case_timeout, parsed.timeout) == (5, 1800)
    assert build_parser().parse_args(["assignments", "grade", "2"]).case_timeout is None  # each assignment's own
