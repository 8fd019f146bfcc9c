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
:attr:`Grade.skipped_points`, the table names why and what to install). A skip that what this machine lacks does
not explain came from the student's code (``pytest.skip`` in a body): the case fails.

A case that crashes the run (a segmentation fault in native code, say in a C function that one of A7's kernels
called: they run in the graded process, and the emulation makes a fault in their own code a ``LaunchError``) or
takes longer than its time limit (a loop that never ends; each assignment's is its
:attr:`~minitransformer.assignments.Assignment.case_timeout`) fails, saying so and where it was; the cases
that had not run yet are run again in a fresh process without it, so they keep their points (after a case
out of time, the other cases of its test last: they may never end either). A run that does not end within
the whole ``timeout`` is stopped: the cases that finished are scored, the others fail, and
:attr:`Grade.problem` names the first of them, the likely one that never ends.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from .. import cuda_emulator
from .catalog import ASSIGNMENTS, get
from .strip import RECORD, built_for, source_root

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
        fails), and each crash or case out of time, with where it was; first, where the tests were not the course's
        (:attr:`tests_from`), that this is not a grade; empty when the course's tests all ran.
    skipped_points : float
        The points of this assignment's cases that were skipped here (PyTorch's comparisons, without
        PyTorch; A7's kernels, without g++), so not graded: ``max_score + skipped_points`` is the assignment's
        full 100. Each skipped case's share is its :attr:`TestResult.worth`.
    tests_from : str
        The checkout whose tests graded the copy ("" where not known). Where it is the copy itself (a student's
        check of themselves, run in the copy) or another copy, :attr:`problem` says first that this is not a grade.

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
    tests_from: str = ""

    @property
    def own(self) -> list[TestResult]:
        """The graded cases of this assignment (:attr:`tests` may hold other assignments' too)."""
        return [t for t in self.tests if t.assignment == self.assignment]

    def to_json(self) -> str:
        """The grade as JSON: ``{"assignment", "title", "path", "score", "max_score", "tests": [...], "problem",
        "skipped_points", "tests_from"}``."""
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


#: the modules that graded tests import with ``pytest.importorskip`` (PyTorch, for the comparisons with it), so that
#: a case skipped because one does not import is skipped for what the grading machine lacks
IMPORTED = ("torch",)


def _skipped_by_the_submission(reported: dict[str, dict], copy: Path, root: Path) -> dict[str, dict]:
    """``reported`` (each case's outcome, by node id) with every skip that this machine and the copy do not explain
    (:func:`_explained`) a failure, ``skipped by the submission: <its reason>``: where what a graded test skips for is
    present, the skip came from the student's code (``pytest.skip`` in a body), which would take the case out of the
    maximum and have the grade ask to install what is installed."""
    explained: dict[tuple[str, int], bool] = {}  # each reason checked once: the check of a module imports it
    out = {}
    for nodeid, t in reported.items():
        if t["outcome"] == "skipped":
            key = (t["errors"] or ["skipped"])[0], t["assignment"]
            if key not in explained:
                explained[key] = _explained(*key, copy, root)
            if not explained[key]:
                why = key[0].removeprefix("Skipped: ")
                t = {**t, "outcome": "failed", "errors": [f"skipped by the submission: {why}"]}
        out[nodeid] = t
    return out


def _explained(reason: str, number: int, copy: Path, root: Path) -> bool:
    """Whether what a graded case of assignment ``number`` was skipped for (``reason``, pytest's ``Skipped: ...``) is
    absent here: the only skips of the graded tests are ``pytest.importorskip`` of a module of :data:`IMPORTED` that
    the graded run cannot import, A7's where the emulation of CUDA cannot run (:func:`cuda_emulator.missing`), and
    ``tests/conftest.py``'s ``not in a student copy: ...`` for files that the assignment's copy holds
    (:attr:`~minitransformer.assignments.Assignment.keeps`: A7's kernels) and this copy does not."""
    reason = reason.removeprefix("Skipped: ")
    if (imported := re.fullmatch(r"could not import '([\w.]+)': .*", reason, flags=re.S)) and imported[1] in IMPORTED:
        return not _importable(imported[1])
    if reason.startswith("not in a student copy: "):
        paths = reason.removeprefix("not in a student copy: ").partition(" (")[0].split(", ")
        return set(paths) <= set(get(number).keeps) and not any(
            ((copy if p.startswith("minitransformer/") else root) / p).exists() for p in paths)
    missing = cuda_emulator.missing()
    return bool(missing) and reason == missing


def _importable(module: str) -> bool:
    """Whether the graded run imports ``module``: asked of a Python started as that run is (isolated, with the
    grader's ``PYTHONPATH``, as runner.py does), which runs no student code. This process may see more (the folder
    it runs in, the user's site-packages)."""
    code = ("import os, sys; sys.path[:0] = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]; "
            f"import {module}")
    return subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, cwd=tempfile.gettempdir(),
                          env={**os.environ, "MPLBACKEND": "Agg"}).returncode == 0


def _grade_of(assignment, copy: Path, root: Path, tests: list[TestResult], problem: str) -> Grade:
    """The grade of ``assignment`` from its scored cases (``tests`` may hold other assignments' too), graded by the
    tests of the checkout ``root``."""
    mine = [t for t in tests if t.assignment == assignment.number]
    skipped = sum(t.worth for t in mine if t.outcome == "skipped")
    problem = "\n\n".join(filter(None, [_not_the_courses(assignment, copy, root), problem]))
    return Grade(assignment.number, assignment.title, str(copy), round(sum(t.earned for t in mine), 6),
                 round(sum(t.points for t in mine), 6), tests, problem, float(round(skipped, 6)), str(root))


def _not_the_courses(assignment, copy: Path, root: Path) -> str:
    """What a grade says first when its tests were not the course's: the copy's own, as in a student's check of
    themselves (``grade N .`` in the copy imports the copy's package, whose checkout is the copy: its tests and
    conftest.py, which it may have changed, graded it), or another copy's; "" for any other checkout."""
    if root == copy:
        return (f"SELF-CHECK, NOT A GRADE: the tests that ran are this copy's own ({root / 'tests'}), which the copy "
                f"may have changed, not the course's; the course grades it with `minitransformer assignments grade "
                f"{assignment.number} COPY` run from its own checkout.")
    if built_for(root) is not None:
        return (f"NOT A GRADE: the tests that ran are those of {root}, a copy that `assignments build` wrote, not the "
                "course's; grade from the course's checkout.")
    return ""


def _why_not_run(output: str) -> str:
    """The error that stopped the tests before any ran, from pytest's output: its last ``E   ...Error: ...`` line."""
    errors = [line[1:].strip() for line in output.splitlines() if re.match(r"E\s+\w*(Error|Exception)\b", line)]
    places = re.findall(r'^E\s+File "(.+)", line (\d+)', output, flags=re.M)  # where a SyntaxError is
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    why = errors[-1] if errors else (lines[-1] if lines else "no output")
    return why + (f" ({places[-1][0]}, line {places[-1][1]})" if places else "")


def _the_copys_import(output: str, root: Path, copy: Path) -> str:
    """pytest's output, its "ImportError while loading conftest '<the instructor's tests/conftest.py>'" said of the
    copy: the conftest only imports ``minitransformer``, from the copy, whose own file and line follow.

    >>> print(_the_copys_import("ImportError while loading conftest '/i/tests/conftest.py'.", Path("/i"), Path("/s")))
    ImportError while importing minitransformer from /s (the graded tests' conftest.py imports it).
    """
    conftest = f"ImportError while loading conftest '{_as_reported(root / 'tests' / 'conftest.py')}'."
    return output.replace(conftest, f"ImportError while importing minitransformer from {copy} (the graded tests' "
                                    "conftest.py imports it).")


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


#: how many times a grade runs the cases not yet run again, after a crash or a case out of time; a rerun takes a few
#: seconds (starting pytest, collecting the tests; A7's compile their kernels)
RERUNS = 20


def grade(number, path=".", numbers=None, source=None, timeout: float = 1800,
          case_timeout: float | None = None) -> Grade:
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
        Seconds the tests may run in all, reruns included. A run still going then is stopped: the cases
        it finished are scored, the others fail, and :attr:`Grade.problem` names the first of them.
    case_timeout : float or None
        Seconds one case may run; None: each case its assignment's
        :attr:`~minitransformer.assignments.Assignment.case_timeout`
        (``CASE_TIMEOUT``, 60, for all seven); ``math.inf``: no limit. A case that takes longer fails, saying
        where it was (too slow, or an endless loop?), as does one that crashes the run; the cases not yet run are run
        again without it (at most ``RERUNS`` times, 20; after a case out of time, the other cases of its test function
        after all the others, as they may never end either, each costing a rerun and the time limit), and
        :attr:`Grade.problem` says what happened.

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
    if case_timeout is not None and not case_timeout > 0:
        raise ValueError("assignments grade: the time limit of a case must be a positive number of seconds (or None), "
                         f"got {case_timeout!r}")
    if importlib.util.find_spec("pytest") is None:
        raise ModuleNotFoundError("assignments grade: grading runs the tests with pytest, which is not installed; "
                                  'install the test tools with: pip install -e ".[dev]"')
    root = Path(source).resolve() if source is not None else source_root()
    copy = Path(path).resolve()
    if not (copy / "minitransformer" / "__init__.py").is_file():
        raise FileNotFoundError(f"assignments grade: {copy} holds no minitransformer package "
                                "(give the folder that `assignments build` wrote)")
    built = built_for(copy)
    if built is not None and not built["solution"] and built["assignment"] != assignment.number:
        # its other assignments' bodies are written: graded for one of those, an untouched copy earns every point
        raise ValueError(f"assignments grade: {copy} is a copy for A{built['assignment']}, {built['title']} (its "
                         f"{RECORD}), not for {assignment.tag}: grade it with `minitransformer assignments grade "
                         f"{built['assignment']} ...`")
    # -p no:faulthandler: pytest's own would take faulthandler's output, which the plugin writes to a file
    args = [*map(str, graded_test_files(root / "tests")), "--assignment", numbers or str(assignment.number),
            "--backends", "numpy", "-p", "no:cacheprovider", "-p", "no:faulthandler", "--rootdir", str(root),
            "-c", str(root / "setup.cfg"), "-q", "--no-header", "-rN", "--tb=line"]
    limits = {a.number: a.case_timeout if case_timeout is None else case_timeout for a in ASSIGNMENTS}
    limit = ",".join(f"{n}={s!r}" for n, s in limits.items() if s != math.inf)  # the plugin's 1=60,...,7=60
    graded = [*args, *(("--grade-case-timeout", limit) if limit else ())]
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="mt-grade-") as tmp, ThreadPoolExecutor(1) as pool:
        # the cases to score, collected meanwhile from the instructor's package: no student code runs there
        expected = pool.submit(_pytest, root, [*args, "--collect-only"], Path(tmp) / "expected.json", timeout)
        run = _pytest(copy, graded, Path(tmp) / "results.json", timeout)
        collected, collect_output, collection_stopped = expected.result()[:3]
        if collected is None:
            why = (f"collecting them took longer than the time limit, {timeout:g} s (a busy machine? give more with "
                   "--timeout)" if collection_stopped else collect_output[-3000:])
            raise RuntimeError(f"assignments grade: the graded tests of {root} could not be collected:\n{why}")
        if run.data is None:  # the copy does not import, say: every case fails, out of the assignment's maximum
            crashed = not run.stopped and (run.fault or (run.returncode or 0) < 0)  # at import, say
            why = (f"stopped after {timeout:g} seconds, before the tests were collected (an import that never ends?)"
                   if run.stopped else _end_of(run, None, copy, root)[1] if crashed
                   else _why_not_run(run.output))
            tests, _ = _score(collected["collected"], [], unreported=f"the tests did not run: {why}")
            evidence = _the_copys_import(run.evidence(), root, copy)
            return _grade_of(assignment, copy, root, tests, f"the tests did not run: {why}\n{evidence}")
        package = _reported(run.data["package"]).resolve()
        if copy not in package.parents:
            raise RuntimeError(f"assignments grade: the tests imported minitransformer from {package}, not from {copy}")
        reported, problems, unreported = _run_to_the_end(run, graded, copy, root, Path(tmp), deadline, timeout,
                                                         limits)
        reported = _skipped_by_the_submission(reported, copy, root)
    tests, unexpected = _score(collected["collected"], list(reported.values()), unreported=unreported)
    problem = "\n\n".join(problems)
    if unexpected:
        problem += f"\nthe test run reported cases that were not collected (not scored): {unexpected[:10]}"
    return _grade_of(assignment, copy, root, tests, problem.strip())


def _run_to_the_end(run: _Run, args: list[str], copy: Path, root: Path, tmp: Path, deadline: float, timeout: float,
                    limits: dict[int, float]) -> tuple[dict[str, dict], list[str], str]:
    """The outcomes of the graded run ``run`` and, after each crash or case out of time, of a run of the cases not
    yet run, without the one it ended in: every case reported, by node id; what went wrong, for
    :attr:`Grade.problem`; and what a case that none of them reported fails with. ``limits`` holds each
    assignment's time limit of a case, in seconds.

    After a case out of time, the other cases of its test run after all the others: they may well never end either
    (the same body, other arguments), each costing a rerun and its time limit; the other tests are graded first, and
    then each of them that can run is, within ``RERUNS`` and the deadline."""
    reported: dict[str, dict] = {}
    problems: list[str] = []
    last: set[str] = set()  # the other cases of each test that ran out of time, run after all the others
    while True:  # each run leaves out at least one case more: the one the last ended in
        reported.update((t["nodeid"], t) for t in run.data["tests"])
        todo = [t for t in run.data["collected"] if t["nodeid"] not in reported]
        if run.stopped:  # the cases that finished are scored; each of the others fails, saying where it was stuck
            stuck = _stopped(timeout, todo[0]["nodeid"] if todo else None)
            return reported, [*problems, stuck], stuck
        number = next((t["assignment"] for t in run.data["collected"] if t["nodeid"] == run.running), None)
        end = _end_of(run, limits.get(number), copy, root)
        if end is None:  # pytest ended by itself
            if run.data["exitstatus"] not in (0, 1):
                problems.append("pytest stopped early:\n" + run.output[-3000:])
            return reported, problems, "the test run did not report this case"
        if not run.running:  # between cases (a crash at the start or the end of the run): no case to leave out
            problems.append(f"{end[1]}\n{run.evidence()}")
            return reported, problems, f"not run: {end[1]}"
        case, function = run.running, run.running.split("[")[0]
        reported[case] = {"nodeid": case, "outcome": "failed", "errors": [end[0]]}
        todo = [t for t in todo if t["nodeid"] not in reported]
        siblings = {t["nodeid"] for t in todo if t["function"] == function} if run.fault.startswith("Timeout") else ()
        last.update(siblings)
        given_up = len(problems) >= RERUNS  # (this end is not counted in problems yet)
        then = ("" if not todo else f"; the cases not yet run were not run again: the tests had been run again "
                f"{RERUNS} times" if given_up else "; the cases not yet run were run again without it" +
                (", the other cases of its test after all the others" if siblings else ""))
        problems.append(f"{case}: {end[0]}{then}\n{_fault_head(run.fault)}")
        if given_up:
            return reported, problems, f"not run: the tests crashed or ran out of time {len(problems)} times"
        if not todo:
            return reported, problems, "the test run did not report this case"
        skip, after = tmp / f"skip-{len(problems)}.json", tmp / f"last-{len(problems)}.json"
        skip.write_text(json.dumps(sorted(reported)), encoding="utf-8")
        after.write_text(json.dumps(sorted(last - set(reported))), encoding="utf-8")
        left = deadline - time.monotonic()
        again = (_pytest(copy, [*args, "--grade-skip", str(skip), "--grade-last", str(after)],
                         tmp / f"results-{len(problems)}.json", left) if left > 0 else _Run(None, "", stopped=True))
        if again.data is None:  # it imported the first time: out of time, or a crash before the first case
            why = (f"the tests ran out of their {timeout:g} seconds before the cases not yet run could run again"
                   if left <= 0 else _stopped(timeout, todo[0]["nodeid"]) if again.stopped else
                   f"the cases not yet run did not run again: {_why_not_run(again.output)}")
            return reported, [*problems, f"{why}\n{again.evidence()}".strip()], why
        run = again


def _stopped(timeout: float, first: str | None) -> str:
    """What a run stopped at its ``timeout`` says: ``first``, the first graded case it did not finish (in the order
    they run), is where it was likely stuck; None when it had finished them all."""
    said = f"the tests were stopped after {timeout:g} seconds"
    if first is None:
        return f"{said}, after every graded case had finished"
    return f"{said}; the first case that did not finish, {first}, is likely one that never ends (an endless loop?)"


class _Run(NamedTuple):
    """What a run of pytest left: the JSON the plugin wrote (None if it wrote none; what it had written so far if the
    run ended early), pytest's output, whether the run was stopped at its timeout, what ``faulthandler`` wrote
    (at a crash or a case's timeout), the graded case it was in when it ended ("" between cases) and its exit
    status (minus the signal's number where a signal ended it, on POSIX)."""

    data: dict | None
    output: str
    stopped: bool
    fault: str = ""
    running: str = ""
    returncode: int | None = None

    def evidence(self) -> str:
        """What to show of a run that ended badly: faulthandler's report where it wrote one, else pytest's output's
        end."""
        return _fault_head(self.fault) or self.output[-3000:]


def _pytest(folder: Path, args: list[str], results: Path, timeout: float) -> _Run:
    """Run pytest with ``args`` and the grader's plugin, ``minitransformer`` taken from ``folder``, for at most
    ``timeout`` seconds; the plugin writes its JSON to ``results``, and beside it where the run was."""
    env = {k: v for k, v in os.environ.items() if k != "MINITRANSFORMER_BACKEND"}
    env["MPLBACKEND"] = "Agg"
    # -I: isolated mode, so nothing in the copy (a sitecustomize.py, a pytest.py) runs before the runner;
    # -B: no __pycache__ written into the copy (-I ignores PYTHONDONTWRITEBYTECODE);
    # -X utf8: pytest's output in UTF-8, read as such here, whatever the locale (Windows' cp1252 lacks the
    # formulas' characters; -I ignores PYTHONIOENCODING)
    command = [sys.executable, "-I", "-B", "-X", "utf8", str(Path(__file__).with_name("runner.py")), str(folder),
               *args, "--grade-json", str(results)]
    # its output to files, not pipes: a process the student's code started holds a pipe open past the run's end
    out, err = results.with_name(results.name + ".stdout"), results.with_name(results.name + ".stderr")
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        # POSIX: a session of its own, to end with whatever the student's code started, which outlives the runner
        process = subprocess.Popen(command, cwd=results.parent, env=env, stdout=stdout, stderr=stderr,
                                   start_new_session=os.name == "posix")
        try:
            returncode, stopped = process.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            returncode, stopped = None, True
        finally:  # stopped or not: what the student's code started does not outlive its run
            _end_group(process)
    output = "".join(path.read_text(encoding="utf-8", errors="replace") for path in (out, err))

    def read(suffix):
        path = results.with_name(results.name + suffix)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    return _Run(json.loads(read("")) if results.is_file() else None, output, stopped, read(".fault").strip(),
                read(".running").strip(), returncode)


def _reported(path: str) -> Path:
    """A file name the grading run reported, as this process names that file. The run writes names as UTF-8 (its
    ``-X utf8``); this process decodes them with the locale's encoding, which may be another (a POSIX C locale:
    ASCII, where ``ü`` in a folder's name could not be looked up at all)."""
    return Path(os.fsdecode(path.encode("utf-8", "surrogateescape")))


def _as_reported(path: Path) -> str:
    """``path`` as the grading run writes it (UTF-8 text): what :func:`_reported` reads back as ``path``."""
    return os.fsencode(path).decode("utf-8", "surrogateescape")


def _end_group(process: subprocess.Popen) -> None:
    """End ``process`` and, on POSIX, every process of its group (it leads one: ``start_new_session``): those the
    student's code started, which a timeout of the runner, or its end, leaves running (Windows: the runner only)."""
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # the runner and all it started have ended
            pass
    else:
        process.kill()
    process.wait()


#: what a crash of native code most often means, by the name faulthandler gives the signal
CRASHES = {"Segmentation fault": "a read or write far outside an array?", "Bus error": "a read or write of memory "
           "that is not there, or misaligned?", "Floating-point exception": "an integer divided by zero?",
           "Floating point exception": "an integer divided by zero?", "access violation": "a read or write far outside "
           "an array?", "Aborted": "abort() or a failed assert in native code?"}


def _end_of(run: _Run, limit: float | None, copy: Path, root: Path) -> tuple[str, str] | None:
    """How a run that did not end by itself ended, None when it did: the error of the case it ended in, and what to
    say when it ended outside a case; each one line (what, why it may be, where it was). ``limit`` is the time limit
    of the case it ended in, in seconds."""
    if run.data is not None and run.data["exitstatus"] is not None:
        return None
    where = _where(run.fault, copy, root)
    at = f"; it was at {where}" if where else ""
    if run.fault.startswith("Timeout"):  # faulthandler's "Timeout (0:01:00)!": a case ran past its time limit
        said = f"did not finish in {limit:g} s (too slow, or an endless loop?){at}"
        return f"this case {said}", f"the tests {said}"
    kind = re.search(r"^(?:Fatal Python error|Windows fatal exception): (.+)$", run.fault, flags=re.M)
    if kind:
        kind = kind[1].strip()
    elif run.returncode is not None and run.returncode < 0:
        kind = _signal_name(-run.returncode)
    else:
        kind = f"the process ended, with exit status {run.returncode}"
    why = next((f": {w}" for k, w in CRASHES.items() if k.lower() in kind.lower()), "")
    said = f"({kind}{why}){at}"
    return f"the tests crashed in this case {said}", f"the tests crashed outside a test case {said}"


def _signal_name(number: int) -> str:
    """``SIGKILL`` for 9, say; the number where this system has no such signal."""
    try:
        return f"killed by {signal.Signals(number).name}"
    except ValueError:
        return f"killed by signal {number}"


def _where(fault: str, copy: Path, root: Path, frames: int = 4) -> str:
    """Where faulthandler's report says the tests were, innermost first: ``frames`` places ``file:line in function``,
    the innermost (where it crashed or was stuck) and the outermost others (the test, the method that launched a
    kernel), pytest's own left out, files under the copy or the checkout named from there."""
    threads = re.split(r"\n(?=(?:Current thread|Thread) 0x)", fault)
    # the thread that crashed; at a timeout (no current thread), the one running the tests (pytest's frames)
    thread = next((t for t in threads if t.startswith("Current thread")), None) or next(
        (t for t in threads if "_pytest" in t), threads[0])
    places = []
    for file, line, function in re.findall(r'^\s+File "(.+)", line (\d+) in (.+)$', _own(thread), flags=re.M):
        path = Path(file)
        for base in (copy, root):
            if base in path.parents:
                path = path.relative_to(base)
                break
        else:
            path = Path(*path.parts[-2:])
        places.append(f"{path.as_posix()}:{line} in {function.strip()}")
    return " <- ".join(places if len(places) <= frames else [places[0], "...", *places[1 - frames:]])


def _own(fault: str) -> str:
    """faulthandler's report without the frames of pytest, pluggy, the runner and the import system (the same in every
    case), nor the list of extension modules (Python 3.12 on)."""
    return "\n".join(line for line in fault.splitlines() if not line.startswith("Extension modules: ") and not re.match(
        r'\s+File "(.*([/\\](_pytest|pluggy|importlib)[/\\]|[/\\]assignments[/\\]runner\.py)|<frozen )', line))


def _fault_head(fault: str, limit: int = 3000) -> str:
    """faulthandler's report from its start (what happened and the innermost frames), pytest's frames left out, cut
    at about ``limit`` characters."""
    fault = _own(fault)
    return fault if len(fault) <= limit else fault[:fault.rfind("\n", 0, limit)] + "\n..."


#: the version of PyTorch CI uses (.ci/run), which TORCH_INSTALL asks for
TORCH_VERSION = "2.13.0"
#: what to install when the skipped cases are PyTorch's comparisons (the version CI uses; PyPI's Linux wheel is the
#: CUDA build, gigabytes with its libraries, where the CPU one from PyTorch's index is all the comparisons need)
TORCH_INSTALL = (f"pip install torch=={TORCH_VERSION} (on Linux, the CPU build: pip install torch=={TORCH_VERSION} "
                 "--index-url https://download.pytorch.org/whl/cpu)")
#: what to install when the skipped cases are A7's kernels, run on the CPU under the emulation of CUDA (g++)
GXX_INSTALL = cuda_emulator.INSTALL


#: pytest's comparison of an ``assert`` on a bool (``assert np.all(...), message``), which says nothing more
_SAYS_NOTHING = re.compile(r"assert (not )?(np\.)?(False|True)_?")


#: the lines numpy.testing writes where it compared no values (the shapes or, strict, the dtypes differ, or where
#: the infinities or NaNs lie, or the infinities' signs; older NumPy wrote "x and y +inf location mismatch")
_NOT_COMPARED = re.compile(r"\((shapes|dtypes) .* mismatch\)|(x and y )?[+-]?(inf|nan) location mismatch:?|"
                           r"inf values mismatch:?")


def reason(error: str, limit: int = 1500, part: int = 1000) -> str:
    """A failed case's error on one line, with the point kept: for NumPy's ``assert_allclose`` (whose first line
    is only ``AssertionError:``) the test's message, the mismatches and the largest difference; for pytest's
    ``assert`` the comparison and what it was computed from, or after the test's own message the comparison alone
    (none for a bool's, ``assert np.False_``: pytest's "+ where" lines print a function's repr and whole arrays).
    Its parts are joined by "; ", or a space after a part that ends its sentence. Each part of it longer than ``part``
    characters, and the whole longer than ``limit``, keeps its head and its tail (where a test's hint usually is)
    around " ... ".

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
    listed = any(line.startswith("Mismatched elements:") for line in rest)
    if listed or any(_NOT_COMPARED.fullmatch(line) for line in rest):  # numpy.testing's message
        mismatch_list = False
        for i, line in enumerate(rest):
            if line.startswith((" ACTUAL:", " x:")):  # the two arrays, to the end: kept where nothing lists the
                if not listed:  # mismatches (shapes, or where infinities and NaNs lie, differ), on one line
                    parts.append(" ".join(" ".join(rest[i:]).split()))
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
            elif line.strip() and not line.startswith("Max relative difference"):  # the comparison, the test's message
                parts.append(line.strip().removesuffix(":") if _NOT_COMPARED.fullmatch(line) else line.strip())
    else:  # any other error, or pytest's assert: its comparison, then "+ where" lines saying what was compared
        lines = [" ".join(line.split()) for line in rest if line.strip()]
        raised_at = [line for line in lines if line.startswith("(raised at ")]  # the plugin's, always kept
        lines = [line for line in lines if line not in raised_at]
        if parts and not parts[0].startswith("assert ") and any(line.startswith("assert ") for line in lines):
            # pytest's comparison after the test's own message: the message says what was compared
            lines = [line for line in lines if not line.startswith("+") and not _SAYS_NOTHING.fullmatch(line)]
        parts += [line for line in lines if not line.startswith("+")][:2 - len(parts)]
        parts += [line for line in lines if line.startswith("+")][:1] + raised_at
    text = ""
    for p in (_shortened(p, part) for p in parts):  # "; " between two parts, a space after one that ends a sentence
        text += (" " if text.endswith((".", "?", "!", ";", ":")) else "; ") + p if text else p
    return _shortened(f"{name}: {text}" if name and text else name or text, limit)


def _shortened(text: str, limit: int) -> str:
    """``text``, or when it is longer than ``limit`` its head and its tail around " ... ", at most ``limit`` characters.

    >>> _shortened("the head, the middle, the tail", 25)
    'the head, ... , the tail'
    """
    if len(text) <= limit:
        return text
    head = (limit - 5) // 2
    return f"{text[:head].rstrip()} ... {text[len(text) - (limit - 5 - head):].lstrip()}"


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
    lines = [f"A{g.assignment}: {g.title}  ({g.path})"]
    if g.tests_from:  # whose tests: the course's checkout, or the copy's own (a self-check, said loudly)
        own = "  -- the copy's own: A SELF-CHECK, NOT A GRADE" if g.tests_from == g.path else ""
        lines.append(f"graded with the tests of {g.tests_from}{own}")
    lines += ["", f"{'test':<{width}}  {'points':>15}  outcome", "-" * (width + 26)]
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
