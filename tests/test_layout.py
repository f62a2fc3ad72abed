"""The package layout: vghlib is the science, tools/ the book's tooling, and vghlib imports none
of the tooling.

The install cell of every notebook installs vghlib on Colab and Binder; what it installs must not
bring a browser harness, a Sphinx extension or the notebook generator with it. The source of every
module of vghlib is parsed (``ast``), so an import inside a function counts as one at the top.
"""

import ast
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
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module",
                                                                                "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            out.add(node.args[0].value.split(".")[0])
    return out


def vghlib_sources() -> list[Path]:
    return sorted((REPO_ROOT / "vghlib").rglob("*.py"))


def test_vghlib_imports_no_tooling():
    paths = vghlib_sources()
    assert len(paths) >= 15
    found = {p.relative_to(REPO_ROOT).as_posix(): sorted(imported(p.read_text()) & TOOLING)
             for p in paths}
    assert {p: names for p, names in found.items() if names} == {}


@pytest.mark.parametrize("source, name", [
    ("import selenium.webdriver\n", "selenium"),
    ("def f():\n    from sphinx.application import Sphinx\n", "sphinx"),
    ("import numpy as np, nbformat\n", "nbformat"),
    ("try:\n    import yaml\nexcept ImportError:\n    yaml = None\n", "yaml"),
    ("from tools import notebooks\n", "tools"),
    ("import importlib\nm = importlib.import_module('tools.browser')\n", "tools"),
])
def test_a_planted_tooling_import_is_flagged(source, name):
    # negative control: each of these, planted in a module of vghlib, would fail the test above
    assert imported(source) & TOOLING == {name}


def test_the_library_imports_are_not_flagged():
    # control: imports of the library itself and of its dependencies are not tooling
    src = ("from . import stats\nfrom vghlib.env import REPO_ROOT\n"
           "import torch\nimport numpy as np\n")
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
