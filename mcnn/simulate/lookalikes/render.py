"""Synthetic fluorescence fields for the look-alike downloads.

A field is a set of cells (elliptical cell body, nucleus inside it). Each channel is a weighted
mixture of sub-cellular *structures* drawn for every cell: ``nucleus`` (chromatin), ``cytoplasm``
(diffuse), ``membrane`` (ring at the cell edge), ``spots`` (cytoplasmic puncta: vesicles,
endosomes, lysosomes), ``nucleoli`` (puncta inside the nucleus), ``perinuclear`` (a Golgi-like cap
next to the nucleus), ``centrosome`` (one or two dots by the nucleus), ``filaments`` (oriented
fibres: actin, microtubules), ``reticular`` (ER-like network) and ``mitochondria`` (short
worm-like fragments). Phenotypes change the weights, the cell shape and size, and the cell count,
so every class of a look-alike dataset looks different and the images can be learned from.

The images are not meant to resemble a particular real image; only the file layout is exact. The
drawing primitives are those of :mod:`mcnn.simulate.draw`, shared with the phenotype simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mcnn.simulate.draw import clip_box, gaussian, pixel_grid, ramp_edge, rotate, smooth_noise, to_dtype

__all__ = ["STRUCTURES", "Look", "blend", "render", "to_dtype"]

#: The sub-cellular structures a channel can mix (the keys of a :class:`Look`'s channel weights).
STRUCTURES = ("nucleus", "cytoplasm", "membrane", "spots", "nucleoli", "perinuclear", "centrosome",
              "filaments", "reticular", "mitochondria")


@dataclass(frozen=True)
class Look:
    """How one field looks.

    ``channels`` maps each channel name to its structure weights (intensity units: 1 is a
    typical bright structure). Lengths are fractions of the field's shorter side so that the
    same look works for small and real-size images.
    """

    channels: Mapping[str, Mapping[str, float]]
    cells: float = 12.0
    """Mean number of cells in the field (Poisson)."""
    cell_radius: float = 0.085
    nucleus_fraction: float = 0.45
    """Nucleus radius relative to the cell radius."""
    elongation: float = 1.0
    """Aspect ratio of the cell bodies (1 = round)."""
    spots: int = 6
    """Puncta per cell for ``spots``/``nucleoli``."""
    background: float = 0.04
    noise: float = 0.02
    spread: float = 1.0
    """Cell centres are drawn from the central ``spread`` fraction of the field (1 = anywhere)."""


def blend(a: Look, b: Look, t: float) -> Look:
    """A look between ``a`` (t=0) and ``b`` (t=1): weights, sizes and counts are interpolated."""
    t = float(min(max(t, 0.0), 1.0))
    channels = {}
    for name in a.channels:
        wa, wb = a.channels[name], b.channels.get(name, {})
        keys = set(wa) | set(wb)
        channels[name] = {k: (1 - t) * wa.get(k, 0.0) + t * wb.get(k, 0.0) for k in keys}

    def mix(x: float, y: float) -> float:
        return (1 - t) * x + t * y

    return Look(channels, cells=mix(a.cells, b.cells), cell_radius=mix(a.cell_radius, b.cell_radius),
                nucleus_fraction=mix(a.nucleus_fraction, b.nucleus_fraction),
                elongation=mix(a.elongation, b.elongation), spots=round(mix(a.spots, b.spots)),
                background=mix(a.background, b.background), noise=mix(a.noise, b.noise),
                spread=mix(a.spread, b.spread))


def render(rng: np.random.Generator, height: int, width: int, look: Look) -> dict[str, np.ndarray]:
    """Render one ``height`` x ``width`` field: ``{channel: float32 (H, W) image}``, values roughly in [0, 1.5].

    Pixels are intensities in the units of the look's weights (map them to integer counts with
    :func:`to_dtype`); every random draw comes from ``rng``.
    """
    side = min(height, width)
    out = {name: np.zeros((height, width), np.float32) for name in look.channels}
    needed = {k for weights in look.channels.values() for k, w in weights.items() if w}
    n = max(1, int(rng.poisson(look.cells)))
    textures = _Textures(rng, height, width)
    for _ in range(n):
        radius = max(2.0, look.cell_radius * side * rng.uniform(0.8, 1.2))
        margin = (1.0 - look.spread) / 2
        cy = rng.uniform(margin * height, (1 - margin) * height)
        cx = rng.uniform(margin * width, (1 - margin) * width)
        angle = rng.uniform(0, np.pi)
        a = radius * np.sqrt(look.elongation)
        b = radius / np.sqrt(look.elongation)
        reach = int(np.ceil(a * 1.2)) + 2
        box = clip_box(int(cy) - reach, int(cy) + reach + 1, int(cx) - reach, int(cx) + reach + 1, height, width)
        if box is None:
            continue
        y0, y1, x0, x1 = box[0].start, box[0].stop, box[1].start, box[1].stop
        yy, xx = pixel_grid(box, dense=True)
        dy, dx = yy - cy, xx - cx
        u, v = rotate(dx, dy, np.cos(angle), np.sin(angle))
        r_cell = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        nr = look.nucleus_fraction * radius
        ny, nx = rng.normal(0, 0.1 * radius, 2)
        r_nuc = np.sqrt((dx - nx) ** 2 + (dy - ny) ** 2) / nr
        cell = ramp_edge(r_cell)
        nucleus = ramp_edge(r_nuc)
        cyto = np.clip(cell - nucleus, 0, 1)
        parts = _structures(rng, needed, look, dx, dy, u, v, r_cell, r_nuc, cell, nucleus, cyto, radius, nr,
                            (nx, ny), textures.window(y0, y1, x0, x1, radius))
        gain = rng.lognormal(0.0, 0.15)
        for name, weights in look.channels.items():
            tile = np.zeros_like(cell)
            for key, w in weights.items():
                if w:
                    tile += w * parts[key]
            out[name][y0:y1, x0:x1] += gain * tile
    for name in out:
        img = ndimage.gaussian_filter(out[name], sigma=max(0.5, side / 400))
        img += look.background
        img += rng.normal(0.0, look.noise, img.shape).astype(np.float32)
        out[name] = np.clip(img, 0, None).astype(np.float32)
    return out


def _structures(rng: np.random.Generator, needed: set[str], look: Look, dx: np.ndarray, dy: np.ndarray,
                u: np.ndarray, v: np.ndarray, r_cell: np.ndarray, r_nuc: np.ndarray, cell: np.ndarray,
                nucleus: np.ndarray, cyto: np.ndarray, radius: float, nr: float, nuc_at: tuple[float, float],
                noise: _Window) -> dict[str, np.ndarray]:
    """Each structure's image of one cell on its box (zeros for those no channel needs).

    ``dx, dy``: offsets (px) from the cell centre; ``u, v``: along/across the cell's long axis;
    ``r_cell``, ``r_nuc``: normalised radii; ``cell``, ``nucleus``, ``cyto``: soft masks.
    """
    parts: dict[str, np.ndarray] = {}
    zeros = np.zeros_like(cell)
    for key in STRUCTURES:
        parts[key] = zeros
    if "nucleus" in needed:
        texture = 1.0 + 0.25 * noise.fine
        parts["nucleus"] = nucleus * texture
    if "cytoplasm" in needed:
        parts["cytoplasm"] = cyto * (0.8 + 0.2 * (1 - r_cell))
    if "membrane" in needed:
        parts["membrane"] = np.exp(-(((r_cell - 0.92) / 0.08) ** 2)) * (r_cell < 1.1)
    if "spots" in needed:
        parts["spots"] = _dots(rng, dx, dy, look.spots, radius * 0.2, radius * 0.85, max(0.7, radius * 0.06)) * cyto
    if "nucleoli" in needed:
        parts["nucleoli"] = _dots(rng, dx - nuc_at[0], dy - nuc_at[1], max(1, look.spots // 3), 0.0, nr * 0.6,
                                  max(0.7, nr * 0.18)) * nucleus
    if "perinuclear" in needed:
        theta = rng.uniform(0, 2 * np.pi)
        px, py = nuc_at[0] + 1.2 * nr * np.cos(theta), nuc_at[1] + 1.2 * nr * np.sin(theta)
        d2 = (dx - px) ** 2 + (dy - py) ** 2
        parts["perinuclear"] = gaussian(d2, 0.35 * nr) * (0.6 + 0.4 * noise.fine) * cell
    if "centrosome" in needed:
        theta = rng.uniform(0, 2 * np.pi)
        px, py = nuc_at[0] + 1.15 * nr * np.cos(theta), nuc_at[1] + 1.15 * nr * np.sin(theta)
        d2 = (dx - px) ** 2 + (dy - py) ** 2
        parts["centrosome"] = 2.0 * gaussian(d2, max(0.7, 0.08 * radius))
    if "filaments" in needed:
        period = max(3.0, radius * 0.3)
        phase = rng.uniform(0, 2 * np.pi)
        stripes = 0.5 + 0.5 * np.cos(2 * np.pi * v / period + phase + 0.6 * noise.coarse)
        parts["filaments"] = stripes ** 4 * cyto
    if "reticular" in needed:
        net = noise.coarse
        parts["reticular"] = np.exp(-(net / 0.35) ** 2) * cyto * (1.2 - 0.5 * r_cell)
    if "mitochondria" in needed:
        net = noise.fine
        parts["mitochondria"] = (net > 0.9) * cyto * 1.2
    return parts


def _dots(rng: np.random.Generator, dx: np.ndarray, dy: np.ndarray, count: int, r_min: float, r_max: float,
          sigma: float) -> np.ndarray:
    """``count`` Gaussian puncta (sd ``sigma`` px, peak 1.5) at ``r_min``..``r_max`` px from the centre."""
    img = np.zeros_like(dx)
    for _ in range(max(0, count)):
        rr = rng.uniform(r_min, max(r_min + 1e-3, r_max))
        th = rng.uniform(0, 2 * np.pi)
        img += gaussian((dx - rr * np.cos(th)) ** 2 + (dy - rr * np.sin(th)) ** 2, sigma)
    return 1.5 * img


@dataclass(frozen=True)
class _Window:
    """The fine and coarse textures cut out to one cell's box."""

    fine: np.ndarray
    coarse: np.ndarray


class _Textures:
    """Smooth noise fields of the whole image, made once per field and cut out per cell."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.rng, self.shape = rng, (height, width)
        self._fine: np.ndarray | None = None
        self._coarse: np.ndarray | None = None
        self.side = min(height, width)

    def window(self, y0: int, y1: int, x0: int, x1: int, radius: float) -> _Window:
        """The textures' pixels in rows ``y0:y1`` and columns ``x0:x1`` (drawn on first use)."""
        if self._fine is None:
            self._fine = smooth_noise(self.rng, self.shape, max(1.0, self.side * 0.006))
            self._coarse = smooth_noise(self.rng, self.shape, max(1.5, self.side * 0.012))
        assert self._coarse is not None
        return _Window(self._fine[y0:y1, x0:x1], self._coarse[y0:y1, x0:x1])
