"""``reindex``: rebuild the catalog from the records files in the store.

Every records file is read and checked before anything is wiped. One that is
damaged while the catalog still holds its commit stops the rebuild (wiping
would lose that commit for good); otherwise the rebuild goes on without it,
and the report lists every commit it could not restore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.recovery import Report, apply_commits, load_commits
from ..errors import LimnosError, RecordsDamaged

if TYPE_CHECKING:
    from ..core.base import LakeBase


def reindex(lake: LakeBase, force: bool = False) -> Report:
    """Rebuild the catalog from the records files in the store (a team lake: from its shared log).

    Commits replay in time order; a name@N that two replayed commits both
    claim is renumbered, and the report says so.

    Args:
        lake: the lake whose catalog to rebuild.
        force: wipe a catalog that is not empty first.

    Returns:
        A :class:`~limnos.core.recovery.Report`: ``rolled_forward`` lists the
        commits replayed, ``renumbered`` the versions that moved, ``files`` the
        count afterwards; ``records_damaged`` and ``records_quarantined`` the
        commits that could not be restored (then ``ok`` is False).

    Without ``force``, a catalog that opening the lake just rebuilt (it rolled
    forward records files, as after the catalog file was deleted, and now
    holds exactly their commits) is left as it is: the report lists the
    commits the open restored and says so in ``notes``.

    Raises:
        LimnosError: the catalog is not empty, differs from the records, and ``force`` is False.
        RecordsDamaged: a records file is damaged while the catalog still holds its
            commit, so rebuilding would lose it; nothing was changed.
    """
    report = Report("reindex")
    empty = lake.catalog.is_empty()
    if not empty and not force:
        if lake.shared_log is None and lake.rolled_forward_at_open and _matches_records(lake):
            # Opening the lake rolled every records file forward (a deleted catalog comes back that way):
            # the rebuild is done, and saying "not empty" would read as a failure.
            report.rolled_forward = list(lake.rolled_forward_at_open)
            report.notes.append("the catalog already holds every commit of the records files (restored when "
                                "the lake was opened)")
            report.files = lake.catalog.count_files()
            return report
        raise LimnosError("the catalog is not empty", hint="call lake.reindex(force=True) to rebuild it from the store")
    if lake.shared_log is not None:
        # A team lake's truth is its log: replay it from the first entry, in order.
        if not empty:
            lake.catalog.wipe()
        caught = lake.catch_up(force=True)
        if caught is not None:
            report.rolled_forward, report.notes = caught.rolled_forward, caught.notes
            report.records_damaged, report.renumbered = caught.records_damaged, caught.renumbered
        report.files = lake.catalog.count_files()
        return report
    reasons: dict[str, str] = {}
    commits = load_commits(lake, lake.store.list_records(), report, reasons)
    if not empty:
        held = sorted(set(report.records_damaged) & lake.catalog.commit_ids())
        if held:
            raise RecordsDamaged(f"{len(held)} records files are damaged (first: records/{held[0]}.jsonl) and the catalog "
                                 "still holds their commits, which a rebuild would lose; nothing was changed",
                                 hint="restore them from a backup or a remote first (call lake.fsck() to list them), "
                                 "or move them to records/quarantine/ to rebuild without those commits",
                                 commit_id=held[0])
        lake.catalog.wipe()
    apply_commits(lake, commits, report, reasons)
    report.records_quarantined = lake.store.list_quarantined()
    report.files = lake.catalog.count_files()
    return report


def _matches_records(lake: LakeBase) -> bool:
    """True when the catalog holds exactly the commits whose records files are in the store."""
    return set(lake.store.list_records()) == lake.catalog.commit_ids()
