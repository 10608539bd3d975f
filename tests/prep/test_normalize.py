"""Intensity statistics from histograms and the 16 -> 8-bit mapping (mcnn.prep.normalize)."""

from __future__ import annotations

import numpy as np
import pytest

from mcnn.errors import ConfigError
from mcnn.prep.normalize import (
    IntensityMapping,
    build_mapping,
    center_scale,
    float_to_uint8,
    histogram,
    map_planes,
)


@pytest.fixture
def plane() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.gamma(2.0, 300.0, size=(40, 50)).astype(np.uint16)


def test_meanstd_matches_numpy(plane: np.ndarray) -> None:
    c, s = center_scale(histogram(plane), IntensityMapping(stat="meanstd"))
    assert c == pytest.approx(plane.mean()) and s == pytest.approx(plane.std())


def test_transforms_before_statistics(plane: np.ndarray) -> None:
    c, s = center_scale(histogram(plane), IntensityMapping(stat="meanstd", transform="anscombe"))
    t = 2 * np.sqrt(plane.astype(float) + 0.375)
    assert c == pytest.approx(t.mean()) and s == pytest.approx(t.std())
    c, _ = center_scale(histogram(plane), IntensityMapping(stat="meanstd", transform="log"))
    assert c == pytest.approx(np.log1p(plane.astype(float)).mean())


def test_median_mad_and_percentiles(plane: np.ndarray) -> None:
    values = np.sort(plane.ravel().astype(float))
    n = values.size
    c, s = center_scale(histogram(plane), IntensityMapping(stat="median-mad"))
    median = values[int(np.ceil(0.5 * n)) - 1]  # the lower median: smallest value with half the pixels at or below
    assert c == median
    dev = np.sort(np.abs(values - median))
    assert s == pytest.approx(1.4826 * dev[int(np.ceil(0.5 * n)) - 1])
    c, s = center_scale(histogram(plane), IntensityMapping(stat="percentile", percentiles=(1.0, 99.0)))
    lo, hi = values[int(np.ceil(0.01 * n)) - 1], values[int(np.ceil(0.99 * n)) - 1]
    assert (c, s) == (lo, hi - lo)


def test_uint8_identity_by_default() -> None:
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = float_to_uint8(map_planes([img], None, IntensityMapping())[0])
    assert np.array_equal(out, img)


def test_plate_dmso_mapping_formula() -> None:
    # z = (x - 1000) / 200; the default range (-2, 10) maps z = -2 -> 0, z = 10 -> 255
    m = IntensityMapping(scope="plate-dmso", stat="meanstd")
    x = np.array([[600, 1100, 1400, 2000, 60000]], dtype=np.uint16)
    out = float_to_uint8(map_planes([x], [(1000.0, 200.0)], m)[0])
    expected = np.clip(np.rint((((x.astype(float) - 1000) / 200) + 2) / 12 * 255), 0, 255)
    assert out.tolist() == expected.astype(np.uint8).tolist() == [[0, 53, 85, 149, 255]]


def test_image_scope_percentile_stretches_each_image() -> None:
    m = build_mapping({"scope": "image", "stat": "percentile"}, percentiles=(0.0, 100.0))
    x = np.linspace(100, 4100, 100).astype(np.uint16).reshape(10, 10)
    out = float_to_uint8(map_planes([x], None, m)[0])
    assert out.min() == 0 and out.max() == 255


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="--norm-scope plate: choose from none, image, plate-dmso"):
        build_mapping({}, scope="plate")
    with pytest.raises(ConfigError, match="--range 3,1: need low < high"):
        build_mapping({}, range=(3.0, 1.0))
    with pytest.raises(ConfigError, match="--percentiles"):
        build_mapping({}, percentiles=(50.0, 10.0))
    assert IntensityMapping(scope="none").resolved_range("uint16") == (0.0, 65535.0)
    assert IntensityMapping(scope="image", stat="percentile").resolved_range("uint16") == (0.0, 1.0)
    assert IntensityMapping(scope="plate-dmso").resolved_range("uint16") == (-2.0, 10.0)
