"""``minitransformer train / evaluate / generate``: a tiny run writes its checkpoint, metrics and pictures, and the
other two commands read them back. Tiny settings: this checks the plumbing; learning is checked in test_train.py."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.cli import main
from minitransformer.train import read_checkpoint

pytestmark = [pytest.mark.single_backend, pytest.mark.usefixtures("restore_blas_threads")]

TINY = ["--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--batch-size", "16", "--no-progress"]
PNG = b"\x89PNG\r\n\x1a\n"


def _metric(text: str, name: str) -> float:
    return float(re.search(rf"^{name}\s+(\S+)$", text, flags=re.M).group(1))


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reverse")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = main(["train", "--task", "reverse", "--steps", "30", *TINY, "--out", str(out)])
    return code, out, text.getvalue()


def test_train_writes_checkpoint_metrics_and_pictures(reverse_run):
    code, out, text = reverse_run
    assert code == 0
    for name in ("curves.png", "attention_cross_attention.png", "attention_encoder_self_attention.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["task"] == "reverse" and saved["settings"]["d_model"] == 16 and saved["metrics"]["steps"] == 30
    accuracy = saved["metrics"]["test_exact_sequence_accuracy"]
    assert 0.0 <= accuracy <= 1.0 and _metric(text, "test_exact_sequence_accuracy") == pytest.approx(accuracy, abs=1e-4)
    assert "final metrics (held-out test split)" in text and str(out / "checkpoint.npz") in text
    ckpt = read_checkpoint(out / "checkpoint.npz")
    assert ckpt.step == 30 and ckpt.model_type == "Transformer" and ckpt.config["d_model"] == 16
    assert ckpt.extra["task"] == "reverse" and ckpt.tokenizer["vocab"] == list("0123456789")
    steps = [s for s, _ in ckpt.history["train_loss"]]
    assert steps[-1] == 30 and len(steps) == 30  # logged every step on a run this short


def test_train_draws_pictures_only_with_the_callers_function(tmp_path):
    """train.run is below viz: the command line passes the drawing (viz.training_pictures), train(pictures=True) has
    nothing to draw with and says so, before any work."""
    from minitransformer.train.run import train

    with pytest.raises(TypeError, match=r"^train: pictures must be a function \(setup, history, out, marks\) -> paths, "
                                        r"or "
                                        r"None; got True \(the command line's is "
                                        r"minitransformer\.viz\.training_pictures\)"):
        train("copy", tmp_path / "out", pictures=True, steps=1)
    assert not (tmp_path / "out").exists()


def test_a_notebook_loads_a_run_with_the_three_lines_of_the_training_page(reverse_run):
    """model_from_checkpoint was only in minitransformer.train.tasks: the lines docs/training.md shows."""
    import minitransformer.train as train

    _, out, _ = reverse_run
    page = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text(encoding="utf-8")
    lines = ['ckpt = read_checkpoint("runs/reverse/checkpoint.npz")', "model = model_from_checkpoint(ckpt)",
             "model.load_state_dict(ckpt.model_state)"]
    assert "from minitransformer.train import model_from_checkpoint, read_checkpoint\n" + "\n".join(lines) in page
    assert "model_from_checkpoint" in train.__all__
    ckpt = train.read_checkpoint(out / "checkpoint.npz")
    model = train.model_from_checkpoint(ckpt)
    model.load_state_dict(ckpt.model_state)
    assert type(model).__name__ == "Transformer"
    for name, weights in model.state_dict().items():
        np.testing.assert_array_equal(weights, ckpt.model_state[name])


def test_evaluate_measures_the_checkpoint_again(reverse_run, capsys):
    _, out, text = reverse_run
    assert main(["evaluate", str(out / "checkpoint.npz")]) == 0
    again = capsys.readouterr().out
    assert "task reverse, Transformer trained for 30 steps" in again
    for name in ("test_exact_sequence_accuracy", "test_token_accuracy", "test_loss"):
        assert _metric(again, name) == _metric(text, name)  # same data, same weights: the same figures


def test_evaluate_on_numpy_ignores_a_bad_environment_backend(reverse_run, monkeypatch, capsys):
    """--backend numpy is an explicit choice: MINITRANSFORMER_BACKEND (unusable here) is never read."""
    import minitransformer as mt

    _, out, _ = reverse_run
    monkeypatch.setenv("MINITRANSFORMER_BACKEND", "bogus")
    monkeypatch.setattr(mt.backend, "_current", None)  # as in a fresh process
    assert main(["evaluate", str(out / "checkpoint.npz"), "--backend", "numpy"]) == 0
    assert "task reverse" in capsys.readouterr().out


def test_generate_reads_digits_greedy_and_beam(reverse_run, capsys):
    _, out, _ = reverse_run
    for extra in ([], ["--beam", "3"]):
        assert main(["generate", str(out / "checkpoint.npz"), "--input", "3 1 4", *extra]) == 0
        tokens = capsys.readouterr().out.split()
        assert 1 <= len(tokens) <= 5 and all(t in "0123456789" or t == "<unk>" for t in tokens)
    assert main(["generate", str(out / "checkpoint.npz"), "--input", "3 x 4"]) == 2
    assert "reads digits 0-9, got '3 x 4'" in capsys.readouterr().err


def test_generate_decodes_greedily_at_beam_1_and_by_beam_search_of_the_size_given(untrained, monkeypatch, capsys):
    """--beam k: beam_search with k hypotheses and the paper's length penalty alpha = 0.6 (beam 1 is greedy
    decoding); on this untrained model greedy, 2 and 3 hypotheses give three different outputs, so each is seen.
    The outputs do not depend on alpha here, so what beam_search is asked for is recorded too."""
    from minitransformer.train import tasks
    from minitransformer.train.decoding import beam_search, greedy_decode
    from minitransformer.train.metrics import strip_after_eos
    from minitransformer.train.run import _setup_from_checkpoint

    asked = []

    def spy(model, src, **kwargs):
        asked.append(kwargs)
        return beam_search(model, src, **kwargs)

    monkeypatch.setattr(tasks, "beam_search", spy)
    setup, _ = _setup_from_checkpoint(untrained["reverse"])
    tok, src = setup.tokenizer, mt.tensor([setup.tokenizer.encode("314")])
    expected = {1: greedy_decode(setup.model, src, max_len=5)}  # 3 digits and <eos>, at most len + 2 tokens
    expected.update({k: beam_search(setup.model, src, beam_size=k, max_len=5, alpha=0.6) for k in (2, 3)})
    expected = {k: " ".join(tok.itos[i] for i in strip_after_eos(ids.numpy()[0])) for k, ids in expected.items()}
    assert len(set(expected.values())) == 3
    for k in (1, 2, 3):
        assert main(["generate", str(untrained["reverse"]), "--input", "3 1 4", "--beam", str(k)]) == 0
        assert capsys.readouterr().out == expected[k] + "\n", k
    assert [(a["beam_size"], a["alpha"]) for a in asked] == [(2, 0.6), (3, 0.6)]
    for alpha in ("0", "1.5"):  # --alpha: the 0.6 was fixed, with no option to change it
        assert main(["generate", str(untrained["reverse"]), "--input", "3 1 4", "--beam", "2", "--alpha", alpha]) == 0
    assert [(a["beam_size"], a["alpha"]) for a in asked[2:]] == [(2, 0.0), (2, 1.5)]


@pytest.mark.parametrize("beam", ["1", "3"])
def test_generate_refuses_an_alpha_that_is_negative_or_not_finite(untrained, beam, capsys):
    """At --beam 1 (greedy: no length penalty) too, as a mistake in the command, not a value ignored."""
    for alpha in ("-1", "inf", "nan"):
        assert main(["generate", str(untrained["reverse"]), "--input", "3 1 4", "--beam", beam, "--alpha", alpha]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", "minitransformer: generate: alpha must be a finite number >= 0, "
                                                    f"got {float(alpha)!r}\n"), alpha


def test_generate_help_gives_the_defaults_of_its_options(monkeypatch):
    """--max-new-tokens, --temperature, --top-k (and --alpha) had defaults the help did not say: they are
    generate_from_checkpoint's, which also tells an option given from one left at its default."""
    import argparse
    import inspect

    from minitransformer.cli import build_parser
    from minitransformer.train.run import generate_from_checkpoint

    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["generate"]
    text = sub.format_help()
    for option in ("(default: 1, greedy decoding)", "(default: 0.6, the paper's", "tokenizer=bpe (default: 200)",
                   "(charlm; 0: greedy; default: 0.8)", "(charlm; default: 10)", "(charlm; default: 0)",
                   "after --top-k (charlm; default: None, every token)"):
        assert option in text
    given = {name: p.default for name, p in inspect.signature(generate_from_checkpoint).parameters.items()}
    parsed = vars(sub.parse_args(["c.npz"]))
    assert all(parsed[name] == given[name] for name in ("beam", "alpha", "max_new_tokens", "temperature", "top_k",
                                                        "top_p", "seed"))


def test_generate_top_p_reaches_the_charlm_sampler_and_is_checked_there(untrained, monkeypatch, capsys):
    """--top-p P is nucleus sampling (generate's top_p), after --top-k: given to the charlm task's sampler, refused
    outside (0, 1] by name, and named as ignored by a task that does not sample."""
    from minitransformer.train import tasks

    calls, generate = [], tasks.generate

    def spy(model, ids, max_new_tokens, **kwargs):
        calls.append(kwargs)
        return generate(model, ids, max_new_tokens, **kwargs)

    monkeypatch.setattr(tasks, "generate", spy)
    assert main(["generate", str(untrained["charlm"]), "--prompt", "The", "--max-new-tokens", "3", "--top-p",
                 "0.9"]) == 0
    assert calls[-1]["top_p"] == 0.9 and calls[-1]["top_k"] == 10
    assert main(["generate", str(untrained["charlm"]), "--prompt", "The", "--max-new-tokens", "3"]) == 0
    assert calls[-1]["top_p"] is None
    capsys.readouterr()
    assert main(["generate", str(untrained["charlm"]), "--prompt", "The", "--top-p", "1.5"]) == 2
    assert capsys.readouterr().err == "minitransformer: generate: top_p must be a number in (0, 1], got 1.5\n"
    assert main(["generate", str(untrained["reverse"]), "--input", "1 2 3", "--top-p", "0.5"]) == 0
    assert "the reverse task does not read --top-p; ignored" in capsys.readouterr().err


def test_train_resumes_from_its_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "6", *TINY, "--no-pictures", "--out", str(out)]) == 0
    first = read_checkpoint(out / "checkpoint.npz").trainer_state["elapsed_s"]
    assert main(["train", "--task", "copy", "--steps", "9", "--no-progress", "--resume", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "at step 6" in text
    ckpt = read_checkpoint(out / "checkpoint.npz")
    assert ckpt.step == 9 and ckpt.config["d_model"] == 16  # the saved settings, not the defaults
    # the time of all 9 steps, as the checkpoint sums it (it was the last 3 steps' only, beside steps 9)
    wall = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["metrics"]["wall_time_s"]
    assert wall == round(ckpt.trainer_state["elapsed_s"], 2) and ckpt.trainer_state["elapsed_s"] > first


def test_resume_without_task_goes_on_with_the_checkpoints_task_and_another_task_given_is_refused(tmp_path, capsys):
    """--task defaulted to reverse with --resume too, so a charlm run resumed without repeating --task was refused
    ("written by task 'charlm', not 'reverse'"): the task is the checkpoint's unless given, and a different one given
    is refused as before; without --resume the default is still reverse."""
    out = tmp_path / "lm"
    assert main(["train", "--task", "charlm", "--steps", "2", *TINY, "--no-pictures", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--steps", "3", "--no-progress", "--no-pictures", "--resume", "--out", str(out)]) == 0
    assert "task charlm: DecoderOnlyLM" in capsys.readouterr().out
    ckpt = read_checkpoint(out / "checkpoint.npz")
    assert ckpt.step == 3 and ckpt.extra["task"] == "charlm"
    assert main(["train", "--task", "reverse", "--steps", "4", "--no-progress", "--resume", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"minitransformer: {out / 'checkpoint.npz'} was written by task 'charlm', "
                                       "not 'reverse'\n")
    assert read_checkpoint(out / "checkpoint.npz").step == 3
    new = tmp_path / "new"
    assert main(["train", "--steps", "1", *TINY, "--no-pictures", "--out", str(new)]) == 0
    assert read_checkpoint(new / "checkpoint.npz").extra["task"] == "reverse"
    capsys.readouterr()
    assert main(["train", "--steps", "2", "--resume", "--out", str(tmp_path / "none")]) == 2  # nothing to resume
    assert capsys.readouterr().err == (f"minitransformer: train --resume: {tmp_path / 'none'} holds no run to continue "
                                       "(no checkpoint.npz); give the --out of the run, or start one there without "
                                       "--resume\n")


def test_resume_with_more_steps_says_the_schedule_stretches_and_by_how_much(tmp_path, capsys):
    """A larger --steps rebuilds the cosine schedule for the new length: the rate jumped with no word said."""
    out = tmp_path / "run"
    run = ["train", "--task", "copy", *TINY, "--warmup", "2", "--no-pictures", "--out", str(out)]
    assert main([*run, "--steps", "6"]) == 0  # finished: the cosine is at 0 (lr 0.002 peak)
    capsys.readouterr()
    assert main([*run, "--steps", "12", "--resume"]) == 0
    assert capsys.readouterr().err == ("minitransformer: train --resume: --steps 12 (was 6) stretches the cosine "
                                       "schedule: the learning rate jumps from 0 to 0.001 at step 7, where the longer "
                                       "schedule is (no new warm-up)\n")  # (1 + cos(pi (7 - 2) / (12 - 2))) / 2
    assert main([*run, "--steps", "12", "--resume"]) == 0  # the same length: no note
    assert capsys.readouterr().err == ""


def test_a_run_that_stopped_early_stays_stopped_when_resumed_with_more_steps(tmp_path, capsys):
    """One run of 20 steps stops at step 4 (an untrained model's accuracy does not improve from 0); a run of 10
    resumed to 20 trained on to its next evaluation. Now it stops where the run of 20 does, and says why."""
    out = tmp_path / "run"
    run = ["train", "--task", "copy", *TINY, "--eval-every", "2", "--patience", "1", "--no-pictures", "--out",
           str(out)]
    assert main([*run, "--steps", "10"]) == 0
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["metrics"]["stop_reason"] == "patience"
    assert read_checkpoint(out / "checkpoint.npz").step == 4
    capsys.readouterr()
    assert main([*run, "--steps", "20", "--resume"]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "the run stopped early at step 4 (patience), as it would have with --steps 20: nothing more to train" in text
    assert "learning rate jumps" not in captured.err  # no step runs at the stretched schedule's rate
    assert read_checkpoint(out / "checkpoint.npz").step == 4
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["metrics"]["stop_reason"] == "patience"


def test_train_with_patience_ends_with_the_model_of_the_best_evaluation_and_says_which(tmp_path, capsys):
    """The run stops at step 4 (an untrained copy model's accuracy stays 0, no improvement on step 2's): the model
    it measures, saves and reports is step 2's, bit for bit that of a run of 2 steps, not the last one."""
    run = ["train", "--task", "copy", *TINY, "--eval-every", "2", "--no-pictures"]
    assert main([*run, "--steps", "10", "--patience", "1", "--out", str(tmp_path / "best")]) == 0
    text = capsys.readouterr().out
    assert "restored the model of the best evaluation: step 2, val_accuracy 0.0000 (the last, at step 4: 0.0000)" \
        in text
    assert main([*run, "--steps", "2", "--out", str(tmp_path / "two")]) == 0
    capsys.readouterr()
    best, two = (read_checkpoint(tmp_path / name / "checkpoint.npz") for name in ("best", "two"))
    assert best.step == 4 and best.trainer_state["restored_step"] == 2
    assert all(np.array_equal(a, two.model_state[k]) for k, a in best.model_state.items())
    last = best.trainer_state["last_params"]  # what a --resume would train on from
    assert not all(np.array_equal(a, best.model_state[k]) for k, a in last.items())
    saved = json.loads((tmp_path / "best" / "metrics.json").read_text(encoding="utf-8"))["metrics"]
    assert saved["restored_step"] == 2 and _metric(text, "restored_step") == 2
    assert main(["evaluate", str(tmp_path / "best" / "checkpoint.npz")]) == 0  # the final metrics are its model's
    assert _metric(capsys.readouterr().out, "test_loss") == pytest.approx(saved["test_loss"], abs=1e-4)
    assert "restored" not in json.dumps(json.loads((tmp_path / "two" / "metrics.json").read_text(encoding="utf-8")))


def test_a_run_that_keeps_its_last_model_names_the_best_evaluation_once_where_it_is_the_last(tmp_path, capsys):
    """--target reached at the first evaluation printed "kept the last model: step 2, ... (the best evaluation every
    eval_every steps: step 2, ...)", one evaluation named twice; the two are named apart only where they differ."""
    from types import SimpleNamespace

    from minitransformer.train.run import _note_best

    assert main(["train", "--task", "copy", *TINY, "--eval-every", "2", "--no-pictures", "--steps", "10",
                 "--target", "0", "--out", str(tmp_path / "run")]) == 0  # an accuracy of 0 reaches it at step 2
    lines = [line for line in capsys.readouterr().out.splitlines() if "the best evaluation" in line]
    assert lines == ["kept the last model, that of the best evaluation: step 2, val_accuracy 0.0000"]

    def kept(best_step, best):  # a run that ends with its last model, evaluated last at step 5
        return SimpleNamespace(restore_best=True, restored_step=None, monitor="val_loss", best_seen_step=best_step,
                               best_seen=best, history={"val_loss": [(2, 4.7), (4, 4.6), (5, 4.5)]})

    _note_best(kept(5, 4.5))
    _note_best(kept(4, 4.6))  # the last evaluation, off the grid, better than the grid's best
    assert capsys.readouterr().out.splitlines() == [
        "kept the last model, that of the best evaluation: step 5, val_loss 4.5000",
        "kept the last model: step 5, val_loss 4.5000 (the best evaluation every eval_every steps: step 4, 4.6000)"]


def test_no_restore_best_ends_with_the_last_model_and_resume_compares_it(tmp_path, capsys):
    """--patience kept the best model, with no way to keep the last one from the command line (Python's
    restore_best=False): --no-restore-best is the setting restore_best=False, recorded, and compared on --resume."""
    run = ["train", "--task", "copy", *TINY, "--eval-every", "2", "--no-pictures", "--steps", "10", "--patience", "1"]
    assert main([*run, "--no-restore-best", "--out", str(tmp_path / "last")]) == 0
    text = capsys.readouterr().out
    assert "restore_best=False" in text and "restored" not in text
    assert main(["train", "--task", "copy", *TINY, "--eval-every", "2", "--no-pictures", "--steps", "4",
                 "--out", str(tmp_path / "four")]) == 0
    capsys.readouterr()
    last, four = (read_checkpoint(tmp_path / name / "checkpoint.npz") for name in ("last", "four"))
    assert last.step == 4 and last.extra["settings"]["restore_best"] is False
    assert not any(k.endswith("_params") for k in last.trainer_state)  # no copy of the best kept
    assert all(np.array_equal(a, four.model_state[k]) for k, a in last.model_state.items())  # step 4's model
    assert json.loads((tmp_path / "last" / "metrics.json").read_text(encoding="utf-8"))["settings"]["restore_best"] \
        is False
    # --resume continues with the checkpoint's setting, and refuses another
    assert main([*run, "--steps", "12", "--resume", "--out", str(tmp_path / "last")]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "copy", "--steps", "12", "--no-restore-best", "--resume",
                 "--out", str(tmp_path / "four")]) == 2
    assert "only steps may change, got restore_best=False (saved: None);" in capsys.readouterr().err
    assert main([*run, "--set", "restore_best=yes", "--out", str(tmp_path / "bad")]) == 2
    assert "setting restore_best must be True or False (the default is None), got 'yes'" in capsys.readouterr().err


def _as_written_on_a_gpu(path):
    """Give the checkpoint the generator state a run on CuPy saves (a CounterRNG's), checksum and all."""
    from minitransformer.backend import CounterRNG
    from minitransformer.train import checkpoint as ckpt_module

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__meta__"].tobytes().decode())
    meta["rng_state"] = CounterRNG(np, seed=0).state
    arrays = {k: v for k, v in arrays.items() if not k.startswith("rng_state/")}  # NumPy's state, stored as arrays
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays["__checksum__"] = np.frombuffer(ckpt_module._checksum(arrays).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_a_run_written_on_another_backend_resumes_with_a_note(tmp_path, capsys):
    """A GPU run resumed on a CPU was refused (its random generator cannot be restored there), after loading half of
    it; it now continues with a fresh random stream seeded from the checkpoint, and says so. Evaluate reads it as is."""
    out = tmp_path / "run"
    run = ["train", "--task", "copy", *TINY, "--no-pictures", "--out", str(out)]
    assert main([*run, "--steps", "4"]) == 0
    _as_written_on_a_gpu(out / "checkpoint.npz")
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.npz")]) == 0
    assert main([*run, "--steps", "6", "--resume"]) == 0
    captured = capsys.readouterr()
    assert "resumed from" in captured.out and "at step 4" in captured.out
    assert captured.err == ("minitransformer: train --resume: the checkpoint was written on another backend (its "
                            "random generator is CounterRNG); the run continues with a fresh random stream seeded "
                            "from it, not the one the uninterrupted run would have drawn (dropout 0.0)\n")
    assert read_checkpoint(out / "checkpoint.npz").step == 6


def test_resume_refuses_a_setting_other_than_steps_rather_than_ignoring_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "4", *TINY, "--no-pictures", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "copy", "--steps", "6", "--lr", "0.01", "--resume", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("minitransformer: train --resume continues with the checkpoint's settings; only "
                                       "steps may change, got lr=0.01 (saved: 0.002); to train another model shape, "
                                       "schedule, ..., start a new run (another --out, or --overwrite)\n")
    assert main(["train", "--task", "copy", "--steps", "6", *TINY, "--no-progress", "--resume", "--out", str(out)]) == 0


def test_set_and_config_reach_every_setting_and_are_recorded(tmp_path, capsys):
    """The paper's schedule and post-LN had no option: --set and --config reach every setting of the task. Later wins:
    --config, then each --set in order, then the named options."""
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"schedule": "constant", "n_train": 64, "min_len": 3, "max_len": 5, "steps": 9}),
                      encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", *TINY, "--no-pictures", "--out", str(out), "--config", str(config),
                 "--set", "schedule=noam", "--set", "norm_first=False", "--set", "max_len=6", "--set", "steps=7",
                 "--steps", "3"]) == 0
    ckpt = read_checkpoint(out / "checkpoint.npz")
    settings = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["settings"]
    assert settings == ckpt.extra["settings"]
    wanted = {"schedule": "noam", "norm_first": False, "n_train": 64, "min_len": 3, "max_len": 6, "steps": 3}
    assert {k: settings[k] for k in wanted} == wanted and ckpt.step == 3
    assert ckpt.config["norm_first"] is False and ckpt.config["max_len"] == 6 + 2  # post-LN, positions for <bos> <eos>
    assert "schedule=noam" in capsys.readouterr().out
    # resumed with the same --config and --set: nothing differs from the checkpoint's settings, steps may grow
    assert main(["train", "--task", "copy", "--no-progress", "--no-pictures", "--resume", "--out", str(out),
                 "--config", str(config), "--set", "schedule=noam", "--set", "norm_first=False",
                 "--set", "max_len=6", "--set", "steps=5"]) == 0
    assert read_checkpoint(out / "checkpoint.npz").step == 5


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Windows' Notepad (and PowerShell's Out-File) may write UTF-8 with a BOM first: --config refused it as "not a
    JSON file (Unexpected UTF-8 BOM)"."""
    from minitransformer.cli import _read_config

    config = tmp_path / "run.json"
    config.write_bytes(b"\xef\xbb\xbf" + json.dumps({"schedule": "noam", "norm_first": False}).encode("utf-8"))
    assert _read_config(str(config)) == {"schedule": "noam", "norm_first": False}


@pytest.mark.parametrize("change", [["--set", "d_model=32"], ["--set", "norm_first=True"], ["--accumulate", "2"]])
def test_resume_refuses_a_set_that_changes_the_model_or_the_step(change, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--set", "norm_first=False", "--no-pictures",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "copy", "--steps", "4", "--resume", "--out", str(out), *change]) == 2
    key, value = change[1].split("=") if change[0] == "--set" else ("accumulate", change[1])
    saved = {"d_model": "16", "norm_first": "False", "accumulate": "1"}[key]
    assert capsys.readouterr().err.startswith(f"minitransformer: train --resume continues with the checkpoint's "
                                              f"settings; only steps may change, got {key}={value} (saved: {saved}); ")
    assert read_checkpoint(out / "checkpoint.npz").step == 2


@pytest.mark.parametrize("options, refusal", [
    (["--set", "norm_frist=False"], "minitransformer: task 'copy': unknown setting(s) ['norm_frist']; it takes "
                                    "['accumulate', 'batch_size', 'clip', "),
    (["--set", "norm_first=1"], "minitransformer: task 'copy': setting norm_first must be True or False (the default "
                                "is True), got 1\n"),
    (["--set", "n_train=many"], "minitransformer: task 'copy': setting n_train must be an integer (the default is "
                                "20000), got 'many'\n"),
    (["--set", "schedule=nom"], "minitransformer: task 'copy': schedule must be one of cosine, noam, constant, got "
                                "'nom'\n"),  # resumed, it read as a change of the saved 'cosine'
    (["--set", "accumulate=0"], "minitransformer: task 'copy': accumulate must be a positive integer, got 0\n"),
    (["--set", "n_train=0"], "minitransformer: task 'copy': n_train must be a positive integer, got 0\n"),
    (["--set", "min_len=20"], "minitransformer: task 'copy': min_len=20 is longer than max_len=12\n"),
    (["--config", "{config}"], "minitransformer: train --config {config}: must hold one JSON object of settings, "),
    (["--config", "{folder}"], "minitransformer: train --config {folder}: Is a directory\n"),  # was exit 1, unnamed
])
@pytest.mark.parametrize("resume", [False, True], ids=["new", "resume"])
def test_a_bad_set_or_config_is_one_line_naming_the_key_and_the_task(options, refusal, resume, tmp_path, capsys):
    """Refused before any work; resumed too, a value no run may have is refused as such, not as a change of the
    checkpoint's settings."""
    config = tmp_path / "list.json"
    config.write_text("[1, 2]", encoding="utf-8")
    out = tmp_path / "run"
    if resume:
        assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--no-pictures", "--out", str(out)]) == 0
        capsys.readouterr()
    options = [o.format(config=config, folder=tmp_path) for o in options]
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(out), *options,
                 *(["--resume"] if resume else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith(refusal.format(config=config, folder=tmp_path)), err
    assert err.count("\n") == 1 and (resume or not out.exists())


def test_a_bad_setting_is_refused_before_an_out_that_holds_a_run(tmp_path, capsys):
    """The settings are checked first: refused for the run kept in --out, then, with --overwrite, for the setting,
    the command took two tries to say what one could."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--no-pictures", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--set", "schedule=nom", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("minitransformer: task 'copy': schedule must be one of cosine, noam, constant, "
                                       "got 'nom'\n")


@pytest.mark.parametrize("steps, recorded", [([], 300), (["--steps", "1000"], 1000), (["--set", "steps=40"], 40)])
def test_charlm_with_bpe_trains_300_steps_unless_steps_are_given(steps, recorded, tmp_path, capsys):
    """The shipped corpus is some 11,700 BPE tokens, which the characters' 1,000 steps learn by heart: BPE's default
    is 300 steps; steps given win. (--target stops each run at its first evaluation.)"""
    out = tmp_path / "bpe"
    assert main(["train", "--task", "charlm", *steps, *TINY, "--no-pictures", "--set", "tokenizer=bpe", "--set",
                 "bpe_vocab=150", "--eval-every", "1", "--target", "1000", "--out", str(out)]) == 0
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["settings"]["steps"] == recorded and saved["metrics"]["steps"] == 1
    assert f"\nsettings: steps={recorded}, " in capsys.readouterr().out  # printed at the start


def test_set_reads_a_literal_or_else_a_word():
    from minitransformer.cli import build_parser

    args = build_parser().parse_args(["train", "--set", "schedule=noam", "--set", "norm-first=False", "--set",
                                      "lr=1e-3", "--set", "target=None", "--set", "corpus=my text.txt"])
    assert args.set == [("schedule", "noam"), ("norm_first", False), ("lr", 1e-3), ("target", None),
                        ("corpus", "my text.txt")]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--set", "steps"])


@pytest.mark.parametrize("value", ["-" * 5000 + "1", "~" * 5000 + "1", "not " * 3000 + "1", "-" * 50000 + "1"])
def test_a_set_value_too_deep_for_pythons_parser_is_refused_in_one_line(value, capsys):
    """ast.literal_eval raised RecursionError (MemoryError at 50,000 characters): a traceback out of argparse."""
    with pytest.raises(SystemExit) as refused:
        main(["train", "--set", f"lr={value}"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r"error: argument --set: the value of 'lr' \([\d,]+ characters\) is nested too deeply to "
                     r"read\n$", err), err[-300:]


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8"), "nested too deeply to read"),
    (lambda p: p.write_text('{"lr": 0.001, "note": "' + "x" * (1 << 20) + '"}', encoding="utf-8"),
     "larger than 1,048,576 bytes"),
    (lambda p: os.mkfifo(p), "not a regular file"),  # (read, it blocked until a writer came)
])
def test_a_config_too_deep_too_large_or_not_a_file_is_refused_in_one_line(tmp_path, capsys, make, says):
    if make.__code__.co_names == ("os", "mkfifo") and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    config = tmp_path / "c.json"
    make(config)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"minitransformer: train --config {config}: {says}" + \
        ("; a config is one object of settings\n" if "deep" in says else
         "; a config is a few settings\n" if "larger" in says else "\n")


def test_the_task_choices_are_the_tasks_of_the_tasks_module(monkeypatch):
    from minitransformer.cli import build_parser
    from minitransformer.train import tasks

    monkeypatch.setitem(tasks.REGISTRY, "new_task", tasks.REGISTRY["reverse"])  # a task is its entry
    assert build_parser().parse_args(["train", "--task", "new_task"]).task == "new_task"


def _help_of(command: str, option: str) -> str:
    """The help of ``minitransformer COMMAND``'s ``option``, as given to argparse (before it wraps it)."""
    import argparse

    from minitransformer.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return next(a.help for a in sub._actions if option in a.option_strings)


def test_train_help_gives_each_tasks_default_from_the_tasks_settings(monkeypatch):
    """--label-smoothing said "default 0" and --dropout nothing, while translate's default is 0.1 for both: each
    named option's help now gives the defaults of the task settings themselves, those that differ by task named."""
    assert _help_of("train", "--label-smoothing").endswith("(paper section 5.4: 0.1; the task's default: 0; "
                                                           "translate 0.1)")
    assert _help_of("train", "--dropout").endswith("the task's default: 0; translate 0.1)")
    assert _help_of("train", "--steps") == ("optimizer steps (the task's default: 1000; dates 600; translate, "
                                            "classify 2000; charlm with tokenizer=bpe 300)")
    assert _help_of("train", "--heads").endswith("(default: 4)")  # the same for every task
    import dataclasses

    from minitransformer.train import tasks

    charlm = tasks.REGISTRY["charlm"]
    monkeypatch.setitem(tasks.REGISTRY, "charlm", dataclasses.replace(charlm, defaults={**charlm.defaults,
                                                                                          "dropout": 0.2, "heads": 8}))
    assert _help_of("train", "--dropout").endswith("the task's default: 0; translate 0.1; charlm 0.2)")
    assert _help_of("train", "--heads").endswith("(the task's default: 4; charlm 8)")


def test_accumulate_draws_n_batches_a_step_and_is_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "3", "--accumulate", "2", *TINY, "--set", "n_train=64",
                 "--no-pictures", "--out", str(out)]) == 0
    ckpt = read_checkpoint(out / "checkpoint.npz")
    assert ckpt.step == 3 and ckpt.extra["settings"]["accumulate"] == 2
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["settings"]["accumulate"] == 2
    # 3 steps of 2 micro-batches: 6 batches of 16 from 64 examples (4 an epoch), so 2 into the second epoch
    assert (ckpt.trainer_state["epoch"], ckpt.trainer_state["batch_in_epoch"]) == (1, 2)


def test_max_tokens_batches_by_tokens_is_recorded_and_resumes_as_the_run_uninterrupted(tmp_path, capsys):
    """The paper's batching (data.token_batches) from the command line: batches of examples of similar length within
    --max-tokens padded tokens; stopped mid-epoch and resumed, the run ends where the uninterrupted one does."""
    i = TINY.index("--batch-size")
    tiny = [*TINY[:i], *TINY[i + 2:], "--set", "n_train=64", "--set", "min_len=2", "--no-pictures",
            "--max-tokens", "60"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", "--task", "copy", "--steps", "6", *tiny, "--out", str(whole)]) == 0
    assert main(["train", "--task", "copy", "--steps", "3", *tiny, "--out", str(part)]) == 0
    ckpt = read_checkpoint(part / "checkpoint.npz")
    assert ckpt.extra["settings"]["max_tokens"] == 60
    assert (ckpt.trainer_state["epoch"], ckpt.trainer_state["batch_in_epoch"]) == (0, 3)  # 64 examples: > 3 batches
    assert main(["train", "--task", "copy", "--steps", "6", "--out", str(part), "--resume", "--no-progress",
                 "--no-pictures"]) == 0
    a, b = read_checkpoint(whole / "checkpoint.npz"), read_checkpoint(part / "checkpoint.npz")
    assert a.step == b.step == 6 and a.model_state.keys() == b.model_state.keys()
    for name in a.model_state:
        np.testing.assert_array_equal(a.model_state[name], b.model_state[name])
    capsys.readouterr()


def test_max_tokens_bounds_every_tensor_of_a_batch_target_tokens_included():
    """The budget counted a pair's longer side, but make_seq2seq_batch puts <bos> before the target: batches of
    (5, 13) = 65 and (7, 9) = 63 decoder tokens for a budget of 60."""
    from minitransformer.train import tasks

    setup = tasks.build("reverse", n_train=200, n_val=4, n_test=4, min_len=2, max_len=12, max_tokens=60,
                        d_model=16, heads=2, layers=1, d_ff=32)
    sizes = [(b.src.shape, b.tgt_in.shape, b.tgt_out.shape) for b in setup.train_data]
    assert max(rows * length for shapes in sizes for rows, length in shapes) <= 60
    assert max(rows * length for shapes in sizes for rows, length in shapes[1:]) == 60  # as full as the budget lets


@pytest.mark.parametrize("options, refusal", [
    (["--task", "copy", "--batch-size", "8", "--max-tokens", "60"],
     "minitransformer train: a batch is batch_size examples or max_tokens tokens; give one (--batch-size, "),
    (["--task", "copy", "--set", "max_tokens=60", "--batch-size", "8"],  # was trained by tokens, batch_size unused
     "minitransformer train: a batch is batch_size examples or max_tokens tokens; give one (--batch-size, "),
    (["--task", "classify", "--seed-config", "cpu", "--max-tokens", "60"],
     "minitransformer train: a batch is batch_size examples or max_tokens tokens; give one (--batch-size, "),
    (["--task", "charlm", "--max-tokens", "60"],
     "minitransformer train: --max-tokens groups sequences of different lengths; --task charlm's batches are all "
     "alike (windows of seq_len): give --batch-size\n"),
    (["--task", "copy", "--max-tokens", "5"],
     "minitransformer: token_batches: example 0 has 13 tokens, more than max_tokens=5 (a batch's padded size): "),
])
def test_max_tokens_is_refused_with_batch_size_for_charlm_and_below_the_longest_example(options, refusal, tmp_path,
                                                                                          capsys):
    assert main(["train", *options, "--steps", "1", "--no-progress", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(refusal) and err.count("\n") == 1, err


def test_a_run_in_the_folder_is_kept_unless_resumed_or_overwritten(tmp_path, capsys):
    """Training again without --resume replaced a trained checkpoint, even another task's, without a word."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "4", *TINY, "--no-pictures", "--out", str(out)]) == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert main(["train", "--task", "sort", "--steps", "2", *TINY, "--no-pictures", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"minitransformer: {out / 'checkpoint.npz'} holds a run already (task copy, "
                                       "step 4): add --resume to continue it, or --overwrite to start again and "
                                       "replace it\n")
    assert (out / "checkpoint.npz").read_bytes() == before
    assert main(["train", "--task", "copy", "--steps", "4", *TINY, "--resume", "--overwrite", "--out", str(out)]) == 2
    assert "give one" in capsys.readouterr().err
    assert main(["train", "--task", "sort", "--steps", "2", *TINY, "--no-pictures", "--overwrite",
                 "--out", str(out)]) == 0
    assert read_checkpoint(out / "checkpoint.npz").extra["task"] == "sort"


def test_resume_refuses_fewer_steps_than_the_checkpoint_holds(tmp_path, capsys):
    """--steps below the saved step ran nothing, then saved settings saying steps=2 beside a checkpoint at step 4."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "4", *TINY, "--no-pictures", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "copy", "--steps", "2", "--resume", "--no-progress", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("minitransformer: train --resume: steps=2 is below the step the checkpoint "
                                       "holds, 4; give more steps, or evaluate the checkpoint as it is\n")
    assert read_checkpoint(out / "checkpoint.npz").extra["settings"]["steps"] == 4


def test_a_run_removes_what_a_killed_write_left(tmp_path, capsys):
    """A SIGKILL during a checkpoint's write leaves its temporary file; the next run in the folder removes it."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--no-pictures", "--out", str(out)]) == 0
    stale = out / ".checkpoint.npz.0123456789ab.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = out / "notes.tmp"  # not a checkpoint's temporary: kept
    other.write_text("mine", encoding="utf-8")
    assert main(["train", "--task", "copy", "--steps", "3", "--resume", "--no-progress", "--out", str(out)]) == 0
    assert not stale.exists() and other.read_text(encoding="utf-8") == "mine"


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch, capsys):
    from minitransformer.train import Trainer

    run = ["train", "--task", "copy", "--steps", "6", *TINY, "--no-pictures", "--out"]
    assert main([*run, str(tmp_path / "whole")]) == 0
    train_step = Trainer.train_step

    def pressing(self, batch):  # Ctrl-C in the middle of step 3
        if self.step == 2:
            signal.raise_signal(signal.SIGINT)
        return train_step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", pressing)
    out = tmp_path / "cut"
    capsys.readouterr()
    try:
        assert main([*run, str(out)]) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command as a traceback")
    assert capsys.readouterr().err == (f"minitransformer train: interrupted after step 3, saved in "
                                       f"{out / 'checkpoint.npz'}; continue with: minitransformer train --task copy "
                                       f"--out {out} --resume\n")
    assert read_checkpoint(out / "checkpoint.npz").step == 3
    monkeypatch.undo()
    assert main(["train", "--task", "copy", "--no-progress", "--resume", "--out", str(out)]) == 0
    whole, resumed = read_checkpoint(tmp_path / "whole" / "checkpoint.npz"), read_checkpoint(out / "checkpoint.npz")
    assert resumed.step == 6 and resumed.history == whole.history
    for name, weights in whole.model_state.items():
        np.testing.assert_array_equal(resumed.model_state[name], weights)


def test_ctrl_c_says_to_continue_on_the_backend_given(tmp_path, monkeypatch, capsys):
    """With --backend, the command printed to continue names it too (without, the environment chooses again)."""
    from minitransformer.train import TrainingInterrupted, run

    def interrupted(task, out, **kwargs):
        raise TrainingInterrupted(3, os.path.join(out, "checkpoint.npz"))

    monkeypatch.setattr(run, "train", interrupted)
    out = tmp_path / "cut"
    assert main(["train", "--task", "sort", "--backend", "numpy", "--out", str(out)]) == 130
    assert capsys.readouterr().err == (f"minitransformer train: interrupted after step 3, saved in "
                                       f"{out / 'checkpoint.npz'}; continue with: minitransformer train --task sort "
                                       f"--out {out} --resume --backend numpy\n")


def test_a_second_ctrl_c_names_the_checkpoint_kept(tmp_path, monkeypatch, capsys):
    """A Ctrl-C outside the steps saves nothing; where a checkpoint is in --out, the message says it is kept."""
    from minitransformer.train import run

    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--no-pictures", "--out", str(out)]) == 0
    capsys.readouterr()

    def pressed(task, out, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "train", pressed)
    assert main(["train", "--task", "copy", "--resume", "--out", str(out)]) == 130
    assert capsys.readouterr().err == (f"minitransformer train: interrupted; the checkpoint written last, "
                                       f"{out / 'checkpoint.npz'}, is kept; continue from it with: minitransformer "
                                       f"train --task copy --out {out} --resume\n")
    assert main(["train", "--task", "copy", "--out", str(tmp_path / "new")]) == 130
    assert capsys.readouterr().err == "minitransformer train: interrupted\n"
    # with --overwrite the checkpoint there is the run being replaced (perhaps another task's): no --resume offered
    assert main(["train", "--task", "sort", "--overwrite", "--out", str(out)]) == 130
    assert capsys.readouterr().err == "minitransformer train: interrupted\n"


@pytest.mark.parametrize("command", ["evaluate", "generate", "train"])
def test_ctrl_c_elsewhere_is_one_line_and_status_130(command, untrained, tmp_path, monkeypatch, capsys):
    """Ctrl-C while a command builds its model (outside train's steps, which save first): no traceback, 130."""
    from minitransformer.train import tasks

    def pressing(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(tasks, "build", pressing)
    argv = {"evaluate": ["evaluate", str(untrained["reverse"])],
            "generate": ["generate", str(untrained["reverse"]), "--input", "3 1 4"],
            "train": ["train", "--task", "copy", *TINY, "--out", str(tmp_path / "run")]}[command]
    try:
        assert main(argv) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command as a traceback")
    assert capsys.readouterr().err == f"minitransformer {command}: interrupted\n"


def test_metrics_json_is_written_atomically_as_the_checkpoint(tmp_path, monkeypatch, capsys):
    """A full disk while metrics.json is replaced leaves the old one whole, and no temporary file behind."""
    out = tmp_path / "run"
    run = ["train", "--task", "copy", *TINY, "--no-pictures", "--out", str(out)]
    assert main([*run, "--steps", "2"]) == 0
    old = (out / "metrics.json").read_bytes()
    replace = os.replace

    def disk_full_for_the_metrics(src, dst):
        if os.path.basename(dst) == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_for_the_metrics)
    capsys.readouterr()
    assert main([*run, "--steps", "3", "--overwrite"]) == 1
    assert capsys.readouterr().err == f"minitransformer: {out / 'metrics.json'}: No space left on device\n"  # named
    assert (out / "metrics.json").read_bytes() == old and json.loads(old)["metrics"]["steps"] == 2
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "metrics.json"]


def test_checkpoint_every_writes_the_checkpoint_during_the_run(tmp_path, monkeypatch):
    from minitransformer.train import Trainer

    saved = []
    monkeypatch.setattr(Trainer, "save", lambda self, path: saved.append(self.step))
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "5", *TINY, "--no-pictures", "--checkpoint-every", "2",
                 "--out", str(out)]) == 0
    assert saved == [2, 4, 5]


def test_charlm_trains_and_generates_text(tmp_path, monkeypatch, capsys):
    from minitransformer.train import tasks

    calls, generate = [], tasks.generate

    def spy(model, ids, max_new_tokens, **kwargs):
        calls.append(kwargs)
        return generate(model, ids, max_new_tokens, **kwargs)

    monkeypatch.setattr(tasks, "generate", spy)
    out = tmp_path / "lm"
    assert main(["train", "--task", "charlm", "--steps", "4", *TINY, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # the example after training samples as its line says, from the 64 positions (seq_len) the model trained on
    assert "\nexample (temperature 0.8, top-k 10): 'The " in text
    assert calls == [dict(temperature=0.8, top_k=10, context=64)]
    # a unigram counted on the training text, scored on the 3,200 validation characters the model is scored on
    # (2.9769 on the whole validation text, notebook 10; the whole corpus's unigram entropy, 3.0655, was reported)
    assert _metric(text, "unigram_val_loss") == pytest.approx(2.9794, abs=1e-4)
    assert _metric(text, "val_loss_below_unigram") == pytest.approx(
        _metric(text, "unigram_val_loss") - _metric(text, "val_loss"), abs=2e-4)
    assert "unigram_entropy" not in text
    assert (out / "attention_self_attention.png").read_bytes()[:8] == PNG
    assert main(["generate", str(out / "checkpoint.npz"), "--prompt", "The ", "--max-new-tokens", "15"]) == 0
    generated = capsys.readouterr().out.rstrip("\n")
    assert generated.startswith("The ") and len(generated) >= 4


def test_charlm_with_bpe_trains_saves_its_merges_evaluates_and_generates_tokens(tmp_path, monkeypatch, capsys):
    from minitransformer.data import BPETokenizer, load_corpus, split_corpus, tokenizer_from_dict
    from minitransformer.train import tasks

    out = tmp_path / "bpe"
    assert main(["train", "--task", "charlm", "--steps", "4", *TINY, "--no-pictures", "--set", "tokenizer=bpe",
                 "--set", "bpe_vocab=150", "--out", str(out)]) == 0
    trained = capsys.readouterr().out
    assert "\nexample (temperature 0.8, top-k 10): 'The" in trained  # "The", its space left to the next word
    ckpt = read_checkpoint(out / "checkpoint.npz")
    tok = tokenizer_from_dict(ckpt.tokenizer)
    train, _ = split_corpus(load_corpus("tiny"), 0.1)
    assert tok == BPETokenizer.from_text(train, 150, alphabet=load_corpus("tiny"))  # its merges, in the checkpoint
    assert ckpt.model_state["embed.weight"].shape[0] == 150
    assert main(["evaluate", str(out / "checkpoint.npz")]) == 0  # rebuilds the same tokenizer from the settings
    evaluated = capsys.readouterr().out
    assert _metric(evaluated, "val_loss") == pytest.approx(_metric(trained, "val_loss"), abs=1e-4)
    assert _metric(evaluated, "val_bits_per_char") < _metric(evaluated, "val_loss") / np.log(2)  # 2+ chars a token
    outputs, generate = [], tasks.generate

    def spy(*args, **kwargs):
        out = generate(*args, **kwargs)
        outputs.append(out.numpy()[0])
        return out

    monkeypatch.setattr(tasks, "generate", spy)
    assert main(["generate", str(out / "checkpoint.npz"), "--prompt", "Four score", "--max-new-tokens", "6"]) == 0
    generated = capsys.readouterr().out.rstrip("\n")
    prompt = tok.encode("Four score")
    assert len(prompt) < len("Four score")  # merged pieces, not characters
    assert outputs[0][:len(prompt)].tolist() == prompt and len(outputs[0]) == len(prompt) + 6  # 6 tokens
    assert generated == tok.decode(outputs[0]) and generated.startswith("Four score")
    long = load_corpus("tiny")[:400]  # more tokens than the 64 positions (seq_len) it was trained on
    assert main(["generate", str(out / "checkpoint.npz"), "--prompt", long, "--max-new-tokens", "1"]) == 0
    assert (f"reads the last 64 tokens of the prompt ({len(tok.encode(long))} given)"
            in capsys.readouterr().err.replace("\n", " "))


def test_classify_trains_and_labels_a_review(tmp_path, capsys):
    out = tmp_path / "cls"
    assert main(["train", "--task", "classify", "--steps", "4", *TINY, "--no-pictures", "--out", str(out)]) == 0
    assert 0.0 <= _metric(capsys.readouterr().out, "test_accuracy") <= 1.0
    assert main(["generate", str(out / "checkpoint.npz"), "--input", "the film was not good"]) == 0
    assert re.fullmatch(r"(positive|negative) \(p\(positive\) = \d\.\d{3}\)\n", capsys.readouterr().out)


def test_blas_threads_that_no_openblas_took_are_said_once_with_the_variable_that_works(tmp_path, monkeypatch, capsys):
    """Where NumPy's BLAS could not be set (macOS' Accelerate, MKL, an OpenBLAS not found), --blas-threads did nothing
    without a word; given, it is said once, with OPENBLAS_NUM_THREADS; not given (1, the default), nothing is said."""
    from minitransformer.train import threads

    monkeypatch.setattr(threads, "_openblas", lambda: None)
    argv = ["train", "--task", "copy", "--steps", "2", *TINY, "--no-pictures", "--out", str(tmp_path / "run")]
    assert main([*argv, "--blas-threads", "1"]) == 0
    said = ("minitransformer: train: --blas-threads 1 had no effect here (no OpenBLAS found to set); set "
            "OPENBLAS_NUM_THREADS=1 in the environment before starting Python")
    assert capsys.readouterr().err.count(said) == 1
    assert main([*argv, "--overwrite"]) == 0
    assert "--blas-threads" not in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "run" / "checkpoint.npz"), "--blas-threads", "1"]) == 0
    assert said.replace("train", "evaluate") in capsys.readouterr().err
    # in Python, run.evaluate's default of 1 is no option given: nothing is said (it named --blas-threads)
    from minitransformer.train import run

    run.evaluate(tmp_path / "run" / "checkpoint.npz")
    assert "blas" not in capsys.readouterr().err.lower()


def test_train_and_evaluate_called_from_python_put_the_blas_threads_back(tmp_path, capsys):
    """set_blas_threads(2); evaluate(checkpoint); get_blas_threads() gave 1: a notebook or a server calling train or
    evaluate was left with the call's setting for the rest of the process."""
    from minitransformer.train import get_blas_threads, run, set_blas_threads

    if os.cpu_count() < 2 or not set_blas_threads(2):
        pytest.skip("needs an OpenBLAS to set, and 2 CPUs")
    during = []

    def pictures(setup, history, out, marks):  # called inside the run
        during.append(get_blas_threads())
        return []

    run.train("copy", tmp_path, progress=False, pictures=pictures, steps=2, d_model=16, heads=2, layers=1, d_ff=32,
              batch_size=8, n_train=16, n_val=4, n_test=4)
    assert during == [1] and get_blas_threads() == 2
    run.evaluate(tmp_path / "checkpoint.npz", blas_threads=1)
    assert get_blas_threads() == 2


@pytest.mark.parametrize("command", [["train", "--task", "copy"], ["evaluate", "checkpoint.npz"]])
def test_blas_threads_are_refused_below_0_and_above_the_cpus_naming_the_option(command, capsys):
    """--blas-threads -1 said "set_blas_threads: n must be a positive integer" (a function's name, and 0 is allowed);
    100000 was taken, and each step took 250 times longer."""
    cpus = os.cpu_count() or 1
    for given, said in (("-1", "must be at least 0, got -1"),
                        (str(cpus + 1), f"must be at most {cpus}, the CPUs here (more threads wait on each other), "
                                        f"got {cpus + 1}")):
        with pytest.raises(SystemExit) as refused:
            main([*command, "--blas-threads", given])
        assert refused.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: argument --blas-threads: {said}")


@pytest.mark.parametrize("command, option", [(["train", "--task", "copy"], "--seed"),
                                             (["generate", "checkpoint.npz"], "--seed"), (["demo"], "--steps")])
def test_a_negative_count_is_refused_naming_the_option(command, option, capsys):
    with pytest.raises(SystemExit) as refused:  # demo --steps -5 skipped the run silently, as 0 does
        main([*command, option, "-1"])
    assert refused.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: argument {option}: must be at least 0, got -1")


def test_metrics_print_seconds_to_a_tenth_and_the_rest_to_four_places(capsys):
    from minitransformer.train.run import _print_metrics

    _print_metrics({"val_loss": 1.90213, "steps": 1000, "wall_time_s": 61.41, "stop_reason": "steps"})
    assert capsys.readouterr().out.splitlines() == [  # wall_time_s was 61.4100
        "val_loss     1.9021", "steps        1000", "wall_time_s  61.4", "stop_reason  steps"]


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """Checkpoints of untrained tiny models of three tasks, saved as `train` saves them: task -> path."""
    from minitransformer.train import save_checkpoint, tasks

    tiny = dict(d_model=16, heads=2, layers=1, d_ff=32)
    data = {"reverse": dict(n_train=16, n_val=4, n_test=4, min_len=3, max_len=5),
            "classify": dict(n_train=16, n_val=4, n_test=4), "charlm": dict(seq_len=8, max_len=16)}
    folder = tmp_path_factory.mktemp("untrained")
    paths = {}
    for task, sizes in data.items():
        setup = tasks.build(task, **tiny, **sizes)
        paths[task] = save_checkpoint(folder / f"{task}.npz", setup.model,
                                      extra={"task": task, "settings": setup.settings})
    return paths


@pytest.mark.parametrize("task, flag, what", [("reverse", "--input", "input"), ("classify", "--input", "input"),
                                              ("charlm", "--prompt", "prompt")])
def test_generate_refuses_an_empty_input_rather_than_using_the_example(untrained, task, flag, what, capsys):
    blank = ["", "   "] if task != "charlm" else [""]  # a blank prompt is text to continue for a language model
    for text in blank:
        assert main(["generate", str(untrained[task]), flag, text, "--max-new-tokens", "3"]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"minitransformer: generate: the {what} is empty\n"), text
    assert main(["generate", str(untrained[task]), "--max-new-tokens", "3"]) == 0  # none given: the example
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("task, options, note", [
    ("reverse", [], "no --input given; the example '3 1 4 1 5'"),  # max_len=5: as many digits of pi
    ("classify", ["--beam", "3"], "the classify task does not read --beam; ignored"),
    ("charlm", ["--alpha", "0"], "the charlm task does not read --alpha; ignored"),
    ("reverse", ["--temperature", "0.5", "--top-k", "3"], "the reverse task does not read --temperature, --top-k"),
    ("charlm", ["--beam", "2"], "the charlm task does not read --beam; ignored")])
def test_generate_says_what_it_read_and_what_it_ignored(untrained, task, options, note, capsys):
    """With no input it reversed the digits of pi without saying so; options of other tasks were ignored silently."""
    text = [] if not options else ["--prompt", "The "] if task == "charlm" else ["--input", "1 2 3"]
    assert main(["generate", str(untrained[task]), *text, *options, "--max-new-tokens", "3"] if task == "charlm"
                else ["generate", str(untrained[task]), *text, *options]) == 0
    assert note in capsys.readouterr().err


@pytest.mark.parametrize("task, flag, reads, wanted", [("charlm", "--input", "a prompt to continue", "--prompt"),
                                                        ("reverse", "--prompt", "digits", "--input"),
                                                        ("classify", "--prompt", "a review", "--input")])
def test_generate_refuses_the_option_of_another_kind_of_task_by_name(untrained, task, flag, reads, wanted, capsys):
    """A charlm checkpoint took --input as its prompt, the others --prompt as their input, without a word."""
    assert main(["generate", str(untrained[task]), flag, "3 1 4", "--max-new-tokens", "3"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"minitransformer: generate: the {task} model reads {reads}: give "
                                                f"it with {wanted}, not {flag}\n")


@pytest.mark.parametrize("task, text, refusal", [
    ("reverse", "1" * 8, "the reverse model reads at most 7 digits, got 8"),  # max_len=5: 7 positions
    ("classify", " ".join(["good"] * 101), "the classify model reads at most 100 words, got 101")])
def test_generate_refuses_an_input_longer_than_the_model_reads_naming_the_task(untrained, task, text, refusal, capsys):
    """Not the model's "build the model with a larger max_len": the command line has no such option."""
    assert main(["generate", str(untrained[task]), "--input", text]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"minitransformer: generate: {refusal}\n")


@pytest.mark.parametrize("task, text, note", [
    ("reverse", "1 2", "the reverse model was trained on 3 to 5 digits, not 2"),  # the fixture's min_len=3, max_len=5
    ("reverse", "1 2 3 4 5 6", "the reverse model was trained on 3 to 5 digits, not 6"),
    ("reverse", "1 2 3", None),
    ("reverse", "1 2 3 4 5", None),  # max_len: the longest it was trained on
    ("reverse", "1 2 3 4 5 6 7", "the reverse model was trained on 3 to 5 digits, not 7"),  # all 7 positions: runs
    ("classify", "not bad", "the classify model was trained on 5 to 16 words, not 2"),  # the negation task's lengths
    ("classify", "the film was not bad", None)])
def test_generate_notes_an_input_of_a_length_the_model_was_not_trained_on(untrained, task, text, note, capsys):
    """A model trained on 8 to 12 digits never ends an output after 5 ("3 1 4 1 5" gave "5 5 1 4 1 3"): it runs,
    and stderr says why its answer may be wrong."""
    assert main(["generate", str(untrained[task]), "--input", text]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert captured.err == ("" if note is None else f"minitransformer: generate: {note}: its output may be wrong\n")


@pytest.mark.parametrize("task, flag, text, unknown", [
    ("classify", "--input", "the film was not terrible, really", "'terrible', ','"),
    ("classify", "--input", "the film was not bad", None),
    ("charlm", "--prompt", "Üï ☃Ü", "'Ü', 'ï', '☃'")])
def test_generate_names_the_pieces_it_reads_as_unk(untrained, task, flag, text, unknown, capsys):
    """"the film was not terrible" was labelled positive with p = 1.000, as "the film was not <unk>", without a word."""
    charlm = ["--max-new-tokens", "3"] if task == "charlm" else []  # (the classifier would note it as ignored)
    assert main(["generate", str(untrained[task]), flag, text, *charlm]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    note = f"minitransformer: generate: not in the {task} model's vocabulary, read as <unk>: {unknown}\n"
    assert captured.err == ("" if unknown is None else note)


def test_charlm_generates_within_the_positions_it_was_trained_on(untrained, capsys):
    """seq_len=8, max_len=16: the text is continued from at most 8 characters at a time (past 8 positions an
    untrained table row is read, and a trained model's text fell apart there)."""
    from minitransformer.train import generate
    from minitransformer.train.run import _setup_from_checkpoint

    assert main(["generate", str(untrained["charlm"]), "--prompt", "The ", "--max-new-tokens", "30",
                 "--temperature", "0"]) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    setup, _ = _setup_from_checkpoint(untrained["charlm"])
    tok = setup.tokenizer
    assert setup.settings["seq_len"] == 8 and setup.model.max_len == 16
    by_context = {c: tok.decode(generate(setup.model, mt.tensor([tok.encode("The ")]), 30, temperature=0.0,
                                         context=c).numpy()[0]) for c in (8, 16)}
    assert printed == by_context[8] != by_context[16]


@pytest.mark.parametrize("task", ["charlm", "reverse"])
@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_generate_from_a_checkpoint_leaves_the_callers_random_numbers_as_they_were(untrained, task, command, capsys):
    """generate_from_checkpoint seeded every generator for its sampling (mt.manual_seed(seed)), and it and evaluate
    rebuilt the model from the task's seed: after them, a caller's seeded stream (mt.rand, host_rng) went on from
    another place."""
    from minitransformer.train.run import evaluate, generate_from_checkpoint

    def draws(between):
        mt.manual_seed(123)
        mt.rand(3)
        mt.backend.host_rng().integers(0, 100, size=2)
        between()
        return mt.rand(3).numpy(), mt.backend.host_rng().integers(0, 100, size=2)

    text = "The " if task == "charlm" else "1 2 3"
    before = draws(lambda: None)
    after = draws(lambda: generate_from_checkpoint(untrained[task], text, max_new_tokens=3, seed=7)
                  if command == "generate" else evaluate(untrained[task], blas_threads=None))
    capsys.readouterr()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])


def test_a_classify_run_at_its_target_share_stops_there(tmp_path, capsys):
    """The classifier's val_accuracy is k / n rounded to float32 (then .item()): at exactly 7 of 20, 0.349999994,
    a run with --target 0.35 never stopped. Here the run's first evaluation (after a step at lr 1e-9: of the untrained
    model's predictions) scores k of n_val, for the first n_val whose k / n rounds down in float32, and the run with
    target k / n stops there."""
    from minitransformer.train import run, tasks

    tiny = dict(steps=3, d_model=16, heads=2, layers=1, d_ff=32, batch_size=16, n_train=64, n_test=10, eval_every=1,
                lr=1e-9)
    for n_val in (10, 20, 30, 40):
        setup = tasks.build("classify", n_val=n_val, **tiny)
        k = round(setup.eval_fn(setup.model)["val_accuracy"] * n_val)  # the run's first evaluation: of this model
        if float(np.float32(k / n_val)) < k / n_val:
            break
    else:
        pytest.fail("no n_val gave a share that float32 rounds down")
    metrics = run.train("classify", tmp_path, progress=False, pictures=False, n_val=n_val, target=k / n_val, **tiny)
    assert (metrics["stop_reason"], metrics["steps"]) == ("target", 1)


def test_evaluate_reads_a_checkpoint_saved_with_a_target_out_of_range(tmp_path, capsys):
    """A target of 99 (a percentage) was accepted before `train` checked it; such a checkpoint still evaluates, and
    generates from the tokenizer it holds (whose settings are checked, the target aside, as evaluate's are)."""
    from minitransformer.train import save_checkpoint, tasks

    setup = tasks.build("classify", d_model=16, heads=2, layers=1, d_ff=32, n_train=16, n_val=4, n_test=4)
    path = save_checkpoint(tmp_path / "old.npz", setup.model,
                           extra={"task": "classify", "settings": {**setup.settings, "target": 99.0}})
    assert main(["evaluate", str(path)]) == 0
    assert 0 <= _metric(capsys.readouterr().out, "test_accuracy") <= 1
    path = save_checkpoint(tmp_path / "old-with-tokenizer.npz", setup.model, tokenizer=setup.tokenizer,
                           extra={"task": "classify", "settings": {**setup.settings, "target": 99.0}})
    assert main(["generate", str(path), "--input", "the film was not good"]) == 0


def test_charlm_says_it_reads_the_end_of_a_prompt_longer_than_it_was_trained_on(untrained, capsys):
    assert main(["generate", str(untrained["charlm"]), "--prompt", "The sheep went home. ", "--max-new-tokens",
                 "3"]) == 0  # seq_len=8
    captured = capsys.readouterr()
    assert captured.out.startswith("The sheep went home. ") and captured.err == (
        "minitransformer: generate: the charlm model reads the last 8 characters of the prompt (21 given), the "
        "positions it was trained on\n")
    assert main(["generate", str(untrained["charlm"]), "--prompt", "The shee", "--max-new-tokens", "3"]) == 0
    captured = capsys.readouterr()  # 8 characters: all of it is read, without a word
    assert captured.out.startswith("The shee") and captured.err == ""


def test_evaluate_names_the_pieces_of_a_tokenizer_the_data_no_longer_give(tmp_path, capsys):
    """A checkpoint whose saved tokenizer is not the one its task's data give now (new pieces, gone ones, or the
    same in another order) is refused: the model would read its input with other ids."""
    from minitransformer.train import save_checkpoint, tasks

    setup = tasks.build("reverse", d_model=16, heads=2, layers=1, d_ff=32, n_train=16, n_val=4, n_test=4, min_len=3,
                        max_len=5)
    now = setup.tokenizer.to_dict()  # the digits 0 to 9
    for vocab, changes in ((list("012345678x"), "new: '9'; gone: 'x'"), (list("0123456789xy"), "gone: 'x', 'y'"),
                           (list("9876543210"), "another order")):
        path = save_checkpoint(tmp_path / "c.npz", setup.model, tokenizer={**now, "vocab": vocab},
                               extra={"task": "reverse", "settings": setup.settings})
        assert main(["evaluate", str(path)]) == 2
        assert capsys.readouterr().err == (f"minitransformer: checkpoint {str(path)!r}: the reverse task's data no "
                                           f"longer give the tokenizer it saved ({changes})\n")


def test_generate_refuses_a_temperature_that_is_not_finite(untrained, capsys):
    for temperature in ("inf", "nan"):
        assert main(["generate", str(untrained["charlm"]), "--temperature", temperature]) == 2
        assert capsys.readouterr().err == ("minitransformer: generate: temperature must be a finite number >= 0, "
                                           f"got {temperature}\n")


def test_commands_refuse_bad_input_with_one_line(tmp_path, capsys):
    plain = tmp_path / "weights.npz"
    np.savez(plain, w=np.ones(2))
    assert main(["evaluate", str(plain)]) == 2
    assert "not a minitransformer checkpoint" in capsys.readouterr().err
    assert main(["train", "--task", "reverse", "--seed-config", "--out", str(tmp_path)]) == 2
    assert "use --task classify" in capsys.readouterr().err
    assert main(["train", "--task", "reverse", "--d-model", "10", "--heads", "3", "--out", str(tmp_path)]) == 2
    assert "d_model=10 is not divisible by heads=3" in capsys.readouterr().err


#: how a run of lr 1e6 diverges, at the step of the group: the loss NaN, or first (checked at once, NumPy) the
#: gradient norm NaN under a finite loss, its weights made huge by the updates
_NAN_AT = (r"(?:the training loss became nan by|the gradient norm was nan at) step (\d+)(?:;|, before its update, "
           r"while the training loss was finite: .*?; or, where the loss grew before, updates too large:)")


def test_a_run_that_diverges_is_one_line_without_numpy_warnings_and_status_1(tmp_path, capsys):
    import warnings

    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", "--task", "copy", "--lr", "1e6", "--steps", "30", *TINY, "--no-pictures",
                     "--out", str(out)]) == 1
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    err = capsys.readouterr().err
    assert re.fullmatch(rf"minitransformer train: Trainer: {_NAN_AT} lower the "
                        r"learning rate \(lr was \S+ at the last update\) \(the gradients were clipped to a norm of "
                        r"1\)\n", err), err
    assert not (out / "checkpoint.npz").exists()  # nothing diverged is saved


#: A run whose loss becomes NaN after its first evaluation (step 5): by step 15 on one CPU, 13 on another (their BLAS
#: rounds in another order), so a test reads the step from the message.
_DIVERGING = ["train", "--task", "copy", "--lr", "1e6", "--steps", "30", *TINY, "--eval-every", "5", "--patience", "10"]


def test_a_run_that_diverges_after_its_best_evaluation_saves_that_model_and_says_so(tmp_path, capsys):
    """The run diverged after its best evaluation (step 5) with --patience: it saved nothing, and that model was
    lost. Now the checkpoint holds that model, as the error line says; evaluate measures it, naming it; --resume
    refuses it (no optimizer state: it had become NaN); --no-restore-best saves nothing, as before. (The step of the
    NaN is the machine's: at 15 on one CPU, 13 on another, whose BLAS rounds in another order.)"""
    out = tmp_path / "run"
    run = [*_DIVERGING, "--no-pictures", "--out", str(out)]
    assert main(run) == 1
    err = capsys.readouterr().err
    path = out / "checkpoint.npz"
    said = re.fullmatch(rf"minitransformer train: Trainer: {_NAN_AT} lower the "
                        r"learning rate \(lr was \S+ at the last update\) \(the gradients were clipped to a norm of "
                        r"1\); restore_best put "
                        r"back the parameters of the best evaluation, step 5 \(val_accuracy 0\), and saved them in "
                        rf"{re.escape(str(path))} \(a model to evaluate, without the optimizer's state: not to "
                        rf"resume\); measure it with: minitransformer evaluate {re.escape(str(path))}\n", err)
    assert said and int(said[1]) > 5, err  # after the best evaluation
    ckpt = read_checkpoint(path)
    assert (ckpt.step, ckpt.trainer_state["restored_step"], ckpt.optimizer_state) == (int(said[1]), 5, None)
    assert all(np.isfinite(a).all() for a in ckpt.model_state.values())
    assert main(["train", "--task", "copy", *TINY, "--no-pictures", "--eval-every", "5", "--steps", "5",
                 "--lr", "1e6", "--out", str(tmp_path / "five")]) == 0
    five = read_checkpoint(tmp_path / "five" / "checkpoint.npz")
    assert all(np.array_equal(a, five.model_state[k]) for k, a in ckpt.model_state.items())
    capsys.readouterr()
    with np.errstate(over="ignore", invalid="ignore"):  # (its weights are huge: lr 1e6)
        assert main(["evaluate", str(path)]) == 0
    step = int(said[1])
    assert f"trained for {step} steps, holding the model of its best evaluation, step 5 (put back when the run " \
           "diverged" in capsys.readouterr().out
    assert main([*run, "--resume"]) == 2
    assert "was written when its run diverged (the training loss or the parameters became NaN or infinite by step " \
           f"{step}): it holds the model of its best evaluation, step 5" in capsys.readouterr().err
    assert main([*run[:-2], "--no-restore-best", "--out", str(tmp_path / "last")]) == 1
    assert "restore_best" not in capsys.readouterr().err and not (tmp_path / "last" / "checkpoint.npz").exists()


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The Figures of the curves, as training_pictures draws them (training_curves wrapped to keep each)."""
    from minitransformer.viz import curves

    figures = []
    draw = curves.training_curves
    monkeypatch.setattr(curves, "training_curves", lambda *a, **k: figures.append(draw(*a, **k)) or figures[-1])
    return figures


def test_a_run_that_diverges_with_its_best_model_kept_writes_its_metrics_and_pictures(tmp_path, capsys, drawn):
    """A run whose loss became NaN wrote no metrics.json and no pictures: a user coming back found no record of it but
    the terminal's. Now, where it kept the model of its best evaluation (the checkpoint holds it), metrics.json says
    how it ended (stop_reason "diverged", its steps those of the message, which it holds as "error"), with that
    model's held-out metrics (those evaluate measures) and restored_step, and its pictures are drawn, still with exit
    status 1; its curves mark the step it diverged at and the model kept (nothing on them said so before)."""
    from minitransformer.train import run

    out = tmp_path / "run"
    assert main([*_DIVERGING, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    step = int(re.search(_NAN_AT, captured.err)[1])
    record = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert record["error"] == captured.err.removeprefix("minitransformer train: ").removesuffix("\n")
    metrics = record["metrics"]
    assert (metrics["stop_reason"], metrics["steps"], record["task"]) == ("diverged", step, "copy")
    pictures = sorted(p.name for p in out.glob("*.png"))
    assert all((out / name).read_bytes()[:8] == PNG for name in pictures)
    assert "wrote:\n" + "".join(f"  {p}\n" for p in [out / "checkpoint.npz", out / "metrics.json"]) in captured.out
    assert metrics["restored_step"] == 5 and pictures == ["attention_cross_attention.png",
                                                          "attention_encoder_self_attention.png", "curves.png"]
    held_out = {k: v for k, v in metrics.items() if k.startswith("test_")}
    with np.errstate(over="ignore", invalid="ignore"):  # (its weights are huge: lr 1e6)
        measured = run.evaluate(out / "checkpoint.npz")
    assert held_out == pytest.approx({k: v for k, v in measured.items() if k.startswith("test_")}, rel=1e-9)
    assert set(held_out) == {"test_loss", "test_token_accuracy", "test_exact_sequence_accuracy"}
    (fig,) = drawn
    marked = [(line.get_label(), line.get_xdata()[0]) for line in fig.axes[0].get_lines()
              if not line.get_label().endswith("loss")]
    assert marked == [(f"diverged (step {step})", step), ("model kept (step 5)", 5)]


@pytest.mark.parametrize("early_stop, marks", [({}, {}), ({"patience": 1}, {"model kept (step 2)": 2}),
                                               ({"target": 1.0, "restore_best": False}, {})])
def test_train_calls_pictures_with_the_marks_of_the_model_kept(tmp_path, capsys, early_stop, marks):
    """pictures got marks only from a diverged run, so that a function of (setup, history, out) worked for every run
    but failed on the rarest, found last. Now marks is always given: the model kept where the run put back its best
    evaluation's (an untrained copy model's accuracy stays 0: patience 1 stops at step 4, keeping step 2's), else
    none (a run without early stopping, or with it and restore_best=False)."""
    from minitransformer.train import run

    got = []

    def pictures(setup, history, out, *, marks):  # a stand-in: records the marks, draws nothing
        got.append(marks)
        return []

    metrics = run.train("copy", tmp_path, progress=False, pictures=pictures, steps=10, eval_every=2, d_model=16,
                        heads=2, layers=1, d_ff=32, batch_size=16, **early_stop)
    assert got == [marks] and metrics.get("restored_step") == next(iter(marks.values()), None)


def test_the_curves_of_a_run_with_patience_mark_the_model_kept(tmp_path, capsys, drawn):
    """The curves of a run that put back the model of its best evaluation (--patience; not only a diverged one's)
    mark its step, in the legend of every panel, the step the final metrics and the checkpoint are of."""
    assert main(["train", "--task", "copy", "--steps", "10", *TINY, "--eval-every", "2", "--patience", "1", "--out",
                 str(tmp_path)]) == 0
    (fig,) = drawn
    for axes in fig.axes:
        marked = [(line.get_label(), line.get_xdata()[0]) for line in axes.get_lines()
                  if line.get_label().startswith("model kept")]
        assert marked == [("model kept (step 2)", 2)]


def test_a_run_that_diverges_with_no_model_kept_leaves_the_old_runs_record_alone(tmp_path, capsys):
    """A run that kept no model (--no-restore-best: its parameters are not finite) and diverged before its first
    checkpoint has no model to record: --overwrite of a good run then leaves the good run's checkpoint, metrics.json
    and pictures as they were (no metrics.json or curves of the new run beside the old run's checkpoint), and the
    error says only the divergence, as before."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "3", *TINY, "--no-pictures", "--out", str(out)]) == 0
    (out / "curves.png").write_bytes(PNG)  # (a picture of the good run: drawing one takes seconds)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*_DIVERGING, "--no-restore-best", "--overwrite", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert re.fullmatch(rf"minitransformer train: Trainer: {_NAN_AT} lower the "
                        r"learning rate \(lr was \d+ at the last update\) \(the gradients were clipped to a norm of "
                        r"1\)\n", captured.err)
    assert "wrote:" not in captured.out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_run_that_diverges_after_its_checkpoint_records_that_checkpoints_model_not_the_old_runs(tmp_path, capsys):
    """--overwrite of a good run by one that kept no model (--no-restore-best) but wrote checkpoints before it
    diverged left the new run's checkpoint beside the old run's metrics.json: the folder said another model's
    figures. The record is now of the model of the last checkpoint (restored_step its step), as a diverged run that
    kept its best evaluation is recorded."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "3", *TINY, "--no-pictures", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([*_DIVERGING, "--no-restore-best", "--checkpoint-every", "2", "--no-pictures", "--overwrite",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    step = read_checkpoint(out / "checkpoint.npz").step
    assert step > 3 and f"checkpoint.npz holds the parameters of step {step}, its last checkpoint before; measure " \
                        "it with: minitransformer evaluate " in err, err
    record = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert (record["metrics"]["stop_reason"], record["metrics"]["restored_step"]) == ("diverged", step)
    assert record["metrics"]["steps"] > step and record["error"] == err.removeprefix("minitransformer train: ").strip()


def test_a_diverged_run_whose_record_cannot_be_written_still_raises_the_divergence(tmp_path):
    """A failure while writing a diverged run's record (here the pictures) hid the divergence: the run raised that
    failure instead, and the command line printed a traceback. Now the divergence is raised all the same, its message
    saying the record could not be written and why, chained from the failure."""
    from minitransformer.train import TrainingDiverged, run

    def pictures(setup, history, out, marks):  # (a diverged run's are drawn with marks)
        raise OSError("No space left on device")

    with pytest.raises(TrainingDiverged, match=rf"{_NAN_AT} .*; measure it with: minitransformer "
                                               r"evaluate .*; its record \(metrics\.json, pictures\) could not be "
                                               r"written: OSError: No space left on device$") as caught, \
            np.errstate(all="ignore"):  # (lr 1e6: the command line silences NumPy's warnings too)
        run.train("copy", tmp_path, progress=False, pictures=pictures, lr=1e6, steps=30, d_model=16, heads=2,
                  layers=1, d_ff=32, batch_size=16, eval_every=5, patience=10)
    assert isinstance(caught.value.__cause__, OSError) and caught.value.restored_step == 5
    assert caught.value.checkpoint == tmp_path / "checkpoint.npz"  # (kept through train's restating)


def test_evaluate_and_generate_of_a_folder_say_it_is_a_folder(tmp_path, capsys):
    for command in ("evaluate", "generate"):
        assert main([command, str(tmp_path)]) == 2
        assert capsys.readouterr().err == (f"minitransformer: checkpoint {str(tmp_path)!r} is a folder, not a "
                                           f"checkpoint file (such as {str(tmp_path / 'checkpoint.npz')!r})\n")


@pytest.mark.parametrize("task", ["reverse", "classify", "charlm"])
def test_label_smoothing_outside_0_1_is_refused_before_training(task, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", task, "--label-smoothing", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"minitransformer: task '{task}': label_smoothing must be a number in [0, 1], got 5.0\n"
    assert not out.exists()  # refused before any work


def test_an_out_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    afile = tmp_path / "results.txt"
    afile.write_text("keep me", encoding="utf-8")
    for out, why in ((afile, "is a file"), (afile / "run", f"is inside {str(afile)!r}, which is a file")):
        assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.err == f"minitransformer train: --out {str(out)!r} {why}, not a folder\n"
        assert captured.out == ""  # nothing was built or trained
    assert afile.read_text(encoding="utf-8") == "keep me"



@pytest.mark.parametrize("command", ["train", "demo"])
def test_an_out_the_system_refuses_to_look_at_is_one_line_before_training(command, tmp_path, monkeypatch, capsys):
    """An --out under a folder without search permission (or a name over 255 characters) was a traceback from the
    look for a file in its way, Path.exists raising since Python 3.11."""
    from minitransformer.train import Trainer

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", refuse)
    monkeypatch.setattr(Trainer, "fit", lambda *a: pytest.fail("trained"))
    out = str(tmp_path / "locked" / "run")
    assert main([command, "--out", out] + (["--task", "copy", *TINY] if command == "train" else [])) == 2
    monkeypatch.undo()
    assert capsys.readouterr().err == f"minitransformer {command}: --out {out!r} cannot be used (Permission denied)\n"


@pytest.mark.skipif(os.name == "nt", reason="the lock is POSIX's flock")
def test_a_second_run_into_a_folder_another_run_is_writing_is_refused(tmp_path, monkeypatch, capsys):
    """Two runs started into the same --out both passed the look for a checkpoint there (none yet), both trained,
    and the one that ended last kept the folder: the other's checkpoint was lost, with exit 0 for both."""
    from minitransformer.train import Trainer, run

    out = tmp_path / "run"
    out.mkdir()
    with run._one_run_at_a_time(out):  # another run, training
        assert (out / run.LOCK_NAME).read_text(encoding="utf-8") == f"{os.getpid()}\n"
        monkeypatch.setattr(Trainer, "fit", lambda *a: pytest.fail("trained"))
        assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(out)]) == 2
        assert capsys.readouterr().err == (f"minitransformer: {out} is being written by another run (process "
                                           f"{os.getpid()}): wait for it to end, or give another --out\n")
        monkeypatch.undo()
    assert os.listdir(out) == []  # the other run's end took its lock away
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(out)]) == 0  # and this one may run
    assert run.LOCK_NAME not in os.listdir(out)

    def ended_meanwhile(*args, **kwargs):  # a run that wrote its checkpoint after this one looked for it
        real(*args, **kwargs)
        shutil.copy(out / "checkpoint.npz", other / "checkpoint.npz")

    other, real = tmp_path / "other", run._writable_folder
    monkeypatch.setattr(run, "_writable_folder", ended_meanwhile)
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(other)]) == 2
    assert "holds a run already (task copy, step 2), written while this one was being built" in capsys.readouterr().err



@pytest.mark.skipif(os.name == "nt", reason="the lock is POSIX's flock")
def test_a_lock_file_that_cannot_be_removed_does_not_hide_the_runs_own_error(tmp_path, monkeypatch, capsys):
    """A folder made read-only mid-run: the run's own error (here Ctrl-C's, its checkpoint saved) was replaced by
    ".train.lock: Permission denied" from the lock's removal at its end."""
    from minitransformer.train import TrainingInterrupted, run

    unlink = Path.unlink

    def refuse(self, *args, **kwargs):
        if self.name == run.LOCK_NAME:
            raise PermissionError(13, "Permission denied", str(self))
        return unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(TrainingInterrupted), run._one_run_at_a_time(tmp_path):
        raise TrainingInterrupted(3, tmp_path / "checkpoint.npz")
    assert capsys.readouterr().err == (f"minitransformer: {tmp_path / run.LOCK_NAME} could not be removed (Permission "
                                       "denied); it holds no run once this one ends\n")
    with run._one_run_at_a_time(tmp_path):  # a run ended without an error is not turned into one either
        pass



@pytest.mark.skipif(os.name == "nt", reason="the lock is POSIX's flock")
def test_a_run_that_locked_a_lock_file_removed_meanwhile_takes_the_folders_own(tmp_path, monkeypatch):
    """A run opened .train.lock just before the run holding it ended and removed it, then got the lock of that removed
    file: a third run, started meanwhile, made a new one and locked it, and the two wrote into one folder at once."""
    import fcntl

    from minitransformer.train import run

    real, calls = fcntl.flock, []

    def removed_meanwhile(f, operation):  # the run holding it ends between this one's open and its flock
        calls.append(operation)
        if len(calls) == 1:
            (tmp_path / run.LOCK_NAME).unlink()
        return real(f, operation)

    monkeypatch.setattr(fcntl, "flock", removed_meanwhile)
    with run._one_run_at_a_time(tmp_path):
        monkeypatch.undo()
        assert len(calls) == 2  # locked again, the folder's file this time
        with pytest.raises(FileExistsError, match="is being written by another run"), run._one_run_at_a_time(tmp_path):
            pytest.fail("a second run into the folder was let in")
    assert os.listdir(tmp_path) == []



def test_an_out_that_is_a_link_to_nothing_is_said_so(tmp_path, monkeypatch, capsys):
    """A dangling symbolic link as --out said "[Errno 17] File exists" of a name that shows no file."""
    from minitransformer.train import Trainer

    out = tmp_path / "run"
    try:
        os.symlink(tmp_path / "gone", out, target_is_directory=True)
    except (OSError, NotImplementedError):  # (Windows without the privilege to make one)
        pytest.skip("this system does not let the tests make a symbolic link")
    monkeypatch.setattr(Trainer, "fit", lambda *a: pytest.fail("trained"))
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"minitransformer: --out {str(out)!r} is a symbolic link to "
                                       f"{str(tmp_path / 'gone')!r}, which does not exist: make that folder, or give "
                                       "another --out\n")
    assert not (tmp_path / "gone").exists()


def test_a_folder_the_system_refuses_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    from minitransformer.train import Trainer, run

    def refuse(out):
        raise PermissionError(13, "Permission denied", str(out))

    monkeypatch.setattr(run, "_writable_folder", refuse)
    monkeypatch.setattr(Trainer, "fit", lambda *a: pytest.fail("trained"))
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err == f"minitransformer: {tmp_path / 'run'}: Permission denied\n"


def test_a_folder_that_cannot_be_written_to_is_named_as_given_not_by_the_probe_file(tmp_path, monkeypatch, capsys):
    """A read-only --out said "minitransformer: /path/tmp0sv4nvsw: Read-only file system", the random name of the
    file that tried it."""
    import errno
    import tempfile

    from minitransformer.train import Trainer

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", os.path.join(dir, "tmp0sv4nvsw"))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(Trainer, "fit", lambda *a: pytest.fail("trained"))
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(out)]) == 1
    assert capsys.readouterr().err == (f"minitransformer: --out {str(out)!r} cannot be written to (Read-only file "
                                       "system): give another folder\n")


def test_seed_config_trains_the_documents_classifier_layout(tmp_path, capsys):
    out = tmp_path / "seed"
    assert main(["train", "--task", "classify", "--seed-config", "--steps", "2", "--no-progress", "--no-pictures",
                 "--out", str(out)]) == 0
    config = read_checkpoint(out / "checkpoint.npz").config
    # the document's section 5.2 layout: vocabulary 10000, 8 heads, d_ff = 4 d_model, length 100, one post-LN block
    assert (config["vocab_size"], config["heads"], config["max_len"], config["num_layers"]) == (10000, 8, 100, 1)
    assert config["d_ff"] == 4 * config["d_model"] and config["norm_first"] is False
    assert "test_accuracy" in capsys.readouterr().out


def test_seed_config_resumed_keeps_the_runs_steps(tmp_path, capsys):
    """--resume with --seed-config applied the preset's 5000 steps as if --steps 5000 were given: a 2-step run
    resumed trained on to 5000."""
    out = tmp_path / "seed"
    assert main(["train", "--task", "classify", "--seed-config", "--steps", "2", "--no-progress", "--no-pictures",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "classify", "--seed-config", "--resume", "--no-progress", "--no-pictures",
                 "--out", str(out)]) == 0
    assert read_checkpoint(out / "checkpoint.npz").step == 2


def test_seed_config_trains_as_the_example_script_does(tmp_path, monkeypatch, capsys):
    """``train --seed-config`` and ``python -m minitransformer.examples.seed_classifier`` train the same way: Keras's
    Adam(learning_rate=...) (betas 0.9, 0.999), no gradient clipping, a constant rate, 1000 held-out reviews."""
    from minitransformer.examples import seed_classifier
    from minitransformer.train import tasks

    seen = []

    class Recording(tasks.Trainer):  # what TaskSetup.trainer builds
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self)

    monkeypatch.setattr(tasks, "Trainer", Recording)
    assert main(["train", "--task", "classify", "--seed-config", "--steps", "1", "--d-model", "16", "--d-ff", "64",
                 "--no-progress", "--no-pictures", "--out", str(tmp_path)]) == 0
    (trainer,) = seen
    assert trainer.clip is None and "grad_norm" not in trainer.history  # the default tasks clip at 1.0
    group = trainer.optimizer.param_groups[0]
    assert (group["lr"], group["betas"]) == (1e-3, (0.9, 0.999))
    settings = re.search(r"^settings: (.*)$", capsys.readouterr().out, flags=re.M).group(1).split(", ")
    assert f"n_val={seed_classifier.N_VAL}" in settings and "clip=0.0" in settings and "schedule=constant" in settings


def test_the_document_configuration_has_the_documents_numbers():
    from minitransformer.examples.seed_classifier import task_settings
    from minitransformer.train.tasks import warmup_schedule

    s = task_settings("document")
    assert (s["vocab_size"], s["d_model"], s["heads"], s["d_ff"], s["max_len"]) == (10000, 512, 8, 2048, 100)
    assert (s["lr"], s["batch_size"], s["schedule"]) == (1e-4, 32, "constant")
    assert s["steps"] == 5 * (16000 // 32)  # epochs=5 over the training reviews
    # binary_crossentropy as compiled there: no label smoothing (Keras's default 0); Adam(learning_rate=1e-4) from
    # the first step on, with no warm-up: the schedule these settings make keeps 1e-4 at every step
    assert s["label_smoothing"] == 0.0
    schedule = warmup_schedule(mt.optim.SGD([mt.zeros(1, requires_grad=True)], lr=s["lr"]), s["warmup"], s["steps"],
                               s["schedule"])
    rates = [schedule.get_last_lr()[0]]
    for _ in range(3):
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    assert rates == pytest.approx([1e-4] * 4, rel=1e-12)


def test_the_seed_classifier_example_runs(monkeypatch, capsys):
    from minitransformer.examples import seed_classifier

    small = {**seed_classifier.CONFIGS["cpu"], "n_train": 64, "epochs": 2, "embed_dim": 16, "ff_dim": 64,
             "dropout": 0.3}
    monkeypatch.setitem(seed_classifier.CONFIGS, "cpu", small)
    monkeypatch.setattr(seed_classifier, "N_VAL", 32)
    assert seed_classifier.main(["--no-progress"]) == 0
    text = capsys.readouterr().out
    final = re.search(r"^Validation Loss: (\d\.\d{4}), Validation Accuracy: (\d\.\d{4})$", text, flags=re.M)
    last_epoch = re.search(r"^epoch 2: val_loss (\S+), val_accuracy (\S+)$", text, flags=re.M)
    assert final.groups() == last_epoch.groups()  # the final evaluation runs without dropout, as the epoch's did
    epochs = re.findall(r"^epoch (\d): val_loss \S+, val_accuracy (\S+)$", text, flags=re.M)
    best = max(epochs, key=lambda e: (float(e[1]), -int(e[0])))  # the first of the most accurate
    assert f"(best: epoch {best[0]}, val_accuracy {best[1]}; the model kept is the last epoch's" in text
    assert "TransformerClassifier(" in text
    # the ceiling it prints is counted on its own 32 validation reviews (it printed 0.75 whatever they were): the
    # share of them the sentiment word's polarity alone labels right, counted here on the words
    from minitransformer.data import NEGATION_WORDS, negation_task

    _, val, tok = negation_task(64, 32, seed=0)
    right = [int(any(w in NEGATION_WORDS["positive"] for w in tok.decode(ids).split())) == y for ids, y in val]
    printed = re.search(r"the best bag-of-words rule scores (\d\.\d{4}) on these 32 reviews", text)
    assert printed and float(printed.group(1)) == pytest.approx(np.mean(right), abs=5e-5)
    assert re.search(r"^\(validation F1 \d\.\d{4}; ", text, flags=re.M)


def test_the_seed_classifier_example_trains_as_the_document_does(monkeypatch, capsys):
    """run() with its defaults (the cpu configuration, seed 0, a progress bar) builds the document's post-LN block and
    feeds it as Keras's ``model.fit`` does (shuffled batches: fit's ``shuffle=True``); its training accuracy counts
    every training review once (here 1100: two chunks of its 1000)."""
    from minitransformer.data import make_classification_batch, negation_task
    from minitransformer.examples import seed_classifier

    small = {**seed_classifier.CONFIGS["cpu"], "n_train": 1100, "epochs": 0, "embed_dim": 16, "ff_dim": 64}
    monkeypatch.setitem(seed_classifier.CONFIGS, "cpu", small)
    monkeypatch.setattr(seed_classifier, "N_VAL", 8)
    seen = []

    class Recording(seed_classifier.Trainer):
        def fit(self, data, steps):
            seen.append((self, data))
            return super().fit(data, steps)

    monkeypatch.setattr(seed_classifier, "Trainer", Recording)
    result = seed_classifier.run()
    capsys.readouterr()
    (trainer, loader), = seen
    assert [layer.norm_first for layer in trainer.model.encoder.layers] == [False]  # keras.io's block: post-LN
    assert loader.shuffle is True and loader.seed == 0 and trainer.progress is True
    # the accuracy of the (untrained) model on all 1100 reviews at once, in plain NumPy
    train, _, _ = negation_task(1100, 8, seed=0)
    batch = make_classification_batch(train)
    with mt.no_grad():
        z = trainer.model(batch.src).numpy()
    expected = np.mean((z > 0) == (np.asarray(batch.labels.numpy()) > 0.5))
    assert 0 < expected < 1 and result["train_accuracy"] == pytest.approx(expected, abs=1e-9)


def test_the_seed_classifier_command_line_passes_its_options_to_run(monkeypatch):
    from minitransformer.examples import seed_classifier

    calls = []
    monkeypatch.setattr(seed_classifier, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(seed_classifier, "set_blas_threads", lambda n: calls.append(("BLAS threads", n)))
    assert seed_classifier.main([]) == 0
    assert seed_classifier.main(["--config", "document", "--epochs", "2", "--seed", "3", "--no-progress"]) == 0
    assert calls == [("BLAS threads", 1), (("cpu",), dict(epochs=None, seed=0, progress=True)),  # a bar, seed 0
                     ("BLAS threads", 1), (("document",), dict(epochs=2, seed=3, progress=False))]


def test_evaluate_and_generate_run_the_model_without_dropout(tmp_path, capsys):
    """The model rebuilt from a checkpoint was left in training mode: `evaluate` measured it with dropout on, and
    `generate` labelled a review with some of its units dropped."""
    from minitransformer.autograd import Tensor
    from minitransformer.train import save_checkpoint, tasks

    setup = tasks.build("classify", dropout=0.5, d_model=16, heads=2, layers=1, d_ff=32, n_train=16, n_val=4,
                        n_test=64)
    path = save_checkpoint(tmp_path / "c.npz", setup.model, extra={"task": "classify", "settings": setup.settings})
    setup.model.eval()
    expected = setup.final_metrics(setup.model)
    ids = setup.tokenizer.encode("the film was not good")
    p = float(setup.model.predict_proba(Tensor(np.asarray([ids], dtype=np.int64))).numpy()[0])
    assert main(["evaluate", str(path)]) == 0
    assert _metric(capsys.readouterr().out, "test_loss") == pytest.approx(expected["test_loss"], abs=1e-4)
    assert main(["generate", str(path), "--input", "the film was not good"]) == 0
    assert capsys.readouterr().out.endswith(f"(p(positive) = {p:.3f})\n")


# ------------------------------------------------------------------ charlm on a text of one's own (--text)
OWN_TEXT = "".join(f"Line {i}: the quick brown fox jumps over the lazy dog; {'ab' * (i % 7)}!\n" for i in range(60))


@pytest.fixture
def own_run(tmp_path, monkeypatch, capsys):
    """A charlm run of 4 steps on a 4 KB text file, named by a relative path from tmp_path: (out, the file, what
    it printed)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "own.txt").write_text(OWN_TEXT, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--task", "charlm", "--text", "own.txt", "--steps", "4", *TINY, "--no-pictures",
                 "--out", str(out)]) == 0
    return out, tmp_path / "own.txt", capsys.readouterr().out


def test_charlm_trains_on_a_text_file_evaluates_and_generates(own_run, capsys):
    out, text_file, trained = own_run
    ckpt = read_checkpoint(out / "checkpoint.npz")
    assert ckpt.extra["settings"]["corpus"] == str(text_file)  # the path as given, made absolute
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["settings"]["corpus"] == str(text_file)
    assert ckpt.tokenizer["vocab"] == sorted(set(OWN_TEXT)) and ckpt.config["vocab"] == len(set(OWN_TEXT)) + 4
    assert main(["evaluate", str(out / "checkpoint.npz")]) == 0
    assert _metric(capsys.readouterr().out, "val_loss") == _metric(trained, "val_loss")
    assert main(["generate", str(out / "checkpoint.npz"), "--prompt", "Line ", "--max-new-tokens", "10"]) == 0
    assert capsys.readouterr().out.startswith("Line ")


def test_resume_takes_a_relative_path_to_the_text_it_was_trained_on(own_run, capsys):
    """--set corpus=own.txt names the file the checkpoint records as an absolute path: the same setting, where it was
    refused as a change of the checkpoint's settings."""
    out, text_file, _ = own_run
    assert main(["train", "--task", "charlm", "--set", "corpus=own.txt", "--steps", "5", "--resume", "--no-progress",
                 "--no-pictures", "--out", str(out)]) == 0
    assert read_checkpoint(out / "checkpoint.npz").step == 5


def test_generate_needs_no_text_file_but_evaluate_and_resume_refuse_one_moved_or_changed(own_run, capsys):
    """generate runs from the checkpoint alone (model, settings, saved tokenizer); evaluate needs the validation text
    and resume the training text, with the characters that gave the saved tokenizer."""
    out, text_file, _ = own_run
    checkpoint = str(out / "checkpoint.npz")
    generate = ["generate", checkpoint, "--prompt", "Line ", "--max-new-tokens", "20"]
    assert main(generate) == 0
    before = capsys.readouterr().out
    text_file.rename(text_file.with_name("moved.txt"))
    assert main(generate) == 0
    assert capsys.readouterr().out == before
    gone = f"minitransformer: checkpoint {checkpoint!r} was trained on the text {str(text_file)!r}: no such file\n"
    assert main(["evaluate", checkpoint]) == 2
    assert capsys.readouterr().err == gone
    saved = read_checkpoint(checkpoint).extra["settings"]["corpus_sha256"]
    lines = OWN_TEXT.splitlines(keepends=True)
    for edited in (OWN_TEXT + "XZ\n", "".join(lines[1:] + lines[:1])):  # new characters; the same, in another order
        text_file.write_text(edited, encoding="utf-8")
        digest = hashlib.sha256(edited.encode()).hexdigest()[:16]
        changed = (f"minitransformer: checkpoint {checkpoint!r} was trained on the text {str(text_file)!r}: changed "
                   f"since: its SHA-256 begins {digest}, not {saved}\n")
        for command in (["evaluate", checkpoint], ["train", "--task", "charlm", "--resume", "--steps", "6",
                                                    "--no-progress", "--out", str(out)]):
            assert main(command) == 2
            assert capsys.readouterr().err == changed
    assert main(generate) == 0
    assert capsys.readouterr().out == before


@pytest.mark.parametrize("name, content, problem", [
    ("missing.txt", None, "no such file"),
    ("folder", "a folder", "a folder, not a text file"),
    ("latin1.txt", "caf\xe9 au lait\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
    ("empty.txt", b"", "empty"),
    ("short.txt", b"one line\n" * 40, "too short: 360 characters, 324 for training and 36 for validation (the last "
                                       "10%, from a line start), where each part needs seq_len + 1 = 65")])
def test_a_text_that_cannot_be_trained_on_is_one_line_naming_the_option_and_the_path(name, content, problem,
                                                                                     tmp_path, capsys):
    path = tmp_path / name
    if content == "a folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    out = tmp_path / "run"
    assert main(["train", "--task", "charlm", "--text", str(path), "--no-progress", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"minitransformer: --text {str(path)!r}: {problem}\n")
    assert not out.exists()  # refused before any work


def test_text_is_refused_for_a_task_other_than_charlm(tmp_path, capsys):
    (tmp_path / "own.txt").write_text(OWN_TEXT, encoding="utf-8")
    assert main(["train", "--task", "copy", "--text", str(tmp_path / "own.txt"), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == ("minitransformer train: --text is the training text of --task charlm, not "
                                       "--task copy\n")


def test_the_charlm_example_prompt_is_made_of_characters_the_model_knows():
    """"The " was the prompt whatever the text: a model trained on lower-case lines started its example with <unk>."""
    from minitransformer.data import CharTokenizer
    from minitransformer.train.tasks import _example_prompt

    assert _example_prompt(CharTokenizer.from_text(OWN_TEXT + "The end")) == "The "
    assert _example_prompt(CharTokenizer.from_text(OWN_TEXT)) == "\n"  # no capital T
    assert _example_prompt(CharTokenizer.from_text("zyx")) == "x"  # the first of its characters


def test_each_task_trains_into_a_folder_of_its_own_by_default(tmp_path, monkeypatch):
    """Without --out, every task wrote train-output/: a second task's run met the first's checkpoint."""
    from minitransformer.train import run

    folders = []
    monkeypatch.setattr(run, "train", lambda task, out, **kwargs: folders.append((task, out)))
    monkeypatch.chdir(tmp_path)
    for more in (["--task", "copy"], ["--task", "classify"], ["--task", "classify", "--seed-config"],
                 ["--task", "classify", "--seed-config", "document"], ["--seed-config"]):  # the last: its task implied
        assert main(["train", *more]) == 0
    assert folders == [(task, os.path.join("train-output", name)) for task, name in
                       (("copy", "copy"), ("classify", "classify"), ("classify", "classify-seed-cpu"),
                        ("classify", "classify-seed-document"), ("classify", "classify-seed-cpu"))]


def _strict_json(text: str):
    """``text`` read as RFC 8259 JSON: Python's json takes NaN, Infinity and -Infinity, which are not JSON."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_metrics_json_of_a_run_blown_up_without_nan_is_json(tmp_path, capsys):
    """A run whose loss grew past e^709.78 without becoming NaN (lr 3000, no clipping) wrote "val_perplexity":
    Infinity, which is not JSON (jq and JSON.parse refuse the whole file). Now a figure that is not finite is null,
    and "not_finite" says which and what it was."""
    out = tmp_path / "run"
    assert main(["train", "--task", "charlm", "--lr", "3000", "--warmup", "1", "--set", "clip=0", "--steps", "5",
                 "--eval-every", "1000", "--no-progress", "--no-pictures", "--out", str(out)]) == 0
    record = _strict_json((out / "metrics.json").read_text(encoding="utf-8"))
    assert record["metrics"]["val_perplexity"] is None and record["not_finite"] == {"metrics/val_perplexity": "inf"}
    assert record["metrics"]["val_loss"] > 709.79  # (finite: kept as it is)


def test_the_advice_of_a_divergence_quotes_the_last_update_s_rate_and_the_flags_as_typed(tmp_path, capsys):
    """lr 10000 reached at once (--warmup 1), no clipping: the loss NaN at step 3, the last of a cosine schedule,
    was said with "lr was 0" (step 3's rate, never used) and "(clip=1.0)", which the command line does not take.
    Now step 2's rate, the peak, the flag as typed, and the warm-up of 1 step."""
    assert main(["train", "--task", "reverse", "--lr", "10000", "--warmup", "1", "--set", "clip=0", "--steps", "3",
                 "--no-progress", "--no-pictures", "--out", str(tmp_path / "run")]) == 1  # (the default model)
    assert capsys.readouterr().err == (
        "minitransformer train: Trainer: the training loss became nan by step 3; lower the learning rate (lr was 5000 "
        "at the last update, 10000 at the highest) or clip the gradients (--set clip=1.0); the warm-up, 1 step of 3, "
        "reaches the peak rate at once: a longer one (--warmup 3) may be enough\n")


# ------------------------------------------------------------------ --progress
@pytest.mark.parametrize("option, shown", [(["--progress", "lines"], "lines"), ([], "bar"),
                                           (["--progress", "none"], ""), (["--no-progress"], "")])
def test_train_progress_lines_on_a_terminal_prints_a_line_per_log_and_evaluation(tmp_path, monkeypatch, capsys,
                                                                                 option, shown):
    """On a terminal, --progress lines prints what a file or a pipe gets, a line per log and evaluation, where the
    bar cut the evaluation's figures at the terminal's width and a screen reader read each redraw; bar (the default)
    is redrawn in place; --no-progress stays --progress none: nothing (it silenced both before)."""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)  # capsys's stderr, as a terminal
    tiny = [a for a in TINY if a != "--no-progress"]
    assert main(["train", "--task", "copy", "--steps", "2", "--eval-every", "2", *tiny, *option, "--no-pictures",
                 "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    if shown == "lines":
        assert [re.sub(r"\d+\.\d+(e-\d+)?", "X", line) for line in err.splitlines()] == [
            "copy: step 1/2, loss X, lr X", "copy: step 2/2, loss X, lr X",
            "copy: step 2/2, val_loss X, val_token_accuracy X, val_accuracy X"]
    elif shown == "bar":
        assert "\r" in err and "copy:" in err and "val_accuracy=" in err  # tqdm's postfix, redrawn in place
    else:
        assert err == ""

