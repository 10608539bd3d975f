"""Bad input: a one-line error naming the file and what was expected; --skip-bad reports and goes on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.datasets.imageio import write_tiff
from mcnn.errors import BadInputError, DatasetLayoutError
from tests.support import run_script
from tests.support.lookalikes import copy_raw, lookalike
from tests.support.prepared import check_prepared, read_index, run_prepare

B16 = "BBBC016_v1_images/AS_09047_050428030001_"


def _damage_bbbc016(tmp_path: Path) -> Path:
    files = ("O05f00d2", "O06f01d0", "O07f00d2", "O02f00d0")
    raw = copy_raw("bbbc016", tmp_path / "raw", copy=tuple(f"{B16}{f}.TIF" for f in files))
    data = (raw / f"{B16}O05f00d2.TIF").read_bytes()
    (raw / f"{B16}O05f00d2.TIF").write_bytes(data[: len(data) // 2])  # truncated
    (raw / f"{B16}O06f01d0.TIF").unlink()  # a channel file missing
    write_tiff(raw / f"{B16}O07f00d2.TIF", np.zeros((64, 64), np.uint16))  # 16-bit instead of 8-bit
    data = (raw / f"{B16}O02f00d0.TIF").read_bytes()
    (raw / f"{B16}O02f00d0.TIF").write_bytes(data[:100])  # truncated, a labelled field
    return raw


def test_one_line_errors(tmp_path: Path) -> None:
    raw = _damage_bbbc016(tmp_path)
    with pytest.raises(BadInputError, match=rf"^{B16}O06f01d0.TIF: missing DNA channel file \(d0\) of well O06 "
                                            r"field f01$"):
        run_prepare("bbbc016", raw, tmp_path / "out")
    (raw / f"{B16}O06f01d0.TIF").symlink_to(lookalike("bbbc016") / f"{B16}O06f01d0.TIF")
    with pytest.raises(BadInputError, match=rf"^{B16}O02f00d0.TIF: unreadable or truncated image"):
        run_prepare("bbbc016", raw, tmp_path / "out")
    (raw / f"{B16}O02f00d0.TIF").unlink()
    (raw / f"{B16}O02f00d0.TIF").symlink_to(lookalike("bbbc016") / f"{B16}O02f00d0.TIF")
    with pytest.raises(BadInputError, match=rf"^{B16}O05f00d2.TIF: unreadable or truncated image"):
        run_prepare("bbbc016", raw, tmp_path / "out")
    (raw / f"{B16}O05f00d2.TIF").unlink()
    (raw / f"{B16}O05f00d2.TIF").symlink_to(lookalike("bbbc016") / f"{B16}O05f00d2.TIF")
    with pytest.raises(BadInputError, match=rf"^{B16}O07f00d2.TIF: wrong bit depth: 16-bit, expected 8-bit$"):
        run_prepare("bbbc016", raw, tmp_path / "out")
    write_tiff(raw / f"{B16}O07f00d2.TIF", np.zeros((32, 40), np.uint8))
    with pytest.raises(BadInputError, match=rf"^{B16}O07f00d2.TIF: wrong size: 40x32 \(WxH\), expected 64x64$"):
        run_prepare("bbbc016", raw, tmp_path / "out")


def test_skip_bad_reports_and_goes_on(tmp_path: Path) -> None:
    raw = _damage_bbbc016(tmp_path)
    with pytest.raises(BadInputError):
        run_prepare("bbbc016", raw, tmp_path / "out")
    result = run_prepare("bbbc016", raw, tmp_path / "out", skip_bad=True)  # same --out: goes on
    assert len(result.bad) == 4
    report = read_index(tmp_path / "out" / "bad_inputs.csv")
    assert sorted(r["file"].rsplit("_", 1)[1] for r in report) == ["O02f00d0.TIF", "O05f00d2.TIF", "O06f01d0.TIF",
                                                                    "O07f00d2.TIF"]
    # the 66 dose fields lose the 4 damaged ones; O02 f00 was labelled (neutral): each repeat keeps 7 of 8
    rows = read_index(tmp_path / "out" / "dose_index.csv")
    assert len(rows) == 62
    for split in ("repeat_000", "repeat_001"):
        folder = tmp_path / "out" / "splits" / split
        n = sum(len(read_index(folder / f"{side}_index.csv")) for side in ("train", "test"))
        assert n == 7
    assert not any("O02/s0" in r["key"] for r in read_index(tmp_path / "out" / "splits" / "repeat_000" /
                                                               "train_index.csv"))


def test_cli_prints_one_line(tmp_path: Path) -> None:
    raw = copy_raw("bbbc013", tmp_path / "raw", copy=("BBBC013_v1_images_bmp/Channel2-05-A-05.BMP",))
    (raw / "BBBC013_v1_images_bmp" / "Channel2-05-A-05.BMP").unlink()
    res = run_script("data_prep/prepare.py", "bbbc013", "--raw", str(raw), "--out", str(tmp_path / "out"), "--quiet")
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["prepare: error: BBBC013_v1_images_bmp/Channel2-05-A-05.BMP: missing channel 2 "
                                       "file of well A05"]
    res = run_script("data_prep/prepare.py", "bbbc013", "--raw", str(raw), "--out", str(tmp_path / "out2"), "--quiet",
                     "--skip-bad", "--repeats", "1", "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert "1 bad input(s) left out" in res.stderr
    # A05 is a dose well (column 5): 72 - 1 = 71
    assert len(read_index(tmp_path / "out2" / "dose_index.csv")) == 71
    (raw / "BBBC013_v1_platemap_all.txt").unlink()
    res = run_script("data_prep/prepare.py", "bbbc013", "--raw", str(raw), "--out", str(tmp_path / "out3"), "--quiet")
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1
    assert "BBBC013_v1_platemap_all.txt: plate map missing" in res.stderr


def _bbbc021_without_dmso_on(tmp_path: Path, plate: str) -> Path:
    raw = copy_raw("bbbc021", tmp_path / "raw", copy=("BBBC021_v1_image.csv",))
    lines = (raw / "BBBC021_v1_image.csv").read_bytes().splitlines(keepends=True)
    edited = [line.replace(b",DMSO,", b",DMSO-free,") if f",{plate},".encode() in line else line for line in lines]
    (raw / "BBBC021_v1_image.csv").write_bytes(b"".join(edited))
    return raw


def test_plate_without_dmso(tmp_path: Path) -> None:
    raw = _bbbc021_without_dmso_on(tmp_path, "Week1_22161")
    with pytest.raises(DatasetLayoutError, match=r"^plate Week1_22161: no DMSO \(negative-control\) wells in the "
                                                  r"metadata; per-plate normalisation"):
        run_prepare("bbbc021", raw, tmp_path / "out")
    result = run_prepare("bbbc021", raw, tmp_path / "out2", skip_bad=True)
    assert [b[0] for b in result.bad] == ["plate Week1_22161"]
    # the other two replicate plates keep 2 of the 3 wells of every treatment: 156 * 2 / 3 = 104 fields
    check_prepared(tmp_path / "out2", "bbbc021", ("DNA", "tubulin", "actin"), (64, 80), 4,
                   {"fold_az-a": (56, 48), "fold_cytochalasin-b": (88, 16), "fold_nocodazole": (88, 16),
                    "fold_taxol": (80, 24)}, unlabelled={"controls": 48})


def test_missing_file_named_in_metadata(tmp_path: Path) -> None:
    raw = lookalike("bbbc021")
    rows = read_index(raw / "BBBC021_v1_image.csv")
    victim = rows[5]
    name, plate = victim["Image_FileName_Tubulin"], victim["Image_Metadata_Plate_DAPI"]
    raw = copy_raw("bbbc021", tmp_path / "raw", copy=(f"{plate}/{name}",))
    (raw / plate / name).unlink()
    res = run_script("data_prep/prepare.py", "bbbc021", "--raw", str(raw), "--out", str(tmp_path / "out"), "--quiet")
    assert res.returncode == 2
    assert res.stderr.splitlines() == [f"prepare: error: {plate}/{name}: missing tubulin channel file (named in "
                                       "BBBC021_v1_image.csv line 7)"]


def test_skip_bad_after_a_failed_run(tmp_path: Path) -> None:
    raw = copy_raw("bbbc016", tmp_path / "raw", copy=(f"{B16}O13f00d2.TIF",))
    data = (raw / f"{B16}O13f00d2.TIF").read_bytes()
    (raw / f"{B16}O13f00d2.TIF").write_bytes(data[:200])  # found while decoding, after the options are saved
    with pytest.raises(BadInputError, match=r"O13f00d2\.TIF: unreadable or truncated image"):
        run_prepare("bbbc016", raw, tmp_path / "out")
    assert (tmp_path / "out" / ".prepare.json").is_file()
    result = run_prepare("bbbc016", raw, tmp_path / "out", skip_bad=True)
    assert [b[0] for b in result.bad] == [f"{B16}O13f00d2.TIF"]
