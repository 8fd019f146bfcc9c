"""Classroom assignments: student copies with formula bodies taken out, and the tests as autograder.

The library's source and notebooks mark the bodies that are exercises, in nbgrader's syntax::

    def square(x):
        ### BEGIN SOLUTION A1: return x times itself
        return x * x
        ### END SOLUTION

The text after ``A<N>:`` is the hint a student sees. Each marked body belongs to one of seven
assignments (:data:`ASSIGNMENTS`). :func:`build` writes a student copy of the package, its tests
and its notebooks in which assignment ``N``'s bodies become::

    def square(x):
        # YOUR CODE HERE
        raise NotImplementedError("A1: return x times itself")

and every other marked body is kept (markers removed), so each assignment stands alone.
:func:`grade` runs assignment ``N``'s tests -- the library's own unit tests, marked
``@pytest.mark.assignment(N, points=P)`` -- against a copy and scores them.

From the command line::

    minitransformer assignments list
    minitransformer assignments build 2 student-a2
    minitransformer assignments grade 2 student-a2 --json a2-grade.json
"""

from __future__ import annotations

from .catalog import ASSIGNMENTS, Assignment, get
from .grade import Grade, TestResult, grade
from .strip import build, strip_notebook, strip_source

__all__ = ["ASSIGNMENTS", "Assignment", "get", "build", "strip_source", "strip_notebook", "grade", "Grade",
           "TestResult"]
