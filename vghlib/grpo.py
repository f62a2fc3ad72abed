"""GRPO as pure functions: group advantages, the clipped surrogate with a k3 KL penalty.

Reference: Asadulaev et al., arXiv 2605.21654, eq 1; Shao et al. 2024 (GRPO); Schulman et al.
2017 (PPO). Conventions follow TRL and verl where they agree, and are named where they differ.

Notation (book/notation.md): the group size n is ``group_size`` (the paper also writes it G, which
this library keeps for the value gradient); ξ_num is ``std_eps``; ε is ``clip_eps``; β is
``kl_coef``; ρ is ``ratio``; Â is ``adv``.
"""

from __future__ import annotations

import numpy as np
import torch

ADVANTAGE_KINDS = ("grpo", "mean", "loo", "baseline", "none")


def _refuse(
    func: str, name: str, x: torch.Tensor, bad: torch.Tensor, what: str, fix: str, where: str = ""
):
    """Raise ValueError if ``bad`` (a boolean tensor shaped like ``x``) has a True entry: names
    ``func``'s argument ``name``, how many entries are ``what`` (``where``), the first, and
    ``fix``."""
    n = int(bad.sum())
    if n:
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
        entries = "entry" if n == 1 else "entries"
        raise ValueError(
            f"{func}: {name} holds {n} {what} {entries}{where} (the first at index {first}, "
            f"shape {tuple(x.shape)}); {fix}"
        )


def advantages(
    rewards: torch.Tensor,
    kind: str = "grpo",
    std_eps: float = 1e-4,
    baseline: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Per-completion advantages Â_i of eq 1 from rewards of shape ``(..., n)``, group on the last
    axis.

    kind:
      * ``"grpo"``: (r_i − mean(r)) / (std(r) + ξ_num) with the unbiased (n − 1) std, as in TRL.
        A group of equal rewards gets Â = 0 exactly, never NaN.
      * ``"mean"``: r_i − mean(r). The mean includes r_i itself, so E[Â_i ∇log π_i] is the policy
        gradient times (1 − 1/n) (:func:`group_mean_scale`).
      * ``"loo"``: r_i − mean_{j≠i} r_j, the leave-one-out baseline: unbiased.
      * ``"baseline"``: r_i − b with a sample-independent ``baseline`` b: unbiased.
      * ``"none"``: r_i (REINFORCE without a baseline).
    """
    r = torch.as_tensor(rewards)
    if not torch.is_floating_point(r):
        r = r.to(torch.get_default_dtype())
    if kind not in ADVANTAGE_KINDS:
        raise ValueError(f"unknown advantage kind {kind!r}; choose one of {ADVANTAGE_KINDS}")
    if not torch.isfinite(r).all():
        raise ValueError("rewards contain NaN or inf; drop or repair those completions first")
    n = r.shape[-1]
    if kind in ("grpo", "loo") and n < 2:
        raise ValueError(f"advantage kind {kind!r} needs a group of at least 2, got {n}")
    if kind == "none":
        return r.clone()
    if kind == "baseline":
        if baseline is None:
            raise ValueError(
                "kind='baseline' needs baseline=<a number or tensor independent of the samples>"
            )
        return r - torch.as_tensor(baseline, dtype=r.dtype)
    mean = r.mean(dim=-1, keepdim=True)
    if kind == "mean":
        return r - mean
    if kind == "loo":
        return r - (r.sum(dim=-1, keepdim=True) - r) / (n - 1)
    std = r.std(dim=-1, unbiased=True, keepdim=True)
    return (r - mean) / (std + std_eps)


def group_mean_scale(group_size: int) -> float:
    """E[Â_i ∇log π_i] / ∇J when Â_i = r_i − mean of its group (the mean includes r_i): 1 − 1/n.

    Write Â_i = (1 − 1/n) r_i − (1/n) Σ_{j≠i} r_j: the other samples are independent of sample i,
    so their share has zero expected score, and the estimator is (1 − 1/n) times REINFORCE. The
    same factor scales E[λ̂] / G for token costates (Part III, "The empirical costate is an unbiased
    value gradient") and the LQ policy gradient of Part II.
    """
    n = int(group_size)
    if n < 2:
        raise ValueError("a group-mean baseline needs a group of at least 2")
    return 1.0 - 1.0 / n


def zero_advantage_probability(p, group_size: int):
    """P(a group of n 0/1 rewards is all equal) = p^n + (1 − p)^n: such a group has Â = 0 exactly.

    Let p be the success probability of one completion and n = ``group_size``. With the "grpo"
    and "mean" advantages (eq 1) a group of equal rewards contributes no gradient at all, so this
    is the fraction of prompts an update wastes.
    """
    n = int(group_size)
    if n < 1:
        raise ValueError("group_size must be >= 1")
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("p must hold probabilities in [0, 1]")
    out = p**n + (1 - p) ** n
    return float(out) if out.ndim == 0 else out


def token_logprobs(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """ℓ_t = log π(o_t | s_t) of eq 13 for each position: logits ``(B, T, V)``, tokens ``(B, T)`` ->
    ``(B, T)``.

    As in TRL, logits are divided by the sampling temperature before the log-softmax.
    """
    if logits.shape[:-1] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and tokens {tuple(tokens.shape)} disagree")
    top = logits.detach().amax(-1)  # (B, T): NaN or +inf if a row holds one (no (B, T, V) copy)
    if (torch.isnan(top) | torch.isposinf(top)).any():
        _refuse(
            "token_logprobs",
            "logits",
            logits,
            torch.isnan(logits) | torch.isposinf(logits),  # -inf (a masked token) is valid
            "NaN or +inf",
            "the log-probabilities would be NaN. Check the model's weights and dtype (a float16 "
            "overflow?) and the forward pass that produced them.",
        )
    logp = torch.log_softmax(logits / temperature, dim=-1)  # (B, T, V)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (B, T)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL: exp(log π_ref − log π) − (log π_ref − log π) − 1 ≥ 0.

    Sampled from π_θ, its value estimates KL(π_θ‖π_ref), but its expected gradient with respect
    to θ is the gradient of the forward KL(π_ref‖π_θ).

    Refuses NaN in either argument (a padding position is the caller's to mask out first).
    """
    for name, x in (("logp", logp), ("ref_logp", ref_logp)):
        _refuse(
            "k3_kl",
            name,
            x,
            torch.isnan(x),
            "NaN",
            "the KL estimate would be NaN. Find where the NaN log-probabilities come from "
            "(NaN logits?), and replace padding positions by 0 before calling k3_kl.",
        )
    d = ref_logp - logp
    return torch.exp(d) - d - 1


LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "seq-mean-token-mean", "token-mean")


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    loss_type: str = "seq-mean-token-mean",
    clip_eps_high: float | None = None,
    max_completion_length: int | None = None,
) -> tuple[torch.Tensor, dict]:
    """The negative of the paper's eq 1 for one batch of completions, and diagnostics.

    Shapes: ``logp``, ``old_logp``, ``mask``, ``ref_logp``: ``(B, T)``; ``adv``: ``(B,)`` (one
    advantage per completion, held constant along it, as GRPO does).

    NaN or inf in ``adv``, or in ``logp``, ``old_logp``, ``ref_logp`` where ``mask`` is nonzero,
    raise ``ValueError`` (the loss would be NaN or inf). Where ``mask`` is 0 (padding) the
    log-probs may hold anything: they are replaced by 0 before any arithmetic, so they reach
    neither the loss, the diagnostics nor the gradient.

    Clipping: the ratio ρ is clipped to [1 − ε_low, 1 + ε_high] with ε_low = ``clip_eps`` (TRL
    ``epsilon``) and ε_high = ``clip_eps_high`` (TRL ``epsilon_high``; None means ε_low, the
    symmetric clip of eq 1; DAPO's "clip-higher" uses ε_high > ε_low). ``info["clip_frac"]`` is
    the fraction of tokens whose ratio lies outside [1 − ε_low, 1 + ε_high].

    loss_type (TRL's names first, then verl's):
      * ``"grpo"`` = ``"seq-mean-token-mean"``: mean over each completion's tokens, then over
        completions: the 1/G Σ_i 1/T_i Σ_t of eq 1.
      * ``"bnpo"`` = ``"token-mean"``: one mean over all tokens of the batch (TRL ``"bnpo"``, the
        token mean that TRL's ``"dapo"`` also uses on one process; verl ``token-mean``).
      * ``"dr_grpo"``: Σ over all tokens divided by the constant B · ``max_completion_length``
        (Dr. GRPO, Liu et al. 2025): no length normalisation per completion. Use it with
        ``advantages(kind="mean")`` (no std scaling; TRL ``scale_rewards=False``) for Dr. GRPO.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; use one of {LOSS_TYPES}")
    if loss_type == "dr_grpo" and not (max_completion_length and max_completion_length >= 1):
        raise ValueError(
            "loss_type='dr_grpo' divides by a constant: pass max_completion_length "
            "(the generation limit, TRL max_completion_length)"
        )
    if kl_coef and ref_logp is None:
        raise ValueError("kl_coef > 0 needs ref_logp, the reference policy's token log-probs")
    eps_low = clip_eps
    eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    if not (0 <= eps_low < 1 and eps_high >= 0):
        raise ValueError(
            f"need 0 <= clip_eps < 1 and clip_eps_high >= 0, got {eps_low}, {eps_high}"
        )
    counts = mask != 0  # (B, T): the positions that enter the loss
    _refuse(
        "grpo_loss",
        "adv",
        adv,
        ~torch.isfinite(adv),
        "NaN or inf",
        "the loss would be NaN. Compute advantages from finite rewards "
        "(vghlib.grpo.advantages refuses NaN rewards), or drop those completions.",
    )
    named = [("logp", logp), ("old_logp", old_logp)]
    for name, x in named + ([("ref_logp", ref_logp)] if ref_logp is not None else []):
        _refuse(
            "grpo_loss",
            name,
            x,
            ~torch.isfinite(x) & counts,
            "NaN or inf",
            "the loss would be NaN or inf. Find where they come "
            "from (NaN logits, or -inf for a token the policy cannot sample: another "
            "temperature or model?) and drop those completions; padding positions need mask 0.",
            where=" where mask is nonzero",
        )
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    logp = torch.where(counts, logp, zero)  # padding may hold NaN: keep it out of every sum
    old_logp = torch.where(counts, old_logp, zero.to(old_logp.dtype))
    if ref_logp is not None:
        ref_logp = torch.where(counts, ref_logp, zero.to(ref_logp.dtype))
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)  # ρ_{i,t}
    a = adv.unsqueeze(-1)  # (B, 1): constant along the completion
    surrogate = torch.minimum(ratio * a, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * a)
    per_token = -surrogate
    kl = k3_kl(logp, ref_logp) if ref_logp is not None else torch.zeros_like(logp)
    if kl_coef:
        per_token = per_token + kl_coef * kl
    if loss_type in ("grpo", "seq-mean-token-mean"):
        lengths = mask.sum(-1).clamp(min=1)
        loss = ((per_token * mask).sum(-1) / lengths).mean()
    elif loss_type in ("bnpo", "token-mean"):
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
    else:
        loss = (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)
    with torch.no_grad():
        clipped = ((ratio < 1 - eps_low) | (ratio > 1 + eps_high)).to(logp.dtype)
        info = {
            "clip_frac": float((clipped * mask).sum() / mask.sum().clamp(min=1)),
            "kl": float((kl * mask).sum() / mask.sum().clamp(min=1)),
            "ratio_mean": float((ratio * mask).sum() / mask.sum().clamp(min=1)),
        }
    return loss, info
