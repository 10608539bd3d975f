"""BBBC021 against the real metadata CSVs (https://bbbc.broadinstitute.org/BBBC021), in both dialects."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from mcnn.datasets import Problems, get_dataset
from mcnn.datasets.bbbc021 import IMAGE_CSV, MOA_CSV, read_csv, read_moa
from mcnn.errors import BadInputError, DatasetLayoutError
from mcnn.prep.splits import loco_splits
from tests.support.lookalikes import DIALECTS, real_csv_dir


def _plan(dialect: str, protocol: str, **options: str):
    return get_dataset("bbbc021", options).plan(real_csv_dir(dialect), protocol, Problems(), check_files=False)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_csv_rows_in_both_dialects(dialect: str) -> None:
    rows = read_csv(real_csv_dir(dialect) / IMAGE_CSV, ("Image_Metadata_Plate_DAPI",))
    assert len(rows) == 13200  # 13,200 fields = 55 plates x 240
    assert len({r["Image_Metadata_Plate_DAPI"] for _, r in rows}) == 55
    assert Counter(r["Image_Metadata_Plate_DAPI"] for _, r in rows).most_common()[-1][1] == 240
    moa = read_moa(real_csv_dir(dialect) / MOA_CSV)
    assert len(moa) == 104  # 103 treatments + DMSO
    assert ("PP-2", 3.0) in moa and ("DMSO", 0.0) in moa  # "3" vs "3.000000" joined as numbers


def test_both_dialects_give_the_same_plan() -> None:
    a, b = (_plan(d, "full") for d in DIALECTS)
    assert [f.name for f in a.unlabelled["screen"]] == [f.name for f in b.unlabelled["screen"]]
    assert [dict(f.meta) for f in a.unlabelled["screen"]] == [dict(f.meta) for f in b.unlabelled["screen"]]
    assert [(x.field.name, x.label) for x in a.labelled] == [(x.field.name, x.label) for x in b.labelled]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_loco_protocol(dialect: str) -> None:
    plan = _plan(dialect, "loco")
    # §5.4: 12 MoAs, 38 compounds, 103 treatments
    assert len(plan.classes) == 12
    assert plan.classes[0] == "Actin disruptors" and plan.classes[-1] == "Protein synthesis"
    treatments = {(x.field.meta["Metadata_Compound"], float(x.field.meta["Metadata_Concentration"]))
                  for x in plan.labelled}
    assert len(treatments) == 103
    assert len({x.group for x in plan.labelled}) == 38
    # 95 treatments x 12 fields + 7 x 8 = 1196, plus taxol 0.3 from its dilution-series wells only
    # (D05 on the three Week1 taxol plates: 3 wells x 4 sites = 12) = 1208
    assert len(plan.labelled) == 1208
    # treatments per MoA (§5.4 table): 5, 12, 6, 9, 8, 12, 8, 5, 14, 9, 7, 8
    treatment_label = {(x.field.meta["Metadata_Compound"], x.field.meta["Metadata_Concentration"]): x.label
                       for x in plan.labelled}
    per_moa = Counter(plan.classes[label] for label in treatment_label.values())
    assert [per_moa[m] for m in plan.classes] == [5, 12, 6, 9, 8, 12, 8, 5, 14, 9, 7, 8]
    # 1,320 DMSO fields on 55 plates: 6 wells x 4 sites on every plate
    assert len(plan.controls) == 1320
    per_plate = Counter(f.plate for f in plan.controls)
    assert len(per_plate) == 55 and set(per_plate.values()) == {24}
    assert {f.meta["Metadata_Well"] for f in plan.controls} == {"B02", "C02", "D02", "E11", "F11", "G11"}
    folds = loco_splits(plan.labelled)
    assert len(folds) == 38
    assert all(len(f.train) + len(f.test) == 1208 for f in folds)
    taxol = next(f for f in folds if f.name == "fold_taxol")
    assert len(taxol.test) == 36  # taxol 0.3 (series), 1 and 3 uM: 3 treatments x 12 fields
    assert {f.name for f in folds} >= {"fold_mevinolin-lovastatin", "fold_pp-2", "fold_proteasome-inhibitor-i"}


def test_taxol_all_labels_every_taxol_control() -> None:
    plan = _plan("crlf_unquoted", "loco", taxol="all")
    assert len(plan.labelled) == 2528  # §5.5: annotated non-DMSO images incl. the 1,332 taxol 0.3 images


def test_full_protocol() -> None:
    plan = _plan("quoted_cr", "full")
    assert plan.classes[-1] == "DMSO" and len(plan.classes) == 13  # 12 MoAs + DMSO (§3.3)
    assert len(plan.labelled) == 1684  # the paper's 13-class training set size: 1208 annotated + 476 DMSO
    assert sum(1 for x in plan.labelled if plan.classes[x.label] == "DMSO") == 1684 - 1208
    # the rest of the labelled fields: 1,320 on-plate taxol controls + 1,320 - 476 = 844 DMSO
    assert len(plan.full_test) == 1320 + 844
    assert len(plan.unlabelled["screen"]) == 13200  # every field, for screen-wide prediction
    plates = Counter(x.field.plate for x in plan.labelled if plan.classes[x.label] == "DMSO")
    assert len(plates) == 55 and max(plates.values()) - min(plates.values()) <= 1  # spread over all plates


def test_unknown_compound_in_moa_csv(tmp_path: Path) -> None:
    src = real_csv_dir("quoted_cr")
    shutil.copy(src / IMAGE_CSV, tmp_path / IMAGE_CSV)
    text = (src / MOA_CSV).read_bytes() + b"\rnotacompound,3,Epithelial"
    (tmp_path / MOA_CSV).write_bytes(text)
    with pytest.raises(BadInputError, match=r"BBBC021_v1_moa.csv line 106: unknown compound: treatment notacompound 3"):
        get_dataset("bbbc021").plan(tmp_path, "loco", Problems(), check_files=False)
    problems = Problems(skip=True)
    plan = get_dataset("bbbc021").plan(tmp_path, "loco", problems, check_files=False)
    assert len(problems.items) == 1 and len(plan.labelled) == 1208


def test_missing_column(tmp_path: Path) -> None:
    (tmp_path / IMAGE_CSV).write_text("TableNumber,ImageNumber\n1,2\n")
    shutil.copy(real_csv_dir() / MOA_CSV, tmp_path / MOA_CSV)
    with pytest.raises(DatasetLayoutError, match=r"BBBC021_v1_image.csv: columns Image_FileName_DAPI, .* missing"):
        get_dataset("bbbc021").plan(tmp_path, "loco", Problems(), check_files=False)
