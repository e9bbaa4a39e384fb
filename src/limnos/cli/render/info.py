"""``limnos info``: one file's fields, metadata, inputs, and the step or run that made it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from limnos.names import plural

from .console import argv_text, duration, params_text, printable, short_hash, size, type_name, value_text, when, who

if TYPE_CHECKING:
    from limnos import File
    from limnos.steps.step import StepRecord


def kv_table(rows: Iterable[tuple[str, Any]]) -> Table:
    """Two columns, keys in bold cyan; values that are not already drawings are shown as metadata text."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value if isinstance(value, (Text, Table)) else Text(value_text(value)))
    return table


def info_renderables(file: File) -> list[RenderableType]:
    """Every field of a file, its metadata, its inputs, and the step or run that made it."""
    out: list[RenderableType] = []
    fields = [("name", file.name), ("version", str(file.version)), ("id", file.id), ("kind", file.kind),
              ("hash", file.hash or "-"), ("size", size(file.size) + (f" ({file.size:,} bytes)" if file.size >= 1000 else "")),
              ("created", f"{when(file.created_at)}  ({file.created_at.isoformat()})"),
              ("user", file.user or "-"), ("local", "yes" if file.is_local else "no")]
    if file.uri:
        fields.append(("uri", file.uri))
    out.append(Panel(kv_table(fields), title=Text(printable(file.ref), style="bold"), title_align="left", expand=False))

    meta = file.metadata
    if meta:
        table = Table(title="metadata", box=box.SIMPLE_HEAD, title_justify="left")
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        table.add_column("type", style="dim")
        for key, value in meta.items():
            table.add_row(Text(printable(key)), Text(value_text(value)), type_name(value))
        out.append(table)
    else:
        out.append(Text("metadata: none", style="dim"))

    inputs = file.inputs
    removed = file.removed_inputs
    if inputs or removed:
        table = Table(title="inputs", box=box.SIMPLE_HEAD, title_justify="left")
        table.add_column("file", style="bold")
        table.add_column("id", style="dim")
        table.add_column("hash", style="dim")
        for f in inputs:
            table.add_row(Text(printable(f.ref)), Text(printable(f.id)), Text(printable(short_hash(f.hash))))
        for f in removed:
            table.add_row(Text.assemble(printable(f.ref), (" (removed)", "red")), Text(printable(f.id)),
                          Text(printable(short_hash(f.hash))))
        out.append(table)
    else:
        out.append(Text("inputs: none", style="dim"))

    record = file.step
    if record is not None:
        out.append(step_panel(record))
    run = file.run
    if run:
        out.append(Panel(kv_table(run_fields(run)), title="made by run", title_align="left", expand=False))
    return out


def run_fields(run: dict[str, Any]) -> list[tuple[str, Any]]:
    """The rows of the "made by run" panel: who ran what, where, with which code and limnos."""
    git = "-"
    if run.get("git_commit"):
        git = run["git_commit"] + (" (dirty)" if run.get("git_dirty") else "")
    rows: list[tuple[str, Any]] = [
        ("id", run.get("id") or "-"), ("name", run.get("name") or "-"),
        ("user", who(run.get("user"), run.get("host"))),
        ("started", when(run.get("started_at"))), ("argv", argv_text(run.get("argv"), limit=400)),
        ("cwd", run.get("cwd") or "-"), ("script", run.get("script") or "-"), ("git", git),
    ]
    if run.get("git_remote"):
        rows.append(("git remote", run["git_remote"]))
    if run.get("notebook"):
        rows.append(("notebook", run["notebook"]))
    rows += [("python", run.get("python") or "-"), ("limnos", run.get("limnos_version") or "-")]
    if run.get("config") is not None:
        rows.append(("config", run["config"]))
    if run.get("packages"):
        rows.append(("packages", f"{len(run['packages'])} recorded (see --json)"))
    return rows


def step_panel(record: StepRecord) -> Panel:
    """The "made by step" panel: the step that made a file, its code link, parameters and inputs."""
    rows: list[tuple[str, Any]] = [
        ("function", record.function), ("code", record.code_location or "-"),
        ("git", record.git_commit or "-"), ("params", params_text(record.params, limit=400)),
        ("ran", f"{when(record.started_at)} ({duration(record.duration)})"),
        ("by", who(record.user, record.host)), ("limnos", record.limnos_version or "-"),
        ("step", record.id), ("key", record.key),
    ]
    if record.version is not None:
        rows.insert(4, ("version", record.version))
    inputs = [f"{i.get('name')}@{i.get('version')}" + (f" (param {i['param']})" if i.get("param") else " (read in the step)")
              for i in record.inputs]
    rows.append(("inputs", ", ".join(inputs) if inputs else "none"))
    rows.append(("outputs", plural(len(record.outputs), "file")))
    return Panel(kv_table(rows), title="made by step", title_align="left", expand=False, border_style="magenta")
