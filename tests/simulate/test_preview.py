"""Preview montages of a simulated screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mcnn.simulate.preview import channel_ranges, montage, preview_tiles, save_preview, to_rgb


def test_rgb_and_montage() -> None:
    image = np.zeros((2, 16, 20), dtype=np.uint16)
    image[0, :8] = 1000  # nuclei: blue
    image[1, :, :10] = 500  # cytoplasm: green
    rgb = to_rgb(image, channel_ranges([image]))
    assert rgb.shape == (16, 20, 3) and rgb.dtype == np.uint8
    assert rgb[0, 15, 2] == 255 and rgb[0, 15, 1] == 0 and rgb[15, 0, 1] == 255 and rgb[15, 15].max() == 0
    grid = montage([[rgb, rgb, rgb], [rgb, None]], gap=2)
    assert grid.shape == (2 * 16 + 2, 3 * 20 + 4, 3)
    assert (grid[18:, 22:] == 255).all()  # blank cells and gaps are white


def test_preview_of_a_screen(test_screen: Path, tmp_path: Path) -> None:
    labels, tiles = preview_tiles(test_screen, per_class=3)
    assert labels[:4] == ["control (DMSO)", "translocation (PC-translocation)", "spots (PC-spots)",
                          "elongation (PC-elongation)"]
    assert labels[4].startswith("CPD-01 (translocation), 0.1..10 uM")
    assert [len(row) for row in tiles] == [3, 3, 3, 3, 3, 3]
    path = save_preview(test_screen, tmp_path / "p.png", per_class=3)
    with Image.open(path) as png:
        assert png.mode in ("RGB", "RGBA") and png.size[0] > 300
