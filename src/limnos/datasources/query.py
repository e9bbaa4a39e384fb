"""Datasource queries: pandas-like expressions, compiled to one SQL statement.

``ds["episode"] > 5`` builds a :class:`Condition`; ``&``, ``|`` and ``~``
combine conditions; a :class:`Query` adds ``select``, ``order_by``,
``limit`` and ``as_of``. :func:`compile_select` turns a query into one
SQLAlchemy Core SELECT that runs unchanged on SQLite and PostgreSQL.

Semantics (the same as pandas on a table where a missing value is NaN):

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
import difflib
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from ..catalog import schema as t
from ..catalog import values
from ..errors import FieldNotFound, QueryError, SchemaError

# Fields every datapoint has; they are columns, not metadata.
BUILTINS = {"path": "str", "size": "int"}
COMPARISONS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "contains", "startswith", "endswith", "isin", "is_null", "is_not_null")
_SYMBOL = {v: k for k, v in COMPARISONS.items()}

_PRECEDENCE = ("{what} cannot be combined with & | ~ directly: Python's & and | bind tighter than comparisons, "
               "so write each comparison in parentheses, as in (ds['a'] > 5) & (ds['b'] == 1)")


def _precedence_error(what: str) -> QueryError:
    return QueryError(_PRECEDENCE.format(what=what))


class Condition:
    """A boolean condition on datapoints; combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: object) -> Condition:
        return And((self, _as_condition(other, "&")))

    def __or__(self, other: object) -> Condition:
        return Or((self, _as_condition(other, "|")))

    def __rand__(self, other: object) -> Condition:
        raise _precedence_error(f"the value {other!r}")

    __ror__ = __rand__

    def __invert__(self) -> Condition:
        return Not(self)

    def __bool__(self) -> bool:
        raise QueryError("a query condition has no truth value: combine conditions with & | ~ (not and/or/not), "
                         "and put each comparison in parentheses, as in (ds['a'] > 5) & (ds['b'] == 1)")

    def fields(self) -> set[str]:
        raise NotImplementedError

    def to_json(self) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Condition {describe(self)}>"


def _as_condition(other: object, op: str) -> Condition:
    if isinstance(other, Condition):
        return other
    if isinstance(other, Field):
        raise QueryError(f"cannot use {op} with the field {other.name!r} itself; compare it first, "
                         f"as in (ds[{other.name!r}] == True)")
    raise _precedence_error(f"the value {other!r}")


@dataclass(frozen=True, eq=False, repr=False)
class Leaf(Condition):
    field: str
    op: str
    value: Any = None

    def fields(self) -> set[str]:
        return {self.field}

    def to_json(self) -> Any:
        value = self.value
        if isinstance(value, dt.datetime):
            value = {"$datetime": values.to_utc(value).isoformat()}
        elif isinstance(value, tuple):
            value = [{"$datetime": values.to_utc(v).isoformat()} if isinstance(v, dt.datetime) else v for v in value]
        return {"field": self.field, "op": self.op, "value": value}


@dataclass(frozen=True, eq=False, repr=False)
class And(Condition):
    parts: tuple[Condition, ...]

    def fields(self) -> set[str]:
        return set().union(*(p.fields() for p in self.parts))

    def to_json(self) -> Any:
        return {"and": [p.to_json() for p in self.parts]}


@dataclass(frozen=True, eq=False, repr=False)
class Or(Condition):
    parts: tuple[Condition, ...]

    def fields(self) -> set[str]:
        return set().union(*(p.fields() for p in self.parts))

    def to_json(self) -> Any:
        return {"or": [p.to_json() for p in self.parts]}


@dataclass(frozen=True, eq=False, repr=False)
class Not(Condition):
    part: Condition

    def fields(self) -> set[str]:
        return self.part.fields()

    def to_json(self) -> Any:
        return {"not": self.part.to_json()}


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "$datetime" in value:
        return dt.datetime.fromisoformat(value["$datetime"])
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    return value


def condition_from_json(data: Any) -> Condition:
    if "and" in data:
        return And(tuple(condition_from_json(p) for p in data["and"]))
    if "or" in data:
        return Or(tuple(condition_from_json(p) for p in data["or"]))
    if "not" in data:
        return Not(condition_from_json(data["not"]))
    if data.get("op") not in OPS:
        raise QueryError(f"unknown query operator {data.get('op')!r} in a saved query")
    return Leaf(data["field"], data["op"], _decode_value(data.get("value")))


def describe(cond: Condition | None) -> str:
    """A readable form of a condition, in the CLI's query syntax."""
    if cond is None:
        return "all"
    if isinstance(cond, And):
        return " and ".join(_wrap(p, Or) for p in cond.parts)
    if isinstance(cond, Or):
        return " or ".join(describe(p) for p in cond.parts)
    if isinstance(cond, Not):
        return f"not ({describe(cond.part)})"
    assert isinstance(cond, Leaf)
    if cond.op in _SYMBOL:
        return f"{cond.field} {_SYMBOL[cond.op]} {_literal(cond.value)}"
    if cond.op == "isin":
        return f"{cond.field} in [{', '.join(_literal(v) for v in cond.value)}]"
    if cond.op in ("is_null", "is_not_null"):
        return f"{cond.field} is {'not ' if cond.op == 'is_not_null' else ''}null"
    return f"{cond.field} {cond.op} {_literal(cond.value)}"


def _wrap(cond: Condition, kind: type) -> str:
    text = describe(cond)
    return f"({text})" if isinstance(cond, kind) else text


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return f'"{values.to_utc(value).isoformat()}"'
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


class Field:
    """``ds["name"]``: compare it (``==``, ``<``...) or test it (``.contains()``, ``.is_null()``...)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<Field {self.name!r}>"

    def _compare(self, op: str, value: Any) -> Leaf:
        if isinstance(value, Field):
            raise QueryError(f"cannot compare field {self.name!r} with field {value.name!r}: queries compare a field "
                             "with a value; filter on one field, then compare the two in the result's dataframe")
        if isinstance(value, Condition):
            raise _precedence_error(f"field {self.name!r}")
        _check_scalar(self.name, value)
        return Leaf(self.name, op, value)

    def __eq__(self, value: object) -> Leaf:  # type: ignore[override]
        return self._compare("eq", value)

    def __ne__(self, value: object) -> Leaf:  # type: ignore[override]
        return self._compare("ne", value)

    def __lt__(self, value: Any) -> Leaf:
        return self._compare("lt", value)

    def __le__(self, value: Any) -> Leaf:
        return self._compare("le", value)

    def __gt__(self, value: Any) -> Leaf:
        return self._compare("gt", value)

    def __ge__(self, value: Any) -> Leaf:
        return self._compare("ge", value)

    __hash__ = None  # type: ignore[assignment]

    def contains(self, text: str) -> Leaf:
        return Leaf(self.name, "contains", _text(self.name, "contains", text))

    def startswith(self, text: str) -> Leaf:
        return Leaf(self.name, "startswith", _text(self.name, "startswith", text))

    def endswith(self, text: str) -> Leaf:
        return Leaf(self.name, "endswith", _text(self.name, "endswith", text))

    def isin(self, options: Iterable[Any]) -> Leaf:
        if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
            raise QueryError(f"isin takes a list of values, as in ds[{self.name!r}].isin([1, 2]), not {options!r}")
        items = tuple(options)
        for item in items:
            if isinstance(item, Field):
                raise QueryError(f"isin compares field {self.name!r} with values, not with field {item.name!r}")
            _check_scalar(self.name, item)
        return Leaf(self.name, "isin", items)

    def is_null(self) -> Leaf:
        return Leaf(self.name, "is_null")

    def is_not_null(self) -> Leaf:
        return Leaf(self.name, "is_not_null")

    # A field on its own is no condition; these catch `ds["a"] > 5 & ds["b"] == 1`,
    # which Python reads as `ds["a"] > (5 & ds["b"]) == 1`.
    def __and__(self, other: object) -> Condition:
        raise _precedence_error(f"field {self.name!r}")

    __rand__ = __or__ = __ror__ = __and__

    def __invert__(self) -> Condition:
        raise QueryError(f"~ negates a condition, not field {self.name!r}: write ~(ds[{self.name!r}] == value)")

    def __bool__(self) -> bool:
        raise QueryError(f"field {self.name!r} has no truth value; compare it, as in ds[{self.name!r}] == True")

    def __contains__(self, item: object) -> bool:
        raise QueryError(f"'x in ds[{self.name!r}]' is not supported; use ds[{self.name!r}].contains(x)")


def _text(name: str, op: str, text: Any) -> str:
    if not isinstance(text, str):
        raise QueryError(f"{op} on field {name!r} takes a str, not {type(text).__name__}")
    return text


def _check_scalar(name: str, value: Any) -> None:
    if value is None:
        raise QueryError(f"compare field {name!r} with a value, not None; use ds[{name!r}].is_null() to find missing values")
    if not isinstance(value, (bool, numbers.Real, str, dt.datetime, dt.date)) and type(value).__name__ != "bool_":
        raise QueryError(f"field {name!r} can be compared with an int, float, bool, str or datetime, "
                         f"not {type(value).__name__}")


# ----------------------------------------------------------------- queries
@dataclass(frozen=True)
class Query:
    """What a datasource view shows: a filter, the fields, the order, a limit and a time."""

    where: Condition | None = None
    select: tuple[str, ...] | None = None
    order: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    limit: int | None = None
    as_of: dt.datetime | None = None

    def and_where(self, cond: Condition) -> Query:
        return replace(self, where=cond if self.where is None else And((self.where, cond)))

    def fields(self) -> set[str]:
        used = set(self.where.fields()) if self.where is not None else set()
        used.update(self.select or ())
        used.update(f for f, _ in self.order)
        return used

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where.to_json() if self.where is not None else None,
                "select": list(self.select) if self.select is not None else None,
                "order": [[f, d] for f, d in self.order], "limit": self.limit}

    @classmethod
    def from_json(cls, data: dict[str, Any], as_of: dt.datetime | None = None) -> Query:
        where = condition_from_json(data["where"]) if data.get("where") else None
        select = tuple(data["select"]) if data.get("select") is not None else None
        return cls(where, select, tuple((f, bool(d)) for f, d in data.get("order") or ()), data.get("limit"), as_of)


def check_fields(names: Iterable[str], known: Sequence[str], datasource: str) -> None:
    """Raise FieldNotFound for the first unknown name, listing close ones."""
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
                else f"its fields are: {', '.join(sorted(known)[:30])}")
        raise FieldNotFound(f"datasource {datasource!r} has no field {name!r}; {hint}")


# ------------------------------------------------------------ compilation
def values_table(as_of: dt.datetime | None, name: str = "vals") -> Any:
    """The (file_id, key, type, v_int, v_float, v_str) rows in force: now, or at ``as_of``."""
    if as_of is None:
        return t.metadata_current.alias(name)
    log, newer = t.metadata_log.alias(f"{name}_log"), t.metadata_log.alias(f"{name}_later")
    last = (sa.select(sa.func.max(newer.c.seq))
            .where(newer.c.file_id == log.c.file_id, newer.c.key == log.c.key, newer.c.set_at <= as_of)
            .scalar_subquery())
    return (sa.select(log.c.file_id, log.c.key, log.c.type, log.c.v_int, log.c.v_float, log.c.v_str)
            .where(log.c.set_at <= as_of, log.c.seq == last, log.c.deleted == sa.false())
            .subquery(name))


def encode_value(name: str, ftype: str, value: Any) -> Any:
    """A query value as the typed column stores it, or SchemaError if it cannot match the field's type."""
    if ftype in ("blob", "json"):
        raise SchemaError(f"field {name!r} holds {ftype} values, which cannot be compared; "
                          f"use ds[{name!r}].is_null() or .is_not_null()")
    actual = "bool" if isinstance(value, bool) or type(value).__name__ == "bool_" else None
    if ftype == "datetime":
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
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
        return float(value) if ftype == "float" or not isinstance(value, numbers.Integral) else int(value)
    if ftype == "str":
        if not isinstance(value, str):
            raise SchemaError(f"field {name!r} holds str values; compare it with a str, not {value!r}")
        return value
    raise SchemaError(f"field {name!r} has unknown type {ftype!r}")


def _column_pred(column: Any, op: str, value: Any, dialect: str) -> Any:
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
        return column.in_(list(value))
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


class Compiler:
    """Compiles conditions on one datasource; ``types`` maps each field to its type."""

    def __init__(self, types: dict[str, str], dialect: str, as_of: dt.datetime | None, plan: str | None = None) -> None:
        self.types = types
        self.plan = plan  # None: let the database choose; "index" / "scan": see choose_plan
        self.dialect = dialect
        self.as_of = as_of
        self._aliases = 0
        self.dp = t.datapoints
        self.files = t.files

    def builtin_column(self, name: str) -> Any:
        return self.dp.c.path if name == "path" else self.files.c.size

    def condition(self, cond: Condition) -> Any:
        if isinstance(cond, And):
            return sa.and_(*(self.condition(p) for p in cond.parts))
        if isinstance(cond, Or):
            return sa.or_(*(self.condition(p) for p in cond.parts))
        if isinstance(cond, Not):
            return sa.not_(self.condition(cond.part))
        assert isinstance(cond, Leaf)
        return self.leaf(cond)

    def leaf(self, leaf: Leaf) -> Any:
        name, op, ftype = leaf.field, leaf.op, self.types[leaf.field]
        if op in ("contains", "startswith", "endswith") and ftype != "str":
            raise SchemaError(f"{op} works on str fields; field {name!r} holds {ftype} values")
        value = leaf.value
        if op in COMPARISONS.values():
            value = encode_value(name, ftype, value)
        elif op == "isin":
            value = tuple(encode_value(name, ftype, v) for v in value)
        if name in BUILTINS:
            column = self.builtin_column(name)
            if op == "is_null":
                return sa.false()
            if op == "is_not_null":
                return sa.true()
            if op == "isin" and not value:
                return sa.false()
            pred = _column_pred(self.collated(column, ftype, op), op, value, self.dialect)
            return sa.not_(pred) if op == "ne" else pred
        m = self.new_values()
        if op == "isin" and not value:
            return sa.false()
        column = self.collated(m.c[values.column_for(ftype)], ftype, op)
        test = None if op in ("is_null", "is_not_null") else _column_pred(column, op, value, self.dialect)
        if self.plan == "scan":
            # Probe each datapoint (walking the datasource in path order, stopping at the limit).
            found = sa.exists().where(m.c.file_id == self.dp.c.file_id, m.c.key == name,
                                      *(() if test is None else (test,)))
            return ~found if op in ("is_null", "ne") else found
        matching = sa.select(m.c.file_id).where(m.c.key == name, *(() if test is None else (test,)))
        # != is the complement of ==, as in pandas: a missing value is "not equal".
        if op in ("is_null", "ne"):
            return self.dp.c.file_id.not_in(matching)
        return self.dp.c.file_id.in_(matching)

    def collated(self, column: Any, ftype: str, op: str = "lt") -> Any:
        """On PostgreSQL, order text by code point (COLLATE "C"), as SQLite and Python do."""
        if ftype == "str" and self.dialect == "postgresql" and op in ("lt", "le", "gt", "ge"):
            return column.collate("C")
        return column

    def new_values(self) -> Any:
        """A fresh alias of the values table, so no two uses of it in one statement get correlated."""
        self._aliases += 1
        return values_table(self.as_of, f"m{self._aliases}")

    def sort_column(self, name: str) -> Any:
        if name in BUILTINS:
            return self.collated(self.builtin_column(name), self.types[name])
        ftype = self.types[name]
        if ftype in ("blob", "json"):
            raise SchemaError(f"cannot order by field {name!r}: it holds {ftype} values")
        m = self.new_values()
        column = self.collated(m.c[values.column_for(ftype)], ftype)
        return sa.select(column).where(m.c.file_id == self.dp.c.file_id, m.c.key == name).scalar_subquery()

    def membership(self, datasource_id: str) -> list[Any]:
        dp = self.dp
        source = dp.c.datasource_id
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


RESULT_COLUMNS = ("dp_id", "path", "file_id", "fingerprint", "size", "kind", "hash", "uri", "name", "version")


def compile_select(query: Query, datasource_id: str, types: dict[str, str], dialect: str,
                   fields: Sequence[str] | None = None, plan: str | None = None) -> sa.Select[Any]:
    """One SELECT: the matching datapoints (filtered, ordered, limited) joined with their field values.

    Rows are (datapoint columns..., key, type, v_int, v_float, v_str), one per
    (datapoint, field), ordered as the query asks; a datapoint without values
    comes once with NULLs. ``fields`` limits the values fetched.
    """
    as_of = values.to_utc(query.as_of) if query.as_of is not None else None
    c = Compiler(types, dialect, as_of, plan)
    dp, f = t.datapoints, t.files
    order_cols = []
    for n, (name, desc) in enumerate(query.order):
        col = c.sort_column(name).label(f"_sort{n}")
        order_cols.append((col, desc))
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
        wanted = [n for n in fields if n not in BUILTINS]
        on = sa.and_(on, m.c.key.in_(wanted)) if wanted else sa.and_(on, sa.false())
    outer_order = [(sel.c[f"_sort{n}"].desc() if desc else sel.c[f"_sort{n}"].asc()).nulls_last()
                   for n, (_, desc) in enumerate(order_cols)]
    return (sa.select(*(sel.c[name] for name in RESULT_COLUMNS), m.c.key, m.c.type, m.c.v_int, m.c.v_float, m.c.v_str)
            .select_from(sel.outerjoin(m, on))
            .order_by(*outer_order, c.collated(sel.c.path, "str"), m.c.key))


def compile_count(query: Query, datasource_id: str, types: dict[str, str], dialect: str,
                  plan: str | None = None) -> sa.Select[Any]:
    """One SELECT count(*) of the datapoints the query matches (ignoring its limit)."""
    as_of = values.to_utc(query.as_of) if query.as_of is not None else None
    c = Compiler(types, dialect, as_of, plan)
    dp, f = t.datapoints, t.files
    stmt = sa.select(sa.func.count()).select_from(dp.join(f, f.c.id == dp.c.file_id)).where(*c.membership(datasource_id))
    if query.where is not None:
        stmt = stmt.where(c.condition(query.where))
    return stmt


# ------------------------------------------------------------------ planning
PROBE_CAP = 20_000
_POSITIVE = ("eq", "lt", "le", "gt", "ge", "contains", "startswith", "endswith", "isin", "is_not_null")


def _conjuncts(cond: Condition) -> list[Condition]:
    if isinstance(cond, And):
        return [c for p in cond.parts for c in _conjuncts(p)]
    return [cond]


def choose_plan(conn: sa.Connection, query: Query, types: dict[str, str], dialect: str) -> str | None:
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
    parts = _conjuncts(query.where)
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
    as_of = values.to_utc(query.as_of) if query.as_of is not None else None
    c = Compiler(types, dialect, as_of)
    for leaf in leaves:
        m = c.new_values()
        ftype = types[leaf.field]
        value = leaf.value
        if leaf.op in COMPARISONS.values():
            value = encode_value(leaf.field, ftype, value)
        elif leaf.op == "isin":
            value = tuple(encode_value(leaf.field, ftype, v) for v in value)
        test = [] if leaf.op == "is_not_null" else [_column_pred(m.c[values.column_for(ftype)], leaf.op, value, dialect)]
        probe = sa.select(sa.literal(1)).select_from(m).where(m.c.key == leaf.field, *test).limit(PROBE_CAP).subquery()
        if int(conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar() or 0) < PROBE_CAP:
            return "index"
    return "scan"


__all__ = ["BUILTINS", "And", "Compiler", "Condition", "Field", "Leaf", "Not", "Or", "Query", "check_fields",
           "choose_plan", "compile_count", "compile_select", "condition_from_json", "describe", "encode_value", "values_table"]
