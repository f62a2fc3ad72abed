"""Tests of vghlib.estimators: SF (eq 2) and PD (eq 3) against closed forms, with negative
controls."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from vghlib import estimators as E
from vghlib import exercises as X

LAWS = [
    (E.gaussian_location(0.7), [0.3]),
    (E.gaussian(), [0.3, 0.8]),
    (E.logistic_location(0.5), [0.3]),
    (E.exponential_scale(), [1.3]),
]
COSTS = [E.quadratic(2.0, 0.5), E.cosine(1.5), E.step(0.4)]
DENSITY = {  # scipy densities, an independent reference for the closed forms
    "gaussian_location": lambda th: stats.norm(th[0], 0.7),
    "gaussian": lambda th: stats.norm(th[0], th[1]),
    "logistic_location": lambda th: stats.logistic(th[0], 0.5),
    "exponential_scale": lambda th: stats.expon(scale=th[0]),
}
ids = [f"{law.name}-{cost.name.split('(')[0]}" for law, _ in LAWS for cost in COSTS]
cases = [(law, th, cost) for law, th in LAWS for cost in COSTS]


@pytest.mark.parametrize("law,theta,cost", cases, ids=ids)
def test_closed_form_expectation_matches_numerical_integration(law, theta, cost):
    dist = DENSITY[law.name](theta)
    f = lambda x: float(cost.fn(torch.tensor([x], dtype=torch.float64))[0]) * dist.pdf(x)  # noqa: E731
    lo, hi = dist.ppf(1e-13), dist.ppf(1 - 1e-13)
    pts = [0.4] if lo < 0.4 < hi else None
    ref, _ = integrate.quad(f, lo, hi, points=pts, limit=400)
    assert E.exact_expectation(cost, law, theta) == pytest.approx(ref, abs=1e-7)


@pytest.mark.parametrize("law,theta,cost", cases, ids=ids)
def test_sf_mean_matches_exact_gradient_and_rejects_a_wrong_one(law, theta, cost):
    exact = E.exact_gradient(cost, law, theta)
    est = E.estimate("sf", cost, law, theta, 200_000, seed=1)
    assert np.all(est.covers(exact, z=4.0)), (est.mean, est.se, exact)
    wrong = exact + 0.1 + 0.05 * np.abs(exact)  # negative control
    assert not np.any(est.covers(wrong, z=4.0))


@pytest.mark.parametrize(
    "law,theta,cost",
    [c for c in cases if c[2].differentiable],
    ids=[i for i, c in zip(ids, cases) if c[2].differentiable],
)
def test_pd_mean_matches_exact_gradient_and_rejects_a_wrong_one(law, theta, cost):
    exact = E.exact_gradient(cost, law, theta)
    est = E.estimate("pd", cost, law, theta, 200_000, seed=2)
    assert np.all(est.covers(exact, z=4.0)), (est.mean, est.se, exact)
    assert not np.any(est.covers(exact + 0.1 + 0.05 * np.abs(exact), z=4.0))


def test_pd_does_not_apply_to_a_step_cost_but_sf_does():
    law, th, cost = E.gaussian_location(1.0), [0.2], E.step(0.0)
    pd = E.pd_samples(cost, law, th, 1000, seed=0)
    assert torch.all(pd == 0)  # the slope is zero almost everywhere
    exact = E.exact_gradient(cost, law, th)
    assert exact[0] == pytest.approx(stats.norm.pdf(0.2), rel=1e-12)  # φ(μ − t)/σ
    assert E.estimate("sf", cost, law, th, 200_000, seed=3).covers(exact, 4.0).all()


def test_sf_and_pd_agree_in_expectation_on_independent_samples():
    law, th, cost = E.gaussian(), [0.4, 1.2], E.cosine(0.8)
    sf = E.estimate("sf", cost, law, th, 200_000, seed=10)
    pd = E.estimate("pd", cost, law, th, 200_000, seed=11)
    se = np.sqrt(sf.se**2 + pd.se**2)
    assert np.all(np.abs(sf.mean - pd.mean) <= 4 * se)
    # negative control: the SF estimate under a different theta is clearly different
    other = E.estimate("sf", cost, law, [1.4, 1.2], 200_000, seed=12)
    assert np.any(np.abs(other.mean - pd.mean) > 4 * np.sqrt(other.se**2 + pd.se**2))


def test_per_sample_variances_match_the_closed_forms_for_x_squared():
    # c = x², x ~ N(μ, σ²): Var_PD = 4σ², Var_SF = μ⁴/σ² + 14μ² + 15σ²
    # (sympy reference in vghlib.exercises)
    mu, sigma = 0.5, 0.8
    law, cost = E.gaussian_location(sigma), E.quadratic(2.0, 0.0)
    var_pd = float(E.pd_samples(cost, law, [mu], 400_000, seed=4)[:, 0].var())
    var_sf = float(E.sf_samples(cost, law, [mu], 400_000, seed=4)[:, 0].var())
    assert var_pd == pytest.approx(4 * sigma**2, rel=0.01)
    assert var_sf == pytest.approx(mu**4 / sigma**2 + 14 * mu**2 + 15 * sigma**2, rel=0.03)
    assert var_pd < var_sf
    ref, (m, s) = X._sf_variance_quadratic()
    assert float(ref.subs({m: mu, s: sigma})) == pytest.approx(var_sf, rel=0.03)


def test_pd_variance_exceeds_sf_variance_for_a_high_frequency_cosine():
    law = E.gaussian_location(1.0)
    for omega, pd_worse in [(0.4, False), (3.0, True)]:
        cost = E.cosine(omega)
        v_sf = float(E.sf_samples(cost, law, [0.0], 400_000, seed=5)[:, 0].var())
        v_pd = float(E.pd_samples(cost, law, [0.0], 400_000, seed=5)[:, 0].var())
        ref_sf, ref_pd = E.cosine_variances(omega)
        assert v_sf == pytest.approx(float(ref_sf), rel=0.02)
        assert v_pd == pytest.approx(float(ref_pd), rel=0.02)
        assert (v_pd > v_sf) == pd_worse
    w = E.cosine_crossover(1.0)
    ref_sf, ref_pd = E.cosine_variances(w)
    assert float(ref_sf) == pytest.approx(float(ref_pd), rel=1e-9)
    assert 0.5 < w < 1.5


def test_baselines_keep_sf_unbiased_and_the_loo_baseline_reduces_variance_here():
    law, th, cost = E.gaussian_location(1.0), [1.0], E.quadratic(2.0, 0.0)
    exact = E.exact_gradient(cost, law, th)
    plain = E.estimate("sf", cost, law, th, 200_000, seed=6)
    for b in [3.0, "loo"]:
        est = E.estimate("sf", cost, law, th, 200_000, seed=6, baseline=b)
        assert est.covers(exact, 4.0).all()
    loo = E.estimate("sf", cost, law, th, 200_000, seed=6, baseline="loo")
    assert loo.std[0] < 0.8 * plain.std[0]


def test_variance_of_the_mean_falls_like_one_over_n():
    law, th, cost = E.gaussian_location(1.0), [0.5], E.quadratic(2.0, 0.0)
    for kind, per_sample in [("pd", 4.0), ("sf", 0.5**4 + 14 * 0.25 + 15)]:
        v = E.variance_vs_samples(kind, cost, law, th, [4, 64], n_repeats=2000, seed=7)
        for n, var in v.items():
            assert var == pytest.approx(per_sample / n, rel=0.15), (kind, n)
    v = E.variance_vs_samples("sf", cost, law, th, [4, 16], n_repeats=500, seed=7, baseline="loo")
    assert v[16] < v[4]


def test_bad_input_gets_a_clear_error():
    law = E.gaussian_location(1.0)
    with pytest.raises(ValueError, match="takes theta"):
        E.estimate("sf", E.quadratic(), law, [0.0, 1.0], 100)
    with pytest.raises(ValueError, match="must be > 0"):
        E.estimate("pd", E.quadratic(), E.gaussian(), [0.0, -1.0], 100)
    with pytest.raises(ValueError, match="positive finite"):
        E.gaussian_location(0.0)
    with pytest.raises(ValueError, match="n_samples must be an integer"):
        E.sf_samples(E.quadratic(), law, [0.0], 1)
    with pytest.raises(ValueError, match="baseline must be"):
        E.sf_samples(E.quadratic(), law, [0.0], 10, baseline="mean")
    with pytest.raises(ValueError, match="kind must be"):
        E.estimate("reinforce", E.quadratic(), law, [0.0], 10)
    with pytest.raises(ValueError, match="baseline belongs"):
        E.estimate("pd", E.quadratic(), law, [0.0], 10, baseline=1.0)
    with pytest.raises(TypeError, match="cost must be"):
        E.sf_samples(3.0, law, [0.0], 10)
    with pytest.raises(ValueError, match="NaN or inf"):
        E.summarize(np.array([[1.0], [math.nan]]))
    with pytest.raises(ValueError, match="finite"):
        E.estimate("sf", E.quadratic(), law, [math.nan], 10)


def test_add_costs_sums_values_and_expectations():
    law, th = E.gaussian_location(0.6), [0.2]
    both = E.add_costs(E.quadratic(1.5, 1.0), E.cosine(2.0))
    ref = E.exact_gradient(E.quadratic(1.5, 1.0), law, th) + E.exact_gradient(
        E.cosine(2.0), law, th
    )
    assert E.exact_gradient(both, law, th) == pytest.approx(ref, rel=1e-12)
    assert E.estimate("pd", both, law, th, 100_000, seed=8).covers(ref, 4.0).all()
    assert not E.add_costs(E.quadratic(), E.step()).differentiable
    with pytest.raises(TypeError, match="add_costs takes"):
        E.add_costs(lambda x: x)


def test_gaussian_quadratic_variance_matches_the_exercise_and_monte_carlo():
    expr = X.reference("sfpd-ex-var")
    syms = {str(v): v for v in expr.free_symbols}
    for mu, sigma in ((0.5, 1.0), (-1.3, 0.4), (2.0, 3.0)):
        exact = float(expr.subs({syms["mu"]: mu, syms["sigma"]: sigma}))
        assert E.gaussian_quadratic_variance("sf", mu, sigma) == pytest.approx(exact, rel=1e-12)
        assert E.gaussian_quadratic_variance("pd", mu, sigma) == pytest.approx(
            4 * sigma**2, rel=1e-12
        )
    law, cost = E.gaussian_location(1.0), E.quadratic(curvature=2.0)
    mc = float(E.sf_samples(cost, law, [0.5], 400_000, seed=1)[:, 0].var())
    assert mc == pytest.approx(E.gaussian_quadratic_variance("sf", 0.5), rel=0.03)
    # control: a wrong variance (the PD one) is not the SF one
    assert abs(E.gaussian_quadratic_variance("pd", 0.5) - mc) > 0.5 * mc
    with pytest.raises(ValueError, match="'sf' or 'pd'"):
        E.gaussian_quadratic_variance("rf", 0.5)
