"""A pytest plugin for ``tests/test_assignments.py``: would a copy with any one marked body left a stub lose points?

A body that no graded test of its assignment fails on can be left as a stub for full marks. Grading one
copy per body takes minutes; this takes one run of the graded tests on this checkout. Each
graded test of ``A<N>`` stands in for a copy with one body of ``A<N>`` stubbed: on entering the first body
of ``A<N>`` that no earlier test has failed on, it raises what the stub raises,
``NotImplementedError("A<N>: <hint>")``. If the test fails, that body is graded; if it passes (it caught
the error), a later test tries the body again. A test that enters no such body runs as usual.
``--stub-report FILE`` gets every body and whether it was graded.

A body of the CUDA source (A7's, marked with ``//`` in ``kernels.py``) is not traced: the source is compiled for
the emulation with each such body behind a switch, ``if (stubbed_body(k)) not_implemented("A7: <hint>"); else
<body>``, and a graded test of A7 runs with the first body not yet shown graded switched to its stub
(``MT_STUB_BODY=k``, read by the kernels at each call). It is graded when the test fails with its stub's message.

    python -m pytest <graded test files> -p minitransformer.assignments.plugin --assignment all \\
        -p stub_each_body --stub-report bodies.json      # with tests/ and the checkout on PYTHONPATH
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import minitransformer
from minitransformer.assignments import ASSIGNMENTS
from minitransformer.assignments.plugin import graded
from minitransformer.assignments.strip import regions


class Stubber:
    """Raises a body's stub error on entering it (a ``sys.settrace`` function), and keeps the score."""

    def __init__(self, package: Path):
        self.bodies = []  # (file in the package, Region)
        self.lines: dict[str, dict[int, int]] = {}  # file as Python compiled it -> {line of a body: its index}
        self.cuda: list[int] = []  # the bodies of C++ (the CUDA source), not traced: switched (see switched_source)
        for name in sorted({f for a in ASSIGNMENTS for f in a.files}):
            path = str(package / name)
            for r in regions(Path(path).read_text(encoding="utf-8"), where=name):
                if r.comment == "//":
                    self.cuda.append(len(self.bodies))
                else:
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


    def switched_source(self, source: str) -> str:
        """The CUDA ``source`` (SOURCE of kernels.py, whose marked bodies are :attr:`cuda`, in order) with each
        marked body behind a switch: its stub where ``MT_STUB_BODY`` names its index, else the body."""
        lines = source.splitlines()
        for k, r in zip(reversed(self.cuda), reversed(regions(source)), strict=True):
            message = json.dumps(f"A{r.number}: {r.hint}")
            lines[r.end - 1] = f"{r.indent}}}"
            lines[r.begin - 1] = f"{r.indent}if (stubbed_body({k})) {{ not_implemented({message}); }} else {{"
        first, _, rest = "\n".join(lines).partition("typedef {T} T;")
        return (first + "typedef {T} T;\n#include <stdlib.h>\n"
                'static int stubbed_body(int k) { const char* e = getenv("MT_STUB_BODY"); return e && atoi(e) == k; }'
                + rest)


STUBBER: Stubber | None = None


def pytest_addoption(parser):
    parser.addoption("--stub-report", default=None, help="write each marked body and whether its stub failed a test")


def pytest_configure(config):
    global STUBBER
    STUBBER = Stubber(Path(minitransformer.__file__).parent)
    if STUBBER.cuda:  # before the emulation compiles it (a session fixture)
        from minitransformer import kernels

        kernels.SOURCE = STUBBER.switched_source(kernels.SOURCE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    mark = item.get_closest_marker("assignment")
    STUBBER.number = graded(*mark.args, **mark.kwargs)[0] if mark else None
    STUBBER.raised, STUBBER.failed = None, False
    switched = next((k for k in STUBBER.cuda if k not in STUBBER.graded and STUBBER.bodies[k][1].number ==
                     STUBBER.number), None)  # the CUDA body this test tries as a stub, if any
    if switched is not None:
        os.environ["MT_STUB_BODY"] = str(switched)
    sys.settrace(STUBBER.call)
    try:
        yield
    finally:
        sys.settrace(None)
        os.environ.pop("MT_STUB_BODY", None)
    if STUBBER.raised is not None and STUBBER.failed:
        STUBBER.graded.add(STUBBER.raised)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A CUDA body's stub raised when the test's error is its NotImplementedError (under the emulation)."""
    yield
    switched = os.environ.get("MT_STUB_BODY")
    if switched is not None and call.excinfo is not None:
        r = STUBBER.bodies[int(switched)][1]
        if str(call.excinfo.value).startswith(f"A{r.number}: {r.hint}"):
            STUBBER.raised = int(switched)


def pytest_runtest_logreport(report):
    STUBBER.failed |= report.failed  # setup, call or teardown


def pytest_sessionfinish(session):
    path = session.config.getoption("--stub-report")
    if path is not None:
        bodies = [{"file": f, "line": r.begin, "assignment": r.number, "hint": r.hint, "graded": k in STUBBER.graded}
                  for k, (f, r) in enumerate(STUBBER.bodies)]
        Path(path).write_text(json.dumps(bodies, indent=1), encoding="utf-8")
