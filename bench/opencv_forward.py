#!/usr/bin/env python
"""The reference of bench/vs_caffe.py's evaluation case: OpenCV's Caffe importer over an LMDB.

A short script of the kind a user would write instead of ``tools/evaluate.py``: read a deploy net
and caffemodel with ``cv2.dnn.readNetFromCaffe``, read every Datum record of an LMDB in key order
(Caffe's order), scale the bytes as the Data layer's ``transform_param.scale`` does, run the
forward in batches and write one CSV row per record (key, stored label, predicted label, the
output blob's values ``prob_0``, ``prob_1``, ...). No torch is imported.

  python bench/opencv_forward.py --model prototxt/demo/mcnn_deploy.prototxt --weights w.caffemodel \\
      --lmdb data/demo/test_lmdb --out predictions.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def get_args_parser() -> argparse.ArgumentParser:
    """The net, the records and the output CSV."""
    from mcnn.cli import ArgumentParser

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    net = p.add_argument_group("the net")
    net.add_argument("--model", type=Path, required=True, help="deploy prototxt")
    net.add_argument("--weights", type=Path, required=True, help="caffemodel")
    net.add_argument("--blob", default="prob", help="output blob (default prob)")
    data = p.add_argument_group("the records")
    data.add_argument("--lmdb", type=Path, required=True, help="LMDB of Datum records")
    data.add_argument("--scale", type=float, default=1 / 256, help="multiplier of the bytes (default 1/256)")
    data.add_argument("--batch", type=int, default=16, help="images per forward (default 16)")
    run = p.add_argument_group("run")
    run.add_argument("--threads", type=int, default=0, help="OpenCV threads (default 0: OpenCV's choice)")
    run.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    return p


def main(args: argparse.Namespace) -> int:
    """Forward every record of ``--lmdb`` through OpenCV and write the predictions CSV."""
    import cv2
    import numpy as np

    from mcnn.caffe.datum import LmdbReader, datum_to_array
    from mcnn.cli import output_file
    from mcnn.errors import ConfigError
    from mcnn.tables import write_table

    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch}: must be at least 1")
    output_file(args.out)
    for path in (args.model, args.weights):
        if not path.is_file():
            raise FileNotFoundError(2, "no such file", str(path))
    if args.threads:
        cv2.setNumThreads(args.threads)
    net = cv2.dnn.readNetFromCaffe(str(args.model), str(args.weights))
    rows: list[dict[str, object]] = []
    width = 0

    def flush(keys: list[str], labels: list[int], images: list[np.ndarray]) -> None:
        nonlocal width
        net.setInput(np.stack(images).astype(np.float32) * np.float32(args.scale))
        out = net.forward(args.blob).reshape(len(images), -1)
        width = out.shape[1]
        for key, label, values in zip(keys, labels, out, strict=True):
            rows.append({"key": key, "label": label, "predicted_label": int(values.argmax()),
                         **{f"prob_{i}": float(v) for i, v in enumerate(values)}})

    keys: list[str] = []
    labels: list[int] = []
    images: list[np.ndarray] = []
    with LmdbReader(args.lmdb) as reader:
        for key, datum in reader.items():
            keys.append(key.decode())
            labels.append(int(datum.label))
            images.append(datum_to_array(datum, f"{args.lmdb}: {key.decode()}"))
            if len(images) == args.batch:
                flush(keys, labels, images)
                keys, labels, images = [], [], []
    if images:
        flush(keys, labels, images)
    if not rows:
        raise ConfigError(f"{args.lmdb}: no records")
    write_table(args.out, rows, ["key", "label", "predicted_label", *(f"prob_{i}" for i in range(width))])
    correct = sum(r["predicted_label"] == r["label"] for r in rows)
    print(f"{len(rows)} records, accuracy {100 * correct / len(rows):.2f}%; predictions in {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from mcnn.cli import run

    sys.exit(run("opencv_forward", lambda: main(get_args_parser().parse_args())))
