"""The shared commit log of a team lake: one key per commit, created only if absent.

A lake that lives on a bucket, with a catalog on each machine, agrees on
versions through this log, the way Delta Lake and Iceberg commit on bare
object stores::

    log/00000000000000000001.jsonl   the records of the first commit published
    log/00000000000000000002.jsonl   ...

Entry ``N`` holds the sealed records bytes of one commit (the same bytes as
``records/<commit-id>.jsonl``). A writer that has applied entries ``1..N``
publishes its commit as ``N+1`` with a conditional create (S3's
``If-None-Match: *``); if another writer took ``N+1`` first the create fails,
and the writer catches up and tries ``N+2``. So the log has no gaps, every
machine applies the same commits in the same order, and the versions a
writer allocated before publishing are the versions every machine sees.

Reading is cheap: a machine remembers the last entry it applied and asks
for the next one (one GET that usually answers "not found"); when it is
behind, entries are fetched in growing concurrent windows.

A server that ignores ``If-None-Match`` (``rclone serve s3`` overwrites)
would let two writers both "win" the same entry, so :func:`probe` tries a
second create of the same key at init and team mode is refused when it
succeeds.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from ..names import new_id
from .objects import ObjectStore, _lost_race

LOG = "log"
#: Digits of an entry's number: zero-padded, so a listing sorts in log order.
WIDTH = 20
#: The largest window of entries fetched at once when a machine is far behind.
MAX_WINDOW = 256


def entry_relpath(seq: int) -> str:
    """``log/<seq>.jsonl``, zero-padded."""
    if seq < 1:
        raise ValueError(f"log entries are numbered from 1, not {seq}")
    return f"{LOG}/{seq:0{WIDTH}d}.jsonl"


class SharedLog:
    """The commit log of the lake in ``store``: publish entries exclusively, read them in order."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        fs = store.fs
        protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
        self._local = any(p in ("file", "local") for p in protocols)
        self._memory = "memory" in protocols

    @property
    def can_create_exclusively(self) -> bool:
        """True when this kind of store has an atomic create-if-absent (still to be probed on S3)."""
        return self.store.is_s3 or self._local or self._memory

    def publish(self, seq: int, data: bytes) -> bool:
        """Create entry ``seq`` holding ``data``; False when another writer created it first.

        Raises:
            RemoteError: the store cannot be written (nothing was published).
        """
        return self._create(self.store._key(entry_relpath(seq)), data, "publish a commit to")

    def read_after(self, position: int) -> Iterator[list[tuple[int, bytes]]]:
        """The entries after ``position``, in order, as batches of (number, bytes); stops at the first gap.

        The first batch asks for two entries at once: a machine that is up to
        date, or one entry behind, learns it in one round trip. Each full batch
        doubles the next, up to :data:`MAX_WINDOW` concurrent requests.

        Raises:
            RemoteError: the store cannot be read.
        """
        start, window = position + 1, 2
        while True:
            keys = {self.store._key(entry_relpath(s)): s for s in range(start, start + window)}
            got = self._fetch(list(keys))
            batch: list[tuple[int, bytes]] = []
            for key, seq in keys.items():
                data = got.get(key)
                if data is None:
                    break
                batch.append((seq, data))
            if batch:
                yield batch
            if len(batch) < window:
                return
            start += window
            window = min(window * 2, MAX_WINDOW)

    def _fetch(self, keys: list[str]) -> dict[str, bytes]:
        fs = self.store.fs
        try:
            got = fs.cat(keys, on_error="return")
        except FileNotFoundError:
            return {}
        except Exception as exc:
            raise self.store._error("read the commit log of", exc) from None
        if len(keys) == 1 and not isinstance(got, dict):
            got = {keys[0]: got}
        out: dict[str, bytes] = {}
        by_stripped = {fs._strip_protocol(k): k for k in keys}
        for key, value in got.items():
            key = key if key in keys else by_stripped.get(fs._strip_protocol(key), key)
            if isinstance(value, FileNotFoundError):
                continue
            if isinstance(value, BaseException):
                raise self.store._error("read the commit log of", value)
            out[key] = bytes(value)
        return out

    def read(self, seq: int) -> bytes | None:
        """The bytes of entry ``seq``, or None when there is no such entry.

        Raises:
            RemoteError: the store cannot be read.
        """
        key = self.store._key(entry_relpath(seq))
        return self._fetch([key]).get(key)

    def probe(self) -> bool:
        """True when the store refuses a second create of the same key (conditional writes work).

        Writes and removes ``log/.probe-<id>``.

        Raises:
            RemoteError: the store cannot be written at all.
        """
        if not self.can_create_exclusively:
            return False
        key = self.store._key(f"{LOG}/.probe-{new_id()}")
        try:
            first = self._create(key, b"probe 1\n", "write to")
            second = self._create(key, b"probe 2\n", "write to")
        finally:
            with contextlib.suppress(Exception):  # a leftover probe key is harmless: readers skip non-entries
                self.store.fs.rm_file(key)
        return first and not second

    def _create(self, key: str, data: bytes, action: str) -> bool:
        """Create ``key`` with ``data`` unless it exists; False when it does.

        Raises:
            RemoteError: the store cannot be written (``action`` names what was being done).
        """
        try:
            if self._local:
                return _create_local(key, data)
            self.store.fs.pipe_file(key, data, mode="create")
            return True
        except OSError as exc:
            if _lost_race(exc):
                return False
            raise self.store._error(action, exc) from None
        except Exception as exc:
            raise self.store._error(action, exc) from None


def _create_local(path: str, data: bytes) -> bool:
    """Create ``path`` with ``data`` whole, unless it exists: written aside, then hard-linked into place.

    ``link`` fails when the name exists, and a reader never sees a partial entry.
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


__all__ = ["LOG", "MAX_WINDOW", "SharedLog", "entry_relpath"]
