"""Every registered symbolic check gives its expected verdict.

Positive statements must hold; negative controls (registered with ``register_control``) must be
rejected. Together this is the whole symbolic layer of the book in one test.
"""

import pytest
import sympy as sp

from vghlib.symbolic import CheckResult, all_checks, identity, register_control


@pytest.mark.slow  # about 10 s: every check of the book
def test_every_registered_check_gives_its_expected_verdict():
    checks = all_checks()
    assert len(checks) >= 30
    wrong = []
    n_controls = 0
    for name, check in checks.items():
        res = check()
        assert isinstance(res, CheckResult), name
        negative = bool(res.details.get("negative_control"))
        n_controls += negative
        if res.passed == negative:
            wrong.append(name)
    assert not wrong, f"wrong verdicts: {wrong}"
    assert n_controls >= 5  # the registry carries its negative controls too


def test_identity_rejects_a_false_statement_and_reports_the_residual():
    x = sp.symbols("x")
    ok = identity("double angle", sp.sin(2 * x), 2 * sp.sin(x) * sp.cos(x))
    bad = identity("wrong double angle", sp.sin(2 * x), sp.sin(x) * sp.cos(x))
    assert ok.passed and ok.residual == 0
    assert not bad.passed and bad.residual != 0


def test_register_control_marks_its_result():
    x = sp.symbols("x")
    wrapped = register_control(lambda: identity("false", x, x + 1))
    assert wrapped().details["negative_control"] is True
