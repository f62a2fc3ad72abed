"""tools.instructor: the answer key shows every solution that the student copies remove, runs the
solutions' code and the self-checks' references, and leaves the book's own notebooks alone."""

import nbformat
import pytest

from tools import REPO_ROOT
from tools import instructor as I
from tools.student import export_student_copy

MD = """Intro.

```{exercise} Sum
:label: ex-a
Compute 2 + 2.
```

```{solution} ex-a
:class: dropdown
It is $2+2=4$.
```

:::{solution} ex-b
:class: dropdown
A colon fence.
:::

````{solution} ex-c
:class: dropdown

First the code:

```python
answer = 2 + 2
```

and a remark after it.
````
Tail."""


def _notebook():
    nb = nbformat.v4.new_notebook()
    setup = nbformat.v4.new_code_cell("import math")
    md = nbformat.v4.new_markdown_cell(MD)
    hidden = nbformat.v4.new_code_cell("print('the reference')")
    hidden.metadata["tags"] = ["solution", "remove-input"]
    check = nbformat.v4.new_code_cell("answer = None\nexercises.check_grpo_kl(answer)")
    nb.cells = [setup, md, hidden, check]
    return nb


def test_every_solution_is_shown_and_code_becomes_a_cell():
    nb, copy = I.instructor_notebook(_notebook(), "book/ch", {}, {"ex-a": 3})
    assert copy.solutions == 4  # three blocks and the tagged cell
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "**Solution to Exercise 3** (ex-a)" in text and "It is $2+2=4$." in text
    assert "**Solution** (ex-b)" in text and "A colon fence." in text
    assert "and a remark after it." in text and "```python" not in text
    code = [c for c in nb.cells if c.cell_type == "code"]
    solution = next(c for c in code if c.source.startswith("answer = 2 + 2"))
    assert "solution" in solution.metadata["tags"] and solution.source.endswith("\nanswer")
    hidden = next(c for c in code if "the reference" in c.source)
    assert hidden.metadata["tags"] == ["solution"]  # no longer hidden
    key = code[-1]
    assert 'exercises.reference("grpo-kl")' in key.source and I.KEY_TAG in key.metadata["tags"]
    assert text.rstrip().endswith("Tail.")


def test_an_unknown_checker_gets_no_answer_key():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("answer = None\ncheck_nothing_here(answer)")]
    nb, copy = I.instructor_notebook(nb, "book/ch", {}, {})
    assert len(nb.cells) == 1 and copy.code_cells == 0


def test_the_answer_key_shows_what_the_student_copies_remove(tmp_path):
    book = REPO_ROOT / "book"
    student = {rel: n for rel, n in export_student_copy(book, tmp_path / "student")}
    key = I.export_instructor_copy(book, tmp_path / "key", execute=False)
    tagged = {
        c.notebook: sum(
            "solution" in cell.metadata.get("tags", [])
            for cell in nbformat.read(book / c.notebook, as_version=4).cells
        )
        for c in key
    }
    assert {c.notebook: c.solutions for c in key} == {
        rel: n + tagged[rel] for rel, n in student.items()
    }
    assert sum(student.values()) > 20  # the book has solutions to show
    assert I.missing_solutions(book, tmp_path / "key") == []
    # negative control: a copy that lost one solution is caught, by notebook and label
    path = tmp_path / "key" / "part1" / "costates.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace("(costates-ex-taps)", "")
    nbformat.write(nb, path)
    assert I.missing_solutions(book, tmp_path / "key") == [
        ("part1/costates.ipynb", "costates-ex-taps")
    ]


def test_the_book_folder_is_refused_as_the_destination(tmp_path):
    with pytest.raises(ValueError, match="outside the book"):
        I.export_instructor_copy(tmp_path, tmp_path / "sub")


@pytest.mark.slow
def test_new_cells_run_after_the_setup_cell(tmp_path):
    nb, _ = I.instructor_notebook(_notebook(), "book/ch", {}, {})
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    assert I.execute_new_cells(nb, tmp_path) == 2
    solution = next(c for c in nb.cells if c.source.startswith("answer = 2 + 2"))
    assert solution.outputs[0]["data"]["text/plain"] == "4"
    key = nb.cells[-1]
    text = "".join(o.get("text", "") for o in key.outputs)
    assert "reference answer:" in text
    assert "correct" in key.outputs[-1]["data"]["text/plain"]
