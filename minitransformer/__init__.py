"""minitransformer: the Transformer built from NumPy up, for learning.

Layers, bottom to top: ``backend`` (which array library computes), ``autograd`` (Tensor and
backward), ``functional`` (the formulas), ``nn`` (modules), ``optim``, ``data``, ``train``,
``viz``, ``cli``. ``mt.data``, ``mt.train``, ``mt.viz`` and ``mt.testing`` are imported when first named.

>>> import minitransformer as mt
>>> x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> (x @ x).sum().backward()
>>> x.grad.numpy()
array([[ 7., 11.],
       [ 9., 13.]], dtype=float32)
"""

import typing as _typing  # (not a public name: dir() lists the package's own)

from . import backend, functional, nn, optim
from .autograd import (
    Function,
    Tensor,
    cast,
    concat,
    detect_anomaly,
    enable_grad,
    gradcheck,
    is_grad_enabled,
    masked_fill,
    matmul,
    maximum,
    no_grad,
    split,
    stack,
    take,
    where,
)
from .autograd._torch_names import no_attribute as _no_attribute
from .autograd.creation import arange, full, ones, ones_like, rand, randint, randn, tensor, zeros, zeros_like
from .backend import manual_seed

__version__ = "0.1.0"

__all__ = [
    "backend", "functional", "nn", "optim",
    "Function", "Tensor", "cast", "concat", "detect_anomaly", "enable_grad", "gradcheck",
    "is_grad_enabled", "masked_fill", "matmul", "maximum", "no_grad", "split", "stack", "take", "where",
    "arange", "full", "ones", "ones_like", "rand", "randint", "randn", "tensor", "zeros", "zeros_like",
    "manual_seed", "__version__",
]


#: the layers above ``optim``, imported when first named (``mt.train.Trainer``), as ``import minitransformer.train``
#: does: a formula need not wait for matplotlib (``viz`` takes half a second more to import than all the rest)
_LAZY_SUBPACKAGES = ("data", "train", "viz", "testing")


if _typing.TYPE_CHECKING:  # what a type checker sees of them; mt.data is imported when first named
    from . import data as data  # (the redundant alias marks a re-export)
    from . import testing as testing
    from . import train as train
    from . import viz as viz
else:  # a type checker that saw this would take any name, mt.cat too, for a real one
    def __getattr__(name: str):
        # called only for a name the module lacks (PEP 562): PyTorch's names get the one to write here
        if name in _LAZY_SUBPACKAGES:
            import importlib  # here, not at the top: dir(mt) lists the package's names, not the modules it uses

            return importlib.import_module(f".{name}", __name__)
        raise _no_attribute(__name__, name)


def __dir__():
    return sorted({*globals(), *_LAZY_SUBPACKAGES})
