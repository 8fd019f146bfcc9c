"""The grading run, started by :func:`~minitransformer.assignments.grade` as a script in isolated mode::

    python -I runner.py FOLDER PYTEST_ARGS...

It runs pytest with the grader's plugin, the package ``minitransformer`` (and only that name) imported
from ``FOLDER``. A student's copy cannot stand in for the grader: ``-I`` keeps the copy off ``sys.path``
while Python starts (so no ``sitecustomize.py`` of its own runs), pytest and the plugin are imported
before anything of the copy can be, and then only ``minitransformer`` is looked up in the copy (a
``pytest.py`` or ``json.py`` beside it is never seen). The student's code still runs in this process
once the tests import it: see "What grading guards against" in ``docs/assignments.md``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path


class PackageFinder:
    """Finds the package ``minitransformer`` in one folder, ahead of every other place, and nothing else there."""

    def __init__(self, folder):
        self.folder = str(folder)

    def find_spec(self, name, path=None, target=None):
        if name != "minitransformer":
            return None  # its submodules come from the package's own __path__, in the folder
        return importlib.machinery.PathFinder.find_spec(name, [self.folder])


def main(argv: list[str]) -> int:
    """Run pytest with ``argv[1:]``, the plugin loaded and ``minitransformer`` from the folder ``argv[0]``."""
    folder, args = Path(argv[0]).resolve(), argv[1:]
    # -I ignores PYTHONPATH; the grader's own (maybe how this Python finds pytest) is kept, the folder is not
    sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != folder]
    import pytest

    spec = importlib.util.spec_from_file_location("_minitransformer_grader", Path(__file__).with_name("plugin.py"))
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    sys.meta_path.insert(0, PackageFinder(folder))
    return int(pytest.main(args, plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
