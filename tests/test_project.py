"""The project's promises about itself: the README's commands, CI calling them, package metadata."""

from __future__ import annotations

import ast
import configparser
import doctest
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.single_backend


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_exactly_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert demo.startswith("python3 -m venv .venv") and "minitransformer demo" in demo
    assert tests.startswith("python3 -m venv .venv") and "pytest" in tests


def test_the_readmes_first_look_runs_and_prints_what_its_comments_say(capsys):
    """The README's first Python block: the gradient it prints is the one its comment gives, gradcheck passes."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A first look\n\n```python\n(.*?)```", readme, flags=re.S)[1]
    *lines, last = block.strip().splitlines()
    namespace = {}
    exec("\n".join(lines), namespace)
    printed = [float(v) for v in re.findall(r"-?\d+\.\d+", capsys.readouterr().out)]
    commented = [float(v) for v in re.findall(r"-?\d+\.\d+", block.split("computed by the engine:")[1].split("\n")[0])]
    assert printed == pytest.approx(commented, abs=5e-4) and len(printed) == 4
    assert eval(last.split("#")[0], namespace) is True and last.endswith("# True")


def test_every_command_line_the_readme_shows_parses():
    """The README's ``minitransformer ...`` lines (train, evaluate, generate, assignments) are commands the
    parser takes: an option renamed or removed fails here, not on a reader's first try."""
    import shlex

    from minitransformer.cli import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line.split("  #")[0].strip() for block in re.findall(r"^```(?:text|bash)\n(.*?)^```", text, re.S | re.M)
             for line in block.splitlines() if line.startswith("minitransformer ")]
    assert len(lines) >= 10
    from minitransformer.train.tasks import settings

    for line in lines:
        try:
            args = build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"the README's command does not parse: {line}")
        if args.command == "train" and args.set:  # a --set key the task does not have: refused when it runs
            settings(args.task, **{"pairs": getattr(args, "pairs", None), **dict(args.set)})


@pytest.mark.needs(".ci")
def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_commands()[1] in ci.splitlines()


@pytest.mark.needs(".ci")
def test_ci_pins_torch_and_lints():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    installs = [line for line in ci.splitlines() if "pip install" in line and "torch" in line]
    assert installs, "CI should install the PyTorch CPU oracle"
    # an unpinned torch would download a multi-GB CUDA build
    assert all(re.search(r"torch==2\.13\.0\b", line) for line in installs), installs
    assert "ruff check" in ci


@pytest.mark.needs("docs/conf.py")  # the site's sources: a copy's pages are rewritten as plain Markdown
def test_the_readme_links_the_documentation_by_relative_links_to_files_that_exist():
    """GitHub shows README.md, not the Sphinx site: it reaches the pages by plain Markdown links (a MyST role such
    as {doc}`errata` shows there as raw text), and each link names a file or folder of the repository."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert {"docs/getting-started.md", "docs/training.md", "docs/from-pytorch.md"} <= set(links), links
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing, f"README.md links what the repository does not hold: {missing}"
    assert not re.findall(r"(?<!`)\{(?:doc|class|func|meth|data|ref)\}`", text), "a MyST role in README.md"


def test_setup_cfg_extras():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    extras = cfg["options.extras_require"]
    assert "cupy-cuda12x" in extras["cuda12"]
    assert "cupy-cuda13x" in extras["cuda13"]
    assert "jupyter" in extras["notebooks"] and "matplotlib" in extras["notebooks"]
    # notebook 07 compares NumPy with array_api_strict where there is no GPU: without it, sections 3 and 4 fail
    assert "array-api-strict" in extras["notebooks"]
    assert "pytest" in extras["dev"] and "array-api-strict" in extras["dev"]
    assert cfg["options"]["python_requires"] == ">=3.10"


@pytest.mark.needs("MANIFEST.in", "docs", "tools", ".ci")
def test_the_source_distribution_carries_the_tests_and_what_they_read(tmp_path):
    """setuptools alone puts tests/test_*.py in the sdist but not conftest.py, references.py or tests/data: a
    packager running the tests from it got "fixture 'rng' not found". MANIFEST.in grafts them, the notebooks, docs
    and tools the tests check, and the licence; no bytecode."""
    src = tmp_path / "src"
    for name in ("minitransformer", "tests", "notebooks", "docs", "tools", ".ci"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns(".hypothesis", ".pytest_cache",
                                                                             "_build", "*.egg-info"))
    for name in ("README.md", "setup.cfg", "MANIFEST.in", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    (src / "tests" / "__pycache__").mkdir(exist_ok=True)
    (src / "tests" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "sdist", "--dist-dir",
                           str(tmp_path / "dist")], cwd=src, capture_output=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    (sdist,) = (tmp_path / "dist").glob("minitransformer-*.tar.gz")
    with tarfile.open(sdist) as tar:
        held = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*")
              if p.is_file() and not {"__pycache__", ".hypothesis", ".pytest_cache"} & set(p.parts)}
    assert {"tests/conftest.py", "tests/references.py", "tests/data/en-fr.tsv"} <= wanted
    assert not wanted - held, f"the sdist lacks {sorted(wanted - held)}"
    assert {"LICENSE", "README.md", "notebooks/01_autograd.ipynb", "tools/make_notebooks.py"} <= held
    assert not [name for name in held if "__pycache__" in name or name.endswith(".pyc")]


def test_the_wheel_carries_the_py_typed_marker(tmp_path):
    """Without minitransformer/py.typed a type checker ignores the installed package ("missing library stubs or
    py.typed marker", PEP 561): every name of it Any, no misspelt keyword flagged. setup.cfg's package_data ships
    it, with the data files."""
    pytest.importorskip("setuptools.command.bdist_wheel", reason="setuptools >= 70.1 builds wheels without `wheel`")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "minitransformer", src / "minitransformer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("README.md", "setup.cfg", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "bdist_wheel",
                           "--dist-dir", str(tmp_path / "dist")], cwd=src, capture_output=True, encoding="utf-8",
                          timeout=120)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("minitransformer-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        held = set(whl.namelist())
    assert {"minitransformer/py.typed", "minitransformer/data/tiny.txt"} <= held


def test_the_licence_ships_with_the_package_metadata():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    assert cfg["metadata"]["license"] == "MIT" and cfg["metadata"]["license_files"].split() == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


@pytest.mark.needs(".ci")
def test_ci_tests_the_lowest_version_setup_cfg_allows_of_each_package():
    """Each ``name>=X`` of setup.cfg (install_requires and the extras CI installs) is pinned to X in
    .ci/lowest.txt, the constraints CI's second environment is built with: a bound raised in one place only
    would leave CI testing a version the package refuses, or one it no longer allows."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    required = [cfg["options"]["install_requires"], *(cfg["options.extras_require"][k] for k in ("dev", "docs"))]
    bounds = dict(re.findall(r"^([A-Za-z0-9_.-]+)>=([0-9.]+)\s*$", "\n".join(required), flags=re.M))
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([0-9.]+?)(?:\.\*)?\s*$",
                             (ROOT / ".ci" / "lowest.txt").read_text(encoding="utf-8"), flags=re.M))
    def release(version: str) -> tuple:  # 7 == 7.0 == 7.0.0
        numbers = [int(n) for n in version.split(".")]
        while numbers and numbers[-1] == 0:
            numbers.pop()
        return tuple(numbers)

    assert bounds and {name: release(bounds[name]) for name in pinned if name in bounds} == {
        name: release(version) for name, version in pinned.items() if name in bounds}
    assert set(bounds) <= set(pinned), f"no lowest version for {sorted(set(bounds) - set(pinned))}"
    assert "-c .ci/lowest.txt" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("folder", ["minitransformer", "tests", "notebooks", "docs"])
@pytest.mark.needs("tools")  # the repository's layout: a student copy has no tools/
def test_top_level_layout(folder):
    assert (ROOT / folder).is_dir()


#: DESIGN.md's layers, bottom to top; the command line's modules ("cli": the commands, the demo, the benchmark,
#: the examples, the course kit) sit above them all and may import any; ``testing`` holds gradcheck's helpers;
#: ``_arguments``, the checks of plain arguments every layer shares, imports nothing of the package, nor do
#: ``_console`` (what a console lacking a character prints) and ``cuda_emulator``, CUDA C++ run on the CPU (the
#: kernels' tests, A7 and notebook 12 use it)
LAYERS = {"_arguments": 0, "_console": 0, "backend": 0, "kernels": 0, "cuda_emulator": 0, "autograd": 1,
          "testing": 1.5, "functional": 2, "nn": 3, "optim": 4, "data": 5, "train": 6, "viz": 7, "worked_examples": 7,
          **dict.fromkeys(("cli", "__main__", "__init__", "demo", "bench", "info", "examples", "assignments"), 8)}


def _imported_packages(path: Path) -> list[tuple[int, str]]:
    """``(line, top-level module of minitransformer)`` of every import of the package in ``path``, relative
    (``from ..viz import x``) or absolute (``import minitransformer.viz``, ``from minitransformer import viz``),
    inside functions too. ``import minitransformer as mt`` counts as the package's ``__init__``."""
    package = path.relative_to(ROOT / "minitransformer").parts[:-1]  # e.g. ("train",)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[:len(package) - (node.level - 1)]) + (node.module.split(".") if node.module else [])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "minitransformer":
            base = node.module.split(".")[1:]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names if alias.name.split(".")[0] == "minitransformer"]
            found += [(node.lineno, parts[1] if len(parts) > 1 else "__init__") for parts in names]
            continue
        else:
            continue
        tops = [base[0]] if base else [alias.name for alias in node.names]  # `from .. import viz`
        found += [(node.lineno, top.removesuffix(".py")) for top in tops]
    return found


def test_each_layer_imports_only_from_the_layers_below_it():
    """DESIGN.md: train does not import viz (its pictures are drawn by the caller), nn does not import optim, ...
    and no module of the package is left without a layer."""
    wrong, unknown = [], []
    for path in sorted((ROOT / "minitransformer").rglob("*.py")):
        layer = path.relative_to(ROOT / "minitransformer").parts[0].removesuffix(".py")
        if layer not in LAYERS:
            unknown.append(layer)
            continue
        for line, top in _imported_packages(path):
            if top not in LAYERS:
                unknown.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
            elif LAYERS[top] > LAYERS[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert not unknown, f"give these a layer in LAYERS: {sorted(set(unknown))}"
    assert not wrong, wrong


def test_the_layer_check_sees_every_form_of_import(tmp_path, monkeypatch):
    """An upward import, relative or absolute, is found; a test that could not fail would prove nothing."""
    module = tmp_path / "minitransformer" / "train" / "run.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ..cli import main\nimport minitransformer.viz\nfrom minitransformer import demo\n"
                      "import minitransformer as mt\ndef f():\n    from .. import viz\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _imported_packages(module) == [(1, "cli"), (2, "viz"), (3, "demo"), (4, "__init__"), (6, "viz")]


def test_the_layers_above_optim_are_imported_when_first_named_and_not_before():
    """``mt.train.save_checkpoint`` (what ``torch.save``'s hint says) and ``mt.viz`` work after ``import
    minitransformer as mt`` alone, as ``np.linalg`` does, while the import itself leaves them, and matplotlib, out;
    a name neither a layer nor torch's gets Python's own error."""
    code = ("import sys, minitransformer as mt\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'minitransformer')"
            " and m.count('.') < 2 and m.split('.')[-1] in ('matplotlib', 'data', 'train', 'viz', 'testing')))\n"
            "print(mt.train.save_checkpoint.__module__, mt.viz.attention_heatmap.__module__, mt.data is "
            "sys.modules['minitransformer.data'], mt.testing.__name__, {'data', 'train', 'viz', 'testing'} <= "
            "set(dir(mt)))\n"
            "print('matplotlib' in sys.modules)\n"
            "try:\n    mt.trian\nexcept AttributeError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[]", "minitransformer.train.checkpoint minitransformer.viz.attention True minitransformer.testing True",
        "True", "module 'minitransformer' has no attribute 'trian'"]


def test_dir_of_the_package_lists_its_names_and_not_the_modules_it_uses():
    """dir(mt) listed importlib, imported at the top of __init__ for the lazy layers: the public names it lists are
    __all__, the layers imported when first named, and autograd (imported by what __all__ takes from it)."""
    code = ("import minitransformer as mt\n"
            "print(sorted(n for n in dir(mt) if not n.startswith('_') and n not in mt.__all__))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['autograd', 'data', 'testing', 'train', 'viz']"]


@pytest.mark.needs("tools")
def test_the_gpu_check_runs_a_step_and_names_every_step_it_has(tmp_path):
    """tools/gpu_check.sh's machinery, run here with the one step a CPU can do (info)."""
    script = (ROOT / "tools" / "gpu_check.sh").read_text(encoding="utf-8")
    steps = re.findall(r"^step ([\w-]+) \d+ ", script, flags=re.M)
    assert {"info", "tests", "equivalence", "train", "bench", "models", "models-tf32", "models-formulas",
            "train-formulas", "profile", "kernels"} == set(steps)
    header = script.split("set -u")[0]
    for name in steps:  # each one explained at the top
        assert re.search(rf"\b{re.escape(name)} \(", header), name
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh")], capture_output=True, encoding="utf-8",
                          env={**os.environ, "STEPS": "info", "OUT": str(tmp_path),
                               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^info\s+rc=0\s", done.stdout, flags=re.M)
    assert "numpy" in (tmp_path / "info.log").read_text(encoding="utf-8")



@pytest.mark.needs("tools")
def test_the_gpu_checks_tests_step_runs_every_file_and_fails_when_one_test_fails(tmp_path):
    """The tests step (TESTS and BACKEND point it at a folder of our own and NumPy): each file runs, in pytest-xdist's
    workers or, without xdist, in runs of its own (pytest_in_groups); a single_backend test is left out."""
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "conftest.py").write_text("def pytest_addoption(parser):\n    parser.addoption('--backends')\n\n\n"
                                        "def pytest_configure(config):\n"
                                        "    config.addinivalue_line('markers', 'single_backend: NumPy alone')\n",
                                        encoding="utf-8")
    for i in range(3):
        (folder / f"test_{i}.py").write_text(f"def test_{i}():\n    print('ran {i}')\n", encoding="utf-8")
    (folder / "test_marked.py").write_text("import pytest\n\n\n@pytest.mark.single_backend\ndef test_left_out():\n"
                                           "    pass\n", encoding="utf-8")

    def check():
        env = {**os.environ, "STEPS": "tests", "TESTS": str(folder), "BACKEND": "numpy", "OUT": str(tmp_path),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh")], capture_output=True, encoding="utf-8",
                              env=env, timeout=120)
        log = (tmp_path / "tests.log").read_text(encoding="utf-8")
        summaries = log.split("runs' last lines")[-1]  # pytest_in_groups repeats each run's last line there
        return done, log, sum(int(n) for n in re.findall(r"(\d+) passed", summaries))

    done, log, passed = check()
    assert done.returncode == 0 and re.search(r"^tests\s+rc=0\s", done.stdout, flags=re.M), done.stdout + log
    assert passed == 3 and "test_left_out" not in log, log
    (folder / "test_1.py").write_text("def test_1():\n    assert 1 == 2\n", encoding="utf-8")
    done, log, passed = check()
    assert done.returncode == 1 and re.search(r"^tests\s+rc=1\s", done.stdout, flags=re.M), done.stdout + log
    assert "FAILED" in log and "test_1" in log and passed == 2, log

# ------------------------------------------------------------------ text files on every OS
_SUBPROCESS = {"run", "Popen", "check_output", "check_call", "call"}


def _text_mode(call: ast.Call, mode_at: int) -> bool:
    """Whether ``call`` (an ``open``) opens in text mode: its mode (argument ``mode_at`` or ``mode=``) is absent or a
    string without "b". A mode computed at run time counts as binary: it cannot be read here."""
    mode = call.args[mode_at] if len(call.args) > mode_at else next(
        (k.value for k in call.keywords if k.arg == "mode"), ast.Constant("r"))
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" not in mode.value


def _unspecified_encodings(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` of each call in ``source`` that reads or writes text in the locale's encoding (Windows'
    cp1252 there, where this project's files are UTF-8): ``open``, ``Path.open/read_text/write_text``,
    ``os.fdopen``, ``io.TextIOWrapper`` and ``subprocess`` with ``text=True``, none given ``encoding=``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg in ("encoding", None) for k in node.keywords):
            continue  # None: a **kwargs that may carry it
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else None
        if name == "open" and owner != "os":  # builtin open(file, mode), path.open(mode); os.open is bytes
            text = _text_mode(node, 1 if isinstance(f, ast.Name) or owner in ("io", "codecs") else 0)
        elif name == "fdopen":
            text = _text_mode(node, 1)
        elif name in ("read_text", "write_text"):
            text = isinstance(f, ast.Attribute)  # Path's; read_text(path) is the corpus reader (UTF-8 itself)
        elif name == "TextIOWrapper":
            text = True
        elif name in _SUBPROCESS and owner == "subprocess":
            text = any(k.arg in ("text", "universal_newlines") and isinstance(k.value, ast.Constant) and k.value.value
                       for k in node.keywords)
        else:
            text = False
        if text:
            found.append((node.lineno, ast.unparse(f)))
    return found


def _python_sources():
    """The project's Python files: the package, its tests, tools/ and docs/ where this checkout has them."""
    for folder in ("minitransformer", "tests", "tools", "docs"):
        yield from sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).is_dir() else []


def test_every_text_file_and_pipe_names_its_encoding():
    """Text read or written in the locale's encoding works here (UTF-8) and breaks on Windows (cp1252: README.md's
    dashes, the worked examples' Chinese) or in a POSIX C locale: every call says ``encoding="utf-8"``, docstring
    examples included (doctests run too). What ``python -X warn_default_encoding`` warns of, found without running."""
    parser = doctest.DocTestParser()
    wrong = []
    for path in _python_sources():
        source = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        wrong += [f"{where}:{line}: {what}" for line, what in _unspecified_encodings(source)]
        for node in ast.walk(ast.parse(source)):
            doc = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) else None
            examples = parser.get_examples(doc) if doc else []
            example_code = "\n".join(e.source for e in examples)
            wrong += [f"{where}:{node.lineno if hasattr(node, 'lineno') else 1} (docstring): {what}"
                      for _, what in _unspecified_encodings(example_code)]
    assert not wrong, "give these encoding=\"utf-8\":\n" + "\n".join(wrong)


def test_the_encoding_check_sees_each_way_to_open_text():
    source = ("open(p)\nopen(p, 'w')\nopen(p, 'rb')\nopen(p, mode='a')\nPath(p).open()\nos.open(p, flags)\n"
              "p.read_text()\np.write_text(s)\np.read_bytes()\nread_text(p)\nos.fdopen(fd, 'w')\n"
              "os.fdopen(fd, 'wb')\nio.TextIOWrapper(b)\nsubprocess.run(c, text=True)\nsubprocess.run(c)\n"
              "open(p, encoding='utf-8')\np.read_text(encoding='utf-8')\n"
              "subprocess.run(c, text=True, encoding='utf-8')\nopen(p, **kw)\n")
    assert [line for line, _ in _unspecified_encodings(source)] == [1, 2, 4, 5, 7, 8, 11, 13, 14]
