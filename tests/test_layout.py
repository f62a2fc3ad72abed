"""The package layout: vghlib is the science, tools/ the book's tooling, and vghlib imports none
of the tooling.

The install cell of every notebook installs vghlib on Colab and Binder; what it installs must not
bring a browser harness, a Sphinx extension or the notebook generator with it. The source of every
module of vghlib is parsed (``ast``), so an import inside a function counts as one at the top.
"""

import ast
import json
from pathlib import Path

import pytest

from tools import REPO_ROOT

#: Top-level packages that only the book's tooling uses.
TOOLING = {"selenium", "sphinx", "nbformat", "yaml", "tools"}


def imported(source: str, package: str = "vghlib") -> set[str]:
    """The top-level names of the modules that ``source`` imports (relative: ``package``)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add(package if node.level else node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.add(node.args[0].value.split(".")[0])
    return out


def vghlib_sources() -> list[Path]:
    return sorted((REPO_ROOT / "vghlib").rglob("*.py"))


def test_vghlib_imports_no_tooling():
    paths = vghlib_sources()
    assert len(paths) >= 15
    found = {
        p.relative_to(REPO_ROOT).as_posix(): sorted(imported(p.read_text()) & TOOLING)
        for p in paths
    }
    assert {p: names for p, names in found.items() if names} == {}


@pytest.mark.parametrize(
    "source, name",
    [
        ("import selenium.webdriver\n", "selenium"),
        ("def f():\n    from sphinx.application import Sphinx\n", "sphinx"),
        ("import numpy as np, nbformat\n", "nbformat"),
        ("try:\n    import yaml\nexcept ImportError:\n    yaml = None\n", "yaml"),
        ("from tools import notebooks\n", "tools"),
        ("import importlib\nm = importlib.import_module('tools.browser')\n", "tools"),
    ],
)
def test_a_planted_tooling_import_is_flagged(source, name):
    # negative control: each of these, planted in a module of vghlib, would fail the test above
    assert imported(source) & TOOLING == {name}


def test_the_library_imports_are_not_flagged():
    # control: imports of the library itself and of its dependencies are not tooling
    src = (
        "from . import stats\nfrom vghlib.env import REPO_ROOT\nimport torch\nimport numpy as np\n"
    )
    assert imported(src) & TOOLING == set()
    assert imported(src) == {"vghlib", "torch", "numpy"}


def test_the_tools_live_outside_vghlib():
    for name in ("browser", "sphinxext", "notebooks", "student", "requirements"):
        assert (REPO_ROOT / "tools" / f"{name}.py").is_file()
        assert not (REPO_ROOT / "vghlib" / f"{name}.py").exists()
    assert not (REPO_ROOT / "vghlib" / "course.py").exists()
    # and the package that pip installs holds only vghlib
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert 'include = ["vghlib*"]' in pyproject


# ---------------------------------------------------------------------------------------------
# No module reaches into another module's private names


def private_uses(source: str, project=("vghlib", "tools")) -> list[str]:
    """``module._name`` uses of the project's modules in ``source``, by import or attribute.

    Flags ``from vghlib.m import _x``, ``import vghlib.m as m`` (or ``from vghlib import m``)
    followed by ``m._x``, and ``vghlib.m._x``. Dunder names (``__version__``) are public.
    """

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    aliases, out = set(), []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and not node.level
            and node.module.split(".")[0] in project
        ):
            for a in node.names:
                if private(a.name):
                    out.append(f"{node.module}.{a.name}")
                elif (REPO_ROOT / node.module.replace(".", "/") / f"{a.name}.py").is_file():
                    aliases.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in project:
                    aliases.add(a.asname or a.name)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            parts = []
            while isinstance(base, ast.Attribute):
                parts.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name):
                dotted = ".".join([base.id, *reversed(parts)])
                if dotted in aliases or base.id in project:
                    out.append(f"{dotted}.{node.attr}")
    return out


def project_sources() -> dict[str, str]:
    """Every Python file of the library, the tooling, the benchmarks and the book, and the code
    cells of every notebook. (Tests are left out: a module's tests may test its private helpers.)"""
    out = {}
    for folder in ("vghlib", "tools", "benchmarks", "book"):
        for p in sorted((REPO_ROOT / folder).rglob("*.py")):
            out[p.relative_to(REPO_ROOT).as_posix()] = p.read_text()
    for p in sorted((REPO_ROOT / "book").rglob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        lines = [
            ln for c in code for ln in c.splitlines() if not ln.lstrip().startswith(("%", "!"))
        ]
        out[p.relative_to(REPO_ROOT).as_posix()] = "\n".join(lines)
    return out


def test_no_module_uses_another_modules_private_names():
    sources = project_sources()
    assert len(sources) > 40 and any(k.endswith(".ipynb") for k in sources)
    found = {path: uses for path, src in sources.items() if (uses := private_uses(src))}
    assert found == {}


@pytest.mark.parametrize(
    "source, use",
    [
        ("from vghlib.train import _rows\n", "vghlib.train._rows"),
        ("from vghlib import train\nx = train._to(b, 'cpu')\n", "train._to"),
        ("import vghlib.impact as I\nI._check_alpha(2.0)\n", "I._check_alpha"),
        ("import vghlib.sweep\nvghlib.sweep._batches(t, c)\n", "vghlib.sweep._batches"),
    ],
)
def test_a_planted_private_use_is_flagged(source, use):
    # negative control: each line would fail the test above; a public name or a dunder would not
    assert private_uses(source) == [use]
    assert (
        private_uses(
            "from vghlib import train\ntrain.train_grpo\nimport vghlib\nvghlib.__version__\n"
        )
        == []
    )
