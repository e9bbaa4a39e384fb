"""Projects: ``limnos.track(path)``, and the project's status and manifest-driven pull.

lazydata's model, on a lake. Code says ``pd.read_csv(limnos.track("data/x.csv"))``;
the file's bytes go into the project's lake and one entry (path, hash, size,
usage) goes into ``limnos.lock``, a YAML file committed to git beside the
code. A clone of the repository then knows exactly which bytes each path
must hold, and ``track`` (or ``limnos pull``) puts them back from the local
lake or a remote.

Where things are:

* the manifest is the nearest ``limnos.lock`` at or above the tracked file's
  folder (nested manifests: the nearest wins); with none, one is created at
  the git repository's root. Its paths are relative to its own folder.
* the lake is ``$LIMNOS_LAKE``, else the nearest ``.limnos`` at or above the
  manifest's folder, which ``limnos init --project`` (or the first track in a
  git repository) creates.

The manifest file itself (format, merging, locking) is :mod:`limnos.tracking.manifest`.
This package sits above :mod:`limnos.lake`: a project opens its lake with
``limnos.open``/``limnos.init``. Those imports are made when a lake is first
needed, so importing this module (as the CLI does at start) stays light.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import sys
import time
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.provenance import git_root
from ..errors import (
    FileNotFound,
    LakeNotFound,
    LimnosError,
    ObjectNotAvailable,
    ProjectNotFound,
    RemoteError,
    redact_url,
)
from ..ops.add import RACY_SECONDS
from ..store import hashing
from ..store.links import UNSUPPORTED_ERRNOS, place, reflink
from ..store.statcache import stat_key
from .manifest import MANIFEST_NAME, LockEntry, Manifest, find_manifest, locked
from .settings import GitIgnore, ProjectSettings, apply_storage, read_settings, reset_storage

if TYPE_CHECKING:
    from ..lake import Lake

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _sha256_file(path: str) -> str:
    """The SHA-256 of a file, as lazydata listed it (lowercase hex)."""
    import hashlib

    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(hashing.CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _say(text: str) -> None:
    """One line on stderr, as lazydata prints: users see what track did without a logger set up."""
    print(f"limnos: {text}", file=sys.stderr, flush=True)


def _ignore_lake(root: str, lake_dir: str) -> None:
    """Keep the lake out of git: add it to the project's .gitignore (data lives in the lake, not in git)."""
    rel = os.path.relpath(lake_dir, root)
    if rel.startswith("..") or not os.path.exists(os.path.join(root, ".git")):
        return
    GitIgnore(root).add(rel.replace(os.sep, "/").rstrip("/") + "/", anchored=False)


def _open_project_lake(root: str, lake: str | Lake | None, create: bool, link: str = "copy",
                       catalog: str | None = None) -> tuple[Lake, bool]:
    """(lake, created) for a project at ``root``."""
    from .. import lake as api
    from ..core import opening
    from ..lake import Lake

    if isinstance(lake, Lake):
        return lake, False
    where = lake or os.environ.get("LIMNOS_LAKE") or api.find_lake(root)
    if where:
        try:
            return api.open(where), False
        except LakeNotFound:
            if not (create and lake):
                raise
            return api.init(lake, catalog=catalog, link=link), True
    if not create:
        raise LakeNotFound(f"no lake for the project at {root}",
                           hint=f"call limnos.tracking.init_project({root!r}) to make one", path=root)
    path = os.path.join(root, opening.DEFAULT_DIR)
    new = api.init(path, catalog=catalog, link=link)
    _ignore_lake(root, path)
    return new, True


def use_project_remote(lake: Lake, settings: ProjectSettings) -> bool:
    """Give a local lake the project's remote as ``origin`` when it has no ``origin`` yet; True if added.

    A remote this machine set itself (``lake.remotes.add('origin', ...)``) wins:
    the project's setting is a default for clones, not an override.
    """
    if not settings.remote or not lake.store.local or "origin" in lake.remotes:
        return False
    # Not checked here: a clone must start even offline; the first download reports an unreachable remote.
    lake.remotes.add("origin", settings.remote, default=not len(lake.remotes), check=False)
    return True


def save_remote(manifest_path: str, lock_dir: str, url: str, storage_options: dict[str, Any]) -> ProjectSettings:
    """Write ``url`` as the default remote into the settings of the ``limnos.lock`` at ``manifest_path``.

    Only the URL without a password, and the endpoint, region and profile of
    ``storage_options``, are written (:meth:`ProjectSettings.from_remote`).
    ``lock_dir`` is the folder of the manifest's lock file (a lake's state folder).
    """
    with locked(manifest_path, lock_dir) as manifest:
        manifest.settings = ProjectSettings.from_remote(url, storage_options, manifest.settings)
        return manifest.settings


# ------------------------------------------------------------------- project
@dataclass
class ProjectStatus:
    """How the working files differ from ``limnos.lock`` (and the lake from it)."""

    manifest: str
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # local bytes differ: the next track() records a new version
    missing: list[str] = field(default_factory=list)  # listed, not on disk: 'limnos pull' restores them
    outdated: list[str] = field(default_factory=list)  # at an older listed version: track/checkout updates them
    newer: list[str] = field(default_factory=list)  # name@N: a version in the lake the manifest does not list

    @property
    def clean(self) -> bool:
        """True when nothing changed, nothing is missing and the lake holds no unlisted version."""
        return not (self.changed or self.missing or self.newer or self.outdated)

    def to_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data (``unchanged`` as a count), for ``limnos status --json``."""
        return {"manifest": self.manifest, "clean": self.clean, "unchanged": len(self.unchanged),
                "changed": self.changed, "missing": self.missing, "outdated": self.outdated, "newer": self.newer}


@dataclass
class PullReport:
    """What a manifest-driven pull or checkout did."""

    paths: list[str] = field(default_factory=list)  # the manifest paths asked for
    restored: list[str] = field(default_factory=list)  # working files put back
    present: list[str] = field(default_factory=list)  # already there with the listed bytes
    kept: list[str] = field(default_factory=list)  # on disk with bytes never listed: left alone
    updated: list[str] = field(default_factory=list)  # held an older listed version: now the newest
    unavailable: list[str] = field(default_factory=list)  # listed by lazydata only (sha256): bytes never read here
    downloaded: int = 0
    bytes: int = 0
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, for ``limnos pull --json``."""
        return dict(self.__dict__)


class Project:
    """A folder with a ``limnos.lock`` and the lake its tracked files live in.

    Args:
        manifest_path: the project's ``limnos.lock`` (it need not exist yet).
        lake: an open Lake (the caller's: left open by :meth:`close`, unless ``owns_lake``), a lake
            path or URL, or None for ``$LIMNOS_LAKE`` or the nearest ``.limnos`` at or above the project.
        owns_lake: with an open ``lake``, whether :meth:`close` closes it.
    """

    def __init__(self, manifest_path: str, lake: str | Lake | None = None, owns_lake: bool = False) -> None:
        from ..lake import Lake

        self.manifest_path = os.path.abspath(manifest_path)
        self.root = os.path.dirname(self.manifest_path)
        self._lake_path = lake if isinstance(lake, str) else None
        self._lake: Lake | None = lake if isinstance(lake, Lake) else None
        # A lake we opened ourselves is ours to close; one handed to us belongs to the caller.
        self._owns_lake = owns_lake if self._lake is not None else True
        self._gitignore: GitIgnore | None = None
        # The project's endpoint, region and profile apply to every s3:// URL from now on (fsspec defaults).
        apply_storage(self.settings)
        if self._lake is not None:
            use_project_remote(self._lake, self.settings)

    def __repr__(self) -> str:
        return f"<Project {self.root}>"

    @property
    def settings(self) -> ProjectSettings:
        """The settings the project shares through git (``limnos.lock``'s ``settings`` block), read now.

        Raises:
            ManifestError: the block is not valid (or holds a credential).
        """
        return read_settings(self.manifest_path)

    @property
    def lake(self) -> Lake:
        """The project's lake, opened on first use; made beside ``limnos.lock`` if none is found.

        A fresh clone thus needs no ``init``: the first ``track`` or ``pull``
        creates the local lake and takes the remote from the project's settings.

        Raises:
            LakeNotFound: the given lake (or ``$LIMNOS_LAKE``) does not exist, or the project has no
                ``limnos.lock`` yet and no lake is found.
        """
        if self._lake is None:
            # Only the default place is made: a lake named by the caller or $LIMNOS_LAKE must exist (a typo
            # there should fail, not start an empty lake).
            create = os.path.isfile(self.manifest_path) and self._lake_path is None and not os.environ.get("LIMNOS_LAKE")
            self._lake, created = _open_project_lake(self.root, self._lake_path, create=create)
            if created:
                _say(f"created a lake for this project at {self._lake.path}")
            use_project_remote(self._lake, self.settings)
        return self._lake

    def close(self) -> None:
        """Close the lake if this project opened it; a later use opens it again."""
        if self._lake is not None and self._owns_lake:
            self._lake.close()
        self._lake = None

    def set_gitignore(self, on: bool) -> None:
        """Turn on or off adding tracked paths to ``.gitignore`` (the ``gitignore`` setting in ``limnos.lock``)."""
        with locked(self.manifest_path, self.lake.state_dir) as manifest:
            manifest.settings.gitignore = on

    def set_remote(self, url: str, **storage_options: Any) -> ProjectSettings:
        """Name ``url`` as the project's default remote in ``limnos.lock``, for every clone.

        Only the URL (without a password) and the endpoint, region and profile
        of ``storage_options`` are written: credentials never enter the file.
        Returns the settings as saved.
        """
        settings = save_remote(self.manifest_path, self.lake.state_dir, url, storage_options)
        apply_storage(settings)
        return settings

    def manifest(self) -> Manifest:
        """The project's ``limnos.lock`` as it is on disk now (empty if there is none yet).

        Raises:
            ManifestError: the file cannot be read or holds an invalid entry.
        """
        return Manifest.load(self.manifest_path)

    # -- hashing with the stat cache -----------------------------------------
    def _hash(self, abspath: str, st: os.stat_result) -> str:
        """The content hash; an unchanged file (same inode, size, mtime) costs only the stat already made."""
        cached: str | None = self.lake.statcache.get(abspath, stat_key(st))
        if cached is not None:
            return cached
        digest, _size = hashing.hash_file(abspath)
        self._remember(abspath, st, digest)
        return digest

    def _remember(self, abspath: str, st: os.stat_result, digest: str) -> None:
        """Cache a path's hash for its stat, unless it was written so recently that it may still change unseen."""
        if st.st_mtime < time.time() - RACY_SECONDS:
            self.lake.statcache.put_many([(abspath, stat_key(st), digest)])

    # -- track ---------------------------------------------------------------
    def track(self, path: str | os.PathLike[str], usage: str | None = None, force: bool = False) -> str:
        """Track one file (see :func:`track`); ``usage`` is an absolute script path or None.

        With ``force``, a working file that holds an older listed version is
        recorded as the newest version (going back on purpose), not updated.

        Returns what happened: ``new``, ``changed``, ``unchanged``, ``restored`` or ``updated``.
        """
        shown = os.fspath(path)
        abspath = os.path.abspath(shown)
        rel = Manifest(self.manifest_path).relpath(abspath)
        usage_rel = self._usage(usage)
        lake = self.lake
        with locked(self.manifest_path, self.lake.state_dir) as manifest:
            self._ignore(manifest, rel)
            try:
                st = os.stat(abspath)
            except FileNotFoundError:
                newest = manifest.newest(rel)
                if newest is None:
                    raise FileNotFound(f"{shown} does not exist and {self.manifest_path} does not list it; "
                                       "check the path, or create the file before tracking it") from None
                if newest.pending:
                    raise ObjectNotAvailable(f"{shown} does not exist, and {self.manifest_path} lists it from lazydata "
                                             f"(sha256 {newest.sha256 or ''}), whose bytes limnos has never read; "
                                             "copy the file there and track it once", digest=newest.sha256 or "") from None
                source = self._restore([newest])
                _say(f"restored {rel} from {source}")
                manifest.record(rel, newest.hash, newest.size, usage_rel)
                return "restored"
            if not os.path.isfile(abspath):
                raise LimnosError(f"{shown} is not a file; track each file (the CLI expands folders)")
            self._adopt_lazydata(manifest, rel, abspath)
            newest = manifest.newest(rel)
            digest = self._hash(abspath, st)
            if newest is not None and digest != newest.hash:
                self._check_hardlink_edit(rel, abspath, st, newest)
                if not force and self._stale(manifest, rel, digest):
                    manifest.record(rel, newest.hash, newest.size, usage_rel)
                    return "updated"
            if newest is None or digest != newest.hash or not lake.cache.has(digest):
                file = lake.add(abspath, name=rel).file
                assert file.hash is not None  # a local file is stored as an object, never as a reference
                # What the lake stored is what the manifest lists (the file may have changed since we hashed it).
                digest, size = file.hash, file.size
                self._link_working(abspath, st, digest)
            else:
                size = newest.size
            state = manifest.record(rel, digest, size, usage_rel)
        if state == "new":
            _say(f"tracking a new file {rel}")
        elif state == "changed":
            _say(f"{rel} changed; recorded a new version ({digest[:12]})")
        return state

    def _stale(self, manifest: Manifest, rel: str, digest: str) -> bool:
        """If the working file holds an older listed version, bring it to the newest one (one line); True if so.

        The manifest is the truth: after a ``git pull`` brings a newer
        ``limnos.lock``, a working file still at an older version is out of
        date, not a new version.
        """
        versions = manifest.versions(rel)
        newest = versions[-1]
        if newest.pending or not any(e.hash == digest for e in versions[:-1]):
            return False
        source = self._restore([newest])
        _say(f"{rel} held an older listed version ({digest[:12]}); updated it to the newest listed "
             f"version ({newest.hash[:12]}) from {source}")
        return True

    def _ignore(self, manifest: Manifest, rel: str) -> None:
        """Keep a tracked path out of git (``/rel`` in the root's .gitignore), unless the project turned it off."""
        if not manifest.settings.gitignore or git_root(self.root) is None:
            return
        if self._gitignore is None:
            self._gitignore = GitIgnore(self.root)
        self._gitignore.add(rel)

    def _adopt_lazydata(self, manifest: Manifest, rel: str, abspath: str) -> bool:
        """On the first read of a file imported from lazydata, store it and list its BLAKE3 hash; True if done."""
        wanted = manifest.pending_sha256(rel)
        if not wanted:
            return False
        sha = _sha256_file(abspath)
        if sha not in wanted:
            return False
        file = self.lake.add(abspath, name=rel).file
        assert file.hash is not None
        manifest.adopt(rel, sha, file.hash, file.size)
        _say(f"{rel}: lazydata's sha256 {sha[:12]} is now BLAKE3 {file.hash[:12]} in limnos.lock")
        return True

    def _usage(self, script: str | None) -> str | None:
        if not script:
            return None
        rel = os.path.relpath(os.path.abspath(script), self.root)
        if rel.startswith(".."):
            return None  # code outside the project (a library, a shell) is not a usage the project can name
        return rel.replace(os.sep, "/")

    def _check_hardlink_edit(self, rel: str, abspath: str, st: os.stat_result, newest: LockEntry) -> None:
        """Catch a working file hard-linked to the store that was edited in place: the object changed too.

        The object then holds bytes that do not match its name, so it is taken
        out of the store: restoring that version must fetch good bytes from a
        remote (verified) or fail, never hand out the edited ones as the old version.
        """
        lake = self.lake
        if not lake.cache.has_loose(newest.hash):
            return  # a packed or chunked object is never linked to a working file
        path = lake.cache.path(newest.hash)
        obj = os.stat(path)
        if (obj.st_ino, obj.st_dev) == (st.st_ino, st.st_dev):
            os.unlink(path)  # the working file keeps the inode: nothing the user sees is lost
            _say(f"warning: {rel} was edited in place while hard-linked to the lake, which changed the stored "
                 f"object {newest.hash[:12]} too; limnos removed it, so the previous version is gone unless a "
                 "remote has it ('limnos pull' gets it back from there; 'limnos fsck' lists it as missing)")

    # -- working files -------------------------------------------------------
    def _link_working(self, abspath: str, st: os.stat_result, digest: str) -> None:
        """Replace a just-stored working file by a link to its object when that saves disk and is allowed.

        reflink: shares extents copy-on-write, so an edit can never reach the
        object; always done where the file system can. hardlink/symlink: only
        when the lake's ``link`` setting opts in, since an in-place edit of a
        hard link rewrites the object (read-only bits do not stop root).
        """
        lake = self.lake
        if not lake.cache.has(digest):
            return
        obj = lake.cache.materialize(digest)  # a real file to link to (a packed object is extracted once)
        now = os.stat(abspath)
        if stat_key(now) != stat_key(st):
            return  # written again since we hashed it: leave it be
        tmp = os.path.join(os.path.dirname(abspath), f".{os.path.basename(abspath)}.limnos-{os.getpid()}")
        method: str | None = None
        try:
            if lake.link in ("hardlink", "symlink"):
                try:
                    if lake.link == "hardlink":
                        os.link(obj, tmp)
                    else:
                        os.symlink(obj, tmp)
                    method = lake.link
                except OSError as exc:
                    if exc.errno not in UNSUPPORTED_ERRNOS and exc.errno != errno.EMLINK:
                        raise
            if method is None:
                try:
                    reflink(obj, tmp)
                    os.chmod(tmp, st.st_mode & 0o7777)
                    method = "reflink"
                except OSError as exc:
                    if exc.errno not in UNSUPPORTED_ERRNOS:
                        raise
                    return  # no reflinks here: the working file stays an independent copy
            os.replace(tmp, abspath)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        self._remember(abspath, os.stat(abspath), digest)

    def _place(self, digest: str, abspath: str) -> None:
        """Put an object at a working path, atomically (a half-copied file would look like an edit)."""
        lake = self.lake
        os.makedirs(os.path.dirname(abspath), exist_ok=True)
        tmp = os.path.join(os.path.dirname(abspath), f".{os.path.basename(abspath)}.limnos-{os.getpid()}")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        # Copies and reflinks are independent bytes, so they stay writable (an edit becomes the next
        # version); hard links and symlinks share the object, so they are read-only as a guard.
        linked = lake.link in ("hardlink", "symlink")
        try:
            place(lake.fetch(digest), tmp, lake.link, readonly=linked)  # verified against its hash first
            os.replace(tmp, abspath)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        st = os.stat(abspath)
        self._remember(abspath, st, digest)

    def _restore(self, entries: Sequence[LockEntry]) -> str:
        """Put listed versions back on disk; returns where the bytes came from (``cache`` or a remote)."""
        lake = self.lake
        wanted = [e for e in entries if not lake.cache.has(e.hash)]
        source = "cache"
        if wanted:
            sources = self._download({e.hash: e.size for e in wanted}, None, None).sources
            source = sources[-1] if sources else source
        for entry in entries:
            self._place(entry.hash, os.path.join(self.root, entry.path))
        return source

    def _download(self, sizes: dict[str, int], remote: str | None, jobs: int | None,
                  report: PullReport | None = None) -> PullReport:
        """Fetch objects into the local lake: from the lake's own store if it is remote, else from its remotes."""
        from ..ops.sync import download_objects, import_records
        from ..store.transfer import TransferReport

        lake = self.lake
        report = report or PullReport()
        todo = {h: s for h, s in sizes.items() if not lake.cache.has(h)}
        if not todo:
            return report
        if not lake.store.local:
            candidates = [(redact_url(lake.store.url), lake.store)]
        else:
            remotes = lake.remotes
            if remote is None and not len(remotes):
                first = next(iter(todo))
                raise ObjectNotAvailable(f"object {first[:12]} is not in the lake at {lake.path} and no remote is set",
                                         hint="add one with lake.remotes.add('origin', URL), or push from a "
                                         "machine that has the data", digest=first)
            chosen = [remotes.get(remote)] if remote else sorted(remotes.list(), key=lambda r: r.name != remotes.default)
            candidates = [(f"remote {r.name}", r.store) for r in chosen]
        failures: list[str] = []
        for n, (label, store) in enumerate(candidates):
            transfer = TransferReport("pull")
            if lake.store.local and n == 0:
                import_records(lake, store, transfer)  # so this catalog knows the files it now holds
            download_objects(lake.cache, store, list(todo), jobs, transfer, todo)
            report.downloaded += transfer.transferred
            report.bytes += transfer.bytes
            if transfer.transferred:
                report.sources.append(label)
            failures = transfer.failed
            todo = {h: s for h, s in todo.items() if not lake.cache.has(h)}
            if not todo:
                return report
        raise RemoteError(f"{len(todo)} objects are on none of the lake's remotes "
                          f"({', '.join(label for label, _ in candidates)}); first: "
                          f"{failures[0] if failures else next(iter(todo))[:12]}; push them from a machine that has them")

    # -- status and pull -----------------------------------------------------
    def status(self) -> ProjectStatus:
        """Tracked files that changed or are missing, and lake versions the manifest lacks (stat-cached)."""
        manifest = self.manifest()
        lake = self.lake
        result = ProjectStatus(self.manifest_path)
        paths = manifest.paths()
        cached = lake.statcache.lookup_many(self.root + os.sep)
        for rel in paths:
            newest = manifest.newest(rel)
            abspath = os.path.join(self.root, *rel.split("/"))
            try:
                st = os.stat(abspath)
            except FileNotFoundError:
                result.missing.append(rel)
                continue
            hit = cached.get(abspath)
            if hit is not None and hit[0] == stat_key(st):
                digest = hit[1]
            else:
                digest, _ = hashing.hash_file(abspath)
                self._remember(abspath, st, digest)
            versions = manifest.versions(rel)
            if newest is not None and (digest == newest.hash or
                                       (newest.pending and _sha256_file(abspath) in manifest.pending_sha256(rel))):
                result.unchanged.append(rel)
            elif any(e.hash == digest for e in versions):
                result.outdated.append(rel)
            else:
                result.changed.append(rel)
        latest = lake.catalog.latest_rows(paths)
        for rel, row in sorted(latest.items()):
            if row.hash not in {e.hash for e in manifest.versions(rel)}:
                result.newer.append(f"{rel}@{row.version}")
        return result

    def select(self, targets: Sequence[str], cwd: str | None = None) -> list[str] | None:
        """Manifest paths that targets name (tracked paths, scripts in usage, folders, ``.``), or None
        when some target is none of these (it is then a lake ref, for the plain pull)."""
        manifest = self.manifest()
        paths = manifest.paths()
        cwd = os.path.abspath(cwd or os.getcwd())
        out: dict[str, None] = {}
        for target in targets:
            abspath = os.path.abspath(os.path.join(cwd, target))
            rel = os.path.relpath(abspath, self.root).replace(os.sep, "/")
            if rel == ".." or rel.startswith("../"):
                return None
            if rel == ".":
                out.update(dict.fromkeys(paths))
                continue
            if rel in paths:
                out[rel] = None
                continue
            users = [p for p in paths if any(rel in e.usage for e in manifest.versions(p))]
            if users:
                out.update(dict.fromkeys(users))
                continue
            under = [p for p in paths if p.startswith(rel + "/")]
            if under and (os.path.isdir(abspath) or not os.path.exists(abspath)):
                out.update(dict.fromkeys(under))
                continue
            return None
        return list(out)

    def pull(self, paths: Sequence[str], remote: str | None = None, jobs: int | None = None) -> PullReport:
        """Download the newest listed version of ``paths`` and put the working files in that state.

        Missing files are restored and files at an older listed version are
        updated (see :meth:`checkout`). A working file with bytes the manifest
        has never listed is kept (it may be an edit not yet tracked).
        """
        return self.checkout(paths, remote=remote, jobs=jobs)

    def checkout(self, paths: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None,
                 force: bool = False) -> PullReport:
        """Put tracked files in the state ``limnos.lock`` lists: each at its newest listed version.

        ``paths`` are manifest paths (default: every tracked path). A missing
        file is restored; a file holding an older listed version is updated; a
        file with bytes the manifest never listed is kept and reported, unless
        ``force`` (then it is overwritten: track it first to keep it). Objects
        come from the local lake, else the remotes.
        """
        manifest = self.manifest()
        paths = manifest.paths() if paths is None else list(paths)
        report = PullReport(paths=list(paths))
        if self.read_pending(paths):
            manifest = self.manifest()
        todo: list[tuple[LockEntry, list[str]]] = []
        for rel in paths:
            entry = manifest.newest(rel)
            if entry is None:
                continue
            abspath = self._abspath(rel)
            try:
                st = os.stat(abspath)
            except FileNotFoundError:
                if entry.pending:
                    report.unavailable.append(rel)
                else:
                    todo.append((entry, report.restored))
                continue
            digest = self._hash(abspath, st)
            if digest == entry.hash:
                report.present.append(rel)
            elif entry.pending:
                report.unavailable.append(rel)
            elif force or any(e.hash == digest for e in manifest.versions(rel)):
                todo.append((entry, report.updated))
            else:
                report.kept.append(rel)
        self._download({e.hash: e.size for e, _ in todo}, remote, jobs, report)
        for entry, outcome in todo:
            self._place(entry.hash, self._abspath(entry.path))
            outcome.append(entry.path)
        return report

    def read_pending(self, paths: Sequence[str] | None = None) -> list[str]:
        """Read the working files of entries imported from lazydata that limnos has not read yet.

        Each one whose SHA-256 matches gets its BLAKE3 hash in ``limnos.lock``
        and its bytes in the lake. Returns the paths done.
        """
        manifest = self.manifest()
        todo = [p for p in (manifest.paths() if paths is None else paths)
                if manifest.pending_sha256(p) and os.path.isfile(self._abspath(p))]
        if not todo:
            return []
        with locked(self.manifest_path, self.lake.state_dir) as locked_manifest:
            return [rel for rel in todo if self._adopt_lazydata(locked_manifest, rel, self._abspath(rel))]

    def _abspath(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))


# --------------------------------------------------------------- module API
_projects: dict[str, Project] = {}


def _close_all() -> None:
    for project in list(_projects.values()):
        with contextlib.suppress(Exception):
            project.close()
    _projects.clear()


atexit.register(_close_all)


def close_projects() -> None:
    """Close the lakes ``track`` opened in this process (they are also closed at exit), and take
    the projects' storage settings back out of fsspec's defaults."""
    _close_all()
    reset_storage()


def init_project(path: str | os.PathLike[str] | None = None, lake: str | Lake | None = None,
                 link: str = "copy", catalog: str | None = None) -> tuple[Project, list[str]]:
    """Create ``limnos.lock`` (in ``path``, else the git root, else the cwd) and a lake if none is found.

    Returns the project and what was created, for messages.
    """
    folder = os.path.abspath(os.fspath(path)) if path is not None else (git_root(os.getcwd()) or os.getcwd())
    if not os.path.isdir(folder):
        raise LimnosError(f"{folder} is not a folder; create it first")
    manifest_path = os.path.join(folder, MANIFEST_NAME)
    created = []
    if not os.path.exists(manifest_path):
        Manifest(manifest_path).save()
        created.append(manifest_path)
    opened, new = _open_project_lake(folder, lake, create=True, link=link, catalog=catalog)
    if new:
        created.append(opened.path)
    return Project(manifest_path, opened, owns_lake=not (lake is not None and not isinstance(lake, str))), created


def project_for(start: str, lake: str | Lake | None = None, create: bool = False) -> Project:
    """The project whose ``limnos.lock`` is nearest at or above ``start`` (a folder).

    With ``create``, a git repository without one gets a manifest (and a lake if
    none is found) at its root.
    """
    manifest = find_manifest(start)
    if manifest is None:
        root = git_root(start) if create else None
        if root is None:
            raise ProjectNotFound(f"no {MANIFEST_NAME} in {os.path.abspath(start)} or above",
                                  hint="call limnos.tracking.init_project(root) in your project's root folder",
                                  path=os.path.abspath(start))
        project, created = init_project(root, lake)
        for item in created:
            _say(f"created {item}")
        if lake is None:
            _projects[project.manifest_path] = project
        return project
    if lake is not None:
        return Project(manifest, lake)
    if manifest not in _projects:
        _projects[manifest] = Project(manifest)
    return _projects[manifest]


def _caller_script() -> str | None:
    """The script or notebook that called into limnos: the first frame outside this package."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
        frame = frame.f_back
    filename = frame.f_code.co_filename if frame is not None else ""
    if filename and not filename.startswith("<") and "ipykernel_" not in filename and os.path.isfile(filename):
        return os.path.abspath(filename)
    from ..core.provenance import notebook_path

    notebook = notebook_path()
    if notebook and os.path.isfile(notebook):
        return os.path.abspath(notebook)
    argv0 = sys.argv[0] if sys.argv else ""
    return os.path.abspath(argv0) if argv0 and os.path.isfile(argv0) and argv0.endswith((".py", ".ipynb")) else None


def track(path: str | os.PathLike[str]) -> str:
    """Track a data file the calling code depends on, and return ``path`` unchanged.

    >>> df = pd.read_csv(limnos.track("data/x.csv"))

    * a new file is stored in the project's lake and listed in ``limnos.lock``;
    * an unchanged file costs a ``stat`` (stat cache) and only its usage is updated;
    * a changed file is stored as a new version, listed after the older ones;
    * a listed file that is missing is put back from the local lake, or from a
      remote (a message says which);
    * a missing file that is not listed raises :class:`FileNotFound`.

    The usage recorded is the calling script or notebook, relative to the manifest.
    """
    shown = os.fspath(path)
    if not isinstance(shown, str):
        raise TypeError(f"track takes a str path, not {type(shown).__name__}")
    abspath = os.path.abspath(shown)
    project = project_for(os.path.dirname(abspath), create=True)
    project.track(abspath, usage=_caller_script())
    return shown


def expand(paths: Iterable[str]) -> list[str]:
    """Files named by paths, folders expanded (for ``limnos track DIR``); lake and git folders skipped."""
    out: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            out.append(path)
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in (".git", ".limnos"))
            # limnos.lock itself and our own half-placed working files are never data.
            out += [os.path.join(folder, f) for f in sorted(files)
                    if f != MANIFEST_NAME and not f.startswith(f"{MANIFEST_NAME}.tmp-") and ".limnos-" not in f]
    return out


__all__ = [
    "Project",
    "ProjectStatus",
    "PullReport",
    "close_projects",
    "expand",
    "init_project",
    "project_for",
    "save_remote",
    "track",
    "use_project_remote",
]
