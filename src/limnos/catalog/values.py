"""Typed metadata values: inference, validation and the column encoding.

A key's type is fixed by its first value. numpy scalars are stored as the
Python value they hold (``np.bool_`` as bool, ``np.float32`` as float,
``np.datetime64`` as datetime). A ``datetime.date`` is stored as a datetime
at midnight UTC (it comes back as a datetime). ``None`` as a value unsets the
key (setting ``{"x": None}`` removes ``x``; it is not a stored null). Values are stored in one of three
columns (``v_int``, ``v_float``, ``v_str``) so each kind can be indexed:
bool as 0/1 and datetime as UTC microseconds in ``v_int``; JSON as canonical
text and blobs as an object hash in ``v_str``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from collections.abc import Mapping
from typing import Any, overload

from ..errors import MetadataError, SchemaError
from ..times import parse_timestamp as parse_timestamp  # re-exported: callers in catalog/ use values.parse_timestamp

# Keys that are already columns of a query result; metadata may not shadow them.
RESERVED_KEYS = frozenset({"id", "name", "version", "hash", "size", "created_at", "user", "run", "kind", "uri"})
MAX_KEY_LENGTH = 256
#: The range of ``v_int``: a signed 64-bit column on SQLite and PostgreSQL alike.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
Encoded = tuple[str, int | None, float | None, str | None]


def check_text(text: str, what: str) -> str:
    """Return ``text`` if every database and records file can hold it.

    Raises:
        MetadataError: it holds a NUL (PostgreSQL refuses those) or a lone surrogate (not encodable as UTF-8).
    """
    if "\x00" in text:
        raise MetadataError(f"{what} contains a NUL byte; remove it", key=text if what.startswith("metadata key") else None)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MetadataError(f"{what} {text[:40]!r} is not valid Unicode text (it holds a lone surrogate); "
                            "decode the bytes it came from with errors='replace'") from None
    return text


def validate_key(key: object, reserved_ok: bool = False) -> str:
    """Return ``key`` if it can name metadata (``reserved_ok``: built-in column names too, for queries).

    Raises:
        MetadataError: it is not a non-empty str, is too long, names a built-in column, or holds a NUL
            or a lone surrogate.
    """
    if not isinstance(key, str) or not key:
        raise MetadataError(f"metadata keys must be non-empty strings, not {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise MetadataError(f"metadata key {key[:40]!r}... is over {MAX_KEY_LENGTH} characters; shorten it", key=key)
    if key in RESERVED_KEYS and not reserved_ok:
        raise MetadataError(f"metadata key {key!r} is a built-in column; pick another name, such as '{key}_'", key=key)
    check_text(key, "metadata key")
    return key


def validate_metadata(metadata: object) -> dict[str, Any]:
    """Check a metadata batch as far as it can be checked without the catalog; the batch as a dict.

    Runs before any query, so that no bad key or value ever reaches the database
    (PostgreSQL fails on a non-str key or a NUL at the first query that names it).

    Raises:
        MetadataError: ``metadata`` is not a mapping, or a key or value cannot be stored.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise MetadataError(f"metadata must be a dict of key -> value, not {type(metadata).__name__}")
    out = dict(metadata)
    for key, value in out.items():
        validate_key(key)
        if value is None:
            continue  # None unsets the key: nothing to store
        vtype = infer_type(value)
        if vtype == "int" and not INT_MIN <= int(value) <= INT_MAX:
            continue  # a float key takes it; encode() decides once the key's type is known
        if vtype != "blob":
            encode(value, vtype)
    return out


def plain(value: Any) -> Any:
    """The plain Python value metadata stores for ``value``: numpy scalars unwrapped, a date made a datetime."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        kind = getattr(getattr(value, "dtype", None), "kind", "")
        if kind == "M":  # datetime64: at microseconds .item() is a datetime (at ns it would be an int)
            value = value.astype("datetime64[us]").item()
            return value if value is None else value.replace(tzinfo=dt.timezone.utc)
        if kind == "m":
            return value.astype("timedelta64[us]").item()
        value = value.item()
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    return value


def _json_default(value: Any) -> Any:
    converted = plain(value)
    if converted is value:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return converted.isoformat() if isinstance(converted, dt.datetime) else converted


def infer_type(value: Any) -> str:
    """The metadata type of a Python value (numpy scalars and dates as :func:`plain` makes them), or raise MetadataError."""
    value = plain(value)
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "blob"
    if isinstance(value, (dict, list, tuple)):
        return "json"
    raise MetadataError(
        f"cannot store a {type(value).__name__} as metadata; use int, float, bool, str, datetime, date, dict or list "
        "(or None to unset the key)"
    )


@overload
def to_utc(value: dt.datetime) -> dt.datetime: ...


@overload
def to_utc(value: None) -> None: ...


def to_utc(value: dt.datetime | None) -> dt.datetime | None:
    """The same instant as a timezone-aware UTC datetime; None stays None.

    A naive datetime is taken as UTC, so a value means the same on every
    machine (and SQLite hands stored times back naive; limnos stores only UTC).
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def check_type(key: str, value: Any, fixed: str | None) -> str:
    """Return the type ``value`` is stored as under ``key``, or raise SchemaError."""
    actual = infer_type(value)
    if fixed is None or actual == fixed:
        return actual
    if fixed == "float" and actual == "int":
        # An int is a valid float value when a float holds it exactly; past 2**53 it would come back changed.
        if abs(plain(value)) <= 2**53 or _exact_float(plain(value)):
            return "float"
        raise SchemaError(f"metadata key {key!r} holds float values, and the int {value} has no exact float; "
                          "pass it as a float (accepting the rounding) or use a new key", key=key)
    raise SchemaError(f"metadata key {key!r} holds {fixed} values, not {actual}; pass a {fixed} or use a new key")


def _exact_float(number: int) -> bool:
    try:
        return int(float(number)) == number
    except OverflowError:
        return False


def encode(value: Any, type_: str) -> Encoded:
    """Encode a value already checked to be of ``type_``. Blobs must be hashed by the caller."""
    value = plain(value)
    if type_ == "bool":
        return ("bool", int(bool(value)), None, None)
    if type_ == "int":
        number = int(value)
        if not INT_MIN <= number <= INT_MAX:
            raise MetadataError(f"metadata int {number} is outside the 64-bit range (-2**63 to 2**63-1); "
                                "store it as a float or a str")
        return ("int", number, None, None)
    if type_ == "float":
        try:
            f = float(value)
        except OverflowError:
            raise MetadataError(f"metadata number {value} is too large for a float; store it as a str") from None
        if math.isnan(f):
            raise MetadataError("NaN cannot be stored as metadata; unset the key instead")
        return ("float", None, f, None)
    if type_ == "str":
        if "\x00" in value:
            raise MetadataError("metadata strings cannot contain NUL bytes")
        return ("str", None, None, check_text(value, "metadata string"))
    if type_ == "datetime":
        try:
            delta = to_utc(value) - _EPOCH
        except OverflowError:
            raise MetadataError(f"metadata datetime {value!r} is out of range in UTC") from None
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return ("datetime", micros, None, None)
    if type_ == "json":
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False,
                              default=_json_default)
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"metadata value is not JSON-serializable: {exc}") from exc
        except RecursionError:
            raise MetadataError("metadata value is nested too deeply to store as JSON; flatten it") from None
        return ("json", None, None, text)
    if type_ == "blob":
        return ("blob", None, None, str(value))
    raise MetadataError(f"unknown metadata type {type_!r}")


def decode(type_: str, v_int: int | None, v_float: float | None, v_str: str | None) -> Any:
    """The Python value of a stored metadata value (the reverse of :func:`encode`)."""
    if type_ == "bool":
        return bool(v_int)
    if type_ == "int":
        return int(v_int) if v_int is not None else None
    if type_ == "float":
        return float(v_float) if v_float is not None else None
    if type_ == "datetime":
        return _EPOCH + dt.timedelta(microseconds=int(v_int or 0))
    if type_ == "json":
        return json.loads(v_str) if v_str is not None else None
    return v_str  # str, and blob (its object hash)


def column_for(type_: str) -> str:
    """The column (``v_int``, ``v_float`` or ``v_str``) that holds values of ``type_``."""
    if type_ in ("bool", "int", "datetime"):
        return "v_int"
    if type_ == "float":
        return "v_float"
    return "v_str"
