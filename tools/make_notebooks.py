"""Build the step-through notebooks from their sources, run them, and write them with their outputs.

The notebooks in ``notebooks/`` are generated: each one is a list of cells, markdown and code, in a
module of its own in ``tools/notebook_sources/`` (``nb05_training_reverse.py`` for
``05_training_reverse.ipynb``; the kinds of cell in ``cells.py``), so that a change to a notebook is a
reviewable change to Python source, and a notebook can always be rebuilt from scratch.
``tests/test_notebooks.py`` checks that the committed notebooks' sources equal what this file
generates (outputs excluded) and runs every notebook top to bottom.

    python tools/make_notebooks.py               # build, execute and write every notebook
    python tools/make_notebooks.py 02 05         # only these (by number or file name)
    python tools/make_notebooks.py --check       # exit 1 if a committed notebook's sources drifted
    python tools/make_notebooks.py --no-execute  # write the sources without outputs
    python tools/make_notebooks.py 10 --prose    # only the markdown changed: keep the committed outputs
    python tools/make_notebooks.py 05 --keep-outputs   # run it, but new outputs only for new or edited cells

Run it from anywhere with the project's environment (``.venv/bin/python``); the notebooks are
executed with the ``python3`` kernel, in ``notebooks/`` as their working directory. After running,
progress bars are collapsed to their final line (as a terminal shows them) and consecutive prints
merged, so the committed outputs read cleanly on a code-hosting site.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
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

NOTEBOOKS: dict[str, list[tuple]] = {
    "01_autograd": nb01_autograd.CELLS,
    "02_scaled_dot_product_attention": nb02_scaled_dot_product_attention.CELLS,
    "03_multi_head_attention": nb03_multi_head_attention.CELLS,
    "04_positional_encoding": nb04_positional_encoding.CELLS,
    "05_training_reverse": nb05_training_reverse.CELLS,
    "06_text_classifier": nb06_text_classifier.CELLS,
    "07_gpu": nb07_gpu.CELLS,
    "08_decoding": nb08_decoding.CELLS,
    "09_residuals_and_layer_norm": nb09_residuals_and_layer_norm.CELLS,
    "10_character_language_model": nb10_character_language_model.CELLS,
    "11_translating_dates": nb11_translating_dates.CELLS,
    "12_gpu_kernels": nb12_gpu_kernels.CELLS,
}


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
    parser.add_argument("--check", action="store_true", help="only compare the committed sources with these")
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
        print("\n".join(problems) or f"{len(names)} notebooks match tools/make_notebooks.py")
        return 1 if problems else 0
    NOTEBOOK_DIR.mkdir(exist_ok=True)
    for name in names:
        if args.prose:
            nbformat.write(with_new_prose(name), path_of(name))
            continue
        nb = build(name)
        if not args.no_execute:
            nb, seconds = execute(nb)
            print(f"{name}: executed in {seconds:.1f} s")
            if args.keep_outputs and path_of(name).exists():
                nb, changed = keeping_outputs(name, nb)
                print(f"{name}: committed outputs kept; this run changed those of cells {changed or 'none'}")
        nbformat.validate(nb)
        nbformat.write(nb, path_of(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
