#!/usr/bin/env python
"""Self-test of an mcnn image, run at the end of its docker build (no GPU needed).

    python docker/check_image.py caffe   # Dockerfile.caffe: pycaffe and the toolkit in one process
    python docker/check_image.py torch   # Dockerfile: the toolkit and a CUDA build of PyTorch

Both modes check that every script of the entrypoint's command table is present. ``caffe`` imports
pycaffe (``import caffe``) and the toolkit's schema side by side under one protobuf runtime and
passes a NetParameter between them both ways, byte for byte; ``torch`` checks the engine imports
and that PyTorch was built for CUDA (``--cpu-ok`` accepts a CPU build, for tests).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENTRYPOINT = HERE / "entrypoint.sh"


def command_table(entrypoint: Path = ENTRYPOINT) -> dict[str, str]:
    """The entrypoint's command table: command name -> script path relative to MCNN_HOME."""
    text = entrypoint.read_text()
    match = re.search(r"^MCNN_COMMANDS='\n(.*?)^'", text, flags=re.S | re.M)
    if match is None:
        raise ValueError(f"{entrypoint}: no MCNN_COMMANDS='...' table")
    table = {}
    for line in match.group(1).splitlines():
        if line.strip():
            name, script, _summary = line.split(None, 2)
            table[name] = script
    return table


def check_scripts(home: Path) -> list[str]:
    return [f"command {name!r}: {home / script} is missing"
            for name, script in command_table().items() if not (home / script).is_file()]


def check_caffe() -> list[str]:
    import caffe  # pycaffe: its __init__ imports _caffe.so, caffe.io, net_spec, ...
    import google.protobuf
    from caffe.proto import caffe_pb2 as theirs

    from mcnn.caffe import pb as ours

    print(f"protobuf {google.protobuf.__version__}; pycaffe {getattr(caffe, '__version__', '?')} "
          f"from {Path(caffe.__file__).parent}")
    errors = []
    if theirs.DESCRIPTOR.package != "caffe" or ours.DESCRIPTOR.package != "mcnn.caffe":
        errors.append(f"schema packages are {theirs.DESCRIPTOR.package!r} (pycaffe) and "
                      f"{ours.DESCRIPTOR.package!r} (toolkit); expected 'caffe' and 'mcnn.caffe'")
    net = ours.NetParameter(name="check")
    layer = net.layer.add(name="conv1", type="Convolution", bottom=["data"], top=["conv1"])
    layer.convolution_param.num_output = 8
    layer.convolution_param.kernel_size.append(3)
    data = net.SerializeToString()
    other = theirs.NetParameter.FromString(data)
    if other.SerializeToString() != data or other.layer[0].convolution_param.num_output != 8:
        errors.append("a NetParameter written by the toolkit does not read back identically in pycaffe")
    if ours.NetParameter.FromString(other.SerializeToString()) != net:
        errors.append("a NetParameter written by pycaffe does not read back identically in the toolkit")
    if shutil.which("caffe") is None:
        errors.append("the caffe binary is not on PATH")
    return errors


def check_torch(cpu_ok: bool) -> list[str]:
    import torch

    import mcnn
    import mcnn.engine

    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}); mcnn {getattr(mcnn, '__version__', '?')}")
    if torch.version.cuda is None and not cpu_ok:
        return ["PyTorch is a CPU build; the engine image needs a CUDA build"]
    return []


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", choices=["caffe", "torch"], help="which image this is")
    parser.add_argument("--home", type=Path, default=HERE.parent,
                        help="the toolkit folder (MCNN_HOME); default: the folder above this script")
    parser.add_argument("--cpu-ok", action="store_true", help="torch: accept a CPU build of PyTorch")
    return parser


def main(args: argparse.Namespace) -> int:
    errors = check_scripts(args.home)
    errors += check_caffe() if args.image == "caffe" else check_torch(args.cpu_ok)
    for error in errors:
        print(f"check_image: error: {error}", file=sys.stderr)
    if not errors:
        print(f"check_image: the {args.image} image is complete")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
