"""Packs in a lake's own local store: small objects and chunks, many to a file.

Adding 10k small files used to create 10k object files; creating a file is
what bound the add. Now one add writes its small objects into one new pack
(restic, git and Oxen do the same), in one sequential write::

    packs/<id>.pack     objects back to back
    packs/<id>.idx      JSON [hash, offset, size] per object (store/packs.py's format)
    packs/lookup.sqlite hash -> (pack, offset, size): a cache of every index, never the truth

A pack's ``<id>`` is the BLAKE3 of its index's bytes, in BLAKE3's key-derivation
mode under :data:`PACK_ID_CONTEXT` (:func:`pack_id_of_index`), so writing a pack
costs no second hashing pass over its bytes. It names the pack's bytes as
surely as a hash of those bytes would: the index lists every member's BLAKE3
hash, offset and size, and the members lie back to back, so two packs with one
index hold the same bytes unless BLAKE3 collides. The separate mode keeps these
ids apart from every plain BLAKE3 hash, so a new id cannot equal the id of a
pack written before this change (the BLAKE3 of its bytes). Nothing reads an id
as a checksum: every object taken out of a pack is hashed, so old packs stay
readable as they are.

The rules that keep every acknowledged byte:

* A pack is written to ``tmp/`` and fsynced, then its index; the pack is
  renamed into ``packs/`` first and its index last, then the folder is
  fsynced. An index therefore names only a complete pack; a crash leaves a
  staging file (removed by ``gc`` after its grace) or a pack without an index
  (ignored by every read, deleted by ``gc``).
* A pack is never changed: concurrent writers each write their own.
* The lookup table is derived from the indexes: it is brought up to date
  from the folder's listing (one ``listdir``, not a read of every index)
  when the folder changed, and always before a read reports an object
  missing; a damaged lookup file is rebuilt. Every index read into it is
  checked as untrusted input (:func:`~limnos.store.packs.parse_index`).
* Packs go away only through :meth:`PackShelf.delete_pack` (gc, under the
  writer guard): index first, then lookup rows, then the pack, so a reader
  that still finds the old place gets ``FileNotFoundError`` and looks again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import blake3

from ..errors import IntegrityError
from . import hashing
from .packs import FORMAT, PACK_MAX, PACKS, PackedObject, parse_index

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from .chunks import ChunkList

LOOKUP = "lookup.sqlite"
#: the BLAKE3 key-derivation context of pack ids (see the module's docstring); never change it
PACK_ID_CONTEXT = "limnos 2026-11 pack id from its index v1"
#: a writer gathers small objects into one write of up to this many bytes (one syscall, not one per object)
WRITE_BUFFER = 1 << 20
#: the most one ``write`` call takes (see chunks.IO_SIZE)
IO_SIZE = 256 << 10
#: objects up to this size go into packs when a lake's own store takes them (``pack_threshold`` in the settings)
PACK_THRESHOLD = 1 << 20
#: A write with fewer new small objects than this keeps them loose. A pack costs two files (pack and
#: index; two conditional PUTs on a bucket) plus a lookup row, and every read of a packed object pays a
#: lookup: at 4 objects a pack halves the files an add creates, below that it saves one file or none.
MIN_PACK_OBJECTS = 4


@dataclass(frozen=True)
class PackInfo:
    """One pack in the folder, as a listing sees it."""

    id: str
    size: int
    mtime: float
    has_index: bool


class PackShelf:
    """The packs of one local store and the lookup table that finds objects in them.

    Args:
        root: the store's root folder.
        staging: the folder for files being written (the store's ``tmp/``).
    """

    def __init__(self, root: str, staging: str) -> None:
        self.root = root
        self.folder = os.path.join(root, PACKS)
        self.staging = staging
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._synced_mtime: int | None = None
        #: pack ids whose index could not be read on the last sync, with why (fsck reports them)
        self.damaged: dict[str, str] = {}
        #: stamp a pack's access time when an object is read from it (a remote lake's cache, pruned LRU by pack)
        self.touch_on_read = False
        self._touched: dict[str, float] = {}

    # -- the lookup table ------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            os.makedirs(self.folder, exist_ok=True)
            path = os.path.join(self.folder, LOOKUP)
            try:
                self._db = self._open_db(path)
            except sqlite3.OperationalError:  # a full disk or a read-only folder: a table in memory, from the indexes
                self._db = self._open_db(":memory:")
            except sqlite3.DatabaseError:  # a damaged cache: it holds nothing the indexes do not
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path + suffix)
                self._db = self._open_db(path)
        return self._db

    @staticmethod
    def _open_db(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a cache: a lost write is found again from the indexes
        db.execute("CREATE TABLE IF NOT EXISTS packs (id TEXT PRIMARY KEY)")
        db.execute("CREATE TABLE IF NOT EXISTS entries (hash BLOB NOT NULL, pack TEXT NOT NULL, off INTEGER NOT NULL, "
                   "size INTEGER NOT NULL, PRIMARY KEY (hash, pack)) WITHOUT ROWID")
        db.execute("CREATE INDEX IF NOT EXISTS entries_pack ON entries (pack)")
        db.execute("SELECT count(*) FROM packs").fetchone()  # a damaged file fails here, not later
        return db

    def close(self) -> None:
        """Close the lookup table (the last connection to close folds its write-ahead log back in)."""
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None
                self._synced_mtime = None

    def _register(self, pack_id: str, index: dict[str, PackedObject]) -> None:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR IGNORE INTO packs (id) VALUES (?)", (pack_id,))
                db.executemany("INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?)",
                               [(bytes.fromhex(h), pack_id, p.offset, p.size) for h, p in index.items()])
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _unregister(self, pack_ids: Iterable[str]) -> None:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                for pack_id in pack_ids:
                    db.execute("DELETE FROM entries WHERE pack = ?", (pack_id,))
                    db.execute("DELETE FROM packs WHERE id = ?", (pack_id,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def sync(self, force: bool = False) -> None:
        """Bring the lookup table up to date with the indexes in the folder.

        Without ``force`` nothing is read when the folder's modification time
        is the one seen at the last sync. A damaged index is left out (and
        listed in :attr:`damaged`): its objects are not served from its pack.
        """
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return
        if not force and mtime == self._synced_mtime:
            return
        with self._lock:
            listed = {p.id: p for p in self.list_packs()}
            indexed = {i for i, p in listed.items() if p.has_index}
            known = {row[0] for row in self._conn().execute("SELECT id FROM packs")}
            self.damaged = {i: why for i, why in self.damaged.items() if i in indexed}
            for pack_id in sorted(indexed - known):
                try:
                    index = self.read_index(pack_id, listed[pack_id].size if listed[pack_id].size >= 0 else None)
                except (IntegrityError, OSError, ValueError) as exc:
                    self.damaged[pack_id] = str(exc)
                    continue
                self._register(pack_id, index)
            gone = known - indexed
            if gone:
                # Rows of a deleted pack are harmless (a read finds the pack gone and looks again):
                # a full disk must not stop reads or gc.
                with contextlib.suppress(sqlite3.OperationalError):
                    self._unregister(gone)
            self._synced_mtime = mtime

    def read_index(self, pack_id: str, pack_size: int | None = None) -> dict[str, PackedObject]:
        """The checked index of one pack (an index is untrusted input: offsets, sizes and hashes are validated).

        Raises:
            IntegrityError: the index is damaged or crafted, or its pack is missing.
            FileNotFoundError: the index is gone.
        """
        if pack_size is None:
            try:
                pack_size = os.path.getsize(self.pack_path(pack_id))
            except FileNotFoundError:
                raise IntegrityError(f"pack index {self.pack_path(pack_id, 'idx')} names a pack that is missing",
                                     hint="call lake.fsck()", digest=pack_id) from None
        with open(self.pack_path(pack_id, "idx"), "rb") as f:
            data = f.read()
        return parse_index(pack_id, data, pack_size, self.pack_path(pack_id, "idx"))

    def locate(self, digest: str, refresh: bool = False) -> PackedObject | None:
        """Where a packed object sits, or None; ``refresh`` re-reads the folder first (before reporting a miss)."""
        self.sync(force=refresh)
        with self._lock:
            row = self._conn().execute("SELECT pack, off, size FROM entries WHERE hash = ? LIMIT 1",
                                       (bytes.fromhex(hashing.check_hash(digest)),)).fetchone()
        return PackedObject(row[0], row[1], row[2]) if row else None

    def known(self, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` some pack here holds: one query per 500, after one sync (not one lookup each).

        The digests must be valid hashes (they come from this process's own hashing).
        """
        wanted = [bytes.fromhex(d) for d in digests]
        if not wanted or not os.path.isdir(self.folder):
            return set()
        self.sync()
        found: set[str] = set()
        with self._lock:
            db = self._conn()
            for at in range(0, len(wanted), 500):
                part = wanted[at:at + 500]
                marks = ",".join("?" * len(part))
                found.update(bytes(row[0]).hex() for row in
                             db.execute(f"SELECT DISTINCT hash FROM entries WHERE hash IN ({marks})", part))
        return found

    def entries(self) -> Iterator[tuple[str, PackedObject]]:
        """Every (hash, place) in the lookup table after a sync; an object in two packs appears twice."""
        self.sync(force=True)
        with self._lock:
            rows = self._conn().execute("SELECT hash, pack, off, size FROM entries").fetchall()
        for h, pack, off, size in rows:
            yield bytes(h).hex(), PackedObject(pack, off, size)

    # -- the folder ------------------------------------------------------------
    def pack_path(self, pack_id: str, suffix: str = "pack") -> str:
        """The path of a pack (``suffix="pack"``) or of its index (``"idx"``)."""
        return os.path.join(self.folder, f"{hashing.check_hash(pack_id)}.{suffix}")

    def list_packs(self) -> list[PackInfo]:
        """Every pack file in the folder (with or without its index); an index without a pack shows size -1."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        stems: dict[str, set[str]] = {}
        for name in names:
            stem, _, suffix = name.rpartition(".")
            if hashing.is_hash(stem) and suffix in ("pack", "idx"):
                stems.setdefault(stem, set()).add(suffix)
        out = []
        for stem, suffixes in stems.items():
            try:
                st = os.stat(self.pack_path(stem))
                size, mtime = st.st_size, st.st_mtime
            except FileNotFoundError:
                size, mtime = -1, 0.0
            out.append(PackInfo(stem, size, mtime, "idx" in suffixes))
        return sorted(out, key=lambda p: p.id)

    def read(self, digest: str, where: PackedObject) -> bytes:
        """The bytes at ``where`` (one ``pread``), not yet verified.

        Raises:
            FileNotFoundError: the pack is gone (gc repacked it): look the object up again.
            IntegrityError: the pack is shorter than its index says.
        """
        fd = os.open(self.pack_path(where.pack), os.O_RDONLY)
        try:
            data = os.pread(fd, where.size, where.offset)
            if self.touch_on_read:
                self._touch(where.pack, fd)
        finally:
            os.close(fd)
        if len(data) != where.size:
            raise IntegrityError(f"pack {self.pack_path(where.pack)} is shorter than its index says, so object "
                                 f"{digest[:12]} cannot be read from it", hint="call lake.fsck()", digest=digest)
        return data

    def _touch(self, pack_id: str, fd: int) -> None:
        """Set a pack's access time to now (its modification time stays), at most every 10 seconds per pack."""
        now = time.time()
        if now - self._touched.get(pack_id, 0.0) < 10:
            return
        self._touched[pack_id] = now
        with contextlib.suppress(OSError):  # a read-only cache still reads
            os.utime(fd, (now, os.fstat(fd).st_mtime))

    def drop_entry(self, digest: str, pack_id: str) -> None:
        """Stop serving one object from one pack (found corrupt there); the pack stays for fsck and gc."""
        with self._lock:
            self._conn().execute("DELETE FROM entries WHERE hash = ? AND pack = ?", (bytes.fromhex(digest), pack_id))

    def delete_pack(self, pack_id: str) -> None:
        """Remove a pack: its index first, then the pack, then its lookup rows (gc only, under the writer guard)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pack_path(pack_id, "idx"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pack_path(pack_id))  # before the rows: on a full disk, freeing space comes first
        with contextlib.suppress(sqlite3.OperationalError):
            self._unregister([pack_id])  # left behind, a row finds the pack gone and is dropped at the next sync
        self.damaged.pop(pack_id, None)

    def writer(self, durable: bool = True, pack_max: int = PACK_MAX, min_objects: int = 1,
               place_loose: Callable[[str, str], str] | None = None) -> PackWriter:
        """A writer of new packs (see :class:`PackWriter`)."""
        return PackWriter(self, durable, pack_max, min_objects, place_loose)


def _fsync_and_close(fd: int) -> None:
    """fsync a sealed pack file and close it (on the writer's fsync thread)."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pack_id_of_index(index_bytes: bytes) -> str:
    """The id of a pack with this index: BLAKE3 in key-derivation mode (see the module's docstring)."""
    return blake3.blake3(index_bytes, derive_key_context=PACK_ID_CONTEXT).hexdigest()


class PackWriter:
    """Writes objects into new packs in ``tmp/``, and publishes them with :meth:`finish`.

    Thread-safe: the threads of one add share one writer. A pack rolls over
    at ``pack_max`` bytes. Nothing is visible to any reader before
    :meth:`finish`; :meth:`abort` (or a crash) leaves only staging files.
    A writer holding fewer than ``min_objects`` objects at :meth:`finish`
    publishes them as loose objects instead, through ``place_loose(staged, digest)``
    (which moves a staging file into place and returns its final path).
    """

    def __init__(self, shelf: PackShelf, durable: bool, pack_max: int, min_objects: int = 1,
                 place_loose: Callable[[str, str], str] | None = None) -> None:
        self.shelf = shelf
        self.durable = durable
        self.pack_max = pack_max
        self.min_objects = min_objects if place_loose is not None else 1
        self.place_loose = place_loose
        #: objects :meth:`finish` wrote loose (too few for a pack)
        self.loose: list[str] = []
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._tmp = ""
        self._buffer = bytearray()  # small objects not yet written to the current pack file
        self._entries: list[list[object]] = []
        self._offset = 0
        self._members: set[str] = set()
        self._done: list[tuple[str, str, bytes, dict[str, PackedObject]]] = []  # (id, tmp path, index bytes, index)
        #: the ids of the packs published by :meth:`finish`
        self.published: list[str] = []
        #: chunk lists of files chunked into this writer, written once its packs are published
        self.chunklists: dict[str, ChunkList] = {}
        self._sync_pool: ThreadPoolExecutor | None = None
        self._syncs: list[Future[None]] = []

    def __contains__(self, digest: str) -> bool:
        return digest in self._members

    def add(self, digest: str, data: bytes | memoryview) -> bool:
        """Append one object already hashed to ``digest``; False when this writer holds it already."""
        with self._lock:
            if digest in self._members:
                return False
            self._append(memoryview(data), [(digest, 0, len(data))])
            return True

    def add_many(self, block: memoryview, members: Iterable[tuple[str, int, int]]) -> int:
        """Append objects that are slices of ``block``: ``(hash, offset in block, size)`` each, already hashed.

        Members this writer holds already are skipped; runs of members that lie
        back to back in ``block`` (the chunks of a file) go out in one write.
        Returns how many were appended.
        """
        with self._lock:
            run: list[tuple[str, int, int]] = []
            added = 0
            for digest, offset, size in members:
                if digest in self._members:
                    continue
                self._members.add(digest)  # a chunk twice in one block is stored once
                if run and (run[-1][1] + run[-1][2] != offset
                            or self._offset + (offset + size - run[0][1]) > self.pack_max):
                    self._append(block, run)
                    run = []
                run.append((digest, offset, size))
                added += 1
            if run:
                self._append(block, run)
            return added

    def _append(self, block: memoryview, run: list[tuple[str, int, int]]) -> None:
        """Write a run of members lying back to back in ``block`` to the current pack (a new one when it is full)."""
        start, end = run[0][1], run[-1][1] + run[-1][2]
        if self._fd is not None and self._offset + (end - start) > self.pack_max:
            self._seal()
        if self._fd is None:
            os.makedirs(self.shelf.staging, exist_ok=True)
            self._tmp = os.path.join(self.shelf.staging,
                                     f"pack-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        data = block[start:end]
        if len(data) >= WRITE_BUFFER // 4:  # a run of chunks: no copy into the buffer
            self._flush()
            self._write(data)
        else:
            self._buffer += data
            if len(self._buffer) >= WRITE_BUFFER:
                self._flush()
        for digest, offset, size in run:
            self._entries.append([digest, self._offset + offset - start, size])
            self._members.add(digest)
        self._offset += end - start

    def _flush(self) -> None:
        """Write the gathered small objects to the current pack file."""
        if self._buffer:
            self._write(memoryview(self._buffer))
            self._buffer = bytearray()

    def _write(self, view: memoryview) -> None:
        assert self._fd is not None
        while view:  # in pieces of IO_SIZE: bigger writes cost more system time (see chunks.IO_SIZE)
            view = view[os.write(self._fd, view[:IO_SIZE]):]

    def _seal(self) -> None:
        """Close the current pack file and remember it for :meth:`finish`.

        When durable, the pack is fsynced on a background thread while the
        next one is written (the disk works while the CPU cuts and hashes);
        :meth:`finish` waits for every fsync before anything names the pack.
        """
        assert self._fd is not None
        fd = self._fd
        try:
            self._flush()
        except BaseException:
            os.close(fd)
            raise
        finally:
            self._fd = None
            self._buffer = bytearray()
        if not self.durable:
            os.close(fd)
        else:
            if self._sync_pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._sync_pool = ThreadPoolExecutor(1, thread_name_prefix="limnos-fsync")
            self._syncs.append(self._sync_pool.submit(_fsync_and_close, fd))
        index_bytes = json.dumps({"format": FORMAT, "objects": self._entries}, separators=(",", ":")).encode()
        pack_id = pack_id_of_index(index_bytes)
        index = {str(h): PackedObject(pack_id, int(o), int(s)) for h, o, s in self._entries}  # type: ignore[call-overload]
        self._done.append((pack_id, self._tmp, index_bytes, index))
        self._entries, self._offset = [], 0

    def _wait_for_fsyncs(self) -> None:
        """Wait for the background fsync of every sealed pack; raise the first error (after all have ended)."""
        syncs, self._syncs = self._syncs, []
        errors = [exc for exc in (f.exception() for f in syncs) if exc is not None]
        if self._sync_pool is not None:
            self._sync_pool.shutdown(wait=True)
            self._sync_pool = None
        if errors:
            raise errors[0]

    def finish(self) -> list[str]:
        """Publish every pack written: pack, then index, then the folder, each fsynced when durable.

        Returns the new pack ids. Call it before the commit that names the objects.
        """
        with self._lock:
            if self._fd is not None and not self._done and len(self._entries) < self.min_objects:
                self._publish_loose()
                return list(self.published)
            if self._fd is not None:
                self._seal()
            self._wait_for_fsyncs()  # every pack on disk before its index is written or renamed
            folder = self.shelf.folder
            os.makedirs(folder, exist_ok=True)
            for _pack_id, tmp, index_bytes, _index in self._done:
                fd = os.open(f"{tmp}.idx", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                try:
                    os.write(fd, index_bytes)
                finally:
                    os.close(fd)
            if self.durable:  # all written first: the first fsync commits the journal for the others too
                for _pack_id, tmp, _bytes, _index in self._done:
                    fd = os.open(f"{tmp}.idx", os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            for pack_id, tmp, _bytes, _index in self._done:
                # The pack first, its index last: an index only ever names a complete pack.
                os.replace(tmp, self.shelf.pack_path(pack_id))
                os.replace(f"{tmp}.idx", self.shelf.pack_path(pack_id, "idx"))
                self.published.append(pack_id)
            if self._done and self.durable:
                fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for pack_id, _tmp, _bytes, index in self._done:
                self.shelf._register(pack_id, index)
            self._done = []
            return list(self.published)

    def _publish_loose(self) -> None:
        """Write the few objects of the one unsealed pack as loose objects, and drop that pack."""
        assert self._fd is not None and self.place_loose is not None
        try:
            self._flush()
        finally:
            self._buffer = bytearray()
        os.close(self._fd)
        self._fd = None
        folders = set()
        try:
            with open(self._tmp, "rb") as pack:
                for digest, offset, size in self._entries:
                    pack.seek(int(offset))  # type: ignore[call-overload]
                    data = pack.read(int(size))  # type: ignore[call-overload]
                    staged = f"{self._tmp}.{digest}"
                    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    try:
                        os.write(fd, data)
                        if self.durable:
                            os.fsync(fd)
                    finally:
                        os.close(fd)
                    folders.add(os.path.dirname(self.place_loose(staged, str(digest))))
                    self.loose.append(str(digest))
            if self.durable:
                for folder in sorted(folders):  # the new names survive a power cut too
                    fd = os.open(folder, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._entries, self._offset = [], 0

    def abort(self) -> int:
        """Drop every pack not yet published (a failed add): only staging files existed. Returns the objects dropped."""
        with self._lock:
            dropped = sum(len(index) for _id, _tmp, _bytes, index in self._done) + len(self._entries)
            self._buffer = bytearray()
            with contextlib.suppress(OSError):
                self._wait_for_fsyncs()  # their files are deleted next: an fsync error no longer matters
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._done.append(("", self._tmp, b"", {}))
            for _id, tmp, _bytes, _index in self._done:
                for path in (tmp, f"{tmp}.idx"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            self._done, self._entries = [], []
            return dropped
