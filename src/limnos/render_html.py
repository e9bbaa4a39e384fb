"""HTML for notebooks: the pieces every ``_repr_html_`` of limnos is built from.

Jupyter shows an object by calling its ``_repr_html_``. A File, a query
``Result``, a datasource ``QueryResult`` and a ``Lineage`` each build theirs
from these helpers, so all of them look alike and every value goes through
one escaping path: :func:`cell` and :func:`text` pass each value through
``html.escape`` (quotes too), so a file name or metadata value such as
``<script>`` or ``" onmouseover=`` shows as text and never becomes markup.
Only values from these helpers, and SVG drawn by graphviz from escaped DOT,
reach the page.

The module imports nothing heavy: Pillow (thumbnails) and ``dot`` (SVG) are
used when present and skipped otherwise.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from typing import Any

#: the longest text a cell shows before it is cut with an ellipsis
MAX_CELL = 200
#: rows a table shows; the rest are counted below it
MAX_ROWS = 50
#: the edge of a thumbnail, in pixels
THUMB_PX = 64
#: images bigger than this are not opened for a thumbnail
MAX_THUMB_SOURCE = 20 * 1024 * 1024
#: how long ``dot`` may take to draw a lineage graph, in seconds
DOT_TIMEOUT = 20
_IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})

# Scoped by the limnos-repr class so the page's other outputs are untouched.
_STYLE = ("<style>.limnos-repr{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
          ".limnos-repr table{border-collapse:collapse;margin:2px 0 6px}"
          ".limnos-repr th,.limnos-repr td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}"
          ".limnos-repr th{background:rgba(127,127,127,.12)}"
          ".limnos-repr summary{cursor:pointer;font-weight:bold}"
          ".limnos-repr .limnos-muted{color:#888}</style>")


def text(value: Any, limit: int = MAX_CELL) -> str:
    """``value`` as escaped HTML text, cut to ``limit`` characters (None: an em dash)."""
    if value is None:
        return '<span class="limnos-muted">\u2014</span>'
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f'<span class="limnos-muted">{len(value):,} bytes</span>'
    if isinstance(value, dt.datetime):
        shown = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, (dict, list, tuple)):
        shown = json.dumps(value, default=str, ensure_ascii=False)
    else:
        shown = str(value)
    if len(shown) > limit:
        shown = shown[: limit - 1] + "\u2026"
    return html.escape(shown, quote=True)


def cell(value: Any) -> str:
    """A table cell holding ``value`` as escaped text."""
    return f"<td>{text(value)}</td>"


def raw_cell(markup: str) -> str:
    """A table cell holding ``markup`` already built by these helpers (a thumbnail, a link)."""
    return f"<td>{markup}</td>"


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], total: int | None = None) -> str:
    """A table: escaped ``columns`` as headers; ``rows`` of cells made by :func:`cell` or :func:`raw_cell`.

    ``total``: how many rows there are in all; a note says how many are not shown.
    """
    head = "".join(f"<th>{text(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        if i >= MAX_ROWS:
            break
        body.append("<tr>" + "".join(row) + "</tr>")
    note = ""
    if total is not None and total > len(body):
        note = f'<div class="limnos-muted">{total - len(body):,} more not shown</div>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of field names and escaped values."""
    rows = "".join(f"<tr><th>{text(k)}</th>{cell(v)}</tr>" for k, v in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def section(title: str, body: str, is_open: bool = True) -> str:
    """A collapsible section (``<details>``) with an escaped ``title`` over ``body``."""
    return f"<details{' open' if is_open else ''}><summary>{text(title)}</summary>{body}</details>"


def card(title: str, subtitle: str, *parts: str) -> str:
    """The outer box of one object's display: an escaped title and subtitle over ``parts``."""
    return (f'{_STYLE}<div class="limnos-repr"><div><b>{text(title)}</b> '
            f'<span class="limnos-muted">{text(subtitle)}</span></div>{"".join(parts)}</div>')


def muted(message: str) -> str:
    """A grey line of escaped text (an empty section, a note)."""
    return f'<div class="limnos-muted">{text(message)}</div>'


def looks_like_image(name: str) -> bool:
    """True when ``name``'s extension is one Pillow reads as an image."""
    return os.path.splitext(name)[1].lower() in _IMAGE_EXTENSIONS


def thumbnail(path: str, alt: str = "") -> str:
    """An ``<img>`` with a small PNG thumbnail of the image at ``path``, inline as a data: URI; '' if none.

    Nothing is drawn without Pillow, for a file bigger than :data:`MAX_THUMB_SOURCE`,
    or for bytes Pillow cannot read (a corrupt or hostile image, a decompression bomb):
    a display never raises.
    """
    try:
        from PIL import Image
    except ImportError:
        return ""
    try:
        if os.path.getsize(path) > MAX_THUMB_SOURCE:
            return ""
        with Image.open(path) as image:
            image.draft("RGB", (THUMB_PX, THUMB_PX))  # JPEG: decode at a reduced scale
            image.thumbnail((THUMB_PX, THUMB_PX))
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA")
            out = io.BytesIO()
            image.save(out, format="PNG")
    except Exception:  # any unreadable image (corrupt, hostile, a decompression bomb) just has no thumbnail
        return ""
    data = base64.b64encode(out.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{text(alt)}" title="{text(alt)}"/>'


def dot_svg(dot: str) -> str | None:
    """The SVG that graphviz's ``dot`` draws from ``dot``, or None when ``dot`` is not on PATH or fails.

    The XML prolog and DOCTYPE are dropped so the SVG can sit inside HTML.
    """
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-Tsvg"], input=dot.encode(), capture_output=True, timeout=DOT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    svg = done.stdout.decode("utf-8", "replace")
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else None


def mermaid(source: str) -> str:
    """A Mermaid diagram: its escaped source in a ``<pre class="mermaid">``, drawn by mermaid.js when the page can load it.

    Offline, or where scripts do not run, the source stays readable as text.
    """
    script = ('<script type="module">'
              'import mermaid from "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs";'
              'mermaid.initialize({startOnLoad:false,securityLevel:"strict"});'
              'await mermaid.run({querySelector:"pre.limnos-mermaid:not([data-processed])"});</script>')
    return f'<pre class="mermaid limnos-mermaid">{html.escape(source, quote=True)}</pre>{script}'


__all__ = ["card", "cell", "dot_svg", "fields", "looks_like_image", "mermaid", "muted", "raw_cell", "section", "table",
           "text", "thumbnail"]
