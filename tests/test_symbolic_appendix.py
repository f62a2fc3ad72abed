"""Tests of the appendix modules: softmax / entropy bounds (Prop 2), usable signal (A.10),
Corollary 1.

Every positive check must pass and every negative control must fail; the numeric constants are
compared with closed forms derived independently in the test.
"""

import math

import numpy as np
import pytest
import sympy as sp

from vghlib import entropy_bounds as eb
from vghlib.symbolic import all_checks, corollary, softmax, usable

MODULES = [softmax, usable, corollary]
CHECKS = [f for m in MODULES for f in m.CHECKS]
CONTROLS = [f for m in MODULES for f in m.CONTROLS]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_every_check_passes(check):
    res = check()
    assert res.passed, str(res)


@pytest.mark.parametrize("control", CONTROLS, ids=lambda f: f.__name__)
def test_every_negative_control_fails(control):
    res = control()
    assert not res.passed, f"negative control unexpectedly passed: {res}"


def test_checks_are_registered():
    names = set(all_checks())
    for f in CHECKS + CONTROLS:
        assert any(n.endswith("." + f.__name__) for n in names), f.__name__


def test_softmax_jacobian_check_rejects_a_wrong_temperature():
    # Build the claimed Jacobian with tau^2 instead of tau: the identity must fail.
    z = sp.symbols("z1:4", real=True)
    tau = sp.Symbol("tau", positive=True)
    e = [sp.exp(zi / tau) for zi in z]
    p = sp.Matrix([ei / sum(e) for ei in e])
    from vghlib.symbolic import identity
    assert identity("ok", p.jacobian(z), (sp.diag(*p) - p * p.T) / tau).passed
    assert not identity("wrong", p.jacobian(z), (sp.diag(*p) - p * p.T) / tau**2).passed


def test_opnorm_bounds_numerically():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(6, 0.4), size=3000)                           # (N, 6)
    m = np.einsum("bi,ij->bij", p, np.eye(6)) - np.einsum("bi,bj->bij", p, p)
    norm = np.linalg.eigvalsh(m)[:, -1]
    pmax = p.max(1)
    assert np.all(norm <= 1 - (p**2).sum(1) + 1e-12)
    assert np.all(norm <= 2 * (1 - pmax) + 1e-12)
    # Control: the tighter-looking 1 - p_max is violated on some draws.
    assert np.any(norm > (1 - pmax) + 1e-6)


def test_min_entropy_given_pmax_is_a_lower_bound():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.full(7, 0.3), size=4000)
    h = eb.entropy(p)
    hmin = np.array([eb.min_entropy_given_pmax(m) for m in p.max(1)])
    assert np.all(h >= hmin - 1e-12)
    assert eb.min_entropy_given_pmax(0.5) == pytest.approx(math.log(2))
    assert eb.min_entropy_given_pmax(1.0) == 0.0


def test_c_vocab_closed_form():
    # Independent derivation: for |V| >= 4 the supremum sits at the uniform law on 4 symbols,
    # C_V = (3/4) sqrt(log|V| / log 4); for |V| = 2, 3 at the uniform law on |V| symbols.
    assert eb.c_vocab(2)[0] == pytest.approx(0.5, abs=1e-9)
    assert eb.c_vocab(3)[0] == pytest.approx(2 / 3, abs=1e-9)
    for n in (4, 8, 50, 1000, 100_000):
        c, m = eb.c_vocab(n)
        assert c == pytest.approx(0.75 * math.sqrt(math.log(n) / math.log(4)), rel=1e-9)
        assert m == pytest.approx(0.25, abs=1e-6)
        # always between the two-point value and the sqrt(log|V|) ceiling
        assert 0.5 * math.sqrt(math.log(n) / math.log(2)) <= c <= math.sqrt(math.log(n))
    # Control: a constant that ignored |V| would be wrong by a factor > 2 between |V| = 4 and 100k.
    assert eb.c_vocab(100_000)[0] / eb.c_vocab(4)[0] > 2


def test_random_search_never_beats_c_vocab_and_comes_close():
    for n in (3, 5, 16):
        c, _ = eb.c_vocab(n)
        r = eb.random_search_ratio(n, n_draws=8000, seed=1)
        assert r <= c + 1e-9
        assert r >= 0.9 * c


def test_sup_gap_over_entropy_and_dirichlet_ratio():
    s, m = eb.sup_gap_over_entropy(10)
    assert s == pytest.approx(1 / (2 * math.log(2)), rel=1e-9) and m == pytest.approx(0.5)
    r = eb.dirichlet_gap_ratio(50, 10_000, 1.0, seed=0)
    assert 0 < r < 0.6                         # science note F4, for Dirichlet(1) draws
    assert r < s                                # and never above the supremum
    # Control: the two-point law (1/2, 1/2) exceeds 0.6, so "< 0.6" is not a property of the
    # simplex.
    assert (1 - 0.5) / eb.entropy([0.5, 0.5]) > 0.6


def test_entropy_rejects_bad_input():
    with pytest.raises(ValueError):
        eb.entropy([0.5, -0.1, 0.6])
    with pytest.raises(ValueError):
        eb.c_vocab(1)


def test_self_check_sup_ratio():
    assert not eb.check_sup_ratio(None)
    assert "no answer yet" in eb.check_sup_ratio(None).message
    assert eb.check_sup_ratio(1 / (2 * math.log(2)))
    assert eb.check_sup_ratio(0.7213)
    assert not eb.check_sup_ratio(0.6)
    assert not eb.check_sup_ratio(1.0)


def test_usable_terms_shapes_and_values():
    g = np.array([[1.0, 0.0], [0.0, 2.0]])
    align, sigma, lam = usable.usable_terms(g, g)
    assert (align, sigma, lam) == (2.5, 2.5, 0.0)
    with pytest.raises(ValueError):
        usable.usable_terms(g, g[:, :1])


def test_single_sample_lambda_matches_closed_form():
    # Monte Carlo check of the closed form sqrt(2/pi) ||G|| s for d = 1.
    rng = np.random.default_rng(5)
    s = 0.7
    eps = rng.normal(size=400_000)
    assert np.mean(np.abs(s * eps)) == pytest.approx(math.sqrt(2 / math.pi) * s, rel=5e-3)
    res = usable.check_single_sample_lambda_bias(1)
    gs = sp.symbols("g s", positive=True)
    assert sp.simplify(res.details["lam_single"] - sp.sqrt(2 / sp.pi) * gs[0] * gs[1]) == 0


def test_corollary_numbers_at_example_point():
    res = corollary.control_paper_eq11_sum(2, "dense")
    assert res.details["paper_at_example"] == pytest.approx(0.0653)
    assert res.details["true_at_example"] == pytest.approx(-0.39595)
    rows = corollary.per_step_terms(3, "outcome")
    assert [r["eq11"] for r in rows[:-1]] == [0.0, 0.0]          # outcome-only: zero before the end
    for r in rows:
        assert r["sf_minus_pathwise_q"] == 0
        assert r["score_function"] == pytest.approx(r["pathwise_q"])


def test_corollary_sf_gradient_matches_finite_difference():
    # Independent of sympy's differentiation: central difference of J(theta) at the example point.
    ro = corollary.lq_rollout(2, "dense")
    others = {k: v for k, v in corollary.EXAMPLE.items() if k is not corollary.theta}
    J = corollary.objective(ro).subs(others)
    th0, h = sp.Rational(-1, 2), sp.Rational(1, 1000)
    fd = float((J.subs(corollary.theta, th0 + h) - J.subs(corollary.theta, th0 - h)) / (2 * h))
    sf = float(corollary.sf_gradient(ro).subs(corollary.EXAMPLE))
    assert sf == pytest.approx(fd, rel=1e-5)
    assert float(corollary.paper_eq11_sum(ro).subs(corollary.EXAMPLE)) != pytest.approx(fd, rel=0.1)


def test_lq_rollout_rejects_bad_arguments():
    with pytest.raises(ValueError):
        corollary.lq_rollout(0)
    with pytest.raises(ValueError):
        corollary.lq_rollout(2, "sparse")


def test_negative_controls_report_their_counterexamples():
    assert softmax.control_opnorm_le_gap().residual == sp.Rational(2, 25)      # 0.18 - 0.1
    r = softmax.control_vocab_free_constant(32).residual
    assert sp.simplify(r - (sp.Rational(1, 2) - 1 / sp.sqrt(5))) == 0
    # With |V| = 4 the same two-point law satisfies the bound 1 - p_max <= H/log|V| (equality),
    # so the control is specific to |V| >= 5.
    assert softmax.control_gap_le_normalised_entropy(4).passed
    assert not softmax.control_gap_le_normalised_entropy(5).passed
    assert usable.control_usable_is_nonnegative().details["alignment"] == 3
