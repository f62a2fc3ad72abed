"""The homework of the course plan: the notebooks and rubrics match their spec, a notebook answered
correctly scores full marks and an unanswered one 0, and the grading record is what a teacher
collects."""

import json
import re

import nbformat
import pytest

from tools import homework as H
from tools import notebooks as nbs
from vghlib import exercises as X
from vghlib.homework import grade, record_path

SESSIONS = H.load()


def test_the_committed_notebooks_and_rubrics_match_the_spec(tmp_path):
    assert H.check() == []
    # negative control: a spec with one changed word gives a notebook that differs
    spec = tmp_path / "homework.yml"
    spec.write_text(H.SPEC.read_text().replace("Two ways to differentiate", "Three ways"))
    stale = H.check(spec, H.NOTEBOOKS, H.RUBRICS)
    assert H.NOTEBOOKS / "session-1.ipynb" in stale and H.RUBRICS / "session-1.md" in stale


def test_a_spec_that_names_an_unknown_exercise_is_refused(tmp_path):
    spec = tmp_path / "homework.yml"
    spec.write_text(H.SPEC.read_text().replace("exercise: grpo-kl", "exercise: grpo-kl-typo", 1))
    with pytest.raises(H.SpecError, match="grpo-kl-typo"):
        H.load(spec)


def test_every_session_has_checked_questions_a_written_one_and_the_book_macros():
    assert [s["session"] for s in SESSIONS] == list(range(1, len(SESSIONS) + 1))
    paths = [H.NOTEBOOKS / f"session-{s['session']}.ipynb" for s in SESSIONS]
    assert nbs.sync(paths, check=True) == []  # the head cells of the book, up to date
    for s in SESSIONS:
        assert len(s["questions"]) >= 2 and H.written_points(s) >= 2


def _run(path, answers, student, workdir, monkeypatch):
    """Execute the homework notebook's code cells in this process, with ``answers`` (exercise id
    -> value) planted in the answer cells and ``student`` as the name; returns the namespace."""
    nb = nbformat.read(path, as_version=4)
    monkeypatch.chdir(workdir)
    ns = {"__planted__": answers}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = cell.source.replace('STUDENT = ""', f"STUDENT = {student!r}")
        m = re.match(
            r"answer = None  #[^\n]*\nexercises\.(check_\w+)\(answer\)\nq\d+ = answer$", src
        )
        if m:
            exercise = next(k for k, f in X.CHECKERS.items() if f.__name__ == m[1])
            src = src.replace("answer = None", f"answer = __planted__.get({exercise!r})", 1)
        exec(compile(src, f"{path.name}:{cell.id}", "exec"), ns)
    return ns


@pytest.mark.parametrize("session", SESSIONS, ids=lambda s: f"session-{s['session']}")
def test_right_answers_score_full_marks_and_no_answers_score_zero(
    session, tmp_path, monkeypatch, capsys
):
    path = H.NOTEBOOKS / f"session-{session['session']}.ipynb"
    right = {q["exercise"]: X.reference(q["exercise"]) for q in session["questions"]}
    n = len(right)
    ns = _run(path, right, "Ada Lovelace", tmp_path, monkeypatch)
    assert ns["record"]["score"] == n == ns["record"]["out_of"]
    assert f"score: {n}/{n}" in capsys.readouterr().out
    saved = json.loads(record_path(session["session"], "Ada Lovelace", tmp_path).read_text())
    assert saved["student"] == "Ada Lovelace" and saved["score"] == n
    assert [q["exercise"] for q in saved["questions"]] == list(right)
    # the negative control: the same notebook unanswered
    ns = _run(path, {}, "Ada Lovelace", tmp_path, monkeypatch)
    assert ns["record"]["score"] == 0 and f"score: 0/{n}" in capsys.readouterr().out


def test_grade_counts_each_verdict_and_never_prints_the_reference(tmp_path, capsys):
    ref = X.reference("grpo-dead-group")
    rec = grade(
        7,
        "B. Student",
        {"grpo-dead-group": ref, "grpo-kl": 0.5, "grpo-advantage": None},
        out_dir=tmp_path,
    )
    out = capsys.readouterr().out
    assert rec["score"] == 1 and rec["out_of"] == 3
    assert [q["correct"] for q in rec["questions"]] == [True, False, False]
    assert "q2 [grpo-kl] not yet" in out and "q3 [grpo-advantage] no answer" in out
    assert f"{X.reference('grpo-kl'):.3g}" not in out
    assert (tmp_path / "homework-session-7-b-student.json").is_file()


def test_grade_survives_a_malformed_answer_and_an_empty_name(tmp_path, capsys):
    rec = grade(1, "", {"sfpd-ex-var": object(), "sfpd-ex-cross": "abc"}, out_dir=tmp_path)
    assert rec["score"] == 0
    assert "set STUDENT" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # no record without a name
    with pytest.raises(KeyError, match="known"):
        grade(1, "x", {"no-such-exercise": 1.0}, out_dir=tmp_path)


def test_collect_tabulates_the_records(tmp_path):
    grade(2, "Zoe", {"costates-ex-riccati": X.reference("costates-ex-riccati")}, out_dir=tmp_path)
    grade(2, "adam", {"costates-ex-riccati": 1.0}, out_dir=tmp_path)
    rows = H.collect(tmp_path)
    assert [(r["student"], r["score"], r["wrong"]) for r in rows] == [
        ("adam", 0, [1]),
        ("Zoe", 1, []),
    ]


def test_the_rubrics_expand_the_book_macros():
    assert H.expand_macros(r"$\norm{\E[x]}$") == r"$\left\lVert \mathbb{E}[x] \right\rVert$"
    assert H.expand_macros(r"$\pd{V}{s}$") == r"$\frac{\partial V}{\partial s}$"
    assert H.expand_macros(r"$\Eq + \vgradient$") == r"$\Eq + \vgradient$"  # not macros
    macros = set(nbs.macros())
    for path in sorted(H.RUBRICS.glob("session-*.md")):
        used = set(re.findall(r"\\([A-Za-z]+)", path.read_text()))
        assert not used & macros, f"{path.name} uses the book's macros {used & macros}"
