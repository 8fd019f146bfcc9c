"""Student copies: assignment N's marked bodies replaced by a stub, every other marked body kept.

A marked body, in a ``.py`` file or a notebook's code cell::

    ### BEGIN SOLUTION A<N>: <hint>
    <the solution>
    ### END SOLUTION

becomes, in assignment N's copy (same indentation)::

    # YOUR CODE HERE
    raise NotImplementedError("A<N>: <hint>")

and, in every other copy, just ``<the solution>``. A body of C++ (the CUDA source in ``kernels.py``) is marked
with ``//`` in place of ``###``, nbgrader's comment for C-like languages::

    // BEGIN SOLUTION A<N>: <hint>
    <the solution>
    // END SOLUTION

and its stub is a call the kernel makes at run time, so that only the kernels that reach it fail (a compile error
would fail them all)::

    // YOUR CODE HERE
    not_implemented("A<N>: <hint>");

Markers are read in the package (but for this
``assignments`` folder, whose docstrings show them) and in the notebooks; the tests are copied as they
are. A copy holds :data:`COPIED` but for the files of :data:`LEFT_OUT` that its assignment does not keep
(:attr:`~minitransformer.assignments.Assignment.keeps`: A7's copy holds the CUDA kernels, its exercise).

The markers are nbgrader's too (its ``generate_assignment`` looks for ``BEGIN SOLUTION`` in a line),
so the repository's notebooks, whose exercise cells carry nbgrader's metadata, go into an nbgrader
course as they are. A built copy is not one of nbgrader's: its cells have lost their markers, and so
they lose nbgrader's metadata too (nbgrader replaces the whole of a solution cell that has no markers).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import handout
from .catalog import get

__all__ = ["regions", "Region", "strip_source", "stripped_lines", "strip_notebook", "check_the_package", "build",
           "source_root", "built_for", "RECORD"]

BEGIN, END, STUB = "### BEGIN SOLUTION", "### END SOLUTION", "# YOUR CODE HERE"
#: the comment that starts a marker in Python (and a notebook) and in C++ (the CUDA source of kernels.py)
COMMENTS = ("###", "//")
_BEGIN = re.compile(r"^(?P<indent>\s*)(?P<comment>###|//) BEGIN SOLUTION A(?P<number>\d+): (?P<hint>\S.*?)\s*$")

#: what a student copy holds as it is, relative to the source checkout -- not tools/ (tools/notebook_sources holds
#: the notebooks' exercises solved), nor the CI's files, nor docs/ as the site's sources (handout.py writes its pages
#: as plain Markdown, and ASSIGNMENT.md); the tests that need them skip in a copy (``@pytest.mark.needs`` in
#: tests/conftest.py)
COPIED = ("minitransformer", "tests", "notebooks", "setup.cfg", "pyproject.toml", "README.md", "LICENSE")
#: the files of COPIED that a copy leaves out (the solution copy too, which holds the same files), and why; an
#: assignment's copy still holds those its entry of the catalogue keeps (Assignment.keeps)
LEFT_OUT = {
    "minitransformer/kernels.py": "its CUDA C++ spells out A2's softmax, A4's layer norm and A5's Adam (each way), "
                                  "and on a GPU the backend would run it in place of the student's code "
                                  "(A7's copy holds it: its exercise, Assignment.keeps)",
    "tests/test_kernels.py": "the tests of minitransformer/kernels.py (A7's copy holds it: it sets the kernels up on "
                             "minitransformer/cuda_emulator.py, every copy's emulation of CUDA, which grades A7)",
    "tests/test_assignments.py": "builds and grades kits from the library's marked bodies; a copy has no markers",
    "tests/stub_each_body.py": "a plugin of tests/test_assignments.py",
    "tests/test_docs.py": "builds and checks the site in docs/, which is not copied",
    "tests/test_tools_mutants.py": "the tests of tools/mutants.py, which is not copied",
    "tests/test_backend_equivalence.py": "the tests of tools/backend_equivalence.py, which is not copied",
}
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
#: the file in which a copy records what it was built for (:func:`built_for`), so that ``assignments grade`` refuses
#: to grade a student copy for another assignment, whose tests its untouched bodies would pass
RECORD = "ASSIGNMENT.json"


@dataclass(frozen=True)
class Region:
    """One marked body: its assignment, its hint, the lines (from 1) of its two markers, and its language."""

    number: int
    hint: str
    begin: int  # the line "### BEGIN SOLUTION A<N>: <hint>"
    end: int  # the line "### END SOLUTION"
    indent: str  # the BEGIN marker's, which the stub takes
    comment: str = "###"  # its markers' comment: "###" for Python, "//" for C++ (a CUDA kernel's body)

    def stub(self, number: int) -> str:
        """The lines that stand for the body in assignment ``number``'s copy, each indented as the marker."""
        message = json.dumps(f"A{number}: {self.hint}")  # a string literal of Python, and of C++ (ASCII escapes)
        call = f"raise NotImplementedError({message})" if self.comment == "###" else f"not_implemented({message});"
        comment = STUB if self.comment == "###" else f"// {STUB[2:]}"
        return f"{self.indent}{comment}\n{self.indent}{call}"


def regions(text: str, where: str = "<source>") -> list[Region]:
    """The marked bodies of ``text``, in order; a malformed or unbalanced marker is refused with its line.

    >>> regions("def f():\\n    ### BEGIN SOLUTION A1: return 1\\n    return 1\\n    ### END SOLUTION\\n")
    [Region(number=1, hint='return 1', begin=2, end=4, indent='    ', comment='###')]
    >>> cuda = "T f() {\\n    // BEGIN SOLUTION A7: f: return 1\\n    return 1;\\n    // END SOLUTION\\n}\\n"
    >>> regions(cuda)[0].comment
    '//'
    """
    found: list[Region] = []
    opened = None  # (line number, match) of the BEGIN not closed yet
    for i, line in enumerate(text.splitlines(), start=1):
        comment = next((c for c in COMMENTS if line.lstrip().startswith(f"{c} BEGIN SOLUTION")
                        or line.lstrip().startswith(f"{c} END SOLUTION")), None)
        if comment is None:
            continue
        begin, end = f"{comment} BEGIN SOLUTION", f"{comment} END SOLUTION"
        if line.lstrip().startswith(begin):
            m = _BEGIN.match(line)
            if m is None:
                raise ValueError(f"{where}:{i}: a solution marker must read '{begin} A<N>: <hint>', "
                                 f"got {line.strip()!r}")
            if opened is not None:
                raise ValueError(f"{where}:{i}: {begin} inside the region opened at line {opened[0]}")
            get(int(m["number"]))  # an assignment that exists
            opened = (i, m)
        else:
            if line.strip() != end:
                raise ValueError(f"{where}:{i}: an end marker must be the line '{end}' alone, got {line.strip()!r}")
            if opened is None:
                raise ValueError(f"{where}:{i}: {end} without a {begin} before it")
            (start, m), opened = opened, None
            if m["comment"] != comment:
                raise ValueError(f"{where}:{i}: {end} closes the region opened at line {start} by "
                                 f"'{m['comment']} BEGIN SOLUTION': one language's markers, both")
            found.append(Region(int(m["number"]), m["hint"], start, i, m["indent"], comment))
    if opened is not None:
        m = opened[1]
        raise ValueError(f"{where}:{opened[0]}: {m['comment']} BEGIN SOLUTION A{m['number']} is never closed by "
                         f"{m['comment']} END SOLUTION")
    return found


def strip_source(text: str, number: int | None, where: str = "<source>") -> tuple[str, int]:
    """``text`` with assignment ``number``'s bodies replaced by stubs and every marker line removed.

    Parameters
    ----------
    text : str
        Python source (a file, or a notebook cell).
    number : int or None
        The assignment whose bodies become stubs; ``None`` keeps every body (the solution copy).
    where : str
        Named in the error for a malformed marker (a file name, a notebook cell).

    Returns
    -------
    text : str
        The stripped source.
    count : int
        How many bodies of assignment ``number`` were replaced (or, for ``None``, how many regions
        there were).

    Examples
    --------
    >>> source = '''def square(x):
    ...     ### BEGIN SOLUTION A1: return x times itself
    ...     return x * x
    ...     ### END SOLUTION
    ... '''
    >>> print(strip_source(source, 1)[0])
    def square(x):
        # YOUR CODE HERE
        raise NotImplementedError("A1: return x times itself")
    <BLANKLINE>
    >>> print(strip_source(source, 2)[0])
    def square(x):
        return x * x
    <BLANKLINE>
    """
    shown = stripped_lines(text, number, where)
    count = sum(1 for r in regions(text, where) if number is None or r.number == number)
    return "".join(line for lines in shown for line in lines), count


def stripped_lines(text: str, number: int | None, where: str = "<source>") -> list[list[str]]:
    """What each line of ``text`` becomes in assignment ``number``'s copy: for line ``i`` (from 1), the lines at
    ``[i - 1]``: itself, none (a marker, a stubbed body's line), or the stub (on the BEGIN marker's line of one of
    assignment ``number``'s bodies). :func:`strip_source` joins them; a page's included code picks some.

    >>> stripped_lines("x = 1\\n### BEGIN SOLUTION A2: y\\ny = 2\\n### END SOLUTION\\n", 2)
    [['x = 1\\n'], ['# YOUR CODE HERE\\n', 'raise NotImplementedError("A2: y")\\n'], [], []]
    """
    lines = text.splitlines(keepends=True)
    shown = [[line] for line in lines]
    for r in regions(text, where):
        shown[r.begin - 1], shown[r.end - 1] = [], []
        if r.number == number:
            newline = "\n" if lines[r.end - 1].endswith("\n") else ""  # the END marker may end the file
            shown[r.begin - 1] = (r.stub(number) + newline).splitlines(keepends=True)
            for i in range(r.begin, r.end - 1):
                shown[i] = []
    return shown


def strip_notebook(notebook: dict, number: int | None, where: str = "<notebook>") -> tuple[dict, int]:
    """A copy of a notebook (its JSON, as a dict) with :func:`strip_source` applied to every code cell.

    A code cell that lost a body also loses its outputs (they would show the solution's results),
    and so do the cells after it in that notebook; a notebook with no stub keeps every output. A cell
    that had markers loses nbgrader's metadata (``"nbgrader"``): nbgrader would take it, without them,
    for a solution cell to replace whole.

    >>> nb = {"cells": [{"cell_type": "code", "source": ["### BEGIN SOLUTION A2: add them\\n", "1 + 1\\n",
    ...        "### END SOLUTION\\n"], "outputs": [{"output_type": "execute_result"}], "execution_count": 1}]}
    >>> stripped, n = strip_notebook(nb, 2)
    >>> n, stripped["cells"][0]["source"], stripped["cells"][0]["outputs"]
    (1, ['# YOUR CODE HERE\\n', 'raise NotImplementedError("A2: add them")\\n'], [])
    """
    notebook = json.loads(json.dumps(notebook))  # a deep copy, still plain JSON
    count = 0
    for k, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        lines = not isinstance(cell["source"], str)  # Jupyter saves a source as a list of lines: kept so
        text = "".join(cell["source"])
        source, n = strip_source(text, number, where=f"{where} cell {k}")
        cell["source"] = source.splitlines(keepends=True) if lines else source
        if source != text:  # its markers are gone: no longer a solution cell for nbgrader
            cell.get("metadata", {}).pop("nbgrader", None)
        count += n
        if number is not None and count:  # this cell or one before it lost a body
            cell["outputs"], cell["execution_count"] = [], None
    return notebook, count


def source_root() -> Path:
    """The checkout this package runs from: the folder holding ``minitransformer/``, ``tests/`` and ``notebooks/``.

    >>> (source_root() / "minitransformer" / "assignments").is_dir()
    True
    """
    root = Path(__file__).resolve().parents[2]
    missing = [name for name in ("tests", "notebooks") if not (root / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"assignments: the package at {root / 'minitransformer'} has no {' or '.join(missing)} beside it; "
            "building and grading need a source checkout (git clone, then pip install -e .)"
        )
    return root


def build(number: int, out, source=None, solution: bool = False) -> dict[str, int]:
    """Write a student copy of the package, its tests and notebooks for assignment ``number`` into ``out``.

    Parameters
    ----------
    number : int
        The assignment whose bodies become ``raise NotImplementedError("A<N>: hint")``.
    out : path
        A folder that does not exist yet, or an empty one.
    source : path, optional
        The checkout to copy (by default the one this package runs from).
    solution : bool
        Keep assignment ``number``'s bodies too: the instructor's copy, the same files with the
        markers removed. Grading it gives full points.

    Returns
    -------
    dict
        File (relative to ``out``) -> number of bodies of this assignment it holds, for the files
        that have any.

    Examples
    --------
    Not run here, since a copy (which runs these examples too) has no markers to build from;
    ``tests/test_assignments.py`` builds every kit:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     stubs = build(2, Path(tmp) / "a2")
    ...     text = (Path(tmp) / "a2" / "minitransformer" / "functional" / "attention.py").read_text(encoding="utf-8")
    >>> 'raise NotImplementedError("A2: ' in text, sorted(stubs)[0]  # doctest: +SKIP
    (True, 'minitransformer/autograd/fused.py')
    """
    assignment = get(number)
    root = Path(source) if source is not None else source_root()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"assignments build: {out} exists and is not empty; give a new folder")
    if not _has_markers(root):
        raise ValueError(f"assignments build: {root} has no marked bodies ({BEGIN} ...): it is a copy that "
                         "`assignments build` wrote; build from the library's repository")
    if not (root / "docs" / "assignments.md").is_file():  # ASSIGNMENT.md is written from its section
        raise FileNotFoundError(f"assignments build: {root} has no docs/assignments.md, which the copy's ASSIGNMENT.md "
                                "is written from; build from the library's repository (git clone)")
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        path = root / name
        if path.is_dir():
            shutil.copytree(path, out / name, ignore=_ignore(root, assignment.keeps))
        elif path.is_file():
            shutil.copy2(path, out / name)
    stubs: dict[str, int] = {}
    marked = [p for p in sorted((out / "minitransformer").rglob("*.py")) if "assignments" not in p.parts]
    for path in marked + sorted((out / "notebooks").glob("*.ipynb")):
        rel = path.relative_to(out).as_posix()
        text = path.read_text(encoding="utf-8")
        notebook = path.suffix == ".ipynb"
        if "BEGIN SOLUTION" not in text and not notebook:  # Python's markers or C++'s
            continue
        strip, data = (strip_notebook, json.loads(text)) if notebook else (strip_source, text)
        new, n = strip(data, assignment.number, where=rel)  # n: this assignment's bodies in the file
        if solution:
            new, _ = strip(data, None, where=rel)  # the same file with every body kept
        if notebook:
            new = notebook_json(check_the_package(new))
        path.write_text(new, encoding="utf-8")
        if n:
            stubs[rel] = n
    _check_layout(assignment, stubs)
    shown = None if solution else assignment.number  # the assignment whose bodies the pages' code shows as stubs
    handout.copy_docs(root, out, shown)
    page = handout.assignment_page(root, out, assignment.number, stubs, solution)
    (out / handout.ASSIGNMENT).write_text(page, encoding="utf-8")
    handout.rewrite_links(out, root, shown)
    _note_in_readme(out / "README.md", assignment)
    record = {"assignment": assignment.number, "title": assignment.title, "solution": solution}
    (out / RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return stubs


def built_for(copy) -> dict | None:
    """What ``copy``'s :data:`RECORD` says it was built for, ``{"assignment": N, "title": ..., "solution": bool}``;
    None for a folder without one (a copy built before it was written, the repository)."""
    path = Path(copy) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return {"assignment": int(record["assignment"]), "title": str(record["title"]),
                "solution": bool(record["solution"])}
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"assignments: {path}, which `assignments build` wrote to say what the copy is for, cannot "
                         f"be read ({type(e).__name__}: {e}); delete it to use the copy anyway") from e


#: the line of a notebook's first cell after which :func:`check_the_package` puts its check (a comment after it, or
#: no newline, as a cell's last line, alike)
IMPORT = "import minitransformer as mt"
#: what stops a copy's notebook run with another minitransformer (the course's, installed in the same environment),
#: whose bodies, not the student's, would make every cell pass
PACKAGE_CHECK = """\
# added by `minitransformer assignments build`: this copy's package (../minitransformer), not another one
import pathlib
if pathlib.Path(mt.__file__).resolve().parent not in {pathlib.Path(p).resolve() for p in ("../minitransformer",
                                                                                         "minitransformer")}:
    raise ImportError(f"this notebook imported minitransformer from {pathlib.Path(mt.__file__).parent}, not from "
                      "this copy's ../minitransformer: its cells would run that package's bodies, not yours. In the "
                      "copy, pip install -e . then restart the kernel; run the notebook from the copy's notebooks/")
"""


def check_the_package(notebook: dict) -> dict:
    """``notebook`` (its JSON) with :data:`PACKAGE_CHECK` after the first :data:`IMPORT` of its first code cell that
    has one: the notebook stops there, saying so, when the kernel imports a ``minitransformer`` other than the copy's
    (the course's, installed in the same environment). A notebook without that import is left as it is.

    >>> nb = {"cells": [{"cell_type": "code", "source": ["import minitransformer as mt\\n", "mt.__version__"]}]}
    >>> print("".join(check_the_package(nb)["cells"][0]["source"]))  # doctest: +ELLIPSIS
    import minitransformer as mt
    # added by `minitransformer assignments build`: this copy's package (../minitransformer), not another one
    import pathlib
    if pathlib.Path(mt.__file__).resolve().parent not in {pathlib.Path(p).resolve() for p in ("../minitransformer",
    ...
    mt.__version__
    """
    for cell in notebook.get("cells", []):
        lines = cell["source"] if isinstance(cell["source"], list) else cell["source"].splitlines(keepends=True)
        at = next((i for i, line in enumerate(lines) if line.split("#")[0].strip() == IMPORT), None)
        if cell.get("cell_type") == "code" and at is not None:
            check = PACKAGE_CHECK.splitlines(keepends=True)
            lines = [*lines[:at], lines[at].rstrip("\n") + "\n", *check, *lines[at + 1:]]
            cell["source"] = lines if isinstance(cell["source"], list) else "".join(lines)
            break
    return notebook


def notebook_json(notebook: dict) -> str:
    """The text of a copy's notebook file (its JSON): as Jupyter writes it, one space an indent, non-ASCII kept.

    >>> print(notebook_json({"cells": [], "metadata": {"title": "Père"}}), end="")
    {
     "cells": [],
     "metadata": {
      "title": "Père"
     }
    }
    """
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _note_in_readme(readme: Path, assignment) -> None:
    """Say under the README's title what the copy is, and point to its ASSIGNMENT.md (the README names the
    instructors' docs/assignments.md and tools/, which it does not hold)."""
    if not readme.is_file():
        return
    title, _, rest = readme.read_text(encoding="utf-8").partition("\n")
    page = handout.ASSIGNMENT
    note = (f"> **A copy for assignment {assignment.tag}, {assignment.title}** (`minitransformer assignments build "
            f"{assignment.number}`). **Start with [{page}]({page})**: what to write, in which files and "
            "order, the formulas to read, the points of each test and how to check yourself "
            f"(`minitransformer assignments grade {assignment.number} .`). The copy holds the package, its tests, its "
            "notebooks and the documentation's pages (`docs/`, the formulas in `docs/formulas/`); a link or a path "
            f"below to what the copy does not hold (the tools, the instructors' page) says `({handout.ELSEWHERE})`.\n")
    readme.write_text(f"{title}\n\n{note}{rest}", encoding="utf-8")


def _ignore(root: Path, keeps: tuple[str, ...] = ()):
    """A ``copytree`` ignore of the files under ``root`` that the copy does not hold: :data:`LEFT_OUT` but for
    ``keeps``, caches."""
    left_out = set(LEFT_OUT) - set(keeps)

    def ignore(folder, names):
        here = Path(folder).relative_to(root)
        return set(_IGNORED(folder, names)) | {n for n in names if (here / n).as_posix() in left_out}

    return ignore


def _has_markers(root: Path) -> bool:
    """Whether the package in ``root`` has a marked body (a copy has none)."""
    files = (root / "minitransformer").rglob("*.py")
    return any(BEGIN in p.read_text(encoding="utf-8") for p in files if "assignments" not in p.parts)  # (Python's)


def _check_layout(assignment, stubs: dict[str, int]) -> None:
    """Every file and notebook the catalogue names for this assignment holds one of its bodies."""
    expected = assignment.paths
    missing = [f for f in expected if f not in stubs]
    extra = [f for f in stubs if f not in expected]
    if missing or extra:
        raise ValueError(
            f"assignments: {assignment.tag}'s markers do not match the catalogue (minitransformer/assignments/"
            f"catalog.py): no {assignment.tag} body in {missing}; {assignment.tag} bodies outside it in {extra}"
        )

