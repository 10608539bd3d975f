"""Caffe's MAX and AVE pooling windows computed with PyTorch (the forward of the Pooling layer).

PyTorch's ``ceil_mode=True`` drops a last window that starts in the padding exactly as Caffe
does, pads MAX windows with -inf (a clipped window), and with ``count_include_pad=True``
divides AVE windows by their extent clipped at input + pad, which is Caffe's divisor
(src/caffe/layers/pooling_layer.cpp). PyTorch only allows pad <= kernel / 2; larger pads are
padded here explicitly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mcnn.caffe import shapes

Tensor = torch.Tensor

#: Inputs smaller than this (elements) pool faster in one ``max_pool2d`` call than in two reductions
#: (``python bench/pooling.py --net prototxt/demo/mcnn_deploy.prototxt``: break-even near 16,000-32,000).
TILED_MIN_ELEMENTS = 1 << 15


def max_pool(x: Tensor, w: shapes.Window2d, out_hw: tuple[int, int], ceil_mode: bool, tiles: bool = True) -> Tensor:
    """N x C x H' x W' window maxima of ``x`` (N x C x H x W) over Caffe's windows ``w``, ``out_hw`` = (H', W').
    ``tiles``: whether windows that tile the input may take the fast path (:func:`max_of_tiles`; on the CPU,
    where it was measured, from :data:`TILED_MIN_ELEMENTS` input elements on, without a gradient)."""
    if (tiles and x.device.type == "cpu" and x.numel() >= TILED_MIN_ELEMENTS and tiles_exactly(x, w, out_hw)
            and not (torch.is_grad_enabled() and x.requires_grad)):
        return max_of_tiles(x, w.kernel, out_hw)
    if all(p <= k // 2 for p, k in zip(w.pad, w.kernel, strict=True)):
        return F.max_pool2d(x, w.kernel, w.stride, w.pad, ceil_mode=ceil_mode)
    return F.max_pool2d(_pad_to(x, w, out_hw, float("-inf")), w.kernel, w.stride)


def ave_pool(x: Tensor, w: shapes.Window2d, out_hw: tuple[int, int], ceil_mode: bool) -> Tensor:
    """N x C x H' x W' window means of ``x`` with Caffe's divisors (a window's extent clipped at input + pad)."""
    if all(p <= k // 2 for p, k in zip(w.pad, w.kernel, strict=True)):
        return F.avg_pool2d(x, w.kernel, w.stride, w.pad, ceil_mode=ceil_mode, count_include_pad=True)
    summed = F.avg_pool2d(_pad_to(x, w, out_hw, 0.0), w.kernel, w.stride, divisor_override=1)
    divisors = []
    for axis in range(2):
        size, k, s, p = x.shape[2 + axis], w.kernel[axis], w.stride[axis], w.pad[axis]
        starts = torch.arange(out_hw[axis]) * s - p
        ends = torch.clamp(starts + k, max=size + p)
        divisors.append((ends - starts).to(x.dtype))
    return summed / (divisors[0][:, None] * divisors[1][None, :]).to(x.device)


def tiles_exactly(x: Tensor, w: shapes.Window2d, out_hw: tuple[int, int]) -> bool:
    """Whether the windows tile ``x`` exactly: stride = kernel, no pad, H' x W' whole windows inside the input
    (what the M-CNN's subsampling pools do: kernel 2..64 on 1024 x 1280)."""
    return (w.pad == (0, 0) and w.stride == w.kernel
            and all(out_hw[i] * w.kernel[i] <= x.shape[2 + i] for i in range(2)))


def max_of_tiles(x: Tensor, kernel: tuple[int, int], out_hw: tuple[int, int]) -> Tensor:
    """Maxima of the non-overlapping ``kernel`` tiles, rows first and then columns: the same values as
    ``F.max_pool2d`` (a maximum is exact, in any order, NaN included), several times faster on the CPU at
    M-CNN sizes. Used only without a gradient: ``amax`` would share a tied maximum's gradient, Caffe gives it
    to the first."""
    (kh, kw), (oh, ow) = kernel, out_hw
    c = x.shape[1]
    x = x[:, :, :oh * kh, :ow * kw]
    rows = x.reshape(-1, c, oh, kh, ow * kw).amax(dim=3)  # -1: a traced module keeps any batch size
    return rows.reshape(-1, c, oh, ow, kw).amax(dim=4)


def _pad_to(x: Tensor, w: shapes.Window2d, out_hw: tuple[int, int], value: float) -> Tensor:
    """Pad ``x`` by ``w.pad`` and then on the bottom/right so every output window is complete."""
    need = [(out_hw[i] - 1) * w.stride[i] + w.kernel[i] for i in range(2)]
    extra = [max(0, need[i] - (x.shape[2 + i] + 2 * w.pad[i])) for i in range(2)]
    return F.pad(x, (w.pad[1], w.pad[1] + extra[1], w.pad[0], w.pad[0] + extra[0]), value=value)
