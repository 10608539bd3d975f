"""The look-alikes have the real download layouts (names, counts, formats, bit depths) of the public pages:
https://bbbc.broadinstitute.org/BBBC013 ... BBBC021, https://ome.grc.nia.nih.gov/iicbu2008/ (HeLa, CHO)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from mcnn.datasets.imageio import read_plane
from tests.support.lookalikes import lookalike


def _files(root, pattern="*"):
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def test_bbbc013_layout() -> None:
    raw = lookalike("bbbc013")
    images = _files(raw / "BBBC013_v1_images_bmp")
    # https://bbbc.broadinstitute.org/BBBC013: 96 wells x 2 channels = 192 BMPs named
    # Channel<c>-<NN>-<R>-<CC>.BMP, NN row-major ordinal
    assert len(images) == 192
    regex = re.compile(r"^Channel(?P<channel>[12])-(?P<ordinal>\d+)-(?P<row>[A-H])-(?P<column>\d{2})\.BMP$")
    for p in images:
        m = regex.match(p.name)
        assert m, p.name
        assert int(m["ordinal"]) == (ord(m["row"]) - ord("A")) * 12 + int(m["column"])
    assert (raw / "BBBC013_v1_images_bmp" / "Channel1-01-A-01.BMP").is_file()
    with Image.open(images[0]) as im:
        assert im.format == "BMP" and im.mode in ("L", "P")
    lines = (raw / "BBBC013_v1_platemap_all.txt").read_text().splitlines()
    assert lines[0].startswith("DESCRIPTION") and len(lines) == 97


def test_bbbc014_layout() -> None:
    raw = lookalike("bbbc014")
    images = _files(raw / "BBBC014_v1_images")
    assert len(images) == 192  # https://bbbc.broadinstitute.org/BBBC014: 96 wells x 1 field x 2 channels
    assert (raw / "BBBC014_v1_images" / "Channel 1-01-A-01-00.Bmp").is_file()  # space, -00, mixed-case .Bmp
    assert all(re.match(r"^Channel [12]-\d{2}-[A-H]-\d{2}-00\.Bmp$", p.name) for p in images)
    tokens = (raw / "BBBC014_v1_platemap_all.txt").read_bytes().decode("latin-1").splitlines()
    assert tokens[0].startswith("DESCRIPTION") and len(tokens) == 97
    assert all(t.startswith("10^") for t in tokens[1:])
    plane = read_plane(images[0])
    assert plane.dtype == np.uint8 and plane.shape == (64, 85)  # small: 1/16 of 1024 x 1360


def test_bbbc015_layout() -> None:
    raw = lookalike("bbbc015")
    images = _files(raw / "BBBC015_v1_images")
    assert len(images) == 288  # https://bbbc.broadinstitute.org/BBBC015: 36 wells x 4 fields x 2 channels
    assert all(p.suffix == ".JPG" for p in images)
    rgb = np.asarray(Image.open(images[0]))
    assert rgb.ndim == 3 and rgb.shape[2] == 3  # 3-channel JPEG ...
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])  # ... R = G = B
    # sorted, the list alternates the two channels per field (the bioimageloader convention)
    words = [p.stem.split("_")[2] for p in images]
    assert words[:4] == ["crimson", "green", "crimson", "green"]


def test_bbbc016_layout() -> None:
    raw = lookalike("bbbc016")
    images = _files(raw / "BBBC016_v1_images")
    assert len(images) == 144  # https://bbbc.broadinstitute.org/BBBC016: 24 wells x 3 fields x 2 channels
    regex = re.compile(r"_O([0-9]{2})f([0-9]{2})d([02])\.TIF$")  # the R validation script's regex
    assert all(regex.search(p.name) for p in images)
    lines = (raw / "BBBC016_v1_platemap.txt").read_text().splitlines()
    assert len(lines) == 73  # one header line + 72 doses (one per field)
    plane = read_plane(images[0])
    assert plane.dtype == np.uint8 and plane.shape == (64, 64)


@pytest.mark.parametrize(("name", "count", "classes"), [("hela", 862, 10), ("cho", 340, 5)])
def test_class_folder_layouts(name: str, count: int, classes: int) -> None:
    raw = lookalike(name)
    images = _files(raw / name, "*.tif")
    assert len(images) == count  # IICBU-2008: 862 HeLa / 340 CHO images, one folder per class
    assert len({p.parent.name for p in images}) == classes
    assert read_plane(images[0]).dtype == np.uint16  # 16-bit TIFF


def test_hpa_layout() -> None:
    from scipy.io import loadmat

    raw = lookalike("hpa")
    mat = loadmat(str(raw / "IF_atlas_5_regionfeatures_all_A431R2-2_5folds_Info.mat"))
    for key in ("antibodyids", "readlist", "readlist_nuc", "readlist_er", "readlist_tub", "readlist_mask",
                "classlabels", "classes"):
        assert key in mat
    first = str(mat["readlist"][0, 0][0])
    assert first.startswith("/share/images/HPA/images/IFconfocal/") and first.endswith("_green.tif")
    assert len(_files(raw / "images", "*_green.tif")) == len(_files(raw / "images", "*_yellow.tif"))


def test_bbbc021_layout() -> None:
    raw = lookalike("bbbc021")
    plates = sorted(p.name for p in raw.iterdir() if p.is_dir())
    assert plates == ["Week1_22123", "Week1_22141", "Week1_22161"]
    for plate in plates:
        names = [p.name for p in (raw / plate).iterdir()]
        assert len(names) == 720  # https://bbbc.broadinstitute.org/BBBC021: 60 wells x 4 sites x 3 channels per plate
        assert all(re.match(r"(.*)([A-H]\d{2})_s([1-4])_w(\d)(.+)\.tif", n) for n in names)
    plane = read_plane(next((raw / plates[0]).iterdir()))
    assert plane.dtype == np.uint16 and plane.shape == (64, 80)  # 16-bit, 1/16 of 1024 x 1280
    image_csv = (raw / "BBBC021_v1_image.csv").read_bytes()
    assert image_csv.count(b"\r\n") == 720  # CRLF dialect kept: header + 720 rows, no final line end
    assert not image_csv.endswith(b"\n")
