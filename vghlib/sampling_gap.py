"""The sampling gap of Section 4: entropy bounds on it (Prop 2), Jacobian ranks (Prop 3), Theorem 1.

Reference: Asadulaev et al., arXiv 2605.21654, eq 19–23, Prop 2 (eq 21), Prop 3, Theorem 1
(eq 23) and Appendix A.7–A.9; the findings page, "Prop 2: the entropy bound holds, but its
constant hides the vocabulary".

* Entropy constants. Prop 2's proof needs ``1 − p_max ≤ C_V √(H / log|V|)`` and only argues that
  a finite C_V exists; :func:`c_vocab` computes it. Among all distributions on |V| symbols whose
  largest probability is m, the entropy is smallest for ``(m, …, m, r, 0, …, 0)`` with
  k = ⌊1/m⌋ copies of m and the rest r = 1 − k m (it majorizes every other vector with the same
  maximum, and entropy is Schur-concave), so every ratio ``(1 − p_max)/g(H)`` with g increasing
  has its supremum on that one-parameter family (:func:`min_entropy_given_pmax`): a 1-D
  optimisation, confirmed against random search (:func:`random_search_ratio`). The linear
  alternative (findings page, Prop 2) is ``1 − p_max ≤ −log p_max ≤ H``.
* Prop 2 along the chain of its proof: the Jacobian of the relaxed sample p = softmax(z/τ) is
  (diag p − p pᵀ)/τ and ``‖·‖ ≤ (1 − ‖p‖²)/τ ≤ 2(1 − p_max)/τ ≤ 2 C_V √(H/log|V|)/τ``
  (:func:`prop2_chain`, with the linear bound 2H/τ next to it). H and p_max are those of
  p = softmax(z/τ), not of the policy at τ = 1. At an LLM's vocabulary (OLMo-2: |V| = 100,352)
  the V×V Jacobian cannot be formed; its top eigenvalue is the largest root of the secular
  equation 1 = Σ_i p_i²/(p_i − λ), found in O(V) per iteration
  (:func:`softmax_jacobian_top_eigenvalue`). :func:`prop2_per_position` applies the chain to
  every real position of a Hugging Face causal LM's forward pass (the paper's Figure 2).
* The *measured* sampling gap at a layer l is the operator norm of S = ∂h^{(l)}_{j+1}/∂h^{(l)}_j
  along the relaxed-token path only (eq 20's second term): S = A Eᵀ J_softmax B with
  A = ∂h^{(l)}_{j+1}/∂e_{j+1}, E the embedding matrix and B = ∂z_j/∂h^{(l)}_j
  (:func:`sampling_path_gap`).
* Prop 3: numeric rank of cross-position Jacobians against L · d_head · n_heads.
  :func:`rmsnorm_setting` changes the eps and the precision of a Hugging Face model's RMSNorms,
  which set the size of the singular values that the post-attention norm suppresses.
* Theorem 1: both sides of eq 23, measured on a policy (:func:`theorem1_sides`), with the right
  side read from noise-free softmax Jacobians along hard sequences (the book's reading) or from
  the Gumbel-softmax rollout's own Jacobians (:func:`gumbel_rollout_rows`).

Entropy is in nats throughout (``entropy``, one function for numpy arrays and torch tensors).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import entr

from vghlib.models import sample
from vghlib.token_costates import (
    check_layers,
    costate_relaxed,
    gumbel_noise,
    position_jacobian,
    value_grad_exact,
)

__all__ = [
    "entropy",
    "min_entropy_given_pmax",
    "c_vocab",
    "sup_gap_over_entropy",
    "random_search_ratio",
    "dirichlet_gap_ratio",
    "crossover_entropy",
    "softmax_probs",
    "softmax_jacobian",
    "softmax_jacobian_top_eigenvalue",
    "prop2_chain",
    "prop2_per_position",
    "opnorm",
    "sampling_path_gap",
    "numeric_rank",
    "prop3_bound",
    "attention_jacobian",
    "rmsnorm_setting",
    "theorem1_rhs",
    "JACOBIAN_READINGS",
    "gumbel_rollout_rows",
    "Theorem1Sides",
    "theorem1_sides",
]


# --------------------------------------------------------------------------------------------
# Entropy and the constant C_V of Prop 2
# --------------------------------------------------------------------------------------------


def entropy(p, axis: int = -1):
    """Shannon entropy in nats along ``axis``, with 0 log 0 = 0. Rows must be probability vectors.

    A torch tensor gives a float64 tensor (``torch.special.entr``); anything else a numpy array
    or float (``scipy.special.entr``).
    """
    if isinstance(p, torch.Tensor):
        return torch.special.entr(p.to(torch.float64)).sum(axis)
    p = np.asarray(p, dtype=float)
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError("entropy needs non-negative finite probabilities")
    return entr(p).sum(axis=axis)


def _check_vocab(vocab_size: int) -> int:
    if int(vocab_size) != vocab_size or vocab_size < 2:
        raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
    return int(vocab_size)


def min_entropy_given_pmax(p_max: float) -> float:
    """Smallest entropy (nats) of any distribution whose largest probability is ``p_max``.

    Attained by ``k = floor(1/p_max)`` atoms of mass ``p_max`` and one atom with the rest; it
    needs ``k + 1`` symbols (``k`` when the rest is 0), so it is available whenever
    ``p_max >= 1/vocab_size``.
    """
    m = float(p_max)
    if not 0 < m <= 1:
        raise ValueError(f"p_max must lie in (0, 1], got {p_max!r}")
    k = math.floor(1 / m + 1e-12)
    rest = max(1.0 - k * m, 0.0)
    return -k * m * math.log(m) - (rest * math.log(rest) if rest > 0 else 0.0)


def _sup_over_pmax(g, vocab_size: int) -> tuple[float, float]:
    """Maximise ``(1 - m) / g(Hmin(m))`` over p_max = m in [1/vocab_size, 1) for increasing ``g``.

    Piecewise smooth: on [1/(k+1), 1/k] the minimiser has a fixed number of atoms, so each piece
    is searched on a grid and refined. Pieces with m < 1/(K+1) are skipped once their ratio is
    provably below the best found: there ``H >= -log m >= log(K+1)`` and ``1 - m < 1``.
    """

    def ratio(m: float) -> float:
        return (1 - m) / g(min_entropy_given_pmax(m))

    best = (-math.inf, float("nan"))
    k_max = 16
    k = 1
    while k < vocab_size:
        lo, hi = 1.0 / (k + 1), (1.0 / k if k > 1 else 1.0 - 1e-9)
        grid = np.linspace(lo, hi, 65)
        vals = np.array([ratio(m) for m in grid])
        i = int(np.argmax(vals))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(
            lambda m: -ratio(m), bounds=(a, b), method="bounded", options={"xatol": 1e-12}
        )
        best = max(best, (vals[i], grid[i]), (-res.fun, res.x))
        k += 1
        if k >= k_max:
            if 1.0 / g(math.log(k + 1)) < best[0]:  # no remaining piece can beat `best`
                break
            k_max *= 2
    return float(best[0]), float(best[1])


@lru_cache(maxsize=None)
def c_vocab(vocab_size: int) -> tuple[float, float]:
    """Prop 2's constant C_V = sup over the simplex of ``(1 - p_max) / sqrt(H / log|V|)``.

    Returns ``(C_V, p_max at the supremum)``. Since ``1 - p_max <= min(H, 1) <= sqrt(H)``,
    ``C_V <= sqrt(log vocab_size)``: the constant grows with the vocabulary like
    ``sqrt(log|V|)``, which cancels the explicit ``1/sqrt(log|V|)`` of eq 21.
    """
    n = _check_vocab(vocab_size)
    log_v = math.log(n)
    return _sup_over_pmax(lambda h: math.sqrt(h / log_v), n)


def sup_gap_over_entropy(vocab_size: int = 2) -> tuple[float, float]:
    """sup over the simplex of ``(1 - p_max) / H``; the answer is 1/(2 ln 2) at (1/2, 1/2) for
    every |V|."""
    n = _check_vocab(vocab_size)
    return _sup_over_pmax(lambda h: h, n)


def random_search_ratio(
    vocab_size: int,
    n_draws: int = 20_000,
    seed: int = 0,
    power: float = 0.5,
    normalise: bool = True,
) -> float:
    """Largest ``(1 - p_max) / (H / log|V|)**power`` over random distributions (a lower bound).

    Draws come from Dirichlet laws with several concentrations and from random sparse supports,
    so that near-degenerate distributions (where the supremum lives) are visited too. With
    ``power=0.5, normalise=True`` this is a random-search estimate of ``C_V``.
    """
    n = _check_vocab(vocab_size)
    rng = np.random.default_rng(seed)
    per = n_draws // 4
    draws = [rng.dirichlet(np.full(n, a), size=per) for a in (0.05, 0.3, 1.0)]
    # Sparse: random support size 2..min(n, 6), Dirichlet(1) weights on it.
    sparse = np.zeros((per, n))
    sizes = rng.integers(2, min(n, 6) + 1, size=per)
    w = rng.dirichlet(np.ones(6), size=per)
    for j in range(min(n, 6)):
        sparse[:, j] = np.where(j < sizes, w[:, j], 0.0)
    sparse /= sparse.sum(axis=1, keepdims=True)
    p = np.concatenate(draws + [sparse])  # (n_draws, n)
    h = entropy(p)
    keep = h > 1e-9
    scale = math.log(n) if normalise else 1.0
    ratio = (1 - p.max(axis=1))[keep] / (h[keep] / scale) ** power
    return float(ratio.max())


def dirichlet_gap_ratio(
    vocab_size: int = 50, n_draws: int = 10_000, concentration: float = 1.0, seed: int = 0
) -> float:
    """Largest ``(1 - p_max) / H`` over ``n_draws`` Dirichlet(``concentration``) draws (the
    findings page, Prop 2)."""
    n = _check_vocab(vocab_size)
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(n, float(concentration)), size=n_draws)  # (n_draws, n)
    h = entropy(p)
    keep = h > 1e-12
    return float(((1 - p.max(axis=1))[keep] / h[keep]).max())


def crossover_entropy(vocab_size: int) -> float:
    """The entropy H* = C_V² / log|V| below which the linear bound H beats C_V √(H/log|V|)."""
    return c_vocab(vocab_size)[0] ** 2 / math.log(vocab_size)


# --------------------------------------------------------------------------------------------
# Prop 2, and the measured sampling gap (eq 19–21)
# --------------------------------------------------------------------------------------------


def softmax_probs(logits, temperature: float = 1.0) -> torch.Tensor:
    """p = softmax(z / τ) along the last axis (float64)."""
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    z = torch.as_tensor(logits, dtype=torch.float64)
    return torch.softmax(z / temperature, dim=-1)


def softmax_jacobian(logits, temperature: float = 1.0) -> torch.Tensor:
    """∂p/∂z = (diag(p) − p pᵀ)/τ for p = softmax(z/τ): ``(..., V)`` -> ``(..., V, V)``."""
    p = softmax_probs(logits, temperature)
    return (torch.diag_embed(p) - p[..., :, None] * p[..., None, :]) / temperature


_EIGVALSH_MAX_V = 2048  # prop2_chain uses eigvalsh up to this |V| (the book's printed results)
_SECULAR_BLOCK = 1 << 16  # elements (512 KiB of float64) per block of rows: stays in cache
_EPS, _TINY = torch.finfo(torch.float64).eps, torch.finfo(torch.float64).tiny  # 2.2e-16, 2.2e-308


def _secular_top_root(
    P: torch.Tensor, work: torch.Tensor, max_iter: int, stats: list | None = None
) -> torch.Tensor:
    """Largest root of 1 = Σ_i p_i²/(p_i − λ) for each row of ``P`` ``(r, V)``, V ≥ 2 (float64).

    With a = p_(1), d = p_(2), q = a(1 − a) and ψ(λ) = Σ_{i ≠ top} p_i²/(p_i − λ), the equation
    is h(λ) = (λ − q)/(a − λ) + ψ(λ) = 0 (the top term minus 1, written without the cancellation
    of a²/(a − λ) − 1 at small λ, so that peaked p keep relative accuracy). h increases from −∞
    to +∞ on (d, a). Safeguarded rational (middle-way) iteration: at the iterate λ, ψ is
    modelled by A − B/(λ' − d) with the same value and slope, the top pole is kept exactly, and
    the model equation c x² + b x − B w = 0 (x = λ' − d, w = a − d, c = 1 − A) has one root in
    [0, w). The sign of h shrinks the bracket; a step outside it is replaced by its midpoint
    (geometric when the bracket spans more than a factor 2). A row stops at a step below
    4 eps λ (taking that step) or a bracket narrower than 4 eps p_(1), each plus the smallest
    normal float (for subnormal roots). ``work`` ``(2, r, V)`` is scratch space; nothing else of
    size V is allocated per iteration. ``stats`` (tests) collects the number of iterations.
    """
    top = torch.topk(P, 2, dim=-1)
    itop = top.indices[:, :1]  # (r, 1)
    a, d2 = top.values[:, 0].contiguous(), top.values[:, 1].contiguous()  # (r,) each
    q = a * (1 - a)
    lo, hi = d2, a
    lam = 0.5 * (lo + hi)  # = p_(1) exactly for a tied maximum
    single = d2 == 0  # one non-zero p: the root is q (0 for one-hot); zeros deflate
    lam = torch.where(single, q, lam)
    done = single | (hi - lo <= 4 * _EPS * hi)
    dif, t = work[0], work[1]  # (r, V) each
    w = a - d2
    for it in range(max_iter):
        if bool(done.all()):
            if stats is not None:
                stats.append(it)
            return lam
        # Rows already done are evaluated too (blocks are a few rows) and left unchanged below.
        torch.sub(P, lam[:, None], out=dif)  # p_i − λ, non-zero off the top
        torch.div(P, dif, out=t).mul_(P)  # p_i²/(p_i − λ), 0 where p_i = 0
        t.scatter_(1, itop, 0.0)  # one copy of the top term dropped
        psi = t.sum(1)  # ψ(λ) ≤ 0
        dpsi = t.div_(dif).sum(1)  # ψ'(λ) = Σ p_i²/(p_i − λ)² ≥ 0
        h = (lam - q) / (a - lam) + psi
        hi_n = torch.where(h > 0, lam, hi)
        lo_n = torch.where(h < 0, lam, lo)
        x0 = lam - d2
        s = dpsi * x0  # B = s x0 ≥ 0 (B itself may underflow)
        A = psi + s  # ≤ 0
        c = 1 - A  # ≥ 1
        b = A * w + s * x0 + d2 - q
        disc = torch.hypot(b, 2 * (c * w).sqrt() * x0.sqrt() * s.sqrt())  # √(b² + 4cBw)
        x = torch.where(b <= 0, (disc - b) / (2 * c), x0 * (2 * s * w / (b + disc)))
        new = d2 + x
        conv = (
            ((new - lam).abs() <= 4 * _EPS * lam + _TINY)
            | (hi_n - lo_n <= 4 * _EPS * hi_n + _TINY)
            | (h == 0)
        )
        mid = torch.where(hi_n > 2 * lo_n, lo_n.sqrt() * hi_n.sqrt(), 0.5 * (lo_n + hi_n))
        new = torch.where(conv | ((new > lo_n) & (new < hi_n)), new, mid)
        new = torch.where(h == 0, lam, torch.minimum(torch.maximum(new, lo_n), hi_n))
        lam, lo, hi = (
            torch.where(done, old, upd) for old, upd in ((lam, new), (lo, lo_n), (hi, hi_n))
        )
        done = done | conv
    raise RuntimeError(f"secular solver did not converge in {max_iter} iterations")


def softmax_jacobian_top_eigenvalue(p, max_iter: int = 200) -> torch.Tensor:
    """Top eigenvalue of diag(p) − p pᵀ for every row of ``p`` ``(..., V)``, without the V×V matrix.

    For p = softmax(z/τ), this divided by τ is ‖∂p/∂z‖₂, the left side of Prop 2 (Asadulaev et
    al., arXiv 2605.21654, Proposition 2, eq 21). The matrix is a rank-one downdate of a
    diagonal, so (after deflating the p_i = 0, each an eigenvalue 0) its eigenvalues solve the
    secular equation

        1 = Σ_i p_i² / (p_i − λ),

    and by interlacing the largest lies in [p_(2), p_(1)], the two largest entries of p; it is
    p_(1) when the largest value is tied, and p_(1)(1 − p_(1)) (0 for a one-hot p) when p has a
    single non-zero entry. The root is found in float64 by a safeguarded rational iteration with
    bisection (:func:`_secular_top_root`; 2–7 iterations per row): O(V) time and memory per row
    and iteration, rows processed in cache-sized blocks of about 2^16 entries, no V×V matrix.
    Each row stops at a relative step below 4 eps ≈ 9e-16, so λ is accurate to about 1e-15
    relative for the float64 p it is given, also for peaked p where λ ≪ p_(1).

    ``p``: non-negative finite rows (probability vectors, so that the matrix is PSD and its top
    eigenvalue is its spectral norm). Returns float64 ``(...)``.
    """
    P = torch.as_tensor(p, dtype=torch.float64)
    if P.ndim == 0:
        raise ValueError("p must have a vocabulary axis")
    shape, V = P.shape[:-1], P.shape[-1]
    P = P.reshape(-1, V)  # (R, V)
    if P.numel():
        pmin, pmax = P.aminmax()
        if not (float(pmin) >= 0 and math.isfinite(float(pmax))):
            raise ValueError("p must be finite and non-negative")
    if V == 1:
        return (P[:, 0] * (1 - P[:, 0])).reshape(shape)
    out = torch.empty(P.shape[0], dtype=torch.float64)
    step = max(1, _SECULAR_BLOCK // V)
    work = torch.empty(2, min(step, P.shape[0]), V, dtype=torch.float64)  # scratch, reused
    for s in range(0, P.shape[0], step):
        blk = P[s : s + step]
        out[s : s + step] = _secular_top_root(blk, work[:, : blk.shape[0]], max_iter)
    return out.reshape(shape)


def prop2_chain(logits, temperature: float = 1.0, method: str = "auto") -> dict:
    """Every side of Prop 2's proof for the rows of ``logits`` ``(..., V)`` at temperature τ.

    Returns float64 arrays: ``jac_norm`` ‖(diag p − ppᵀ)/τ‖₂; ``trace`` (1 − ‖p‖²)/τ;
    ``pmax_bound`` 2(1 − p_max)/τ; ``paper_bound`` 2 C_V √(H/log|V|)/τ; ``linear_bound`` 2H/τ;
    and ``entropy``, ``p_max`` of p = softmax(z/τ), ``c_vocab``. The chain
    jac_norm ≤ trace ≤ pmax_bound ≤ min(paper_bound, linear_bound) holds row by row.

    ``method`` for ``jac_norm``: ``"eigvalsh"`` (the V×V Jacobian and ``torch.linalg.eigvalsh``),
    ``"secular"`` (:func:`softmax_jacobian_top_eigenvalue`, O(V) memory), or ``"auto"``:
    eigvalsh for |V| ≤ 2048, secular above. Every other entry is O(V) per row either way.
    """
    z = torch.as_tensor(logits, dtype=torch.float64)
    V = z.shape[-1]
    if method == "auto":
        method = "eigvalsh" if V <= _EIGVALSH_MAX_V else "secular"
    if method not in ("eigvalsh", "secular"):
        raise ValueError(f"method must be 'auto', 'eigvalsh' or 'secular', got {method!r}")
    p = softmax_probs(z, temperature)
    H = entropy(p)
    pm = p.max(-1).values
    if method == "eigvalsh":
        jac_norm = torch.linalg.eigvalsh(softmax_jacobian(z, temperature))[
            ..., -1
        ]  # PSD: top eigenvalue
    else:
        jac_norm = softmax_jacobian_top_eigenvalue(p) / temperature
    cv = c_vocab(V)[0]
    tau = temperature
    return {
        "jac_norm": jac_norm.numpy(),
        "trace": ((1 - (p * p).sum(-1)) / tau).numpy(),
        "pmax_bound": (2 * (1 - pm) / tau).numpy(),
        "paper_bound": (2 * cv * torch.sqrt(H / math.log(V)) / tau).numpy(),
        "linear_bound": (2 * H / tau).numpy(),
        "entropy": H.numpy(),
        "p_max": pm.numpy(),
        "c_vocab": cv,
    }


_CHAIN_KEYS = ("jac_norm", "trace", "pmax_bound", "paper_bound", "linear_bound", "entropy", "p_max")


def prop2_per_position(
    model, input_ids, attention_mask=None, temperature: float = 1.0, chunk: int = 64
) -> dict:
    """Prop 2's two sides (and the chain between them) at every real position of a causal LM.

    The per-position check behind the paper's Figure 2 (Asadulaev et al., arXiv 2605.21654: the
    entropy bound verified on OLMo-2, ‖J_softmax‖ against 2 C_V √(H/log|V|)/τ per position).
    ``model`` is any Hugging Face causal LM (e.g. ``Olmo2ForCausalLM``, on any device and in any
    dtype); ``input_ids`` ``(B, S)``, ``attention_mask`` ``(B, S)`` with 1 at real tokens (None:
    all real). One no-grad forward pass, in the model's current mode (``eval()`` it first), with
    ``position_ids`` counted over the real tokens (cumsum(mask) − 1, as Hugging Face's
    ``generate`` does), so that a left-padded row gives the logits of the unpadded sequence;
    then the logits at the real positions, ``chunk`` at a time, are copied to the CPU, cast to
    float64 and passed to :func:`prop2_chain` at ``temperature``, so only (chunk, V) float64
    arrays exist at once. The logits at position t are the next-token law after token t.

    Returns 1-D float64 numpy arrays over the N real positions (row-major order): the
    :func:`prop2_chain` entries ``jac_norm``, ``trace``, ``pmax_bound``, ``paper_bound``,
    ``linear_bound``, ``entropy``, ``p_max``; int64 ``row`` and ``position`` (the column in
    ``input_ids``), so that entry k is ``logits[row[k], position[k]]``; and ``c_vocab``.
    """
    if int(chunk) != chunk or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    chunk = int(chunk)
    ids = torch.as_tensor(input_ids)
    if ids.ndim != 2:
        raise ValueError("input_ids must be (batch, seq)")
    mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask)
    if mask.shape != ids.shape:
        raise ValueError("attention_mask must have the shape of input_ids")
    real_mask = mask.to("cpu") == 1  # (B, S)
    position_ids = (real_mask.long().cumsum(-1) - 1).clamp_min(0)  # (B, S)
    dev = getattr(model, "device", None) or next(model.parameters()).device
    with torch.no_grad():
        out = model(
            input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=position_ids.to(dev)
        )
        logits = out.logits if hasattr(out, "logits") else out[0]  # (B, S, V)
    real = real_mask.nonzero()  # (N, 2)
    rows, pos = real[:, 0], real[:, 1]
    V = logits.shape[-1]
    res = {k: [] for k in _CHAIN_KEYS}
    cv = c_vocab(V)[0]
    for s in range(0, len(rows), chunk):
        r, t = rows[s : s + chunk], pos[s : s + chunk]
        z = logits[r.to(logits.device), t.to(logits.device)].to("cpu").to(torch.float64)  # (c, V)
        c = prop2_chain(z, temperature)
        for k in _CHAIN_KEYS:
            res[k].append(c[k])
    res = {k: np.concatenate(v) if v else np.zeros(0) for k, v in res.items()}
    res.update(row=rows.numpy().astype(np.int64), position=pos.numpy().astype(np.int64), c_vocab=cv)
    return res


def opnorm(M) -> float:
    """Largest singular value of a matrix."""
    return float(torch.linalg.matrix_norm(torch.as_tensor(M, dtype=torch.float64), ord=2))


def sampling_path_gap(
    policy,
    tokens: torch.Tensor,
    position: int,
    layer: int,
    temperature: float = 1.0,
    noise: torch.Tensor | None = None,
) -> dict:
    """Measured sampling-path Jacobian at ``layer`` from ``position`` j to j + 1, and its bound.

    ``tokens``: ids ``(S,)`` or relaxed rows ``(S, V)``, with S > j + 1. S = A Eᵀ J_sm B (see
    module docstring), where J_sm is the softmax Jacobian at the logits z_j and temperature τ.
    With ``noise`` g ``(V,)`` (a Gumbel draw), J_sm is taken at z_j + g instead: the Jacobian
    (diag y − y yᵀ)/τ of the relaxed sample y = softmax((z_j + g)/τ), which with relaxed rows
    along a Gumbel-softmax rollout is that rollout's own sampling-path Jacobian (the *Gumbel
    reading* of :func:`theorem1_sides`); ``noise=None`` (the default) is the noise-free one.
    Returns ``gap`` = ‖S‖, the factor norms ``read`` ‖A‖, ``emb`` ‖E‖, ``head`` ‖B‖, ``factor``
    = ‖A‖‖E‖‖B‖ (the paper's C without the softmax part), the :func:`prop2_chain` entries at the
    same point multiplied by ``factor`` (bounds on ``gap``), and ``direct`` =
    ‖∂h^{(l)}_{j+1}/∂h^{(l)}_j‖ with the inputs fixed (J^attn of eq 20).
    """
    (layer,) = check_layers(policy, [layer])
    tokens = torch.as_tensor(tokens)
    if tokens.ndim == 1:
        tokens = tokens.long()
    elif tokens.ndim != 2:
        raise ValueError("tokens must be ids (S,) or relaxed rows (S, V)")
    j = position
    if not 0 <= j < tokens.shape[0] - 1:
        raise ValueError(f"position must be in 0..S-2 = {tokens.shape[0] - 2}")
    B = position_jacobian(policy, tokens, (layer, j), ("logits", j))  # (V, d)
    # (d, d) each, one pass: A through the embedding at j + 1, and the direct path from h^(l)_j
    A, direct = position_jacobian(policy, tokens, [(0, j + 1), (layer, j)], (layer, j + 1))
    E = policy.embedding_matrix().detach().to(torch.float64)  # (V, d)
    with torch.no_grad():
        z = policy(tokens[None]).logits[0, j]
    if noise is not None:
        z = z + torch.as_tensor(noise, dtype=z.dtype)
    Jsm = softmax_jacobian(z, temperature)  # (V, V)
    S = A @ E.T @ Jsm @ B  # (d, d)
    chain = prop2_chain(z, temperature)
    factor = opnorm(A) * opnorm(E) * opnorm(B)
    out = {
        "gap": opnorm(S),
        "read": opnorm(A),
        "emb": opnorm(E),
        "head": opnorm(B),
        "factor": factor,
        "direct": opnorm(direct),
        "matrix": S,
    }
    for k in ("jac_norm", "trace", "pmax_bound", "paper_bound", "linear_bound"):
        out[k] = factor * float(chain[k])
    out["entropy"], out["p_max"], out["c_vocab"] = (
        float(chain["entropy"]),
        float(chain["p_max"]),
        chain["c_vocab"],
    )
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
    """∂h^{(l_dst)}_{t}/∂h^{(l_src)}_{t'} with tokens fixed (t' < t: the cross-position, attention
    path)."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    if src[1] >= dst[1]:
        raise ValueError(
            "src position must be earlier than dst position for a cross-position Jacobian"
        )
    return position_jacobian(policy, tokens, src, dst)


def _rmsnorm_float64(self, hidden_states: torch.Tensor) -> torch.Tensor:
    h = hidden_states.to(torch.float64)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
    return (self.weight.to(torch.float64) * h).to(hidden_states.dtype)


@contextmanager
def rmsnorm_setting(model: torch.nn.Module, eps: float | None = None, float64: bool = False):
    """Within the block, every RMSNorm of a Hugging Face ``model`` (each submodule with a
    ``variance_epsilon``, as Olmo2RMSNorm and LlamaRMSNorm have) uses ``eps`` in place of the
    config's ``rms_norm_eps``, and with ``float64=True`` computes in float64 instead of
    Hugging Face's float32. Restored on exit; only this model's norm instances are touched.

    Used for Prop 3: it separates the singular values of a Jacobian that the post-attention norm
    suppresses (of size proportional to ``eps``) from rounding.
    """
    norms = [m for m in model.modules() if hasattr(m, "variance_epsilon")]
    if not norms:
        raise ValueError("model has no RMSNorm with a variance_epsilon attribute")
    if eps is not None and not eps > 0:
        raise ValueError("eps must be positive")
    old = [(m.variance_epsilon, m.__dict__.get("forward")) for m in norms]
    try:
        for m in norms:
            if eps is not None:
                m.variance_epsilon = float(eps)
            if float64:
                m.forward = _rmsnorm_float64.__get__(m)
        yield model
    finally:
        for m, (e, fwd) in zip(norms, old):
            m.variance_epsilon = e
            if fwd is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = fwd


# --------------------------------------------------------------------------------------------
# Theorem 1 (eq 23)
# --------------------------------------------------------------------------------------------


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


JACOBIAN_READINGS = ("softmax", "gumbel")


def gumbel_rollout_rows(
    policy, prefix: torch.Tensor, horizon: int, n: int, temperature: float, generator=None
) -> tuple:
    """``n`` Gumbel-softmax rollouts from ``prefix``, as :func:`relaxed_rollout` draws them.

    Returns ``(rows (n, P + T, V), noise (n, T, V))``: the prefix as one-hot rows followed by the
    relaxed samples y_k = softmax((z_{P+k−1} + g_k)/τ), and the Gumbel noise g_k of each step (the
    noise at the logits read at position P − 1 + k). No gradients.
    """
    prefix = torch.as_tensor(prefix, dtype=torch.long)
    dtype, V = policy.embedding_matrix().dtype, policy.vocab_size
    x = torch.nn.functional.one_hot(prefix, V).to(dtype).expand(n, -1, -1)
    gs = []
    with torch.no_grad():
        for _ in range(int(horizon)):
            z = policy(x).logits[:, -1]
            g = gumbel_noise(z.shape, dtype, generator)
            x = torch.cat([x, torch.softmax((z + g) / temperature, -1)[:, None]], 1)
            gs.append(g)
    return x, torch.stack(gs, 1)


@dataclass
class Theorem1Sides:
    """Both sides of Theorem 1 (eq 23) at step t = 1, for each measured layer.

    ``lhs[l]`` = ‖G − E[λ^τ_1]‖ (the Monte Carlo mean of ``n_relaxed`` relaxed costates; the exact
    value gradient G stands for E[λ̂ | h], which it equals for a discrete policy: Part III, "The
    empirical costate is an unbiased value gradient"),
    ``se[l]`` its standard error (the norm of the per-coordinate standard errors), ``rhs[l]`` the
    right side from :func:`theorem1_rhs`, ``value_grad_norm[l]`` = ‖G‖. ``entropy`` is the mean
    next-token entropy (nats) over the sampled sequences. ``jacobian_samples`` lists
    ``(measured gap, paper's Prop 2 bound)`` for every noise-free sampling-path Jacobian that was
    measured. ``rhs_by[reading][l]`` is the right side under each Jacobian reading that was
    asked for (``"softmax"`` or ``"gumbel"``, see :func:`theorem1_sides`); ``rhs`` is that of
    the first one.
    """

    lhs: dict
    se: dict
    rhs: dict
    value_grad_norm: dict
    entropy: float
    jacobian_samples: list = field(default_factory=list)
    rhs_by: dict = field(default_factory=dict)

    def holds(self, layer: int, n_se: float = 2.0, reading: str | None = None) -> bool:
        """LHS ≤ RHS + ``n_se`` standard errors: the verdict the book prints (``reading``: whose
        right side; the first one asked for by default)."""
        rhs = self.rhs if reading is None else self.rhs_by[reading]
        return self.lhs[layer] <= rhs[layer] + n_se * self.se[layer]


def theorem1_sides(
    policy,
    prefix: torch.Tensor,
    horizon: int,
    reward_fn,
    layers,
    temperature: float,
    n_relaxed: int = 4000,
    n_sequences: int = 8,
    gamma: float = 1.0,
    generator: torch.Generator | None = None,
    jacobian="softmax",
) -> Theorem1Sides:
    """Measure both sides of Theorem 1 (eq 23, product form of A.9) at t = 1 on ``policy``.

    Let τ be ``temperature``, T = ``horizon``. The left side is ‖E[λ̂_1 | h] − E[λ^τ_1 | h]‖,
    where E[λ̂_1 | h] is the exact value gradient G (by enumeration, ``value_grad_exact``) and
    E[λ^τ_1 | h] the mean of ``n_relaxed`` relaxed (Gumbel-softmax) costates. The right side is
    Σ_{k>1} γ^{k−1} (Π ‖J_{j←j−1}‖) ε_k with ε_k = ‖S_k‖ ‖E[λ^τ_k]‖ (A.9). ‖S_k‖ (the
    sampling-path Jacobian, :func:`sampling_path_gap`) and ‖J‖ (the direct, tokens-fixed
    Jacobian) depend on the sampled tokens and cannot be pulled out of the conditional
    expectation, so they are taken at their largest over ``n_sequences`` sampled sequences,
    which favours the theorem. Draws the relaxed rollouts and then the sequences from
    ``generator``, in that order.

    ``jacobian`` chooses which Jacobians the right side reads, one reading or a tuple of them
    (the left side and its s.e. are the same for all; ``rhs_by`` has one entry per reading):

    * ``"softmax"`` (the book's): ‖S_k‖ and ‖J‖ along ``n_sequences`` hard sampled sequences,
      with the noise-free softmax Jacobian (diag p − p pᵀ)/τ at p = softmax(z/τ);
    * ``"gumbel"``: the Gumbel rollout's own Jacobians, along ``n_sequences`` further
      Gumbel-softmax rollouts (drawn after the sequences): relaxed rows as inputs and
      (diag y − y yᵀ)/τ at the relaxed sample y = softmax((z + g)/τ) of each step, the
      Jacobian that the relaxed costates of the left side are computed with.
    """
    readings = (jacobian,) if isinstance(jacobian, str) else tuple(jacobian)
    if not readings or any(r not in JACOBIAN_READINGS for r in readings):
        raise ValueError(f"jacobian must be one of {JACOBIAN_READINGS} or a tuple of them")
    n_prefix = torch.as_tensor(prefix).numel()
    if n_prefix != 1:
        raise ValueError(
            f"prefix must be one token (the prompt, e.g. BOS), got {n_prefix}: the steps "
            "t = 1..T are read at positions 0..T-1, which assumes it"
        )
    layers = check_layers(policy, layers)
    T = int(horizon)
    _, G = value_grad_exact(policy, prefix, T, reward_fn, layers)
    _, lt = costate_relaxed(
        policy, prefix, T, reward_fn, n_relaxed, temperature, layers, generator=generator
    )
    xs = sample(policy, prefix, T, n_sequences, generator=generator)  # (n, T + 1)
    with torch.no_grad():
        p = torch.softmax(policy(xs).logits[:, :T], -1)  # (n, T, V)
        ent = float(entropy(p).mean())  # mean next-token entropy per step (nats)
    if "gumbel" in readings:
        rows, noise = gumbel_rollout_rows(policy, prefix, T, n_sequences, temperature, generator)
    out = Theorem1Sides({}, {}, {}, {}, ent, rhs_by={r: {} for r in readings})
    for l in layers:
        m = lt[l][:, 0].mean(0)
        out.se[l] = float((lt[l][:, 0].std(0) / n_relaxed**0.5).norm())
        lam_norm = np.array([float(lt[l][:, k].mean(0).norm()) for k in range(T)])
        for r in readings:
            S_sup, J_sup = np.zeros(T), np.zeros(T)
            for i in range(n_sequences):
                for j in range(T - 1):
                    if r == "softmax":
                        sg = sampling_path_gap(policy, xs[i], j, l, temperature)
                        out.jacobian_samples.append((sg["gap"], sg["paper_bound"]))
                    else:
                        sg = sampling_path_gap(policy, rows[i], j, l, temperature, noise[i, j])
                    S_sup[j + 1] = max(S_sup[j + 1], sg["gap"])
                    J_sup[j + 1] = max(J_sup[j + 1], sg["direct"])
            out.rhs_by[r][l] = float(theorem1_rhs(J_sup, S_sup * lam_norm, gamma)[0])
        out.rhs[l] = out.rhs_by[readings[0]][l]
        out.lhs[l] = float((m - G[l]).norm())
        out.value_grad_norm[l] = float(G[l].norm())
    return out
