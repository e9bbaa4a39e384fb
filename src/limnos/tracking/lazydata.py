"""``limnos import-lazydata``: read a project's ``lazydata.yml`` once into ``limnos.lock``.

lazydata lists each tracked path's versions by SHA-256 (``hash``, in upper-
or lowercase hex), with the scripts that used them::

    files:
    - path: data/my_big_table.csv
      hash: 2C94697198875B6E...
      usage: my_script.py
    remote: s3://mybucket/lazydata

Each version becomes a *pending* entry of ``limnos.lock`` (``sha256:`` and no
``hash``), listed before any version limnos already knows of that path, so
the history is kept. A pending entry gets its BLAKE3 ``hash`` and ``size``
the first time limnos reads bytes with that SHA-256: here, for the working
files present now, and later in ``track()`` or ``checkout``. Versions whose
bytes are nowhere but in lazydata's cache stay pending (``status`` lists
them; ``checkout`` reports them as unavailable).

lazydata's remote is not a limnos lake (its objects are named by SHA-256), so
it is reported, not used: set the project's remote with ``limnos remote add``.
Importing again adds nothing that is already listed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import LimnosError, ManifestError
from ..names import validate_name
from ..store import hashing
from .manifest import LockEntry, locked
from .project import init_project

#: lazydata's manifest file name.
LAZYDATA_NAME = "lazydata.yml"


@dataclass
class LazydataImport:
    """What :func:`import_lazydata` did."""

    source: str
    manifest: str
    imported: list[str] = field(default_factory=list)  # "path sha256[:12]" of each version added
    skipped: int = 0  # versions limnos.lock already listed
    read: list[str] = field(default_factory=list)  # working files read now: their entries have BLAKE3 hashes
    pending: list[str] = field(default_factory=list)  # paths whose newest version limnos has not read
    remote: str | None = None  # lazydata's remote, not usable as a limnos remote

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, for ``limnos import-lazydata --json``."""
        return dict(self.__dict__)


def read_lazydata(path: str) -> tuple[list[LockEntry], str | None]:
    """The versions listed in a ``lazydata.yml`` (as pending entries, in file order) and its remote.

    Raises:
        ManifestError: the file is not valid YAML, or an entry has no valid path or SHA-256.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise LimnosError(f"no {LAZYDATA_NAME} at {path}; give the folder of the lazydata project") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {str(exc).splitlines()[0]}", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("files") or [], list):
        raise ManifestError(f"{path} must be a mapping with a 'files' list", path=path)
    entries = []
    for n, raw in enumerate(data.get("files") or []):
        where = f"{path}, entry {n + 1}"
        if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
            raise ManifestError(f"{where} has no path", path=path)
        rel = raw["path"].replace(os.sep, "/").removeprefix("./")
        try:
            validate_name(rel)
        except LimnosError as exc:
            raise ManifestError(f"{where}: {exc}", path=path) from None
        sha = raw.get("hash")
        if not isinstance(sha, str) or not hashing.is_hash(sha.lower()):
            raise ManifestError(f"{where} ({rel}) has no valid SHA-256 hash", path=path)
        usage = raw.get("usage") or []
        usage = [usage] if isinstance(usage, str) else usage
        if not isinstance(usage, list) or not all(isinstance(u, str) for u in usage):
            raise ManifestError(f"{where} ({rel}): usage must be a path or a list of paths", path=path)
        entries.append(LockEntry(rel, "", 0, list(usage), sha.lower()))
    remote = data.get("remote")
    return entries, remote if isinstance(remote, str) and remote else None


def import_lazydata(folder: str | os.PathLike[str] | None = None, lake: str | None = None) -> LazydataImport:
    """Read ``lazydata.yml`` in ``folder`` (default: the cwd) into the ``limnos.lock`` beside it.

    Makes ``limnos.lock`` and a lake (``lake``, else the one found, else
    ``.limnos`` there) if there are none, adds every version
    lazydata listed that limnos.lock lacks, then reads the working files
    present now, so their entries get BLAKE3 hashes and their bytes are in the lake.

    Raises:
        LimnosError: there is no ``lazydata.yml`` there.
        ManifestError: it (or limnos.lock) cannot be read.
    """
    root = os.path.abspath(os.fspath(folder) if folder is not None else os.getcwd())
    source = os.path.join(root, LAZYDATA_NAME)
    entries, remote = read_lazydata(source)
    project, _ = init_project(root, lake)
    try:
        report = LazydataImport(source, project.manifest_path, remote=remote)
        with locked(project.manifest_path, project.lake.state_dir) as manifest:
            known = {(e.path, e.sha256) for e in manifest.entries if e.sha256}
            added = _unique([e for e in entries if (e.path, e.sha256) not in known])
            report.skipped = len(entries) - len(added)
            # lazydata's versions are older than any limnos already recorded for the path: list them first.
            manifest.entries[:0] = added
            report.imported = [f"{e.path} {(e.sha256 or '')[:12]}" for e in added]
        report.read = project.read_pending(sorted({e.path for e in entries}))
        manifest = project.manifest()
        report.pending = [p for p in manifest.paths() if (newest := manifest.newest(p)) is not None and newest.pending]
        return report
    finally:
        project.close()


def _unique(entries: list[LockEntry]) -> list[LockEntry]:
    """One entry per (path, sha256), keeping the last position (lazydata lists a version again when it returns)."""
    last = {(e.path, e.sha256): n for n, e in enumerate(entries)}
    return [e for n, e in enumerate(entries) if last[(e.path, e.sha256)] == n]


__all__ = ["LAZYDATA_NAME", "LazydataImport", "import_lazydata", "read_lazydata"]
