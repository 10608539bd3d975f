"""``python -m mcnn.pycaffe --pythonpath``: the folder to put on PYTHONPATH so ``import caffe`` is this module.

Example::

    PYTHONPATH=$(python -m mcnn.pycaffe --pythonpath) python classify.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SHIM = Path(__file__).resolve().parent / "shim"


def main(argv: list[str] | None = None) -> int:
    """Print the shim folder (``--pythonpath``); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m mcnn.pycaffe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pythonpath", action="store_true",
                        help="print the folder holding the `caffe` shim package (for PYTHONPATH)")
    args = parser.parse_args(argv)
    if not args.pythonpath:
        parser.print_help()
        return 2
    if not (SHIM / "caffe" / "__init__.py").is_file():
        print(f"the caffe shim is missing from {SHIM} (a broken install?)", file=sys.stderr)
        return 2
    print(SHIM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
