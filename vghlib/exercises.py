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
from scipy import integrate, special

from vghlib.systems import (
    lq_objective,
    lq_policy_value,
    lq_value,
    lq_value_grad,
    lqr_gains,
    scalar_lq,
)
from vghlib.tables import wrap

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
    "check_sfpd_pd_var",
    "check_costates_lq_value",
    "check_proofs_tight",
    "check_ctrl_lqr",
    "check_gap_jac_norm",
    "check_credit_relaxed_ratio",
    "check_grpo_advantage",
    "check_grpo_kl",
    "check_impact_headroom",
    "check_impact_scale_n8",
    "check_olmo2_bf16",
    "check_olmo2_jac_norm",
    "check_olmo2_paper_bound",
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
        """One line, wrapped to the book's text column (:data:`vghlib.tables.TEXT_WIDTH`)."""
        if not self.correct and self.message.startswith("no answer yet"):  # nothing to judge yet
            return wrap(f"[{self.exercise}] {self.message}")
        mark = "correct" if self.correct else "not yet"
        return wrap(f"[{self.exercise}] {mark}: {self.message}")

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
    _ref("vghlib.grpo", "group_mean_scale", 12),
    rtol=1e-3,
    what="the factor c",
    hint="split the baseline into the sample's own share and the share of the 11 other returns",
    doc="E[g_SF with a baseline that is the mean of 12 returns, the sample's own among them] "
    "= c · ∂J/∂θ; give c.",
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
    _ref("vghlib.grpo", "group_mean_scale", 5),
    rtol=1e-3,
    hint="write Â_i = (1 - 1/n) r_i - (1/n) Σ_{j≠i} r_j and use independence of the samples",
    doc="The factor E[λ̂] / G under a group-mean baseline, for a group of 5 (the chapter: 2, 4, 8).",
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


# ------------------------------------------------------------------ Homework of the course plan
# The checkers below belong to the homework notebooks of the course plan (``course/homework/``);
# the same rules hold: the reference is computed by the library, and the verdict never shows it.


def _read_mu_sigma(exercise_id: str, answer, mu, sigma):
    """The reader's expression with ``mu`` and ``sigma`` bound to the reference's symbols, or the
    Feedback that says why it could not be read."""
    if isinstance(answer, str):
        try:
            return sp.sympify(answer, locals={"mu": mu, "sigma": sigma})
        except (sp.SympifyError, TypeError, SyntaxError) as err:
            return Feedback(
                exercise_id, False, f"could not read your answer as an expression: {err}"
            )
    try:
        return sp.sympify(answer).subs({sp.Symbol("mu"): mu, sp.Symbol("sigma"): sigma})
    except (sp.SympifyError, TypeError) as err:
        return Feedback(exercise_id, False, f"could not read your answer as an expression: {err}")


def _pd_variance_quadratic():
    """Var of the one-sample PD estimator of ∂_μ E[x²], x = μ + σ z, by sympy integration."""
    mu, sigma = sp.symbols("mu sigma", positive=True)
    z = sp.symbols("z", real=True)
    phi = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
    g = sp.diff((mu + sigma * z) ** 2, mu)  # the pathwise sample c'(x) ∂x/∂μ
    second = sp.integrate(sp.expand(g**2 * phi), (z, -sp.oo, sp.oo))
    first = sp.integrate(sp.expand(g * phi), (z, -sp.oo, sp.oo))
    return sp.simplify(second - first**2), (mu, sigma)


@_exercise("sfpd-pd-var", lambda: _pd_variance_quadratic()[0])
def check_sfpd_pd_var(answer) -> Feedback:
    """Var of the one-sample PD estimator of ∂_μ E[x²] for x ~ N(μ, σ²).

    ``answer`` is a sympy expression (or a string) in the symbols ``mu`` and ``sigma``.
    """
    if answer is None:
        return _none("sfpd-pd-var", "an expression in mu and sigma")
    ref, (mu, sigma) = _pd_variance_quadratic()
    read = _read_mu_sigma("sfpd-pd-var", answer, mu, sigma)
    if isinstance(read, Feedback):
        return read
    return check_symbolic(
        "sfpd-pd-var",
        read,
        ref,
        hint="the pathwise sample is the derivative of the cost at x = μ + σz with respect to μ",
    )


def _riccati_value():
    sys_, K, sigma = scalar_lq()
    P, c = lq_policy_value(sys_, K, sigma)
    return float(lq_value(P, c, torch.tensor([[2.0]], dtype=torch.float64), 0)[0])


check_costates_lq_value = _numeric(
    "costates-lq-value",
    "check_costates_lq_value",
    _riccati_value,
    rtol=1e-3,
    what="your value of V_1(2)",
    hint="V_1(s) = P_1 s² + c_1: the constant c_t collects the policy noise, "
    "c_t = −σ²R + γ(σ²B²P_{t+1} + c_{t+1}) from c_4 = 0",
    doc="The value V_1(s) at s = 2 of vghlib.systems.scalar_lq under a = −0.8 s + 0.3 ξ "
    "(no process noise).",
)


def _tight_ratio():
    sg = importlib.import_module("vghlib.sampling_gap")
    p = torch.tensor([0.9, 0.1], dtype=torch.float64)
    return float(sg.softmax_jacobian_top_eigenvalue(p)) / float(1 - p.max())


check_proofs_tight = _numeric(
    "proofs-tight",
    "check_proofs_tight",
    _tight_ratio,
    rtol=2e-3,
    what="the ratio ‖M‖ / (1 − p_max)",
    hint="for two tokens M = diag(p) − ppᵀ is a multiple of one fixed 2×2 matrix",
    doc="‖diag(p) − ppᵀ‖₂ / (1 − p_max) at p = (0.9, 0.1).",
)


def _lqr_first_gain():
    sys_, _, _ = scalar_lq()
    gains, _ = lqr_gains(sys_)
    return float(gains[0, 0, 0])


check_ctrl_lqr = _numeric(
    "ctrl-lqr",
    "check_ctrl_lqr",
    _lqr_first_gain,
    rtol=2e-3,
    what="the optimal gain K_1",
    hint="run the optimal Riccati recursion backwards from S_4 = 0: the last gain is 0, and each "
    "K_t minimises the one-step cost plus γ S_{t+1} (A + B K)²",
    doc="The optimal (LQR) gain K_1 of the first step of vghlib.systems.scalar_lq (A = 0.9, "
    "B = 0.5, Q = 1, R = 0.1, T = 3, γ = 0.9).",
)


def _top_eigenvalue(p) -> float:
    sg = importlib.import_module("vghlib.sampling_gap")
    return float(sg.softmax_jacobian_top_eigenvalue(torch.as_tensor(p, dtype=torch.float64)))


check_gap_jac_norm = _numeric(
    "gap-jac-norm",
    "check_gap_jac_norm",
    lambda: _top_eigenvalue([0.6, 0.3, 0.1]),
    rtol=2e-3,
    what="the spectral norm",
    hint="the matrix is symmetric and positive semidefinite: its norm is its largest eigenvalue, "
    "which lies between the two largest probabilities",
    doc="‖diag(p) − ppᵀ‖₂ at p = (0.6, 0.3, 0.1), the left side of Prop 2 at τ = 1.",
)


def _relaxed_over_exact(delta: float = 4.0, tau: float = 0.5) -> float:
    """E[λ^τ] / G for one step, two tokens, reward 1[o = 0] and logit difference ``delta``.

    V = σ(Δ), so G = σ(Δ)(1 − σ(Δ)); the relaxed sample is y_0 = σ((Δ + g)/τ) with g a standard
    logistic variable, so E[λ^τ] = E[σ'((Δ + g)/τ)] / τ, integrated numerically.
    """

    def dsig(x):
        s = special.expit(x)
        return s * (1 - s)

    lo, hi = -delta - 60 * max(tau, 1.0), 60.0
    mean, _ = integrate.quad(
        lambda g: dsig((delta + g) / tau) / tau * dsig(g),
        lo,
        hi,
        points=[-delta, 0.0],
        epsabs=0,
        epsrel=1e-9,
        limit=400,
    )
    return mean / float(dsig(delta))


check_credit_relaxed_ratio = _numeric(
    "credit-relaxed-ratio",
    "check_credit_relaxed_ratio",
    _relaxed_over_exact,
    rtol=2e-3,
    what="the ratio E[λ^τ] / G",
    hint="differentiate E[σ((Δ + g)/τ)] under the expectation and integrate against the "
    "logistic density numerically (scipy.integrate.quad)",
    doc="E[λ^τ] / G for one step, two tokens, reward 1[o_1 = 0], logit difference Δ = 4 and "
    "temperature τ = 1/2 (the setting of the exercise credit-ex-zero).",
)


def _grpo_success_advantage():
    g = importlib.import_module("vghlib.grpo")
    return float(g.advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64))[0, 0])


check_grpo_advantage = _numeric(
    "grpo-advantage",
    "check_grpo_advantage",
    _grpo_success_advantage,
    rtol=1e-3,
    what="the advantage of the correct answer",
    hint="eq 1: subtract the group mean and divide by the group's std (unbiased, n − 1) plus "
    "ξ = 1e-4",
    doc="The GRPO advantage of the one correct answer in a group of four with rewards "
    "(1, 0, 0, 0).",
)


def _k3_half_quarter():
    g = importlib.import_module("vghlib.grpo")
    logp = torch.tensor(np.log(0.5), dtype=torch.float64)
    ref_logp = torch.tensor(np.log(0.25), dtype=torch.float64)
    return float(g.k3_kl(logp, ref_logp))


check_grpo_kl = _numeric(
    "grpo-kl",
    "check_grpo_kl",
    _k3_half_quarter,
    rtol=1e-3,
    what="the k3 estimate",
    hint="k3 = ρ − log ρ − 1 with ρ = π_ref / π_θ of the sampled token",
    doc="The per-token k3 estimate of eq 1's KL term for a token with π_θ = 0.5 and π_ref = 0.25.",
)


check_impact_headroom = _numeric(
    "impact-headroom",
    "check_impact_headroom",
    _ref("vghlib.impact", "bernoulli_headroom", 0.25, 2.0),
    rtol=1e-3,
    what="the headroom",
    hint="eq 28 for a 0/1 reward: the log of the mean of exp(αr), over α, minus the mean of r",
    doc="The headroom H_α (eq 28) of a 0/1 reward with success probability 0.25, α = 2.",
)

check_impact_scale_n8 = _numeric(
    "impact-scale-n8",
    "check_impact_scale_n8",
    _ref("vghlib.impact", "grpo_costate_scale", 0.25, 8),
    rtol=2e-3,
    what="the factor c(0.25, 8)",
    hint="condition on the number of successes among the other 7 answers (a binomial), write "
    "both advantages for each count, and average",
    doc="The factor c(p, n) of E[λ̂ | h] = c·G for GRPO advantages at p = 0.25 and n = 8.",
)


def _bf16_rounding():
    return float(torch.finfo(torch.bfloat16).eps) / 2


check_olmo2_bf16 = _numeric(
    "olmo2-bf16",
    "check_olmo2_bf16",
    _bf16_rounding,
    rtol=1e-3,
    what="the largest relative rounding error",
    hint="bfloat16 stores 7 bits of the mantissa explicitly, one more is implicit; rounding to "
    "the nearest number errs by at most half a unit in the last place",
    doc="The largest relative error of rounding a real number to the nearest bfloat16 (no "
    "overflow or underflow).",
)


def _olmo2_probs():
    """p over OLMo-2's 100,352 tokens: 0.5, 0.3 and the remaining 0.2 spread evenly."""
    v = 100352
    p = torch.full((v,), 0.2 / (v - 2), dtype=torch.float64)
    p[0], p[1] = 0.5, 0.3
    return p


def _olmo2_paper_bound():
    sg = importlib.import_module("vghlib.sampling_gap")
    p = _olmo2_probs()
    h = float(sg.entropy(p))
    return 2 * sg.c_vocab(p.numel())[0] * np.sqrt(h / np.log(p.numel()))


check_olmo2_jac_norm = _numeric(
    "olmo2-jac-norm",
    "check_olmo2_jac_norm",
    lambda: _top_eigenvalue(_olmo2_probs()),
    rtol=2e-3,
    what="the spectral norm",
    hint="equal probabilities give repeated eigenvalues; what is left is the secular equation "
    "1 = Σ_i p_i² / (p_i − λ) over the distinct values, with their multiplicities",
    doc="‖diag(p) − ppᵀ‖₂ for p over 100,352 tokens with p = 0.5, 0.3 on two tokens and 0.2 "
    "spread evenly over the rest.",
)

check_olmo2_paper_bound = _numeric(
    "olmo2-paper-bound",
    "check_olmo2_paper_bound",
    _olmo2_paper_bound,
    rtol=2e-3,
    what="the right side of Prop 2",
    hint="2 C_V √(H / log|V|) with the entropy H of p in nats and C_V from "
    "vghlib.sampling_gap.c_vocab",
    doc="The paper's bound 2 C_V √(H / log|V|) of Prop 2 at τ = 1 for the distribution of "
    "check_olmo2_jac_norm.",
)
