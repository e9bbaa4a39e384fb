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
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from .core import opening
from .core.base import LakeBase
from .core.files import File, Writer
from .core.runs import current_call
from .errors import DestinationExists, FileNotFound, InvalidName, LimnosError, MetadataError
from .names import validate_name
from .store.links import LinkMode, place

if TYPE_CHECKING:
    from .catalog.expressions import Condition
    from .core.recovery import Report
    from .datasources.source import Datasource, SavedDataset
    from .folio.folio import Folio
    from .ops.add import AddResult, Status
    from .ops.cache import CacheReport
    from .ops.lineage import Lineage
    from .ops.query import FileView, Result
    from .steps.stale import StaleOutput
    from .steps.step import Step, StepDecorator, StepRecord, Version
    from .store.transfer import TransferReport
    from .web.server import UiServer

P = ParamSpec("P")
R = TypeVar("R")


class Lake(LakeBase):
    """A data lake: a SQL catalog plus a content-addressed store.

    Get one with :func:`limnos.init` or :func:`limnos.open`, and close it with
    :meth:`close` (or use it as a context manager).
    """

    def __enter__(self) -> Lake:
        """``with limnos.open() as lake:`` gives this Lake (typed as one); leaving closes it."""
        return self

    # -- what the kernel leaves to the features -------------------------------------
    def open_reference(self, file: File) -> IO[bytes]:
        """Open a reference file's external bytes, with its datasource's storage options.

        Raises:
            LimnosError: ``file`` is not a reference.
        """
        from .datasources.source import reference_fetcher

        return reference_fetcher(self, file).open_reference(_reference_uri(file))

    def reference_path(self, file: File) -> str:
        """A local copy of a reference file's external bytes.

        Raises:
            LimnosError: ``file`` is not a reference.
        """
        from .datasources.source import reference_fetcher

        return reference_fetcher(self, file).reference_path(_reference_uri(file), file.size, None)

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

        Args:
            name: the file's name; an existing name gets a new version.
            metadata: typed metadata to set on it.

        Returns:
            A context manager yielding a :class:`~limnos.core.files.Writer`: write to
            ``w.path`` (or ``w.write_text``...); on a clean exit the bytes are
            stored and committed, and ``w.file`` is the new File. On an exception
            nothing is kept.

        Raises:
            InvalidName: ``name`` is not a valid file name.
            MetadataError: ``metadata`` cannot be stored (raised before any work).
            StoreFull: the lake's disk is full; nothing is committed and the new object is removed.
        """
        metadata = self.with_defaults(metadata)
        step_call = current_call(self)
        if step_call is not None:
            # Inside a @step: the file is one of the step's outputs, committed with it.
            with step_call.output(name, metadata) as writer:
                yield writer
            return
        name = validate_name(name)  # in NFC, the one spelling of a name
        self.check_metadata(metadata)  # fail on bad metadata before any work
        suffix = os.path.splitext(name)[1]
        staged = self.staging_path(suffix if len(suffix) <= 16 else "")
        writer = Writer(name, staged)
        try:
            try:
                yield writer
            except OSError as exc:  # the staging file is on the lake's disk: a full one is the lake's to explain
                from .ops.add import store_full_error

                full = store_full_error(exc, self.cache.root, f"writing {name}")
                if full is not None:
                    raise full from exc
                raise
            self._commit_created(writer, staged, metadata)
        finally:
            if os.path.exists(staged):
                os.unlink(staged)

    def _commit_created(self, writer: Writer, staged: str, metadata: Mapping[str, Any] | None) -> None:
        """Store a finished staging file and commit it as ``writer.name``; on failure remove the new object.

        Raises:
            StoreFull: the disk is full (the object, if new, is removed again).
        """
        from .ops.add import add_note, discard_new_objects, store_full_error

        digest, new = None, False
        try:
            with self.writing():  # gc keeps the object, new or reused, until the commit names it
                digest, size, new = self.store_staged_new(staged)
                commit = self.new_commit("create")
                row = commit.add_file(writer.name, digest, size, inputs=self.current_inputs(), metadata=metadata)
                commit.write()
        except BaseException as exc:  # outside writing(): removing the new object waits for the writers in flight
            removed = discard_new_objects(self, [digest]) if new and digest else 0
            if isinstance(exc, KeyboardInterrupt):
                add_note(exc, f"creating {writer.name} was not committed" + ("; its new object was removed" if removed else ""))
            full = store_full_error(exc, self.cache.root, f"creating {writer.name}")
            if full is not None:
                raise full from exc
            raise
        writer.file = commit.file(row)

    def add(self, path: str | os.PathLike[str], name: str | None = None,
            metadata: Mapping[str, Any] | None = None, move: bool = False,
            storage_options: Mapping[str, Any] | None = None) -> AddResult:
        """Add a local file, a whole folder (recursively, in one commit), or a file at a URL.

        Re-adding unchanged content makes no new version. The user's file is
        copied (or reflinked), never hard-linked, into the store. A URL
        (``https://...``, ``s3://...``, any fsspec URL) is streamed into the lake,
        hashed on the way, and its address (credentials masked) is recorded in
        the file's metadata as ``source_url``.

        >>> lake.add("data/raw", name="raw")          # a folder: iterate the result
        >>> model = lake.add("model.pt").file         # a single file: take .file
        >>> lake.add("https://example.org/iris.csv", name="raw/iris.csv")

        Args:
            path: a local file or folder, or a URL.
            name: its name in the lake (for a folder, the prefix of its files' names);
                default: the path relative to the cwd, or the base name outside it;
                for a URL, the last segment of its path.
            metadata: typed metadata set on every file added.
            move: delete the local files once they are committed (not for a URL).
            storage_options: for a URL's file system (endpoint, credentials...); never recorded.

        Returns:
            An :class:`~limnos.ops.add.AddResult`: a ``list[File]`` of the latest
            version of every name, in name order, with ``.file`` (the single
            File), ``.new_versions`` and ``.unchanged`` (counts).

        Raises:
            SourceNotFound: ``path`` does not exist (a URL: the server has no such file).
            InvalidName: ``name``, or a name a file would get, is not valid.
            MetadataError: ``metadata`` cannot be stored (nothing is written then).
            DownloadFailed: a URL could not be read whole; nothing was written.
        """
        path = os.fspath(path)
        metadata = self.with_defaults(metadata)
        from .ops.add_url import add_url, is_url

        if is_url(path):
            if move:
                raise LimnosError("move=True deletes local files; a URL's file is left where it is")
            return add_url(self, path, name, metadata, storage_options)
        from .ops.add import add_path

        return add_path(self, path, name, metadata, move)  # it holds writing() from store to commit

    def status(self, path: str | os.PathLike[str], name: str | None = None) -> Status:
        """Compare a local file or folder with the latest versions in the lake, using the stat cache.

        Args:
            path: a local file or folder.
            name: its name (prefix) in the lake, as given to :meth:`add`.

        Returns:
            A :class:`~limnos.ops.add.Status`: names unchanged, modified, new and deleted.

        Raises:
            SourceNotFound: ``path`` does not exist.
        """
        from .ops.add import status_path

        return status_path(self, os.fspath(path), name)

    def save_folio(self, name: str, folio: Folio, metadata: Mapping[str, Any] | None = None) -> File:
        """Store a folio as the file ``name``; its items become lake files under ``.folios/<name>/``.

        Identical item bytes are one object across folios. The folio file lists
        its items, the lake files it references and the run's reads as inputs.
        Load it back with ``lake.get(name).folio()``.

        Returns:
            The folio file.

        Raises:
            FolioError: an item cannot be stored.
            MetadataError: ``metadata`` cannot be stored.
        """
        from .folio.in_lake import save_to_lake

        metadata = self.with_defaults(metadata)
        with self.writing():  # gc keeps the items' objects, new or reused, until the commit names them
            return save_to_lake(self, name, folio, metadata)

    def set_metadata(self, ref: str | File, metadata: Mapping[str, Any]) -> File:
        """Set typed metadata on a file; every change is kept with its time.

        Values are int, float, bool, str, datetime, bytes (a blob), dict or list;
        numpy scalars count as the Python value they hold, a ``datetime.date`` is
        stored as midnight UTC, and ``None`` unsets the key.

        Returns:
            The file, with its metadata re-read.

        Raises:
            FileNotFound: ``ref`` names no file.
            MetadataError: ``metadata`` is empty, or a key or value cannot be stored.
            SchemaError: a value's type differs from the type its key holds.
        """
        file = self.resolve(ref)
        if not metadata:
            raise MetadataError("set_metadata needs at least one key=value", ref=file.ref)
        with self.writing():  # a blob value is an object: gc keeps it until the commit names it
            commit = self.new_commit("metadata")
            commit.add_metadata([file.id], metadata)
            commit.write()
        return self.resolve(file.id)

    def unset_metadata(self, ref: str | File, keys: Sequence[str] | str) -> File:
        """Remove keys from a file's metadata; their past values stay readable with ``as_of``.

        Returns:
            The file, with its metadata re-read.

        Raises:
            FileNotFound: ``ref`` names no file.
            MetadataError: the file has no such key (nothing is removed then).
        """
        file = self.resolve(ref)
        keys = [keys] if isinstance(keys, str) else list(keys)
        current = file.metadata
        unknown = [k for k in keys if k not in current]
        if unknown:
            raise MetadataError(f"{file.ref} has no metadata key {', '.join(map(repr, unknown))}",
                                hint=f"see lake.get({file.ref!r}).metadata", key=unknown[0], ref=file.ref)
        commit = self.new_commit("metadata")
        commit.add_metadata([file.id], None, keys)
        commit.write()
        return self.resolve(file.id)

    # ------------------------------------------------------------------ read
    def get(self, ref: str | File) -> File:
        """A file by name (latest version), ``name@N``, or id. Marks it as read by the current run.

        Raises:
            FileNotFound: ``ref`` names no file.
            InvalidRef: ``ref`` is malformed.
        """
        file = self.resolve(ref)
        self.mark_read(file)
        return file

    def ls(self, prefix: str = "") -> list[File]:
        """The latest version of every name under ``prefix``, sorted by name.

        Raises:
            InvalidName: ``prefix`` is not a valid name prefix.
        """
        return list(self.iter_ls(prefix))

    def iter_ls(self, prefix: str = "", page: int = 1000, after: str | None = None) -> Iterator[File]:
        """What :meth:`ls` returns, read from the catalog ``page`` files at a time, for listings of any length.

        The first files come after one small query; a writer that commits while
        the listing runs may show in its later pages (each name once). ``after``
        starts after that name: a listing resumed where a page ended (``limnos ui``).

        Raises:
            InvalidName: ``prefix`` is not a valid name prefix.
        """
        if prefix:  # checked now, not at the first next(): nothing is printed before a bad prefix fails
            prefix = _validate_prefix(prefix)
        self.catch_up()
        return (f for rows in self.catalog.latest_pages(prefix, page, after) for f in self.files_with_metadata(rows))

    def history(self, name: str) -> list[File]:
        """Every version of a name, oldest first (deleted versions are left out).

        Raises:
            FileNotFound: no version of ``name`` is in the lake.
            InvalidName: ``name`` is not a valid file name.
        """
        name = validate_name(name)
        self.catch_up()
        rows = self.catalog.history(name)
        if not rows:
            raise FileNotFound(f"no file named {name!r} in the lake", hint="see lake.ls()", ref=name)
        return self.files_with_metadata(rows)

    def query(self, expr: str | Condition | Mapping[str, Any] | None = None, *, latest: bool = False,
              **equals: Any) -> Result:
        """Files matching a query: ``lake.query('user == "ana" and ticket startswith "abc"')``.

        ``expr`` is query text (the syntax of ``limnos query`` and ``limnos ds query``),
        a condition built on :attr:`files` (``lake.files["size"] > 100``), or a dict of
        key -> value that must be equal; ``**equals`` is the shorthand for the last,
        ``lake.query(ticket="abc-123")``. Automatic fields (name, version, size,
        created_at, user, host, script, git_commit, step...) are queried by their
        names, every other name is a metadata key. ``latest=True`` keeps only the
        newest version of each name.

        Returns:
            A lazy :class:`~limnos.ops.query.Result`; the query runs when it is first used,
            and raises :class:`~limnos.errors.FieldNotFound` then for a key no file has.

        Raises:
            QuerySyntaxError: query text does not parse.
            MetadataError: a filter key could never name metadata (not a str, a NUL...).
        """
        from .ops.query import query_files

        self.catch_up()
        return query_files(self, expr, latest, equals)

    @property
    def files(self) -> FileView:
        """Every file version as a view queried like a datasource: ``files[files["user"] == "ana"]``."""
        from .ops.query import FileView

        self.catch_up()
        return FileView(self)

    def checkout(self, ref: str | File, dest: str, link: LinkMode | None = None) -> str:
        """Put a read-only working copy of a file at ``dest`` (reflink, else copy).

        Args:
            ref: the file.
            dest: a path, or a folder to put the file in under its base name (an existing folder, or a
                path ending in ``/``). Missing folders on the way are created.
            link: how to make the copy (``copy``, ``hardlink``, ``symlink``); default: the lake's setting.

        Returns:
            The path of the working copy.

        Raises:
            FileNotFound: ``ref`` names no file.
            DestinationExists: something is at the destination already (a ``FileExistsError``).
        """
        file = self.get(ref)
        if os.path.isdir(dest) or dest.endswith(("/", os.sep)):
            os.makedirs(dest, exist_ok=True)
            dest = os.path.join(dest, os.path.basename(file.name))
        elif os.path.dirname(dest):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.lexists(dest):
            raise DestinationExists(f"{dest} exists; remove it or choose another destination", path=dest)
        place(file.local_path(), dest, link or self.link)
        return dest

    def lineage(self, ref: str | File, direction: str = "up", depth: int | None = None) -> Lineage:
        """The graph of files and the steps/runs between them: ``up`` (made from), ``down`` (made into), ``both``.

        Args:
            ref: the file to start from.
            direction: ``up``, ``down`` or ``both``.
            depth: how many file-to-file hops to follow; None: all.

        Returns:
            A :class:`~limnos.ops.lineage.Lineage` (nodes, edges; ``to_json``, ``to_dot``, ``to_mermaid``).

        Raises:
            FileNotFound: ``ref`` names no file.
            InvalidRef: ``direction`` or ``depth`` is not an accepted value.
        """
        from .ops.lineage import build_lineage

        return build_lineage(self, self.resolve(ref), direction, depth)

    def downstream(self, ref: str | File, depth: int | None = None) -> list[File]:
        """Every file made from ``ref``, directly or through other files, nearest first.

        Raises:
            FileNotFound: ``ref`` names no file.
        """
        from .ops.lineage import downstream_files

        return downstream_files(self, self.resolve(ref), depth)

    # ----------------------------------------------------------------- steps
    @overload
    def step(self, fn: Callable[P, R], *, version: Version = None, cache: bool = True,
             allow_pickle: bool = False) -> Step[P, R]: ...

    @overload
    def step(self, fn: None = None, *, version: Version = None, cache: bool = True,
             allow_pickle: bool = False) -> StepDecorator: ...

    def step(self, fn: Callable[P, R] | None = None, *, version: Version = None, cache: bool = True,
             allow_pickle: bool = False) -> Step[P, R] | StepDecorator:
        """``@lake.step``: a cached, recorded pipeline step in this lake (see :func:`limnos.step`).

        The step keeps the function's signature and return type for type checkers.
        """
        from .steps.step import step

        if fn is None:
            return step(lake=self, version=version, cache=cache, allow_pickle=allow_pickle)
        return step(fn, lake=self, version=version, cache=cache, allow_pickle=allow_pickle)

    def steps(self, failed: bool | None = None, function: str | None = None,
              limit: int | None = None) -> list[StepRecord]:
        """Recorded step executions, oldest first (``failed=True``: only failures)."""
        from .steps.step import list_steps

        self.catch_up()
        return list_steps(self, failed=failed, function=function, limit=limit)

    def stale(self) -> list[StaleOutput]:
        """Current step outputs whose step code, version or input files changed since they were made."""
        from .steps.stale import find_stale

        self.catch_up()
        return find_stale(self)

    # ----------------------------------------------------------- datasources
    def datasource(self, name: str | None = None, root: str | os.PathLike[str] | None = None, *,
                   id: str | None = None,  # DagsHub's get_datasource(id=) name
                   storage_options: Mapping[str, Any] | None = None, scan: bool | str = "background") -> Datasource:
        """The datasource ``name``; created over ``root`` (a lake prefix, a folder or any fsspec URL) if new.

        ``lake.datasource(id=ds.id)`` gets a datasource by its id instead, as
        DagsHub's ``get_datasource(id=)`` does. A new datasource is scanned in a
        background thread (``scan=True``: before returning; ``False``: not at all).
        ``storage_options`` (credentials, endpoints) stay on this machine, in
        ``state/datasources.yaml``.
        """
        from .datasources.source import get_by_id, get_or_create

        if id is not None:
            return get_by_id(self, id, name=name, root=root, storage_options=storage_options)
        if name is None:
            from .errors import LimnosError

            raise LimnosError("lake.datasource() needs a name (or id=)")
        return get_or_create(self, name, root, storage_options=storage_options, scan=scan)

    def datasources(self) -> list[Datasource]:
        """Every datasource in the lake (not the deleted ones), by name."""
        from .datasources.source import list_datasources

        self.catch_up()
        return list_datasources(self)

    def dataset(self, name: str) -> Datasource:
        """A saved dataset: its datasource with the saved query (and pinned time) applied.

        Raises:
            DatasetNotFound: no dataset has that name.
        """
        from .datasources.source import load_dataset

        return load_dataset(self, name)

    def datasets(self) -> list[SavedDataset]:
        """Every saved dataset (``ds.save_dataset(name)``), by name: its datasource, query and pinned time."""
        from .datasources.source import list_datasets

        return list_datasets(self)

    # ---------------------------------------------------------------- checks
    def fsck(self, read_data: bool = False, subset: float | None = None, repair: bool = False) -> Report:
        """Check that every object the catalog names is in the store; list orphans. Changes nothing unless ``repair``.

        Args:
            read_data: also read every object and check its hash (reads all the bytes).
            subset: with ``read_data``, check only this random share (0.1: 10%).
            repair: replace every corrupt or missing object with a clean copy from the remotes,
                verified against its hash (a corrupt one is moved to ``quarantine/``, never deleted).
                Combine with ``read_data`` to find corruption that kept the size.

        Returns:
            A :class:`~limnos.core.recovery.Report`; ``report.ok`` is False when an
            object is missing or corrupt (``missing``, ``corrupt`` list them;
            ``quarantined`` lists corrupt copies moved aside). With ``repair``, a
            :class:`~limnos.ops.repair.RepairReport`: also ``repaired`` and
            ``unrepaired``, and ``missing``/``corrupt`` keep only what is still bad.

        Raises:
            ValueError: ``subset`` is not in (0, 1].
        """
        if repair:
            from .ops.repair import repair as repair_objects

            return repair_objects(self, read_data=read_data, subset=subset)
        from .ops.fsck import fsck

        return fsck(self, read_data=read_data, subset=subset)

    def gc(self, dry_run: bool = True, grace: dt.timedelta = dt.timedelta(days=1), repack: bool = False) -> Report:
        """Delete the objects no file refers to (deleted files' bytes), older than ``grace``.

        Args:
            dry_run: only report what would go (the default); pass False to delete.
            grace: younger unreferenced objects stay, since a writer may be about to commit them.
            repack: also pack loose small objects (a lake made before packs) and drop loose
                copies of packed objects.

        Returns:
            A :class:`~limnos.core.recovery.Report`: ``deleted`` (or would be) and their ``bytes``.

        Raises:
            GcRefused: the store lacks objects the catalog names (a wrong URL looks
                like that), so nothing was deleted.
        """
        from .ops.gc import gc

        return gc(self, dry_run=dry_run, grace=grace, repack=repack)

    def reindex(self, force: bool = False) -> Report:
        """Rebuild the catalog from the records files in the store.

        Args:
            force: wipe the catalog first when it is not empty.

        Returns:
            A :class:`~limnos.core.recovery.Report`: commits replayed, versions renumbered, files.

        Raises:
            LimnosError: the catalog is not empty and ``force`` is False.
        """
        from .ops.reindex import reindex

        return reindex(self, force=force)

    # ------------------------------------------------------ remotes and sync
    def push(self, refs: Sequence[str] | None = None, remote: str | None = None,
             jobs: int | None = None, pack_size: int = 64 << 20) -> TransferReport:
        """Upload the objects and records files a remote lacks (all, or the files ``refs`` name).

        Objects up to 1 MiB travel in packs of up to ``pack_size`` bytes (0: one request each).

        Args:
            refs: names, ``name@N``, ids, prefixes (``raw/``) or scripts; None: every version of every file.
            remote: the remote's name; None: the default remote.
            jobs: parallel transfers; None: the default.
            pack_size: the most bytes in one pack.

        Returns:
            A :class:`~limnos.store.transfer.TransferReport`: what was sent and skipped.

        Raises:
            RemoteNotFound: no such remote (or none is set).
            FileNotFound: a ref names nothing.
            RemoteError: some transfers failed; pushing again sends the rest.
        """
        from .ops.sync import push

        return push(self, refs, remote, jobs, pack_size)

    def pull(self, refs: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None,
             download: bool = True) -> TransferReport:
        """Import a remote's new records, then download the objects ``refs`` name (default: latest of all).

        A ref may be a name, ``name@N``, an id, a prefix (``raw/``), ``.``, or a
        script (``train.py``): the files that runs of that script read.

        Args:
            refs: what to download; None: the latest version of every file.
            remote: the remote's name; None: the default remote.
            jobs: parallel transfers; None: the default.
            download: False imports the records only; objects come down when first read.

        Returns:
            A :class:`~limnos.store.transfer.TransferReport`: records imported, objects downloaded.

        Raises:
            RemoteNotFound: no such remote (or none is set).
            FileNotFound: a ref names nothing.
            RecordsInvalid: some of the remote's records files are malformed or crafted: they were
                refused (nothing of them written), and the others imported all the same.
            RemoteError: some downloads failed; pulling again fetches the rest.
            IntegrityError: a pack index, pack or object on the remote is damaged (the message names its key).
        """
        from .ops.sync import pull

        return pull(self, refs, remote, jobs, download)

    def cache_size(self) -> CacheReport:
        """How many objects this machine's cache of the lake holds, and their bytes."""
        from .ops.cache import size

        return size(self)

    def prune_cache(self, max_size: int | str, keep_recent: float = 60.0) -> CacheReport:
        """Shrink this machine's cache of a remote lake to ``max_size`` (``"10GB"``), LRU first.

        Objects being read, or used in the last ``keep_recent`` seconds, stay.

        Raises:
            LimnosError: the lake is local (its store is not a cache), or ``max_size`` is not a size.
        """
        from .ops.cache import prune

        return prune(self, max_size, keep_recent)

    # ---------------------------------------------------------- protection
    def lock(self, ref: str | File) -> File:
        """Protect a file: ``rm`` (also by cascade) refuses it, and ``gc`` never touches its object.

        Returns:
            The file (locking a locked file does nothing).

        Raises:
            FileNotFound: ``ref`` names no file.
        """
        from .ops.rm import lock

        return lock(self, ref)

    def unlock(self, ref: str | File) -> File:
        """Remove a file's protection, so that ``rm`` may delete it.

        Returns:
            The file (unlocking a file that is not locked does nothing).

        Raises:
            FileNotFound: ``ref`` names no file.
        """
        from .ops.rm import unlock

        return unlock(self, ref)

    def rm(self, ref: str | File, cascade: bool = False, keep_dependents: bool = False) -> list[File]:
        """Delete an unlocked file from the catalog; ``cascade`` also deletes what was made from it.

        A file that others were made from is refused (:class:`~limnos.errors.FileHasDependents`,
        whose ``dependents`` lists them) unless ``cascade=True`` deletes them too (every
        version made from it, directly or through other files) or ``keep_dependents=True``
        keeps them, with lineage that shows this file as removed.
        The bytes stay in the store until :meth:`gc`, and the deletion travels with push and pull.

        >>> lake.rm("raw/bad.csv", cascade=True)       # and everything made from it
        >>> lake.rm("raw/old.csv", keep_dependents=True)

        Returns:
            The deleted files, ``ref``'s first.

        Raises:
            FileNotFound: ``ref`` names no file.
            FileHasDependents: files were made from it and neither option was given; nothing was deleted.
            FileLocked: a file to delete is locked; nothing was deleted.
        """
        from .ops.rm import rm

        return rm(self, ref, cascade, keep_dependents)

    def is_locked(self, ref: str | File) -> bool:
        """True when the file is locked (see :meth:`lock`).

        Raises:
            FileNotFound: ``ref`` names no file.
        """
        from .ops.rm import is_locked

        return is_locked(self, ref)

    def ui(self, view: str = "/files", **options: Any) -> UiServer:
        """Serve ``limnos ui`` over this lake (reused while it runs); a handle with ``.url``, ``.stop()``, an iframe
        in notebooks. ``options``: ``host``, ``port``, ``allow_edit``, ``open_browser`` (see ``limnos ui``)."""
        from .web import launch

        return launch(self, view, **options)


def _reference_uri(file: File) -> str:
    """The external URL a reference file points at."""
    if file.kind != "reference" or not file.uri:
        raise LimnosError(f"{file.ref} is not a reference to external bytes")
    return file.uri


def _validate_prefix(prefix: str) -> str:
    """``prefix`` (``raw/``, ``raw``) in NFC, as names are; :class:`InvalidName` unless it could begin a file name."""
    try:
        validate_name(prefix.rstrip("/") or "x")
    except InvalidName as exc:
        raise InvalidName(f"bad prefix {prefix!r}: {exc}", name=prefix) from None
    return unicodedata.normalize("NFC", prefix)


def init(path: str | os.PathLike[str] = opening.DEFAULT_DIR, catalog: str | None = None, link: str = "copy",
         cache: str | None = None, team: bool | None = None, **storage_options: Any) -> Lake:
    """Create a lake and return it open.

    ``path`` is a local folder (``.limnos`` by default) or any fsspec URL
    (``s3://bucket/lake``; ``storage_options`` go to fsspec). The lake is
    made *in* that folder, which must be new or empty: ``limnos.init("proj")``
    on a project folder with files raises :class:`FolderNotEmpty` (pass
    ``"proj/.limnos"``). (The command ``limnos init DIR`` makes ``DIR/.limnos``.)
    ``catalog`` is a SQLAlchemy URL (``postgresql://user@host/db``); by default a SQLite file
    inside a local lake, or in this machine's cache for a remote one. A
    password in the URL is used now but never saved: later opens take it from
    ``PGPASSWORD`` or ``~/.pgpass``. ``link`` is how working copies are made
    (``copy``, ``hardlink`` or ``symlink``); ``cache`` is where a remote lake's
    objects are kept on this machine.

    A lake on a bucket without a shared catalog is a team lake: every
    machine keeps its own catalog, and they agree on versions through a commit
    log in the bucket (no server, no delay). That needs a bucket that honours
    conditional writes (AWS S3, MinIO, moto...), probed now; ``team=False``
    makes a lake only one machine writes.

    >>> lake = limnos.init("s3://bucket/lake")   # doctest: +SKIP

    Raises:
        LakeExists: there is a lake at ``path`` already.
        FolderNotEmpty: ``path`` is a local folder holding other files, not a lake.
        TeamModeUnsupported: the bucket overwrites instead of refusing a second create
            (share a PostgreSQL catalog, or pass ``team=False``).
    """
    return opening.init_lake(Lake, path, catalog, link, cache, team, **storage_options)


def open(path: str | os.PathLike[str] | None = None, catalog: str | None = None,
         cache: str | None = None, metadata: Mapping[str, Any] | None = None, **storage_options: Any) -> Lake:
    """Open a lake: ``path`` (a folder or URL), else ``$LIMNOS_LAKE``, else the nearest ``.limnos/``.

    Records files that a crash left unapplied are rolled forward first; a
    team lake first applies the commits other machines published. ``metadata``
    is set on every file the returned lake object writes (:meth:`Lake.defaults`).

    Raises:
        LakeNotFound: there is no lake there.
        MetadataError: ``metadata`` cannot be stored.
    """
    lake = opening.open_lake(Lake, path, catalog, cache, **storage_options)
    if metadata is not None:
        try:
            lake.defaults(metadata=metadata)
        except BaseException:
            lake.close()
            raise
    return lake


find_lake = opening.find_lake
opening.register_facade(Lake)

__all__ = ["Lake", "find_lake", "init", "open"]
