"""The ``limnos`` command: a thin typer shell over the library.

Each command parses its arguments, calls one :class:`limnos.Lake` method and
prints the result: data (tables, JSON, bytes) on stdout, messages on stderr.
Any error the library raises on purpose becomes one line, ``error: ...``, and
exit code 1; ``LIMNOS_DEBUG=1`` shows the traceback instead.
"""

import datetime as dt
import enum
import json
import logging
import os
import re
import shutil
import sys
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

import limnos
from limnos.errors import LimnosError

from . import render

DEBUG_ENV = "LIMNOS_DEBUG"


class CliError(Exception):
    """A problem with the command line itself, found before calling the library."""


# ------------------------------------------------------------ key=value
_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?")


def parse_value(text: str) -> Any:
    """A command-line value to a typed one.

    ``42`` -> int, ``0.5``/``1e-3`` -> float, ``true``/``false`` -> bool,
    ``2024-01-02T03:04:05Z`` -> datetime (UTC when no offset is given),
    ``{...}``/``[...]`` -> JSON, ``"..."`` -> the quoted text; anything else
    stays text. Numbers with leading zeros (``007``, a zip code) stay text.
    """
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _DATETIME.fullmatch(text):
        try:
            value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError as exc:
            raise CliError(f"{text!r} looks like a datetime but is not one ({exc}); quote it as '\"{text}\"' for text") from None
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if text[:1] in ("{", "[") or (text[:1] == '"' and len(text) > 1 and text.endswith('"')):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CliError(f"{text!r} starts like JSON but is not valid JSON ({exc.args[0]})") from None
    return text


def parse_pairs(pairs: list[str] | None) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a key given twice keeps its last value."""
    out: dict = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise CliError(f"expected key=value, got {pair!r}")
        out[key] = parse_value(value)
    return out


# ------------------------------------------------------------ error shell
def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, LimnosError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, (LimnosError, CliError, ValueError, OSError, KeyError)):
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first} (set {DEBUG_ENV}=1 to see the traceback)"


class _Group(TyperGroup):
    """Turns exceptions into one ``error:`` line and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (``limnos cat x | head``): stop quietly.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            raise typer.Exit(141) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if _is_click_exception(exc) or os.environ.get(DEBUG_ENV) == "1":
                raise
            render.error_line(_describe(exc))
            raise typer.Exit(1) from None


def _is_click_exception(exc: BaseException) -> bool:
    return any(c.__module__.startswith(("typer._click", "click")) for c in type(exc).__mro__ if c is not Exception
               and c is not BaseException and c is not object)


class _LogHandler(logging.Handler):
    """Library warnings (such as a roll-forward on open) as ``warning:`` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        render.warning_line(record.getMessage())


app = typer.Typer(
    cls=_Group,
    name="limnos",
    help="limnos: turn any folder into a content-addressed data lake for data science.",
    epilog="Example: limnos init && limnos add data/ --name raw && limnos ls",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
meta_app = typer.Typer(cls=_Group, help="Set or remove metadata on a file.", no_args_is_help=True,
                       epilog="Example: limnos meta set raw/train.csv rows=1000 reviewed=true")
app.add_typer(meta_app, name="meta")


class LinkMode(str, enum.Enum):
    copy = "copy"
    reflink = "reflink"
    hardlink = "hardlink"
    symlink = "symlink"


class Format(str, enum.Enum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"
    json = "json"


def _version(value: bool) -> None:
    if value:
        print(f"limnos {limnos.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    lake: Annotated[str | None, typer.Option("--lake", envvar="LIMNOS_LAKE", metavar="PATH",
                                                help="The lake to use (default: the nearest .limnos/ above the cwd).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """limnos: turn any folder into a content-addressed data lake for data science."""
    ctx.obj = {"lake_path": lake, "lake": None}
    logger = logging.getLogger("limnos")
    handler = _LogHandler(logging.WARNING)
    logger.addHandler(handler)
    ctx.call_on_close(lambda: logger.removeHandler(handler))


def _lake(ctx: typer.Context) -> "limnos.Lake":
    """The lake chosen by --lake, $LIMNOS_LAKE or the cwd, opened once per command."""
    root = ctx.find_root()
    state = root.obj if isinstance(root.obj, dict) else {}
    if state.get("lake") is None:
        lake = limnos.open(state.get("lake_path"))
        state["lake"] = lake
        root.obj = state
        root.call_on_close(lake.close)
    return state["lake"]  # type: ignore[no-any-return]


# --------------------------------------------------------------- commands
@app.command(epilog="Example: limnos init  |  limnos init /data/lake --catalog postgresql://me@db/lake")
def init(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="Folder for the new lake (default: .limnos).")] = None,
    catalog: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the catalog (default: SQLite inside the lake).")] = None,
    link: Annotated[LinkMode, typer.Option(help="How working copies are made.")] = LinkMode.copy,
    project: Annotated[bool, typer.Option("--project", help=(
        "Start tracking data in this project: limnos.lock in PATH (default: the git root, else here) "
        "and a .limnos lake beside it if none is found."))] = False,
) -> None:
    """Create a new lake (a .limnos folder here by default), or with --project, a project's limnos.lock."""
    if project:
        from .project_cmds import init_project_cmd

        init_project_cmd(ctx, path, catalog, link.value)
        return
    target = path or (ctx.obj or {}).get("lake_path") or ".limnos"
    lake = limnos.init(target, catalog=catalog, link=link.value)
    where = lake.path
    lake.close()
    render.message(f"created a lake at {where}")
    if os.path.basename(where) != ".limnos" or os.path.dirname(where) != os.getcwd():
        render.message(f"use it with: limnos --lake {target} ls   (or export LIMNOS_LAKE={where})", "dim")


@app.command(epilog="Example: limnos add data/ --name raw --meta project=x")
def add(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="A local file or folder.")],
    name: Annotated[str | None, typer.Option(help="Name (or prefix, for a folder) in the lake; default: the path.")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", "-m", metavar="KEY=VALUE",
                                                      help="Metadata to set, typed (repeatable).")] = None,
    move: Annotated[bool, typer.Option("--move", help="Delete the local files once they are stored.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the added files as JSON.")] = False,
) -> None:
    """Add a file or a whole folder; changed content becomes a new version."""
    metadata = parse_pairs(meta)
    lake = _lake(ctx)
    started = dt.datetime.now(dt.timezone.utc)
    result = lake.add(path, name=name, metadata=metadata or None, move=move)
    files = list(result)
    if as_json:
        render.print_json([f.to_dict() for f in files])
        return
    fresh = [f for f in files if f.created_at >= started]
    if not result.from_folder:
        f = result.file
        state = "added" if fresh else "unchanged:"
        render.message(f"{state} {f.ref} ({render.size(f.size)}, {render.short_hash(f.hash)})")
    else:
        render.message(f"added {len(files)} files from {path}: {len(fresh)} new versions, "
                       f"{len(files) - len(fresh)} unchanged")


@app.command("ls", epilog="Example: limnos ls raw/ --json")
def ls(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="Only names under this prefix, such as raw/.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the latest version of every file (under a prefix)."""
    files = _lake(ctx).ls(prefix)
    if as_json:
        render.print_json([{**f.to_dict(), "local": f.is_local} for f in files])
        return
    if not files:
        render.message("no files" + (f" under {prefix!r}" if prefix else "") + "; add some with 'limnos add PATH'")
        return
    render.out_console().print(render.files_table(files, local=True))


@app.command(epilog="Example: limnos info raw/train.csv@2")
def info(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a file: its fields, metadata, inputs and the step or run that made it."""
    file = _lake(ctx).get(ref)
    if as_json:
        record = file.step
        data = {**file.to_dict(), "ref": file.ref, "local": file.is_local,
                "inputs": [{"id": f.id, "name": f.name, "version": f.version, "ref": f.ref} for f in file.inputs],
                "step": record.to_dict() if record is not None else None,
                "provenance": file.run}
        render.print_json(data)
        return
    render.print_all(render.out_console(), render.info_renderables(file))


@app.command(epilog="Example: limnos get raw/train.csv@2 ./train.csv")
def get(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
    dest: Annotated[str, typer.Argument(help="Destination file or folder.")] = ".",
    link: Annotated[LinkMode | None, typer.Option(help="How to make the copy (default: the lake's setting).")] = None,
) -> None:
    """Put a read-only working copy of a file on disk; prints its path."""
    path = _lake(ctx).checkout(ref, dest, link=link.value if link else None)  # type: ignore[arg-type]
    print(path)


@app.command(epilog="Example: limnos cat raw/train.csv | head")
def cat(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
) -> None:
    """Write a file's bytes to stdout."""
    file = _lake(ctx).get(ref)
    sys.stdout.flush()
    out = sys.stdout.buffer
    with file.open("rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    out.flush()


@app.command(epilog="Example: limnos history raw/train.csv --json")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A file name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every version of a name, oldest first."""
    files = _lake(ctx).history(name)
    if as_json:
        render.print_json([f.to_dict() for f in files])
        return
    render.out_console().print(render.files_table(files))


@meta_app.command("set", epilog="Example: limnos meta set raw/train.csv rows=1000 reviewed=true when=2024-01-02T03:04:05Z")
def meta_set(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE", help=(
        "Typed values: 42 int, 0.5 float, true/false bool, 2024-01-02T03:04:05Z datetime, "
        "{...} or [...] JSON, '\"42\"' forces text; anything else is text."))],
) -> None:
    """Set typed metadata on a file."""
    metadata = parse_pairs(pairs)
    file = _lake(ctx).set_metadata(ref, metadata)
    render.message(f"set {', '.join(metadata)} on {file.ref}")


@meta_app.command("unset", epilog="Example: limnos meta unset raw/train.csv reviewed")
def meta_unset(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
    keys: Annotated[list[str], typer.Argument(metavar="KEY", help="Keys to remove.")],
) -> None:
    """Remove metadata keys from a file (their past values stay in its history)."""
    file = _lake(ctx).unset_metadata(ref, keys)
    render.message(f"removed {', '.join(keys)} from {file.ref}")


@app.command(epilog="Example: limnos query project=x reviewed=true --latest --json")
def query(
    ctx: typer.Context,
    pairs: Annotated[list[str] | None, typer.Argument(metavar="KEY=VALUE", help="Metadata that must be equal (typed as in 'meta set').")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Only the latest version of each name.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find files whose metadata equals every KEY=VALUE."""
    filters = parse_pairs(pairs)
    result = _lake(ctx).query(filters, latest=latest)
    if as_json:
        render.print_json(result.to_dicts())
        return
    files = result.files()
    if not files:
        render.message("no file matches")
        return
    keys = sorted({k for f in files for k in f.metadata})
    render.out_console().print(render.files_table(files, meta_keys=keys))


@app.command(epilog="Example: limnos lineage reports/summary.csv --format mermaid")
def lineage(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
    down: Annotated[bool, typer.Option("--down", help="What was made from the file, instead of what it was made from.")] = False,
    depth: Annotated[int | None, typer.Option(min=0, help="Steps to walk (default: the whole graph).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text, dot (Graphviz), mermaid or json.")] = Format.text,
) -> None:
    """Draw where a file came from, or with --down, what was made from it."""
    lake = _lake(ctx)
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
    function: Annotated[str | None, typer.Option(help="Only this function (module.name or name).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N executions.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List @step executions (oldest first): function, status, duration, inputs and outputs."""
    records = _lake(ctx).steps(failed=True if failed else None, function=function, limit=limit)
    if as_json:
        render.print_json([r.to_dict() for r in records])
        return
    if not records:
        render.message("no failed step executions" if failed else "no step executions yet; decorate a function with @limnos.step")
        return
    render.out_console().print(render.steps_table(records))


@app.command(epilog="Example: limnos status data/ --name raw  |  limnos status --steps  |  limnos status  (a project's limnos.lock)")
def status(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="A local file or folder (default: the project's limnos.lock).")] = None,
    name: Annotated[str | None, typer.Option(help="Its name (or prefix) in the lake, as given to 'add'.")] = None,
    steps: Annotated[bool, typer.Option("--steps", help="List step outputs whose code or inputs changed since they were made.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare a local file or folder with the lake, or with --steps, find stale step outputs.

    With neither, in a project: tracked files that changed or are missing, and lake versions limnos.lock lacks.
    """
    if steps:
        if path is not None:
            raise CliError("give a PATH or --steps, not both")
        stale = _lake(ctx).stale()
        if as_json:
            render.print_json([s.to_dict() for s in stale])
        else:
            render.out_console().print(render.stale_renderable(stale))
        return
    if path is None:
        from .project_cmds import project_status  # the project's tracked files against its limnos.lock

        project_status(ctx, as_json)
        return
    st = _lake(ctx).status(path, name=name)
    if as_json:
        render.print_json(st.to_dict())
        return
    console = render.out_console()
    for label, names, style in (("modified", st.modified, "yellow"), ("new", st.new, "green"),
                                ("deleted", st.deleted, "red")):
        for n in names:
            console.print(Text.assemble((f"{label + ':':<10}", style), n), soft_wrap=True)
    summary = f"{len(st.unchanged)} unchanged"
    console.print(Text(("clean: " if st.clean else "") + summary, style="dim"), soft_wrap=True)


def _parse_subset(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise CliError(f"--subset takes a fraction such as 0.1 or a percentage such as 10%, not {text!r}") from None


@app.command(epilog="Example: limnos fsck --read-data --subset 10%")
def fsck(
    ctx: typer.Context,
    read_data: Annotated[bool, typer.Option("--read-data", help="Re-hash every object's bytes.")] = False,
    subset: Annotated[str | None, typer.Option(metavar="FRACTION", help="With --read-data, a random part: 0.1 or 10% (implies --read-data).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check that every file's object exists (and with --read-data, hashes right). Exit 1 on a problem."""
    fraction = _parse_subset(subset)
    report = _lake(ctx).fsck(read_data=read_data or fraction is not None, subset=fraction)
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.out_console().print(render.report_renderable(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command(epilog="Example: limnos gc  (a dry run), then: limnos gc --yes --grace-days 7")
def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted (the default).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete.")] = False,
    grace_days: Annotated[float, typer.Option(min=0, help="Keep unreferenced objects younger than this.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete objects no file refers to; a dry run unless --yes."""
    if dry_run and yes:
        raise CliError("--dry-run and --yes contradict each other; give one")
    report = _lake(ctx).gc(dry_run=not yes, grace=dt.timedelta(days=grace_days))
    if as_json:
        render.print_json(report.to_dict())
        return
    render.out_console().print(render.report_renderable(report))


@app.command(epilog="Example: limnos reindex --force")
def reindex(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Wipe a non-empty catalog and rebuild it.")] = False,
) -> None:
    """Rebuild the catalog from the records files in the store."""
    report = _lake(ctx).reindex(force=force)
    render.message(f"rebuilt the catalog from {len(report.rolled_forward)} commits: {report.files} files")
    for line in report.renumbered + report.notes:
        render.warning_line(line)


@app.command(epilog="Example: limnos demo")
def demo() -> None:
    """Build a sample lake in a temporary folder and tour limnos on it."""
    from .demo import run_demo

    run_demo(render.out_console())


# Commands that live in their own modules register themselves on ``app``.
from . import (
    ds_cmds,  # noqa: F401
    project_cmds,  # noqa: F401
    sync_cmds,  # noqa: F401
)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="limnos")


__all__ = ["app", "main", "parse_pairs", "parse_value"]
