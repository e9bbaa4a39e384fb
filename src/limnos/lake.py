"""``Lake``: the public facade over the kernel and the features.

:class:`~limnos.core.base.LakeBase` holds the catalog, the store, runs and
commits; this class adds every feature on top (add, query, lineage, steps,
datasources, folios, sync, checks, protection), importing each downward.
A commit always goes: objects first, then (inside the catalog transaction,
after its rows are inserted) the records file, then COMMIT.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from .core import opening
from .core.base import LakeBase
from .core.files import File, Writer
from .core.runs import current_call
from .errors import FileNotFound, InvalidName, MetadataError
from .names import validate_name
from .store.links import LinkMode, place

if TYPE_CHECKING:
    from .core.recovery import Report
    from .core.remotes import RemoteSet  # noqa: F401
    from .datasources.source import Datasource, SavedDataset
    from .folio.folio import Folio
    from .ops.add import Status
    from .ops.cache import CacheReport
    from .ops.lineage import Lineage
    from .ops.query import Result
    from .steps.stale import StaleOutput
    from .steps.step import StepRecord
    from .store.transfer import TransferReport


class Lake(LakeBase):
    """A data lake: a SQL catalog plus a content-addressed store.

    Get one with :func:`limnos.init` or :func:`limnos.open`.
    """

    # -- what the kernel leaves to the features -------------------------------------
    def open_reference(self, file: File) -> IO[bytes]:
        """Open a reference file's external bytes, with its datasource's storage options."""
        from .datasources.source import reference_fetcher

        return reference_fetcher(self, file).open_reference(file._row.uri)  # type: ignore[arg-type]

    def reference_path(self, file: File) -> str:
        """A local copy of a reference file's external bytes."""
        from .datasources.source import reference_fetcher

        return reference_fetcher(self, file).reference_path(file._row.uri, file.size, None)  # type: ignore[arg-type]

    def step_of(self, file: File) -> StepRecord | None:
        """The ``@step`` execution that made ``file`` (function, code link, params, inputs), or None."""
        from .steps.step import step_of

        return step_of(self, file)

    def load_folio(self, file: File) -> Folio:
        """The folio ``file`` holds (saved with :meth:`save_folio`); items are read when first used."""
        from .folio.in_lake import load_from_file

        return load_from_file(file)

    # ----------------------------------------------------------------- write
    @contextlib.contextmanager
    def create(self, name: str, metadata: Mapping[str, Any] | None = None) -> Iterator[Writer]:
        """Write a new file (or a new version of a name) through a staging file.

        Inside a ``@step`` of this lake the file is one of the step's outputs, as
        with :func:`limnos.output`: committed with the step, ``w.file`` set when it returns.

        >>> with lake.create("reports/summary.csv", metadata={"project": "x"}) as w:
        ...     df.to_csv(w.path)
        """
        step_call = current_call(self)
        if step_call is not None:
            # Inside a @step: the file is one of the step's outputs, committed with it.
            with step_call.output(name, metadata) as writer:
                yield writer
            return
        validate_name(name)
        self.check_metadata(metadata)  # fail on bad metadata before any work
        suffix = os.path.splitext(name)[1]
        staged = self.staging_path(suffix if len(suffix) <= 16 else "")
        writer = Writer(name, staged)
        try:
            yield writer
            digest, size = self.store_staged(staged)
            commit = self.new_commit("create")
            row = commit.add_file(name, digest, size, inputs=self.current_inputs(), metadata=metadata)
            commit.write()
            writer.file = commit.file(row)
        finally:
            if os.path.exists(staged):
                os.unlink(staged)

    def add(self, path: str | os.PathLike[str], name: str | None = None,
            metadata: Mapping[str, Any] | None = None, move: bool = False) -> File | list[File]:
        """Add a local file or a whole folder (recursively, in one commit).

        Re-adding unchanged content makes no new version. The user's file is
        copied (or reflinked), never hard-linked, into the store.
        """
        from .ops.add import add_path

        return add_path(self, os.fspath(path), name, metadata, move)

    def status(self, path: str | os.PathLike[str], name: str | None = None) -> Status:
        """Compare a local file or folder with the lake, using the stat cache."""
        from .ops.add import status_path

        return status_path(self, os.fspath(path), name)

    def save_folio(self, name: str, folio: Folio, metadata: Mapping[str, Any] | None = None) -> File:
        """Store a folio as the file ``name``; its items become lake files under ``.folios/<name>/``.

        Identical item bytes are one object across folios. The folio file lists
        its items, the lake files it references and the run's reads as inputs.
        Load it back with ``lake.get(name).folio()``.
        """
        from .folio.in_lake import save_to_lake

        return save_to_lake(self, name, folio, metadata)

    def set_metadata(self, ref: str | File, metadata: Mapping[str, Any]) -> File:
        """Set typed metadata on a file; every change is kept with its time."""
        file = self.resolve(ref)
        if not metadata:
            raise MetadataError("set_metadata needs at least one key=value")
        commit = self.new_commit("metadata")
        commit.add_metadata([file.id], metadata)
        commit.write()
        return self.resolve(file.id)

    def unset_metadata(self, ref: str | File, keys: Sequence[str] | str) -> File:
        """Remove keys from a file's metadata; their past values stay readable with ``as_of``."""
        file = self.resolve(ref)
        keys = [keys] if isinstance(keys, str) else list(keys)
        current = file.metadata
        unknown = [k for k in keys if k not in current]
        if unknown:
            raise MetadataError(f"{file.ref} has no metadata key {', '.join(map(repr, unknown))}; see 'limnos info {file.ref}'")
        commit = self.new_commit("metadata")
        commit.add_metadata([file.id], None, keys)
        commit.write()
        return self.resolve(file.id)

    # ------------------------------------------------------------------ read
    def get(self, ref: str | File) -> File:
        """A file by name (latest version), ``name@N``, or id. Marks it as read."""
        file = self.resolve(ref)
        self.mark_read(file)
        return file

    def ls(self, prefix: str = "") -> list[File]:
        """The latest version of every name under ``prefix``."""
        if prefix:
            _validate_prefix(prefix)
        return self.files_with_metadata(self.catalog.latest(prefix))

    def history(self, name: str) -> list[File]:
        """Every version of a name, oldest first."""
        validate_name(name)
        rows = self.catalog.history(name)
        if not rows:
            raise FileNotFound(f"no file named {name!r} in the lake; see 'limnos ls'")
        return self.files_with_metadata(rows)

    def query(self, filters: Mapping[str, Any] | None = None, *, latest: bool = False, **equals: Any) -> Result:
        """Files whose metadata equals every given value: ``lake.query(ticket="abc-123")``.

        ``filters`` takes keys that are not Python identifiers (or are named ``latest``);
        ``latest=True`` keeps only the newest version of each name.
        """
        from .ops.query import Result

        return Result(self, {**dict(filters or {}), **equals}, latest=latest)

    def checkout(self, ref: str | File, dest: str, link: LinkMode | None = None) -> str:
        """Put a read-only working copy of a file at ``dest`` (reflink, else copy)."""
        file = self.get(ref)
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(file.name))
        if os.path.lexists(dest):
            raise FileExistsError(f"{dest} exists; remove it or choose another destination")
        place(file.local_path(), dest, link or self.link)
        return dest

    def lineage(self, ref: str | File, direction: str = "up", depth: int | None = None) -> Lineage:
        """The graph of files and the steps/runs between them: ``up`` (made from), ``down`` (made into), ``both``."""
        from .ops.lineage import build_lineage

        return build_lineage(self, self.resolve(ref), direction, depth)

    def downstream(self, ref: str | File, depth: int | None = None) -> list[File]:
        """Every file made from ``ref``, directly or through other files, nearest first."""
        from .ops.lineage import downstream_files

        return downstream_files(self, self.resolve(ref), depth)

    # ----------------------------------------------------------------- steps
    def step(self, fn: Any = None, *, version: Any = None, cache: bool = True,
             allow_pickle: bool = False) -> Any:
        """``@lake.step``: a cached, recorded pipeline step in this lake (see :func:`limnos.step`)."""
        from .steps.step import step

        return step(fn, lake=self, version=version, cache=cache, allow_pickle=allow_pickle)

    def steps(self, failed: bool | None = None, function: str | None = None,
              limit: int | None = None) -> list[StepRecord]:
        """Recorded step executions, oldest first (``failed=True``: only failures)."""
        from .steps.step import list_steps

        return list_steps(self, failed=failed, function=function, limit=limit)

    def stale(self) -> list[StaleOutput]:
        """Current step outputs whose step code, version or input files changed since they were made."""
        from .steps.stale import find_stale

        return find_stale(self)

    # ----------------------------------------------------------- datasources
    def datasource(self, name: str, root: str | os.PathLike[str] | None = None, *,
                   storage_options: Mapping[str, Any] | None = None, scan: bool | str = "background") -> Datasource:
        """The datasource ``name``; created over ``root`` (a lake prefix, a folder or any fsspec URL) if new.

        A new datasource is scanned in a background thread (``scan=True``: before
        returning; ``False``: not at all). ``storage_options`` (credentials,
        endpoints) stay on this machine, in ``state/datasources.yaml``.
        """
        from .datasources.source import get_or_create

        return get_or_create(self, name, root, storage_options=storage_options, scan=scan)

    def datasources(self) -> list[Datasource]:
        from .datasources.source import list_datasources

        return list_datasources(self)

    def dataset(self, name: str) -> Datasource:
        """A saved dataset: its datasource with the saved query (and pinned time) applied."""
        from .datasources.source import load_dataset

        return load_dataset(self, name)

    def datasets(self) -> list[SavedDataset]:
        from .datasources.source import list_datasets

        return list_datasets(self)

    # ---------------------------------------------------------------- checks
    def fsck(self, read_data: bool = False, subset: float | None = None) -> Report:
        from .ops.fsck import fsck

        return fsck(self, read_data=read_data, subset=subset)

    def gc(self, dry_run: bool = True, grace: dt.timedelta = dt.timedelta(days=1)) -> Report:
        from .ops.gc import gc

        return gc(self, dry_run=dry_run, grace=grace)

    def reindex(self, force: bool = False) -> Report:
        from .ops.reindex import reindex

        return reindex(self, force=force)

    # ------------------------------------------------------ remotes and sync
    def push(self, refs: Sequence[str] | None = None, remote: str | None = None,
             jobs: int | None = None, pack_size: int = 64 << 20) -> TransferReport:
        """Upload the objects and records files a remote lacks (all, or the files ``refs`` name).

        Objects up to 1 MiB travel in packs of up to ``pack_size`` bytes (0: one request each).
        """
        from .ops.sync import push

        return push(self, refs, remote, jobs, pack_size)

    def pull(self, refs: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None,
             download: bool = True) -> TransferReport:
        """Import a remote's new records, then download the objects ``refs`` name (default: latest of all).

        A ref may be a name, ``name@N``, an id, a prefix (``raw/``), ``.``, or a
        script (``train.py``): the files that runs of that script read.
        """
        from .ops.sync import pull

        return pull(self, refs, remote, jobs, download)

    def cache_size(self) -> CacheReport:
        from .ops.cache import size

        return size(self)

    def prune_cache(self, max_size: int | str, keep_recent: float = 60.0) -> CacheReport:
        """Shrink this machine's cache of a remote lake to ``max_size`` (``"10GB"``), LRU first."""
        from .ops.cache import prune

        return prune(self, max_size, keep_recent)

    # ---------------------------------------------------------- protection
    def lock(self, ref: str | File) -> File:
        """Protect a file: ``rm`` (also by cascade) refuses it, and ``gc`` never touches its object."""
        from .ops.protect import lock

        return lock(self, ref)

    def unlock(self, ref: str | File) -> File:
        from .ops.protect import unlock

        return unlock(self, ref)

    def rm(self, ref: str | File, cascade: bool = False) -> list[File]:
        """Delete an unlocked file from the catalog; ``cascade`` also deletes what was made from it."""
        from .ops.protect import rm

        return rm(self, ref, cascade)

    def is_locked(self, ref: str | File) -> bool:
        return bool(self.catalog.locked_ids([self.resolve(ref).id]))


def _validate_prefix(prefix: str) -> None:
    try:
        validate_name(prefix.rstrip("/") or "x")
    except InvalidName as exc:
        raise InvalidName(f"bad prefix {prefix!r}: {exc}") from None


def init(path: str | os.PathLike[str] = opening.DEFAULT_DIR, catalog: str | None = None, link: str = "copy",
         cache: str | None = None, **storage_options: Any) -> Lake:
    """Create a lake and return it open.

    ``path`` is a local folder (``.limnos`` by default) or any fsspec URL
    (``s3://bucket/lake``; ``storage_options`` go to fsspec). ``catalog`` is a
    SQLAlchemy URL (``postgresql://user@host/db``); by default a SQLite file
    inside a local lake, or in this machine's cache for a remote one. A
    password in the URL is used now but never saved: later opens take it from
    ``PGPASSWORD`` or ``~/.pgpass``. ``link`` is how working copies are made
    (``copy``, ``hardlink`` or ``symlink``); ``cache`` is where a remote lake's
    objects are kept on this machine.

    Raises:
        LakeExists: there is a lake at ``path`` already.
    """
    return opening.init_lake(Lake, path, catalog, link, cache, **storage_options)


def open(path: str | os.PathLike[str] | None = None, catalog: str | None = None,
         cache: str | None = None, **storage_options: Any) -> Lake:
    """Open a lake: ``path`` (a folder or URL), else ``$LIMNOS_LAKE``, else the nearest ``.limnos/``.

    Records files that a crash left unapplied are rolled forward first.

    Raises:
        LakeNotFound: there is no lake there.
    """
    return opening.open_lake(Lake, path, catalog, cache, **storage_options)


find_lake = opening.find_lake
opening.register_facade(Lake)

__all__ = ["Lake", "find_lake", "init", "open"]
