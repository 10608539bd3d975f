"""``python -m mcnn.simulate``: the simulator's command line (see :mod:`mcnn.simulate.cli`)."""

import sys

from mcnn.cli import run
from mcnn.simulate.cli import get_args_parser, main

sys.exit(run("mcnn.simulate", lambda: main(get_args_parser(prog="python -m mcnn.simulate").parse_args())))
