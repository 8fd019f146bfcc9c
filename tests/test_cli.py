"""The command line: ``demo``, ``info`` and ``bench autograd`` run, print, and write what they promise.

Times and ratios are never asserted (the machine is shared); the benchmark's figures are checked
for shape and sign, and its workload for the exact number of operations it claims to time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import bench, info
from minitransformer.autograd import graph
from minitransformer.cli import main

pytestmark = pytest.mark.single_backend


# ------------------------------------------------------------------ demo
def test_demo_prints_the_tour_and_saves_the_graph(tmp_path, capsys):
    out = tmp_path / "pictures"  # does not exist yet: the demo creates it
    assert main(["demo", "--out", str(out), "--steps", "12"]) == 0
    text = capsys.readouterr().out

    png = out / "graph.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png.resolve()) in text
    dot = (out / "graph.dot").read_text()
    assert dot.startswith("digraph {") and "Tanh" in dot and dot in text + "\n"

    # forward: y = tanh(0.5*0.3 - 1*0.2 - 2*0.1 + 0.1) = tanh(-0.15)
    assert f"y = tanh(z)    = {np.tanh(-0.15):.4f}" in text
    # backward, by hand: dy/db = 1 - tanh(-0.15)^2
    assert re.search(rf"dy/db\s+{1 - np.tanh(-0.15) ** 2:.4f}", text)

    losses = [float(v) for v in re.findall(r"^step\s+\d+\s+loss (\S+)$", text, flags=re.M)]
    assert len(losses) >= 5
    assert losses[-1] < 0.1 * losses[0]  # the loss falls

    # the document's worked examples, stated beside computed: 4.3.1's claimed output and the formula's
    assert "Document section 4.3.1: self-attention" in text and "0.2, 0.3, 0.5" in text
    for name in ("attention_4_3_1.png", "positional_encoding.png", "reverse/checkpoint.npz", "reverse/curves.png"):
        assert (out / name).stat().st_size > 1000, name
    assert re.search(r"^test_exact_sequence_accuracy\s+\d", text, flags=re.M)  # the closing training run


def test_demo_refuses_an_out_that_is_a_file_before_the_tour(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    assert main(["demo", "--out", str(afile), "--steps", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"minitransformer demo: --out {str(afile)!r} is a file, not a folder\n"
    assert captured.out == "" and afile.read_text() == "keep me"


# ------------------------------------------------------------------ info
def test_info_lists_versions_and_backends(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"^NumPy\s+{re.escape(np.__version__)}$", text, flags=re.M)
    assert re.search(rf"^minitransformer\s+{re.escape(mt.__version__)}$", text, flags=re.M)
    assert re.search(rf"^backend now\s+{mt.backend.current().name}$", text, flags=re.M)
    line = re.search(r"^backends available\s+(.*)$", text, flags=re.M).group(1)
    assert line.split(", ") == mt.backend.available()
    for name in ("Python", "array-api-compat", "array-api-strict", "CuPy", "PyTorch"):
        assert re.search(rf"^{name}\s+\S", text, flags=re.M), name


def test_info_says_when_optional_libraries_are_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    monkeypatch.setitem(sys.modules, "torch", None)
    text = info.report()
    assert re.search(r"^CuPy\s+not installed", text, flags=re.M)
    assert re.search(r"^PyTorch\s+not installed", text, flags=re.M)


def test_info_says_why_an_installed_cupy_is_unusable(monkeypatch):
    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    fake = types.ModuleType("cupy")
    fake.__version__ = "13.6.0"
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    line = re.search(r"^CuPy\s+(.*)$", info.report(), flags=re.M).group(1)
    assert "13.6.0" in line and "unusable" in line and "InsufficientDriver" in line


def _fake_cupy(count: int):
    """A CuPy that sees ``count`` GPUs: device 0 an H200 of 140 GiB (100.5 free), device 1 a smaller one."""
    gib = 2**30
    devices = [(b"NVIDIA H200", (100.5 * gib, 140 * gib)), (b"Tesla T4", (7 * gib, 15 * gib))][:count]

    def device(i):  # CUDA's answer for a device that is not there
        if not 0 <= i < count:
            raise RuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        return devices[i]

    fake = types.ModuleType("cupy")
    fake.__version__ = "13.6.0"
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: count, runtimeGetVersion=lambda: 12040,
                                      getDeviceProperties=lambda i: {"name": device(i)[0]}),
        Device=lambda i: types.SimpleNamespace(mem_info=device(i)[1]))
    return fake


@pytest.mark.parametrize("count, expected", [
    (2, "13.6.0, CUDA runtime 12.4, 2 GPU(s); device 0: NVIDIA H200, 140.0 GiB (100.5 GiB free)"),
    (0, "13.6.0, but no GPU is visible (check CUDA_VISIBLE_DEVICES)"),
])
def test_info_names_the_gpu_and_its_memory_in_gib(monkeypatch, count, expected):
    # memory in GiB = bytes / 1024^3, of device 0 (CuPy's default device), not of another
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count))
    assert re.search(r"^CuPy\s+(.*)$", info.report(), flags=re.M).group(1) == expected


# ------------------------------------------------------------------ train's backend
def test_train_without_backend_follows_the_environment(tmp_path, monkeypatch, capsys):
    """No --backend: MINITRANSFORMER_BACKEND chooses, as for demo and bench (train's default was numpy, always)."""
    pytest.importorskip("array_api_strict")
    monkeypatch.setenv("MINITRANSFORMER_BACKEND", "array_api_strict")
    monkeypatch.setattr(mt.backend, "_current", None)  # as in a fresh process
    out = tmp_path / "run"
    tiny = ["--d-model", "8", "--heads", "2", "--layers", "1", "--d-ff", "16", "--batch-size", "4", "--eval-every", "2"]
    argv = ["train", "--task", "copy", "--steps", "2", *tiny, "--no-progress", "--no-pictures", "--blas-threads", "0"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "on backend array_api_strict" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["backend"] == "array_api_strict"

    monkeypatch.setenv("MINITRANSFORMER_BACKEND", "bogus")  # a bad value is named, in one line
    monkeypatch.setattr(mt.backend, "_current", None)
    assert main([*argv, "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.startswith("minitransformer: MINITRANSFORMER_BACKEND='bogus': unknown backend")
    assert main([*argv, "--backend", "numpy", "--out", str(tmp_path / "np")]) == 0  # an explicit choice wins
    assert "on backend numpy" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "minitransformer", "info"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^backends available\s+numpy", done.stdout, flags=re.M)


# ------------------------------------------------------------------ bench
@pytest.fixture
def quick_samples(monkeypatch):
    monkeypatch.setattr(bench, "SAMPLE_SECONDS", 0.001)  # tiny samples: this checks the plumbing, not speed


def _check_figures(report, names, repeat):
    for name in names:
        r = report["results"][name]
        assert r["us_per_op"] > 0 and r["calls_per_sample"] >= 1
        assert len(r["samples_us_per_op"]) == repeat and all(s > 0 for s in r["samples_us_per_op"])
        assert r["us_per_op"] == pytest.approx(np.median(r["samples_us_per_op"]), rel=1e-12)
    assert all(v > 0 for v in report["ratios"].values())
    # ratios pair the samples of one repetition: the median of mt / numpy, repetition by repetition
    mt_us, np_us = (np.array(report["results"][k]["samples_us_per_op"]) for k in ("mt_forward", "numpy_forward"))
    assert report["ratios"]["mt_forward_vs_numpy"] == pytest.approx(np.median(mt_us / np_us), rel=1e-12)


def test_bench_autograd_writes_json(tmp_path, capsys, quick_samples):
    path = tmp_path / "bench.json"
    argv = ["bench", "autograd", "--chain", "7", "--repeat", "3", "--size", "4", "--json", str(path)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    report = json.loads(path.read_text())
    assert {"benchmark", "chain", "size", "repeat", "ops_per_chain", "machine", "results", "ratios"} <= set(report)
    assert (report["chain"], report["size"], report["repeat"], report["ops_per_chain"]) == (7, 4, 3, 7)
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["numpy"] == np.__version__
    names = ["numpy_forward", "mt_forward", "mt_forward_backward"]
    if report["machine"]["torch"] is not None:
        names += ["torch_forward", "torch_forward_backward"]
        assert {"mt_forward_vs_torch", "mt_forward_backward_vs_torch"} <= set(report["ratios"])
    assert set(report["results"]) == set(names)
    _check_figures(report, names, repeat=3)
    for name in names:
        assert bench.LABELS[name] in text  # one table row per variant
    assert str(path) in text


def test_bench_without_torch_reports_the_library_alone(capsys, monkeypatch, quick_samples):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["bench", "autograd", "--chain", "3", "--repeat", "2", "--size", "2"]) == 0
    text = capsys.readouterr().out
    assert "PyTorch: not found" in text
    report = bench.run_autograd(chain=3, size=2, repeat=2)
    assert set(report["results"]) == {"numpy_forward", "mt_forward", "mt_forward_backward"}
    assert report["machine"]["torch"] is None and report["torch_missing"]
    _check_figures(report, report["results"], repeat=2)


@pytest.mark.parametrize("flag", ["--chain", "--repeat", "--size"])
def test_bench_refuses_nonpositive_arguments(flag, capsys):
    assert main(["bench", "autograd", flag, "0"]) == 2
    assert f"--{flag.lstrip('-')} must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("n_ops", [1, 2, 3, 7])
def test_bench_chain_has_exactly_the_operations_it_counts(n_ops):
    x = mt.tensor([0.5, -0.5], requires_grad=True)
    nodes, _ = graph(bench._mt_forward(x, n_ops))
    ops = [n["label"] for n in nodes if n["kind"] == "op"]
    assert len(ops) == n_ops
    assert sorted(ops) == sorted(["Mul", "Add", "Tanh"][i % 3] for i in range(n_ops))


def test_bench_chain_computes_what_numpy_computes():
    x0 = np.array([0.5, -0.25, 1.0], dtype=np.float32)
    expected = x0.astype(np.float64)
    for i in range(5):  # mul, add, tanh, mul, add
        expected = [expected * 1.0001, expected + 0.0001, np.tanh(expected)][i % 3]
    got = bench._mt_forward(mt.tensor(x0), 5).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(bench._numpy_chain(x0, 5)(), expected, rtol=1e-6)
