"""What a student copy holds besides the package: ``ASSIGNMENT.md``, and the documentation as plain Markdown.

The documentation's pages are MyST, written for the site that ``docs/build.py`` builds; a copy has no Sphinx, and
its reader opens the pages in an editor, Jupyter or a Git host. So a copy's pages (:data:`DOCS` of ``docs/``) are
written out as plain Markdown (:func:`plain_markdown`):

- a ``literalinclude`` of the package becomes the code it includes, **as the copy has it** (the assignment's bodies
  as their stubs, every marker gone: :func:`included`), so no page shows a solution the copy took out;
- a ``literalinclude`` of a file the site generates (a command's help) says which command prints it, a figure
  becomes its description, a ``toctree`` a list of links;
- ``{doc}`` becomes a link, ``{func}`` and the other roles of the API inline code (a ``~`` role its last name, or as
  much of its module as tells it from another of that name on the page), ``{math}`` ``$...$``; a paragraph is read
  as one text, so that a code span may cross a line;
- a link, or a path in inline code (```docs/errata.md```), to a file the copy does not hold says it is in the
  course's repository (:data:`ELSEWHERE`).

``ASSIGNMENT.md`` (:func:`assignment_page`) is written from ``docs/assignments.md``, the one text of each
assignment: its section ``### A<N>``, its row of the table of the seven, and the section ``## Working in a copy``,
each without the parts between ``<!-- not in a student copy: begin -->`` and ``<!-- not in a student copy: end -->``
(:data:`NOT_IN_A_COPY`, which the copy's other pages and its README leave out too), and of "Working in a copy" the
paragraphs of what the assignment's grading needs only (:func:`only_where_needed`); with what the copy itself
says: its bodies (file, line, function and hint), the points of each graded test (from the tests'
``@pytest.mark.assignment(N, points=P)``; the example of a test run alone is one of them), the notebooks and the
formula pages named.
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import textwrap
from pathlib import Path

from . import strip  # (as a module: strip imports this one, and its names are there once it has run)
from .catalog import get

__all__ = ["DOCS", "ELSEWHERE", "plain_markdown", "included", "copy_docs", "assignment_page", "points_of",
           "left_out_of_copies", "only_where_needed", "missing_paths",
           "bodies_and_exercises"]

#: the page a copy opens with, its assignment's text, what to write, the points and how to check oneself
ASSIGNMENT = "ASSIGNMENT.md"
#: the pages of docs/ a copy holds, as globs; all but the instructors' (assignments.md, for which ASSIGNMENT.md
#: stands), the site's index and its API reference (autodoc, which needs Sphinx)
DOCS = ("*.md", "formulas/*.md")
#: the pages of DOCS a copy leaves out
DOCS_LEFT_OUT = ("assignments.md", "index.md")
#: what a copy's text adds after a link or a path to a file the copy does not hold
ELSEWHERE = "in the course's repository"
#: the two markers around what a copy leaves out of a page (HTML comments, which no page shows), the instructors'
#: parts of docs/assignments.md in ASSIGNMENT.md, and what is true of the repository only in a page or the README
NOT_IN_A_COPY = ("<!-- not in a student copy: begin -->", "<!-- not in a student copy: end -->")

#: a marker before the paragraphs of "Working in a copy" that go only to the copies whose "Grading needs" (the table
#: of the seven) names what it says; the next marker, or ``<!-- only where grading needs: end -->``, ends them
_ONLY_WHERE = re.compile(r"^<!-- only where grading needs: (?P<what>.+?) -->$")
#: the run-alone example of "Working in a copy", whose test ASSIGNMENT.md makes one of the assignment's own
_RUN_ALONE = re.compile(r'`python -m pytest "(?P<test>tests/[\w./-]+::\w+)"`')

#: the options of a ``literalinclude`` that pick its lines, as :func:`_picked` does
_PICKING = frozenset({"pyobject", "start-at", "start-after", "end-before", "end-at"})
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}\s*(?P<arg>.*?)\s*$")
_ROLE = re.compile(r"\{(?P<role>[a-z]+)\}`(?P<content>[^`]*)`")
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
#: inline code that is a path of the repository (``docs/errata.md``, ``tools/``)
_PATH = re.compile(r"`(?P<path>(?:docs|tools|tests|notebooks|minitransformer|\.ci|\.github)/[\w./-]*)`")
#: a role, a link, a path, or other inline code (read as it is, so ```{doc}``` there is no role)
_INLINE = re.compile("|".join(p.pattern for p in (_ROLE, _LINK, _PATH)) + r"|(?P<code>`[^`]*`)")


# ------------------------------------------------------------------ code included from the package
def included(source: Path, options: dict[str, str], number: int | None, where: str = "<page>") -> str:
    """The lines a ``literalinclude`` of ``source`` with ``options`` shows, as assignment ``number``'s copy has them.

    The lines are picked in ``source`` as Sphinx picks them (``:pyobject:``, decorators included; ``:start-at:``,
    ``:start-after:``, ``:end-before:``, ``:end-at:``; another option but ``:language:`` is an error), then each
    marked body among them becomes what the copy has (:func:`~minitransformer.assignments.strip.stripped_lines`): its
    stub for assignment ``number``, put where the picked lines enter the body when they start inside it, the body
    alone for another; no marker line is shown. ``number=None`` keeps every body (the solution copy).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = Path(tmp) / "m.py"
    ...     _ = f.write_text("def f(x):\\n    ### BEGIN SOLUTION A2: twice x\\n    return 2 * x\\n"
    ...                      "    ### END SOLUTION\\n", encoding="utf-8")
    ...     print(included(f, {"pyobject": "f"}, 2), included(f, {"pyobject": "f"}, 3), sep="")
    def f(x):
        # YOUR CODE HERE
        raise NotImplementedError("A2: twice x")
    def f(x):
        return 2 * x
    """
    text = source.read_text(encoding="utf-8")
    first, last = _picked(text, text.splitlines(), options, where)
    shown = strip.stripped_lines(text, number, where)
    for r in strip.regions(text, where):  # a range that starts inside a stubbed body still shows its stub, once
        if r.number == number and r.begin < first < r.end:  # (at the END marker the body is over: no stub)
            shown[first - 1] = [r.stub(number) + "\n"]
    code = "".join(line for i in range(first - 1, last) for line in shown[i])
    return code if code.endswith("\n") else code + "\n"


def _picked(text: str, lines: list[str], options: dict[str, str], where: str) -> tuple[int, int]:
    """The first and last line (from 1) that ``options`` pick in ``text``."""
    unknown = sorted(set(options) - _PICKING - {"language"})
    if unknown:  # not silently ignored: the copy would show other lines than the site
        raise ValueError(f"{where}: literalinclude: {', '.join(f':{o}:' for o in unknown)} is not handled in a copy "
                         f"(only :language: and {', '.join(f':{o}:' for o in sorted(_PICKING))})")
    first, last = 1, len(lines)
    if "pyobject" in options:
        node = _object(ast.parse(text), options["pyobject"])
        if node is None:
            raise ValueError(f"{where}: literalinclude: no {options['pyobject']!r} to include")
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        last = node.end_lineno
    for key, after in (("start-at", 0), ("start-after", 1)):
        if key in options:
            first = _line_with(lines, _unquoted(options[key]), first, where) + after
    for key, before in (("end-before", 1), ("end-at", 0)):
        if key in options:
            last = _line_with(lines, _unquoted(options[key]), first, where) - before
    return first, last


def _object(tree: ast.Module, dotted: str):
    """The class or function ``dotted`` (``Class.method``) defined in ``tree``, or None."""
    body: list = tree.body
    node = None
    for name in dotted.split("."):
        node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name == name), None)
        if node is None:
            return None
        body = node.body
    return node


def _line_with(lines: list[str], text: str, start: int, where: str) -> int:
    """The number (from 1) of the first line from ``start`` on that contains ``text``."""
    for i in range(start - 1, len(lines)):
        if text in lines[i]:
            return i + 1
    raise ValueError(f"{where}: literalinclude: no line with {text!r}")


def _unquoted(value: str) -> str:
    """An option's ``value`` without the quotes around it (MyST reads a directive's options as YAML, which drops them).

    >>> _unquoted('"### END SOLUTION"'), _unquoted("'x'"), _unquoted('""'), _unquoted('"'), _unquoted('"x')
    ('### END SOLUTION', 'x', '', '"', '"x')
    """
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'" else value


# ------------------------------------------------------------------ MyST to plain Markdown
def plain_markdown(text: str, page: str, copy: Path, root: Path, number: int | None, out: str | None = None) -> str:
    """The MyST page ``text`` (``page``: its path in the checkout ``root``) as plain Markdown for a copy.

    Parameters
    ----------
    text : str
        The page (or a part of it).
    page : str
        Its path from the checkout's top (``docs/formulas/softmax.md``): links and roles are read from its folder.
    copy : path
        The copy's folder, which says which files the copy holds (they must be written before).
    root : path
        The checkout, whose package a ``literalinclude`` picks its lines in.
    number : int or None
        The copy's assignment (``None``: the solution copy), whose bodies an included code shows as stubs.
    out : str, optional
        Where the text goes in the copy (``ASSIGNMENT.md``), when not at ``page``: links are written from there.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (Path(tmp) / "docs").mkdir()
    ...     _ = (Path(tmp) / "docs" / "glossary.md").write_text("# Glossary\\n", encoding="utf-8")
    ...     print(plain_markdown("See {doc}`glossary`, {doc}`errata`, {func}`~minitransformer.nn.f` "
    ...                          "and `tools/gpu_check.sh`.", "docs/index.md", Path(tmp), Path(tmp), 2))
    See [Glossary](glossary.md), errata (`docs/errata.md`, in the course's repository), `f`
    and `tools/gpu_check.sh` (in the course's repository).
    """
    out = out or page
    names = _shown_names(text)
    lines = text.splitlines(keepends=True)
    done: list[str] = []
    prose: list[str] = []  # the lines of the paragraph we are in, read as one (a code span may cross a line)

    def paragraph_ends():
        done.append(_inline("".join(prose), page, copy, out, root, names) if prose else "")
        prose.clear()

    i, fence = 0, None  # fence: the fence of the code block we are in
    while i < len(lines):
        line = lines[i]
        m = _DIRECTIVE.match(line)
        if fence is None and (m or _FENCE.match(line.lstrip()) or not line.strip()):
            paragraph_ends()
        if fence is None and m:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == m["fence"]), None)
            if end is None:
                raise ValueError(f"{page}:{i + 1}: {{{m['name']}}} is never closed by {m['fence']}")
            options, body = _options(lines[i + 1:end])
            done.append(_directive(m["name"], m["arg"], options, body, page, copy, root, number, out,
                                   f"{page}:{i + 1}"))
            i = end + 1
            continue
        after = _fence_after(line, fence)
        in_code = fence is not None or after is not None  # (a fence's own line too)
        (done if in_code else prose).append(line)
        fence, i = after, i + 1
    paragraph_ends()
    return "".join(done)


def _shown_names(text: str) -> dict[str, str]:
    """Target -> the name a copy shows for each ``~`` role of the API in ``text``: its last name, or where ``text``
    names two objects of that name (``nn.LayerNorm``, ``autograd.fused.LayerNorm``), as much of its module as tells
    them apart.

    >>> _shown_names("{class}`~minitransformer.nn.LayerNorm`, {class}`~minitransformer.autograd.fused.LayerNorm`")
    {'minitransformer.nn.LayerNorm': 'nn.LayerNorm', 'minitransformer.autograd.fused.LayerNorm': 'fused.LayerNorm'}
    >>> _shown_names("{class}`~nn.LayerNorm`, {class}`~minitransformer.nn.LayerNorm`")  # one name ends the other
    {'nn.LayerNorm': 'nn.LayerNorm', 'minitransformer.nn.LayerNorm': 'minitransformer.nn.LayerNorm'}
    """
    api = [_title_and_target(m["content"])[1] for m in _ROLE.finditer(text) if m["role"] not in ("doc", "math")]
    targets = list(dict.fromkeys(target[1:] for target in api if target.startswith("~")))
    shown = {}
    for target in targets:
        others = [o.split(".") for o in targets if o != target and o.split(".")[-1] == target.split(".")[-1]]
        parts = target.split(".")
        k = next((k for k in range(1, len(parts)) if all(o[-k:] != parts[-k:] for o in others)), len(parts))
        shown[target] = ".".join(parts[-k:])
    return shown


def _title_and_target(content: str) -> tuple[str, str]:
    """The title and the target of a role's content ``title <target>``; no title ("") and the content, without one.

    >>> _title_and_target("the softmax <formulas/softmax>"), _title_and_target("~minitransformer.nn.Linear")
    (('the softmax', 'formulas/softmax'), ('', '~minitransformer.nn.Linear'))
    """
    if not content.endswith(">"):
        return "", content
    title, _, target = content.rpartition(" <")
    return title, target.rstrip(">")


def _options(lines: list[str]) -> tuple[dict[str, str], str]:
    """A directive's ``:key: value`` lines and the content after them."""
    options, k = {}, 0
    while k < len(lines) and (m := re.match(r"^:([\w-]+):\s*(.*?)\s*$", lines[k])):
        options[m[1]] = m[2]
        k += 1
    return options, "".join(lines[k:]).strip("\n")


def _directive(name, arg, options, body, page, copy, root, number, out, where) -> str:
    """One directive block of a page, written as plain Markdown."""
    folder = posixpath.dirname(page)
    if name == "literalinclude":
        target = posixpath.normpath(posixpath.join(folder, arg))
        if target.startswith("docs/_generated/cli-"):  # a command's --help, which the site writes when built
            command = target.removeprefix("docs/_generated/cli-").removesuffix(".txt").replace("-", " ")
            command = "minitransformer" + ("" if command == "minitransformer" else f" {command}")
            return f"`{command} --help` prints it.\n"
        if not (root / target).is_file():
            raise ValueError(f"{where}: literalinclude of {target}, which the checkout does not hold")
        code = included(root / target, options, number, where)
        shown = _relative(target, out)
        return (f"From [`{target}`]({shown}), as this copy was handed out:\n\n```{options.get('language', '')}\n"
                f"{code}```\n")
    if name == "toctree":
        entries = [e.strip() for e in body.splitlines() if e.strip()]
        return "".join(f"- {_doc(e, page, copy, out, None, root)}\n" for e in entries)
    if name == "figure":
        caption = _inline(body, page, copy, out, root, _shown_names(body)) if body else ""
        return f"*(A picture, drawn when the course's site is built. {options.get('alt', arg)}.)* {caption}\n"
    raise ValueError(f"{where}: {{{name}}}: a student copy does not know how to show this directive "
                     "(minitransformer/assignments/handout.py)")


def _inline(line: str, page: str, copy: Path, out: str, root: Path | None, names: dict[str, str]) -> str:
    """Roles, links and paths of a line or a paragraph of text, in one pass (what one writes is not read again);
    a ``~`` role of the API shows its name in ``names``, :func:`_shown_names` of a text that holds ``line``."""

    def role(m):
        if m["role"] == "math":
            return f"${m['content']}$"
        title, target = _title_and_target(m["content"])
        if m["role"] == "doc":
            return _doc(target, page, copy, out, title or None, root)
        shown = title or target
        if shown.startswith("~"):
            shown = names[shown[1:]]
        return f"`{shown}`"

    def link(m):
        if (linked := _linked(m["target"], page)) is None:
            return m[0]
        found, anchor = linked
        if (copy / found).exists():
            return f"[{m['text']}]({_relative(found, out)}{'#' + anchor if anchor else ''})"
        if m["text"].strip("`") in (m["target"].partition("#")[0], found):
            return f"`{found}` ({ELSEWHERE})"
        return f"{m['text']} (`{found}`, {ELSEWHERE})"

    def path(m):
        return f"{m[0]} ({ELSEWHERE})" if _missing_and_unsaid(m, line, copy) else m[0]

    def one(m):
        return m[0] if m["code"] else role(m) if m["role"] else link(m) if m["target"] else path(m)

    return _INLINE.sub(one, line)


def _fence_after(line: str, fence: str | None) -> str | None:
    """The fence of the code block we are in after ``line``, ``fence`` the one we were in before it (None: none)."""
    f = _FENCE.match(line.lstrip())
    if f and (fence is None or f[1].startswith(fence)):
        return f[1] if fence is None else None
    return fence


def _linked(target: str, page: str) -> tuple[str, str] | None:
    """The file (from the copy's top) and the anchor that a link's ``target`` in ``page`` leads to; None for a web
    address or an anchor of the page itself, which lead to no file of the copy.

    >>> _linked("../docs/errata.md#top", "notebooks/x.ipynb"), _linked("#top", "README.md")
    (('docs/errata.md', 'top'), None)
    """
    if re.match(r"^[a-z]+:|^#", target):
        return None
    path, _, anchor = target.partition("#")
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), path)), anchor


def _missing_and_unsaid(m: re.Match, line: str, copy: Path) -> bool:
    """Whether the path in inline code that ``m`` (of :data:`_PATH`) found in ``line`` is of a file ``copy`` does not
    hold, and the words of :data:`ELSEWHERE` do not follow it."""
    there = (copy / m["path"].split("#")[0]).exists()
    return not there and not line[m.end():].startswith((f" ({ELSEWHERE}", f", {ELSEWHERE}"))


def _doc(target: str, page: str, copy: Path, out: str, title: str | None = None, root: Path | None = None) -> str:
    """A link to the page ``target`` of a ``{doc}`` role or a ``toctree`` (from ``page``'s folder, or docs/)."""
    found = posixpath.normpath(target[1:] if target.startswith("/") else
                               posixpath.join(posixpath.dirname(page), target))
    if not found.startswith("docs/"):  # from docs/, as Sphinx reads it
        found = posixpath.normpath(posixpath.join("docs", found))
    if found.startswith("docs/notebooks/"):  # the site's copy of notebooks/
        found = "notebooks/" + found.removeprefix("docs/notebooks/")
        found = "notebooks/README" if found == "notebooks/index" else found
    for suffix in (".md", ".ipynb"):
        if (copy / (found + suffix)).is_file():
            shown = title or _title(copy / (found + suffix)) or posixpath.basename(found)
            return f"[{shown}]({_relative(found + suffix, out)})"
    there = root / (found + ".md") if root else None
    title = title or (there and there.is_file() and _title(there)) or posixpath.basename(target)
    return f"{title} (`{found}.md`, {ELSEWHERE})"


def _title(path: Path) -> str | None:
    """The first ``# `` heading of a Markdown page or of a notebook's first cell."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        text = "".join(json.loads(text)["cells"][0]["source"])
    return next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), None)


def _relative(path: str, out: str) -> str:
    """``path`` (from the copy's top) as a link written in the file ``out``."""
    return posixpath.relpath(path, posixpath.dirname(out) or ".")


def missing_paths(text: str, page: str, copy: Path) -> list[str]:
    """The links and inline-code paths of ``text`` (at ``page`` in ``copy``) to files the copy does not hold that
    do not say they are in the course's repository; code blocks are not read.

    >>> missing_paths("[a](docs/x.md) `tools/y.py` (in the course's repository)", "README.md", Path("/nowhere"))
    ['docs/x.md']
    """
    missing, fence = [], None
    for line in text.splitlines():
        before, fence = fence, _fence_after(line, fence)
        if before is None and fence is None:  # (a line of prose)
            missing += [m["target"].partition("#")[0] for m in _LINK.finditer(line)
                        if (linked := _linked(m["target"], page)) and not (copy / linked[0]).exists()]
            missing += [m["path"] for m in _PATH.finditer(line) if _missing_and_unsaid(m, line, copy)]
    return missing


# ------------------------------------------------------------------ the copy's documentation
def copy_docs(root: Path, copy: Path, number: int | None) -> None:
    """Write :data:`DOCS` of ``root/docs`` into ``copy/docs`` as plain Markdown.

    Every page is written first as it is, so that the links between the pages see which exist (and their titles),
    then each is rewritten by :func:`plain_markdown`, without what lies between :data:`NOT_IN_A_COPY`' markers.
    """
    pages = sorted({p.relative_to(root).as_posix() for pattern in DOCS for p in (root / "docs").glob(pattern)}
                   - {f"docs/{name}" for name in DOCS_LEFT_OUT})
    for page in pages:
        (copy / page).parent.mkdir(parents=True, exist_ok=True)
        (copy / page).write_bytes((root / page).read_bytes())  # there, for the links; rewritten below
    for page in pages:
        text = left_out_of_copies((root / page).read_text(encoding="utf-8"), page)
        (copy / page).write_text(plain_markdown(text, page, copy, root, number), encoding="utf-8")


def rewrite_links(copy: Path, root: Path, number: int | None) -> None:
    """The README, ``notebooks/README.md`` and the notebooks' Markdown cells: a link or a path to a file the copy
    does not hold says it is in the course's repository; the READMEs' parts marked :data:`NOT_IN_A_COPY` are left
    out."""
    for page in ("README.md", "notebooks/README.md"):
        if (copy / page).is_file():
            text = left_out_of_copies((copy / page).read_text(encoding="utf-8"), page)
            (copy / page).write_text(plain_markdown(text, page, copy, root, number), encoding="utf-8")
    for path in sorted((copy / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        page = path.relative_to(copy).as_posix()
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                new = plain_markdown(text, page, copy, root, number)
                if new != text:
                    cell["source"] = new.splitlines(keepends=True) if isinstance(cell["source"], list) else new
        path.write_text(strip.notebook_json(notebook), encoding="utf-8")


# ------------------------------------------------------------------ ASSIGNMENT.md
def left_out_of_copies(text: str, where: str = "docs/assignments.md") -> str:
    """``text`` without the parts between :data:`NOT_IN_A_COPY`' two markers (each on a line of its own).

    >>> print(left_out_of_copies("a\\n<!-- not in a student copy: begin -->\\nb\\n"
    ...                          "<!-- not in a student copy: end -->\\nc\\n"))
    a
    c
    <BLANKLINE>
    """
    begin, end = NOT_IN_A_COPY
    kept, inside = [], False
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.strip() in (begin, end):
            if (line.strip() == begin) == inside:
                raise ValueError(f"{where}:{i}: {line.strip()} " + ("inside another" if inside else "without a begin"))
            inside = not inside
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"{where}: {begin} is never closed by {end}")
    return "".join(kept)


def only_where_needed(text: str, needs: str, where: str = "docs/assignments.md") -> str:
    """``text`` without the paragraphs that follow a marker ``<!-- only where grading needs: X -->`` (up to the next
    marker) whose ``X`` the assignment's ``needs`` (its "Grading needs") does not name.

    >>> print(only_where_needed("a\\n<!-- only where grading needs: PyTorch -->\\nb\\n"
    ...                         "<!-- only where grading needs: g++ -->\\nc\\n<!-- only where grading needs: end -->\\n"
    ...                         "d\\n", "NumPy; PyTorch for 5 of the 100 points"))
    a
    b
    d
    <BLANKLINE>
    """
    kept, what = [], None  # what: the need of the paragraphs we are in
    for line in text.splitlines(keepends=True):
        m = _ONLY_WHERE.match(line.strip())
        if m:
            what = None if m["what"] == "end" else m["what"]
        elif what is None or what in needs:
            kept.append(line)
    if what is not None:
        raise ValueError(f"{where}: the paragraphs only where grading needs {what} never end "
                         "(<!-- only where grading needs: end -->)")
    return "".join(kept)


def _section(text: str, heading: re.Pattern, where: str) -> str:
    r"""The section of ``text`` whose heading matches ``heading``, without its heading, up to the next heading of its
    level or above.

    >>> text = "# Page\n\n## A1 first\n### Its part\ntext\n## A2\n## A3\n"
    >>> _section(text, re.compile(r"^## A1\b"), "x.md"), _section(text, re.compile(r"^## A2\b"), "x.md")
    ('### Its part\ntext\n', '\n')
    """
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if heading.match(line)), None)
    if start is None:
        raise ValueError(f"{where}: no heading matching {heading.pattern!r}")
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next((j for j in range(start + 1, len(lines))
                if re.match(rf"^#{{1,{level}}} ", lines[j])), len(lines))
    return "".join(lines[start + 1:end]).strip("\n") + "\n"


def _table_row(text: str, tag: str, where: str) -> dict[str, str]:
    """The row of ``tag`` (``A2``) in the table of the seven assignments, by its header's names (the table's first
    line).

    >>> _table_row("| | What | Needs |\\n|---|---|---|\\n| A1 | a | b |\\n| A2 | c | d |\\n", "A2", "x.md")
    {'': 'A2', 'What': 'c', 'Needs': 'd'}
    """
    lines = text.splitlines()

    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    for i, line in enumerate(lines):
        if line.startswith("|") and cells(line)[0] == tag:
            top = i  # the table's first line, its header
            while top > 0 and lines[top - 1].startswith("|"):
                top -= 1
            return dict(zip(cells(lines[top]), cells(line)))
    raise ValueError(f"{where}: no row {tag} in the table of the assignments")


def points_of(tests: Path) -> dict[int, dict[str, float]]:
    """Assignment -> ``{file::test: points}`` of the test functions marked ``@pytest.mark.assignment(N, points=P)`` in
    the test files of ``tests`` (read from their source, in the order of the files and their lines)."""
    from .grade import graded_test_files  # here: grade imports strip, which imports this module
    try:
        from .plugin import graded  # here: the plugin imports pytest (a dev dependency), which importing this needs not
    except ModuleNotFoundError as e:
        if e.name != "pytest":
            raise
        raise ModuleNotFoundError("assignments: a copy's ASSIGNMENT.md counts each test's points as the grader does, "
                                  "which needs pytest: pip install -e \".[dev]\"", name="pytest") from e

    found: dict[int, dict[str, float]] = {}
    for path in graded_test_files(tests):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # (a test is a module's function)
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for d in node.decorator_list:
                if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "assignment":
                    try:
                        number, points = graded(*map(ast.literal_eval, d.args),
                                                **{k.arg: ast.literal_eval(k.value) for k in d.keywords})
                    except (TypeError, ValueError) as e:  # a marker's arguments not (number, points)
                        raise ValueError(f"tests/{path.name}::{node.name}: its assignment marker: {e}") from e
                    found.setdefault(number, {})[f"tests/{path.name}::{node.name}"] = points
    return found


def _bodies(root: Path, files, number: int, solution: bool) -> list[tuple]:
    """(file, line, function, region) of each body of assignment ``number`` in ``files`` (from the top of the checkout
    ``root``): the line its stub (or, in the solution copy, the body) starts on in the copy, and its ``Region`` (its
    hint, its stub); for a notebook, the cell (from 0) and no function."""
    found = []
    for rel in files:
        text = (root / rel).read_text(encoding="utf-8")
        if rel.endswith(".ipynb"):
            for k, cell in enumerate(json.loads(text)["cells"]):
                if cell["cell_type"] == "code":
                    found += [(rel, k, "", r) for r in strip.regions("".join(cell["source"]), f"{rel} cell {k}")
                              if r.number == number]
            continue
        shown = strip.stripped_lines(text, None if solution else number, rel)
        names = _functions(text) if rel.endswith(".py") else {}
        lines = text.splitlines()
        for r in strip.regions(text, rel):
            if r.number == number:
                line = 1 + sum(len(s) for s in shown[:r.begin - 1])
                found.append((rel, line, names.get(r.begin) or _cuda_function(lines[:r.begin]), r))
    return found


def _functions(text: str) -> dict[int, str]:
    r"""Line -> the qualified name of the innermost function or class holding it.

    >>> _functions("def f():\n    pass\n\nclass C:\n    def g(self):\n        pass\n")
    {1: 'f', 2: 'f', 4: 'C', 5: 'C.g', 6: 'C.g'}
    """
    names: dict[int, str] = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                for line in range(child.lineno, child.end_lineno + 1):
                    names[line] = name
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(text), "")
    return names


def _cuda_function(lines: list[str]) -> str:
    """The name of the CUDA function whose body the last of ``lines`` is in (kernels.py's source string)."""
    for line in reversed(lines):
        m = re.search(r"__(?:global|device)__\s+[\w\s*]*?\b(\w+)\s*\(", line)
        if m:
            return m[1]
    return ""


def assignment_page(root: Path, copy: Path, number: int, stubs: dict[str, int], solution: bool) -> str:
    """``ASSIGNMENT.md`` of assignment ``number``'s copy (see the module's docstring), whose ``stubs`` (file from its
    top -> how many of its bodies, as the build checked them against the catalogue) hold its bodies; ``copy`` holds
    the rest already. The solution copy's (``solution``) is the same page."""
    a = get(number)
    where = "docs/assignments.md"
    source = (root / where).read_text(encoding="utf-8")
    row = _table_row(source, a.tag, where)

    def from_docs(text):
        return plain_markdown(left_out_of_copies(text, where), where, copy, root, number, out=ASSIGNMENT)

    section = from_docs(_section(source, re.compile(rf"^### {a.tag}\b"), where))
    working = from_docs(only_where_needed(_section(source, re.compile(r"^## Working in a copy\b"), where),
                                          row["Grading needs"], where))
    bodies = _bodies(root, a.paths, number, solution)
    graded = [b for b in bodies if not b[0].endswith(".ipynb")]
    if any(name not in [b[2] for b in graded] for name in a.first):
        raise ValueError(f"assignments: A{number} starts with {a.first}, which are not all among its bodies")
    graded.sort(key=lambda b: a.first.index(b[2]) if b[2] in a.first else len(a.first))  # (stable: else as listed)
    first = graded[0][3]  # row 1's body, whose stub the page shows
    stub, cuda = textwrap.dedent(first.stub(number)), first.comment == "//"
    exercises = [b for b in bodies if b[0].endswith(".ipynb")]
    points = points_of(copy / "tests").get(number, {})
    if not _RUN_ALONE.search(working):
        raise ValueError(f"{where}: 'Working in a copy' has no example of a test run alone ({_RUN_ALONE.pattern})")
    working = _RUN_ALONE.sub(f'`python -m pytest "{next(iter(points))}"`', working)  # one of the assignment's own
    # the page of one assignment says its number where docs/assignments.md says N
    working = re.sub(r"`minitransformer assignments grade N \.` run inside the copy \(`N` your assignment's\s+number; ",
                     f"`minitransformer assignments grade {number} .` run inside the copy (", working)
    working = working.replace("`grade-AN.json`", f"`grade-A{number}.json`")
    pages = list(dict.fromkeys(re.findall(r"\]\((docs/[\w./-]+\.md)\)", section)))
    lines = [
        f"# {a.tag}: {a.title}\n",
        f"This folder is your copy of minitransformer for assignment {a.tag} (`minitransformer assignments build "
        f"{number}{' --solution' if solution else ''}`): the package, its tests, its notebooks and the "
        f"documentation's pages (`docs/`), with the {bodies_and_exercises(a.tag, stubs)} "
        f"{'kept (the solution copy)' if solution else 'taken out'}. What you write: "
        f"{row['What the student writes']}. What grading needs: {row['Grading needs']}.\n",
        "## What to write\n",
        "Each body below is a stub that raises its hint; the first reads"
        f"{' (C++, in the CUDA source)' if cuda else ''}:\n",
        f"```{'cpp' if cuda else 'python'}\n{stub}\n```\n",
        f"under {'the comment above its kernel' if cuda else 'its docstring'}, which states what it computes (the "
        "formula, the shapes, often a worked example). " + (
            f"In the order listed ({', '.join(f'`{n}`' for n in a.first)} first: the text below says why):\n"
            if a.first else "In the order listed, unless the text below says otherwise:\n"),
        "| | file:line | in | hint |\n|---|---|---|---|",
        *(f"| {k} | [`{rel}:{line}`]({rel}) | `{name}` | {_cell(r.hint)} |"
          for k, (rel, line, name, r) in enumerate(graded, start=1)),
        "",
    ]
    if exercises:
        lines += ["The notebooks' exercises (not graded: they help), by cell (counted from 0):\n",
                  *(f"- [`{rel}`]({rel}) cell {cell}: {_cell(r.hint)}" for rel, cell, _, r in exercises), ""]
    lines += ["## The assignment\n", section]
    lines += ["## Read\n",
              *(f"- Notebook: [`notebooks/{n}.ipynb`](notebooks/{n}.ipynb)" for n in a.notebooks),
              *(f"- {_title(copy / p) or p}: [`{p}`]({p})" for p in pages),
              "- All the formulas, each with its derivation: [`docs/formulas/index.md`](docs/formulas/index.md)", ""]
    lines += ["## Points\n",
              f"{sum(points.values()):g} points in all, each test's shared equally by its cases (the parameters "
              "in brackets after its name in the grade's table):\n",
              "| test | points |\n|---|---|",
              *(f"| `{test}` | {p:g} |" for test, p in points.items()), ""]
    lines += ["## Working in this copy, and checking yourself\n", working]
    return "\n".join(lines).replace("\n\n\n", "\n\n")


def bodies_and_exercises(tag: str, stubs: dict[str, int]) -> str:
    """How many bodies of assignment ``tag`` the package holds and how many exercises its notebooks, from ``stubs``
    (file -> how many), as the build and ``ASSIGNMENT.md`` both say it.

    >>> bodies_and_exercises("A3", {"minitransformer/nn/attention.py": 2, "notebooks/03_x.ipynb": 1})
    '2 bodies of A3 in the package and 1 notebook exercise'
    """
    package = sum(n for path, n in stubs.items() if not path.endswith(".ipynb"))
    notebooks = sum(n for path, n in stubs.items() if path.endswith(".ipynb"))
    said = f"{package} bod{'y' if package == 1 else 'ies'} of {tag} in the package"
    return said + (f" and {notebooks} notebook exercise{'' if notebooks == 1 else 's'}" if notebooks else "")


def _cell(text: str) -> str:
    """``text`` in a cell of a Markdown table."""
    return text.replace("|", "\\|")
