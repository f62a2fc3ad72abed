"""Tests of vghlib.symbolic.lemma1: each check passes, and a perturbed statement is rejected."""

import pytest
import sympy as sp

from vghlib.symbolic import all_checks, simplify_residual
from vghlib.symbolic import lemma1 as L1


@pytest.mark.parametrize("family", L1.FAMILIES)
def test_shift_family_identity_holds(family):
    res = L1.check_shift_family(family)
    assert res.passed and res.residual == 0
    assert res.details["boundary_limit"] == 0
    assert res.details["sf"].has(sp.Derivative(L1.abar(L1.theta), L1.theta))


@pytest.mark.parametrize("family", ["gaussian", "student_t5"])
def test_perturbed_shift_statements_are_rejected(family):
    nu = L1._density(family)
    reward = L1._default_reward(family)
    sf, pd = L1._sf_pd_forms(nu, reward, L1._integrate_real_line)
    assert simplify_residual(sf - pd) == 0
    assert simplify_residual(sf + pd) != 0  # flipped sign
    assert simplify_residual(sf - 2 * pd) != 0  # wrong factor
    # PD with the reward itself instead of its slope
    wrong_pd = L1.dm * L1._integrate_real_line(sp.expand(reward(L1.u + L1.m) * nu))
    assert simplify_residual(sf - wrong_pd) != 0


@pytest.mark.slow
def test_logistic_with_an_exponential_reward_and_its_sign_flip():
    nu = L1._density("logistic")
    reward = lambda a: sp.exp(a / 3)  # noqa: E731  (finite: |1/3| < 1)
    sf, pd = L1._sf_pd_forms(nu, reward, L1._integrate_logistic)
    assert simplify_residual(sf - pd) == 0
    flipped = (sf + pd).subs({L1.m: 0, L1.dm: 1}).evalf()  # sign flip: 2·E[r'] ≠ 0
    assert abs(float(flipped)) > 0.1


def test_general_density_needs_exactly_the_boundary_hypothesis():
    res = L1.check_general_density()
    assert res.passed and res.residual == 0
    d = res.details
    assert (
        d["score_chain_rule_ok"]
        and d["integrand_is_exact_derivative"]
        and d["finite_L_residual_is_boundary"]
    )
    dropped = L1.check_general_density(assume_boundary_vanishes=False)
    assert not dropped.passed
    # the residual without the hypothesis is exactly −(∂ā/∂θ)·B(L)
    dabar = sp.Derivative(L1.abar(L1.theta), L1.theta)
    assert simplify_residual(dropped.residual + dabar * d["boundary_term"]) == 0
    assert dropped.residual != 0


def test_scale_family_negative_control_fails_with_the_stated_residual():
    res = L1.control_scale_family()
    assert not res.passed
    sig = sp.Function("sigma")(L1.theta)
    assert simplify_residual(res.residual - 2 * sig * sp.Derivative(sig, L1.theta)) == 0
    assert res.details["negative_control"] is True
    assert res.details["correct_analogue_residual"] == 0
    assert simplify_residual(res.details["mean_action"] - sig) == 0


@pytest.mark.slow
def test_lemma1_checks_list_and_registry():
    results = L1.lemma1_checks()
    assert [r.passed for r in results] == [True, True, True, True, False]
    names = all_checks()
    for key in [
        "lemma1.check_shift_family",
        "lemma1.check_shift_logistic",
        "lemma1.check_shift_student_t5",
        "lemma1.check_general_density",
        "lemma1.control_scale_family",
    ]:
        assert key in names


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="family must be one of"):
        L1.check_shift_family("cauchy")
