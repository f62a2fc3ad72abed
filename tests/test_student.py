"""tools.student: student copies lose their solution blocks and outputs, keep the exercises."""

import nbformat

from tools.student import export_student_copy, strip_solutions

MD = """Intro.

```{exercise} Sum
:label: ex-a
Compute 2 + 2.
```

```{solution} ex-a
:class: dropdown
It is 4.
```

````{solution} ex-b
:class: dropdown
```python
print(4)
```
````
Tail."""


def test_strip_solutions_removes_only_solution_blocks():
    out, n = strip_solutions(MD)
    assert n == 2
    assert "It is 4" not in out and "print(4)" not in out
    assert "Compute 2 + 2." in out and out.rstrip().endswith("Tail.")


def test_export_student_copy(tmp_path):
    src = tmp_path / "book"
    (src / "part").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(MD), nbformat.v4.new_code_cell("print(1)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nbformat.write(nb, src / "part" / "ch.ipynb")
    rows = export_student_copy(src, tmp_path / "student")
    assert rows == [("part/ch.ipynb", 2)]
    out = nbformat.read(tmp_path / "student" / "part" / "ch.ipynb", as_version=4)
    assert "It is 4" not in out.cells[0].source and out.cells[1].outputs == []
