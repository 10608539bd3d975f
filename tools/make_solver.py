#!/usr/bin/env python
"""Generate the Caffe solver for a train_val net: the same SGD recipe for every architecture.

Examples:
  python tools/make_solver.py --net prototxt/hela/mcnn_train_val.prototxt --preset hela
  python tools/make_solver.py --net nets/mcnn_train_val.prototxt --train-size 776 --test-size 86 \\
      --epochs 18 --base-lr 0.005 --out nets/solver.prototxt
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.caffe import pb, read_net
from mcnn.caffe.io import format_prototxt
from mcnn.cli import ArgumentParser, int_list, output_file, run
from mcnn.errors import ConfigError
from mcnn.fsutil import atomic_write_text
from mcnn.nets.emit import wrap_header
from mcnn.nets.presets import PRESETS, get_preset
from mcnn.nets.solver import LR_POLICIES, SOLVER_TYPES, SolverOptions, build_solver

DEFAULTS = SolverOptions()


def get_args_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", required=True, type=Path, help="the train_val prototxt (path written into the solver)")
    s = p.add_argument_group("set sizes (images) and batches")
    s.add_argument("--preset", help=f"take train/test sizes from a dataset preset: {', '.join(PRESETS)}")
    s.add_argument("--data", type=Path, help="take train/test sizes from a prepared dataset (data_prep --out)")
    s.add_argument("--split", help="with --data: which split (default the first)")
    s.add_argument("--train-size", type=int, help="training images per epoch")
    s.add_argument("--test-size", type=int, help="test images (0 = no testing during training)")
    s.add_argument("--batch", type=int, help="training batch (default: the net's TRAIN Data layer)")
    s.add_argument("--test-batch", type=int, help="test batch (default: the net's TEST Data layer)")
    t = p.add_argument_group("training parameters (defaults are ours; the paper's values are lost)")
    t.add_argument("--epochs", type=float, default=DEFAULTS.epochs, help="epochs (default 18, the paper's)")
    t.add_argument("--type", default=DEFAULTS.type, choices=SOLVER_TYPES, help="solver (default SGD)")
    t.add_argument("--base-lr", type=float, default=DEFAULTS.base_lr, help="base learning rate (default 0.01)")
    t.add_argument("--lr-policy", default=DEFAULTS.lr_policy, choices=LR_POLICIES, help="lr policy (default step)")
    t.add_argument("--gamma", type=float, default=DEFAULTS.gamma, help="lr decay factor (default 0.1)")
    t.add_argument("--step-epochs", type=float, default=DEFAULTS.step_epochs,
                   help="epochs between lr steps for step/sigmoid (default 6)")
    t.add_argument("--stepsize", type=int, help="iterations between lr steps (overrides --step-epochs)")
    t.add_argument("--stepvalue", help="iterations of the multistep lr changes, comma list")
    t.add_argument("--power", type=float, default=DEFAULTS.power, help="power of inv/poly (default 1)")
    t.add_argument("--momentum", type=float, default=DEFAULTS.momentum, help="momentum (default 0.9)")
    t.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, help="weight decay (default 0.0005)")
    t.add_argument("--regularization", default=DEFAULTS.regularization, choices=("L1", "L2"))
    t.add_argument("--iter-size", type=int, default=DEFAULTS.iter_size, help="batches accumulated per update")
    o = p.add_argument_group("logging, snapshots, output")
    o.add_argument("--display", type=int, default=DEFAULTS.display, help="log every N iterations (default 20)")
    o.add_argument("--test-epochs", type=float, default=DEFAULTS.test_epochs, help="test every N epochs (default 1)")
    o.add_argument("--snapshot-epochs", type=float, default=DEFAULTS.snapshot_epochs,
                   help="snapshot every N epochs, 0 = only at the end (default 6)")
    o.add_argument("--snapshot-prefix", help="snapshot path prefix (default snapshots/<net file stem>)")
    o.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random_seed, -1 = time-based (default 0)")
    o.add_argument("--mode", default=DEFAULTS.mode, choices=("CPU", "GPU"), help="solver_mode (default GPU)")
    o.add_argument("--out", type=Path, help="output file (default: print)")
    return p


def _data_batches(net: pb.NetParameter) -> dict[int, int]:
    batches = {}
    for layer in net.layer:
        if layer.type == "Data":
            phases = [rule.phase for rule in layer.include if rule.HasField("phase")] or [pb.TRAIN, pb.TEST]
            for phase in phases:
                batches.setdefault(phase, layer.data_param.batch_size)
    return batches


def main(args: argparse.Namespace) -> int:
    output_file(args.out)
    net = read_net(args.net)
    batches = _data_batches(net)
    train_batch = args.batch or batches.get(pb.TRAIN)
    test_batch = args.test_batch or batches.get(pb.TEST) or train_batch
    if not train_batch:
        raise ConfigError(f"{args.net}: no TRAIN Data layer with a batch_size; give --batch")
    train_size, test_size = args.train_size, args.test_size
    if args.data is not None:
        from mcnn.prep.prepared import load_prepared

        ds = load_prepared(args.data)
        split = ds.split(args.split) if args.split else ds.splits[0]
        train_size = train_size if train_size is not None else split.train_size
        test_size = test_size if test_size is not None else split.test_size
    elif args.split:
        raise ConfigError("--split needs --data")
    if args.preset:
        preset = get_preset(args.preset)
        train_size = train_size if train_size is not None else preset.train_size
        test_size = test_size if test_size is not None else preset.test_size
    if train_size is None or test_size is None:
        raise ConfigError("give --train-size and --test-size (or --preset)")
    options = SolverOptions(
        epochs=args.epochs, type=args.type, base_lr=args.base_lr, lr_policy=args.lr_policy, gamma=args.gamma,
        step_epochs=args.step_epochs, stepsize=args.stepsize,
        stepvalue=int_list(args.stepvalue, "--stepvalue") if args.stepvalue else (),
        power=args.power, momentum=args.momentum, weight_decay=args.weight_decay,
        regularization=args.regularization, display=args.display, test_epochs=args.test_epochs,
        snapshot_epochs=args.snapshot_epochs,
        snapshot_prefix=args.snapshot_prefix or f"snapshots/{args.net.stem.removesuffix('_train_val')}",
        seed=None if args.seed is not None and args.seed < 0 else args.seed, mode=args.mode,
        iter_size=args.iter_size,
    )
    built = build_solver(args.net.as_posix(), train_size, test_size, train_batch, test_batch, options)
    command = "python tools/make_solver.py " + shlex.join(sys.argv[1:])
    text = format_prototxt(built.solver, wrap_header([*built.header, f"Generated by `{command.strip()}`."]))
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run("make_solver", lambda: main(get_args_parser().parse_args())))
