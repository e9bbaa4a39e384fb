"""Reports: what a check, a comparison or a transfer found or did.

``fsck``/``gc`` reports and ``status`` (of a folder, of step outputs, of a
project) are drawn on stdout, as data; what push and pull moved is told on
stderr, as messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.text import Text

from limnos.names import plural

from ..advice import shell_advice
from .console import count, message, printable, size, warning_line

if TYPE_CHECKING:
    from limnos.core.recovery import Report
    from limnos.ops.add import Status
    from limnos.steps.stale import StaleOutput
    from limnos.store.transfer import TransferReport
    from limnos.tracking.project import ProjectStatus, PullReport


def _hash_list(title: str, digests: Sequence[str], style: str, limit: int = 20) -> Text:
    text = Text(f"{title} ({len(digests)}):", style=f"bold {style}")
    for digest in digests[:limit]:
        text.append(f"\n  {printable(digest)}", style=style)
    if len(digests) > limit:
        text.append(f"\n  … and {len(digests) - limit} more (see --json)", style="dim")
    return text


def report_renderable(report: Report) -> Group:
    """An fsck or a gc report: counts, the objects missing, corrupt or deleted, notes, and the verdict."""
    parts: list[RenderableType] = []
    if report.action == "fsck":
        line = f"checked {plural(report.files, 'file')} and {plural(report.objects, 'object')}"
        if report.bytes:
            line += f", re-hashed {size(report.bytes)}"
        parts.append(Text(line))
        if report.missing:
            parts.append(_hash_list("missing objects", report.missing, "red"))
        if report.corrupt:
            parts.append(_hash_list("corrupt objects (bytes do not match their hash)", report.corrupt, "red"))
        if report.orphans:
            parts.append(Text(f"{count(report.orphans, 'unreferenced object')} (left by deleted files or by a failed or "
                              "interrupted write)"))
            parts.append(Text("  'limnos gc --yes' removes them a day after they were written or their file was deleted"))
            parts.append(Text("  'limnos gc --yes --grace-days 0' removes them now, when no other writer is running"))
        repaired = getattr(report, "repaired", None)  # an fsck --repair report
        if repaired:
            parts.append(_hash_list("repaired objects (replaced by a verified copy)", repaired, "green"))
        if report.quarantined:
            parts.append(Text(f"{len(report.quarantined)} corrupt copies are in quarantine/ (moved aside by a read or "
                              "a repair; delete them once looked at)", style="yellow"))
        for title, ids in (("commits without their records file", report.records_missing),
                           ("damaged records files (truncated or altered)", report.records_damaged),
                           ("records files the catalog lacks", report.records_unapplied),
                           ("records files in records/quarantine/", report.records_quarantined)):
            if ids:
                parts.append(_hash_list(title, ids, "red"))
    else:
        verb = "would delete" if report.dry_run else "deleted"
        parts.append(Text(f"{verb} {count(report.deleted, 'unreferenced object')} ({size(report.bytes)}) "
                          f"of {plural(report.objects, 'object')} in the store"))
        if report.deleted:
            parts.append(_hash_list("objects", report.deleted, "yellow" if report.dry_run else "dim"))
    for note in report.notes:
        parts.append(Text(f"note: {printable(shell_advice(note))}", style="yellow"))
    if report.action == "fsck":
        parts.append(Text("ok", style="bold green") if report.ok else Text("problems found", style="bold red"))
    elif report.dry_run and report.deleted:
        parts.append(Text("this was a dry run; run 'limnos gc --yes' to delete them", style="dim"))
    return Group(*parts)


def stale_renderable(stale: Sequence[StaleOutput]) -> Group:
    """``limnos status --steps``: each stale step output with its reasons, then a summary line."""
    parts: list[RenderableType] = []
    for item in stale:
        parts.append(Text.assemble(("stale:    ", "yellow"), (printable(item.file.ref), "bold"),
                                   (printable(f"  ({item.step.function})"), "dim")))
        for reason in item.reasons:
            parts.append(Text(f"          {printable(reason)}", style="yellow"))
    if stale:
        parts.append(Text(f"{len(stale)} step outputs are stale; call their steps again to refresh them", style="dim"))
    else:
        parts.append(Text("clean: every step output is up to date with its code and inputs", style="dim"))
    return Group(*parts)


def _labelled(label: str, style: str, name: str) -> Text:
    return Text.assemble((f"{label + ':':<10}", style), printable(name))


def status_renderable(st: Status) -> Group:
    """``limnos status PATH``: modified, new and deleted names, then how many are unchanged (print with soft_wrap)."""
    parts: list[RenderableType] = []
    for label, names, style in (("modified", st.modified, "yellow"), ("new", st.new, "green"),
                                ("deleted", st.deleted, "red")):
        parts += [_labelled(label, style, n) for n in names]
    parts.append(Text(("clean: " if st.clean else "") + f"{len(st.unchanged)} unchanged", style="dim"))
    return Group(*parts)


def project_status_renderable(st: ProjectStatus, shown: Callable[[str], str]) -> Group:
    """``limnos status`` in a project: changed and missing tracked files, lake versions limnos.lock lacks, a summary.

    Args:
        st: The project's status.
        shown: Turns a path relative to the project's root into the path to show (as the user would type it).
    """
    parts: list[RenderableType] = []
    for label, names, style in (("changed", st.changed, "yellow"), ("missing", st.missing, "red"),
                                ("outdated", st.outdated, "cyan")):
        parts += [_labelled(label, style, shown(n)) for n in names]
    for ref in st.newer:
        parts.append(Text.assemble(("newer:    ", "cyan"), printable(ref), (" in the lake, not in limnos.lock", "dim")))
    total = len(st.unchanged) + len(st.changed) + len(st.missing) + len(st.outdated)
    summary = f"{len(st.unchanged)} of {total} tracked files unchanged"
    parts.append(Text(("clean: " if st.clean else "") + summary, style="dim"))
    return Group(*parts)


def project_status_hints(st: ProjectStatus) -> None:
    """After a project's status: how to record changed files and restore missing ones (on stderr)."""
    if st.changed:
        message("changed files become new versions at the next limnos.track() or 'limnos track'", "dim")
    if st.missing:
        message("'limnos pull .' puts missing files back", "dim")
    if st.outdated:
        message("outdated files hold an older version limnos.lock lists; 'limnos checkout' brings them to the newest",
                "dim")


def transfer_report(report: TransferReport, verb: str) -> None:
    """What a push or pull moved, on stderr: ``pushed 4 objects (1.0 kB), 2 already there, 7 records files in 0.12 s``.

    Args:
        report: The push or pull report.
        verb: ``pushed`` or ``pulled``.
    """
    parts = [f"{verb} {plural(report.transferred, 'object')} ({size(report.bytes)})"]
    if report.skipped:
        parts.append(f"{report.skipped} already there")
    parts.append(plural(report.records, "records file"))
    message(", ".join(parts) + f" in {report.seconds:.2f} s")
    for line in report.renumbered:
        warning_line(f"imported as {line}")


def project_pull_report(report: PullReport) -> None:
    """What a pull of a project's tracked files did, on stderr: downloads, restored files, files kept as they are."""
    if report.downloaded:
        fetched = f"downloaded {plural(report.downloaded, 'object')} ({size(report.bytes)}) from {', '.join(report.sources)}; "
    else:
        fetched = "everything was in the local lake; "
    updated = f", updated {len(report.updated)} to the newest listed version" if report.updated else ""
    message(f"{fetched}restored {count(report.restored, 'file')}{updated}, {len(report.present)} already in place")
    for rel in report.kept:
        warning_line(f"kept {rel}: its bytes are not a version limnos.lock lists (track it to keep it as a new "
                     "version, or 'limnos checkout --force' to replace it)")
    for rel in report.unavailable:
        warning_line(f"{rel}: limnos.lock lists it from lazydata only; copy the file there and track it once")
