"""Layer 5: optimizers, the Transformer paper's learning-rate schedule, gradient clipping.

``SGD`` and ``Adam``/``AdamW`` follow PyTorch's definitions and names (``step``, ``zero_grad``,
``param_groups``, ``state_dict``), so a loop written for one reads the same here::

    opt = optim.Adam.paper(model.parameters())               # beta = (0.9, 0.98), eps = 1e-9
    schedule = optim.WarmupSchedule(opt, d_model=512)         # the paper's equation 3
    loss.backward()
    optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step(); opt.zero_grad(); schedule.step()

Every update runs on the parameters' own backend (NumPy, CuPy, array-api-strict), and the state
(momentum, Adam's moments) stays there; ``state_dict()`` gives it back as NumPy arrays for a checkpoint.
"""

from .adam import PAPER_BETAS, PAPER_EPS, Adam, AdamW
from .clip import clip_grad_norm_
from .optimizer import Optimizer
from .schedule import LambdaLR, LRScheduler, WarmupSchedule, noam_lr
from .sgd import SGD

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "PAPER_BETAS", "PAPER_EPS", "noam_lr", "LRScheduler", "WarmupSchedule",
    "LambdaLR", "clip_grad_norm_",
]
