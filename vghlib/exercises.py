"""Self-checking exercises: tell a reader whether an answer is right, never what the answer is.

Reference: the exercises of each chapter of the book (``book/course.md`` lists them). Every
checker is named ``check_<chapter>_<topic>``, takes the reader's ``answer`` (``None`` means "no
answer yet") and returns a :class:`Feedback`. The reference is computed here from the library's
own functions, never typed in by hand, and the feedback shows a verdict and a hint, never the
expected value. The math modules know nothing of exercises: this module imports them, not the
other way round.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp
import torch

from vghlib.systems import lq_objective, lq_policy_value, lq_value_grad, scalar_lq

NO_ANSWER = "no answer yet: set your answer variable and run the cell again"

__all__ = [
    "Feedback",
    "check_numeric",
    "check_symbolic",
    "CHECKERS",
    "reference",
    "check_sfpd_var",
    "check_sfpd_cross",
    "check_costates_riccati",
    "check_ctrl_factor",
    "check_ctrl_grad",
    "check_gap_crossover",
    "check_credit_group_mean",
    "check_proofs_sup_ratio",
    "check_grpo_dead_group",
    "check_impact_scale",
]


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer. Truthy when correct, so tests can ``assert`` it."""

    exercise: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __repr__(self) -> str:
        if not self.correct and self.message.startswith("no answer yet"):  # nothing to judge yet
            return f"[{self.exercise}] {self.message}"
        mark = "correct" if self.correct else "not yet"
        return f"[{self.exercise}] {mark}: {self.message}"

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))  # noqa: E731


def check_numeric(
    exercise: str, answer, expected, *, rtol: float = 1e-2, atol: float = 1e-8, hint: str = ""
) -> Feedback:
    """Compare a numeric answer (scalar or array) with a reference computed by vghlib."""
    if answer is None:
        return Feedback(exercise, False, NO_ANSWER)
    try:
        a = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return Feedback(
            exercise, False, f"expected a number or an array, got {type(answer).__name__}"
        )
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


# The registry: exercise id -> (checker, reference). ``reference(id)`` is for teachers and tests.
CHECKERS: dict[str, Callable[..., Feedback]] = {}
_REFERENCES: dict[str, Callable[[], object]] = {}


def _exercise(exercise_id: str, ref: Callable[[], object]):
    def wrap(fn):
        CHECKERS[exercise_id] = fn
        _REFERENCES[exercise_id] = ref
        return fn

    return wrap


def reference(exercise_id: str):
    """The reference answer of an exercise, computed by the library (for teachers and tests)."""
    if exercise_id not in _REFERENCES:
        raise KeyError(f"unknown exercise {exercise_id!r}; known: {sorted(_REFERENCES)}")
    return _REFERENCES[exercise_id]()


def _none(exercise_id: str, what: str) -> Feedback:
    return Feedback(
        exercise_id, False, f"no answer yet: set `answer` to {what} and run the cell again"
    )


def _ref(module: str, function: str, *args, index: int | None = None) -> Callable[[], object]:
    """A reference computed on demand by ``module.function(*args)`` (optionally its ``[index]``)."""

    def ref():
        out = getattr(importlib.import_module(module), function)(*args)
        return out if index is None else out[index]

    return ref


def _numeric(
    exercise_id: str,
    name: str,
    ref: Callable[[], float],
    *,
    rtol: float,
    hint: str,
    what: str | None = None,
    doc: str,
) -> Callable[..., Feedback]:
    """A checker ``name(answer)`` for a numeric exercise whose reference is ``ref()``.

    ``what`` names the expected answer in the "no answer yet" message (None: "a number", in the
    message form the Part III and appendix chapters print).
    """

    def check(answer) -> Feedback:
        if answer is None:
            if what is None:
                return Feedback(
                    exercise_id,
                    False,
                    "no answer yet (set `answer` to a number and run the cell again)",
                )
            return _none(exercise_id, what)
        return check_numeric(exercise_id, answer, ref(), rtol=rtol, hint=hint)

    check.__name__ = check.__qualname__ = name
    check.__doc__ = doc
    return _exercise(exercise_id, ref)(check)


# ------------------------------------------------------------------ Part I: SF vs PD (sf_vs_pd)


def _sf_variance_quadratic():
    """Var of the one-sample SF estimator of ∂_μ E[x²], x ~ N(μ, σ²), by sympy integration."""
    mu, sigma = sp.symbols("mu sigma", positive=True)
    z = sp.symbols("z", real=True)
    phi = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
    g = (mu + sigma * z) ** 2 * z / sigma  # c(x) ∂_μ log p(x) with x = μ + σ z
    second = sp.integrate(sp.expand(g**2 * phi), (z, -sp.oo, sp.oo))
    first = sp.integrate(sp.expand(g * phi), (z, -sp.oo, sp.oo))
    return sp.simplify(second - first**2), (mu, sigma)


@_exercise("sfpd-ex-var", lambda: _sf_variance_quadratic()[0])
def check_sfpd_var(answer) -> Feedback:
    """Var of the one-sample SF estimator of ∂_μ E[x²] for x ~ N(μ, σ²).

    ``answer`` is a sympy expression (or a string) in the symbols ``mu`` and ``sigma``.
    """
    if answer is None:
        return _none("sfpd-ex-var", "an expression in mu and sigma")
    ref, (mu, sigma) = _sf_variance_quadratic()
    if isinstance(answer, str):
        try:
            answer = sp.sympify(answer, locals={"mu": mu, "sigma": sigma})
        except (sp.SympifyError, TypeError, SyntaxError) as err:
            return Feedback(
                "sfpd-ex-var", False, f"could not read your answer as an expression: {err}"
            )
    else:  # rebind the reader's symbols to the positive ones used by the reference
        answer = sp.sympify(answer).subs({sp.Symbol("mu"): mu, sp.Symbol("sigma"): sigma})
    return check_symbolic(
        "sfpd-ex-var",
        answer,
        ref,
        hint="expand (μ+σz)² z/σ, square it, and use E z² = 1, E z⁴ = 3, E z⁶ = 15",
    )


check_sfpd_cross = _numeric(
    "sfpd-ex-cross",
    "check_sfpd_cross",
    _ref("vghlib.estimators", "cosine_crossover", 1.0),
    rtol=1e-2,
    what="a number (the crossing frequency)",
    hint="solve Var_PD(ω) = Var_SF(ω) numerically, e.g. with scipy.optimize.brentq",
    doc="The frequency ω* where the PD and SF variances of ∂_μ E[cos ωx] cross (σ = 1, μ = 0).",
)


# ------------------------------------------------------------------ Part I: costates


def _riccati_value_grad():
    sys_, K, sigma = scalar_lq()
    P, _ = lq_policy_value(sys_, K, sigma)
    return float(lq_value_grad(P, torch.tensor([[2.0]], dtype=torch.float64), 0)[0, 0])


check_costates_riccati = _numeric(
    "costates-ex-riccati",
    "check_costates_riccati",
    _riccati_value_grad,
    rtol=1e-3,
    what="your value of G_1(2)",
    hint="run P_t backwards from P_4 = 0 with the closed-loop factor A + BK, and remember "
    "G = 2 P_1 s (P_1 < 0)",
    doc="The value gradient G_1(s) at s = 2 of vghlib.systems.scalar_lq (A = 0.9, B = 0.5, Q = 1, "
    "R = 0.1, T = 3, γ = 0.9) under a = −0.8 s + 0.3 ξ.",
)


# ------------------------------------------------------------------ Part II: continuous control

check_ctrl_factor = _numeric(
    "ctrl-ex-factor",
    "check_ctrl_factor",
    _ref("vghlib.grpo", "group_mean_scale", 6),
    rtol=1e-3,
    what="the factor c",
    hint="split the group mean into the sample's own share and the share of the other n − 1 "
    "rollouts",
    doc="E[g_SF with the group-mean baseline] = c · ∂J/∂θ; give c for a group of 6.",
)


def _lq_policy_gradient():
    sys_, K, sigma = scalar_lq()
    K1 = K.clone().requires_grad_(True)
    s1 = torch.tensor([2.0], dtype=torch.float64)
    (g,) = torch.autograd.grad(lq_objective(sys_, K1, sigma, initial_state=s1), K1)
    return float(g[0, 0])


check_ctrl_grad = _numeric(
    "ctrl-ex-grad",
    "check_ctrl_grad",
    _lq_policy_gradient,
    rtol=2e-2,
    what="your value of ∂J/∂K",
    hint="J(K) = s_1 P_1(K) s_1 + c_1(K); differentiate the Riccati recursion (lq_value_params "
    "keeps the graph) or average dR_1/dK",
    doc="The exact ∂J/∂K at K = −0.8 (one constant gain) of vghlib.systems.scalar_lq with σ = 0.3 "
    "and s_1 = 2. Any method is fine (Riccati + autograd, or a Monte Carlo PD estimate with "
    "enough rollouts: rtol is 2 %).",
)


# ------------------------------------------------------------------ Part III: discrete tokens

check_gap_crossover = _numeric(
    "gap-crossover",
    "check_gap_crossover",
    _ref("vghlib.sampling_gap", "crossover_entropy", 32),
    rtol=2e-3,
    hint="set the two bounds equal and solve for H; C_V comes from c_vocab",
    doc="The entropy H* (nats) below which the linear bound H beats C_V √(H/log|V|), for |V| = 32.",
)


check_credit_group_mean = _numeric(
    "credit-group-mean",
    "check_credit_group_mean",
    _ref("vghlib.grpo", "group_mean_scale", 8),
    rtol=1e-3,
    hint="write Â_i = (1 - 1/n) r_i - (1/n) Σ_{j≠i} r_j and use independence of the samples",
    doc="The factor E[λ̂] / G under a group-mean baseline, for a group of 8.",
)


# ------------------------------------------------------------------ Appendix: proofs

check_proofs_sup_ratio = _numeric(
    "proofs-sup-ratio",
    "check_proofs_sup_ratio",
    _ref("vghlib.sampling_gap", "sup_gap_over_entropy", 8, index=0),
    rtol=2e-3,
    hint="for a fixed p_max, which distribution has the least entropy?",
    doc="The largest value of (1 − p_max) / H (nats) over all distributions, 3 digits.",
)


# ------------------------------------------------------------------ Part IV: the impact law

check_grpo_dead_group = _numeric(
    "grpo-dead-group",
    "check_grpo_dead_group",
    _ref("vghlib.grpo", "zero_advantage_probability", 0.25, 8),
    rtol=1e-3,
    hint="a group carries no signal when all 8 answers agree: all right or all wrong",
    doc="The probability that a group of 8 answers at p(y*|q) = 0.25 has every advantage 0.",
)

check_impact_scale = _numeric(
    "impact-scale",
    "check_impact_scale",
    _ref("vghlib.impact", "grpo_costate_scale", 0.5, 2),
    rtol=2e-3,
    hint="with n = 2 only the mixed groups count; write both advantages with the unbiased std",
    doc="The factor c(p, n) of E[λ̂ | h] = c·G for GRPO advantages at p = 0.5 and n = 2.",
)
