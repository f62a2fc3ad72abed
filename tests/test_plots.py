"""vghlib.plots: the Part II explorer draws the gradients and the value field it says it draws."""

import importlib.util

import matplotlib
import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pytest

from vghlib import plots
from vghlib.env import REPO_ROOT
from vghlib.plots import draw_control_explorer

matplotlib.use("Agg")


def _expected_return(gain, start, sigma, horizon):
    """E[R_1] on Part II's double integrator (A = [[1, .1], [0, 1]], B = [[0], [.1]], Q =
    diag(1, .1), R = .01, W = .01 I, gamma = .95) under a = K s + sigma xi, computed forward: the
    state's mean and covariance propagated step by step, no Riccati recursion."""
    A, B = np.array([[1.0, 0.1], [0.0, 1.0]]), np.array([[0.0], [0.1]])
    Q, R, W, gamma = np.diag([1.0, 0.1]), np.array([[0.01]]), 0.01 * np.eye(2), 0.95
    mean, cov, total = np.asarray(start, dtype=float), np.zeros((2, 2)), 0.0
    for t in range(horizon):
        action_mean, action_cov = gain @ mean, gain @ cov @ gain.T + sigma**2 * np.eye(1)
        reward = (
            mean @ Q @ mean
            + np.trace(Q @ cov)
            + action_mean @ R @ action_mean
            + np.trace(R @ action_cov)
        )
        total -= gamma**t * reward
        F = A + B @ gain
        mean, cov = F @ mean, F @ cov @ F.T + sigma**2 * B @ B.T + W
    return total


def _gradient(f, x, h=1e-5):
    """Central differences, exact up to rounding for the quadratics here."""
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_the_explorer_plots_the_exact_gradient_the_value_field_and_estimates_around_them():
    T, sigma, n, groups = 5, 0.5, 8, 200
    fig = draw_control_explorer(horizon=T, sigma=sigma, group_size=n, n_groups=groups)
    top, bottom = fig.axes
    assert top.get_title() == "Gradient estimates per group (T = 5, σ = 0.5, n = 8)"
    gain, start = np.array([[-1.0, -1.5]]), np.array([1.0, -0.5])
    exact = _gradient(lambda k: _expected_return(k, start, sigma, T), gain).ravel()
    lines = {ln.get_label(): np.r_[ln.get_xdata(), ln.get_ydata()] for ln in top.lines}
    assert np.allclose(lines["exact ∂J/∂K"], exact, rtol=1e-7, atol=0)
    other = _gradient(lambda k: _expected_return(k, start, sigma, T), gain + 0.5).ravel()
    assert not np.allclose(lines["exact ∂J/∂K"], other, rtol=1e-2, atol=0)  # control

    # each cloud holds one estimate per group; its mean is drawn, within 3 s.e. of the exact one
    for cloud, name in zip(top.collections, ("SF", "PD")):
        points = np.asarray(cloud.get_offsets())
        mean, se = points.mean(0), points.std(0, ddof=1) / np.sqrt(groups)
        assert points.shape == (groups, 2)
        assert np.allclose(lines[f"{name}, mean of {groups} groups"], mean, rtol=1e-12, atol=0)
        assert np.all(np.abs(mean - exact) < 3 * se), name
        if name == "PD":  # control: the gradient at another gain is many s.e. away
            assert np.all(np.abs(mean - other) > 10 * se)

    # the field: G_1(s) = dE[R_1 | s_1 = s]/ds on the 9 x 9 grid over [-2, 2]^2
    field, costates, exact_there = bottom.collections
    grid = np.column_stack([field.X, field.Y])
    ticks = np.linspace(-2, 2, 9)
    assert sorted(map(tuple, grid.round(12))) == sorted((x, y) for x in ticks for y in ticks)
    value_grad = lambda s: _gradient(lambda x: _expected_return(gain, x, sigma, T), s)  # noqa: E731
    drawn, by_hand = np.column_stack([field.U, field.V]), np.array([value_grad(s) for s in grid])
    assert np.allclose(drawn, by_hand, rtol=1e-6, atol=1e-8)
    assert field.scale == pytest.approx(np.linalg.norm(by_hand, axis=1).max() / 0.45, rel=1e-6)
    swapped = np.array([value_grad(s[::-1]) for s in grid])
    assert not np.allclose(drawn, swapped, rtol=1e-2, atol=1e-2)  # control: x and y exchanged

    # eq 9: the mean BPTT costate of 300 rollouts from each of five states is G_1 there, within
    # 5% (Monte Carlo error); against G_1 at the other states it is far off. A state's two arrows
    # are drawn over the grid's, rescaled by one factor that makes the exact one STATE_ARROW long.
    states = np.column_stack([costates.X, costates.Y])
    assert np.array_equal(states, np.column_stack([exact_there.X, exact_there.Y]))
    assert (
        costates.get_zorder() > field.get_zorder()
        and exact_there.get_zorder() > costates.get_zorder()
    )
    at_states = np.array([value_grad(s) for s in states])
    exact_arrow = np.column_stack([exact_there.U, exact_there.V])
    factor = plots.STATE_ARROW / np.linalg.norm(at_states, axis=1, keepdims=True)
    assert np.allclose(exact_arrow, factor * at_states, rtol=1e-6, atol=1e-9)
    mean_costate = np.column_stack([costates.U, costates.V]) / factor
    rel = np.linalg.norm(mean_costate - at_states, axis=1) / np.linalg.norm(at_states, axis=1)
    assert len(states) == 5 and rel.max() < 0.05, rel
    rolled = np.roll(at_states, 1, axis=0)
    rel = np.linalg.norm(mean_costate - rolled, axis=1) / np.linalg.norm(rolled, axis=1)
    assert rel.min() > 0.2, rel

    with pytest.raises(ValueError):
        draw_control_explorer(group_size=1)


def test_the_course_figure_is_what_its_script_draws(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "gradient_flow", REPO_ROOT / "book/figures/gradient_flow.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    new = mpimg.imread(mod.draw(tmp_path / "g.png"))
    old = mpimg.imread(REPO_ROOT / "book/figures/gradient_flow.png")
    assert new.shape == old.shape and np.abs(new - old).max() < 1e-6


def test_use_style_sets_the_book_style():
    with mpl.rc_context():
        plots.use_style()
        assert tuple(mpl.rcParams["figure.figsize"]) == (6.4, 3.6)
        assert mpl.rcParams["figure.figsize"][0] <= plots.MAX_WIDTH_IN
        assert mpl.rcParams["axes.spines.top"] is False


def test_rho_dots_puts_each_trajectory_where_its_rho_is():
    rows = [
        {"variant": v, "seed": s, "reading": "r", "predictor": "a", "rho": rho}
        for v, rhos in (("v1", [0.5, 0.7]), ("v2", [-0.3, 0.1]))
        for s, rho in enumerate(rhos)
    ]
    fig = plots.rho_dots({"all": rows}, [("A", "r", "a"), ("B", "r", "missing")])
    (ax,) = fig.axes
    xs = sorted(x for c in ax.collections for x in c.get_offsets()[:, 0])
    assert xs == pytest.approx([-0.3, 0.1, 0.5, 0.7])  # every dot, at its rho
    assert [t.get_text() for t in ax.get_yticklabels()] == ["B", "A"]  # top to bottom
    assert ax.get_xlabel() and ax.get_title() == "all"
    medians = [ln.get_xdata()[0] for ln in ax.lines if ln.get_color() == "k"]
    assert medians == pytest.approx([0.3])  # the median of the four dots of row A


def test_grpo_reward_curves_show_the_reward_and_its_gain_by_seed():
    rng = np.random.default_rng(0)
    start = np.array([0.05, 0.5])
    curves = {
        f"run {i}": s + np.cumsum(rng.uniform(0, 0.004, size=(3, 31)), axis=1) * [[1], [2], [3]]
        for i, s in enumerate(start)
    }
    for c in curves.values():
        c[:, 0] = c[0, 0]  # every seed starts from the checkpoint's own reward
    fig = plots.grpo_reward_curves(curves)
    top, bottom = fig.axes
    for (label, c), line_top, line_bottom in zip(curves.items(), top.lines, bottom.lines):
        assert line_top.get_label() == line_bottom.get_label() == label
        assert np.allclose(line_top.get_ydata(), c.mean(0))
        assert np.allclose(line_bottom.get_ydata(), (c - c[:, :1]).mean(0))
        assert line_bottom.get_ydata()[0] == 0
    # the band of the gain runs from the smallest to the largest seed
    band = bottom.collections[0].get_paths()[0].vertices
    gain = curves["run 0"] - curves["run 0"][:, :1]
    assert band[:, 1].max() == pytest.approx(gain.max()) and band[:, 1].min() == pytest.approx(0)
    # the gains of a few hundredths fill the lower panel; on the reward's [0, 1] axis they would not
    lo, hi = bottom.get_ylim()
    assert hi - lo < 0.5 and top.get_ylim() == (0, 1.02)
    assert "(probability)" in top.get_ylabel() and "(probability)" in bottom.get_ylabel()
    assert "(count)" in bottom.get_xlabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(curves)


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_the_headroom_explorer_colours_checkpoints_by_step_with_a_bar_and_keeps_its_legend_off():
    steps = np.array([0, 18, 51, 94, 410, 1000, 2000])
    r_before = np.linspace(0.03, 0.99, len(steps))
    pp = np.linspace(0.001, 0.999, 200)
    gain, pgap = np.sin(steps / 400.0), np.cos(steps / 500.0)
    fig = plots.headroom_explorer(pp, r_before, steps, pgap, gain, alpha=2.0, rho=0.65)
    left, right, bar = fig.axes
    dots = left.collections[0]
    assert np.array_equal(dots.get_array(), steps)  # a dot's colour is its checkpoint's step
    assert dots.colorbar is not None and dots.colorbar.ax is bar  # the colours have a bar
    assert "pretraining step" in bar.get_ylabel() and "(optimizer updates)" in bar.get_ylabel()
    assert right.get_title().endswith("Spearman +0.65")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in (left, right):
        assert not _overlap(legend, ax.get_window_extent(renderer)), "legend on the curves"
    # control: a legend placed inside the right panel, as before, is caught
    inside = right.legend().get_window_extent(renderer)
    assert _overlap(inside, right.get_window_extent(renderer))
