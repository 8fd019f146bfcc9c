"""Grading: run an assignment's tests against a copy of the package and score them.

The tests are the instructor's (the checkout this package runs from), not the copy's, so a
student cannot grade themselves by editing a test; the package they test is the copy's. They run
in a fresh Python (a subprocess, :mod:`~minitransformer.assignments.runner`) that takes
``minitransformer`` from the copy and nothing else, on NumPy only. The cases to score are collected
meanwhile in another one, with the instructor's package: a case the graded run does not report
counts as failed.

Points: a test function marked ``@pytest.mark.assignment(N, points=P)`` is worth ``P``, shared
equally by its parametrised cases. A case that is skipped here (PyTorch is not installed, say)
counts neither for nor against: it leaves the maximum.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .catalog import get
from .strip import source_root

__all__ = ["grade", "Grade", "TestResult", "format_table", "pythonpath"]


@dataclass
class TestResult:
    """One graded test case: its outcome, the points it earned of the points it is worth.

    Examples
    --------
    >>> t = TestResult("tests/test_optim.py::test_noam_lr_hand_values[numpy]", 5, "failed", 15.0, 0.0,
    ...                ["NotImplementedError: A5: lrate = ..."])
    >>> t.earned, t.points
    (0.0, 15.0)
    """

    nodeid: str
    assignment: int
    outcome: str  # passed | failed | skipped
    points: float  # what it is worth
    earned: float
    errors: list[str] = field(default_factory=list)  # the exception and those it came from, outermost first

    __test__ = False  # not a pytest test class, despite the name


@dataclass
class Grade:
    """The grade of one assignment on one copy of the package.

    Attributes
    ----------
    assignment : int
        ``N`` of ``A<N>``.
    path : str
        The copy that was graded.
    score, max_score : float
        Points earned, points possible (skipped tests left out).
    tests : list of TestResult
        Every graded test case, in the order they were collected.
    problem : str
        Why nothing could be graded (a syntax error in the copy, say); empty when the tests ran.

    Examples
    --------
    >>> g = Grade(2, "Softmax", "student-a2", 0.0, 5.0,
    ...           [TestResult("tests/t.py::test_a", 2, "failed", 5.0, 0.0, ["NotImplementedError: A2: ..."])])
    >>> print(format_table(g))
    A2: Softmax  (student-a2)
    <BLANKLINE>
    test                         points  outcome
    --------------------------------------------
    tests/t.py::test_a    0.00 /   5.00  failed  NotImplementedError: A2: ...
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

    @property
    def own(self) -> list[TestResult]:
        """The graded cases of this assignment (:attr:`tests` may hold other assignments' too)."""
        return [t for t in self.tests if t.assignment == self.assignment]

    def to_json(self) -> str:
        """The grade as JSON: ``{"assignment", "title", "path", "score", "max_score", "tests": [...], "problem"}``."""
        return json.dumps(asdict(self), indent=1)


def _score(expected: list[dict], reported: list[dict]) -> tuple[list[TestResult], list[str]]:
    """Each expected case scored by its reported outcome (failed when it is not reported), and the reported
    cases that were not expected (left unscored)."""
    outcomes = {t["nodeid"]: t for t in reported}
    cases = Counter(t["function"] for t in expected)
    missing = {"outcome": "failed", "errors": ["the test run did not report this case"]}
    results = []
    for t in expected:
        got = outcomes.get(t["nodeid"], missing)
        worth = t["points"] / cases[t["function"]]
        earned = worth if got["outcome"] == "passed" else 0.0
        worth_here = 0.0 if got["outcome"] == "skipped" else worth  # a skipped case leaves the maximum
        results.append(TestResult(t["nodeid"], t["assignment"], got["outcome"], worth_here, earned, got["errors"]))
    return results, sorted(set(outcomes) - {t["nodeid"] for t in expected})


def graded_test_files(tests: Path) -> list[Path]:
    """The test files that hold a graded test (those that say ``mark.assignment``)."""
    return sorted(p for p in tests.glob("test_*.py") if "mark.assignment" in p.read_text(encoding="utf-8"))


def pythonpath(*first) -> str:
    """A ``PYTHONPATH`` with the folders ``first`` ahead of the one already set.

    The one already set is kept behind them: it may be how this Python finds its packages (``pip install
    --target``), and a folder ahead of it wins. For running a copy by hand (a notebook, a script) with the
    student's package imported; :func:`grade` itself goes through ``runner.py``, which takes only the package
    from the copy.

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
        data, output = _pytest(copy, args, Path(tmp) / "results.json", timeout)
        collected, collect_output = expected.result()
    if collected is None:
        raise RuntimeError(f"assignments grade: the graded tests of {root} could not be collected:\n"
                           + collect_output[-3000:])
    if data is None:
        return Grade(assignment.number, assignment.title, str(copy), 0.0, 0.0, [],
                     problem="the tests did not run:\n" + output[-3000:])
    package = Path(data["package"]).resolve()
    if copy not in package.parents:
        raise RuntimeError(f"assignments grade: the tests imported minitransformer from {package}, not from {copy}")
    tests, unexpected = _score(collected["collected"], data["tests"])
    mine = [t for t in tests if t.assignment == assignment.number]
    problem = "" if data["exitstatus"] in (0, 1) else "pytest stopped early:\n" + output[-3000:]
    if unexpected:
        problem += f"\nthe test run reported cases that were not collected (not scored): {unexpected[:10]}"
    return Grade(assignment.number, assignment.title, str(copy), round(sum(t.earned for t in mine), 6),
                 round(sum(t.points for t in mine), 6), tests, problem.strip())


def _pytest(folder: Path, args: list[str], results: Path, timeout: float) -> tuple[dict | None, str]:
    """Run pytest with ``args`` and the grader's plugin, ``minitransformer`` taken from ``folder``: the JSON
    the plugin wrote (None if it wrote none) and pytest's output."""
    env = {k: v for k, v in os.environ.items() if k != "MINITRANSFORMER_BACKEND"}
    env["MPLBACKEND"] = "Agg"
    # -I: isolated mode, so nothing in the copy (a sitecustomize.py, a pytest.py) runs before the runner
    command = [sys.executable, "-I", str(Path(__file__).with_name("runner.py")), str(folder), *args,
               "--grade-json", str(results)]
    run = subprocess.run(command, cwd=results.parent, env=env, capture_output=True, text=True, timeout=timeout)
    return (json.loads(results.read_text()) if results.is_file() else None), run.stdout + run.stderr


def format_table(g: Grade) -> str:
    """The grade as a table: one row per test case, points earned of points possible, the error's first line."""
    mine = g.own
    width = max([len(t.nodeid) for t in mine] + [4])
    lines = [f"A{g.assignment}: {g.title}  ({g.path})", "",
             f"{'test':<{width}}  {'points':>15}  outcome", "-" * (width + 26)]
    for t in mine:
        line = f"{t.nodeid:<{width}}  {t.earned:6.2f} / {t.points:6.2f}  {t.outcome}"
        if t.errors and t.outcome != "passed":
            line += "  " + (t.errors[0].splitlines() or [""])[0][:100]
        lines.append(line)
    lines += ["-" * (width + 26), f"{'total':<{width}}  {g.score:6.2f} / {g.max_score:6.2f}"]
    if g.problem:
        lines += ["", g.problem]
    return "\n".join(lines)

