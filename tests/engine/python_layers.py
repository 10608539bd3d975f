"""Python layers (``caffe.Layer`` subclasses) the engine tests load through ``python_param``.

Written as a pycaffe user would write them: NumPy on the blobs' ``data``/``diff``.
"""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np

from mcnn.engine.pylayer import Layer


class ChannelScale(Layer):
    """y = w[c] * x with a learnable per-channel weight w (blob 0), initialised from param_str ``{"init": v}``."""

    def setup(self, bottom, top):
        if len(bottom) != 1:
            raise ValueError("ChannelScale takes one bottom")
        init = json.loads(self.param_str or "{}").get("init", 1.0)
        self.blobs.add_blob(bottom[0].channels)
        self.blobs[0].data[...] = init

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def _w(self, ndim):
        return self.blobs[0].data.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self._w(bottom[0].data.ndim)

    def backward(self, top, propagate_down, bottom):
        x, dy = bottom[0].data, top[0].diff
        if propagate_down[0]:
            bottom[0].diff[...] = dy * self._w(x.ndim)
        axes = tuple(i for i in range(x.ndim) if i != 1)
        self.blobs[0].diff[...] += (dy * x).sum(axis=axes)


class SquaredErrorLoss(Layer):
    """The scalar sum((a - b)^2) / (2N), like Caffe's pyloss example (a top of shape (1,))."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        if bottom[0].count != bottom[1].count:
            raise Exception("Inputs must have the same dimension.")
        self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data.reshape(bottom[0].data.shape)
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if not propagate_down[i]:
                continue
            sign = 1 if i == 0 else -1
            bottom[i].diff[...] = (sign * self.diff * top[0].diff[0] / bottom[i].num).reshape(bottom[i].diff.shape)


class RegressionData(Layer):
    """A data layer: batches of x (N x 4) and t = x . [1, -2, 0.5, 3] (N x 1), from a seed in param_str."""

    WEIGHTS = np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)

    def setup(self, bottom, top):
        params = json.loads(self.param_str)
        self.batch = int(params["batch"])
        self.rng = np.random.default_rng(int(params["seed"]))
        if len(top) != 2:
            raise ValueError("RegressionData has two tops: data and target")

    def reshape(self, bottom, top):
        top[0].reshape(self.batch, 4)
        top[1].reshape(self.batch, 1)

    def forward(self, bottom, top):
        x = self.rng.standard_normal((self.batch, 4)).astype(np.float32)
        top[0].data[...] = x
        top[1].data[...] = (x @ self.WEIGHTS)[:, None]


class PhaseProbe(Layer):
    """Records the phase and param_str it was set up with; passes its bottom through."""

    seen: ClassVar[list[tuple[int, str]]] = []

    def setup(self, bottom, top):
        PhaseProbe.seen.append((self.phase, self.param_str))

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data


class BrokenSetup(Layer):
    """A layer whose setup rejects its parameters."""

    def setup(self, bottom, top):
        raise ValueError(f"bad param_str {self.param_str!r}: expected a number")
