r"""From lists of token ids to padded tensors with their attention masks, and batches in a seeded order.

Sequences in a batch have different lengths; they are padded with ``<pad>`` (id 0) to the
longest one, and masks tell attention which positions are real. The mask convention is the one
of :mod:`minitransformer.functional.masks` (and of the boolean ``attn_mask`` of PyTorch's
``scaled_dot_product_attention``; its ``nn.MultiheadAttention`` takes the opposite): **True means
"may attend"**, and a mask broadcasts against the scores ``(batch, heads, queries, keys)``.

For a source ``3 1 4`` and target ``4 1 3`` padded to length 5 (``_`` is ``<pad>``)::

    src      3 1 4 _ _          src_mask  (B, 1, 1, S)  keys that are real tokens
    tgt_in   <bos> 4 1 3 _      tgt_mask  (B, 1, T, T)  causal (key j <= query i) AND real key
    tgt_out  4 1 3 <eos> _      the decoder's targets; a loss ignores the <pad> positions

Teacher forcing: the decoder reads ``tgt_in`` (the target shifted right behind ``<bos>``) and
learns to predict ``tgt_out`` (the target followed by ``<eos>``), one position ahead
(the paper's section 3.1: "the output embeddings are offset by one position").

The host builds everything with NumPy (the data are small and already on the host); each array
becomes a Tensor on the current backend once, as the batch is made.

>>> b = make_seq2seq_batch([([7, 5, 8], [8, 5, 7]), ([9, 4], [4, 9])])
>>> b.src.numpy()
array([[7, 5, 8],
       [9, 4, 0]])
>>> b.tgt_in.numpy()
array([[1, 8, 5, 7],
       [1, 4, 9, 0]])
>>> b.tgt_out.numpy()
array([[8, 5, 7, 2],
       [4, 9, 2, 0]])
>>> b.tgt_mask.numpy()[1, 0].astype(int)  # the second pair: 3 real decoder inputs, causal
array([[1, 0, 0, 0],
       [1, 1, 0, 0],
       [1, 1, 1, 0],
       [1, 1, 1, 0]])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np  # host-side padding and seeded shuffling; tensors are made on the backend

from .. import backend as _backend
from .._arguments import require_int
from ..autograd import Tensor
from ..functional.masks import causal_mask, combine_masks, padding_mask
from .tokenizers import BOS, EOS, PAD

__all__ = [
    "Batch",
    "pad_sequences",
    "make_seq2seq_batch",
    "seq2seq_length",
    "make_classification_batch",
    "make_lm_batch",
    "batches",
    "token_batches",
    "DataLoader",
]


def _as_id_list(op: str, i: int, seq) -> list[int]:
    if isinstance(seq, str) or not (hasattr(seq, "tolist") or hasattr(seq, "__iter__")):
        raise TypeError(f"{op}: sequence {i} is {seq!r:.60}; expected a sequence of integer token ids")
    seq = seq.tolist() if hasattr(seq, "tolist") else list(seq)
    for token in seq:
        if isinstance(token, bool) or not isinstance(token, int | np.integer):
            raise TypeError(f"{op}: sequence {i} holds {token!r}; token ids must be integers")
    return seq


def _pairs(op: str, items, first: str, second: str) -> list:
    """``items`` as a list of pairs ``(first, second)``, each checked to be one: ``[[1, 2, 3]]`` would unpack
    wrongly or fail deep inside."""
    items = list(items)
    for i, item in enumerate(items):
        if isinstance(item, str) or not hasattr(item, "__len__") or len(item) != 2:
            raise TypeError(f"{op}: example {i} is {item!r:.60}; expected a pair ({first}, {second})")
    return items


def pad_sequences(
    seqs: Sequence[Sequence[int]], pad_id: int = PAD, max_len: int | None = None, truncate: bool = False
) -> np.ndarray:
    """Sequences of different lengths as one ``(batch, max_len)`` int64 array, padded at the end with ``pad_id``.

    Parameters
    ----------
    seqs : sequence of sequences of int
        The token ids of each example (a non-empty list of them).
    pad_id : int
        The filler id (``<pad>``, 0).
    max_len : int, optional
        Width of the result; the longest sequence by default.
    truncate : bool
        Cut sequences longer than ``max_len`` (keeping their start); otherwise such a sequence is an error.

    Returns
    -------
    numpy.ndarray
        ``(len(seqs), max_len)`` int64.

    Examples
    --------
    >>> pad_sequences([[5, 6, 7], [8]])
    array([[5, 6, 7],
           [8, 0, 0]])
    """
    if isinstance(seqs, str) or len(seqs) == 0:
        raise ValueError("pad_sequences: need a non-empty list of token-id sequences")
    rows = [_as_id_list("pad_sequences", i, s) for i, s in enumerate(seqs)]
    pad_id = require_int("pad_sequences", "pad_id", pad_id)
    longest = max(len(r) for r in rows)
    width = longest if max_len is None else require_int("pad_sequences", "max_len", max_len, low=0)
    if longest > width and not truncate:
        i = next(i for i, r in enumerate(rows) if len(r) > width)
        raise ValueError(
            f"pad_sequences: sequence {i} has {len(rows[i])} tokens, more than max_len={width}; "
            "pass truncate=True to cut it"
        )
    out = np.full((len(rows), width), pad_id, dtype=np.int64)
    for i, r in enumerate(rows):
        r = r[:width]
        out[i, : len(r)] = r
    return out


@dataclass
class Batch:
    """One batch of examples as Tensors on the current backend; fields a task does not use are ``None``.

    Attributes
    ----------
    src : Tensor or None
        ``(B, S)`` int64 source ids, padded (the encoder's input; the classifier's input).
    src_mask : Tensor or None
        ``(B, 1, 1, S)`` bool, True at real source tokens: for encoder self-attention and the
        decoder's cross-attention over the encoder output.
    tgt_in : Tensor or None
        ``(B, T)`` int64 decoder input: ``<bos>`` + target (seq2seq), or the text (language model).
    tgt_out : Tensor or None
        ``(B, T)`` int64 what the decoder must predict at each position: target + ``<eos>``.
    tgt_mask : Tensor or None
        ``(B, 1, T, T)`` bool, causal AND real key (``(1, 1, T, T)`` for a language model, which has
        no padding): for the decoder's self-attention.
    labels : Tensor or None
        ``(B,)`` int64 class labels (classification).
    n_tokens : int
        Number of real (non-``<pad>``) target tokens (or examples, for classification): the
        denominator of a per-token mean loss.
    pad_id : int
        The id the batch was padded with: what a loss leaves out of its targets (``ignore_index``).

    Examples
    --------
    >>> b = make_seq2seq_batch([([7, 5, 8], [8, 5, 7]), ([9, 4], [4, 9])])
    >>> len(b), b.src.shape, b.src_mask.shape, b.tgt_mask.shape    # B = 2, S = 3, T = 4
    (2, (2, 3), (2, 1, 1, 3), (2, 1, 4, 4))
    >>> b.n_tokens, b.labels is None                               # 3 + 1 and 2 + 1 targets
    (7, True)
    """

    src: Tensor | None = None
    src_mask: Tensor | None = None
    tgt_in: Tensor | None = None
    tgt_out: Tensor | None = None
    tgt_mask: Tensor | None = None
    labels: Tensor | None = None
    n_tokens: int = 0
    pad_id: int = PAD

    def __len__(self) -> int:
        """The batch size B."""
        first = next((t for t in (self.src, self.tgt_in, self.labels) if t is not None), None)
        return 0 if first is None else first.shape[0]


def _check_nonempty(op: str, name: str, seqs) -> None:
    if len(seqs) == 0:
        raise ValueError(f"{op}: the batch is empty")
    for i, s in enumerate(seqs):
        if len(s) == 0:
            # an all-padding row would leave every attention score masked: a softmax over nothing
            raise ValueError(f"{op}: {name} {i} is empty; every sequence needs at least one token")


def _decoder_mask(tgt_in: Tensor, pad_id: int) -> Tensor:
    """``(B, 1, T, T)``: query i may attend key j when j <= i and key j is a real token."""
    T = tgt_in.shape[1]
    return combine_masks(padding_mask(tgt_in, pad_id), causal_mask(T, backend=tgt_in.backend))


def _check_padding_inside(op: str, name: str, seqs, pad_id: int) -> None:
    """Refuse ``pad_id`` before a sequence's last other token: it would be hidden from attention and left out of the
    loss as padding. A vocabulary numbered from 0 by hand gives its first word the padding's id (trailing padding, of
    rows padded already, is let through)."""
    for i, seq in enumerate(seqs):
        last = max((j for j, token in enumerate(seq) if token != pad_id), default=-1)
        j = next((j for j, token in enumerate(seq[:last]) if token == pad_id), None)
        if j is not None:
            raise ValueError(f"{op}: {name} {i} holds pad_id={pad_id} at position {j}, before its last token: it "
                             "would be hidden as padding (ids 0..3 are <pad>, <bos>, <eos>, <unk>: number a vocabulary "
                             "of your own from 4, or use a tokenizer, data.WordTokenizer.from_texts(...))")


def _check_no_specials(op: str, tgts, bos_id: int, eos_id: int) -> None:
    """Refuse a target that begins with ``bos_id`` or ends with ``eos_id``: the batch adds them (twice, the model
    would learn to write them twice)."""
    for i, t in enumerate(tgts):
        for where, j, token, name in (("begins", 0, bos_id, "<bos>"), ("ends", -1, eos_id, "<eos>")):
            if t and t[j] == token:
                raise ValueError(f"{op}: target {i} {where} with {name} ({token}), which {op} adds itself: give the "
                                 "target without <bos> and <eos> (tokenizer.encode(text), without add_bos, add_eos)")


def make_seq2seq_batch(pairs, pad_id: int = PAD, bos_id: int = BOS, eos_id: int = EOS, backend=None) -> Batch:
    """A sequence-to-sequence batch from pairs ``(src_ids, tgt_ids)`` (without ``<bos>``/``<eos>``).

    Fills ``src`` ``(B, S)``, ``src_mask`` ``(B, 1, 1, S)``, ``tgt_in`` = ``<bos>`` + target and
    ``tgt_out`` = target + ``<eos>`` ``(B, T)`` with ``T = 1 + longest target``, and ``tgt_mask``
    ``(B, 1, T, T)``; ``n_tokens`` counts the real positions of ``tgt_out``.

    Parameters
    ----------
    pairs : iterable of (sequence of int, sequence of int)
        ``(src_ids, tgt_ids)``; every source needs at least one token.
    pad_id, bos_id, eos_id : int
        The ids of ``<pad>``, ``<bos>`` and ``<eos>``.
    backend : str or Backend, optional
        Where the tensors go; the current backend by default.

    Returns
    -------
    Batch
        With ``labels`` None.

    Examples
    --------
    >>> b = make_seq2seq_batch([([7, 5, 8], [8, 5, 7]), ([9, 4], [4, 9])])
    >>> b.tgt_in.numpy()[1], b.tgt_out.numpy()[1]          # <bos> + target, target + <eos>, padded
    (array([1, 4, 9, 0]), array([4, 9, 2, 0]))
    >>> b.src_mask.numpy()[1, 0, 0]
    array([ True,  True, False])
    """
    pairs = _pairs("make_seq2seq_batch", pairs, "src_ids", "tgt_ids")
    srcs = [_as_id_list("make_seq2seq_batch", i, s) for i, (s, _) in enumerate(pairs)]
    tgts = [_as_id_list("make_seq2seq_batch", i, t) for i, (_, t) in enumerate(pairs)]
    _check_nonempty("make_seq2seq_batch", "source", srcs)
    _check_padding_inside("make_seq2seq_batch", "source", srcs, pad_id)
    _check_padding_inside("make_seq2seq_batch", "target", tgts, pad_id)
    _check_no_specials("make_seq2seq_batch", tgts, bos_id, eos_id)
    src = Tensor(pad_sequences(srcs, pad_id), backend=backend)
    tgt_in = Tensor(pad_sequences([[bos_id] + t for t in tgts], pad_id), backend=backend)
    tgt_out = Tensor(pad_sequences([t + [eos_id] for t in tgts], pad_id), backend=backend)
    return Batch(
        src=src,
        src_mask=padding_mask(src, pad_id),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_mask=_decoder_mask(tgt_in, pad_id),
        n_tokens=sum(len(t) + 1 for t in tgts),
        pad_id=int(pad_id),
    )


def seq2seq_length(pair) -> int:
    """The longest row ``pair = (src, tgt)`` makes in :func:`make_seq2seq_batch`'s tensors: its source, or its
    target with ``<bos>`` in front (``tgt_in``) or ``<eos>`` behind (``tgt_out``). As :func:`token_batches`'
    ``length=``, ``max_tokens`` bounds every tensor of such a batch.

    >>> seq2seq_length(([7, 5, 8], [8, 5, 7]))  # tgt_in <bos> 8 5 7: 4 tokens
    4
    """
    src, tgt = pair
    return max(len(src), len(tgt) + 1)


def make_classification_batch(examples, pad_id: int = PAD, backend=None) -> Batch:
    """A classification batch from examples ``(ids, label)``.

    Fills ``src`` ``(B, S)``, ``src_mask`` ``(B, 1, 1, S)`` and ``labels`` ``(B,)``; ``n_tokens`` is B.

    Parameters
    ----------
    examples : iterable of (sequence of int, int)
        ``(ids, label)``; every example needs at least one token, labels are class ids 0, 1, ... (0 or 1 for
        :class:`~minitransformer.nn.TransformerClassifier`, a yes/no classifier: its loss and metrics refuse others)
    pad_id : int
        The id of ``<pad>``.
    backend : str or Backend, optional
        Where the tensors go; the current backend by default.

    Returns
    -------
    Batch
        With ``tgt_in``, ``tgt_out`` and ``tgt_mask`` None.

    Examples
    --------
    >>> b = make_classification_batch([([5, 6, 7], 1), ([8], 0)])
    >>> b.src_mask.numpy()[:, 0, 0].astype(int), b.labels.numpy()
    (array([[1, 1, 1],
           [1, 0, 0]]), array([1, 0]))
    """
    examples = _pairs("make_classification_batch", examples, "ids", "label")
    ids = [_as_id_list("make_classification_batch", i, e[0]) for i, e in enumerate(examples)]
    _check_nonempty("make_classification_batch", "example", ids)
    _check_padding_inside("make_classification_batch", "example", ids, pad_id)
    labels = [e[1] for e in examples]
    for i, y in enumerate(labels):
        if isinstance(y, bool) or not isinstance(y, int | np.integer) or y < 0:
            raise ValueError(f"make_classification_batch: example {i} has label {y!r}; labels are class ids 0, 1, ...")
    src = Tensor(pad_sequences([e[0] for e in examples], pad_id), backend=backend)
    return Batch(
        src=src,
        src_mask=padding_mask(src, pad_id),
        labels=Tensor(np.asarray(labels, dtype=np.int64), backend=backend),
        n_tokens=len(examples),
        pad_id=int(pad_id),
    )


def make_lm_batch(ids, seq_len: int, batch_size: int, rng=None, backend=None) -> Batch:
    """A language-model batch: ``batch_size`` random windows of a long id sequence, each with its next-token targets.

    Window ``b`` starts at a random offset ``s_b``: ``tgt_in[b] = ids[s_b : s_b + T]`` and
    ``tgt_out[b] = ids[s_b + 1 : s_b + T + 1]`` (``T = seq_len``); ``tgt_mask`` is the causal mask
    ``(1, 1, T, T)`` (no padding).

    Parameters
    ----------
    ids : 1-D sequence of int
        The whole (training) text as token ids; a NumPy array is fastest.
    seq_len, batch_size : int
        The window length T and the number of windows B.
    rng : numpy.random.Generator or int or list of int, optional
        Where the offsets come from (a seed, or a list of them such as ``[seed, step]``, gives the same batch
        every time); by default :func:`~minitransformer.backend.host_rng`, restarted by ``mt.manual_seed``.
    backend : str or Backend, optional
        Where the tensors go; the current backend by default.

    Returns
    -------
    Batch
        ``tgt_in``, ``tgt_out`` ``(B, T)``, ``tgt_mask`` ``(1, 1, T, T)``, ``n_tokens = B * T``; ``src`` None.

    Examples
    --------
    >>> import numpy as np
    >>> b = make_lm_batch(np.arange(100), seq_len=5, batch_size=2, rng=0)
    >>> b.tgt_in.numpy()
    array([[80, 81, 82, 83, 84],
           [60, 61, 62, 63, 64]])
    >>> bool((b.tgt_out.numpy() == b.tgt_in.numpy() + 1).all()), b.tgt_mask.shape, b.n_tokens
    (True, (1, 1, 5, 5), 10)
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"make_lm_batch: ids must be a 1-D sequence of integer ids, got shape {ids.shape}, {ids.dtype}"
        )
    seq_len = require_int("make_lm_batch", "seq_len", seq_len, low=1)  # 16.0 would index with floats
    batch_size = require_int("make_lm_batch", "batch_size", batch_size, low=1)
    if len(ids) < seq_len + 1:
        raise ValueError(
            f"make_lm_batch: the text has {len(ids)} tokens; a window of seq_len={seq_len} needs seq_len + 1"
        )
    try:  # NumPy decides what a seed is (an int >= 0, a list of them, a SeedSequence, ...)
        rng = _backend.host_rng() if rng is None else np.random.default_rng(rng)  # None: mt.manual_seed repeats it
    except (TypeError, ValueError):
        raise TypeError(f"make_lm_batch: rng must be None, a seed (an integer >= 0, or a list of them) or a "
                        f"numpy.random.Generator, got {rng!r:.60}") from None
    starts = rng.integers(0, len(ids) - seq_len, size=batch_size)  # (B,)
    window = starts[:, None] + np.arange(seq_len)[None, :]  # (B, T) positions
    tgt_in = Tensor(ids[window].astype(np.int64), backend=backend)
    tgt_out = Tensor(ids[window + 1].astype(np.int64), backend=backend)
    T = seq_len
    return Batch(
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_mask=causal_mask(T, backend=tgt_in.backend).reshape(1, 1, T, T),
        n_tokens=batch_size * seq_len,
    )


def batches(
    examples: Sequence,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
    collate: Callable | None = None,
) -> Iterator:
    """One epoch over ``examples`` in batches of ``batch_size``, in a seeded order.

    The order of epoch ``e`` is ``numpy.random.default_rng([seed, e]).permutation(n)``: the same
    ``(seed, epoch)`` gives the same batches, and each epoch its own order.

    Parameters
    ----------
    examples : sequence
        Anything indexable with a length (pairs, ``(ids, label)`` tuples, ...).
    batch_size : int
        Examples per batch (>= 1).
    shuffle : bool
        Visit the examples in a random order; otherwise in their order.
    seed, epoch : int
        Choose the order (together; the same pair gives the same order).
    drop_last : bool
        Leave out a last batch smaller than ``batch_size``.
    collate : callable, optional
        Applied to each list of examples (e.g. :func:`make_seq2seq_batch`); by default the lists
        themselves are yielded.

    Yields
    ------
    list or Batch
        Each batch: a list of ``batch_size`` examples (fewer in the last one), or what ``collate`` makes of it.

    Examples
    --------
    >>> [b for b in batches(list("abcde"), 2, shuffle=False)]
    [['a', 'b'], ['c', 'd'], ['e']]
    >>> list(batches(list("abcde"), 2, seed=0))               # epoch 0
    [['c', 'e'], ['d', 'a'], ['b']]
    >>> list(batches(list("abcde"), 2, seed=0, epoch=1))      # its own order
    [['b', 'e'], ['d', 'a'], ['c']]
    >>> list(batches(list("abcde"), 2, seed=0, drop_last=True))
    [['c', 'e'], ['d', 'a']]
    """
    batch_size = require_int("batches", "batch_size", batch_size, low=1)
    n = len(examples)
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        chunk = [examples[int(i)] for i in order[start : start + batch_size]]
        yield collate(chunk) if collate is not None else chunk


def _budget_length(example) -> int:
    """The length the token budget counts for ``example``: ``len`` of a sequence of ids, or the longest
    sequence in a tuple such as ``(src, tgt)`` or ``(ids, label)`` (the label has no length)."""
    if isinstance(example, tuple):
        lengths = [len(part) for part in example if hasattr(part, "__len__")]
        if lengths:
            return max(lengths)
    elif hasattr(example, "__len__"):
        return len(example)
    raise TypeError(f"token_batches: cannot tell the length of the example {example!r:.60}: give "
                    "length=, a function example -> its number of tokens")


def _example_lengths(examples: Sequence, length: Callable | None) -> np.ndarray:
    """``(N,)`` the token count of each example (``length(example)``, by default :func:`_budget_length`)."""
    length = _budget_length if length is None else length
    return np.array([require_int("token_batches", f"length of example {i}", length(ex), low=0)
                     for i, ex in enumerate(examples)], dtype=np.int64)


def _cut_by_tokens(sorted_lengths: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: the ascending ``sorted_lengths`` cut greedily into runs whose padded size,
    count * longest (the run's last, being sorted), is at most ``max_tokens``."""
    cuts, start = [], 0
    for i, n in enumerate(sorted_lengths.tolist()):
        if (i + 1 - start) * n > max_tokens:  # one more example, padded to n, would go over the budget
            cuts.append((start, i))
            start = i
    if len(sorted_lengths):
        cuts.append((start, len(sorted_lengths)))
    return cuts


def _check_budget(lengths: np.ndarray, max_tokens: int) -> None:
    """Refuse an example longer than ``max_tokens`` (no batch could hold it), naming it."""
    if len(lengths) and lengths.max() > max_tokens:
        i = int(lengths.argmax())
        raise ValueError(f"token_batches: example {i} has {int(lengths[i])} tokens, more than max_tokens="
                         f"{max_tokens} (a batch's padded size): raise max_tokens, or leave out the longest examples")


def token_batches(
    examples: Sequence,
    max_tokens: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    collate: Callable | None = None,
    length: Callable | None = None,
) -> Iterator:
    """One epoch over ``examples`` in batches of at most ``max_tokens`` tokens, examples of similar length together.

    The paper's batching (section 5.1): "Sentence pairs were batched together by approximate sequence
    length. Each training batch contained a set of sentence pairs containing approximately 25000 source
    tokens and 25000 target tokens." A batch's tokens are counted padded: ``len(batch) * longest``, each
    example's length being ``length(example)`` (by default its longest sequence: ``(src, tgt)`` counts the
    longer of the two, which bounds the source tokens and the target tokens alike). A ``collate`` that adds
    tokens makes its tensors longer: :func:`make_seq2seq_batch` puts ``<bos>`` before each target and
    ``<eos>`` after it, so ``length=seq2seq_length`` (:func:`seq2seq_length`) bounds its tensors by
    ``max_tokens``, as the command line's ``--max-tokens`` does. Short examples make large batches, long
    ones small batches, and there is little padding in either, where :func:`batches` pads a short example to
    the longest one drawn beside it.

    The examples are taken in the epoch's seeded order (that of :func:`batches`), sorted by length (stably:
    examples of one length stay in that random order), cut greedily into batches within ``max_tokens``, and
    the batches are visited in a random order from the same generator. Every epoch has as many batches
    (they depend on the lengths only); ``shuffle=False`` keeps the examples' order within a length and
    visits the batches from the shortest to the longest.

    Parameters
    ----------
    examples : sequence
        Anything indexable with a length (pairs of id lists, ``(ids, label)`` tuples, ...).
    max_tokens : int
        The most tokens of a batch, padded (>= the longest example's length).
    shuffle : bool
        Random order within each length and of the batches; otherwise the examples' order.
    seed, epoch : int
        Choose the order (together; the same pair gives the same batches).
    collate : callable, optional
        Applied to each list of examples (e.g. :func:`make_seq2seq_batch`).
    length : callable, optional
        ``length(example) -> int``, the tokens an example counts for (by default its longest sequence).

    Yields
    ------
    list or Batch
        Each batch: a list of examples of similar length, or what ``collate`` makes of it.

    Examples
    --------
    >>> seqs = ["ab", "abcd", "a", "abc", "abcdef", "b"]
    >>> list(token_batches(seqs, max_tokens=6, shuffle=False))  # padded sizes 3 x 2, 1 x 3, 1 x 4, 1 x 6
    [['a', 'b', 'ab'], ['abc'], ['abcd'], ['abcdef']]
    >>> [len(b) for b in token_batches(seqs, max_tokens=6, seed=0)]  # the same batches, in a random order
    [1, 1, 3, 1]
    """
    max_tokens = require_int("token_batches", "max_tokens", max_tokens, low=1)
    lengths = _example_lengths(examples, length)
    _check_budget(lengths, max_tokens)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(examples)) if shuffle else np.arange(len(examples))
    order = order[np.argsort(lengths[order], kind="stable")]  # by length; within one, the epoch's order
    cuts = _cut_by_tokens(lengths[order], max_tokens)
    for b in (rng.permutation(len(cuts)) if shuffle else range(len(cuts))):
        start, stop = cuts[int(b)]
        chunk = [examples[int(i)] for i in order[start:stop]]
        yield collate(chunk) if collate is not None else chunk


class DataLoader:
    """Iterate over ``examples`` in batches, one epoch per ``for`` loop, each epoch in a new seeded order.

    Like PyTorch's ``DataLoader``: ``len(loader)`` is the number of batches an epoch has;
    :meth:`set_epoch` chooses the epoch (to resume a run with the same orders). A batch is ``batch_size``
    examples (epoch ``e`` is ``batches(examples, batch_size, shuffle, seed, e, drop_last, collate)``) or, given
    ``max_tokens`` instead, as many examples of similar length as ``max_tokens`` padded tokens hold, the paper's
    batching (``token_batches(examples, max_tokens, shuffle, seed, e, collate, length)``). The order follows
    ``seed``, not ``mt.manual_seed``. :meth:`Trainer.fit <minitransformer.train.Trainer.fit>` chooses the epoch
    itself (the run's: 0, or a checkpoint's) and sets it as the epochs go by, whatever :meth:`set_epoch` was
    given before.

    Parameters
    ----------
    examples : sequence
        Anything indexable with a length.
    batch_size : int, optional
        Examples per batch (>= 1). Give this or ``max_tokens``.
    shuffle : bool
        Visit the examples in a random order each epoch; otherwise in their order.
    seed : int
        With the epoch number, chooses each epoch's order.
    drop_last : bool
        Leave out a last batch smaller than ``batch_size``.
    collate : callable, optional
        Applied to each list of examples (e.g. :func:`make_seq2seq_batch`).
    max_tokens : int, optional
        The most padded tokens of a batch (:func:`token_batches`), instead of ``batch_size``.
    length : callable, optional
        With ``max_tokens``: ``length(example) -> int``, the tokens an example counts for (by default its
        longest sequence).

    Attributes
    ----------
    epoch : int
        The epoch the next ``for`` loop runs (0 at first).

    Examples
    --------
    >>> loader = DataLoader(list(range(5)), batch_size=2, seed=1, drop_last=True)
    >>> len(loader), len(list(loader)), loader.epoch
    (2, 2, 1)
    >>> loader = DataLoader(["ab", "abcd", "a", "abc"], max_tokens=4)
    >>> len(loader), sorted(map(len, loader))   # [a, ab] padded to 2 x 2, [abc], [abcd]
    (3, [1, 1, 2])
    """

    def __init__(
        self,
        examples: Sequence,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        collate: Callable | None = None,
        max_tokens: int | None = None,
        length: Callable | None = None,
    ):
        if (batch_size is None) == (max_tokens is None):
            raise ValueError("DataLoader: give batch_size (examples per batch) or max_tokens (padded tokens per "
                             f"batch), one of them; got batch_size={batch_size!r}, max_tokens={max_tokens!r}")
        if max_tokens is not None:
            max_tokens = require_int("DataLoader", "max_tokens", max_tokens, low=1)
            if drop_last:
                raise ValueError("DataLoader: drop_last leaves out a last batch smaller than batch_size; with "
                                 "max_tokens the batches are cut to the budget, none is left out: drop_last=False")
            _check_budget(_example_lengths(examples, length), max_tokens)
        else:
            batch_size = require_int("DataLoader", "batch_size", batch_size, low=1)
            if length is not None:
                raise ValueError("DataLoader: length counts an example's tokens for max_tokens; with batch_size a "
                                 "batch is a number of examples: leave length out")
        self.examples, self.batch_size, self.shuffle = examples, batch_size, shuffle
        self.seed, self.drop_last, self.collate = seed, drop_last, collate
        self.max_tokens, self.length = max_tokens, length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The next ``for`` loop runs epoch ``epoch`` (its order depends on ``seed`` and ``epoch`` only)."""
        self.epoch = int(epoch)

    def epoch_batches(self, epoch: int) -> Iterator[list]:
        """The batches of epoch ``epoch`` as lists of examples, before ``collate`` (a resumed run skips the
        first ones without making their tensors)."""
        if self.max_tokens is not None:
            return token_batches(self.examples, self.max_tokens, self.shuffle, self.seed, epoch, None, self.length)
        return batches(self.examples, self.batch_size, self.shuffle, self.seed, epoch, self.drop_last, None)

    def __len__(self) -> int:
        if self.max_tokens is not None:  # the cuts depend on the lengths only, not on the epoch
            return len(_cut_by_tokens(np.sort(_example_lengths(self.examples, self.length)), self.max_tokens))
        n, b = len(self.examples), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __repr__(self) -> str:
        size = f"max_tokens={self.max_tokens}" if self.max_tokens is not None else (
            f"batch_size={self.batch_size}, drop_last={self.drop_last}")
        return f"DataLoader({len(self.examples)} examples, {size})"

    def __iter__(self) -> Iterator:
        epoch = self.epoch
        self.epoch += 1
        for chunk in self.epoch_batches(epoch):
            yield self.collate(chunk) if self.collate is not None else chunk
