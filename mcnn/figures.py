"""The one way figures are written: PNG bytes rendered in memory, then written atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from mcnn.fsutil import atomic_write_bytes


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` as a PNG at ``dpi`` dots per inch, atomically; returns the path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())
