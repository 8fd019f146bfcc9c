"""The pytest plugin of the autograder: selects an assignment's tests and records how each ended.

Loaded by :func:`minitransformer.assignments.grade` (through :mod:`~minitransformer.assignments.runner`),
which reads the JSON it writes: the graded cases collected, and the outcome of each that ran::

    python -m pytest tests -p minitransformer.assignments.plugin --assignment 2 --grade-json out.json

The file is written once the tests are collected and again after each graded case, so a run that ends
before its end still leaves the outcomes of the cases that finished; ``exitstatus`` is null until the run
ends. Such an end is a crash (a segmentation fault in native code: A7's kernels run in this process), a
case that outlives ``--grade-case-timeout`` (the run then ends with exit status 1) or the grader's timeout
of the whole run. Beside the JSON file, two more say where it was: ``.running`` holds the node id of the
graded case running (empty between cases), and ``faulthandler`` writes to ``.fault`` what each thread
was doing at a crash or a case's timeout. ``--grade-skip FILE`` (a JSON list of node ids) leaves those cases
out: the grader runs the cases after a crash again, without the one that crashed. ``--grade-last FILE`` (the same)
runs those cases after all the others: the grader runs the other cases of a test whose case ran out of time last, so
that if they too never end, each costing a rerun and its time limit, the other tests have been graded first.

A graded test carries ``@pytest.mark.assignment(N, points=P)``: ``P`` points for the test function,
shared equally by its parametrised cases.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from pathlib import Path

import pytest

_RESULTS = pytest.StashKey[dict]()
_COLLECTED = pytest.StashKey[list]()
_FAULTS = pytest.StashKey[object]()  # the open file faulthandler writes to


def pytest_addoption(parser):
    group = parser.getgroup("assignments", "minitransformer assignments (the autograder)")
    group.addoption("--assignment", default=None,
                    help="run only the tests graded for these assignments: 2, or 1,2,3, or all")
    group.addoption("--grade-json", default=None, help="write every graded test's outcome to this JSON file")
    group.addoption("--grade-case-timeout", type=_limits, default=None, metavar="SECONDS",
                    help="end the run when a graded case (setup, call and teardown) takes longer, writing where it "
                         "was to the JSON file's name + .fault; 60 for every case, or 1=60,7=120 by assignment (a case "
                         "of an assignment not named has no limit)")
    group.addoption("--grade-skip", default=None, metavar="FILE",
                    help="a JSON list of node ids not to run (cases already graded, or one that crashed)")
    group.addoption("--grade-last", default=None, metavar="FILE",
                    help="a JSON list of node ids to run after all the others")


def _limits(text: str) -> dict:
    """``--grade-case-timeout``'s seconds by assignment number (None for every assignment): ``60``, ``1=60,7=120``."""
    limits = {}
    for part in text.split(","):
        number, _, seconds = part.rpartition("=")
        limits[int(number) if number else None] = float(seconds)
    return limits


def pytest_configure(config):
    config.addinivalue_line("markers", "assignment(number, points): a test graded for assignment A<number>")
    config.stash[_RESULTS] = {}
    config.stash[_COLLECTED] = []
    if (path := config.getoption("--grade-json")) is not None:  # a crash, or a case's timeout, says where it was
        config.stash[_FAULTS] = open(f"{path}.fault", "w", encoding="utf-8")
        faulthandler.enable(file=config.stash[_FAULTS])


def pytest_unconfigure(config):
    if (faults := config.stash.get(_FAULTS, None)) is not None:
        faulthandler.cancel_dump_traceback_later()
        faulthandler.disable()
        faults.close()


def graded(number, points=1) -> tuple[int, float]:
    """The assignment and the points of a test marked ``@pytest.mark.assignment(number, points)``: this function
    takes the marker's arguments, by position or by name, as the marker does (one point where none are given).

    >>> graded(3, points=10), graded(3, 10), graded(number=3)
    ((3, 10.0), (3, 10.0), (3, 1.0))
    """
    return int(number), float(points)


def _marker(item):
    """:func:`graded` of a collected test's ``assignment`` marker; None for an ungraded test."""
    mark = item.get_closest_marker("assignment")
    if mark is None:
        return None
    try:
        return graded(*mark.args, **mark.kwargs)
    except (TypeError, ValueError) as e:  # a marker's arguments not (number, points)
        raise pytest.UsageError(f"{item.nodeid}: its assignment marker: {e}") from e


def _case(item, marked) -> dict:
    return {"nodeid": item.nodeid, "function": item.nodeid.split("[")[0], "assignment": marked[0],
            "points": marked[1]}


def pytest_collection_modifyitems(config, items):
    chosen = config.getoption("--assignment")
    if chosen is None:
        return
    numbers = None if chosen == "all" else {int(n) for n in chosen.replace("A", "").split(",")}
    skip, last = _node_ids(config, "--grade-skip"), _node_ids(config, "--grade-last")
    keep, drop = [], []
    for item in items:
        marked = _marker(item)
        kept = marked and (numbers is None or marked[0] in numbers) and item.nodeid not in skip
        (keep if kept else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted(keep, key=lambda item: item.nodeid in last)  # stable: the others first, each in its order


def _node_ids(config, option: str) -> set:
    """The node ids in the JSON file that ``option`` names; none without it."""
    if (path := config.getoption(option)) is None:
        return set()
    with open(path, encoding="utf-8") as f:
        return set(json.load(f))


def pytest_collection_finish(session):
    session.config.stash[_COLLECTED] = [_case(item, m) for item in session.items if (m := _marker(item))]
    _write(session.config, exitstatus=None)


def _chain(exc):
    """The exception and the ones it was raised from or during, outermost first."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _said(exc) -> str:
    """``Name: message``, and on the lines below it the exception's notes (the engine's says in which operation's
    forward or backward an array library's error arose) and, but for a failed check, a stub or the engine's check of
    what a ``backward`` returned (its note names the operation: the engine's frames would point away from it), where
    in the package it was raised (:func:`_raised_at`)."""
    notes = getattr(exc, "__notes__", ())
    said_enough = isinstance(exc, AssertionError | NotImplementedError) or any(
        note.startswith("(checked after ") for note in notes)  # the note of autograd.engine._checked
    where = [] if said_enough else [_raised_at(exc.__traceback__)]
    return "\n".join([f"{type(exc).__name__}: {exc}", *notes, *filter(None, where)])


def _raised_at(tb, frames: int = 3) -> str:
    """``(raised at minitransformer/nn/attention.py:330 in _batched <- ...)``: the innermost ``frames`` frames of the
    package in traceback ``tb``, innermost first (the line a TypeError of Python's names no file); "" for none. The
    package is the folder of the ``minitransformer`` imported (the copy's), the grader's own ``assignments`` left out:
    not every path with a folder of that name (a course cloned into ~/minitransformer, its .venv inside)."""
    package = Path(sys.modules["minitransformer"].__file__).resolve().parent
    found = []
    while tb is not None:
        path = Path(tb.tb_frame.f_code.co_filename).resolve()
        if path.is_relative_to(package) and not path.is_relative_to(package / "assignments"):
            found.append(f"minitransformer/{path.relative_to(package).as_posix()}:{tb.tb_lineno} in "
                         f"{tb.tb_frame.f_code.co_name}")
        tb = tb.tb_next
    return f"(raised at {' <- '.join(found[::-1][:frames])})" if found else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marked = _marker(item)
    if marked is None:
        return
    results = item.config.stash[_RESULTS]
    entry = results.setdefault(item.nodeid, {**_case(item, marked), "outcome": "passed", "errors": []})
    if report.failed:
        entry["outcome"] = "failed"
        if call.excinfo is not None:
            entry["errors"] += [_said(e) for e in _chain(call.excinfo.value)]
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["errors"].append(str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Before each graded case runs (setup, call and teardown): ``.running`` names it, and its time limit is
    armed; after: the JSON file again, with its outcome."""
    config, limits, marked = item.config, item.config.getoption("--grade-case-timeout") or {}, _marker(item)
    graded = marked is not None and _FAULTS in config.stash
    if graded:
        limit = limits.get(marked[0], limits.get(None))
        _running(config, item.nodeid)
        if limit is not None:  # faulthandler's own thread: it ends even native code
            faulthandler.dump_traceback_later(limit, exit=True, file=config.stash[_FAULTS])
    yield
    if graded:
        faulthandler.cancel_dump_traceback_later()
        _write(config, exitstatus=None)
        _running(config, "")


def pytest_sessionfinish(session, exitstatus):
    _write(session.config, exitstatus=int(exitstatus))


def _write(config, exitstatus) -> None:
    """Write ``--grade-json``: the package tested, pytest's exit status (None while it runs), the graded cases
    collected and the outcomes so far. Written beside and then renamed, so a killed run never leaves half a file."""
    path, package = config.getoption("--grade-json"), sys.modules.get("minitransformer")
    if path is None or package is None:  # no package imported: it does not import, the tests did not run
        return
    data = {"package": package.__file__, "exitstatus": exitstatus,
            "collected": config.stash[_COLLECTED], "tests": list(config.stash[_RESULTS].values())}
    with open(f"{path}.part", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(f"{path}.part", path)


def _running(config, nodeid: str) -> None:
    """Write ``--grade-json`` + ``.running``: the graded case about to run, or "" once it has."""
    with open(f"{config.getoption('--grade-json')}.running", "w", encoding="utf-8") as f:
        f.write(nodeid)
