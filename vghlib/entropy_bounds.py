"""How far a distribution is from a point mass, measured by entropy: the constants of Prop 2.

Reference: Asadulaev et al., arXiv 2605.21654, Prop 2 (eq 21) and its proof in Appendix A.7.

The proof of Prop 2 needs a bound of the form ``1 - p_max <= C_V * sqrt(H / log|V|)`` and only
argues that a finite ``C_V`` exists. This module computes it. Let ``p_max`` be the largest
probability, ``H`` the Shannon entropy in nats (``entropy``) and ``|V|`` the number of symbols
(``vocab_size``).

The key fact: among all distributions on ``vocab_size`` symbols whose largest probability is
``m``, the entropy is smallest for ``(m, ..., m, r, 0, ..., 0)`` with ``k = floor(1/m)`` copies of
``m`` and the remainder ``r = 1 - k m`` (this vector majorizes every other one with the same
maximum, and entropy is Schur-concave). Every ratio ``(1 - p_max) / g(H)`` with ``g`` increasing
therefore has its supremum on this one-parameter family, so the constants below come from a
one-dimensional optimisation, confirmed against random search.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from vghlib.course import Feedback, check_numeric


def entropy(p, axis: int = -1):
    """Shannon entropy in nats along ``axis``, with 0 log 0 = 0. Rows must be probability
    vectors."""
    p = np.asarray(p, dtype=float)
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError("entropy needs non-negative finite probabilities")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


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
        res = minimize_scalar(lambda m: -ratio(m), bounds=(a, b), method="bounded",
                              options={"xatol": 1e-12})
        best = max(best, (vals[i], grid[i]), (-res.fun, res.x))
        k += 1
        if k >= k_max:
            if 1.0 / g(math.log(k + 1)) < best[0]:   # no remaining piece can beat `best`
                break
            k_max *= 2
    return float(best[0]), float(best[1])


def c_vocab(vocab_size: int) -> tuple[float, float]:
    """The paper's constant C_V = sup over the simplex of ``(1 - p_max) / sqrt(H / log|V|)``.

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


def random_search_ratio(vocab_size: int, n_draws: int = 20_000, seed: int = 0,
                        power: float = 0.5, normalise: bool = True) -> float:
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
    p = np.concatenate(draws + [sparse])                      # (n_draws, n)
    h = entropy(p)
    keep = h > 1e-9
    scale = math.log(n) if normalise else 1.0
    ratio = (1 - p.max(axis=1))[keep] / (h[keep] / scale) ** power
    return float(ratio.max())


def dirichlet_gap_ratio(vocab_size: int = 50, n_draws: int = 10_000, concentration: float = 1.0,
                        seed: int = 0) -> float:
    """Largest ``(1 - p_max) / H`` over ``n_draws`` Dirichlet(``concentration``) draws (science
    note F4)."""
    n = _check_vocab(vocab_size)
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(n, float(concentration)), size=n_draws)   # (n_draws, n)
    h = entropy(p)
    keep = h > 1e-12
    return float(((1 - p.max(axis=1))[keep] / h[keep]).max())


def check_sup_ratio(answer) -> Feedback:
    """Self-check: the largest value of ``(1 - p_max) / H`` (nats) over all distributions, 3
    digits."""
    name = "proofs-sup-ratio"
    if answer is None:
        return Feedback(name, False,
                        "no answer yet (set `answer` to a number and run the cell again)")
    ref, _ = sup_gap_over_entropy(8)
    return check_numeric(name, answer, ref, rtol=2e-3,
                         hint="for a fixed p_max, which distribution has the least entropy?")
