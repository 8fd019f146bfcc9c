r"""Small English corpora that ship inside the package, for character language models.

``load_corpus("tiny")`` is about 32 KB of plain ASCII English (67 distinct characters), read
with :mod:`importlib.resources`, so it works from an installed wheel, with no download:

* public-domain texts, as commonly printed (wording may differ slightly from a given edition):
  Lincoln's Gettysburg Address; Shakespeare's sonnets 18, 29, 73 and 116 and Hamlet's
  "To be, or not to be"; Psalm 23, Ecclesiastes 3:1-8 and Genesis 1:1-5 (King James Version);
  Blake's "The Tyger", Shelley's "Ozymandias", Carroll's "Jabberwocky"; the opening lines of
  *A Tale of Two Cities*, *Pride and Prejudice* and *Moby-Dick*; a paragraph of the Declaration
  of Independence; eight nursery rhymes;
* fifteen of Aesop's fables, retold in new words for this package;
* seven short original pieces (a story of a lighthouse keeper, an essay on learning, ...),
  written for this package and given to the public domain with it.

A text of your own is read with :func:`read_text` (a UTF-8 file; a :class:`CorpusError` says what is
wrong with one that cannot be read as text).

A character model's validation loss is measured against :func:`unigram_cross_entropy`, the
cross-entropy on the same validation text of a model that ignores the context and predicts every
character from its frequency in the training text: about 2.98 nats per character on this corpus,
so a model whose validation loss is not clearly below that has learned nothing about context.
(:func:`unigram_entropy` of the whole corpus, 3.07, is the unigram's cost on the text it was
counted on: not the baseline of a loss measured on text held out from the counting.)

>>> text = load_corpus("tiny")
>>> train, val = split_corpus(text, val_fraction=0.1)
>>> len(train) + len(val) == len(text)
True
"""

from __future__ import annotations

import codecs
import math
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

__all__ = ["CorpusError", "available_corpora", "load_corpus", "read_text", "split_corpus", "unigram_entropy",
           "unigram_cross_entropy"]

_PACKAGE = "minitransformer.data"


def available_corpora() -> list[str]:
    """Names of the corpora shipped with the package (the ``*.txt`` files of ``minitransformer/data``).

    Returns
    -------
    list of str
        The names, sorted; each one is an argument of :func:`load_corpus`.

    Examples
    --------
    >>> "tiny" in available_corpora()
    True
    """
    return sorted(p.name[: -len(".txt")] for p in resources.files(_PACKAGE).iterdir() if p.name.endswith(".txt"))


def load_corpus(name: str = "tiny") -> str:
    """The text of a shipped corpus.

    Parameters
    ----------
    name : str
        One of :func:`available_corpora` (``"tiny"``).

    Returns
    -------
    str
        The whole text (UTF-8 decoded; the ``"tiny"`` corpus is plain ASCII).

    Examples
    --------
    >>> text = load_corpus("tiny")
    >>> text.splitlines()[0], len(set(text))
    ('THE GETTYSBURG ADDRESS', 67)
    """
    names = available_corpora()
    if name not in names:
        raise ValueError(f"load_corpus: no corpus named {name!r}; the package ships {names}")
    return resources.files(_PACKAGE).joinpath(f"{name}.txt").read_text(encoding="utf-8")


class CorpusError(ValueError):
    """A text that cannot serve as a corpus: no such file, a folder, not UTF-8, empty, too short.

    ``problem`` says what is wrong without naming the text, so that a caller can name it its own way (the
    command line by its option, ``--text``).

    Examples
    --------
    >>> try:
    ...     read_text("no/such/file.txt")
    ... except CorpusError as e:
    ...     print(e, "|", e.problem)
    read_text: 'no/such/file.txt': no such file | no such file
    """

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.problem = problem


def read_text(path) -> str:
    r"""The text of a UTF-8 file, its line breaks made ``"\n"`` (as Python's text mode does), a leading BOM dropped.

    Parameters
    ----------
    path : str or Path
        A UTF-8 text file.

    Returns
    -------
    str
        The text, not empty.

    Raises
    ------
    CorpusError
        No such file, a folder or another thing that is not a regular file, bytes that are not UTF-8, an empty file.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "poem.txt")
    ...     with open(path, "wb") as f:
    ...         _ = f.write("Ünder the\r\nmoon\n".encode("utf-8"))
    ...     read_text(path)
    'Ünder the\nmoon\n'
    """
    path = Path(path)
    where = f"read_text: {str(path)!r}"
    if not path.exists():
        raise CorpusError(where, "no such file")
    if path.is_dir():
        raise CorpusError(where, "a folder, not a text file")
    if not path.is_file():
        raise CorpusError(where, "not a regular file")
    data = path.read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0  # the mark some editors write first
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = start + e.start
        raise CorpusError(where, f"not UTF-8 text (byte 0x{data[at]:02x} at offset {at})") from None
    if not text:
        raise CorpusError(where, "empty")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_corpus(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    r"""Training and validation text: the last ``val_fraction`` of the text, cut at a line start, is validation.

    A contiguous cut (not a random sample of characters) keeps the validation text unseen:
    a model cannot score well on it by remembering the neighbouring characters from training.

    Parameters
    ----------
    text : str
        The text to cut (at least 2 characters).
    val_fraction : float
        In ``(0, 1)``.

    Returns
    -------
    train, val : str
        ``train + val == text``.

    Examples
    --------
    >>> split_corpus("one\ntwo\nthree\nfour\n", val_fraction=0.3)      # the cut moves to a line start
    ('one\ntwo\nthree\n', 'four\n')
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"split_corpus: val_fraction must be in (0, 1), got {val_fraction}")
    if len(text) < 2:
        raise ValueError(f"split_corpus: the text has {len(text)} characters; need at least 2 to split")
    cut = min(max(int(round(len(text) * (1.0 - val_fraction))), 1), len(text) - 1)
    line_start = text.find("\n", cut - 1) + 1  # move the cut forward to a line start (it may be one already)
    if 0 < line_start < len(text):
        cut = line_start
    return text[:cut], text[cut:]


def unigram_entropy(text: str) -> float:
    r"""Entropy of the character frequencies of ``text``, in nats per character.

    .. math:: H = -\sum_c p_c \ln p_c, \qquad p_c = \frac{\mathrm{count}(c)}{\mathrm{len(text)}}

    The cross-entropy a model reaches by ignoring context and predicting each character from its
    frequency alone, on the same text it counted: the lowest any such model reaches there. A loss
    measured on held-out text is compared with :func:`unigram_cross_entropy` instead.

    Parameters
    ----------
    text : str
        A non-empty text.

    Returns
    -------
    float
        :math:`H` in nats (0 for a text of one repeated character).

    Examples
    --------
    >>> round(unigram_entropy("abab"), 4)  # two characters, equally often: ln 2
    0.6931
    """
    if not text:
        raise ValueError("unigram_entropy: the text is empty")
    n = len(text)
    return -sum(c / n * math.log(c / n) for c in Counter(text).values())


def unigram_cross_entropy(train_text: str | list[str], text: str | list[str], vocab: Iterable[str]) -> float:
    r"""Cross-entropy on ``text`` of the unigram model counted on ``train_text``, add-one smoothed over ``vocab``.

    .. math::
        \mathrm{CE} = -\frac{1}{N} \sum_{i=1}^{N} \ln p(x_i), \qquad
        p(c) = \frac{\mathrm{count}(c) + 1}{M + V}

    :math:`x_1 \ldots x_N` are the characters of ``text``, :math:`\mathrm{count}(c)` the times :math:`c`
    occurs in ``train_text``, :math:`M` its length and :math:`V` the number of entries of ``vocab``. Every
    entry gets one count more (Laplace's add-one), so a character that never occurs in training costs
    :math:`\ln(M + V)`, not an infinite loss.

    The baseline of a character model's validation loss: the model counted on the training text only and
    scored on the validation text, over the same :math:`V` outcomes as the model's softmax (a tokenizer's
    ``itos``; its four specials never occur, and keep their one count).

    Parameters
    ----------
    train_text : str or list of str
        The text the counts come from (may be empty: then every entry has probability :math:`1 / V`); or
        the pieces a tokenizer cuts it into (``tok.tokenize(text)``), to count tokens instead of characters.
    text : str or list of str
        The text scored, not empty (or its pieces).
    vocab : iterable of str
        The model's outcomes, each once; every character of both texts must be one of them.

    Returns
    -------
    float
        :math:`\mathrm{CE}` in nats per character.

    Examples
    --------
    >>> round(unigram_cross_entropy("aab", "ab", vocab="abc"), 4)   # p(a) = 3/6, p(b) = 2/6: (ln 2 + ln 3) / 2
    0.8959
    """
    vocab = list(vocab)
    V, M = len(vocab), len(train_text)
    if not text:
        raise ValueError("unigram_cross_entropy: the text scored is empty")
    if len(set(vocab)) != V:
        raise ValueError(f"unigram_cross_entropy: vocab holds {V} entries but {len(set(vocab))} distinct ones")
    unknown = sorted((set(train_text) | set(text)) - set(vocab))
    if unknown:
        raise ValueError(f"unigram_cross_entropy: characters outside vocab: {', '.join(map(repr, unknown[:10]))}")
    counts = Counter(train_text)
    return -sum(n * math.log((counts[c] + 1) / (M + V)) for c, n in Counter(text).items()) / len(text)
