#!/usr/bin/env python
"""Throughput and peak memory of your own screen: preparation and whole-screen prediction.

Writes a generated screen in the generic input format (CellProfiler LoadData table + plate map,
16-bit TIFFs, one per channel; by default 4 plates x 384 wells x 1 site = 1,536 fields of 4 x
1,080 x 1,080), then measures, for each ``--fields`` count (the first N rows of the image table):

- ``prepare.py screen`` (every field decoded, mapped to 8 bit with the plates' negative-control
  statistics, resized to ``--net-size`` and written to the train/test and screen LMDBs);
- ``tools/predict.py`` over the screen LMDB with an M-CNN of random weights (the speed does not
  depend on what the weights learned): per-field probabilities and penultimate-layer profiles
  streamed to Parquet, then per-well medians.

It reports fields/s, wall time and peak memory: the largest process (ru_maxrss) and the sampled
sum over the process tree, all of it and its anonymous part (the heap, without the file pages the
LMDBs' memory maps bring in); comparing two ``--fields`` counts shows whether memory stays flat in
the number of fields. The images' content is cheap synthetic nuclei (templates plus noise), not the phenotype
simulator's, so that writing 14 GB of TIFFs takes minutes, not hours.

Examples:
  python bench/screen.py                                   # 384 and 1,536 fields, 4 x 1080 x 1080
  python bench/screen.py --fields 64 --size 256 --quick    # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from measure import measure, save_json  # bench/measure.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANNELS = ("DNA", "Actin", "Tubulin", "Mito")


def get_args_parser() -> argparse.ArgumentParser:
    """The command line of the benchmark."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fields", default="384,1536",
                   help="field counts to measure, the first N rows of the image table (default 384,1536)")
    p.add_argument("--size", type=int, default=1080, help="field height and width in pixels (default 1080)")
    p.add_argument("--channels", type=int, default=4, choices=range(1, len(CHANNELS) + 1),
                   help="channels per field (default 4)")
    p.add_argument("--sites", type=int, default=1, help="fields per well (default 1)")
    p.add_argument("--net-size", type=int, default=128,
                   help="the stored and predicted image size (prepare --resize; default 128)")
    p.add_argument("--workers", type=int, default=2, help="prepare's decoding processes (default 2)")
    p.add_argument("--batch", type=int, default=32, help="prediction batch (default 32)")
    p.add_argument("--quick", action="store_true", help="a tiny M-CNN (4 scales, narrow) for smoke runs")
    p.add_argument("--json", type=Path, help="write the results here (default bench/results/screen-<time>.json)")
    p.add_argument("--keep", type=Path, help="keep the generated screen and outputs in this folder")
    return p


def write_screen(raw: Path, fields: int, size: int, channels: int, sites: int, seed: int = 0) -> None:
    """A screen of ``fields`` fields (``sites`` per well, 384-well plates) under ``raw``:
    ``images/<plate>/*.tif``, ``load_data.csv`` and ``platemap.csv``.

    Columns 1-2 of every plate are DMSO negative controls (class ``control``), column 3 a positive
    control (class ``active``, brighter second channel); the other wells are a compound series.
    """
    import numpy as np
    import tifffile

    from mcnn.tables import write_table

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    templates = []
    for _ in range(8):  # a few fields of round "nuclei"; every field is one of them plus noise
        plane = np.zeros((size, size), np.float32)
        for cy, cx, r in zip(rng.uniform(0, size, 40), rng.uniform(0, size, 40), rng.uniform(size / 60, size / 30, 40),
                             strict=True):
            plane += 2000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        templates.append(plane)
    wells = [f"{row}{col:02d}" for row in "ABCDEFGHIJKLMNOP" for col in range(1, 25)]
    images, plate_rows = [], []
    for n in range(-(-fields // sites)):
        plate, well = f"P{n // len(wells) + 1}", wells[n % len(wells)]
        col = int(well[1:])
        kind = "DMSO" if col <= 2 else "positive" if col == 3 else f"cmpd{col % 7}"
        plate_rows.append({"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Compound": kind,
                           "Metadata_Concentration": 0 if kind == "DMSO" else 10 if kind == "positive"
                           else round(0.01 * 3 ** (col % 8), 4),
                           "Metadata_Class": "control" if kind == "DMSO" else "active" if kind == "positive" else ""})
        for site in range(1, sites + 1):
            if len(images) == fields:
                break
            folder = raw / "images" / plate
            folder.mkdir(parents=True, exist_ok=True)
            row: dict[str, object] = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": site}
            for c in range(channels):
                plane = templates[(n + c) % len(templates)] * (2.5 if kind == "positive" and c == 1 else 1.0)
                pixels = (plane + rng.integers(100, 400, (size, size))).astype(np.uint16)
                name = f"{plate}_{well}_s{site}_{CHANNELS[c]}.tif"
                tifffile.imwrite(folder / name, pixels, photometric="minisblack")
                row[f"FileName_{CHANNELS[c]}"] = name
                row[f"PathName_{CHANNELS[c]}"] = f"images/{plate}"
            images.append(row)
    columns = ["Metadata_Plate", "Metadata_Well", "Metadata_Site",
               *[f"{kind}_{CHANNELS[c]}" for c in range(channels) for kind in ("FileName", "PathName")]]
    write_table(raw / "load_data.csv", images, columns)
    write_table(raw / "platemap.csv", plate_rows, list(plate_rows[0]))


def random_model(data: Path, out: Path, quick: bool) -> tuple[Path, Path]:
    """An M-CNN deploy net (and train_val beside it) for the prepared dataset ``data``, with
    random weights from its fillers; returns (deploy, caffemodel)."""
    from mcnn.caffe import io as cio
    from mcnn.engine.net import Net
    from mcnn.nets import DataSpec, build_net
    from mcnn.nets.presets import DEFAULT_SCALE
    from mcnn.prep.prepared import load_prepared

    ds = load_prepared(data)
    split = ds.splits[0].paths
    spec = DataSpec(channels=ds.num_channels, height=ds.height, width=ds.width, classes=ds.num_classes,
                    scale=DEFAULT_SCALE, train_source=str(split.train_lmdb), test_source=str(split.test_lmdb),
                    train_batch=16, test_batch=16, class_names=ds.class_names)
    arch = dict(scales=(1, 2, 4, 8), pathway_widths=(8, 8, 8, 8), fusion_width=16, fc_width=32) if quick else {}
    out.mkdir(parents=True, exist_ok=True)
    deploy, train_val = out / "mcnn_deploy.prototxt", out / "mcnn_train_val.prototxt"
    cio.write_prototxt(train_val, build_net("mcnn", spec, **arch).net)
    cio.write_prototxt(deploy, build_net("mcnn", spec, deploy=True, **arch).net)
    weights = out / "random.caffemodel"
    cio.write_caffemodel(weights, Net(cio.read_net(deploy)).to_caffemodel())
    return deploy, weights


def subset(raw: Path, fields: int) -> tuple[Path, Path]:
    """The image table of the first ``fields`` rows of ``raw/load_data.csv`` and the plate map of
    their wells (beside them)."""
    from mcnn.tables import read_table, write_table

    table = read_table(raw / "load_data.csv")
    rows = table.rows[:fields]
    wells = {(r["Metadata_Plate"], r["Metadata_Well"]) for r in rows}
    platemap = read_table(raw / "platemap.csv")
    paths = raw / f"load_data_{fields}.csv", raw / f"platemap_{fields}.csv"
    write_table(paths[0], rows, table.columns)
    write_table(paths[1], [r for r in platemap.rows if (r["Metadata_Plate"], r["Metadata_Well"]) in wells],
                platemap.columns)
    return paths


def run_one(raw: Path, work: Path, fields: int, args: argparse.Namespace) -> dict[str, object]:
    """Prepare and predict the first ``fields`` fields; the measured figures."""
    data, pred = work / f"data_{fields}", work / f"predict_{fields}"
    for folder in (data, pred):
        shutil.rmtree(folder, ignore_errors=True)
    images, platemap = subset(raw, fields)
    prep_cmd = [sys.executable, str(ROOT / "data_prep" / "prepare.py"), "screen", "--images", str(images),
                "--platemap", str(platemap), "--label-column", "Metadata_Class",
                "--negative-control", "Metadata_Compound=DMSO", "--out", str(data), "--repeats", "1",
                "--resize", f"{args.net_size},{args.net_size}", "--workers", str(args.workers), "--quiet"]
    prep = measure(prep_cmd)
    deploy, weights = random_model(data, work / f"model_{fields}", args.quick)
    pred_cmd = [sys.executable, str(ROOT / "tools" / "predict.py"), "--model", str(deploy), "--weights", str(weights),
                "--lmdb", str(data / "screen_lmdb"), "--index", str(data / "screen_index.csv"), "--out", str(pred),
                "--batch", str(args.batch), "--quiet"]
    predict = measure(pred_cmd)
    return {"fields": fields, "image": f"{args.channels}x{args.size}x{args.size} uint16",
            "net_size": args.net_size, "prepare_fields_per_s": fields / prep["wall_s"],
            "prepare": prep, "predict_fields_per_s": fields / predict["wall_s"], "predict": predict,
            "quick_net": args.quick, "cpus": os.cpu_count()}


def main(args: argparse.Namespace) -> int:
    """Write the screen, measure every ``--fields`` count, print and save the figures."""
    from mcnn.cli import int_list

    counts = int_list(args.fields, "--fields")
    work = args.keep or Path(tempfile.mkdtemp(prefix="mcnn-bench-screen-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        raw = work / "raw"
        t = time.perf_counter()
        if not (raw / "platemap.csv").is_file():
            write_screen(raw, max(counts), args.size, args.channels, args.sites)
        written_s = time.perf_counter() - t
        results = [run_one(raw, work, n, args) for n in counts]
        print(f"{'fields':>6} | {'prepare f/s':>11} {'RSS MB':>7} {'tree MB':>8} {'anon MB':>8} | {'predict f/s':>11} "
              f"{'RSS MB':>7} {'tree MB':>8} {'anon MB':>8}")
        for r in results:
            cells = [f"{r['fields']:>6} |"]
            for step in ("prepare", "predict"):
                m = r[step]
                cells.append(f"{r[step + '_fields_per_s']:>11.1f} {m['max_rss_mb']:>7.0f} {m['tree_rss_mb']:>8.0f} "
                             f"{m['tree_anon_mb']:>8.0f} |")
            print(" ".join(cells).rstrip(" |"))
        save_json(args.json, "screen", {"screen_written_s": written_s, "results": results})
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from mcnn.cli import run

    sys.exit(run("bench", lambda: main(get_args_parser().parse_args())))
