"""synthesize (small) -> prepare -> record counts, labels and index rows, for every dataset.

The expected numbers follow from the published layouts and plate maps of the datasets (the
BBBC pages, https://bbbc.broadinstitute.org/BBBC013 to BBBC016 and BBBC021; the IICBU 2008
benchmark for HeLa and CHO, Shamir et al. 2008; the Human Protein Atlas for HPA), the paper's
class rules (Godinez et al. 2017) and the split arithmetic of mcnn.setsizes.holdout_count (per
class round(n / 10), halves up, at least 1); they are written out as literals with their derivation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.lookalikes import lookalike
from tests.support.prepared import check_prepared, read_index, run_prepare

TWO = {"repeat_000": None, "repeat_001": None}


def _cv(train: int, test: int) -> dict[str, tuple[int, int]]:
    return {name: (train, test) for name in TWO}


CASES = {
    # BBBC013: neutral = 8 negative-control wells (A-D col 1, E-H col 12) + 8 wells of the lowest concentration
    # (col 3); positive = 8 positive controls (A-D col 12, E-H col 1) + 8 of the highest (col 11): 16 + 16.
    # Test per class holdout_count(16) = 2 -> 28 / 4. Dose set: columns 3-11 x 8 rows = 72.
    "bbbc013": dict(channels=("GFP", "DNA"), hw=(80, 80), classes=2, per_class=[16, 16], splits=_cv(28, 4),
                    unlabelled={"dose": 72}),
    # BBBC014: two lowest (cols 11-12) and two highest (cols 1-2) TNF-alpha concentrations x 4 rows x 2 cell lines
    # = 16 + 16 -> 28 / 4; dose set: all 96 wells (no control wells).
    "bbbc014": dict(channels=("DAPI", "FITC"), hw=(64, 85), classes=2, per_class=[16, 16], splits=_cv(28, 4),
                    unlabelled={"dose": 96}),
    # BBBC015: 2 lowest + 2 highest concentrations x 3 replica rows x 1 field per well = 6 + 6;
    # holdout_count(6) = 1 -> 10 / 2. Dose set: 36 wells x 4 fields (no zero dose in the look-alike) = 144.
    "bbbc015": dict(channels=("GFP", "crimson"), hw=(96, 125), classes=2, per_class=[6, 6], splits=_cv(10, 2),
                    unlabelled={"dose": 144}),
    # BBBC016: 2 lowest + 2 highest doses x 2 replicates x 1 field = 4 + 4; holdout_count(4) = 1 -> 6 / 2.
    # Dose set: the look-alike's 12 doses are 0 + 11 > 0, x 2 wells x 3 fields = 66 fields with dose > 0.
    "bbbc016": dict(channels=("GFP", "DNA"), hw=(64, 64), classes=2, per_class=[4, 4], splits=_cv(6, 2),
                    unlabelled={"dose": 66}),
    # HeLa (IICBU 2008): 862 images, 10 classes of 98, 87, 91, 86, 87, 85, 84, 91, 73, 80; holdout_count per class
    # 10, 9, 9, 9, 9, 9 (8.5 rounds up), 8, 9, 7, 8 = 87 -> 775 / 87.
    "hela": dict(channels=("protein",), hw=(64, 64), classes=10, per_class=[98, 87, 91, 86, 87, 85, 84, 91, 73, 80],
                 splits=_cv(775, 87)),
    # CHO (IICBU 2008): 340 images: giantin 77, hoechst 69, lamp2 97, nop4 33, tubulin 64; test 8 + 7 + 10 + 3 + 6 = 34.
    "cho": dict(channels=("protein",), hw=(72, 96), classes=5, per_class=[77, 69, 97, 33, 64], splits=_cv(306, 34)),
    # HPA: 13 single-location classes; the look-alike lists 6 fields per class (+ 3 multi-location classes and
    # one repeated protein path, both left out): 78 -> per class holdout_count(6) = 1 -> 65 / 13.
    "hpa": dict(channels=("protein", "nucleus", "microtubules", "ER"), hw=(64, 64), classes=13, per_class=[6] * 13,
                splits=_cv(65, 13)),
}


@pytest.mark.parametrize("dataset", list(CASES))
def test_cv(dataset: str, tmp_path: Path) -> None:
    case = CASES[dataset]
    run_prepare(dataset, lookalike(dataset), tmp_path / "out", seed=7)
    check_prepared(tmp_path / "out", dataset, **case)  # type: ignore[arg-type]


def test_bbbc013_index_columns(tmp_path: Path) -> None:
    run_prepare("bbbc013", lookalike("bbbc013"), tmp_path / "out", repeats=1)
    rows = read_index(tmp_path / "out" / "dose_index.csv")
    assert list(rows[0]) == ["key", "label", "class_name", "Metadata_Plate", "Metadata_Well", "Metadata_Site",
                             "Metadata_Compound", "Metadata_Concentration", "Metadata_Replicate", "Metadata_Role",
                             "Image_FileName_GFP", "Image_FileName_DNA", "Metadata_Augmentation"]
    assert rows[0]["key"] == "00000000_BBBC013/A03/s1"  # dose set in plate order, not shuffled
    # wortmannin 2-fold series in nM; LY294002 (uM in the plate map) converted to nM
    wortmannin = sorted({float(r["Metadata_Concentration"]) for r in rows if r["Metadata_Compound"] == "wortmannin"})
    ly = sorted({float(r["Metadata_Concentration"]) for r in rows if r["Metadata_Compound"] == "LY294002"})
    assert wortmannin == [0.977, 1.95, 3.91, 7.81, 15.63, 31.25, 62.5, 125.0, 250.0]
    assert ly == [310.0, 630.0, 1250.0, 2500.0, 5000.0, 10000.0, 20000.0, 40000.0, 80000.0]
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert info["concentration_unit"] == "nM" and info["channels"] == ["GFP", "DNA"]
    assert any("BBBC013 classes" in c["topic"] for c in info["choices"])


def test_bbbc015_full_uses_every_field(tmp_path: Path) -> None:
    # full: all 4 fields of the 2 lowest + 2 highest concentrations x 3 wells = 24 + 24, no test set
    run_prepare("bbbc015", lookalike("bbbc015"), tmp_path / "out", protocol="full")
    check_prepared(tmp_path / "out", "bbbc015", ("GFP", "crimson"), (96, 125), 2, {"full": (48, 0)},
                   per_class=[24, 24], unlabelled={"dose": 144})


def test_bbbc021_loco(tmp_path: Path) -> None:
    # The look-alike holds the 3 Week1 taxol plates (22123/22141/22161) of the real image.csv. Annotated
    # treatments there (moa.csv): cytochalasin B 2, AZ-A 6, nocodazole 2, taxol 3 (0.3 from the D05 series
    # wells, 1, 3), each 3 wells x 4 sites = 12 fields -> 24 + 72 + 24 + 36 = 156 fields, 4 MoAs, 4 folds.
    run_prepare("bbbc021", lookalike("bbbc021"), tmp_path / "out", workers=2)
    check_prepared(tmp_path / "out", "bbbc021", ("DNA", "tubulin", "actin"), (64, 80), 4,
                   {"fold_az-a": (84, 72), "fold_cytochalasin-b": (132, 24), "fold_nocodazole": (132, 24),
                    "fold_taxol": (120, 36)}, per_class=[24, 72, 24, 36],
                   unlabelled={"controls": 72})  # the DMSO fields, 24 per plate: the reference of the mAP
    rows = read_index(tmp_path / "out" / "splits" / "fold_taxol" / "test_index.csv")
    assert {r["Metadata_Compound"] for r in rows} == {"taxol"}
    assert {r["Metadata_Concentration"] for r in rows} == {"0.3", "1", "3"}
    assert {r["Metadata_Well"] for r in rows if r["Metadata_Concentration"] == "0.3"} == {"D05"}
    assert {r["Metadata_Batch"] for r in rows} == {"Week1"} and {r["Metadata_MoA"] for r in rows} == {
        "Microtubule stabilizers"}
    norm = json.loads((tmp_path / "out" / "normalization.json").read_text())
    assert {p: v["images"] for p, v in norm["plates"].items()} == {  # 6 DMSO wells x 4 sites per plate
        "Week1_22123": 24, "Week1_22141": 24, "Week1_22161": 24}


def test_bbbc021_full(tmp_path: Path) -> None:
    # 13 classes would be 12 MoAs + DMSO; these plates have 4 MoAs + DMSO. Training: the 156 annotated fields
    # + DMSO up to the paper's 1684 images, capped by the 72 DMSO fields (3 plates x 6 wells x 4 sites) = 228.
    # Test: the labelled fields left out = the on-plate taxol controls, 3 plates x 6 wells x 4 sites = 72.
    # Screen: every field, 3 plates x 240 = 720.
    run_prepare("bbbc021", lookalike("bbbc021"), tmp_path / "out", protocol="full")
    check_prepared(tmp_path / "out", "bbbc021", ("DNA", "tubulin", "actin"), (64, 80), 5, {"full": (228, 72)},
                   per_class=[24, 72, 24, 36, 72], unlabelled={"screen": 720})
    rows = read_index(tmp_path / "out" / "screen_index.csv")
    assert rows[0]["key"] == "00000000_Week1_22123/B02/s1"
    assert rows[0]["Metadata_Compound"] == "DMSO" and rows[0]["Metadata_Role"] == "negative_control"


def test_d4_augmentation(tmp_path: Path) -> None:
    # bbbc016 cv: 6 training images x 8 orientations = 48 records; the test set is not augmented
    run_prepare("bbbc016", lookalike("bbbc016"), tmp_path / "out", repeats=1, augment="d4")
    out = tmp_path / "out"
    check_prepared(out, "bbbc016", ("GFP", "DNA"), (64, 64), 2, {"repeat_000": (48, 2)}, unlabelled={"dose": 66})
    rows = read_index(out / "splits" / "repeat_000" / "train_index.csv")
    by_field: dict[str, set[str]] = {}
    for r in rows:
        by_field.setdefault(r["Image_FileName_GFP"], set()).add(r["Metadata_Augmentation"])
    assert len(by_field) == 6 and all(len(v) == 8 for v in by_field.values())
    assert len((out / "splits" / "repeat_000" / "train.txt").read_text().splitlines()) == 6


def test_d2_augmentation_of_non_square_images(tmp_path: Path) -> None:
    run_prepare("bbbc014", lookalike("bbbc014"), tmp_path / "out", repeats=1, augment="d2")
    check_prepared(tmp_path / "out", "bbbc014", ("DAPI", "FITC"), (64, 85), 2, {"repeat_000": (28 * 4, 4)},
                   unlabelled={"dose": 96})


def test_resize_and_only(tmp_path: Path) -> None:
    run_prepare("hpa", lookalike("hpa"), tmp_path / "out", repeats=3, only=("repeat_002",), resize=(32, 48))
    check_prepared(tmp_path / "out", "hpa", ("protein", "nucleus", "microtubules", "ER"), (32, 48), 13,
                   {"repeat_002": (65, 13)})
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert info["source_height"] == 64 and any("resized" in n for n in info["notes"])
