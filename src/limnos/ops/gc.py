"""``gc``: delete objects no file refers to.

Lessons from restic, Borg, git and DVC: only unreferenced objects older than a
grace period go, there is a dry run, and nothing is deleted when the listing
looks wrong.

The invariant: an object that any commit acknowledged before, during or after
a gc run refers to is never deleted, at any grace. Planning (reading the
catalog, listing the store) takes no lock. The delete phase holds the writer
guard exclusively (:meth:`LakeBase.collecting
<limnos.core.base.LakeBase.collecting>`): it starts once every writer in
flight has committed or failed, and no writer starts a new write until it is
over. Inside it gc reads what is referenced again (catalog and pending
records) and checks each candidate once more just before deleting it, so an
object that a writer reused or stored after the plan was made stays.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import TYPE_CHECKING, Any

from ..catalog import Commit
from ..core.recovery import Report, is_old, roll_forward_grace
from ..errors import CatalogVersionError, GcRefused, RecordsDamaged
from ..names import plural
from ..progress import progress
from ..store.objects import ObjectInfo
from . import repack as repack_ops
from .fsck import split_absent

if TYPE_CHECKING:
    from ..core.base import LakeBase

#: Staging files younger than this stay whatever the grace: a ``create`` block may still be writing one.
STAGING_GRACE = 3600.0


def gc(lake: LakeBase, dry_run: bool = True, grace: dt.timedelta = dt.timedelta(days=1), repack: bool = False) -> Report:
    """Delete objects that no file refers to and that are older than ``grace``.

    Objects named by a records file the catalog lacks yet (a commit in flight,
    or one to roll forward) count as referenced. A local lake's old staging
    files (older than ``grace`` and than an hour) and its abandoned commits'
    records files go too.

    Writers on this machine, and on every machine that shares a PostgreSQL
    catalog, are coordinated with gc through the writer guard. A lake whose
    store is remote (a bucket) but whose catalog is a SQLite file on each
    machine cannot coordinate across machines: run gc there only while no
    other machine writes, or give the lake a PostgreSQL catalog.

    Args:
        lake: the lake to collect.
        dry_run: only report what would be deleted (the default).
        grace: unreferenced objects younger than this stay.
        repack: also pack the loose small objects (a lake made before packs) and drop
            loose copies of packed objects; packs older than ``grace`` whose live share
            is low are rewritten on every gc (``ops/repack.py``).

    Returns:
        A :class:`~limnos.core.recovery.Report`: ``orphans`` (every unreferenced
        object), ``deleted`` (those deleted, or that would be) and their ``bytes``.

    Raises:
        GcRefused: the store lacks objects the catalog refers to (a wrong URL or
            credentials look like that), the records files and the catalog
            disagree (see ``fsck``), or gc was called inside a write; nothing was deleted.
    """
    report = Report("gc", dry_run=dry_run)
    lake.catch_up(force=True)  # a team lake: what other machines published is referenced too
    if lake.catalog.guard.held_by_this_thread():  # its delete phase would wait for this very thread
        raise GcRefused("gc cannot run inside lake.writing() (a write in progress on this thread); call it after the write")
    _refuse_unless_records_agree(lake)
    referenced = _referenced(lake, grace.total_seconds())
    listed = list(lake.store.iter_objects())
    inv = repack_ops.inventory(lake)  # packed objects and chunked files of a local store
    present = {o.hash for o in listed} | inv.hashes
    report.objects = len(present)
    # Only live files must have their objects: a file deleted within the grace may have lost its object already.
    absent = referenced - present
    missing, _remote_only = split_absent(lake, lake.catalog.live_hashes(absent) if absent else set())
    if missing and not present:
        raise GcRefused("the store lists no objects but the catalog refers to some; "
                        "check the store URL and credentials, nothing was deleted")
    if missing:
        raise GcRefused(f"{len(missing)} referenced objects are missing from the store; nothing was deleted",
                        hint="call lake.fsck() to list them")
    cutoff = time.time() - grace.total_seconds()
    lists = [h for h, mtime in inv.chunklists.items() if h not in referenced and mtime <= cutoff]
    referenced |= repack_ops.chunk_closure(lake, set(inv.chunklists) - set(lists))  # chunks of kept files
    victims = [o for o in listed if o.hash not in referenced and o.mtime <= cutoff]
    report.orphans = sorted(h for h in present if h not in referenced)
    dropped, freed, _notes = repack_ops.collect_packs(lake, inv, referenced, cutoff, dry_run=True)
    loose = {o.hash for o in listed}
    held = listed + [ObjectInfo(h, places[0].size, 0.0) for h, places in inv.packed.items() if h not in loose]
    _note_kept(lake, report, held, set(inv.chunklists), victims + [o for o in held if o.hash in set(dropped)], grace)
    if dry_run:
        report.deleted = sorted({o.hash for o in victims} | set(lists) | set(dropped))
        report.bytes = sum(o.size for o in victims) + freed
        return report
    with lake.collecting():  # every writer in flight is done, and none starts until this block ends
        _refuse_unless_records_agree(lake)  # an open may have quarantined a records file meanwhile
        referenced = _referenced(lake, grace.total_seconds())  # what they committed meanwhile counts
        inv = repack_ops.inventory(lake)  # chunk lists written meanwhile may name chunks in old packs
        lists = [h for h in lists if h not in referenced]
        for digest in lists:
            repack_ops.delete_chunklist(lake, digest)
        referenced |= repack_ops.chunk_closure(lake, set(inv.chunklists) - set(lists))
        deleted = []
        with progress(len(victims), "collecting garbage") as advance:
            for o in victims:
                if o.hash not in referenced and _still_old(lake, o.hash, cutoff):
                    try:
                        lake.store.delete(o.hash)
                        deleted.append(o)
                    except FileNotFoundError:
                        pass  # another gc was first
                advance(1)
        kept = len(victims) - len(deleted)
        if kept:
            report.notes.append(f"{plural(kept, 'object')} referenced or rewritten by writers while gc ran "
                                f"{'was' if kept == 1 else 'were'} kept")
        dropped, freed, notes = repack_ops.collect_packs(lake, inv, referenced, cutoff, dry_run=False, repack=repack)
        report.notes += notes
        report.deleted = sorted({o.hash for o in deleted} | set(lists) | set(dropped))
        report.bytes = sum(o.size for o in deleted) + freed
        _tidy_abandoned(lake, grace.total_seconds())
        if lake.store.local:  # a local lake's cache is its store: its staging files are the store's
            lake.cache.clean_staging(max(grace.total_seconds(), STAGING_GRACE))
    return report


def _note_kept(lake: LakeBase, report: Report, listed: list[Any], chunked: set[str], victims: list[Any],
               grace: dt.timedelta) -> None:
    """Say which objects the grace period keeps, when a gc frees them, and how to free them now.

    Without this, ``rm`` then ``gc`` frees nothing for a day and says nothing:
    a deleted file's object stays while its deletion is younger than the grace
    (a writer elsewhere may reuse it), and so does any object written lately.
    """
    if grace.total_seconds() <= 0:
        return
    live = lake.catalog.referenced_hashes()  # without the grace: only files not deleted
    live |= repack_ops.chunk_closure(lake, live & chunked)  # the chunks of live chunked files are live too
    chosen = {o.hash for o in victims}
    kept = [o for o in listed if o.hash not in live and o.hash not in chosen]
    report.kept = sorted(o.hash for o in kept)
    if not kept:
        return
    until = (dt.datetime.now(dt.timezone.utc) + grace).strftime("%Y-%m-%d %H:%M UTC")
    one = len(kept) == 1
    report.notes.append(
        f"{plural(len(kept), 'object')} ({plural(sum(o.size for o in kept), 'byte')}) of files deleted, or written, "
        f"less than {_span(grace)} ago {'is' if one else 'are'} kept for the grace period: a gc from {until} on "
        f"frees {'it' if one else 'them'}; call lake.gc(dry_run=False, grace=datetime.timedelta(0)) to free "
        f"{'it' if one else 'them'} now, when no other writer is running")


def _span(grace: dt.timedelta) -> str:
    """``a day``, ``7 days``, ``2 hours``: a grace period in words."""
    seconds = grace.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"a {unit}" if n == 1 else f"{n} {unit}s"
    return f"{seconds:g} seconds"


def _refuse_unless_records_agree(lake: LakeBase) -> None:
    """Raise GcRefused while a commit lacks its records file, or records wait outside the catalog or in quarantine."""
    # The catalog first: a commit in it wrote its records file before its COMMIT, so the listing
    # after sees it; a commit that lands in between is young and not judged.
    known = lake.catalog.commit_ids()
    listed = lake.store.list_records()
    grace = roll_forward_grace()
    problems = []
    missing = known - set(listed)
    if lake.shared_log is not None:  # the log holds what a missing records file would: nothing is unknown
        missing -= set(lake.catalog.commit_positions(missing))
    lacking = len(missing)
    if lacking:
        problems.append(f"{lacking} commit{'s' if lacking != 1 else ''} in the catalog "
                        f"{'have' if lacking != 1 else 'has'} no records file")
    unapplied = 0 if lake.shared_log is not None else sum(1 for c in listed if c not in known and is_old(c, grace))
    refused = len(lake.catalog.refused_log_entries()) if lake.shared_log is not None else 0
    if refused:
        problems.append(f"{refused} shared log entr{'ies' if refused != 1 else 'y'} could not be applied here")
    if unapplied:
        problems.append(f"{unapplied} records file{'s are' if unapplied != 1 else ' is'} not in the catalog")
    quarantined = len(lake.store.list_quarantined())
    if quarantined:
        problems.append(f"{quarantined} records file{'s are' if quarantined != 1 else ' is'} in records/quarantine/")
    if problems:
        raise GcRefused(f"the records and the catalog disagree ({'; '.join(problems)}), so gc cannot tell what is "
                        "referenced; nothing was deleted", hint="call lake.fsck() to see which, and fix that first")


def _referenced(lake: LakeBase, grace: float) -> set[str]:
    """Every object the catalog refers to, and those that records files the catalog lacks yet name.

    Objects of files deleted less than ``grace`` seconds ago count too: a writer
    on another machine may have found one still named, reused it, and be
    about to commit (the writer guard only covers this machine's writers).

    Raises:
        GcRefused: such a records file cannot be read, so what it refers to is unknown.
    """
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=grace)
    referenced = lake.catalog.referenced_hashes(deleted_since=since)
    known = lake.catalog.commit_ids()
    # A records file the catalog lacks is a commit in flight (or to roll forward): keep its objects.
    for cid in [c for c in lake.store.list_records() if c not in known]:
        try:
            commit = Commit.from_jsonl(lake.store.read_record(cid), cid)
        except FileNotFoundError:
            continue  # an abandoned commit, removed meanwhile
        except (RecordsDamaged, CatalogVersionError) as exc:
            raise GcRefused(f"cannot tell what records/{cid}.jsonl refers to ({exc}); nothing was deleted") from None
        referenced.update(f["hash"] for f in commit.files if f.get("hash"))
        referenced.update(commit.blob_hashes())
    return referenced


def _still_old(lake: LakeBase, digest: str, cutoff: float) -> bool:
    """Re-check one candidate just before deleting it: a local object must still be there and old."""
    if not lake.store.local:
        return True  # a bucket has no cheap stat; the re-read catalog already covers what writers did
    try:
        return os.stat(lake.cache.path(digest)).st_mtime <= cutoff
    except FileNotFoundError:
        return False


def _tidy_abandoned(lake: LakeBase, grace: float) -> None:
    """Remove the records files and void markers of abandoned commits older than ``grace`` seconds.

    On a team lake, records files its log never published are abandoned too.
    """
    if lake.shared_log is not None:
        known = lake.catalog.commit_ids()
        for cid in lake.store.list_records():
            if cid not in known and is_old(cid, grace):
                lake.store.delete_record(cid)
    voids = lake.store.list_voids()
    if not voids:
        return
    known = lake.catalog.commit_ids()
    for cid in voids:
        if cid not in known and is_old(cid, grace):  # one the catalog has after all stays, for fsck to report
            lake.store.drop_void(cid)
