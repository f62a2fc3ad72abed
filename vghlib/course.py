"""Self-checking exercises: tell a reader in the notebook whether an answer is right.

A chapter's module defines the reference for each exercise (computed by vghlib, never typed in
by hand) and calls :func:`check_numeric` or :func:`check_symbolic`. The reader sees a one-line
verdict with a hint, never the expected value itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp


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
    try:
        diff = sp.simplify(sp.sympify(answer) - sp.sympify(expected))
    except (sp.SympifyError, TypeError) as err:
        return Feedback(exercise, False, f"could not read your answer as an expression: {err}")
    if diff == 0:
        return Feedback(exercise, True, "equal to the reference after simplification")
    return Feedback(exercise, False, hint or "differs from the reference after simplification")
