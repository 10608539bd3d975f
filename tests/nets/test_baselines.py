"""AlexNet and GoogLeNet follow the BVLC reference models; adaptations to screening data."""

from __future__ import annotations

import collections

import pytest

from mcnn.caffe import pb
from mcnn.nets import DataSpec, build_net, summarize

IMAGENET_ALEXNET = DataSpec(channels=3, height=256, width=256, classes=1000, crop=227)
IMAGENET_GOOGLENET = DataSpec(channels=3, height=256, width=256, classes=1000, crop=224)


def test_alexnet_reference_shapes_and_parameter_count() -> None:
    summary = summarize(build_net("alexnet", IMAGENET_ALEXNET, deploy=True).net)
    shapes = {r.name: r.shape for r in summary.rows}
    assert shapes["conv1"] == (96, 55, 55)
    assert shapes["pool1"] == (96, 27, 27)
    assert shapes["pool2"] == (256, 13, 13)
    assert shapes["pool5"] == (256, 6, 6)
    assert {r.name: r for r in summary.rows}["fc6"].param_shapes[0] == (4096, 9216)
    assert summary.params == 60_965_224  # the BVLC AlexNet


def test_alexnet_fillers_groups_and_lr_mults() -> None:
    layers = {layer.name: layer for layer in build_net("alexnet", IMAGENET_ALEXNET).net.layer}
    assert layers["conv2"].convolution_param.group == 2
    assert layers["conv3"].convolution_param.group == 1
    assert layers["conv2"].convolution_param.bias_filler.value == pytest.approx(0.1)
    assert layers["fc6"].inner_product_param.weight_filler.std == pytest.approx(0.005)
    assert [(p.lr_mult, p.decay_mult) for p in layers["conv1"].param] == [(1, 1), (2, 0)]
    assert layers["norm1"].lrn_param.alpha == pytest.approx(0.0001)


def test_googlenet_reference_layer_counts_and_parameters() -> None:
    net = build_net("googlenet", IMAGENET_GOOGLENET).net
    counts = collections.Counter(layer.type for layer in net.layer)
    # The layer counts of BVLC GoogLeNet's train_val.prototxt (models/bvlc_googlenet in the Caffe source).
    assert counts == {"Convolution": 59, "ReLU": 61, "Pooling": 16, "Concat": 9, "InnerProduct": 5,
                      "Dropout": 3, "SoftmaxWithLoss": 3, "Accuracy": 6, "LRN": 2, "Data": 2}
    losses = {layer.name: list(layer.loss_weight) for layer in net.layer if layer.type == "SoftmaxWithLoss"}
    assert losses == {"loss1/loss": [pytest.approx(0.3)], "loss2/loss": [pytest.approx(0.3)], "loss3/loss": []}
    deploy = summarize(build_net("googlenet", IMAGENET_GOOGLENET, deploy=True).net)
    assert deploy.params == 6_998_552  # BVLC GoogLeNet without the auxiliary heads
    shapes = {r.name: r.shape for r in deploy.rows}
    assert shapes["inception_3a/output"] == (256, 28, 28)
    assert shapes["inception_4e/output"] == (832, 14, 14)
    assert shapes["inception_5b/output"] == (1024, 7, 7)
    assert shapes["pool5/7x7_s1"] == (1024, 1, 1)
    assert not any(r.name.startswith("loss1/") for r in deploy.rows)


def test_adapted_to_channels_classes_and_size() -> None:
    data = DataSpec(channels=2, height=382, width=512, classes=5)
    alex = {r.name: r for r in summarize(build_net("alexnet", data, deploy=True).net).rows}
    assert alex["conv1"].param_shapes[0] == (96, 2, 11, 11)
    assert alex["fc8"].shape == (5,)
    goog = {r.name: r for r in summarize(build_net("googlenet", data, deploy=True).net).rows}
    assert goog["inception_5b/output"].shape == (1024, 11, 16)
    assert goog["pool5/7x7_s1"].shape == (1024, 1, 1)  # final pooling covers the whole map
    pool5 = next(layer for layer in build_net("googlenet", data, deploy=True).net.layer
                 if layer.name == "pool5/7x7_s1")
    assert (pool5.pooling_param.kernel_h, pool5.pooling_param.kernel_w) == (11, 16)
    assert pool5.pooling_param.pool == pb.PoolingParameter.AVE


def test_few_classes_have_no_top5_accuracy() -> None:
    net = build_net("googlenet", DataSpec(channels=2, height=224, width=224, classes=2)).net
    assert sum(layer.type == "Accuracy" for layer in net.layer) == 3
