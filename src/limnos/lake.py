"""``Lake``: the public face over a catalog and a store.

A commit always goes: objects first, then (inside the catalog transaction,
after its rows are inserted) the records file, then COMMIT. So a crash leaves
at worst unreferenced objects (``gc`` removes them) or a records file the
catalog lacks (rolled forward on the next open).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from . import provenance
from .catalog import Catalog, Commit, FileRow
from .catalog import values as metavalues
from .errors import FileNotFound, InvalidName, MetadataError, ObjectNotAvailable, redact_url
from .files import File, Writer
from .names import new_id, parse_ref, validate_name
from .store import LocalObjectStore, ObjectStore, StatCache, hashing
from .store.links import LinkMode, place
from .steps import current_call, note_read

if TYPE_CHECKING:
    from .checks import Report
    from .lineage import Lineage
    from .stale import StaleOutput
    from .steps import StepRecord
    from .query import Result
    from .adding import Status
    from .cache import CacheReport
    from .remotes import RemoteSet
    from .store.transfer import TransferReport
    from .folio import Folio
    from .datasources import Datasource, SavedDataset


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class RunState:
    """The current run: its id, when it began, and the files it has read, in order."""

    id: str = field(default_factory=new_id)
    started_at: dt.datetime = field(default_factory=now)
    name: str | None = None
    config: Any = None
    reads: dict[str, None] = field(default_factory=dict)  # an ordered set of file ids
    info: dict[str, Any] | None = None


class Lake:
    """A data lake: a SQL catalog plus a content-addressed store.

    Get one with :func:`limnos.init` or :func:`limnos.open`.
    """

    def __init__(self, path: str, catalog: Catalog, store: ObjectStore, state_dir: str,
                 config: Mapping[str, Any] | None = None, cache: LocalObjectStore | None = None) -> None:
        self.path = path
        self.catalog = catalog
        self.store = store
        if cache is None:
            if not isinstance(store, LocalObjectStore):
                raise ValueError("a lake on a remote store needs a local cache")
            cache = store
        self.cache: LocalObjectStore = cache
        self.state_dir = state_dir
        self.config = dict(config or {})
        self.link: LinkMode = self.config.get("link", "copy")
        self._run = RunState()
        self._lock = threading.RLock()
        self._statcache: StatCache | None = None
        self._remotes: RemoteSet | None = None
        self._on_close: list[Any] = []  # called first by close(): background scans stop and are joined

    def __repr__(self) -> str:
        return f"<Lake {redact_url(self.path)} catalog={redact_url(self.catalog.url)}>"

    def __enter__(self) -> "Lake":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for hook in list(self._on_close):
            hook()
        self.catalog.close()
        if self._statcache is not None:
            self._statcache.close()

    @property
    def statcache(self) -> StatCache:
        if self._statcache is None:
            self._statcache = StatCache(os.path.join(self.state_dir, "statcache.sqlite"))
        return self._statcache

    # ----------------------------------------------------------------- runs
    @contextlib.contextmanager
    def run(self, name: str | None = None, config: Any = None) -> Iterator[RunState]:
        """Start an explicit run: a fresh set of reads, its own name and config."""
        with self._lock:
            previous, self._run = self._run, RunState(name=name, config=config)
            current = self._run
        try:
            yield current
        finally:
            with self._lock:
                self._run = previous

    def _run_row(self) -> dict[str, Any]:
        run = self._run
        if run.info is None:
            run.info = provenance.collect(run.id, run.started_at, run.name, run.config,
                                          packages=bool(self.config.get("record_packages")))
        return run.info

    def _mark_read(self, file: File) -> None:
        with self._lock:
            self._run.reads.setdefault(file.id, None)
        note_read(self, file)  # inside a @step, the read is also one of the step's inputs

    def _current_inputs(self, exclude: Sequence[str] = ()) -> list[str]:
        with self._lock:
            return [i for i in self._run.reads if i not in exclude]

    # ------------------------------------------------------------- commits
    def _new_commit(self, kind: str) -> Commit:
        return Commit(id=new_id(), created_at=now(), kind=kind, run=self._run_row())

    def _commit(self, commit: Commit) -> Commit:
        return self.catalog.commit(commit, lambda c: self.store.write_record(c.id, c.to_jsonl()))

    def _file_row(self, commit: Commit, name: str, digest: str, size: int, kind: str = "object",
                  uri: str | None = None) -> dict[str, Any]:
        row = {"id": new_id(), "name": name, "version": None, "hash": digest, "size": size,
               "created_at": commit.created_at, "run_id": commit.run_id, "kind": kind, "uri": uri}
        commit.files.append(row)
        return row

    def _add_inputs(self, commit: Commit, file_id: str, input_ids: Sequence[str]) -> None:
        commit.inputs.extend({"file_id": file_id, "input_id": i, "position": n} for n, i in enumerate(input_ids))

    def _add_file(self, commit: Commit, name: str, digest: str, size: int, input_ids: Sequence[str],
                  metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """Stage one stored object into ``commit`` as a file with its lineage edges and metadata.

        ``create`` commits one such file; a step adds all its outputs to one commit.
        """
        row = self._file_row(commit, name, digest, size)
        self._add_inputs(commit, row["id"], input_ids)
        commit.metadata.extend(self._metadata_rows([row["id"]], metadata))
        return row

    def _metadata_rows(self, file_ids: Sequence[str], metadata: Mapping[str, Any] | None,
                       deleted_keys: Sequence[str] = (), check_only: bool = False) -> list[dict[str, Any]]:
        """Validate and encode a metadata batch; with ``check_only`` nothing is stored."""
        if not metadata and not deleted_keys:
            return []
        if metadata is not None and not isinstance(metadata, Mapping):
            raise MetadataError(f"metadata must be a dict of key -> value, not {type(metadata).__name__}")
        metadata = dict(metadata or {})
        fixed = self.catalog.key_types(list(metadata))
        encoded: list[tuple[str, metavalues.Encoded]] = []
        for key, value in metadata.items():
            metavalues.validate_key(key)
            vtype = metavalues.check_type(key, value, fixed.get(key))
            if vtype == "blob":
                value = "0" * 64 if check_only else self._store_blob(bytes(value))
            encoded.append((key, metavalues.encode(value, vtype)))
        rows = []
        for fid in file_ids:
            for key, (vtype, v_int, v_float, v_str) in encoded:
                rows.append({"file_id": fid, "key": key, "vtype": vtype, "v_int": v_int,
                             "v_float": v_float, "v_str": v_str, "deleted": False})
            for key in deleted_keys:
                rows.append({"file_id": fid, "key": key, "vtype": "deleted", "v_int": None,
                             "v_float": None, "v_str": None, "deleted": True})
        return rows

    def _store_blob(self, data: bytes) -> str:
        staged = self._staging_path()
        with open(staged, "wb") as f:
            f.write(data)
        return self._store_staged(staged)[0]

    # ----------------------------------------------------------- the store
    # ``store`` is where objects live (a folder, or any fsspec URL); ``cache`` is
    # this machine's local copy of them. For a local lake they are the same.
    @property
    def remotes(self) -> "RemoteSet":
        # One per lake: its remotes keep their stores (and pack indexes) between calls.
        if self._remotes is None:
            from .remotes import RemoteSet

            self._remotes = RemoteSet(self)
        return self._remotes

    def object_url(self, digest: str) -> str:
        return self.store.path(digest) if self.store.local else self.store.object_key(digest)  # type: ignore[attr-defined]

    def _staging_path(self, suffix: str = "") -> str:
        return self.cache.new_staging_path(suffix)

    def _store_staged(self, staged: str) -> tuple[str, int]:
        """Hash a finished staging file and store it; a remote store gets it uploaded now."""
        if self.store.local:
            digest, size, _new = self.store.ingest_staged(staged)  # type: ignore[attr-defined]
            return digest, size
        digest, size = hashing.hash_file(staged)
        self.store.put_file(staged, digest)
        self.cache._commit_staged(staged, digest)  # keep the local copy: it was just written here
        return digest, size

    def is_local(self, file: File) -> bool:
        return bool(file.hash) and self.cache.has(file.hash)  # type: ignore[arg-type]

    def _sources(self) -> list[ObjectStore]:
        """Where a missing object can come from: the lake's own store, else its remotes."""
        if not self.store.local:
            return [self.store]
        remotes = self.remotes
        default = remotes.default
        ordered = sorted(remotes.list(), key=lambda r: r.name != default)
        return [r.store for r in ordered]

    def fetch(self, digest: str) -> str:
        """The local path of an object, downloading (and verifying) it first if needed."""
        if self.cache.has(digest):
            if self.cache is not self.store:
                self.cache.touch(digest)  # LRU for prune; a local lake's store is never pruned
            return self.cache.path(digest)
        sources = self._sources()
        if not sources:
            raise ObjectNotAvailable(f"object {digest[:12]} is missing from this lake and no remote is set; run 'limnos fsck'")
        tried = []
        for source in sources:
            try:
                self.cache.download_from(source, digest)
                return self.cache.path(digest)
            except ObjectNotAvailable:
                tried.append(redact_url(source.url))
        raise ObjectNotAvailable(f"object {digest[:12]} is on none of: {', '.join(tried)}; push it from a machine that has it")

    def _open_object(self, file: File) -> IO[bytes]:
        if file.kind == "reference":
            from .datasources import reference_fetcher  # with the datasource's storage options

            return reference_fetcher(self, file).open_reference(file._row.uri)  # type: ignore[arg-type]
        self.fetch(file.hash)  # type: ignore[arg-type]
        return self.cache.open_shared(file.hash)  # type: ignore[arg-type]

    def _local_object_path(self, file: File) -> str:
        if file.kind == "reference":
            from .datasources import reference_fetcher

            return reference_fetcher(self, file).reference_path(file._row.uri, file.size, None)  # type: ignore[arg-type]
        return self.fetch(file.hash)  # type: ignore[arg-type]

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
        self._metadata_rows([], metadata, check_only=True)  # fail on bad metadata before any work
        suffix = os.path.splitext(name)[1]
        staged = self._staging_path(suffix if len(suffix) <= 16 else "")
        writer = Writer(name, staged)
        try:
            yield writer
            digest, size = self._store_staged(staged)
            commit = self._new_commit("create")
            row = self._add_file(commit, name, digest, size, self._current_inputs(), metadata)
            self._commit(commit)
            writer.file = self._file_from_row(row, commit)
        finally:
            if os.path.exists(staged):
                os.unlink(staged)

    def add(self, path: str | os.PathLike[str], name: str | None = None,
            metadata: Mapping[str, Any] | None = None, move: bool = False) -> File | list[File]:
        """Add a local file or a whole folder (recursively, in one commit).

        Re-adding unchanged content makes no new version. The user's file is
        copied (or reflinked), never hard-linked, into the store.
        """
        from .adding import add_path

        return add_path(self, os.fspath(path), name, metadata, move)

    def status(self, path: str | os.PathLike[str], name: str | None = None) -> "Status":
        """Compare a local file or folder with the lake, using the stat cache."""
        from .adding import status_path

        return status_path(self, os.fspath(path), name)

    def save_folio(self, name: str, folio: "Folio", metadata: Mapping[str, Any] | None = None) -> File:
        """Store a folio as the file ``name``; its items become lake files under ``.folios/<name>/``.

        Identical item bytes are one object across folios. The folio file lists
        its items, the lake files it references and the run's reads as inputs.
        Load it back with ``lake.get(name).folio()``.
        """
        from .folio import save_to_lake

        return save_to_lake(self, name, folio, metadata)

    def set_metadata(self, ref: str | File, metadata: Mapping[str, Any]) -> File:
        """Set typed metadata on a file; every change is kept with its time."""
        file = self._resolve(ref)
        if not metadata:
            raise MetadataError("set_metadata needs at least one key=value")
        commit = self._new_commit("metadata")
        commit.metadata = self._metadata_rows([file.id], metadata)
        self._commit(commit)
        return self._resolve(file.id)

    def unset_metadata(self, ref: str | File, keys: Sequence[str] | str) -> File:
        """Remove keys from a file's metadata; their past values stay readable with ``as_of``."""
        file = self._resolve(ref)
        keys = [keys] if isinstance(keys, str) else list(keys)
        current = file.metadata
        unknown = [k for k in keys if k not in current]
        if unknown:
            raise MetadataError(f"{file.ref} has no metadata key {', '.join(map(repr, unknown))}; see 'limnos info {file.ref}'")
        commit = self._new_commit("metadata")
        commit.metadata = self._metadata_rows([file.id], None, keys)
        self._commit(commit)
        return self._resolve(file.id)

    # ------------------------------------------------------------------ read
    def _file_from_row(self, row: dict[str, Any], commit: Commit) -> File:
        user = (commit.run or {}).get("user")
        fr = FileRow(row["id"], row["name"], row["version"], row["hash"], row["size"], commit.created_at,
                     row["run_id"], row["kind"], row["uri"], user)
        return File(self, fr)

    def _resolve(self, ref: str | File) -> File:
        if isinstance(ref, File):
            return ref
        parsed = parse_ref(ref)
        if parsed.id:
            row = self.catalog.file_by_id(parsed.id)
        else:
            row = self.catalog.file_by_name(parsed.name, parsed.version)  # type: ignore[arg-type]
        if row is None:
            hint = "see 'limnos ls'" if not parsed.version else f"see 'limnos history {parsed.name}'"
            raise FileNotFound(f"no file {ref!r} in the lake; {hint}")
        return File(self, row)

    def get(self, ref: str | File) -> File:
        """A file by name (latest version), ``name@N``, or id. Marks it as read."""
        file = self._resolve(ref)
        self._mark_read(file)
        return file

    def ls(self, prefix: str = "") -> list[File]:
        """The latest version of every name under ``prefix``."""
        if prefix:
            _validate_prefix(prefix)
        return self._files_with_metadata(self.catalog.latest(prefix))

    def history(self, name: str) -> list[File]:
        """Every version of a name, oldest first."""
        validate_name(name)
        rows = self.catalog.history(name)
        if not rows:
            raise FileNotFound(f"no file named {name!r} in the lake; see 'limnos ls'")
        return self._files_with_metadata(rows)

    def _files_with_metadata(self, rows: Sequence[FileRow]) -> list[File]:
        """Files with their metadata loaded in one query, not one per file."""
        meta = self.catalog.metadata_of([r.id for r in rows])
        return [File(self, r, meta[r.id]) for r in rows]

    def query(self, filters: Mapping[str, Any] | None = None, *, latest: bool = False, **equals: Any) -> "Result":
        """Files whose metadata equals every given value: ``lake.query(ticket="abc-123")``.

        ``filters`` takes keys that are not Python identifiers (or are named ``latest``);
        ``latest=True`` keeps only the newest version of each name.
        """
        from .query import Result

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

    def lineage(self, ref: str | File, direction: str = "up", depth: int | None = None) -> "Lineage":
        """The graph of files and the steps/runs between them: ``up`` (made from), ``down`` (made into), ``both``."""
        from .lineage import build_lineage

        return build_lineage(self, self._resolve(ref), direction, depth)

    def downstream(self, ref: str | File, depth: int | None = None) -> list[File]:
        """Every file made from ``ref``, directly or through other files, nearest first."""
        from .lineage import downstream_files

        return downstream_files(self, self._resolve(ref), depth)

    # ----------------------------------------------------------------- steps
    def step(self, fn: Any = None, *, version: Any = None, cache: bool = True,
             allow_pickle: bool = False) -> Any:
        """``@lake.step``: a cached, recorded pipeline step in this lake (see :func:`limnos.step`)."""
        from .steps import step

        return step(fn, lake=self, version=version, cache=cache, allow_pickle=allow_pickle)

    def steps(self, failed: bool | None = None, function: str | None = None,
              limit: int | None = None) -> list["StepRecord"]:
        """Recorded step executions, oldest first (``failed=True``: only failures)."""
        from .steps import list_steps

        return list_steps(self, failed=failed, function=function, limit=limit)

    def stale(self) -> list["StaleOutput"]:
        """Current step outputs whose step code, version or input files changed since they were made."""
        from .stale import find_stale

        return find_stale(self)

    # ----------------------------------------------------------- datasources
    def datasource(self, name: str, root: str | os.PathLike[str] | None = None, *,
                   storage_options: Mapping[str, Any] | None = None, scan: bool | str = "background") -> "Datasource":
        """The datasource ``name``; created over ``root`` (a lake prefix, a folder or any fsspec URL) if new.

        A new datasource is scanned in a background thread (``scan=True``: before
        returning; ``False``: not at all). ``storage_options`` (credentials,
        endpoints) stay on this machine, in ``state/datasources.yaml``.
        """
        from .datasources import get_or_create

        return get_or_create(self, name, root, storage_options=storage_options, scan=scan)

    def datasources(self) -> list["Datasource"]:
        from .datasources import list_datasources

        return list_datasources(self)

    def dataset(self, name: str) -> "Datasource":
        """A saved dataset: its datasource with the saved query (and pinned time) applied."""
        from .datasources import load_dataset

        return load_dataset(self, name)

    def datasets(self) -> list["SavedDataset"]:
        from .datasources import list_datasets

        return list_datasets(self)

    # ---------------------------------------------------------------- checks
    def fsck(self, read_data: bool = False, subset: float | None = None) -> "Report":
        from .checks import fsck

        return fsck(self, read_data=read_data, subset=subset)

    def gc(self, dry_run: bool = True, grace: dt.timedelta = dt.timedelta(days=1)) -> "Report":
        from .checks import gc

        return gc(self, dry_run=dry_run, grace=grace)

    def reindex(self, force: bool = False) -> "Report":
        from .checks import reindex

        return reindex(self, force=force)

    # ------------------------------------------------------ remotes and sync
    def push(self, refs: Sequence[str] | None = None, remote: str | None = None,
             jobs: int | None = None, pack_size: int = 64 << 20) -> "TransferReport":
        """Upload the objects and records files a remote lacks (all, or the files ``refs`` name).

        Objects up to 1 MiB travel in packs of up to ``pack_size`` bytes (0: one request each).
        """
        from .sync import push

        return push(self, refs, remote, jobs, pack_size)

    def pull(self, refs: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None,
             download: bool = True) -> "TransferReport":
        """Import a remote's new records, then download the objects ``refs`` name (default: latest of all).

        A ref may be a name, ``name@N``, an id, a prefix (``raw/``), ``.``, or a
        script (``train.py``): the files that runs of that script read.
        """
        from .sync import pull

        return pull(self, refs, remote, jobs, download)

    def cache_size(self) -> "CacheReport":
        from .cache import size

        return size(self)

    def prune_cache(self, max_size: int | str, keep_recent: float = 60.0) -> "CacheReport":
        """Shrink this machine's cache of a remote lake to ``max_size`` (``"10GB"``), LRU first."""
        from .cache import prune

        return prune(self, max_size, keep_recent)

    # ---------------------------------------------------------- protection
    def lock(self, ref: str | File) -> File:
        """Protect a file: ``rm`` (also by cascade) refuses it, and ``gc`` never touches its object."""
        from .protect import lock

        return lock(self, ref)

    def unlock(self, ref: str | File) -> File:
        from .protect import unlock

        return unlock(self, ref)

    def rm(self, ref: str | File, cascade: bool = False) -> list[File]:
        """Delete an unlocked file from the catalog; ``cascade`` also deletes what was made from it."""
        from .protect import rm

        return rm(self, ref, cascade)

    def is_locked(self, ref: str | File) -> bool:
        return bool(self.catalog.locked_ids([self._resolve(ref).id]))


def _validate_prefix(prefix: str) -> None:
    try:
        validate_name(prefix.rstrip("/") or "x")
    except InvalidName as exc:
        raise InvalidName(f"bad prefix {prefix!r}: {exc}") from None


__all__ = ["Lake", "RunState", "hashing"]
