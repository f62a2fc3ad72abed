import nbformat
import numpy as np
import sympy as sp

from vghlib.course import check_numeric, check_symbolic, export_student_copy, strip_solutions

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


def test_check_numeric_verdicts():
    assert check_numeric("e", 1.0, 1.001)
    assert not check_numeric("e", 1.2, 1.0)
    assert not check_numeric("e", [1.0, 2.0], 1.0)
    assert not check_numeric("e", np.nan, 1.0)
    assert not check_numeric("e", "abc", 1.0)
    none = check_numeric("e", None, 1.0)
    assert not none and "no answer yet" in repr(none)


def test_check_symbolic_verdicts():
    x = sp.symbols("x")
    assert check_symbolic("e", sp.sin(x) ** 2, 1 - sp.cos(x) ** 2)
    assert not check_symbolic("e", x ** 2, x ** 3)
    assert not check_symbolic("e", "x +* 2", x)
