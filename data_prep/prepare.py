#!/usr/bin/env python
"""Convert a dataset's raw download into the paper's train/test LMDBs (docs/data_prep.md).

Examples:
  python data_prep/prepare.py bbbc021 --raw ~/BBBC021 --out data/bbbc021                 # 38 LOCO folds
  python data_prep/prepare.py bbbc021 --raw ~/BBBC021 --out data/bbbc021_full --protocol full
  python data_prep/prepare.py hela --raw ~/iicbu --out data/hela --repeats 50 --seed 1
  python data_prep/prepare.py bbbc013 --raw ~/BBBC013 --out data/bbbc013 --augment d4
  python data_prep/prepare.py screen --images load_data.csv --platemap platemap.csv --label-column Metadata_MoA \
      --negative-control Metadata_Compound=DMSO --out data/myscreen                     # your own screen
  python data_prep/prepare.py screen --config data/myscreen/screen.json --out data/again  # the same, from one file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, add_quiet_argument, float_list, int_list, output_folder, run
from mcnn.datasets import DATASETS
from mcnn.datasets.screen import default_raw
from mcnn.datasets.screenspec import OPTION_NAMES, SPLITS, load_config
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
    p = ArgumentParser(description=__doc__, epilog=_epilog(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=list(DATASETS), help="which dataset RAW holds")
    p.add_argument("--raw", type=Path, help="the unpacked download, exactly as the publisher ships it (required; "
                                            "screen: default the folder of --images)")
    p.add_argument("--out", type=Path, required=True, help="output folder (re-runs skip what is complete)")
    s = p.add_argument_group("protocol")
    s.add_argument("--protocol", choices=("cv", "loco", "full"),
                   help="cv: per-class 90/10 splits (default, bbbc021: loco); loco: one fold per compound (bbbc021); "
                        "full: one split with every labelled image for training (bbbc021: 12 MoAs + DMSO, and the "
                        "screen LMDB)")
    s.add_argument("--repeats", type=int, help="cross-validation repeats (default 50, the paper's)")
    s.add_argument("--seed", type=int, help="seed of the splits and write orders (default 0)")
    s.add_argument("--test-fraction", type=float, help="per-class test fraction of cv (default 0.1)")
    s.add_argument("--only", help="build only these splits (comma list, e.g. fold_taxol,fold_alln)")
    s.add_argument("--augment", choices=AUGMENTS,
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
    _add_screen_arguments(p)
    e = p.add_argument_group("execution")
    e.add_argument("--workers", type=int,
                   help=f"decoding processes (default: CPUs, at most 8; here {default_workers()})")
    e.add_argument("--skip-bad", action="store_true", default=None,
                   help="leave out unreadable/missing/wrong images and list them in OUT/bad_inputs.csv")
    e.add_argument("--keep-cache", action="store_true", help="keep OUT/.cache (the decoded fields) after the run")
    e.add_argument("--force", action="store_true", help="discard what OUT holds from an earlier run and start over")
    add_quiet_argument(e)
    return p


#: The screen options that have a flag of their own (the rest: --option NAME=VALUE or --config).
SCREEN_FLAGS = ("images", "platemap", "label_column", "negative_control", "positive_control", "train_where", "classes",
                "control_class", "channels", "unit", "split")
#: Defaults of the flags a screen --config file may also set (None there: the dataset's default).
DEFAULTS = {"repeats": 50, "seed": 0, "test_fraction": 0.1, "augment": "none", "workers": default_workers(),
            "skip_bad": False}
#: Flags a --config file may set besides the dataset options.
CONFIG_FLAGS = ("protocol", "repeats", "seed", "test_fraction", "only", "augment", "norm_scope", "norm_stat",
                "transform", "percentiles", "range", "resize", "skip_bad", "workers")


def _add_screen_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of dataset ``screen`` (docs/formats.md, "Your own screen"); each sets a dataset option."""
    g = p.add_argument_group("your own screen (dataset screen)")
    g.add_argument("--images", help="the image table (CellProfiler LoadData CSV/TSV), one .ome.zarr HCS plate, or a "
                                    "folder of *.ome.zarr plates")
    g.add_argument("--platemap", help="the plate map (CSV/TSV, one row per well; joined on Metadata_Plate, "
                                      "Metadata_Well; without Metadata_Plate it applies to every plate)")
    g.add_argument("--label-column", dest="label_column", help="plate-map column with each well's class (blank: "
                                                               "not trained)")
    g.add_argument("--negative-control", dest="negative_control", metavar="COL=VAL[|VAL]",
                   help="the negative-control wells (default: Metadata_Role = negative_control)")
    g.add_argument("--positive-control", dest="positive_control", metavar="COL=VAL[|VAL]",
                   help="the positive-control wells")
    g.add_argument("--train-where", dest="train_where", metavar="COL=VAL[|VAL]", help="only these wells train")
    g.add_argument("--classes", help="comma list fixing the class order (default: first appearance in the plate map)")
    g.add_argument("--control-class", dest="control_class",
                   help="class of negative-control wells with a blank label (default control)")
    g.add_argument("--channels", help="comma list: the channels, in LMDB order (default: the image source's order)")
    g.add_argument("--unit", help="concentration unit without a Metadata_ConcentrationUnit column (default uM)")
    g.add_argument("--split", choices=SPLITS, help="held out whole: well (default), plate, field, or compound "
                                                   "(one leave-one-compound-out fold each)")
    g.add_argument("--config", type=Path, help="a TOML or JSON file with these options and prepare flags (e.g. an "
                                               "earlier OUT/screen.json); flags given here override it")


def _dataset_options(args: argparse.Namespace, config: dict[str, object]) -> dict[str, str]:
    """The dataset options: the config file's, then --option, then the screen flags."""
    options = {k: str(v) for k, v in config.items() if k in OPTION_NAMES}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--option {item!r}: expected NAME=VALUE")
        options[name.strip()] = value.strip()
    for name in SCREEN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            if args.dataset != "screen":
                raise ConfigError(f"--{name.replace('_', '-')}: an option of dataset screen, not {args.dataset}")
            options[name] = value
    return options


def _raw(args: argparse.Namespace, config: dict[str, object], options: dict[str, str]) -> Path:
    """--raw, else the config file's raw, else (screen) the folder of --images."""
    if args.raw is not None:
        return args.raw
    if config.get("raw"):
        return Path(str(config["raw"]))
    if args.dataset != "screen":
        raise ConfigError(f"--raw is required for {args.dataset}")
    if not options.get("images"):
        raise ConfigError("screen: --images is required (or --option images=..., or a --config file)")
    return default_raw(options["images"])


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
    output_folder(args.out)
    if args.config is not None and args.dataset != "screen":
        raise ConfigError(f"--config: a screen description, not for {args.dataset}")
    config = load_config(args.config) if args.config is not None else {}
    options = _dataset_options(args, config)
    raw = _raw(args, config, options)
    flag = {k: getattr(args, k) if getattr(args, k) is not None else config.get(k, DEFAULTS.get(k))
            for k in CONFIG_FLAGS}
    opts = PrepOptions(
        protocol=flag["protocol"], repeats=flag["repeats"], seed=flag["seed"], augment=flag["augment"],
        test_fraction=flag["test_fraction"], only=tuple(x for x in (flag["only"] or "").split(",") if x),
        scope=flag["norm_scope"], stat=flag["norm_stat"], transform=flag["transform"],
        percentiles=_pair(flag["percentiles"], "--percentiles"), range=_pair(flag["range"], "--range"),
        resize=_pair(flag["resize"], "--resize", int), dataset_options=options, workers=flag["workers"],
        quiet=args.quiet, skip_bad=flag["skip_bad"], keep_cache=args.keep_cache, force=args.force)
    result = prepare(args.dataset, raw, args.out, opts)
    print(f"prepare: {args.dataset}: {len(result.splits)} split(s) in {result.out} "
          f"({len(result.built)} LMDBs written, {len(result.skipped)} already complete)", file=sys.stderr)
    if result.bad:
        print(f"prepare: {len(result.bad)} bad input(s) left out, listed in {result.out / 'bad_inputs.csv'}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run("prepare", lambda: main(get_args_parser().parse_args())))
