#!/usr/bin/env python
"""MAX pooling of a committed M-CNN, layer by layer: PyTorch's ``max_pool2d`` against the tiled maxima.

For every MAX Pooling layer of a committed deploy net whose windows tile its input (stride = kernel,
no pad: the M-CNN's subsampling pools of the image and its pathways' last pools), one random input
of the layer's shape is pooled both ways without a gradient (an evaluation, or a training step's
pyramid; :mod:`mcnn.engine.pooling` tiles from ``TILED_MIN_ELEMENTS`` elements on), alternating in
``--repeat`` rounds, and the two outputs must be equal. Prints a table and writes
pooling-<time>.json and .md to ``--out``.

  python bench/pooling.py                       # BBBC021's M-CNN, 3 x 1024 x 1280
  python bench/pooling.py --net prototxt/demo/mcnn_deploy.prototxt --repeat 5
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure as m  # noqa: E402  (bench/measure.py, beside this script)
import torch  # noqa: E402

from mcnn.caffe import io as cio  # noqa: E402
from mcnn.caffe import pb, shapes  # noqa: E402
from mcnn.engine import pooling  # noqa: E402
from mcnn.engine.layers import Pooling  # noqa: E402
from mcnn.engine.net import Net  # noqa: E402


def tiled_layers(net: Net) -> list[tuple[str, tuple[int, ...], shapes.Window2d, tuple[int, int], bool]]:
    """(layer, input shape, window, output size, ceil mode) of each MAX pool of ``net`` whose windows tile."""
    found = []
    for entry in net.entries:
        impl = entry.impl
        if not isinstance(impl, Pooling) or impl.method != pb.PoolingParameter.MAX:
            continue
        shape = (1, *net.blob_shapes[entry.bottoms[0]])
        w = shapes.pool_window(entry.param.pooling_param, shape[2:], entry.param.name)
        out_hw = shapes.pool_output_hw(w, shape[2:], entry.param.name, impl.ceil_mode)
        if pooling.tiles_exactly(torch.empty(shape, device="meta"), w, out_hw):
            found.append((entry.param.name, shape, w, out_hw, impl.ceil_mode))
    return found


def main(args: argparse.Namespace) -> int:
    net = Net(cio.read_net(args.net), pb.TEST, generator=torch.Generator().manual_seed(0))
    rows, records = [], []
    with torch.no_grad():
        for name, shape, w, out_hw, ceil in tiled_layers(net):
            x = torch.rand(shape, generator=torch.Generator().manual_seed(len(rows)))
            calls = {"library": functools.partial(pooling.max_pool, x, w, out_hw, ceil, False),
                     "tiled": functools.partial(pooling.max_of_tiles, x, w.kernel, out_hw)}
            if not torch.equal(calls["library"](), calls["tiled"]()):
                raise AssertionError(f"layer {name!r}: the tiled maxima differ from max_pool2d's")
            best = m.best_alternating(calls, args.repeat)
            records.append({"layer": name, "input": list(shape), "kernel": list(w.kernel),
                            "max_pool2d_ms": 1e3 * best["library"], "tiled_ms": 1e3 * best["tiled"]})
            rows.append([name, "x".join(map(str, shape[1:])), w.kernel[0], f"{1e3 * best['library']:.2f}",
                         f"{1e3 * best['tiled']:.2f}", f"{best['library'] / best['tiled']:.1f}"])
    total = [sum(r[k] for r in records) for k in ("max_pool2d_ms", "tiled_ms")]
    rows.append(["all", "", "", f"{total[0]:.2f}", f"{total[1]:.2f}", f"{total[0] / total[1]:.1f}"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {"when": stamp, "net": str(args.net), "machine": m.machine(), "layers": records}
    text = "\n".join([f"# MAX pooling, {args.net} ({stamp})", "",
                      f"Best of {args.repeat} alternated rounds, no gradient, one image; equal outputs.", "",
                      *m.table(["layer", "input", "kernel", "max_pool2d ms", "tiled ms", "ratio"], rows)]) + "\n"
    print(text + f"results: {m.write_results(args.out, f'pooling-{stamp}', payload, text)[1]}")
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", type=Path, default=ROOT / "prototxt" / "bbbc021" / "mcnn_deploy.prototxt",
                   help="a deploy prototxt (default BBBC021's M-CNN)")
    p.add_argument("--repeat", type=int, default=10, help="alternated rounds (default 10)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for the results")
    return p


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
