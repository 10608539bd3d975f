#!/usr/bin/env python
"""Whole-process benchmarks against real BVLC Caffe and OpenCV's Caffe importer (issue 15's acceptance).

Every figure is a whole process (start-up, reading the files, the work, the outputs), each run a fresh
process, the engine and its reference alternating (the order flipped every round), best of
``--repeat`` rounds; wall time and peak RSS come from bench/measure.py.

1. ``train_demo``: 20 iterations of the M-CNN that tools/make_net.py generates for 3 x 256 x 256 input
   (bbbc021 preset otherwise: 12 classes), batch 8, from an LMDB of random images written with the
   data_prep writer; one solver for both (SGD, momentum 0.9, weight decay 0.0005, fixed rate, no test
   net, only the final snapshot): ``tools/train.py -solver S`` against ``caffe train -solver=S``.
2. ``train_bbbc021``: the same at BBBC021 size (3 x 1024 x 1280), batch 1, 1 warm-up and 3 timed
   iterations: the whole process, and the seconds per iteration after the warm-up from the glog time
   stamps of each side's log (the goals are on the latter).
3. ``evaluate``: ``tools/evaluate.py`` on a 64-record demo-size LMDB (the committed demo deploy net, a
   caffemodel written by the engine; bench/startup.py's fixture) against bench/opencv_forward.py over
   the same records; the two sides' probabilities are compared.

Caffe is found at ``--caffe``, else $MCNN_CAFFE_PREFIX, else .cache/caffe/prefix (``make caffe``);
without it the Caffe rows say "skipped: <reason>" and the engine sides still run. ``--quick`` runs
every case at tiny sizes (its goals are then "n/a"). Results: ``--out``/vs_caffe-<time>.json and .md.

  python bench/vs_caffe.py
  python bench/vs_caffe.py --repeat 3 --cases train_demo,evaluate
  python bench/vs_caffe.py --quick --repeat 1 --threads 1 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure as m  # noqa: E402  (bench/measure.py, beside this script)
import startup  # noqa: E402  (bench/startup.py: the evaluation fixture)
from caffe_binary import caffe_env, caffe_prefix, engine_env, log_figures  # noqa: E402  (beside this script)

from mcnn.errors import ConfigError  # noqa: E402

Row = dict[str, Any]  # a result row, a side's figures, one run's measures (JSON values)


@dataclass(frozen=True)
class TrainCase:
    """A training comparison: input (C, H, W), batch, solver max_iter; iteration 0 is the warm-up that
    the per-iteration figure from the logs leaves out."""

    shape: tuple[int, int, int]
    batch: int
    iterations: int
    title: str


CASES = ("train_demo", "train_bbbc021", "evaluate")
FULL = {"train_demo": TrainCase((3, 256, 256), 8, 20, "20 training iterations, M-CNN (tools/make_net.py)"),
        "train_bbbc021": TrainCase((3, 1024, 1280), 1, 4, "1 warm-up + 3 training iterations at BBBC021 size")}
QUICK = {"train_demo": TrainCase((3, 128, 128), 2, 3, "3 training iterations (quick)"),
         "train_bbbc021": TrainCase((3, 128, 160), 1, 2, "1 warm-up + 1 training iteration (quick)")}
RECORDS = {False: 64, True: 8}  # evaluation records: full, --quick
CLASSES = 12  # the bbbc021 preset's mechanisms of action
#: The acceptance goals of issue 15: (case, measured figure, at least, wording).
GOALS = [("train_demo", "ratio", 3.0, ">= 3x caffe train, whole process"),
         ("train_bbbc021", "log_ratio", 3.0, ">= 3x caffe train, s/iter after the warm-up"),
         ("train_bbbc021", "images_per_s", 0.48, ">= 0.48 img/s after the warm-up"),
         ("evaluate", "ratio", 1.5, ">= 1.5x the OpenCV script, whole process")]


# -- fixtures -----------------------------------------------------------------------------------------

def write_records(path: Path, count: int, shape: tuple[int, int, int], seed: int = 0) -> None:
    """An LMDB of ``count`` random uint8 images of ``shape`` (labels cycling over the classes), written
    with the writer data_prep uses."""
    import numpy as np

    from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key

    rng = np.random.default_rng(seed)
    with LmdbWriter(path) as writer:
        for i in range(count):
            writer.put(record_key(i, f"field{i}"), array_to_datum(rng.integers(0, 256, shape, np.uint8), i % CLASSES))


def training_fixture(work: Path, case: TrainCase) -> dict[str, Path]:
    """The LMDB (``batch x iterations`` records), the generated train_val net and one solver per side
    (``engine``, ``caffe``; the same but for their snapshot folders) under ``work``; the solvers' paths."""
    from mcnn.caffe.io import format_prototxt
    from mcnn.fsutil import atomic_write_text
    from mcnn.nets.emit import net_texts
    from mcnn.nets.presets import data_spec_for, get_preset
    from mcnn.nets.solver import SolverOptions, build_solver

    lmdb = work / "train_lmdb"
    write_records(lmdb, case.batch * case.iterations, case.shape)
    c, h, w = case.shape
    spec = data_spec_for(get_preset("bbbc021"), "mcnn", channels=c, height=h, width=w, train_batch=case.batch,
                         test_batch=case.batch, train_source=str(lmdb), test_source=str(lmdb))
    net = atomic_write_text(work / "mcnn_train_val.prototxt", net_texts("mcnn", spec)["train_val"])
    solvers = {}
    for side in ("engine", "caffe"):
        options = SolverOptions(epochs=1, base_lr=m.BASE_LR, lr_policy="fixed", momentum=m.MOMENTUM,
                                weight_decay=m.WEIGHT_DECAY, display=1, snapshot_epochs=0, mode="CPU",
                                snapshot_prefix=str(work / f"snapshots_{side}" / "mcnn"))
        built = build_solver(str(net), case.batch * case.iterations, 0, case.batch, case.batch, options)
        solvers[side] = atomic_write_text(work / f"solver_{side}.prototxt", format_prototxt(built.solver, built.header))
    return solvers


# -- running ------------------------------------------------------------------------------------------

def alternate(sides: dict[str, Callable[[int], Row]], rounds: int) -> dict[str, list[Row]]:
    """Each side's runs (``sides[name](round)``): all sides once per round, the order flipped every round."""
    names = list(sides)
    runs: dict[str, list[Row]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            runs[name].append(sides[name](r))
    return runs


def train_run(cmd: list[str], env: dict[str, str], work: Path, side: str, case: TrainCase) -> Row:
    """One training process: its measures and log figures; SystemExit unless it wrote the final caffemodel."""
    snapshots = work / f"snapshots_{side}"
    shutil.rmtree(snapshots, ignore_errors=True)
    snapshots.mkdir()  # caffe train does not create it
    log = work / f"{side}.log"
    run = m.measure_logged(cmd, log, env=env, cwd=work)
    if not (snapshots / f"mcnn_iter_{case.iterations}.caffemodel").is_file():
        raise SystemExit(f"bench: {' '.join(cmd)} wrote no mcnn_iter_{case.iterations}.caffemodel (log {log})")
    return {**run, **log_figures(log.read_text(errors="replace"), case.iterations)}


def summary(runs: list[Row], images: int, iterations: int, command: str) -> Row:
    """A side's figures over its runs: best wall seconds and the rates from it, best per-iteration seconds
    from the logs, the largest peak RSS (MiB); ``images`` per run, ``iterations`` per run (1 for evaluation)."""
    wall = min(float(r["wall_s"]) for r in runs)
    out: Row = {"command": command, "wall_s": wall, "s_per_iter": wall / iterations, "images_per_s": images / wall,
                "max_rss_mb": max(float(r["max_rss_mb"]) for r in runs),
                "tree_rss_mb": max(float(r["tree_rss_mb"]) for r in runs), "runs": runs}
    per_iter = [float(r["log_s_per_iter"]) for r in runs if r.get("log_s_per_iter")]
    if per_iter:
        out["log_s_per_iter"] = min(per_iter)
        out["log_images_per_s"] = images / iterations / min(per_iter)
        out["final_loss"] = runs[-1]["final_loss"]
    return out


def training_row(name: str, case: TrainCase, work: Path, prefix: Path, skip: str, threads: int,
                 rounds: int) -> Row:
    """The comparison ``name``: engine and (unless ``skip`` says why not) Caffe on the same solver."""
    work.mkdir()
    solvers = training_fixture(work, case)
    engine_cmd = [sys.executable, str(ROOT / "tools" / "train.py"), "-solver", str(solvers["engine"]),
                  "--engine", "torch", "--quiet"]
    caffe_cmd = [str(prefix / "bin" / "caffe"), "train", f"-solver={solvers['caffe']}"]
    sides: dict[str, Callable[[int], Row]] = {
        "engine": lambda r: train_run(engine_cmd, engine_env(threads), work, "engine", case)}
    if not skip:
        sides["caffe"] = lambda r: train_run(caffe_cmd, caffe_env(prefix, threads), work, "caffe", case)
    return training_result(name, case, alternate(sides, rounds), skip)


def training_result(name: str, case: TrainCase, runs: dict[str, list[Row]],
                    skip: str) -> Row:
    """The row of a training comparison from each side's runs (no ``caffe`` runs when ``skip`` says why):
    both sides' figures, the whole-process and per-iteration ratios (Caffe's time over the engine's)
    and the engine's img/s after the warm-up."""
    images = case.batch * case.iterations
    row: Row = {
        "case": name, "work": case.title, "input": "x".join(map(str, case.shape)), "batch": case.batch,
        "iterations": case.iterations, "reference_name": "caffe train",
        "engine": summary(runs["engine"], images, case.iterations, "tools/train.py -solver S"),
        "reference": summary(runs["caffe"], images, case.iterations, "caffe train -solver=S") if not skip else None,
        "status": f"skipped: {skip}" if skip else "ok"}
    engine, ref = row["engine"], row["reference"]
    row["ratio"] = ref["wall_s"] / engine["wall_s"] if ref else None
    row["log_ratio"] = ref["log_s_per_iter"] / engine["log_s_per_iter"] if ref else None
    row["images_per_s"] = engine["log_images_per_s"]
    return row


def scale_of(train_val: Path) -> float:
    """``transform_param.scale`` of the TEST Data layer of ``train_val`` (what evaluate.py applies, read the
    way it reads it); ConfigError if that transform does more than scale (the OpenCV script only scales)."""
    from mcnn.evaluate.predict import test_transform

    transform = test_transform(train_val)
    if transform.mean_value or transform.mean_file or transform.crop_size:
        raise ConfigError(f"{train_val}: the TEST transform has a mean or crop; the OpenCV script applies only a scale")
    return transform.scale if transform.HasField("scale") else 1.0


def agreement(engine_csv: Path, opencv_csv: Path) -> dict[str, float]:
    """Largest |difference| of the probabilities of evaluate.py's predictions.csv and the OpenCV script's
    CSV (joined on the key; the prob_ columns in order) and the share of equal predicted labels."""
    from mcnn.tables import read_table

    ours, theirs = read_table(engine_csv), read_table(opencv_csv)
    by_key = {row["key"]: row for row in theirs.rows}
    mine = [c for c in ours.columns if c.startswith("prob_")]
    other = [c for c in theirs.columns if c.startswith("prob_")]
    if len(mine) != len(other) or set(by_key) != {row["key"] for row in ours.rows}:
        raise SystemExit(f"bench: {engine_csv} and {opencv_csv} hold other records or classes")
    worst, same = 0.0, 0
    for row in ours.rows:
        peer = by_key[row["key"]]
        worst = max(worst, *(abs(float(row[a]) - float(peer[b])) for a, b in zip(mine, other, strict=True)))
        same += row["predicted_label"] == peer["predicted_label"]
    return {"prob_max_abs_diff": worst, "same_prediction": same / len(ours.rows)}


def evaluation_row(work: Path, records: int, threads: int, rounds: int) -> Row:
    """tools/evaluate.py against bench/opencv_forward.py over the same ``records`` demo-size records."""
    from mcnn.caffe.io import read_net

    work.mkdir()
    argv = startup.make_fixture(work, records)
    model, weights, lmdb = (argv[argv.index(flag) + 1] for flag in ("--model", "--weights", "--lmdb"))
    scale = scale_of(Path(model).with_name("mcnn_train_val.prototxt"))

    def engine(r: int) -> Row:
        cmd = [sys.executable, str(ROOT / "tools" / "evaluate.py"), *argv, "--engine", "torch", "--batch", "16",
               "--out", str(work / f"evaluate_{r}")]
        return m.measure_logged(cmd, work / "evaluate.log", env=engine_env(threads), cwd=work)

    def opencv(r: int) -> Row:
        cmd = [sys.executable, str(ROOT / "bench" / "opencv_forward.py"), "--model", model, "--weights", weights,
               "--lmdb", lmdb, "--scale", repr(scale), "--batch", "16", "--threads", str(threads),
               "--out", str(work / f"opencv_{r}.csv")]
        return m.measure_logged(cmd, work / "opencv.log", env=engine_env(threads), cwd=work)

    runs = alternate({"engine": engine, "opencv": opencv}, rounds)
    row: Row = {
        "case": "evaluate", "work": f"evaluate {records} demo-size records (committed demo net)",
        "input": "x".join(map(str, m.deploy_shape(read_net(Path(model))))), "batch": 16, "records": records,
        "reference_name": "OpenCV script",
        "engine": summary(runs["engine"], records, 1, "tools/evaluate.py --model ... --lmdb ..."),
        "reference": summary(runs["opencv"], records, 1, "bench/opencv_forward.py (cv2.dnn.readNetFromCaffe)"),
        "status": "ok", "agreement": agreement(work / "evaluate_0" / "predictions.csv", work / "opencv_0.csv")}
    row["ratio"] = row["reference"]["wall_s"] / row["engine"]["wall_s"]
    return row


# -- goals and the report -----------------------------------------------------------------------------

def goal_status(value: float | None, target: float, quick: bool) -> str:
    """``met`` / ``not met`` for a measured ``value`` against its lower bound ``target``; ``not measured``
    without a value; ``n/a: quick sizes`` (the value kept) in a --quick run."""
    if value is None:
        return "not measured"
    if quick:
        return "n/a: quick sizes"
    return "met" if value >= target else "not met"


def add_goals(rows: list[Row], quick: bool) -> None:
    """Attach to each row its goals of :data:`GOALS`: figure, target, value, status."""
    for row in rows:
        row["goals"] = [{"goal": text, "figure": figure, "target": target, "value": row.get(figure),
                         "status": goal_status(row.get(figure), target, quick)}
                        for case, figure, target, text in GOALS if case == row["case"]]


def _side(side: Row | None, row: Row) -> str:
    if side is None:
        return str(row["status"])
    text = f"{side['wall_s']:.2f} s"
    if row["case"] == "train_demo":
        text += f" ({side['s_per_iter']:.3g} s/iter, {side['images_per_s']:.3g} img/s)"
    elif row["case"] == "train_bbbc021":
        text = (f"{side['log_s_per_iter']:.3g} s/iter after the warm-up ({side['log_images_per_s']:.3g} img/s); "
                f"whole process {text}")
    else:
        text += f" ({side['images_per_s']:.3g} img/s)"
    return text + f", peak RSS {float(side['max_rss_mb']) / 1024:.2f} GB"


def markdown(payload: Row) -> str:
    """The results as Markdown: one row per comparison with its goals, then how each figure was taken."""
    rows: list[Row] = payload["rows"]
    lines = [f"# Whole-process benchmarks against Caffe {payload['when']}", "",
             f"Machine: {payload['machine']['host']}, torch {payload['machine']['torch']}, "
             f"OpenCV {payload['opencv']}; {payload['threads']} thread(s) on every side; Caffe: {payload['caffe']}. "
             f"Best of {payload['repeat']} round(s), each a fresh process, engine and reference alternating."
             + (" Quick sizes: the goals do not apply." if payload["quick"] else ""), ""]
    table = []
    for row in rows:
        ratio = "; ".join(f"{row[k]:.2f}x {what}" for k, what in (("ratio", "whole process"),
                                                                  ("log_ratio", "per iteration"))
                          if row.get(k) is not None) or "—"
        goals: list[Row] = row["goals"]
        table.append([f"{row['work']}, {row['input']}, batch {row['batch']}",
                      _side(row["engine"], row),
                      f"{row['reference_name']}: {_side(row['reference'], row)}",
                      ratio, "; ".join(str(g["goal"]) for g in goals), "; ".join(str(g["status"]) for g in goals)])
    lines += m.table(["work", "engine", "reference", "ratio", "goal", "status"], table)
    lines += ["", "Training: both sides run one solver file (differing only in snapshot_prefix) to its last "
              "iteration and write the final snapshot. The demo ratio is of whole-process wall times. At BBBC021 "
              "size the process start-up and the first iteration (allocation, first touch of the buffers) would "
              "swamp 3 iterations, so the goals take the seconds per iteration after the warm-up from the glog "
              "time stamps of each side's `Iteration N (...)` lines ((t[last] - t[0]) / last: each interval "
              "holds one update and one forward-backward); the whole-process time and ratio are shown beside "
              "them. Peak RSS: the largest process (the engine's LMDB decoding workers are separate processes; "
              "the JSON has the sampled peak of each process tree as well)."]
    for row in rows:
        if "agreement" in row:
            agree: dict[str, float] = row["agreement"]
            lines += ["", f"Evaluation: OpenCV's probabilities differ from evaluate.py's by at most "
                      f"{agree['prob_max_abs_diff']:.2e}; {100 * agree['same_prediction']:.0f} % of the predicted "
                      "labels agree."]
        elif row["reference"] is not None:
            lines += ["", f"{row['case']}: last smoothed loss engine {row['engine']['final_loss']:.4g}, "
                      f"Caffe {row['reference']['final_loss']:.4g} (each side's own random initial weights)."]
    return "\n".join(lines) + "\n"


# -- command line -------------------------------------------------------------------------------------

def get_args_parser() -> argparse.ArgumentParser:
    """Which comparisons, how often, which Caffe, where to write."""
    from mcnn.cli import ArgumentParser

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to measure")
    what.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)} (default all)")
    what.add_argument("--repeat", type=int, default=2, help="rounds, the best kept (default 2)")
    what.add_argument("--quick", action="store_true", help="tiny sizes and iterations (a smoke run; goals n/a)")
    what.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                      help="threads of every side: torch, OpenBLAS, OpenCV (default: the cores)")
    what.add_argument("--caffe", type=Path, help="Caffe's install prefix, holding bin/caffe (default "
                                                  "$MCNN_CAFFE_PREFIX, else .cache/caffe/prefix)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    out.add_argument("--work", type=Path, help="folder for the temporary fixtures (default the system's)")
    return p


def check_args(args: argparse.Namespace) -> list[str]:
    """The cases to run; ConfigError for a bad flag (before any work)."""
    from mcnn.cli import output_folder

    output_folder(args.out)
    output_folder(args.work, "--work")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for case in cases:
        if case not in CASES:
            raise ConfigError(f"--cases {args.cases}: unknown case {case!r}; choose from {', '.join(CASES)}")
    if not cases:
        raise ConfigError("--cases: give at least one case")
    for flag, value in (("--repeat", args.repeat), ("--threads", args.threads)):
        if value < 1:
            raise ConfigError(f"{flag} {value}: must be at least 1")
    return cases


def main(args: argparse.Namespace) -> int:
    """Run the chosen comparisons, print and write the results."""
    import cv2

    cases = check_args(args)
    prefix, skip, version = caffe_prefix(args.caffe)
    sizes = QUICK if args.quick else FULL
    rows = []
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mcnn-vs-caffe-", dir=args.work) as tmp:
        for case in cases:
            print(f"{case}: running ({args.repeat} round(s)) ...", flush=True)
            if case == "evaluate":
                rows.append(evaluation_row(Path(tmp) / case, RECORDS[args.quick], args.threads, args.repeat))
            else:
                rows.append(training_row(case, sizes[case], Path(tmp) / case, prefix, skip, args.threads, args.repeat))
    add_goals(rows, args.quick)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {"when": stamp, "machine": m.machine("cpu"), "opencv": cv2.__version__, "threads": args.threads,
               "repeat": args.repeat, "quick": args.quick, "caffe_prefix": str(prefix),
               "caffe": f"skipped: {skip}" if skip else f"{version} (CPU) at {prefix}", "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    paths = m.write_results(args.out, f"vs_caffe-{stamp}", payload, markdown(payload))
    print(paths[1].read_text() + f"results: {paths[1]}")
    return 0


if __name__ == "__main__":
    from mcnn.cli import run

    sys.exit(run("vs_caffe", lambda: main(get_args_parser().parse_args())))
