"""Systems for Part II: a differentiable LQ objective, a pendulum, finite-difference value gradients.

Reference: Asadulaev et al., arXiv 2605.21654, Definition 1, eq 8–9 (value gradient), and the
corrected Corollary 1 of the book's appendix (the exact policy gradient it is compared with).

Three pieces that the Part II chapter and its tests share:

* :func:`lq_value_params` and :func:`lq_objective`: the same policy-evaluation Riccati recursion as
  :func:`vghlib.control.lq_policy_value`, but differentiable in the gains K and the noise scale σ,
  so that the *exact* policy gradient ∂J/∂K of a linear Gaussian policy is one ``autograd.grad`` away.
  This is the reference that score-function and pathwise estimates are compared with.
* :class:`Pendulum`: a damped pendulum with a non-quadratic reward (a cosine of the angle), where no
  closed form for V exists.
* :func:`value_grad_fd`: the value gradient ∂V_t/∂s at one state by central finite differences of
  Monte Carlo values with common random numbers (the same noise ξ on both sides of each difference),
  with a standard error. It needs no derivative of the system, so it is an independent reference for
  the BPTT costates of eq 9 when V has no closed form.

Time indices follow :mod:`vghlib.control`: 0-based, index k is the paper's step t = k + 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vghlib.control import DTYPE, LQSystem, rollout

__all__ = ["lq_value_params", "lq_objective", "Pendulum", "pendulum_policy", "value_grad_fd"]


def _gain_seq(gain: torch.Tensor, T: int, m: int, n: int) -> torch.Tensor:
    if not isinstance(gain, torch.Tensor) or gain.dim() < 2 or tuple(gain.shape[-2:]) != (m, n):
        raise ValueError(f"gain must be a tensor (m, n) = {(m, n)} or (..., T, m, n) = "
                         f"(..., {T}, {m}, {n})")
    if gain.dim() == 2:
        gain = gain.unsqueeze(0).expand(T, m, n)
    if gain.shape[-3] != T:
        raise ValueError(f"gain must be (m, n) = {(m, n)} or (..., T, m, n) with T = {T}, "
                         f"got {tuple(gain.shape)}")
    return gain


def _tr(M: torch.Tensor) -> torch.Tensor:
    return M.diagonal(dim1=-2, dim2=-1).sum(-1)


def lq_value_params(system: LQSystem, gain: torch.Tensor, sigma) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """V_t(s) = sᵀ P_t s + c_t of the policy a = K_t s + σ ξ, differentiable in K and σ.

    The recursion of :func:`vghlib.control.lq_policy_value` (from P_{T+1} = 0, c_{T+1} = 0):
        P_t = −(Q + K_tᵀ R K_t) + γ (A + B K_t)ᵀ P_{t+1} (A + B K_t),
        c_t = −tr(Σ R Σ) + γ [ tr(Σ Bᵀ P_{t+1} B Σ) + tr(P_{t+1} W) + c_{t+1} ],   Σ = diag(σ),
    without detaching ``gain`` or ``sigma`` (scalar or (m,)). ``gain`` is (m, n), (T, m, n), or
    batched (S, T, m, n) for S independent policies (e.g. S training seeds). Returns ``P``
    (..., T+1, n, n) and ``c`` (..., T+1).
    """
    A, Bm, Q, R, g = system.A, system.B, system.Q, system.R, system.gamma
    n, m, T = system.state_dim, system.action_dim, system.horizon
    K = _gain_seq(gain, T, m, n)                                             # (..., T, m, n)
    batch = K.shape[:-3]
    sig = sigma if isinstance(sigma, torch.Tensor) else torch.as_tensor(sigma, dtype=DTYPE)
    if sig.dim() > 1 or (sig.dim() == 1 and sig.shape[0] != m):
        raise ValueError(f"sigma must be a scalar or an ({m},) vector")
    S = torch.diag(sig.expand(m) if sig.dim() == 0 else sig)
    W = system.process_cov if system.process_cov is not None else torch.zeros(n, n, dtype=DTYPE)
    P = [torch.zeros(*batch, n, n, dtype=DTYPE)]
    c = [torch.zeros(batch, dtype=DTYPE)]
    for k in range(T - 1, -1, -1):
        Kk = K[..., k, :, :]                                                 # (..., m, n)
        Acl = A + Bm @ Kk                                                    # (..., n, n)
        Pn = P[-1]
        P.append(-(Q + Kk.transpose(-1, -2) @ R @ Kk) + g * Acl.transpose(-1, -2) @ Pn @ Acl)
        c.append(-_tr(S @ R @ S) + g * (_tr(S @ Bm.T @ Pn @ Bm @ S) + _tr(Pn @ W) + c[-1]))
    P = torch.stack(P[::-1], dim=-3)                                         # (..., T+1, n, n)
    return 0.5 * (P + P.transpose(-1, -2)), torch.stack(c[::-1], dim=-1)


def lq_objective(system: LQSystem, gain: torch.Tensor, sigma, *,
                 initial_state: torch.Tensor | None = None,
                 initial_cov: torch.Tensor | None = None) -> torch.Tensor:
    """J(K) = E[R_1] = E[V_1(s_1)] exactly, differentiable in ``gain`` and ``sigma``.

    Give either ``initial_state`` (n,) for a fixed start, J = s_1ᵀ P_1 s_1 + c_1, or
    ``initial_cov`` Σ_0 (n, n) for s_1 ~ N(0, Σ_0), J = tr(P_1 Σ_0) + c_1 (or both: mean and
    covariance). ∂J/∂K by autograd is the exact policy gradient. Batched gains (S, T, m, n)
    give J of shape (S,).
    """
    if initial_state is None and initial_cov is None:
        raise ValueError("give initial_state (n,) for a fixed start or initial_cov (n, n) for "
                         "s_1 ~ N(0, initial_cov)")
    P, c = lq_value_params(system, gain, sigma)
    P1 = P[..., 0, :, :]                                                     # (..., n, n)
    n = system.state_dim
    J = c[..., 0]
    if initial_state is not None:
        s = torch.as_tensor(initial_state, dtype=DTYPE).reshape(-1)
        if s.shape[0] != n:
            raise ValueError(f"initial_state must have {n} entries, got {s.shape[0]}")
        J = J + ((P1 @ s) * s).sum(-1)
    if initial_cov is not None:
        if tuple(initial_cov.shape) != (n, n):
            raise ValueError(f"initial_cov must be ({n}, {n}), got {tuple(initial_cov.shape)}")
        J = J + _tr(P1 @ initial_cov)
    return J


@dataclass(frozen=True)
class Pendulum:
    """A damped pendulum, s = (angle φ, angular velocity ω), torque a, semi-implicit Euler step:

        ω' = ω + dt (−(g/l) sin φ − damping ω + a),   φ' = φ + dt ω',
        r(s, a) = cos φ − 1 − w_ω ω² − w_a a²     (non-quadratic in φ; 0 at rest at the bottom).

    Defaults: dt = 0.05, g/l = 9.81, damping = 0.5, w_ω = 0.1, w_a = 0.01.
    """

    dt: float = 0.05
    gravity: float = 9.81
    damping: float = 0.5
    w_omega: float = 0.1
    w_action: float = 0.01

    def dynamics(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        omega = s[:, 1] + self.dt * (-self.gravity * torch.sin(s[:, 0]) - self.damping * s[:, 1]
                                     + a[:, 0])
        return torch.stack([s[:, 0] + self.dt * omega, omega], dim=-1)       # (B, 2)

    def reward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return (torch.cos(s[:, 0]) - 1.0 - self.w_omega * s[:, 1] ** 2
                - self.w_action * a[:, 0] ** 2)                                  # (B,)


def pendulum_policy(k_angle: float = 2.0, k_velocity: float = 0.5, sigma: float = 0.5):
    """A nonlinear shift policy for :class:`Pendulum`: a = −k_φ sin φ − k_ω ω + σ ξ."""
    from vghlib.control import GaussianShiftPolicy

    def mean(s):
        return (-k_angle * torch.sin(s[:, 0]) - k_velocity * s[:, 1]).unsqueeze(-1)  # (B, 1)

    return GaussianShiftPolicy(mean, sigma)


def value_grad_fd(dynamics, policy, reward, state: torch.Tensor, noise: torch.Tensor,
                  gamma: float = 1.0, *, step: float = 1e-3, start_step: int = 0,
                  process_noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """∂V_t/∂s at ``state`` (n,) by central differences with common random numbers.

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
    starts = torch.cat([s + step * eye, s - step * eye])                        # (2n, n)
    s1 = starts.unsqueeze(1).expand(2 * n, N, n).reshape(2 * n * N, n)          # (2nN, n)
    xi = noise.unsqueeze(0).expand(2 * n, *noise.shape).reshape(2 * n * N, *noise.shape[1:])
    pw = None
    if process_noise is not None:
        pw = process_noise.unsqueeze(0).expand(2 * n, *process_noise.shape).reshape(
            2 * n * N, *process_noise.shape[1:])
    with torch.no_grad():
        ret = rollout(dynamics, policy, reward, s1, xi, gamma, process_noise=pw,
                      start_step=start_step).ret.reshape(2, n, N)               # (±, n, N)
    d = (ret[0] - ret[1]) / (2 * step)                                          # (n, N)
    return d.mean(-1), d.std(-1) / math.sqrt(N)
