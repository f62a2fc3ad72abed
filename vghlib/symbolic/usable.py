"""The usable-signal lower bound of Section 5 (eq 25, proof A.10), and two caveats about it.

Reference: Asadulaev et al., arXiv 2605.21654, eqs 24-27 and Appendix A.10.

Let ``u = E[costate_hat | h]`` (the conditional mean of the empirical costate) and ``v = G``
(``value_grad``). The pointwise statement is

    <u, v> >= ||v||^2 - ||v|| ||u - v||,

and taking expectations gives ``E<u, G> >= Sigma - Lambda`` (``sigma_energy``, ``lam_cond``). The
pointwise inequality is ``<u, v> = ||v||^2 + <u - v, v>`` plus Cauchy-Schwarz on the second term;
Cauchy-Schwarz itself is checked through Lagrange's identity (a sum of squares).

Two caveats, each with a concrete example:

* ``S = Sigma - Lambda`` is a lower bound and can be negative, even when the alignment it bounds is
  large and positive (``u = 3v``);
* ``Lambda`` must use the conditional mean ``E[costate_hat | h]``. Estimated from single samples
  it is biased upward (Jensen: ``E||costate_hat - G|| >= ||E[costate_hat | h] - G||``); for an
  unbiased costate with Gaussian noise the estimate is
  ``||G|| s sqrt(2) Gamma((d+1)/2)/Gamma(d/2)`` while the true ``Lambda`` is 0.
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

from vghlib.impact import usable_terms
from vghlib.symbolic import CheckResult, identity, register, register_control, simplify_residual


def _vec(name: str, dim: int) -> sp.Matrix:
    return sp.Matrix(sp.symbols(f"{name}1:{dim + 1}", real=True))


def check_lagrange_identity(dim: int = 3) -> CheckResult:
    """||w||^2 ||v||^2 - <w, v>^2 == sum_{i<j} (w_i v_j - w_j v_i)^2, hence |<w, v>| <= ||w||
    ||v||."""
    w, v = _vec("w", dim), _vec("v", dim)
    lhs = (w.T * w)[0, 0] * (v.T * v)[0, 0] - (w.T * v)[0, 0] ** 2
    rhs = sum((w[i] * v[j] - w[j] * v[i]) ** 2 for i in range(dim) for j in range(i + 1, dim))
    return identity(
        f"Lagrange identity (Cauchy-Schwarz), d = {dim}",
        lhs,
        rhs,
        note="a sum of squares, so <w,v>^2 <= ||w||^2 ||v||^2",
    )


def check_usable_pointwise(dim: int = 3) -> CheckResult:
    """A.10, pointwise: <u, v> - (||v||^2 - ||v|| ||u - v||) == <u - v, v> + ||v|| ||u - v||, which
    is >= 0 by Cauchy-Schwarz.

    The identity is checked symbolically; the sign of the right side follows from
    :func:`check_lagrange_identity` with ``w = u - v``. As a further check the gap is evaluated on
    20,000 random Gaussian pairs (``details['min_gap']`` must be >= 0).
    """
    u, v = _vec("u", dim), _vec("v", dim)
    nv = sp.sqrt((v.T * v)[0, 0])
    nd = sp.sqrt(((u - v).T * (u - v))[0, 0])
    lhs = (u.T * v)[0, 0] - ((v.T * v)[0, 0] - nv * nd)
    rhs = ((u - v).T * v)[0, 0] + nv * nd
    res = identity(
        f"usable-signal gap decomposition, d = {dim}",
        lhs,
        rhs,
        note="<u,v> = ||v||^2 + <u-v,v>; Cauchy-Schwarz: <u-v,v> >= -||v|| ||u-v||",
    )
    rng = np.random.default_rng(0)
    un, vn = rng.normal(size=(2, 20_000, dim))  # (20000, d) each
    nv, nd = np.linalg.norm(vn, axis=1), np.linalg.norm(un - vn, axis=1)  # (20000,) each
    gap = (un * vn).sum(1) - ((vn**2).sum(1) - nv * nd)
    res.details["min_gap"] = float(gap.min())
    res.passed = bool(res.passed and gap.min() >= -1e-12)
    return res


def check_usable_expectation(n: int = 5000, dim: int = 4, seed: int = 0) -> CheckResult:
    """E<u, G> >= Sigma - Lambda on an empirical distribution of (u, G) pairs (an average of the
    pointwise inequality, so it holds exactly for any sample)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, dim))  # (N, d)
    u = 0.7 * g + rng.normal(scale=0.8, size=(n, dim))  # noisy, shrunk conditional means
    align, sigma_energy, lam = usable_terms(u, g)
    margin = align - (sigma_energy - lam)
    return CheckResult(
        "E<u,G> >= Sigma - Lambda (empirical distribution)",
        sp.Ge(sp.Float(align, 6), sp.Float(sigma_energy - lam, 6)),
        sp.Float(margin, 6),
        bool(margin >= 0),
        "expectation of the pointwise bound",
        time.perf_counter() - t0,
        {
            "alignment": align,
            "sigma_energy": sigma_energy,
            "lam_cond": lam,
            "usable": sigma_energy - lam,
        },
    )


def check_single_sample_lambda_bias(dim: int = 1) -> CheckResult:
    """Jensen bias of Lambda from single samples, in closed form.

    Let costate_hat = G + s*eps with eps ~ N(0, I_d): unbiased, so E[costate_hat | h] = G and
    Lambda = 0. The single-sample estimate is ||G|| E||s eps|| = ||G|| s sqrt(2)
    Gamma((d+1)/2)/Gamma(d/2).
    The check computes E||eps|| by integrating the chi density and compares with that formula.
    """
    t0 = time.perf_counter()
    r, s, gnorm = sp.symbols("r s g", positive=True)
    d = sp.Integer(dim)
    chi_pdf = r ** (d - 1) * sp.exp(-(r**2) / 2) / (2 ** (d / 2 - 1) * sp.gamma(d / 2))
    mean_norm = sp.integrate(r * chi_pdf, (r, 0, sp.oo))
    closed = sp.sqrt(2) * sp.gamma((d + 1) / 2) / sp.gamma(d / 2)
    resid = simplify_residual(mean_norm - closed)
    lam_single = gnorm * s * mean_norm
    return CheckResult(
        f"single-sample Lambda of an unbiased costate, d = {dim}",
        sp.Eq(sp.Symbol("Lambda_single"), lam_single),
        resid,
        bool(resid == 0),
        f"true Lambda = 0; single-sample estimate = {sp.simplify(lam_single)} > 0",
        time.perf_counter() - t0,
        {"lam_single": sp.simplify(lam_single)},
    )


# ---- negative controls ------------------------------------------------------------------------


def control_reversed_bound() -> CheckResult:
    """FALSE: <u, v> <= ||v||^2 - ||v|| ||u - v|| (the bound reversed).

    Counterexample: u = 2v, v = (1, 0).
    """
    t0 = time.perf_counter()
    v = sp.Matrix([1, 0])
    u = 2 * v
    lhs = (u.T * v)[0, 0]
    rhs = (v.T * v)[0, 0] - v.norm() * (u - v).norm()
    return CheckResult(
        "control: <u,v> <= ||v||^2 - ||v|| ||u-v||",
        sp.Le(lhs, rhs),
        lhs - rhs,
        bool(lhs <= rhs),
        f"u = 2v: left {lhs}, right {rhs}",
        time.perf_counter() - t0,
    )


def control_usable_is_nonnegative() -> CheckResult:
    """FALSE: S = Sigma - Lambda >= 0.

    With u = 3v, ||v|| = 1: alignment 3, Sigma 1, Lambda 2, S = -1.
    """
    t0 = time.perf_counter()
    v = sp.Matrix([1, 0, 0])
    u = 3 * v
    sigma_energy = (v.T * v)[0, 0]
    lam = v.norm() * (u - v).norm()
    align = (u.T * v)[0, 0]
    return CheckResult(
        "control: S = Sigma - Lambda >= 0",
        sp.Ge(sigma_energy - lam, 0),
        sigma_energy - lam,
        bool(sigma_energy - lam >= 0),
        f"u = 3v: alignment {align} > 0 yet S = {sigma_energy - lam} < 0 (the bound still holds)",
        time.perf_counter() - t0,
        {"alignment": align, "sigma_energy": sigma_energy, "lam_cond": lam},
    )


def control_single_sample_lambda(
    n_states: int = 2000, n_samples: int = 256, noise: float = 1.0, dim: int = 4, seed: int = 0
) -> CheckResult:
    """FALSE: Lambda estimated from single samples equals Lambda (Monte Carlo, unbiased costates).

    G ~ N(0, I_d) per state; costate_hat = G + noise * eps. Lambda from conditional means
    (estimated with ``n_samples`` draws per state) is close to 0; from single samples it is near
    E||G|| * noise * E||eps||. The check passes only if the two agree within 0.05, and they do not.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n_states, dim))  # (S, d)
    lam_hat = g[:, None, :] + noise * rng.normal(size=(n_states, n_samples, dim))  # (S, M, d)
    _, sigma_energy, lam_cond = usable_terms(lam_hat.mean(1), g)
    ng = np.linalg.norm(g, axis=1)
    lam_single = float((ng[:, None] * np.linalg.norm(lam_hat - g[:, None, :], axis=2)).mean())
    diff = lam_single - lam_cond
    return CheckResult(
        "control: single-sample Lambda == conditional-mean Lambda",
        sp.Eq(sp.Float(lam_single, 4), sp.Float(lam_cond, 4)),
        sp.Float(diff, 4),
        bool(abs(diff) < 0.05),
        f"Sigma {sigma_energy:.3f}; Lambda from conditional means {lam_cond:.3f}, "
        f"from single samples {lam_single:.3f}",
        time.perf_counter() - t0,
        {
            "sigma_energy": sigma_energy,
            "lam_cond": lam_cond,
            "lam_single": lam_single,
            "usable_cond": sigma_energy - lam_cond,
            "usable_single": sigma_energy - lam_single,
        },
    )


@register
def check_lagrange_identity_d3() -> CheckResult:
    return check_lagrange_identity(3)


@register
def check_usable_pointwise_d3() -> CheckResult:
    return check_usable_pointwise(3)


register(check_usable_expectation)


@register
def check_single_sample_lambda_bias_d1() -> CheckResult:
    return check_single_sample_lambda_bias(1)


@register
def check_single_sample_lambda_bias_d4() -> CheckResult:
    return check_single_sample_lambda_bias(4)


register_control(control_reversed_bound)
register_control(control_usable_is_nonnegative)
register_control(control_single_sample_lambda)
