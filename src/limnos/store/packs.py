"""Packs: many small objects in one remote file, so pushing 10k files is a few requests.

On a remote, ``packs/<id>.pack`` holds objects back to back and
``packs/<id>.idx`` lists ``[hash, offset, size]`` for each. The pack is
uploaded first and its index last, so an index only ever names a complete
pack; a push killed in between leaves a pack without an index, which is
ignored (and simply sent again). ``<id>`` is the BLAKE3 hash of the pack's
bytes, so a pack, like an object, is never rewritten.

Reads check loose objects first (``objects/``), then the packs: one object
is a ranged read; many objects of one pack download the whole pack once.
Every object taken out of a pack is hashed before it is kept.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import blake3

from ..errors import IntegrityError, RemoteError
from . import hashing

PACKS = "packs"
PACK_MAX = 64 << 20  # as Oxen and Xet: large enough to amortize requests, small enough to retry
PACKABLE = 1 << 20  # objects up to this size go into packs; bigger ones travel alone
FORMAT = 1


@dataclass(frozen=True)
class PackedObject:
    """Where one object sits inside a pack."""

    pack: str  # the pack id
    offset: int
    size: int


def plan_packs(objects: Sequence[tuple[str, int]], pack_max: int = PACK_MAX) -> list[list[tuple[str, int]]]:
    """Group (hash, size) pairs into packs of at most ``pack_max`` bytes, in the given order."""
    packs: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    used = 0
    for digest, size in objects:
        if current and used + size > pack_max:
            packs.append(current)
            current, used = [], 0
        current.append((digest, size))
        used += size
    if current:
        packs.append(current)
    return packs


def build_pack(members: Sequence[tuple[str, str | Callable[[], bytes]]], folder: str) -> tuple[str, str, bytes]:
    """Write (hash, local path or bytes source) members into one pack file; returns (pack id, pack path, index bytes).

    A member's source is a local file, or a function returning its bytes (a packed object of a local store).
    """
    fd, path = tempfile.mkstemp(dir=folder, prefix="pack-")
    entries = []
    hasher = blake3.blake3()
    offset = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for digest, src in members:
                if callable(src):
                    data = src()
                else:
                    with open(src, "rb") as f:
                        data = f.read()
                out.write(data)
                hasher.update(data)
                entries.append([digest, offset, len(data)])
                offset += len(data)
    except BaseException:
        os.unlink(path)
        raise
    index = json.dumps({"format": FORMAT, "objects": entries}, separators=(",", ":")).encode()
    return hasher.hexdigest(), path, index


def parse_index(pack_id: str, data: bytes, pack_size: int | None = None, key: str | None = None) -> dict[str, PackedObject]:
    """hash -> place, from the bytes of a pack's index, every entry checked.

    An index comes from a remote, which is untrusted input: each entry must be
    ``[hash, offset, size]`` with a real object hash and ints that stay inside
    the pack (``pack_size``, when the listing gave it).

    Args:
        pack_id: the pack the index describes.
        data: the index's bytes.
        pack_size: the pack's size in bytes, when known.
        key: where the index was read from (its remote key), for messages.

    Raises:
        IntegrityError: the index is not what limnos writes; the message names ``key``.
        RemoteError: the index has a newer format than this limnos reads.
    """
    where = key or f"pack index {pack_id}"

    def bad(why: str) -> IntegrityError:
        return IntegrityError(f"pack index {where} is damaged or crafted: {why}; nothing was read from its pack. "
                              "Push the objects again from a machine that has them, then delete that index",
                              digest=pack_id)

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON
        raise bad(f"it is not JSON ({type(exc).__name__})") from None
    if type(doc) is not dict:
        raise bad(f"it is a JSON {type(doc).__name__}, not an object")
    fmt = doc.get("format", 1)
    if type(fmt) is not int or fmt < 1:
        raise bad(f"its format is {fmt!r}")
    if fmt > FORMAT:
        raise RemoteError(f"pack index {where} has format {fmt}, newer than this limnos reads; upgrade limnos")
    entries = doc.get("objects")
    if type(entries) is not list:
        raise bad("it has no list of objects")
    limit = pack_size if pack_size is not None else 2**63
    out: dict[str, PackedObject] = {}
    for n, entry in enumerate(entries):
        if type(entry) is not list or len(entry) != 3:
            raise bad(f"entry {n} is not [hash, offset, size]")
        digest, offset, size = entry
        if not hashing.is_hash(digest):
            raise bad(f"entry {n} names {_short(digest)}, which is not an object hash")
        if type(offset) is not int or type(size) is not int or offset < 0 or size < 0 or offset + size > limit:
            raise bad(f"entry {n} places object {digest[:12]} at {_short(offset)}+{_short(size)}, "
                      f"outside the pack's {limit} bytes")
        out[digest] = PackedObject(pack_id, offset, size)
    return out


def _short(value: object) -> str:
    """``repr(value)``, cut to 40 characters: enough to recognise, never a wall of text from a crafted file."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def split_pack(pack_path: str, wanted: dict[str, PackedObject], emit: Callable[[str, bytes], object]) -> list[str]:
    """Call ``emit(hash, bytes)`` for each wanted object whose bytes hash right; return the bad ones."""
    bad = []
    with open(pack_path, "rb") as f:
        for digest, where in sorted(wanted.items(), key=lambda kv: kv[1].offset):
            f.seek(where.offset)
            data = f.read(where.size)
            if len(data) != where.size or hashing.hash_bytes(data) != digest:
                bad.append(digest)
                continue
            emit(digest, data)
    return bad
