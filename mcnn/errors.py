"""Every exception type the toolkit raises, one per failure class.

Each carries enough context (file, line, field, layer) for a one-line message; the command-line
scripts print ``str(exc)`` through :func:`mcnn.cli.run` and exit with status 2.
"""

from __future__ import annotations


class McnnError(Exception):
    """Base class of every error this toolkit raises on bad input."""


class ConfigError(McnnError, ValueError):
    """An option or argument has an invalid value (message names the option)."""


# -- Caffe files ---------------------------------------------------------------------------------

class PrototxtError(McnnError, ValueError):
    """A text prototxt could not be read: missing file, syntax error or unknown field."""


class CaffeFormatError(McnnError, ValueError):
    """A binary Caffe file (caffemodel, binaryproto, solverstate, Datum) is malformed."""


class ShapeError(McnnError, ValueError):
    """A layer cannot be applied to the shape of its input (message names the layer)."""


class DataError(McnnError, ValueError):
    """An LMDB is missing, empty or holds records that don't fit the Data layer."""


class ProtocError(McnnError, RuntimeError):
    """protoc could not be found, installed or run (``make proto``)."""


class BusyError(McnnError, RuntimeError):
    """Another process holds the lock of an output folder (the message names the folder and its pid)."""


# -- tables and datasets -------------------------------------------------------------------------

class TableError(McnnError, ValueError):
    """A CSV lacks a needed column or holds a malformed value; the message names file and column."""


class DatasetLayoutError(McnnError, ValueError):
    """The raw download does not have the documented layout (missing folder, metadata file or
    column, a plate without negative controls, an unknown compound, ...)."""


class BadInputError(DatasetLayoutError):
    """One input file is unusable: missing, unreadable or truncated, wrong size, wrong bit depth.

    ``path`` is the file (relative to the raw folder where possible) and ``problem`` says what
    was expected; ``str(exc)`` is ``"<path>: <problem>"``. With ``--skip-bad`` these are listed in
    a report and the affected images are left out instead of stopping the conversion.
    """

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[BadInputError], tuple[str, str]]:
        return (type(self), (self.path, self.problem))


# -- the engine ----------------------------------------------------------------------------------

class LabelError(McnnError, ValueError):
    """A label in a batch is outside 0..N_p-1 (and is not the ignore_label)."""


class WeightsError(McnnError, ValueError):
    """A caffemodel does not fit the net (blob count or shape), named by layer."""


class TrainingError(McnnError, RuntimeError):
    """Training cannot go on (a non-finite loss, a resume file that doesn't fit)."""


class ExportError(McnnError, ValueError):
    """A net cannot leave the toolkit as ONNX/TorchScript: a layer the exporter cannot express (named),
    or an exported file whose outputs disagree with the engine's (nothing is left written)."""
