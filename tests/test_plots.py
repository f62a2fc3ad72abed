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



def test_the_course_figure_is_what_its_script_draws(tmp_path):
    import importlib.util

    import matplotlib.image as mpimg
    import numpy as np

    from vghlib.env import REPO_ROOT

    spec = importlib.util.spec_from_file_location("gradient_flow", REPO_ROOT / "book/figures/gradient_flow.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    new = mpimg.imread(mod.draw(tmp_path / "g.png"))
    old = mpimg.imread(REPO_ROOT / "book/figures/gradient_flow.png")
    assert new.shape == old.shape and np.abs(new - old).max() < 1e-6


def test_use_style_sets_the_book_style():
    import matplotlib as mpl

    from vghlib import plots

    with mpl.rc_context():
        plots.use_style()
        assert tuple(mpl.rcParams["figure.figsize"]) == (6.4, 3.6)
        assert mpl.rcParams["figure.figsize"][0] <= plots.MAX_WIDTH_IN
        assert mpl.rcParams["axes.spines.top"] is False
