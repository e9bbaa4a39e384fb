"""Listings that stream: one line per item as the items come, for outputs of any length.

``limnos ls`` on a lake of 100k files cannot build a rich table first (rich
spends most of a minute measuring its cells) nor hold the whole JSON text.
These functions print as they go, so the first line shows after the first
page of the catalog, and a reader such as ``head`` that closes the pipe
stops the command early:

* :func:`stream_files` draws a table (rich) on a terminal when the listing
  fits in one page, and otherwise plain tab-separated lines: the same cells
  as the table's, with every unprintable character escaped (a tab or a
  newline in a user's name too, so one file is always one line of cells);
* :func:`stream_json` prints the very text :func:`~.console.dumps` prints for
  the whole list (an indented JSON array), item by item.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .console import dumps, duration, params_text, printable, short_hash, size, value_text, when, who

if TYPE_CHECKING:
    from limnos.core.files import File
    from limnos.steps.step import StepRecord

T = TypeVar("T")

#: Items printed with one write: few enough that the first lines show at once, many enough that writes stay cheap.
BATCH = 1000
#: The most files drawn as a rich table on a terminal; a longer listing streams as lines.
TABLE_MAX = 1000


def file_cells(f: File, *, local: bool = False, is_local: bool | None = None) -> list[str]:
    """A file's cells, as :func:`~.tables.files_table` shows them: name, version, size, created, user, hash (, local).

    ``is_local``: whether the file is on this machine, when the caller looked it up for many files at once.
    """
    cells = [printable(f.name), str(f.version), size(f.size), when(f.created_at), printable(f.user or "-"),
             printable(short_hash(f.hash))]
    if local:
        cells.append("✓" if (f.is_local if is_local is None else is_local) else "-")
    return cells


def step_cells(r: StepRecord) -> list[str]:
    """A step execution's cells, as :func:`~.tables.steps_table` shows them: started, function, status,
    duration, inputs, outputs, user, key, and the parameters (or the error, for a failure)."""
    ok = r.status == "ok"
    return [when(r.started_at), printable(r.function), printable(r.status), duration(r.duration), str(len(r.inputs)),
            str(len(r.outputs)), printable(who(r.user, r.host)), printable(r.key[:12]),
            params_text(r.params, limit=100) if ok else printable(r.error or "-")]


def tsv_cell(value: Any) -> str:
    """One cell of a tab-separated line: ``-`` for None, else the value as text with tabs and newlines escaped."""
    return "-" if value is None else value_text(value)


def print_tsv(rows: Iterable[Iterable[Any]]) -> None:
    """Rows as tab-separated lines (cells through :func:`tsv_cell`), printed in batches as they come."""
    out = sys.stdout
    for batch in _batches(rows, BATCH):
        out.write("".join("\t".join(tsv_cell(c) for c in row) + "\n" for row in batch))
        out.flush()


def _batches(items: Iterable[T], n: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(itertools.islice(it, n)):
        yield batch


def stream_files(files: Iterable[File], table: Callable[[list[File]], None], *, local: bool = False,
                 empty: Callable[[], None] | None = None, fmt: str | None = None) -> None:
    """Print files with ``table`` on a terminal when there are at most :data:`TABLE_MAX`, else one line each as they come.

    Args:
        files: The files, in the order to print them (an iterator is read once, lazily).
        table: Draws a short listing on a terminal, such as ``show(files_table(files))``.
        local: Add whether the bytes are on this machine (``✓`` or ``-``) to the lines.
        empty: Called instead of printing anything when there are no files.
        fmt: ``"table"`` or ``"tsv"`` to choose (``--format``); None: a table on a terminal, for a short listing.
    """
    it = iter(files)
    first = list(it) if fmt == "table" else list(itertools.islice(it, TABLE_MAX + 1))
    if not first:
        if empty is not None:
            empty()
        return
    if fmt == "table" or (fmt is None and sys.stdout.isatty() and len(first) <= TABLE_MAX):
        table(first)
        return
    from ...core.files import local_flags  # here: a listing has opened a lake by now, so this costs nothing

    out = sys.stdout
    for batch in _batches(itertools.chain(first, it), BATCH):
        flags = local_flags(batch) if local else [None] * len(batch)
        out.write("".join("\t".join(file_cells(f, local=local, is_local=flag)) + "\n" for f, flag in zip(batch, flags,
                                                                                                         strict=True)))
        out.flush()


def stream_json(items: Iterable[Any]) -> None:
    """Print items as one indented JSON array, the same text as ``print_json(list(items))``, item by item."""
    out = sys.stdout
    opened = False
    for batch in _batches(items, BATCH):
        parts = ["  " + dumps(item).replace("\n", "\n  ") for item in batch]
        out.write(("[\n" if not opened else ",\n") + ",\n".join(parts))
        out.flush()
        opened = True
    out.write("\n]\n" if opened else "[]\n")
    out.flush()


__all__ = ["BATCH", "TABLE_MAX", "file_cells", "print_tsv", "step_cells", "stream_files", "stream_json", "tsv_cell"]
