"""Token costates, per layer: the empirical λ̂ (eq 14), the relaxed λ^τ, and the value gradient G.

Reference: Asadulaev et al., arXiv 2605.21654, eq 13–15 (Definition 2), eq 19–20, A.6, A.9;
the findings page, "Eqs 14–15: at the final layer the recursion has no future term" (final-layer
states carry no future credit) and Part III, "The empirical costate is an unbiased value gradient".

Three objects, kept apart (book notation):

* ``value_grad`` G_t = ∂V_t/∂h_t: the exact gradient of the value V_t = E[R | prefix] with respect
  to a hidden state h_t = ``hidden[l][:, t]`` that the future policy reads. :func:`value_grad_exact`
  computes it by enumerating every continuation (small |V| and horizon);
  :func:`value_grad_pathwise` gives ∂R/∂h for a reward that is a differentiable function of the
  logits (the paper's §6 reward p(y*|q) is one).
* ``costate_hat`` λ̂_t = ∂/∂h_t Σ_{k≥t} Â_k ℓ_k (eq 14), with ℓ_k the log-probability of the
  sampled token and Â from ``vghlib.grpo.advantages``. Causality makes ∂ℓ_k/∂h_t = 0 for k < t, so
  λ̂ at *every* position and every requested layer is one gradient of Σ_k Â_k ℓ_k:
  :func:`costate_hat` does one forward and one backward pass, no loop over positions.
* ``costate_relaxed`` λ^τ_t = ∂R/∂h_t along a Gumbel-softmax (or straight-through) rollout at
  temperature τ, with the noise held fixed: the BPTT costate of the relaxed rollout.

Conventions: ``tokens`` ``(B, S)`` hold prompt and completion; position j's logits predict token
j + 1, so the state that emits completion token k (0-based) sits at position ``prompt_len-1+k``.
Costates are returned as ``{layer: tensor}``; layer l is ``hidden[l]`` of ``vghlib.models``.
Reward functions for sampled completions take one-hot rows ``(N, T, V)`` (float) and return
``(N,)``; on relaxed rows they must be an extension of the same reward (e.g. multilinear).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from vghlib.grpo import advantages
from vghlib.models import sample

MAX_ENUM = 2**16  # largest |V|^m that value_grad_exact enumerates by default


def check_layers(policy, layers) -> list:
    """Validate layer indices against ``policy.n_layers``; None means all layers 0..L."""
    L = policy.n_layers
    if layers is None:
        return list(range(L + 1))
    if isinstance(layers, int):
        layers = [layers]
    layers = list(layers)
    for l in layers:
        if not isinstance(l, int) or isinstance(l, bool):
            raise TypeError(f"layer indices must be ints, got {l!r}")
        if not -(L + 1) <= l <= L:
            raise ValueError(
                f"layer {l} out of range for a policy with L={L} blocks: use 0..{L} "
                f"(0 = embeddings, {L} = last block output) or -1 for the last"
            )
    return [l % (L + 1) for l in layers]


@torch.no_grad()
def capture_hidden(policy, inputs: torch.Tensor, layers=None) -> dict:
    """The residual streams ``{l: (B, S, d)}`` of one forward pass (no gradient).

    Layer l is ``hidden[l]`` of ``vghlib.models``: 0 the embeddings, l the output of block l, L
    the last block's output before the final norm. For a Hugging Face model wrap it first:
    ``capture_hidden(HFCausalLM(model), ids)``.
    """
    layers = check_layers(policy, layers)
    out = policy(inputs)
    return {l: out.hidden[l] for l in layers}


def _device(policy):
    return policy.embedding_matrix().device


def _zero_probes(policy, layers, shape, dtype):
    return {
        l: torch.zeros(
            *shape, policy.d_model, dtype=dtype, device=_device(policy), requires_grad=True
        )
        for l in layers
    }


def _dtype(policy):
    return policy.embedding_matrix().dtype


def completion_logp(logits: torch.Tensor, tokens: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """ℓ_k = log π(o_k | s_k) of each completion token: logits ``(B, S, V)`` ->
    ``(B, S - prompt_len)``."""
    if not 1 <= prompt_len < tokens.shape[1]:
        raise ValueError(
            f"prompt_len must be in 1..S-1 = {tokens.shape[1] - 1} (at least a BOS token)"
        )
    logp = torch.log_softmax(logits[:, prompt_len - 1 : -1], dim=-1)  # (B, T, V)
    return logp.gather(-1, tokens[:, prompt_len:, None]).squeeze(-1)  # (B, T)


def _adv_per_token(adv, B, T, dtype):
    adv = torch.as_tensor(adv, dtype=dtype)
    if adv.shape == (B,):
        return adv[:, None].expand(B, T)  # GRPO: one advantage held along the completion
    if adv.shape == (B, T):
        return adv
    raise ValueError(
        f"adv must have shape (B,)=({B},) or (B, T)=({B}, {T}), got {tuple(adv.shape)}"
    )


def costate_hat(policy, tokens: torch.Tensor, adv, layers=None, prompt_len: int = 1) -> dict:
    """Empirical costates λ̂ (eq 14) at all positions and layers, in one forward + one backward.

    Let Â_k be ``adv`` (shape (B,) for a per-completion advantage, or (B, T) per token) and
    ℓ_k the completion log-probabilities. Returns ``{l: (B, S, d)}`` with
    λ̂^{(l)}_j = ∂/∂h^{(l)}_j Σ_k Â_k ℓ_k; at positions j ≥ prompt_len − 1 this equals eq 14's
    Σ_{k ≥ t} because the model is causal. Advantages are treated as constants (detached), as
    in GRPO.
    """
    layers = check_layers(policy, layers)
    B, S = tokens.shape
    probes = _zero_probes(policy, layers, (B, S), _dtype(policy))
    out = policy(tokens, probes)
    logp = completion_logp(out.logits, tokens, prompt_len)  # (B, T)
    A = _adv_per_token(adv, B, logp.shape[1], logp.dtype).detach()
    grads = torch.autograd.grad((A * logp).sum(), [probes[l] for l in layers], allow_unused=True)
    return {
        l: (g if g is not None else torch.zeros_like(probes[l])).detach()
        for l, g in zip(layers, grads)
    }


def costate_split(policy, tokens: torch.Tensor, adv, layers=None, prompt_len: int = 1) -> dict:
    """Split λ̂ into its immediate and future parts, per layer (reference; one backward per
    position).

    immediate_j = Â_k ∂ℓ_k/∂h_j for the token k emitted at position j (eq 15's first term);
    future_j = λ̂_j − immediate_j = Σ_{k' > k} Â_{k'} ∂ℓ_{k'}/∂h_j (credit arriving from later
    positions). Returns ``{l: (total, immediate, future)}``, each ``(B, S, d)``; positions before
    ``prompt_len - 1`` have immediate = 0. At l = L the future part is exactly zero (findings page,
    "Eqs 14–15").
    """
    layers = check_layers(policy, layers)
    B, S = tokens.shape
    probes = _zero_probes(policy, layers, (B, S), _dtype(policy))
    out = policy(tokens, probes)
    logp = completion_logp(out.logits, tokens, prompt_len)
    A = _adv_per_token(adv, B, logp.shape[1], logp.dtype).detach()
    plist = [probes[l] for l in layers]
    total = torch.autograd.grad((A * logp).sum(), plist, retain_graph=True, allow_unused=True)
    imm = {
        l: torch.zeros(B, S, policy.d_model, dtype=logp.dtype, device=logp.device) for l in layers
    }
    for k in range(logp.shape[1]):  # one backward per completion token
        j = prompt_len - 1 + k
        g = torch.autograd.grad(
            (A[:, k] * logp[:, k]).sum(), plist, retain_graph=True, allow_unused=True
        )
        for l, gl in zip(layers, g):
            if gl is not None:
                imm[l][:, j] = gl[:, j]
    res = {}
    for l, t in zip(layers, total):
        t = torch.zeros_like(imm[l]) if t is None else t.detach()
        res[l] = (t, imm[l], t - imm[l])
    return res


def costate_hat_loop(policy, tokens: torch.Tensor, adv, layers=None, prompt_len: int = 1) -> dict:
    """λ̂ by eq 14 taken literally: for each t, differentiate Σ_{k≥t} Â_k ℓ_k (T backward passes).

    Slow reference for tests and the benchmark; equals :func:`costate_hat` at positions
    j ≥ prompt_len − 1 and is zero before them.
    """
    layers = check_layers(policy, layers)
    B, S = tokens.shape
    probes = _zero_probes(policy, layers, (B, S), _dtype(policy))
    out = policy(tokens, probes)
    logp = completion_logp(out.logits, tokens, prompt_len)
    T = logp.shape[1]
    A = _adv_per_token(adv, B, T, logp.dtype).detach()
    res = {
        l: torch.zeros(B, S, policy.d_model, dtype=logp.dtype, device=logp.device) for l in layers
    }
    for t in range(T):
        j = prompt_len - 1 + t
        g = torch.autograd.grad(
            (A[:, t:] * logp[:, t:]).sum(),
            [probes[l] for l in layers],
            retain_graph=t < T - 1,
            allow_unused=True,
        )
        for l, gl in zip(layers, g):
            if gl is not None:
                res[l][:, j] = gl[:, j]
    return res


def value_grad_pathwise(policy, tokens: torch.Tensor, reward_fn, layers=None) -> tuple:
    """G = ∂R/∂h for a reward that is a differentiable function of the logits (paper §6).

    ``reward_fn(logits (B, S, V)) -> (B,)``. Returns ``(reward (B,), {l: (B, S, d)})``. A reward
    computed from sampled or argmax tokens has no gradient: use :func:`value_grad_exact`
    (enumeration) or the unbiased Monte Carlo mean of :func:`costate_hat` instead.
    """
    layers = check_layers(policy, layers)
    B, S = tokens.shape
    probes = _zero_probes(policy, layers, (B, S), _dtype(policy))
    r = reward_fn(policy(tokens, probes).logits)
    if not isinstance(r, torch.Tensor) or not r.requires_grad:
        raise ValueError(
            "value_grad_pathwise needs a reward that is a differentiable function of the "
            "logits (e.g. softmax(logits)[..., y]); this one carries no gradient. For a "
            "reward of sampled tokens use value_grad_exact (small |V|, T) or average "
            "costate_hat with a sample-independent baseline"
        )
    if r.shape != (B,):
        raise ValueError(f"reward_fn must return shape (B,)=({B},), got {tuple(r.shape)}")
    grads = torch.autograd.grad(r.sum(), [probes[l] for l in layers], allow_unused=True)
    return r.detach(), {
        l: (g if g is not None else torch.zeros_like(probes[l])).detach()
        for l, g in zip(layers, grads)
    }


def _check_enum(vocab_size, m, max_enum):
    if m < 1:
        raise ValueError("horizon must exceed the completion tokens already in the prefix")
    n = vocab_size**m
    if n > max_enum:
        raise ValueError(
            f"enumerating |V|^m = {vocab_size}^{m} = {n} continuations exceeds "
            f"max_enum={max_enum}: use a smaller vocabulary or horizon, raise max_enum "
            "if memory allows, or estimate G by the mean of costate_hat_samples with a "
            "sample-independent baseline, which is unbiased"
        )
    return n


def _reward_of(reward_fn, onehot, n):
    r = reward_fn(onehot)
    r = torch.as_tensor(r, dtype=onehot.dtype)
    if r.shape != (n,):
        raise ValueError(f"reward_fn must return shape (N,)=({n},), got {tuple(r.shape)}")
    return r


def _enumeration(policy, prefix, horizon, prompt_len, max_enum):
    prefix = torch.as_tensor(prefix, dtype=torch.long, device=_device(policy))
    P = prefix.numel()
    m = horizon - (P - prompt_len)
    N = _check_enum(policy.vocab_size, m, max_enum)
    conts = torch.tensor(
        list(itertools.product(range(policy.vocab_size), repeat=m)),
        dtype=torch.long,
        device=_device(policy),
    )  # (N, m)
    return prefix, P, m, N, conts


def value_exact(
    policy,
    prefix: torch.Tensor,
    horizon: int,
    reward_fn,
    prompt_len: int = 1,
    probes=None,
    max_enum: int = MAX_ENUM,
) -> torch.Tensor:
    """V = Σ_c P(c | prefix) R(completion) over every continuation c (a scalar tensor).

    ``prefix`` ``(P,)`` holds the prompt (``prompt_len`` tokens) and the first P − prompt_len
    completion tokens; ``horizon`` is the full completion length T, so m = T − (P − prompt_len)
    tokens are enumerated. ``probes`` (shape ``(1, S, d)`` per layer, S = P + m − 1) perturb the
    hidden states shared by all continuations; V is differentiable in them.
    """
    prefix, P, m, N, conts = _enumeration(policy, prefix, horizon, prompt_len, max_enum)
    full = torch.cat([prefix.expand(N, -1), conts], dim=1)  # (N, P + m)
    out = policy(full[:, :-1], probes)
    logp = (
        torch.log_softmax(out.logits[:, P - 1 :], dim=-1).gather(-1, conts[..., None]).squeeze(-1)
    )  # (N, m)
    onehot = F.one_hot(full[:, prompt_len:], policy.vocab_size).to(_dtype(policy))  # (N, T, V)
    R = _reward_of(reward_fn, onehot, N).detach()
    return (logp.sum(-1).exp() * R).sum()


def value_grad_exact(
    policy,
    prefix: torch.Tensor,
    horizon: int,
    reward_fn,
    layers=None,
    prompt_len: int = 1,
    max_enum: int = MAX_ENUM,
) -> tuple:
    """Exact V and G = ∂V/∂h at the prefix's last position, by enumerating every continuation.

    With m tokens still to come (see :func:`value_exact`), V(h) = Σ_{c ∈ V^m} P(c | prefix; h)
    R(completion), and the perturbation h ↦ h + δ of ``hidden[l]`` at position P − 1 moves every
    later logit that reads it. Returns ``(value, {l: (d,)})``. The reward need not be
    differentiable; |V|^m above ``max_enum`` raises a ValueError.
    """
    layers = check_layers(policy, layers)
    prefix, P, m, N, _ = _enumeration(policy, prefix, horizon, prompt_len, max_enum)
    dtype = _dtype(policy)
    probes = _zero_probes(
        policy, layers, (1, P + m - 1), dtype
    )  # one δ shared by all continuations
    V = value_exact(policy, prefix, horizon, reward_fn, prompt_len, probes, max_enum)
    grads = torch.autograd.grad(V, [probes[l] for l in layers], allow_unused=True)
    return float(V.detach()), {
        l: (
            g[0, P - 1]
            if g is not None
            else torch.zeros(policy.d_model, dtype=dtype, device=_device(policy))
        ).detach()
        for l, g in zip(layers, grads)
    }


def value_grad_exact_split(
    policy,
    prefix: torch.Tensor,
    horizon: int,
    reward_fn,
    layers=None,
    prompt_len: int = 1,
    max_enum: int = MAX_ENUM,
) -> dict:
    """G split by where h's influence enters: the next token's law, or later logits.

    G = Σ_c R_c P(c) Σ_k ∂ℓ_k/∂h (score of each continuation). ``immediate`` keeps k = the token
    emitted at h's own position; ``future`` keeps the later tokens, whose logits h reaches only
    through the differentiable path (attention, recurrence). Returns
    ``{l: (G, immediate, future)}``, each ``(d,)``; G = immediate + future.
    """
    layers = check_layers(policy, layers)
    prefix, P, m, N, conts = _enumeration(policy, prefix, horizon, prompt_len, max_enum)
    full = torch.cat([prefix.expand(N, -1), conts], dim=1)  # (N, P + m)
    dtype = _dtype(policy)
    probes = _zero_probes(policy, layers, (1, P + m - 1), dtype)
    out = policy(full[:, :-1], probes)
    logp = (
        torch.log_softmax(out.logits[:, P - 1 :], dim=-1).gather(-1, conts[..., None]).squeeze(-1)
    )  # (N, m)
    onehot = F.one_hot(full[:, prompt_len:], policy.vocab_size).to(dtype)
    w = (logp.sum(-1).exp() * _reward_of(reward_fn, onehot, N)).detach()  # P(c) R(c), held fixed
    plist = [probes[l] for l in layers]
    imm = torch.autograd.grad((w * logp[:, 0]).sum(), plist, retain_graph=True, allow_unused=True)
    fut = torch.autograd.grad((w * logp[:, 1:].sum(-1)).sum(), plist, allow_unused=True)
    res = {}
    for l, a, b in zip(layers, imm, fut):
        a = (
            torch.zeros(policy.d_model, dtype=dtype, device=_device(policy))
            if a is None
            else a[0, P - 1]
        )
        b = (
            torch.zeros(policy.d_model, dtype=dtype, device=_device(policy))
            if b is None
            else b[0, P - 1]
        )
        res[l] = (a + b, a, b)
    return res


def costate_hat_samples(
    policy,
    prefix: torch.Tensor,
    horizon: int,
    reward_fn,
    n: int,
    layers=None,
    prompt_len: int = 1,
    adv_kind: str = "baseline",
    baseline=0.0,
    group_size: int | None = None,
    generator=None,
) -> tuple:
    """Sample ``n`` continuations of ``prefix`` and return their λ̂ at the prefix's last position.

    Advantages come from ``vghlib.grpo.advantages(rewards, kind=adv_kind, baseline=baseline)``
    over groups of ``group_size`` consecutive samples (default: all n in one group). Returns
    ``(rewards (n,), {l: (n, d)})``. With ``adv_kind="baseline"`` (or "none", or "loo") the mean
    over samples is an unbiased estimate of G (Part III); "mean" shrinks it by (1 − 1/n) in
    expectation.
    """
    layers = check_layers(policy, layers)
    prefix = torch.as_tensor(prefix, dtype=torch.long, device=_device(policy))
    P = prefix.numel()
    m = horizon - (P - prompt_len)
    if m < 1:
        raise ValueError("horizon must exceed the completion tokens already in the prefix")
    g = group_size or n
    if n % g:
        raise ValueError(f"n={n} must be a multiple of group_size={g}")
    x = sample(policy, prefix, m, n, generator=generator)  # (n, P + m)
    onehot = F.one_hot(x[:, prompt_len:], policy.vocab_size).to(_dtype(policy))
    R = _reward_of(reward_fn, onehot, n).detach()
    adv = advantages(
        R.view(n // g, g), kind=adv_kind, baseline=baseline if adv_kind == "baseline" else None
    ).reshape(n)
    lam = costate_hat(
        policy, x, adv, layers, prompt_len=P
    )  # credit only for tokens after the prefix
    return R, {l: v[:, P - 1] for l, v in lam.items()}


def gumbel_noise(shape, dtype, generator):
    """Standard Gumbel noise −log(−log u), u uniform in float64 from ``generator`` (the draws of
    :func:`relaxed_rollout`)."""
    u = (
        torch.rand(shape, generator=generator, dtype=torch.float64)
        .clamp(1e-12, 1 - 1e-12)
        .to(dtype)
    )
    return -torch.log(-torch.log(u))


def relaxed_rollout(
    policy,
    prefix: torch.Tensor,
    horizon: int,
    reward_fn,
    n: int,
    temperature: float,
    kind: str = "gumbel",
    prompt_len: int = 1,
    generator=None,
    probes=None,
) -> torch.Tensor:
    """Rewards ``(n,)`` of ``n`` relaxed rollouts from ``prefix`` (differentiable in ``probes``).

    Let τ be ``temperature`` and g Gumbel noise drawn from ``generator``. Each step feeds
    y = softmax((z + g)/τ) (``kind="gumbel"``), or the hard sample one_hot(argmax(z + g)) in the
    forward pass with the gradient of that softmax in the backward pass (``kind="st"``,
    straight-through Gumbel), into the next position as y @ E. ``reward_fn`` receives the
    completion rows (prefix one-hots, then relaxed rows) and must be a smooth extension of the
    discrete reward (e.g. :func:`multilinear_reward`). Probes have shape ``(n or 1, P + m − 1, d)``.
    """
    if kind not in ("gumbel", "st"):
        raise ValueError(f"kind must be 'gumbel' or 'st', got {kind!r}")
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    prefix = torch.as_tensor(prefix, dtype=torch.long, device=_device(policy))
    P = prefix.numel()
    m = horizon - (P - prompt_len)
    if m < 1:
        raise ValueError("horizon must exceed the completion tokens already in the prefix")
    dtype, V = _dtype(policy), policy.vocab_size
    x = F.one_hot(prefix, V).to(dtype).expand(n, -1, -1)  # (n, P, V)
    ys = []
    for step in range(m):
        z = policy(x, probes).logits[:, -1]  # (n, V)
        zg = z + gumbel_noise(z.shape, dtype, generator)
        y = torch.softmax(zg / temperature, dim=-1)
        if kind == "st":
            y = F.one_hot(zg.argmax(-1), V).to(dtype) + y - y.detach()
        ys.append(y)
        if step < m - 1:
            x = torch.cat([x, y[:, None]], dim=1)  # (n, P + step + 1, V)
    rows = torch.cat(
        [F.one_hot(prefix[prompt_len:], V).to(dtype).expand(n, -1, -1), torch.stack(ys, 1)], 1
    )
    return _reward_of(reward_fn, rows, n)


def costate_relaxed(
    policy,
    prefix: torch.Tensor,
    horizon: int,
    reward_fn,
    n: int,
    temperature: float,
    layers=None,
    kind: str = "gumbel",
    prompt_len: int = 1,
    generator=None,
) -> tuple:
    """Relaxed BPTT costates λ^τ = ∂R/∂h along ``n`` rollouts of :func:`relaxed_rollout`, noise
    fixed.

    Returns ``(rewards (n,), {l: (n, S, d)})`` with S = P + m − 1: λ^τ at every position of the
    rollout; ``[:, P - 1]`` is the costate at the prefix's last state, comparable with G there.
    """
    layers = check_layers(policy, layers)
    P = torch.as_tensor(prefix).numel()
    m = horizon - (P - prompt_len)
    if m < 1:
        raise ValueError("horizon must exceed the completion tokens already in the prefix")
    probes = _zero_probes(policy, layers, (n, P + m - 1), _dtype(policy))
    R = relaxed_rollout(
        policy, prefix, horizon, reward_fn, n, temperature, kind, prompt_len, generator, probes
    )
    grads = torch.autograd.grad(R.sum(), [probes[l] for l in layers], allow_unused=True)
    return R.detach(), {
        l: (g if g is not None else torch.zeros_like(probes[l])).detach()
        for l, g in zip(layers, grads)
    }


def position_jacobian(policy, inputs: torch.Tensor, src, dst: tuple):
    """∂(dst)/∂(src) for one sequence, inputs held fixed (the attention/recurrence path only).

    ``src = (layer, position)``, ``(layer, None)`` for every position at once, or a list of such
    pairs (one pass for all); ``dst = (layer, position)`` or ``("logits", position)``. Uses one
    forward on ``d_out`` copies of the sequence and one backward (copy i gives row i). Returns
    ``(d_out, d)``, ``(S, d_out, d)`` for ``position=None``, or a list for a list of sources.
    ``inputs``: ids ``(S,)`` or relaxed rows ``(S, V)``.
    """
    srcs = src if isinstance(src, list) else [src]
    ld, pd = dst
    check_layers(policy, [ls for ls, _ in srcs] + ([] if ld == "logits" else [ld]))
    d_out = policy.vocab_size if ld == "logits" else policy.d_model
    x = inputs.unsqueeze(0).expand(d_out, *inputs.shape)
    S = inputs.shape[0]
    layers = sorted({ls for ls, _ in srcs})
    probes = _zero_probes(policy, layers, (d_out, S), _dtype(policy))
    out = policy(x, probes)
    y = (
        out.logits[:, pd] if ld == "logits" else out.hidden[ld % (policy.n_layers + 1)][:, pd]
    )  # (d_out, d_out)
    grads = torch.autograd.grad(
        torch.diagonal(y).sum(), [probes[l] for l in layers], allow_unused=True
    )
    grads = {
        l: (torch.zeros_like(probes[l]) if g is None else g.detach()) for l, g in zip(layers, grads)
    }
    res = [
        grads[ls].transpose(0, 1) if ps is None else grads[ls][:, ps] for ls, ps in srcs
    ]  # (S, d_out, d) or (d_out, d)
    return res if isinstance(src, list) else res[0]


def match_reward(i: int = 0, j: int = -1):
    """R = 1[o_i = o_j] on one-hot rows, extended to relaxed rows as ⟨y_i, y_j⟩ (multilinear)."""

    def reward(rows: torch.Tensor) -> torch.Tensor:
        return (rows[:, i] * rows[:, j]).sum(-1)

    return reward


def multilinear_reward(table: torch.Tensor):
    """The multilinear extension of a reward table ``(V,)*T``: R(y) = Σ_o table[o] Π_t y_t[o_t].

    Equals ``table[o]`` on one-hot rows, so one function serves enumeration, samples and relaxed
    rollouts. Feasible for small V^T only.
    """
    table = torch.as_tensor(table)

    def reward(rows: torch.Tensor) -> torch.Tensor:
        T = rows.shape[1]
        if table.dim() != T:
            raise ValueError(f"table has {table.dim()} axes but the completion has {T} tokens")
        out = table.to(rows.dtype).expand(rows.shape[0], *table.shape)  # (N, V, ..., V)
        for t in range(T):  # contract one token axis at a time
            out = torch.einsum("nv...,nv->n...", out, rows[:, t])
        return out

    return reward
