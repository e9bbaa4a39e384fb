"""ISO 8601 timestamps, parsed the same on every supported Python (shared by every layer; no dependencies).

Here rather than in ``catalog/values.py`` so that the CLI can parse a
``--as-of`` time without importing the catalog (and SQLAlchemy) at start-up.
"""

from __future__ import annotations

import datetime as dt
import re

_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
                        r"\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?")


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO 8601 timestamp as a datetime, the same on every supported Python (3.10's ``fromisoformat`` is narrower).

    Accepts a date alone, ``T`` or a space before the time, seconds and any
    number of fractional digits optional (rounded down to microseconds), and
    ``Z``, ``+01``, ``+0100`` or ``+01:00`` as the offset. Without an offset
    the result is naive (callers take that as UTC).

    Raises:
        ValueError: ``text`` is not such a timestamp.
    """
    m = _TIMESTAMP.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"Invalid isoformat string: {text!r}")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = m.groups()
    tz: dt.tzinfo | None = None
    if zulu:
        tz = dt.timezone.utc
    elif sign:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m or 0))
        tz = dt.timezone(-offset if sign == "-" else offset)
    micros = int((frac or "0")[:6].ljust(6, "0"))
    return dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micros,
                       tzinfo=tz)


__all__ = ["parse_timestamp"]
