"""Corollary 1 (Appendix A.5, eq 11) and eq 8, checked on a scalar linear-quadratic rollout.

Reference: Asadulaev et al., arXiv 2605.21654, eqs 7, 8, 10, 11 and Corollary 1 (Appendix A.5).

The rollout (Definition 1 of the paper, scalar): a Gaussian shift policy with mean action
``mean_action = theta * s`` and noise ``sigma * xi``, linear dynamics, quadratic reward:

    a_t = theta s_t + sigma xi_t,   s_{t+1} = A s_t + B a_t,   xi_t ~ N(0, 1) i.i.d.,
    r_t(s, a) = -(c s^2 + rho a^2) / 2            ("dense")
    r_t = 0 for t < T,  r_T(s, a) = -(A s + B a)^2 / 2   ("outcome": reward only at the end)

so every return is a polynomial in the noises and every expectation closes in sympy (Gaussian
moments). ``s_1 = s0`` does not depend on theta.

What is checked:

* the paper's step: summing eq 11 over tokens with the advantage held constant gives
  ``sum_t E[(d mean_action/d theta) dr_t/da]``, the immediate-reward term of eq 7 only. It is not
  the policy gradient (:func:`control_paper_eq11_sum`); the missing part is exactly the
  future-credit term ``gamma (df/da)^T lambda_{t+1}`` of eq 7
  (:func:`check_missing_part_is_future_credit`);
  with an outcome-only reward every term but the last vanishes.
* the corrected statement: Lemma 1 applied per step to ``Q_t(s_t, .)`` rather than ``r``:

      E[sum_t gamma^{t-1} (R_t - b(s_t)) d/dtheta log pi(a_t|s_t)]
        = sum_t gamma^{t-1} E[(d mean_action/d theta)(s_t) dQ_t(s_t, a)/da |_{a = a_t}]
        = E[dR_1/dtheta] = dJ/dtheta = eq 7,

  for any baseline ``b`` that depends on the state only (:func:`check_corrected_corollary`).
* eq 8, derived the right way (from the value recursion, transcriber note b2):
  ``dV_t/ds = E[Dr + gamma Df G_{t+1}(s_{t+1}) | s_t = s]`` (:func:`check_eq8_value_recursion`);
  using partial instead of total derivatives fails (:func:`control_eq8_partial_derivatives`).

The discount appears as ``gamma^{t-1}`` in front of the score terms: the objective is
``J = E[R_1]``, so the term of step t carries ``gamma^{t-1}`` (the paper's eq 7 has it too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sympy as sp

from vghlib.symbolic import (
    CheckResult,
    gaussian_expectation,
    identity,
    register,
    register_control,
    simplify_residual,
)

theta, A, B, c, rho, s0 = sp.symbols("theta A B c rho s0", real=True)
sigma = sp.Symbol("sigma", positive=True)
gamma = sp.Symbol("gamma", positive=True)

# A point at which statements that fail are evaluated, so that the failure has a number.
EXAMPLE = {
    theta: sp.Rational(-1, 2),
    A: 1,
    B: 1,
    c: 1,
    rho: sp.Rational(1, 10),
    gamma: sp.Rational(9, 10),
    sigma: sp.Rational(3, 10),
    s0: 1,
}


@dataclass
class LQRollout:
    """The unrolled scalar LQ rollout of horizon ``horizon`` and its exact value functions."""

    horizon: int
    reward_kind: str
    noise: list = field(default_factory=list)  # xi_1..xi_T
    state: list = field(default_factory=list)  # s_1..s_{T+1} (index 0 is s_1)
    action: list = field(default_factory=list)  # a_1..a_T
    q_value: list = field(default_factory=list)  # Q_t(s, a) as expressions in (s_sym, a_sym)
    value: list = field(default_factory=list)  # V_t(s), t = 1..T+1
    s_sym: sp.Symbol = sp.Symbol("s", real=True)
    a_sym: sp.Symbol = sp.Symbol("a", real=True)

    def reward(self, t: int, s, a):
        """r_t(s, a), t = 1..T."""
        if self.reward_kind == "dense":
            return -(c * s**2 + rho * a**2) / 2
        return -((A * s + B * a) ** 2) / 2 if t == self.horizon else sp.Integer(0)

    def ret(self, t: int) -> sp.Expr:
        """Return-to-go R_t = sum_{j >= t} gamma^{j-t} r_j along the sampled rollout."""
        return sum(
            gamma ** (j - t) * self.reward(j, self.state[j - 1], self.action[j - 1])
            for j in range(t, self.horizon + 1)
        )


def lq_rollout(horizon: int = 2, reward_kind: str = "dense") -> LQRollout:
    """Build the rollout symbolically, and V_t, Q_t by the backward recursion
    Q_t(s, a) = r_t(s, a) + gamma V_{t+1}(A s + B a), V_t(s) = E_xi Q_t(s, theta s + sigma xi)."""
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if reward_kind not in ("dense", "outcome"):
        raise ValueError(f"reward_kind must be 'dense' or 'outcome', got {reward_kind!r}")
    ro = LQRollout(int(horizon), reward_kind)
    ro.noise = list(sp.symbols(f"xi1:{horizon + 1}", real=True))
    ro.state = [s0]
    for t in range(horizon):
        a = theta * ro.state[t] + sigma * ro.noise[t]
        ro.action.append(a)
        ro.state.append(A * ro.state[t] + B * a)
    s, a, xi = ro.s_sym, ro.a_sym, sp.Symbol("xi_", real=True)
    value = [sp.Integer(0)] * (horizon + 2)
    q = [None] * (horizon + 1)
    for t in range(horizon, 0, -1):
        q[t] = sp.expand(ro.reward(t, s, a) + gamma * value[t + 1].subs(s, A * s + B * a))
        value[t] = gaussian_expectation(q[t].subs(a, theta * s + sigma * xi), [xi])
    ro.q_value, ro.value = q, value
    return ro


def objective(ro: LQRollout) -> sp.Expr:
    """J(theta) = E[R_1]."""
    return gaussian_expectation(ro.ret(1), ro.noise)


def score(ro: LQRollout, t: int) -> sp.Expr:
    """d/dtheta log N(a_t; theta s_t, sigma^2) at the sampled (s_t, a_t) = xi_t s_t / sigma."""
    s_t, a_t = ro.state[t - 1], ro.action[t - 1]
    return sp.expand((a_t - theta * s_t) * s_t / sigma**2)


def sf_gradient(ro: LQRollout, baseline=None) -> sp.Expr:
    """E[sum_t gamma^{t-1} (R_t - b(s_t)) score_t]; ``baseline`` maps a state expression to b(s)."""
    b = baseline or (lambda s: 0)
    total = sum(
        gamma ** (t - 1) * (ro.ret(t) - b(ro.state[t - 1])) * score(ro, t)
        for t in range(1, ro.horizon + 1)
    )
    return gaussian_expectation(total, ro.noise)


def pathwise_q_gradient(ro: LQRollout) -> sp.Expr:
    """sum_t gamma^{t-1} E[(d mean_action/d theta)(s_t) * dQ_t(s_t, a)/da at a = a_t].

    Here d mean_action/d theta = s_t.
    """
    s, a = ro.s_sym, ro.a_sym
    total = 0
    for t in range(1, ro.horizon + 1):
        at = {s: ro.state[t - 1], a: ro.action[t - 1]}
        dq = sp.diff(ro.q_value[t], a).subs(at, simultaneous=True)
        total += gamma ** (t - 1) * ro.state[t - 1] * dq
    return gaussian_expectation(total, ro.noise)


def paper_eq11_sum(ro: LQRollout, adv=1) -> sp.Expr:
    """The right side of eq 11 summed over steps, advantage ``adv`` held constant:
    sum_t gamma^{t-1} E[adv * (d mean_action/d theta)(s_t) * dr_t/da at (s_t, a_t)]."""
    s, a = ro.s_sym, ro.a_sym
    total = 0
    for t in range(1, ro.horizon + 1):
        at = {s: ro.state[t - 1], a: ro.action[t - 1]}
        dr = sp.diff(ro.reward(t, s, a), a).subs(at, simultaneous=True)
        total += gamma ** (t - 1) * adv * ro.state[t - 1] * dr
    return gaussian_expectation(total, ro.noise)


def costates(ro: LQRollout) -> list:
    """Sampled costates lambda_1..lambda_{T+1} by eq 6: lambda_t = Dr_t + gamma Df lambda_{t+1},
    lambda_{T+1} = 0."""
    s, a = ro.s_sym, ro.a_sym
    lam = [sp.Integer(0)] * (ro.horizon + 2)
    for t in range(ro.horizon, 0, -1):
        r = ro.reward(t, s, a)
        at = {s: ro.state[t - 1], a: ro.action[t - 1]}
        dr_total = (sp.diff(r, s) + theta * sp.diff(r, a)).subs(at, simultaneous=True)  # Dr
        lam[t] = sp.expand(dr_total + gamma * (A + B * theta) * lam[t + 1])  # Df = A + B theta
    return lam


def future_credit_term(ro: LQRollout) -> sp.Expr:
    """The part of eq 7 that eq 11 never produces: sum_t gamma^{t-1} E[(d pi/d theta) gamma (df/da)
    lambda_{t+1}].

    (Here df/dtheta = 0, so eq 7's first term is absent.)"""
    lam = costates(ro)
    total = sum(
        gamma ** (t - 1) * ro.state[t - 1] * gamma * B * lam[t + 1]
        for t in range(1, ro.horizon + 1)
    )
    return gaussian_expectation(total, ro.noise)


def _numbers(expr) -> float:
    return float(sp.N(expr.subs(EXAMPLE)))


def per_step_terms(horizon: int = 3, reward_kind: str = "outcome") -> list[dict]:
    """Per-step contributions at the example point ``EXAMPLE``: for each t the score-function term
    E[gamma^{t-1} R_t score_t], the corrected pathwise term gamma^{t-1} E[s_t dQ_t/da] and the
    eq 11 term gamma^{t-1} E[s_t dr_t/da]. The first two agree step by step (Lemma 1 with Q_t)."""
    ro = lq_rollout(horizon, reward_kind)
    s, a = ro.s_sym, ro.a_sym
    rows = []
    for t in range(1, ro.horizon + 1):
        at = {s: ro.state[t - 1], a: ro.action[t - 1]}
        w = gamma ** (t - 1) * ro.state[t - 1]
        sf = gaussian_expectation(gamma ** (t - 1) * ro.ret(t) * score(ro, t), ro.noise)
        dq = sp.diff(ro.q_value[t], a).subs(at, simultaneous=True)
        pq = gaussian_expectation(w * dq, ro.noise)
        dr = sp.diff(ro.reward(t, s, a), a).subs(at, simultaneous=True)
        p11 = gaussian_expectation(w * dr, ro.noise)
        rows.append(
            {
                "t": t,
                "score_function": _numbers(sf),
                "pathwise_q": _numbers(pq),
                "eq11": _numbers(p11),
                "sf_minus_pathwise_q": simplify_residual(sf - pq),
            }
        )
    return rows


# ---- checks -----------------------------------------------------------------------------------


def check_corrected_corollary(horizon: int = 2, reward_kind: str = "dense") -> CheckResult:
    """Corollary 1, corrected: SF gradient with a state baseline == sum_t E[s_t dQ_t/da]
    == E[dR_1/dtheta] == dJ/dtheta."""
    t0 = time.perf_counter()
    ro = lq_rollout(horizon, reward_kind)
    b0, b1, b2 = sp.symbols("b0 b1 b2", real=True)
    sf = sf_gradient(ro, baseline=lambda s: b0 + b1 * s + b2 * s**2)
    pq = pathwise_q_gradient(ro)
    bptt = gaussian_expectation(sp.diff(ro.ret(1), theta), ro.noise)
    true = sp.diff(objective(ro), theta)
    resid = sp.Matrix(
        [simplify_residual(sf - true), simplify_residual(pq - true), simplify_residual(bptt - true)]
    )
    name = f"corrected Corollary 1 (Lemma 1 with Q_t), T = {horizon}, {reward_kind} reward"
    return CheckResult(
        name,
        sp.Eq(sp.Symbol("SF_with_baseline"), sp.Symbol("sum_t E[s_t dQ_t/da]")),
        resid,
        all(r == 0 for r in resid),
        "SF (any state baseline) = pathwise with dQ/da = E[dR/dtheta] = dJ/dtheta",
        time.perf_counter() - t0,
        {"dJ_dtheta": true, "at_example": _numbers(true)},
    )


def check_missing_part_is_future_credit(
    horizon: int = 2, reward_kind: str = "dense"
) -> CheckResult:
    """dJ/dtheta - (eq 11 summed) == the future-credit term of eq 7 built from the costates of eq
    6."""
    ro = lq_rollout(horizon, reward_kind)
    true = sp.diff(objective(ro), theta)
    res = identity(
        f"dJ/dtheta - sum eq 11 = future-credit part of eq 7, T = {horizon}, {reward_kind}",
        true - paper_eq11_sum(ro),
        future_credit_term(ro),
        note="what eq 11 misses is sum_t gamma^t E[(dpi/dtheta) (df/da) lambda_{t+1}]",
    )
    res.details["missing_at_example"] = _numbers(future_credit_term(ro))
    return res


def check_constant_advantage_term(horizon: int = 2) -> CheckResult:
    """A.5's identity with h = 1 and a constant advantage: both sides are 0 (E[score_t] = 0),
    whereas the
    same score weighted by the sample-dependent return, E[R_1 score_t], is not 0 (``details``)."""
    t0 = time.perf_counter()
    ro = lq_rollout(horizon, "dense")
    adv = sp.Symbol("A_hat", real=True)
    lhs = [gaussian_expectation(adv * score(ro, t), ro.noise) for t in range(1, horizon + 1)]
    with_return = [
        gaussian_expectation(ro.ret(1) * score(ro, t), ro.noise) for t in range(1, horizon + 1)
    ]
    resid = sp.Matrix([simplify_residual(x) for x in lhs])
    return CheckResult(
        f"constant-advantage GRPO term has zero mean, T = {horizon}",
        sp.Eq(sp.Symbol("E[A_hat score_t]"), 0),
        resid,
        all(r == 0 for r in resid),
        "with A_hat fixed, E[A_hat score_t] = 0 = (d mean_action/d theta) E[d A_hat/da]",
        time.perf_counter() - t0,
        {"E[R_1 score_t] at example": [_numbers(w) for w in with_return]},
    )


def check_eq8_value_recursion(horizon: int = 3) -> CheckResult:
    """eq 8: dV_t/ds == E[Dr + gamma Df G_{t+1}(s_{t+1}) | s_t = s] for t = 1..T (G_{T+1} = 0),
    dense reward."""
    ro = lq_rollout(horizon, "dense")
    s, a, xi = ro.s_sym, ro.a_sym, sp.Symbol("xi_", real=True)
    lhs, rhs = [], []
    for t in range(1, horizon + 1):
        g_next = sp.diff(ro.value[t + 1], s)
        act = theta * s + sigma * xi
        r = ro.reward(t, s, a)
        dr = (sp.diff(r, s) + theta * sp.diff(r, a)).subs(a, act)  # total derivative Dr
        df = A + B * theta  # total derivative Df
        rhs.append(gaussian_expectation(dr + gamma * df * g_next.subs(s, A * s + B * act), [xi]))
        lhs.append(sp.diff(ro.value[t], s))
    return identity(
        f"eq 8 from the value recursion, T = {horizon}",
        sp.Matrix(lhs),
        sp.Matrix(rhs),
        note="differentiate V_t(s) = E[r + gamma V_{t+1}(s_{t+1}) | s_t = s] in s",
    )


# ---- negative controls ------------------------------------------------------------------------


def control_paper_eq11_sum(horizon: int = 2, reward_kind: str = "dense") -> CheckResult:
    """FALSE: eq 11 summed over steps (dr/da, constant advantage) equals the policy gradient
    dJ/dtheta."""
    t0 = time.perf_counter()
    ro = lq_rollout(horizon, reward_kind)
    true = sp.diff(objective(ro), theta)
    paper = paper_eq11_sum(ro)
    resid = simplify_residual(paper - true)
    return CheckResult(
        f"control: sum of eq 11 (dr/da) = dJ/dtheta, T = {horizon}, {reward_kind} reward",
        sp.Eq(paper, true, evaluate=False),
        resid,
        resid == 0,
        f"at the example point: eq 11 sum {_numbers(paper):.4f} vs dJ/dtheta {_numbers(true):.4f}",
        time.perf_counter() - t0,
        {
            "paper_at_example": _numbers(paper),
            "true_at_example": _numbers(true),
            "paper": paper,
            "true": true,
        },
    )


def control_eq8_partial_derivatives(horizon: int = 2) -> CheckResult:
    """FALSE: eq 8 with partial derivatives (dr/ds, df/ds) in place of the total Dr, Df."""
    ro = lq_rollout(horizon, "dense")
    s, a, xi = ro.s_sym, ro.a_sym, sp.Symbol("xi_", real=True)
    lhs, rhs = [], []
    for t in range(1, horizon + 1):
        act = theta * s + sigma * xi
        g_next = sp.diff(ro.value[t + 1], s)
        rhs.append(
            gaussian_expectation(
                sp.diff(ro.reward(t, s, a), s).subs(a, act)
                + gamma * A * g_next.subs(s, A * s + B * act),
                [xi],
            )
        )
        lhs.append(sp.diff(ro.value[t], s))
    res = identity(
        f"control: eq 8 with partial derivatives, T = {horizon}",
        sp.Matrix(lhs),
        sp.Matrix(rhs),
        note="drops the path through the policy's action (d pi/d s = theta)",
    )
    res.details["residual_at_example"] = [
        float(sp.N(x.subs(EXAMPLE).subs(s, 1))) for x in res.residual
    ]
    return res


@register
def check_corrected_corollary_t2() -> CheckResult:
    return check_corrected_corollary(2, "dense")


@register
def check_corrected_corollary_t3() -> CheckResult:
    return check_corrected_corollary(3, "dense")


@register
def check_corrected_corollary_outcome_t3() -> CheckResult:
    return check_corrected_corollary(3, "outcome")


@register
def check_missing_part_t3() -> CheckResult:
    return check_missing_part_is_future_credit(3, "dense")


@register
def check_missing_part_outcome_t3() -> CheckResult:
    return check_missing_part_is_future_credit(3, "outcome")


register(check_constant_advantage_term)
register(check_eq8_value_recursion)


@register_control
def control_paper_eq11_sum_t2() -> CheckResult:
    return control_paper_eq11_sum(2, "dense")


@register_control
def control_paper_eq11_sum_outcome_t3() -> CheckResult:
    return control_paper_eq11_sum(3, "outcome")


register_control(control_eq8_partial_derivatives)
