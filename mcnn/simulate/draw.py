"""Drawing primitives shared by the two cell renderers.

Both :mod:`mcnn.simulate.render` (the phenotype simulator) and :mod:`mcnn.simulate.lookalikes.render`
(the look-alikes of the datasets' downloads) draw cells from the same pieces:

- pixel boxes and their coordinate grids: :func:`clip_box`, :func:`pixel_grid`, :func:`sub_box`;
- ellipse frames: :func:`rotate` turns offsets from a centre into along/across-axis coordinates;
- soft-edged masks: :func:`ramp_edge` (linear, on a normalised radius) and :func:`logistic_edge`
  (logistic, on a signed distance in pixels);
- Gaussian spots: :func:`gaussian`;
- textures: :func:`smooth_noise`, Gaussian-filtered white noise of unit standard deviation;
- the mapping of float intensities to integer pixels: :func:`to_dtype`.

Coordinates are pixels: rows ``y``, columns ``x``; angles in radians. The functions are pure and
keep their floating-point arithmetic fixed: the simulator's images depend on it bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.special import expit

#: A rectangle of pixels: (row slice, column slice).
Box = tuple[slice, slice]


def clip_box(top: int, bottom: int, left: int, right: int, height: int, width: int) -> Box | None:
    """Rows ``top:bottom`` and columns ``left:right`` clipped to an ``height`` x ``width`` image.

    ``None`` when nothing of the rectangle lies inside the image.
    """
    y0, y1 = max(0, top), min(height, bottom)
    x0, x1 = max(0, left), min(width, right)
    if y0 >= y1 or x0 >= x1:
        return None
    return slice(y0, y1), slice(x0, x1)


def box_around(cx: float, cy: float, reach: float, height: int, width: int) -> Box | None:
    """Pixels within ``reach`` (px) of the point ``(cx, cy)`` along each axis, clipped to the image."""
    return clip_box(math.floor(cy - reach), math.ceil(cy + reach) + 1, math.floor(cx - reach),
                    math.ceil(cx + reach) + 1, height, width)


def pixel_grid(box: Box, dense: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates (float32) of the pixels of ``box``.

    Open grids by default, rows (h, 1) and columns (1, w), which broadcast to (h, w); ``dense``
    returns two full (h, w) arrays.
    """
    rows = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None]
    cols = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :]
    if dense:
        shape = (rows.shape[0], cols.shape[1])
        return np.broadcast_to(rows, shape).copy(), np.broadcast_to(cols, shape).copy()
    return rows, cols


def sub_box(box: Box, outer: Box) -> Box:
    """``box`` in the coordinates of ``outer`` (which must contain it)."""
    return (slice(box[0].start - outer[0].start, box[0].stop - outer[0].start),
            slice(box[1].start - outer[1].start, box[1].stop - outer[1].start))


def rotate(dx: np.ndarray, dy: np.ndarray, cos: float, sin: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(dx, dy)`` from a centre as coordinates ``(u, v)`` along and across an axis.

    The axis points in direction ``(cos, sin)`` (its angle's cosine and sine).
    """
    return dx * cos + dy * sin, -dx * sin + dy * cos


def ramp_edge(r: np.ndarray, width: float = 0.12) -> np.ndarray:
    """Soft mask of a normalised radius ``r``: 1 inside, 0 outside, a linear edge ``width`` wide at r = 1."""
    return np.clip((1.0 - r) / width + 0.5, 0.0, 1.0)


def logistic_edge(distance: npt.ArrayLike, width: float) -> np.ndarray:
    """Soft mask of the signed distance (px) inside an outline: the logistic ``1 / (1 + exp(-d / width))``.

    It is 0.5 on the outline and falls from 0.73 to 0.27 over two ``width`` s.
    """
    return expit(np.divide(distance, width))


def gaussian(d2: npt.ArrayLike, sigma: float) -> np.ndarray:
    """Gaussian spot of peak 1 and standard deviation ``sigma`` (px) at squared distances ``d2`` (px²)."""
    return np.exp(np.multiply(d2, -0.5 / sigma**2))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, *, mode: str = "reflect",
                 centre: bool = True) -> np.ndarray:
    """Smooth float32 noise of standard deviation 1 and correlation length ``sigma`` (px).

    White noise filtered by a Gaussian of sd ``sigma`` (``mode``: how :func:`scipy.ndimage.gaussian_filter`
    treats the border; ``"wrap"`` makes the noise periodic), divided by its standard deviation and,
    when ``centre``, shifted to mean 0.
    """
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode=mode)
    std = float(noise.std()) or 1.0
    if centre:
        noise = noise - noise.mean()
    return noise / std


def to_dtype(image: np.ndarray, dtype: npt.DTypeLike, peak: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """A float image as integer pixels: ``image * peak + offset`` rounded and clipped to ``dtype``'s range."""
    dt = np.dtype(dtype)
    info = np.iinfo(dt)
    return np.clip(np.rint(image * peak + offset), info.min, info.max).astype(dt)
