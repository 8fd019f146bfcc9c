"""The command line: ``demo``, ``info`` and ``bench autograd`` run, print, and write what they promise.

Times and ratios are never asserted (the machine is shared); the benchmark's figures are checked
for shape and sign, and its workload for the exact number of operations it claims to time.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path

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
    dot = (out / "graph.dot").read_text(encoding="utf-8")
    assert dot.startswith("digraph {") and "Tanh" in dot
    tree = """y ()  <- Tanh
└── z ()  <- Add
    ├── s ()  <- Sum
    │   └── x*w (3,)  <- Mul
    │       ├── x (3,)  leaf, requires_grad
    │       └── w (3,)  leaf, requires_grad
    └── b ()  leaf, requires_grad
"""
    assert tree in text  # the graph, printed as a tree

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
    afile.write_text("keep me", encoding="utf-8")
    assert main(["demo", "--out", str(afile), "--steps", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"minitransformer demo: --out {str(afile)!r} is a file, not a folder\n"
    assert captured.out == "" and afile.read_text(encoding="utf-8") == "keep me"


@pytest.mark.parametrize("command", [["demo", "--steps", "0"], ["train", "--task", "copy", "--steps", "1"]])
def test_an_empty_out_is_refused_not_read_as_the_current_folder(tmp_path, monkeypatch, capsys, command):
    """--out "" (a variable left unset in a script) wrote checkpoint.npz, metrics.json and the pictures into the
    folder the command ran in, among the user's own files."""
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", ""]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"minitransformer {command[0]}: --out '' names no folder; give one, such as "
                            "train-output/run\n") and captured.out == ""
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the demo's sections one at a time
# (their expensive parts, rendering and the Transformer run, stood in for)
def test_demo_gradcheck_checks_section_1s_expression_at_its_point(monkeypatch, capsys):
    from minitransformer import demo

    checked, gradcheck = [], mt.gradcheck

    def spy(fn, *inputs, **kwargs):
        checked.append((fn, inputs))
        return gradcheck(fn, *inputs, **kwargs)

    monkeypatch.setattr(mt, "gradcheck", spy)
    demo.check_gradients()
    assert "x, w, b match" in capsys.readouterr().out
    (f, (x, w, b)), (g, (W,)) = checked
    # the point of section 1, in float64, every input checked (a constant one is not checked: "x, w, b match")
    np.testing.assert_array_equal(x.numpy(), [0.5, -1.0, 2.0])
    np.testing.assert_array_equal(w.numpy(), [0.3, 0.2, -0.1])
    assert b.item() == 0.1 and all(t.requires_grad and t.dtype == np.float64 for t in (x, w, b, W))
    # y = tanh(0.5*0.3 - 1*0.2 - 2*0.1 + 0.1) = tanh(-0.15), as printed in section 1
    assert f(x, w, b).item() == pytest.approx(np.tanh(-0.15), rel=1e-12)
    assert W.shape == (3, 4)  # "W of shape (3, 4)"
    np.testing.assert_allclose(g(W).numpy(), np.tanh(np.array([0.5, -1.0, 2.0]) @ W.numpy()), rtol=1e-12)


@pytest.mark.parametrize("steps", [500, 1])  # one step: one update more would show in the 3 decimals printed
def test_demo_xor_is_plain_gradient_descent_on_the_mean_squared_error(steps, capsys):
    """Section 5 against the same network trained in NumPy float64: 8 tanh units, W_2 scaled by 1/sqrt(8),
    biases from 0, lr 0.05, the loss printed every 50 steps and returned at the last; ``steps`` updates, so
    the predictions shown are those of the last loss printed."""
    from minitransformer import demo

    final = demo.train_xor(steps=steps)
    text = capsys.readouterr().out
    mt.manual_seed(0)  # the demo's initial draws, from the library's generator
    W1 = mt.randn(2, 8).numpy().astype(np.float64)
    W2 = mt.randn(8, 1).numpy().astype(np.float64) / np.sqrt(8)
    b1, b2 = np.zeros(8), np.zeros(1)
    X, t = np.array([[0.0, 0], [0, 1], [1, 0], [1, 1]]), np.array([[0.0], [1], [1], [0]])
    losses = []
    for step in range(steps + 1):
        h = np.tanh(X @ W1 + b1)
        p = h @ W2 + b2
        losses.append(np.mean((p - t) ** 2))
        if step == steps:  # no update after the last loss
            break
        dp = 2 * (p - t) / 4  # dL/dp of L = mean((p - t)^2) over 4 rows
        da = dp @ W2.T * (1 - h**2)
        W2, b2, W1, b1 = W2 - 0.05 * h.T @ dp, b2 - 0.05 * dp.sum(0), W1 - 0.05 * X.T @ da, b1 - 0.05 * da.sum(0)
    printed = re.findall(r"^step\s+(\d+)\s+loss (\S+)$", text, flags=re.M)
    assert [int(s) for s, _ in printed] == list(range(0, steps + 1, 50))
    np.testing.assert_allclose([float(v) for _, v in printed], losses[::50], rtol=1e-3, atol=1e-6)
    assert final == pytest.approx(losses[steps], rel=1e-3)
    shown = [float(v) for v in re.findall(r"-> (\S+) \(\d\)$", text, flags=re.M)]
    np.testing.assert_allclose(shown, p[:, 0], atol=2e-3)


def test_demo_pictures_are_example_4_3_1s_weights_and_a_64_by_128_table(tmp_path, monkeypatch, capsys):
    from minitransformer import demo, viz

    drawn = {}

    class Figure:  # stands in for matplotlib's: nothing is rendered
        def savefig(self, path, **kwargs):
            drawn.setdefault("saved", []).append(path)

    def heatmap(name):
        def draw(table, *args, **kwargs):
            drawn[name] = table
            return Figure()
        return draw

    monkeypatch.setattr(viz, "attention_heatmap", heatmap("weights"))
    monkeypatch.setattr(viz, "positional_encoding_heatmap", heatmap("PE"))
    written = demo.pictures(tmp_path)
    assert written == drawn["saved"] == [tmp_path / "attention_4_3_1.png", tmp_path / "positional_encoding.png"]
    # 4.3.1: Q = K = V = [1, 2, 3] as three tokens of d_k = 1, so the weights are softmax_j(q_i k_j / sqrt(1))
    scores = np.outer([1.0, 2, 3], [1.0, 2, 3])
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(drawn["weights"].numpy(), expected, rtol=1e-12)
    # PE (64, 128): PE[pos, 2i] = sin(pos / 10000^(2i/128)), PE[pos, 2i+1] = cos(...)
    angle = np.arange(64)[:, None] / 10000 ** (np.arange(0, 128, 2) / 128)
    PE = drawn["PE"].numpy()
    assert PE.shape == (64, 128)
    np.testing.assert_allclose(PE[:, 0::2], np.sin(angle), atol=1e-6)
    np.testing.assert_allclose(PE[:, 1::2], np.cos(angle), atol=1e-6)


def test_demo_run_makes_its_folder_runs_again_into_it_and_trains_unless_steps_is_0(tmp_path, monkeypatch, capsys):
    from minitransformer import demo

    trained = []
    for name in ("show_graph", "gradients", "check_gradients", "train_xor", "worked_examples", "pictures"):
        monkeypatch.setattr(demo, name, lambda *args: None)
    monkeypatch.setattr(demo, "forward", lambda: (None,) * 4)
    monkeypatch.setattr(demo, "train_reverse", lambda out, steps, progress: trained.append((out, steps, progress)))
    out = tmp_path / "new" / "pictures"  # its parent does not exist either
    assert demo.run(out, train_steps=0) == 0 and out.is_dir() and trained == []  # "0 skips it"
    assert demo.run(out, train_steps=1) == 0 and trained == [(out, 1, True)]  # the same folder again: a second run
    monkeypatch.chdir(tmp_path)
    assert demo.run() == 0  # as `minitransformer demo`: demo-output and 300 steps, its --help's defaults
    assert trained[-1] == (Path("demo-output"), 300, True) and (tmp_path / "demo-output").is_dir()
    assert demo.run(out, train_steps=1, progress="lines") == 0 and trained[-1] == (out, 1, "lines")


def test_demo_train_reverse_runs_300_steps_of_the_reverse_task_by_default(tmp_path, monkeypatch, capsys):
    from minitransformer import demo
    from minitransformer.train import run

    calls = []
    monkeypatch.setattr(run, "train", lambda *args, **kwargs: calls.append((args, kwargs)) or {})
    demo.train_reverse(tmp_path)
    (args, kwargs), = calls
    assert args == ("reverse", tmp_path / "reverse") and kwargs["steps"] == 300
    assert kwargs["backend"] == mt.backend.current().name
    assert kwargs["progress"] is True  # a bar (a line per log into a file or a pipe), as train's
    demo.train_reverse(tmp_path, progress="lines")
    assert calls[-1][1]["progress"] == "lines"


def test_demo_hands_progress_to_its_training_run(tmp_path, monkeypatch):
    """demo trains a model at its end: --progress {bar,lines,none} (and --no-progress) are that run's, as train's."""
    from minitransformer import demo

    given = []
    monkeypatch.setattr(demo, "run", lambda **kwargs: given.append(kwargs) or 0)
    for option, progress in ((["--progress", "lines"], "lines"), (["--no-progress"], "none"), ([], "bar")):
        assert main(["demo", "--out", str(tmp_path), *option]) == 0
        assert given.pop() == {"out": str(tmp_path), "train_steps": 300, "progress": progress}



def test_the_demo_runs_on_a_console_that_lacks_its_characters(tmp_path, monkeypatch):
    """Windows' cp1252 (the demo's output redirected to a file) and a POSIX C locale have no box-drawing characters:
    the graph's branches print as ``?`` and the tour goes on (it stopped there, "'charmap' codec can't encode",
    exit 2)."""
    from minitransformer import demo

    for name in ("gradients", "check_gradients", "train_xor", "worked_examples", "pictures"):
        monkeypatch.setattr(demo, name, lambda *args: None)
    console = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    monkeypatch.setattr(sys, "stdout", console)
    assert main(["demo", "--out", str(tmp_path), "--steps", "0"]) == 0
    console.flush()
    printed = console.buffer.getvalue().decode("cp1252")
    assert "== 2. the computation graph" in printed and "\n??? z ()  <- Add\n" in printed  # "└── z ()  <- Add"


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
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["backend"] == "array_api_strict"

    monkeypatch.setenv("MINITRANSFORMER_BACKEND", "bogus")  # a bad value is named, in one line
    monkeypatch.setattr(mt.backend, "_current", None)
    assert main([*argv, "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.startswith("minitransformer: MINITRANSFORMER_BACKEND='bogus': unknown backend")
    assert main([*argv, "--backend", "numpy", "--out", str(tmp_path / "np")]) == 0  # an explicit choice wins
    assert "on backend numpy" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["info"], ["bench", "autograd"]])
def test_info_and_bench_name_a_bad_backend_in_the_environment_in_one_line(monkeypatch, capsys, argv):
    """info, the command that diagnoses the backends, and bench printed two chained tracebacks where train, evaluate,
    generate and demo print one line."""
    monkeypatch.setenv("MINITRANSFORMER_BACKEND", "bogus")
    monkeypatch.setattr(mt.backend, "_current", None)  # as in a fresh process
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == ("minitransformer: MINITRANSFORMER_BACKEND='bogus': unknown backend 'bogus'; choose one "
                            "of 'numpy', 'cupy', 'array_api_strict'\n") and captured.out == ""


def test_memory_the_system_cannot_give_is_one_line_naming_the_settings_that_need_it(monkeypatch, capsys):
    """train --d-model 100000 ended in a 40-line traceback through cli, run, tasks and nn, its last line NumPy's
    "Unable to allocate 37.3 GiB for an array with shape (100000, 100000)"."""
    from minitransformer.train import run

    def asks_too_much(*args, **kwargs):
        return np.empty((10**7, 10**7), dtype=np.float32)  # 400 TB: refused by NumPy before the system is asked

    monkeypatch.setattr(run, "train", asks_too_much)
    assert main(["train", "--task", "reverse", "--no-progress", "--no-pictures"]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(r"minitransformer train: out of memory \(Unable to allocate \d+\.?\d* [TPE]iB for an array "
                        r"with shape \(10000000, 10000000\) and data type float32\): smaller settings need less "
                        r"\(--d-model, --d-ff, --layers, --batch-size, --max-new-tokens, \.\.\.\)\n", err), err


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "minitransformer", "info"], capture_output=True, encoding="utf-8", timeout=120
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
    report = json.loads(path.read_text(encoding="utf-8"))
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


class _Clock:
    """A stand-in for ``time`` in bench: ``perf_counter()`` moves only when a test moves it."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


def test_bench_time_is_the_seconds_the_calls_took(monkeypatch):
    clock, calls = _Clock(), []
    monkeypatch.setattr(bench, "time", clock)

    def call():
        calls.append(1)
        clock.now += 0.25

    assert bench._time(call, 3) == pytest.approx(0.75) and len(calls) == 3  # 3 calls of 0.25 s


@pytest.mark.parametrize("seconds_per_call, calls", [
    (0.007, 6),  # a 40 ms sample: ceil(40 / 7) calls
    (0.1, 1),    # one call outlasts a sample: one call
])
def test_bench_calibrate_fills_a_sample_with_calls(seconds_per_call, calls, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(bench, "time", clock)
    monkeypatch.setattr(bench, "SAMPLE_SECONDS", 0.04)

    def call():
        clock.now += seconds_per_call

    assert bench._calibrate(call) == calls


@pytest.mark.parametrize("expected, got, agree", [
    (1.0, 1.00005, True), (1.0, 1.00015, False),  # rtol 1e-4
    (0.0, 0.5e-6, True), (0.0, 1.5e-6, False),  # atol 1e-6, where the value is 0
])
def test_bench_agreement_refuses_a_forward_just_outside_its_tolerance(expected, got, agree):
    variants = {"numpy_forward": lambda: np.array([0.5, expected]), "mt_forward": lambda: mt.tensor([0.5, got])}
    if agree:
        bench._check_agreement(variants, None, 3, None)
    else:
        with pytest.raises(RuntimeError, match="forward differs from NumPy"):
            bench._check_agreement(variants, None, 3, None)


@pytest.mark.parametrize("ours, theirs, agree", [
    (1.0, 1.0005, True), (1.0, 1.0015, False),  # rtol 1e-3
    (0.0, 0.5e-6, True), (0.0, 1.5e-6, False),  # atol 1e-6, where the gradient is 0
])
def test_bench_agreement_refuses_a_gradient_just_outside_its_tolerance(ours, theirs, agree, monkeypatch):
    """Each library's chain stood in by y = slope x (dy/dx = slope); "PyTorch" is this library again."""
    monkeypatch.setattr(bench, "_mt_forward", lambda x, n_ops: x * ours)
    monkeypatch.setattr(bench, "_torch_forward", lambda torch, x, n_ops: x * theirs)
    torch = types.SimpleNamespace(tensor=mt.tensor, ones_like=lambda y: mt.ones(*y.shape))
    x0 = np.array([0.5, -0.5], dtype=np.float32)
    variants = {"numpy_forward": lambda: x0, "mt_forward": lambda: mt.tensor(x0)}
    if agree:
        bench._check_agreement(variants, x0, 3, torch)
    else:
        with pytest.raises(RuntimeError, match="gradient differs"):
            bench._check_agreement(variants, x0, 3, torch)


def test_bench_autograd_times_each_variant_doing_its_own_work_in_us_per_op(monkeypatch):
    """A fake clock: a call of any chain costs 3 ms, a backward pass 2 ms more. A forward variant that also ran
    backward, a reference that skipped it, or the wrong units (seconds / calls / ops * 1e6) show in the figures."""
    passes = [0]

    def counted(backward):
        def wrapper(self, *args, **kwargs):
            passes[0] += 1
            return backward(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(mt.Tensor, "backward", counted(mt.Tensor.backward))
    torch = bench._import_torch()[0]
    if torch is not None:
        monkeypatch.setattr(torch.Tensor, "backward", counted(torch.Tensor.backward))

    def fake_time(fn, inner):
        before = passes[0]
        for _ in range(inner):
            fn()
        return 0.003 * inner + 0.002 * (passes[0] - before)

    monkeypatch.setattr(bench, "_time", fake_time)
    monkeypatch.setattr(bench, "_calibrate", lambda fn: 2)
    report = bench.run_autograd(chain=5, size=3, repeat=2)
    # 2 calls of 5 ops: forward 6 ms, 600 us per op; forward + backward 10 ms, 1000 us per op
    expected = {"numpy_forward": 600, "mt_forward": 600, "mt_forward_backward": 1000}
    if torch is not None:
        expected |= {"torch_forward": 600, "torch_forward_backward": 1000}
        assert report["ratios"]["mt_forward_backward_vs_torch"] == pytest.approx(1.0)
    for name, us in expected.items():
        assert report["results"][name]["samples_us_per_op"] == pytest.approx([us, us]), name
    assert report["ratios"]["mt_forward_backward_vs_numpy"] == pytest.approx(1000 / 600)


def test_bench_autograd_defaults_are_the_documented_ones(monkeypatch):
    """docs/benchmarks.md: a chain of 200 operations on 16 elements, 7 repetitions, beside PyTorch if it imports."""
    checked = []
    monkeypatch.setattr(bench, "_check_agreement", lambda variants, x0, n_ops, torch: checked.append((x0.shape, n_ops)))
    monkeypatch.setattr(bench, "_calibrate", lambda fn: 1)
    monkeypatch.setattr(bench, "_time", lambda fn, inner: 1e-3)
    report = bench.run_autograd()
    assert checked == [((16,), 200)] and report["ops_per_chain"] == 200
    assert all(len(r["samples_us_per_op"]) == 7 for r in report["results"].values())
    assert report["torch_missing"] != "not requested"  # PyTorch was asked for (imported, or why not)


def test_bench_table_puts_each_ratio_in_its_column_and_1_beside_the_references():
    us = {"numpy_forward": 1.5, "mt_forward": 6.0, "torch_forward": 9.0, "mt_forward_backward": 18.0,
          "torch_forward_backward": 24.0}
    ratios = {f"{name}_vs_numpy": value / 1.5 for name, value in us.items() if name != "numpy_forward"}
    ratios |= {"mt_forward_vs_torch": 6.0 / 9.0, "mt_forward_backward_vs_torch": 18.0 / 24.0}
    machine = {"torch": "2.0", "torch_threads": 2, "backend": "numpy", "cpu_count": 2, "platform": "Linux",
               "python": "3.11", "numpy": "2.0", "numpy_blas_threads": 2}
    report = {"machine": machine, "results": {name: {"us_per_op": v} for name, v in us.items()}, "ratios": ratios,
              "ops_per_chain": 200, "steps": ["mul", "add", "tanh"], "size": 16, "repeat": 3, "torch_missing": None}
    lines = bench.format_table(report).splitlines()
    header = next(line for line in lines if line.startswith("variant"))
    assert lines[lines.index(header) + 1] == "-" * len(header)  # the rule is as wide as the header
    rows = {line[:38].strip(): line[38:].split() for line in lines if line[:38].strip() in bench.LABELS.values()}
    assert rows == {  # us/op, x NumPy, x PyTorch
        "NumPy, forward (no gradients)": ["1.50", "1.00"],
        "minitransformer, forward (no_grad)": ["6.00", "4.00", "0.67"],
        "PyTorch eager, forward (no_grad)": ["9.00", "6.00", "1.00"],
        "minitransformer, forward + backward": ["18.00", "12.00", "0.75"],
        "PyTorch eager, forward + backward": ["24.00", "16.00", "1.00"],
    }
