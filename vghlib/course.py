"""Student copies of the book's notebooks: the exercises stay, their solutions and all outputs go.

Reference: the course plan of the book (``book/course.md``). ``python -m vghlib student`` (or
``make student``) writes them; the self-checking exercises themselves are in
:mod:`vghlib.exercises`.
"""

from __future__ import annotations

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

    ap = argparse.ArgumentParser(prog="python -m vghlib student",
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
