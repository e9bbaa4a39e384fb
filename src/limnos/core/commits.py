"""The commit kernel: the one place that builds and writes a commit.

Every write of the lake (an add, a create, a step, a metadata batch, a lock,
a datasource scan) is one commit: rows for files, lineage edges, metadata and
other tables, written in this order:

1. the objects the rows name (the caller stores them first, through
   :meth:`LakeBase.store_staged <limnos.core.base.LakeBase.store_staged>`,
   inside :meth:`LakeBase.writing <limnos.core.base.LakeBase.writing>`, which
   keeps gc from deleting them until the commit is in);
2. the records file ``<store>/records/<commit-id>.jsonl``, inside the
   catalog transaction after the rows are inserted (so a constraint failure
   aborts before the log exists); on a team lake the entry in the bucket's
   shared log comes first (see :mod:`limnos.core.shared`);
3. COMMIT.

A call that raised never takes effect later: when the transaction fails
after the records file was written, the records file is removed (or, if the
store refuses, voided with ``records/<id>.void``) so that no roll-forward
applies it. Only a crash (the process gone) leaves a records file without its
commit, and that one is rolled forward: its caller never heard back, so
either outcome is honest.

Features build commits with :class:`CommitBuilder` and never touch the
catalog's write path themselves.

Tests make the path fail at its named points with :data:`crash_points`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..catalog import Commit, FileRow
from ..catalog import values as metavalues
from ..errors import CommitContention, MetadataError
from ..names import new_id, validate_name
from . import shared
from .files import File
from .runs import now

if TYPE_CHECKING:
    from ..catalog.catalog import StepHit
    from .base import LakeBase

#: The hash that stands for a blob in a metadata batch that is only being checked.
_CHECK_ONLY_BLOB = "0" * 64
log = logging.getLogger("limnos")
T = TypeVar("T")

#: The named points of the commit path, in order: objects stored; rows inserted but no
#: records file yet; records file written but no COMMIT yet; COMMIT done, not yet returned.
POINTS = ("after_objects", "in_transaction", "after_records", "after_commit")


class SimulatedCrash(BaseException):
    """Stands for the death of the process at a crash point: the commit path cleans nothing up for it.

    For tests that want a crash without a subprocess. A ``BaseException``, so
    that code catching ``Exception`` lets it through as it would a kill.
    """

    @classmethod
    def raise_it(cls, point: str) -> None:
        """A crash-point action: raise this (``crash_points.set(point, SimulatedCrash.raise_it)``)."""
        raise cls(f"simulated crash at {point}")


def kill_process(point: str) -> None:
    """A crash-point action: SIGKILL this process, so that nothing at all runs after the point."""
    os.kill(os.getpid(), signal.SIGKILL)


class CrashPoints:
    """Actions to run at the named points of the commit path (see :data:`POINTS`); tests only.

    An action is called with the point's name: it may raise (the commit fails
    there, as a full disk or a lost connection would), raise
    :class:`SimulatedCrash`, or kill the process (:func:`kill_process`).
    With nothing set a point costs one test of an empty dict.
    """

    def __init__(self) -> None:
        self._actions: dict[str, Callable[[str], None]] = {}

    def set(self, point: str, action: Callable[[str], None]) -> None:
        """Run ``action`` at ``point`` from now on (in every thread).

        Raises:
            ValueError: ``point`` is not one of :data:`POINTS`.
        """
        if point not in POINTS:
            raise ValueError(f"no crash point {point!r}; the points are {', '.join(POINTS)}")
        self._actions[point] = action

    def clear(self, point: str | None = None) -> None:
        """Remove the action at ``point`` (every action when None)."""
        if point is None:
            self._actions.clear()
        else:
            self._actions.pop(point, None)

    def armed(self) -> list[str]:
        """The points that have an action, in commit order."""
        return [p for p in POINTS if p in self._actions]

    def hit(self, point: str) -> None:
        """Run the action set at ``point``, if any."""
        if self._actions:
            action = self._actions.get(point)
            if action is not None:
                action(point)


#: The crash points of this process's commit path.
crash_points = CrashPoints()


def encode_metadata(lake: LakeBase, file_ids: Sequence[str], metadata: Mapping[str, Any] | None,
                    deleted_keys: Sequence[str] = (), check_only: bool = False) -> list[dict[str, Any]]:
    """Validate a metadata batch and encode it as catalog rows, one per file and key.

    Types are checked against the lake's fixed key types. Blob values are
    stored as objects, unless ``check_only`` is set: then nothing is stored and
    the rows only prove the batch is valid.

    Raises:
        MetadataError: ``metadata`` is not a mapping, or a key is invalid.
        SchemaError: a value's type differs from its key's fixed type.
    """
    if not metadata and not deleted_keys:
        return []
    if metadata is not None and not isinstance(metadata, Mapping):
        raise MetadataError(f"metadata must be a dict of key -> value, not {type(metadata).__name__}")
    values = metavalues.validate_metadata(metadata)  # before any query: a bad key must never reach the database
    unset = [k for k, v in values.items() if v is None]  # None as a value unsets the key
    values = {k: v for k, v in values.items() if v is not None}
    deleted_keys = [*deleted_keys, *(k for k in unset if k not in deleted_keys)]
    fixed = lake.catalog.key_types(list(values))
    encoded: list[tuple[str, metavalues.Encoded]] = []
    for key, value in values.items():
        metavalues.validate_key(key)
        vtype = metavalues.check_type(key, value, fixed.get(key))
        if vtype == "blob":
            value = _CHECK_ONLY_BLOB if check_only else lake.store_blob(bytes(value))
        encoded.append((key, metavalues.encode(value, vtype)))
    rows: list[dict[str, Any]] = []
    for file_id in file_ids:
        for key, (vtype, v_int, v_float, v_str) in encoded:
            rows.append({"file_id": file_id, "key": key, "vtype": vtype, "v_int": v_int,
                         "v_float": v_float, "v_str": v_str, "deleted": False})
        for key in deleted_keys:
            rows.append({"file_id": file_id, "key": key, "vtype": "deleted", "v_int": None,
                         "v_float": None, "v_str": None, "deleted": True})
    return rows


class CommitBuilder:
    """One commit being built: files, lineage edges, metadata and other rows; then written once.

    Get one from :meth:`LakeBase.new_commit <limnos.core.base.LakeBase.new_commit>`.
    The rows are plain dicts in the catalog's column names; :attr:`extra`
    holds rows of other tables (tombstone, lock, step, datasource...), each
    with its ``"type"``.
    """

    def __init__(self, lake: LakeBase, kind: str) -> None:
        self.lake = lake
        self.commit = Commit(id=new_id(), created_at=now(), kind=kind, run=lake.run_row())
        self._records_written = False
        self._published = False

    @classmethod
    def adopting(cls, lake: LakeBase, commit: Commit) -> CommitBuilder:
        """A builder that writes an existing commit (one pulled from a remote) as this lake's own.

        Its versions are allocated afresh on :meth:`write`, after every version
        this lake holds, so a team lake publishes it like any other commit.
        """
        builder = cls(lake, commit.kind)
        builder.commit = commit
        return builder

    # -- what it holds ---------------------------------------------------------
    @property
    def id(self) -> str:
        """The commit id (a ULID): also the name of its records file."""
        return self.commit.id

    @property
    def created_at(self) -> Any:
        """When the commit was begun (UTC): the creation time of every file in it."""
        return self.commit.created_at

    @property
    def run(self) -> dict[str, Any]:
        """The provenance row of the run this commit belongs to."""
        return self.commit.run or {}

    @property
    def run_id(self) -> str | None:
        """The id of the run this commit belongs to."""
        return self.commit.run_id

    @property
    def files(self) -> list[dict[str, Any]]:
        """The file rows added so far."""
        return self.commit.files

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """The metadata rows added so far."""
        return self.commit.metadata

    @property
    def extra(self) -> list[dict[str, Any]]:
        """Rows of other tables, each with its ``"type"``."""
        return self.commit.extra

    def is_empty(self) -> bool:
        """True when the commit would change nothing."""
        c = self.commit
        return not (c.files or c.inputs or c.metadata or c.extra)

    # -- adding rows -------------------------------------------------------------
    def add_file(self, name: str, digest: str | None, size: int, *, inputs: Sequence[str] = (),
                 metadata: Mapping[str, Any] | None = None, kind: str = "object",
                 uri: str | None = None) -> dict[str, Any]:
        """Add a file row for a stored object (or a reference), with its inputs and metadata.

        The version is allocated when the commit is written. Returns the row;
        its ``"id"`` is the new file's id.
        """
        name = validate_name(name)  # every file row of every commit: NFC, no control or bidi character
        row: dict[str, Any] = {"id": new_id(), "name": name, "version": None, "hash": digest, "size": size,
               "created_at": self.commit.created_at, "run_id": self.commit.run_id, "kind": kind, "uri": uri}
        self.commit.files.append(row)
        if inputs:
            self.add_inputs(row["id"], inputs)
        if metadata:
            self.add_metadata([row["id"]], metadata)
        return row

    def add_inputs(self, file_id: str, input_ids: Sequence[str]) -> None:
        """Record ``input_ids`` (in order) as the lineage inputs of ``file_id``."""
        self.commit.inputs.extend({"file_id": file_id, "input_id": i, "position": n}
                                  for n, i in enumerate(input_ids))

    def add_metadata(self, file_ids: Sequence[str], metadata: Mapping[str, Any] | None,
                     deleted_keys: Sequence[str] = ()) -> None:
        """Set ``metadata`` (validated and typed) and delete ``deleted_keys`` on each file."""
        self.commit.metadata.extend(encode_metadata(self.lake, file_ids, metadata, deleted_keys))

    def add_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add rows of other tables (each a dict with its ``"type"``)."""
        self.commit.extra.extend(rows)

    # -- writing -----------------------------------------------------------------
    def write(self) -> Commit:
        """Write the commit: records file, then the catalog transaction. Versions are set on the rows.

        Whatever it raises, the commit never takes effect later: a records file
        written before the failure is removed (or voided), so no roll-forward applies it.

        Raises:
            SchemaError: another writer fixed a metadata key to another type meanwhile.
            RemoteError: the records file cannot be written to the store (nothing is committed).
        """
        sequenced = self.lake.shared_log is not None
        self._run(lambda: self.lake.catalog.commit(self.commit, self._write_records, sequenced), self.commit)
        return self.commit

    def write_step(self, key: str | None) -> StepHit | None:
        """Write a step's commit unless another writer recorded ``key`` first; then return theirs."""
        sequenced = self.lake.shared_log is not None
        return self._run(lambda: self.lake.catalog.commit_step(self.commit, key, self._write_records, sequenced), None)

    def _run(self, write: Callable[[], T], if_landed: T) -> T:
        """Run the catalog write under the writer guard; after a failure, make sure it never lands later.

        On a team lake a commit that lost its log entry to another machine is
        tried again after catching up, with versions allocated afresh.
        """
        with self.lake.writing():
            crash_points.hit("after_objects")
            self._published = False  # once True it stays: the commit took effect, whatever is retried after
            for attempt in range(1, shared.MAX_ATTEMPTS + 1):
                self._records_written = False
                try:
                    result = write()
                except shared.LogRaceLost:
                    shared.back_off(attempt)
                    self.lake.catch_up(force=True)
                    continue
                except SimulatedCrash:
                    raise  # a crash: whatever was written stays, for roll-forward to judge
                except BaseException as exc:
                    if not (self._records_written or self._published):
                        raise
                    if not self._abandon() or not isinstance(exc, Exception):
                        raise  # an interrupt still interrupts, even when its commit went through
                    result = if_landed
                crash_points.hit("after_commit")
                return result
            self._abandon()
            raise CommitContention(f"commit {self.id} lost the shared log to other machines {shared.MAX_ATTEMPTS} times "
                                   "in a row; nothing was committed", hint="try the write again")

    def _write_records(self, commit: Commit) -> None:
        crash_points.hit("in_transaction")
        data = commit.to_jsonl()
        if self._published:
            # The database retried a transaction whose commit was already published: it has taken effect,
            # and comes into this catalog through catch-up; publishing again would make a second entry.
            raise shared.AlreadyPublished(commit.seq)
        if self.lake.shared_log is not None:
            # Publish first: a writer that loses the race has written nothing, and the window in which
            # another machine can take the entry is one request wide. The log entry holds the records.
            shared.publish(self.lake.shared_log, commit, data)
            self._published = True  # from here on the commit has taken effect, whatever happens locally
        self._records_written = True  # before the write: a failing write may still leave the file behind
        self.lake.store.write_record(commit.id, data)
        crash_points.hit("after_records")

    def _abandon(self) -> bool:
        """After a failed transaction: True if the commit is in the catalog after all; else unlog it.

        A lost connection can hide a COMMIT that went through, so the catalog is
        asked first. A commit that is not there has its records file removed; if
        that fails, or the catalog cannot be asked, a void marker keeps any
        roll-forward from applying it.
        """
        store = self.lake.store
        if self._published:
            # Other machines apply it from the log whatever happens here; so will this one, next time it catches up.
            log.warning("commit %s was published to the shared log but failed locally: it took effect", self.id)
            with contextlib.suppress(Exception):
                self.lake.catch_up(force=True)
            return True
        try:
            landed: bool | None = self.lake.catalog.has_commit(self.id)
        except Exception:
            landed = None
        if landed:
            log.warning("commit %s was reported as failed but is in the catalog: it took effect", self.id)
            return True
        try:
            if landed is None:
                store.void_record(self.id)  # it may have landed: keep the file, but never apply it
            else:
                store.delete_record(self.id)
        except Exception:
            try:
                store.void_record(self.id)
            except Exception as exc:
                log.error("commit %s failed and its records file could not be removed or voided (%s); "
                          "delete records/%s.jsonl before the lake is next opened, or it will be applied",
                          self.id, exc, self.id)
        return False

    def file(self, row: dict[str, Any]) -> File:
        """The File for one of this commit's file rows, after :meth:`write`."""
        user = self.run.get("user")
        return File(self.lake, FileRow(row["id"], row["name"], row["version"], row["hash"], row["size"],
                                       self.commit.created_at, row["run_id"], row["kind"], row["uri"], user))
