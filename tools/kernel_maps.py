#!/usr/bin/env python
"""Draw the kernel maps of one field at every scale of a trained net (the paper's Fig. 3a, Suppl. Fig. 1).

Examples:
  python tools/kernel_maps.py --model runs/bbbc013/runs/mcnn/repeat_000/mcnn_deploy.prototxt \\
      --weights runs/bbbc013/runs/mcnn/repeat_000/snapshots/mcnn_iter_N.caffemodel \\
      --lmdb runs/bbbc013/data/splits/repeat_000/test_lmdb --record 3 --out runs/bbbc013/kernels
  python tools/kernel_maps.py --model DEPLOY --weights W --image gfp.png dna.png --layers conv1_s1,conv2_s1 \\
      --out kernels

The field (an LMDB record, or one 8-bit image file per channel in the net's channel order) is
preprocessed by the TEST transform of the train_val net next to the deploy net (without the
mirror) and run through the net. OUT gets kernel_maps.png (per chosen layer: the input at the
layer's scale and one tile per kernel map) and kernel_maps.npz (one array per layer blob, the
input, and the windows and scales). The default layers are the first conv of every scale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, add_engine_argument, output_folder, run
from mcnn.errors import ConfigError


def get_args_parser() -> argparse.ArgumentParser:
    """The net, the field (``--image`` or ``--lmdb``/``--record``), the layers and the output folder."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    net = p.add_argument_group("the trained net")
    net.add_argument("--model", required=True, type=Path, help="deploy prototxt")
    net.add_argument("--weights", required=True, type=Path, help="caffemodel")
    net.add_argument("--train-val", type=Path, help="train_val prototxt whose TEST Data layer gives the "
                     "preprocessing (default: the *_train_val.prototxt next to the deploy net)")
    add_engine_argument(net, "pycaffe")
    net.add_argument("--gpu", type=int, help="GPU id (default CPU)")
    field = p.add_argument_group("the field (one of)")
    source = field.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", nargs="+", type=Path, metavar="FILE",
                        help="one 8-bit grey image file per channel, in the net's channel order")
    source.add_argument("--lmdb", type=Path, help="an LMDB of Datum records")
    field.add_argument("--record", default="0", help="with --lmdb: a record key or 0-based index (default 0)")
    field.add_argument("--labels", type=Path, help="labels.txt naming the record's class (default: found next to "
                       "or above the LMDB)")
    field.add_argument("--channels", help="comma list naming the channels, for the colours (default: the "
                       "dataset.json next to or above the LMDB; DNA/DAPI blue, GFP/tubulin green, actin red)")
    out = p.add_argument_group("the figure")
    out.add_argument("--layers", help="comma list of layers (default: the first conv of every scale)")
    out.add_argument("--region", type=int, default=256,
                     help="side of the centred part of the field kept, in input pixels (0: all; default 256)")
    out.add_argument("--out", required=True, type=Path, help="output folder")
    return p


def main(args: argparse.Namespace) -> int:
    """Read the field, run the net, write kernel_maps.png and kernel_maps.npz."""
    from mcnn.evaluate.fieldview import find_channels, resolve_channels
    from mcnn.evaluate.kernelfields import image_field, lmdb_field
    from mcnn.evaluate.kernels import compute_maps, write_maps
    from mcnn.evaluate.predict import default_train_val, find_labels, read_labels, test_transform

    output_folder(args.out)
    if args.region < 0:
        raise ConfigError(f"--region {args.region}: give a side in pixels, or 0 for the whole field")
    if args.image and args.record != "0":
        raise ConfigError("--record only applies to --lmdb")
    train_val = args.train_val or default_train_val(args.model)
    if train_val is None:
        raise ConfigError(f"{args.model}: no train_val prototxt next to it to take the preprocessing from; "
                          "give --train-val")
    transform = test_transform(train_val)
    if args.lmdb is not None:
        labels = args.labels or find_labels(args.lmdb)
        field, encoded = lmdb_field(args.lmdb, args.record, read_labels(labels) if labels else None)
        named = args.channels.split(",") if args.channels else find_channels(args.lmdb)
        base_dir = args.lmdb.parent
    else:
        field, encoded = image_field(args.image), True
        named = args.channels.split(",") if args.channels else None
        base_dir = Path(train_val).parent
    where = "--channels" if args.channels else f"the dataset.json above {args.lmdb}"
    channels = resolve_channels(named, field.image.shape[0], where)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else None
    maps = compute_maps(args.model, args.weights, [field], transform, channels, layers, args.region,
                        engine=args.engine, gpu=args.gpu, base_dir=base_dir, encoded=encoded)
    args.out.mkdir(parents=True, exist_ok=True)
    png, npz = write_maps(args.out / "kernel_maps.png", maps)
    shown = ", ".join(f"{b} ({v.shape[1]} maps)" for b, v in maps.blobs.items())
    print(f"{field.title}: {shown}; wrote {png} and {npz}")
    return 0


if __name__ == "__main__":
    sys.exit(run("kernel_maps", lambda: main(get_args_parser().parse_args())))
