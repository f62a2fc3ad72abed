"""Homework notebooks and rubrics of the course plan, written from one file.

Reference: the teaching kit of the book (``book/teaching_kit.md``). ``course/homework.yml`` lists,
per session, the questions (each one a self-checking exercise of :mod:`vghlib.exercises`) and a
written question with its marking criteria. ``python -m tools.homework --write`` (``make homework``)
writes from it

* ``course/homework/session-N.ipynb``: the book's macros and install cell first (as in every
  notebook of the book, :func:`tools.notebooks.head_cells`), a name field, one answer cell per
  question that runs its checker, the written question, and a last cell that grades every question
  with :func:`vghlib.homework.grade`, prints ``score: k/n`` and saves a JSON record;
* ``course/rubrics/session-N.md``: what a full answer contains, with points.

``--check`` fails when a written file differs from what the spec gives (a test runs it), and
``--collect FOLDER`` prints a table of the JSON records that students handed in.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat
import yaml

from tools import REPO_ROOT
from tools import notebooks as nbs
from vghlib.exercises import CHECKERS

SPEC = REPO_ROOT / "course" / "homework.yml"
NOTEBOOKS = REPO_ROOT / "course" / "homework"
RUBRICS = REPO_ROOT / "course" / "rubrics"


class SpecError(ValueError):
    """The homework spec names something that does not exist, or is incomplete."""


def load(spec: Path = SPEC) -> list[dict]:
    """The sessions of the spec, checked: known exercises, whole points, distinct sessions."""
    data = yaml.safe_load(Path(spec).read_text())
    sessions = data.get("sessions") or []
    seen = set()
    for s in sessions:
        n = s.get("session")
        where = f"{spec}: session {n}"
        if not isinstance(n, int) or n in seen:
            raise SpecError(f"{where}: each session needs a distinct whole number")
        seen.add(n)
        for key in ("title", "chapters", "questions", "written"):
            if not s.get(key):
                raise SpecError(f"{where}: missing {key!r}")
        for q in s["questions"]:
            if q.get("exercise") not in CHECKERS:
                raise SpecError(
                    f"{where}: no checker for exercise {q.get('exercise')!r}; "
                    f"known: {sorted(CHECKERS)}"
                )
            for key in ("text", "answer", "full"):
                if not q.get(key):
                    raise SpecError(f"{where}, {q['exercise']}: missing {key!r}")
        for c in s["written"].get("criteria") or []:
            if not (isinstance(c, list) and len(c) == 2 and isinstance(c[0], int) and c[1]):
                raise SpecError(f"{where}: a criterion must be [points, text], got {c!r}")
        if not s["written"].get("criteria") or not s["written"].get("text"):
            raise SpecError(f"{where}: the written question needs text and criteria")
    return sorted(sessions, key=lambda s: s["session"])


def page_title(page: str) -> str:
    """The first heading of a page of the book (``book/part1/costates`` -> its H1)."""
    path = REPO_ROOT / f"{page}.ipynb"
    if path.is_file():
        cells = nbformat.read(path, as_version=4).cells
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    else:
        text = (REPO_ROOT / f"{page}.md").read_text()
    m = re.search(r"^# (.+)$", text, re.MULTILINE)
    if not m:
        raise SpecError(f"{page}: no page of the book with a title there")
    return m[1].strip()


def _page_link(page: str) -> str:
    return f"[{page_title(page)}]({nbs.book_url()}{page}.html)"


def _fold(text: str) -> str:
    return expand_macros(" ".join(text.split()))


def _braced(text: str, i: int) -> tuple[str, int]:
    """The argument in braces that starts at ``text[i]`` and the index after it."""
    if i >= len(text) or text[i] != "{":
        raise ValueError(f"expected {{ at {i} in {text!r}")
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j], j + 1
    raise ValueError(f"unbalanced braces in {text!r}")


def expand_macros(text: str, macros: dict | None = None) -> str:
    """Replace the book's LaTeX macros (``_config.yml``) by their bodies.

    The rubrics are read where the book's macros are not defined (a repository browser, a
    printout), so they carry plain LaTeX: ``\\norm{x}`` becomes ``\\left\\lVert x ...``.
    """
    macros = macros if macros is not None else nbs.macros()
    names = sorted(macros, key=len, reverse=True)
    pattern = re.compile(r"\\(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z])")
    out, i = [], 0
    while m := pattern.search(text, i):
        body, n = macros[m[1]], 0
        if isinstance(body, list):
            body, n = body
        j, args = m.end(), []
        for _ in range(n):
            arg, j = _braced(text, j)
            args.append(expand_macros(arg, macros))
        for k, arg in enumerate(args, 1):
            body = body.replace(f"#{k}", arg)
        out += [text[i : m.start()], body]
        i = j
    return "".join(out) + text[i:]


def _questions(k: int) -> str:
    return {1: "Question 1 is", 2: "Questions 1 and 2 are"}.get(k, f"Questions 1 to {k} are")


def written_points(session: dict) -> int:
    return sum(c[0] for c in session["written"]["criteria"])


def _cell(kind: str, source: str, cell_id: str):
    cell = (nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell)(source)
    cell["id"] = cell_id
    return cell


def notebook(session: dict) -> nbformat.NotebookNode:
    """The homework notebook of one session of the spec."""
    n, qs = session["session"], session["questions"]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    head = nbs.head_cells()
    for i, c in enumerate(head):
        c["id"] = f"hw{n}-head{i}"
    chapters = ", ".join(_page_link(p) for p in session["chapters"])
    wp = written_points(session)
    cells = [
        *head,
        _cell(
            "md",
            f"# Homework, session {n}: {session['title']}\n\n"
            f"Read first: {chapters}.\n\n"
            f"{_questions(len(qs))} checked here: in the cell under each question, replace "
            "`None` by your answer and run the cell. The check says whether "
            "the answer is right, never what it is, and you may try again. Question "
            f"{len(qs) + 1} is written, in the markdown cell under it; your teacher marks it "
            f"({wp} points). When you are done, run the last cell: it prints your score and saves "
            f"a record, `homework-session-{n}-<your name>.json`, to hand in with this notebook.",
            f"hw{n}-intro",
        ),
        _cell(
            "code",
            'from vghlib import exercises\n\nSTUDENT = ""  # your name, as your teacher knows it',
            f"hw{n}-setup",
        ),
    ]
    for i, q in enumerate(qs, 1):
        cells.append(
            _cell("md", f"## Question {i} (1 point)\n\n{q['text'].strip()}", f"hw{n}-q{i}")
        )
        name = CHECKERS[q["exercise"]].__name__
        cells.append(
            _cell(
                "code",
                f"answer = None  # {q['answer']}\nexercises.{name}(answer)\nq{i} = answer",
                f"hw{n}-a{i}",
            )
        )
    w = len(qs) + 1
    cells += [
        _cell(
            "md",
            f"## Question {w} (written, {wp} points)\n\n{session['written']['text'].strip()}",
            f"hw{n}-q{w}",
        ),
        _cell("md", "*Your answer here (double-click to edit).*", f"hw{n}-a{w}"),
        _cell("md", "## Your score", f"hw{n}-score-head"),
        _cell(
            "code",
            "from vghlib.homework import grade\n\n"
            "record = grade(\n"
            f"    session={n},\n"
            "    student=STUDENT,\n"
            "    answers={\n"
            + "".join(f'        "{q["exercise"]}": q{i},\n' for i, q in enumerate(qs, 1))
            + "    },\n)",
            f"hw{n}-grade",
        ),
    ]
    nb.cells = cells
    return nb


def rubric(session: dict) -> str:
    """The rubric of one session, in Markdown."""
    n, qs = session["session"], session["questions"]
    wp = written_points(session)
    chapters = ", ".join(_page_link(p) for p in session["chapters"])
    lines = [
        f"# Rubric, session {n}: {session['title']}",
        "",
        f"Homework: `course/homework/session-{n}.ipynb`. Chapters: {chapters}.",
        "",
        f"Total: {len(qs) + wp} points. {_questions(len(qs))} checked by "
        f"the notebook ({len(qs)} points): the line `score: k/n` of its last cell and the record "
        f"`homework-session-{n}-<name>.json` give one point per answer the checker accepts "
        f'(`"correct": true`). Question {len(qs) + 1} ({wp} points) is marked by hand with the '
        "criteria below.",
        "",
        f"## Checked questions ({len(qs)} points)",
        "",
    ]
    for i, q in enumerate(qs, 1):
        lines.append(
            f"- **Question {i}** (1 point, `{q['exercise']}`). The working: {_fold(q['full'])}"
        )
    lines += [
        "",
        "The point goes with the checker's verdict. The working listed is what to look for when a "
        "student asks why an answer was refused, or when you give credit for the method.",
        "",
        f"## Question {len(qs) + 1}, written ({wp} points)",
        "",
        *(
            "> " + expand_macros(line) if line else ">"
            for line in session["written"]["text"].strip().split("\n")
        ),
        "",
        "A full answer contains:",
        "",
    ]
    for pts, text in session["written"]["criteria"]:
        lines.append(f"- **{pts} point{'s' if pts != 1 else ''}**: {_fold(text)}.")
    lines += [
        "",
        "Give each point when the answer states the idea in any words and justifies it; a number "
        "without its reasoning earns half.",
        "",
    ]
    return "\n".join(lines)


def _outputs(spec: Path, notebooks: Path, rubrics: Path) -> dict[Path, str]:
    out = {}
    for s in load(spec):
        n = s["session"]
        out[notebooks / f"session-{n}.ipynb"] = nbformat.writes(notebook(s)) + "\n"
        out[rubrics / f"session-{n}.md"] = rubric(s)
    return out


def write(spec: Path = SPEC, notebooks: Path = NOTEBOOKS, rubrics: Path = RUBRICS) -> list[Path]:
    """Write every homework notebook and rubric of the spec; returns the files that changed."""
    changed = []
    for path, text in _outputs(spec, notebooks, rubrics).items():
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed


def check(spec: Path = SPEC, notebooks: Path = NOTEBOOKS, rubrics: Path = RUBRICS) -> list[Path]:
    """The files that are missing or differ from what the spec gives (nothing is written)."""
    return [
        p
        for p, text in _outputs(spec, notebooks, rubrics).items()
        if not p.is_file() or p.read_text() != text
    ]


def collect(folder: Path) -> list[dict]:
    """The records ``homework-session-*.json`` in ``folder``, sorted by session and name."""
    rows = []
    for p in sorted(Path(folder).glob("homework-session-*.json")):
        r = json.loads(p.read_text())
        rows.append(
            {
                "file": p.name,
                "session": r["session"],
                "student": r["student"],
                "score": r["score"],
                "out_of": r["out_of"],
                "wrong": [q["question"] for q in r["questions"] if not q["correct"]],
            }
        )
    return sorted(rows, key=lambda r: (r["session"], r["student"].lower()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.homework",
        description="Write the homework notebooks and rubrics from course/homework.yml.",
    )
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help="write the notebooks and rubrics")
    g.add_argument("--check", action="store_true", help="exit 1 if a file differs from the spec")
    g.add_argument("--collect", metavar="FOLDER", help="tabulate the records handed in")
    a = ap.parse_args(argv)
    if a.collect:
        rows = collect(Path(a.collect))
        print(f"{'session':>7}  {'student':<28} {'score':>5}  not yet right")
        for r in rows:
            wrong = ", ".join(f"q{q}" for q in r["wrong"]) or "-"
            print(
                f"{r['session']:>7}  {r['student']:<28} {r['score']:>2}/{r['out_of']:<2}  {wrong}"
            )
        print(f"{len(rows)} records in {a.collect}")
        return 0
    if a.check:
        stale = check()
        for p in stale:
            print(f"stale: {p.relative_to(REPO_ROOT)}", file=sys.stderr)
        if stale:
            print("run `python -m tools.homework --write`", file=sys.stderr)
        return 1 if stale else 0
    for p in write():
        print(f"wrote {p.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
