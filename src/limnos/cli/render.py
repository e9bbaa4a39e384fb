"""Drawing for the CLI: consoles, JSON, file tables, ``info`` and lineage pictures.

Everything here only formats what the library returns; nothing decides
anything about the lake. Human output goes through rich; when stdout is not
a terminal, tables get a wide fixed width so piped output is never cut.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.filesize import decimal
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:
    from limnos import File, Lake
    from limnos.ops.lineage import Lineage

PIPE_WIDTH = 200  # columns used when stdout is not a terminal: wide enough that nothing is cut
MAX_BOX_ITEMS = 12  # names listed in one lineage box before "... and N more"


# ----------------------------------------------------------------- consoles
def out_console() -> Console:
    """A console on stdout (data)."""
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def err_console() -> Console:
    """A console on stderr (messages)."""
    return Console(stderr=True, highlight=False)


def message(text: str, style: str | None = None) -> None:
    """One line on stderr, never wrapped and never read as rich markup."""
    err_console().print(Text(text, style=style or ""), soft_wrap=True)


def error_line(text: str) -> None:
    err_console().print(Text.assemble(("error: ", "bold red"), text.replace("\n", " ")), soft_wrap=True)


def warning_line(text: str) -> None:
    err_console().print(Text.assemble(("warning: ", "yellow"), text.replace("\n", " ")), soft_wrap=True)


# --------------------------------------------------------------------- JSON
def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


def print_json(data: Any) -> None:
    """JSON on stdout, datetimes as ISO strings."""
    print(dumps(data), flush=True)


# ------------------------------------------------------------------ formats
def size(n: int | None) -> str:
    return "-" if n is None or n < 0 else decimal(n)


def short_hash(digest: str | None) -> str:
    return digest[:12] if digest else "-"


def when(value: Any) -> str:
    """A datetime in the local time zone, to the second."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return "-" if value is None else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def value_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_default)
    return str(value)


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, (dict, list)):
        return "json"
    return type(value).__name__


def argv_text(argv: Any, limit: int = 80) -> str:
    if not argv:
        return "-"
    parts = [os.path.basename(str(argv[0]))] + [str(a) for a in argv[1:]]
    text = shlex.join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------- tables
def files_table(files: Sequence[File], *, local: bool = False, meta_keys: Sequence[str] = (),
                title: str | None = None) -> Table:
    """name, version, size, created, user, hash (and local, and metadata columns)."""
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
        table.add_column(key, overflow="fold")
    for f in files:
        cells: list[RenderableType] = [Text(f.name), str(f.version), size(f.size), when(f.created_at),
                                       Text(f.user or "-"), short_hash(f.hash)]
        if local:
            cells.append(Text("✓", style="green") if f.is_local else Text("-", style="dim"))
        if meta_keys:
            meta = f.metadata
            cells += [Text(value_text(meta[k]) if k in meta else "") for k in meta_keys]
        table.add_row(*cells)
    return table


def _kv_table(rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value if isinstance(value, (Text, Table)) else Text(value_text(value)))
    return table


def info_renderables(file: File) -> list[RenderableType]:
    """Every field of a file, its metadata, its inputs and the run that made it."""
    out: list[RenderableType] = []
    fields = [("name", file.name), ("version", str(file.version)), ("id", file.id), ("kind", file.kind),
              ("hash", file.hash or "-"), ("size", size(file.size) + (f" ({file.size:,} bytes)" if file.size >= 1000 else "")),
              ("created", f"{when(file.created_at)}  ({file.created_at.isoformat()})"),
              ("user", file.user or "-"), ("local", "yes" if file.is_local else "no")]
    if file.uri:
        fields.append(("uri", file.uri))
    out.append(Panel(_kv_table(fields), title=Text(file.ref, style="bold"), title_align="left", expand=False))

    meta = file.metadata
    if meta:
        table = Table(title="metadata", box=box.SIMPLE_HEAD, title_justify="left")
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        table.add_column("type", style="dim")
        for key, value in meta.items():
            table.add_row(Text(key), Text(value_text(value)), type_name(value))
        out.append(table)
    else:
        out.append(Text("metadata: none", style="dim"))

    inputs = file.inputs
    if inputs:
        table = Table(title="inputs", box=box.SIMPLE_HEAD, title_justify="left")
        table.add_column("file", style="bold")
        table.add_column("id", style="dim")
        table.add_column("hash", style="dim")
        for f in inputs:
            table.add_row(Text(f.ref), f.id, short_hash(f.hash))
        out.append(table)
    else:
        out.append(Text("inputs: none", style="dim"))

    record = file.step
    if record is not None:
        out.append(step_panel(record, file._lake))
    run = file.run
    if run:
        out.append(Panel(_kv_table(run_fields(run)), title="made by run", title_align="left", expand=False))
    return out


def run_fields(run: dict[str, Any]) -> list[tuple[str, Any]]:
    git = "-"
    if run.get("git_commit"):
        git = run["git_commit"] + (" (dirty)" if run.get("git_dirty") else "")
    rows: list[tuple[str, Any]] = [
        ("id", run.get("id") or "-"), ("name", run.get("name") or "-"),
        ("user", f"{run.get('user') or '?'}@{run.get('host') or '?'}"),
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


# ------------------------------------------------------------------ lineage
def _file_lines(node: dict[str, Any], detail: bool = False) -> Text:
    text = Text(f"{node['name']}@{node['version']}", style="bold")
    if detail:
        text.append(f"\nid   {node['id']}", style="dim")
        text.append(f"\nsize {size(node.get('size'))}")
        text.append(f"\nhash {short_hash(node.get('hash'))}")
        if node.get("user"):
            text.append(f"\nby   {node['user']}")
    return text


def _files_box(graph: Lineage, keys: Sequence[str], title: str, detail: bool = False) -> Panel:
    parts: list[Text] = []
    for key in keys[:MAX_BOX_ITEMS]:
        parts.append(_file_lines(graph.nodes[key], detail))
    if len(keys) > MAX_BOX_ITEMS:
        parts.append(Text(f"… and {len(keys) - MAX_BOX_ITEMS} more", style="dim"))
    if not parts:
        parts.append(Text("(none)", style="dim"))
    body = Text("\n").join(parts) if not detail else Text("\n\n").join(parts)
    return Panel(body, title=title, title_align="left", expand=False, border_style="cyan")


def _run_box(run: dict[str, Any] | None, title: str) -> Panel:
    if not run:
        return Panel(Text("(no run recorded)", style="dim"), title=title, title_align="left", expand=False)
    text = Text(f"run {run['name']}" if run.get("name") else "process", style="bold magenta")
    text.append(f"\n{run.get('user') or '?'}@{run.get('host') or '?'}")
    text.append(f"\nstarted {when(run.get('started_at'))}")
    if "argv" in run:
        text.append(f"\n$ {argv_text(run.get('argv'), limit=60)}")
    commit = run.get("git_commit")
    if commit:
        text.append(f"\ngit {commit[:10]}")
        if run.get("git_dirty"):
            text.append(" (dirty)", style="yellow")
    else:
        text.append("\ngit -", style="dim")
    text.append(f"\nlimnos {run.get('limnos_version') or '?'}", style="dim")
    text.append(f"\nrun {run.get('id', '')}", style="dim")
    return Panel(text, title=title, title_align="left", expand=False, border_style="magenta")


def _arrow_row(*cells: RenderableType) -> Table:
    """Boxes side by side, joined by arrows at mid height."""
    row: list[RenderableType] = []
    for i, cell in enumerate(cells):
        if i:
            row.append(Text("──▶", style="bold"))
        row.append(cell)
    grid = Table.grid(padding=(0, 1))
    for i in range(len(row)):
        grid.add_column(vertical="middle", no_wrap=(i % 2 == 1))
    grid.add_row(*row)
    return grid


def _run_info(lake: Lake, graph: Lineage, run_key: str) -> dict[str, Any]:
    """The full run row (with argv) through one of the files it made, else the graph's summary."""
    node = dict(graph.nodes.get(run_key, {}))
    for child in graph.children(run_key):
        if child.startswith("f:"):
            run = lake.get(graph.nodes[child]["id"]).run
            if run:
                return {**node, **run}
    return node


def _levels(graph: Lineage, up: bool) -> int:
    """How many file -> run -> file steps the graph spans from its root."""
    step = graph.parents if up else graph.children
    depth, frontier, seen = 0, [graph.root], {graph.root}
    while frontier:
        nxt = []
        for key in frontier:
            for run in step(key):
                for other in (step(run) if not run.startswith("f:") else [run]):
                    if other.startswith("f:") and other not in seen:
                        seen.add(other)
                        nxt.append(other)
        if nxt:
            depth += 1
        frontier = nxt
    return depth


def lineage_tree(graph: Lineage, up: bool) -> Tree:
    step = graph.parents if up else graph.children
    label = "upstream" if up else "downstream"
    root_node = graph.nodes[graph.root]
    tree = Tree(Text.assemble((f"lineage ({label}) of ", "dim"), (f"{root_node['name']}@{root_node['version']}", "bold")))
    shown: set[str] = set()

    def label_of(key: str) -> Text:
        node = graph.nodes[key]
        if node["type"] == "file":
            return Text(f"{node['name']}@{node['version']}", style="bold cyan")
        who = f"{node.get('user') or '?'}@{node.get('host') or '?'}"
        if node["type"] == "step":
            return Text.assemble(("ƒ ", "magenta"), (f"step {node['function']}", "magenta"),
                                 (f"  {who}, {when(node.get('started_at'))}", "dim"))
        name = node.get("label") or "run"
        if name.startswith("/"):  # an argv: show the program's base name
            head, _, rest = name.partition(" ")
            name = f"{os.path.basename(head)} {rest}".strip()
        return Text.assemble(("⚙ ", "magenta"), (name, "magenta"),
                             (f"  {who}, {when(node.get('started_at'))}", "dim"))

    def grow(branch: Tree, key: str, path: frozenset[str]) -> None:
        for other in step(key):
            if other in path:
                continue
            sub = branch.add(label_of(other))
            if other in shown and graph.nodes[other]["type"] == "file" and step(other):
                sub.label = Text.assemble(label_of(other), (" (see above)", "dim"))
                continue
            shown.add(other)
            grow(sub, other, path | {other})

    grow(tree, graph.root, frozenset({graph.root}))
    return tree


def _maker_box(lake: Lake, graph: Lineage, key: str, title: str) -> Panel:
    if key.startswith("s:"):
        return step_box(graph.nodes[key], title)
    return _run_box(_run_info(lake, graph, key), title)


def _code_lines(graph: Lineage, keys: Sequence[str]) -> list[RenderableType]:
    """Below the boxes, radops-style: each step's full code link and limnos version."""
    out: list[RenderableType] = []
    for key in keys:
        node = graph.nodes[key]
        if node["type"] != "step":
            continue
        link = node.get("permalink") or (f"{node['source_file']}:{node.get('source_line')}" if node.get("source_file") else None)
        text = Text.assemble(("step code: ", "bold"), (link or "(no source recorded)", "cyan" if link else "dim"))
        if not node.get("permalink") and node.get("git_commit"):
            text.append(f"  (git {node['git_commit'][:10]}; no permalink: not a GitHub/GitLab remote or not committed as run)",
                        style="dim")
        text.append(f"\nlimnos version: {node.get('limnos_version') or '?'}", style="dim")
        out.append(text)
    return out


def lineage_renderables(lake: Lake, graph: Lineage, down: bool = False) -> list[RenderableType]:
    """radops-style boxes: inputs -> step or run -> output (or file -> step/run -> outputs with ``down``)."""
    root = graph.root
    out: list[RenderableType] = []
    shown: list[str] = []
    if not down:
        makers = [k for k in graph.parents(root) if not k.startswith("f:")]
        direct = [k for k in graph.parents(root) if k.startswith("f:")]
        for key in makers:
            inputs = [k for k in graph.parents(key) if k.startswith("f:")]
            out.append(_arrow_row(_files_box(graph, inputs, "input files"),
                                  _maker_box(lake, graph, key, "created by"),
                                  _files_box(graph, [root], "output", detail=True)))
            shown.append(key)
        if not makers:
            out.append(_arrow_row(_files_box(graph, direct, "input files"), _run_box(None, "created by"),
                                  _files_box(graph, [root], "output", detail=True)))
    else:
        makers = [k for k in graph.children(root) if not k.startswith("f:")]
        direct = [k for k in graph.children(root) if k.startswith("f:")]
        for key in makers:
            outputs = [k for k in graph.children(key) if k.startswith("f:")]
            out.append(_arrow_row(_files_box(graph, [root], "file", detail=True),
                                  _maker_box(lake, graph, key, "used by"),
                                  _files_box(graph, outputs, "outputs")))
            shown.append(key)
        if direct:
            out.append(_arrow_row(_files_box(graph, [root], "file", detail=True), _run_box(None, "used by"),
                                  _files_box(graph, direct, "outputs")))
        if not makers and not direct:
            node = graph.nodes[root]
            out.append(_files_box(graph, [root], "file", detail=True))
            out.append(Text(f"no file in the lake was made from {node['name']}@{node['version']}", style="dim"))
    out.extend(_code_lines(graph, shown))
    if _levels(graph, up=not down) > 1:
        out.append(Text(""))
        out.append(lineage_tree(graph, up=not down))
    return out


# -------------------------------------------------------------------- steps
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def params_text(params: Any, limit: int = 60) -> str:
    """``a=1, files=[raw/a.csv@1]``: a step's recorded parameters, short."""
    def show(v: Any) -> str:
        if isinstance(v, dict) and "$file" in v:
            return str(v["$file"])
        if isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
        return json.dumps(v, default=_json_default)

    if not isinstance(params, dict) or not params:
        return "-"
    text = ", ".join(f"{k}={show(v)}" for k, v in params.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def step_box(node: dict[str, Any], title: str) -> Panel:
    """A step execution (a lineage node or a StepRecord's dict): function, who, when, code, git."""
    text = Text(f"step {node.get('function')}", style="bold magenta")
    if node.get("status") == "failed":
        text.append("  FAILED", style="bold red")
    text.append(f"\n{node.get('user') or '?'}@{node.get('host') or '?'}")
    text.append(f"\nran {when(node.get('started_at'))} ({duration(node.get('duration'))})")
    if node.get("source_file"):
        text.append(f"\ncode {os.path.basename(node['source_file'])}:{node.get('source_line') or '?'}")
    commit = node.get("git_commit")
    text.append(f"\ngit {commit[:10]}" if commit else "\ngit -", style=None if commit else "dim")
    text.append(f"\nparams {params_text(node.get('params'), 50)}")
    if node.get("version") is not None:
        text.append(f"\nversion {node['version']}")
    text.append(f"\nlimnos {node.get('limnos_version') or '?'}", style="dim")
    text.append(f"\nstep {node.get('id', '')}", style="dim")
    return Panel(text, title=title, title_align="left", expand=False, border_style="magenta")


def steps_table(records: Sequence[Any]) -> Table:
    """``limnos steps``: one row per execution, oldest first."""
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
        table.add_row(when(r.started_at), Text(r.function), Text(r.status, style="green" if ok else "bold red"),
                      duration(r.duration), str(len(r.inputs)), str(len(r.outputs)),
                      Text(f"{r.user or '?'}@{r.host or '?'}"), r.key[:12],
                      Text(params_text(r.params, limit=100) if ok else (r.error or "-"), style="" if ok else "red"))
    return table


def step_panel(record: Any, lake: Lake) -> Panel:
    """``limnos info``: the step that made a file, its code link, parameters and inputs."""
    rows: list[tuple[str, Any]] = [
        ("function", record.function), ("code", record.code_location or "-"),
        ("git", record.git_commit or "-"), ("params", params_text(record.params, limit=400)),
        ("ran", f"{when(record.started_at)} ({duration(record.duration)})"),
        ("by", f"{record.user or '?'}@{record.host or '?'}"), ("limnos", record.limnos_version or "-"),
        ("step", record.id), ("key", record.key),
    ]
    if record.version is not None:
        rows.insert(4, ("version", record.version))
    inputs = [f"{i['name']}@{i['version']}" + (f" (param {i['param']})" if i.get("param") else " (read in the step)")
              for i in record.inputs]
    rows.append(("inputs", ", ".join(inputs) if inputs else "none"))
    rows.append(("outputs", f"{len(record.outputs)} files"))
    return Panel(_kv_table(rows), title="made by step", title_align="left", expand=False, border_style="magenta")


def stale_renderable(stale: Sequence[Any]) -> Group:
    """``limnos status --steps``."""
    parts: list[RenderableType] = []
    for item in stale:
        parts.append(Text.assemble(("stale:    ", "yellow"), (item.file.ref, "bold"), (f"  ({item.step.function})", "dim")))
        for reason in item.reasons:
            parts.append(Text(f"          {reason}", style="yellow"))
    if stale:
        parts.append(Text(f"{len(stale)} step outputs are stale; call their steps again to refresh them", style="dim"))
    else:
        parts.append(Text("clean: every step output is up to date with its code and inputs", style="dim"))
    return Group(*parts)


# ------------------------------------------------------------------ reports
def _hash_list(title: str, digests: Sequence[str], style: str, limit: int = 20) -> Text:
    text = Text(f"{title} ({len(digests)}):", style=f"bold {style}")
    for digest in digests[:limit]:
        text.append(f"\n  {digest}", style=style)
    if len(digests) > limit:
        text.append(f"\n  … and {len(digests) - limit} more (see --json)", style="dim")
    return text


def report_renderable(report: Any) -> Group:
    """An fsck or gc report from :mod:`limnos.ops.fsck` or :mod:`limnos.ops.gc`."""
    parts: list[RenderableType] = []
    if report.action == "fsck":
        line = f"checked {report.files} files and {report.objects} objects"
        if report.bytes:
            line += f", re-hashed {size(report.bytes)}"
        parts.append(Text(line))
        if report.missing:
            parts.append(_hash_list("missing objects", report.missing, "red"))
        if report.corrupt:
            parts.append(_hash_list("corrupt objects (bytes do not match their hash)", report.corrupt, "red"))
        if report.orphans:
            parts.append(Text(f"{len(report.orphans)} unreferenced objects; 'limnos gc' removes them", style="dim"))
    else:
        verb = "would delete" if report.dry_run else "deleted"
        parts.append(Text(f"{verb} {len(report.deleted)} unreferenced objects ({size(report.bytes)}) "
                          f"of {report.objects} in the store"))
        if report.deleted:
            parts.append(_hash_list("objects", report.deleted, "yellow" if report.dry_run else "dim"))
    for note in report.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    if report.action == "fsck":
        parts.append(Text("ok", style="bold green") if report.ok else Text("problems found", style="bold red"))
    elif report.dry_run and report.deleted:
        parts.append(Text("this was a dry run; run 'limnos gc --yes' to delete them", style="dim"))
    return Group(*parts)


def print_all(console: Console, renderables: Iterable[RenderableType]) -> None:
    console.print(Group(*renderables))
