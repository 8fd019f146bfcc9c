r"""The affine map every projection of the Transformer is made of: :math:`xW + b`."""

from __future__ import annotations

from ..autograd import Tensor
from ..autograd.fused import Affine
from ._checks import require_float, require_same_dtype

__all__ = ["linear"]


def linear(x: Tensor, W: Tensor, b: Tensor | None = None, fused: bool = True) -> Tensor:
    r"""Apply the affine map :math:`y = xW + b` to the last axis of ``x``.

    .. math:: y_{\ldots, j} = \sum_i x_{\ldots, i}\, W_{ij} + b_j

    This is the paper's convention (:math:`QW_i^Q`, :math:`xW_1 + b_1` in eq. 2): ``W`` has shape
    ``(d_in, d_out)`` and multiplies from the right. PyTorch's ``nn.Linear`` stores the transpose,
    a ``weight`` of shape ``(d_out, d_in)``, and computes :math:`x W^\top + b`; to load its weights,
    transpose them.

    Parameters
    ----------
    x : Tensor
        ``(..., d_in)``, e.g. ``(batch, seq, d_model)``.
    W : Tensor
        ``(d_in, d_out)``.
    b : Tensor, optional
        ``(d_out,)``.
    fused : bool
        One operation, the bias added in place, with gradients :math:`\bar x = \bar y W^\top`,
        :math:`\bar W = x^\top \bar y`, :math:`\bar b = \sum \bar y` (:class:`~minitransformer.autograd.fused.Affine`,
        the default), or the composition ``x @ W + b`` below (``False``, the reference).

    Returns
    -------
    Tensor
        ``(..., d_out)``.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.functional import linear
    >>> W = mt.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])   # (d_in, d_out) = (2, 3)
    >>> linear(mt.tensor([[1.0, 2.0]]), W, mt.tensor([0.0, 0.0, 10.0])).numpy()
    array([[ 1.,  2., 13.]], dtype=float32)
    """
    _check_linear_inputs(x, W, b)
    if fused:
        return Affine.apply(x, W, b)
    y = x @ W  # (..., d_out)
    return y if b is None else y + b


def _check_linear_inputs(x: Tensor, W: Tensor, b: Tensor | None) -> None:
    """The checks of :func:`linear`, kept apart so that its body reads as the formula: each refuses, before any
    arithmetic, an integer or mixed dtype, a ``W`` that is not ``(d_in, d_out)`` (torch's ``(d_out, d_in)`` named as
    such), an ``x`` whose last axis is not ``d_in``, a ``b`` that is not ``(d_out,)``, naming the shapes at fault.
    """
    require_float("linear", "x", x)
    require_float("linear", "W", W)
    require_same_dtype("linear", "W", W, "x", x, fix="convert x with x.to('{a}') or the weights with .to('{b}') "
                                                      "(all of a model's: model.to(...))")
    if W.ndim != 2:
        raise ValueError(f"linear: W must have shape (d_in, d_out), got {W.shape}")
    if x.ndim == 0 or x.shape[-1] != W.shape[0]:
        torchs = x.ndim > 0 and x.shape[-1] == W.shape[1]  # W as torch's F.linear takes it, (d_out, d_in)
        raise ValueError(
            f"linear: x {x.shape} @ W {W.shape}: the last axis of x must equal d_in = {W.shape[0]}"
            + (f"; W {W.shape} is torch's layout, (d_out, d_in), where W here is (d_in, d_out): write W.T" if torchs
               else "")
        )
    if b is not None:
        require_float("linear", "b", b)
        require_same_dtype("linear", "W", W, "b", b)
        if b.shape != (W.shape[1],):
            raise ValueError(f"linear: b has shape {b.shape}, expected (d_out,) = ({W.shape[1]},) to match W {W.shape}")
