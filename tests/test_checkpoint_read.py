"""Reading a checkpoint one did not make: a file whose members or description are not what save_checkpoint writes
is refused with a CheckpointError that names the member or the field, before a member it does not name is inflated,
before an array is allocated from a size it declares, and before a model is built from a config its arrays
contradict."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from minitransformer import nn
from minitransformer.train import checkpoint as ckpt_module
from minitransformer.train.checkpoint import CheckpointError, read_checkpoint, save_checkpoint

pytestmark = pytest.mark.single_backend


@pytest.fixture
def saved(tmp_path):
    return save_checkpoint(tmp_path / "c.npz", nn.Linear(3, 2), step=4, extra={"task": "demo"})


def _arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path, arrays, meta=None, compressed=False) -> None:
    """Write ``arrays`` (with ``meta`` as the description, if given) with a checksum that matches: only what this test
    changes is wrong."""
    arrays = dict(arrays)
    if meta is not None:
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays.pop("__checksum__", None)
    arrays["__checksum__"] = np.frombuffer(ckpt_module._checksum(arrays).encode(), dtype=np.uint8)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


def _meta(arrays) -> dict:
    return json.loads(arrays["__meta__"].tobytes().decode())


# ------------------------------------------------------------------ members
def test_a_member_the_description_does_not_name_is_refused_by_name_without_being_inflated(saved, monkeypatch):
    arrays = _arrays(saved)
    _write(saved, {**arrays, "../../evil": np.zeros(4, np.float32)})
    inflated = []
    real_read_array = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array",
                        lambda f, **k: inflated.append(f.name) or real_read_array(f, **k))
    with pytest.raises(CheckpointError, match=r"not named by its description: '\.\./\.\./evil'"):
        read_checkpoint(saved)
    assert inflated == ["__meta__.npy", "__checksum__.npy"]  # the description only


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(saved, monkeypatch):
    """A deflated member of 64 MiB of zeros (some 64 KiB in the file) that nothing names: refused as unnamed; named by
    the description, refused for what it would inflate to (the size from which the ratio counts made 1 MiB here, not
    to deflate 256 MiB of zeros). Neither is read."""
    monkeypatch.setattr(ckpt_module, "_SMALL", 1 << 20)
    arrays = _arrays(saved)
    bomb = np.zeros(1 << 24, np.float32)
    _write(saved, {**arrays, "bomb": bomb}, compressed=True)
    assert os.path.getsize(saved) < 1 << 20
    with pytest.raises(CheckpointError, match="not named by its description: 'bomb'"):
        read_checkpoint(saved)
    meta = _meta(arrays)
    meta["extra"]["bomb"] = {"__array__": "bomb"}
    _write(saved, {**arrays, "bomb": bomb}, meta, compressed=True)
    with pytest.raises(CheckpointError, match=r"'bomb' inflates to 67,108,992 bytes from \d"):
        read_checkpoint(saved)


def _write_deflating(path, arrays, meta_text: bytes, deflated) -> None:
    """As :func:`_write` with the description ``meta_text``, the members named in ``deflated`` deflated, the others
    stored (as save_checkpoint does)."""
    arrays = {k: v for k, v in arrays.items() if k != "__checksum__"}
    arrays["__meta__"] = np.frombuffer(meta_text, dtype=np.uint8)
    arrays["__checksum__"] = np.frombuffer(ckpt_module._checksum(arrays).encode(), dtype=np.uint8)
    with zipfile.ZipFile(path, "w") as z:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(name + ".npy")
            info.compress_type = zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED
            with z.open(info, "w") as f:
                np.lib.format.write_array(f, a)


def _meta_with_junk(arrays, junk: bytes) -> bytes:
    """The description of ``arrays`` with ``junk``, JSON text, as the value of extra's "junk"."""
    return json.dumps(_meta(arrays)).encode().replace(b'"extra": {', b'"extra": {"junk": ' + junk + b", ", 1)


def _reads(monkeypatch) -> list:
    """The members read_checkpoint inflates, appended to as it reads each."""
    read, real = [], np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda f, **k: read.append(f.name) or real(f, **k))
    return read


def test_a_description_over_16_mib_is_refused_unread(saved, monkeypatch):
    """Parsed, JSON takes up to 30 times its bytes (a 16 MiB description of [[],[],...] took 1.3 GB and 37 s): a
    description longer than any real one (1.9 MB, a translation's vocabularies of 86,000 words) is not read. (Here one
    long string, cheap to parse, were it read.)"""
    arrays = _arrays(saved)
    text = _meta_with_junk(arrays, b'"' + b"x" * (1 << 24) + b'"')
    _write_deflating(saved, arrays, text, deflated={"__meta__"})
    read = _reads(monkeypatch)
    with pytest.raises(CheckpointError, match=r"'__meta__' is not the bytes it should be \(uint8, at most 16,777,216"):
        read_checkpoint(saved)
    assert read == []


def test_a_description_that_inflates_over_100_times_is_refused_unread(saved, monkeypatch):
    """A real description deflates some 6 times; 2 MiB of one character, 500 times: a bomb under the cap of 16 MiB."""
    arrays = _arrays(saved)
    text = _meta_with_junk(arrays, b'"' + b"x" * (1 << 21) + b'"')
    _write_deflating(saved, arrays, text, deflated={"__meta__"})
    read = _reads(monkeypatch)
    with pytest.raises(CheckpointError, match=r"'__meta__' inflates to 2,09\d,\d{3} bytes from \d"):
        read_checkpoint(saved)
    assert read == []


def test_checking_a_description_of_many_lists_takes_memory_as_small_as_they_do(saved):
    """A path string and a tuple for every node of [[],[],...] (some 130 bytes a node) took gigabytes beside the
    parsed JSON: the check's own memory is a few bytes a node."""
    import tracemalloc

    n = 100_000
    meta = json.loads(_meta_with_junk(_arrays(saved), b"[" + b"[]," * n + b"[]]"))
    tracemalloc.start()
    try:
        ckpt_module._check_meta(meta, "checkpoint 'c.npz'")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * n, peak  # (8 bytes a node, in the lists of a level's nodes; the old check took 130)


def test_members_that_inflate_more_than_10_times_their_file_in_all_are_refused_unread(saved, monkeypatch):
    """Each member under the cap of its own (256 MiB; 1 MiB here, in place of deflating 256 MiB of zeros), six of them
    took 1.6 GB before the checksum refused the file: the members' total is checked from the zip's directory."""
    monkeypatch.setattr(ckpt_module, "_SMALL_TOTAL", 1 << 20, raising=False)
    arrays = _arrays(saved)
    meta = _meta(arrays)
    for i in range(3):
        meta["extra"][f"zeros{i}"] = {"__array__": f"zeros{i}"}
        arrays[f"zeros{i}"] = np.zeros(1 << 18, np.float32)  # 1 MiB each: not over _SMALL, not refused alone
    _write_deflating(saved, arrays, json.dumps(meta).encode(), deflated={"zeros0", "zeros1", "zeros2"})
    read = _reads(monkeypatch)
    with pytest.raises(CheckpointError, match=r"its members inflate to 3,14\d,\d{3} bytes in all from \d[\d,]* in the "
                                              r"file \(more than 10 times: a zip bomb\?\); refused unread"):
        read_checkpoint(saved)
    assert read == []


def test_running_out_of_memory_reading_a_checkpoint_is_said_so_with_its_size_not_as_damage(saved, monkeypatch):
    def no_memory(f, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(np.lib.format, "read_array", no_memory)
    with pytest.raises(CheckpointError, match=r"c\.npz': ran out of memory reading it: its members inflate to "
                                              r"\d[\d,]* bytes in all$"):
        read_checkpoint(saved)


def test_a_member_that_ends_early_is_said_so(saved, monkeypatch):
    """zipfile's EOFError of a member cut short says nothing: the message ended "(truncated or damaged?): "."""
    def cut_short(f, **kwargs):
        raise EOFError()

    monkeypatch.setattr(np.lib.format, "read_array", cut_short)
    with pytest.raises(CheckpointError, match=r"\(truncated or damaged\?\): a member ends before its data do$"):
        read_checkpoint(saved)


def test_a_compressed_checkpoint_of_ordinary_arrays_still_reads(saved):
    arrays = _arrays(saved)
    _write(saved, arrays, compressed=True)
    assert read_checkpoint(saved).step == 4


def test_a_checkpoint_compressed_by_hand_with_mostly_zeros_reads(saved):
    """Adam's moments of embedding rows never seen are zeros: a real checkpoint zipped by hand had a member of 2 MB
    that deflated 107 times, and was refused as a zip bomb."""
    arrays = _arrays(saved)
    meta = _meta(arrays)
    zeros = np.zeros(1 << 20, np.float32)  # 4 MiB, a few KiB deflated
    meta["extra"]["moments"] = {"__array__": "moments"}
    _write(saved, {**arrays, "moments": zeros}, meta, compressed=True)
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("moments.npy")
    assert info.file_size > 100 * info.compress_size
    np.testing.assert_array_equal(read_checkpoint(saved).extra["moments"], zeros)


@pytest.mark.parametrize("shape", [(2_000_000_000,), (1000, 1000, 1000, 1000)])
def test_a_member_whose_header_declares_more_than_it_holds_is_refused_before_any_allocation(saved, shape):
    """The .npy header says (2e9,) float32 (8 GB), the member holds 24 bytes: refused, nothing allocated."""
    arrays = _arrays(saved)
    _write(saved, arrays)
    with zipfile.ZipFile(saved) as z:
        members = {info.filename: z.read(info) for info in z.infolist()}
    raw = members["model/weight.npy"]
    header = raw[:raw.index(b"\n") + 1]
    old = repr(arrays["model/weight"].shape).encode()
    forged = header.replace(old, repr(shape).encode().ljust(len(old)))
    forged = forged[:10] + forged[10:-1].ljust(len(header) - 11) + b"\n"
    members["model/weight.npy"] = forged + raw[len(header):]
    with zipfile.ZipFile(saved, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError, match=r"'model/weight'.*declares shape .* but holds \d+ "):
        read_checkpoint(saved)


def test_a_member_that_is_no_npy_array_is_refused(saved):
    arrays = _arrays(saved)
    with zipfile.ZipFile(saved, "w") as z:
        for name, a in arrays.items():
            z.writestr(name + ("" if name == "__meta__" else ".npy"), a.tobytes() if name == "__meta__" else _npy(a))
    with pytest.raises(CheckpointError, match="'__meta__'.*not a NumPy array"):
        read_checkpoint(saved)


def _npy(a) -> bytes:
    import io

    f = io.BytesIO()
    np.save(f, a)
    return f.getvalue()


def test_a_member_of_a_dtype_no_checkpoint_holds_is_refused(saved):
    arrays = _arrays(saved)
    _write(saved, {**arrays, "model/weight": arrays["model/weight"].astype(np.complex64)})
    with pytest.raises(CheckpointError, match="'model/weight' holds complex64"):
        read_checkpoint(saved)


def test_the_checksum_of_an_existing_checkpoint_is_the_one_it_stores(tmp_path):
    """Hashed without copies, the checksum keeps its value: a file written before reads (its stored value was
    computed as below, by a.tobytes(); np.ascontiguousarray makes a 0-d array's shape (1,), which stays)."""
    import hashlib

    arrays = {"b": np.arange(6, dtype=">f4").reshape(2, 3), "a": np.array(3.0), "c": np.zeros((0, 2), np.int8)}
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode() + b"\0" + a.dtype.str.encode() + b"\0" + repr(a.shape).encode() + b"\0")
        h.update(a.tobytes())
    assert ckpt_module._checksum(arrays) == h.hexdigest()


# ------------------------------------------------------------------ the description's fields
@pytest.mark.parametrize("field, value, says", [
    ("step", "abc", "a whole number >= 0"), ("step", float("inf"), "a whole number >= 0"),
    ("step", float("nan"), "a whole number >= 0"), ("step", [1], "a whole number >= 0"),
    ("step", -3, "a whole number >= 0"), ("step", True, "a whole number >= 0"),
    ("model_keys", None, "a list of names"), ("model_keys", 5, "a list of names"),
    ("model_keys", [1], "a list of names"),
    ("model_type", ["Linear"], "a class name"), ("model_type", None, "a class name"),
    ("config", [1, 2], "a dict or null"), ("extra", [1], "a dict or null"), ("trainer", "x", "a dict or null"),
    ("history", 3, "a dict or null"), ("tokenizer", "char", "a dict or null"), ("optimizer", 1, "a dict or null"),
    ("optimizer_type", 3, "a class name or null"), ("modules", {"positional": 3}, r"a list of \[path, class name\]"),
])
def test_a_field_of_the_wrong_kind_is_refused_naming_it(saved, field, value, says):
    arrays = _arrays(saved)
    meta = _meta(arrays)
    meta[field] = value
    _write(saved, arrays, meta)
    with pytest.raises(CheckpointError, match=rf"checkpoint '.*': field '{field}' must be {says}[^,]*, got"):
        read_checkpoint(saved)


def test_an_array_the_description_names_and_the_file_lacks_is_named(saved):
    arrays = _arrays(saved)
    del arrays["model/weight"]
    _write(saved, arrays)
    with pytest.raises(CheckpointError, match=r"lacks the arrays its description names: 'model/weight'$"):
        read_checkpoint(saved)


@pytest.mark.parametrize("reference", [["x"], 5, None, "__checksum__", "__meta__"])
def test_an_array_reference_that_names_no_array_member_is_refused(saved, reference):
    arrays = _arrays(saved)
    meta = _meta(arrays)
    meta["extra"]["note"] = {"__array__": reference}
    _write(saved, arrays, meta)
    with pytest.raises(CheckpointError, match=r"'extra/note'"):
        read_checkpoint(saved)


def test_a_description_nested_too_deeply_is_refused(saved):
    arrays = _arrays(saved)
    deep = b"[" * 200_000 + b"]" * 200_000
    text = json.dumps(_meta(arrays)).encode().replace(b'"note": "x"', b'"note": ' + deep)
    meta = _meta(arrays)
    meta["extra"]["note"] = "x"
    text = json.dumps(meta).encode().replace(b'"x"', deep)
    arrays["__meta__"] = np.frombuffer(text, dtype=np.uint8)
    _write(saved, arrays)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        read_checkpoint(saved)


# ------------------------------------------------------------------ not a file
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "c.npz"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_checkpoint(fifo)


def test_a_pytorch_file_is_refused_with_a_pointer_to_the_converter(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/version", b"3\n")
    with pytest.raises(CheckpointError, match=r"not a minitransformer checkpoint.*PyTorch.*from_torch_state_dict"):
        read_checkpoint(path)


# ------------------------------------------------------------------ the model a config builds
def _transformer_checkpoint(tmp_path, **config_changes):
    from minitransformer.train import read_checkpoint as read

    model = nn.Transformer(14, 14, d_model=16, heads=2, d_ff=32, num_encoder_layers=1, num_decoder_layers=1,
                           max_len=20)
    path = save_checkpoint(tmp_path / "t.npz", model)
    if config_changes:
        arrays = _arrays(path)
        meta = _meta(arrays)
        meta["config"].update(config_changes)
        _write(path, arrays, meta)
    return read(path)


@pytest.mark.parametrize("change, says", [
    (dict(evil=1), r"its config holds 'evil', which a Transformer does not take \(it takes src_vocab, tgt_vocab"),
    (dict(d_model="16"), r"its config does not build a Transformer: Transformer: d_model must be a positive integer"),
    (dict(dropout=float("nan")), r"its config does not build a Transformer: .*nan"),
    (dict(src_vocab=3_000_000), r"its config gives src_vocab=3000000, but its array 'src_embed.weight' has shape "
                                r"\(14, 16\) \(src_vocab 14\)"),
    (dict(d_model=4096), r"its config gives d_model=4096, but its array 'src_embed.weight'"),
    (dict(d_ff=1 << 20), r"its config gives d_ff=1048576, but its array 'encoder.layers.0.ffn.W_1.weight'"),
    (dict(num_decoder_layers=1000), r"its config gives num_decoder_layers=1000, but it holds the arrays of 1 layers"),
    (dict(max_len=400_000_000), r"its config gives max_len=400000000 positions, more than the 1,048,576"),
])
def test_a_config_that_does_not_build_its_model_is_refused_naming_the_checkpoint_before_building(tmp_path, change,
                                                                                                 says):
    from minitransformer.train import model_from_checkpoint

    ckpt = _transformer_checkpoint(tmp_path, **change)
    with pytest.raises(CheckpointError, match=rf"^checkpoint '.*t\.npz': {says}"):
        model_from_checkpoint(ckpt)


def test_a_learned_positional_table_shows_max_len(tmp_path):
    from minitransformer.train import model_from_checkpoint

    lm = nn.DecoderOnlyLM(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16, positional="learned")
    path = save_checkpoint(tmp_path / "lm.npz", lm)
    assert model_from_checkpoint(read_checkpoint(path)).config == lm.config
    arrays = _arrays(path)
    meta = _meta(arrays)
    meta["config"]["max_len"] = 1 << 19
    _write(path, arrays, meta)
    with pytest.raises(CheckpointError, match=r"max_len=524288, but its array 'positional.weight' has shape \(16,"):
        model_from_checkpoint(read_checkpoint(path))


# ------------------------------------------------------------------ a checkpoint of `minitransformer train`
_TINY = dict(steps=2, batch_size=8, d_model=16, heads=2, layers=1, d_ff=32)


def _task_checkpoint(path, task_of_model, task=None, tokenizer=None, step=0, **extra):
    """A checkpoint of ``task_of_model``'s untrained model, saved as :func:`train` saves it, naming ``task``."""
    from minitransformer.train import tasks

    def sizes(task):
        return dict(seq_len=8, max_len=16) if task == "charlm" else \
            dict(n_train=16, n_val=4, n_test=4, min_len=3, max_len=5) if task == "reverse" else \
            dict(n_train=16, n_val=4, n_test=4)

    setup = tasks.build(task_of_model, **_TINY, **sizes(task_of_model))
    settings = setup.settings if task is None else tasks.settings(task, **_TINY, **sizes(task))
    extra = {"task": task or task_of_model, "settings": settings, **extra}
    return save_checkpoint(path, setup.model, step=step, tokenizer=tokenizer or setup.tokenizer, extra=extra)


@pytest.mark.parametrize("model_of, task, says", [
    ("charlm", "reverse", "names the task 'reverse', whose model is a Transformer, but holds a 'DecoderOnlyLM' "
                          r"\(the model of the charlm task\)"),
    ("reverse", "classify", "names the task 'classify', whose model is a TransformerClassifier, but holds a "
                            r"'Transformer' \(the model of the reverse, copy, sort, dates, translate tasks\)"),
    ("classify", "charlm", "names the task 'charlm', whose model is a DecoderOnlyLM, but holds a "
                           r"'TransformerClassifier' \(the model of the classify task\)"),
])
def test_a_checkpoint_whose_model_is_not_its_tasks_is_refused_naming_the_task_it_is_for(tmp_path, model_of, task,
                                                                                       says):
    from minitransformer.train.run import generate_from_checkpoint

    path = _task_checkpoint(tmp_path / "c.npz", model_of, task=task)
    with pytest.raises(CheckpointError, match=says):
        generate_from_checkpoint(path, "12 3" if task != "charlm" else "a")


def test_a_tokenizer_larger_than_the_models_vocabulary_is_refused_at_load(tmp_path):
    from minitransformer.data import CharTokenizer
    from minitransformer.train.run import generate_from_checkpoint

    big = CharTokenizer("".join(chr(c) for c in range(0x100, 0x200)))
    path = _task_checkpoint(tmp_path / "c.npz", "charlm", tokenizer=big)
    with pytest.raises(CheckpointError, match=rf"its tokenizer has {big.vocab_size} pieces, more than the model's "
                                              r"vocabulary, vocab=\d+"):
        generate_from_checkpoint(path, "a")


@pytest.mark.parametrize("change, says", [
    (dict(n_test=10**9), r"its settings do not make the task: task 'reverse': n_test must be at most "
                         r"10,000,000 \(the examples are made in memory before training\), got 1000000000"),
    (dict(d_model=32), "its setting d_model=32 disagrees with its model's config, d_model=16"),
    (dict(layers=3), "its setting layers=3 disagrees with its model's config, num_encoder_layers=1"),
])
def test_evaluate_refuses_saved_settings_that_disagree_with_the_model_or_make_too_much_data(tmp_path, change, says):
    from minitransformer.train.run import evaluate

    path = _task_checkpoint(tmp_path / "c.npz", "reverse")
    arrays = _arrays(path)
    meta = _meta(arrays)
    meta["extra"]["settings"].update(change)
    _write(path, arrays, meta)
    with pytest.raises(CheckpointError, match=says):
        evaluate(path, blas_threads=None)


@pytest.mark.parametrize("extra, says", [
    (dict(settings=None), "was not written by `minitransformer train`"),
    (dict(checkpoints=[1, 2]), r"field 'extra/checkpoints' must be a dict \(every, keep\) or null, got \[1, 2\]"),
])
def test_resume_refuses_a_checkpoint_without_settings_or_with_a_record_of_copies_of_the_wrong_kind(tmp_path, extra,
                                                                                                  says):
    from minitransformer.train.run import CHECKPOINT_NAME, train

    path = _task_checkpoint(tmp_path / CHECKPOINT_NAME, "reverse")
    arrays = _arrays(path)
    meta = _meta(arrays)
    meta["extra"].update(extra)
    if extra.get("settings", 0) is None:
        del meta["extra"]["settings"]
    _write(path, arrays, meta)
    with pytest.raises(CheckpointError, match=says):
        train("reverse", tmp_path, progress=False, blas_threads=None, resume=True)


def test_the_tables_of_sizes_name_arrays_the_models_have_and_the_sizes_they_show():
    """A renamed layer would leave its row of the tables checking nothing (a size whose array is absent is skipped):
    each row names an array of its model's state, and the axis it names holds the config's size."""
    from minitransformer.train.tasks import _LAYERS_IN_STATE, _SIZES_IN_STATE

    models = {"Transformer": nn.Transformer(11, 13, d_model=8, heads=2, d_ff=16, num_encoder_layers=1,
                                            num_decoder_layers=2),
              "DecoderOnlyLM": nn.DecoderOnlyLM(11, d_model=8, heads=2, d_ff=16, num_layers=3, max_len=16,
                                                positional="learned"),
              "TransformerClassifier": nn.TransformerClassifier(11, d_model=8, heads=2, d_ff=16, num_layers=2)}
    assert set(_SIZES_IN_STATE) == set(_LAYERS_IN_STATE) == set(models)
    for name, model in models.items():
        state = model.state_dict()
        for key, array, axis in _SIZES_IN_STATE[name]:
            assert state[array].shape[axis] == model.config[key], (name, key)
        for key, prefix in _LAYERS_IN_STATE[name]:
            assert len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)}) == model.config[key]


# ------------------------------------------------------------------ what reaches the terminal
_C0_C1 = {*map(chr, range(0x20)), *map(chr, range(0x7f, 0xa0))} - {"\n", "\t"}


def test_generate_prints_the_control_characters_of_a_checkpoints_vocabulary_escaped(tmp_path, capsys):
    """A vocabulary of ESC, BEL, CSI, ... (a hand-made file: OSC 52 writes the clipboard, OSC 0 the window title): the
    text generated is returned as it is and printed with each as its escape, \\x1b."""
    from minitransformer.train.run import generate_from_checkpoint

    path = _task_checkpoint(tmp_path / "c.npz", "charlm")
    arrays = _arrays(path)
    meta = _meta(arrays)
    vocab = meta["tokenizer"]["vocab"]
    controls = sorted(_C0_C1 - set(vocab))
    meta["tokenizer"]["vocab"] = [vocab[0], *controls[:len(vocab) - 1], *vocab[len(controls) + 1:]]
    _write(path, arrays, meta)
    result = generate_from_checkpoint(path, vocab[0], max_new_tokens=40, top_k=None)
    printed = capsys.readouterr().out
    assert set(result) & _C0_C1  # (what the test is about: the model wrote control characters)
    assert not set(printed) & _C0_C1
    assert printed == "".join(f"\\x{ord(c):02x}" if c in _C0_C1 else c for c in result) + "\n"


def test_refusals_quote_what_a_checkpoint_names_and_cut_its_pieces_short(tmp_path):
    from minitransformer.train.run import evaluate, generate_from_checkpoint

    path = _task_checkpoint(tmp_path / "c\x1b[2J.npz", "reverse")
    arrays = _arrays(path)
    meta = _meta(arrays)
    meta["model_type"] = "Evil\x1b]0;title\x07"
    _write(path, arrays, meta)
    with pytest.raises(CheckpointError, match=r"but holds a 'Evil\\x1b\]0;title\\x07': a hand-made") as e:
        generate_from_checkpoint(path, "1 2 3")
    assert not set(str(e.value)) & _C0_C1
    del meta["extra"]["task"]
    _write(path, arrays, meta)
    with pytest.raises(CheckpointError, match=r"^checkpoint '.*c\\x1b\[2J\.npz' was not written by") as e:
        generate_from_checkpoint(path, "1 2 3")

    path = _task_checkpoint(tmp_path / "lm.npz", "charlm")
    arrays = _arrays(path)
    meta = _meta(arrays)
    meta["tokenizer"]["vocab"][0] = "x" * 5000
    _write(path, arrays, meta)
    with pytest.raises(CheckpointError, match=r"no longer give the tokenizer it saved \(.*gone: 'x{26}\.\.\.\)$") as e:
        evaluate(path, blas_threads=None)
    assert len(str(e.value)) < 500
