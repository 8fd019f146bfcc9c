"""Which array library runs the arithmetic.

Every operation in minitransformer takes its array namespace ``xp`` from a :class:`Backend`,
never from ``numpy`` by name, so the same formula runs on:

* ``"numpy"``            -- the CPU (the default);
* ``"cupy"``             -- an NVIDIA GPU through CuPy;
* ``"array_api_strict"`` -- a CPU stand-in for "some other array library": it allows only what
  the Python array API standard allows, so a NumPy-only call cannot hide on the path CuPy takes.

The current backend is a plain module-level setting (not a ``ContextVar``): a choice made in one
notebook cell holds in the next. Choose it with::

    import minitransformer as mt
    mt.backend.use("cupy")            # from now on
    with mt.backend.use("array_api_strict"):
        ...                           # only inside the block
    # or: MINITRANSFORMER_BACKEND=cupy python train.py

The backend also owns what the array API standard lacks or leaves open: seeded random numbers,
scatter-add (the gradient of an embedding lookup), moving an array to the host, and dtype names.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from importlib.machinery import PathFinder

import numpy as np

from ._arguments import require_int

__all__ = [
    "Backend",
    "BackendError",
    "CounterRNG",
    "rng_state_kind",
    "available",
    "current",
    "get",
    "use",
    "manual_seed",
    "host_rng",
    "random_state_kept",
    "tf32_requested",
    "DEFAULT_FLOAT",
]


def _require_numpy_2(version: str) -> None:
    """NumPy 1 promotes a 0-d float32 array (a loss) with a Python number to float64; NumPy 2 keeps float32, as the
    array API standard says (NEP 50), and every formula here counts on it. Under NumPy 1 the first ``backward()``
    of a float32 model stopped with "a float64 gradient for a float32 input": say so at import instead."""
    if int(version.split(".")[0]) < 2:
        raise ImportError(f"minitransformer needs NumPy 2.0 or later, found {version}: under NumPy 1's promotion "
                          f"rules float32 training turns float64 and stops. Upgrade it: pip install -U 'numpy>=2'")


_require_numpy_2(np.__version__)

#: dtype of parameters and activations unless asked otherwise (float64 is for gradient checks)
DEFAULT_FLOAT = "float32"
#: CuPy runs softmax, attention's weights, layer norm, GELU, the binary cross-entropy, the gradients' column sums,
#: Adam, the random numbers and the embedding's scatter-add as CUDA kernels, and the matrix products as direct
#: cuBLAS calls (see Backend.kernels), unless this is set to 0, which runs their array formulas instead
KERNELS_VARIABLE = "MINITRANSFORMER_KERNELS"

_ALIASES = {
    "numpy": "numpy",
    "np": "numpy",
    "cpu": "numpy",
    "cupy": "cupy",
    "cp": "cupy",
    "gpu": "cupy",
    "cuda": "cupy",
    "array_api_strict": "array_api_strict",
    "array-api-strict": "array_api_strict",
    "strict": "array_api_strict",
}
_DTYPE_NAMES = ("float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool")


class BackendError(RuntimeError):
    """A backend that cannot be used here, or arrays from two backends meeting in one operation.

    The message says what to install, or which ``.to(...)`` moves a tensor where the other one is.

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.backend.get("tpu")
    Traceback (most recent call last):
    ...
    minitransformer.backend.BackendError: unknown backend 'tpu'; choose one of 'numpy', 'cupy', 'array_api_strict'
    """


class Backend:
    """One array library: its namespace ``xp`` plus the few things the standard leaves out.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.
    xp : module
        The array-API namespace every formula calls (``xp.exp``, ``xp.matmul``, ...).

    Examples
    --------
    One Backend per name, made by :func:`get`:

    >>> import minitransformer as mt
    >>> be = mt.backend.get("numpy")
    >>> be.name, be.dtype("float32") == be.xp.float32
    ('numpy', True)
    >>> be.to_host(be.xp.exp(be.asarray([0.0, 1.0]))).round(4)
    array([1.    , 2.7183])
    """

    def __init__(self, name: str, xp, native=None):
        self.name = name
        self.xp = xp
        self.native = native if native is not None else xp  # numpy / cupy module itself
        self._rng = None
        self._seed = None
        #: whether formulas refuse bad values (token ids out of the vocabulary, targets out of range) at once, by
        #: reading them (:meth:`check_range`). Reading makes the host wait for the device, so it is off on a GPU,
        #: where a training step makes no host synchronisation: there the values are checked on the device and
        #: the answer is read at the next read of the device (:meth:`to_host`); turn it on to stop at once. Off on
        #: array_api_strict too, CuPy's stand-in: a test that counts on an immediate error fails in CI, not on a GPU.
        self.check_values = name == "numpy"
        self._checks_later: dict[tuple, list] = {}  # (lo, hi, message, error, dtype) -> [(min, max)] on the device
        self._kernels = None
        self.manual_seed(_seed)  # the last seed given to mt.manual_seed, so a backend made later follows it too

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    # one Backend per name: copying a model copies its tensors, never the array library
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce_ex__(self, protocol):  # pickle's way in (copy takes the two above)
        refuse_pickle(self)

    # ----------------------------------------------------------------- dtypes
    def dtype(self, spec):
        """The backend's dtype for ``spec`` (a name such as ``"float32"``, or a dtype of any backend)."""
        if spec is None:
            spec = DEFAULT_FLOAT
        name = spec if isinstance(spec, str) else dtype_name(spec)
        if name not in _DTYPE_NAMES:
            raise TypeError(f"unknown dtype {spec!r}; expected one of {', '.join(_DTYPE_NAMES)}")
        if not hasattr(self.xp, name):  # float16 is not in the array API standard (array-api-strict lacks it)
            raise TypeError(f"dtype {name} is not available on backend {self.name!r}")
        return getattr(self.xp, name)

    # ----------------------------------------------------------------- arrays
    def asarray(self, data, dtype=None):
        """``data`` (nested lists, a NumPy array, an array of this backend) as an array of this backend."""
        xp = self.xp
        if dtype is not None:
            dtype = self.dtype(dtype)
        if self.name == "cupy" and isinstance(data, np.ndarray | np.generic):
            return self.native.asarray(data, dtype=dtype)  # host -> device copy
        return xp.asarray(data, dtype=dtype)

    def owns(self, array) -> bool:
        """Whether ``array`` is an array of this backend."""
        return _backend_name_of(array) == self.name

    def to_host(self, array) -> np.ndarray:
        """A NumPy copy (or view) of ``array`` in host memory: the one place data leaves the device. The host waits
        for the device here anyway, so the range checks put off until now are made first (:meth:`check_range`)."""
        if self._checks_later:
            self._make_checks_later()
        return self._copy_to_host(array)

    def read_bool(self, flag) -> bool:
        """``bool(flag)`` of a 0-d array of this backend, through :meth:`to_host`: a read of the device, so the checks
        put off until the next one are made first (a loop that stops on a flag, as decoding's, would otherwise go on
        with a bad id's garbage until the next ``.numpy()``). One read of the device, with the checks' extremes."""
        if not self._checks_later:
            return bool(self._copy_to_host(flag))
        return bool(self._make_checks_later(also=flag))

    def _copy_to_host(self, array) -> np.ndarray:
        if isinstance(array, np.ndarray | np.generic):
            return np.asarray(array)
        if self.name == "cupy":
            return array.get()
        # by DLPack, from a copy: NumPy 2.0 cannot take a read-only array (a broadcast view) that way
        return np.from_dlpack(self.xp.asarray(array, copy=True))

    # ----------------------------------------------------------------- checks of values
    #: how many (min, max) pairs a check keeps on the device before they are reduced to one
    CHECKS_KEPT = 64

    def check_range(self, values, lo: int, hi: int, message: str, error: type[Exception] = IndexError,
                    hints: dict[int, str] | None = None) -> None:
        """Refuse ``values`` (an integer array of this backend) unless each lies in ``lo..hi``: an ``error`` (an
        IndexError unless told) whose message is ``message`` with ``{bad}`` replaced by the first extreme at fault (the
        min below ``lo``, else the max above ``hi``), then ``"; "`` and ``hints[bad]`` where ``hints`` has that value
        (torch's -100 target: its default ``ignore_index``). The one check of token ids, targets and indices against a
        range, and of any value the host would otherwise have to wait for (a mask that hides every key).

        With :attr:`check_values` on, now: min and max are read (the host waits for the device). Off (CuPy's
        default), the min and max are computed on the device and kept; the host reads them at the next read of the
        device (:meth:`to_host`: ``loss.item()``, the trainer's log, a checkpoint), where it waits anyway, and raises
        there, saying so. The computations since are wrong (an index out of range wraps around), but a training step
        makes no host synchronisation.

        >>> import minitransformer as mt
        >>> be = mt.backend.get("numpy")
        >>> be.check_range(be.asarray([3, 10]), 0, 9, "ids holds id {bad}, outside 0..9")
        Traceback (most recent call last):
        ...
        IndexError: ids holds id 10, outside 0..9
        """
        xp = self.xp
        if not math.prod(values.shape):
            return
        low, high = xp.min(values), xp.max(values)
        hints = tuple(sorted(hints.items())) if hints else ()  # (a key of the checks kept: hashable)
        if self.check_values:
            _refuse_outside(int(low), int(high), lo, hi, message, error, hints=hints)
            return
        kept = self._checks_later.setdefault((lo, hi, message, error, hints, values.dtype), [])  # stacked: own dtype
        kept.append((low, high))
        if len(kept) > self.CHECKS_KEPT:  # a loop that never reads the device keeps a bounded number on it
            lows, highs = xp.stack([m for m, _ in kept]), xp.stack([m for _, m in kept])
            kept[:] = [(xp.min(lows), xp.max(highs))]

    def check_all(self, condition, message: str, error: type[Exception] = ValueError) -> None:
        """Refuse unless every element of ``condition`` (a bool array of this backend) is True: an ``error`` saying
        ``message``, now or at the next read of the device, as :meth:`check_range` (whose check of 1..1 it is)."""
        if math.prod(condition.shape):
            xp = self.xp
            self.check_range(xp.reshape(xp.astype(condition, xp.int8), (-1,)), 1, 1, message, error)

    def _make_checks_later(self, also=None) -> int | None:
        """Read every check's kept minima and maxima, in one read of the device (a check per message, and messages
        name shapes: padded batches of many lengths make tens), and raise for the first check that fails; ``also``, a
        0-d bool or integer array, is read with them (:meth:`read_bool`), its value returned."""
        checks, self._checks_later = self._checks_later, {}  # made once: a caught error leaves none behind
        if not checks:
            return None
        xp = self.xp
        extremes = []  # low, high of each check, as int64 (the ids' dtype; a mask's int8 fits)
        for kept in checks.values():
            extremes += [xp.astype(xp.min(xp.stack([m for m, _ in kept])), xp.int64),
                         xp.astype(xp.max(xp.stack([m for _, m in kept])), xp.int64)]
        if also is not None:
            extremes.append(xp.astype(xp.reshape(also, ()), xp.int64))
        read = self._copy_to_host(xp.stack(extremes)).tolist()
        for (lo, hi, message, error, hints, _), low, high in zip(checks, read[0::2], read[1::2]):
            _refuse_outside(low, high, lo, hi, message, error, later=True, hints=hints)
        return read[-1] if also is not None else None

    @property
    def kernels(self):
        """CUDA kernels (a :class:`~minitransformer.kernels.CudaKernels`) for softmax, attention's weights, layer norm,
        GELU, the binary cross-entropy, the gradients' column sums, Adam, the random numbers and the embedding's
        scatter-add, and the matrix products as direct cuBLAS calls, used in place of their array formulas; None
        runs the formulas.

        On CuPy by default (checked against the formulas on the CPU under an emulation of CUDA, most of them on an
        H200 too: see :mod:`minitransformer.kernels`); ``MINITRANSFORMER_KERNELS=0`` turns them off.
        None on the other backends.
        """
        return self._kernels

    @kernels.setter
    def kernels(self, kernels) -> None:
        self._kernels = kernels
        if isinstance(self._rng, CounterRNG):
            self._rng.kernels = kernels

    # ----------------------------------------------------------------- random numbers
    def manual_seed(self, seed: int) -> None:
        """Restart this backend's random numbers from ``seed`` (reproducible runs).

        NumPy's ``Generator`` (PCG64) on the CPU; on the GPU a :class:`CounterRNG`, which draws on
        the device and, unlike CuPy's generators, has a state that fits in a checkpoint. array-api-strict, CuPy's
        stand-in in CI, draws from a CounterRNG too: a test that counts on NumPy's numbers for a seed fails there as
        it would on a GPU.
        """
        self._seed = require_int("manual_seed", "seed", seed, low=0)  # NumPy takes no -1; 1.5 would be 1
        self._rng = self.new_generator(self._seed, op="manual_seed")

    def new_generator(self, seed: int, op: str = "new_generator"):
        """A generator of this backend's kind (:attr:`rng_kind`) seeded with ``seed``, apart from the backend's own.

        Pass it as ``rng=`` to :meth:`uniform`, :meth:`normal` or :meth:`integers` (``generate(seed=...)`` does): its
        numbers depend on ``seed`` alone, not on what other code, or another thread, drew from the backend's generator.

        >>> import minitransformer as mt
        >>> be = mt.backend.get("numpy")
        >>> a = be.to_host(be.uniform((2,), rng=be.new_generator(5)))
        >>> _ = be.uniform((3,))                                  # the backend's own draws move nothing here
        >>> bool((be.to_host(be.uniform((2,), rng=be.new_generator(5))) == a).all())
        True
        """
        seed = require_int(op, "seed", seed, low=0)
        if self.name in ("cupy", "array_api_strict"):  # the GPU's generator, and its stand-in's
            return CounterRNG(self.xp, seed, kernels=self._kernels)
        return np.random.default_rng(seed)

    @property
    def rng(self):
        """The backend's random generator (``numpy.random.Generator``, or a :class:`CounterRNG` on CuPy and
        array-api-strict)."""
        return self._rng

    def get_rng_state(self) -> dict:
        """The generator's state as plain Python data (for checkpoints, no pickle).

        >>> import minitransformer as mt
        >>> be = mt.backend.get("numpy")
        >>> be.manual_seed(3)
        >>> state = be.get_rng_state()
        >>> first = be.to_host(be.uniform((2,)))
        >>> be.set_rng_state(state)
        >>> bool((be.to_host(be.uniform((2,))) == first).all())   # the same numbers again
        True
        """
        if isinstance(self._rng, CounterRNG):
            return self._rng.state
        return self._rng.bit_generator.state

    @property
    def rng_kind(self) -> str:
        """The kind of generator this backend draws from, ``"PCG64"`` (NumPy) or ``"CounterRNG"`` (CuPy and
        array-api-strict); a state of another kind (:func:`rng_state_kind`) cannot be restored here."""
        return "CounterRNG" if isinstance(self._rng, CounterRNG) else "PCG64"

    def set_rng_state(self, state: dict) -> None:
        """Restore a state returned by :meth:`get_rng_state` (of the same kind of generator)."""
        if rng_state_kind(state) != self.rng_kind:
            raise BackendError(f"set_rng_state: the {self.name} backend's generator is {self.rng_kind}, this state is "
                               f"of {rng_state_kind(state)} (saved on another backend?); reseed with manual_seed")
        if isinstance(self._rng, CounterRNG):
            self._rng.state = state
        else:
            self._rng.bit_generator.state = state

    def _from_rng(self, rng, sample, dtype):
        if isinstance(rng, CounterRNG):  # drawn on the device
            return self.xp.astype(sample, self.dtype(dtype), copy=False)
        return self.asarray(sample.astype(dtype_name(self.dtype(dtype)), copy=False))

    def normal(self, shape, mean=0.0, std=1.0, dtype=None, *, rng=None):
        """Samples of N(mean, std^2), shape ``shape``, from ``rng`` (:meth:`new_generator`) or the backend's own."""
        rng = self._rng if rng is None else rng
        # standard_normal, not normal: CuPy's Generator has only the former (NumPy gives the same numbers)
        return self._from_rng(rng, rng.standard_normal(size=tuple(shape)) * std + mean, dtype)

    def uniform(self, shape, low=0.0, high=1.0, dtype=None, *, below_high: bool = True, rng=None):
        """Samples of U[low, high), shape ``shape``: below ``high`` in ``dtype`` too.

        They are drawn in float64; rounding to float32 takes those within half a float32 step of ``high`` up to
        ``high`` itself (for U[0, 1), one in 2^25 becomes 1.0), so those become the largest value below it: one
        pass more over the sample, which ``below_high=False`` skips where a draw equal to ``high`` does no harm
        (dropout keeps :math:`u \\ge p`, and a 1.0 is kept as a 0.99999994 would be).
        """
        rng = self._rng if rng is None else rng  # new_generator's, or the backend's own
        sample = self._from_rng(rng, rng.uniform(low, high, size=tuple(shape)), dtype)
        if not below_high:
            return sample
        below = float(np.nextafter(np.asarray(high, dtype=dtype_name(sample.dtype)), -np.inf))
        return clip(self.xp, sample, high=max(below, low))

    def integers(self, shape, low, high, *, rng=None):
        """Integers drawn uniformly from [low, high), dtype int64, from ``rng`` or the backend's generator."""
        rng = self._rng if rng is None else rng
        return self._from_rng(rng, rng.integers(low, high, size=tuple(shape)), "int64")

    def permutation(self, n: int):
        """A random permutation of 0..n-1 (host NumPy array: it orders batches, it is no data)."""
        if isinstance(self._rng, CounterRNG):  # no permutation of its own: sort random keys on the device
            return self.to_host(self.xp.argsort(self._rng.random((n,))))
        return self._rng.permutation(n)

    # ----------------------------------------------------------------- scatter-add
    def scatter_add(self, target_shape, indices, values):
        r"""Sum rows of ``values`` into a zero array at ``indices``: the gradient of a row lookup.

        :math:`\text{out}[v] = \sum_{n:\, \text{indices}[n] = v} \text{values}[n]`: ``out[indices[n]] += values[n]``
        for every n, with repeated indices adding up. Shapes: ``indices`` ``(N,)`` integers, ``values``
        ``(N, *rest)``; the result has ``target_shape``, ``(V, *rest)``.

        Examples
        --------
        >>> import numpy as np
        >>> import minitransformer as mt
        >>> be = mt.backend.get("numpy")
        >>> be.scatter_add((3, 2), np.array([0, 2, 0]), np.ones((3, 2))).tolist()
        [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]
        """
        xp = self.xp
        out = xp.zeros(tuple(target_shape), dtype=values.dtype)
        if self.kernels is not None and self.kernels.fits(values):
            self.kernels.scatter_add(out, indices, values)  # in the order of n, unlike CuPy's atomics
            return out
        if self.name in ("numpy", "cupy"):
            self.native.add.at(out, indices, values)  # unbuffered: repeated indices add up
            return out
        # portable fallback: a one-hot matrix, (N, V)^T @ (N, rest) -> (V, rest)
        V = target_shape[0]
        one_hot = xp.astype(indices[:, None] == xp.arange(V, dtype=indices.dtype)[None, :], values.dtype)
        flat = xp.reshape(values, (values.shape[0], math.prod(values.shape[1:])))  # no -1: N may be 0
        return xp.reshape(xp.matmul(xp.matrix_transpose(one_hot), flat), tuple(target_shape))


def _refuse_outside(low: int, high: int, lo: int, hi: int, message: str, error: type[Exception] = IndexError,
                    later: bool = False, hints: tuple = ()) -> None:
    """The error of :meth:`Backend.check_range` where ``low`` (the min) or ``high`` (the max) lies outside
    ``lo..hi``; ``later``: found at a read of the device, after the steps that used the values; ``hints``: (value,
    text) pairs, the text said after the message where the value is the one at fault."""
    if lo <= low and high <= hi:
        return
    bad = low if low < lo else high
    text = message.replace("{bad}", str(bad)) + "".join(f"; {hint}" for value, hint in hints if value == bad)
    if later:
        text += (" - found at this read of the device, not where the values were used: with check_values off "
                 "(CuPy's default: reading them there would make every step wait for the GPU), they are checked on the "
                 "device and the answer read at the next read, so what was computed since the last read used them (an "
                 "index out of range wraps around); set backend.check_values = True to stop where they are used")
    raise error(text)


def refuse_pickle(obj) -> None:
    """Raise the error that pickling a Backend, a Tensor or a Module gets: what to use instead.

    Nothing in minitransformer is written with pickle (loading a pickle can run any code): a model's
    weights leave as ``model.state_dict()`` (NumPy arrays), a whole run as a checkpoint (an ``.npz``
    file read without pickle); ``copy.deepcopy`` copies a model in memory.
    """
    raise TypeError(
        f"cannot pickle a {type(obj).__name__}: minitransformer writes no pickles (loading one can run any code). "
        "Save a model's weights with model.state_dict() (NumPy arrays), a run with "
        "minitransformer.train.save_checkpoint(path, model, optimizer); copy a model in memory with copy.deepcopy"
    )


# --------------------------------------------------------------------- helpers on any array

class CounterRNG:
    r"""Random numbers computed from a counter: the generator of the GPU backend, written in array-API operations.

    Draw :math:`i` of the stream is a fixed function of the seed and its position :math:`c + i`
    (:math:`c` = the values drawn before): SplitMix64's finaliser, a bijection of 64-bit integers
    that scrambles consecutive inputs into independent-looking outputs,

    .. math::
        z = k + (c + i + 1)\,\gamma, \quad
        z \leftarrow (z \oplus (z \gg 30))\, m_1, \quad z \leftarrow (z \oplus (z \gg 27))\, m_2, \quad
        z \leftarrow z \oplus (z \gg 31)

    (all modulo :math:`2^{64}`; :math:`\gamma` = 0x9E3779B97F4A7C15, the golden ratio's bits; the key
    :math:`k` is the seed put through the same finaliser, so that seeds 0 and 1 do not give streams
    shifted by one step). The top
    53 bits give a uniform in [0, 1); Box-Muller turns two uniforms into a normal sample. So the whole
    state is two integers, ``{"seed", "counter"}``, saved in a checkpoint as they are -- which the
    generators of CuPy, whose state lives in device memory, do not allow -- and every draw runs on
    the device, one array operation after another, with no host round trip.

    Parameters
    ----------
    xp : module
        The array namespace that computes (NumPy's, CuPy's, array-api-strict).
    seed : int
        Any integer; taken modulo :math:`2^{64}`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = CounterRNG(np, seed=0)
    >>> state = rng.state
    >>> u = rng.random((3,))
    >>> bool(((0 <= u) & (u < 1)).all()), rng.state["counter"]
    (True, 3)
    >>> rng.state = state                                   # back to where it was
    >>> bool((rng.random((3,)) == u).all())
    True
    """

    GOLDEN, M1, M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
    MASK = 2**64 - 1

    def __init__(self, xp, seed: int = 0, kernels=None):
        self.xp = xp
        #: a :class:`~minitransformer.kernels.CudaKernels` draws the uniforms in one CUDA kernel; with None,
        #: array operations
        self.kernels = kernels
        self.state = {"bit_generator": "CounterRNG", "seed": seed, "counter": 0}

    @classmethod
    def mix(cls, z: int) -> int:
        """SplitMix64's finaliser on one Python integer (exact modulo :math:`2^{64}`): the formula of :meth:`bits`.

        >>> hex(CounterRNG.mix(CounterRNG.GOLDEN))   # the first output of SplitMix64 seeded with 0
        '0xe220a8397b1dcdaf'
        """
        z &= cls.MASK
        z = ((z ^ (z >> 30)) * cls.M1) & cls.MASK
        z = ((z ^ (z >> 27)) * cls.M2) & cls.MASK
        return z ^ (z >> 31)

    @property
    def state(self) -> dict:
        """The state as plain data like NumPy's states,
        ``{"bit_generator": "CounterRNG", "seed": int, "counter": int}``."""
        return {"bit_generator": "CounterRNG", "seed": self.seed, "counter": self.counter}

    @state.setter
    def state(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("bit_generator") != "CounterRNG":
            raise BackendError(f"CounterRNG: not a CounterRNG state: {state!r}")
        self.seed, self.counter = int(state["seed"]) & self.MASK, int(state["counter"])
        self.key = self.mix(self.seed)

    def _u64(self, value: int):
        return self.xp.asarray(value, dtype=self.xp.uint64)

    def bits(self, n: int):
        """The next ``n`` 64-bit words of the stream, ``(n,)`` uint64 (on the backend's device)."""
        xp = self.xp
        position = xp.arange(n, dtype=xp.uint64) + self._u64(self.counter + 1)  # c + i + 1
        self.counter += n
        z = position * self._u64(self.GOLDEN) + self._u64(self.key)
        z = (z ^ (z >> 30)) * self._u64(self.M1)
        z = (z ^ (z >> 27)) * self._u64(self.M2)
        return z ^ (z >> 31)

    def random(self, size) -> object:
        """Uniform float64 in [0, 1), shape ``size``: the top 53 bits of each word over :math:`2^{53}`."""
        shape = (size,) if isinstance(size, int) else tuple(size)
        n = math.prod(shape)
        if self.kernels is not None:  # the same numbers, in one kernel (minitransformer.kernels)
            u = self.kernels.counter_uniform(n, self.counter + 1, self.key)
            self.counter += n
        else:
            u = self.xp.astype(self.bits(n) >> 11, self.xp.float64) * (1.0 / 2**53)
        return self.xp.reshape(u, shape)

    def uniform(self, low=0.0, high=1.0, size=()):
        """Uniform float64 in [low, high), shape ``size``."""
        if low == 0.0 and high == 1.0:  # dropout's U[0, 1): two passes over a float64 sample fewer, the same numbers
            return self.random(size)
        return low + (high - low) * self.random(size)

    def standard_normal(self, size=()):
        r"""N(0, 1) float64, shape ``size``, by Box-Muller: :math:`\sqrt{-2 \ln(1 - u_1)}\, \cos(2 \pi u_2)`."""
        shape = (size,) if isinstance(size, int) else tuple(size)
        n = math.prod(shape)
        u = self.random((2, n))
        xp = self.xp
        z = xp.sqrt(-2.0 * xp.log(1.0 - u[0, ...])) * xp.cos(2.0 * math.pi * u[1, ...])
        return xp.reshape(z, shape)

    def integers(self, low: int, high: int, size=()):
        """Integers in [low, high), int64, shape ``size`` (bias below :math:`(high - low) / 2^{53}`)."""
        xp = self.xp
        k = xp.astype(xp.floor(self.random(size) * float(high - low)), xp.int64)
        return k + low


def tf32_requested() -> bool:
    """Whether float32 matrix products run in TF32 (tensor cores, 10 bits of mantissa): ``CUPY_TF32`` set to a
    positive number, CuPy's own rule for its products (read once, when the kernels are made).

    >>> import os
    >>> tf32_requested() == (int(os.environ.get("CUPY_TF32") or 0) > 0)
    True
    """
    return int(os.environ.get("CUPY_TF32", "0") or "0") > 0


def rng_state_kind(state) -> str:
    """The kind of generator a state (:meth:`Backend.get_rng_state`, a checkpoint's) is of: ``"PCG64"``,
    ``"CounterRNG"``, as NumPy's states name it.

    >>> import numpy as np
    >>> rng_state_kind(np.random.default_rng(0).bit_generator.state), rng_state_kind(CounterRNG(np, seed=0).state)
    ('PCG64', 'CounterRNG')
    """
    return str(state.get("bit_generator")) if isinstance(state, dict) else type(state).__name__


def clip(xp, x, low=None, high=None):
    """``x`` kept within ``[low, high]`` (None: no bound on that side), as ``xp.clip``, NaN kept NaN: by ``maximum``
    and ``minimum``, since array_api_compat's ``clip`` for CuPy assigns through boolean masks (``out[mask] = ...``),
    and CuPy reads each mask's count back to the host: two reads a bound, where these read none.

    Examples
    --------
    >>> import numpy as np
    >>> clip(np, np.array([-2.0, 0.5, 3.0, np.nan]), 0.0, 1.0)
    array([0. , 0.5, 1. , nan])
    """
    if low is not None:
        x = xp.maximum(x, xp.asarray(low, dtype=x.dtype))
    if high is not None:
        x = xp.minimum(x, xp.asarray(high, dtype=x.dtype))
    return x


def dtype_name(dtype) -> str:
    """``"float32"`` for ``numpy.float32``, ``array_api_strict.float32``, ``cupy.float32``, ...

    Examples
    --------
    >>> import numpy as np
    >>> dtype_name(np.float32), dtype_name(np.dtype("int64")), dtype_name("bool")
    ('float32', 'int64', 'bool')
    """
    if isinstance(dtype, str):
        return dtype
    try:
        return np.dtype(dtype).name
    except TypeError:
        pass
    text = str(dtype).rsplit(".", 1)[-1]
    return text


def _backend_name_of(array) -> str | None:
    if isinstance(array, np.ndarray | np.generic):
        return "numpy"
    module = type(array).__module__.split(".", 1)[0]
    if module in ("cupy", "array_api_strict"):
        return module
    return None


# --------------------------------------------------------------------- choosing the backend
_BACKENDS: dict[str, Backend] = {}
_current: Backend | None = None  # None: not chosen yet, MINITRANSFORMER_BACKEND decides when first asked
_switches = 0  # how many times _current changed: tells `with use(x):` from a stored use object entered later
_seed = 0  # the last seed of manual_seed, for backends made after it


def _switch(backend: Backend | None) -> Backend | None:
    """Make ``backend`` current (None: back to not chosen); returns what was current."""
    global _current, _switches
    previous, _current = _current, backend
    _switches += 1
    return previous


class _OnDevice:
    """An array namespace whose new arrays live on ``device``: array-api-strict's ``"device1"``, not its CPU.

    Like CuPy's, such arrays refuse NumPy's implicit conversion (``np.asarray``, ``np.testing``, a NumPy ufunc), so
    a host conversion that bypasses :meth:`Backend.to_host` fails on the strict backend in CI as it would on a GPU.
    Every function that makes an array from nothing or from host data is given ``device``; the rest of the
    namespace is the library's own (an array made from arrays stays on their device)."""

    _MAKE = frozenset({"asarray", "zeros", "ones", "empty", "full", "arange", "eye", "linspace"})

    def __init__(self, xp, device):
        self._xp, self.device = xp, device

    def __getattr__(self, name):
        value = getattr(self._xp, name)
        if name not in self._MAKE:
            return value

        def on_device(*args, device=None, **kwargs):
            return value(*args, device=self.device if device is None else device, **kwargs)

        return on_device

    def __dir__(self):
        return dir(self._xp)

    def __repr__(self) -> str:
        return f"{self._xp.__name__} on {self.device!r}"


def _make(name: str) -> Backend:
    if name == "numpy":
        try:
            import array_api_compat.numpy as xp
        except ImportError as e:  # a checkout on PYTHONPATH, without pip's install of the requirements
            raise ImportError("backend 'numpy' needs the array-api-compat package (NumPy's array API namespace), "
                              "which pip installs with minitransformer: pip install array-api-compat") from e
        return Backend("numpy", xp, np)
    if name == "array_api_strict":
        try:
            import array_api_strict as xp
        except ImportError as e:
            raise BackendError(
                "backend 'array_api_strict' needs the array-api-strict package: pip install array-api-strict"
            ) from e
        return Backend("array_api_strict", _OnDevice(xp, xp.Device("device1")))
    if name == "cupy":
        try:
            import array_api_compat.cupy as xp
            import cupy
        except ImportError as e:
            raise BackendError(
                "backend 'cupy' needs CuPy and an NVIDIA GPU: pip install 'minitransformer[cuda12]' (CUDA 12 "
                "drivers) or 'minitransformer[cuda13]' (CUDA 13); in a clone, pip install -e '.[cuda12]'; see "
                "'Choosing the backend' in the README"
            ) from e
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDA runtime missing or broken driver
            raise BackendError(
                f"backend 'cupy': CuPy is installed but cannot reach a GPU ({e}). Check `nvidia-smi`, and that "
                "the cupy-cuda1Nx package matches the CUDA major version of the driver"
            ) from e
        if count == 0:
            raise BackendError("backend 'cupy': CuPy is installed but no GPU is visible (check CUDA_VISIBLE_DEVICES)")
        be = Backend("cupy", xp, cupy)
        # a student copy has no kernels.py (its CUDA C++ spells out the assignments' formulas), so there the array
        # formulas, the student's code, run as written. Looked for in this package's folder only: a minitransformer
        # installed in editable mode (pip install -e) would lend its own to a copy that lacks it
        here = sys.modules[__package__].__path__
        if os.environ.get(KERNELS_VARIABLE, "1") != "0" and PathFinder.find_spec(f"{__package__}.kernels", here):
            from .kernels import CudaKernels

            be.kernels = CudaKernels(cupy)
        return be
    raise BackendError(f"unknown backend {name!r}; choose one of 'numpy', 'cupy', 'array_api_strict'")


def get(name: str | Backend | None = None) -> Backend:
    """The :class:`Backend` called ``name`` (created once, then reused); ``None`` means the current one.

    Parameters
    ----------
    name : str, Backend or None
        ``"numpy"`` (or ``"np"``, ``"cpu"``), ``"cupy"`` (or ``"cp"``, ``"gpu"``, ``"cuda"``),
        ``"array_api_strict"`` (or ``"strict"``); a Backend is returned as it is.

    Raises
    ------
    BackendError
        For an unknown name, or a backend that cannot run here (CuPy without a GPU).

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.backend.get("np") is mt.backend.get("numpy")
    True
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        return current()
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise BackendError(f"unknown backend {name!r}; choose one of 'numpy', 'cupy', 'array_api_strict'")
    if key not in _BACKENDS:
        _BACKENDS[key] = _make(key)
    return _BACKENDS[key]


def current() -> Backend:
    """The backend new tensors are made on (``MINITRANSFORMER_BACKEND`` or NumPy at first).

    Examples
    --------
    >>> import minitransformer as mt
    >>> with mt.backend.use("numpy"):
    ...     print(mt.backend.current().name, mt.tensor([1.0]).backend.name)
    numpy numpy
    """
    global _current
    if _current is None:
        name = os.environ.get("MINITRANSFORMER_BACKEND", "").strip() or "numpy"
        try:
            _current = get(name)
        except BackendError as e:  # say where the name came from: the user never typed it in Python
            raise BackendError(f"MINITRANSFORMER_BACKEND={name!r}: {e}") from e
    return _current


class use:
    """Make ``name`` the current backend, now; as a context manager, only until the block ends.

    ``with use(x):`` restores, when the block ends (normally or by an exception), the backend current before
    the call. A ``use`` object kept and entered later (or again) switches when its block starts and restores
    what was current then. Choosing a backend never reads ``MINITRANSFORMER_BACKEND``: a bad value there
    fails only where that backend is used.

    The choice is one for the whole process, the block's too (PyTorch's ``with torch.device(...)`` is per
    thread): a block in one thread switches every thread until it ends, and blocks in two threads that end in the
    other order leave the wrong backend current. With threads, choose the backend once before starting them
    (docs/backend.md, "Threads").

    Parameters
    ----------
    name : str or Backend
        A backend name or alias, as for :func:`get`.

    Examples
    --------
    >>> import minitransformer as mt
    >>> with mt.backend.use("numpy"):
    ...     mt.backend.current().name
    'numpy'
    >>> strict = mt.backend.use("array_api_strict")      # switches now ...
    >>> _ = mt.backend.use("numpy")
    >>> with strict:                                      # ... and again when its block starts
    ...     mt.backend.current().name
    'array_api_strict'
    >>> mt.backend.current().name
    'numpy'
    """

    def __init__(self, name: str | Backend):
        # the call switches for the whole process before a `with` enters the block: a block per thread would need a
        # use(x) that does not switch, unlike the plain call, which is the process's choice
        self.backend = get(name)
        self._restore: list[Backend | None] = []  # per open block, the backend its end brings back
        self._before = _switch(self.backend)
        self._made_at = _switches

    def __enter__(self) -> Backend:
        if self._made_at == _switches:  # `with use(x):`: the call has just switched
            self._restore.append(self._before)
        else:  # kept, and entered after other switches or a block of its own: switch now
            self._restore.append(_switch(self.backend))
        self._made_at = None
        return self.backend

    def __exit__(self, *exc) -> None:
        _switch(self._restore.pop())


def available() -> list[str]:
    """Names of the backends that work on this machine, NumPy always.

    Examples
    --------
    >>> import minitransformer as mt
    >>> "numpy" in mt.backend.available()
    True
    """
    names = []
    for name in ("numpy", "array_api_strict", "cupy"):
        try:
            get(name)
        except BackendError:
            continue
        names.append(name)
    return names


def manual_seed(seed: int) -> None:
    """Seed the random numbers of every backend, those created so far and those created later.

    Examples
    --------
    >>> import minitransformer as mt
    >>> mt.manual_seed(42)
    >>> a = mt.rand(3).numpy()
    >>> mt.manual_seed(42)
    >>> bool((mt.rand(3).numpy() == a).all())
    True
    """
    global _seed, _host_rng
    _seed = require_int("manual_seed", "seed", seed, low=0)
    for backend in _BACKENDS.values():
        backend.manual_seed(_seed)
    _host_rng = np.random.default_rng(_seed)


_host_rng = None  # host_rng's generator, made at its first use or by manual_seed


def host_rng() -> np.random.Generator:
    """The random numbers the host draws for the data where no seed is given (a language model's windows,
    ``data.make_lm_batch(..., rng=None)``): NumPy's generator, restarted by :func:`manual_seed` as every backend's
    is, so that a run seeded once repeats. :class:`~minitransformer.train.Trainer` saves its state in its
    checkpoints (``host_rng().bit_generator.state``) and :meth:`~minitransformer.train.Trainer.load` restores it, so
    that a resumed run draws the windows the uninterrupted one draws; a seed given per batch, ``rng=[seed, step]``,
    does not depend on it.

    >>> manual_seed(5)                  # (mt.manual_seed)
    >>> a = host_rng().integers(0, 100, size=3)
    >>> manual_seed(5)
    >>> bool((host_rng().integers(0, 100, size=3) == a).all())
    True
    """
    global _host_rng
    if _host_rng is None:
        _host_rng = np.random.default_rng(_seed)
    return _host_rng


@contextlib.contextmanager
def random_state_kept():
    """Leave every random generator as it was before the block: each backend's, :func:`host_rng`'s, and the seed
    :func:`manual_seed` gives the backends made later. What the block draws, or seeds (a sampling seeded for
    itself), does not move the caller's random numbers. A backend first made in the block is seeded afterwards
    as if made after it. :meth:`~minitransformer.train.Trainer.evaluate` runs its ``eval_fn`` so, and ``generate``
    from a checkpoint its sampling.

    For one thread at a time, as ``torch.random.fork_rng``: the generators are the process's, so what another
    thread draws during the block is undone at its end, and drawn again (a training thread's dropout masks). No lock
    here could stop it, as the draws do not wait for one (docs/backend.md, "Threads").

    >>> be = get("numpy")
    >>> manual_seed(1)
    >>> with random_state_kept():
    ...     manual_seed(7); _ = be.uniform((2,)); _ = host_rng().integers(0, 10, size=3)
    >>> a, b = be.to_host(be.uniform((3,))), host_rng().integers(0, 10, size=3)
    >>> manual_seed(1)                  # the numbers drawn after the block are those drawn without it
    >>> bool((be.to_host(be.uniform((3,))) == a).all()), bool((host_rng().integers(0, 10, size=3) == b).all())
    (True, True)
    """
    global _seed, _host_rng
    seed, host = _seed, _host_rng
    host_state = None if host is None else host.bit_generator.state
    # the generators themselves (manual_seed makes new ones: a reference the caller holds stays theirs) and states
    kept = {name: (backend._rng, backend._seed, backend.get_rng_state()) for name, backend in _BACKENDS.items()}
    try:
        yield
    finally:
        _seed, _host_rng = seed, host
        if host is not None:
            host.bit_generator.state = host_state
        for name, backend in _BACKENDS.items():
            if name in kept:
                backend._rng, backend._seed, state = kept[name]
                backend.set_rng_state(state)
            else:
                backend.manual_seed(seed)
