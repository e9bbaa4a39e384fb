"""Deleting files, and protecting them from it: ``rm``, ``lock`` and ``unlock``.

A deletion is a commit like any other (a tombstone row, in the records too),
so it replays on ``reindex`` and travels with ``push``/``pull``. It only
removes the catalog entry: the object stays until ``gc`` finds nothing else
refers to it. Only ``gc`` removes data from the store.

A file that others were made from is refused unless the caller says what
becomes of them: ``cascade`` deletes them too, ``keep_dependents`` keeps them
with lineage that shows the deleted input as removed (the catalog keeps the
rows of deleted files; only ``gc`` takes their bytes).

A lock is a commit too (a ``lock`` or ``unlock`` row): ``rm`` refuses a
locked file, also when a cascade reaches it, and ``gc`` never deletes the
object of a locked file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.files import File
from ..errors import FileHasDependents, FileLocked, LimnosError
from .lineage import downstream_files

if TYPE_CHECKING:
    from ..core.base import LakeBase

_LISTED = 10  # dependents named in a refusal's message; the error's ``dependents`` holds them all


def is_locked(lake: LakeBase, ref: str | File) -> bool:
    """True when the file ``ref`` names is locked.

    Raises:
        FileNotFound: ``ref`` names no file.
    """
    return bool(lake.catalog.locked_ids([lake.resolve(ref).id]))


def lock(lake: LakeBase, ref: str | File) -> File:
    """Lock a file, so that ``rm`` refuses it (see :meth:`limnos.Lake.lock`).

    Locking a locked file changes nothing and writes no commit.

    Returns:
        The locked file.

    Raises:
        FileNotFound: ``ref`` names no file.
    """
    return _set_locked(lake, ref, True)


def unlock(lake: LakeBase, ref: str | File) -> File:
    """Unlock a file, so that ``rm`` may delete it again.

    Unlocking a file that is not locked changes nothing and writes no commit.

    Returns:
        The unlocked file.

    Raises:
        FileNotFound: ``ref`` names no file.
    """
    return _set_locked(lake, ref, False)


def _set_locked(lake: LakeBase, ref: str | File, locked: bool) -> File:
    """Commit a ``lock`` or ``unlock`` row for the file, unless it is in that state already."""
    file = lake.resolve(ref)
    if bool(lake.catalog.locked_ids([file.id])) == locked:
        return file
    commit = lake.new_commit("lock" if locked else "unlock")
    if locked:
        commit.extra.append({"type": "lock", "file_id": file.id, "locked_at": commit.created_at})
    else:
        commit.extra.append({"type": "unlock", "file_id": file.id})
    commit.write()
    return file


def rm(lake: LakeBase, ref: str | File, cascade: bool = False, keep_dependents: bool = False) -> list[File]:
    """Delete a file's catalog entry (and, with ``cascade``, everything made from it), in one commit.

    A file that others were made from (its *dependents*: files that list it as
    an input, and files made from those, transitively) is refused unless the
    call says what becomes of them:

    * ``cascade``: they go too, every version made from it, directly or through
      other files (a version of the same name that was not made from it stays);
    * ``keep_dependents``: they stay, and their lineage (``lake.lineage``,
      ``File.removed_inputs``) shows this file as removed.

    Dependents are looked up when the call begins: a file another writer makes
    from this one meanwhile keeps it as a removed input, as ``keep_dependents`` would.

    Args:
        lake: the lake to delete from.
        ref: the file (a name deletes its latest version only).
        cascade: also delete every file made from it, directly or through other files.
        keep_dependents: delete it alone and keep what was made from it.

    Returns:
        The deleted files, ``ref``'s first; files deleted before drop out.

    Raises:
        FileNotFound: ``ref`` names no file.
        FileHasDependents: files were made from it and neither option was given; nothing was deleted.
        FileLocked: one of the files is locked; nothing was deleted.
        LimnosError: both ``cascade`` and ``keep_dependents`` were given.
    """
    if cascade and keep_dependents:
        raise LimnosError("cascade and keep_dependents exclude each other; pass one of them")
    file = lake.resolve(ref)
    dependents = downstream_files(lake, file)
    if dependents and not (cascade or keep_dependents):
        refs = [f.ref for f in dependents]
        listed = ", ".join(refs[:_LISTED]) + (f" and {len(refs) - _LISTED} more" if len(refs) > _LISTED else "")
        raise FileHasDependents(
            f"{file.ref} was not deleted: {len(refs)} file{'s were' if len(refs) > 1 else ' was'} made from it: {listed}",
            hint="pass cascade=True to delete them too, or keep_dependents=True to keep them "
                 "(their lineage then shows it as removed)", ref=file.ref, dependents=refs)
    ids = [file.id] + ([f.id for f in dependents] if cascade else [])
    rows = lake.catalog.files_by_ids(ids)
    ids = [i for i in ids if i in rows]  # already deleted ones drop out
    locked = lake.catalog.locked_ids(ids)
    if locked:
        refs = [f"{rows[i].name}@{rows[i].version}" for i in ids if i in locked]
        raise FileLocked(f"{', '.join(refs)} is locked", hint="call lake.unlock(ref) first if it really must go", refs=refs)
    commit = lake.new_commit("rm")
    commit.extra.extend([{"type": "tombstone", "file_id": i, "deleted_at": commit.created_at} for i in ids])
    commit.write()
    return [File(lake, rows[i]) for i in ids]
