"""pycaffe's ``forward_all`` and ``forward_backward_all``: any number of items, one net batch at a time.

The items are cut into batches of the net's batch size (the first input blob's axis 0); the
last batch is padded with zeros and the padding is dropped from the results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import zip_longest
from typing import TYPE_CHECKING

import numpy as np

from mcnn.errors import ShapeError

if TYPE_CHECKING:
    from mcnn.pycaffe.net import Net


def _count(arrays: Mapping[str, np.ndarray]) -> int:
    counts = {name: len(a) for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise ShapeError(f"arrays of different lengths: {counts}")
    return next(iter(counts.values())) if counts else 0


def batches(net: Net, arrays: Mapping[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """Batches of ``arrays`` (equal lengths) sized for ``net``; the last one zero-padded."""
    arrays = {name: np.asarray(a, dtype=np.float32) for name, a in arrays.items()}
    count = _count(arrays)
    first = net.inputs[0] if net.inputs else next(iter(net.blobs))
    size = net.blobs[first].shape[0] if net.blobs[first].shape else 1
    for start in range(0, count - count % size, size):
        yield {name: a[start:start + size] for name, a in arrays.items()}
    remainder = count % size
    if remainder:
        yield {name: np.concatenate([a[count - remainder:], np.zeros((size - remainder, *a.shape[1:]), np.float32)])
               for name, a in arrays.items()}


def _collect(parts: dict[str, list[np.ndarray]], keep: int | None) -> dict[str, np.ndarray]:
    out = {}
    for name, arrays in parts.items():
        joined = np.concatenate([a.reshape(1) if a.ndim == 0 else a for a in arrays]) if arrays else np.zeros(0)
        out[name] = joined[:keep] if keep is not None else joined
    return out


def forward_all(net: Net, blobs: Sequence[str] | None, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Net outputs (and ``blobs``) for every item of ``inputs``, stacked along axis 0."""
    names = set(net.outputs) | set(blobs or [])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    if not inputs:
        outs = net.forward(blobs=list(blobs or []))
        return {name: value.copy() for name, value in outs.items()}
    for batch in batches(net, inputs):
        for name, value in net.forward(blobs=list(blobs or []), **batch).items():
            parts[name].append(value.copy())
    return _collect(parts, _count(inputs))


def forward_backward_all(net: Net, blobs: Sequence[str] | None, diffs: Sequence[str] | None,
                         arrays: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Forward then backward every item: keyword arrays name input blobs (data) and output blobs (diffs)."""
    unknown = set(arrays) - set(net.inputs) - set(net.outputs)
    if unknown:
        raise ShapeError(f"forward_backward_all: {sorted(unknown)} are neither inputs {net.inputs} "
                         f"nor outputs {net.outputs} of the net")
    inputs = {name: a for name, a in arrays.items() if name in net.inputs}
    top_diffs = {name: a for name, a in arrays.items() if name in net.outputs}
    outs: dict[str, list[np.ndarray]] = {name: [] for name in set(net.outputs) | set(blobs or [])}
    grads: dict[str, list[np.ndarray]] = {name: [] for name in set(net.inputs) | set(diffs or [])}
    for fwd, bwd in zip_longest(batches(net, inputs), batches(net, top_diffs), fillvalue={}):
        for name, value in net.forward(blobs=list(blobs or []), **fwd).items():
            outs[name].append(value.copy())
        for name, value in net.backward(diffs=list(diffs or []), **bwd).items():
            grads[name].append(value.copy())
    keep = _count(inputs) if inputs else (_count(top_diffs) if top_diffs else None)
    return _collect(outs, keep), _collect(grads, keep)
