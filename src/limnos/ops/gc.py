"""``gc``: delete objects no file refers to.

Lessons from restic, Borg, git and DVC: only unreferenced objects older than a
grace period go, there is a dry run, and nothing is deleted when the listing
looks wrong.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

from ..catalog import Commit
from ..core.recovery import Report, pending_records
from ..errors import GcRefused
from ..progress import progress
from .fsck import split_absent

if TYPE_CHECKING:
    from ..core.base import LakeBase


def gc(lake: LakeBase, dry_run: bool = True, grace: dt.timedelta = dt.timedelta(days=1)) -> Report:
    """Delete objects that no file refers to and that are older than ``grace``.

    Objects named by a records file the catalog lacks yet (a commit in flight,
    or one to roll forward) count as referenced. A local lake's old staging
    files go too.

    Args:
        lake: the lake to collect.
        dry_run: only report what would be deleted (the default).
        grace: unreferenced objects younger than this stay; a writer may be about to commit them.

    Returns:
        A :class:`~limnos.core.recovery.Report`: ``orphans`` (every unreferenced
        object), ``deleted`` (those deleted, or that would be) and their ``bytes``.

    Raises:
        GcRefused: the store lacks objects the catalog refers to (a wrong URL or
            credentials look like that), so nothing was deleted.
    """
    report = Report("gc", dry_run=dry_run)
    referenced = lake.catalog.referenced_hashes()
    # A records file the catalog lacks is a commit in flight (or to roll forward): keep its objects.
    for cid in pending_records(lake, grace=0):
        try:
            commit = Commit.from_jsonl(lake.store.read_record(cid))
        except (ValueError, KeyError):
            continue
        referenced.update(f["hash"] for f in commit.files if f.get("hash"))
        referenced.update(m["v_str"] for m in commit.metadata if m.get("vtype") == "blob" and m.get("v_str"))
    listed = list(lake.store.iter_objects())
    present = {o.hash for o in listed}
    report.objects = len(listed)
    missing, _remote_only = split_absent(lake, referenced - present)
    if missing and not listed:
        raise GcRefused("the store lists no objects but the catalog refers to some; "
                        "check the store URL and credentials, nothing was deleted")
    if missing:
        raise GcRefused(f"{len(missing)} referenced objects are missing from the store; nothing was deleted",
                        hint="call lake.fsck() to list them")
    cutoff = time.time() - grace.total_seconds()
    victims = [o for o in listed if o.hash not in referenced and o.mtime <= cutoff]
    report.orphans = sorted(o.hash for o in listed if o.hash not in referenced)
    report.deleted = sorted(o.hash for o in victims)
    report.bytes = sum(o.size for o in victims)
    young = len(report.orphans) - len(victims)
    if young:
        report.notes.append(f"{young} unreferenced objects are younger than the grace period and were kept")
    if dry_run:
        return report
    with progress(len(victims), "collecting garbage") as advance:
        for o in victims:
            lake.store.delete(o.hash)
            advance(1)
    if lake.store.local:  # a local lake's cache is its store: its staging files are the store's
        lake.cache.clean_staging(grace.total_seconds())
    return report
