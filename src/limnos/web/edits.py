"""Typing the values a person types into ``limnos ui``'s metadata form.

The form sends text and a type. ``auto`` reads the text the way
``limnos meta set`` does (``42`` int, ``0.5`` float, ``true`` bool, an ISO 8601
time, ``{...}``/``[...]`` JSON, anything else text); a named type converts
or fails with :class:`~limnos.errors.MetadataError`. Whether the key accepts
that type is the lake's call: ``set_metadata`` raises the usual
:class:`~limnos.errors.SchemaError`, which the page shows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from ..errors import MetadataError
from ..times import parse_timestamp

#: the types the form offers
TYPES = ("auto", "str", "int", "float", "bool", "datetime", "json")

_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+)")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")


def _time(text: str) -> dt.datetime:
    value = parse_timestamp(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def auto_value(text: str) -> Any:
    """Text typed as ``limnos meta set`` types it; text that fits no other type stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.fullmatch(text.strip()):
        return int(text)
    if _FLOAT.fullmatch(text.strip()):
        return float(text)
    if _DATETIME.fullmatch(text.strip()):
        try:
            return _time(text)
        except ValueError:
            return text
    if text.strip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def typed_value(text: str, kind: str) -> Any:
    """``text`` as a value of type ``kind`` (one of :data:`TYPES`).

    Raises:
        MetadataError: the text is not a value of that type, or the type is unknown.
    """
    try:
        if kind == "auto":
            return auto_value(text)
        if kind == "str":
            return text
        if kind == "int":
            return int(text.strip())
        if kind == "float":
            return float(text.strip())
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError("write true or false")
            return lowered == "true"
        if kind == "datetime":
            return _time(text)
        if kind == "json":
            return json.loads(text)
    except ValueError as exc:
        raise MetadataError(f"{text!r} is not a {kind} value ({exc})", hint="correct the value or choose its type") from None
    raise MetadataError(f"unknown type {kind!r}; choose one of {', '.join(TYPES)}")
