"""Layer 2: the autograd engine (``Tensor``, one ``Function`` per primitive, ``backward``, ``gradcheck``)."""

from . import compose, ops
from .compose import cast, concat, getitem, masked_fill, matmul, maximum, split, stack, take, where
from .engine import (
    Function,
    Tensor,
    broadcast_shapes,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
    unbroadcast,
)
from .gradcheck import GradcheckError, gradcheck, numerical_grad
from .graph import graph, to_dot, to_text

__all__ = [
    "Function", "Tensor", "ops", "compose", "broadcast_shapes", "cast", "concat", "detect_anomaly", "enable_grad",
    "getitem", "is_grad_enabled", "masked_fill", "matmul", "maximum", "no_grad", "split", "stack", "take",
    "unbroadcast", "where", "GradcheckError", "gradcheck", "numerical_grad", "graph", "to_dot", "to_text",
]
