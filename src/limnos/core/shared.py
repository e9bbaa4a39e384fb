"""Team lakes on a bare bucket: catching up on the shared log, and publishing to it.

A lake whose store is a bucket and whose catalog is a SQLite file on each
machine (``shared: log`` in its settings) keeps every machine's catalog equal
through the bucket's commit log (:mod:`limnos.store.log`):

* **Publishing.** A commit is written inside its catalog transaction: rows,
  then the log entry after the last one this catalog applied, created only if
  absent, then the records file (a copy of the entry's bytes). When another machine took that entry, the
  transaction rolls back (:class:`LogRaceLost`), this machine catches up, and
  the commit is tried again with fresh versions. Only a published commit is
  acknowledged; a published commit whose local COMMIT then fails has still
  taken effect, and comes back through the next catch-up.
* **Catching up.** Before every read and write the lake applies the entries
  it has not seen, in order, so a file created on one machine is visible on
  another at its next call, with the same version, and a step run on one is
  a hit on the other. An entry that cannot be applied (damaged, crafted,
  refused by the database) is remembered as refused, so the log never stalls;
  ``fsck`` reports it.

Records files that no log entry publishes (a writer died between the two) are
never applied on a team lake: the log, not the records listing, is the truth.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import TYPE_CHECKING

from ..catalog import Commit
from ..errors import CatalogVersionError, LimnosError, RecordsDamaged, TeamModeUnsupported
from ..store.log import SharedLog
from .recovery import Report

if TYPE_CHECKING:
    from .base import LakeBase

log = logging.getLogger("limnos")
INTERVAL_ENV = "LIMNOS_CATCH_UP_INTERVAL"
#: Tries of one commit against other machines' commits before giving up (each loss means another machine won).
MAX_ATTEMPTS = 200


class LogRaceLost(Exception):
    """Another machine published the log entry this commit wanted: catch up and try again (internal)."""


class AlreadyPublished(Exception):
    """A retried transaction found its commit already published: it took effect (internal)."""


def catch_up_interval() -> float:
    """Seconds a lake may go without asking the bucket for new commits: ``$LIMNOS_CATCH_UP_INTERVAL``, else 0.

    0 means every read asks (one request that usually finds nothing new).
    """
    text = os.environ.get(INTERVAL_ENV, "").strip()
    try:
        value = float(text) if text else 0.0
    except ValueError:
        raise LimnosError(f"{INTERVAL_ENV}={text!r} is not a number of seconds; set it to one (such as 0.5) "
                          "or unset it") from None
    return max(value, 0.0)


def catch_up(lake: LakeBase, shared: SharedLog) -> Report:
    """Apply every log entry this lake's catalog has not seen, in order.

    Returns a report: ``rolled_forward`` lists the commits applied,
    ``records_damaged`` the entries refused (with why in ``notes``).
    """
    report = Report("catch-up")
    position = lake.catalog.log_position()
    for batch in shared.read_after(position):
        commits: list[Commit] = []
        refused: dict[int, str] = {}
        for seq, data in batch:
            try:
                commit = Commit.from_jsonl(data)
            except (RecordsDamaged, CatalogVersionError) as exc:
                refused[seq] = str(exc)
                continue
            commit.seq = seq
            commits.append(commit)
        seqs = lake.catalog.commit_seqs([c.id for c in commits])
        fresh = []
        for commit in commits:
            if commit.id not in seqs:
                fresh.append(commit)
            elif seqs[commit.id] != commit.seq:
                refused[commit.seq or 0] = f"repeats commit {commit.id} of entry {seqs[commit.id]}"
        if fresh:
            renumbered, refusals = lake.catalog.replay_each(fresh)
            for commit in fresh:
                if commit.id in refusals:
                    refused[commit.seq or 0] = refusals[commit.id]
                else:
                    report.rolled_forward.append(commit.id)
            if renumbered:
                # Never expected: every published commit allocated its versions after all before it.
                report.renumbered += [f"{n}@{a} was {n}@{b} in the log" for n, b, a in renumbered]
                log.warning("the shared log renumbered versions on this machine: %s", "; ".join(report.renumbered))
        if refused:
            lake.catalog.refuse_log_entries(refused)
            for seq, reason in sorted(refused.items()):
                note = f"log entry {seq} cannot be applied ({reason}); it was skipped"
                report.notes.append(note)
                report.records_damaged.append(str(seq))
                log.warning("%s", note)
    return report


def publish(shared: SharedLog, commit: Commit, data: bytes) -> None:
    """Publish ``commit`` (its records bytes) as log entry ``commit.seq``.

    Raises:
        LogRaceLost: another machine published that entry first.
        RemoteError: the bucket cannot be written.
    """
    if commit.seq is None:
        raise ValueError("a commit gets its log position inside its transaction (Catalog.commit(sequenced=True))")
    if not shared.publish(commit.seq, data):
        raise LogRaceLost(commit.seq)


def back_off(attempt: int) -> None:
    """Wait a little before trying a lost commit again, longer after each loss (with jitter)."""
    if attempt > 1:
        time.sleep(random.uniform(0, min(0.002 * 2 ** min(attempt, 8), 0.5)))


def probe_or_refuse(shared: SharedLog, url: str) -> None:
    """Check that the bucket refuses a second create of one key; refuse team mode if it does not.

    Raises:
        TeamModeUnsupported: the store overwrites instead (``rclone serve s3`` does), or has no such create.
    """
    if shared.probe():
        return
    raise TeamModeUnsupported(
        f"the store at {url} does not honour create-only-if-absent writes (If-None-Match), so machines sharing "
        "it could disagree on versions",
        hint="share a PostgreSQL catalog instead (limnos.init(url, catalog='postgresql://...')), or pass team=False "
             "for a lake that only this machine writes", url=url)
