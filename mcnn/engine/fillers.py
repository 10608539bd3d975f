"""Caffe's weight fillers (``FillerParameter``), with Caffe's fan-in/fan-out definitions.

For a blob of shape (N, C, H, W) Caffe takes fan_in = count / N = C*H*W and
fan_out = count / C = N*H*W; an InnerProduct weight (N, K) has fan_in K, fan_out N.
A layer without a filler gets Caffe's default, the constant 0.
"""

from __future__ import annotations

import math

import torch

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError

FILLERS = ("constant", "gaussian", "uniform", "xavier", "msra", "positive_unitball", "bilinear")


def _fan(shape: tuple[int, ...], norm: int) -> float:
    count = math.prod(shape)
    fan_in = count / shape[0] if shape else 1.0
    fan_out = count / shape[1] if len(shape) > 1 else float(count)
    if norm == pb.FillerParameter.FAN_OUT:
        return fan_out
    if norm == pb.FillerParameter.AVERAGE:
        return (fan_in + fan_out) / 2
    return fan_in


def fill(shape: tuple[int, ...], filler: pb.FillerParameter, generator: torch.Generator,
         layer: str = "?") -> torch.Tensor:
    """A float32 CPU tensor of ``shape`` filled as Caffe's ``filler`` would fill it."""
    kind = filler.type
    out = torch.empty(shape, dtype=torch.float32)
    if kind == "constant":
        out.fill_(filler.value)
    elif kind == "uniform":
        out.uniform_(filler.min, filler.max, generator=generator)
    elif kind == "gaussian":
        out.normal_(filler.mean, filler.std, generator=generator)
        if filler.sparse >= 0:
            # Caffe keeps each weight with probability sparse / num_outputs.
            keep = filler.sparse / shape[0]
            out *= torch.rand(shape, generator=generator) < keep
    elif kind == "xavier":
        scale = math.sqrt(3.0 / _fan(shape, filler.variance_norm))
        out.uniform_(-scale, scale, generator=generator)
    elif kind == "msra":
        out.normal_(0.0, math.sqrt(2.0 / _fan(shape, filler.variance_norm)), generator=generator)
    elif kind == "positive_unitball":
        out.uniform_(0.0, 1.0, generator=generator)
        rows = out.view(shape[0], -1)
        rows /= rows.sum(dim=1, keepdim=True)
    elif kind == "bilinear":
        if len(shape) != 4 or shape[2] != shape[3]:
            raise ConfigError(f"layer {layer!r}: bilinear filler needs a square 4-D weight, got {shape}")
        k = shape[3]
        f = math.ceil(k / 2)
        c = (k - 1) / (2.0 * f)
        ys = torch.arange(k, dtype=torch.float32)
        profile = 1 - torch.abs(ys / f - c)
        out[:] = profile[:, None] * profile[None, :]
    else:
        raise ConfigError(f"layer {layer!r}: unknown filler type {kind!r}; supported: {', '.join(FILLERS)}")
    return out
