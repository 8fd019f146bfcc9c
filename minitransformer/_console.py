"""What the package prints to a console whose encoding lacks its characters. The bottom layer, beside
``_arguments``: it imports nothing of the package, so the command line and ``python -m`` modules of any layer use
it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys


def print_what_the_console_can() -> None:
    """A character the console's encoding lacks prints as ``?`` instead of stopping the command: the demo draws the
    graph with box-drawing characters and a generated text holds whatever the corpus did, while Windows' cp1252 (a
    redirected output, an older terminal) and a POSIX C locale have none of them."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # a text file; not what a notebook or a test put in its place
            stream.reconfigure(errors="replace")


def quoted(argument) -> str:
    """``argument`` (a path, say) as it is typed in a command printed for the user to copy: quoted where it holds a
    space or a character the shell reads, as this system's shell wants it (cmd's ``"..."`` on Windows)."""
    argument = os.fspath(argument)
    if os.name != "nt":
        return shlex.quote(argument)
    said = subprocess.list2cmdline([argument])  # (quotes a space; not cmd's own &, |, <, >, ^, (, ): R&D would split)
    return f'"{argument}"' if not said.startswith('"') and any(c in argument for c in "&|<>^()") else said
