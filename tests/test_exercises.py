"""vghlib.exercises: every self-checking exercise accepts its reference, rejects a wrong answer,
answers None with "no answer yet", and never shows the reference value."""

import math
import pathlib

import numpy as np
import pytest
import sympy as sp
import torch

from vghlib import exercises as X
from vghlib import systems as SY
from vghlib.estimators import cosine_crossover
from vghlib.sampling_gap import c_vocab, crossover_entropy


def _wrong(ref):
    if isinstance(ref, sp.Expr):
        return ref + sp.Symbol("mu")
    return 1.1 * ref + 0.05


@pytest.mark.parametrize("exercise_id", sorted(X.CHECKERS))
def test_every_checker_follows_the_scheme(exercise_id):
    check = X.CHECKERS[exercise_id]
    assert check.__name__.startswith("check_")
    none = check(None)
    assert isinstance(none, X.Feedback) and not none and "no answer yet" in none.message
    # nothing to judge yet, so no verdict ("not yet: no answer yet" read as a wrong answer)
    assert repr(none).startswith(f"[{exercise_id}] no answer yet")
    ref = X.reference(exercise_id)
    right = check(ref)
    assert isinstance(right, X.Feedback) and right and right.exercise == exercise_id
    wrong = check(_wrong(ref))
    assert isinstance(wrong, X.Feedback) and not wrong  # the negative control
    assert repr(wrong).startswith(f"[{exercise_id}] not yet: ")  # a verdict, with a hint
    if not isinstance(ref, sp.Expr):
        for shown in (f"{ref:.3g}", f"{ref:.4f}"):
            assert shown not in repr(wrong) and shown not in repr(right)  # never leak the answer


def test_the_math_modules_do_not_import_the_exercises():
    root = pathlib.Path(X.__file__).parent
    offenders = [
        p.name
        for p in root.rglob("*.py")
        if p.name != "exercises.py"
        and "vghlib.exercises" in p.read_text()
        and "import" in p.read_text().split("vghlib.exercises")[0][-40:]
    ]
    assert offenders == []


def test_unknown_exercise_is_named():
    with pytest.raises(KeyError, match="known"):
        X.reference("no-such-exercise")


def test_sfpd_exercises():
    assert X.check_sfpd_var("mu**4/sigma**2 + 14*mu**2 + 15*sigma**2")
    assert not X.check_sfpd_var("15*sigma**2")
    assert not X.check_sfpd_var("mu**4/sigma**2 + 12*mu**2 + 15*sigma**2")
    assert not X.check_sfpd_var("mu +* sigma")
    mu, sigma = sp.symbols("mu sigma")
    assert X.check_sfpd_var(mu**4 / sigma**2 + 14 * mu**2 + 15 * sigma**2)
    assert X.check_sfpd_cross(cosine_crossover(1.0) * 1.001)
    assert not X.check_sfpd_cross(1.0)
    assert not X.check_sfpd_cross("abc")


def test_costates_riccati():
    sys_, K, sigma = SY.scalar_lq()
    P, _ = SY.lq_policy_value(sys_, K, sigma)
    right = float(2 * P[0, 0, 0] * 2.0)
    assert X.check_costates_riccati(right)
    assert not X.check_costates_riccati(-right)
    assert not X.check_costates_riccati(float(P[0, 0, 0] * 2.0))  # forgot the factor 2


def test_ctrl_exercises():
    assert X.check_ctrl_factor(5 / 6)
    assert not X.check_ctrl_factor(1.0)
    sys_, K, sigma = SY.scalar_lq()
    K1 = K.clone().requires_grad_(True)
    s1 = torch.tensor([2.0], dtype=torch.float64)
    (g,) = torch.autograd.grad(SY.lq_objective(sys_, K1, sigma, initial_state=s1), K1)
    assert X.check_ctrl_grad(float(g))
    assert not X.check_ctrl_grad(float(g) * 1.1)
    assert "ref" not in repr(X.check_ctrl_grad(float(g) * 1.1)).lower()


def test_gap_crossover():
    h = crossover_entropy(32)
    cv = c_vocab(32)[0]
    assert abs(h - cv * np.sqrt(h / np.log(32))) < 1e-12  # H* = C_V sqrt(H*/log|V|)
    assert X.check_gap_crossover(h)
    assert not X.check_gap_crossover(1.1 * h)


def test_credit_group_mean():
    assert X.check_credit_group_mean(0.875)
    assert not X.check_credit_group_mean(1.0)


def test_proofs_sup_ratio():
    assert X.check_proofs_sup_ratio(1 / (2 * math.log(2)))
    assert X.check_proofs_sup_ratio(0.7213)
    assert not X.check_proofs_sup_ratio(0.6)
    assert not X.check_proofs_sup_ratio(1.0)


def test_check_numeric_verdicts():
    assert X.check_numeric("e", 1.0, 1.001)
    assert not X.check_numeric("e", 1.2, 1.0)
    assert not X.check_numeric("e", [1.0, 2.0], 1.0)
    assert not X.check_numeric("e", np.nan, 1.0)
    assert not X.check_numeric("e", "abc", 1.0)
    none = X.check_numeric("e", None, 1.0)
    assert not none and "no answer yet" in repr(none)


def test_check_symbolic_verdicts():
    x = sp.symbols("x")
    assert X.check_symbolic("e", sp.sin(x) ** 2, 1 - sp.cos(x) ** 2)
    assert not X.check_symbolic("e", x**2, x**3)
    assert not X.check_symbolic("e", "x +* 2", x)
