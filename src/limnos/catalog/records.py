"""Commits and their records files.

A commit is every row one write adds to the catalog. The same rows are
written to ``<store>/records/<commit-id>.jsonl`` before the catalog
transaction commits, which makes the records the lake's write-ahead log:
``reindex`` rebuilds a catalog from them, and a commit whose records exist
but whose rows the catalog lacks (a crash in between) is rolled forward.

Format: the first line is the header ``{"type": "commit", ..., "sealed": true}``;
every other line is one row with ``"type"`` naming its table; the last line
is the checksum ``{"type": "end", "blake3": <hash of every byte before it>,
"rows": <lines before it>}``. A sealed file without a matching checksum line
is damaged (truncated or altered) and is never applied. Records written
before the checksum existed have no ``sealed`` header: they are accepted when
every line parses and the file ends with a newline; such a file cut exactly at
a line boundary cannot be told from a complete one, which is why new files
carry the checksum. Readers that predate the checksum skip the ``end`` row,
as they skip every row type they do not know.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CatalogVersionError, RecordsDamaged
from ..names import is_file_id, ulid_seconds
from ..store.hashing import hash_bytes
from .validate import check_rows
from .values import parse_timestamp

FORMAT = 1
_INT64 = 1 << 63
_HASH = re.compile(r"^[0-9a-f]{64}$")
#: Commit ids are ULIDs made by limnos, which did not exist before 2020: an older one is crafted.
_EARLIEST_ID = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp()
#: Extra checks of every parsed commit (field validation of imported rows plugs in here).
validators: list[Callable[[Commit], None]] = []


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat()


def _parse_time(value: str) -> dt.datetime:
    return parse_timestamp(value).astimezone(dt.timezone.utc)


def is_commit_id(value: object) -> bool:
    """True for a plausible commit id: a ULID made since 2020 (not all zeros, not crafted into the past)."""
    return isinstance(value, str) and is_file_id(value) and ulid_seconds(value) >= _EARLIEST_ID


def seal(body: bytes) -> bytes:
    """``body`` (complete lines) followed by its checksum line."""
    rows = body.count(b"\n")
    end = {"blake3": hash_bytes(body), "rows": rows, "type": "end"}
    return body + json.dumps(end, separators=(",", ":"), sort_keys=True).encode() + b"\n"


@dataclass
class Commit:
    """Every row one write adds to the catalog, and its records file (:meth:`to_jsonl`, :meth:`from_jsonl`)."""

    id: str
    created_at: dt.datetime
    kind: str
    run: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    #: rows of other tables (tombstone, lock, unlock, step, step_output), each with its "type"
    extra: list[dict[str, Any]] = field(default_factory=list)
    #: its entry in a team lake's shared log (set when published or read from the log; not in the records)
    seq: int | None = None

    @property
    def run_id(self) -> str | None:
        """The id of the run that made the commit, if any."""
        return self.run["id"] if self.run else None

    def blob_hashes(self) -> set[str]:
        """The objects the commit's blob values name: file metadata and datasource values ("ds_value" rows)."""
        rows = [*self.metadata, *(r for r in self.extra if r.get("type") == "ds_value")]
        return {r["v_str"] for r in rows if r.get("vtype") == "blob" and isinstance(r.get("v_str"), str) and r["v_str"]}

    def to_jsonl(self) -> bytes:
        """The records file: a header line, one JSON line per row (times in UTC ISO format), the checksum line."""
        lines = [
            {"type": "commit", "format": FORMAT, "id": self.id, "created_at": _iso(self.created_at), "kind": self.kind,
             "sealed": True}
        ]
        if self.run:
            run = dict(self.run, started_at=_iso(self.run["started_at"]))
            lines.append({"type": "run", **run})
        for row in self.files:
            lines.append({"type": "file", **{k: v for k, v in row.items() if k not in ("created_at", "commit_id")}})
        for row in self.inputs:
            lines.append({"type": "input", **row})
        for row in self.metadata:
            lines.append({"type": "meta", **{k: v for k, v in row.items() if k not in ("set_at", "commit_id")}})
        for row in self.extra:
            lines.append({k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in row.items() if k != "commit_id"})
        return seal("".join(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n" for line in lines).encode())

    @classmethod
    def from_jsonl(cls, data: bytes, commit_id: str | None = None) -> Commit:
        """Read a records file back, checking it whole first: the single entry for every records file read.

        Args:
            data: the file's bytes.
            commit_id: the id the file is named after, when known; the header must carry the same.

        Raises:
            RecordsDamaged: the file is truncated, altered or malformed (its checksum, a line,
                or a field is wrong); nothing of it may be applied.
            CatalogVersionError: it was written in a newer records format than this limnos reads.
            RecordsInvalid: a row or field is not what limnos writes (see :mod:`.validate`).
        """
        rows = _checked_rows(data, commit_id)
        check_rows(rows, FORMAT)  # every field of every row, before any is used
        head = rows[0]
        try:
            created = _parse_time(head["created_at"])
            commit = cls(id=head["id"], created_at=created, kind=head["kind"])
            for row in rows[1:]:
                kind = row.pop("type")
                if kind == "run":
                    row["started_at"] = _parse_time(row["started_at"])
                    commit.run = row
                elif kind == "file":
                    commit.files.append(dict(row, created_at=created, commit_id=commit.id))
                elif kind == "input":
                    commit.inputs.append(row)
                elif kind == "meta":
                    commit.metadata.append(dict(row, set_at=created, commit_id=commit.id))
                else:
                    # Catalog.apply_extra knows which types it can apply and skips the
                    # rest, so a newer minor format never fails a replay.
                    commit.extra.append({"type": kind, **row})
            _check_fields(commit)
            for validate in validators:
                validate(commit)
        except RecordsDamaged:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            why = f"a field is missing or malformed ({type(exc).__name__}: {exc})"
            raise damaged(commit_id or str(head.get("id")), why) from None
        return commit


def damaged(commit_id: str | None, why: str) -> RecordsDamaged:
    """The error for a records file that cannot be trusted, naming it and what to do."""
    name = f"records/{commit_id}.jsonl" if commit_id else "a records file"
    return RecordsDamaged(f"{name} is damaged: {why}; it is never applied as it is",
                          hint="restore it from a backup or a remote (call lake.fsck() to list every damaged one)",
                          commit_id=commit_id)


def _checked_rows(data: bytes, commit_id: str | None) -> list[dict[str, Any]]:
    """The rows of a records file whose bytes, checksum and header check out (the checksum row dropped)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise damaged(commit_id, "it is not UTF-8 text") from None
    if not text.endswith("\n"):
        raise damaged(commit_id, "it is empty or does not end with a newline (truncated)")
    lines = text[:-1].split("\n")
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise damaged(commit_id, f"line {number} is not JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("type"), str):
            raise damaged(commit_id, f"line {number} is not a row")
        rows.append(row)
    head = rows[0]
    # The checksum first: what any other field says means nothing in bytes that were altered.
    ends = [n for n, row in enumerate(rows) if row["type"] == "end"]
    if head.get("sealed") is True or ends:
        if ends != [len(rows) - 1] or head.get("sealed") is not True:
            raise damaged(commit_id, "its checksum line is missing or misplaced (truncated or altered)")
        body = data[: len(data) - len(lines[-1].encode()) - 1]
        end = rows.pop()
        if end.get("rows") != len(rows) or end.get("blake3") != hash_bytes(body):
            raise damaged(commit_id, "its checksum does not match its bytes (truncated or altered)")
    if head["type"] != "commit":
        raise damaged(commit_id, "it has no commit header")
    fmt = head.get("format", 1)
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise damaged(commit_id, "its format is not a number")
    if fmt > FORMAT:
        raise CatalogVersionError(f"records/{commit_id or head.get('id')}.jsonl has format {fmt}, newer than this "
                                  "limnos understands; upgrade limnos (pip install -U limnos)")
    if not is_commit_id(head.get("id")):
        raise damaged(commit_id, f"its commit id {str(head.get('id'))[:40]!r} is not a commit id")
    if commit_id is not None and head["id"] != commit_id:
        raise damaged(commit_id, f"it belongs to commit {head['id']}, not to the commit it is named after")
    return rows


def _is_int(value: object, low: int, high: int = _INT64) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


def _check_fields(commit: Commit) -> None:
    """Types and ranges of the fields the catalog stores: a bad one would fail (or corrupt) the replay.

    Raises:
        RecordsDamaged: naming the first bad field.
    """

    def bad(what: str) -> RecordsDamaged:
        return damaged(commit.id, what)

    if not isinstance(commit.kind, str):
        raise bad("the commit kind is not text")
    if commit.run is not None and not isinstance(commit.run.get("id"), str):
        raise bad("the run has no id")
    for f in commit.files:
        if not (isinstance(f.get("id"), str) and is_file_id(f["id"]) and isinstance(f.get("name"), str) and f["name"]):
            raise bad("a file row has no valid id or name")
        if not (_is_int(f.get("version"), 1) and _is_int(f.get("size"), 0)):
            raise bad(f"file {f['name']!r} has a version or size that is not a 64-bit count")
        digest = f.get("hash")
        if digest is not None and not (isinstance(digest, str) and _HASH.match(digest)):
            raise bad(f"file {f['name']!r} has a hash that is not 64 lowercase hex digits")
        if not isinstance(f.get("kind", "object"), str) or not isinstance(f.get("uri"), (str, type(None))):
            raise bad(f"file {f['name']!r} has a malformed kind or uri")
    for e in commit.inputs:
        if not (isinstance(e.get("file_id"), str) and isinstance(e.get("input_id"), str) and _is_int(e.get("position"), 0)):
            raise bad("a lineage row is malformed")
    for m in commit.metadata:
        if not (isinstance(m.get("file_id"), str) and isinstance(m.get("key"), str) and isinstance(m.get("vtype"), str)):
            raise bad("a metadata row has no file, key or type")
        if m.get("v_int") is not None and not _is_int(m["v_int"], -_INT64):
            raise bad(f"metadata {m['key']!r} has an integer that is not 64-bit")
        if m.get("v_float") is not None and not isinstance(m["v_float"], (int, float)):
            raise bad(f"metadata {m['key']!r} has a malformed number")
        if m.get("v_str") is not None and not isinstance(m["v_str"], str):
            raise bad(f"metadata {m['key']!r} has a malformed value")
