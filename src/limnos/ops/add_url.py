"""``add`` from a URL: ``https://``, ``s3://`` or any other fsspec URL, streamed into the lake.

radops adds a file from a URL; so does :meth:`limnos.Lake.add` when given one.
The body is read in chunks of :data:`CHUNK` into a staging file of this
machine's cache while BLAKE3 hashes it, so memory stays bounded whatever the
size, and the bytes are read once: the hash taken on the way is the one the
object is stored under. An HTTP body is one streamed GET (no range requests,
which plain servers such as ``python -m http.server`` refuse); a body shorter
than the size the server announced is a failed download, not a file.

The source is recorded as provenance in the file's metadata under
:data:`SOURCE_KEY` (``source_url``): per file, queryable
(``lake.query(source_url=...)``) and travelling with push and pull. Its user
and password, a web URL's user (often a token) and query parameters that look
like credentials (``X-Amz-Signature``, ``token``, ``sig``...) are masked first;
storage options (keys, secrets) are never recorded.

A failed download leaves nothing: the staging file is removed and no commit
is written. Re-adding a URL whose bytes did not change makes no new version,
as a local add does.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import blake3

from ..core.files import File
from ..core.provenance import scrub_text
from ..errors import DownloadFailed, InvalidName, LimnosError, SourceNotFound, redact_url, require_protocol
from ..names import validate_name
from .add import AddResult, add_note, discard_new_objects, store_full_error

if TYPE_CHECKING:
    from ..core.base import LakeBase

#: the metadata key that records where a file added from a URL came from
SOURCE_KEY = "source_url"
CHUNK = 1 << 20  # bytes read (and held) at a time
_UNKNOWN_SIZE = -1  # what fsspec's HTTP open is told, so that it streams without asking the size first
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")


def is_url(path: str) -> bool:
    """True when ``path`` is a URL (``https://...``, ``s3://...``), not a local path.

    A scheme takes at least two letters, so a Windows drive (``C:\\``) is never one.
    """
    return _SCHEME.match(path) is not None


def source_url(url: str) -> str:
    """``url`` as it is recorded: credentials, a web URL's user and secret query parameters masked."""
    return scrub_text(redact_url(url))


def url_name(url: str) -> str:
    """The name a URL's file gets by default: the last segment of its path, percent-decoded.

    Raises:
        InvalidName: the path ends in ``/`` or is empty (no file name to take).
    """
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not segment:
        raise InvalidName(f"{source_url(url)} ends with no file name", hint="pass name=", name=None)
    return validate_name(segment)


def add_url(lake: LakeBase, url: str, name: str | None, metadata: Mapping[str, Any] | None,
            storage_options: Mapping[str, Any] | None = None) -> AddResult:
    """Download ``url`` into the lake as one file, in one commit (see :meth:`limnos.Lake.add`).

    Args:
        lake: the lake to add to.
        url: an fsspec URL (``https://host/data.csv``, ``s3://bucket/key``).
        name: its name in the lake; None: the URL's last path segment.
        metadata: set on the file, besides ``source_url`` (which this call sets).
        storage_options: for the URL's file system (endpoint, credentials); never recorded.

    Returns:
        An :class:`AddResult` holding the one File.

    Raises:
        InvalidName: ``name`` (or the URL's last segment) is not a valid name.
        MetadataError: ``metadata`` cannot be stored (nothing is downloaded then).
        MissingExtra: the URL's file system needs a package that is not installed.
        SourceNotFound: the server says there is no such file (HTTP 404, no such key).
        DownloadFailed: the download failed or ended early; nothing was written.
        StoreFull: the disk is full; nothing was committed.
    """
    name = validate_name(name) if name is not None else url_name(url)
    recorded = {**(metadata or {}), SOURCE_KEY: source_url(url)}
    lake.check_metadata(recorded)  # before any byte is fetched
    require_protocol(url)
    staged = lake.staging_path(os.path.splitext(name)[1][:16])
    try:
        digest, size = _download(url, staged, storage_options or {})
        return _commit(lake, name, staged, digest, size, recorded)
    except OSError as exc:
        full = store_full_error(exc, lake.cache.root, f"adding {recorded[SOURCE_KEY]}")
        if full is not None:
            raise full from exc
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)


def _download(url: str, staged: str, storage_options: Mapping[str, Any]) -> tuple[str, int]:
    """Stream ``url`` into ``staged``, hashing on the way; (digest, size).

    Raises:
        SourceNotFound: no such file at ``url``.
        DownloadFailed: anything else went wrong on the way, or fewer bytes came than announced.
    """
    import fsspec

    shown = source_url(url)
    hasher = blake3.blake3()
    total = 0
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
        http = any(p in ("http", "https") for p in _protocols(fs))
        # http: one streamed GET, bytes as served (no transparent decompression, which would
        # break the size check). A size given up front skips fsspec's HEAD request, which a
        # presigned URL (signed for GET) refuses and whose every failure fsspec reports as a
        # missing file; the GET's own status decides (404: not found, others: failed).
        # Other file systems: reads of CHUNK, which s3fs turns into ranged GETs.
        options: dict[str, Any] = ({"block_size": 0, "size": _UNKNOWN_SIZE, "headers": {"Accept-Encoding": "identity"}}
                                   if http else {"block_size": CHUNK})
        with fs.open(path, "rb", **options) as src, open(staged, "wb") as dst:
            expected = _announced_size(fs, src)
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                hasher.update(chunk)
                dst.write(chunk)
                total += len(chunk)
    except FileNotFoundError as exc:
        if exc.filename == staged:
            raise  # our own staging file went missing: not the source's fault
        raise SourceNotFound(f"{shown} does not exist (the server has no such file)", path=shown) from None
    except (LimnosError, MemoryError):
        raise
    except OSError as exc:
        if exc.filename == staged or store_full_error(exc, os.path.dirname(staged), "") is not None:
            raise  # our own disk: add_url turns a full one into StoreFull
        raise DownloadFailed(f"downloading {shown} failed: {_reason(exc)}", url=shown) from None
    except Exception as exc:  # aiohttp, botocore, fsspec: each library raises its own kinds
        raise DownloadFailed(f"downloading {shown} failed: {_reason(exc)}", url=shown) from None
    if expected is not None and total != expected:
        raise DownloadFailed(f"downloading {shown} failed: the server announced {expected} bytes "
                             f"but sent {total}", url=shown)
    return hasher.hexdigest(), total


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _announced_size(fs: Any, src: Any) -> int | None:
    """The size the server gave for the body about to be read, if any (an HTTP stream keeps it in ``fs``)."""
    size = getattr(src, "size", None)
    if isinstance(size, int) and size >= 0:
        return size
    response = getattr(src, "r", None)  # fsspec's HTTPStreamFile: the aiohttp response
    length = getattr(response, "content_length", None) if response is not None else None
    encoding = response.headers.get("Content-Encoding", "identity") if response is not None else "identity"
    return int(length) if isinstance(length, int) and encoding in ("identity", "") else None


def _reason(exc: BaseException) -> str:
    """One line saying why a download failed, with any URL in it scrubbed."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 600:  # an HTTP error (aiohttp's ClientResponseError)
        return f"the server answered {status} {getattr(exc, 'message', '') or ''}".rstrip()
    text = " ".join(str(exc).split()) or type(exc).__name__
    return scrub_text(redact_url(text))[:300]


def _commit(lake: LakeBase, name: str, staged: str, digest: str, size: int,
            metadata: Mapping[str, Any]) -> AddResult:
    """Store the downloaded object and commit it as ``name`` (no new version when the bytes are unchanged)."""
    new = False
    try:
        with lake.writing():  # gc keeps the object, new or reused, until the commit names it
            latest = lake.catalog.latest_rows([name]).get(name)
            if latest is not None and latest.hash == digest:
                current = lake.catalog.metadata_of([latest.id])[latest.id]
                if all(current.get(k) == v for k, v in metadata.items()):
                    return AddResult([File(lake, latest)], new_versions=0)
                commit = lake.new_commit("add")
                commit.add_metadata([latest.id], metadata)
                commit.write()
                return AddResult([lake.resolve(latest.id)], new_versions=0)
            digest, size, new = lake.store_staged_new(staged, digest)
            commit = lake.new_commit("add")
            row = commit.add_file(name, digest, size, inputs=lake.current_inputs(), metadata=metadata)
            commit.write()
    except BaseException as exc:  # outside writing(): removing the new object waits for the writers in flight
        removed = discard_new_objects(lake, [digest]) if new else 0
        if isinstance(exc, KeyboardInterrupt):
            add_note(exc, f"adding {metadata[SOURCE_KEY]} was not committed"
                     + ("; its new object was removed" if removed else ""))
        raise
    return AddResult([commit.file(row)], new_versions=1)
