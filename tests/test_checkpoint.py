"""Checkpoints: a round trip restores everything exactly; a damaged, truncated, foreign or mismatched file is refused
with a message that names the problem; a crash while writing leaves the old file as it was."""

from __future__ import annotations

import json
import os
import pickle
import stat
import warnings

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn, optim
from minitransformer.backend import CounterRNG
from minitransformer.data import CharTokenizer
from minitransformer.train import checkpoint as ckpt_module
from minitransformer.train.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint


class Tiny(nn.Module):
    """Embedding -> LayerNorm -> Dropout -> Linear: parameters of several kinds, and randomness."""

    def __init__(self, vocab=7, d=4, bias=True):
        super().__init__()
        self.config = {"vocab": vocab, "d": d, "bias": bias}
        self.emb = nn.Embedding(vocab, d)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(d, vocab, bias=bias)

    def forward(self, ids):
        return self.out(self.drop(self.norm(self.emb(ids))))


class Other(Tiny):
    pass


def _train_a_little(model, opt, schedule, steps=3):
    ids = mt.tensor([[1, 2, 3], [4, 5, 6]])
    for _ in range(steps):
        loss = mt.functional.cross_entropy(model(ids), mt.tensor([[2, 3, 4], [5, 6, 0]]))
        loss.backward()
        opt.step()
        opt.zero_grad()
        schedule.step()


def _setup():
    model = Tiny()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    schedule = optim.WarmupSchedule(opt, d_model=4, warmup_steps=2)
    return model, opt, schedule


@pytest.fixture
def saved(tmp_path):
    model, opt, schedule = _setup()
    _train_a_little(model, opt, schedule)
    path = tmp_path / "runs" / "run" / "ckpt.npz"  # the folders do not exist yet (two levels: parents are made too)
    history = {"train_loss": [[1, 2.5], [2, 2.25]], "val_accuracy": [[2, 0.5]]}
    save_checkpoint(path, model, opt, schedule, step=3, tokenizer=CharTokenizer("abc"), history=history,
                    trainer_state={"epoch": 1, "batch_in_epoch": 4}, extra={"task": "demo"})
    return path, model, opt, schedule, history


def _rewrite(path, change):
    """Open the .npz as plain arrays, let ``change`` edit the dict, write it back (a valid zip)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _meta(arrays):
    return json.loads(arrays["__meta__"].tobytes().decode())


def _set_meta(arrays, meta, fix_checksum=True):
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    if fix_checksum:
        arrays["__checksum__"] = np.frombuffer(ckpt_module._checksum(arrays).encode(), dtype=np.uint8)


# ------------------------------------------------------------------ round trip
def test_round_trip_restores_everything_exactly(saved, backend):
    path, model, opt, schedule, history = saved
    rng_before = mt.backend.current().get_rng_state()
    mt.manual_seed(99)  # move the generator away: loading must bring it back
    model2, opt2, schedule2 = _setup()
    ckpt = load_checkpoint(path, model2, opt2, schedule2, restore_rng=True)

    assert ckpt.step == 3 and ckpt.model_type == "Tiny" and ckpt.config == model.config
    assert ckpt.history == history and ckpt.extra == {"task": "demo"}
    assert ckpt.trainer_state == {"epoch": 1, "batch_in_epoch": 4}
    assert CharTokenizer.from_dict(ckpt.tokenizer) == CharTokenizer("abc")
    assert mt.backend.current().get_rng_state() == rng_before
    for (name, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert a.dtype == b.dtype == np.float32
    assert schedule2.step_num == schedule.step_num and schedule2.get_last_lr() == schedule.get_last_lr()
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i in s1["state"]:
        assert s1["state"][i]["step"] == s2["state"][i]["step"] == 3
        np.testing.assert_array_equal(s1["state"][i]["m"], s2["state"][i]["m"])
        np.testing.assert_array_equal(s1["state"][i]["v"], s2["state"][i]["v"])

    # the restored pair takes the very same next step as the original
    _train_a_little(model, opt, schedule, steps=1)
    mt.backend.current().set_rng_state(rng_before)
    _train_a_little(model2, opt2, schedule2, steps=1)
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_what_is_not_given_is_saved_as_nothing(tmp_path):
    """Without step, optimizer, schedule, tokenizer, history, trainer_state or extra: step 0 (no step taken), the
    others absent or empty."""
    ckpt = read_checkpoint(save_checkpoint(tmp_path / "c.npz", Tiny()))
    assert ckpt.step == 0 and ckpt.config == {"vocab": 7, "d": 4, "bias": True}
    assert (ckpt.optimizer_state, ckpt.optimizer_type, ckpt.schedule_state, ckpt.schedule_type, ckpt.tokenizer) \
        == (None, None, None, None, None)
    assert (ckpt.history, ckpt.trainer_state, ckpt.extra) == ({}, {}, {})


def test_the_same_state_gives_the_same_description_and_checksum(tmp_path):
    """The JSON description is written with sorted keys: equal dicts given in another order (a history or an extra
    built in another order) give the same bytes, hence the same checksum."""
    model, state = Tiny(), {"bit_generator": "PCG64", "state": {"state": 1, "inc": 3}, "has_uint64": 0, "uinteger": 0}
    a = save_checkpoint(tmp_path / "a.npz", model, step=2, rng_state=state, extra={"task": "demo", "lr": 0.5},
                        history={"val_loss": [[1, 2.0]], "train_loss": [[1, 3.0]]})
    b = save_checkpoint(tmp_path / "b.npz", model, step=2, rng_state=dict(reversed(state.items())),
                        extra={"lr": 0.5, "task": "demo"}, history={"train_loss": [[1, 3.0]], "val_loss": [[1, 2.0]]})
    with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
        assert za["__meta__"].tobytes() == zb["__meta__"].tobytes()
        assert za["__checksum__"].tobytes() == zb["__checksum__"].tobytes()
        meta = za["__meta__"].tobytes().decode()
    keys = list(json.loads(meta))
    assert keys == sorted(keys)


def test_a_config_of_tuples_and_nan_and_a_history_with_nan_round_trip(tmp_path):
    """JSON turns a config's tuple into a list, and NaN equals nothing: the model that wrote the file must still
    fit it. A NaN or infinite value (a diverged validation loss) is saved as it is."""
    class Sized(Tiny):
        def __init__(self, sizes=(4, 8), eps=float("nan")):
            super().__init__()
            self.config = {"sizes": sizes, "eps": eps}

    history = {"val_loss": [[1, 2.5], [2, float("nan")], [3, float("inf")]]}
    path = save_checkpoint(tmp_path / "c.npz", Sized(), history=history)
    ckpt = load_checkpoint(path, Sized())
    assert ckpt.config["sizes"] == [4, 8] and np.isnan(ckpt.config["eps"])
    np.testing.assert_array_equal(np.array(ckpt.history["val_loss"]), np.array(history["val_loss"]))
    for other in [(4, 9), (4,), (4, 8, 1)]:  # another value, or another length, is another config
        with pytest.raises(CheckpointError, match=r"another config: sizes: checkpoint \[4, 8\]"):
            load_checkpoint(path, Sized(sizes=other))
    with pytest.raises(CheckpointError, match="another config: eps: checkpoint nan, model 0.1"):
        load_checkpoint(path, Sized(eps=0.1))


def test_a_device_array_in_the_extra_data_is_saved_as_a_numpy_array(tmp_path):
    """A backend's array (array-api-strict's stands in for a GPU's) among the JSON-able data goes to the host."""
    xp = pytest.importorskip("array_api_strict")
    path = save_checkpoint(tmp_path / "c.npz", Tiny(), extra={"scores": xp.asarray([1.5, 2.5])})
    scores = read_checkpoint(path).extra["scores"]
    assert isinstance(scores, np.ndarray)
    np.testing.assert_array_equal(scores, [1.5, 2.5])


def test_file_holds_only_numpy_arrays_readable_without_pickle(saved):
    path = saved[0]
    with np.load(path, allow_pickle=False) as z:
        kinds = {z[k].dtype.kind for k in z.files}
        assert "model/emb.weight" in z.files and "optimizer/state/0/m" in z.files
    assert kinds <= set("biuf")


def test_a_checkpoint_from_another_backend_loads_on_numpy(tmp_path):
    model = Tiny()  # on the test's backend (array_api_strict stands in for a GPU's)
    path = save_checkpoint(tmp_path / "c.npz", model)
    with mt.backend.use("numpy"):
        cpu = Tiny()
        load_checkpoint(path, cpu)
        assert all(p.backend.name == "numpy" for p in cpu.parameters())
    np.testing.assert_array_equal(cpu.out.weight.numpy(), model.out.weight.numpy())


# ------------------------------------------------------------------ damage
def test_a_shared_embedding_round_trips_and_an_old_file_with_one_name_still_loads(tmp_path):
    """A module shared by two parents is saved under both names; a file that has only the first (as this library
    wrote before it saved every name) still loads."""
    def build():
        return nn.Transformer(12, 12, 8, 2, 16, 1, 1, max_len=8, share_embeddings=True, tie_output=True)

    model = build()
    path = save_checkpoint(tmp_path / "c.npz", model)
    with np.load(path, allow_pickle=False) as z:
        assert {"model/src_embed.weight", "model/tgt_embed.weight"} <= set(z.files)
    again = build()
    load_checkpoint(path, again)
    np.testing.assert_array_equal(again.tgt_embed.weight.numpy(), model.src_embed.weight.numpy())

    def drop_the_second_name(arrays):
        del arrays["model/tgt_embed.weight"]
        meta = _meta(arrays)
        meta["model_keys"].remove("tgt_embed.weight")
        _set_meta(arrays, meta)

    _rewrite(path, drop_the_second_name)
    old = build()
    load_checkpoint(path, old)
    np.testing.assert_array_equal(old.tgt_embed.weight.numpy(), model.src_embed.weight.numpy())


def test_truncated_file_is_refused(saved):
    path = saved[0]
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 30, 100):
        path.write_bytes(data[:keep])
        with pytest.raises(CheckpointError, match="truncated or damaged|damaged"):
            read_checkpoint(path)


def test_flipped_bytes_are_refused(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    with np.load(path) as z:
        raw = z["model/emb.weight"].tobytes()
    at = bytes(data).find(raw)  # the array's bytes inside the (uncompressed) zip
    assert at > 0
    data[at + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path, Tiny())


def test_an_edited_array_in_a_valid_zip_fails_the_checksum(saved):
    path = saved[0]

    def change(arrays):
        arrays["model/out.weight"] = arrays["model/out.weight"] + 1.0

    _rewrite(path, change)
    with pytest.raises(CheckpointError, match="checksum does not match"):
        read_checkpoint(path)


def test_a_missing_array_is_named(saved):
    path = saved[0]

    def change(arrays):
        del arrays["optimizer/state/0/m"]
        arrays["__checksum__"] = np.frombuffer(ckpt_module._checksum(arrays).encode(), dtype=np.uint8)

    _rewrite(path, change)
    with pytest.raises(CheckpointError, match="optimizer/state/0/m"):
        read_checkpoint(path)


def test_another_version_is_refused(saved):
    path = saved[0]

    def change(arrays):
        meta = _meta(arrays)
        meta["version"] = 99
        _set_meta(arrays, meta)

    _rewrite(path, change)
    with pytest.raises(CheckpointError, match="version 99"):
        read_checkpoint(path)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    plain = tmp_path / "weights.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(CheckpointError, match="not a minitransformer checkpoint"):
        read_checkpoint(plain)
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "missing.npz")


def _write_other(path, kind: str) -> None:
    if kind == "text":
        path.write_text("hello", encoding="utf-8")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.ones(3))
    else:  # a .npz of Python objects (np.savez pickles them)
        np.savez(path, w=np.array([{"w": 1.0}], dtype=object))


@pytest.mark.single_backend
@pytest.mark.parametrize("kind, why", [("text", "it is not a .npz archive"), ("empty", "it is not a .npz archive"),
                                       ("pickle", "it is not a .npz archive"), ("npy", "it is not a .npz archive"),
                                       ("objects", "it holds arrays of Python objects")])
def test_a_file_that_is_no_npz_of_numbers_is_refused_without_suggesting_pickle(tmp_path, kind, why):
    path = tmp_path / "other.npz"
    _write_other(path, kind)
    with pytest.raises(CheckpointError) as refused:
        read_checkpoint(path)
    message = str(refused.value)
    assert message.startswith(f"{str(path)!r} is not a minitransformer checkpoint: {why}")
    assert "pickle" not in message.lower()


# ------------------------------------------------------------------ mismatches
def test_wrong_model_shapes_are_named_and_the_model_is_unchanged(saved):
    path = saved[0]
    model = Tiny(vocab=7, d=6)
    before = model.state_dict()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, model)
    message = str(err.value)
    assert "another config" in message and "d: checkpoint 4, model 6" in message
    model.config = None  # without a config to compare, the shapes speak
    expected = r"'emb.weight': the model expects shape \(7, 6\), the state has \(7, 4\)"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path, model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_missing_keys_are_named(saved):
    path = saved[0]
    model = Tiny(bias=False)
    model.config = None
    with pytest.raises(CheckpointError, match="unexpected keys.*'out.bias'"):
        load_checkpoint(path, model)


def test_another_model_type_is_refused(saved):
    with pytest.raises(CheckpointError, match="holds a Tiny, not a Other"):
        load_checkpoint(saved[0], Other())


def test_an_optimizer_that_does_not_fit_leaves_the_model_unchanged(saved):
    path = saved[0]
    model = Tiny()
    before = model.state_dict()
    with pytest.raises(CheckpointError, match="state of a Adam, not a SGD"):
        load_checkpoint(path, model, optim.SGD(model.parameters(), lr=0.1))
    # same class, other settings: Adam's group holds the same keys, but a wrong parameter count
    opt = optim.Adam(list(model.parameters())[:2], lr=0.1)
    with pytest.raises(CheckpointError, match="its optimizer state does not fit"):
        load_checkpoint(path, model, opt)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def _everything(model, opt, schedule):
    """What a load may change: the weights, the optimizer's state, the schedule's, the generator's."""
    return (model.state_dict(), opt.state_dict(), schedule.state_dict(), schedule.get_last_lr(),
            mt.backend.current().get_rng_state())


def _assert_same(a, b):
    np.testing.assert_equal(a, b)  # nested dicts and lists of arrays and numbers, compared exactly


def test_loading_with_an_optimizer_resumes_the_random_stream_unless_told_not_to(saved):
    """load_checkpoint(path, model, opt, schedule) in a loop of one's own resumed with another random stream (the
    default was restore_rng=False): the dropout masks after the resume were not the run's, silently."""
    path, *_ = saved
    written = read_checkpoint(path).rng_state
    be = mt.backend.current()
    mt.manual_seed(99)
    model2, opt2, schedule2 = _setup()
    load_checkpoint(path, model2, opt2, schedule2)  # resuming training: the stream too
    assert be.get_rng_state() == written
    mt.manual_seed(99)
    alone, told = _setup()[0], _setup()  # (their initialisations draw random numbers)
    moved = be.get_rng_state()
    load_checkpoint(path, alone)  # the model alone, to evaluate: the generator is left alone
    load_checkpoint(path, *told, restore_rng=False)  # and when told
    assert be.get_rng_state() == moved


def test_a_gpu_checkpoint_resumed_on_the_cpu_is_refused_before_anything_changes(tmp_path):
    """Its generator state (the GPU's CounterRNG) was restored last: the refusal came after the optimizer's and the
    schedule's states were loaded, and only the model was put back. Now it is refused first, saying why and what to
    do; and without restore_rng it loads, weights and all, for evaluation or generation."""
    model, opt, schedule = _setup()
    _train_a_little(model, opt, schedule)
    path = save_checkpoint(tmp_path / "gpu.npz", model, opt, schedule, step=3,
                           rng_state=CounterRNG(np, seed=5).state)  # as a run on CuPy writes it

    with mt.backend.use("numpy"):
        mt.manual_seed(1)
        model2, opt2, schedule2 = _setup()
        before = _everything(model2, opt2, schedule2)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path, model2, opt2, schedule2, restore_rng=True)
        _assert_same(_everything(model2, opt2, schedule2), before)
        message = str(err.value)
        assert "was written on another backend: its random generator is CounterRNG, the numpy backend's is PCG64" \
            in message
        assert "load it without restore_rng" in message and "--backend cupy" in message
        assert "optimizer" not in message.split(":")[0]

        ckpt = load_checkpoint(path, model2, opt2, schedule2)  # the weights are NumPy arrays: they load anywhere
        assert ckpt.step == 3 and schedule2.step_num == schedule.step_num
        for a, b in zip(model.parameters(), model2.parameters()):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert mt.backend.current().get_rng_state() == before[-1]  # the generator left alone


def test_a_refused_load_puts_back_the_optimizer_and_the_schedule_too(saved, tmp_path):
    """A random generator's state of the right kind, but damaged: restored last, it fails after the model, the
    optimizer and the schedule were loaded. All of them are put back (the optimizer and the schedule were not)."""
    path, model, opt, schedule, _ = saved
    damaged = {"PCG64": {"bit_generator": "PCG64", "state": {"state": "not a number"}},
               "CounterRNG": {"bit_generator": "CounterRNG", "seed": "not a number", "counter": 0}}
    damaged = damaged[mt.backend.current().rng_kind]  # the kind this backend restores (CuPy's: CounterRNG)
    bad = save_checkpoint(tmp_path / "bad.npz", model, opt, schedule, step=3, rng_state=damaged)
    mt.manual_seed(7)
    model2, opt2, schedule2 = _setup()
    before = _everything(model2, opt2, schedule2)
    with pytest.raises(CheckpointError, match="its random generator state does not fit"):
        load_checkpoint(bad, model2, opt2, schedule2, restore_rng=True)
    _assert_same(_everything(model2, opt2, schedule2), before)
    assert not opt2.state and schedule2.step_num == 1


# ------------------------------------------------------------------ atomic writes
@pytest.mark.single_backend
def test_a_full_disk_is_named_by_the_file_being_written(saved, monkeypatch):
    """A write that fails for want of space names no file: the command line said only "minitransformer: No space
    left on device", not which of the run's files was lost (the old one is kept)."""
    import errno

    path, model = saved[0], saved[1]

    def full(f, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_module.np, "savez", full)
    with pytest.raises(OSError) as e:
        save_checkpoint(path, model, step=4)
    monkeypatch.undo()
    assert (e.value.errno, e.value.strerror, e.value.filename) == (errno.ENOSPC, "No space left on device", str(path))
    assert read_checkpoint(path).step == 3 and os.listdir(path.parent) == [path.name]


@pytest.mark.single_backend
@pytest.mark.parametrize("where", ["savez", "replace"])
def test_a_crash_mid_write_leaves_the_old_checkpoint(saved, monkeypatch, where):
    path, model = saved[0], saved[1]
    old = path.read_bytes()

    def crash_in_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")  # some bytes reach the temporary file, then the process "dies"
        raise KeyboardInterrupt("power cut")

    def crash_in_replace(src, dst):
        raise OSError("disk full")

    if where == "savez":
        monkeypatch.setattr(ckpt_module.np, "savez", crash_in_savez)
    else:
        monkeypatch.setattr(ckpt_module.os, "replace", crash_in_replace)
    with pytest.raises((KeyboardInterrupt, OSError)):
        save_checkpoint(path, model, step=4)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert read_checkpoint(path).step == 3
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


@pytest.mark.single_backend
def test_a_checkpoint_open_in_another_program_is_replaced_once_it_is_let_go(saved, monkeypatch):
    """Windows refuses to rename over a file another program has open (an evaluate reading it, an antivirus): the
    rename is tried again, a moment later, rather than the run stopped."""
    path, model = saved[0], saved[1]
    replace, waits = os.replace, []

    def locked_twice(src, dst):
        if len(waits) < 2:
            raise PermissionError(13, "Access is denied", str(src), None, str(dst))
        replace(src, dst)

    monkeypatch.setattr(ckpt_module.os, "replace", locked_twice)
    monkeypatch.setattr(ckpt_module.time, "sleep", waits.append)
    monkeypatch.setattr(ckpt_module, "_OPEN_FILES_BLOCK_RENAMES", True)  # as on Windows
    save_checkpoint(path, model, step=4)
    monkeypatch.undo()
    assert waits == [0.05, 0.1]
    assert read_checkpoint(path).step == 4 and os.listdir(path.parent) == [path.name]


@pytest.mark.single_backend
def test_a_checkpoint_kept_open_is_named_not_the_temporary_file(saved, monkeypatch):
    path, model = saved[0], saved[1]
    old, waits = path.read_bytes(), []

    def locked(src, dst):
        raise PermissionError(13, "Access is denied", str(src), None, str(dst))

    monkeypatch.setattr(ckpt_module.os, "replace", locked)
    monkeypatch.setattr(ckpt_module.time, "sleep", waits.append)
    monkeypatch.setattr(ckpt_module, "_OPEN_FILES_BLOCK_RENAMES", True)  # as on Windows
    with pytest.raises(PermissionError) as e:
        save_checkpoint(path, model, step=4)
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8]  # six tries, 1.55 s in all
    assert e.value.filename == str(path) and ".tmp" not in str(e.value)
    assert e.value.strerror.startswith("Access is denied; it may be open in another program")
    assert path.read_bytes() == old and os.listdir(path.parent) == [path.name]  # no temporary file left behind
    # elsewhere a refusal is the permissions': said at once, without the wait or the word on other programs
    monkeypatch.setattr(ckpt_module, "_OPEN_FILES_BLOCK_RENAMES", False)
    waits.clear()
    with pytest.raises(PermissionError) as e:
        save_checkpoint(path, model, step=4)
    monkeypatch.undo()
    assert waits == [] and e.value.filename == str(path) and e.value.strerror == "Access is denied"


@pytest.mark.single_backend
def test_a_folder_where_the_file_goes_is_named_not_the_temporary_file(tmp_path):
    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(OSError) as e:
        ckpt_module._write_atomically(tmp_path / "metrics.json", lambda f: f.write(b"{}"))
    assert e.value.filename == str(tmp_path / "metrics.json")
    assert e.value.strerror == "is a folder, not a file: remove or rename it"
    assert os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.single_backend
@pytest.mark.parametrize("refused", ["open", "fsync"])
def test_where_a_folder_cannot_be_synced_the_checkpoint_is_written_all_the_same(tmp_path, monkeypatch, refused):
    """The rename is made durable by an fsync of the folder, which only POSIX allows: Windows cannot open a folder
    (PermissionError), some file systems refuse to fsync one (EINVAL). There the step is skipped, not the save."""
    real_open, real_fsync = os.open, os.fsync

    def open_(path, flags, *args):
        if refused == "open" and os.path.isdir(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    def fsync(fd):
        if refused == "fsync" and stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        return real_fsync(fd)

    monkeypatch.setattr(ckpt_module.os, "open", open_)
    monkeypatch.setattr(ckpt_module.os, "fsync", fsync)
    path = save_checkpoint(tmp_path / "checkpoint.npz", Tiny(), step=1)
    monkeypatch.undo()
    assert read_checkpoint(path).step == 1 and os.listdir(tmp_path) == ["checkpoint.npz"]


@pytest.mark.single_backend
@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("umask, mode", [(0o027, 0o640), (0o022, 0o644)], ids=["umask_027", "umask_022"])
def test_a_checkpoint_gets_the_mode_of_any_new_file(tmp_path, umask, mode):
    # 0o027: neither the usual 0o022 nor what a private temporary file has (0o600); 0o022 masks no one's x bit
    before = os.umask(umask)
    try:
        (tmp_path / "metrics.json").write_text("{}", encoding="utf-8")
        for step in (1, 2):  # written, then replaced
            path = save_checkpoint(tmp_path / "checkpoint.npz", Tiny(), step=step)
            assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode)
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == mode  # 0o666 less the umask, as open(path, "w") gives
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "metrics.json"]


@pytest.mark.single_backend
def test_saving_refuses_what_would_need_pickle(tmp_path):
    with pytest.raises(CheckpointError, match="'extra/when' is a object"):
        save_checkpoint(tmp_path / "c.npz", Tiny(), extra={"when": object()})
    assert not (tmp_path / "c.npz").exists()


# ------------------------------------------------------------------ bad arguments to save and read
@pytest.mark.single_backend
@pytest.mark.parametrize("where, data", [
    ("extra", {"note": {"__array__": "nope"}}),
    ("extra", {"note": {"__array__": "__checksum__"}}),  # would read back as the checksum's bytes
    ("history", {"val_loss": [{"__array__": "model/weight"}]}),
], ids=["missing", "checksum", "history"])
def test_the_array_marker_in_the_callers_data_is_refused_before_the_old_file_is_replaced(tmp_path, where, data):
    path, model = tmp_path / "c.npz", nn.Linear(3, 1)
    save_checkpoint(path, model, step=5)
    old = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"^save_checkpoint: '" + where + r"/[^']+' is the dict "
                                              r"\{'__array__': '[^']+'\}, the form a checkpoint uses inside"):
        save_checkpoint(path, model, step=6, **{where: data})
    assert path.read_bytes() == old and read_checkpoint(path).step == 5
    assert os.listdir(tmp_path) == ["c.npz"]
    # the key among others is plain data
    save_checkpoint(path, model, extra={"note": {"__array__": "x", "also": 1}})
    assert read_checkpoint(path).extra == {"note": {"__array__": "x", "also": 1}}


@pytest.mark.single_backend
def test_arrays_on_one_path_keep_each_its_own(tmp_path):
    a, b, c = np.arange(3.0), np.arange(4.0) + 10, np.arange(5.0) + 20
    path = save_checkpoint(tmp_path / "c.npz", Tiny(), extra={"a/b": a, "a": {"b": b}})
    extra = read_checkpoint(path).extra
    np.testing.assert_array_equal(extra["a/b"], a)
    np.testing.assert_array_equal(extra["a"]["b"], b)
    # three on the path "a/b/c": the third takes a name neither of the first two took
    path = save_checkpoint(tmp_path / "c.npz", Tiny(), extra={"a/b/c": a, "a": {"b/c": b, "b": {"c": c}}})
    extra = read_checkpoint(path).extra
    for got, want in [(extra["a/b/c"], a), (extra["a"]["b/c"], b), (extra["a"]["b"]["c"], c)]:
        np.testing.assert_array_equal(got, want)


@pytest.mark.single_backend
@pytest.mark.parametrize("step, error, says", [
    (1.5, TypeError, "must be an integer >= 0, got 1.5"),
    ("7", TypeError, "must be an integer >= 0, got '7'"),
    (float("nan"), TypeError, "must be an integer >= 0, got nan"),
    (-1, ValueError, "must be an integer >= 0, got -1"),
    (True, TypeError, "must be an integer >= 0, got True"),
])
def test_save_refuses_a_step_that_is_not_a_count(tmp_path, step, error, says):
    with pytest.raises(error, match=r"^save_checkpoint: step " + says):
        save_checkpoint(tmp_path / "c.npz", Tiny(), step=step)
    assert not os.listdir(tmp_path)
    assert read_checkpoint(save_checkpoint(tmp_path / "c.npz", Tiny(), step=np.int64(4))).step == 4


@pytest.mark.single_backend
def test_save_refuses_arguments_of_the_wrong_kind(tmp_path):
    model = Tiny()
    cases = [
        (dict(model="x"), "model must be an nn.Module, got str"),
        (dict(model=model, optimizer="adam"), "optimizer must be an Optimizer or None, got str"),
        (dict(model=model, schedule=3), "schedule must be an LRScheduler or None, got int"),
        (dict(model=model, history=[1, 2]), "history must be a dict or None, got list"),
        (dict(model=model, extra="note"), "extra must be a dict or None, got str"),
        (dict(model=model, tokenizer="abc"), r"tokenizer must be a Tokenizer \(with to_dict\(\)\), its dict or None"),
    ]
    for kwargs, says in cases:
        with pytest.raises(TypeError, match=r"^save_checkpoint: " + says):
            save_checkpoint(tmp_path / "c.npz", **kwargs)
    assert not os.listdir(tmp_path)


@pytest.mark.single_backend
def test_save_refuses_a_folder_an_empty_path_and_a_path_under_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"^save_checkpoint: '.*run' is a folder; give a file path such as "
                                              r"'.*checkpoint\.npz'$"):
        save_checkpoint(tmp_path / "run", Tiny())
    with pytest.raises(CheckpointError, match=r"^save_checkpoint: path is empty"):
        save_checkpoint("", Tiny())
    with pytest.raises(CheckpointError, match=r"^save_checkpoint: '.*notes\.txt/a/c\.npz' cannot be written: "
                                              r"'.*notes\.txt' is a file, not a folder$"):
        save_checkpoint(tmp_path / "notes.txt" / "a" / "c.npz", Tiny())
    with pytest.raises(TypeError, match=r"^save_checkpoint: path must be a str or a Path, got int"):
        save_checkpoint(3, Tiny())
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "run"] and not os.listdir(tmp_path / "run")


@pytest.mark.single_backend
def test_reading_a_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(CheckpointError, match=r"^checkpoint '.*' is a folder, not a checkpoint file \(such as "
                                              r"'.*checkpoint\.npz'\)$"):
        read_checkpoint(tmp_path)


def test_model_from_checkpoint_of_a_model_of_ones_own_says_to_build_it_and_load_the_file(tmp_path):
    """A student's own nn.Module saves and loads (load_checkpoint into one built again); model_from_checkpoint of it
    said "which this command cannot rebuild", written for the command line, and not what to do in Python."""
    from minitransformer.train import model_from_checkpoint

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(3, 2)

    path = save_checkpoint(tmp_path / "own.npz", Probe(), step=4)
    assert load_checkpoint(path, Probe()).step == 4
    expected = (r"holds a Probe: model_from_checkpoint rebuilds only the library's models \['DecoderOnlyLM', "
                r"'Transformer', 'TransformerClassifier'\]; for a model of your own, build a Probe and load the file "
                r"into it, load_checkpoint\(path, model\)$")
    with pytest.raises(CheckpointError, match=expected):
        model_from_checkpoint(read_checkpoint(path))


# ------------------------------------------------------------------ a tokenizer of one's own
class _LowerChar(CharTokenizer):  # inherits kind "char": would read back as a CharTokenizer ("H" -> <unk>)
    def tokenize(self, text):
        return list(text.lower())


class _LowerCharKind(_LowerChar):
    kind = "test-checkpoint-lowerchar"


class _Folding(CharTokenizer):  # a setting of its own that to_dict leaves out: it would read back with the default
    kind = "test-checkpoint-folding"

    def __init__(self, alphabet, fold=True):
        super().__init__(alphabet)
        self.fold = fold

    def tokenize(self, text):
        return list(text.lower() if self.fold else text)


class _Fixed(CharTokenizer):  # an __init__ that takes no vocabulary: from_dict's cls(vocab) fails
    kind = "test-checkpoint-fixed"

    def __init__(self):
        super().__init__("0123456789")


@pytest.mark.single_backend
def test_a_tokenizer_subclass_reads_back_from_a_checkpoint_as_itself(tmp_path):
    from minitransformer.data import tokenizer_from_dict

    tok = _LowerCharKind("abcdeh lo")
    path = save_checkpoint(tmp_path / "c.npz", Tiny(), tokenizer=tok)
    again = tokenizer_from_dict(read_checkpoint(path).tokenizer)
    assert type(again) is _LowerCharKind and again.encode("Hello") == tok.encode("hello") == again.encode("hello")


@pytest.mark.single_backend
@pytest.mark.parametrize("tok, says", [
    (_LowerChar("abcdeh lo"), r"_LowerChar.to_dict: .*inherits kind 'char' from CharTokenizer, so tokenizer_from_dict "
                              r"would read it back as a CharTokenizer.*kind = \"_lowerchar\""),
    (_Folding("abAB", fold=False), r"the _Folding does not read back as itself .*its fold is False, the one read "
                                   r"back's True; .*saves it in to_dict and reads it back in a classmethod from_dict"),
    (_Fixed(), r"the _Fixed does not read back as itself .*reading it back fails \(TypeError: .*from_dict"),
], ids=["inherited-kind", "unsaved-setting", "other-init"])
def test_a_tokenizer_that_would_not_read_back_as_itself_is_refused_before_the_old_file_is_replaced(tmp_path, tok, says):
    path = save_checkpoint(tmp_path / "c.npz", Tiny(), step=1, tokenizer=CharTokenizer("ab"))
    old = path.read_bytes()
    with pytest.raises(CheckpointError, match="^save_checkpoint: " + says):
        save_checkpoint(path, Tiny(), step=2, tokenizer=tok)
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["c.npz"]


# ------------------------------------------------------------------ what the config does not say: the modules' classes
class _NoPE(nn.Module):
    """No positional encoding: a parameter-free module of one's own, in place of the sinusoidal one."""

    def forward(self, x, start=0):
        return x


def _lm():
    return nn.DecoderOnlyLM(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16, dropout=0.0)


@pytest.mark.single_backend
def test_a_model_whose_modules_differ_from_the_saved_ones_is_refused(tmp_path):
    """A sublayer swapped after the model was built (lm.positional = NoPE()) is not in the config: the model rebuilt
    from it, with the sinusoidal encoding, took the weights without complaint and computed something else."""
    from minitransformer.nn.module import StateDictError
    from minitransformer.train import model_from_checkpoint

    mt.manual_seed(0)
    lm = _lm()
    lm.positional = _NoPE()
    ids = mt.tensor([[1, 2, 3, 4]])
    path = save_checkpoint(tmp_path / "lm.npz", lm)
    ckpt = read_checkpoint(path)
    assert ckpt.modules["positional"] == "_NoPE" and ckpt.modules["decoder"] == "Decoder"
    says = r"module 'positional' is a _NoPE.* a SinusoidalPositionalEncoding"
    rebuilt = model_from_checkpoint(ckpt)
    before = rebuilt.state_dict()
    with pytest.raises(StateDictError, match=r"nothing was loaded.\n  its " + says + r" here.*assign the same modules"):
        rebuilt.load_state_dict(ckpt.model_state)
    with pytest.raises(CheckpointError, match=r"^checkpoint '.*' was saved from a DecoderOnlyLM whose " + says
                                              + r"\. Its config does not say so.*assign the same modules"):
        load_checkpoint(path, rebuilt)
    assert all(np.array_equal(a, rebuilt.state_dict()[k]) for k, a in before.items())  # unchanged
    rebuilt.load_state_dict(ckpt.model_state, strict=False)  # taken regardless, on purpose
    # built as it was saved, it loads and computes what the saved model did
    again = _lm()
    again.positional = _NoPE()
    load_checkpoint(path, again)
    np.testing.assert_array_equal(again.eval()(ids).numpy(), lm.eval()(ids).numpy())
    # and the other way round: a model with a module the saved one lacks
    other = _lm()
    other.output = nn.Sequential(nn.Linear(16, 20))
    with pytest.raises(CheckpointError, match=r"whose module 'output' is a Linear; this model's is a Sequential"):
        load_checkpoint(save_checkpoint(tmp_path / "plain.npz", _lm()), other)


@pytest.mark.single_backend
def test_a_checkpoint_without_the_record_of_the_modules_still_loads(tmp_path):
    lm = _lm()
    path = save_checkpoint(tmp_path / "lm.npz", lm)

    def forget(arrays):  # as written before the modules were recorded
        meta = _meta(arrays)
        del meta["modules"]
        _set_meta(arrays, meta)

    _rewrite(path, forget)
    ckpt = read_checkpoint(path)
    assert ckpt.modules is None and type(ckpt.model_state) is dict
    swapped = _lm()
    swapped.positional = _NoPE()
    load_checkpoint(path, swapped)  # nothing to check it against


@pytest.mark.single_backend
def test_a_damaged_record_of_the_modules_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "lm.npz", _lm())

    def damage(arrays):
        meta = _meta(arrays)
        meta["modules"] = {"positional": 3}
        _set_meta(arrays, meta)

    _rewrite(path, damage)
    with pytest.raises(CheckpointError, match=r"field 'modules' must be a list of \[path, class name\] pairs"):
        read_checkpoint(path)


@pytest.mark.single_backend
def test_an_average_keeps_the_record_of_the_modules_and_refuses_checkpoints_whose_modules_differ(tmp_path):
    from minitransformer.train.checkpoint import average_checkpoints

    lm = _lm()
    lm.positional = _NoPE()
    paths = [save_checkpoint(tmp_path / f"s{step}.npz", lm, step=step) for step in (1, 2)]
    avg = average_checkpoints(paths)
    assert avg.modules == read_checkpoint(paths[0]).modules
    with pytest.raises(nn.module.StateDictError, match="'positional' is a _NoPE"):
        _lm().load_state_dict(avg.model_state)
    paths.append(save_checkpoint(tmp_path / "s3.npz", _lm(), step=3))
    with pytest.raises(CheckpointError, match=r"modules/positional is '_NoPE' in the first, "
                                              r"'SinusoidalPositionalEncoding' in the second"):
        average_checkpoints(paths)


class _GeluLM(nn.DecoderOnlyLM):
    """A subclass with an argument of its own, which the parent's config does not hold."""

    def __init__(self, *args, activation="relu", **kwargs):
        super().__init__(*args, **kwargs)
        self.activation = activation


class _GeluLMConfigured(_GeluLM):
    def __init__(self, *args, activation="relu", **kwargs):
        super().__init__(*args, activation=activation, **kwargs)
        self.config = {**self.config, "activation": activation}


@pytest.mark.single_backend
def test_saving_a_model_whose_config_lacks_an_argument_of_its_class_warns_naming_it(tmp_path):
    """_GeluLM(**ckpt.config) silently got activation="relu" where the saved model had "gelu"."""
    sizes = dict(vocab=20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16)
    with pytest.warns(UserWarning, match=r"^save_checkpoint: _GeluLM.__init__ takes 'activation', which the model's "
                                         r"config lacks .*gets the default, not this model's value. A subclass puts "
                                         r"its own arguments into self.config"):
        save_checkpoint(tmp_path / "a.npz", _GeluLM(**sizes, activation="gelu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = save_checkpoint(tmp_path / "b.npz", _GeluLMConfigured(**sizes, activation="gelu"))
        save_checkpoint(tmp_path / "c.npz", _lm())
        save_checkpoint(tmp_path / "d.npz", Tiny())
    assert _GeluLMConfigured(**read_checkpoint(path).config).activation == "gelu"


@pytest.mark.single_backend
def test_a_temporary_file_that_cannot_be_removed_does_not_hide_the_error_in_flight(tmp_path, monkeypatch):
    """A folder made read-only mid-run: the rename was refused, then so was the removal of the temporary file, whose
    PermissionError replaced the rename's (the user saw the random .tmp name, not the checkpoint's)."""
    path, unlink = tmp_path / "checkpoint.npz", os.unlink

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", args[0])

    monkeypatch.setattr(ckpt_module, "_OPEN_FILES_BLOCK_RENAMES", False)  # (Windows would wait, then say more)
    monkeypatch.setattr(os, "replace", lambda tmp, dst: refuse(dst))
    monkeypatch.setattr(os, "unlink", refuse)
    with pytest.raises(PermissionError) as e:
        ckpt_module._write_atomically(path, lambda f: f.write(b"{}"))
    monkeypatch.undo()
    assert e.value.filename == str(path) and e.value.strerror == "Permission denied"
    [left] = os.listdir(tmp_path)
    assert e.value.__notes__ == [f"its temporary file {str(tmp_path / left)!r} was left behind (Permission denied)"]
    unlink(tmp_path / left)


@pytest.mark.single_backend
def test_a_temporary_file_that_cannot_be_made_is_named_by_the_file_being_written(tmp_path, monkeypatch):
    real = os.open

    def refuse(name, *args, **kwargs):
        if str(name).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError) as e:
        ckpt_module._write_atomically(tmp_path / "metrics.json", lambda f: f.write(b"{}"))
    monkeypatch.undo()
    assert e.value.filename == str(tmp_path / "metrics.json") and os.listdir(tmp_path) == []
