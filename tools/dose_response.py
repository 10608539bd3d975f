#!/usr/bin/env python
"""Dose-response curves and EC50s from per-image soft predictions (the paper's Fig. 3b and 5b).

Reads a predictions CSV (tools/predict.py, tools/evaluate.py; docs/formats.md), takes per group
(compound) and concentration the median over the fields of each replicate, then the median and raw
MAD over replicates, fits R drc's LL.4 to each selected class, and writes ec50.csv, ec50.json,
points.csv and PNG plots under --out. See docs/dose_response.md.

Examples:
  python tools/dose_response.py --predictions preds.csv --out dose/
  python tools/dose_response.py --predictions preds.csv --out dose/ --class MD --class DMSO \\
      --training-index data/bbbc021/splits/full/train_index.csv --dataset-json data/bbbc021/dataset.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, output_folder, run
from mcnn.dose.aggregate import CELL_LINE, COMPOUND, DEFAULT_CONTROLS
from mcnn.dose.analysis import FIT_TO, DoseSettings
from mcnn.dose.pipeline import analyze
from mcnn.errors import ConfigError


def get_args_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", type=Path, required=True, help="per-image predictions CSV (formats.md)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--class", dest="classes", action="append", default=[], metavar="NAME",
                   help="class to fit (repeatable; a class name or its prob_ column). Default: the positive "
                        "(second) class of a 2-class model, every class of a multi-class model")
    p.add_argument("--group",
                   help="column(s) that identify a curve, comma list; 'compound' means Metadata_Compound "
                        f"(default {COMPOUND}, plus {CELL_LINE} when the file has it)")
    p.add_argument("--training-index", type=Path, action="append", default=[], metavar="TRAIN_INDEX.csv",
                   help="index CSV of the training images (repeatable): their concentrations are marked")
    p.add_argument("--unit", help="concentration unit for labels (default: concentration_unit of --dataset-json)")
    p.add_argument("--dataset-json", type=Path, help="a prepared dataset's dataset.json, for the unit")
    p.add_argument("--control", dest="controls", action="append", metavar="NAME",
                   help=f"compound name of control wells (repeatable; default {', '.join(DEFAULT_CONTROLS)}); "
                        "concentration 0 and Metadata_Role negative_control are controls too")
    f = p.add_argument_group("fit")
    f.add_argument("--fit-to", choices=FIT_TO, default="medians",
                   help="fit the per-concentration medians (the paper, default) or every replicate's median")
    f.add_argument("--level", type=float, default=0.95, help="EC50 confidence level (default 0.95)")
    f.add_argument("--alpha", type=float, default=0.05,
                   help="F-test level: a curve no better than a flat line at this level is 'flat' (default 0.05)")
    f.add_argument("--min-concentrations", type=int, default=5,
                   help="fewest distinct concentrations to fit (default 5)")
    f.add_argument("--min-span", type=float, default=0.1,
                   help="smallest change of the fitted probability over the tested range that is not 'flat' "
                        "(default 0.1)")
    f.add_argument("--plateau-fraction", type=float, default=0.2,
                   help="the tested range must bring the curve this close (fraction of top - bottom) to both "
                        "asymptotes, else 'no_plateau' (default 0.2)")
    o = p.add_argument_group("plots")
    o.add_argument("--plot-style", choices=("auto", "single", "multiclass"), default="auto",
                   help="single: one Fig. 3b panel per group and fitted class; multiclass: one Fig. 5b panel per "
                        "group with every class; auto: single when one class is fitted (default)")
    o.add_argument("--no-plots", action="store_true", help="write the tables only")
    return p


def unit_from(args: argparse.Namespace) -> str:
    if args.unit is not None:
        return args.unit
    if args.dataset_json is None:
        return ""
    try:
        meta = json.loads(args.dataset_json.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--dataset-json {args.dataset_json}: not JSON ({exc.msg}, line {exc.lineno})") from None
    unit = meta.get("concentration_unit", "") if isinstance(meta, dict) else ""
    return unit if isinstance(unit, str) else ""


def main(args: argparse.Namespace) -> int:
    output_folder(args.out)
    settings = DoseSettings(
        unit=unit_from(args), fit_to=args.fit_to, level=args.level, alpha=args.alpha,
        min_concentrations=args.min_concentrations, min_span=args.min_span, plateau_fraction=args.plateau_fraction,
        control_names=tuple(args.controls or DEFAULT_CONTROLS),
        extra={"predictions": str(args.predictions), "training_index": [str(p) for p in args.training_index]},
    )
    analysis = analyze(args.predictions, args.out, settings, args.classes, args.group, args.training_index,
                       plots=not args.no_plots, plot_style=args.plot_style)
    counts = Counter(r.fit.status for r in analysis.results)
    summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    print(f"dose_response: {len(analysis.groups)} group(s) x {len(analysis.fit_classes)} class(es): {summary}",
          file=sys.stderr)
    print(f"dose_response: wrote {len(analysis.written)} files under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run("dose_response", lambda: main(get_args_parser().parse_args())))
