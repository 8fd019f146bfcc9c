"""tools/backend_equivalence.py on the CPU: NumPy and array-api-strict agree on whole models.

The same script runs NumPy against CuPy on a GPU machine (tools/gpu_check.sh)."""

from pathlib import Path

import numpy as np
import pytest

from references import module_from_file

pytestmark = pytest.mark.single_backend


def _load():
    path = Path(__file__).resolve().parents[1] / "tools" / "backend_equivalence.py"
    return module_from_file(path, "backend_equivalence")


def test_numpy_and_array_api_strict_give_the_same_losses_and_gradients():
    pytest.importorskip("array_api_strict")
    rows = _load().compare("array_api_strict")
    assert {r["model"] for r in rows} == {"Transformer", "DecoderOnlyLM", "TransformerClassifier"}
    for r in rows:
        assert r["loss_rel"] <= r["limit"] and r["grad_rel"] <= r["limit"], r
        assert r["parameters"] > 10


def _perturbed(tool, monkeypatch, loss_by: float, grad_by: float, key_bias_by: float):
    """The other backend's results changed on purpose: the loss and the first W_Q weight scaled by 1 + ``loss_by`` and
    1 + ``grad_by``, and ``key_bias_by`` times the model's largest gradient added to every key bias's."""
    run = tool._run

    def perturbed(build, loss, backend, dtype, state):
        value, grads = run(build, loss, backend, dtype, state)
        if backend == "numpy":
            return value, grads
        scale = max(float(np.max(np.abs(g))) for g in grads.values())
        first = next(k for k in grads if k.endswith("W_Q.weight"))
        grads[first] = grads[first] * (1 + grad_by)
        for k in grads:
            if k.endswith("W_K.bias"):
                grads[k] = grads[k] + key_bias_by * scale
        return value * (1 + loss_by), grads

    monkeypatch.setattr(tool, "_run", perturbed)


def test_the_comparison_measures_each_gradient_and_the_key_bias_against_the_largest(monkeypatch):
    pytest.importorskip("array_api_strict")
    tool = _load()
    _perturbed(tool, monkeypatch, loss_by=1e-4, grad_by=1e-3, key_bias_by=0.0)
    for r in tool.compare("array_api_strict", dtypes=("float64",)):
        assert r["loss_rel"] == pytest.approx(1e-4) and r["grad_rel"] == pytest.approx(1e-3)
        assert r["worst_param"].endswith("W_Q.weight")
    # the key bias's gradient is rounding noise (0 in exact arithmetic): its error is read against the largest
    tool = _load()  # (a fresh module: the perturbation above is not carried over)
    _perturbed(tool, monkeypatch, loss_by=0.0, grad_by=0.0, key_bias_by=2e-3)
    for r in tool.compare("array_api_strict", dtypes=("float64",)):
        assert r["grad_rel"] == pytest.approx(2e-3, rel=1e-6) and r["worst_param"].endswith("W_K.bias")


def test_main_says_which_model_is_over_the_limit_and_fails(monkeypatch, capsys):
    pytest.importorskip("array_api_strict")
    tool = _load()
    assert tool.main(["--backend", "array_api_strict"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("numpy vs array_api_strict: ") and out.rstrip().endswith("all within limits")
    _perturbed(tool, monkeypatch, loss_by=0.0, grad_by=1e-8, key_bias_by=0.0)  # over float64's 1e-12, not float32's
    assert tool.main(["--backend", "array_api_strict"]) == 1
    lines = capsys.readouterr().out.splitlines()
    over = [line.split()[:2] for line in lines if line.endswith("<-- over the limit")]
    assert over == [[model, "float64"] for model in ("Transformer", "DecoderOnlyLM", "TransformerClassifier")]
    assert lines[-1] == "SOME OVER THE LIMIT"
