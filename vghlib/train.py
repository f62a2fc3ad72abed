"""GRPO on a causal language model for a one-token-answer task, through ``vghlib.grpo``.

Reference: Asadulaev et al., arXiv 2605.21654, eq 1 and Section 6 (GRPO from each pretraining
checkpoint for K ∈ {10, 20, 25, 30} updates); Shao et al. 2024 (GRPO); Liu et al. 2025 (Dr. GRPO).

One RL update (``K`` counts them, as the paper does):

1. draw ``prompts_per_step`` prompts; sample ``group_size`` answers per prompt from π_θold;
2. per-sample rewards r_i (:func:`vghlib.tasks.per_sample_rewards`), advantages Â_i
   (:func:`vghlib.grpo.advantages`), and the old log-probabilities log π_θold(a_i | q), detached;
3. ``num_iterations`` optimizer steps (TRL's ``num_iterations``, μ in the GRPO paper) on the
   clipped surrogate :func:`vghlib.grpo.grpo_loss`. With μ = 1 the ratio is exactly 1 and the
   update is REINFORCE with group advantages; with μ > 1 the later steps see ratios ≠ 1 and clip.

The answer is a single token, so the n answers of a prompt share one forward pass: the prompt is
run once and its answer-position log-softmax is read at each sampled token. After every update
the exact reward R = E_q p_θ(y*|q) is measured on a fixed evaluation batch (never by sampling),
so a run of K updates records R_after at every budget K' ≤ K along the way.

Dr. GRPO is ``adv_kind="mean"`` (no division by the group std; TRL ``scale_rewards=False``) with
``loss_type="dr_grpo"`` (a constant normaliser).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch

from vghlib import grpo, sequences, tasks

__all__ = ["GRPOConfig", "RunRecord", "train_grpo", "answer_logprobs"]


@dataclass(frozen=True)
class GRPOConfig:
    """Settings of one GRPO run; each default has its reason.

    ``group_size`` n: answers per prompt (TRL ``num_generations``); 8 gives every prompt with
    0 < p < 1 a fair chance of a mixed group. ``prompts_per_step``: prompts per update; 16 × 8 =
    128 samples per update is small enough for a laptop. ``num_iterations`` μ: optimizer steps
    per sampled batch (TRL default 1). ``learning_rate``: Adam; 3e-4 moves the laptop trajectory's
    middle checkpoints within K = 10..30 updates, while 1e-3 already makes the first Adam step
    (about lr per weight, whatever the gradient's size) drop R on the later checkpoints.
    ``clip_eps`` ε (TRL ``epsilon``) and ``clip_eps_high`` (TRL ``epsilon_high``; None:
    symmetric). ``kl_coef`` β (TRL ``beta``, default 0.0 as in TRL). ``adv_kind``, ``loss_type``:
    see :mod:`vghlib.grpo`. ``reward_kind``: see :func:`vghlib.tasks.per_sample_rewards`.
    """

    group_size: int = 8
    prompts_per_step: int = 16
    num_iterations: int = 1
    learning_rate: float = 3e-4
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    kl_coef: float = 0.0
    adv_kind: str = "grpo"
    loss_type: str = "grpo"
    reward_kind: str = "indicator"
    temperature: float = 1.0

    def __post_init__(self):
        if not isinstance(self.group_size, int) or self.group_size < 2:
            raise ValueError(
                f"group_size must be an integer >= 2, got {self.group_size!r}: GRPO "
                "compares the answers of a group, and a group of one has advantage 0"
            )
        if self.prompts_per_step < 1 or self.num_iterations < 1:
            raise ValueError("prompts_per_step and num_iterations must be >= 1")
        if not (math.isfinite(self.learning_rate) and self.learning_rate >= 0):
            raise ValueError(
                f"learning_rate must be a finite number >= 0, got {self.learning_rate}"
            )
        if self.adv_kind not in grpo.ADVANTAGE_KINDS or self.adv_kind == "baseline":
            raise ValueError(
                f"adv_kind must be one of {[k for k in grpo.ADVANTAGE_KINDS if k != 'baseline']}"
            )
        if self.loss_type not in grpo.LOSS_TYPES:
            raise ValueError(f"unknown loss_type {self.loss_type!r}; use one of {grpo.LOSS_TYPES}")
        if self.reward_kind not in tasks.REWARD_KINDS:
            raise ValueError(
                f"unknown reward_kind {self.reward_kind!r}; use one of {tasks.REWARD_KINDS}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunRecord:
    """What one run recorded. ``r_exact[k]`` is E_q p(y*|q) on the evaluation batch after k
    updates (index 0: before RL; None where the run was told not to measure); ``r_sampled[k]``
    the mean sampled reward of update k + 1; ``clip_frac[k]`` and ``kl[k]`` the diagnostics of
    its last optimizer step."""

    r_exact: list = field(default_factory=list)
    r_sampled: list = field(default_factory=list)
    clip_frac: list = field(default_factory=list)
    kl: list = field(default_factory=list)

    def r_after(self, budget: int) -> float:
        """R_after(K) for K = ``budget`` updates."""
        if not 0 <= budget < len(self.r_exact):
            raise ValueError(
                f"budget {budget} was not run: this run has {len(self.r_exact) - 1} updates"
            )
        if self.r_exact[budget] is None:
            raise ValueError(f"R after {budget} updates was not measured (see record_at)")
        return self.r_exact[budget]


def answer_logprobs(logits: torch.Tensor, answers: torch.Tensor, temperature: float = 1.0):
    """log π(a_i | q) of sampled answer tokens: logits ``(N, V)``, answers ``(N, n)`` -> ``(N, n)``.

    As in TRL (and :func:`vghlib.grpo.token_logprobs`), logits are divided by the sampling
    temperature before the log-softmax.
    """
    return grpo.token_logprobs(
        logits[:, None, :].expand(-1, answers.shape[1], -1), answers, temperature
    )


def train_grpo(
    model,
    train_batch: tasks.TaskBatch,
    eval_batch: tasks.TaskBatch,
    config: GRPOConfig,
    updates: int,
    seed: int = 0,
    checkpoint=None,
    progress=None,
    record_at=None,
    micro_batch: int | None = None,
) -> RunRecord:
    """Run ``updates`` GRPO updates (eq 1) on ``model`` in place and record the reward after each.

    ``train_batch``: a pool of prompts; each update draws ``config.prompts_per_step`` of them
    (without replacement within the update) with a generator seeded by ``seed``, which also drives
    the answer sampling, so a run is a function of (checkpoint, config, seed). ``eval_batch``:
    the fixed prompts on which R = E_q p(y*|q) is measured exactly. ``checkpoint`` labels error
    messages (e.g. a NaN reward names it and the prompt); ``progress`` is an optional callable
    ``progress(k)`` called after update k. ``record_at``: the update counts after which R is
    measured (None: after every update); measuring costs a forward pass over ``eval_batch``.
    ``micro_batch``: at most this many prompts per forward pass (None: all at once). The loss of
    a one-token answer is a mean over samples under every ``loss_type``, so a micro-batch's loss
    weighted by its share of the samples, accumulated over micro-batches, has the same gradient
    up to rounding; memory then scales with ``micro_batch``, not ``prompts_per_step``.
    """
    if micro_batch is not None and (not isinstance(micro_batch, int) or micro_batch < 1):
        raise ValueError(f"micro_batch must be a positive int or None, got {micro_batch!r}")
    if not isinstance(updates, int) or updates < 0:
        raise ValueError(f"updates must be a non-negative int, got {updates!r}")
    if config.prompts_per_step > len(train_batch):
        raise ValueError(
            f"prompts_per_step={config.prompts_per_step} exceeds the {len(train_batch)} "
            "training prompts; draw a larger pool"
        )
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    ref = None
    if config.kl_coef:
        ref = copy.deepcopy(model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
    rec = RunRecord()
    model.eval()  # no dropout: the policy that samples is the policy that is scored

    eval_d = eval_batch.to(device)

    wanted = None if record_at is None else {0, *record_at}

    def measure():
        if wanted is not None and len(rec.r_exact) not in wanted:
            rec.r_exact.append(None)
            return
        with torch.no_grad():
            if eval_d.answer_length == 1:
                z = tasks.answer_logits(model, eval_d, micro_batch)
            else:
                z = tasks.continuation_logits(model, eval_d, eval_d.target_ids, micro_batch)
            rec.r_exact.append(float(tasks.exact_reward(z, eval_d, checkpoint).double().mean()))

    measure()
    if train_batch.answer_length > 1:
        for k in range(updates):
            _sequence_update(model, opt, ref, train_batch, config, g, device, micro_batch, rec)
            measure()
            if progress is not None:
                progress(k + 1)
        return rec
    for k in range(updates):
        rows = torch.randperm(len(train_batch), generator=g)[: config.prompts_per_step]
        with torch.no_grad():
            sub = train_batch.rows(rows)
            z_old = tasks.answer_logits(model, sub.to(device), micro_batch)  # (N, V)
            z_old = z_old.double().cpu()  # sample on the CPU: one generator on any device
            answers = tasks.sample_answers(
                z_old,
                sub,
                config.group_size,
                generator=g,
                temperature=config.temperature,
                checkpoint=checkpoint,
            )
            r = tasks.per_sample_rewards(answers, z_old, sub, config.reward_kind, checkpoint)
            adv = grpo.advantages(r, config.adv_kind)  # (N, n)
            old_logp = answer_logprobs(z_old, answers, config.temperature)  # (N, n)
            ref_logp = None
            if ref is not None:
                ref_logp = answer_logprobs(
                    tasks.answer_logits(ref, sub.to(device)), answers.to(device), config.temperature
                ).reshape(-1, 1)
        answers_d = answers.to(device)
        sub = sub.to(device)
        mask = torch.ones(answers.numel(), 1, device=device)  # one token
        N = len(sub)
        chunks = sub.chunks(micro_batch)
        for _ in range(config.num_iterations):
            opt.zero_grad(set_to_none=True)
            info = {"clip_frac": 0.0, "kl": 0.0}
            for c in chunks:
                part = sub if len(chunks) == 1 else sub.rows(c)
                z = tasks.answer_logits(model, part)
                logp = answer_logprobs(z, answers_d[c], config.temperature).reshape(-1, 1)
                loss, inf = grpo.grpo_loss(
                    logp,
                    old_logp[c].reshape(-1, 1).to(logp),
                    adv[c].reshape(-1).to(logp),
                    mask[: logp.shape[0]].to(logp),
                    clip_eps=config.clip_eps,
                    clip_eps_high=config.clip_eps_high,
                    kl_coef=config.kl_coef,
                    ref_logp=None
                    if ref_logp is None
                    else ref_logp.reshape(N, -1)[c.to(ref_logp.device)].reshape(-1, 1),
                    loss_type=config.loss_type,
                    max_completion_length=1,
                )
                if len(chunks) == 1:  # the whole batch: exactly the unchunked loss
                    loss.backward()
                    info = inf
                else:  # a share len(c)/N of the samples
                    (loss * (len(c) / N)).backward()
                    for k in info:
                        info[k] += float(inf[k]) * len(c) / N
            opt.step()
            # Under torch.autocast, each weight's low-precision copy is cached until the outermost
            # autocast context exits: without this, every later forward pass of a run inside one
            # context would read the weights as they were before the first step.
            torch.clear_autocast_cache()
        rec.r_sampled.append(float((answers == sub.target_ids.cpu()[:, None]).double().mean()))
        rec.clip_frac.append(info["clip_frac"])
        rec.kl.append(info["kl"])
        measure()
        if progress is not None:
            progress(k + 1)
    return rec


def _sequence_update(model, opt, ref, train_batch, config, g, device, micro_batch, rec) -> None:
    """One GRPO update (eq 1) with answers of k > 1 tokens: sample a group of k-token answers per
    prompt (:func:`vghlib.sequences.sample_answers`), reward each whole answer 0/1, and take
    ``num_iterations`` steps on the clipped surrogate over every token (mask 1 everywhere: every
    answer has k tokens, so ``max_completion_length`` = k)."""
    rows = torch.randperm(len(train_batch), generator=g)[: config.prompts_per_step]
    sub = train_batch.rows(rows).to(device)
    n, N = config.group_size, len(sub)
    answers = sequences.sample_answers(
        model, sub, n, g, config.temperature, micro_batch
    )  # (N, n, k) on the CPU
    k = answers.shape[2]
    hit = sequences.answer_rewards(answers, sub)  # (N, n): 1 for a whole right answer
    r = hit
    if config.reward_kind != "indicator":  # as tasks.per_sample_rewards, with p(y*|q) exact
        with torch.no_grad():
            z = tasks.continuation_logits(model, sub, sub.target_ids, micro_batch)
            p = tasks.exact_reward(z.double(), sub).cpu()[:, None]  # (N, 1)
        r = p.expand_as(hit).clone() if config.reward_kind == "prob" else hit - p
    adv = grpo.advantages(r, config.adv_kind)  # (N, n)
    answers_d = answers.to(device)
    ref_logp = None
    if ref is not None:
        with torch.no_grad():
            ref_logp = sequences.answer_logprobs(ref, sub, answers_d, config.temperature)
    chunks = sub.chunks(micro_batch)
    old = [None] * len(chunks)
    for _ in range(config.num_iterations):
        opt.zero_grad(set_to_none=True)
        info = {"clip_frac": 0.0, "kl": 0.0}
        for j, c in enumerate(chunks):
            part = sub if len(chunks) == 1 else sub.rows(c)
            logp = sequences.answer_logprobs(model, part, answers_d[c], config.temperature)
            if old[j] is None:  # the sampling policy: the first iteration's own log-probs
                old[j] = logp.detach()
            loss, inf = grpo.grpo_loss(
                logp.reshape(-1, k),
                old[j].reshape(-1, k),
                adv[c].reshape(-1).to(logp),
                torch.ones(logp.shape[0] * n, k, dtype=logp.dtype, device=logp.device),
                clip_eps=config.clip_eps,
                clip_eps_high=config.clip_eps_high,
                kl_coef=config.kl_coef,
                ref_logp=None if ref_logp is None else ref_logp[c.to(device)].reshape(-1, k),
                loss_type=config.loss_type,
                max_completion_length=k,
            )
            (loss * (len(c) / N)).backward()
            for key in info:
                info[key] += float(inf[key]) * len(c) / N
        opt.step()
        torch.clear_autocast_cache()  # see train_grpo
    rec.r_sampled.append(float(hit.mean()))
    rec.clip_frac.append(info["clip_frac"])
    rec.kl.append(info["kl"])
