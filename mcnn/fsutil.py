"""File-system helpers: every output is written under a temporary name, then renamed; one writer
per output folder (:func:`folder_lock`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mcnn.errors import BusyError


def temporary_sibling(path: Path) -> Path:
    """A name next to ``path`` that a crashed run leaves visibly unfinished."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes,
                       check: Callable[[Path], None] | None = None) -> Path:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.

    ``check(tmp)`` is called on the complete file under its temporary name before the rename; an
    exception it raises leaves ``path`` as it was and the temporary file removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Text variant of :func:`atomic_write_bytes` (UTF-8, newlines kept as given)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def folder_lock(folder: str | os.PathLike[str], name: str = ".lock") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (the file ``folder/name``, created if needed) while the
    block runs; :class:`BusyError` at once, naming the holder's pid, if another process holds it.

    The lock is the kernel's (``flock``): it goes with the process, so a killed run leaves no
    stale lock behind; the file itself stays.
    """
    import fcntl

    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BusyError(f"{Path(folder)}: another run (pid {holder}) is writing this folder; wait for it to "
                            "finish or use another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
