"""Differentiable rollouts, their costates (BPTT and the explicit adjoint), and exact LQ values.

A rollout in the sense of the paper's Definition 1 is ``a_t = π_θ(s_t, ξ_t)``,
``s_{t+1} = f_θ(s_t, a_t)`` with exogenous noise ξ whose law does not depend on θ. This module
runs B such rollouts at once (leading batch dimension ``B``, torch float64), computes the costates
``λ_t = ∂R_t/∂s_t`` two independent ways (autograd, and the adjoint recursion eq 6 built from
autograd Jacobians), assembles the pathwise parameter gradient eq 7 from them, and gives Gaussian
shift policies (the reparameterised policies of Lemma 1 and Definition 1) with their log-density.

Reference: Asadulaev et al., arXiv 2605.21654, Definition 1, Proposition 1 (eq 5–7), eq 8–9,
Appendix A.1–A.3.

Systems with a known value function (LQ through one Riccati recursion, a pendulum) are in
:mod:`vghlib.systems`; per-rollout score-function and pathwise policy gradients (Corollary 1) are
in :mod:`vghlib.policy_gradient`. :func:`value_grad_fd` here is the model-free reference for eq 9:
central finite differences of Monte Carlo values with common random numbers.

Conventions (see book/notation.md):

* Time. The paper counts t = 1..T. Arrays here are 0-based: index ``k`` holds paper step
  ``t = k + 1``. ``states[:, k]`` is s_{k+1}; ``states[:, T]`` is s_{T+1}; ``costates[:, T]`` is
  λ_{T+1} = 0.
* Callables. ``dynamics(s, a)`` -> (B, n), ``policy(s, noise)`` -> (B, m), ``reward(s, a)`` -> (B,).
  Each may take a third argument, the 0-based step index ``k``, for time-varying systems or
  gains (detected from the signature). They must treat the B rows independently (no batch
  norm, no mixing across rollouts): the batched Jacobians below rely on it.
* Parameters θ are whatever tensors the callables capture. Pass them to :func:`pathwise_grad`.
  For per-rollout gradients (needed to measure the variance of gradient estimators), give each
  rollout its own copy of θ with :func:`per_rollout_params` and index it by row.
* Rewards: r(s, a) does not depend on θ (as in the paper). The discount γ must be in (0, 1].
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from vghlib.stats import mean_ci

DTYPE = torch.float64

__all__ = [
    "Rollout",
    "rollout",
    "costates_autograd",
    "costates_rerun",
    "step_jacobians",
    "costates_adjoint",
    "pathwise_grad",
    "bptt_grad",
    "per_rollout_params",
    "GaussianShiftPolicy",
    "linear_gaussian_policy",
    "standard_normal_noise",
    "value_grad_fd",
]


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def check_gamma(gamma) -> float:
    """The discount γ as a float; a clear error unless 0 < γ ≤ 1."""
    g = float(gamma)
    if not (math.isfinite(g) and 0.0 < g <= 1.0):
        raise ValueError(f"gamma must lie in (0, 1], got {gamma!r}")
    return g


def as_tensor(x, name: str, ndim: int) -> torch.Tensor:
    """``x`` checked to be a floating-point tensor of ``ndim`` dimensions; errors name ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor (float64), got {type(x).__name__}; "
            f"wrap it with torch.as_tensor(..., dtype=torch.float64)"
        )
    if x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def _takes_step(fn: Callable) -> bool:
    """True if ``fn`` wants the step index as a third positional argument."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    return len(pos) >= 3


def _caller(fn: Callable) -> Callable:
    if not callable(fn):
        raise TypeError(f"expected a callable, got {type(fn).__name__}")
    if _takes_step(fn):
        return fn
    return lambda x, y, k: fn(x, y)


def _check_out(x: torch.Tensor, shape: tuple, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != shape:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must return shape {shape}, got {got}")
    return x


# --------------------------------------------------------------------------------------------
# Rollouts (Definition 1)
# --------------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """B rollouts of horizon T. Index k holds the paper's step t = k + 1.

    ``states`` (B, T+1, n): s_1 .. s_{T+1};  ``actions`` (B, T, m): a_1 .. a_T;
    ``rewards`` (B, T): r(s_t, a_t);  ``returns`` (B, T): R_t = Σ_{j≥t} γ^{j−t} r_j (returns-to-go);
    ``noise`` (B, T, m): the ξ used;  ``gamma``;  ``start_step``: step index of s_1 (for
    time-varying callables). Tensors keep their autograd graph (to θ and to ``states[:, 0]``).
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    returns: torch.Tensor
    noise: torch.Tensor
    gamma: float
    start_step: int = 0
    process_noise: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        return self.states.shape[0]

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]

    @property
    def ret(self) -> torch.Tensor:
        """R_1 of every rollout, shape (B,)."""
        return self.returns[:, 0]


def _returns_to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    # R_t = r_t + γ R_{t+1}, R_{T+1} = 0; a loop over time only.
    out, acc = [], torch.zeros_like(rewards[:, 0])
    for k in range(rewards.shape[1] - 1, -1, -1):
        acc = rewards[:, k] + gamma * acc
        out.append(acc)
    return torch.stack(out[::-1], dim=1)  # (B, T)


def _rollout(
    dynamics, policy, reward, initial_state, noise, gamma, process_noise, start_step, taps
):
    s = as_tensor(initial_state, "initial_state", 2)
    xi = as_tensor(noise, "noise", 3)
    gamma = check_gamma(gamma)
    B, n = s.shape
    if xi.shape[0] != B:
        raise ValueError(
            f"noise has batch {xi.shape[0]} but initial_state has batch {B}; "
            "noise must be (B, T, m) with the same B"
        )
    T, m = xi.shape[1], xi.shape[2]
    if T < 1:
        raise ValueError("noise must cover at least one step (T >= 1)")
    if process_noise is not None:
        as_tensor(process_noise, "process_noise", 3)
        if tuple(process_noise.shape) != (B, T, n):
            raise ValueError(
                f"process_noise must be (B, T, n) = {(B, T, n)}, got {tuple(process_noise.shape)}"
            )
    if not isinstance(start_step, int) or start_step < 0:
        raise ValueError(f"start_step must be a non-negative int, got {start_step!r}")
    f, pi, r = _caller(dynamics), _caller(policy), _caller(reward)
    states, actions, rewards = [], [], []
    for j in range(T):
        k = start_step + j
        if taps is not None:
            s = s + taps[:, j]  # a zero "tap" whose gradient is ∂R_1/∂s_t
        a = _check_out(pi(s, xi[:, j], k), (B, m), "policy(s, noise)")
        rew = _check_out(r(s, a, k), (B,), "reward(s, a)")
        s_next = _check_out(f(s, a, k), (B, n), "dynamics(s, a)")
        if process_noise is not None:
            s_next = s_next + process_noise[:, j]  # exogenous, additive: Prop 1 is unchanged
        states.append(s)
        actions.append(a)
        rewards.append(rew)
        s = s_next
    states.append(s)
    rewards = torch.stack(rewards, dim=1)  # (B, T)
    return Rollout(
        torch.stack(states, dim=1),
        torch.stack(actions, dim=1),
        rewards,
        _returns_to_go(rewards, gamma),
        xi,
        gamma,
        start_step,
        process_noise,
    )


def rollout(
    dynamics: Callable,
    policy: Callable,
    reward: Callable,
    initial_state: torch.Tensor,
    noise: torch.Tensor,
    gamma: float = 1.0,
    *,
    process_noise: torch.Tensor | None = None,
    start_step: int = 0,
) -> Rollout:
    """Run B differentiable rollouts (Definition 1) with the given noise (common random numbers).

    Let s_1 be ``initial_state`` (B, n), ξ_{1:T} be ``noise`` (B, T, m), γ be ``gamma``.
    Computes a_t = π(s_t, ξ_t), r_t = r(s_t, a_t), s_{t+1} = f(s_t, a_t) (+ w_t if
    ``process_noise`` (B, T, n) is given; additive exogenous noise leaves Prop 1 unchanged), and
    R_t = r_t + γ R_{t+1}. ``start_step`` is passed on (as k = start_step + j) to callables that
    take a step index, so a rollout can start at a later time of a time-varying system.
    """
    return _rollout(
        dynamics, policy, reward, initial_state, noise, gamma, process_noise, start_step, None
    )


def standard_normal_noise(batch: int, horizon: int, dim: int, seed: int) -> torch.Tensor:
    """ξ ~ N(0, I) of shape (batch, horizon, dim), float64, from its own seeded generator."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(batch, horizon, dim, generator=g, dtype=DTYPE)


# --------------------------------------------------------------------------------------------
# Costates (eq 5, 6)
# --------------------------------------------------------------------------------------------


def costates_autograd(
    dynamics: Callable,
    policy: Callable,
    reward: Callable,
    initial_state: torch.Tensor,
    noise: torch.Tensor,
    gamma: float = 1.0,
    *,
    process_noise: torch.Tensor | None = None,
    start_step: int = 0,
    retain_graph: bool = False,
) -> tuple[Rollout, torch.Tensor]:
    """Costates λ_t = ∂R_t/∂s_t (eq 5) for all t by one batched backward pass (BPTT).

    A zero tensor δ_t (the "tap") is added to every state, s_t ← s_t + δ_t. Only rewards from
    step t on depend on δ_t, so ∂R_1/∂δ_t = γ^{t−1} ∂R_t/∂s_t with the future noise ξ_{t:T}
    held fixed, which is the paper's definition. One ``autograd.grad`` of Σ_b R_1 gives all
    δ-gradients; dividing by γ^{t−1} gives λ_t. Rows are independent, so the batch sum does not
    mix rollouts.

    Returns ``(rollout, costates)`` with costates (B, T+1, n); ``costates[:, T]`` = λ_{T+1} = 0.
    Set ``retain_graph=True`` to differentiate the rollout again (e.g. w.r.t. θ).
    """
    s1 = as_tensor(initial_state, "initial_state", 2)
    xi = as_tensor(noise, "noise", 3)
    B, n, T = s1.shape[0], s1.shape[1], xi.shape[1]
    taps = torch.zeros(B, T, n, dtype=s1.dtype, requires_grad=True)
    roll = _rollout(dynamics, policy, reward, s1, xi, gamma, process_noise, start_step, taps)
    (g,) = torch.autograd.grad(roll.ret.sum(), taps, retain_graph=retain_graph)  # (B, T, n)
    disc = roll.gamma ** torch.arange(T, dtype=g.dtype)  # γ^{t−1}
    lam = g / disc[None, :, None]
    return roll, torch.cat([lam, torch.zeros(B, 1, n, dtype=g.dtype)], dim=1)  # (B, T+1, n)


def costates_rerun(
    dynamics: Callable,
    policy: Callable,
    reward: Callable,
    roll: Rollout,
    steps: Sequence[int] | None = None,
) -> torch.Tensor:
    """Reference costates by the definition itself: restart a rollout at s_t (a leaf) with the
    same future noise ξ_{t:T} and differentiate its R_t with ``torch.autograd.grad``.

    Costs one rollout per step (O(T²)); meant for tests. Returns (B, len(steps), n) for the
    0-based ``steps`` (default all 0..T−1).
    """
    T = roll.horizon
    steps = list(range(T)) if steps is None else list(steps)
    out = []
    for k in steps:
        if not 0 <= k < T:
            raise ValueError(f"step {k} is outside 0..{T - 1}")
        s_k = roll.states[:, k].detach().clone().requires_grad_(True)
        pw = None if roll.process_noise is None else roll.process_noise[:, k:].detach()
        sub = rollout(
            dynamics,
            policy,
            reward,
            s_k,
            roll.noise[:, k:],
            roll.gamma,
            process_noise=pw,
            start_step=roll.start_step + k,
        )
        (g,) = torch.autograd.grad(sub.ret.sum(), s_k)
        out.append(g)
    return torch.stack(out, dim=1)  # (B, len(steps), n)


def _batched_jac(fn: Callable, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-row Jacobians of a row-wise function: (B, out) w.r.t. each (B, in) -> (B, out, in).

    Uses the sum-over-batch trick: the Jacobian of Σ_b fn(x)_b w.r.t. x is (out, B, in) and
    holds every row's Jacobian because rows do not interact.
    """
    jac = torch.autograd.functional.jacobian(lambda *x: fn(*x).sum(0), inputs, vectorize=True)
    return tuple(J.permute(1, 0, 2) for J in jac)  # (B, out, in)


def step_jacobians(
    dynamics: Callable, policy: Callable, reward: Callable, roll: Rollout
) -> dict[str, torch.Tensor]:
    """Partial derivatives at every visited (s_t, a_t, ξ_t), batched, and the total ones.

    Returns a dict of detached tensors:
    ``dyn_s`` ∂f/∂s (B, T, n, n), ``dyn_a`` ∂f/∂a (B, T, n, m), ``pol_s`` ∂π/∂s (B, T, m, n),
    ``rew_s`` ∂r/∂s (B, T, n), ``rew_a`` ∂r/∂a (B, T, m), and
    ``dyn_jac`` Df = ∂f/∂s + ∂f/∂a ∂π/∂s (B, T, n, n), ``reward_jac`` Dr = ∂r/∂s + (∂π/∂s)ᵀ ∂r/∂a
    (B, T, n), the total state derivatives of the paper (its D).
    """
    f, pi, r = _caller(dynamics), _caller(policy), _caller(reward)
    keys = ("dyn_s", "dyn_a", "pol_s", "rew_s", "rew_a")
    acc = {key: [] for key in keys}
    for j in range(roll.horizon):
        k = roll.start_step + j
        s, a, xi = roll.states[:, j].detach(), roll.actions[:, j].detach(), roll.noise[:, j]
        fs, fa = _batched_jac(lambda s_, a_: f(s_, a_, k), s, a)
        (ps,) = _batched_jac(lambda s_: pi(s_, xi, k), s)
        s_ = s.clone().requires_grad_(True)
        a_ = a.clone().requires_grad_(True)
        rs, ra = torch.autograd.grad(r(s_, a_, k).sum(), (s_, a_), allow_unused=True)
        acc["dyn_s"].append(fs)
        acc["dyn_a"].append(fa)
        acc["pol_s"].append(ps)
        acc["rew_s"].append(torch.zeros_like(s) if rs is None else rs)
        acc["rew_a"].append(torch.zeros_like(a) if ra is None else ra)
    out = {key: torch.stack(v, dim=1).detach() for key, v in acc.items()}
    out["dyn_jac"] = out["dyn_s"] + out["dyn_a"] @ out["pol_s"]  # (B, T, n, n)
    out["reward_jac"] = out["rew_s"] + (
        out["pol_s"].transpose(-1, -2) @ out["rew_a"].unsqueeze(-1)
    ).squeeze(-1)  # (B, T, n)
    return out


def costates_adjoint(dyn_jac: torch.Tensor, reward_jac: torch.Tensor, gamma: float) -> torch.Tensor:
    """The adjoint recursion eq 6: λ_{T+1} = 0, λ_t = Dr_t + γ Df_tᵀ λ_{t+1}, t = T..1.

    Let Df be ``dyn_jac`` (B, T, n, n) and Dr be ``reward_jac`` (B, T, n) (from
    :func:`step_jacobians`). Returns costates (B, T+1, n) with ``[:, T]`` = 0.
    """
    gamma = check_gamma(gamma)
    as_tensor(dyn_jac, "dyn_jac", 4)
    as_tensor(reward_jac, "reward_jac", 3)
    B, T, n, n2 = dyn_jac.shape
    if n != n2 or tuple(reward_jac.shape) != (B, T, n):
        raise ValueError(
            f"dyn_jac must be (B, T, n, n) and reward_jac (B, T, n); got "
            f"{tuple(dyn_jac.shape)} and {tuple(reward_jac.shape)}"
        )
    lam = [torch.zeros(B, n, dtype=reward_jac.dtype)]
    for k in range(T - 1, -1, -1):
        lam.append(
            reward_jac[:, k]
            + gamma * (dyn_jac[:, k].transpose(-1, -2) @ lam[-1].unsqueeze(-1)).squeeze(-1)
        )
    return torch.stack(lam[::-1], dim=1)  # (B, T+1, n)


# --------------------------------------------------------------------------------------------
# Parameter gradients (eq 7)
# --------------------------------------------------------------------------------------------


def pathwise_grad(
    dynamics: Callable,
    policy: Callable,
    reward: Callable,
    roll: Rollout,
    costates: torch.Tensor,
    params: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    """The pathwise gradient of Σ_b R_1 assembled from costates, eq 7 (inside its expectation):

        dR_1/dθ = Σ_t γ^{t−1} [ γ (∂f/∂θ)ᵀ λ_{t+1} + (∂π/∂θ)ᵀ (∂r/∂a + γ (∂f/∂a)ᵀ λ_{t+1}) ],

    with partials at the visited (s_t, a_t, ξ_t) and s_1 independent of θ. Implemented as the
    θ-gradient of a surrogate in which s_t, a_t, λ_{t+1} and the bracket w_t are held constant.
    Let λ be ``costates`` (B, T+1, n) and θ be ``params``. Returns one tensor per param (the sum
    over rollouts; with :func:`per_rollout_params` row b of each gradient is rollout b's).
    """
    params = list(params)
    if not params or not all(isinstance(p, torch.Tensor) and p.requires_grad for p in params):
        raise ValueError("params must be a non-empty list of tensors with requires_grad=True")
    B, T, n = roll.batch, roll.horizon, roll.states.shape[-1]
    if tuple(costates.shape) != (B, T + 1, n):
        raise ValueError(
            f"costates must be (B, T+1, n) = {(B, T + 1, n)}, got {tuple(costates.shape)}"
        )
    f, pi, r = _caller(dynamics), _caller(policy), _caller(reward)
    g, lam = roll.gamma, costates.detach()
    surrogate = 0.0
    for j in range(T):
        k = roll.start_step + j
        s, xi = roll.states[:, j].detach(), roll.noise[:, j]
        a = roll.actions[:, j].detach().clone().requires_grad_(True)
        v = lam[:, j + 1]  # λ_{t+1}
        with torch.enable_grad():
            inner = r(s, a, k).sum() + g * (f(s, a, k) * v).sum()
            (w,) = torch.autograd.grad(inner, a, retain_graph=True)  # ∂r/∂a + γ(∂f/∂a)ᵀλ_{t+1}
        surrogate = surrogate + g**j * (
            g * (f(s, a.detach(), k) * v).sum() + (pi(s, xi, k) * w.detach()).sum()
        )
    grads = torch.autograd.grad(surrogate, params, allow_unused=True)
    return [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, grads)]


def bptt_grad(
    roll: Rollout, params: Sequence[torch.Tensor], retain_graph: bool = False
) -> list[torch.Tensor]:
    """Autograd's dR_1/dθ through the whole rollout (BPTT), summed over rollouts."""
    grads = torch.autograd.grad(
        roll.ret.sum(), list(params), allow_unused=True, retain_graph=retain_graph
    )
    return [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, grads)]


def per_rollout_params(param: torch.Tensor, batch: int) -> torch.Tensor:
    """A leaf of shape (batch, *param.shape) holding one copy of θ per rollout.

    A policy that uses row b of it for rollout b gets per-rollout gradients from one backward
    pass: row b of the gradient is dR_1^{(b)}/dθ.
    """
    if not isinstance(param, torch.Tensor):
        raise TypeError("param must be a torch.Tensor")
    if batch < 1:
        raise ValueError("batch must be >= 1")
    return param.detach().unsqueeze(0).expand(batch, *param.shape).clone().requires_grad_(True)


# --------------------------------------------------------------------------------------------
# Gaussian shift policies (Lemma 1's hypothesis, written as Definition 1's reparameterisation)
# --------------------------------------------------------------------------------------------


class GaussianShiftPolicy:
    """A Gaussian shift policy π_θ(a | s) = N(a; μ_θ(s), diag σ²), written as a = μ_θ(s) + σ ⊙ ξ.

    Let μ_θ be ``mean_action`` (a callable ``(s)`` or ``(s, k)`` -> (B, m), capturing θ) and σ be
    ``sigma`` (a scalar or an (m,) tensor, may require grad). Calling the policy gives the
    reparameterised action (Definition 1); :meth:`log_prob` gives log π_θ(a | s) for the
    score-function estimator, differentiable in θ at fixed actions.
    """

    def __init__(self, mean_action: Callable, sigma):
        if not callable(mean_action):
            raise TypeError("mean_action must be a callable (s) or (s, k) -> (B, m)")
        try:
            n_pos = len(
                [
                    p
                    for p in inspect.signature(mean_action).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                ]
            )
        except (TypeError, ValueError):
            n_pos = 1
        self._mean = mean_action if n_pos >= 2 else (lambda s, k: mean_action(s))
        sig = sigma if isinstance(sigma, torch.Tensor) else torch.as_tensor(sigma, dtype=DTYPE)
        if sig.dim() > 1 or torch.any(sig.detach() < 0):
            raise ValueError("sigma must be a non-negative scalar or an (m,) vector")
        self.sigma = sig

    def mean_action(self, s: torch.Tensor, k: int = 0) -> torch.Tensor:
        """μ_θ(s) at step k, shape (B, m)."""
        return self._mean(s, k)

    def __call__(self, s: torch.Tensor, noise: torch.Tensor, k: int = 0) -> torch.Tensor:
        return self.mean_action(s, k) + noise * self.sigma  # (B, m)

    def log_prob(self, s: torch.Tensor, a: torch.Tensor, k: int = 0) -> torch.Tensor:
        """log N(a; μ_θ(s), diag σ²) summed over action dims, shape (B,)."""
        if torch.any(self.sigma.detach() == 0):
            raise ValueError("log_prob needs sigma > 0 (a deterministic policy has no density)")
        z = (a - self.mean_action(s, k)) / self.sigma  # (B, m)
        log_sig = torch.log(self.sigma) * torch.ones_like(z)
        return (-0.5 * z**2 - log_sig - 0.5 * math.log(2 * math.pi)).sum(-1)


def linear_gaussian_policy(
    gain: torch.Tensor, sigma, *, per_rollout: bool = False
) -> GaussianShiftPolicy:
    """The linear Gaussian policy π(s, ξ, k) = K_k s + σ ⊙ ξ, as a :class:`GaussianShiftPolicy`.

    ``gain`` K is (m, n) (constant), (T, m, n) (one per step k), or with ``per_rollout=True``
    (B, m, n) or (B, T, m, n): one copy per rollout (from :func:`per_rollout_params`), constant
    or one per step, for per-rollout gradients. ``sigma`` is a non-negative scalar or an (m,)
    vector (a tensor may require grad).
    """
    if not isinstance(gain, torch.Tensor) or gain.dim() not in (
        (2, 3, 4) if per_rollout else (2, 3)
    ):
        raise ValueError(
            "gain must be a tensor of shape (m, n), (T, m, n), or (B, m, n) or "
            "(B, T, m, n) with per_rollout=True"
        )
    if per_rollout and gain.dim() not in (3, 4):
        raise ValueError("per_rollout=True needs a gain of shape (B, m, n) or (B, T, m, n)")

    def mean(s, k):
        if gain.dim() == 2:
            return s @ gain.T  # (B, m)
        if gain.dim() == 4:  # (B, T, m, n)
            if gain.shape[0] != s.shape[0] or not 0 <= k < gain.shape[1]:
                raise ValueError(
                    f"per-rollout gains are (B, T, m, n) = {tuple(gain.shape)}; "
                    f"got batch {s.shape[0]} at step {k}"
                )
            return torch.einsum("bmn,bn->bm", gain[:, k], s)  # (B, m)
        if per_rollout:
            if gain.shape[0] != s.shape[0]:
                raise ValueError(
                    f"per-rollout gain has {gain.shape[0]} rows, batch is {s.shape[0]}"
                )
            return torch.einsum("bmn,bn->bm", gain, s)  # (B, m)
        if not 0 <= k < gain.shape[0]:
            raise ValueError(f"step {k} is beyond the {gain.shape[0]} gains given")
        return s @ gain[k].T  # (B, m)

    return GaussianShiftPolicy(mean, sigma)


# --------------------------------------------------------------------------------------------
# A model-free reference for eq 9: finite differences of Monte Carlo values
# --------------------------------------------------------------------------------------------


def value_grad_fd(
    dynamics,
    policy,
    reward,
    state: torch.Tensor,
    noise: torch.Tensor,
    gamma: float = 1.0,
    *,
    step: float = 1e-3,
    start_step: int = 0,
    process_noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """∂V_t/∂s at ``state`` (n,) by central differences with common random numbers (eq 9's G).

    Let s be ``state``, h be ``step``, ξ^{(j)} the N noise paths ``noise`` (N, T', m) (the steps
    from ``start_step`` on). For each coordinate i and path j,
        d_{ij} = [R_t(s + h e_i; ξ^{(j)}) − R_t(s − h e_i; ξ^{(j)})] / (2h),
    the same noise on both sides, so the noise cancels in the difference instead of being divided
    by h. All 2nN rollouts run as one batch. Returns the mean over j (n,) and its standard error
    (n,). The bias is O(h²) for a smooth system; the estimate converges to ∂V_t/∂s as N grows.
    """
    s = torch.as_tensor(state, dtype=DTYPE).reshape(-1)
    if not (isinstance(noise, torch.Tensor) and noise.dim() == 3):
        raise ValueError("noise must be a (N, T, m) tensor of noise paths")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive number, got {step!r}")
    n, N = s.shape[0], noise.shape[0]
    eye = torch.eye(n, dtype=DTYPE)
    starts = torch.cat([s + step * eye, s - step * eye])  # (2n, n)
    s1 = starts.unsqueeze(1).expand(2 * n, N, n).reshape(2 * n * N, n)  # (2nN, n)
    xi = noise.unsqueeze(0).expand(2 * n, *noise.shape).reshape(2 * n * N, *noise.shape[1:])
    pw = None
    if process_noise is not None:
        pw = (
            process_noise.unsqueeze(0)
            .expand(2 * n, *process_noise.shape)
            .reshape(2 * n * N, *process_noise.shape[1:])
        )
    with torch.no_grad():
        ret = rollout(
            dynamics, policy, reward, s1, xi, gamma, process_noise=pw, start_step=start_step
        ).ret.reshape(2, n, N)  # (±, n, N)
    d = (ret[0] - ret[1]) / (2 * step)  # (n, N)
    return mean_ci(d.T, z=1.0)  # mean, se
