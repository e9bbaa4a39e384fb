"""Chunked files in push and pull: only the chunks the other side lacks travel.

``ops/sync.py`` calls these around its object transfers. A push sends the
chunks of a chunked file that the remote lacks (in packs, like any small
object), then the file's chunk list, so a remote never names a chunk it was
not sent. A pull reads the remote's chunk list (untrusted input:
:func:`~limnos.store.chunks.parse_chunklist` checks every field), fetches the
chunks this machine lacks, packs them, puts the file together once to check
its whole BLAKE3, and only then writes the chunk list here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from ..errors import IntegrityError, LimnosError
from ..store import LocalObjectStore, ObjectStore, hashing
from ..store.chunks import ChunkedReader, ChunkList
from ..store.lakepacks import PackWriter
from ..store.transfer import TransferReport


def source_of(cache: LocalObjectStore, digest: str) -> str | Callable[[], bytes]:
    """What a pack member is read from: the loose file, else the packed bytes (verified when read)."""
    if cache.has_loose(digest):
        return cache.path(digest)
    return functools.partial(cache.read_packed, digest)


def expand_push(cache: LocalObjectStore, todo: Sequence[str], present: set[str]) -> tuple[dict[str, ChunkList], list[str]]:
    """Split the objects to push into chunked files (with their chunk lists) and the objects to send.

    The chunks of each chunked file that ``present`` (the remote's listing) lacks join the objects to send.
    """
    chunked: dict[str, ChunkList] = {}
    rest: list[str] = []
    for digest in todo:
        chunks = cache.chunk_list(digest)
        if chunks is None:
            rest.append(digest)
        else:
            chunked[digest] = chunks
    needed = set().union(*(c.hashes() for c in chunked.values())) - present - set(rest) if chunked else set()
    return chunked, rest + sorted(needed)


def finish_push(target: ObjectStore, chunked: dict[str, ChunkList], report: TransferReport) -> None:
    """Upload the chunk lists once their chunks are sent (none when any transfer failed)."""
    if report.failed or not chunked:
        return
    for digest, chunks in sorted(chunked.items()):
        try:
            target.put_chunklist(digest, chunks)
            report.bytes += len(chunks.to_bytes())
        except LimnosError as exc:
            report.failed.append(f"{digest[:12]}: {exc}")


def expand_pull(cache: LocalObjectStore, source: ObjectStore, todo: Sequence[str],
                report: TransferReport) -> tuple[dict[str, ChunkList], list[str], set[str]]:
    """Read the remote's chunk lists for the files wanted; return them, the objects to fetch, and which are chunks.

    A damaged or crafted chunk list fails that file alone (in ``report.failed``).
    """
    if not todo:
        return {}, [], set()
    remote_lists = source.list_chunklists()
    lists: dict[str, ChunkList] = {}
    rest: list[str] = []
    for digest in todo:
        if digest not in remote_lists:
            rest.append(digest)
            continue
        try:
            chunks = source.read_chunklist(digest)
        except IntegrityError as exc:
            report.failed.append(f"{digest[:12]}: {exc}")
            continue
        if chunks is None:
            rest.append(digest)
        else:
            lists[digest] = chunks
    wanted = set().union(*(c.hashes() for c in lists.values())) if lists else set()
    needed = sorted(h for h in wanted if not cache.has(h))
    return lists, rest + [h for h in needed if h not in rest], set(needed)


def finish_pull(cache: LocalObjectStore, writer: PackWriter, lists: dict[str, ChunkList], report: TransferReport) -> None:
    """Publish the fetched chunks, check each file's whole hash, then write its chunk list here."""
    writer.finish()
    for digest, chunks in sorted(lists.items()):
        if any(not cache.has(h) for h in chunks.hashes()):
            report.failed.append(f"{digest[:12]}: some of its chunks could not be fetched")
            continue
        whole = ChunkedReader(digest, chunks, cache.read_chunk)
        try:
            with whole:
                hashing.hash_stream(whole)  # type: ignore[arg-type]  # its end of file runs the whole-file check
        except IntegrityError as exc:
            report.failed.append(f"{digest[:12]}: {exc}")
            continue
        cache.write_chunklist(digest, chunks, durable=writer.durable)
