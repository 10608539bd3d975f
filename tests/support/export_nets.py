"""Nets for the export tests: committed deploy nets with fresh weights, and their reduced inputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.engine.net import Net
from mcnn.export import with_input_shape
from tests.support import ROOT

ARCHS = ("mcnn", "alexnet", "googlenet")
DATASETS = tuple(sorted(p.name for p in (ROOT / "prototxt").iterdir() if (p / "mcnn_deploy.prototxt").is_file()))


def deploy_path(dataset: str, arch: str) -> Path:
    """The committed deploy prototxt of ``arch`` for ``dataset``."""
    return ROOT / "prototxt" / dataset / f"{arch}_deploy.prototxt"


def input_shape(path: Path) -> tuple[int, ...]:
    """Per-image input shape (C, H, W) written in the deploy prototxt ``path``."""
    layer = next(layer for layer in cio.read_net(path).layer if layer.type == "Input")
    return tuple(int(d) for d in layer.input_param.shape[0].dim[1:])


def fresh_net(param: pb.NetParameter | Path, seed: int = 0, shape: Sequence[int] | None = None,
              source: str = "net") -> Net:
    """The TEST net of ``param`` (a NetParameter or a prototxt), filled from ``seed``, with
    non-zero biases (uniform in +-0.1) so that every learnable blob shows in the outputs.

    ``shape`` replaces the per-image input shape.
    """
    if isinstance(param, Path):
        source = str(param)
        param = cio.read_net(param)
    if shape is not None:
        param = with_input_shape(param, shape, source)
    net = Net(param, pb.TEST, generator=torch.Generator().manual_seed(seed), source=source)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for blob in net.learnable():
            if blob.index == 1:
                blob.tensor.copy_(torch.rand(blob.tensor.shape, generator=gen) * 0.2 - 0.1)
    return net
