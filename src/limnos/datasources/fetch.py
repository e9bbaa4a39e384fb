"""Bringing a datapoint's bytes to a local path: lake objects and references.

A :class:`Fetcher` serves lake objects through ``LakeBase.fetch`` (the
cache, else a verified download) and references from their folder (the file
itself) or their URL (a download into this machine's reference cache,
checked against the size the scan saw). Fetchers pickle, so torch DataLoader
workers use them too: a worker reads the cache directly and downloads what
is missing from the lake's sources.
"""

from __future__ import annotations

import os
import pickle
import shutil
import threading
from typing import IO, TYPE_CHECKING, Any

from ..catalog.datasources import SourceInfo
from ..errors import IntegrityError, InvalidName, ObjectNotAvailable, StoreError, redact_url
from ..store import LocalObjectStore, ObjectStore, hashing
from .state import REF_PREFIX, load_options

if TYPE_CHECKING:
    from ..core.base import LakeBase
    from ..core.files import File


class Fetcher:
    """Local paths for objects and references; works in this process and, pickled, in workers."""

    def __init__(self, lake: LakeBase, ref_options: dict[str, Any], ref_dir: str) -> None:
        """A fetcher for ``lake``'s objects and for references read with ``ref_options``, cached in ``ref_dir``."""
        self._lake: LakeBase | None = lake
        self._pid = os.getpid()
        self.cache_root = lake.cache.root
        self.ref_options = dict(ref_options)
        self.ref_dir = ref_dir
        self._sources: list[ObjectStore] | None = None
        self._cache: LocalObjectStore | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__, _lake=None, _cache=None)
        if self._lake is not None and state["_sources"] is None:
            try:  # the stores a missing object can come from, if they can travel to another process
                sources = self._lake.sources()
                pickle.dumps(sources)
                state["_sources"] = sources
            except Exception:
                state["_sources"] = []
        return state

    def object_path(self, digest: str) -> str:
        """The local path of a lake object, downloaded and verified first if needed.

        Raises:
            ObjectNotAvailable: no source has the object.
        """
        lake = self._lake
        if lake is not None and os.getpid() == self._pid:
            return lake.fetch(digest)
        if self._cache is None:
            self._cache = LocalObjectStore(self.cache_root)
        if self._cache.has(digest):
            return self._cache.materialize(digest)  # a packed or chunked object: put together (verified) once
        for source in self._sources or []:
            try:
                self._cache.download_from(source, digest)
                return self._cache.materialize(digest)
            except ObjectNotAvailable:
                continue
        raise ObjectNotAvailable(f"object {digest[:12]} is not on this machine; fetch it first (strategy='preload')")

    def _fs(self, uri: str) -> tuple[Any, str]:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri, **self.ref_options)
        return fs, str(path)

    def reference_path(self, uri: str, size: int, fingerprint: str | None, dest: str | None = None) -> str:
        """A local copy of a referenced file (the file itself when it is on this machine, unless ``dest``).

        Raises:
            ObjectNotAvailable: the file is gone from its source.
            IntegrityError: its size is not the one the scan saw (it changed).
            StoreError: it could not be downloaded.
        """
        if "://" not in uri or uri.startswith("file://"):
            local = uri.removeprefix("file://")
            if dest is None:
                check_size(local, size, uri)
                return local
            return copy_checked(local, dest, size, uri)
        if dest is None:
            key = hashing.hash_bytes(f"{uri}\n{fingerprint}".encode())
            dest = os.path.join(self.ref_dir, key[:2], key[2:], os.path.basename(uri.rstrip("/")) or "file")
            if os.path.exists(dest) and os.path.getsize(dest) == size:
                return dest
        fs, path = self._fs(uri)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        part = f"{dest}.part-{os.getpid()}-{threading.get_ident()}"
        try:
            try:
                fs.get_file(path, part)
            except FileNotFoundError:
                raise ObjectNotAvailable(f"{redact_url(uri)} is gone from its source; "
                                         "run ds.scan() to update the datasource") from None
            except Exception as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise StoreError(f"cannot download {redact_url(uri)}: {detail}") from None
            got = os.path.getsize(part)
            if got != size:
                raise IntegrityError(f"{redact_url(uri)} has {got} bytes but the scan saw {size}; it changed at the source, "
                                     "run ds.scan() to pick the new version up")
            os.replace(part, dest)
        finally:
            if os.path.exists(part):
                os.unlink(part)
        return dest

    def datapoint_path(self, path: str, kind: str, digest: str | None, uri: str | None, size: int,
                       fingerprint: str | None, dest: str | None = None) -> str:
        """A local path to the bytes of the datapoint at ``path``: a reference's (``uri``) or an object's (``digest``).

        With ``dest``, the bytes are copied there (checked against ``size``) and ``dest`` is returned.

        Raises:
            ObjectNotAvailable: the datapoint has no URL or object to read, or its source lost it.
        """
        if kind == "reference":
            if uri is None:
                raise ObjectNotAvailable(f"datapoint {path!r} is a reference without a URL; run ds.scan() again")
            return self.reference_path(uri, size, fingerprint, dest=dest)
        if digest is None:
            raise ObjectNotAvailable(f"datapoint {path!r} has no object; run ds.scan() again")
        local = self.object_path(digest)
        return local if dest is None else copy_checked(local, dest, size, path)

    def open_reference(self, uri: str) -> IO[bytes]:
        """Open a referenced file for reading, straight from its source."""
        fs, path = self._fs(uri)
        handle: IO[bytes] = fs.open(path, "rb")
        return handle


def check_size(path: str, size: int, uri: str) -> None:
    """Check that the local file ``path`` (of ``uri``) still has the size the scan saw.

    Raises:
        ObjectNotAvailable: it is gone.
        IntegrityError: its size changed.
    """
    try:
        got = os.path.getsize(path)
    except FileNotFoundError:
        raise ObjectNotAvailable(f"{uri} is gone from its folder; run ds.scan() to update the datasource") from None
    if got != size:
        raise IntegrityError(f"{uri} has {got} bytes but the scan saw {size}; it changed, run ds.scan()")


def copy_checked(src: str, dest: str, size: int, what: str) -> str:
    """Copy ``src`` (of ``what``, checked to have ``size`` bytes) to ``dest`` atomically; return ``dest``."""
    check_size(src, size, what)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    part = f"{dest}.part-{os.getpid()}-{threading.get_ident()}"
    try:
        shutil.copyfile(src, part)
        os.replace(part, dest)
    finally:
        if os.path.exists(part):
            os.unlink(part)
    return dest


def safe_target(root: str, relpath: str) -> str:
    """``root/relpath``, resolved.

    Raises:
        InvalidName: it would land outside ``root`` (``..``, an absolute path, a symlink out).
    """
    bad = (not relpath or "\x00" in relpath or relpath.startswith(("/", "\\")) or os.path.isabs(relpath)
           or ".." in relpath.replace("\\", "/").split("/"))
    dest = os.path.realpath(os.path.join(root, relpath))
    if bad or os.path.commonpath([root, dest]) != root or dest == root:
        raise InvalidName(f"datapoint path {relpath!r} would be written outside {root}; refusing to download anything")
    return dest


def source_fetcher(lake: LakeBase, info: SourceInfo) -> Fetcher:
    """A fetcher for the datapoints of one datasource, with its storage options."""
    return Fetcher(lake, load_options(lake, info.name), os.path.join(lake.state_dir, "refcache", info.id))


def reference_fetcher(lake: LakeBase, file: File) -> Fetcher:
    """A fetcher for a reference file, with the storage options of the datasource that made it."""
    name = file.name.split("/")[1] if file.name.startswith(REF_PREFIX + "/") else ""
    return Fetcher(lake, load_options(lake, name) if name else {}, os.path.join(lake.state_dir, "refcache", "files"))


__all__ = ["Fetcher", "check_size", "copy_checked", "reference_fetcher", "safe_target", "source_fetcher"]
