#!/usr/bin/env python
"""Generate an M-CNN, AlexNet or GoogLeNet as Caffe train_val and deploy prototxt.

Examples:
  python tools/make_net.py --scales 1..64 --summary
  python tools/make_net.py --arch googlenet --preset hela --out prototxt/my_hela
  python tools/make_net.py --preset demo --scales 1,2,4 --widths 8,8,16 --out nets/
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcnn.cli import ArgumentParser, add_mcnn_arguments, float_list, mcnn_options, output_folder, run
from mcnn.errors import ConfigError
from mcnn.nets import DataSpec, list_nets, summarize
from mcnn.nets.emit import net_texts, write_texts
from mcnn.nets.presets import PRESETS, Preset, data_spec_for, get_preset
from mcnn.nets.registry import build_net

PROTOBUF_LIMIT = 2**31 - 1


def get_args_parser() -> argparse.ArgumentParser:
    """Architecture and preset, the M-CNN options, the data and the output."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="mcnn", choices=list_nets(), help="architecture (default mcnn)")
    p.add_argument("--preset", default="bbbc021",
                   help=f"dataset defaults: {', '.join(PRESETS)} (default bbbc021)")
    add_mcnn_arguments(p)
    d = p.add_argument_group("data (defaults from --data or --preset)")
    d.add_argument("--data", type=Path,
                   help="a prepared dataset (data_prep/prepare.py --out): channels, size, classes and LMDB paths")
    d.add_argument("--split", help="with --data: which split's LMDBs to read (default the first)")
    d.add_argument("--channels", type=int, help="input channels")
    d.add_argument("--classes", type=int, help="number of phenotype classes N_p")
    d.add_argument("--height", type=int, help="image height in pixels")
    d.add_argument("--width", type=int, help="image width in pixels")
    d.add_argument("--crop", type=int, help="square crop size, 0 = whole image (default: none for mcnn, "
                                             "227/224 for alexnet/googlenet on larger images)")
    d.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal flips in training (default off)")
    d.add_argument("--mean-file", help="mean .binaryproto subtracted from each image")
    d.add_argument("--mean-value", help="mean per channel (or one for all), comma list")
    d.add_argument("--scale", type=float, help="multiplier after mean subtraction (default 1/256)")
    d.add_argument("--train-source", help="training LMDB (default data/<preset>/train_lmdb)")
    d.add_argument("--test-source", help="test LMDB (default data/<preset>/test_lmdb)")
    d.add_argument("--batch", type=int, help="training batch size")
    d.add_argument("--test-batch", type=int, help="test batch size (default = --batch)")
    o = p.add_argument_group("output")
    o.add_argument("--name", help="net name written in the files (default the architecture's)")
    o.add_argument("--out", type=Path, help="write <prefix>_train_val.prototxt and <prefix>_deploy.prototxt here")
    o.add_argument("--prefix", help="file name prefix (default the architecture)")
    o.add_argument("--summary", action="store_true",
                   help="print a per-layer table (shapes, parameters, mult-adds) of the deploy net")
    o.add_argument("--print", dest="print_variant", choices=("train_val", "deploy"), default="train_val",
                   help="without --out or --summary, which net to print (default train_val)")
    return p


def prepared_data(args: argparse.Namespace) -> dict[str, object]:
    """Channels, size, classes and LMDB paths from ``--data`` (a prepared dataset), then the explicit flags."""
    prepared: dict[str, object] = {}
    if args.data is not None:
        from mcnn.prep.prepared import load_prepared

        ds = load_prepared(args.data)
        split = ds.split(args.split) if args.split else ds.splits[0]
        prepared = {"channels": ds.num_channels, "classes": ds.num_classes, "height": ds.height, "width": ds.width,
                    "train_source": str(split.paths.train_lmdb), "test_source": str(split.paths.test_lmdb),
                    "class_names": ds.class_names}
    elif args.split:
        raise ConfigError("--split needs --data")
    given = {"channels": args.channels, "classes": args.classes, "height": args.height, "width": args.width,
             "train_source": args.train_source, "test_source": args.test_source}
    prepared.update({k: v for k, v in given.items() if v is not None})
    return prepared


def data_spec(args: argparse.Namespace, preset: Preset) -> DataSpec:
    """The :class:`DataSpec` of the preset, overridden by ``--data`` and the data flags."""
    mean_values = float_list(args.mean_value, "--mean-value") if args.mean_value else None
    prepared = prepared_data(args)
    classes = prepared.get("classes", preset.classes)
    return data_spec_for(
        preset, args.arch, crop=args.crop, mirror=args.mirror, mean_file=args.mean_file, mean_values=mean_values,
        scale=args.scale, train_batch=args.batch, test_batch=args.test_batch or args.batch,
        **{"class_names": () if classes != preset.classes else None, **prepared},
    )


def main(args: argparse.Namespace) -> int:
    """Check the net's shapes, then print or write it (and its summary)."""
    output_folder(args.out)
    preset = get_preset(args.preset)
    mcnn = mcnn_options(args, args.arch)
    data = data_spec(args, preset)
    # Shapes are always checked, so no file is written for a net that cannot run.
    deploy = build_net(args.arch, data, deploy=True, **({"name": args.name} if args.name else {}), **mcnn)
    summary = summarize(deploy.net)
    if args.summary:
        print(summary.format())
    if summary.caffemodel_bytes >= PROTOBUF_LIMIT:
        print(f"make_net: warning: {summary.params:,} parameters need a "
              f"{summary.caffemodel_bytes / 2**30:.1f} GiB caffemodel, beyond protobuf's 2 GiB limit; "
              "Caffe could not snapshot this net (use coarser scales, --fusion-pool or a crop)",
              file=sys.stderr)
    command = "python tools/make_net.py " + shlex.join(sys.argv[1:])
    header = [f"Dataset preset {preset.name!r} ({preset.title}) with the options of the command.",
              f"Generated by `{command.strip()}`."]
    texts = net_texts(args.arch, data, header, name=args.name, **mcnn)
    if args.out is not None:
        prefix = args.prefix or args.arch
        paths = write_texts({args.out / f"{prefix}_{variant}.prototxt": text for variant, text in texts.items()})
        for path in paths:
            print(f"wrote {path}", file=sys.stderr)
    elif not args.summary:
        sys.stdout.write(texts[args.print_variant])
    return 0


if __name__ == "__main__":
    sys.exit(run("make_net", lambda: main(get_args_parser().parse_args())))
