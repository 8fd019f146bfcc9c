"""Sphinx configuration of the minitransformer documentation.

Build it with ``python docs/build.py`` (warnings are errors). Two things are made at build time,
into folders git ignores (``docs/.gitignore``), so nothing in them is edited by hand:

* ``docs/notebooks/`` -- copies of ``notebooks/*.ipynb`` and ``notebooks/README.md``, which myst-nb
  renders with their committed outputs (``nb_execution_mode = "off"``: nothing is executed).
  Sphinx reads sources only from below ``docs/``; a copy made here, on every build, is always
  the committed notebook, works on every OS (unlike a symlink) and needs no hand step. A copy is
  rewritten only when its content changed, so incremental builds stay incremental. A notebook links
  a page of these docs as ``../docs/formulas/masks.md``, right from ``notebooks/`` (on GitHub, in
  Jupyter); the copy sits in ``docs/notebooks/``, so there the link becomes ``../formulas/masks.md``.
* ``docs/_generated/cli-*.txt`` -- ``minitransformer <command> --help``, from the parser itself.
* ``docs/_generated/architecture-*.png`` -- :func:`minitransformer.viz.draw_architecture` of the tiny
  Transformer, post-LN and pre-LN: the pictures of the model the pages show are drawn from the model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, even where it is not installed

import minitransformer  # noqa: E402

# ------------------------------------------------------------------ project
project = "minitransformer"
author = "the minitransformer authors"
copyright = "the minitransformer authors, MIT licence"
version = release = minitransformer.__version__

extensions = [
    "myst_nb",  # Markdown (MyST) pages and .ipynb notebooks; registers myst_parser itself
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # numpydoc-style "Parameters / Returns" sections
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "notebooks/README.md"]
templates_path: list[str] = []

# ------------------------------------------------------------------ MyST and notebooks
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](errata.md#1-section-431) links to headings
nb_execution_mode = "off"  # render the outputs committed in the notebooks; never run them here
nb_merge_streams = True  # one block per cell for consecutive prints

# ------------------------------------------------------------------ API (autodoc + napoleon)
# every page says `:members:` itself: a default would document the re-exports of `minitransformer` twice
autodoc_default_options = {"show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # show `eps=1e-5`, not its repr after evaluation
autoclass_content = "both"  # a class's docstring and its __init__'s
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = True
autosummary_generate = False  # tables only; every object is documented once, on its package's page

# ------------------------------------------------------------------ every cross-reference resolves
# Nitpicky: a reference to a name the site does not document is a warning, so (warnings are errors) a failed
# build, instead of plain text where a link should be (tests/test_docs.py builds the site this way).
nitpicky = True
# napoleon makes a class reference of every word of a numpydoc type ("x : Tensor or array_like"). The package's
# classes are linked by their short names (link_short_class_names, below; not napoleon_type_aliases, which
# napoleon also copies into autodoc_type_aliases, where it breaks the signatures' annotations)...
SHORT_CLASS_NAMES = {
    name: f"minitransformer.{package}.{name}"
    for package, names in {
        "autograd": ["Tensor", "Function"],
        "backend": ["Backend"],
        "nn": ["Module", "Transformer", "DecoderOnlyLM", "TransformerClassifier"],
        "optim": ["Optimizer", "LRScheduler", "LambdaLR"],
        "data": ["Tokenizer", "TokenizerPair", "DataLoader"],
        "train": ["Checkpoint"],
    }.items()
    for name in names
}
# ...and these are not references: numpydoc's words for kinds of things, and phrases ("tuple of (int, str)",
# "int (or a 2-D array / Tensor)") that napoleon cuts into pieces; the standard library's, NumPy's, Matplotlib's
# and PyTorch's classes (no intersphinx: the build needs no network); private base classes (``Bases:``)
nitpick_ignore = [
    ("py:class", word)
    for word in ("array_like", "array", "callable", "iterable", "sequence", "sequences", "mapping", "module", "path",
                 "optional", "Path")
]
nitpick_ignore_regex = [
    ("py:class", r".*[\s()\[\]].*|.*->.*"),  # a phrase, or a piece of one
    ("py:class", r"(collections\.abc|pathlib|argparse|datetime|numpy|matplotlib|torch)\..+"),
    ("py:class", r"minitransformer(\.\w+)*\._\w+"),
    ("py:class", r"(minitransformer(\.\w+)*\.)?[A-Z]"),  # a type variable (Module.eval() -> M, the module's class)
]


def link_short_class_names(app, env, node, contnode):
    """A class reference by a short name of :data:`SHORT_CLASS_NAMES` (``Tensor``) links that class."""
    if node.get("refdomain") != "py" or node.get("reftype") != "class":
        return None
    target = SHORT_CLASS_NAMES.get(node.get("reftarget"))
    if target is None:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, "class", target, node, contnode)


# ------------------------------------------------------------------ HTML
html_theme = "alabaster"
html_title = f"minitransformer {release}"
html_theme_options = {
    "description": "The Transformer built from NumPy up, for learning",
    "page_width": "1180px",
    "sidebar_width": "250px",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_static_path: list[str] = []


# ------------------------------------------------------------------ re-exported constants
def comment_of_reexported_data(app, what, name, obj, options, lines):
    """The ``#:`` comment of a constant that a package re-exports, from the submodule that defines it.

    ``minitransformer.data.PAD`` is defined, and commented, in ``minitransformer/data/tokenizers.py``; Sphinx reads
    ``#:`` comments only in the module the directive names, and an int has no ``__module__`` that points elsewhere,
    so the page would show ``int``'s own docstring. The constant keeps its public name, and its text has one
    source: the comment beside it.
    """
    from sphinx.pycode import ModuleAnalyzer

    if what != "data" or "." not in name:
        return
    modname, attr = name.rsplit(".", 1)

    def comment(module_name: str) -> list[str] | None:
        analyzer = ModuleAnalyzer.for_module(module_name)
        analyzer.analyze()
        return analyzer.attr_docs.get(("", attr))

    if comment(modname):
        return  # commented where it is documented: Sphinx has it already
    for sub, module in sorted(sys.modules.items()):  # the package's submodules (already imported)
        if sub.startswith(modname + ".") and getattr(module, attr, None) is obj and comment(sub):
            lines[:] = list(comment(sub))
            return


def setup(app):
    app.connect("autodoc-process-docstring", comment_of_reexported_data)
    app.connect("missing-reference", link_short_class_names)


# ------------------------------------------------------------------ made at build time
def _write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` unless ``path`` already holds it (an unchanged file keeps its mtime: no rebuild)."""
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # not a source suffix: Sphinx never reads it
    partial.write_bytes(data)
    os.replace(partial, path)  # atomic: a build running beside this one never reads half a notebook


def copy_notebooks(source: Path = ROOT / "notebooks", target: Path = DOCS / "notebooks") -> list[str]:
    """Mirror ``notebooks/*.ipynb`` and its README into ``docs/notebooks/``; the notebooks' names, sorted."""
    names = sorted(p.name for p in source.glob("*.ipynb"))
    wanted = set(names) | {"README.md", "index.md"}
    target.mkdir(exist_ok=True)
    for stale in target.iterdir():  # a notebook renamed or removed upstream must not linger here
        if stale.name in wanted or stale.name.endswith(".partial"):  # (another build is writing it)
            continue
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    for name in [*names, "README.md"]:  # links to ../docs/PAGE from notebooks/ are ../PAGE from docs/notebooks/
        _write_if_changed(target / name, (source / name).read_bytes().replace(b"](../docs/", b"](../"))
    stems = "\n".join(Path(n).stem for n in names)
    index = (
        "<!-- generated by docs/conf.py from notebooks/README.md: edit that file, not this one -->\n\n"
        f"```{{include}} README.md\n```\n\n```{{toctree}}\n:hidden:\n\n{stems}\n```\n"
    )
    _write_if_changed(target / "index.md", index.encode())
    return names


def write_cli_help(target: Path = DOCS / "_generated") -> list[str]:
    """``minitransformer --help`` and each command's ``--help`` into ``cli-<command>.txt`` (a sub-command's
    into ``cli-<command>-<sub-command>.txt``); the names."""
    from minitransformer.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width so the files do not churn
    try:
        parser = build_parser()
        helps = {"minitransformer": parser.format_help()}
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        helps.update({name: p.format_help() for name, p in sub.choices.items()})
        for name, p in sub.choices.items():  # a command's own sub-commands: `assignments build`, ...
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    helps.update({f"{name}-{inner}": q.format_help() for inner, q in action.choices.items()})
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    for name, text in helps.items():
        _write_if_changed(target / f"cli-{name}.txt", text.encode())
    return list(helps)


def write_architecture_pictures(target: Path = DOCS / "_generated") -> list[str]:
    """``viz.draw_architecture`` of ``nn.Transformer.from_config("tiny")``, post-LN and pre-LN, into
    ``architecture-post-ln.png`` and ``architecture-pre-ln.png``; the names."""
    import io

    from minitransformer import nn
    from minitransformer.viz import draw_architecture

    names = []
    for name, norm_first in (("post-ln", False), ("pre-ln", True)):
        png = io.BytesIO()  # no "Software" version in the file: it changes only with the picture
        draw_architecture(nn.Transformer.from_config("tiny", norm_first=norm_first)).savefig(
            png, format="png", dpi=100, metadata={"Software": None})
        _write_if_changed(target / f"architecture-{name}.png", png.getvalue())
        names.append(f"architecture-{name}.png")
    return names


copy_notebooks()
write_cli_help()
write_architecture_pictures()

