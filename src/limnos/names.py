"""File names, refs and ids.

A name is a relative POSIX path (``raw/train.csv``) in NFC, the composed
Unicode form, and holds no control or bidi character: people read names, so
a name must look like what it is. A ref is a name (its latest version),
``name@N`` (version N), or a file id. Ids are ULIDs: 26 Crockford base32
characters, time-ordered, so sorting ids sorts by creation time and
``reindex`` can replay commits in order.
"""

from __future__ import annotations

import os
import random
import re
import time
import unicodedata
from dataclasses import dataclass

from .errors import InvalidName, InvalidRef

MAX_NAME_BYTES = 1024
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_SHIFTS = range(120, -1, -10)
_ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
#: characters a name must not hold: C0 and C1 controls and DEL; the line and paragraph
#: separators; the bidi embeddings, overrides and isolates, and the implicit direction marks
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_random = random.Random(int.from_bytes(os.urandom(16), "big"))
# Forked workers (Dask, multiprocessing) must not share one random sequence.
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(16)))
_last_ulid = [0, 0]  # (ms, random) of the last id, to stay monotonic within a ms


def validate_name(name: object) -> str:
    """Return ``name`` in NFC if it is a valid file name.

    A valid name is a non-empty relative POSIX path in UTF-8, at most
    ``MAX_NAME_BYTES`` long, with no empty, ``.`` or ``..`` segment, no
    backslash or NUL, no control character (C0, DEL, C1, U+2028/U+2029), no
    bidi control (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C), and no
    final ``@<digits>`` (which would read as a version).

    Names are Unicode NFC, lake-wide: the NFD spelling of a name (as macOS
    writes file names) and its NFC spelling are one name. This function
    returns the NFC form, and every name that enters the lake goes through it
    (local names, refs, and names imported from a remote's records), so use
    its return value rather than the argument.

    Raises:
        InvalidName: ``name`` breaks one of those rules; the message says which.
    """
    if not isinstance(name, str):
        raise InvalidName(f"a file name must be a str, not {type(name).__name__}", name=name)
    if not name:
        raise InvalidName("a file name must not be empty; give a relative path such as 'raw/train.csv'", name=name)
    if "\x00" in name:
        raise InvalidName(f"file name {name!r} contains a NUL byte; remove it", name=name)
    bad = _UNPRINTABLE.search(name)
    if bad:
        kind = "a bidi control" if bad.group() in _BIDI else "a control character"
        raise InvalidName(f"file name {name!r} contains {kind} (U+{ord(bad.group()):04X}); rename it", name=name)
    original = name
    if not name.isascii():  # ASCII is NFC already: the common case pays nothing
        name = unicodedata.normalize("NFC", name)
    if "\\" in name:
        raise InvalidName(f"file name {name!r} contains a backslash; use '/' between folders", name=original)
    if name.startswith("/"):
        raise InvalidName(f"file name {name!r} is absolute; drop the leading '/'", name=original)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"file name is longer than {MAX_NAME_BYTES} bytes; shorten it", name=original)
    parts = name.split("/")
    for part in parts:
        if part == "..":
            raise InvalidName(f"file name {name!r} has a '..' segment; names cannot leave the lake", name=original)
        if part in ("", "."):
            raise InvalidName(f"file name {name!r} has an empty or '.' segment; write it as 'a/b', not 'a//b' or 'a/./b'",
                              name=original)
    if "@" in parts[-1] and parts[-1].rsplit("@", 1)[1].isdigit():
        raise InvalidName(f"file name {name!r} ends in '@<digits>', which reads as a version; rename it", name=original)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"file name {name!r} is not valid UTF-8; rename the file", name=original) from None
    return name


def is_file_id(ref: str) -> bool:
    """True when ``ref`` has the form of a file id (a ULID), not of a name."""
    return bool(_ULID_RE.fullmatch(ref))


@dataclass(frozen=True)
class Ref:
    """A parsed ref: exactly one of ``id`` or ``name`` is set.

    Attributes:
        name: the file name, for a ``name`` or ``name@N`` ref.
        version: N for a ``name@N`` ref; None means the latest version.
        id: the file id, for an id ref.
    """

    name: str | None = None
    version: int | None = None
    id: str | None = None


def parse_ref(ref: object) -> Ref:
    """Parse ``name``, ``name@N`` or a file id into a :class:`Ref`.

    Raises:
        InvalidRef: ``ref`` is not a non-empty str, or has version 0.
        InvalidName: the name part is not a valid file name.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidRef(f"a ref must be a non-empty str (a name, name@N, or an id), not {ref!r}", ref=ref)
    if is_file_id(ref):
        return Ref(id=ref)
    name, at, version = ref.rpartition("@")
    if at and version.isdigit():
        if int(version) < 1:
            raise InvalidRef(f"ref {ref!r} has version 0; versions count from 1, write name@1", ref=ref)
        return Ref(name=validate_name(name), version=int(version))
    return Ref(name=validate_name(ref))


def new_id() -> str:
    """A new ULID: 48 bits of milliseconds, then 80 random bits, monotonic per process."""
    ms = time.time_ns() // 1_000_000
    # Uniqueness, not secrecy: a seeded PRNG, no syscall per id.
    rand = _last_ulid[1] + 1 if ms == _last_ulid[0] else _random.getrandbits(80)
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
    """Turn a path relative to some local folder into a POSIX name (``/`` between folders)."""
    return relative_path.replace(os.sep, "/")


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 object``, ``2 objects``: a count with its noun in the right number (``many`` for irregular plurals)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"
