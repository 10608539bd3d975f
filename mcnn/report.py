"""A self-contained HTML report: figures embedded as PNG data, tables, and the commands that made them."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

from mcnn.fsutil import atomic_write_text

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.ok { color: #0a7a2f; font-weight: 600; } .bad { color: #b00020; font-weight: 600; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
code, pre { background: #f6f6f6; padding: 0.1em 0.3em; border-radius: 3px; }
pre { padding: 0.6em; overflow-x: auto; } .note { color: #555; font-size: 0.9em; }
"""


class Report:
    """Builds an HTML page section by section."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str) -> None:
        """A section heading (``<h2>``, escaped)."""
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str, css: str = "") -> None:
        """A paragraph of plain text (escaped)."""
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def raw(self, markup: str) -> None:
        """Trusted HTML built by the caller."""
        self.parts.append(markup)

    def image(self, path: str | os.PathLike[str], alt: str) -> None:
        """Embed a PNG file (skipped with a note if it does not exist)."""
        p = Path(path)
        if not p.is_file():
            self.paragraph(f"(figure {p.name} was not produced)", "note")
            return
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        self.parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]],
              classes: Sequence[Sequence[str]] | None = None) -> None:
        """A table; ``classes[i][j]`` is an optional CSS class of cell (i, j)."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = []
        for i, row in enumerate(rows):
            cells = []
            for j, value in enumerate(row):
                css = classes[i][j] if classes and classes[i][j] else ""
                attr = f' class="{css}"' if css else ""
                cells.append(f"<td{attr}>{html.escape(str(value))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def code(self, text: str) -> None:
        """A block of commands or code, shown verbatim (escaped)."""
        self.parts.append(f"<pre><code>{html.escape(text)}</code></pre>")

    def render(self) -> str:
        """The whole page as HTML text (styles inline, no external resources)."""
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}"
                f"</title><style>{STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n"
                + "\n".join(self.parts) + "\n</body></html>\n")

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the rendered page to ``path`` atomically; returns the path."""
        return atomic_write_text(path, self.render())
