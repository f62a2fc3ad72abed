"""vghlib.stats: means with standard errors against closed forms, with negative controls."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from vghlib.stats import (
    _paired_interval,
    _rho,
    block_spearman,
    compare_across,
    leave_one_out_predictions,
    loo_r2,
    mean_ci,
    partial_spearman,
    spearman,
    spearman_difference,
    summarize,
    zscore,
)


def test_summarize_matches_numpy_and_its_interval_covers_the_true_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(4000, 2))
    est = summarize(x)
    assert np.allclose(est.mean, x.mean(0)) and np.allclose(
        est.se, x.std(0, ddof=1) / math.sqrt(4000)
    )
    assert est.covers([3.0, 3.0]).all()
    assert not est.covers([3.5, 3.5]).any()  # 0.5 is ~16 standard errors away
    lo, hi = est.ci()
    assert np.all(lo < 3.0) and np.all(hi > 3.0)


def test_mean_ci_is_the_same_interval_as_summarize():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    m, h = mean_ci(x)
    est = summarize(x)
    assert np.allclose(m.numpy(), est.mean) and np.allclose(h.numpy(), 1.96 * est.se)


def test_bad_samples_are_rejected():
    with pytest.raises(ValueError, match="n >= 2"):
        summarize(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        summarize(np.array([1.0, np.nan]))


def test_spearman_interval_and_permutation_p_value():
    x = np.arange(20.0)
    strong = spearman(x, x + np.random.default_rng(0).normal(0, 2, 20), n_resamples=500)
    assert strong.rho > 0.8 and strong.ci[0] > 0.5 and strong.p_value < 0.01
    noise = spearman(x, np.random.default_rng(1).normal(size=20), n_resamples=500)
    assert noise.p_value > 0.05 and noise.ci[0] < 0 < noise.ci[1]  # control: no association
    again = spearman(x, x + np.random.default_rng(0).normal(0, 2, 20), n_resamples=500)
    assert again == strong  # seeded: reruns agree
    with pytest.raises(ValueError, match="NaN"):
        spearman([1, 2, 3, np.nan], [1, 2, 3, 4])


def test_partial_spearman_removes_what_the_control_explains():
    rng = np.random.default_rng(2)
    c = rng.normal(size=200)
    x, y = c + 0.1 * rng.normal(size=200), c + 0.1 * rng.normal(size=200)
    assert partial_spearman(x, y, c) < 0.3  # x and y agree only through c
    y2 = x + 0.1 * rng.normal(size=200)
    assert partial_spearman(x, y2, c) > 0.5  # here x says more than c


def test_leave_one_out_predictions_are_out_of_sample():
    x = np.arange(10.0)
    assert np.allclose(leave_one_out_predictions(x, 3 * x + 1), 3 * x + 1)  # exact line
    y = np.zeros(10)
    y[4] = 10.0  # an outlier is not predicted from itself
    pred = leave_one_out_predictions(x, y)
    assert pred[4] < 2.0
    assert np.allclose(zscore([1.0, 2.0, 3.0]), [-1.2247449, 0.0, 1.2247449])
    assert np.all(zscore([2.0, 2.0]) == 0)


def test_spearman_difference_and_loo_r2():
    rng = np.random.default_rng(3)
    y = rng.normal(size=30)
    good, bad = y + 0.3 * rng.normal(size=30), rng.normal(size=30)
    d, (lo, hi) = spearman_difference(good, bad, y, n_resamples=500)
    assert d > 0.5 and lo > 0
    d0, (lo0, hi0) = spearman_difference(good, good, y, n_resamples=500)
    assert d0 == 0 and lo0 == hi0 == 0  # control: a predictor never beats itself
    assert loo_r2(good, y) > 0.5 and loo_r2(bad, y) < 0.1


def test_the_vectorised_rank_correlation_is_scipys_spearman():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(50, 12)), rng.normal(size=(50, 12))
    y[:, 3] = y[:, 4]  # ties are ranked as scipy does
    want = np.array([spearmanr(a, b).statistic for a, b in zip(x, y)])
    assert np.allclose(_rho(x, y, axis=-1), want)
    assert _rho(np.ones(5), np.arange(5.0)) == 0.0  # a constant column: no ranks


def _ar1(rng, n, phi):
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = phi * x[i - 1] + math.sqrt(1 - phi**2) * rng.normal()
    return x


def _false_alarms(phi, reps=200, n=24):
    """How often each 95% interval excludes ρ = 0 for two independent AR(1) series."""
    rng = np.random.default_rng(0)
    iid = block = 0
    stat = lambda a, b, axis=-1: np.asarray(_rho(a, b, axis))  # noqa: E731
    for r in range(reps):
        x, y = _ar1(rng, n, phi), _ar1(rng, n, phi)
        lo, hi = _paired_interval((x, y), stat, 500, 0.95, r)
        iid += not lo <= 0 <= hi
        c = block_spearman(x, y, block=6, n_resamples=500, seed=r)
        block += not c.ci[0] <= 0 <= c.ci[1]
    return iid / reps, block / reps


def test_block_bootstrap_is_less_fooled_by_neighbouring_checkpoints():
    iid, block = _false_alarms(phi=0.9)  # lag-1 autocorrelation like the gains of a trajectory
    assert iid > 0.25  # the control: resampling single checkpoints claims a correlation often
    assert block < 0.7 * iid  # blocks keep neighbours together and claim it less often
    assert block > 0.05  # and still too often with 24 checkpoints: one trajectory is not enough
    iid0, block0 = _false_alarms(phi=0.0, reps=100)  # independent checkpoints: both near 5%
    assert iid0 < 0.15 and block0 < 0.2


def test_block_spearman_keeps_rho_and_gives_no_p_value():
    x = np.arange(20.0)
    y = x + np.random.default_rng(1).normal(0, 3, 20)
    c = block_spearman(x, y, block=5)
    assert c.rho == pytest.approx(spearmanr(x, y).statistic)
    assert c.ci[0] <= c.rho <= c.ci[1] and math.isnan(c.p_value) and "p =" not in str(c)
    with pytest.raises(ValueError, match="block"):
        block_spearman(x, y, block=21)


def test_compare_across_counts_trajectories_and_runs_a_sign_test():
    a, b = np.array([0.8, 0.7, 0.9, 0.6, 0.75]), np.array([0.5, 0.6, 0.4, 0.5, 0.7])
    c = compare_across(a, b)
    assert (c.wins, c.losses, c.ties, c.k) == (5, 0, 0, 5)
    assert c.p_sign == pytest.approx(2 / 2**5)  # 5 of 5: the smallest two-sided p with K = 5
    assert c.ci[0] > 0 and c.median_diff == pytest.approx(0.1)  # of 0.3, 0.1, 0.5, 0.1, 0.05
    swapped = compare_across(b, a)  # the control: the other way round loses every time
    assert (swapped.wins, swapped.losses) == (0, 5) and swapped.median_diff < 0
    same = compare_across(a, a)
    assert (same.ties, same.p_sign) == (5, 1.0)
    assert compare_across(a, np.array([0.5, 0.6, 0.4, 0.5, 0.9])).wins == 4
