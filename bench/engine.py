#!/usr/bin/env python
"""Benchmark the engine: forward images/s against OpenCV's Caffe importer, and training images/s.

Both run the same committed deploy net, the same caffemodel (written by the engine) and the
same inputs, in one process, so the ratio is a like-for-like comparison on this machine. The
forwards (compiled, eager, OpenCV) alternate, round by round, and the ratio is the median of the rounds' ratios. The
result (a JSON file and a Markdown table with the machine described) goes to bench/results/.

  python bench/engine.py                       # demo (2x128x128) and BBBC021 (3x1024x1280) sizes
  python bench/engine.py --sizes demo --repeat 20
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure as m  # noqa: E402  (bench/measure.py, beside this script)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mcnn.caffe import io as cio  # noqa: E402
from mcnn.caffe import pb  # noqa: E402
from mcnn.engine.inference import InferenceModel  # noqa: E402
from mcnn.engine.net import Net  # noqa: E402
from mcnn.machine import cpu_model  # noqa: E402

SIZES = {"demo": "prototxt/demo/mcnn_deploy.prototxt", "bbbc021": "prototxt/bbbc021/mcnn_deploy.prototxt"}


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    info: dict[str, object] = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                               "python": platform.python_version(), "torch": torch.__version__,
                               "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        info["opencv"] = None
    return info


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    return float(np.median(m.alternating_times({"fn": fn}, repeat)["fn"]))


def bench_size(name: str, batch: int, repeat: int, device: str, train_iters: int) -> dict[str, object]:
    deploy = ROOT / SIZES[name]
    net = Net(cio.read_net(deploy), pb.TEST, generator=torch.Generator().manual_seed(0), device=device)
    shape = net.blob_shapes["data"]
    x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
    result: dict[str, object] = {"size": name, "input": "x".join(map(str, shape)), "batch": batch, "device": device}

    def eager_forward() -> None:
        with torch.inference_mode():
            net.forward({"data": x})["prob"].cpu()

    fast = InferenceModel(net, ["prob"])

    def engine_forward() -> None:  # what evaluate.py / predict.py use
        fast(x)

    forwards: dict[str, Callable[[], object]] = {"engine": engine_forward, "eager": eager_forward}
    try:
        import cv2

        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "bench.caffemodel"
            cio.write_caffemodel(model, net.to_caffemodel())
            cv_net = cv2.dnn.readNetFromCaffe(str(deploy), str(model))

        def opencv_forward() -> None:
            cv_net.setInput(x)
            cv_net.forward("prob")

        forwards["opencv"] = opencv_forward
    except ImportError:
        pass
    times = m.alternating_times(forwards, repeat)
    result["rounds"] = repeat
    result["engine_forward_images_per_s"] = batch / float(np.median(times["engine"]))
    result["engine_eager_forward_images_per_s"] = batch / float(np.median(times["eager"]))
    result["opencv_forward_images_per_s"] = None
    if "opencv" in times:
        result["opencv_forward_images_per_s"] = batch / float(np.median(times["opencv"]))
        ratios = [cv / en for cv, en in zip(times["opencv"], times["engine"], strict=True)]
        result["engine_over_opencv"] = float(np.median(ratios))
        result["engine_over_opencv_range"] = [min(ratios), max(ratios)]

    # Training: forward + backward + a Caffe SGD update on the train_val variant of the same net.
    train_net = Net(cio.read_net(ROOT / SIZES[name].replace("_deploy", "_train_val")), pb.TRAIN,
                    data_shapes={"data": shape}, generator=torch.Generator().manual_seed(0), device=device)
    from mcnn.engine.solver import Updater

    solver = pb.SolverParameter(base_lr=0.001, momentum=0.9, weight_decay=0.0005, lr_policy="fixed")
    updater = Updater(solver, train_net.learnable())
    classes = int(net.blob_shapes["prob"][0])
    labels = torch.from_numpy((np.arange(batch) % classes).astype(np.float32))

    def train_step() -> None:
        for blob in train_net.learnable():
            blob.tensor.grad = None
        blobs = train_net.forward({"data": x, "label": labels}, train=True)
        train_net.loss(blobs).backward()
        updater.apply(0.001, 0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    t_train = timed(train_step, train_iters)
    result["train_images_per_s"] = batch / t_train
    return result


def ratio_text(result: dict[str, object]) -> str:
    """The engine/OpenCV median ratio with its per-round range, e.g. ``2.61 (2.40-2.83)``; ``—`` without OpenCV."""
    if result.get("engine_over_opencv") is None:
        return "—"
    low, high = result["engine_over_opencv_range"]
    return f"{result['engine_over_opencv']:.2f} ({low:.2f}-{high:.2f})"


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    results = [bench_size(size, args.batch.get(size, 1) if isinstance(args.batch, dict) else args.batch,
                          args.repeat if size == "demo" else max(3, args.repeat // 2), args.device,
                          args.train_iters if size == "demo" else max(2, args.train_iters // 5))
               for size in args.sizes]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    info = machine()
    payload = {"when": stamp, "machine": info, "results": results}
    lines = [f"# Engine benchmark {stamp}", "", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
             "| size | input | batch | device | engine fwd img/s (eager) | OpenCV fwd img/s | engine/OpenCV "
             "(per-round range) | train img/s |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        cv = r["opencv_forward_images_per_s"]
        lines.append(f"| {r['size']} | {r['input']} | {r['batch']} | {r['device']} | "
                     f"{r['engine_forward_images_per_s']:.2f} ({r['engine_eager_forward_images_per_s']:.2f}) | "
                     f"{cv if cv is None else f'{cv:.2f}'} | "
                     f"{ratio_text(r)} | {r['train_images_per_s']:.2f} |")
    text = "\n".join(lines) + "\n"
    m.write_results(Path(args.out), f"engine-{stamp}", payload, text)
    print(text)
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--batch", type=int, default=None, help="images per forward (default 16 demo, 1 bbbc021)")
    p.add_argument("--repeat", type=int, default=10,
                   help="alternated rounds of timed forwards (engine, OpenCV) at the demo size, half at bbbc021")
    p.add_argument("--train-iters", type=int, default=10, help="timed training steps at the demo size")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for engine-<time>.json and .md")
    return p


if __name__ == "__main__":
    parsed = get_args_parser().parse_args()
    parsed.batch = {"demo": 16, "bbbc021": 1} if parsed.batch is None else parsed.batch
    sys.exit(main(parsed))
