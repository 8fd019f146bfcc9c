"""Gradient clipping by global norm (Pascanu, Mikolov & Bengio 2013): one bad batch cannot throw the model far."""

from __future__ import annotations

import math

from .. import backend as _backend
from .._arguments import is_real, require_real
from ..autograd import Tensor
from ..autograd._torch_names import CLIP_KEYWORDS, torch_keywords
from .optimizer import listed_parameters

__all__ = ["clip_grad_norm_"]


@torch_keywords(**CLIP_KEYWORDS)
def clip_grad_norm_(params, max_norm: float, norm_type: float | str = 2.0, *, eps: float = 1e-6) -> Tensor:
    r"""Scale all gradients by one factor so that their global norm is at most ``max_norm``.

    The global norm of every gradient laid end to end, L2 (``norm_type=2``, the default) or the largest entry
    (``norm_type=inf``), then one factor for all:

    .. math::

        \lVert g \rVert_2 = \sqrt{\textstyle\sum_{p} \sum_i g_{p,i}^2}, \qquad
        \lVert g \rVert_\infty = \max_{p,\,i} |g_{p,i}|, \qquad
        g_p \leftarrow g_p \cdot \min\!\left(1,\ \frac{\text{max\_norm}}{\lVert g \rVert + \epsilon}\right)

    The signature is ``torch.nn.utils.clip_grad_norm_``'s: ``clip_grad_norm_(params, 1.0, 2.0)`` is the L2 norm,
    ``clip_grad_norm_(params, 1.0, float("inf"))`` (or ``"inf"``) the largest entry, and the other norms torch
    takes are refused; :math:`\epsilon` is given by keyword only (torch fixes it at :math:`10^{-6}`).

    The direction of the whole update is kept; only its length is capped. The factor is computed
    as an array (no Python ``if`` on the norm), so a GPU never waits for the host, and applied as a division by
    :math:`\max(1, (\lVert g \rVert + \epsilon) / \text{max\_norm})`: the factor itself is subnormal for a float32
    norm above :math:`8.5 \cdot 10^{37}` max_norm, and CuPy flushes subnormals to 0.
    Where :math:`\lVert g \rVert + \epsilon \le` ``max_norm`` the factor is exactly 1 and the gradients are
    unchanged (a norm within :math:`\epsilon` below ``max_norm`` is scaled by a hair). As
    ``torch.nn.utils.clip_grad_norm_``.

    The L2 norm is computed as :math:`m \lVert g / m \rVert_2` with :math:`m = \max_i |g_i|`, so no square
    overflows (a float32 ``2e19`` squared does), nor do tiny ones vanish: the norm is right whenever it is
    within the dtype's range (float32: ``3.4e38``). That costs five array operations, whatever the number of
    parameters (the inf norm is :math:`m` itself). A non-finite gradient gives a non-finite norm: ``inf`` scales
    the finite gradients to 0 and the infinite ones to NaN, ``nan`` makes every gradient NaN, as in PyTorch
    (``error_if_nonfinite=False``).
    Refusing it here would make the host wait for the norm at every step; a
    :class:`~minitransformer.train.Trainer` reports the NaN weights and loss that follow as
    :class:`~minitransformer.train.TrainingDiverged` when it next reads the loss.

    Parameters
    ----------
    params : Tensor or iterable of Tensor
        Parameters whose ``.grad`` is clipped; those without a gradient are skipped. None at all is refused (torch
        returns a norm of 0): most often it is ``model.parameters()`` used up by an optimizer given the same
        generator, and nothing would be clipped.
    max_norm : float
        The largest global norm allowed (> 0).
    norm_type : float or str
        2 (the L2 norm, the default) or ``float("inf")`` (also ``"inf"``: the largest :math:`|g_{p,i}|`), as
        torch's third argument; any other is refused.
    eps : float
        :math:`\epsilon` >= 0, keyword only: keeps the factor finite when every gradient is 0.

    Returns
    -------
    Tensor
        The global norm before clipping, a 0-d tensor on the gradients' backend (call ``.item()``
        to log it: that is the one place the host waits).

    Examples
    --------
    >>> import minitransformer as mt
    >>> w = mt.tensor([3.0, 4.0], requires_grad=True)
    >>> w.grad = mt.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], max_norm=1.0).item()      # ||g||_2 = 5
    5.0
    >>> w.grad.numpy().round(6)                         # g * 1 / (5 + 1e-6)
    array([0.6, 0.8], dtype=float32)
    >>> w.grad = mt.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], 1.0, "inf").item()        # ||g||_inf = max |g_i| = 4
    4.0
    >>> w.grad.numpy().round(6)                         # g * 1 / (4 + 1e-6)
    array([0.75, 1.  ], dtype=float32)
    """
    params = [params] if isinstance(params, Tensor) else listed_parameters("clip_grad_norm_", params,
                                                                           "a Tensor or an iterable of Tensors")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm_: parameter {i} is a {type(p).__name__}, not a Tensor")
    max_norm = require_real("clip_grad_norm_", "max_norm", max_norm, low=0.0, low_open=True)
    eps = require_real("clip_grad_norm_", "eps", eps, low=0.0)  # Python floats: they mix with every backend's arrays
    infinity_norm = _is_infinity_norm(norm_type)
    grads = [p.grad for p in params if p.grad is not None and p.grad.size]  # an empty one adds nothing to the norm
    if not grads:  # none yet (before backward(), or frozen): nothing to clip, norm 0, as in torch
        be = params[0].backend
        return Tensor._wrap(be.xp.zeros((), dtype=be.dtype(params[0].dtype_name)), be)
    be, first = grads[0].backend, grads[0]
    for g in grads:
        if g.backend is not be:
            raise _backend.BackendError(
                f"clip_grad_norm_: gradients live on different backends ({be.name} and {g.backend.name})"
            )
        if g.dtype != first.dtype:  # one norm over all: concat would promote float32 to float64 silently
            raise TypeError(
                f"clip_grad_norm_: gradients have different dtypes ({first.dtype_name} {first.shape} and "
                f"{g.dtype_name} {g.shape}); give the parameters one dtype, e.g. model.to('{first.dtype_name}')"
            )
    xp = be.xp
    # ||g|| of every gradient laid end to end, a few array operations in all, not a few per parameter;
    # L2 as m ||g / m|| with m = max |g_i|: no square overflows, however large a finite gradient (2e19^2 does, float32)
    g_all = xp.concat([xp.reshape(g.data, (-1,)) for g in grads])
    largest = xp.max(xp.abs(g_all))  # max |g_i|
    if infinity_norm:  # ||g||_inf = max |g_i|: no square, nothing to overflow
        norm = largest
    else:
        info = xp.finfo(g_all.dtype)
        # m kept in [smallest normal, max]: all-zero gradients give 0 / m = 0, and an inf one an inf norm, not inf / inf
        # (backend.clip: no host read on CuPy, where xp.clip makes four)
        m = _backend.clip(xp, largest, float(info.smallest_normal), float(info.max))
        scaled = g_all / m  # within [-1, 1]
        norm = xp.sqrt(xp.sum(scaled * scaled)) * m
    # the factor min(1, max_norm / (||g|| + eps)), applied as a division by its inverse: a float32 factor below
    # 1.2e-38 (||g|| above 8.5e37 max_norm) is subnormal, which CuPy's kernels flush to 0 (they are compiled with
    # -ftz), and every gradient would become 0; a divisor of at least 1 never is
    divisor = xp.maximum((norm + eps) / max_norm, xp.asarray(1.0, dtype=norm.dtype))
    for g in grads:
        g.data = g.data / divisor  # a new array, assigned: the Tensor .grad stays the same object
    return Tensor._wrap(norm, be)


def _is_infinity_norm(norm_type) -> bool:
    """Whether ``norm_type`` (torch's third argument) asks for the inf norm (``float("inf")`` or ``"inf"``) rather than
    L2 (2); any other is refused, naming the two supported, before any arithmetic."""
    if isinstance(norm_type, str) and norm_type.strip().lower() == "inf":
        return True
    if is_real(norm_type) and float(norm_type) in (2.0, math.inf):
        return float(norm_type) == math.inf
    like_eps = is_real(norm_type) and 0 <= float(norm_type) < 1  # the third argument was eps here before
    raise ValueError(
        f"clip_grad_norm_: norm_type must be 2 (the L2 norm, sqrt(sum g^2)) or inf (float('inf') or 'inf': "
        f"max |g|), got {norm_type!r}; other norms are not supported"
        + ("; eps is keyword only: clip_grad_norm_(params, max_norm, eps=...)" if like_eps else "")
    )
