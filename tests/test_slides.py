"""tools.slides: the spec selects exactly the sections and cells it names, refuses names that do
not exist, keeps solutions off the slides, and the decks load nothing from the network."""

import re
import shutil

import nbformat
import pytest
import yaml

from tools import REPO_ROOT, browser
from tools import homework as H
from tools import slides as S

SESSIONS = S.load_spec()


def _nb():
    nb = nbformat.v4.new_notebook()
    md = [
        ("h1", "# Title\n\nIntro."),
        ("a", "## Part A\n\nText of A.\n\n### A, detail\n\nDetail of A."),
        ("fence", "```bash\n# not a heading\n```\n\nStill A."),
        ("b", "## Part B\n\nText of B."),
    ]
    for cid, text in md:
        cell = nbformat.v4.new_markdown_cell(text)
        cell["id"] = cid
        nb.cells.append(cell)
    code = nbformat.v4.new_code_cell("print('b')")
    code["id"] = "code-b"
    code.outputs = [nbformat.v4.new_output("stream", text="b\n")]
    nb.cells.append(code)
    return nb


def test_a_section_runs_to_the_next_heading_of_its_level():
    got = S.select(_nb(), S.Chapter("x.ipynb", sections=["Part A"]))
    text = "\n".join(p.source for p in got)
    assert "Text of A." in text and "Detail of A." in text and "Still A." in text
    assert "Text of B." not in text and "Intro." not in text
    assert [p.cell_id for p in got] == ["a", "a", "fence"]  # a heading inside a fence is not one


def test_cells_are_selected_by_id_in_the_notebooks_order():
    got = S.select(_nb(), S.Chapter("x.ipynb", sections=["Part B"], cells=["h1"]))
    assert [p.cell_id for p in got] == ["h1", "b", "code-b"]


def test_a_heading_or_an_id_that_does_not_exist_is_refused():
    with pytest.raises(S.SpecError, match=r"no section headed 'Part C'.*'Part A'"):
        S.select(_nb(), S.Chapter("x.ipynb", sections=["Part C"]))
    with pytest.raises(S.SpecError, match="no cell with id 'nope'"):
        S.select(_nb(), S.Chapter("x.ipynb", cells=["nope"]))
    with pytest.raises(S.SpecError, match="Part"):  # the heading's exact text, not a prefix
        S.select(_nb(), S.Chapter("x.ipynb", sections=["Part"]))


def test_the_real_spec_names_only_what_the_notebooks_have(tmp_path):
    for s in SESSIONS:
        for ch in s.chapters:
            nb = nbformat.read(REPO_ROOT / ch.notebook, as_version=4)
            got = S.select(nb, ch)
            headed = {p.heading[1] for p in got if p.heading}
            assert set(ch.sections) <= headed
            assert set(ch.cells) <= {p.cell_id for p in got}
    # negative control: one renamed heading in a copy of the spec stops the build
    spec = tmp_path / "slides.yml"
    spec.write_text(S.SPEC.read_text().replace("- Verdict", "- Verdikt", 1))
    bad = S.load_spec(spec)
    with pytest.raises(S.SpecError, match="Verdikt"):
        for s in bad:
            S.assemble(s)


def test_every_deck_has_slides_and_no_solution():
    solutions = re.compile(r"\{solution\}|\*\*Solution")
    for s in SESSIONS:
        deck = S.assemble(s)
        assert deck.slides > 3
        text = "\n".join(c.source for c in deck.notebook.cells if c.cell_type == "markdown")
        assert s.question in text
        assert not solutions.search(text)
        # an exercise's self-check says "no answer yet" until a student answers: not a slide's
        printed = str([c.get("outputs", []) for c in deck.notebook.cells])
        assert "no answer yet" not in printed
        starts = [c.metadata["slideshow"]["slide_type"] for c in deck.notebook.cells]
        assert starts.count("slide") == deck.slides


def test_the_course_plan_homework_and_slides_agree():
    """Sessions and chapters: book/course.md's table, course/slides.yml, course/homework.yml."""
    homework = {h["session"]: h for h in H.load()}
    table = (REPO_ROOT / "book" / "course.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+?) \|", table, re.MULTILINE)
    plan = {int(n): re.findall(r"\{doc\}`([^`]+)`", cells) for n, cells in rows}
    assert sorted(plan) == [s.number for s in SESSIONS] == sorted(homework)
    for s in SESSIONS:
        pages = [f"book/{p}" for p in plan[s.number]]
        notebooks = [str(c.notebook).removesuffix(".ipynb") for c in s.chapters]
        assert [p for p in pages if (REPO_ROOT / f"{p}.ipynb").exists()] == notebooks
        assert homework[s.number]["chapters"] == pages


def test_a_deck_loads_only_files_beside_it(tmp_path):
    deck = S.assemble(SESSIONS[0])
    S.export(deck, tmp_path / "deck.html")
    html = (tmp_path / "deck.html").read_text()
    remote = re.findall(r"<(?:script|link)[^>]+(?:src|href)=\"(https?:[^\"]+)\"", html)
    assert remote == []
    assert "lib/reveal.js/dist/reveal.js" in html and "lib/mathjax/tex-mml-chtml.js" in html
    macros = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert '"costatehat": "\\\\hat{\\\\lambda}"' in html
    assert "costatehat" in macros["mathjax3_config"]["tex"]["macros"]


@pytest.mark.slow
def test_the_slide_check_catches_each_planted_defect(tmp_path):
    """The browser check of the decks against its negative controls (needs Chromium and
    `make offline-assets`)."""
    pytest.importorskip("selenium")
    lib = REPO_ROOT / "_build" / "offline"
    if not shutil.which("chromedriver") or not (lib / "node_modules" / "reveal.js").is_dir():
        pytest.skip("needs chromium, chromedriver and `make offline-assets`")
    S.install_lib(tmp_path, lib / "node_modules" / "reveal.js", lib / "static" / "mathjax")
    S.self_test_decks(tmp_path)
    res = browser.check_slides(tmp_path)
    for deck, must in S.SELF_TEST_DECKS.items():
        failed = {k for k in browser.SLIDE_CHECKS if res[deck][k]}
        assert failed == must, (deck, res[deck])
