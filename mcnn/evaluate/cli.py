"""Command-line options shared by tools/evaluate.py, tools/predict.py and tools/reproduce.py."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mcnn.evaluate.predict import ModelRun, run_model


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The options evaluate.py and predict.py share."""
    p.add_argument("--model", required=True, type=Path, help="deploy prototxt")
    p.add_argument("--weights", required=True, type=Path, help="caffemodel")
    p.add_argument("--lmdb", required=True, type=Path, help="LMDB of Datum records to predict")
    p.add_argument("--index", type=Path, help="index CSV of the LMDB (joined by key into the output)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--labels", type=Path, help="labels.txt (default: found next to or above the LMDB)")
    p.add_argument("--train-val", type=Path,
                   help="train_val prototxt whose TEST Data layer gives the preprocessing (default: the "
                        "*_train_val.prototxt next to the deploy net)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass (default 16)")
    p.add_argument("--engine", default=os.environ.get("MCNN_ENGINE", "torch"), choices=("torch", "caffe"),
                   help="torch (default; $MCNN_ENGINE overrides) or pycaffe")
    p.add_argument("--gpu", type=int, help="GPU id (default CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def model_run(args: argparse.Namespace, with_features: bool = False) -> ModelRun:
    """Call :func:`run_model` with the shared options."""
    return run_model(args.model, args.weights, args.lmdb, index=args.index, labels=args.labels,
                     train_val=args.train_val, batch_size=args.batch, engine=args.engine, gpu=args.gpu,
                     with_features=with_features, progress=not args.quiet and sys.stderr.isatty())
