"""CLI commands for lakes and projects: init (and ``init --project``), track, and a project's status and pull.

A project is a folder with a limnos.lock listing the data files its code
tracks. ``status`` without a PATH and ``pull`` of tracked paths, scripts,
folders or ``.`` call :func:`project_status` and :func:`project_pull` here.
:mod:`limnos.tracking` is imported inside the commands: it loads the whole
library, which ``limnos --help`` should not pay for.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

import limnos
from limnos.errors import ProjectNotFound

from . import render
from .app import CliError, LinkMode, app, lake_path

if TYPE_CHECKING:
    from limnos.tracking.project import Project


def _project(ctx: typer.Context, start: str, create: bool = False) -> Project:
    """The project at or above ``start`` (made there with ``create``), closed with the command."""
    from limnos import tracking

    project = tracking.project_for(start, lake=lake_path(ctx), create=create)
    ctx.find_root().call_on_close(project.close)
    return project


@app.command(epilog="Example: limnos init  |  limnos init s3://bucket/lake  |  "
             "limnos init /data/lake --catalog postgresql://me@db/lake")
def init(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="Folder for the new lake (default: .limnos).")] = None,
    catalog: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the catalog (default: SQLite inside the lake).")] = None,
    link: Annotated[LinkMode, typer.Option(help="How working copies are made.")] = LinkMode.copy,
    project: Annotated[bool, typer.Option("--project", help=(
        "Start tracking data in this project: limnos.lock in PATH (default: the git root, else here) "
        "and a .limnos lake beside it if none is found."))] = False,
    team: Annotated[bool | None, typer.Option("--team/--no-team", help=(
        "For a lake on a bucket: machines agree on versions through a commit log in the bucket (the default "
        "without --catalog; needs a bucket that honours If-None-Match). --no-team: only this machine writes."),
        show_default=False)] = None,
) -> None:
    """Create a new lake (a .limnos folder here by default, or a bucket URL), or with --project, a project's limnos.lock."""
    if project:
        init_project(ctx, path, catalog, link.value)
        return
    target = path or lake_path(ctx) or ".limnos"
    lake = limnos.init(target, catalog=catalog, link=link.value, team=team)
    where = lake.path
    lake.close()
    render.message(f"created a {'team ' if lake.shared_log is not None else ''}lake at {where}")
    if os.path.basename(where) != ".limnos" or os.path.dirname(where) != os.getcwd():
        render.message(f"use it with: limnos --lake {target} ls   (or export LIMNOS_LAKE={where})", "dim")


def init_project(ctx: typer.Context, path: str | None, catalog: str | None, link: str) -> None:
    """``limnos init --project [FOLDER]``: limnos.lock here (or in FOLDER, or the git root) and a lake if none is found."""
    from limnos import tracking

    project, created = tracking.init_project(path, lake=lake_path(ctx), link=link, catalog=catalog)
    try:
        for item in created:
            render.message(f"created {item}")
        if project.manifest_path not in created:
            render.message(f"{project.manifest_path} already exists")
        if project.lake.path not in created:
            render.message(f"using the lake at {project.lake.path}")
        render.message("track files with limnos.track('data/x.csv') in your code, or 'limnos track PATH'", "dim")
    finally:
        project.close()


@app.command(epilog="Example: limnos track data/train.csv data/labels/")
def track(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(metavar="PATH...", help="Files or folders (every file inside) to track.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print what happened to each file as JSON.")] = False,
) -> None:
    """Track data files in limnos.lock (as limnos.track() does in code): store new or changed ones in the lake."""
    from limnos import tracking

    projects: dict[str, Project] = {}
    results = []
    for path in tracking.expand(paths):
        folder = os.path.dirname(os.path.abspath(path))
        manifest = tracking.find_manifest(folder) or ""
        project = projects.get(manifest) if manifest else None
        if project is None:
            project = _project(ctx, folder, create=True)
            projects[project.manifest_path] = project
        state = project.track(path)
        results.append({"path": os.path.relpath(os.path.abspath(path), project.root).replace(os.sep, "/"),
                        "state": state, "manifest": project.manifest_path})
    if as_json:
        render.print_json(results)
    elif results and all(r["state"] == "unchanged" for r in results):
        render.message(f"{render.count(results, 'tracked file')} unchanged")


def project_status(ctx: typer.Context, as_json: bool) -> None:
    """``limnos status`` without a PATH: the project's tracked files against its limnos.lock.

    Raises:
        CliError: When there is no limnos.lock here or above.
    """
    try:
        project = _project(ctx, os.getcwd())
    except ProjectNotFound:
        raise CliError("no limnos.lock here or above: give a local PATH to compare, --steps for stale step "
                       "outputs, or run 'limnos init --project' to start tracking data") from None
    st = project.status()
    if as_json:
        render.print_json(st.to_dict())
        return
    here = os.getcwd()

    def shown(rel: str) -> str:  # paths as the user would type them from here
        return os.path.relpath(os.path.join(project.root, rel), here)

    render.show(render.project_status_renderable(st, shown), soft_wrap=True)
    render.project_status_hints(st)


def project_pull(ctx: typer.Context, refs: list[str], remote: str | None, jobs: int | None, as_json: bool) -> bool:
    """``limnos pull`` of tracked paths, scripts in their usage, folders or ``.``, as limnos.lock lists them.

    Returns:
        False when there is no project here or the refs are not its paths: they are lake refs, for a plain pull.

    Raises:
        CliError: When limnos.lock lists nothing under the refs.
    """
    from limnos import tracking

    if not refs or tracking.find_manifest(os.getcwd()) is None:
        return False
    project = _project(ctx, os.getcwd())
    paths = project.select(refs)
    if paths is None:
        return False
    if not paths:
        raise CliError(f"limnos.lock lists nothing under {', '.join(refs)}")
    report = project.pull(paths, remote=remote, jobs=jobs)
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.project_pull_report(report)
    return True
