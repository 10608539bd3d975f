"""What both exporters share: the net to export, the random check batches and the checked write.

An exported file is written under a temporary name next to its target, run on random batches
against the engine, and renamed only when every output agrees within the tolerance; otherwise
it is removed and :class:`mcnn.errors.ExportError` says by how much and where it disagreed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mcnn.caffe import io as cio
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.net import Net
from mcnn.errors import BadInputError, ConfigError, ExportError, WeightsError
from mcnn.fsutil import atomic_write_bytes

PathLike = str | os.PathLike[str]

#: Largest difference (absolute, or relative to the output's magnitude where that exceeds 1) an
#: exported file may show against the engine before it is refused.
TOLERANCE = 1e-4

#: Batch sizes of the check: 1 and one more, so a batch size frozen into the file shows.
CHECK_BATCHES = (1, 2)

#: A forward of an exported file: feeds (blob -> N x ... float32) -> outputs (blob -> array).
Runner = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class ExportReport:
    """The outcome of one checked export.

    ``worst`` is the largest difference over ``outputs`` and ``batches`` (see :data:`TOLERANCE`),
    ``worst_output``/``worst_batch`` where it occurred; ``inputs`` maps each input blob to its
    per-image shape (the batch axis is dynamic).
    """

    path: Path
    format: str
    inputs: dict[str, tuple[int, ...]]
    outputs: list[str]
    batches: tuple[int, ...]
    worst: float
    worst_output: str
    worst_batch: int

    def summary(self) -> str:
        """One line: the file, its inputs and outputs, and the check against the engine."""
        feeds = ", ".join(f"{name} N x {' x '.join(map(str, shape))}" for name, shape in self.inputs.items())
        return (f"wrote {self.path} ({self.format}; input {feeds}; outputs {', '.join(self.outputs)}): agrees with "
                f"the engine at batch {', '.join(map(str, self.batches))}, worst difference {self.worst:.3g} "
                f"({self.worst_output!r}, batch {self.worst_batch})")


def with_input_shape(param: pb.NetParameter, shape: Sequence[int], source: str = "net") -> pb.NetParameter:
    """A copy of ``param`` whose single input blob has the per-image ``shape`` (e.g. C, H, W).

    Works on Input layers and the deprecated net-level ``input_shape``/``input_dim``; the batch
    dimension written in the file is kept (exported files have a dynamic one anyway).
    :class:`ConfigError` when the net has no input or several.
    """
    out = pb.NetParameter()
    out.CopyFrom(param)
    dims = [int(d) for d in shape]
    if not dims or min(dims) <= 0:
        raise ConfigError(f"--input-shape {','.join(map(str, dims))}: expected positive sizes, e.g. 2,128,128")
    inputs = [layer for layer in out.layer if layer.type == "Input"]
    count = sum(len(layer.top) for layer in inputs) + len(out.input)
    if count != 1:
        raise ConfigError(f"{source}: --input-shape needs a net with exactly one input blob, this one has {count}")
    if inputs:
        target = inputs[0].input_param
        batch = target.shape[0].dim[0] if len(target.shape) and len(target.shape[0].dim) else 1
        del target.shape[:]
        target.shape.add().dim.extend([batch, *dims])
    elif len(out.input_shape):
        batch = out.input_shape[0].dim[0] if len(out.input_shape[0].dim) else 1
        del out.input_shape[0].dim[:]
        out.input_shape[0].dim.extend([batch, *dims])
    else:
        if len(dims) != 3:
            raise ConfigError(f"{source}: the net's input_dim takes C,H,W; --input-shape has {len(dims)} sizes")
        batch = out.input_dim[0] if len(out.input_dim) else 1
        del out.input_dim[:]
        out.input_dim.extend([batch, *dims])
    return out


def check_layers(param: pb.NetParameter, supported: Sequence[str], source: str, what: str) -> None:
    """:class:`ExportError` naming the first TEST-phase layer whose type is not in ``supported``.

    Run on the prototxt before the net is built or its weights read: a net that cannot be
    exported is refused before the expensive work.
    """
    feeds = {"Input", "Data", "ImageData", "HDF5Data", "MemoryData"}
    for layer in filter_net(param, pb.TEST).layer:
        if layer.type not in supported and layer.type not in feeds:
            raise ExportError(f"{source}: layer {layer.name!r}: type {layer.type!r} cannot be expressed in {what} "
                              f"by this exporter (it handles {', '.join(sorted(supported))})")


def load_export_net(model: PathLike, weights: PathLike, input_shape: Sequence[int] | None = None,
                    supported: Sequence[str] | None = None, what: str = "ONNX") -> Net:
    """The TEST-phase net of the deploy prototxt ``model`` with the caffemodel ``weights``, on the CPU.

    ``input_shape`` replaces the per-image input shape (see :func:`with_input_shape`); the
    weights must fit the net it gives. ``supported`` (layer types) refuses a net the exporter
    cannot express before anything is built (:func:`check_layers`).
    """
    for path, what_file in ((model, "deploy prototxt"), (weights, "caffemodel")):
        if not Path(path).is_file():
            raise BadInputError(os.fspath(path), f"no such {what_file} file")
    source = os.fspath(model)
    param = cio.read_net(model)
    if supported is not None:
        check_layers(param, supported, source, what)
    if input_shape is not None:
        param = with_input_shape(param, input_shape, source)
    net = Net(param, pb.TEST, source=source, generator=torch.Generator().manual_seed(0))
    trained = cio.read_caffemodel(weights)
    net.load_weights(trained, source=os.fspath(weights))
    given = {layer.name for layer in trained.layer if len(layer.blobs)}
    missing = [entry.param.name for entry in net.entries if entry.blobs and entry.param.name not in given]
    if missing:
        raise WeightsError(f"{os.fspath(weights)}: no weights for layer {missing[0]!r} of {source} (the export "
                           "would carry its random initial values)")
    return net


def feed_shapes(net: Net) -> dict[str, tuple[int, ...]]:
    """Per-image shape of each input blob of ``net``, in feed order."""
    return {name: tuple(net.blob_shapes[name]) for name in net.feeds}


def output_names(net: Net, outputs: Sequence[str] | None) -> list[str]:
    """``outputs`` (blob names, checked) or the net's outputs (blobs no layer consumes)."""
    if not outputs:
        return list(net.outputs)
    unknown = [name for name in outputs if name not in net.blob_shapes]
    if unknown:
        raise ConfigError(f"{net.source}: --outputs {unknown[0]!r} is not a blob of the net "
                          f"(its outputs: {', '.join(net.outputs)})")
    return list(dict.fromkeys(outputs))


def random_feeds(net: Net, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard-normal float32 batches (``batch`` x per-image shape) for every input of ``net``."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal((batch, *shape), dtype=np.float32) for name, shape in feed_shapes(net).items()}


def engine_outputs(net: Net, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
    """The engine's TEST-phase values of the blobs ``outputs`` for ``feeds``."""
    with torch.no_grad():
        blobs = net.forward({name: torch.from_numpy(value) for name, value in feeds.items()})
    return {name: blobs[name].float().cpu().numpy() for name in outputs}


def difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours - theirs|, divided by max |ours| where that exceeds 1 (inf on a shape mismatch or NaN)."""
    if ours.shape != theirs.shape:
        return float("inf")
    if ours.size == 0:
        return 0.0
    worst = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
    scale = max(1.0, float(np.max(np.abs(ours))))
    return worst / scale if np.isfinite(worst) else float("inf")


def compare(net: Net, run: Runner, outputs: Sequence[str], batches: Sequence[int] = CHECK_BATCHES,
            seed: int = 0) -> tuple[float, str, int]:
    """(worst difference, its output, its batch size) of ``run`` against the engine on random batches."""
    worst: tuple[float, str, int] = (0.0, outputs[0], batches[0])
    for i, batch in enumerate(batches):
        feeds = random_feeds(net, batch, seed + i)
        want = engine_outputs(net, feeds, outputs)
        got = run(feeds)
        for name in outputs:
            diff = difference(want[name], np.asarray(got[name]))
            if not diff <= worst[0]:
                worst = (diff, name, batch)
    return worst


def checked_write(path: PathLike, data: bytes, net: Net, outputs: Sequence[str], fmt: str,
                  runner: Callable[[Path], Runner], batches: Sequence[int] = CHECK_BATCHES,
                  tolerance: float = TOLERANCE, seed: int = 0) -> ExportReport:
    """Write ``data`` to ``path`` only if the file agrees with the engine; the :class:`ExportReport`.

    ``runner(tmp)`` loads the file from its temporary name and returns its forward. When the
    worst difference exceeds ``tolerance`` the temporary file is removed and
    :class:`ExportError` raised; an existing file at ``path`` is left as it was.
    """
    target = Path(path)
    found: list[tuple[float, str, int]] = []

    def agrees(tmp: Path) -> None:
        found.append(compare(net, runner(tmp), outputs, batches, seed))
        worst, name, batch = found[0]
        if not worst <= tolerance:
            raise ExportError(f"{target}: the {fmt} file disagrees with the engine by {worst:.3g} (more than "
                              f"{tolerance:g}) on output {name!r} at batch {batch}; not written")

    atomic_write_bytes(target, data, check=agrees)
    worst, name, batch = found[0]
    return ExportReport(path=target, format=fmt, inputs=feed_shapes(net), outputs=list(outputs),
                        batches=tuple(batches), worst=worst, worst_output=name, worst_batch=batch)
