"""``limnos://``: a lake as an fsspec filesystem, for pandas, polars, pyarrow, DuckDB and Dask.

fsspec finds this class through the ``fsspec.specs`` entry point that
limnos's package metadata declares (as ``hf://`` and ``lakefs://`` are found),
so ``pd.read_parquet("limnos://raw/x.parquet")`` works once limnos is installed.

Paths are lake refs: ``limnos://raw/x.parquet`` is the latest version of a
name, ``limnos://raw/x.parquet@3`` version 3, and a file id names one version
forever. A prefix (``limnos://raw``) is a folder: ``ls``, ``find``, ``glob`` and
``walk`` list the latest version of each name under it. Folders exist only
through the names under them, as on an object store.

Which lake: the ``lake=`` option (a folder, a URL or an open :class:`limnos.Lake`),
else fsspec's configuration for the protocol (``fsspec.config.conf["limnos"]``,
or ``$FSSPEC_LIMNOS_LAKE``), else ``$LIMNOS_LAKE``, else the nearest ``.limnos``
folder, as :func:`limnos.open` finds it. The filesystem uses the lake this
process has open at that place (see :mod:`limnos.core.reopen`), so reads
through ``limnos://`` are reads of the caller's own lake object: they become
inputs of what it writes next, as ``lake.get`` reads do.

Writes are commits: ``open(path, "wb")`` writes a staging file and commits a
new version when the file is closed (with ``metadata=`` set on it); a ``with``
block that raises commits nothing. ``put`` adds local files, ``cp`` makes a new
version with the source as its input, ``rm`` deletes every version of a name
(or the one version a ``name@N`` names).

What a versioned, write-once filesystem leaves out: empty folders
(``makedirs`` does nothing), appending or updating in place (``ab``, ``r+b``:
:class:`~limnos.errors.UnsupportedMode`), and an atomic ``xb``/``mode="create"``
(the check and the commit are two steps).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from fsspec import AbstractFileSystem

from .core import reopen
from .core.base import LakeBase
from .core.files import File
from .core.opening import CONFIG_NAME, DEFAULT_DIR, find_lake
from .errors import DestinationExists, FileNotFound, InvalidName, InvalidRef, LakeNotFound, PathNotFound, UnsupportedMode
from .lake import Lake

PROTOCOL = "limnos"
_READ_MODES = ("rb",)
_WRITE_MODES = ("wb", "xb")


def _locate(lake: str | os.PathLike[str] | None) -> str:
    """The lake folder (absolute) or URL that ``lake`` names, as :func:`limnos.open` would find it.

    Raises:
        LakeNotFound: no lake is named and none is in ``$LIMNOS_LAKE`` or above the working folder.
    """
    where = os.fspath(lake) if lake is not None else (os.environ.get("LIMNOS_LAKE") or find_lake())
    if not where:
        raise LakeNotFound("limnos:// has no lake to read", hint="pass storage_options={'lake': path}, set "
                           "fsspec.config.conf['limnos'] = {'lake': path}, or set LIMNOS_LAKE")
    if "://" in where and not where.startswith("file://"):
        return where
    root = os.path.abspath(os.path.expanduser(where.removeprefix("file://")))
    if not os.path.isfile(os.path.join(root, CONFIG_NAME)) and os.path.isfile(os.path.join(root, DEFAULT_DIR, CONFIG_NAME)):
        root = os.path.join(root, DEFAULT_DIR)  # the project folder was given, not the lake folder
    return root


class LimnosFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec ships no types
    """A lake as an fsspec filesystem (``limnos://name``, ``limnos://name@3``, ``limnos://prefix``).

    >>> import pandas as pd
    >>> pd.read_parquet("limnos://raw/x.parquet", storage_options={"lake": "/data/.limnos"})  # doctest: +SKIP

    Args:
        lake: the lake: a folder, a URL, or an open :class:`limnos.Lake`; by default
            ``$LIMNOS_LAKE`` or the nearest ``.limnos`` folder.
        catalog: the catalog URL, for a lake whose catalog is not in its settings.
        cache: this machine's cache folder for a lake on a bucket.
        lake_options: storage options of the lake's own store (a bucket's endpoint, say).
        metadata: metadata set on every file this filesystem writes (a write's own ``metadata=`` wins).
    """

    protocol = PROTOCOL
    root_marker = ""

    def __init__(self, lake: str | os.PathLike[str] | LakeBase | reopen.LakeAddress | None = None,
                 catalog: str | None = None, cache: str | None = None, lake_options: Mapping[str, Any] | None = None,
                 metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lake: LakeBase | None = lake if isinstance(lake, LakeBase) else None
        self._where = lake if isinstance(lake, reopen.LakeAddress) else None
        if self._lake is None and self._where is None:
            assert not isinstance(lake, (LakeBase, reopen.LakeAddress))
            self._where = reopen.LakeAddress(_locate(lake), catalog, cache, dict(lake_options or {}), Lake)
        self.metadata = dict(metadata or {})
        if self.metadata:
            self.lake.check_metadata(self.metadata)  # bad defaults fail here, not at the first write

    @property
    def lake(self) -> Lake:
        """The lake this filesystem reads and writes (opened on first use, once per process)."""
        if self._lake is None or (self._where is not None and self._lake is not reopen.lake_for(self._where)):
            assert self._where is not None
            self._lake = reopen.lake_for(self._where)
        lake = self._lake
        if not isinstance(lake, Lake):
            raise TypeError(f"limnos:// needs a limnos.Lake, not {type(lake).__name__}")
        return lake

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the lake's address and the write metadata: no connection and no credential travels."""
        where = self._where if self._where is not None else reopen.address_of(self.lake)
        safe = reopen.LakeAddress(where.path, where.catalog, where.cache, reopen.public_options(where.options), where.facade)
        return (_rebuild, (safe, self.metadata))

    # -- paths ---------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """``limnos://raw/x.csv`` -> ``raw/x.csv`` (lists element by element)."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        for prefix in (f"{PROTOCOL}://", f"{PROTOCOL}:"):
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        return path.strip("/")

    def unstrip_protocol(self, name: str) -> str:
        """``raw/x.csv`` -> ``limnos://raw/x.csv``."""
        return f"{PROTOCOL}://{self._strip_protocol(name)}"

    def _file(self, path: str) -> File | None:
        """The file ``path`` names (not marked read), or None when it names none."""
        try:
            return self.lake.resolve(path) if path else None
        except (FileNotFound, InvalidName, InvalidRef):
            return None

    def _children(self, prefix: str) -> Iterator[File]:
        """The latest version of every name under the folder ``prefix`` (all names for the root)."""
        try:
            yield from self.lake.iter_ls(f"{prefix}/" if prefix else "")
        except InvalidName:
            return

    @staticmethod
    def _file_info(file: File, name: str | None = None) -> dict[str, Any]:
        """One file's fsspec info: size and type, plus hash, version, id and times."""
        return {"name": name or file.name, "size": file.size, "type": "file", "hash": file.hash,
                "version": file.version, "id": file.id, "ref": file.ref, "created": file.created_at.timestamp(),
                "mtime": file.created_at, "kind": file.kind}

    @staticmethod
    def _dir_info(name: str) -> dict[str, Any]:
        return {"name": name, "size": 0, "type": "directory"}

    # -- listing -------------------------------------------------------------
    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Size, type, hash, version, id and created time of a file; a folder when names are under ``path``.

        Raises:
            PathNotFound: nothing in the lake has that name, ref or prefix.
        """
        path = self._strip_protocol(path)
        file = self._file(path)
        if file is not None:
            return self._file_info(file, path)
        if not path or next(self._children(path), None) is not None:
            return self._dir_info(path)
        raise PathNotFound(f"no file or folder {path!r} in the lake", hint="see lake.ls()", path=path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The files and folders directly in the folder ``path`` (a file lists itself).

        Raises:
            PathNotFound: nothing in the lake has that name or prefix.
        """
        path = self._strip_protocol(path)
        entries: dict[str, dict[str, Any]] = {}
        start = len(path) + 1 if path else 0
        for file in self._children(path):
            rest = file.name[start:]
            if "/" in rest:
                folder = file.name[: start + rest.index("/")]
                entries.setdefault(folder, self._dir_info(folder))
            else:
                entries[file.name] = self._file_info(file)
        if not entries:
            single = self._file(path)
            if single is not None:
                entries[path] = self._file_info(single, path)
            elif path:
                raise PathNotFound(f"no file or folder {path!r} in the lake", hint="see lake.ls()", path=path)
        out = [entries[k] for k in sorted(entries)]
        return out if detail else [e["name"] for e in out]

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False,
             **kwargs: Any) -> Any:
        """Every file under ``path`` (latest versions), from one listing; folders too with ``withdirs``."""
        path = self._strip_protocol(path)
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        found: dict[str, dict[str, Any]] = {}
        start = len(path) + 1 if path else 0
        for file in self._children(path):
            parts = file.name[start:].split("/")
            if withdirs:
                for depth in range(1, len(parts)):
                    if maxdepth is None or depth <= maxdepth:
                        folder = file.name[: start] + "/".join(parts[:depth])
                        found.setdefault(folder, self._dir_info(folder))
            if maxdepth is None or len(parts) <= maxdepth:
                found[file.name] = self._file_info(file)
        if not found:
            single = self._file(path)
            if single is not None:
                found[path] = self._file_info(single, path)
        if withdirs and path and found and path not in found and self.isdir(path):
            found[path] = self._dir_info(path)
        names = sorted(found)
        return {n: found[n] for n in names} if detail else names

    def created(self, path: str) -> Any:
        """When the file version was committed (UTC)."""
        return self.info(path)["mtime"]

    def modified(self, path: str) -> Any:
        """When the file version was committed (UTC): a version never changes after."""
        return self.created(path)

    def ukey(self, path: str) -> str:
        """The content hash: a unique key of the bytes."""
        info = self.info(path)
        return str(info.get("hash") or info.get("id") or path)

    # -- reading -------------------------------------------------------------
    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Open a file version for reading (``rb``), or a new version for writing (``wb``, ``xb``).

        Raises:
            PathNotFound: reading a name that is not in the lake.
            DestinationExists: ``xb`` on a name that has a version already.
            UnsupportedMode: append or update modes.
        """
        path = self._strip_protocol(path)
        if mode in _READ_MODES:
            file = self._get(path)
            return file.open("rb")
        if mode in _WRITE_MODES:
            if mode == "xb" and self._file(path) is not None:
                raise DestinationExists(f"{path!r} exists in the lake; open it with 'wb' to write a new version", path=path)
            metadata = {**self.metadata, **dict(kwargs.get("metadata") or {})}
            return LakeWriteFile(self.lake, path, metadata or None)
        raise UnsupportedMode(f"a lake file is written once and never changes; open it with 'rb', 'wb' or 'xb', "
                              f"not {mode!r}", mode=mode)

    def _get(self, path: str) -> File:
        """The file ``path`` names, marked read by the lake's current run.

        Raises:
            PathNotFound: it names no file.
        """
        try:
            return self.lake.get(path)
        except (FileNotFound, InvalidName, InvalidRef):
            raise PathNotFound(f"no file {path!r} in the lake", hint="see lake.ls()", path=path) from None

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """The bytes of a file version, or of ``[start, end)`` (negative values count from the end)."""
        path = self._strip_protocol(path)
        file = self._get(path)
        size = file.size
        begin = 0 if start is None else (max(size + start, 0) if start < 0 else min(start, size))
        stop = size if end is None else (max(size + end, 0) if end < 0 else min(end, size))
        with file.open("rb") as f:
            if begin:
                f.seek(begin)
            data: bytes = f.read(max(stop - begin, 0)) if (begin or stop != size) else f.read()
        return data

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kwargs: Any) -> None:
        """Copy a file version to a local path (a folder becomes a local folder)."""
        rpath = self._strip_protocol(rpath)
        if outfile is None and not isinstance(lpath, (str, os.PathLike)):
            outfile = lpath  # a file object
        if outfile is None and self._file(rpath) is None and self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return
        source = self._get(rpath).local_path()
        if outfile is not None:
            with open(source, "rb") as f:
                shutil.copyfileobj(f, outfile)
            return
        parent = os.path.dirname(os.fspath(lpath))
        if parent:
            os.makedirs(parent, exist_ok=True)
        shutil.copyfile(source, lpath)

    # -- writing -------------------------------------------------------------
    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Commit ``value`` as a new version of ``path`` (``mode="create"``: only if the name is new)."""
        with self._open(path, "xb" if mode == "create" else "wb", **kwargs) as f:
            f.write(value)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite", **kwargs: Any) -> None:
        """Add a local file as ``rpath`` (``lake.add``: unchanged bytes make no new version)."""
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            return  # folders exist through their files
        if mode == "create" and self._file(rpath) is not None:
            raise DestinationExists(f"{rpath!r} exists in the lake", path=rpath)
        metadata = {**self.metadata, **dict(kwargs.get("metadata") or {})}
        self.lake.add(lpath, name=rpath, metadata=metadata or None)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """A new version of ``path2`` with ``path1``'s bytes, made from it (its lineage input)."""
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if self._file(path1) is None and self.isdir(path1):
            return  # folders exist through their files
        source = self._get(path1).local_path()
        metadata = {**self.metadata, **dict(kwargs.get("metadata") or {})}
        with self.lake.create(path2, metadata=metadata or None) as w:
            shutil.copyfile(source, w.path)

    def rm_file(self, path: str) -> None:
        """Delete a name (every version) or the one version ``name@N`` names; folders need nothing.

        As on any filesystem, files made from it stay: their lineage shows it as
        removed (``lake.rm(ref, keep_dependents=True)``). Its bytes stay until ``lake.gc()``.

        Raises:
            FileLocked: it is locked (``lake.unlock`` it first).
        """
        path = self._strip_protocol(path)
        found = self._file(path)
        if found is None:
            if path and self.isdir(path):
                return
            raise PathNotFound(f"no file {path!r} in the lake", hint="see lake.ls()", path=path)
        if path == found.name:  # a name: every version, newest first
            for version in reversed(self.lake.history(found.name)):
                self.lake.rm(version, keep_dependents=True)
        else:
            self.lake.rm(found, keep_dependents=True)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete files (``recursive``: everything under a folder)."""
        for p in reversed(self.expand_path(path, recursive=recursive, maxdepth=maxdepth)):
            if self._file(self._strip_protocol(p)) is not None:
                self.rm_file(p)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do: a folder exists through the names under it."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to do: a folder exists through the names under it."""

    def rmdir(self, path: str) -> None:
        """Nothing to do: a folder goes when its last name does."""


class LakeWriteFile(io.BufferedWriter):
    """A new version being written through ``limnos://``: a staging file, committed when closed.

    A ``with`` block (this file's, or ``fsspec.open``'s) that raises commits
    nothing, and neither does a file dropped without ``close()``: a partial
    file never becomes a version. After ``close()``, :attr:`file` is the new File.
    """

    def __init__(self, lake: Lake, name: str, metadata: Mapping[str, Any] | None) -> None:
        self._creating = lake.create(name, metadata=metadata)
        self._writer = self._creating.__enter__()  # validates the name and metadata; nothing is written yet
        self._pending = sys.exc_info()[1]  # an exception already in flight when opened does not abort the write
        self._done = False
        super().__init__(io.FileIO(self._writer.path, "w"))

    @property
    def file(self) -> File | None:
        """The committed File, once closed (None before, or when the write was abandoned)."""
        return self._writer.file

    def close(self) -> None:
        """Flush and commit the new version; inside an exception's unwinding, abandon it instead."""
        if self._done:
            return
        failing = sys.exc_info()[1]
        if failing is not None and failing is not self._pending:
            self.abandon(failing)
            return
        self._done = True
        try:
            super().close()
        except BaseException as exc:
            self._creating.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._creating.__exit__(None, None, None)

    def abandon(self, exc: BaseException | None = None) -> None:
        """Drop what was written: no version is committed."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            super().close()
        error = exc if exc is not None else _Abandoned()
        with contextlib.suppress(_Abandoned):
            self._creating.__exit__(type(error), error, error.__traceback__)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abandon(exc)
        else:
            self.close()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):  # True when __init__ failed: nothing was opened
            self.abandon()


class _Abandoned(Exception):
    """Thrown into ``lake.create`` to drop a write nobody closed."""


def _rebuild(address: reopen.LakeAddress, metadata: dict[str, Any]) -> LimnosFileSystem:
    """A pickled ``limnos://`` filesystem in this process, over this process's lake at ``address``."""
    return LimnosFileSystem(lake=address, metadata=metadata)


__all__ = ["PROTOCOL", "LakeWriteFile", "LimnosFileSystem"]
