"""The local object store: a folder of read-only files, written without fsspec on the hot paths.

fsspec's local backend is a thin wrapper over the same ``os`` calls; adding
10k small files spends its time in per-call overhead, so this subclass keeps
the ``ObjectStore`` contract but calls ``os`` directly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import itertools
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

import fsspec

from ..errors import IntegrityError, ObjectNotAvailable, StoreError
from . import hashing, links
from .objects import OBJECTS, QUARANTINE, RECORDS, SMALL_FILE, TMP, VOID, ObjectInfo, ObjectStore
from .packed import PackedObjects, walk_fanout
from .transfer import BLOCKING, ON_LOOP, IOMode, run_blocking


class LocalObjectStore(PackedObjects, ObjectStore):
    """A store in a local folder; objects are read-only files, packed objects or chunked files (see packed.py)."""

    local = True

    def __init__(self, path: str) -> None:
        path = os.path.abspath(os.path.expanduser(path))
        super().__init__(path, fs=fsspec.filesystem("file"))
        self.root = path
        self._dirs_made: set[str] = set()
        self._counter = itertools.count()

    def path(self, digest: str) -> str:
        """The local path of the object ``digest`` (whether or not it is there).

        Raises:
            IntegrityError: ``digest`` is not an object hash (see :func:`~limnos.store.objects.object_relpath`).
        """
        digest = hashing.check_hash(digest)
        return os.path.join(self.root, OBJECTS, digest[:2], digest[2:])

    def object_key(self, digest: str) -> str:
        """The object's local path: its key on the local filesystem."""
        return self.path(digest)

    def has(self, digest: str) -> bool:
        """True when the object is in this folder: loose, packed or chunked (:meth:`has_loose`: a file of its own)."""
        return os.path.exists(self.path(digest)) or self.has_packed(digest)

    def size(self, digest: str) -> int:
        """The size in bytes of an object in this folder."""
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            size = self.packed_size(digest)
            if size is None:
                raise
            return size

    def _ensure_dir(self, path: str) -> None:
        if path not in self._dirs_made:
            os.makedirs(path, exist_ok=True)
            self._dirs_made.add(path)

    def staging_dir(self) -> str:
        """The folder for staging files (``tmp/``), created on first use."""
        path = os.path.join(self.root, TMP)
        self._ensure_dir(path)
        return path

    def new_staging_path(self, suffix: str = "") -> str:
        """A new, empty staging file, to be filled and then stored with :meth:`ingest_staged` or :meth:`commit_staged`."""
        fd, path = tempfile.mkstemp(dir=self.staging_dir(), prefix="stage-", suffix=suffix)
        os.close(fd)
        return path

    def _tmp_path(self, prefix: str) -> str:
        # pid + thread + counter is unique without mkstemp's extra syscalls (hot path).
        return os.path.join(self.staging_dir(), f"{prefix}-{os.getpid()}-{threading.get_ident()}-{next(self._counter)}")

    def commit_staged(self, staged: str, digest: str, is_readonly: bool = False) -> bool:
        """Move a complete staging file, already hashed to ``digest``, into place.

        An existing object is never replaced: the staging file is then dropped.
        Returns True when the object is new.
        """
        final = self.path(digest)
        self._ensure_dir(os.path.dirname(final))
        if not is_readonly:
            links.make_readonly(staged)
        try:
            # link() fails with EEXIST instead of replacing: an atomic no-clobber rename.
            os.link(staged, final)
        except FileExistsError:
            os.unlink(staged)
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                os.unlink(staged)
                raise
            if os.path.exists(final):
                os.unlink(staged)
                return False
            os.rename(staged, final)
            return True
        os.unlink(staged)
        return True

    def ingest(self, src: str, size_hint: int = -1) -> tuple[str, int, bool]:
        """Copy a user's file into the store, hashing it in the same pass.

        Returns (hash, size, newly_stored). The user's file is never linked:
        editing it later must not change a stored object. Small files are
        read whole and hashed first, so a duplicate costs no write at all.
        """
        if 0 <= size_hint <= SMALL_FILE:
            with open(src, "rb") as f:
                data = f.read()
            digest = hashing.hash_bytes(data)
            hashing.stats.count(len(data))
            final = self.path(digest)
            if os.path.exists(final):
                return digest, len(data), False
            folder = os.path.dirname(final)
            self._ensure_dir(folder)
            # Stage next to the final name: a same-folder rename is the cheapest atomic move.
            # Two writers racing on identical bytes may both rename; the object's content,
            # which is its name, cannot change, and a reader sees one whole file either way.
            staged = os.path.join(folder, f".tmp-{os.getpid()}-{threading.get_ident()}-{next(self._counter)}")
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                with os.fdopen(fd, "wb") as dst:
                    dst.write(data)
                os.rename(staged, final)
            except BaseException:
                if os.path.exists(staged):
                    os.unlink(staged)
                raise
            return digest, len(data), True
        return self._ingest_big(src)

    def _ingest_big(self, src: str) -> tuple[str, int, bool]:
        """A big file: the kernel copies it (reflink, else copy_file_range) while blake3 hashes it.

        Two reads of the same bytes run at once, so the file must not change in
        between: if its stat differs after the copy, the staged copy itself is
        hashed, so an object's name always matches its bytes.
        """
        from concurrent.futures import ThreadPoolExecutor

        staged = self._tmp_path("ingest")
        before = os.stat(src)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="limnos-hash") as pool:
                hashed = pool.submit(hashing.hash_file, src)
                links.place(src, staged, "copy", readonly=False)
                _start_writeback(staged)  # the disk writes the copy while blake3 still hashes
                digest, size = hashed.result()
            after = os.stat(src)
            same = (before.st_mtime_ns, before.st_size, before.st_ino) == (after.st_mtime_ns, after.st_size, after.st_ino)
            if not same or os.path.getsize(staged) != size:
                digest, size = hashing.hash_file(staged)
            return digest, size, self.commit_staged(staged, digest)
        except BaseException:
            if os.path.exists(staged):
                os.unlink(staged)
            raise

    def ingest_staged(self, staged: str) -> tuple[str, int, bool]:
        """Hash a staging file written by ``create`` and move it into place."""
        digest, size = hashing.hash_file(staged)
        return digest, size, self.commit_staged(staged, digest)

    def put_file(self, local_path: str, digest: str) -> bool:
        """Store a copy of a local file already hashed to ``digest``; False if the object was there."""
        if self.has(digest):
            return False
        fd, staged = tempfile.mkstemp(dir=self.staging_dir(), prefix="put-")
        os.close(fd)
        os.unlink(staged)
        links.place(local_path, staged, "copy", readonly=False)
        return self.commit_staged(staged, digest)

    def sync_objects(self, digests: Iterable[str]) -> int:
        """Make the loose objects ``digests`` durable: fsync each file, then the folders that name them.

        Only what was written is flushed, never the whole disk (``syncfs`` also waits for
        every other process's dirty pages: on a busy machine it cost an add of 10k files
        9.2 s instead of 2.7 s). Files are flushed on a few threads so the file system can
        batch their journal commits. An object that is not loose here (packed, whose
        writer syncs its own pack; or removed meanwhile) is skipped. Returns the files flushed.

        Raises:
            OSError: a flush failed (EIO, ENOSPC): the objects may not be on disk.
        """
        files = sorted({self.path(d) for d in digests})
        if not files:
            return 0
        objects = os.path.join(self.root, OBJECTS)
        # The prefix folders hold the new names; objects/ and the root, any folder made on first use.
        folders = [*sorted({os.path.dirname(f) for f in files}), objects, self.root]
        flushed = _fsync_all(files, workers=32)  # many at once: the journal commits them in groups
        _fsync_all(folders, workers=8)
        return flushed

    def touch(self, digest: str) -> None:
        """Record a use (the access time), so cache pruning removes the least recently used first."""
        try:
            st = os.stat(self.path(digest))
            os.utime(self.path(digest), ns=(time.time_ns(), st.st_mtime_ns))
        except OSError:
            pass

    def open_shared(self, digest: str) -> IO[bytes]:
        """Open for reading under a shared lock: ``prune`` skips an object while it is held."""
        handle = self.open(digest)
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        return handle

    def open_raw_shared(self, digest: str) -> io.FileIO:
        """:meth:`open_shared` without a buffer: the file itself, for a reader that hashes what it reads.

        Raises:
            StoreError: the object is missing from this folder.
        """
        try:
            handle = io.FileIO(self.path(digest), "r")
        except FileNotFoundError as exc:
            raise StoreError(f"object {digest[:12]} is missing from {self.root}",
                             hint="call lake.fsck() to see what else is missing") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        except BaseException:
            handle.close()
            raise
        return handle

    # -- verifying and quarantine ------------------------------------------------
    def verify(self, digest: str, ref: str | None = None) -> os.stat_result:
        """Hash an object in this folder against its name; a corrupt one is moved to quarantine.

        Always reads the bytes (no cache): push and repair use it, and
        :class:`~limnos.store.verify.ObjectVerifier` when its cache misses.

        Args:
            digest: the object's hash.
            ref: the file the object was read for, named in the error.

        Returns:
            The object's ``stat`` from before it was hashed.

        Raises:
            FileNotFoundError: the object is not here.
            IntegrityError: the bytes do not hash to ``digest`` (the object is now in ``quarantine/``).
        """
        path = self.path(digest)
        if not os.path.exists(path) and self.has_packed(digest):
            self.verify_packed(digest, ref)  # a corrupt packed object is copied to quarantine and dropped
            return os.stat(self.packs.folder)
        before = os.stat(path)
        actual, _ = hashing.hash_file(path)
        if actual != digest:
            raise self.corrupt(digest, actual, before, ref)
        return before

    def corrupt(self, digest: str, actual: str, st: os.stat_result | None, ref: str | None = None) -> IntegrityError:
        """Move an object found corrupt to quarantine; the error that says so.

        Args:
            digest: the hash the object should have.
            actual: the hash its bytes have.
            st: the ``stat`` of the file that was hashed: a file another process has put
                there since (a clean copy) is left alone. None: move whatever is there.
            ref: the file the object was read for, named in the message.
        """
        moved, why = None, ""
        try:
            moved = self.quarantine(digest, st)
        except OSError as exc:  # a read-only folder: say so, but still refuse the bytes
            why = f" (it cannot be moved: {exc.strerror or exc})"
        what = f"{ref} (object {digest[:12]})" if ref else f"object {digest[:12]}"
        where = f"it was moved to {moved}" if moved else f"it was left at {self.path(digest)}{why}"
        return IntegrityError(f"{what} is corrupt on this machine: its bytes hash to {actual[:12]}; {where}",
                              hint="read it again to fetch a clean copy from a remote, or call lake.fsck(repair=True)",
                              digest=digest, url=self.root)

    def quarantine(self, digest: str, expected: os.stat_result | None = None) -> str | None:
        """Move a corrupt object aside to ``quarantine/<hash>`` (never deleted: a person may want to look at it).

        Args:
            digest: the object's hash.
            expected: the ``stat`` of the file found corrupt; when the object's path now
                holds another file (a clean copy another process fetched), it stays.

        Returns:
            Where the object went, or None when there was nothing (or something else) to move.

        Raises:
            OSError: the object cannot be moved (a read-only folder).
        """
        if not hashing.is_hash(digest):
            raise ValueError(f"{digest!r} is not an object hash")
        src = self.path(digest)
        try:
            now = os.stat(src)
        except FileNotFoundError:
            return None
        if expected is not None and (now.st_ino, now.st_dev) != (expected.st_ino, expected.st_dev):
            return None
        folder = os.path.join(self.root, QUARANTINE)
        os.makedirs(folder, exist_ok=True)
        dest = os.path.join(folder, digest)
        n = 1
        while os.path.lexists(dest):  # an older bad copy of the same object: keep both
            dest = os.path.join(folder, f"{digest}.{n}")
            n += 1
        try:
            os.rename(src, dest)
        except FileNotFoundError:
            return None  # another reader moved it first
        return dest

    def quarantined(self) -> list[str]:
        """The hashes of the objects in ``quarantine/``, sorted (each once)."""
        try:
            names = os.listdir(os.path.join(self.root, QUARANTINE))
        except FileNotFoundError:
            return []
        return sorted({n.split(".", 1)[0] for n in names if hashing.is_hash(n.split(".", 1)[0])})

    def in_quarantine(self, digest: str) -> bool:
        """True when a corrupt copy of the object was moved (or, from a pack, copied) to ``quarantine/``."""
        return os.path.lexists(os.path.join(self.root, QUARANTINE, digest))

    def fs_now_ns(self) -> int:
        """This filesystem's clock as it stamps a ctime now (0 when it cannot be read).

        Read from a new probe file in ``tmp/`` (removed at once), so a coarse or
        skewed clock (a network filesystem) is the one the objects' own stamps come from.
        """
        try:
            probe = self._tmp_path("clock")
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return 0
        try:
            return os.fstat(fd).st_ctime_ns
        finally:
            os.close(fd)
            os.unlink(probe)

    async def fetch_from(self, source: ObjectStore, digest: str, io: IOMode) -> int:
        """Fetch an object from another store into this one, verified before it appears.

        The one path behind :meth:`download_from` and :meth:`download_from_async`
        (see :meth:`ObjectStore.download`). Returns the bytes fetched: 0 when
        the object was already here.
        """
        if self.has_loose(digest) or self.locate(digest) is not None:
            return 0  # (a chunked file here may lack a chunk found corrupt: fetch_chunked fetches that one)
        self._ensure_dir(os.path.dirname(self.path(digest)))
        staged = self._tmp_path("download")
        try:
            size = await source.download(digest, staged, io)
        except ObjectNotAvailable:
            got = await io.offload(self.fetch_chunked, source, digest)  # a chunked file there: only missing chunks
            if got is None:
                raise
            return int(got)
        self.commit_staged(staged, digest)
        return size

    def download_from(self, source: ObjectStore, digest: str) -> int:
        """Fetch an object from another store into this one, verified before it appears."""
        return run_blocking(self.fetch_from(source, digest, BLOCKING))

    async def download_from_async(self, source: ObjectStore, digest: str) -> int:
        """:meth:`download_from` on the source filesystem's event loop."""
        return await self.fetch_from(source, digest, ON_LOOP)

    def put_bytes(self, digest: str, data: bytes) -> bool:
        """Store bytes already verified to hash to ``digest`` (taken out of a pack)."""
        if self.has(digest):
            return False
        self._ensure_dir(os.path.dirname(self.path(digest)))
        staged = self._tmp_path("unpack")
        with open(staged, "xb") as f:
            f.write(data)
        return self.commit_staged(staged, digest)

    def open(self, digest: str, mode: str = "rb") -> IO[bytes]:
        """Open an object for reading (``rb`` only).

        Raises:
            StoreError: the object is missing from this folder.
        """
        if mode != "rb":
            raise ValueError("objects are immutable; open them with mode 'rb'")
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError as exc:
            if self.has_packed(digest):
                return self.open_packed(digest)
            raise StoreError(f"object {digest[:12]} is missing from {self.root}",
                             hint="call lake.fsck() to see what else is missing") from exc

    def delete(self, digest: str) -> None:
        """Remove an object (gc and cache pruning only)."""
        os.unlink(self.path(digest))

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every object in this folder."""
        for digest, st in walk_fanout(os.path.join(self.root, OBJECTS)):
            yield ObjectInfo(digest, st.st_size, st.st_mtime)

    def write_record(self, commit_id: str, data: bytes) -> None:
        """Write a commit's records file whole and fsync it: it is the write-ahead log."""
        folder = os.path.join(self.root, RECORDS)
        self._ensure_dir(folder)
        final = os.path.join(folder, f"{commit_id}.jsonl")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())  # the records file is the write-ahead log
            os.rename(tmp, final)
            _fsync_one(folder)  # its name too: the catalog commits next, and must never be ahead of it
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def list_records(self) -> list[str]:
        """The ids of every commit with a records file, sorted (abandoned commits' left out)."""
        return sorted(self.record_times())

    def record_times(self) -> dict[str, float]:
        """commit id -> modification time (seconds) of every records file (abandoned commits' left out)."""
        folder = os.path.join(self.root, RECORDS)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return {}
        voided = {e.name[: -len(VOID)] for e in entries if e.name.endswith(VOID)}
        return {e.name[:-6]: e.stat().st_mtime for e in entries
                if e.name.endswith(".jsonl") and not e.name.startswith(".") and e.name[:-6] not in voided}

    def delete_record(self, commit_id: str) -> None:
        """Remove the records file of an abandoned commit (a missing file is no error)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, RECORDS, f"{commit_id}.jsonl"))

    def void_record(self, commit_id: str) -> None:
        """Mark a commit abandoned with ``records/<id>.void`` (fsynced): its records file is never applied."""
        path = os.path.join(self.root, RECORDS, f"{commit_id}{VOID}")
        with open(path, "wb") as out:
            out.write(b"abandoned: its catalog transaction failed\n")
            out.flush()
            os.fsync(out.fileno())

    def _names(self, folder: str) -> list[str]:
        try:
            return [e.name for e in os.scandir(os.path.join(self.root, folder)) if e.is_file()]
        except FileNotFoundError:
            return []

    def drop_void(self, commit_id: str) -> None:
        """Tidy an abandoned commit away: its records file first, then its void marker."""
        self.delete_record(commit_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, RECORDS, f"{commit_id}{VOID}"))

    def quarantine_record(self, name: str) -> str:
        """Move ``records/<name>.jsonl`` to ``records/quarantine/``, out of every replay; its new path."""
        folder = os.path.join(self.root, RECORDS, QUARANTINE)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{name}.jsonl")
        os.replace(os.path.join(self.root, RECORDS, f"{name}.jsonl"), target)
        return target

    def read_record(self, commit_id: str) -> bytes:
        """The bytes of one records file."""
        with open(os.path.join(self.root, RECORDS, f"{commit_id}.jsonl"), "rb") as f:
            return f.read()

    def read_records(self, commit_ids: Iterable[str]) -> dict[str, bytes]:
        """commit id -> bytes of each given records file."""
        return {c: self.read_record(c) for c in commit_ids}

    def clean_staging(self, older_than: float) -> int:
        """Remove staging files (left by a crash) older than ``older_than`` seconds."""
        cutoff = time.time() - older_than
        removed = 0
        folders = [os.path.join(self.root, TMP)]
        objects = os.path.join(self.root, OBJECTS)
        if os.path.isdir(objects):
            folders += [e.path for e in os.scandir(objects) if e.is_dir()]
        for folder in folders:
            if not os.path.isdir(folder):
                continue
            for entry in os.scandir(folder):
                is_staging = folder.endswith(TMP) or entry.name.startswith(".tmp-")
                # A writer may finish with (and remove) its staging file at any moment.
                with contextlib.suppress(FileNotFoundError):
                    if is_staging and entry.is_file() and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        return removed


_sync_file_range: list[Any] = []  # [libc.sync_file_range or None], looked up once


def _start_writeback(path: str) -> None:
    """Ask the kernel to start writing a file's dirty pages now, without waiting (Linux ``sync_file_range``).

    A durable add's fsync then finds most of a big object already on disk; an add with
    ``fsync: false`` only has its pages written sooner than the kernel's 30 s. Elsewhere a no-op.
    """
    if not _sync_file_range:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _sync_file_range.append(fn)
        except (OSError, AttributeError):
            _sync_file_range.append(None)
    fn = _sync_file_range[0]
    if fn is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fn(fd, 0, 0, 2)  # SYNC_FILE_RANGE_WRITE: start writeback of the whole file; errors surface at fsync
    finally:
        os.close(fd)


def _fsync_one(path: str) -> bool:
    """fsync one file or folder by path; False when it is gone (nothing to flush)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _fsync_all(paths: list[str], workers: int) -> int:
    """fsync every path, on up to ``workers`` threads when there are many; how many were there."""
    if len(paths) <= 4:
        return sum(_fsync_one(p) for p in paths)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(workers, len(paths)), thread_name_prefix="limnos-fsync") as pool:
        return sum(pool.map(_fsync_one, paths))
