"""Errors raised while reading a dataset's download: one line naming the file and what was expected."""

from __future__ import annotations

from mcnn.errors import McnnError


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
