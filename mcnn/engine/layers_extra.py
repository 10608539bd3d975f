"""Forwards of the further layer types pycaffe scripts rely on, with Caffe's semantics.

Eltwise, Sigmoid, TanH, Silence, Split, Reshape, Scale, BatchNorm, EuclideanLoss, DummyData and
HDF5Output (src/caffe/layers/*_layer.cpp); their shape rules are in :mod:`mcnn.caffe.infer_extra`.
Backward passes come from autograd, which gives Caffe's Backward_cpu for each of them (Eltwise
MAX routes the gradient to the bottom Caffe's mask picks; BatchNorm's statistics get none).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mcnn.caffe.hdf5 import RowAppender
from mcnn.caffe.infer_extra import dummy_shapes, reshape_shape
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.fillers import fill
from mcnn.engine.layers import Layer, register
from mcnn.errors import ShapeError

Tensor = torch.Tensor


@register
class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)) (sigmoid_layer.cpp)."""

    type = "Sigmoid"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The bottom's shape, values in (0, 1)."""
        return [torch.sigmoid(bottoms[0])]


@register
class TanH(Layer):
    """y = tanh(x) (tanh_layer.cpp)."""

    type = "TanH"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The bottom's shape, values in (-1, 1)."""
        return [torch.tanh(bottoms[0])]


@register
class Eltwise(Layer):
    """Element-wise PROD, SUM (with ``coeff``, default 1 each) or MAX over the bottoms (eltwise_layer.cpp).

    MAX follows Caffe's mask: bottom 1 wins a tie with bottom 0, a later bottom must be strictly
    larger to win; the gradient goes to the winning bottom only.
    """

    type = "Eltwise"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """One top of the bottoms' shape."""
        p = self.param.eltwise_param
        if p.operation == pb.EltwiseParameter.PROD:
            out = bottoms[0] * bottoms[1]
            for b in bottoms[2:]:
                out = out * b
            return [out]
        if p.operation == pb.EltwiseParameter.SUM:
            coeff = list(p.coeff) or [1.0] * len(bottoms)
            out = torch.zeros_like(bottoms[0])
            for c, b in zip(coeff, bottoms, strict=True):
                out = out + c * b if c != 1.0 else out + b
            return [out]
        with torch.no_grad():
            best = bottoms[0]
            mask = torch.zeros(bottoms[0].shape, dtype=torch.long, device=bottoms[0].device)
            for i, b in enumerate(bottoms[1:], start=1):
                wins = b >= best if i == 1 else b > best
                mask = torch.where(wins, i, mask)
                best = torch.where(wins, b, best)
        stacked = torch.stack(list(bottoms))
        return [stacked.gather(0, mask.unsqueeze(0)).squeeze(0)]


@register
class Silence(Layer):
    """Consumes its bottoms; no tops (silence_layer.cpp; its backward gives the bottoms zero diffs)."""

    type = "Silence"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """No tops."""
        return []


@register
class Split(Layer):
    """The bottom under every top name; autograd sums the tops' diffs, as Caffe's Backward does (split_layer.cpp)."""

    type = "Split"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """One view of the bottom per top."""
        return [bottoms[0].view_as(bottoms[0]) for _ in self.param.top]


@register
class Reshape(Layer):
    """The bottom's values in the shape of :func:`mcnn.caffe.infer_extra.reshape_shape` (reshape_layer.cpp)."""

    type = "Reshape"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The reshaped bottom, values in the same (row-major) order."""
        x = bottoms[0]
        return [x.reshape(reshape_shape(self.param, tuple(x.shape)))]


def _broadcast(values: Tensor, axis: int, ndim: int) -> Tensor:
    """``values`` (the axes ``axis`` .. of a tensor of ``ndim`` axes) shaped to broadcast against it."""
    return values.reshape((1,) * axis + tuple(values.shape) + (1,) * (ndim - axis - values.dim()))


@register
class Scale(Layer):
    """y = x * scale (+ bias) with the scale over axes ``axis`` .. (scale_layer.cpp).

    The scale is learned blob 0, or bottom 1 when given; ``bias_term`` adds the learned bias of
    the scale's shape (Caffe's internal Bias layer).
    """

    type = "Scale"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The scaled bottom, same shape."""
        x = bottoms[0]
        axis = self.param.scale_param.axis % x.dim() if x.dim() else 0
        if len(bottoms) > 1:
            scale, rest = bottoms[1], list(params)
        else:
            scale, rest = params[0], list(params[1:])
        out = x * _broadcast(scale, axis, x.dim())
        if rest:
            out = out + _broadcast(rest[0], axis, x.dim())
        return [out]


@register
class BatchNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) per channel (axis 1) (batch_norm_layer.cpp).

    With global statistics (the default in TEST) mean and var are blobs 0 and 1 divided by the
    scale factor blob 2; otherwise they are the batch's (var = E[(x - mean)^2]) and the forward
    updates the blobs: factor = maf * factor + 1, mean_blob = maf * mean_blob + mean,
    var_blob = maf * var_blob + m/(m-1) * var, with m the values per channel.
    """

    type = "BatchNorm"

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The normalised bottom, same shape."""
        p = self.param.batch_norm_param
        x = bottoms[0]
        x4 = x.reshape(x.shape[0], 1 if x.dim() == 1 else x.shape[1], -1)  # (N, C, spatial)
        use_global = p.use_global_stats if p.HasField("use_global_stats") else not train
        mean_blob, var_blob, factor_blob = params[0], params[1], params[2]
        if use_global:
            with torch.no_grad():
                factor = float(factor_blob.reshape(-1)[0])
                scale = 0.0 if factor == 0 else 1.0 / factor
                mean, var = mean_blob.detach() * scale, var_blob.detach() * scale
        else:
            mean = x4.mean(dim=(0, 2))
            var = ((x4 - mean[None, :, None]) ** 2).mean(dim=(0, 2))
            with torch.no_grad():
                m = x4.shape[0] * x4.shape[2]
                correction = m / (m - 1) if m > 1 else 1.0
                maf = p.moving_average_fraction
                factor_blob.mul_(maf).add_(1.0)
                mean_blob.mul_(maf).add_(mean.detach())
                var_blob.mul_(maf).add_(var.detach() * correction)
        y = (x4 - mean[None, :, None]) / torch.sqrt(var[None, :, None] + p.eps)
        return [y.reshape(x.shape)]


@register
class EuclideanLoss(Layer):
    """sum((a - b)^2) / (2 N), N the batch size (euclidean_loss_layer.cpp); both bottoms get gradients."""

    type = "EuclideanLoss"
    loss = True

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The scalar loss."""
        a, b = bottoms[0], bottoms[1]
        diff = a.reshape(a.shape[0], -1) - b.reshape(b.shape[0], -1)
        return [(diff * diff).sum() / (2.0 * a.shape[0])]


@register
class DummyData(Layer):
    """Tops of the given shapes filled by ``data_filler`` (dummy_data_layer.cpp).

    One filler serves every top, none means constant 0. Constant tops are filled once; other
    fillers draw new values at every forward (from torch's default generator, which the trainer
    seeds per iteration).
    """

    type = "DummyData"

    def __init__(self, param: pb.LayerParameter):
        super().__init__(param)
        self.shapes = dummy_shapes(param)
        fillers = list(param.dummy_data_param.data_filler) or [pb.FillerParameter()]
        self.fillers = [fillers[i if len(fillers) > 1 else 0] for i in range(len(self.shapes))]
        self._constant: dict[int, Tensor] = {}

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """One float32 tensor per top, on the net's device."""
        tops = []
        for i, (shape, filler) in enumerate(zip(self.shapes, self.fillers, strict=True)):
            cached = self._constant.get(i)
            if cached is not None and cached.device == self.device:
                tops.append(cached)
                continue
            value = fill(shape, filler, torch.default_generator, self.name).to(self.device)
            if filler.type == "constant":
                self._constant[i] = value
            tops.append(value)
        return tops


@register
class HDF5Output(Layer):
    """Writes its two bottoms to ``hdf5_output_param.file_name`` as datasets ``data`` and ``label``.

    Rows of every forward are appended (:class:`mcnn.caffe.hdf5.RowAppender`); no tops, no gradient.
    """

    type = "HDF5Output"

    def __init__(self, param: pb.LayerParameter):
        super().__init__(param)
        self.writer = RowAppender(param.hdf5_output_param.file_name)

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """No tops; the bottoms' rows (batch first) are added to the file."""
        data, label = (b.detach().float().cpu().numpy() for b in bottoms[:2])
        if data.shape[0] != label.shape[0]:
            raise ShapeError(f"layer {self.name!r}: HDF5Output data and label differ in batch size "
                             f"({data.shape[0]} and {label.shape[0]})")
        self.writer.append(data, label)
        return []
