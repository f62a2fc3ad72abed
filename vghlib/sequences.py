"""Answers of several tokens: sampling them, their log-probabilities, and the costates of a group at
the state every sample shares, where credit for the later tokens arrives through attention.

Reference: Asadulaev et al., arXiv 2605.21654, eq 1 (GRPO over sampled completions), eq 13–14
(the empirical costate λ̂ of a sampled trajectory), eq 24–26 (alignment, Σ and Λ); the book's
Part IV, "An answer of several tokens".

The task is :class:`vghlib.tasks.LabelCopyTask` with ``answer_length`` k > 1: copy the k labels
written after the marker, in order; the reward is 1 when the whole answer is right and 0 otherwise,
so R(θ; q) = p(y*|q) = Π_t p(y*_t | q, y*_<t) (:func:`vghlib.tasks.exact_reward`).

**The state.** The score reads h_q, the layer-l state at the first answer position (the prompt's
last position). It is the one state every sample of a group shares. Below the last layer, h_q
reaches the later answer tokens only through attention: the positions that predict o_2, ..., o_k
read it. So the value gradient G_q = ∂p(y*|q)/∂h_q has two parts,

    G_q = p(y*_{>1} | q, y*_1) ∂p(y*_1|q)/∂h_q  +  p(y*_1|q) ∂p(y*_{>1} | q, y*_1)/∂h_q,

the credit for the first token and the credit that attention carries back from the later ones
(``g_now`` and ``g_future`` of :func:`measure`). At the last layer the second part is 0: its state
at one position feeds only that position's logits.

**The conditional mean.** The advantage of a sample depends only on its own reward r and on the
successes k' ~ Binomial(n − 1, p) of the other n − 1 samples, so with A_r = E_{k'} Â(r, k')
(:func:`vghlib.impact.group_advantage_means`)

    E[λ̂ | h_q] = Σ_o π(o|q) A_{r(o)} ∇ log π(o|q) = (A_1 − A_0) ∇ p(y*|q) = c(p, n) G_q,

because Σ_o ∇π(o|q) = 0: the closed form of a one-token answer
(:func:`vghlib.impact.grpo_costate_scale`) holds for any answer length. Two functions compute the
left side without assuming it: :func:`conditional_costate` enumerates all V^k answers (exact;
small V and k), and :func:`conditional_costate_mc` averages the costates of sampled groups
(unbiased, error O(1/√M) for M groups), for when V^k is too large. The tests hold both to the
closed form.
"""

from __future__ import annotations

import itertools

import torch

from vghlib import grpo, impact, models, tasks

__all__ = [
    "sample_answers",
    "answer_rewards",
    "answer_logprobs",
    "measure",
    "conditional_costate",
    "conditional_costate_mc",
]


def _repeat(batch: tasks.TaskBatch, m: int) -> tasks.TaskBatch:
    """Each prompt of ``batch`` ``m`` times in a row (N m rows)."""
    return batch.rows(torch.arange(len(batch)).repeat_interleave(m))


def sample_answers(
    model,
    batch: tasks.TaskBatch,
    group_size: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    micro_batch: int | None = None,
    checkpoint=None,
) -> torch.Tensor:
    """n = ``group_size`` answers of k = ``batch.answer_length`` tokens per prompt, each token
    drawn from the whole next-token distribution softmax(z / temperature): ``(N, n, k)``, on the
    CPU.

    The first tokens are drawn as :func:`vghlib.tasks.sample_answers` draws a one-token answer (one
    call, the same generator), so with k = 1 the two agree draw for draw. Each later token is drawn
    after the tokens before it, one forward pass per position.
    """
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
    k = batch.answer_length
    with torch.no_grad():
        z0 = tasks.answer_logits(model, batch, micro_batch).double().cpu()  # (N, V)
        if group_size == 1:
            p0 = torch.softmax(z0 / temperature, -1)
            first = torch.multinomial(p0, 1, generator=generator)
        else:
            first = tasks.sample_answers(
                z0, _one_token(batch), group_size, generator, temperature, checkpoint
            )  # (N, n)
        out = first.reshape(-1, 1)  # (N n, 1)
        rows = _repeat(batch, group_size)
        for t in range(1, k):
            dummy = torch.zeros(len(rows), 1, dtype=torch.long)
            z = tasks.continuation_logits(model, rows, torch.cat([out, dummy], 1), micro_batch)
            p = torch.softmax(z[:, t].double().cpu() / temperature, -1)  # (N n, V)
            out = torch.cat([out, torch.multinomial(p, 1, generator=generator)], 1)
    return out.reshape(len(batch), group_size, k)


def _one_token(batch: tasks.TaskBatch) -> tasks.TaskBatch:
    """The same prompts with only the first answer token as the target."""
    if batch.answer_length == 1:
        return batch
    return tasks.TaskBatch(
        batch.input_ids,
        batch.attention_mask,
        batch.position_ids,
        batch.target[:, 0],
        batch.target_ids[:, 0],
        batch.label_ids,
        batch.texts,
    )


def _targets(batch: tasks.TaskBatch) -> torch.Tensor:
    """The target tokens as ``(N, k)``, for any answer length."""
    return batch.target_ids.reshape(len(batch), -1)


def answer_rewards(answers: torch.Tensor, batch: tasks.TaskBatch) -> torch.Tensor:
    """The verifiable 0/1 reward of each sampled answer ``(N, n, k)``: 1 when all k tokens are the
    target's, ``(N, n)`` float64. Its mean over samples estimates R(θ; q) = p(y*|q)."""
    y = _targets(batch).to(answers.device)
    if answers.dim() != 3 or answers.shape[0] != len(batch) or answers.shape[2] != y.shape[1]:
        raise ValueError(
            f"answers must have shape (N={len(batch)}, n, k={y.shape[1]}), got "
            f"{tuple(answers.shape)}"
        )
    return (answers == y[:, None, :]).all(-1).double()


def answer_logprobs(
    model,
    batch: tasks.TaskBatch,
    answers: torch.Tensor,
    temperature: float = 1.0,
    micro_batch: int | None = None,
    logits_out: list | None = None,
) -> torch.Tensor:
    """log π(o_{i,t} | q, o_{i,<t}) of every token of every answer ``(N, m, k)``: ``(N, m, k)``.

    One forward pass over the N m prompt-plus-answer rows (teacher forcing), with gradients when
    the caller has them on. Logits are divided by ``temperature`` as in TRL
    (:func:`vghlib.grpo.token_logprobs`). ``logits_out``: a list that receives the ``(N m, k, V)``
    logits, for callers that also want the entropy.
    """
    N, m, k = answers.shape
    rows = _repeat(batch, m)
    flat = answers.reshape(N * m, k)
    z = tasks.continuation_logits(model, rows, flat, micro_batch)  # (N m, k, V)
    if logits_out is not None:
        logits_out.append(z)
    return grpo.token_logprobs(z, flat.to(z.device), temperature).reshape(N, m, k)


def _state_grads(model, batch, layer, answers, weights, micro_batch=None):
    """Σ_t of the gradient of Σ_rows weights · log π(answer row) with respect to the layer state at
    the first answer position, one row each: ``(N m, d)`` float64; and the logits."""
    S = batch.input_ids.shape[1]
    with torch.enable_grad(), models.probe_hidden(model, [layer], zero=True) as got:
        zs = []
        logp = answer_logprobs(model, batch, answers, 1.0, None, zs)  # (N, m, k)
    (probe,) = got.probes.values()  # (N m, S + k − 1, d)
    w = weights.to(logp).reshape(logp.shape[:2])
    (g,) = torch.autograd.grad((w * logp.sum(-1)).sum(), probe)
    return g[:, S - 1].double(), zs[0].detach()


def measure(
    model,
    batch: tasks.TaskBatch,
    *,
    layer: int,
    group_size: int,
    adv_kind: str = "grpo",
    generator: torch.Generator | None = None,
    micro_batch: int | None = None,
    checkpoint=None,
) -> dict:
    """What the impact score needs of one checkpoint, for answers of any length, on matched
    trajectories: the exact p(y*|q), the value gradient and its two parts, a sampled group per
    prompt, its rewards, advantages and single-sample costates, at the layer-``layer`` state h_q
    of the first answer position.

    Returns tensors (float64, CPU): ``p`` (N,); ``g`` = ∂p(y*|q)/∂h_q, ``g_now`` (the first
    token's credit) and ``g_future`` (the later tokens' credit, carried by attention), each (N, d);
    ``answers`` (N, n, k); ``rewards`` and ``adv`` (N, n); ``lam`` (N, n, d), the costates
    λ̂_i = Â_i ∂log π(o_i|q)/∂h_q (eq 14 with a group advantage); ``entropy``, the policy's mean
    next-token entropy along the sampled answers (nats, a float).
    ``micro_batch``: at most this many prompts per pass; prompts are independent rows.
    """
    k = batch.answer_length
    L = len(models.decoder_layers(model)) - 1
    models.layer_index(layer, L)  # fail before any work
    answers = sample_answers(
        model, batch, group_size, generator, micro_batch=micro_batch, checkpoint=checkpoint
    )
    rewards = answer_rewards(answers, batch)  # (N, n)
    adv = grpo.advantages(rewards, adv_kind)  # (N, n)
    parts: dict = {key: [] for key in ("p", "g", "g_now", "g_future", "lam", "entropy")}
    S = batch.input_ids.shape[1]
    for rows in batch.chunks(micro_batch):
        sub = batch if len(rows) == len(batch) else batch.rows(rows)
        y = _targets(sub)
        with torch.enable_grad(), models.probe_hidden(model, [layer], zero=True) as got:
            z = tasks.continuation_logits(model, sub, y)  # (N, k, V)
        (probe,) = got.probes.values()
        logp = torch.log_softmax(z.double(), -1).gather(-1, y[..., None].to(z.device))[..., 0]
        first, rest = logp[:, 0].exp(), logp[:, 1:].sum(-1).exp()  # (N,) each
        p = first * rest
        _check_p(p, checkpoint)
        g_now, g_fut, g = (
            torch.autograd.grad(f.sum(), probe, retain_graph=i < 2)[0][:, S - 1].double()
            for i, f in enumerate((first * rest.detach(), first.detach() * rest, p))
        )
        if k == 1:
            g_fut = torch.zeros_like(g_fut)  # nothing after the first token
        a = answers[rows]
        lam, zs = _state_grads(model, sub, layer, a, adv[rows], micro_batch=None)
        pi = torch.softmax(zs.double(), -1)
        ent = -(pi * torch.log_softmax(zs.double(), -1)).sum(-1)  # (N n, k)
        for key, v in (
            ("p", p.detach()),
            ("g", g),
            ("g_now", g_now),
            ("g_future", g_fut),
            ("lam", lam.reshape(len(sub), group_size, -1)),
            ("entropy", ent),
        ):
            parts[key].append(v.cpu())
    out = {key: torch.cat(v) for key, v in parts.items()}
    out["entropy"] = float(out["entropy"].mean())
    out.update(answers=answers, rewards=rewards, adv=adv)
    return out


def _check_p(p, checkpoint):
    bad = (~torch.isfinite(p)).nonzero()
    if bad.numel():
        raise ValueError(
            f"checkpoint {checkpoint!r}: non-finite p(y*|q) at prompt {int(bad[0, 0])}; check "
            "the checkpoint's weights and dtype"
        )


def conditional_costate(
    model,
    batch: tasks.TaskBatch,
    *,
    layer: int,
    group_size: int,
    adv_kind: str = "grpo",
    chunk: int = 4096,
) -> torch.Tensor:
    """E[λ̂ | h_q] by enumeration: Σ_o π(o|q) A_{r(o)} ∇_{h_q} log π(o|q) over every answer o in
    V^k, ``(N, d)`` float64 (eq 14, with the group's advantage in expectation).

    A_r is the expected advantage of a sample with reward r given p(y*|q)
    (:func:`vghlib.impact.group_advantage_means`). Exact, at the cost of N V^k forward rows (run
    ``chunk`` rows at a time): for a small vocabulary and k <= 2 or 3. Nothing in it assumes the
    closed form c(p, n) G, which the tests compare it with.
    """
    V = models_vocab(model)
    k = batch.answer_length
    if V**k * len(batch) > 50_000_000:
        raise ValueError(
            f"enumerating {V}^{k} answers for {len(batch)} prompts is too much; use "
            "conditional_costate_mc"
        )
    every = torch.tensor(list(itertools.product(range(V), repeat=k)), dtype=torch.long)  # (V^k, k)
    out = []
    for q in range(len(batch)):
        one = batch.rows(torch.tensor([q]))
        with torch.no_grad():
            z = tasks.continuation_logits(model, one, _targets(one))
            p = float(tasks.exact_reward(z.double(), one))
        a0, a1 = impact.group_advantage_means(p, group_size, adv_kind)
        y = _targets(one)[0]
        total = 0.0
        for part in every.split(chunk):
            with torch.no_grad():
                lp = answer_logprobs(model, one, part[None]).sum(-1)[0].double()  # (rows,)
            r = (part == y).all(-1).double()
            w = lp.exp() * torch.where(r > 0, a1, a0)  # π(o) A_r(o)
            g, _ = _state_grads(model, one, layer, part[None], w[None])
            total = total + g.sum(0)
        out.append(total)
    return torch.stack(out)


def models_vocab(model) -> int:
    """The size of the model's output vocabulary (what a sampled token ranges over)."""
    return int(model.get_output_embeddings().weight.shape[0])


def conditional_costate_mc(
    model,
    batch: tasks.TaskBatch,
    *,
    layer: int,
    group_size: int,
    n_groups: int,
    adv_kind: str = "grpo",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """E[λ̂ | h_q] estimated from ``n_groups`` = M sampled groups per prompt: the mean of the M n
    costates λ̂_i = Â_i ∇ log π(o_i|q), each Â_i from its own group (eq 1 and eq 14).

    Unbiased for every M, with standard error O(1/√M), so it converges to
    :func:`conditional_costate` as M grows: use it when V^k answers are too many to enumerate.
    Returns the mean ``(N, d)`` and the standard error of each entry ``(N, d)`` (over the M group
    means, which are independent).
    """
    if not isinstance(n_groups, int) or n_groups < 2:
        raise ValueError(f"n_groups must be an integer >= 2 (for a standard error), got {n_groups}")
    N, n = len(batch), group_size
    answers = sample_answers(model, batch, n_groups * n, generator)  # (N, M n, k)
    r = answer_rewards(answers, batch).reshape(N, n_groups, n)
    adv = grpo.advantages(r, adv_kind).reshape(N, n_groups * n)
    lam, _ = _state_grads(model, batch, layer, answers, adv)  # (N M n, d)
    per_group = lam.reshape(N, n_groups, n, -1).mean(2)  # (N, M, d)
    return per_group.mean(1), per_group.std(1, unbiased=True) / n_groups**0.5
