#!/usr/bin/env python
"""Throughput and peak memory of data_prep/prepare.py on BBBC021-sized images (3 x 1024 x 1280, 16-bit).

Writes a real-size BBBC021 look-alike (one plate by default: its 24 DMSO fields and the first
``--fields-per-plate`` others), then runs ``prepare.py bbbc021 --protocol full`` once per worker
count and reports fields/s, 16-bit TIFFs/s, MB/s of TIFF read, wall time and peak memory: the
largest single process (``ru_maxrss``) and the whole process tree (sampled ``VmRSS`` sum).
Memory should not grow with the number of fields (compare two ``--fields-per-plate`` values).

Examples:
  python bench/data_prep.py                                  # 1 plate, 24 + 24 fields, workers 1 and 2
  python bench/data_prep.py --fields-per-plate 96 --workers 1,2,4 --json /tmp/bench.json
  python bench/data_prep.py --raw /data/BBBC021 --workers 8  # a real download
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from measure import measure, save_json  # bench/measure.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def get_args_parser() -> argparse.ArgumentParser:
    """The command line of the benchmark."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw", type=Path, help="an existing BBBC021 RAW folder (default: write a real-size look-alike)")
    p.add_argument("--metadata", type=Path, help="real BBBC021 CSVs for the look-alike (see synthesize.py)")
    p.add_argument("--plates", default="Week1_22123", help="plates of the look-alike (default Week1_22123)")
    p.add_argument("--fields-per-plate", type=int, default=24,
                   help="non-DMSO fields per plate in the look-alike (default 24; the DMSO fields are added)")
    p.add_argument("--workers", default="1,2", help="worker counts to measure (default 1,2)")
    p.add_argument("--json", type=Path, help="write the results here (default bench/results/data_prep-<time>.json)")
    p.add_argument("--keep", type=Path, help="keep the look-alike and outputs in this folder")
    return p


def main(args: argparse.Namespace) -> int:
    """Write (or take) the raw folder, run prepare.py once per worker count, print and save the figures."""
    from mcnn.cli import int_list
    from mcnn.simulate.lookalikes.registry import synthesize

    work = args.keep or Path(tempfile.mkdtemp(prefix="mcnn-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        raw = args.raw
        synth_s = None
        if raw is None:
            raw = work / "raw"
            if not (raw / "BBBC021_v1_image.csv").is_file():
                sys.path.insert(0, str(ROOT / "data_prep"))
                from synthesize import metadata_folder  # the script's lookup of the real CSVs

                t = time.perf_counter()
                synthesize("bbbc021", raw, "real", 0, metadata=metadata_folder(args.metadata),
                           plates=args.plates.split(","), fields_per_plate=args.fields_per_plate)
                synth_s = time.perf_counter() - t
        results = []
        for workers in int_list(args.workers, "--workers"):
            out = work / f"out_w{workers}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [sys.executable, str(ROOT / "data_prep" / "prepare.py"), "bbbc021", "--raw", str(raw), "--out",
                   str(out), "--protocol", "full", "--workers", str(workers), "--quiet"]
            m = measure(cmd)
            info = json.loads((out / "dataset.json").read_text())
            split = info["splits"][0]
            fields = split["train"] + split["test"] + info["unlabelled"]["screen"]["size"]
            tiff_mb = fields * 3 * info["source_height"] * info["source_width"] * 2 / 2**20
            row = {"workers": workers, "fields_decoded": fields, "fields_per_s": fields / m["wall_s"],
                   "tiffs_per_s": 3 * fields / m["wall_s"], "tiff_mb_per_s": tiff_mb / m["wall_s"], **m,
                   "image": f"3x{info['source_height']}x{info['source_width']} uint16", "cpus": os.cpu_count()}
            results.append(row)
            if args.keep is None:
                shutil.rmtree(out, ignore_errors=True)
        print(f"{'workers':>7} {'fields':>6} {'fields/s':>9} {'TIFF/s':>7} {'MB/s':>7} {'wall s':>7} "
              f"{'max RSS MB':>10} {'tree RSS MB':>11}")
        for r in results:
            print(f"{r['workers']:>7} {r['fields_decoded']:>6} {r['fields_per_s']:>9.2f} {r['tiffs_per_s']:>7.2f} "
                  f"{r['tiff_mb_per_s']:>7.1f} {r['wall_s']:>7.1f} {r['max_rss_mb']:>10.0f} {r['tree_rss_mb']:>11.0f}")
        if synth_s is not None:
            print(f"(look-alike written in {synth_s:.1f} s; prepare decodes each field twice with --protocol full: "
                  "once for the train/test split, once for the screen LMDB)")
        save_json(args.json, "data_prep", {"results": results, "synthesize_s": synth_s})
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from mcnn.cli import run

    sys.exit(run("bench", lambda: main(get_args_parser().parse_args())))
