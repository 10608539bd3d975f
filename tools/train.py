#!/usr/bin/env python
"""Train a Caffe solver: the flags of `caffe train`, run by the PyTorch engine (or real Caffe).

Examples:
  python tools/train.py -solver solvers/demo/mcnn.prototxt
  python tools/train.py -solver solver.prototxt -snapshot snapshots/x_iter_500.solverstate
  python tools/train.py -solver solver.prototxt -weights pretrained.caffemodel -gpu 0
  torchrun --nproc_per_node 2 tools/train.py -solver solver.prototxt        # data-parallel
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import run
from mcnn.errors import ConfigError


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-solver", "--solver", required=True, help="solver prototxt")
    p.add_argument("-weights", "--weights", help="caffemodel(s) to fine-tune from, comma separated")
    p.add_argument("-snapshot", "--snapshot", help=".solverstate to resume from (not with -weights)")
    p.add_argument("-gpu", "--gpu", help="GPU ids: 0, 0,1 or all; omitted = CPU")
    p.add_argument("-iterations", "--iterations", type=int, help="stop at this iteration instead of max_iter")
    p.add_argument("-sigint_effect", "--sigint_effect", default="stop", choices=("stop", "snapshot", "none"),
                   help="on SIGINT/SIGTERM (default stop: stop, then snapshot as after training)")
    p.add_argument("-sighup_effect", "--sighup_effect", default="snapshot", choices=("stop", "snapshot", "none"),
                   help="on SIGHUP (default snapshot and go on)")
    p.add_argument("--engine", default=os.environ.get("MCNN_ENGINE", "torch"), choices=("torch", "caffe"),
                   help="torch (default; $MCNN_ENGINE overrides) or the real `caffe` binary")
    g = p.add_argument_group("engine options (torch only)")
    g.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes decoding LMDB records (default min(4, cores)); 0 = in the training process")
    g.add_argument("--channels-last", action="store_true", help="channels_last memory format (faster on GPUs)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CUDA")
    g.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def caffe_command(args: argparse.Namespace) -> list[str]:
    """The `caffe train` command line equivalent to ``args``."""
    cmd = ["caffe", "train", "-solver", args.solver]
    for flag in ("weights", "snapshot", "gpu", "sigint_effect", "sighup_effect"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"-{flag}", str(value)]
    if args.iterations is not None:
        cmd += ["-iterations", str(args.iterations)]
    return cmd


def main(args: argparse.Namespace) -> int:
    if args.engine == "caffe":
        if shutil.which("caffe") is None:
            raise ConfigError("--engine caffe needs the `caffe` binary on PATH; it is in the Docker image built "
                              "from Dockerfile.caffe (see README, Inside Docker), or use --engine torch")
        return subprocess.call(caffe_command(args))

    from mcnn.engine.launch import parse_gpus, run_training
    from mcnn.engine.trainer import TrainOptions

    weights = [w for w in (args.weights or "").split(",") if w]
    options = TrainOptions(weights=weights, snapshot=args.snapshot, iterations=args.iterations,
                           workers=max(0, args.workers), sigint_effect=args.sigint_effect,
                           sighup_effect=args.sighup_effect, progress=not args.quiet and sys.stderr.isatty(),
                           channels_last=args.channels_last, bf16=args.bf16, compile=args.compile)
    gpus = parse_gpus(args.gpu)
    run_training(args.solver, options, gpus)
    return 0


if __name__ == "__main__":
    sys.exit(run("train", lambda: main(get_args_parser().parse_args())))
