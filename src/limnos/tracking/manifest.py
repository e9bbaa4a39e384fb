"""The ``limnos.lock`` manifest: which bytes each tracked path of a project must hold.

A YAML file committed to git beside the code (lazydata's model), listing for
each tracked path (relative to the manifest's folder, POSIX) every version it
has held: its BLAKE3 hash, its size and the scripts that used it::

    version: 1
    files:
    - path: data/x.csv
      hash: 3a7bd3e2...
      size: 1024
      usage: train.py

An optional ``settings:`` block before ``files`` holds what the project shares
through git (default remote, endpoint, region, profile, ``gitignore``): see
:mod:`limnos.tracking.settings`. An entry imported from lazydata
(``limnos import-lazydata``) holds ``sha256:`` instead of ``hash`` and ``size``
until the file is first read, when it gets its BLAKE3 ``hash`` and ``size``.

The file is written for git: sorted by path, one entry per version (newest
last), fixed key order, and rewritten only when its content changes, so a run
that changes nothing leaves the file (and ``git status``) alone. Both sides of
a git merge may list the same version: reading keeps one entry with both
usages. Writers take :func:`locked`, so concurrent ``track()`` calls lose no entry.

The project around a manifest (its lake, ``track``, status, pull) is
:mod:`limnos.tracking.project`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import LimnosError, ManifestError
from ..names import validate_name
from ..store import hashing
from .settings import ProjectSettings

#: The manifest's file name.
MANIFEST_NAME = "limnos.lock"
#: The manifest format this limnos writes (and the newest it reads).
FORMAT = 1
_HEADER = (
    "# limnos.lock: the data this project's code depends on, written by limnos.track().\n"
    "# Commit it with the code; 'limnos pull' fetches what it lists. One entry per version, newest last.\n"
)


# ------------------------------------------------------------------ manifest
@dataclass
class LockEntry:
    """One version of one tracked path.

    An entry imported from lazydata is *pending*: it knows only the SHA-256 of
    the bytes (``sha256``), with ``hash`` empty, until those bytes are read here;
    then it gets its BLAKE3 ``hash`` and ``size`` and keeps ``sha256``.
    """

    path: str
    hash: str
    size: int
    usage: list[str] = field(default_factory=list)
    sha256: str | None = None

    @property
    def pending(self) -> bool:
        """True for a lazydata entry whose bytes limnos has not read yet (no BLAKE3 hash)."""
        return not self.hash

    def to_yaml(self) -> dict[str, Any]:
        """The entry as written: path, hash, size, then usage (one path as a str, several as a sorted list)."""
        out: dict[str, Any] = {"path": self.path} if self.pending else {"path": self.path, "hash": self.hash,
                                                                           "size": self.size}
        if self.sha256:
            out["sha256"] = self.sha256  # lazydata's name for these bytes, kept so a second import adds nothing
        if self.usage:
            usage = sorted(set(self.usage))
            out["usage"] = usage[0] if len(usage) == 1 else usage
        return out


class Manifest:
    """``limnos.lock``: tracked paths (relative to its folder) and their versions."""

    def __init__(self, path: str, entries: list[LockEntry] | None = None,
                 settings: ProjectSettings | None = None) -> None:
        self.path = os.path.abspath(path)
        self.root = os.path.dirname(self.path)
        self.entries: list[LockEntry] = entries or []
        self.settings = settings or ProjectSettings()

    # -- reading -------------------------------------------------------------
    @classmethod
    def load(cls, path: str) -> Manifest:
        """Read a manifest; a missing file is an empty manifest. Entries repeated by a git merge become one.

        Raises:
            ManifestError: the file has merge conflict markers, is not valid YAML, is of a newer format,
                or holds an invalid entry.
        """
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return cls(path)
        except UnicodeDecodeError:
            raise ManifestError(f"{path} is not UTF-8 text; restore it from git", path=path) from None
        if any(line.startswith(("<<<<<<<", ">>>>>>>")) for line in text.splitlines()):
            raise ManifestError(f"{path} has git merge conflict markers; keep the entries of both sides "
                                "(one entry per version is fine) and remove the markers")
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ManifestError(f"cannot read {path}: {str(exc).splitlines()[0]}; fix it or restore it from git") from None
        except RecursionError:
            raise ManifestError(f"cannot read {path}: it nests too deeply; fix it or restore it from git", path=path) from None
        if not isinstance(data, dict) or not isinstance(data.get("files", []), list):
            raise ManifestError(f"{path} must be a mapping with a 'files' list; fix it or restore it from git")
        version = data.get("version", FORMAT)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ManifestError(f"{path} has version {version!r}, not a format number such as {FORMAT}; "
                                "fix it or restore it from git", path=path)
        if version > FORMAT:
            raise ManifestError(f"{path} has version {version}; upgrade limnos to read it", path=path)
        manifest = cls(path, settings=ProjectSettings.parse(data.get("settings"), path))
        seen: dict[tuple[str, str], LockEntry] = {}
        for n, raw in enumerate(data.get("files") or []):
            entry = _parse_entry(raw, f"{path}, entry {n + 1}")
            twin = seen.get((entry.path, entry.hash or f"sha256:{entry.sha256}"))
            if twin is not None:
                # Both sides of a git merge may list the same version: keep one, with both usages.
                twin.usage = sorted(set(twin.usage) | set(entry.usage))
                continue
            seen[(entry.path, entry.hash or f"sha256:{entry.sha256}")] = entry
            manifest.entries.append(entry)
        return manifest

    def paths(self) -> list[str]:
        """Every tracked path, sorted."""
        return sorted({e.path for e in self.entries})

    def versions(self, rel: str) -> list[LockEntry]:
        """The listed versions of a path, oldest first."""
        return [e for e in self.entries if e.path == rel]

    def newest(self, rel: str) -> LockEntry | None:
        """The newest listed version of a path, or None if it is not tracked."""
        versions = self.versions(rel)
        return versions[-1] if versions else None

    def relpath(self, abspath: str) -> str:
        """A local path as a manifest path (relative, POSIX).

        Raises:
            LimnosError: the path is outside the manifest's folder.
            InvalidName: the relative path is not a name limnos accepts.
        """
        rel = os.path.relpath(abspath, self.root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
            raise LimnosError(f"{abspath} is outside the project at {self.root}; track files inside it")
        name = rel.replace(os.sep, "/")
        validate_name(name)
        return name

    # -- changing ------------------------------------------------------------
    def record(self, rel: str, digest: str, size: int, usage: str | None) -> str:
        """Note that ``rel`` holds ``digest``; returns ``"new"``, ``"changed"`` or ``"unchanged"``."""
        versions = self.versions(rel)
        match = next((e for e in versions if e.hash == digest), None)
        if versions and versions[-1] is match:
            state = "unchanged"
        else:
            state = "changed" if versions else "new"
            if match is not None:
                # Back to an earlier version: that entry becomes the newest again (one entry per version).
                self.entries.remove(match)
            else:
                match = LockEntry(rel, digest, size)
            self.entries.append(match)
        if usage and usage not in match.usage:
            match.usage.append(usage)
        return state

    def pending_sha256(self, rel: str) -> set[str]:
        """SHA-256 digests of the lazydata entries of ``rel`` not read yet (empty for most paths)."""
        return {e.sha256 for e in self.versions(rel) if e.pending and e.sha256}

    def adopt(self, rel: str, sha256: str, digest: str, size: int) -> bool:
        """Turn the pending lazydata entry of ``rel`` with ``sha256`` into a BLAKE3 entry, in its place.

        Returns True if one was found. If the path already lists ``digest``, the
        pending entry is merged into that one (its usage kept).
        """
        pending = next((e for e in self.versions(rel) if e.pending and e.sha256 == sha256), None)
        if pending is None:
            return False
        twin = next((e for e in self.versions(rel) if e.hash == digest), None)
        if twin is not None:
            twin.usage = sorted(set(twin.usage) | set(pending.usage))
            twin.sha256 = twin.sha256 or sha256
            self.entries.remove(pending)
        else:
            pending.hash, pending.size = digest, size
        return True

    def text(self) -> str:
        """The file's content: a header comment, the settings if any, then the entries sorted by path,
        each path's newest last."""
        # A stable sort by path keeps each path's versions in their order, newest last.
        ordered = sorted(self.entries, key=lambda e: e.path)
        data: dict[str, Any] = {"version": FORMAT}
        if self.settings.to_yaml():
            data["settings"] = self.settings.to_yaml()
        data["files"] = [e.to_yaml() for e in ordered]
        body: str = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
        return _HEADER + body

    def save(self) -> bool:
        """Write the manifest if its content changed (atomically); True if it was written."""
        text = self.text()
        try:
            with open(self.path, encoding="utf-8") as f:
                if f.read() == text:
                    return False
        except FileNotFoundError:
            pass
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)
        return True


def _parse_entry(raw: Any, where: str) -> LockEntry:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} is not a mapping of path, hash, size, usage")
    path, digest, size = raw.get("path"), raw.get("hash"), raw.get("size")
    if not isinstance(path, str):
        raise ManifestError(f"{where} has no path")
    try:
        validate_name(path)
    except LimnosError as exc:
        raise ManifestError(f"{where}: {exc}") from None
    sha256 = raw.get("sha256")
    if sha256 is not None:
        if not isinstance(sha256, str) or not hashing.is_hash(sha256.lower()):
            raise ManifestError(f"{where} ({path}) has no valid sha256 (64 hex digits)")
        sha256 = sha256.lower()
    if digest is None and sha256 is not None:
        digest, size = "", 0  # a lazydata entry not read yet: only its SHA-256 is known
    elif not isinstance(digest, str) or not hashing.is_hash(digest):
        raise ManifestError(f"{where} ({path}) has no valid hash (64 lowercase hex digits)")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f"{where} ({path}) has no valid size")
    usage = raw.get("usage") or []
    usage = [usage] if isinstance(usage, str) else usage
    if not isinstance(usage, list) or not all(isinstance(u, str) for u in usage):
        raise ManifestError(f"{where} ({path}): usage must be a path or a list of paths")
    return LockEntry(path, digest, size, list(usage), sha256)


# ------------------------------------------------------------------ discovery and locking
def find_manifest(start: str) -> str | None:
    """The nearest ``limnos.lock`` in ``start`` (a folder) or its parents."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, MANIFEST_NAME)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent



@contextlib.contextmanager
def locked(manifest_path: str, lock_dir: str) -> Iterator[Manifest]:
    """The manifest at ``manifest_path``, read and then saved under an exclusive lock.

    The lock is a file in ``lock_dir`` (the lake's state folder: the manifest's own
    folder is the user's, and may be read-only), so concurrent ``track()`` calls of
    one project, in threads or processes, serialize their read-modify-write.
    """
    key = hashing.hash_bytes(os.path.abspath(manifest_path).encode())[:16]
    lock_path = os.path.join(lock_dir, f"project-{key}.lock")
    os.makedirs(lock_dir, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            manifest = Manifest.load(manifest_path)
            yield manifest
            manifest.save()
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


__all__ = ["FORMAT", "MANIFEST_NAME", "LockEntry", "Manifest", "find_manifest", "locked"]
