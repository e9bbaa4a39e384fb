"""``reindex``: rebuild the catalog from the records files in the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.recovery import Report, load_commits
from ..errors import LimnosError

if TYPE_CHECKING:
    from ..core.base import LakeBase


def reindex(lake: LakeBase, force: bool = False) -> Report:
    """Rebuild the catalog from the records files in the store."""
    report = Report("reindex")
    if not lake.catalog.is_empty():
        if not force:
            raise LimnosError("the catalog is not empty; run 'limnos reindex --force' to rebuild it from the store")
        lake.catalog.wipe()
    ids = lake.store.list_records()
    commits = load_commits(lake, ids, report)
    renumbered = lake.catalog.replay(commits)
    report.rolled_forward = [c.id for c in commits]
    report.renumbered = [f"{n}@{a} was {n}@{b} in its records" for n, b, a in renumbered]
    report.files = lake.catalog.count_files()
    return report
