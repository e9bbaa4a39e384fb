"""Datasource reads: datasources, their datapoints and fields, saved datasets.

The datasources feature (:mod:`limnos.datasources`) writes these rows only
through commits (extra rows that :meth:`Catalog.commit` applies, with
:func:`apply_field_rows` for fields and values) and reads them through the
functions here, so no SQL lives outside the catalog.

Since schema v5 a datasource's field values are its own (``ds_values``), typed
per datasource; :func:`adopt_legacy_fields` moves the values of fields that
commits written before v5 registered (file metadata then) into them.
Queries over datapoints and their values are in :mod:`limnos.catalog.dsquery`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import SchemaError
from . import schema as t
from .engine import chunks, execute_many, insert_ignore, upsert
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
    """The fields of a datasource and their types (fixed per datasource), by name."""
    f = t.datasource_fields
    stmt = (sa.select(f.c.key, f.c.type).where(f.c.datasource_id == datasource_id, f.c.type.isnot(None))
            .order_by(f.c.key))
    with catalog.engine.connect() as conn:
        return {key: vtype for key, vtype in conn.execute(stmt)}


# ------------------------------------------------------------------ writes
def apply_field_rows(conn: sa.Connection, fields: list[dict[str, Any]], rows: list[dict[str, Any]],
                     commit_id: str, when: dt.datetime) -> None:
    """Apply a commit's ``datasource_field`` and ``ds_value`` rows: fix each field's type, then log and set values.

    A ``datasource_field`` row without ``vtype`` comes from a commit written before
    schema v5: its values are file metadata, adopted by :func:`adopt_legacy_fields`.

    Raises:
        SchemaError: a value's type is not the one fixed for its field in its datasource.
    """
    f = t.datasource_fields
    wanted: dict[tuple[str, str], str | None] = {(r["datasource_id"], r["key"]): r.get("vtype") for r in fields}
    for r in rows:
        if not r.get("deleted") and wanted.get((r["datasource_id"], r["key"])) is None:
            wanted[(r["datasource_id"], r["key"])] = r["vtype"]
    insert_ignore(conn, f, [{"datasource_id": d, "key": k, "type": v} for (d, k), v in sorted(wanted.items())])
    for (source, key), vtype in sorted(wanted.items()):
        if vtype is None:
            continue
        held = conn.execute(sa.select(f.c.type).where(f.c.datasource_id == source, f.c.key == key)).scalar()
        if held is None:
            conn.execute(sa.update(f).where(f.c.datasource_id == source, f.c.key == key).values(type=vtype))
    fixed = _field_types(conn, {(r["datasource_id"], r["key"]) for r in rows})
    log_rows: list[dict[str, Any]] = []
    current: dict[tuple[str, str, str], dict[str, Any]] = {}
    gone: set[tuple[str, str, str]] = set()
    for r in rows:
        ident = (r["datasource_id"], r["file_id"], r["key"])
        deleted = bool(r.get("deleted"))
        if not deleted and fixed.get((r["datasource_id"], r["key"])) != r["vtype"]:
            raise SchemaError(f"field {r['key']!r} holds {fixed.get((r['datasource_id'], r['key']))} values in its "
                              f"datasource, not {r['vtype']}; pass a value of that type or use a new field")
        row = {"datasource_id": ident[0], "file_id": ident[1], "key": ident[2], "type": r["vtype"],
               "v_int": r.get("v_int"), "v_float": r.get("v_float"), "v_str": r.get("v_str"), "set_at": when}
        log_rows.append(dict(row, deleted=deleted, commit_id=commit_id))
        if deleted:
            current.pop(ident, None)
            gone.add(ident)
        else:
            gone.discard(ident)
            current[ident] = row
    for chunk in chunks(log_rows, 5000):
        execute_many(conn, t.ds_values_log.insert(), t.ds_values_log, list(chunk))
    v = t.ds_values
    for source, file_id, key in sorted(gone):
        conn.execute(sa.delete(v).where(v.c.datasource_id == source, v.c.file_id == file_id, v.c.key == key))
    for chunk in chunks(list(current.values()), 5000):
        upsert(conn, v, list(chunk), ["datasource_id", "file_id", "key"])


def _field_types(conn: sa.Connection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    f = t.datasource_fields
    out: dict[tuple[str, str], str] = {}
    by_source: dict[str, set[str]] = {}
    for source, key in pairs:
        by_source.setdefault(source, set()).add(key)
    for source, keys in by_source.items():
        for chunk in chunks(sorted(keys)):
            stmt = sa.select(f.c.key, f.c.type).where(f.c.datasource_id == source, f.c.key.in_(chunk))
            out.update({(source, key): vtype for key, vtype in conn.execute(stmt) if vtype is not None})
    return out


def adopt_legacy_fields(conn: sa.Connection) -> int:
    """Make fields registered before schema v5 the datasource's own; return how many were adopted.

    Such a field's values were file metadata of the datasource's datapoints: they
    are copied (their whole history) into the datasource's values, and the field
    takes the key's lake-wide type. The file metadata itself stays. Runs in the v5
    migration and after every replay, so records written before v5 replay right.
    """
    f, k, dp = t.datasource_fields, t.key_types, t.datapoints
    legacy = conn.execute(sa.select(f.c.datasource_id, f.c.key, k.c.type).join(k, k.c.key == f.c.key)
                          .where(f.c.type.is_(None)).order_by(f.c.datasource_id, f.c.key)).all()
    for source, key, vtype in legacy:
        members = sa.select(dp.c.file_id).where(dp.c.datasource_id == source)
        log, cur = t.metadata_log, t.metadata_current
        value_cols = ("type", "v_int", "v_float", "v_str", "set_at")
        conn.execute(t.ds_values_log.insert().from_select(
            ["datasource_id", "file_id", "key", *value_cols, "deleted", "commit_id"],
            sa.select(sa.literal(source), log.c.file_id, log.c.key, *(log.c[c] for c in value_cols), log.c.deleted,
                      log.c.commit_id).where(log.c.key == key, log.c.file_id.in_(members)).order_by(log.c.seq)))
        conn.execute(sa.delete(t.ds_values).where(t.ds_values.c.datasource_id == source, t.ds_values.c.key == key))
        conn.execute(t.ds_values.insert().from_select(
            ["datasource_id", "file_id", "key", *value_cols],
            sa.select(sa.literal(source), cur.c.file_id, cur.c.key, *(cur.c[c] for c in value_cols))
            .where(cur.c.key == key, cur.c.file_id.in_(members))))
        conn.execute(sa.update(f).where(f.c.datasource_id == source, f.c.key == key).values(type=vtype))
    return len(legacy)


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


def current_values(catalog: Catalog, datasource_id: str, file_ids: Sequence[str],
                   exclude_keys: Iterable[str] = ()) -> list[StoredValue]:
    """The datasource's current field values on these files, as stored, leaving out ``exclude_keys``."""
    m = t.ds_values
    excluded = list(exclude_keys)
    out = []
    with catalog.engine.connect() as conn:
        for chunk in chunks(list(file_ids)):
            stmt = (sa.select(m.c.file_id, m.c.key, m.c.type, m.c.v_int, m.c.v_float, m.c.v_str)
                    .where(m.c.datasource_id == datasource_id, m.c.file_id.in_(chunk)))
            if excluded:
                stmt = stmt.where(m.c.key.not_in(excluded))
            out += [StoredValue(r.file_id, r.key, r.type, r.v_int, r.v_float, r.v_str) for r in conn.execute(stmt)]
    return out


def keys_set(catalog: Catalog, datasource_id: str, file_ids: Sequence[str]) -> dict[str, set[str]]:
    """file id -> the datasource's fields it has a current value for (files without any are left out)."""
    m = t.ds_values
    out: dict[str, set[str]] = {}
    with catalog.engine.connect() as conn:
        for chunk in chunks(sorted(set(file_ids))):
            stmt = sa.select(m.c.file_id, m.c.key).where(m.c.datasource_id == datasource_id, m.c.file_id.in_(chunk))
            for fid, key in conn.execute(stmt):
                out.setdefault(fid, set()).add(key)
    return out


__all__ = ["CurrentDatapoint", "DatasetRow", "SourceInfo", "StoredValue", "adopt_legacy_fields", "apply_field_rows",
           "current_datapoints", "current_values",
           "datasource_by_id", "find_datasource", "keys_set", "live_datasources", "registered_fields", "saved_datasets"]
