"""Exception types of the dose-response stage."""

from __future__ import annotations

from mcnn.tables import TableError

#: A predictions or index CSV lacks a needed column or holds a malformed value. The message
#: names the file and the column (and the line for a bad value), so the command-line tool can
#: print it as one line. The same type as the shared CSV reader's error.
PredictionsError = TableError
