"""The seven assignments, in order: what each asks for, where its bodies are, which notebook helps."""

from __future__ import annotations

from dataclasses import dataclass

#: how many seconds one graded case (its setup, call and teardown) may take before the grader ends the run in it, unless
#: its assignment says more (Assignment.case_timeout): the slowest case of the solution takes about 3 s (A7's first,
#: whose setup compiles the kernels with g++; the others under 1.1 s), so a busy or slow machine has room
CASE_TIMEOUT = 60


@dataclass(frozen=True)
class Assignment:
    """One assignment.

    Attributes
    ----------
    number : int
        ``N`` of ``A<N>``: the marker ``### BEGIN SOLUTION A<N>: hint`` and the test marker
        ``@pytest.mark.assignment(N, points=P)``.
    title : str
        What the student builds.
    files : tuple of str
        The package files (relative to ``minitransformer/``) holding its marked bodies.
    notebooks : tuple of str
        The notebooks (in ``notebooks/``) with its exercise cells, the ones that help.
    keeps : tuple of str
        Files (from the checkout's top) that the other copies leave out (``LEFT_OUT`` in
        ``minitransformer/assignments/strip.py``) and this one holds: A7's CUDA kernels and the tests that set
        them up on the emulation of CUDA (``minitransformer/cuda_emulator.py``, in every copy).
    first : tuple of str
        The functions (``Add.backward``) whose bodies its ``ASSIGNMENT.md`` lists first, in this order, where its
        text says to start with them; the others follow in the order of the files and their lines.
    case_timeout : float
        Seconds one of its graded cases may take before the grader stops it (``CASE_TIMEOUT``, 60, unless its cases
        need more); ``minitransformer assignments grade --case-timeout`` overrides it.

    Examples
    --------
    >>> from minitransformer.assignments import get
    >>> a = get(2)
    >>> a.tag, a.title
    ('A2', 'Softmax and scaled dot-product attention')
    """

    number: int
    title: str
    files: tuple[str, ...]
    notebooks: tuple[str, ...]
    keeps: tuple[str, ...] = ()
    first: tuple[str, ...] = ()
    case_timeout: float = CASE_TIMEOUT

    @property
    def tag(self) -> str:
        """``"A<N>"``, the prefix of its markers and of its ``NotImplementedError`` messages."""
        return f"A{self.number}"

    @property
    def paths(self) -> list[str]:
        """Its files (the package's, then the notebooks'), in this order, from the checkout's top."""
        return [f"minitransformer/{f}" for f in self.files] + [f"notebooks/{n}.ipynb" for n in self.notebooks]


ASSIGNMENTS: tuple[Assignment, ...] = (
    Assignment(1, "Autograd primitives and their derivatives",
               ("autograd/engine.py", "autograd/ops.py", "autograd/fused.py"), ("01_autograd",),
               first=("Add.backward", "Mul.backward", "Sum.backward")),  # gradcheck's tests all go through them
    Assignment(2, "Softmax and scaled dot-product attention",
               ("functional/activations.py", "autograd/fused.py", "functional/attention.py"),
               ("02_scaled_dot_product_attention",)),
    Assignment(3, "Multi-head attention and positional encoding",
               ("nn/attention.py", "functional/positional.py"),
               ("03_multi_head_attention", "04_positional_encoding")),
    Assignment(4, "Layer norm, feed-forward, the encoder and decoder layers",
               ("functional/normalization.py", "autograd/fused.py", "nn/layers.py", "nn/transformer.py"),
               ("05_training_reverse",)),
    Assignment(5, "Adam, the warm-up schedule and training the reverse task",
               ("optim/adam.py", "optim/schedule.py", "train/trainer.py"), ("05_training_reverse",)),
    Assignment(6, "Decoding: greedy search, beam search and sampling", ("train/decoding.py",), ("08_decoding",)),
    Assignment(7, "GPU kernels: block reductions, softmax and layer norm in CUDA", ("kernels.py",),
               ("12_gpu_kernels",),
               # (its slowest case, the first, whose setup compiles the kernels, takes about 3 s: CASE_TIMEOUT will do)
               keeps=("minitransformer/kernels.py", "tests/test_kernels.py")),
)
"""A1 to A7 in order, each an :class:`Assignment` that builds on the ones before it (A3's multi-head attention
calls A2's attention, whose gradient flows through A1's primitives, and A6 decodes with the model that A2 to A4
build; A7 writes in CUDA the row reductions of A2's softmax and A4's layer norm)."""


def get(number) -> Assignment:
    """The assignment ``A<number>``; a clear error for any other number.

    >>> get(5).title
    'Adam, the warm-up schedule and training the reverse task'
    >>> get(8)
    Traceback (most recent call last):
    ...
    ValueError: assignments: there is no assignment 8; the assignments are 1, 2, 3, 4, 5, 6, 7
    """
    for a in ASSIGNMENTS:
        if str(number) in (str(a.number), a.tag):
            return a
    known = ", ".join(str(a.number) for a in ASSIGNMENTS)
    raise ValueError(f"assignments: there is no assignment {number}; the assignments are {known}")
