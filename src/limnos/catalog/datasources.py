"""Datasource reads: datasources, their datapoints and fields, saved datasets.

The datasources feature (:mod:`limnos.datasources`) writes these rows only
through commits (extra rows that :meth:`Catalog.commit` applies) and reads
them through the functions here, so no SQL lives outside the catalog.
Queries over datapoints and their values are in :mod:`limnos.catalog.dsquery`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import schema as t
from .engine import chunks
from .values import to_utc

if TYPE_CHECKING:
    from .catalog import Catalog



@dataclass
class SourceInfo:
    """A datasource's row: its identity, root and the times of its life."""

    id: str
    name: str
    root: str  # a lake prefix ("" or "raw/img/") or an external URL or absolute folder
    kind: str  # lake | external
    created_at: dt.datetime
    scanned_at: dt.datetime | None  # the end of its last complete scan; None until the first ends
    deleted_at: dt.datetime | None = None


def _info(r: Any) -> SourceInfo:
    created = to_utc(r.created_at)
    assert created is not None  # the column is NOT NULL
    return SourceInfo(r.id, r.name, r.root, r.kind, created, to_utc(r.scanned_at), to_utc(r.deleted_at))


def find_datasource(catalog: Catalog, name: str) -> SourceInfo | None:
    """The live datasource named ``name`` (the oldest, if two processes raced to create it), or None."""
    ds = t.datasources
    stmt = (sa.select(ds).where(ds.c.name == name, ds.c.deleted_at.is_(None))
            .order_by(ds.c.created_at, ds.c.id).limit(1))
    with catalog.engine.connect() as conn:
        r = conn.execute(stmt).first()
    return _info(r) if r else None


def datasource_by_id(catalog: Catalog, source_id: str) -> SourceInfo | None:
    """The datasource with this id (deleted or not), or None."""
    with catalog.engine.connect() as conn:
        r = conn.execute(sa.select(t.datasources).where(t.datasources.c.id == source_id)).first()
    return _info(r) if r else None


def live_datasources(catalog: Catalog) -> list[SourceInfo]:
    """Every datasource not deleted, by name, then oldest first."""
    ds = t.datasources
    stmt = sa.select(ds).where(ds.c.deleted_at.is_(None)).order_by(ds.c.name, ds.c.created_at)
    with catalog.engine.connect() as conn:
        return [_info(r) for r in conn.execute(stmt)]


def registered_fields(catalog: Catalog, datasource_id: str) -> dict[str, str]:
    """The fields registered on a datasource and their (lake-wide) types, by name."""
    f, k = t.datasource_fields, t.key_types
    stmt = (sa.select(k.c.key, k.c.type).join(f, f.c.key == k.c.key)
            .where(f.c.datasource_id == datasource_id).order_by(k.c.key))
    with catalog.engine.connect() as conn:
        return {key: vtype for key, vtype in conn.execute(stmt)}


@dataclass
class DatasetRow:
    """A saved dataset's row, with the name of its datasource."""

    name: str
    datasource: str
    datasource_id: str
    query: dict[str, Any]
    as_of: dt.datetime | None
    created_at: dt.datetime


def saved_datasets(catalog: Catalog, datasource_id: str | None = None) -> list[DatasetRow]:
    """Saved datasets by name (only those of ``datasource_id``, if given)."""
    d, ds = t.datasets, t.datasources
    stmt = sa.select(d, ds.c.name.label("source")).join(ds, ds.c.id == d.c.datasource_id).order_by(d.c.name)
    if datasource_id is not None:
        stmt = stmt.where(d.c.datasource_id == datasource_id)
    out = []
    with catalog.engine.connect() as conn:
        for r in conn.execute(stmt):
            created = to_utc(r.created_at)
            assert created is not None  # the column is NOT NULL
            out.append(DatasetRow(r.name, r.source, r.datasource_id, r.query, to_utc(r.as_of), created))
    return out


@dataclass
class CurrentDatapoint:
    """A current datapoint: its id, its file and the fingerprint the scan saw."""

    id: str
    file_id: str
    fingerprint: str | None


def current_datapoints(catalog: Catalog, datasource_id: str, paths: Iterable[str] | None = None) -> dict[str, CurrentDatapoint]:
    """path -> the current datapoint there, for every path of the datasource (or only ``paths``)."""
    dp = t.datapoints
    stmt = sa.select(dp.c.id, dp.c.path, dp.c.file_id, dp.c.fingerprint).where(
        dp.c.datasource_id == datasource_id, dp.c.removed_at.is_(None))
    rows: list[Any] = []
    with catalog.engine.connect() as conn:
        if paths is None:
            rows = list(conn.execute(stmt))
        else:
            for chunk in chunks(sorted(set(paths))):
                rows += conn.execute(stmt.where(dp.c.path.in_(chunk))).all()
    return {r.path: CurrentDatapoint(r.id, r.file_id, r.fingerprint) for r in rows}


@dataclass
class StoredValue:
    """A current metadata value as stored: its file, key, type and typed columns."""

    file_id: str
    key: str
    type: str
    v_int: int | None
    v_float: float | None
    v_str: str | None


def current_values(catalog: Catalog, file_ids: Sequence[str], exclude_keys: Iterable[str] = ()) -> list[StoredValue]:
    """The current metadata values of these files, as stored, leaving out ``exclude_keys``."""
    m = t.metadata_current
    excluded = list(exclude_keys)
    out = []
    with catalog.engine.connect() as conn:
        for chunk in chunks(list(file_ids)):
            stmt = sa.select(m.c.file_id, m.c.key, m.c.type, m.c.v_int, m.c.v_float, m.c.v_str).where(m.c.file_id.in_(chunk))
            if excluded:
                stmt = stmt.where(m.c.key.not_in(excluded))
            out += [StoredValue(r.file_id, r.key, r.type, r.v_int, r.v_float, r.v_str) for r in conn.execute(stmt)]
    return out


def keys_set(catalog: Catalog, file_ids: Sequence[str]) -> dict[str, set[str]]:
    """file id -> the metadata keys it has a current value for (files without any are left out)."""
    m = t.metadata_current
    out: dict[str, set[str]] = {}
    with catalog.engine.connect() as conn:
        for chunk in chunks(sorted(set(file_ids))):
            for fid, key in conn.execute(sa.select(m.c.file_id, m.c.key).where(m.c.file_id.in_(chunk))):
                out.setdefault(fid, set()).add(key)
    return out


__all__ = ["CurrentDatapoint", "DatasetRow", "SourceInfo", "StoredValue", "current_datapoints", "current_values",
           "datasource_by_id", "find_datasource", "keys_set", "live_datasources", "registered_fields", "saved_datasets"]
