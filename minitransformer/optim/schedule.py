r"""Learning-rate schedules: the Transformer paper's warm-up (its equation 3), and any rule as a function.

A schedule object sets ``lr`` in every parameter group of an optimizer. Steps count from 1: the
schedule sets the rate of step 1 when it is made, and each ``schedule.step()`` (after
``optimizer.step()``) moves on to the next, so the t-th update uses the rate of step t::

    opt = Adam.paper(model.parameters())
    schedule = WarmupSchedule(opt, d_model=512, warmup_steps=4000)
    for batch in batches:
        loss = ...; loss.backward()
        opt.step(); opt.zero_grad()
        schedule.step()
"""

from __future__ import annotations

import warnings

from .._arguments import is_real, require_int, require_real
from .optimizer import Optimizer, _to_python

__all__ = ["noam_lr", "LRScheduler", "WarmupSchedule", "LambdaLR"]


def _check_settings(owner: str, d_model, warmup_steps, factor) -> tuple[int, int, float]:
    """The warm-up schedule's settings checked, with the errors naming ``owner``."""
    return (require_int(owner, "d_model", d_model, low=1, why=" (the model width)"),
            require_int(owner, "warmup_steps", warmup_steps, low=1, why=" (steps of warm-up)"),
            float(require_real(owner, "factor", factor, low=0.0, low_open=True)))


def noam_lr(step: int, d_model: int, warmup_steps: int = 4000, factor: float = 1.0) -> float:
    r"""The learning rate of "Attention Is All You Need" at ``step`` (section 5.3, equation 3).

    .. math::

        lrate = \text{factor} \cdot d_{model}^{-0.5} \cdot
                \min(\text{step}^{-0.5},\ \text{step} \cdot \text{warmup\_steps}^{-1.5})

    It rises linearly for the first ``warmup_steps`` steps, peaks at ``step == warmup_steps`` (where the two
    terms are equal, :math:`\text{warmup\_steps}^{-0.5}`), then falls as :math:`\text{step}^{-0.5}`.
    The paper uses ``warmup_steps = 4000``, ``factor = 1``. ("noam" is its name in tensor2tensor and The
    Annotated Transformer, after Noam Shazeer, one of the paper's authors.)

    Parameters
    ----------
    step : int
        The update's number, from 1.
    d_model : int
        The model width :math:`d_{model}`.
    warmup_steps : int
        Steps of linear warm-up (the paper's name; the trainer's setting is ``warmup``).
    factor : float
        A constant multiplier (> 0).

    Returns
    -------
    float
        The learning rate of that step.

    Examples
    --------
    >>> noam_lr(1, d_model=16, warmup_steps=4)      # 16^-0.5 * 1 * 4^-1.5 = 1/4 * 1/8
    0.03125
    >>> noam_lr(4, d_model=16, warmup_steps=4)      # the peak: 16^-0.5 * 4^-0.5 = 1/4 * 1/2
    0.125
    """
    step = require_int("noam_lr", "step", step, low=1, why=" (steps count from 1)")
    d_model, warmup_steps, factor = _check_settings("noam_lr", d_model, warmup_steps, factor)
    ### BEGIN SOLUTION A5: lrate = factor * d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5)
    return float(factor) * d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)
    ### END SOLUTION


def _require_optimizer(owner: str, optimizer) -> Optimizer:
    """``optimizer`` if it is an :class:`Optimizer` (a schedule sets the ``lr`` of its parameter groups)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: expected an Optimizer (e.g. optim.Adam(model.parameters())), got "
                        f"{type(optimizer).__name__}")
    return optimizer


class LRScheduler:
    r"""Base of the schedules: sets each parameter group's ``lr`` to :meth:`lr_at` the current step.

    For group :math:`k` at step :math:`t`: :math:`lr_k \leftarrow \text{lr\_at}(t)_k`, with :math:`t = 1`
    once the schedule is made and :math:`t + 1` after each :meth:`step`. A subclass writes :meth:`lr_at`
    (not torch's ``get_lr``, which reads ``self.last_epoch``: here the step is the argument). Its rates are checked
    before any is set: one finite number >= 0 per parameter group (a lone number for an optimizer of one group),
    else an error naming the schedule and the step.

    **Saving a schedule.** :meth:`state_dict` holds ``step_num`` and the attributes named in the class attribute
    ``saved_settings`` (plain numbers, or lists of them); :meth:`load_state_dict` sets those attributes to the saved
    values, which replace the object's (as :class:`WarmupSchedule` and :class:`LambdaLR` do, and torch's
    ``load_state_dict``: a checkpoint resumes the schedule it was saved with, whatever this one was made with), then
    sets the rate of the saved step. An attribute left out of ``saved_settings`` is not saved: the loaded schedule
    keeps its own. A state with other keys than these is refused.

    Parameters
    ----------
    optimizer : Optimizer
        Whose groups get the rate; the rate of step 1 is set at once.
    last_epoch : int
        torch's, which its subclasses pass on: -1 only, the start (a schedule resumes from its ``state_dict``).

    Attributes
    ----------
    step_num : int
        The step whose rate the groups hold now (1 after construction).
    saved_settings : tuple of str
        Class attribute: the names of the attributes that :meth:`state_dict` saves besides ``step_num``.

    Examples
    --------
    A schedule that halves the rate at every step, :math:`lr_t = 2^{-t}`:

    >>> import minitransformer as mt
    >>> from minitransformer.optim import SGD
    >>> class Halving(LRScheduler):
    ...     def lr_at(self, step):
    ...         return [0.5**step for _ in self.optimizer.param_groups]
    >>> opt = SGD([mt.zeros(2, requires_grad=True)], lr=1.0)
    >>> schedule = Halving(opt)
    >>> schedule.get_last_lr()
    [0.5]
    >>> schedule.step(); schedule.get_last_lr(), schedule.step_num
    ([0.25], 2)

    A schedule with settings of its own names them in ``saved_settings``, so that a checkpoint keeps them:

    >>> class StepDecay(LRScheduler):
    ...     saved_settings = ("peak", "every")
    ...     def __init__(self, optimizer, peak, every):
    ...         self.peak, self.every = peak, every
    ...         super().__init__(optimizer)
    ...     def lr_at(self, step):                   # peak / 2 every `every` steps
    ...         return self.peak * 0.5 ** ((step - 1) // self.every)    # one group: a lone rate will do
    >>> schedule = StepDecay(opt, peak=0.1, every=2)
    >>> schedule.step(); schedule.step()
    >>> saved = schedule.state_dict(); saved
    {'step_num': 3, 'peak': 0.1, 'every': 2}
    >>> other = StepDecay(SGD([mt.zeros(2, requires_grad=True)], lr=1.0), peak=1.0, every=10)
    >>> other.load_state_dict(saved)                 # the saved settings replace peak=1.0, every=10
    >>> other.peak, other.every, other.get_last_lr()
    (0.1, 2, [0.05])
    """

    # the names of the attributes that state_dict saves besides ``step_num`` (plain numbers, or lists of them)
    saved_settings: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        self.optimizer = _require_optimizer(type(self).__name__, optimizer)
        if last_epoch != -1:  # torch's subclasses pass it on: super().__init__(optimizer, last_epoch); -1 is its start
            raise ValueError(f"{type(self).__name__}: last_epoch={last_epoch!r} (torch's way to start a schedule "
                             "part way) is not taken here, where a schedule starts at step 1: to resume one, load its "
                             "state_dict (a checkpoint holds it)")
        self.step_num = 1
        self._optimizer_steps = optimizer._step_count  # when made; None once it has stepped (checked the first time)
        self._apply(1)

    def lr_at(self, step: int) -> list[float]:
        """The learning rate of each parameter group at ``step`` (from 1): a subclass writes it."""
        name = type(self).__name__
        if hasattr(self, "get_lr"):  # written the torch way
            raise NotImplementedError(
                f"{name} overrides torch's get_lr, which this library does not call: override lr_at(self, step) "
                f"instead, returning each parameter group's rate at step (from 1: torch's last_epoch + 1)")
        raise NotImplementedError(
            f"{name}: override lr_at(self, step), returning each parameter group's rate at step (from 1)")

    def _rates(self, step: int) -> list[float]:
        """:meth:`lr_at` of ``step``, checked: one finite rate >= 0 per parameter group, as Python floats."""
        name, groups = type(self).__name__, len(self.optimizer.param_groups)
        owner = f"{name}.lr_at({step})"
        rates = self.lr_at(step)
        if is_real(rates):  # a lone rate: for an optimizer of one group, that group's
            if groups != 1:
                raise ValueError(f"{owner} returned one rate, {rates!r}, for {groups} parameter groups; return a list, "
                                 f"one rate per group")
            rates = [rates]
        elif isinstance(rates, str | bytes | dict) or not hasattr(rates, "__iter__"):
            raise TypeError(f"{owner} returned {type(rates).__name__}; a schedule's lr_at returns a list of rates, "
                            f"one per parameter group ({groups})")
        rates = list(rates)
        if len(rates) != groups:  # zip would leave the other groups' rates as they were, silently
            raise ValueError(f"{owner} returned {len(rates)} rate(s), the optimizer has {groups} parameter group(s); "
                             f"return one rate per group")
        # Python floats: NumPy scalars do not mix with every backend's arrays; a negative or infinite rate refused here,
        # where the schedule sets it, not at the optimizer's next step
        return [require_real(owner, f"the rate of group {k}", lr, low=0.0) for k, lr in enumerate(rates)]

    def _apply(self, step: int) -> None:
        """Set the rates of ``step`` (all checked first: a refused one changes no group) and make it the step."""
        rates = self._rates(step)
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = lr
        self.step_num = step

    def step(self) -> None:
        """Move on to the next step and set its rate (call after ``optimizer.step()``).

        Called before it, as ``backward(); schedule.step(); optimizer.step()``, every update skips a rate of the
        schedule (a warm-up starts a step late). That warns once, as in PyTorch: at the schedule's first step, where
        the optimizer has not stepped since the schedule was made and the gradients of a ``backward()`` wait for it.
        """
        groups = self.optimizer.param_groups
        if (self._optimizer_steps == self.optimizer._step_count
                and any(p.grad is not None for g in groups for p in g["params"])):
            warnings.warn(
                f"{type(self).__name__}.step() was called before optimizer.step(), with the gradients of a backward() "
                f"waiting for it: call optimizer.step() first, then schedule.step(); in this order every update skips "
                f"a rate of the schedule, the first the rate of step {self.step_num}", UserWarning, stacklevel=2)
        self._optimizer_steps = None
        self._apply(self.step_num + 1)

    def get_last_lr(self) -> list[float]:
        """The rate each group holds now."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """``step_num`` and the attributes named in ``saved_settings``, as Python numbers (lists for per-group
        values)."""
        return {"step_num": self.step_num, **{k: getattr(self, k) for k in self.saved_settings}}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict`: the saved settings replace the object's, then the rate of the restored step
        is set. A refused state (other keys, a bad value, a bad rate at that step) changes nothing."""
        name = f"{type(self).__name__}.load_state_dict"
        expected = {"step_num", *self.saved_settings}
        if not isinstance(state_dict, dict) or set(state_dict) != expected:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected the keys {sorted(expected)}, got {got}")
        values = {k: _to_python(v) for k, v in state_dict.items()}
        step_num = require_int(name, "step_num", values.pop("step_num"), low=1, why=" (steps count from 1)")
        before = {k: getattr(self, k) for k in self.saved_settings}
        try:
            self._restore(name, values)
            self._apply(step_num)
        except Exception:
            for k, v in before.items():
                setattr(self, k, v)
            raise

    def extra_repr(self) -> str:
        """The settings shown inside the parentheses of ``repr``: those of ``saved_settings`` (``d_model=512, ...``)."""
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in self.saved_settings)

    def __repr__(self) -> str:
        """``WarmupSchedule(d_model=512, warmup_steps=4000, factor=1.0)  # step_num=1, lr=[...]``: the settings, then
        the step and the rate of each group now (as a module's repr ends in its parameter count)."""
        rates = ", ".join(f"{lr:.4g}" for lr in self.get_last_lr())
        return f"{type(self).__name__}({self.extra_repr()})  # step_num={self.step_num}, lr=[{rates}]"

    def _restore(self, owner: str, values: dict) -> None:
        for k, v in values.items():
            setattr(self, k, list(v) if isinstance(v, tuple) else v)  # lists come back from .npz as tuples


class WarmupSchedule(LRScheduler):
    r"""The paper's schedule (:func:`noam_lr`) applied to every parameter group of ``optimizer``.

    .. math::

        lrate = \text{factor} \cdot d_{model}^{-0.5} \cdot
                \min(\text{step}^{-0.5},\ \text{step} \cdot \text{warmup\_steps}^{-1.5})

    Every group gets the same rate (the paper's rate is absolute, not a multiple of a base rate): groups of
    different rates are refused, with the :class:`LambdaLR` that keeps their ratio.

    Parameters
    ----------
    optimizer : Optimizer
        Whose groups get the rate; the rate of step 1 is set at once.
    d_model : int
        The model width :math:`d_{model}`.
    warmup_steps : int
        Steps of linear warm-up; 4000 in the paper.
    factor : float
        Multiplies the whole rate (1 in the paper; the Annotated Transformer uses 1 or 2).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.optim import Adam
    >>> opt = Adam.paper([mt.zeros(2, requires_grad=True)])
    >>> schedule = WarmupSchedule(opt, d_model=16, warmup_steps=4)
    >>> rates = []
    >>> for _ in range(5):
    ...     rates.append(round(schedule.get_last_lr()[0], 5))
    ...     schedule.step()
    >>> rates            # steps 1..4: 16^-0.5 * t * 4^-1.5 = t/32; step 5: 16^-0.5 * 5^-0.5
    [0.03125, 0.0625, 0.09375, 0.125, 0.1118]
    """

    saved_settings = ("d_model", "warmup_steps", "factor")

    def __init__(self, optimizer: Optimizer, d_model: int, warmup_steps: int = 4000, factor: float = 1.0):
        # checked before anything changes
        self.d_model, self.warmup_steps, self.factor = _check_settings("WarmupSchedule", d_model, warmup_steps,
                                                                       factor)
        rates = [group["lr"] for group in _require_optimizer("WarmupSchedule", optimizer).param_groups]
        if len(set(rates)) > 1:  # the paper's absolute rate would replace each, silently
            raise ValueError(
                f"WarmupSchedule: the parameter groups have different rates, lr {rates}, which this schedule would "
                "replace with one (the paper's rate is absolute); to keep their ratio, scale each by the paper's "
                f"curve: LambdaLR(optimizer, lambda t: noam_lr(t, {self.d_model}, {self.warmup_steps}) / "
                f"noam_lr({self.warmup_steps}, {self.d_model}, {self.warmup_steps}))")
        super().__init__(optimizer)

    def lr_at(self, step: int) -> list[float]:
        """:func:`noam_lr` at ``step``, once per parameter group."""
        lr = noam_lr(step, self.d_model, self.warmup_steps, self.factor)
        return [lr] * len(self.optimizer.param_groups)

    def _restore(self, owner: str, values: dict) -> None:
        try:
            self.d_model, self.warmup_steps, self.factor = _check_settings(
                owner, values["d_model"], values["warmup_steps"], values["factor"])
        except TypeError as e:  # a saved value of the wrong kind is a damaged state, as any other
            raise ValueError(str(e)) from e


class LambdaLR(LRScheduler):
    r"""Any schedule as a function: :math:`lr_t = lr_{base} \cdot \text{lr\_lambda}(t)` for each group.

    ``lr_base`` is each group's ``lr`` when the schedule is made, so groups keep their ratios.
    Unlike PyTorch's ``LambdaLR`` (which starts at 0), ``t`` counts from 1 here, like the paper.
    The paper's schedule, written this way: ``LambdaLR(opt, lambda t: noam_lr(t, 512))`` with ``lr=1``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose groups get the rate; their ``lr`` now is each group's ``lr_base``.
    lr_lambda : callable
        ``step -> multiplier`` (a number >= 0).

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.optim import SGD
    >>> opt = SGD([mt.zeros(2, requires_grad=True)], lr=0.5)
    >>> schedule = LambdaLR(opt, lambda t: 1 / t)      # 0.5, 0.25, ...
    >>> schedule.step(); schedule.get_last_lr()
    [0.25]
    """

    saved_settings = ("base_lrs",)

    def __init__(self, optimizer: Optimizer, lr_lambda):
        _require_optimizer("LambdaLR", optimizer)  # before its param_groups are read
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the step, got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        super().__init__(optimizer)

    def extra_repr(self) -> str:
        """``lr_lambda=`` the function's name (not its address), then the base rates."""
        name = getattr(self.lr_lambda, "__qualname__", type(self.lr_lambda).__name__)
        return f"lr_lambda={name}, {super().extra_repr()}"

    def lr_at(self, step: int) -> list[float]:
        """``lr_base * lr_lambda(step)`` for each parameter group."""
        factor = self.lr_lambda(step)
        factor = require_real("LambdaLR", f"lr_lambda({step})", factor, low=0.0)
        return [base * factor for base in self.base_lrs]

    def _restore(self, owner: str, values: dict) -> None:
        base_lrs = values["base_lrs"]
        base_lrs = list(base_lrs) if isinstance(base_lrs, tuple | list) else [base_lrs]
        if len(base_lrs) != len(self.optimizer.param_groups):
            groups = len(self.optimizer.param_groups)
            raise ValueError(f"{owner}: {len(base_lrs)} base rates saved, the optimizer has {groups} groups")
        self.base_lrs = [require_real(owner, "base lr", lr, low=0.0) for lr in base_lrs]
