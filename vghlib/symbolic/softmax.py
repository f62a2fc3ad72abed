"""The pieces of Prop 2's proof: the softmax Jacobian, its size, and entropy bounds on 1 - p_max.

Reference: Asadulaev et al., arXiv 2605.21654, Prop 2 (eq 21) and Appendix A.7.

Let ``p = softmax(z / tau)`` with logits ``z`` (``logits``) and temperature ``tau``
(``temperature``), and ``M = diag(p) - p p^T``. The proof in A.7 uses, in order:

1. ``dp/dz = M / tau`` and ``M`` is the covariance of a one-hot categorical vector;
2. ``M`` is positive semidefinite, so its operator norm is at most its trace ``1 - ||p||^2``;
3. ``1 - ||p||^2 <= 1 - p_max^2 <= 2 (1 - p_max)``;
4. ``1 - p_max <= C_V sqrt(H / log|V|)`` for a finite ``C_V``.

Each ``check_*`` below proves one step for small ``|V|`` (3 and 4) with sympy. Step 4 is replaced
by the simpler chain ``1 - p_max <= -log p_max <= H`` (nats); the value of ``C_V`` itself is
computed numerically in :mod:`vghlib.sampling_gap`. The ``control_*`` functions are negative
controls: plausible-looking variants that are false, each returning ``passed=False`` with a
counterexample.
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

from vghlib.symbolic import CheckResult, identity, register, register_control, simplify_residual


def _simplex(vocab_size: int):
    """Probabilities p_1..p_n with p_n eliminated as 1 - (p_1 + ... + p_{n-1})."""
    if int(vocab_size) != vocab_size or vocab_size < 2:
        raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
    free = sp.symbols(f"p1:{vocab_size}", nonnegative=True)
    return list(free) + [1 - sum(free)], free


def check_softmax_jacobian(vocab_size: int = 3) -> CheckResult:
    """d softmax(z/tau) / dz == (diag(p) - p p^T) / tau, entry by entry, for generic real logits."""
    z = sp.symbols(f"z1:{vocab_size + 1}", real=True)
    tau = sp.Symbol("tau", positive=True)
    e = [sp.exp(zi / tau) for zi in z]
    p = sp.Matrix([ei / sum(e) for ei in e])
    jac = p.jacobian(z)
    rhs = (sp.diag(*p) - p * p.T) / tau
    return identity(
        f"softmax Jacobian, |V| = {vocab_size}",
        jac,
        rhs,
        note="d softmax(z/tau)/dz = (diag(p) - p p^T)/tau",
    )


def check_categorical_covariance(vocab_size: int = 3) -> CheckResult:
    """diag(p) - p p^T == Cov(X) for a one-hot X with P(X = e_k) = p_k.

    The covariance is computed as sum_k p_k (e_k - p)(e_k - p)^T.
    """
    p, _ = _simplex(vocab_size)
    pv = sp.Matrix(p)
    eye = sp.eye(vocab_size)
    cov = sp.zeros(vocab_size, vocab_size)
    for k in range(vocab_size):
        d = eye[:, k] - pv  # e_k - E[X]
        cov += p[k] * d * d.T
    return identity(
        f"diag(p) - p p^T is the one-hot covariance, |V| = {vocab_size}",
        sp.diag(*p) - pv * pv.T,
        cov,
        note="E[X] = p, E[X X^T] = diag(p)",
    )


def check_psd_sum_of_squares(vocab_size: int = 3) -> CheckResult:
    """x^T (diag(p) - p p^T) x == sum_k p_k (x_k - xbar)^2 with xbar = sum_k p_k x_k: a variance,
    hence >= 0."""
    p, _ = _simplex(vocab_size)
    x = sp.symbols(f"x1:{vocab_size + 1}", real=True)
    pv, xv = sp.Matrix(p), sp.Matrix(x)
    quad = (xv.T * (sp.diag(*p) - pv * pv.T) * xv)[0, 0]
    xbar = sum(pk * xk for pk, xk in zip(p, x))
    sos = sum(pk * (xk - xbar) ** 2 for pk, xk in zip(p, x))
    res = identity(
        f"x^T M x = Var(x_o) as a weighted sum of squares, |V| = {vocab_size}",
        quad,
        sos,
        note="each term p_k (x_k - xbar)^2 is >= 0 because p_k >= 0, so M is PSD",
    )
    return res


def check_trace(vocab_size: int = 3) -> CheckResult:
    """tr(diag(p) - p p^T) == 1 - ||p||^2, and numerically ||M||_op <= tr M on random points of the
    simplex."""
    p, _ = _simplex(vocab_size)
    pv = sp.Matrix(p)
    m = sp.diag(*p) - pv * pv.T
    res = identity(
        f"trace of the softmax covariance, |V| = {vocab_size}",
        m.trace(),
        1 - sum(pk**2 for pk in p),
        note="PSD => every eigenvalue >= 0 => largest eigenvalue <= sum = trace",
    )
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.full(vocab_size, 0.5), size=2000)  # (2000, |V|)
    mats = np.einsum("bi,ij->bij", q, np.eye(vocab_size)) - np.einsum("bi,bj->bij", q, q)
    eig = np.linalg.eigvalsh(mats)  # (2000, |V|)
    worst = float((eig[:, -1] - np.trace(mats, axis1=1, axis2=2)).max())
    res.details.update(min_eigenvalue=float(eig.min()), max_opnorm_minus_trace=worst)
    res.passed = bool(res.passed and eig.min() > -1e-12 and worst <= 1e-12)
    return res


def check_pmax_chain() -> CheckResult:
    """1 - ||p||^2 <= 1 - p_max^2 <= 2 (1 - p_max), each gap written as a sum of squares.

    With p_1 = p_max: (1 - p_max^2) - (1 - ||p||^2) = p_2^2 + ... + p_n^2 and
    2(1 - p_max) - (1 - p_max^2) = (1 - p_max)^2. Both identities are checked for |V| = 4.
    """
    t0 = time.perf_counter()
    p, _ = _simplex(4)
    gap1 = (1 - p[0] ** 2) - (1 - sum(pk**2 for pk in p))
    r1 = simplify_residual(gap1 - sum(pk**2 for pk in p[1:]))
    m = sp.Symbol("p_max", nonnegative=True)
    gap2 = 2 * (1 - m) - (1 - m**2)
    r2 = simplify_residual(gap2 - (1 - m) ** 2)
    return CheckResult(
        "1 - ||p||^2 <= 1 - p_max^2 <= 2(1 - p_max)",
        (sp.Eq(gap1, sum(pk**2 for pk in p[1:])), sp.Eq(gap2, (1 - m) ** 2)),
        sp.Matrix([r1, r2]),
        bool(r1 == 0 and r2 == 0),
        "both gaps are sums of squares",
        time.perf_counter() - t0,
    )


def check_neg_log_bound() -> CheckResult:
    """-log x >= 1 - x on (0, 1]: with x = 1/(1+w), w >= 0, the gap g(w) = log(1+w) - w/(1+w)
    has g(0) = 0 and g'(w) = w/(1+w)^2 >= 0."""
    t0 = time.perf_counter()
    w = sp.Symbol("w", nonnegative=True)
    x = 1 / (1 + w)
    g = -sp.log(x) - (1 - x)
    at0 = simplify_residual(g.subs(w, 0))
    dg = simplify_residual(sp.diff(g, w) - w / (1 + w) ** 2)
    nonneg = bool((w / (1 + w) ** 2).is_nonnegative)
    return CheckResult(
        "-log x >= 1 - x on (0, 1]",
        sp.Ge(-sp.log(x), 1 - x),
        sp.Matrix([at0, dg]),
        bool(at0 == 0 and dg == 0 and nonneg),
        "g(0) = 0 and g' = w/(1+w)^2 >= 0",
        time.perf_counter() - t0,
    )


def check_min_entropy_le_shannon(vocab_size: int = 4) -> CheckResult:
    """-log p_max <= H(p): H + log p_1 == sum_{k>1} p_k log(p_1/p_k) (p_1 = p_max), each term >= 0.

    Writing p_k = p_1 / (1 + w_k) with w_k >= 0 (possible because p_k <= p_1), each term is
    p_1 log(1 + w_k) / (1 + w_k), which sympy confirms is non-negative.
    """
    t0 = time.perf_counter()
    rest = sp.symbols(f"p2:{vocab_size + 1}", positive=True)
    p1 = 1 - sum(rest)
    h = -p1 * sp.log(p1) - sum(pk * sp.log(pk) for pk in rest)
    terms = [pk * (sp.log(p1) - sp.log(pk)) for pk in rest]
    resid = simplify_residual(sp.expand(h + sp.log(p1) - sum(terms)))
    w, pm = sp.Symbol("w", nonnegative=True), sp.Symbol("p_max", positive=True)
    term = (pm / (1 + w)) * sp.log(1 + w)  # p_k log(p_1/p_k) with p_k = p_1/(1+w)
    nonneg = bool(term.is_nonnegative)
    return CheckResult(
        f"min-entropy <= Shannon entropy, |V| = {vocab_size}",
        sp.Eq(h + sp.log(p1), sum(terms)),
        resid,
        bool(resid == 0 and nonneg),
        "H - (-log p_max) = sum_k p_k log(p_max/p_k) >= 0",
        time.perf_counter() - t0,
    )


# ---- negative controls: each is a tempting variant that is false -------------------------------


def control_opnorm_le_gap() -> CheckResult:
    """FALSE: ||diag(p) - p p^T|| <= 1 - p_max. For p = (1 - e, e) the norm is 2 e (1 - e) > e when
    e < 1/2."""
    t0 = time.perf_counter()
    e = sp.Symbol("e", positive=True)
    p = sp.Matrix([1 - e, e])
    eigenvalues = sp.Matrix(sp.diag(*p) - p * p.T).eigenvals()
    lam = max(eigenvalues, key=lambda v: v.subs(e, sp.Rational(1, 10)))
    excess = sp.factor(lam - e)  # norm minus (1 - p_max)
    at = excess.subs(e, sp.Rational(1, 10))
    return CheckResult(
        "control: ||diag(p) - p p^T|| <= 1 - p_max",
        sp.Le(lam, e),
        at,
        bool(at <= 0),
        f"norm - (1 - p_max) = {excess}; at p = (9/10, 1/10) it is {at} > 0",
        time.perf_counter() - t0,
        {"excess": excess},
    )


def control_gap_le_normalised_entropy(vocab_size: int = 5) -> CheckResult:
    """FALSE: 1 - p_max <= H / log|V|.

    At p = (1/2, 1/2, 0, ...) the left side is 1/2 and the right side log 2 / log|V|.
    """
    t0 = time.perf_counter()
    lhs, rhs = sp.Rational(1, 2), sp.log(2) / sp.log(vocab_size)
    excess = sp.nsimplify(lhs - rhs)
    return CheckResult(
        f"control: 1 - p_max <= H/log|V|, |V| = {vocab_size}",
        sp.Le(lhs, rhs),
        excess,
        bool(sp.N(excess) <= 0),
        f"at p = (1/2, 1/2, 0, ...): 1/2 vs log2/log{vocab_size} = {float(rhs):.4f}",
        time.perf_counter() - t0,
    )


def control_vocab_free_constant(vocab_size: int = 32) -> CheckResult:
    """FALSE: 1 - p_max <= sqrt(H / log|V|) (i.e. C_V = 1 for all |V|). At p = (1/2, 1/2, 0, ...)
    and
    |V| = 32 the right side is sqrt(log 2 / log 32) = sqrt(1/5) < 1/2."""
    t0 = time.perf_counter()
    lhs = sp.Rational(1, 2)
    rhs = sp.sqrt(sp.simplify(sp.log(2) / sp.log(vocab_size)))
    excess = sp.simplify(lhs - rhs)
    return CheckResult(
        f"control: 1 - p_max <= sqrt(H/log|V|), |V| = {vocab_size}",
        sp.Le(lhs, rhs),
        excess,
        bool(sp.N(excess) <= 0),
        f"at p = (1/2, 1/2, 0, ...): 1/2 vs {sp.nsimplify(rhs)} = {float(rhs):.4f}",
        time.perf_counter() - t0,
    )


# ---- registered zero-argument versions (for the benchmark and the tests) ----------------------


@register
def check_softmax_jacobian_v3() -> CheckResult:
    return check_softmax_jacobian(3)


@register
def check_softmax_jacobian_v4() -> CheckResult:
    return check_softmax_jacobian(4)


@register
def check_categorical_covariance_v3() -> CheckResult:
    return check_categorical_covariance(3)


@register
def check_categorical_covariance_v4() -> CheckResult:
    return check_categorical_covariance(4)


@register
def check_psd_v3() -> CheckResult:
    return check_psd_sum_of_squares(3)


@register
def check_psd_v4() -> CheckResult:
    return check_psd_sum_of_squares(4)


@register
def check_trace_v4() -> CheckResult:
    return check_trace(4)


register(check_pmax_chain)
register(check_neg_log_bound)


@register
def check_min_entropy_v4() -> CheckResult:
    return check_min_entropy_le_shannon(4)


register_control(control_opnorm_le_gap)


@register_control
def control_gap_le_normalised_entropy_v5() -> CheckResult:
    return control_gap_le_normalised_entropy(5)


@register_control
def control_vocab_free_constant_v32() -> CheckResult:
    return control_vocab_free_constant(32)
