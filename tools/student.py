"""Student copies of the book's notebooks: the exercises stay, their solutions and all outputs go.

Reference: the course plan of the book (``book/course.md``). ``python -m tools.student`` (or
``make student``) writes them; the self-checking exercises themselves are in
:mod:`vghlib.exercises`. Markdown cells become plain Markdown
(:func:`tools.notebooks.plain_markdown`), which plain Jupyter and Colab render; their links point
at the published book, whose address follows ``repository.url`` of ``_config.yml``
(:func:`tools.address.book_url`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from tools import address
from tools import notebooks as nbs

# A ```{solution}``` block of sphinx-exercise, fenced by three or more backticks or colons.
_SOLUTION_BLOCK = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{solution\}[^\n]*\n.*?^(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)


def strip_solutions(markdown: str) -> tuple[str, int]:
    """Remove every ```{solution} ...``` block (sphinx-exercise) from a markdown cell's text.

    Returns the new text and how many blocks were removed. Fences of four or more backticks and
    ``:::{solution}`` colon fences are handled; the exercise statements stay.
    """
    return _SOLUTION_BLOCK.subn("", markdown)


def exercise_numbers(paths, src_root) -> dict[str, int]:
    """Exercise label -> its number in the rendered book (sphinx-exercise counts them in the
    order of the table of contents, ``_toc.yml``; notebooks outside it come last)."""
    toc = Path(src_root).parent / "_toc.yml"
    order = []
    if toc.is_file():
        text = toc.read_text()
        order = [f.strip() for f in re.findall(r"file:\s*(\S+)", text)]
    rank = {f: i for i, f in enumerate(order)}

    def key(p):
        return rank.get(p.relative_to(Path(src_root).parent).with_suffix("").as_posix(), 1e9)

    out, n = {}, 0
    for p in sorted(paths, key=key):
        cells = nbformat.read(p, as_version=4).cells
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        for m in re.finditer(r"\{exercise\}[^\n]*\n((?::[\w-]+:[^\n]*\n)*)", text):
            n += 1
            lab = re.search(r":label:\s*(\S+)", m[1])
            if lab:
                out[lab[1]] = n
    return out


def export_student_copy(src_root, dest_root, config: dict | None = None) -> list[tuple[str, int]]:
    """Write a copy of every notebook under ``src_root`` to ``dest_root`` without solutions.

    Solution blocks are removed from markdown cells, and outputs are cleared so that students run
    the notebooks themselves. Links go to the published book, :func:`tools.address.book_url` of
    ``config`` (default: ``_config.yml``). Returns (relative path, solutions removed) for each
    notebook.
    """
    src_root, dest_root = Path(src_root), Path(dest_root)
    if src_root.resolve() in (dest_root.resolve(), *dest_root.resolve().parents):
        raise ValueError("dest_root must lie outside the book folder, e.g. student/")
    report = []
    paths = [p for p in sorted(src_root.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    labels = nbs.label_pages(src_root)
    base = address.book_url(config)
    numbers = exercise_numbers(paths, src_root)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        page = path.relative_to(src_root.parent).with_suffix("").as_posix()
        removed = 0
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source, n = strip_solutions(cell.source)
                removed += n
                cell.source = nbs.plain_markdown(
                    cell.source, page, labels, base=base, numbers=numbers
                )
            elif cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        # a cell that only printed a reference answer (tagged for the book) has no place here
        nb.cells = [
            c
            for c in nb.cells
            if "solution" not in c.metadata.get("tags", [])
            and (c.cell_type != "markdown" or c.source.strip())
        ]
        out = dest_root / path.relative_to(src_root)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        report.append((path.relative_to(src_root).as_posix(), removed))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.student", description="Export student copies of the book's notebooks."
    )
    ap.add_argument("--src", default="book", help="folder with the book's notebooks")
    ap.add_argument("--out", default="student", help="where to write the student copies")
    args = ap.parse_args(argv)
    url = address.repository_url()
    if address.is_placeholder(url):
        print("note: " + address.placeholder_message(url), file=sys.stderr)
    rows = export_student_copy(args.src, args.out)
    for rel, n in rows:
        print(f"{rel:<45} {n:2d} solution(s) removed")
    print(f"{len(rows)} notebooks written to {args.out}/ (outputs cleared)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
