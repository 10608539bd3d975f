#!/usr/bin/env python
"""Soft predictions for a whole screen, per field and per treatment.

Example (BBBC021, the 13-class model of the paper's §3.3, every one of the 13,200 fields):
  python tools/predict.py --model runs/bbbc021_full/mcnn_deploy.prototxt \\
      --weights runs/bbbc021_full/snapshots/mcnn_iter_N.caffemodel \\
      --lmdb data/bbbc021_full/screen_lmdb --index data/bbbc021_full/screen_index.csv --out runs/screen

Writes predictions.csv (one row per field: index columns, predicted class, prob_<class>) and,
when the index has compounds and concentrations, treatments.csv: the median over the fields of
each well, then over the wells of each compound-concentration (the paper's Supplementary
Table 4). tools/dose_response.py reads predictions.csv as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import add_model_arguments, run
from mcnn.evaluate.outputs import write_screen
from mcnn.evaluate.predict import run_model_args


def get_args_parser() -> argparse.ArgumentParser:
    """The model options (:func:`mcnn.cli.add_model_arguments`)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    return p


def main(args: argparse.Namespace) -> int:
    result = run_model_args(args)
    summary = write_screen(args.out, result.rows, result.columns, result.classes)
    treatments = f", {summary['treatments']} treatments" if "treatments" in summary else ""
    print(f"{summary['fields']} fields{treatments}; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run("predict", lambda: main(get_args_parser().parse_args())))
