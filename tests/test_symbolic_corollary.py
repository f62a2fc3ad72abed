"""vghlib.symbolic.corollary: Corollary 1 as argued (fails) and corrected, eq 8, at a numeric
point."""

import pytest
import sympy as sp

from vghlib.symbolic import corollary


def test_corollary_numbers_at_example_point():
    res = corollary.control_paper_eq11_sum(2, "dense")
    assert res.details["paper_at_example"] == pytest.approx(0.0653)
    assert res.details["true_at_example"] == pytest.approx(-0.39595)
    rows = corollary.per_step_terms(3, "outcome")
    assert [r["eq11"] for r in rows[:-1]] == [0.0, 0.0]  # outcome-only: zero before the end
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
