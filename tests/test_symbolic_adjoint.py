import time

import pytest
import sympy as sp

from vghlib.symbolic import all_checks
from vghlib.symbolic.adjoint import (
    NEGATIVE_CONTROLS,
    adjoint_checks,
    check_adjoint_recursion,
    check_costate_value_gradient_lq,
    check_pathwise_gradient,
    check_telescoping,
    gaussian_expectation,
)


def test_all_positive_checks_hold_quickly():
    t0 = time.perf_counter()
    results = adjoint_checks()
    assert len(results) == 7
    assert all(r.passed for r in results), [str(r) for r in results if not r.passed]
    assert time.perf_counter() - t0 < 15


@pytest.mark.parametrize("T", [2, 3])
def test_recursion_and_pathwise_hold_for_T(T):
    assert check_adjoint_recursion(T)
    assert check_pathwise_gradient(T)
    assert check_telescoping(T)


@pytest.mark.parametrize(
    "fn,perturb", [(fn, p) for fn, ps in NEGATIVE_CONTROLS.items() for p in ps]
)
@pytest.mark.parametrize("T", [2, 3])
def test_perturbed_statements_are_rejected(fn, perturb, T):
    r = fn(T, perturb=perturb)
    assert not r.passed, str(r)


def test_s1_dependence_leaves_exactly_the_boundary_term():
    # With s_1 = g(θ) the residual of eq 7 is ṡ_1 λ_1 = g'(θ) λ_1 (the telescoping boundary term).

    r = check_pathwise_gradient(2, perturb="s1_depends_on_theta")
    assert any(a.func.__name__ == "g_theta" for a in r.residual[0].atoms(sp.Function))


def test_registered_under_the_registry():
    names = set(all_checks())
    assert {
        "adjoint.adjoint_recursion_T3",
        "adjoint.pathwise_gradient_T3",
        "adjoint.costate_value_gradient_lq",
    } <= names


def test_gaussian_expectation_moments():
    x, y, c = sp.symbols("x y c")
    assert gaussian_expectation(x**4 + c * x * y + y**2, [x, y]) == 4
    assert gaussian_expectation(x**3, [x]) == 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        check_adjoint_recursion(0)
    with pytest.raises(ValueError):
        check_pathwise_gradient(2, perturb="nonsense")
    with pytest.raises(ValueError):
        check_costate_value_gradient_lq(9)
    with pytest.raises(ValueError):
        check_telescoping(-1)
