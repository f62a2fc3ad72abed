"""Grading of the course's homework notebooks: checks each answer, prints a score, saves a record.

Reference: the teaching kit of the book (``book/teaching_kit.md``) and the homework notebooks of
``course/homework/``. Every question of a homework is one self-checking exercise of
:mod:`vghlib.exercises`, so a homework is graded by the same checkers that the chapters use, and
like them never shows the expected answer. :func:`grade` prints one line per question and
``score: k/n``, and writes a small JSON record (the student's name, the session, the verdict of
each question) that a teacher collects. Written questions are marked by the teacher with the
session's rubric; they are not part of this score.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

from vghlib.exercises import CHECKERS, Feedback

__all__ = ["grade", "record_path"]


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    return slug or "anonymous"


def record_path(session: int, student: str, out_dir=".") -> Path:
    """Where :func:`grade` saves the record: ``homework-session-<N>-<name>.json`` in ``out_dir``."""
    return Path(out_dir) / f"homework-session-{int(session)}-{_slug(student)}.json"


def _shown(answer) -> str | None:
    """The answer as text for the teacher (the student's own answer, never the reference)."""
    if answer is None:
        return None
    text = str(answer)
    return text if len(text) <= 200 else text[:197] + "..."


def grade(session: int, student: str, answers: dict, out_dir=".", save: bool = True) -> dict:
    """Check every answer of one homework, print the verdicts and the score, save the record.

    ``answers`` maps an exercise id of :data:`vghlib.exercises.CHECKERS` to the student's answer
    (``None``: not answered), in the order of the questions. Each correct answer scores one point.
    The record is written to :func:`record_path` when ``save`` is true and ``student`` is not
    empty (an empty name prints a reminder instead). Returns the record as a dict.
    """
    unknown = [k for k in answers if k not in CHECKERS]
    if unknown:
        raise KeyError(f"unknown exercise(s) {unknown}; known: {sorted(CHECKERS)}")
    rows = []
    for i, (exercise, answer) in enumerate(answers.items(), 1):
        try:
            fb = CHECKERS[exercise](answer)
        except Exception as err:  # a malformed answer is a wrong answer, not a crash of grading
            fb = Feedback(exercise, False, f"could not check this answer ({type(err).__name__})")
        answered = answer is not None
        rows.append(
            {
                "question": i,
                "exercise": exercise,
                "answered": answered,
                "correct": bool(fb.correct),
                "points": int(bool(fb.correct)),
                "message": fb.message,
                "answer": _shown(answer),
            }
        )
        verdict = "correct" if fb.correct else ("not yet" if answered else "no answer")
        line = f"q{i} [{exercise}] {verdict}"
        if answered and not fb.correct:
            line += f": {fb.message}"
        print(line)
    score = sum(r["points"] for r in rows)
    record = {
        "session": int(session),
        "student": student.strip(),
        "score": score,
        "out_of": len(rows),
        "questions": rows,
        "graded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"score: {score}/{len(rows)}")
    if save and student.strip():
        path = record_path(session, student, out_dir)
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        print(f"saved {path.name}: hand it in with your notebook")
    elif save:
        print("set STUDENT to your name and run this cell again to save your record")
    return record
