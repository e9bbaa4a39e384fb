"""Store rules: dedup, write-once objects, read-only working copies, the stat cache."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import limnos
from helpers import age
from limnos.store import LocalObjectStore, StatCache, hashing


def objects_in(lake: limnos.Lake) -> list[str]:
    root = os.path.join(lake.path, "objects")
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def records_in(lake: limnos.Lake) -> list[str]:
    return sorted(os.listdir(os.path.join(lake.path, "records")))


def test_same_content_is_one_object(sqlite_lake):
    lake = sqlite_lake
    for name in ("a.txt", "b.txt", "c/d.txt"):
        with lake.create(name) as w:
            w.write_bytes(b"same bytes")
    files = lake.ls()
    assert len(files) == 3 and len({f.hash for f in files}) == 1
    assert len(objects_in(lake)) == 1


def test_object_layout_and_hash(sqlite_lake):
    with sqlite_lake.create("x.bin") as w:
        w.write_bytes(b"hello")
    digest = hashing.hash_bytes(b"hello")
    assert w.file.hash == digest
    assert objects_in(sqlite_lake) == [os.path.join(sqlite_lake.path, "objects", digest[:2], digest[2:])]


def test_object_is_never_rewritten(sqlite_lake):
    lake = sqlite_lake
    with lake.create("a.txt") as w:
        w.write_bytes(b"payload")
    path = objects_in(lake)[0]
    before = os.stat(path)
    with lake.create("b.txt") as w:
        w.write_bytes(b"payload")
    store: LocalObjectStore = lake.store  # type: ignore[assignment]
    src = lake.path + "/../again.bin"
    with open(src, "wb") as f:
        f.write(b"payload")
    assert store.put_file(src, w.file.hash) is False
    after = os.stat(path)
    assert (before.st_ino, before.st_mtime_ns, before.st_ctime_ns) == (after.st_ino, after.st_mtime_ns, after.st_ctime_ns)


def test_objects_and_working_copies_are_read_only(sqlite_lake, tmp_path):
    lake = sqlite_lake
    with lake.create("a.txt") as w:
        w.write_text("data")
    obj = lake.get("a.txt").local_path()
    assert stat.S_IMODE(os.stat(obj).st_mode) & 0o222 == 0
    dest = lake.checkout("a.txt", str(tmp_path / "copy.txt"))
    with open(dest) as f:
        assert f.read() == "data"
    assert stat.S_IMODE(os.stat(dest).st_mode) & 0o222 == 0
    # the default working copy is a copy (or reflink), never a hard link to the object
    assert os.stat(dest).st_ino != os.stat(obj).st_ino
    with pytest.raises(FileExistsError):
        lake.checkout("a.txt", dest)


def test_hardlink_is_opt_in(sqlite_lake, tmp_path):
    with sqlite_lake.create("a.txt") as w:
        w.write_text("data")
    dest = sqlite_lake.checkout("a.txt", str(tmp_path / "linked.txt"), link="hardlink")
    assert os.stat(dest).st_ino == os.stat(sqlite_lake.get("a.txt").local_path()).st_ino


def test_add_never_links_the_users_file(sqlite_lake, tmp_path):
    src = tmp_path / "mine.txt"
    src.write_text("original")
    f = sqlite_lake.add(str(src)).file
    assert os.stat(f.local_path()).st_ino != os.stat(src).st_ino
    src.write_text("edited in place")
    assert sqlite_lake.get(f.id).read_text() == "original"


def test_exception_in_create_leaves_nothing(lake, tmp_path):
    staging = os.path.join(lake.path, "tmp")
    with pytest.raises(RuntimeError, match="boom"), lake.create("fail.txt", metadata={"a": 1}) as w:
        w.write_text("partial")
        assert os.path.exists(w.path)
        raise RuntimeError("boom")
    assert not os.path.exists(w.path)
    assert w.file is None
    assert lake.ls() == []
    assert objects_in(lake) == []
    assert os.listdir(staging) == []
    assert records_in(lake) == []


def test_writer_path_keeps_suffix_for_libraries(sqlite_lake):
    np = pytest.importorskip("numpy")
    with sqlite_lake.create("arrays/x.npy") as w:
        np.save(w.path, np.arange(5))  # numpy appends .npy when the path lacks it
    assert np.load(sqlite_lake.get("arrays/x.npy").local_path()).tolist() == [0, 1, 2, 3, 4]


def test_stat_cache_is_shared_by_threads_and_survives_close(tmp_path):
    path = str(tmp_path / "state" / "statcache.sqlite")
    cache = StatCache(path)

    def remember(n: int) -> None:
        cache.put_many([(f"/data/{n}/{i}", (i, n, i * n), f"h{n}-{i}") for i in range(50)])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(remember, range(4)))
    assert len(cache.lookup_many("/data/")) == 200
    assert set(cache.lookup_many("/data/1/")) == {f"/data/1/{i}" for i in range(50)}
    assert cache.lookup_many("/data/1/")["/data/1/7"] == ((7, 1, 7), "h1-7")
    assert cache.get("/data/2/3", (3, 2, 6)) == "h2-3"
    assert cache.get("/data/2/3", (3, 2, 7)) is None  # one stat field differs: the entry is not trusted
    cache.put_many([("/data/2/3", (3, 2, 7), "changed")])
    cache.close()
    assert cache.get("/data/2/3", (3, 2, 7)) == "changed"  # used after close: it opens the file again
    cache.close()
    assert StatCache(path).get("/data/2/3", (3, 2, 7)) == "changed"


def test_store_imports_no_sqlalchemy():
    code = "import sys, limnos.store; assert 'sqlalchemy' not in sys.modules, 'SQL belongs to limnos.catalog'"
    subprocess.run([sys.executable, "-c", code], check=True)


def make_tree(root, n=30):
    for i in range(n):
        sub = root / f"d{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"content {i}")
        age(sub / f"f{i}.txt")
    return root


def test_add_folder_is_one_commit(lake, tmp_path):
    src = make_tree(tmp_path / "data")
    files = lake.add(str(src), name="raw")
    assert len(files) == 30 and all(f.version == 1 for f in files)
    assert sorted(f.name for f in files) == sorted(f"raw/d{i % 3}/f{i}.txt" for i in range(30))
    assert len(records_in(lake)) == 1
    assert lake.get("raw/d1/f1.txt").read_text() == "content 1"


def test_readd_unchanged_reads_nothing_and_makes_no_version(lake, tmp_path):
    src = make_tree(tmp_path / "data")
    first = lake.add(str(src), name="raw")
    hashed = hashing.stats.files_hashed
    again = lake.add(str(src), name="raw")
    assert hashing.stats.files_hashed == hashed, "unchanged files were read"
    assert [f.id for f in again] == [f.id for f in first]
    assert len(records_in(lake)) == 1
    status = lake.status(str(src), name="raw")
    assert status.clean and len(status.unchanged) == 30
    assert hashing.stats.files_hashed == hashed


def test_readd_changed_file_makes_new_version(lake, tmp_path):
    src = make_tree(tmp_path / "data", n=6)
    lake.add(str(src), name="raw")
    (src / "d0" / "f0.txt").write_text("changed")
    (src / "d1" / "new.txt").write_text("new")
    os.unlink(src / "d2" / "f2.txt")
    status = lake.status(str(src), name="raw")
    assert status.modified == ["raw/d0/f0.txt"] and status.new == ["raw/d1/new.txt"]
    assert status.deleted == ["raw/d2/f2.txt"] and not status.clean
    files = {f.name: f for f in lake.add(str(src), name="raw")}
    assert files["raw/d0/f0.txt"].version == 2 and files["raw/d1/f1.txt"].version == 1
    assert lake.get("raw/d0/f0.txt@1").read_text() == "content 0"


def test_add_single_file_default_name_and_move(lake, tmp_path):
    os.makedirs("data", exist_ok=True)
    with open("data/x.csv", "w") as f:
        f.write("a,b\n")
    added = lake.add("data/x.csv", move=True).file
    assert added.name == "data/x.csv"
    assert not os.path.exists("data/x.csv")
    assert lake.get("data/x.csv").read_text() == "a,b\n"


def test_add_missing_path(lake):
    with pytest.raises(limnos.SourceNotFound):
        lake.add("nope.txt")
    with pytest.raises(FileNotFoundError):
        lake.add("nope.txt")


def test_add_bad_metadata_writes_nothing(lake, tmp_path):
    src = make_tree(tmp_path / "data", n=3)
    with pytest.raises(limnos.MetadataError):
        lake.add(str(src), metadata={"name": "reserved"})
    assert objects_in(lake) == [] and records_in(lake) == [] and lake.ls() == []


def test_big_file_is_copied_and_hashed_in_parallel(sqlite_lake, tmp_path, monkeypatch):
    """One thread copies a big file while another hashes the source, blake3 on all cores.

    Proven without timing: spies on the copy (``links.place``) and the hash
    (``hashing.hash_file``) meet at a rendezvous that opens only while both are
    running at once, so a serial ingest (hash, then copy) fails here.
    """
    import threading
    from types import SimpleNamespace
    from typing import Any

    from helpers import Rendezvous
    from limnos.store import links

    sqlite_lake.config["chunk_threshold"] = 0  # the loose layout of big files (chunking is tested in test_chunks.py)

    src = tmp_path / "big.bin"
    with open(src, "wb") as out:  # 64 MiB and more: blake3's multithreaded size; a hole in the middle keeps it cheap
        out.write(os.urandom(1 << 20))
        out.seek(64 << 20)
        out.write(os.urandom(4096) + b"tail")
    data = src.read_bytes()
    expected = hashing.hash_bytes(data)

    meet = Rendezvous(("copy", "hash"))
    real_blake3 = hashing.blake3.blake3
    hasher_threads: list[tuple[int, int]] = []  # (thread, max_threads) of every hasher made

    class Blake3Spy:
        """Stands in for ``blake3.blake3``: notes who made a hasher, and for how many threads."""

        AUTO = real_blake3.AUTO

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            hasher_threads.append((threading.get_ident(), kwargs.get("max_threads", 1)))
            return real_blake3(*args, **kwargs)

    with monkeypatch.context() as patch:  # undone before the checks below, which hash again
        patch.setattr(links, "place", meet.wrap("copy", links.place))
        patch.setattr(hashing, "hash_file", meet.wrap("hash", hashing.hash_file))
        patch.setattr(hashing, "blake3", SimpleNamespace(blake3=Blake3Spy))
        f = sqlite_lake.add(str(src)).file

    assert meet.overlapped, f"the copy and the hash never ran at the same time: {meet.calls}"
    copy, hash_ = meet.first("copy"), meet.first("hash")
    assert copy.thread != hash_.thread
    assert str(copy.args[0]) == str(src) and str(hash_.args[0]) == str(src)  # the hash reads the source, not the copy
    assert (hash_.thread, real_blake3.AUTO) in hasher_threads, f"blake3 was not asked for all cores: {hasher_threads}"
    assert f.hash == expected and f.size == len(data)
    with open(f.local_path(), "rb") as stored:
        assert stored.read() == data
    assert os.stat(f.local_path()).st_ino != os.stat(src).st_ino
    assert sqlite_lake.fsck(read_data=True).ok
