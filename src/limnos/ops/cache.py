"""The local cache of a lake on a remote store: its size, and pruning it.

Objects are pruned least recently used first (``Lake.fetch`` stamps the
access time on every use). An object someone is reading through
``File.open`` holds a shared ``flock``, and one used in the last minute may
be a path handed out by ``local_path``, so prune skips both.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LimnosError
from ..progress import transfer_progress

if TYPE_CHECKING:
    from ..lake import Lake

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """``10GB``, ``500M``, ``1.5GiB`` or a plain number of bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise LimnosError(f"cannot read size {text!r}; write it like 500MB, 10GB or 2GiB")
    number, unit, suffix = float(match.group(1)), match.group(2).lower(), (match.group(3) or "").lower()
    base = 1024 if suffix.startswith("i") else 1000
    return int(number * base ** " kmgtp".index(unit or " "))


@dataclass
class CacheReport:
    objects: int = 0
    bytes: int = 0
    removed: int = 0
    removed_bytes: int = 0
    kept_in_use: int = 0
    kept_recent: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _entries(lake: Lake) -> list[tuple[str, os.stat_result]]:
    out = []
    for info in lake.cache.iter_objects():
        path = lake.cache.path(info.hash)
        try:
            out.append((path, os.stat(path)))
        except FileNotFoundError:
            continue
    return out


def size(lake: Lake) -> CacheReport:
    entries = _entries(lake)
    return CacheReport(objects=len(entries), bytes=sum(st.st_size for _, st in entries))


def prune(lake: Lake, max_size: int | str, keep_recent: float = 60.0) -> CacheReport:
    """Remove least recently used cached objects until the cache fits in ``max_size``."""
    if lake.store.local:
        raise LimnosError("this lake keeps its objects in its own folder, which is not a cache; use 'limnos gc' to free space")
    limit = parse_size(max_size)
    entries = sorted(_entries(lake), key=lambda e: e[1].st_atime)
    report = CacheReport(objects=len(entries), bytes=sum(st.st_size for _, st in entries))
    total = report.bytes
    now = time.time()
    with transfer_progress(len(entries), max(0, total - limit), "pruning") as advance:
        for path, st in entries:
            if total <= limit:
                break
            if now - st.st_atime < keep_recent:
                report.kept_recent += 1
                continue
            try:
                handle = open(path, "rb")
            except FileNotFoundError:
                continue
            with handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    report.kept_in_use += 1  # someone is reading it right now
                    continue
                os.unlink(path)  # under our exclusive lock: no reader can be mid-way
            total -= st.st_size
            report.removed += 1
            report.removed_bytes += st.st_size
            advance(1, st.st_size)
    if total > limit:
        report.notes.append(f"the cache is still {total} bytes: the rest is in use or was used in the last {keep_recent:.0f} s")
    return report
