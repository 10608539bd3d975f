"""Figures of the evaluation: the confusion matrix drawn like the paper's Fig. 4 / Fig. 5a.

With example fields (:class:`mcnn.evaluate.fieldview.Examples`), one picture per class is drawn
below the matrix, as in the paper's figures.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcnn.evaluate.metrics import per_class_accuracy

#: Example pictures per row below the matrix, at most.
EXAMPLES_PER_ROW = 6


def _draw_matrix(ax: Axes, cm: np.ndarray, classes: Sequence[str], title: str) -> None:
    n = len(classes)
    shade = cm / cm.max() if cm.max() else cm.astype(float)
    ax.imshow(shade, cmap="Reds", vmin=0, vmax=1.15)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if shade[i, j] > 0.6 else "black")
    acc = per_class_accuracy(cm)
    for i in range(n):
        label = "n/a" if np.isnan(acc[i]) else f"{100 * acc[i]:.0f}%"
        ax.text(n - 0.3, i, label, ha="left", va="center", fontsize=8)
    ax.set_xticks(range(n), labels=list(classes), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels=list(classes), fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xlim(-0.5, n + 0.6)
    for spine in ax.spines.values():
        spine.set_visible(False)
    total = cm.sum()
    heading = f"accuracy {100 * np.trace(cm) / total:.1f}% of {total}" if total else "no samples"
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=10)


def confusion_figure(cm: np.ndarray, classes: Sequence[str], title: str = "",
                     examples: Sequence[np.ndarray | None] | None = None) -> Figure:
    """Counts in each cell (zeros left blank), red shading by magnitude, per-class accuracy at each row's end.

    ``examples`` (one RGB picture, h x w x 3, or None per class, in class order) are drawn below the
    matrix in rows of at most :data:`EXAMPLES_PER_ROW`, each titled with its class; without them the
    figure is the matrix alone.
    """
    n = len(classes)
    size = max(4.0, 0.55 * n + 2.5)
    if examples is None:
        fig = Figure(figsize=(size + 1.2, size))
        _draw_matrix(fig.add_subplot(1, 1, 1), cm, classes, title)
        fig.tight_layout()
        return fig
    if len(examples) != n:
        raise ValueError(f"{len(examples)} example pictures for {n} classes")
    per_row = min(n, EXAMPLES_PER_ROW)
    rows = -(-n // per_row)
    cell = (size + 1.2) / per_row
    aspect = max((p.shape[0] / p.shape[1] for p in examples if p is not None), default=1.0)
    row = cell * min(aspect, 1.5) * 0.8 + 0.3  # a picture's height at about 80% of the cell's width, and its title
    # two subfigures, so that the room the matrix's rotated labels take is not repeated between picture rows
    fig = Figure(figsize=(size + 1.2, size + rows * row), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[size, rows * row])
    _draw_matrix(top.add_subplot(1, 1, 1), cm, classes, title)
    axes = bottom.subplots(rows, per_row, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        if examples[i] is not None:
            ax.imshow(examples[i], interpolation="bilinear")
        else:
            ax.text(0.5, 0.5, "no example", ha="center", va="center", fontsize=7, transform=ax.transAxes)
        ax.set_title(textwrap.fill(classes[i], 18), fontsize=7)  # BBBC021's MoA names are long
    return fig
