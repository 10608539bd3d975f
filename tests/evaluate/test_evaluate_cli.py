"""tools/evaluate.py and tools/predict.py end to end on a tiny LMDB with an index CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.caffe.transform import LmdbRecords
from mcnn.engine.net import Net
from mcnn.evaluate.fieldview import read_examples, thumbnail
from tests.support import run_script
from tests.support.tiny import CLASSES, make_setup

MOAS = ["Actin disruptors", "DNA damage", "Eg5 inhibitors"]


@pytest.fixture
def evaluation_setup(tmp_path: Path) -> dict[str, Path]:
    setup = make_setup(tmp_path / "ds", test_count=12)
    (tmp_path / "ds" / "labels.txt").write_text("\n".join(MOAS) + "\n")
    net = Net(cio.read_net(setup.deploy), pb.TEST, generator=torch.Generator().manual_seed(1))
    weights = tmp_path / "w.caffemodel"
    cio.write_caffemodel(weights, net.to_caffemodel())
    # 12 records: label i % 3; one compound per class at two concentrations, 2 fields in 1 well each.
    index = tmp_path / "ds" / "test_index.csv"
    with open(index, "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["key", "label", "class_name", "Metadata_Plate", "Metadata_Well", "Metadata_Site",
                    "Metadata_Compound", "Metadata_Concentration", "Metadata_MoA"])
        for i in range(12):
            label = i % CLASSES
            w.writerow([f"{i:08d}_img{i}", label, MOAS[label], "P1", f"{'BC'[i // 6]}{label + 1:02d}", i // 3,
                        f"cmpd{label}", "1.0" if i < 6 else "3.0", MOAS[label]])
    return {"deploy": setup.deploy, "weights": weights, "lmdb": setup.root / "test_lmdb", "index": index}


def test_evaluate_writes_predictions_metrics_and_moa(evaluation_setup: dict[str, Path], tmp_path: Path) -> None:
    s = evaluation_setup
    out = run_script("tools/evaluate.py", "--model", s["deploy"], "--weights", s["weights"], "--lmdb", s["lmdb"],
                     "--index", s["index"], "--out", tmp_path / "ev", "--examples", "--channels", "DNA,GFP")
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "ev" / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and rows[0]["key"] == "00000000_img0"
    probs = np.array([[float(r[f"prob_{m}"]) for m in MOAS] for r in rows])
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert [int(r["predicted_label"]) for r in rows] == probs.argmax(axis=1).tolist()
    assert rows[4]["Metadata_Compound"] == "cmpd1"
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    expected = np.mean([int(r["predicted_label"]) == int(r["label"]) for r in rows])
    assert metrics["images"] == 12 and metrics["accuracy"] == pytest.approx(expected)
    assert np.array(metrics["confusion"]).sum() == 12
    # treatment level: 3 compounds x 2 concentrations
    assert metrics["moa"]["treatments"] == 6
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000
    assert (tmp_path / "ev" / "moa_treatments.csv").read_text().count("\n") == 7
    assert f"accuracy {100 * expected:.2f}%" in out.stdout
    # --examples: the first record of each class, nuclei blue and GFP green, below both matrices
    examples = read_examples(tmp_path / "ev" / "examples.npz")
    assert examples.classes == MOAS and examples.keys == ["00000000_img0", "00000001_img1", "00000002_img2"]
    records = LmdbRecords(s["lmdb"])
    for i, picture in enumerate(examples.images):
        assert picture is not None and picture.dtype == np.uint8 and picture.shape == (32, 32, 3)
        assert np.array_equal(picture, thumbnail(records.image(i)[0], ("DNA", "GFP")))
        assert not picture[..., 0].any() and picture[..., 1].any() and picture[..., 2].any()
    assert (tmp_path / "ev" / "moa_confusion.png").stat().st_size > 1000


def test_predict_writes_fields_and_treatments(evaluation_setup: dict[str, Path], tmp_path: Path) -> None:
    s = evaluation_setup
    out = run_script("tools/predict.py", "--model", s["deploy"], "--weights", s["weights"], "--lmdb", s["lmdb"],
                     "--index", s["index"], "--out", tmp_path / "pr")
    assert out.returncode == 0, out.stderr
    assert "12 fields, 6 wells, 6 treatments" in out.stdout
    with open(tmp_path / "pr" / "treatments.csv", newline="") as handle:
        treatments = list(csv.DictReader(handle))
    assert [(t["compound"], float(t["concentration"])) for t in treatments][:2] == [("cmpd0", 1.0), ("cmpd0", 3.0)]


def test_evaluate_errors(evaluation_setup: dict[str, Path], tmp_path: Path) -> None:
    s = evaluation_setup
    labels = str(s["index"].parent / "labels.txt")
    bad = run_script("tools/evaluate.py", "--model", s["deploy"], "--weights", s["weights"], "--lmdb",
                     tmp_path / "none_lmdb", "--labels", labels, "--out", tmp_path / "x")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and bad.stderr.count("\n") == 1
    caffe = run_script("tools/evaluate.py", "--model", s["deploy"], "--weights", s["weights"], "--lmdb", s["lmdb"],
                       "--out", tmp_path / "y", "--engine", "caffe")
    assert caffe.returncode == 2 and "needs pycaffe" in caffe.stderr
