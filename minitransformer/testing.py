"""Helpers for checking formulas, shared by the test suite, the tools and students' own checks.

>>> rel_err([1.0, 2.0], [1.0, 2.0 + 1e-9]) < 1e-9
True
"""

from __future__ import annotations

import numpy as np

from .autograd import Tensor, gradcheck

__all__ = ["rel_err", "close_to_torch", "name_known_mistake", "name_known_mistake_of", "gradcheck_module"]


def rel_err(got, expected) -> float:
    r"""Normwise relative error :math:`\max|got - expected| / \max|expected|`, over the whole array.

    Scaled by the reference's largest element, so a tiny entry of a large tensor does not blow
    up the figure the way an elementwise relative error would. Tensors of any backend, arrays or
    lists are accepted.

    Parameters
    ----------
    got, expected : Tensor or array_like
        The value to check and the reference, of one shape (or shapes that broadcast).

    Returns
    -------
    float
        0.0 when they are equal (and when both are empty). Against an all-zero reference the error is
        ``max|got| / 1e-300``: any nonzero ``got`` is a huge error, not a division by zero.

    Examples
    --------
    An error of 0.1 in a tensor whose largest element is 100:

    >>> round(rel_err([1.1, 100.0], [1.0, 100.0]), 6)
    0.001
    """
    got = got.numpy() if isinstance(got, Tensor) else got
    expected = expected.numpy() if isinstance(expected, Tensor) else expected
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)
    return float(np.max(np.abs(got - expected), initial=0.0)) / scale


def close_to_torch(err: float, what: str, tol: float = 1e-6) -> None:
    """Assert that ``err``, a relative error against PyTorch (:func:`rel_err`), is under ``tol``.

    The message names ``what`` was compared; the figure is printed as a ``REL_ERR`` line (seen with
    ``pytest -s``).

    Parameters
    ----------
    err : float
        The relative error.
    what : str
        What was compared ("softmax along axis -1, the forward").
    tol : float
        The largest error allowed.

    Raises
    ------
    AssertionError
        Where ``err`` is ``tol`` or more (or NaN).

    Examples
    --------
    >>> close_to_torch(1e-9, "relu, the forward")
    REL_ERR relu, the forward 1.000e-09
    """
    print(f"REL_ERR {what} {err:.3e}")
    if not err < tol:  # (not a bare assert: python -O would take the check out, and every comparison would pass)
        raise AssertionError(f"{what}: relative error {err:.3g} against PyTorch, not under {tol:g}")


def name_known_mistake(got, expected, candidates, rtol=1e-7, atol=0.0, what="answer") -> str:
    """The first known wrong answer that ``got`` equals, said as the end of a failed check's message.

    A candidate is named only when it is wrong here, i.e. differs from ``expected`` at the check's own
    tolerance (under a causal mask "a row with no key left uniform" is the right answer), and ``got`` equals it
    at that same tolerance (``np.allclose(got, wrong, rtol, atol)``, as ``assert_allclose`` compares).

    Parameters
    ----------
    got, expected : Tensor or array_like
        The result to explain and the right answer.
    candidates : iterable of (array_like, str)
        Each known wrong answer and what the message says of it; one of another shape is passed over.
    rtol, atol : float
        The tolerances of the assertion that the message belongs to.
    what : str
        The noun of the message ("answer", "table").

    Returns
    -------
    str
        ``"; it equals the known wrong <what> with <said>"`` for the first such candidate, else ``""``.

    Examples
    --------
    >>> name_known_mistake([2.0], [1.0], [([1.0], "the right one"), ([2.0], "x doubled?")])
    '; it equals the known wrong answer with x doubled?'
    >>> name_known_mistake([1.0], [1.0], [([1.0], "the right one")])
    ''
    """
    got = np.asarray(got.numpy() if isinstance(got, Tensor) else got, dtype=np.float64)
    expected = np.asarray(expected.numpy() if isinstance(expected, Tensor) else expected, dtype=np.float64)
    for wrong, said in candidates:
        wrong = np.asarray(wrong.numpy() if isinstance(wrong, Tensor) else wrong, dtype=np.float64)
        if wrong.shape != got.shape:
            continue
        if wrong.shape == expected.shape and np.allclose(wrong, expected, rtol=rtol, atol=atol):
            continue  # not a mistake for this input
        if np.allclose(got, wrong, rtol=rtol, atol=atol):
            return f"; it equals the known wrong {what} with {said}"
    return ""


def name_known_mistake_of(formula, mistakes, got, rtol=1e-7, atol=0.0, what="answer") -> str:
    """:func:`name_known_mistake` with the answers a reference computes: the right one ``formula()``, and
    ``formula(**options)`` for each known mistake ``(options, said)`` of ``mistakes``.

    Parameters
    ----------
    formula : callable
        The reference with its inputs bound (``functools.partial(attention_np, Q, K, V)``, whose keywords a
        mistake's replace): with no keywords the right answer, with a mistake's the wrong one. It may return a
        tuple of results (an attention's output and weights).
    mistakes : iterable of (dict, str)
        Each known mistake: the keywords of ``formula`` that compute it, and what the message says of it.
    got : Tensor, array_like or tuple
        The result to explain; for a ``formula`` of several results, one for each (None for one not looked at),
        looked at in their order.
    rtol, atol : float or tuple of float
        The tolerances of the assertion; for a ``formula`` of several results, one for all or a tuple of one for
        each.
    what : str
        The noun of the message ("answer", "table").

    Returns
    -------
    str
        As :func:`name_known_mistake` says it, for the first result that equals a known wrong one, else ``""``.

    Examples
    --------
    >>> def square(x, doubled=False):
    ...     return [(2 if doubled else 1) * v * v for v in x]
    >>> name_known_mistake_of(lambda **o: square([1.0, 3.0], **o), [({"doubled": True}, "x^2 doubled?")], [2.0, 18.0])
    '; it equals the known wrong answer with x^2 doubled?'
    """
    right = formula()
    wrong = [(formula(**options), said) for options, said in mistakes]
    if not isinstance(right, tuple):
        return name_known_mistake(got, right, wrong, rtol, atol, what)
    rtols, atols = (t if isinstance(t, tuple) else (t,) * len(right) for t in (rtol, atol))
    for k, result in enumerate(got):
        candidates = [(answer[k], said) for answer, said in wrong]
        if result is not None and (said := name_known_mistake(result, right[k], candidates, rtols[k], atols[k], what)):
            return said
    return ""


def gradcheck_module(module, *inputs, **options) -> bool:
    """``gradcheck`` of ``module(*inputs)`` with respect to the inputs *and* every parameter.

    The parameters are passed to gradcheck as extra inputs; the function puts each one (or
    gradcheck's perturbed copy, a plain Tensor) into the module's slot before calling it, and
    the original Parameters are put back afterwards. Use a float64 module (``module.to("float64")``).

    Parameters
    ----------
    module : Module
        The module to check, in float64.
    *inputs : Tensor
        Its inputs, float64; those with ``requires_grad=True`` are checked too.
    **options
        Passed on to :func:`~minitransformer.autograd.gradcheck` (``eps``, ``atol``, ``rtol``, ...).

    Returns
    -------
    bool
        True, or what gradcheck says on a mismatch (it raises ``GradcheckError`` by default).

    Raises
    ------
    ValueError
        If the module, or a module inside it, is in training mode with dropout (``p`` or ``dropout`` above 0):
        dropout draws a new mask at each call, so the check could only fail; call ``module.eval()`` first.

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.manual_seed(0)
    >>> layer = mt.nn.Linear(3, 2).to("float64")
    >>> x = mt.randn(4, 3, dtype="float64", requires_grad=True)
    >>> gradcheck_module(layer, x)                 # x, layer.weight and layer.bias
    True
    >>> type(layer.weight).__name__                # put back
    'Parameter'

    Dropout in training mode draws a new mask at each call: evaluation mode first.

    >>> ffn = mt.nn.FeedForward(3, 4, dropout=0.3).to("float64")
    >>> gradcheck_module(ffn, x)                   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: gradcheck_module: FeedForward is in training mode with dropout (dropout: Dropout, p=0.3): ...
    >>> gradcheck_module(ffn.eval(), x)
    True
    """
    random = _random_in_training(module)
    if random:
        raise ValueError(
            f"gradcheck_module: {type(module).__name__} is in training mode with dropout ({'; '.join(random)}): "
            "dropout draws a new mask at each call, so central differences of it mean nothing; call "
            f"{type(module).__name__}.eval() first (gradcheck_module(module.eval(), ...))"
        )
    slots = [(path, owner, name) for path, owner in module.named_modules() for name in owner._parameters]
    slots = [(path, owner, name) for path, owner, name in slots if owner._parameters[name] is not None]
    for path, owner, name in slots:  # first, by name: gradcheck would call the weight "input 1", after the inputs
        p = owner._parameters[name]
        if p.requires_grad and p.dtype_name != "float64":
            raise TypeError(
                f"gradcheck_module: parameter {f'{path}.{name}' if path else name!r} of {type(module).__name__} is "
                f"{p.dtype_name} {p.shape}; use float64 (module.to('float64')), since float32 central differences "
                "are only accurate to about 1e-3"
            )
    slots = [(owner, name) for _, owner, name in slots]
    params = [owner._parameters[name] for owner, name in slots]
    n = len(inputs)

    def fn(*tensors):
        for (owner, name), t in zip(slots, tensors[n:]):
            owner._parameters[name] = t
        return module(*tensors[:n])

    try:
        return gradcheck(fn, *inputs, *params, **options)
    finally:
        for (owner, name), p in zip(slots, params):
            owner._parameters[name] = p


def _random_in_training(module) -> list[str]:
    """The modules in ``module`` (itself included) that draw dropout masks in training mode, each as
    ``"name: Class, p=0.3"``: those whose class names its dropout rate in ``dropout_rate`` (``nn.Dropout``: "p",
    ``nn.MultiHeadAttention``: "dropout"), that rate above 0. (Not any number called ``p``: an exponent is not random.
    A module of one's own that calls ``F.dropout`` is found by gradcheck itself, which calls ``fn`` twice.)"""
    found = []
    for name, m in module.named_modules():
        attribute = getattr(type(m), "dropout_rate", None)
        if attribute and m.training and getattr(m, attribute) > 0:
            found.append(f"{name or 'itself'}: {type(m).__name__}, {attribute}={getattr(m, attribute):g}")
    return found
