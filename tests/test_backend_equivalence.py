"""tools/backend_equivalence.py on the CPU: NumPy and array-api-strict agree on whole models.

The same script runs NumPy against CuPy on a GPU machine (tools/gpu_check.sh)."""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.single_backend


def _load():
    path = Path(__file__).resolve().parents[1] / "tools" / "backend_equivalence.py"
    spec = importlib.util.spec_from_file_location("backend_equivalence", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_numpy_and_array_api_strict_give_the_same_losses_and_gradients():
    pytest.importorskip("array_api_strict")
    rows = _load().compare("array_api_strict")
    assert {r["model"] for r in rows} == {"Transformer", "DecoderOnlyLM", "TransformerClassifier"}
    for r in rows:
        assert r["loss_rel"] <= r["limit"] and r["grad_rel"] <= r["limit"], r
        assert r["parameters"] > 10
