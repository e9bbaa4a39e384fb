"""CLI commands for where files came from and whether they are current: lineage, steps, status.

``status`` compares three things, one per form: a local folder with the lake
(``status PATH``), step outputs with their code and inputs (``status --steps``),
and, without either, a project's tracked files with its limnos.lock.
"""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer

from . import render
from .app import CliError, FormatOption, JsonFlag, OutputFormat, Ref, app, open_lake, output_format
from .project_cmds import project_status


class Format(str, enum.Enum):
    """How ``limnos lineage`` prints the graph."""

    text = "text"
    dot = "dot"
    mermaid = "mermaid"
    json = "json"


@app.command(epilog="Example: limnos lineage reports/summary.csv --format mermaid")
def lineage(
    ctx: typer.Context,
    ref: Ref,
    down: Annotated[bool, typer.Option("--down", help="What was made from the file, instead of what it was made from.")] = False,
    depth: Annotated[int | None, typer.Option(min=0, metavar="N", help="Steps to walk (default: the whole graph).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text, dot (Graphviz), mermaid or json.")] = Format.text,
) -> None:
    """Draw where a file came from, or with --down, what was made from it."""
    lake = open_lake(ctx)
    graph = lake.lineage(ref, "down" if down else "up", depth)
    if fmt is Format.json:
        print(graph.to_json())
    elif fmt is Format.dot:
        sys.stdout.write(graph.to_dot())
    elif fmt is Format.mermaid:
        sys.stdout.write(graph.to_mermaid())
    else:
        render.print_all(render.out_console(), render.lineage_renderables(lake, graph, down=down))


@app.command(epilog="Example: limnos steps --failed  |  limnos steps --function clean --limit 20 --json")
def steps(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option("--failed", help="Only executions that raised.")] = False,
    function: Annotated[str | None, typer.Option(metavar="NAME", help="Only this function (module.name or name).")] = None,
    limit: Annotated[int | None, typer.Option(min=0, metavar="N", help="Only the newest N executions.")] = None,
    fmt: FormatOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List @step executions (oldest first): function, status, duration, inputs and outputs.

    Tab-separated lines hold started, function, status, duration, inputs, outputs, user, key and parameters (or error).
    """
    chosen = output_format(fmt, as_json)
    records = open_lake(ctx).steps(failed=True if failed else None, function=function, limit=limit) if limit != 0 else []
    if chosen is OutputFormat.json:
        render.print_json([r.to_dict() for r in records])
        return
    if not records:
        render.message("no failed step executions" if failed else "no step executions yet; decorate a function with @limnos.step")
        return
    if chosen is OutputFormat.tsv:
        render.print_tsv(render.step_cells(r) for r in records)
        return
    render.show(render.steps_table(records))


@app.command(epilog="Example: limnos status data/ --name raw  |  limnos status --steps  |  "
                    "limnos status  (a project's limnos.lock)  |  limnos status -q || echo changed")
def status(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="A local file or folder (default: the project's limnos.lock).")] = None,
    name: Annotated[str | None, typer.Option(help="Its name (or prefix) in the lake, as given to 'add'.")] = None,
    steps: Annotated[bool, typer.Option(
        "--steps", help="List step outputs whose code or inputs changed since they were made.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Compare a local file or folder with the lake, or with --steps, find stale step outputs.

    With neither, in a project: tracked files that changed or are missing, and lake versions limnos.lock lacks.

    Exit status: 0 when nothing changed, 1 when something did (as 'dvc status' and 'git diff --exit-code'),
    or on an error, which prints an 'error:' line. With -q nothing is printed: only the exit status tells.
    """
    quiet = render.verbosity() < 0 and not as_json
    if steps:
        if path is not None:
            raise CliError("give a PATH or --steps, not both")
        stale = open_lake(ctx).stale()
        if as_json:
            render.print_json([s.to_dict() for s in stale])
        elif not quiet:
            render.show(render.stale_renderable(stale))
        clean = not stale
    elif path is None:
        clean = project_status(ctx, as_json, quiet=quiet)
    else:
        st = open_lake(ctx).status(path, name=name)
        if as_json:
            render.print_json(st.to_dict())
        elif not quiet:
            render.show(render.status_renderable(st), soft_wrap=True)
        clean = st.clean
    if not clean:
        raise typer.Exit(1)
