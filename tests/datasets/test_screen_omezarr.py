"""Your own screen as OME-Zarr HCS plates written with ome-zarr's own writer (NGFF 0.4 and 0.5)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError
from tests.support import run_script
from tests.support.prepared import read_index, run_prepare
from tests.support.screens import (
    assert_same_records,
    write_platemap,
    write_tiff_screen,
    write_zarr_plate,
    write_zarr_screen,
)


def _nothing_written(out: Path) -> None:
    assert not list(out.rglob("*_lmdb")) and not (out / "dataset.json").exists()


def test_zarr_plates_prepare_to_the_records_of_the_csv_route(tmp_path: Path) -> None:
    csv = write_tiff_screen(tmp_path / "csv")
    zarr = write_zarr_screen(tmp_path / "zarr", version="0.5")
    run_prepare("screen", csv.raw, tmp_path / "a", dataset_options=csv.options(), repeats=1)
    run_prepare("screen", zarr.raw, tmp_path / "b", dataset_options=zarr.options(), repeats=1)
    assert assert_same_records(tmp_path / "a", tmp_path / "b") == 32 + 24
    rows = read_index(tmp_path / "b" / "screen_index.csv")
    assert [r["key"].split("_", 1)[1] for r in rows] == zarr.fields  # site = field index + 1
    assert (rows[1]["Image_FileName_DNA"], rows[1]["Image_FileName_Tubulin"]) == \
        ("plates/P1.ome.zarr/B/2/1#c=0", "plates/P1.ome.zarr/B/2/1#c=2")
    info = json.loads((tmp_path / "b" / "dataset.json").read_text())
    assert info["channels"] == ["DNA", "Actin", "Tubulin"] and info["counts"]["source"] == "ome-zarr"
    assert any(c["topic"] == "OME-Zarr time series and z-stacks" for c in info["choices"])


def test_one_ngff_04_plate_named_in_its_metadata_with_channels_chosen(tmp_path: Path) -> None:
    """``--images`` one plate whose folder name is not its name; --channels picks and orders two; RAW
    defaults to the plate's folder; the same records as the TIFF route with the same channels."""
    csv = write_tiff_screen(tmp_path / "csv", plates=("P1",), platemap_plates=None)
    plate = write_zarr_plate(tmp_path / "zarr" / "scan_0001.ome.zarr", "P1", version="0.4")
    write_platemap(tmp_path / "zarr" / "platemap.csv", plates=None)
    args = ["--platemap", str(tmp_path / "zarr" / "platemap.csv"), "--label-column", "Metadata_MoA",
            "--channels", "Tubulin,DNA", "--split", "field", "--repeats", "1", "--workers", "1", "--quiet"]
    res = run_script("data_prep/prepare.py", "screen", "--images", str(plate), "--out", str(tmp_path / "b"), *args)
    assert res.returncode == 0, res.stderr
    res = run_script("data_prep/prepare.py", "screen", "--images", str(csv.images), "--out", str(tmp_path / "a"),
                     *args)
    assert res.returncode == 0, res.stderr
    assert assert_same_records(tmp_path / "a", tmp_path / "b") == 16 + 12
    info = json.loads((tmp_path / "b" / "dataset.json").read_text())
    assert info["channels"] == ["Tubulin", "DNA"] and info["counts"]["plates"] == 1
    saved = json.loads((tmp_path / "b" / "screen.json").read_text())
    assert saved["raw"] == str(tmp_path / "zarr") and saved["channels"] == "Tubulin,DNA"
    assert read_index(tmp_path / "b" / "screen_index.csv")[0]["Image_FileName_DNA"] == "scan_0001.ome.zarr/B/2/0#c=0"


def test_plate_without_a_name_is_named_by_its_folder(tmp_path: Path) -> None:
    write_zarr_plate(tmp_path / "plates" / "P2.ome.zarr", "P2", version="0.4", name="")
    attrs = json.loads((tmp_path / "plates" / "P2.ome.zarr" / ".zattrs").read_text())
    assert "name" not in attrs["plate"]
    platemap = write_platemap(tmp_path / "platemap.csv", plates=("P2",))
    run_prepare("screen", tmp_path / "plates", tmp_path / "out", repeats=1, dataset_options={
        "images": str(tmp_path / "plates"), "platemap": str(platemap), "label_column": "Metadata_MoA"})
    assert {r["Metadata_Plate"] for r in read_index(tmp_path / "out" / "screen_index.csv")} == {"P2"}


def test_missing_field_is_one_line_and_skippable(tmp_path: Path) -> None:
    zarr = write_zarr_screen(tmp_path / "zarr", version="0.5")
    shutil.rmtree(zarr.images / "P1.ome.zarr" / "C" / "3" / "1")
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match=r"^plates/P1\.ome\.zarr/C/3/1: field 1 of well C03 \(plate P1\): image "
                                            r"listed in the well metadata is missing \(expected a multiscale image "
                                            r"group\)$"):
        run_prepare("screen", zarr.raw, out, dataset_options=zarr.options())
    _nothing_written(out)
    result = run_prepare("screen", zarr.raw, out, dataset_options=zarr.options(), repeats=1, skip_bad=True)
    assert [p for p, _ in result.bad] == ["plates/P1.ome.zarr/C/3/1"]
    assert read_index(out / "bad_inputs.csv")[0]["file"] == "plates/P1.ome.zarr/C/3/1"
    assert len(read_index(out / "screen_index.csv")) == 31


def test_missing_well_is_reported(tmp_path: Path) -> None:
    zarr = write_zarr_screen(tmp_path / "zarr", version="0.4", plates=("P1",), platemap_plates=None)
    shutil.rmtree(zarr.images / "P1.ome.zarr" / "E" / "3")
    with pytest.raises(BadInputError, match=r"^plates/P1\.ome\.zarr/E/3: well E03 \(plate P1\) listed in the plate "
                                            r"metadata is missing"):
        run_prepare("screen", zarr.raw, tmp_path / "out", dataset_options=zarr.options())
    _nothing_written(tmp_path / "out")


def test_plate_without_channel_names(tmp_path: Path) -> None:
    write_zarr_plate(tmp_path / "plates" / "P1.ome.zarr", "P1", labels=False)
    platemap = write_platemap(tmp_path / "platemap.csv", plates=None)
    options = {"images": str(tmp_path / "plates"), "platemap": str(platemap), "label_column": "Metadata_MoA"}
    with pytest.raises(DatasetLayoutError, match=rf"^{tmp_path}/plates/P1\.ome\.zarr/B/2/0: no channel names "
                                                 r"\(expected omero\.channels\[\]\.label in the image metadata\)$"):
        run_prepare("screen", tmp_path / "plates", tmp_path / "out", dataset_options=options)
    _nothing_written(tmp_path / "out")


def test_not_a_plate_and_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plates").mkdir()
    platemap = write_platemap(tmp_path / "platemap.csv")
    options = {"images": str(tmp_path / "plates"), "platemap": str(platemap), "label_column": "Metadata_MoA"}
    with pytest.raises(DatasetLayoutError, match=r"plates: no \*\.ome\.zarr plate in the folder"):
        run_prepare("screen", tmp_path / "plates", tmp_path / "out", dataset_options=options)
    write_zarr_plate(tmp_path / "plates" / "P1.ome.zarr", "P1")
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if the screen extra were not installed
    with pytest.raises(ConfigError, match=r"^reading OME-Zarr plates needs the 'screen' extra: "
                                          r"pip install 'mcnn\[screen\]'$"):
        run_prepare("screen", tmp_path / "plates", tmp_path / "out", dataset_options=options)
    _nothing_written(tmp_path / "out")
