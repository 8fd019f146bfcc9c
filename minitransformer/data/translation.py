r"""Sentence pairs for the encoder-decoder: dates written by people, to ISO 8601, and pairs from a file of your own.

The Annotated Transformer trains German to English on Multi30k; nothing is downloaded here, so the package ships a
translation task it generates itself, and reads the pairs of a user's file:

* :func:`dates_task_splits` -- ``"the 3rd of March 2021"``, ``"March 3, 2021"``, ``"3 mar 21"``, ``"Wednesday
  03/03/2021"``, ... (:data:`DATE_FORMATS`) to ``"2021-03-03"``. The target puts the year first where most sources
  put it last, so the decoder's cross-attention has to look back and forth: its map shows the alignment.
* :func:`read_pairs` -- ``source<TAB>target`` lines of a UTF-8 file (a Tatoeba or Multi30k export).

Both give text pairs ``(source, target)``; the tokenizers are built from the training split
(:class:`~minitransformer.data.WordTokenizer` for words, :class:`~minitransformer.data.CharTokenizer` for the
ISO dates' characters) and held together by a :class:`~minitransformer.data.TokenizerPair`.

>>> train, val = dates_task_splits(n_train=2, n_val=1, seed=0)
>>> [len(iso) for _, iso in train + val]
[10, 10, 10]
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np  # host-side data generation only: seeded draws

from .._arguments import require_int, require_real
from .corpus import CorpusError, read_text

__all__ = ["DATE_FORMATS", "FIRST_DATE", "LAST_DATE", "format_date", "dates_task_splits", "parse_pairs",
           "read_pairs", "split_pairs"]

# ---------------------------------------------------------------------------------- dates
#: the first and last date of the dates task, the hundred years a two-digit year names unambiguously by the POSIX
#: rule (``strptime``'s ``%y`` reads 69-99 as 1969-1999 and 00-68 as 2000-2068)
FIRST_DATE, LAST_DATE = datetime.date(1969, 1, 1), datetime.date(2068, 12, 31)

_MONTHS = ("January February March April May June July August September October November December").split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()  # date.weekday(): Monday is 0
_DAY_WORDS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
              "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth").split()

#: the ways the dates task writes a date, by name, each a template of the fields ``{d}`` (day, 3), ``{dd}`` (03),
#: ``{dth}`` (3rd), ``{dword}`` (third, twenty-first), ``{m}`` (3), ``{mm}`` (03), ``{month}`` (March), ``{mon}``
#: (Mar), ``{yyyy}`` (2021), ``{yy}`` (21), ``{weekday}`` (Wednesday), ``{wkd}`` (Wed). Numbers are always day
#: before month (``03/04/2021`` is the 3rd of April), so no source names two dates.
DATE_FORMATS = {
    "day month year": "{d} {month} {yyyy}",
    "day mon yy": "{d} {mon} {yy}",
    "month day, year": "{month} {d}, {yyyy}",
    "month dth year": "{month} {dth} {yyyy}",
    "the dth of month year": "the {dth} of {month} {yyyy}",
    "the dword of month, year": "the {dword} of {month}, {yyyy}",
    "weekday dd/mm/yyyy": "{weekday} {dd}/{mm}/{yyyy}",
    "dd/mm/yyyy": "{dd}/{mm}/{yyyy}",
    "d.m.yyyy": "{d}.{m}.{yyyy}",
    "wkd, d mon yyyy": "{wkd}, {d} {mon} {yyyy}",
    "weekday, month dth, year": "{weekday}, {month} {dth}, {yyyy}",
    "mon d 'yy": "{mon} {d} '{yy}",
}


def _ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ... ``11th``, ``12th``, ``13th``, ``21st``."""
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _day_word(n: int) -> str:
    """The day in words: ``third``, ``twenty-first``, ``thirtieth``."""
    if n <= 20:
        return _DAY_WORDS[n - 1]
    tens, ones = divmod(n, 10)
    if ones == 0:
        return {2: "twentieth", 3: "thirtieth"}[tens]
    return f"{'twenty' if tens == 2 else 'thirty'}-{_DAY_WORDS[ones - 1]}"


def format_date(date: datetime.date, style: str) -> str:
    """``date`` written the way :data:`DATE_FORMATS` names ``style``.

    Examples
    --------
    >>> d = datetime.date(2021, 3, 3)
    >>> format_date(d, "the dword of month, year"), format_date(d, "weekday dd/mm/yyyy"), format_date(d, "day mon yy")
    ('the third of March, 2021', 'Wednesday 03/03/2021', '3 Mar 21')
    """
    if style not in DATE_FORMATS:
        raise ValueError(f"format_date: unknown style {style!r}; choose one of {sorted(DATE_FORMATS)}")
    month, weekday = _MONTHS[date.month - 1], _WEEKDAYS[date.weekday()]
    return DATE_FORMATS[style].format(
        d=date.day, dd=f"{date.day:02d}", dth=_ordinal(date.day), dword=_day_word(date.day), m=date.month,
        mm=f"{date.month:02d}", month=month, mon=month[:3], yyyy=date.year, yy=f"{date.year % 100:02d}",
        weekday=weekday, wkd=weekday[:3])


def dates_task_splits(n_train: int, n_val: int, seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Training and held-out pairs ``(written date, ISO date)`` of the dates task; no date is in both splits.

    The dates are drawn without replacement from :data:`FIRST_DATE` .. :data:`LAST_DATE` (36,525 days), the held-out
    ones first, then the training ones from the days left; each is written in a format of :data:`DATE_FORMATS`
    drawn uniformly. So a held-out date is a day the model never saw, in any format.

    Parameters
    ----------
    n_train, n_val : int
        Number of pairs in each split; together at most 36,525.
    seed : int
        The same seed gives the same pairs.

    Returns
    -------
    train, val : list of (str, str)
        ``("the 3rd of March 2021", "2021-03-03")``.

    Examples
    --------
    >>> train, val = dates_task_splits(n_train=3, n_val=2, seed=1)
    >>> src, iso = train[0]
    >>> len(iso), iso[4], iso[7]
    (10, '-', '-')
    >>> {iso for _, iso in train} & {iso for _, iso in val}
    set()
    """
    n_train = require_int("dates_task_splits", "n_train", n_train, low=0)
    n_val = require_int("dates_task_splits", "n_val", n_val, low=0)
    days = (LAST_DATE - FIRST_DATE).days + 1
    if n_train + n_val > days:
        raise ValueError(f"dates_task_splits: n_train + n_val = {n_train + n_val} dates, but {FIRST_DATE} to "
                         f"{LAST_DATE} holds only {days} days")
    rng = np.random.default_rng(seed)
    offsets = rng.permutation(days)[:n_val + n_train]  # held out first: the same seed keeps them as n_train grows
    styles = list(DATE_FORMATS)
    picks = rng.integers(0, len(styles), size=len(offsets))
    pairs = []
    for offset, pick in zip(offsets, picks):
        date = FIRST_DATE + datetime.timedelta(days=int(offset))
        pairs.append((format_date(date, styles[int(pick)]), date.isoformat()))
    return pairs[n_val:], pairs[:n_val]


# ---------------------------------------------------------------------------------- pairs of a file
def parse_pairs(text: str, where: str = "parse_pairs") -> list[tuple[str, str]]:
    """The ``(source, target)`` pairs of tab-separated lines: ``source<TAB>target``, further columns ignored.

    Blank lines are skipped; each side is stripped of surrounding spaces. A third column (the attribution
    manythings.org's Tatoeba exports add) is left out.

    Parameters
    ----------
    text : str
        The lines.
    where : str
        What the errors name (the file).

    Raises
    ------
    CorpusError
        A line without a tab, or with an empty side, named by its number (from 1); no pair at all.

    Examples
    --------
    >>> parse_pairs("Go.\\tVa !\\tCC-BY 2.0\\n\\nHi.\\tSalut !\\n")
    [('Go.', 'Va !'), ('Hi.', 'Salut !')]
    >>> parse_pairs("Go.\\n", "pairs.tsv")
    Traceback (most recent call last):
    ...
    minitransformer.data.corpus.CorpusError: pairs.tsv: line 1 has no tab: 'Go.' (each line is source<TAB>target)
    """
    pairs = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise CorpusError(where, f"line {number} has no tab: {shown!r} (each line is source<TAB>target)")
        source, target = (side.strip() for side in line.split("\t")[:2])
        for side, value in (("source", source), ("target", target)):
            if not value:
                raise CorpusError(where, f"line {number} has an empty {side} (each line is source<TAB>target)")
        pairs.append((source, target))
    if not pairs:
        raise CorpusError(where, "no source<TAB>target line")
    return pairs


def _bad_line(path) -> int:
    """The line (from 1) of the first byte of ``path`` that is not UTF-8: the line breaks before it, plus one."""
    raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return raw[:e.start].count(b"\n") + 1
    return 0  # (only called for a file read_text found not UTF-8)


def read_pairs(path) -> tuple[list[tuple[str, str]], str]:
    """The pairs of a UTF-8 file of ``source<TAB>target`` lines (:func:`parse_pairs`), and the file's text.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    pairs : list of (str, str)
        In the file's order.
    text : str
        The file's text (for a digest that notices an edited file).

    Raises
    ------
    CorpusError
        No such file, a folder, not UTF-8 (naming the line), empty, or a line :func:`parse_pairs` refuses.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "fr.tsv")
    ...     with open(path, "wb") as f:
    ...         _ = f.write("Go.\\tVa !\\nThanks.\\tMerci.\\n".encode("utf-8"))
    ...     pairs, text = read_pairs(path)
    >>> pairs
    [('Go.', 'Va !'), ('Thanks.', 'Merci.')]
    """
    where = f"read_pairs: {str(path)!r}"
    try:
        text = read_text(path)
    except CorpusError as e:
        if not e.problem.startswith("not UTF-8"):
            raise CorpusError(where, e.problem) from None
        raise CorpusError(where, f"{e.problem}, on line {_bad_line(path)}; save it as UTF-8") from None
    return parse_pairs(text, where), text


def split_pairs(pairs, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0, least: int = 10,
                same=None):
    """Training, validation and test pairs: the distinct sources shuffled by ``seed``, then cut.

    All the pairs of one source go to the same split (a sentence with two translations is not trained on and then
    tested), and a pair listed twice is kept once. Sources that ``same`` maps to one string are one source: the
    translate task passes the tokenizer's reading, so that "Go." and "go." (one sentence once lower-cased) are
    not one trained on and the other tested.

    Parameters
    ----------
    pairs : list of (str, str)
        From :func:`read_pairs`.
    val_fraction, test_fraction : float
        The share of the distinct sources held out for each (at least one source each).
    seed : int
        The same seed gives the same splits.
    least : int
        The fewest distinct sources accepted: fewer leave no data to learn from once two splits are held out.
    same : callable, optional
        ``source -> str``: what makes two sources the same; the source itself by default.

    Returns
    -------
    train, val, test : list of (str, str)

    Raises
    ------
    ValueError
        Fewer than ``least`` distinct sources, or fractions that leave no training pair.

    Examples
    --------
    >>> pairs = [(f"s{i}", f"t{i}") for i in range(20)]
    >>> train, val, test = split_pairs(pairs, 0.1, 0.1, least=10)
    >>> len(train), len(val), len(test), sorted(train + val + test) == sorted(pairs)
    (16, 2, 2, True)
    """
    val_fraction = require_real("split_pairs", "val_fraction", val_fraction, 0.0, 1.0, low_open=True, high_open=True)
    test_fraction = require_real("split_pairs", "test_fraction", test_fraction, 0.0, 1.0, low_open=True,
                                 high_open=True)
    by_source: dict[str, list[tuple[str, str]]] = {}
    for pair in dict.fromkeys(pairs):  # each pair once, in order
        by_source.setdefault(pair[0] if same is None else same(pair[0]), []).append(pair)
    n = len(by_source)
    n_val, n_test = math.ceil(n * val_fraction), math.ceil(n * test_fraction)
    if n < least:
        raise ValueError(f"split_pairs: too few pairs: {n} distinct sources, where at least {least} are needed "
                         f"to hold out {val_fraction:.0%} for validation and {test_fraction:.0%} for the test and "
                         "train on the rest")
    if n - n_val - n_test < 1:
        raise ValueError(f"split_pairs: val_fraction={val_fraction} and test_fraction={test_fraction} hold out "
                         f"{n_val} and {n_test} of the {n} distinct sources (each rounded up): none is left "
                         "to train on")
    order = np.random.default_rng(seed).permutation(n)
    sources = list(by_source)

    def take(part):
        return [pair for i in part for pair in by_source[sources[int(i)]]]

    return take(order[n_val + n_test:]), take(order[:n_val]), take(order[n_val:n_val + n_test])
