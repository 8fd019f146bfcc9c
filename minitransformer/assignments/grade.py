"""Grading: run an assignment's tests against a copy of the package and score them.

The tests are the instructor's (the checkout this package runs from), not the copy's, so a
student cannot grade themselves by editing a test; the package they test is the copy's. They run
in a fresh Python (a subprocess, :mod:`~minitransformer.assignments.runner`) that takes
``minitransformer`` from the copy and nothing else, on NumPy only. The cases to score are collected
meanwhile in another one, with the instructor's package: a case the graded run does not report
counts as failed.

Points: a test function marked ``@pytest.mark.assignment(N, points=P)`` is worth ``P``, shared
equally by its parametrised cases. A case that is skipped here (PyTorch is not installed, say)
counts neither for nor against: it is left out of the maximum, and the grade says so (its points are
:attr:`Grade.skipped_points`, the table names why and what to install).

A run that does not end within its timeout (a body that loops forever) is stopped: the cases that
finished are scored, the others fail, and :attr:`Grade.problem` names the first of them, the likely
one that never ends.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import cuda_emulator
from .catalog import get
from .strip import source_root

__all__ = ["grade", "Grade", "TestResult", "format_table", "pythonpath"]


@dataclass
class TestResult:
    """One graded test case: its outcome, the points it earned of the points it is worth.

    ``points`` is what the case counts for in :attr:`Grade.max_score`: its ``worth``, or 0 when it was
    skipped; ``worth`` is its share of its test function's points, whatever its outcome (given as ``points``
    when left out).

    Attributes
    ----------
    nodeid : str
        pytest's id of the case, ``path::function[parameters]``.
    assignment : int
        ``N`` of the assignment ``A<N>`` the case is graded for.
    outcome : str
        ``"passed"``, ``"failed"`` or ``"skipped"``.
    points : float
        What the case counts for in the maximum: its ``worth``, 0 when it was skipped.
    earned : float
        The points it earned: its ``worth`` when it passed, else 0.
    errors : list of str
        The exception and those it came from, outermost first; empty when it passed.
    worth : float
        Its share of its test function's points, skipped or not.

    Examples
    --------
    >>> t = TestResult("tests/test_optim.py::test_noam_lr_hand_values[numpy]", 5, "failed", 15.0, 0.0,
    ...                ["NotImplementedError: A5: lrate = ..."])
    >>> t.earned, t.points, t.worth
    (0.0, 15.0, 15.0)
    >>> TestResult("tests/t.py::test_torch", 5, "skipped", 0.0, 0.0, ["Skipped: no torch"], worth=5.0).worth
    5.0
    """

    nodeid: str
    assignment: int
    outcome: str  # passed | failed | skipped
    points: float  # what it counts for in the maximum: its worth, 0 when skipped
    earned: float
    errors: list[str] = field(default_factory=list)  # the exception and those it came from, outermost first
    worth: float | None = None  # its share of its test function's points, skipped or not (None: points)

    __test__ = False  # not a pytest test class, despite the name

    def __post_init__(self):
        if self.worth is None:
            self.worth = self.points


@dataclass
class Grade:
    """The grade of one assignment on one copy of the package.

    Attributes
    ----------
    assignment : int
        ``N`` of ``A<N>``.
    title : str
        The assignment's title (:attr:`Assignment.title`).
    path : str
        The copy that was graded.
    score : float
        Points earned.
    max_score : float
        Points possible. Skipped cases are left out of it.
    tests : list of TestResult
        Every graded test case, in the order they were collected.
    problem : str
        Why the tests did not run, or not all of them (a copy that does not import, say: every case then
        fails); empty when they ran.
    skipped_points : float
        The points of this assignment's cases that were skipped here (PyTorch's comparisons, without
        PyTorch; A7's kernels, without g++), so not graded: ``max_score + skipped_points`` is the assignment's
        full 100. Each skipped case's share is its :attr:`TestResult.worth`.

    Examples
    --------
    >>> g = Grade(2, "Softmax", "student-a2", 0.0, 5.0,
    ...           [TestResult("tests/t.py::test_a", 2, "failed", 5.0, 0.0, ["NotImplementedError: A2: ..."])])
    >>> print(format_table(g))
    A2: Softmax  (student-a2)
    <BLANKLINE>
    test                         points  outcome
    --------------------------------------------
    tests/t.py::test_a    0.00 /   5.00  failed
        NotImplementedError: A2: ...
    --------------------------------------------
    total                 0.00 /   5.00
    """

    assignment: int
    title: str
    path: str
    score: float
    max_score: float
    tests: list[TestResult]
    problem: str = ""
    skipped_points: float = 0.0

    @property
    def own(self) -> list[TestResult]:
        """The graded cases of this assignment (:attr:`tests` may hold other assignments' too)."""
        return [t for t in self.tests if t.assignment == self.assignment]

    def to_json(self) -> str:
        """The grade as JSON: ``{"assignment", "title", "path", "score", "max_score", "tests": [...], "problem",
        "skipped_points"}``."""
        return json.dumps(asdict(self), indent=1)


def _score(expected: list[dict], reported: list[dict], unreported: str = "the test run did not report this case"
           ) -> tuple[list[TestResult], list[str]]:
    """Each expected case scored by its reported outcome (failed, with the error ``unreported``, when it is not
    reported), and the reported cases that were not expected (left unscored)."""
    outcomes = {t["nodeid"]: t for t in reported}
    cases = Counter(t["function"] for t in expected)
    missing = {"outcome": "failed", "errors": [unreported]}
    results = []
    for t in expected:
        got = outcomes.get(t["nodeid"], missing)
        worth = t["points"] / cases[t["function"]]
        earned = worth if got["outcome"] == "passed" else 0.0
        counted = 0.0 if got["outcome"] == "skipped" else worth  # a skipped case leaves the maximum
        results.append(TestResult(t["nodeid"], t["assignment"], got["outcome"], counted, earned, got["errors"], worth))
    return results, sorted(set(outcomes) - {t["nodeid"] for t in expected})


def _grade_of(assignment, copy: Path, tests: list[TestResult], problem: str) -> Grade:
    """The grade of ``assignment`` from its scored cases (``tests`` may hold other assignments' too)."""
    mine = [t for t in tests if t.assignment == assignment.number]
    skipped = sum(t.worth for t in mine if t.outcome == "skipped")
    return Grade(assignment.number, assignment.title, str(copy), round(sum(t.earned for t in mine), 6),
                 round(sum(t.points for t in mine), 6), tests, problem, float(round(skipped, 6)))


def _why_not_run(output: str) -> str:
    """The error that stopped the tests before any ran, from pytest's output: its last ``E   ...Error: ...`` line."""
    errors = [line[1:].strip() for line in output.splitlines() if re.match(r"E\s+\w*(Error|Exception)\b", line)]
    places = re.findall(r'^E\s+File "(.+)", line (\d+)', output, flags=re.M)  # where a SyntaxError is
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    why = errors[-1] if errors else (lines[-1] if lines else "no output")
    return why + (f" ({places[-1][0]}, line {places[-1][1]})" if places else "")


def graded_test_files(tests: Path) -> list[Path]:
    """The test files that hold a graded test (those that say ``mark.assignment``)."""
    return sorted(p for p in tests.glob("test_*.py") if "mark.assignment" in p.read_text(encoding="utf-8"))


def pythonpath(*first) -> str:
    """A ``PYTHONPATH`` with the folders ``first`` ahead of the one already set.

    The one already set is kept behind them: it may be how this Python finds its packages (``pip install
    --target``), and a folder ahead of it wins. For running a copy by hand (a notebook, a script) with the
    student's package imported; :func:`~minitransformer.assignments.grade` itself goes through ``runner.py``,
    which takes only the package from the copy.

    >>> import os
    >>> pythonpath("/copy").split(os.pathsep)[0]
    '/copy'
    """
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([*map(str, first), *kept])


def grade(number, path=".", numbers=None, source=None, timeout: float = 1800) -> Grade:
    """Run assignment ``number``'s tests on the package in ``path`` and score them.

    Parameters
    ----------
    number : int
        The assignment.
    path : path
        A copy made by :func:`~minitransformer.assignments.build` (and worked on), or any folder
        holding a ``minitransformer`` package.
    numbers : str, optional
        Run the tests of these assignments instead (``"1,2"`` or ``"all"``) -- the grade still counts
        assignment ``number``'s only; :attr:`Grade.tests` holds them all (the self-test of the
        kits uses this to check the other assignments in the same run).
    source : path, optional
        The checkout whose tests grade (by default the one this package runs from).
    timeout : float
        Seconds the tests may run. A run still going then is stopped: the cases it finished are
        scored, the others fail, and :attr:`Grade.problem` names the first of them (likely a body
        that never returns).

    Returns
    -------
    Grade

    Examples
    --------
    The solution (this checkout) earns every point:

    >>> g = grade(5, numbers="5")  # doctest: +SKIP
    >>> g.score == g.max_score  # doctest: +SKIP
    True
    """
    assignment = get(number)
    if not timeout > 0:
        raise ValueError(f"assignments grade: the timeout must be a positive number of seconds, got {timeout!r}")
    if importlib.util.find_spec("pytest") is None:
        raise ModuleNotFoundError("assignments grade: grading runs the tests with pytest, which is not installed; "
                                  'install the test tools with: pip install -e ".[dev]"')
    root = Path(source) if source is not None else source_root()
    copy = Path(path).resolve()
    if not (copy / "minitransformer" / "__init__.py").is_file():
        raise FileNotFoundError(f"assignments grade: {copy} holds no minitransformer package "
                                "(give the folder that `assignments build` wrote)")
    args = [*map(str, graded_test_files(root / "tests")), "--assignment", numbers or str(assignment.number),
            "--backends", "numpy", "-p", "no:cacheprovider", "--rootdir", str(root), "-c", str(root / "setup.cfg"),
            "-q", "--no-header", "-rN", "--tb=line"]
    with tempfile.TemporaryDirectory(prefix="mt-grade-") as tmp, ThreadPoolExecutor(1) as pool:
        # the cases to score, collected meanwhile from the instructor's package: no student code runs there
        expected = pool.submit(_pytest, root, [*args, "--collect-only"], Path(tmp) / "expected.json", timeout)
        data, output, stopped = _pytest(copy, args, Path(tmp) / "results.json", timeout)
        collected, collect_output, collection_stopped = expected.result()
    if collected is None:
        why = (f"collecting them took longer than the time limit, {timeout:g} s (a busy machine? give more with "
               "--timeout)" if collection_stopped else collect_output[-3000:])
        raise RuntimeError(f"assignments grade: the graded tests of {root} could not be collected:\n{why}")
    if data is None:  # the copy does not import, say: every case fails, out of the assignment's maximum
        why = (f"stopped after {timeout:g} seconds, before the tests were collected (an import that never ends?)"
               if stopped else _why_not_run(output))
        tests, _ = _score(collected["collected"], [], unreported=f"the tests did not run: {why}")
        said = f"the tests did not run: {why}" if stopped else "the tests did not run:"  # (pytest's output says why)
        return _grade_of(assignment, copy, tests, f"{said}\n{output[-3000:]}")
    package = Path(data["package"]).resolve()
    if copy not in package.parents:
        raise RuntimeError(f"assignments grade: the tests imported minitransformer from {package}, not from {copy}")
    if stopped:  # the cases that finished are scored; each of the others fails, saying where the run was stuck
        done = {t["nodeid"] for t in data["tests"]}
        problem = _stopped(timeout, next((t["nodeid"] for t in collected["collected"] if t["nodeid"] not in done),
                                         None))
        tests, unexpected = _score(collected["collected"], data["tests"], unreported=problem)
    else:
        tests, unexpected = _score(collected["collected"], data["tests"])
        problem = "" if data["exitstatus"] in (0, 1) else "pytest stopped early:\n" + output[-3000:]
    if unexpected:
        problem += f"\nthe test run reported cases that were not collected (not scored): {unexpected[:10]}"
    return _grade_of(assignment, copy, tests, problem.strip())


def _stopped(timeout: float, first: str | None) -> str:
    """What a run stopped at its ``timeout`` says: ``first``, the first graded case it did not finish (in the order
    they run), is where it was likely stuck; None when it had finished them all."""
    said = f"the tests were stopped after {timeout:g} seconds"
    if first is None:
        return f"{said}, after every graded case had finished"
    return f"{said}; the first case that did not finish, {first}, is likely one that never ends (an endless loop?)"


def _pytest(folder: Path, args: list[str], results: Path, timeout: float) -> tuple[dict | None, str, bool]:
    """Run pytest with ``args`` and the grader's plugin, ``minitransformer`` taken from ``folder``, for at most
    ``timeout`` seconds: the JSON the plugin wrote (None if it wrote none; what it had written so far if the
    run was stopped), pytest's output, and whether the run was stopped at the timeout."""
    env = {k: v for k, v in os.environ.items() if k != "MINITRANSFORMER_BACKEND"}
    env["MPLBACKEND"] = "Agg"
    # -I: isolated mode, so nothing in the copy (a sitecustomize.py, a pytest.py) runs before the runner;
    # -B: no __pycache__ written into the copy (-I ignores PYTHONDONTWRITEBYTECODE);
    # -X utf8: pytest's output in UTF-8, read as such here, whatever the locale (Windows' cp1252 lacks the
    # formulas' characters; -I ignores PYTHONIOENCODING)
    command = [sys.executable, "-I", "-B", "-X", "utf8", str(Path(__file__).with_name("runner.py")), str(folder),
               *args, "--grade-json", str(results)]
    try:
        run = subprocess.run(command, cwd=results.parent, env=env, capture_output=True, encoding="utf-8",
                             errors="replace", timeout=timeout)
        output, stopped = run.stdout + run.stderr, False
    except subprocess.TimeoutExpired as e:  # killed; on POSIX its output so far comes as bytes, even in text mode
        output = "".join(b.decode(errors="replace") if isinstance(b, bytes) else b for b in (e.stdout, e.stderr) if b)
        stopped = True
    return (json.loads(results.read_text(encoding="utf-8")) if results.is_file() else None), output, stopped


#: what to install when the skipped cases are PyTorch's comparisons (the version CI uses)
TORCH_INSTALL = "pip install torch==2.13.0"
#: what to install when the skipped cases are A7's kernels, run on the CPU under the emulation of CUDA (g++)
GXX_INSTALL = cuda_emulator.INSTALL


def reason(error: str, limit: int = 400) -> str:
    """A failed case's error on one line, with the point kept: for NumPy's ``assert_allclose`` (whose first line
    is only ``AssertionError:``) the test's message, the mismatches and the largest difference; for pytest's
    ``assert`` the comparison and what it was computed from.

    >>> error = ("AssertionError: \\nNot equal to tolerance rtol=1e-12, atol=0\\nlayer_norm(x, eps=3)\\n"
    ...          "Mismatched elements: 2 / 2 (100%)\\nMismatch at indices:\\n [0, 0]: -0.25 (ACTUAL), -0.5 (DESIRED)\\n"
    ...          " [0, 1]: 0.25 (ACTUAL), 0.5 (DESIRED)\\nMax absolute difference among violations: 0.25\\n"
    ...          " ACTUAL: array([[-0.25,  0.25]])\\n DESIRED: array([[-0.5,  0.5]])")
    >>> print(reason(error))  # doctest: +NORMALIZE_WHITESPACE
    AssertionError: Not equal to tolerance rtol=1e-12, atol=0; layer_norm(x, eps=3); mismatched 2 / 2 (100%);
    first [0, 0]: -0.25 (ACTUAL), -0.5 (DESIRED); max absolute difference 0.25
    """
    name, _, first = error.partition("\n")[0].partition(": ")
    rest = [line.rstrip() for line in error.splitlines()[1:]]
    parts = [first.strip()] if first.strip() else []
    if any(line.startswith("Mismatched elements:") for line in rest):  # numpy.testing's message
        mismatch_list = False
        for line in rest:
            if line.startswith((" ACTUAL:", " x:")):  # the two arrays, to the end
                break
            if line.startswith(" "):  # the mismatches, one a line: the first only
                if mismatch_list and line.lstrip().startswith("["):
                    parts.append("first " + line.strip())
                mismatch_list = False
            elif line.startswith("Mismatched elements:"):
                parts.append("mismatched " + line.split(":", 1)[1].strip())
            elif line.startswith(("Mismatch at ind", "First ")) and line.endswith(":"):
                mismatch_list = True
            elif line.startswith("Max absolute difference"):
                parts.append("max absolute difference " + line.split(":", 1)[1].strip())
            elif line.strip() and not line.startswith("Max relative difference"):
                parts.append(line.strip())  # the kind of comparison, the test's own message
    else:  # any other error, or pytest's assert: its comparison, then "+ where" lines saying what was compared
        lines = [" ".join(line.split()) for line in rest if line.strip()]
        parts += [line for line in lines if not line.startswith("+")][:2 - len(parts)]
        parts += [line for line in lines if line.startswith("+")][:1]
    parts = [p if len(p) <= 200 else p[:197] + "..." for p in parts]
    text = f"{name}: " + "; ".join(parts) if name else "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def format_table(g: Grade) -> str:
    """The grade as a table: one row per test case, points earned of points possible, and under a case that did
    not pass, why (``reason``); then the total, and the points that could not be graded here and why.

    >>> g = Grade(1, "Autograd", "student-a1", 3.0, 3.0, [TestResult("tests/t.py::test_a", 1, "passed", 3.0, 3.0)])
    >>> print(format_table(g))
    A1: Autograd  (student-a1)
    <BLANKLINE>
    test                         points  outcome
    --------------------------------------------
    tests/t.py::test_a    3.00 /   3.00  passed
    --------------------------------------------
    total                 3.00 /   3.00
    """
    mine = g.own
    width = max([len(t.nodeid) for t in mine] + [4])
    wrap = max(shutil.get_terminal_size((120, 24)).columns, 100)
    lines = [f"A{g.assignment}: {g.title}  ({g.path})", "",
             f"{'test':<{width}}  {'points':>15}  outcome", "-" * (width + 26)]
    for t in mine:
        lines.append(f"{t.nodeid:<{width}}  {t.earned:6.2f} / {t.points:6.2f}  {t.outcome}")
        if t.errors and t.outcome != "passed":
            lines += textwrap.wrap(reason(t.errors[0]), wrap, initial_indent="    ", subsequent_indent="      ",
                                   break_on_hyphens=False)
    lines += ["-" * (width + 26), f"{'total':<{width}}  {g.score:6.2f} / {g.max_score:6.2f}"]
    if g.skipped_points:
        lines += ["", *_not_graded(g)]
    if g.problem:
        lines += ["", g.problem]
    return "\n".join(lines)


def _not_graded(g: Grade) -> list[str]:
    """The loud note under the total when cases were skipped: how many points, why, and what to install."""
    skipped = [t for t in g.own if t.outcome == "skipped"]
    why = sorted({(t.errors or ["skipped"])[0].removeprefix("Skipped: ") for t in skipped})
    full = g.max_score + g.skipped_points
    cases, were = (f"{len(skipped)} cases", "were") if len(skipped) != 1 else ("1 case", "was")
    lines = [f"NOT GRADED HERE: {cases} worth {g.skipped_points:.2f} of the assignment's {full:.2f} "
             f"points {were} skipped on this machine; the maximum above ({g.max_score:.2f}) leaves them out.",
             *(f"  skipped: {w}" for w in why)]
    if any("torch" in w for w in why):
        lines.append(f"  They compare with PyTorch, which is not installed here. To grade out of {full:.2f}, install "
                     f"it and grade again: {TORCH_INSTALL}")
    if any("g++" in w for w in why):
        lines.append(f"  They run the CUDA kernels on the CPU under an emulation of CUDA, which needs g++ (and Linux). "
                     f"To grade out of {full:.2f}, grade on such a machine with g++: {GXX_INSTALL}")
    return lines
