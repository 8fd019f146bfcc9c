"""Build the documentation site: ``python docs/build.py`` (HTML into ``docs/_build/html``).

One command, warnings are errors (``-W --keep-going``: every warning is listed, then the build
fails). Needs the ``docs`` extra: ``pip install -e ".[docs]"``.

    python docs/build.py                      # docs/_build/html/index.html
    python docs/build.py --out /tmp/site      # elsewhere
    python docs/build.py --incremental        # re-read only the pages that changed (quicker, but
                                              # warnings of unchanged pages are not shown again)
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def command(out: Path, builder: str = "html", incremental: bool = False, quiet: bool = True) -> list[str]:
    """The sphinx-build command line (also what ``tests/test_docs.py`` runs)."""
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", builder]
    if not incremental:
        cmd.append("-E")  # read every page again: a warning in an unchanged page must fail this build too
    if quiet:
        cmd.append("-q")  # warnings only (on stderr)
    return [*cmd, str(DOCS), str(out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS / "_build" / "html", help="output folder")
    parser.add_argument("--builder", default="html", help="a Sphinx builder (html, linkcheck, ...)")
    parser.add_argument("--incremental", action="store_true", help="re-read only the pages that changed")
    parser.add_argument("--verbose", action="store_true", help="Sphinx's progress too, not only its warnings")
    args = parser.parse_args(argv)
    missing = [m for m in ("sphinx", "myst_nb") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"docs/build.py: {', '.join(missing)} not installed; pip install -e '.[docs]'", file=sys.stderr)
        return 2
    code = subprocess.call(command(args.out, args.builder, args.incremental, quiet=not args.verbose))
    if code == 0 and args.builder == "html":
        print(f"built: {args.out / 'index.html'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
