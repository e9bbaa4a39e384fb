"""Datasource query expressions: the condition tree and the query, without any SQL.

``ds["episode"] > 5`` (see :mod:`limnos.datasources.query`) builds a
:class:`Leaf`; ``&``, ``|`` and ``~`` combine conditions into :class:`And`,
:class:`Or` and :class:`Not`; a :class:`Query` adds the fields to fetch, the
order, a limit and a time. The tree lives here, below the datasources
feature, because :mod:`limnos.catalog.dsquery` compiles it to SQL; it
serializes to JSON (saved datasets) and back, and :func:`describe` prints it
in the CLI's query syntax.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import QueryError
from . import values

#: Fields every datapoint has, and their types; they are columns, not metadata.
BUILTINS = {"path": "str", "size": "int"}
#: A datasource over a lake prefix shows its files' lake metadata as read-only fields named with this prefix.
LAKE_PREFIX = "lake."
#: Python's comparison operators and the operator names a :class:`Leaf` uses for them.
COMPARISONS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
#: Every operator a :class:`Leaf` may hold.
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "contains", "startswith", "endswith", "isin", "is_null", "is_not_null")
_SYMBOL = {v: k for k, v in COMPARISONS.items()}

_PRECEDENCE = ("{what} cannot be combined with & | ~ directly: Python's & and | bind tighter than comparisons, "
               "so write each comparison in parentheses, as in (ds['a'] > 5) & (ds['b'] == 1)")


def precedence_error(what: str) -> QueryError:
    """The error for ``&``/``|``/``~`` applied to something that is not a condition (``what`` names it)."""
    return QueryError(_PRECEDENCE.format(what=what))


class Operand:
    """Base of what builds conditions without being one (a datasource field).

    ``condition & operand`` is left to the operand's ``__rand__`` (``|`` to its
    ``__ror__``), which knows how to say what to write instead.
    """

    __slots__ = ()


class Condition:
    """A boolean condition on datapoints; combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: object) -> Condition:
        if isinstance(other, Operand):
            return NotImplemented
        return And((self, _as_condition(other)))

    def __or__(self, other: object) -> Condition:
        if isinstance(other, Operand):
            return NotImplemented
        return Or((self, _as_condition(other)))

    def __rand__(self, other: object) -> Condition:
        raise precedence_error(f"the value {other!r}")

    __ror__ = __rand__

    def __invert__(self) -> Condition:
        return Not(self)

    def __bool__(self) -> bool:
        raise QueryError("a query condition has no truth value: combine conditions with & | ~ (not and/or/not), "
                         "and put each comparison in parentheses, as in (ds['a'] > 5) & (ds['b'] == 1)")

    def fields(self) -> set[str]:
        """The names of the fields the condition tests."""
        raise NotImplementedError

    def to_json(self) -> Any:
        """The condition as JSON-compatible data (see :func:`condition_from_json`)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Condition {describe(self)}>"


def _as_condition(other: object) -> Condition:
    if isinstance(other, Condition):
        return other
    raise precedence_error(f"the value {other!r}")


@dataclass(frozen=True, eq=False, repr=False)
class Leaf(Condition):
    """One test of one field: ``field op value`` (``value`` is a tuple for ``isin``, None for the null tests)."""

    field: str
    op: str
    value: Any = None

    def fields(self) -> set[str]:
        """The one field tested."""
        return {self.field}

    def to_json(self) -> Any:
        """``{"field", "op", "value"}``, datetimes as ``{"$datetime": iso}``."""
        value = self.value
        if isinstance(value, dt.datetime):
            value = {"$datetime": values.to_utc(value).isoformat()}
        elif isinstance(value, tuple):
            value = [{"$datetime": values.to_utc(v).isoformat()} if isinstance(v, dt.datetime) else v for v in value]
        return {"field": self.field, "op": self.op, "value": value}


@dataclass(frozen=True, eq=False, repr=False)
class And(Condition):
    """True when every part is."""

    parts: tuple[Condition, ...]

    def fields(self) -> set[str]:
        """The fields any part tests."""
        return set().union(*(p.fields() for p in self.parts))

    def to_json(self) -> Any:
        """``{"and": [parts...]}``."""
        return {"and": [p.to_json() for p in self.parts]}


@dataclass(frozen=True, eq=False, repr=False)
class Or(Condition):
    """True when any part is."""

    parts: tuple[Condition, ...]

    def fields(self) -> set[str]:
        """The fields any part tests."""
        return set().union(*(p.fields() for p in self.parts))

    def to_json(self) -> Any:
        """``{"or": [parts...]}``."""
        return {"or": [p.to_json() for p in self.parts]}


@dataclass(frozen=True, eq=False, repr=False)
class Not(Condition):
    """The exact complement of its part."""

    part: Condition

    def fields(self) -> set[str]:
        """The fields the part tests."""
        return self.part.fields()

    def to_json(self) -> Any:
        """``{"not": part}``."""
        return {"not": self.part.to_json()}


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "$datetime" in value:
        return values.parse_timestamp(value["$datetime"])
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    return value


def condition_from_json(data: Any) -> Condition:
    """The condition :meth:`Condition.to_json` wrote.

    Raises:
        QueryError: an operator is unknown (a saved query from a newer limnos, or edited by hand).
    """
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
    """A readable form of a condition, in the CLI's query syntax (``"all"`` for None)."""
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


def conjuncts(cond: Condition) -> list[Condition]:
    """The parts of a condition that must all hold (nested ``And``s flattened)."""
    if isinstance(cond, And):
        return [c for p in cond.parts for c in conjuncts(p)]
    return [cond]


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
        """This query with ``cond`` added to its filter."""
        return replace(self, where=cond if self.where is None else And((self.where, cond)))

    def fields(self) -> set[str]:
        """Every field the query filters on, selects or orders by."""
        used = set(self.where.fields()) if self.where is not None else set()
        used.update(self.select or ())
        used.update(f for f, _ in self.order)
        return used

    def to_json(self) -> dict[str, Any]:
        """The query as JSON-compatible data; ``as_of`` is kept apart (a saved dataset's pin)."""
        return {"where": self.where.to_json() if self.where is not None else None,
                "select": list(self.select) if self.select is not None else None,
                "order": [[f, d] for f, d in self.order], "limit": self.limit}

    @classmethod
    def from_json(cls, data: dict[str, Any], as_of: dt.datetime | None = None) -> Query:
        """The query :meth:`to_json` wrote, at ``as_of`` (None: now)."""
        where = condition_from_json(data["where"]) if data.get("where") else None
        select = tuple(data["select"]) if data.get("select") is not None else None
        order: Iterable[tuple[str, Any]] = data.get("order") or ()
        return cls(where, select, tuple((f, bool(d)) for f, d in order), data.get("limit"), as_of)


__all__ = ["BUILTINS", "COMPARISONS", "LAKE_PREFIX", "OPS", "And", "Condition", "Leaf", "Not", "Operand", "Or", "Query",
           "condition_from_json", "conjuncts", "describe", "precedence_error"]
