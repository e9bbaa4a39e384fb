"""CLI commands for sharing a lake: ``remote add/list/remove``, push, pull, ``cache size/prune``.

A remote is any fsspec store (or folder) other lakes push to and pull from;
the cache is what a lake on a remote store keeps on this machine. In a project,
``pull`` of tracked paths, scripts, folders or ``.`` goes through limnos.lock
(see :mod:`.project_cmds`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from limnos.names import plural

from . import render
from .app import FormatOption, JsonFlag, OutputFormat, app, open_lake, output_format, parse_options, sub_app
from .completion import complete_remote
from .project_cmds import project_pull, share_remote

remote_app = sub_app("Add, list and remove remotes (stores to push to and pull from).",
                     "Example: limnos remote add origin s3://bucket/lake")
cache_app = sub_app("This machine's cache of a lake on a remote store.", "Example: limnos cache prune --max-size 10GB")
app.add_typer(remote_app, name="remote")
app.add_typer(cache_app, name="cache")

Remote = Annotated[str | None, typer.Option(metavar="NAME", help="Remote name (default: the default remote).",
                                            autocompletion=complete_remote)]
Jobs = Annotated[int | None, typer.Option(metavar="N", help="Transfers in flight (default: 8 per CPU).")]
ReportJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


@remote_app.command("add", epilog="Example: limnos remote add origin s3://bucket/lake "
                                  "--option client_kwargs.endpoint_url=http://127.0.0.1:9000")
def remote_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A short name, such as origin.")],
    url: Annotated[str, typer.Argument(help="Any fsspec URL or a folder: s3://bucket/lake, gs://..., /mnt/share/lake.")],
    option: Annotated[list[str] | None, typer.Option("--option", "-o", metavar="KEY=VALUE",
                                                        help="A storage option for fsspec (repeatable; dots nest).")] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default remote.")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help=(
        "Check that the remote is reachable and writable first (a probe write).")) ] = True,
    project: Annotated[bool, typer.Option("--project/--no-project", help=(
        "In a project, name the default remote in limnos.lock (URL, endpoint, region, profile; never "
        "credentials), so clones use it with no 'remote add'."))] = True,
) -> None:
    """Add (or replace) a remote, after checking it is reachable and writable.

    Credentials are best left to the environment or ~/.aws. In a project (a
    limnos.lock here or above), the default remote is also written to
    limnos.lock's settings, without credentials, for every clone.
    """
    lake = open_lake(ctx)
    options = parse_options(option)
    remote = lake.remotes.add(name, url, default=default, check=check, **options)
    render.message(f"added remote {remote.name} -> {remote.to_dict()['url']}")
    if project and lake.remotes.default == name:
        share_remote(ctx, lake, url, options)


@remote_app.command("list", epilog="Example: limnos remote list --json")
def remote_list(ctx: typer.Context, fmt: FormatOption = None, as_json: JsonFlag = False) -> None:
    """List remotes, credentials masked.

    Tab-separated lines hold name, URL, whether it is the default (* or -) and the storage options (as JSON).
    """
    chosen = output_format(fmt, as_json)
    remotes = open_lake(ctx).remotes
    rows = [dict(r.to_dict(), default=r.name == remotes.default) for r in remotes.list()]
    if chosen is OutputFormat.json:
        render.print_json(rows)
        return
    if not rows:
        render.message("no remotes; add one with 'limnos remote add origin URL'")
        return
    if chosen is OutputFormat.tsv:
        render.print_tsv([r["name"], r["url"], "*" if r["default"] else "-", r["options"]] for r in rows)
        return
    render.show(render.remotes_lines(rows))


@remote_app.command("remove", epilog="Example: limnos remote remove backup")
def remote_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The remote's name.", autocompletion=complete_remote)],
) -> None:
    """Forget a remote (its data stays where it is)."""
    open_lake(ctx).remotes.remove(name)
    render.message(f"removed remote {name}")


@app.command(epilog="Example: limnos push  |  limnos push raw/ model.pkl --remote backup --jobs 32")
def push(
    ctx: typer.Context,
    refs: Annotated[list[str] | None, typer.Argument(
        metavar="[REF|PREFIX]...", help="What to push (default: everything).")] = None,
    remote: Remote = None,
    jobs: Jobs = None,
    as_json: ReportJson = False,
) -> None:
    """Upload the objects and records a remote lacks; safe to re-run after an interruption."""
    report = open_lake(ctx).push(refs or None, remote=remote, jobs=jobs)
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.transfer_report(report, "pushed")


@app.command(epilog="Example: limnos pull  |  limnos pull raw/  |  limnos pull train.py  |  limnos pull --no-download")
def pull(
    ctx: typer.Context,
    refs: Annotated[list[str] | None, typer.Argument(metavar="[REF|PREFIX|SCRIPT.py|.]...",
                                                        help="What to download (default: the latest of everything).")] = None,
    remote: Remote = None,
    jobs: Jobs = None,
    download: Annotated[bool, typer.Option("--download/--no-download",
                                           help="Download objects, or only import the catalog records.")] = True,
    as_json: ReportJson = False,
) -> None:
    """Import a remote's new files into the catalog, then download what you asked for.

    In a project, tracked paths, scripts named in limnos.lock's usage, folders and '.'
    pull what limnos.lock lists and put the working files back.
    """
    if refs and download and project_pull(ctx, refs, remote, jobs, as_json):
        return
    report = open_lake(ctx).pull(refs or None, remote=remote, jobs=jobs, download=download)
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.transfer_report(report, "pulled")


@cache_app.command("size", epilog="Example: limnos cache size --json")
def cache_size(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """How many objects, and how many bytes, this machine keeps locally."""
    report = open_lake(ctx).cache_size()
    if as_json:
        render.print_json(report.to_dict())
        return
    packs = f" and {plural(report.packs, 'pack')}" if report.packs else ""
    render.show(f"{plural(report.objects, 'object')}{packs}, {render.size(report.bytes)}")


@cache_app.command("prune", epilog="Example: limnos cache prune --max-size 10GB")
def cache_prune(
    ctx: typer.Context,
    max_size: Annotated[str, typer.Option("--max-size", metavar="SIZE",
                                          help="Keep at most this much: 500MB, 10GB, 2GiB.")] = "10GB",
    keep_recent: Annotated[float, typer.Option(metavar="N", help="Never remove objects used in the last N seconds.")] = 60.0,
    as_json: JsonFlag = False,
) -> None:
    """Remove least recently used cached objects (they download again when read)."""
    report = open_lake(ctx).prune_cache(max_size, keep_recent=keep_recent)
    if as_json:
        render.print_json(report.to_dict())
        return
    packs = f" and {plural(report.removed_packs, 'pack')}" if report.removed_packs else ""
    render.message(f"removed {plural(report.removed, 'object')}{packs} ({render.size(report.removed_bytes)}); "
                   f"kept {report.kept_in_use} in use and {report.kept_recent} used recently")
    for note in report.notes:
        render.warning_line(note)
