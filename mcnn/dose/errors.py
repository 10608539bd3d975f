"""Exception types of the dose-response stage."""

from __future__ import annotations

from mcnn.errors import McnnError


class PredictionsError(McnnError, ValueError):
    """A predictions or index CSV lacks a needed column or holds a malformed value.

    The message names the file and the column (and the line for a bad value), so the command-line
    tool can print it as one line.
    """
