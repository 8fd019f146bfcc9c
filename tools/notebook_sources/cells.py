"""The kinds of cell a notebook is made of, and the set-up cell that opens most of them."""

from __future__ import annotations

import re
import textwrap


# ------------------------------------------------------------------ cells
def md(text: str) -> tuple[str, str]:
    """A markdown cell (the text is dedented and stripped)."""
    return ("markdown", textwrap.dedent(text).strip())


def code(text: str) -> tuple[str, str]:
    """A code cell (the text is dedented and stripped)."""
    return ("code", textwrap.dedent(text).strip())


_MARKER = re.compile(r"^\s*### BEGIN SOLUTION A(\d+): ", re.M)


def exercise(grade_id: str, text: str) -> tuple[str, str, dict]:
    """An exercise code cell: a code cell whose solution is marked for the student copies, with nbgrader's metadata.

    The solution sits between ``### BEGIN SOLUTION A<N>: <hint>`` and ``### END SOLUTION`` (read by
    ``minitransformer/assignments/strip.py`` and by nbgrader); in assignment N's copy it becomes
    ``raise NotImplementedError("A<N>: <hint>")``. ``grade_id`` is ``"a<N>-<short-name>"``, unique in its
    notebook, and every marker of the cell must belong to that assignment ``N``.
    """
    kind, source = code(text)
    wanted = re.fullmatch(r"a(\d+)-[a-z0-9-]+", grade_id)
    found = sorted(f"A{n}" for n in set(_MARKER.findall(source)))
    if wanted is None or found != [f"A{wanted[1]}"]:
        raise ValueError(f"make_notebooks: exercise {grade_id!r} needs a grade_id 'a<N>-<short-name>' and solution "
                         f"markers of A<N> only; its markers are of {found or 'no assignment'}")
    return (kind, source, {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                                        "solution": True}})


SETUP = code("""
    %matplotlib inline
    import numpy as np

    import minitransformer as mt
    import minitransformer.functional as F
    from minitransformer import nn, viz

    np.set_printoptions(precision=4, suppress=True)
    mt.manual_seed(0)
    print("minitransformer", mt.__version__, "on", mt.backend.current().name)
""")


#: the opening of a notebook that trains: one BLAS thread, and tqdm's text bar without a warning
ONE_BLAS_THREAD = [
    md(r"""
    One BLAS thread, as in notebook 05: for matrices this small, threads cost more than they save.
    """),
    code("""
    import warnings

    from tqdm import TqdmWarning

    from minitransformer.train import set_blas_threads

    warnings.filterwarnings("ignore", category=TqdmWarning)   # no ipywidgets here: tqdm falls back to a text bar
    print("one BLAS thread:", set_blas_threads(1))
    """),
]
