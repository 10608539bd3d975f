"""Your own screen (dataset ``screen``): a LoadData image table + plate map prepared end to end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mcnn.datasets.base import Field, Labelled
from mcnn.errors import ConfigError
from mcnn.prep import load_prepared
from mcnn.prep.splits import cv_split
from tests.support import run_script
from tests.support.prepared import check_prepared, read_index, read_lmdb, run_prepare
from tests.support.screens import (
    CHANNELS,
    WELLS,
    assert_same_records,
    field_pixels,
    platemap_rows,
    write_rows,
    write_tiff_screen,
)

CLASSES = ["control", "stabiliser", "destabiliser"]


def _expected_u8(plate: str, well: str, site: int) -> np.ndarray:
    """The 8-bit image of a field under the default mapping, computed here from the raw pixels:
    z = (x - mean) / sd of all pixels of the plate's negative-control fields (per channel), z in
    [-2, 10] mapped onto 0..255."""
    controls = [field_pixels(plate, w[0], s).astype(np.float64) for w in WELLS if w[3] == "negative_control"
                for s in (1, 2)]
    stack = np.stack(controls)  # fields x C x H x W
    mean = stack.mean(axis=(0, 2, 3))[:, None, None]
    sd = stack.std(axis=(0, 2, 3))[:, None, None]
    z = (field_pixels(plate, well, site).astype(np.float64) - mean) / sd
    return np.clip(np.rint((z + 2) / 12 * 255), 0, 255)


def test_loaddata_screen_end_to_end(tmp_path: Path) -> None:
    screen = write_tiff_screen(tmp_path / "raw")
    out = tmp_path / "out"
    result = run_prepare("screen", screen.raw, out, dataset_options=screen.options())
    # 4 wells per class (2 per plate), split=well holds out holdout_count(4) = 1 well = 2 fields per class
    check_prepared(out, "screen", CHANNELS, (32, 32), 3, {"repeat_000": (18, 6), "repeat_001": (18, 6)},
                   per_class=[8, 8, 8], unlabelled={"screen": 32})
    assert result.bad == []
    assert (out / "labels.txt").read_text().splitlines() == CLASSES  # first appearance in the plate map
    info = json.loads((out / "dataset.json").read_text())
    assert info["concentration_unit"] == "uM" and info["protocol"] == "cv"
    assert info["intensity"]["scope"] == "plate-dmso" and info["intensity"]["stat"] == "meanstd"
    assert info["counts"]["fields"] == 32 and info["counts"]["wells"] == 16 and info["counts"]["plates"] == 2
    assert info["counts"]["training_wells_per_class"] == {"control": 4, "stabiliser": 4, "destabiliser": 4}
    rows = read_index(out / "screen_index.csv")
    assert [r["key"].split("_", 1)[1] for r in rows] == screen.fields  # every field, plate/well/site order
    assert list(rows[0])[:10] == ["key", "label", "class_name", "Metadata_Plate", "Metadata_Well", "Metadata_Site",
                                  "Metadata_Compound", "Metadata_Concentration", "Metadata_Role", "Metadata_MoA"]
    d03 = next(r for r in rows if r["key"].endswith("P2/D03/s2"))
    assert (d03["Metadata_Compound"], d03["Metadata_Concentration"], d03["Metadata_MoA"]) == \
        ("vinblastine", "0.03", "destabiliser")
    assert d03["Image_FileName_Actin"] == "images/P2/P2_D03_s2_Actin.tif"
    records = {k.split("_", 1)[1]: im for k, _, im in read_lmdb(out / "screen_lmdb")}
    for name in ("P1/B02/s1", "P2/C03/s2", "P1/E03/s1"):
        plate, well, site = name.split("/")
        diff = records[name].astype(np.int64) - _expected_u8(plate, well, int(site[1:]))
        assert np.abs(diff).max() <= 1 and np.count_nonzero(diff) <= 3  # float32 rounding at .5 only
    for split in ("repeat_000", "repeat_001"):
        sides = {side: {r["Metadata_Plate"] + r["Metadata_Well"] for r in
                        read_index(out / "splits" / split / f"{side}_index.csv")} for side in ("train", "test")}
        assert not sides["train"] & sides["test"]  # split=well: every well on one side
        assert len(sides["test"]) == 3


@pytest.mark.parametrize(("split", "sizes"), [("plate", (12, 12)), ("field", (21, 3))])
def test_split_plate_and_field(tmp_path: Path, split: str, sizes: tuple[int, int]) -> None:
    screen = write_tiff_screen(tmp_path / "raw")
    out = tmp_path / "out"
    run_prepare("screen", screen.raw, out, dataset_options=screen.options(split=split), repeats=1)
    ds = load_prepared(out)
    assert (ds.splits[0].train_size, ds.splits[0].test_size) == sizes
    test = read_index(ds.splits[0].paths.test_index)
    if split == "plate":  # one of the two plates held out whole
        assert len({r["Metadata_Plate"] for r in test}) == 1
    else:  # one field per class
        assert Counter(r["class_name"] for r in test) == {"control": 1, "stabiliser": 1, "destabiliser": 1}


def test_split_compound_gives_loco_folds(tmp_path: Path) -> None:
    screen = write_tiff_screen(tmp_path / "raw")
    out = tmp_path / "out"
    run_prepare("screen", screen.raw, out, dataset_options=screen.options(split="compound"))
    ds = load_prepared(out)
    assert ds.protocol == "loco"
    assert [(s.name, s.train_size, s.test_size) for s in ds.splits] == [
        ("fold_docetaxel", 20, 4), ("fold_nocodazole", 20, 4), ("fold_taxol", 20, 4), ("fold_vinblastine", 20, 4)]
    for s in ds.splits:
        test = {r["Metadata_Compound"] for r in read_index(s.paths.test_index)}
        train = Counter(r["Metadata_Compound"] for r in read_index(s.paths.train_index))
        assert test == {s.name.removeprefix("fold_")} and train["DMSO"] == 8  # the controls always train
    with pytest.raises(ConfigError, match=r"^--protocol cv: screen with --split compound uses --protocol loco"):
        run_prepare("screen", screen.raw, tmp_path / "o2", dataset_options=screen.options(split="compound"),
                    protocol="cv")


def test_multichannel_tiff_with_frames_gives_the_same_records(tmp_path: Path) -> None:
    single = write_tiff_screen(tmp_path / "single")
    multi = write_tiff_screen(tmp_path / "multi", multichannel=True)
    with tifffile.TiffFile(multi.raw / "images" / "P1" / "P1_B02_s1.ome.tif") as tif:
        assert len(tif.pages) == 3  # pages in reverse channel order: Frame_DNA = 2
    run_prepare("screen", single.raw, tmp_path / "a", dataset_options=single.options(), repeats=1)
    run_prepare("screen", multi.raw, tmp_path / "b", dataset_options=multi.options(), repeats=1)
    assert assert_same_records(tmp_path / "a", tmp_path / "b") == 32 + 24
    row = read_index(tmp_path / "b" / "screen_index.csv")[0]
    assert row["Image_FileName_DNA"] == row["Image_FileName_Tubulin"] == "images/P1/P1_B02_s1.ome.tif"


def test_plate_map_for_every_plate_tsv_wells_and_selector_options(tmp_path: Path) -> None:
    """A TSV plate map without Metadata_Plate, wells spelled b2/B3, no role column: the negative
    controls from --negative-control, the class order from --classes, training restricted by
    --train-where; the same records as the default map with the same classes."""
    screen = write_tiff_screen(tmp_path / "raw")
    rows = platemap_rows(plates=None)
    for r in rows:
        r["Metadata_Well"] = r["Metadata_Well"][0].lower() + str(int(r["Metadata_Well"][1:]))
        r["MoA"] = r.pop("Metadata_MoA")
    tsv = write_rows(tmp_path / "raw" / "map.tsv", rows, ["Metadata_Well", "Metadata_Compound",
                                                          "Metadata_Concentration", "MoA"], delimiter="\t")
    options = screen.options(platemap=str(tsv), label_column="MoA", negative_control="Metadata_Compound=DMSO",
                             classes="destabiliser, stabiliser,control", control_class="control",
                             train_where="Compound=DMSO|taxol|nocodazole")
    out = tmp_path / "out"
    run_prepare("screen", screen.raw, out, dataset_options=options, repeats=1)
    assert (out / "labels.txt").read_text().splitlines() == ["destabiliser", "stabiliser", "control"]
    info = json.loads((out / "dataset.json").read_text())
    assert info["labelled_per_class"] == {"destabiliser": 4, "stabiliser": 4, "control": 8}
    assert info["options"]["classes"] == "destabiliser,stabiliser,control"
    index = read_index(out / "screen_index.csv")
    assert [r["Metadata_Well"] for r in index[:4]] == ["B02", "B02", "B03", "B03"]
    assert Counter(r["Metadata_Role"] for r in index) == {"negative_control": 8, "treatment": 24}
    assert "Metadata_MoA" in index[0]  # the MoA column, prefixed
    ref = tmp_path / "ref"
    run_prepare("screen", screen.raw, ref, dataset_options=screen.options(), repeats=1)
    a = {k.split("_", 1)[1]: im for k, _, im in read_lmdb(out / "screen_lmdb")}
    b = {k.split("_", 1)[1]: im for k, _, im in read_lmdb(ref / "screen_lmdb")}
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_config_round_trip_and_refused_rerun(tmp_path: Path) -> None:
    screen = write_tiff_screen(tmp_path / "raw")
    out = tmp_path / "out"
    res = run_script("data_prep/prepare.py", "screen", *screen.flags("--split", "field"), "--out", str(out),
                     "--repeats", "1", "--seed", "3", "--workers", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    saved = json.loads((out / "screen.json").read_text())
    assert saved["raw"] == str(screen.raw) and saved["images"] == str(screen.images) and saved["split"] == "field"
    assert (saved["repeats"], saved["seed"], saved["norm_scope"], saved["protocol"]) == (1, 3, "plate-dmso", "cv")
    # the saved description is a config: the same run, so nothing to rebuild in the same --out
    res = run_script("data_prep/prepare.py", "screen", "--config", str(out / "screen.json"), "--out", str(out),
                     "--quiet")
    assert res.returncode == 0, res.stderr
    assert "(0 LMDBs written, 2 already complete)" in res.stderr
    # a TOML config with paths relative to its folder, into a new folder: the same records
    (tmp_path / "raw" / "screen.toml").write_text(
        'images = "load_data.csv"\nplatemap = "platemap.csv"\nlabel_column = "Metadata_MoA"\nsplit = "field"\n'
        "repeats = 1\nseed = 3\n")
    res = run_script("data_prep/prepare.py", "screen", "--config", str(tmp_path / "raw" / "screen.toml"), "--out",
                     str(tmp_path / "again"), "--workers", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    assert assert_same_records(out, tmp_path / "again") == 32 + 24
    # a flag overrides the file; another option into the same --out is refused
    res = run_script("data_prep/prepare.py", "screen", "--config", str(out / "screen.json"), "--split", "well",
                     "--out", str(out), "--quiet")
    assert res.returncode == 2
    assert res.stderr.startswith(f"prepare: error: {out}: prepared earlier with other options (option split: ")
    assert len(res.stderr.splitlines()) == 1 and "use another --out or add --force" in res.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["bbbc016", "--raw", "RAW", "--images", "x.csv"], "prepare: error: --images: an option of dataset screen, "
                                                       "not bbbc016"),
    (["bbbc016", "--config", "c.json"], "prepare: error: --config: a screen description, not for bbbc016"),
    (["bbbc021"], "prepare: error: --raw is required for bbbc021"),
    (["screen"], "prepare: error: screen: --images is required"),
    (["screen", "--config", "nope.toml"], "prepare: error: --config "),
    (["screen", "--images", "a.csv", "--platemap", "p.csv", "--label-column", "x", "--negative-control", "DMSO"],
     "prepare: error: --negative-control 'DMSO': expected COLUMN=VALUE[|VALUE...]"),
])
def test_screen_flag_errors(tmp_path: Path, args: list[str], message: str) -> None:
    res = run_script("data_prep/prepare.py", *args, "--out", str(tmp_path / "o"), "--quiet", cwd=tmp_path)
    assert res.returncode == 2
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith(message), res.stderr


def test_bad_config_keys(tmp_path: Path) -> None:
    from mcnn.datasets.screenspec import load_config

    (tmp_path / "c.json").write_text(json.dumps({"images": "a.csv", "repeats": "5"}))
    with pytest.raises(ConfigError, match=r"c\.json: key repeats: expected int, got '5'$"):
        load_config(tmp_path / "c.json")
    (tmp_path / "c.json").write_text(json.dumps({"image": "a.csv"}))
    with pytest.raises(ConfigError, match=r"c\.json: unknown key 'image' \(valid: dataset, images, platemap, "):
        load_config(tmp_path / "c.json")
    (tmp_path / "c.json").write_text(json.dumps({"dataset": "screen", "images": "sub/a.csv", "classes": ["a", "b"],
                                                 "range": None}))
    assert load_config(tmp_path / "c.json") == {"images": str(tmp_path / "sub" / "a.csv"), "classes": "a,b"}


def _items(units: dict[str, tuple[int, int]]) -> list[Labelled]:
    """Labelled fields: unit -> (label, fields)."""
    return [Labelled(Field(f"{u}/s{i}", (), {}), label, unit=u) for u, (label, n) in units.items() for i in range(n)]


def test_cv_split_holds_out_whole_units_and_is_unchanged_without_them() -> None:
    items = [Labelled(Field(f"c{label}/{i:03d}", (), {}), label) for label, n in enumerate([5, 3, 12])
             for i in range(n)]
    s = cv_split(items, 1, seed=7, fraction=0.25)
    # the draws of the per-image split before units existed (same seed, same generator)
    assert [x.field.name for x in s.test] == ["c0/004", "c1/001", "c2/010", "c2/000", "c2/004"]
    wells = _items({f"P1/A{i:02d}": (i % 2, 3) for i in range(1, 21)})
    s = cv_split(wells, 0, seed=1)
    test_units = {x.unit for x in s.test}
    assert len(test_units) == 2 and len(s.test) == 6  # holdout_count(10 wells) = 1 per class, 3 fields each
    assert not test_units & {x.unit for x in s.train}
    assert {x.label for x in s.test} == {0, 1}


def test_frames_of_multipage_ome_and_multisample_tiffs(tmp_path: Path) -> None:
    from mcnn.datasets.loaddata import read_frame, tiff_header
    from mcnn.errors import BadInputError

    planes = np.arange(3 * 8 * 10, dtype=np.uint16).reshape(3, 8, 10)
    tifffile.imwrite(tmp_path / "pages.tif", planes, photometric="minisblack")
    tifffile.imwrite(tmp_path / "cyx.ome.tif", planes, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "samples.tif", planes, photometric="minisblack", planarconfig="separate")
    for name in ("pages.tif", "cyx.ome.tif", "samples.tif"):
        for frame in (0, 2):
            np.testing.assert_array_equal(read_frame(tmp_path / name, frame, name), planes[frame])
            assert tiff_header(tmp_path / name, frame, name) == ((8, 10), "uint16")
        with pytest.raises(BadInputError, match=rf"^{name}: plane 3 \(Frame_ column\) requested, the file has 3 "
                                                r"plane\(s\)$"):
            read_frame(tmp_path / name, 3, name)
