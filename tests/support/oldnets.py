"""A tiny net in three spellings: current (V2), V1 (`layers { type: ENUM }`) and a V1 caffemodel.

The V1 files are written with the V1 schema by hand, independently of mcnn.caffe.upgrade, so a test
can check that the upgraded V1 form trains and evaluates exactly like the V2 form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mcnn.caffe import pb

#: The layers after the data layers: (V2 type, V1 enum name, parameters as text, blob lr/decay pairs).
BODY = (
    ("conv1", "Convolution", "CONVOLUTION", "data", "conv1", "convolution_param { num_output: 4 kernel_size: 5 "
     "stride: 2 weight_filler { type: \"gaussian\" std: 0.1 } bias_filler { type: \"constant\" value: 0.1 } }",
     ((1, 1), (2, 0))),
    ("relu1", "ReLU", "RELU", "conv1", "conv1", "", ()),
    ("pool1", "Pooling", "POOLING", "conv1", "pool1", "pooling_param { pool: MAX kernel_size: 2 stride: 2 }", ()),
    ("fc", "InnerProduct", "INNER_PRODUCT", "pool1", "fc",
     "inner_product_param { num_output: 3 weight_filler { type: \"xavier\" } }", ((1, 1), (2, 0))),
)
SCALE = 0.00390625


def _v2_layer(name: str, kind: str, bottom: str, top: str, params: str, mults: Sequence[tuple[int, int]]) -> str:
    specs = "".join(f" param {{ lr_mult: {lr} decay_mult: {decay} }}" for lr, decay in mults)
    return f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{top}"{specs} {params} }}\n'


def _v1_layer(name: str, kind: str, bottom: str, top: str, params: str, mults: Sequence[tuple[int, int]]) -> str:
    specs = "".join(f" blobs_lr: {lr}" for lr, _ in mults) + "".join(f" weight_decay: {d}" for _, d in mults)
    return f'layers {{ name: "{name}" type: {kind} bottom: "{bottom}" top: "{top}"{specs} {params} }}\n'


def train_val(train: Path, test: Path, v1: bool) -> str:
    """The train_val net reading LMDBs ``train`` and ``test``; V1 puts ``scale`` inside data_param."""
    text = 'name: "tiny"\n'
    for phase, source, batch in (("TRAIN", train, 8), ("TEST", test, 4)):
        data = f'source: "{source}" batch_size: {batch} backend: LMDB'
        if v1:
            text += (f'layers {{ name: "data" type: DATA top: "data" top: "label" include {{ phase: {phase} }} '
                     f'data_param {{ {data} scale: {SCALE} }} }}\n')
        else:
            text += (f'layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: {phase} }} '
                     f'transform_param {{ scale: {SCALE} }} data_param {{ {data} }} }}\n')
    for name, v2_type, v1_type, bottom, top, params, mults in BODY:
        text += (_v1_layer if v1 else _v2_layer)(name, v1_type if v1 else v2_type, bottom, top, params, mults)
    if v1:
        return text + ('layers { name: "loss" type: SOFTMAX_LOSS bottom: "fc" bottom: "label" top: "loss" }\n'
                       'layers { name: "accuracy" type: ACCURACY bottom: "fc" bottom: "label" top: "accuracy" '
                       'include { phase: TEST } }\n')
    return text + ('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }\n'
                   'layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy" '
                   'include { phase: TEST } }\n')


def deploy(v1: bool, channels: int = 2, size: int = 32) -> str:
    """The deploy net: V1 with the net-level input fields, V2 with an Input layer named as Caffe names it."""
    if v1:
        dims = "".join(f"input_dim: {d}\n" for d in (1, channels, size, size))
        text = f'name: "tiny"\ninput: "data"\n{dims}'
    else:
        text = (f'name: "tiny"\nlayer {{ name: "input" type: "Input" top: "data" '
                f'input_param {{ shape {{ dim: 1 dim: {channels} dim: {size} dim: {size} }} }} }}\n')
    for name, v2_type, v1_type, bottom, top, params, mults in BODY:
        text += (_v1_layer if v1 else _v2_layer)(name, v1_type if v1 else v2_type, bottom, top, params, mults)
    if v1:
        return text + 'layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }\n'
    return text + 'layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }\n'


def legacy_blob(array: np.ndarray) -> pb.BlobProto:
    """A BlobProto as old Caffe wrote it: num/channels/height/width (leading 1s), float data."""
    blob = pb.BlobProto()
    blob.num, blob.channels, blob.height, blob.width = (1,) * (4 - array.ndim) + tuple(array.shape)
    blob.data.extend(np.asarray(array, np.float32).ravel().tolist())
    return blob


def v1_caffemodel(weights: Mapping[str, Sequence[np.ndarray]]) -> pb.NetParameter:
    """A V1 caffemodel: `layers` with V1 types (a blobless data layer first, as a snapshot has) and legacy blobs."""
    model = pb.NetParameter(name="tiny")
    model.layers.add(name="data", type=pb.V1LayerParameter.DATA, top=["data", "label"])
    for name, _, v1_type, bottom, top, _, _ in BODY:
        layer = model.layers.add(name=name, type=pb.V1LayerParameter.LayerType.Value(v1_type), bottom=[bottom],
                                 top=[top])
        layer.blobs.extend(legacy_blob(a) for a in weights.get(name, ()))
    return model
