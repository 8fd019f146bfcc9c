"""Stochastic gradient descent, with momentum, Nesterov momentum, dampening and weight decay (PyTorch's definitions)."""

from __future__ import annotations

from .._arguments import require_real
from ..autograd._torch_names import OPTIMIZER_KEYWORDS, torch_keywords
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Gradient descent, optionally with (Nesterov) momentum, dampening and L2 weight decay.

    With learning rate :math:`\gamma`, momentum :math:`\mu`, dampening :math:`\tau` and weight decay
    :math:`\lambda` (PyTorch's ``torch.optim.SGD``; Sutskever et al. 2013 put the learning rate inside the
    momentum buffer, a form that behaves differently when the rate changes):

    .. math::

        g_t &= \nabla_\theta L(\theta_{t-1}) + \lambda\, \theta_{t-1} \\
        b_t &= \mu\, b_{t-1} + (1 - \tau)\, g_t \qquad (b_1 = g_1) \\
        \theta_t &= \theta_{t-1} - \gamma\, d_t, \qquad
        d_t = \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\ b_t & \text{otherwise} \end{cases}

    With :math:`\mu = 0` this is plain :math:`\theta_t = \theta_{t-1} - \gamma g_t`; :math:`\tau = 0` (the
    default) is the undamped :math:`b_t = \mu b_{t-1} + g_t`. As in PyTorch, the first buffer is the gradient
    itself, not damped.

    Only ``params``, ``lr`` and ``momentum`` may be given by position, the first three of ``torch.optim.SGD``'s;
    the rest by keyword: torch's fourth is ``dampening``, a weight decay here once, and
    ``SGD(params, 0.1, 0.9, 0.1)`` is refused rather than read either way.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters (``requires_grad=True``) or parameter groups with their own settings.
    lr : float, optional
        :math:`\gamma`, the learning rate, >= 0. Required, unless every parameter group sets its own ``"lr"``
        (torch's default, 1e-3, is not assumed).
    momentum : float
        :math:`\mu` in [0, 1); 0 turns momentum off (with :math:`\mu \ge 1` the buffer never forgets
        a gradient and grows without bound).
    dampening : float
        :math:`\tau` in [0, 1], keyword only: the share of each new gradient held out of the buffer.
    weight_decay : float
        :math:`\lambda` >= 0, keyword only: the L2 penalty's coefficient (added to the gradient).
    nesterov : bool
        Keyword only: look ahead along the momentum (needs ``momentum > 0`` and ``dampening = 0``, as in PyTorch).

    Examples
    --------
    >>> import minitransformer as mt
    >>> w = mt.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward()          # dL/dw = 2 w = [2, -4]
    >>> opt.step()
    >>> w.numpy()                         # w - 0.1 * 2 w = 0.8 w
    array([ 0.8, -1.6], dtype=float32)

    Groups that each set ``lr`` need none for the whole:

    >>> a, b = mt.zeros(1, requires_grad=True), mt.zeros(1, requires_grad=True)
    >>> [g["lr"] for g in SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01}]).param_groups]
    [0.1, 0.01]
    """

    elementwise = True  # every entry on its own: step updates all parameters laid end to end
    state_entries = {"momentum_buffer": "array"}  # with momentum only; none without (load_state_dict checks)

    @torch_keywords(**OPTIMIZER_KEYWORDS)
    def __init__(self, params, lr: float | None = None, momentum: float = 0.0, *, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov}
        super().__init__(params, defaults)

    def add_param_group(self, group: dict) -> None:
        """:meth:`Optimizer.add_param_group`; a group without ``"lr"`` needs the ``lr`` the optimizer was given."""
        if self.defaults["lr"] is None and isinstance(group, dict) and "lr" not in group:
            name = type(self).__name__
            raise TypeError(
                f"{name}: lr is required: {name}(params, lr=...), unless every parameter group sets its own 'lr' "
                f"(parameter group {len(self.param_groups)} sets none; torch's default lr=1e-3 is not assumed here)"
            )
        super().add_param_group(group)

    def check_group(self, group: dict) -> None:
        name = type(self).__name__  # a subclass's name in its messages, as Adam's
        super().check_group(group)
        group["momentum"] = require_real(name, "momentum", group["momentum"], low=0.0, high=1.0, high_open=True)
        group["dampening"] = require_real(name, "dampening", group["dampening"], low=0.0, high=1.0)
        group["weight_decay"] = require_real(name, "weight_decay", group["weight_decay"], low=0.0)
        if not isinstance(group["nesterov"], bool):
            raise TypeError(f"{name}: nesterov must be True or False, got {group['nesterov']!r}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{name}: Nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def update(self, xp, theta, g, group, state):
        """The SGD step (the formula above) for one parameter: ``theta``, ``g`` of one shape -> new ``theta``."""
        gamma, mu, tau, lam = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        if lam != 0:
            g = g + lam * theta  # the gradient of the L2 penalty (lambda/2) ||theta||^2
        if mu != 0:
            b = state.get("momentum_buffer")
            # b_1 = g_1, copied: g may be a view of p.grad's array, which a later backward without zero_grad
            # between adds into in place (clipping does not: clip_grad_norm_ assigns a new array)
            b = xp.asarray(g, copy=True) if b is None else mu * b + (1 - tau) * g
            state["momentum_buffer"] = b
            g = g + mu * b if group["nesterov"] else b
        return theta - gamma * g

    def load_state_dict(self, state_dict: dict) -> None:
        """:meth:`Optimizer.load_state_dict`; a state saved before SGD had ``dampening`` loads with dampening 0,
        the formula it was saved with."""
        if isinstance(state_dict, dict) and isinstance(state_dict.get("param_groups"), list | tuple):
            groups = [{"dampening": 0.0, **g} if isinstance(g, dict) and "nesterov" in g and "dampening" not in g
                      else g for g in state_dict["param_groups"]]
            state_dict = {**state_dict, "param_groups": groups}
        super().load_state_dict(state_dict)
