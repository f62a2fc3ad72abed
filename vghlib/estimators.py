"""Score-function (SF) and pathwise (PD) gradient estimators of F(θ) = E[c(x)], and their variance.

Reference: Asadulaev et al., arXiv 2605.21654, eq 2 (score function), eq 3 (pathwise),
Lemma 1 / eq 10.

Let θ be ``theta`` (a vector of length p), c the cost ``cost`` and x ~ p(·; θ) a sample. The two
estimators of ∂F/∂θ, one sample at a time, are

    SF (eq 2):  g_SF = (c(x) − b) ∂_θ log p(x; θ)          b = ``baseline`` (0 in eq 2)
    PD (eq 3):  g_PD = ∂_θ c(x(z, θ)),   z ~ p(z) independent of θ

Both are computed with autograd and vectorised over samples: θ is broadcast to one leaf copy per
sample, so one backward pass gives the (n, p) matrix of per-sample gradients. Everything is float64.

A :class:`NoiseLaw` is a reparameterisable family x = x(z, θ): it knows its base noise z, the map
x(z, θ) and the log-density log p(x; θ). A :class:`Cost` is c(x) plus, where it exists, the closed
form of E[c(x)] under each law, from which the exact gradient follows by autograd. The laws offered:
``gaussian_location`` (θ = μ), ``gaussian`` (θ = (μ, σ)), ``logistic_location`` (θ = μ) and
``exponential_scale`` (θ = β, x = βE: a scale family, not a shift, so Lemma 1 does not apply to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.optimize import brentq

from vghlib.grpo import advantages
from vghlib.stats import Estimate, summarize

DTYPE = torch.float64


# ------------------------------------------------------------------ noise laws
@dataclass(frozen=True)
class NoiseLaw:
    """A reparameterisable family x = x(z, θ) with z from a fixed base law.

    ``sample_base(n, generator)`` draws z, shape (n,); ``transform(z, theta)`` maps z and per-sample
    parameters theta, shape (n, p), to x, shape (n,); ``log_prob(x, theta)`` is log p(x; θ),
    shape (n,). ``shift`` is True for a shift family π_θ(a) = ν(a − ā_θ), the hypothesis of Lemma 1.
    """

    name: str
    param_names: tuple[str, ...]
    sample_base: Callable[[int, torch.Generator], torch.Tensor]
    transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    shift: bool
    fixed: tuple[tuple[str, float], ...] = ()

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def check_theta(self, theta) -> torch.Tensor:
        """θ as a float64 vector of the right length, with a clear error otherwise."""
        t = torch.as_tensor(theta, dtype=DTYPE).reshape(-1)
        if t.numel() != self.n_params:
            raise ValueError(
                f"{self.name} takes theta = ({', '.join(self.param_names)}), "
                f"{self.n_params} number(s); got {t.numel()}"
            )
        if not torch.all(torch.isfinite(t)):
            raise ValueError(f"theta must be finite, got {t.tolist()}")
        if self.name in ("gaussian", "exponential_scale") and t[-1] <= 0:
            raise ValueError(
                f"the scale parameter {self.param_names[-1]} must be > 0, got {float(t[-1])}"
            )
        return t


def _positive(name: str, v: float) -> float:
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return v


def _normal(n, g):
    return torch.randn(n, generator=g, dtype=DTYPE)


def gaussian_location(sigma: float = 1.0) -> NoiseLaw:
    """x = μ + σ z, z ~ N(0, 1); θ = (μ,), σ fixed. A shift family with ν = N(0, σ²)."""
    s = _positive("sigma", sigma)
    return NoiseLaw(
        "gaussian_location",
        ("mu",),
        _normal,
        lambda z, th: th[:, 0] + s * z,
        lambda x, th: -0.5 * ((x - th[:, 0]) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi),
        shift=True,
        fixed=(("sigma", s),),
    )


def gaussian() -> NoiseLaw:
    """x = μ + σ z, z ~ N(0, 1); θ = (μ, σ): location and scale are both learned (σ > 0)."""
    return NoiseLaw(
        "gaussian",
        ("mu", "sigma"),
        _normal,
        lambda z, th: th[:, 0] + th[:, 1] * z,
        lambda x, th: (
            -0.5 * ((x - th[:, 0]) / th[:, 1]) ** 2
            - torch.log(th[:, 1])
            - 0.5 * math.log(2 * math.pi)
        ),
        shift=False,
    )


def logistic_location(scale: float = 1.0) -> NoiseLaw:
    """x = μ + s log(U/(1−U)), U ~ Uniform(0, 1); θ = (μ,). Shift family,
    ν(u) = e^{−u/s}/(s(1+e^{−u/s})²)."""
    s = _positive("scale", scale)

    def base(n, g):
        uni = torch.rand(n, generator=g, dtype=DTYPE).clamp(1e-15, 1 - 1e-15)
        return torch.log(uni) - torch.log1p(-uni)

    def logp(x, th):
        y = (x - th[:, 0]) / s
        return -y - 2 * torch.nn.functional.softplus(-y) - math.log(s)

    return NoiseLaw(
        "logistic_location",
        ("mu",),
        base,
        lambda z, th: th[:, 0] + s * z,
        logp,
        shift=True,
        fixed=(("scale", s),),
    )


def exponential_scale() -> NoiseLaw:
    """x = β E, E ~ Exp(1); θ = (β,), β > 0 the mean. A scale family: Lemma 1's shift form fails
    here."""

    def base(n, g):
        uni = torch.rand(n, generator=g, dtype=DTYPE).clamp_min(1e-300)
        return -torch.log(uni)

    return NoiseLaw(
        "exponential_scale",
        ("beta",),
        base,
        lambda z, th: th[:, 0] * z,
        lambda x, th: -x / th[:, 0] - torch.log(th[:, 0]),
        shift=False,
    )


LAWS = {
    "gaussian_location": gaussian_location,
    "gaussian": gaussian,
    "logistic_location": logistic_location,
    "exponential_scale": exponential_scale,
}


# ------------------------------------------------------------------ costs with closed forms
@dataclass(frozen=True)
class Cost:
    """A scalar cost c(x) (``fn``, elementwise on a tensor) and, where known, E[c(x)] in closed
    form.

    ``expectation(law, theta)`` returns E_θ[c(x)] as a differentiable torch scalar (θ a float64
    vector); :func:`exact_gradient` differentiates it. ``differentiable`` is False for a cost whose
    pathwise derivative is zero almost everywhere although E[c] depends on θ (a step).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    expectation: Callable[[NoiseLaw, torch.Tensor], torch.Tensor]
    differentiable: bool = True


def _fixed(law: NoiseLaw, key: str) -> float:
    return dict(law.fixed)[key]


def _unsupported(cost: str, law: NoiseLaw):
    return NotImplementedError(
        f"no closed form of E[{cost}] under {law.name}; "
        f"use one of {sorted(LAWS)} or estimate it by Monte Carlo"
    )


def quadratic(curvature: float = 1.0, center: float = 0.0) -> Cost:
    """c(x) = (k/2)(x − x0)², k = ``curvature``, x0 = ``center``; its slope is k(x − x0)."""
    k, x0 = float(curvature), float(center)

    def expect(law, th):
        if law.name == "gaussian_location":
            mean, var = th[0], th.new_tensor(_fixed(law, "sigma") ** 2)
        elif law.name == "gaussian":
            mean, var = th[0], th[1] ** 2
        elif law.name == "logistic_location":
            mean, var = th[0], th.new_tensor((math.pi * _fixed(law, "scale")) ** 2 / 3)
        elif law.name == "exponential_scale":
            mean, var = th[0], th[0] ** 2
        else:
            raise _unsupported("quadratic", law)
        return 0.5 * k * (var + (mean - x0) ** 2)

    return Cost(f"quadratic(k={k:g}, x0={x0:g})", lambda x: 0.5 * k * (x - x0) ** 2, expect)


def cosine(omega: float = 1.0) -> Cost:
    """c(x) = cos(ωx). E[cos ωx] is the real part of the characteristic function at ω."""
    w = float(omega)

    def expect(law, th):
        if law.name in ("gaussian_location", "gaussian"):
            s = th.new_tensor(_fixed(law, "sigma")) if law.name == "gaussian_location" else th[1]
            return torch.cos(w * th[0]) * torch.exp(-0.5 * (w * s) ** 2)
        if law.name == "logistic_location":
            a = math.pi * _fixed(law, "scale") * w
            return torch.cos(w * th[0]) * (a / math.sinh(a) if a != 0 else 1.0)
        if law.name == "exponential_scale":
            return 1.0 / (1.0 + (w * th[0]) ** 2)
        raise _unsupported("cosine", law)

    return Cost(f"cosine(omega={w:g})", lambda x: torch.cos(w * x), expect)


def step(threshold: float = 0.0) -> Cost:
    """c(x) = 1[x > t]: not differentiable at t, slope 0 elsewhere, yet E[c] = P(x > t) moves with
    θ."""
    t0 = float(threshold)

    def expect(law, th):
        if law.name in ("gaussian_location", "gaussian"):
            s = th.new_tensor(_fixed(law, "sigma")) if law.name == "gaussian_location" else th[1]
            return 0.5 * torch.erfc((t0 - th[0]) / (s * math.sqrt(2)))
        if law.name == "logistic_location":
            return torch.sigmoid((th[0] - t0) / _fixed(law, "scale"))
        if law.name == "exponential_scale":
            return torch.exp(-max(t0, 0.0) / th[0])
        raise _unsupported("step", law)

    return Cost(f"step(t={t0:g})", lambda x: (x > t0).to(DTYPE), expect, differentiable=False)


def exact_gradient(cost: Cost, law: NoiseLaw, theta) -> np.ndarray:
    """∂_θ E_θ[c(x)] from the closed-form expectation, by autograd. Shape (p,)."""
    th = law.check_theta(theta).clone().requires_grad_(True)
    (g,) = torch.autograd.grad(cost.expectation(law, th), th)
    return g.detach().numpy()


def exact_expectation(cost: Cost, law: NoiseLaw, theta) -> float:
    """E_θ[c(x)] in closed form."""
    return float(cost.expectation(law, law.check_theta(theta)))


# ------------------------------------------------------------------ per-sample estimators
def _check_n(n_samples) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(
            f"n_samples must be an integer >= 2 (a standard error needs two), got {n_samples!r}"
        )
    return int(n_samples)


def _generator(seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def _cost_fn(cost):
    if isinstance(cost, Cost):
        return cost.fn
    if callable(cost):
        return cost
    raise TypeError(
        f"cost must be a vghlib.estimators.Cost or a callable on tensors, got {type(cost).__name__}"
    )


def _sf_parts(cost, law: NoiseLaw, theta, n: int, seed):
    """Costs c(x_i), shape (n,), and scores ∂_θ log p(x_i; θ), shape (n, p), for n fresh samples."""
    th = law.check_theta(theta)
    g = _generator(seed)
    with torch.no_grad():
        x = law.transform(law.sample_base(n, g), th.expand(n, -1))  # (n,)
        c = _cost_fn(cost)(x)  # (n,)
    th_rep = th.expand(n, -1).clone().requires_grad_(True)  # (n, p): one leaf copy per sample
    (score,) = torch.autograd.grad(law.log_prob(x, th_rep).sum(), th_rep)  # (n, p)
    return c, score


def _weights(c: torch.Tensor, baseline) -> torch.Tensor:
    """c − b along the last axis; ``baseline`` None, a number, or "loo" (leave-one-out mean).

    The baselines are those of :func:`vghlib.grpo.advantages` (kinds ``"loo"`` and
    ``"baseline"``), applied to costs instead of rewards.
    """
    if baseline is None:
        return c
    if isinstance(baseline, str):
        if baseline != "loo":
            raise ValueError(f"baseline must be None, a number or 'loo', got {baseline!r}")
        if c.shape[-1] < 2:
            raise ValueError("a leave-one-out baseline needs batches of at least 2 samples")
        return advantages(c, "loo")
    b = float(baseline)
    if not math.isfinite(b):
        raise ValueError(f"a constant baseline must be finite, got {baseline!r}")
    return advantages(c, "baseline", baseline=b)


def sf_samples(cost, law: NoiseLaw, theta, n_samples: int, seed=0, baseline=None) -> torch.Tensor:
    """Per-sample score-function gradients (c(x_i) − b_i) ∂_θ log p(x_i; θ), eq 2. Shape (n, p).

    ``baseline`` b: None (eq 2 as written, b = 0), a number (a constant b: still unbiased), or
    ``"loo"`` (leave-one-out mean of the other samples' costs: unbiased, since b_i does not depend
    on x_i). A baseline that includes x_i itself would bias the estimate; it is not offered.
    Only c(x) is evaluated, never its slope, so ``cost`` may be a step.
    """
    n = _check_n(n_samples)
    _weights(torch.zeros(2, dtype=DTYPE), baseline)  # validate before sampling
    c, score = _sf_parts(cost, law, theta, n, seed)
    return _weights(c, baseline)[:, None] * score


def pd_samples(cost, law: NoiseLaw, theta, n_samples: int, seed=0) -> torch.Tensor:
    """Per-sample pathwise gradients ∂_θ c(x(z_i, θ)), eq 3. Shape (n, p).

    Uses the same base noise as :func:`sf_samples` with the same seed, so the two see the same x_i.
    For a step cost the result is 0 almost surely: PD does not apply (it is biased), which is the
    point of eq 2's remark that SF needs no slope.
    """
    n = _check_n(n_samples)
    th = law.check_theta(theta)
    g = _generator(seed)
    z = law.sample_base(n, g)  # (n,)
    th_rep = th.expand(n, -1).clone().requires_grad_(True)  # (n, p)
    c = _cost_fn(cost)(law.transform(z, th_rep))
    if not c.requires_grad:  # a cost built from comparisons has no graph: its slope is 0 a.e.
        return torch.zeros_like(th_rep)
    (grad,) = torch.autograd.grad(c.sum(), th_rep)
    return grad


# ------------------------------------------------------------------ summaries (vghlib.stats)
def estimate(
    kind: str, cost, law: NoiseLaw, theta, n_samples: int, seed=0, baseline=None
) -> Estimate:
    """SF (``kind='sf'``) or PD (``kind='pd'``) Monte Carlo gradient with its standard error."""
    if kind == "sf":
        return summarize(sf_samples(cost, law, theta, n_samples, seed, baseline))
    if kind == "pd":
        if baseline is not None:
            raise ValueError("a baseline belongs to the score-function estimator; use kind='sf'")
        return summarize(pd_samples(cost, law, theta, n_samples, seed))
    raise ValueError(f"kind must be 'sf' or 'pd', got {kind!r}")


def variance_vs_samples(
    kind: str,
    cost,
    law: NoiseLaw,
    theta,
    sizes,
    n_repeats: int = 200,
    seed=0,
    baseline=None,
    param: int = 0,
) -> dict[int, float]:
    """Empirical variance of the n-sample mean estimator of ∂F/∂θ_param, for each n in ``sizes``.

    Each n uses ``n_repeats`` independent batches drawn in one vectorised call (n·n_repeats
    samples); the variance across batch means should fall like Var[g]/n for both estimators.
    """
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    if n_repeats < 2:
        raise ValueError("n_repeats must be >= 2")
    if kind not in ("sf", "pd"):
        raise ValueError(f"kind must be 'sf' or 'pd', got {kind!r}")
    if kind == "pd" and baseline is not None:
        raise ValueError("a baseline belongs to the score-function estimator; use kind='sf'")
    out = {}
    for i, n in enumerate(sizes):
        total = max(n * n_repeats, 2)
        s = seed + 7919 * i if not isinstance(seed, torch.Generator) else seed
        if kind == "sf":
            c, score = _sf_parts(cost, law, theta, total, s)
            w = _weights(c[: n * n_repeats].reshape(n_repeats, n), baseline)  # (n_repeats, n)
            batch = w * score[: n * n_repeats, param].reshape(n_repeats, n)
        else:
            batch = pd_samples(cost, law, theta, total, s)[: n * n_repeats, param].reshape(
                n_repeats, n
            )
        out[n] = float(batch.mean(dim=1).var(unbiased=True))
    return out


def add_costs(*costs: Cost) -> Cost:
    """The sum of several costs; its closed-form expectation is the sum of theirs."""
    if not costs or not all(isinstance(c, Cost) for c in costs):
        raise TypeError("add_costs takes one or more vghlib.estimators.Cost objects")
    return Cost(
        " + ".join(c.name for c in costs),
        lambda x: sum(c.fn(x) for c in costs),
        lambda law, th: sum(c.expectation(law, th) for c in costs),
        differentiable=all(c.differentiable for c in costs),
    )


# ------------------------------------------------------------------ the quadratic cost (Part I)
def gaussian_quadratic_variance(method: str, mu: float, sigma: float = 1.0) -> float:
    """Exact per-sample variance of the SF or PD estimate of ∂_μ E[x²], x ~ N(μ, σ²).

    Gauss–Hermite quadrature with 8 nodes integrates polynomials up to degree 15 exactly, and both
    squared samples are polynomials of degree 6 in the standard normal z (x = μ + σz): SF's sample
    is x² z/σ, PD's is 2x. Part I's first exercise derives the SF one in closed form.
    """
    if method not in ("sf", "pd"):
        raise ValueError(f"method must be 'sf' or 'pd', got {method!r}")
    s = _positive("sigma", sigma)
    z, w = np.polynomial.hermite_e.hermegauss(8)
    w = w / w.sum()
    x = float(mu) + s * z
    g = x**2 * z / s if method == "sf" else 2 * x
    return float(w @ g**2 - (w @ g) ** 2)


# ------------------------------------------------------------------ the cosine crossover (Part I)
def cosine_variances(omega, sigma: float = 1.0):
    """Exact per-sample variances of SF and PD for ∂_μ E[cos ωx], x ~ N(0, σ²) (at μ = 0).

    PD: ω² E[sin²(ωx)] = (ω²/2)(1 − e^{−2ω²σ²});
    SF: E[cos²(ωx) z²]/σ² = (1/(2σ²))(1 + (1 − 4ω²σ²) e^{−2ω²σ²}). Both means are 0 at μ = 0.
    """
    w = np.asarray(omega, dtype=float)
    s = _positive("sigma", sigma)
    e = np.exp(-2 * (w * s) ** 2)
    return (1 + (1 - 4 * (w * s) ** 2) * e) / (2 * s**2), 0.5 * w**2 * (1 - e)


def cosine_crossover(sigma: float = 1.0) -> float:
    """The frequency ω* > 0 above which PD has the larger per-sample variance (cosine, μ = 0)."""
    s = _positive("sigma", sigma)

    def pd_minus_sf(w):
        v_sf, v_pd = cosine_variances(w, s)
        return float(v_pd - v_sf)

    return float(brentq(pd_minus_sf, 1e-3 / s, 10.0 / s, xtol=1e-12))
