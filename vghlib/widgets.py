"""Interactive explorers that also render statically.

In a live notebook, :func:`explorer` shows sliders and redraws a figure when they move. In the
built book (no kernel) and under nbval, the figure drawn with the default values is what stays on
the page, so the explorer has a static default.
"""

from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt


def explorer(draw: Callable[..., "plt.Figure"], **controls):
    """Draw ``draw(**defaults)`` once as a static figure, then attach live controls.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets control (e.g. ``FloatSlider``)
    whose ``value`` is the default. Returns the ``interactive`` widget, or None when ipywidgets
    cannot display (the static figure is then the whole output).
    """
    defaults = {k: c.value for k, c in controls.items()}
    fig = draw(**defaults)
    plt.show()
    plt.close(fig)
    try:
        import ipywidgets as w
        from IPython.display import display
    except ImportError:  # pragma: no cover - ipywidgets is a pinned requirement
        return None

    def _redraw(**kw):
        f = draw(**kw)
        plt.show()
        plt.close(f)

    ui = w.interactive(_redraw, {"manual": False}, **controls)
    ui.children[-1].layout.height = "auto"
    out = w.VBox([w.HTML("<b>Move the sliders to redraw (needs a live kernel).</b>"),
                  w.HBox(list(ui.children[:-1])), ui.children[-1]])
    display(out)
    return ui
