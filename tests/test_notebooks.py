"""tools.notebooks: the notebooks outside the rendered book (JupyterLab, Colab, Binder, student
copies), and tools.student's copies of the whole book."""

import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml

from tools import REPO_ROOT, student
from tools import notebooks as N


def test_every_notebook_starts_with_the_generated_head_cells():
    paths = N.notebooks()
    assert len(paths) >= 10
    assert N.sync(paths, check=True) == [], "run `python -m tools.notebooks --sync`"
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        md, code = nb.cells[:2]
        assert "remove-cell" in md.metadata["tags"] and "remove-cell" in code.metadata["tags"]
        assert not code.get("outputs")
        # Agg in the environment (MPLBACKEND=Agg) must not stop the figures from being stored:
        # `%matplotlib inline` runs before the first cell that draws one
        code = [c for c in nb.cells if c.cell_type == "code"]
        drawn = [
            i
            for i, c in enumerate(code)
            if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
        ]
        if drawn:
            assert any("%matplotlib inline" in c.source for c in code[: drawn[0] + 1]), p.name


def test_the_head_cells_follow_the_config(tmp_path):
    config = N.book_config()
    text = N.macros_markdown(config)
    assert text.startswith("```yaml\n")  # jupyterlab-myst reads a leading YAML block as frontmatter
    front = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])["math"]
    for name, body in N.macros(config).items():
        if isinstance(body, list):
            params = "".join(f"#{i}" for i in range(1, body[1] + 1))
            assert f"\\def\\{name}{params}{{{body[0]}}}" in text
            assert front[f"\\{name}"] == body[0]
        else:
            assert f"\\def\\{name}{{{body}}}" in text
            assert front[f"\\{name}"] == body
    assert f"git+{config['repository']['url']}" in N.install_code(config)
    # negative control: another macro or another repository makes every notebook stale
    nb = tmp_path / "a.ipynb"
    shutil.copy(N.notebooks()[0], nb)
    other = dict(config, repository={**config["repository"], "url": "https://github.com/x/fork"})
    assert N.sync([nb], check=True, config=other) == [nb]
    assert N.sync([nb], config=other) == [nb] and N.sync([nb], check=True, config=other) == []
    assert "github.com/x/fork" in nbformat.read(nb, as_version=4).cells[1].source
    assert N.book_url(other) == "https://x.github.io/fork/"


def test_a_sync_rewrites_only_the_stale_head_cell(tmp_path):
    nb_path = tmp_path / "a.ipynb"
    nb = nbformat.read(N.notebooks()[0], as_version=4)
    md, code = nb.cells[:2]
    md.source = md.source.replace("python -m tools.notebooks", "python -m old.command")
    code.execution_count, code.metadata["execution"] = 1, {"shell.execute_reply": "then"}
    nbformat.write(nb, nb_path)
    assert N.sync([nb_path]) == [nb_path]
    md, code = nbformat.read(nb_path, as_version=4).cells[:2]
    assert "python -m tools.notebooks --sync" in md.source and "old.command" not in md.source
    # the install cell was up to date: it stays exactly as it was, execution record included
    assert code.execution_count == 1
    assert code.metadata["execution"] == {"shell.execute_reply": "then"}
    # control: a stale install cell is rewritten, and loses the record of its last run
    assert N.sync([nb_path], config=dict(N.book_config(), repository={"url": "https://x/y"}))
    code = nbformat.read(nb_path, as_version=4).cells[1]
    assert code.execution_count is None and "execution" not in code.metadata
    assert "git+https://x/y" in code.source


def test_a_sync_leaves_every_other_cell_byte_for_byte(tmp_path):
    # A body cell stored with its keys in another order than nbformat's (id last), as some editors
    # write it: a sync that rewrote the whole file would reorder them, and conflict with a
    # concurrent edit of that cell.
    raw = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=N.head_cells())))
    raw["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["Body, ünchanged."]})
    raw["cells"][-1]["id"] = "body0001"
    text = json.dumps(raw, indent=1, ensure_ascii=False) + "\n"
    body = text[text.index('  {\n   "cell_type": "markdown",\n   "metadata": {},') :]
    assert body.count('"id": "body0001"') == 1 and "ünchanged" in body
    path = tmp_path / "a.ipynb"
    path.write_text(text)
    other = dict(N.book_config(), repository={"url": "https://github.com/x/fork"})
    assert N.sync([path], config=other) == [path]
    after = path.read_text()
    assert "git+https://github.com/x/fork" in after and after.endswith(body)
    assert N.sync([path], check=True, config=other) == []
    # control: nbformat's own writer would have reordered the cell's keys
    assert not nbformat.writes(nbformat.reads(text, as_version=4)).endswith(body)


def test_the_macros_cell_lists_the_references_the_notebook_cites(tmp_path):
    # every notebook that cites lists each key it cites, with author and year, in its head cell
    for p in N.notebooks():
        nb = nbformat.read(p, as_version=4)
        for key in N.cited_keys(nb):
            assert f"- `{key}`: {N.citation(key)}." in nb.cells[0].source, (p.name, key)
    path = tmp_path / "a.ipynb"
    nb = nbformat.v4.new_notebook(cells=N.head_cells())
    nb.cells.append(nbformat.v4.new_markdown_cell("As {cite:t}`williams1992simple` shows."))
    nbformat.write(nb, path)
    # control: a notebook that starts to cite is stale until its list names the new reference
    assert N.sync([path], check=True) == [path]
    assert N.sync([path]) == [path] and N.sync([path], check=True) == []
    head = nbformat.read(path, as_version=4).cells[0].source
    assert "- `williams1992simple`: Williams, 1992. Simple Statistical" in head
    assert "References cited" not in N.head_cells()[0].source  # a notebook that cites nothing


@pytest.mark.slow
def test_the_install_cell_installs_the_library_into_a_fresh_venv(tmp_path):
    """The launch-button cell, run in a fresh venv against a local clone (no network for code)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    cell = N.install_code(url=f"git+file://{clone}")
    cell = cell.replace('"-q",', '"-q", "--no-deps",')  # torch & co. are the user's business
    run = subprocess.run(
        [str(py), "-c", cell], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )  # not the checkout: it would shadow vghlib
    if run.returncode and "Could not find a version that satisfies" in run.stderr:
        pytest.skip("no package index for setuptools (the build backend)")
    assert run.returncode == 0, run.stderr[-2000:]
    # the library and its style sheet are installed; the book's tooling (tools/) is not
    check = (
        "import importlib.util, pathlib, vghlib; d = pathlib.Path(vghlib.__file__).parent; "
        "assert (d / 'book.mplstyle').is_file() and (d / 'env.py').is_file(); "
        "assert importlib.util.find_spec('tools') is None; "
        "assert not list(d.parent.glob('tools/browser.py')); print(d)"
    )
    out = subprocess.run([str(py), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "site-packages" in out.stdout, out.stderr
    again = subprocess.run(
        [str(py), "-c", cell], capture_output=True, text=True, cwd=tmp_path
    )  # a no-op now
    assert again.returncode == 0 and again.stdout == again.stderr == ""


def test_binder_installs_the_pinned_requirements_and_the_library():
    req = (REPO_ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements.txt" in req and "download.pytorch.org/whl/cpu" in req
    assert "pip install --no-deps -e ." in (REPO_ROOT / "binder" / "postBuild").read_text()
    assert os.access(REPO_ROOT / "binder" / "postBuild", os.X_OK)
    assert (REPO_ROOT / "binder" / "runtime.txt").read_text().startswith("python-3.11")


MYST = r"""(sec-a)=
## A section

See {doc}`../part2/chapter`, {ref}`the section <sec-a>`, {prf:ref}`lem-x` and {cite:p}`asadulaev2026vgh`.
Use {py:func}`vghlib.stats.spearman`; {ref}`ex-1` asks for it.

```{prf:lemma} A lemma
:label: lem-x
:nonumber:

Text of the lemma.
```

```{exercise} First
:label: ex-1

Do it.
```

````{solution} ex-1
:class: dropdown
Done.
````
"""  # noqa: E501  (a MyST sample line as an author writes it)


def test_plain_markdown_turns_myst_into_links_and_headings():
    labels = {"sec-a": "book/part1/ch", "lem-x": "book/part1/ch", "ex-1": "book/part1/ch"}
    out = N.plain_markdown(MYST, "book/part1/ch", labels, base="https://b/", numbers={"ex-1": 4})
    assert "[chapter](https://b/book/part2/chapter.html)" in out
    assert "[the section](https://b/book/part1/ch.html#sec-a)" in out
    assert "[lem-x](https://b/book/part1/ch.html#lem-x)" in out
    assert "[Asadulaev et al., 2026](https://b/book/bibliography.html)" in out
    assert "`vghlib.stats.spearman`" in out
    assert "[Exercise 4](https://b/book/part1/ch.html#ex-1)" in out
    assert "**Exercise 4**: First" in out and "**Lemma: A lemma**" in out
    assert "> Text of the lemma." in out
    # a reference without text shows the title of what it points at, where one is known; a box
    # whose title names its kind is not named twice
    titled = N.plain_markdown(
        MYST.replace("{prf:lemma} A lemma", "{prf:lemma} Lemma 2"),
        "book/part1/ch",
        labels,
        base="https://b/",
        titles={"lem-x": "Lemma 2", "book/part2/chapter": "A chapter"},
    )
    assert "[Lemma 2](https://b/book/part1/ch.html#lem-x)" in titled and "**Lemma 2**" in titled
    assert "[A chapter](https://b/book/part2/chapter.html)" in titled  # a page by its title
    assert N.label_titles()["findings-eq8"].startswith("Eq 8:")
    assert N.label_titles()["book/appendix/proofs"] == "Appendix: proofs, checked"
    assert "Done." not in out and "{" not in out and ":label:" not in out and "(sec-a)=" not in out


def test_student_copies_of_the_book_hold_no_myst_syntax_and_no_answers(tmp_path):
    rows = student.export_student_copy(REPO_ROOT / "book", tmp_path)
    assert len(rows) == len(N.notebooks())
    leftovers = {}
    for p in sorted(tmp_path.rglob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        bad = re.findall(r"\{(?:doc|ref|prf:\w+|cite:\w+|exercise|solution|numref)\}", md)
        bad += re.findall(r"^:(?:label|class|nonumber):", md, re.MULTILINE)
        if bad:
            leftovers[p.name] = sorted(set(bad))
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert leftovers == {}
    sf = nbformat.read(tmp_path / "part1" / "sf_vs_pd.ipynb", as_version=4)
    assert any("**Exercise 1**" in c.source for c in sf.cells if c.cell_type == "markdown")


def test_no_reference_to_an_unnumbered_statement_lacks_its_text():
    # The book's statement boxes are :nonumber: (their titles carry the paper's numbers), so a bare
    # {prf:ref} to one renders as "Proposition " with nothing after it.
    assert N.unnumbered_refs(N.book_pages()) == []
    # Control: a bare reference to a :nonumber: box is found, one with its own text is not, and a
    # bare reference to a numbered box is allowed.
    pages = {
        "a.md": "```{prf:lemma} Lemma 1 of the paper\n:label: x-lemma\n:nonumber:\n\n"
        "Text.\n```\n\n"
        "```{prf:lemma} A numbered one\n:label: y-lemma\n\nText.\n```\n",
        "b.md": "See {prf:ref}`x-lemma`, {prf:ref}`Lemma 1 <x-lemma>` and {prf:ref}`y-lemma`.",
    }
    assert N.unnumbered_refs(pages) == [("b.md", "x-lemma")]


def test_no_reference_to_an_exercise_follows_the_word_exercise():
    # A {ref} to an exercise renders as "Exercise 13", so "exercise {ref}`x`" doubles the word.
    assert N.exercise_word_before_ref(N.book_pages()) == []
    # Control: the doubled word is found, also across a line break and after a parenthesis; the
    # word before a reference to a section is not.
    pages = {
        "a.md": "```{exercise} First\n:label: ex-a\n\nDo it.\n```\n\n(sec-b)=\n## B\n",
        "b.md": "As in exercise\n{ref}`ex-a`, (exercise {ref}`ex-a`), {ref}`ex-a`; "
        "the exercise {ref}`sec-b`.",
    }
    assert N.exercise_word_before_ref(pages) == [("b.md", "ex-a"), ("b.md", "ex-a")]


def test_no_fence_inside_a_directive_closes_it_early():
    # A ```python block inside a ```{solution} closes the solution at its own closing fence, and the
    # rest of the answer shows under the folded box (the appendix's Exercise 32 did this).
    assert N.nested_fence_problems(N.book_pages()) == []
    bad = "```{solution} ex-a\n:class: dropdown\n\n```python\nx = 1\n```\n\nThe answer.\n```\n"
    good = "````{solution} ex-a\n:class: dropdown\n\n```python\nx = 1\n```\n\nThe answer.\n````\n"
    plain = "```python\nx = 1\n```\n\n```{note}\nA note.\n```\n\n```{math}\nx\n```\n"
    # Control: the early close is found at the nested fence's line; the fixed block and blocks one
    # after another are not flagged.
    assert N.nested_fence_problems({"a.md": bad}) == [("a.md", 4, "```python")]
    assert N.nested_fence_problems({"a.md": good, "b.md": plain}) == []


def _figure_cell(source="plt.plot([1, 2])\nplt.show()", meta=None, outputs=1, widget=False):
    cell = nbformat.v4.new_code_cell(source)
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
    cell.outputs = [nbformat.v4.new_output("display_data", png) for _ in range(outputs)]
    if widget:
        view = {"application/vnd.jupyter.widget-view+json": {"model_id": "0" * 32}}
        cell.outputs.append(nbformat.v4.new_output("display_data", view))
    if meta is not None:
        cell.metadata["mystnb"] = meta
    return cell


def test_every_figure_has_a_numbered_caption_and_alt_text():
    for p in N.notebooks():
        assert N.figure_problems(nbformat.read(p, as_version=4)) == [], p.name
    names = [
        c.metadata["mystnb"]["figure"]["name"]
        for p in N.notebooks()
        for c in nbformat.read(p, as_version=4).cells
        if c.cell_type == "code" and "mystnb" in c.metadata
    ]
    assert len(names) >= 20 and len(set(names)) == len(names)  # labels are global in the book
    # controls: each way a figure can lack its caption, its label or its alt text is reported
    good = {"figure": {"caption": "A line.", "name": "fig-a"}, "image": {"alt": "A rising line."}}
    nb = nbformat.v4.new_notebook(cells=[_figure_cell(meta=good)])
    assert N.figure_problems(nb) == []
    planted = {
        "without a caption": _figure_cell(meta={**good, "figure": {"name": "fig-b"}}),
        "without a name": _figure_cell(meta={**good, "figure": {"caption": "A line."}}),
        "without its own alt text": _figure_cell(meta={"figure": good["figure"], "image": {}}),
        "hash alt": _figure_cell(meta={**good, "image": {"alt": "ab12" * 16}}),
        "2 display outputs": _figure_cell(meta=good, widget=True),
        "used twice": _figure_cell(meta=good),
        "carries a figure number": _figure_cell(
            'ax.set_title("Figure 3: gain at each budget")\nplt.show()', meta=good
        ),
    }
    for what, cell in planted.items():
        nb = nbformat.v4.new_notebook(cells=[_figure_cell(meta=good), cell])
        found = N.figure_problems(nb)
        key = "without its own alt text" if what == "hash alt" else what
        assert any(key in p for p in found), (what, found)
    bare = nbformat.v4.new_notebook(cells=[_figure_cell()])
    assert len(N.figure_problems(bare)) == 3  # no caption, no name, no alt
