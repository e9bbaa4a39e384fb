"""``LakeBase``: the kernel every feature works through.

A lake is a catalog (SQL) plus a store (objects and records on any fsspec
URL) plus this machine's cache of objects. ``LakeBase`` holds the three and
offers what features need and nothing more: the current run and its reads,
commits (:class:`~limnos.core.commits.CommitBuilder`), staging and storing
objects, verified fetches, and resolving refs to Files.

The public :class:`limnos.Lake` is a subclass that adds the features
(add, steps, datasources, folios, sync, checks) on top; features take a
``LakeBase`` and never call a private name of the facade.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from ..catalog import Catalog, Commit, FileRow
from ..errors import FileNotFound, IntegrityError, LimnosError, MetadataError, ObjectNotAvailable, StoreError, redact_url
from ..names import parse_ref
from ..store import LocalObjectStore, ObjectStore, StatCache, hashing, ranged
from ..store.links import LinkMode
from ..store.log import SharedLog
from ..store.verify import ObjectVerifier
from . import provenance, reopen, shared
from .commits import CommitBuilder, encode_metadata
from .files import File
from .runs import RunState, note_read

if TYPE_CHECKING:
    from ..folio.folio import Folio
    from ..steps.step import StepRecord
    from .recovery import Report
    from .remotes import RemoteSet


class LakeBase:
    """The kernel of a lake: catalog, store, cache, runs, commits and reads.

    Use :class:`limnos.Lake` (from :func:`limnos.init` or :func:`limnos.open`);
    this class is what features build on.
    """

    def __init__(self, path: str, catalog: Catalog, store: ObjectStore, state_dir: str,
                 config: Mapping[str, Any] | None = None, cache: LocalObjectStore | None = None) -> None:
        self.path = path
        self.catalog = catalog
        #: where objects live (a folder, or any fsspec URL)
        self.store = store
        if cache is None:
            if not isinstance(store, LocalObjectStore):
                raise ValueError("a lake on a remote store needs a local cache")
            cache = store
        #: this machine's copies of objects; the store itself for a local lake
        self.cache: LocalObjectStore = cache
        self.state_dir = state_dir
        self.config = dict(config or {})
        self.link: LinkMode = self.config.get("link", "copy")
        self._run = RunState()
        self._lock = threading.RLock()
        self._statcache: StatCache | None = None
        self._verifier: ObjectVerifier | None = None
        self._remotes: RemoteSet | None = None
        self._close_hooks: list[Callable[[], None]] = []
        #: a team lake's commit log in its bucket (``shared: log`` in its settings), else None
        self.shared_log: SharedLog | None = SharedLog(store) if self.config.get("shared") == "log" else None
        if self.shared_log is not None:
            store.exclusive_creates = True  # probed when the lake was made
        self._caught_up_at = 0.0
        #: metadata set on every file this lake object creates, adds or saves (see :meth:`defaults`)
        self._defaults: dict[str, Any] = {}
        #: the commits that opening this lake rolled forward from the records (all of them after a lost catalog)
        self.rolled_forward_at_open: list[str] = []

    def __repr__(self) -> str:
        return f"<Lake {redact_url(self.path)} catalog={redact_url(self.catalog.url)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the lake's address (no connection, no credential); the unpickling process reopens it once."""
        return (reopen.reopen_lake, (reopen.address_of(self),))

    def __enter__(self) -> LakeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def on_close(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` first when the lake closes (background scans stop and are joined)."""
        self._close_hooks.append(hook)

    def close(self) -> None:
        """Stop background work and release the catalog and the stat cache."""
        for hook in list(self._close_hooks):
            hook()
        self.catalog.close()
        self.cache.packs.close()
        if self._statcache is not None:
            self._statcache.close()

    @property
    def statcache(self) -> StatCache:
        """This machine's stat cache: ``(path, inode, size, mtime) -> hash``."""
        if self._statcache is None:
            self._statcache = StatCache(os.path.join(self.state_dir, "statcache.sqlite"))
        return self._statcache

    @property
    def verifier(self) -> ObjectVerifier:
        """Checks this machine's objects against their hashes before they are served (see ``store/verify.py``)."""
        if self._verifier is None:
            try:
                statcache: StatCache | None = self.statcache
            except (OSError, sqlite3.Error):
                statcache = None  # a read-only state folder: still verify, just without remembering
            self._verifier = ObjectVerifier(self.cache, statcache)
        return self._verifier

    # -- runs and implicit lineage ----------------------------------------------
    @contextlib.contextmanager
    def run(self, name: str | None = None, config: Any = None) -> Iterator[RunState]:
        """Start an explicit run: a fresh set of reads, its own name and config.

        >>> with lake.run(name="train", config={"lr": 0.01}):
        ...     model = train(lake.get("features/train.parquet"))
        """
        with self._lock:
            previous, self._run = self._run, RunState(name=name, config=config)
            current = self._run
        try:
            yield current
        finally:
            with self._lock:
                self._run = previous

    def run_row(self) -> dict[str, Any]:
        """The current run's provenance row (user, host, argv, git...), collected once."""
        run = self._run
        if run.info is None:
            run.info = provenance.collect(run.id, run.started_at, run.name, run.config,
                                          packages=bool(self.config.get("record_packages")))
        return run.info

    def mark_read(self, file: File) -> None:
        """Record that the current run (and step, if any) read ``file``."""
        with self._lock:
            self._run.reads.setdefault(file.id, None)
        note_read(self, file)

    def current_inputs(self, exclude: Sequence[str] = ()) -> list[str]:
        """The ids of the files the current run has read, in first-read order."""
        with self._lock:
            return [i for i in self._run.reads if i not in exclude]

    # -- the shared log of a team lake -------------------------------------------------
    def catch_up(self, force: bool = False) -> Report | None:
        """On a team lake, apply the commits other machines published since this one last looked.

        Every read and write calls it first, so another machine's file is
        visible at the next call. At most once per ``$LIMNOS_CATCH_UP_INTERVAL``
        seconds (0 by default: every call) unless ``force``. None on other lakes.

        Raises:
            RemoteError: the bucket cannot be read.
        """
        if self.shared_log is None:
            return None
        if not force:
            interval = shared.catch_up_interval()
            if interval and time.monotonic() - self._caught_up_at < interval:
                return None
        report = shared.catch_up(self, self.shared_log)
        self._caught_up_at = time.monotonic()
        return report

    # -- commits -----------------------------------------------------------------
    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Hold off gc's deletions for the block: wrap every write from storing its objects to its commit.

        A writer that finds an object already stored (and reuses it) or stores a
        new one refers to it only once its commit is in; gc must not delete the
        object in between. Re-entrant, and shared by every thread of the process.

        >>> with lake.writing():
        ...     digest, size = lake.store_staged(path)
        ...     commit = lake.new_commit("create"); commit.add_file(name, digest, size); commit.write()
        """
        return self.catalog.guard.shared()

    def collecting(self) -> contextlib.AbstractContextManager[None]:
        """Hold every writer off for the block, once those in flight are done: gc's delete phase.

        Raises:
            GcRefused: called inside :meth:`writing` on this thread.
        """
        return self.catalog.guard.exclusive()

    def new_commit(self, kind: str) -> CommitBuilder:
        """Begin a commit of the given kind (``"add"``, ``"create"``, ``"step"``...)."""
        return CommitBuilder(self, kind)

    def adopt_commit(self, commit: Commit) -> CommitBuilder:
        """A builder that writes ``commit`` (pulled from elsewhere) as a new commit of this lake."""
        return CommitBuilder.adopting(self, commit)

    def check_metadata(self, metadata: Mapping[str, Any] | None) -> None:
        """Raise as a commit would on bad metadata, without storing anything."""
        encode_metadata(self, [], metadata, check_only=True)

    # -- objects -----------------------------------------------------------------
    @property
    def remotes(self) -> RemoteSet:
        """This lake's remotes (settings in ``state/remotes.yaml``)."""
        # One per lake: its remotes keep their stores (and pack indexes) between calls.
        if self._remotes is None:
            from .remotes import RemoteSet

            self._remotes = RemoteSet(self)
        return self._remotes

    def object_url(self, digest: str) -> str:
        """Where the object ``digest`` lives: a local path, or its key in the store."""
        return self.store.object_key(digest)

    def staging_path(self, suffix: str = "") -> str:
        """A new, empty staging file in the cache, to be stored with :meth:`store_staged`."""
        return self.cache.new_staging_path(suffix)

    def store_staged(self, staged: str) -> tuple[str, int]:
        """Hash a finished staging file and store it; a remote store gets it uploaded now.

        Call it inside :meth:`writing`, together with the commit that names the object:
        gc may delete an object that is stored (or found already there) but not yet committed.

        Returns the object's hash and size.
        """
        with self.writing():  # the caller's own writing() should span this and its commit
            digest, size, _new = self.store_staged_new(staged)
        return digest, size

    def store_staged_new(self, staged: str, digest: str | None = None) -> tuple[str, int, bool]:
        """:meth:`store_staged`, also telling whether the object is new in this machine's store.

        A write whose commit then fails removes the objects that were new (see
        :func:`limnos.ops.add.discard_new_objects`). Returns hash, size and that flag.
        ``digest``: the hash the caller took while writing the file (a download), so it is not read again.
        """
        if digest is None:
            digest, size = hashing.hash_file(staged)
        else:
            size = os.path.getsize(staged)
        self._put_shared(staged, digest)
        return digest, size, self.cache.commit_staged(staged, digest)

    def store_staged_many(self, staged: Sequence[str]) -> list[tuple[str, int]]:
        """:meth:`store_staged` for the staging files of one commit (a step's outputs); (hash, size) of each.

        When at least ``MIN_PACK_OBJECTS`` of them are small, those go into one
        new pack (one file and its index instead of one file each; on a bucket,
        two conditional PUTs); fewer, or big ones, are stored one by one. Call
        it inside :meth:`writing`, as :meth:`store_staged`. The staging files are removed.
        """
        from ..store.lakepacks import MIN_PACK_OBJECTS, PACK_THRESHOLD

        pack_at = int(self.config.get("pack_threshold", PACK_THRESHOLD))
        small = [p for p in staged if os.path.getsize(p) <= pack_at]
        if len(small) < MIN_PACK_OBJECTS:
            return [self.store_staged(p) for p in staged]
        done: dict[str, tuple[str, int]] = {}
        with self.writing():
            writer = self.cache.pack_writer(durable=bool(self.config.get("fsync", True)), min_objects=MIN_PACK_OBJECTS)
            try:
                for path in small:
                    digest, size, _new = self.cache.ingest_packed(writer, path)
                    done[path] = (digest, size)
                writer.finish()  # fsynced before the commit that names its objects
            except BaseException:
                writer.abort()
                raise
            if self.store is not self.cache:
                self._put_shared_many(sorted({d for d, _ in done.values()}))
            for path in small:
                os.unlink(path)
            return [done[p] if p in done else self.store_staged(p) for p in staged]

    def _put_shared_many(self, digests: list[str]) -> None:
        """Upload small objects of this machine's cache to a bucket lake's store as one pack (those it lacks)."""
        present = {h for h in digests if self.store.has(h)} | (set(digests) & set(self.store.pack_index()))
        self.refresh_orphans(set(digests), present)
        from ..store.lakepacks import MIN_PACK_OBJECTS

        missing = [h for h in digests if h not in present]
        if len(missing) < MIN_PACK_OBJECTS:  # a pack of fewer costs more keys than it saves
            for digest in missing:
                with self.cache.export(digest) as path:
                    self.store.put_file(path, digest)
        else:
            members = [(h, self.cache.path(h) if self.cache.has_loose(h) else functools.partial(self.cache.read_packed, h))
                       for h in missing]
            self.store.put_pack(members, self.cache.staging_dir())  # pack, then index: conditional creates

    def _put_shared(self, path: str, digest: str) -> None:
        """Upload an object to a bucket lake's store; one already there that no live file names is refreshed.

        Another machine's gc cannot see this machine's writer guard; it spares
        objects younger than its grace, so a reused orphan must look young.
        """
        if self.store is self.cache:
            return
        if not self.store.put_file(path, digest) and not self.catalog.live_hashes([digest]):
            self.store.refresh(path, digest)

    def refresh_orphans(self, digests: set[str], present: set[str]) -> None:
        """On a bucket lake: refresh the objects of ``digests`` that ``present`` holds but no live file names.

        The caller is about to commit files naming ``digests``; see :meth:`_put_shared` for why.
        """
        if self.store is self.cache:
            return
        for digest in sorted((digests & present) - self.catalog.live_hashes(digests & present)):
            with self.cache.export(digest) as path:
                self.store.refresh(path, digest)

    def store_blob(self, data: bytes) -> str:
        """Store ``data`` as an object; its hash. Call it inside :meth:`writing`, with the commit that names it."""
        staged = self.staging_path()
        with open(staged, "wb") as f:
            f.write(data)
        return self.store_staged(staged)[0]

    def is_local(self, file: File) -> bool:
        """True when the file's object is on this machine."""
        return self.cache.has(file.hash) if file.hash else False

    def local_hashes(self, hashes: Collection[str]) -> set[str]:
        """Those of ``hashes`` whose objects are on this machine, looked up together (a listing's page at once)."""
        return self.cache.here(hashes)

    def sources(self) -> list[ObjectStore]:
        """Where a missing object can come from: the lake's own store, else its remotes."""
        if self.store is not self.cache:  # a lake on a remote store: objects come from that store
            return [self.store]
        remotes = self.remotes
        default = remotes.default
        ordered = sorted(remotes.list(), key=lambda r: r.name != default)
        return [r.store for r in ordered]

    def fetch(self, digest: str, ref: str | None = None) -> str:
        """The local path of an object, verified against its hash; a missing one is downloaded (verified) first.

        A local object is hashed unless this machine verified it before and it
        has not changed since (see ``store/verify.py``). A corrupt one is moved
        to quarantine, so the next call fetches a clean copy from a remote.

        Args:
            digest: the object's hash.
            ref: the file the object is read for, named in errors.

        Raises:
            IntegrityError: the local object is corrupt (it is now in quarantine).
            ObjectNotAvailable: no source has the object.
        """
        if self.cache.has_loose(digest):
            try:
                # a remote lake's cache stamps the use, for LRU pruning; a local lake's store is never pruned
                self.verifier.check(digest, ref, touch=self.cache is not self.store)
                return self.cache.path(digest)
            except FileNotFoundError:
                pass  # gone meanwhile (pruned, or quarantined by another reader): fetch it like a missing one
        if self.cache.has_packed(digest) and not self.cache.lacks_chunks(digest):
            with contextlib.suppress(ObjectNotAvailable):  # repacked away meanwhile: fetch it like a missing one
                return self.cache.materialize(digest, ref)  # put together and verified once, then a loose file
        self._download(digest)
        return self.cache.path(digest)

    def _download(self, digest: str) -> None:
        """Download a missing object into the cache from the first source that has it (verified on the way).

        Raises:
            ObjectNotAvailable: no source has the object.
        """
        sources = self.sources()
        bad = " (its local copy was corrupt and is in quarantine)" if self.cache.in_quarantine(digest) else ""
        if not sources:
            fix = ("add a remote that has it and call lake.fsck(repair=True)" if bad
                   else "call lake.fsck() to see what else is missing")
            raise ObjectNotAvailable(f"object {digest[:12]} is missing from this lake{bad} and no remote is set to fetch "
                                     "it from", hint=fix, digest=digest)
        tried = []
        for source in sources:
            try:
                self.cache.download_from(source, digest)
                return
            except ObjectNotAvailable:
                tried.append(redact_url(source.url))
        raise ObjectNotAvailable(f"object {digest[:12]}{bad} is on none of: {', '.join(tried)}; "
                                 "push it from a machine that has it", digest=digest)

    def open_object(self, file: File) -> IO[bytes]:
        """Open a file's bytes for reading (fetching the object first if needed).

        The reader verifies the bytes against the file's hash as they are read
        and raises ``IntegrityError`` at the end of a corrupt object (see ``store/verify.py``).
        A big object this machine lacks is not downloaded first: it is read by
        ranges from the lake's store or a remote, with readahead, checked when
        read whole and only then cached (see ``store/ranged.py``).
        """
        if file.kind == "reference":
            return self.open_reference(file)
        digest = _object_hash(file)
        for _ in range(3):
            if not self.cache.has_loose(digest):
                if self.cache.has_packed(digest) and not self.cache.lacks_chunks(digest):
                    with contextlib.suppress(ObjectNotAvailable):  # repacked away meanwhile: look again
                        return self.cache.open_packed(digest, file.ref)  # every byte it serves is checked
                    continue
                # A big object not on this machine streams: ranges on demand, verified and cached once read whole.
                streamed = ranged.open_streamed(self.sources(), self.cache, digest, file.size, file.ref)
                if streamed is not None:
                    return streamed
                self._download(digest)
                if not self.cache.has_loose(digest):
                    continue  # it came as a chunked file: read it as one
            try:
                return self.verifier.open(digest, file.ref, touch=self.cache is not self.store)
            except IntegrityError:
                raise
            except StoreError:
                if self.cache.has(digest):
                    raise
                # gone between the two calls (pruned, or quarantined by a reader that found it corrupt): again
        raise ObjectNotAvailable(f"object {digest[:12]} of {file.ref} kept vanishing from this machine while being "
                                 "read (other readers quarantining or pruning it)", hint="try the read again",
                                 digest=digest)

    def local_object_path(self, file: File) -> str:
        """A local path to a file's bytes, verified against its hash (fetching the object first if needed).

        Raises:
            IntegrityError: the local object is corrupt (it is now in quarantine).
            ObjectNotAvailable: no source has the object.
        """
        if file.kind == "reference":
            return self.reference_path(file)
        return self.fetch(_object_hash(file), file.ref)

    # -- what the facade hands in ---------------------------------------------------
    def open_reference(self, file: File) -> IO[bytes]:
        """Open a reference file's external bytes; the datasources feature provides this."""
        raise LimnosError(f"{file.ref} is a reference; open it through limnos.Lake")

    def reference_path(self, file: File) -> str:
        """A local copy of a reference file's external bytes; the datasources feature provides this."""
        raise LimnosError(f"{file.ref} is a reference; open it through limnos.Lake")

    def step_of(self, file: File) -> StepRecord | None:
        """The ``@step`` execution that made ``file``; the steps feature provides this."""
        return None

    def load_folio(self, file: File) -> Folio:
        """The folio ``file`` holds; the folio feature provides this."""
        raise LimnosError(f"{file.ref}: folios are read through limnos.Lake")

    # -- resolving refs ----------------------------------------------------------------
    def resolve(self, ref: str | File) -> File:
        """The File a ref names (``name``, ``name@N`` or an id), without marking it read.

        Raises:
            FileNotFound: nothing in the lake has that name, version or id.
            InvalidRef: ``ref`` is not a valid ref.
        """
        if isinstance(ref, File):
            return ref
        parsed = parse_ref(ref)
        self.catch_up()
        row = self.catalog.file_by_id(parsed.id) if parsed.id else self.catalog.file_by_name(parsed.name or "", parsed.version)
        if row is None:
            hint = "see lake.ls()" if not parsed.version else f"see lake.history({parsed.name!r})"
            raise FileNotFound(f"no file {ref!r} in the lake", hint=hint, ref=ref)
        return File(self, row)

    def defaults(self, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Set the metadata every file this lake object creates, adds or saves gets, under the call's own.

        ElliptIO's ``get_handler(..., manual_metadata=...)``: ``lake.defaults(metadata={"ticket": "abc-123"})``,
        or ``limnos.open(path, metadata={...})``. A call's own ``metadata=`` wins
        key by key; ``defaults(metadata={})`` clears them. Other lake objects, and
        this one's ``set_metadata``, are not affected.

        Returns:
            The defaults now in force (a copy); ``defaults()`` only reads them.

        Raises:
            MetadataError: ``metadata`` cannot be stored (the defaults stay as they were).
        """
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise MetadataError(f"default metadata is a dict of key -> value, not {type(metadata).__name__}")
            self.check_metadata(metadata)
            self._defaults = dict(metadata)
        return dict(self._defaults)

    def with_defaults(self, metadata: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``metadata`` merged over this lake object's :meth:`defaults` (None when both are empty)."""
        if not self._defaults:
            return metadata
        if metadata is not None and not isinstance(metadata, Mapping):
            return metadata  # the call's own check refuses it
        return {**self._defaults, **(metadata or {})}

    def files_with_metadata(self, rows: Sequence[FileRow]) -> list[File]:
        """Files with their metadata loaded in one query, not one per file."""
        meta = self.catalog.metadata_of([r.id for r in rows])
        return [File(self, r, meta[r.id]) for r in rows]


def _object_hash(file: File) -> str:
    """The hash of the object that holds ``file``'s bytes.

    Raises:
        StoreError: the file has no object (a catalog row made by hand, or a newer kind of file).
    """
    if not file.hash:
        raise StoreError(f"{file.ref} has no stored object")
    return file.hash
