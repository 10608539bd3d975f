"""Intensity normalisation and the mapping of 8/16-bit pixels to the 8-bit Datum.

Each channel of an image is mapped in three steps:

1. ``transform`` of the raw counts x: ``none`` (x), ``log`` (ln(1 + x)) or ``anscombe``
   (2 sqrt(x + 3/8), variance-stabilising for Poisson noise);
2. standardisation ``z = (t - center) / scale`` with statistics of the transformed values from
   the ``scope``: ``none`` (center 0, scale 1), ``image`` (the image's own channel) or
   ``plate-dmso`` (all pixels of the negative-control (DMSO) images of the same plate and
   channel, pooled); the ``stat`` is ``meanstd`` (mean and standard deviation), ``median-mad``
   (median and 1.4826 x median absolute deviation) or ``percentile`` (center = the low
   percentile, scale = high - low percentile);
3. the fixed ``range`` [lo, hi] of z is mapped linearly onto 0..255: ``round((z - lo) / (hi - lo)
   * 255)``, clipped.

Default ``range``: (-2, 10) for ``meanstd``/``median-mad``, (0, 1) for ``percentile``, and the
transformed range of the pixel type (0..255 or 0..65535) for scope ``none`` (so 8-bit images
pass unchanged). Statistics are computed exactly from integer histograms (65,536 bins for 16-bit
images), so the per-plate pass needs memory for one plate's histograms only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from mcnn.errors import ConfigError

SCOPES = ("none", "image", "plate-dmso")
STATS = ("meanstd", "median-mad", "percentile")
TRANSFORMS = ("none", "log", "anscombe")
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class IntensityMapping:
    """How raw pixels become 8-bit: ``transform``, ``scope`` and ``stat`` of the standardisation,
    ``percentiles`` (for ``stat='percentile'``, in %) and the z ``range`` mapped to 0..255
    (None = the default of the stat and scope)."""

    scope: str = "none"
    stat: str = "meanstd"
    transform: str = "none"
    percentiles: tuple[float, float] = (0.1, 99.9)
    range: tuple[float, float] | None = None

    def validate(self) -> IntensityMapping:
        """Raise ConfigError naming the option with an invalid value; return self."""
        if self.scope not in SCOPES:
            raise ConfigError(f"--norm-scope {self.scope}: choose from {', '.join(SCOPES)}")
        if self.stat not in STATS:
            raise ConfigError(f"--norm-stat {self.stat}: choose from {', '.join(STATS)}")
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"--transform {self.transform}: choose from {', '.join(TRANSFORMS)}")
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise ConfigError(f"--percentiles {lo:g},{hi:g}: need 0 <= low < high <= 100")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ConfigError(f"--range {self.range[0]:g},{self.range[1]:g}: need low < high")
        return self

    def resolved_range(self, dtype: np.dtype | str) -> tuple[float, float]:
        """The z interval mapped onto 0..255 for images of ``dtype``."""
        if self.range is not None:
            return (float(self.range[0]), float(self.range[1]))
        if self.scope == "none":
            top = float(np.iinfo(np.dtype(dtype)).max)
            low, high = transform(np.float64(0.0), self.transform), transform(np.float64(top), self.transform)
            return (float(low), float(high))
        if self.stat == "percentile":
            return (0.0, 1.0)
        return (-2.0, 10.0)

    def describe(self, dtype: np.dtype | str) -> dict[str, Any]:
        """A JSON-ready description (dataset.json, normalization.json)."""
        out = asdict(self)
        out["range"] = list(self.resolved_range(dtype))
        out["percentiles"] = list(self.percentiles)
        out["formula"] = ("u8 = clip(round((z - lo) / (hi - lo) * 255), 0, 255), z = (transform(x) - center) / scale, "
                          f"center/scale = {self.stat} of {self.scope}")
        return out


def build_mapping(defaults: Mapping[str, Any], **overrides: Any) -> IntensityMapping:
    """A validated mapping from a dataset's defaults and the command-line overrides (None = keep)."""
    mapping = IntensityMapping(**dict(defaults))
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(mapping, **changes).validate()


def transform(x: np.ndarray | np.floating, name: str) -> np.ndarray:
    """The value transform applied before standardisation (float64 or float32 in, same out)."""
    if name == "none":
        return x
    if name == "log":
        return np.log1p(x)
    if name == "anscombe":
        return 2.0 * np.sqrt(x + 0.375)
    raise ConfigError(f"--transform {name}: choose from {', '.join(TRANSFORMS)}")


def bins_for(dtype: np.dtype | str) -> int:
    """Histogram bins covering every value of an unsigned integer type (256 or 65,536)."""
    dt = np.dtype(dtype)
    if dt.kind != "u" or dt.itemsize > 2:
        raise ConfigError(f"intensity statistics need 8- or 16-bit unsigned images, got {dt.name}")
    return int(np.iinfo(dt).max) + 1


def histogram(plane: np.ndarray) -> np.ndarray:
    """Counts of every value of a uint8/uint16 plane (int64, 256 or 65,536 bins)."""
    return np.bincount(plane.ravel(), minlength=bins_for(plane.dtype)).astype(np.int64)


def _quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative count reaches ``q`` (0..1) of the total (values sorted)."""
    cum = np.cumsum(counts)
    total = cum[-1]
    idx = int(np.searchsorted(cum, q * total, side="left"))
    return float(values[min(idx, len(values) - 1)])


def center_scale(hist: np.ndarray, mapping: IntensityMapping) -> tuple[float, float]:
    """(center, scale) of the transformed values described by a value histogram.

    Raises ConfigError for an empty histogram; a zero spread gives scale 1 (a constant image
    maps to the low end of the range rather than dividing by zero).
    """
    counts = np.asarray(hist, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ConfigError("intensity statistics of an empty set of pixels")
    values = transform(np.arange(len(counts), dtype=np.float64), mapping.transform)
    nz = counts > 0
    values, counts = values[nz], counts[nz]
    if mapping.stat == "meanstd":
        center = float((values * counts).sum() / total)
        scale = float(np.sqrt((counts * (values - center) ** 2).sum() / total))
    elif mapping.stat == "median-mad":
        center = _quantile(values, counts, 0.5)
        dev = np.abs(values - center)
        order = np.argsort(dev, kind="stable")
        scale = MAD_TO_SD * _quantile(dev[order], counts[order], 0.5)
    else:
        lo = _quantile(values, counts, mapping.percentiles[0] / 100.0)
        hi = _quantile(values, counts, mapping.percentiles[1] / 100.0)
        center, scale = lo, hi - lo
    if not scale > 0:
        scale = 1.0
    return center, scale


def plane_to_float(plane: np.ndarray, center: float, scale: float, mapping: IntensityMapping,
                   lo_hi: tuple[float, float]) -> np.ndarray:
    """A raw plane mapped to float32 values on the 0..255 scale (not yet rounded or clipped)."""
    t = transform(plane.astype(np.float32), mapping.transform)
    lo, hi = lo_hi
    gain = np.float32(255.0 / ((hi - lo) * scale))
    offset = np.float32(center + lo * scale)
    return (t - offset) * gain


def float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Round half to even and clip to 0..255."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def map_planes(planes: Sequence[np.ndarray], stats: Sequence[tuple[float, float]] | None,
               mapping: IntensityMapping) -> list[np.ndarray]:
    """Float32 0..255-scaled planes of one image; ``stats`` per channel for scope ``plate-dmso``."""
    out = []
    for c, plane in enumerate(planes):
        lo_hi = mapping.resolved_range(plane.dtype)
        if mapping.scope == "none":
            center, scale = 0.0, 1.0
        elif mapping.scope == "image":
            center, scale = center_scale(histogram(plane), mapping)
        else:
            if stats is None:
                raise ConfigError("plate-dmso normalisation without plate statistics")
            center, scale = stats[c]
        out.append(plane_to_float(plane, center, scale, mapping, lo_hi))
    return out
