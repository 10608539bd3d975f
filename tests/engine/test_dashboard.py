"""TensorBoard dashboards of a training run (read back with TensorBoard's own reader) and Caffe's output order."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mcnn.caffe.trainlog import parse_log
from mcnn.engine.dashboard import MISSING_EXTRA, TensorBoardObserver, input_images, tensorboard_observer
from mcnn.engine.glog import log_outputs
from mcnn.engine.trainer import TrainOptions
from mcnn.errors import ConfigError
from mcnn.reproduce import ReproduceOptions, Reproduction
from mcnn.training import TrainingRun, train
from tests.support import run_script
from tests.support.tiny import TinySetup
from tests.support.trainlogs import short_training


def scalars(events: EventAccumulator, tag: str) -> dict[int, float]:
    """step -> value of one scalar tag."""
    return {e.step: e.value for e in events.Scalars(tag)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TinySetup, Path, Path]:
    """One short training with TensorBoard events: the setup, the glog log and the events folder."""
    root = tmp_path_factory.mktemp("dashboard")
    setup, log = short_training(root / "run", tensorboard=root / "tb")
    return setup, log, root / "tb"


def test_events_hold_the_logged_values(trained: tuple[TinySetup, Path, Path]) -> None:
    _, log, folder = trained
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["test/0/accuracy", "test/0/loss", "train/loss", "train/lr",
                                                "train/outputs/loss", "train/smoothed_loss"]
    parsed, text = parse_log(log), log.read_text()
    # the glog lines print 6 significant digits; the events hold float32
    train_rows = {int(r["NumIters"]): r for r in parsed.train}
    assert sorted(train_rows) == [0, 2, 4]
    for tag in ("train/outputs/loss", "train/loss"):  # one loss of weight 1, iter_size 1: the net loss is its value
        got = scalars(events, tag)
        assert sorted(got) == [0, 2, 4]
        for step, value in got.items():
            assert value == pytest.approx(train_rows[step]["loss"], rel=1e-5)
    smoothed = dict(parsed.smoothed)
    for step, value in scalars(events, "train/smoothed_loss").items():
        assert value == pytest.approx(smoothed[step], rel=1e-5)
    assert scalars(events, "train/smoothed_loss")[2] != pytest.approx(scalars(events, "train/loss")[2])
    rates = {int(n): float(v) for n, v in re.findall(r"Iteration (\d+), lr = (\S+)", text)}
    assert scalars(events, "train/lr") == pytest.approx(rates) and rates == {0: 0.1, 2: 0.1, 4: 0.1}
    test_rows = {int(r["NumIters"]): r for r in parsed.test}
    assert sorted(test_rows) == [0, 6]
    for name in ("accuracy", "loss"):
        got = scalars(events, f"test/0/{name}")
        assert got == pytest.approx({step: row[name] for step, row in test_rows.items()}, rel=1e-5)
    # the first batch's first 4 fields, the 2 channels of each side by side (32 + 2 + 32 pixels)
    assert sorted(events.Tags()["images"]) == [f"inputs/data/{k}" for k in range(4)]
    for k in range(4):
        (image,) = events.Images(f"inputs/data/{k}")
        assert (image.step, image.width, image.height) == (0, 66, 32)
        pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("L"))
        assert pixels.shape == (32, 66)
        assert (pixels[:, 32:34] == 255).all()  # the white gap between the channels
        for c in range(2):
            tile = pixels[:, c * 34:c * 34 + 32]
            assert tile.min() == 0 and tile.max() == 255  # each channel stretched over its own range


def test_outputs_are_logged_in_caffes_alphabetical_order(trained: tuple[TinySetup, Path, Path]) -> None:
    setup, log, _ = trained
    lines = re.findall(r"Test net output #(\d+): (\w+) = ", log.read_text())
    assert lines[:2] == [("0", "accuracy"), ("1", "loss")]
    from mcnn.caffe import io as cio

    produced = [layer.top[0] for layer in cio.read_net(setup.train_val).layer if layer.type in
                ("SoftmaxWithLoss", "Accuracy")]
    assert produced == ["loss", "accuracy"]  # the net produces loss first: the log's order is Caffe's, not ours
    got: list[tuple[str, str]] = []
    log_outputs(lambda message, where: got.append((message, where)), "Train", {"zeta": [1.0, 2.0], "alpha": [0.5]},
                {"zeta": 2.0})
    assert got == [("    Train net output #0: alpha = 0.5", "solver.cpp:258"),
                   ("    Train net output #1: zeta = 1 (* 2 = 2 loss)", "solver.cpp:258"),
                   ("    Train net output #2: zeta = 2 (* 2 = 4 loss)", "solver.cpp:258")]


def test_input_images_stretch_each_channel() -> None:
    batch = np.zeros((6, 3, 4, 5))
    batch[:, 0] = np.arange(20).reshape(4, 5)         # a ramp
    batch[:, 1] = 7.0                                  # a flat channel
    batch[:, 2] = -np.arange(20).reshape(4, 5) * 1000  # another range
    images = input_images(batch, count=4)
    assert images.shape == (4, 1, 4, 3 * 5 + 2 * 2)
    lo, hi = np.percentile(np.arange(20), (0.5, 99.5))
    np.testing.assert_allclose(images[0, 0, :, :5], np.clip((np.arange(20).reshape(4, 5) - lo) / (hi - lo), 0, 1))
    assert (images[:, 0, :, 5:7] == 1).all() and (images[:, 0, :, 7:12] == 0).all()
    np.testing.assert_allclose(images[0, 0, :, 14:], images[0, 0, :, :5][::-1, ::-1])


def test_tensorboard_is_refused_with_real_caffe_and_without_the_extra(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_script("tools/train.py", "-solver", "solver.prototxt", "--engine", "caffe", "--tensorboard",
                     str(tmp_path / "tb"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--tensorboard needs --engine torch" in out.stderr and "parse_log.py" in out.stderr
    assert not (tmp_path / "tb").exists()
    with pytest.raises(ConfigError, match="--tensorboard needs --engine torch"):
        ReproduceOptions(dataset="bbbc016", raw=tmp_path, out=tmp_path / "o", engine="caffe",
                         tensorboard=tmp_path / "tb").validate()
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else object())
    with pytest.raises(ConfigError) as exc:
        tensorboard_observer(tmp_path / "tb")
    assert str(exc.value) == MISSING_EXTRA
    assert MISSING_EXTRA == "--tensorboard needs the 'dashboards' extra: pip install 'mcnn[dashboards]'"
    with pytest.raises(ConfigError, match="dashboards"):
        train(TrainingRun(solver="solver.prototxt", tensorboard=tmp_path / "tb"))


def test_train_hands_the_observer_to_the_engine(tiny: TinySetup, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[TrainOptions] = []
    monkeypatch.setattr("mcnn.engine.launch.run_training", lambda solver, options, gpus, log=None: seen.append(options))
    monkeypatch.setattr("mcnn.training._write_card", lambda *a: None, raising=False)
    train(TrainingRun(solver=str(tiny.solver), tensorboard=tmp_path / "tb"))
    assert seen[0].observer is not None and seen[0].observer.func is TensorBoardObserver  # type: ignore[attr-defined]
    assert seen[0].observer.args == (str(tmp_path / "tb"), 4)  # type: ignore[attr-defined]
    train(TrainingRun(solver=str(tiny.solver)))
    assert seen[1].observer is None


def test_reproduce_gives_each_split_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[TrainingRun] = []
    monkeypatch.setattr("mcnn.reproduce.train", lambda run, engine: runs.append(run) or 0)
    options = ReproduceOptions(dataset="bbbc016", raw=tmp_path, out=tmp_path / "o", tensorboard=tmp_path / "tb")
    Reproduction(options)._train(tmp_path / "o" / "solver.prototxt", str(tmp_path / "o" / "snaps" / "mcnn"), 10,
                                 "repeat_003")
    assert [r.tensorboard for r in runs] == [tmp_path / "tb" / "bbbc016" / "mcnn" / "repeat_003"]
