"""Draw book/figures/gradient_flow.png: where the score-function and pathwise gradients flow.

Run from the repository root: ``python book/figures/gradient_flow.py``. A test redraws it and
compares the pixels, so the committed image cannot drift from this script.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).with_name("gradient_flow.png")
SF, PD, FWD = "#D55E00", "#0072B2", "0.35"


def draw(path: Path = OUT) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.0), dpi=110)
    ax.set(xlim=(-0.3, 9.7), ylim=(0, 4.6))
    ax.axis("off")
    boxes = {
        "s": (0.9, 3.0, "state $s_t$"),
        "pi": (3.4, 3.0, r"policy $\pi_\theta(a\mid s_t)$"),
        "a": (5.9, 3.0, "action $a_t$"),
        "f": (8.4, 3.0, r"$s_{t+1}=f(s_t,a_t)$"),
        "r": (5.9, 0.9, r"reward $r(s_t,a_t)$"),
        "th": (3.4, 0.9, r"parameters $\theta$"),
    }
    for x, y, text in boxes.values():
        ax.add_patch(
            FancyBboxPatch(
                (x - 1.05, y - 0.33),
                2.1,
                0.66,
                boxstyle="round,pad=0.05",
                fc="white",
                ec="0.3",
                lw=1,
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=9)

    def arrow(a, b, color, rad=0.0, style="-|>", ls="-", dy=(0, 0)):
        (x0, y0, _), (x1, y1, _) = boxes[a], boxes[b]
        ax.add_patch(
            FancyArrowPatch(
                (x0 + (1.1 if x1 > x0 else -1.1 if x1 < x0 else 0), y0 + dy[0]),
                (x1 - (1.1 if x1 > x0 else -1.1 if x1 < x0 else 0), y1 + dy[1]),
                arrowstyle=style,
                mutation_scale=12,
                color=color,
                lw=1.6,
                ls=ls,
                connectionstyle=f"arc3,rad={rad}",
            )
        )

    arrow("s", "pi", FWD)
    arrow("pi", "a", FWD)
    arrow("a", "f", FWD)
    ax.add_patch(
        FancyArrowPatch(
            (5.9, 2.62), (5.9, 1.28), arrowstyle="-|>", mutation_scale=12, color=FWD, lw=1.6
        )
    )
    # pathwise: back through the reward and the dynamics, into the action, the policy, theta
    ax.add_patch(
        FancyArrowPatch(
            (8.4, 3.4),
            (5.9, 3.4),
            arrowstyle="-|>",
            mutation_scale=12,
            color=PD,
            lw=2,
            connectionstyle="arc3,rad=0.35",
        )
    )
    ax.add_patch(
        FancyArrowPatch(
            (5.6, 1.28), (5.6, 2.62), arrowstyle="-|>", mutation_scale=12, color=PD, lw=2
        )
    )
    ax.add_patch(
        FancyArrowPatch(
            (4.8, 3.33),
            (3.7, 1.28),
            arrowstyle="-|>",
            mutation_scale=12,
            color=PD,
            lw=2,
            connectionstyle="arc3,rad=-0.2",
        )
    )
    # score function: the sampled action is a constant; only log pi is differentiated
    ax.add_patch(
        FancyArrowPatch(
            (2.9, 2.62), (2.9, 1.28), arrowstyle="-|>", mutation_scale=12, color=SF, lw=2
        )
    )
    ax.text(
        1.5,
        1.95,
        r"SF: $\widehat{A}\,\nabla_\theta\log\pi_\theta(a_t\mid s_t)$",
        color=SF,
        ha="center",
        fontsize=8.5,
    )
    ax.text(
        7.65,
        1.95,
        "PD: back through\n$r$, $f$ and $a_t=\\bar a_\\theta(s_t)+\\xi$",
        color=PD,
        ha="center",
        fontsize=8.5,
    )
    ax.text(
        5.0,
        4.35,
        "forward pass (grey); gradients (colour) flow back to $\\theta$",
        ha="center",
        fontsize=8.5,
        color="0.25",
    )
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw())
