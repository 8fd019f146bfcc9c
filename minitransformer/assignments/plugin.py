"""The pytest plugin of the autograder: selects an assignment's tests and records how each ended.

Loaded by :func:`minitransformer.assignments.grade` (through :mod:`~minitransformer.assignments.runner`),
which reads the JSON it writes: the graded cases collected, and the outcome of each that ran::

    python -m pytest tests -p minitransformer.assignments.plugin --assignment 2 --grade-json out.json

A graded test carries ``@pytest.mark.assignment(N, points=P)``: ``P`` points for the test function,
shared equally by its parametrised cases.
"""

from __future__ import annotations

import json

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


def _chain(exc):
    """The exception and the ones it was raised from or during, outermost first."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


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
            entry["errors"] += [f"{type(e).__name__}: {e}" for e in _chain(call.excinfo.value)]
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["errors"].append(str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped")


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--grade-json")
    if path is None:
        return
    import minitransformer

    data = {"package": minitransformer.__file__, "exitstatus": int(exitstatus),
            "collected": session.config.stash[_COLLECTED], "tests": list(session.config.stash[_RESULTS].values())}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
