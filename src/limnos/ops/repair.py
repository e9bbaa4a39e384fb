"""``fsck --repair``: replace corrupt and missing objects with clean copies, verified against their hashes.

A read that finds an object corrupt moves it to ``quarantine/`` and raises;
``fsck --read-data`` finds the ones nobody read yet. Repair runs the same
check, then:

* in a local lake, moves what is still corrupt to quarantine (it is never
  deleted) and downloads every corrupt, missing or quarantined object from the
  remotes, default first. Every download is hashed before it is kept, so a
  hostile or damaged remote cannot plant wrong bytes: its copy is refused and
  the next remote is asked;
* in a lake on a remote store, uploads this machine's cached copy (verified
  first) of every object the store lacks or holds damaged.

The report lists what was ``repaired`` and what was not (``unrepaired``); its
``missing`` and ``corrupt`` keep only the latter, so ``ok`` says whether the
lake is whole now.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..catalog import Commit
from ..core.recovery import Report
from ..errors import IntegrityError, LimnosError, redact_url
from ..store.transfer import TransferReport
from .fsck import fsck
from .sync import download_objects

if TYPE_CHECKING:
    from ..core.base import LakeBase


@dataclass
class RepairReport(Report):
    """An fsck report, plus what ``repair`` did about the objects it found bad."""

    repaired: list[str] = field(default_factory=list)  # corrupt or missing objects replaced by a verified copy
    unrepaired: list[str] = field(default_factory=list)  # those no source had a good copy of


def repair(lake: LakeBase, read_data: bool = False, subset: float | None = None) -> RepairReport:
    """Check the lake as :func:`~limnos.ops.fsck.fsck` does, then repair every corrupt or missing object.

    Args:
        lake: the lake to check and repair.
        read_data: re-hash every object, so corruption of the same size is found too.
        subset: with ``read_data``, check only this random share.

    Returns:
        The check's findings with ``repaired`` and ``unrepaired`` filled in;
        ``missing`` and ``corrupt`` list only what is still bad.

    Raises:
        ValueError: ``subset`` is not in (0, 1].
        LimnosError: a remote that may hold the absent objects cannot be listed.
    """
    found = fsck(lake, read_data=read_data, subset=subset)
    report = RepairReport(found.action)
    report.__dict__.update(found.__dict__)  # every field of the check, whatever fields Report grows
    if lake.store is lake.cache:
        _repair_from_remotes(lake, report)
    else:
        _repair_store_from_cache(lake, report)
    if lake.shared_log is not None:
        _restore_records_from_log(lake, report)
    fixed = set(report.repaired)
    report.missing = [d for d in report.missing if d not in fixed]
    report.corrupt = [d for d in report.corrupt if d not in fixed]
    report.remote_only = [d for d in report.remote_only if d not in fixed]
    report.quarantined = lake.cache.quarantined()
    return report


def _restore_records_from_log(lake: LakeBase, report: RepairReport) -> None:
    """On a team lake, write the records file of every published commit that lacks one, from its log entry."""
    shared = lake.shared_log
    if shared is None:
        return
    missing = set(lake.catalog.commit_ids()) - set(lake.store.list_records())
    restored = 0
    for cid, seq in sorted(lake.catalog.commit_positions(missing).items()):
        data = shared.read(seq)
        if data is None:
            continue
        with contextlib.suppress(LimnosError):
            if Commit.from_jsonl(data).id == cid:  # the entry is checked whole before its copy is trusted
                lake.store.write_record(cid, data)
                restored += 1
    if restored:
        report.notes.append(f"restored {restored} records files from the shared log")


def _repair_from_remotes(lake: LakeBase, report: RepairReport) -> None:
    """A local lake: quarantine what is corrupt, then download clean copies (verified) from the remotes."""
    cache = lake.cache
    quarantined = set(cache.quarantined())
    for digest in report.corrupt:
        with contextlib.suppress(IntegrityError, FileNotFoundError):
            cache.verify(digest)  # still corrupt: moved to quarantine, out of the download's way
    wanted = set(report.corrupt) | set(report.missing) | (set(report.remote_only) & quarantined)
    todo = sorted(d for d in wanted if not cache.has(d))
    report.repaired += sorted(wanted - set(todo))  # fixed meanwhile (another repair, or a read)
    for remote in sorted(lake.remotes.list(), key=lambda r: r.name != lake.remotes.default):
        if not todo:
            break
        where = redact_url(remote.store.url)
        try:
            listing = remote.store.list_hashes()
        except LimnosError as exc:
            report.notes.append(f"remote {remote.name!r} could not be listed: {exc}")
            continue
        held = [d for d in todo if d in listing]
        transfers = TransferReport("repair")
        try:
            download_objects(cache, remote.store, held, None, transfers)
        except IntegrityError as exc:  # a damaged (or hostile) remote copy was refused, not kept
            report.notes.append(f"remote {remote.name!r} ({where}) holds a corrupt copy: {exc}")
        for line in transfers.failed:
            report.notes.append(f"remote {remote.name!r}: {line}")
        got = [d for d in held if cache.has(d)]
        report.repaired += got
        todo = [d for d in todo if d not in got]
    report.unrepaired = todo
    if todo:
        report.notes.append(f"{len(todo)} objects could not be repaired: no remote has a good copy; "
                            "push them from a machine that has them, then call lake.fsck(repair=True) again")


def _repair_store_from_cache(lake: LakeBase, report: RepairReport) -> None:
    """A lake on a remote store: upload this machine's verified copies of the objects the store lacks or holds damaged."""
    cache, store = lake.cache, lake.store
    corrupt = set(report.corrupt)
    for digest in sorted(corrupt | set(report.missing)):
        try:
            cache.verify(digest)
        except (IntegrityError, FileNotFoundError):
            report.unrepaired.append(digest)  # no good copy here either
            continue
        try:
            if digest in corrupt:
                store.delete(digest)  # the damaged key: objects are never overwritten in place
            with cache.export(digest) as path:
                store.put_file(path, digest)
        except (LimnosError, OSError) as exc:
            report.notes.append(f"object {digest[:12]} could not be uploaded: {exc}")
            report.unrepaired.append(digest)
            continue
        report.repaired.append(digest)
    if report.unrepaired:
        report.notes.append(f"{len(report.unrepaired)} objects could not be repaired: this machine has no good copy; "
                            "call lake.fsck(repair=True) where one is cached")
