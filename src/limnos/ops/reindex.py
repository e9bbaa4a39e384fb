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

    Raises:
        LimnosError: the catalog is not empty and ``force`` is False.
        RecordsDamaged: a records file is damaged while the catalog still holds its
            commit, so rebuilding would lose it; nothing was changed.
    """
    report = Report("reindex")
    empty = lake.catalog.is_empty()
    if not empty and not force:
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
