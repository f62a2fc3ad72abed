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

The score of a checkpoint. :func:`checkpoint_score` measures all of it on a one-token-answer task
with matched trajectories (Section 6): P_gap = S · H_α (eq 29–30), and :func:`best_checkpoint` is
eq 31's N*. For a one-token answer with a 0/1 reward the conditional mean E[λ̂ | h] is exactly
parallel to G, scaled by a factor c(p, n) of the advantage (:func:`grpo_costate_scale`), which
makes Λ computable without a second sampling loop.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
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


# --------------------------------------------------------------------------------------------
# The score of one checkpoint on a one-token-answer task (eq 24–28, Section 6)
# --------------------------------------------------------------------------------------------

def grpo_costate_scale(p, group_size: int, kind: str = "grpo", std_eps: float = 1e-4):
    """c(p, n) with E[λ̂ | h] = c · G, for a one-token answer, a 0/1 reward and group advantages.

    Let n be ``group_size``, p = p(y*|q) and k' ~ Binomial(n − 1, p) the successes among the
    other n − 1 answers of the group. The advantage of a sample depends only on its own reward
    r ∈ {0, 1} and on k', so with A_r = E_{k'}[Â(r, k')],

        E[λ̂ | h] = Σ_a π(a) Â-weighted ∂log π(a)/∂h = (A_1 − A_0) ∂p(y*|q)/∂h = c · G,

    because Σ_a ∂π(a)/∂h = 0. The conditional-mean costate is parallel to the value gradient; the
    advantage only rescales it. ``kind``: ``"grpo"`` ((r − mean)/(std + ξ), unbiased std, as in
    :func:`vghlib.grpo.advantages`; c depends on p and stays finite as p → 0 or 1, where G → 0), ``"mean"`` (c = 1 − 1/n,
    :func:`vghlib.grpo.group_mean_scale`), ``"loo"`` and ``"none"`` (c = 1). ``p`` may be an array.
    """
    from scipy.stats import binom

    n = int(group_size)
    if n < 2:
        raise ValueError(f"group_size must be >= 2, got {group_size!r}")
    p = np.asarray(p, dtype=float)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p must hold probabilities in [0, 1]")
    j = np.arange(n)                                           # successes among the other n − 1
    w = binom.pmf(j, n - 1, p[..., None])                      # (..., n)

    def adv(r, k):                                             # advantage of a sample with reward r
        if kind == "grpo":                                     # when the group has k successes
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
    out = a1 - a0
    return float(out) if out.ndim == 0 else out


def _layer_module(model, layer: int):
    """The module whose output is ``hidden[layer]`` (0: the token embeddings, l: block l)."""
    inner = getattr(model, "model", None)
    blocks = getattr(inner, "layers", None)
    if blocks is None:
        raise TypeError(f"{type(model).__name__} is not a decoder-only Hugging Face LM with "
                        "model.model.layers (Llama / OLMo-2 layout)")
    L = len(blocks)
    if not isinstance(layer, int) or not -(L + 1) <= layer <= L:
        raise ValueError(f"layer {layer!r} out of range for a model with L = {L} blocks: use 0..{L} "
                         f"(0 = embeddings, {L} = last block output, before the final norm) or -1")
    layer %= L + 1
    return (inner.embed_tokens if layer == 0 else blocks[layer - 1]), layer


def answer_state_vjp(model, batch, layer: int, cotangents) -> list:
    """J_qᵀ u at the answer position of every prompt, for each cotangent u in ``cotangents``.

    J_q = ∂z_q/∂h_q is the Jacobian of the answer-position logits z_q (V,) with respect to the
    layer-``layer`` state h_q (d,) at the same position (book notation ``hidden[layer]``: 0 the
    embeddings, L the last block's output before the final norm). Only that layer is captured, by
    a forward hook that adds a zero probe to its output; no ``output_hidden_states``.
    ``cotangents``: a list of (N, V) tensors, or a callable ``(logits (N, V)) -> list`` of them
    (to build them from the logits of the same pass). Returns a list of (N, d) float64 tensors.
    Prompts are independent rows, so one backward pass per cotangent serves all prompts.
    """
    from vghlib.tasks import answer_logits

    module, layer = _layer_module(model, layer)
    store = {}

    def hook(_mod, _args, out):
        h = out[0] if isinstance(out, tuple) else out
        probe = torch.zeros_like(h, requires_grad=True)
        store["probe"] = probe
        h = h + probe
        return (h, *out[1:]) if isinstance(out, tuple) else h

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            z = answer_logits(model, batch)                                      # (N, V)
    finally:
        handle.remove()
    us = cotangents(z.detach()) if callable(cotangents) else cotangents
    out = []
    for i, u in enumerate(us):
        (g,) = torch.autograd.grad(z, store["probe"], grad_outputs=u.to(z), retain_graph=i < len(us) - 1)
        out.append(g[:, -1].double())                                            # (N, d)
    return out


def checkpoint_score(model, batch, *, alpha: float, group_size: int, layer: int = -1,
                     adv_kind: str = "grpo", seed: int = 0, checkpoint=None,
                     micro_batch: int | None = None) -> dict:
    """The RL-impact score of one checkpoint on a one-token-answer task (eq 24–28, Section 6).

    Matched trajectories, as in Section 6: G, λ̂ and the rewards come from the same prompts, the
    same hidden states and the same sampled answers. For every prompt q of ``batch`` (a
    :class:`vghlib.tasks.TaskBatch`) with p = p(y*|q) and h the layer-``layer`` state at the
    answer position:

    * G_q = ∂p(y*|q)/∂h, pathwise through the logits (the paper's "true pathwise costate");
    * n = ``group_size`` answers a_i ~ π(·|q), rewards r_i = 1[a_i = y*], advantages Â_i of kind
      ``adv_kind`` (:func:`vghlib.grpo.advantages`), and the single-sample empirical costates
      λ̂_i = Â_i ∂ log π(a_i|q)/∂h (eq 14 for a one-token answer);
    * the conditional mean E[λ̂ | h] = c(p, n) G_q in closed form (:func:`grpo_costate_scale`).

    Returns a dict of floats: ``r_before`` = E_q p; ``sigma_energy`` Σ = E‖G‖² (eq 26);
    ``lam_single`` Λ with single samples in place of E[λ̂ | h] (the paper's plug-in estimate,
    biased upward by Jensen's inequality, F7) and ``lam_cond`` Λ with the exact conditional mean;
    ``usable_single``, ``usable_cond`` the matching S = Σ − Λ (eq 27); ``alignment`` E⟨E[λ̂|h], G⟩
    (eq 24); ``headroom`` H_α = E_q[bernoulli_headroom(p_q, α)] (eq 28, exact for the 0/1 reward)
    and ``headroom_mc`` its Monte Carlo estimate from the sampled groups; ``p_gap_single``,
    ``p_gap_cond`` = S · H_α; ``bernoulli_var`` = E_q p(1 − p) (a sceptic's baseline),
    ``scale_mean`` = E_q c(p, n); and the per-prompt ``prompt_p`` and ``prompt_g2`` = ‖G_q‖², from
    which :func:`score_from_prompts` recomputes the exact score for other α and n.

    ``micro_batch``: at most this many prompts per forward and backward pass (None: all at once);
    prompts are independent rows, so only the memory changes (and the rounding).
    """
    from vghlib import grpo, tasks

    alpha = _check_alpha(alpha)
    g = torch.Generator().manual_seed(int(seed))
    from vghlib.train import _rows, chunked_answer_logits

    with torch.no_grad():
        z = chunked_answer_logits(model, batch, micro_batch).double().cpu()   # (N, V)
    p = tasks.exact_reward(z, batch, checkpoint).numpy()                      # (N,)
    answers = tasks.sample_answers(z, batch, group_size, generator=g, checkpoint=checkpoint)
    r = tasks.per_sample_rewards(answers, z, batch, "indicator", checkpoint)  # (N, n)
    adv = grpo.advantages(r, adv_kind)                                        # (N, n)
    y = batch.target_ids.cpu()

    def cotangents_of(rows):
        def cotangents(logits):
            pi = torch.softmax(logits.double(), -1)                          # (n_rows, V)
            onehot = lambda ids: F.one_hot(ids, pi.shape[-1]).double()  # noqa: E731
            yr, ar, advr = y[rows].to(pi.device), answers[rows].to(pi.device), adv[rows].to(pi)
            dp = pi.gather(-1, yr[:, None]) * (onehot(yr) - pi)              # ∂p/∂z
            score = [advr[:, i, None] * (onehot(ar[:, i]) - pi)
                     for i in range(answers.shape[1])]                       # Â_i ∂log π(a_i)/∂z
            return [dp] + score
        return cotangents

    N = len(batch)
    if micro_batch is None or micro_batch >= N:
        G, *lam = answer_state_vjp(model, batch, layer, cotangents_of(torch.arange(N)))  # (N, d)
    else:
        parts = [answer_state_vjp(model, _rows(batch, c.to(batch.input_ids.device)), layer,
                                  cotangents_of(c)) for c in torch.arange(N).split(micro_batch)]
        G, *lam = [torch.cat([pt[k] for pt in parts]) for k in range(len(parts[0]))]
    G, lam = G.cpu().numpy(), np.stack([x.cpu().numpy() for x in lam], 1)    # (N, d), (N, n, d)
    n = answers.shape[1]
    align_s, sigma_energy, lam_single = usable_terms(lam.reshape(-1, G.shape[1]),
                                                     np.repeat(G, n, axis=0))
    g2 = (G ** 2).sum(-1)                                                     # ‖G_q‖², (N,)
    out = {"r_before": float(p.mean()), "lam_single": lam_single,
           "alignment_single": align_s, "headroom_mc": float(np.mean(headroom(r.numpy(), alpha, axis=-1)))}
    out.update(score_from_prompts(p, g2, alpha=alpha, group_size=n, adv_kind=adv_kind))
    out["usable_single"] = out["sigma_energy"] - lam_single
    out["p_gap_single"] = out["usable_single"] * out["headroom"]
    out["prompt_p"], out["prompt_g2"] = p.tolist(), g2.tolist()
    return out


def score_from_prompts(p, g2, *, alpha: float, group_size: int, adv_kind: str = "grpo") -> dict:
    """The exact-conditional-mean score from per-prompt p = p(y*|q) and ‖G_q‖² alone.

    For a one-token answer E[λ̂ | h] = c(p, n) G (:func:`grpo_costate_scale`), so Σ, Λ, S, the
    alignment, H_α and P_gap need nothing but these two numbers per prompt, for any α, group
    size n and advantage kind: which is how the book varies them without new samples. Returns
    ``sigma_energy``, ``lam_cond``, ``usable_cond``, ``alignment``, ``headroom``, ``p_gap_cond``,
    ``bernoulli_var`` and ``scale_mean``.
    """
    p, g2 = np.asarray(p, dtype=float), np.asarray(g2, dtype=float)
    if p.shape != g2.shape or p.ndim != 1:
        raise ValueError(f"p and g2 must be 1-D arrays of the same length, got {p.shape}, {g2.shape}")
    c = grpo_costate_scale(p, group_size, adv_kind)                           # (N,)
    sigma_energy = float(g2.mean())                                           # eq 26
    lam_cond = float((np.abs(c - 1) * g2).mean())                             # ‖G‖ ‖cG − G‖
    h = float(np.mean(bernoulli_headroom(p, alpha)))                          # eq 28
    return {"sigma_energy": sigma_energy, "lam_cond": lam_cond,
            "usable_cond": sigma_energy - lam_cond, "alignment": float((c * g2).mean()),
            "headroom": h, "p_gap_cond": (sigma_energy - lam_cond) * h,
            "bernoulli_var": float(np.mean(p * (1 - p))), "scale_mean": float(np.mean(c))}


def best_checkpoint(scores, steps) -> int:
    """N* = argmax_N S(θ_N) H_α(θ_N) (eq 31): the step whose score ``scores`` is largest."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape != np.shape(steps) or scores.ndim != 1 or not scores.size:
        raise ValueError("scores and steps must be 1-D arrays of the same, non-zero length")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    return int(np.asarray(steps)[int(np.argmax(scores))])


def predictor_table(summary, score: str = "p_gap_single", n_resamples: int = 2000,
                    seed: int = 0) -> list[dict]:
    """The paper's two predictors of eq 29 (Section 6) and a sceptic's baselines, with uncertainty.

    ``summary``: a :class:`vghlib.sweep.Summary`; ``score``: which P_gap (``"p_gap_single"``, the
    paper's plug-in, or ``"p_gap_cond"``). Rows (``name``, ``target``, ``corr``: a
    :class:`vghlib.stats.Correlation`, ``paper``: the paper's value or None):

    * gain predictors, against the mean ΔR over budgets and seeds: P_gap (paper 0.60), and the
      baselines R_before, H_α, Σ and p(1 − p);
    * level predictors, against the mean R_after: z(R_before) + z(P_gap) (paper 0.73), and the
      baselines z(R_before) alone, z(R_before) + z(H_α), z(R_before) + z(p(1 − p)).
    """
    from vghlib.stats import spearman, zscore

    sc, rb = summary.score, summary.r_before
    p_gap = sc[score]
    gain_preds = [("P_gap", p_gap, 0.60), ("R_before", rb, None), ("H_α", sc["headroom"], None),
                  ("Σ", sc["sigma_energy"], None), ("p(1 − p)", sc["bernoulli_var"], None)]
    level_preds = [("z(R_before) + z(P_gap)", zscore(rb) + zscore(p_gap), 0.73),
                   ("z(R_before)", zscore(rb), None),
                   ("z(R_before) + z(H_α)", zscore(rb) + zscore(sc["headroom"]), None),
                   ("z(R_before) + z(p(1 − p))", zscore(rb) + zscore(sc["bernoulli_var"]), None)]
    rows = [{"name": n, "target": "mean ΔR", "paper": pv,
             "corr": spearman(x, summary.mean_gain, n_resamples, seed=seed)}
            for n, x, pv in gain_preds]
    rows += [{"name": n, "target": "mean R_after", "paper": pv,
              "corr": spearman(x, summary.mean_r_after, n_resamples, seed=seed)}
             for n, x, pv in level_preds]
    return rows
