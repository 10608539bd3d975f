#!/usr/bin/env python
"""Train a Caffe solver: the flags of `caffe train`, run by the PyTorch engine (or real Caffe).

Examples:
  python tools/train.py -solver solvers/demo/mcnn.prototxt
  python tools/train.py -solver solver.prototxt -snapshot snapshots/x_iter_500.solverstate
  python tools/train.py -solver solver.prototxt -weights pretrained.caffemodel -gpu 0
  python tools/train.py -solver solver.prototxt --tensorboard runs/tb   # then: tensorboard --logdir runs/tb
  torchrun --nproc_per_node 2 tools/train.py -solver solver.prototxt        # data-parallel
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, add_engine_argument, add_quiet_argument, output_folder, run
from mcnn.training import TrainingRun, train


def get_args_parser() -> argparse.ArgumentParser:
    """The flags of `caffe train`, ``--engine`` and the engine's own options."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-solver", "--solver", required=True, help="solver prototxt")
    p.add_argument("-weights", "--weights", help="caffemodel(s) to fine-tune from, comma separated")
    p.add_argument("-snapshot", "--snapshot", help=".solverstate to resume from (not with -weights)")
    p.add_argument("-gpu", "--gpu", help="GPU ids: 0, 0,1 or all; omitted = CPU")
    p.add_argument("-iterations", "--iterations", type=int,
                   help="stop at this iteration instead of max_iter (torch engine; caffe train has no such option)")
    p.add_argument("-level", "--level", type=int, default=0,
                   help="NetState level of the train net (default 0, which replaces the solver's train_state level)")
    p.add_argument("-stage", "--stage", default="", help="NetState stages of the train net, comma separated")
    p.add_argument("-sigint_effect", "--sigint_effect", default="stop", choices=("stop", "snapshot", "none"),
                   help="on SIGINT/SIGTERM (default stop: stop, then snapshot as after training)")
    p.add_argument("-sighup_effect", "--sighup_effect", default="snapshot", choices=("stop", "snapshot", "none"),
                   help="on SIGHUP (default snapshot and go on)")
    add_engine_argument(p, "the real `caffe` binary")
    g = p.add_argument_group("engine options (torch only)")
    g.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes decoding LMDB records (default min(4, cores)); 0 = in the training process")
    g.add_argument("--channels-last", action="store_true", help="channels_last memory format (faster on GPUs)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CUDA (faster, not Caffe-exact)")
    g.add_argument("--tf32", action="store_true",
                   help="TF32 convolutions and matrix products on CUDA (faster, not Caffe-exact; default float32)")
    g.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    g.add_argument("--tensorboard", type=Path, metavar="DIR",
                   help="write TensorBoard event files (losses, lr, test outputs, sample inputs) into DIR")
    add_quiet_argument(g)
    return p


def training_run(args: argparse.Namespace) -> TrainingRun:
    """The :class:`TrainingRun` of the parsed flags."""
    return TrainingRun(solver=args.solver, weights=[w for w in (args.weights or "").split(",") if w],
                       snapshot=args.snapshot, gpu=args.gpu, iterations=args.iterations,
                       sigint_effect=args.sigint_effect, sighup_effect=args.sighup_effect, workers=args.workers,
                       progress=not args.quiet and sys.stderr.isatty(), channels_last=args.channels_last,
                       bf16=args.bf16, compile=args.compile, tf32=args.tf32, level=args.level,
                       stages=[s for s in args.stage.split(",") if s],
                       tensorboard=output_folder(args.tensorboard, "--tensorboard"))


def main(args: argparse.Namespace) -> int:
    """Train with the chosen engine; returns caffe's exit status (or 0)."""
    return train(training_run(args), args.engine)


if __name__ == "__main__":
    sys.exit(run("train", lambda: main(get_args_parser().parse_args())))
