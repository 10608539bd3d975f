#!/usr/bin/env python
"""Simulate a plate-based phenotype screen with known ground truth, in the generic screen format.

Writes images/ (TIFFs), load_data.csv (CellProfiler LoadData image table), platemap.csv,
ground_truth_fields.csv, ground_truth.json and, with --ome-zarr, plates/<plate>.ome.zarr.

Examples:
  python tools/simulate.py --out data/raw/simulated                 # the demo screen
  python tools/simulate.py --preset test --out /tmp/screen --seed 3 --ome-zarr
  python tools/simulate.py --preset small --size 96 --sites 4 --out /tmp/small --preview /tmp/small.png
  python data_prep/prepare.py screen --images /tmp/screen/load_data.csv --platemap /tmp/screen/platemap.csv \\
      --label-column Metadata_Phenotype --negative-control Metadata_Role=negative_control --out /tmp/data

Layout and ground truth: docs/simulator.md and docs/formats.md ("A simulated screen").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm

from mcnn.cli import ArgumentParser, output_folder, run
from mcnn.errors import ConfigError
from mcnn.simulate.config import PHENOTYPES, PRESET_HELP, ScreenConfig, get_preset, with_overrides
from mcnn.simulate.layout import plan_fields
from mcnn.simulate.screen import simulate_screen


def get_args_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The simulator's options; ``prog`` names the program in usage and error messages."""
    p = ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder to write the screen to (RAW for data_prep)")
    p.add_argument("--preset", default="demo",
                   help="; ".join(f"{name}: {text}" for name, text in PRESET_HELP.items()) + " (default demo)")
    p.add_argument("--seed", type=int, help="random seed (default the preset's, 0)")
    p.add_argument("--size", type=int, help="square field size in pixels; the cell density stays the same "
                                            "(default the preset's, 128 or 64 for test)")
    p.add_argument("--plates", type=int, help="number of plates; replicate r goes to plate (r-1) %% plates, "
                                              "every plate has its own control wells")
    p.add_argument("--sites", type=int, help="fields imaged per well")
    p.add_argument("--phenotypes",
                   help=f"comma list of phenotypes to simulate, from {', '.join(PHENOTYPES)} "
                        "(default the preset's: translocation,spots,elongation); compounds of other "
                        "phenotypes are left out")
    p.add_argument("--workers", type=int, default=1, help="processes rendering fields (default 1; same output)")
    p.add_argument("--ome-zarr", action="store_true",
                   help="also write every plate as an OME-Zarr HCS plate, plates/<plate>.ome.zarr (same pixels; "
                        "needs the 'screen' extra)")
    p.add_argument("--overwrite", action="store_true", help="replace a screen already in --out")
    p.add_argument("--preview", type=Path, help="also write a PNG montage of every class and dilution series here")
    return p


def parse_phenotypes(text: str | None) -> tuple[str, ...] | None:
    """The ``--phenotypes`` comma list (``None`` when not given); ConfigError naming unknown ones."""
    if text is None:
        return None
    phenotypes = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in phenotypes if name not in PHENOTYPES]
    if unknown:
        raise ConfigError(f"--phenotypes: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(PHENOTYPES)}")
    return phenotypes


def screen_config(args: argparse.Namespace) -> ScreenConfig:
    """The validated screen configuration: ``--preset`` with the other options applied."""
    phenotypes = parse_phenotypes(args.phenotypes)
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    for option in ("plates", "sites"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ConfigError(f"--{option} must be at least 1, got {value}")
    return with_overrides(get_preset(args.preset), size=args.size, plates=args.plates, sites=args.sites,
                          seed=args.seed, phenotypes=phenotypes)


def main(args: argparse.Namespace) -> int:
    """Run the simulator with parsed ``args``; one summary line on stderr; returns the exit status."""
    output_folder(args.out)
    config = screen_config(args)
    total = len(plan_fields(config))
    start = time.perf_counter()
    with tqdm(total=total, unit="field", desc="simulate", file=sys.stderr, disable=not sys.stderr.isatty(),
              dynamic_ncols=True) as bar:
        out = simulate_screen(config, args.out, workers=args.workers, overwrite=args.overwrite,
                              ome_zarr=args.ome_zarr, progress=bar.update)
    plates = f", {config.plates} OME-Zarr plate(s)" if args.ome_zarr else ""
    print(f"wrote {total} fields ({config.height}x{config.width}, channels {', '.join(config.channels)}; "
          f"classes {', '.join(config.classes)}; {len(config.compounds)} compound(s) x "
          f"{len(config.concentrations)} concentration(s) x {config.replicates} replicate(s){plates}) to {out} "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if args.preview is not None:
        from mcnn.simulate.preview import save_preview  # matplotlib only when a preview is asked for

        print(f"wrote {save_preview(out, args.preview)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run("simulate", lambda: main(get_args_parser().parse_args())))
