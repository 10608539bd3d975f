"""An independent check of our Caffe files with OpenCV's Caffe importer (OpenCV 4.x).

OpenCV ships its own reader of Caffe's formats; a deploy prototxt plus caffemodel that it
loads and runs are valid Caffe files by a second implementation. OpenCV 5 removed the
importer, hence the ``opencv-python-headless<5`` pin of the test extra.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from mcnn.caffe.io import weights_to_caffemodel, write_caffemodel
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.nets.summary import summarize

PathLike = str | os.PathLike[str]


def random_weights(net: pb.NetParameter, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """He-scaled Gaussian weights and small biases for every learnable layer of a deploy net.

    Values repeat a block of 2**20 Gaussian draws: enough variety for a forward check,
    and cheap for the 60-million-parameter baselines.
    """
    rng = np.random.default_rng(seed)
    block = rng.standard_normal(1 << 20, dtype=np.float32)
    weights = {}
    for row in summarize(net).rows:
        if not row.param_shapes:
            continue
        arrays = []
        for shape in row.param_shapes:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            std = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.01
            offset = int(rng.integers(block.size))
            values = np.resize(np.roll(block, offset), shape)
            values *= np.float32(std)
            arrays.append(values)
        weights[row.name] = arrays
    return weights


def write_random_caffemodel(net: pb.NetParameter, path: PathLike, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Write a caffemodel with :func:`random_weights` for ``net``; returns the weights."""
    weights = random_weights(net, seed)
    write_caffemodel(path, weights_to_caffemodel(net, weights))
    return weights


def opencv_forward(deploy: PathLike, caffemodel: PathLike, image: np.ndarray,
                   outputs: Sequence[str] = ()) -> Mapping[str, np.ndarray]:
    """Run a deploy net with OpenCV's Caffe importer on an N x C x H x W float32 batch."""
    import cv2

    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        raise RuntimeError(f"OpenCV {cv2.__version__} has no Caffe importer; install opencv-python-headless<5")
    net = cv2.dnn.readNetFromCaffe(os.fspath(deploy), os.fspath(caffemodel))
    net.setInput(np.ascontiguousarray(image, dtype=np.float32))
    names = list(outputs) or list(net.getUnconnectedOutLayersNames())
    blobs = net.forward(names)
    return dict(zip(names, blobs, strict=True))
