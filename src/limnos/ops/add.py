"""``add`` and ``status``: local files and folders against the lake.

Both walk the source once and consult the stat cache, so an unchanged file
costs a ``stat`` and never a read. ``add`` hashes new files while copying
them into the store, on a thread pool (the reads, writes and blake3 release
the GIL), and commits a whole folder as one transaction with one records file.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..catalog.engine import full_disk_error
from ..core.files import File
from ..errors import InvalidName, LimnosError, SourceNotFound, StoreError, StoreFull, redact_url
from ..names import normalize_local_name, validate_name
from ..progress import progress
from ..store import hashing
from ..store.lakepacks import MIN_PACK_OBJECTS
from ..store.statcache import stat_key

if TYPE_CHECKING:
    from ..core.base import LakeBase
    from ..store.lakepacks import PackWriter

#: A file modified this recently may still change within the same mtime tick, so
#: its stat is not trusted for the stat cache (git's "racy clean" problem).
#: Everything that fills the stat cache uses this one value.
RACY_SECONDS = 1.0
BIG_FILE = 4 << 20  # from this size a file is worth a thread of its own
BATCH_BYTES = 16 << 20  # small files are read, hashed and looked up in batches of at most this many bytes


class AddResult(list[File]):
    """What :meth:`limnos.Lake.add` left in the lake: the latest File of every name it added.

    A ``list[File]`` in name order, so a folder's result iterates, indexes and
    has a ``len`` like any list; a single file's result holds that one File,
    also available as :attr:`file`.

    Attributes:
        new_versions: how many files got a new version (new names and changed content).
        unchanged: how many files already held that content, so no version was made
            (a metadata change alone makes no version either).
        from_folder: True when a folder was added, False for a single file.
    """

    def __init__(self, files: Iterable[File] = (), new_versions: int = 0, from_folder: bool = False) -> None:
        super().__init__(files)
        self.new_versions = new_versions
        self.unchanged = len(self) - new_versions
        self.from_folder = from_folder

    @property
    def file(self) -> File:
        """The one File this add holds (the usual case for adding a single file).

        Raises:
            LimnosError: the result holds no file or several; the message gives the count.
        """
        if len(self) != 1:
            raise LimnosError(f"this add holds {len(self)} files, not one; iterate over the result or index it instead")
        return self[0]


@dataclass(eq=False)
class Entry:
    """One local file met by a scan, and what add or status learned about it."""

    path: str  # absolute local path
    name: str  # name in the lake
    stat: os.stat_result
    hash: str | None = None
    size: int = -1
    read: bool = False  # whether we had to read the bytes (no stat-cache hit)
    new: bool = False  # whether this add stored the object (it was not in the store before)
    loose: bool = False  # whether it was stored as a file of its own (not in a pack or as chunks)


@dataclass
class Status:
    """How a local file or folder differs from the latest versions in the lake.

    Each list holds lake names: ``unchanged`` and ``modified`` exist in both,
    ``new`` only locally, ``deleted`` only in the lake (under the same prefix).
    """

    unchanged: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing is modified, new or deleted."""
        return not (self.modified or self.new or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``unchanged`` as a count, the other lists as names)."""
        return {"clean": self.clean, "unchanged": len(self.unchanged), "modified": self.modified,
                "new": self.new, "deleted": self.deleted}


def default_name(path: str) -> str:
    """The lake name a local path gets when none is given.

    Returns:
        The path relative to the cwd when it is inside it (``""`` for the cwd
        itself), else its base name.
    """
    abspath = os.path.abspath(path)
    rel = os.path.relpath(abspath, os.getcwd())
    if rel == "." or rel.startswith(".."):
        return "" if rel == "." else os.path.basename(abspath)
    return normalize_local_name(rel)


def scan(path: str, name: str | None, skip: Sequence[str] = ()) -> tuple[bool, list[Entry]]:
    """List a local file, or every regular file below a folder, with the lake names they get.

    Args:
        path: a local file or folder.
        name: its name (a folder: the prefix) in the lake; None: :func:`default_name`.
        skip: folders not to descend into (the lake's own store); ``.git`` is always skipped.

    Returns:
        ``(is_folder, entries)``, entries sorted by name.

    Raises:
        SourceNotFound: ``path`` does not exist.
        InvalidName: a file would get a name the lake refuses.
    """
    if not os.path.exists(path):
        raise SourceNotFound(f"{path} does not exist; check the path", path=path)
    prefix = default_name(path) if name is None else validate_name(name.rstrip("/"))
    if not os.path.isdir(path):
        st = os.stat(path)
        final = prefix or os.path.basename(os.path.abspath(path))
        return False, [Entry(os.path.abspath(path), validate_name(final), st)]
    root = os.path.abspath(path)
    skip_dirs = {os.path.abspath(s) for s in skip}
    entries: list[Entry] = []
    stack = [(root, prefix)]
    while stack:
        folder, base = stack.pop()
        with os.scandir(folder) as it:
            for e in it:
                child = f"{base}/{e.name}" if base else e.name
                if e.is_dir(follow_symlinks=False):
                    if e.name == ".git" or e.path in skip_dirs:
                        continue
                    stack.append((e.path, child))
                elif e.is_file():  # follows a symlink to a file: its bytes are what the user means
                    entries.append(Entry(e.path, child, e.stat()))
    spelled: dict[str, str] = {}
    for entry in entries:
        local = entry.name
        entry.name = validate_name(local)  # in NFC: a name spelled NFD on disk (macOS) is the same name
        if spelled.setdefault(entry.name, local) != local:
            raise InvalidName(f"{spelled[entry.name]!r} and {local!r} are two local files with one lake name "
                              f"{entry.name!r} (names are NFC Unicode); rename one of them", name=local)
    entries.sort(key=lambda e: e.name)
    return True, entries


def _fill_from_statcache(lake: LakeBase, root: str, entries: list[Entry]) -> None:
    """Take each entry's hash from the stat cache when its stat is unchanged since it was hashed."""
    cached = lake.statcache.lookup_many(root)
    for e in entries:
        hit = cached.get(e.path)
        if hit is not None and hit[0] == stat_key(e.stat):
            e.hash = hit[1]


def _remember(lake: LakeBase, entries: Sequence[Entry]) -> None:
    """Put the hashes just read into the stat cache (not those of files too recently modified)."""
    limit = time.time() - RACY_SECONDS
    lake.statcache.put_many((e.path, stat_key(e.stat), e.hash) for e in entries
                            if e.read and e.hash and e.stat.st_mtime < limit)


def _parallel(entries: list[Entry], work: Callable[[Entry], None], description: str,
              work_many: Callable[[list[Entry]], None] | None = None) -> None:
    """Run ``work`` over entries: small files in this thread, big ones on a pool.

    A small file costs a few short syscalls, and handing the GIL between
    threads around each one is slower than doing them in a row (measured: 3x
    slower for 10k files of 1 KB). Big files spend their time in reads,
    writes and blake3, which release the GIL, so threads overlap them.
    ``work_many``, when given, takes the small files in batches of up to
    256 files and :data:`BATCH_BYTES` instead.
    """
    small = [e for e in entries if e.stat.st_size < BIG_FILE]
    big = [e for e in entries if e.stat.st_size >= BIG_FILE]
    with progress(len(entries), description) as advance:
        if work_many is None:
            for i, e in enumerate(small):
                work(e)
                if i % 256 == 255:
                    advance(256)
            advance(len(small) % 256)
        else:
            batch: list[Entry] = []
            held = 0
            for e in small:
                batch.append(e)
                held += e.stat.st_size
                if len(batch) == 256 or held >= BATCH_BYTES:
                    work_many(batch)
                    advance(len(batch))
                    batch, held = [], 0
            work_many(batch)
            advance(len(batch))
        if len(big) <= 1:
            for e in big:
                work(e)
                advance(1)
            return

        def run(e: Entry) -> None:
            work(e)
            advance(1)

        pool = ThreadPoolExecutor(min(len(big), os.cpu_count() or 2, 8), thread_name_prefix="limnos-add")
        try:
            for _ in pool.map(run, big):
                pass
        finally:
            # On Ctrl-C or an error, files not yet started are dropped; those in flight finish,
            # so that every object this add wrote is known (its entry's ``new``) and can be removed.
            pool.shutdown(wait=True, cancel_futures=True)


def add_path(lake: LakeBase, path: str, name: str | None, metadata: Mapping[str, Any] | None,
             move: bool) -> AddResult:
    """Add a local file or folder to the lake in one commit (see :meth:`limnos.Lake.add`).

    Args:
        lake: the lake to add to.
        path: a local file or folder.
        name: its name (a folder: the prefix) in the lake; None: :func:`default_name`.
        metadata: set on every added file (also on unchanged ones that lack it).
        move: delete the local files once the commit is done.

    Returns:
        An :class:`AddResult` with the latest File of every name, in name order.

    Raises:
        SourceNotFound: ``path`` does not exist.
        InvalidName: ``name``, or a name a file would get, is not valid.
        MetadataError: ``metadata`` cannot be stored (nothing is written then).
        StoreError: a remote lake's store did not take every new object (nothing is committed then).
        StoreFull: the disk is full; the objects this add stored are removed again.

    An add that fails or is interrupted (``KeyboardInterrupt``) before its commit
    removes the objects it stored that nothing else refers to; the interrupt
    carries a note saying what was and was not committed.
    """
    if name is not None:
        if not isinstance(name, str):
            raise InvalidName(f"a name in the lake must be a str, not {type(name).__name__}", name=name)
        validate_name(name.rstrip("/"))
    store = lake.cache  # files are hashed into the local store (or cache), then uploaded if remote
    is_folder, entries = scan(path, name, skip=[store.root])
    lake.check_metadata(metadata)
    committed: list[int] = []  # the number of new versions, once the commit is done
    writer = store.pack_writer(durable=bool(lake.config.get("fsync", True)), min_objects=MIN_PACK_OBJECTS)
    try:
        with lake.writing():  # from the first look at the store (a found object is reused) to the commit
            return _add_entries(lake, path, entries, is_folder, metadata, move, committed, writer)
    except BaseException as exc:  # outside writing(): removing the new objects waits for the writers in flight
        removed = writer.abort()  # objects in packs not yet published: only staging files held them
        removed += 0 if committed else discard_new_objects(lake, [e.hash for e in entries if e.new and e.hash],
                                                           packs=writer.published)
        if isinstance(exc, KeyboardInterrupt):
            what = f"the add of {path} ({len(entries)} files)"
            add_note(exc, f"{what} was committed ({committed[0]} new versions) before the interrupt" if committed
                     else f"{what} was not committed; the {removed} new objects it had stored were removed")
        full = store_full_error(exc, store.root, f"adding {path}")
        if full is not None:
            raise full from exc
        raise


def _add_entries(lake: LakeBase, path: str, entries: list[Entry], is_folder: bool,
                 metadata: Mapping[str, Any] | None, move: bool, committed: list[int], writer: PackWriter) -> AddResult:
    """Store the entries' objects and commit them: the body of :func:`add_path`, which cleans up after it.

    Small files go into ``writer``'s new pack, big ones are cut into chunks
    packed there too, files in between are loose objects (``store/packed.py``).
    """
    store = lake.cache
    _fill_from_statcache(lake, os.path.abspath(path), entries)
    pack_at, chunk_at = layout_thresholds(lake)

    def ingest(e: Entry) -> None:
        if e.hash is not None and store.has(e.hash):
            return  # unchanged since it was last hashed, and its object is there: no read
        size = e.stat.st_size
        if size <= pack_at:
            e.hash, e.size, e.new = store.ingest_packed(writer, e.path)
        elif chunk_at and size >= chunk_at:
            e.hash, e.size, e.new = store.ingest_chunked(writer, e.path)
        else:
            e.hash, e.size, e.new = store.ingest(e.path, size)
            e.loose = e.new
        e.read = True

    def ingest_many(batch: list[Entry]) -> None:
        packable = [e for e in batch if e.hash is None and e.stat.st_size <= pack_at]
        for e in batch:
            if e.hash is not None or e.stat.st_size > pack_at:
                ingest(e)
        for e, (digest, size, new) in zip(packable, store.ingest_packed_many(writer, [e.path for e in packable]),
                                          strict=True):
            e.hash, e.size, e.new, e.read = digest, size, new, True

    _parallel(entries, ingest, f"adding {os.path.basename(os.path.abspath(path)) or path}", ingest_many)
    store.write_pending_chunklists(writer)  # packs first, then the chunk lists naming their chunks
    latest = lake.catalog.latest_rows([e.name for e in entries])
    changed = [e for e in entries if e.name not in latest or latest[e.name].hash != e.hash]
    changed_names = {e.name for e in changed}
    result: dict[str, File] = {e.name: File(lake, latest[e.name]) for e in entries if e.name not in changed_names}

    commit = lake.new_commit("add")
    inputs = lake.current_inputs()
    new_ids = []
    for e in changed:
        assert e.hash is not None  # every entry was hashed, or its hash came from the stat cache
        row = commit.add_file(e.name, e.hash, e.size if e.read else e.stat.st_size)
        commit.add_inputs(row["id"], inputs)
        new_ids.append(row["id"])
    meta_targets = list(new_ids)
    if metadata:
        current = lake.catalog.metadata_of([f.id for f in result.values()])
        meta_targets += [f.id for f in result.values() if any(current[f.id].get(k) != v for k, v in metadata.items())]
        commit.add_metadata(meta_targets, metadata)
    if commit.files or commit.metadata:
        if not lake.store.local:
            _upload(lake, changed)
        elif lake.config.get("fsync", True):
            # The loose objects this add stored or found (one a crashed writer left may be unflushed), on disk
            # before the records name them; new packs and chunk lists were fsynced when they were written.
            store.sync_objects([e.hash for e in changed if e.read and e.hash and (e.loose or not e.new)])
        commit.write()
        committed.append(len(changed))
        for row in commit.files:
            result[row["name"]] = commit.file(row)
        if metadata:
            # One read of the files that got metadata, with it loaded (not one lookup, and one
            # team-lake catch-up, per file).
            targets = set(meta_targets)
            rows = lake.catalog.files_by_ids([f.id for f in result.values() if f.id in targets])
            fresh = {f.id: f for f in lake.files_with_metadata(list(rows.values()))}
            result = {name: fresh.get(f.id, f) for name, f in result.items()}
    _remember(lake, entries)
    if move:
        for e in entries:
            os.unlink(e.path)
    return AddResult([result[e.name] for e in entries], new_versions=len(changed), from_folder=is_folder)


def layout_thresholds(lake: LakeBase) -> tuple[int, int]:
    """(pack objects up to this size, chunk files from this size; 0: never) from the lake's settings."""
    from ..store.chunks import CHUNK_THRESHOLD
    from ..store.lakepacks import PACK_THRESHOLD

    return (int(lake.config.get("pack_threshold", PACK_THRESHOLD)),
            int(lake.config.get("chunk_threshold", CHUNK_THRESHOLD)))


def discard_new_objects(lake: LakeBase, digests: Sequence[str], packs: Sequence[str] = ()) -> int:
    """Remove objects a failed write stored itself, unless something refers to them by now; how many went.

    Only a local lake's store is cleaned: a remote store's objects are left to
    ``gc``. An object that a file, a blob value or a records file in flight
    refers to (another writer reused it meanwhile) stays. A pack the write
    published (``packs``) goes only when every object in it is one of
    ``digests`` and unreferenced; a pack holding chunks is left to gc, which
    follows chunk lists (another writer may already name a chunk of it).
    """
    digests = sorted(set(digests))
    if not digests or not lake.store.local:
        return 0
    if lake.catalog.guard.held_by_this_thread():
        return 0  # inside an enclosing write we cannot wait for the other writers: the objects are left to gc
    removed = 0
    # As gc does: hold the writers off (another may have just reused one of these objects), then check and delete.
    with lake.collecting():
        try:
            keep = lake.catalog.hashes_in_use(digests) | _in_flight(lake)
        except Exception:  # the catalog itself failed (a full disk): keeping the objects is the safe side
            return 0
        for digest in digests:
            if digest in keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                if lake.cache.has_loose(digest):
                    lake.store.delete(digest)
                    removed += 1
                elif os.path.exists(lake.cache.chunklist_path(digest)):
                    lake.cache.delete_chunklist(digest)
                    removed += 1
        mine = set(digests) - keep
        for pack_id in packs:
            with contextlib.suppress(FileNotFoundError):
                members = set(lake.cache.packs.read_index(pack_id))
                if members <= mine:
                    lake.cache.packs.delete_pack(pack_id)
                    removed += len(members)
    return removed


def _in_flight(lake: LakeBase) -> set[str]:
    """Hashes that records files not yet in the catalog name (commits in flight, or to roll forward)."""
    from ..catalog import Commit
    from ..core.recovery import pending_records

    hashes: set[str] = set()
    for cid in pending_records(lake, grace=0):
        try:
            commit = Commit.from_jsonl(lake.store.read_record(cid))
        except Exception:  # an unreadable records file is never applied, so it refers to nothing
            continue
        hashes.update(f["hash"] for f in commit.files if f.get("hash"))
        hashes.update(m["v_str"] for m in commit.metadata if m.get("vtype") == "blob" and m.get("v_str"))
    return hashes


def store_full_error(exc: BaseException, folder: str, doing: str) -> StoreFull | None:
    """A :class:`StoreFull` for ``exc`` when it comes from a full disk under ``folder``, else None."""
    if isinstance(exc, StoreFull):
        return None
    if not full_disk_error(exc, folder):
        return None
    return StoreFull(f"no space left on the disk holding {folder} while {doing}",
                     hint="free space there, or delete unreferenced objects with lake.gc(dry_run=False), and try again",
                     path=folder)


def add_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` as :pep:`678` notes do (shown under its traceback on Python 3.11+)."""
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list):
        notes = []
        exc.__notes__ = notes  # type: ignore[attr-defined]  # the attribute add_note() keeps (3.11+)
    notes.append(note)


def _upload(lake: LakeBase, entries: Sequence[Entry]) -> None:
    """Upload new objects to a remote store before the catalog names them."""
    from ..store.transfer import TransferReport
    from .sync import upload_objects

    wanted = {e.hash for e in entries if e.hash}
    # A few objects: ask for each (and look in the pack indexes read already); many: one listing.
    present = (set(lake.store.list_hashes()) if len(wanted) > 32
               else {h for h in wanted if lake.store.has(h)} | (wanted & set(lake.store.pack_index())))
    lake.refresh_orphans(wanted, present)  # reused objects no live file names: another machine's gc may be near
    report = TransferReport("upload")
    # The small new objects of this commit travel as one pack (two conditional creates, pack then
    # index) when there are enough of them to be worth it (store/lakepacks.py's MIN_PACK_OBJECTS).
    upload_objects(lake.cache, lake.store, wanted, None, report, present=present, min_pack=MIN_PACK_OBJECTS)
    if report.failed:
        raise StoreError(f"{len(report.failed)} objects could not be uploaded, nothing was committed: {report.failed[0]}",
                         url=redact_url(lake.store.url))


def status_path(lake: LakeBase, path: str, name: str | None) -> Status:
    """Compare a local file or folder with the lake's latest versions (see :meth:`limnos.Lake.status`).

    Unchanged files cost a ``stat``; the others are hashed, never copied.

    Raises:
        SourceNotFound: ``path`` does not exist.
        InvalidName: ``name``, or a name a file would get, is not valid.
    """
    is_folder, entries = scan(path, name, skip=[lake.cache.root])
    _fill_from_statcache(lake, os.path.abspath(path), entries)

    def check(e: Entry) -> None:
        if e.hash is None:
            e.hash, _ = hashing.hash_file(e.path)
            e.read = True

    _parallel(entries, check, "checking")
    _remember(lake, entries)
    status = Status()
    if is_folder:
        prefix = (default_name(path) if name is None else name.strip("/"))
        known = lake.catalog.latest_under(f"{prefix}/" if prefix else "")
    else:
        rows = lake.catalog.latest_rows([entries[0].name])
        known = {n: r.hash for n, r in rows.items()}
    for e in entries:
        if e.name not in known:
            status.new.append(e.name)
        elif known[e.name] != e.hash:
            status.modified.append(e.name)
        else:
            status.unchanged.append(e.name)
    present = {e.name for e in entries}
    status.deleted = sorted(n for n in known if n not in present)
    return status
