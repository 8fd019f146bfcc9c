r"""The source document's worked examples (its section 4.3), recomputed with this library, and its errata.

The document states the Transformer's formulas in section 4.1 and then works three small examples
in 4.3: self-attention on ``Q = K = V = [1, 2, 3]``, the positional-encoding values of a 3-token
sequence, and a two-head version of the same. Several of the numbers and formulas stated there do
not follow from section 4.1. Each example here is *data plus code*:

* the inputs, as the document gives them;
* what the document states;
* what the formulas of section 4.1 give, computed by :mod:`minitransformer.functional`;
* for each discrepancy, candidate readings of what the document may have computed instead, each
  computed, ranked by how far it lands from the document's number.

==========================================  ==========================================================
:func:`self_attention_example`              4.3.1: the stated output ``[0.2, 0.3, 0.5]``
:func:`positional_encoding_example`         4.3.1: ``PE(1,1) = cos(1/10000)``, ... against 4.1.3
:func:`multi_head_example`                  4.3.2: two heads, the per-head "+1" encodings, the naming
:func:`errata`                              every discrepancy as an :class:`Erratum`
:func:`report`                              the examples printed, the document beside the computation
:func:`errata_markdown`                     ``docs/errata.md`` (a test checks the file equals it)
==========================================  ==========================================================

Everything is computed in float64 on the current backend, so the text is the same on every backend.
``python -m minitransformer.worked_examples`` prints the report; ``--markdown`` prints the errata page.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np  # only for the examples' seeded random matrices: the same numbers on every backend

from . import functional as F
from ._arguments import require_int
from ._console import print_what_the_console_can
from .autograd import Tensor, concat, stack
from .autograd.creation import tensor

__all__ = [
    "Reading", "Erratum", "SelfAttentionExample", "PositionalEncodingExample", "MultiHeadExample",
    "self_attention_example", "positional_encoding_example", "multi_head_example", "errata", "report",
    "errata_markdown",
]

#: Q = K = V = [1, 2, 3], "with a dimension of d = 3" (document 4.3.1)
DOCUMENT_SEQUENCE = (1.0, 2.0, 3.0)
#: "Output = softmax(QK^T / sqrt(3)) V = [0.2, 0.3, 0.5]" (document 4.3.1), given to one decimal
DOCUMENT_OUTPUT = (0.2, 0.3, 0.5)
DOCUMENT_DECIMALS = 1
#: the positions of 4.3.1's list PE_(1,1) ... PE_(3,2), and its two dimension indices
DOCUMENT_POSITIONS = (1, 2, 3)
DOCUMENT_INDICES = (1, 2)
DOCUMENT_FUNCTIONS = ("cos", "sin")  # PE_(pos,1) = cos(pos/10000), PE_(pos,2) = sin(pos/10000)
WIDE_D_MODEL = 512  # the paper's d_model, to show where pos/10000 does (almost) occur


def _floats(t: Tensor) -> list:
    """A tensor's values as (nested) Python floats, for printing and comparing."""
    return t.numpy().tolist()


def _flat(values) -> list[float]:
    return [float(v) for row in values for v in row] if values and isinstance(values[0], list) else list(values)


def _distance(values, document) -> float:
    r""":math:`\max_i |v_i - d_i|`: how far a candidate lands from the document's numbers."""
    return max(abs(v - d) for v, d in zip(_flat(values), _flat(document), strict=True))


def _tiny(x: float) -> str:
    """A difference that should be zero: its size in rounding errors varies between machines, so bound it."""
    return "below 1e-12" if x < 1e-12 else f"= {x:.1e}"


def _neighbour_change(rows: list[list[float]]) -> float:
    """The largest change of one component between neighbouring positions (rows)."""
    return max(abs(b - a) for r0, r1 in zip(rows, rows[1:]) for a, b in zip(r0, r1, strict=True))


def _fmt(values, digits: int = 3) -> str:
    """``[0.168, 0.299, 0.533]``; nested lists as ``[[...], [...]]``; -0.000 printed as 0.000."""
    if isinstance(values, list | tuple):
        return "[" + ", ".join(_fmt(v, digits) for v in values) + "]"
    return f"{round(float(values), digits) + 0.0:.{digits}f}"


# ------------------------------------------------------------------ data structures
@dataclass(frozen=True)
class Reading:
    """One way to read what the document computed: computed here, and its distance to the document's number.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"weights row 1, scalar tokens, /sqrt(3)"``.
    formula : str
        What was computed, in words.
    value : list
        The computed numbers (Python floats; nested for a table).
    distance : float
        :math:`\\max_i |\\mathrm{value}_i - \\mathrm{document}_i|`.
    rounds_to_document : bool
        Whether ``value`` rounded to the document's number of decimals is the document's number.

    Examples
    --------
    >>> r = self_attention_example().reading("V / sum(V)")
    >>> [round(v, 3) for v in r.value], round(r.distance, 4), r.rounds_to_document
    ([0.167, 0.333, 0.5], 0.0333, True)
    """

    name: str
    formula: str
    value: list
    distance: float
    rounds_to_document: bool


def _rank(document, candidates: list[tuple[str, str, list]], decimals: int | None = None) -> list[Reading]:
    """Compute each candidate's distance to ``document`` and sort, closest first (ties keep their order)."""
    readings = []
    for name, formula, value in candidates:
        rounds = decimals is not None and all(
            round(v, decimals) == round(d, decimals) for v, d in zip(_flat(value), _flat(document), strict=True)
        )
        readings.append(Reading(name, formula, value, _distance(value, document), rounds))
    return sorted(readings, key=lambda r: r.distance)


@dataclass(frozen=True)
class Erratum:
    """One place where the document disagrees with its own formulas (or the paper).

    Attributes
    ----------
    section : str
        The document's section, e.g. ``"4.3.1"``.
    claim : str
        What the document says, quoted or paraphrased.
    document_value : str
        The document's number or statement.
    computed_value : str
        What the formulas give, computed by this library.
    plausible_reading : str
        What the document most plausibly computed or meant, found by computing candidates.
    explanation : str
        One paragraph: why the two differ and what is right.

    Examples
    --------
    >>> e = errata()[0]
    >>> e.section, e.document_value
    ('4.3.1', '[0.2, 0.3, 0.5]')
    """

    section: str
    claim: str
    document_value: str
    computed_value: str
    plausible_reading: str
    explanation: str


# ------------------------------------------------------------------ 4.3.1 self-attention
def _attention(Q: Tensor, K: Tensor, V: Tensor, divisor: float) -> tuple[Tensor, Tensor]:
    r""":math:`\mathrm{softmax}(QK^\top / \mathrm{divisor})\, V` and the weights, for any divisor.

    (The library's :func:`~minitransformer.functional.scaled_dot_product_attention` always divides by
    :math:`\sqrt{d_k}`; the document divides by :math:`\sqrt 3` whatever :math:`d_k` is.)
    """
    weights = F.softmax(Q @ K.mT / divisor, axis=-1)  # (L, S)
    return weights @ V, weights


@dataclass
class SelfAttentionExample:
    r"""Document section 4.3.1: :math:`\mathrm{softmax}(QK^\top/\sqrt 3)\,V` for :math:`Q = K = V = [1, 2, 3]`.

    The document does not say whether ``[1, 2, 3]`` is one token of dimension 3 or three tokens of
    dimension 1, so both are computed, with the formula's divisor :math:`\sqrt{d_k}` and with the
    document's :math:`\sqrt 3`.

    Attributes
    ----------
    Q, K, V : Tensor
        ``(3,)`` float64, ``[1, 2, 3]`` as the document writes them.
    document_output : tuple
        ``(0.2, 0.3, 0.5)``, as stated.
    attention : dict
        ``{setup: (output, weights)}`` Tensors for the setups ``"one token, d_k = 3"``,
        ``"three scalar tokens, d_k = 1"`` (both by :func:`~minitransformer.functional.scaled_dot_product_attention`)
        and ``"three scalar tokens, divided by sqrt(3)"`` (the document's divisor).
    readings : list of Reading
        Every candidate for the stated numbers, closest first.
    divisors : tuple
        ``(lowest, highest, closest, its distance)``: the divisors :math:`t` of :math:`[1, 4]` (in steps of
        0.001) for which the first row of the weights, :math:`\mathrm{softmax}([1, 2, 3]/t)`, rounds to the
        document's numbers, and the one nearest them.

    Examples
    --------
    >>> ex = self_attention_example()
    >>> output, weights = ex.attention["three scalar tokens, d_k = 1"]
    >>> output.shape, weights.shape, weights.sum(axis=-1).numpy().round(6).tolist()
    ((3, 1), (3, 3), [1.0, 1.0, 1.0])
    """

    Q: Tensor
    K: Tensor
    V: Tensor
    document_output: tuple
    attention: dict
    readings: list
    divisors: tuple

    @property
    def closest(self) -> Reading:
        """The reading nearest the document's numbers."""
        return self.readings[0]

    def reading(self, name: str) -> Reading:
        """The reading called ``name``."""
        return next(r for r in self.readings if r.name == name)


def self_attention_example() -> SelfAttentionExample:
    r"""Recompute document 4.3.1 and rank the readings of its stated output ``[0.2, 0.3, 0.5]``.

    Readings computed (all with :math:`Q = K = V`):

    * one token of dimension 3: the output is :math:`V` itself (one key, weight 1);
    * three scalar tokens, :math:`d_k = 1` (the formula): the output, and each row of the weights;
    * three scalar tokens divided by :math:`\sqrt 3` (the document's divisor): the same;
    * the output normalised to sum to 1, and :math:`V / \sum V` (no softmax at all).

    Returns
    -------
    SelfAttentionExample
        ``readings[0]`` is the closest; see :func:`report` for the numbers.

    Examples
    --------
    >>> ex = self_attention_example()
    >>> ex.closest.name, _fmt(ex.closest.value), ex.closest.rounds_to_document
    ('weights row 1, scalar tokens, /sqrt(3)', '[0.168, 0.299, 0.533]', True)
    """
    x = list(DOCUMENT_SEQUENCE)
    one = tensor([x], dtype="float64")  # (1, 3): one token of dimension 3
    col = tensor([[v] for v in x], dtype="float64")  # (3, 1): three tokens of dimension 1
    attention = {
        "one token, d_k = 3": F.scaled_dot_product_attention(one, one, one),
        "three scalar tokens, d_k = 1": F.scaled_dot_product_attention(col, col, col),
        "three scalar tokens, divided by sqrt(3)": _attention(col, col, col, math.sqrt(3)),
    }
    candidates = [("output, one token of dimension 3", "softmax(q k^T / sqrt(3)) v = v: one key, weight 1",
                   _floats(attention["one token, d_k = 3"][0][0]))]
    for setup, tag, divisor in (("three scalar tokens, d_k = 1", "d_k = 1", "sqrt(1)"),
                                ("three scalar tokens, divided by sqrt(3)", "/sqrt(3)", "sqrt(3)")):
        out, w = attention[setup]
        output = _flat(_floats(out))
        candidates.append((f"output, scalar tokens, {tag}", f"softmax(QK^T / {divisor}) V, Q = K = V = (3, 1)",
                           output))
        candidates.append((f"output / sum, scalar tokens, {tag}", "the output above divided by its sum",
                           [o / sum(output) for o in output]))
        for i, row in enumerate(_floats(w), start=1):
            candidates.append((f"weights row {i}, scalar tokens, {tag}",
                               f"row {i} of softmax(QK^T / {divisor}): query {i}'s weights over the 3 keys", row))
    candidates.append(("V / sum(V)", "the values divided by their sum: no Q, no K, no softmax",
                       [v / sum(x) for v in x]))
    V = tensor(x, dtype="float64")
    return SelfAttentionExample(V, V, V, DOCUMENT_OUTPUT, attention,
                                _rank(list(DOCUMENT_OUTPUT), candidates, DOCUMENT_DECIMALS), _divisors(x))


def _divisors(x: list) -> tuple[float, float, float, float]:
    """Which divisors t in [1, 4] make softmax(x / t) (query 1's weights, as its score x_1 x_j = x_j) round to the
    document's output: ``(lowest, highest, closest, its distance)``, on a grid of steps of 0.001."""
    t = np.arange(1000, 4001) / 1000
    rows = _floats(F.softmax(tensor(np.outer(1.0 / t, x), dtype="float64"), axis=-1))  # (3001, 3)
    found = _rank(list(DOCUMENT_OUTPUT), [(f"{ti:.3f}", "", row) for ti, row in zip(t, rows, strict=True)],
                  DOCUMENT_DECIMALS)
    rounding = [float(r.name) for r in found if r.rounds_to_document]
    return min(rounding), max(rounding), float(found[0].name), found[0].distance


# ------------------------------------------------------------------ 4.3.1 positional encoding
@dataclass
class PositionalEncodingExample:
    r"""Document section 4.3.1's positional encodings against the formula of its section 4.1.3.

    .. math::
        PE_{(pos, 2i)} = \sin\!\left(\frac{pos}{10000^{2i/d}}\right), \qquad
        PE_{(pos, 2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d}}\right)

    The document lists, for :math:`d = 3` and positions 1, 2, 3, only two values per position:
    :math:`PE_{(pos, 1)} = \cos(pos/10000)` and :math:`PE_{(pos, 2)} = \sin(pos/10000)`.

    Attributes
    ----------
    d : int
        3, the document's dimension.
    document_table : list
        ``[[cos(pos/10000), sin(pos/10000)] for pos in 1, 2, 3]``, the document's values evaluated.
    formula_table : Tensor
        ``(4, 3)``: the formula for positions 0..3 (row ``pos``), by
        :func:`~minitransformer.functional.sinusoidal_positional_encoding`. Its ``i`` numbers the pairs of
        columns, not the columns: column ``j`` is in pair ``i = j // 2``. With the odd :math:`d = 3` the last
        pair is cut: column 2 (:math:`2i`, :math:`i = 1`) is a sine whose cosine, column 3, falls outside
        the table, so it stays unpaired.
    divisors : list of float
        :math:`10000^{2i/d}` of each column of ``formula_table``: 1, 1, :math:`10000^{2/3} \\approx 464.16`.
    readings : list of Reading
        Mappings of the document's (pos, index) onto the formula's table, and generators of the
        document's values, closest first. ``Reading.formula`` says whether the sin/cos agree.
        The closest, at distance 0.0, reads the formula with its pairs and columns counted from 1 and
        :math:`d = 2`: pair :math:`i = 1` is columns 1 (cos) and 2 (sin), both divided by
        :math:`10000^{2i/d} = 10000`.
    function_agreement : dict
        ``{"0-based": (True, True), "1-based": (False, False)}``: at each listed index, whether the
        document's sin/cos is the formula's (even index: sin, odd index: cos).
    wide_columns : dict
        For each listed index, the column of a ``WIDE_D_MODEL``-wide table closest to the
        document's values, and the distance: ``{1: (511, 3.4e-09), 2: (510, 1.1e-05)}``.

    Examples
    --------
    >>> ex = positional_encoding_example()
    >>> ex.formula_table.shape, [round(v, 2) for v in ex.divisors]
    ((4, 3), [1.0, 1.0, 464.16])
    >>> {index: column for index, (column, _) in ex.wide_columns.items()}
    {1: 511, 2: 510}
    """

    d: int
    positions: tuple
    indices: tuple
    document_table: list
    formula_table: Tensor
    divisors: list
    readings: list
    function_agreement: dict
    wide_columns: dict

    @property
    def closest(self) -> Reading:
        """The reading nearest the document's values."""
        return self.readings[0]

    def reading(self, name: str) -> Reading:
        """The reading called ``name``."""
        return next(r for r in self.readings if r.name == name)


def _formula_function(j: int) -> str:
    """Which function the formula puts in dimension ``j`` (0-based): even 2i -> sin, odd 2i+1 -> cos."""
    return "sin" if j % 2 == 0 else "cos"


def _pe_same_argument(positions, d: int, divisor: float) -> Tensor:
    r"""Every dimension with the same argument :math:`pos/\mathrm{divisor}`, sin at even and cos at odd (0-based).

    The formula with :math:`10000^{2i/d}` replaced by one constant: the generator that reproduces
    the document's list when ``divisor = 10000``.
    """
    angle = tensor([[float(p)] * d for p in positions], dtype="float64") / divisor  # (len(positions), d)
    xp = angle.backend.xp
    even = xp.arange(d) % 2 == 0
    return Tensor(xp.where(even, xp.sin(angle.data), xp.cos(angle.data)), backend=angle.backend)


def _pe_counted_from_one(positions, d: int) -> list[list[float]]:
    r"""The formula's parity (sine at even, cosine at odd index) with its pairs and columns counted from 1.

    Pair :math:`i = 1, 2, \ldots` is columns :math:`2i - 1` (cos) and :math:`2i` (sin), both divided by
    :math:`10000^{2i/d}`, so the last pair of an even :math:`d` has :math:`2i = d`, a divisor of exactly 10000.
    Row ``n`` is position ``positions[n]``, column ``k - 1`` the column counted ``k``. Python floats, computed as
    the document's values are: with ``d = 2`` they are the document's expressions, ``cos(pos/10000)`` and
    ``sin(pos/10000)``.
    """
    columns = range(1, d + 1)
    divisor = {k: 10000 ** (2 * ((k + 1) // 2) / d) for k in columns}  # pair i = ceil(k / 2)
    return [[(math.sin if k % 2 == 0 else math.cos)(p / divisor[k]) for k in columns] for p in positions]


def positional_encoding_example() -> PositionalEncodingExample:
    r"""Compare document 4.3.1's positional-encoding values and indices with the formula of its 4.1.3.

    Readings computed, each a map from the document's (pos, index) to a value:

    * the formula with :math:`d = 3`, the document's indices read 0-based or 1-based, and its
      positions taken as the values 1, 2, 3 or as 1-based labels of 0, 1, 2;
    * the formula with its pairs and columns counted from 1 and :math:`d = 2`, the two components the
      document lists: pair :math:`i = 1` is columns :math:`2i - 1 = 1` (cos) and :math:`2i = 2` (sin), and
      :math:`2i = d` makes both divisors :math:`10000^{2i/d} = 10000`;
    * the argument :math:`pos/10000` in every dimension (the formula's :math:`10000^{2i/d}`
      replaced by 10000), sin at even and cos at odd 0-based indices;
    * the lowest-frequency pair of a 512-wide table (dimensions 510 and 511).

    Returns
    -------
    PositionalEncodingExample
        ``readings[0]`` is the closest; see :func:`report` for the table.

    Examples
    --------
    >>> ex = positional_encoding_example()
    >>> ex.closest.name, ex.closest.distance
    ('formula counted from 1, d = 2, pair i = 1', 0.0)
    >>> ex.function_agreement
    {'0-based': (True, True), '1-based': (False, False)}
    """
    d, positions, indices = 3, DOCUMENT_POSITIONS, DOCUMENT_INDICES
    # the document's values, as it writes them: PE_(pos,1) = cos(pos/10000), PE_(pos,2) = sin(pos/10000)
    fns = {"cos": math.cos, "sin": math.sin}
    document = [[fns[f](p / 10000) for f in DOCUMENT_FUNCTIONS] for p in positions]
    PE = F.sinusoidal_positional_encoding(max(positions) + 1, d, dtype="float64")  # (4, 3), rows pos = 0..3
    table = _floats(PE)
    divisors = [10000 ** (2 * (j // 2) / d) for j in range(d)]

    candidates = []
    for base in (0, 1):
        cols = [k - base for k in indices]  # the document's index k is column k (0-based) or k - 1 (1-based)
        agree = ", ".join(f"{k} -> column {c} ({_formula_function(c)}, document {f}: "
                          f"{'agrees' if _formula_function(c) == f else 'swapped'})"
                          for k, c, f in zip(indices, cols, DOCUMENT_FUNCTIONS, strict=True))
        for shift, where in ((0, "positions 1, 2, 3"), (1, "positions 0, 1, 2 (1-based labels)")):
            value = [[table[p - shift][c] for c in cols] for p in positions]
            candidates.append((f"formula d = 3, {base}-based indices, {where}",
                               f"4.1.3 with d = 3; index {agree}", value))
    counted_from_one = _pe_counted_from_one(positions, len(indices))  # d = 2: indices 1, 2 are pair i = 1
    candidates.append(("formula counted from 1, d = 2, pair i = 1",
                       "pairs and columns counted from 1, d = 2 (the two listed components): pair i = 1 is columns "
                       "2i - 1 = 1 (cos) and 2i = 2 (sin), both divided by 10000^(2i/d) = 10000",
                       [[row[k - 1] for k in indices] for row in counted_from_one]))
    same = _floats(_pe_same_argument(positions, max(indices) + 1, 10000.0))
    candidates.append(("pos/10000 in every dimension",
                       "sin(pos/10000) at even, cos(pos/10000) at odd 0-based indices: 10000^(2i/d) replaced by 10000",
                       [[row[k] for k in indices] for row in same]))
    wide = _floats(F.sinusoidal_positional_encoding(max(positions) + 1, WIDE_D_MODEL, dtype="float64"))
    last = [WIDE_D_MODEL - 1, WIDE_D_MODEL - 2]  # cos then sin, the document's order
    slowest = 10000 ** ((WIDE_D_MODEL - 2) / WIDE_D_MODEL)
    candidates.append((f"lowest-frequency pair of d = {WIDE_D_MODEL}",
                       f"columns {last[0]} (cos) and {last[1]} (sin) of the formula with d = {WIDE_D_MODEL}: "
                       f"divisor 10000^({WIDE_D_MODEL - 2}/{WIDE_D_MODEL}) = {slowest:.0f}",
                       [[wide[p][c] for c in last] for p in positions]))

    function_agreement = {f"{base}-based": tuple(_formula_function(k - base) == f
                                                 for k, f in zip(indices, DOCUMENT_FUNCTIONS, strict=True))
                          for base in (0, 1)}
    wide_columns = {}
    for n, k in enumerate(indices):
        column = [row[n] for row in document]
        dist = [_distance([wide[p][c] for p in positions], column) for c in range(WIDE_D_MODEL)]
        best = min(range(WIDE_D_MODEL), key=dist.__getitem__)
        wide_columns[k] = (best, dist[best])
    return PositionalEncodingExample(d, positions, indices, document, PE, divisors, _rank(document, candidates),
                                     function_agreement, wide_columns)


# ------------------------------------------------------------------ 4.3.2 multi-head attention
@dataclass
class MultiHeadExample:
    r"""Document section 4.3.2: two heads of dimension 3, done as the paper does it (section 3.2.2).

    .. math::
        \mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \mathrm{head}_2)\, W^O, \qquad
        \mathrm{head}_i = \mathrm{softmax}\!\left(\frac{(X W_i^Q)(X W_i^K)^\top}{\sqrt{d_k}}\right) X W_i^V

    with :math:`X` = embeddings + one positional encoding of width :math:`d_{model} = 6`, added
    *before* the heads and shared by both. All ``(heads, L, S)`` and ``(heads, L, d_k)`` tensors are
    float64. Beside it, the document's own reading of 4.3.2 (``document_*``): each head adds its own
    encoding, head 2's with the "+1", to the same embeddings, and there are no projections.

    Attributes
    ----------
    X : Tensor
        ``(3, 6)`` embeddings (seeded random) + ``PE``.
    PE : Tensor
        ``(3, 6)``, the one positional encoding of the model (positions 0, 1, 2).
    W_Q, W_K, W_V, W_O : Tensor
        ``(6, 6)``; column block ``i*3:(i+1)*3`` of ``W_Q`` is :math:`W_i^Q`.
    scores : Tensor
        ``(2, 3, 3)``: :math:`Q_i K_i^\top / \sqrt{d_k}`, what "attention scores" means.
    weights : Tensor
        ``(2, 3, 3)``: :math:`\mathrm{softmax}` of the scores; rows sum to 1.
    heads : Tensor
        ``(2, 3, 3)``: :math:`\mathrm{head}_i`, what the document calls "Attention Scores^i".
    output : Tensor
        ``(3, 6)``: :math:`\mathrm{Concat}(\mathrm{head}_1, \mathrm{head}_2) W^O`.
    unprojected_heads : Tensor
        ``(2, 3, 6)``: both heads as the document writes them, with no :math:`W_i`, on the one shared
        ``X``: identical.
    document_head_pe : Tensor
        ``(2, 3, 2)``: the document's per-head encodings, head 2 with its "+1".
    head_pe_gram_difference : float
        :math:`\max |PE^1 PE^{1\top} - PE^2 PE^{2\top}|`: the "+1" leaves every dot product between
        positions unchanged.
    document_embeddings : Tensor
        ``(3, 2)``: the first two columns of the embeddings in ``X``, as wide as the document's
        encodings.
    document_scores : Tensor
        ``(2, 3, 3)``: :math:`X_h X_h^\top / \sqrt 3` with :math:`X_h` = ``document_embeddings`` +
        head :math:`h`'s encoding (``document_head_pe[h]``), no projections.
    document_heads : Tensor
        ``(2, 3, 2)``: :math:`\mathrm{softmax}(X_h X_h^\top / \sqrt 3)\, X_h`.
    document_heads_rotated_difference : float
        :math:`\max |\mathrm{head}_2(E) - \mathrm{head}_1(E M^\top) M|`, with :math:`M` the rotation
        by 1 rad that turns head 1's encoding into head 2's: head 2 is head 1 on rotated embeddings.
    head_pe_rotation : list of float
        The angle (radians) between head 1's and head 2's (cos, sin) vector at each position: all 1.

    Examples
    --------
    >>> ex = multi_head_example(seed=0)
    >>> ex.weights.sum(axis=-1).numpy().round(6).tolist()   # (heads, L): every row of weights sums to 1
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    >>> round(ex.heads_difference, 3), ex.unprojected_heads_difference   # with and without W_i
    (1.107, 0.0)
    >>> round(ex.document_heads_difference, 3), ex.document_heads_rotated_difference < 1e-12   # per-head "+1"
    (0.859, True)
    """

    seed: int
    X: Tensor
    PE: Tensor
    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    scores: Tensor
    weights: Tensor
    heads: Tensor
    output: Tensor
    unprojected_heads: Tensor
    document_head_pe: Tensor
    head_pe_gram_difference: float
    document_embeddings: Tensor
    document_scores: Tensor
    document_heads: Tensor
    document_heads_rotated_difference: float
    head_pe_rotation: list = field(default_factory=list)

    @property
    def heads_difference(self) -> float:
        r""":math:`\max |\mathrm{head}_1 - \mathrm{head}_2|` with the paper's projections."""
        return _distance(_flat(_floats(self.heads[0])), _flat(_floats(self.heads[1])))

    @property
    def unprojected_heads_difference(self) -> float:
        r""":math:`\max |\mathrm{head}_1 - \mathrm{head}_2|` without projections, as the document writes the heads."""
        return _distance(_flat(_floats(self.unprojected_heads[0])), _flat(_floats(self.unprojected_heads[1])))

    @property
    def document_scores_difference(self) -> float:
        r""":math:`\max |\mathrm{scores}^1 - \mathrm{scores}^2|` with the document's per-head encodings."""
        return _distance(_flat(_floats(self.document_scores[0])), _flat(_floats(self.document_scores[1])))

    @property
    def document_heads_difference(self) -> float:
        r""":math:`\max |\mathrm{head}_1 - \mathrm{head}_2|` with the document's per-head encodings."""
        return _distance(_flat(_floats(self.document_heads[0])), _flat(_floats(self.document_heads[1])))


def _document_head_pe(head: int) -> list[list[float]]:
    """Document 4.3.2: head 1 as 4.3.1, head 2 with every angle + 1: [[cos(pos/10000 + h-1), sin(...)], ...]."""
    fns = {"cos": math.cos, "sin": math.sin}
    return [[fns[f](p / 10000 + (head - 1)) for f in DOCUMENT_FUNCTIONS] for p in DOCUMENT_POSITIONS]


def multi_head_example(seed: int = 0, heads: int = 2, d_k: int = 3) -> MultiHeadExample:
    r"""Two-head attention on three tokens, as the paper defines it, beside the document's 4.3.2.

    Parameters
    ----------
    seed : int
        Seeds the embeddings and the projections (a private NumPy generator: the same numbers on
        every backend, and the library's global generator is left alone).
    heads, d_k : int
        The document's two heads "each with a dimension of d = 3": :math:`d_{model} = 6`.

    Returns
    -------
    MultiHeadExample
        Every intermediate tensor, float64; shapes in :class:`MultiHeadExample`.

    Examples
    --------
    >>> ex = multi_head_example(seed=0)
    >>> ex.weights.shape, ex.output.shape, ex.unprojected_heads_difference
    ((2, 3, 3), (3, 6), 0.0)
    """
    op = "multi_head_example"
    seed = require_int(op, "seed", seed, low=0)
    heads, d_k = require_int(op, "heads", heads, low=1), require_int(op, "d_k", d_k, low=1)
    L, d_model = len(DOCUMENT_SEQUENCE), heads * d_k
    if d_model < 2:  # the document's encodings are 2 wide, added to the embeddings' first 2 columns below
        raise ValueError(f"{op}: heads * d_k = {d_model}; the document's reading needs d_model >= 2")
    rng = np.random.default_rng(seed)
    embeddings = tensor(rng.standard_normal((L, d_model)))  # float64 (L, d_model)
    W_Q, W_K, W_V, W_O = (tensor(rng.standard_normal((d_model, d_model)) / math.sqrt(d_model)) for _ in range(4))
    PE = F.sinusoidal_positional_encoding(L, d_model, dtype="float64")  # one PE for the whole model
    X = embeddings + PE  # (L, d_model): position enters here, before any head

    per_head = []
    for i in range(1, heads + 1):  # head_1 .. head_h, as the paper numbers them
        block = slice((i - 1) * d_k, i * d_k)  # head i's columns: W_i^Q = W_Q[:, block]
        Q, K, V = X @ W_Q[:, block], X @ W_K[:, block], X @ W_V[:, block]  # (L, d_k) each
        head, weights = F.scaled_dot_product_attention(Q, K, V)  # (L, d_k), (L, L)
        per_head.append((Q @ K.mT / math.sqrt(d_k), weights, head))
    scores, weights, head_outputs = (stack([h[n] for h in per_head], axis=0) for n in range(3))  # (heads, L, ...)
    output = concat([h[2] for h in per_head], axis=-1) @ W_O  # (L, heads * d_k) @ (heads * d_k, d_model)

    # the document's heads: "softmax(QK^T / sqrt(3)) V" twice, the same Q = K = V (the one shared X), no W_i
    unprojected = stack([_attention(X, X, X, math.sqrt(d_k))[0] for _ in range(heads)], axis=0)

    doc_pe = tensor([_document_head_pe(h) for h in (1, 2)], dtype="float64")  # (2, L, 2)
    gram = doc_pe @ doc_pe.mT  # (2, L, L): PE_p . PE_q within each head
    gram_difference = _distance(_flat(_floats(gram[0])), _flat(_floats(gram[1])))
    cosines = (doc_pe[0] * doc_pe[1]).sum(axis=-1)  # unit vectors: cos of the angle between them
    rotation = [math.acos(max(-1.0, min(1.0, c))) for c in _floats(cosines)]

    # the document's reading: each head adds its own encoding to the same embeddings, no W_i
    E = embeddings[:, :2]  # (L, 2): as wide as the document's encodings
    doc_X = [E + doc_pe[h] for h in range(doc_pe.shape[0])]
    doc_scores = stack([Xh @ Xh.mT / math.sqrt(d_k) for Xh in doc_X], axis=0)  # (heads, L, L)
    doc_heads = stack([_attention(Xh, Xh, Xh, math.sqrt(d_k))[0] for Xh in doc_X], axis=0)  # (heads, L, 2)
    # (cos a, sin a) M = (cos(a+1), sin(a+1)), so E + PE^1 M = (E M^T + PE^1) M: head 2 is head 1 on E M^T
    M = tensor([[math.cos(1.0), math.sin(1.0)], [-math.sin(1.0), math.cos(1.0)]], dtype="float64")
    turned = E @ M.mT + doc_pe[0]
    rotated = _attention(turned, turned, turned, math.sqrt(d_k))[0] @ M
    rotated_difference = _distance(_flat(_floats(doc_heads[1])), _flat(_floats(rotated)))
    return MultiHeadExample(seed, X, PE, W_Q, W_K, W_V, W_O, scores, weights, head_outputs, output, unprojected,
                            doc_pe, gram_difference, E, doc_scores, doc_heads, rotated_difference, rotation)


def _parameter_counts(d_model: int, max_len: int) -> tuple[bool, int, int]:
    """(requires_grad of the sinusoidal table, parameters of the fixed layer, of the learned one)."""
    from . import nn  # the layer above functional; imported here so the examples load without it

    fixed = nn.SinusoidalPositionalEncoding(d_model, max_len)
    learned = nn.LearnedPositionalEmbedding(max_len, d_model)
    PE = F.sinusoidal_positional_encoding(max_len, d_model)
    count = lambda m: sum(p.size for p in m.parameters())  # noqa: E731
    return PE.requires_grad, count(fixed), count(learned)


# ------------------------------------------------------------------ the errata
def errata(seed: int = 0) -> list[Erratum]:
    """Every discrepancy between the document's section 4 and its formulas (or the paper), with the numbers.

    Parameters
    ----------
    seed : int
        For the multi-head example's random projections (one number in the last erratum).

    Returns
    -------
    list of Erratum
        Numbered as in ``docs/errata.md``: the document's order, then later finds appended (so that a
        number, and a link to it, stays); every number in them is computed by this module.

    Examples
    --------
    >>> [e.section for e in errata()]
    ['4.3.1', '4.3.1, 4.3.2 (head 1)', '4.3.1, 4.3.2 (head 1)', '4.3.2', '4.2.3', '4.3.1, 4.3.2 (and 4.1.1 in Chinese)',
     '4.1.2, 4.3.2', '4.3.1', '4.1.3', '4.2.2']
    """
    sa, pe, mh = self_attention_example(), positional_encoding_example(), multi_head_example(seed)
    out = []

    # 1. the stated output
    one, scal3 = sa.attention["one token, d_k = 3"][0], sa.attention["three scalar tokens, divided by sqrt(3)"]
    scal1 = sa.attention["three scalar tokens, d_k = 1"]
    best, runner = sa.readings[0], sa.readings[1]
    formula_row = sa.reading("weights row 1, scalar tokens, d_k = 1")
    out.append(Erratum(
        "4.3.1",
        "Output = softmax(QK^T / sqrt(3)) V = [0.2, 0.3, 0.5], for Q = K = V = [1.0, 2.0, 3.0], d = 3",
        _fmt(list(sa.document_output), DOCUMENT_DECIMALS),
        f"one token of dimension 3: {_fmt(_flat(_floats(one)))} (= V: one key, weight 1); "
        f"three scalar tokens (d_k = 1): {_fmt(_flat(_floats(scal1[0])))}; "
        f"three scalar tokens divided by sqrt(3): {_fmt(_flat(_floats(scal3[0])))}",
        f"{best.name}: {_fmt(best.value)}, which rounds to {_fmt(list(sa.document_output), DOCUMENT_DECIMALS)} "
        f"(max difference {best.distance:.4f}). Next: {runner.name} = {_fmt(runner.value)} "
        f"(max difference {runner.distance:.4f}); of {len(sa.readings)} readings computed, "
        f"{sum(r.rounds_to_document for r in sa.readings)} round to the document's numbers.",
        "An attention output is a weighted average of the value vectors, so each of its components lies between "
        f"the smallest and the largest value, here between {min(DOCUMENT_SEQUENCE):g} and "
        f"{max(DOCUMENT_SEQUENCE):g}: [0.2, 0.3, 0.5] cannot be an output. It sums to 1, as a row of attention "
        "weights does. Read as one token of dimension 3, the output is V itself; read as three tokens of "
        "dimension 1, it is three numbers between 1 and 3. The closest of the computed readings is the weights "
        "of the first query over the three keys, with the document's divisor sqrt(3), which is softmax([1, 2, "
        "3] / sqrt(3)). The numbers cannot say which of two stories produced it: [1, 2, 3] as three scalar "
        "tokens divided by the square root of the sequence length, or the components of one 3-dimensional "
        "token put through a softmax, divided by sqrt(d) with the document's own d = 3. Read as three scalar "
        "tokens, the formula divides by sqrt(d_k) = sqrt(1), and its first row of weights is "
        f"{_fmt(formula_row.value)} (max difference {formula_row.distance:.4f}; its output is "
        f"{_fmt(_flat(_floats(scal1[0])))}). V / sum(V) lands almost as close and also rounds to the "
        "document's numbers, but it uses neither Q, K nor the softmax the document writes, so it is the less "
        "plausible reading. The numbers do not single out sqrt(3), though: softmax([1, 2, 3] / t) rounds to them "
        f"for every divisor t from {sa.divisors[0]:.2f} to {sa.divisors[1]:.2f}, and comes closest at "
        f"t = {sa.divisors[2]:.2f} (max difference {sa.divisors[3]:.4f}). sqrt(3) = {math.sqrt(3):.2f} is the "
        "plausible divisor because the document writes it, not because it fits best.",
    ))

    # 2. the positional-encoding arguments
    doc_rows = "; ".join(f"pos {p}: {_fmt(row, 4)}" for p, row in zip(pe.positions, pe.document_table, strict=True))
    formula_rows = "; ".join(f"pos {p}: {_fmt(_floats(pe.formula_table[p]), 4)}" for p in pe.positions)
    zero_based = pe.reading("formula d = 3, 0-based indices, positions 1, 2, 3")
    one_based = pe.reading("formula d = 3, 1-based indices, positions 1, 2, 3")
    wide = pe.reading(f"lowest-frequency pair of d = {WIDE_D_MODEL}")
    same = pe.reading("pos/10000 in every dimension")
    exact = "0.0" if pe.closest.distance == 0 else _tiny(pe.closest.distance)
    listed = _fmt([pe.divisors[k] for k in pe.indices], 2)  # columns 1 and 2 of the d = 3 table, read 0-based
    out.append(Erratum(
        "4.3.1, 4.3.2 (head 1)",
        "PE_(pos,1) = cos(pos/10000), PE_(pos,2) = sin(pos/10000), pos = 1, 2, 3 (d = 3)",
        f"[cos(pos/10000), sin(pos/10000)]: {doc_rows}",
        f"formula 4.1.3 with d = 3, [PE_(pos,0), PE_(pos,1), PE_(pos,2)]: {formula_rows}; "
        f"divisors 10000^(2i/d) of the 3 columns: {_fmt(pe.divisors, 2)}",
        f"{pe.closest.name}: pairs and columns counted from 1, and d = 2, the two components listed. Pair "
        "i = 1 is columns 2i - 1 = 1 (cos) and 2i = 2 (sin), 2i = d makes both divide by 10000^(2i/d) = 10000, "
        f"and every listed value is reproduced (max difference {exact}). Replacing "
        f"10000^(2i/d) by 10000 in every dimension gives the same numbers ({same.name}, max difference "
        f"{_tiny(same.distance)}), but changes the formula rather than reading it. The formula with d = 3 is "
        f"{one_based.distance:.4f} (indices read 1-based) to {zero_based.distance:.4f} (0-based) away. Counted "
        "from 0, such arguments occur only in the slowest pair of a wide table: "
        f"with d = {WIDE_D_MODEL}, columns {pe.wide_columns[1][0]} and {pe.wide_columns[2][0]} are the closest, "
        f"{wide.distance:.1e} away.",
        "The formula divides pos by 10000^(2i/d), a different divisor for each pair of dimensions: 1 for the "
        f"first pair, so PE_(pos,0) = sin(pos) and PE_(pos,1) = cos(pos), and 10000^(2/3) = {pe.divisors[2]:.2f} "
        "for the third column when d = 3. The document divides both listed components by 10000, the exponent "
        "2i/d equal to 1, which needs 2i = d. No column of a 3-wide table has it, nor any column of the formula "
        "counted from 0, whose largest 2i is d - 2 (d - 1 for an odd d; 10000 is only approached by the last "
        "pair of a wide model); read 0-based, the document's indices 1 and 2 are in two pairs, with divisors "
        f"{listed}. "
        "Counted from 1 (i = 1, ..., d/2), the last pair has 2i = d exactly, and with d = 2, the two components "
        "the document lists, that pair is its indices 1 and 2: a reading that fits every listed number, though "
        "not the example's d = 3 (erratum 3). Whatever produced them, the document's vectors barely change from "
        f"position to position (the largest change between neighbours: {_neighbour_change(pe.document_table):.4f}"
        "), where the formula's first pair turns by a whole radian per position (largest change "
        f"{_neighbour_change(_floats(pe.formula_table[1:, :2])):.4f}). Head 2's encodings in 4.3.2 have the same "
        "arguments pos/10000, each plus 1 (erratum 4), and the same indices 1 and 2: all of this holds for them "
        "too.",
    ))

    # 3. the positional-encoding indices, positions and the missing component
    agree0, agree1 = pe.function_agreement["0-based"], pe.function_agreement["1-based"]
    out.append(Erratum(
        "4.3.1, 4.3.2 (head 1)",
        "PE_(pos,1) = cos(...), PE_(pos,2) = sin(...): two components per position, positions 1, 2, 3, for d = 3",
        f"indices {list(pe.indices)} as {list(DOCUMENT_FUNCTIONS)}; {len(pe.indices)} components; "
        f"positions {list(pe.positions)}",
        f"d = {pe.d} components, indices 0..{pe.d - 1} as "
        f"{[_formula_function(j) for j in range(pe.d)]}; positions 0..{len(pe.positions) - 1} for a "
        f"{len(pe.positions)}-token sequence (the paper's code and this library count from 0)",
        f"indices read 0-based: sin/cos agree at {sum(agree0)} of {len(agree0)} listed indices "
        f"(1 = 2i+1 with i = 0 is a cosine, 2 = 2i with i = 1 a sine), but in two pairs, divisors {listed} where "
        f"the document has one argument pos/10000; read 1-based: at {sum(agree1)} of {len(agree1)} "
        "(both swapped). Pairs and columns counted from 1 with d = 2 (erratum 2) keep the labels' parity (odd: "
        "cos, even: sin) and put both in pair i = 1: of the readings computed that keep the formula's divisor "
        "10000^(2i/d), the only one that fits the functions and the arguments both.",
        "With 0-based indices, as the formula's 2i and 2i+1 are, a 3-wide encoding has components 0 (sin), 1 "
        "(cos) and 2 (sin). The document's indices 1 and 2 carry the formula's functions for those 0-based "
        "indices, so the sin/cos parity alone fits a 0-based reading; but then index 1 is pair 0's cosine and "
        "index 2 pair 1's sine, with different divisors, where the document gives both the argument pos/10000. "
        "That shared argument fits only one pair with 2i = d: d = 2 and i = 1, pairs and columns counted from "
        "1, the pair's cosine at 2i - 1 = 1 and its sine at 2i = 2 (the formula's own pair puts its sine first). "
        "Then the encoding is 2 wide, not the example's d = 3; read 0-based, component 0 is missing; read "
        "1-based (index k as the formula's column k - 1), the third is missing and sin/cos are swapped: every "
        "way, the listed 2-entry vectors cannot be added to the 3-dimensional embeddings the text says they are "
        "added to. Positions counted from 1 are a convention (the formula accepts any pos), but the paper's "
        "code, PyTorch's tutorials and this library give the first token pos = 0, whose encoding is "
        f"{_fmt(_floats(pe.formula_table[0]), 0)}: with the document's count every value shifts by one position.",
    ))

    # 4. the per-head positional encodings
    head2 = _floats(mh.document_head_pe[1])
    out.append(Erratum(
        "4.3.2",
        "Each head gets its own positional encoding: PE^2_(pos,1) = cos(pos/10000 + 1), "
        "PE^2_(pos,2) = sin(pos/10000 + 1)",
        f"head 2: {_fmt(head2, 4)}; head 1: the values of 4.3.1",
        f"one positional encoding of width d_model = {mh.PE.shape[1]}, added to the embeddings before the "
        f"projections W_i^Q, W_i^K, W_i^V: {_fmt(_floats(mh.PE), 4)}; no head has an encoding of its own",
        "a constant phase of 1 radian for head 2: it rotates every (cos, sin) pair by the same angle "
        f"(computed: {_fmt(mh.head_pe_rotation, 4)} rad at positions {list(DOCUMENT_POSITIONS)}), which equals "
        "moving every position by 10000, and leaves every dot product between two positions' encodings unchanged: "
        f"max |PE^1 PE^1^T - PE^2 PE^2^T| {_tiny(mh.head_pe_gram_difference)}.",
        "Neither the document's formulas (4.1.2, 4.1.3) nor the paper have a per-head offset: the paper adds one "
        "positional encoding to the embeddings at the bottom of the encoder and of the decoder (its section "
        "3.5), and every head sees it through its own projections of the same X + PE. The '+1' is unfounded, "
        "and it gives head 2 nothing head 1 lacks, but it does change the scores. The document adds each head's "
        "encoding to the same embeddings E, and (E + PE)(E + PE)^T holds, besides E E^T and PE PE^T, the "
        "cross terms E PE^T and PE E^T, which the rotation changes: with the example's embeddings (seed "
        f"{seed}, first 2 columns), no projections and the divisor sqrt(3), max |scores^1 - scores^2| = "
        f"{mh.document_scores_difference:.3f} and the heads' outputs differ by up to "
        f"{mh.document_heads_difference:.3f}. What does not change is what a head can do: with M the rotation "
        "by 1 rad, E + PE^1 M = (E M^T + PE^1) M, so head 2 is head 1 applied to the embeddings turned by -1 rad, "
        f"its output turned back (max difference {_tiny(mh.document_heads_rotated_difference)}). "
        "Taken one at a time, with learned embeddings, neither head can represent anything the other cannot.",
    ))

    # 5. learned or fixed
    requires_grad, fixed, learned = _parameter_counts(mh.PE.shape[1], len(DOCUMENT_SEQUENCE))
    d_model, L = mh.PE.shape[1], len(DOCUMENT_SEQUENCE)
    out.append(Erratum(
        "4.2.3",
        "Positional encoding vectors are learned during the training process.",
        "learned during training",
        f"the sinusoids of 4.1.3 are fixed: sinusoidal_positional_encoding(...).requires_grad = {requires_grad}; "
        f"nn.SinusoidalPositionalEncoding(d_model={d_model}, max_len={L}) has {fixed} parameters, "
        f"nn.LearnedPositionalEmbedding(max_len={L}, d_model={d_model}) has {learned}",
        "a learned positional embedding (BERT, GPT-2): a trainable table with one free row per position, a "
        "different choice than the formula the document gives.",
        "The formula of 4.1.3 computes every value from pos and the dimension index: nothing in it is trained, "
        "and any position, however far, has an encoding. A learned positional embedding is a parameter table "
        "of max_len rows, trained with the rest of the model, with no row beyond max_len. Both are common; the "
        "paper tried both, found nearly identical results (its Table 3, row E) and kept the sinusoids because "
        "they may let the model extrapolate to sequences longer than those seen in training. The document "
        "gives the formula of one and describes the other.",
    ))

    # 6. scores, weights, output
    s0, w0, h0 = (_floats(t[0][0]) for t in (mh.scores, mh.weights, mh.heads))
    out.append(Erratum(
        "4.3.1, 4.3.2 (and 4.1.1 in Chinese)",
        "Attention Scores = softmax(QK^T / sqrt(3)) V; 'Finally, we multiply these scores with the value vector'",
        "softmax(QK^T / sqrt(d_k)) V is called the attention scores, and then multiplied by V again",
        f"multi-head example (seed {seed}), head 1, query 1: scores QK^T / sqrt(d_k) = {_fmt(s0)} (any real "
        f"numbers); weights softmax(scores) = {_fmt(w0)} (sum {sum(w0):.3f}); output = weights · V = {_fmt(h0)} "
        f"(a vector of d_v = {len(h0)} features)",
        "'Attention Scores' in the formulas of 4.3.1 and 4.3.2 is the attention output (head_i), and 'these "
        "scores' that are then multiplied with the values are the weights softmax(QK^T / sqrt(d_k)).",
        "Three different things: the scores QK^T / sqrt(d_k), one real number per (query, key) pair; the "
        "weights, their softmax over the keys, which are non-negative and sum to 1 for each query (these are "
        "what an attention map shows); and the output, the weights times V, one d_v-vector per query. The "
        "document's formula already includes V, so multiplying 'these scores with the value vector' would "
        "apply V twice; its Chinese 4.1.1 likewise calls the product with the values the 'attention scores' "
        "(注意力得分).",
    ))

    # 7. heads without projections
    out.append(Erratum(
        "4.1.2, 4.3.2",
        "Attention Scores^1 = softmax(QK^T / sqrt(3)) V, Attention Scores^2 = softmax(QK^T / sqrt(3)) V; "
        "head_i 'represents the result of the $i$th head'",
        "both heads are the same expression of the same Q, K, V",
        f"without projections, both heads on one X = E + PE (one encoding, as in the paper and this library's "
        f"example): max |head_1 - head_2| {_tiny(mh.unprojected_heads_difference)} (identical heads); without "
        f"projections but with the document's per-head encodings (erratum 4; the embeddings' first 2 columns): "
        f"{mh.document_heads_difference:.3f}, from the '+1' alone; with the paper's "
        f"head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V) (random W, seed {seed}): {mh.heads_difference:.3f}",
        "the per-head projections W_i^Q, W_i^K, W_i^V of the paper's equation for MultiHead (section 3.2.2) "
        "were left out, in 4.1.2 as in 4.3.2.",
        "Without its own projections every head computes the same function of the same input, so the "
        "concatenation holds h copies of one head and W^O gets nothing a single head would not give. The paper "
        "defines head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V) with d_k = d_v = d_model / h: each head looks "
        "at the sequence through its own learned subspace, which is what lets heads weigh the same positions "
        "differently, each still weighing all of them (erratum 10; nn.MultiHeadAttention keeps the h blocks side "
        "by side in one matrix). Read with the "
        "document's per-head encodings, its two heads do differ, but only through the '+1', which turns the "
        "same embeddings against the position (erratum 4): no head gets a subspace of its own.",
    ))

    # 8. Q, K, V of 4.3.1: the bare input, no encoding, no projections
    x = tensor(list(DOCUMENT_SEQUENCE), dtype="float64")
    L, d_k = len(DOCUMENT_SEQUENCE), mh.heads.shape[-1]
    one_token = x + F.sinusoidal_positional_encoding(1, L, dtype="float64")[0]  # (3,): pos 0, d = 3
    scalar_tokens = x + F.sinusoidal_positional_encoding(L, 1, dtype="float64")[:, 0]  # (3,): pos 0..2, d = 1
    Q1, K1, V1 = (mh.X @ W[:, :d_k] for W in (mh.W_Q, mh.W_K, mh.W_V))  # head 1's (L, d_k) each
    S1 = _floats(mh.scores[0])
    asymmetry = max(abs(S1[i][j] - S1[j][i]) for i in range(L) for j in range(L))
    out.append(Erratum(
        "4.3.1",
        "'By adding these positional encoding vectors to the embedding vectors, we can provide positional "
        "information [...] the query vector, key vector, and value vector are all generated by the embedding "
        "layer, for example: Q = [1.0, 2.0, 3.0], K = [1.0, 2.0, 3.0], V = [1.0, 2.0, 3.0]'",
        "Q = K = V = [1.0, 2.0, 3.0]: the input sequence itself",
        f"[1, 2, 3] with the encoding of 4.1.3 added, positions from 0: as one token of dimension 3, "
        f"{_fmt(_floats(one_token))}; as three tokens of dimension 1 (d = 1: PE = sin(pos)), "
        f"{_fmt(_floats(scalar_tokens))}. The paper's Q, K, V are X W^Q, X W^K, X W^V with X = embedding + PE: "
        f"in the multi-head example (seed {seed}), head 1, max |Q - K| = {_distance(_floats(Q1), _floats(K1)):.3f}, "
        f"max |Q - V| = {_distance(_floats(Q1), _floats(V1)):.3f}, and its scores are not symmetric: "
        f"max |S - S^T| = {asymmetry:.3f}",
        "the bare input sequence used as Q, K and V: without the positional encoding the text has just added, "
        "and without the projections W^Q, W^K, W^V of the paper's attention (its section 3.2.2), which the "
        "document also leaves out in 4.1.2 and 4.3.2 (erratum 7).",
        "The text adds positional encodings to the embeddings, says the query, key and value vectors are "
        "generated by the embedding layer, and then uses the bare sequence [1, 2, 3] for all three: the "
        "encoding it has just described is in none of them, so nothing in the example depends on where a token "
        "stands. In the paper the embedding layer gives X = embedding + PE, and Q, K and V are three learned "
        "linear projections of it, X W^Q, X W^K and X W^V: a token's query, its key and its value are different "
        "vectors. Q = K = V = X is the special case W^Q = W^K = W^V = I; with Q = K the score table is "
        "symmetric (token i scores token j as j scores i), which learned W^Q and W^K do not force.",
    ))

    # 9. i numbers the pairs of columns, not the columns (4.1.3's wording, the paper's too)
    d, row = pe.d, _floats(pe.formula_table[1])  # pos = 1 of the d = 3 table
    pairs = [j // 2 for j in range(d)]
    as_functions = ", ".join(f"{_formula_function(j)}(1/{pe.divisors[j]:.2f})" for j in range(d))
    per_column = [10000 ** (2 * j / d) for j in range(d)]  # i read as the dimension index j
    out.append(Erratum(
        "4.1.3",
        "PE_(pos,2i) = sin(pos/10000^(2i/d)), PE_(pos,2i+1) = cos(pos/10000^(2i/d)), 'where pos is the position "
        "index, i is the dimension index, and d is the total dimension'",
        "i is the dimension index",
        f"d = {d}, the library's table at pos = 1: {_fmt(row, 4)} = [{as_functions}]: columns j = "
        f"{', '.join(map(str, range(d)))} are 2i, 2i+1, 2i with i = j // 2 = {pairs}, {len(set(pairs))} "
        f"frequencies for {d} columns, column {d - 1} a sine without its cosine (column 2i+1 = {d} falls outside "
        f"the table); i read as the dimension index j = 0..{d - 1}: divisors 10000^(2j/d) = {_fmt(per_column, 2)} "
        f"and columns 2j, 2j+1 up to {2 * d - 1}, a table twice as wide",
        "i numbers the pairs of columns (the frequencies), i = 0, 1, ..., ceil(d/2) - 1; the dimension index is "
        "2i (a sine) or 2i + 1 (a cosine), the two columns of a pair sharing the divisor 10000^(2i/d). The "
        "paper's section 3.5 words it the same way ('i is the dimension').",
        "The formula writes the dimension index as 2i or 2i + 1, so i cannot be it: i counts the pairs, and "
        "columns 2i (sine) and 2i + 1 (cosine) are one frequency, 1/10000^(2i/d), which is what makes a shift "
        "in position a rotation of each pair (notebook 04, section 5). Read as the dimension index, i would run "
        "over all d columns, the formula would address 2d of them, and each would get a divisor of its own, up "
        f"to 10000^(2(d-1)/d) ({per_column[-1]:.2f} for d = {d}), past the 10000 that bounds the paper's "
        "wavelengths ('from 2π to 10000 · 2π'). For an odd d the last pair is cut: with d = 3, column 2 (2i, "
        "i = 1) is a sine whose cosine, column 3, falls outside the table. This library keeps that sine "
        "unpaired (sinusoidal_positional_encoding says so), as in the d = 3 tables of errata 2 and 3, so a "
        f"{d}-wide table has {len(set(pairs))} frequencies.",
    ))

    # 10. every head weighs every position; heads differ only by their projections
    weights = _flat(_floats(mh.weights.reshape(-1, mh.weights.shape[-1])))
    row_sums = _flat(_floats(mh.weights.sum(axis=-1)))
    weights_difference = _distance(_flat(_floats(mh.weights[0])), _flat(_floats(mh.weights[1])))
    out.append(Erratum(
        "4.2.2",
        "'Multi-head attention enhances the model's capability by running multiple independent self-attention "
        "mechanisms in parallel. Each head focuses on different parts of the input sequence, providing a more "
        "comprehensive view of the input.'",
        "each head focuses on different parts of the input sequence",
        f"multi-head example (seed {seed}), {mh.weights.shape[0]} heads, {mh.weights.shape[-1]} positions: every "
        f"row of every head's weights softmax(QK^T / sqrt(d_k)) gives all {mh.weights.shape[-1]} positions a "
        f"positive weight (smallest {min(weights):.3f}, largest {max(weights):.3f}) and sums to 1 (max |sum - 1| "
        f"{_tiny(max(abs(r - 1) for r in row_sums))}); the two heads' weights differ by up to "
        f"{weights_difference:.3f}, through their projections W_i^Q, W_i^K; without projections, as the "
        f"document's 4.3.2 writes the heads: max |head_1 - head_2| {_tiny(mh.unprojected_heads_difference)}",
        "heads differ only in their learned projections W_i^Q, W_i^K, W_i^V: each compares every position with "
        "every other in a subspace of its own, and after training a head may put most of its weight on a few "
        "positions (the paper's attention visualisations, its figures 3 to 5, show heads that do): a result of "
        "training, not a part of the sequence given to a head.",
        "A head's weights are a softmax over all the keys: every weight is positive and each query's weights sum "
        "to 1, so every head covers every position, and nothing in the formula gives a head a part of the "
        "sequence. What differs between heads is W_i^Q, W_i^K and W_i^V (the paper's section 3.2.2): with "
        "different projections the same positions get different weights, and trained heads can come to "
        "specialise, but that is learned, not built in, and a head may as well spread its weight evenly. What takes "
        "positions away is a mask (padding, causal), and in the paper as here it takes them from every head "
        "alike. The document's "
        "own example has no projections: its two heads in 4.3.2 are the same expression of the same Q, K, V, "
        "identical on one input (erratum 7), and with its per-head encodings they differ only through the "
        "'+1' (erratum 4), not by looking at different parts.",
    ))
    return out


# ------------------------------------------------------------------ text
def _table(rows: list[tuple[str, str]], width: int = 44) -> str:
    return "\n".join(f"  {a:<{width}} {b}" for a, b in rows)


def report(seed: int = 0, errata_in_full: bool = True) -> str:
    """Each worked example with the document's values and the computed ones side by side, then the errata.

    Parameters
    ----------
    seed : int
        For the multi-head example's random embeddings and projections.
    errata_in_full : bool
        Each erratum with the document's value, the computed one and the plausible reading; False: one line each
        (the demo's form), with where to read them in full.

    Returns
    -------
    str
        The text that ``python -m minitransformer.worked_examples`` prints.

    Examples
    --------
    >>> print(report().splitlines()[0])
    Document section 4.3.1: self-attention, Q = K = V = [1, 2, 3]
    """
    sa, pe, mh = self_attention_example(), positional_encoding_example(), multi_head_example(seed)
    lines = ["Document section 4.3.1: self-attention, Q = K = V = [1, 2, 3]",
             f"  document: Output = {_fmt(list(sa.document_output), DOCUMENT_DECIMALS)}",
             "  computed (formula 4.1.1, this library):"]
    lines += [f"    {setup:<42} output {_fmt(_flat(_floats(o)))}" for setup, (o, _) in sa.attention.items()]
    lines.append("  readings of [0.2, 0.3, 0.5], closest first (max |difference|, rounds to the document?):")
    lines += [f"    {r.distance:7.4f}  {'yes' if r.rounds_to_document else 'no ':3}  {r.name:<42} {_fmt(r.value)}"
              for r in sa.readings]

    lines += ["", "Document section 4.3.1: positional encodings, d = 3, positions 1, 2, 3",
              f"  {'pos':>4}  {'document [cos, sin](pos/10000)':<34} formula 4.1.3 [PE_0, PE_1, PE_2] (sin, cos, sin)"]
    lines += [f"  {p:>4}  {_fmt(row, 4):<34} {_fmt(_floats(pe.formula_table[p]), 4)}"
              for p, row in zip(pe.positions, pe.document_table, strict=True)]
    lines.append(f"  divisors 10000^(2i/d): {_fmt(pe.divisors, 2)}; the document divides by 10000 everywhere")
    agreeing = {base: f"{sum(agree)} of {len(agree)}" for base, agree in pe.function_agreement.items()}
    lines.append("  the listed functions (cos, sin) are the formula's at those indices (sin at even, cos at odd): "
                 + ", ".join(f"{n} read {base}" for base, n in agreeing.items()))
    lines.append("  readings, closest first (max |difference|):")
    lines += [f"    {r.distance:9.2e}  {r.name}" for r in pe.readings]

    lines += ["", f"Document section 4.3.2: two heads of d_k = 3 (seed {seed}), as the paper computes them",
              "  head 2's positional encoding, document [cos, sin](pos/10000 + 1):  "
              f"{_fmt(_floats(mh.document_head_pe[1]), 4)}",
              "  the paper's one PE (3, 6), added to the embeddings before the heads, rows pos = 0, 1, 2:",
              *(f"    {_fmt(row, 4)}" for row in _floats(mh.PE)),
              f"  '+1' rotates each pair by {_fmt(mh.head_pe_rotation, 4)} rad; "
              f"largest change of a dot product between positions {_tiny(mh.head_pe_gram_difference)}",
              "  the document's reading (each head's PE added to the same embeddings, no W_i): "
              f"max |scores^1 - scores^2| {mh.document_scores_difference:.3f}, "
              f"max |head_1 - head_2| {mh.document_heads_difference:.3f};",
              "    head 2 = head 1 on the embeddings turned by -1 rad, output turned back (notebook 04, section 6): "
              "max difference "
              f"{_tiny(mh.document_heads_rotated_difference).lstrip('= ')}"]
    for i in range(mh.weights.shape[0]):
        lines.append(f"  head {i + 1} weights softmax(QK^T/sqrt(3)): {_fmt(_floats(mh.weights[i]))}")
    lines.append(f"  max |head_1 - head_2|: {mh.heads_difference:.3f} with W_i, "
                 f"{_tiny(mh.unprojected_heads_difference).lstrip('= ')} without "
                 "(the document's formulas, one shared X)")
    lines.append(f"  output Concat(head_1, head_2) W^O: {_fmt(_floats(mh.output))}")

    found = errata(seed)
    if not errata_in_full:
        lines += ["", f"Errata: {len(found)} places where the document and the formulas disagree (each in full: "
                  "docs/errata.md, or python -m minitransformer.worked_examples)"]
        return "\n".join(lines + [f"  {n}. [{e.section}] {e.claim}" for n, e in enumerate(found, start=1)])
    lines += ["", "Errata"]
    for n, e in enumerate(found, start=1):
        lines += [f"  {n}. [{e.section}] {e.claim}",
                  _table([("document:", e.document_value), ("computed:", e.computed_value),
                          ("reading:", e.plausible_reading)], width=10)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a bare ``|`` would end the cell."""
    return text.replace("|", "\\|")


#: the end of docs/errata.md, on section 5's code, whose faults nn.TransformerClassifier explains one by one
SECTION_5 = [
    "## Section 5: the Keras classifier",
    "",
    "Its code cannot run as written, and the document gives no result of it: section 5.4 prints a validation",
    'loss and accuracy when run ("we can see the model\'s performance on the validation set") but shows neither,',
    "so there is no figure to match. What that code would print as accuracy is not one (the last point below),",
    "and the document has no dataset, so the library's synthetic negation task stands in for one: a task with a",
    "known answer (a deterministic rule a perfect model gets 100% on) and a known bag-of-words ceiling (75% on",
    "unseen reviews), so a result can be judged. Its section 3.2.4 asks for accuracy and F1 on a test set; the",
    "classify task reports both (`test_accuracy`, `test_f1`). Each point is explained, with its fix, in the",
    "documentation of `nn.TransformerClassifier`; notebook 06 shows them, and",
    "`minitransformer/examples/seed_classifier.py` trains the classifier done properly (its docstring lists what",
    "it keeps from the document, what it changes, and where the document is silent).",
    "",
    "- `from tensorflow.keras.layers import TransformerBlock` fails: Keras has no such layer.",
    "- There is no pooling: `Dense(1)` on the block's `(batch, 100, 512)` output gives a probability per token,",
    "  not one per text.",
    "- There is no positional encoding (without it the model sees a bag of words) and no padding mask.",
    "- Section 5.4 trains on `np.random.rand` floats: as token ids they truncate to 0, and random soft labels",
    "  carry nothing to learn. Its accuracy would be about 0, not chance: Keras counts the labels *equal* to",
    "  the prediction rounded to 0 or 1, and a random float is almost never 0 or 1.",
]


def errata_markdown(seed: int = 0) -> str:
    """The text of ``docs/errata.md``: every :class:`Erratum`, generated (a test checks the file equals this).

    Parameters
    ----------
    seed : int
        As in :func:`errata`.

    Returns
    -------
    str
        Markdown: a title, then one section per erratum with a table (document, computed, plausible reading)
        and its explanation, and a last one on section 5 (``SECTION_5``).

    Examples
    --------
    >>> text = errata_markdown()
    >>> text.splitlines()[0], sum(line.startswith("## ") for line in text.splitlines()) == len(errata()) + 1
    ('# Errata of the source document', True)
    """
    parts = [
        "# Errata of the source document",
        "",
        "The source document is the article this project started from: \"AI 大模型创业：如何利用资源优势？\" (\"AI",
        "large-model start-ups: how to make use of resource advantages\"), in Chinese and English, not part",
        "of this repository. Its section 4 states the Transformer's formulas (4.1) and works them on small numbers",
        "(4.3); its section 5 builds a Keras text classifier.",
        "",
        "Generated by `python -m minitransformer.worked_examples --markdown --out docs/errata.md` from",
        "`minitransformer/worked_examples.py`; `tests/test_worked_examples.py` checks that this file equals",
        "the function's output. The numbered errata are those of section 4 (the formulas and their worked",
        "examples); section 5 (the Keras classifier) follows at the end. Every computed value below is computed",
        "by the library (float64). Where the document gives numbers (errata 1 and 2), candidate readings were",
        "computed and ranked by their distance to them; the other readings, and the choice among close",
        "candidates, are argued in the text.",
    ]
    for n, e in enumerate(errata(seed), start=1):
        parts += [
            "",
            f"## {n}. Section {e.section}",
            "",
            f"**The document:** {e.claim}",
            "",
            "| | |",
            "|---|---|",
            f"| document | {_cell(e.document_value)} |",
            f"| computed | {_cell(e.computed_value)} |",
            f"| plausible reading | {_cell(e.plausible_reading)} |",
            "",
            e.explanation,
        ]
    return "\n".join(parts + ["", *SECTION_5]) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m minitransformer.worked_examples [--markdown] [--out FILE]``: the report, or the errata page, printed
    or written to ``FILE`` in UTF-8 (a redirected output is in the console's encoding: Windows' cp1252 lacks the
    page's characters, which print as ``?``)."""
    argv = sys.argv[1:] if argv is None else argv
    text = errata_markdown() if "--markdown" in argv else report() + "\n"
    if "--out" not in argv:
        print_what_the_console_can()
        print(text, end="")
        return 0
    out = argv[argv.index("--out") + 1:]
    if not out or out[0].startswith("-"):
        print("python -m minitransformer.worked_examples: --out needs a FILE, such as --out docs/errata.md",
              file=sys.stderr)
        return 2
    from .train.checkpoint import _write_atomically  # (the training's: imported only here)

    try:
        _write_atomically(Path(out[0]), lambda f: f.write(text.encode("utf-8")))
    except OSError as e:  # a folder in the file's place, a folder that cannot be written to: one line, as above
        print(f"python -m minitransformer.worked_examples: --out {out[0]}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
