"""V1 nets and caffemodels: Caffe's upgrade_net_proto_text/_binary against tools/upgrade_net.py (``make parity``).

Both upgrades of the same V1 files (tests/support/oldnets.py writes them with the V1 schema) must be
the same NetParameter, and real pycaffe on Caffe's upgraded deploy net and model must give the
engine's output on the V1 files themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.net import load_net
from tests.support import oldnets, run_script
from tests.support.parity import Report, relative_difference, run_caffe_tool, run_oracle

TOLERANCE = 1e-5


def both_upgrades(old: Path, folder: Path, binary: bool) -> tuple[pb.NetParameter, pb.NetParameter, Path]:
    """(Caffe's upgrade, ours, the path of Caffe's) of ``old``, read back with the toolkit's schema."""
    suffix = ".caffemodel" if binary else ".prototxt"
    caffe_out, ours_out = folder / f"caffe-{old.stem}{suffix}", folder / f"ours-{old.stem}{suffix}"
    tool = "upgrade_net_proto_binary" if binary else "upgrade_net_proto_text"
    out = run_caffe_tool(tool, old, caffe_out)
    assert out.returncode == 0 and caffe_out.is_file(), out.stderr[-3000:]
    out = run_script("tools/upgrade_net.py", *(["--binary"] if binary else []), old, ours_out)
    assert out.returncode == 0, out.stderr[-3000:]
    if binary:
        return cio.read_binary(caffe_out, pb.NetParameter), cio.read_binary(ours_out, pb.NetParameter), caffe_out
    return (cio.parse_prototxt(caffe_out.read_text(), pb.NetParameter, str(caffe_out)),
            cio.parse_prototxt(ours_out.read_text(), pb.NetParameter, str(ours_out)), caffe_out)


@pytest.mark.parametrize("which", ["train_val", "deploy"])
def test_v1_net_text_upgrade(caffe_prefix: Path, tmp_path: Path, which: str, report: Report) -> None:
    text = oldnets.train_val(tmp_path / "train", tmp_path / "test", v1=True) if which == "train_val" \
        else oldnets.deploy(v1=True)
    old = tmp_path / f"v1_{which}.prototxt"
    old.write_text(text)
    caffe, ours, _ = both_upgrades(old, tmp_path, binary=False)
    assert len(caffe.layer) > 0 and not caffe.layers
    same = cio.format_prototxt(ours) == cio.format_prototxt(caffe)
    report.add(f"upgrade_net_proto_text, V1 {which}", 0.0 if same else float("inf"), 0.0,
               note="same NetParameter" if same else "differs")
    assert cio.format_prototxt(ours) == cio.format_prototxt(caffe)


def test_v1_caffemodel_upgrade_and_forward(caffe_prefix: Path, tmp_path: Path, report: Report) -> None:
    v1_deploy = tmp_path / "v1_deploy.prototxt"
    v1_deploy.write_text(oldnets.deploy(v1=True))
    engine_net = load_net(v1_deploy)
    rng = np.random.default_rng(4)
    weights = {name: [rng.standard_normal(a.shape).astype(np.float32) * 0.3 for a in arrays]
               for name, arrays in engine_net.weights().items()}
    old_model = tmp_path / "v1.caffemodel"
    cio.write_binary(old_model, oldnets.v1_caffemodel(weights))
    caffe, ours, caffe_model = both_upgrades(old_model, tmp_path, binary=True)
    assert not caffe.layers and len(caffe.layer) == len(ours.layer)
    assert ours == caffe, "the upgraded caffemodels differ"
    caffe_deploy = both_upgrades(v1_deploy, tmp_path, binary=False)[2]
    image = rng.standard_normal((3, 2, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "in.npz", data=image)
    run_oracle("oracle_forward.py", caffe_deploy, caffe_model, tmp_path / "in.npz", tmp_path / "out.npz")
    want = np.load(tmp_path / "out.npz")["prob"]
    engine = load_net(v1_deploy, old_model)
    got = engine.forward({"data": image})["prob"].detach().numpy()
    diff = relative_difference(got, want)
    report.add("V1 deploy + V1 caffemodel forward (engine) vs Caffe's upgraded files (pycaffe)", diff, TOLERANCE)
    assert diff <= TOLERANCE
