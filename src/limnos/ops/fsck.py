"""``fsck``: every cataloged object exists (and, with ``read_data``, hashes right); orphans listed;
the records files and the catalog agree.

As restic's ``check --read-data-subset``, ``subset`` verifies a random share.
Records files are small and are the catalog's backup, so every fsck reads
them all and checks each one's checksum, as restic always checks its index.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, BinaryIO, cast

from ..core.recovery import Report, check_records
from ..errors import LimnosError
from ..progress import progress
from ..store import hashing
from .repack import check_layout, chunk_closure

if TYPE_CHECKING:
    from ..core.base import LakeBase


def split_absent(lake: LakeBase, absent: set[str]) -> tuple[list[str], list[str]]:
    """(missing everywhere, only on a remote) for objects absent from the lake's store.

    A local lake that pulled other people's records legitimately lacks their
    objects until they are read; one listing per remote tells those apart.

    Args:
        lake: the lake whose store lacks the objects.
        absent: hashes of referenced objects its store does not list.

    Returns:
        Both lists sorted. A remote lake has no remotes to ask: all are missing.

    Raises:
        LimnosError: a remote cannot be listed (checking it was asked for, so it is not skipped).
    """
    if not absent or not lake.store.local:
        return sorted(absent), []
    remote_only: set[str] = set()
    for remote in lake.remotes.list():
        try:
            remote_only |= absent & set(remote.store.list_hashes())
        except LimnosError as exc:
            raise LimnosError(f"cannot check remote {remote.name!r}: {exc}") from None
    return sorted(absent - remote_only), sorted(remote_only)


def fsck(lake: LakeBase, read_data: bool = False, subset: float | None = None) -> Report:
    """Check that every cataloged object exists (and with ``read_data``, hashes right); list orphans; check records.

    Every records file is read and its checksum checked; a commit in the catalog
    without its records file, a damaged records file, one older than the
    roll-forward grace that the catalog lacks, and one in quarantine are errors.

    Args:
        lake: the lake to check; nothing in it is changed.
        read_data: also read every object and compare its hash (slow: reads all the bytes).
        subset: with ``read_data``, read only this random share of the objects (0.1: 10%).

    Returns:
        A :class:`~limnos.core.recovery.Report`: ``missing``, ``remote_only``,
        ``corrupt``, ``orphans`` and ``quarantined`` (corrupt copies moved aside
        by a read, see ``fsck(repair=True)``) hold object hashes, the ``records_*``
        fields commit ids; ``ok`` is False when an object is missing or corrupt or
        the records and the catalog disagree.

    Raises:
        ValueError: ``subset`` is not in (0, 1].
        LimnosError: a remote that may hold the absent objects cannot be listed.
    """
    report = Report("fsck")
    lake.catch_up(force=True)  # a team lake: check against everything published so far
    check_records(lake, report)
    sizes = lake.catalog.object_sizes()
    referenced = lake.catalog.referenced_hashes()
    report.files = lake.catalog.count_files()
    listed = {o.hash: o for o in lake.store.iter_objects()}
    for digest in sorted(referenced):
        if digest in listed and digest in sizes and listed[digest].size != sizes[digest]:
            report.corrupt.append(digest)
    held = check_layout(lake, report, referenced, sizes, read_data,  # packed objects and chunked files
                        loose=None if lake.store.local else set(listed))
    report.objects = len(set(listed) | held)
    absent = referenced - set(listed) - held - set(report.missing)
    missing, report.remote_only = split_absent(lake, absent)
    report.missing = sorted(set(report.missing) | set(missing))
    report.orphans = sorted((set(listed) | held) - referenced - chunk_closure(lake, referenced))
    report.quarantined = lake.cache.quarantined()
    if read_data:
        todo = sorted(d for d in referenced if d in listed and d not in report.corrupt)
        if subset is not None:
            if not 0 < subset <= 1:
                raise ValueError("subset is a fraction in (0, 1], such as 0.1 for 10%")
            todo = random.sample(todo, max(1, int(len(todo) * subset))) if todo else []
        with progress(len(todo), "verifying") as advance:
            for digest in todo:
                with lake.store.open(digest) as f:
                    actual, size = hashing.hash_stream(cast(BinaryIO, f))
                report.bytes += size
                if actual != digest:
                    report.corrupt.append(digest)
                advance(1)
    return report
