"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay (PyTorch's definitions)."""

from __future__ import annotations

from .._arguments import require_real
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Gradient descent, optionally with (Nesterov) momentum and L2 weight decay.

    With learning rate :math:`\gamma`, momentum :math:`\mu` and weight decay :math:`\lambda`
    (PyTorch's ``torch.optim.SGD`` without dampening; Sutskever et al. 2013 put the learning rate
    inside the momentum buffer, a form that behaves differently when the rate changes):

    .. math::

        g_t &= \nabla_\theta L(\theta_{t-1}) + \lambda\, \theta_{t-1} \\
        b_t &= \mu\, b_{t-1} + g_t \qquad (b_1 = g_1) \\
        \theta_t &= \theta_{t-1} - \gamma\, d_t, \qquad
        d_t = \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\ b_t & \text{otherwise} \end{cases}

    With :math:`\mu = 0` this is plain :math:`\theta_t = \theta_{t-1} - \gamma g_t`.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters (``requires_grad=True``) or parameter groups with their own settings.
    lr : float
        :math:`\gamma`, the learning rate, >= 0.
    momentum : float
        :math:`\mu` in [0, 1); 0 turns momentum off (with :math:`\mu \ge 1` the buffer never forgets
        a gradient and grows without bound).
    weight_decay : float
        :math:`\lambda` >= 0, the L2 penalty's coefficient (added to the gradient).
    nesterov : bool
        Look ahead along the momentum (needs ``momentum > 0``).

    Examples
    --------
    >>> import minitransformer as mt
    >>> w = mt.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward()          # dL/dw = 2 w = [2, -4]
    >>> opt.step()
    >>> w.numpy()                         # w - 0.1 * 2 w = 0.8 w
    array([ 0.8, -1.6], dtype=float32)
    """

    elementwise = True  # every entry on its own: step updates all parameters laid end to end

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov}
        super().__init__(params, defaults)

    def check_group(self, group: dict) -> None:
        name = type(self).__name__  # a subclass's name in its messages, as Adam's
        super().check_group(group)
        group["momentum"] = require_real(name, "momentum", group["momentum"], low=0.0, high=1.0, high_open=True)
        group["weight_decay"] = require_real(name, "weight_decay", group["weight_decay"], low=0.0)
        if not isinstance(group["nesterov"], bool):
            raise TypeError(f"{name}: nesterov must be True or False, got {group['nesterov']!r}")
        if group["nesterov"] and group["momentum"] <= 0:
            raise ValueError(f"{name}: Nesterov momentum needs momentum > 0, got momentum={group['momentum']}")

    def update(self, xp, theta, g, group, state):
        """The SGD step (the formula above) for one parameter: ``theta``, ``g`` of one shape -> new ``theta``."""
        gamma, mu, lam = group["lr"], group["momentum"], group["weight_decay"]
        if lam != 0:
            g = g + lam * theta  # the gradient of the L2 penalty (lambda/2) ||theta||^2
        if mu != 0:
            b = state.get("momentum_buffer")
            # b_1 = g_1, copied: g may be a view of p.grad's array, which a later backward without zero_grad
            # between adds into in place (clipping does not: clip_grad_norm_ assigns a new array)
            b = xp.asarray(g, copy=True) if b is None else mu * b + g
            state["momentum_buffer"] = b
            g = g + mu * b if group["nesterov"] else b
        return theta - gamma * g
