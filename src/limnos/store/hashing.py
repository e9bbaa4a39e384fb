"""BLAKE3 content hashing, streamed in chunks so no file is read whole.

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
    """Return (hex digest, size) of a local file, read in chunks (big files: mapped, on all cores)."""
    size = os.stat(path).st_size
    hasher = _hasher(size)
    if size >= _MULTITHREAD_AT:
        hasher.update_mmap(path)  # releases the GIL; the OS pages the file in, never all at once
        stats.count(size)
        return hasher.hexdigest(), size
    with open(path, "rb") as src:
        if size <= CHUNK:  # small files (the 10k-files case): one read, no buffer to allocate
            data = src.read()
            hasher.update(data)
            stats.count(len(data))
            return hasher.hexdigest(), len(data)
        return hash_stream(src, hasher)


def hash_stream(stream: IO[bytes], hasher: blake3.blake3 | None = None) -> tuple[str, int]:
    """Hash a readable binary stream to its end, one reused buffer at a time."""
    hasher = hasher or blake3.blake3()
    total = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            chunk = view[:n] if n else b""
        else:
            chunk = stream.read(CHUNK)
            n = len(chunk)
        if not n:
            break
        hasher.update(chunk)
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
