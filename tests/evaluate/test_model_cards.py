"""Model cards: written by a short training run, read back, and used by evaluate/predict (mcnn.caffe.modelcard)."""

from __future__ import annotations

import json
import platform
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe.modelcard import ModelCard, card_path, load_card, read_card
from mcnn.errors import BadInputError, ConfigError
from mcnn.evaluate.predict import model_inputs, run_model
from mcnn.evaluate.screen import predict_screen
from mcnn.nets.solver import SolverOptions, build_solver
from mcnn.prep import load_prepared
from mcnn.training import TrainingRun, train
from tests.support import run_script
from tests.support.lookalikes import lookalike
from tests.support.prepared import run_prepare

CLASSES = ["neutral", "positive"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """The README's quick start, small: a prepared BBBC016 look-alike, make_net.py --data, 2 epochs of train.py."""
    root = tmp_path_factory.mktemp("card")
    data = root / "data"
    run_prepare("bbbc016", lookalike("bbbc016"), data, repeats=1)
    split = load_prepared(data).splits[0]
    made = run_script("tools/make_net.py", "--data", data, "--scales", "1..8", "--widths", "4,4,4,4",
                      "--fusion-width", "8", "--fusion-pool", "0", "--fc-width", "8", "--batch", "4",
                      "--out", root / "nets")
    assert made.returncode == 0, made.stderr
    train_val = root / "nets" / "mcnn_train_val.prototxt"
    options = SolverOptions(epochs=2, snapshot_epochs=1, snapshot_prefix=str(root / "snaps" / "m"), seed=7,
                            mode="CPU", display=1)
    built = build_solver(str(train_val), split.train_size, split.test_size, 4, 4, options).solver
    cio.write_prototxt(root / "solver.prototxt", built)
    # tools/train.py's path (mcnn.training.train, torch engine), in this process; the glog lines into a file
    assert train(TrainingRun(solver=str(root / "solver.prototxt"), log_file=root / "train.log")) == 0
    return {"root": root, "data": data, "deploy": root / "nets" / "mcnn_deploy.prototxt", "train_val": train_val,
            "weights": root / "snaps" / f"m_iter_{built.max_iter}.caffemodel", "log": (root / "train.log").read_text(),
            "iterations": built.max_iter, "snapshot": built.snapshot, "sizes": (split.train_size, split.test_size)}


def bare_copy(trained: dict[str, Path | str], dest: Path) -> tuple[Path, Path]:
    """The deploy net and the test LMDB alone in ``dest``: no train_val beside the net, no labels.txt near the LMDB."""
    dest.mkdir()
    shutil.copy(trained["deploy"], dest / "deploy.prototxt")
    shutil.copytree(Path(trained["data"]) / "splits" / "repeat_000" / "test_lmdb", dest / "test_lmdb")
    return dest / "deploy.prototxt", dest / "test_lmdb"


def test_train_writes_a_card_beside_the_final_caffemodel(trained: dict[str, Path | str]) -> None:
    weights = Path(trained["weights"])
    n = trained["iterations"]
    snapshots = sorted(p.name for p in weights.parent.glob("*.caffemodel"))
    assert snapshots == sorted([f"m_iter_{trained['snapshot']}.caffemodel", weights.name])
    assert [p.name for p in weights.parent.glob("*.card.json")] == [f"m_iter_{n}.card.json"]  # the final one only
    card = read_card(weights)
    assert card is not None and card.caffemodel == weights.name and card.version == 1
    a = card.architecture
    assert (a.arch, a.net, a.num_classes, a.deploy) == ("mcnn", "M-CNN", 2, str(Path(trained["deploy"]).resolve()))
    assert a.generated_by is not None and a.generated_by.startswith("python tools/make_net.py --data ")
    assert "--scales 1..8" in a.generated_by and a.options == {}
    d = card.dataset
    assert (d.name, d.protocol, d.split, d.seed) == ("bbbc016", "cv", "repeat_000", 0)
    assert (d.train_size, d.test_size) == trained["sizes"]
    assert d.test_lmdb == str((Path(trained["data"]) / "splits" / "repeat_000" / "test_lmdb").resolve())
    assert card.classes == CLASSES
    p = card.preprocessing
    assert p.channels == ["GFP", "DNA"] and p.input_shape == p.record_shape == [2, 64, 64]
    assert p.transform_param == {"scale": 0.00390625} and p.intensity is not None and p.intensity["scope"] == "none"
    assert card.solver["max_iter"] == n and card.solver["random_seed"] == 7 and card.solver["solver_mode"] == "CPU"
    t = card.training
    assert (t.engine, t.iterations, t.seed, t.stopped_early, t.weights) == ("torch", n, 7, False, [])
    assert card.versions == {"mcnn": "0.1.0", "python": platform.python_version(), "torch": torch.__version__}
    # the metrics are the last test pass of the log
    logged = re.findall(r"Test net output #\d+: accuracy = ([\d.eE+-]+)", str(trained["log"]))
    assert card.metrics["iteration"] == n and card.metrics["outputs"]["accuracy"] == pytest.approx(float(logged[-1]),
                                                                                                  abs=1e-6)
    assert ModelCard.from_json(card.to_json()) == card


def test_evaluate_takes_class_names_and_preprocessing_from_the_card(trained: dict[str, Path | str],
                                                                     tmp_path: Path) -> None:
    deploy, lmdb = bare_copy(trained, tmp_path / "bare")
    out = run_script("tools/evaluate.py", "--model", deploy, "--weights", trained["weights"], "--lmdb", lmdb,
                     "--out", tmp_path / "ev")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["classes"] == CLASSES and metrics["images"] == trained["sizes"][1]
    # the same numbers as with the labels and the train_val given explicitly
    explicit = run_model(trained["deploy"], trained["weights"], lmdb, labels=Path(trained["data"]) / "labels.txt",
                         train_val=trained["train_val"])
    header, *rows = (tmp_path / "ev" / "predictions.csv").read_text().splitlines()
    assert header.split(",")[-2:] == ["prob_neutral", "prob_positive"]
    probs = np.array([[float(x) for x in row.split(",")[-2:]] for row in rows])
    np.testing.assert_allclose(probs, explicit.predictions.probabilities, rtol=1e-6)
    # without the card, neither is found
    card_path(trained["weights"]).rename(tmp_path / "card.json")
    try:
        with pytest.raises(ConfigError, match="no train_val prototxt next to it and no model card"):
            model_inputs(deploy, lmdb, weights=trained["weights"])
        with pytest.raises(ConfigError, match=r"no labels.txt next to or above .* and no class names in a model card"):
            model_inputs(deploy, lmdb, train_val=trained["train_val"], weights=trained["weights"])
    finally:
        (tmp_path / "card.json").rename(card_path(trained["weights"]))


def test_predict_screen_reads_the_card(trained: dict[str, Path | str], tmp_path: Path) -> None:
    deploy, lmdb = bare_copy(trained, tmp_path / "bare")
    result = predict_screen(deploy, trained["weights"], lmdb, None, tmp_path / "pr")
    assert result.classes == tuple(CLASSES) and result.fields == trained["sizes"][1]
    header = (tmp_path / "pr" / "predictions.csv").read_text().splitlines()[0]
    assert header.endswith("predicted_label,predicted_class,prob_neutral,prob_positive")


def test_flags_win_but_must_agree_with_the_card(trained: dict[str, Path | str], tmp_path: Path) -> None:
    deploy, lmdb = bare_copy(trained, tmp_path / "bare")
    card = card_path(trained["weights"])
    renamed = tmp_path / "renamed.txt"
    renamed.write_text("dmso\ntreated\n")
    _, classes = model_inputs(deploy, lmdb, labels=renamed, weights=trained["weights"])
    assert classes == ["dmso", "treated"]
    three = tmp_path / "three.txt"
    three.write_text("a\nb\nc\n")
    with pytest.raises(ConfigError) as err:
        model_inputs(deploy, lmdb, labels=three, weights=trained["weights"])
    assert str(err.value) == (f"--labels {three}: 3 classes, but the model card {card} names 2 (neutral, positive); "
                              "drop --labels or give the model's labels")
    cropped = tmp_path / "cropped_train_val.prototxt"
    cropped.write_text(Path(trained["train_val"]).read_text().replace("scale: 0.00390625", "scale: 0.00390625\n"
                                                                      "    crop_size: 32"))
    with pytest.raises(ConfigError, match=f"--train-val {cropped}: crop_size 32, but the model card {card} says the "
                                          "model was trained on crop_size 0 \\(input 2x64x64\\)"):
        model_inputs(deploy, lmdb, train_val=cropped, weights=trained["weights"])
    scaled = tmp_path / "scaled_train_val.prototxt"
    scaled.write_text(Path(trained["train_val"]).read_text().replace("scale: 0.00390625", "scale: 0.5"))
    transform, _ = model_inputs(deploy, lmdb, train_val=scaled, weights=trained["weights"])
    assert transform.scale == 0.5


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: "{", "line 1: not JSON"),
    (lambda d: {**d, "version": 2}, "field version: expected 1 (the card format this mcnn reads), got 2"),
    (lambda d: {k: v for k, v in d.items() if k != "training"}, "field training: missing"),
    (lambda d: {**d, "colour": "red"}, "field colour: not a field of the card format 1"),
    (lambda d: {**d, "classes": ["a", 3]}, "field classes[1]: expected str, got 3"),
    (lambda d: {**d, "classes": ["a", "b", "c"]}, "field classes: 3 names for the net's 2 outputs"),
    (lambda d: {**d, "training": {**d["training"], "iterations": "4"}}, "field training.iterations: expected int"),
    (lambda d: {**d, "preprocessing": {**d["preprocessing"], "input_shape": [2, 64]}},
     "field preprocessing.input_shape: expected C, H, W >= 1, got [2, 64]"),
    (lambda d: {**d, "preprocessing": {**d["preprocessing"], "transform_param": {"scale": "big"}}},
     "field preprocessing.transform_param: "),
])
def test_a_bad_card_is_one_line_naming_the_file_and_field(trained: dict[str, Path | str], tmp_path: Path,
                                                          change: object, message: str) -> None:
    data = json.loads(card_path(trained["weights"]).read_text())
    bad = change(data)  # type: ignore[operator]
    path = tmp_path / "m.card.json"
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(BadInputError) as err:
        load_card(path)
    text = str(err.value)
    assert text.startswith(f"{path}: {message}") and "\n" not in text
