"""Monte Carlo summaries with their uncertainty: means with standard errors and confidence intervals.

Reference: the book reports every estimate of the paper's quantities (eq 2–3, 9, Corollary 1,
eq 24–31) with an interval. This module is the one place where "mean ± z·se" is computed.

* :class:`Estimate` and :func:`summarize`: mean, standard error and per-sample std of an (n, p)
  array of per-sample values (numpy), with ``ci``, ``covers`` and ``z_score``.
* :func:`mean_ci`: the same mean and its half-width z·se for a torch tensor of samples, over rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Estimate", "summarize", "mean_ci"]


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
    a = samples.detach().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples, float)
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
