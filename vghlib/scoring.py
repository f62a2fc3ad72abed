"""Scoring checkpoints with the impact law: the glue between a model, a task and Section 5.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 (the one-token-answer experiment: the
score of every checkpoint, and the two predictors of the gain) with the math of
:mod:`vghlib.impact` (eq 24–31).

* :func:`answer_state_vjp` reads ∂(answer logits)/∂hidden[l] through the library's one
  hidden-state probe (:func:`vghlib.models.probe_hidden`);
* :func:`checkpoint_score` measures a checkpoint's Σ, Λ, S, H_α and P_gap on matched
  trajectories (what a sweep writes as its ``"score"`` row);
* :func:`predictor_table` correlates the scores of a sweep's checkpoints with their measured
  gains (the paper's two predictors and a sceptic's baselines), and
  :func:`predictor_report` is the book's one way of showing such a table (a
  :class:`vghlib.tables.Table`; :func:`print_predictor_table` prints its text).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vghlib import grpo, impact, models, sequences, tasks
from vghlib.stats import block_spearman, spearman, zscore
from vghlib.tables import Section, Table, numbers

__all__ = [
    "answer_state_vjp",
    "checkpoint_score",
    "LAMBDA_KINDS",
    "predictors",
    "in_range",
    "predictor_table",
    "score_table",
    "predictor_report",
    "print_predictor_table",
]

LAMBDA_KINDS = ("single", "cond")


def answer_state_vjp(model, batch: tasks.TaskBatch, layer: int, cotangents) -> list:
    """J_qᵀ u at the answer position of every prompt, for each cotangent u in ``cotangents``.

    J_q = ∂z_q/∂h_q is the Jacobian of the answer-position logits z_q (V,) with respect to the
    layer-``layer`` state h_q (d,) at the same position (book notation ``hidden[layer]``: 0 the
    embeddings, L the last block's output before the final norm), read through the library's
    one hidden-state probe, :func:`vghlib.models.probe_hidden`.
    ``cotangents``: a list of (N, V) tensors, or a callable ``(logits (N, V)) -> list`` of them
    (to build them from the logits of the same pass). Returns a list of (N, d) float64 tensors.
    Prompts are independent rows, so one backward pass per cotangent serves all prompts.
    """
    with torch.enable_grad(), models.probe_hidden(model, [layer], zero=True) as got:
        z = tasks.answer_logits(model, batch)  # (N, V)
    (probe,) = got.probes.values()  # (N, S, d)
    us = cotangents(z.detach()) if callable(cotangents) else cotangents
    out = []
    for i, u in enumerate(us):
        (g,) = torch.autograd.grad(z, probe, grad_outputs=u.to(z), retain_graph=i < len(us) - 1)
        out.append(g[:, -1].double())  # (N, d)
    return out


def checkpoint_score(
    model,
    batch,
    *,
    alpha: float,
    group_size: int,
    layer: int = -1,
    adv_kind: str = "grpo",
    seed: int = 0,
    checkpoint=None,
    micro_batch: int | None = None,
) -> dict:
    """The RL-impact score of one checkpoint on a one-token-answer task (eq 24–28, Section 6).

    Matched trajectories, as in Section 6: G, λ̂ and the rewards come from the same prompts, the
    same hidden states and the same sampled answers. For every prompt q of ``batch`` (a
    :class:`vghlib.tasks.TaskBatch`) with p = p(y*|q) and h the layer-``layer`` state at the
    answer position:

    * G_q = ∂p(y*|q)/∂h, pathwise through the logits (the paper's "true pathwise costate");
    * n = ``group_size`` answers a_i ~ π(·|q), rewards r_i = 1[a_i = y*], advantages Â_i of kind
      ``adv_kind`` (:func:`vghlib.grpo.advantages`), and the single-sample empirical costates
      λ̂_i = Â_i ∂ log π(a_i|q)/∂h (eq 14 for a one-token answer);
    * the conditional mean E[λ̂ | h] = c(p, n) G_q in closed form
      (:func:`vghlib.impact.grpo_costate_scale`).

    Returns a dict of floats: ``r_before`` = E_q p; ``sigma_energy`` Σ = E‖G‖² (eq 26);
    ``lam_single`` Λ with single samples in place of E[λ̂ | h] (the paper's plug-in estimate,
    biased upward by Jensen's inequality: findings page, "Λ from single samples") and ``lam_cond`` Λ
    with the exact conditional mean;
    ``usable_single``, ``usable_cond`` the matching S = Σ − Λ (eq 27); ``alignment`` E⟨E[λ̂|h], G⟩
    (eq 24); ``headroom`` H_α = E_q[bernoulli_headroom(p_q, α)] (eq 28, exact for the 0/1 reward)
    and ``headroom_mc`` its Monte Carlo estimate from the sampled groups; ``p_gap_single``,
    ``p_gap_cond`` = S · H_α; ``bernoulli_var`` = E_q p(1 − p) (a sceptic's baseline),
    ``scale_mean`` = E_q c(p, n); ``lam_single_group``: Λ from single samples with eq 1's costate
    scale 1/n (:func:`vghlib.impact.costate_scale_factor`; every other field uses the
    per-trajectory scale); ``cosine_single``, ``cosine``, ``align_headroom`` and
    ``cosine_headroom``, the scale-free scores (:func:`vghlib.impact.cosine`); and the per-prompt
    ``prompt_p`` and ``prompt_g2`` = ‖G_q‖², from which :func:`vghlib.impact.score_from_prompts`
    recomputes the exact score for other α, n, advantages and costate scales; ``entropy``: the
    policy's mean entropy (nats) at the answer position, over the whole vocabulary.

    ``micro_batch``: at most this many prompts per forward and backward pass (None: all at once);
    prompts are independent rows, so only the memory changes (and the rounding).

    An answer of k > 1 tokens (``batch.answer_length``): the same fields, measured at the state
    of the first answer position by :func:`vghlib.sequences.measure` (sampled answers of k
    tokens, a 0/1 reward for the whole answer, λ̂_i = Â_i ∂log π(o_i|q)/∂h; the conditional mean
    is still c(p, n) G, and eq 1's scale is 1/(n k)), plus ``sigma_now`` and ``sigma_future``:
    E‖·‖² of the first token's credit and of the credit attention carries back from the later
    tokens, the two parts of G.
    """
    alpha = impact.check_alpha(alpha)
    models.layer_index(layer, len(models.decoder_layers(model)) - 1)  # fail before any work
    if batch.answer_length > 1:
        return _sequence_score(
            model,
            batch,
            alpha=alpha,
            group_size=group_size,
            layer=layer,
            adv_kind=adv_kind,
            seed=seed,
            checkpoint=checkpoint,
            mb=micro_batch,
        )
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        z = tasks.answer_logits(model, batch, micro_batch).double().cpu()  # (N, V)
    p = tasks.exact_reward(z, batch, checkpoint).numpy()  # (N,)
    answers = tasks.sample_answers(z, batch, group_size, generator=g, checkpoint=checkpoint)
    r = tasks.per_sample_rewards(answers, z, batch, "indicator", checkpoint)  # (N, n)
    adv = grpo.advantages(r, adv_kind)  # (N, n)
    y = batch.target_ids.cpu()

    def cotangents_of(rows):
        def cotangents(logits):
            pi = torch.softmax(logits.double(), -1)  # (n_rows, V)
            onehot = lambda ids: F.one_hot(ids, pi.shape[-1]).double()  # noqa: E731
            yr, ar, advr = y[rows].to(pi.device), answers[rows].to(pi.device), adv[rows].to(pi)
            dp = pi.gather(-1, yr[:, None]) * (onehot(yr) - pi)  # ∂p/∂z
            score = [
                advr[:, i, None] * (onehot(ar[:, i]) - pi) for i in range(answers.shape[1])
            ]  # Â_i ∂log π(a_i)/∂z
            return [dp] + score

        return cotangents

    chunks = batch.chunks(micro_batch)
    if len(chunks) == 1:
        G, *lam = answer_state_vjp(model, batch, layer, cotangents_of(chunks[0]))  # (N, d)
    else:
        parts = [answer_state_vjp(model, batch.rows(c), layer, cotangents_of(c)) for c in chunks]
        G, *lam = [torch.cat([pt[k] for pt in parts]) for k in range(len(parts[0]))]
    G, lam = G.cpu().numpy(), np.stack([x.cpu().numpy() for x in lam], 1)  # (N, d), (N, n, d)
    entropy = float(-(torch.softmax(z, -1) * torch.log_softmax(z, -1)).sum(-1).mean())
    return _assemble(p, G, lam, r.numpy(), entropy, alpha=alpha, adv_kind=adv_kind)


def _assemble(p, G, lam, r, entropy, *, alpha, adv_kind, answer_length=1) -> dict:
    """The score's fields from per-prompt p (N,), G (N, d), costates λ̂ (N, n, d), rewards
    (N, n) and the policy's entropy, for an answer of ``answer_length`` tokens."""
    n = lam.shape[1]
    flat, paired = lam.reshape(-1, G.shape[1]), np.repeat(G, n, axis=0)  # (N n, d) each
    align_s, sigma_energy, lam_single = impact.usable_terms(flat, paired)
    lam_energy = float((flat**2).sum(-1).mean())  # E‖λ̂‖²
    s_group = impact.costate_scale_factor("group", n, answer_length)  # eq 1's 1/(n |o|)
    g2 = (G**2).sum(-1)  # ‖G_q‖², (N,)
    out = {
        "r_before": float(p.mean()),
        "lam_single": lam_single,
        "lam_single_group": impact.usable_terms(s_group * flat, paired)[2],
        "alignment_single": align_s,
        "cosine_single": impact.cosine(align_s, lam_energy, sigma_energy),
        "headroom_mc": float(np.mean(impact.headroom(r, alpha, axis=-1))),
        "entropy": entropy,
    }
    out.update(
        impact.score_from_prompts(
            p, g2, alpha=alpha, group_size=n, adv_kind=adv_kind, answer_length=answer_length
        )
    )
    out["usable_single"] = out["sigma_energy"] - lam_single
    out["p_gap_single"] = out["usable_single"] * out["headroom"]
    out["prompt_p"], out["prompt_g2"] = p.tolist(), g2.tolist()
    return out


def _sequence_score(model, batch, *, alpha, group_size, layer, adv_kind, seed, checkpoint, mb):
    """:func:`checkpoint_score` for an answer of k > 1 tokens (:func:`vghlib.sequences.measure`)."""
    m = sequences.measure(
        model,
        batch,
        layer=layer,
        group_size=group_size,
        adv_kind=adv_kind,
        generator=torch.Generator().manual_seed(int(seed)),
        micro_batch=mb,
        checkpoint=checkpoint,
    )
    out = _assemble(
        m["p"].numpy(),
        m["g"].numpy(),
        m["lam"].numpy(),
        m["rewards"].numpy(),
        m["entropy"],
        alpha=alpha,
        adv_kind=adv_kind,
        answer_length=batch.answer_length,
    )
    out["sigma_now"] = float((m["g_now"] ** 2).sum(-1).mean())
    out["sigma_future"] = float((m["g_future"] ** 2).sum(-1).mean())
    return out


def predictors(
    summary,
    *,
    scale: str = "trajectory",
    lam: str = "single",
    alpha: float | None = None,
    group_size: int | None = None,
    adv_kind: str | None = None,
) -> dict[str, np.ndarray]:
    """Every predictor of the RL gain, one value per checkpoint of ``summary``, under one reading
    of the choices the paper leaves open.

    ``scale``: the costate's scale (:func:`vghlib.impact.costate_scale_factor`: ``"trajectory"``
    as eq 14 and Section 6, or ``"group"``, eq 1's 1/n). ``lam``: Λ from single samples
    (``"single"``, Section 6's recipe) or from the exact conditional mean (``"cond"``, eq 26).
    ``alpha``, ``group_size``, ``adv_kind`` (GRPO ``"grpo"``, Dr. GRPO ``"mean"``, RLOO
    ``"loo"``): the headroom's α and the advantages the score assumes; None takes the sweep's.
    The exact (``"cond"``) scores are recomputed from the per-prompt p and ‖G‖² for any of them;
    single-sample scores exist only for the sweep's own group size and advantage.

    Returns, by name: ``P_gap`` = S · H_α (eq 29); the scale-free ``alignment × H_α`` (eq 24 ×
    eq 28) and ``cos × H_α``; and the baselines ``R_before``, ``p(1 − p)``, ``H_α``, ``Σ``,
    ``pass@n`` = E_q[1 − (1 − p)^n] (a group of n holds a success: the "edge of competence" view
    of Zhang, Neubig and Yue, 2025) and ``entropy`` (the policy's entropy, Cui et al., 2025).
    """
    if lam not in LAMBDA_KINDS:
        raise ValueError(f"lam must be one of {LAMBDA_KINDS}, got {lam!r}")
    cfg = summary.config
    own = (cfg.grpo.group_size, cfg.grpo.adv_kind)
    n = cfg.grpo.group_size if group_size is None else int(group_size)
    kind = cfg.grpo.adv_kind if adv_kind is None else adv_kind
    alpha = cfg.alpha if alpha is None else impact.check_alpha(alpha)
    sc = summary.score
    P, G2 = sc["prompt_p"], sc["prompt_g2"]  # (C, N)
    k = cfg.task.answer_length
    exact = [
        impact.score_from_prompts(
            p, g2, alpha=alpha, group_size=n, adv_kind=kind, scale=scale, answer_length=k
        )
        for p, g2 in zip(P, G2)
    ]
    col = lambda k: np.array([e[k] for e in exact])  # noqa: E731
    h, sigma = col("headroom"), col("sigma_energy")
    if lam == "cond":
        p_gap, align_h, cos_h = col("p_gap_cond"), col("align_headroom"), col("cosine_headroom")
    else:
        if (n, kind) != own:
            raise ValueError(
                f"single-sample scores exist for the sweep's own advantages only (group size "
                f"{own[0]}, {own[1]!r}); got {n}, {kind!r}. Use lam='cond', or run a sweep "
                "with those settings."
            )
        lam_s = sc["lam_single" if scale == "trajectory" else "lam_single_group"]
        s = impact.costate_scale_factor(scale, n, k)
        p_gap = (sigma - lam_s) * h
        align_h = s * sc["alignment_single"] * h
        cos_h = sc["cosine_single"] * h
    return {
        "P_gap": p_gap,
        "alignment × H_α": align_h,
        "cos × H_α": cos_h,
        "R_before": summary.r_before,
        "p(1 − p)": (P * (1 - P)).mean(1),
        "H_α": h,
        "Σ": sigma,
        "pass@n": (1 - (1 - P) ** n).mean(1),
        "entropy": sc["entropy"],
    }


def in_range(summary, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Which checkpoints have ``low`` <= R_before <= ``high`` (a boolean mask): the whole
    trajectory by default, or without its hopeless (R_before < low) and saturated (> high) ends."""
    if not 0 <= low < high <= 1:
        raise ValueError(f"need 0 <= low < high <= 1, got {low}, {high}")
    return (summary.r_before >= low) & (summary.r_before <= high)


def predictor_table(
    summary,
    score: str = "p_gap_single",
    n_resamples: int = 2000,
    seed: int = 0,
    block: int | None = None,
) -> list[dict]:
    """The paper's two predictors of eq 29 (Section 6) and a sceptic's baselines, with uncertainty.

    ``summary``: a :class:`vghlib.results.Summary`; ``score``: which P_gap (``"p_gap_single"``, the
    paper's plug-in, or ``"p_gap_cond"``). Rows (``name``, ``target``, ``corr``: a
    :class:`vghlib.stats.Correlation`, ``paper``: the paper's value or None):

    * gain predictors, against the mean ΔR over budgets and seeds: P_gap (paper 0.60), and the
      baselines R_before, H_α, Σ and p(1 − p);
    * level predictors, against the mean R_after: z(R_before) + z(P_gap) (paper 0.73), and the
      baselines z(R_before) alone, z(R_before) + z(H_α), z(R_before) + z(p(1 − p)).

    ``block``: the checkpoints of one trajectory are not independent; with ``block`` the intervals
    resample runs of that many consecutive checkpoints (:func:`vghlib.stats.block_spearman`) and
    no p-value is given (a permutation test assumes exchangeable checkpoints).
    """
    sc, rb = summary.score, summary.r_before
    p_gap = sc[score]

    def corr(x, y):
        if block is None:
            return spearman(x, y, n_resamples, seed=seed)
        return block_spearman(x, y, block, n_resamples, seed=seed)

    gain_preds = [
        ("P_gap", p_gap, 0.60),
        ("R_before", rb, None),
        ("H_α", sc["headroom"], None),
        ("Σ", sc["sigma_energy"], None),
        ("p(1 − p)", sc["bernoulli_var"], None),
    ]
    level_preds = [
        ("z(R_before) + z(P_gap)", zscore(rb) + zscore(p_gap), 0.73),
        ("z(R_before)", zscore(rb), None),
        ("z(R_before) + z(H_α)", zscore(rb) + zscore(sc["headroom"]), None),
        ("z(R_before) + z(p(1 − p))", zscore(rb) + zscore(sc["bernoulli_var"]), None),
    ]
    rows = [
        {
            "name": n,
            "target": "mean ΔR",
            "paper": pv,
            "corr": corr(x, summary.mean_gain),
        }
        for n, x, pv in gain_preds
    ]
    rows += [
        {
            "name": n,
            "target": "mean R_after",
            "paper": pv,
            "corr": corr(x, summary.mean_r_after),
        }
        for n, x, pv in level_preds
    ]
    return rows


def score_table(summary, every: int = 1) -> Table:
    """The score's parts at every ``every``-th checkpoint of a sweep (eq 24-29): R_before, Σ, Λ
    and S from single samples and from the exact conditional mean, and the headroom H_α."""
    sc = summary.score
    rows = [
        (
            int(summary.steps[i]),
            summary.r_before[i],
            sc["sigma_energy"][i],
            sc["lam_single"][i],
            sc["lam_cond"][i],
            sc["usable_single"][i],
            sc["usable_cond"][i],
            sc["headroom"][i],
        )
        for i in range(0, len(summary.names), every)
    ]
    return numbers(
        ["step", "R_before", "Σ", "Λ, 1 sample", "Λ, exact", "S, 1 sample", "S, exact", "H_α"],
        rows,
        ["d", ".3f", ".2e", ".2e", ".2e", "+.2e", "+.2e", ".3f"],
        labels=0,
    )


def predictor_report(
    runs,
    scores: dict,
    *,
    only: dict | None = None,
    paper_only: bool = False,
    n_resamples: int = 2000,
    seed: int = 0,
    block: int | None = None,
) -> Table:
    """:func:`predictor_table` for one sweep or several side by side, as a :class:`Table`.

    ``runs``: a :class:`vghlib.results.Summary`, or ``{label: Summary}`` (one column each, the
    correlation as ρ [95% CI]). ``scores``: ``{score: label}``, one section per P_gap variant
    (``"p_gap_single"``, ``"p_gap_cond"``), headed ``P_gap with <label>``. ``only``:
    ``{score: [predictor names]}`` keeps those rows of that section; ``paper_only`` keeps the
    rows the paper reports a value for. One run has the columns ρ, its 95% interval, the
    permutation p-value and n; with ``block`` (:func:`predictor_table`) the interval resamples
    blocks and there is no p-value. A notebook shows it with ``display(...)``.
    """
    one = not isinstance(runs, dict)
    runs = {"": runs} if one else runs
    columns = ["predictor", "target", "paper"]
    if one:
        columns += ["ρ", "95% interval"] + ([] if block else ["p"]) + ["n"]
    else:
        columns += [f"{k}: ρ [95% CI]" for k in runs]
    rows = []
    for score, label in scores.items():
        rows.append(Section(f"P_gap with {label}"))
        found = [predictor_table(s, score, n_resamples, seed, block) for s in runs.values()]
        keep = (only or {}).get(score)
        for i, r in enumerate(found[0]):
            if (keep is not None and r["name"] not in keep) or (paper_only and r["paper"] is None):
                continue
            paper = "" if r["paper"] is None else f"{r['paper']:.2f}"
            corr = [t[i]["corr"] for t in found]
            if one:
                c = corr[0]
                cells = [f"{c.rho:+.2f}", f"[{c.ci[0]:+.2f}, {c.ci[1]:+.2f}]"]
                cells += [] if block else [f"{c.p_value:.3f}"]
                cells += [str(c.n)]
            else:
                cells = [f"{c.rho:+.2f} [{c.ci[0]:+.2f}, {c.ci[1]:+.2f}]" for c in corr]
            rows.append((r["name"], r["target"], paper, *cells))
    return Table(columns, rows, align="llr" + "r" * (len(columns) - 3))


def print_predictor_table(runs, scores: dict, **kwargs) -> None:
    """Print :func:`predictor_report` as text (a terminal; a notebook displays the table)."""
    print(predictor_report(runs, scores, **kwargs).text())
