"""Datasource queries: pandas-like expressions on a datasource's fields.

``ds["episode"] > 5`` gives a :class:`Field` compared with a value: a
:class:`~limnos.catalog.expressions.Leaf` condition. ``&``, ``|`` and ``~``
combine conditions; a :class:`~limnos.catalog.expressions.Query` adds
``select``, ``order_by``, ``limit`` and ``as_of``. The condition tree lives in
:mod:`limnos.catalog.expressions` and its compilation to one SQL statement
(SQLite and PostgreSQL alike) in :mod:`limnos.catalog.dsquery`; both are
re-exported here.

Semantics (the same as pandas on a table where a missing value is NaN):

* a comparison, ``contains``/``startswith``/``endswith`` and ``isin`` are
  False for a datapoint that has no value for the field;
* ``!=`` is the complement of ``==`` (so it is True for a missing value), and
  ``~`` is the exact complement of its operand;
* string matching is case-sensitive on both databases.
"""

from __future__ import annotations

import datetime as dt
import difflib
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from ..catalog.dsquery import (
    PROBE_CAP,
    Compiler,
    choose_plan,
    compile_count,
    compile_select,
    encode_value,
    values_table,
)
from ..catalog.expressions import (
    BUILTINS,
    COMPARISONS,
    LAKE_PREFIX,
    OPS,
    And,
    Condition,
    Leaf,
    Not,
    Operand,
    Or,
    Query,
    condition_from_json,
    describe,
    precedence_error,
)
from ..errors import FieldNotFound, QueryError


class Field(Operand):
    """``ds["name"]``: compare it (``==``, ``<``...) or test it (``.contains()``, ``.is_null()``...)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        """The field ``name`` (checked to exist by ``ds[name]``, not here)."""
        self.name = name

    def __repr__(self) -> str:
        return f"<Field {self.name!r}>"

    def _compare(self, op: str, value: Any) -> Leaf:
        """``field op value``, checked."""
        if isinstance(value, Field):
            raise QueryError(f"cannot compare field {self.name!r} with field {value.name!r}: queries compare a field "
                             "with a value; filter on one field, then compare the two in the result's dataframe")
        if isinstance(value, Condition):
            raise precedence_error(f"field {self.name!r}")
        _check_scalar(self.name, value)
        return Leaf(self.name, op, value)

    def __eq__(self, value: object) -> Leaf:  # type: ignore[override]
        """``ds[f] == value``: a condition, not a bool."""
        return self._compare("eq", value)

    def __ne__(self, value: object) -> Leaf:  # type: ignore[override]
        """``ds[f] != value``: True for a datapoint without a value too."""
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
        """The str field contains ``text`` (case-sensitive)."""
        return Leaf(self.name, "contains", _text(self.name, "contains", text))

    def startswith(self, text: str) -> Leaf:
        """The str field starts with ``text`` (case-sensitive)."""
        return Leaf(self.name, "startswith", _text(self.name, "startswith", text))

    def endswith(self, text: str) -> Leaf:
        """The str field ends with ``text`` (case-sensitive)."""
        return Leaf(self.name, "endswith", _text(self.name, "endswith", text))

    def isin(self, options: Iterable[Any]) -> Leaf:
        """The field equals one of ``options`` (a list of values; an empty one matches nothing)."""
        if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
            raise QueryError(f"isin takes a list of values, as in ds[{self.name!r}].isin([1, 2]), not {options!r}")
        items = tuple(options)
        for item in items:
            if isinstance(item, Field):
                raise QueryError(f"isin compares field {self.name!r} with values, not with field {item.name!r}")
            _check_scalar(self.name, item)
        return Leaf(self.name, "isin", items)

    def is_null(self) -> Leaf:
        """The datapoint has no value for the field."""
        return Leaf(self.name, "is_null")

    def is_not_null(self) -> Leaf:
        """The datapoint has a value for the field."""
        return Leaf(self.name, "is_not_null")

    # A field on its own is no condition; these catch `ds["a"] > 5 & ds["b"] == 1`,
    # which Python reads as `ds["a"] > (5 & ds["b"]) == 1`.
    def __and__(self, other: object) -> Condition:
        raise precedence_error(f"field {self.name!r}")

    __or__ = __and__

    def __rand__(self, other: object) -> Condition:
        # `condition & field`: Condition.__and__ leaves it to us.
        raise self._combined_error(other, "&")

    def __ror__(self, other: object) -> Condition:
        raise self._combined_error(other, "|")

    def _combined_error(self, other: object, op: str) -> QueryError:
        if isinstance(other, Condition):
            return QueryError(f"cannot use {op} with the field {self.name!r} itself; compare it first, "
                              f"as in (ds[{self.name!r}] == True)")
        return precedence_error(f"field {self.name!r}")

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


def check_fields(names: Iterable[str], known: Sequence[str], datasource: str) -> None:
    """Raise FieldNotFound for the first unknown name, listing close ones."""
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
                else f"its fields are: {', '.join(sorted(known)[:30])}")
        raise FieldNotFound(f"datasource {datasource!r} has no field {name!r}; {hint}")


__all__ = ["BUILTINS", "COMPARISONS", "LAKE_PREFIX", "OPS", "PROBE_CAP", "And", "Compiler", "Condition", "Field", "Leaf",
           "Not", "Or", "Query", "check_fields", "choose_plan", "compile_count", "compile_select", "condition_from_json",
           "describe", "encode_value", "values_table"]
