"""bench/pooling.py: the demo M-CNN's tiling MAX pools, both ways, equal outputs, a table per layer."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.engine.net import Net
from tests.support.scripts import load_script

pooling_bench = load_script("bench/pooling.py", "pooling_bench")
DEMO = Path(__file__).resolve().parents[2] / "prototxt" / "demo" / "mcnn_deploy.prototxt"


def test_finds_the_subsampling_pools_of_the_demo_net() -> None:
    net = Net(cio.read_net(DEMO), pb.TEST, generator=torch.Generator().manual_seed(0))
    found = {name: (shape, w.kernel) for name, shape, w, _, _ in pooling_bench.tiled_layers(net)}
    assert found["pool_in_s2"] == ((1, 2, 128, 128), (2, 2))
    assert found["pool_out_s1"] == ((1, 16, 128, 128), (64, 64))  # the full-size pathway pooled to 2 x 2
    assert all(name.startswith("pool_") for name in found)


def test_run_writes_one_row_a_layer_and_the_total(tmp_path: Path) -> None:
    args = pooling_bench.get_args_parser().parse_args(["--net", str(DEMO), "--repeat", "1", "--out", str(tmp_path)])
    assert pooling_bench.main(args) == 0
    layers = json.loads(next(tmp_path.glob("pooling-*.json")).read_text())["layers"]
    assert len(layers) >= 6 and all(r["max_pool2d_ms"] > 0 and r["tiled_ms"] > 0 for r in layers)
    table = next(tmp_path.glob("pooling-*.md")).read_text()
    assert table.count("\n| pool_") == len(layers) and "\n| all |" in table
