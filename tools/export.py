#!/usr/bin/env python
"""Export a trained deploy net to ONNX and/or TorchScript, each file checked against the engine.

Example (the demo's M-CNN; any deploy net the engine runs, e.g. AlexNet with LRN or GoogLeNet):
  python tools/export.py --model prototxt/demo/mcnn_deploy.prototxt \\
      --weights runs/demo/snapshots/mcnn_iter_N.caffemodel --onnx mcnn.onnx --torchscript mcnn.pt

Both files have a dynamic batch axis. After writing, the file is run (onnxruntime; torch.jit.load
for TorchScript) on random batches of 1 and 2 images next to the engine, and the worst difference
is printed; a file that disagrees by more than --tolerance is removed and the tool fails. ONNX
needs the 'export' extra (pip install 'mcnn[export]').
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, int_list, output_file, run
from mcnn.errors import ConfigError
from mcnn.export import MIN_OPSET, TOLERANCE, export_onnx, export_torchscript, load_export_net
from mcnn.export.onnx_export import check_opset, supported_types


def get_args_parser() -> argparse.ArgumentParser:
    """The net, the output files and the check."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("the net")
    g.add_argument("--model", required=True, type=Path, help="deploy prototxt")
    g.add_argument("--weights", required=True, type=Path, help="caffemodel (every learnable layer must be in it)")
    g.add_argument("--input-shape", metavar="C,H,W",
                   help="per-image input shape instead of the prototxt's (the weights must fit the net it gives)")
    g.add_argument("--outputs", metavar="BLOB[,BLOB]",
                   help="blobs to output, e.g. prob,fc6 (default: the net's outputs)")
    o = p.add_argument_group("the files")
    o.add_argument("--onnx", type=Path, help="ONNX file to write")
    o.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (default {MIN_OPSET}, the lowest)")
    o.add_argument("--torchscript", type=Path, help="TorchScript file to write (torch.jit.load reads it)")
    c = p.add_argument_group("the check against the engine")
    c.add_argument("--check-batches", default="1,2", metavar="N[,N]",
                   help="batch sizes of the random check batches (default 1,2)")
    c.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help=f"largest difference allowed (default {TOLERANCE:g}; relative where outputs exceed 1)")
    return p


def _options(args: argparse.Namespace) -> tuple[tuple[int, ...] | None, list[str] | None, tuple[int, ...]]:
    """The parsed --input-shape, --outputs and --check-batches; ConfigError on a bad value."""
    if args.onnx is None and args.torchscript is None:
        raise ConfigError("nothing to write: give --onnx OUT.onnx and/or --torchscript OUT.pt")
    output_file(args.onnx, "--onnx")
    output_file(args.torchscript, "--torchscript")
    if args.onnx is not None and args.torchscript is not None and args.onnx.resolve() == args.torchscript.resolve():
        raise ConfigError(f"--onnx and --torchscript both name {args.onnx}")
    if args.onnx is not None:
        check_opset(args.opset)
    batches = int_list(args.check_batches, "--check-batches")
    if min(batches) < 1:
        raise ConfigError(f"--check-batches {args.check_batches}: batch sizes must be at least 1")
    if not args.tolerance > 0:
        raise ConfigError(f"--tolerance {args.tolerance:g}: expected a positive number")
    shape = int_list(args.input_shape, "--input-shape") if args.input_shape else None
    outputs = [name.strip() for name in args.outputs.split(",") if name.strip()] if args.outputs else None
    return shape, outputs, batches


def main(args: argparse.Namespace) -> int:
    """Load the net, write and check each requested file, print one line per file."""
    shape, outputs, batches = _options(args)
    supported = supported_types() if args.onnx is not None else None
    net = load_export_net(args.model, args.weights, shape, supported)
    if args.onnx is not None:
        report = export_onnx(net, args.onnx, outputs=outputs, opset=args.opset, batches=batches,
                             tolerance=args.tolerance)
        print(report.summary())
    if args.torchscript is not None:
        report = export_torchscript(net, args.torchscript, outputs=outputs, batches=batches,
                                    tolerance=args.tolerance)
        print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(run("export", lambda: main(get_args_parser().parse_args())))
