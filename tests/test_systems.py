"""vghlib.systems: one Riccati recursion (policy evaluation, differentiable), LQR gains, LQ
objective.

Each numeric check has a negative control that must be rejected.
"""

import math

import matplotlib
import pytest
import torch

from vghlib import control as C
from vghlib import systems as SY

matplotlib.use("Agg")

D = torch.float64

t = lambda x: torch.tensor(x, dtype=D)  # noqa: E731


def _lq(horizon=6, process=True, gamma=0.95):
    return SY.double_integrator(horizon, gamma=gamma, process_var=0.01 if process else None)


K0 = t([[-1.0, -1.5]])

S1 = t([1.0, -0.5])


def test_lq_value_params_matches_lq_policy_value_and_batches():
    sys_ = _lq()
    Kt = SY.lqr_gains(sys_)[0] + 0.3  # (T, m, n)
    P, c = SY.lq_policy_value(sys_, Kt, 0.4)
    P2, c2 = SY.lq_value_params(sys_, Kt, 0.4)
    assert torch.allclose(P, P2, atol=1e-12) and torch.allclose(c, c2, atol=1e-12)
    Pb, cb = SY.lq_value_params(sys_, torch.stack([Kt, Kt - 0.5]), 0.4)
    assert Pb.shape == (2, sys_.horizon + 1, 2, 2) and torch.allclose(Pb[0], P, atol=1e-12)
    P3, _ = SY.lq_policy_value(sys_, Kt - 0.5, 0.4)
    assert torch.allclose(Pb[1], P3, atol=1e-12)
    assert not torch.allclose(Pb[1], P, atol=1e-3)  # negative control


def test_exact_policy_gradient_matches_finite_differences_of_riccati():
    sys_ = _lq()
    K1 = K0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(SY.lq_objective(sys_, K1, 0.5, initial_state=S1), K1)
    h = 1e-6
    fd = torch.zeros(2, dtype=D)
    for i in range(2):
        e = torch.zeros(1, 2, dtype=D)
        e[0, i] = h
        Jp = SY.lq_value(*SY.lq_policy_value(sys_, K0 + e, 0.5), S1[None], 0)[0]
        Jm = SY.lq_value(*SY.lq_policy_value(sys_, K0 - e, 0.5), S1[None], 0)[0]
        fd[i] = (Jp - Jm) / (2 * h)
    assert torch.allclose(g.reshape(-1), fd, rtol=1e-6)
    # negative control: the gradient at another gain is different
    K2 = (K0 + 0.3).requires_grad_(True)
    (g2,) = torch.autograd.grad(SY.lq_objective(sys_, K2, 0.5, initial_state=S1), K2)
    assert not torch.allclose(g2.reshape(-1), fd, rtol=1e-2)


def test_lq_objective_with_random_start_matches_monte_carlo():
    sys_ = _lq()
    cov = t([[1.0, 0.3], [0.3, 0.5]])
    J = float(SY.lq_objective(sys_, K0, 0.5, initial_cov=cov))
    N = 40_000
    s1 = C.standard_normal_noise(N, 1, 2, 3)[:, 0] @ torch.linalg.cholesky(cov).T
    roll = C.rollout(
        sys_.dynamics,
        C.linear_gaussian_policy(K0, 0.5),
        sys_.reward,
        s1,
        C.standard_normal_noise(N, sys_.horizon, 1, 4),
        sys_.gamma,
        process_noise=sys_.process_noise(N, 5),
    )
    m, se = float(roll.ret.mean()), float(roll.ret.std()) / math.sqrt(N)
    assert abs(m - J) < 4 * se
    assert abs(m - 1.05 * J) > 4 * se  # negative control
    with pytest.raises(ValueError):
        SY.lq_objective(sys_, K0, 0.5)


def test_riccati_value_matches_monte_carlo_and_rejects_a_wrong_P():
    sys_ = _lq(12)
    K, _ = SY.lqr_gains(sys_)
    P, c = SY.lq_policy_value(sys_, K, 0.5)
    N = 40_000
    s = torch.tensor([[1.0, -0.5]], dtype=D).expand(N, 2)
    for start in (0, 5):
        roll = C.rollout(
            sys_.dynamics,
            C.linear_gaussian_policy(K, 0.5),
            sys_.reward,
            s,
            C.standard_normal_noise(N, sys_.horizon - start, 1, 10 + start),
            sys_.gamma,
            process_noise=sys_.process_noise(N, 20 + start)[:, start:],
            start_step=start,
        )
        mean, se = float(roll.ret.mean()), float(roll.ret.std() / math.sqrt(N))
        exact = float(SY.lq_value(P, c, s[:1], start)[0])
        assert abs(mean - exact) < 4 * se
        wrong = float(SY.lq_value(1.05 * P, c, s[:1], start)[0])  # negative control
        assert abs(mean - wrong) > 4 * se
        wrong_c = float(SY.lq_value(P, 0 * c, s[:1], start)[0])  # forgets the noise constant
        assert abs(mean - wrong_c) > 4 * se


def test_lqr_gains_beat_perturbed_gains_and_time_varying_evaluation():
    sys_ = _lq(12, process=False)
    K, S = SY.lqr_gains(sys_)
    P, c = SY.lq_policy_value(sys_, K, 0.0)
    assert torch.allclose(P, -S, atol=1e-12) and torch.allclose(c, torch.zeros_like(c))
    s = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=D)
    V = SY.lq_value(P, c, s, 0)
    for dK in (0.2, -0.2):
        P2, c2 = SY.lq_policy_value(sys_, K + dK, 0.0)
        assert torch.all(SY.lq_value(P2, c2, s, 0) < V)
    # with a constant gain the two forms agree
    P3, _ = SY.lq_policy_value(sys_, K[0], 0.3)
    P4, _ = SY.lq_policy_value(sys_, K[0].expand(sys_.horizon, 1, 2), 0.3)
    assert torch.allclose(P3, P4)
