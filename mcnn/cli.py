"""Shared pieces of the command-line scripts: error reporting and option parsing."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mcnn.errors import ConfigError, McnnError


def run(prog: str, main: Callable[[], int | None]) -> int:
    """Call ``main``; turn toolkit errors into one ``prog: error: ...`` line and exit status 2."""
    try:
        return int(main() or 0)
    except McnnError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"{prog}: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


def float_list(text: str, option: str) -> tuple[float, ...]:
    """Parse a comma list of numbers for ``option``."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a comma list of numbers") from None


def int_list(text: str, option: str) -> tuple[int, ...]:
    """Parse a comma list of integers for ``option``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a comma list of integers") from None
