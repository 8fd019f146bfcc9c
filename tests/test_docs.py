"""The documentation site (docs/): it builds with warnings as errors, documents every public name,
and the examples on its pages print what the pages say.

The build tests need the ``docs`` extra (``pip install -e ".[docs]"``) and skip without it; the
examples and the docstrings (one for every public name, a doctest for every function and class) are
checked everywhere.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import json
import re
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt

from references import module_from_file

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
pytestmark = pytest.mark.single_backend

#: every package whose public names (``__all__``) the API reference must document
PUBLIC = [
    "minitransformer", "minitransformer.backend", "minitransformer.autograd", "minitransformer.functional",
    "minitransformer.nn", "minitransformer.optim", "minitransformer.data", "minitransformer.train",
    "minitransformer.viz", "minitransformer.worked_examples", "minitransformer.assignments", "minitransformer.kernels",
    "minitransformer.cuda_emulator",
    "minitransformer.train.tasks", "minitransformer.train.run", "minitransformer.train.checkpoint",
    "minitransformer.assignments.grade", "minitransformer.examples.seed_classifier",
]
#: the pages a reader is promised (a renamed page breaks links from outside)
PAGES = [
    "index", "getting-started", "glossary", "training", "backend", "benchmarks", "errata", "assignments",
    "formulas/softmax", "formulas/attention", "formulas/masks", "formulas/multi-head-attention",
    "formulas/embedding", "formulas/positional-encoding", "formulas/feed-forward", "formulas/dropout",
    "formulas/layer-norm", "formulas/encoder-decoder", "formulas/classifier", "formulas/cross-entropy",
    "formulas/adam", "formulas/schedule", "formulas/unbroadcast", "notebooks/index", "api/index",
]


# ------------------------------------------------------------------ the built site
def _have_sphinx() -> str | None:
    """Why the site cannot be built here, or None."""
    for module in ("sphinx", "myst_nb"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[docs]' to build the documentation"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once, as ``python docs/build.py`` does (warnings are errors); its HTML folder."""
    reason = _have_sphinx()
    if reason:
        pytest.skip(reason)
    build = module_from_file(DOCS / "build.py", "docs_build")
    out = tmp_path_factory.mktemp("docs") / "html"
    done = subprocess.run(build.command(out), capture_output=True, encoding="utf-8", cwd=ROOT)
    assert done.returncode == 0, f"the documentation build failed (warnings are errors):\n{done.stderr[-6000:]}"
    return out


def read_inventory(path: Path) -> dict[str, str]:
    """``objects.inv`` (Sphinx's inventory, version 2) as {object name: its role, e.g. "py:class"}."""
    data = path.read_bytes()
    header_end = 0
    for _ in range(4):  # four text lines: format, project, version, "compressed using zlib"
        header_end = data.index(b"\n", header_end) + 1
    assert data.startswith(b"# Sphinx inventory version 2"), data[:40]
    objects = {}
    for line in zlib.decompress(data[header_end:]).decode().splitlines():
        m = re.match(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if m:
            objects[m.group(1)] = m.group(2)
    return objects


def _resolve(dotted: str):
    """The object a dotted name such as ``minitransformer.autograd.Tensor.sum`` names, or None.

    Attributes first, then submodules: ``minitransformer.autograd.gradcheck`` is the function the
    package exports, not the submodule of the same name.
    """
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for k, attr in enumerate(parts[1:], start=2):
        if hasattr(obj, attr):
            obj = getattr(obj, attr)
            continue
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            return None
    return obj


@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors(site):
    assert (site / "index.html").is_file()
    for page in PAGES:
        assert (site / f"{page}.html").is_file(), page


def test_the_build_is_set_to_fail_on_a_reference_that_does_not_resolve():
    """conf.py makes every build nitpicky, and the build treats warnings as errors (the ``site`` fixture builds
    that way): a link to a name the site does not document fails it, rather than printing as plain text. What it
    lets through is only numpydoc's type words (class references: ``x : array_like``); a function, method,
    attribute, data or module reference always has to resolve, and so do the package's own classes."""
    conf = module_from_file(DOCS / "conf.py", "docs_conf")
    build = module_from_file(DOCS / "build.py", "docs_build")
    assert conf.nitpicky is True
    assert "-W" in build.command(Path("out"))
    assert {role for role, _ in [*conf.nitpick_ignore, *conf.nitpick_ignore_regex]} == {"py:class"}

    def ignored(target: str) -> bool:
        return ("py:class", target) in conf.nitpick_ignore or any(
            re.fullmatch(pattern, target) for _, pattern in conf.nitpick_ignore_regex)

    for target in ("array_like", "tuple of (int, str)", "collections.abc.Callable", "minitransformer.nn.models._Base"):
        assert ignored(target), target
    for target in ("Tensor", "Module", "minitransformer.autograd.Tensor", "minitransformer.optim.Adam", "Adam"):
        assert not ignored(target), target
    for short, target in conf.SHORT_CLASS_NAMES.items():  # the short names link the package's own classes
        assert inspect.isclass(_resolve(target)) and _resolve(target).__name__ == short, target


def _same_definition(a, b) -> bool:
    """``a is b``, or the same function or class defined twice: pytest's doctest collection in importlib mode
    imports a module a second time, and the copy's definitions are other objects with the same names."""
    if a is b:
        return True
    where = [(getattr(x, "__module__", None), getattr(x, "__qualname__", None)) for x in (a, b)]
    return where[0] == where[1] and None not in where[0]


@pytest.mark.slow
def test_every_public_name_is_in_the_api_reference(site):
    """Each name of each ``__all__`` is documented: under its own name, or where it is defined (same object)."""
    inventory = read_inventory(site / "objects.inv")
    by_last: dict[str, list[str]] = {}
    for name, role in inventory.items():
        if role.startswith("py:"):
            by_last.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    missing = []
    for package in PUBLIC:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type(mt)):  # a submodule: it has a section of its own
                if inventory.get(obj.__name__) != "py:module":
                    missing.append(f"{package}.{name} (module {obj.__name__})")
                continue
            if f"{package}.{name}" in inventory:
                continue
            if not any(_same_definition(_resolve(other), obj) for other in by_last.get(name, [])):
                missing.append(f"{package}.{name}")
    assert not missing, f"public names missing from the API reference: {missing}"


@pytest.mark.slow
def test_every_notebook_is_a_page_with_its_committed_outputs(site):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        html = (site / "notebooks" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "cell_output" in html, f"{nb.name}: rendered without its outputs"
    index = (site / "notebooks" / "index.html").read_text(encoding="utf-8")
    for nb in notebooks:
        assert f'href="{nb.stem}.html"' in index, f"the notebooks page does not link {nb.name}"


def test_a_notebooks_links_to_the_sites_pages_still_work_in_the_sites_copy(tmp_path):
    """``notebooks/NB.ipynb`` links ``../docs/formulas/x.md`` (right on GitHub and in Jupyter); the site renders a
    copy from ``docs/notebooks/``, where that path names nothing (a warning, so a failed build) and the page is
    ``../formulas/x.md``. Other links are copied as they are."""
    conf = module_from_file(DOCS / "conf.py", "docs_conf")
    source, target = tmp_path / "notebooks", tmp_path / "docs" / "notebooks"
    source.mkdir()
    target.parent.mkdir()
    cell = "[layer norm](../docs/formulas/layer-norm.md), [notebook 05](05_training_reverse.ipynb)"
    (source / "09_x.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": cell}]}),
                                       encoding="utf-8")
    (source / "README.md").write_text("[errata](../docs/errata.md#1-section-431) and [01](01_autograd.ipynb)\n",
                                      encoding="utf-8")
    assert conf.copy_notebooks(source, target) == ["09_x.ipynb"]
    copied = (target / "09_x.ipynb").read_text(encoding="utf-8")
    assert "](../formulas/layer-norm.md)" in copied and "../docs/" not in copied
    assert "](05_training_reverse.ipynb)" in copied
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert readme == "[errata](../errata.md#1-section-431) and [01](01_autograd.ipynb)\n"


#: every formula page (docs/formulas/, but its index): each shows the code, the math and a check by hand
FORMULA_PAGES = sorted(p.stem for p in (DOCS / "formulas").glob("*.md") if p.stem != "index")


@pytest.mark.slow
def test_formula_pages_show_the_code_and_the_math(site):
    for page in FORMULA_PAGES:
        html = (site / "formulas" / f"{page}.html").read_text(encoding="utf-8")
        assert "highlight-python" in html, f"{page}: no code included"
        assert 'class="math' in html, f"{page}: no math"


#: formula pages whose "The code" opens with the formula's lines (its assignment's body), and the line it opens with:
#: the whole function, included before, put its docstring (54 lines in attention's) and its checks before them
CODE_OPENS_WITH = {"attention": "scores = Q @ K.mT / math.sqrt(d_k)",
                   "layer-norm": "mu = x.mean(axis=-1, keepdims=True)"}
_INCLUDE = re.compile(r"```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?::[\w-]+:.*\n)*)```")


def test_a_formula_pages_code_opens_with_the_formula_lines():
    from minitransformer.assignments.handout import included

    for page, first in CODE_OPENS_WITH.items():
        source = DOCS / "formulas" / f"{page}.md"
        the_code = source.read_text(encoding="utf-8").split("## The code", 1)[1].split("\n## ", 1)[0]
        include = _INCLUDE.search(the_code)
        assert include, f"{page}: no literalinclude under 'The code'"
        options = dict(re.match(r":([\w-]+):\s*(.*)", line).groups() for line in include["options"].splitlines())
        shown = included((source.parent / include["path"]).resolve(), options, None, f"{page}.md")
        assert shown.lstrip().startswith(first), f"{page}: 'The code' opens with\n{shown[:400]}\nnot with {first!r}"


def test_no_attribute_description_reads_as_a_type():
    """napoleon reads the first line of an attribute's, property's or constant's text (docstring, ``#:``
    comment or ``__slots__`` entry) as ``type: description`` when it has a colon: "True for tensors that no
    operation made: the user's own" showed "Type: True for tensors that no operation made". Every such text in
    the package starts without one."""
    reason = _have_sphinx()
    if reason:
        pytest.skip(reason)
    import pkgutil

    from sphinx.ext.napoleon import Config
    from sphinx.ext.napoleon.docstring import NumpyDocstring
    from sphinx.pycode import ModuleAnalyzer

    config = Config(napoleon_google_docstring=False, napoleon_numpy_docstring=True, napoleon_preprocess_types=True)

    def reads_as_a_type(lines: list[str], what: str) -> bool:
        parsed = NumpyDocstring(lines, config, what=what, name="x").lines()
        return any(line.lstrip().startswith(":type:") for line in parsed)

    found = []
    names = ["minitransformer", *(m.name for m in pkgutil.walk_packages(mt.__path__, "minitransformer."))]
    for modname in names:
        if modname.endswith("__main__"):  # runs the command line
            continue
        try:
            module = importlib.import_module(modname)
        except ImportError:  # an optional dependency (CuPy, PyTorch) that is not installed
            continue
        analyzer = ModuleAnalyzer.for_module(modname)
        analyzer.analyze()
        for (scope, attr), lines in analyzer.attr_docs.items():
            if reads_as_a_type(list(lines), "attribute" if scope else "data"):
                found.append(f"{modname}.{scope + '.' if scope else ''}{attr}")
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == modname:
                slots = vars(cls).get("__slots__")
                texts = {attr: (doc, "attribute") for attr, doc in slots.items()} if isinstance(slots, dict) else {}
                texts.update({attr: (value.__doc__, "property") for attr, value in vars(cls).items()
                              if isinstance(value, property)})
                for attr, (doc, what) in texts.items():
                    if doc and reads_as_a_type(inspect.cleandoc(doc).splitlines(), what):
                        found.append(f"{modname}.{cls.__name__}.{attr}")
    assert not found, f"a first line napoleon shows as 'Type: ...' (reword it without 'phrase:'): {found}"


# ------------------------------------------------------------------ the examples on the pages
def _page_sources() -> list[Path]:
    skip = {"_build", "_generated", "_ext", "notebooks"}
    return sorted(p for p in DOCS.rglob("*.md") if not skip & set(p.relative_to(DOCS).parts))


def _examples(page: Path) -> str:
    """The page's ```pycon blocks, one session."""
    return "\n".join(re.findall(r"^```pycon\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M))


@pytest.mark.parametrize("page", [p for p in _page_sources() if _examples(p)], ids=lambda p: str(p.relative_to(DOCS)))
def test_the_examples_on_a_page_print_what_it_says(page):
    test = doctest.DocTestParser().get_doctest(_examples(page), {}, str(page.relative_to(ROOT)), str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_the_backend_pages_emulator_example_runs_as_written():
    """backend.md's Python block that launches a kernel on the CPU runs as a reader copies it, and its ``y`` is
    ``a * x`` in every entry (an entry left unwritten would hold ``emu.empty``'s guard bytes)."""
    from minitransformer import cuda_emulator

    if cuda_emulator.missing():
        pytest.skip(cuda_emulator.missing())
    text = (DOCS / "backend.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M) if "cuda_emulator" in b]
    namespace: dict = {}
    exec(block, namespace)
    np.testing.assert_array_equal(namespace["y"], 2 * np.arange(10, dtype=np.float32))


def test_from_pytorch_says_which_torch_masks_carry_over():
    """from-pytorch.md: torch's ``F.scaled_dot_product_attention`` takes a boolean mask as this library does (True:
    may attend), ``nn.MultiheadAttention`` (as ``nn.Transformer*``) the other way round (True: blocked); the
    library's causal mask gives the weights of the one and, inverted, of the other. Checked on the installed torch."""
    torch = pytest.importorskip("torch")
    import minitransformer.functional as F

    page = (DOCS / "from-pytorch.md").read_text(encoding="utf-8")
    assert "is True where attention is *blocked*" in page and "the same: True = *may* attend" in page
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8)
    mask = torch.from_numpy(F.causal_mask(4).numpy())
    q = x[:, None]  # (batch, heads, L, d_k)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    causal = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    torch.testing.assert_close(sdpa, causal)
    mha = torch.nn.MultiheadAttention(8, 1, batch_first=True)
    weights = mha(x, x, x, attn_mask=~mask)[1][0].detach().numpy()
    assert (weights[~mask.numpy()] == 0).all() and np.allclose(weights.sum(-1), 1)
    weights = mha(x, x, x, attn_mask=mask)[1][0].detach().numpy()  # not inverted: the future only, a row of NaN
    assert np.isnan(weights[-1]).all() and (weights[:-1][mask.numpy()[:-1]] == 0).all()


def test_pages_have_examples_where_they_promise_them():
    pages = {p.relative_to(DOCS).as_posix() for p in _page_sources() if _examples(p)}
    for page in ("getting-started.md", *(f"formulas/{name}.md" for name in FORMULA_PAGES)):
        assert page in pages, page


#: options the pages name that belong to other programs, and the program of each
OUTSIDE_OPTIONS = {"--python-version": "mypy", "--index-url": "pip", "--doctest-modules": "pytest"}
#: options that a main of the package reads from its argv without a parser, and which
ARGV_OPTIONS = {"--markdown": "minitransformer.worked_examples"}
#: an option a parser defines in the source: the first long name of an ``add_argument`` or ``addoption`` call
DEFINED = re.compile(r"""\b(?:add_argument|addoption)\(\s*(?:["']-\w["']\s*,\s*)?["'](--[a-z][\w-]*)["']""")


def _options_of_the_code() -> set[str]:
    """Every option that an ``add_argument`` or ``addoption`` call of the package, the tools and the suite's conftest
    defines (the command line's parsers, pytest's options), and ``--help``, which argparse adds to each parser; not
    any ``"--name"`` string, which a message may hold."""
    options = {"--help"}
    sources = [*(ROOT / "minitransformer").rglob("*.py"), *(ROOT / "tools").glob("*.py")]
    for source in [*sources, ROOT / "tests" / "conftest.py"]:
        options.update(DEFINED.findall(source.read_text(encoding="utf-8")))
    return options


def test_every_option_the_pages_name_exists():
    """An option written on a page or in the README (``--keep-checkpoints``, ``--emulated-kernels``, ``--prose``) is
    one the code defines: a renamed or misspelt option fails here, not in a reader's shell."""
    pages = [*_page_sources(), ROOT / "README.md", ROOT / "notebooks" / "README.md"]
    named = {(option, page.relative_to(ROOT).as_posix()) for page in pages
             for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", page.read_text(encoding="utf-8"))}
    defined = _options_of_the_code() | set(OUTSIDE_OPTIONS) | set(ARGV_OPTIONS)
    unknown = sorted((option, page) for option, page in named if option not in defined)
    assert not unknown, f"options the pages name that no parser defines (or OUTSIDE_OPTIONS, ARGV_OPTIONS): {unknown}"


def test_every_command_has_its_help_on_the_training_page():
    from minitransformer.cli import build_parser

    commands = {a.dest: a for a in build_parser()._actions}["command"].choices
    text = (DOCS / "training.md").read_text(encoding="utf-8")
    included = set(re.findall(r"_generated/cli-([\w-]+)\.txt", text))
    assert included == {"minitransformer", *commands}


def test_the_training_pages_command_blocks_run_top_to_bottom():
    """Each block of commands on the training page runs in order: every line parses, and an ``average`` reads the
    checkpoints that a ``train`` above it in the block keeps (``--keep-checkpoints``) in that folder; the first block's
    average read ``runs/reverse``, which its reverse run, without ``--keep-checkpoints``, never filled."""
    import shlex

    from minitransformer.cli import _default_out, build_parser

    text = (DOCS / "training.md").read_text(encoding="utf-8")
    averaged = 0
    for block in re.findall(r"^```text\n(.*?)^```", text, flags=re.S | re.M):
        keeping: set[Path] = set()
        for line in block.splitlines():
            if not line.startswith("minitransformer "):
                continue
            try:
                args = build_parser().parse_args(shlex.split(line.split("  #")[0])[1:])
            except SystemExit:
                pytest.fail(f"the training page's command does not parse: {line}")
            if args.command == "train" and args.keep_checkpoints:
                keeping.add(Path(args.out or _default_out(args.task, args.seed_config)))
            elif args.command == "average":
                averaged += 1
                assert {Path(c).parent for c in args.checkpoints} <= keeping, f"nothing above keeps them: {line}"
    assert averaged >= 2


def test_every_generated_help_is_on_a_page(tmp_path):
    """conf.py writes each command's ``--help`` into ``docs/_generated/``; a file no page includes is a help
    the site does not show."""
    conf = module_from_file(DOCS / "conf.py", "docs_conf")
    written = set(conf.write_cli_help(tmp_path))
    text = "\n".join(p.read_text(encoding="utf-8") for p in _page_sources())
    assert set(re.findall(r"_generated/cli-([\w-]+)\.txt", text)) == written


def test_every_generated_picture_is_on_a_page(tmp_path):
    """conf.py draws the model's architecture into ``docs/_generated/``: each picture is a PNG that a page shows,
    and drawing them again writes the same bytes (an unchanged file keeps its date: no rebuild, no churn)."""
    conf = module_from_file(DOCS / "conf.py", "docs_conf")
    written = conf.write_architecture_pictures(tmp_path)
    assert written and all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in written)
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in written}
    assert conf.write_architecture_pictures(tmp_path) == written
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in written} == before
    text = "\n".join(p.read_text(encoding="utf-8") for p in _page_sources())
    assert set(re.findall(r"_generated/(architecture-[\w-]+\.png)", text)) == set(written)


# ------------------------------------------------------------------ the docstrings themselves
def _public_objects():
    """(name, object) for every public function and class, and every public method of those classes."""
    seen: set[int] = set()
    for package in PUBLIC:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{package}.{name}", obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    f = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                    if not attr.startswith("_") and (inspect.isfunction(f)):
                        yield f"{package}.{name}.{attr}", f


def test_every_public_function_and_class_has_a_docstring_with_a_runnable_example():
    """Every public function and class shows a doctest (run with the suite); every public method says what it does."""
    missing, no_example = [], []
    for name, obj in _public_objects():
        doc = inspect.getdoc(obj)
        if not doc:
            missing.append(name)
        elif "." not in obj.__qualname__ and ">>> " not in doc:  # a function or class, not a method
            no_example.append(name)
    assert not missing, f"public names without a docstring: {missing}"
    assert not no_example, f"public functions and classes without a doctest: {no_example}"


#: a shape written down, parenthesised (``(batch, seq, d_model)``, ``(d,)``, ``(..., d)``) or in one of a few exact
#: phrases ("any shape,", "the shape of ``x``", "a scalar"); not any mention of "shape" or "scalar" ("any shape is
#: refused", "see the shapes above", "scalar per entry" say none)
SHAPE = re.compile(r"\([\w.\s+\-*/]*,[\w.\s,+\-*/]*\)|\bany shape[,.;]|\b(?:the|same) shape (?:of|as) ``\w+``"
                   r"|\ba scalar\b|\bshapes broadcast together\b|\bthe broadcast shape of ``\w+``", re.IGNORECASE)
#: public Modules of minitransformer.nn without a "Shapes:" line, and why
NO_SHAPES_LINE = {"Module": "the base class: its subclasses say theirs", "ModuleList": "a container of modules",
                  "ModuleDict": "a container of modules, by key",
                  "Sequential": "a chain of modules: the first's input, the last's output"}


def _numpydoc_entries(doc: str, section: str) -> list[tuple[str, str]]:
    """``(name : type, description)`` of each entry of a numpydoc ``section`` (Parameters, Returns) of ``doc``."""
    lines = doc.splitlines()
    entries, inside = [], False
    for line, underline in zip(lines, [*lines[1:], ""]):
        if re.fullmatch(r"-{3,}", line.strip()):
            continue
        if re.fullmatch(r"-{3,}", underline.strip()):  # a section's title
            inside = line.strip() == section
        elif inside and line[:1].strip():  # an entry starts unindented
            entries.append((line, ""))
        elif inside and entries:
            entries[-1] = (entries[-1][0], f"{entries[-1][1]} {line.strip()}")
    return entries


def _tensors_without_a_shape(name: str, obj) -> list[str]:
    """The Tensor entries of ``obj``'s Parameters and Returns whose description says no shape."""
    doc = inspect.getdoc(obj) or ""
    return [f"{name}, {section}: {head.strip()}" for section in ("Parameters", "Returns")
            for head, text in _numpydoc_entries(doc, section)
            if "Tensor" in head.partition(":")[2 if ":" in head else 0] and not SHAPE.search(text)]


def test_every_formula_and_module_says_its_shapes():
    """DESIGN: shapes are written down. Each Tensor a function of minitransformer.functional takes or returns has
    its shape in the docstring; each Module of minitransformer.nn has a "Shapes:" line, in to out, and its methods'
    Tensors their shapes."""
    import minitransformer.functional as F
    from minitransformer import nn

    lacking = [entry for name in F.__all__ for entry in _tensors_without_a_shape(f"functional.{name}",
                                                                                 getattr(F, name))]
    for name in nn.__all__:
        cls = getattr(nn, name)
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            continue
        doc = inspect.getdoc(cls) or ""
        said = re.search(r"\bShapes:(.*?)(?:\n\n|\Z)", doc, re.DOTALL)
        if name not in NO_SHAPES_LINE and not (said and SHAPE.search(said.group(1))):
            lacking.append(f"nn.{name}: no 'Shapes: (in) -> (out)' line in its docstring (or NO_SHAPES_LINE)")
        for attr, f in vars(cls).items():
            if inspect.isfunction(f) and (attr == "forward" or not attr.startswith("_")):
                lacking += _tensors_without_a_shape(f"nn.{name}.{attr}", f)
    assert not lacking, ("say the shape, (batch, seq, d_model) or (..., d), or 'any shape,', 'the shape of ``x``', "
                         "'a scalar' (see the checklist of docs/contributing.md):\n" + "\n".join(lacking))
