"""The book's configuration makes a failing cell or a Sphinx warning fail the build.

A two-page book is built in a temporary folder with this repository's _config.yml (execution,
extensions, macros; the book's own extension still loaded from tools/) and the same command as
`make book`. The control builds; a notebook with a
raising cell, and a page with a broken cross-reference, must each make the build fail.
"""

import re
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


# ---------------------------------------------------------------------------------------------
# What a reader sees on a built page: figures, citations, the header, the status table
# ---------------------------------------------------------------------------------------------

FIGURE_CODE = "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"
FIGURE_META = {
    "figure": {"caption": "A line that rises (the paper's Figure 2).", "name": "fig-mini"},
    "image": {"alt": "A straight line rising from 1 to 3."},
}
SEEN_PAGE = (
    "# Mini book\n\nCited {cite:p}`asadulaev2026vgh`; see {numref}`fig-mini`.\n\n"
    "```{nb-exec-table}\n```\n\n```{bibliography}\n```\n"
)


def seen_problems(intro: str, nb: str) -> list[str]:
    """What is wrong on the two built pages (HTML text): a figure without its number, caption
    or alt text, a bibliography labelled by number, a second search field, an emoji status."""
    problems = []
    fig = re.search(r"<figure[^>]*>(.*?)</figure>", nb, re.S)
    if not fig:
        problems.append("the figure cell's output is not a figure")
    else:
        alt = re.search(r'<img[^>]*\balt="([^"]*)"', fig.group(1))
        if not alt or not alt.group(1) or re.fullmatch(r"[0-9a-f]{64}", alt.group(1)):
            problems.append(f"the image's alt text is {alt.group(1) if alt else None!r}")
        if not re.search(
            r'caption-number">Fig\. 1 </span><span class="caption-text">A line', fig[1]
        ):
            problems.append("the figure has no numbered caption")
    if not re.search(r'<span class="std std-numref">Fig\. 1</span>', intro):
        problems.append("the reference to the figure has no number")
    labels = re.findall(r'fn-bracket">\[</span><a [^>]*>([^<]*)</a>', intro)
    if labels != ["Asadulaev et al., 2026"]:
        problems.append(f"bibliography labels {labels}")
    fields = intro.count('class="btn search-button-field')
    if fields != 1:
        problems.append(f"{fields} search fields")
    if "✅" in intro or "❌" in intro or 'exec-status-ok">succeeded</span>' not in intro:
        problems.append("the status table does not say succeeded in words")
    return problems


@pytest.mark.slow
@pytest.mark.skipif(not JB.exists(), reason="jupyter-book is not installed in this environment")
def test_a_reader_sees_numbered_captions_author_year_labels_one_search_field_and_words(tmp_path):
    book = make_book(tmp_path, FIGURE_CODE, SEEN_PAGE)
    nb = nbformat.read(book / "book" / "nb.ipynb", as_version=4)
    nb.cells[1].metadata["mystnb"] = FIGURE_META
    nbformat.write(nb, book / "book" / "nb.ipynb")
    res = build(book)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = book / "_build" / "html" / "book"
    intro, page = (html / "intro.html").read_text(), (html / "nb.html").read_text()
    assert seen_problems(intro, page) == []
    # controls: each defect, planted in the built pages, is reported
    fig = re.search(r"<figure.*?</figure>", page, re.S).group(0)
    bare = re.sub(r'alt="[^"]*"', 'alt="' + "0" * 64 + '"', fig)
    bare = re.sub(r"<figcaption>.*?</figcaption>", "", bare, flags=re.S)
    planted = {
        "alt text": (intro, page.replace(fig, bare)),
        "numbered caption": (intro, page.replace(fig, bare)),
        "not a figure": (intro, page.replace(fig, "<img alt=''>")),
        "bibliography labels": (re.sub(r"Asadulaev et al\., 2026</a>", "1</a>", intro), page),
        "2 search fields": (
            intro.replace("<body", '<b class="btn search-button-field"></b><body', 1),
            page,
        ),
        "in words": (intro.replace(">succeeded</span>", ">✅</span>"), page),
    }
    for what, (a, b) in planted.items():
        assert any(what in p for p in seen_problems(a, b)), what
