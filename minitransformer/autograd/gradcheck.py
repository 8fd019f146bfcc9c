r"""Finite-difference checks of ``backward``: the test every primitive and formula must pass.

For a function :math:`f` and a random cotangent :math:`v` (so non-scalar outputs are checked
too), the analytic gradient of :math:`s(x) = \langle v, f(x) \rangle` from ``backward()`` must
match the central difference

.. math:: \frac{\partial s}{\partial x_i} \approx \frac{s(x + \epsilon e_i) - s(x - \epsilon e_i)}{2\epsilon}

element by element, within ``atol + rtol * |numerical|``. Run it in float64: in float32 the
difference quotient itself has an error of about 1e-3.
"""

from __future__ import annotations

import numpy as np

from .engine import Tensor, _topological_order, no_grad

__all__ = ["gradcheck", "GradcheckError", "numerical_grad"]


class GradcheckError(AssertionError):
    r"""The analytic gradient of some input disagrees with the central difference.

    Raised by :func:`gradcheck`; the message names the input, the worst element and both
    derivatives. An ``AssertionError``, so a failed check fails a test as an ``assert`` would.

    Examples
    --------
    A ``backward`` that forgot the factor 2 of :math:`d(x^2)/dx = 2x`:

    >>> import minitransformer as mt
    >>> class BadSquare(mt.Function):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, grad):
    ...         return (grad * self.x,)             # should be 2 * grad * x
    >>> x = mt.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    >>> try:
    ...     mt.gradcheck(BadSquare.apply, x)
    ... except mt.autograd.GradcheckError as e:
    ...     print(str(e).split(": received")[0])
    gradcheck: input 0 (shape (2,)) at index (1,)
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

    The outputs are reduced to :math:`s = \sum_k \langle v_k, f_k \rangle` with a random cotangent
    :math:`v` (seeded), so every element of a non-scalar output is checked; each input's ``.grad``
    from ``s.backward()`` must match :func:`numerical_grad` element by element,
    :math:`|\text{analytic} - \text{numerical}| \le \text{atol} + \text{rtol}\,|\text{numerical}|`;
    a NaN or infinity in either fails.
    The inputs' ``.grad`` are cleared first and hold the analytic gradient afterwards; other tensors that
    ``fn`` uses (parameters) keep theirs as it was. A tensor passed twice is differentiated as one (the sum
    over its uses, as in PyTorch), and a result of operations as a leaf of the same values.

    Parameters
    ----------
    fn : callable
        Takes the tensors, returns a tensor (or a tuple of tensors).
    *inputs : Tensor
        float64 tensors; those with ``requires_grad=True`` are checked (leaves or results of operations).
    eps, atol, rtol : float
        Step of the difference quotient; tolerances ``|analytic - numerical| <= atol + rtol * |numerical|``.
    seed : int
        Seed of the random cotangent.
    raise_exception : bool
        On a mismatch, raise (the default) or return False.

    Returns
    -------
    bool
        True when every gradient matches; False on a mismatch with ``raise_exception=False``.

    Raises
    ------
    GradcheckError
        On a mismatch, naming the input, the worst element, and both derivatives.
    TypeError
        If an input that requires grad is not float64.

    Examples
    --------
    >>> import minitransformer as mt
    >>> x = mt.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True)
    >>> gradcheck(lambda t: (t * t).tanh(), x)
    True
    """
    for k, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype_name != "float64":
            raise TypeError(
                f"gradcheck: input {k} is {x.dtype_name}; use float64 (x.to('float64')), since float32 "
                "central differences are only accurate to about 1e-3"
            )
    inputs = _as_leaves(inputs)
    rng = np.random.default_rng(seed)
    with no_grad():
        out = fn(*inputs)
    outs = out if isinstance(out, tuple | list) else (out,)
    cotangent = [rng.standard_normal(o.shape) for o in outs]
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
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.numpy().astype(np.float64)
        numerical = numerical_grad(fn, inputs, cotangent, k, eps)
        with np.errstate(invalid="ignore"):  # inf - inf is NaN: a failure, not a warning
            error = np.abs(analytic - numerical)
        allowed = atol + rtol * np.abs(numerical)
        outside = ~(error <= allowed)  # written so that NaN (compared, always False) is outside too
        if outside.any():
            excess = np.where(np.isfinite(error), error - allowed, np.inf)  # a NaN or inf is the worst
            worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
            message = (
                f"gradcheck: input {k} (shape {x.shape}) at index {tuple(int(i) for i in worst)}: received "
                f"derivative {analytic[worst]:.10g}, expected {numerical[worst]:.10g} from central difference "
                f"(abs error {error[worst]:.3g}, atol={atol}, rtol={rtol}; "
                f"{int(outside.sum())} of {outside.size} elements outside tolerance)"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


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
