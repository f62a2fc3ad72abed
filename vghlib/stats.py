"""Estimates with their uncertainty: means with standard errors, and rank correlations over
checkpoints.

Reference: the book reports every estimate of the paper's quantities (eq 2–3, 9, Corollary 1,
eq 24–31) with an interval; Section 6's Spearman correlations get the bootstrap intervals,
permutation p-values and out-of-sample checks that 20 checkpoints and one correlation need
(findings page, "Eqs 25–30: the usable signal is a lower bound, and the impact law is posited").

* :class:`Estimate` and :func:`summarize`: mean, standard error and per-sample std of an (n, p)
  array of per-sample values (numpy), with ``ci``, ``covers`` and ``z_score``.
* :func:`mean_ci`: the same mean and its half-width z·se for a torch tensor of samples, over rows.
* :func:`spearman` (ρ, bootstrap interval, permutation p-value), :func:`spearman_difference`
  (does one predictor beat another, with an interval), :func:`partial_spearman` (beyond a
  control), :func:`zscore`, :func:`leave_one_out_predictions` and :func:`loo_r2`, all over
  checkpoints and all from ``scipy.stats``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import binomtest, bootstrap, permutation_test, rankdata

__all__ = [
    "Estimate",
    "summarize",
    "mean_ci",
    "Correlation",
    "spearman",
    "rank_correlation",
    "block_spearman",
    "Comparison",
    "compare_across",
    "zscore",
    "partial_spearman",
    "leave_one_out_predictions",
    "spearman_difference",
    "loo_r2",
]


@dataclass(frozen=True)
class Estimate:
    """Monte Carlo mean of per-sample gradients with its standard error (per parameter)."""

    mean: np.ndarray
    se: np.ndarray
    std: np.ndarray
    n: int

    def ci(self, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
        """Normal-approximation confidence interval mean ± z·se (z = 1.96: 95%)."""
        return self.mean - z * self.se, self.mean + z * self.se

    def covers(self, value, z: float = 3.0) -> np.ndarray:
        """Whether ``value`` lies within z standard errors (per parameter)."""
        return np.abs(self.mean - np.asarray(value, dtype=float)) <= z * self.se

    def z_score(self, value) -> np.ndarray:
        """|mean − value| / se, the distance in standard errors."""
        return np.abs(self.mean - np.asarray(value, dtype=float)) / np.maximum(self.se, 1e-300)


def summarize(samples) -> Estimate:
    """Mean, standard error and per-sample std of an (n, p) array of per-sample gradients."""
    a = (
        samples.detach().numpy()
        if isinstance(samples, torch.Tensor)
        else np.asarray(samples, float)
    )
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"samples must have shape (n, p) with n >= 2, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("samples contain NaN or inf; check the cost and theta (e.g. sigma > 0)")
    std = a.std(axis=0, ddof=1)
    return Estimate(a.mean(axis=0), std / math.sqrt(a.shape[0]), std, a.shape[0])


def mean_ci(samples: torch.Tensor, z: float = 1.96) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over rows and the half-width z·se of its confidence interval (default 95 %)."""
    x = samples.reshape(samples.shape[0], -1)
    return x.mean(0), z * x.std(0) / math.sqrt(x.shape[0])


# --------------------------------------------------------------------------------------------
# Rank correlations over checkpoints, with their uncertainty (Section 6)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correlation:
    """A Spearman correlation over n paired values, with a bootstrap interval and a p-value.

    ``rho``: Spearman's ρ; ``ci``: the (low, high) bootstrap percentile interval at ``level``,
    resampling the pairs (checkpoints) with replacement; ``p_value``: two-sided permutation test
    of ρ = 0 (the pairing shuffled), or NaN where no valid one exists (checkpoints of one
    trajectory are not exchangeable: :func:`block_spearman`); ``n``: the number of pairs.
    """

    rho: float
    ci: tuple
    p_value: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        p = "" if math.isnan(self.p_value) else f", p = {self.p_value:.3f}"
        return f"{self.rho:+.2f} [{self.ci[0]:+.2f}, {self.ci[1]:+.2f}]{p} (n = {self.n})"


def _pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 4:
        raise ValueError(
            f"need two 1-D arrays of the same length >= 4, got {x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("the values contain NaN or inf; drop those checkpoints first")
    return x, y


def _rho(x, y, axis: int = -1):
    """Spearman's ρ along ``axis`` (vectorised over resamples): Pearson's r of the ranks.

    A constant column has no ranks to correlate: its ρ is reported as 0.
    """
    rx, ry = rankdata(x, axis=axis), rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    den = np.sqrt((rx**2).sum(axis=axis) * (ry**2).sum(axis=axis))
    num = (rx * ry).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return float(out) if np.ndim(out) == 0 else out


def _paired_interval(data, statistic, n_resamples: int, level: float, seed: int) -> tuple:
    """Percentile bootstrap interval of ``statistic`` resampling the checkpoints (paired rows)."""
    boot = bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    lo, hi = boot.confidence_interval
    return float(lo), float(hi)


def spearman(x, y, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Correlation:
    """Spearman's ρ of paired ``x``, ``y`` (one pair per checkpoint) with its uncertainty.

    The interval is ``scipy.stats.bootstrap`` (percentile, paired resampling); the p-value is
    ``scipy.stats.permutation_test`` with ``permutation_type="pairings"``, both seeded by ``seed``
    so that a rerun prints the same numbers.
    """
    x, y = _pairs(x, y)
    vec = lambda a, b, axis=-1: np.asarray(_rho(a, b, axis))  # noqa: E731  (scipy wants arrays)
    lo, hi = _paired_interval((x, y), vec, n_resamples, level, seed)
    perm = permutation_test(
        (x, y),
        vec,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed + 1),
    )
    return Correlation(_rho(x, y), (lo, hi), float(perm.pvalue), x.size, level)


def rank_correlation(x, y) -> float:
    """Spearman's ρ of paired ``x`` and ``y`` alone, with no interval (0 for a constant column)."""
    x, y = _pairs(x, y)
    return float(_rho(x, y))


def block_spearman(
    x, y, block: int = 6, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Correlation:
    """Spearman's ρ of the checkpoints of one trajectory, with a moving-block bootstrap interval.

    Neighbouring checkpoints of one pretraining run are not independent (their gains and scores
    drift together), so resampling single checkpoints, as :func:`spearman` does, gives intervals
    that are too narrow. The moving-block bootstrap (Künsch, 1989) resamples runs of ``block``
    consecutive checkpoints, in step order, with replacement, and joins them until there are n.
    No p-value is given: a permutation test assumes exchangeable checkpoints, which a trend
    breaks (``p_value`` is NaN). Compare trajectories, not checkpoints, for a test
    (:func:`compare_across`).
    """
    x, y = _pairs(x, y)
    idx = _block_indices(x.size, block, n_resamples, seed)  # (R, n)
    lo, hi = _percentiles(np.asarray(_rho(x[idx], y[idx], axis=-1)), level)
    return Correlation(_rho(x, y), (lo, hi), float("nan"), x.size, level)


def _block_indices(n: int, block: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) indices of a moving-block bootstrap: runs of ``block`` consecutive
    checkpoints, starts drawn uniformly with replacement, joined and cut to n."""
    if not 1 <= block <= n:
        raise ValueError(f"block must lie in 1..{n} (the number of checkpoints), got {block}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(n_resamples, -(-n // block)))
    return (starts[..., None] + np.arange(block)).reshape(n_resamples, -1)[:, :n]


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    a = (1 - level) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Comparison:
    """One predictor against another over K independent trajectories (one ρ each).

    ``wins``, ``losses``, ``ties``: trajectories where ρ_a > ρ_b, < or =; ``p_sign``: the
    two-sided sign test of "a and b are equally likely to win" (ties dropped);
    ``median_diff``: the median of ρ_a − ρ_b; ``ci``: its percentile bootstrap interval,
    resampling trajectories; ``k``: the number of trajectories.
    """

    wins: int
    losses: int
    ties: int
    p_sign: float
    median_diff: float
    ci: tuple
    k: int

    def __str__(self) -> str:
        return (
            f"wins {self.wins} of {self.k} (p = {self.p_sign:.3f}, sign test); median "
            f"difference {self.median_diff:+.2f} [{self.ci[0]:+.2f}, {self.ci[1]:+.2f}]"
        )


def compare_across(rho_a, rho_b, n_resamples: int = 2000, level: float = 0.95, seed: int = 0):
    """Does predictor a beat predictor b? Paired over trajectories, the unit that is independent.

    ``rho_a``, ``rho_b``: one ρ per trajectory (the same trajectories, in the same order).
    Returns a :class:`Comparison`: the sign test (``scipy.stats.binomtest``) and a bootstrap
    interval of the median difference over trajectories.
    """
    a, b = np.asarray(rho_a, dtype=float), np.asarray(rho_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need one ρ per trajectory for each, >= 2, got {a.shape}, {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("the ρ values contain NaN or inf")
    d = a - b
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    p_sign = 1.0 if wins + losses == 0 else float(binomtest(wins, wins + losses).pvalue)
    rng = np.random.default_rng(seed)
    boot = np.median(d[rng.integers(0, d.size, size=(n_resamples, d.size))], axis=1)
    q = (1 - level) / 2
    lo, hi = np.quantile(boot, [q, 1 - q])
    return Comparison(
        wins,
        losses,
        d.size - wins - losses,
        p_sign,
        float(np.median(d)),
        (float(lo), float(hi)),
        d.size,
    )


def zscore(x) -> np.ndarray:
    """(x − mean) / std across checkpoints (population std); a constant column gives zeros."""
    x = np.asarray(x, dtype=float)
    sd = x.std()
    return np.zeros_like(x) if sd == 0 else (x - x.mean()) / sd


def partial_spearman(x, y, control) -> float:
    """Spearman's ρ of ``x`` and ``y`` after removing what ``control`` explains of each.

    Ranks of all three, then the Pearson correlation of the residuals of rank(x) and rank(y)
    on rank(control) (linear least squares): does x say anything about y beyond ``control``?
    """
    x, y = _pairs(x, y)
    c = _pairs(control, x)[0]
    rx, ry, rc = rankdata(x), rankdata(y), rankdata(c)
    A = np.column_stack([np.ones_like(rc), rc])
    ex = rx - A @ np.linalg.lstsq(A, rx, rcond=None)[0]
    ey = ry - A @ np.linalg.lstsq(A, ry, rcond=None)[0]
    den = np.sqrt((ex**2).sum() * (ey**2).sum())
    return 0.0 if den == 0 else float((ex * ey).sum() / den)


def leave_one_out_predictions(features, y) -> np.ndarray:
    """Out-of-sample predictions of ``y`` from an affine fit on ``features``, one checkpoint held
    out at a time.

    ``features`` is (n,) or (n, k). For each i the least-squares fit y ≈ a + Fb uses every
    checkpoint but i, and predicts y_i. Returns the n held-out predictions.
    """
    y = np.asarray(y, dtype=float)
    F = np.asarray(features, dtype=float)
    F = F[:, None] if F.ndim == 1 else F
    if F.shape[0] != y.shape[0] or y.ndim != 1:
        raise ValueError(f"features {F.shape} and y {y.shape} disagree")
    A = np.column_stack([np.ones(len(y)), F])
    out = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        coef = np.linalg.lstsq(A[keep], y[keep], rcond=None)[0]
        out[i] = A[i] @ coef
    return out


def spearman_difference(
    x1, x2, y, n_resamples: int = 2000, level: float = 0.95, seed: int = 0, block: int | None = None
) -> tuple[float, tuple]:
    """ρ(x1, y) − ρ(x2, y) and its paired bootstrap interval: does predictor x1 beat x2 on y?

    The same resampled checkpoints serve both correlations, so the interval is that of the
    difference, not of two separate estimates. ``block``: resample runs of that many
    consecutive checkpoints (the moving-block bootstrap of :func:`block_spearman`), for the
    checkpoints of one trajectory; None resamples single checkpoints.
    """
    x1, y = _pairs(x1, y)
    x2 = _pairs(x2, y)[0]
    stat = lambda a, b, c, axis=-1: np.asarray(_rho(a, c, axis) - _rho(b, c, axis))  # noqa: E731
    if block is not None:
        idx = _block_indices(y.size, block, n_resamples, seed)
        return float(stat(x1, x2, y)), _percentiles(stat(x1[idx], x2[idx], y[idx]), level)
    return float(stat(x1, x2, y)), _paired_interval((x1, x2, y), stat, n_resamples, level, seed)


def loo_r2(features, y) -> float:
    """Out-of-sample R² = 1 − Σ(y − ŷ_loo)² / Σ(y − ȳ)² of :func:`leave_one_out_predictions`.

    Below 0 when the held-out predictions are worse than predicting the mean.
    """
    y = np.asarray(y, dtype=float)
    pred = leave_one_out_predictions(features, y)
    sst = ((y - y.mean()) ** 2).sum()
    return float("nan") if sst == 0 else float(1 - ((y - pred) ** 2).sum() / sst)
