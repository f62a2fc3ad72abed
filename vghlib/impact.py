"""The RL-impact score of Section 5: usable value-gradient signal (eq 24–27) and headroom (eq 28).

Reference: Asadulaev et al., "Value-Gradient Hypothesis of RL for LLMs", arXiv 2605.21654,
eq 24–28 and Appendix A.10.

Usable signal. Let u = E[λ̂ | h] (the conditional mean of the empirical costate) and G the value
gradient. A.10 bounds the alignment E⟨u, G⟩ from below by S = Σ − Λ with the value-gradient energy
Σ = E‖G‖² (eq 25; ``sigma_energy``, never ``sigma``, which is the policy noise in this library)
and the misalignment Λ = E[‖G‖ ‖u − G‖] (eq 26; ``lam_gap``). :func:`usable_terms` computes all
three from paired rows. Λ must use the conditional mean u: single samples of λ̂ in its place bias
it upward (Jensen), as ``vghlib.symbolic.usable`` shows.

Headroom. Let α be ``alpha`` and R the return of a sampled trajectory. The headroom of one
prompt is

    H_α = (1/α) log E[exp(α R)] − E[R],

the gap between a soft maximum of the returns and their mean (eq 28). The paper writes H for both
the entropy and the headroom; this library calls the headroom ``headroom`` and never ``H``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    return alpha


def bernoulli_headroom(p, alpha: float):
    """Exact headroom (eq 28) of a 0/1 reward that succeeds with probability ``p``.

    H_α(p) = (1/α) log(1 − p + p e^α) − p, which is 0 at p = 0 (nothing good is ever sampled)
    and at p = 1 (nothing left to gain) and positive in between. Computed with ``logaddexp`` so
    that large α does not overflow. ``p`` may be a scalar or an array.
    """
    alpha = _check_alpha(alpha)
    p = np.asarray(p, dtype=float)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p must hold probabilities in [0, 1]; found values outside it or NaN")
    with np.errstate(divide="ignore"):
        log_mgf = np.logaddexp(np.log1p(-p), np.log(p) + alpha)  # log(1 − p + p e^α)
    out = log_mgf / alpha - p
    return float(out) if out.ndim == 0 else out


def headroom(rewards, alpha: float, axis: int = -1):
    """Monte Carlo headroom from sampled returns along ``axis`` (one prompt per remaining index).

    H_α = (1/α) log mean exp(α r) − mean r (eq 28), with ``scipy.special.logsumexp``. Rejects NaN or infinite rewards with a message,
    because one bad reward would silently turn the whole score into NaN.
    """
    alpha = _check_alpha(alpha)
    r = np.asarray(rewards, dtype=float)
    if r.size == 0:
        raise ValueError("headroom needs at least one sampled reward")
    if not np.all(np.isfinite(r)):
        bad = int(np.size(r) - np.count_nonzero(np.isfinite(r)))
        raise ValueError(
            f"headroom got {bad} non-finite reward(s) (NaN or inf); fix or drop those samples "
            "before scoring, e.g. rewards[np.isfinite(rewards)]"
        )
    n = r.shape[axis]
    log_mean_exp = (logsumexp(alpha * r, axis=axis) - math.log(n)) / alpha
    out = log_mean_exp - r.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def usable_terms(u, g) -> tuple[float, float, float]:
    """Monte Carlo estimates of (E⟨u, G⟩, Σ, Λ) from paired rows ``u`` and ``g``, both (N, d).

    Row i pairs the conditional-mean costate u_i = E[λ̂ | h_i] with the value gradient G_i at the
    same state (eq 24–26). Returns the alignment E⟨u, G⟩, the energy Σ = E‖G‖² (eq 25) and the
    misalignment Λ = E[‖G‖ ‖u − G‖] (eq 26); the usable signal of A.10 is S = Σ − Λ ≤ E⟨u, G⟩.
    """
    u, g = np.asarray(u, dtype=float), np.asarray(g, dtype=float)
    if u.shape != g.shape or u.ndim != 2:
        raise ValueError(f"u and g must both have shape (N, d); got {u.shape} and {g.shape}")
    ng = np.linalg.norm(g, axis=1)                                   # (N,)
    return (float((u * g).sum(1).mean()), float((ng**2).mean()),
            float((ng * np.linalg.norm(u - g, axis=1)).mean()))
