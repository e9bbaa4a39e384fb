"""The records files as the lake's write-ahead log: roll-forward, the records check, and the report of checks.

A commit writes its records file inside the catalog transaction, before
COMMIT. A records file whose commit the catalog lacks is therefore one of:

* a commit in flight (a writer between the two): younger than the grace;
* a commit a crash interrupted: older than the grace, so opening the lake
  rolls it forward (its caller never heard back, so applying it is honest);
* an abandoned commit, whose transaction failed and whose caller got the
  error: its records file was removed, or voided with ``records/<id>.void``,
  and is never applied (the store leaves voided files out of its listing).

The grace is 120 seconds, or ``$LIMNOS_ROLL_FORWARD_GRACE`` seconds when set
(read at every open and check; tests set it to 0 instead of waiting).

A records file that cannot be applied (damaged, crafted, or refused by the
database) is moved to ``records/quarantine/`` with a warning that names it,
so that one bad file never keeps the lake from opening; ``fsck`` reports it
and ``gc`` refuses to run until it is dealt with.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..catalog import Commit
from ..catalog.records import is_commit_id
from ..errors import CatalogVersionError, LimnosError, RecordsDamaged, StoreError
from ..names import ulid_seconds
from ..progress import progress

if TYPE_CHECKING:
    from .base import LakeBase

ROLL_FORWARD_GRACE = 120.0  # seconds: a younger records file may belong to a writer mid-commit
GRACE_ENV = "LIMNOS_ROLL_FORWARD_GRACE"
log = logging.getLogger("limnos")


def roll_forward_grace() -> float:
    """Seconds before a records file the catalog lacks counts as a crash: ``$LIMNOS_ROLL_FORWARD_GRACE``, else 120.

    Raises:
        LimnosError: the variable is set to something that is not a number of seconds >= 0.
    """
    text = os.environ.get(GRACE_ENV, "").strip()
    if not text:
        return ROLL_FORWARD_GRACE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0 or math.isinf(value):
        raise LimnosError(f"{GRACE_ENV}={text!r} is not a number of seconds; set it to one (such as 120) or unset it")
    return value


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
    quarantined: list[str] = field(default_factory=list)  # corrupt objects moved aside to <store>/quarantine/
    orphans: list[str] = field(default_factory=list)  # objects no file refers to
    deleted: list[str] = field(default_factory=list)  # objects removed (gc), or would be (dry run)
    kept: list[str] = field(default_factory=list)  # gc: objects the grace period keeps (young, or of files deleted lately)
    rolled_forward: list[str] = field(default_factory=list)  # commits applied from records
    renumbered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    records_missing: list[str] = field(default_factory=list)  # commits in the catalog without a records file
    records_damaged: list[str] = field(default_factory=list)  # records files that do not check out (or apply)
    records_unapplied: list[str] = field(default_factory=list)  # records older than the grace the catalog lacks
    records_quarantined: list[str] = field(default_factory=list)  # records files in records/quarantine/
    packs_damaged: list[str] = field(default_factory=list)  # packs whose index is damaged or names a missing pack

    @property
    def ok(self) -> bool:
        """False when an object is missing or corrupt, or the records and the catalog disagree."""
        return not (self.missing or self.corrupt or self.records_missing or self.records_damaged
                    or self.records_unapplied or self.records_quarantined or self.packs_damaged)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return {**asdict(self), "ok": self.ok}


def is_old(commit_id: str, grace: float) -> bool:
    """True when a records file named ``commit_id`` is older than ``grace`` seconds.

    A name that is no commit id was never made by a writer in flight: it counts as old.
    """
    if not is_commit_id(commit_id):
        return True
    return grace <= 0 or ulid_seconds(commit_id) < time.time() - grace


def pending_records(lake: LakeBase, grace: float | None = None) -> list[str]:
    """Records files whose commit the catalog lacks, older than ``grace`` seconds (default: :func:`roll_forward_grace`)."""
    listed = lake.store.list_records()
    if not listed:
        return []
    grace = roll_forward_grace() if grace is None else grace
    known = lake.catalog.commit_ids()
    return [c for c in listed if c not in known and is_old(c, grace)]


def roll_forward(lake: LakeBase, grace: float | None = None) -> Report:
    """Apply records files the catalog lacks (a crash between the two); quarantine those that cannot be applied.

    Args:
        lake: the lake, just opened.
        grace: seconds a records file must be old (default: :func:`roll_forward_grace`);
            0 for an empty catalog, whose records are all history to restore.
    """
    report = Report("roll-forward")
    grace = roll_forward_grace() if grace is None else grace  # read at every open: a bad value fails early
    if lake.catalog.is_empty():
        grace = 0  # a lost or new catalog: every record is history to restore, none is in flight
    ids = pending_records(lake, grace)
    if not ids:
        return report
    reasons: dict[str, str] = {}
    commits = load_commits(lake, ids, report, reasons)
    apply_commits(lake, commits, report, reasons)
    quarantine(lake, report, reasons)
    return report


def apply_commits(lake: LakeBase, commits: list[Commit], report: Report, reasons: dict[str, str]) -> None:
    """Replay ``commits``; those the catalog refuses go to ``report.records_damaged``, with why in ``reasons``."""
    renumbered, refused = lake.catalog.replay_each(commits)
    for cid, why in refused.items():
        report.records_damaged.append(cid)
        reasons[cid] = f"records/{cid}.jsonl cannot be applied ({why}); restore it from a backup or a remote"
        report.notes.append(reasons[cid])
    report.rolled_forward = [c.id for c in commits if c.id not in refused]
    report.renumbered = [f"{n}@{a} was {n}@{b} in its records" for n, b, a in renumbered]


def quarantine(lake: LakeBase, report: Report, reasons: dict[str, str]) -> None:
    """Move every records file in ``report.records_damaged`` to ``records/quarantine/``, warning about each."""
    for cid in report.records_damaged:
        try:
            where = lake.store.quarantine_record(cid)
        except (OSError, StoreError) as exc:
            log.warning("records/%s.jsonl cannot be applied and could not be moved to quarantine (%s); "
                        "move it out of records/ by hand", cid, exc)
            continue
        report.records_quarantined.append(cid)
        log.warning("%s; it was moved to %s", reasons.get(cid, f"records/{cid}.jsonl cannot be applied"),
                    os.path.relpath(where, lake.store.root) if lake.store.local else where)
    report.records_damaged = [c for c in report.records_damaged if c not in report.records_quarantined]


def load_commits(lake: LakeBase, ids: list[str], report: Report, reasons: dict[str, str] | None = None) -> list[Commit]:
    """Read and check the given records files, in time order.

    A damaged one goes to ``report.records_damaged`` (with a note, and in
    ``reasons``, saying why); one from a newer limnos, or one that vanished
    meanwhile, is noted and skipped.
    """
    commits = list(iter_commits(lake, ids, report, reasons))
    commits.sort(key=lambda c: (c.created_at, c.id))
    return commits


def iter_commits(lake: LakeBase, ids: list[str], report: Report,
                 reasons: dict[str, str] | None = None) -> Iterator[Commit]:
    """:func:`load_commits` one at a time, in the order given, holding only a batch in memory."""
    with progress(len(ids), "reading records") as advance:
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            for cid, data in _read(lake, batch, report).items():
                try:
                    commit = Commit.from_jsonl(data, cid)
                except RecordsDamaged as exc:
                    report.records_damaged.append(cid)
                    report.notes.append(str(exc))
                    if reasons is not None:
                        reasons[cid] = str(exc)
                    continue
                except CatalogVersionError as exc:
                    report.notes.append(f"{exc} (skipped)")
                    continue
                yield commit
            advance(len(batch))


def _read(lake: LakeBase, ids: list[str], report: Report) -> dict[str, bytes]:
    """The bytes of the given records files; one that cannot be read is noted and left out."""
    try:
        return lake.store.read_records(ids)
    except (OSError, StoreError):
        pass  # find the one that failed
    out = {}
    for cid in ids:
        try:
            out[cid] = lake.store.read_record(cid)
        except FileNotFoundError:
            continue  # removed meanwhile: an abandoned commit tidied away
        except (OSError, StoreError) as exc:
            report.notes.append(f"records/{cid}.jsonl cannot be read: {exc}")
    return out


def check_records(lake: LakeBase, report: Report, read: bool = True) -> None:
    """Compare the records files with the catalog both ways, filling the ``records_*`` fields of ``report``.

    A commit in the catalog without its records file, a records file older
    than the grace that the catalog lacks, one in quarantine, and (with
    ``read``) one whose checksum or fields do not check out: each is listed.
    """
    known = lake.catalog.commit_ids()  # first: a commit in it has its records file by then (written before COMMIT)
    listed = lake.store.list_records()
    present = set(listed)
    report.records_missing = sorted(known - present)
    if lake.shared_log is not None and report.records_missing:
        # A team lake's log holds every published commit's records: a missing copy is restorable, not lost.
        logged = lake.catalog.commit_positions(report.records_missing)
        if logged:
            report.notes.append(f"{len(logged)} published commits have no records file yet (a writer stopped "
                                "after publishing); the shared log holds them: fsck(repair=True) restores the files")
        report.records_missing = [c for c in report.records_missing if c not in logged]
    grace = roll_forward_grace()
    unapplied = [c for c in listed if c not in known and is_old(c, grace)]
    if read:
        for _ in iter_commits(lake, listed, report):
            pass  # checked as read; nothing kept
        damaged = set(report.records_damaged)
        unapplied = [c for c in unapplied if c not in damaged]
    if lake.shared_log is not None:
        # A team lake applies only what its log publishes: a records file outside it is a writer that died
        # before publishing (its caller never heard back), never to be applied; gc tidies it away.
        if unapplied:
            report.notes.append(f"{len(unapplied)} records files were never published to the shared log (a writer "
                                "stopped before publishing); they are never applied, and gc removes them")
        unapplied = []
        for seq, why in sorted(lake.catalog.refused_log_entries().items()):
            report.records_damaged.append(f"log/{seq}")
            report.notes.append(f"log entry {seq} could not be applied here ({why})")
    report.records_unapplied = unapplied
    report.records_quarantined = lake.store.list_quarantined()
    if report.records_unapplied:
        report.notes.append(f"{len(report.records_unapplied)} records files older than {grace:.0f} s are not in the "
                            "catalog; open the lake again to roll them forward")
    if report.records_quarantined:
        report.notes.append(f"{len(report.records_quarantined)} records files are in records/quarantine/; restore "
                            "them from a backup or a remote, or delete them once their commits are not needed")
