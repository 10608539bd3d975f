"""Every committed deploy net at its own full size: exported, run in onnxruntime at batch 1 and 4,
the engine's probabilities within 1e-4 (the export's own check, on random standard-normal inputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcnn.export import export_onnx
from tests.support.export_nets import ARCHS, DATASETS, deploy_path, fresh_net

COMMITTED = [(d, a) for d in DATASETS for a in ARCHS if deploy_path(d, a).is_file()]


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "arch"), COMMITTED, ids=[f"{d}/{a}" for d, a in COMMITTED])
def test_committed_deploy_net_matches_the_engine_at_full_size(dataset: str, arch: str, tmp_path: Path) -> None:
    net = fresh_net(deploy_path(dataset, arch), seed=2)
    report = export_onnx(net, tmp_path / "net.onnx", batches=(1, 4))
    assert report.batches == (1, 4) and report.outputs == ["prob"]
    assert report.worst <= 1e-4
