"""Module mechanics: registration, names, state_dict round trips and errors, modes, gradients, moving, printing."""

from __future__ import annotations

import copy
import pickle
import re
import threading
import warnings

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn


class Block(nn.Module):
    """A small stand-in for an encoder layer: attention, a norm, a feed-forward, a plain attribute."""

    def __init__(self, d: int):
        super().__init__()
        self.attn = nn.MultiHeadAttention(d, 2)
        self.norm = nn.LayerNorm(d)
        self.ffn = nn.FeedForward(d, 2 * d)
        self.note = "not registered"
        self.plain = mt.tensor(2.0)  # a plain Tensor is no parameter (nor a buffer: to() leaves it)

    def forward(self, x):
        x = x + self.attn(x)[0]
        return self.norm(x + self.ffn(x))


class Stack(nn.Module):
    def __init__(self, d: int = 4, n: int = 2):
        super().__init__()
        self.embed = nn.Linear(d, d, bias=False)
        self.layers = nn.ModuleList([Block(d) for _ in range(n)])

    def forward(self, x):
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return x


def block_names(prefix: str) -> list[str]:
    names = []
    for proj in ("W_Q", "W_K", "W_V", "W_O"):
        names += [f"{prefix}attn.{proj}.weight", f"{prefix}attn.{proj}.bias"]
    names += [f"{prefix}norm.gamma", f"{prefix}norm.beta"]
    names += [f"{prefix}ffn.W_1.weight", f"{prefix}ffn.W_1.bias", f"{prefix}ffn.W_2.weight", f"{prefix}ffn.W_2.bias"]
    return names


# ------------------------------------------------------------------ registration and names
def test_named_parameters_are_dotted_paths_in_assignment_order():
    model = Stack(d=4, n=2)
    names = [name for name, _ in model.named_parameters()]
    assert names == ["embed.weight"] + block_names("layers.0.") + block_names("layers.1.")
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert model.layers[1].attn.W_Q.weight is dict(model.named_parameters())["layers.1.attn.W_Q.weight"]


def test_plain_attributes_and_tensors_are_not_registered():
    block = Block(4)
    assert block.note == "not registered"
    assert all(p is not block.plain for p in block.parameters())
    assert [name for name, _ in block.named_children()] == ["attn", "norm", "ffn"]
    assert list(block.children()) == [block.attn, block.norm, block.ffn]


def test_named_modules_walks_the_tree_once_each():
    model = Stack(d=4, n=1)
    names = [name for name, _ in model.named_modules()]
    assert names == [
        "", "embed", "layers", "layers.0", "layers.0.attn", "layers.0.attn.W_Q", "layers.0.attn.W_K",
        "layers.0.attn.W_V", "layers.0.attn.W_O", "layers.0.norm", "layers.0.ffn", "layers.0.ffn.W_1",
        "layers.0.ffn.W_2", "layers.0.ffn.dropout",
    ]


@pytest.mark.single_backend
def test_an_attribute_error_inside_a_modules_property_names_its_cause():
    """Python calls ``__getattr__`` also when a property's body raises AttributeError; the module's answered with
    the property's name ("has no attribute 'width'"), hiding the typo inside it."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        @property
        def width(self):
            return self.lin.wieght.shape[1]  # the typo

    with pytest.raises(AttributeError, match="^'Linear' object has no attribute 'wieght'$"):
        Block().width  # noqa: B018
    with pytest.raises(AttributeError, match="^'Block' object has no attribute 'height'$"):
        Block().height  # noqa: B018


def test_reassigning_and_deleting_keep_the_registry_right():
    lin = nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"Linear\.weight is a parameter: assign a Parameter"):
        lin.weight = mt.zeros(3, 2)
    lin.bias = None  # an empty slot, as with bias=False
    assert [name for name, _ in lin.named_parameters()] == ["weight"]
    lin.bias = nn.Parameter(mt.ones(2))
    assert [name for name, _ in lin.named_parameters()] == ["weight", "bias"]
    del lin.bias
    assert [name for name, _ in lin.named_parameters()] == ["weight"]
    with pytest.raises(AttributeError, match="^'Linear' object has no attribute 'bias'$"):
        lin.bias  # noqa: B018
    pe = nn.SinusoidalPositionalEncoding(4, max_len=8)  # its table PE is a buffer: a Tensor, or None
    with pytest.raises(TypeError, match=r"SinusoidalPositionalEncoding\.PE is a buffer: assign a Tensor .*ndarray"):
        pe.PE = np.zeros((8, 4))
    pe.PE = mt.zeros(8, 4)
    assert [name for name, _ in pe.named_buffers()] == ["PE"] and not pe.PE.numpy().any()


@pytest.mark.single_backend
def test_register_takes_none_as_an_empty_slot_and_refuses_another_kind():
    model = nn.Module()
    model.register_parameter("w", None)  # as Linear(bias=False): a slot, no parameter
    model.add_module("sub", None)
    assert model.w is None and model.sub is None
    assert list(model.named_parameters()) == [] and list(model.named_children()) == []
    model.w = nn.Parameter(mt.ones(2))
    assert [name for name, _ in model.named_parameters()] == ["w"]
    with pytest.raises(TypeError, match="register_parameter: 'x' must be a Parameter or None, got Tensor"):
        model.register_parameter("x", mt.ones(2))
    with pytest.raises(TypeError, match="add_module: 'x' must be a Module or None, got Tensor"):
        model.add_module("x", mt.ones(2))
    assert "x" not in model.state_dict()


@pytest.mark.parametrize("register", [
    lambda m, name: m.register_parameter(name, nn.Parameter(mt.ones(3))),
    lambda m, name: m.register_buffer(name, mt.ones(3)),
    lambda m, name: m.add_module(name, nn.Linear(2, 2)),
    lambda m, name: setattr(m, name, nn.Parameter(mt.ones(3))),
], ids=["register_parameter", "register_buffer", "add_module", "setattr"])
@pytest.mark.single_backend
def test_names_with_a_dot_or_empty_are_refused(register):
    """A dotted name would shadow a sub-module's entry in state_dict ("a.weight"); refused, as PyTorch does."""
    model = nn.Module()
    model.a = nn.Linear(2, 2)
    with pytest.raises(KeyError, match=r'Module: a (parameter|buffer|module) name cannot contain ".", got "a.weight"'):
        register(model, "a.weight")
    with pytest.raises(KeyError, match=r'Module: a (parameter|buffer|module) name cannot be empty'):
        register(model, "")
    assert list(model.state_dict()) == ["a.weight", "a.bias"]
    np.testing.assert_array_equal(model.state_dict()["a.weight"], model.a.weight.numpy())
    with pytest.raises(TypeError, match="name must be a string, got int"):
        model.register_buffer(3, None)


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mt.zeros(2))

    with pytest.raises(AttributeError, match=r"call super\(\)\.__init__\(\)"):
        Broken()


@pytest.mark.parametrize("holder", [list, tuple, set, lambda layers: dict(enumerate(layers))],
                         ids=["list", "tuple", "set", "dict"])
def test_modules_in_a_plain_container_are_refused_pointing_to_module_list(holder):
    """``self.layers = [nn.Linear(...), ...]`` registered nothing, as in PyTorch: the optimizer never saw those
    weights (or, if nothing else had any, said only that the list of parameters was empty) and eval() left their
    dropout on. A container of other things stays a plain attribute."""
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = holder([nn.Linear(2, 2), nn.Dropout(0.5)])

    kind = type(holder([])).__name__
    container = (r"nn\.ModuleDict\(\{\.\.\.\}\)" if kind == "dict"
                 else r"nn\.ModuleList\(\[\.\.\.\]\) \(or nn\.Sequential\)")
    with pytest.raises(TypeError, match=rf"^Stack\.layers: a {kind} of modules is not registered, so their parameters "
                                        rf"would be missing from parameters\(\) \(the optimizer\).* hold them in "
                                        rf"{container}, or give each"):
        Stack()
    model = nn.Module()
    model.sizes = holder([mt.zeros(2), 3])  # tensors and numbers: a plain attribute, as before
    assert list(model.parameters()) == [] and len(model.sizes) == 2
    frozen = nn.Parameter(mt.ones(2)).requires_grad_(False)  # still a weight: state_dict() would miss it
    for weights in (nn.Parameter(mt.ones(2)), frozen, mt.ones(2, requires_grad=True)):
        with pytest.raises(TypeError, match=rf"^Module\.ws: a {kind} of Parameters \(or of tensors that require "
                                            r"grad\) is not registered, so parameters\(\) \(the optimizer\) and "
                                            r"state_dict\(\) would miss them; give each an attribute of its own "
                                            r"\(there is no ParameterList\)"):
            model.ws = holder([mt.zeros(2), weights])


@pytest.mark.parametrize("holder", [list, dict], ids=["list", "dict"])
def test_a_plain_container_filled_after_its_assignment_is_refused_by_the_walk(holder):
    """``self.layers = []`` then ``self.layers.append(nn.Linear(...))`` in a loop (as torch tutorials do) got past the
    check at assignment: parameters() and state_dict() were empty, the optimizer trained nothing and print showed
    ``Stack()``. Every walk of the tree now refuses it with the assignment's message."""
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.sizes = holder()  # stays a plain attribute: it holds no module
            self.layers = holder()
            for i in range(2):
                if holder is list:
                    self.layers.append(nn.Linear(2, 2))
                else:
                    self.layers[str(i)] = nn.Linear(2, 2)

    model = Stack()
    kind = holder.__name__
    refusal = rf"^Stack\.layers: a {kind} of modules is not registered, so their parameters would be missing from"
    walks = [lambda: list(model.parameters()), model.state_dict, model.eval, lambda: model.to("float64"),
             lambda: list(model.named_buffers())]
    for walk in walks:
        with pytest.raises(TypeError, match=refusal):
            walk()
    assert re.match(refusal[1:], repr(model)[len("Stack(<"):])  # shown, not raised: a notebook cell shows the model
    model.layers = nn.ModuleList(model.layers.values() if holder is dict else model.layers)  # what the message says
    assert len(list(model.parameters())) == 4 and len(model.sizes) == 0
    inner = nn.Sequential(nn.Linear(2, 2))
    inner[0].ws = []
    inner[0].ws.append(nn.Parameter(mt.ones(2)))  # a weight, one level down
    with pytest.raises(TypeError, match=r"^Linear\.ws: a list of Parameters \(or of tensors that require grad\) is "
                                        r"not registered"):
        list(inner.parameters())


def test_tensors_that_require_grad_a_module_keeps_in_a_list_at_run_time_are_data_to_the_walk():
    """The walk refuses lists filled with modules and Parameters, not with tensors: inputs a model keeps in
    ``forward`` (for a saliency map), which may require grad, are data, and parameters() must still work."""
    class Keeps(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.inputs = nn.Linear(2, 2), []

        def forward(self, x):
            self.inputs.append(x)
            return self.lin(x)

    model = Keeps()
    model(mt.ones(1, 2, requires_grad=True))
    assert len(list(model.parameters())) == 2 and len(model.inputs) == 1 and repr(model).startswith("Keeps(")


def test_a_tensor_that_requires_grad_is_refused_pointing_to_parameter():
    """``self.w = mt.randn(2, 3, requires_grad=True)`` was a plain attribute that parameters() missed: the model
    trained without it. A tensor without grad, or one computed from a parameter, stays a plain attribute."""
    model = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"^Linear\.scale: a Tensor that requires grad is not registered, so "
                                        r"parameters\(\) \(the optimizer\) and state_dict\(\) would miss it "
                                        r"\(float32, shape \(2, 3\)\); make it a weight, nn\.Parameter\(\.\.\.\), "
                                        r"or a constant, register_buffer\('scale', tensor\.detach\(\)\)$"):
        model.scale = mt.randn(2, 3, requires_grad=True)
    refusal = (r"a buffer gets no gradient and is not trained, but this Tensor requires grad \(float32, shape "
               r"\(2, 3\)\); register tensor\.detach\(\), or make it a weight")
    with pytest.raises(TypeError, match=rf"^register_buffer: 'scale': {refusal}"):
        model.register_buffer("scale", mt.randn(2, 3, requires_grad=True))  # what the message above advised before
    model.register_buffer("scale", mt.randn(2, 3, requires_grad=True).detach())
    with pytest.raises(TypeError, match=rf"^Linear\.scale: {refusal}"):
        model.scale = mt.randn(2, 3, requires_grad=True)  # an existing buffer's name
    assert not model.scale.requires_grad and [name for name, _ in model.named_buffers()] == ["scale"]
    del model.scale
    model.table = mt.randn(2, 3)
    model.last = model.weight * 2.0  # computed (no leaf): kept for a picture, say
    model.scale = nn.Parameter(mt.ones(3))
    assert [name for name, _ in model.named_parameters()] == ["weight", "bias", "scale"]


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="define forward"):
        nn.Module()(mt.zeros(1))


def test_parameter_is_a_float_leaf():
    p = nn.Parameter([1.0, 2.0])
    assert p.requires_grad and p.is_leaf and p.dtype_name == "float32"
    assert repr(p).startswith("Parameter(") and "requires_grad=True" in repr(p)
    assert nn.Parameter(mt.zeros(2, dtype="float64")).dtype_name == "float64"
    with pytest.raises(TypeError, match="Parameter: a weight must be floating point, got int64"):
        nn.Parameter(mt.tensor([1, 2]))


@pytest.mark.single_backend
def test_parameter_of_a_tensor_keeps_its_backend_unless_given_one():
    pytest.importorskip("array_api_strict")
    on_numpy = mt.zeros(2)  # numpy is the current backend here
    with mt.backend.use("array_api_strict"):
        assert nn.Parameter(on_numpy).backend.name == "numpy"  # the tensor's own, not the current one
    assert nn.Parameter(on_numpy, backend="array_api_strict").backend.name == "array_api_strict"


def test_tied_weights_count_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3, bias=False)
            self.b = nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

    model = Tied()
    assert [name for name, _ in model.named_parameters()] == ["a.weight"]
    assert model.num_parameters() == 9
    assert sorted(model.state_dict()) == ["a.weight", "b.weight"]  # as PyTorch: each name saved


def shared_embedding_transformer():
    return nn.Transformer(12, 12, 8, 2, 16, 1, 1, max_len=8, share_embeddings=True)


def test_a_shared_module_is_saved_under_each_of_its_names():
    """As PyTorch: named_modules/named_parameters give a shared module once, state_dict under every name."""
    model = shared_embedding_transformer()
    assert model.src_embed is model.tgt_embed
    names = [name for name, _ in model.named_modules()]
    assert "src_embed" in names and "tgt_embed" not in names
    every = [name for name, _ in model.named_modules(remove_duplicate=False)]
    assert every[:3] == ["", "src_embed", "tgt_embed"]
    assert [name for name, _ in model.named_parameters() if "embed" in name] == ["src_embed.weight"]
    state = model.state_dict()
    assert "src_embed.weight" in state and "tgt_embed.weight" in state
    np.testing.assert_array_equal(state["src_embed.weight"], state["tgt_embed.weight"])
    assert len(state) == len(list(model.named_parameters())) + 1


def test_a_tied_tensor_loads_from_either_of_its_names_and_refuses_two_values():
    source, target = shared_embedding_transformer(), shared_embedding_transformer()
    state = source.state_dict()
    assert target.load_state_dict(state) == (([], []))  # both names, equal values
    np.testing.assert_array_equal(target.tgt_embed.weight.numpy(), state["tgt_embed.weight"])
    tied = ("src_embed.weight", "tgt_embed.weight")
    for kept in tied:  # one name only (an older library saved the first)
        target = shared_embedding_transformer()
        one = {k: v for k, v in state.items() if k not in tied or k == kept}
        assert target.load_state_dict(one) == (([], []))
        np.testing.assert_array_equal(target.src_embed.weight.numpy(), state[kept])
    target = shared_embedding_transformer()
    before = target.src_embed.weight.numpy().copy()
    state["tgt_embed.weight"] = state["tgt_embed.weight"] + 1.0
    with pytest.raises(nn.StateDictError, match=r"'src_embed.weight' and 'tgt_embed.weight' are one tied tensor"):
        target.load_state_dict(state)
    np.testing.assert_array_equal(target.src_embed.weight.numpy(), before)  # nothing loaded
    for name in tied:  # NaN under both names (a diverged run's checkpoint) is the same value: it loads
        state[name] = state["src_embed.weight"].copy()
        state[name][0, 0] = np.nan
    target.load_state_dict(state)
    assert np.isnan(target.tgt_embed.weight.numpy()[0, 0])
    missing = target.load_state_dict({}, strict=False).missing_keys
    assert "src_embed.weight" in missing and "tgt_embed.weight" in missing


def test_a_module_cannot_be_put_inside_itself():
    """A cycle is refused where it would be made (repr and the walks would have no bottom); nothing changes."""
    lin = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"Linear: cannot make a module its own sub-module \('again'\)"):
        lin.add_module("again", lin)
    with pytest.raises(ValueError, match="its own sub-module"):
        lin.again = lin
    assert list(lin.named_children()) == [] and "again" not in lin.__dict__
    outer, inner = nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Linear(2, 2))
    outer.append(nn.ModuleList([inner]))
    attempts = [lambda: inner.append(outer), lambda: inner.__setitem__(0, outer),
                lambda: inner.extend([outer]), lambda: setattr(inner[0], "back", outer)]
    for attempt in attempts:
        with pytest.raises(ValueError, match=r"cannot add Sequential as sub-module '(0|1|back)': that Sequential "
                                             r"holds this (Sequential|Linear) already, as '1.0(.0)?'"):
            attempt()
    assert len(inner) == 1 and isinstance(inner[0], nn.Linear) and "back" not in inner[0]._modules
    assert repr(outer).count("Linear(") == 2
    assert [name for name, _ in outer.named_modules(remove_duplicate=False)] == ["", "0", "1", "1.0", "1.0.0"]
    outer.append(inner)  # the same module twice in one tree is no cycle
    assert list(outer.state_dict()) == ["0.weight", "0.bias", "1.0.0.weight", "1.0.0.bias", "2.0.weight",
                                        "2.0.bias"]


def test_num_parameters_by_hand():
    assert nn.Linear(512, 2048).num_parameters() == 512 * 2048 + 2048
    # per block: 4 projections d*d + d, LayerNorm 2d, FFN d*2d + 2d + 2d*d + d
    d = 4
    block = 4 * (d * d + d) + 2 * d + (d * 2 * d + 2 * d) + (2 * d * d + d)
    model = Stack(d=d, n=2)
    assert model.num_parameters() == d * d + 2 * block
    model.layers[0].requires_grad_(False)
    assert model.num_parameters(trainable_only=True) == d * d + block
    assert model.num_parameters() == d * d + 2 * block
    model.layers[0].requires_grad_()  # True by default: unfreeze, as PyTorch
    assert model.num_parameters(trainable_only=True) == d * d + 2 * block


# ------------------------------------------------------------------ modes and gradients
def test_train_eval_reach_every_submodule():
    model = Stack()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.layers[0].train()
    assert model.layers[0].ffn.dropout.training and not model.training


def test_zero_grad_forgets_or_zeroes():
    model = Stack()
    model(mt.randn(2, 3, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_apply_visits_children_before_parents():
    model = Stack(n=1)
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Stack" and seen.index("Linear") < seen.index("MultiHeadAttention")


def test_apply_visits_the_tree_in_pytorch_s_order():
    """apply went through the modules last-assigned first: a seeded re-initialisation drew the last layer's
    numbers first, and a print showed the tree backwards. PyTorch's order is depth first, children in the
    order of assignment, each before its parent; a shared module once."""
    shared = nn.Linear(2, 2)
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), shared), nn.Linear(2, 4), shared)
    names = {id(m): name for name, m in model.named_modules()}
    seen = []
    assert model.apply(lambda m: seen.append(names[id(m)])) is model
    assert seen == ["0.0", "0.1", "0", "1", ""]


# ------------------------------------------------------------------ state_dict
def test_state_dict_is_numpy_copies():
    model = Stack()
    state = model.state_dict()
    assert list(state) == [name for name, _ in model.named_parameters()]
    assert all(type(v) is np.ndarray for v in state.values())
    before = state["embed.weight"].copy()
    state["embed.weight"][...] = 7.0  # written in place: the model's array is another one
    np.testing.assert_array_equal(model.embed.weight.numpy(), before)
    state = model.state_dict()
    model.embed.weight.data = model.embed.weight.data * 0.0
    np.testing.assert_array_equal(state["embed.weight"], before)


def test_state_dict_round_trip_restores_outputs():
    mt.manual_seed(1)
    a = Stack()
    mt.manual_seed(2)
    b = Stack()
    x = mt.randn(2, 3, 4)
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    weights_before = b.embed.weight
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.embed.weight is weights_before  # loaded in place: an optimizer's references stay valid
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_state_dict_crosses_backends():
    """Weights saved on any backend load on NumPy, and back (a GPU model's weights load on a CPU)."""
    here = Stack()
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    expected = here(mt.tensor(x)).numpy()
    with mt.backend.use("numpy"):
        mt.manual_seed(5)
        cpu = Stack()
        cpu.load_state_dict(here.state_dict())
        np.testing.assert_allclose(cpu(mt.tensor(x)).numpy(), expected, rtol=1e-6, atol=1e-6)
        cpu.embed.weight.data = cpu.embed.weight.data + 1.0
        state = cpu.state_dict()
    here.load_state_dict(state)
    np.testing.assert_array_equal(here.embed.weight.numpy(), state["embed.weight"])
    assert here.embed.weight.backend is mt.backend.current()


def test_load_state_dict_lists_every_problem_and_changes_nothing():
    model = Stack(n=1)
    state = model.state_dict()
    del state["layers.0.norm.gamma"]
    state["layers.0.extra"] = np.zeros(3)
    state["embed.weight"] = np.zeros((4, 5), dtype=np.float32)
    target = Stack(n=1)
    before = {name: v.copy() for name, v in target.state_dict().items()}
    with pytest.raises(nn.StateDictError) as info:
        target.load_state_dict(state)
    message = str(info.value)
    assert "missing keys" in message and "'layers.0.norm.gamma'" in message
    assert "unexpected keys" in message and "'layers.0.extra'" in message
    assert "'embed.weight': the model expects shape (4, 4), the state has (4, 5)" in message
    assert "transposed" not in message  # (4, 5) is not (4, 4) turned
    assert "nothing was loaded" in message
    for name, v in target.state_dict().items():
        np.testing.assert_array_equal(v, before[name])


def test_load_state_dict_says_a_transposed_weight_is_torchs_and_what_loads_one():
    """torch's state dict given to load_state_dict: its Linear weights are (d_out, d_in), and the message said only
    that the shape is wrong; it now says why and what loads one, which gives torch's output."""
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(3, 5)
    ours = nn.Linear(3, 5)
    with pytest.raises(nn.StateDictError, match=r"'weight': the model expects shape \(3, 5\), the state has "
                                                r"\(5, 3\) \(transposed: torch's Linear keeps its weight as "
                                                r"\(d_out, d_in\); nn.convert.from_torch_state_dict loads a state "
                                                r"dict of torch's\)"):
        ours.load_state_dict(theirs.state_dict())
    nn.convert.from_torch_state_dict(ours, theirs.state_dict())
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    with torch.no_grad():
        np.testing.assert_allclose(ours(mt.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_load_state_dict_non_strict_reports_and_still_checks_shapes():
    model = Stack(n=1)
    state = model.state_dict()
    del state["layers.0.norm.gamma"]
    state["extra"] = np.zeros(1)
    result = Stack(n=1).load_state_dict(state, strict=False)
    assert result.missing_keys == ["layers.0.norm.gamma"] and result.unexpected_keys == ["extra"]
    state["embed.weight"] = np.zeros((1, 4))
    with pytest.raises(nn.StateDictError, match="wrong shapes"):
        Stack(n=1).load_state_dict(state, strict=False)
    with pytest.raises(TypeError, match="mapping of name -> array"):
        Stack(n=1).load_state_dict([1, 2])


def test_load_state_dict_names_the_key_of_a_value_it_cannot_convert_and_loads_nothing():
    lin = nn.Linear(2, 3)
    before = lin.state_dict()
    bad = {
        "weight": ([[1.0, 2.0, 3.0], [1.0, 2.0]], r"'weight': cannot be read as an array \(ValueError"),  # ragged
        "bias": (np.full(3, 1e300), r"'bias': the value 1e\+300 does not fit float32 \(it would load as inf\)"),
    }
    for key, (value, message) in bad.items():
        state = dict(before, **{key: value})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no RuntimeWarning from NumPy's cast either
            with pytest.raises(nn.StateDictError, match=message):
                lin.load_state_dict(state)
        for name, v in lin.state_dict().items():
            np.testing.assert_array_equal(v, before[name])  # all or nothing
    lin.load_state_dict(dict(before, bias=np.array([np.nan, np.inf, 1.0])))  # given as such: loaded as such
    np.testing.assert_array_equal(lin.bias.numpy(), [np.nan, np.inf, 1.0])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's __array__ predates NumPy 2's copy keyword
def test_load_state_dict_names_the_key_of_a_torch_tensor_that_requires_grad():
    torch = pytest.importorskip("torch")
    lin = nn.Linear(2, 3)
    state = dict(lin.state_dict(), weight=torch.zeros(2, 3, requires_grad=True))
    with pytest.raises(nn.StateDictError, match=r"'weight': cannot be read as an array \(RuntimeError"):
        lin.load_state_dict(state)


def test_load_state_dict_refuses_integers_or_bools_for_a_floating_tensor():
    """An integer or bool array was cast into a float weight in silence (a hand-edited or damaged state: the weights
    are floats); an integer buffer still takes integral floats (below)."""
    lin = nn.Linear(2, 3)
    before = lin.state_dict()
    for value in (np.zeros((2, 3), dtype=np.int64), np.ones((2, 3), dtype=bool), [[1, 2, 3], [4, 5, 6]]):
        with pytest.raises(nn.StateDictError, match=r"'weight': values of dtype (int64|bool) for a parameter of "
                                                    r"float32, which takes a floating array"):
            lin.load_state_dict(dict(before, weight=value))
        for name, v in lin.state_dict().items():
            np.testing.assert_array_equal(v, before[name])  # all or nothing


def test_load_state_dict_refuses_what_an_integer_buffer_cannot_hold():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("steps", mt.tensor([0, 0]))

    counter = Counter()
    for value in ([2.5, 1.0], [2.0**70, 1.0], [np.nan, 1.0]):
        with pytest.raises(nn.StateDictError, match="'steps': the value .* does not fit int64"):
            counter.load_state_dict({"steps": np.array(value)})
    counter.load_state_dict({"steps": np.array([3.0, 4.0])})
    assert counter.steps.tolist() == [3, 4] and counter.steps.dtype_name == "int64"


def test_load_casts_to_the_parameter_dtype():
    lin = nn.Linear(2, 2)
    state = {"weight": np.eye(2), "bias": np.array([1.0, 2.0])}  # float64 arrays into float32 parameters
    lin.load_state_dict(state)
    assert lin.weight.dtype_name == "float32"
    np.testing.assert_array_equal(lin.bias.numpy(), [1.0, 2.0])


# ------------------------------------------------------------------ buffers, to()
def test_buffers_move_but_non_persistent_ones_are_not_saved():
    pe = nn.SinusoidalPositionalEncoding(4, max_len=8)
    assert [name for name, _ in pe.named_buffers()] == ["PE"]
    assert list(pe.parameters()) == [] and pe.state_dict() == {}
    pe.to("float64")
    assert pe.PE.dtype_name == "float64"

    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("steps", mt.zeros(1))

    assert list(Counter().state_dict()) == ["steps"]
    counter = Counter()
    counter.register_buffer("table", mt.zeros(2), persistent=False)
    counter.table = nn.Parameter(mt.ones(2))  # a parameter now, in the name of a non-persistent buffer: saved
    assert list(counter.state_dict()) == ["table", "steps"]
    shared = nn.Module()  # one buffer in two modules: once, under its first name, as parameters
    shared.a, shared.b = Counter(), Counter()
    shared.b.steps = shared.a.steps
    assert [name for name, _ in shared.named_buffers()] == ["a.steps"] and len(list(shared.buffers())) == 1


def test_to_leaves_the_positional_table_exact_but_moves_it():
    """The sinusoidal PE table stays float64 through to(dtype), so a round trip through float32 does
    not round it for good; to(backend) still moves it."""
    model = nn.DecoderOnlyLM(10, 8, 2, 16, 1, max_len=50)
    pe = model.positional
    exact = pe.PE.numpy().copy()
    model.to("float32").to("float64")
    assert pe.PE.dtype_name == "float64" and model.embed.weight.dtype_name == "float64"
    np.testing.assert_array_equal(pe.PE.numpy(), exact)
    x = mt.zeros(1, 3, 8)  # float32: gets the table rounded once, where it is added
    np.testing.assert_array_equal(pe(x).numpy(), exact[:3].astype(np.float32)[None])
    model.to("numpy")
    assert pe.PE.backend.name == "numpy"
    np.testing.assert_array_equal(pe.PE.numpy(), exact)


def test_to_float64_casts_in_place_with_gradients():
    model = Stack()
    params = list(model.parameters())
    model(mt.randn(2, 3, 4)).sum().backward()
    assert model.to("float64") is model
    assert [p for p in model.parameters()] == params  # the same objects
    assert all(p.dtype_name == "float64" and p.grad.dtype_name == "float64" for p in params)
    out = model(mt.randn(2, 3, 4, dtype="float64"))
    assert out.dtype_name == "float64"


def test_to_rejects_bad_targets_before_changing_anything():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"Module.to: 'int64' is neither a backend .* nor a floating dtype"):
        model.to("float64", "int64")
    with pytest.raises(TypeError, match=r"Module.to: float16 is not supported: .*65504"):
        nn.LayerNorm(3).to("float16")
    assert model.weight.dtype_name == "float32"


@pytest.mark.single_backend
def test_to_moves_between_backends():
    """Made on NumPy, moved to array-api-strict (the stand-in for CuPy) with its gradients, and back: the same
    Tensor objects, the same values; to the backend they are on already, nothing changes. (A move, whichever
    backend the run makes current: on NumPy alone, ``to("numpy")`` would move nothing.)"""
    pytest.importorskip("array_api_strict")
    model = nn.Linear(3, 2)
    params = list(model.parameters())
    values = model.weight.numpy().copy()
    model(mt.ones(1, 3)).sum().backward()
    grad = model.weight.grad.numpy().copy()
    assert model.to("array_api_strict") is model and list(model.parameters()) == params
    assert {(p.backend.name, p.grad.backend.name) for p in params} == {("array_api_strict", "array_api_strict")}
    np.testing.assert_array_equal(model.weight.numpy(), values)
    np.testing.assert_array_equal(model.weight.grad.numpy(), grad)
    y = model(mt.tensor(np.ones((1, 3), dtype=np.float32), backend="array_api_strict"))
    assert y.backend.name == "array_api_strict"
    np.testing.assert_allclose(y.numpy(), np.ones((1, 3)) @ values + model.bias.numpy(), rtol=1e-6)
    data = model.weight.data
    model.to("array_api_strict")
    assert model.weight.data is data  # already there: not copied again
    model.to("numpy")
    assert model.weight.backend.name == "numpy" and type(model.weight.data) is np.ndarray
    np.testing.assert_array_equal(model.weight.numpy(), values)


@pytest.mark.single_backend
def test_state_dict_is_numpy_and_load_state_dict_reads_arrays_of_any_backend():
    """A model on another backend (a GPU's) saves NumPy arrays a CPU can load, and loads arrays of its own backend."""
    pytest.importorskip("array_api_strict")
    model = nn.Linear(3, 2).to("array_api_strict")
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    np.testing.assert_array_equal(state["weight"], model.weight.numpy())
    strict = mt.backend.get("array_api_strict")
    other = nn.Linear(3, 2)
    other.load_state_dict({k: strict.asarray(v + 1) for k, v in state.items()})
    np.testing.assert_array_equal(other.weight.numpy(), state["weight"] + 1)
    assert type(other.weight.data) is np.ndarray


# ------------------------------------------------------------------ copying, pickling
def test_deepcopy_gives_an_independent_model_on_the_same_backend(backend):
    """What a training loop does to keep its best weights: the copy shares no array, gradient or graph."""
    model = nn.Transformer(12, 12, 8, 2, 16, 1, 1, max_len=8, share_embeddings=True)
    src, tgt = mt.tensor([[3, 4, 5]]), mt.tensor([[1, 2, 3]])
    model(src, tgt).sum().backward()
    loss = model(src, tgt).sum()  # a graph alive while copying
    best = copy.deepcopy(model)
    assert type(best) is nn.Transformer and best.src_embed is best.tgt_embed  # tied stays tied
    for (name, p), (name_copy, q) in zip(model.named_parameters(), best.named_parameters(), strict=True):
        assert name == name_copy and type(q) is nn.Parameter and q.requires_grad and q.is_leaf
        assert q is not p and q.data is not p.data and q.backend is p.backend is backend
        assert q.grad is not p.grad and q.grad.backend is backend
        np.testing.assert_array_equal(q.numpy(), p.numpy())
        np.testing.assert_array_equal(q.grad.numpy(), p.grad.numpy())
    kept = best.state_dict()
    grads = [q.grad.numpy().copy() for q in best.parameters()]
    loss.backward()  # the original's graph reaches only the original
    mt.optim.SGD(model.parameters(), lr=0.1).step()
    for p in model.parameters():  # and in place, into the original's arrays
        p.data[...] = p.data * 2.0
    for name, value in best.state_dict().items():
        np.testing.assert_array_equal(value, kept[name])
    for q, g in zip(best.parameters(), grads, strict=True):
        np.testing.assert_array_equal(q.grad.numpy(), g)
    assert best.positional.PE.backend is backend and best(src, tgt).shape == (1, 3, 12)


def test_copy_copy_shares_the_parameters():
    model = Stack()
    shallow = copy.copy(model)
    assert shallow is not model and shallow.layers is model.layers and shallow.embed.weight is model.embed.weight


@pytest.mark.parametrize("make", [lambda: nn.Linear(2, 2), lambda: nn.Dropout(0.1), lambda: mt.tensor([1.0]),
                                  lambda: mt.backend.current(), lambda: mt.optim.Adam(nn.Linear(2, 2).parameters())],
                         ids=["Linear", "Dropout", "Tensor", "Backend", "Adam"])
def test_pickle_is_refused_with_what_to_use_instead(make):
    with pytest.raises(TypeError, match=r"cannot pickle a \w+: minitransformer writes no pickles .* "
                                        r"model.state_dict\(\).*save_checkpoint"):
        pickle.dumps(make())


# ------------------------------------------------------------------ containers, repr
def test_module_list_indexing():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Dropout(0.1)])
    layers.append(nn.LayerNorm(2))
    assert len(layers) == 3 and isinstance(layers[-1], nn.LayerNorm)
    assert layers[-3] is layers[0]  # -len is the first, as a list
    with pytest.raises(IndexError, match="index -4 is out of range for 3 modules"):
        layers[-4]
    assert isinstance(layers[1:], nn.ModuleList) and len(layers[1:]) == 2
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        layers[3]
    layers[0] = nn.Linear(2, 2, bias=False)
    assert [name for name, _ in layers.named_parameters()] == ["0.weight", "2.gamma", "2.beta"]
    with pytest.raises(NotImplementedError, match="loop over it"):
        layers(mt.zeros(2))


def test_module_dict_registers_its_modules_under_their_keys():
    """A dict of modules was refused with nothing to hold it in: ``nn.ModuleDict`` registers each under its key, so
    parameters(), state_dict(), to() and train()/eval() reach them, as they reach a ModuleList's."""
    heads = nn.ModuleDict({"b": nn.Linear(2, 3), "a": nn.Dropout(0.5)})
    heads["c"] = nn.Linear(2, 1, bias=False)
    assert list(heads) == list(heads.keys()) == ["b", "a", "c"] and len(heads) == 3 and "a" in heads
    assert [type(m).__name__ for m in heads.values()] == ["Linear", "Dropout", "Linear"]
    assert dict(heads.items())["c"] is heads["c"]
    assert list(heads.state_dict()) == ["b.weight", "b.bias", "c.weight"]
    assert len(list(heads.parameters())) == 3
    heads.eval()
    assert not heads["a"].training and not heads["b"].training
    heads.to("float64")
    assert {p.dtype_name for p in heads.parameters()} == {"float64"}
    twin = nn.ModuleDict([("b", nn.Linear(2, 3)), ("a", nn.Dropout(0.5)), ("c", nn.Linear(2, 1, bias=False))])
    twin.load_state_dict(heads.state_dict())  # in float32 (cast) from float64: the same numbers
    np.testing.assert_allclose(twin["b"].weight.numpy(), heads["b"].weight.numpy(), rtol=1e-6)
    heads["b"] = nn.Linear(2, 4)  # replaced in its place
    assert list(heads) == ["b", "a", "c"] and heads["b"].d_out == 4
    del heads["a"]
    assert list(heads) == ["b", "c"]
    head = heads["c"]
    assert heads.pop("c") is head and list(heads) == ["b"] and list(heads.state_dict()) == ["b.weight", "b.bias"]
    with pytest.raises(KeyError, match=r"ModuleDict: no module 'c'; the keys are \['b'\]"):
        heads.pop("c")
    heads["c"] = head
    with pytest.raises(KeyError, match=r"ModuleDict: no module 'z'; the keys are \['b', 'c'\]"):
        heads["z"]
    with pytest.raises(KeyError, match=r'ModuleDict: a module name cannot contain ".", got "x.y"'):
        heads["x.y"] = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"^ModuleDict: key 'd' is not a Module \(got int\)$"):
        heads["d"] = 3
    with pytest.raises(NotImplementedError, match=r"call one of its modules"):
        heads(mt.zeros(2))
    heads.clear()
    assert len(heads) == 0 and list(heads.parameters()) == [] and heads.state_dict() == {}

    class TwoTasks(nn.Module):  # inside a model of one's own: its weights are the model's
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"x": nn.Linear(2, 2)})

    assert list(TwoTasks().state_dict()) == ["heads.x.weight", "heads.x.bias"]


def test_module_dict_takes_a_module_dict_and_views_and_refuses_what_is_not_a_pair():
    """``ModuleDict(other)`` and ``update(other)`` failed unpacking the keys' letters, a list of modules with
    Python's unpacking error, and ``keys()`` was a one-shot iterator without ``len``: as torch's, a ModuleDict
    is taken whole, the views are ``dict``'s, and a bad item is named."""
    first = nn.ModuleDict({"xy": nn.Linear(2, 2), "z": nn.Linear(2, 3)})
    copy = nn.ModuleDict(first)
    assert list(copy) == ["xy", "z"] and copy["z"] is first["z"]
    assert list(nn.ModuleDict({"a": nn.Identity()}).update(first)) == ["a", "xy", "z"]
    keys, values, items = first.keys(), first.values(), first.items()
    assert len(keys) == len(values) == len(items) == 2 and list(keys) == list(keys) == ["xy", "z"]
    first["w"] = nn.Identity()  # a view follows the dict
    assert list(keys) == ["xy", "z", "w"] and ("w", first["w"]) in items and first["w"] in values
    pair = r"; pass a dict \{key: module\} or \(key, module\) pairs"
    with pytest.raises(TypeError, match=rf"^ModuleDict: item 0 \(Linear\) is not a \(key, module\) pair{pair}$"):
        nn.ModuleDict([nn.Linear(2, 2)])
    with pytest.raises(TypeError, match=rf"^ModuleDict: item 1 \(tuple\) is not a \(key, module\) pair{pair}$"):
        first.update([("a", nn.Identity()), ("b", nn.Identity(), "c")])
    with pytest.raises(TypeError, match=r"^ModuleDict: item 1, key 'b', is not a Module \(got int\)$"):
        nn.ModuleDict({"a": nn.Identity(), "b": 3})
    # every pair is checked before any is registered: a refused update leaves the ModuleDict as it was
    before = list(first.items())
    for bad, error in ((3, TypeError), (None, KeyError), (nn.Sequential(first), ValueError)):
        with pytest.raises(error):
            first.update([("b", nn.Identity()), ("c.d" if bad is None else "c", bad)])
        assert list(first.items()) == before
    for whole in (nn.Linear(2, 2), "ab", 3, nn.ModuleList([nn.Identity()])):
        with pytest.raises(TypeError, match=rf"^ModuleDict: takes a dict .* got {type(whole).__name__}$"):
            nn.ModuleDict(whole)


@pytest.mark.parametrize("name, taken", [
    ("keys", "a method of ModuleDict"), ("forward", "a method of ModuleDict"), ("to", "a method of ModuleDict"),
    ("_modules", "the state every module keeps"), ("training", "the state every module keeps"),
])
def test_a_name_a_module_has_already_is_refused(name, taken):
    """Key "_modules" broke the ModuleDict, "training" stood for the Linear until eval(), "keys" was reachable only
    through []: a name the module already has is refused. Torch refuses it in ``add_module`` and ``register_*``
    only and lets ``self.name = layer`` register a layer its class hides; here every path refuses it, and says what
    the name is: a method, a property, or a class-level default (``act = nn.ReLU()`` then ``self.act =
    nn.GELU()``: ``self.act`` still reads the ReLU, in torch too), which is no method."""
    heads = nn.ModuleDict({"a": nn.Identity()})
    start = rf'^\'ModuleDict: attribute "{name}" already exists \({taken}\); give the'
    with pytest.raises(KeyError, match=rf"{start} module another name\'$"):
        heads[name] = nn.Linear(2, 2)
    with pytest.raises(KeyError, match=start):
        heads.register_parameter(name, nn.Parameter(mt.zeros(2)))
    assert list(heads) == ["a"] and heads.training is True and callable(heads.keys)

    class Model(nn.Module):  # a layer named like a method or property of one's own class is refused too
        act = nn.ReLU()  # class-level defaults, which self.act / self.norm would still read
        norm = nn.GELU

        def __init__(self, name):
            super().__init__()
            setattr(self, name, nn.Linear(2, 2))

        def encode(self, x):
            return x

        @property
        def width(self):
            return 2

    for name, what in (("encode", "a method"), ("width", "a property"), ("act", "a class attribute"),
                       ("norm", "a class attribute")):
        with pytest.raises(KeyError, match=rf'attribute "{name}" already exists \({what} of Model'):
            Model(name)
    with pytest.raises(KeyError, match=r'\(a class attribute of Model, which self.act would still read, not the'):
        Model("act")
    assert list(Model("head").state_dict()) == ["head.weight", "head.bias"]


@pytest.mark.parametrize("name, formula", [
    ("ReLU", lambda x: np.maximum(x, 0.0)),
    ("GELU", lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    ("Identity", lambda x: x),
])
def test_activation_modules_are_their_functions_as_steps_of_sequential(name, formula):
    """``nn.Sequential(nn.Linear(...), nn.ReLU(), ...)``: the torch habit of an MLP, each a module calling its
    formula, with no parameters."""
    layer = getattr(nn, name)()
    x = mt.tensor([[-2.0, -0.5, 0.0, 0.5, 3.0]], requires_grad=True)
    np.testing.assert_allclose(layer(x).numpy(), formula(x.numpy()), rtol=1e-6)
    assert list(layer.parameters()) == [] and repr(layer) == f"{name}()"
    mlp = nn.Sequential(nn.Linear(5, 4), layer, nn.Linear(4, 2))
    mlp(x).sum().backward()
    assert x.grad is not None and x.grad.shape == (1, 5)
    assert nn.Identity()(x) is x


def test_sequential_composes(to_numpy):
    first, second = nn.Linear(3, 4), nn.Linear(4, 2)
    seq = nn.Sequential(first, second)
    x = mt.randn(5, 3)
    W1, b1, W2, b2 = (to_numpy(t) for t in (first.weight, first.bias, second.weight, second.bias))
    expected = (to_numpy(x) @ W1 + b1) @ W2 + b2
    np.testing.assert_allclose(to_numpy(seq(x)), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(seq[:1], nn.Sequential) and seq[:1][0] is first


def test_repr_is_a_tree_with_parameter_counts():
    text = repr(nn.MultiHeadAttention(8, 2))
    lines = text.splitlines()
    assert lines[0] == "MultiHeadAttention("
    assert "  d_model=8, heads=2, d_k=4, dropout=0.0, literal=False" in lines
    per_projection = 8 * 8 + 8
    assert f"  (W_Q): Linear(d_in=8, d_out=8, bias=True)  # {per_projection} parameters" in lines
    assert lines[-1] == f")  # {4 * per_projection} parameters"
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1)"
    nested = repr(Stack(n=1)).splitlines()
    assert "  (layers): ModuleList(" in nested and "    (0): Block(" in nested


def _counts_on_its_lines(text: str) -> tuple[int, int]:
    """``(the sum of the counts on the lines of a repr's children, the count on its last line)``: its children's lines
    are those indented by two spaces (a child's one line, or the first and last of a child shown on several)."""
    counts = [int(c.replace(",", "")) for line in text.splitlines()[1:-1] if re.match(r"  [^ ]", line)
              for c in re.findall(r"# ([\d,]+) parameters", line)]
    return sum(counts), int(re.search(r"# ([\d,]+) parameters", text.splitlines()[-1])[1].replace(",", ""))


def test_repr_of_a_model_counts_each_parameter_once_and_says_what_is_shared_or_tied():
    """print(model) hid what changes a model's structure: the tied output had no line and nothing said the logits use
    the embedding's weight; a shared tgt_embed was a second full module with its count, so the lines added to 5,920 of
    5,744; the classifier's cls Parameter had no line (2,417 of 2,433). The counts on a module's lines add up to its
    total, everywhere in the tree, a module in two places is shown once and its own parameters are lines."""
    shared = nn.Transformer(11, 11, d_model=16, heads=4, d_ff=32, num_encoder_layers=1, num_decoder_layers=1,
                            share_embeddings=True, tie_output=True)
    lines = repr(shared).splitlines()
    assert lines[1] == "  share_embeddings=True, tie_output=True: logits = x @ tgt_embed.weight^T, no output layer"
    assert "  (tgt_embed): the same module as src_embed" in lines and repr(shared).count("Embedding(") == 1
    assert not any("(output)" in line for line in lines)
    cls = nn.TransformerClassifier(11, d_model=16, heads=4, d_ff=32, pooling="cls")
    assert "  pooling='cls', pad_id=0" in repr(cls).splitlines()
    assert "  (cls): Parameter(shape=(16,), dtype=float32)  # 16 parameters" in repr(cls).splitlines()
    lm = nn.DecoderOnlyLM(11, d_model=16, heads=4, d_ff=32, num_layers=1, max_len=8, positional="learned",
                          tie_output=True)
    assert repr(lm).splitlines()[1] == ("  positional='learned', tie_output=True: logits = x @ embed.weight^T, "
                                        "no output layer")
    untied = nn.Transformer(11, 13, d_model=16, heads=4, d_ff=32, num_encoder_layers=1, num_decoder_layers=1)
    assert repr(untied).splitlines()[1] == "  share_embeddings=False"
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight  # one Parameter in two layers: counted in the first, named in the second
    tied = nn.Sequential(first, second, first)
    assert repr(tied).splitlines()[1:] == [
        "  (0): Linear(d_in=4, d_out=4, bias=True)  # 20 parameters",
        "  (1): Linear(d_in=4, d_out=4, bias=True)  # 4 parameters; weight is 0.weight",
        "  (2): the same module as 0",
        ")  # 24 parameters"]
    for model in (shared, cls, lm, untied, tied, Stack()):
        assert _counts_on_its_lines(repr(model)) == (model.num_parameters(),) * 2, repr(model)
        for module in model.modules():  # every module of the tree, shown on its own
            if list(module.children()) and module.num_parameters():
                assert _counts_on_its_lines(repr(module)) == (module.num_parameters(),) * 2, repr(module)


def test_evaluating_turns_dropout_and_the_graph_off_and_puts_the_mode_back_even_after_an_error():
    """One helper for every 'measure or run a trained model' site: decoding, held-out metrics, predict_proba."""
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    x = mt.ones(2, 3, requires_grad=True)
    with nn.evaluating(model) as m:
        assert m is model and not model.training and not any(c.training for c in model.modules())
        assert not model(x).requires_grad  # no graph
    assert model.training and all(c.training for c in model.modules())
    model.eval()
    with pytest.raises(RuntimeError, match="inside"), nn.evaluating(model):
        raise RuntimeError("inside")
    assert not model.training  # an eval-mode model stays in eval mode
    model.train()
    with pytest.raises(RuntimeError, match="inside"), nn.evaluating(model):
        raise RuntimeError("inside")
    assert model.training


def test_evaluating_puts_back_each_modules_own_mode():
    """A part kept in evaluation mode (a frozen encoder) was put back in training mode after decoding, a metric or
    predict_proba: evaluating restored the top module's flag to every module, and the part's dropout came back on."""
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)), nn.Dropout(0.5))
    model.train()
    model[0].eval()  # the frozen part
    before = [m.training for m in model.modules()]
    assert before == [True, False, False, False, True]
    with nn.evaluating(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before


def test_evaluating_blocks_that_overlap_in_two_threads_keep_evaluation_mode_until_the_last_ends():
    """Two requests of a server decoding with one model, the first ending first: its exit put the modes back while the
    second was still decoding (dropout on inside it), and the second's exit then left the model in eval mode for good.
    The second request here evaluates a part of the model, which its own count keeps in eval mode as well."""
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)), nn.Dropout(0.5))
    model.train()
    model[0][0].eval()  # a frozen part
    before = [m.training for m in model.modules()]
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with nn.evaluating(model):
            first_in.set()
            second_in.wait()
        first_out.set()

    def second():
        first_in.wait()
        with nn.evaluating(model[0]):
            second_in.set()
            first_out.wait()
            seen["inside"] = [m.training for m in model.modules()]
            seen["output"] = model[0](mt.ones(2, 3)).numpy()
        seen["after"] = [m.training for m in model.modules()]

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["inside"] == [True, False, False, False, True]  # the part the second block holds: still eval
    np.testing.assert_array_equal(seen["output"], model[0][0](mt.ones(2, 3)).detach().numpy())  # no dropout
    assert seen["after"] == before
    # and blocks in one thread that end in the other order: the modes come back; grad mode follows no_grad's rule
    # (each exit restores what its entry saw, so it is left off, as torch.no_grad's blocks would leave it), which
    # enable_grad's exit puts back
    with mt.enable_grad():
        with nn.evaluating(model):
            inner = nn.evaluating(model)
            inner.__enter__()
        assert not any(m.training for m in model.modules())
        inner.__exit__(None, None, None)
        assert [m.training for m in model.modules()] == before


@pytest.mark.parametrize("mode", ["no", 0, None])
def test_train_takes_a_bool_as_pytorch_does(mode):
    """train("no") switched training on (a non-empty string is truthy)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)).eval()
    with pytest.raises(ValueError, match=r"Sequential.train: mode must be True or False, got"):
        model.train(mode)
    assert not model.training


def test_a_state_that_records_its_modules_classes_is_refused_by_a_model_whose_modules_differ():
    from minitransformer.nn.module import ClassedState, StateDictError, module_classes

    saved = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1))
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential())
    state = ClassedState(saved.state_dict(), module_classes(saved))
    with pytest.raises(StateDictError, match=r"nothing was loaded.\n  its module '1' is a Dropout in the model the "
                                             r"state was saved from, a Sequential here"):
        model.load_state_dict(state)
    model.load_state_dict(state, strict=False)  # regardless, on purpose
    model.load_state_dict(dict(state))  # a plain dict records no classes
    nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).load_state_dict(state)  # the same classes: loads
