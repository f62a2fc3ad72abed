"""Interactive explorers that also render statically.

In a live notebook, :func:`explorer` shows sliders and redraws a figure when they move. In the
built book (no kernel) and under nbval, the figure drawn with the default values is what stays on
the page, so the explorer has a static default and its stored output does not change between runs.
The book draws that default figure in a cell of its own, which carries the figure's caption and
alt text, and calls ``explorer(..., static=False)`` in the next cell for the controls: a caption
given to a cell applies to every display output of the cell, and the control panel is one.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython.display import display


def _same_value(default, value) -> bool:
    if default is inspect.Parameter.empty:
        return False
    if isinstance(default, (int, float)) and isinstance(value, (int, float)):
        return math.isclose(default, value, rel_tol=1e-9, abs_tol=1e-12)
    return default == value


def explorer(draw: Callable[..., "plt.Figure"], *, static: bool = True, **controls):
    """Show ``draw(**defaults)`` as an ordinary figure, then controls that redraw it live.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets control (e.g. ``FloatSlider``)
    whose ``value`` is the default. Nothing is drawn into a widget until a control moves, so the
    cell's stored outputs are the static figure and the (unrendered) control panel only. With
    ``static=False`` the figure is left out (a cell before this one draws it with ``draw()``) and
    the panel is the only output; each control's value must then be the default of ``draw``'s
    keyword, so that the figure above is the one the sliders start from (ValueError otherwise).
    Returns the panel widget.
    """
    if not static:
        params = inspect.signature(draw).parameters
        differ = [
            f"{k}: draw() draws {params[k].default!r}, the control starts at {c.value!r}"
            for k, c in controls.items()
            if k in params and not _same_value(params[k].default, c.value)
        ]
        if differ:
            raise ValueError(
                "static=False: the figure above is draw() with its defaults, but "
                + "; ".join(differ)
            )
    if static:
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
            w.HTML(
                "<b>Move a slider to redraw (needs a live kernel).</b>"
                if static
                else "<b>Move a slider to redraw the figure above, below the sliders "
                "(needs a live kernel).</b>"
            ),
            w.HBox(list(controls.values())),
            out,
        ]
    )
    display(panel)
    return panel
