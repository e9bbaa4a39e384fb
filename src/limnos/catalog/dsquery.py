"""Datasource queries in SQL: a :class:`~limnos.catalog.expressions.Query` as one statement.

:func:`compile_select` turns a query into one SQLAlchemy Core SELECT that
runs unchanged on SQLite and PostgreSQL; :func:`select_datapoints` and
:func:`count_datapoints` run it. Semantics (the same as pandas on a table
where a missing value is NaN):

* a comparison, ``contains``/``startswith``/``endswith`` and ``isin`` are
  False for a datapoint that has no value for the field;
* ``!=`` is the complement of ``==`` (so it is True for a missing value), and
  ``~`` is the exact complement of its operand;
* string matching is case-sensitive on both databases.

Each condition on a metadata field becomes ``file_id IN (SELECT file_id FROM
metadata WHERE key = :k AND <test on the typed column>)``, which the
``(key, v_int)``/``(key, v_float)``/``(key, v_str)`` indexes answer, so an
equality filter over a million datapoints reads only the rows it returns.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import QueryError, SchemaError
from . import schema as t
from . import values
from .engine import chunks
from .expressions import BUILTINS, COMPARISONS, LAKE_PREFIX, And, Condition, Leaf, Not, Or, Query, conjuncts

if TYPE_CHECKING:
    from .catalog import Catalog


def values_table(as_of: dt.datetime | None, name: str = "vals", datasource_id: str | None = None) -> sa.FromClause:
    """The (file_id, key, type, v_int, v_float, v_str) rows in force, now or at ``as_of``: a datasource's
    own field values, or (``datasource_id`` None) the lake's file metadata."""
    own = datasource_id is not None
    current, history = (t.ds_values, t.ds_values_log) if own else (t.metadata_current, t.metadata_log)
    if as_of is None:
        if not own:
            return current.alias(name)
        return (sa.select(current.c.file_id, current.c.key, current.c.type, current.c.v_int, current.c.v_float,
                          current.c.v_str).where(current.c.datasource_id == datasource_id).subquery(name))
    log, newer = history.alias(f"{name}_log"), history.alias(f"{name}_later")
    same = [newer.c.datasource_id == log.c.datasource_id] if own else []
    last = (sa.select(sa.func.max(newer.c.seq))
            .where(newer.c.file_id == log.c.file_id, newer.c.key == log.c.key, newer.c.set_at <= as_of, *same)
            .scalar_subquery())
    mine = [log.c.datasource_id == datasource_id] if own else []
    return (sa.select(log.c.file_id, log.c.key, log.c.type, log.c.v_int, log.c.v_float, log.c.v_str)
            .where(log.c.set_at <= as_of, log.c.seq == last, log.c.deleted == sa.false(), *mine)
            .subquery(name))


def stored_key(name: str) -> tuple[bool, str]:
    """(is a lake metadata field, the key as stored) of a field name (``lake.<key>`` names lake metadata)."""
    return (True, name[len(LAKE_PREFIX):]) if name.startswith(LAKE_PREFIX) else (False, name)


def encode_value(name: str, ftype: str, value: Any) -> Any:
    """A query value as the typed column stores it.

    Raises:
        SchemaError: the value cannot match the field's type (or the type cannot be compared).
    """
    if ftype in ("blob", "json"):
        raise SchemaError(f"field {name!r} holds {ftype} values, which cannot be compared; "
                          f"use ds[{name!r}].is_null() or .is_not_null()")
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # a numpy scalar (np.True_, np.int64...): compare as the Python value it holds
    actual = "bool" if isinstance(value, bool) else None
    if ftype == "datetime":
        if isinstance(value, str):
            try:
                value = values.parse_timestamp(value)
            except ValueError:
                raise SchemaError(f"field {name!r} holds datetimes; {value!r} is not an ISO date") from None
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if not isinstance(value, dt.datetime):
            raise SchemaError(f"field {name!r} holds datetimes; compare it with a datetime, not {type(value).__name__}")
        return values.encode(value, "datetime")[1]
    if ftype == "bool":
        if actual != "bool":
            raise SchemaError(f"field {name!r} holds bool values; compare it with True or False, not {value!r}")
        return int(bool(value))
    if ftype in ("int", "float"):
        if actual == "bool" or not isinstance(value, numbers.Real):
            raise SchemaError(f"field {name!r} holds {ftype} values; compare it with a number, not {value!r}")
        if ftype == "int" and isinstance(value, numbers.Integral) and values.INT_MIN <= int(value) <= values.INT_MAX:
            return int(value)
        # Past the 64-bit range an int compares right as a float (no stored int equals it).
        return _as_float(value)
    if ftype == "str":
        if not isinstance(value, str):
            raise SchemaError(f"field {name!r} holds str values; compare it with a str, not {value!r}")
        return values.check_text(value, f"the value compared with field {name!r}")
    raise SchemaError(f"field {name!r} has unknown type {ftype!r}")


def _as_float(value: numbers.Real) -> float:
    """``value`` as a float; an int too large for one becomes an infinity of its sign."""
    try:
        return float(value)
    except OverflowError:
        return math.copysign(math.inf, value)


def _encoded_operand(leaf: Leaf, ftype: str) -> Any:
    """The leaf's value as its column stores it (a tuple of them for ``isin``)."""
    if leaf.op in COMPARISONS.values():
        return encode_value(leaf.field, ftype, leaf.value)
    if leaf.op == "isin":
        encoded = tuple(encode_value(leaf.field, ftype, v) for v in leaf.value)
        if ftype == "int":  # a float no stored int can equal is left out (PostgreSQL casts the list to bigint)
            encoded = tuple(v for v in encoded if not isinstance(v, float)
                            or (math.isfinite(v) and v.is_integer() and values.INT_MIN <= v <= values.INT_MAX))
        return encoded
    if isinstance(leaf.value, str):  # contains, startswith, endswith
        return values.check_text(leaf.value, f"the text {leaf.op} tests on field {leaf.field!r}")
    return leaf.value


def _column_pred(column: sa.ColumnElement[Any], op: str, value: object, dialect: str) -> sa.ColumnElement[bool]:
    if op in ("eq", "ne"):
        return column == value
    if op == "lt":
        return column < value
    if op == "le":
        return column <= value
    if op == "gt":
        return column > value
    if op == "ge":
        return column >= value
    if op == "isin":
        if not isinstance(value, (tuple, list)):
            raise QueryError(f"isin takes a list of values, not {value!r}")
        return column.in_(list(value))
    if not isinstance(value, str):
        raise QueryError(f"{op} takes a str, not {value!r}")
    n = len(value)
    if n == 0:
        return column.isnot(None)
    postgres = dialect == "postgresql"
    if op == "contains":
        return (sa.func.strpos(column, value) if postgres else sa.func.instr(column, value)) > 0
    if op == "startswith":
        return (sa.func.left(column, n) if postgres else sa.func.substr(column, 1, n)) == value
    if op == "endswith":
        return (sa.func.right(column, n) if postgres else sa.func.substr(column, -n)) == value
    raise QueryError(f"unknown operator {op!r}")


class TreeCompiler:
    """What every compiler of the query tree shares: walking and/or/not, and checking a leaf's operand.

    Subclasses (:class:`Compiler` for a datasource, ``filequery.FileCompiler``
    for files) say what one field test is in :meth:`leaf`.
    """

    types: Mapping[str, str]

    def condition(self, cond: Condition) -> sa.ColumnElement[bool]:
        """A condition as a SQL boolean expression."""
        if isinstance(cond, And):
            return sa.and_(*(self.condition(p) for p in cond.parts))
        if isinstance(cond, Or):
            return sa.or_(*(self.condition(p) for p in cond.parts))
        if isinstance(cond, Not):
            return sa.not_(self.condition(cond.part))
        assert isinstance(cond, Leaf)
        return self.leaf(cond)

    def leaf(self, leaf: Leaf) -> sa.ColumnElement[bool]:
        """One field test as SQL."""
        raise NotImplementedError

    def operand(self, leaf: Leaf) -> tuple[str, str, str, Any]:
        """(field, operator, field type, value as the typed column stores it) of one test.

        Raises:
            SchemaError: the operator or value does not suit the field's type.
        """
        name, op, ftype = leaf.field, leaf.op, self.types[leaf.field]
        if op in ("contains", "startswith", "endswith") and ftype != "str":
            raise SchemaError(f"{op} works on str fields; field {name!r} holds {ftype} values")
        return name, op, ftype, _encoded_operand(leaf, ftype)


class Compiler(TreeCompiler):
    """Compiles conditions on one datasource; ``types`` maps each field to its type."""

    def __init__(self, types: Mapping[str, str], dialect: str, as_of: dt.datetime | None, plan: str | None = None,
                 datasource_id: str = "") -> None:
        """A compiler for ``dialect`` (``"sqlite"``/``"postgresql"``) reading the values of ``datasource_id``
        (and ``lake.<key>`` file metadata) at ``as_of`` (None: now)."""
        self.types = types
        self.datasource_id = datasource_id
        self.plan = plan  # None: let the database choose; "index" / "scan": see choose_plan
        self.dialect = dialect
        self.as_of = as_of
        self._aliases = 0
        self.dp = t.datapoints
        self.files = t.files

    def builtin_column(self, name: str) -> sa.ColumnElement[Any]:
        """The column behind a built-in field (``path`` or ``size``)."""
        return self.dp.c.path if name == "path" else self.files.c.size

    def leaf(self, leaf: Leaf) -> sa.ColumnElement[bool]:
        """One field test as SQL.

        Raises:
            SchemaError: the operator or value does not suit the field's type.
        """
        name, op, ftype, value = self.operand(leaf)
        if name in BUILTINS:
            if op == "is_null":
                return sa.false()
            if op == "is_not_null":
                return sa.true()
            if op == "isin" and not value:
                return sa.false()
            pred = _column_pred(self.collated(self.builtin_column(name), ftype, op), op, value, self.dialect)
            return sa.not_(pred) if op == "ne" else pred
        lake, key = stored_key(name)
        m = self.new_values(lake)
        if op == "isin" and not value:
            return sa.false()
        column = self.collated(m.c[values.column_for(ftype)], ftype, op)
        tests = [] if op in ("is_null", "is_not_null") else [_column_pred(column, op, value, self.dialect)]
        if self.plan == "scan":
            # Probe each datapoint (walking the datasource in path order, stopping at the limit).
            found = sa.exists().where(m.c.file_id == self.dp.c.file_id, m.c.key == key, *tests)
            return ~found if op in ("is_null", "ne") else found
        matching = sa.select(m.c.file_id).where(m.c.key == key, *tests)
        # != is the complement of ==, as in pandas: a missing value is "not equal".
        if op in ("is_null", "ne"):
            return self.dp.c.file_id.not_in(matching)
        return self.dp.c.file_id.in_(matching)

    def collated(self, column: sa.ColumnElement[Any], ftype: str, op: str = "lt") -> sa.ColumnElement[Any]:
        """On PostgreSQL, order text by code point (COLLATE "C"), as SQLite and Python do."""
        if ftype == "str" and self.dialect == "postgresql" and op in ("lt", "le", "gt", "ge"):
            return column.collate("C")
        return column

    def new_values(self, lake: bool = False) -> sa.FromClause:
        """A fresh alias of the datasource's values (``lake``: of file metadata), so no two uses of it in one
        statement get correlated."""
        self._aliases += 1
        return values_table(self.as_of, f"m{self._aliases}", None if lake else self.datasource_id)

    def sort_column(self, name: str) -> sa.ColumnElement[Any]:
        """What ordering by ``name`` sorts on: its column, or a subquery of its value.

        Raises:
            SchemaError: the field holds blobs or JSON, which have no order.
        """
        if name in BUILTINS:
            return self.collated(self.builtin_column(name), self.types[name])
        ftype = self.types[name]
        if ftype in ("blob", "json"):
            raise SchemaError(f"cannot order by field {name!r}: it holds {ftype} values")
        lake, key = stored_key(name)
        m = self.new_values(lake)
        column = self.collated(m.c[values.column_for(ftype)], ftype)
        return sa.select(column).where(m.c.file_id == self.dp.c.file_id, m.c.key == key).scalar_subquery()

    def membership(self, datasource_id: str) -> list[sa.ColumnElement[bool]]:
        """The conditions for a datapoint of the datasource, current now or at ``as_of``."""
        dp = self.dp
        source: sa.ColumnElement[str] = dp.c.datasource_id
        if self.plan == "index" and self.dialect == "sqlite":
            # An expression, so SQLite cannot walk (datasource_id, path) and drives from the
            # metadata index instead (SQLite has no statistics to know that it should).
            source = source.concat("")
        conds = [source == datasource_id]
        if self.as_of is None:
            conds.append(dp.c.removed_at.is_(None))
        else:
            conds += [dp.c.added_at <= self.as_of, sa.or_(dp.c.removed_at.is_(None), dp.c.removed_at > self.as_of)]
        return conds


#: The datapoint columns of every row :func:`compile_select` returns, before the value columns.
RESULT_COLUMNS = ("dp_id", "path", "file_id", "fingerprint", "size", "kind", "hash", "uri", "name", "version")


def _as_of(query: Query) -> dt.datetime | None:
    return values.to_utc(query.as_of) if query.as_of is not None else None


def compile_select(query: Query, datasource_id: str, types: Mapping[str, str], dialect: str,
                   fields: Sequence[str] | None = None, plan: str | None = None) -> sa.Select[Any]:
    """One SELECT: the matching datapoints (filtered, ordered, limited) joined with their field values.

    Rows are (datapoint columns..., key, type, v_int, v_float, v_str), one per
    (datapoint, field), ordered as the query asks; a datapoint without values
    comes once with NULLs. ``fields`` limits the values fetched.
    """
    c = Compiler(types, dialect, _as_of(query), plan, datasource_id)
    dp, f = t.datapoints, t.files
    order_cols = [(c.sort_column(name).label(f"_sort{n}"), desc) for n, (name, desc) in enumerate(query.order)]
    inner = (sa.select(dp.c.id.label("dp_id"), dp.c.path, dp.c.file_id, dp.c.fingerprint, f.c.size, f.c.kind, f.c.hash,
                       f.c.uri, f.c.name, f.c.version, *(col for col, _ in order_cols))
             .select_from(dp.join(f, f.c.id == dp.c.file_id))
             .where(*c.membership(datasource_id)))
    if query.where is not None:
        inner = inner.where(c.condition(query.where))
    path_order = c.collated(dp.c.path, "str")
    inner_order = [(col.desc() if desc else col.asc()).nulls_last() for col, desc in order_cols] + [path_order]
    inner = inner.order_by(*inner_order)
    if query.limit is not None:
        inner = inner.limit(query.limit)
    sel = inner.subquery("sel")
    m = c.new_values()
    on = m.c.file_id == sel.c.file_id
    if fields is not None:
        wanted = [n for n in fields if n not in BUILTINS and not n.startswith(LAKE_PREFIX)]
        on = sa.and_(on, m.c.key.in_(wanted)) if wanted else sa.and_(on, sa.false())
    outer_order = [(sel.c[f"_sort{n}"].desc() if desc else sel.c[f"_sort{n}"].asc()).nulls_last()
                   for n, (_, desc) in enumerate(order_cols)]
    return (sa.select(*(sel.c[name] for name in RESULT_COLUMNS), m.c.key, m.c.type, m.c.v_int, m.c.v_float, m.c.v_str)
            .select_from(sel.outerjoin(m, on))
            .order_by(*outer_order, c.collated(sel.c.path, "str"), m.c.key))


def compile_count(query: Query, datasource_id: str, types: Mapping[str, str], dialect: str,
                  plan: str | None = None) -> sa.Select[Any]:
    """One SELECT count(*) of the datapoints the query matches (ignoring its limit)."""
    c = Compiler(types, dialect, _as_of(query), plan, datasource_id)
    dp, f = t.datapoints, t.files
    stmt = sa.select(sa.func.count()).select_from(dp.join(f, f.c.id == dp.c.file_id)).where(*c.membership(datasource_id))
    if query.where is not None:
        stmt = stmt.where(c.condition(query.where))
    return stmt


# ------------------------------------------------------------------ planning
#: How many metadata index entries :func:`choose_plan` counts, at most, to tell a selective filter.
PROBE_CAP = 20_000
_POSITIVE = ("eq", "lt", "le", "gt", "ge", "contains", "startswith", "endswith", "isin", "is_not_null")


def choose_plan(conn: sa.Connection, query: Query, types: Mapping[str, str], dialect: str,
                datasource_id: str = "") -> str | None:
    """How SQLite should run a query: ``"index"`` (drive from a metadata index) or ``"scan"`` (walk the
    datasource in path order), or None to leave it to the database.

    PostgreSQL keeps statistics and plans well on its own. SQLite has none, so
    it prefers walking the datasource's (id, path) index, which is right for
    an unselective filter under a limit and wrong (a full walk) for a
    selective one. A query without a limit, or one with a condition on path,
    needs no help; with a limit in path order, counting at most PROBE_CAP
    entries of the metadata index tells which case it is.
    """
    if dialect != "sqlite" or query.where is None:
        return None
    parts = conjuncts(query.where)
    leaves = [p for p in parts if isinstance(p, Leaf) and p.field not in BUILTINS and p.op in _POSITIVE]
    if any(isinstance(p, Leaf) and p.field == "path" and p.op in ("eq", "isin", "startswith") for p in parts):
        return None
    path_limited = query.limit is not None and (not query.order or query.order[0][0] == "path")
    if not leaves:
        # Nothing selective to drive from: under a limit, probe datapoints in path order
        # rather than build the full list a NOT IN needs.
        return "scan" if path_limited else None
    if not path_limited:
        return "index"
    c = Compiler(types, dialect, _as_of(query), None, datasource_id)
    for leaf in leaves:
        lake, key = stored_key(leaf.field)
        m = c.new_values(lake)
        ftype = types[leaf.field]
        value = _encoded_operand(leaf, ftype)
        test = [] if leaf.op == "is_not_null" else [_column_pred(m.c[values.column_for(ftype)], leaf.op, value, dialect)]
        probe = sa.select(sa.literal(1)).select_from(m).where(m.c.key == key, *test).limit(PROBE_CAP).subquery()
        if int(conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar() or 0) < PROBE_CAP:
            return "index"
    return "scan"


# ------------------------------------------------------------------- running
@dataclass
class DatapointRow:
    """One datapoint a query matched: its columns, its file's, and the field values fetched."""

    dp_id: str
    path: str
    file_id: str
    fingerprint: str | None
    size: int
    kind: str
    hash: str | None
    uri: str | None
    name: str
    version: int
    #: field -> decoded value (a blob is its object hash)
    metadata: dict[str, Any] = field(default_factory=dict)


def select_datapoints(catalog: Catalog, query: Query, datasource_id: str, types: Mapping[str, str],
                      lake_fields: bool = False) -> tuple[list[DatapointRow], dict[str, str]]:
    """Run a query: the datapoints it matches, in order, with their values (only ``query.select``'s, if set).

    With ``lake_fields``, each datapoint also gets its file's lake metadata as
    ``lake.<key>`` fields (a second statement). Returns the rows and the type
    of every field a value was read for. ``types`` must give the type of every
    field the query uses.
    """
    engine = catalog.engine
    dialect = engine.dialect.name
    rows: list[DatapointRow] = []
    found: dict[str, str] = {}
    with engine.connect() as conn:
        plan = choose_plan(conn, query, types, dialect, datasource_id)
        stmt = compile_select(query, datasource_id, types, dialect, fields=query.select, plan=plan)
        for r in conn.execute(stmt):
            if not rows or rows[-1].dp_id != r.dp_id:
                rows.append(DatapointRow(*(getattr(r, name) for name in RESULT_COLUMNS)))
            if r.key is not None:
                rows[-1].metadata[r.key] = values.decode(r.type, r.v_int, r.v_float, r.v_str)
                found.setdefault(r.key, r.type)
        if lake_fields and rows:
            _add_lake_fields(conn, rows, query, found)
    return rows, found


def _add_lake_fields(conn: sa.Connection, rows: list[DatapointRow], query: Query, found: dict[str, str]) -> None:
    """Put each row's file metadata (at the query's time) in its values as ``lake.<key>``."""
    keys = None if query.select is None else [stored_key(n)[1] for n in query.select if n.startswith(LAKE_PREFIX)]
    if keys == []:
        return
    by_file: dict[str, list[DatapointRow]] = {}
    for row in rows:
        by_file.setdefault(row.file_id, []).append(row)
    m = values_table(_as_of(query), "lake_vals")
    for chunk in chunks(sorted(by_file)):
        stmt = sa.select(m.c.file_id, m.c.key, m.c.type, m.c.v_int, m.c.v_float, m.c.v_str).where(m.c.file_id.in_(chunk))
        if keys is not None:
            stmt = stmt.where(m.c.key.in_(keys))
        for r in conn.execute(stmt.order_by(m.c.file_id, m.c.key)):
            name = LAKE_PREFIX + r.key
            for row in by_file[r.file_id]:
                row.metadata[name] = values.decode(r.type, r.v_int, r.v_float, r.v_str)
            found.setdefault(name, r.type)


def count_datapoints(catalog: Catalog, query: Query, datasource_id: str, types: Mapping[str, str]) -> int:
    """How many datapoints a query matches, ignoring its limit, in one COUNT query."""
    engine = catalog.engine
    dialect = engine.dialect.name
    unlimited = replace(query, limit=None)
    with engine.connect() as conn:
        plan = choose_plan(conn, unlimited, types, dialect, datasource_id)
        return int(conn.execute(compile_count(unlimited, datasource_id, types, dialect, plan)).scalar() or 0)


__all__ = ["PROBE_CAP", "RESULT_COLUMNS", "Compiler", "DatapointRow", "choose_plan", "compile_count", "compile_select",
           "count_datapoints", "encode_value", "select_datapoints", "stored_key", "values_table"]
