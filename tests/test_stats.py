"""vghlib.stats: means with standard errors against closed forms, with negative controls."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from vghlib.stats import (
    _rho,
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
