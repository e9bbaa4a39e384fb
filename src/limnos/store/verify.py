"""Verify on read: no byte of a local object reaches a caller unless it matches the object's hash.

Objects are named by their BLAKE3 hash, so a read can check what it serves.
BLAKE3 is far faster than a disk, so a whole read hashes as it goes:

* :meth:`ObjectVerifier.open` returns a reader that hashes what is read, in
  order, and raises :class:`~limnos.errors.IntegrityError` at end of file when
  the bytes were wrong. A read that stops early is not checked. Random access
  breaks the running hash: the first ``seek`` to another position (or a call
  to ``fileno()``, which lets a caller read behind the reader's back) first
  verifies the whole object, then reads freely. So no caller sees a byte of a
  corrupt object after a seek, and a sequential reader pays one pass.
* :meth:`ObjectVerifier.check` verifies a whole object before a path to it is
  handed out (``local_path()``, ``fetch``).

A corrupt object is moved to ``quarantine/<hash>`` (see
:meth:`LocalObjectStore.quarantine`), so a later read finds it missing and
fetches a clean, verified copy from a remote, like any missing object.

Objects verified once are remembered in this machine's stat cache, keyed by
(inode, size, mtime_ns, ctime_ns), so hot objects are not re-hashed. An entry
is recorded only when the filesystem's clock has moved past the object's
ctime: a write after that always stamps a newer ctime, so it cannot hide
behind an entry made in the same clock tick (git's "racy" index entries). A
remote lake's cache stamps an object's access time on every read (for LRU
pruning), which also moves its ctime; such an entry is recorded right after
that stamp, and then it is the object's mtime, long past, that any later
write changes.
"""

from __future__ import annotations

import io
import os
from typing import IO, TYPE_CHECKING

import blake3

from ..errors import IntegrityError
from . import hashing
from .local import LocalObjectStore
from .statcache import StatCache

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_MULTITHREAD_AT = 64 << 20  # bytes: from here blake3's own threads pay for themselves


class ObjectVerifier:
    """Checks local objects against their hashes, remembering the ones found right.

    Args:
        store: the local store whose objects are read (a local lake's store, or a remote lake's cache).
        cache: this machine's stat cache, or None to hash on every read.
    """

    def __init__(self, store: LocalObjectStore, cache: StatCache | None) -> None:
        self.store = store
        self.cache = cache

    def is_verified(self, digest: str, st: os.stat_result) -> bool:
        """True when the object was verified while it had exactly this stat."""
        return self.cache is not None and self.cache.is_verified(self.store.path(digest), st)

    def remember(self, digest: str, st: os.stat_result, touched: bool = False) -> None:
        """Record that the object hashed right while it had the stat ``st``, when that is safe.

        Args:
            digest: the object's hash.
            st: its stat from before it was hashed; nothing is recorded if the file has changed since.
            touched: ``st`` was taken just after this process stamped the object's
                access time (which moves its ctime): then an mtime in the past is enough.
        """
        if self.cache is None:
            return
        path = self.store.path(digest)
        try:
            now = os.stat(path)
        except OSError:
            return
        if (now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns,
                                                                         st.st_ctime_ns):
            return  # changed while it was read: the hash speaks for neither version
        clock = self.store.fs_now_ns()
        if st.st_mtime_ns >= clock or (st.st_ctime_ns >= clock and not touched):
            return  # a write in this same clock tick would leave the key as it is
        self.cache.mark_verified(path, st)

    def check(self, digest: str, ref: str | None = None, touch: bool = False) -> None:
        """Verify a whole local object (a cache hit costs one ``stat``).

        Args:
            digest: the object's hash.
            ref: the file it is read for, named in the error.
            touch: stamp the object's access time too (a remote lake's cache, for LRU pruning).

        Raises:
            FileNotFoundError: the object is not here.
            IntegrityError: the bytes are wrong; the object was moved to quarantine.
        """
        path = self.store.path(digest)
        st = os.stat(path)
        if self.is_verified(digest, st):
            if touch:
                self.store.touch(digest)
                self.remember(digest, os.stat(path), touched=True)
            return
        if touch:
            self.store.touch(digest)
        st = self.store.verify(digest, ref)
        self.remember(digest, st, touched=touch)

    def open(self, digest: str, ref: str | None = None, touch: bool = False) -> IO[bytes]:
        """Open a local object for reading; the reader verifies what it serves (see the module's doc).

        Holds a shared lock while open, so cache pruning skips the object.

        Raises:
            StoreError: the object is not here.
        """
        raw = self.store.open_raw_shared(digest)
        try:
            st = os.fstat(raw.fileno())
            verified = self.is_verified(digest, st)
            if touch:  # after the lookup: the stamp moves the ctime the entry was keyed on
                self.store.touch(digest)
                st = os.fstat(raw.fileno())
            if verified:
                if touch:
                    self.remember(digest, st, touched=True)
                return io.BufferedReader(raw, hashing.CHUNK)
            return _VerifiedBuffer(VerifyingReader(raw, digest, self, st, ref, touch), hashing.CHUNK)
        except BaseException:
            raw.close()
            raise


class VerifyingReader(io.RawIOBase):
    """A raw reader over one object file that hashes as it reads and checks the hash at end of file.

    Wrap it in :class:`io.BufferedReader` (as :meth:`ObjectVerifier.open` does).
    See the module's doc for what a ``seek`` or ``fileno()`` does.
    """

    def __init__(self, raw: io.FileIO, digest: str, verifier: ObjectVerifier, st: os.stat_result,
                 ref: str | None = None, touched: bool = False) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._verifier = verifier
        self._st = st
        self._ref = ref
        self._touched = touched
        # None once hashing is over; a big object is hashed on every core, as hashing.hash_file does
        self._hasher: blake3.blake3 | None = (blake3.blake3(max_threads=blake3.blake3.AUTO) if st.st_size >= _MULTITHREAD_AT
                                              else blake3.blake3())
        self._pos = 0  # bytes hashed so far, in order from the start
        self._error: IntegrityError | None = None

    @property
    def error(self) -> IntegrityError | None:
        """The error raised when the object was found corrupt; None while it is not known to be."""
        return self._error

    @property
    def name(self) -> str:
        """The object file's path."""
        return str(self._raw.name)

    @property
    def mode(self) -> str:
        """Always ``rb``."""
        return "rb"

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """True: a seek verifies the whole object first (see the module's doc)."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer``, hashing the bytes; at end of file, raise if the object is corrupt."""
        if self._error is not None:
            raise self._error
        n = self._raw.readinto(buffer) or 0
        if self._hasher is not None:
            if n:
                self._hasher.update(memoryview(buffer)[:n])
                self._pos += n
            else:
                self._finish()
        return n

    def readall(self) -> bytes:
        """Read to the end in one call (what ``read()`` of the buffered reader uses)."""
        if self._error is not None:
            raise self._error
        data = self._raw.readall()
        if self._hasher is not None:
            self._hasher.update(data)
            self._pos += len(data)
            self._finish()
        return data

    def _finish(self) -> None:
        """End of file after a sequential read: compare the hash; remember a good object."""
        assert self._hasher is not None
        actual = self._hasher.hexdigest()
        self._hasher = None
        hashing.stats.count(self._pos)
        if actual != self._digest:
            self._error = self._verifier.store.corrupt(self._digest, actual, self._st, self._ref)
            raise self._error
        self._verifier.remember(self._digest, self._st, touched=self._touched)

    def leave_sequence(self) -> None:
        """Random access from here on: verify the whole object first, then stop hashing.

        Raises:
            IntegrityError: the object is corrupt (it was moved to quarantine).
        """
        if self._error is not None:
            raise self._error
        if self._hasher is None:
            return
        self._hasher = None
        fd = self._raw.fileno()
        st = os.fstat(fd)
        if self._verifier.is_verified(self._digest, st):
            return
        # The open file itself, not its path: another reader may have moved the path to quarantine.
        hasher, offset = blake3.blake3(), 0
        while chunk := os.pread(fd, hashing.CHUNK, offset):
            hasher.update(chunk)
            offset += len(chunk)
        hashing.stats.count(offset)
        actual = hasher.hexdigest()
        if actual != self._digest:
            self._error = self._verifier.store.corrupt(self._digest, actual, st, self._ref)
            raise self._error
        self._verifier.remember(self._digest, st, touched=self._touched)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to another position; the first move away from the hashed sequence verifies the whole object."""
        here = (whence == os.SEEK_CUR and offset == 0) or (whence == os.SEEK_SET and offset == self._pos)
        if not here:
            self.leave_sequence()
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        """The current position."""
        return self._raw.tell()

    def fileno(self) -> int:
        """The file descriptor; the whole object is verified first, since a caller may read through it."""
        self.leave_sequence()
        return self._raw.fileno()

    def close(self) -> None:
        """Close the file (and release the shared lock)."""
        self._raw.close()
        super().close()


class _VerifiedBuffer(io.BufferedReader):
    """The buffer over a :class:`VerifyingReader`: a seek inside the buffer verifies the whole object too.

    ``io.BufferedReader`` serves a seek that lands inside its buffer without
    telling the raw reader, so the rule "no byte after a seek is unchecked"
    needs this one override.
    """

    def _refuse_if_corrupt(self) -> None:
        """Serve nothing more, not even what is buffered, once the object was found corrupt."""
        raw = self.raw
        if isinstance(raw, VerifyingReader) and raw.error is not None:
            raise raw.error

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all, by default)."""
        self._refuse_if_corrupt()
        return super().read(size)

    def read1(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes with at most one read of the file."""
        self._refuse_if_corrupt()
        return super().read1(size)

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer``."""
        self._refuse_if_corrupt()
        return super().readinto(buffer)

    def readinto1(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer`` with at most one read of the file."""
        self._refuse_if_corrupt()
        return super().readinto1(buffer)

    def peek(self, size: int = 0) -> bytes:
        """Buffered bytes, without moving."""
        self._refuse_if_corrupt()
        return super().peek(size)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line."""
        self._refuse_if_corrupt()
        return super().readline(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to another position; the first move elsewhere verifies the whole object first."""
        self._refuse_if_corrupt()
        if not (whence == os.SEEK_CUR and offset == 0):
            raw = self.raw
            if isinstance(raw, VerifyingReader) and not (whence == os.SEEK_SET and offset == self.tell()):
                raw.leave_sequence()
        return super().seek(offset, whence)
