"""vghlib.stats: means with standard errors against closed forms, with negative controls."""

import math

import numpy as np
import pytest
import torch

from vghlib.stats import mean_ci, summarize


def test_summarize_matches_numpy_and_its_interval_covers_the_true_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(4000, 2))
    est = summarize(x)
    assert np.allclose(est.mean, x.mean(0)) and np.allclose(est.se, x.std(0, ddof=1) / math.sqrt(4000))
    assert est.covers([3.0, 3.0]).all()
    assert not est.covers([3.5, 3.5]).any()          # 0.5 is ~16 standard errors away
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
