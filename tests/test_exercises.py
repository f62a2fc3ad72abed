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
    assert X.check_ctrl_factor(11 / 12)
    assert not X.check_ctrl_factor(5 / 6)  # the plain group mean of 6
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
    assert X.check_credit_group_mean(0.8)  # 1 - 1/5
    assert not X.check_credit_group_mean(0.875)  # the group of 8 the chapter prints
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


# ---- the homework checkers: each against a value computed here without the library's code path,
# and a typical wrong answer (the negative control)


def test_sfpd_pd_var():
    assert X.check_sfpd_pd_var("4*sigma**2")
    assert X.check_sfpd_pd_var(4 * sp.Symbol("sigma") ** 2)
    assert not X.check_sfpd_pd_var("2*sigma**2")
    assert not X.check_sfpd_pd_var("4*sigma**2 + 4*mu**2")  # the second moment, not the variance
    assert not X.check_sfpd_pd_var("sigma +* 2")


def _scalar_riccati():
    """P_t and c_t of the scalar exercise system by hand: A + BK = 0.5, stage weight 1.064."""
    A, B, Q, R, g, K, s = 0.9, 0.5, 1.0, 0.1, 0.9, -0.8, 0.3
    P, c = [0.0], [0.0]
    for _ in range(3):
        P.append(-(Q + K * K * R) + g * (A + B * K) ** 2 * P[-1])
        c.append(-s * s * R + g * (s * s * B * B * P[-2] + c[-1]))
    return P[-1], c[-1]


def test_costates_lq_value():
    P1, c1 = _scalar_riccati()
    assert X.check_costates_lq_value(4 * P1 + c1)
    assert not X.check_costates_lq_value(4 * P1)  # the noise's cost left out


def test_proofs_tight():
    assert X.check_proofs_tight(2 * (1 - 0.1))
    assert not X.check_proofs_tight(2.0)  # the limit e -> 0, not the value at e = 0.1


def test_ctrl_lqr():
    A, B, Q, R, g = 0.9, 0.5, 1.0, 0.1, 0.9
    S, K = 0.0, 0.0
    for _ in range(3):  # backwards from S_4 = 0; the last step's gain is 0
        K = -g * B * S * A / (R + g * B * B * S)
        S = Q + K * K * R + g * (A + B * K) ** 2 * S
    assert X.check_ctrl_lqr(K)
    assert not X.check_ctrl_lqr(-0.8)  # the exercise's policy is not the optimal one


def test_gap_jac_norm():
    p = np.array([0.6, 0.3, 0.1])
    top = np.linalg.eigvalsh(np.diag(p) - np.outer(p, p)).max()
    assert X.check_gap_jac_norm(top)
    assert not X.check_gap_jac_norm(1 - (p**2).sum())  # the trace, an upper bound


def test_credit_relaxed_ratio():
    # the limit of the ratio for large Delta is pi tau / sin(pi tau), pi / 2 at tau = 1/2
    assert abs(X._relaxed_over_exact(16.0, 0.5) - math.pi / 2) < 1e-3
    assert X.check_credit_relaxed_ratio(X._relaxed_over_exact(4.0, 0.5))
    assert not X.check_credit_relaxed_ratio(math.pi / 2)  # the limit, not the value at Delta = 4
    assert not X.check_credit_relaxed_ratio(1.0)  # no bias at all


def test_grpo_homework_checkers():
    assert X.check_grpo_advantage(0.75 / (0.5 + 1e-4))
    assert not X.check_grpo_advantage(0.75 / math.sqrt(0.75 / 4))  # the biased std
    assert X.check_grpo_kl(0.5 - math.log(0.5) - 1)
    assert not X.check_grpo_kl(2 - math.log(2) - 1)  # the ratio upside down


def test_impact_homework_checkers():
    assert X.check_impact_headroom(math.log(0.75 + 0.25 * math.e**2) / 2 - 0.25)
    assert not X.check_impact_headroom(0.25 * 0.75)  # p(1 - p)
    # c(p, n) by the sum over the other n - 1 answers, written out here
    p, n, xi = 0.25, 8, 1e-4
    a = {0: 0.0, 1: 0.0}
    for k in range(n):  # successes among the other 7
        w = math.comb(n - 1, k) * p**k * (1 - p) ** (n - 1 - k)
        for r in (0, 1):
            rewards = np.array([r] + [1] * k + [0] * (n - 1 - k), dtype=float)
            sd = rewards.std(ddof=1)
            a[r] += w * (r - rewards.mean()) / (sd + xi)
    assert X.check_impact_scale_n8(a[1] - a[0])
    assert not X.check_impact_scale_n8(1 - 1 / 8)  # the group mean's factor


def test_olmo2_homework_checkers():
    assert X.check_olmo2_bf16(2.0**-8)
    assert not X.check_olmo2_bf16(2.0**-7)  # the machine epsilon, a whole unit
    v, m = 100352, 100350
    b = 0.2 / m

    def secular(lam):
        return 0.25 / (0.5 - lam) + 0.09 / (0.3 - lam) + m * b * b / (b - lam) - 1

    lo, hi = 0.3 + 1e-12, 0.5 - 1e-12  # one root between the two largest probabilities
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if secular(mid) < 0 else (lo, mid)
    assert X.check_olmo2_jac_norm(lo)
    assert not X.check_olmo2_jac_norm(0.5 * 0.5)  # p_max (1 - p_max)
    h = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(b))
    assert X.check_olmo2_paper_bound(2 * c_vocab(v)[0] * math.sqrt(h / math.log(v)))
    assert not X.check_olmo2_paper_bound(2 * h)  # the linear bound
