"""Self-checking exercises: tell a reader in the notebook whether an answer is right.

A chapter's module defines the reference for each exercise (computed by vghlib, never typed in
by hand) and calls :func:`check_numeric` or :func:`check_symbolic`. The reader sees a one-line
verdict with a hint, never the expected value itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp


NO_ANSWER = "no answer yet: set your answer variable and run the cell again"


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer. Truthy when correct, so tests can ``assert`` it."""

    exercise: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        mark = "correct" if self.correct else "not yet"
        return f"[{self.exercise}] {mark}: {self.message}"

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))  # noqa: E731


def check_numeric(exercise: str, answer, expected, *, rtol: float = 1e-2, atol: float = 1e-8,
                  hint: str = "") -> Feedback:
    """Compare a numeric answer (scalar or array) with a reference computed by vghlib."""
    if answer is None:
        return Feedback(exercise, False, NO_ANSWER)
    try:
        a = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return Feedback(exercise, False, f"expected a number or an array, got {type(answer).__name__}")
    e = np.asarray(expected, dtype=float)
    if a.shape != e.shape:
        return Feedback(exercise, False, f"expected shape {e.shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        return Feedback(exercise, False, "your answer contains NaN or inf")
    if np.allclose(a, e, rtol=rtol, atol=atol):
        return Feedback(exercise, True, f"matches the reference within rtol={rtol:g}")
    return Feedback(exercise, False, hint or "does not match the reference yet")


def check_symbolic(exercise: str, answer, expected, *, hint: str = "") -> Feedback:
    """Compare a sympy answer with a reference expression by simplifying their difference."""
    if answer is None:
        return Feedback(exercise, False, NO_ANSWER)
    try:
        diff = sp.simplify(sp.sympify(answer) - sp.sympify(expected))
    except (sp.SympifyError, TypeError) as err:
        return Feedback(exercise, False, f"could not read your answer as an expression: {err}")
    if diff == 0:
        return Feedback(exercise, True, "equal to the reference after simplification")
    return Feedback(exercise, False, hint or "differs from the reference after simplification")


# --- Student copies of the notebooks -----------------------------------------------------------

_SOLUTION_BLOCK = None  # compiled lazily in strip_solutions


def strip_solutions(markdown: str) -> tuple[str, int]:
    """Remove every ```{solution} ...``` block (sphinx-exercise) from a markdown cell's text.

    Returns the new text and how many blocks were removed. Fences of four or more backticks and
    ``:::{solution}`` colon fences are handled; the exercise statements stay.
    """
    import re

    global _SOLUTION_BLOCK
    if _SOLUTION_BLOCK is None:
        _SOLUTION_BLOCK = re.compile(
            r"^(?P<fence>`{3,}|:{3,})\{solution\}[^\n]*\n.*?^(?P=fence)[ \t]*$\n?",
            re.MULTILINE | re.DOTALL,
        )
    return _SOLUTION_BLOCK.subn("", markdown)


def export_student_copy(src_root, dest_root) -> list[tuple[str, int]]:
    """Write a copy of every notebook under ``src_root`` to ``dest_root`` without solutions.

    Solution blocks are removed from markdown cells, and outputs are cleared so that students run
    the notebooks themselves. Returns (relative path, solutions removed) for each notebook.
    """
    from pathlib import Path

    import nbformat

    src_root, dest_root = Path(src_root), Path(dest_root)
    if dest_root.resolve() == src_root.resolve() or src_root.resolve() in dest_root.resolve().parents:
        raise ValueError("dest_root must lie outside the book folder, e.g. student/")
    report = []
    for path in sorted(src_root.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = nbformat.read(path, as_version=4)
        removed = 0
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source, n = strip_solutions(cell.source)
                removed += n
            elif cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        out = dest_root / path.relative_to(src_root)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        report.append((path.relative_to(src_root).as_posix(), removed))
    return report


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vghlib.course",
                                 description="Export student copies of the book's notebooks.")
    ap.add_argument("--src", default="book", help="folder with the book's notebooks")
    ap.add_argument("--out", default="student", help="where to write the student copies")
    args = ap.parse_args(argv)
    rows = export_student_copy(args.src, args.out)
    for rel, n in rows:
        print(f"{rel:<45} {n:2d} solution(s) removed")
    print(f"{len(rows)} notebooks written to {args.out}/ (outputs cleared)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
