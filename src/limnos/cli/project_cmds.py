"""CLI commands for lakes and projects: init (and ``init --project``), track, checkout, import-lazydata,
and a project's status and pull.

A project is a folder with a limnos.lock listing the data files its code
tracks (and, in its ``settings`` block, the remote and storage options clones
use). ``status`` without a PATH and ``pull`` of tracked paths, scripts,
folders or ``.`` call :func:`project_status` and :func:`project_pull` here.
:mod:`limnos.tracking` is imported inside the commands: it loads the whole
library, which ``limnos --help`` should not pay for.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

import limnos
from limnos.errors import ProjectNotFound

from . import render
from .app import CliError, LinkMode, app, lake_path
from .completion import complete_remote

if TYPE_CHECKING:
    from limnos import Lake
    from limnos.tracking.project import Project


def _project(ctx: typer.Context, start: str, create: bool = False) -> Project:
    """The project at or above ``start`` (made there with ``create``), closed with the command."""
    from limnos import tracking

    project = tracking.project_for(start, lake=lake_path(ctx), create=create)
    ctx.find_root().call_on_close(project.close)
    return project


@app.command(epilog="Example: limnos init  |  limnos init myproject  (makes myproject/.limnos)  |  "
             "limnos init s3://bucket/lake  |  limnos init /data/lake --catalog postgresql://me@db/lake")
def init(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="Folder for the new lake (default: .limnos).")] = None,
    catalog: Annotated[str | None, typer.Option(
        metavar="URL", help="SQLAlchemy URL of the catalog (default: SQLite inside the lake).")] = None,
    link: Annotated[LinkMode, typer.Option(help="How working copies are made.")] = LinkMode.copy,
    project: Annotated[bool, typer.Option("--project", help=(
        "Start tracking data in this project: limnos.lock in PATH (default: the git root, else here) "
        "and a .limnos lake beside it if none is found."))] = False,
    team: Annotated[bool | None, typer.Option("--team/--no-team", help=(
        "For a lake on a bucket: machines agree on versions through a commit log in the bucket (the default "
        "without --catalog; needs a bucket that honours If-None-Match). --no-team: only this machine writes."),
        show_default=False)] = None,
    gitignore: Annotated[bool, typer.Option("--gitignore/--no-gitignore", help=(
        "With --project: add tracked paths to .gitignore (the 'gitignore' setting in limnos.lock)."))] = True,
) -> None:
    """Create a new lake: DIR/.limnos (./.limnos by default), or at a bucket URL; with --project, a project's limnos.lock.

    A folder DIR gets the lake in DIR/.limnos, beside the files already there
    (DIR is made if missing); a DIR that is itself a lake, or whose .limnos is,
    is refused. A DIR named .limnos is the lake folder itself.
    """
    from limnos.core.opening import DEFAULT_DIR, find_lake  # here: the catalog stack loads only when a command runs

    if project:
        init_project(ctx, path, catalog, link.value, gitignore)
        return
    target = lake_folder(path or lake_path(ctx) or DEFAULT_DIR)
    if "://" not in target:
        outer = find_lake(os.path.dirname(os.path.dirname(os.path.abspath(target))))
        if outer is not None:
            render.warning_line(f"this folder is inside the project of the lake at {outer}; making another lake "
                                f"nested in it (commands run below here will use the new one)")
    lake = limnos.init(target, catalog=catalog, link=link.value, team=team)
    where = lake.path
    lake.close()
    render.message(f"created a {'team ' if lake.shared_log is not None else ''}lake at {where}")
    if os.path.basename(where) != ".limnos" or os.path.dirname(where) != os.getcwd():
        render.message(f"use it with: limnos --lake {path or target} ls   (or export LIMNOS_LAKE={where})", "dim")


def lake_folder(path: str) -> str:
    """Where ``limnos init PATH`` makes the lake: a URL as given, a folder named .limnos itself, else PATH/.limnos.

    A folder that is already a lake (made by an older ``init DIR``) is returned as it is, so ``init`` says it exists.
    """
    from limnos.core.opening import CONFIG_NAME, DEFAULT_DIR

    if "://" in path or os.path.basename(os.path.normpath(path)) == DEFAULT_DIR:
        return path
    if os.path.isfile(os.path.join(path, CONFIG_NAME)):
        return path
    return os.path.join(path, DEFAULT_DIR)


def init_project(ctx: typer.Context, path: str | None, catalog: str | None, link: str, gitignore: bool = True) -> None:
    """``limnos init --project [FOLDER]``: limnos.lock here (or in FOLDER, or the git root) and a lake if none is found."""
    from limnos import tracking

    project, created = tracking.init_project(path, lake=lake_path(ctx), link=link, catalog=catalog)
    try:
        if not gitignore:
            project.set_gitignore(False)
            render.message("tracked paths will not be added to .gitignore (settings: gitignore: false in limnos.lock)")
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
    force: Annotated[bool, typer.Option("--force", help=(
        "Record a file that holds an older listed version as the newest version (go back on purpose), "
        "instead of bringing it to the newest."))] = False,
) -> None:
    """Track data files in limnos.lock (as limnos.track() does in code): store new or changed ones in the lake.

    Tracked paths are added to .gitignore (unless limnos.lock's settings say gitignore: false).
    """
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
        state = project.track(path, force=force)
        results.append({"path": os.path.relpath(os.path.abspath(path), project.root).replace(os.sep, "/"),
                        "state": state, "manifest": project.manifest_path})
    if as_json:
        render.print_json(results)
    elif results and all(r["state"] == "unchanged" for r in results):
        render.message(f"{render.count(results, 'tracked file')} unchanged")


def share_remote(ctx: typer.Context, lake: Lake, url: str, options: dict[str, Any]) -> None:
    """After ``remote add`` of the default remote: name it in the project's limnos.lock, if the lake is the project's."""
    from limnos.tracking.manifest import find_manifest
    from limnos.tracking.project import save_remote

    manifest = find_manifest(os.getcwd())
    if manifest is None or lake_path(ctx) or not lake.store.local:
        return
    settings = save_remote(manifest, lake.state_dir, url, options)
    render.message(f"limnos.lock names {settings.remote} as the project's remote; commit it so clones use it")
    left_out = sorted(k for k in options if k not in ("client_kwargs", "profile"))
    if left_out:
        render.message(f"not written to limnos.lock (kept on this machine only): {', '.join(left_out)}", "dim")


def project_status(ctx: typer.Context, as_json: bool, quiet: bool = False) -> bool:
    """``limnos status`` without a PATH: the project's tracked files against its limnos.lock.

    Returns:
        Whether the project is clean (nothing changed, missing, outdated or newer in the lake).

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
        return st.clean
    if quiet:
        return st.clean
    here = os.getcwd()

    def shown(rel: str) -> str:  # paths as the user would type them from here
        return os.path.relpath(os.path.join(project.root, rel), here)

    render.show(render.project_status_renderable(st, shown), soft_wrap=True)
    render.project_status_hints(st)
    return st.clean


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
    _show_pull(report, as_json)
    return True


def _show_pull(report: Any, as_json: bool) -> None:
    """A project pull or checkout report: JSON, or the lines ``pull`` prints."""
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.project_pull_report(report)


@app.command(epilog="Example: limnos checkout  |  limnos checkout data/  |  limnos checkout train.py --force")
def checkout(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(
        metavar="[PATH|SCRIPT.py|FOLDER]...", help="Tracked paths, scripts in their usage, folders (default: all).")] = None,
    force: Annotated[bool, typer.Option("--force", help=(
        "Also replace files whose bytes limnos.lock never listed (untracked edits are lost)."))] = False,
    remote: Annotated[str | None, typer.Option(metavar="NAME", autocompletion=complete_remote,
                                               help="Remote to download from (default: the default remote).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Put every tracked file in the state limnos.lock lists: restore missing ones, update older versions.

    A file whose bytes limnos.lock never listed is kept and reported, unless --force.
    """
    try:
        project = _project(ctx, os.getcwd())
    except ProjectNotFound:
        raise CliError("no limnos.lock here or above: run 'limnos init --project' to start tracking data") from None
    selected = project.select(paths) if paths else None
    if paths and not selected:
        raise CliError(f"limnos.lock lists nothing under {', '.join(paths)}")
    report = project.checkout(selected, remote=remote, force=force)
    _show_pull(report, as_json)


@app.command("import-lazydata", epilog="Example: limnos import-lazydata  |  limnos import-lazydata path/to/project")
def import_lazydata(
    ctx: typer.Context,
    folder: Annotated[str | None, typer.Argument(help="The folder with lazydata.yml (default: here).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Read lazydata.yml into limnos.lock once, keeping every version it lists.

    lazydata's SHA-256 entries become BLAKE3 when limnos first reads each file:
    now for the files present, later at track() or checkout.
    """
    from limnos import tracking

    report = tracking.import_lazydata(folder, lake=lake_path(ctx))
    if as_json:
        render.print_json(report.to_dict())
        return
    render.message(f"imported {render.count(report.imported, 'version')} from {report.source} into {report.manifest}"
                   + (f" ({report.skipped} already listed)" if report.skipped else ""))
    if report.read:
        render.message(f"read {render.count(report.read, 'working file')}: their entries now have BLAKE3 hashes")
    for rel in report.pending:
        render.warning_line(f"{rel}: its newest version is not here; it stays a lazydata entry until the file is tracked")
    if report.remote:
        render.message(f"lazydata's remote {report.remote} is not a limnos lake; share the data with "
                       "'limnos remote add origin URL' and 'limnos push'", "dim")
