"""Packs in a lake's store on a bucket: listing, cached indexes, ranged reads, deletion.

A lake whose store is a bucket (``s3://``, a team lake with its shared log,
any fsspec filesystem that is not this machine's folder) keeps the small
objects of one add in one pack, as a local store does::

    packs/<id>.pack    objects back to back; <id> names these bytes (store/lakepacks.py)
    packs/<id>.idx     [hash, offset, size] per object (store/packs.py's format)

Both are written with conditional creates (``If-None-Match: *``), the pack
first and its index last, so an index only ever names a complete pack (see
:meth:`~limnos.store.objects.ObjectStore.put_pack`). A reader lists
``packs/`` once, reads only the indexes it has not seen, and keeps each one
on this machine (``index_cache``, beside the lake's local cache): an index
never changes once written, so the next process reads none of them again. Every
index, from the bucket or from that copy, is parsed as untrusted input
(:func:`~limnos.store.packs.parse_index`). An object is one ranged GET of its
pack, hashed before it is used.

gc rewrites sparse packs and deletes dead ones (``ops/repack.py``): the index
goes first, then the pack, so a reader that still holds the old index finds the
pack gone, lists the indexes again and finds the object's new place.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import IntegrityError, RemoteError, redact_url
from . import hashing
from .chunks import CHUNKLISTS, chunklist_relpath
from .lakepacks import PackInfo
from .packs import PACKS, PackedObject, parse_index

if TYPE_CHECKING:
    from .objects import ObjectStore


def info_mtime(info: dict[str, Any]) -> float:
    """The modification time (seconds) in a listing's entry; 0.0 when the backend does not say."""
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0.0
    return float(mtime.timestamp()) if hasattr(mtime, "timestamp") else float(mtime)


def list_packs(store: ObjectStore) -> list[PackInfo]:
    """Every pack of the store's ``packs/`` from one listing (an index without its pack shows size -1).

    Raises:
        RemoteError: the store cannot be listed.
    """
    try:
        found = store.fs.find(store._key(PACKS), maxdepth=1, detail=True)
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise store._error("list", exc) from None
    packs: dict[str, tuple[int, float]] = {}
    indexed: set[str] = set()
    for path, info in found.items():
        stem, _, suffix = str(path).rsplit("/", 1)[-1].rpartition(".")
        if not hashing.is_hash(stem):
            continue  # a temporary upload or a stranger's file
        if suffix == "pack":
            packs[stem] = (int(info.get("size") or info.get("Size") or 0), info_mtime(info))
        elif suffix == "idx":
            indexed.add(stem)
    return sorted((PackInfo(i, *packs.get(i, (-1, 0.0)), has_index=i in indexed) for i in set(packs) | indexed),
                  key=lambda p: p.id)


def _cache_path(store: ObjectStore, pack_id: str) -> str | None:
    folder = getattr(store, "index_cache", None)
    return os.path.join(folder, f"{hashing.check_hash(pack_id)}.idx") if folder else None


def fetch_indexes(store: ObjectStore, pack_ids: Iterable[str]) -> dict[str, bytes]:
    """The bytes of the indexes of ``pack_ids``: from this machine's copy when there is one, else the bucket.

    Indexes read from the bucket are copied to ``store.index_cache`` (when set).
    The bytes are not checked here: callers parse them with ``parse_index``.
    An index that is gone (gc deleted it meanwhile) is left out.

    Raises:
        RemoteError: the bucket cannot be read.
    """
    out: dict[str, bytes] = {}
    todo = []
    for pack_id in pack_ids:
        path = _cache_path(store, pack_id)
        try:
            if path is not None:
                with open(path, "rb") as f:
                    out[pack_id] = f.read()
                continue
        except FileNotFoundError:
            pass
        todo.append(pack_id)
    if not todo:
        return out
    keys = {store.pack_key(i, "idx"): i for i in todo}
    try:
        got = store.fs.cat(list(keys), on_error="return")
    except Exception as exc:
        raise store._error("read pack indexes from", exc) from None
    if len(keys) == 1 and not isinstance(got, dict):
        got = {next(iter(keys)): got}
    for key, data in got.items():
        pack_id = keys.get(key) or keys.get(store.fs._strip_protocol(key)) or str(key).rsplit("/", 1)[-1][:-4]
        if isinstance(data, FileNotFoundError):
            continue
        if isinstance(data, BaseException):
            raise store._error("read pack indexes from", data)
        out[pack_id] = bytes(data)
        path = _cache_path(store, pack_id)
        if path is not None:
            with contextlib.suppress(OSError):  # a full disk: the copy is only a cache
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
                with open(tmp, "wb") as f:
                    f.write(out[pack_id])
                os.replace(tmp, path)
    return out


def forget_index(store: ObjectStore, pack_id: str) -> None:
    """Drop this machine's copy of a pack's index, in memory and on disk (the pack was deleted)."""
    store._packs.pop(pack_id, None)
    path = _cache_path(store, pack_id)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def read_indexes(store: ObjectStore, packs: list[PackInfo]) -> tuple[dict[str, dict[str, PackedObject]], dict[str, str]]:
    """(pack id -> its checked index, pack id -> why its index is damaged) for every indexed pack listed.

    An index whose pack is missing counts as damaged; so does one that does not parse.

    Raises:
        RemoteError: the bucket cannot be read.
    """
    indexed = [p for p in packs if p.has_index]
    raw = fetch_indexes(store, [p.id for p in indexed])
    good: dict[str, dict[str, PackedObject]] = {}
    damaged: dict[str, str] = {}
    for pack in indexed:
        key = store._scrub(redact_url(store.pack_key(pack.id, "idx")))
        if pack.id not in raw:
            continue  # deleted between the listing and the read
        if pack.size < 0:
            damaged[pack.id] = f"pack index {key} names a pack that is missing"
            continue
        try:
            good[pack.id] = parse_index(pack.id, raw[pack.id], pack.size, key)
        except (IntegrityError, RemoteError) as exc:
            damaged[pack.id] = str(exc)
            forget_index(store, pack.id)  # a damaged copy here is read again from the bucket next time
    return good, damaged


def read_object(store: ObjectStore, digest: str, where: PackedObject) -> bytes:
    """The bytes of a packed object: one ranged read, hashed.

    Raises:
        FileNotFoundError: the pack is gone (gc rewrote it): look the object up again.
        IntegrityError: the bytes are short or do not hash to ``digest``.
        RemoteError: the bucket cannot be read.
    """
    key = store.pack_key(where.pack)
    try:
        data = bytes(store.fs.cat_file(key, start=where.offset, end=where.offset + where.size))
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise store._error(f"read object {digest[:12]} from pack {redact_url(key)} of", exc) from None
    if len(data) != where.size or hashing.hash_bytes(data) != digest:
        raise IntegrityError(f"object {digest[:12]} is corrupt in pack {store._scrub(redact_url(key))}",
                             hint="call lake.fsck()", digest=digest, url=redact_url(store.url))
    return data


def delete_pack(store: ObjectStore, pack_id: str) -> None:
    """Delete a pack from the bucket: its index first, then the pack (gc only, under the writer guard).

    Raises:
        RemoteError: the bucket refused (a missing file is no error).
    """
    for suffix in ("idx", "pack"):
        try:
            store.fs.rm_file(store.pack_key(pack_id, suffix))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise store._error(f"delete pack {pack_id[:12]} from", exc) from None
        if suffix == "idx":
            forget_index(store, pack_id)


def chunklist_times(store: ObjectStore) -> dict[str, float]:
    """hash -> modification time of every chunk list in the store, from one listing.

    Raises:
        RemoteError: the store cannot be listed.
    """
    base = store._key(CHUNKLISTS)
    try:
        found = store.fs.find(base, detail=True)
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise store._error("list", exc) from None
    out = {}
    for path, info in found.items():
        rel = str(path)[len(base):].strip("/").split("/")
        if len(rel) == 2 and len(rel[0]) == 2 and hashing.is_hash(rel[0] + rel[1]):
            out[rel[0] + rel[1]] = info_mtime(info)
    return out


def delete_chunklist(store: ObjectStore, digest: str) -> None:
    """Delete a chunk list from the bucket (gc only); a missing one is no error."""
    try:
        store.fs.rm_file(store._key(chunklist_relpath(digest)))
    except FileNotFoundError:
        pass
    except Exception as exc:
        raise store._error(f"delete chunk list {digest[:12]} from", exc) from None
