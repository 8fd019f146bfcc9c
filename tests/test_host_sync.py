"""A training step makes no host synchronisation when values are checked later (as on a GPU).

On CuPy every ``int(x)``, ``float(x)``, ``bool(x)`` or copy to the host makes the CPU wait for the
GPU. array-api-strict stands in for it here: its Array's conversions are counted during one whole
training step (forward with padding masks, label-smoothed cross-entropy with ignore_index,
backward, gradient clipping, Adam and the schedule). With ``check_values`` off, which is CuPy's
default (and array-api-strict's), the count must be zero: the checks of token ids and targets run on the
device and are read at the next read of it (``Backend.check_range``); with it on, they read values at
once, and the count shows that the hook sees them.
"""

from __future__ import annotations

import contextlib
import re
from functools import partial

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim
from minitransformer.data import make_seq2seq_batch

pytestmark = pytest.mark.single_backend

CONVERSIONS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__array__", "__dlpack__")
#: functions of the namespace that array_api_compat gives CuPy in a generic form that reads the device: its clip
#: assigns through boolean masks (``out[mask] = ...``), and CuPy reads each mask's count back to the host. On
#: array-api-strict they are native and read nothing, so a call of them is counted as the reads it makes on CuPy
SYNC_ON_CUPY = ("clip",)


@pytest.fixture
def counted(monkeypatch):
    """Count every conversion of an array-api-strict Array to a Python value or a host array."""
    xs = pytest.importorskip("array_api_strict")
    Array = type(xs.asarray(0.0))  # the class is not exported by name
    calls = []
    for name in CONVERSIONS:
        original = getattr(Array, name, None)
        if original is None:
            continue

        def hooked(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Array, name, hooked)
    for name in SYNC_ON_CUPY:
        function = getattr(xs, name)

        def counted_call(*args, _name=name, _original=function, **kwargs):
            calls.append(f"xp.{_name} (reads the host on CuPy)")
            return _original(*args, **kwargs)

        monkeypatch.setattr(xs, name, counted_call)
    return calls


@contextlib.contextmanager
def _tiny_transformer(check_values: bool):
    """On array-api-strict with ``check_values`` set: a seeded one-layer Transformer and the paper's Adam for it."""
    with mt.backend.use("array_api_strict") as be:
        previous, be.check_values = be.check_values, check_values
        try:
            mt.manual_seed(0)
            model = nn.Transformer(12, 12, 16, 2, 32, 1, 1, dropout=0.1, max_len=16)
            yield model, optim.Adam.paper(model.parameters(), lr=1e-3)
        finally:
            be.check_values = previous


def _step(check_values: bool, calls: list) -> int:
    with _tiny_transformer(check_values) as (model, opt):
        schedule = optim.WarmupSchedule(opt, d_model=16, warmup_steps=4)
        rng = np.random.default_rng(0)
        pairs = [(list(rng.integers(4, 12, n)), list(rng.integers(4, 12, n))) for n in (3, 5, 4)]
        batch = make_seq2seq_batch(pairs)
        calls.clear()
        logits = model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
        loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=0, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        return len(calls)


def test_a_training_step_makes_no_host_synchronisation_without_value_checks(counted):
    assert _step(check_values=False, calls=counted) == 0, counted


def test_the_hook_sees_the_value_checks(counted):
    # the checks of token ids and targets read min and max on the host: the hook must count them
    assert _step(check_values=True, calls=counted) > 0


def test_cupy_and_its_stand_in_put_value_checks_off_by_default():
    """NumPy checks values at once; CuPy puts the checks off to the next read of the device, and so does
    array_api_strict, its stand-in in CI (Backend.check_range)."""
    assert mt.backend.get("numpy").check_values
    assert not mt.backend.get("array_api_strict").check_values
    # CuPy's own backend object, where it exists, starts with the checks off
    try:
        assert not mt.backend.get("cupy").check_values
    except mt.backend.BackendError:
        pass


@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_trainer_step_makes_no_host_synchronisation_even_accumulating(counted, accumulate):
    """Trainer.train_step of accumulate micro-batches: their weights are the batches' n_tokens, counted on the host
    when the batches were made, so the step reads nothing back (the loss is read only when logged)."""
    from minitransformer.train import Trainer
    from minitransformer.train.tasks import seq2seq_loss

    with _tiny_transformer(check_values=False) as (model, opt):
        smoothed = partial(seq2seq_loss, label_smoothing=0.1)
        trainer = Trainer(model, opt, smoothed, schedule=optim.WarmupSchedule(opt, 16, 4), clip=1.0,
                          progress=False, accumulate=accumulate)
        rng = np.random.default_rng(0)
        batches = [make_seq2seq_batch([(list(rng.integers(4, 12, n)), list(rng.integers(4, 12, n)))
                                       for n in lengths]) for lengths in ((3, 5), (4, 2, 6))[:accumulate]]
        counted.clear()
        trainer.train_step(batches if accumulate > 1 else batches[0])
        assert len(counted) == 0, counted


def test_keeping_and_restoring_the_best_parameters_makes_no_host_synchronisation(counted):
    """restore_best copies the parameters at each new best evaluation and puts them back at the end of fit: on the
    device, so a run with it reads exactly what the same run without it reads (the logged loss), and no more."""
    from minitransformer.train import Trainer
    from minitransformer.train.tasks import seq2seq_loss

    counts, kept = [], []
    for restore_best in (False, True):
        with _tiny_transformer(check_values=False) as (model, opt):
            rng = np.random.default_rng(0)
            batch = make_seq2seq_batch([(list(rng.integers(4, 12, n)), list(rng.integers(4, 12, n))) for n in (3, 5)])
            values = iter([1.0, 0.5, 0.9, 0.8, 0.7])  # the best at step 2, patience out at step 5
            trainer = Trainer(model, opt, seq2seq_loss, eval_fn=lambda m, v=values: {"val_loss": next(v)},
                              eval_every=1, patience=3, restore_best=restore_best, log_every=100, progress=False)
            counted.clear()
            trainer.fit(lambda step, b=batch: b, 10)
            counts.append(len(counted))
            kept.append((trainer.step, trainer.restored_step))
    assert kept == [(5, None), (5, 2)]
    assert counts[1] == counts[0], counted


def test_the_check_of_the_parameters_before_a_checkpoint_reads_the_host_once(counted):
    """Before each checkpoint the Trainer checks that the parameters are finite: it read each parameter's flag on the
    host (46 reads for the tiny Transformer). Now the flags are combined on the device and read once; only where some
    are not finite are they read one by one, to name them."""
    from minitransformer.train import Trainer, TrainingDiverged
    from minitransformer.train.tasks import seq2seq_loss

    with _tiny_transformer(check_values=False) as (model, opt):
        trainer = Trainer(model, opt, seq2seq_loss, progress=False)
        assert len(trainer.params) > 1
        counted.clear()
        trainer._check_finite_params()
        assert counted == ["__bool__"]
        names = [name for name, _ in model.named_parameters()]
        for name in (names[3], names[-1]):
            p = dict(model.named_parameters())[name]
            p.data = p.data * float("nan")
        with pytest.raises(TrainingDiverged, match=rf"by step 0 \({re.escape(names[3])} and 1 more\) while the "):
            trainer._check_finite_params()


def test_sampling_from_a_language_model_makes_no_host_synchronisation(counted):
    """generate's draws (top-k, top-p, the temperature's floor, the uniform numbers kept off 0 and 1) read nothing
    back, and call no xp.clip, which makes two reads a bound on CuPy (backend.clip instead); only an eos_id's check of
    whether every row has ended reads the host, once a token."""
    from minitransformer.train.decoding import generate

    with mt.backend.use("array_api_strict") as be:
        previous, be.check_values = be.check_values, False
        try:
            mt.manual_seed(0)
            lm = nn.DecoderOnlyLM(20, d_model=16, heads=2, d_ff=32, num_layers=1, max_len=16)
            counted.clear()
            generate(lm, mt.tensor([[4, 5, 6]]), max_new_tokens=5, temperature=0.8, top_k=5)
            generate(lm, mt.tensor([[4, 5, 6]]), max_new_tokens=5, temperature=0.8, top_k=5, top_p=0.9)  # a sort
        finally:
            be.check_values = previous
    assert counted == [], counted
