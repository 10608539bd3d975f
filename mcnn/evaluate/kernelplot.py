"""The kernel-map figure (the paper's Fig. 3a and Supplementary Fig. 1) of :class:`KernelMaps`.

One row per chosen layer, finest scale first as the net lists them; per field two panels: the
input at the layer's scale as a colour composite (:func:`mcnn.evaluate.fieldview.composite`) and
the layer's kernel maps, one small tile per channel, each tile scaled to its own range (black:
its minimum, white: its maximum).
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mcnn.evaluate.fieldview import composite, shrink
from mcnn.evaluate.kernels import KernelMaps

#: The longest side, in pixels, of one tile in the figure (the .npz keeps every pixel).
TILE = 96
#: Inches of one panel.
PANEL = 1.6


def tile_maps(maps: np.ndarray, max_side: int = TILE) -> np.ndarray:
    """K x h x w maps as one mosaic (ceil(sqrt K) tiles a row), each tile min-max scaled to [0, 1] and
    shrunk to at most ``max_side`` pixels a side (tiles under 32 pixels are enlarged by pixel repetition,
    so that the gaps stay thin); the gaps between tiles are NaN."""
    k = maps.shape[0]
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    tiles = []
    grow = max(1, 32 // max(maps.shape[1:]))
    for m in maps:
        m = shrink(np.asarray(m, np.float32), max_side)
        m = np.repeat(np.repeat(m, grow, axis=0), grow, axis=1)
        lo, hi = float(m.min()), float(m.max())
        tiles.append((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))
    th, tw = tiles[0].shape
    gap = max(1, max(th, tw) // 24)
    mosaic = np.full((rows * th + (rows - 1) * gap, cols * tw + (cols - 1) * gap), np.nan, np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        mosaic[r * (th + gap): r * (th + gap) + th, c * (tw + gap): c * (tw + gap) + tw] = t
    return mosaic


def _bare(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def kernel_figure(maps: KernelMaps) -> Figure:
    """Rows: the chosen blobs; per field: its input at the blob's scale and the blob's kernel maps."""
    names = list(maps.blobs)
    n = len(maps.keys)
    fig = Figure(figsize=(n * PANEL * 2.3, len(names) * PANEL + 0.6))
    grid = fig.add_gridspec(len(names), 2 * n, width_ratios=[1.0, 1.3] * n)
    grey = matplotlib.colormaps["gray"].with_extremes(bad="white")
    for row, name in enumerate(names):
        for i in range(n):
            ax_in = fig.add_subplot(grid[row, 2 * i])
            ax_in.imshow(composite(maps.scale_inputs[name][i], maps.channels), interpolation="nearest")
            _bare(ax_in)
            ax_maps = fig.add_subplot(grid[row, 2 * i + 1])
            ax_maps.imshow(tile_maps(maps.blobs[name][i]), cmap=grey, vmin=0, vmax=1, interpolation="nearest")
            _bare(ax_maps)
            ax_maps.set_title(f"{name}: {maps.blobs[name].shape[1]} maps", fontsize=7)
            if i == 0:
                ax_in.set_ylabel(f"scale 1/{maps.scales[name]}", fontsize=7)
            if row == 0:
                ax_in.set_title(maps.titles[i], fontsize=8)
    fig.tight_layout()
    return fig
