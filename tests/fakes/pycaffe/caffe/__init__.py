"""A stand-in for pycaffe in tests: the `caffe.Net` interface the toolkit uses, computed by the
toolkit's engine, with every call recorded in $FAKE_PYCAFFE_LOG."""

import json
import os

import numpy as np

TRAIN, TEST = 0, 1


def _record(*call: object) -> None:
    log = os.environ.get("FAKE_PYCAFFE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps([str(c) for c in call]) + "\n")


def set_mode_cpu() -> None:
    _record("set_mode_cpu")


def set_mode_gpu() -> None:
    _record("set_mode_gpu")


def set_device(device: int) -> None:
    _record("set_device", device)


class _Blob:
    def __init__(self, shape: tuple[int, ...]):
        self.data = np.zeros(shape, np.float32)

    def reshape(self, *shape: int) -> None:
        self.data = np.zeros(shape, np.float32)


class Net:
    def __init__(self, deploy: str, weights: str, phase: int):
        import torch

        from mcnn.engine.net import load_net

        _record("Net", deploy, weights, phase)
        self._torch = torch
        self._net = load_net(deploy, weights)
        self.inputs = list(self._net.feeds)
        self.blobs = {name: _Blob((1, *shape)) for name, shape in self._net.blob_shapes.items()}

    def forward(self) -> dict:
        _record("forward", self.blobs[self.inputs[0]].data.shape)
        with self._torch.no_grad():
            out = self._net.forward({self.inputs[0]: self.blobs[self.inputs[0]].data})
        for name, value in out.items():
            self.blobs.setdefault(name, _Blob(tuple(value.shape))).data = value.numpy()
        return {}
