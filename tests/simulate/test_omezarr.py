"""OME-Zarr HCS plates: the generic writer and the plates of a simulated screen, read back with zarr / ome-zarr."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mcnn.errors import ConfigError
from mcnn.simulate import get_preset, simulate_screen
from mcnn.simulate.omezarr import plate_axes, row_index, row_name, split_well, write_hcs_plate
from tests.simulate.support import read_rows

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")


def _ome(group: object) -> dict:
    """The OME metadata of a zarr group (NGFF 0.5 keeps it under ``ome``, 0.4 at the top)."""
    attrs = dict(group.attrs)
    return attrs.get("ome", attrs)


def _field(group: object, path: str) -> np.ndarray:
    """The full-resolution (C, H, W) array of the image group at ``path``."""
    image = group[path]
    return np.asarray(image[_ome(image)["multiscales"][0]["datasets"][0]["path"]][...])


def _read_with_ome_zarr(path: Path) -> tuple[np.ndarray, list[str], list[dict]]:
    """One field image read with ome-zarr's own reader: pixels, channel names, axes."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(str(path)))()))
    return np.asarray(node.data[0]), node.metadata["channel_names"], node.metadata["axes"]


def _fields(seed: int = 0) -> list[tuple[str, int, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(well, site, rng.integers(0, 60000, (3, 40, 48), dtype=np.uint16))
            for well in ("B03", "B04", "C3") for site in (1, 2)]


def test_row_and_well_names() -> None:
    assert [row_name(i) for i in (0, 7, 25, 26, 31)] == ["A", "H", "Z", "AA", "AF"]
    assert [row_index(row_name(i)) for i in range(32)] == list(range(32))
    assert split_well("B3") == split_well("B03") == ("B", "03") and split_well("AF48") == ("AF", "48")
    assert plate_axes([("B", "03"), ("C", "01")]) == (["A", "B", "C"], ["01", "02", "03"])
    rows, cols = plate_axes([("B", "03")], (8, 12))
    assert rows == list("ABCDEFGH") and cols[-1] == "12" and len(cols) == 12
    for bad in ("b03", "B", "03", "B00", "B03_1"):
        with pytest.raises(ConfigError, match=f"well '{bad}': expected row letters"):
            split_well(bad)


def test_generic_plate_round_trip(tmp_path: Path) -> None:
    fields = _fields()
    path = write_hcs_plate(tmp_path / "plates" / "X1.ome.zarr", "X1", iter(fields), ["dna", "actin", "tubulin"],
                           np.uint16, plate_format=96)
    root = zarr.open_group(str(path), mode="r")
    plate = _ome(root)["plate"]
    assert plate["name"] == "X1" and plate["field_count"] == 2
    assert [r["name"] for r in plate["rows"]] == list("ABCDEFGH")
    assert [c["name"] for c in plate["columns"]] == [f"{i:02d}" for i in range(1, 13)]
    assert plate["wells"] == [{"path": "B/03", "rowIndex": 1, "columnIndex": 2},
                              {"path": "B/04", "rowIndex": 1, "columnIndex": 3},
                              {"path": "C/03", "rowIndex": 2, "columnIndex": 2}]
    assert _ome(root["B/04"])["well"]["images"] == [{"path": "0"}, {"path": "1"}]
    for well, site, image in fields:
        row, column = split_well(well)
        stored = _field(root, f"{row}/{column}/{site - 1}")
        assert stored.dtype == np.uint16 and np.array_equal(stored, image)
        channels = _ome(root[f"{row}/{column}/{site - 1}"])["omero"]["channels"]
        assert [c["label"] for c in channels] == ["dna", "actin", "tubulin"]
        assert channels[1]["window"]["end"] == float(image[1].max())
    pixels, names, axes = _read_with_ome_zarr(path / "C" / "03" / "1")
    assert np.array_equal(pixels, fields[-1][2]) and names == ["dna", "actin", "tubulin"]
    assert [a["name"] for a in axes] == ["c", "y", "x"]
    assert [p.name for p in (tmp_path / "plates").iterdir()] == ["X1.ome.zarr"]  # no temporary folder left


def test_plate_without_format_spans_the_used_wells(tmp_path: Path) -> None:
    image = np.full((1, 32, 32), 7, dtype=np.uint8)
    path = write_hcs_plate(tmp_path / "p.ome.zarr", "p", [("C2", 1, image)], ["dna"], np.uint16)
    root = zarr.open_group(str(path), mode="r")
    plate = _ome(root)["plate"]
    assert [r["name"] for r in plate["rows"]] == ["A", "B", "C"] and [c["name"] for c in plate["columns"]] == \
        ["01", "02"]
    stored = _field(root, "C/02/0")
    assert stored.dtype == np.uint16 and (stored == 7).all()  # uint8 widened losslessly


@pytest.mark.parametrize(
    ("fields", "options", "message"),
    [
        ([("B03", 1, np.zeros((2, 8, 8), np.uint16)), ("B04", 1, np.zeros((2, 8, 8), np.uint16)),
          ("B03", 2, np.zeros((2, 8, 8), np.uint16))], {}, "well B03: its fields must come one after the other"),
        ([("B03", 1, np.zeros((2, 8, 8), np.uint16))] * 2, {}, "well B03: site 1 given twice"),
        ([("B03", 1, np.zeros((3, 8, 8), np.uint16))], {}, r"well B03 site 1: expected a \(2, H, W\) array"),
        ([("B03", 1, np.zeros((2, 8, 8), np.float32))], {}, "float32 pixels cannot be stored as uint16"),
        ([("I01", 1, np.zeros((2, 8, 8), np.uint16))], {"plate_format": 96}, "well I01 lies outside a 96-well"),
        ([("B03", 1, np.zeros((2, 8, 8), np.uint16))], {"plate_format": 100}, "plate_format must be one of"),
        ([], {}, "plate P: no fields to write"),
    ],
)
def test_bad_fields_leave_nothing(fields: list, options: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        write_hcs_plate(tmp_path / "P.ome.zarr", "P", fields, ["a", "b"], np.uint16, **options)
    assert list(tmp_path.iterdir()) == []


def test_existing_plate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "P.ome.zarr").mkdir()
    with pytest.raises(ConfigError, match=r"P\.ome\.zarr already exists"):
        write_hcs_plate(tmp_path / "P.ome.zarr", "P", _fields(), ["a", "b", "c"])


def test_screen_plates_hold_the_tiff_pixels(zarr_screen: Path, test_screen: Path) -> None:
    truth = json.loads((zarr_screen / "ground_truth.json").read_text())
    assert truth["ome_zarr_plates"] == ["plates/P01.ome.zarr"]
    root = zarr.open_group(str(zarr_screen / "plates" / "P01.ome.zarr"), mode="r")
    plate = _ome(root)["plate"]
    assert plate["name"] == "P01" and plate["field_count"] == 2 and len(plate["wells"]) == 14
    assert len(plate["rows"]) == 8 and len(plate["columns"]) == 12
    wells = [w["Metadata_Well"] for w in read_rows(zarr_screen / "platemap.csv")]
    assert [w["path"].replace("/", "") for w in plate["wells"]] == wells
    rows = read_rows(zarr_screen / "load_data.csv")
    for row in rows:
        well, site = row["Metadata_Well"], int(row["Metadata_Site"])
        tiffs = np.stack([tifffile.imread(zarr_screen / row[f"PathName_{c}"] / row[f"FileName_{c}"])
                          for c in ("nuclei", "cytoplasm")])
        assert np.array_equal(_field(root, f"{well[0]}/{well[1:]}/{site - 1}"), tiffs)
    pixels, names, _ = _read_with_ome_zarr(zarr_screen / "plates" / "P01.ome.zarr" / "F" / "02" / "1")
    assert names == ["nuclei", "cytoplasm"] and pixels.shape == (2, 64, 64)
    assert np.array_equal(pixels[1], tifffile.imread(zarr_screen / "images" / "P01" / "P01_F02_s2_cytoplasm.tif"))
    # The rest of the screen is the one written without plates (only the plate list differs).
    for name in ("load_data.csv", "platemap.csv", "ground_truth_fields.csv", "images/P01/P01_A01_s1_nuclei.tif"):
        assert (zarr_screen / name).read_bytes() == (test_screen / name).read_bytes()


def test_plates_are_deterministic(zarr_screen: Path, tmp_path: Path) -> None:
    """Rewriting the plate from the same TIFFs gives the same bytes (the TIFFs are worker-independent)."""
    rows = read_rows(zarr_screen / "load_data.csv")
    series = ((r["Metadata_Well"], int(r["Metadata_Site"]),
               np.stack([tifffile.imread(zarr_screen / r[f"PathName_{c}"] / r[f"FileName_{c}"])
                         for c in ("nuclei", "cytoplasm")])) for r in rows)
    again = write_hcs_plate(tmp_path / "P01.ome.zarr", "P01", series, ["nuclei", "cytoplasm"], plate_format=96)

    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    first = digest(zarr_screen / "plates" / "P01.ome.zarr")
    assert len(first) > 28 and digest(again) == first


def test_missing_extra_is_one_line_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ome_zarr", None)  # import ome_zarr now raises ImportError
    monkeypatch.setitem(sys.modules, "ome_zarr.writer", None)
    with pytest.raises(ConfigError, match=r"needs the 'screen' extra: pip install 'mcnn\[screen\]'"):
        simulate_screen(get_preset("test"), tmp_path / "raw", ome_zarr=True)
    assert not (tmp_path / "raw").exists()
    with pytest.raises(ConfigError, match="screen' extra"):
        write_hcs_plate(tmp_path / "p.ome.zarr", "p", _fields(), ["a", "b", "c"])
