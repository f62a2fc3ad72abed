"""vghlib.widgets.explorer: the static figure and the controls, in one cell or in two."""

import ipywidgets as w
import matplotlib
import matplotlib.pyplot as plt
import pytest

from vghlib.widgets import explorer

matplotlib.use("Agg")


def _draw(alpha=2.0, n=8):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, alpha * n])
    _draw.calls.append((alpha, n))
    return fig


def test_the_explorer_draws_the_default_figure_unless_a_cell_before_it_does():
    _draw.calls = []
    panel = explorer(_draw, alpha=w.FloatLogSlider(value=2.0), n=w.IntSlider(value=8, min=2))
    assert _draw.calls == [(2.0, 8)] and isinstance(panel, w.VBox)
    _draw.calls = []
    panel = explorer(
        _draw, static=False, alpha=w.FloatLogSlider(value=2.0), n=w.IntSlider(value=8, min=2)
    )
    assert _draw.calls == []  # the figure comes from the cell before
    panel.children[1].children[1].value = 4  # a slider moves: the figure is redrawn
    assert _draw.calls == [(2.0, 4)]
    # control: with static=False a control that does not start at draw's default is refused, since
    # the figure above would not be the one the sliders start from
    with pytest.raises(ValueError, match="alpha: draw\\(\\) draws 2.0, the control starts at 3.0"):
        explorer(_draw, static=False, alpha=w.FloatSlider(value=3.0), n=w.IntSlider(value=8))
