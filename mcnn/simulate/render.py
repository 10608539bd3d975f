"""Render one field of cells into a two-channel uint16 fluorescence image, with its label masks.

Image model, per channel ``c`` (0: nuclear stain, 1: cytoplasmic marker) and pixel ``p``::

    expected[c, p] = offset + illumination[p] * (background[c] + gain[c] * signal[c, p])
    image[c, p]    = offset + adu_per_photon * Poisson((expected - offset) / adu_per_photon)
                     + Normal(0, read_noise), rounded and clipped to [0, 65535]

``signal`` is the sum over cells of soft-edged (about 1 px) nucleus and cell-body masks times
their intensities, a smooth multiplicative texture (chromatin sd 1.2 px, cytoplasm sd 3 px),
the cytoplasm thinning towards the cell edge, and the Gaussian spots; ``illumination`` is a linear
gradient times a radial vignetting. The drawing primitives (boxes, ellipse frames, soft edges, spots,
textures, the uint16 mapping) are those of :mod:`mcnn.simulate.draw`, shared with the look-alikes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcnn.simulate.cells import Cell
from mcnn.simulate.config import Appearance
from mcnn.simulate.draw import box_around, gaussian, logistic_edge, pixel_grid, rotate, smooth_noise, sub_box, to_dtype

#: Edge width (px) of the soft masks: the logistic falls from 0.73 to 0.27 over 2 edge widths.
EDGE = 0.5


@dataclass(frozen=True)
class FieldNuisance:
    """Per-field acquisition conditions.

    ``gain`` multiplies each channel's cell signal (plate x well x field variation),
    ``background`` is each channel's autofluorescence (ADU), ``gradient`` the relative illumination
    change across the field along ``gradient_angle`` (radians) and ``vignetting`` the relative
    fall-off at the corners.
    """

    gain: tuple[float, float] = (1.0, 1.0)
    background: tuple[float, float] = (80.0, 80.0)
    gradient: float = 0.0
    gradient_angle: float = 0.0
    vignetting: float = 0.0

    def illumination(self, height: int, width: int) -> np.ndarray:
        """(H, W) float32 illumination map, mean about 1."""
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        cy, cx = (height - 1) / 2, (width - 1) / 2
        size = max(height, width)
        ramp = ((x - cx) * math.cos(self.gradient_angle) + (y - cy) * math.sin(self.gradient_angle)) / size
        radius2 = ((x - cx) ** 2 + (y - cy) ** 2) / (cx**2 + cy**2)
        return ((1.0 + self.gradient * ramp) * (1.0 - self.vignetting * radius2)).astype(np.float32)


def draw_nuisance(rng: np.random.Generator, appearance: Appearance,
                  gain: tuple[float, float] = (1.0, 1.0)) -> FieldNuisance:
    """Random per-field conditions; ``gain`` is the plate x well gain the field inherits."""
    if not appearance.nuisance:
        return FieldNuisance(gain=gain, background=(float(np.mean(appearance.background)),) * 2)
    low, high = appearance.background
    return FieldNuisance(
        gain=(gain[0] * float(rng.lognormal(0.0, 0.05)), gain[1] * float(rng.lognormal(0.0, 0.05))),
        background=(float(rng.uniform(low, high)), float(rng.uniform(low, high))),
        gradient=float(rng.uniform(0.0, appearance.gradient)),
        gradient_angle=float(rng.uniform(0.0, 2 * math.pi)),
        vignetting=float(rng.uniform(0.0, appearance.vignetting)),
    )


@dataclass(frozen=True, eq=False)
class RenderedField:
    """A rendered field.

    ``image``: (2, H, W) uint16, channels (nuclear stain, cytoplasmic marker); ``expected``: the
    same before noise, float32; ``cell_labels`` / ``nucleus_labels``: (H, W) int32, 0 for
    background and ``i + 1`` where cell ``i`` of the field's cell list is the nearest body /
    nucleus (bodies do not overlap in the labels; fragments of a fragmented nucleus all carry
    the cell's label).
    """

    image: np.ndarray
    expected: np.ndarray
    cell_labels: np.ndarray
    nucleus_labels: np.ndarray


def _normalized_radius(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, angle: float, a: float, b: float,
                       shape: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Elliptic radius (1 on the wavy outline) and the approximate distance (px) inside the outline."""
    dx, dy = xx - cx, yy - cy
    u, v = rotate(dx, dy, math.cos(angle), math.sin(angle))
    u, v = u / a, v / b
    r = np.hypot(u, v)
    if shape:
        # cos(k theta - phase) from cos(theta) = u / r and sin(theta) = v / r by the angle-addition
        # recurrence (no arctan2 or cos on the arrays).
        inv = 1.0 / np.maximum(r, 1e-6)
        c1, s1 = u * inv, v * inv
        ck, sk = c1, s1
        wave = np.ones_like(r)
        for amp, phase in shape:  # harmonics k = 2, 3, 4 in turn
            ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1  # cos(k theta), sin(k theta)
            wave += amp * (ck * math.cos(phase) + sk * math.sin(phase))
        r = r / np.maximum(wave, 0.5)
    # Distance (px) to the outline along the ray from the centre: outline radius rho / r minus rho.
    rho = np.hypot(dx, dy)
    outline = np.where(r > 1e-6, rho / np.maximum(r, 1e-6), b)
    return r, outline - rho


def render_signal(cells: Sequence[Cell], height: int, width: int, appearance: Appearance,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free cell signal (2, H, W) float32 (ADU above background) and the two label images.

    ``rng`` draws the textures; ``None`` or ``appearance.nuisance == False`` renders flat textures.
    """
    signal = np.zeros((2, height, width), dtype=np.float32)
    cell_labels = np.zeros((height, width), dtype=np.int32)
    nucleus_labels = np.zeros((height, width), dtype=np.int32)
    best = np.full((height, width), np.inf, dtype=np.float32)
    if rng is not None and appearance.nuisance and appearance.texture > 0:
        chromatin = 1.0 + appearance.texture * smooth_noise(rng, (height, width), 1.2, mode="wrap", centre=False)
        cytoplasm_texture = 1.0 + appearance.texture * smooth_noise(rng, (height, width), 3.0, mode="wrap",
                                                                    centre=False)
        np.clip(chromatin, 0.2, None, out=chromatin)
        np.clip(cytoplasm_texture, 0.2, None, out=cytoplasm_texture)
    else:
        chromatin = cytoplasm_texture = np.ones((height, width), dtype=np.float32)
    for index, cell in enumerate(cells, start=1):
        box = box_around(cell.x, cell.y, cell.a * 1.3 + 2.5, height, width)
        if box is None:
            continue
        yy, xx = pixel_grid(box)
        r_cell, d_cell = _normalized_radius(xx, yy, cell.x, cell.y, cell.angle, cell.a, cell.b, cell.shape)
        body = logistic_edge(d_cell, EDGE)
        # The nucleus on its own, smaller box (inside the cell's box: the nucleus lies in the body).
        nx, ny = cell.x + cell.nuc_dx, cell.y + cell.nuc_dy
        nucleus = np.zeros_like(body)
        dome = np.zeros_like(body)
        nucleus_mask = np.zeros(body.shape, dtype=bool)
        nbox = box_around(nx, ny, cell.nuc_a * 1.2 + 2.5, height, width)
        if nbox is not None:
            nbox = (slice(max(nbox[0].start, box[0].start), min(nbox[0].stop, box[0].stop)),
                    slice(max(nbox[1].start, box[1].start), min(nbox[1].stop, box[1].stop)))
            inner = sub_box(nbox, box)
            nyy, nxx = pixel_grid(nbox)
            r_nuc, d_nuc = _normalized_radius(nxx, nyy, nx, ny, cell.nuc_angle, cell.nuc_a, cell.nuc_b,
                                              cell.nuc_shape)
            nucleus[inner] = logistic_edge(d_nuc, EDGE)
            dome[inner] = nucleus[inner] * (0.75 + 0.25 * np.maximum(1.0 - r_nuc * r_nuc, 0.0))
            nucleus_mask[inner] = r_nuc < 1.0
        # Cytoplasmic marker: cytoplasm (thinner towards the edge) plus nuc_ratio times it in the nucleus.
        thickness = 0.55 + 0.45 * np.maximum(1.0 - r_cell * r_cell, 0.0)
        cyto = (cell.cytoplasm_level * body) * ((1.0 - nucleus) * thickness + cell.nuc_ratio * nucleus)
        cyto *= cytoplasm_texture[box]
        for dx, dy, sigma, peak in cell.spots:
            sx, sy = cell.x + dx, cell.y + dy
            sbox = box_around(sx, sy, 3.0 * sigma + 1.0, height, width)
            if sbox is None:
                continue
            syy, sxx = pixel_grid(sbox)
            spot = peak * gaussian((sxx - sx) ** 2 + (syy - sy) ** 2, sigma)
            target = sub_box(sbox, box)
            if cyto[target].shape == spot.shape:
                cyto[target] += spot
            else:  # the spot's box reaches past the cell's box: add it to the field directly
                signal[1][sbox] += spot
        # Nuclear stain: a dome over the nucleus, or the fragments of a fragmented one.
        if len(cell.fragments):
            fx = cell.x + cell.fragments[:, 0]
            fy = cell.y + cell.fragments[:, 1]
            dist = np.sqrt((xx[..., None] - fx) ** 2 + (yy[..., None] - fy) ** 2)
            pieces = logistic_edge(cell.fragments[:, 2] - dist, EDGE)
            nuc = cell.nuclear_level * (pieces * cell.fragments[:, 3]).max(axis=-1)
            nucleus_mask = (dist < cell.fragments[:, 2]).any(axis=-1)
        else:
            nuc = cell.nuclear_level * dome
        nuc *= chromatin[box]
        signal[0][box] += nuc
        signal[1][box] += cyto
        best_box, cell_box, nucleus_box = best[box], cell_labels[box], nucleus_labels[box]  # views
        inside = (r_cell < 1.0) & (r_cell < best_box)
        best_box[inside] = r_cell[inside]
        cell_box[inside] = index
        nucleus_box[nucleus_mask] = index
    return signal, cell_labels, nucleus_labels


def render_field(cells: Sequence[Cell], height: int, width: int, nuisance: FieldNuisance,
                 appearance: Appearance, rng: np.random.Generator) -> RenderedField:
    """Render ``cells`` (see :func:`mcnn.simulate.cells.sample_field`) into a :class:`RenderedField`.

    ``rng`` draws textures and noise; the same cells, nuisance and generator state give the same
    image bit for bit.
    """
    signal, cell_labels, nucleus_labels = render_signal(cells, height, width, appearance, rng)
    illumination = nuisance.illumination(height, width)
    light = np.empty_like(signal)
    for c in range(2):
        light[c] = illumination * (nuisance.background[c] + nuisance.gain[c] * signal[c])
    expected = appearance.camera_offset + light
    if appearance.noise:
        photons = rng.poisson(np.maximum(light, 0.0) / appearance.adu_per_photon)
        noisy = appearance.camera_offset + appearance.adu_per_photon * photons
        noisy = noisy + rng.normal(0.0, appearance.read_noise, size=light.shape)
    else:
        noisy = expected
    image = to_dtype(noisy, np.uint16)
    return RenderedField(image=image, expected=expected.astype(np.float32), cell_labels=cell_labels,
                         nucleus_labels=nucleus_labels)
