r"""Metrics: how often the model is right, computed where the arrays live, read on the host only when logged.

===============================  ===================================================================
:func:`token_accuracy`           share of positions whose arg-max is the target (padding left out if told)
:func:`binary_accuracy`          share of texts whose logit has the label's sign (:math:`z > 0 \iff y = 1`)
:func:`binary_f1`                F1 of the positive class, :math:`2 TP / (2 TP + FP + FN)`
:func:`exact_match`              share of generated sequences equal to their target, token for token
:func:`perplexity`               :math:`e^{\text{mean cross-entropy}}`
:class:`RunningMean`             a mean accumulated as a backend array, converted to a number at ``compute()``
===============================  ===================================================================

A GPU computes asynchronously: ``loss.item()`` after every step would make the host wait for the
device each time. The device-side metrics here return 0-d Tensors, and :class:`RunningMean` adds
them up on the device; the one transfer happens when a value is logged.

An accuracy over many batches is exact where the right answers are counted, not their shares averaged. The tasks'
metrics (``train.tasks``) count the hits of every batch as integers and divide once. In a loop of your own,
concatenate the batches' logits and labels and call the metric once (as ``examples/seed_classifier.py`` does);
a :class:`RunningMean` of the batches' shares weighted by their sizes is close but not exact (each share and
their sum are rounded to float32), which a target at the boundary, 950 of 1000 against 0.95, can tell. A mean
loss has no such count: :class:`RunningMean` is its way.

>>> import minitransformer as mt
>>> logits = mt.tensor([[[2.0, 0.0], [0.0, 1.0], [5.0, 0.0]]])      # (batch 1, T 3, C 2)
>>> token_accuracy(logits, mt.tensor([[0, 0, 0]])).item()   # arg-max 0, 1, 0
0.6666666865348816
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np  # host-side comparison of generated id lists

from .._arguments import is_real, require_real
from ..autograd import Tensor
from ..data.tokenizers import EOS, PAD
from ..functional._checks import as_targets

__all__ = ["token_accuracy", "binary_accuracy", "binary_f1", "exact_match", "strip_after_eos", "perplexity",
           "RunningMean"]


def token_accuracy(logits: Tensor, targets, ignore_index: int | None = None) -> Tensor:
    r"""Share of positions where the most likely class is the target; padding left out where ``ignore_index`` says.

    .. math:: \text{acc} = \frac{\sum_{n \in \text{kept}} [\arg\max_c z_{n,c} = y_n]}{|\text{kept}|}

    Parameters
    ----------
    logits : Tensor
        ``(..., C)``.
    targets : Tensor or array_like
        ``(...)`` integer classes.
    ignore_index : int or None
        Target value to leave out: ``PAD`` (0) for sequences. None (the default, as ``F.cross_entropy``'s) counts
        every position: a classifier's class 0 is a class like any other.

    Returns
    -------
    Tensor
        0-d float32 on the logits' backend (0 if every position is ignored): the positions counted in integers (exact
        however many), their ratio rounded once to float32.

    Examples
    --------
    >>> import minitransformer as mt
    >>> from minitransformer.data import PAD
    >>> logits = mt.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]]])   # (1, 3, 3): arg-max 0, 1, 2
    >>> targets = mt.tensor([[1, 1, PAD]])                                         # the last one is <pad>
    >>> token_accuracy(logits, targets, ignore_index=PAD).item()                   # 1 right of 2 kept
    0.5
    >>> round(token_accuracy(logits, targets).item(), 4)                           # every position: 1 right of 3
    0.3333
    """
    hits, kept = _token_hits(logits, targets, ignore_index)
    xp = logits.backend.xp
    return _share(hits, xp.maximum(kept, xp.asarray(1, dtype=xp.int64)), logits.backend)  # 0 / 1 where none is kept


def _token_hits(logits: Tensor, targets, ignore_index: int | None):
    """``(hits, kept)`` of :func:`token_accuracy`: the positions kept whose arg-max is the target, and those kept, as
    0-d int64 backend arrays (exact however many; a float32 count stops at 2^24)."""
    op = "token_accuracy"
    y = as_targets(op, targets, logits, classes=True)
    if tuple(y.shape) != logits.shape[:-1]:
        raise ValueError(f"{op}: targets have shape {tuple(y.shape)}, expected {logits.shape[:-1]} for "
                         f"logits {logits.shape}")
    xp = logits.backend.xp
    hit = xp.argmax(logits.data, axis=-1) == y
    kept = xp.ones(y.shape, dtype=xp.bool) if ignore_index is None else y != ignore_index
    return _count(hit & kept, xp), _count(kept, xp)


def _count(mask, xp):
    """The True entries of the boolean array ``mask``, as a 0-d int64 array: summed in int64 (the array API sums no
    booleans; each entry cast to one byte first, not eight)."""
    return xp.sum(xp.astype(mask, xp.uint8), dtype=xp.int64)


def _share(count, total, backend) -> Tensor:
    r"""``count / total`` of two integer counts (0-d int64 backend arrays, or Python ints; ``total`` > 0) as a 0-d
    float32 Tensor: divided in float64 (exact counts to :math:`2^{53}`, where float32 rounds them past
    :math:`2^{24}`), the ratio then rounded once to float32, the library's dtype."""
    xp = backend.xp
    ratio = xp.astype(xp.asarray(count), xp.float64) / xp.astype(xp.asarray(total), xp.float64)
    return Tensor._wrap(xp.astype(ratio, xp.float32), backend)


def binary_accuracy(logits: Tensor, labels) -> Tensor:
    r"""Share of texts classified right by one logit each: predicted 1 where :math:`z > 0` (:math:`\sigma(z) > 1/2`).

    Parameters
    ----------
    logits : Tensor
        ``(B,)`` (or ``(B, 1)``).
    labels : Tensor or array_like
        ``(B,)`` 0 or 1.

    Returns
    -------
    Tensor
        0-d float32 on the logits' backend: the texts counted in integers (exact however many), their ratio rounded
        once to float32.

    Examples
    --------
    >>> import minitransformer as mt
    >>> binary_accuracy(mt.tensor([2.0, -1.0, 0.5]), mt.tensor([1, 1, 1])).item()
    0.6666666865348816
    """
    predicted, y = _binary_predictions("binary_accuracy", logits, labels)
    return _share(_count(predicted == y, logits.backend.xp), logits.shape[0], logits.backend)


def binary_f1(logits: Tensor, labels) -> Tensor:
    r"""F1 score of the positive class (label 1), predicted 1 where :math:`z > 0` as in :func:`binary_accuracy`.

    .. math:: F_1 = \frac{2\,\text{precision} \cdot \text{recall}}{\text{precision} + \text{recall}}
              = \frac{2\,TP}{2\,TP + FP + FN}

    where TP counts the texts predicted 1 and labelled 1, FP those predicted 1 but labelled 0, FN those
    predicted 0 but labelled 1. 0 where there is neither a positive label nor a positive prediction
    (:math:`2 TP + FP + FN = 0`), as scikit-learn's ``f1_score`` by default. Not a mean over texts: the F1
    of a set is not the mean of its batches' F1s, so pass every text at once.

    Parameters
    ----------
    logits : Tensor
        ``(B,)`` (or ``(B, 1)``).
    labels : Tensor or array_like
        ``(B,)`` 0 or 1.

    Returns
    -------
    Tensor
        0-d float32 on the logits' backend, as every metric (the counts are integers, exact however many texts):
        ``metrics.json`` therefore shows float32's digits, the F1 of TP 1, FP 1, FN 2 (2/5) reading
        0.4000000059604645, as any float32 figure does.

    Examples
    --------
    >>> import minitransformer as mt
    >>> binary_f1(mt.tensor([2.0, -1.0, 0.5, 1.0]), mt.tensor([1, 1, 1, 0])).item()  # TP 2, FN 1, FP 1: 4 / 6
    0.6666666865348816
    """
    predicted, y = _binary_predictions("binary_f1", logits, labels)
    xp = logits.backend.xp
    tp = _count(predicted & y, xp)
    wrong = _count(predicted != y, xp)  # FP + FN
    denominator = xp.maximum(2 * tp + wrong, xp.asarray(1, dtype=xp.int64))  # 0 / 1 where there is no positive
    return _share(2 * tp, denominator, logits.backend)


def binary_labels(op: str, labels, logits: Tensor):
    """``labels`` as an array on ``logits``' backend if each is 0 or 1 (False or True): a yes/no classifier's. Another
    label (2, of a third class) would pass for a 1 (``y > 0``), and its class merge with it, the metrics perfect, the
    loss below 0. The values are read where the backend reads values (on a GPU, at the next read of the device)."""
    y = as_targets(op, labels, logits, name="labels")
    xp = logits.backend.xp
    if not xp.isdtype(y.dtype, "bool"):
        logits.backend.check_all((y == 0) | (y == 1), f"{op}: labels must be 0 or 1 (a yes/no classifier, one logit "
                                                      "a text); got another: for more classes, a head of C logits and "
                                                      "F.cross_entropy")
    return y


def _binary_predictions(op: str, logits: Tensor, labels):
    """``(z > 0, y > 0)``, both ``(B,)`` boolean backend arrays, for logits ``(B,)`` or ``(B, 1)`` and labels ``(B,)``
    of 0 or 1; refused where the shapes differ or there is no text."""
    y = binary_labels(op, labels, logits)
    z = logits.data
    if z.ndim == 2 and z.shape[1] == 1:
        z = z[:, 0]
    if tuple(z.shape) != tuple(y.shape):
        raise ValueError(f"{op}: logits have shape {logits.shape}, labels {tuple(y.shape)}; expected (B,) both")
    if z.shape[0] == 0:  # the mean of nothing is NaN
        raise ValueError(f"{op}: no texts to score (logits of shape {logits.shape})")
    return z > 0, (y if logits.backend.xp.isdtype(y.dtype, "bool") else y > 0)  # (the array API has no bool > 0)


def strip_after_eos(ids: Sequence[int], eos_id: int = EOS, pad_id: int = PAD) -> list[int]:
    """The tokens before the first ``<eos>`` (padding dropped): what a generated sequence says, for display.

    Lenient where :func:`exact_match` is strict: a sequence cut off before its ``<eos>`` is kept as it
    is here, and counts as wrong there.

    Parameters
    ----------
    ids : sequence of int, 1-D array or 1-D Tensor
        One sequence of token ids.
    eos_id, pad_id : int
        The ids of ``<eos>`` and ``<pad>``.

    Returns
    -------
    list of int
        The ids before the first ``eos_id``, without ``pad_id``.

    Examples
    --------
    >>> strip_after_eos([7, 5, 2, 9, 0])
    [7, 5]
    """
    out = []
    for t in (ids.tolist() if hasattr(ids, "tolist") else ids):
        if t == eos_id:
            break
        if t != pad_id:
            out.append(int(t))
    return out


def exact_match(predictions, targets, eos_id: int = EOS, pad_id: int = PAD) -> float:
    r"""Exact-sequence accuracy: the share of predictions equal to their target, every token, and no extra one.

    .. math:: \text{acc} = \frac{1}{N} \sum_{n} [\hat y_n = y_n]

    A prediction counts only if it *stops*: its tokens before its first ``<eos>`` must be the
    target's, exactly. So one that gets every token right but goes on (or stops early) is wrong;
    so is one cut off by ``max_len`` before its ``<eos>``, and one with ``<pad>`` where a token
    or the ``<eos>`` should be (a ``<pad>`` before the ``<eos>`` is a token like any other; after
    it, as :func:`~minitransformer.train.greedy_decode` fills a finished row, it is ignored).
    A target is read up to its first ``<eos>`` if it has one (a padded ``tgt_out``), else up to its
    trailing padding (a plain list of tokens).

    Parameters
    ----------
    predictions : sequence of sequences of int (or a 2-D array / Tensor)
        :math:`N` generated sequences, each ending with ``<eos>`` (and any padding after it).
    targets : sequence of sequences of int (or a 2-D array / Tensor)
        Their targets, with or without ``<eos>`` and padding.
    eos_id, pad_id : int
        The ids of ``<eos>`` and ``<pad>``.

    Returns
    -------
    float
        The share in [0, 1].

    Examples
    --------
    Right, then stopped; a wrong token; right so far but cut off before its ``<eos>``:

    >>> exact_match([[5, 6, 2, 0], [5, 7, 2], [5, 6]], [[5, 6], [5, 6], [5, 6]])
    0.3333333333333333

    ``<pad>`` where the ``<eos>`` should be, or between the tokens, is wrong too:

    >>> exact_match([[5, 6, 0], [5, 0, 6, 2]], [[5, 6, 2, 0], [5, 6, 2, 0]])
    0.0
    """
    hits, n = _exact_hits(predictions, targets, eos_id, pad_id)
    return hits / n


def _exact_hits(predictions, targets, eos_id: int = EOS, pad_id: int = PAD) -> tuple[int, int]:
    """``(hits, N)`` of :func:`exact_match`: the predictions equal to their targets, and the targets, as ints."""
    predictions = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    targets = targets.tolist() if hasattr(targets, "tolist") else list(targets)
    if len(predictions) != len(targets):
        raise ValueError(f"exact_match: {len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("exact_match: no sequences to compare")
    hits = sum(_until_eos(p, eos_id) == _target_tokens(t, eos_id, pad_id) for p, t in zip(predictions, targets))
    return hits, len(targets)


def _until_eos(ids, eos_id: int) -> list[int] | None:
    """The tokens of a prediction before its first ``eos_id`` (``<pad>`` included), or None if it never stops."""
    ids = [int(t) for t in (ids.tolist() if hasattr(ids, "tolist") else ids)]
    return ids[: ids.index(eos_id)] if eos_id in ids else None


def _target_tokens(ids, eos_id: int, pad_id: int) -> list[int]:
    """The tokens of a target: those before its first ``eos_id``, or without ``eos_id`` all but its trailing padding."""
    tokens = _until_eos(ids, eos_id)
    if tokens is not None:
        return tokens
    tokens = [int(t) for t in (ids.tolist() if hasattr(ids, "tolist") else ids)]
    while tokens and tokens[-1] == pad_id:
        tokens.pop()
    return tokens


def perplexity(mean_loss: float) -> float:
    r"""Perplexity :math:`e^{L}` of a mean cross-entropy :math:`L` in nats: the effective number of choices per token.

    Parameters
    ----------
    mean_loss : float
        :math:`L`, a mean cross-entropy in nats.

    Returns
    -------
    float
        :math:`e^{L}` (``inf`` where it would overflow, and for :math:`L = \infty`).

    Raises
    ------
    TypeError, ValueError
        ``mean_loss`` is not a number, or is NaN or negative (no cross-entropy is).

    Examples
    --------
    >>> import math
    >>> round(perplexity(math.log(4)), 6)      # as unsure as a fair 4-sided die
    4.0
    """
    if isinstance(mean_loss, Tensor) and mean_loss.size == 1:  # a loss as the library returns it (read on the host)
        mean_loss = mean_loss.item()
    if not is_real(mean_loss) or not float(mean_loss) >= 0:  # (NaN is not >= 0)
        raise (ValueError if is_real(mean_loss) else TypeError)(
            f"perplexity: mean_loss must be a mean cross-entropy, a number >= 0 (inf too: a target given "
            f"probability 0), got {mean_loss!r}")
    return math.exp(mean_loss) if mean_loss < 700 else math.inf  # inf past e^700: float64 ends at e^709.78


class RunningMean:
    r"""A weighted mean :math:`\sum_i w_i x_i / \sum_i w_i` whose sum stays a backend array until :meth:`compute`.

    ``add`` takes a 0-d Tensor (a batch's loss) and its weight (tokens in the batch); nothing is
    copied to the host until ``compute()``, the one synchronisation.

    Attributes
    ----------
    weight : float
        :math:`\sum_i w_i`, the total weight added so far.

    Examples
    --------
    >>> import minitransformer as mt
    >>> m = RunningMean()
    >>> m.add(mt.tensor(2.0), weight=1); m.add(mt.tensor(5.0), weight=2)
    >>> m.compute()         # (2*1 + 5*2) / 3
    4.0
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forget everything added."""
        self._sum = None
        self._backend = None
        self.weight = 0.0

    def add(self, value: Tensor | float, weight: float = 1.0) -> None:
        """Add ``value`` (a 0-d Tensor, or a number) with ``weight`` (> 0, a Python number); no host transfer.

        ``value`` may be NaN or infinite (how a diverging loss shows); the weight may not.
        """
        weight = require_real("RunningMean.add", "weight", weight, low=0.0, low_open=True)  # 0 would give 0 / 0
        if isinstance(value, Tensor):
            if value.size != 1:
                raise ValueError(f"RunningMean.add: expected a one-element tensor, got shape {value.shape}")
            data = value.data * weight
            if self._sum is not None:
                data = self._sum + data  # a device array, or a number added before: the sum moves to the device
            self._sum, self._backend = data, value.backend
        else:
            if not is_real(value):  # a Python or NumPy number, a 0-d NumPy array
                raise TypeError(f"RunningMean.add: value must be a one-element Tensor or a number, got {value!r}")
            value = float(value) * weight
            self._sum = value if self._sum is None else self._sum + value
        self.weight += weight

    def state_dict(self) -> dict:
        """What was added, ``{"sum": float or None, "weight": float}``, as JSON-able host numbers (the sum read from the
        device: a synchronisation), for :meth:`load_state_dict` to go on from, e.g. in a checkpoint.

        >>> import minitransformer as mt
        >>> m = RunningMean()
        >>> m.add(mt.tensor(2.0)); m.add(mt.tensor(5.0))
        >>> state = m.state_dict(); state
        {'sum': 7.0, 'weight': 2.0}
        >>> again = RunningMean(); again.load_state_dict(state); again.add(mt.tensor(3.0))
        >>> again.compute()     # (2 + 5 + 3) / 3, as if all had been added to one
        3.3333333333333335
        """
        total = self._sum
        if total is not None:
            if self._backend is not None:
                total = self._backend.to_host(total)
            total = float(np.asarray(total, dtype=np.float64).reshape(()))
        return {"sum": total, "weight": float(self.weight)}

    def load_state_dict(self, state: dict) -> None:
        """Go on from ``state`` (:meth:`state_dict`). The sum is a Python float, the exact value of the one read: the
        next ``add`` of a Tensor makes it an array of that Tensor's dtype (a Python number does not widen it), so the
        mean is the one all the values added to one :class:`RunningMean` give, to the last bit."""
        total, weight = state.get("sum"), state.get("weight")
        numbers = (total is None or is_real(total)) and is_real(weight) and weight >= 0
        if not numbers or (total is None) != (weight == 0):
            raise ValueError(f"RunningMean.load_state_dict: expected {{'sum': a number (None where the weight is 0), "
                             f"'weight': a number >= 0}}, got {state!r:.120}")
        self.reset()
        self._sum = None if total is None else float(total)
        self.weight = float(weight)

    def compute(self) -> float:
        """The mean as a Python float: the moment the device is read. A ValueError if nothing was added (the mean of
        nothing is no number; ``weight`` says whether there is one)."""
        if self._sum is None:
            raise ValueError("RunningMean.compute: nothing was added, so there is no mean (check weight > 0 first)")
        total = self._sum
        if self._backend is not None:
            total = self._backend.to_host(total)
        return float(np.asarray(total, dtype=np.float64).reshape(())) / self.weight
