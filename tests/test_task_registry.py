"""A task of the command line is one entry of ``tasks.REGISTRY``: a digit task added as one entry (with its transform,
a row of ``data.DIGIT_TASKS``) trains, evaluates, generates and resumes through ``train.run``, nothing else changed."""

from __future__ import annotations

import pytest

from minitransformer.data import DIGIT_TASKS
from minitransformer.train import read_checkpoint, run, tasks

pytestmark = pytest.mark.single_backend

TINY = dict(steps=20, batch_size=16, n_train=64, n_val=8, n_test=8, min_len=3, max_len=5, d_model=16, heads=2,
            layers=1, d_ff=32)


def _rotate(seq):
    return list(seq[1:]) + list(seq[:1])  # 3 1 4 1 -> 1 4 1 3


@pytest.fixture
def rotate(monkeypatch):
    """The task ``rotate``, registered for one test (both tables are put back after it)."""
    monkeypatch.setitem(DIGIT_TASKS, "rotate", _rotate)  # the transform: a row of the data layer
    monkeypatch.setitem(tasks.REGISTRY, "rotate", tasks._digit_task("rotate"))  # the task: one entry
    return tasks.REGISTRY["rotate"]


def test_every_task_is_its_entry_and_the_old_tables_are_made_from_the_registry():
    assert tasks.TASKS == tuple(tasks.REGISTRY) == (*DIGIT_TASKS, "dates", "translate", "classify", "charlm")
    for name, task in tasks.REGISTRY.items():
        assert task.name == name and tasks.KIND[name] == task.kind and tasks.DEFAULTS[name] is task.defaults
    assert tasks.TEXT_SEQ2SEQ == ("dates", "translate") and tasks.SEQ2SEQ == tuple(DIGIT_TASKS)


def test_a_digit_task_added_as_one_entry_trains_evaluates_generates_and_resumes(rotate, tmp_path, capsys):
    setup = tasks.build("rotate", **TINY)
    assert setup.name == "rotate" and setup.kind == rotate.kind == "seq2seq"
    assert setup.test and all(target == _rotate(source) for source, target in setup.test)
    assert tasks.settings("rotate") == {**tasks.DEFAULTS["reverse"], **tasks.EVERY_TASK}

    metrics = run.train("rotate", tmp_path, progress=False, blas_threads=None, pictures=False, **TINY)
    out = capsys.readouterr().out
    assert out.startswith("task rotate: Transformer with ") and "\nexample: 31415 -> " in out  # show: pi's digits
    assert metrics["steps"] == 20 and 0.0 <= metrics["test_exact_sequence_accuracy"] <= 1.0
    path = tmp_path / run.CHECKPOINT_NAME
    assert read_checkpoint(path).extra["task"] == "rotate"

    again = run.evaluate(path, blas_threads=None)  # the held-out data rebuilt from the saved settings
    assert "task rotate, Transformer trained for 20 steps" in capsys.readouterr().out
    assert again["test_loss"] == pytest.approx(metrics["test_loss"])

    written = run.generate_from_checkpoint(path, "3 1 4 1", beam=2)
    assert capsys.readouterr().out == written + "\n" and len(written.split()) <= 4 + 2  # barely trained: any tokens
    run.generate_from_checkpoint(path, temperature=0.5)  # no input: its example, and the option it does not read
    err = capsys.readouterr().err
    assert "the rotate task does not read --temperature; ignored" in err
    assert "no --input given; the example '3 1 4 1 5'" in err
    with pytest.raises(ValueError, match=r"^generate: the rotate model reads digits: give it with --input, not "
                                         r"--prompt$"):
        run.generate_from_checkpoint(path, "3 1 4", option="--prompt")

    resumed = run.train("rotate", tmp_path, resume=True, progress=False, blas_threads=None, pictures=False,
                        steps=25)
    assert resumed["steps"] == 25 and f"resumed from {path} at step 20" in capsys.readouterr().out
