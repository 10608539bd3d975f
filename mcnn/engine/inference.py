"""Fast forward passes for deployment: the net traced, frozen and optimised by TorchScript.

On the CPU, ``torch.jit.optimize_for_inference`` runs each convolution through oneDNN with its
weights prepacked once and keeps activations in oneDNN's blocked layout from layer to layer (the
ReLUs stay separate passes: torch 2.13 does not fuse them into these convolutions); the outputs
are the eager net's (checked to 1e-5 the first time each input shape is seen). One traced module is
kept per input shape; nets that cannot be traced fall back to eager execution.

Compiling costs about three forward passes of a batch (the trace, the check, the optimisation), so
a short job runs eagerly: :func:`worth_compiling` decides from the job's size and the net's
arithmetic alone, the same way for every run of the same job (a resumed screen prediction computes
what an uninterrupted one does).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from mcnn.engine.net import Net
from mcnn.nets.summary import summarize

#: A job is compiled when it runs at least this many batches ...
COMPILE_MIN_BATCHES = 8
#: ... and at least this much arithmetic (2 x multiply-adds, all images together).
COMPILE_MIN_FLOP = 100e9


def forward_flops(net: Net) -> float:
    """Floating-point operations (2 x multiply-adds) of one image's forward, as ``make_net.py --summary``
    counts them (:func:`mcnn.nets.summary.summarize`)."""
    feeds = {name: net.blob_shapes[name] for name in net.feeds if name in net.blob_shapes}
    return 2.0 * summarize(net.param, feeds, net.phase).macs


def worth_compiling(net: Net, images: int, batch_size: int) -> bool:
    """Whether tracing and freezing ``net`` pays for a job of ``images`` images in batches of ``batch_size``
    (on the CPU; other devices run eagerly). The demo M-CNN (2 x 128 x 128, 0.62 GFLOP an image) compiles
    from 161 images on; BBBC021's (3 x 1024 x 1280, 51 GFLOP) from 8 batches, e.g. 8 images one at a time."""
    batches = math.ceil(images / max(batch_size, 1))
    return (net.device.type == "cpu" and batches >= COMPILE_MIN_BATCHES
            and images * forward_flops(net) >= COMPILE_MIN_FLOP)


class _Blobs(torch.nn.Module):
    def __init__(self, net: Net, feed: str, outputs: Sequence[str]):
        super().__init__()
        self.net, self.feed, self.outputs = net, feed, list(outputs)
        self.params = torch.nn.ParameterList(list(net.parameters()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        blobs = self.net.forward({self.feed: x})
        return tuple(blobs[name] for name in self.outputs)


class InferenceModel:
    """Callable ``batch (N x C x H x W float32) -> {blob: array}`` for the blobs ``outputs``."""

    def __init__(self, net: Net, outputs: Sequence[str], optimize: bool | None = None):
        self.net = net
        self.feed = next(iter(net.feeds))
        self.outputs = list(outputs)
        self.module = _Blobs(net, self.feed, self.outputs).eval()
        self.optimize = net.device.type == "cpu" if optimize is None else optimize
        self._traced: dict[tuple[int, ...], torch.jit.ScriptModule | None] = {}

    def _compiled(self, x: torch.Tensor) -> tuple[torch.jit.ScriptModule | None, tuple[torch.Tensor, ...] | None]:
        """The frozen module of ``x``'s shape (None: run eagerly) and, the first time the shape is seen,
        its outputs for ``x`` (computed for the check, so the caller need not run the batch again)."""
        key = tuple(x.shape)
        if key in self._traced:
            return self._traced[key], None
        first: tuple[torch.Tensor, ...] | None = None
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(self.module, x, check_trace=False)
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
                fast = frozen(x)
                slow = self.module(x)
            ok = all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(fast, slow, strict=True))
            self._traced[key] = frozen if ok else None
            first = fast if ok else slow
        except (RuntimeError, torch.jit.Error):
            self._traced[key] = None
        return self._traced[key], first

    def __call__(self, batch: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
        x = torch.as_tensor(batch, dtype=torch.float32).to(self.net.device)
        compiled, outs = self._compiled(x) if self.optimize else (None, None)
        if outs is None:
            with torch.inference_mode():
                outs = compiled(x) if compiled is not None else self.module(x)
        return {name: out.float().cpu().numpy() for name, out in zip(self.outputs, outs, strict=True)}
