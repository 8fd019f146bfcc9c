"""Build the step-through notebooks from their sources, run them, and write them with their outputs.

The notebooks in ``notebooks/`` are generated: each one is a list of cells, markdown and code, in a
module of its own in ``tools/notebook_sources/`` (``nb05_training_reverse.py`` for
``05_training_reverse.ipynb``; the kinds of cell in ``cells.py``), so that a change to a notebook is a
reviewable change to Python source, and a notebook can always be rebuilt from scratch.
``tests/test_notebooks.py`` checks that the committed notebooks' sources equal what this file
generates (outputs excluded), that every number their prose quotes is one their outputs print
(``unprinted_quotes``), and runs every notebook top to bottom (those that train nothing must print what their
committed outputs show).

    python tools/make_notebooks.py               # build, execute and write every notebook
    python tools/make_notebooks.py 02 05         # only these (by number or file name)
    python tools/make_notebooks.py --check       # exit 1 if a committed notebook's sources drifted, or its prose
                                                 # quotes a number its outputs do not print
    python tools/make_notebooks.py --no-execute  # write the sources without outputs
    python tools/make_notebooks.py 10 --prose    # only the markdown changed: keep the committed outputs
    python tools/make_notebooks.py 05 --keep-outputs   # run it, but new outputs only for new or edited cells

Run it from anywhere with the project's environment (``.venv/bin/python``); the notebooks are
executed with the ``python3`` kernel, in ``notebooks/`` as their working directory. After running,
progress bars are collapsed to their final line (as a terminal shows them) and consecutive prints
merged, so the committed outputs read cleanly on a code-hosting site. A build that leaves the prose
quoting a number the new outputs do not print (a rerun moves a training run's last digits) says which,
and exits 1: update the prose and rebuild with ``--prose``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
CELL_TIMEOUT = 120  # seconds per cell


if str(Path(__file__).resolve().parent) not in sys.path:  # tools/ is not a package; notebook_sources is
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_sources import (  # noqa: E402
    nb01_autograd,
    nb02_scaled_dot_product_attention,
    nb03_multi_head_attention,
    nb04_positional_encoding,
    nb05_training_reverse,
    nb06_text_classifier,
    nb07_gpu,
    nb08_decoding,
    nb09_residuals_and_layer_norm,
    nb10_character_language_model,
    nb11_translating_dates,
    nb12_gpu_kernels,
)

_SOURCES = {
    "01_autograd": nb01_autograd,
    "02_scaled_dot_product_attention": nb02_scaled_dot_product_attention,
    "03_multi_head_attention": nb03_multi_head_attention,
    "04_positional_encoding": nb04_positional_encoding,
    "05_training_reverse": nb05_training_reverse,
    "06_text_classifier": nb06_text_classifier,
    "07_gpu": nb07_gpu,
    "08_decoding": nb08_decoding,
    "09_residuals_and_layer_norm": nb09_residuals_and_layer_norm,
    "10_character_language_model": nb10_character_language_model,
    "11_translating_dates": nb11_translating_dates,
    "12_gpu_kernels": nb12_gpu_kernels,
}
NOTEBOOKS: dict[str, list[tuple]] = {name: module.CELLS for name, module in _SOURCES.items()}
#: per notebook, the numbers its prose quotes from elsewhere, each with why (see ``unprinted_quotes``)
QUOTED_ELSEWHERE: dict[str, dict[str, str]] = {name: getattr(module, "QUOTED_ELSEWHERE", {})
                                               for name, module in _SOURCES.items()}


# ------------------------------------------------------------------ building, running, cleaning
def build(name: str):
    """The notebook ``name`` (e.g. ``"01_autograd"``) as an nbformat node, without outputs."""
    import nbformat

    cells = []
    for i, (kind, source, *metadata) in enumerate(NOTEBOOKS[name]):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cells.append(make(source, id=f"cell-{i:02d}", metadata=metadata[0] if metadata else {}))  # stable ids
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def sources(nb) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell: what the drift check compares (outputs excluded)."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


_TERMINAL_LINE = re.compile(r"[^\n]*\r(?!\n)")


def _as_terminal(text: str) -> str:
    r"""What a terminal shows: within a line, text before a carriage return is overwritten."""
    return _TERMINAL_LINE.sub("", text.replace("\r\n", "\n"))


def clean(nb):
    """Merge consecutive prints of one stream and collapse progress bars to their last state."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if out.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                    and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":  # a progress bar pads its line with spaces: drop them
                out.text = "\n".join(line.rstrip() for line in _as_terminal(out.text).split("\n"))
        cell.outputs = [out for out in merged if out.output_type != "stream" or out.text.strip()]
    return nb


def execute(nb, timeout: int = CELL_TIMEOUT):
    """Run every cell with the ``python3`` kernel in ``notebooks/``; returns ``(nb, seconds)``.

    The kernel imports ``minitransformer`` from this checkout, the repository root first on its
    ``PYTHONPATH`` (as ``tests/test_notebooks.py`` runs them): from ``notebooks/`` the package is not on
    the path, and the copy installed in the environment (another checkout's, for a worktree) was run.
    """
    from nbclient import NotebookClient

    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute(env=env)
    return clean(nb), time.perf_counter() - start


def path_of(name: str) -> Path:
    return NOTEBOOK_DIR / f"{name}.ipynb"


def _select(names: list[str]) -> list[str]:
    if not names:
        return list(NOTEBOOKS)
    chosen = []
    for n in names:
        matches = [k for k in NOTEBOOKS if k == n or k.startswith(n) or k == Path(n).stem]
        if not matches:
            raise SystemExit(f"make_notebooks: no notebook {n!r}; there are {', '.join(NOTEBOOKS)}")
        chosen += matches
    return chosen


def drifted(name: str) -> str | None:
    """Why the committed notebook ``name`` differs from the generated one in its sources, or None."""
    import nbformat

    path = path_of(name)
    if not path.exists():
        return f"{path.relative_to(ROOT)} is missing"
    committed, generated = sources(nbformat.read(path, as_version=4)), sources(build(name))
    if committed == generated:
        return None
    if len(committed) != len(generated):
        return f"{path.name}: {len(committed)} cells committed, {len(generated)} generated"
    i = next(i for i, (a, b) in enumerate(zip(committed, generated)) if a != b)
    return f"{path.name}: cell {i} differs from tools/make_notebooks.py"


# ------------------------------------------------------------------ the numbers the prose quotes
# A quote is a number in a markdown cell written as a measurement: a decimal (0.674, 58.3, -2.571), a percentage
# (97.4%, 64%) or scientific notation (2.6e-4, 2.6 \cdot 10^{-4}). Integers are not quotes (counts, sizes, steps:
# what the code sets), nor are section numbers (paper 3.2.3, sections 5.3 and 5.4), link targets, fenced code.
_SECTION_REFERENCE = re.compile(r"\b(?:sections?|paper|erratum|formula|equation|example)\s+\d+(?:\.\d+)*"
                                r"(?:(?:,|,? and|,? or| to)\s+\d+(?:\.\d+)*)*", re.I)
_NOT_PROSE = re.compile(r"```.*?```|\]\([^)]*\)|https?://\S+", re.S)   # fenced code, link targets, addresses
_QUOTE = re.compile(r"""(?<![\w.])(?P<sign>[-\u2212])?(?:
    (?P<mantissa>\d+(?:\.\d+)?)\s*(?:\\cdot|\\times|\u00d7|\u00b7)\s*10\^\{?(?P<exponent>[-\u2212]?\d+)\}?
    | (?P<number>\d+(?:\.\d+)?[eE][-+\u2212]?\d+ | \d+(?:\.\d+)?% | \d+\.\d+)
    )(?!\.?\d)""", re.X)
#: a number as a program prints it (in an array, after ``=``, with ``%``; not a version's ``0.1.0``)
_PRINTED = re.compile(r"(?<![\w.])-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?(?!\.\d|\d)")
#: a constant in code: a number with a point or an exponent, not a format's ``.3f``
_CONSTANT = re.compile(r"(?<![\w.])-?(?:\d+\.\d*|\.\d+|\d+(?:\.\d*)?[eE][-+]?\d+)(?![\w.%])")


def _value(text: str) -> tuple[Decimal, Decimal]:
    """``(value, resolution)`` of a number as written: ``"0.674"`` is (0.674, 0.001), ``"97.4%"`` (0.974, 0.001),
    ``"2.6e-4"`` (0.00026, 0.00001), ``"1."`` (1, 1)."""
    number = text.replace("\u2212", "-").rstrip("%")
    digits = re.fullmatch(r"-?\d*\.?(\d*)(?:[eE]([-+]?\d+))?", number)
    value, resolution = Decimal(number), Decimal(1).scaleb(int(digits[2] or 0) - len(digits[1]))
    return (value / 100, resolution / 100) if text.endswith("%") else (value, resolution)


def quotes(markdown: str) -> list[tuple[str, int, int]]:
    """The numbers ``markdown`` quotes, as ``(key, start, end)``: the key is the number as written, with ``-`` for a
    minus sign and ``2.6 \\cdot 10^{-4}`` as ``2.6e-4`` (what ``QUOTED_ELSEWHERE`` is keyed by)."""
    def blank(match):
        return " " * len(match.group())
    text = _SECTION_REFERENCE.sub(blank, _NOT_PROSE.sub(blank, markdown))
    found = []
    for m in _QUOTE.finditer(text):
        sign = "-" if m["sign"] else ""
        key = sign + (m["number"] or f"{m['mantissa']}e{m['exponent']}").replace("\u2212", "-")
        found.append((key, m.start(), m.end()))
    return found


def _backs(printed: tuple[Decimal, Decimal], quoted: tuple[Decimal, Decimal]) -> bool:
    """Whether a printed number, written with at least the quote's digits, rounds to the quote (a tie either way),
    or equals it (NumPy writes 2.10 as ``2.1`` in an array)."""
    (value, resolution), (wanted, step) = printed, quoted
    return value == wanted or (resolution <= step and abs(value - wanted) <= step / 2)


def _numbers_of(nb) -> tuple[list, list]:
    """What can back a quote, as ``(value, resolution)``: for any quote, every number the text outputs print
    without ``%`` and every constant of the code cells, taken as exact (0.98 backs 0.980); for a quoted percentage
    also the printed percentages and the printed decimals read as percentages (97.4 for 97.4%)."""
    numbers, percentages = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = [out.text if out.output_type == "stream" else out.get("data", {}).get("text/plain", "")
                 for out in cell.outputs]
        for m in _PRINTED.finditer("\n".join(texts)):
            if m.group().endswith("%"):
                percentages.append(_value(m.group()))
            else:
                numbers.append(_value(m.group()))
                if "." in m.group():
                    percentages.append(_value(m.group() + "%"))
        numbers += [(_value(m.group())[0], Decimal(0)) for m in _CONSTANT.finditer(cell.source)]
    return numbers, percentages


#: what a reason of ``QUOTED_ELSEWHERE`` cites: a file of the repository by its path (``docs/training.md``;
#: ``nn/models.py``, inside the package) or a module of the package by its dotted name
_CITED_PATH = re.compile(r"(?<![\w./-])[\w/-]+(?:\.[\w-]+)*\.(?:py|md|sh)\b")
_CITED_MODULE = re.compile(r"\bminitransformer(?:\.\w+)+")


def cited_files(reason: str) -> tuple[list[Path], list[str]]:
    """The files a reason of ``QUOTED_ELSEWHERE`` cites, and the names it cites that are no file of the repository."""
    files, missing = [], []
    for module in _CITED_MODULE.findall(reason):
        base = ROOT / module.replace(".", "/")
        found = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
        files.append(found) if found else missing.append(module)
    for path in _CITED_PATH.findall(reason):
        found = next((p for p in (ROOT / path, ROOT / "minitransformer" / path) if p.is_file()), None)
        files.append(found) if found else missing.append(path)
    return files, missing


def uncited_quotes(name: str) -> list[str]:
    """The numbers of notebook ``name``'s ``QUOTED_ELSEWHERE`` that the files their reason cites do not hold.

    A number the prose takes from a file (a script's docstring, a page of the docs) goes stale when that file is
    rerun and rewritten: each number of an entry whose reason cites a file or module must appear there, as written
    (``94.10%``, ``0.1``), in one of the files cited; a cited name that is no file is reported too.
    """
    problems = []
    for numbers, reason in QUOTED_ELSEWHERE[name].items():
        files, missing = cited_files(reason)
        problems += [f"{name}: QUOTED_ELSEWHERE's reason for {numbers!r} cites {m}, which is no file of the repository"
                     for m in missing]
        if not files:
            continue
        text = "\n".join(f.read_text(encoding="utf-8") for f in files)
        for number in numbers.split():
            if not re.search(r"(?<![\w.])" + re.escape(number) + r"(?!\.?\d)", text):
                cited = ", ".join(str(f.relative_to(ROOT)) for f in files)
                problems.append(f"{name}: QUOTED_ELSEWHERE exempts {number} as taken from {cited}, which does not "
                                f"hold it (rerun and rewritten since?): quote what {cited} says now, or give the "
                                f"number's real source")
    return problems


def unprinted_quotes(name: str, nb=None) -> list[str]:
    """What is wrong with the numbers the prose of notebook ``name`` quotes (the committed one, or ``nb``).

    Every quote (see ``quotes``) must round from a number the notebook prints or a constant its code sets: a printed
    0.6743 backs 0.674 (and 0.67), not 0.675, and 0.67 does not back 0.674; 0.974, 97.4% and 97.4 back 97.4%;
    0.000263 backs 2.6e-4. A number the prose takes from elsewhere (the source document, a formula, a picture,
    another run) is listed in the notebook's ``QUOTED_ELSEWHERE``, one reason per key of numbers separated by
    spaces; an entry no quote uses is reported too, and so is a number its reason says comes from a file that does
    not hold it (``uncited_quotes``).
    """
    import nbformat

    nb = nb if nb is not None else nbformat.read(path_of(name), as_version=4)
    elsewhere = {number: reason for numbers, reason in QUOTED_ELSEWHERE[name].items() for number in numbers.split()}
    numbers, percentages = _numbers_of(nb)
    source, problems, used = f"tools/notebook_sources/{_SOURCES[name].__name__.rsplit('.', 1)[-1]}.py", [], set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for key, start, end in quotes(cell.source):
            if key in elsewhere:
                used.add(key)
                continue
            wanted = _value(key)
            if any(_backs(number, wanted) for number in numbers + (percentages if key.endswith("%") else [])):
                continue
            near = " ".join(cell.source[max(0, start - 60):end + 30].split())
            problems.append(f"{name}.ipynb, markdown cell {i} quotes {key} (\"...{near}...\"), which the notebook "
                            f"neither prints nor sets in its code. If a rerun moved it, write the printed value in "
                            f"{source} and run `python tools/make_notebooks.py {name[:2]} --prose`; if it comes from "
                            f"elsewhere (the source document, a formula, a picture, another run), add it to "
                            f"QUOTED_ELSEWHERE there with the reason.")
    problems += [f"{name}: QUOTED_ELSEWHERE lists {number}, which the prose does not quote; remove it"
                 for number in elsewhere if number not in used]
    return problems + uncited_quotes(name)


def with_new_prose(name: str):
    """The committed notebook ``name`` with the markdown of its sources, its code cells and outputs kept.

    For a change of wording only: rerunning would change the outputs' last digits (another CPU's
    arithmetic, sampled text) that the prose quotes. Refused where a code cell or the cells' order changed.
    """
    import nbformat

    committed, generated = nbformat.read(path_of(name), as_version=4), build(name)
    kinds = [c.cell_type for c in committed.cells], [c.cell_type for c in generated.cells]
    code = [(i, c.source) for i, c in enumerate(committed.cells) if c.cell_type == "code"], \
        [(i, c.source) for i, c in enumerate(generated.cells) if c.cell_type == "code"]
    if kinds[0] != kinds[1] or code[0] != code[1]:
        raise SystemExit(f"make_notebooks --prose: {name}'s code cells changed; rebuild it with its outputs")
    for old, new in zip(committed.cells, generated.cells):
        if old.cell_type == "markdown":
            old.source, old.metadata = new.source, new.metadata
    return committed


def _plain(outputs) -> list:
    """``outputs`` without the counts an ``execute_result`` carries (they shift when a cell is added above)."""
    return [{k: v for k, v in out.items() if k != "execution_count"} for out in outputs]


def keeping_outputs(name: str, nb):
    """``nb``, the notebook ``name`` just executed, with the committed outputs of each code cell whose source is
    unchanged; and the indices of those cells whose outputs this run changed.

    For a new or edited cell: it needs a run for its outputs, but the run also gives the unchanged cells another
    CPU's last digits (a training loop's loss, its curves' and maps' pixels) that the prose may quote. Code cells
    are matched in order (``difflib``), so cells added, removed or edited anywhere get this run's outputs; an
    ``execute_result`` kept takes its cell's new count.
    """
    import difflib

    import nbformat

    old = [c for c in nbformat.read(path_of(name), as_version=4).cells if c.cell_type == "code"]
    new = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    changed = []
    matcher = difflib.SequenceMatcher(a=[c.source for c in old], b=[c.source for _, c in new], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            committed, (i, cell) = old[block.a + k], new[block.b + k]
            kept = [nbformat.from_dict(dict(out)) for out in committed.outputs]
            for out in kept:
                if "execution_count" in out:
                    out.execution_count = cell.execution_count
            if _plain(kept) != _plain(cell.outputs):
                changed.append(i)
            cell.outputs = kept
    return nb, changed


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (number or name); all by default")
    parser.add_argument("--check", action="store_true",
                        help="only check the committed notebooks: their sources against these, the numbers their prose "
                             "quotes against their outputs")
    parser.add_argument("--no-execute", action="store_true", help="write the sources without running them")
    parser.add_argument("--prose", action="store_true",
                        help="take only the markdown from the sources, keeping the committed code cells and outputs")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="run the notebooks, but keep the committed outputs of every code cell whose source is "
                             "unchanged: only new or edited cells get this run's outputs")
    args = parser.parse_args(argv)
    names = _select(args.names)
    if args.check:
        problems = [p for p in map(drifted, names) if p]
        problems += [p for name in names if path_of(name).exists() for p in unprinted_quotes(name)]
        print("\n".join(problems) or f"{len(names)} notebooks match tools/make_notebooks.py, and their outputs print "
                                      "every number their prose quotes")
        return 1 if problems else 0
    NOTEBOOK_DIR.mkdir(exist_ok=True)
    stale = []
    for name in names:
        if args.prose:
            nb = with_new_prose(name)
        else:
            nb = build(name)
            if not args.no_execute:
                nb, seconds = execute(nb)
                print(f"{name}: executed in {seconds:.1f} s")
                if args.keep_outputs and path_of(name).exists():
                    nb, changed = keeping_outputs(name, nb)
                    print(f"{name}: committed outputs kept; this run changed those of cells {changed or 'none'}")
            nbformat.validate(nb)
        nbformat.write(nb, path_of(name))
        if args.prose or not args.no_execute:   # a rerun moves the last digits the prose may quote
            stale += unprinted_quotes(name, nb)
    if stale:
        print("\n".join(["written, but the numbers the prose quotes need a look:", *stale]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
