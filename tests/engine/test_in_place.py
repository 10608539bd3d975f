"""Caffe's in-place ReLU computed in place where no gradient needs the old values, bit for bit as out of place;
and the C allocator kept from returning freed activations to the kernel (mcnn.engine.process)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import torch
from google.protobuf import text_format

from mcnn.caffe import pb
from mcnn.engine.net import Net
from tests.support import ROOT

NET = """
name: "inplace"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 2 dim: 12 dim: 12 } shape { dim: 2 } } }
layer { name: "relu_data" type: "ReLU" bottom: "data" top: "data" }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "relu1b" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "relu_pool" type: "ReLU" bottom: "pool1" top: "pool1" relu_param { negative_slope: 0.2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 3 kernel_size: 1 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "side" type: "Sigmoid" bottom: "conv2" top: "side" }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "sig" type: "Sigmoid" bottom: "side" top: "side" }
layer { name: "relu_sig" type: "ReLU" bottom: "side" top: "side" }
layer { name: "cat" type: "Concat" bottom: "conv2" bottom: "side" top: "cat" }
layer { name: "relu_cat" type: "ReLU" bottom: "cat" top: "cat" }
layer { name: "fc" type: "InnerProduct" bottom: "cat" top: "fc"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu_fc" type: "ReLU" bottom: "fc" top: "fc" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""

#: A ReLU runs in place right after a Convolution, Pooling, Concat or InnerProduct that nothing else read yet.
IN_PLACE = {"relu1", "relu_pool", "relu_cat", "relu_fc"}


def _net() -> Net:
    return Net(text_format.Parse(NET, pb.NetParameter()), pb.TRAIN, generator=torch.Generator().manual_seed(3))


def _pass(net: Net, x: torch.Tensor) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    for blob in net.learnable():
        blob.tensor.grad = None
    blobs = net.forward({"data": x, "label": torch.tensor([0.0, 2.0])}, train=True)
    net.loss(blobs).backward()
    return ({k: v.detach().numpy().copy() for k, v in blobs.items()},
            [b.tensor.grad.numpy().copy() for b in net.learnable()])


def test_in_place_relus_are_the_safe_ones() -> None:
    net = _net()
    assert {e.param.name for e in net.entries if e.impl is not None and e.impl.in_place} == IN_PLACE


def test_in_place_equals_out_of_place_bit_for_bit() -> None:
    x = torch.randn(2, 2, 12, 12, generator=torch.Generator().manual_seed(1))
    fast = _net()
    slow = _net()
    for entry in slow.entries:
        if entry.impl is not None:
            entry.impl.in_place = False
    x_before = x.clone()
    blobs_fast, grads_fast = _pass(fast, x)
    torch.testing.assert_close(x, x_before, rtol=0, atol=0)  # the fed tensor is never overwritten
    blobs_slow, grads_slow = _pass(slow, x)
    assert blobs_fast.keys() == blobs_slow.keys()
    for name in blobs_fast:
        np.testing.assert_array_equal(blobs_fast[name], blobs_slow[name], err_msg=name)
    assert len(grads_fast) == 6 and all(np.abs(g).sum() > 0 for g in grads_fast)
    for a, b in zip(grads_fast, grads_slow, strict=True):
        np.testing.assert_array_equal(a, b)
    assert blobs_fast["conv1"].min() == 0 and blobs_fast["side"].min() > 0  # rectified; sigmoid, then ReLU


def _faults(env: dict[str, str]) -> int:
    code = ("import resource, torch\n"
            "from mcnn.engine.process import retain_freed_memory\n"
            "print(retain_freed_memory())\n"
            "torch.ones(1 << 24).sum()\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(5):\n"
            "    torch.ones(1 << 24).sum()\n"  # 64 MB, freed again at once
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, **env})
    applied, faults = out.stdout.split()
    assert applied == str(env.get("MCNN_MALLOC") != "system")
    return int(faults)


def test_freed_activations_stay_in_the_heap() -> None:
    if not sys.platform.startswith("linux"):
        return
    kept = _faults({})
    returned = _faults({"MCNN_MALLOC": "system"})
    # 5 x 64 MB in 4 KB pages: about 82,000 faults when each block is mmap-ed afresh
    assert returned > 50_000
    assert kept < 2_000
