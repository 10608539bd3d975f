#!/usr/bin/env python
"""Reproduce one dataset of the paper's Table 1: prepare, train, evaluate every split, summarise.

Examples:
  python tools/reproduce.py hela --raw /data/hela --out runs/hela --gpu 0
  python tools/reproduce.py bbbc021 --raw /data/BBBC021 --out runs/bbbc021 --gpu 0 --shard 0/4
  python tools/reproduce.py bbbc013 --raw raw/bbbc013 --out runs/bbbc013 --arch googlenet --repeats 5
  python tools/reproduce.py bbbc021 --raw /data/BBBC021 --out runs/bbbc021 --launcher slurm --partition gpu \
      --gpus-per-task 1 --array-parallelism 8       # one Slurm job array, a task per fold, then the summary

RUN_DIR gets data/ (the prepared dataset), runs/<arch>/<split>/ (nets, solver, snapshots,
predictions, metrics) and results.md / results.csv with our numbers beside the published
ones. Re-running skips finished splits and resumes an interrupted one from its last snapshot.
--launcher slurm|local submits the unfinished splits as one job array through submitit (the
'cluster' extra), waits, and merges them into the same results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import (
    ArgumentParser,
    add_engine_argument,
    add_mcnn_arguments,
    add_quiet_argument,
    mcnn_options,
    output_folder,
    run,
)
from mcnn.cluster import DEFAULT_TIME_MIN, LAUNCHERS, LaunchOptions, launch
from mcnn.nets import list_nets
from mcnn.reproduce import ReproduceOptions, parse_shard
from mcnn.training import resolve_gpu


def get_args_parser() -> argparse.ArgumentParser:
    """The dataset, the run folder, the training recipe, ``--engine`` and the M-CNN options."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="bbbc013, bbbc014, bbbc015, bbbc016, bbbc021, hela, cho, hpa or screen (your own)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--raw", type=Path, help="the unpacked download (prepared into RUN_DIR/data, see data_prep)")
    source.add_argument("--data", type=Path,
                        help="a dataset data_prep/prepare.py already prepared (the only way in for screen)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--arch", default="mcnn", choices=list_nets(), help="architecture (default mcnn)")
    p.add_argument("--repeats", type=int, default=50, help="cross-validation repeats (default 50, the paper's)")
    p.add_argument("--epochs", type=float, default=18, help="training epochs (default 18, the paper's)")
    p.add_argument("--protocol", help="cv, loco or full (default: the dataset's: loco for bbbc021, else cv)")
    p.add_argument("--augment", default="none", choices=("none", "d4"), help="offline augmentation of training sets")
    add_engine_argument(p, "real Caffe (caffe train + pycaffe)")
    p.add_argument("--gpu", default="auto",
                   help="GPU id, 'auto' (default: GPU 0 when one is visible, else the CPU) or 'cpu'")
    p.add_argument("--shard", default="0/1", help="i/N: run splits i, i+N, i+2N, ... (default 0/1 = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits and of training (default 0)")
    p.add_argument("--batch", type=int, help="batch size (default: the dataset preset's)")
    p.add_argument("--base-lr", type=float, help="base learning rate (default 0.01)")
    p.add_argument("--step-epochs", type=float, help="epochs between learning-rate steps (default 6)")
    p.add_argument("--no-profiling", action="store_true", help="bbbc021: skip the NSC/NSCB nearest-neighbour profiles")
    p.add_argument("--workers", type=int, default=2, help="data loading processes during training (default 2)")
    p.add_argument("--dose-class", action="append", default=[], metavar="CLASS",
                   help="screen: a class whose probability the dose-response curves fit (repeatable; "
                        "default every class but the negative controls')")
    p.add_argument("--force", action="store_true",
                   help="discard the results (and prepared data) of earlier runs with other options in --out")
    p.add_argument("--profiles-csv", action="store_true",
                   help="screen: also write the per-field and per-well profiles as CSV (beside the Parquet files)")
    p.add_argument("--tensorboard", type=Path, metavar="DIR",
                   help="TensorBoard event files of each split's training in DIR/<dataset>/<arch>/<split> (torch)")
    add_quiet_argument(p)
    add_mcnn_arguments(p, "M-CNN options (default: the reconstruction of the committed nets)")
    add_cluster_arguments(p)
    return p


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """``--launcher`` and the job-array flags (submitit's parameters)."""
    g = p.add_argument_group("job arrays (submitit, the 'cluster' extra): one task per repeat or fold")
    g.add_argument("--launcher", default="none", choices=LAUNCHERS,
                   help="none (default): this process; slurm: one Slurm job array; local: the same array as "
                        "local processes")
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--gpus-per-task", type=int, help="GPUs of each task (default none)")
    g.add_argument("--array-parallelism", type=int, metavar="N",
                   help="tasks running at once (default: all locally; on Slurm submitit's 256)")
    g.add_argument("--time", type=int, metavar="MIN",
                   help=f"time limit of each task in minutes; past it the task is requeued and resumes from its "
                        f"last snapshot (default {DEFAULT_TIME_MIN})")
    g.add_argument("--mem-gb", type=float, help="Slurm: memory of each task in GB (default the partition's)")
    g.add_argument("--cpus-per-task", type=int, help="Slurm: CPUs of each task (default --workers + 1)")
    g.add_argument("--slurm-folder", type=Path, metavar="DIR",
                   help="submitit's job files and per-task logs (default RUN_DIR/slurm)")
    g.add_argument("--no-wait", action="store_true",
                   help="Slurm: submit, print the job id and return; merge later with --summarize-only")
    g.add_argument("--summarize-only", action="store_true",
                   help="train nothing: merge the finished splits of RUN_DIR into results.md/results.csv")


def main(args: argparse.Namespace) -> int:
    """Run (or resume) the reproduction and print the Table 1 row."""
    output_folder(args.out)
    options = ReproduceOptions(
        dataset=args.dataset, raw=args.raw, out=args.out, arch=args.arch, repeats=args.repeats, epochs=args.epochs,
        engine=args.engine, gpu=resolve_gpu(args.gpu), shard=parse_shard(args.shard), seed=args.seed,
        protocol=args.protocol, augment=args.augment, batch=args.batch, base_lr=args.base_lr,
        step_epochs=args.step_epochs, net_options=mcnn_options(args, args.arch),
        profiling=not args.no_profiling, workers=args.workers, quiet=args.quiet, data=args.data,
        dose_classes=tuple(args.dose_class), profiles_csv=args.profiles_csv, force=args.force,
        tensorboard=output_folder(args.tensorboard, "--tensorboard"))
    cluster = LaunchOptions(
        launcher=args.launcher, partition=args.partition, gpus_per_task=args.gpus_per_task,
        array_parallelism=args.array_parallelism, time_min=args.time, mem_gb=args.mem_gb,
        cpus_per_task=args.cpus_per_task, folder=output_folder(args.slurm_folder, "--slurm-folder"),
        wait=not args.no_wait, summarize_only=args.summarize_only, gpu=args.gpu)
    result = launch(options, cluster, log=lambda m: print(m, file=sys.stderr))
    for split, reason, stderr in result.failed:
        print(f"reproduce: error: {split}: task failed: {reason} (log {stderr})", file=sys.stderr)
    if result.summary is None:
        print(f"submitted {len(result.submitted)} task(s) as Slurm job {', '.join(result.job_ids)}; when they have "
              f"finished, run the same command with --summarize-only to merge them into {args.out / 'results.md'}")
        return 0
    row = result.summary["row"]
    ours = "n/a" if row["ours"] is None else f"{row['ours']} ({row['ours_sd']})"
    published = "n/a" if row["published"] is None else f"{row['published']} ({row['published_sd']})"
    print(f"{row['dataset']} {row['architecture']}: {row['statistic']} accuracy {ours}, published "
          f"{published}; {row['splits_done']}/{row['splits_planned']} splits; "
          f"results in {args.out / 'results.md'}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(run("reproduce", lambda: main(get_args_parser().parse_args())))
