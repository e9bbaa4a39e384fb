"""Streamed reads of remote objects: ranges on demand, readahead, verified at the end, cached when whole.

``File.open()`` on an object this machine does not have used to download it
whole before the first byte; a 1 GB object waited for 1 GB. For a big loose
object, :func:`open_streamed` returns a :class:`RangedReader` instead:

* **Ranges on demand.** The object is read in blocks (:data:`BLOCK` bytes,
  one ranged GET each); the first block is fetched when the reader opens, so a
  missing object fails there and the first byte costs one round trip.
* **Readahead.** While a caller reads block *i* in order, blocks *i+1* ..
  *i+READAHEAD* are fetched in a background thread; a ``seek`` elsewhere
  fetches only what is read. The last :data:`KEPT` blocks stay in memory.
* **Verified at the end.** Every block is written at its offset into a
  staging file in this machine's cache, and hashed in order as the blocks
  before it arrive. The read that completes the object compares the hash:
  a mismatch raises :class:`~limnos.errors.IntegrityError` there, and nothing
  is kept. Bytes served before that (a ``seek`` to a parquet footer, say) come
  from a remote that could not yet be checked; read the whole object
  (``read_bytes()``) or take ``local_path()`` when every byte must be checked
  before use.
* **Cached only when whole.** Once every block was read (in any order) and the
  hash matched, the staging file becomes the cached object (as a download
  would); a reader closed earlier removes its staging file.

Objects smaller than :data:`STREAM_MIN` and packed objects are fetched whole,
as before: one request either way (a packed object is one ranged read of its
pack). A reader is for one thread at a time, as files are.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import blake3

from ..errors import IntegrityError, ObjectNotAvailable, RemoteError, redact_url
from . import hashing

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from .local import LocalObjectStore
    from .objects import ObjectStore

STREAM_MIN = 8 << 20  # bytes: smaller objects are one GET anyway; download them whole and cache them
BLOCK = 4 << 20  # bytes per ranged GET
READAHEAD = 3  # blocks fetched ahead of a reader that reads in order
KEPT = 8  # blocks kept in memory (a reader going back a little reads no range twice)


class RangedReader(io.RawIOBase):
    """A raw, seekable reader over one remote object, read by ranges (see the module's doc).

    Args:
        source: the store that has the object as a loose key.
        digest: the object's hash (what the bytes are checked against).
        size: its size in bytes, from the catalog.
        part: a new staging file in this machine's cache, for the blocks.
        keep: called with ``part`` once the whole object was read and hashed right (moves it into the cache).
        ref: the file it is read for, named in errors.
        block: bytes per ranged GET.
        readahead: blocks fetched ahead of an in-order reader.

    Raises:
        ObjectNotAvailable: the source has no such object.
        IntegrityError: the object is shorter than the catalog says.
        RemoteError: the source cannot be read.
    """

    def __init__(self, source: ObjectStore, digest: str, size: int, part: str, keep: Callable[[str], None],
                 ref: str | None = None, block: int = BLOCK, readahead: int = READAHEAD) -> None:
        super().__init__()
        self._source = source
        self._key = source.object_key(digest)
        self._digest = digest
        self._size = size
        self._part = part
        self._keep = keep
        self._ref = ref
        self._block = block
        self._readahead = readahead
        self._pos = 0
        self._nblocks = max(1, -(-size // block))
        self._kept: OrderedDict[int, bytes] = OrderedDict()
        self._have: set[int] = set()  # blocks written to the staging file
        self._hasher: blake3.blake3 | None = blake3.blake3()
        self._hashed = 0  # blocks hashed, in order from the first
        self._error: IntegrityError | None = None
        self._pending: dict[int, Future[bytes]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
        #: ranged GETs made (one per block read from the remote)
        self.requests = 0
        try:
            self._take(0, self._fetch(0))  # fails now when the object is not there
        except BaseException:
            self.close()
            raise

    # -- what io needs -------------------------------------------------------
    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """True: any position, fetched when read."""
        return True

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        return self._size

    @property
    def cached(self) -> bool:
        """True once the object was read whole, found right, and kept in this machine's cache."""
        return self._hasher is None and self._error is None

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to another position (nothing is fetched until it is read)."""
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer`` from the current position; the read that completes the object checks its hash."""
        if self._error is not None:
            raise self._error
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        index = self._pos // self._block
        data = self._get(index)
        start = self._pos - index * self._block
        n = min(len(view), len(data) - start)
        view[:n] = data[start : start + n]
        self._pos += n
        self._ahead(index)
        return n

    def close(self) -> None:
        """Stop the readahead and remove the staging file unless it became the cached object."""
        if self.closed:
            return
        with self._lock:
            pool, self._pool = self._pool, None
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if os.path.exists(self._part):
            os.unlink(self._part)
        self._kept.clear()
        super().close()

    # -- blocks --------------------------------------------------------------
    def _span(self, index: int) -> tuple[int, int]:
        start = index * self._block
        return start, min(start + self._block, self._size)

    def _fetch(self, index: int) -> bytes:
        """One ranged GET of block ``index`` (run in the caller's thread or the readahead thread)."""
        start, end = self._span(index)
        try:
            data = bytes(self._source.fs.cat_file(self._key, start=start, end=end))
        except FileNotFoundError:
            raise ObjectNotAvailable(f"object {self._digest[:12]} is not in {redact_url(self._source.url)}",
                                     digest=self._digest) from None
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RemoteError(f"cannot read object {self._digest[:12]} from {redact_url(self._source.url)}: "
                              f"{redact_url(detail)}", url=redact_url(self._source.url)) from None
        self.requests += 1
        if len(data) != end - start:
            raise self._corrupt(f"is shorter than its catalog size ({start + len(data)} of {self._size} bytes)")
        return data

    def _get(self, index: int) -> bytes:
        """Block ``index``: from memory, from the readahead, or fetched now."""
        data = self._kept.get(index)
        if data is not None:
            self._kept.move_to_end(index)
            return data
        with self._lock:
            future = self._pending.pop(index, None)
        data = future.result() if future is not None else None
        if data is None:
            data = self._fetch(index)
        self._take(index, data)
        return data

    def _take(self, index: int, data: bytes) -> None:
        """Keep a fetched block: in memory, in the staging file, and in the running hash."""
        self._kept[index] = data
        while len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        if index not in self._have:
            os.pwrite(self._fd, data, index * self._block)
            self._have.add(index)
            self._advance(index, data)

    def _advance(self, index: int, data: bytes) -> None:
        """Hash the blocks that now follow the hashed ones in order; check the whole object once all are in."""
        if self._hasher is None:
            return
        while self._hashed in self._have:
            i = self._hashed
            if i == index:
                chunk = data
            else:
                start, end = self._span(i)
                chunk = self._kept.get(i) or os.pread(self._fd, end - start, start)
            self._hasher.update(chunk)
            self._hashed += 1
        if self._hashed == self._nblocks:
            self._finish()

    def _finish(self) -> None:
        """Every block is in: compare the hash; a right object becomes the cached copy."""
        assert self._hasher is not None
        actual = self._hasher.hexdigest()
        self._hasher = None
        hashing.stats.count(self._size)
        if actual != self._digest:
            raise self._corrupt(f"hashes to {actual[:12]}")
        os.fsync(self._fd)
        self._keep(self._part)  # moves the staging file into place (or drops it: another reader was first)

    def _corrupt(self, what: str) -> IntegrityError:
        where = redact_url(self._source.url)
        self._error = IntegrityError(f"object {self._digest[:12]}{f' of {self._ref}' if self._ref else ''} in {where} "
                                     f"{what}; nothing was kept", hint="call lake.fsck() where it was pushed from",
                                     digest=self._digest, url=where)
        return self._error

    def _ahead(self, index: int) -> None:
        """A reader in order gets the next blocks fetched in the background."""
        if self._readahead <= 0:
            return
        with self._lock:
            if self.closed:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=min(self._readahead, 4), thread_name_prefix="limnos-readahead")
            for nxt in range(index + 1, min(index + 1 + self._readahead, self._nblocks)):
                if nxt not in self._pending and nxt not in self._kept and nxt not in self._have:
                    self._pending[nxt] = self._pool.submit(self._fetch, nxt)


def open_streamed(sources: Sequence[ObjectStore], cache: LocalObjectStore, digest: str, size: int,
                  ref: str | None = None) -> io.BufferedReader | None:
    """A buffered :class:`RangedReader` over the first source that has ``digest`` as a loose object.

    Returns None when streaming does not apply (a small object) or no source has
    it loose (it may be packed, or missing): the caller downloads it whole then,
    which also says what is missing.

    Raises:
        IntegrityError: the object is shorter than ``size`` on the source that has it.
        RemoteError: a source that has it cannot be read.
    """
    if size < STREAM_MIN:  # the module's settings are read per call, so a test or a caller may change them
        return None

    def keep(part: str) -> None:
        cache.commit_staged(part, digest)

    for source in sources:
        part = cache.new_staging_path(".part")
        try:
            reader = RangedReader(source, digest, size, part, keep, ref, BLOCK, READAHEAD)
        except ObjectNotAvailable:
            continue
        return io.BufferedReader(reader, buffer_size=hashing.CHUNK)
    return None


__all__ = ["BLOCK", "READAHEAD", "STREAM_MIN", "RangedReader", "open_streamed"]
