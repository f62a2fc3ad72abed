"""Interactive explorers that also render statically.

In a live notebook, :func:`explorer` shows sliders and redraws a figure when they move. In the
built book (no kernel) and under nbval, the figure drawn with the default values is what stays on
the page, so the explorer has a static default and its stored output does not change between runs.
"""

from __future__ import annotations

from typing import Callable

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython.display import display


def explorer(draw: Callable[..., "plt.Figure"], **controls):
    """Show ``draw(**defaults)`` as an ordinary figure, then controls that redraw it live.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets control (e.g. ``FloatSlider``)
    whose ``value`` is the default. Nothing is drawn into a widget until a control moves, so the
    cell's stored outputs are the static figure and the (unrendered) control panel only.
    Returns the panel widget.
    """
    fig = draw(**{k: c.value for k, c in controls.items()})
    plt.show()
    plt.close(fig)

    out = w.Output()

    def _redraw(_change=None):
        with out:
            out.clear_output(wait=True)
            f = draw(**{k: c.value for k, c in controls.items()})
            plt.show()
            plt.close(f)

    for c in controls.values():
        c.observe(_redraw, names="value")
    panel = w.VBox(
        [
            w.HTML("<b>Move a slider to redraw (needs a live kernel).</b>"),
            w.HBox(list(controls.values())),
            out,
        ]
    )
    display(panel)
    return panel
