#!/usr/bin/env python
"""Upgrade an old Caffe solver (the deprecated solver_type enum) to the current format.

Like Caffe's upgrade_solver_proto_text: `solver_type: ADAM` becomes `type: "Adam"`. A solver that
sets both is refused; one already current is written unchanged.

Example:
  python tools/upgrade_solver.py old_solver.prototxt solver.prototxt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.caffe import io as cio
from mcnn.caffe import pb, upgrade
from mcnn.cli import ArgumentParser, output_file, run


def get_args_parser() -> argparse.ArgumentParser:
    """IN and OUT."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    f = p.add_argument_group("files")
    f.add_argument("input", type=Path, metavar="IN", help="the old solver prototxt")
    f.add_argument("output", type=Path, metavar="OUT", help="where the upgraded solver is written (atomically)")
    return p


def main(args: argparse.Namespace) -> int:
    """Read IN as written, upgrade it, write OUT."""
    output_file(args.output, "OUT")
    solver = cio.read_prototxt(args.input, pb.SolverParameter)
    if upgrade.upgrade_solver(solver, str(args.input)):
        note = f"upgraded solver_type to type: {solver.type!r}"
    else:
        note = "already in the current format; copied"
    cio.write_prototxt(args.output, solver)
    print(f"upgrade_solver: wrote {args.output}: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run("upgrade_solver", lambda: main(get_args_parser().parse_args())))
