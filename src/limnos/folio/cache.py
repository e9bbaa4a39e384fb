"""This user's cache of folio items: paths handed out by ``get_artifact_path`` and friends.

A path a folio hands out must outlive the folio object: users keep it, pass it
to other tools, open it after the folio is gone. So an item's bytes, once
read from an archive or a lake, are kept in the user's cache folder
(``platformdirs.user_cache_dir("limnos")/folio-items``; on Linux
``$XDG_CACHE_HOME/limnos/folio-items`` or ``~/.cache/limnos/folio-items``),
at ``<hash>/<file name>``, read-only, until :func:`prune_cache` removes them.

The folder is content-addressed: two folios holding the same bytes share one
file, and a cached file is used again only while it still hashes to its name
(a user who made it writable and changed it gets a fresh copy, not the
changed bytes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from datetime import timedelta

from ..store import hashing

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def cache_root() -> str:
    """The folder that holds cached folio items (it may not exist yet)."""
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("limnos"), "folio-items")


def item_path(digest: str, filename: str) -> str:
    """Where the item with hash ``digest`` is cached under ``filename`` (a plain file name)."""
    hashing.check_hash(digest)
    if os.sep in filename or filename in ("", ".", "..") or (os.altsep and os.altsep in filename):
        raise ValueError(f"{filename!r} is not a plain file name")
    return os.path.join(cache_root(), digest[:2], digest, filename)


def lookup(digest: str, filename: str) -> str | None:
    """The cached path of an item if it is there and whole (stamped as just used), else None."""
    path = item_path(digest, filename)
    try:
        if hashing.hash_file(path)[0] != digest:
            _unlink(path)  # changed by someone: never hand out other bytes under this hash
            return None
        os.utime(path)  # prune_cache removes the least recently used first
    except OSError:
        return None
    return path


def reserve(digest: str, filename: str) -> str:
    """The cache path for an item about to be written there (its folder made); write to a temporary name first."""
    path = item_path(digest, filename)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def seal(path: str) -> str:
    """Make a freshly cached item read-only; returns ``path``."""
    os.chmod(path, _READ_ONLY)
    return path


def store(src: str, digest: str, filename: str) -> str:
    """Cache a copy of ``src`` (whose hash is ``digest``) and return its path; an existing whole copy is reused."""
    found = lookup(digest, filename)
    if found is not None:
        return found
    dest = reserve(digest, filename)
    tmp = f"{dest}.part-{os.getpid()}"
    try:
        shutil.copyfile(src, tmp)
        seal(tmp)
        os.replace(tmp, dest)  # another process caching the same bytes wins or loses whole
    finally:
        _unlink(tmp)
    return dest


def prune_cache(older_than: timedelta | float = 0) -> int:
    """Delete cached folio items not used for ``older_than`` (a timedelta or seconds); returns how many.

    Paths handed out earlier stop working once pruned; a folio reads its items
    again from its archive or lake when next asked.
    """
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else float(older_than)
    cutoff = time.time() - seconds
    root = cache_root()
    removed = 0
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            try:
                if os.stat(path).st_mtime <= cutoff:
                    os.unlink(path)
                    removed += 1
            except OSError:
                continue
        if folder != root:
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only succeeds once empty
    return removed


def _unlink(path: str) -> None:
    # Gone already, or in a read-only folder someone else made: leave it.
    with contextlib.suppress(FileNotFoundError, PermissionError):
        os.unlink(path)


__all__ = ["cache_root", "item_path", "lookup", "prune_cache", "reserve", "seal", "store"]
