"""RGB preview montages of a simulated screen: example fields per class and each dilution series.

Colours follow the paper's Fig. 3: nuclear stain blue, cytoplasmic marker green. Each channel is
scaled linearly between its 1st and 99.8th percentile over all tiles of a montage, so fields stay
comparable within a montage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile

from mcnn.errors import ConfigError
from mcnn.figures import save_figure
from mcnn.tables import read_table


def channel_ranges(images: Sequence[np.ndarray], low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """(C, 2) display range (low, high percentile) per channel over (C, H, W) ``images``."""
    stack = np.stack([np.asarray(im, dtype=np.float64) for im in images])
    lo = np.percentile(stack, low, axis=(0, 2, 3))
    hi = np.percentile(stack, high, axis=(0, 2, 3))
    return np.stack([lo, np.maximum(hi, lo + 1.0)], axis=1)


def to_rgb(image: np.ndarray, ranges: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 of a (2, H, W) field: channel 0 (nuclei) blue, channel 1 (cytoplasm) green."""
    ranges = channel_ranges([image]) if ranges is None else ranges
    scaled = [np.clip((image[c].astype(np.float64) - ranges[c, 0]) / (ranges[c, 1] - ranges[c, 0]), 0, 1)
              for c in range(2)]
    rgb = np.stack([0.25 * scaled[1], scaled[1], scaled[0]], axis=-1)
    return np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def montage(tiles: Sequence[Sequence[np.ndarray | None]], gap: int = 2) -> np.ndarray:
    """Grid of (H, W, 3) uint8 tiles (rows of equal-size tiles; ``None`` leaves a blank) with white gaps."""
    shapes = [t.shape for row in tiles for t in row if t is not None]
    if not shapes:
        raise ValueError("montage of no tiles")
    h, w = shapes[0][:2]
    cols = max(len(row) for row in tiles)
    out = np.full((len(tiles) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i, row in enumerate(tiles):
        for j, tile in enumerate(row):
            if tile is not None:
                out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = tile
    return out


def _read_screen(screen: Path) -> tuple[list[dict[str, str]], list[str]]:
    metadata = screen / "metadata.csv"
    if not metadata.is_file():
        raise ConfigError(f"{screen}: no metadata.csv (not a simulated screen?)")
    table = read_table(metadata)
    channels = [name[len("Image_FileName_"):] for name in table.columns if name.startswith("Image_FileName_")]
    return list(table.rows), channels


def _load(screen: Path, row: dict[str, str], channels: list[str]) -> np.ndarray:
    return np.stack([tifffile.imread(screen / row[f"Image_FileName_{c}"]) for c in channels])


def preview_tiles(screen: str | os.PathLike[str], per_class: int = 4) -> tuple[list[str], list[list[np.ndarray]]]:
    """Rows of RGB tiles: ``per_class`` control fields per training class (first the negative
    controls, then each positive control), then one row per treatment compound across its
    concentrations (replicate 1, site 1). Returns the row labels and the tiles."""
    root = Path(screen)
    rows, channels = _read_screen(root)
    labels: list[str] = []
    fields: list[list[dict[str, str]]] = []
    by_class: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row["Metadata_Role"] != "treatment":
            by_class.setdefault(row["Metadata_Phenotype"], []).append(row)
    for name, members in by_class.items():
        labels.append(f"{name} ({members[0]['Metadata_Compound']})")
        fields.append(members[:per_class])
    compounds: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if row["Metadata_Role"] == "treatment" and row["Metadata_Replicate"] == "1" and row["Metadata_Site"] == "1":
            compounds.setdefault(row["Metadata_Compound"], []).append(row)
    for name, members in compounds.items():
        members.sort(key=lambda r: float(r["Metadata_Concentration"]))
        labels.append(f"{name} ({members[0]['Metadata_Phenotype']}), "
                      f"{members[0]['Metadata_Concentration']}..{members[-1]['Metadata_Concentration']} uM")
        fields.append(members)
    images = [[_load(root, row, channels) for row in group] for group in fields]
    ranges = channel_ranges([im for group in images for im in group])
    return labels, [[to_rgb(im, ranges) for im in group] for group in images]


def save_preview(screen: str | os.PathLike[str], path: str | os.PathLike[str], per_class: int = 4) -> Path:
    """Write a labelled PNG montage of ``screen`` (see :func:`preview_tiles`) to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, tiles = preview_tiles(screen, per_class)
    cols = max(len(row) for row in tiles)
    fig = Figure(figsize=(1.3 * cols, 1.55 * len(tiles)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tiles), 1, squeeze=False)
    for ax, label, row in zip(axes[:, 0], labels, tiles, strict=True):
        ax.imshow(montage([[*row, *([None] * (cols - len(row)))]]), interpolation="nearest")
        ax.set_title(label, fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
