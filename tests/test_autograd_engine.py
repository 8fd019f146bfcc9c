"""The backward pass as a whole, and the switches around it.

Gradients add up where a tensor is used twice; ``.grad`` accumulates over calls; the graph is
freed after ``backward()`` (a second pass needs ``retain_graph=True``, and says so); a chain of
100,000 operations works (no recursion); ``no_grad``/``enable_grad``; ``detect_anomaly`` names the
operation that made a NaN; the backend setting; seeding; moving tensors between backends and dtypes.
"""

from __future__ import annotations

import contextvars
import copy
import gc
import os
import subprocess
import sys
import threading
import warnings
import weakref

import numpy as np
import pytest

import minitransformer as mt


def t64(values, requires_grad=True):
    return mt.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def other_backend() -> str:
    return "array_api_strict" if mt.backend.current().name == "numpy" else "numpy"


# ------------------------------------------------------------------ accumulation
def test_node_used_twice_gets_both_gradients():
    x = t64([1.0, -2.0, 3.0])
    (x * x).sum().backward()  # d/dx x^2 = 2x: both operands of the product send x back
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])


def test_tensor_used_three_times():
    x = t64([0.5, 2.0])
    (x + x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_diamond_graph():
    # a = 2x feeds two branches, b = e^a and c = tanh a, joined by y = sum(b c):
    # dy/dx = 2 (e^a tanh a + e^a (1 - tanh^2 a))
    values = np.array([-0.5, 0.1, 0.7])
    x = t64(values)
    a = x * 2.0
    (a.exp() * a.tanh()).sum().backward()
    ea, ta = np.exp(2 * values), np.tanh(2 * values)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (ea * ta + ea * (1 - ta**2)), rtol=1e-12)


def test_intermediate_used_by_two_later_operations():
    # h = x^2 used by h*3 and h.exp(): dy/dx = (3 + e^h) 2x
    values = np.array([0.3, -1.2])
    x = t64(values)
    h = x * x
    (h * 3.0 + h.exp()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (3 + np.exp(values**2)) * 2 * values, rtol=1e-12)


def test_paths_of_different_lengths():
    # h reaches the output directly and through a longer path, h.sum() (softmax e / e.sum() has this
    # shape); h must send its gradient back only once both have arrived.
    # L = sum_i h_i S (+ tanh(tanh(h_0)) below) with S = sum_j h_j, h = x^2:
    # dL/dh_k = S + sum_i h_i (+ [k = 0] tanh'(tanh h_0) tanh'(h_0)); dL/dx_k = dL/dh_k 2 x_k
    values = np.array([1.0, 2.0])
    x = t64(values)
    h = x * x
    (h * h.sum()).sum().backward()  # dL/dx_k = 2 S 2 x_k = 4 S x_k with S = 1 + 4 = 5
    np.testing.assert_allclose(x.grad.numpy(), 4 * 5 * values, rtol=1e-12)
    x.grad = None
    h = x * x
    ((h * h.sum()).sum() + h[0].tanh().tanh()).backward()
    h_np = values**2
    dh = np.full(2, 2 * h_np.sum())
    dh[0] += (1 - np.tanh(np.tanh(h_np[0])) ** 2) * (1 - np.tanh(h_np[0]) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), dh * 2 * values, rtol=1e-12)


def _random_graph(lib, leaves, rng_ops):
    """A random expression over ``leaves`` where every new node may reuse any earlier one.

    ``rng_ops`` is a list of (op, i, j) drawn beforehand so the same graph is built with both libraries."""
    nodes = list(leaves)
    for op, i, j in rng_ops:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if op == 0:
            nodes.append(a + b)
        elif op == 1:
            nodes.append(a * b)
        elif op == 2:
            nodes.append(a.tanh())
        elif op == 3:
            nodes.append(a - b.sum() * 0.1)  # broadcasts a reduction back: a longer path
        else:
            nodes.append((a * 0.5).exp())
    return sum(n.sum() for n in nodes[len(leaves):])


def test_random_graphs_with_reuse_match_torch():
    """Random DAGs where nodes are reused along paths of all lengths: gradients as PyTorch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for _ in range(20):
        arrays = [rng.standard_normal(3) * 0.5 for _ in range(2)]
        ops = [(int(rng.integers(5)), int(rng.integers(100)), int(rng.integers(100))) for _ in range(10)]
        xs = [t64(a) for a in arrays]
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        _random_graph(mt, xs, ops).backward()
        _random_graph(torch, ts, ops).backward()
        for x, t in zip(xs, ts):
            if t.grad is None:  # a leaf the random graph never used
                assert x.grad is None
            else:
                np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def _broadcast_graph(rng):
    """A random graph over leaves of shapes that broadcast together, (3,), (2, 3), (2, 1), with nodes reused,
    views, a matrix product, a lookup with repeated ids, max, where and maximum."""
    leaves = [t64(rng.standard_normal(shape) * 0.5) for shape in [(3,), (2, 3), (2, 1)]]
    nodes = list(leaves)
    for _ in range(12):
        a, b = (nodes[int(i)] for i in rng.integers(len(nodes), size=2))
        op = int(rng.integers(9))
        if op == 0:
            nodes.append(a + b)  # broadcast: (3,) + (2, 1) is (2, 3)
        elif op == 1:
            nodes.append(a * b)
        elif op == 2:
            nodes.append(a.tanh() - b.mean())
        elif op == 3:
            nodes.append(mt.where(a > 0.0, a, b * 2.0))
        elif op == 4:
            nodes.append(mt.maximum(a, b))
        elif op == 5 and a.ndim == 2:
            nodes.append((a @ a.T) @ a)  # a used three times, twice in one operation; a's shape again
        elif op == 6 and a.ndim == 2:
            nodes.append(a.max(axis=1, keepdims=True) + a[:, ::-1])
        elif op == 7 and a.ndim == 2:
            nodes.append(mt.take(a, [1, 1], axis=0) * a)  # row 1 looked up twice
        else:
            nodes.append((a * 0.5).exp())
    return sum(n.sum() for n in nodes[len(leaves):]), leaves


def test_the_reference_backward_loop_agrees_with_the_engine():
    """``_run_backward_reference`` (the plain loop) and ``_run_backward`` (what ``backward()`` runs) give the same
    gradient to every leaf: on nodes used twice, broadcast inputs, views, and random graphs mixing them."""
    from minitransformer.autograd.engine import _run_backward_reference

    x, y = t64([0.5, -1.0, 2.0]), t64([[1.5], [-0.5]])
    hand_made = [
        lambda: ((x * x + x), [x]),  # x used three times
        lambda: ((x + y) * (x - y), [x, y]),  # (3,) and (2, 1) broadcast to (2, 3)
        lambda: ((x * 2.0).exp() / (x * 2.0).exp().sum(), [x]),  # softmax's shape: paths of different lengths
        lambda: (x, [x]),  # backward from a leaf
    ]
    rng = np.random.default_rng(0)
    graphs = hand_made + [lambda: _broadcast_graph(rng) for _ in range(30)]
    for make in graphs:
        root, leaves = make()
        for leaf in leaves:
            leaf.grad = None
        seed = np.ones(root.shape)
        reference = {k: np.array(mt.Tensor(g).numpy(), copy=True)
                     for k, g in _run_backward_reference(root, root.backend.asarray(seed)).items()}
        root.backward(mt.tensor(seed))
        for leaf in leaves:
            if leaf.grad is None:  # a leaf the graph does not use
                assert id(leaf) not in reference
            else:
                np.testing.assert_allclose(reference[id(leaf)], leaf.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_leaf_grad_accumulates_over_backward_calls():
    x = t64([1.0, 2.0])
    (x * x).sum().backward()  # 2x
    (x * 3.0).sum().backward()  # + 3
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0])
    x.grad = None  # how an optimizer's zero_grad starts afresh
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_first_grad_is_a_copy():
    """Two leaves given the same incoming array must not share it: a later += would reach both."""
    a, b = t64([1.0, 2.0]), t64([3.0, 4.0])
    (a + b).sum().backward()
    a.grad.data += 1.0
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])


def test_a_grad_given_to_backward_is_copied_not_added_into():
    """The seed of backward() is the user's array: the first .grad (of a leaf, of a retained intermediate) is a
    copy of it, so the next backward's += leaves it as it was."""
    x = t64([1.0, 2.0])
    g = t64([1.0, -1.0], requires_grad=False)
    x.backward(g)
    x.backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -2.0])
    np.testing.assert_array_equal(g.numpy(), [1.0, -1.0])
    h = x * 3.0
    h.retain_grad()
    h.backward(g, retain_graph=True)
    h.backward(g)
    np.testing.assert_array_equal(h.grad.numpy(), [2.0, -2.0])
    np.testing.assert_array_equal(g.numpy(), [1.0, -1.0])


def test_a_bare_array_is_refused_even_when_its_length_is_the_number_of_inputs():
    """backward must return a tuple: an array of shape (1,) for one input has the right len() but is one
    gradient, not a tuple of them (its rows would be read as the gradients)."""

    class Bare(mt.Function):
        def forward(self, x):
            return x * 2.0

        def backward(self, grad):
            return grad * 2.0

    x = t64([3.0])
    with pytest.raises(TypeError, match=r"Bare\.backward must return a tuple of 1 gradient, one per input, got an "
                                        r"array of shape \(1,\)"):
        Bare.apply(x).sum().backward()


def test_an_array_librarys_error_inside_forward_or_backward_names_the_operation_and_its_shapes():
    """A mistake in a student's forward or backward (a product of the wrong shapes) raises NumPy's error, which names
    no operation ("matmul: Input operand 1 has a mismatch in its core dimension 0"): a note says which one it was in."""

    class Untransposed(mt.Function):
        def forward(self, a, b):
            self.a, self.b = a, b
            return self.xp.matmul(a, b)

        def backward(self, grad):  # B, not B^T: (2, 4) @ (3, 4)
            return self.xp.matmul(grad, self.b), self.xp.matmul(self.xp.matrix_transpose(self.a), grad)

    a, b = t64(np.ones((2, 3))), t64(np.ones((3, 4)))
    with pytest.raises(ValueError) as caught:
        Untransposed.apply(a, b).sum().backward()
    assert caught.value.__notes__ == ["(in Untransposed.backward: inputs of shapes (2, 3), (3, 4), ybar (2, 4))"]
    with pytest.raises(ValueError) as caught:
        Untransposed.apply(b, a)
    assert caught.value.__notes__ == ["(in Untransposed.forward: inputs of shapes (3, 4), (2, 3))"]
    with pytest.raises(ValueError) as caught:  # only the innermost operation's: a composition notes the one that failed
        mt.tensor(1.0) + Untransposed.apply(b, a)
    assert len(caught.value.__notes__) == 1


def test_a_backward_writing_into_a_read_only_ybar_is_told_to_compute_into_a_new_array():
    """``grad *= y`` in a backward: Sum's ybar is a broadcast view, read-only, and NumPy's "output array is read-only"
    names no operation; the note names it and the fix (test_backward_leaves_ybar_... says it too, where it runs).
    CuPy's arrays have no read-only flag: there the write goes through, and only that other test sees it."""
    if mt.backend.current().name == "cupy":
        pytest.skip("CuPy has no read-only arrays: a broadcast view takes the write")

    class InPlaceExp(mt.Function):
        def forward(self, x):
            self.y = self.xp.exp(x)
            return self.y

        def backward(self, grad):
            grad *= self.y
            return (grad,)

    with pytest.raises(ValueError, match="read-only") as caught:
        InPlaceExp.apply(t64(np.ones((2, 3)))).sum().backward()
    assert caught.value.__notes__ == ["(in InPlaceExp.backward: inputs of shapes (2, 3), ybar (2, 3); compute into a "
                                      "new array (grad * y, not grad *= y): ybar may be a read-only broadcast view)"]


def test_an_unbroadcast_that_leaves_the_wrong_shape_is_named(monkeypatch):
    """unbroadcast is A1's to write: one that sums only the added leading axes left (2, 1)'s gradient as (4, 2, 3) ->
    (2, 3), and the error came from a later product, naming neither it nor the input."""
    from minitransformer.autograd import engine

    monkeypatch.setattr(engine, "unbroadcast", lambda xp, grad, shape, op: xp.sum(grad, axis=0))
    a, b = mt.tensor(np.ones((4, 1, 3))), t64(np.ones((2, 1)))  # only b wants a gradient
    with pytest.raises(ValueError, match=r"^Mul\.backward, input 1: unbroadcast summed a gradient of shape \(4, 2, 3\) "
                                         r"to \(2, 3\), not to the input's shape \(2, 1\)"):
        (a * b).sum().backward()


def test_backward_with_explicit_grad():
    x = t64([[1.0, 2.0], [3.0, 4.0]])
    y = x * 2.0
    y.backward(t64([[1.0, 0.0], [0.5, -1.0]], requires_grad=False))
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 0.0], [1.0, -2.0]])


def test_backward_on_a_leaf_seeds_its_grad():
    x = t64(2.0)
    x.backward()
    assert x.grad.item() == 1.0


def test_no_grad_flows_into_constants():
    x, c = t64([1.0, 2.0]), t64([3.0, 4.0], requires_grad=False)
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


# ------------------------------------------------------------------ the graph: kept, freed
def test_second_backward_without_retain_graph_is_a_clear_error():
    x = t64([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"graph through Sum .* was freed .*retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])  # no partial gradient was added


def test_backward_through_a_freed_intermediate_is_refused():
    x = t64([1.0, 2.0])
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match=r"graph through Mul .*\(2,\).* was freed"):
        (h * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_retain_graph_allows_a_second_backward():
    x = t64([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])  # 2x, twice
    with pytest.raises(RuntimeError, match="freed"):
        y.backward()  # the second call did not retain it


def test_graph_is_freed_after_backward():
    x = t64([1.0, 2.0])
    h = x.exp()
    y = (h * 2.0).sum()
    saved = weakref.ref(h.grad_fn)  # the Exp step, which holds e^x for backward
    y.backward()
    gc.collect()
    assert saved() is None
    assert not h.is_leaf and not y.is_leaf  # still results of operations, not leaves


def test_graph_is_kept_with_retain_graph():
    x = t64([1.0, 2.0])
    h = x.exp()
    saved = weakref.ref(h.grad_fn)
    (h * 2.0).sum().backward(retain_graph=True)
    gc.collect()
    assert saved() is not None


def test_the_stand_in_of_an_intermediate_says_values_freed_only_once_its_tensor_is_gone():
    # the graph's inputs hold a stand-in for each result of an operation, never its values: it said "values freed"
    # even while the tensor was alive, holding them
    x = t64([1.0, 2.0])
    h = x.exp()
    h.name = "h"
    y = h * 2.0
    (node, _), unnamed = y.grad_fn.inputs, (x * 3.0 + 1.0).grad_fn.inputs[0]
    assert node is not h and repr(node) == ("Tensor(shape=(2,), dtype=float64, a stand-in for the live tensor 'h'; "
                                            "made by Exp)")
    assert repr(unnamed).startswith("Tensor(shape=(2,), dtype=float64, values freed; made by Mul")  # x * 3.0: gone
    kept = x * 3.0
    assert "a stand-in for the live tensor; made by Mul" in repr((kept + 1.0).grad_fn.inputs[0])
    del h
    gc.collect()
    assert repr(node) == "Tensor(shape=(2,), dtype=float64, values freed; made by Exp)"


@pytest.mark.single_backend  # recursion depth does not depend on the array library
def test_chain_of_100000_operations():
    x = t64(1.0)
    z = x
    for _ in range(100_000):
        z = z * 1.00001
    z.backward()  # d/dx (1.00001^n x) = 1.00001^n
    assert x.grad.item() == pytest.approx(1.00001**100_000, rel=1e-9)
    z = x
    for _ in range(100_000):
        z = z + 1.0
    del z  # an unused long graph is released without recursion trouble too


# ------------------------------------------------------------------ retain_grad
def test_retain_grad_on_intermediates():
    values = np.array([1.0, -2.0])
    x = t64(values)
    h = (x * 2.0).retain_grad()
    g = h * 5.0  # not retained
    (h * h + g).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 2 * (2 * values) + 5)  # d/dh (h^2 + 5h)
    with pytest.warns(UserWarning, match=r"^Tensor\.grad: this \(2,\) tensor is not a leaf \(Mul made it\)"):
        assert g.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), 2 * (2 * (2 * values) + 5))


def test_grad_of_a_result_that_kept_none_warns_naming_retain_grad_and_parameter():
    """``w = mt.randn(2, 2, requires_grad=True) * 0.01`` is a result, not a weight: its ``.grad`` was None after
    backward() without a word (torch warns). A leaf, a retained result and one given a .grad by hand do not warn."""
    w = mt.randn(2, 2, requires_grad=True) * 0.01
    with pytest.warns(UserWarning, match=r"^Tensor\.grad: this \(2, 2\) tensor is not a leaf \(Mul made it\), and "
                                         r"backward\(\) keeps \.grad only for leaves, so it is None\. Call "
                                         r"\.retain_grad\(\) on it before backward\(\) .*nn\.Parameter\("):
        assert w.grad is None  # before backward()
    (mt.ones(1, 2) @ w).sum().backward()  # frees the graph: the op's name is still given
    with pytest.warns(UserWarning, match=r"not a leaf \(Mul made it\)"):
        assert w.grad is None
    leaf = mt.randn(2, requires_grad=True)
    kept = (leaf * 2.0).retain_grad()
    set_by_hand = leaf * 3.0
    set_by_hand.grad = mt.ones(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert leaf.grad is None and kept.grad is None and mt.ones(2).grad is None
        assert set_by_hand.grad is not None


# ------------------------------------------------------------------ no_grad, enable_grad
def test_no_grad_records_nothing():
    x = t64([1.0, 2.0])
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        y = (x * 2.0).exp()
    assert mt.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_backward_of_a_loss_computed_under_no_grad_says_so():
    """A loss computed in an evaluation block (its parameters do require grad) got "nothing that made it has
    requires_grad=True", which looked false to the student; the message names no_grad and evaluating."""
    w = mt.tensor([1.0, 2.0], requires_grad=True)
    with mt.no_grad():
        loss = (w * w).sum()
    with pytest.raises(RuntimeError, match=r"or it was computed under mt\.no_grad\(\) \(or nn\.evaluating\(model\)\), "
                                           r"which records no graph; compute the loss outside that block"):
        loss.backward()


def test_no_grad_as_decorator():
    @mt.no_grad()
    def step(t):
        """An optimizer-like update."""
        return t * 0.5

    x = t64([1.0])
    y = step(x)
    assert not y.requires_grad
    assert mt.is_grad_enabled()
    assert step.__name__ == "step" and step.__doc__ == "An optimizer-like update."


def test_no_grad_as_a_decorator_without_parentheses():
    # @mt.no_grad raised "no_grad() takes no arguments"; @torch.no_grad works bare
    w = t64([1.0, 2.0])

    @mt.no_grad
    def evaluate(t):
        """Evaluation."""
        return (t * w).sum()

    @mt.enable_grad
    def train(t):
        return (t * w).sum()

    assert not evaluate(w).requires_grad and evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Evaluation."
    with mt.no_grad():
        assert train(w).requires_grad
    assert mt.is_grad_enabled()
    with pytest.raises(TypeError, match=r"no_grad\(\) takes no arguments, or \(as @no_grad\) a function"):
        mt.no_grad(5)


def test_no_grad_refuses_to_decorate_a_generator_function():
    # the block ended before the generator's body ran: its results had requires_grad=True
    with pytest.raises(TypeError, match=r"@no_grad on the generator function 'batches': .* `with mt\.no_grad\(\):`"):
        @mt.no_grad()
        def batches():
            yield t64([1.0]) * 2.0


def test_enable_grad_inside_no_grad():
    x = t64([1.0, 3.0])
    with mt.no_grad():
        with mt.enable_grad():
            y = x * x
        z = x * x
    assert y.requires_grad and not z.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 6.0])


def test_no_grad_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with mt.no_grad():
            1 / 0  # noqa: B018
    assert mt.is_grad_enabled()


# ------------------------------------------------------------------ detect_anomaly
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_first_forward_operation():
    x = t64([[1.0, -2.0, 3.0], [0.5, 1.0, 2.0]])
    y = (x * 2.0).log().exp()  # log of -4 is NaN; exp passes it on
    assert np.isnan(y.numpy()).any()  # without the switch: a silent NaN
    with mt.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"Log\.forward produced NaN/Inf; .*shapes \(2, 3\)"):
            (x * 2.0).log().exp()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_names_the_first_backward_operation():
    x = t64([0.0, 1.0, 4.0])  # d/dx sqrt(x) = 1 / (2 sqrt x) is inf at 0
    with mt.detect_anomaly():
        loss = (x.sqrt() * 3.0).sum()  # the forward is finite
        with pytest.raises(FloatingPointError, match=r"Sqrt\.backward produced NaN/Inf; .*shapes \(3,\)"):
            loss.backward()


def test_detect_anomaly_is_off_after_the_block():
    from minitransformer.autograd import engine

    with pytest.raises(ValueError):
        with mt.detect_anomaly():
            assert engine._anomaly
            raise ValueError
    assert not engine._anomaly


# ------------------------------------------------------------------ the backend setting
def test_backend_context_manager_restores_the_previous_one():
    before = mt.backend.current()
    with mt.backend.use(other_backend()) as be:
        assert mt.backend.current() is be
        assert mt.zeros(2).backend is be
        with mt.backend.use(before.name):
            assert mt.backend.current() is before
        assert mt.backend.current() is be
    assert mt.backend.current() is before


def test_backend_restored_after_an_exception():
    before = mt.backend.current()
    with pytest.raises(KeyError):
        with mt.backend.use(other_backend()):
            raise KeyError
    assert mt.backend.current() is before


def test_backend_choice_persists_across_contexts_and_threads():
    """A module-level setting, not a ContextVar: a choice made in one notebook cell (which Jupyter may
    run in its own context) or thread holds everywhere after it."""
    before = mt.backend.current()
    name = other_backend()
    try:
        contextvars.copy_context().run(mt.backend.use, name)
        assert mt.backend.current().name == name
        seen = []
        thread = threading.Thread(target=lambda: seen.append(mt.backend.current().name))
        thread.start()
        thread.join()
        assert seen == [name]
        assert mt.tensor([1.0]).backend.name == name
    finally:
        mt.backend.use(before)


def test_grad_mode_is_per_thread():
    """A server thread inside no_grad turned grad mode off for the training thread too (its backward() said "does not
    require grad"), and two blocks in two threads that ended in the other order left it off for good; as in PyTorch,
    each thread has its own, and a new thread starts with grad enabled."""
    w = t64([1.0, 2.0])
    a_in, b_in, a_out, trained = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with mt.no_grad():
            a_in.set()
            trained.wait()
            b_in.wait()
        seen["a after"] = mt.is_grad_enabled()
        a_out.set()

    def b():
        seen["b starts"] = mt.is_grad_enabled()
        a_in.wait()
        with mt.no_grad():
            b_in.set()
            a_out.wait()  # a's block ends first: its exit must not turn b's (or anyone's) mode back
            seen["b inside"] = mt.is_grad_enabled()
        seen["b after"] = mt.is_grad_enabled()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    a_in.wait()
    try:
        (w * w).sum().backward()  # here, while thread a is inside its no_grad
    finally:
        trained.set()
        for thread in threads:
            thread.join()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])
    assert seen == {"b starts": True, "a after": True, "b inside": False, "b after": True}
    assert mt.is_grad_enabled()
    with mt.no_grad():  # and a thread started inside a block starts with grad enabled
        thread = threading.Thread(target=lambda: seen.update(new=mt.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen["new"]


def test_grad_mode_persists_across_contexts():
    try:
        contextvars.copy_context().run(mt.no_grad().__enter__)
        assert not mt.is_grad_enabled()
    finally:
        mt.enable_grad().__enter__()
    assert mt.is_grad_enabled()


@pytest.mark.single_backend
@pytest.mark.parametrize("name", ["array_api_strict", "numpy"])
def test_environment_variable_chooses_the_backend(name):
    code = "import minitransformer as mt; print(mt.backend.current().name, mt.zeros(2).backend.name)"
    env = {**os.environ, "MINITRANSFORMER_BACKEND": name}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, encoding="utf-8", check=True)
    assert out.stdout.split() == [name, name]


@pytest.mark.single_backend
def test_environment_variable_with_an_unknown_backend_says_where_it_came_from():
    code = "import minitransformer as mt; mt.zeros(2)"
    env = {**os.environ, "MINITRANSFORMER_BACKEND": "tpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, encoding="utf-8")
    assert out.returncode != 0
    assert "BackendError: MINITRANSFORMER_BACKEND='tpu': unknown backend 'tpu'" in out.stderr


# ------------------------------------------------------------------ seeding
def test_manual_seed_makes_random_numbers_reproducible():
    def draw():
        return mt.randn(3, 4).numpy(), mt.rand(2, dtype="float64").numpy(), mt.randint(0, 10, (5,)).numpy()

    mt.manual_seed(7)
    first = draw()
    mt.manual_seed(7)
    second = draw()
    mt.manual_seed(8)
    third = draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], third[0])
    assert first[0].dtype == np.float32 and first[1].dtype == np.float64 and first[2].dtype == np.int64
    assert ((first[1] >= 0) & (first[1] < 1)).all() and ((first[2] >= 0) & (first[2] < 10)).all()


def test_manual_seed_reaches_every_backend():
    name = other_backend()
    mt.manual_seed(3)
    a = mt.randn(4, backend=name).numpy()
    mt.manual_seed(3)
    b = mt.randn(4, backend=name).numpy()
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ moving, converting, looking
def test_to_another_backend_and_back():
    values = np.array([[1.5, -2.0], [0.25, 4.0]], dtype=np.float32)
    x = mt.tensor(values, requires_grad=True)
    name = other_backend()
    y = x.to(name)
    assert y.backend.name == name and y.dtype_name == "float32"
    assert y.is_leaf and y.requires_grad  # a new leaf: the move is not differentiated
    np.testing.assert_array_equal(y.numpy(), values)
    back = y.to(mt.backend.current().name)
    assert back.backend is x.backend
    np.testing.assert_array_equal(back.numpy(), values)
    assert x.to(x.backend.name) is x


def test_to_another_dtype_is_differentiable():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("float64")
    assert y.dtype_name == "float64" and y.grad_fn is not None
    (y * y).sum().backward()
    assert x.grad.dtype_name == "float32"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert mt.tensor([1, 2]).to("float32").dtype_name == "float32"


def test_numpy_item_detach():
    x = mt.tensor([[1.5, 2.5]], requires_grad=True)
    host = x.numpy()
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    np.testing.assert_array_equal(host, [[1.5, 2.5]])
    assert mt.tensor([[2.5]]).item() == 2.5 and isinstance(mt.tensor([[2.5]]).item(), float)
    assert isinstance(mt.tensor([3]).item(), int)
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    np.testing.assert_array_equal(d.numpy(), [[3.0, 5.0]])
    with pytest.raises(ValueError, match=r"item\(\): tensor has shape \(1, 2\)"):
        x.item()


def test_numpy_is_a_copy_that_writes_nothing_back():
    """``.numpy()`` gave the tensor's own array on NumPy though the docs said a copy: ``w = lin.weight.numpy(); w *= 0``
    zeroed the weight unseen, and ``x.numpy()[0] = 10`` after a forward gave a wrong gradient. ``np.asarray(x)``
    keeps NumPy's protocol: the tensor's own array unless a copy is asked for."""
    w = mt.tensor([1.0, 2.0], requires_grad=True)
    x = mt.tensor([3.0, 4.0], requires_grad=True)
    out = (w * x).sum()
    host = w.numpy()
    host *= 0
    w.numpy()[0] = 10.0
    out.backward()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])  # d(w x)/dx = w, as w was
    if w.backend.name == "numpy":
        assert np.asarray(w) is w.data and np.asarray(w, copy=True) is not w.data


def test_setting_requires_grad_is_checked_as_requires_grad_is():
    # the attribute could be written past the float-only rule: t.grad came out as an int64 tensor [3, 3]
    t = mt.tensor([1, 2])
    with pytest.raises(TypeError, match=r"only floating-point tensors can have gradients, got int64"):
        t.requires_grad = True
    assert not t.requires_grad
    w = mt.tensor([1.0, 2.0])
    w.requires_grad = True
    assert w.requires_grad and (w * 2.0).requires_grad
    w.requires_grad = False  # a leaf's flag can be turned off
    assert not (w * 2.0).requires_grad


def test_requires_grad_false_on_a_result_of_operations_is_refused():
    # it half-worked: an earlier use of h still passed gradients back, a later one did not
    x = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2.0
    z = (h * 3.0).sum()
    with pytest.raises(RuntimeError, match=r"only a leaf's flag can change; .* made by Mul\. Use t\.detach\(\)"):
        h.requires_grad_(False)
    with pytest.raises(RuntimeError, match=r"only a leaf's flag can change"):
        h.requires_grad = False
    assert h.requires_grad and (h * 4.0).requires_grad
    assert h.requires_grad_(True) is h  # asking again for what it has is fine
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0, 6.0])


def test_tensor_copies_an_array_as_torch_tensor_does():
    # mt.tensor(a) used a's memory: a[0] = 99 changed the tensor too
    a = np.array([1.0, 2.0])
    t, u = mt.tensor(a), mt.tensor(a, requires_grad=True)
    a[0] = 99.0
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(u.numpy(), [1.0, 2.0])
    v = mt.tensor(t)
    assert v.data is not t.data and v.tolist() == [1.0, 2.0]


class _FakeCupyArray:
    """Stands for a CuPy array on a machine without a GPU: NumPy may not read it (CuPy refuses the implicit
    conversion), only its own .get() brings it to the host."""

    __module__ = "cupy._core.core"  # how the engine tells a CuPy array

    def __init__(self, host):
        self.host, self.dtype, self.shape = host, host.dtype, host.shape

    def get(self):
        return self.host.copy()

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()`")


@pytest.mark.single_backend
def test_tensor_of_a_gpu_array_on_the_cpu_comes_through_the_host(monkeypatch):
    # Tensor(data, backend=...) moves an array of another backend; a CuPy array cannot be read by np.asarray
    monkeypatch.setitem(mt.backend._BACKENDS, "cupy", mt.backend.Backend("cupy", np, native=np))
    t = mt.Tensor(_FakeCupyArray(np.array([1.5, -2.0], dtype=np.float32)), backend="numpy")
    assert isinstance(t.data, np.ndarray) and t.dtype_name == "float32" and t.tolist() == [1.5, -2.0]


def test_there_is_no_item_assignment():
    x = mt.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match=r"Tensor does not support item assignment: no array is written in place"):
        x[0] = 5.0


def test_deepcopy_of_a_leaf_copies_its_array_and_grad_on_its_backend(backend):
    x = mt.tensor([[1.5, 2.5]], requires_grad=True, name="x")
    (x * x).sum().backward()
    y = copy.deepcopy(x)
    assert type(y) is mt.Tensor and y.is_leaf and y.requires_grad and y.name == "x" and y.backend is backend
    assert y.data is not x.data and y.grad is not x.grad
    y.data[...] = y.data * 0.0
    y.grad.data[...] = y.grad.data * 0.0
    np.testing.assert_array_equal(x.numpy(), [[1.5, 2.5]])
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0, 5.0]])
    shallow = copy.copy(x)  # another object on the same array
    assert shallow is not x and shallow.data is x.data and shallow.grad is x.grad


def test_deepcopy_of_a_result_of_operations_is_refused():
    """As PyTorch: a result's graph holds the arrays of other tensors; copy its detach()."""
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"deepcopy: only a leaf tensor .* made by Mul .* copy t.detach\(\)"):
        copy.deepcopy(x * x)
    np.testing.assert_array_equal(copy.deepcopy((x * x).detach()).numpy(), [1.0, 4.0])


def test_default_dtypes():
    assert mt.tensor([1.0, 2.0]).dtype_name == "float32"
    assert mt.tensor([1, 2]).dtype_name == "int64"
    assert mt.tensor([True]).dtype_name == "bool"
    assert mt.tensor(np.zeros(2)).dtype_name == "float64"  # NumPy arrays keep theirs
    assert mt.tensor([1.0], dtype="float64").dtype_name == "float64"
    assert mt.zeros(2, 3).shape == (2, 3) and mt.ones((4,)).shape == (4,)


def test_made_tensors_want_no_gradient_unless_asked():
    # as PyTorch's torch.full, zeros, ones, zeros_like, ones_like, randn, rand, tensor: requires_grad=False
    x = mt.tensor([1.0, 2.0])
    made = [mt.full((2,), 0.5), mt.zeros(2), mt.ones(2), mt.zeros_like(x), mt.ones_like(x), mt.randn(2), mt.rand(2),
            mt.tensor([1.0])]
    assert [t.requires_grad for t in made] == [False] * len(made)
    asked = [mt.full((2,), 0.5, requires_grad=True), mt.ones_like(x, requires_grad=True),
             mt.rand(2, requires_grad=True)]
    assert all(t.requires_grad and t.is_leaf for t in asked)


@pytest.mark.parametrize(
    "data, dtype",
    [([1, 2.5], "float32"), ([[1], [2.5]], "float32"), ([True, 2], "int64"), ([[True], [False]], "bool"),
     ([[1, 2], [3, 4]], "int64"), (2.5, "float32"), (True, "bool"), ([], "float32")],
)
def test_default_dtype_reads_every_element(data, dtype):
    # as PyTorch: one float makes the whole tensor float (not the first element's int64, which cuts 2.5 to 2)
    x = mt.tensor(data)
    assert x.dtype_name == dtype
    np.testing.assert_array_equal(x.numpy(), np.asarray(data, dtype=dtype))


def test_data_that_is_not_numbers_is_refused():
    with pytest.raises(TypeError, match=r"tensor: data must be numbers or nested lists of numbers, got list "
                                        r"\(NumPy reads it as <U1\)"):
        mt.tensor(["a", "b"])


def test_truth_value_of_one_element_is_its_value():
    assert not mt.tensor([0.0]) and not mt.tensor(0.0) and mt.tensor([[2.5]])
    assert bool(mt.tensor(3) > 2) and not bool(mt.tensor([False]))


def test_float_and_int_of_one_element_are_its_value():
    """float(loss) and int(t), PyTorch habits, were a TypeError naming no fix; an eval_fn giving the Trainer
    {"val_loss": loss} as a Tensor failed the same way."""
    assert float(mt.tensor([[2.5]])) == 2.5 and isinstance(float(mt.tensor(3)), float)
    assert int(mt.tensor(-2.7)) == -2 and int(mt.tensor([7])) == 7 and isinstance(int(mt.tensor(1.0)), int)
    x = mt.tensor(2.0, requires_grad=True)
    assert float(x * x) == 4.0
    with pytest.raises(TypeError, match=r"float\(\): tensor has shape \(2,\); only one-element tensors convert"):
        float(mt.zeros(2))
    with pytest.raises(TypeError, match=r"int\(\): tensor has shape \(0,\)"):
        int(mt.zeros(0))


@pytest.mark.parametrize("shape", [(2, 2), (0,)])
def test_truth_value_of_many_elements_is_refused(shape):
    # without __bool__, Python asked len(): `if x > 5.0:` on a 2x2 tensor took the branch
    x = mt.zeros(*shape)
    n = x.size
    with pytest.raises(RuntimeError, match=rf"the truth value of a Tensor with {n} elements is ambiguous; "
                                           r"reduce it first, e\.g\. x\.numpy\(\)\.any\(\) or x\.numpy\(\)\.all\(\)"):
        bool(x > 5.0)
    with pytest.raises(RuntimeError, match="truth value"):
        if x > 5.0:
            pass


def test_len_and_iteration_of_a_0d_tensor_are_refused():
    x = mt.tensor(2.0)
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor \(shape \(\)\); use \.item\(\) for its value"):
        len(x)
    with pytest.raises(TypeError, match=r"iteration over a 0-d tensor"):
        list(x)
    assert len(mt.zeros(3, 2)) == 3 and [t.shape for t in mt.zeros(3, 2)] == [(2,)] * 3


def test_repr():
    x = mt.tensor([1.5, -2.0], requires_grad=True)
    text = repr(x)
    assert text.startswith("Tensor([ 1.5, -2. ]") and "dtype=float32" in text and "requires_grad=True" in text
    backend = mt.backend.current().name
    assert ("backend=" in text) == (backend != "numpy")  # NumPy is the default, not named
    if backend != "numpy":
        assert f"backend={backend}" in text
    assert repr(mt.tensor([1, 2])).startswith("Tensor([1, 2], dtype=int64")
    # values that wrap onto a second line: NumPy's own ", dtype=float32" there was kept, and the dtype shown twice
    wide = repr(mt.tensor([0.0, 0.0, 0.0, 0.0, 5.5451775, 0.0]))
    tail = "dtype=float32" + ("" if backend == "numpy" else f", backend={backend}") + ")"
    assert wide.count("dtype=") == 1 and wide.endswith(tail)


def test_an_integer_tensor_to_the_power_zero_is_ones():
    # only negative integer powers of an integer tensor are refused (not integers); x ** 0 = 1, x ** 1 = x
    x = mt.tensor([2, -3, 0])
    assert (x**0).tolist() == [1, 1, 1] and (x**0).dtype_name == "int64"
    assert (x**1).tolist() == [2, -3, 0]


def test_a_bool_or_int_tensor_divided_is_told_to_become_a_float_and_that_cast_works():
    """``mask / 2`` said ``.to('int64')``, whose division is refused next ("Div: needs floating-point input"); the
    cast a division is told is to a float, and the hint of ``mask + 1`` stays ``.to('int64')``."""
    mask, ids = mt.tensor([True, True]), mt.tensor([1, 2])  # (no zero: 2 / mask divides by each)
    for divided in (lambda m: m / 2, lambda m: 2 / m):
        with pytest.raises(TypeError, match=r"^divide \(/\): cannot combine a bool tensor of shape \(2,\) with the "
                                            r"int 2; cast the tensor first, e\.g\. \.to\('float32'\)$"):
            divided(mask)
        assert divided(mask.to("float32")).dtype_name == "float32"
    for a, b in ((mask, mt.ones(2)), (ids, mt.ones(2)), (mt.ones(2), ids)):
        with pytest.raises(TypeError, match=r"^Div: cannot mix dtypes .*; convert one with \.to\('float32'\)$"):
            a / b
        a, b = (t.to("float32") for t in (a, b))
        assert (a / b).dtype_name == "float32"
    with pytest.raises(TypeError, match=r"with the int 1; cast the tensor first, e\.g\. \.to\('int64'\)$"):
        mask + 1
    with pytest.raises(TypeError, match=r"^Add: cannot mix dtypes int64 \(2,\) and bool \(2,\); convert one with "
                                        r"\.to\('int64'\)$"):
        ids + mask


# ------------------------------------------------------------------ shapes and axes
@pytest.mark.parametrize("shapes", [((2, 3, 1), (4,)), ((2, 3),), ((5,), (1, 5), (3, 1, 1)), ((), (2,)),
                                    ((0, 1), (3,))])
def test_broadcast_shapes_agrees_with_numpy(shapes):
    # one shape alone is its own broadcast, as np.broadcast_shapes((2, 3)) == (2, 3)
    assert mt.autograd.broadcast_shapes("Add", *shapes) == np.broadcast_shapes(*shapes)


def test_permute_takes_the_axes_as_a_tuple_or_a_list():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = mt.tensor(a)
    for axes in ((2, 0, 1), [2, 0, 1]):
        np.testing.assert_array_equal(x.permute(axes).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.transpose((1, 0, 2)).numpy(), a.transpose(1, 0, 2))


def test_transpose_is_numpys_and_refuses_where_pytorchs_would_differ_silently():
    # PyTorch's transpose(a, b) swaps two axes; NumPy's takes the order of all of them. A matrix's
    # transpose(0, 1) or transpose(-2, -1) is NumPy's identity but PyTorch's swap: Q @ K.transpose(-2, -1)
    # from PyTorch code would compute QK, not QK^T, without an error
    a = np.arange(6.0).reshape(2, 3)
    x = mt.tensor(a)
    for axes in ((1, 0), (-1, -2), (1, -2)):  # both libraries swap: allowed
        np.testing.assert_array_equal(x.transpose(*axes).numpy(), a.T)
    np.testing.assert_array_equal(x.transpose().numpy(), a.T)
    for axes in ((0, 1), (-2, -1), (0, -1)):
        with pytest.raises(ValueError, match=r"transpose\(.*leaves a matrix as it is.*swapaxes"):
            x.transpose(*axes)
    b = np.arange(24.0).reshape(2, 3, 4)
    with pytest.raises(ValueError, match=r"transpose\(1, 2\): .*2 axes of a 3-D tensor.*swapaxes\(1, 2\)"):
        mt.tensor(b).transpose(1, 2)
    np.testing.assert_array_equal(mt.tensor(b).transpose(0, 2, 1).numpy(), b.transpose(0, 2, 1))
    np.testing.assert_array_equal(mt.tensor(b).swapaxes(1, 2).numpy(), np.swapaxes(b, 1, 2))


def test_split_defaults_to_the_last_axis():
    # (2, 3, 4): only the last axis divides into 2 (axis 1, of size 3, does not)
    a = np.arange(24.0).reshape(2, 3, 4)
    x = mt.tensor(a)
    for parts in (x.split(2), mt.split(x, 2)):
        assert [p.shape for p in parts] == [(2, 3, 2), (2, 3, 2)]
        for p, expected in zip(parts, np.split(a, 2, axis=-1)):
            np.testing.assert_array_equal(p.numpy(), expected)


def test_split_into_one_part_is_the_whole_and_into_zero_parts_is_refused():
    a = np.arange(6.0).reshape(2, 3)
    (whole,) = mt.tensor(a).split(1)
    np.testing.assert_array_equal(whole.numpy(), a)
    with pytest.raises(ValueError, match=r"split: axis 1 of size 3 does not divide into 0 equal parts"):
        mt.tensor(a).split(0)


def test_split_refuses_negative_and_fractional_sizes():
    # [4, -1] adds up to the axis's 3, and the slices would clamp the 4: parts of (2, 3) and (2, 0), silently
    x = mt.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"split: sizes \[4, -1\] must each be >= 0"):
        mt.split(x, [4, -1], axis=1)
    with pytest.raises(TypeError, match=r"split: the parts' sizes must be ints, got \[1\.5, 1\.5\]"):
        mt.split(x, [1.5, 1.5], axis=1)
    assert [p.shape for p in mt.split(x, np.array([1, 2]), axis=1)] == [(2, 1), (2, 2)]  # NumPy's ints are ints


def test_empty_nested_lists_are_no_rows_and_no_mask_places():
    # NumPy reads [[]] as float64, which Take and the mask check refused as not integer, not boolean
    x = mt.zeros(3, 2)
    assert x[[[]]].shape == (1, 0, 2)
    assert mt.zeros(1, 0).masked_fill([[]], 1.0).shape == (1, 0)


def test_concat_of_one_tensor_is_its_values():
    a = np.arange(6.0).reshape(2, 3)
    for axis in (0, -1):
        np.testing.assert_array_equal(mt.concat([mt.tensor(a)], axis=axis).numpy(), a)


@pytest.mark.parametrize(
    "op, call",
    [("concat", lambda s: mt.concat([s, s])), ("split", lambda s: s.split(1)), ("take", lambda s: mt.take(s, [0])),
     ("swapaxes", lambda s: s.swapaxes(0, 0)), ("permute", lambda s: s.permute(0))],
)
def test_an_axis_of_a_0d_tensor_is_out_of_range_except_in_a_reduction(op, call):
    # as PyTorch, a reduction of a 0-d tensor takes axis 0 or -1 (meaning none: see test_bad_input); nothing else does
    with pytest.raises(ValueError, match=rf"{op}: axis -?[01] is out of range for a tensor with 0 dimensions"):
        call(mt.tensor(1.0))


def test_an_error_inside_unbroadcast_is_unbroadcasts_not_the_check_of_what_backward_returned(monkeypatch):
    """unbroadcast is A1's to write: an error raised inside it (an axis out of range) is noted as arising there, with
    the shapes, not as the engine's check of what Add.backward returned (whose note makes the grade hide the frames
    that would point at unbroadcast)."""
    from minitransformer.autograd import engine

    monkeypatch.setattr(engine, "unbroadcast", lambda xp, grad, shape, op: xp.sum(grad, axis=3))
    a, b = mt.ones(2, 3, requires_grad=True), mt.ones(3, requires_grad=True)
    with pytest.raises(Exception, match="axis 3") as caught:
        (a + b).sum().backward()
    notes = getattr(caught.value, "__notes__", [])
    assert not any(note.startswith("(checked after ") for note in notes), notes
    assert any(note.startswith("(in unbroadcast, for Add.backward, input 1: inputs of shapes (3,)") for note in notes)


def test_an_update_in_place_of_a_leaf_is_made_as_pytorchs_is():
    """``for p in model.parameters(): p -= lr * p.grad`` under no_grad rebound the loop's name and changed no
    parameter, silently (and ``g = p.grad; g *= 0`` no gradient): the model did not learn. The tensor now takes the
    result's array, as torch's in-place update; the old array, which a graph may have saved, is not written."""
    w0, x0 = np.array([[0.5, -1.0], [2.0, 0.25], [-0.5, 1.5]], dtype=np.float32), np.ones((2, 3), dtype=np.float32)
    model = mt.nn.Linear(3, 2)
    mt.nn.init.constant_(model.bias, 0.0)
    model.weight.data = mt.tensor(w0).data
    model(mt.tensor(x0)).sum().backward()
    params = list(model.parameters())
    with mt.no_grad():
        for p in params:
            p -= 0.1 * p.grad
    assert [p is q for p, q in zip(params, model.parameters())] == [True, True]
    np.testing.assert_allclose(model.weight.numpy(), w0 - 0.1 * 2.0, rtol=1e-6)  # dL/dW = x^T 1 = 2 everywhere
    np.testing.assert_allclose(model.bias.numpy(), [-0.2, -0.2], rtol=1e-6)
    g = model.weight.grad
    g *= 0
    assert not model.weight.grad.numpy().any()
    total = mt.zeros(())
    for v in (1.0, 2.0, 3.5):
        total += v  # a running sum, as before
    assert total.item() == 6.5
    a, w = mt.tensor([2.0, 3.0]), mt.tensor([1.0, 1.0], requires_grad=True)
    y = (w * a).sum()
    with mt.no_grad():
        a += 10.0  # after the graph saved a's array: backward reads the array it saved
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 3.0])
    h = w * 2.0
    kept = h
    h += 1.0  # inside a graph: h = h + 1, a new tensor of the graph
    assert h is not kept and kept.numpy().tolist() == [2.0, 2.0] and h.numpy().tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match=r"^x -= y on a tensor that requires grad \(float32 \(2,\), a parameter\?\), "
                                           r"outside no_grad: an update of its values is made under `with "
                                           r"mt\.no_grad\(\):`"):
        w -= 1.0
    x = mt.zeros(3)
    with pytest.raises(ValueError, match=r"^x \+= y: x \(3,\) float32 would become \(2, 3\) float32; an update in "
                                         r"place keeps the shape"):
        x += mt.ones(2, 3)
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w0.T))
        theirs.bias.zero_()
    theirs(torch.tensor(x0)).sum().backward()
    with torch.no_grad():
        for p in theirs.parameters():
            p -= 0.1 * p.grad
    np.testing.assert_allclose(model.weight.numpy(), theirs.weight.detach().numpy().T, rtol=1e-6)
    np.testing.assert_allclose(model.bias.numpy(), theirs.bias.detach().numpy(), rtol=1e-6)
