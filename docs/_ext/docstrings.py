"""A local Sphinx extension: the library's docstrings, read the way their authors wrote them.

The docstrings follow numpydoc (``Parameters`` / ``Returns`` / ``Attributes`` sections) with
three habits of this project that a numpydoc parser (napoleon) would misread:

* a closing doctest (``>>>``) right after a section, without an ``Examples`` heading: napoleon
  would read its lines as more parameters or return values;
* a paragraph after a section (``Shapes: (batch, seq, d_model) -> ...``, a remark), which napoleon
  would read as one more entry: it gets a ``Notes`` heading;
* shapes with a star, ``(N, *rest)``, which reStructuredText reads as the start of an emphasis.

Each fix only adds a heading or a backslash, before napoleon parses the docstring; a docstring
that already has its headings is left unchanged. A malformed simple table (text running into
the gap between two columns) is laid out again, so one overlong cell does not break the build.
"""

from __future__ import annotations

import re

#: numpydoc sections whose body is a list of entries (``name : type`` + indented description)
ENTRY_SECTIONS = {
    "Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Raises", "Warns", "Warnings",
    "Attributes", "Methods", "Keyword Arguments",
}
_RULE = re.compile(r"^-{3,}$")
_ENTRY = re.compile(r"^\**[\w.\[\]]+(, \**[\w.\[\]]+)*( : .*)?$")  # `name`, `a, b : type`, `**kwargs`, `Tensor`
_STAR_ARG = re.compile(r"(?:(?<=[(\[])|(?<=, ))\*(?=\w+[),\]])")  # the * of `(N, *rest)`, `(*I)`
_LITERAL = re.compile(r"(``.+?``|`[^`]+`)")  # ``code`` and roles: left alone
_BORDER = re.compile(r"^(\s*)(=+)( +=+)+\s*$")


def _heading(lines: list[str], i: int) -> str | None:
    """The section heading whose underline is ``lines[i + 1]``, if ``lines[i]`` is one."""
    if i + 1 < len(lines) and _RULE.match(lines[i + 1].strip()) and lines[i].strip() and lines[i] == lines[i].lstrip():
        return lines[i].strip()
    return None


def add_section_headings(lines: list[str]) -> list[str]:
    """A copy of ``lines`` with ``Examples`` before a doctest and ``Notes`` before a paragraph that ends a section."""
    out: list[str] = []
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _heading(lines, i)
        if heading is not None:
            section = heading
            out += [line, lines[i + 1]]
            i += 2
            continue
        starts_block = line and line == line.lstrip() and (i == 0 or not lines[i - 1].strip())
        if starts_block and line.startswith(">>>") and section not in (None, "Examples"):
            section = "Examples"
            out += ["Examples", "--------", ""]
        elif starts_block and section in ENTRY_SECTIONS:
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            described = nxt.strip() and nxt != nxt.lstrip()  # an entry's description is indented under it
            if not described and not _ENTRY.match(line):
                section = "Notes"
                out += ["Notes", "-----", ""]
        out.append(line)
        i += 1
    return out


def escape_star_args(line: str) -> str:
    """``(N, *rest)`` -> ``(N, \\*rest)`` outside literals and roles (no emphasis starts there)."""
    parts = _LITERAL.split(line)
    return "".join(p if k % 2 else _STAR_ARG.sub(r"\\*", p) for k, p in enumerate(parts))


def relayout_simple_tables(lines: list[str]) -> list[str]:
    """Simple tables whose cells run into the gap between columns, laid out again with wide enough columns."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _BORDER.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].strip():  # a table runs to the next blank line
            j += 1
        table, i = lines[i:j], j
        spans = [(s.start(), s.end()) for s in re.finditer(r"=+", table[0])]
        rows = [row for row in table if not _BORDER.match(row)]
        if not any(row[e:s].strip() for row in rows for (_, e), (s, _) in zip(spans, spans[1:])):
            out += table
            continue
        starts = [s for s, _ in spans]
        cells = {k: [row[s:t].strip() for s, t in zip(starts, [*starts[1:], None])] for k, row in enumerate(table)}
        widths = [max([e - s, *(len(c[n]) for k, c in cells.items() if not _BORDER.match(table[k]))])
                  for n, (s, e) in enumerate(spans)]
        indent = m.group(1)
        for k, row in enumerate(table):
            if _BORDER.match(row):
                out.append(indent + "  ".join("=" * w for w in widths))
            else:
                out.append(indent + "  ".join(c.ljust(w) for c, w in zip(cells[k], widths)).rstrip())
    return out


def process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    """``autodoc-process-docstring`` handler: the fixes above, in place."""
    fixed = add_section_headings(relayout_simple_tables([escape_star_args(line) for line in lines]))
    lines[:] = fixed


def setup(app):
    app.connect("autodoc-process-docstring", process_docstring, priority=400)  # before napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
