"""TorchScript export: the frozen trace, reloaded with torch.jit.load, gives the engine's outputs at any batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.export import export_torchscript
from mcnn.export.common import engine_outputs, random_feeds
from mcnn.export.torchscript import META
from tests.support.export_nets import deploy_path, fresh_net


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("arch", ["mcnn", "googlenet"])
def test_demo_nets_reload_and_match_the_engine(arch: str, tmp_path: Path) -> None:
    """M-CNN and GoogLeNet (LRN, inception Concat, AVE pooling), traced at batch 2, checked at batch 1 and 4
    by the export and here at batch 3."""
    net = fresh_net(deploy_path("demo", arch), seed=6)
    path = tmp_path / f"{arch}.pt"
    report = export_torchscript(net, path, batches=(1, 4))
    assert report.worst <= 1e-4 and report.format == "TorchScript"
    extra = {META: ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra[META])
    assert meta["inputs"] == {"data": [2, 128, 128]} and meta["outputs"] == ["prob"]
    for batch in (3,):
        feeds = random_feeds(net, batch, seed=20 + batch)
        with torch.no_grad():
            (prob,) = module(torch.from_numpy(feeds["data"]))
        want = engine_outputs(net, feeds, ["prob"])["prob"]
        assert prob.shape == (batch, 4)
        np.testing.assert_allclose(prob.numpy(), want, atol=1e-5, rtol=0)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left beside it
