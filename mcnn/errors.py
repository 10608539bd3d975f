"""Exception types, one per concern.

Each carries enough context (file, field, layer) for a one-line message; the scripts in
``tools/`` and ``data_prep/`` print ``str(exc)`` and exit non-zero.
"""

from __future__ import annotations


class McnnError(Exception):
    """Base class of every error this toolkit raises on bad input."""


class PrototxtError(McnnError, ValueError):
    """A text prototxt could not be read: missing file, syntax error or unknown field."""


class CaffeFormatError(McnnError, ValueError):
    """A binary Caffe file (caffemodel, binaryproto, solverstate, Datum) is malformed."""


class ShapeError(McnnError, ValueError):
    """A layer cannot be applied to the shape of its input (message names the layer)."""


class ConfigError(McnnError, ValueError):
    """An option or argument has an invalid value (message names the option)."""
