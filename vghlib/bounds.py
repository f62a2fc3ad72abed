"""Section 4's bounds as measurable quantities: sampling gap (Prop 2), Jacobian rank (Prop 3), Thm 1.

Reference: Asadulaev et al., arXiv 2605.21654, eq 19–23, Appendix A.7–A.9.

* Prop 2: the Jacobian of the relaxed sample p = softmax(z/τ) is (diag(p) − p pᵀ)/τ. The proof
  chains ‖·‖ ≤ (1 − ‖p‖²)/τ ≤ 2(1 − p_max)/τ ≤ 2 C_V √(H/log|V|)/τ. This module also gives the
  linear alternative 2H/τ (1 − p_max ≤ −log p_max ≤ H, science notes F4). H and p_max are those
  of p = softmax(z/τ), not of the policy at τ = 1 (transcriber note b9). C_V comes from
  :func:`vghlib.entropy_bounds.c_vocab` (written alongside this module; not duplicated here).
* The *measured* sampling gap at a layer l of a policy is the operator norm of
  S = ∂h^{(l)}_{j+1}/∂h^{(l)}_j along the relaxed-token path only (eq 20's second term):
  S = A Eᵀ J_softmax B with A = ∂h^{(l)}_{j+1}/∂e_{j+1}, E the embedding matrix and
  B = ∂z_j/∂h^{(l)}_j. :func:`sampling_gap` returns ‖S‖ and each factor's norm.
* Prop 3: numeric rank of cross-position Jacobians against L · d_head · n_heads.
* Thm 1: its right side from measured one-step Jacobian norms and per-step errors ε_k.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from vghlib.costates import check_layers, position_jacobian
from vghlib.course import Feedback, check_numeric
from vghlib.entropy_bounds import c_vocab as _c_vocab


@lru_cache(maxsize=None)
def c_vocab(vocab_size: int) -> tuple:
    """C_V of Prop 2 (cached), from :func:`vghlib.entropy_bounds.c_vocab`: ``(C_V, p_max at the sup)``."""
    return _c_vocab(vocab_size)


def softmax_probs(logits, temperature: float = 1.0) -> torch.Tensor:
    """p = softmax(z / τ) along the last axis (float64)."""
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    z = torch.as_tensor(logits, dtype=torch.float64)
    return torch.softmax(z / temperature, dim=-1)


def entropy(p) -> torch.Tensor:
    """Shannon entropy in nats along the last axis, 0 log 0 = 0."""
    p = torch.as_tensor(p, dtype=torch.float64)
    return -(p * torch.log(p.clamp_min(1e-300))).sum(-1)


def softmax_jacobian(logits, temperature: float = 1.0) -> torch.Tensor:
    """∂p/∂z = (diag(p) − p pᵀ)/τ for p = softmax(z/τ): ``(..., V)`` -> ``(..., V, V)``."""
    p = softmax_probs(logits, temperature)
    return (torch.diag_embed(p) - p[..., :, None] * p[..., None, :]) / temperature


def prop2_chain(logits, temperature: float = 1.0) -> dict:
    """Every side of Prop 2's proof for the rows of ``logits`` ``(..., V)`` at temperature τ.

    Returns float64 arrays: ``jac_norm`` ‖(diag p − ppᵀ)/τ‖₂; ``trace`` (1 − ‖p‖²)/τ;
    ``pmax_bound`` 2(1 − p_max)/τ; ``paper_bound`` 2 C_V √(H/log|V|)/τ; ``linear_bound`` 2H/τ;
    and ``entropy``, ``p_max`` of p = softmax(z/τ), ``c_vocab``. The chain
    jac_norm ≤ trace ≤ pmax_bound ≤ min(paper_bound, linear_bound) holds row by row.
    """
    z = torch.as_tensor(logits, dtype=torch.float64)
    V = z.shape[-1]
    p = softmax_probs(z, temperature)
    H = entropy(p)
    pm = p.max(-1).values
    jac_norm = torch.linalg.eigvalsh(softmax_jacobian(z, temperature))[..., -1]  # PSD: top eigenvalue
    cv = c_vocab(V)[0]
    tau = temperature
    return {"jac_norm": jac_norm.numpy(), "trace": ((1 - (p * p).sum(-1)) / tau).numpy(),
            "pmax_bound": (2 * (1 - pm) / tau).numpy(),
            "paper_bound": (2 * cv * torch.sqrt(H / math.log(V)) / tau).numpy(),
            "linear_bound": (2 * H / tau).numpy(), "entropy": H.numpy(), "p_max": pm.numpy(),
            "c_vocab": cv}


def opnorm(M) -> float:
    """Largest singular value of a matrix."""
    return float(torch.linalg.matrix_norm(torch.as_tensor(M, dtype=torch.float64), ord=2))


def sampling_gap(policy, tokens: torch.Tensor, position: int, layer: int, temperature: float = 1.0) -> dict:
    """Measured sampling-path Jacobian at ``layer`` from ``position`` j to j + 1, and its bound.

    ``tokens`` ``(S,)`` with S > j + 1. S = A Eᵀ J_sm B (see module docstring), where J_sm is
    the softmax Jacobian at the logits z_j and temperature τ. Returns ``gap`` = ‖S‖, the factor
    norms ``read`` ‖A‖, ``emb`` ‖E‖, ``head`` ‖B‖, ``factor`` = ‖A‖‖E‖‖B‖ (the paper's C without
    the softmax part), the :func:`prop2_chain` entries at z_j multiplied by ``factor`` (bounds on
    ``gap``), and ``direct`` = ‖∂h^{(l)}_{j+1}/∂h^{(l)}_j‖ with tokens fixed (J^attn of eq 20).
    """
    (layer,) = check_layers(policy, [layer])
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    j = position
    if not 0 <= j < tokens.numel() - 1:
        raise ValueError(f"position must be in 0..S-2 = {tokens.numel() - 2}")
    B = position_jacobian(policy, tokens, (layer, j), ("logits", j))  # (V, d)
    # (d, d) each, one pass: A through the embedding at j + 1, and the direct path from h^(l)_j
    A, direct = position_jacobian(policy, tokens, [(0, j + 1), (layer, j)], (layer, j + 1))
    E = policy.embedding_matrix().detach().to(torch.float64)  # (V, d)
    with torch.no_grad():
        z = policy(tokens[None]).logits[0, j]
    Jsm = softmax_jacobian(z, temperature)  # (V, V)
    S = A @ E.T @ Jsm @ B  # (d, d)
    chain = prop2_chain(z, temperature)
    factor = opnorm(A) * opnorm(E) * opnorm(B)
    out = {"gap": opnorm(S), "read": opnorm(A), "emb": opnorm(E), "head": opnorm(B), "factor": factor,
           "direct": opnorm(direct), "matrix": S}
    for k in ("jac_norm", "trace", "pmax_bound", "paper_bound", "linear_bound"):
        out[k] = factor * float(chain[k])
    out["entropy"], out["p_max"], out["c_vocab"] = float(chain["entropy"]), float(chain["p_max"]), chain["c_vocab"]
    return out


def numeric_rank(M, rtol: float = 1e-8) -> int:
    """Number of singular values above ``rtol`` times the largest (0 for a zero matrix)."""
    s = torch.linalg.svdvals(torch.as_tensor(M, dtype=torch.float64))
    if s.numel() == 0 or s[0] == 0:
        return 0
    return int((s > rtol * s[0]).sum())


def prop3_bound(n_layers: int, n_heads: int, d_head: int) -> int:
    """Prop 3 (as proved in A.8): rank ≤ n_layers · d_head · n_heads for the attention path.

    ``n_layers`` is the number of attention layers between source and target states. The bound
    says something only when it is below the Jacobian's size d_model (transcriber note b10).
    """
    return int(n_layers) * int(n_heads) * int(d_head)


def attention_jacobian(policy, tokens: torch.Tensor, src: tuple, dst: tuple) -> torch.Tensor:
    """∂h^{(l_dst)}_{t}/∂h^{(l_src)}_{t'} with tokens fixed (t' < t: the cross-position, attention path)."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    if src[1] >= dst[1]:
        raise ValueError("src position must be earlier than dst position for a cross-position Jacobian")
    return position_jacobian(policy, tokens, src, dst)


def theorem1_rhs(jac_norm, eps, gamma: float = 1.0) -> np.ndarray:
    """Right side of eq 23 (product form of A.9) for every step t.

    ``jac_norm[k]`` = ‖J_{k←k−1}‖ and ``eps[k]`` = ε_k for steps k = 0..T−1 (index 0 unused by
    the sum). Returns rhs[t] = Σ_{k=t+1}^{T−1} γ^{k−t} (Π_{j=t+1}^{k−1} jac_norm[j]) eps[k].
    Computed backwards: rhs[t] = γ (eps[t+1] + jac_norm[t+1] rhs[t+1]).
    """
    J = np.asarray(jac_norm, dtype=float)
    e = np.asarray(eps, dtype=float)
    if J.shape != e.shape or J.ndim != 1:
        raise ValueError("jac_norm and eps must be 1-D arrays of the same length T")
    if not 0 < gamma <= 1:
        raise ValueError("gamma must lie in (0, 1]")
    T = len(J)
    rhs = np.zeros(T)
    for t in range(T - 2, -1, -1):
        rhs[t] = gamma * (e[t + 1] + J[t + 1] * rhs[t + 1])
    return rhs


def crossover_entropy(vocab_size: int) -> float:
    """The entropy H* = C_V² / log|V| below which the linear bound H beats C_V √(H/log|V|)."""
    return c_vocab(vocab_size)[0] ** 2 / math.log(vocab_size)


def check_crossover_entropy(answer, vocab_size: int = 32) -> Feedback:
    """Self-check (chapter "The sampling gap"): H* for ``vocab_size`` symbols, in nats, 3 digits."""
    name = "gap-crossover"
    if answer is None:
        return Feedback(name, False, "no answer yet (set `answer` to a number and run the cell again)")
    return check_numeric(name, answer, crossover_entropy(vocab_size), rtol=2e-3,
                         hint="set the two bounds equal and solve for H; C_V comes from c_vocab")
