"""Packs and chunk lists under gc and fsck: what a local store holds beyond loose objects.

``gc`` (``ops/gc.py``) calls :func:`inventory` to see every packed object and
chunk list, :func:`chunk_closure` so the chunks of every kept file count as
referenced, and, inside its delete phase (the writer guard held
exclusively), :func:`collect_packs`: a pack no kept object is in goes, a pack
whose live share is below ``threshold`` is rewritten with its live objects
(new pack published first, old one deleted after), and with ``repack`` loose
small objects are packed and loose copies of packed objects dropped. Only
packs older than the grace are touched: a pack's mtime is when its objects
were written, and a writer that reuses one of them (dedup) is covered by the
guard, as for loose objects. ``fsck`` calls :func:`check_layout`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, cast

from ..errors import IntegrityError, ObjectNotAvailable
from ..store import bucketpacks, hashing
from ..store.chunks import ChunkedReader, ChunkList
from ..store.lakepacks import PackInfo
from ..store.packs import PackedObject, plan_packs

if TYPE_CHECKING:
    from ..core.base import LakeBase
    from ..core.recovery import Report

#: a pack whose live bytes are less than this share of it is rewritten by gc
REPACK_BELOW = 0.5


@dataclass
class Inventory:
    """What a local store holds in packs and chunk lists (loose objects come from ``iter_objects``)."""

    packed: dict[str, list[PackedObject]] = field(default_factory=dict)  # hash -> every place it sits
    packs: list[PackInfo] = field(default_factory=list)
    chunklists: dict[str, float] = field(default_factory=dict)  # hash -> mtime of its chunk list
    damaged: dict[str, str] = field(default_factory=dict)  # pack id -> why its index cannot be read

    @property
    def hashes(self) -> set[str]:
        """Every object held packed or chunked."""
        return set(self.packed) | set(self.chunklists)


def inventory(lake: LakeBase) -> Inventory:
    """The packs, packed objects and chunk lists of the lake's store (its folder, or its bucket)."""
    inv = Inventory()
    if not lake.store.local:
        inv.packs = bucketpacks.list_packs(lake.store)
        indexes, inv.damaged = bucketpacks.read_indexes(lake.store, inv.packs)
        for index in indexes.values():
            for digest, where in index.items():
                inv.packed.setdefault(digest, []).append(where)
        inv.chunklists = bucketpacks.chunklist_times(lake.store)
        return inv
    shelf = lake.cache.packs
    if os.path.isdir(shelf.folder):
        for digest, where in shelf.entries():
            inv.packed.setdefault(digest, []).append(where)
        inv.packs = shelf.list_packs()
        inv.damaged = dict(shelf.damaged)
    inv.chunklists = {h: mtime for h, _size, mtime in lake.cache.iter_chunklists()}
    return inv


def chunk_closure(lake: LakeBase, files: Iterable[str]) -> set[str]:
    """The chunks of every chunked file among ``files``.

    Raises:
        IntegrityError: a chunk list is damaged (what it keeps alive cannot be known).
    """
    out: set[str] = set()
    for digest in files:
        chunks = chunk_list(lake, digest)
        if chunks is not None:
            out |= chunks.hashes()
    return out


def chunk_list(lake: LakeBase, digest: str) -> ChunkList | None:
    """The checked chunk list of a chunked file in the lake's store (a bucket's own copy, not this machine's).

    Raises:
        IntegrityError: the chunk list is damaged.
    """
    return lake.cache.chunk_list(digest) if lake.store.local else lake.store.read_chunklist(digest)


def delete_chunklist(lake: LakeBase, digest: str) -> None:
    """Remove a chunk list from the lake's store (gc only); a missing one is no error."""
    if lake.store.local:
        with contextlib.suppress(FileNotFoundError):
            lake.cache.delete_chunklist(digest)
    else:
        bucketpacks.delete_chunklist(lake.store, digest)


def _read_packed(lake: LakeBase, digest: str, where: PackedObject | None = None) -> bytes:
    """A packed object's bytes from the lake's store, checked against its hash."""
    if lake.store.local:
        return lake.cache.read_packed(digest)
    assert where is not None
    return bucketpacks.read_object(lake.store, digest, where)


def _delete_pack(lake: LakeBase, pack_id: str) -> None:
    """Remove a pack from the lake's store: its index first, then the pack."""
    if lake.store.local:
        lake.cache.packs.delete_pack(pack_id)
    else:
        bucketpacks.delete_pack(lake.store, pack_id)


def collect_packs(lake: LakeBase, inv: Inventory, referenced: set[str], cutoff: float, dry_run: bool,
                  repack: bool = False, threshold: float = REPACK_BELOW) -> tuple[list[str], int, list[str]]:
    """Delete dead packs and rewrite sparse ones; with ``repack``, pack loose small objects too.

    Call it inside ``lake.collecting()`` (not for a dry run), with ``referenced``
    read inside it and closed over chunk lists.

    Returns:
        (hashes of the packed objects dropped, their bytes, notes).
    """
    members: dict[str, list[tuple[str, PackedObject]]] = {}
    for digest, places in inv.packed.items():
        for where in places:
            members.setdefault(where.pack, []).append((digest, where))
    dropped: list[str] = []
    freed = 0
    notes: list[str] = []
    rewrite: list[PackInfo] = []
    for pack in inv.packs:
        if pack.mtime > cutoff:
            continue  # young: its unreferenced objects may be a writer's that is about to commit
        if not pack.has_index:
            if not dry_run:  # a crash between a pack and its index: nothing ever named it
                _delete_pack(lake, pack.id)
            freed += max(pack.size, 0)
            continue
        if pack.id in inv.damaged:
            continue  # fsck reports it; its objects are not served, and deleting it would hide the damage
        inside = members.get(pack.id, [])
        live = [(h, w) for h, w in inside if h in referenced]
        dead = [(h, w) for h, w in inside if h not in referenced]
        if not live or sum(w.size for _, w in live) < threshold * max(pack.size, 1):
            rewrite.append(pack)
        else:
            continue
        dropped += [h for h, _ in dead]
        freed += sum(w.size for _, w in dead)
    if dry_run:
        return sorted(set(dropped)), freed, notes
    keep: dict[str, PackedObject] = {}
    for pack in rewrite:
        for digest, where in members.get(pack.id, []):
            if digest in referenced and digest not in keep and not _elsewhere(inv, digest, pack.id, rewrite):
                keep[digest] = where
    new = _write_packs(lake, keep)  # the live objects are in their new packs before an old pack goes
    for pack in rewrite:
        _delete_pack(lake, pack.id)
    if rewrite:
        notes.append(f"rewrote {len(rewrite)} packs into {new}")
    if repack:
        notes += _pack_loose(lake, inv, referenced, cutoff)
    return sorted(set(dropped)), freed, notes


def _write_packs(lake: LakeBase, objects: dict[str, PackedObject]) -> int:
    """Write ``objects`` (read from where they sit now, each checked) into new packs of the lake's store; how many packs."""
    if not objects:
        return 0
    if lake.store.local:
        writer = lake.cache.pack_writer(durable=bool(lake.config.get("fsync", True)))
        try:
            for digest in objects:
                writer.add(digest, lake.cache.read_packed(digest))
            return len(writer.finish())
        except BaseException:
            writer.abort()
            raise
    groups = plan_packs([(h, w.size) for h, w in objects.items()])
    live: dict[str, int] = {}
    for where in objects.values():
        live[where.pack] = live.get(where.pack, 0) + 1
    fetched: dict[str, str] = {}  # old pack id -> a local copy: one GET, not one ranged GET per object
    try:
        for pack_id, count in live.items():
            if count >= WHOLE_PACK_GET:
                fetched[pack_id] = lake.cache.new_staging_path(".pack")
                lake.store.get_pack(pack_id, fetched[pack_id])
        for group in groups:
            members = [(h, functools.partial(_read_bucket_object, lake, h, objects[h], fetched.get(objects[h].pack)))
                       for h, _ in group]
            lake.store.put_pack(members, lake.cache.staging_dir())  # pack, then index, both conditional creates
    finally:
        for path in fetched.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return len(groups)


#: a pack with at least this many objects to copy is downloaded whole when gc rewrites it
WHOLE_PACK_GET = 8


def _read_bucket_object(lake: LakeBase, digest: str, where: PackedObject, local_copy: str | None) -> bytes:
    """A packed object of a bucket, from a local copy of its pack when there is one, else one ranged GET; checked."""
    if local_copy is None:
        return bucketpacks.read_object(lake.store, digest, where)
    with open(local_copy, "rb") as f:
        f.seek(where.offset)
        data = f.read(where.size)
    if len(data) != where.size or hashing.hash_bytes(data) != digest:
        raise IntegrityError(f"object {digest[:12]} is corrupt in pack {where.pack[:12]} of the lake's store; "
                             "nothing was rewritten", hint="call lake.fsck()", digest=digest)
    return data


def _elsewhere(inv: Inventory, digest: str, pack_id: str, rewrite: list[PackInfo]) -> bool:
    """True when ``digest`` also sits in a pack that stays (no need to copy it)."""
    going = {p.id for p in rewrite}
    return any(w.pack != pack_id and w.pack not in going for w in inv.packed.get(digest, []))


def _pack_loose(lake: LakeBase, inv: Inventory, referenced: set[str], cutoff: float) -> list[str]:
    """Pack every loose small object, and drop loose copies of objects that are packed or chunked too.

    A lake that hands out symlinks to its objects (``link: symlink``) keeps its loose files.
    """
    from .add import layout_thresholds

    if lake.link == "symlink":
        return ["loose objects were kept: this lake hands out symlinks to them (link: symlink)"]
    pack_at, _ = layout_thresholds(lake)
    if not lake.store.local:
        return _pack_loose_in_bucket(lake, inv, referenced, pack_at, cutoff)
    store = lake.cache
    writer = store.pack_writer(durable=bool(lake.config.get("fsync", True)))
    redundant, moved = [], []
    try:
        for info in list(store.iter_objects()):
            if info.hash in inv.packed or info.hash in inv.chunklists:
                redundant.append(info.hash)
            elif info.size <= pack_at and info.hash in referenced:
                with open(store.path(info.hash), "rb") as f:
                    data = f.read()
                if hashing.hash_bytes(data) != info.hash:
                    continue  # corrupt: left where it is for fsck and verify-on-read to quarantine
                writer.add(info.hash, data)
                moved.append(info.hash)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    for digest in redundant + moved:
        with contextlib.suppress(FileNotFoundError):
            store.delete(digest)
    return [f"packed {len(moved)} loose objects; dropped {len(redundant)} loose copies of packed objects"]


def _pack_loose_in_bucket(lake: LakeBase, inv: Inventory, referenced: set[str], pack_at: int, cutoff: float) -> list[str]:
    """:func:`_pack_loose` on a bucket: small referenced loose objects into new packs, then the loose keys go.

    Only loose objects older than the grace are touched: a young one may be a
    copy another machine uploaded again to keep an object it is reusing alive.
    """
    store = lake.store
    redundant, small = [], []
    for info in store.iter_objects():
        if info.mtime > cutoff:
            continue
        if info.hash in inv.packed or info.hash in inv.chunklists:
            redundant.append(info.hash)
        elif info.size <= pack_at and info.hash in referenced:
            small.append((info.hash, info.size))

    def read(digest: str) -> bytes:
        data = bytes(store.fs.cat_file(store.object_key(digest)))
        if hashing.hash_bytes(data) != digest:
            raise IntegrityError(f"object {digest[:12]} is corrupt in the lake's store", hint="call lake.fsck()",
                                 digest=digest)
        return data

    moved = []
    for group in plan_packs(small):
        members: list[tuple[str, str | Callable[[], bytes]]] = []
        for digest, _size in group:
            try:
                members.append((digest, bytes_of(read(digest))))
            except IntegrityError:
                continue  # corrupt: left where it is for fsck to report
        if members:
            store.put_pack(members, lake.cache.staging_dir())
            moved += [h for h, _ in members]
    for digest in redundant + moved:
        with contextlib.suppress(FileNotFoundError):
            store.delete(digest)
    return [f"packed {len(moved)} loose objects; dropped {len(redundant)} loose copies of packed objects"]


def bytes_of(data: bytes) -> Callable[[], bytes]:
    """A pack member's source that returns ``data``."""
    return lambda: data


def check_layout(lake: LakeBase, report: Report, referenced: set[str], sizes: dict[str, int], read_data: bool,
                 loose: set[str] | None = None) -> set[str]:
    """fsck of packs and chunk lists: damaged indexes, sizes, chunks of every chunked file; returns the hashes held.

    A referenced chunked file whose chunk list is damaged or names a missing
    chunk is reported missing; a packed object whose size is not the catalog's
    is corrupt; ``read_data`` reads and hashes each referenced packed or chunked object.
    ``loose``: the loose objects of the store (fsck's listing; a local store is asked per chunk).
    """
    inv = inventory(lake)
    for pack_id, why in sorted(inv.damaged.items()):
        report.packs_damaged.append(pack_id)
        report.notes.append(f"pack {pack_id[:12]}: {why}")
    held = inv.hashes

    def is_loose(digest: str) -> bool:
        return digest in loose if loose is not None else lake.cache.has_loose(digest)

    lists: dict[str, ChunkList] = {}
    for digest in sorted(referenced & set(inv.chunklists)):
        try:
            chunks: ChunkList | None = chunk_list(lake, digest)
        except IntegrityError:
            chunks = None
        if chunks is None:  # damaged (or deleted meanwhile): what it names cannot be known
            report.missing.append(digest)
            held.discard(digest)
            continue
        lists[digest] = chunks
        if digest in sizes and chunks.size != sizes[digest]:
            report.corrupt.append(digest)
        lacking = [h for h in chunks.hashes() if h not in inv.packed and not is_loose(h)]
        if lacking:
            report.missing.append(digest)
            held.discard(digest)
            report.notes.append(f"object {digest[:12]} lacks {len(lacking)} of its chunks (first {lacking[0][:12]})")
    for digest in sorted(referenced & set(inv.packed)):
        if digest in sizes and all(w.size != sizes[digest] for w in inv.packed[digest]):
            report.corrupt.append(digest)
    if read_data:
        for digest in sorted((referenced & held) - set(report.corrupt)):
            if is_loose(digest):
                continue  # fsck reads loose objects itself
            try:
                with _open_layout(lake, inv, digest, lists.get(digest)) as f:
                    actual, size = hashing.hash_stream(f)
            except (IntegrityError, ObjectNotAvailable):
                report.corrupt.append(digest)
                continue
            report.bytes += size
            if actual != digest:
                report.corrupt.append(digest)
    return held


def _open_layout(lake: LakeBase, inv: Inventory, digest: str, chunks: ChunkList | None) -> BinaryIO:
    """A reader over a packed object or a chunked file of the lake's store, changing nothing (fsck reads)."""
    if lake.store.local:
        return cast(BinaryIO, lake.cache.open_any(digest))

    def read(h: str) -> bytes:  # a chunk, or the object: from a pack, else loose; checked
        for where in inv.packed.get(h, []):
            with contextlib.suppress(FileNotFoundError):
                return bucketpacks.read_object(lake.store, h, where)
        try:
            data = bytes(lake.store.fs.cat_file(lake.store.object_key(h)))
        except FileNotFoundError:
            raise ObjectNotAvailable(f"object {h[:12]} is missing from the lake's store", digest=h) from None
        if hashing.hash_bytes(data) != h:
            raise IntegrityError(f"object {h[:12]} is corrupt in the lake's store", digest=h, hint="call lake.fsck()")
        return data

    if chunks is None:
        return io.BytesIO(read(digest))
    return cast(BinaryIO, io.BufferedReader(ChunkedReader(digest, chunks, read), hashing.CHUNK))
