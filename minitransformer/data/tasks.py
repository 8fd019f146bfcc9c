r"""Generated tasks small enough to train on a laptop, each one a Transformer can be seen to learn.

Sequence to sequence, on digits (the spec's "lengths 8-12, 10 digits"):

* ``copy``    -- the target is the source: ``3 1 4 1 5`` -> ``3 1 4 1 5``;
* ``reverse`` -- the source backwards: ``3 1 4 1 5`` -> ``5 1 4 1 3``;
* ``sort``    -- the source in increasing order: ``3 1 4 1 5`` -> ``1 1 3 4 5``.

Classification, on words: :func:`negation_task`, a sentiment task whose label hangs on word
*order* -- ``"good"`` after ``"not"`` means the opposite of ``"good"`` elsewhere -- so that a bag of
words cannot solve it and attention can (:func:`bag_of_words_ceiling`: how far a bag of words gets on a
given set of reviews).

Every task is a pure function of its ``seed`` (``numpy.random.default_rng(seed)``): the data are
made on the host as lists of token ids, and :mod:`minitransformer.data.batching` moves them to the
current backend as tensors. The ids are those of a tokenizer with the four specials first
(:mod:`minitransformer.data.tokenizers`): digit ``d`` has id ``d + 4``.

>>> train, val = digit_task_splits("reverse", n_train=3, n_val=2, seed=0)
>>> src, tgt = train[0]
>>> tok = digit_tokenizer()
>>> tok.decode(tgt) == tok.decode(src)[::-1]
True
"""

from __future__ import annotations

import math

import numpy as np  # host-side data generation only: seeded draws, no tensor arithmetic

from .._arguments import require_int, require_real
from .tokenizers import SPECIAL_TOKENS, CharTokenizer, WordTokenizer

__all__ = [
    "DIGITS",
    "DIGIT_TASKS",
    "digit_tokenizer",
    "digit_task",
    "digit_task_splits",
    "NEGATION_WORDS",
    "negation_tokenizer",
    "negation_reviews",
    "negation_task",
    "is_negated",
    "bag_of_words_ceiling",
]

# ---------------------------------------------------------------------------------- digit tasks
#: the alphabet of the digit tasks
DIGITS = "0123456789"
_OFFSET = len(SPECIAL_TOKENS)  # digit d has id d + 4

#: the sequence-to-sequence transforms, on lists of ids (the offset keeps the digits' order)
DIGIT_TASKS = {  # (their order is the tasks', minitransformer.train.tasks.TASKS)
    "reverse": lambda seq: list(reversed(seq)),
    "copy": lambda seq: list(seq),
    "sort": lambda seq: sorted(seq),
}


def digit_tokenizer() -> CharTokenizer:
    """The tokenizer of the digit tasks: the 4 specials, then ``"0"..."9"`` as ids 4..13 (vocab_size 14).

    Examples
    --------
    >>> digit_tokenizer().encode("907")
    [13, 4, 11]
    """
    return CharTokenizer(DIGITS)


def _check_lengths(op: str, shortest, longest, least: int = 1, names=("min_len", "max_len"), why: str = ""):
    """The two lengths as Python ints, if ``least <= shortest <= longest``; ``why`` says why ``least``."""
    shortest, longest = (require_int(op, name, n, low=least) for name, n in zip(names, (shortest, longest)))
    if shortest > longest:
        raise ValueError(f"{op}: need integers {least} <= {names[0]} <= {names[1]}{why}, got {names[0]}={shortest!r}, "
                         f"{names[1]}={longest!r}")
    return shortest, longest


def _check_counts(op: str, **counts) -> list[int]:
    """Each count (``n_train=...``) as a Python int >= 0 (``"4"``, 2.5 or -1 refused, naming it)."""
    return [require_int(op, name, n, low=0) for name, n in counts.items()]


def _target_key(name: str, seq) -> tuple[int, ...]:
    """The target of source ``seq`` in task ``name``, as a tuple: what a held-out pair must not share with a training
    one. For copy and reverse each target has one source; for sort, every ordering of the same digits."""
    return tuple(DIGIT_TASKS[name](seq))


def _sources_per_target(name: str, target: tuple[int, ...]) -> int:
    """How many sources give ``target``: 1 for copy and reverse; for sort the orderings of its digits, L! over the
    product of each digit's count factorial."""
    if name != "sort":
        return 1
    return math.factorial(len(target)) // math.prod(math.factorial(target.count(d)) for d in set(target))


def _draw_digit_sources(rng, n: int, min_len: int, max_len: int, name: str = "copy",
                        exclude: frozenset = frozenset()) -> list[tuple[int, ...]]:
    """``n`` distinct random digit sequences (as id tuples) whose target in task ``name`` is not in ``exclude``.

    Each draw picks a length uniformly from ``min_len..max_len``, then its digits; a sequence drawn before, or one
    whose target is excluded, is drawn again.
    """
    space = sum(len(DIGITS) ** L for L in range(min_len, max_len + 1))
    taken = sum(_sources_per_target(name, t) for t in exclude if min_len <= len(t) <= max_len)
    if n > space - taken:
        raise ValueError(
            f"digit tasks: asked for {n} distinct sequences of length {min_len}..{max_len}, but only "
            f"{space - taken} of the {space} possible ones are left; lower n or widen the lengths"
        )
    seen: set[tuple[int, ...]] = set()
    out, misses = [], 0
    while len(out) < n:
        length = int(rng.integers(min_len, max_len + 1))
        seq = tuple(int(d) + _OFFSET for d in rng.integers(0, len(DIGITS), size=length))
        if seq in seen or (exclude and _target_key(name, seq) in exclude):  # each source once, no target of the
            misses += 1                                                      # other split
            if misses == _MOST_MISSES:  # (the count above is an estimate: a task whose targets have many sources)
                raise ValueError(f"digit tasks: {_MOST_MISSES:,} draws in a row gave a sequence drawn before or whose "
                                 f"target the other split has, after {len(out)} of {n}: too few are left; lower n or "
                                 "widen the lengths")
            continue
        seen.add(seq)
        out.append(seq)
        misses = 0
    return out


#: the most draws in a row that give nothing new before :func:`_draw_digit_sources` gives up (with one sequence left
#: in 10,000 possible, a million draws miss it with a chance of e**-100): an endless loop said, not waited for
_MOST_MISSES = 1_000_000


def digit_task_splits(
    name: str, n_train: int, n_val: int, seed: int = 0, min_len: int = 8, max_len: int = 12
) -> tuple[list[tuple[list[int], list[int]]], list[tuple[list[int], list[int]]]]:
    """Training and held-out pairs ``(src_ids, tgt_ids)`` of a digit task; no target is in both.

    A held-out pair is never a training pair in disguise: no held-out source is a training source, and for
    ``sort``, whose target depends only on which digits the source holds, no held-out source is an ordering
    of a training source's digits either (its sorted target would be one the model was trained on). So the
    held-out accuracy measures what the model does with inputs it has not seen the answer to.

    Parameters
    ----------
    name : {"copy", "reverse", "sort"}
        The task: which function of the source the target is (:data:`DIGIT_TASKS`).
    n_train, n_val : int
        Number of pairs in each split (all sources distinct).
    seed : int
        The same seed gives the same pairs.
    min_len, max_len : int
        The source lengths. Each draw picks a length uniformly from ``min_len..max_len``, then its digits;
        a source drawn before (or, held out, one excluded as above) is drawn again. So the lengths come out
        uniform only where every length holds far more sequences (:math:`10^L`) than are drawn, as for the
        default 8 to 12 digits. Where short lengths hold few, they are kept less often than drawn and the
        lengths lean longer, the held-out ones (drawn after the training ones, which they must avoid) the
        most: with ``min_len=3, max_len=4`` and 2000 training sources, 37% of those and 25% of 200 held-out
        ones have length 3, not 50% (for ``sort``, whose held-out sources avoid every ordering of a training
        source's digits, 2% of the held-out ones).

    Returns
    -------
    train, val : list of (list[int], list[int])
        Token ids without ``<bos>``/``<eos>``: :func:`~minitransformer.data.make_seq2seq_batch`
        adds them (decoder input ``<bos> + tgt``, decoder target ``tgt + <eos>``).

    Examples
    --------
    >>> train, val = digit_task_splits("sort", n_train=3, n_val=2, seed=0, min_len=4, max_len=6)
    >>> len(train), len(val)
    (3, 2)
    >>> src, tgt = train[0]
    >>> tgt == sorted(src), 4 <= len(src) <= 6
    (True, True)
    >>> {tuple(t) for _, t in train} & {tuple(t) for _, t in val}     # no target in both splits
    set()
    """
    if name not in DIGIT_TASKS:
        raise ValueError(f"digit task {name!r} is unknown; choose one of {sorted(DIGIT_TASKS)}")
    min_len, max_len = _check_lengths(f"digit task {name!r}", min_len, max_len)
    n_train, n_val = _check_counts(f"digit task {name!r}", n_train=n_train, n_val=n_val)
    rng = np.random.default_rng(seed)
    transform = DIGIT_TASKS[name]
    train_src = _draw_digit_sources(rng, n_train, min_len, max_len, name)
    val_src = _draw_digit_sources(rng, n_val, min_len, max_len, name,
                                  exclude=frozenset(_target_key(name, s) for s in train_src))

    def pairs(sources):
        return [(list(s), transform(s)) for s in sources]

    return pairs(train_src), pairs(val_src)


def digit_task(
    name: str, n: int, seed: int = 0, min_len: int = 8, max_len: int = 12
) -> list[tuple[list[int], list[int]]]:
    """``n`` pairs ``(src_ids, tgt_ids)`` of a digit task (the training split of :func:`digit_task_splits`).

    Parameters as :func:`digit_task_splits`, with ``n`` for ``n_train``.

    Examples
    --------
    >>> [(s, t)] = digit_task("sort", 1, seed=3, min_len=4, max_len=4)
    >>> t == sorted(s)
    True
    """
    return digit_task_splits(name, n, 0, seed=seed, min_len=min_len, max_len=max_len)[0]


# ---------------------------------------------------------------------------------- negation
_FILLERS = (
    "the a this it film movie plot story acting music ending cast script scene was is and but "
    "really quite very long short new old loud slow simple i found thought felt overall"
).split()
_POSITIVE = ("good", "great", "fun", "funny", "lovely", "brilliant")
_NEGATIVE = ("bad", "dull", "boring", "awful", "weak", "poor")
_NOT = "not"

#: the task's words by role
NEGATION_WORDS = {"filler": _FILLERS, "positive": _POSITIVE, "negative": _NEGATIVE, "negator": (_NOT,)}


def negation_tokenizer() -> WordTokenizer:
    """The word tokenizer of :func:`negation_task`: the specials and the task's words (vocab_size 50).

    Examples
    --------
    >>> tok = negation_tokenizer()
    >>> tok.vocab_size
    50
    >>> tok.decode(tok.encode("The film was NOT superb"))     # lower-cased; "superb" is not a task word
    'the film was not <unk>'
    """
    return WordTokenizer(sorted({*_FILLERS, *_POSITIVE, *_NEGATIVE, _NOT}))


def negation_reviews(
    n: int, seed: int = 0, min_words: int = 5, max_words: int = 16, negation_rate: float = 0.25
) -> list[tuple[str, int]]:
    r"""``n`` synthetic one-line "reviews" and their labels (1 positive, 0 negative).

    Each review is ``min_words..max_words`` words: neutral fillers, exactly **one** sentiment word
    and exactly **one** ``"not"``. With probability ``negation_rate`` the ``"not"`` stands right
    before the sentiment word and flips it; otherwise it stands anywhere else, where it negates
    nothing::

        label = [sentiment word is positive]  XOR  [the word just before it is "not"]

    Why this task: the document's section 5.4 trains its classifier on ``np.random.rand`` inputs
    and labels, which have nothing to learn. Here the rule is deterministic (a perfect model
    gets 100%), and it needs word order: every review holds the same bag of words whether or
    not it is negated (fillers drawn independently, one sentiment word, one "not"), so the best any
    bag-of-words classifier can do is to read the sentiment word's polarity and ignore the
    negation, which is right with probability ``1 - negation_rate`` (75% by default). To beat that,
    a model must relate a token to the one before it -- exactly what attention with positional
    encodings can learn.

    Measured by ``tests/test_data.py``: logistic regression on word counts scores 75% on held-out
    reviews; the same learner also told which word follows "not" scores 100%. Measured by
    ``minitransformer train --task classify`` (2026-11-29, 2 shared cores): this library's
    :class:`~minitransformer.nn.TransformerClassifier` with its defaults (2 layers, d_model 32, 4 heads,
    mean pooling; 2000 steps of 64 of 16000 reviews, about 20 seconds) scored 99.8% on its 1000
    held-out reviews; ``tools/convergence.py`` gave 99.6% at an earlier commit (6de3e9b, 2026-11-28), and 99.8%
    on another machine (AMD EPYC, AVX2, 2026-11-30), as ``train --task classify`` does there (``docs/benchmarks.md``).

    For example ``"the plot was not good and quite slow"`` is 0 and ``"not the plot was good"`` is 1.

    Parameters
    ----------
    n : int
        Number of reviews.
    seed : int
        The same seed gives the same reviews.
    min_words, max_words : int
        Each review's length is drawn uniformly from ``min_words..max_words`` (at least 2).
    negation_rate : float
        Probability, in [0, 1], that the ``"not"`` negates the sentiment word.

    Returns
    -------
    list of (str, int)
        ``(text, label)`` pairs: words separated by single spaces, label 1 (positive) or 0.

    Examples
    --------
    >>> text, label = negation_reviews(1, seed=0)[0]
    >>> text.split().count("not"), label in (0, 1)
    (1, True)
    """
    (n,) = _check_counts("negation_reviews", n=n)
    min_words, max_words, negation_rate = _check_review_args(min_words, max_words, negation_rate)
    rng = np.random.default_rng(seed)
    return [_review(rng, min_words, max_words, negation_rate) for _ in range(n)]


def _check_review_args(min_words, max_words, negation_rate) -> tuple[int, int, float]:
    """Refuse lengths that leave no room for the two words, or a rate that is no probability; the lengths as ints,
    the rate as a float."""
    negation_rate = require_real("negation task", "negation_rate", negation_rate, 0.0, 1.0)
    min_words, max_words = _check_lengths("negation task", min_words, max_words, least=2,
                                          names=("min_words", "max_words"), why=" (a sentiment word and 'not')")
    return min_words, max_words, negation_rate


def _review(rng, min_words: int, max_words: int, negation_rate: float) -> tuple[str, int]:
    length = int(rng.integers(min_words, max_words + 1))
    words = [_FILLERS[i] for i in rng.integers(0, len(_FILLERS), size=length - 2)]
    positive = bool(rng.random() < 0.5)
    sentiment = (_POSITIVE if positive else _NEGATIVE)[int(rng.integers(0, len(_POSITIVE)))]
    negated = bool(rng.random() < negation_rate)
    at = int(rng.integers(0, length - 1))  # the sentiment word's place among the length - 1 non-"not" words
    words.insert(at, sentiment)
    if negated:
        words.insert(at, _NOT)  # right before it
    else:
        # any gap except the one just before the sentiment word: length - 1 words have length gaps
        gap = int(rng.integers(0, length - 1))
        words.insert(gap + (gap >= at), _NOT)
    return " ".join(words), int(positive != negated)


def negation_task(
    n_train: int,
    n_val: int,
    seed: int = 0,
    min_words: int = 5,
    max_words: int = 16,
    negation_rate: float = 0.25,
    add_bos: bool = False,
):
    """Training and held-out examples ``(ids, label)`` of the negation task, and their tokenizer.

    No review text is in both splits. See :func:`negation_reviews` for the rule and why a bag of
    words cannot learn it.

    Parameters
    ----------
    n_train, n_val : int
        Number of examples in each split.
    seed : int
        The same seed gives the same examples.
    min_words, max_words : int
        Review lengths vary, so batches need padding.
    negation_rate : float
        Share of reviews whose sentiment word is negated; the bag-of-words ceiling is
        ``max(negation_rate, 1 - negation_rate)``.
    add_bos : bool
        Start every review with ``<bos>`` (a place for a classifier to gather the sentence).

    Returns
    -------
    train, val : list of (list[int], int)
        Token ids of each review (of varying length) and its label, 1 positive or 0 negative.
    tokenizer : WordTokenizer
        :func:`negation_tokenizer`, which made the ids.

    Examples
    --------
    >>> train, val, tok = negation_task(4, 2, seed=0)
    >>> ids, label = train[0]
    >>> tok.decode(ids).count("not")
    1
    """
    min_words, max_words, negation_rate = _check_review_args(min_words, max_words, negation_rate)
    n_train, n_val = _check_counts("negation_task", n_train=n_train, n_val=n_val)
    rng = np.random.default_rng(seed)
    train_part = [_review(rng, min_words, max_words, negation_rate) for _ in range(n_train)]
    seen = {text for text, _ in train_part}
    val_part: list[tuple[str, int]] = []
    attempts = 0
    while len(val_part) < n_val:  # held out means unseen: redraw a review the training split has
        attempts += 1
        if attempts > 100 * n_val + 100:
            raise ValueError(
                f"negation_task: could not draw {n_val} held-out reviews unlike the {n_train} training ones; "
                f"allow longer reviews (max_words={max_words})"
            )
        text, label = _review(rng, min_words, max_words, negation_rate)
        if text not in seen:
            seen.add(text)
            val_part.append((text, label))
    tok = negation_tokenizer()

    def encode(part):
        return [(tok.encode(text, add_bos=add_bos), label) for text, label in part]

    return encode(train_part), encode(val_part), tok


_SENTIMENT = frozenset(_POSITIVE + _NEGATIVE)


def is_negated(ids, tokenizer: WordTokenizer) -> bool:
    """Whether a review's ``"not"`` stands right before its sentiment word, and so flips it.

    ``ids`` are token ids of ``tokenizer`` (a ``<bos>`` or padding is no word of the task and changes nothing).

    Examples
    --------
    >>> tok = negation_tokenizer()
    >>> is_negated(tok.encode("the plot was not good"), tok), is_negated(tok.encode("not the plot was good"), tok)
    (True, False)
    """
    words = [tokenizer.itos[int(i)] for i in ids]
    return any(a == _NOT and b in _SENTIMENT for a, b in zip(words, words[1:]))


def bag_of_words_ceiling(examples, tokenizer: WordTokenizer) -> float:
    r"""What the best bag-of-words rule scores on these reviews: the share of them that are *not* negated (or of
    those that are, where they are the most).

    A bag of words cannot tell ``"not good"`` from ``"good ... not"``, so its best rule reads the sentiment
    word's polarity and ignores the ``"not"``: right exactly on the reviews :func:`is_negated` says are not
    negated (where most are negated, the reversed polarity is right on those instead). Counted, not assumed:
    :math:`\max(1 - s, s)`, :math:`s = n_\text{negated} / n`, about ``max(1 - negation_rate, negation_rate)``
    (0.75) on a large sample, but 0.739 on one set of 1000 and 0.724 on one of 500. It is an expectation for unseen
    reviews, not a bound on a finite set: a bag-of-words model that memorises the bags of its training
    reviews can score above it on those (and below it on others).

    Parameters
    ----------
    examples : sequence of (list of int, int)
        ``(ids, label)`` pairs of :func:`negation_task`.
    tokenizer : WordTokenizer
        The tokenizer that made the ids (:func:`negation_tokenizer`).

    Returns
    -------
    float
        The share in [0, 1].

    Examples
    --------
    >>> train, val, tok = negation_task(4, 1000, seed=0)
    >>> bag_of_words_ceiling(val, tok)   # 255 of these 1000 reviews are negated
    0.745
    """
    if len(examples) == 0:
        raise ValueError("bag_of_words_ceiling: no reviews to count (the share of an empty set is no number)")
    negated = sum(is_negated(ids, tokenizer) for ids, _ in examples) / len(examples)
    return max(1.0 - negated, negated)
