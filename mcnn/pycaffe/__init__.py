"""pycaffe's API on the engine: ``import mcnn.pycaffe as caffe`` (or ``import caffe`` through the shim).

- :class:`Net` and :class:`Blob` (NumPy arrays sharing the engine's memory), ``TRAIN``/``TEST``;
- the solvers (:class:`SGDSolver` ... :class:`AdamSolver`, :func:`get_solver`) on the engine's Trainer;
- ``set_mode_cpu``/``set_mode_gpu``/``set_device``/``set_random_seed``, ``layer_type_list``, ``has_nccl``;
- ``caffe.io``, ``caffe.net_spec`` (``layers``, ``params``, ``NetSpec``, ``to_proto``), ``Classifier``,
  and ``Layer``, the base class of Python layers (loaded on first use).

For unmodified scripts, ``PYTHONPATH=$(python -m mcnn.pycaffe --pythonpath) python script.py``
makes ``import caffe`` (and ``from caffe.proto import caffe_pb2``) resolve to this module. Nothing
named ``caffe`` is installed, so a real pycaffe is never shadowed.
"""

from __future__ import annotations

import importlib
from typing import Any

from mcnn.caffe.infer import LAYER_TYPES
from mcnn.caffe.proto import caffe_pb2
from mcnn.pycaffe.blob import Blob
from mcnn.pycaffe.mode import set_device, set_mode_cpu, set_mode_gpu, set_random_seed
from mcnn.pycaffe.net import Net
from mcnn.pycaffe.solver import (
    AdaDeltaSolver,
    AdaGradSolver,
    AdamSolver,
    NesterovSolver,
    RMSPropSolver,
    SGDSolver,
    Solver,
    get_solver,
)

TRAIN: int = caffe_pb2.TRAIN
TEST: int = caffe_pb2.TEST

#: Names loaded on first use: (module, attribute or None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "io": ("mcnn.pycaffe.io", None),
    "net_spec": ("mcnn.pycaffe.net_spec", None),
    "classifier": ("mcnn.pycaffe.classifier", None),
    "layers": ("mcnn.pycaffe.net_spec", "layers"),
    "params": ("mcnn.pycaffe.net_spec", "params"),
    "NetSpec": ("mcnn.pycaffe.net_spec", "NetSpec"),
    "to_proto": ("mcnn.pycaffe.net_spec", "to_proto"),
    "Classifier": ("mcnn.pycaffe.classifier", "Classifier"),
    "Layer": ("mcnn.engine.pylayer", "Layer"),
}


def __getattr__(name: str) -> Any:
    """Load ``io``, ``net_spec``, ``Classifier``, ``Layer``, ... when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'caffe' (mcnn.pycaffe) has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def layer_type_list() -> list[str]:
    """The layer types nets may use, sorted (Caffe's LayerRegistry order)."""
    return sorted(LAYER_TYPES)


def has_nccl() -> bool:
    """False: there is no ``caffe.NCCL``; multi-GPU training runs through ``tools/train.py -gpu``."""
    return False


__all__ = [
    "TEST",
    "TRAIN",
    "AdaDeltaSolver",
    "AdaGradSolver",
    "AdamSolver",
    "Blob",
    "NesterovSolver",
    "Net",
    "RMSPropSolver",
    "SGDSolver",
    "Solver",
    "caffe_pb2",
    "get_solver",
    "has_nccl",
    "layer_type_list",
    "set_device",
    "set_mode_cpu",
    "set_mode_gpu",
    "set_random_seed",
]
