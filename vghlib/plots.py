"""Figures that a chapter draws from library code: the Part II explorer of gradient estimators,
Part IV's GRPO reward curves, its headroom explorer and its per-trajectory correlations.

Reference: Asadulaev et al., arXiv 2605.21654, eq 9 (costates estimate the value gradient) and
Corollary 1 in the corrected form of the book's appendix (SF and PD agree in expectation).

:func:`draw_control_explorer` is the ``draw`` function given to :func:`vghlib.widgets.explorer`:
for a horizon T, a policy noise σ and a group size n it draws (left) the per-group gradient
estimates of the score-function (leave-one-out, GRPO-style) and pathwise (BPTT) estimators on the
same rollouts, with the exact gradient, and (right) the exact value-gradient field G_1(s) = 2 P_1 s
with Monte Carlo mean costates at a few states.

Every figure here labels its axes with their units and fits the text column (at most
:data:`MAX_WIDTH_IN` wide). Its caption and alt text are not drawn: the notebook cell that shows the
figure carries them in its metadata (``mystnb.figure.caption``, ``mystnb.image.alt``), and so does
a reference to one of the paper's figures, which belongs in the caption, not in the image.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors

from vghlib import control as C
from vghlib import impact, stats, systems
from vghlib import policy_gradient as PG

__all__ = [
    "draw_control_explorer",
    "grpo_reward_curves",
    "headroom_explorer",
    "rho_dots",
    "use_style",
    "STYLE",
    "MAX_WIDTH_IN",
]

STYLE = Path(__file__).with_name("book.mplstyle")
MAX_WIDTH_IN = (
    7.0  # widest figure that the text column shows without shrinking its fonts below ~8 pt
)


def use_style() -> None:
    """Apply the book's matplotlib style (``vghlib/book.mplstyle``) to every later figure.

    One style for the whole book: figures sized for the text column, legible fonts, a
    colour-blind-safe cycle (Okabe-Ito). Every chapter calls this in its first code cell.
    """
    plt.style.use(STYLE)


DTYPE = torch.float64
#: Length (state units) of the exact value gradient's arrow where costates are averaged.
STATE_ARROW = 0.6


def draw_control_explorer(
    horizon: int = 20, sigma: float = 0.5, group_size: int = 8, n_groups: int = 200, seed: int = 0
) -> plt.Figure:
    """Two panels for one (T, σ, n): gradient estimates per group, and the value-gradient field.

    Top: ``n_groups`` per-group estimates of ∂J/∂K (K = (−1, −1.5), start s_1 = (1, −0.5)) by SF
    with a leave-one-out baseline and by PD, from the same rollouts, their means, and the exact
    gradient (Riccati + autograd). Bottom: arrows of G_1(s) = 2 P_1 s on a grid (exact, grey, length
    proportional to |G_1|), and at five states the mean BPTT costate of 300 rollouts (wide,
    vermilion) with the exact G_1 drawn thin and black on top of it, which eq 9 says it should
    match; a state's two arrows are rescaled by one factor, the exact one to :data:`STATE_ARROW`
    state units. The three sets of arrows are the axes' three collections, in that order.
    """
    if group_size < 2:
        raise ValueError("group_size must be at least 2 (leave-one-out needs a partner)")
    system = systems.double_integrator(horizon)
    K = torch.tensor([[-1.0, -1.5]], dtype=DTYPE)
    s1 = torch.tensor([1.0, -0.5], dtype=DTYPE)
    smp = PG.lq_gradient_samples(system, K, sigma, s1, batch=n_groups * group_size, seed=seed)
    pd = PG.group_means(smp["pd"], group_size)
    sf = PG.group_means(
        PG.sf_from_scores(smp["score"], smp["returns"], group_size, "loo"), group_size
    )
    ex = smp["exact"]

    # two panels stacked (the book's text column is at most 7 in wide); Okabe-Ito colours of the
    # book style: PD blue, SF orange, costates vermilion
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(6.4, 8.0), layout="constrained")
    ax0.scatter(
        sf[:, 0], sf[:, 1], s=6, alpha=0.35, color="#E69F00", label="SF (leave-one-out), one group"
    )
    ax0.scatter(pd[:, 0], pd[:, 1], s=6, alpha=0.6, color="#0072B2", label="PD (BPTT), one group")
    for est, col, name in (
        (sf, "#E69F00", f"SF, mean of {n_groups} groups"),
        (pd, "#0072B2", f"PD, mean of {n_groups} groups"),
    ):
        m = est.mean(0)
        ax0.plot(m[0], m[1], "o", ms=9, mec="k", color=col, label=name)
    ax0.plot(ex[0], ex[1], "*", ms=16, color="k", label="exact ∂J/∂K")
    lo = torch.quantile(sf, 0.05, dim=0)
    hi = torch.quantile(sf, 0.95, dim=0)
    pad = 0.1 * (hi - lo)
    ax0.set_xlim(float(min(lo[0] - pad[0], ex[0] - 1)), float(max(hi[0] + pad[0], ex[0] + 1)))
    ax0.set_ylim(float(min(lo[1] - pad[1], ex[1] - 1)), float(max(hi[1] + pad[1], ex[1] + 1)))
    ax0.set_xlabel("∂J/∂K₁, position gain (reward per unit gain)")
    ax0.set_ylabel("∂J/∂K₂, velocity gain\n(reward per unit gain)")
    ax0.set_title(f"Gradient estimates per group (T = {horizon}, σ = {sigma:g}, n = {group_size})")
    ax0.legend(loc="best", fontsize=8)

    P, _ = systems.lq_policy_value(system, K, sigma)
    g = torch.linspace(-2.0, 2.0, 9, dtype=DTYPE)
    X, Y = torch.meshgrid(g, g, indexing="xy")
    S = torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)  # (81, 2)
    G = systems.lq_value_grad(P, S, 0)  # (81, 2)
    scale = float(G.norm(dim=1).max()) / 0.45  # longest arrow: 0.45 state units
    arrows = dict(angles="xy", scale_units="xy", scale=scale)
    ax1.quiver(
        S[:, 0],
        S[:, 1],
        G[:, 0],
        G[:, 1],
        color="0.72",
        width=0.004,
        zorder=2,
        label="exact $G_1(s)=2P_1s$ on a grid",
        **arrows,
    )
    pts = torch.tensor(
        [[1.5, 0.0], [-1.0, 1.0], [0.0, -1.5], [1.0, -0.5], [-1.5, -1.0]], dtype=DTYPE
    )
    N = 300
    starts = pts.repeat_interleave(N, dim=0)  # (5N, 2)
    noise = C.standard_normal_noise(starts.shape[0], system.horizon, 1, seed + 1)
    _, lam = C.costates_autograd(
        system.dynamics,
        C.linear_gaussian_policy(K, sigma),
        system.reward,
        starts,
        noise,
        system.gamma,
        process_noise=system.process_noise(starts.shape[0], seed + 2),
    )
    lam_mean = lam[:, 0].reshape(len(pts), N, 2).mean(1)  # (5, 2)
    # At the five states (grid points) the grid's arrows can be too short to compare with, so the
    # two arrows of a state share a scale of their own: the exact one drawn STATE_ARROW long, the
    # mean costate by the same factor, wide and under it. Where they agree, black runs inside
    # vermilion; the comparison of a state's two arrows does not depend on the factor.
    G_pts = systems.lq_value_grad(P, pts, 0)
    factor = STATE_ARROW / G_pts.norm(dim=1, keepdim=True)
    own = dict(angles="xy", scale_units="xy", scale=1.0)
    ax1.quiver(
        pts[:, 0],
        pts[:, 1],
        factor[:, 0] * lam_mean[:, 0],
        factor[:, 0] * lam_mean[:, 1],
        color="#D55E00",
        width=0.016,
        headwidth=2.5,
        headlength=3,
        headaxislength=2.7,
        zorder=3,
        label=f"mean BPTT costate of {N} rollouts",
        **own,
    )
    ax1.quiver(
        pts[:, 0],
        pts[:, 1],
        factor[:, 0] * G_pts[:, 0],
        factor[:, 0] * G_pts[:, 1],
        color="k",
        width=0.004,
        zorder=4,
        label="exact $G_1$ at the same state",
        **own,
    )
    ax1.plot(
        pts[:, 0],
        pts[:, 1],
        "o",
        ms=3.5,
        color="k",
        zorder=5,
        label=(
            "the five states (their two arrows rescaled\n"
            f"together, the exact one {STATE_ARROW:g} long)"
        ),
    )
    ax1.set_xlim(-2.6, 2.6)
    ax1.set_ylim(-2.6, 2.6)
    ax1.set_aspect("equal")
    ax1.set_xlabel("position $s^{(1)}$ (state units)")
    ax1.set_ylabel("velocity $s^{(2)}$ (state units)")
    ax1.set_title("Value-gradient field at t = 1 and mean costates")
    # under the field: over it, the legend would hide arrows and the axis' upper ticks
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8)
    return fig


def grpo_reward_curves(curves: dict, budgets=(10, 20, 25, 30)) -> plt.Figure:
    """GRPO runs from several checkpoints: the exact reward after each update (top) and its gain
    over the start, ΔR(K) = R(K) − R(0) (bottom), each as the mean over seeds with a band from the
    smallest to the largest seed.

    ``curves``: {legend label: array (seeds, updates + 1) of the exact reward R(K), K = 0, 1, ...},
    drawn in viridis order. The top panel shows where each run sits on [0, 1]; the bottom one shows
    the gains of a few hundredths that the top one cannot resolve. Thin vertical lines mark
    ``budgets``.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.2), sharex=True)
    palette = plt.cm.viridis(np.linspace(0, 0.9, len(curves)))
    n_seeds = {np.asarray(c).shape[0] for c in curves.values()}
    for (label, c), col in zip(curves.items(), palette):
        c = np.asarray(c, dtype=float)
        k = np.arange(c.shape[1])
        for ax, y in ((top, c), (bottom, c - c[:, :1])):
            ax.plot(k, y.mean(0), color=col, label=label)
            ax.fill_between(k, y.min(0), y.max(0), color=col, alpha=0.2, lw=0)
    for ax in (top, bottom):
        for k in budgets:
            ax.axvline(k, color="0.85", lw=0.8, zorder=0)
    bottom.axhline(0, color="0.4", lw=0.8, zorder=1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("exact reward $R(K)=E_q\\,p(y^*|q)$\n(probability)")
    bottom.set_ylabel("gain $\\Delta R(K)=R(K)-R(0)$\n(probability)")
    bottom.set_xlabel("GRPO updates $K$ (count)")
    seeds = f"{n_seeds.pop()} seeds" if len(n_seeds) == 1 else "seeds"
    top.set_title(
        f"Mean of {seeds}; bands from the smallest to the largest seed", fontsize="medium"
    )
    fig.legend(
        *top.get_legend_handles_labels(),
        loc="outside lower center",
        ncol=min(3, len(curves)),
        fontsize="small",
    )
    return fig


def headroom_explorer(
    pp, r_before, steps, pgap, gain, alpha: float, rho: float | None = None
) -> plt.Figure:
    """Part IV's headroom explorer at one α: the headroom curve with the checkpoints on it (left),
    and the z-scores of the exact P_gap and of the measured mean gain along pretraining (right).

    ``pp``: grid of success probabilities; ``r_before``, ``steps``, ``pgap``, ``gain``: one value
    per checkpoint (R_before, pretraining step, P_gap at this α, mean ΔR); ``rho``: their Spearman
    correlation, shown in the right panel's title. A checkpoint's colour is its pretraining step,
    read on the colour bar (a square-root scale, which spreads the early checkpoints). The legend
    sits under the panels, off the curves.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, 3.9))
    a.plot(pp, impact.bernoulli_headroom(pp, alpha), "k", lw=1.4, zorder=1)
    steps = np.asarray(steps)
    pts = a.scatter(
        r_before,
        impact.bernoulli_headroom(np.asarray(r_before), alpha),
        c=steps,
        cmap="viridis",
        norm=colors.PowerNorm(0.5, vmin=0, vmax=float(steps.max())),
        s=22,
        edgecolors="k",
        linewidths=0.4,
        zorder=2,
    )
    top = float(steps.max())
    ticks = [v for v in (0, 100, 250, 500, 1000, 2000, 5000, 10000) if v <= top]
    bar = fig.colorbar(pts, ax=a, pad=0.02, fraction=0.05, aspect=30, ticks=ticks)
    bar.set_label("pretraining step (optimizer updates)", fontsize="small")
    bar.ax.tick_params(labelsize="small")
    a.set_xlabel("success probability $p$ (probability)")
    a.set_ylabel("headroom $H_\\alpha(p)$ (reward units)")
    a.set_title(f"Headroom at α = {alpha:g}; dots: checkpoints", fontsize="medium")
    b.plot(steps, stats.zscore(np.asarray(pgap)), "C1", label="$P_{gap}$ (exact $\\Lambda$)")
    b.plot(steps, stats.zscore(np.asarray(gain)), "k--", label="measured mean $\\Delta R$")
    b.set_xlabel("pretraining step (optimizer updates)")
    b.set_ylabel("z-score across checkpoints\n(standard deviations)")
    title = "Ranking along pretraining"
    b.set_title(title + (f": Spearman {rho:+.2f}" if rho is not None else ""), fontsize="medium")
    fig.legend(*b.get_legend_handles_labels(), loc="outside lower center", ncol=2)
    return fig


def rho_dots(panels: dict, predictors: list, *, title: str = "") -> plt.Figure:
    """One dot per trajectory and GRPO variant: Spearman ρ(predictor, gain), predictors down.

    ``panels``: {panel title: rows of :func:`vghlib.replicate.rho_table` (one range of
    checkpoints each)}; ``predictors``: ``(label, reading, predictor)`` triples, drawn top to
    bottom. Each variant has its colour, offset a little in height; a black bar marks a row's
    median. A row whose dots straddle 0 is a conclusion that depends on the run or the variant.
    """
    n = len(predictors)
    variants = list(dict.fromkeys(r["variant"] for rows in panels.values() for r in rows))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(MAX_WIDTH_IN, 1.3 + 0.3 * n),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, (name, rows) in zip(axes[0], panels.items()):
        for i, (_, reading, pred) in enumerate(predictors):
            y = n - 1 - i
            mine = [r for r in rows if r["reading"] == reading and r["predictor"] == pred]
            for j, v in enumerate(variants):
                rho = [r["rho"] for r in mine if r["variant"] == v]
                dy = (j - (len(variants) - 1) / 2) * 0.12
                ax.scatter(
                    rho,
                    [y + dy] * len(rho),
                    s=9,
                    alpha=0.8,
                    color=f"C{j}",
                    zorder=3,
                    label=v if i == 0 else None,
                )
            if mine:
                med = statistics.median(r["rho"] for r in mine)
                ax.plot([med, med], [y - 0.4, y + 0.4], color="k", lw=1.2, zorder=4)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel("Spearman ρ with the mean gain")
        ax.set_title(name, fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(n), [p[0] for p in predictors][::-1])
    fig.legend(
        *axes[0][0].get_legend_handles_labels(),
        loc="outside lower center",
        ncol=len(variants),
        fontsize="small",
        frameon=False,
    )
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig
