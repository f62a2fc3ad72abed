"""Systems with a known value function: finite-horizon LQ (one Riccati recursion), and a pendulum.

Reference: Asadulaev et al., arXiv 2605.21654, eq 8–9 (the value gradient G_t = ∂V_t/∂s that
costates estimate) and the corrected Corollary 1 of the book's appendix (the exact policy gradient
that estimators are compared with).

* :class:`LQSystem`: s_{t+1} = A s + B a (+ w), r = −(sᵀQs + aᵀRa). For a linear Gaussian policy
  a = K_t s + σ ξ the value is quadratic, V_t(s) = sᵀ P_t s + c_t, from one policy-evaluation
  Riccati recursion, :func:`lq_value_params`, which stays differentiable in K and σ, so
  :func:`lq_objective` gives the exact ∂J/∂K by autograd. :func:`lq_policy_value` is the same
  recursion with the inputs detached, and :func:`lq_value_grad` is G_t(s) = 2 P_t s (eq 9's
  right side). :func:`lqr_gains` is the *optimal* feedback (a different recursion: it minimises).
* :func:`double_integrator` and :func:`scalar_lq`: the two LQ systems the book uses throughout.
* :class:`Pendulum`: a non-quadratic reward, where no closed form for V exists (eq 9 is checked
  there against :func:`vghlib.control.value_grad_fd`).

Time indices follow :mod:`vghlib.control`: 0-based, index k is the paper's step t = k + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vghlib.control import (
    DTYPE,
    GaussianShiftPolicy,
    as_tensor,
    check_gamma,
    standard_normal_noise,
)

__all__ = [
    "LQSystem",
    "lq_value_params",
    "lq_policy_value",
    "lq_value",
    "lq_value_grad",
    "lq_objective",
    "lqr_gains",
    "double_integrator",
    "scalar_lq",
    "Pendulum",
    "pendulum_policy",
]


@dataclass(frozen=True)
class LQSystem:
    """s_{t+1} = A s_t + B a_t (+ w_t, w ~ N(0, W)), r(s, a) = −(sᵀQs + aᵀRa), t = 1..T, discount γ.

    ``A`` (n, n), ``B`` (n, m), ``Q`` (n, n) and ``R`` (m, m) symmetric, ``horizon`` T, ``gamma``,
    ``process_cov`` W (n, n) or None. All float64.
    """

    A: torch.Tensor
    B: torch.Tensor
    Q: torch.Tensor
    R: torch.Tensor
    horizon: int
    gamma: float = 1.0
    process_cov: torch.Tensor | None = None

    def __post_init__(self):
        for name in ("A", "B", "Q", "R"):
            as_tensor(getattr(self, name), name, 2)
        n, m = self.B.shape
        if self.A.shape != (n, n) or self.Q.shape != (n, n) or self.R.shape != (m, m):
            raise ValueError(
                f"need A (n,n), B (n,m), Q (n,n), R (m,m); got A {tuple(self.A.shape)}"
                f", B {tuple(self.B.shape)}, Q {tuple(self.Q.shape)}, "
                f"R {tuple(self.R.shape)}"
            )
        if self.process_cov is not None and tuple(self.process_cov.shape) != (n, n):
            raise ValueError(f"process_cov must be ({n}, {n})")
        if not isinstance(self.horizon, int) or self.horizon < 1:
            raise ValueError(f"horizon must be a positive int, got {self.horizon!r}")
        check_gamma(self.gamma)

    def to(self, device) -> "LQSystem":
        """The same system with every matrix on ``device`` (e.g. ``"cuda"``)."""
        mv = lambda x: None if x is None else x.to(device)  # noqa: E731
        return LQSystem(
            mv(self.A),
            mv(self.B),
            mv(self.Q),
            mv(self.R),
            self.horizon,
            self.gamma,
            mv(self.process_cov),
        )

    @property
    def state_dim(self) -> int:
        return self.A.shape[0]

    @property
    def action_dim(self) -> int:
        return self.B.shape[1]

    def dynamics(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return s @ self.A.T + a @ self.B.T  # (B, n)

    def reward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return -((s @ self.Q) * s).sum(-1) - ((a @ self.R) * a).sum(-1)  # (B,)

    def process_noise(self, batch: int, seed: int) -> torch.Tensor | None:
        """w_{1:T} ~ N(0, W) of shape (batch, T, n), or None without process noise."""
        if self.process_cov is None:
            return None
        L = torch.linalg.cholesky(self.process_cov)
        return standard_normal_noise(batch, self.horizon, self.state_dim, seed) @ L.T


def _gain_seq(gain: torch.Tensor, T: int, m: int, n: int) -> torch.Tensor:
    if not isinstance(gain, torch.Tensor) or gain.dim() < 2 or tuple(gain.shape[-2:]) != (m, n):
        raise ValueError(
            f"gain must be a tensor (m, n) = {(m, n)} or (..., T, m, n) = (..., {T}, {m}, {n})"
        )
    if gain.dim() == 2:
        gain = gain.unsqueeze(0).expand(T, m, n)
    if gain.shape[-3] != T:
        raise ValueError(
            f"gain must be (m, n) = {(m, n)} or (..., T, m, n) with T = {T}, "
            f"got {tuple(gain.shape)}"
        )
    return gain


def _tr(M: torch.Tensor) -> torch.Tensor:
    return M.diagonal(dim1=-2, dim2=-1).sum(-1)


def lq_value_params(
    system: LQSystem, gain: torch.Tensor, sigma
) -> tuple[torch.Tensor, torch.Tensor]:
    """V_t(s) = sᵀ P_t s + c_t of the policy a = K_t s + σ ξ, differentiable in K and σ.

    The policy-evaluation Riccati recursion (from P_{T+1} = 0, c_{T+1} = 0):
        P_t = −(Q + K_tᵀ R K_t) + γ (A + B K_t)ᵀ P_{t+1} (A + B K_t),
        c_t = −tr(Σ R Σ) + γ [ tr(Σ Bᵀ P_{t+1} B Σ) + tr(P_{t+1} W) + c_{t+1} ],   Σ = diag(σ),
    without detaching ``gain`` or ``sigma`` (scalar or (m,)). ``gain`` is (m, n), (T, m, n), or
    batched (S, T, m, n) for S independent policies (e.g. S training seeds). Returns ``P``
    (..., T+1, n, n) and ``c`` (..., T+1).
    """
    A, Bm, Q, R, g = system.A, system.B, system.Q, system.R, system.gamma
    n, m, T = system.state_dim, system.action_dim, system.horizon
    K = _gain_seq(gain, T, m, n)  # (..., T, m, n)
    batch = K.shape[:-3]
    sig = sigma if isinstance(sigma, torch.Tensor) else torch.as_tensor(sigma, dtype=DTYPE)
    if sig.dim() > 1 or (sig.dim() == 1 and sig.shape[0] != m):
        raise ValueError(f"sigma must be a scalar or an ({m},) vector")
    if torch.any(sig.detach() < 0):
        raise ValueError("sigma must be non-negative")
    S = torch.diag(sig.expand(m) if sig.dim() == 0 else sig)
    W = system.process_cov if system.process_cov is not None else torch.zeros(n, n, dtype=DTYPE)
    P = [torch.zeros(*batch, n, n, dtype=DTYPE)]
    c = [torch.zeros(batch, dtype=DTYPE)]
    for k in range(T - 1, -1, -1):
        Kk = K[..., k, :, :]  # (..., m, n)
        Acl = A + Bm @ Kk  # (..., n, n)
        Pn = P[-1]
        P.append(-(Q + Kk.transpose(-1, -2) @ R @ Kk) + g * Acl.transpose(-1, -2) @ Pn @ Acl)
        c.append(-_tr(S @ R @ S) + g * (_tr(S @ Bm.T @ Pn @ Bm @ S) + _tr(Pn @ W) + c[-1]))
    P = torch.stack(P[::-1], dim=-3)  # (..., T+1, n, n)
    return 0.5 * (P + P.transpose(-1, -2)), torch.stack(c[::-1], dim=-1)


def lq_policy_value(
    system: LQSystem, gain: torch.Tensor, sigma
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact value of the policy a = K_t s + σ ξ on ``system``: V_t(s) = sᵀ P_t s + c_t.

    :func:`lq_value_params` with ``gain`` (m, n) or (T, m, n) and ``sigma`` detached. P_t is
    negative semidefinite (rewards are costs with a minus sign), so V ≤ 0. Returns ``P``
    (T+1, n, n) and ``c`` (T+1,); index k is paper step t = k + 1, index T is 0.
    """
    if not isinstance(gain, torch.Tensor) or gain.dim() not in (2, 3):
        raise ValueError(
            f"gain must be a tensor of shape (m, n) or (T, m, n), got "
            f"{type(gain).__name__ if not isinstance(gain, torch.Tensor) else tuple(gain.shape)}"
        )
    sig = sigma.detach() if isinstance(sigma, torch.Tensor) else sigma
    with torch.no_grad():
        return lq_value_params(system, gain.detach(), sig)


def _check_state_batch(P: torch.Tensor, s: torch.Tensor, t: int) -> None:
    if not isinstance(t, int) or not 0 <= t < P.shape[0]:
        raise ValueError(f"t must be a step index in 0..{P.shape[0] - 1}, got {t!r}")
    as_tensor(s, "s", 2)
    if s.shape[1] != P.shape[-1]:
        raise ValueError(f"s must be (B, {P.shape[-1]}), got {tuple(s.shape)}")


def lq_value(P: torch.Tensor, c: torch.Tensor, s: torch.Tensor, t: int) -> torch.Tensor:
    """V_t(s) = sᵀ P_t s + c_t for a batch of states s (B, n); ``t`` is the 0-based step."""
    _check_state_batch(P, s, t)
    return ((s @ P[t]) * s).sum(-1) + c[t]  # (B,)


def lq_value_grad(P: torch.Tensor, s: torch.Tensor, t: int) -> torch.Tensor:
    """G_t(s) = ∂V_t/∂s = 2 P_t s for a batch of states s (B, n); ``t`` is the 0-based step.

    The exact right side of eq 9, E[λ_t | s_t = s] = G_t(s), for an LQ system.
    """
    _check_state_batch(P, s, t)
    return 2.0 * s @ P[t]  # (B, n); P_t symmetric


def lq_objective(
    system: LQSystem,
    gain: torch.Tensor,
    sigma,
    *,
    initial_state: torch.Tensor | None = None,
    initial_cov: torch.Tensor | None = None,
) -> torch.Tensor:
    """J(K) = E[R_1] = E[V_1(s_1)] exactly, differentiable in ``gain`` and ``sigma``.

    Give either ``initial_state`` (n,) for a fixed start, J = s_1ᵀ P_1 s_1 + c_1, or
    ``initial_cov`` Σ_0 (n, n) for s_1 ~ N(0, Σ_0), J = tr(P_1 Σ_0) + c_1 (or both: mean and
    covariance). ∂J/∂K by autograd is the exact policy gradient. Batched gains (S, T, m, n)
    give J of shape (S,).
    """
    if initial_state is None and initial_cov is None:
        raise ValueError(
            "give initial_state (n,) for a fixed start or initial_cov (n, n) for "
            "s_1 ~ N(0, initial_cov)"
        )
    P, c = lq_value_params(system, gain, sigma)
    P1 = P[..., 0, :, :]  # (..., n, n)
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


def lqr_gains(system: LQSystem) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal linear feedback by the standard Riccati recursion (maximises E[R_1]).

    With the cost-to-go matrix S_{T+1} = 0:
        K_t = −(R + γ Bᵀ S_{t+1} B)⁻¹ γ Bᵀ S_{t+1} A,
        S_t = Q + K_tᵀ R K_t + γ (A + B K_t)ᵀ S_{t+1} (A + B K_t).
    Additive policy or process noise does not change K (certainty equivalence). Returns
    ``gains`` (T, m, n) and ``S`` (T+1, n, n) (noise-free optimal value −sᵀ S_t s).
    """
    A, Bm, Q, R, g = system.A, system.B, system.Q, system.R, system.gamma
    T = system.horizon
    S = [torch.zeros_like(A)]
    K = []
    for _ in range(T):
        Sn = S[-1]
        Kk = -torch.linalg.solve(R + g * Bm.T @ Sn @ Bm, g * Bm.T @ Sn @ A)
        Acl = A + Bm @ Kk
        Sk = Q + Kk.T @ R @ Kk + g * Acl.T @ Sn @ Acl
        K.append(Kk)
        S.append(0.5 * (Sk + Sk.T))
    return torch.stack(K[::-1]), torch.stack(S[::-1])


def double_integrator(
    horizon: int = 20, gamma: float = 0.95, process_var: float | None = 0.01
) -> LQSystem:
    """The 2-D double integrator of Part II: position and velocity, force input, dt = 0.1.

    A = [[1, 0.1], [0, 1]], B = [[0], [0.1]], Q = diag(1, 0.1), R = 0.01, discount ``gamma``, and
    process noise ``process_var`` · I (None for none).
    """
    t = lambda x: torch.tensor(x, dtype=DTYPE)  # noqa: E731
    cov = None if process_var is None else process_var * torch.eye(2, dtype=DTYPE)
    return LQSystem(
        A=t([[1.0, 0.1], [0.0, 1.0]]),
        B=t([[0.0], [0.1]]),
        Q=t([[1.0, 0.0], [0.0, 0.1]]),
        R=t([[0.01]]),
        horizon=int(horizon),
        gamma=gamma,
        process_cov=cov,
    )


def scalar_lq() -> tuple[LQSystem, torch.Tensor, float]:
    """The scalar LQ system of the book's exercises: A = 0.9, B = 0.5, Q = 1, R = 0.1, T = 3,
    γ = 0.9, with the policy a = −0.8 s + 0.3 ξ. Returns ``(system, gain (1, 1), sigma)``."""
    t = lambda x: torch.tensor(x, dtype=DTYPE)  # noqa: E731
    sys_ = LQSystem(A=t([[0.9]]), B=t([[0.5]]), Q=t([[1.0]]), R=t([[0.1]]), horizon=3, gamma=0.9)
    return sys_, t([[-0.8]]), 0.3


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
        omega = s[:, 1] + self.dt * (
            -self.gravity * torch.sin(s[:, 0]) - self.damping * s[:, 1] + a[:, 0]
        )
        return torch.stack([s[:, 0] + self.dt * omega, omega], dim=-1)  # (B, 2)

    def reward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return (
            torch.cos(s[:, 0]) - 1.0 - self.w_omega * s[:, 1] ** 2 - self.w_action * a[:, 0] ** 2
        )  # (B,)


def pendulum_policy(k_angle: float = 2.0, k_velocity: float = 0.5, sigma: float = 0.5):
    """A nonlinear shift policy for :class:`Pendulum`: a = −k_φ sin φ − k_ω ω + σ ξ."""

    def mean(s):
        return (-k_angle * torch.sin(s[:, 0]) - k_velocity * s[:, 1]).unsqueeze(-1)  # (B, 1)

    return GaussianShiftPolicy(mean, sigma)
