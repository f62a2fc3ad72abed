"""Symbolic checks of Proposition 1 (adjoint recursion, pathwise gradient) and eq 9 (costate = value
gradient in expectation), for generic rollouts with undefined functions f, π, r.

The rollout is scalar: s_{t+1} = f(s_t, a_t), a_t = π(s_t, ξ_t), r_t = r(s_t, a_t), with a
discount symbol γ. A costate "by definition" is the sympy derivative of the return-to-go R_t with
respect to a fresh start-state symbol, evaluated on the trajectory; the recursion side is written
with opaque partial-derivative functions (``f_s``, ``f_a``, ``pi_s``, ``r_s``, ``r_a``, ...)
evaluated at the visited points. sympy's own chain rule produces ``Derivative``/``Subs`` objects;
:func:`canonical_partials` rewrites them into the same opaque partials, after which both sides are
polynomials in the same atoms and ``expand(lhs - rhs) == 0`` decides the identity exactly.

Every check takes a ``perturb=`` argument that makes the statement false in one named way (a
negative control); the perturbed statement must come back ``passed=False``.

Reference: Asadulaev et al., arXiv 2605.21654, Proposition 1 (eq 6, 7), Appendix A.2 (telescoping),
eq 8–9 and Appendix A.3.
"""

from __future__ import annotations

import time

import sympy as sp

from vghlib.symbolic import CheckResult, gaussian_expectation, register, register_control

GAMMA = sp.Symbol("gamma", positive=True)
_F, _PI, _R = sp.Function("f"), sp.Function("pi"), sp.Function("r")
_ARGNAMES = {
    "f": ("s", "a", "theta"),
    "pi": ("s", "xi", "theta"),
    "r": ("s", "a"),
    "g": ("theta",),
}  # g(θ): an initial state that depends on θ (negative control)


def partial(fn: sp.Function, i: int, *args) -> sp.Expr:
    """The opaque partial derivative of ``fn`` in its i-th argument, evaluated at ``args``:
    e.g. ``partial(f, 1, s, a)`` is the function ``f_a(s, a)``."""
    name = str(fn)
    return sp.Function(f"{name}_{_ARGNAMES[name][i]}")(*args)


def canonical_partials(expr: sp.Expr) -> sp.Expr:
    """Rewrite sympy's first derivatives of f, π, r (``Derivative`` and ``Subs`` forms) into the
    opaque partials of :func:`partial`, recursively from the inside out."""
    if expr.is_Atom:
        return expr
    if isinstance(expr, sp.Derivative):
        inner, ((var, count),) = expr.expr, expr.variable_count
        if count != 1 or not isinstance(inner, sp.core.function.AppliedUndef):
            raise ValueError(f"unexpected derivative {expr}")
        i = list(inner.args).index(var)
        return partial(inner.func, i, *[canonical_partials(a) for a in inner.args])
    if isinstance(expr, sp.Subs):
        inner, dummies, points = expr.expr, expr.variables, expr.point
        if isinstance(inner, sp.Derivative):
            (d,) = [v for v, _ in inner.variable_count]
            fn = inner.expr
            i = list(fn.args).index(d)
            args = [a.subs(dict(zip(dummies, points))) for a in fn.args]
            return partial(fn.func, i, *[canonical_partials(a) for a in args])
        return canonical_partials(expr.doit())
    return expr.func(*[canonical_partials(a) for a in expr.args])


def _result(name, lhs, rhs, note, t0, **details) -> CheckResult:
    lhs, rhs = sp.Matrix(lhs), sp.Matrix(rhs)
    residual = (lhs - rhs).applyfunc(sp.expand)
    passed = all(e == 0 for e in residual)
    return CheckResult(
        name, (lhs, rhs), residual, bool(passed), note, time.perf_counter() - t0, details
    )


def _check_T(T) -> int:
    if not isinstance(T, int) or T < 1 or T > 4:
        raise ValueError(f"T must be an int in 1..4 (the expressions grow fast), got {T!r}")
    return T


def _check_perturb(perturb, allowed) -> None:
    if perturb is not None and perturb not in allowed:
        raise ValueError(f"perturb must be None or one of {allowed}, got {perturb!r}")


# --------------------------------------------------------------------------------------------
# Prop 1, eq 6: adjoint recursion
# --------------------------------------------------------------------------------------------


def _trajectory(s1, xis, theta=None):
    """States s_1..s_{T+1} and actions a_1..a_T of the generic scalar rollout."""
    extra = () if theta is None else (theta,)
    S, A = [s1], []
    for xi in xis:
        a = _PI(S[-1], xi, *extra)
        A.append(a)
        S.append(_F(S[-1], a, *extra))
    return S, A


def _return_from(start, xis, gamma, theta=None):
    """R_t as a function of the start state ``start`` with noise ξ_t..ξ_T (eq 4, R_t = Σ γ^j r)."""
    S, A = _trajectory(start, xis, theta)
    return sum(gamma**j * _R(S[j], A[j]) for j in range(len(xis)))


def _recursion(S, A, xis, gamma, theta=None, perturb=None):
    """λ_1..λ_{T+1} by eq 6 with opaque partials; λ_{T+1} = 0."""
    extra = () if theta is None else (theta,)
    T = len(xis)
    lam = [sp.Integer(0)] * (T + 1)
    for t in range(T - 1, -1, -1):
        s, a = S[t], A[t]
        pi_s = partial(_PI, 0, s, xis[t], *extra)
        if perturb == "drop_policy_term":
            pi_s = 0  # forgets ∂π/∂s
        Dr = partial(_R, 0, s, a) + pi_s * partial(_R, 1, s, a)
        Df = partial(_F, 0, s, a, *extra) + partial(_F, 1, s, a, *extra) * pi_s
        g = 1 if perturb == "drop_gamma" else gamma
        lam[t] = Dr + g * Df * lam[t + 1]
    return lam


def check_adjoint_recursion(T: int = 2, perturb: str | None = None) -> CheckResult:
    """λ_t := ∂R_t/∂s_t (eq 5, future noise fixed) equals the recursion eq 6,
    λ_t = Dr + γ Df λ_{t+1}, for every t = 1..T of a generic scalar rollout.

    ``perturb``: "drop_gamma" (recursion without γ) or "drop_policy_term" (Df = ∂f/∂s and
    Dr = ∂r/∂s, i.e. without the path through the action) must fail.
    """
    _check_T(T)
    _check_perturb(perturb, ("drop_gamma", "drop_policy_term"))
    t0 = time.perf_counter()
    xis = sp.symbols(f"xi1:{T + 1}")
    s1, x = sp.symbols("s1 x")
    S, A = _trajectory(s1, xis)
    direct = [
        canonical_partials(sp.diff(_return_from(x, xis[t:], GAMMA), x).subs(x, S[t]))
        for t in range(T)
    ]
    rec = _recursion(S, A, xis, GAMMA, perturb=perturb)[:T]
    tag = "" if perturb is None else f" [perturbed: {perturb}]"
    return _result(
        f"adjoint recursion eq 6, T={T}{tag}",
        direct,
        rec,
        "λ_t by differentiating R_t vs the recursion, generic f, π, r; γ symbolic",
        t0,
        T=T,
    )


# --------------------------------------------------------------------------------------------
# Prop 1, eq 7: pathwise parameter gradient
# --------------------------------------------------------------------------------------------


def check_pathwise_gradient(T: int = 2, perturb: str | None = None) -> CheckResult:
    """dR_1/dθ by direct differentiation equals eq 7's sum
    Σ_t γ^{t−1}[γ f_θ λ_{t+1} + π_θ (r_a + γ f_a λ_{t+1})], with s_1 independent of θ.

    ``perturb``: "s1_depends_on_theta" (s_1 = g(θ), eq 7 then misses ṡ_1 λ_1), "drop_gamma"
    (no γ in front of λ_{t+1}), "drop_policy_term" (no (∂π/∂θ)ᵀ term) must fail.
    """
    _check_T(T)
    _check_perturb(perturb, ("s1_depends_on_theta", "drop_gamma", "drop_policy_term"))
    t0 = time.perf_counter()
    xis = sp.symbols(f"xi1:{T + 1}")
    theta = sp.Symbol("theta")
    s1 = sp.Function("g")(theta) if perturb == "s1_depends_on_theta" else sp.Symbol("s1")
    S, A = _trajectory(s1, xis, theta)
    direct = canonical_partials(sp.diff(_return_from(s1, xis, GAMMA, theta), theta))
    lam = _recursion(S, A, xis, GAMMA, theta)
    g = 1 if perturb == "drop_gamma" else GAMMA
    total = 0
    for t in range(T):
        s, a = S[t], A[t]
        pi_th = 0 if perturb == "drop_policy_term" else partial(_PI, 2, s, xis[t], theta)
        total += GAMMA**t * (
            g * partial(_F, 2, s, a, theta) * lam[t + 1]
            + pi_th * (partial(_R, 1, s, a) + g * partial(_F, 1, s, a, theta) * lam[t + 1])
        )
    direct = canonical_partials(direct)
    tag = "" if perturb is None else f" [perturbed: {perturb}]"
    return _result(
        f"pathwise gradient eq 7, T={T}{tag}",
        [direct],
        [total],
        "dR_1/dθ by the chain rule vs eq 7 with costates from eq 6",
        t0,
        T=T,
    )


# --------------------------------------------------------------------------------------------
# A.2: the telescoping step
# --------------------------------------------------------------------------------------------


def check_telescoping(T: int = 2, perturb: str | None = None) -> CheckResult:
    """Σ_{t=1}^T γ^{t−1}[ṡ_t λ_t − γ ṡ_{t+1} λ_{t+1}] = ṡ_1 λ_1 − γ^T ṡ_{T+1} λ_{T+1}
    for arbitrary symbols ṡ_t, λ_t (the step of Appendix A.2 that removes the ṡ terms).

    ``perturb``: "drop_gamma" (no γ inside the bracket) or "wrong_power" (γ^{T−1} on the
    boundary term) must fail.
    """
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    _check_perturb(perturb, ("drop_gamma", "wrong_power"))
    t0 = time.perf_counter()
    sd = sp.symbols(f"sdot1:{T + 2}")
    lam = sp.symbols(f"lambda1:{T + 2}")
    g = 1 if perturb == "drop_gamma" else GAMMA
    lhs = sum(GAMMA**t * (sd[t] * lam[t] - g * sd[t + 1] * lam[t + 1]) for t in range(T))
    power = T - 1 if perturb == "wrong_power" else T
    rhs = sd[0] * lam[0] - GAMMA**power * sd[T] * lam[T]
    tag = "" if perturb is None else f" [perturbed: {perturb}]"
    return _result(
        f"telescoping sum of A.2, T={T}{tag}",
        [lhs],
        [rhs],
        "arbitrary ṡ_t, λ_t; vanishes when ṡ_1 = 0 and λ_{T+1} = 0",
        t0,
        T=T,
    )


# --------------------------------------------------------------------------------------------
# eq 9 on a scalar linear-quadratic system
# --------------------------------------------------------------------------------------------


def check_costate_value_gradient_lq(T: int = 3, perturb: str | None = None) -> CheckResult:
    """eq 9 exactly: on s_{t+1} = A s + B a + ω η_t, a = K s + σ ξ_t, r = −(q s² + ρ a²),
    E[λ_t | s_t = s] (λ_t = ∂R_t/∂s_t of the sampled rollout, Gaussian moments taken
    symbolically) equals G_t(s) = 2 P_t s from the policy-evaluation Riccati recursion
    P_t = −(q + ρK²) + γ (A + BK)² P_{t+1}, P_{T+1} = 0, and also ∂/∂s E[R_t | s_t = s] (A.3),
    for every t = 1..T. All of A, B, K, q, ρ, σ, ω, γ are symbols.

    ``perturb``: "drop_gamma" (Riccati without γ), "open_loop" (A in place of A + BK) or
    "no_factor_two" (G = P s) must fail.
    """
    _check_T(T)
    _check_perturb(perturb, ("drop_gamma", "open_loop", "no_factor_two"))
    t0 = time.perf_counter()
    A, B, K, q, rho, sigma, omega = sp.symbols("A B K q rho sigma omega", real=True)
    s = sp.Symbol("s", real=True)
    xis = sp.symbols(f"xi1:{T + 1}", real=True)
    etas = sp.symbols(f"eta1:{T + 1}", real=True)
    # Riccati (policy evaluation), backwards
    g = 1 if perturb == "drop_gamma" else GAMMA
    closed = A if perturb == "open_loop" else A + B * K
    P = [sp.Integer(0)] * (T + 1)
    for t in range(T - 1, -1, -1):
        P[t] = sp.expand(-(q + rho * K**2) + g * closed**2 * P[t + 1])
    factor = 1 if perturb == "no_factor_two" else 2
    lhs, rhs, via_value = [], [], []
    for t in range(T):
        x, R = s, 0
        for j in range(t, T):
            a = K * x + sigma * xis[j]
            R += GAMMA ** (j - t) * (-(q * x**2 + rho * a**2))
            x = A * x + B * a + omega * etas[j]
        noise = list(xis[t:]) + list(etas[t:])
        lhs.append(gaussian_expectation(sp.diff(R, s), noise))  # E[λ_t | s_t = s]
        via_value.append(sp.diff(gaussian_expectation(R, noise), s))  # ∂V_t/∂s, V = E[R_t]
        rhs.append(factor * P[t] * s)
    tag = "" if perturb is None else f" [perturbed: {perturb}]"
    res = _result(
        f"E[costate] = Riccati value gradient (eq 9), scalar LQ, T={T}{tag}",
        lhs,
        rhs,
        "policy noise σξ and process noise ωη; Gaussian moments taken exactly",
        t0,
        T=T,
        via_value=via_value,
    )
    both = _result("", via_value, rhs, "", t0)
    res.passed = res.passed and both.passed
    return res


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@register
def adjoint_recursion_T2() -> CheckResult:
    return check_adjoint_recursion(2)


@register
def adjoint_recursion_T3() -> CheckResult:
    return check_adjoint_recursion(3)


@register
def pathwise_gradient_T2() -> CheckResult:
    return check_pathwise_gradient(2)


@register
def pathwise_gradient_T3() -> CheckResult:
    return check_pathwise_gradient(3)


@register
def telescoping_T3() -> CheckResult:
    return check_telescoping(3)


@register
def costate_value_gradient_lq() -> CheckResult:
    return check_costate_value_gradient_lq()


def adjoint_checks() -> list[CheckResult]:
    """All positive checks of this module (each must hold)."""
    return [
        check_adjoint_recursion(2),
        check_adjoint_recursion(3),
        check_pathwise_gradient(2),
        check_pathwise_gradient(3),
        check_telescoping(2),
        check_telescoping(3),
        check_costate_value_gradient_lq(),
    ]


NEGATIVE_CONTROLS = {
    check_adjoint_recursion: ("drop_gamma", "drop_policy_term"),
    check_pathwise_gradient: ("s1_depends_on_theta", "drop_gamma", "drop_policy_term"),
    check_telescoping: ("drop_gamma", "wrong_power"),
    check_costate_value_gradient_lq: ("drop_gamma", "open_loop", "no_factor_two"),
}


def _register_perturbed(check, perturb: str, T: int = 3) -> None:
    def control() -> CheckResult:
        return check(T, perturb=perturb)

    control.__name__ = f"control_{check.__name__.removeprefix('check_')}_{perturb}"
    control.__qualname__ = control.__name__
    control.__doc__ = (
        f"Negative control: {check.__name__} with the perturbation {perturb!r}, T = {T}."
    )
    register_control(control)


for _check, _perturbs in NEGATIVE_CONTROLS.items():
    for _p in _perturbs:
        _register_perturbed(_check, _p)
