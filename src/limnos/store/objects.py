"""Content-addressed objects and records files over any fsspec filesystem.

Layout under a store root::

    objects/<h[:2]>/<h[2:]>     immutable bytes, named by their BLAKE3 hash
    records/<commit-id>.jsonl   one append-only file per catalog commit
    tmp/                        staging (local stores only)
    quarantine/<hash>           objects found corrupt, moved aside (local stores only)

``ObjectStore`` works on any fsspec filesystem (S3, GCS, Azure, SSH, memory,
a folder). ``LocalObjectStore`` (store/local.py) keeps the same contract with
``os`` calls on the hot paths. Rules, from DESIGN.md: never stream into a
final key; upload a complete, hashed local file whole; never overwrite an
existing object.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import fsspec

from ..errors import IntegrityError, ObjectNotAvailable, RemoteError, redact_url, require_protocol
from . import bucketpacks, hashing
from .chunks import CHUNKLISTS, ChunkList, chunklist_relpath, parse_chunklist
from .packs import PACKS, PackedObject, build_pack, parse_index
from .transfer import BLOCKING, ON_LOOP, PART_SIZE, PARTS_IN_FLIGHT, IOMode, run_blocking

OBJECTS = "objects"
RECORDS = "records"
#: quarantine/<hash>: corrupt local copies moved aside by a read; records/quarantine/: records that can never be applied
QUARANTINE = "quarantine"
VOID = ".void"  # records/<id>.void: that commit was abandoned; never apply its records file
TMP = "tmp"
CONFIG = "limnos.yaml"
SMALL_FILE = 1 << 20  # read whole, hash, then write only if new
#: Up to this size an upload to S3 is one PUT streamed from the file (one request; S3 takes up to
#: 5 GiB in one PUT); above, multipart, so a failure retries a part and not gigabytes.
STREAMED_PUT_MAX = 1 << 30
_MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload
# Object stores whose PUT is atomic: a failed upload never leaves a partial key.
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}
_SECRET_OPTION = re.compile(r"secret|password|token|key|credential|sas", re.IGNORECASE)


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing sees it."""

    hash: str
    size: int
    mtime: float  # seconds since the epoch; 0.0 when the backend does not say


def object_relpath(digest: str) -> str:
    """Where an object sits under a store's root: ``objects/<h[:2]>/<h[2:]>``.

    Raises:
        IntegrityError: ``digest`` is not an object hash. Every object path and key is built
            here (or in ``LocalObjectStore.path``, with the same check), so a crafted hash such
            as ``00/<absolute path>`` can never name a file outside ``objects/``.
    """
    digest = hashing.check_hash(digest)
    return f"{OBJECTS}/{digest[:2]}/{digest[2:]}"


def secret_values(options: dict[str, Any]) -> list[str]:
    """Values of storage options that look like credentials, to scrub from messages."""
    out = []
    for key, value in options.items():
        if isinstance(value, dict):
            out += secret_values(value)
        elif isinstance(value, str) and len(value) >= 4 and _SECRET_OPTION.search(key):
            out.append(value)
    return out


class ObjectStore:
    """Objects and records on any fsspec filesystem.

    This class does the work for every backend; :class:`~limnos.store.local.LocalObjectStore`
    overrides the hot paths with ``os`` calls. Callers use these methods and
    never need to know which one they hold.
    """

    #: True when objects are files in a local folder (a local lake's own store).
    local = False
    #: True when the server is known to refuse a conditional create of an existing key (probed: a team lake).
    exclusive_creates = False
    #: Uploads to S3 up to this size are one streamed PUT, bigger ones multipart (see STREAMED_PUT_MAX).
    streamed_put_max = STREAMED_PUT_MAX

    def __init__(self, url: str, fs: fsspec.AbstractFileSystem | None = None, **storage_options: Any) -> None:
        self.url = url
        self._secrets = secret_values(storage_options) + _url_secrets(url)
        if fs is None:
            # Listings must be fresh: other machines write to the same store.
            storage_options.setdefault("use_listings_cache", False)
            if url.startswith(("s3://", "s3a://")):
                # limnos verifies every object by its BLAKE3 hash; botocore's own CRC
                # checks cost CPU per request and misfire on ranged reads of packs.
                config = dict(storage_options.get("config_kwargs") or {})
                config.setdefault("request_checksum_calculation", "when_required")
                config.setdefault("response_checksum_validation", "when_required")
                # Over plain http botocore SHA-256s every request body to sign it, on the event loop:
                # seconds of CPU for a 1 GB push. Every object is named by its BLAKE3 hash and checked
                # when read, and records carry their own checksum, so the signature need not cover bodies.
                config.setdefault("s3", {"payload_signing_enabled": False})
                storage_options["config_kwargs"] = config
            require_protocol(url)  # "install limnos[gcs]", not fsspec's "Please install gcsfs"
            try:
                fs, root = fsspec.core.url_to_fs(url, **storage_options)
            except (ImportError, ValueError) as exc:
                raise RemoteError(self._scrub(f"cannot use {redact_url(url)}: {exc}")) from None
        else:
            root = fs._strip_protocol(url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = str(root).rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
        self.atomic_put = any(p in _ATOMIC_PUT for p in protocols)
        self.is_s3 = any(p in ("s3", "s3a") for p in protocols)
        self._packs: dict[str, dict[str, PackedObject]] = {}  # pack id -> its index (immutable)
        #: a folder on this machine that keeps copies of this store's pack indexes (see bucketpacks.py), or None
        self.index_cache: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.url)!r})"

    # -- errors --------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, action: str, exc: BaseException) -> RemoteError:
        """One readable line, never with a credential in it."""
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = ""
        denied = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")
        if isinstance(exc, PermissionError) or any(word in detail for word in denied):
            hint = "; check the credentials (environment, ~/.aws, or the remote's options)"
        elif isinstance(exc, FileNotFoundError) or "NoSuchBucket" in detail:
            hint = "; check that the bucket or folder exists"
        return RemoteError(self._scrub(f"cannot {action} {redact_url(self.url)}: {detail}{hint}"))

    # -- paths ---------------------------------------------------------------
    def _key(self, relpath: str) -> str:
        return f"{self.root}/{relpath}"

    def object_key(self, digest: str) -> str:
        """Where the object ``digest`` lives: its key on the filesystem (a local path for a folder)."""
        return self._key(object_relpath(digest))

    # -- objects -------------------------------------------------------------
    def has(self, digest: str) -> bool:
        """True when the object is stored loose (packed objects are found through :meth:`pack_index`).

        Raises:
            RemoteError: the store cannot be read.
        """
        key = self.object_key(digest)
        try:
            return bool(self.fs.exists(key))
        except Exception as exc:
            raise self._error("read", exc) from None

    def size(self, digest: str) -> int:
        """The size in bytes of a loose object."""
        return int(self.fs.size(self.object_key(digest)))

    def list_hashes(self) -> dict[str, int]:
        """hash -> size of every object, loose, packed or chunked, from listings (no request per object).

        A chunked file's size here is its chunk list's, not the file's.
        """
        packed = {h: p.size for h, p in self.pack_index(refresh=True).items()}
        return {**self.list_chunklists(), **packed, **{o.hash: o.size for o in self.iter_objects()}}

    # -- chunked files (see chunks.py) ----------------------------------------------
    def list_chunklists(self) -> dict[str, int]:
        """hash -> chunk list size of every chunked file, from one listing."""
        base = self._key(CHUNKLISTS)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        except Exception as exc:
            raise self._error("list", exc) from None
        out = {}
        for path, info in found.items():
            rel = str(path)[len(base):].strip("/").split("/")
            if len(rel) == 2 and len(rel[0]) == 2 and hashing.is_hash(rel[0] + rel[1]):
                out[rel[0] + rel[1]] = int(info.get("size") or 0)
        return out

    def read_chunklist(self, digest: str) -> ChunkList | None:
        """The checked chunk list of a chunked file in this store, or None (it is untrusted input: every field is checked).

        Raises:
            IntegrityError: the chunk list is damaged or crafted.
            RemoteError: the store cannot be read.
        """
        key = self._key(chunklist_relpath(digest))
        try:
            data = bytes(self.fs.cat_file(key))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error("read", exc) from None
        return parse_chunklist(digest, data, self._scrub(redact_url(key)))

    def put_chunklist(self, digest: str, chunks: ChunkList) -> None:
        """Upload a chunk list whole (after every chunk it names)."""
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(chunks.to_bytes())
        try:
            self.put(tmp.name, self._key(chunklist_relpath(digest)), create=True)
        except RemoteError:
            raise
        except Exception as exc:
            raise self._error(f"write chunk list {digest[:12]} to", exc) from None
        finally:
            os.unlink(tmp.name)

    # -- packs (see packs.py) -------------------------------------------------
    def pack_key(self, pack_id: str, suffix: str = "pack") -> str:
        """The key of a pack (``suffix="pack"``) or of its index (``suffix="idx"``)."""
        return self._key(f"{PACKS}/{pack_id}.{suffix}")

    def pack_index(self, refresh: bool = False) -> dict[str, PackedObject]:
        """hash -> where it sits, for every object in a pack whose index exists.

        Indexes are read once and kept (a pack never changes); ``refresh`` lists
        the store again for packs pushed since.

        Raises:
            RemoteError: the store cannot be listed or read.
        """
        if refresh or not self._packs:
            try:
                found = self.fs.find(self._key(PACKS), maxdepth=1, detail=True)
            except FileNotFoundError:
                found = {}
            except Exception as exc:
                raise self._error("list", exc) from None
            sizes: dict[str, int] = {}
            ids: list[str] = []
            for path, info in found.items():
                name = str(path).rsplit("/", 1)[-1]
                stem, _, suffix = name.rpartition(".")
                if not hashing.is_hash(stem):
                    continue  # not a pack of limnos (a temporary upload, a stranger's file)
                if suffix == "pack":
                    sizes[stem] = int(info.get("size") or info.get("Size") or 0)
                elif suffix == "idx":
                    ids.append(stem)
            for gone in [i for i in self._packs if i not in ids]:  # gc rewrote it: its objects sit elsewhere now
                bucketpacks.forget_index(self, gone)
            new = [i for i in ids if i not in self._packs]
            if new:
                by_id = bucketpacks.fetch_indexes(self, new)  # this machine's copies first, then the store
                for pack_id in [i for i in new if i in by_id]:
                    key = self._scrub(redact_url(self.pack_key(pack_id, "idx")))
                    if pack_id not in sizes:
                        # The pack is uploaded before its index, so an index without its pack is damage.
                        raise IntegrityError(f"pack index {key} names a pack that is missing from "
                                             f"{redact_url(self.url)}; push the objects again from a machine that "
                                             "has them, then delete that index", digest=pack_id, url=redact_url(self.url))
                    self._packs[pack_id] = parse_index(pack_id, bytes(by_id[pack_id]), sizes[pack_id], key)
        merged: dict[str, PackedObject] = {}
        for index in list(self._packs.values()):
            merged.update(index)
        return merged

    def put_pack(self, members: Sequence[tuple[str, str | Callable[[], bytes]]], staging_dir: str) -> int:
        """Upload (hash, local path or a function returning the bytes) members as one pack, then its index.

        Returns the bytes sent.
        """
        pack_id, path, index = build_pack(members, staging_dir)
        try:
            size = os.path.getsize(path)
            self.put(path, self.pack_key(pack_id), create=True)
            with open(path, "wb") as f:  # reuse the file for the index: the pack is sent
                f.write(index)
            self.put(path, self.pack_key(pack_id, "idx"), create=True)
        finally:
            os.unlink(path)
        self._packs[pack_id] = parse_index(pack_id, index)
        return size

    async def upload(self, local_path: str, key: str, io: IOMode, create: bool = False) -> bool:
        """Upload a whole local file to ``key`` (the one upload path; :meth:`put` and :meth:`put_async` wrap it).

        A store whose PUT is atomic gets the file directly; any other gets a
        temporary name first, then a rename, so a reader never sees a partial key.
        Returns False when ``create`` is set and an existing key was kept instead.
        """
        if self.atomic_put:
            try:
                size = os.path.getsize(local_path)
                if self.is_s3 and size <= self.streamed_put_max:
                    await self._put_streamed(local_path, key, io, create)
                else:
                    await io.put_file(self.fs, local_path, key, **self._create_kwargs(create), **self._upload_kwargs(size))
            except OSError as exc:
                if _lost_race(exc):
                    return False
                raise
            return True
        return await io.offload(self._put_via_temp, local_path, key, create)

    async def _put_streamed(self, local_path: str, key: str, io: IOMode, create: bool) -> None:
        """One PUT whose body streams from the local file: no copy of it in memory, one request.

        s3fs's ``put_file`` reads a file below two parts whole, and a bigger one in parts;
        either way the bytes sit in memory. The HTTP client reads an open file 64 KiB at a
        time instead (and rewinds it for a retry), and with payload signing off nothing
        else reads it. Atomic as any PUT: a failed one leaves no key.

        Raises:
            OSError: the server refused (a lost ``create`` race is ``FileExistsError`` or a 412).
        """
        bucket, path, _ = self.fs.split_path(key)
        match = {"IfNoneMatch": "*"} if create else {}
        with open(local_path, "rb") as body:
            await io.call_s3(self.fs, "put_object", Bucket=bucket, Key=path, Body=body,
                             ContentLength=os.fstat(body.fileno()).st_size, **match)
        self.fs.invalidate_cache(key)

    def _put_via_temp(self, local_path: str, key: str, create: bool) -> bool:
        parent = key.rsplit("/", 1)[0]
        tmp = f"{parent}/.tmp-{os.getpid()}-{time.time_ns()}"
        self.fs.makedirs(parent, exist_ok=True)
        self.fs.put_file(local_path, tmp)
        if create and self.fs.exists(key):
            self.fs.rm_file(tmp)
            return False
        self.fs.mv(tmp, key)
        return True

    def put(self, local_path: str, key: str, create: bool = False) -> bool:
        """Upload a whole local file to ``key``.

        Returns False when ``create`` is set and the store refused to replace an
        existing key (S3's conditional PUT; a store without atomic PUT checks first).
        """
        return run_blocking(self.upload(local_path, key, BLOCKING, create))

    #: the former private name, still used by ops/sync.py
    _put = put

    async def put_async(self, local_path: str, key: str, create: bool = False) -> bool:
        """:meth:`put` on the filesystem's event loop (see :attr:`is_async`)."""
        return await self.upload(local_path, key, ON_LOOP, create)

    def put_file(self, local_path: str, digest: str) -> bool:
        """Upload a complete, already hashed local file. Returns False if it was there."""
        key = self.object_key(digest)
        try:
            if self.exclusive_creates and os.path.getsize(local_path) <= SMALL_FILE:
                # One request, not two: the server itself refuses to replace an existing key.
                return self.put(local_path, key, create=True)
            if self.fs.exists(key):
                return False  # a verified skip: the name is the content's hash
            return self.put(local_path, key, create=True)
        except RemoteError:
            raise
        except Exception as exc:
            raise self._error(f"write object {digest[:12]} to", exc) from None

    def refresh(self, local_path: str, digest: str) -> None:
        """Upload an object that is already there again, so that its modification time is now.

        gc deletes only unreferenced objects older than its grace: a writer that
        reuses an unreferenced object in a shared bucket refreshes it first, so
        another machine's gc cannot delete it before the writer's commit lands.
        The bytes are the same (the key is their hash), so replacing is safe.
        """
        try:
            self.put(local_path, self.object_key(digest))
        except RemoteError:
            raise
        except Exception as exc:
            raise self._error(f"write object {digest[:12]} to", exc) from None

    def ingest(self, src: str, size_hint: int = -1) -> tuple[str, int, bool]:
        """Store a copy of the local file ``src``, hashing it first.

        Returns (hash, size, newly_stored). ``size_hint`` lets a local store
        pick its fast path for small files; here it is not needed.
        """
        digest, size = hashing.hash_file(src)
        return digest, size, self.put_file(src, digest)

    def ingest_staged(self, staged: str) -> tuple[str, int, bool]:
        """Hash a finished staging file, store it, and remove the staging file.

        Returns (hash, size, newly_stored).
        """
        try:
            return self.ingest(staged)
        finally:
            os.unlink(staged)

    def clean_staging(self, older_than: float) -> int:
        """Remove staging files older than ``older_than`` seconds; the number removed.

        Only a local store stages files inside itself (see ``LocalObjectStore``); a store
        on any other filesystem receives whole, complete files and has none.
        """
        return 0

    def open(self, digest: str, mode: str = "rb") -> IO[bytes]:
        """Open an object for reading (objects are immutable: ``rb`` only).

        Raises:
            ObjectNotAvailable: the store does not hold the object.
            RemoteError: the store cannot be read.
        """
        if mode != "rb":
            raise ValueError("objects are immutable; open them with mode 'rb'")
        key = self.object_key(digest)
        try:
            handle: IO[bytes] = self.fs.open(key, "rb")
            return handle
        except FileNotFoundError:
            raise self._not_available(digest) from None
        except Exception as exc:
            raise self._error("read", exc) from None

    def _not_available(self, digest: str) -> ObjectNotAvailable:
        return ObjectNotAvailable(f"object {digest[:12]} is not in {redact_url(self.url)}; push it from a machine that has it")

    def _keep_verified(self, part: str, digest: str, dest: str, where: str | None = None) -> int:
        """Hash the downloaded ``part``; rename it to ``dest`` only if the hash is ``digest``.

        ``where`` names the key the bytes came from, when not the object's own (a pack).
        """
        actual, size = hashing.hash_file(part)
        if actual != digest:
            raise IntegrityError(
                f"object {digest[:12]} in {self._scrub(where or redact_url(self.url))} is corrupt (its bytes hash to "
                f"{actual[:12]}); nothing was kept", hint="call lake.fsck() where it was pushed from",
                digest=digest, url=redact_url(self.url))
        os.replace(part, dest)
        return size

    async def download(self, digest: str, dest: str, io: IOMode) -> int:
        """Download an object to ``dest`` (which must not exist), verified before it appears there.

        The one fetch-and-verify path; :meth:`get_file` and :meth:`get_file_async`
        run it. The bytes go to a staging name next to ``dest`` (the loose
        object, else a ranged read of the pack that holds it), are hashed, and
        are renamed into place only when the hash matches; a failure leaves
        nothing behind. Returns the object's size.

        Raises:
            ObjectNotAvailable: neither a loose object nor a pack holds ``digest``.
            IntegrityError: the bytes do not hash to ``digest``.
            RemoteError: the store cannot be read.
        """
        key = self.object_key(digest)
        part = f"{dest}.part-{os.getpid()}-{time.time_ns()}"
        try:
            try:
                await io.get_file(self.fs, key, part, **self._download_kwargs())
                loose = True
            except FileNotFoundError:
                loose = False
            except Exception as exc:
                raise self._error(f"download object {digest[:12]} from", exc) from None
            where = None
            if not loose:  # outside the except clause: a failure here is not "during handling" of the miss
                where = await self._read_packed(digest, part, io)
            return await io.offload(self._keep_verified, part, digest, dest, where)
        finally:
            if os.path.exists(part):
                os.unlink(part)

    async def _read_packed(self, digest: str, part: str, io: IOMode) -> str:
        """Write the packed object ``digest`` to ``part``: one ranged read of the pack that holds it.

        Returns the pack's key (redacted), for messages.

        Raises:
            ObjectNotAvailable: no pack index lists ``digest``.
            IntegrityError: the pack is missing or shorter than its index says.
            RemoteError: the pack cannot be read (the message names its key).
        """
        where = self._packs_lookup(digest)
        data: bytes | None = None
        for attempt in range(2):
            if where is None or attempt:  # a pack pushed, or rewritten by gc, since the indexes were read
                where = (await io.offload(self.pack_index, True)).get(digest)
            if where is None:
                raise self._not_available(digest)
            pack_key = self.pack_key(where.pack)
            try:
                data = await io.cat_range(self.fs, pack_key, where.offset, where.offset + where.size)
                break
            except FileNotFoundError:
                data = None
            except Exception as exc:
                if "InvalidRange" not in str(exc) and "416" not in str(exc):
                    raise self._error(f"read object {digest[:12]} from pack {redact_url(pack_key)} of", exc) from None
                data = b""  # a range past the pack's end: the pack is shorter than its index says
                break
        assert where is not None
        if data is None or len(data) != where.size:
            what = "is missing" if data is None else f"is shorter than its index says ({len(data)} of {where.size} bytes)"
            raise IntegrityError(f"pack {self._scrub(redact_url(pack_key))} {what}, so object {digest[:12]} cannot be "
                                 "read from it; push the objects again from a machine that has them",
                                 digest=digest, url=redact_url(self.url))
        with open(part, "wb") as f:
            f.write(data)
        return redact_url(pack_key)

    def get_pack(self, pack_id: str, dest: str) -> None:
        """Download the whole pack ``pack_id`` to the local file ``dest`` (its objects are verified by the caller).

        Raises:
            IntegrityError: the pack is missing though its index exists.
            RemoteError: the pack cannot be read (the message names its key).
        """
        key = self.pack_key(pack_id)
        try:
            self.fs.get_file(key, dest, **self._download_kwargs())
        except FileNotFoundError:
            raise IntegrityError(f"pack {self._scrub(redact_url(key))} is missing though its index lists objects; "
                                 "push them again from a machine that has them", digest=pack_id,
                                 url=redact_url(self.url)) from None
        except Exception as exc:
            raise self._error(f"download pack {redact_url(key)} from", exc) from None

    def get_file(self, digest: str, dest: str) -> int:
        """Download an object to ``dest`` (which must not exist), verified before it appears there.

        See :meth:`download`; this runs it in the calling thread.
        """
        return run_blocking(self.download(digest, dest, BLOCKING))

    @property
    def is_async(self) -> bool:
        """True when transfers can run as coroutines on the filesystem's event loop (s3fs, gcsfs, adlfs)."""
        return bool(getattr(self.fs, "async_impl", False)) and self.atomic_put

    async def get_file_async(self, digest: str, dest: str) -> int:
        """:meth:`get_file` on the filesystem's event loop (see :attr:`is_async`)."""
        return await self.download(digest, dest, ON_LOOP)

    def _packs_lookup(self, digest: str) -> PackedObject | None:
        """Pack lookup from the in-memory indexes only (safe on the event loop)."""
        for index in list(self._packs.values()):  # a snapshot: another thread may be adding indexes
            if digest in index:
                return index[digest]
        return None

    def _upload_kwargs(self, size: int) -> dict[str, Any]:
        """How s3fs uploads a big file of ``size`` bytes: multipart in bounded parts read from the local file.

        s3fs's defaults (50 MiB parts, 10 at once) hold a whole 100 MB object in
        memory per transfer; these hold PART_SIZE x PARTS_IN_FLIGHT, with parts
        grown only past 80 GB, where S3's 10,000 parts would not hold the object.
        """
        if not self.is_s3:
            return {}
        return {"chunksize": max(PART_SIZE, -(-size // _MAX_PARTS)), "max_concurrency": PARTS_IN_FLIGHT}

    def _download_kwargs(self) -> dict[str, Any]:
        """How s3fs downloads: one streamed request per object, written 64 KiB at a time.

        s3fs's default reads ten 50 MiB ranges at once into memory for any object over
        50 MiB (a pull of 10 x 100 MB peaked at 814 MB); one stream holds almost nothing.
        """
        return {"max_concurrency": 1} if self.is_s3 else {}

    def _create_kwargs(self, create: bool) -> dict[str, Any]:
        # If-None-Match: * where the server supports it: an existing key is never replaced.
        return {"mode": "create"} if create and self.is_s3 else {}

    def delete(self, digest: str) -> None:
        """Remove a loose object (gc and cache pruning only: objects are otherwise never removed)."""
        self.fs.rm_file(self.object_key(digest))

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every loose object, from one listing.

        Raises:
            RemoteError: the store cannot be listed.
        """
        base = self._key(OBJECTS)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._error("list", exc) from None
        for path, info in found.items():
            rel = path[len(base) :].strip("/").split("/")
            if len(rel) != 2 or len(rel[0]) != 2:
                continue
            digest = rel[0] + rel[1]
            if not hashing.is_hash(digest):
                continue
            mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0.0
            if hasattr(mtime, "timestamp"):
                mtime = mtime.timestamp()
            yield ObjectInfo(digest, int(info.get("size") or 0), float(mtime))

    # -- records -------------------------------------------------------------
    def write_record(self, commit_id: str, data: bytes) -> None:
        """Write a commit's records file whole (a reader never sees part of it).

        Raises:
            RemoteError: the store cannot be written.
        """
        key = self._key(f"{RECORDS}/{commit_id}.jsonl")
        with tempfile.NamedTemporaryFile(delete=False, suffix=".jsonl") as tmp:
            tmp.write(data)
        try:
            self.put(tmp.name, key)
        except Exception as exc:
            raise self._error("write records to", exc) from None
        finally:
            os.unlink(tmp.name)

    def record_times(self) -> dict[str, float]:
        """commit id -> modification time (seconds) of every records file."""
        base = self._key(RECORDS)
        try:
            found = self.fs.find(base, detail=True, maxdepth=1)
        except FileNotFoundError:
            return {}
        except Exception as exc:
            raise self._error("list", exc) from None
        out, voided = {}, set()
        for path, info in found.items():
            name = path.rsplit("/", 1)[-1]
            if name.endswith(".jsonl") and not name.startswith("."):
                mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0.0
                out[name[: -len(".jsonl")]] = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
            elif name.endswith(VOID):
                voided.add(name[: -len(VOID)])
        return {c: t for c, t in out.items() if c not in voided}  # a void marker cancels its records file

    def list_records(self) -> list[str]:
        """The ids of every commit with a records file, sorted (so in time order: ids are ULIDs).

        Records files of abandoned commits (see :meth:`void_record`) are left out.
        """
        return sorted(self.record_times())

    def delete_record(self, commit_id: str) -> None:
        """Remove the records file of a commit that was abandoned (its catalog transaction failed).

        Raises:
            RemoteError: the store refused (a missing file is no error).
        """
        self._remove_record_file(f"{commit_id}.jsonl")

    def _remove_record_file(self, name: str) -> None:
        """Remove ``records/<name>``; a missing file is no error."""
        try:
            self.fs.rm_file(self._key(f"{RECORDS}/{name}"))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error("delete records from", exc) from None

    def void_record(self, commit_id: str) -> None:
        """Mark a commit abandoned with ``records/<id>.void``: its records file is then never applied.

        Raises:
            RemoteError: the store cannot be written.
        """
        with tempfile.NamedTemporaryFile(delete=False, suffix=VOID) as tmp:
            tmp.write(b"abandoned: its catalog transaction failed\n")
        try:
            self.put(tmp.name, self._key(f"{RECORDS}/{commit_id}{VOID}"))
        except Exception as exc:
            raise self._error("write records to", exc) from None
        finally:
            os.unlink(tmp.name)

    def list_voids(self) -> list[str]:
        """The ids of every abandoned commit (with a ``.void`` marker), sorted."""
        return sorted(name[: -len(VOID)] for name in self._names(RECORDS) if name.endswith(VOID))

    def drop_void(self, commit_id: str) -> None:
        """Tidy an abandoned commit away: its records file first, then its void marker."""
        self.delete_record(commit_id)
        self._remove_record_file(f"{commit_id}{VOID}")

    def quarantine_record(self, name: str) -> str:
        """Move ``records/<name>.jsonl`` to ``records/quarantine/``, out of every replay; where it went.

        Raises:
            RemoteError: the store refused the move.
        """
        target = f"{RECORDS}/{QUARANTINE}/{name}.jsonl"
        try:
            self.fs.mv(self._key(f"{RECORDS}/{name}.jsonl"), self._key(target))
        except Exception as exc:
            raise self._error("move records in", exc) from None
        return target

    def list_quarantined(self) -> list[str]:
        """The names (without ``.jsonl``) of the records files in quarantine, sorted."""
        return sorted(n[: -len(".jsonl")] for n in self._names(f"{RECORDS}/{QUARANTINE}") if n.endswith(".jsonl"))

    def _names(self, folder: str) -> list[str]:
        """The names of the files directly in ``folder`` (none when it does not exist)."""
        try:
            found = self.fs.find(self._key(folder), maxdepth=1)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._error("list", exc) from None
        return [path.rsplit("/", 1)[-1] for path in found]

    def read_record(self, commit_id: str) -> bytes:
        """The bytes of one records file."""
        return self.read_records([commit_id])[commit_id]

    def read_records(self, commit_ids: Iterable[str]) -> dict[str, bytes]:
        """Many records files at once (concurrent requests on async filesystems)."""
        keys = {self._key(f"{RECORDS}/{c}.jsonl"): c for c in commit_ids}
        if not keys:
            return {}
        try:
            got = self.fs.cat(list(keys), on_error="raise")
        except Exception as exc:
            raise self._error("read records from", exc) from None
        if len(keys) == 1 and not isinstance(got, dict):
            got = {next(iter(keys)): got}
        return {keys[self.fs._strip_protocol(k) if k not in keys else k]: bytes(v) for k, v in got.items()}

    # -- the lake's settings, for lakes that live on this store --------------
    def read_config(self) -> bytes | None:
        """The bytes of the lake's settings file in this store, or None when there is none."""
        try:
            return bytes(self.fs.cat_file(self._key(CONFIG)))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error("read", exc) from None

    def write_config(self, data: bytes) -> None:
        """Write the lake's settings file into this store."""
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(data)
        try:
            self.put(tmp.name, self._key(CONFIG))
        except Exception as exc:
            raise self._error("write", exc) from None
        finally:
            os.unlink(tmp.name)


def _lost_race(exc: OSError) -> bool:
    """A conditional upload refused because the key exists: another writer stored the same bytes."""
    return isinstance(exc, FileExistsError) or "PreconditionFailed" in str(exc) or "412" in str(exc)


def _url_secrets(url: str) -> list[str]:
    match = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*:([^@/]*)@", url)
    return [match.group(1)] if match and match.group(1) else []
