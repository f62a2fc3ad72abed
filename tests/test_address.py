"""tools.address: the book's public address is one setting, repository.url of _config.yml.

The install cell of every notebook, the links of the student copies, the course page's clone
command and the build's note about the placeholder all follow it; a notebook inside a clone of the
repository uses the clone's vghlib and needs no network.
"""

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import nbformat
import pytest

from tools import REPO_ROOT, address, sphinxext, student
from tools import notebooks as N

FORK = "https://github.com/someone/fork"


def with_url(url, **html):
    config = N.book_config()
    return dict(config, repository={**config["repository"], "url": url}, html=html)


def test_the_placeholder_is_detected_and_a_published_address_is_not():
    assert address.is_placeholder(address.PLACEHOLDER)
    for spelling in (
        "https://github.com/vgh-book/vgh-book/",
        "https://github.com/VGH-book/vgh-book.git",
    ):
        assert address.is_placeholder(spelling)
    # control: another repository, or one whose name merely contains the placeholder's, is not
    for url in (
        FORK,
        "https://github.com/vgh-book/vgh-book-2",
        "https://gitlab.com/vgh-book/vgh-book",
    ):
        assert not address.is_placeholder(url)
    with pytest.raises(ValueError, match="set repository.url"):
        address.repository_url({"repository": {"url": " "}})


def test_the_published_book_follows_the_repository_unless_baseurl_is_set():
    assert address.book_url(with_url(FORK)) == "https://someone.github.io/fork/"
    assert address.book_url(with_url(FORK + ".git/")) == "https://someone.github.io/fork/"
    assert address.book_url(with_url(FORK, baseurl="https://book.example.org")) == (
        "https://book.example.org/"
    )
    with pytest.raises(ValueError, match="set html.baseurl"):
        address.book_url(with_url("https://gitlab.com/someone/fork"))


STUDENT_PAGE = "# A chapter\n\nSee {doc}`../part2/other` and {ref}`the section <sec-b>`.\n"


def test_the_install_cell_and_the_student_links_follow_the_configured_url(tmp_path):
    src = tmp_path / "book"
    (src / "part1").mkdir(parents=True)
    (src / "part2").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(STUDENT_PAGE)]
    nbformat.write(nb, src / "part1" / "ch.ipynb")
    (src / "part2" / "other.md").write_text("(sec-b)=\n## B\n")

    def links(config, out):
        student.export_student_copy(src, tmp_path / out, config=config)
        md = nbformat.read(tmp_path / out / "part1" / "ch.ipynb", as_version=4).cells[0].source
        return re.findall(r"\]\((\S+)\)", md)

    assert links(with_url(FORK), "fork") == [
        "https://someone.github.io/fork/book/part2/other.html",
        "https://someone.github.io/fork/book/part2/other.html#sec-b",
    ]
    # control: the placeholder's copies link to the placeholder's pages
    assert all(
        u.startswith("https://vgh-book.github.io/vgh-book/")
        for u in links(with_url(address.PLACEHOLDER), "placeholder")
    )
    cell = N.install_code(with_url(FORK))
    assert f'"git+{FORK}"' in cell and "vgh-book" not in cell
    assert f'"git+{address.PLACEHOLDER}"' in N.install_code(with_url(address.PLACEHOLDER))


def test_the_course_page_takes_its_clone_command_from_the_build(monkeypatch):
    monkeypatch.delenv(sphinxext.ENV, raising=False)
    config = SimpleNamespace(
        html_theme_options={"repository_url": FORK + "/"}, myst_substitutions={"other": "x"}
    )
    sphinxext._config_inited(None, config)
    assert config.myst_substitutions == {
        "other": "x",
        "repository_url": FORK,
        "clone_command": f"```bash\n!git clone {FORK} && cd fork && "
        "pip install -q -r requirements.txt -e .\n```",
    }
    assert "{{ clone_command }}" in (REPO_ROOT / "book" / "course.md").read_text()
    # no page of the book spells out the address; in the notebooks only the generated cell does
    url, pages = N.repository_url(), address.book_url()
    for md in sorted((REPO_ROOT / "book").rglob("*.md")):
        text = md.read_text()
        assert url not in text and pages not in text, md
    for path in N.notebooks():
        cells = nbformat.read(path, as_version=4).cells
        holding = [i for i, c in enumerate(cells) if url in c.source or pages in c.source]
        assert holding == [1] and N.INSTALL_TAG in cells[1].metadata["tags"], path


class _Log:
    def __init__(self):
        self.info, self.warning = [], []


def test_the_build_notes_a_placeholder_address_and_does_not_warn(monkeypatch, tmp_path):
    log = _Log()
    monkeypatch.setattr(
        sphinxext,
        "LOGGER",
        SimpleNamespace(info=log.info.append, warning=log.warning.append),
    )

    def start(url):
        sphinxext._builder_inited(
            SimpleNamespace(
                config=SimpleNamespace(html_theme_options={"repository_url": url}),
                builder=SimpleNamespace(format="html"),
                outdir=str(tmp_path),
            )
        )

    start(address.PLACEHOLDER)
    assert len(log.info) == 1 and "still the placeholder" in log.info[0]
    assert "repository.url in _config.yml" in log.info[0] and log.warning == []
    start(FORK)  # control: a published address builds without the note
    assert len(log.info) == 1


def test_make_student_notes_a_placeholder_address(monkeypatch, tmp_path, capsys):
    src = tmp_path / "book"
    src.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), src / "a.ipynb")
    for url, noted in ((address.PLACEHOLDER, True), (FORK, False)):
        monkeypatch.setattr(address, "book_config", lambda url=url: with_url(url))
        assert student.main(["--src", str(src), "--out", str(tmp_path / "out")]) == 0
        assert ("still the placeholder" in capsys.readouterr().err) is noted


def _run_cell(cwd, url="git+https://example.invalid/repo"):
    """The install cell in a Python that has no vghlib installed (-S: no site-packages), with pip
    replaced by a recorder; prints where vghlib came from and what pip was asked to do."""
    code = (
        "import subprocess\ncalls = []\n"
        "subprocess.run = lambda cmd, check: calls.append(cmd[-1])\n"
        + N.install_code(url=url)
        + "\nimport importlib.util, json, os\n"
        "spec = importlib.util.find_spec('vghlib')\n"
        "print(json.dumps({'vghlib': spec and spec.origin, 'pip': calls, "
        "'PYTHONPATH': os.environ.get('PYTHONPATH')}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/elsewhere"}
    run = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_install_cell_uses_the_clone_it_runs_in_and_installs_elsewhere(tmp_path):
    clone = tmp_path / "clone"
    (clone / "vghlib").mkdir(parents=True)
    (clone / "vghlib" / "__init__.py").write_text("")
    (clone / "pyproject.toml").write_text("[project]\nname = 'vghlib'\n")
    (clone / "book" / "part1").mkdir(parents=True)
    inside = _run_cell(clone / "book" / "part1")
    assert inside == {
        "vghlib": str(clone / "vghlib" / "__init__.py"),
        "pip": [],  # no network
        "PYTHONPATH": f"{clone}:/elsewhere",  # the commands a notebook starts find it too
    }
    # controls: outside a clone, and in a folder with a vghlib/ that is not a clone, pip installs
    outside = _run_cell(tmp_path)
    assert outside["vghlib"] is None and outside["pip"] == ["git+https://example.invalid/repo"]
    (clone / "pyproject.toml").unlink()
    assert _run_cell(clone / "book")["pip"] == ["git+https://example.invalid/repo"]
