"""What a local store does with objects that are not one file each: packed objects and chunked files.

:class:`PackedObjects` is a mixin of :class:`~limnos.store.local.LocalObjectStore`.
An object of a local store is in one of three layouts, and every read
accepts all three (so a lake made before packs needs no migration):

* **loose**: ``objects/<h[:2]>/<h[2:]>``, one file (big files up to the
  chunking threshold, objects pulled one by one, and every older lake);
* **packed**: a slice of a pack (``store/lakepacks.py``), for small objects;
* **chunked**: a chunk list (``store/chunks.py``) whose chunks are packed.

Callers that need a real file (``File.local_path()``, a checkout, a working
copy) ask :meth:`PackedObjects.materialize`: the object is put together,
verified, and kept as a loose object, once. Every byte served from a pack is
hashed first; a packed object found corrupt is copied to ``quarantine/`` and
dropped from the lookup, so the next read fetches a clean copy from a remote,
as for a loose object.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from typing import IO, TYPE_CHECKING

from ..errors import IntegrityError, ObjectNotAvailable
from . import hashing
from .chunks import CHUNKLISTS, ChunkedReader, ChunkList, chunk_file, chunklist_relpath, parse_chunklist
from .lakepacks import PackShelf, PackWriter
from .objects import OBJECTS
from .packs import PackedObject

if TYPE_CHECKING:
    from .objects import ObjectStore


def walk_fanout(base: str) -> Iterator[tuple[str, os.stat_result]]:
    """(hash, stat) of every file in a ``<h[:2]>/<h[2:]>`` folder tree (objects, chunk lists); other names skipped."""
    if not os.path.isdir(base):
        return
    for prefix in os.scandir(base):
        if not prefix.is_dir() or len(prefix.name) != 2:
            continue
        for entry in os.scandir(prefix.path):
            digest = prefix.name + entry.name
            if hashing.is_hash(digest):
                yield digest, entry.stat()


class PackedObjects:
    """Packed objects and chunked files of a local store (a mixin: the store provides root, path and staging)."""

    root: str
    _packs_shelf: PackShelf | None = None

    # provided by LocalObjectStore
    def path(self, digest: str) -> str:  # pragma: no cover - overridden
        """The loose path of an object."""
        raise NotImplementedError

    def staging_dir(self) -> str:  # pragma: no cover - overridden
        """The staging folder."""
        raise NotImplementedError

    def commit_staged(self, staged: str, digest: str, is_readonly: bool = False) -> bool:  # pragma: no cover
        """Move a hashed staging file into place."""
        raise NotImplementedError

    # -- where an object is ------------------------------------------------------
    @property
    def packs(self) -> PackShelf:
        """This store's packs and their lookup table."""
        if self._packs_shelf is None:
            self._packs_shelf = PackShelf(self.root, os.path.join(self.root, "tmp"))
        return self._packs_shelf

    def has_loose(self, digest: str) -> bool:
        """True when the object is a file of its own here (``path(digest)`` exists)."""
        return os.path.exists(self.path(digest))

    def locate(self, digest: str, refresh: bool = False) -> PackedObject | None:
        """Where a packed object sits here, or None (no lookup file is made in a store without packs)."""
        if not os.path.isdir(self.packs.folder):
            return None
        return self.packs.locate(digest, refresh)

    def chunklist_path(self, digest: str) -> str:
        """Where the chunk list of a chunked file is (whether or not it is there)."""
        return os.path.join(self.root, *chunklist_relpath(digest).split("/"))

    def chunk_list(self, digest: str) -> ChunkList | None:
        """The checked chunk list of a chunked file here, or None when the file is not chunked here.

        Raises:
            IntegrityError: the chunk list is damaged.
        """
        try:
            with open(self.chunklist_path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return parse_chunklist(digest, data, self.chunklist_path(digest))

    def here(self, digests: Collection[str]) -> set[str]:
        """Those of ``digests`` this folder holds, loose, packed or chunked: one pack query per 500, then a
        stat only for the rest (``has`` for each would stat every one and query the packs one by one)."""
        wanted = {hashing.check_hash(d) for d in digests}
        found = self.packs.known(wanted) if os.path.isdir(self.packs.folder) else set()
        for d in wanted - found:
            if os.path.exists(os.path.join(self.root, OBJECTS, d[:2], d[2:])) or os.path.exists(self.chunklist_path(d)):
                found.add(d)
        return found

    def has_packed(self, digest: str) -> bool:
        """True when the object is here in a pack or as a chunked file (not as a loose file)."""
        return self.locate(digest) is not None or os.path.exists(self.chunklist_path(digest))

    def lacks_chunks(self, digest: str) -> bool:
        """True when ``digest`` is chunked here but a chunk is missing (one found corrupt was dropped)."""
        chunks = self.chunk_list(digest)
        return chunks is not None and any(not self.has_loose(h) and self.locate(h) is None for h in chunks.hashes())

    # -- reading -----------------------------------------------------------------
    def read_packed(self, digest: str, ref: str | None = None, quarantine: bool = True) -> bytes:
        """The bytes of a packed object, verified against its hash (``quarantine=False``: report only, as fsck).

        Raises:
            ObjectNotAvailable: no pack here holds the object.
            IntegrityError: the bytes are wrong (copied to quarantine, dropped from the lookup).
        """
        for attempt in range(3):
            where = self.locate(digest, refresh=attempt > 0)
            if where is None:
                break
            try:
                data = self.packs.read(digest, where)
            except FileNotFoundError:
                continue  # gc repacked it meanwhile: look again
            actual = hashing.hash_bytes(data)
            if actual != digest:
                if not quarantine:
                    raise IntegrityError(f"object {digest[:12]} is corrupt in pack {where.pack[:12]}", digest=digest,
                                         hint="call lake.fsck(repair=True)", url=self.root)
                raise self._corrupt_packed(digest, actual, where, data, ref)
            return data
        raise ObjectNotAvailable(f"object {digest[:12]} is in no pack of {self.root}", digest=digest,
                                 hint="call lake.fsck() to see what else is missing")

    def _corrupt_packed(self, digest: str, actual: str, where: PackedObject, data: bytes,
                        ref: str | None) -> IntegrityError:
        """Copy a corrupt packed object to quarantine, drop it from the lookup; the error that says so."""
        folder = os.path.join(self.root, "quarantine")
        os.makedirs(folder, exist_ok=True)
        dest = os.path.join(folder, digest)
        n = 1
        while os.path.lexists(dest):
            dest = os.path.join(folder, f"{digest}.{n}")
            n += 1
        with open(dest, "xb") as f:
            f.write(data)
        self.packs.drop_entry(digest, where.pack)
        what = f"{ref} (object {digest[:12]})" if ref else f"object {digest[:12]}"
        return IntegrityError(f"{what} is corrupt in pack {where.pack[:12]} on this machine: its bytes hash to "
                              f"{actual[:12]}; a copy was put in {dest}",
                              hint="read it again to fetch a clean copy from a remote, or call lake.fsck(repair=True)",
                              digest=digest, url=self.root)

    def read_chunk(self, digest: str, quarantine: bool = True) -> bytes:
        """One chunk of a chunked file, verified (a chunk may also be a loose object)."""
        if self.has_loose(digest):
            with open(self.path(digest), "rb") as f:
                data = f.read()
            if hashing.hash_bytes(data) != digest:
                raise IntegrityError(f"chunk {digest[:12]} is corrupt on this machine", hint="call lake.fsck()",
                                     digest=digest, url=self.root)
            return data
        return self.read_packed(digest, quarantine=quarantine)

    def open_packed(self, digest: str, ref: str | None = None) -> IO[bytes]:
        """A reader over a packed object or a chunked file; every byte it serves is checked.

        Raises:
            ObjectNotAvailable: the object is not here in either layout.
            IntegrityError: the bytes are wrong.
        """
        chunks = self.chunk_list(digest)
        if chunks is not None:
            return io.BufferedReader(ChunkedReader(digest, chunks, self.read_chunk, ref), hashing.CHUNK)
        return io.BytesIO(self.read_packed(digest, ref))

    def read_range(self, digest: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an object in any layout; a chunked file reads only the chunks they span.

        Each chunk read is checked against its hash; a loose or packed object is read whole and checked.
        """
        if self.has_loose(digest) or self.locate(digest) is not None:
            with self.open_any(digest) as f:
                data = f.read()
            if hashing.hash_bytes(data) != digest:
                raise IntegrityError(f"object {digest[:12]} is corrupt on this machine", hint="call lake.fsck()",
                                     digest=digest, url=self.root)
            return data[start:end]
        with self.open_packed(digest) as f:
            f.seek(start)
            return f.read(max(0, end - start))

    def open_any(self, digest: str) -> IO[bytes]:
        """Open an object in any layout, not verified (fsck hashes what it reads)."""
        if self.has_loose(digest):
            return open(self.path(digest), "rb")
        where = self.locate(digest, refresh=True)
        if where is not None:
            return io.BytesIO(self.packs.read(digest, where))
        chunks = self.chunk_list(digest)
        if chunks is None:
            raise ObjectNotAvailable(f"object {digest[:12]} is missing from {self.root}", digest=digest,
                                     hint="call lake.fsck() to see what else is missing")
        check_only = functools.partial(self.read_chunk, quarantine=False)  # fsck reads: report, change nothing
        return io.BufferedReader(ChunkedReader(digest, chunks, check_only), hashing.CHUNK)

    def materialize(self, digest: str, ref: str | None = None) -> str:
        """A real file for the object: the loose path, put together (verified) from a pack or chunks once.

        Raises:
            ObjectNotAvailable: the object is not here.
            IntegrityError: its bytes are wrong (nothing is kept).
        """
        final = self.path(digest)
        if os.path.exists(final):
            return final
        staged = os.path.join(self.staging_dir(), f"extract-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
        try:
            with open(staged, "xb") as out:
                chunks = self.chunk_list(digest)
                if chunks is None:
                    out.write(self.read_packed(digest, ref))
                else:  # the reader checks every chunk, and the whole file at its end
                    with io.BufferedReader(ChunkedReader(digest, chunks, self.read_chunk, ref), hashing.CHUNK) as src:
                        while block := src.read(hashing.CHUNK):
                            out.write(block)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            self.commit_staged(staged, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
        return final

    @contextlib.contextmanager
    def export(self, digest: str) -> Iterator[str]:
        """A local file with the object's bytes for the block (the loose file, or a verified temporary copy)."""
        if self.has_loose(digest):
            yield self.path(digest)
            return
        staged = os.path.join(self.staging_dir(), f"export-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
        try:
            with open(staged, "xb") as out, self.open_packed(digest) as src:
                while block := src.read(hashing.CHUNK):
                    out.write(block)
            yield staged
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)

    def packed_size(self, digest: str) -> int | None:
        """The size of a packed object or chunked file here, or None."""
        where = self.locate(digest)
        if where is not None:
            return where.size
        chunks = self.chunk_list(digest)
        return chunks.size if chunks is not None else None

    def verify_packed(self, digest: str, ref: str | None = None) -> None:
        """Hash a packed object or a chunked file whole.

        Raises:
            IntegrityError: the bytes are wrong.
            ObjectNotAvailable: it is not here.
        """
        chunks = self.chunk_list(digest)
        if chunks is None:
            self.read_packed(digest, ref)
            return
        with self.open_packed(digest, ref) as f:
            while f.read(hashing.CHUNK):
                pass

    # -- writing -----------------------------------------------------------------
    def pack_writer(self, durable: bool = True, min_objects: int = 1) -> PackWriter:
        """A writer of new packs in this store (see :class:`~limnos.store.lakepacks.PackWriter`).

        ``min_objects``: a writer left with fewer objects stores them loose (see ``MIN_PACK_OBJECTS``).
        """
        return self.packs.writer(durable, min_objects=min_objects, place_loose=self._place_loose)

    def _place_loose(self, staged: str, digest: str) -> str:
        """Move a staging file hashed to ``digest`` into place as a loose object; its final path."""
        self.commit_staged(staged, digest)
        return self.path(digest)

    def ingest_packed(self, writer: PackWriter, src: str) -> tuple[str, int, bool]:
        """Read a small file whole, hash it, and add it to ``writer`` unless it is stored already.

        Returns (hash, size, newly_stored).
        """
        with open(src, "rb") as f:
            data = f.read()
        digest = hashing.hash_bytes(data)
        hashing.stats.count(len(data))
        if digest in writer or self.has_loose(digest) or self.has_packed(digest):
            return digest, len(data), False
        return digest, len(data), writer.add(digest, data)

    def ingest_packed_many(self, writer: PackWriter, sources: Sequence[str]) -> list[tuple[str, int, bool]]:
        """:meth:`ingest_packed` for many small files: each read and hashed, then all looked up at once.

        One lookup query per 500 files, and a ``stat`` only for objects whose
        ``objects/`` or ``chunklists/`` prefix folder exists (a lake of packs
        has none), instead of three lookups per file. Returns (hash, size,
        newly_stored) per source, in order. The caller bounds the batch's bytes.
        """
        read = []
        for src in sources:
            with open(src, "rb") as f:
                data = f.read()
            read.append((hashing.hash_bytes(data), data))
            hashing.stats.count(len(data))
        fresh = {h for h, _data in read if h not in writer}
        stored = self.packs.known(fresh)
        stored |= self._stored_apart(fresh - stored)
        return [(h, len(data), h not in stored and writer.add(h, data)) for h, data in read]

    def _stored_apart(self, digests: Collection[str]) -> set[str]:
        """Those of ``digests`` here as a loose object or a chunk list (one ``listdir`` of each folder first)."""
        found: set[str] = set()
        for folder, path_of in ((OBJECTS, self.path), (CHUNKLISTS, self.chunklist_path)):
            try:
                prefixes = set(os.listdir(os.path.join(self.root, folder)))
            except FileNotFoundError:
                continue
            found.update(d for d in digests if d[:2] in prefixes and os.path.exists(path_of(d)))
        return found

    def ingest_chunked(self, writer: PackWriter, src: str) -> tuple[str, int, bool]:
        """Cut a big file into content-defined chunks, pack the new ones, and write its chunk list.

        A block's chunks are looked up in the packs with one query, and the new
        ones are written in one go. A chunk that is a loose object here (a small
        file added alone, or stored before packs existed) is not looked for (a
        ``stat`` per chunk would cost more than the rare duplicate): it is packed
        again, which costs that chunk's bytes once and keeps every read right.

        The chunk list is written only after ``writer.finish()`` (see
        :meth:`write_pending_chunklists`), so a chunk list never names a chunk
        that is not stored. Returns (hash, size, newly_stored).
        """
        def store_block(block: memoryview, members: list[tuple[str, int, int]]) -> None:
            have = self.packs.known({h for h, _o, _n in members if h not in writer})
            writer.add_many(block, [m for m in members if m[0] not in have])

        digest, chunks = chunk_file(src, store_block)
        if self.has_loose(digest) or os.path.exists(self.chunklist_path(digest)):
            return digest, chunks.size, False
        writer.chunklists[digest] = chunks
        return digest, chunks.size, True

    def write_pending_chunklists(self, writer: PackWriter) -> list[str]:
        """Publish ``writer``'s packs, then the chunk lists of the files it chunked; their hashes."""
        writer.finish()
        for digest, chunks in writer.chunklists.items():
            self.write_chunklist(digest, chunks, writer.durable)
        return list(writer.chunklists)

    def write_chunklist(self, digest: str, chunks: ChunkList, durable: bool = True) -> bool:
        """Write a file's chunk list (its chunks must be stored already); False when one was there."""
        final = self.chunklist_path(digest)
        if os.path.exists(final):
            return False
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            view = memoryview(chunks.to_bytes())
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        if durable:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return True

    def fetch_chunked(self, source: ObjectStore, digest: str) -> int | None:
        """Fetch a file chunked in ``source``: its chunk list (checked), the chunks missing here, then the list.

        The chunks go into a new pack; the file is put together once to check
        its whole hash before its chunk list is written here. Returns the bytes
        fetched, or None when ``source`` does not hold the file chunked.

        Raises:
            IntegrityError: the chunk list is crafted, a chunk is corrupt, or the whole file does not hash right.
            ObjectNotAvailable: a chunk is missing from ``source``.
        """
        chunks = source.read_chunklist(digest)
        if chunks is None:
            return None
        writer = self.pack_writer()
        fetched = 0
        try:
            for h in sorted(chunks.hashes()):
                if self.has_loose(h) or self.locate(h) is not None or h in writer:
                    continue
                staged = os.path.join(self.staging_dir(), f"chunk-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
                try:
                    fetched += source.get_file(h, staged)  # hashed before it appears
                    with open(staged, "rb") as f:
                        writer.add(h, f.read())
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(staged)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        with ChunkedReader(digest, chunks, self.read_chunk) as whole:
            hashing.hash_stream(whole)  # type: ignore[arg-type]  # its end of file runs the whole-file check
        self.write_chunklist(digest, chunks)
        return fetched

    def iter_chunklists(self) -> Iterator[tuple[str, int, float]]:
        """(hash, chunk list size, mtime) of every chunked file here."""
        for digest, st in walk_fanout(os.path.join(self.root, CHUNKLISTS)):
            yield digest, st.st_size, st.st_mtime

    def delete_chunklist(self, digest: str) -> None:
        """Remove a chunk list (gc only); its chunks become unreferenced."""
        os.unlink(self.chunklist_path(digest))
