"""The book's configuration makes a failing cell or a Sphinx warning fail the build.

A two-page book is built in a temporary folder with this repository's _config.yml (execution,
extensions, macros; the book's own extension still loaded from tools/) and the same command as
`make book`. The control builds; a notebook with a
raising cell, and a page with a broken cross-reference, must each make the build fail.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import sphinxext

ROOT = Path(__file__).resolve().parent.parent
JB = Path(sys.executable).parent / "jupyter-book"


def make_book(tmp_path: Path, code: str, page_text: str) -> Path:
    book = tmp_path / "mini"
    (book / "book").mkdir(parents=True)
    (book / "_config.yml").write_text(sphinxext.config_for_copy(ROOT / "_config.yml"))
    shutil.copy(ROOT / "book" / "references.bib", book / "book" / "references.bib")
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nb\n"
    )
    (book / "book" / "intro.md").write_text(page_text)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A notebook\n\nWith $\\E[x]$ from the macros."),
        nbformat.v4.new_code_cell(code),
    ]
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(nb, book / "book" / "nb.ipynb")
    return book


def build(book: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(JB), "build", ".", "--warningiserror", "--keep-going"],
        cwd=book,
        capture_output=True,
        text=True,
        timeout=600,
    )


GOOD_PAGE = "# Mini book\n\nA citation {cite:p}`asadulaev2026vgh`.\n\n```{bibliography}\n```\n"


@pytest.mark.slow
@pytest.mark.skipif(not JB.exists(), reason="jupyter-book is not installed in this environment")
def test_control_book_builds(tmp_path):
    res = build(make_book(tmp_path, "print(1 + 1)", GOOD_PAGE))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(not JB.exists(), reason="jupyter-book is not installed in this environment")
def test_a_failing_cell_fails_the_build(tmp_path):
    book = make_book(tmp_path, "raise RuntimeError('deliberate failure')", GOOD_PAGE)
    res = build(book)
    assert res.returncode != 0
    assert "Executing notebook failed" in res.stderr  # the warning that -W turns into the failure
    log = book / "_build" / "html" / "reports" / "book" / "nb.err.log"
    assert "deliberate failure" in log.read_text()  # and the report names the cell's error


@pytest.mark.slow
@pytest.mark.skipif(not JB.exists(), reason="jupyter-book is not installed in this environment")
def test_a_sphinx_warning_fails_the_build(tmp_path):
    res = build(make_book(tmp_path, "print(1 + 1)", GOOD_PAGE + "\nSee {doc}`no-such-page`.\n"))
    assert res.returncode != 0
    assert "no-such-page" in res.stdout + res.stderr


@pytest.mark.slow
@pytest.mark.skipif(not JB.exists(), reason="jupyter-book is not installed in this environment")
def test_a_plain_copy_of_the_config_does_not_find_the_extension(tmp_path):
    # control for make_book: _config.yml names the extension's folder relative to itself (./), so a
    # copy in another folder must have it made absolute (sphinxext.config_for_copy)
    book = make_book(tmp_path, "print(1 + 1)", GOOD_PAGE)
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    res = build(book)
    assert res.returncode != 0
    assert "Could not import extension tools.sphinxext" in res.stdout + res.stderr
