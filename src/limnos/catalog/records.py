"""Commits and their records files.

A commit is every row one write adds to the catalog. The same rows are
written to ``<store>/records/<commit-id>.jsonl`` before the catalog
transaction commits, which makes the records the lake's write-ahead log:
``reindex`` rebuilds a catalog from them, and a commit whose records exist
but whose rows the catalog lacks (a crash in between) is rolled forward.

Format: the first line is the header ``{"type": "commit", ...}``; every
other line is one row with ``"type"`` naming its table.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from .validate import check_rows

FORMAT = 1


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat()


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)


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

    @property
    def run_id(self) -> str | None:
        """The id of the run that made the commit, if any."""
        return self.run["id"] if self.run else None

    def to_jsonl(self) -> bytes:
        """The records file: a header line, then one JSON line per row (times in UTC ISO format)."""
        lines = [
            {"type": "commit", "format": FORMAT, "id": self.id, "created_at": _iso(self.created_at), "kind": self.kind}
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
        return "".join(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n" for line in lines).encode()

    @classmethod
    def from_jsonl(cls, data: bytes) -> Commit:
        """Read a records file back.

        Raises:
            RecordsInvalid: a row or field is not what limnos writes (see :mod:`.validate`).
            ValueError: the bytes are not UTF-8 JSON lines.
        """
        rows = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        check_rows(rows, FORMAT)  # every field of every row, before any is used (RecordsInvalid)
        if not rows or rows[0].get("type") != "commit":
            raise ValueError("records file has no commit header")
        head = rows[0]
        if head.get("format", 1) > FORMAT:
            raise ValueError(f"records format {head['format']} is newer than this limnos understands; upgrade limnos")
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
        return commit
