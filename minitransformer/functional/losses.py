r"""The training losses: cross-entropy over a vocabulary (with the paper's label smoothing), and
binary cross-entropy on logits (for a yes/no classifier such as the document's section 5)."""

from __future__ import annotations

from .._arguments import is_integer, require_real
from ..autograd import Tensor, maximum, where
from ..autograd.fused import BinaryCrossEntropyWithLogits, CrossEntropy
from ._checks import as_targets, require_float
from .activations import log_softmax

__all__ = ["cross_entropy", "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}")


def _class_targets(op: str, logits: Tensor, targets, ignore_index):
    """``(y, kept)`` of a cross-entropy, once ``logits`` ``(..., C)`` and ``targets`` ``(...)`` are checked to fit:
    ``y``, the targets as int64 class indices with the ignored ones pointing at class 0 (their loss is dropped);
    ``kept``, where the targets count (bool, ``(...)``; all of them without ``ignore_index``). A target outside
    ``0..C-1`` is refused (:meth:`~minitransformer.backend.Backend.check_range`: on a GPU, at the next read)."""
    require_float(op, "logits", logits)
    if logits.ndim < 2:
        raise ValueError(f"{op}: logits must be (N, C) or (batch, T, C), got shape {logits.shape}")
    C = logits.shape[-1]
    if C == 0:
        raise ValueError(f"{op}: logits {logits.shape} have no classes (C = 0 on the last axis)")
    y = as_targets(op, targets, logits, classes=True)
    if tuple(y.shape) != logits.shape[:-1]:
        torchs = tuple(y.shape) == logits.shape[:1] + logits.shape[2:]  # (N, C, T), torch's
        raise ValueError(
            f"{op}: targets have shape {tuple(y.shape)}, expected {logits.shape[:-1]} for logits {logits.shape} "
            "(classes on the last axis)" + ("; logits (N, C, T) with the classes on axis 1 are torch's layout: "
                                            "here (N, T, C), as the models give them" if torchs else "")
        )
    if ignore_index is not None and not is_integer(ignore_index):  # a Python or NumPy integer, not a bool
        raise TypeError(f"{op}: ignore_index must be None or an integer (a target value), got {ignore_index!r}")
    xp = logits.backend.xp
    if y.dtype != xp.int64:  # int64 holds every class index; a narrow dtype would wrap (arange(300) in uint8: 0..43)
        y = xp.astype(y, xp.int64)
    kept = xp.ones(y.shape, dtype=xp.bool) if ignore_index is None else y != int(ignore_index)  # (...)
    y = xp.where(kept, y, xp.zeros_like(y))  # ignored positions point at class 0; their loss is dropped below
    extra = "" if ignore_index is None else f" or ignore_index={int(ignore_index)}"
    # torch's default ignore_index is -100, this library's None: the padding of targets made for torch is -100
    torchs = {-100: "-100 is torch's default ignore_index, none here: to leave those targets out of the loss, write "
                    "ignore_index=-100"} if ignore_index is None else None
    logits.backend.check_range(y, 0, C - 1, f"{op}: target {{bad}} is out of range for C = {C} classes "
                                            f"(expected 0..{C - 1}{extra})", hints=torchs)
    return y, kept


def cross_entropy(logits: Tensor, targets, ignore_index: int | None = None, label_smoothing: float = 0.0,
                  reduction: str = "mean", fused: bool = True) -> Tensor:
    r"""The cross-entropy between the predicted distribution and the (smoothed) target class.

    .. math::
        \ell_n = -\sum_{c=1}^{C} q_{n,c} \log \mathrm{softmax}(z_n)_c, \qquad
        q_{n,c} = (1 - \epsilon_{ls})\,[c = y_n] + \frac{\epsilon_{ls}}{C}

    With :math:`\epsilon_{ls} = 0` this is :math:`-\log p_{n, y_n}`, the negative log-likelihood of
    the correct class. Label smoothing (paper section 5.4, :math:`\epsilon_{ls} = 0.1`) moves a
    fraction :math:`\epsilon_{ls}` of the target's mass onto all :math:`C` classes uniformly; "this
    hurts perplexity, as the model learns to be more unsure, but improves accuracy and BLEU score". The
    definition of :math:`q` is exactly that of ``torch.nn.functional.cross_entropy``.

    Positions whose target is ``ignore_index`` (padding) contribute nothing, and ``"mean"`` divides
    by the number of the others: :math:`L = \sum_{n \in \text{kept}} \ell_n / |\text{kept}|`. If every
    target is ignored the mean is 0 with zero gradients (PyTorch returns NaN there).

    The fused operation picks the target log-probabilities :math:`\log p_{n, y_n}` with the array API's
    ``take_along_axis`` (or, where a backend lacks it, a one-hot mask, :math:`\sum_c [c = y_n] \log p_{n,c}`);
    the composition below forms :math:`q` and sums :math:`q_{n,c} \log p_{n,c}` over the classes, taking
    :math:`0 \cdot \log p = 0` (as in an entropy): a class with :math:`q_{n,c} = 0` adds nothing, even where its
    logit is :math:`-\infty` (a class masked out) and :math:`\log p_{n,c} = -\infty`.

    Parameters
    ----------
    logits : Tensor
        ``(N, C)`` or ``(batch, T, C)``: unnormalised scores, the classes on the **last** axis
        (PyTorch wants ``(batch, C, T)``; here the model's output ``(batch, T, vocab)`` goes in as is).
    targets : Tensor or array_like
        ``(N,)`` or ``(batch, T)`` integer class indices in ``[0, C)``, or ``ignore_index``.
    ignore_index : int, optional
        A target value to skip (usually the padding id). ``None``: every target counts.
    label_smoothing : float
        :math:`\epsilon_{ls}` in [0, 1].
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the per-position losses :math:`\ell_n`, shape of ``targets`` (0 where ignored).
    fused : bool
        One operation whose gradient is :math:`\mathrm{softmax}(z_n) - q_n`, scaled by the reduction
        (:class:`~minitransformer.autograd.fused.CrossEntropy`, the default), or the composition below, with
        :math:`q` formed as a ``(..., C)`` tensor (``False``, the reference).

    Returns
    -------
    Tensor
        A scalar, or the shape of ``targets`` for ``reduction="none"``.

    Examples
    --------
    >>> import math
    >>> import minitransformer as mt
    >>> from minitransformer.functional import cross_entropy
    >>> loss = cross_entropy(mt.tensor([[0.0, 0.0, 0.0, 0.0]]), mt.tensor([2]))   # uniform over 4 classes
    >>> abs(loss.item() - math.log(4)) < 1e-6
    True
    """
    op = "cross_entropy"
    y, kept = _class_targets(op, logits, targets, ignore_index)  # (...) each: the classes y_n, and which count
    eps = require_real(op, "label_smoothing", label_smoothing, 0.0, 1.0)
    _check_reduction(op, reduction)
    C, xp = logits.shape[-1], logits.backend.xp
    if fused:
        return CrossEntropy.apply(logits, targets=y, kept=None if ignore_index is None else kept, label_smoothing=eps,
                                  reduction=reduction)
    is_target = y[..., None] == xp.arange(C, dtype=xp.int64)  # (..., C): [c = y_n]
    q = Tensor((1.0 - eps) * xp.astype(is_target, logits.dtype) + eps / C, backend=logits.backend)  # rows sum to 1
    log_p = log_softmax(logits, axis=-1, fused=False)  # (..., C)
    if eps == 0.0:  # 0 * log p = 0: where q is 0, a -inf log p (a masked class) must not make 0 * -inf = nan
        log_p = where(Tensor(is_target, backend=logits.backend), log_p, 0.0)
    loss = -(q * log_p).sum(axis=-1)  # (...): l_n
    if ignore_index is not None:
        loss = where(Tensor(kept, backend=logits.backend), loss, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    n_kept = xp.sum(xp.astype(kept, logits.dtype))  # counted on the device: no host synchronisation
    return loss.sum() / Tensor(xp.where(n_kept > 0, n_kept, 1.0), backend=logits.backend)


def binary_cross_entropy_with_logits(logits: Tensor, targets, reduction: str = "mean", fused: bool = True) -> Tensor:
    r"""Binary cross-entropy of :math:`\sigma(z)` against targets :math:`y \in [0, 1]`, from the logits :math:`z`.

    .. math::
        \ell = -\left[y \log \sigma(z) + (1 - y) \log(1 - \sigma(z))\right]
             = \max(z, 0) - z\,y + \log\left(1 + e^{-|z|}\right)

    The right-hand form is the same number, rearranged so that no exponent is positive: it stays
    finite for :math:`|z| = 1000`, where :math:`\sigma(z)` rounds to 0 or 1 and the left-hand form
    would take :math:`\log 0`. Its last term is computed as :math:`\mathrm{log1p}(e^{-|z|})`: past
    :math:`|z| \approx 37` in float64 (17 in float32) :math:`1 + e^{-|z|}` rounds to 1, and ``log`` of
    it would give 0 instead of :math:`e^{-|z|}`. Its gradient is :math:`\sigma(z) - y`. This is the loss of the
    document's section 5 classifier (a sigmoid output with ``binary_crossentropy``), and
    ``torch.nn.functional.binary_cross_entropy_with_logits``.

    Parameters
    ----------
    logits : Tensor
        Any shape, floating point: :math:`z`, before the sigmoid.
    targets : Tensor or array_like
        The shape of ``logits``: probabilities of the positive class (0 or 1, or soft labels); values
        outside [0, 1] are not checked (as in PyTorch) and give a loss with no meaning.
    reduction : {"mean", "sum", "none"}
        The mean or the sum of the losses :math:`\ell`, or each of them (``"none"``). The mean of no losses
        (empty logits) is 0, as :func:`cross_entropy`'s where every target is ignored (PyTorch gives NaN).
    fused : bool
        One operation whose gradient is :math:`\sigma(z) - y`, scaled by the reduction
        (:class:`~minitransformer.autograd.fused.BinaryCrossEntropyWithLogits`, the default), or the
        composition below (``False``, the reference).

    Returns
    -------
    Tensor
        A scalar, or the shape of ``logits`` for ``reduction="none"``.

    Examples
    --------
    >>> import math
    >>> import minitransformer as mt
    >>> from minitransformer.functional import binary_cross_entropy_with_logits
    >>> loss = binary_cross_entropy_with_logits(mt.tensor([0.0]), mt.tensor([1.0]))   # -log(1/2)
    >>> abs(loss.item() - math.log(2)) < 1e-6
    True
    """
    op = "binary_cross_entropy_with_logits"
    require_float(op, "logits", logits)
    y = as_targets(op, targets, logits)
    if tuple(y.shape) != logits.shape:
        raise ValueError(f"{op}: targets have shape {tuple(y.shape)}, logits {logits.shape}; they must be equal")
    _check_reduction(op, reduction)
    if y.dtype != logits.dtype:  # (labels given as integers or float64)
        y = logits.backend.xp.astype(y, logits.dtype)
    if fused:
        return BinaryCrossEntropyWithLogits.apply(logits, targets=y, reduction=reduction)

    y = Tensor(y, backend=logits.backend)
    z = logits
    abs_z = maximum(z, -z)  # |z|; at z = 0 its gradient is 0 (the tie splits +1 and -1)
    # max(z, 0): at z = 0 the tie gives gradient 1/2, so the total there is sigma(0) - y = 1/2 - y
    loss = maximum(z, 0.0) - z * y + (-abs_z).exp().log1p()  # log(1 + e^{-|z|}), without rounding 1 + e^{-|z|}
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" or loss.size == 0 else loss.mean()  # the mean of no losses is 0
