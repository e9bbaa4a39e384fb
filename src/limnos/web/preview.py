"""Previews of a file's bytes for ``limnos ui``: text, tables, JSON and images, and cached thumbnails.

Nothing here trusts the bytes: text is shown as text (the template escapes it),
tables are read with a row limit, and an image is never served as it is
stored: Pillow decodes it and writes a fresh PNG thumbnail (so an SVG or HTML
file named ``.png`` cannot run in the page). Thumbnails are cached under the
lake's state folder (``<state>/thumbnails/``), keyed by a hash of the content
hash and the size, so a second visit reads one small file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .views import is_image

if TYPE_CHECKING:
    from ..core.files import File
    from ..lake import Lake

#: bytes of text shown, rows of a table shown
TEXT_LIMIT = 64 * 1024
TABLE_ROWS = 20
#: the long side of a gallery thumbnail and of an image preview, in pixels
THUMB = 256
PREVIEW = 800
#: images bigger than this many pixels are not decoded (a decompression bomb)
MAX_PIXELS = 80_000_000


@dataclass
class Preview:
    """What the file page shows of a file's content.

    Attributes:
        kind: ``text``, ``json``, ``table``, ``image``, ``none`` (nothing to show) or ``error``.
        text: the text (for text and JSON), cut at :data:`TEXT_LIMIT`.
        columns, rows: a table's head.
        note: why nothing is shown, or that the text was cut.
    """

    kind: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def preview(file: File) -> Preview:
    """A preview of ``file`` chosen by its name's extension (and its bytes, for text)."""
    name = file.name.lower()
    ext = name.rsplit(".", 1)[-1] if "." in name.rsplit("/", 1)[-1] else ""
    try:
        if is_image(name):
            return Preview("image")
        if ext in ("csv", "tsv"):
            return _table_csv(file, "\t" if ext == "tsv" else ",")
        if ext == "parquet":
            return _table_parquet(file)
        if ext == "json":
            return _json(file)
        return _text(file)
    except Exception as exc:  # a preview never breaks the page: say what went wrong instead
        return Preview("error", note=f"no preview: {type(exc).__name__}: {exc}")


def _head_bytes(file: File, limit: int = TEXT_LIMIT) -> bytes:
    with file.open() as stream:
        data: bytes = stream.read(limit + 1)
    return data


def _text(file: File) -> Preview:
    data = _head_bytes(file)
    if b"\x00" in data[:4096]:
        return Preview("none", note="binary content; use the download link")
    cut = len(data) > TEXT_LIMIT
    text = data[:TEXT_LIMIT].decode("utf-8", errors="replace")
    return Preview("text", text=text, note=f"the first {TEXT_LIMIT // 1024} KiB" if cut else "")


def _json(file: File) -> Preview:
    data = _head_bytes(file, 4 * 1024 * 1024)
    try:
        text = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except ValueError:
        return _text(file)
    cut = len(text) > TEXT_LIMIT
    return Preview("json", text=text[:TEXT_LIMIT], note=f"the first {TEXT_LIMIT // 1024} KiB" if cut else "")


def _cells(frame: Any) -> tuple[list[str], list[list[str]]]:
    frame = frame.head(TABLE_ROWS)
    rows = [["" if _missing(v) else str(v) for v in row] for row in frame.itertuples(index=False)]
    return [str(c) for c in frame.columns], rows


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return value is None


def _table_csv(file: File, sep: str) -> Preview:
    # The standard csv module, not pandas: a preview shows cells as text, and the core install has no pandas.
    import csv
    import itertools

    with file.open() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=sep)
        columns = next(reader, [])
        rows = list(itertools.islice(reader, TABLE_ROWS))
        text.detach()  # the lake's stream is closed by its own with-block
    return Preview("table", columns=columns, rows=rows, note=f"the first {TABLE_ROWS} rows")


def _table_parquet(file: File) -> Preview:
    from ..errors import require_extra

    pq = require_extra("pyarrow.parquet", "pandas", purpose="a parquet preview")

    with file.open() as stream:
        pf = pq.ParquetFile(stream)
        total = pf.metadata.num_rows
        batch = next(pf.iter_batches(batch_size=TABLE_ROWS), None)
        frame = batch.to_pandas() if batch is not None else pf.schema_arrow.empty_table().to_pandas()
    columns, rows = _cells(frame)
    return Preview("table", columns=columns, rows=rows, note=f"the first {min(total, TABLE_ROWS)} of {total} rows")


# ------------------------------------------------------------- thumbnails
def thumbnail(lake: Lake, key: str, opener: Any, size: int = THUMB) -> bytes | None:
    """A PNG thumbnail of an image, at most ``size`` pixels on its long side; None if it is no image Pillow reads.

    ``key`` names the content (its hash, or an id for a reference file); ``opener()``
    returns a binary stream of it and is called only when the cache misses.
    """
    from blake3 import blake3

    digest = blake3(f"{key}:{size}".encode()).hexdigest()
    folder = os.path.join(lake.state_dir, "thumbnails", digest[:2])
    path = os.path.join(folder, digest + ".png")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    with opener() as stream:
        data = _render(stream, size)
    if data is None:
        return None
    try:  # written whole and renamed, so a concurrent reader never sees half a thumbnail
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError:  # a read-only state folder: serve it uncached
        pass
    return data


def _render(stream: IO[bytes], size: int) -> bytes | None:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(stream) as image:
            if image.width * image.height > MAX_PIXELS:
                return None
            image.thumbnail((size, size))
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA")
            out = io.BytesIO()
            image.save(out, "PNG", optimize=False)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def file_thumbnail(lake: Lake, file: File, size: int = PREVIEW) -> bytes | None:
    """A PNG of a lake file's image, cached (see :func:`thumbnail`)."""
    return thumbnail(lake, file.hash or file.id, file.open, size)
