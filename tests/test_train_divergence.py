"""The Trainer notices a loss or a gradient norm that is NaN or infinite at the step it becomes so (where values are
checked at once: NumPy), or at the next read of the device (checked later, as on a GPU: no host synchronisation),
names that step, says nan or inf, and gives the advice that fits the cause."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn, optim
from minitransformer.train import Trainer, TrainingDiverged

pytestmark = pytest.mark.single_backend


def _trainer(bad_from: int, how: str, clip=None, log_every: int = 10):
    """nn.Linear(3, 1) with Adam; from step ``bad_from`` on, its loss is ``how``: "nan", "inf", or "sqrt0" (a finite
    loss whose gradient is not: sqrt at 0)."""
    mt.manual_seed(0)
    model = nn.Linear(3, 1)
    updates = []
    opt = optim.Adam(model.parameters(), lr=1e-3)
    step = opt.step
    opt.step = lambda: updates.append(trainer.step + 1) or step()

    def loss_fn(m, x):
        loss = (m(x) ** 2).mean()
        if trainer.step + 1 < bad_from:
            return loss
        if how == "sqrt0":
            return loss + (m(x) * 0.0).sum().sqrt()  # value 0 + loss; gradient 1 / (2 sqrt 0) = inf
        return loss * float(how)

    trainer = Trainer(model, opt, loss_fn, clip=clip, log_every=log_every, progress=False)
    return trainer, updates


@pytest.mark.parametrize("how", ["nan", "inf"])
def test_the_step_whose_loss_is_not_finite_is_named_and_no_update_is_made_on_it(how):
    """The loss NaN at step 3, log_every 10: it said "became nan by step 10", after 7 updates on NaN, and "nan" of an
    inf. Now step 3, before its update (the parameters stay step 2's), its kind said."""
    trainer, updates = _trainer(3, how)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 20)
    assert str(caught.value) == (f"Trainer: the training loss became {how} by step 3; lower the learning rate (lr was "
                                 "0.001 at the last update) or clip the gradients (clip=1.0)")
    assert (caught.value.step, trainer.step, updates) == (3, 3, [1, 2])
    assert all(np.isfinite(p.numpy()).all() for p in trainer.model.parameters())  # step 2's, the last finite


def test_a_divergence_under_warnings_made_errors_is_a_training_diverged_not_numpys_warning():
    """Run from Python under -W error (or pytest's filterwarnings = error), the first overflow of a diverging run was
    NumPy's RuntimeWarning raised inside a backward pass: no TrainingDiverged, no checkpoint. fit silences NumPy's
    overflow and invalid-value warnings, as the command line did: the divergence is said once, by the Trainer."""
    mt.manual_seed(0)
    model = nn.Linear(3, 1)
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e30), lambda m, x: (m(x) ** 2).mean(), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrainingDiverged, match=r"^Trainer: the training loss became inf by step 2; "):
            trainer.fit(lambda s: mt.ones(4, 3), 20)
    def eval_fn(model):  # an evaluation's own warnings are the user's: not silenced with the step's
        return {"val_loss": float(np.float64(0.0) / np.float64(0.0))}

    model = nn.Linear(3, 1)
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-3), lambda m, x: (m(x) ** 2).mean(),
                      eval_fn=eval_fn, eval_every=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="invalid value encountered"):
            trainer.fit(lambda s: mt.ones(4, 3), 2)
    with warnings.catch_warnings(record=True) as seen:  # outside fit, NumPy warns as it did
        warnings.simplefilter("always")
        (mt.tensor([1e30]) ** 2).numpy()
    assert any("overflow" in str(w.message) for w in seen), [str(w.message) for w in seen]


def test_a_loss_not_finite_at_the_first_step_is_the_loss_or_the_data_not_the_learning_rate():
    trainer, updates = _trainer(1, "inf")
    with pytest.raises(TrainingDiverged, match=r"^Trainer: the training loss was inf at step 1, before any update: "
                                               r"look at the loss function and the data \(.*\), not the learning "
                                               r"rate$") as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 20)
    assert (caught.value.step, updates) == (1, [])


def test_a_gradient_not_finite_with_a_finite_loss_at_the_first_step_is_a_formula_not_the_learning_rate():
    """sqrt at 0: its loss finite, its gradient infinite; with clip, the norm is checked at step 1, before the update
    (it was found only once the parameters were NaN, and the learning rate blamed)."""
    trainer, updates = _trainer(1, "sqrt0", clip=1.0)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 20)
    message = str(caught.value)
    assert message.startswith("Trainer: the gradient norm was ")
    assert " at step 1, before any update, while the training loss was finite: a formula whose gradient is not " \
           "finite where its value is, such as sqrt at 0 (write sqrt(x + eps))" in message, message
    assert message.endswith("; not the learning rate")
    assert (caught.value.step, updates) == (1, [])
    assert all(np.isfinite(p.numpy()).all() for p in trainer.model.parameters())


def test_checked_later_the_first_step_not_finite_is_named_at_the_next_read(checking_later):
    """With check_values off (CuPy's default), a step waits for nothing: the check is read with the logged loss,
    which names the first step not finite, nan or inf, and says it was found later."""
    trainer, updates = _trainer(3, "inf", log_every=5)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 20)
    assert str(caught.value).startswith("Trainer: the training loss became inf by step 3 (found at the read of the "
                                        "device after step 5: ")
    assert (caught.value.step, caught.value.lr, trainer.step) == (3, 0.001, 5)  # the step named; where it stopped


def test_checked_later_a_long_log_interval_keeps_a_number_a_step_and_still_names_the_step(checking_later):
    """The steps since the last log were kept as (step, lr, loss Tensor) each, some 256 bytes a step, for as long as
    log_every: stacked every 256 steps (one operation on the device, no read), the step is still named, with its
    rate, after 600 steps; checked at once (NumPy), nothing is kept."""
    trainer, _ = _trainer(300, "nan", log_every=600)
    trainer.schedule = optim.LambdaLR(trainer.optimizer, lambda t: t)  # lr 1e-3 * t
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 600)
    assert "became nan by step 300 (found at the read of the device after step 600" in str(caught.value)
    assert caught.value.lr == pytest.approx(0.299)  # step 299's: the last update before step 300's loss
    trainer, _ = _trainer(10**9, "nan", log_every=600)
    kept = []  # what is kept before each step's batch is made: 520 steps' after step 520
    trainer.fit(lambda s: kept.append((len(trainer._unread.lrs), [a.shape for a in trainer._unread.losses])) or
                mt.ones(4, 3), 521)
    assert kept[-1] == (520, [(256,), (256,)] + [(1,)] * 8)


def test_checked_at_once_nothing_is_kept_for_the_log():
    trainer, _ = _trainer(10**9, "nan", log_every=600)
    trainer.fit(lambda s: mt.ones(4, 3), 20)
    assert trainer._unread.first is None and not trainer._unread.losses


def test_a_run_resumed_after_a_refused_step_gives_each_step_its_rate():
    """The step refused at once (NumPy) counts, its update unmade, and so does the schedule: a fit after it (with
    the loss fixed, or a lower rate) runs step 4 at step 4's rate, as an uninterrupted run would (the schedule lagged
    one step behind the trainer's count)."""
    trainer, updates = _trainer(3, "nan")
    trainer.schedule = optim.LambdaLR(trainer.optimizer, lambda t: 1 / t)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"became nan by step 3;"):
        trainer.fit(lambda s: mt.ones(4, 3), 5)
    assert (trainer.step, trainer.schedule.step_num, updates) == (3, 4, [1, 2])
    trainer.loss_fn = lambda m, x: (m(x) ** 2).mean()
    rates = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda: rates.append(trainer.optimizer.param_groups[0]["lr"]) or step()
    trainer.fit(lambda s: mt.ones(4, 3), 5)
    assert rates == pytest.approx([1e-3 / 4, 1e-3 / 5])


def test_checked_later_the_message_gives_the_rate_of_the_last_update_before_the_step_it_names(checking_later):
    """Found at the log after step 10, the loss first NaN at step 3: its advice gives the rate of step 2's update,
    which made the parameters step 3's loss came from (a warm-up's rate at the log's step can be several times it;
    it gave step 3's, never used on them), and so does the error's lr."""
    trainer, _ = _trainer(3, "nan")
    trainer.schedule = optim.LambdaLR(trainer.optimizer, lambda t: t)  # lr 1e-3 * t
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 20)
    assert "became nan by step 3 (found at the read of the device after step 10" in str(caught.value)
    assert "(lr was 0.002 at the last update)" in str(caught.value) and caught.value.lr == pytest.approx(2e-3)


def test_checked_later_a_loss_not_finite_since_the_last_log_stops_a_checkpoint_off_the_log_grid(checking_later,
                                                                                                  tmp_path):
    """A checkpoint no longer folds the steps since the last log into the history (it saves their running mean):
    their loss, not finite, is still read and said before it is written, and no checkpoint holds it."""
    trainer, _ = _trainer(3, "nan", log_every=10)
    trainer.checkpoint_path, trainer.checkpoint_every = tmp_path / "c.npz", 4
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 20)
    assert str(caught.value).startswith("Trainer: the training loss became nan by step 3 (found at the read of the "
                                        "device after step 4: ")
    assert trainer.step == 4 and not (tmp_path / "c.npz").exists()


def test_trainer_save_refuses_weights_that_are_not_finite(tmp_path):
    """A loop of one's own (train_step, then save every few steps) wrote NaN weights over the last good checkpoint
    once a step's gradient was NaN with a finite loss (sqrt at 0): fit refuses them before its checkpoints, save did
    not. Now save refuses, naming the parameter and the step, and leaves the checkpoint there whole;
    allow_nonfinite=True writes them all the same."""
    from minitransformer.train import CheckpointError, read_checkpoint

    mt.manual_seed(0)
    model = nn.Linear(2, 1)

    def loss_fn(model, x):
        out = model(x)
        if trainer.step == 2:  # step 3: a finite loss, a NaN gradient
            return (out ** 2).mean() + ((out * 0.0) ** 0.5).sum()
        return (out ** 2).mean()

    trainer = Trainer(model, optim.Adam(model.parameters(), lr=0.01), loss_fn, progress=False)
    path = tmp_path / "ckpt.npz"
    for _ in range(3):
        with np.errstate(divide="ignore", invalid="ignore"):  # (sqrt's gradient at 0)
            trainer.train_step(mt.ones(4, 2))
        if trainer.step == 2:
            trainer.save(path)
    good = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"^save_checkpoint: parameter 'weight' \(and 5 more\) holds NaN or "
                                              r"infinity at step 3: .* is not written .*allow_nonfinite=True"):
        trainer.save(path)
    assert path.read_bytes() == good
    trainer.save(tmp_path / "nan.npz", allow_nonfinite=True)
    assert np.isnan(read_checkpoint(tmp_path / "nan.npz").model_state["weight"]).all()


def test_save_checkpoint_names_the_parameter_of_an_optimizer_state_not_finite(tmp_path):
    """Adam's moments not finite under finite weights are refused too, by the model's name of their parameter."""
    from minitransformer.train import CheckpointError, save_checkpoint

    model = nn.Linear(2, 1)
    opt = optim.Adam(model.parameters(), lr=0.01)
    model(mt.ones(1, 2)).sum().backward()
    opt.step()
    opt.state[model.bias]["v"] = opt.state[model.bias]["v"] * float("inf")
    with pytest.raises(CheckpointError, match=r"^save_checkpoint: the optimizer's 'v' of parameter 'bias' holds NaN"):
        save_checkpoint(tmp_path / "c.npz", model, opt, step=1)
    assert not (tmp_path / "c.npz").exists()


@pytest.mark.parametrize("checking", ["at once", "later"])
def test_the_rate_quoted_is_that_of_the_last_update_made_with_the_peak(checking, request):
    """The loss NaN at step 3 of a schedule at 1, 2, 0 (x 1e-3): the message quoted step 3's rate, 0, never used
    (the parameters step 3's loss came from were made by step 2's update); now step 2's, and the highest so far
    where it is another (a decaying schedule: 0.002 then 0.001), on both paths."""
    if checking == "later":
        request.getfixturevalue("checking_later")
    trainer, _ = _trainer(3, "nan")
    trainer.schedule = optim.LambdaLR(trainer.optimizer, lambda t: [1, 2, 0][t - 1] if t <= 3 else 0)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"by step 3[; ].*lower the learning rate "
                                                  r"\(lr was 0\.002 at the last update\) or") as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 3)
    assert caught.value.lr == pytest.approx(2e-3)
    trainer, _ = _trainer(3, "nan")
    trainer.schedule = optim.LambdaLR(trainer.optimizer, lambda t: 3 - t if t <= 2 else 0)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"\(lr was 0\.001 at the last update, "
                                                                         r"0\.002 at the highest\)"):
        trainer.fit(lambda s: mt.ones(4, 3), 3)


def test_a_gradient_not_finite_with_a_finite_loss_after_updates_is_a_formula_too():
    """sqrt at 0 from step 4 on: the norm (clip) was checked only at step 1, so the NaN update went through and the
    next step's loss blamed the learning rate alone. Checked at once (NumPy: the read costs nothing), it is found at
    step 4, before its update, with the formula's advice first; the rate's too, as after updates the weights they
    made huge can overflow the gradient before the loss (lr 1e6 on the command line does)."""
    trainer, updates = _trainer(4, "sqrt0", clip=1.0)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match=r"^Trainer: the gradient norm was \S+ at "
                                                  r"step 4, before its update, while the training loss was finite: a "
                                                  r"formula .*sqrt at 0.*; or, where the loss grew before, updates too "
                                                  r"large: lower the learning rate") as caught:
        trainer.fit(lambda s: mt.ones(4, 3), 20)
    assert (caught.value.step, updates) == (4, [1, 2, 3])
    assert all(np.isfinite(p.numpy()).all() for p in trainer.model.parameters())


def test_fit_refuses_a_checkpoint_of_an_optimizer_state_not_finite_as_a_divergence():
    """Adam's v can overflow under finite weights and a finite loss (train --task reverse --lr 10000 --warmup 1 --set
    clip=0 --steps 3 on a model of d_model 16 does): fit wrote it, and a run resumed from it went on into NaN. Its
    guard before a checkpoint now looks at the optimizer's state too, in the same one read, and says which."""
    trainer, _ = _trainer(10**9, "nan")
    trainer.checkpoint_path = None
    trainer.fit(lambda s: mt.ones(4, 3), 2)
    trainer.optimizer.state[trainer.model.bias]["v"] = trainer.optimizer.state[trainer.model.bias]["v"] * np.inf
    with pytest.raises(TrainingDiverged, match=r"^Trainer: the optimizer's state became NaN or infinite by step 2 "
                                               r"\(the optimizer's v of bias\) while the training loss was finite"):
        trainer._check_finite_params()
