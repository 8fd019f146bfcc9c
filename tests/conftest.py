"""One switch runs every test on every array backend available.

The autouse fixture ``backend`` is parametrised over the backends that work here: NumPy and
array-api-strict everywhere, CuPy where CuPy and a GPU exist. Each test runs once per backend with
that backend current. ``--backends numpy,cupy`` picks some; ``@pytest.mark.single_backend``
runs a test once (on NumPy) when the backend cannot matter to it.

``--emulated-kernels`` gives the numpy backend the CUDA kernels of ``minitransformer/kernels.py``, run on the CPU
by ``minitransformer.cuda_emulator`` (g++): the code path CuPy takes, without a GPU. It takes minutes
per file for the training tests (``tests/test_train.py`` with ``tests/test_fused.py``: about 7), e.g. for
the fused operations (their float32 checks are rows of ``tests/test_functional_formulas.py``'s table)
``python -m pytest --emulated-kernels --backends numpy tests/test_functional_formulas.py tests/test_fused.py``,
and ``tests/test_nn_attention.py`` for the attention modules.

``@pytest.mark.needs("tools", ...)`` marks a test of something a student copy (``minitransformer assignments
build``) leaves out -- docs/, tools/, the CI's files, ``minitransformer/kernels.py``: where it is absent, the
test is skipped, saying so. A graded test (``@pytest.mark.assignment``) may not carry it: grading would skip it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt


def pytest_addoption(parser):
    parser.addoption(
        "--backends",
        default=None,
        help="comma-separated backends to run the suite on (default: every one available here)",
    )
    parser.addoption(
        "--emulated-kernels",
        action="store_true",
        help="run the numpy backend on the CUDA kernels, emulated on the CPU with g++ (CuPy's code path; slow)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*paths): a test of files a student copy leaves out (paths from the "
                                       "checkout's top); skipped where one is absent")


ROOT = Path(__file__).resolve().parents[1]
# the Python processes the tests start (the command line, pytest on a copy) write UTF-8, which the tests read as
# such (encoding="utf-8"): on Windows a pipe would carry the locale's cp1252, which lacks the formulas' characters
os.environ["PYTHONIOENCODING"] = "utf-8"


def _absent(paths) -> str:
    """The ``paths`` that are not here, as a skip's reason ("" when all are). Those in the package are looked for
    beside the ``minitransformer`` imported: grading runs these tests on a student's copy of the package."""
    package_root = Path(mt.__file__).resolve().parents[1]
    absent = [p for p in paths if not ((package_root if p.startswith("minitransformer/") else ROOT) / p).exists()]
    return (f"not in a student copy: {', '.join(absent)} (see LEFT_OUT and COPIED in "
            "minitransformer/assignments/strip.py)") if absent else ""


def pytest_collection_modifyitems(config, items):
    for item in items:
        paths = [p for mark in item.iter_markers("needs") for p in mark.args]
        if not paths:
            continue
        if item.get_closest_marker("assignment") is not None:
            raise pytest.UsageError(f"{item.nodeid}: a graded test cannot be marked needs({', '.join(paths)}): "
                                    "a student's copy lacks them, and grading would skip it")
        if reason := _absent(paths):
            item.add_marker(pytest.mark.skip(reason=reason))


def _backends(config) -> list[str]:
    chosen = config.getoption("--backends")
    if chosen:
        return [mt.backend.get(name).name for name in chosen.split(",")]
    return mt.backend.available()


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker("single_backend")
        names = ["numpy"] if marked else _backends(metafunc.config)
        metafunc.parametrize("backend", names, indirect=True, scope="function")


@pytest.fixture(scope="session")
def emulated_cuda():
    """The CUDA kernels run on the CPU by ``minitransformer.cuda_emulator`` as ``tests/test_kernels.py`` sets them up
    (skips without g++, and in a student copy that lacks the kernels)."""
    if reason := _absent(["tests/test_kernels.py", "minitransformer/kernels.py"]):
        pytest.skip(reason)
    # their set-up (NumPy for CuPy, a stand-in of cuBLAS) lives with the kernels' tests; this suite imports its
    # files by path (--import-mode=importlib)
    spec = importlib.util.spec_from_file_location("emulated_cuda", Path(__file__).with_name("test_kernels.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.emulated_kernels()


@pytest.fixture(scope="session")
def _emulated_kernels(request):
    """The emulated CUDA kernels with ``--emulated-kernels``, else None."""
    return request.getfixturevalue("emulated_cuda") if request.config.getoption("--emulated-kernels") else None


@pytest.fixture(autouse=True)
def _numpy_on_emulated_kernels(_emulated_kernels):
    """With ``--emulated-kernels``, the numpy backend runs the CUDA kernels (emulated) during each test."""
    if _emulated_kernels is None:
        yield
        return
    numpy_backend = mt.backend.get("numpy")
    previous, numpy_backend.kernels = numpy_backend.kernels, _emulated_kernels
    try:
        yield
    finally:
        numpy_backend.kernels = previous


@pytest.fixture(scope="module")
def restore_blas_threads():
    """The CLI's commands set NumPy's BLAS to one thread; put the test process's setting back after the module
    (``pytestmark = pytest.mark.usefixtures("restore_blas_threads")``)."""
    from minitransformer.train.threads import get_blas_threads, set_blas_threads

    before = get_blas_threads()
    yield
    if before:
        set_blas_threads(before)


@pytest.fixture(autouse=True)
def backend(request):
    """The backend this test runs on, made current for the test (and seeded). The range checks the test left for the
    next read of the device (check_values off: CuPy, array_api_strict) are made at its end, so that a bad value is
    blamed on the test that gave it, not on the next test to read the device."""
    name = getattr(request, "param", "numpy")
    with mt.backend.use(name) as be:
        mt.manual_seed(0)
        yield be
    for used in list(mt.backend._BACKENDS.values()):
        if used._checks_later:
            used._make_checks_later()
    if not mt.is_grad_enabled():  # a test that left grad mode off would fail the next ones' backward(), far from it
        mt.enable_grad().__enter__()
        pytest.fail(f"{request.node.nodeid} left grad mode off (a no_grad or evaluating block not ended)")


@pytest.fixture
def checking_values(backend):
    """The backend with its value checks on, for tests of their messages.

    CuPy's come later by default: reading token ids makes the host wait for the GPU, so they are read at the next
    read of the device (Backend.check_values, Backend.check_range).
    """
    previous, backend.check_values = backend.check_values, True
    yield backend
    backend.check_values = previous


@pytest.fixture
def checking_later(backend):
    """The backend with its value checks put off to the next read of the device, as on CuPy (check_values off)."""
    previous, backend.check_values = backend.check_values, False
    yield backend
    backend.check_values = previous


@pytest.fixture
def to_numpy():
    """Any tensor or array (of any backend) as a float64 NumPy array, for comparisons."""

    def convert(x):
        if isinstance(x, mt.Tensor):
            return x.numpy().astype(np.float64)
        return np.asarray(mt.backend.get(mt.backend._backend_name_of(x) or "numpy").to_host(x), dtype=np.float64)

    return convert


@pytest.fixture
def pairs_file(tmp_path):
    """:data:`references.PAIRS` (tests/data/en-fr.tsv) in a file of its own, which a test may edit. (Read here, not
    imported: this conftest stands alone, without references.py, in a checkout that lacks it.)"""
    path = tmp_path / "en-fr.tsv"
    path.write_bytes((Path(__file__).parent / "data" / "en-fr.tsv").read_bytes())
    return path


@pytest.fixture
def rng():
    """A NumPy generator for test data, independent of the library's own."""
    return np.random.default_rng(1234)
