"""Caffe's weight fillers (``FillerParameter``), with Caffe's fan-in/fan-out definitions.

For a blob of shape (N, C, H, W) Caffe takes fan_in = count / N = C*H*W and
fan_out = count / C = N*H*W; an InnerProduct weight (N, K) has fan_in K, fan_out N.
A layer without a filler gets Caffe's default, the constant 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError

FillFn = Callable[[torch.Tensor, pb.FillerParameter, torch.Generator, str], None]

#: Filler type -> function filling a float32 tensor in place (Caffe's GetFiller in include/caffe/filler.hpp).
FILLERS: dict[str, FillFn] = {}


def register_filler(name: str) -> Callable[[FillFn], FillFn]:
    """Register the decorated function as the filler of ``FillerParameter.type`` ``name``."""
    def register(fn: FillFn) -> FillFn:
        FILLERS[name] = fn
        return fn
    return register


def _fan(shape: tuple[int, ...], norm: int) -> float:
    """Caffe's fan for ``variance_norm``: FAN_IN count/N, FAN_OUT count/C, AVERAGE their mean."""
    count = math.prod(shape)
    fan_in = count / shape[0] if shape else 1.0
    fan_out = count / shape[1] if len(shape) > 1 else float(count)
    if norm == pb.FillerParameter.FAN_OUT:
        return fan_out
    if norm == pb.FillerParameter.AVERAGE:
        return (fan_in + fan_out) / 2
    return fan_in


@register_filler("constant")
def _constant(out: torch.Tensor, f: pb.FillerParameter, generator: torch.Generator, layer: str) -> None:
    """Every value ``f.value``."""
    out.fill_(f.value)


@register_filler("uniform")
def _uniform(out: torch.Tensor, f: pb.FillerParameter, generator: torch.Generator, layer: str) -> None:
    """Uniform on [min, max]."""
    out.uniform_(f.min, f.max, generator=generator)


@register_filler("gaussian")
def _gaussian(out: torch.Tensor, f: pb.FillerParameter, generator: torch.Generator, layer: str) -> None:
    """Normal(mean, std); with ``sparse`` >= 0 Caffe keeps each weight with probability sparse / num_outputs."""
    out.normal_(f.mean, f.std, generator=generator)
    if f.sparse >= 0:
        keep = f.sparse / out.shape[0]
        out *= torch.rand(out.shape, generator=generator) < keep


@register_filler("xavier")
def _xavier(out: torch.Tensor, f: pb.FillerParameter, generator: torch.Generator, layer: str) -> None:
    """Uniform on [-sqrt(3/n), sqrt(3/n)], n the fan chosen by ``variance_norm``."""
    scale = math.sqrt(3.0 / _fan(tuple(out.shape), f.variance_norm))
    out.uniform_(-scale, scale, generator=generator)


@register_filler("msra")
def _msra(out: torch.Tensor, f: pb.FillerParameter, generator: torch.Generator, layer: str) -> None:
    """Normal(0, sqrt(2/n)), n the fan chosen by ``variance_norm``."""
    out.normal_(0.0, math.sqrt(2.0 / _fan(tuple(out.shape), f.variance_norm)), generator=generator)


@register_filler("positive_unitball")
def _positive_unitball(out: torch.Tensor, f: pb.FillerParameter, generator: torch.Generator, layer: str) -> None:
    """Uniform on [0, 1], then each of the N rows divided by its sum."""
    out.uniform_(0.0, 1.0, generator=generator)
    rows = out.view(out.shape[0], -1)
    rows /= rows.sum(dim=1, keepdim=True)


@register_filler("bilinear")
def _bilinear(out: torch.Tensor, f: pb.FillerParameter, generator: torch.Generator, layer: str) -> None:
    """The bilinear upsampling kernel (1 - |x/f - c|)(1 - |y/f - c|), f = ceil(k/2), c = (k-1)/(2f)."""
    shape = tuple(out.shape)
    if len(shape) != 4 or shape[2] != shape[3]:
        raise ConfigError(f"layer {layer!r}: bilinear filler needs a square 4-D weight, got {shape}")
    k = shape[3]
    fk = math.ceil(k / 2)
    c = (k - 1) / (2.0 * fk)
    ys = torch.arange(k, dtype=torch.float32)
    profile = 1 - torch.abs(ys / fk - c)
    out[:] = profile[:, None] * profile[None, :]


def fill(shape: tuple[int, ...], filler: pb.FillerParameter, generator: torch.Generator,
         layer: str = "?") -> torch.Tensor:
    """A float32 CPU tensor of ``shape`` filled as Caffe's ``filler`` would fill it."""
    fn = FILLERS.get(filler.type)
    if fn is None:
        raise ConfigError(f"layer {layer!r}: unknown filler type {filler.type!r}; supported: {', '.join(FILLERS)}")
    out = torch.empty(shape, dtype=torch.float32)
    fn(out, filler, generator, layer)
    return out
