"""Content-defined chunks for big files: an edit costs what changed, not the whole file.

A file over the chunking threshold is cut with FastCDC (the ``pyfastcdc``
package: the FastCDC 2020 algorithm in Cython, streaming with a bounded
buffer, about 1.7 GB/s here with BLAKE3 of every chunk) into chunks of
about 64 KiB. The chunks are objects like any other, named by their BLAKE3
hash and stored in packs; the file itself is a *chunk list*::

    chunklists/<h[:2]>/<h[2:]>    h is the BLAKE3 of the whole file, as for a loose object

so ``File.hash``, lineage and step keys do not change with the layout. A
chunk list is binary (:data:`MAGIC`, the file size, then a 32-byte hash and
a 4-byte length per chunk: 36 bytes per 64 KiB, so a 1 GB file's list is
about 560 KB). It is written after every chunk it names is stored, so a
chunk list present means a file complete. A chunk list from anywhere is
untrusted input: :func:`parse_chunklist` checks every field, each chunk is
hashed when read, and a whole read checks the whole file's BLAKE3.
"""

from __future__ import annotations

import bisect
import io
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import blake3

from ..errors import IntegrityError, RemoteError
from . import hashing

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNKLISTS = "chunklists"
MAGIC = b"LIMNOS-CHUNKS-1\n"
#: files from this size are chunked (``chunk_threshold`` in a lake's settings; 0 turns chunking off)
CHUNK_THRESHOLD = 8 << 20
#: FastCDC's parameters: pyfastcdc's output averages avg + min, so chunks average about 64 KiB
CHUNK_AVG = 48 << 10
CHUNK_MIN = 16 << 10
CHUNK_MAX = 256 << 10
_ENTRY = struct.Struct(">32sI")
_HEAD = struct.Struct(">QI")  # file size, chunk count


@dataclass(frozen=True)
class ChunkList:
    """The chunks of one file, in order: ``(hash, length)`` each; ``size`` is the file's."""

    size: int
    chunks: tuple[tuple[str, int], ...]

    def to_bytes(self) -> bytes:
        """The binary form stored under ``chunklists/``."""
        body = b"".join(_ENTRY.pack(bytes.fromhex(h), n) for h, n in self.chunks)
        return MAGIC + _HEAD.pack(self.size, len(self.chunks)) + body

    def offsets(self) -> list[int]:
        """The offset in the file where each chunk starts."""
        out, at = [], 0
        for _, n in self.chunks:
            out.append(at)
            at += n
        return out

    def hashes(self) -> set[str]:
        """The distinct chunk hashes."""
        return {h for h, _ in self.chunks}


def chunklist_relpath(digest: str) -> str:
    """Where a file's chunk list sits under a store's root."""
    digest = hashing.check_hash(digest)
    return f"{CHUNKLISTS}/{digest[:2]}/{digest[2:]}"


def parse_chunklist(digest: str, data: bytes, where: str = "") -> ChunkList:
    """A chunk list from its bytes, every field checked (it may come from a remote: untrusted input).

    Raises:
        IntegrityError: the bytes are not a chunk list limnos writes; the message names ``where``.
    """
    what = where or f"chunk list of {digest[:12]}"

    def bad(why: str) -> IntegrityError:
        return IntegrityError(f"{what} is damaged or crafted: {why}; nothing was read through it",
                              hint="call lake.fsck()", digest=digest)

    if not data.startswith(MAGIC):
        raise bad("it does not start with the chunk list marker")
    if len(data) < len(MAGIC) + _HEAD.size:
        raise bad("it is cut short")
    size, count = _HEAD.unpack_from(data, len(MAGIC))
    body = len(MAGIC) + _HEAD.size
    if len(data) != body + count * _ENTRY.size:
        raise bad(f"it says {count} chunks but holds {(len(data) - body) // _ENTRY.size}")
    chunks = []
    total = 0
    for n in range(count):
        raw, length = _ENTRY.unpack_from(data, body + n * _ENTRY.size)
        if not 0 < length <= 1 << 24:
            raise bad(f"chunk {n} has length {length}")
        total += length
        chunks.append((raw.hex(), length))
    if total != size:
        raise bad(f"its chunks add up to {total} bytes, not the {size} it says")
    return ChunkList(size, tuple(chunks))


#: a chunked file is cut and hashed in blocks of this size (three blocks in flight: bounded memory)
BLOCK = 2 << 20
#: ... read by this much at a time: measured here, reads and writes of 2 MiB and more cost 1.5-6x the system
#: time of 256 KiB ones (copies that no longer fit the CPU's cache, and page-cache allocation in bulk)
IO_SIZE = 256 << 10


def _chunker() -> Any:
    """A FastCDC chunker with limnos's parameters.

    Raises:
        RemoteError: ``pyfastcdc`` is not installed.
    """
    try:
        import pyfastcdc
    except ImportError:
        raise RemoteError("chunking big files needs pyfastcdc: pip install pyfastcdc") from None
    return pyfastcdc.FastCDC(CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX)


def _cut_block(cdc: Any, view: memoryview, at_end: bool) -> tuple[list[tuple[int, int]], int]:
    """The chunks ``(offset, length)`` of a block that no later byte can change, and where the rest starts.

    FastCDC finds a chunk's end within :data:`CHUNK_MAX` bytes of its start, so
    a chunk starting that close to the block's end may be cut short by it: it is
    not cut here but from the next block, which starts with those bytes. The
    cut points are therefore exactly those of cutting the whole file as one stream.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    chunker = iter(cdc.cut_buf(view))
    while at_end or len(view) - pos >= CHUNK_MAX:
        chunk = next(chunker, None)
        if chunk is None:
            break
        spans.append((chunk.offset, chunk.length))
        pos = chunk.offset + chunk.length
    return spans, pos


def _hash_block(whole: blake3.blake3, view: memoryview, spans: list[tuple[int, int]], done: int) -> list[str]:
    """Each chunk's BLAKE3, and the block's bytes up to ``done`` fed to the whole-file hasher (a worker's job)."""
    whole.update(view[:done])
    return [blake3.blake3(view[o:o + n]).hexdigest() for o, n in spans]


def chunk_file(path: str, store_block: Callable[[memoryview, list[tuple[str, int, int]]], object]
               ) -> tuple[str, ChunkList]:
    """Cut a local file into content-defined chunks, hand them over block by block, and hash the whole file.

    ``store_block(block, chunks)`` gets a block's chunks in file order as
    ``(hash, offset in block, length)``; the block's bytes are valid only during
    the call. Returns the file's BLAKE3 and its chunk list.

    One pass over the file: it is read in :data:`BLOCK`-sized blocks; a worker
    thread hashes a block's chunks and feeds the whole-file hasher while this
    thread reads and cuts the next one and stores the one before (blake3 and
    the reads release the GIL). Memory stays bounded: three blocks.

    Raises:
        RemoteError: ``pyfastcdc`` is not installed.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    cdc = _chunker()
    whole = blake3.blake3()
    chunks: list[tuple[str, int]] = []
    buffers = [bytearray(BLOCK + CHUNK_MAX) for _ in range(3)]
    pending: tuple[memoryview, list[tuple[int, int]], Future[list[str]]] | None = None

    def store(view: memoryview, spans: list[tuple[int, int]], hashes: list[str]) -> None:
        members = [(h, o, n) for h, (o, n) in zip(hashes, spans, strict=True)]
        store_block(view, members)
        chunks.extend((h, n) for h, _o, n in members)

    with open(path, "rb", buffering=0) as f, ThreadPoolExecutor(1, thread_name_prefix="limnos-chunk") as pool:
        carry = memoryview(b"")
        n_block = 0
        at_end = False
        while not at_end:
            buf = memoryview(buffers[n_block % 3])
            n_block += 1
            filled = len(carry)
            buf[:filled] = carry
            while filled < len(buf):
                got = f.readinto(buf[filled:filled + IO_SIZE])
                if not got:
                    at_end = True
                    break
                filled += got
            view = buf[:filled]
            spans, done = _cut_block(cdc, view, at_end)
            carry = view[done:]
            job = pool.submit(_hash_block, whole, view, spans, done)
            if pending is not None:
                store(pending[0], pending[1], pending[2].result())
            pending = (view, spans, job)
        if pending is not None:
            store(pending[0], pending[1], pending[2].result())
    size = sum(n for _, n in chunks)
    hashing.stats.count(size)
    return whole.hexdigest(), ChunkList(size, tuple(chunks))


class ChunkedReader(io.RawIOBase):
    """A reader over a chunked file: each chunk is hashed as it is read; a whole sequential read is checked too.

    A read after a ``seek`` reads only the chunks it needs (each one checked
    against its hash); the whole-file hash is checked only when the file was
    read from its start to its end without a seek.

    Args:
        digest: the file's hash.
        chunks: its chunk list.
        read_chunk: returns a chunk's bytes, already checked against its hash.
        ref: the file it is read for, named in errors.
    """

    def __init__(self, digest: str, chunks: ChunkList, read_chunk: Callable[[str], bytes], ref: str | None = None) -> None:
        super().__init__()
        self._digest = digest
        self._list = chunks
        self._starts = chunks.offsets()
        self._read_chunk = read_chunk
        self._ref = ref
        self._pos = 0
        self._hasher: blake3.blake3 | None = blake3.blake3()
        self._hashed = 0
        self._current: tuple[int, bytes] | None = None  # (chunk index, bytes)

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """True: a seek reads only the chunks it needs from then on."""
        return True

    def _chunk(self, n: int) -> bytes:
        if self._current is None or self._current[0] != n:
            self._current = (n, self._read_chunk(self._list.chunks[n][0]))
        return self._current[1]

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer``; at the end of a whole sequential read, raise if the file does not hash right."""
        view = memoryview(buffer).cast("B")
        if self._pos >= self._list.size or not len(view):
            self._finish()
            return 0
        n = bisect.bisect_right(self._starts, self._pos) - 1
        data = self._chunk(n)
        start = self._pos - self._starts[n]
        piece = data[start:start + len(view)]
        view[:len(piece)] = piece
        if self._hasher is not None and self._hashed == self._pos:
            self._hasher.update(piece)
            self._hashed += len(piece)
        self._pos += len(piece)
        return len(piece)

    def _finish(self) -> None:
        if self._hasher is None or self._hashed != self._list.size:
            return
        actual = self._hasher.hexdigest()
        self._hasher = None
        if actual != self._digest:
            what = f"{self._ref} (object {self._digest[:12]})" if self._ref else f"object {self._digest[:12]}"
            raise IntegrityError(f"{what} is corrupt on this machine: its chunks put together hash to {actual[:12]}",
                                 hint="call lake.fsck(repair=True)", digest=self._digest)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to another position (reads from there on fetch only the chunks they need)."""
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence == os.SEEK_END:
            offset += self._list.size
        if offset < 0:
            raise ValueError("negative seek position")
        if offset != self._hashed:
            self._hasher = None if offset != 0 or self._hashed else self._hasher
        self._pos = offset
        return offset

    def tell(self) -> int:
        """The current position."""
        return self._pos
