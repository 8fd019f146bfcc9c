"""Layer 2: the autograd engine (``Tensor``, one ``Function`` per primitive, ``backward``, ``gradcheck``)."""

from . import ops
from .engine import (
    Function,
    Tensor,
    broadcast_shapes,
    cast,
    concat,
    detect_anomaly,
    enable_grad,
    getitem,
    is_grad_enabled,
    masked_fill,
    matmul,
    maximum,
    no_grad,
    split,
    stack,
    take,
    unbroadcast,
    where,
)
from .gradcheck import GradcheckError, gradcheck, numerical_grad
from .graph import graph, to_dot, to_text

__all__ = [
    "Function", "Tensor", "ops", "broadcast_shapes", "cast", "concat", "detect_anomaly", "enable_grad",
    "getitem", "is_grad_enabled", "masked_fill", "matmul", "maximum", "no_grad", "split", "stack", "take",
    "unbroadcast", "where", "GradcheckError", "gradcheck", "numerical_grad", "graph", "to_dot", "to_text",
]
