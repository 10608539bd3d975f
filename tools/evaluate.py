#!/usr/bin/env python
"""Evaluate a trained net on a test LMDB: per-image probabilities, accuracy, the confusion matrix.

Example:
  python tools/evaluate.py --model prototxt/hela/mcnn_deploy.prototxt \\
      --weights snapshots/hela/mcnn_iter_436.caffemodel --lmdb data/hela/test_lmdb \\
      --index data/hela/splits/repeat_000/test_index.csv --out runs/hela_eval

Writes predictions.csv (index columns, predicted class, prob_<class> per class), metrics.json,
confusion.csv and confusion.png (drawn like the paper's Fig. 4); for BBBC021 also the
treatment-level MoA results (moa_treatments.csv, moa_confusion.csv/.png). With --examples, the
first record of each class in the LMDB is drawn below the matrices (nuclei blue, GFP/tubulin
green, actin red, as in the paper's Fig. 4 and 5a) and kept in examples.npz.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.caffe.transform import LmdbRecords
from mcnn.cli import ArgumentParser, add_model_arguments, exit_now, output_folder, run
from mcnn.evaluate.fieldview import class_examples, find_channels, resolve_channels
from mcnn.evaluate.outputs import write_evaluation
from mcnn.evaluate.predict import run_model_args


def get_args_parser() -> argparse.ArgumentParser:
    """The model options (:func:`mcnn.cli.add_model_arguments`) and the figure's."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    figure = p.add_argument_group("the confusion-matrix figure")
    figure.add_argument("--title", default="", help="title of the confusion-matrix figure")
    figure.add_argument("--examples", action="store_true",
                        help="draw one example field per class (the first in the LMDB) below the matrix")
    figure.add_argument("--channels", help="with --examples: comma list naming the channels, for the colours "
                        "(default: the dataset.json next to or above the LMDB)")
    return p


def main(args: argparse.Namespace) -> int:
    output_folder(args.out)
    channels = None
    if args.examples:  # the channel names checked before the inference pass
        named = args.channels.split(",") if args.channels else find_channels(args.lmdb)
        where = "--channels" if args.channels else f"the dataset.json above {args.lmdb}"
        channels = resolve_channels(named, LmdbRecords(args.lmdb).shape[0], where)
    result = run_model_args(args)
    examples = (class_examples(args.lmdb, result.predictions.labels, result.classes, channels)
                if channels is not None else None)
    metrics = write_evaluation(args.out, result.rows, result.columns, result.classes, args.title,
                               examples=examples)
    acc = metrics["accuracy"]
    line = f"{metrics['images']} labelled images" + (f", accuracy {100 * acc:.2f}%" if acc is not None else "")
    if "moa" in metrics:
        moa = metrics["moa"]
        line += (f"; {moa['treatments']} treatments, MoA accuracy {100 * moa['treatment_accuracy']:.1f}%, "
                 f"per-MoA median {100 * moa['table1_median']:.0f} (SD {100 * moa['table1_sd']:.0f})")
    print(f"{line}; results in {args.out}")
    return 0


if __name__ == "__main__":
    exit_now(run("evaluate", lambda: main(get_args_parser().parse_args())))
