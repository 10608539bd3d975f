"""Plate/well helpers, plate maps, image reading errors and dataset options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.datasets import Problems, get_dataset
from mcnn.datasets.base import format_number, lowest_highest
from mcnn.datasets.bbbc014 import parse_token
from mcnn.datasets.hpa import PathResolver, canonical
from mcnn.datasets.imageio import read_plane, write_tiff
from mcnn.datasets.plates import normalise_well, ordinal, parse_well, read_platemap, well_name
from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError
from tests.support.lookalikes import copy_raw


def test_wells() -> None:
    assert well_name(0, 1) == "A01" and well_name(14, 24) == "O24"
    assert parse_well("b2") == (1, 2) and normalise_well("G11") == "G11"
    assert ordinal(0, 1) == 1 and ordinal(7, 12) == 96 and ordinal(1, 3) == 15
    with pytest.raises(ValueError, match="not a well"):
        parse_well("Z99x")


def test_numbers() -> None:
    assert format_number(0.003) == "0.003" and format_number(3.0) == "3" and format_number(1e-7) == "0.0000001"
    assert parse_token("10^-7.5", "x") == pytest.approx(10 ** -7.5)
    with pytest.raises(DatasetLayoutError, match="not of the form 10"):
        parse_token("1e-7", "map.txt")
    assert lowest_highest([3, 1, 2, 5, 4, 1]) == ({1.0, 2.0}, {4.0, 5.0})


def test_platemap_errors(tmp_path: Path) -> None:
    p = tmp_path / "map.txt"
    p.write_text("DESCRIPTION x\n1\n2\n")
    assert read_platemap(p, 2, header_prefix="DESCRIPTION") == ["1", "2"]
    with pytest.raises(DatasetLayoutError, match=r"map.txt: 2 values after the header line, expected 96"):
        read_platemap(p, 96)
    p.write_text("Dose\n1\nx\n")
    with pytest.raises(DatasetLayoutError, match=r"'x' is not a number"):
        read_platemap(p, 2)


def test_read_plane_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"^a.tif: missing file$"):
        read_plane(tmp_path / "a.tif", label="a.tif")
    write_tiff(tmp_path / "b.tif", np.zeros((8, 8), np.uint16))
    data = (tmp_path / "b.tif").read_bytes()
    (tmp_path / "b.tif").write_bytes(data[:60])
    with pytest.raises(BadInputError, match=r"unreadable or truncated image"):
        read_plane(tmp_path / "b.tif")


def test_hpa_names_and_paths(tmp_path: Path) -> None:
    assert canonical("Endoplasmic reticulum") == "ER" and canonical("Golgi apparatus") == "Golgi"
    assert canonical("Cytoplasm,Nuclei") is None
    (tmp_path / "images/HPA/images/IFconfocal/x").mkdir(parents=True)
    (tmp_path / "images/HPA/images/IFconfocal/x/a_green.tif").write_bytes(b"")
    r = PathResolver(tmp_path)
    found = r.resolve("/share/images/HPA/images/IFconfocal/x/a_green.tif")
    assert found == "images/HPA/images/IFconfocal/x/a_green.tif"
    assert r.resolve("/share/images/HPA/images/IFconfocal/x/b_green.tif") is None


def test_unknown_options() -> None:
    with pytest.raises(ConfigError, match=r"--option foo: not an option of bbbc013 \(valid: ly294002_unit, col2\)"):
        get_dataset("bbbc013", {"foo": "1"})
    with pytest.raises(ConfigError, match=r"--option taxol=some: choose from series, all"):
        get_dataset("bbbc021", {"taxol": "some"})
    with pytest.raises(ConfigError, match="unknown dataset 'bbbc099'"):
        get_dataset("bbbc099")


def test_bbbc013_options() -> None:
    from tests.support.lookalikes import lookalike

    raw = lookalike("bbbc013")
    plan = get_dataset("bbbc013", {"col2": "neutral"}).plan(raw, "cv", Problems())
    # column 2 (8 wells, dose 0) joins the 16 neutral images
    assert sum(1 for x in plan.labelled if x.label == 0) == 24
    plan = get_dataset("bbbc013", {"ly294002_unit": "nM"}).plan(raw, "cv", Problems())
    ly = [f for f in plan.unlabelled["dose"] if f.meta["Metadata_Compound"] == "LY294002"]
    assert sorted({float(f.meta["Metadata_Concentration"]) for f in ly})[-1] == 80.0  # not converted


def test_bbbc014_channel_option() -> None:
    from tests.support.lookalikes import lookalike

    ds = get_dataset("bbbc014", {"channel1": "FITC"})
    assert ds.channels == ("FITC", "DAPI")
    plan = ds.plan(lookalike("bbbc014"), "cv", Problems())
    assert plan.labelled[0].field.files[0].split("/")[1].startswith("Channel 1-")


def test_bbbc015_per_field_platemap(tmp_path: Path) -> None:
    raw = copy_raw("bbbc015", tmp_path / "raw", copy=("BBBC015_v1_platemap.txt",))
    values = (raw / "BBBC015_v1_platemap.txt").read_text().split()[-36:]
    per_field = [v for v in values for _ in range(4)]  # one value per image field, sorted by well then field
    (raw / "BBBC015_v1_platemap.txt").write_text("Concentration\n" + "\n".join(per_field) + "\n")
    plan = get_dataset("bbbc015").plan(raw, "cv", Problems())
    assert len(plan.labelled) == 12 and len(plan.unlabelled["dose"]) == 144
    plan = get_dataset("bbbc015", {"cv_field": "all"}).plan(raw, "cv", Problems())
    assert len(plan.labelled) == 48  # 4 concentrations x 3 wells x 4 fields


def test_missing_folder_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"BBBC016_v1_images: folder missing, expected the unpacked"):
        get_dataset("bbbc016").plan(tmp_path, "cv", Problems())
    with pytest.raises(DatasetLayoutError, match=r"hela: folder missing, expected the unpacked hela.tar.gz"):
        get_dataset("hela").plan(tmp_path, "cv", Problems())
