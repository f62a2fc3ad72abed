"""Part II: SF and PD estimators on rollouts, the differentiable LQ objective, FD value gradients.

Each numeric check has a negative control that must be rejected.
"""

import math

import matplotlib
import pytest
import torch

from vghlib import control as C
from vghlib import control_estimators as CE
from vghlib import control_systems as CS

matplotlib.use("Agg")
D = torch.float64
t = lambda x: torch.tensor(x, dtype=D)  # noqa: E731


def _lq(horizon=6, process=True):
    return C.LQSystem(A=t([[1.0, 0.1], [0.0, 1.0]]), B=t([[0.0], [0.1]]),
                      Q=t([[1.0, 0.0], [0.0, 0.1]]), R=t([[0.01]]), horizon=horizon, gamma=0.95,
                      process_cov=0.01 * torch.eye(2, dtype=D) if process else None)


K0 = t([[-1.0, -1.5]])
S1 = t([1.0, -0.5])


# ------------------------------------------------------------------ differentiable Riccati

def test_lq_value_params_matches_lq_policy_value_and_batches():
    sys_ = _lq()
    Kt = C.lqr_gains(sys_)[0] + 0.3                                   # (T, m, n)
    P, c = C.lq_policy_value(sys_, Kt, 0.4)
    P2, c2 = CS.lq_value_params(sys_, Kt, 0.4)
    assert torch.allclose(P, P2, atol=1e-12) and torch.allclose(c, c2, atol=1e-12)
    Pb, cb = CS.lq_value_params(sys_, torch.stack([Kt, Kt - 0.5]), 0.4)
    assert Pb.shape == (2, sys_.horizon + 1, 2, 2) and torch.allclose(Pb[0], P, atol=1e-12)
    P3, _ = C.lq_policy_value(sys_, Kt - 0.5, 0.4)
    assert torch.allclose(Pb[1], P3, atol=1e-12)
    assert not torch.allclose(Pb[1], P, atol=1e-3)                    # negative control


def test_exact_policy_gradient_matches_finite_differences_of_riccati():
    sys_ = _lq()
    K1 = K0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(CS.lq_objective(sys_, K1, 0.5, initial_state=S1), K1)
    h = 1e-6
    fd = torch.zeros(2, dtype=D)
    for i in range(2):
        e = torch.zeros(1, 2, dtype=D)
        e[0, i] = h
        Jp = C.lq_value(*C.lq_policy_value(sys_, K0 + e, 0.5), S1[None], 0)[0]
        Jm = C.lq_value(*C.lq_policy_value(sys_, K0 - e, 0.5), S1[None], 0)[0]
        fd[i] = (Jp - Jm) / (2 * h)
    assert torch.allclose(g.reshape(-1), fd, rtol=1e-6)
    # negative control: the gradient at another gain is different
    K2 = (K0 + 0.3).requires_grad_(True)
    (g2,) = torch.autograd.grad(CS.lq_objective(sys_, K2, 0.5, initial_state=S1), K2)
    assert not torch.allclose(g2.reshape(-1), fd, rtol=1e-2)


def test_lq_objective_with_random_start_matches_monte_carlo():
    sys_ = _lq()
    cov = t([[1.0, 0.3], [0.3, 0.5]])
    J = float(CS.lq_objective(sys_, K0, 0.5, initial_cov=cov))
    N = 40_000
    s1 = C.standard_normal_noise(N, 1, 2, 3)[:, 0] @ torch.linalg.cholesky(cov).T
    roll = C.rollout(sys_.dynamics, C.linear_gaussian_policy(K0, 0.5), sys_.reward, s1,
                     C.standard_normal_noise(N, sys_.horizon, 1, 4), sys_.gamma,
                     process_noise=sys_.process_noise(N, 5))
    m, se = float(roll.ret.mean()), float(roll.ret.std()) / math.sqrt(N)
    assert abs(m - J) < 4 * se
    assert abs(m - 1.05 * J) > 4 * se                                 # negative control
    with pytest.raises(ValueError):
        CS.lq_objective(sys_, K0, 0.5)


# ------------------------------------------------------------------ estimators, per rollout

def _per_rollout_setup(B=6, T=5, seed=0):
    sys_ = _lq(T)
    Kb = C.per_rollout_params(K0, B)
    pol = C.linear_gaussian_policy(Kb, 0.5, per_rollout=True)
    s1 = C.standard_normal_noise(B, 1, 2, seed + 1)[:, 0]
    xi = C.standard_normal_noise(B, T, 1, seed)
    roll = C.rollout(sys_.dynamics, pol, sys_.reward, s1, xi, sys_.gamma,
                     process_noise=sys_.process_noise(B, seed + 2))
    return sys_, Kb, pol, s1, xi, roll


def test_sf_samples_equal_the_analytic_gaussian_score():
    sys_, Kb, pol, s1, xi, roll = _per_rollout_setup()
    adv = t([0.5, -1.0, 2.0, 0.0, 1.5, -0.3])
    (g,) = CE.sf_grad_samples(pol, roll, [Kb], adv)                   # (B, 1, 2)
    # ∂_K log N(a; K s, σ²) = (a − K s) sᵀ / σ² = ξ sᵀ / σ
    score = (xi[:, :, :, None] / 0.5 * roll.states[:, :-1, None, :].detach()).sum(1)
    assert torch.allclose(g, adv[:, None, None] * score, rtol=1e-12, atol=1e-12)
    # negative control: advantages attached to the wrong rollouts
    assert not torch.allclose(g, adv.flip(0)[:, None, None] * score, atol=1e-6)
    # per-step advantages (B, T) reduce to the same thing when constant along the rollout
    (g2,) = CE.sf_grad_samples(pol, roll, [Kb], adv[:, None].expand(6, 5))
    assert torch.allclose(g, g2, atol=1e-12)
    # sf_from_scores reproduces it from scores and returns
    (sc,) = CE.sf_grad_samples(pol, roll, [Kb], torch.ones(6, dtype=D))
    x = CE.sf_from_scores(sc.reshape(6, -1), roll.ret.detach(), 3, "loo")
    (g3,) = CE.sf_grad_samples(pol, roll, [Kb], CE.group_advantages(roll.ret, 3, "loo"))
    assert torch.allclose(x, g3.reshape(6, -1), atol=1e-12)


def test_pd_samples_are_each_rollouts_own_bptt_gradient():
    sys_, Kb, pol, s1, xi, roll = _per_rollout_setup()
    (g,) = CE.pd_grad_samples(roll, [Kb])
    w = sys_.process_noise(6, 2)
    for b in range(6):                                                 # reference: one at a time
        K1 = K0.clone().requires_grad_(True)
        r1 = C.rollout(sys_.dynamics, C.linear_gaussian_policy(K1, 0.5), sys_.reward,
                       s1[b:b + 1], xi[b:b + 1], sys_.gamma, process_noise=w[b:b + 1])
        (gb,) = C.bptt_grad(r1, [K1])
        assert torch.allclose(g[b], gb, rtol=1e-10)
    assert not torch.allclose(g[0], g[1], rtol=1e-3)                   # negative control
    with pytest.raises(ValueError):
        CE.pd_grad_samples(roll, [K0.clone().requires_grad_(True)])


def test_per_rollout_time_varying_policy_matches_shared_time_varying_gains():
    sys_ = _lq(4)
    Kt = C.lqr_gains(sys_)[0]                                          # (T, m, n)
    B = 3
    Kb = Kt.unsqueeze(0).repeat(B, 1, 1, 1).requires_grad_(True)        # (B, T, m, n)
    xi = C.standard_normal_noise(B, 4, 1, 0)
    s1 = torch.ones(B, 2, dtype=D)
    r_b = C.rollout(sys_.dynamics, C.linear_gaussian_policy(Kb, 0.3, per_rollout=True),
                    sys_.reward, s1, xi, sys_.gamma)
    r_s = C.rollout(sys_.dynamics, C.linear_gaussian_policy(Kt, 0.3), sys_.reward, s1, xi,
                    sys_.gamma)
    assert torch.allclose(r_b.ret, r_s.ret, atol=1e-12)
    (g,) = C.bptt_grad(r_b, [Kb])
    assert g.shape == (B, 4, 1, 2) and g[:, -1].abs().sum() > 0


# ------------------------------------------------------------------ expectations (Corollary 1)

@pytest.fixture(scope="module")
def big_samples():
    sys_ = _lq(6)
    return CE.lq_gradient_samples(sys_, K0, 0.5, S1, batch=2 ** 16, seed=1)


def _proj(x, n, g):
    gm = CE.group_means(x, n)
    return CE.mean_ci((gm @ g / g.dot(g))[:, None])


def test_pd_and_loo_sf_are_unbiased_mean_baseline_is_shrunk(big_samples):
    s = big_samples
    g = s["exact"]
    m, h = _proj(s["pd"], 4, g)
    assert abs(float(m) - 1) < float(h)
    loo = CE.sf_from_scores(s["score"], s["returns"], 4, "loo")
    m, h = _proj(loo, 4, g)
    assert abs(float(m) - 1) < float(h)
    mean2 = CE.sf_from_scores(s["score"], s["returns"], 2, "mean")
    m, h = _proj(mean2, 2, g)
    assert abs(float(m) - 0.5) < float(h)
    assert abs(float(m) - 1) > float(h)                               # negative control
    # the (1 − 1/n) factor holds sample by sample: r_i − mean = (1 − 1/n)(r_i − mean_{j≠i})
    for n in (2, 4, 8):
        a = CE.sf_from_scores(s["score"], s["returns"], n, "mean")
        b = CE.sf_from_scores(s["score"], s["returns"], n, "loo")
        assert torch.allclose(a, (1 - 1 / n) * b, atol=1e-10)
    # negative control for the reference itself: the exact gradient at another gain is rejected
    K2 = (K0 + 0.5).requires_grad_(True)
    (g2,) = torch.autograd.grad(CS.lq_objective(_lq(6), K2, 0.5, initial_state=S1), K2)
    m, h = CE.mean_ci(CE.group_means(s["pd"], 4))
    assert ((m - g2.reshape(-1)).abs() > h).any()


def test_grpo_scale_approaches_one_over_return_sd(big_samples):
    s = big_samples
    g, sd = s["exact"], float(s["returns"].std())
    grpo = CE.sf_from_scores(s["score"], s["returns"], 64, "grpo")
    m, h = _proj(grpo, 64, g)
    assert abs(float(m) * sd - 1) < 3 * float(h) * sd
    m2, h2 = _proj(CE.sf_from_scores(s["score"], s["returns"], 2, "grpo"), 2, g)
    assert float(m2) * sd < 0.6                                      # small n: clearly below 1


def test_group_advantages_layout_and_errors():
    r = t([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    a = CE.group_advantages(r, 3, "mean")
    assert torch.allclose(a, t([-1.0, 0.0, 1.0, -10.0, 0.0, 10.0]))
    with pytest.raises(ValueError):
        CE.group_advantages(r, 4)
    with pytest.raises(ValueError):
        CE.group_advantages(r.reshape(2, 3), 3)


# ------------------------------------------------------------------ FD value gradients

def test_fd_value_gradient_matches_riccati_and_costates_on_the_pendulum():
    sys_ = _lq(8, process=False)
    P, _ = C.lq_policy_value(sys_, K0, 0.5)
    G = C.lq_value_grad(P, S1[None], 0)[0]
    fd, se = CS.value_grad_fd(sys_.dynamics, C.linear_gaussian_policy(K0, 0.5), sys_.reward, S1,
                              C.standard_normal_noise(4000, 8, 1, 0), sys_.gamma, step=1e-4)
    assert ((fd - G).abs() < 4 * se + 1e-6).all()
    fd_bad, _ = CS.value_grad_fd(sys_.dynamics, C.linear_gaussian_policy(K0, 0.5), sys_.reward,
                                 S1 + 0.3, C.standard_normal_noise(4000, 8, 1, 0), sys_.gamma)
    assert ((fd_bad - G).abs() > 4 * se + 1e-6).any()                  # negative control
    # pendulum: with the same noise, FD of the sample mean = mean BPTT costate up to O(h²)
    pend, pol = CS.Pendulum(), CS.pendulum_policy()
    s, xi = t([1.0, 0.2]), C.standard_normal_noise(200, 30, 1, 1)
    fdp, _ = CS.value_grad_fd(pend.dynamics, pol, pend.reward, s, xi, 0.99, step=1e-4)
    _, lam = C.costates_autograd(pend.dynamics, pol, pend.reward, s[None].expand(200, 2), xi, 0.99)
    assert torch.allclose(fdp, lam[:, 0].mean(0), rtol=1e-5, atol=1e-6)
    fd_off, _ = CS.value_grad_fd(pend.dynamics, pol, pend.reward, s + t([0.2, 0.0]), xi, 0.99)
    assert not torch.allclose(fd_off, lam[:, 0].mean(0), rtol=1e-3)    # negative control
    with pytest.raises(ValueError):
        CS.value_grad_fd(pend.dynamics, pol, pend.reward, s, xi, 0.99, step=0.0)


# ------------------------------------------------------------------ training

def test_train_lq_improves_and_seeds_are_independent_runs():
    sys_ = _lq(6)
    kw = dict(iterations=30, n_groups=2, group_size=4, lr=0.2, eval_every=10)
    both = CE.train_lq(sys_, "pd", K0, 0.5, torch.eye(2, dtype=D), seeds=[0, 1], **kw)
    one = CE.train_lq(sys_, "pd", K0, 0.5, torch.eye(2, dtype=D), seeds=[1], **kw)
    assert torch.allclose(both.gains[1], one.gains[0], atol=1e-10)      # vectorised = separate
    assert all(g1 < 0.5 * g0 for g0, g1 in zip(both.gap[0], both.gap[-1]))
    assert all(g >= -1e-12 for row in both.gap for g in row)            # J ≤ J*
    frozen = CE.train_lq(sys_, "sf", K0, 0.5, torch.eye(2, dtype=D), seeds=[0],
                         **{**kw, "lr": 0.0})
    assert frozen.gap[-1][0] == pytest.approx(frozen.gap[0][0])        # negative control
    sf = CE.train_lq(sys_, "sf", K0, 0.5, torch.eye(2, dtype=D), seeds=[0], **kw)
    assert sf.gap[-1][0] < sf.gap[0][0]
    with pytest.raises(ValueError):
        CE.train_lq(sys_, "adam", K0, 0.5, torch.eye(2, dtype=D), seeds=[0], **kw)


# ------------------------------------------------------------------ exercises and figure

def test_exercise_helpers():
    for fn in (CE.exercise_mean_baseline_factor, CE.exercise_lq_policy_gradient):
        none = fn(None)
        assert not none and "no answer yet" in repr(none)
    assert CE.exercise_mean_baseline_factor(5 / 6)
    assert not CE.exercise_mean_baseline_factor(1.0)
    sys_, K, sigma, s1 = CE._exercise_lq()
    K1 = K.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(CS.lq_objective(sys_, K1, sigma, initial_state=s1), K1)
    assert CE.exercise_lq_policy_gradient(float(g))
    assert not CE.exercise_lq_policy_gradient(float(g) * 1.1)
    assert "ref" not in repr(CE.exercise_lq_policy_gradient(float(g) * 1.1)).lower()


def test_explorer_draws_two_panels():
    from vghlib.control_plots import draw_control_explorer
    fig = draw_control_explorer(horizon=5, sigma=0.5, group_size=4, n_groups=20)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError):
        draw_control_explorer(group_size=1)
