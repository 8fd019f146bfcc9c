"""``Parameter`` and ``Module``: the bookkeeping every layer shares, in PyTorch's habits.

A :class:`Module` is a callable object (``layer(x)`` runs ``layer.forward(x)``) that owns
:class:`Parameter` tensors and other modules. Assigning one as an attribute registers it, so
``parameters()`` finds every weight of a whole Transformer, with dotted names
(``"layers.0.self_attn.W_Q.weight"``) that ``state_dict()`` / ``load_state_dict()`` save and restore.

>>> import minitransformer as mt
>>> from minitransformer import nn
>>> class Affine(nn.Module):
...     def __init__(self, d):
...         super().__init__()
...         self.scale = nn.Parameter(mt.ones(d))
...         self.shift = nn.Parameter(mt.zeros(d))
...     def forward(self, x):
...         return x * self.scale + self.shift
>>> f = Affine(3)
>>> [name for name, _ in f.named_parameters()]
['scale', 'shift']
>>> f(mt.tensor([1.0, 2.0, 3.0])).numpy()
array([1., 2., 3.], dtype=float32)
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import threading
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np  # only for host copies in state_dict(); arithmetic goes through the backend

from .. import backend as _backend
from ..autograd import Tensor, no_grad
from ..autograd._torch_names import FLOAT16_WHY, no_attribute
from ..autograd.engine import zero_grads

__all__ = ["Parameter", "Module", "ModuleList", "ModuleDict", "Sequential", "StateDictError", "LoadResult",
           "evaluating"]


class Parameter(Tensor):
    """A tensor that is a weight of a model: floating point, ``requires_grad=True``, found by ``parameters()``.

    Parameters
    ----------
    data : array_like or Tensor
        The initial values (a Tensor's values are taken, not its graph).
    dtype : str, optional
        ``"float32"`` (the default for Python numbers) or ``"float64"``; arrays keep their float dtype.
    backend : str, optional
        The backend to hold it on; the current backend by default.
    name : str, optional
        A label, shown by the drawings of the computation graph.

    Examples
    --------
    >>> import minitransformer as mt
    >>> w = Parameter(mt.zeros(2, 3))
    >>> w.requires_grad, w.shape, w.dtype_name
    (True, (2, 3), 'float32')
    """

    __slots__ = ()

    def __init__(self, data, dtype=None, backend=None, name: str | None = None):
        if isinstance(data, Tensor):
            backend = data.backend if backend is None else backend
            data = data.data
        super().__init__(data, dtype=dtype, requires_grad=False, backend=backend, name=name)
        if not self.backend.xp.isdtype(self.dtype, "real floating"):
            raise TypeError(
                f"Parameter: a weight must be floating point, got {self.dtype_name} with shape {self.shape}"
            )
        self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class StateDictError(RuntimeError):
    """A state dict that does not fit the model: missing keys, unexpected keys or wrong shapes.

    Raised by :meth:`Module.load_state_dict` before anything is loaded; the message lists every problem.

    Examples
    --------
    >>> import numpy as np
    >>> from minitransformer import nn
    >>> state = {"weight": np.zeros((3, 2)), "bias": np.zeros(3)}   # a weight of the wrong shape: torch's layout
    >>> try:
    ...     nn.Linear(2, 3).load_state_dict(state)
    ... except nn.StateDictError as error:
    ...     print(error)
    load_state_dict: the state does not fit Linear; nothing was loaded.
      wrong shapes or values:
        'weight': the model expects shape (2, 3), the state has (3, 2) (transposed: torch's Linear keeps its weight
        as (d_out, d_in); nn.convert.from_torch_state_dict loads a state dict of torch's)
    """


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` left out: model keys not in the state, state keys not in the model.

    Examples
    --------
    >>> import numpy as np
    >>> from minitransformer import nn
    >>> nn.Linear(2, 3).load_state_dict({"weight": np.zeros((2, 3)), "extra": np.zeros(1)}, strict=False)
    LoadResult(missing_keys=['bias'], unexpected_keys=['extra'])
    """

    missing_keys: list[str]
    unexpected_keys: list[str]


#: The dtypes ``Module.to`` makes a model's parameters (float16 is refused, for ``FLOAT16_WHY``)
MODULE_DTYPES = ("float32", "float64")


def _parse_target(target):
    """``("backend", Backend)`` for a backend name or Backend, ``("dtype", name)`` for a dtype name."""
    if isinstance(target, _backend.Backend):
        return "backend", target
    if isinstance(target, str) and target.lower() in _backend._ALIASES:
        return "backend", _backend.get(target)
    name = _backend.dtype_name(target)
    if name == "float16":  # no loss scaling, no wider accumulation: its largest number, 65504, is soon passed
        raise TypeError(f"Module.to: float16 is not supported: {FLOAT16_WHY}; use 'float32' (the default) or 'float64'")
    if name not in MODULE_DTYPES:
        raise TypeError(
            f"Module.to: {target!r} is neither a backend ('numpy', 'cupy', 'array_api_strict') nor a floating "
            "dtype ('float32', 'float64'); parameters stay floating point"
        )
    return "dtype", name


#: The plain containers that a module or weight would hide in, unregistered (``Module._refuse_unregistered``).
_CONTAINERS = (list, tuple, set, frozenset, dict)
#: The attributes :meth:`Module.__init__` gives every module (its own state), each with what makes its start value;
#: no parameter or sub-module may take their names.
_STATE = {"_parameters": dict, "_buffers": dict, "_non_persistent": set, "_modules": dict, "training": lambda: True}
#: the type of ``self`` where a method returns it (``lin.eval()`` is a Linear; typing.Self needs Python 3.11)
M = TypeVar("M", bound="Module")


def module_classes(module: Module) -> dict[str, str]:
    """The class name of each module below ``module``, by dotted path, in the order of :meth:`Module.named_modules`
    (the module itself, path ``""``, left out): what a checkpoint records of the model's structure, which its
    ``config`` alone does not say (a sublayer swapped after construction).

    >>> from minitransformer import nn
    >>> module_classes(nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.1)))
    {'0': 'Linear', '1': 'Dropout'}
    """
    return {path: type(m).__name__ for path, m in module.named_modules() if path}


def _first_class_difference(saved: Mapping, module: Module) -> tuple[str, str, str] | None:
    """``(path, saved class, this model's class)`` of the first module path (in the saved order, then this model's)
    whose class differs between ``saved`` (:func:`module_classes` of the model a state was taken from) and
    ``module``, "absent" for a path one side lacks; None where they agree."""
    own = module_classes(module)
    for path in [*saved, *(p for p in own if p not in saved)]:
        theirs, ours = saved.get(path, "absent"), own.get(path, "absent")
        if theirs != ours:
            return path, theirs, ours
    return None


class ClassedState(dict):
    """A state dict (name -> array) that also records the class of each module of the model it was taken from
    (``module_classes``: dotted path -> class name, :func:`module_classes`), as a checkpoint's ``model_state`` does.

    :meth:`Module.load_state_dict` (with ``strict=True``) refuses it for a model whose modules differ, naming the first
    path that differs and both classes: weights of the same names and shapes would otherwise load into a model that
    computes something else (the sinusoidal positional encoding rebuilt where the saved model had another, a
    parameter-free module of one's own). Otherwise a plain ``dict``.
    """

    def __init__(self, state=(), module_classes: Mapping[str, str] | None = None):
        super().__init__(state)
        self.module_classes = None if module_classes is None else dict(module_classes)


def _check_name(cls: type, kind: str, name) -> None:
    """Refuse a name that ``state_dict()`` could not tell apart (empty, or with the "." that joins a path) or that
    is taken: the module's own state, or a method or property of ``cls`` (``keys``, ``forward``, ``to``...), which
    the registered value would break or be hidden behind."""
    owner = cls.__name__
    if not isinstance(name, str):
        raise TypeError(f"{owner}: a {kind} name must be a string, got {type(name).__name__}")
    # a KeyError, as in PyTorch; double quotes only, since a KeyError shows its message in single ones
    if not name:
        raise KeyError(f'{owner}: a {kind} name cannot be empty ""')
    if "." in name:
        raise KeyError(
            f'{owner}: a {kind} name cannot contain ".", got "{name}" (a dot joins the names of a path: "a.weight" '
            "is parameter weight of sub-module a)"
        )
    taken = "the state every module keeps" if name in _STATE else _what_is(cls, name)
    if taken:
        raise KeyError(f'{owner}: attribute "{name}" already exists ({taken}); give the {kind} another name')


def _what_is(cls: type, name: str) -> str:
    """What the class attribute ``name`` of ``cls`` is, for the message of a name that clashes with it ("a method of
    Owner"), or "" if ``cls`` has none. Any class attribute clashes: ``self.name`` would still read it, not the value
    registered (a class-level default ``act = nn.ReLU()`` would hide ``self.act = nn.GELU()``, in torch too)."""
    owner = cls.__name__
    if not hasattr(cls, name):
        return ""
    attribute = inspect.getattr_static(cls, name)
    if isinstance(attribute, property):
        return f"a property of {owner}"
    if inspect.isroutine(attribute):
        return f"a method of {owner}"
    return f"a class attribute of {owner}, which self.{name} would still read, not the value registered"


def _is_weight(value) -> bool:
    """Whether ``value`` is trained: a Parameter, or a leaf tensor that requires grad."""
    return isinstance(value, Parameter) or isinstance(value, Tensor) and value.requires_grad and value.is_leaf


def _refuse_buffer_with_grad(where: str, tensor: Tensor | None) -> None:
    """Refuse a buffer (state, not a weight: no gradient, not trained) that requires grad."""
    if tensor is not None and tensor.requires_grad:
        raise TypeError(
            f"{where}: a buffer gets no gradient and is not trained, but this Tensor requires grad "
            f"({tensor.dtype_name}, shape {tensor.shape}); register tensor.detach(), or make it a weight, "
            "nn.Parameter(...)"
        )


def _host_copy(value) -> np.ndarray:
    """Any array-like (Tensor, NumPy, CuPy, array-api-strict, nested lists) as a NumPy array on the host."""
    if isinstance(value, Tensor):
        return value.numpy()  # a copy already
    owner = _backend._backend_name_of(value)
    if owner not in (None, "numpy"):
        return np.array(_backend.get(owner).to_host(value), copy=True)
    return np.array(np.asarray(value), copy=True)  # (asarray first: torch's __array__ takes no copy=, and NumPy warns)


class Module:
    r"""Base class of every layer and model: holds parameters and sub-modules, found by name.

    Write ``__init__`` (call ``super().__init__()`` first, then assign :class:`Parameter` and
    :class:`Module` attributes, which register themselves) and ``forward``; call the module like a
    function. A module cannot be put inside itself, directly or further down (a ``ValueError``: the tree
    would have no bottom); one module in two places of the tree is fine. ``training`` is True after
    construction; ``eval()`` turns it off (dropout then does nothing) and ``train()`` back on, for the
    module and all its sub-modules.

    A model that a checkpoint should rebuild keeps its constructor's arguments in a dict ``self.config``, so that
    ``type(model)(**model.config)`` builds it again (the library's models do). A subclass that takes arguments of its
    own puts them there too, after ``super().__init__(...)``: ``self.config = {**self.config, "activation":
    activation}``; ``save_checkpoint`` warns, naming it, where the config lacks an argument of ``__init__``. What no
    argument says, a sub-module assigned after the model was built (``lm.positional = NoPE()``), a checkpoint records
    as each module's class by path, and loading refuses a model whose modules differ: build it the same way first.

    Examples
    --------
    A two-layer network, :math:`y = \max(0, xW_1 + b_1) W_2 + b_2`, ``(batch, 4)`` -> ``(batch, 2)``:

    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.first = nn.Linear(4, 8)
    ...         self.second = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.second(self.first(x).relu())
    >>> model = TwoLayer()
    >>> [name for name, _ in model.named_parameters()]
    ['first.weight', 'first.bias', 'second.weight', 'second.bias']
    >>> model(mt.ones(3, 4)).shape, model.eval().second.training
    ((3, 2), False)
    """

    #: names of buffers that ``to(dtype)`` leaves in their own dtype (``to(backend)`` still moves them), such as a table
    #: kept exact in float64 and cast where it is used, as :class:`SinusoidalPositionalEncoding`'s ``PE``
    _keep_dtype: tuple[str, ...] = ()
    # what __init__ makes of _STATE, declared for a type checker (which does not see __getattr__)
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent: set[str]
    _modules: dict[str, Module | None]
    training: bool

    def __init__(self) -> None:
        for name, start in _STATE.items():  # {} for _parameters, _buffers and _modules; training True
            object.__setattr__(self, name, start())

    # ------------------------------------------------------------ registration
    def _registry(self, what: str) -> dict:
        try:
            return object.__getattribute__(self, what)
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() at the start of __init__, before assigning "
                "parameters or sub-modules"
            ) from None

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Parameter):
            self._register("_parameters", name, value)
        elif isinstance(value, Module):
            self._register("_modules", name, value)
        elif name in self.__dict__.get("_parameters", {}):
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}.{name} is a parameter: assign a Parameter (or None), "
                    f"not {type(value).__name__}"
                )
            self._parameters[name] = None
        elif name in self.__dict__.get("_buffers", {}):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"{type(self).__name__}.{name} is a buffer: assign a Tensor (or None), not {type(value).__name__}"
                )
            _refuse_buffer_with_grad(f"{type(self).__name__}.{name}", value)
            self._buffers[name] = value
        elif name in self.__dict__.get("_modules", {}):
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}.{name} is a sub-module: assign a Module (or None), "
                    f"not {type(value).__name__}"
                )
            self._modules[name] = None
        else:
            self._refuse_unregistered(name, value)
            object.__setattr__(self, name, value)

    def _refuse_unregistered(self, name: str, value, weight=_is_weight) -> None:
        """Refuse what reads as a weight or a layer but would be a plain attribute, missed by ``parameters()``.

        Modules, or weights (``weight``: Parameters or leaf tensors that require grad) in a list, tuple, set or dict,
        and a leaf tensor that requires grad: PyTorch takes them silently, and the optimizer never updates them
        (``eval()`` does not reach the modules' dropout either).
        """
        where, kind = f"{type(self).__name__}.{name}", type(value).__name__
        items = (value.values() if isinstance(value, dict) else value if isinstance(value, _CONTAINERS) else ())
        if any(isinstance(item, Module) for item in items):
            holder = "nn.ModuleDict({...})" if isinstance(value, dict) else "nn.ModuleList([...]) (or nn.Sequential)"
            raise TypeError(
                f"{where}: a {kind} of modules is not registered, so their parameters would be missing from "
                "parameters() (the optimizer), state_dict(), to() and train()/eval(); hold them in "
                f"{holder}, or give each an attribute of its own"
            )
        if any(weight(item) for item in items):
            raise TypeError(
                f"{where}: a {kind} of Parameters (or of tensors that require grad) is not registered, so "
                "parameters() (the optimizer) and state_dict() would miss them; give each an attribute of its own "
                "(there is no ParameterList), or keep them in modules held in nn.ModuleList([...])"
            )
        if _is_weight(value):
            raise TypeError(
                f"{where}: a Tensor that requires grad is not registered, so parameters() (the optimizer) and "
                f"state_dict() would miss it ({value.dtype_name}, shape {value.shape}); make it a weight, "
                f"nn.Parameter(...), or a constant, register_buffer({name!r}, tensor.detach())"
            )

    def _register(self, what: str, name: str, value) -> None:
        """Put ``value`` in registry ``what`` (in its old place if it had one there), removing ``name`` elsewhere."""
        registry = self._registry(what)
        _check_name(type(self), what[1:-1], name)
        if what == "_modules" and value is not None:
            self._refuse_cycle(name, value)
        for other in ("_parameters", "_buffers", "_modules"):
            if other != what:
                self._registry(other).pop(name, None)
        if what != "_buffers":
            self._non_persistent.discard(name)
        self.__dict__.pop(name, None)
        registry[name] = value

    def _refuse_cycle(self, name: str, module: Module) -> None:
        """Refuse to make ``module`` a sub-module of ``self`` where ``self`` is ``module`` or is already inside it.

        The tree would then have no bottom: ``repr``, ``state_dict()`` and every walk down it would go on
        forever, or (skipping the repeat) give names that lead nowhere. PyTorch allows the assignment; here it is
        refused, at the cost of a walk down ``module`` (one step for a layer without sub-modules).
        """
        path = next((path for path, m in module.named_modules() if m is self), None)  # self inside module?
        if path is None:
            return
        if path == "":
            raise ValueError(f"{type(self).__name__}: cannot make a module its own sub-module ({name!r})")
        raise ValueError(
            f"{type(self).__name__}: cannot add {type(module).__name__} as sub-module {name!r}: that "
            f"{type(module).__name__} holds this {type(self).__name__} already, as {path!r}, and a module cannot "
            "contain itself"
        )

    if not TYPE_CHECKING:  # a type checker that saw it would take any name, lin.wieght too, for a real one
        def __getattr__(self, name: str):
            # only called when normal lookup fails: look in the registries
            registries = self.__dict__
            for what in ("_parameters", "_buffers", "_modules"):
                found = registries.get(what, {})
                if name in found:
                    return found[name]
            if isinstance(getattr(type(self), name, None), property):
                # the property exists but its body raised AttributeError: run it again to show that error, not this one
                return object.__getattribute__(self, name)
            raise no_attribute("Module", name, obj=self)  # Python's words; PyTorch's names say what to write here

    def __dir__(self):
        # the registered names too, as attributes: Jupyter completes model.enc<Tab>, Python's "Did you mean ...?" finds
        # `weight` for `wieght`
        registered = (name for what in ("_parameters", "_buffers", "_modules") for name in self.__dict__.get(what, {}))
        return sorted({*super().__dir__(), *registered})

    def __delattr__(self, name: str) -> None:
        for what in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(what, {}):
                del self.__dict__[what][name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (same as ``self.name = param``; ``None`` keeps the slot empty)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._register("_parameters", name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is state but not a weight (no gradient, not trained).

        Buffers move with ``to()``. A persistent buffer is saved in ``state_dict()``; a
        non-persistent one (a table recomputed from a formula, such as the sinusoidal ``PE``) is not.
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        _refuse_buffer_with_grad(f"register_buffer: {name!r}", tensor)
        self._register("_buffers", name, tensor)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (same as ``self.name = module``)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._register("_modules", name, module)

    # ------------------------------------------------------------ running
    def forward(self, *args, **kwargs):
        """What the module computes; every subclass defines it (``module(x)`` calls ``module.forward(x)``)."""
        raise NotImplementedError(f"{type(self).__name__}: define forward(...) to say what the module computes")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def train(self: M, mode: bool = True) -> M:
        """Training mode (dropout active) for this module and every sub-module; returns ``self``."""
        if not isinstance(mode, bool):  # train("no") would be truthy: training on, as the caller did not mean
            raise ValueError(f"{type(self).__name__}.train: mode must be True or False, got {mode!r}")
        for _, module in self.named_modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self: M) -> M:
        """Evaluation mode (dropout off): ``train(False)``; returns ``self``."""
        return self.train(False)

    # ------------------------------------------------------------ walking the tree
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for each direct sub-module.

        Every walk down the tree (``parameters()``, ``state_dict()``, ``train()``, ``to()``, ``repr``) comes through
        here, so here a plain list, tuple, set or dict attribute that was filled with modules or Parameters after its
        assignment (``self.layers = []``, then ``self.layers.append(nn.Linear(...))``) is refused as its assignment
        would have been: the walk would miss what it holds, and the model would train without it. (Tensors that
        require grad are let be here: a list a model fills in ``forward``, inputs kept for a saliency map, is data.)
        """
        for name, value in self.__dict__.items():
            if isinstance(value, _CONTAINERS) and name not in _STATE:  # the registries are dicts of modules
                self._refuse_unregistered(name, value, weight=lambda item: isinstance(item, Parameter))
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        """Each direct sub-module."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` for this module (name ``""``) and every module below it.

        A module shared by two parents (``tgt_embed = src_embed``) comes once, under its first name; with
        ``remove_duplicate=False``, under each of its names (what ``state_dict()`` saves), as in PyTorch.
        """
        seen = set()
        stack = [(prefix, self)]  # no module is inside itself (refused when assigned): the walk ends
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            below = [(f"{name}.{child}" if name else child, m) for child, m in module.named_children()]
            stack.extend(reversed(below))  # depth first, in the order of assignment

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, each once (:meth:`named_modules` without the names)."""
        for _, module in self.named_modules():
            yield module

    def _named_tensors(self, what: str, unique: bool, persistent_only: bool = False) -> Iterator[tuple[str, Tensor]]:
        """Parameters or buffers of every module by dotted name; ``unique``: each tensor once, else under every name."""
        seen = set()
        for prefix, module in self.named_modules(remove_duplicate=unique):
            for name, t in module.__dict__[what].items():
                if t is None or (persistent_only and name in module._non_persistent):
                    continue
                if unique:
                    if id(t) in seen:
                        continue
                    seen.add(id(t))
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` for every parameter, e.g. ``("layers.0.self_attn.W_Q.weight", W)``.

        A parameter shared by two modules (tied weights) appears once, under its first name.
        """
        return self._named_tensors("_parameters", unique=True)

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter, once each: what an optimizer updates."""
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, tensor)`` for every buffer (persistent or not)."""
        return self._named_tensors("_buffers", unique=True)

    def buffers(self) -> Iterator[Tensor]:
        """Every buffer (persistent or not), once each."""
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module and then on ``self`` (e.g. to re-initialise); returns ``self``.

        As PyTorch's: depth first, each module's children in the order of assignment before the module
        itself, so a re-initialisation draws its random numbers layer after layer, first layer first. A
        module shared by two parents gets ``fn`` once, where it comes first.
        """
        done = set()

        def visit(module: Module) -> None:  # no module is inside itself (refused when assigned): this ends
            done.add(id(module))
            for child in module.children():
                if id(child) not in done:
                    visit(child)
            fn(module)

        visit(self)
        return self

    # ------------------------------------------------------------ gradients, size
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter (``None``, or zeros with ``set_to_none=False``).

        ``backward()`` adds to ``.grad``, so call this (or the optimizer's) before each step.
        """
        zero_grads(self.parameters(), set_to_none)

    def requires_grad_(self, flag: bool = True) -> Module:
        """Freeze (``False``) or unfreeze every parameter; returns ``self``."""
        for p in self.parameters():
            p.requires_grad = bool(flag)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the model learns (tied weights counted once).

        >>> from minitransformer import nn
        >>> nn.Linear(512, 2048).num_parameters()   # 512 * 2048 + 2048
        1050624
        """
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------ moving, casting
    def to(self: M, *targets) -> M:
        """Move every parameter and buffer to a backend and/or cast the floating ones to a dtype, in place.

        ``model.to("cupy")``, ``model.to("float64")`` (gradient checks), ``model.to("numpy", "float32")``.
        The Parameter objects stay the same (an optimizer holding them keeps working); their values,
        and gradients if any, move or change dtype. A buffer that its module keeps in its own dtype
        (listed in the class attribute ``_keep_dtype``) moves but is not cast. Returns ``self``.
        """
        if not targets:
            raise TypeError("Module.to: give a backend ('numpy', 'cupy', 'array_api_strict') or a dtype ('float64')")
        parsed = [_parse_target(t) for t in targets]  # all checked before anything changes
        tensors = list(self.parameters()) + list(self.buffers())
        kept = {id(m._buffers.get(name)) for m in self.modules() for name in m._keep_dtype}  # not cast
        for kind, target in parsed:
            for t in tensors:
                if kind == "dtype" and id(t) in kept:
                    continue
                _move(t, kind, target)
                if t.grad is not None:
                    _move(t.grad, kind, target)
        return self

    # ------------------------------------------------------------ saving, loading
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and persistent buffer by dotted name, as NumPy arrays on the host (copies).

        Always NumPy, whatever the backend: a model trained on a GPU saves weights a CPU can load.
        Tied weights, and the weights of a module shared by two parents, appear under each of their
        names, as in PyTorch.

        >>> from minitransformer import nn
        >>> model = nn.Transformer(10, 10, 8, 2, 16, 1, 1, max_len=8, share_embeddings=True)
        >>> [name for name in model.state_dict() if "embed" in name]     # one table, two names
        ['src_embed.weight', 'tgt_embed.weight']
        """
        state = {}
        for what in ("_parameters", "_buffers"):
            for name, t in self._named_tensors(what, unique=False, persistent_only=True):
                state[name] = _host_copy(t)
        return state

    def load_state_dict(self, state, strict: bool = True) -> LoadResult:
        """Copy the arrays of ``state`` into the parameters and buffers of the same names, in place.

        Everything is checked first, and nothing changes if something is wrong: a
        :class:`StateDictError` lists the missing keys, the unexpected keys (only with
        ``strict=True``) and every key whose value does not fit (always): another shape, something
        that is not an array of numbers, integers or bools for a floating tensor, a value the cast
        would change beyond rounding (1e300 into float32 would become inf; NaN and inf given in the
        state load as they are). Values are cast to each parameter's dtype and moved to its backend.
        Returns the missing and unexpected keys.

        A tied tensor (one tensor under several names, as :meth:`state_dict` saves it) is loaded from
        whichever of its names the state has, so a state that gives only one of them misses nothing;
        where it has several, they must hold the same values (PyTorch would load each in turn,
        the last one winning; here two different values for one tensor are refused).

        A state that records the classes of its model's modules (``ClassedState``: a checkpoint's
        ``model_state``) is refused, with ``strict=True``, by a model whose modules differ: the message names the
        first path that differs and both classes.
        """
        if not hasattr(state, "keys"):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got {type(state).__name__}")
        saved_classes = getattr(state, "module_classes", None)
        if strict and isinstance(saved_classes, Mapping):
            differ = _first_class_difference(saved_classes, self)
            if differ is not None:
                path, theirs, ours = differ
                raise StateDictError(
                    f"load_state_dict: the state does not fit {type(self).__name__}; nothing was loaded.\n  its module "
                    f"{path!r} is a {theirs} in the model the state was saved from, a {ours} here: the weights would "
                    f"load into a model that computes something else. Build the model as it was saved (assign the "
                    f"same modules) before loading, or load with strict=False to take the weights regardless"
                )
        targets, parameters = {}, set()
        for what in ("_parameters", "_buffers"):
            named = dict(self._named_tensors(what, unique=False, persistent_only=True))
            targets.update(named)
            parameters |= {id(t) for t in named.values()} if what == "_parameters" else set()
        given = {id(t): name for name, t in reversed(targets.items()) if name in state}  # a tied one: first name
        missing = [k for k, t in targets.items() if id(t) not in given]
        unexpected = [k for k in state if k not in targets]
        values, wrong = {}, []  # values: host arrays in each tensor's dtype
        for name, t in targets.items():
            if name not in state:
                continue
            try:
                host = _host_copy(state[name])
            except Exception as e:  # ragged lists, a torch tensor that requires grad, ...: whatever fails, named
                wrong.append(f"{name!r}: cannot be read as an array ({type(e).__name__}: {e})")
                continue
            if tuple(host.shape) != t.shape:
                turned = host.ndim == 2 and tuple(host.shape[::-1]) == t.shape  # torch's Linear: (d_out, d_in)
                wrong.append(f"{name!r}: the model expects shape {t.shape}, the state has {host.shape}" + (
                    " (transposed: torch's Linear keeps its weight as (d_out, d_in); nn.convert.from_torch_state_dict "
                    "loads a state dict of torch's)" if turned else ""))
            elif host.dtype.kind not in "fiub":
                wrong.append(f"{name!r}: values of dtype {host.dtype} are not numbers")
            elif host.dtype.kind != "f" and np.dtype(t.dtype_name).kind == "f":  # learnt weights are never integers
                wrong.append(f"{name!r}: values of dtype {host.dtype} for a "
                             f"{'parameter' if id(t) in parameters else 'buffer'} of {t.dtype_name}, which takes a "
                             "floating array (a damaged or hand-edited state?)")
            elif (cast := _cast(name, host, t.dtype_name, wrong)) is not None:
                values[name] = cast
                first = given[id(t)]  # an earlier name of the same (tied) tensor, if any
                if first != name and first in values and not np.array_equal(values[first], values[name],
                                                                            equal_nan=True):
                    wrong.append(f"{first!r} and {name!r} are one tied tensor in the model, but the state gives "
                                 "them different values")
        problems = []
        if strict and missing:
            problems.append(f"missing keys (in the model, not in the state): {', '.join(map(repr, missing))}")
        if strict and unexpected:
            problems.append(f"unexpected keys (in the state, not in the model): {', '.join(map(repr, unexpected))}")
        if wrong:
            problems.append("wrong shapes or values:\n    " + "\n    ".join(wrong))
        if problems:
            raise StateDictError(
                f"load_state_dict: the state does not fit {type(self).__name__}; nothing was loaded.\n  "
                + "\n  ".join(problems)
            )
        for name, host in values.items():
            t = targets[name]
            if given[id(t)] == name:  # a tied tensor once
                t.data = t.backend.asarray(host)
        return LoadResult(missing, unexpected)

    # ------------------------------------------------------------ copying
    def __copy__(self) -> Module:
        """``copy.copy(m)``: another module object sharing the registries, parameters and sub-modules."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo) -> Module:
        """``copy.deepcopy(m)``: an independent model (keeping the best weights during training, say).

        Every parameter and buffer is copied with its array and ``.grad``, on its backend; a tensor or module
        shared inside ``m`` (tied weights) is shared inside the copy too.
        """
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for name, value in self.__dict__.items():
            new.__dict__[name] = copy.deepcopy(value, memo)
        return new

    def __reduce_ex__(self, protocol):  # pickle's way in (copy takes the two above)
        _backend.refuse_pickle(self)

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The settings shown inside the parentheses of ``repr`` (``d_model=512, heads=8``)."""
        return ""

    def __repr__(self) -> str:
        """The tree of sub-modules, each with its settings and how many parameters it adds: the counts on a module's
        lines add up to the count on its closing line, and the whole model's is :meth:`num_parameters`. A module in
        two places (``tgt_embed = src_embed``) is shown once; its second name says ``the same module as src_embed``.
        A module with sub-modules shows its own parameters too, one line each with its shape (a classifier's
        ``cls``)."""
        try:
            return self._repr_tree("", {})[0]
        except TypeError as e:  # a layer left unregistered: said, not raised (a notebook or a debugger shows models)
            return f"{type(self).__name__}(<{e}>)"

    def _repr_tree(self, path: str, seen: dict) -> tuple[str, int]:
        """``(repr, parameters it adds)`` of this module at ``path`` of the tree being shown; ``seen`` maps the id of
        each module and parameter shown so far to its path, so that each is shown, and counted, once."""
        seen[id(self)] = path
        here = f"{path}." if path else ""
        count, lines, again = 0, [], []  # again: "weight is src_embed.weight", a parameter counted above
        for name, p in self._parameters.items():
            if p is None:
                continue
            if id(p) in seen:
                again.append(f"{name} is {seen[id(p)]}")
                continue
            seen[id(p)], count = here + name, count + p.size
            lines.append(f"({name}): Parameter(shape={p.shape}, dtype={p.dtype_name})  # {p.size:,} parameters")
        children = list(self.named_children())
        for name, child in children:
            if id(child) in seen:  # shared: shown where it came first, and counted there
                lines.append(f"({name}): the same module as {seen[id(child)]}")
                continue
            if type(child).__repr__ is Module.__repr__:
                body, n = child._repr_tree(here + name, seen)
            else:  # a repr of its own: shown as it is, its parameters counted here
                body, n = repr(child), sum(p.size for p in child.parameters() if id(p) not in seen)
                seen.update({id(m): f"{here}{name}.{sub}".rstrip(".") for sub, m in child.named_modules()})
                seen.update({id(p): f"{here}{name}.{sub}" for sub, p in child.named_parameters() if id(p) not in seen})
            count += n
            lines.append(f"({name}): " + body.replace("\n", "\n  "))
        note = "  # " + "; ".join(([f"{count:,} parameters"] if count else []) + again) if count or again else ""
        if not children:  # a layer: its settings say what its parameters are
            return f"{type(self).__name__}({self.extra_repr()}){note}", count
        head = [self.extra_repr()] if self.extra_repr() else []
        return "\n  ".join([f"{type(self).__name__}(", *head, *lines]) + f"\n){note}", count


def _cast(name: str, host: np.ndarray, dtype: str, wrong: list) -> np.ndarray | None:
    """``host`` in ``dtype``; None, with a line in ``wrong``, where a value does not survive the cast beyond rounding
    (a finite number overflowing a float dtype to inf, a number an integer dtype cannot hold)."""
    with np.errstate(over="ignore", invalid="ignore"):  # the cases below say what went wrong, with the key
        cast = host.astype(dtype, copy=False)
    kept = (np.isfinite(cast) | ~np.isfinite(host)) if cast.dtype.kind == "f" else (cast == host)
    if kept.all():
        return cast
    value = host[~kept].flat[0]
    wrong.append(f"{name!r}: the value {value} does not fit {dtype}"
                 + (" (it would load as inf)" if cast.dtype.kind == "f" else ""))
    return None


def _move(t: Tensor, kind: str, target) -> None:
    """Move ``t`` to a backend or cast it to a floating dtype, keeping the same Tensor object."""
    if kind == "backend":
        if t.backend is not target:
            array = target.asarray(t.backend.to_host(t.data))
            t.backend = target  # first: t.data takes only an array of t's backend
            t.data = array
    elif t.backend.xp.isdtype(t.dtype, "real floating") and t.dtype_name != target:
        t.data = t.backend.xp.astype(t.data, t.backend.dtype(target))


class ModuleList(Module):
    """A list of modules, registered as ``"0"``, ``"1"``, ...: the N layers of an encoder stack.

    >>> from minitransformer import nn
    >>> layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    >>> len(layers), [name for name, _ in layers.named_parameters()][:2]
    (3, ['0.weight', '0.bias'])
    """

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _index(self, i: int) -> str:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__}: index {i} is out of range for {n} modules")
        return str(i % n)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._from(list(self._modules.values())[i])
        return self._modules[self._index(i)]

    @classmethod
    def _from(cls, modules: list[Module]) -> ModuleList:
        return cls(modules)

    def __setitem__(self, i: int, module: Module) -> None:
        self.add_module(self._index(i), module)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end, registered under the name ``str(len(self))``; returns ``self``."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """:meth:`append` each of ``modules``, in order; returns ``self``."""
        for module in modules:
            self.append(module)
        return self

    def forward(self, *args, **kwargs):
        """Not defined: a ModuleList only holds modules (loop over it); raises NotImplementedError."""
        raise NotImplementedError("ModuleList has no forward: loop over it (for layer in layers: x = layer(x))")


class ModuleDict(Module):
    """A dict of modules, registered under their keys: one head per task, one embedding per language.

    ``state_dict()`` names their weights ``"key.weight"``, and ``to()``, ``train()``/``eval()``, ``parameters()`` reach
    them, which a plain dict of modules would not (it is refused). The keys keep their order of insertion; a key is a
    non-empty string without ".", and not a name the ModuleDict has already (``keys``, ``training``...). It takes a
    dict, another ModuleDict or ``(key, module)`` pairs; ``keys()``, ``values()`` and ``items()`` are ``dict``'s views.

    >>> from minitransformer import nn
    >>> heads = nn.ModuleDict({"sentiment": nn.Linear(4, 2), "topic": nn.Linear(4, 5)})
    >>> list(heads), heads["topic"].d_out, [name for name, _ in heads.named_parameters()][:2]
    (['sentiment', 'topic'], 5, ['sentiment.weight', 'sentiment.bias'])
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] = ()):
        super().__init__()
        self.update(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"{type(self).__name__}: no module {key!r}; the keys are {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self._check_item(key, module, f"key {key!r}")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 - the KeyError naming the keys
        del self._modules[key]

    def pop(self, key: str) -> Module:
        """Remove the module under ``key`` and return it (a KeyError naming the keys if there is none)."""
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        """Remove every module: the ModuleDict is empty, and so are its ``parameters()`` and ``state_dict()``."""
        self._modules.clear()

    def keys(self) -> KeysView[str]:
        """The keys, in order of insertion (a read-only view, as ``dict.keys()``)."""
        return self._modules.keys()

    def values(self) -> ValuesView[Module]:
        """The modules, in order of insertion (a read-only view)."""
        return self._modules.values()

    def items(self) -> ItemsView[str, Module]:
        """``(key, module)`` pairs, in order of insertion (a read-only view)."""
        return self._modules.items()

    def update(self, modules: Mapping[str, Module] | ModuleDict | Iterable[tuple[str, Module]]) -> ModuleDict:
        """Register each ``(key, module)`` of a mapping, a ModuleDict or pairs, in order (an existing key is
        replaced). Every pair is checked before any is registered: a refused update leaves the ModuleDict as it was."""
        pairs = list(self._pairs(modules))
        for i, (key, module) in enumerate(pairs):
            self._check_item(key, module, f"item {i}, key {key!r},")
        for key, module in pairs:
            self.add_module(key, module)
        return self

    def _check_item(self, key: str, module: Module | None, where: str) -> None:
        """Refuse what ``self[key] = module`` cannot register: a value that is no Module (None is an empty slot), a
        key no module may take (:func:`_check_name`), or a module that holds this ModuleDict. ``where`` names the
        item in the message."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {where} is not a Module (got {type(module).__name__})")
        _check_name(type(self), "module", key)
        if module is not None:
            self._refuse_cycle(key, module)

    @staticmethod
    def _pairs(modules) -> Iterator[tuple]:
        """The ``(key, value)`` pairs of ``modules``; anything else is refused, naming the item at fault."""
        if isinstance(modules, Mapping | ModuleDict):
            modules = modules.items()
        elif isinstance(modules, str | Module) or not isinstance(modules, Iterable):
            raise TypeError(f"ModuleDict: takes a dict {{key: module}} or (key, module) pairs, got "
                            f"{type(modules).__name__}")
        for i, pair in enumerate(modules):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise TypeError(f"ModuleDict: item {i} ({type(pair).__name__}) is not a (key, module) pair; pass "
                                "a dict {key: module} or (key, module) pairs")
            yield tuple(pair)

    def forward(self, *args, **kwargs):
        """Not defined: a ModuleDict only holds modules (call one: ``heads[key](x)``); raises NotImplementedError."""
        raise NotImplementedError("ModuleDict has no forward: call one of its modules (heads[key](x))")


class Sequential(ModuleList):
    """Modules applied one after another: ``Sequential(f, g)(x) = g(f(x))``.

    The input has the shape the first module takes; the output, the shape the last one gives.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    >>> mlp(mt.ones(3, 4)).shape, len(mlp)                  # (3, 4) -> (3, 8) -> (3, 2)
    ((3, 2), 2)
    """

    def __init__(self, *modules: Module):
        super().__init__(modules)

    @classmethod
    def _from(cls, modules: list[Module]) -> Sequential:
        return cls(*modules)

    def forward(self, x):
        """Apply the modules in order, each to the output of the one before: ``x`` -> ``m_n(... m_1(x))``."""
        for module in self:
            x = module(x)
        return x


# Per module (by id; an entry lives only while a block holds its module): how many evaluating blocks are open on it,
# and its mode before the first. Blocks may overlap without nesting (two server threads decoding with one model), so
# the first to start saves the mode and the last to end puts it back, whichever order they end in.
_evaluating: dict[int, list] = {}
_evaluating_lock = threading.Lock()


@contextlib.contextmanager
def evaluating(module: Module):
    """Inside the block: evaluation mode (no dropout) and no graph; afterwards each module's mode is put back (a part
    kept in evaluation mode stays in it).

    For measuring or running a model that may be in training mode, as it is after training: held-out
    metrics, decoding, :meth:`~minitransformer.nn.TransformerClassifier.predict_proba`. Blocks on the same model
    may overlap (threads of a server decoding at once): the model stays in evaluation mode until the last one ends.
    A module's mode is one for every thread, as in PyTorch, so training a model in one thread while another
    evaluates it is not supported: ``train()`` would turn dropout on inside the other's block.

    >>> import minitransformer as mt
    >>> from minitransformer import nn
    >>> layer = nn.Dropout(0.5)
    >>> with nn.evaluating(layer):
    ...     y = layer(mt.ones(4))
    >>> y.numpy().tolist(), layer.training
    ([1.0, 1.0, 1.0, 1.0], True)
    """
    modules = list(module.modules())  # each its own mode: a frozen part may be kept in eval mode
    with _evaluating_lock:
        for m in modules:
            _evaluating.setdefault(id(m), [0, m.training])[0] += 1
        module.eval()
    try:
        with no_grad():
            yield module
    finally:
        with _evaluating_lock:
            for m in modules:
                held = _evaluating[id(m)]
                held[0] -= 1
                if held[0] == 0:
                    del _evaluating[id(m)]
                    object.__setattr__(m, "training", held[1])
