"""Checkpoint averaging (paper section 6.1): the checkpoints a run keeps, their mean, and the ``average`` command."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn, optim
from minitransformer.cli import main
from minitransformer.data import CharTokenizer
from minitransformer.train import (
    CheckpointError,
    Trainer,
    average_checkpoints,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from minitransformer.train.checkpoint import _kept_by, _kept_path

pytestmark = [pytest.mark.single_backend, pytest.mark.usefixtures("restore_blas_threads")]

TINY = ["--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--batch-size", "16", "--no-progress",
        "--no-pictures", "--set", "n_train=64", "--set", "n_val=8", "--set", "n_test=8"]


class Small(nn.Module):
    """Embedding -> LayerNorm -> Linear, with a config: what a checkpoint of a task's model holds, in small."""

    def __init__(self, vocab=5, d=3):
        super().__init__()
        self.config = {"vocab": vocab, "d": d}
        self.emb = nn.Embedding(vocab, d)
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, vocab)

    def forward(self, ids):
        return self.out(self.norm(self.emb(ids)))


def _checkpoints(folder, steps=(10, 20, 30), dtype="float32", seed=0, **changes):
    """One checkpoint of a ``Small`` model a step, each with other random weights; ``changes`` (step -> dict of
    save_checkpoint's arguments, or "model" -> another model) make one of them differ."""
    rng = np.random.default_rng(seed)
    paths = []
    for step in steps:
        change = changes.get(f"at_{step}", {})
        model = change.pop("model", None) or Small().to(dtype)
        model.load_state_dict({k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in model.state_dict().items()})
        arguments = dict(tokenizer=CharTokenizer("abc"), history={"train_loss": [[step, 1.0 / step]]},
                         extra={"task": "demo", "settings": {"lr": 1e-3, "seed": 0}}, rng_state=None)
        arguments.update(change)
        paths.append(save_checkpoint(folder / f"m-{step}.npz", model, step=step, **arguments))
    return paths


# ------------------------------------------------------------------ the mean
def test_the_average_is_the_mean_of_each_parameter_by_hand(tmp_path):
    paths = _checkpoints(tmp_path, dtype="float64")
    states = [read_checkpoint(p).model_state for p in paths]
    avg = average_checkpoints(paths)
    assert set(avg.model_state) == set(states[0])
    for name, mean in avg.model_state.items():
        by_hand = (states[0][name] + states[1][name] + states[2][name]) / 3
        assert mean.dtype == np.float64
        np.testing.assert_array_equal(mean, by_hand, err_msg=name)
        np.testing.assert_allclose(mean, np.mean([s[name] for s in states], axis=0), rtol=1e-15, atol=0)
    # the rest is the last checkpoint's; what resumes training is not kept
    last = read_checkpoint(paths[-1])
    assert (avg.step, avg.history, avg.config, avg.tokenizer) == (30, last.history, last.config, last.tokenizer)
    assert avg.extra == {**last.extra, "averaged": {"steps": [10, 20, 30], "files": [str(p) for p in paths]}}
    assert avg.optimizer_state is None and avg.schedule_state is None and avg.rng_state is None
    assert avg.trainer_state == {}


def test_float32_weights_are_summed_in_float64_and_cast_back(tmp_path):
    model = Small()
    paths = []
    for step, value in ((1, 1.0), (2, 2.0 ** -24), (3, 2.0 ** -24)):  # in float32, 1 + 2**-24 rounds back to 1
        model.load_state_dict({k: np.full(v.shape, value, np.float32) for k, v in model.state_dict().items()})
        paths.append(save_checkpoint(tmp_path / f"m{step}.npz", model, step=step))
    weight = average_checkpoints(paths).model_state["out.weight"]
    float32_sum = (np.float32(1.0) + np.float32(2.0 ** -24) + np.float32(2.0 ** -24)) / np.float32(3)
    assert weight.dtype == np.float32
    assert np.all(weight == np.float32((1.0 + 2.0 ** -23) / 3)) and np.all(weight != float32_sum)


def test_one_checkpoint_averages_to_itself_bit_for_bit(tmp_path):
    mt.manual_seed(3)
    model = nn.Transformer(11, 11, 8, 2, 16, 1, 1, max_len=8, share_embeddings=True)  # tied weights, buffers
    path = save_checkpoint(tmp_path / "m.npz", model, step=7)
    avg = average_checkpoints([path])
    saved = read_checkpoint(path).model_state
    assert list(avg.model_state) == list(saved)
    for name, a in saved.items():
        assert avg.model_state[name].dtype == a.dtype and avg.model_state[name].tobytes() == a.tobytes(), name


@pytest.mark.parametrize("change, says", [
    ({"extra": {"task": "demo", "settings": {"lr": 2e-3, "seed": 0}}}, "extra/settings/lr is 0.002 in the first, "
                                                                      "0.001 in the second"),
    ({"extra": {"task": "other", "settings": {"lr": 1e-3, "seed": 0}}}, "extra/task is 'other' in the first, 'demo'"),
    ({"tokenizer": CharTokenizer("abd")}, "tokenizer/"),
    ({"model": Small(d=4)}, "config/d is 4 in the first, 3 in the second"),
    ({"model": Small(), "config": {"vocab": 5, "d": 3}, "extra": {"task": "demo", "settings": {"lr": 1e-3, "seed": 0},
                                                                  "more": 1}},
     "extra/more is 1 in the first, absent in the second"),
])
def test_a_checkpoint_of_another_run_is_refused_naming_the_file_the_key_and_both_values(tmp_path, change, says):
    paths = _checkpoints(tmp_path, at_20=dict(change))
    with pytest.raises(CheckpointError) as refused:
        average_checkpoints(paths)
    message = str(refused.value)
    assert str(paths[1]) in message and str(paths[2]) in message and says in message, message


def test_a_parameter_missing_or_of_another_shape_is_named_with_the_shapes(tmp_path):
    no_bias = Small()
    no_bias.out = nn.Linear(3, 5, bias=False)  # the same class and config, one parameter fewer
    paths = _checkpoints(tmp_path, at_10={"model": no_bias})
    with pytest.raises(CheckpointError, match=r"parameter 'out.bias' \(shape \(5,\)\) is in .*m-30.npz.*, not in "
                                              r".*m-10.npz"):
        average_checkpoints(paths)
    wide = Small()
    wide.out = nn.Linear(3, 6)  # config unchanged, one weight of another shape
    paths = _checkpoints(tmp_path, at_20={"model": wide})
    with pytest.raises(CheckpointError, match=r"parameter 'out.weight' has shape \(3, 6\) and dtype float32 in the "
                                              r"first, shape \(3, 5\) and dtype float32 in the second"):
        average_checkpoints(paths)
    paths = _checkpoints(tmp_path, at_20={"model": Small().to("float64")})
    with pytest.raises(CheckpointError, match="dtype float64 in the first, shape .* and dtype float32 in the second"):
        average_checkpoints(paths)


def test_no_checkpoint_one_given_twice_or_a_lone_path_is_refused(tmp_path):
    paths = _checkpoints(tmp_path, steps=(1, 2))
    with pytest.raises(ValueError, match="no checkpoints given"):
        average_checkpoints([])
    with pytest.raises(ValueError, match="m-1.npz' is given twice"):
        average_checkpoints([paths[0], paths[1], tmp_path / "." / "m-1.npz"])
    with pytest.raises(TypeError, match="a list of checkpoint files"):
        average_checkpoints(str(paths[0]))


def test_an_average_loads_to_evaluate_and_is_refused_to_resume_training(tmp_path):
    avg = average_checkpoints(_checkpoints(tmp_path))
    model = Small()
    model.load_state_dict(avg.model_state)
    path = save_checkpoint(tmp_path / "avg.npz", model, step=avg.step, extra=avg.extra)
    evaluated = Small()
    load_checkpoint(path, evaluated)  # the weights load like any checkpoint's
    np.testing.assert_array_equal(evaluated.out.weight.numpy(), avg.model_state["out.weight"])
    opt = optim.Adam(evaluated.parameters())
    with pytest.raises(CheckpointError, match=r"load_checkpoint: .*avg.npz' is an average of checkpoints \(steps 10, "
                                              r"20, 30\).*no optimizer state.*the last: .*m-30.npz"):
        load_checkpoint(path, evaluated, opt)
    trainer = Trainer(evaluated, opt, lambda model, batch: model(batch).sum(), progress=False)
    with pytest.raises(CheckpointError, match=r"Trainer.load: .*is an average of checkpoints"):
        trainer.load(path)
    assert trainer.step == 0


# ------------------------------------------------------------------ the checkpoints a run keeps
def _trainer(folder, keep=3, every=2, name="ckpt.npz"):
    mt.manual_seed(0)
    model = nn.Linear(2, 1)
    return Trainer(model, optim.SGD(model.parameters(), lr=0.1), lambda model, x: (model(x) ** 2).mean(),
                   progress=False, checkpoint_path=folder / name, checkpoint_every=every, keep_checkpoints=keep)


def _data(step):
    return mt.ones(4, 2) * (step % 3)


def _files(folder):
    return sorted(os.listdir(folder))


def test_the_files_kept_are_the_last_n_and_no_others(tmp_path):
    (tmp_path / "ckpt-step000003.npz").write_bytes(b"not this run's")  # a file of the same form: not deleted
    (tmp_path / "notes.txt").write_bytes(b"mine")
    trainer = _trainer(tmp_path)
    weights = {}
    trainer.fit(_data, steps=6)
    weights[6] = trainer.model.weight.numpy().copy()
    trainer.fit(_data, steps=11)  # off the grid at the end: checkpoint.npz holds step 11, no copy of it is kept
    assert _files(tmp_path) == ["ckpt-step000003.npz", "ckpt-step000006.npz", "ckpt-step000008.npz",
                                "ckpt-step000010.npz", "ckpt.npz", "notes.txt"]
    assert trainer.kept_checkpoints == ["ckpt-step000006.npz", "ckpt-step000008.npz", "ckpt-step000010.npz"]
    for step in (6, 8, 10):
        assert read_checkpoint(tmp_path / f"ckpt-step{step:06d}.npz").step == step
    np.testing.assert_array_equal(read_checkpoint(tmp_path / "ckpt-step000006.npz").model_state["weight"], weights[6])
    assert read_checkpoint(tmp_path / "ckpt.npz").step == 11
    assert (tmp_path / "ckpt-step000003.npz").read_bytes() == b"not this run's"


def test_a_resumed_run_goes_on_deleting_what_the_run_before_kept(tmp_path):
    first = _trainer(tmp_path)
    first.fit(_data, steps=7)  # keeps 2, 4, 6
    assert _files(tmp_path) == ["ckpt-step000002.npz", "ckpt-step000004.npz", "ckpt-step000006.npz", "ckpt.npz"]
    resumed = _trainer(tmp_path)
    resumed.load(tmp_path / "ckpt.npz")
    resumed.fit(_data, steps=10)  # the run ends on the grid: its last copy is checkpoint.npz again
    assert _files(tmp_path) == ["ckpt-step000006.npz", "ckpt-step000008.npz", "ckpt-step000010.npz", "ckpt.npz"]
    last, kept = read_checkpoint(tmp_path / "ckpt.npz"), read_checkpoint(tmp_path / "ckpt-step000010.npz")
    assert last.step == kept.step == 10
    np.testing.assert_array_equal(last.model_state["weight"], kept.model_state["weight"])


def test_a_checkpoint_cannot_make_a_run_delete_another_file(tmp_path):
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    trainer = _trainer(run, keep=1)
    trainer.fit(_data, steps=2)
    victim = tmp_path / "victim.npz"
    victim.write_bytes(b"keep me")
    (run / "notes.npz").write_bytes(b"keep me too")
    trainer.kept_checkpoints = ["../victim.npz", "notes.npz", str(victim), 3, "ckpt-step000002.npz"]
    trainer.save(run / "ckpt.npz")
    resumed = _trainer(run, keep=1)
    resumed.load(run / "ckpt.npz")
    assert resumed.kept_checkpoints == ["ckpt-step000002.npz"]  # only names of the form the run writes
    resumed.fit(_data, steps=6)
    assert victim.read_bytes() == b"keep me" and (run / "notes.npz").read_bytes() == b"keep me too"
    assert _files(run) == ["ckpt-step000006.npz", "ckpt.npz", "notes.npz"]
    shutil.copytree(run, elsewhere)  # a checkpoint of another folder: its files are not this run's
    other = _trainer(tmp_path / "third", keep=1)
    other.load(elsewhere / "ckpt.npz")
    assert other.kept_checkpoints == []


def test_keep_checkpoints_needs_checkpoint_every_and_a_count(tmp_path):
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="keep_checkpoints=3 keeps the checkpoints written every checkpoint_every"):
        Trainer(model, opt, lambda m, x: m(x).sum(), checkpoint_path=tmp_path / "c.npz", keep_checkpoints=3)
    with pytest.raises(ValueError, match="keep_checkpoints"):
        Trainer(model, opt, lambda m, x: m(x).sum(), checkpoint_path=tmp_path / "c.npz", checkpoint_every=2,
                keep_checkpoints=0)


# ------------------------------------------------------------------ the command line
def test_train_keeps_average_writes_and_evaluate_and_generate_read_the_average(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "6", *TINY, "--checkpoint-every", "2", "--keep-checkpoints",
                 "2", "--out", str(out)]) == 0
    assert _files(out) == ["checkpoint-step000004.npz", "checkpoint-step000006.npz", "checkpoint.npz", "metrics.json"]
    kept = [str(out / "checkpoint-step000004.npz"), str(out / "checkpoint-step000006.npz")]
    capsys.readouterr()

    avg = tmp_path / "avg.npz"
    assert main(["average", *kept, "--out", str(avg)]) == 0
    assert "averaged 2 checkpoints of task copy, steps 4, 6" in capsys.readouterr().out
    states = [read_checkpoint(p).model_state for p in kept]
    written = read_checkpoint(avg)
    assert written.step == 6 and written.optimizer_state is None and written.extra["task"] == "copy"
    for name, mean in written.model_state.items():
        by_hand = ((states[0][name].astype(np.float64) + states[1][name].astype(np.float64)) / 2).astype(np.float32)
        np.testing.assert_array_equal(mean, by_hand, err_msg=name)

    assert main(["evaluate", str(avg)]) == 0
    assert "trained for 6 steps, the average of steps 4, 6" in capsys.readouterr().out
    assert main(["generate", str(avg), "--input", "1 2 3 4 5 6 7 8"]) == 0
    capsys.readouterr()

    assert main(["average", *kept, "--out", str(avg)]) == 2  # an existing file is kept ...
    assert "exists (task copy, step 6); add --overwrite" in capsys.readouterr().err
    assert main(["average", *kept, "--out", str(avg), "--overwrite"]) == 0  # ... unless replaced on purpose
    before = Path(kept[0]).read_bytes()  # but never one of its inputs, which would be lost to the average
    assert main(["average", *kept, "--out", kept[0], "--overwrite"]) == 2
    assert capsys.readouterr().err == (f"minitransformer: average: --out {kept[0]!r} is one of the checkpoints "
                                       "averaged; the average would replace it: give another file\n")
    assert Path(kept[0]).read_bytes() == before
    assert main(["average", kept[1], str(out / "checkpoint.npz"), "--out", str(tmp_path / "twice.npz")]) == 2
    assert "both hold step 6: the same weights would count twice" in capsys.readouterr().err
    assert not (tmp_path / "twice.npz").exists()

    shutil.copy(avg, out / "checkpoint.npz")  # resuming from an average: refused, saying why
    assert main(["train", "--task", "copy", "--steps", "8", *TINY, "--out", str(out), "--resume"]) == 2
    assert "is an average of checkpoints (steps 4, 6)" in capsys.readouterr().err


def test_a_run_resumed_without_its_copy_options_goes_on_keeping_copies(tmp_path):
    """The command printed after Ctrl-C ("continue with: minitransformer train --task ... --out ... --resume") names
    neither --checkpoint-every nor --keep-checkpoints: the resumed run wrote no more copies, and deleted none, so an
    average of the last ones missed every step after the resume, without a word."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "4", *TINY, "--checkpoint-every", "2", "--keep-checkpoints",
                 "2", "--out", str(out)]) == 0
    quiet = ["--no-progress", "--no-pictures"]
    assert main(["train", "--task", "copy", "--steps", "8", "--resume", *quiet, "--out", str(out)]) == 0
    assert _files(out) == ["checkpoint-step000006.npz", "checkpoint-step000008.npz", "checkpoint.npz", "metrics.json"]
    assert read_checkpoint(out / "checkpoint-step000006.npz").step == 6
    # given again, they are the resumed run's: copies every 4 steps, the last one kept
    assert main(["train", "--task", "copy", "--steps", "12", "--resume", *quiet, "--checkpoint-every", "4",
                 "--keep-checkpoints", "1", "--out", str(out)]) == 0
    assert _files(out) == ["checkpoint-step000012.npz", "checkpoint.npz", "metrics.json"]


def test_a_run_removes_what_a_killed_copy_left(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--out", str(out)]) == 0
    stale = out / ".checkpoint-step000400.npz.0123456789ab.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = out / ".notes-step000400.npz.0123456789ab.tmp"  # not a checkpoint's temporary: kept
    other.write_bytes(b"mine")
    assert main(["train", "--task", "copy", "--steps", "3", "--resume", "--no-progress", "--out", str(out)]) == 0
    assert not stale.exists() and other.read_bytes() == b"mine"


def test_keep_checkpoints_without_checkpoint_every_is_refused_naming_both(tmp_path, capsys):
    assert main(["train", "--task", "copy", "--steps", "2", *TINY, "--keep-checkpoints", "2",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--keep-checkpoints N keeps the last N checkpoints written every --checkpoint-every" in \
        capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ what the mutants of averaging showed unchecked
def test_average_expands_a_pattern_the_shell_left_as_it_was(tmp_path, monkeypatch, capsys):
    """Windows' cmd and PowerShell pass ``checkpoint-step*.npz`` on as it is (docs/training.md's command): the
    command expands it, in order; a file whose name only looks like a pattern is itself."""
    from minitransformer.train import run

    averaged = []
    monkeypatch.setattr(run, "average", lambda paths, out, overwrite: averaged.append(paths))
    for name in ("checkpoint-step000004.npz", "checkpoint-step000002.npz", "checkpoint.npz", "odd[1].npz"):
        (tmp_path / name).touch()
    pattern, odd = str(tmp_path / "checkpoint-step*.npz"), str(tmp_path / "odd[1].npz")
    assert main(["average", pattern, odd, "--out", str(tmp_path / "avg.npz")]) == 0
    assert averaged == [[str(tmp_path / "checkpoint-step000002.npz"), str(tmp_path / "checkpoint-step000004.npz"),
                         odd]]
    nothing = str(tmp_path / "run" / "checkpoint-step*.npz")
    assert main(["average", nothing, "--out", str(tmp_path / "avg.npz")]) == 2
    assert capsys.readouterr().err == f"minitransformer: average: {nothing!r} matched no file\n"


def test_an_average_is_named_by_its_files_the_first_and_last_of_more_than_three(tmp_path):
    """The name an average's messages give it (``Checkpoint.path``): every file of up to three, else the first and the
    last."""
    paths = _checkpoints(tmp_path, steps=(10, 20, 30, 40))
    assert average_checkpoints(paths[1:]).path == f"the average of 3 checkpoints ({paths[1]}, {paths[2]}, {paths[3]})"
    assert average_checkpoints(paths).path == f"the average of 4 checkpoints ({paths[0]}, ..., {paths[3]})"


def test_a_parameter_only_an_earlier_checkpoint_holds_is_refused_naming_it(tmp_path):
    """The last checkpoint lacks a parameter an earlier one has: refused (its weights would be dropped silently)."""
    no_bias = Small()
    no_bias.out = nn.Linear(3, 5, bias=False)
    paths = _checkpoints(tmp_path, at_30={"model": no_bias})
    with pytest.raises(CheckpointError, match=r"parameter 'out.bias' \(shape \(5,\)\) is in .*m-10.npz.*, not in "
                                              r".*m-30.npz"):
        average_checkpoints(paths)


class Counted(nn.Module):
    """A linear layer with an integer buffer, which averaging keeps rather than averages."""

    def __init__(self, counts=(3, 1, 4)):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.register_buffer("counts", mt.tensor(np.array(counts, dtype=np.int64)))

    def forward(self, x):
        return self.lin(x)


def test_an_integer_buffer_is_kept_where_equal_and_refused_where_it_differs(tmp_path):
    paths = []
    for step, counts in ((1, (3, 1, 4)), (2, (3, 1, 4)), (3, (3, 1, 5))):
        mt.manual_seed(step)
        paths.append(save_checkpoint(tmp_path / f"c{step}.npz", Counted(counts), step=step))
    avg = average_checkpoints(paths[:2])
    assert avg.model_state["counts"].dtype == np.int64
    np.testing.assert_array_equal(avg.model_state["counts"], [3, 1, 4])
    with pytest.raises(CheckpointError, match=r"c2.npz.*c3.npz.*'counts' holds int64 values, which are not averaged, "
                                              "and they differ"):
        average_checkpoints(paths[1:])


@pytest.mark.parametrize("earlier, last, says", [
    ([1, 2], [1, 2, 3], "extra/layers is [1, 2] in the first, [1, 2, 3] in the second"),  # another length
    ([1, 5, 3], [1, 2, 3], "extra/layers/1 is 5 in the first, 2 in the second"),  # the same length: the item named
    (np.array([1, 2, 3]), [1, 2, 3], "extra/layers is array([1, 2, 3]) in the first, [1, 2, 3] in the second"),
    (np.array([1.0, 2.0, 3.5]), np.array([1.0, 2.0, 3.0]), "extra/layers is array([1. , 2. , 3.5]) in the first, "
                                                           "array([1., 2., 3.]) in the second"),
    (np.array([1, 2, 3], np.int32), np.array([1, 2, 3]), "extra/layers is array([1, 2, 3], dtype=int32) in the first, "
                                                         "array([1, 2, 3]) in the second"),  # the same values
])
def test_a_list_or_an_array_of_extra_that_differs_is_named(tmp_path, earlier, last, says):
    paths = _checkpoints(tmp_path, steps=(1, 2), at_1={"extra": {"layers": earlier}}, at_2={"extra": {"layers": last}})
    with pytest.raises(CheckpointError) as refused:
        average_checkpoints(paths)
    assert says in str(refused.value), str(refused.value)


def test_arrays_of_extra_that_agree_are_averaged_nan_and_all(tmp_path):
    table = np.array([[1.0, np.nan], [0.5, 2.0]])
    paths = _checkpoints(tmp_path, steps=(1, 2), **{f"at_{s}": {"extra": {"table": table.copy(), "ids": np.arange(3)}}
                                                    for s in (1, 2)})
    avg = average_checkpoints(paths)
    np.testing.assert_array_equal(avg.extra["table"], table)
    assert avg.extra["averaged"]["steps"] == [1, 2]


@pytest.mark.parametrize("length, shown", [(60, "'" + "x" * 58 + "'"), (61, "'" + "x" * 56 + "...")])
def test_a_long_value_in_a_refusal_is_cut_to_60_characters(tmp_path, length, shown):
    """A value's repr of up to 60 characters is shown whole, a longer one as its first 57 and '...'."""
    paths = _checkpoints(tmp_path, steps=(1, 2), at_1={"extra": {"note": "x" * (length - 2)}},
                         at_2={"extra": {"note": "y"}})
    with pytest.raises(CheckpointError) as refused:
        average_checkpoints(paths)
    assert f"extra/note is {shown} in the first, 'y' in the second" in str(refused.value), str(refused.value)


def test_a_run_goes_on_where_a_kept_checkpoint_it_would_delete_is_gone(tmp_path):
    """Someone deleted the oldest kept copy (to free space): the run does not fail on deleting it in its turn."""
    trainer = _trainer(tmp_path, keep=1)
    trainer.fit(_data, steps=2)
    (tmp_path / "ckpt-step000002.npz").unlink()
    trainer.fit(_data, steps=4)
    assert _files(tmp_path) == ["ckpt-step000004.npz", "ckpt.npz"]


def test_the_average_function_keeps_an_existing_file_unless_told_to_replace_it(tmp_path):
    from minitransformer.train.run import average

    assert main(["train", "--task", "copy", "--steps", "4", *TINY, "--checkpoint-every", "2", "--keep-checkpoints",
                 "2", "--out", str(tmp_path / "run")]) == 0
    kept = [str(tmp_path / "run" / f"checkpoint-step00000{step}.npz") for step in (2, 4)]
    out = tmp_path / "avg.npz"
    out.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="add --overwrite to replace it"):
        average(kept, out)
    assert out.read_bytes() == b"mine"
    assert average(kept, out, overwrite=True).extra["averaged"]["steps"] == [2, 4]
    assert read_checkpoint(out).step == 4


# ------------------------------------------------------------------ what a reviewer found
def test_a_checkpoint_holding_the_model_restore_best_put_back_is_refused_naming_the_kept_copies(tmp_path, capsys):
    """A patience run (best at step 2, stopped at 4) ends with checkpoint.npz holding step 2's weights under step 4:
    averaged with the copy of step 3, it counted as "steps 3, 4" with step 2's weights as step 4's."""
    out = tmp_path / "run"
    assert main(["train", "--task", "copy", "--steps", "10", *TINY, "--eval-every", "2", "--patience", "1",
                 "--checkpoint-every", "1", "--keep-checkpoints", "2", "--out", str(out)]) == 0
    assert "restored the model of the best evaluation: step 2" in capsys.readouterr().out
    final, kept = out / "checkpoint.npz", [out / "checkpoint-step000003.npz", out / "checkpoint-step000004.npz"]
    with pytest.raises(CheckpointError, match=r"checkpoint.npz' holds the weights of step 2, which restore_best put "
                                              r"back at the end of the run, under its last step, 4: .* Average the "
                                              r"copies the run kept under their steps \(checkpoint-step\*\.npz"):
        average_checkpoints([kept[0], final])
    assert main(["average", str(kept[0]), str(final), "--out", str(tmp_path / "avg.npz")]) == 2
    assert "holds the weights of step 2" in capsys.readouterr().err and not (tmp_path / "avg.npz").exists()
    avg = average_checkpoints(kept)  # the copies kept under their steps hold the weights of their steps
    assert avg.extra["averaged"]["steps"] == [3, 4]
    last = read_checkpoint(final).trainer_state["last_params"]
    assert all(np.array_equal(read_checkpoint(kept[1]).model_state[name], a) for name, a in last.items())
    # evaluate says whose weights the final checkpoint holds
    assert main(["evaluate", str(final)]) == 0
    text = capsys.readouterr().out
    assert "trained for 4 steps, holding the model of its best evaluation, step 2" in text
    assert re.search(r"^restored_step\s+2$", text, flags=re.M)


def test_a_checkpoint_of_a_diverged_run_is_refused_saying_its_weights_were_put_back_when_it_diverged(tmp_path):
    """A run that diverged at step 30 saved the model of its best evaluation (step 10) under step 30: averaging it
    was refused, saying that restore_best had put the weights back "at the end of its run"."""
    paths = _checkpoints(tmp_path, at_30={"trainer_state": {"stop_reason": "diverged", "restored_step": 10}})
    with pytest.raises(CheckpointError, match=r"m-30\.npz' holds the weights of step 10, which restore_best put back "
                                              r"when the run diverged, under its last step, 30: averaged, they would "
                                              r"count as step 30's\. Average the copies"):
        average_checkpoints(paths)


def test_checkpoints_are_averaged_in_the_order_of_their_steps_past_six_digits(tmp_path):
    """A shell's * lists checkpoint-step1000000.npz before checkpoint-step999999.npz: the wrong file was "the last"
    (its step and history the average's), and the sum ran in another order."""
    paths = _checkpoints(tmp_path, steps=(999998, 999999, 1000000), dtype="float64")
    named = []
    for path, step in zip(paths, (999998, 999999, 1000000)):
        named.append(path.rename(_kept_path(tmp_path / "checkpoint.npz", step)))
    globbed = sorted(tmp_path.glob(_kept_path(tmp_path / "checkpoint.npz", "*").name))
    assert [p.name for p in globbed] == ["checkpoint-step1000000.npz", "checkpoint-step999998.npz",
                                         "checkpoint-step999999.npz"]
    avg = average_checkpoints(globbed)
    assert avg.step == 1000000 and avg.history == {"train_loss": [[1000000, 1e-6]]}
    assert avg.extra["averaged"] == {"steps": [999998, 999999, 1000000], "files": [str(p) for p in named]}
    in_order = average_checkpoints(named)
    for name, mean in in_order.model_state.items():  # the same sum, bit for bit, whatever the order given
        assert mean.tobytes() == avg.model_state[name].tobytes(), name


def test_two_checkpoints_of_one_step_are_refused_by_the_function_too(tmp_path):
    """Only the command refused them; average_checkpoints counted the same weights twice."""
    first = _checkpoints(tmp_path, steps=(10, 20))
    (tmp_path / "again").mkdir()
    again = _checkpoints(tmp_path / "again", steps=(20,))
    with pytest.raises(ValueError, match=r"m-20.npz' and .*again.*m-20.npz' both hold step 20: the same weights would "
                                         r"count twice"):
        average_checkpoints([*first, *again])


def _run(folder, **kwargs):
    """A trainer as _trainer's, with the same extra (task and settings) for every run."""
    trainer = _trainer(folder, **kwargs)
    trainer.extra = {"task": "demo", "settings": {"lr": 0.1}}
    return trainer


def test_a_run_keeps_its_id_when_resumed_and_another_run_has_another(tmp_path):
    first = _run(tmp_path / "a", keep=3)
    first.fit(_data, steps=4)
    run_id = read_checkpoint(tmp_path / "a" / "ckpt.npz").extra["run_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", run_id) and run_id == first.run_id
    resumed = _run(tmp_path / "a", keep=3)
    assert resumed.run_id != run_id  # a new Trainer is a new run ...
    resumed.load(tmp_path / "a" / "ckpt.npz")
    assert resumed.run_id == run_id  # ... unless it continues one
    resumed.extra["settings"]["steps"] = 8  # what --resume --steps 8 changes
    resumed.fit(_data, steps=8)
    kept = [tmp_path / "a" / f"ckpt-step00000{step}.npz" for step in (4, 6, 8)]
    assert {read_checkpoint(p).extra["run_id"] for p in kept} == {run_id}
    assert average_checkpoints(kept).extra["averaged"]["steps"] == [4, 6, 8]  # one run, whatever its steps
    other = _run(tmp_path / "b", keep=3)
    other.fit(_data, steps=6)  # the same task and settings: only its id tells it from the first
    with pytest.raises(CheckpointError, match=r"ckpt-step000006.npz.*ckpt-step000008.npz.*: extra/run_id is "
                                              rf"'[0-9a-f]{{16}}' in the first, '{run_id}' in the second: checkpoints "
                                              r"of two runs"):
        average_checkpoints([tmp_path / "b" / "ckpt-step000006.npz", kept[-1]])


@pytest.mark.parametrize("ids, refused", [((None, None), False), (("a" * 16, None), False), ((None, "b" * 16), False),
                                          (("a" * 16, "b" * 16), True), (("a" * 16, "a" * 16), False)])
def test_without_a_run_id_on_both_the_checkpoints_compare_as_before_by_extra(tmp_path, ids, refused):
    """Checkpoints written before run ids (or one before a resume, one after) agree where their extra, but for the id,
    agrees; two ids must be equal."""
    extras = [{"task": "demo", "settings": {"lr": 1e-3, "seed": 0}} | ({} if i is None else {"run_id": i}) for i in ids]
    paths = _checkpoints(tmp_path, steps=(1, 2), at_1={"extra": extras[0]}, at_2={"extra": extras[1]})
    if refused:
        with pytest.raises(CheckpointError, match="extra/run_id is 'aaaa"):
            average_checkpoints(paths)
    else:
        assert average_checkpoints(paths).extra["averaged"]["steps"] == [1, 2]
    extras[0]["settings"]["lr"] = 2e-3  # without two ids, a setting that differs is refused as before
    paths = _checkpoints(tmp_path, steps=(1, 2), at_1={"extra": extras[0]}, at_2={"extra": extras[1]})
    if None in ids:
        with pytest.raises(CheckpointError, match="extra/settings/lr is 0.002 in the first, 0.001 in the second"):
            average_checkpoints(paths)


def test_overwrite_deletes_the_copies_the_replaced_run_kept_and_nothing_else(tmp_path, capsys):
    """A run replaced by --overwrite left its kept copies, which the new run's glob then took in: with the same
    settings, they were averaged with its own."""
    out = tmp_path / "run"
    run = ["train", "--task", "copy", "--steps", "6", *TINY, "--out", str(out)]
    assert main([*run, "--checkpoint-every", "3", "--keep-checkpoints", "2"]) == 0
    old = read_checkpoint(out / "checkpoint-step000003.npz")
    (out / "checkpoint-step000009.npz").write_bytes(b"mine")  # of the form, but not named by the run: kept
    capsys.readouterr()
    assert main([*run, "--checkpoint-every", "2", "--keep-checkpoints", "3", "--overwrite"]) == 0
    # (its step 6 the new run wrote over, as its own: deleted once the new run wrote its first, it would be lost)
    assert "removed the 1 checkpoint(s) the replaced run kept: checkpoint-step000003.npz" in capsys.readouterr().out
    assert _files(out) == ["checkpoint-step000002.npz", "checkpoint-step000004.npz", "checkpoint-step000006.npz",
                           "checkpoint-step000009.npz", "checkpoint.npz", "metrics.json"]
    new = read_checkpoint(out / "checkpoint-step000004.npz")
    assert new.extra["run_id"] != old.extra["run_id"] and new.extra["settings"] == old.extra["settings"]
    save_checkpoint(out / "checkpoint-step000003.npz", tasks_model(old), step=3, tokenizer=old.tokenizer,
                    extra=old.extra, rng_state=None)  # the old copy, put back: refused as another run's
    with pytest.raises(CheckpointError, match="extra/run_id is .* checkpoints of two runs"):
        average_checkpoints([out / f"checkpoint-step00000{step}.npz" for step in (2, 3, 4)])


@pytest.mark.parametrize("then", ["--resume", "--overwrite"])
def test_copies_of_a_replaced_run_are_deleted_by_what_follows_a_run_killed_before_it_deleted_them(tmp_path, capsys,
                                                                                                  monkeypatch, then):
    """The names were only in memory, deleted after fit: a --overwrite run killed (kill -9, a dropped ssh) after its
    first checkpoint left the old run's copies beside its own for good, and average refused the folder. Its
    checkpoints name them (extra/replaced_copies), and its resume, or the next --overwrite, deletes them."""
    from minitransformer.train import run as run_module

    out = tmp_path / "run"
    run = ["train", "--task", "copy", *TINY, "--out", str(out)]
    assert main([*run, "--steps", "6", "--checkpoint-every", "3", "--keep-checkpoints", "2"]) == 0
    with monkeypatch.context() as m:  # killed after its checkpoints: what follows fit never ran
        m.setattr(run_module, "_remove_kept_by_replaced", lambda *args: None)
        assert main([*run, "--steps", "4", "--checkpoint-every", "2", "--keep-checkpoints", "3", "--overwrite"]) == 0
    assert "checkpoint-step000003.npz" in _files(out)
    assert read_checkpoint(out / "checkpoint.npz").extra["replaced_copies"] == ["checkpoint-step000003.npz",
                                                                                 "checkpoint-step000006.npz"]
    capsys.readouterr()
    options = ["--resume"] if then == "--resume" else ["--checkpoint-every", "2", "--keep-checkpoints", "3", then]
    assert main([*run, "--steps", "6", *options]) == 0
    # (its step 6 the run that follows wrote again, as its own: only step 3 is left to delete)
    assert "removed the 1 checkpoint(s) the replaced run kept: checkpoint-step000003.npz" in capsys.readouterr().out
    kept = [out / f"checkpoint-step00000{step}.npz" for step in (2, 4, 6)]
    assert _files(out) == [p.name for p in kept] + ["checkpoint.npz", "metrics.json"]
    assert average_checkpoints(kept).extra["averaged"]["steps"] == [2, 4, 6]


def tasks_model(ckpt):
    """The model a checkpoint holds, its weights loaded."""
    from minitransformer.train import model_from_checkpoint

    model = model_from_checkpoint(ckpt)
    model.load_state_dict(ckpt.model_state)
    return model


def test_the_checkpoints_of_a_run_resumed_with_more_steps_average_together(tmp_path, capsys):
    """--resume --steps 6 changes the setting steps (extra/settings/steps), which refused the copies kept before the
    resume as another run's; the run's id says it is one run."""
    out = tmp_path / "run"
    run = ["train", "--task", "copy", *TINY, "--checkpoint-every", "2", "--keep-checkpoints", "3", "--out", str(out)]
    assert main([*run, "--steps", "4"]) == 0
    assert main([*run, "--steps", "6", "--resume"]) == 0
    kept = sorted(out.glob(_kept_path(out / "checkpoint.npz", "*").name))
    assert [p.name for p in kept] == ["checkpoint-step000002.npz", "checkpoint-step000004.npz",
                                      "checkpoint-step000006.npz"]
    capsys.readouterr()
    assert main(["average", *map(str, kept), "--out", str(tmp_path / "avg.npz")]) == 0
    assert "averaged 3 checkpoints of task copy, steps 2, 4, 6" in capsys.readouterr().out


def test_a_crafted_kept_checkpoints_list_deletes_nothing_but_the_runs_own_kept_form(tmp_path, capsys):
    """A checkpoint's ``kept_checkpoints`` is data from a file: --overwrite (and a resumed run, through ``_kept_by``)
    deletes only names of the form of its own copies, with ASCII digits, in its folder."""
    from minitransformer.train.run import _kept_by_replaced, _remove_kept_by_replaced

    out = tmp_path / "run"
    (out / "sub").mkdir(parents=True)
    crafted = ["../checkpoint-step000001.npz", str(tmp_path / "checkpoint-step000002.npz"), "checkpoint.npz",
               "metrics.json", "checkpoint-step12345.npz", "checkpoint-step\u0661\u0662\u0663\u0664\u0665\u0666.npz",
               "checkpoint-step\uff11\uff12\uff13\uff14\uff15\uff16.npz", "sub/checkpoint-step000003.npz",
               "checkpoint-step000004.npz"]
    victims = [tmp_path / "checkpoint-step000001.npz", tmp_path / "checkpoint-step000002.npz", out / "metrics.json",
               out / "checkpoint-step12345.npz", out / crafted[5], out / crafted[6], out / "sub" / crafted[7][4:]]
    for victim in victims + [out / "checkpoint-step000004.npz"]:
        victim.write_bytes(b"keep me")
    path = save_checkpoint(out / "checkpoint.npz", Small(), step=4, rng_state=None,
                           trainer_state={"kept_checkpoints": crafted})
    assert _kept_by(path, path, crafted) == ["checkpoint-step000004.npz"]
    names = _kept_by_replaced(path)
    new_run = SimpleNamespace(run_id="a" * 16, kept_checkpoints=[])  # the trainer that then wrote its checkpoint
    path = save_checkpoint(out / "checkpoint.npz", Small(), step=1, rng_state=None, extra={"run_id": new_run.run_id})
    _remove_kept_by_replaced(path, names, new_run)
    assert "removed the 1 checkpoint(s) the replaced run kept: checkpoint-step000004.npz" in capsys.readouterr().out
    assert [v for v in victims if not v.is_file()] == [] and path.is_file()
    assert not (out / "checkpoint-step000004.npz").exists()


def test_two_run_ids_are_refused_where_the_last_checkpoint_has_none(tmp_path):
    """Each checkpoint is compared with the last: without an id there, only settings were compared, and two runs'
    checkpoints of equal settings passed."""
    extra = {"task": "demo", "settings": {"lr": 1e-3, "seed": 0}}
    paths = _checkpoints(tmp_path, at_10={"extra": {**extra, "run_id": "a" * 16}},
                         at_20={"extra": {**extra, "run_id": "b" * 16}}, at_30={"extra": extra})
    with pytest.raises(CheckpointError, match=r"m-10.npz' and '.*m-20.npz' are not checkpoints of one model: "
                                              r"extra/run_id is 'aaaa.*' in the first, 'bbbb.*' in the second"):
        average_checkpoints(paths[::-1])
    assert average_checkpoints(paths[1:]).extra["averaged"]["steps"] == [20, 30]  # one id, one without: as before


def test_an_overwrite_that_fails_before_its_first_checkpoint_leaves_the_old_runs_copies(tmp_path, monkeypatch):
    """--overwrite deleted the replaced run's kept copies before the new run wrote anything: a new run that failed
    then left the old checkpoint without its copies."""
    out = tmp_path / "run"
    run = ["train", "--task", "copy", "--steps", "4", *TINY, "--out", str(out)]
    assert main([*run, "--checkpoint-every", "2", "--keep-checkpoints", "2"]) == 0
    before = _files(out)

    def fails(self, data, steps):
        raise OSError("the disk went away")

    monkeypatch.setattr(Trainer, "fit", fails)
    assert main([*run, "--overwrite"]) == 1
    assert _files(out) == before == ["checkpoint-step000002.npz", "checkpoint-step000004.npz", "checkpoint.npz",
                                     "metrics.json"]


def test_average_checkpoints_refuses_weights_that_are_not_finite(tmp_path):
    """A checkpoint of NaN weights (saved with allow_nonfinite, or before save refused them) was averaged in
    silence, the mean NaN wherever it was; now it is refused, naming the file and the parameter."""
    model = nn.Linear(2, 1)
    good = save_checkpoint(tmp_path / "a.npz", model, step=1)
    model.load_state_dict({k: v * np.nan if k == "bias" else v for k, v in model.state_dict().items()})
    bad = save_checkpoint(tmp_path / "b.npz", model, step=2, allow_nonfinite=True)
    with pytest.raises(CheckpointError, match=rf"^average_checkpoints: {re.escape(repr(str(bad)))} \(step 2\): its "
                                              r"parameter 'bias' holds NaN or infinity"):
        average_checkpoints([good, bad])


class _WithAMaskBuffer(nn.Module):
    """PyTorch's additive causal mask as a buffer: 0 on and below the diagonal, -inf above, a constant of the model."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.register_buffer("mask", mt.tensor(np.triu(np.full((3, 3), -np.inf, dtype=np.float32), 1)))

    def forward(self, x):
        return mt.functional.softmax(self.lin(x) + self.mask, axis=-1)


def test_a_buffer_holding_minus_inf_is_saved_kept_by_fit_and_averaged_but_an_infinite_weight_is_not(tmp_path):
    """save_checkpoint refused a model with a -inf buffer ("parameter 'mask' holds NaN or infinity: the run
    diverged"), and so fit refused its first checkpoint: buffers are not weights. The average of checkpoints that
    hold the same -inf there is that buffer; an infinity in one checkpoint only is still refused."""
    mt.manual_seed(0)
    model = _WithAMaskBuffer()
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-3), lambda m, x: m(x)[:, 0, 0].mean(),
                      checkpoint_path=tmp_path / "c.npz", checkpoint_every=2, keep_checkpoints=2, progress=False)
    trainer.fit(lambda s: mt.ones(2, 3, 3), 4)
    kept = sorted(tmp_path.glob("c-step*.npz"))
    assert len(kept) == 2, sorted(p.name for p in tmp_path.iterdir())
    mean = average_checkpoints(kept).model_state
    np.testing.assert_array_equal(mean["mask"], model.mask.numpy())
    model.lin.bias.data = mt.full((3,), float("inf")).data  # a weight gone infinite
    with pytest.raises(CheckpointError, match=r"^save_checkpoint: parameter 'lin\.bias' holds NaN or infinity"):
        save_checkpoint(tmp_path / "bad.npz", model, step=5)
    bad = save_checkpoint(tmp_path / "bad.npz", model, step=5, allow_nonfinite=True,
                          extra=read_checkpoint(kept[0]).extra)
    with pytest.raises(CheckpointError, match=r"bad\.npz' \(step 5\): its parameter 'lin\.bias' holds NaN or inf"):
        average_checkpoints([*kept, bad])
