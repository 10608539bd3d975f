"""TorchScript files of engine nets: the engine's own forward traced, frozen and checked after reloading.

The traced module computes exactly the engine's layers (Caffe's pooling, LRN, ...), so it needs
no conversion; it takes the input blobs in feed order (``N x C x H x W`` float32, any ``N``) and
returns a tuple of the output blobs. The file carries ``mcnn.json`` (input and output blob
names and per-image shapes) as an extra file::

    module = torch.jit.load("mcnn.pt")
    (prob,) = module(torch.from_numpy(batch))
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from mcnn.engine.net import Net
from mcnn.errors import ExportError
from mcnn.export.common import (
    CHECK_BATCHES,
    TOLERANCE,
    ExportReport,
    PathLike,
    Runner,
    checked_write,
    feed_shapes,
    output_names,
    random_feeds,
)

#: The name of the extra file with the input/output names inside a TorchScript export.
META = "mcnn.json"


class _Forward(torch.nn.Module):
    """The net as a module: input blobs (feed order) -> the tuple of the blobs ``outputs``."""

    def __init__(self, net: Net, outputs: Sequence[str]):
        super().__init__()
        self.net, self.outputs = net, list(outputs)
        self.params = torch.nn.ParameterList(list(net.parameters()))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The output blobs for the input blobs, batch first."""
        blobs = self.net.forward(dict(zip(self.net.feeds, inputs, strict=True)))
        return tuple(blobs[name] for name in self.outputs)


def torchscript_bytes(net: Net, outputs: Sequence[str] | None = None, trace_batch: int = 2) -> bytes:
    """The frozen TorchScript module of ``net`` (traced at batch ``trace_batch``, on the CPU), serialised.

    :class:`ExportError` when the net cannot be traced (e.g. a Python layer with its own control flow).
    """
    wanted = output_names(net, outputs)
    device = net.device
    net.to("cpu")  # a CPU file; the net goes back to its device afterwards
    example = tuple(torch.from_numpy(v) for v in random_feeds(net, trace_batch).values())
    meta = {"inputs": {k: list(v) for k, v in feed_shapes(net).items()}, "outputs": wanted,
            "source": os.path.basename(net.source), "batch": "dynamic (first axis)"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings of the engine's shape checks
            module = _Forward(net, wanted).eval()
            frozen = torch.jit.freeze(torch.jit.trace(module, example, check_trace=False))
    except (RuntimeError, torch.jit.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{net.source}: the net cannot be traced by TorchScript: {first}") from None
    finally:
        net.to(device)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.9 points to torch.export
        torch.jit.save(frozen, buffer, _extra_files={META: json.dumps(meta)})
    return buffer.getvalue()


class TorchScriptRunner:
    """A TorchScript export loaded with ``torch.jit.load``, called as ``feeds -> {blob: array}``."""

    def __init__(self, path: PathLike):
        extra = {META: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(os.fspath(path), map_location="cpu", _extra_files=extra)
        except RuntimeError as exc:
            raise ExportError(f"{os.fspath(path)}: torch.jit.load cannot read it: "
                              f"{str(exc).strip().splitlines()[0]}") from None
        meta = json.loads(extra[META]) if extra[META] else {}
        self.inputs: list[str] = list(meta.get("inputs", {}))
        self.outputs: list[str] = list(meta.get("outputs", []))

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs for ``feeds`` (input blob -> N x ... float32), keyed by blob name."""
        names = self.inputs or list(feeds)
        with torch.no_grad():
            values = self.module(*(torch.from_numpy(np.ascontiguousarray(feeds[n], np.float32)) for n in names))
        return {name: value.numpy() for name, value in zip(self.outputs, values, strict=True)}


def export_torchscript(net: Net, path: PathLike, *, outputs: Sequence[str] | None = None,
                       batches: Sequence[int] = CHECK_BATCHES, tolerance: float = TOLERANCE,
                       seed: int = 0) -> ExportReport:
    """Write ``net`` as a frozen TorchScript module to ``path``, kept only if, reloaded, it agrees with the engine.

    Traced at the smallest batch size absent from ``batches``, so a batch size frozen into the
    trace shows in the check; see :func:`mcnn.export.common.checked_write`.
    """
    trace_batch = next(n for n in range(1, len(batches) + 2) if n not in batches)
    data = torchscript_bytes(net, outputs, trace_batch)
    load: Callable[[Path], Runner] = TorchScriptRunner
    return checked_write(Path(path), data, net, output_names(net, outputs), "TorchScript", load, batches,
                         tolerance, seed)
