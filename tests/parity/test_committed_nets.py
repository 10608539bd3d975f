"""The committed deploy nets' forward in real pycaffe and in the engine, one engine-written caffemodel each.

Every dataset's M-CNN, the demo's three nets and BBBC021's AlexNet and GoogLeNet, at their own input
size, batch 2. Compared: the probabilities and the scores they come from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.net import Net
from tests.support import ROOT
from tests.support.parity import Report, relative_difference, run_oracle

TOLERANCE = 1e-5
NETS = [*sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("prototxt/*/mcnn_deploy.prototxt")),
        *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("prototxt/demo/*_deploy.prototxt") if "mcnn" not in p.name),
        "prototxt/bbbc021/alexnet_deploy.prototxt", "prototxt/bbbc021/googlenet_deploy.prototxt"]


@pytest.mark.parametrize("deploy", NETS)
def test_committed_deploy_net(caffe_prefix: Path, tmp_path: Path, deploy: str, report: Report) -> None:
    param = cio.read_net(ROOT / deploy)
    assert param.layer[0].type == "Input"
    net_file = tmp_path / "deploy.prototxt"
    cio.write_prototxt(net_file, param)
    net = Net(param, pb.TEST, source=deploy)
    model = tmp_path / "w.caffemodel"
    cio.write_caffemodel(model, net.to_caffemodel())
    shape = tuple(param.layer[0].input_param.shape[0].dim)
    image = np.random.default_rng(7).uniform(0, 1, (2, *shape[1:])).astype(np.float32)
    np.savez(tmp_path / "in.npz", **{param.layer[0].top[0]: image})
    scores = param.layer[-1].bottom[0]
    run_oracle("oracle_forward.py", net_file, model, tmp_path / "in.npz", tmp_path / "out.npz", scores)
    want = dict(np.load(tmp_path / "out.npz"))
    with torch.no_grad():
        got = net.forward({param.layer[0].top[0]: image})
    diffs = {name: relative_difference(got[name].detach().numpy(), value) for name, value in want.items()}
    worst = max(diffs.values())
    report.add(f"forward {deploy} (full size, batch 2)", worst, TOLERANCE, note=", ".join(sorted(diffs)))
    assert worst <= TOLERANCE, diffs
