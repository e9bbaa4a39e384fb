"""Folio archives: a tar (optionally gzipped) whose first member is the manifest.

Layout (every member a plain file)::

    folio.json          the manifest: metadata and, per item, type, format, hash,
                        size, description, inputs, member name and data offset
    metadata.json       the metadata alone, for people who untar the archive by hand
    items/<name><ext>   one member per included item

Why the manifest is first and holds offsets: loading reads one range (the
first 64 KiB covers the manifest of any ordinary folio) and each item is then
one ranged read of its own bytes, so a folio on S3 costs what you use of it,
not its size. That holds for an uncompressed ``.tar``. gzip has no random
access: a ``.tar.gz`` is read from its start up to the item asked for (the
manifest, being first, is still cheap), so prefer ``.tar`` for big remote
folios that are read piecemeal.

Nothing here trusts the archive: member names must look like ``items/...``
(no ``..``, no absolute path), the tar header in front of an item's bytes must
be a regular file of the listed size (links and devices are refused), and the
bytes must hash to the listed BLAKE3 hash before they are kept.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
import time
import zlib
from collections.abc import Sequence
from typing import IO, Any, Final

import fsspec

from ..errors import FolioError, IntegrityError, UnsafeArchive, redact_url
from ..store import hashing

MANIFEST_MEMBER = "folio.json"
METADATA_MEMBER = "metadata.json"
FORMAT_NAME = "limnos.folio"
FORMAT_VERSION = 1
HEAD_READ = 64 * 1024  # first read: the manifest of any ordinary folio fits
MAX_MANIFEST = 64 << 20  # a bigger "manifest" is not one: refuse it rather than read it into memory
CHUNK = 8 << 20  # items are streamed in ranged reads of this size, never read whole
_BLOCK = tarfile.BLOCKSIZE
_TAR_FORMAT: Final = tarfile.GNU_FORMAT
_ENCODING, _ERRORS = "utf-8", "surrogateescape"
MEMBER_RE = re.compile(r"^items/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _blocks(n: int) -> int:
    return (n + _BLOCK - 1) // _BLOCK


def _tarinfo(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, 0o644, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _header_len(name: str, size: int) -> int:
    return len(_tarinfo(name, size, 0).tobuf(_TAR_FORMAT, _ENCODING, _ERRORS))


def _dumps(data: Any) -> bytes:
    return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=True).encode("utf-8")


def check_member_name(name: str) -> str:
    """Refuse member names that could leave the extraction folder."""
    if not isinstance(name, str) or not MEMBER_RE.match(name) or ".." in name.split("/"):
        raise UnsafeArchive(f"archive member {name!r} is not a plain name under items/; refusing the archive")
    return name


def check_tarinfo(info: tarfile.TarInfo) -> None:
    """Refuse absolute or ``..`` paths, links and devices anywhere in an archive."""
    name = info.name
    if name.startswith("/") or "\\" in name or "\x00" in name or ".." in name.split("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchive(f"archive member {name!r} has an absolute or '..' path; refusing the archive")
    if info.issym() or info.islnk():
        raise UnsafeArchive(f"archive member {name!r} is a link (to {info.linkname!r}); refusing the archive")
    if not (info.isreg() or info.isdir()):
        raise UnsafeArchive(f"archive member {name!r} is a device or special file; refusing the archive")


# --------------------------------------------------------------- writing
def write_archive(dest: str, manifest: dict[str, Any], members: Sequence[tuple[str, str]], compress: bool) -> None:
    """Write an archive to the local path ``dest``.

    ``members`` are (member name, local file) in manifest item order; each
    manifest item with a ``member`` gets its data ``offset`` (in the
    uncompressed tar stream) filled in here.
    """
    mtime = int(time.time())
    sizes = [(name, os.path.getsize(path)) for name, path in members]
    metadata = _dumps(manifest.get("metadata", {}))
    by_member = {item["member"]: item for item in manifest["items"] if item.get("member")}

    def layout(manifest_size: int) -> dict[str, int]:
        """Data offsets of the items if the manifest has ``manifest_size`` bytes."""
        pos = _header_len(MANIFEST_MEMBER, manifest_size) + _blocks(manifest_size) * _BLOCK
        pos += _header_len(METADATA_MEMBER, len(metadata)) + _blocks(len(metadata)) * _BLOCK
        offsets = {}
        for name, size in sizes:
            pos += _header_len(name, size)
            offsets[name] = pos
            pos += _blocks(size) * _BLOCK
        return offsets

    # The offsets depend on the manifest's size (in blocks), which depends on the
    # offsets' digits: iterate to a fixed point, padding with JSON whitespace so
    # the manifest never shrinks below the size the layout assumed.
    for item in by_member.values():
        item["offset"] = 0
    guess = len(_dumps(manifest))
    for _ in range(16):
        offsets = layout(guess)
        for name, item in by_member.items():
            item["offset"] = offsets[name]
        data = _dumps(manifest)
        if len(data) < guess:
            data += b" " * (guess - len(data))
        same_header = _header_len(MANIFEST_MEMBER, len(data)) == _header_len(MANIFEST_MEMBER, guess)
        if _blocks(len(data)) == _blocks(guess) and same_header:
            break
        guess = len(data)
    else:  # pragma: no cover - the sizes only grow, so this converges in two or three rounds
        raise FolioError("could not lay out the folio archive; please report this")

    with _open_for_writing(dest, compress) as tar:
        tar.addfile(_tarinfo(MANIFEST_MEMBER, len(data), mtime), io.BytesIO(data))
        tar.addfile(_tarinfo(METADATA_MEMBER, len(metadata), mtime), io.BytesIO(metadata))
        for (name, path), (_, size) in zip(members, sizes, strict=True):
            info = _tarinfo(name, size, mtime)
            if tar.offset + len(info.tobuf(_TAR_FORMAT, _ENCODING, _ERRORS)) != offsets[name]:  # pragma: no cover
                raise FolioError(f"folio archive layout mismatch at {name}; please report this")
            with open(path, "rb") as f:
                tar.addfile(info, f)


def _open_for_writing(dest: str, compress: bool) -> tarfile.TarFile:
    """A new archive at ``dest`` in our tar dialect (GNU, UTF-8), gzip-compressed or not."""
    if compress:
        return tarfile.open(dest, "w:gz", format=_TAR_FORMAT, encoding=_ENCODING, errors=_ERRORS, compresslevel=6)
    return tarfile.open(dest, "w", format=_TAR_FORMAT, encoding=_ENCODING, errors=_ERRORS)


def current_umask() -> int:
    """This process's umask, read without changing it where the OS allows (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o22)  # a brief set and restore: the only portable way to read it
    os.umask(mask)
    return mask


def put(local_path: str, url: str, storage_options: dict[str, Any] | None) -> None:
    """Move a finished local archive to ``url``: a rename for local paths, one whole upload otherwise."""
    fs, path = fsspec.core.url_to_fs(url, **fs_options(url, storage_options))
    if _is_local(fs):
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        os.replace(local_path, path)
        return
    try:
        fs.put_file(local_path, path)  # a whole object PUT: never a partial archive at the final key
    except Exception as exc:
        raise FolioError(f"cannot write {redact_url(url)}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message, else its type's name: enough for a one-line message."""
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def fs_options(url: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """fsspec options for ``url``. On S3, botocore's whole-object CRC checks are asked only when
    required: they misfire on ranged reads (as ObjectStore notes), and items are BLAKE3-checked anyway."""
    out = dict(options or {})
    if url.startswith(("s3://", "s3a://")):
        config = dict(out.get("config_kwargs") or {})
        config.setdefault("request_checksum_calculation", "when_required")
        config.setdefault("response_checksum_validation", "when_required")
        out["config_kwargs"] = config
    return out


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return any(p in ("file", "local") for p in protocols)


# --------------------------------------------------------------- reading
class _Counting(io.RawIOBase):
    """A read-only stream that counts the bytes it hands out (what gzip consumed of the archive)."""

    def __init__(self, raw: IO[bytes], owner: ArchiveReader) -> None:
        self._raw, self._owner = raw, owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._owner.bytes_read += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class ArchiveReader:
    """Reads a folio archive at any fsspec URL: the manifest first, then items on demand."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        try:
            self.fs, self.path = fsspec.core.url_to_fs(url, **fs_options(url, storage_options))
            self.size = int(self.fs.size(self.path))
        except FileNotFoundError:
            raise FolioError(f"no folio at {redact_url(url)}; check the path") from None
        except Exception as exc:
            raise FolioError(f"cannot open {redact_url(url)}: {_first_line(exc)}") from None
        self.bytes_read = 0
        self.requests = 0
        self._gz: io.BufferedIOBase | None = None  # an open gzip stream and how far into it we are:
        self._gz_pos = 0  # items read in archive order then cost one pass, not one per item
        self._head = self._range(0, min(HEAD_READ, self.size))
        self.compressed = self._head[:2] == b"\x1f\x8b"

    def _range(self, start: int, end: int) -> bytes:
        data = bytes(self.fs.cat_file(self.path, start=start, end=end))
        self.bytes_read += len(data)
        self.requests += 1
        return data

    def _stream(self) -> io.BufferedIOBase:
        """The uncompressed tar stream from its start."""
        raw = self.fs.open(self.path, "rb", block_size=HEAD_READ)
        counting = io.BufferedReader(_Counting(raw, self), buffer_size=HEAD_READ)
        self.requests += 1
        return gzip.GzipFile(fileobj=counting, mode="rb") if self.compressed else counting

    # -- manifest ------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        """The manifest, from the archive's first member (or found by a scan for archives made by other tools)."""
        try:
            if self.compressed:
                # The first read usually holds the whole (compressed) manifest: decompress it from there.
                head = zlib.decompressobj(wbits=31).decompress(self._head, MAX_MANIFEST)
                info = self._parse_header(head[:_BLOCK])
                self._check_manifest_size(info)
                data = head[_BLOCK:_BLOCK + info.size] if info.name == MANIFEST_MEMBER else b""
                if info.name == MANIFEST_MEMBER and len(data) < info.size:
                    with self._stream() as stream:
                        _skip(stream, _BLOCK)
                        data = stream.read(info.size)
            else:
                info = self._parse_header(self._head[:_BLOCK])
                self._check_manifest_size(info)
                end = _BLOCK + info.size
                if info.name == MANIFEST_MEMBER and end > len(self._head):
                    self._head += self._range(len(self._head), end)
                data = self._head[_BLOCK:end]
        except (EOFError, OSError, tarfile.TarError, gzip.BadGzipFile, zlib.error) as exc:
            raise FolioError(f"{redact_url(self.url)} is not a readable folio archive: {exc}") from None
        if info.name != MANIFEST_MEMBER or not info.isreg():
            return self._manifest_by_scan()
        return self._parse_manifest(data)

    def _check_manifest_size(self, info: tarfile.TarInfo) -> None:
        if info.name == MANIFEST_MEMBER and info.size > MAX_MANIFEST:
            raise FolioError(f"{redact_url(self.url)} has a {info.size}-byte manifest; refusing to read it")

    def _parse_header(self, block: bytes) -> tarfile.TarInfo:
        if len(block) < _BLOCK:
            raise FolioError(f"{redact_url(self.url)} is too short to be a folio archive")
        try:
            return tarfile.TarInfo.frombuf(block, _ENCODING, _ERRORS)
        except tarfile.TarError as exc:
            raise FolioError(f"{redact_url(self.url)} is not a tar archive ({exc}); save folios with Folio.save") from None

    def _parse_manifest(self, data: bytes) -> dict[str, Any]:
        try:
            manifest = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise FolioError(f"the manifest of {redact_url(self.url)} is not valid JSON: {exc}") from None
        return validate_manifest(manifest, redact_url(self.url))

    def scan(self) -> dict[str, tarfile.TarInfo]:
        """Every member's header, read through the whole archive; refuses any unsafe member."""
        members: dict[str, tarfile.TarInfo] = {}
        try:
            with self._stream() as stream, tarfile.open(fileobj=stream, mode="r|", encoding=_ENCODING, errors=_ERRORS) as tar:
                for info in tar:
                    check_tarinfo(info)
                    members[info.name] = info
        except (EOFError, OSError, tarfile.TarError) as exc:
            raise FolioError(f"{redact_url(self.url)} is not a readable tar archive: {exc}") from None
        return members

    def _manifest_by_scan(self) -> dict[str, Any]:
        """For an archive whose manifest is not first (re-packed by another tool): find it and the offsets."""
        members = self.scan()
        if MANIFEST_MEMBER not in members:
            raise FolioError(f"{redact_url(self.url)} has no {MANIFEST_MEMBER}; it is not a limnos folio")
        info = members[MANIFEST_MEMBER]
        with self._stream() as stream:
            _skip(stream, info.offset_data)
            manifest = self._parse_manifest(stream.read(info.size))
        for item in manifest["items"]:
            if item.get("member"):
                found = members.get(item["member"])
                if found is None or not found.isreg():
                    raise FolioError(f"{redact_url(self.url)} lists {item['member']} but does not hold it")
                item["offset"] = found.offset_data
        return manifest

    # -- items ---------------------------------------------------------------
    def extract(self, item: dict[str, Any], dest: str) -> None:
        """Copy one item's bytes to the local path ``dest``, checking its header and hash first."""
        member, offset, size = check_member_name(item["member"]), int(item["offset"]), int(item["size"])
        tmp = f"{dest}.part-{os.getpid()}"
        hasher = hashing._hasher(size)
        try:
            with open(tmp, "wb") as out:
                if self.compressed:
                    stream = self._gz_at(offset - _BLOCK)
                    self._gz_pos = offset + size  # set first: on an error below the stream is dropped anyway
                    self._check_header(stream.read(_BLOCK), member, size)
                    left = size
                    while left:
                        chunk = stream.read(min(CHUNK, left))
                        if not chunk:
                            raise FolioError(f"{redact_url(self.url)} ends inside item {member}")
                        hasher.update(chunk)
                        out.write(chunk)
                        left -= len(chunk)
                else:
                    if offset + size > self.size:
                        raise FolioError(f"{redact_url(self.url)} is shorter than its manifest says (item {member})")
                    pos, first = offset - _BLOCK, True
                    while first or pos < offset + size:
                        chunk = self._range(pos, min(pos + CHUNK, offset + size))
                        if first:  # the header block and the first bytes come in one request
                            self._check_header(chunk[:_BLOCK], member, size)
                            chunk, pos, first = chunk[_BLOCK:], pos + _BLOCK, False
                        hasher.update(chunk)
                        out.write(chunk)
                        pos += len(chunk)
                        if not chunk and pos < offset + size:
                            raise FolioError(f"{redact_url(self.url)} ends inside item {member}")
            if hasher.hexdigest() != item["hash"]:
                raise IntegrityError(f"item {item['name']!r} in {redact_url(self.url)} does not match its hash; "
                                     "the archive is corrupt or was altered")
            os.replace(tmp, dest)
        except BaseException:
            self.close()
            raise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _gz_at(self, pos: int) -> io.BufferedIOBase:
        """The gzip stream positioned at ``pos`` (uncompressed): forward from where it is, else from the start."""
        if self._gz is None or pos < self._gz_pos:
            self.close()
            self._gz, self._gz_pos = self._stream(), 0
        _skip(self._gz, pos - self._gz_pos)
        self._gz_pos = pos
        return self._gz

    def close(self) -> None:
        """Close the open gzip stream, if any (a later read opens a new one)."""
        if self._gz is not None:
            self._gz.close()
            self._gz = None

    def _check_header(self, block: bytes, member: str, size: int) -> None:
        info = self._parse_header(block)
        check_tarinfo(info)
        # GNU tar keeps a long name in a header of its own, and the main header holds a cut copy.
        if not info.isreg() or info.size != size or not (info.name == member or member.startswith(info.name)):
            raise FolioError(f"{redact_url(self.url)}: the bytes at item {member}'s offset are not that item")


def _skip(stream: io.BufferedIOBase, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(CHUNK, count))
        if not chunk:
            raise FolioError("the archive ended early")
        count -= len(chunk)


# --------------------------------------------------------------- manifest
ITEM_TYPES = ("table", "reference", "model", "array", "json", "artifact", "folio")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def validate_item_name(name: object) -> str:
    """Return ``name`` if it is a valid item name (it becomes a file name in archives and lakes).

    Raises:
        FolioError: it is not a str of up to 128 letters, digits, ``_``, ``-`` or ``.``, starting with a
            letter or digit, without ``..``.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise FolioError(f"item name {name!r} is not valid: use up to 128 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit (no '/', no '..')")
    return name


def validate_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """Return ``manifest`` if it is a folio manifest this limnos can read; ``where`` names it in errors.

    Raises:
        FolioError: not a folio manifest, a newer format version, or an invalid or repeated item.
    """
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise FolioError(f"{where} is not a limnos folio (its manifest has no format {FORMAT_NAME!r})")
    if int(manifest.get("version", 0)) > FORMAT_VERSION:
        raise FolioError(f"{where} is a folio of format version {manifest['version']}; upgrade limnos to read it")
    items = manifest.get("items")
    if not isinstance(items, list) or not isinstance(manifest.get("metadata", {}), dict):
        raise FolioError(f"the manifest of {where} has no item list or metadata mapping")
    seen = set()
    for item in items:
        if not isinstance(item, dict):
            raise FolioError(f"the manifest of {where} has an item that is not a mapping")
        name = validate_item_name(item.get("name"))
        if name in seen:
            raise FolioError(f"the manifest of {where} lists item {name!r} twice")
        seen.add(name)
        if item.get("type") not in ITEM_TYPES:
            raise FolioError(f"item {name!r} of {where} has unknown type {item.get('type')!r}; upgrade limnos")
        if item.get("member") is not None:
            check_member_name(item["member"])
            if not isinstance(item.get("offset"), int) or item["offset"] < _BLOCK:
                raise FolioError(f"item {name!r} of {where} has no valid offset")
            if not isinstance(item.get("size"), int) or item["size"] < 0 or not hashing.is_hash(str(item.get("hash"))):
                raise FolioError(f"item {name!r} of {where} has no valid size and hash")
        elif item["type"] != "reference" and not item.get("file"):
            raise FolioError(f"item {name!r} of {where} says neither where its bytes are nor what it references")
    return manifest


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ITEM_TYPES",
    "ArchiveReader",
    "check_member_name",
    "check_tarinfo",
    "current_umask",
    "fs_options",
    "put",
    "validate_item_name",
    "validate_manifest",
    "write_archive",
]
