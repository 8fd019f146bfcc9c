"""Adam (Kingma & Ba 2015) and AdamW (decoupled weight decay, Loshchilov & Hutter 2019)."""

from __future__ import annotations

from .._arguments import require_real
from ..autograd._torch_names import OPTIMIZER_KEYWORDS, torch_keywords
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW", "PAPER_BETAS", "PAPER_EPS"]

#: :math:`(\beta_1, \beta_2)` of "Attention Is All You Need", section 5.3 (:meth:`Adam.paper` uses them)
PAPER_BETAS = (0.9, 0.98)
#: :math:`\epsilon` of "Attention Is All You Need", section 5.3
PAPER_EPS = 1e-9


class Adam(Optimizer):
    r"""Adam: each parameter's step scaled by running averages of its gradient and squared gradient.

    Kingma & Ba 2015, Algorithm 1, with step count :math:`t = 1, 2, \ldots` and
    :math:`m_0 = v_0 = 0`:

    .. math::

        g_t &= \nabla_\theta L(\theta_{t-1}) + \lambda\, \theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \hat m_t &= m_t / (1 - \beta_1^t), \qquad \hat v_t = v_t / (1 - \beta_2^t) \\
        \theta_t &= \theta_{t-1} - \alpha\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    The division by :math:`1 - \beta^t` (bias correction) undoes the pull of :math:`m_0 = v_0 = 0`
    towards zero in the first steps. :math:`\lambda` (``weight_decay``) adds an L2 penalty's gradient,
    as ``torch.optim.Adam`` does; for decay that is not rescaled by :math:`\hat v`, use :class:`AdamW`.
    The Transformer paper's settings are :meth:`Adam.paper`.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters (``requires_grad=True``) or parameter groups with their own settings.
    lr : float
        :math:`\alpha` >= 0.
    betas : (float, float)
        :math:`(\beta_1, \beta_2)`, each in [0, 1): how slowly the two averages forget.
    eps : float
        :math:`\epsilon` > 0, keeps the step finite where :math:`\hat v_t` is 0 (an entry whose
        gradients so far were all 0 moves by :math:`0 / (0 + \epsilon) = 0`; with :math:`\epsilon = 0`, NaN).
        float16 parameters are refused: :math:`\epsilon = 10^{-8}` rounds to 0 there.
    weight_decay : float
        :math:`\lambda` >= 0.
    amsgrad : bool
        False only: torch's sixth argument, taken so that torch's code runs; True (AMSGrad) is refused.
        The order of the arguments is ``torch.optim.Adam``'s.

    Notes
    -----
    Each parameter's state holds ``step`` and the two averages ``m``, ``v``, arrays of the parameter's
    shape on its backend, updated in place at each step (as in PyTorch).

    Examples
    --------
    >>> import minitransformer as mt
    >>> w = mt.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()                        # step 1: m_hat = g, v_hat = g^2, so w moves by lr * sign(g)
    >>> w.numpy()
    array([ 0.9, -1.9], dtype=float32)
    """

    elementwise = True  # every entry on its own: step updates all parameters laid end to end
    decoupled_weight_decay = False
    float16_breaks = ("in Adam's step eps (1e-8 by default) rounds to 0 in float16, and so does (1 - beta2) g^2 for a "
                      "gradient g below about 5e-3 (beta2 = 0.999), so the step divides by 0: NaN where g is 0, inf "
                      "elsewhere")
    state_entries = {"step": "count", "m": "array", "v": "array >= 0"}  # what update writes (load_state_dict checks)

    @torch_keywords(**OPTIMIZER_KEYWORDS)
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        _refuse_amsgrad(type(self).__name__, amsgrad)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @classmethod
    def paper(cls, params, lr: float = 1e-3, weight_decay: float = 0.0):
        r"""Adam with the settings of "Attention Is All You Need" (section 5.3).

        :math:`\beta_1 = 0.9`, :math:`\beta_2 = 0.98`, :math:`\epsilon = 10^{-9}`. The paper varies
        the learning rate with :class:`~minitransformer.optim.WarmupSchedule`, which overwrites ``lr``.

        Examples
        --------
        >>> import minitransformer as mt
        >>> opt = Adam.paper([mt.zeros(3, requires_grad=True)])
        >>> opt.param_groups[0]["betas"], opt.param_groups[0]["eps"]
        ((0.9, 0.98), 1e-09)
        """
        return cls(params, lr=lr, betas=PAPER_BETAS, eps=PAPER_EPS, weight_decay=weight_decay)

    def check_group(self, group: dict) -> None:
        name = type(self).__name__
        super().check_group(group)
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta_1, beta_2), got {betas!r}")
        group["betas"] = tuple(
            require_real(name, f"beta_{i}", beta, low=0.0, high=1.0, high_open=True) for i, beta in enumerate(betas, 1)
        )
        group["eps"] = require_real(name, "eps", group["eps"], low=0.0, low_open=True)  # 0 would give 0 / 0
        group["weight_decay"] = require_real(name, "weight_decay", group["weight_decay"], low=0.0)

    def update(self, xp, theta, g, group, state):
        r"""Adam's step (the formula above) for one parameter: ``theta``, ``g`` of one shape -> new ``theta``.

        The same method serves :class:`AdamW`, whose ``decoupled_weight_decay`` is True: its weight decay shrinks
        ``theta`` itself, :math:`\theta (1 - \alpha \lambda)`, and the moments take the plain gradient (the
        formula in :class:`AdamW`'s docstring); Adam's (False) adds :math:`\lambda \theta` to ``g``.
        ``state`` is this parameter's dict, empty at its first step: keep ``step``, ``m`` and ``v`` there.
        Return a new array, not ``theta`` written in place (``theta -= ...``): the parameters' old arrays may be
        shared (a ``detach()`` of the parameter holds the same array).
        """
        alpha, (beta_1, beta_2), eps, lam = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        ### BEGIN SOLUTION A5: weight decay (AdamW: decoupled, see docstring), moments m, v in state, bias corrections
        if lam != 0:
            if self.decoupled_weight_decay:
                theta = theta * (1 - alpha * lam)  # AdamW: shrink theta itself, outside the moments
            else:
                g = g + lam * theta  # Adam: the L2 penalty's gradient goes through the moments
        if not state:
            state.update(step=0, m=xp.zeros_like(theta), v=xp.zeros_like(theta))
        t = state["step"] = state["step"] + 1
        m, v = state["m"], state["v"]  # the optimizer's own arrays, updated in place (as PyTorch does): no new ones
        m *= beta_1
        m += (1 - beta_1) * g  # m = beta_1 m + (1 - beta_1) g
        v *= beta_2
        v += (1 - beta_2) * g * g  # v = beta_2 v + (1 - beta_2) g^2
        m_hat = m / (1 - beta_1**t)
        v_hat = v / (1 - beta_2**t)
        return theta - alpha * m_hat / (xp.sqrt(v_hat) + eps)
        ### END SOLUTION

    def update_with_kernels(self, kernels, theta, g, group, state):
        """:meth:`update` as one CUDA kernel (:meth:`~minitransformer.kernels.CudaKernels.adam_update`): the same
        formula in the same order, with the same scalars (here, on the host) and the same state; ``theta`` and the
        moments are written in place, so the parameters' views of them stay valid."""
        if not state:
            state.update(step=0, m=kernels.cupy.zeros_like(theta), v=kernels.cupy.zeros_like(theta))
        t = state["step"] = state["step"] + 1
        theta, state["m"], state["v"] = kernels.adam_update(
            theta, g, state["m"], state["v"], t, group["lr"], *group["betas"], group["eps"], group["weight_decay"],
            self.decoupled_weight_decay)
        return theta


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization").

    The decay shrinks the parameters directly instead of entering the gradient, so it is not divided
    by :math:`\sqrt{\hat v_t}` (PyTorch's ``torch.optim.AdamW`` form, decay scaled by the learning rate):

    .. math::

        \theta' &= \theta_{t-1} (1 - \alpha \lambda) \\
        \theta_t &= \theta' - \alpha\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    with :math:`m_t, v_t, \hat m_t, \hat v_t` as in :class:`Adam`, from the plain gradient
    :math:`g_t = \nabla_\theta L(\theta_{t-1})`. Parameters as :class:`Adam`; ``weight_decay``
    defaults to 0.01.

    Examples
    --------
    >>> import minitransformer as mt
    >>> w = mt.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()                        # step 1: w (1 - 0.1 * 0.5) - 0.1 * sign(g)
    >>> w.numpy().round(4)
    array([ 0.85, -1.8 ], dtype=float32)
    """

    decoupled_weight_decay = True

    @torch_keywords(**OPTIMIZER_KEYWORDS)
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


def _refuse_amsgrad(name: str, amsgrad) -> None:
    """``amsgrad=False`` (torch's default, its sixth argument, accepted as torch's code writes it); True refused."""
    if amsgrad is False:
        return
    if amsgrad is True:
        raise ValueError(
            f"{name}: amsgrad=True (AMSGrad, Reddi et al. 2018: the step divided by the largest sqrt(v_hat) so far) is "
            f"not implemented; {name} here steps by alpha m_hat / (sqrt(v_hat) + eps), Kingma & Ba's Algorithm 1"
        )
    raise TypeError(f"{name}: amsgrad must be False (the only form here), got {amsgrad!r}")
