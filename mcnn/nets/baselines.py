"""The two baselines of the paper's Table 1: BVLC AlexNet and BVLC GoogLeNet.

Both follow Caffe's reference models layer for layer (topology, widths, groups, LRN,
fillers, lr_mult/decay_mult, dropout, GoogLeNet's two auxiliary classifiers at loss
weight 0.3). What is adapted to a screening dataset: the number of input channels, the
number of classes N_p and the input size. With an input other than the reference crop,
AlexNet's fc6 takes the larger (or smaller) pool5 map, and GoogLeNet's final average
pooling covers the whole last map (7x7 at 224x224, as in the reference).
"""

from __future__ import annotations

from mcnn.caffe import shapes
from mcnn.nets.registry import BuiltNet, register_net
from mcnn.nets.spec import DataSpec, NetBuilder

ALEXNET_CROP = 227
GOOGLENET_CROP = 224


def _gauss(std: float) -> dict[str, object]:
    return {"type": "gaussian", "std": std}


def _const(value: float) -> dict[str, object]:
    return {"type": "constant", "value": value}


def _adaptation(data: DataSpec, reference_crop: int) -> list[str]:
    c, h, w = data.input_shape
    return [
        f"Adapted (ours): {c} input channel(s) instead of 3, {data.classes} classes instead of 1000, "
        f"{h}x{w} input (reference {reference_crop}x{reference_crop}); trained from scratch."
    ]


@register_net(crop=ALEXNET_CROP, order=1)
def alexnet(data: DataSpec, deploy: bool = False, name: str = "AlexNet") -> BuiltNet:
    """BVLC AlexNet (Krizhevsky et al. 2012, Caffe's ``bvlc_alexnet``) for ``data``."""
    b = NetBuilder(name, data, deploy)
    x = b.input()
    x = b.conv("conv1", x, 96, 11, stride=4, weight_filler=_gauss(0.01), bias_filler=_const(0))
    b.relu("relu1", x)
    x = b.lrn("norm1", x)
    x = b.pool("pool1", x, "MAX", 3, 2)
    x = b.conv("conv2", x, 256, 5, pad=2, group=2, weight_filler=_gauss(0.01), bias_filler=_const(0.1))
    b.relu("relu2", x)
    x = b.lrn("norm2", x)
    x = b.pool("pool2", x, "MAX", 3, 2)
    x = b.conv("conv3", x, 384, 3, pad=1, weight_filler=_gauss(0.01), bias_filler=_const(0))
    b.relu("relu3", x)
    x = b.conv("conv4", x, 384, 3, pad=1, group=2, weight_filler=_gauss(0.01), bias_filler=_const(0.1))
    b.relu("relu4", x)
    x = b.conv("conv5", x, 256, 3, pad=1, group=2, weight_filler=_gauss(0.01), bias_filler=_const(0.1))
    b.relu("relu5", x)
    x = b.pool("pool5", x, "MAX", 3, 2)
    for i in (6, 7):
        x = b.inner_product(f"fc{i}", x, 4096, weight_filler=_gauss(0.005), bias_filler=_const(0.1))
        b.relu(f"relu{i}", x)
        b.dropout(f"drop{i}", x, 0.5)
    logits = b.inner_product("fc8", x, data.classes, weight_filler=_gauss(0.01), bias_filler=_const(0))
    b.classifier(logits)
    header = ["AlexNet, the BVLC reference model (Caffe models/bvlc_alexnet), baseline of the paper's Table 1."]
    return BuiltNet(net=b.net, header=header + _adaptation(data, ALEXNET_CROP))


#: Inception widths [1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj] (BVLC GoogLeNet).
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

_XAVIER = {"type": "xavier"}


def _inception(b: NetBuilder, module: str, x: str) -> str:
    w1, w3r, w3, w5r, w5, wp = INCEPTION_WIDTHS[module]
    p = f"inception_{module}"

    def unit(conv_name: str, bottom: str, width: int, kernel: int, pad: int = 0) -> str:
        top = b.conv(f"{p}/{conv_name}", bottom, width, kernel, pad=pad,
                     weight_filler=_XAVIER, bias_filler=_const(0.2))
        return b.relu(f"{p}/relu_{conv_name}", top)

    branch1 = unit("1x1", x, w1, 1)
    branch3 = unit("3x3", unit("3x3_reduce", x, w3r, 1), w3, 3, pad=1)
    branch5 = unit("5x5", unit("5x5_reduce", x, w5r, 1), w5, 5, pad=2)
    branch_pool = unit("pool_proj", b.pool(f"{p}/pool", x, "MAX", 3, 1, pad=1), wp, 1)
    return b.concat(f"{p}/output", [branch1, branch3, branch5, branch_pool])


def _aux_head(b: NetBuilder, prefix: str, x: str, classes: int) -> None:
    if b.deploy:
        return
    x = b.pool(f"{prefix}/ave_pool", x, "AVE", 5, 3)
    x = b.conv(f"{prefix}/conv", x, 128, 1, weight_filler=_XAVIER, bias_filler=_const(0.2))
    b.relu(f"{prefix}/relu_conv", x)
    x = b.inner_product(f"{prefix}/fc", x, 1024, weight_filler=_XAVIER, bias_filler=_const(0.2))
    b.relu(f"{prefix}/relu_fc", x)
    b.dropout(f"{prefix}/drop_fc", x, 0.7)
    logits = b.inner_product(f"{prefix}/classifier", x, classes, weight_filler=_XAVIER, bias_filler=_const(0))
    b.classifier(logits, prefix=f"{prefix}/", loss_weight=0.3, main=False)


def _googlenet_final_hw(input_hw: tuple[int, int]) -> tuple[int, int]:
    """Spatial size entering pool5 (7x7 for a 224x224 input): one stride-2 conv, four pools."""
    hw = shapes.conv_output_hw(shapes.Window2d((7, 7), (2, 2), (3, 3)), input_hw, "conv1/7x7_s2")
    for name in ("pool1/3x3_s2", "pool2/3x3_s2", "pool3/3x3_s2", "pool4/3x3_s2"):
        hw = shapes.pool_output_hw(shapes.Window2d((3, 3), (2, 2), (0, 0)), hw, name)
    return hw


@register_net(crop=GOOGLENET_CROP, order=2)
def googlenet(data: DataSpec, deploy: bool = False, name: str = "GoogLeNet") -> BuiltNet:
    """BVLC GoogLeNet (Szegedy et al. 2015, Caffe's ``bvlc_googlenet``) for ``data``."""
    b = NetBuilder(name, data, deploy)
    bias = _const(0.2)
    x = b.input()
    x = b.conv("conv1/7x7_s2", x, 64, 7, stride=2, pad=3, weight_filler=_XAVIER, bias_filler=bias)
    b.relu("conv1/relu_7x7", x)
    x = b.pool("pool1/3x3_s2", x, "MAX", 3, 2)
    x = b.lrn("pool1/norm1", x)
    x = b.conv("conv2/3x3_reduce", x, 64, 1, weight_filler=_XAVIER, bias_filler=bias)
    b.relu("conv2/relu_3x3_reduce", x)
    x = b.conv("conv2/3x3", x, 192, 3, pad=1, weight_filler=_XAVIER, bias_filler=bias)
    b.relu("conv2/relu_3x3", x)
    x = b.lrn("conv2/norm2", x)
    x = b.pool("pool2/3x3_s2", x, "MAX", 3, 2)
    x = _inception(b, "3a", x)
    x = _inception(b, "3b", x)
    x = b.pool("pool3/3x3_s2", x, "MAX", 3, 2)
    x = _inception(b, "4a", x)
    _aux_head(b, "loss1", x, data.classes)
    for module in ("4b", "4c", "4d"):
        x = _inception(b, module, x)
    _aux_head(b, "loss2", x, data.classes)
    x = _inception(b, "4e", x)
    x = b.pool("pool4/3x3_s2", x, "MAX", 3, 2)
    x = _inception(b, "5a", x)
    x = _inception(b, "5b", x)
    x = b.pool("pool5/7x7_s1", x, "AVE", _googlenet_final_hw(data.input_hw), 1)
    b.dropout("pool5/drop_7x7_s1", x, 0.4)
    logits = b.inner_product("loss3/classifier", x, data.classes, weight_filler=_XAVIER,
                             bias_filler=_const(0))
    b.classifier(logits, prefix="loss3/")
    header = ["GoogLeNet, the BVLC reference model (Caffe models/bvlc_googlenet), baseline of the paper's "
              "Table 1; auxiliary classifiers loss1/loss2 at loss weight 0.3 (train_val only)."]
    return BuiltNet(net=b.net, header=header + _adaptation(data, GOOGLENET_CROP))
