"""``minitransformer assignments list | build N OUT | grade N [PATH]``: the instructor's two commands."""

from __future__ import annotations

import sys
from pathlib import Path

from .._console import quoted
from .catalog import ASSIGNMENTS, get
from .grade import format_table, grade
from .handout import ASSIGNMENT, bodies_and_exercises
from .strip import build


def main(args) -> int:
    """Run the ``assignments`` sub-command parsed into ``args``; 0 when it did its work, 2 on a mistake."""
    try:
        if args.action == "list":
            for a in ASSIGNMENTS:
                print(f"{a.tag}  {a.title}  (notebooks: {', '.join(a.notebooks) or 'none'})")
        elif args.action == "build":
            a = get(args.number)
            stubs = build(a.number, args.out, solution=args.solution)
            what = "solution copy" if args.solution else "student copy"
            print(f"{a.tag} {what} in {args.out}: {bodies_and_exercises(a.tag, stubs)}, "
                  f"{'kept' if args.solution else 'to write'}, in")
            for path, n in stubs.items():  # the notebooks' exercises help; the grade runs the package's tests
                aside = "  (not graded: an exercise beside the library)" if path.endswith(".ipynb") else ""
                print(f"  {path}: {n}{aside}")
            if args.solution:  # the instructor's copy: every body written, the grade the full marks
                print(f"every body is written here; its grade, the full marks, is: "
                      f"minitransformer assignments grade {a.number} {quoted(args.out)}")
            else:
                print(f"the student starts with {Path(args.out) / ASSIGNMENT}; grade it with: "
                      f"minitransformer assignments grade {a.number} {quoted(args.out)}")
        else:
            g = grade(args.number, args.path, timeout=args.timeout, case_timeout=args.case_timeout)
            print(format_table(g))
            out = Path(args.json or f"grade-{get(args.number).tag}.json")
            out.write_text(g.to_json() + "\n", encoding="utf-8")
            print(f"\nwritten to {out}")
            if g.problem:
                return 1
    except (ValueError, OSError, ModuleNotFoundError, RuntimeError) as e:
        # "assignments build: ...": the command's name once, not twice; the system's errors as "PATH: what"
        message = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename and e.strerror else str(e)
        print(f"minitransformer {message}" if message.startswith("assignments") else
              f"minitransformer assignments: {message}", file=sys.stderr)
        return 2
    return 0
