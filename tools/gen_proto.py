#!/usr/bin/env python
"""Regenerate mcnn/caffe/proto/caffe_pb2.py from caffe.proto (``make proto``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.caffe import protogen
from mcnn.errors import ProtocError


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--cache", type=Path, default=Path(".cache"),
        help="folder for the pinned protoc (grpcio-tools wheel); default .cache",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        path = protogen.generate_module(args.cache.resolve())
    except ProtocError as exc:
        print(f"gen_proto: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
