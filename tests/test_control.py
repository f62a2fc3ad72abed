"""vghlib.control: rollouts, costates by BPTT and by the adjoint recursion (Prop 1), eq 7, eq 9.

Each numeric check has a negative control that must be rejected.
"""

import math

import pytest
import torch

from vghlib import control as C
from vghlib import systems as SY

D = torch.float64
t = lambda x: torch.tensor(x, dtype=D)  # noqa: E731
K0 = t([[-1.0, -1.5]])
S1 = t([1.0, -0.5])


def _pendulum(seed=0, n_hidden=6):
    g = torch.Generator().manual_seed(seed)
    W1 = (0.5 * torch.randn(n_hidden, 2, generator=g, dtype=D)).requires_grad_(True)
    W2 = (0.5 * torch.randn(1, n_hidden, generator=g, dtype=D)).requires_grad_(True)
    dt = 0.05

    def policy(s, xi):
        return torch.tanh(s @ W1.T) @ W2.T + 0.3 * xi

    def dynamics(s, a):
        om = s[:, 1] + dt * (-torch.sin(s[:, 0]) + a[:, 0] - 0.1 * s[:, 1])
        return torch.stack([s[:, 0] + dt * om, om], -1)

    def reward(s, a):
        return -(s[:, 0] ** 2 + 0.1 * s[:, 1] ** 2 + 0.01 * a[:, 0] ** 2)

    return dynamics, policy, reward, [W1, W2]


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(scope="module")
def pend():
    f, pi, r, params = _pendulum()
    s1 = torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=D)
    xi = C.standard_normal_noise(16, 60, 1, seed=2)
    return f, pi, r, params, s1, xi


def _lq(horizon=12, process=True, gamma=0.95):
    return SY.double_integrator(horizon, gamma=gamma, process_var=0.01 if process else None)


def test_autograd_costates_match_the_adjoint_recursion(pend):
    f, pi, r, params, s1, xi = pend
    roll, lam = C.costates_autograd(f, pi, r, s1, xi, 0.97)
    J = C.step_jacobians(f, pi, r, roll)
    lam_rec = C.costates_adjoint(J["dyn_jac"], J["reward_jac"], 0.97)
    assert lam.shape == (16, 61, 2) and torch.all(lam[:, -1] == 0)
    assert _rel(lam_rec, lam) < 1e-10
    # negative control: drop the path through the action (Df = ∂f/∂s, Dr = ∂r/∂s)
    wrong = C.costates_adjoint(J["dyn_s"], J["rew_s"], 0.97)
    assert _rel(wrong, lam) > 1e-3
    # negative control: forget γ
    assert _rel(C.costates_adjoint(J["dyn_jac"], J["reward_jac"], 1.0), lam) > 1e-3


def test_autograd_costates_match_differentiating_R_t_directly(pend):
    f, pi, r, params, s1, xi = pend
    roll, lam = C.costates_autograd(f, pi, r, s1, xi, 0.97)
    steps = [0, 7, 30, 59]
    ref = C.costates_rerun(f, pi, r, roll, steps)
    assert _rel(lam[:, steps], ref) < 1e-10
    # and by hand with torch.autograd.grad on a restarted rollout at s_8
    s8 = roll.states[:, 7].detach().requires_grad_(True)
    sub = C.rollout(f, pi, r, s8, xi[:, 7:], 0.97)
    (g,) = torch.autograd.grad(sub.ret.sum(), s8)
    assert torch.allclose(g, lam[:, 7], rtol=1e-10, atol=1e-12)
    # negative control: the δ-gradient of R_1 without dividing by γ^{t−1} is not λ_t
    assert _rel(lam[:, 30] * 0.97**30, ref[:, 2]) > 0.1


def test_rollout_returns_to_go(pend):
    f, pi, r, params, s1, xi = pend
    roll = C.rollout(f, pi, r, s1, xi, 0.9)
    k = torch.arange(roll.horizon, dtype=D)
    assert torch.allclose(roll.ret, (roll.rewards * 0.9**k).sum(1))
    assert torch.allclose(roll.returns[:, 10], (roll.rewards[:, 10:] * 0.9 ** k[:-10]).sum(1))
    assert roll.states.shape == (16, 61, 2) and roll.actions.shape == (16, 60, 1)


def test_pathwise_gradient_eq7_matches_bptt(pend):
    f, pi, r, params, s1, xi = pend
    roll, lam = C.costates_autograd(f, pi, r, s1, xi, 0.97, retain_graph=True)
    bptt = C.bptt_grad(roll, params)
    eq7 = C.pathwise_grad(f, pi, r, roll, lam, params)
    for a, b in zip(eq7, bptt):
        assert _rel(a, b) < 1e-10
    # negative control: costates set to zero keep only the immediate-reward term
    short = C.pathwise_grad(f, pi, r, roll, torch.zeros_like(lam), params)
    assert max(_rel(a, b) for a, b in zip(short, bptt)) > 1e-2


def test_per_rollout_gradients_sum_to_the_batch_gradient():
    sys_, K, sigma = SY.scalar_lq()
    B = 8
    Kb = C.per_rollout_params(K, B)
    pol = C.linear_gaussian_policy(Kb, sigma, per_rollout=True)
    s1 = torch.ones(B, 1, dtype=D)
    xi = C.standard_normal_noise(B, 3, 1, 0)
    roll, lam = C.costates_autograd(
        sys_.dynamics, pol, sys_.reward, s1, xi, sys_.gamma, retain_graph=True
    )
    (per,) = C.pathwise_grad(sys_.dynamics, pol, sys_.reward, roll, lam, [Kb])
    (bp,) = C.bptt_grad(roll, [Kb])
    assert per.shape == (B, 1, 1) and torch.allclose(per, bp, rtol=1e-10)
    K1 = K.clone().requires_grad_(True)
    pol1 = C.linear_gaussian_policy(K1, sigma)
    (g1,) = C.bptt_grad(C.rollout(sys_.dynamics, pol1, sys_.reward, s1, xi, sys_.gamma), [K1])
    assert torch.allclose(per.sum(0), g1, rtol=1e-10)
    assert per.std() > 0  # rollouts differ


def test_mean_costate_is_the_riccati_value_gradient_eq9():
    sys_ = _lq()
    K, _ = SY.lqr_gains(sys_)
    K = K + 0.3  # any linear policy, not only the optimal one
    P, _ = SY.lq_policy_value(sys_, K, 0.5)
    N = 40_000
    s = torch.tensor([[0.7, 0.4]], dtype=D).expand(N, 2)
    start = 3
    _, lam = C.costates_autograd(
        sys_.dynamics,
        C.linear_gaussian_policy(K, 0.5),
        sys_.reward,
        s,
        C.standard_normal_noise(N, sys_.horizon - start, 1, 5),
        sys_.gamma,
        process_noise=sys_.process_noise(N, 6)[:, start:],
        start_step=start,
    )
    mean, se = lam[:, 0].mean(0), lam[:, 0].std(0) / math.sqrt(N)
    G = SY.lq_value_grad(P, s[:1], start)[0]
    assert torch.all((mean - G).abs() < 4 * se + 1e-12)
    G_wrong = SY.lq_value_grad(P, s[:1], start + 1)[0]  # negative control: wrong time index
    assert torch.any((mean - G_wrong).abs() > 4 * se)


def test_bad_inputs_raise(pend):
    f, pi, r, params, s1, xi = pend
    with pytest.raises(ValueError, match="batch"):
        C.rollout(f, pi, r, s1, xi[:3], 0.9)
    with pytest.raises(ValueError, match="gamma"):
        C.rollout(f, pi, r, s1, xi, 0.0)
    with pytest.raises(ValueError, match="dimensions"):
        C.rollout(f, pi, r, s1[0], xi, 0.9)
    with pytest.raises(TypeError):
        C.rollout(f, pi, r, s1.numpy(), xi, 0.9)
    with pytest.raises(ValueError, match="policy"):
        C.rollout(f, lambda s, e: e[:, :0], r, s1, xi, 0.9)
    with pytest.raises(ValueError, match="process_noise"):
        C.rollout(f, pi, r, s1, xi, 0.9, process_noise=torch.zeros(16, 5, 2, dtype=D))
    with pytest.raises(ValueError):
        C.costates_adjoint(torch.zeros(2, 3, 2, 2, dtype=D), torch.zeros(2, 3, 3, dtype=D), 0.9)
    roll, lam = C.costates_autograd(f, pi, r, s1, xi, 0.9)
    with pytest.raises(ValueError, match="costates"):
        C.pathwise_grad(f, pi, r, roll, lam[:, :-1], params)
    with pytest.raises(ValueError, match="requires_grad"):
        C.pathwise_grad(f, pi, r, roll, lam, [params[0].detach()])
    t = lambda x: torch.tensor(x, dtype=D)  # noqa: E731
    with pytest.raises(ValueError, match="need A"):
        SY.LQSystem(
            A=t([[1.0]]), B=t([[1.0, 0.0]]), Q=t([[1.0, 0], [0, 1.0]]), R=t([[1.0]]), horizon=3
        )
    sys_ = _lq()
    with pytest.raises(ValueError, match="gain"):
        SY.lq_policy_value(sys_, torch.zeros(2, 1, dtype=D), 0.1)
    with pytest.raises(ValueError, match="sigma"):
        SY.lq_policy_value(sys_, torch.zeros(1, 2, dtype=D), -1.0)
    P, c = SY.lq_policy_value(sys_, torch.zeros(1, 2, dtype=D), 0.1)
    with pytest.raises(ValueError, match="t must"):
        SY.lq_value_grad(P, torch.zeros(3, 2, dtype=D), 99)


def test_gaussian_shift_policy_log_prob_and_score():
    # log_prob against torch.distributions, and its θ-gradient is the score used by SF estimators
    theta = torch.tensor([[0.7, -0.2]], dtype=D, requires_grad=True)
    pol = C.GaussianShiftPolicy(lambda s: s @ theta.T, torch.tensor([0.4], dtype=D))
    s = torch.randn(5, 2, generator=torch.Generator().manual_seed(3), dtype=D)
    xi = C.standard_normal_noise(5, 1, 1, 4)[:, 0]
    a = pol(s, xi).detach()
    ref = torch.distributions.Normal(s @ theta.T, 0.4).log_prob(a).sum(-1)
    assert torch.allclose(pol.log_prob(s, a), ref)
    assert not torch.allclose(pol.log_prob(s, a + 0.1), ref)  # negative control
    with pytest.raises(ValueError):
        C.GaussianShiftPolicy(lambda s: s, -1.0)
    with pytest.raises(ValueError, match="sigma > 0"):
        C.GaussianShiftPolicy(lambda s: s, 0.0).log_prob(s, a)


def test_fd_value_gradient_matches_riccati_and_costates_on_the_pendulum():
    sys_ = _lq(8, process=False)
    P, _ = SY.lq_policy_value(sys_, K0, 0.5)
    G = SY.lq_value_grad(P, S1[None], 0)[0]
    fd, se = C.value_grad_fd(
        sys_.dynamics,
        C.linear_gaussian_policy(K0, 0.5),
        sys_.reward,
        S1,
        C.standard_normal_noise(4000, 8, 1, 0),
        sys_.gamma,
        step=1e-4,
    )
    assert ((fd - G).abs() < 4 * se + 1e-6).all()
    fd_bad, _ = C.value_grad_fd(
        sys_.dynamics,
        C.linear_gaussian_policy(K0, 0.5),
        sys_.reward,
        S1 + 0.3,
        C.standard_normal_noise(4000, 8, 1, 0),
        sys_.gamma,
    )
    assert ((fd_bad - G).abs() > 4 * se + 1e-6).any()  # negative control
    # pendulum: with the same noise, FD of the sample mean = mean BPTT costate up to O(h²)
    pend, pol = SY.Pendulum(), SY.pendulum_policy()
    s, xi = t([1.0, 0.2]), C.standard_normal_noise(200, 30, 1, 1)
    fdp, _ = C.value_grad_fd(pend.dynamics, pol, pend.reward, s, xi, 0.99, step=1e-4)
    _, lam = C.costates_autograd(pend.dynamics, pol, pend.reward, s[None].expand(200, 2), xi, 0.99)
    assert torch.allclose(fdp, lam[:, 0].mean(0), rtol=1e-5, atol=1e-6)
    fd_off, _ = C.value_grad_fd(pend.dynamics, pol, pend.reward, s + t([0.2, 0.0]), xi, 0.99)
    assert not torch.allclose(fd_off, lam[:, 0].mean(0), rtol=1e-3)  # negative control
    with pytest.raises(ValueError):
        C.value_grad_fd(pend.dynamics, pol, pend.reward, s, xi, 0.99, step=0.0)
