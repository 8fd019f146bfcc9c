"""The ``Optimizer`` base: parameter groups, ``zero_grad``, ``step`` and a state dict of plain data.

An optimizer holds ``param_groups``, a list of dicts, each with its ``"params"`` (Tensors) and its
own hyperparameters (``"lr"``, ``"weight_decay"``, ...), as in PyTorch. Per-parameter state (the
momentum buffer, Adam's moments) lives in ``state[p]`` as arrays of the parameter's backend, so on
a GPU it stays on the GPU. A subclass writes one method, :meth:`Optimizer.update`: the formula of
one step for one parameter, on arrays.
"""

from __future__ import annotations

import inspect
import itertools
import numbers
import types
import warnings

import numpy as np  # only for the host side of state_dict / load_state_dict: no arithmetic here

from .._arguments import is_integer, require_int, require_real
from ..autograd import Tensor, enable_grad, no_grad
from ..autograd._torch_names import FLOAT16_WHY
from ..autograd.engine import check_gradient_fits, zero_grads
from ..nn import Module

__all__ = ["Optimizer", "listed_parameters"]


def listed_parameters(owner: str, params, takes: str) -> list:
    """``params``, what ``owner`` (an optimizer, ``clip_grad_norm_``) was given, as a non-empty list.

    Refused, naming ``owner`` and saying what to pass: a module itself (Python's words would be "'Linear' object is
    not iterable"), something that is not iterable (``takes`` says what is), a generator used up before
    (``model.parameters()`` given to an optimizer first, then here: it gives nothing more) and an empty list.
    """
    if isinstance(params, Module):
        raise TypeError(f"{owner}: params should be {takes}, got the module {type(params).__name__} itself; pass its "
                        f"parameters: {owner}(model.parameters(), ...)")
    used_up = isinstance(params, types.GeneratorType) and inspect.getgeneratorstate(params) == inspect.GEN_CLOSED
    try:
        listed = list(params)
    except TypeError:  # not iterable: say what was given, not Python's "'float' object is not iterable"
        raise TypeError(f"{owner}: params should be {takes}, got {type(params).__name__}") from None
    if used_up:  # (a fresh generator of a model without parameters is the next case)
        raise ValueError(
            f"{owner}: params is a generator that is used up: model.parameters() can be iterated once, and something "
            "went through it before (an optimizer given the same generator?); call model.parameters() again here, "
            "or keep a list: params = list(model.parameters())"
        )
    if not listed:
        raise ValueError(f"{owner}: got an empty parameter list (did the model create no parameters?)")
    return listed


class Optimizer:
    r"""Base of every optimizer: keeps the parameters and their state, applies :meth:`update` to each.

    A step is :math:`\theta \leftarrow \text{update}(\theta, g)` for every parameter :math:`\theta`
    with a gradient :math:`g`, elementwise on arrays of the parameter's shape. Subclasses set
    ``defaults``, check hyperparameters in :meth:`check_group` and write the update in :meth:`update`.

    A subclass whose update treats every entry on its own (Adam, SGD) sets ``elementwise = True``;
    then :meth:`step` lays the parameters of one backend, dtype and state end to end,
    :math:`\theta = [\theta_1; \ldots; \theta_n]`, and calls :meth:`update` once for all of them: the same
    numbers, one array operation per term of the formula instead of one per term and parameter
    (on a GPU, a few dozen kernel launches a step instead of thousands; PyTorch's ``foreach`` path).

    Parameters
    ----------
    params : iterable of Tensor, or iterable of dict
        The tensors to optimise (each with ``requires_grad=True``), or parameter groups: dicts with
        ``"params"`` and any hyperparameters that differ from ``defaults`` for that group.
    defaults : dict
        The hyperparameters every group gets unless it sets its own.

    Examples
    --------
    A subclass writes only the formula of one step; here plain gradient descent:

    >>> import minitransformer as mt
    >>> class Descent(Optimizer):
    ...     def __init__(self, params, lr=0.1):
    ...         super().__init__(params, {"lr": lr})
    ...     def update(self, xp, theta, g, group, state):
    ...         return theta - group["lr"] * g
    >>> w = mt.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Descent([w])
    >>> (w * w).sum().backward()          # g = 2 w
    >>> opt.step()
    >>> w.numpy()                         # w - 0.1 * 2 w
    array([ 0.8, -1.6], dtype=float32)
    >>> opt.zero_grad(); w.grad is None
    True
    """

    #: True when :meth:`update` treats every entry on its own, so that each entry of the new ``theta`` and of
    #: the state's arrays depends only on the same entry of ``theta``, ``g`` and the state (Adam, SGD).
    #: Then :meth:`~minitransformer.optim.Optimizer.step` applies it once to all the parameters laid end to end
    #: (see ``_update_end_to_end``).
    elementwise = False

    #: The entries of one parameter's state that :meth:`~minitransformer.optim.Optimizer.update` writes, by name, each
    #: with its kind, which is ``"count"`` (an integer >= 0: Adam's ``step``), ``"array"`` (a finite float array of the
    #: parameter's shape: a momentum, Adam's ``m``) or ``"array >= 0"`` (the same, with no negative entry: Adam's
    #: average of squares ``v``). :meth:`~minitransformer.optim.Optimizer.load_state_dict` takes a parameter's saved
    #: state only if it holds exactly these (or nothing: a parameter not updated yet), where the class that says them
    #: gives the ``update`` that runs. None (a class that does not say): any entries, float arrays of the parameter's
    #: shape or numbers.
    state_entries: dict[str, str] | None = None

    #: How many times :meth:`step` has run (a schedule stepped while it has not moved since the schedule's last step
    #: warns, ``LRScheduler.step``)
    _step_count: int = 0
    #: Why the update breaks in float16 (Adam's eps rounds to 0 there), refused at ``add_param_group``; None where
    #: the step is its formula rounded to float16 (SGD's ``theta - lr * g``)
    float16_breaks: str | None = None

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or of dicts (parameter groups), got one Tensor "
                f"of shape {params.shape}; wrap it in a list: {name}([p], ...)"
            )
        if isinstance(params, dict):
            raise TypeError(f"{name}: params should be an iterable of Tensors or of dicts, got a dict; use [group]")
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}  # keyed by the parameter itself (Tensors hash by identity)
        groups = listed_parameters(name, params, "an iterable of Tensors or of dicts (parameter groups)")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            settings = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {settings}")
        return "\n".join(lines) + "\n)"

    # ------------------------------------------------------------ groups
    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (the missing ones from ``defaults``)."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group is a dict with a 'params' entry, got {type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: parameter group {len(self.param_groups)} has no parameters")
        seen = {id(p): f"parameter {j} of group {k}" for k, g in enumerate(self.param_groups)
                for j, p in enumerate(g["params"])}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) does not require grad; create it with "
                    f"requires_grad=True, or leave frozen parameters out of the optimizer"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) is the result of an operation, not a leaf; "
                    f"optimise the tensor it was computed from"
                )
            if self.float16_breaks and p.dtype_name == "float16":  # NaN and inf at the first step, else
                raise TypeError(
                    f"{name}: parameter {i} (shape {p.shape}) of group {len(self.param_groups)} is float16, which is "
                    f"not supported (as Module.to refuses float16: {FLOAT16_WHY}): {self.float16_breaks}; make the "
                    "parameters float32 (the default) or float64"
                )
            if id(p) in seen:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) of group {len(self.param_groups)} is listed already, "
                    f"as {seen[id(p)]}; list each parameter once"
                )
            seen[id(p)] = f"parameter {i} of group {len(self.param_groups)}"
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(
                f"{name}: unknown hyperparameter(s) {sorted(unknown)} in a parameter group; "
                f"{name} takes {sorted(self.defaults)}"
            )
        full = {**self.defaults, **group, "params": params}
        self.check_group(full)
        self.param_groups.append(full)

    def check_group(self, group: dict) -> None:
        """Raise a clear error for a bad hyperparameter (before any arithmetic). Subclasses extend it."""
        group["lr"] = require_real(type(self).__name__, "lr", group["lr"], low=0.0)

    # ------------------------------------------------------------ the step
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``p.grad = None``); the next ``backward()`` starts afresh.

        With ``set_to_none=False`` a gradient becomes zeros of its shape instead, as in PyTorch (and as
        ``Module.zero_grad``); a parameter without one keeps None.
        """
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient, by :meth:`update`; parameters without one are skipped.

        Each parameter gets a new array on NumPy and array-api-strict; with CUDA kernels (CuPy), Adam writes the
        parameters' arrays in place, as PyTorch's optimizers do: an array taken from a parameter before the step
        (``p.data``, ``p.detach()``) shows the new values after it there. Keep a copy
        (``mt.tensor(p.numpy())``, or the backend's ``xp.asarray(p.data, copy=True)``) to compare before and after;
        and run ``backward()`` of a graph before the step that updates the parameters it read, as PyTorch requires.

        Parameters
        ----------
        closure : callable, optional
            Recomputes the loss (calls ``backward()``) and returns it, as in PyTorch.

        Returns
        -------
        Tensor or None
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for i, group in enumerate(self.param_groups):  # a few Python numbers each: set by hand since, or by a schedule
            self._recheck_group(i, group)
        laid_out: dict[tuple, dict] = {}
        with no_grad():  # an update is not part of any graph
            for group in self.param_groups:
                ready = [p for p in group["params"] if p.grad is not None]
                for p in ready:
                    self._check_gradient(p)
                    _state_in_dtype(p, self.state.get(p))
                if not self.elementwise:  # the formula on each parameter's own array (a kernel would write it)
                    for p in ready:
                        p.data = self.update(p.backend.xp, p.data, p.grad.data, group, self.state.setdefault(p, {}))
                    continue
                batches: dict[tuple, list[Tensor]] = {}
                for p in ready:
                    batches.setdefault(_batch_key(p, self.state.setdefault(p, {})), []).append(p)
                for batch in batches.values():
                    self._update_end_to_end(batch, group, laid_out)
        self._laid_out = laid_out  # only this step's long arrays are kept
        self._step_count += 1
        return loss

    def _recheck_group(self, i: int, group: dict) -> None:
        """:meth:`check_group` again at each step: ``param_groups`` are plain dicts that anyone may change after
        :meth:`add_param_group` checked them (``opt.param_groups[0]["lr"] = -5`` would ascend the gradient)."""
        try:
            self.check_group(group)
        except (TypeError, ValueError) as e:
            name = type(self).__name__
            problem = str(e).removeprefix(f"{name}: ")
            raise type(e)(f"{name}.step: param_groups[{i}] was changed since it was added: {problem}") from None

    def _check_gradient(self, p: Tensor) -> None:
        """Refuse a gradient that does not fit its parameter, before any update: ``.grad`` is checked when set, but
        the parameter's ``data`` may have been replaced since by an array of another shape or dtype."""
        check_gradient_fits(f"{type(self).__name__}.step", p, p.grad.data)

    def _update_end_to_end(self, params: list[Tensor], group: dict, laid_out: dict) -> None:
        r"""One :meth:`update` for all ``params`` laid end to end: :math:`\theta = [\theta_1; \ldots; \theta_n]`.

        For an elementwise update this is the same arithmetic as ``n`` separate updates, in one array
        operation per term instead of ``n`` (PyTorch's multi-tensor "foreach" path does the same). On a
        GPU, where each operation costs a kernel launch, that is the difference between a few dozen
        launches per step and a few thousand. The parameters and their state arrays become views of
        the long results, of their own shapes; while they still are at the next step (nothing assigned
        a new array), the long arrays are used again instead of being copied together anew.

        The long arrays are the optimizer's own (copies, made at the first step, of even a lone parameter),
        so an update may write them in place, as the CUDA kernel of :meth:`update_with_kernels` does: then
        the views stay valid too, and a step makes none.
        """
        backend = params[0].backend
        xp = backend.xp
        batch = tuple(id(p) for p in params)
        before = getattr(self, "_laid_out", {}).get(batch, {})  # name -> (long array, its views last step)

        def end_to_end(name, arrays):
            long, views = before.get(name, (None, ()))
            if long is not None and len(views) == len(arrays) and all(a is v for a, v in zip(arrays, views)):
                return long  # still the views of last step's long array: no copy
            return xp.concat(arrays, axis=None)  # axis None: each flattened first

        states = [self.state[p] for p in params]
        state = {k: end_to_end(k, [s[k] for s in states]) if hasattr(v, "shape") else v for k, v in states[0].items()}
        grads = [p.grad.data for p in params]  # read only: one alone needs no copy
        g = xp.concat(grads, axis=None) if len(grads) > 1 else xp.reshape(grads[0], (-1,))
        theta = self._update(backend, end_to_end(None, [p.data for p in params]), g, group, state)  # None: theta
        n = sum(p.size for p in params)
        for k, v in state.items():
            if hasattr(v, "shape") and tuple(v.shape) != (n,):
                raise ValueError(
                    f"{type(self).__name__}.update: state {k!r} has shape {tuple(v.shape)} for {n} parameter "
                    f"entries laid end to end; an update that is not elementwise must set elementwise = False"
                )
        long_arrays = {None: theta, **{k: v for k, v in state.items() if hasattr(v, "shape")}}
        ends = list(itertools.accumulate(p.size for p in params))  # where each parameter ends in a long array
        views = {}
        for name, long in long_arrays.items():
            old_long, old_views = before.get(name, (None, ()))
            if long is old_long:  # updated in place (the kernels' moments): last step's views show it
                views[name] = old_views
                continue
            # a slice is already the shape of a vector parameter (a bias, a gain): only matrices are reshaped
            views[name] = [long[e - p.size:e] if p.ndim == 1 else xp.reshape(long[e - p.size:e], p.shape)
                           for p, e in zip(params, ends)]
        for i, (p, s) in enumerate(zip(params, states)):
            p.data = views[None][i]
            for k, v in state.items():
                s[k] = views[k][i] if k in views else v
        laid_out[batch] = {name: (long, views[name]) for name, long in long_arrays.items()}

    def _update(self, backend, theta, g, group: dict, state: dict):
        """:meth:`update`, or :meth:`update_with_kernels` where the backend has CUDA kernels that take ``theta``
        (``theta`` is the optimizer's own long array, which the kernel may write in place)."""
        kernels = backend.kernels
        if kernels is not None and self._kernels_do_update() and kernels.fits(theta):
            return self.update_with_kernels(kernels, theta, g, group, state)
        return self.update(backend.xp, theta, g, group, state)

    def _kernels_do_update(self) -> bool:
        """Whether :meth:`update_with_kernels` computes this optimizer's :meth:`update`: it is given, and by the
        class whose ``update`` this is (a subclass that changes ``update`` gets its own formula, on every backend)."""
        return self.update_with_kernels is not None and self._given_with_update("update_with_kernels")

    def _given_with_update(self, name: str) -> bool:
        """Whether the class that gives the attribute ``name`` also gives the :meth:`update` this optimizer runs: a
        subclass that changes ``update`` changes what goes with it (its kernels, its state's entries)."""
        owner = next(c for c in type(self).__mro__ if name in vars(c))
        return vars(owner).get("update") is type(self).update

    #: None, or the step as a CUDA kernel that a subclass gives,
    #: ``update_with_kernels(kernels, theta, g, group, state)``:
    #: :meth:`update`'s contract with a :class:`~minitransformer.kernels.CudaKernels` for ``xp`` (used on a GPU),
    #: except that it may write ``theta`` in place (always the optimizer's own long array: see ``_update_end_to_end``)
    update_with_kernels = None

    def update(self, xp, theta, g, group: dict, state: dict):
        """One step for one parameter: the new value of ``theta`` from its gradient ``g``.

        ``theta`` and ``g`` are arrays of the parameter's backend and ``xp`` its array namespace;
        ``group`` holds the hyperparameters; ``state`` is this parameter's dict, empty before its first
        step, kept between steps (arrays in it stay on the parameter's backend). Return a new array:
        the old one may be shared (the caller assigns ``p.data``).
        """
        raise NotImplementedError

    # ------------------------------------------------------------ saving and loading
    def state_dict(self) -> dict:
        """The optimizer's state as plain data: Python numbers and NumPy arrays (no pickle needed).

        Laid out as in PyTorch: ``{"state": {i: {name: value}}, "param_groups": [{..., "params": [i, ...]}]}``
        where ``i`` numbers the parameters in the order of the groups.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {k: _to_host(p, v) for k, v in self.state[p].items()}
        if state:  # a parameter without a gradient so far has no state: {} says so (a state lists all or none)
            state = {i: state.get(i, {}) for i in range(len(index))}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict`: hyperparameters per group, and the state moved to the parameters' backend.

        Accepts what a round trip through ``.npz`` gives back too: 0-d arrays for numbers, arrays for
        lists and tuples, string keys for the parameter numbers.

        Everything is checked before anything changes, and a state this optimizer could not have written is refused
        with an error naming the parameter and what is wrong: the state of every parameter (``{}`` for one not
        updated yet) or of none (a fresh optimizer's), each with exactly the entries of :attr:`state_entries`, a
        step count an integer >= 0 and the arrays finite floats of their parameter's shape.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups', got {keys}")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: the saved state has {len(saved_groups)} parameter group(s), this optimizer has "
                f"{len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            ids = [_param_number(name, f"group {i} of the saved state: its parameter", k)
                   for k in _as_list(saved.get("params", []))]
            again = next((k for k in ids if k in by_index or ids.count(k) > 1), None)
            if again is not None:
                raise ValueError(f"{name}: group {i} of the saved state lists parameter {again} twice")
            if len(ids) != len(group["params"]):
                raise ValueError(
                    f"{name}: group {i} of the saved state has {len(ids)} parameters, this optimizer's has "
                    f"{len(group['params'])}"
                )
            settings = {k: _to_python(v) for k, v in saved.items() if k != "params"}
            if set(settings) != set(self.defaults):
                raise ValueError(
                    f"{name}: group {i} holds hyperparameters {sorted(settings)}, {type(self).__name__} has "
                    f"{sorted(self.defaults)}; is this the state of another kind of optimizer?"
                )
            new = {**settings, "params": group["params"]}
            self.check_group(new)
            new_groups.append(new)
            by_index.update(zip(ids, group["params"]))
        new_state = self._checked_state(state_dict["state"], by_index)
        # only now, with everything checked, replace the optimizer's own
        self.param_groups[:] = new_groups
        self.state = new_state

    def _checked_state(self, saved, by_index: dict[int, Tensor]) -> dict[Tensor, dict]:
        """The saved ``"state"`` (parameter number -> its entries) as the optimizer's own (parameter -> entries on its
        backend); an error naming the parameter and the entry for anything this optimizer would not have written."""
        name, cls = f"{type(self).__name__}.load_state_dict", type(self).__name__
        if not isinstance(saved, dict):
            raise TypeError(f"{name}: the saved 'state' must be a dict of parameter number -> its state, got "
                            f"{type(saved).__name__}")
        numbered = {}
        for key, entries in saved.items():
            number = _param_number(name, "the saved state's key", key)
            if number not in by_index:
                raise ValueError(f"{name}: the saved state names parameter {key}, which no group holds")
            if not isinstance(entries, dict):
                raise TypeError(f"{name}: the state of parameter {key} must be a dict of its entries, got "
                                f"{type(entries).__name__}")
            numbered[number] = (key, entries)
        if numbered and len(numbered) != len(by_index):  # one left out would start afresh, the others go on
            lacking = [i for i in sorted(by_index) if i not in numbered]
            listed = ", ".join(f"{i} (shape {by_index[i].shape})" for i in lacking[:5])
            listed += ", ..." if len(lacking) > 5 else ""
            said = (f"{name}: the saved state holds an entry for {len(numbered)} of the {len(by_index)} parameters: "
                    f"none for parameter{'s' if len(lacking) > 1 else ''} {listed}")
            if any(not entries for _, entries in numbered.values()):  # written with {} for those not updated yet
                raise ValueError(f"{said}; a state lists every parameter ({{}} for one not updated yet) or none (a "
                                 "fresh optimizer's)")
            # written before the {}s: a parameter without a gradient then had no entry, and starts afresh as it did
            warnings.warn(f"{said}: they start with a fresh state (right for parameters not updated before the save, "
                          "as a state written before this version leaves out; one that was updated now differs from "
                          "the run that saved it)", stacklevel=3)
        wanted = self.state_entries if self._given_with_update("state_entries") else None  # (else: not said)
        new_state: dict[Tensor, dict] = {}
        for number, (key, entries) in numbered.items():
            p = by_index[number]
            if wanted is None:
                new_state[p] = {k: _from_host(name, key, k, v, p) for k, v in entries.items()}
                continue
            if entries:
                _check_entry_names(name, cls, key, entries, wanted)
            new_state[p] = {k: _checked_entry(name, key, k, v, wanted[k], p) for k, v in entries.items()}
        return new_state


# ------------------------------------------------------------------ helpers
def _param_number(owner: str, where: str, key) -> int:
    """A parameter's number as a state dict gives it: an integer (a NumPy one, a 0-d array after ``.npz``) or its
    decimal string (a JSON key); else a ValueError naming it (``int()`` would take 1.5 as 1, "x" in its own words)."""
    key = key.item() if isinstance(key, np.ndarray) and key.ndim == 0 else key
    if is_integer(key) and key >= 0:
        return int(key)
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    raise ValueError(f"{owner}: {where} {key!r} is not a parameter number (an integer >= 0)")


def _check_entry_names(owner: str, cls: str, key, entries: dict, wanted: dict) -> None:
    """Refuse a parameter's state whose entries are not those ``cls`` writes (``wanted``): one lacking would fail
    at the next step (a KeyError), one more would be kept and never read."""
    names = ", ".join(map(repr, wanted))
    extra = [k for k in entries if k not in wanted]
    if extra:
        raise ValueError(f"{owner}: state of parameter {key} holds {', '.join(map(repr, extra))}, which {cls} does "
                         f"not write; {cls}'s state of a parameter holds {names}")
    lacking = [k for k in wanted if k not in entries]
    if lacking:
        raise ValueError(f"{owner}: state of parameter {key} lacks {', '.join(map(repr, lacking))}; {cls}'s state "
                         f"of a parameter holds {names} (or nothing, for a parameter not updated yet)")


def _checked_entry(owner: str, key, entry: str, value, kind: str, p: Tensor):
    """A saved state entry of ``kind`` (see :attr:`Optimizer.state_entries`) for parameter ``p``, checked: a count as
    a Python int, an array on ``p``'s backend in ``p``'s dtype."""
    what = f"state {entry!r} of parameter {key}"
    if kind == "count":
        return require_int(owner, what, _to_python(value) if isinstance(value, np.ndarray | np.generic) else value,
                           low=0, why=" (the steps taken)")
    if not isinstance(value, np.ndarray | np.generic) or value.dtype.kind != "f":
        got = f"an array of {value.dtype}" if hasattr(value, "dtype") else f"a {type(value).__name__}"
        raise TypeError(f"{owner}: {what} must be a float array of the parameter's shape {p.shape}, got {got}")
    if tuple(value.shape) != p.shape:
        raise ValueError(f"{owner}: {what} has shape {tuple(value.shape)}, the parameter has shape {p.shape}")
    bad = ~np.isfinite(value) | ((value < 0) if kind == "array >= 0" else False)
    if bad.any():
        first = np.asarray(value)[bad].flat[0].item()
        why = "; it is an average of squares, >= 0" if np.isfinite(first) else "; a state holds finite numbers"
        raise ValueError(f"{owner}: {what} holds {first:g} (at {bad.sum()} of its {bad.size} entries){why}")
    return p.backend.asarray(np.array(value, dtype=p.dtype_name, copy=True))


def _state_in_dtype(p: Tensor, state: dict | None) -> None:
    """``p``'s state arrays (moments, momentum) made of ``p``'s dtype where ``model.to(dtype)`` changed it since they
    were: Adam's moments stayed float32 for a float64 parameter, and SGD's float64 momentum made a parameter moved
    back to float32 float64 again at its next step."""
    for k, v in (state or {}).items():
        if hasattr(v, "dtype") and v.dtype != p._data.dtype and p.backend.xp.isdtype(v.dtype, "real floating"):
            state[k] = p.backend.xp.astype(v, p._data.dtype)


def _batch_key(p: Tensor, state: dict) -> tuple:
    """Parameters with equal keys share one update: same backend and dtype, the same state entries
    (arrays, and equal numbers such as the step count). A state that cannot be compared is alone."""
    entries = tuple((k, "array") if hasattr(v, "shape") else (k, v) for k, v in state.items())
    try:
        hash(entries)
    except TypeError:
        return (id(p),)
    return (p.backend, p.dtype, entries)


def _to_host(p: Tensor, value):
    """A state entry as plain data: an array becomes a NumPy copy, a number stays a number."""
    if hasattr(value, "shape"):
        return np.array(p.backend.to_host(value), copy=True)
    return value


def _from_host(owner: str, key, entry: str, value, p: Tensor):
    """A saved state entry for parameter ``p``: float arrays go to ``p``'s backend and dtype; the rest
    (step counts: Python ints, or 0-d integer arrays after ``.npz``) become Python numbers."""
    if isinstance(value, np.ndarray | np.generic) and np.issubdtype(value.dtype, np.floating):
        if tuple(value.shape) != p.shape:
            raise ValueError(
                f"{owner}: state {entry!r} of parameter {key} has shape {tuple(value.shape)}, the parameter has "
                f"shape {p.shape}"
            )
        return p.backend.asarray(np.array(value, dtype=p.dtype_name, copy=True))
    value = _to_python(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise TypeError(
            f"{owner}: state {entry!r} of parameter {key} is {value!r}; expected a NumPy float array or a number"
        )
    return value


def _to_python(value):
    """0-d arrays and NumPy scalars as Python numbers, 1-d arrays and lists as tuples (how .npz returns them)."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(v.item() for v in value.reshape(-1))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return tuple(_to_python(v) for v in value)
    return value


def _as_list(value) -> list:
    if isinstance(value, np.ndarray):
        return value.reshape(-1).tolist()
    return list(value)
