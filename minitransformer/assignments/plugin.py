"""The pytest plugin of the autograder: selects an assignment's tests and records how each ended.

Loaded by :func:`minitransformer.assignments.grade` (through :mod:`~minitransformer.assignments.runner`),
which reads the JSON it writes: the graded cases collected, and the outcome of each that ran::

    python -m pytest tests -p minitransformer.assignments.plugin --assignment 2 --grade-json out.json

The file is written once the tests are collected and again after each graded case, so a run stopped
before its end (a body that never returns, killed by the grader's timeout) still leaves the outcomes of
the cases that finished; ``exitstatus`` is null until the run ends.

A graded test carries ``@pytest.mark.assignment(N, points=P)``: ``P`` points for the test function,
shared equally by its parametrised cases.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

_RESULTS = pytest.StashKey[dict]()
_COLLECTED = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("assignments", "minitransformer assignments (the autograder)")
    group.addoption("--assignment", default=None,
                    help="run only the tests graded for these assignments: 2, or 1,2,3, or all")
    group.addoption("--grade-json", default=None, help="write every graded test's outcome to this JSON file")


def pytest_configure(config):
    config.addinivalue_line("markers", "assignment(number, points): a test graded for assignment A<number>")
    config.stash[_RESULTS] = {}
    config.stash[_COLLECTED] = []


def _marker(item):
    mark = item.get_closest_marker("assignment")
    if mark is None:
        return None
    number = mark.args[0] if mark.args else mark.kwargs["number"]
    return int(number), float(mark.kwargs.get("points", mark.args[1] if len(mark.args) > 1 else 1))


def _case(item, marked) -> dict:
    return {"nodeid": item.nodeid, "function": item.nodeid.split("[")[0], "assignment": marked[0],
            "points": marked[1]}


def pytest_collection_modifyitems(config, items):
    chosen = config.getoption("--assignment")
    if chosen is None:
        return
    numbers = None if chosen == "all" else {int(n) for n in chosen.replace("A", "").split(",")}
    keep, drop = [], []
    for item in items:
        marked = _marker(item)
        (keep if marked and (numbers is None or marked[0] in numbers) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
    forward or backward an array library's error arose)."""
    return "\n".join([f"{type(exc).__name__}: {exc}", *getattr(exc, "__notes__", ())])


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
    """After each graded case has run (setup, call and teardown): the file again, with its outcome."""
    yield
    if item.nodeid in item.config.stash[_RESULTS]:
        _write(item.config, exitstatus=None)


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
