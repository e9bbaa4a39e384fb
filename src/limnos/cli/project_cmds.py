"""CLI for project data dependencies: ``track``, and the project side of ``init``, ``status`` and ``pull``.

Registered on the main app by ``cli/main.py``. ``init --project``, ``status``
without a PATH and ``pull`` of tracked paths, scripts or folders call into
here; everything else about those commands stays where it was.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.text import Text

from limnos.errors import ProjectNotFound
from limnos.tracking import manifest as tracking

from . import render
from .main import CliError, app


def _lake_path(ctx: typer.Context) -> str | None:
    root = ctx.find_root()
    return (root.obj or {}).get("lake_path") if isinstance(root.obj, dict) else None


def _project(ctx: typer.Context, start: str, create: bool = False) -> tracking.Project:
    """The project at or above ``start``, closed with the command."""
    project = tracking.project_for(start, lake=_lake_path(ctx), create=create)
    ctx.find_root().call_on_close(project.close)
    return project


def init_project_cmd(ctx: typer.Context, path: str | None, catalog: str | None, link: str) -> None:
    """``limnos init --project [FOLDER]``: limnos.lock here (or in FOLDER, or the git root) and a lake if none is found."""
    project, created = tracking.init_project(path, lake=_lake_path(ctx), link=link, catalog=catalog)
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
    projects: dict[str, tracking.Project] = {}
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
        render.message(f"{_count(results, 'tracked file')} unchanged")


def project_status(ctx: typer.Context, as_json: bool) -> None:
    """``limnos status`` without a PATH: the project's tracked files against limnos.lock."""
    try:
        project = _project(ctx, os.getcwd())
    except ProjectNotFound:
        raise CliError("no limnos.lock here or above: give a local PATH to compare, --steps for stale step "
                       "outputs, or run 'limnos init --project' to start tracking data") from None
    st = project.status()
    if as_json:
        render.print_json(st.to_dict())
        return
    console = render.out_console()
    here = os.getcwd()

    def shown(rel: str) -> str:  # paths as the user would type them from here
        return os.path.relpath(os.path.join(project.root, rel), here)

    for label, names, style in (("changed", st.changed, "yellow"), ("missing", st.missing, "red")):
        for n in names:
            console.print(Text.assemble((f"{label + ':':<10}", style), shown(n)), soft_wrap=True)
    for ref in st.newer:
        console.print(Text.assemble(("newer:    ", "cyan"), ref, (" in the lake, not in limnos.lock", "dim")),
                      soft_wrap=True)
    summary = f"{len(st.unchanged)} of {len(st.unchanged) + len(st.changed) + len(st.missing)} tracked files unchanged"
    console.print(Text(("clean: " if st.clean else "") + summary, style="dim"), soft_wrap=True)
    if st.changed:
        render.message("changed files become new versions at the next limnos.track() or 'limnos track'", "dim")
    if st.missing:
        render.message("'limnos pull .' puts missing files back", "dim")


def project_pull(ctx: typer.Context, refs: list[str], remote: str | None, jobs: int | None, as_json: bool) -> bool:
    """``limnos pull`` of tracked paths, scripts in their usage, folders or ``.``; False if the refs are lake refs."""
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
        return True
    if report.downloaded:
        fetched = f"downloaded {report.downloaded} objects ({render.size(report.bytes)}) from {', '.join(report.sources)}; "
    else:
        fetched = "everything was in the local lake; "
    render.message(f"{fetched}restored {_count(report.restored, 'file')}, {len(report.present)} already in place")
    for rel in report.kept:
        render.warning_line(f"kept {rel}: its bytes differ from limnos.lock (delete it and pull again for the listed version)")
    return True


def _count(items: Any, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


__all__: list[Any] = ["init_project_cmd", "project_pull", "project_status", "track"]
