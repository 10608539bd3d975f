"""pycaffe's ``caffe.Classifier``: class probabilities for H x W x K images from a deploy net.

Images (as :func:`mcnn.pycaffe.io.load_image` gives them) are resized to ``image_dims``, cut to
the net's input size (10 crops, averaged, with ``oversample``; else the centre crop), turned into
net inputs by a :class:`mcnn.pycaffe.io.Transformer` (transpose (2, 0, 1), then the optional
``channel_swap``, ``raw_scale``, ``mean``, ``input_scale``) and run in batches of the net's size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError
from mcnn.pycaffe import io as pio
from mcnn.pycaffe.net import Net

PathLike = str | os.PathLike[str]


class Classifier(Net):
    """A TEST-phase :class:`mcnn.pycaffe.net.Net` with pycaffe's image preprocessing and :meth:`predict`.

    ``image_dims`` (H, W) is the size images are resized to before cropping (default: the net's
    input size); ``mean`` (per channel or C x H x W), ``input_scale``, ``raw_scale`` and
    ``channel_swap`` configure the transformer of the net's first input.
    """

    def __init__(self, model_file: PathLike, pretrained_file: PathLike | None = None,
                 image_dims: Sequence[int] | None = None, mean: np.ndarray | None = None,
                 input_scale: float | None = None, raw_scale: float | None = None,
                 channel_swap: Sequence[int] | None = None):
        super().__init__(model_file, pb.TEST, weights=pretrained_file)
        if not self.inputs:
            raise ConfigError(f"{os.fspath(model_file)}: Classifier needs a deploy net with an input blob")
        name = self.inputs[0]
        shape = tuple(self.blobs[name].data.shape)
        if len(shape) != 4:
            raise ConfigError(f"{os.fspath(model_file)}: Classifier needs an N x C x H x W input, "
                              f"{name!r} is {shape}")
        self.transformer = pio.Transformer({name: shape})
        self.transformer.set_transpose(name, (2, 0, 1))
        if mean is not None:
            self.transformer.set_mean(name, mean)
        if input_scale is not None:
            self.transformer.set_input_scale(name, input_scale)
        if raw_scale is not None:
            self.transformer.set_raw_scale(name, raw_scale)
        if channel_swap is not None:
            self.transformer.set_channel_swap(name, channel_swap)
        self.crop_dims = np.array(shape[2:])
        self.image_dims = np.array(image_dims if image_dims is not None else self.crop_dims)

    def _center_crops(self, images: np.ndarray) -> np.ndarray:
        """The centre ``crop_dims`` window of each image (N x H x W x K)."""
        ch, cw = (int(d) for d in self.crop_dims)
        top = int(self.image_dims[0] / 2.0 - ch / 2.0)
        left = int(self.image_dims[1] / 2.0 - cw / 2.0)
        return images[:, top:top + ch, left:left + cw, :]

    def predict(self, inputs: Sequence[np.ndarray], oversample: bool = True) -> np.ndarray:
        """Class scores (N x classes, the net's first output) for ``inputs``, H x W x K images.

        With ``oversample`` each image's 10 crops (corners, centre, mirrored) are averaged.
        """
        if len(inputs) == 0:
            raise ConfigError("Classifier.predict: no images given")
        if any(int(d) < int(c) for d, c in zip(self.image_dims, self.crop_dims, strict=True)):
            raise ConfigError(f"Classifier: image_dims {tuple(self.image_dims)} are smaller than the net's "
                              f"input {tuple(self.crop_dims)}")
        channels = np.asarray(inputs[0]).shape[2]
        resized = np.zeros((len(inputs), int(self.image_dims[0]), int(self.image_dims[1]), channels),
                           dtype=np.float32)
        for i, image in enumerate(inputs):
            resized[i] = pio.resize_image(image, self.image_dims)
        crops = pio.oversample(resized, self.crop_dims) if oversample else self._center_crops(resized)
        name = self.inputs[0]
        batch = np.stack([self.transformer.preprocess(name, crop) for crop in crops])
        scores = self.forward_all(**{name: batch})[self.outputs[0]]
        if oversample:
            scores = scores.reshape(len(inputs), 10, -1).mean(axis=1)
        return scores
