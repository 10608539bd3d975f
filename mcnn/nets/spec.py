"""A small functional builder for Caffe nets, in the spirit of Caffe's ``NetSpec``.

Builders append layers with explicit names and get back the name of the top blob, so a
net reads top to bottom like its prototxt. The same builder emits the train_val variant
(Data layers, SoftmaxWithLoss, TEST-phase Accuracy) and the deploy variant (Input layer,
Softmax named ``prob``); :class:`DataSpec` holds everything about the input side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError

#: Caffe reference-net convention: weights learn at the base rate with weight decay,
#: biases at twice the rate without decay.
WEIGHT_BIAS_PARAMS: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 1.0), (2.0, 0.0))


@dataclass(frozen=True)
class DataSpec:
    """The input side of a net: image geometry, classes, preprocessing and data sources.

    Sizes are in pixels; ``height``/``width`` are the stored image size, ``crop`` (0 = none)
    the square crop Caffe takes from it (random in TRAIN, centre in TEST). Preprocessing is
    Caffe's ``(x - mean) * scale`` with either a mean file or per-channel mean values.
    """

    channels: int
    height: int
    width: int
    classes: int
    crop: int = 0
    mirror: bool = False
    mean_file: str | None = None
    mean_values: tuple[float, ...] = ()
    scale: float = 1.0
    train_source: str = "train_lmdb"
    test_source: str = "test_lmdb"
    train_batch: int = 16
    test_batch: int = 16
    deploy_batch: int = 1
    class_names: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width", "train_batch", "test_batch", "deploy_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.classes < 2:
            raise ConfigError(f"--classes must be at least 2 (a softmax over phenotypes), got {self.classes}")
        if self.crop < 0:
            raise ConfigError(f"--crop must be 0 (no crop) or positive, got {self.crop}")
        if self.crop > min(self.height, self.width):
            raise ConfigError(
                f"--crop {self.crop} is larger than the {self.height}x{self.width} images"
            )
        if self.mean_file and self.mean_values:
            raise ConfigError("give --mean-file or --mean-value, not both (Caffe allows one)")
        if self.mean_values and len(self.mean_values) not in (1, self.channels):
            raise ConfigError(
                f"--mean-value needs 1 or {self.channels} values (one per channel), "
                f"got {len(self.mean_values)}"
            )
        if not self.scale > 0:
            raise ConfigError(f"--scale must be positive, got {self.scale}")

    @property
    def input_hw(self) -> tuple[int, int]:
        """(H, W) of the blob the net sees: the crop if one is taken, else the image."""
        return (self.crop, self.crop) if self.crop else (self.height, self.width)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the net's input blob."""
        return (self.channels, *self.input_hw)


def _filler(spec: dict[str, object] | None) -> pb.FillerParameter | None:
    return None if spec is None else pb.FillerParameter(**spec)


class NetBuilder:
    """Appends layers to a NetParameter; ``deploy`` selects the deploy variant."""

    def __init__(self, name: str, data: DataSpec, deploy: bool):
        self.net = pb.NetParameter(name=name)
        self.data = data
        self.deploy = deploy

    # -- generic ----------------------------------------------------------------

    def add(
        self,
        name: str,
        type_: str,
        bottoms: Sequence[str] = (),
        tops: Sequence[str] | None = None,
        *,
        phase: int | None = None,
        loss_weight: float | None = None,
        params: Sequence[tuple[float, float]] = (),
        **layer_params: object,
    ) -> pb.LayerParameter:
        """Append a layer; ``tops`` defaults to ``[name]``; ``params`` are (lr_mult, decay_mult)."""
        layer = self.net.layer.add(name=name, type=type_)
        layer.bottom.extend(bottoms)
        layer.top.extend([name] if tops is None else tops)
        if phase is not None:
            layer.include.add(phase=phase)
        if loss_weight is not None:
            layer.loss_weight.append(loss_weight)
        for lr_mult, decay_mult in params:
            layer.param.add(lr_mult=lr_mult, decay_mult=decay_mult)
        for key, value in layer_params.items():
            getattr(layer, key).CopyFrom(value)
        return layer

    # -- layers -----------------------------------------------------------------

    def conv(
        self,
        name: str,
        bottom: str,
        num_output: int,
        kernel: int,
        *,
        stride: int = 1,
        pad: int = 0,
        group: int = 1,
        weight_filler: dict[str, object] | None = None,
        bias_filler: dict[str, object] | None = None,
        params: Sequence[tuple[float, float]] = WEIGHT_BIAS_PARAMS,
    ) -> str:
        """Convolution with a square kernel; returns its top."""
        param = pb.ConvolutionParameter(num_output=num_output)
        param.kernel_size.append(kernel)
        if pad:
            param.pad.append(pad)
        if stride != 1:
            param.stride.append(stride)
        if group != 1:
            param.group = group
        if weight_filler is not None:
            param.weight_filler.CopyFrom(_filler(weight_filler))
        if bias_filler is not None:
            param.bias_filler.CopyFrom(_filler(bias_filler))
        self.add(name, "Convolution", [bottom], params=params, convolution_param=param)
        return name

    def relu(self, name: str, blob: str) -> str:
        """In-place ReLU on ``blob``; returns ``blob``."""
        self.add(name, "ReLU", [blob], [blob])
        return blob

    def pool(self, name: str, bottom: str, method: str, kernel: int | tuple[int, int], stride: int,
             pad: int = 0) -> str:
        """MAX or AVE pooling (Caffe's CEIL rounding; ``round_mode`` is never written).

        ``kernel`` may be (h, w) for a rectangular window.
        """
        param = pb.PoolingParameter(pool=pb.PoolingParameter.PoolMethod.Value(method), stride=stride)
        if isinstance(kernel, tuple) and kernel[0] != kernel[1]:
            param.kernel_h, param.kernel_w = kernel
        else:
            param.kernel_size = kernel[0] if isinstance(kernel, tuple) else kernel
        if pad:
            param.pad = pad
        self.add(name, "Pooling", [bottom], pooling_param=param)
        return name

    def inner_product(
        self,
        name: str,
        bottom: str,
        num_output: int,
        *,
        weight_filler: dict[str, object] | None = None,
        bias_filler: dict[str, object] | None = None,
        params: Sequence[tuple[float, float]] = WEIGHT_BIAS_PARAMS,
    ) -> str:
        """Fully connected layer (flattens C x H x W itself, no Flatten layer needed)."""
        param = pb.InnerProductParameter(num_output=num_output)
        if weight_filler is not None:
            param.weight_filler.CopyFrom(_filler(weight_filler))
        if bias_filler is not None:
            param.bias_filler.CopyFrom(_filler(bias_filler))
        self.add(name, "InnerProduct", [bottom], params=params, inner_product_param=param)
        return name

    def dropout(self, name: str, blob: str, ratio: float) -> str:
        """In-place Dropout (identity at test time)."""
        self.add(name, "Dropout", [blob], [blob], dropout_param=pb.DropoutParameter(dropout_ratio=ratio))
        return blob

    def lrn(self, name: str, bottom: str, local_size: int = 5, alpha: float = 1e-4, beta: float = 0.75) -> str:
        """Local response normalisation across channels."""
        param = pb.LRNParameter(local_size=local_size, alpha=alpha, beta=beta)
        self.add(name, "LRN", [bottom], lrn_param=param)
        return name

    def concat(self, name: str, bottoms: Sequence[str]) -> str:
        """Concatenate along channels."""
        self.add(name, "Concat", bottoms)
        return name

    # -- input and heads ------------------------------------------------------------

    def input(self) -> str:
        """The data layers: TRAIN and TEST ``Data`` (LMDB) or, for deploy, an ``Input`` layer."""
        d = self.data
        if self.deploy:
            shape = pb.BlobShape(dim=[d.deploy_batch, *d.input_shape])
            self.add("data", "Input", [], ["data"], input_param=pb.InputParameter(shape=[shape]))
            return "data"
        for phase, source, batch in (
            (pb.TRAIN, d.train_source, d.train_batch),
            (pb.TEST, d.test_source, d.test_batch),
        ):
            transform = pb.TransformationParameter()
            if d.scale != 1.0:
                transform.scale = d.scale
            if d.mirror and phase == pb.TRAIN:
                transform.mirror = True
            if d.crop:
                transform.crop_size = d.crop
            if d.mean_file:
                transform.mean_file = d.mean_file
            transform.mean_value.extend(d.mean_values)
            data_param = pb.DataParameter(source=source, batch_size=batch, backend=pb.DataParameter.LMDB)
            self.add("data", "Data", [], ["data", "label"], phase=phase,
                     transform_param=transform, data_param=data_param)
        return "data"

    def classifier(self, logits: str, prefix: str = "", loss_weight: float | None = None,
                   main: bool = True) -> None:
        """The head on ``logits``: loss and accuracy (train_val) or Softmax ``prob`` (deploy).

        Auxiliary heads (``main=False``) only exist in train_val. Top-5 accuracy is added
        when there are more than 5 classes (it is always 1 otherwise).
        """
        if self.deploy:
            if main:
                self.add("prob", "Softmax", [logits], ["prob"])
            return
        loss_name = f"{prefix}loss" if prefix else "loss"
        self.add(loss_name, "SoftmaxWithLoss", [logits, "label"], [loss_name], loss_weight=loss_weight)
        acc_names = [(f"{prefix}accuracy" if prefix else "accuracy", 1)]
        if self.data.classes > 5:
            acc_names.append((f"{prefix}accuracy_top5" if prefix else "accuracy_top5", 5))
        for acc_name, top_k in acc_names:
            extra = {} if top_k == 1 else {"accuracy_param": pb.AccuracyParameter(top_k=top_k)}
            self.add(acc_name, "Accuracy", [logits, "label"], [acc_name], phase=pb.TEST, **extra)
