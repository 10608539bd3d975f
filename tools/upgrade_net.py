#!/usr/bin/env python
"""Upgrade an old Caffe net (V0 or V1 layers, net-level inputs) to the current format.

Like Caffe's upgrade_net_proto_text and, with --binary, upgrade_net_proto_binary (a .caffemodel,
whose blobs move along). A file already current is written unchanged. Exit status 1 when some
parameters did not fit their layer and were dropped (each is named), as Caffe's tools do.

Examples:
  python tools/upgrade_net.py old_deploy.prototxt deploy.prototxt
  python tools/upgrade_net.py --binary bvlc_reference_caffenet.caffemodel caffenet_v2.caffemodel
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.caffe import io as cio
from mcnn.caffe import pb, upgrade
from mcnn.cli import ArgumentParser, output_file, run
from mcnn.errors import CaffeFormatError, PrototxtError


def get_args_parser() -> argparse.ArgumentParser:
    """IN, OUT and the format."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    f = p.add_argument_group("files")
    f.add_argument("input", type=Path, metavar="IN", help="the old net: text prototxt (or caffemodel with --binary)")
    f.add_argument("output", type=Path, metavar="OUT", help="where the upgraded net is written (atomically)")
    f.add_argument("--binary", action="store_true", help="IN and OUT are binary NetParameters (.caffemodel)")
    return p


def main(args: argparse.Namespace) -> int:
    """Read IN as written, upgrade it, write OUT; 1 if parameters were dropped, else 0."""
    output_file(args.output, "OUT")
    source = str(args.input)
    if args.binary:
        net = cio.read_binary(args.input, pb.NetParameter)
    else:
        net = cio.read_prototxt(args.input, pb.NetParameter)
    if not upgrade.net_needs_upgrade(net):
        print(f"upgrade_net: {source}: already in the current format; copied", file=sys.stderr)
    done = upgrade.upgrade_net(net, source, error=CaffeFormatError if args.binary else PrototxtError)
    if args.binary:
        cio.write_binary(args.output, net)
    else:
        cio.write_prototxt(args.output, net)
    for problem in done.problems:
        print(f"upgrade_net: {source}: {problem}", file=sys.stderr)
    if done.steps:
        print(f"upgrade_net: wrote {args.output}: upgraded {', '.join(done.steps)}", file=sys.stderr)
    return 1 if done.problems else 0


if __name__ == "__main__":
    sys.exit(run("upgrade_net", lambda: main(get_args_parser().parse_args())))
