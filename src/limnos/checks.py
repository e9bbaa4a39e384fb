"""Keeping a lake honest: ``fsck``, ``gc``, ``reindex`` and roll-forward.

Lessons from restic, Borg, git and DVC: ``gc`` deletes only unreferenced
objects older than a grace period, has a dry run, and refuses to delete
anything when the listing looks wrong; ``fsck --read-data`` re-hashes bytes.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import Commit
from .errors import GcRefused, LimnosError
from .progress import progress
from .store import hashing

if TYPE_CHECKING:
    from .lake import Lake

ROLL_FORWARD_GRACE = 120.0  # seconds: a younger records file may belong to a writer mid-commit


@dataclass
class Report:
    """What a check found or did. ``ok`` is False when anything needs attention."""

    action: str
    files: int = 0
    objects: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)  # objects referenced but found nowhere
    remote_only: list[str] = field(default_factory=list)  # referenced objects that only a remote holds
    corrupt: list[str] = field(default_factory=list)  # objects whose bytes do not match their hash
    orphans: list[str] = field(default_factory=list)  # objects no file refers to
    deleted: list[str] = field(default_factory=list)  # objects removed (gc), or would be (dry run)
    rolled_forward: list[str] = field(default_factory=list)  # commits applied from records
    renumbered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _split_absent(lake: "Lake", absent: set[str]) -> tuple[list[str], list[str]]:
    """(missing everywhere, only on a remote) for objects absent from the lake's store.

    A local lake that pulled other people's records legitimately lacks their
    objects until they are read; one listing per remote tells those apart.
    """
    if not absent or not lake.store.local:
        return sorted(absent), []
    remote_only: set[str] = set()
    for remote in lake.remotes.list():
        try:
            remote_only |= absent & set(remote.store.list_hashes())
        except LimnosError as exc:
            raise LimnosError(f"cannot check remote {remote.name!r}: {exc}") from None
    return sorted(absent - remote_only), sorted(remote_only)


def pending_records(lake: "Lake", grace: float = ROLL_FORWARD_GRACE) -> list[str]:
    """Records files whose commit the catalog lacks, older than ``grace`` seconds."""
    listed = lake.store.list_records()
    if not listed:
        return []
    known = lake.catalog.commit_ids()
    missing = [c for c in listed if c not in known]
    if not missing or grace <= 0:
        return missing
    cutoff = time.time() - grace
    return [c for c in missing if _ulid_seconds(c) < cutoff]


def _ulid_seconds(ulid: str) -> float:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = 0
    for ch in ulid[:10]:
        value = value * 32 + alphabet.index(ch)
    return value / 1000.0


def roll_forward(lake: "Lake", grace: float = ROLL_FORWARD_GRACE) -> Report:
    """Apply records files the catalog lacks (a crash between the two)."""
    report = Report("roll-forward")
    if lake.catalog.is_empty():
        grace = 0  # a lost or new catalog: every record is history to restore, none is in flight
    ids = pending_records(lake, grace)
    if not ids:
        return report
    commits = _load_commits(lake, ids, report)
    renumbered = lake.catalog.replay(commits)
    report.rolled_forward = [c.id for c in commits]
    report.renumbered = [f"{n}@{a} was {n}@{b} in its records" for n, b, a in renumbered]
    return report


def _load_commits(lake: "Lake", ids: list[str], report: Report) -> list[Commit]:
    commits = []
    with progress(len(ids), "reading records") as advance:
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            for cid, data in lake.store.read_records(batch).items():
                try:
                    commits.append(Commit.from_jsonl(data))
                except (ValueError, KeyError) as exc:
                    report.notes.append(f"records {cid} is unreadable and was skipped: {exc}")
            advance(len(batch))
    commits.sort(key=lambda c: (c.created_at, c.id))
    return commits


def reindex(lake: "Lake", force: bool = False) -> Report:
    """Rebuild the catalog from the records files in the store."""
    report = Report("reindex")
    if not lake.catalog.is_empty():
        if not force:
            raise LimnosError("the catalog is not empty; run 'limnos reindex --force' to rebuild it from the store")
        lake.catalog.wipe()
    ids = lake.store.list_records()
    commits = _load_commits(lake, ids, report)
    renumbered = lake.catalog.replay(commits)
    report.rolled_forward = [c.id for c in commits]
    report.renumbered = [f"{n}@{a} was {n}@{b} in its records" for n, b, a in renumbered]
    report.files = lake.catalog.count_files()
    return report


def fsck(lake: "Lake", read_data: bool = False, subset: float | None = None) -> Report:
    """Every cataloged object exists (and with ``read_data``, hashes right); list orphans."""
    report = Report("fsck")
    pending = pending_records(lake, grace=ROLL_FORWARD_GRACE)
    if pending:
        report.notes.append(f"{len(pending)} records files are not in the catalog; open the lake or run 'limnos reindex' to roll them forward")
    sizes = lake.catalog.object_sizes()
    referenced = lake.catalog.referenced_hashes()
    report.files = lake.catalog.count_files()
    listed = {o.hash: o for o in lake.store.iter_objects()}
    report.objects = len(listed)
    for digest in sorted(referenced):
        if digest in listed and digest in sizes and listed[digest].size != sizes[digest]:
            report.corrupt.append(digest)
    report.missing, report.remote_only = _split_absent(lake, referenced - set(listed))
    report.orphans = sorted(set(listed) - referenced)
    if read_data:
        todo = sorted(d for d in referenced if d in listed and d not in report.corrupt)
        if subset is not None:
            if not 0 < subset <= 1:
                raise ValueError("subset is a fraction in (0, 1], such as 0.1 for 10%")
            todo = random.sample(todo, max(1, int(len(todo) * subset))) if todo else []
        with progress(len(todo), "verifying") as advance:
            for digest in todo:
                with lake.store.open(digest) as f:
                    actual, size = hashing.hash_stream(f)
                report.bytes += size
                if actual != digest:
                    report.corrupt.append(digest)
                advance(1)
    return report


def gc(lake: "Lake", dry_run: bool = True, grace: dt.timedelta = dt.timedelta(days=1)) -> Report:
    """Delete objects that no file refers to and that are older than ``grace``."""
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
    missing, _remote_only = _split_absent(lake, referenced - present)
    if missing and not listed:
        raise GcRefused("the store lists no objects but the catalog refers to some; check the store URL and credentials, nothing was deleted")
    if missing:
        raise GcRefused(f"{len(missing)} referenced objects are missing from the store (run 'limnos fsck'); nothing was deleted")
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
    if lake.store.local:
        lake.store.clean_staging(grace.total_seconds())  # type: ignore[attr-defined]
    return report
