"""Packs in a lake whose store is a bucket (moto's S3 server): one pack per add, ranged reads from another
machine, gc repack beside a reader with an old index, fsck of damaged packs, chunked big files; and the
minimum number of objects per pack, on a local lake too."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from pathlib import Path

import pytest

import limnos
from limnos.errors import StoreError
from limnos.store import hashing
from limnos.store.lakepacks import MIN_PACK_OBJECTS

ZERO = dt.timedelta(0)


def _small_files(folder: Path, n: int, tag: str = "x") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"f{i:03d}.txt").write_text(f"{tag} file number {i}\n" * 3)
    return folder


def _keys(lake: limnos.Lake, folder: str) -> list[str]:
    try:
        return sorted(str(k).rsplit("/", 1)[-1] for k in lake.store.fs.find(f"{lake.store.root}/{folder}"))
    except FileNotFoundError:
        return []


@pytest.fixture(params=["team", "solo"])
def bucket(request, tmp_path, moto_s3):  # type: ignore[no-untyped-def]
    """(open_machine): a new lake on a moto bucket, a team lake (shared log) or one without it."""
    url, options = f"s3://{moto_s3.new_bucket()}/lake", moto_s3.options()
    limnos.init(url, cache=str(tmp_path / "init"), team=request.param == "team", **options).close()
    opened: list[limnos.Lake] = []

    def machine(name: str) -> limnos.Lake:
        lake = limnos.open(url, cache=str(tmp_path / name), **options)
        opened.append(lake)
        return lake

    yield machine
    for lake in opened:
        lake.close()


@pytest.mark.s3
def test_an_add_to_a_bucket_writes_one_pack_that_another_machine_reads_by_range(bucket, tmp_path):
    a = bucket("a")
    src = _small_files(tmp_path / "src", 40)
    a.add(str(src), "d")
    b = bucket("b")  # opened after the add: a lake without the shared log rolls the records forward on open
    packs = _keys(a, "packs")
    assert len(packs) == 2 and packs[0].endswith(".idx") and packs[1].endswith(".pack")
    assert _keys(a, "objects") == []  # no key per object
    pack_id = packs[1][: -len(".pack")]
    assert hashing.hash_bytes(a.store.fs.cat_file(a.store.pack_key(pack_id))) == pack_id
    # Another machine finds the objects through the index, reads them by range, and keeps the index.
    assert b.get("d/f017.txt").read_bytes() == (src / "f017.txt").read_bytes()
    assert os.listdir(str(tmp_path / "b" / "state" / "pack-indexes")) == [f"{pack_id}.idx"]
    assert b.fsck(read_data=True).ok and a.fsck(read_data=True).ok
    # The same files again: nothing new in the bucket.
    a.add(str(src), "again")
    assert len(_keys(a, "packs")) == 2


@pytest.mark.s3
def test_fewer_new_objects_than_the_minimum_stay_loose_in_a_bucket(bucket, tmp_path):
    a = bucket("a")
    src = _small_files(tmp_path / "src", MIN_PACK_OBJECTS - 1)
    a.add(str(src), "d")
    assert _keys(a, "packs") == [] and len(_keys(a, "objects")) == MIN_PACK_OBJECTS - 1
    with a.create("one.txt") as w:
        w.write_text("alone")
    assert _keys(a, "packs") == [] and len(_keys(a, "objects")) == MIN_PACK_OBJECTS
    assert a.fsck(read_data=True).ok


@pytest.mark.s3
def test_gc_rewrites_a_sparse_bucket_pack_and_a_reader_with_the_old_index_still_reads(bucket, tmp_path):
    a = bucket("a")
    src = _small_files(tmp_path / "src", 20)
    a.add(str(src), "d")
    b = bucket("b")
    assert b.get("d/f001.txt").read_bytes()  # b now holds the first pack's index in memory and on disk
    old_pack = next(k for k in _keys(a, "packs") if k.endswith(".pack"))
    for i in range(2, 20):
        a.rm(f"d/f{i:03d}.txt")
    dry = a.gc(grace=ZERO)
    assert len(dry.deleted) == 18 and _keys(a, "packs")[1] == old_pack  # a dry run changes nothing
    report = a.gc(dry_run=False, grace=ZERO)
    assert len(report.deleted) == 18 and any("rewrote 1 packs into 1" in n for n in report.notes)
    packs = [k for k in _keys(a, "packs") if k.endswith(".pack")]
    assert packs and old_pack not in packs
    # b's copy of the old index names a pack that is gone: it lists the indexes again and reads the new one.
    assert b.get("d/f000.txt").read_bytes() == (src / "f000.txt").read_bytes()
    assert f"{old_pack[:-5]}.idx" not in os.listdir(str(tmp_path / "b" / "state" / "pack-indexes"))
    assert a.fsck(read_data=True).ok
    with pytest.raises(Exception):  # noqa: B017 - the deleted file's bytes are gone from the bucket
        a.store.get_file(hashing.hash_file(str(src / "f005.txt"))[0], str(tmp_path / "gone"))


@pytest.mark.s3
def test_gc_copies_many_live_objects_from_one_download_of_their_pack(bucket, tmp_path, monkeypatch):
    a = bucket("a")
    src = _small_files(tmp_path / "src", 30)
    a.add(str(src), "d")
    for i in range(20):  # 10 of 30 stay: a sparse pack with many live objects
        a.rm(f"d/f{i:03d}.txt")
    ranged = []
    real_read = limnos.store.bucketpacks.read_object
    monkeypatch.setattr(limnos.store.bucketpacks, "read_object", lambda *args: ranged.append(args[1]) or real_read(*args))
    report = a.gc(dry_run=False, grace=ZERO)
    assert len(report.deleted) == 20 and ranged == []  # one GET of the pack, no ranged GET per object
    b = bucket("b")
    assert [b.get(f"d/f{i:03d}.txt").read_bytes() for i in range(20, 30)] == [
        (src / f"f{i:03d}.txt").read_bytes() for i in range(20, 30)]
    assert a.fsck(read_data=True).ok


@pytest.mark.s3
def test_gc_keeps_a_young_bucket_pack_and_deletes_an_old_pack_without_index(bucket, tmp_path):
    a = bucket("a")
    src = _small_files(tmp_path / "src", 8)
    a.add(str(src), "d")
    for i in range(6):  # 2 of 8 stay live: the pack is sparse
        a.rm(f"d/f{i:03d}.txt")
    # A crash between a pack's upload and its index's: a pack nothing names.
    stray = b"bytes of a pack whose index never arrived"
    stray_id = hashing.hash_bytes(stray)
    a.store.fs.pipe_file(a.store.pack_key(stray_id), stray)
    kept = a.gc(dry_run=False)  # grace: a day; every pack is young
    assert len([k for k in _keys(a, "packs")]) == 3 and not kept.deleted
    report = a.gc(dry_run=False, grace=ZERO)
    assert f"{stray_id}.pack" not in _keys(a, "packs") and len(_keys(a, "packs")) == 2
    assert hashing.hash_file(str(src / "f000.txt"))[0] in report.deleted and len(report.deleted) == 6
    assert a.fsck(read_data=True).ok


@pytest.mark.s3
def test_a_crafted_bucket_index_is_reported_and_the_lake_keeps_reading(bucket, tmp_path):
    a = bucket("a")
    src = _small_files(tmp_path / "src", 6)
    a.add(str(src), "d")
    b = bucket("b")
    pack_id = next(k for k in _keys(a, "packs") if k.endswith(".pack"))[: -len(".pack")]
    # Someone with write access to the bucket replaces the index: an entry that points outside the pack.
    crafted = {"format": 1, "objects": [[hashing.hash_file(str(src / "f000.txt"))[0], 10, 1 << 40]]}
    a.store.fs.pipe_file(a.store.pack_key(pack_id, "idx"), json.dumps(crafted).encode())
    report = b.fsck()
    assert report.packs_damaged == [pack_id] and not report.ok
    assert len(report.missing) == 6  # their only index is damaged: nothing is served from the pack
    with pytest.raises(limnos.errors.GcRefused):
        b.gc(dry_run=False, grace=ZERO)  # referenced objects look missing: nothing is deleted
    assert _keys(a, "packs") == sorted([f"{pack_id}.idx", f"{pack_id}.pack"])


@pytest.mark.s3
def test_fsck_read_data_finds_a_corrupt_object_in_a_bucket_pack(bucket, tmp_path):
    a = bucket("a")
    src = _small_files(tmp_path / "src", 6)
    a.add(str(src), "d")
    pack_id = next(k for k in _keys(a, "packs") if k.endswith(".pack"))[: -len(".pack")]
    data = bytearray(a.store.fs.cat_file(a.store.pack_key(pack_id)))
    data[3] ^= 0xFF  # the bytes of the object at offset 0
    a.store.fs.pipe_file(a.store.pack_key(pack_id), bytes(data))
    index = json.loads(a.store.fs.cat_file(a.store.pack_key(pack_id, "idx")))["objects"]
    first = next(h for h, offset, _size in index if offset == 0)
    other = next(h for h, offset, _size in index if offset != 0)
    report = a.fsck(read_data=True)
    assert report.corrupt == [first] and not report.ok
    c = bucket("c")  # a machine without the objects: its read is refused, never served
    names = {f.hash: f.name for f in c.ls()}
    with pytest.raises(limnos.errors.IntegrityError):
        c.get(names[first]).read_bytes()
    assert hashing.hash_bytes(c.get(names[other]).read_bytes()) == other


@pytest.mark.s3
def test_a_failed_index_upload_commits_nothing_and_the_next_add_works(bucket, tmp_path, monkeypatch):
    a = bucket("a")
    src = _small_files(tmp_path / "src", 6)
    real_put = type(a.store).put

    def put(self, local_path, key, create=False):  # type: ignore[no-untyped-def]
        if key.endswith(".idx"):
            raise StoreError("the connection dropped")
        return real_put(self, local_path, key, create)

    monkeypatch.setattr(type(a.store), "put", put)
    with pytest.raises(Exception):  # noqa: B017 - the upload's failure, whatever its wording
        a.add(str(src), "d")
    monkeypatch.undo()
    assert a.ls() == [] or list(a.ls()) == []
    assert [k for k in _keys(a, "packs") if k.endswith(".idx")] == []  # a pack nothing names, gc's to remove
    a.add(str(src), "d")
    assert len(list(a.ls())) == 6 and bucket("b").get("d/f004.txt").read_bytes() == (src / "f004.txt").read_bytes()
    assert a.fsck(read_data=True).ok


@pytest.mark.s3
def test_a_chunked_big_file_in_a_bucket_travels_as_packed_chunks(bucket, tmp_path):
    a = bucket("a")
    a.config["chunk_threshold"] = 1 << 20
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(3).randbytes(3 << 20))
    f = a.add(str(big), "big.bin").file
    b = bucket("b")
    assert f.hash == hashing.hash_file(str(big))[0]
    assert _keys(a, "objects") == [] and _keys(a, "chunklists") != []
    assert 1 <= len([k for k in _keys(a, "packs") if k.endswith(".pack")]) <= 2  # tens of chunks, one request or two
    assert b.get("big.bin").read_bytes() == big.read_bytes()
    assert a.fsck(read_data=True).ok
    report = a.gc(dry_run=False, grace=ZERO)
    assert report.deleted == [] and b.fsck(read_data=True).ok  # the chunks of a live file are referenced
    a.rm("big.bin")
    a.gc(dry_run=False, grace=ZERO)
    assert _keys(a, "chunklists") == [] and _keys(a, "packs") == []


def test_a_local_add_of_fewer_small_files_than_the_minimum_keeps_them_loose(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    src = _small_files(tmp_path / "src", MIN_PACK_OBJECTS - 1)
    lake.add(str(src), "d")
    assert not os.path.isdir(tmp_path / "lake" / "packs") or not [
        n for n in os.listdir(tmp_path / "lake" / "packs") if n.endswith(".pack")]
    assert all(lake.cache.has_loose(f.hash) for f in lake.ls())
    more = _small_files(tmp_path / "more", MIN_PACK_OBJECTS, tag="y")
    lake.add(str(more), "e")
    assert len([n for n in os.listdir(tmp_path / "lake" / "packs") if n.endswith(".pack")]) == 1
    assert lake.fsck(read_data=True).ok


def test_gc_says_a_packed_object_of_a_file_deleted_within_the_grace_is_kept(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    src = _small_files(tmp_path / "src", 6)
    lake.add(str(src), "d")
    gone = lake.get("d/f002.txt").hash
    lake.rm("d/f002.txt")
    report = lake.gc(dry_run=False)
    assert report.kept == [gone] and any("1 object (" in n and "kept for the grace period" in n for n in report.notes)
    # Without the grace: an orphan, yet it stays while most of its pack is live (a pack is rewritten when sparse).
    report = lake.gc(dry_run=False, grace=ZERO)
    assert report.orphans == [gone] and report.deleted == []
    for i in (0, 1, 3):
        lake.rm(f"d/f{i:03d}.txt")
    assert len(lake.gc(dry_run=False, grace=ZERO).deleted) == 4


@pytest.mark.s3
def test_a_remote_lakes_cache_is_pruned_by_pack_least_recently_used_first(tmp_path, moto_s3):
    url, options = f"s3://{moto_s3.new_bucket()}/lake", moto_s3.options()
    lake = limnos.init(url, cache=str(tmp_path / "cache"), team=False, **options)
    shelf = lake.cache.packs
    ids = []
    for n in range(3):
        before = {p.id for p in shelf.list_packs()}
        lake.add(str(_small_files(tmp_path / f"src{n}", 6, tag=f"t{n}")), f"d{n}")
        (new,) = {p.id for p in shelf.list_packs()} - before
        ids.append(new)
        os.utime(shelf.pack_path(new), (1_000_000 + n, 1_000_000 + n))  # written long ago, pack 0 first
    assert lake.cache_size().packs == 3
    assert lake.get("d0/f001.txt").read_bytes() == (tmp_path / "src0" / "f001.txt").read_bytes()  # pack 0: used now
    assert os.stat(shelf.pack_path(ids[0])).st_atime > 1_000_000 + 10
    total = lake.cache_size().bytes
    report = lake.prune_cache(total - 1)  # one pack must go: the least recently used is pack 1
    assert report.removed_packs == 1 and report.removed_bytes > 0
    assert [p.id for p in shelf.list_packs()] == sorted([ids[0], ids[2]])
    assert lake.cache_size().bytes == total - report.removed_bytes
    # Its files come back from the bucket, by range, and the read of the others never stopped working.
    assert lake.get("d1/f004.txt").read_bytes() == (tmp_path / "src1" / "f004.txt").read_bytes()
    assert lake.get("d2/f000.txt").read_bytes() == (tmp_path / "src2" / "f000.txt").read_bytes()
    assert lake.fsck(read_data=True).ok
    lake.close()


def _split_step(lake: limnos.Lake):  # type: ignore[no-untyped-def]
    @lake.step
    def split(text: str, n: int):  # type: ignore[no-untyped-def]
        outs = []
        for i in range(n):
            with limnos.output(f"parts/{n}/{i:02d}.txt") as w:
                w.write_text(f"{text}-{i}")
            outs.append(w)
        return outs

    return split


def test_a_step_with_many_small_outputs_stores_them_in_one_pack_and_few_stay_loose(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    split = _split_step(lake)
    few = split("seed", MIN_PACK_OBJECTS - 2)  # with the step's own record: one fewer than the minimum
    assert all(lake.cache.has_loose(f.hash) for f in few)
    assert not os.path.isdir(tmp_path / "lake" / "packs") or not lake.cache.packs.list_packs()
    many = split("more", 9)
    assert [p.has_index for p in lake.cache.packs.list_packs()] == [True]
    assert all(not lake.cache.has_loose(f.hash) and lake.cache.locate(f.hash) for f in many)
    assert [f.read_text() for f in split("more", 9)] == [f"more-{i}" for i in range(9)]  # a hit, read from the pack
    assert not os.listdir(tmp_path / "lake" / "tmp") or all(
        not n.startswith("pack-") for n in os.listdir(tmp_path / "lake" / "tmp"))  # no staging file left
    assert lake.fsck(read_data=True).ok


@pytest.mark.s3
def test_a_step_on_a_bucket_lake_uploads_its_small_outputs_as_one_pack(bucket, tmp_path):
    a = bucket("a")
    split = _split_step(a)
    made = split("bucket", 7)
    assert len(_keys(a, "packs")) == 2 and _keys(a, "objects") == []
    b = bucket("b")
    assert [b.get(f.name).read_text() for f in made] == [f"bucket-{i}" for i in range(7)]
    # 9 outputs of which 7 are in the bucket already: the 2 it lacks go up one by one, not as a pack of two.
    split("bucket", 9)
    assert len(_keys(a, "packs")) == 2 and len(_keys(a, "objects")) == 2
    assert a.fsck(read_data=True).ok
