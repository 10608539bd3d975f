#!/usr/bin/env python
"""Soft predictions and profiles for a whole screen, per field, per well and per treatment.

Example (BBBC021, the 13-class model of the paper's §3.3, every one of the 13,200 fields):
  python tools/predict.py --model runs/bbbc021_full/mcnn_deploy.prototxt \\
      --weights runs/bbbc021_full/snapshots/mcnn_iter_N.caffemodel \\
      --lmdb data/bbbc021_full/screen_lmdb --index data/bbbc021_full/screen_index.csv --out runs/screen

Streams the LMDB chunk by chunk (memory flat in the number of fields; a killed run resumes) and
writes fields.parquet (per field: index columns, prob_<class>, the penultimate layer's MCNN_*
features), predictions.csv (the same without features; tools/dose_response.py reads it),
wells.parquet (the median per well: profiles for pycytominer) and, when the index has compounds
and concentrations, treatments.csv: the median over the wells of each compound-concentration
(the paper's Supplementary Table 4). With --negative-control, also the phenotypic activity of
every treatment against those wells (activity.csv, activity.png; copairs, the 'screen' extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, add_model_arguments, exit_now, output_folder, run
from mcnn.screening import ScreenSettings, screen_outputs


def get_args_parser() -> argparse.ArgumentParser:
    """The model options (:func:`mcnn.cli.add_model_arguments`) and the control wells of the activity."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--negative-control", metavar="COLUMN=VALUE[|VALUE]",
                   help="the negative-control wells, e.g. Metadata_Compound=DMSO: adds activity.csv (mAP per "
                        "treatment against them)")
    p.add_argument("--chunk", type=int, default=512,
                   help="fields per resumable part: a killed run redoes at most this many (default 512)")
    p.add_argument("--csv", action="store_true", help="also write the profiles as CSV (fields.csv, wells.csv)")
    return p


def main(args: argparse.Namespace) -> int:
    """Predict the screen and write the per-field, per-well and per-treatment tables."""
    output_folder(args.out)
    settings = ScreenSettings(negative_control=args.negative_control or "", engine=args.engine, gpu=args.gpu,
                              batch=args.batch, progress=not args.quiet and sys.stderr.isatty(),
                              activity=bool(args.negative_control), dose=False,
                              profiles_csv=args.csv, chunk=args.chunk)
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    # labels and preprocessing: the flags, else the weights' model card, else the files beside the net and LMDB
    outputs = screen_outputs(args.model, args.weights, args.lmdb, args.index, args.out, labels=args.labels,
                             train_val=args.train_val, settings=settings, log=log)
    counts = outputs.counts
    treatments = f", {counts['treatments']} treatments" if outputs.treatments else ""
    wells = f", {counts['wells']} wells" if outputs.wells else ""
    print(f"{counts['fields']} fields{wells}{treatments}; results in {outputs.out}"
          + (" (with activity.csv)" if outputs.activity else ""))
    return 0


if __name__ == "__main__":
    exit_now(run("predict", lambda: main(get_args_parser().parse_args())))
