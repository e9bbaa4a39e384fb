"""Protection and deletion: ``lock``, ``unlock`` and ``rm``.

A deletion is a commit like any other (a tombstone row, in the records too),
so it replays on ``reindex`` and travels with ``push``/``pull``. It only
removes the catalog entry: the object stays until ``gc`` finds nothing else
refers to it. Only ``gc`` removes data from the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import FileLocked

if TYPE_CHECKING:
    from ..core.files import File
    from ..lake import Lake


def lock(lake: Lake, ref: str | File) -> File:
    file = lake.resolve(ref)
    if lake.catalog.locked_ids([file.id]):
        return file
    commit = lake.new_commit("lock")
    commit.extra.append({"type": "lock", "file_id": file.id, "locked_at": commit.created_at})
    commit.write()
    return file


def unlock(lake: Lake, ref: str | File) -> File:
    file = lake.resolve(ref)
    if not lake.catalog.locked_ids([file.id]):
        return file
    commit = lake.new_commit("unlock")
    commit.extra.append({"type": "unlock", "file_id": file.id})
    commit.write()
    return file


def rm(lake: Lake, ref: str | File, cascade: bool = False) -> list[File]:
    """Delete a file's catalog entry (and, with ``cascade``, everything made from it)."""
    file = lake.resolve(ref)
    from .lineage import downstream_files

    ids = [file.id] + ([f.id for f in downstream_files(lake, file)] if cascade else [])
    rows = lake.catalog.files_by_ids(ids)
    ids = [i for i in ids if i in rows]  # already deleted ones drop out
    locked = lake.catalog.locked_ids(ids)
    if locked:
        names = ", ".join(f"{rows[i].name}@{rows[i].version}" for i in ids if i in locked)
        raise FileLocked(f"{names} is locked; run 'limnos unlock' on it first if it really must go")
    commit = lake.new_commit("rm")
    commit.extra.extend([{"type": "tombstone", "file_id": i, "deleted_at": commit.created_at} for i in ids])
    commit.write()
    from ..core.files import File

    return [File(lake, rows[i]) for i in ids]
