"""Listings, one row per item: files, step executions, datasources, datapoints, datasets and remotes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ...times import parse_timestamp
from .console import duration, params_text, printable, value_text, when, who
from .lines import file_cells

if TYPE_CHECKING:
    from limnos import File
    from limnos.steps.step import StepRecord


def files_table(files: Sequence[File], *, local: bool = False, meta_keys: Sequence[str] = (),
                title: str | None = None) -> Table:
    """``ls``, ``history``, ``query``: name, version, size, created, user, hash.

    Args:
        files: The files, one row each, in this order.
        local: Add a column telling whether the bytes are on this machine.
        meta_keys: Add one column per metadata key (empty where a file lacks it).
        title: A title above the table.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("version", justify="right")
    table.add_column("size", justify="right")
    table.add_column("created")
    table.add_column("user")
    table.add_column("hash", style="dim")
    if local:
        table.add_column("local", justify="center")
    for key in meta_keys:
        table.add_column(printable(key), overflow="fold")
    for f in files:
        cells: list[RenderableType] = [Text(c) for c in file_cells(f)]
        if local:
            cells.append(Text("✓", style="green") if f.is_local else Text("-", style="dim"))
        if meta_keys:
            meta = f.metadata
            cells += [Text(value_text(meta[k]) if k in meta else "") for k in meta_keys]
        table.add_row(*cells)
    return table


def steps_table(records: Sequence[StepRecord]) -> Table:
    """``limnos steps``: one row per execution, in the given order (oldest first)."""
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("started")
    table.add_column("function", style="bold", overflow="fold")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("user")
    table.add_column("key", style="dim")
    table.add_column("params / error", overflow="fold")
    for r in records:
        ok = r.status == "ok"
        table.add_row(when(r.started_at), Text(printable(r.function)),
                      Text(printable(r.status), style="green" if ok else "bold red"),
                      duration(r.duration), str(len(r.inputs)), str(len(r.outputs)),
                      Text(printable(who(r.user, r.host))), Text(printable(r.key[:12])),
                      Text(params_text(r.params, limit=100) if ok else printable(r.error or "-"), style="" if ok else "red"))
    return table


def datasources_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    """``limnos ds list``: the rows ``ds list --json`` prints (name, kind, root, datapoints, fields, scanned_at)."""
    table = Table(box=None, header_style="bold")
    for col in ("name", "kind", "root", "datapoints", "fields", "scanned"):
        table.add_column(col)
    for r in rows:
        fields = ", ".join(f"{k}:{v}" for k, v in r["fields"].items() if k not in ("path", "size"))
        table.add_row(Text(printable(r["name"])), Text(printable(r["kind"])), Text(printable(r["root"] or "(the whole lake)")),
                      str(r["datapoints"]), Text(printable(fields or "-")),
                      when(parse_timestamp(r["scanned_at"])) if r["scanned_at"] else "scanning")
    return table


def datapoints_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    """``limnos ds query``: one row per datapoint, one column per field of the first row (empty for None)."""
    table = Table(box=None, header_style="bold")
    names = list(rows[0]) if rows else []
    for col in names:
        table.add_column(printable(col), overflow="fold")
    for row in rows:
        table.add_row(*[Text(value_text(row[c])) if row[c] is not None else "" for c in names])
    return table


def datasets_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    """``limnos datasets``: name, datasource, query and the time it is pinned to."""
    table = Table(box=None, header_style="bold")
    for col in ("name", "datasource", "query", "pinned to"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*[Text(printable(v)) for v in (r["name"], r["datasource"], r["query"], r["as_of"] or "-")])
    return table


def remotes_lines(rows: Sequence[Mapping[str, Any]]) -> Group:
    """``limnos remote list``: ``* name<TAB>url<TAB>options``, the default remote starred.

    Args:
        rows: The rows ``remote list --json`` prints: name, url, options (masked) and default.
    """
    lines = []
    for row in rows:
        options = " ".join(f"{k}={v}" for k, v in row["options"].items())
        mark = "*" if row["default"] else " "
        lines.append(Text("\t".join(printable(part) for part in (f"{mark} {row['name']}", row["url"], options)).rstrip()))
    return Group(*lines)
