"""File names, refs and ids.

A name is a relative POSIX path (``raw/train.csv``). A ref is a name (its
latest version), ``name@N`` (version N), or a file id. Ids are ULIDs: 26
Crockford base32 characters, time-ordered, so sorting ids sorts by creation
time and ``reindex`` can replay commits in order.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass

from .errors import InvalidName, InvalidRef

MAX_NAME_BYTES = 1024
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_SHIFTS = range(120, -1, -10)
_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_random = random.Random(int.from_bytes(os.urandom(16), "big"))
# Forked workers (Dask, multiprocessing) must not share one random sequence.
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(16)))
_last_ulid = [0, 0]  # (ms, random) of the last id, to stay monotonic within a ms


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid file name, else raise :class:`InvalidName`."""
    if not isinstance(name, str):
        raise InvalidName(f"a file name must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidName("a file name must not be empty; give a relative path such as 'raw/train.csv'")
    if "\x00" in name:
        raise InvalidName(f"file name {name!r} contains a NUL byte; remove it")
    if "\\" in name:
        raise InvalidName(f"file name {name!r} contains a backslash; use '/' between folders")
    if name.startswith("/"):
        raise InvalidName(f"file name {name!r} is absolute; drop the leading '/'")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"file name is longer than {MAX_NAME_BYTES} bytes; shorten it")
    parts = name.split("/")
    for part in parts:
        if part == "..":
            raise InvalidName(f"file name {name!r} has a '..' segment; names cannot leave the lake")
        if part in ("", "."):
            raise InvalidName(f"file name {name!r} has an empty or '.' segment; write it as 'a/b', not 'a//b' or 'a/./b'")
    if "@" in parts[-1] and parts[-1].rsplit("@", 1)[1].isdigit():
        raise InvalidName(f"file name {name!r} ends in '@<digits>', which reads as a version; rename it")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"file name {name!r} is not valid UTF-8; rename the file") from None
    return name


def is_file_id(ref: str) -> bool:
    return bool(_ULID_RE.match(ref))


@dataclass(frozen=True)
class Ref:
    """A parsed ref: exactly one of ``id`` or ``name`` is set."""

    name: str | None = None
    version: int | None = None
    id: str | None = None


def parse_ref(ref: object) -> Ref:
    """Parse ``name``, ``name@N`` or a file id."""
    if not isinstance(ref, str) or not ref:
        raise InvalidRef(f"a ref must be a non-empty str (a name, name@N, or an id), not {ref!r}")
    if is_file_id(ref):
        return Ref(id=ref)
    name, at, version = ref.rpartition("@")
    if at and version.isdigit():
        if int(version) < 1:
            raise InvalidRef(f"ref {ref!r} has version 0; versions count from 1, write name@1")
        return Ref(name=validate_name(name), version=int(version))
    return Ref(name=validate_name(ref))


def new_id() -> str:
    """A new ULID: 48 bits of milliseconds, then 80 random bits, monotonic per process."""
    ms = time.time_ns() // 1_000_000
    if ms == _last_ulid[0]:
        rand = _last_ulid[1] + 1
    else:
        rand = _random.getrandbits(80)  # uniqueness, not secrecy: no syscall per id
    _last_ulid[0], _last_ulid[1] = ms, rand
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    # 26 Crockford characters, two at a time from a 1024-entry table (13 steps, not 26).
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def ulid_seconds(ulid: str) -> float:
    """When a ULID was made, in seconds since the epoch (its first 48 bits)."""
    value = 0
    for ch in ulid[:10]:
        value = value * 32 + _CROCKFORD.index(ch)
    return value / 1000.0


def normalize_local_name(relative_path: str) -> str:
    """Turn an OS-relative path into a POSIX name."""
    return relative_path.replace(os.sep, "/")
