"""The RL-impact score of Section 5: reachable reward headroom (eq 28), and later its partners.

Reference: Asadulaev et al., "Value-Gradient Hypothesis of RL for LLMs", arXiv 2605.21654, eq 28.

Let α be ``alpha`` and R the return of a sampled trajectory. The headroom of one prompt is

    H_α = (1/α) log E[exp(α R)] − E[R],

the gap between a soft maximum of the returns and their mean. The paper writes H for both the
entropy and the headroom; this library calls the headroom ``headroom`` and never ``H``.
"""

from __future__ import annotations

import math

import numpy as np


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    return alpha


def bernoulli_headroom(p, alpha: float):
    """Exact headroom of a 0/1 reward that succeeds with probability ``p``.

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

    Uses a numerically stable log-mean-exp. Rejects NaN or infinite rewards with a message,
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
    m = r.max(axis=axis, keepdims=True)
    log_mean_exp = np.log(np.mean(np.exp(alpha * (r - m)), axis=axis)) / alpha + np.squeeze(m, axis)
    out = log_mean_exp - r.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out
