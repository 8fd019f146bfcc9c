"""A pytest plugin for ``tests/test_assignments.py``: would a copy with any one marked body left a stub lose points?

A body that no graded test of its assignment fails on can be left as a stub for full marks. Grading one
copy per body takes minutes; this takes one run of the graded tests on this checkout. Each
graded test of ``A<N>`` stands in for a copy with one body of ``A<N>`` stubbed: on entering the first body
of ``A<N>`` that no earlier test has failed on, it raises what the stub raises,
``NotImplementedError("A<N>: <hint>")``. If the test fails, that body is graded; if it passes (it caught
the error), a later test tries the body again. A test that enters no such body runs as usual.
``--stub-report FILE`` gets every body and whether it was graded.

    python -m pytest <graded test files> -p minitransformer.assignments.plugin --assignment all \\
        -p stub_each_body --stub-report bodies.json      # with tests/ and the checkout on PYTHONPATH
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import minitransformer
from minitransformer.assignments import ASSIGNMENTS
from minitransformer.assignments.strip import regions


class Stubber:
    """Raises a body's stub error on entering it (a ``sys.settrace`` function), and keeps the score."""

    def __init__(self, package: Path):
        self.bodies = []  # (file in the package, Region)
        self.lines: dict[str, dict[int, int]] = {}  # file as Python compiled it -> {line of a body: its index}
        for name in sorted({f for a in ASSIGNMENTS for f in a.files}):
            path = str(package / name)
            for r in regions(Path(path).read_text(encoding="utf-8"), where=name):
                self.lines.setdefault(path, {}).update(dict.fromkeys(range(r.begin + 1, r.end), len(self.bodies)))
                self.bodies.append((name, r))
        self.graded: set[int] = set()
        self.number = self.raised = None  # the running test's assignment; the body it raised in
        self.failed = False

    def call(self, frame, event, arg):
        """The global trace function: follow line by line the functions of the marked files only."""
        return self.line if frame.f_code.co_filename in self.lines else None

    def line(self, frame, event, arg):
        k = self.lines[frame.f_code.co_filename].get(frame.f_lineno) if event == "line" else None
        if k is not None and k not in self.graded and self.bodies[k][1].number == self.number:
            self.raised = k
            # raised from the trace function, it surfaces in the body's frame; Python stops tracing then
            raise NotImplementedError(f"A{self.number}: {self.bodies[k][1].hint}")
        return self.line


STUBBER: Stubber | None = None


def pytest_addoption(parser):
    parser.addoption("--stub-report", default=None, help="write each marked body and whether its stub failed a test")


def pytest_configure(config):
    global STUBBER
    STUBBER = Stubber(Path(minitransformer.__file__).parent)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    mark = item.get_closest_marker("assignment")
    STUBBER.number, STUBBER.raised, STUBBER.failed = (mark.args[0] if mark else None), None, False
    sys.settrace(STUBBER.call)
    try:
        yield
    finally:
        sys.settrace(None)
    if STUBBER.raised is not None and STUBBER.failed:
        STUBBER.graded.add(STUBBER.raised)


def pytest_runtest_logreport(report):
    STUBBER.failed |= report.failed  # setup, call or teardown


def pytest_sessionfinish(session):
    path = session.config.getoption("--stub-report")
    if path is not None:
        bodies = [{"file": f, "line": r.begin, "assignment": r.number, "hint": r.hint, "graded": k in STUBBER.graded}
                  for k, (f, r) in enumerate(STUBBER.bodies)]
        Path(path).write_text(json.dumps(bodies, indent=1), encoding="utf-8")
