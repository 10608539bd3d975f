#!/usr/bin/env python
"""The demo: a simulated screen, an M-CNN trained on the CPU, and the planted EC50s recovered.

  python tools/demo.py                 # writes runs/demo/report.html (about 6 minutes on 2 cores)
  python tools/demo.py --out /tmp/demo --seed 3

Steps: simulate a small plate screen with controls and dilution series (known EC50s), convert
it to LMDB, generate the M-CNN and its solver, train on the CPU, evaluate on held-out control
fields, apply the model to the dilution series, fit dose-response curves, and write
report.html with the figures embedded. Re-running reuses finished steps.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, add_quiet_argument, output_folder, run
from mcnn.demo import TOLERANCE_LOG10, DemoOptions, run_demo


def get_args_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation, split and training (default 0)")
    p.add_argument("--preset", default="demo", choices=("demo", "small"),
                   help="simulator preset: demo (default) or small (fewer wells; faster, less accurate)")
    p.add_argument("--sites", type=int, default=4, help="fields imaged per well (default 4)")
    p.add_argument("--size", type=int, help="field size in pixels (default 128; smaller is faster)")
    p.add_argument("--phenotypes", help="simulate only these phenotypes, comma list (default all three)")
    p.add_argument("--repeats", type=int, default=1, help="90/10 cross-validation repeats (default 1)")
    p.add_argument("--epochs", type=float, default=24, help="training epochs (default 24)")
    add_quiet_argument(p)
    return p


def main(args: argparse.Namespace) -> int:
    output_folder(args.out)
    options = DemoOptions(out=args.out, preset=args.preset, sites=args.sites, size=args.size,
                          phenotypes=tuple(args.phenotypes.split(",")) if args.phenotypes else None,
                          seed=args.seed, repeats=args.repeats, epochs=args.epochs,
                          step_epochs=round(args.epochs * 7 / 18, 2), quiet=args.quiet)
    result = run_demo(options, log=lambda m: print(m, file=sys.stderr))
    if result.accuracy is not None:
        print(f"held-out accuracy: {100 * result.accuracy:.1f}%")
    for rec in result.recoveries:
        est = "no EC50" if not math.isfinite(rec.estimate) else f"EC50 {rec.estimate:.3g} uM"
        err = "" if not math.isfinite(rec.log10_error) else f" ({rec.log10_error:+.2f} log10)"
        print(f"{rec.compound} ({rec.phenotype}): planted {rec.true_ec50:g} uM, {rec.status}: {est}{err} -> "
              f"{'ok' if rec.recovered else 'MISSED'}")
    in_range = [r for r in result.recoveries if r.in_range]
    took = f"{result.seconds['total'] / 60:.1f} min" + (" (earlier run; steps reused)" if "reused" in result.seconds
                                                       else "")
    print(f"{sum(r.recovered for r in in_range)}/{len(in_range)} in-range EC50s within {TOLERANCE_LOG10} log10; "
          f"{took}; report: {result.report}")
    return 0


if __name__ == "__main__":
    sys.exit(run("demo", lambda: main(get_args_parser().parse_args())))
