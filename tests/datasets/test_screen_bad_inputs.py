"""Bad input of your own screen: one line naming file, line and column, and nothing written.

Every case damages the default screen of :mod:`tests.support.screens` (2 plates x 8 wells x 2 sites;
``load_data.csv`` lists P1's fields on lines 2-17 in well/site order, P2's on 18-33; ``platemap.csv``
lists P1's wells on lines 2-9, P2's on 10-17).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError
from tests.support import run_script
from tests.support.prepared import read_index, run_prepare
from tests.support.screens import PLATEMAP_COLUMNS, ScreenFiles, read_rows, rewrite_rows, write_tiff_screen

Damage = Callable[[Path], dict[str, str]]


def _rows_where(plate: str, well: str, site: str | None = None) -> Callable[[dict[str, str]], bool]:
    return lambda r: r["Metadata_Plate"] == plate and r["Metadata_Well"] == well and (
        site is None or r["Metadata_Site"] == site)


def _set_map(plate: str, well: str, column: str, value: str) -> Damage:
    def damage(raw: Path) -> dict[str, str]:
        def change(rows: list[dict[str, str]]) -> None:
            for r in filter(_rows_where(plate, well), rows):
                r[column] = value
        rewrite_rows(raw / "platemap.csv", change)
        return {}
    return damage


def _missing_file(raw: Path) -> dict[str, str]:
    (raw / "images" / "P1" / "P1_C03_s2_Actin.tif").unlink()
    return {}


def _unreadable_file(raw: Path) -> dict[str, str]:
    (raw / "images" / "P2" / "P2_B02_s1_DNA.tif").write_bytes(b"II*\x00 not a TIFF")
    return {}


def _truncated_file(raw: Path) -> dict[str, str]:
    path = raw / "images" / "P2" / "P2_E03_s2_Tubulin.tif"  # an unlabelled field, read last
    path.write_bytes(path.read_bytes()[:1200])
    return {}


def _well_not_in_map(raw: Path) -> dict[str, str]:
    rewrite_rows(raw / "platemap.csv", lambda rows: [r for r in rows if not _rows_where("P1", "E03")(r)])
    return {}


def _map_well_without_field(raw: Path) -> dict[str, str]:
    extra = {"Metadata_Plate": "P2", "Metadata_Well": "F05", "Metadata_Compound": "cpdB",
             "Metadata_Concentration": "1", "Metadata_Role": "treatment", "Metadata_MoA": ""}
    rewrite_rows(raw / "platemap.csv", lambda rows: [*rows, extra])
    return {}


def _no_site_column(raw: Path) -> dict[str, str]:
    header = [c for c in read_rows(raw / "load_data.csv")[0] if c != "Metadata_Site"]
    rewrite_rows(raw / "load_data.csv", lambda rows: None, columns=header)
    return {}


def _replace_tiff(name: str, plane: np.ndarray) -> Damage:
    def damage(raw: Path) -> dict[str, str]:
        tifffile.imwrite(raw / "images" / "P1" / name, plane, photometric="minisblack")
        return {}
    return damage


def _small_field(raw: Path) -> dict[str, str]:
    for channel in ("DNA", "Actin", "Tubulin"):
        _replace_tiff(f"P1_E03_s2_{channel}.tif", np.ones((16, 16), np.uint16))(raw)
    return {}


def _duplicate_row(raw: Path) -> dict[str, str]:
    rewrite_rows(raw / "load_data.csv", lambda rows: [*rows, dict(rows[3])])
    return {}


def _bad_well_name(raw: Path) -> dict[str, str]:
    def change(rows: list[dict[str, str]]) -> None:
        rows[6]["Metadata_Well"] = "Z99"
    rewrite_rows(raw / "load_data.csv", change)
    return {}


def _no_controls_on_p2(raw: Path) -> dict[str, str]:
    _set_map("P2", "B02", "Metadata_Role", "treatment")(raw)
    _set_map("P2", "B03", "Metadata_Role", "treatment")(raw)
    return {}


def _options(**opts: str) -> Damage:
    return lambda raw: opts


TABLE, MAP = "{raw}/load_data.csv", "{raw}/platemap.csv"
CASES: list[tuple[str, Damage, type[Exception], str]] = [
    ("missing file", _missing_file, BadInputError, "images/P1/P1_C03_s2_Actin.tif: missing file"),
    ("unreadable file", _unreadable_file, BadInputError,
     "images/P2/P2_B02_s1_DNA.tif: unreadable or truncated image ("),
    ("truncated file", _truncated_file, BadInputError,
     "images/P2/P2_E03_s2_Tubulin.tif: unreadable or truncated image (pixel data ends at byte 2304, the file has "
     "1200)"),
    ("well not in the plate map", _well_not_in_map, BadInputError,
     f"{TABLE} line 16: column Metadata_Well: well E03 of plate P1 is not in the plate map {MAP}"),
    ("plate-map well without a field", _map_well_without_field, BadInputError,
     f"{MAP} line 18: column Metadata_Well: well F05 of plate P2 has no field in {TABLE}"),
    ("unknown label column", _options(label_column="Target"), DatasetLayoutError,
     f"{MAP}: line 1: no column 'Target' (--label-column; has {', '.join(PLATEMAP_COLUMNS)})"),
    ("unknown selector column", _options(negative_control="Treatment=DMSO"), DatasetLayoutError,
     f"{MAP}: line 1: no column 'Treatment' (--negative-control; has {', '.join(PLATEMAP_COLUMNS)})"),
    ("unknown channel", _options(channels="DNA,GFP"), ConfigError,
     f"--channels DNA,GFP: no channel 'GFP' in {TABLE} (has DNA, Actin, Tubulin)"),
    ("image table without Metadata_Site", _no_site_column, DatasetLayoutError,
     f"{TABLE}: line 1: column Metadata_Site missing (has Metadata_Plate, Metadata_Well, FileName_DNA, "),
    ("channels of different sizes", _replace_tiff("P1_B03_s1_Actin.tif", np.zeros((16, 16), np.uint16)),
     BadInputError, f"images/P1/P1_B03_s1_Actin.tif: field P1/B03/s1 ({TABLE} line 4): channel Actin is 16x16 (WxH) "
                    "16-bit, channel DNA is 32x32 (WxH) 16-bit; the channels of a field must have one size"),
    ("channels of different bit depths", _replace_tiff("P1_B03_s1_Tubulin.tif", np.ones((32, 32), np.uint8)),
     BadInputError, f"images/P1/P1_B03_s1_Tubulin.tif: field P1/B03/s1 ({TABLE} line 4): channel Tubulin is 32x32 "
                    "(WxH) 8-bit, channel DNA is 32x32 (WxH) 16-bit; the channels of a field must have one bit depth"),
    ("a field of another size", _small_field, BadInputError,
     f"images/P1/P1_E03_s2_DNA.tif: field P1/E03/s2 ({TABLE} line 17) is 16x16 (WxH) 16-bit, the first field is "
     "32x32 (WxH) 16-bit; every field of a screen must have one size and bit depth"),
    ("duplicate plate, well, site", _duplicate_row, DatasetLayoutError,
     f"{TABLE} line 34: columns Metadata_Plate, Metadata_Well, Metadata_Site: field P1/B03/s2 listed twice (first "
     f"at {TABLE} line 5)"),
    ("not a well", _bad_well_name, DatasetLayoutError,
     f"{TABLE}: line 8: column Metadata_Well: 'Z99' is not a well (expected e.g. A01, A1 or a01)"),
    ("one class", _options(train_where="Metadata_MoA=stabiliser"), DatasetLayoutError,
     f"{MAP}: column Metadata_MoA: one class ('stabiliser') among the training wells, at least 2 needed "
     "(negative controls with a blank label train 'control')"),
    ("negative control matching no row", _options(negative_control="Metadata_Compound=PBS"), DatasetLayoutError,
     f"{MAP}: column Metadata_Compound: --negative-control Metadata_Compound=PBS matches no row (values of "
     "Metadata_Compound: DMSO, cpdA, docetaxel, nocodazole, taxol, vinblastine)"),
    ("negative concentration", _set_map("P1", "C03", "Metadata_Concentration", "-0.3"), DatasetLayoutError,
     f"{MAP}: line 5: column Metadata_Concentration: '-0.3' is negative (expected a concentration >= 0)"),
    ("non-numeric concentration", _set_map("P2", "D03", "Metadata_Concentration", "30 nM"), DatasetLayoutError,
     f"{MAP}: line 15: column Metadata_Concentration: '30 nM' is not a number (expected a concentration >= 0)"),
    ("unknown role", _set_map("P1", "B02", "Metadata_Role", "control"), DatasetLayoutError,
     f"{MAP}: line 2: column Metadata_Role: 'control', expected one of negative_control, positive_control, "
     "treatment (or blank)"),
    ("class not in --classes", _options(classes="control,stabiliser"), DatasetLayoutError,
     f"{MAP}: line 6: column Metadata_MoA: class 'destabiliser' is not in --classes control,stabiliser"),
    ("a plate without negative controls", _no_controls_on_p2, BadInputError,
     "plate P2: no DMSO (negative-control) wells in the metadata; per-plate normalisation (--norm-scope plate-dmso) "
     "needs them"),
]


@pytest.fixture
def screen(tmp_path: Path) -> ScreenFiles:
    """The default screen as TIFFs + LoadData CSV + plate map."""
    return write_tiff_screen(tmp_path / "raw")


def _nothing_written(out: Path) -> None:
    assert not list(out.rglob("*_lmdb")) and not list(out.rglob("*_index.csv"))
    assert not (out / "dataset.json").exists() and not (out / "screen.json").exists()


@pytest.mark.parametrize(("damage", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_line_and_nothing_written(screen: ScreenFiles, tmp_path: Path, damage: Damage, error: type[Exception],
                                      message: str) -> None:
    options = screen.options(**damage(screen.raw))
    out = tmp_path / "out"
    with pytest.raises(error) as info:
        run_prepare("screen", screen.raw, out, dataset_options=options)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message.format(raw=screen.raw)), text
    _nothing_written(out)


def test_skip_bad_lists_and_leaves_out(screen: ScreenFiles, tmp_path: Path) -> None:
    for damage in (_missing_file, _well_not_in_map, _map_well_without_field):
        damage(screen.raw)
    out = tmp_path / "out"
    result = run_prepare("screen", screen.raw, out, dataset_options=screen.options(), repeats=1, skip_bad=True)
    report = read_index(out / "bad_inputs.csv")
    assert [r["file"] for r in report] == [f"{screen.raw}/load_data.csv line 16", f"{screen.raw}/load_data.csv line 17",
                                           f"{screen.raw}/platemap.csv line 17", "images/P1/P1_C03_s2_Actin.tif"]
    assert len(result.bad) == 4 and report[3]["problem"] == "missing file"
    rows = read_index(out / "screen_index.csv")
    assert len(rows) == 32 - 2 - 1 and not any(re.search(r"P1/(E03|C03/s2)", r["key"]) for r in rows)
    info = json.loads((out / "dataset.json").read_text())
    assert info["labelled_per_class"] == {"control": 8, "stabiliser": 7, "destabiliser": 8}
    assert info["bad_inputs"] == 4


def test_cli_prints_one_line(screen: ScreenFiles, tmp_path: Path) -> None:
    _missing_file(screen.raw)
    res = run_script("data_prep/prepare.py", "screen", *screen.flags(), "--out", str(tmp_path / "out"), "--quiet")
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["prepare: error: images/P1/P1_C03_s2_Actin.tif: missing file"]
    _nothing_written(tmp_path / "out")
