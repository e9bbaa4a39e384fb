"""CLI commands that keep a lake sound: fsck, gc and reindex; lock, unlock and rm.

``rm`` deletes catalog entries, ``gc`` the bytes nothing refers to any more,
and ``lock`` protects a file from both.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from limnos.names import plural

from . import render
from .app import CliError, JsonFlag, Ref, app, open_lake


def parse_subset(text: str | None) -> float | None:
    """``--subset``: ``0.1`` or ``10%`` -> 0.1; None when not given.

    Raises:
        CliError: For anything that is not a number or a percentage.
    """
    if text is None:
        return None
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise CliError(f"--subset takes a fraction such as 0.1 or a percentage such as 10%, not {text!r}") from None


@app.command(epilog="Example: limnos fsck --read-data --subset 10%   or: limnos fsck --read-data --repair")
def fsck(
    ctx: typer.Context,
    read_data: Annotated[bool, typer.Option("--read-data", help="Re-hash every object's bytes.")] = False,
    subset: Annotated[str | None, typer.Option(
        metavar="FRACTION", help="With --read-data, a random part: 0.1 or 10% (implies --read-data).")] = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Replace corrupt and missing objects with verified copies from the remotes.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check that every file's object exists (and with --read-data, hashes right). Exit 1 on a problem.

    With --repair, corrupt objects are moved to quarantine/ and clean copies downloaded; exit 1 when some could not be.
    """
    fraction = parse_subset(subset)
    report = open_lake(ctx).fsck(read_data=read_data or fraction is not None, subset=fraction, repair=repair)
    if as_json:
        render.print_json(report.to_dict())
    else:
        render.show(render.report_renderable(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command(epilog="Example: limnos gc  (a dry run), then: limnos gc --yes --grace-days 7; limnos gc --yes --repack")
def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted (the default).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete.")] = False,
    grace_days: Annotated[float, typer.Option(min=0, metavar="DAYS", help="Keep unreferenced objects younger than this.")] = 1.0,
    repack: Annotated[bool, typer.Option("--repack", help="Also pack loose small objects (lakes made before packs).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete objects no file refers to; a dry run unless --yes."""
    if dry_run and yes:
        raise CliError("--dry-run and --yes contradict each other; give one")
    report = open_lake(ctx).gc(dry_run=not yes, grace=dt.timedelta(days=grace_days), repack=repack)
    if as_json:
        render.print_json(report.to_dict())
        return
    render.show(render.report_renderable(report))


@app.command(epilog="Example: limnos reindex --force")
def reindex(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Wipe a non-empty catalog and rebuild it.")] = False,
) -> None:
    """Rebuild the catalog from the records files in the store. Exit 1 if a commit could not be restored."""
    report = open_lake(ctx).reindex(force=force)
    if report.notes and report.notes[0].startswith("the catalog already holds"):  # nothing left to rebuild
        render.message(f"restored the catalog from the records when the lake was opened: "
                       f"{plural(len(report.rolled_forward), 'commit')}, {plural(report.files, 'file')}")
        return
    render.message(f"rebuilt the catalog from {plural(len(report.rolled_forward), 'commit')}: {plural(report.files, 'file')}")
    for line in report.renumbered + report.notes:
        render.warning_line(line)
    lost = report.records_damaged + report.records_quarantined
    if lost:
        render.warning_line(f"could not restore {plural(len(lost), 'commit')} "
                            f"({', '.join(lost[:5])}{', ...' if len(lost) > 5 else ''}); "
                            "restore their records files from a backup or a remote, then run 'limnos reindex --force'")
        raise typer.Exit(1)


@app.command(epilog="Example: limnos lock models/final.pkl")
def lock(ctx: typer.Context, ref: Ref) -> None:
    """Protect a file: rm, cascades and gc leave it alone."""
    file = open_lake(ctx).lock(ref)
    render.message(f"locked {file.ref}")


@app.command(epilog="Example: limnos unlock models/final.pkl")
def unlock(ctx: typer.Context, ref: Ref) -> None:
    """Remove a file's protection."""
    file = open_lake(ctx).unlock(ref)
    render.message(f"unlocked {file.ref}")


@app.command(epilog="Example: limnos rm raw/bad.csv@2  |  limnos rm raw/bad.csv --cascade  |  "
                    "limnos rm raw/old.csv --keep-dependents")
def rm(
    ctx: typer.Context,
    ref: Ref,
    cascade: Annotated[bool, typer.Option(
        "--cascade", help="Also delete every file made from it, directly or through other files.")] = False,
    keep_dependents: Annotated[bool, typer.Option(
        "--keep-dependents", help="Keep the files made from it; their lineage shows it as removed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the deleted files as JSON.")] = False,
) -> None:
    """Delete a file from the catalog (its bytes go at the next gc); locked files are refused.

    A file that others were made from is refused, listing them, unless --cascade or --keep-dependents says what becomes of them.
    """
    if cascade and keep_dependents:
        raise CliError("give --cascade or --keep-dependents, not both")
    deleted = open_lake(ctx).rm(ref, cascade=cascade, keep_dependents=keep_dependents)
    if as_json:
        render.print_json([{"id": f.id, "name": f.name, "version": f.version} for f in deleted])
        return
    # gc keeps a deleted file's bytes for its grace period (a day): say so, or 'gc --yes' seems to do nothing.
    its = "its" if len(deleted) == 1 else "their"
    render.message(f"deleted {', '.join(f.ref for f in deleted)}; {its} bytes stay for a day (gc's grace period, in "
                   "case another writer reuses them): 'limnos gc --yes' frees them after that, "
                   "'limnos gc --yes --grace-days 0' now, when no other writer is running")
