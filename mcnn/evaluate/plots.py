"""Figures of the evaluation: the confusion matrix drawn like the paper's Fig. 4 / Fig. 5a."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from mcnn.evaluate.metrics import per_class_accuracy


def confusion_figure(cm: np.ndarray, classes: Sequence[str], title: str = "") -> Figure:
    """Counts in each cell (zeros left blank), red shading by magnitude, per-class accuracy at each row's end."""
    n = len(classes)
    size = max(4.0, 0.55 * n + 2.5)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.add_subplot(1, 1, 1)
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
    fig.tight_layout()
    return fig

