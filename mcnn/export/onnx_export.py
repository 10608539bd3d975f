"""ONNX files of engine nets, checked in onnxruntime before they are kept.

Typical use::

    net = load_export_net("mcnn_deploy.prototxt", "mcnn_iter_1000.caffemodel")
    report = export_onnx(net, "mcnn.onnx")          # ExportError if onnxruntime disagrees
    probs = run_onnx("mcnn.onnx", {"data": batch})["prob"]

onnx, onnxruntime (and onnxscript) are the ``export`` extra; they are imported when needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import mcnn
from mcnn.engine.net import Net
from mcnn.errors import ConfigError, ExportError
from mcnn.export.common import (
    CHECK_BATCHES,
    TOLERANCE,
    ExportReport,
    PathLike,
    checked_write,
    output_names,
)

#: The lowest opset written: Softmax along one axis (13) and the operator set the converters were checked with.
MIN_OPSET = 17

_EXTRA = "needs the 'export' extra: pip install 'mcnn[export]'"


def require_onnx() -> tuple[Any, Any]:
    """The ``onnx`` and ``onnxruntime`` modules; :class:`ConfigError` naming the extra when missing."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(f"ONNX export {_EXTRA} ({exc.name} is missing)") from None
    return onnx, onnxruntime


def supported_types() -> list[str]:
    """The Caffe layer types the ONNX exporter can express (besides the input layers)."""
    require_onnx()
    from mcnn.export.onnx_graph import CONVERTERS

    return sorted(CONVERTERS)


def check_opset(opset: int) -> int:
    """``opset`` if this exporter and the installed onnx can write it; :class:`ConfigError` otherwise."""
    onnx, _ = require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ConfigError(f"--opset {opset}: expected {MIN_OPSET} .. {newest} (onnx {onnx.__version__})")
    return opset


#: ONNX files are single protobufs, which cannot exceed 2 GiB.
MAX_BYTES = 2**31 - 2**20


def _model(net: Net, outputs: Sequence[str] | None, opset: int) -> tuple[Any, dict[str, str]]:
    """The model (not yet validated) and, per output blob, its graph output name (see :func:`onnx_model`)."""
    onnx, _ = require_onnx()
    from mcnn.export.onnx_graph import build_graph

    check_opset(opset)
    size = 4 * net.param_count()
    if size > MAX_BYTES:
        raise ExportError(f"{net.source}: the weights take {size / 2**30:.1f} GiB, more than an ONNX file holds "
                          "(2 GiB); export a smaller input (--input-shape) or TorchScript")
    wanted = output_names(net, outputs)
    graph, names, builder = build_graph(net, wanted)
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="mcnn",
                                   producer_version=mcnn.__version__,
                                   doc_string=f"{net.name or 'net'} from {net.source} (Caffe semantics, mcnn)")
    builder.fill(model.graph)
    model.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    onnx.helper.set_model_props(model, {"mcnn.source": os.path.basename(net.source),
                                        "mcnn.outputs": ",".join(names[b] for b in wanted)})
    return model, names


def _validated(model: Any, source: str) -> bytes:
    """The serialised ``model`` after onnx's checker and strict shape inference passed it."""
    onnx, _ = require_onnx()
    data = model.SerializeToString()
    try:
        onnx.checker.check_model(data, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"{source}: the ONNX graph does not validate: {first}") from None
    return data


def onnx_model(net: Net, outputs: Sequence[str] | None = None, opset: int = MIN_OPSET) -> Any:
    """The checked ``onnx.ModelProto`` of ``net`` (its outputs, or the blobs ``outputs``), dynamic batch axis.

    The model's metadata names the source prototxt and the output blobs; its IR version is the
    lowest the opset allows, so older runtimes read it too. :class:`ExportError` names a layer
    that cannot be expressed.
    """
    model = _model(net, outputs, opset)[0]
    _validated(model, net.source)
    return model


class OnnxRunner:
    """An onnxruntime CPU session of one file, called as ``feeds (blob -> N x ... float32) -> {blob: array}``.

    ``names`` maps output blobs to graph output names where they differ; ``threads`` limits
    onnxruntime's intra-op threads (0: its default).
    """

    def __init__(self, model: PathLike | bytes, names: Mapping[str, str] | None = None, threads: int = 0):
        _, ort = require_onnx()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else os.fspath(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types, one line is enough
            where = "the model" if isinstance(model, bytes) else os.fspath(model)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{where}: onnxruntime cannot load it: {first}") from None
        self.names = dict(names or {})
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The graph outputs for ``feeds``, keyed by blob name (float32 arrays, batch first)."""
        blob_of = {onnx_name: blob for blob, onnx_name in self.names.items()}
        values = self.session.run(self.outputs, {k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()})
        return {blob_of.get(name, name): value for name, value in zip(self.outputs, values, strict=True)}


def run_onnx(path: PathLike, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the ONNX file ``path`` in onnxruntime on ``feeds`` (input blob -> N x ... float32)."""
    return OnnxRunner(path)(feeds)


def export_onnx(net: Net, path: PathLike, *, outputs: Sequence[str] | None = None, opset: int = MIN_OPSET,
                batches: Sequence[int] = CHECK_BATCHES, tolerance: float = TOLERANCE, seed: int = 0) -> ExportReport:
    """Write ``net`` as ONNX to ``path``, kept only if onnxruntime agrees with the engine.

    Both run on random standard-normal batches of each size in ``batches``; every output must
    agree within ``tolerance`` (:func:`mcnn.export.common.difference`), else :class:`ExportError`
    and nothing is written. Returns the :class:`ExportReport` (worst difference, where).
    """
    model, names = _model(net, outputs, opset)
    data = _validated(model, net.source)
    return checked_write(Path(path), data, net, list(names), f"ONNX opset {opset}",
                         lambda tmp: OnnxRunner(tmp, names), batches, tolerance, seed)
