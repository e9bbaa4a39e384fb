"""BLAKE3 content hashing, streamed in chunks so no file is read whole.

Memory is bounded whatever the file's size: a big file is read into one
reused buffer (``BIG_CHUNK``), never mapped whole, because a mapping's
pages count in the process's resident set (a 1 GB add once peaked at 1 GB
RSS). blake3 hashes each buffer on all cores, so this is as fast as mapping.

``stats`` counts how many files were read for hashing. Tests use it to prove
that re-adding unchanged files costs a ``stat`` and no read.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import IO, TypeGuard

import blake3

from ..errors import IntegrityError

CHUNK = 1 << 20  # 1 MiB: large enough for blake3's SIMD, small enough for memory
# Above this size blake3's own threads pay for themselves.
_MULTITHREAD_AT = 64 << 20
#: The read buffer for big files: big enough for blake3 to split across cores, small next to 200 MB.
BIG_CHUNK = 4 << 20


@dataclass
class HashStats:
    """How many files (and bytes) were read for hashing, since the process began."""

    files_hashed: int = 0
    bytes_hashed: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def count(self, nbytes: int) -> None:
        """Count one file of ``nbytes`` bytes read for hashing."""
        with self._lock:
            self.files_hashed += 1
            self.bytes_hashed += nbytes


stats = HashStats()


def _hasher(size_hint: int = 0) -> blake3.blake3:
    if size_hint >= _MULTITHREAD_AT:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


def hash_bytes(data: bytes) -> str:
    """The BLAKE3 hex digest of ``data`` (not counted in :data:`stats`)."""
    return blake3.blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Return (hex digest, size) of a local file, read in chunks (big files: on all cores).

    Memory stays bounded (one buffer of at most :data:`BIG_CHUNK`) whatever the size.
    """
    size = os.stat(path).st_size
    hasher = _hasher(size)
    if size >= _MULTITHREAD_AT:
        # Unbuffered reads straight into our buffer; blake3 releases the GIL while it hashes.
        with open(path, "rb", buffering=0) as raw:
            return hash_stream(raw, hasher, BIG_CHUNK)
    with open(path, "rb") as src:
        if size <= CHUNK:  # small files (the 10k-files case): one read, no buffer to allocate
            data = src.read()
            hasher.update(data)
            stats.count(len(data))
            return hasher.hexdigest(), len(data)
        return hash_stream(src, hasher)


def hash_stream(stream: IO[bytes], hasher: blake3.blake3 | None = None, chunk: int = CHUNK) -> tuple[str, int]:
    """Hash a readable binary stream to its end, one reused buffer of ``chunk`` bytes at a time."""
    hasher = hasher or blake3.blake3()
    total = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is None:  # a stream without readinto: bounded reads, one at a time
        while part := stream.read(chunk):
            hasher.update(part)
            total += len(part)
    else:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := readinto(buf):
            hasher.update(view[:n])
            total += n
    stats.count(total)
    return hasher.hexdigest(), total


def is_hash(value: object) -> TypeGuard[str]:
    """True when ``value`` is an object hash: a str of exactly 64 lowercase hex digits."""
    # strip() removes every hex digit from both ends: only a string made of nothing else ends up empty.
    return type(value) is str and len(value) == 64 and not value.strip("0123456789abcdef")


def check_hash(value: object) -> str:
    """``value`` if it is an object hash; the one gate between a hash and a path or key in a store.

    Raises:
        IntegrityError: it is anything else (a crafted ``00/<absolute path>``, a short or uppercase
            string, None...): the records file, index or catalog row that gave it is crafted or damaged.
    """
    if is_hash(value):
        return value
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise IntegrityError(f"{shown} is not an object hash (64 lowercase hex digits); the records file, pack index or "
                         "catalog row that names it is crafted or damaged", hint="call lake.fsck() to find it",
                         digest=value if isinstance(value, str) else None)
