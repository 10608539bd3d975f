"""The committed nets and solvers: current, parseable, and valid for a second Caffe reader (OpenCV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.datasets import PAPER_DATASETS
from mcnn.nets import list_nets
from mcnn.nets.emit import committed_files
from mcnn.nets.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]
NET_FILES = sorted((ROOT / "prototxt").glob("*/*.prototxt"))
SOLVER_FILES = sorted((ROOT / "solvers").glob("*/*.prototxt"))
DEPLOY_FILES = [p for p in NET_FILES if p.name.endswith("_deploy.prototxt")]


def test_every_dataset_and_architecture_is_committed() -> None:
    ARCHS = list_nets()
    assert ARCHS[:3] == ["mcnn", "alexnet", "googlenet"]
    assert set(PAPER_DATASETS) | {"demo"} == set(PRESETS)
    expected = {f"{d}/{a}_{v}.prototxt" for d in PRESETS for a in ARCHS for v in ("train_val", "deploy")}
    assert {p.relative_to(ROOT / "prototxt").as_posix() for p in NET_FILES} == expected
    assert {p.relative_to(ROOT / "solvers").as_posix() for p in SOLVER_FILES} == {
        f"{d}/{a}.prototxt" for d in PRESETS for a in ARCHS}


def test_committed_files_are_regenerated_byte_identically() -> None:
    """`make prototxt` reproduces every committed file exactly."""
    files = committed_files(ROOT)
    stale = [str(p.relative_to(ROOT)) for p, text in files.items()
             if not p.is_file() or p.read_bytes() != text.encode("utf-8")]
    assert stale == [], "run `make prototxt`"


@pytest.mark.parametrize("path", NET_FILES + SOLVER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parses_back_and_reserialises_identically(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    message_type = pb.SolverParameter if path.parent.parent.name == "solvers" else pb.NetParameter
    message = cio.parse_prototxt(text, message_type, str(path))
    assert cio.format_prototxt(message, cio.header_lines(text)) == text
    assert "round_mode" not in text


@pytest.mark.parametrize("path", SOLVER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_solvers_point_at_committed_nets(path: Path) -> None:
    solver = cio.read_solver(path)
    assert (ROOT / solver.net).is_file()
    assert (ROOT / solver.snapshot_prefix).parent.is_dir()
    assert solver.max_iter > 0 and solver.test_iter[0] > 0


@pytest.mark.slow
@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_deploy_runs_in_opencv(path: Path, tmp_path: Path) -> None:
    """OpenCV's own Caffe importer loads the deploy net with a caffemodel we wrote and runs it."""
    pytest.importorskip("cv2")
    from tests.support.crosscheck import opencv_forward, write_random_caffemodel

    net = cio.read_net(path)
    classes = PRESETS[path.parent.name].classes
    model = tmp_path / "random.caffemodel"
    write_random_caffemodel(net, model)
    shape = [int(d) for d in net.layer[0].input_param.shape[0].dim]
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    prob = opencv_forward(path, model, image, ["prob"])["prob"]
    assert prob.shape == (1, classes)
    assert np.all(prob >= 0)
    assert prob.sum() == pytest.approx(1.0, abs=1e-5)
