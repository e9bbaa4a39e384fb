"""The records files as the lake's write-ahead log: roll-forward, and the report of checks.

A commit writes its records file inside the catalog transaction, before
COMMIT. A records file whose commit the catalog lacks is therefore either a
commit in flight (a writer between the two) or one a crash interrupted. Once
it is older than the grace period, opening the lake rolls it forward.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..catalog import Commit
from ..names import ulid_seconds
from ..progress import progress

if TYPE_CHECKING:
    from .base import LakeBase

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
    quarantined: list[str] = field(default_factory=list)  # corrupt objects moved aside to <store>/quarantine/
    orphans: list[str] = field(default_factory=list)  # objects no file refers to
    deleted: list[str] = field(default_factory=list)  # objects removed (gc), or would be (dry run)
    rolled_forward: list[str] = field(default_factory=list)  # commits applied from records
    renumbered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """False when an object is missing or corrupt."""
        return not (self.missing or self.corrupt)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        return {**asdict(self), "ok": self.ok}


def pending_records(lake: LakeBase, grace: float = ROLL_FORWARD_GRACE) -> list[str]:
    """Records files whose commit the catalog lacks, older than ``grace`` seconds."""
    listed = lake.store.list_records()
    if not listed:
        return []
    known = lake.catalog.commit_ids()
    missing = [c for c in listed if c not in known]
    if not missing or grace <= 0:
        return missing
    cutoff = time.time() - grace
    return [c for c in missing if ulid_seconds(c) < cutoff]


def roll_forward(lake: LakeBase, grace: float = ROLL_FORWARD_GRACE) -> Report:
    """Apply records files the catalog lacks (a crash between the two)."""
    report = Report("roll-forward")
    if lake.catalog.is_empty():
        grace = 0  # a lost or new catalog: every record is history to restore, none is in flight
    ids = pending_records(lake, grace)
    if not ids:
        return report
    commits = load_commits(lake, ids, report)
    renumbered = lake.catalog.replay(commits)
    report.rolled_forward = [c.id for c in commits]
    report.renumbered = [f"{n}@{a} was {n}@{b} in its records" for n, b, a in renumbered]
    return report


def load_commits(lake: LakeBase, ids: list[str], report: Report) -> list[Commit]:
    """Read the given records files, in time order; an unreadable one is noted in ``report`` and skipped."""
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


