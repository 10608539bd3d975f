"""Python layers as pycaffe users write them (loaded by python_layer.py through python_param)."""

import json

import caffe
import numpy as np


class RegressionData(caffe.Layer):
    """A data layer: x (N x 3) and t = x . [2, -1, 0.5] + 1 (N x 1); param_str {"batch": N, "seed": s}."""

    def setup(self, bottom, top):
        params = json.loads(self.param_str)
        self.batch = params["batch"]
        self.rng = np.random.default_rng(params["seed"])

    def reshape(self, bottom, top):
        top[0].reshape(self.batch, 3)
        top[1].reshape(self.batch, 1)

    def forward(self, bottom, top):
        x = self.rng.standard_normal((self.batch, 3))
        top[0].data[...] = x
        top[1].data[...] = (x @ np.array([2.0, -1.0, 0.5]) + 1.0)[:, None]

    def backward(self, top, propagate_down, bottom):
        pass


class EuclideanLoss(caffe.Layer):
    """Caffe's pyloss example: sum((a - b)^2) / (2N)."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        if bottom[0].count != bottom[1].count:
            raise Exception("Inputs must have the same dimension.")
        self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if not propagate_down[i]:
                continue
            sign = 1 if i == 0 else -1
            bottom[i].diff[...] = sign * self.diff / bottom[i].num


class Picky(caffe.Layer):
    """A layer whose setup refuses its param_str."""

    def setup(self, bottom, top):
        raise ValueError(f"param_str must be 'ok', got {self.param_str!r}")
