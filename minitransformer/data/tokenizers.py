"""Text to token ids and back: character, word and byte-pair-encoding tokenizers, with four special tokens.

Every vocabulary starts with the same four special tokens, so code that pads, starts or ends a
sequence never needs to know which tokenizer made it:

====  =========  ==================================================
id    token      used for
====  =========  ==================================================
0     ``<pad>``  filling short sequences up to the batch length
1     ``<bos>``  "begin of sequence": the decoder's first input
2     ``<eos>``  "end of sequence": the decoder's last target
3     ``<unk>``  a character or word the vocabulary does not have
====  =========  ==================================================

A tokenizer is saved with a checkpoint as plain JSON-able data (:meth:`Tokenizer.to_dict`),
never with pickle, and rebuilt with :func:`tokenizer_from_dict`.

>>> tok = CharTokenizer("abc")
>>> tok.encode("cab", add_bos=True, add_eos=True)
[1, 6, 4, 5, 2]
>>> tok.decode([1, 6, 4, 5, 2])
'cab'
"""

from __future__ import annotations

import functools
import numbers
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import TypeVar

import numpy as np  # only to recognise a NumPy bool in saved data

from .._arguments import require_bool, require_int

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "PAD_TOKEN",
    "BOS_TOKEN",
    "EOS_TOKEN",
    "UNK_TOKEN",
    "SPECIAL_TOKENS",
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "BPETokenizer",
    "TokenizerPair",
    "tokenizer_from_dict",
]

#: the ids of the special tokens, the same in every vocabulary -- ``<pad>`` (filling a short sequence up to the
#: batch length), ``<bos>`` (a decoder input's first token), ``<eos>`` (a target's last token) and ``<unk>`` (a
#: character or word outside the vocabulary)
PAD, BOS, EOS, UNK = 0, 1, 2, 3
#: the strings of the special tokens, in every vocabulary
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<bos>", "<eos>", "<unk>"
#: the special tokens in id order, so ``SPECIAL_TOKENS[PAD] == "<pad>"``
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)


def _composed(text: str) -> str:
    """``text`` in Unicode's composed form (NFC): "é" as one character, as it is typed on most keyboards, not "e" and
    a combining accent (as macOS copies it, NFD), which read as ``<unk>``s where the vocabulary holds the other; and a
    character Unicode counts the same as another (U+2126 OHM SIGN) as that one ("Ω", GREEK CAPITAL LETTER OMEGA).

    The one rule for text entering a tokenizer: its vocabulary (constructors, ``from_text``/``from_texts``) and what
    it reads (``tokenize``, ``encode``) are composed alike, so both spellings of a text give the same ids. A vocabulary
    read back from saved data is the exception (:class:`_AsSaved`)."""
    return unicodedata.normalize("NFC", text) if isinstance(text, str) and not text.isascii() else text


class _AsSaved(list):
    """Vocabulary entries read back from saved data (:meth:`Tokenizer.from_dict`), which the constructors take as
    they are, not composed: their positions are the ids a model learned. A tokenizer saved before the constructors
    composed their entries (commit 9671864) may hold one that is not in NFC ("\u0958", or "\u2126" beside "Ω");
    composing it would split or merge entries and move every later id. Such an entry is never read, as before: text
    is composed as it enters. The type says so, as markupsafe's ``Markup`` says a text is escaped already: it
    travels through a subclass's ``__init__`` that hands its vocabulary on."""


def _alphabet(op: str, alphabet) -> list[str]:
    """The single characters of ``alphabet``, composed (:func:`_composed`): a str as a text ("e" and a combining
    accent are one "é", as :meth:`~Tokenizer.encode` reads them), each character of a list by itself (one that NFC
    writes as two, U+0958 DEVANAGARI LETTER QA, gives both); those of saved data as saved (:class:`_AsSaved`)."""
    if isinstance(alphabet, str):
        return list(_composed(alphabet))
    chars = list(alphabet)
    for ch in chars:
        if not isinstance(ch, str) or len(ch) != 1:
            raise ValueError(f"{op}: the alphabet must hold single characters, got {ch!r}")
    if isinstance(alphabet, _AsSaved):
        return _AsSaved(chars)
    return [c for ch in chars for c in _composed(ch)]


#: the tokenizer classes by kind (``to_dict()["type"]``), for :func:`tokenizer_from_dict`; each class that defines a
#: ``kind`` of its own is entered as it is defined (:meth:`Tokenizer.__init_subclass__`)
_KINDS: dict[str, type] = {}
#: the kind of :class:`TokenizerPair`'s data, and the base class's (which no saved tokenizer is), which no class takes
_PAIR_KIND, _BASE_KIND = "pair", "base"


class _NotSaveable(TypeError):
    """A tokenizer whose class would not read back as itself: :meth:`Tokenizer.to_dict` refuses it."""


def _register(cls: type) -> None:
    """Enter ``cls`` under its own ``kind`` in :data:`_KINDS`; refuse a kind that is no name, reserved, or another
    class's. A class of the same name defined again takes its place: a notebook cell run twice, a module reloaded, or
    imported a second time under another name (a script run as ``__main__`` and imported; pytest 7.0's importlib
    mode imports a test file twice, once as ``tests.test_data``)."""
    kind = cls.__dict__["kind"]
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__}: kind must be a non-empty string (its name in saved data), got {kind!r}")
    if kind in (_PAIR_KIND, _BASE_KIND):
        owner = "TokenizerPair" if kind == _PAIR_KIND else "the base class Tokenizer"
        raise TypeError(f"{cls.__name__}: kind {kind!r} is reserved ({owner}'s); choose another, such as "
                        f"{cls.__name__.lower()!r}")
    other = _KINDS.get(kind)
    again = other is not None and other.__qualname__ == cls.__qualname__ and (
        other.__module__ == cls.__module__ or not other.__module__.startswith(__name__.split(".")[0] + "."))
    if other is not None and not again:  # (the library's own kinds stay its classes')
        raise TypeError(f"{cls.__name__}: kind {kind!r} is already {other.__module__}.{other.__qualname__}'s; a saved "
                        f"tokenizer names its class by its kind, so each class needs its own: choose another, such as "
                        f"{cls.__name__.lower()!r}")
    _KINDS[kind] = cls


#: the class a classmethod of :class:`Tokenizer` is called on (``CharTokenizer.from_dict`` gives a CharTokenizer)
T = TypeVar("T", bound="Tokenizer")


class Tokenizer:
    """A vocabulary ``itos`` (id to string) whose first four entries are :data:`SPECIAL_TOKENS`.

    Subclasses say how a text is cut into pieces (:meth:`tokenize`) and glued back (``_join``);
    the id lookup, the specials and saving are shared here.

    Text is read in Unicode's composed form, NFC: the vocabulary's entries and every text read (:meth:`encode`,
    and the built-in classes' :meth:`tokenize`) are composed first, so "café" typed (NFC) and copied on macOS (NFD:
    "e" and a combining accent) give the same ids, and so do U+2126 OHM SIGN and "Ω". A round trip therefore gives
    a text back up to NFC: ``decode(encode(text)) == unicodedata.normalize("NFC", text)``. A vocabulary read back
    (:meth:`from_dict`) is kept as saved, entry for entry: data saved before the entries were composed may hold
    one that is not in NFC, which no text reads, as then.

    A checkpoint names a tokenizer's class by its ``kind`` (the ``"type"`` entry of :meth:`to_dict`), and
    :func:`tokenizer_from_dict` finds the class of that kind: each class defined with a ``kind = "..."`` of its own
    is registered as it is defined (two classes claiming one kind are refused). A class that inherits its parent's
    kind would read back as the parent, tokenizing otherwise: saving it (:meth:`to_dict`, ``save_checkpoint``) is
    refused, saying so. A subclass that holds state of its own beyond the vocabulary (a setting of its
    ``__init__``) also saves it in :meth:`to_dict` and reads it back in :meth:`from_dict`.

    Parameters
    ----------
    pieces : iterable of str
        The vocabulary after the specials, in id order (ids start at 4), each entry composed (NFC); duplicates are
        dropped. A piece that is a special token (``"<eos>"``) is refused: its text would read as the special.

    Attributes
    ----------
    itos : list of str
        Id to string, the four specials first.
    stoi : dict of str to int
        String to id, the inverse of ``itos``.

    Examples
    --------
    A tokenizer that cuts a text into pairs of characters:

    >>> class Pairs(Tokenizer):
    ...     kind = "pairs"                      # its name in a checkpoint: tokenizer_from_dict finds it by it
    ...     def tokenize(self, text):
    ...         return [text[i:i + 2] for i in range(0, len(text), 2)]
    ...     def _join(self, pieces):
    ...         return "".join(pieces)
    >>> tok = Pairs(["ba", "na"])
    >>> tok.vocab_size, tok.encode("banana", add_eos=True)
    (6, [4, 5, 5, 2])
    >>> tok.decode([4, 5, 5, 2])
    'banana'
    >>> tokenizer_from_dict(tok.to_dict()) == tok
    True
    """

    #: the class's name in saved data (``to_dict()["type"]``); each class that is saved defines its own
    kind = _BASE_KIND

    def __init_subclass__(cls, **kwargs):
        """Register a subclass that defines its own ``kind`` with :func:`tokenizer_from_dict`."""
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _register(cls)

    def __init__(self, pieces: Iterable[str]):
        itos = list(SPECIAL_TOKENS)
        seen = set(itos)
        saved = isinstance(pieces, _AsSaved)
        for piece in pieces:
            if not isinstance(piece, str) or not piece:
                raise ValueError(f"{type(self).__name__}: vocabulary entries must be non-empty strings, got {piece!r}")
            if not saved:
                piece = _composed(piece)  # as a text is read: a decomposed entry would never be found
            if piece in SPECIAL_TOKENS:
                raise ValueError(f"{type(self).__name__}: the vocabulary lists the special token {piece!r}; the four "
                                 f"specials {list(SPECIAL_TOKENS)} come first by themselves (ids 0 to 3), a text's "
                                 f"{piece!r} is ordinary characters")
            if piece not in seen:  # duplicates are dropped, the first occurrence keeps its id
                seen.add(piece)
                itos.append(piece)
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(itos)}

    # ------------------------------------------------------------ to implement in subclasses
    def tokenize(self, text: str) -> list[str]:  # pragma: no cover - abstract
        """The pieces of ``text`` (strings), in order, before they are looked up in the vocabulary."""
        raise NotImplementedError

    def _join(self, pieces: list[str]) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    @property
    def vocab_size(self) -> int:
        """Number of ids, the four specials included (the embedding table has this many rows)."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return False
        try:
            return self.to_dict() == other.to_dict()
        except _NotSaveable:  # a class that cannot be saved (no kind of its own): what it holds
            return vars(self) == vars(other)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``; pieces not in the vocabulary become :data:`UNK`.

        Parameters
        ----------
        text : str
            The text to encode.
        add_bos, add_eos : bool
            Put :data:`BOS` in front / :data:`EOS` at the end.

        Returns
        -------
        list of int
            One id per piece of ``text`` (plus the specials asked for).
        """
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__}.encode: text must be a str, got {type(text).__name__}")
        ids = [self.stoi.get(piece, UNK) for piece in self.tokenize(_composed(text))]
        return ([BOS] if add_bos else []) + ids + ([EOS] if add_eos else [])

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """The text of token ids (a list, a 1-D array or a 1-D Tensor of ints).

        Parameters
        ----------
        ids : iterable of int
            Ids in ``0 .. vocab_size - 1``.
        skip_special : bool
            Leave out ``<pad>``, ``<bos>`` and ``<eos>``. An unknown piece is always shown as
            ``<unk>``: dropping it would hide that something was lost.

        Returns
        -------
        str
            The pieces glued back together.
        """
        if hasattr(ids, "tolist"):  # a Tensor or an array: plain Python ints from the host
            ids = ids.tolist()
        pieces = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < self.vocab_size:
                raise ValueError(
                    f"{type(self).__name__}.decode: id {i!r} is not in the vocabulary (0..{self.vocab_size - 1})"
                )
            if skip_special and i in (PAD, BOS, EOS):
                continue
            pieces.append(self.itos[int(i)])
        return self._join(pieces)

    def to_dict(self) -> dict:
        """Everything needed to rebuild this tokenizer, as JSON-able data (for checkpoints).

        Raises
        ------
        TypeError
            The class has no ``kind`` of its own (it inherits its parent's, and would read back as the parent), or
            its kind is registered to another class: the message says what to add.
        """
        return {"type": self._saved_kind(), "specials": list(SPECIAL_TOKENS), "vocab": self.itos[len(SPECIAL_TOKENS) :]}

    def _saved_kind(self) -> str:
        """``kind``, where :func:`tokenizer_from_dict` reads it back as this class; else a :class:`TypeError` saying
        what the class needs."""
        cls = type(self)
        if _KINDS.get(self.kind) is cls:
            return self.kind
        if "kind" not in cls.__dict__:
            owner = next(c for c in cls.__mro__ if "kind" in c.__dict__)
            back = (f"a {owner.__name__}" if _KINDS.get(self.kind) is owner else
                    f"nothing (no class is registered as {self.kind!r})")
            why = (f"it inherits kind {self.kind!r} from {owner.__name__}, so tokenizer_from_dict would read it back "
                   f"as {back}, which tokenizes otherwise")
        elif self.kind in _KINDS:
            other = _KINDS[self.kind]
            why = (f"its kind {self.kind!r} is registered to another class, {other.__module__}.{other.__qualname__} "
                   "(defined again since?), which tokenizer_from_dict would build")
        else:
            why = f"its kind {self.kind!r} is not registered with tokenizer_from_dict (set after the class was made?)"
        raise _NotSaveable(
            f"{cls.__name__}.to_dict: this tokenizer cannot be saved: {why}. Give the class a kind of its own in its "
            f'body: kind = "{cls.__name__.lower()}", which registers it when the class is defined (and to_dict/'
            "from_dict if it holds state of its own beyond the vocabulary, such as a setting of its __init__)"
        )

    @classmethod
    def from_dict(cls: type[T], state: dict) -> T:
        """Rebuild a tokenizer of this class saved by :meth:`to_dict` (or of a subclass: the ``"type"`` entry says
        which; ``Tokenizer.from_dict`` reads any); another class's data are refused (:func:`tokenizer_from_dict`
        reads whatever was saved, a :class:`TokenizerPair` too).

        The class registered under the saved ``"type"`` rebuilds it: ``cls(vocab)`` by default (and what the
        built-in classes save besides: ``lower``, ``merges``, ``marks_in_words``), the entries as saved, not composed
        (:class:`Tokenizer`). A subclass whose ``__init__`` takes more than the vocabulary overrides this classmethod,
        as it overrides :meth:`to_dict` to save them.
        """
        saved = _KINDS.get(state.get("type")) if isinstance(state, dict) else None
        if saved is cls:
            return cls._from_vocab(state, _saved_vocab(state))
        if saved is None and not (isinstance(state, dict) and state.get("type") == _PAIR_KIND):
            tokenizer_from_dict(state)  # no tokenizer's data: refused there, in its words
        if saved is None or not issubclass(saved, cls):
            whose = "a TokenizerPair's" if saved is None else f"a {saved.__name__}'s"
            raise ValueError(f"{cls.__name__}.from_dict: the data are {whose} ('type': {state['type']!r}), not a "
                             f"{cls.__name__}'s; tokenizer_from_dict(state) reads whatever was saved")
        return tokenizer_from_dict(state)  # type: ignore[return-value]  # a subclass's data: its own from_dict

    @classmethod
    def _from_vocab(cls: type[T], state: dict, vocab: list) -> T:
        """This class rebuilt from its checked saved ``vocab`` (the entries after the specials) and ``state``."""
        return cls(_AsSaved(vocab))


class CharTokenizer(Tokenizer):
    """One token per character (of the text in NFC); ``decode(encode(text)) == text`` whenever every character is
    known and ``text`` is in NFC, as typed on most keyboards (else the text comes back composed: "e" and a combining
    accent as "é").

    Parameters
    ----------
    alphabet : str or iterable of str
        The characters, in id order (ids start at 4, after the specials), composed: a str as a text
        (``"cafe\u0301"`` is ``c a f é``), each character of a list by itself. Build one from a corpus
        with :meth:`from_text`.

    Examples
    --------
    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.itos[4:]
    ['e', 'h', 'l', 'o']
    >>> tok.encode("hole!")
    [5, 7, 6, 4, 3]
    >>> tok.decode(tok.encode("hole!"))
    'hole<unk>'
    """

    kind = "char"

    def __init__(self, alphabet: str | Iterable[str]):
        super().__init__(_alphabet("CharTokenizer", alphabet))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose alphabet is the distinct characters of ``text``, sorted."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.from_text: text must be a str, got {type(text).__name__}")
        if not text:  # only the specials: every character after it would be <unk>
            raise ValueError("CharTokenizer.from_text: the text is empty; its characters are the vocabulary")
        return cls(sorted(set(_composed(text))))

    def tokenize(self, text: str) -> list[str]:
        """The characters of ``text`` in NFC: ``"ab" -> ["a", "b"]``, ``"e\u0301" -> ["é"]``."""
        return list(_composed(text))

    def _join(self, pieces: list[str]) -> str:
        return "".join(pieces)


# A word is letters/digits and the combining marks on them (with inner apostrophes, straight or curly: "don't",
# "l’homme"); every other visible character is a token of its own ("great." -> "great", "."), and so is each Chinese
# or Japanese character (Han, hiragana, katakana), written without spaces between words: a run of them would be one
# "word", a sentence's worth
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def _ranges_of_category(first_letter: str) -> str:
    """The characters whose Unicode category starts with ``first_letter``, as the ranges of a regex character class
    (``\\u0300-\\u036f...``). Looked up in planes 0, 1 and 14 only, where the marks are (planes 2 and 3 hold CJK
    ideographs, 15 and 16 private use)."""
    ranges: list[list[int]] = []
    for plane in (range(0x20000), range(0xE0000, 0xF0000)):
        for c in plane:
            if unicodedata.category(chr(c))[0] == first_letter:
                if ranges and ranges[-1][1] == c - 1:
                    ranges[-1][1] = c
                else:
                    ranges.append([c, c])
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


@functools.cache
def _word_re(marks_in_words: bool = True) -> re.Pattern:
    """The pattern of :meth:`WordTokenizer.tokenize`, made on first use. A combining mark (categories Mn, Mc, Me: the
    vowel signs of Devanagari and Tamil, Arabic's harakat, Thai's vowels and tones, the dot of "i̇") belongs to the
    letter before it, as BERT's BasicTokenizer keeps it, but Python's ``\\w`` does not match it and ``re`` has no
    ``\\p{M}``: its class is built from :mod:`unicodedata` (a fifth of a second). Without it "हूँ" was three tokens.

    ``marks_in_words=False`` gives the rule of tokenizers saved before (:class:`WordTokenizer`): no class of marks, so
    each mark is a token of its own, as a punctuation mark is."""
    letter = rf"[^\W{_CJK}]"  # a letter or digit, not a Chinese or Japanese character
    marks = ""  # the marks that a letter, a CJK character or a punctuation mark carries
    if marks_in_words:
        mark = f"[{_ranges_of_category('M')}]"
        letter, marks = rf"(?:{letter}|{mark})", f"{mark}*"
    return re.compile(rf"[{_CJK}]{marks}|{letter}+(?:['\u2019]{letter}+)*|[^\w\s]{marks}")


# A piece written with no space around it: a Chinese or Japanese character, or CJK or full-width punctuation ("。",
# "！"); not a full-width letter or digit, nor "々", which are word characters: glued to a word they would join it
_WRITTEN_CLOSE = re.compile(rf"[{_CJK}]|(?!\w)[\u3000-\u303f\uff00-\uffef]")
_NO_SPACE_BEFORE = set(".,!?;:)]}%'\"") | set("\u0964\u0965\u060c\u061b\u061f\u06d4")  # and । ॥ ، ؛ ؟ ۔
_NO_SPACE_AFTER = set("([{")


class WordTokenizer(Tokenizer):
    """One token per word or punctuation mark (a regular expression split, no learned merges); one per character of
    Chinese and Japanese, whose words no space separates (decoded without spaces between them).

    For a text whose every word is in the vocabulary, ``decode(encode(text))`` gives the text back up
    to whitespace, NFC (:class:`Tokenizer`) and, with ``lower=True``, case: encoding the decoded text again gives
    the same ids.
    An unknown word comes back as ``<unk>`` (which encodes again as the three pieces ``<``, ``unk``, ``>``).

    A combining mark stays inside its word (``"मैं"`` is one word, ``"i̇stanbul"`` too). Tokenizers saved before
    that rule (data without ``"marks_in_words"``) are read with the rule they were made with, each mark a token of
    its own (``"म"``, ``"ै"``, ``"ं"``): their vocabularies hold those pieces, which the model learned.

    Parameters
    ----------
    vocab : iterable of str
        The words, in id order (ids start at 4). Build one from texts with :meth:`from_texts`.
    lower : bool
        Lower-case text before looking words up, and the words of ``vocab`` too (else ``"Yes"`` could never
        be found); words that become the same (``"Yes"``, ``"yes"``) are one entry, with the first one's id.

    Attributes
    ----------
    marks_in_words : bool
        Whether a combining mark belongs to the word before it (True); False for data saved before, as above.

    Examples
    --------
    >>> tok = WordTokenizer.from_texts(["The film was good.", "The plot was not good!"])
    >>> tok.itos[4:]
    ['good', 'the', 'was', '!', '.', 'film', 'not', 'plot']
    >>> tok.encode("The film was bad.")
    [5, 9, 6, 3, 8]
    >>> tok.decode(tok.encode("The film was bad."))
    'the film was <unk>.'
    >>> tok.encode(tok.decode(tok.encode("The film was bad.")))       # "bad" is unknown: no round trip
    [5, 9, 6, 3, 3, 3, 8]
    """

    kind = "word"

    def __init__(self, vocab: Iterable[str], lower: bool = True):
        self.lower = require_bool("WordTokenizer", "lower", lower)  # "false" would be true by Python's rules
        self.marks_in_words = True  # (False only as read back: from_dict)
        if self.lower:  # the base class refuses entries that are not strings, and drops the duplicates
            lowered = [w.lower() if isinstance(w, str) else w for w in vocab]
            vocab = _AsSaved(lowered) if isinstance(vocab, _AsSaved) else lowered
        super().__init__(vocab)

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], lower: bool = True, max_vocab: int | None = None, min_freq: int = 1
    ) -> WordTokenizer:
        """The vocabulary of ``texts``: most frequent words first (ties alphabetically).

        Parameters
        ----------
        texts : iterable of str
            The texts to count words in.
        lower : bool
            Lower-case before counting (``"The"`` and ``"the"`` are one word).
        max_vocab : int, optional
            Largest ``vocab_size``, the four specials included; the rarest words are left out.
        min_freq : int
            Leave out words seen fewer times than this.
        """
        if isinstance(texts, str):
            raise TypeError("WordTokenizer.from_texts: texts must be a list of strings, not one string")
        op = "WordTokenizer.from_texts"
        if max_vocab is not None:
            max_vocab = require_int(op, "max_vocab", max_vocab, low=len(SPECIAL_TOKENS),
                                    why=" (the 4 special tokens come first), or None")
        min_freq = require_int(op, "min_freq", min_freq, low=1)
        counts: Counter[str] = Counter()
        probe = cls([], lower=lower)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{op}: texts must be strings, got {type(text).__name__} at index {i}")
            counts.update(probe.tokenize(text))
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if not words:  # only the specials: every word after it would be <unk>
            raise ValueError(f"WordTokenizer.from_texts: no word in the texts{' seen min_freq times' if counts else ''}"
                             f" (min_freq={min_freq}); the words are the vocabulary")
        if max_vocab is not None:
            words = words[: max_vocab - len(SPECIAL_TOKENS)]
        return cls(words, lower=lower)

    def tokenize(self, text: str) -> list[str]:
        """The words and punctuation marks of ``text`` (in NFC, lower-cased if ``lower``, in NFC again: as the
        vocabulary's entries)."""
        text = _composed(text)
        if self.lower:
            text = text.lower()
            if self.marks_in_words:  # "H\u0331" lowers to "h\u0331", which composes ("ẖ"); the rule of before did not
                text = _composed(text)
        return _word_re(self.marks_in_words).findall(text)

    def _join(self, pieces: list[str]) -> str:
        out, quoted = [], False  # quoted: after an opening straight double quote, before its closing one
        for k, piece in enumerate(pieces):
            before = pieces[k - 1] if k else ""
            opening = piece == '"' and not quoted  # 'He said "yes".': a space before the first, none after it
            glue = (k == 0 or (piece in _NO_SPACE_BEFORE and not opening) or before in _NO_SPACE_AFTER
                    or (before == '"' and quoted) or _WRITTEN_CLOSE.match(piece) is not None
                    or _WRITTEN_CLOSE.match(before) is not None
                    or (len(before) == 1 and unicodedata.category(before) == "Sc" and piece[0].isdigit()))  # "$5"
            out.append(piece if glue else " " + piece)
            quoted ^= piece == '"'
        return "".join(out)

    def to_dict(self) -> dict:
        """As :meth:`Tokenizer.to_dict`, with ``"lower"`` and ``"marks_in_words"``."""
        return {**super().to_dict(), "lower": self.lower, "marks_in_words": self.marks_in_words}

    @classmethod
    def _from_vocab(cls, state: dict, vocab: list) -> WordTokenizer:
        """As :meth:`Tokenizer._from_vocab`, with the saved ``"lower"`` (True where the data have none: the
        constructor's default) and ``"marks_in_words"`` (False where the data have none: saved before), each of
        which must be a bool: ``bool("false")`` would be true."""
        lower, marks_in_words = state.get("lower", True), state.get("marks_in_words", False)
        for key, value in (("lower", lower), ("marks_in_words", marks_in_words)):
            if not (value is True or value is False or isinstance(value, np.bool_)):
                raise ValueError(f"tokenizer_from_dict: a {state.get('type')!r} tokenizer's {key!r} must be true or "
                                 f"false, got {value!r} (a damaged or hand-edited file?)")
        tok = cls(_AsSaved(vocab), lower=bool(lower))
        tok.marks_in_words = bool(marks_in_words)  # set here, not in __init__: a subclass's __init__ need not take it
        return tok


# A chunk is a word with the single space before it, if any (" lower"), or one other whitespace character
# ("\n", a second space, a tab): merges never cross a chunk's edge, and the chunks glue back into the text.
_CHUNK_RE = re.compile(r" ?\S+|\s")


def _merge_pair(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """``symbols`` with every occurrence of ``pair`` (left to right, not overlapping) joined into one symbol."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def _pairs(symbols: tuple[str, ...]) -> list[tuple[str, str]]:
    """The adjacent pairs of ``symbols``: ``("l", "o", "w") -> [("l", "o"), ("o", "w")]``."""
    return list(zip(symbols, symbols[1:]))


class BPETokenizer(Tokenizer):
    r"""Byte-pair encoding: characters merged into frequent subwords (Sennrich, Haddow and Birch 2016, "Neural
    Machine Translation of Rare Words with Subword Units", section 3.2).

    "Attention Is All You Need" (Vaswani et al. 2017, section 5.1) encodes its English-German sentences with
    byte-pair encoding, a vocabulary of about 37,000 tokens shared by source and target. :meth:`from_text`
    learns the merges from a text:

    1. Cut the text into *chunks*: a word (a run of non-whitespace) together with the single space before it,
       if there is one (``"the cat"`` -> ``"the"``, ``" cat"``; the *leading-space* convention of GPT-2, not
       Sennrich's end-of-word marker ``</w>``), or one other whitespace character (a line break, a second
       space, a tab), which stays a token of its own. Count how often each chunk occurs.
    2. Start with every chunk spelled as its characters: the vocabulary is the alphabet.
    3. Count every adjacent pair of symbols, each chunk weighted by how often it occurs; merge the most frequent
       pair, ``("l", "o") -> "lo"``, everywhere, and add ``"lo"`` to the vocabulary. Ties go to the pair that
       comes first in string order (``(" ", "l")`` before ``("l", "o")``), so the same text always gives the same
       merges. A pair that would spell a special token (``("<eo", "s>")``) is never merged: a text's ``"<eos>"``
       stays ordinary pieces, never the id of ``<eos>``.
    4. Repeat step 3 until the vocabulary has ``vocab_size`` entries (the four specials included), or no pair
       occurs twice. Only the chunks that hold the merged pair change, so only their pairs are counted again:
       their old pairs taken off the counts, their new ones added (an index ``pair -> chunks`` finds them).

    :meth:`tokenize` spells each chunk as characters and applies the learned merges by rank: while some
    adjacent pair is a merge, join the pair learned first, everywhere in the chunk. This works over
    *characters* (Unicode code points), not the bytes of GPT-2's byte-level BPE: the corpora here are small
    UTF-8 texts whose alphabet is a few dozen characters. A character outside the alphabet is a piece of its
    own and reads as ``<unk>``.

    What round-trips: the pieces of a text glue back into the text, character for character, spaces, tabs
    and line breaks included, so ``decode(encode(text)) == text`` whenever every character of ``text`` is in
    the alphabet and ``text`` is in NFC (a decomposed text comes back composed: :class:`Tokenizer`). Merges stop
    at a chunk's edge: ``" the"`` can be a token but ``"the "`` and ``"\n\n"`` cannot.

    Parameters
    ----------
    alphabet : str or iterable of str
        The single characters, in id order (ids start at 4).
    merges : iterable of (str, str)
        The learned merges, in the order learned; each pair's two sides must be in the vocabulary before it
        (the alphabet or an earlier merge), and its merged string must not be a special token. The merged string
        of each gets the next id, unless an earlier merge made the same string (``("a", "bc")`` after
        ``("ab", "c")``).

    Attributes
    ----------
    merges : list of (str, str)
        The merges, in the order learned (their rank).

    Examples
    --------
    The first merges of a tiny text: ``("l", "o")`` and ``("o", "w")`` both occur 3 times, and ``"l" < "o"``;
    then ``("lo", "w")`` occurs 3 times; then ``(" ", "low")`` and ``("low", "e")`` twice each, and
    ``" " < "l"``:

    >>> tok = BPETokenizer.from_text("low lower lowest", vocab_size=4 + 8 + 4)   # 8 characters, 4 merges
    >>> tok.merges
    [('l', 'o'), ('lo', 'w'), (' ', 'low'), (' low', 'e')]
    >>> tok.tokenize("lowest lower")
    ['low', 'e', 's', 't', ' lowe', 'r']
    >>> tok.decode(tok.encode("lowest lower"))
    'lowest lower'
    >>> tok.itos[4:12], tok.itos[12:]
    ([' ', 'e', 'l', 'o', 'r', 's', 't', 'w'], ['lo', 'low', ' low', ' lowe'])
    >>> tok.decode(tok.encode("lowly"))          # "y" is not in the alphabet
    'lowl<unk>'
    """

    kind = "bpe"

    def __init__(self, alphabet: str | Iterable[str], merges: Iterable[tuple[str, str]] = ()):
        alphabet = _alphabet("BPETokenizer", alphabet)
        saved = isinstance(alphabet, _AsSaved)  # read back: the merges as saved too
        self.merges: list[tuple[str, str]] = []
        known = set(alphabet)
        for merge in merges:
            if isinstance(merge, (tuple, list)) and len(merge) == 2 and all(isinstance(p, str) for p in merge):
                merge = tuple(merge if saved else map(_composed, merge))  # its pieces as the alphabet's
            if not (isinstance(merge, tuple) and len(merge) == 2 and all(p in known for p in merge)):
                raise ValueError(f"BPETokenizer: merge {len(self.merges)} is {merge!r}; a merge is a pair of "
                                 "pieces already in the vocabulary (the alphabet or an earlier merge)")
            if not saved and _composed(merge[0] + merge[1]) != merge[0] + merge[1]:
                raise ValueError(f"BPETokenizer: merge {len(self.merges)} is {merge!r}, which spells "
                                 f"{merge[0] + merge[1]!r}: text is read composed (NFC), as "
                                 f"{_composed(merge[0] + merge[1])!r}, so that piece never occurs")
            if merge[0] + merge[1] in SPECIAL_TOKENS:
                raise ValueError(f"BPETokenizer: merge {len(self.merges)} is {merge!r}, which spells the special token "
                                 f"{merge[0] + merge[1]!r}; a text's {merge[0] + merge[1]!r} would read as the special "
                                 "(a damaged or hand-made merge list?)")
            self.merges.append((merge[0], merge[1]))
            known.add(merge[0] + merge[1])
        self._rank = {pair: r for r, pair in enumerate(self.merges)}
        vocab = alphabet + [a + b for a, b in self.merges]
        super().__init__(_AsSaved(vocab) if saved else vocab)

    @classmethod
    def from_text(cls, text: str, vocab_size: int, alphabet: str = "") -> BPETokenizer:
        """Learn the merges of ``text`` until the vocabulary holds ``vocab_size`` entries (the algorithm above).

        Parameters
        ----------
        text : str
            The text the chunks and pairs are counted in.
        vocab_size : int
            The vocabulary wanted, the four specials and the alphabet included. Fewer come out if no pair
            occurs twice before.
        alphabet : str
            Characters to include besides those of ``text`` (those of a validation text, so that they are
            not ``<unk>``); the alphabet is the distinct characters of both, sorted.
        """
        if not isinstance(text, str) or not isinstance(alphabet, str):
            raise TypeError(f"BPETokenizer.from_text: text and alphabet must be str, got {type(text).__name__} "
                            f"and {type(alphabet).__name__}")
        text, alphabet = _composed(text), _composed(alphabet)
        chars = sorted(set(text) | set(alphabet))
        if not chars:  # only the specials: every character after it would be <unk>
            raise ValueError("BPETokenizer.from_text: the text (and the alphabet) are empty; their characters are the "
                             "vocabulary it starts from")
        smallest = len(SPECIAL_TOKENS) + len(chars)
        vocab_size = require_int("BPETokenizer.from_text", "vocab_size", vocab_size)  # 7.0 is no size, said so
        if vocab_size < smallest:
            raise ValueError(f"BPETokenizer.from_text: vocab_size={vocab_size!r} is smaller than the 4 special "
                             f"tokens and the text's {len(chars)} characters ({smallest}); BPE only adds to them")
        chunk_counts = Counter(_CHUNK_RE.findall(text))
        words = [tuple(chunk) for chunk in chunk_counts]  # each chunk spelled as its symbols, characters at first
        freq = list(chunk_counts.values())  # how often each chunk occurs
        counts: Counter[tuple[str, str]] = Counter()  # pair -> its occurrences, each chunk weighted by its freq
        where: dict[tuple[str, str], set[int]] = {}  # pair -> the chunks (their indices) it occurs in

        def count_pairs(i: int, sign: int) -> None:
            """Add chunk ``i``'s pairs to ``counts`` and ``where`` (``sign`` 1), or take them off (``sign`` -1)."""
            for pair in _pairs(words[i]):
                counts[pair] += sign * freq[i]
                if sign > 0:
                    where.setdefault(pair, set()).add(i)
                else:
                    where[pair].discard(i)
                    if counts[pair] == 0:  # gone from the text: no longer a candidate
                        del counts[pair], where[pair]

        for i in range(len(words)):
            count_pairs(i, +1)
        vocab, merges = set(chars), []
        while len(SPECIAL_TOKENS) + len(vocab) < vocab_size:
            allowed = [pair for pair in counts if pair[0] + pair[1] not in SPECIAL_TOKENS]
            best = min(allowed, key=lambda pair: (-counts[pair], pair), default=None)  # ties in string order
            if best is None or counts[best] < 2:
                break  # no pair occurs twice: merging more would only learn single chunks by heart
            for i in list(where[best]):  # only the chunks holding the pair change
                count_pairs(i, -1)
                words[i] = _merge_pair(words[i], best)
                count_pairs(i, +1)
            merges.append(best)
            vocab.add(best[0] + best[1])
        return cls(chars, merges)

    def tokenize(self, text: str) -> list[str]:
        """The pieces of ``text`` (in NFC): each chunk's characters, merged by rank (the merge learned first, first)."""
        pieces = []
        for chunk in _CHUNK_RE.findall(_composed(text)):
            symbols = tuple(chunk)
            while True:
                ranked = [pair for pair in _pairs(symbols) if pair in self._rank]
                if not ranked:
                    break
                symbols = _merge_pair(symbols, min(ranked, key=self._rank.__getitem__))
            pieces.extend(symbols)
        return pieces

    def _join(self, pieces: list[str]) -> str:
        return "".join(pieces)

    def to_dict(self) -> dict:
        """As :meth:`Tokenizer.to_dict`, with ``"merges"``: a list of ``[left, right]`` pairs, in rank order."""
        return {**super().to_dict(), "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def _from_vocab(cls, state: dict, vocab: list) -> BPETokenizer:
        """The alphabet is the vocabulary's single characters (a merge makes two or more), the merges are listed;
        the vocabulary they make must be the one saved, id for id."""
        merges, kind = state.get("merges"), state.get("type")
        if not isinstance(merges, list) or not all(isinstance(m, list) and len(m) == 2 for m in merges):
            raise ValueError(f"tokenizer_from_dict: a {kind!r} tokenizer's 'merges' must be a list of [left, right] "
                             f"pairs, got {merges!r:.80}")
        tok = cls(_AsSaved(p for p in vocab if isinstance(p, str) and len(p) == 1), [tuple(m) for m in merges])
        if tok.itos[len(SPECIAL_TOKENS):] != vocab:
            raise ValueError(f"tokenizer_from_dict: a {kind!r} tokenizer's 'vocab' is not its alphabet followed by its "
                             "merges (a damaged or hand-edited file?)")
        return tok


class TokenizerPair:
    """The two tokenizers of a translation: ``source`` reads the encoder's input, ``target`` writes the decoder's.

    A sequence-to-sequence task whose two sides are different languages (or, for the dates task, words and ISO
    characters) has two vocabularies; this pair is what its checkpoint saves as its tokenizer.

    Parameters
    ----------
    source, target : Tokenizer
        The tokenizer of each side.

    Examples
    --------
    >>> pair = TokenizerPair(WordTokenizer(["march", "2021"]), CharTokenizer("0123456789-"))
    >>> pair.source.encode("March 2021"), pair.target.decode(pair.target.encode("2021-03"))
    ([4, 5], '2021-03')
    >>> tokenizer_from_dict(pair.to_dict()) == pair
    True
    """

    kind = _PAIR_KIND

    def __init__(self, source: Tokenizer, target: Tokenizer):
        for side, tok in (("source", source), ("target", target)):
            if not isinstance(tok, Tokenizer):
                raise TypeError(f"TokenizerPair: {side} must be a Tokenizer, got {type(tok).__name__}")
        self.source, self.target = source, target

    def __repr__(self) -> str:
        return f"TokenizerPair(source={self.source!r}, target={self.target!r})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict:
        """Both tokenizers' :meth:`Tokenizer.to_dict` data, under ``"source"`` and ``"target"``."""
        return {"type": self.kind, "source": self.source.to_dict(), "target": self.target.to_dict()}


def tokenizer_from_dict(state: dict) -> Tokenizer | TokenizerPair:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_dict` data; refuse data that is not one.

    Parameters
    ----------
    state : dict
        ``{"type": "char" | "word" | "bpe", "specials": [...], "vocab": [...]}`` (and ``"lower"`` for words,
        ``"merges"`` for BPE), or
        ``{"type": "pair", "source": ..., "target": ...}`` of two such; or the data of a subclass of your own,
        whose ``"type"`` is its ``kind`` (found once the class is defined: import it first).

    Returns
    -------
    Tokenizer or TokenizerPair
        A :class:`CharTokenizer`, a :class:`WordTokenizer`, a :class:`BPETokenizer` (or the subclass whose kind
        the data name) or a :class:`TokenizerPair`, equal to the one saved: the class of kind ``"type"`` rebuilds
        it with its :meth:`~Tokenizer.from_dict`.

    Raises
    ------
    ValueError
        If ``state`` is not such data (its ``"type"`` the kind of no class defined: a class of your own not
        imported yet?), or its special tokens differ from :data:`SPECIAL_TOKENS`.

    Examples
    --------
    >>> tok = WordTokenizer(["yes", "no"], lower=False)
    >>> tokenizer_from_dict(tok.to_dict()) == tok
    True
    """
    if isinstance(state, dict) and state.get("type") == TokenizerPair.kind:
        return TokenizerPair(*(tokenizer_from_dict(state.get(side)) for side in ("source", "target")))
    if not isinstance(state, dict) or state.get("type") not in _KINDS:
        found = state.get("type") if isinstance(state, dict) else type(state).__name__
        kinds = sorted([*_KINDS, TokenizerPair.kind])
        own = (f". A tokenizer class of your own is found by its kind once it is defined: import (or define) the "
               f"class whose kind is {found!r} first, then read it" if isinstance(state, dict) and
               isinstance(found, str) and found not in ("", Tokenizer.kind) else "")
        raise ValueError(f"tokenizer_from_dict: expected a dict with 'type' in {kinds}, got {found!r}{own}")
    cls = _KINDS[state["type"]]
    tok = cls.from_dict(state)
    if type(tok) is not cls:
        raise TypeError(f"tokenizer_from_dict: {cls.__name__}.from_dict gave a {type(tok).__name__}, not a "
                        f"{cls.__name__}: the class of kind {state['type']!r} rebuilds its own")
    return tok


def _saved_vocab(state: dict) -> list:
    """The saved vocabulary (after the specials) of :meth:`Tokenizer.to_dict` data, checked: the specials are ours,
    ``vocab`` a list that holds each entry once (as saved: "\u2126" beside "Ω" is two, as when it was saved,
    :class:`_AsSaved`)."""
    if list(state.get("specials", [])) != list(SPECIAL_TOKENS):
        raise ValueError(
            f"tokenizer_from_dict: the saved special tokens {state.get('specials')!r} differ from "
            f"{list(SPECIAL_TOKENS)}; this tokenizer was saved by another program or version"
        )
    vocab = state.get("vocab")
    if not isinstance(vocab, list):
        raise ValueError(f"tokenizer_from_dict: 'vocab' must be a list of strings, got {type(vocab).__name__}")
    seen: set[str] = set()
    for piece in vocab:  # the constructors drop a duplicate, which would shift every later id by one
        if isinstance(piece, str) and piece in seen:  # (an entry that is no string: the constructor refuses it)
            raise ValueError(f"tokenizer_from_dict: 'vocab' lists {piece!r} twice; a saved vocabulary holds each "
                             "entry once, its position being its id (a damaged or hand-edited file?)")
        if isinstance(piece, str):
            seen.add(piece)
    return vocab


def _check_reads_back(tok, state: dict, op: str) -> None:
    """Refuse a tokenizer that its saved data ``state`` (its ``to_dict()``) would not give back as itself: another
    class, other data, or a setting of its own (a public attribute of a plain value: a bool, a number, a string)
    that reads back otherwise because ``to_dict`` leaves it out. The built-in classes are checked by their tests."""
    if isinstance(tok, TokenizerPair):
        for side in ("source", "target"):
            _check_reads_back(getattr(tok, side), state[side], op)
        return
    cls = type(tok)
    if cls in (CharTokenizer, WordTokenizer, BPETokenizer):
        return
    what = f"{op}: the {cls.__name__} does not read back as itself (tokenizer_from_dict(tok.to_dict()))"
    fix = (f"; a class whose __init__ takes more than the vocabulary saves it in to_dict and reads it back in a "
           f"classmethod from_dict(cls, state) that returns a {cls.__name__}")
    try:
        back = tokenizer_from_dict(state)
    except Exception as e:  # a constructor of another signature, ...: whatever fails, said
        raise TypeError(f"{what}: reading it back fails ({type(e).__name__}: {e}){fix}") from e
    if type(back) is not cls:
        raise TypeError(f"{what}: it comes back as a {type(back).__name__}{fix}")
    again = back.to_dict()
    if again != state:
        raise TypeError(f"{what}: the data of the one read back differ from those saved{fix}")
    plain = (bool, int, float, str, type(None))
    for name, value in vars(tok).items():
        if name.startswith("_") or not isinstance(value, plain):
            continue
        theirs = getattr(back, name, "<absent>")
        if type(theirs) is not type(value) or theirs != value:
            raise TypeError(f"{what}: its {name} is {value!r}, the one read back's {theirs!r}{fix}")
