"""``minitransformer train --task dates`` and ``--task translate --pairs FILE`` through the command line: a tiny run
writes its files, and ``evaluate``, ``generate`` (greedy and beam) and ``--resume`` read its checkpoint. Tiny settings:
this checks the plumbing, not that the model learns (docs/training.md has the figures of a full run)."""

from __future__ import annotations

import json

import pytest

from minitransformer.cli import main
from minitransformer.data import TokenizerPair, tokenizer_from_dict
from minitransformer.train import read_checkpoint

from references import PAIRS

pytestmark = [pytest.mark.single_backend, pytest.mark.usefixtures("restore_blas_threads")]

TINY = ["--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--batch-size", "16", "--no-progress"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dates_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dates")
    assert main(["train", "--task", "dates", "--steps", "6", "--eval-every", "3", *TINY, "--out", str(out)]) == 0
    return out


def test_a_dates_run_writes_its_files_and_saves_both_tokenizers(dates_run, capsys):
    for name in ("curves.png", "attention_cross_attention.png", "attention_encoder_self_attention.png"):
        assert (dates_run / name).read_bytes()[:8] == PNG, name
    saved = json.loads((dates_run / "metrics.json").read_text(encoding="utf-8"))
    assert saved["task"] == "dates" and saved["metrics"]["steps"] == 6 and saved["metrics"]["n_test"] == 1000
    assert 0.0 <= saved["metrics"]["test_exact_sequence_accuracy"] <= 1.0
    tok = tokenizer_from_dict(read_checkpoint(dates_run / "checkpoint.npz").tokenizer)
    assert isinstance(tok, TokenizerPair) and tok.target.itos[4:] == list("-0123456789")
    assert tok.source.encode("March 3, 2021")[1:] == tok.source.encode("march 3, 2021")[1:]


def test_evaluate_and_generate_read_the_dates_checkpoint(dates_run, capsys):
    path = str(dates_run / "checkpoint.npz")
    assert main(["evaluate", path]) == 0
    assert "task dates" in capsys.readouterr().out
    for extra in ([], ["--beam", "3"]):
        assert main(["generate", path, "--input", "march 3, 2021", *extra]) == 0
        out = capsys.readouterr().out.strip()
        assert set(out) <= set("-0123456789<unk>") and len(out) <= 11  # untrained: any ISO characters
    assert main(["generate", path, "--input", "zork 3, 2021"]) == 0
    assert "read as <unk>: 'zork'" in capsys.readouterr().err
    assert main(["generate", path]) == 0
    assert "the example 'the 3rd of March 2021'" in capsys.readouterr().err
    assert main(["generate", path, "--prompt", "march 3"]) == 2
    assert "the dates model reads a date: give it with --input" in capsys.readouterr().err
    assert main(["generate", path, "--input", " ".join(["3"] * 40)]) == 2
    assert "the dates model reads at most" in capsys.readouterr().err


def test_a_dates_run_resumes(dates_run, capsys):
    assert main(["train", "--task", "dates", "--steps", "8", "--no-progress", "--no-pictures", "--resume",
                 "--out", str(dates_run)]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert read_checkpoint(dates_run / "checkpoint.npz").step == 8


def test_a_translate_run_trains_evaluates_generates_and_resumes(tmp_path, pairs_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "translate", "--pairs", str(pairs_file), "--steps", "4", *TINY,
                 "--out", str(out)]) == 0
    assert (out / "attention_cross_attention.png").read_bytes()[:8] == PNG
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["settings"]["pairs"] == str(pairs_file) and saved["metrics"]["n_test"] == 4
    path = str(out / "checkpoint.npz")
    assert main(["evaluate", path]) == 0
    for extra in ([], ["--beam", "2"]):
        assert main(["generate", path, "--input", "The cat is black.", *extra]) == 0
    capsys.readouterr()
    assert main(["generate", path]) == 2
    assert "the translate model needs a sentence: give it with --input" in capsys.readouterr().err
    assert main(["train", "--task", "translate", "--steps", "5", "--no-progress", "--no-pictures", "--resume",
                 "--out", str(out)]) == 0
    pairs_file.write_text(PAIRS + "Hello.\tSalut.\n", encoding="utf-8")  # edited since: refused, named
    assert main(["evaluate", path]) == 2
    assert f"was trained on the pairs {str(pairs_file)!r}: changed since" in capsys.readouterr().err


def test_translate_needs_pairs_and_names_a_bad_file(tmp_path, capsys):
    assert main(["train", "--task", "translate", *TINY, "--out", str(tmp_path / "a")]) == 2
    assert "--pairs FILE is the training data of --task translate" in capsys.readouterr().err
    assert main(["train", "--task", "dates", "--pairs", "x.tsv", *TINY, "--out", str(tmp_path / "b")]) == 2
    bad = tmp_path / "bad.tsv"
    bad.write_text(PAIRS + "no tab here\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["train", "--task", "translate", "--pairs", str(bad), *TINY, "--out", str(tmp_path / "c")]) == 2
    assert "bad.tsv': line 41 has no tab: 'no tab here'" in capsys.readouterr().err


def test_the_pairs_may_be_given_as_a_setting_too(tmp_path, pairs_file, monkeypatch, capsys):
    """--set pairs=FILE and a --config file's "pairs" are the same setting as --pairs (a relative path recorded
    absolute)."""
    monkeypatch.chdir(pairs_file.parent)
    out = tmp_path / "set"
    assert main(["train", "--task", "translate", "--set", f"pairs={pairs_file.name}", "--steps", "2", *TINY,
                 "--no-pictures", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["settings"]["pairs"] == str(pairs_file)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"pairs": str(pairs_file), "steps": 2}), encoding="utf-8")
    assert main(["train", "--task", "translate", "--config", str(config), *TINY, "--no-pictures",
                 "--out", str(tmp_path / "config")]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "translate", "--set", "pairs=3", *TINY, "--out", str(tmp_path / "n")]) == 2
    assert "setting pairs must be a string" in capsys.readouterr().err
