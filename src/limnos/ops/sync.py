"""Push and pull: objects and records between a lake and a remote store.

Push sends the objects a remote lacks (found by one listing, not a request
per object), then every records file it lacks, so a remote never names an
object it was not sent first. Pull imports the records it has not seen (other
people's files appear in ``ls``, not yet local), then downloads the objects
asked for, each verified against its hash before it is kept.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..catalog import Commit, FileRow
from ..catalog.validate import unresolved
from ..core.provenance import git_root
from ..errors import (
    CatalogVersionError,
    FileNotFound,
    IntegrityError,
    RecordsDamaged,
    RecordsInvalid,
    RemoteError,
    TeamLakeTarget,
    redact_url,
)
from ..names import is_file_id, parse_ref, validate_name
from ..store import LocalObjectStore, ObjectStore, packs
from ..store.transfer import DOWNLOAD_WEIGHT, TransferReport, run_parallel
from . import chunksync

if TYPE_CHECKING:
    from ..core.base import LakeBase


# --------------------------------------------------------------- objects
def upload_objects(cache: LocalObjectStore, target: ObjectStore, hashes: Iterable[str], jobs: int | None,
                   report: TransferReport, present: set[str] | None = None, pack_size: int = packs.PACK_MAX,
                   min_pack: int = 2) -> None:
    """Send the objects ``target`` lacks; ``present`` is its listing when already known.

    Small objects travel in packs of up to ``pack_size`` bytes (0: never),
    big ones alone; every transfer is one work item in the parallel run.
    Every object is hashed just before it is sent: a corrupt one is moved to
    the cache's ``quarantine/`` and never uploaded (the others still are).

    Args:
        cache: the local store the objects are read from.
        target: the store to send them to.
        hashes: the objects wanted on ``target``.
        jobs: parallel transfers (None: the default).
        report: counts and failures are added to it; failures do not raise.
        present: hashes ``target`` already holds (None: list them first).
        pack_size: the most bytes in one pack; 0 sends every object alone.
        min_pack: fewer small objects than this travel alone (a pack costs two keys).

    Raises:
        IntegrityError: an object's local bytes do not match its hash (the first such;
            every one is in ``report.failed``); it was quarantined and not sent.
    """
    wanted = sorted(set(hashes))
    if present is None:
        present = set(target.list_hashes())
    todo = [h for h in wanted if h not in present]
    report.skipped += len(wanted) - len(todo)
    chunked, todo = chunksync.expand_push(cache, todo, present)  # a chunked file travels as the chunks target lacks
    for h in [h for h in todo if not cache.has(h)]:
        report.failed.append(f"{h[:12]}: not in this lake's local store, so it cannot be pushed")
    sizes = {h: cache.size(h) for h in todo if cache.has(h)}
    small = [(h, n) for h, n in sizes.items() if pack_size and n <= packs.PACKABLE]
    if len(small) < max(2, min_pack):
        small = []
    packed = {h for h, _ in small}
    loose = [("object", [h]) for h in sizes if h not in packed]
    items = loose + [("pack", [h for h, _ in group]) for group in packs.plan_packs(small, pack_size or packs.PACK_MAX)]

    def verified(members: list[str]) -> tuple[list[str], IntegrityError | None]:
        """The members whose bytes hash right, and the error for the first corrupt one (quarantined, never sent).

        Always a full hash (no cache of verified objects): pushing is bound by the
        network, and damaged bytes pushed under their hash would reach every machine.
        """
        good, bad = [], None
        for h in members:
            try:
                cache.verify(h)
                good.append(h)
            except IntegrityError as exc:
                bad = bad or exc
            except FileNotFoundError:
                if not cache.in_quarantine(h):
                    raise
                # quarantined by an earlier attempt of this item, or by a reader meanwhile
                bad = bad or IntegrityError(f"object {h[:12]} is corrupt on this machine and in quarantine",
                                            hint="call lake.fsck(repair=True)", digest=h, url=cache.root)
        return good, bad

    def send(item: tuple[str, list[str]]) -> int:
        kind, members = item
        good, bad = verified(members)
        sent = 0
        if kind == "pack" and good:
            sent = target.put_pack([(h, chunksync.source_of(cache, h)) for h in good], cache.staging_dir())
        elif good:
            with cache.export(good[0]) as path:
                target.put(path, target.object_key(good[0]), create=True)
            sent = sizes[good[0]]
        if bad is not None:
            raise bad  # after the good members of a pack were sent
        return sent

    async def send_async(item: tuple[str, list[str]]) -> int:
        kind, members = item
        if kind == "pack":  # a few big requests: the thread hop is nothing next to the upload
            return await asyncio.to_thread(send, item)
        _, bad = await asyncio.to_thread(verified, members)
        if bad is not None:
            raise bad
        with cache.export(members[0]) as path:
            await target.put_async(path, target.object_key(members[0]), create=True)
        return sizes[members[0]]

    run_parallel(items, send, lambda i: sum(sizes[h] for h in i[1]), _label, jobs, "pushing", report,
                 async_work=send_async if target.is_async else None, loop=getattr(target.fs, "loop", None),
                 count=lambda i: len(i[1]))
    chunksync.finish_push(target, chunked, report)  # chunk lists last: a remote never names a chunk it lacks


def _label(item: tuple[str, list[str]]) -> str:
    """How a transfer item is named in a failure message."""
    kind, members = item
    return members[0][:12] if kind == "object" else f"pack of {len(members)} objects"


def download_objects(cache: LocalObjectStore, source: ObjectStore, hashes: Iterable[str], jobs: int | None,
                     report: TransferReport, sizes: dict[str, int] | None = None) -> None:
    """Fetch the objects the local cache lacks, verifying each.

    Packed objects that make up a good share of their pack come down as the
    whole pack, split locally; a few from a pack are ranged reads.

    Args:
        cache: the local store to download into.
        source: the store to download from.
        hashes: the objects wanted locally.
        jobs: parallel transfers (None: the default).
        report: counts and failures are added to it; failures do not raise.
        sizes: object sizes when known, for the progress bar.
    """
    wanted = sorted(set(hashes))
    todo = [h for h in wanted if not cache.has(h)]
    report.skipped += len(wanted) - len(todo)
    sizes = dict(sizes or {})
    lists, todo, _chunks = chunksync.expand_pull(cache, source, todo, report)
    writer = cache.pack_writer()  # chunks go into packs, not one file each
    index = source.pack_index(refresh=True) if todo else {}
    by_pack: dict[str, list[str]] = {}
    for h in todo:
        if h in index:
            by_pack.setdefault(index[h].pack, []).append(h)
    items: list[tuple[str, list[str]]] = [("object", [h]) for h in todo if h not in index]
    pack_bytes: dict[str, int] = {}
    for packed in index.values() if by_pack else ():
        pack_bytes[packed.pack] = pack_bytes.get(packed.pack, 0) + packed.size
    for pack_id, members in by_pack.items():
        wanted_bytes = sum(index[h].size for h in members)
        if len(members) >= 8 or wanted_bytes * 4 >= pack_bytes[pack_id]:
            items.append(("pack", members))
        else:
            items += [("object", [h]) for h in members]

    def fetch_pack(members: list[str]) -> int:
        pack_id = index[members[0]].pack
        part = cache.new_staging_path(".pack")
        try:
            source.get_pack(pack_id, part)
            # Into a new local pack, not a file each: packs stay the unit, here as on the remote.
            bad = packs.split_pack(part, {h: index[h] for h in members}, writer.add)
        finally:
            if os.path.exists(part):
                os.unlink(part)
        if bad:
            raise IntegrityError(f"{len(bad)} objects in pack {redact_url(source.pack_key(pack_id))} are corrupt or "
                                 f"missing (first: {bad[0][:12]}); nothing of them was kept",
                                 digest=bad[0], url=redact_url(source.url))
        return sum(index[h].size for h in members)

    def fetch(item: tuple[str, list[str]]) -> int:
        kind, members = item
        return fetch_pack(members) if kind == "pack" else cache.download_from(source, members[0])

    async def fetch_async(item: tuple[str, list[str]]) -> int:
        kind, members = item
        if kind == "pack":
            return await asyncio.to_thread(fetch_pack, members)
        return await cache.download_from_async(source, members[0])

    try:
        run_parallel(items, fetch, lambda i: sum(sizes.get(h, 0) for h in i[1]), _label, jobs, "pulling", report,
                     async_work=fetch_async if source.is_async else None, loop=getattr(source.fs, "loop", None),
                     count=lambda i: len(i[1]), weigh=lambda i: DOWNLOAD_WEIGHT)  # downloads stream: size is no memory
    except BaseException:
        writer.finish()  # every object in it was verified: keep what came before the failure
        raise
    chunksync.finish_pull(cache, writer, lists, report)  # each file put together and verified before its list


# --------------------------------------------------------------- records
def import_records(lake: LakeBase, source: ObjectStore, report: TransferReport,
                   refused: list[RecordsInvalid] | None = None) -> list[Commit]:
    """Replay the source's records files this catalog lacks; keep a copy in the local store.

    A remote is untrusted input: every records file is checked whole before
    anything of it is written (its name is a commit id, its header names that
    commit, every field of every row is valid, and every row points at
    files, runs, steps and datasources that exist). A file that fails is
    refused alone: it is neither copied nor applied, ``report.rejected``
    says why, and the good files beside it are imported.

    Args:
        lake: the lake to import into.
        source: the store whose records are read.
        report: counts, renumbered versions and refused files are added to it.
        refused: when given, each refusal is appended to it as a :class:`RecordsInvalid`.

    Returns:
        The commits replayed, oldest first (versions that clash are renumbered;
        ``report.renumbered`` says which).

    Raises:
        RemoteError: the source's records cannot be listed or read.
    """
    known = lake.catalog.commit_ids()
    new = [c for c in source.list_records() if c not in known]
    if not new:
        return []
    errors: list[RecordsInvalid] = []
    named = [c for c in new if is_file_id(c)]
    errors += [_refusal(source, c, "its name is not a commit id, so no limnos wrote it") for c in new if not is_file_id(c)]
    parsed: dict[str, Commit] = {}
    for cid, data in source.read_records(named).items():
        try:
            commit = Commit.from_jsonl(data)
        except (RecordsDamaged, CatalogVersionError) as exc:  # damaged, crafted, or from a newer limnos: refused alone
            errors.append(_refusal(source, cid, exc.message))
            continue
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # not UTF-8 JSON lines, or too deep
            errors.append(_refusal(source, cid, f"it is not UTF-8 JSON lines ({type(exc).__name__}: {exc})"))
            continue
        if commit.id != cid:
            errors.append(_refusal(source, cid, f"its header names commit {commit.id}, not the one it is named after"))
            continue
        parsed[cid] = commit
    for cid, why in unresolved(lake.catalog, list(parsed.values())).items():
        errors.append(_refusal(source, cid, why))
        del parsed[cid]
    commits = sorted(parsed.values(), key=lambda c: (c.created_at, c.id))
    if lake.shared_log is not None:
        # A team lake: every commit it gains is published to its log, or the other machines would never see it;
        # and its objects go to the bucket first, where the other machines read them.
        _stock_store(lake, source, commits, report)
        renumbered: list[tuple[str, int, int]] = []
        for commit in commits:
            made = {f["id"]: f["version"] for f in commit.files}
            lake.adopt_commit(commit).write()  # versions allocated afresh, after this lake's
            renumbered += [(f["name"], made[f["id"]], f["version"]) for f in commit.files if f["version"] != made[f["id"]]]
    else:
        if lake.store is not source:
            # Write-ahead: the local store holds the records before the catalog does, so a crash
            # (or a lost database connection) here is rolled forward and reindex stays complete.
            # The copy is of the checked rows (names in NFC), never of the remote's raw bytes.
            for commit in commits:
                lake.store.write_record(commit.id, commit.to_jsonl())
        renumbered = lake.catalog.replay(commits)
    report.records += len(commits)
    report.renumbered += [f"{n}@{a} (numbered {n}@{b} where it was made)" for n, b, a in renumbered]
    report.rejected += [str(e) for e in errors]
    if refused is not None:
        refused += errors
    return commits


def _refusal(source: ObjectStore, commit_id: str, why: str) -> RecordsInvalid:
    """The error for one refused records file of ``source``, naming its key."""
    url = redact_url(source.url)
    key = f"{url.rstrip('/')}/records/{commit_id}.jsonl"
    return RecordsInvalid(f"records file {key!r} is refused: {why}; nothing of it was imported",
                          commit_id=commit_id, path=key, url=url)


def upload_records(lake: LakeBase, target: ObjectStore, jobs: int | None, report: TransferReport) -> None:
    """Send every records file ``target`` lacks; failures go to ``report``."""
    have = set(target.list_records())
    committed = lake.catalog.commit_ids()  # a commit in flight may still fail: only committed records travel
    todo = [c for c in lake.store.list_records() if c not in have and c in committed]

    def send(cid: str) -> int:
        data = lake.store.read_record(cid)
        target.write_record(cid, data)
        return len(data)

    sub = TransferReport("records")
    run_parallel(todo, send, lambda c: 0, lambda c: f"records {c}", jobs, "pushing records", sub)
    report.records += sub.transferred
    report.failed += sub.failed


# ------------------------------------------------------------- selection
def _script_inputs(lake: LakeBase, script: str) -> list[FileRow]:
    """Files that runs of ``script`` read: the inputs of what those runs wrote."""
    target = os.path.realpath(script)
    rel_tail = "/" + os.path.basename(target)
    top = git_root(os.path.dirname(target))
    if top:
        rel_tail = "/" + os.path.relpath(target, top).replace(os.sep, "/")
    runs = [r for r in lake.catalog.runs_with_script()
            if r[1] and (os.path.realpath(r[1]) == target or r[1].replace(os.sep, "/").endswith(rel_tail))]
    ids = lake.catalog.inputs_of_runs([r[0] for r in runs])
    return list(lake.catalog.files_by_ids(ids).values())


def select(lake: LakeBase, refs: Sequence[str] | None, all_versions: bool) -> list[FileRow]:
    """The files that refs name, for push and pull.

    Args:
        lake: the lake to look in.
        refs: each a ref (``name``, ``name@N``, an id), a prefix (``raw/``),
            ``.`` for every file, or a script (``train.py``): the files its runs read.
            None or empty: every file.
        all_versions: for every file, take every version rather than the latest.

    Raises:
        FileNotFound: a ref names no file and no folder.
        InvalidRef: a ref is malformed.
    """
    if not refs or "." in refs:
        return lake.catalog.all_files() if all_versions else lake.catalog.latest("")
    out: dict[str, FileRow] = {}
    pinned: list[str] = []  # ids of refs to one version, looked up together at the end
    for ref in refs:
        if ref.endswith((".py", ".ipynb")) and (os.path.isfile(ref) or "/" not in ref):
            out.update((r.id, r) for r in _script_inputs(lake, ref))
            continue
        if not ref.endswith("/"):
            parsed = parse_ref(ref)
            if parsed.id or parsed.version:
                pinned.append(lake.resolve(ref).id)
                continue
            row = lake.catalog.file_by_name(ref)
            if row is not None:
                out[row.id] = row
                continue
        prefix = validate_name(ref.rstrip("/")) + "/"
        under = lake.catalog.latest(prefix)
        if not under:
            raise FileNotFound(f"{ref!r} names no file and no folder in the lake", hint="see lake.ls()", ref=ref)
        out.update((r.id, r) for r in under)
    out.update(lake.catalog.files_by_ids(pinned))
    return list(out.values())


# ------------------------------------------------------------ push, pull
def push(lake: LakeBase, refs: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None,
         pack_size: int = packs.PACK_MAX) -> TransferReport:
    """Send a remote the objects and records files it lacks (see :meth:`limnos.Lake.push`).

    Objects go before records, so the remote never names an object it lacks.

    Args:
        lake: the lake to push from.
        refs: what to push (see :func:`select`); None: every version of every file.
        remote: the remote's name; None: the default remote.
        jobs: parallel transfers (None: the default).
        pack_size: the most bytes in one pack of small objects; 0 sends each alone.

    Returns:
        What was sent and skipped.

    Raises:
        RemoteNotFound: no such remote (or no default).
        FileNotFound: a ref names nothing.
        IntegrityError: an object's bytes on this machine do not match its hash: it was moved
            to quarantine and not sent, and no records file was sent (``limnos fsck --repair``).
        RemoteError: some transfers failed; the rest were done, so pushing again resumes.
    """
    target = lake.remotes.get(remote).store
    _refuse_team_lake(target)
    report = TransferReport("push")
    rows = select(lake, refs, all_versions=not refs)
    hashes = {r.hash for r in rows if r.kind == "object" and r.hash}
    hashes |= lake.catalog.blob_hashes([r.id for r in rows])
    try:
        upload_objects(lake.cache, target, hashes, jobs, report, pack_size=pack_size)
    except IntegrityError as exc:  # no records file goes out either: the remote must not name what it lacks
        corrupt = [h for h in hashes if not lake.cache.has(h) and lake.cache.in_quarantine(h)]
        raise IntegrityError(f"push refused {len(corrupt)} corrupt objects, sent no records files, and sent the other "
                             f"objects; first: {exc}; then push again", digest=exc.digest, url=exc.url) from None
    upload_records(lake, target, jobs, report)
    if report.failed:
        raise RemoteError(f"push finished with {len(report.failed)} failures; first: {report.failed[0]}",
                          hint="call lake.push() again to retry", url=redact_url(target.url))
    return report


def _refuse_team_lake(target: ObjectStore) -> None:
    """Raise when ``target`` is a team lake: its machines read only its shared log, never pushed records files.

    Raises:
        TeamLakeTarget: the remote holds a team lake.
    """
    import yaml

    data = target.read_config()
    try:
        config = yaml.safe_load(data) if data else None
    except yaml.YAMLError:
        return  # not a lake's settings we can read: an ordinary remote
    if isinstance(config, dict) and config.get("shared") == "log":
        url = redact_url(target.url)
        raise TeamLakeTarget(
            f"{url} is a team lake: its machines see only the commits published to its log, so a push would "
            "send data nobody there sees; nothing was sent",
            hint=f"pull into it instead: team = limnos.open({url!r}); team.remotes.add('mine', <this lake's path>); "
                 "team.pull(remote='mine')", url=url)


def _stock_store(lake: LakeBase, source: ObjectStore, commits: Sequence[Commit], report: TransferReport) -> None:
    """Copy into a bucket lake's own store every object ``commits`` name, through this machine's cache.

    Raises:
        RemoteError: an object could not be fetched or stored; nothing of the commits was written.
    """
    wanted = {f["hash"] for c in commits for f in c.files if f.get("hash") and f.get("kind", "object") == "object"}
    wanted |= {h for c in commits for h in c.blob_hashes()}
    missing = sorted(h for h in wanted if not lake.store.has(h))
    if not missing:
        return
    fetched = TransferReport("pull")
    download_objects(lake.cache, source, missing, None, fetched, None)
    if fetched.failed:
        raise RemoteError(f"pull could not fetch {len(fetched.failed)} objects the new commits name; first: "
                          f"{fetched.failed[0]}; nothing was imported", url=redact_url(source.url))
    for digest in missing:
        with lake.cache.export(digest) as path:
            lake.store.put_file(path, digest)
    report.transferred += fetched.transferred
    report.bytes += fetched.bytes


def pull(lake: LakeBase, refs: Sequence[str] | None = None, remote: str | None = None, jobs: int | None = None,
         download: bool = True) -> TransferReport:
    """Import a remote's new records, then download the objects refs name (see :meth:`limnos.Lake.pull`).

    Args:
        lake: the lake to pull into.
        refs: what to download (see :func:`select`); None: the latest version of every file.
        remote: the remote's name; None: the default remote.
        jobs: parallel transfers (None: the default).
        download: False imports the records only; objects come down when read.

    Returns:
        What was imported, downloaded and skipped.

    Raises:
        RemoteNotFound: no such remote (or no default).
        FileNotFound: a ref names nothing.
        RecordsInvalid: some of the remote's records files are malformed or crafted; they were refused,
            and the good ones imported (and their objects downloaded) all the same.
        RemoteError: some downloads failed; the rest were kept, so pulling again resumes.
    """
    source = lake.remotes.get(remote).store
    report = TransferReport("pull")
    refused: list[RecordsInvalid] = []
    import_records(lake, source, report, refused)
    if download:
        rows = select(lake, refs, all_versions=False)
        hashes = {r.hash for r in rows if r.kind == "object" and r.hash}
        download_objects(lake.cache, source, hashes, jobs, report, {r.hash: r.size for r in rows if r.hash})
    if refused:
        first = refused[0]
        raise RecordsInvalid(f"pull refused {len(refused)} of {len(refused) + report.records} new records files; "
                             f"first: {first}; the others were imported",
                             hint=f"ask whoever writes to {redact_url(source.url)} to call lake.fsck() there, "
                             "or remove the file", commit_id=first.commit_id, path=first.path, url=first.url)
    if not download:
        return report
    if report.failed:
        raise RemoteError(f"pull finished with {len(report.failed)} failures; first: {report.failed[0]}",
                          url=redact_url(source.url))
    return report
