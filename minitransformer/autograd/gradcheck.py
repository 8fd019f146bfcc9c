r"""Finite-difference checks of ``backward``: the test every primitive and formula must pass.

For a function :math:`f` with one output number, the analytic gradient of :math:`s(x) = f(x)` from
``backward()`` must match the central difference

.. math:: \frac{\partial s}{\partial x_i} \approx \frac{s(x + \epsilon e_i) - s(x - \epsilon e_i)}{2\epsilon}

element by element, within ``atol + rtol * |numerical|``. An output of several numbers is first
reduced to one, :math:`s(x) = \langle v, f(x) \rangle` with a random cotangent :math:`v` of its shape,
so that every element of it is checked (then the numbers compared are derivatives of :math:`s`, not of
:math:`f`). Run it in float64: in float32 the difference quotient itself has an error of about 1e-3.
"""

from __future__ import annotations

import numpy as np

from .._arguments import require_real
from .engine import Tensor, _topological_order, no_grad

__all__ = ["gradcheck", "GradcheckError", "numerical_grad"]


class GradcheckError(AssertionError):
    r"""The analytic gradient of some input disagrees with the central difference.

    Raised by :func:`gradcheck`; the message names the input, the worst element and both
    derivatives. An ``AssertionError``, so a failed check fails a test as an ``assert`` would.

    See :func:`gradcheck`'s examples for one, from a ``backward`` that forgot a factor 2.

    Examples
    --------
    >>> import minitransformer as mt
    >>> issubclass(mt.autograd.GradcheckError, AssertionError)   # pytest reports it as a failed assert
    True
    """


def _scalar(fn, inputs, cotangent) -> Tensor:
    out = fn(*inputs)
    outs = out if isinstance(out, tuple | list) else (out,)
    total = None
    for o, v in zip(outs, cotangent):
        term = (o * Tensor(v, backend=o.backend)).sum()
        total = term if total is None else total + term
    return total


def numerical_grad(fn, inputs, cotangent, index: int, eps: float) -> np.ndarray:
    r"""Central differences of :math:`\langle v, f \rangle` with respect to ``inputs[index]`` (a host array).

    .. math::
        g_i = \frac{s(x + \epsilon e_i) - s(x - \epsilon e_i)}{2\epsilon}, \qquad
        s = \sum_k \langle v_k, f_k(\ldots, x, \ldots) \rangle

    with :math:`x` = ``inputs[index]`` (moved in every argument it is passed as): two calls of ``fn``
    (under :class:`no_grad`) per element of :math:`x`, so for small inputs only.

    Parameters
    ----------
    fn : callable
        Takes the tensors, returns a tensor or a tuple of tensors.
    inputs : sequence of Tensor
        The arguments of ``fn``.
    cotangent : sequence of array
        One array :math:`v_k` per output of ``fn``, of that output's shape.
    index : int
        Which input to differentiate with respect to.
    eps : float
        The step :math:`\epsilon`.

    Returns
    -------
    numpy.ndarray
        float64, of the shape of ``inputs[index]``.

    Examples
    --------
    :math:`\partial (\sum_i x_i^2) / \partial x_i = 2 x_i`:

    >>> import numpy as np
    >>> import minitransformer as mt
    >>> x = mt.tensor([1.0, 2.0], dtype="float64")
    >>> mt.autograd.numerical_grad(lambda t: t * t, [x], [np.ones(2)], 0, 1e-6).round(6)
    array([2., 4.])
    """
    require_real("numerical_grad", "eps", eps, low=0.0, low_open=True)  # a step of 0 divides by 0
    x = inputs[index]
    host = x.numpy().astype(np.float64, copy=True)
    grad = np.zeros_like(host)
    with no_grad():
        for i in np.ndindex(host.shape):
            old = host[i]
            values = []
            for step in (eps, -eps):
                host[i] = old + step
                moved = Tensor(host.astype(x.dtype_name), backend=x.backend)
                # x moves wherever it is passed: the gradient of a tensor used twice is the sum over both uses
                values.append(_scalar(fn, [moved if t is x else t for t in inputs], cotangent).item())
            host[i] = old
            grad[i] = (values[0] - values[1]) / (2 * eps)
    return grad


def gradcheck(fn, *inputs: Tensor, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
              seed: int = 0, raise_exception: bool = True) -> bool:
    r"""Compare ``backward()`` of ``fn(*inputs)`` with central differences, for every input needing grad.

    The outputs are reduced to one number :math:`s = \sum_k \langle v_k, f_k \rangle`: :math:`v_k = 1` for an
    output of one element (a loss: :math:`s = f`, and the numbers compared are its derivatives), a random
    cotangent (seeded) of the output's shape otherwise, so that every element of it is checked. Each input's
    ``.grad`` from ``s.backward()`` must match :func:`numerical_grad` element by element,
    :math:`|\text{analytic} - \text{numerical}| \le \text{atol} + \text{rtol}\,|\text{numerical}|`;
    a NaN or infinity in either fails. The message names the input (and its ``name``, if it has one), the
    worst element, both numbers and their ratio (0.5 or 2: a forgotten or doubled factor 2).

    Choose inputs away from kinks and ties (ReLU at 0, two equal maxima): there the function has no
    derivative, the central difference averages the two sides, and the check fails although ``backward``
    follows the library's convention.
    The inputs' ``.grad`` are cleared first and hold the analytic gradient afterwards; other tensors that
    ``fn`` uses (parameters) keep theirs as it was. A tensor passed twice is differentiated as one (the sum
    over its uses, as in PyTorch), and a result of operations as a leaf of the same values.
    Only the inputs are checked, not the parameters of a module ``fn`` calls: to check those too, use
    :func:`minitransformer.testing.gradcheck_module` (``gradcheck_module(model.to("float64").eval(), x)``), which puts
    the perturbed copies in the parameters' places (a module takes only a ``Parameter`` there).

    Parameters
    ----------
    fn : callable
        Takes the tensors, returns a tensor (or a tuple of tensors).
    *inputs : Tensor
        float64 tensors; those with ``requires_grad=True`` are checked (leaves or results of operations).
        ``fn`` must return float64 too.
    eps, atol, rtol : float
        Step of the difference quotient; tolerances ``|analytic - numerical| <= atol + rtol * |numerical|``.
    seed : int
        Seed of the random cotangent (outputs of more than one element).
    raise_exception : bool
        On a mismatch, raise (the default) or return False.

    Returns
    -------
    bool
        True when every gradient matches; False on a mismatch with ``raise_exception=False``.

    Raises
    ------
    GradcheckError
        On a mismatch, naming the input, the worst element, and both derivatives; or when no gradient
        reached an input whose central difference is not zero (a ``backward`` that returned ``None`` for it); or,
        before any gradient is compared, when two calls of ``fn`` with the same inputs give different outputs (a
        random ``fn``: dropout in training mode).
    TypeError
        If an input that requires grad, or an output of ``fn``, is not float64; if the inputs are passed as
        one list (pass them as separate arguments); if ``eps``, ``atol`` or ``rtol`` is not a number.
    ValueError
        If no input requires grad (there would be nothing to check); if ``eps`` is not finite and > 0, or
        ``atol`` or ``rtol`` not finite and >= 0.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True)
    >>> gradcheck(lambda t: (t * t).tanh(), x)
    True

    A loss (one number): the message gives :math:`d\,\text{loss}/dx` itself, here a ``backward`` that forgot
    the factor 2 of :math:`d(x^2)/dx = 2x`:

    >>> class BadSquare(mt.Function):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, grad):
    ...         return (grad * self.x,)             # should be 2 * grad * x
    >>> w = mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True, name="w")
    >>> try:
    ...     mt.gradcheck(lambda t: BadSquare.apply(t).sum(), w)
    ... except mt.autograd.GradcheckError as e:
    ...     print(str(e).split(" (ratio")[0])
    gradcheck: input 0 'w' (shape (2,)) at index (1,): received derivative 2, expected 4 from central difference
    """
    require_real("gradcheck", "eps", eps, low=0.0, low_open=True)
    require_real("gradcheck", "atol", atol, low=0.0)  # a negative tolerance would fail every element
    require_real("gradcheck", "rtol", rtol, low=0.0)
    for k, x in enumerate(inputs):
        if isinstance(x, list | tuple) and any(isinstance(t, Tensor) for t in x):
            raise TypeError(
                f"gradcheck: input {k} is a {type(x).__name__} of {len(x)} items; pass the tensors as separate "
                f"arguments, gradcheck(fn, *inputs) or gradcheck(fn, x, y), as fn(*inputs) is called"
            )
        if isinstance(x, Tensor) and x.requires_grad and x.dtype_name != "float64":
            raise TypeError(
                f"gradcheck: input {k} is {x.dtype_name}; use float64 (x.to('float64')), since float32 "
                "central differences are only accurate to about 1e-3"
            )
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):  # else backward() would say it, vaguely
        given = ", ".join(f"{x.dtype_name} {x.shape}" if isinstance(x, Tensor) else type(x).__name__ for x in inputs)
        raise ValueError(
            f"gradcheck: no input requires grad, so there is nothing to check (inputs: {given or 'none'}); make those "
            "to check with requires_grad=True, e.g. mt.tensor(..., dtype='float64', requires_grad=True)"
        )
    names = [_name(x, k) for k, x in enumerate(inputs)]  # before _as_leaves: a detached copy has no name
    inputs = _as_leaves(inputs)
    rng = np.random.default_rng(seed)
    with no_grad():
        out = fn(*inputs)
    outs = out if isinstance(out, tuple | list) else (out,)
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor) or o.dtype_name != "float64":
            got = f"{o.dtype_name} with shape {o.shape}" if isinstance(o, Tensor) else type(o).__name__
            where = "fn" if len(outs) == 1 else f"output {k} of fn"
            raise TypeError(
                f"gradcheck: {where} is {got}; it must be a float64 tensor (float32 central differences are "
                "only accurate to about 1e-3): compute in float64 throughout, without a .to('float32') inside fn"
            )
    random = _random(fn, inputs, outs, eps * atol)
    if random:
        if raise_exception:
            raise GradcheckError(random)
        return False
    # a one-element output (a loss) is checked as it is; a larger one as <v, f>, every element with its own weight
    cotangent = [np.ones(o.shape) if o.size == 1 else rng.standard_normal(o.shape) for o in outs]
    derivative = "derivative" if len(outs) == 1 and outs[0].size == 1 else "d<v, f>/dx"
    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    total = _scalar(fn, inputs, cotangent)
    others = _other_leaves(total, inputs)  # parameters fn uses: their .grad is put back as it was
    kept = [t.grad for t in others]
    for t in others:
        t.grad = None
    try:
        total.backward()
    finally:
        for t, g in zip(others, kept):
            t.grad = g
    for k, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        numerical = numerical_grad(fn, inputs, cotangent, k, eps)
        if x.grad is None:  # no gradient reached x: fine only where f does not depend on it
            if bool(np.all(np.abs(numerical) <= atol)):
                continue
            worst = np.unravel_index(int(np.argmax(np.abs(numerical))), numerical.shape)
            message = (
                f"gradcheck: no gradient reached input {names[k]} (shape {x.shape}): its .grad is None after "
                f"backward() (is it detached, or used under no_grad, in fn?), but the central difference gives "
                f"{derivative} {numerical[worst]:.10g} at index {tuple(int(i) for i in worst)}"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
        analytic = x.grad.numpy().astype(np.float64)
        with np.errstate(invalid="ignore"):  # inf - inf is NaN: a failure, not a warning
            error = np.abs(analytic - numerical)
        allowed = atol + rtol * np.abs(numerical)
        outside = ~(error <= allowed)  # written so that NaN (compared, always False) is outside too
        if outside.any():
            excess = np.where(np.isfinite(error), error - allowed, np.inf)  # a NaN or inf is the worst
            worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
            a, n = analytic[worst], numerical[worst]
            ratio = f"ratio {a / n:.3g}; " if n != 0 and np.isfinite(a) and np.isfinite(n) else ""
            if derivative == "derivative":
                what = ""
            elif len(outs) == 1:
                what = f"; v: a random cotangent of f's shape {outs[0].shape}, seed {seed}"
            else:
                what = f"; <v, f> = sum_k <v_k, f_k>, v_k random (seed {seed}), or 1 for a one-element output"
            message = (
                f"gradcheck: input {names[k]} (shape {x.shape}) at index {tuple(int(i) for i in worst)}: received "
                f"{derivative} {a:.10g}, expected {n:.10g} from central difference "
                f"({ratio}abs error {error[worst]:.3g}, atol={atol}, rtol={rtol}; "
                f"{int(outside.sum())} of {outside.size} elements outside tolerance{what})"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def _random(fn, inputs, outs, tolerance: float) -> str:
    """Call ``fn`` once more on the same inputs: the message for an output that changed by more than ``tolerance`` (an
    error in :math:`s` of about ``eps * atol`` moves a central difference by ``atol``), else ``""``. A random ``fn``
    (dropout in training mode) would fail the check as a gradient mismatch, thousands of times off, saying nothing of
    why."""
    with no_grad():
        again = fn(*inputs)
    again = again if isinstance(again, tuple | list) else (again,)
    for k, (o, a) in enumerate(zip(outs, again)):
        first, second = o.numpy().astype(np.float64), a.numpy().astype(np.float64) if isinstance(a, Tensor) else None
        if second is not None and second.shape == first.shape:
            with np.errstate(invalid="ignore"):  # inf - inf is NaN: the same inf twice is no difference
                same = (np.abs(first - second) <= tolerance + 1e-12 * np.abs(first)) | (first == second)
            differ = ~(same | (np.isnan(first) & np.isnan(second)))
            if not differ.any():
                continue
            worst = tuple(int(i) for i in np.argwhere(differ)[0])
            said = f"at index {worst}: {first[worst]:.10g}, then {second[worst]:.10g}"
        else:
            said = f"{o.shape}, then {a.shape if isinstance(a, Tensor) else type(a).__name__}"
        where = "fn" if len(outs) == 1 else f"output {k} of fn"
        return (f"gradcheck: {where} differs between two calls with the same inputs ({said}): fn is random (dropout "
                "in training mode? call module.eval() first, or seed inside fn), and central differences of a random "
                "function mean nothing")
    return ""


def _name(x, k: int) -> str:
    """How a message names input ``k``: its position, and its name if it has one (``input 1 'W'``)."""
    name = getattr(x, "name", None)
    return f"{k} {name!r}" if name else f"{k}"


def _as_leaves(inputs) -> list:
    """``inputs``, with each result of operations that wants a gradient replaced by a leaf of the same values
    (one per tensor, however often it is passed): it is what is differentiated, and only leaves keep ``.grad``."""
    leaves = {}
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad and not x.is_leaf and id(x) not in leaves:
            leaves[id(x)] = x.detach().requires_grad_()
    return [leaves.get(id(x), x) for x in inputs]


def _other_leaves(root: Tensor, inputs) -> list[Tensor]:
    """The leaves wanting a gradient that ``root`` depends on, other than ``inputs``: parameters ``fn`` closes over."""
    if root._ctx is None:
        return []
    mine, found = {id(x) for x in inputs}, {}
    for node in _topological_order(root):
        for t in node._ctx.inputs:
            if isinstance(t, Tensor) and t._ctx is None and t.requires_grad and id(t) not in mine:
                found[id(t)] = t
    return list(found.values())
