"""The instructor's answer key: copies of the book's notebooks with every solution shown.

Reference: the teaching kit of the book (``book/teaching_kit.md``). ``python -m tools.instructor``
(``make instructor``) writes the copies; the student copies of :mod:`tools.student` are their
opposite. In a copy

* every sphinx-exercise ``{solution}`` block becomes visible text under a heading "Solution to
  Exercise N" (the rendered book folds it in a dropdown, the student copy drops it);
* a Python code block inside a solution becomes a code cell of its own, executed with its output;
* a cell tagged ``solution`` (which the student copies drop) stays, without the tags that hide it;
* each self-checking exercise's answer cell is followed by an answer-key cell that computes the
  reference with :func:`vghlib.exercises.reference` and runs the checker on it, executed.

The markdown becomes plain Markdown (:func:`tools.notebooks.plain_markdown`), as in the student
copies, and the book's stored outputs stay. New code cells run in one kernel per notebook, after
the notebook's setup cell (its first code cell after the generated head cells) when a solution's
code needs the chapter's imports; nothing else of the chapter is re-run.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools import notebooks as nbs
from tools import student
from vghlib.exercises import CHECKERS

# A ```{solution} label``` block: its fence, its argument (the exercise's label) and its body.
_SOLUTION = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{solution\}[ \t]*(?P<label>[^\n]*)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)
# A fenced Python block inside a solution's body.
_PYTHON = re.compile(
    r"^(?P<fence>`{3,})(?:python|ipython3?|\{code-cell\}[^\n]*)[ \t]*\n"
    r"(?P<code>.*?)^(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)
_CHECK_CALL = re.compile(r"\b(check_\w+)\(\s*answer\s*\)")
_HIDING = {"remove-cell", "remove-input", "remove-output", "hide-input", "hide-output", "hide-cell"}
KEY_TAG = "answer-key"


@dataclass
class Copy:
    """What one instructor copy holds: solutions shown, code cells added and executed."""

    notebook: str
    solutions: int = 0  # solution blocks and solution-tagged cells, all shown
    code_cells: int = 0  # solution code and answer-key cells added
    executed: int = 0


def _options(body: str) -> str:
    lines = body.split("\n")
    while lines and re.match(r"^:[\w-]+:", lines[0]):
        lines.pop(0)
    return "\n".join(lines).strip("\n")


def _markdown(text: str, page: str, labels, numbers) -> str:
    return nbs.plain_markdown(text, page, labels, numbers=numbers)


def _code_cell(source: str, tags: list[str]):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def expand_markdown_cell(cell, page: str, labels: dict, numbers: dict) -> tuple[list, int]:
    """The cells that replace one markdown cell, with its solutions shown; and their number."""
    text, out, shown = cell.source, [], 0
    pieces: list[tuple[str, str]] = []  # ("md" | "code", text)
    pos = 0
    for m in _SOLUTION.finditer(text):
        pieces.append(("md", text[pos : m.start()]))
        label = m["label"].strip()
        n = numbers.get(label)
        head = f"**Solution to Exercise {n}** ({label})" if n else f"**Solution** ({label})"
        body = _options(m["body"])
        inner = 0
        for c in _PYTHON.finditer(body):
            pieces.append(("md", (head + "\n\n" if inner == 0 else "") + body[inner : c.start()]))
            pieces.append(("code", c["code"].rstrip("\n")))
            inner = c.end()
        rest = body[inner:]
        pieces.append(("md", (head + "\n\n" if inner == 0 else "") + rest + "\n"))
        shown += 1
        pos = m.end()
    pieces.append(("md", text[pos:]))
    md = []
    for kind, chunk in pieces:
        if kind == "md":
            md.append(chunk)
            continue
        joined = "\n\n".join(p.strip("\n") for p in md if p.strip())
        if joined:
            out.append(nbformat.v4.new_markdown_cell(_markdown(joined, page, labels, numbers)))
        md = []
        if re.search(r"^answer\s*=", chunk, re.MULTILINE):  # show the value the solution finds
            chunk += "\nanswer"
        out.append(_code_cell(chunk, ["solution", KEY_TAG]))
    joined = "\n\n".join(p.strip("\n") for p in md if p.strip())
    if joined:
        out.append(nbformat.v4.new_markdown_cell(_markdown(joined, page, labels, numbers)))
    if out and "id" in cell:  # the first piece keeps the cell's id, so links into it still work
        out[0]["id"] = cell["id"]
    for c in out:
        if c.cell_type == "markdown":
            c.metadata = dict(cell.metadata)
    return out, shown


def answer_key_cell(check_name: str):
    """The answer-key cell after a self-checking exercise's answer cell, or None if unknown."""
    ids = [k for k, f in CHECKERS.items() if f.__name__ == check_name]
    if not ids:
        return None
    ex = ids[0]
    return _code_cell(
        "# Answer key: the reference answer, computed by vghlib, and the check on it\n"
        "from vghlib import exercises\n\n"
        f'answer = exercises.reference("{ex}")\n'
        'print("reference answer:", answer)\n'
        f'exercises.CHECKERS["{ex}"](answer)',
        [KEY_TAG],
    )


def instructor_notebook(nb, page: str, labels: dict, numbers: dict) -> tuple[object, Copy]:
    """The instructor copy of one notebook (not executed) and what it holds."""
    copy = Copy(page)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            new, shown = expand_markdown_cell(cell, page, labels, numbers)
            copy.solutions += shown
            copy.code_cells += sum(c.cell_type == "code" for c in new)
            cells += [c for c in new if c.cell_type == "code" or c.source.strip()]
            continue
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:  # a solution cell: shown, with its output
            cell.metadata["tags"] = [t for t in tags if t not in _HIDING]
            copy.solutions += 1
        cells.append(cell)
        if cell.cell_type == "code" and "solution" not in tags:
            m = _CHECK_CALL.search(cell.source)
            key = answer_key_cell(m[1]) if m else None
            if key is not None:
                cells.append(key)
                copy.code_cells += 1
    nb.cells = cells
    return nb, copy


def _setup_cell(nb):
    """The notebook's first code cell after its generated head cells (its imports), or None."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and not {nbs.MACROS_TAG, nbs.INSTALL_TAG} & set(tags):
            return cell
    return None


def execute_new_cells(nb, folder: Path, timeout: int = 300) -> int:
    """Run every solution or answer-key cell in one kernel, after the setup cell when there is
    solution code; store the outputs of the new cells. Returns how many ran; a failing cell
    raises."""
    new = [c for c in nb.cells if KEY_TAG in c.metadata.get("tags", [])]
    if not new:
        return 0
    # Solution code may use the chapter's imports; answer-key cells import what they need.
    needs_setup = any("solution" in c.metadata.get("tags", []) for c in new)
    setup = _setup_cell(nb) if needs_setup else None
    run = nbformat.v4.new_notebook()
    run.metadata = nb.metadata
    run.cells = ([nbformat.from_dict(dict(setup))] if setup is not None else []) + [
        nbformat.from_dict(dict(c)) for c in new
    ]
    for c in run.cells:
        c.outputs, c.execution_count = [], None
    NotebookClient(
        run, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    for cell, done in zip(new, run.cells[len(run.cells) - len(new) :]):
        cell.outputs, cell.execution_count = done.outputs, done.execution_count
    return len(new)


def export_instructor_copy(src_root, dest_root, execute: bool = True) -> list[Copy]:
    """Write the instructor copy of every notebook under ``src_root`` to ``dest_root``."""
    src_root, dest_root = Path(src_root), Path(dest_root)
    if src_root.resolve() in (dest_root.resolve(), *dest_root.resolve().parents):
        raise ValueError("dest_root must lie outside the book folder, e.g. _build/instructor/")
    paths = [p for p in sorted(src_root.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    labels = nbs.label_pages(src_root)
    numbers = student.exercise_numbers(paths, src_root)
    report = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        page = path.relative_to(src_root.parent).with_suffix("").as_posix()
        nb, copy = instructor_notebook(nb, page, labels, numbers)
        copy.notebook = path.relative_to(src_root).as_posix()
        if execute:
            copy.executed = execute_new_cells(nb, path.parent)
        out = dest_root / path.relative_to(src_root)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        report.append(copy)
    return report


_SHOWN = re.compile(r"\*\*Solution(?: to Exercise \d+)?\*\* \((?P<label>[^)\n]*)\)")


def solution_labels(nb) -> list[str]:
    """The label of every solution in a book notebook: its ``{solution}`` blocks, then the ids of
    its cells tagged ``solution``."""
    blocks = [
        m["label"].strip()
        for c in nb.cells
        if c.cell_type == "markdown"
        for m in _SOLUTION.finditer(c.source)
    ]
    cells = [c.get("id", "") for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    return blocks + cells


def missing_solutions(src_root, copy_root) -> list[tuple[str, str]]:
    """(notebook, label) of each solution of the book that its instructor copy does not show."""
    src_root, copy_root = Path(src_root), Path(copy_root)
    missing = []
    for path in sorted(src_root.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(src_root).as_posix()
        want = solution_labels(nbformat.read(path, as_version=4))
        copy = copy_root / rel
        if not copy.is_file():
            missing += [(rel, label) for label in want]
            continue
        cells = nbformat.read(copy, as_version=4).cells
        shown = {
            m["label"]
            for c in cells
            if c.cell_type == "markdown"
            for m in _SHOWN.finditer(c.source)
        }
        kept = {c.get("id") for c in cells if "solution" in c.metadata.get("tags", [])}
        missing += [(rel, label) for label in want if label not in shown | kept]
    return missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.instructor",
        description="Instructor copies of the book's notebooks, every solution shown.",
    )
    ap.add_argument("--src", default="book", help="folder with the book's notebooks")
    ap.add_argument("--out", default="_build/instructor", help="where to write the copies")
    ap.add_argument(
        "--no-execute", action="store_true", help="add the solution cells without running them"
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = export_instructor_copy(args.src, args.out, execute=not args.no_execute)
    for r in rows:
        print(
            f"{r.notebook:<34} {r.solutions:2d} solution(s) shown, {r.code_cells} code cell(s) "
            f"added, {r.executed} executed"
        )
    print(
        f"{len(rows)} notebooks written to {args.out}/ with {sum(r.solutions for r in rows)} "
        f"solutions shown ({time.time() - t0:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
