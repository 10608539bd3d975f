"""Preview montages of a simulated screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from mcnn.errors import ConfigError, TableError
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
    assert labels[4:] == ["CPD-01, 0.1..10 uM", "CPD-02, 0.1..10 uM"]  # the plate map does not know phenotypes
    assert [len(row) for row in tiles] == [3, 3, 3, 3, 3, 3]
    # Each tile shows its field: of all the screen's nuclei images, its blue channel matches that one best.
    nuclei = {p.name.split("_")[1] + "_" + p.name.split("_")[2]: tifffile.imread(p)
              for p in sorted((test_screen / "images" / "P01").glob("*_nuclei.tif"))}

    def best(tile: np.ndarray) -> str:
        return max(nuclei, key=lambda k: np.corrcoef(tile[..., 2].ravel(), nuclei[k].ravel())[0, 1])

    assert [best(t) for t in tiles[0]] == ["A01_s1", "A01_s2", "B01_s1"]
    assert [best(t) for t in tiles[5]] == ["D02_s1", "E02_s1", "F02_s1"]  # CPD-02 at 0.1, 1 and 10 uM
    path = save_preview(test_screen, tmp_path / "p.png", per_class=3)
    with Image.open(path) as png:
        assert png.mode in ("RGB", "RGBA") and png.size[0] > 300


def test_preview_needs_the_screen_tables(test_screen: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no load_data\.csv or platemap\.csv"):
        preview_tiles(tmp_path)
    (tmp_path / "load_data.csv").write_text((test_screen / "load_data.csv").read_text())
    (tmp_path / "platemap.csv").write_text("Metadata_Plate,Metadata_Well\nP01,A01\n")
    with pytest.raises(TableError, match=r"platemap\.csv: no column 'Metadata_Compound' \(the plate map\)"):
        preview_tiles(tmp_path)
