"""RGB preview montages of a simulated screen: example fields per class and each dilution series.

Reads only the generic screen files (``load_data.csv`` and ``platemap.csv``), not the ground truth.

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
from mcnn.simulate.screen import IMAGE_TABLE, KEY_COLUMNS, PLATEMAP
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


def _read_screen(screen: Path) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
    """The plate map rows, the image-table rows and the channel names of a screen folder."""
    missing = [name for name in (IMAGE_TABLE, PLATEMAP) if not (screen / name).is_file()]
    if missing:
        raise ConfigError(f"{screen}: no {' or '.join(missing)} (not a simulated screen?)")
    images, platemap = read_table(screen / IMAGE_TABLE), read_table(screen / PLATEMAP)
    channels = [name[len("FileName_"):] for name in images.columns if name.startswith("FileName_")]
    images.require(*KEY_COLUMNS, *(f"PathName_{c}" for c in channels), purpose="the LoadData image table")
    platemap.require("Metadata_Plate", "Metadata_Well", "Metadata_Compound", "Metadata_Concentration",
                     "Metadata_Role", "Metadata_Phenotype", purpose="the plate map")
    return list(platemap.rows), list(images.rows), channels


def _load(screen: Path, row: dict[str, str], channels: list[str]) -> np.ndarray:
    return np.stack([tifffile.imread(screen / row[f"PathName_{c}"] / row[f"FileName_{c}"]) for c in channels])


def _fields_by_well(wells: list[dict[str, str]], images: list[dict[str, str]]) -> dict[tuple[str, str], list[dict]]:
    """Image-table rows of each plate-map well, keyed by (plate, well), in image-table order."""
    by_well: dict[tuple[str, str], list[dict]] = {(w["Metadata_Plate"], w["Metadata_Well"]): [] for w in wells}
    for row in images:
        by_well.setdefault((row["Metadata_Plate"], row["Metadata_Well"]), []).append(row)
    return by_well


def preview_tiles(screen: str | os.PathLike[str], per_class: int = 4) -> tuple[list[str], list[list[np.ndarray]]]:
    """Rows of RGB tiles of a screen folder (``load_data.csv`` and ``platemap.csv``).

    First ``per_class`` fields of every training class (the plate map's ``Metadata_Phenotype``:
    the negative controls, then each positive control, in plate-map order), then one row per
    treatment compound (``Metadata_Role`` = ``treatment``) across its concentrations: the first
    field of the first well at each concentration. Returns the row labels and the tiles.
    """
    root = Path(screen)
    wells, images, channels = _read_screen(root)
    by_well = _fields_by_well(wells, images)
    labels: list[str] = []
    fields: list[list[dict[str, str]]] = []
    by_class: dict[str, list[dict[str, str]]] = {}
    for well in wells:
        if well["Metadata_Phenotype"]:
            by_class.setdefault(well["Metadata_Phenotype"], []).append(well)
    for name, members in by_class.items():
        labels.append(f"{name} ({members[0]['Metadata_Compound']})")
        shown = [f for w in members for f in by_well[w["Metadata_Plate"], w["Metadata_Well"]]]
        fields.append(shown[:per_class])
    series: dict[str, dict[float, dict[str, str]]] = {}
    for well in wells:
        if well["Metadata_Role"] == "treatment" and by_well[well["Metadata_Plate"], well["Metadata_Well"]]:
            series.setdefault(well["Metadata_Compound"], {}).setdefault(float(well["Metadata_Concentration"]), well)
    for name, doses in series.items():
        ordered = [doses[c] for c in sorted(doses)]
        unit = ordered[0].get("Metadata_ConcentrationUnit", "")
        labels.append(f"{name}, {ordered[0]['Metadata_Concentration']}..{ordered[-1]['Metadata_Concentration']} {unit}")
        fields.append([by_well[w["Metadata_Plate"], w["Metadata_Well"]][0] for w in ordered])
    pixels = [[_load(root, row, channels) for row in group] for group in fields]
    ranges = channel_ranges([im for group in pixels for im in group])
    return labels, [[to_rgb(im, ranges) for im in group] for group in pixels]


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
