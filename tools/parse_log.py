#!/usr/bin/env python
"""Training log -> Caffe's parse_log.py tables (LOG.train, LOG.test) and a PNG of the training curves.

Reads the glog lines of `tools/train.py` (or reproduce's runs/<arch>/<split>/train.log) and of real
`caffe train`, and writes what Caffe's tools/extra/parse_log.py (Python 2 only) writes: <log name>.train
and <log name>.test, columns NumIters, Seconds, LearningRate and one per net output, one row per
iteration that logged outputs; then <log name>.png with the loss and test-output curves.

Examples:
  python tools/train.py -solver solver.prototxt 2> train.log
  python tools/parse_log.py train.log                  # train.log.train, train.log.test, train.log.png beside it
  python tools/parse_log.py caffe.INFO curves/ --no-plot
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.caffe.trainlog import parse_log, plot_log, write_csvs
from mcnn.cli import ArgumentParser, output_folder, run
from mcnn.errors import BadInputError


def get_args_parser() -> argparse.ArgumentParser:
    """The log, the output folder and the figure switch."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", type=Path, metavar="LOG", help="training log (glog lines of caffe train or tools/train.py)")
    p.add_argument("out", type=Path, nargs="?", metavar="OUT_DIR", help="output folder (default: the log's folder)")
    g = p.add_argument_group("figure")
    g.add_argument("--no-plot", action="store_true", help="write the two tables only")
    return p


def main(args: argparse.Namespace) -> int:
    """Parse the log (checked before anything is written), write the tables and the figure, list them."""
    out = output_folder(args.out, "OUT_DIR") or args.log.parent
    log = parse_log(args.log)
    if not log.train and not log.test:
        raise BadInputError(str(args.log), "no 'Train net output' or 'Test net output' line after the first "
                                           "'Iteration N' line: nothing to tabulate")
    out.mkdir(parents=True, exist_ok=True)
    written = write_csvs(log, out)
    if not args.no_plot:
        figure = plot_log(log, out / f"{args.log.name}.png")
        written += [figure] if figure is not None else []
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run("parse_log", lambda: main(get_args_parser().parse_args())))
