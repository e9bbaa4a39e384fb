"""``reindex``: rebuild the catalog from the records files in the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.recovery import Report, load_commits
from ..errors import LimnosError

if TYPE_CHECKING:
    from ..core.base import LakeBase


def reindex(lake: LakeBase, force: bool = False) -> Report:
    """Rebuild the catalog from the records files in the store.

    Commits replay in time order; a name@N that two replayed commits both
    claim is renumbered, and the report says so.

    Args:
        lake: the lake whose catalog to rebuild.
        force: wipe a catalog that is not empty first.

    Returns:
        A :class:`~limnos.core.recovery.Report`: ``rolled_forward`` lists the
        commits replayed, ``renumbered`` the versions that moved, ``files`` the
        count afterwards.

    Raises:
        LimnosError: the catalog is not empty and ``force`` is False.
    """
    report = Report("reindex")
    if not lake.catalog.is_empty():
        if not force:
            raise LimnosError("the catalog is not empty", hint="call lake.reindex(force=True) to rebuild it from the store")
        lake.catalog.wipe()
    ids = lake.store.list_records()
    commits = load_commits(lake, ids, report)
    renumbered = lake.catalog.replay(commits)
    report.rolled_forward = [c.id for c in commits]
    report.renumbered = [f"{n}@{a} was {n}@{b} in its records" for n, b, a in renumbered]
    report.files = lake.catalog.count_files()
    return report
