"""The command-line helpers every script in ``tools/`` and ``data_prep/`` shares.

- :func:`run`: calls a script's ``main`` and turns toolkit errors into one ``prog: error: ...`` line;
  :func:`exit_now` ends a short tool without the interpreter's teardown.
- Argument groups, defined once: :func:`add_engine_argument` (``--engine``),
  :func:`add_mcnn_arguments` (the M-CNN's shape, read back by :func:`mcnn_options`),
  :func:`add_quiet_argument` and :func:`add_model_arguments` (a trained net applied to an LMDB,
  run by :func:`mcnn.evaluate.predict.run_model_args`).
- Parsers of option values: :func:`int_list`, :func:`float_list`, :func:`parse_scales`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from mcnn.errors import ConfigError, McnnError
from mcnn.training import ENGINES


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line (``prog: error: ...; see prog --help``), like every
    other error of the toolkit, instead of the usage text and then the error."""

    def error(self, message: str) -> NoReturn:
        """Print the one-line error and exit with status 2 (argparse's, for a bad command line)."""
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


#: Exit status of a run stopped by bad input (a file, flag or option) and by its environment (disk, permission).
BAD_INPUT, ENVIRONMENT = 2, 1


def run(prog: str, main: Callable[[], int | None]) -> int:
    """Call ``main``; turn toolkit and file-system errors into one ``prog: error: ...`` line.

    Exit status :data:`BAD_INPUT` (2) for a bad file, flag or option, :data:`ENVIRONMENT` (1) when
    the machine refused (permission denied, disk full, another OS error).
    """
    try:
        return int(main() or 0)
    except McnnError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return BAD_INPUT
    except FileExistsError as exc:  # mkdir of an output folder that is a file
        print(f"{prog}: error: {exc.filename}: exists and is not a folder", file=sys.stderr)
        return BAD_INPUT
    except NotADirectoryError as exc:
        print(f"{prog}: error: {exc.filename}: a part of this path is a file, not a folder", file=sys.stderr)
        return BAD_INPUT
    except (FileNotFoundError, IsADirectoryError) as exc:
        print(f"{prog}: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return BAD_INPUT
    except OSError as exc:  # PermissionError, ENOSPC, ...: the environment, not the input
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return ENVIRONMENT


def exit_now(status: int) -> NoReturn:
    """End the process with ``status``, skipping CPython's teardown of every module and object.

    With torch and matplotlib loaded that teardown took 0.80 s of a 64-record ``evaluate.py`` run
    (``bench/startup.py``; 0.05 s without it). What exit must still do is done: the ``atexit`` handlers run
    (multiprocessing's cleanup of its workers, temporary folders, logging) and the standard
    streams are flushed. The tools that call this write their files completely and rename them
    into place (:mod:`mcnn.fsutil`) before they return, so no file depends on a finaliser.
    """
    atexit._run_exitfuncs()  # CPython's own exit sequence, which os._exit skips
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing more can be said
            stream.flush()
    os._exit(status)


def _file_above(path: Path) -> Path | None:
    """The nearest existing folder-or-file above ``path``, when it is a file (None otherwise)."""
    for p in path.parents:
        if p.exists():
            return None if p.is_dir() else p
    return None


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` as one line: an error re-raised from a DataLoader worker carries the
    worker's traceback in its message; its last line is the original message."""
    text = str(exc).strip()
    if "Traceback (most recent call last)" in text:
        last = text.splitlines()[-1]
        return last.split(": ", 1)[1] if last.startswith("mcnn.errors.") and ": " in last else last
    return " ".join(text.splitlines())


def output_folder(path: Path | None, flag: str = "--out") -> Path | None:
    """``path`` if it can be an output folder (a folder, or nothing yet under a folder); a
    :class:`ConfigError` naming ``flag`` when it, or a folder above it, is a file. None passes."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file; {flag} takes a folder")
    above = _file_above(path)
    if above is not None:
        raise ConfigError(f"{flag} {path}: lies inside the file {above}; {flag} takes a folder")
    return path


def output_file(path: Path | None, flag: str = "--out") -> Path | None:
    """``path`` if it can be an output file (not a folder, nothing above it a file); ConfigError naming
    ``flag``. None passes."""
    if path is None:
        return None
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; {flag} takes a file name")
    above = _file_above(path)
    if above is not None:
        raise ConfigError(f"{flag} {path}: lies inside the file {above}")
    return path


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


def parse_scales(text: str) -> tuple[int, ...]:
    """Parse ``--scales``: ``A..B`` (the powers of two from A to B) or a comma list.

    Only the range form is checked here; the M-CNN builder checks the values.
    """
    text = text.strip()
    if ".." not in text:
        return int_list(text, "--scales")
    try:
        lo, hi = (int(part) for part in text.split("..", 1))
    except ValueError:
        raise ConfigError(f"--scales {text!r}: expected A..B or a comma list of integers") from None
    for s in (lo, hi):
        if s < 1 or s & (s - 1):
            raise ConfigError(f"--scales {text}: {s} is not a power of two")
    if lo > hi:
        raise ConfigError(f"--scales {text}: the range is empty")
    return tuple(1 << k for k in range(lo.bit_length() - 1, hi.bit_length()))


def add_engine_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, caffe: str = "real Caffe") -> None:
    """``--engine torch|caffe`` (default torch, or ``$MCNN_ENGINE``); ``caffe`` says what real Caffe runs."""
    p.add_argument("--engine", default=os.environ.get("MCNN_ENGINE", "torch"), choices=ENGINES,
                   help=f"torch (default; $MCNN_ENGINE overrides) or {caffe}")


def add_quiet_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--quiet``: no progress bars."""
    p.add_argument("--quiet", action="store_true", help="no progress bars")


#: The M-CNN shape options: flag -> (keyword of the builder, help). Defaults are the builder's.
MCNN_FLAGS: dict[str, tuple[str, str]] = {
    "scales": ("scales", "scales: A..B (powers of two, e.g. 1..64) or a list, e.g. 1,2,4"),
    "widths": ("pathway_widths", "kernel maps of each pathway's convs, one per scale, e.g. 16,16,16,32,32,32,64"),
    "pool": ("pool", "pooling for subsampling and merging (default MAX)"),
    "fusion_width": ("fusion_width", "outputs of the 1x1 fusion conv (default 1024)"),
    "fusion_pool": ("fusion_pool", "MAX pool after the fusion conv, 0 = none (default 2)"),
    "fc_width": ("fc_width", "units of the first FC layer (default 512, the paper's)"),
    "dropout": ("dropout", "dropout ratio after the first FC layer (default 0 = none)"),
    "weight_filler": ("weight_filler", "weight init (default xavier)"),
}


def add_mcnn_arguments(p: argparse.ArgumentParser,
                       title: str = "M-CNN options (defaults: the reconstruction documented in the file header)"
                       ) -> argparse._ArgumentGroup:
    """The M-CNN shape group (``--scales``, ``--widths``, ...); read it back with :func:`mcnn_options`."""
    g = p.add_argument_group(title)
    types: dict[str, dict[str, object]] = {
        "pool": {"choices": ("MAX", "AVE")}, "fusion_width": {"type": int}, "fusion_pool": {"type": int},
        "fc_width": {"type": int}, "dropout": {"type": float},
        "weight_filler": {"choices": ("xavier", "msra", "gaussian")},
    }
    for flag, (_, text) in MCNN_FLAGS.items():
        g.add_argument("--" + flag.replace("_", "-"), help=text, **types.get(flag, {}))  # type: ignore[arg-type]
    return g


def mcnn_options(args: argparse.Namespace, arch: str = "mcnn") -> dict[str, object]:
    """The builder keywords of the M-CNN options given in ``args``; ConfigError if ``arch`` is not mcnn."""
    given = {flag: getattr(args, flag) for flag in MCNN_FLAGS if getattr(args, flag, None) is not None}
    if given and arch != "mcnn":
        raise ConfigError(f"{', '.join('--' + f.replace('_', '-') for f in given)} only apply to --arch mcnn")
    options: dict[str, object] = {}
    for flag, value in given.items():
        if flag == "scales":
            value = parse_scales(value)
        elif flag == "widths":
            value = int_list(value, "--widths")
        options[MCNN_FLAGS[flag][0]] = value
    return options


def add_model_arguments(p: argparse.ArgumentParser, caffe: str = "pycaffe") -> None:
    """The options of applying a trained deploy net to an LMDB (tools/evaluate.py, tools/predict.py).

    ``--model``, ``--weights``, ``--lmdb``, ``--index``, ``--out``, ``--labels``, ``--train-val``,
    ``--batch`` (images per forward pass), ``--engine``, ``--gpu`` and ``--quiet``.
    """
    p.add_argument("--model", required=True, type=Path, help="deploy prototxt")
    p.add_argument("--weights", required=True, type=Path, help="caffemodel")
    p.add_argument("--lmdb", required=True, type=Path, help="LMDB of Datum records to predict")
    p.add_argument("--index", type=Path, help="index CSV of the LMDB (joined by key into the output)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--labels", type=Path, help="labels.txt (default: found next to or above the LMDB)")
    p.add_argument("--train-val", type=Path,
                   help="train_val prototxt whose TEST Data layer gives the preprocessing (default: the "
                        "*_train_val.prototxt next to the deploy net)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass (default 16)")
    add_engine_argument(p, caffe)
    p.add_argument("--gpu", type=int, help="GPU id (default CPU)")
    add_quiet_argument(p)
