"""Engine nets leaving the toolkit: ONNX (checked in onnxruntime) and TorchScript (checked after reloading).

- :mod:`mcnn.export.common`: the net to export (:func:`load_export_net`, ``--input-shape``), the
  random check batches and the write that keeps a file only when it agrees with the engine.
- :mod:`mcnn.export.onnx_graph`: one converter per Caffe layer type, spelling out Caffe's pooling
  and LRN rules; :mod:`mcnn.export.onnx_export`: the model, its check and :class:`OnnxRunner`.
- :mod:`mcnn.export.torchscript`: the engine's forward traced and frozen.

onnx and onnxruntime (the ``export`` extra) are imported only by the ONNX functions.
"""

from mcnn.export.common import CHECK_BATCHES, TOLERANCE, ExportReport, load_export_net, with_input_shape
from mcnn.export.onnx_export import MIN_OPSET, OnnxRunner, export_onnx, onnx_model, run_onnx, supported_types
from mcnn.export.torchscript import TorchScriptRunner, export_torchscript

__all__ = [
    "CHECK_BATCHES",
    "MIN_OPSET",
    "TOLERANCE",
    "ExportReport",
    "OnnxRunner",
    "TorchScriptRunner",
    "export_onnx",
    "export_torchscript",
    "load_export_net",
    "onnx_model",
    "run_onnx",
    "supported_types",
    "with_input_shape",
]
