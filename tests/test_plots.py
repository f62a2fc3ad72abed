"""vghlib.plots: the Part II explorer draws its two panels."""


import matplotlib
import pytest

matplotlib.use("Agg")


def test_explorer_draws_two_panels():
    from vghlib.plots import draw_control_explorer
    fig = draw_control_explorer(horizon=5, sigma=0.5, group_size=4, n_groups=20)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError):
        draw_control_explorer(group_size=1)

