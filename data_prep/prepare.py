#!/usr/bin/env python
"""Convert a dataset's raw download into the paper's train/test LMDBs (docs/data_prep.md).

Examples:
  python data_prep/prepare.py bbbc021 --raw ~/BBBC021 --out data/bbbc021                 # 38 LOCO folds
  python data_prep/prepare.py bbbc021 --raw ~/BBBC021 --out data/bbbc021_full --protocol full
  python data_prep/prepare.py hela --raw ~/iicbu --out data/hela --repeats 50 --seed 1
  python data_prep/prepare.py bbbc013 --raw ~/BBBC013 --out data/bbbc013 --augment d4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import add_quiet_argument, float_list, int_list, run
from mcnn.datasets import DATASETS
from mcnn.errors import ConfigError
from mcnn.prep import PrepOptions, prepare
from mcnn.prep.augment import AUGMENTS
from mcnn.prep.decode import default_workers
from mcnn.prep.normalize import SCOPES, STATS, TRANSFORMS


def _epilog() -> str:
    """The ``--help`` epilog: every dataset's ``--option`` settings with their defaults."""
    lines = ["dataset options (--option NAME=VALUE):"]
    for name, cls in DATASETS.items():
        for opt in cls.options:
            lines.append(f"  {name}: {opt.name}={opt.default}  {opt.help}")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    """The command line of ``prepare.py`` (flags documented in docs/data_prep.md)."""
    p = argparse.ArgumentParser(description=__doc__, epilog=_epilog(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=list(DATASETS), help="which dataset RAW holds")
    p.add_argument("--raw", type=Path, required=True, help="the unpacked download, exactly as the publisher ships it")
    p.add_argument("--out", type=Path, required=True, help="output folder (re-runs skip what is complete)")
    s = p.add_argument_group("protocol")
    s.add_argument("--protocol", choices=("cv", "loco", "full"),
                   help="cv: per-class 90/10 splits (default, bbbc021: loco); loco: one fold per compound (bbbc021); "
                        "full: one split with every labelled image for training (bbbc021: 12 MoAs + DMSO, and the "
                        "screen LMDB)")
    s.add_argument("--repeats", type=int, default=50, help="cross-validation repeats (default 50, the paper's)")
    s.add_argument("--seed", type=int, default=0, help="seed of the splits and write orders (default 0)")
    s.add_argument("--test-fraction", type=float, default=0.1, help="per-class test fraction of cv (default 0.1)")
    s.add_argument("--only", help="build only these splits (comma list, e.g. fold_taxol,fold_alln)")
    s.add_argument("--augment", choices=AUGMENTS, default="none",
                   help="write each training image in the 8 rotations/flips (d4, square images) or the 4 "
                        "shape-preserving ones (d2); default none")
    s.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a dataset option (listed below); repeatable")
    n = p.add_argument_group("intensity mapping to 8 bit (defaults per dataset, docs/data_prep.md)")
    n.add_argument("--norm-scope", choices=SCOPES, help="statistics from: none, each image, or the plate's DMSO images")
    n.add_argument("--norm-stat", choices=STATS, help="meanstd, median-mad or percentile")
    n.add_argument("--transform", choices=TRANSFORMS, help="value transform before the statistics")
    n.add_argument("--percentiles", help="low,high percentiles for --norm-stat percentile (default 0.1,99.9)")
    n.add_argument("--range", help="low,high standardised values mapped to 0..255")
    n.add_argument("--resize", help="store every field at HEIGHT,WIDTH (default: native size; HPA: the first field's)")
    e = p.add_argument_group("execution")
    e.add_argument("--workers", type=int, default=default_workers(),
                   help=f"decoding processes (default: CPUs, at most 8; here {default_workers()})")
    e.add_argument("--skip-bad", action="store_true",
                   help="leave out unreadable/missing/wrong images and list them in OUT/bad_inputs.csv")
    e.add_argument("--keep-cache", action="store_true", help="keep OUT/.cache (the decoded fields) after the run")
    e.add_argument("--force", action="store_true", help="discard what OUT holds from an earlier run and start over")
    add_quiet_argument(e)
    return p


def _pair(text: str | None, option: str, kind: type = float) -> tuple[float, ...] | tuple[int, ...] | None:
    """Parse ``low,high`` (``--percentiles``, ``--range``) or ``HEIGHT,WIDTH`` (``--resize``, ``kind=int``)."""
    if text is None:
        return None
    values = float_list(text, option) if kind is float else int_list(text, option)
    if len(values) != 2:
        raise ConfigError(f"{option} {text!r}: expected two numbers, e.g. 1,2")
    return values


def main(args: argparse.Namespace) -> int:
    """Run :func:`mcnn.prep.prepare` with the parsed flags; one summary line on stderr."""
    options = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--option {item!r}: expected NAME=VALUE")
        options[name.strip()] = value.strip()
    opts = PrepOptions(
        protocol=args.protocol, repeats=args.repeats, seed=args.seed, augment=args.augment,
        test_fraction=args.test_fraction, only=tuple(x for x in (args.only or "").split(",") if x),
        scope=args.norm_scope, stat=args.norm_stat, transform=args.transform,
        percentiles=_pair(args.percentiles, "--percentiles"), range=_pair(args.range, "--range"),
        resize=_pair(args.resize, "--resize", int), dataset_options=options, workers=args.workers,
        quiet=args.quiet, skip_bad=args.skip_bad, keep_cache=args.keep_cache, force=args.force)
    result = prepare(args.dataset, args.raw, args.out, opts)
    print(f"prepare: {args.dataset}: {len(result.splits)} split(s) in {result.out} "
          f"({len(result.built)} LMDBs written, {len(result.skipped)} already complete)", file=sys.stderr)
    if result.bad:
        print(f"prepare: {len(result.bad)} bad input(s) left out, listed in {result.out / 'bad_inputs.csv'}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run("prepare", lambda: main(get_args_parser().parse_args())))
