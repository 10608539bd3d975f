"""Forward computations of Caffe's layers in PyTorch, with Caffe's semantics.

Each layer is a small object built from its LayerParameter; ``forward`` takes the bottom
tensors (batch first) and the layer's learnable blobs and returns the tops. Shapes are
checked beforehand by :func:`mcnn.caffe.infer.infer_layer`, so errors name the layer.
Backward passes come from autograd.

The supported types are those of :data:`mcnn.caffe.infer.LAYER_TYPES`; :func:`register`
attaches one implementation to each non-feed entry there and refuses any other type. The
forwards of the types pycaffe scripts use live in :mod:`mcnn.engine.layers_extra`, the
Python-layer host in :mod:`mcnn.engine.pylayer`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mcnn.caffe import shapes
from mcnn.caffe.infer import LAYER_TYPES, LayerShapes, Shape, concat_axis, layer_type
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine import pooling
from mcnn.errors import LabelError, McnnError

Tensor = torch.Tensor


class Layer:
    """Base class: ``type`` names the Caffe type; ``loss`` marks layers whose top is a loss.

    ``device`` is where the net keeps its tensors (set by :meth:`mcnn.engine.net.Net.to`): layers
    without bottoms (DummyData, Python data layers) put their tops there.
    """

    type: ClassVar[str] = ""
    loss: ClassVar[bool] = False
    #: Whether autograd keeps this layer's tops for its backward (then no later layer may overwrite them).
    backward_reads_tops: ClassVar[bool] = True
    #: Whether the forward can overwrite its bottom; :class:`mcnn.engine.net.Net` sets ``in_place`` where safe.
    can_run_in_place: ClassVar[bool] = False

    def __init__(self, param: pb.LayerParameter):
        self.param = param
        self.name = param.name
        self.device = torch.device("cpu")
        self.in_place = False
        #: Whether a bottom is one of the net's inputs (set by :class:`mcnn.engine.net.Net`).
        self.reads_net_input = False

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The tops (batch first) for ``bottoms`` and learnable blobs ``params``; ``train`` is Caffe's phase."""
        raise NotImplementedError

    def dynamic_shapes(self, bottoms: Sequence[Shape], phase: int) -> LayerShapes:
        """Shapes of a ``dynamic`` type (:class:`mcnn.caffe.infer.LayerType`), found by running the layer.

        ``bottoms`` are per-image shapes, ``phase`` the net's (``pb.TRAIN``/``pb.TEST``). Called once,
        when the net is built, instead of the table's shape rule.
        """
        raise McnnError(f"layer {self.name!r}: type {self.type!r} has static shapes (see mcnn.caffe.infer)")

    def initial_blobs(self) -> list[Tensor]:
        """Values the layer gives its learnable blobs itself (a Python layer's setup); [] to use the fillers."""
        return []


#: The forward implementation of each non-feed type of :data:`mcnn.caffe.infer.LAYER_TYPES`.
FORWARDS: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make ``cls`` the forward of the registered layer type ``cls.type``."""
    entry = LAYER_TYPES.get(cls.type)
    if entry is None or entry.feed:
        raise ValueError(f"{cls.__name__}: {cls.type!r} is not a non-feed type of mcnn.caffe.infer.LAYER_TYPES")
    if cls.type in FORWARDS:
        raise ValueError(f"layer type {cls.type!r} has two forward implementations")
    FORWARDS[cls.type] = cls
    return cls


@register
class Convolution(Layer):
    """2-D convolution with groups and dilation: y = W * x + b (src/caffe/layers/conv_layer.cpp)."""

    type = "Convolution"
    backward_reads_tops = False

    def __init__(self, param: pb.LayerParameter):
        super().__init__(param)
        p = param.convolution_param
        self.window = shapes.conv_window(p, param.name)
        self.group = p.group or 1

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """N x O x H' x W' from N x C x H x W, weights (O, C/group, kh, kw) and the optional bias (O,)."""
        bias = params[1] if len(params) > 1 else None
        w = self.window
        return [F.conv2d(bottoms[0], params[0], bias, stride=w.stride, padding=w.pad, dilation=w.dilation,
                         groups=self.group)]


@register
class Pooling(Layer):
    """MAX/AVE pooling with Caffe's CEIL output size and divisor rules (:mod:`mcnn.engine.pooling`)."""

    type = "Pooling"
    backward_reads_tops = False

    def __init__(self, param: pb.LayerParameter):
        super().__init__(param)
        p = param.pooling_param
        if p.pool == pb.PoolingParameter.STOCHASTIC:
            raise McnnError(f"layer {param.name!r}: STOCHASTIC pooling is not supported (MAX and AVE are)")
        self.method = p.pool
        self.ceil_mode = p.round_mode == pb.PoolingParameter.CEIL
        self.global_pooling = p.global_pooling

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """N x C x H' x W' window maxima or means, H' and W' by :func:`mcnn.caffe.shapes.pool_output_hw`."""
        x = bottoms[0]
        hw = (x.shape[2], x.shape[3])
        w = shapes.pool_window(self.param.pooling_param, hw, self.name)
        out_hw = shapes.pool_output_hw(w, hw, self.name, self.ceil_mode)
        if self.method == pb.PoolingParameter.MAX:
            # Traced for inference, a convolution's output is in oneDNN's blocked layout, where oneDNN's pooling
            # beats a copy to the dense layout plus the tiled maxima (4 vs 16 ms at 16 x 1024 x 1280).
            tiles = self.reads_net_input or not torch.jit.is_tracing()
            y = pooling.max_pool(x, w, out_hw, self.ceil_mode, tiles)
        else:
            y = pooling.ave_pool(x, w, out_hw, self.ceil_mode)
        if tuple(y.shape[2:]) != out_hw:
            raise AssertionError(f"layer {self.name!r}: pooled to {tuple(y.shape[2:])}, Caffe gives {out_hw}")
        return [y]


@register
class ReLU(Layer):
    """Rectifier with Caffe's leaky form: y = max(x, 0) + negative_slope * min(x, 0) (relu_layer.cpp)."""

    type = "ReLU"
    can_run_in_place = True

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The rectified bottom, same shape; overwritten in place when ``in_place`` (except a leaf that
        needs a gradient: pycaffe's layer-by-layer passes hand such leaves)."""
        x, slope = bottoms[0], self.param.relu_param.negative_slope
        if self.in_place and not (x.is_leaf and x.requires_grad):
            return [F.leaky_relu_(x, slope) if slope else F.relu_(x)]
        return [F.leaky_relu(x, slope) if slope else F.relu(x)]


@register
class Concat(Layer):
    """Bottoms joined along ``concat_param.axis`` (channels by default), in bottom order."""

    type = "Concat"
    backward_reads_tops = False

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The concatenated bottoms."""
        return [torch.cat(list(bottoms), dim=concat_axis(self.param.concat_param))]


@register
class InnerProduct(Layer):
    """Fully connected: y = x W^T + b over the axes from ``axis`` on (inner_product_layer.cpp)."""

    type = "InnerProduct"
    backward_reads_tops = False

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """(*leading axes, O) from the bottom flattened from ``axis``, weights (O, K) or (K, O) with transpose."""
        p = self.param.inner_product_param
        x = bottoms[0]
        axis = p.axis if p.axis >= 0 else p.axis + x.dim()
        flat = x.reshape(*x.shape[:axis], -1)
        weight = params[0].t() if p.transpose else params[0]
        bias = params[1] if len(params) > 1 else None
        return [F.linear(flat, weight, bias)]


@register
class Dropout(Layer):
    """Inverted dropout: in TRAIN keep with probability 1-p and scale by 1/(1-p); identity in TEST."""

    type = "Dropout"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The bottom with dropout applied in TRAIN, unchanged in TEST."""
        ratio = self.param.dropout_param.dropout_ratio
        return [F.dropout(bottoms[0], ratio, training=train) if ratio else bottoms[0]]


@register
class LRN(Layer):
    """Local response normalisation.

    ACROSS_CHANNELS: y = x / (k + alpha/n * sum of x^2 over n neighbouring channels)^beta.
    WITHIN_CHANNEL: y = x / (1 + alpha/n^2 * sum of x^2 over an n x n window)^beta; Caffe
    builds it from an AVE pooling and a Power layer with shift 1, so ``k`` is not used.
    """

    type = "LRN"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The normalised N x C x H x W bottom (src/caffe/layers/lrn_layer.cpp)."""
        p = self.param.lrn_param
        x = bottoms[0]
        if p.norm_region == pb.LRNParameter.ACROSS_CHANNELS:
            return [F.local_response_norm(x, p.local_size, alpha=p.alpha, beta=p.beta, k=p.k)]
        pad = (p.local_size - 1) // 2
        mean_sq = F.avg_pool2d(x * x, p.local_size, 1, pad, count_include_pad=True)
        return [x * torch.pow(1 + p.alpha * mean_sq, -p.beta)]


@register
class Flatten(Layer):
    """Axes ``axis`` .. ``end_axis`` merged into one (src/caffe/layers/flatten_layer.cpp)."""

    type = "Flatten"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The bottom reshaped, values in the same order."""
        p = self.param.flatten_param
        x = bottoms[0]
        end = p.end_axis if p.end_axis >= 0 else p.end_axis + x.dim()
        return [torch.flatten(x, p.axis, end)]


@register
class Softmax(Layer):
    """y = exp(x) / sum exp(x) along ``softmax_param.axis`` (src/caffe/layers/softmax_layer.cpp)."""

    type = "Softmax"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """Probabilities of the bottom's shape."""
        return [F.softmax(bottoms[0], dim=self.param.softmax_param.axis)]


def _check_labels(layer: str, labels: Tensor, classes: int, ignore: int | None) -> None:
    """:class:`LabelError` if a non-ignored label is outside 0..classes-1 (Caffe would read out of bounds)."""
    valid = labels if ignore is None else labels[labels != ignore]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= classes):
        bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
        raise LabelError(f"layer {layer!r}: label {bad} is outside 0..{classes - 1} "
                         f"(the net has {classes} classes)")


def _as_class_axis(scores: Tensor, labels: Tensor, axis: int) -> tuple[Tensor, Tensor]:
    """Scores as (outer*inner, C) and labels as (outer*inner,), Caffe's outer/inner layout."""
    axis = axis if axis >= 0 else axis + scores.dim()
    classes = scores.shape[axis]
    moved = scores.movedim(axis, -1).reshape(-1, classes)
    return moved, labels.reshape(-1).long()


@register
class SoftmaxWithLoss(Layer):
    """Softmax cross-entropy; probabilities are clamped at FLT_MIN before the log, as in Caffe."""

    type = "SoftmaxWithLoss"
    loss = True

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The scalar loss: summed -log p(label), divided by the ``loss_param.normalization`` count.

        src/caffe/layers/softmax_loss_layer.cpp; ``normalize`` (deprecated) maps to VALID or BATCH_SIZE.
        """
        lp = self.param.loss_param
        ignore = lp.ignore_label if lp.HasField("ignore_label") else None
        scores, labels = _as_class_axis(bottoms[0], bottoms[1], self.param.softmax_param.axis)
        _check_labels(self.name, labels, scores.shape[1], ignore)
        keep = torch.ones_like(labels, dtype=torch.bool) if ignore is None else labels != ignore
        mode = lp.normalization
        if not lp.HasField("normalization") and lp.HasField("normalize"):
            mode = pb.LossParameter.VALID if lp.normalize else pb.LossParameter.BATCH_SIZE
        if mode == pb.LossParameter.FULL:
            normalizer = float(labels.numel())
        elif mode == pb.LossParameter.VALID:
            normalizer = float(keep.sum())
        elif mode == pb.LossParameter.BATCH_SIZE:
            # Caffe's outer_num: the product of the axes before the class axis.
            axis = self.param.softmax_param.axis % bottoms[0].dim()
            normalizer = float(math.prod(bottoms[0].shape[:axis]))
        else:
            normalizer = 1.0
        return [_SoftmaxLoss.apply(scores, labels.clamp(0, scores.shape[1] - 1), keep, max(normalizer, 1.0))]


class _SoftmaxLoss(torch.autograd.Function):
    """Summed -log max(p(label), FLT_MIN) over the kept rows, / normalizer; backward (p - onehot) / normalizer.

    The FLT_MIN clamp is in Caffe's forward only (softmax_loss_layer.cpp): its backward gives p - onehot
    even where p(label) underflowed, while autograd through the clamp would give 0 there.
    """

    @staticmethod
    def forward(ctx: Any, scores: Tensor, labels: Tensor, keep: Tensor, normalizer: float) -> Tensor:
        """The scalar loss from (M, C) scores, (M,) labels and the (M,) mask of non-ignored rows."""
        prob = F.softmax(scores, dim=1)
        picked = prob.gather(1, labels[:, None])[:, 0]
        nll = -torch.log(torch.clamp(picked, min=torch.finfo(torch.float32).tiny))
        ctx.save_for_backward(prob, labels, keep)
        ctx.normalizer = normalizer
        return (nll * keep).sum() / normalizer

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        """d loss / d scores = (p - onehot(label)) * keep * grad / normalizer; nothing for the rest."""
        prob, labels, keep = ctx.saved_tensors
        diff = prob - F.one_hot(labels, prob.shape[1]).to(prob.dtype)
        return diff * keep[:, None].to(diff.dtype) * (grad / ctx.normalizer), None, None, None


@register
class Accuracy(Layer):
    """Top-k accuracy over non-ignored labels; an optional second top holds per-class accuracy."""

    type = "Accuracy"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The scalar top-k accuracy (and the per-class accuracies, shape (C,)); not differentiable.

        src/caffe/layers/accuracy_layer.cpp, whose Backward_cpu is NOT_IMPLEMENTED.
        """
        ap = self.param.accuracy_param
        ignore = ap.ignore_label if ap.HasField("ignore_label") else None
        with torch.no_grad():
            scores, labels = _as_class_axis(bottoms[0], bottoms[1], ap.axis)
            classes = scores.shape[1]
            _check_labels(self.name, labels, classes, ignore)
            keep = torch.ones_like(labels, dtype=torch.bool) if ignore is None else labels != ignore
            scores, labels = scores[keep], labels[keep]
            # Caffe counts a hit when fewer than top_k other scores are >= the true class's
            # score (ties count against the prediction).
            true = scores.gather(1, labels[:, None])
            correct = (scores >= true).sum(dim=1) - 1 < ap.top_k
            tops = [correct.float().mean() if labels.numel() else scores.new_zeros(())]
            if len(self.param.top) > 1:
                per_class = torch.zeros(classes, device=scores.device)
                for c in range(classes):
                    mask = labels == c
                    if mask.any():
                        per_class[c] = correct[mask].float().mean()
                tops.append(per_class)
        return tops


def make_layer(param: pb.LayerParameter) -> Layer:
    """The engine layer for ``param``; :class:`McnnError` naming the layer for feeds and unsupported types.

    Input and Data layers (feeds in :data:`mcnn.caffe.infer.LAYER_TYPES`) are fed by the caller.
    """
    entry = layer_type(param)
    cls = FORWARDS.get(param.type)
    if cls is None:
        what = "is a feed (its tops are given by the caller)" if entry.feed else "has no engine implementation"
        raise McnnError(f"layer {param.name!r}: type {param.type!r} {what}")
    return cls(param)


# The forwards of the further types (Eltwise, BatchNorm, ...) and the Python-layer host register here too.
from mcnn.engine import layers_extra, pylayer  # noqa: E402, F401
