"""The drawing primitives both cell renderers share (mcnn.simulate.draw)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcnn.simulate.draw import (
    box_around,
    clip_box,
    gaussian,
    logistic_edge,
    pixel_grid,
    ramp_edge,
    rotate,
    smooth_noise,
    sub_box,
    to_dtype,
)


def test_boxes_are_clipped_to_the_image() -> None:
    assert clip_box(-3, 5, 2, 40, 10, 20) == (slice(0, 5), slice(2, 20))
    assert clip_box(12, 15, 0, 4, 10, 20) is None
    assert clip_box(3, 3, 0, 4, 10, 20) is None
    # A point at (x 4.5, y 2.2) with reach 1: rows 1..4, columns 3..6 (inclusive of the rounded ends).
    assert box_around(4.5, 2.2, 1.0, 10, 20) == (slice(1, 5), slice(3, 7))
    assert box_around(-5.0, 2.0, 1.0, 10, 20) is None
    inner = sub_box((slice(3, 5), slice(7, 9)), (slice(2, 6), slice(4, 10)))
    assert inner == (slice(1, 3), slice(3, 5))


def test_pixel_grids() -> None:
    box = (slice(2, 5), slice(10, 14))
    rows, cols = pixel_grid(box)
    assert rows.shape == (3, 1) and cols.shape == (1, 4) and rows.dtype == cols.dtype == np.float32
    assert rows.ravel().tolist() == [2, 3, 4] and cols.ravel().tolist() == [10, 11, 12, 13]
    dense_rows, dense_cols = pixel_grid(box, dense=True)
    assert dense_rows.shape == dense_cols.shape == (3, 4)
    np.testing.assert_array_equal(dense_rows, np.broadcast_to(rows, (3, 4)))
    np.testing.assert_array_equal(dense_cols, np.broadcast_to(cols, (3, 4)))
    dense_rows[0, 0] = -1  # a real array, not a view of the open grid
    assert rows[0, 0] == 2


def test_rotate_gives_along_and_across_axis_coordinates() -> None:
    angle = math.radians(30)
    dx = np.array([math.cos(angle), -math.sin(angle)])
    dy = np.array([math.sin(angle), math.cos(angle)])
    u, v = rotate(dx, dy, math.cos(angle), math.sin(angle))
    np.testing.assert_allclose(u, [1.0, 0.0], atol=1e-12)  # first point on the axis, second across it
    np.testing.assert_allclose(v, [0.0, 1.0], atol=1e-12)


def test_soft_edges() -> None:
    r = np.array([0.0, 0.9, 1.0, 1.06, 1.5])
    np.testing.assert_allclose(ramp_edge(r, 0.12), [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-12)
    d = np.array([-10.0, -0.5, 0.0, 0.5, 10.0])
    edge = logistic_edge(d, 0.5)
    np.testing.assert_allclose(edge[1:4], [1 / (1 + math.e), 0.5, math.e / (1 + math.e)])
    assert edge[0] < 1e-8 and edge[-1] > 1 - 1e-8


def test_gaussian_spot() -> None:
    sigma = 1.5
    values = gaussian(np.array([0.0, sigma**2, 4 * sigma**2]), sigma)
    np.testing.assert_allclose(values, [1.0, math.exp(-0.5), math.exp(-2.0)])


@pytest.mark.parametrize("centre", [True, False])
def test_smooth_noise(centre: bool) -> None:
    a = smooth_noise(np.random.default_rng(3), (64, 80), 2.0, mode="wrap", centre=centre)
    b = smooth_noise(np.random.default_rng(3), (64, 80), 2.0, mode="wrap", centre=centre)
    assert a.shape == (64, 80) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert float(a.std()) == pytest.approx(1.0, rel=1e-5)
    if centre:
        assert abs(float(a.mean())) < 1e-6
    # Smooth: neighbouring pixels are strongly correlated (white noise would give about 0).
    assert np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1] > 0.8


def test_to_dtype_rounds_and_clips() -> None:
    image = np.array([-1.0, 0.0, 0.2, 0.50049, 2.0])
    assert to_dtype(image, np.uint8, peak=255.0).tolist() == [0, 0, 51, 128, 255]
    assert to_dtype(image, "uint16", peak=1000.0, offset=10.0).tolist() == [0, 10, 210, 510, 2010]
    assert to_dtype(np.array([70000.4, 3.5]), np.uint16).dtype == np.uint16
    assert to_dtype(np.array([70000.4, 3.5]), np.uint16).tolist() == [65535, 4]
