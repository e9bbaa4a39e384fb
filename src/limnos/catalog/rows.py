"""A file version as the catalog holds it, and the SELECT every file read starts from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import schema as t
from .values import to_utc


@dataclass(frozen=True)
class FileRow:
    """One file version as the catalog holds it, with the user of the run that made it."""

    id: str
    name: str
    version: int
    hash: str | None
    size: int
    created_at: dt.datetime
    run_id: str | None
    kind: str
    uri: str | None
    user: str | None


FILE_COLUMNS = [
    t.files.c.id,
    t.files.c.name,
    t.files.c.version,
    t.files.c.hash,
    t.files.c.size,
    t.files.c.created_at,
    t.files.c.run_id,
    t.files.c.kind,
    t.files.c.uri,
    t.runs.c.user,
]


def file_select(include_deleted: bool = False) -> sa.Select[Any]:
    """SELECT of every file column with its run's user; deleted versions left out unless ``include_deleted``."""
    stmt = sa.select(*FILE_COLUMNS).select_from(t.files.outerjoin(t.runs, t.files.c.run_id == t.runs.c.id))
    if not include_deleted:
        stmt = stmt.where(~sa.exists().where(t.tombstones.c.file_id == t.files.c.id))
    return stmt


def is_current() -> sa.ColumnElement[bool]:
    """Join condition: the file is its name's current version."""
    return sa.and_(t.names.c.name == t.files.c.name, t.names.c.current == t.files.c.version)


def file_row(r: Any) -> FileRow:
    """A result row of :func:`file_select` as a :class:`FileRow` (times in UTC)."""
    return FileRow(r.id, r.name, r.version, r.hash, r.size, to_utc(r.created_at), r.run_id, r.kind, r.uri, r.user)
