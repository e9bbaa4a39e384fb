"""The commit kernel: the one place that builds and writes a commit.

Every write of the lake (an add, a create, a step, a metadata batch, a lock,
a datasource scan) is one commit: rows for files, lineage edges, metadata and
other tables, written in this order:

1. the objects the rows name (the caller stores them first, through
   :meth:`LakeBase.store_staged <limnos.core.base.LakeBase.store_staged>`);
2. the records file ``<store>/records/<commit-id>.jsonl``, inside the
   catalog transaction after the rows are inserted (so a constraint failure
   aborts before the log exists);
3. COMMIT.

Features build commits with :class:`CommitBuilder` and never touch the
catalog's write path themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..catalog import Commit, FileRow
from ..catalog import values as metavalues
from ..errors import MetadataError
from ..names import new_id, validate_name
from .files import File
from .runs import now

if TYPE_CHECKING:
    from ..catalog.catalog import StepHit
    from .base import LakeBase

#: The hash that stands for a blob in a metadata batch that is only being checked.
_CHECK_ONLY_BLOB = "0" * 64


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
    values = dict(metadata or {})
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

        Raises:
            SchemaError: another writer fixed a metadata key to another type meanwhile.
            RemoteError: the records file cannot be written to the store (nothing is committed).
        """
        return self.lake.catalog.commit(self.commit, self._write_records)

    def write_step(self, key: str | None) -> StepHit | None:
        """Write a step's commit unless another writer recorded ``key`` first; then return theirs."""
        return self.lake.catalog.commit_step(self.commit, key, self._write_records)

    def _write_records(self, commit: Commit) -> None:
        self.lake.store.write_record(commit.id, commit.to_jsonl())

    def file(self, row: dict[str, Any]) -> File:
        """The File for one of this commit's file rows, after :meth:`write`."""
        user = self.run.get("user")
        return File(self.lake, FileRow(row["id"], row["name"], row["version"], row["hash"], row["size"],
                                       self.commit.created_at, row["run_id"], row["kind"], row["uri"], user))
