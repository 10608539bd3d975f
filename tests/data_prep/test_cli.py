"""data_prep/prepare.py and data_prep/synthesize.py as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcnn.prep import load_prepared
from tests.support import run_script
from tests.support.lookalikes import lookalike, real_csv_dir
from tests.support.prepared import read_index


def test_synthesize_and_prepare_scripts(tmp_path: Path) -> None:
    res = run_script("data_prep/synthesize.py", "bbbc016", "--out", str(tmp_path / "raw"), "--seed", "3")
    assert res.returncode == 0, res.stderr
    assert "wrote 144 images of 64x64" in res.stderr
    res = run_script("data_prep/prepare.py", "bbbc016", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                     "--repeats", "2", "--workers", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    ds = load_prepared(tmp_path / "out")
    assert [(s.name, s.train_size, s.test_size) for s in ds.splits] == [("repeat_000", 6, 2), ("repeat_001", 6, 2)]


def test_bbbc021_quoted_cr_dialect_end_to_end(tmp_path: Path) -> None:
    res = run_script("data_prep/synthesize.py", "bbbc021", "--out", str(tmp_path / "raw"), "--metadata",
                     str(real_csv_dir("quoted_cr")), "--plates", "Week10_40111")
    assert res.returncode == 0, res.stderr
    image_csv = (tmp_path / "raw" / "BBBC021_v1_image.csv").read_bytes()
    assert b'"Image_FileName_DAPI"' in image_csv and b"\r" not in image_csv  # quoted strings, LF line ends
    assert b"\n" not in (tmp_path / "raw" / "BBBC021_v1_moa.csv").read_bytes()  # CR-only line ends
    res = run_script("data_prep/prepare.py", "bbbc021", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                     "--workers", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    # Week10_40111 (replicate 1 of Week10): AZ138 (Eg5 inhibitors) 5 treatments and AZ-U (Epithelial) 3,
    # one well x 4 sites each on this plate -> 20 and 12 fields, one fold per compound.
    ds = load_prepared(tmp_path / "out")
    assert ds.class_names == ("Eg5 inhibitors", "Epithelial")
    assert {s.name: (s.train_size, s.test_size) for s in ds.splits} == {"fold_az-u": (20, 12),
                                                                         "fold_az138": (12, 20)}
    rows = read_index(ds.split("fold_az-u").paths.test_index)
    assert {r["Metadata_Concentration"] for r in rows} == {"1", "3", "10"}  # "10.000000" in the quoted copy


@pytest.mark.parametrize(("args", "message"), [
    (["--option", "taxol=some"], "prepare: error: --option taxol=some: choose from series, all"),
    (["--option", "taxol"], "prepare: error: --option 'taxol': expected NAME=VALUE"),
    (["--only", "fold_aspirin"], "prepare: error: --only fold_aspirin: no such split (splits: fold_az-a, "),
    (["--augment", "d4"], "prepare: error: --augment d4 needs square images (90° rotations would turn 64x80 into"),
    (["--protocol", "cv", "--range", "1"], "prepare: error: --range '1': expected two numbers"),
])
def test_option_errors(tmp_path: Path, args: list[str], message: str) -> None:
    res = run_script("data_prep/prepare.py", "bbbc021", "--raw", str(lookalike("bbbc021")), "--out",
                     str(tmp_path / "o"), "--quiet", "--workers", "1", *args)
    assert res.returncode == 2
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith(message), res.stderr


def test_help_lists_datasets_and_options() -> None:
    res = run_script("data_prep/prepare.py", "--help")
    assert res.returncode == 0
    for text in ("bbbc013", "screen", "--images", "--platemap", "taxol=series", "cv_field=first", "--norm-scope",
                 "--skip-bad"):
        assert text in res.stdout
    res = run_script("data_prep/synthesize.py", "--help")
    assert res.returncode == 0 and "simulate" in res.stdout and "hpa" in res.stdout
