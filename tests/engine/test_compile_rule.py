"""When a forward job is traced and frozen (mcnn.engine.inference.worth_compiling): from the job's size and
the net's arithmetic alone, so every run of the same job computes alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.engine.inference import forward_flops, worth_compiling
from mcnn.engine.net import Net
from mcnn.evaluate.predict import EngineBackend
from tests.support import ROOT

DEMO = ROOT / "prototxt" / "demo" / "mcnn_deploy.prototxt"


@pytest.fixture(scope="module")
def demo() -> Net:
    return Net(cio.read_net(DEMO), pb.TEST, generator=torch.Generator().manual_seed(0))


def test_the_rule_at_demo_and_bbbc021_size(demo: Net) -> None:
    assert forward_flops(demo) == pytest.approx(0.624811008e9)  # 2 x make_net.py --summary's mult-adds
    assert not worth_compiling(demo, 64, 16)    # evaluate.py on 64 records: 4 batches
    assert not worth_compiling(demo, 160, 16)   # 10 batches, 99.97 GFLOP
    assert worth_compiling(demo, 161, 16)       # 11 batches, 100.6 GFLOP
    assert not worth_compiling(demo, 1000, 200)  # 5 batches
    bbbc021 = Net(cio.read_net(ROOT / "prototxt" / "bbbc021" / "mcnn_deploy.prototxt"), pb.TEST)
    assert forward_flops(bbbc021) == pytest.approx(51.404853248e9)
    assert [worth_compiling(bbbc021, n, 1) for n in (7, 8)] == [False, True]
    assert not worth_compiling(bbbc021, 32, 8)  # 4 batches of 411 GFLOP


def test_the_backend_compiles_only_a_long_job(demo: Net, tmp_path: Path) -> None:
    weights = cio.write_caffemodel(tmp_path / "w.caffemodel", demo.to_caffemodel())
    batch = np.random.default_rng(0).random((16, *demo.blob_shapes["data"]), dtype=np.float32)
    results = {}
    for images in (64, 1000):
        backend = EngineBackend(DEMO, weights)
        backend.expect(images, 16)
        results[images] = backend.forward(batch, ["prob"])["prob"]
        (model,) = backend._models.values()
        compiled = [m for m in model._traced.values() if m is not None]  # type: ignore[attr-defined]
        assert len(compiled) == (images == 1000)
    np.testing.assert_allclose(results[64], results[1000], rtol=0, atol=1e-6)
