"""File queries in SQL: the datasource query language over every file version of the lake.

A :class:`~limnos.catalog.expressions.Query` (the tree ``ds["f"] > 5`` and
``limnos ds query`` build) compiles here to one SQLAlchemy Core SELECT over
``files``, which runs unchanged on SQLite and PostgreSQL. A field is either
an *automatic* field, a column every file has (:data:`FILE_FIELDS`: name,
version, size, created_at, the run's user, host, script and git commit, the
step that wrote it...), or a metadata key. An automatic field's name always
means the automatic field.

Semantics are the datasource ones (pandas on a table where a missing value is
NaN): a test is False for a file without a value for the field, ``!=`` is the
complement of ``==`` and ``~`` the exact complement of its operand, so every
leaf is written to be True or False, never NULL. A metadata test is
``files.id IN (SELECT file_id FROM metadata WHERE key = :k AND <typed test>)``,
which the ``(key, v_*)`` indexes answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import SchemaError
from . import schema as t
from . import values
from .dsquery import TreeCompiler, _column_pred, values_table
from .expressions import Leaf, Query
from .rows import FILE_COLUMNS, FileRow, file_row

if TYPE_CHECKING:
    from .catalog import Catalog

#: The automatic fields every file has, and their types (the columns a query can test without metadata).
FILE_FIELDS: dict[str, str] = {
    "name": "str", "version": "int", "id": "str", "hash": "str", "size": "int", "created_at": "datetime",
    "kind": "str", "uri": "str", "run": "str", "user": "str", "host": "str", "script": "str",
    "git_commit": "str", "step": "str",
}
#: Automatic fields read from the run that made the file (NULL for a file with no run).
_RUN_FIELDS = ("user", "host", "script", "git_commit")
#: Automatic fields that are never NULL.
_NOT_NULL = ("name", "version", "id", "size", "created_at", "kind")


def _column(name: str) -> sa.ColumnElement[Any]:
    """The column behind an automatic field (``step`` has none: see :func:`_step_of`)."""
    if name in _RUN_FIELDS:
        return t.runs.c[name]
    if name == "run":
        return t.files.c.run_id
    return t.files.c[name]


def _step_of() -> sa.ScalarSelect[Any]:
    """The function of the (first) step that wrote each file, as a correlated subquery."""
    s, o = t.steps.alias("stp"), t.step_outputs.alias("sto")
    return (sa.select(sa.func.min(s.c.function)).select_from(o.join(s, s.c.id == o.c.step_id))
            .where(o.c.file_id == t.files.c.id).scalar_subquery())


def _instant(encoded: Any) -> Any:
    """A datetime query value, encoded as metadata stores it, back as a UTC datetime (None stays None)."""
    return None if encoded is None else values.decode("datetime", encoded, None, None)


class FileCompiler(TreeCompiler):
    """Compiles conditions on files; ``types`` maps each metadata key used to its type."""

    def __init__(self, types: Mapping[str, str], dialect: str, as_of: dt.datetime | None) -> None:
        """A compiler for ``dialect`` reading metadata values at ``as_of`` (None: now)."""
        self.types = {**types, **FILE_FIELDS}
        self.dialect = dialect
        self.as_of = as_of
        self._aliases = 0

    def leaf(self, leaf: Leaf) -> sa.ColumnElement[bool]:
        """One field test as SQL: never NULL, so ``not`` is its exact complement.

        Raises:
            SchemaError: the operator or value does not suit the field's type.
        """
        name, op, ftype, value = self.operand(leaf)
        if op == "isin" and not value:
            return sa.false()
        if name == "step":
            o, s = t.step_outputs.alias(), t.steps.alias()
            tests = [] if op in ("is_null", "is_not_null") else [_column_pred(s.c.function, op, value, self.dialect)]
            matching = sa.select(o.c.file_id).select_from(o.join(s, s.c.id == o.c.step_id)).where(*tests)
            return t.files.c.id.not_in(matching) if op in ("is_null", "ne") else t.files.c.id.in_(matching)
        if name in FILE_FIELDS:
            if ftype == "datetime":  # a real timestamp column, not metadata's encoded microseconds
                value = tuple(map(_instant, value)) if op == "isin" else _instant(value)
            column = self.collated(_column(name), ftype, op)
            if op == "is_null":
                return sa.false() if name in _NOT_NULL else column.is_(None)
            if op == "is_not_null":
                return sa.true() if name in _NOT_NULL else column.isnot(None)
            pred = _column_pred(column, op, value, self.dialect)
            if op == "ne":
                return sa.or_(column.is_(None), sa.not_(pred)) if name not in _NOT_NULL else sa.not_(pred)
            return pred if name in _NOT_NULL else sa.and_(column.isnot(None), pred)
        m = self.new_values()
        column = self.collated(m.c[values.column_for(ftype)], ftype, op)
        tests = [] if op in ("is_null", "is_not_null") else [_column_pred(column, op, value, self.dialect)]
        matching = sa.select(m.c.file_id).where(m.c.key == name, *tests)
        if op in ("is_null", "ne"):  # != is the complement of ==, as in pandas: a missing value is "not equal"
            return t.files.c.id.not_in(matching)
        return t.files.c.id.in_(matching)

    def collated(self, column: sa.ColumnElement[Any], ftype: str, op: str = "lt") -> sa.ColumnElement[Any]:
        """On PostgreSQL, order text by code point (COLLATE "C"), as SQLite and Python do."""
        if ftype == "str" and self.dialect == "postgresql" and op in ("lt", "le", "gt", "ge"):
            return column.collate("C")
        return column

    def new_values(self) -> sa.FromClause:
        """A fresh alias of the metadata values, so no two uses of it in one statement get correlated."""
        self._aliases += 1
        return values_table(self.as_of, f"fm{self._aliases}")

    def value_of(self, name: str) -> sa.ColumnElement[Any]:
        """What selecting or ordering by ``name`` reads: its column, or a subquery of its value.

        Raises:
            SchemaError: ordering by a field that holds blobs or JSON, which have no order.
        """
        if name == "step":
            return _step_of()
        if name in FILE_FIELDS:
            return self.collated(_column(name), FILE_FIELDS[name])
        ftype = self.types[name]
        if ftype in ("blob", "json"):
            raise SchemaError(f"cannot order by field {name!r}: it holds {ftype} values")
        m = self.new_values()
        column = self.collated(m.c[values.column_for(ftype)], ftype)
        return sa.select(column).where(m.c.file_id == t.files.c.id, m.c.key == name).scalar_subquery()

    def visible(self, latest: bool) -> list[sa.ColumnElement[bool]]:
        """The conditions for a file version that exists (now or at ``as_of``), and is its name's newest if ``latest``."""
        if self.as_of is None:
            conds: list[sa.ColumnElement[bool]] = [~sa.exists().where(t.tombstones.c.file_id == t.files.c.id)]
            if latest:
                conds.append(t.files.c.version == sa.select(t.names.c.current)
                             .where(t.names.c.name == t.files.c.name).scalar_subquery())
            return conds
        conds = [t.files.c.created_at <= self.as_of, self._alive_at(t.files)]
        if latest:
            newer = t.files.alias("newer")
            conds.append(~sa.exists().where(newer.c.name == t.files.c.name, newer.c.version > t.files.c.version,
                                            newer.c.created_at <= self.as_of, self._alive_at(newer)))
        return conds

    def _alive_at(self, files: sa.FromClause) -> sa.ColumnElement[bool]:
        """No tombstone of the file was written at or before ``as_of``."""
        tomb = t.tombstones.alias()
        return ~sa.exists().where(tomb.c.file_id == files.c.id, tomb.c.deleted_at <= self.as_of)


#: Automatic fields a result row carries besides a :class:`~limnos.catalog.rows.FileRow`'s own.
EXTRA_FIELDS = ("host", "script", "git_commit", "step")


def compile_files(query: Query, types: Mapping[str, str], dialect: str, latest: bool = False) -> sa.Select[Any]:
    """One SELECT of the file versions a query matches, filtered, ordered and limited.

    Rows carry every :class:`~limnos.catalog.rows.FileRow` column and the
    automatic fields in :data:`EXTRA_FIELDS`. ``types`` must give the type of
    every metadata key the query uses. The order is the query's (missing
    values last), then name and version.
    """
    as_of = values.to_utc(query.as_of) if query.as_of is not None else None
    c = FileCompiler(types, dialect, as_of)
    stmt = (sa.select(*FILE_COLUMNS, t.runs.c.host, t.runs.c.script, t.runs.c.git_commit, _step_of().label("step"))
            .select_from(t.files.outerjoin(t.runs, t.files.c.run_id == t.runs.c.id))
            .where(*c.visible(latest)))
    if query.where is not None:
        stmt = stmt.where(c.condition(query.where))
    order = [(c.value_of(name).desc() if desc else c.value_of(name).asc()).nulls_last() for name, desc in query.order]
    stmt = stmt.order_by(*order, c.collated(t.files.c.name, "str"), t.files.c.version)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return stmt


@dataclass
class FileMatch:
    """One file version a query matched: its row and the automatic fields outside a FileRow."""

    row: FileRow
    extra: dict[str, Any] = field(default_factory=dict)


def select_files(catalog: Catalog, query: Query, types: Mapping[str, str], latest: bool = False) -> list[FileMatch]:
    """Run a file query: the versions it matches, in order.

    ``types`` must give the type of every metadata key the query uses.
    """
    engine = catalog.engine
    stmt = compile_files(query, types, engine.dialect.name, latest)
    with engine.connect() as conn:
        return [FileMatch(file_row(r), {k: getattr(r, k) for k in EXTRA_FIELDS}) for r in conn.execute(stmt)]


def count_files(catalog: Catalog, query: Query, types: Mapping[str, str], latest: bool = False) -> int:
    """How many file versions a query matches (respecting its limit), in one COUNT query."""
    engine = catalog.engine
    inner = compile_files(query, types, engine.dialect.name, latest).order_by(None).subquery()
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar() or 0)


__all__ = ["EXTRA_FIELDS", "FILE_FIELDS", "FileCompiler", "FileMatch", "compile_files", "count_files", "select_files"]
