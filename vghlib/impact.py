"""The RL-impact law of Section 5, in the paper's order: eq 24 to eq 31.

Reference: Asadulaev et al., "Value-Gradient Hypothesis of RL for LLMs", arXiv 2605.21654,
Section 5 (eq 24–31) and Appendix A.10. Pure functions of arrays: measuring the states and
gradients of a model is :mod:`vghlib.scoring`'s job.

* Alignment (eq 24). Let u = E[λ̂ | h] be the conditional mean of the empirical costate and G the
  value gradient at the same state; the alignment is E⟨u, G⟩.
* The bound (eq 25–27). E⟨u, G⟩ ≥ S = Σ − Λ, with the value-gradient energy Σ = E‖G‖² and the
  misalignment Λ = E[‖G‖ ‖u − G‖], both eq 26 (``sigma_energy``, never ``sigma``, which is the
  policy noise in this library; Λ is ``lam_cond`` when u is the exact conditional mean and
  ``lam_single`` when single samples of λ̂ stand in for it, which biases it upward by Jensen's
  inequality, as ``vghlib.symbolic.usable`` shows). :func:`usable_terms` computes all three from
  paired rows; for a one-token answer u = c(p, n) G in closed form (:func:`grpo_costate_scale`).
* Headroom (eq 28). Let α be ``alpha`` and R the return of a sampled trajectory. The headroom of
  one prompt is H_α = (1/α) log E[exp(α R)] − E[R], the gap between a soft maximum of the
  returns and their mean (:func:`headroom`; :func:`bernoulli_headroom` for a 0/1 reward). The
  paper writes H for both the entropy and the headroom; this library calls it ``headroom``.
* The law (eq 29–30). P_gap = S · H_α predicts the RL gain up to a positive constant
  (:func:`score_from_prompts` computes every term for a one-token-answer task).
* The best checkpoint (eq 31). N* = argmax_N S(θ_N) H_α(θ_N) (:func:`best_checkpoint`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp
from scipy.stats import binom

# --------------------------------------------------------------------------------------------
# eq 24–27: alignment, energy, misalignment, usable signal
# --------------------------------------------------------------------------------------------


def usable_terms(u, g) -> tuple[float, float, float]:
    """Monte Carlo estimates of (E⟨u, G⟩, Σ, Λ) from paired rows ``u`` and ``g``, both (N, d).

    Row i pairs the conditional-mean costate u_i = E[λ̂ | h_i] with the value gradient G_i at the
    same state (eq 24–26). Returns the alignment E⟨u, G⟩, the energy Σ = E‖G‖² and the
    misalignment Λ = E[‖G‖ ‖u − G‖] (both eq 26); the usable signal S = Σ − Λ (eq 27) is a lower
    bound on the alignment (eq 25, Appendix A.10).
    """
    u, g = np.asarray(u, dtype=float), np.asarray(g, dtype=float)
    if u.shape != g.shape or u.ndim != 2:
        raise ValueError(f"u and g must both have shape (N, d); got {u.shape} and {g.shape}")
    ng = np.linalg.norm(g, axis=1)  # (N,)
    return (
        float((u * g).sum(1).mean()),
        float((ng**2).mean()),
        float((ng * np.linalg.norm(u - g, axis=1)).mean()),
    )


def grpo_costate_scale(p, group_size: int, kind: str = "grpo", std_eps: float = 1e-4):
    """c(p, n) with E[λ̂ | h] = c · G, for a one-token answer, a 0/1 reward and group advantages.

    Let n be ``group_size``, p = p(y*|q) and k' ~ Binomial(n − 1, p) the successes among the
    other n − 1 answers of the group. The advantage of a sample depends only on its own reward
    r ∈ {0, 1} and on k', so with A_r = E_{k'}[Â(r, k')],

        E[λ̂ | h] = Σ_a π(a) Â-weighted ∂log π(a)/∂h = (A_1 − A_0) ∂p(y*|q)/∂h = c · G,

    because Σ_a ∂π(a)/∂h = 0. The conditional-mean costate is parallel to the value gradient; the
    advantage only rescales it. ``kind``: ``"grpo"`` ((r − mean)/(std + ξ), unbiased std, as in
    :func:`vghlib.grpo.advantages`; c depends on p and stays finite as p → 0 or 1, where G → 0),
    ``"mean"`` (c = 1 − 1/n, :func:`vghlib.grpo.group_mean_scale`), ``"loo"`` and ``"none"``
    (c = 1). ``p`` may be an array.
    """
    a0, a1 = group_advantage_means(p, group_size, kind, std_eps)
    out = a1 - a0
    return float(out) if np.ndim(out) == 0 else out


def group_advantage_means(p, group_size: int, kind: str = "grpo", std_eps: float = 1e-4):
    """(A_0, A_1): the expected advantage of a sample with reward 0 and with reward 1 (eq 1).

    The expectation is over the other n − 1 samples of the group, whose successes
    k' ~ Binomial(n − 1, p) are independent of the sample's own. This is all the advantage
    contributes to E[λ̂ | h] when h is shared by the group: E[λ̂ | h] = Σ_o π(o) A_{r(o)}
    ∇log π(o), for an answer of any length (:mod:`vghlib.sequences`). ``kind`` and ``std_eps``
    as in :func:`grpo_costate_scale`; ``p`` may be an array.
    """
    n = int(group_size)
    if n < 2:
        raise ValueError(f"group_size must be >= 2, got {group_size!r}")
    p = np.asarray(p, dtype=float)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p must hold probabilities in [0, 1]")
    j = np.arange(n)  # successes among the other n − 1
    w = binom.pmf(j, n - 1, p[..., None])  # (..., n)

    def adv(r, k):  # advantage of a sample with reward r
        if kind == "grpo":  # when the group has k successes
            std = np.sqrt(k * (n - k) / (n * (n - 1)))
            return (r - k / n) / (std + std_eps)
        if kind == "mean":
            return r - k / n
        if kind == "loo":
            return r - (k - r) / (n - 1)
        if kind == "none":
            return np.full_like(k, r, dtype=float)
        raise ValueError(f"kind must be 'grpo', 'mean', 'loo' or 'none', got {kind!r}")

    a1 = (w * adv(1.0, j + 1.0)).sum(-1)
    a0 = (w * adv(0.0, j * 1.0)).sum(-1)
    if a0.ndim == 0:
        return float(a0), float(a1)
    return a0, a1


# --------------------------------------------------------------------------------------------
# eq 28: reachable headroom
# --------------------------------------------------------------------------------------------


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float; a clear error unless it is a positive finite number (eq 28's α)."""
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
    alpha = check_alpha(alpha)
    p = np.asarray(p, dtype=float)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p must hold probabilities in [0, 1]; found values outside it or NaN")
    with np.errstate(divide="ignore"):
        log_mgf = np.logaddexp(np.log1p(-p), np.log(p) + alpha)  # log(1 − p + p e^α)
    out = log_mgf / alpha - p
    return float(out) if out.ndim == 0 else out


def headroom(rewards, alpha: float, axis: int = -1):
    """Monte Carlo headroom from sampled returns along ``axis`` (one prompt per remaining index).

    H_α = (1/α) log mean exp(α r) − mean r (eq 28), with ``scipy.special.logsumexp``. Rejects NaN
    or infinite rewards with a message, because one bad reward would silently turn the whole score
    into NaN.
    """
    alpha = check_alpha(alpha)
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


# --------------------------------------------------------------------------------------------
# eq 29–31: the impact score of a checkpoint and the best checkpoint
# --------------------------------------------------------------------------------------------


COSTATE_SCALES = ("trajectory", "group")


def costate_scale_factor(scale: str, group_size: int, answer_length: int = 1) -> float:
    """The factor s on the empirical costate λ̂ under each reading of its scale.

    ``"trajectory"`` (s = 1): one costate per sampled trajectory, Â_i ∂log π(o_i)/∂h, as eq 14
    and Section 6 write it. ``"group"`` (s = 1/(n |o|)): the costate of eq 1's objective, which
    averages the group's n trajectories and each trajectory's |o| = ``answer_length`` tokens
    (1/n for a one-token answer). The paper leaves the choice open. The alignment E⟨sλ̂, G⟩ only
    scales with s, but S = Σ − E[‖G‖ ‖sλ̂ − G‖] does not: as s grows from 0 it starts at 0, rises
    while sλ̂ approaches G, and turns negative once ‖sλ̂ − G‖ exceeds ‖G‖ on average. So the sign
    of S, and of P_gap, can belong to the convention rather than to the checkpoint.
    """
    if scale not in COSTATE_SCALES:
        raise ValueError(f"costate scale must be one of {COSTATE_SCALES}, got {scale!r}")
    if int(group_size) < 1 or int(answer_length) < 1:
        raise ValueError(
            f"group_size and answer_length must be >= 1, got {group_size!r}, {answer_length!r}"
        )
    return 1.0 if scale == "trajectory" else 1.0 / (int(group_size) * int(answer_length))


def score_from_prompts(
    p,
    g2,
    *,
    alpha: float,
    group_size: int,
    adv_kind: str = "grpo",
    scale: str = "trajectory",
    answer_length: int = 1,
) -> dict:
    """The exact-conditional-mean score (eq 24–30) from per-prompt p = p(y*|q) and ‖G_q‖² alone.

    With a 0/1 reward and a state h shared by the group, E[λ̂ | h] = c(p, n) G
    (:func:`grpo_costate_scale`; for an answer of several tokens, :mod:`vghlib.sequences`), so
    Σ, Λ, S, the
    alignment, H_α and P_gap need nothing but these two numbers per prompt, for any α, group
    size n and advantage kind: which is how the book varies them without new samples.
    ``scale``: the costate's scale (:func:`costate_scale_factor`: ``"trajectory"``, or eq 1's
    ``"group"`` = 1/(n |o|), |o| = ``answer_length``). Returns ``sigma_energy``, ``lam_cond``,
    ``usable_cond``, ``alignment``, ``headroom``, ``p_gap_cond``, ``bernoulli_var`` and
    ``scale_mean``, and two scores that no scale convention can flip: ``align_headroom`` =
    alignment × H_α and ``cosine_headroom`` = cos × H_α, with cos = E⟨u, G⟩ / √(E‖u‖² E‖G‖²)
    the alignment freed of its scale.
    """
    p, g2 = np.asarray(p, dtype=float), np.asarray(g2, dtype=float)
    if p.shape != g2.shape or p.ndim != 1:
        raise ValueError(
            f"p and g2 must be 1-D arrays of the same length, got {p.shape}, {g2.shape}"
        )
    s = costate_scale_factor(scale, group_size, answer_length)
    c = s * grpo_costate_scale(p, group_size, adv_kind)
    sigma_energy = float(g2.mean())  # eq 26
    lam_cond = float((np.abs(c - 1) * g2).mean())  # ‖G‖ ‖cG − G‖
    h = float(np.mean(bernoulli_headroom(p, alpha)))  # eq 28
    alignment = float((c * g2).mean())  # eq 24: E⟨cG, G⟩
    cos = cosine(alignment, float((c**2 * g2).mean()), sigma_energy)
    return {
        "sigma_energy": sigma_energy,
        "lam_cond": lam_cond,
        "usable_cond": sigma_energy - lam_cond,
        "alignment": alignment,
        "headroom": h,
        "p_gap_cond": (sigma_energy - lam_cond) * h,  # eq 29–30
        "bernoulli_var": float(np.mean(p * (1 - p))),
        "scale_mean": float(np.mean(c)),
        "align_headroom": alignment * h,
        "cosine": cos,
        "cosine_headroom": cos * h,
    }


def cosine(alignment: float, u_energy: float, sigma_energy: float) -> float:
    """E⟨u, G⟩ / √(E‖u‖² E‖G‖²): the alignment of eq 24 without its scale, in [−1, 1] (Cauchy–
    Schwarz), unchanged when u is multiplied by any s > 0; 0 when either energy is 0."""
    den = math.sqrt(max(u_energy, 0.0) * max(sigma_energy, 0.0))
    return 0.0 if den == 0 else float(alignment / den)


def best_checkpoint(scores, steps) -> int:
    """N* = argmax_N S(θ_N) H_α(θ_N) (eq 31): the step whose score ``scores`` is largest."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape != np.shape(steps) or scores.ndim != 1 or not scores.size:
        raise ValueError("scores and steps must be 1-D arrays of the same, non-zero length")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    return int(np.asarray(steps)[int(np.argmax(scores))])
