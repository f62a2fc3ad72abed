"""Corollary 1 measured: score-function (GRPO-style) and pathwise (BPTT) policy gradients on
rollouts.

Reference: Asadulaev et al., arXiv 2605.21654, eq 1 (group advantages), eq 2–3, eq 7 and
Corollary 1 in the corrected form of the book's appendix (Lemma 1 applied to Q_t, not to r).

Both estimators are computed per rollout and batched over rollouts (no Python loop over samples):

* PD (pathwise, BPTT): g_PD^{(b)} = dR_1^{(b)}/dθ through the whole rollout (eq 7). With one copy of
  θ per rollout (:func:`vghlib.control.per_rollout_params`) one backward pass gives every row.
* SF (score function, GRPO-style): g_SF^{(b)} = Â_b Σ_t ∂_θ log π_θ(a_t^{(b)} | s_t^{(b)}), with the
  states and actions of the *same* rollouts held fixed and Â_b an advantage built from the returns
  R_1 of the rollout's group (:func:`group_advantages`, a thin wrapper of
  :func:`vghlib.grpo.advantages`).
  As in GRPO, one scalar Â per rollout is held constant along it.

What the expectations are, for a group of ``group_size`` = n rollouts that share a start state s_1
(the "prompt") and a shift policy (Lemma 1), with J(s_1) = V_1(s_1):

* ``"loo"`` (leave-one-out) and ``"baseline"`` (a constant b): E[g_SF] = ∂J/∂θ = E[g_PD].
* ``"mean"`` (the group mean, including the sample itself): E[g_SF] = (1 − 1/n) ∂J/∂θ.
* ``"grpo"`` (mean and unbiased std, ``std_eps`` added): a rescaled gradient,
  ≈ ∂J/∂θ / sd(R_1 | s_1) for large n; for small n the factor is measured, not assumed.
* ``"none"`` (REINFORCE without baseline): E[g_SF] = ∂J/∂θ, with a larger variance.

Rewards before step t are uncorrelated with the score of step t, so weighting every step by the
whole return R_1 (as GRPO does with an outcome reward) has the same expectation as weighting by the
return-to-go R_t; only the variance differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from vghlib import grpo
from vghlib.control import (
    DTYPE,
    Rollout,
    bptt_grad,
    linear_gaussian_policy,
    per_rollout_params,
    rollout,
    standard_normal_noise,
)
from vghlib.systems import LQSystem, lq_objective, lqr_gains

__all__ = [
    "group_advantages",
    "sf_grad_samples",
    "pd_grad_samples",
    "flatten_grads",
    "SF_KINDS",
    "sf_from_scores",
    "lq_gradient_samples",
    "group_means",
    "TrainHistory",
    "train_lq",
]

SF_KINDS = ("grpo", "mean", "loo", "none")


def group_advantages(
    returns: torch.Tensor, group_size: int, kind: str = "grpo", std_eps: float = 1e-4, baseline=None
) -> torch.Tensor:
    """Advantages Â_b (B,) from per-rollout returns R_1 (B,), groups of consecutive rows.

    Rows ``g*group_size .. (g+1)*group_size − 1`` form group g (they should share a start state).
    ``kind``, ``std_eps`` and ``baseline`` are those of :func:`vghlib.grpo.advantages`.
    """
    if not isinstance(returns, torch.Tensor) or returns.dim() != 1:
        raise ValueError("returns must be a (B,) tensor: one return R_1 per rollout")
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    B = returns.shape[0]
    if B % group_size:
        raise ValueError(
            f"batch {B} is not a multiple of group_size {group_size}; "
            "lay out rollouts as n_groups consecutive groups"
        )
    r = returns.detach().reshape(B // group_size, group_size)  # (groups, n)
    return grpo.advantages(r, kind, std_eps=std_eps, baseline=baseline).reshape(B)


def sf_grad_samples(
    policy, roll: Rollout, params: Sequence[torch.Tensor], adv: torch.Tensor
) -> list[torch.Tensor]:
    """Per-rollout score-function gradients Σ_t Â ∂_θ log π_θ(a_t | s_t), one backward pass.

    Let π_θ be ``policy`` (with a ``log_prob(s, a, k)`` method, e.g.
    :class:`vghlib.control.GaussianShiftPolicy`), Â be ``adv``: (B,) (one advantage per rollout,
    held constant along it, as GRPO does) or (B, T) (one per step, e.g. R_t − b). States and
    actions of ``roll`` are detached: the score function never differentiates through them.
    With per-rollout ``params`` (leading dimension B) row b of each result is rollout b's sample;
    with shared params the result is the sum over rollouts.
    """
    params = list(params)
    if not params or not all(isinstance(p, torch.Tensor) and p.requires_grad for p in params):
        raise ValueError("params must be a non-empty list of tensors with requires_grad=True")
    if not hasattr(policy, "log_prob"):
        raise TypeError("policy needs a log_prob(s, a, k) method (e.g. GaussianShiftPolicy)")
    B, T = roll.batch, roll.horizon
    adv = torch.as_tensor(adv, dtype=DTYPE).detach()
    if adv.shape == (B,):
        adv = adv.unsqueeze(1).expand(B, T)  # (B, T)
    if tuple(adv.shape) != (B, T):
        raise ValueError(
            f"adv must be (B,) = ({B},) or (B, T) = ({B}, {T}), got {tuple(adv.shape)}"
        )
    with torch.enable_grad():
        logp = torch.stack(
            [
                policy.log_prob(
                    roll.states[:, j].detach(), roll.actions[:, j].detach(), roll.start_step + j
                )
                for j in range(T)
            ],
            dim=1,
        )  # (B, T)
        surrogate = (adv * logp).sum()
        grads = torch.autograd.grad(surrogate, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def pd_grad_samples(
    roll: Rollout, params: Sequence[torch.Tensor], retain_graph: bool = False
) -> list[torch.Tensor]:
    """Per-rollout pathwise gradients dR_1^{(b)}/dθ (eq 7 by BPTT), one backward pass.

    ``params`` must be per-rollout copies (leading dimension B, from
    :func:`vghlib.control.per_rollout_params`) used by row b for rollout b.
    """
    for p in params:
        if p.dim() == 0 or p.shape[0] != roll.batch:
            raise ValueError(
                f"pd_grad_samples needs per-rollout params with leading dimension "
                f"B = {roll.batch}; use vghlib.control.per_rollout_params"
            )
    return bptt_grad(roll, params, retain_graph=retain_graph)


def flatten_grads(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-rollout gradients (one tensor per param, each (B, ...)) as one (B, p) matrix."""
    return torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)


def sf_from_scores(
    score: torch.Tensor,
    returns: torch.Tensor,
    group_size: int,
    kind: str = "grpo",
    std_eps: float = 1e-4,
    baseline=None,
) -> torch.Tensor:
    """Per-rollout SF samples Â_b · score_b from precomputed scores (B, p) and returns (B,).

    ``score`` row b is Σ_t ∂_θ log π_θ(a_t | s_t) of rollout b (:func:`sf_grad_samples` with Â = 1).
    Because Â is one scalar per rollout, the SF sample of any advantage kind and any group size is
    this product, so one set of rollouts serves every (kind, group size) pair.
    """
    if score.dim() != 2 or returns.shape != (score.shape[0],):
        raise ValueError("score must be (B, p) and returns (B,)")
    adv = group_advantages(returns, group_size, kind, std_eps=std_eps, baseline=baseline)
    return adv.unsqueeze(1) * score  # (B, p)


def lq_gradient_samples(
    system: LQSystem,
    gain: torch.Tensor,
    sigma: float,
    initial_state: torch.Tensor,
    batch: int,
    seed: int,
) -> dict[str, torch.Tensor]:
    """PD samples, SF scores and returns w.r.t. a constant gain K, all from the same rollouts.

    The numeric test of Corollary 1 (corrected): SF and PD have the same mean, ∂J/∂K.

    ``batch`` rollouts all start at ``initial_state`` (n,) (one "prompt"), policy a = K s + σ ξ
    with K = ``gain`` (m, n), noise from ``seed``. Returns a dict of per-rollout tensors:
    ``"pd"`` (B, m·n) dR_1/dK, ``"score"`` (B, m·n) Σ_t ∂_K log π, ``"returns"`` (B,) R_1, and
    ``"exact"`` (m·n,), the exact ∂J/∂K from :func:`vghlib.systems.lq_objective`. SF
    samples for any group size and advantage kind: :func:`sf_from_scores`.
    """
    n, m, T = system.state_dim, system.action_dim, system.horizon
    if not isinstance(gain, torch.Tensor) or tuple(gain.shape) != (m, n):
        raise ValueError(f"gain must be a constant (m, n) = {(m, n)} tensor here")
    Kb = per_rollout_params(gain, batch)  # (B, m, n)
    pol = linear_gaussian_policy(Kb, sigma, per_rollout=True)
    s0 = torch.as_tensor(initial_state, dtype=DTYPE).reshape(1, n).expand(batch, n)
    xi = standard_normal_noise(batch, T, m, seed)
    pw = system.process_noise(batch, seed + 7919)
    roll = rollout(system.dynamics, pol, system.reward, s0, xi, system.gamma, process_noise=pw)
    out = {
        "pd": flatten_grads(pd_grad_samples(roll, [Kb])),
        "score": flatten_grads(sf_grad_samples(pol, roll, [Kb], torch.ones(batch, dtype=DTYPE))),
        "returns": roll.ret.detach(),
    }
    K1 = gain.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(lq_objective(system, K1, sigma, initial_state=s0[0]), K1)
    out["exact"] = g.reshape(-1)
    return out


def group_means(samples: torch.Tensor, group_size: int) -> torch.Tensor:
    """The per-group gradient estimates (one GRPO update's worth each): (B, p) -> (groups, p)."""
    B = samples.shape[0]
    if B % group_size:
        raise ValueError(f"batch {B} is not a multiple of group_size {group_size}")
    return samples.reshape(B // group_size, group_size, -1).mean(1)


# --------------------------------------------------------------------------------------------
# Learning on LQ: the same policy trained with SF and with PD updates
# --------------------------------------------------------------------------------------------


@dataclass
class TrainHistory:
    """One training run per seed (vectorised). ``samples`` (I,) rollouts used after each of the I
    evaluations; ``gap`` (I, S) J* − J(K); ``gain_dist`` (I, S) ‖K − K*‖_F; ``gains``
    (S, T, m, n)."""

    method: str
    samples: list = field(default_factory=list)
    gap: list = field(default_factory=list)
    gain_dist: list = field(default_factory=list)
    gains: torch.Tensor | None = None


def train_lq(
    system: LQSystem,
    method: str,
    init_gain: torch.Tensor,
    sigma: float,
    initial_cov: torch.Tensor,
    *,
    iterations: int,
    n_groups: int,
    group_size: int,
    lr: float,
    seeds: Sequence[int],
    adv_kind: str = "grpo",
    eval_every: int = 5,
) -> TrainHistory:
    """Train time-varying gains K_{1:T} with Adam, by ``"pd"`` (BPTT of the mean return) or
    ``"sf"`` (GRPO-style: Â from :func:`group_advantages` with ``adv_kind``, times Σ_t ∂ log π).

    Each iteration draws ``n_groups`` start states s_1 ~ N(0, ``initial_cov``), ``group_size``
    rollouts from each. All seeds run at once: the gains are an (S, T, m, n) leaf and each rollout
    uses its seed's row, so the loss is a sum of per-seed losses; Adam acts element by element, so
    this is S independent runs. Every ``eval_every`` iterations the exact J (Riccati) is recorded
    as the gap J* − J ≥ 0 and the distance ‖K − K*‖_F to the LQR gains (:func:`lqr_gains`).
    """
    if method not in ("pd", "sf"):
        raise ValueError(f"method must be 'pd' or 'sf', got {method!r}")
    n, m, T = system.state_dim, system.action_dim, system.horizon
    K_star, _ = lqr_gains(system)
    J_star = float(lq_objective(system, K_star, sigma, initial_cov=initial_cov))
    S, G, B1 = len(seeds), n_groups, n_groups * group_size
    K0 = init_gain.detach().expand(T, m, n) if init_gain.dim() == 2 else init_gain.detach()
    gains = K0.unsqueeze(0).repeat(S, 1, 1, 1).requires_grad_(True)  # (S, T, m, n)
    opt = torch.optim.Adam([gains], lr=lr)
    gens = [torch.Generator().manual_seed(int(sd)) for sd in seeds]
    L0 = torch.linalg.cholesky(initial_cov)
    row_seed = torch.arange(S).repeat_interleave(B1)  # (S·B1,)
    hist = TrainHistory(method)

    def record(it):
        with torch.no_grad():
            J = lq_objective(system, gains, sigma, initial_cov=initial_cov)  # (S,)
            hist.samples.append(it * B1)
            hist.gap.append((J_star - J).tolist())
            hist.gain_dist.append((gains - K_star).flatten(1).norm(dim=1).tolist())

    record(0)
    for it in range(1, iterations + 1):
        s_list, xi_list = [], []
        for gen in gens:  # per seed: draws
            s_g = torch.randn(G, n, generator=gen, dtype=DTYPE) @ L0.T  # (G, n)
            s_list.append(s_g.repeat_interleave(group_size, dim=0))  # (B1, n)
            xi_list.append(torch.randn(B1, T, m, generator=gen, dtype=DTYPE))
        s1, xi = torch.cat(s_list), torch.cat(xi_list)  # (S·B1, ...)
        Kb = gains[row_seed]  # (S·B1, T, m, n)
        pol = linear_gaussian_policy(Kb, sigma, per_rollout=True)
        opt.zero_grad()
        if method == "pd":
            roll = rollout(system.dynamics, pol, system.reward, s1, xi, system.gamma)
            loss = -roll.ret.sum() / B1
        else:
            with torch.no_grad():
                roll = rollout(system.dynamics, pol, system.reward, s1, xi, system.gamma)
            adv = group_advantages(roll.ret, group_size, adv_kind)
            logp = torch.stack(
                [pol.log_prob(roll.states[:, j], roll.actions[:, j], j) for j in range(T)], dim=1
            ).sum(1)  # (S·B1,)
            loss = -(adv * logp).sum() / B1
        loss.backward()
        opt.step()
        if it % eval_every == 0:
            record(it)
    hist.gains = gains.detach()
    return hist
