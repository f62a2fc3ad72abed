"""Lemma 1 (SF = PD under a shift policy), checked by actual integration in sympy.

Reference: Asadulaev et al., arXiv 2605.21654, Lemma 1 (eq 10) and its proof in Appendix A.4.

Let ν be ``noise_density``, ā_θ the mean action ``mean_action`` and r the reward. For a shift
policy π_θ(a) = ν(a − ā_θ), eq 10 says

    E[r(a) ∂_θ log π_θ(a)]  =  (∂ā_θ/∂θ) E[∂r/∂a]          (SF form = PD form).

Scalar a and θ are used (the vector case is the same computation per coordinate). ā_θ is an
undefined function of θ; the checks differentiate log π_θ with sympy, substitute a = u + ā_θ and
integrate over u. Three concrete families (Gaussian, logistic, Student-t with 5 degrees of freedom)
close in finite form; a general ν is handled on [−L, L] by integration by parts, where the boundary
term is kept and shown to be exactly what the lemma's hypothesis removes. A scale family is the
negative control: the identity in the eq-10 form fails there.
"""

from __future__ import annotations

import time

import sympy as sp

from vghlib.symbolic import CheckResult, register, register_control, simplify_residual

theta = sp.Symbol("theta", real=True)
u = sp.Symbol("u", real=True)
m = sp.Symbol("m", real=True)  # stands for ā_θ(s) once the θ-derivative is taken
dm = sp.Symbol("dm", real=True)  # stands for ∂ā_θ/∂θ
abar = sp.Function("abar")  # the mean action ā_θ (undefined function of θ)

FAMILIES = ("gaussian", "logistic", "student_t5")


def _density(family: str) -> sp.Expr:
    """ν(u) for a named family, normalised (the normaliser is itself computed by integration)."""
    if family == "gaussian":
        return sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)
    if family == "logistic":
        return sp.exp(-u) / (1 + sp.exp(-u)) ** 2
    if family == "student_t5":
        kernel = (1 + u**2 / 5) ** -3
        return kernel / sp.integrate(kernel, (u, -sp.oo, sp.oo))
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def _default_reward(family: str):
    """A reward whose integrals close in finite form for the family (polynomial, not symmetric)."""
    return {
        "gaussian": lambda a: a**3 - 2 * a + 1,
        "logistic": lambda a: a**2 + a,
        "student_t5": lambda a: a**3 - 2 * a,
    }[family]


def _integrate_real_line(expr: sp.Expr) -> sp.Expr:
    """∫_R expr du, term by term in powers of m (each coefficient is a function of u only)."""
    poly = sp.Poly(sp.expand(expr), m)
    total = sp.Integer(0)
    for (j,), coeff in poly.terms():
        total += m**j * sp.integrate(sp.cancel(coeff), (u, -sp.oo, sp.oo), conds="none")
    return total


def _integrate_logistic(expr: sp.Expr) -> sp.Expr:
    """∫_R expr du for logistic integrands, via t = σ(u) ∈ (0, 1) (u = log(t/(1 − t)),
    du = dt/(t(1 − t)))."""
    t = sp.Symbol("t", positive=True)
    u_of_t = sp.log(t) - sp.log(1 - t)
    integrand = sp.expand(sp.simplify(expr.subs(u, u_of_t) * sp.diff(u_of_t, t)))
    return sp.integrate(integrand, (t, 0, 1), conds="none")


def _sf_pd_forms(nu: sp.Expr, reward, integrate):
    """The SF and PD forms of eq 10 as integrals over u, with ∂ā/∂θ kept as the factor ``dm``."""
    a = sp.Symbol("a", real=True)
    log_pi = sp.log(nu.subs(u, a - abar(theta)))
    score = sp.diff(log_pi, theta)  # ∂_θ log π_θ(a), by sympy's chain rule
    score_u = score.subs(sp.Derivative(abar(theta), theta), dm).subs(abar(theta), m).subs(a, u + m)
    sf_integrand = sp.simplify(reward(u + m) * score_u * nu)  # r(a) ∂_θ log π_θ(a) ν(u)
    pd_integrand = sp.diff(reward(a), a).subs(a, u + m) * nu  # ∂r/∂a at a = u + m, times ν(u)
    sf = integrate(sp.expand(sf_integrand / dm)) * dm
    pd = dm * integrate(sp.expand(pd_integrand))
    return sf, pd


@register
def check_shift_family(family: str = "gaussian", reward=None) -> CheckResult:
    """Lemma 1 (eq 10) for π_θ(a) = ν(a − ā_θ) with a concrete ν, both sides computed by
    integration.

    ``family``: "gaussian", "logistic" or "student_t5" (Student-t, 5 degrees of freedom: heavy
    tails, moments up to order 4, so a cubic reward still has vanishing boundary terms).
    ``reward``: a function of a sympy expression; defaults to a polynomial that closes in finite
    form. The result must hold for every ā_θ, which stays an undefined function of θ.
    """
    t0 = time.perf_counter()
    nu = _density(family)
    reward = reward or _default_reward(family)
    integrate = _integrate_logistic if family == "logistic" else _integrate_real_line
    sf, pd = _sf_pd_forms(nu, reward, integrate)
    residual = simplify_residual(sf - pd)
    L = sp.Symbol("L", positive=True)
    boundary = reward(m + L) * nu.subs(u, L) - reward(m - L) * nu.subs(u, -L)  # B(L)
    boundary_limit = sp.limit(boundary, L, sp.oo)  # the hypothesis, verified for this family
    back = {m: abar(theta), dm: sp.Derivative(abar(theta), theta)}
    a = sp.Symbol("a")
    return CheckResult(
        f"Lemma 1 (eq 10), {family} shift family, r(a) = {sp.sstr(reward(a))}",
        sp.Eq(sf.subs(back), pd.subs(back), evaluate=False),
        residual,
        residual == 0 and boundary_limit == 0,
        note="both sides integrated over the real line; ā_θ is an arbitrary differentiable "
        f"function; boundary term r(ā+L)ν(L) − r(ā−L)ν(−L) → {boundary_limit} as L → ∞",
        seconds=time.perf_counter() - t0,
        details={
            "sf": sf.subs(back),
            "pd": pd.subs(back),
            "family": family,
            "boundary_limit": boundary_limit,
        },
    )


@register
def check_shift_logistic() -> CheckResult:
    """Eq 10 for the logistic shift family (see :func:`check_shift_family`)."""
    return check_shift_family("logistic")


@register
def check_shift_student_t5() -> CheckResult:
    """Eq 10 for the Student-t (5 d.o.f.) shift family (see :func:`check_shift_family`)."""
    return check_shift_family("student_t5")


@register
def check_general_density(assume_boundary_vanishes: bool = True) -> CheckResult:
    """Eq 10 for a general differentiable ν, by integration by parts on [−L, L].

    ν and r are sympy undefined functions. Steps, each done by sympy:
    (1) the score of a shift policy is ∂_θ log ν(a − ā_θ) = −(∂ā_θ/∂θ) ν'(u)/ν(u);
    (2) on [−L, L], SF − PD = −(∂ā/∂θ) ∫ [r(u+m) ν'(u) + r'(u+m) ν(u)] du, whose integrand is the
        u-derivative of r(u+m)ν(u), so SF_L − PD_L = −(∂ā/∂θ) B(L) with
        B(L) = r(m+L) ν(L) − r(m−L) ν(−L), the boundary term;
    (3) the hypothesis of Lemma 1 is B(L) → 0 as L → ∞. With it the residual is 0.

    With ``assume_boundary_vanishes=False`` the hypothesis is dropped: the check returns
    passed=False and the residual is the boundary term itself (the negative control).
    """
    t0 = time.perf_counter()
    nu, r = sp.Function("nu"), sp.Function("r")
    L = sp.Symbol("L", positive=True)
    a = sp.Symbol("a", real=True)

    # (1) the score of the shift policy, via sympy's chain rule
    score = sp.diff(sp.log(nu(a - abar(theta))), theta)
    claimed_score = (
        -sp.Derivative(abar(theta), theta)
        * sp.Subs(sp.Derivative(nu(u), u), u, a - abar(theta))
        / nu(a - abar(theta))
    )
    score_ok = simplify_residual(score.doit() - claimed_score.doit()) == 0

    # (2) SF and PD integrands on [−L, L], after a = u + m (m = ā_θ, dm = ∂ā/∂θ)
    sf_integrand = r(u + m) * (-dm * sp.diff(nu(u), u) / nu(u)) * nu(u)
    pd_integrand = dm * sp.diff(r(u + m), u) * nu(u)
    antiderivative = -dm * r(u + m) * nu(u)
    exact_derivative = (
        simplify_residual(sp.diff(antiderivative, u) - (sf_integrand - pd_integrand)) == 0
    )
    boundary = r(m + L) * nu(L) - r(m - L) * nu(-L)  # B(L)
    residual_finite_L = antiderivative.subs(u, L) - antiderivative.subs(u, -L)  # SF_L − PD_L
    B = sp.Symbol("B_L")  # the boundary term as a symbol, so the hypothesis can act on it
    finite_L_ok = simplify_residual(residual_finite_L - (-dm * B).subs(B, boundary)) == 0

    # (3) the hypothesis: lim_{L→∞} B(L) = 0. Taking L → ∞ in SF_L − PD_L = −dm·B(L) gives
    # SF − PD = −dm · lim B(L), which the hypothesis sets to 0. Without it, B(L) stays.
    hypothesis = sp.Eq(sp.Limit(boundary, L, sp.oo), 0)
    if assume_boundary_vanishes:
        residual = (-dm * B).subs(B, hypothesis.rhs)
    else:
        residual = residual_finite_L
    residual = simplify_residual(residual)
    passed = bool(score_ok and exact_derivative and finite_L_ok and residual == 0)
    back = {m: abar(theta), dm: sp.Derivative(abar(theta), theta)}
    hypothesis = hypothesis.subs(back)
    sf_L = sp.Integral(sf_integrand, (u, -L, L)).subs(back)
    pd_L = sp.Integral(pd_integrand, (u, -L, L)).subs(back)
    return CheckResult(
        "Lemma 1 (eq 10), general density ν, integration by parts"
        + ("" if assume_boundary_vanishes else " WITHOUT the boundary hypothesis"),
        sp.Eq(sf_L, pd_L, evaluate=False),
        residual.subs(back),
        passed,
        note=("hypothesis used: " + sp.sstr(hypothesis))
        if assume_boundary_vanishes
        else "no boundary hypothesis: the residual is −(∂ā/∂θ)·B(L), the boundary term",
        seconds=time.perf_counter() - t0,
        details={
            "score_chain_rule_ok": score_ok,
            "integrand_is_exact_derivative": exact_derivative,
            "finite_L_residual_is_boundary": finite_L_ok,
            "boundary_term": boundary.subs(back),
            "hypothesis": hypothesis,
            "residual_without_hypothesis": residual_finite_L.subs(back),
        },
    )


@register_control
def control_scale_family() -> CheckResult:
    """Negative control: a scale family π_θ(a) = ν(a/σ_θ)/σ_θ, where the eq-10 form FAILS.

    ν is the N(1, 1) density, so a = σ_θ z with z ~ N(1, 1), the mean action is ā_θ = σ_θ and
    ∂ā_θ/∂θ = σ'_θ ≠ 0. With r(a) = a², E[r] = 2σ_θ² and the SF form is 4σ_θσ'_θ, while the
    eq-10 form σ'_θ E[r'(a)] = 2σ_θσ'_θ: half of it. The check returns passed=False with the
    nonzero residual SF − PD = 2σ_θσ'_θ.

    The correct analogue for a scale family is the pathwise derivative of the reparameterisation
    a = σ_θ z: E[r(a) ∂_θ log π_θ(a)] = (σ'_θ/σ_θ) E[a ∂r/∂a] = σ'_θ E[z r'(σ_θ z)]. It is checked
    as well and recorded in ``details["correct_analogue_residual"]`` (0).
    """
    t0 = time.perf_counter()
    sig = sp.Function("sigma")
    s, ds = sp.symbols("s ds", positive=True)
    a = sp.Symbol("a", real=True)
    nu = lambda x: sp.exp(-((x - 1) ** 2) / 2) / sp.sqrt(2 * sp.pi)  # noqa: E731
    reward = lambda x: x**2  # noqa: E731
    pi = nu(a / sig(theta)) / sig(theta)
    score = (
        sp.diff(sp.log(pi), theta).subs(sp.Derivative(sig(theta), theta), ds).subs(sig(theta), s)
    )
    pi_s = pi.subs(sig(theta), s)
    w = sp.Symbol("w", real=True)

    def integrate_a(expr):  # ∫_R expr da, via a = s (w + 1), da = s dw (Gaussian moments in w)
        return sp.integrate(
            sp.expand(sp.simplify(expr.subs(a, s * (w + 1)) * s)), (w, -sp.oo, sp.oo), conds="none"
        )

    sf = integrate_a(reward(a) * score * pi_s)  # SF form, by integration
    mean_action = integrate_a(a * pi_s)  # ā_θ = σ_θ
    d_mean = sp.diff(mean_action, s) * ds  # ∂ā/∂θ = σ'_θ
    pd_eq10 = d_mean * integrate_a(sp.diff(reward(a), a) * pi_s)  # eq-10 form
    residual = simplify_residual(sf - pd_eq10)
    analogue = ds / s * integrate_a(a * sp.diff(reward(a), a) * pi_s)  # (σ'/σ) E[a r'(a)]
    back = {s: sig(theta), ds: sp.Derivative(sig(theta), theta)}
    return CheckResult(
        "eq-10 form under a SCALE family π_θ(a) = ν(a/σ_θ)/σ_θ, ν = N(1,1), r(a) = a² "
        "(negative control)",
        sp.Eq(sf.subs(back), pd_eq10.subs(back), evaluate=False),
        residual.subs(back),
        residual == 0,
        note="expected to fail: a scale family is not a shift family; "
        "the correct analogue is (σ'/σ) E[a ∂r/∂a]",
        seconds=time.perf_counter() - t0,
        details={
            "negative_control": True,
            "sf": sf.subs(back),
            "pd_eq10": pd_eq10.subs(back),
            "mean_action": mean_action.subs(back),
            "correct_analogue": analogue.subs(back),
            "correct_analogue_residual": simplify_residual(sf - analogue),
        },
    )


def lemma1_checks() -> list[CheckResult]:
    """All Lemma 1 checks, in the order the book prints them. The last one is meant to fail."""
    return [
        check_shift_family("gaussian"),
        check_shift_family("logistic"),
        check_shift_family("student_t5"),
        check_general_density(),
        control_scale_family(),
    ]
