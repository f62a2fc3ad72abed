"""vghlib.policy_gradient: SF and PD estimators on rollouts, group baselines, LQ training
(Corollary 1).

Each numeric check has a negative control that must be rejected.
"""

import matplotlib
import pytest
import torch

from vghlib import control as C
from vghlib import policy_gradient as PG
from vghlib import stats
from vghlib import systems as SY

matplotlib.use("Agg")

D = torch.float64

t = lambda x: torch.tensor(x, dtype=D)  # noqa: E731


def _lq(horizon=6, process=True):
    return SY.double_integrator(horizon, process_var=0.01 if process else None)


K0 = t([[-1.0, -1.5]])

S1 = t([1.0, -0.5])


def _per_rollout_setup(B=6, T=5, seed=0):
    sys_ = _lq(T)
    Kb = C.per_rollout_params(K0, B)
    pol = C.linear_gaussian_policy(Kb, 0.5, per_rollout=True)
    s1 = C.standard_normal_noise(B, 1, 2, seed + 1)[:, 0]
    xi = C.standard_normal_noise(B, T, 1, seed)
    roll = C.rollout(
        sys_.dynamics,
        pol,
        sys_.reward,
        s1,
        xi,
        sys_.gamma,
        process_noise=sys_.process_noise(B, seed + 2),
    )
    return sys_, Kb, pol, s1, xi, roll


@pytest.fixture(scope="module")
def big_samples():
    sys_ = _lq(6)
    return PG.lq_gradient_samples(sys_, K0, 0.5, S1, batch=2**16, seed=1)


def _proj(x, n, g):
    gm = PG.group_means(x, n)
    return stats.mean_ci((gm @ g / g.dot(g))[:, None])


def test_sf_samples_equal_the_analytic_gaussian_score():
    sys_, Kb, pol, s1, xi, roll = _per_rollout_setup()
    adv = t([0.5, -1.0, 2.0, 0.0, 1.5, -0.3])
    (g,) = PG.sf_grad_samples(pol, roll, [Kb], adv)  # (B, 1, 2)
    # ∂_K log N(a; K s, σ²) = (a − K s) sᵀ / σ² = ξ sᵀ / σ
    score = (xi[:, :, :, None] / 0.5 * roll.states[:, :-1, None, :].detach()).sum(1)
    assert torch.allclose(g, adv[:, None, None] * score, rtol=1e-12, atol=1e-12)
    # negative control: advantages attached to the wrong rollouts
    assert not torch.allclose(g, adv.flip(0)[:, None, None] * score, atol=1e-6)
    # per-step advantages (B, T) reduce to the same thing when constant along the rollout
    (g2,) = PG.sf_grad_samples(pol, roll, [Kb], adv[:, None].expand(6, 5))
    assert torch.allclose(g, g2, atol=1e-12)
    # sf_from_scores reproduces it from scores and returns
    (sc,) = PG.sf_grad_samples(pol, roll, [Kb], torch.ones(6, dtype=D))
    x = PG.sf_from_scores(sc.reshape(6, -1), roll.ret.detach(), 3, "loo")
    (g3,) = PG.sf_grad_samples(pol, roll, [Kb], PG.group_advantages(roll.ret, 3, "loo"))
    assert torch.allclose(x, g3.reshape(6, -1), atol=1e-12)


def test_pd_samples_are_each_rollouts_own_bptt_gradient():
    sys_, Kb, pol, s1, xi, roll = _per_rollout_setup()
    (g,) = PG.pd_grad_samples(roll, [Kb])
    w = sys_.process_noise(6, 2)
    for b in range(6):  # reference: one at a time
        K1 = K0.clone().requires_grad_(True)
        r1 = C.rollout(
            sys_.dynamics,
            C.linear_gaussian_policy(K1, 0.5),
            sys_.reward,
            s1[b : b + 1],
            xi[b : b + 1],
            sys_.gamma,
            process_noise=w[b : b + 1],
        )
        (gb,) = C.bptt_grad(r1, [K1])
        assert torch.allclose(g[b], gb, rtol=1e-10)
    assert not torch.allclose(g[0], g[1], rtol=1e-3)  # negative control
    with pytest.raises(ValueError):
        PG.pd_grad_samples(roll, [K0.clone().requires_grad_(True)])


def test_per_rollout_time_varying_policy_matches_shared_time_varying_gains():
    sys_ = _lq(4)
    Kt = SY.lqr_gains(sys_)[0]  # (T, m, n)
    B = 3
    Kb = Kt.unsqueeze(0).repeat(B, 1, 1, 1).requires_grad_(True)  # (B, T, m, n)
    xi = C.standard_normal_noise(B, 4, 1, 0)
    s1 = torch.ones(B, 2, dtype=D)
    r_b = C.rollout(
        sys_.dynamics,
        C.linear_gaussian_policy(Kb, 0.3, per_rollout=True),
        sys_.reward,
        s1,
        xi,
        sys_.gamma,
    )
    r_s = C.rollout(
        sys_.dynamics, C.linear_gaussian_policy(Kt, 0.3), sys_.reward, s1, xi, sys_.gamma
    )
    assert torch.allclose(r_b.ret, r_s.ret, atol=1e-12)
    (g,) = C.bptt_grad(r_b, [Kb])
    assert g.shape == (B, 4, 1, 2) and g[:, -1].abs().sum() > 0


def test_pd_and_loo_sf_are_unbiased_mean_baseline_is_shrunk(big_samples):
    s = big_samples
    g = s["exact"]
    m, h = _proj(s["pd"], 4, g)
    assert abs(float(m) - 1) < float(h)
    loo = PG.sf_from_scores(s["score"], s["returns"], 4, "loo")
    m, h = _proj(loo, 4, g)
    assert abs(float(m) - 1) < float(h)
    mean2 = PG.sf_from_scores(s["score"], s["returns"], 2, "mean")
    m, h = _proj(mean2, 2, g)
    assert abs(float(m) - 0.5) < float(h)
    assert abs(float(m) - 1) > float(h)  # negative control
    # the (1 − 1/n) factor holds sample by sample: r_i − mean = (1 − 1/n)(r_i − mean_{j≠i})
    for n in (2, 4, 8):
        a = PG.sf_from_scores(s["score"], s["returns"], n, "mean")
        b = PG.sf_from_scores(s["score"], s["returns"], n, "loo")
        assert torch.allclose(a, (1 - 1 / n) * b, atol=1e-10)
    # negative control for the reference itself: the exact gradient at another gain is rejected
    K2 = (K0 + 0.5).requires_grad_(True)
    (g2,) = torch.autograd.grad(SY.lq_objective(_lq(6), K2, 0.5, initial_state=S1), K2)
    m, h = stats.mean_ci(PG.group_means(s["pd"], 4))
    assert ((m - g2.reshape(-1)).abs() > h).any()


def test_grpo_scale_approaches_one_over_return_sd(big_samples):
    s = big_samples
    g, sd = s["exact"], float(s["returns"].std())
    grpo = PG.sf_from_scores(s["score"], s["returns"], 64, "grpo")
    m, h = _proj(grpo, 64, g)
    assert abs(float(m) * sd - 1) < 3 * float(h) * sd
    m2, h2 = _proj(PG.sf_from_scores(s["score"], s["returns"], 2, "grpo"), 2, g)
    assert float(m2) * sd < 0.6  # small n: clearly below 1


def test_group_advantages_layout_and_errors():
    r = t([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    a = PG.group_advantages(r, 3, "mean")
    assert torch.allclose(a, t([-1.0, 0.0, 1.0, -10.0, 0.0, 10.0]))
    with pytest.raises(ValueError):
        PG.group_advantages(r, 4)
    with pytest.raises(ValueError):
        PG.group_advantages(r.reshape(2, 3), 3)


def test_train_lq_improves_and_seeds_are_independent_runs():
    sys_ = _lq(6)
    kw = dict(iterations=30, n_groups=2, group_size=4, lr=0.2, eval_every=10)
    both = PG.train_lq(sys_, "pd", K0, 0.5, torch.eye(2, dtype=D), seeds=[0, 1], **kw)
    one = PG.train_lq(sys_, "pd", K0, 0.5, torch.eye(2, dtype=D), seeds=[1], **kw)
    assert torch.allclose(both.gains[1], one.gains[0], atol=1e-10)  # vectorised = separate
    assert all(g1 < 0.5 * g0 for g0, g1 in zip(both.gap[0], both.gap[-1]))
    assert all(g >= -1e-12 for row in both.gap for g in row)  # J ≤ J*
    frozen = PG.train_lq(sys_, "sf", K0, 0.5, torch.eye(2, dtype=D), seeds=[0], **{**kw, "lr": 0.0})
    assert frozen.gap[-1][0] == pytest.approx(frozen.gap[0][0])  # negative control
    sf = PG.train_lq(sys_, "sf", K0, 0.5, torch.eye(2, dtype=D), seeds=[0], **kw)
    assert sf.gap[-1][0] < sf.gap[0][0]
    with pytest.raises(ValueError):
        PG.train_lq(sys_, "adam", K0, 0.5, torch.eye(2, dtype=D), seeds=[0], **kw)
