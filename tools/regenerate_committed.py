#!/usr/bin/env python
"""Regenerate the committed nets and solvers under prototxt/ and solvers/ (``make prototxt``).

With --check, write nothing and list the files that differ from what would be generated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcnn.cli import run  # noqa: E402
from mcnn.nets.emit import committed_files, write_texts  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", type=Path, default=ROOT, help="checkout root (default: this checkout)")
    p.add_argument("--check", action="store_true", help="only report files that are missing or differ")
    return p


def main(args: argparse.Namespace) -> int:
    files = committed_files(args.root)
    if args.check:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"out of date: {path.relative_to(args.root)}")
        return 1 if stale else 0
    write_texts(files)
    print(f"wrote {len(files)} files under {args.root / 'prototxt'} and {args.root / 'solvers'}")
    return 0


if __name__ == "__main__":
    sys.exit(run("regenerate_committed", lambda: main(get_args_parser().parse_args())))
