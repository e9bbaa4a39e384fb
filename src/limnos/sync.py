"""Push and pull: objects and records between a lake and a remote store.

Push sends the objects a remote lacks (found by one listing, not a request
per object), then every records file it lacks, so a remote never names an
object it was not sent first. Pull imports the records it has not seen (other
people's files appear in ``ls``, not yet local), then downloads the objects
asked for, each verified against its hash before it is kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .catalog import Commit, FileRow
from .errors import FileNotFound, RemoteError
from .names import parse_ref, validate_name
from .store import LocalObjectStore, ObjectStore
from .store.transfer import TransferReport, run_parallel

if TYPE_CHECKING:
    from .lake import Lake


# --------------------------------------------------------------- objects
def upload_objects(cache: LocalObjectStore, target: ObjectStore, hashes: Iterable[str], jobs: int | None,
                   report: TransferReport, present: set[str] | None = None) -> None:
    """Send the objects ``target`` lacks; ``present`` is its listing when already known."""
    wanted = sorted(set(hashes))
    if present is None:
        present = set(target.list_hashes())
    todo = [h for h in wanted if h not in present]
    report.skipped += len(wanted) - len(todo)
    missing_here = [h for h in todo if not cache.has(h)]
    for h in missing_here:
        report.failed.append(f"{h[:12]}: not in this lake's local store, so it cannot be pushed")
    todo = [h for h in todo if cache.has(h)]

    def send(digest: str) -> int:
        target._put(cache.path(digest), target.object_key(digest), create=True)
        return cache.size(digest)

    async def send_async(digest: str) -> int:
        await target.put_async(cache.path(digest), target.object_key(digest), create=True)
        return cache.size(digest)

    run_parallel(todo, send, cache.size, lambda h: h[:12], jobs, "pushing", report,
                 async_work=send_async if target.is_async else None, loop=getattr(target.fs, "loop", None))


def download_objects(cache: LocalObjectStore, source: ObjectStore, hashes: Iterable[str], jobs: int | None,
                     report: TransferReport, sizes: dict[str, int] | None = None) -> None:
    """Fetch the objects the local cache lacks, verifying each."""
    wanted = sorted(set(hashes))
    todo = [h for h in wanted if not cache.has(h)]
    report.skipped += len(wanted) - len(todo)
    sizes = sizes or {}
    run_parallel(todo, lambda h: cache.download_from(source, h), lambda h: sizes.get(h, 0), lambda h: h[:12],
                 jobs, "pulling", report, async_work=(lambda h: cache.download_from_async(source, h)) if source.is_async else None,
                 loop=getattr(source.fs, "loop", None))


# --------------------------------------------------------------- records
def import_records(lake: "Lake", source: ObjectStore, report: TransferReport) -> list[Commit]:
    """Replay the source's records files this catalog lacks; keep a copy in the local store."""
    known = lake.catalog.commit_ids()
    new = [c for c in source.list_records() if c not in known]
    if not new:
        return []
    commits = []
    for cid, data in source.read_records(new).items():
        commit = Commit.from_jsonl(data)
        if lake.store is not source:
            # Write-ahead: the local store holds the records before the catalog does,
            # so a crash here is rolled forward and reindex stays complete.
            lake.store.write_record(cid, data)
        commits.append(commit)
    commits.sort(key=lambda c: (c.created_at, c.id))
    renumbered = lake.catalog.replay(commits)
    report.records += len(commits)
    report.renumbered += [f"{n}@{a} (numbered {n}@{b} where it was made)" for n, b, a in renumbered]
    return commits


def upload_records(lake: "Lake", target: ObjectStore, jobs: int | None, report: TransferReport) -> None:
    have = set(target.list_records())
    todo = [c for c in lake.store.list_records() if c not in have]

    def send(cid: str) -> int:
        data = lake.store.read_record(cid)
        target.write_record(cid, data)
        return len(data)

    sub = TransferReport("records")
    run_parallel(todo, send, lambda c: 0, lambda c: f"records {c}", jobs, "pushing records", sub)
    report.records += sub.transferred
    report.failed += sub.failed


# ------------------------------------------------------------- selection
def _script_inputs(lake: "Lake", script: str) -> list[FileRow]:
    """Files that runs of ``script`` read: the inputs of what those runs wrote."""
    target = os.path.realpath(script)
    rel_tail = "/" + os.path.basename(target)
    top = _git_root(os.path.dirname(target))
    if top:
        rel_tail = "/" + os.path.relpath(target, top).replace(os.sep, "/")
    runs = [r for r in lake.catalog.runs_with_script() if r[1] and (os.path.realpath(r[1]) == target or r[1].replace(os.sep, "/").endswith(rel_tail))]
    ids = lake.catalog.inputs_of_runs([r[0] for r in runs])
    return list(lake.catalog.files_by_ids(ids).values())


def _git_root(folder: str) -> str | None:
    here = os.path.abspath(folder)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def select(lake: "Lake", refs: Sequence[str] | None, all_versions: bool) -> list[FileRow]:
    """Files named by refs: a ref, a prefix (``raw/``), ``.`` for all, or a script that read them."""
    if not refs or "." in refs:
        return lake.catalog.all_files() if all_versions else lake.catalog.latest("")
    out: dict[str, FileRow] = {}
    for ref in refs:
        if ref.endswith((".py", ".ipynb")) and (os.path.isfile(ref) or "/" not in ref):
            out.update((r.id, r) for r in _script_inputs(lake, ref))
            continue
        if not ref.endswith("/"):
            parsed = parse_ref(ref)
            if parsed.id or parsed.version:
                file = lake._resolve(ref)
                out[file.id] = file._row
                continue
            row = lake.catalog.file_by_name(ref)
            if row is not None:
                out[row.id] = row
                continue
        prefix = validate_name(ref.rstrip("/")) + "/"
        under = lake.catalog.latest(prefix)
        if not under:
            raise FileNotFound(f"{ref!r} names no file and no folder in the lake; see 'limnos ls'")
        out.update((r.id, r) for r in under)
    return list(out.values())


# ------------------------------------------------------------ push, pull
def push(lake: "Lake", refs: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None) -> TransferReport:
    target = lake.remotes.get(remote).store
    report = TransferReport("push")
    rows = select(lake, refs, all_versions=not refs)
    hashes = {r.hash for r in rows if r.kind == "object" and r.hash}
    hashes |= lake.catalog.blob_hashes([r.id for r in rows])
    upload_objects(lake.cache, target, hashes, jobs, report)
    upload_records(lake, target, jobs, report)
    if report.failed:
        raise RemoteError(f"push finished with {len(report.failed)} failures; first: {report.failed[0]}; run 'limnos push' again to retry")
    return report


def pull(lake: "Lake", refs: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None,
         download: bool = True) -> TransferReport:
    source = lake.remotes.get(remote).store
    report = TransferReport("pull")
    import_records(lake, source, report)
    if not download:
        return report
    rows = select(lake, refs, all_versions=False)
    hashes = {r.hash for r in rows if r.kind == "object" and r.hash}
    download_objects(lake.cache, source, hashes, jobs, report, {r.hash: r.size for r in rows if r.hash})
    if report.failed:
        raise RemoteError(f"pull finished with {len(report.failed)} failures; first: {report.failed[0]}")
    return report
