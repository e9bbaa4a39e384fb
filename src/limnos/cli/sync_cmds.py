"""CLI commands for remotes and sharing: remote, push, pull, cache, lock, unlock, rm.

Registered on the main app by ``cli/main.py``; each command is a thin call
into the library, like the rest of the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from . import render
from .main import CliError, _Group, _lake, app, parse_value

remote_app = typer.Typer(cls=_Group, help="Add, list and remove remotes (stores to push to and pull from).",
                         no_args_is_help=True, epilog="Example: limnos remote add origin s3://bucket/lake")
cache_app = typer.Typer(cls=_Group, help="This machine's cache of a lake on a remote store.", no_args_is_help=True,
                        epilog="Example: limnos cache prune --max-size 10GB")
app.add_typer(remote_app, name="remote")
app.add_typer(cache_app, name="cache")


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["client_kwargs.endpoint_url=http://x", "anon=true"]`` -> nested, typed storage options."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise CliError(f"expected key=value for --option, got {pair!r}")
        *parents, leaf = key.strip().split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise CliError(f"--option {key}: {part} is already a plain value")
        target[leaf] = parse_value(value)
    return out


def _report(report: Any, as_json: bool, verb: str) -> None:
    if as_json:
        render.print_json(report.to_dict())
        return
    parts = [f"{verb} {report.transferred} objects ({render.size(report.bytes)})"]
    if report.skipped:
        parts.append(f"{report.skipped} already there")
    parts.append(f"{report.records} records files")
    render.message(", ".join(parts) + f" in {report.seconds:.2f} s")
    for line in report.renumbered:
        render.warning_line(f"imported as {line}")


@remote_app.command("add", epilog="Example: limnos remote add origin s3://bucket/lake --option client_kwargs.endpoint_url=http://127.0.0.1:9000")
def remote_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A short name, such as origin.")],
    url: Annotated[str, typer.Argument(help="Any fsspec URL or a folder: s3://bucket/lake, gs://..., /mnt/share/lake.")],
    option: Annotated[list[str] | None, typer.Option("--option", "-o", metavar="KEY=VALUE",
                                                        help="A storage option for fsspec (repeatable; dots nest).")] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default remote.")] = False,
) -> None:
    """Add (or replace) a remote. Credentials are best left to the environment or ~/.aws."""
    remote = _lake(ctx).remotes.add(name, url, default=default, **parse_options(option))
    render.message(f"added remote {remote.name} -> {remote.to_dict()['url']}")


@remote_app.command("list", epilog="Example: limnos remote list --json")
def remote_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List remotes, credentials masked."""
    remotes = _lake(ctx).remotes
    rows = [dict(r.to_dict(), default=r.name == remotes.default) for r in remotes.list()]
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.message("no remotes; add one with 'limnos remote add origin URL'")
        return
    for row in rows:
        options = " ".join(f"{k}={v}" for k, v in row["options"].items())
        mark = "*" if row["default"] else " "
        render.out_console().print(f"{mark} {row['name']}\t{row['url']}\t{options}".rstrip(), highlight=False)


@remote_app.command("remove", epilog="Example: limnos remote remove backup")
def remote_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The remote's name.")],
) -> None:
    """Forget a remote (its data stays where it is)."""
    _lake(ctx).remotes.remove(name)
    render.message(f"removed remote {name}")


@app.command(epilog="Example: limnos push  |  limnos push raw/ model.pkl --remote backup --jobs 32")
def push(
    ctx: typer.Context,
    refs: Annotated[list[str] | None, typer.Argument(metavar="[REF|PREFIX]...", help="What to push (default: everything).")] = None,
    remote: Annotated[str | None, typer.Option(help="Remote name (default: the default remote).")] = None,
    jobs: Annotated[int | None, typer.Option(help="Transfers in flight (default: 8 per CPU).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Upload the objects and records a remote lacks; safe to re-run after an interruption."""
    _report(_lake(ctx).push(refs or None, remote=remote, jobs=jobs), as_json, "pushed")


@app.command(epilog="Example: limnos pull  |  limnos pull raw/  |  limnos pull train.py  |  limnos pull --no-download")
def pull(
    ctx: typer.Context,
    refs: Annotated[list[str] | None, typer.Argument(metavar="[REF|PREFIX|SCRIPT.py|.]...",
                                                        help="What to download (default: the latest of everything).")] = None,
    remote: Annotated[str | None, typer.Option(help="Remote name (default: the default remote).")] = None,
    jobs: Annotated[int | None, typer.Option(help="Transfers in flight (default: 8 per CPU).")] = None,
    download: Annotated[bool, typer.Option("--download/--no-download",
                                           help="Download objects, or only import the catalog records.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import a remote's new files into the catalog, then download what you asked for.

    In a project, tracked paths, scripts named in limnos.lock's usage, folders and '.'
    pull what limnos.lock lists and put the working files back.
    """
    from .project_cmds import project_pull

    if refs and download and project_pull(ctx, refs, remote, jobs, as_json):
        return
    _report(_lake(ctx).pull(refs or None, remote=remote, jobs=jobs, download=download), as_json, "pulled")


@cache_app.command("size", epilog="Example: limnos cache size --json")
def cache_size(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """How many objects, and how many bytes, this machine keeps locally."""
    report = _lake(ctx).cache_size()
    if as_json:
        render.print_json(report.to_dict())
        return
    render.out_console().print(f"{report.objects} objects, {render.size(report.bytes)}", highlight=False)


@cache_app.command("prune", epilog="Example: limnos cache prune --max-size 10GB")
def cache_prune(
    ctx: typer.Context,
    max_size: Annotated[str, typer.Option("--max-size", help="Keep at most this much: 500MB, 10GB, 2GiB.")] = "10GB",
    keep_recent: Annotated[float, typer.Option(help="Never remove objects used in the last N seconds.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Remove least recently used cached objects (they download again when read)."""
    report = _lake(ctx).prune_cache(max_size, keep_recent=keep_recent)
    if as_json:
        render.print_json(report.to_dict())
        return
    render.message(f"removed {report.removed} objects ({render.size(report.removed_bytes)}); "
                   f"kept {report.kept_in_use} in use and {report.kept_recent} used recently")
    for note in report.notes:
        render.warning_line(note)


@app.command(epilog="Example: limnos lock models/final.pkl")
def lock(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
) -> None:
    """Protect a file: rm, cascades and gc leave it alone."""
    file = _lake(ctx).lock(ref)
    render.message(f"locked {file.ref}")


@app.command(epilog="Example: limnos unlock models/final.pkl")
def unlock(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
) -> None:
    """Remove a file's protection."""
    file = _lake(ctx).unlock(ref)
    render.message(f"unlocked {file.ref}")


@app.command(epilog="Example: limnos rm raw/bad.csv@2  |  limnos rm raw/bad.csv --cascade")
def rm(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@N or id.")],
    cascade: Annotated[bool, typer.Option("--cascade", help="Also delete every file made from it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the deleted files as JSON.")] = False,
) -> None:
    """Delete a file from the catalog (its bytes go at the next gc); locked files are refused."""
    deleted = _lake(ctx).rm(ref, cascade=cascade)
    if as_json:
        render.print_json([{"id": f.id, "name": f.name, "version": f.version} for f in deleted])
        return
    render.message(f"deleted {', '.join(f.ref for f in deleted)}; 'limnos gc' frees the space")
