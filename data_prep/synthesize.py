#!/usr/bin/env python
"""Write a synthetic look-alike of a dataset's raw download, in exactly the real layout.

File names, folder structure, formats, bit depths and metadata files are those of the real
download (docs/data_prep.md; the writers are in mcnn/simulate/lookalikes/); the images are
rendered cells whose look depends on the class or dose, so prepare.py, the tests and the demo
can run without the download.

Examples:
  python data_prep/synthesize.py bbbc013 --out /tmp/raw/bbbc013                 # small images
  python data_prep/synthesize.py hela --out /tmp/raw/hela --size real
  python data_prep/synthesize.py bbbc021 --out /tmp/raw/bbbc021 --metadata /path/to/csvs --plates all
  python data_prep/synthesize.py simulate --out /tmp/raw/sim [simulator options ...]
  python data_prep/synthesize.py simulate --preset test --out /tmp/raw/sim --ome-zarr

`simulate` writes a screen in the generic screen format (load_data.csv + platemap.csv, OME-Zarr
plates with --ome-zarr), which `prepare.py screen` reads (docs/simulator.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, output_folder, run
from mcnn.datasets import DATASETS
from mcnn.datasets.bbbc021 import IMAGE_CSV, MOA_CSV
from mcnn.errors import ConfigError
from mcnn.simulate.lookalikes.registry import LOOKALIKES, synthesize

ROOT = Path(__file__).resolve().parents[1]
#: Where the real BBBC021 metadata CSVs are looked for when --metadata is not given.
METADATA_ENV = "MCNN_BBBC021_METADATA"
SIMULATOR = ROOT / "tools" / "simulate.py"
METADATA_FALLBACK = ROOT.parent / "shared" / "data" / "bbbc021" / "crlf_unquoted"
LOOK_ALIKES = list(LOOKALIKES)


def get_args_parser() -> argparse.ArgumentParser:
    """One sub-command per look-alike (its options) plus ``simulate``, which forwards to the simulator."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for name in LOOK_ALIKES:
        cls = DATASETS[name]
        s = sub.add_parser(name, help=cls.title, description=f"Look-alike of the {cls.title} download.")
        s.add_argument("--out", type=Path, required=True, help="folder to write the raw layout into (RAW)")
        s.add_argument("--size", choices=("small", "real"), default="small",
                       help=f"small: {cls.small_size[0]}x{cls.small_size[1]} images (default); real: the real size"
                            + (f" ({cls.real_size[0]}x{cls.real_size[1]})" if cls.real_size else ""))
        s.add_argument("--seed", type=int, default=0, help="seed of the rendered images (default 0)")
        s.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                       help="dataset option (e.g. bbbc014 channel1=FITC writes FITC as Channel 1)")
        if name == "bbbc021":
            s.add_argument("--metadata", type=Path,
                           help=f"folder with the real {IMAGE_CSV} and {MOA_CSV} (default ${METADATA_ENV}, else "
                                f"{METADATA_FALLBACK})")
            s.add_argument("--plates", help="plates to write (comma list or 'all'; default: the 3 Week1 taxol plates "
                                            "for --size small, all 55 for --size real)")
            s.add_argument("--fields-per-plate", type=int,
                           help="keep only each plate's DMSO fields and its first N other fields (quick real-size "
                                "trials)")
    sub.add_parser("simulate", help="the phenotype simulator (tools/simulate.py): a screen in the generic format; "
                                    "remaining arguments (--preset, --ome-zarr, ...) go to it", add_help=False)
    return p


def metadata_folder(given: Path | None) -> Path:
    """The folder of the real BBBC021 CSVs: ``--metadata``, else $MCNN_BBBC021_METADATA, else the shared copy."""
    if given is not None:
        return given
    env = os.environ.get(METADATA_ENV)
    if env:
        return Path(env)
    if (METADATA_FALLBACK / IMAGE_CSV).is_file():
        return METADATA_FALLBACK
    raise ConfigError(f"bbbc021 needs the real metadata CSVs: pass --metadata DIR (with {IMAGE_CSV} and {MOA_CSV}, "
                      "from https://data.broadinstitute.org/bbbc/BBBC021/) or set " + METADATA_ENV)


def simulate(argv: list[str]) -> int:
    """Forward ``argv`` to the simulator's command line (``tools/simulate.py``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("simulate_tool", SIMULATOR) if SIMULATOR.is_file() else None
    if spec is None or spec.loader is None:
        raise ConfigError(f"the phenotype simulator is not available ({SIMULATOR} is missing)")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return int(tool.main(tool.get_args_parser(prog="synthesize.py simulate").parse_args(argv)) or 0)


def main(args: argparse.Namespace) -> int:
    """Write the look-alike the parsed ``args`` ask for; prints a one-line summary to stderr."""
    output_folder(args.out)
    options = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--option {item!r}: expected NAME=VALUE")
        options[name.strip()] = value.strip()
    extra: dict[str, object] = {}
    if args.dataset == "bbbc021":
        extra["metadata"] = metadata_folder(args.metadata)
        if args.plates and args.plates != "all":
            extra["plates"] = [p.strip() for p in args.plates.split(",") if p.strip()]
        elif args.plates == "all":
            extra["plates"] = None if args.size == "real" else _all_plates(extra["metadata"])
        if args.fields_per_plate is not None:
            if args.fields_per_plate < 0:
                raise ConfigError(f"--fields-per-plate {args.fields_per_plate}: need 0 or more")
            extra["fields_per_plate"] = args.fields_per_plate
    info = synthesize(args.dataset, args.out, size=args.size, seed=args.seed, options=options, **extra)
    print(f"synthesize: {args.dataset}: wrote {info['images']} images of {info['height']}x{info['width']} "
          f"into {args.out}", file=sys.stderr)
    return 0


def _all_plates(metadata: Path) -> list[str]:
    from mcnn.datasets.bbbc021 import read_csv

    return sorted({r["Image_Metadata_Plate_DAPI"] for _, r in read_csv(metadata / IMAGE_CSV,
                                                                       ("Image_Metadata_Plate_DAPI",))})


def entry(argv: list[str]) -> int:
    """Dispatch: ``simulate`` forwards the rest of ``argv``; look-alikes parse their own options."""
    if argv and argv[0] == "simulate":
        return simulate(argv[1:])
    return main(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(run("synthesize", lambda: entry(sys.argv[1:])))
