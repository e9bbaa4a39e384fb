"""Packs in a lake's own store: one pack per add, crashes, gc repack beside writers, damaged indexes, migration."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import limnos
from limnos.errors import IntegrityError
from limnos.store import hashing
from limnos.store.lakepacks import pack_id_of_index

ZERO = dt.timedelta(0)


def _small_files(folder, n, tag="x"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"f{i:04d}.txt").write_text(f"{tag} file number {i}\n" * 3)
    return folder


def _pack_files(lake_path):
    folder = os.path.join(lake_path, "packs")
    return sorted(n for n in os.listdir(folder) if n.endswith((".pack", ".idx"))) if os.path.isdir(folder) else []


def _loose(lake_path):
    base = os.path.join(lake_path, "objects")
    return [n for d in os.listdir(base) for n in os.listdir(os.path.join(base, d))] if os.path.isdir(base) else []


def test_an_add_of_many_small_files_writes_one_pack_and_no_loose_objects(tmp_path):
    src = _small_files(tmp_path / "src", 300)
    lake = limnos.init(str(tmp_path / "lake"))
    result = lake.add(str(src), "d")
    names = _pack_files(str(tmp_path / "lake"))
    assert len(names) == 2 and names[0].endswith(".idx") and names[1].endswith(".pack")
    assert _loose(str(tmp_path / "lake")) == []
    assert result.new_versions == 300
    assert lake.get("d/f0123.txt").read_bytes() == (src / "f0123.txt").read_bytes()
    pack_id = names[1][: -len(".pack")]
    index = (tmp_path / "lake" / "packs" / names[0]).read_bytes()
    # A pack is named by its index, which names every member's hash: no second pass over its bytes.
    assert pack_id_of_index(index) == pack_id
    assert hashing.hash_bytes(index) != pack_id  # key-derivation mode: never a plain BLAKE3 of anything
    assert lake.fsck(read_data=True).ok
    # A second add of the same files stores nothing new: no second pack.
    lake.add(str(src), "again")
    assert len(_pack_files(str(tmp_path / "lake"))) == 2


def test_local_path_of_a_packed_object_is_a_real_file_extracted_once(tmp_path):
    src = _small_files(tmp_path / "src", 5)
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(src), "d")
    f = lake.get("d/f0003.txt")
    path = f.local_path()
    assert os.path.isfile(path) and not os.path.islink(path)
    assert Path(path).read_bytes() == (src / "f0003.txt").read_bytes()
    before = os.stat(path)
    assert f.local_path() == path and os.stat(path).st_ino == before.st_ino  # once
    out = tmp_path / "out.txt"
    f.download(str(out)) if hasattr(f, "download") else None
    assert lake.fsck().ok


CRASHER = textwrap.dedent(
    """
    import os, sys
    import limnos
    from limnos.store import lakepacks

    lake_path, src1, src2, where = sys.argv[1:5]
    lake = limnos.open(lake_path)
    lake.add(src1, "first")
    print("acked", flush=True)
    if where == "mid-write":
        real = lakepacks.PackWriter.add
        calls = [0]
        def add(self, digest, data):
            calls[0] += 1
            if calls[0] == 40:
                os._exit(9)
            return real(self, digest, data)
        lakepacks.PackWriter.add = add
    elif where == "before-index":
        real_replace = os.replace
        def replace(a, b):
            real_replace(a, b)
            if b.endswith(".pack"):
                os._exit(9)
        os.replace = replace
    elif where == "before-commit":
        real_finish = lakepacks.PackWriter.finish
        def finish(self):
            out = real_finish(self)
            os._exit(9)
        lakepacks.PackWriter.finish = finish
    lake.add(src2, "second")
    print("second acked", flush=True)
    """
)


@pytest.mark.parametrize("where", ["mid-write", "before-index", "before-commit"])
def test_a_writer_killed_while_writing_a_pack_loses_nothing_acknowledged(tmp_path, where):
    lake_path = str(tmp_path / "lake")
    limnos.init(lake_path).close()
    src1 = _small_files(tmp_path / "a", 50, "one")
    src2 = _small_files(tmp_path / "b", 100, "two")
    proc = subprocess.run([sys.executable, "-c", CRASHER, lake_path, str(src1), str(src2), where],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 9, proc.stderr
    assert proc.stdout.split() == ["acked"]
    lake = limnos.open(lake_path)
    assert [f.name for f in lake.ls("second")] == []  # the killed add took no effect
    for i in range(50):  # every acknowledged byte reads back
        assert lake.get(f"first/f{i:04d}.txt").read_bytes() == (src1 / f"f{i:04d}.txt").read_bytes()
    report = lake.fsck(read_data=True)
    assert report.ok and not report.packs_damaged
    published = {n.rsplit(".", 1)[0] for n in _pack_files(lake_path) if n.endswith(".idx")}
    with_pack = {n.rsplit(".", 1)[0] for n in _pack_files(lake_path) if n.endswith(".pack")}
    assert published <= with_pack  # no index names a missing or half pack
    lake.gc(dry_run=False, grace=ZERO)
    assert len(_pack_files(lake_path)) == 2  # the dead pack (or pack without index) is gone; first's stays
    assert lake.fsck(read_data=True).ok
    # The same add again now works and reads back.
    lake.add(str(src2), "second")
    assert lake.get("second/f0099.txt").read_bytes() == (src2 / "f0099.txt").read_bytes()


def test_gc_repacks_a_sparse_pack_and_keeps_every_live_object(tmp_path):
    src = _small_files(tmp_path / "src", 100)
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(src), "d")
    old = {n for n in _pack_files(str(tmp_path / "lake")) if n.endswith(".pack")}
    for i in range(80):
        lake.rm(f"d/f{i:04d}.txt")
    assert lake.gc(dry_run=True, grace=ZERO).bytes > 0
    assert {n for n in _pack_files(str(tmp_path / "lake")) if n.endswith(".pack")} == old  # a dry run
    report = lake.gc(dry_run=False, grace=ZERO)
    assert len(report.deleted) == 80
    new = {n for n in _pack_files(str(tmp_path / "lake")) if n.endswith(".pack")}
    assert new and not (new & old)
    for i in range(80, 100):
        assert lake.get(f"d/f{i:04d}.txt").read_bytes() == (src / f"f{i:04d}.txt").read_bytes()
    assert lake.fsck(read_data=True).ok


def test_a_young_pack_stays_whatever_it_holds(tmp_path):
    src = _small_files(tmp_path / "src", 10)
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(src), "d")
    for i in range(10):
        lake.rm(f"d/f{i:04d}.txt")
    before = _pack_files(str(tmp_path / "lake"))
    lake.gc(dry_run=False)  # default grace: a day
    assert _pack_files(str(tmp_path / "lake")) == before


def test_migration_is_a_no_op_and_gc_repack_packs_loose_objects(tmp_path):
    src = _small_files(tmp_path / "src", 30)
    lake = limnos.init(str(tmp_path / "lake"))
    lake.config["pack_threshold"] = 0  # as a lake made before packs: one file per object
    lake.add(str(src), "d")
    assert len(_loose(str(tmp_path / "lake"))) == 30 and _pack_files(str(tmp_path / "lake")) == []
    lake.close()
    lake = limnos.open(str(tmp_path / "lake"))
    assert lake.get("d/f0007.txt").read_bytes() == (src / "f0007.txt").read_bytes()
    report = lake.gc(dry_run=False, grace=ZERO, repack=True)
    assert any("packed 30 loose objects" in n for n in report.notes)
    assert _loose(str(tmp_path / "lake")) == [] and len(_pack_files(str(tmp_path / "lake"))) == 2
    for i in range(30):
        assert lake.get(f"d/f{i:04d}.txt").read_bytes() == (src / f"f{i:04d}.txt").read_bytes()
    assert lake.fsck(read_data=True).ok


def test_a_corrupt_packed_object_is_refused_on_read_and_fetched_clean_from_a_remote(tmp_path):
    src = _small_files(tmp_path / "src", 20)
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(src), "d")
    lake.remotes.add("origin", str(tmp_path / "remote"))
    lake.push()
    f = lake.get("d/f0005.txt")
    where = lake.cache.locate(f.hash)
    pack = lake.cache.packs.pack_path(where.pack)
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as out:
        out.seek(where.offset + 2)
        out.write(b"#")
    assert not lake.fsck(read_data=True).ok
    with pytest.raises(IntegrityError):
        f.read_bytes()
    assert lake.cache.in_quarantine(f.hash)
    assert f.read_bytes() == (src / "f0005.txt").read_bytes()  # fetched again, verified, from the remote
    assert lake.get("d/f0006.txt").read_bytes() == (src / "f0006.txt").read_bytes()


def test_a_crafted_index_in_the_lake_is_refused_and_reported(tmp_path):
    src = _small_files(tmp_path / "src", 5)
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(src), "d")
    folder = tmp_path / "lake" / "packs"
    victim = lake.get("d/f0001.txt").hash
    fake = "ab" * 32
    (folder / f"{fake}.pack").write_bytes(b"0123456789")
    # Claims an object lives far beyond the 10-byte pack: an attacker's read of other memory or a crash.
    (folder / f"{fake}.idx").write_text(json.dumps({"format": 1, "objects": [[victim, 5, 1 << 40]]}))
    lake.cache.packs.sync(force=True)
    assert fake in lake.cache.packs.damaged
    assert all(w.pack != fake for h, w in lake.cache.packs.entries() if h == victim)
    report = lake.fsck()
    assert not report.ok and report.packs_damaged == [fake]
    assert lake.get("d/f0001.txt").read_bytes() == (src / "f0001.txt").read_bytes()


def test_a_crafted_index_from_a_remote_is_refused_before_anything_is_written(tmp_path):
    src = _small_files(tmp_path / "src", 20)
    a = limnos.init(str(tmp_path / "a"))
    a.add(str(src), "d")
    a.remotes.add("origin", str(tmp_path / "remote"))
    a.push()
    idx = next(p for p in (tmp_path / "remote" / "packs").iterdir() if p.suffix == ".idx")
    doc = json.loads(idx.read_text())
    doc["objects"][0][1] = -7
    os.chmod(idx, 0o644)
    idx.write_text(json.dumps(doc))
    b = limnos.init(str(tmp_path / "b"))
    b.remotes.add("origin", str(tmp_path / "remote"))
    with pytest.raises(IntegrityError):
        b.pull()
    assert _pack_files(str(tmp_path / "b")) == [] and _loose(str(tmp_path / "b")) == []


WRITER = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import limnos

    path, tag, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lake = limnos.open(path)
    acked = []
    for r in range(rounds):
        folder = tempfile.mkdtemp()
        for i in range(20):
            with open(os.path.join(folder, f"f{i}.txt"), "w") as f:
                f.write(f"shared content {(i + r) % 25}\\n" * 4)  # repeats across writers and rounds: dedup
        lake.add(folder, f"{tag}/r{r}")
        acked += [(f"{tag}/r{r}/f{i}.txt", f"shared content {(i + r) % 25}\\n" * 4) for i in range(20)]
        if r % 2:
            for i in range(0, 20, 2):
                lake.rm(f"{tag}/r{r}/f{i}.txt")
                acked.remove((f"{tag}/r{r}/f{i}.txt", f"shared content {(i + r) % 25}\\n" * 4))
    print(json.dumps(acked))
    """
)


def test_concurrent_writers_beside_gc_repack_lose_nothing(tmp_path):
    lake_path = str(tmp_path / "lake")
    limnos.init(lake_path).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, lake_path, f"w{n}", "8"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for n in range(3)]
    lake = limnos.open(lake_path)
    runs = 0
    while any(p.poll() is None for p in procs) or runs < 2:
        lake.gc(dry_run=False, grace=ZERO, repack=True)
        runs += 1
    acked = []
    for p in procs:
        out, err = p.communicate()
        assert p.returncode == 0, err
        acked += json.loads(out)
    lake.gc(dry_run=False, grace=ZERO, repack=True)
    for name, text in acked:
        assert lake.get(name).read_bytes() == text.encode()
    assert lake.fsck(read_data=True).ok


def test_a_pack_named_by_the_hash_of_its_bytes_as_before_stays_readable(tmp_path):
    # Packs written before ids came from the index are named by the BLAKE3 of their bytes.
    src = _small_files(tmp_path / "src", 20)
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(src), "d")
    folder = tmp_path / "lake" / "packs"
    new_id = next(n for n in os.listdir(folder) if n.endswith(".pack"))[: -len(".pack")]
    old_id = hashing.hash_bytes((folder / f"{new_id}.pack").read_bytes())
    assert old_id != new_id
    os.replace(folder / f"{new_id}.pack", folder / f"{old_id}.pack")
    os.replace(folder / f"{new_id}.idx", folder / f"{old_id}.idx")
    lake.close()
    lake = limnos.open(str(tmp_path / "lake"))
    assert lake.get("d/f0007.txt").read_bytes() == (src / "f0007.txt").read_bytes()
    assert lake.fsck(read_data=True).ok
    # A new add of the same bytes finds them in the old pack and writes no pack.
    lake.add(str(src), "again")
    assert _pack_files(str(tmp_path / "lake")) == [f"{old_id}.idx", f"{old_id}.pack"]


def test_a_batch_of_small_files_finds_what_is_stored_loose_or_packed_and_packs_only_the_rest(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    src = _small_files(tmp_path / "src", 12)
    lake.add(str(src / "f0000.txt"), "one")  # alone: a loose object
    lake.add(str(src / "f0001.txt"), "two")
    assert len(_loose(str(tmp_path / "lake"))) == 2 and _pack_files(str(tmp_path / "lake")) == []
    lake.add(str(src), "d")
    (idx,) = [n for n in _pack_files(str(tmp_path / "lake")) if n.endswith(".idx")]
    members = {m[0] for m in json.loads((tmp_path / "lake" / "packs" / idx).read_bytes())["objects"]}
    assert len(members) == 10 and hashing.hash_file(str(src / "f0000.txt"))[0] not in members
    # Every file read again (new mtimes, so no stat-cache hit): all found, nothing packed again.
    for p in src.iterdir():
        os.utime(p, (1_000_000_000, 1_000_000_000))
    hashed = hashing.stats.files_hashed
    lake.add(str(src), "d2")
    assert hashing.stats.files_hashed == hashed + 12
    assert len(_pack_files(str(tmp_path / "lake"))) == 2 and len(_loose(str(tmp_path / "lake"))) == 2
    assert [f.read_bytes() for f in lake.ls("d2/")] == [p.read_bytes() for p in sorted(src.iterdir())]
