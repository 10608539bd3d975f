"""The layer-by-layer passes of a pycaffe :class:`~mcnn.pycaffe.net.Net`.

Forward: each layer runs on its own autograd leaves of its bottoms, so its graph ends at the
layer; the tops are copied into the blobs at the end. Backward: layer by layer from the top
diffs in the blobs (Caffe's Backward), a bottom diff is written by the last consumer of that
version of the blob and added to by the earlier ones (what Caffe's Split layers do); the
learnable blobs' gradients are added to their diffs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.data import FEED_TYPES
from mcnn.errors import ShapeError

if TYPE_CHECKING:
    from mcnn.engine.net import _Entry
    from mcnn.pycaffe.net import Net


@dataclass
class LayerPass:
    """What one layer's forward left for backward: its bottoms (autograd leaves), their versions, its tops."""

    bottoms: list[torch.Tensor]
    versions: list[int]
    tops: list[torch.Tensor]


def _layer_forward(net: Net, entry: _Entry, leaves: list[torch.Tensor], train: bool) -> list[torch.Tensor]:
    """One engine layer under autograd; a torch error becomes a ShapeError naming the layer."""
    with torch.enable_grad():
        try:
            return list(entry.impl.forward(leaves, [b.tensor for b in entry.blobs], train))  # type: ignore[union-attr]
        except (RuntimeError, IndexError) as exc:
            text = str(exc).strip()
            first_line = text.splitlines()[0] if text else type(exc).__name__
            raise ShapeError(f"{net._source}: layer {entry.param.name!r} ({entry.param.type}): {first_line}") from None


def forward_range(net: Net, first: int, last: int) -> None:
    """Forward through the net's layers ``first`` .. ``last``, keeping each layer's graph for backward."""
    device = net._engine.device
    values: dict[str, torch.Tensor] = {}
    produced: list[str] = []
    train = net._engine.phase == pb.TRAIN
    for i in range(first, last + 1):
        entry = net._engine.entries[i]
        if entry.impl is None:
            if entry.param.type in FEED_TYPES:
                for top, value in net._data_batch(entry.param.name).items():
                    values[top] = value.to(device)
                    produced.append(top)
            continue
        sources = []
        for b in entry.bottoms:
            if b not in values:  # not made in this pass: the blob's current value
                values[b] = net._blobs[b]._value(device)
            sources.append(values[b])
        leaves = [v.detach().requires_grad_(v.is_floating_point()) for v in sources]
        tops = _layer_forward(net, entry, leaves, train)
        net._record[i] = LayerPass(leaves, [id(v) for v in sources], tops)
        for top, value in zip(entry.tops, tops, strict=False):
            values[top] = value
            produced.append(top)
    for name in dict.fromkeys(produced):
        if net._blobs[name]._store(values[name]):
            net._reset_loss_diff(name)


def _layer_backward(net: Net, i: int, record: LayerPass, written: set[int]) -> None:
    """Backward through layer ``i`` from its tops' diffs; ``written``: blob versions already given a diff."""
    entry = net._engine.entries[i]
    tops = [(t, name) for t, name in zip(record.tops, entry.tops, strict=False) if t.requires_grad]
    bottoms = [k for k, leaf in enumerate(record.bottoms) if leaf.requires_grad]
    params = [(j, b) for j, b in enumerate(entry.blobs) if b.lr_mult != 0 and b.tensor.requires_grad]
    if not tops or not (bottoms or params):
        return
    seeds = [net._blobs[name]._diff.to(t.device).reshape(t.shape) for t, name in tops]
    inputs = [record.bottoms[k] for k in bottoms] + [b.tensor for _, b in params]
    grads = torch.autograd.grad([t for t, _ in tops], inputs, seeds, retain_graph=True, allow_unused=True)
    for k, grad in zip(bottoms, grads, strict=False):
        if grad is not None:
            version = record.versions[k]
            net._blobs[entry.bottoms[k]]._store_diff(grad, accumulate=version in written)
            written.add(version)
    for (j, _), grad in zip(params, grads[len(bottoms):], strict=True):
        if grad is not None:
            net._layer_views[i].blobs[j]._store_diff(grad, accumulate=True)


def backward_range(net: Net, last: int, first: int) -> None:
    """Backward from layer ``last`` down to layer ``first`` over the graph of the last forward."""
    written: set[int] = set()
    for i in range(last, first - 1, -1):
        record = net._record[i]
        if record is not None:
            _layer_backward(net, i, record, written)
