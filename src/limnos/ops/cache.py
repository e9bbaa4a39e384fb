"""The local cache of a lake on a remote store: its size, and pruning it.

Objects are pruned least recently used first (``Lake.fetch`` stamps the
access time on every use). An object someone is reading through
``File.open`` holds a shared ``flock``, and one used in the last minute may
be a path handed out by ``local_path``, so prune skips both.

Small objects and chunks sit in packs (``store/lakepacks.py``), and a pack is
pruned whole, least recently used first like an object: every read from a
pack of a remote lake's cache stamps the pack's access time (at most every few
seconds). A pack written or read within ``keep_recent`` stays (an upload may
still be reading it); one pruned under a reader makes the reader look again
and fetch the object from the lake's store. Every object of a remote lake's
cache is in its store, so nothing is lost.
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
    from ..core.base import LakeBase

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """A size in bytes from ``10GB``, ``500M``, ``1.5GiB`` or a plain number.

    ``k``, ``M``, ``G``, ``T``, ``P`` count in powers of 1000; with an ``i``
    (``GiB``) in powers of 1024. Case does not matter.

    Raises:
        LimnosError: ``text`` is not a size.
    """
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
    """The size of a remote lake's local cache, and what a prune removed from it.

    Attributes:
        objects: objects in the cache before pruning.
        bytes: their total size.
        removed: objects pruned.
        removed_bytes: their total size.
        kept_in_use: objects kept because someone was reading them.
        kept_recent: objects kept because they were used within ``keep_recent`` seconds.
        notes: sentences for the user (such as why the cache is still over the limit).
        packs: packs in the cache before pruning (their bytes are in ``bytes``).
        removed_packs: packs pruned (their bytes are in ``removed_bytes``).
    """

    objects: int = 0
    bytes: int = 0
    removed: int = 0
    removed_bytes: int = 0
    kept_in_use: int = 0
    kept_recent: int = 0
    notes: list[str] = field(default_factory=list)
    packs: int = 0
    removed_packs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return dict(self.__dict__)


def _entries(lake: LakeBase) -> list[tuple[str, os.stat_result]]:
    """Every object in the local cache, with its path and stat."""
    out = []
    for info in lake.cache.iter_objects():
        path = lake.cache.path(info.hash)
        try:
            out.append((path, os.stat(path)))
        except FileNotFoundError:
            continue
    return out


def _packs(lake: LakeBase) -> list[tuple[str, os.stat_result, int]]:
    """Every pack in the local cache: (id, the pack's stat, the bytes of pack and index)."""
    shelf = lake.cache.packs
    out = []
    for pack in shelf.list_packs():
        try:
            st = os.stat(shelf.pack_path(pack.id))
        except FileNotFoundError:
            continue
        try:
            extra = os.path.getsize(shelf.pack_path(pack.id, "idx"))
        except FileNotFoundError:
            extra = 0
        out.append((pack.id, st, st.st_size + extra))
    return out


def size(lake: LakeBase) -> CacheReport:
    """How many objects and packs this machine's cache holds, and their total size."""
    entries = _entries(lake)
    packs = _packs(lake)
    return CacheReport(objects=len(entries), bytes=sum(st.st_size for _, st in entries) + sum(n for *_, n in packs),
                       packs=len(packs))


def prune(lake: LakeBase, max_size: int | str, keep_recent: float = 60.0) -> CacheReport:
    """Remove least recently used cached objects until the cache fits in ``max_size``.

    Args:
        lake: a lake on a remote store (a local lake's store is not a cache).
        max_size: the size to shrink to, in bytes or as text (``"10GB"``, see :func:`parse_size`).
        keep_recent: objects used within this many seconds stay (their paths may be in use).

    Returns:
        What was removed and what was kept.

    Raises:
        LimnosError: the lake is local, or ``max_size`` is not a size.
    """
    if lake.store.local:
        raise LimnosError("this lake keeps its objects in its own folder, which is not a cache",
                          hint="call lake.gc() to free space")
    limit = parse_size(max_size)
    listed = _packs(lake)
    packs = {lake.cache.packs.pack_path(i): (i, n) for i, _st, n in listed}
    units = _entries(lake) + [(lake.cache.packs.pack_path(i), st) for i, st, _n in listed]
    # least recently used first; a pack counts as used when written too (an upload may be reading it)
    entries = sorted(units, key=lambda e: max(e[1].st_atime, e[1].st_mtime) if e[0] in packs else e[1].st_atime)
    report = CacheReport(objects=len(units) - len(packs), packs=len(packs),
                         bytes=sum(packs[p][1] if p in packs else st.st_size for p, st in units))
    total = report.bytes
    now = time.time()
    with transfer_progress(len(entries), max(0, total - limit), "pruning") as advance:
        for path, st in entries:
            if total <= limit:
                break
            used = max(st.st_atime, st.st_mtime) if path in packs else st.st_atime
            if now - used < keep_recent:
                report.kept_recent += 1
                continue
            if path in packs:
                pack_id, nbytes = packs[path]
                lake.cache.packs.delete_pack(pack_id)  # index, pack, lookup rows: a reader looks again
                total -= nbytes
                report.removed_packs += 1
                report.removed_bytes += nbytes
                advance(1, nbytes)
                continue
            try:
                with open(path, "rb") as handle:
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        report.kept_in_use += 1  # someone is reading it right now
                        continue
                    os.unlink(path)  # under our exclusive lock: no reader can be mid-way
            except FileNotFoundError:
                continue  # gone already (another prune, or a concurrent gc)
            total -= st.st_size
            report.removed += 1
            report.removed_bytes += st.st_size
            advance(1, st.st_size)
    if total > limit:
        report.notes.append(f"the cache is still {total} bytes: the rest is in use or was used in the last {keep_recent:.0f} s")
    return report
