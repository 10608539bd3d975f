"""tools/upgrade_net.py and tools/upgrade_solver.py: Caffe's upgrade_net_proto_text/_binary and
upgrade_solver_proto_text; their outputs read back current, and OpenCV's Caffe importer reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb, upgrade
from mcnn.engine.net import Net, load_net
from tests.support import oldnets, run_script


def test_upgrade_net_text_and_binary(tmp_path: Path) -> None:
    v1_deploy, v1_model = tmp_path / "old_deploy.prototxt", tmp_path / "old.caffemodel"
    v1_deploy.write_text(oldnets.deploy(v1=True))
    reference = Net(cio.parse_prototxt(oldnets.deploy(v1=False), pb.NetParameter), pb.TEST,
                    generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for blob in reference.learnable():
            blob.tensor.uniform_(-0.2, 0.2)
    v1_model.write_bytes(oldnets.v1_caffemodel(reference.weights()).SerializeToString())

    new_deploy, new_model = tmp_path / "deploy.prototxt", tmp_path / "new.caffemodel"
    text = run_script("tools/upgrade_net.py", v1_deploy, new_deploy)
    binary = run_script("tools/upgrade_net.py", "--binary", v1_model, new_model)
    assert (text.returncode, binary.returncode) == (0, 0), text.stderr + binary.stderr
    assert text.stderr == f"upgrade_net: wrote {new_deploy}: upgraded V1 'layers', net-level input fields\n"
    assert binary.stderr == f"upgrade_net: wrote {new_model}: upgraded V1 'layers'\n"
    net = cio.read_prototxt(new_deploy, pb.NetParameter)  # as written: already current
    model = cio.read_binary(new_model, pb.NetParameter)
    assert not upgrade.net_needs_upgrade(net) and not upgrade.net_needs_upgrade(model)
    assert net == cio.parse_prototxt(oldnets.deploy(v1=False), pb.NetParameter)
    assert [layer.type for layer in model.layer] == ["Data", "Convolution", "ReLU", "Pooling", "InnerProduct"]
    x = np.random.default_rng(2).random((2, 2, 32, 32), dtype=np.float32)
    with torch.no_grad():
        expected = reference.forward({"data": x})["prob"].numpy()
        np.testing.assert_allclose(load_net(new_deploy, new_model).forward({"data": x})["prob"].numpy(), expected,
                                   rtol=1e-6)
    cv2 = pytest.importorskip("cv2")
    cv_net = cv2.dnn.readNetFromCaffe(str(new_deploy), str(new_model))
    cv_net.setInput(x)
    np.testing.assert_allclose(cv_net.forward("prob"), expected, atol=1e-5)


def test_upgrade_net_reports_dropped_parameters_and_current_files(tmp_path: Path) -> None:
    """Like Caffe's tool: the file is written and the status is 1 when a V0 field did not fit its layer."""
    old, out = tmp_path / "v0.prototxt", tmp_path / "v2.prototxt"
    old.write_text('input: "x" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n'
                   'layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "y" }\n')
    lossy = run_script("tools/upgrade_net.py", old, out)
    assert lossy.returncode == 1
    assert lossy.stderr.splitlines() == [
        f"upgrade_net: {old}: V0 layer 'r': parameter num_output does not apply to layer type 'relu'; dropped",
        f"upgrade_net: wrote {out}: upgraded V0 layers, V1 'layers', net-level input fields"]
    assert [layer.type for layer in cio.read_net(out).layer] == ["Input", "ReLU"]
    again = run_script("tools/upgrade_net.py", out, tmp_path / "copy.prototxt")
    assert again.returncode == 0 and again.stderr == f"upgrade_net: {out}: already in the current format; copied\n"
    assert (tmp_path / "copy.prototxt").read_text() == out.read_text()


def test_upgrade_solver(tmp_path: Path) -> None:
    old, out = tmp_path / "old_solver.prototxt", tmp_path / "solver.prototxt"
    old.write_text('net: "train_val.prototxt"\nbase_lr: 0.01\nsolver_type: ADAGRAD\n')
    done = run_script("tools/upgrade_solver.py", old, out)
    assert done.returncode == 0 and done.stderr == f"upgrade_solver: wrote {out}: upgraded solver_type to type: " \
                                                   "'AdaGrad'\n"
    solver = cio.read_prototxt(out, pb.SolverParameter)
    assert solver.type == "AdaGrad" and not solver.HasField("solver_type") and solver.base_lr == pytest.approx(0.01)
    old.write_text('solver_type: ADAM\ntype: "Adam"\n')
    refused = run_script("tools/upgrade_solver.py", old, tmp_path / "never.prototxt")
    assert refused.returncode == 2 and not (tmp_path / "never.prototxt").exists()
    assert refused.stderr == (f"upgrade_solver: error: {old}: both the deprecated solver_type (ADAM) and type "
                              "('Adam') are set; keep only type\n")
