"""Durable adds flush what they wrote (not the whole disk), and memory stays bounded for any size.

Memory bounds are asserted on a child process's own peak resident set
(``ru_maxrss`` from ``wait4``), never on time: a whole-file mmap or a whole
object held for an upload puts the file's size into that figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import blake3
import pytest

import limnos
from limnos.errors import IntegrityError
from limnos.store import hashing, transfer
from limnos.store.transfer import TransferReport, run_parallel

SRC = str(Path(limnos.__file__).resolve().parents[1])
MB = 1 << 20
BOUND_MB = 200  # the bound on peak RSS for add, push and pull of any size


def write_file(path: Path, size: int) -> str:
    """Write ``size`` bytes that never repeat (chunks cannot dedup them) to ``path``; their BLAKE3 hex digest."""
    stream = blake3.blake3(os.urandom(32))  # its extendable output: a fast random stream
    hasher = blake3.blake3()
    with open(path, "wb") as f:
        left = size
        while left:
            part = stream.digest(length=min(MB, left), seek=size - left)
            f.write(part)
            hasher.update(part)
            left -= len(part)
    return hasher.hexdigest()


#: Forks the measured child from a small process: a child's ru_maxrss starts at its parent's peak
#: (the kernel carries the forking process's high-water mark across exec), and pytest's is large.
LAUNCHER = r"""
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_python(code: str, *args: str) -> tuple[dict[str, Any], float]:
    """Run ``code`` in a fresh interpreter (this tree's limnos first); (its last JSON line, its peak RSS in MB)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
           "LIMNOS_PROGRESS": "0"}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        proc = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, rss.name, "-c", code, *args],
                              capture_output=True, env=env, check=False)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        peak_kb = int(rss.read())
    return json.loads(proc.stdout.decode().strip().splitlines()[-1]), peak_kb / 1024


# ------------------------------------------------------------------ durability
class FsyncLog:
    """Every path ``os.fsync`` was called on, through the real call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)

        def no_sync() -> None:
            raise AssertionError("os.sync() flushes the whole machine; a durable add flushes what it wrote")

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "sync", no_sync)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> FsyncLog:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to name the files that were flushed")
    return FsyncLog(monkeypatch)


def _store_files(root: Path) -> set[str]:
    """The files of a lake's store: objects, packs and their indexes, records (not the catalog, stat cache or staging)."""
    skip = {"state", "tmp", "quarantine"}
    out = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        out |= {os.path.join(folder, f) for f in files if not f.startswith(("catalog.sqlite", "limnos.yaml"))}
    return out


def test_durable_add_flushes_each_file_it_wrote_and_the_folders_naming_them(tmp_path: Path, fsyncs: FsyncLog) -> None:
    """Whatever layout the store uses (loose objects, packs), every file the add left in it was flushed, with
    its folder, and the objects before the records file that names them."""
    lake = limnos.init(tmp_path / "lake")
    src = tmp_path / "data"
    src.mkdir()
    for i in range(3):
        (src / f"small{i}.txt").write_text(f"row {i}\n")
    write_file(src / "big.bin", 3 * MB)  # the big-file path: kernel copy + hash, then commit_staged
    before = _store_files(tmp_path / "lake")
    result = lake.add(src)
    written = _store_files(tmp_path / "lake") - before
    records_dir = os.path.join(lake.cache.root, "records")
    data = [p for p in written if os.path.dirname(p) != records_dir]
    assert len(result) == 4 and data and len(written) > len(data)
    for path in written:
        if os.path.dirname(path) != records_dir:  # the records file is flushed under its staging name
            # as is a small object the pack writer left loose (too few for a pack): tmp/pack-<...>.<hash>
            digest = "".join(Path(path).parts[-2:])
            staged = any(p.startswith(os.path.join(lake.cache.root, "tmp")) and p.endswith("." + digest)
                         for p in fsyncs.paths)
            assert path in fsyncs.paths or staged, f"{path} was not flushed before the commit"
        assert os.path.dirname(path) in fsyncs.paths, f"the folder naming {path} was not flushed"
    loose = [lake.cache.path(f.hash) for f in result if os.path.exists(lake.cache.path(f.hash))]
    assert all(p in written for p in loose)
    assert not [p for p in fsyncs.paths if str(src) in p], "a user's source file is not ours to flush"
    # Objects first, then the records file: the write-ahead order survives a power cut.
    records = [i for i, p in enumerate(fsyncs.paths) if os.path.dirname(p) == records_dir]
    def flushed_at(path: str) -> int:  # under its own name, or the staging name it was flushed under
        digest = "".join(Path(path).parts[-2:])
        return min(i for i, p in enumerate(fsyncs.paths) if p == path or p.endswith("." + digest))

    assert records and max(flushed_at(p) for p in data) < records[0]
    lake.close()


def test_readding_unchanged_files_flushes_no_object(tmp_path: Path, fsyncs: FsyncLog) -> None:
    lake = limnos.init(tmp_path / "lake")
    src = tmp_path / "data"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    old = os.stat(src / "a.txt").st_mtime - 3600
    os.utime(src / "a.txt", (old, old))  # old enough for the stat cache to trust
    lake.add(src)
    fsyncs.paths.clear()
    again = lake.add(src)
    assert again.new_versions == 0
    assert not [p for p in fsyncs.paths if "/objects/" in p]
    lake.close()


def test_fsync_false_flushes_no_object(tmp_path: Path, fsyncs: FsyncLog) -> None:
    limnos.init(tmp_path / "lake").close()
    settings = tmp_path / "lake" / "limnos.yaml"
    settings.write_text(settings.read_text().replace("fsync: true", "fsync: false"))
    lake = limnos.open(tmp_path / "lake")
    (tmp_path / "a.txt").write_text("a\n")
    f = lake.add(tmp_path / "a.txt").file
    assert lake.cache.path(f.hash) not in fsyncs.paths
    assert not [p for p in fsyncs.paths if "/objects/" in p]
    lake.close()


def test_sync_objects_skips_objects_that_are_not_loose_and_refuses_a_crafted_hash(tmp_path: Path) -> None:
    lake = limnos.init(tmp_path / "lake")
    absent = hashing.hash_bytes(b"never stored")  # packed elsewhere, or removed meanwhile: nothing to flush
    assert lake.cache.sync_objects([absent]) == 0
    (tmp_path / "a.txt").write_text("a\n")
    f = lake.add(tmp_path / "a.txt").file
    assert lake.cache.sync_objects([f.hash, absent]) == 1
    with pytest.raises(IntegrityError):
        lake.cache.sync_objects(["00/" + str(tmp_path / "a.txt")])
    lake.close()


# --------------------------------------------------------------------- memory
HASH_CHILD = r"""
import json, sys
from limnos.store import hashing
digest, size = hashing.hash_file(sys.argv[1])
print(json.dumps({"hash": digest, "size": size}))
"""


def test_hashing_a_big_file_reads_it_through_a_bounded_buffer(tmp_path: Path) -> None:
    """A file above the multithreaded threshold costs the child no more than a few buffers of RSS."""
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    write_file(small, 1024)
    expected = write_file(big, 100 * MB)  # above the size that hashes on all cores
    _, base = run_python(HASH_CHILD, str(small))
    out, peak = run_python(HASH_CHILD, str(big))
    assert out == {"hash": expected, "size": 100 * MB}
    # A whole-file mapping would add about 100 MB; a 4 MiB buffer (and blake3 threads) far less.
    assert peak - base < 48, f"hashing 100 MB raised the peak RSS from {base:.0f} to {peak:.0f} MB"


ADD_CHILD = r"""
import json, sys
import limnos
lake = limnos.open(sys.argv[1])
f = lake.add(sys.argv[2]).file
print(json.dumps({"hash": f.hash, "size": f.size, "object": lake.cache.path(f.hash)}))
lake.close()
"""


@pytest.mark.slow
@pytest.mark.parametrize("chunk_threshold", [None, 0], ids=["chunked", "whole"])
def test_adding_a_file_bigger_than_the_bound_keeps_peak_rss_under_it(tmp_path: Path, chunk_threshold: int | None) -> None:
    lake = limnos.init(tmp_path / "lake")
    if chunk_threshold is not None:  # one loose object, not FastCDC chunks in packs (a setting the child reads)
        with open(os.path.join(lake.store.root, "limnos.yaml"), "a") as settings:
            settings.write(f"chunk_threshold: {chunk_threshold}\n")
    lake.close()
    size = (BOUND_MB + 56) * MB
    expected = write_file(tmp_path / "big.bin", size)
    out, peak = run_python(ADD_CHILD, str(tmp_path / "lake"), str(tmp_path / "big.bin"))
    assert (out["hash"], out["size"]) == (expected, size)
    lake = limnos.open(tmp_path / "lake")
    with lake.get("big.bin").open() as stream:  # the stored bytes, whatever the layout
        assert hashing.hash_stream(stream) == (expected, size)
    assert os.path.exists(out["object"]) == (chunk_threshold == 0)
    lake.close()
    assert peak < BOUND_MB, f"adding {size >> 20} MB peaked at {peak:.0f} MB RSS"


SYNC_CHILD = r"""
import json, sys
import limnos
lake = limnos.open(sys.argv[1])
report = lake.push() if sys.argv[2] == "push" else lake.pull()
print(json.dumps(report.to_dict()))
lake.close()
"""


@pytest.mark.slow
@pytest.mark.parametrize("chunk_threshold", [None, 0], ids=["chunked", "whole"])
def test_push_and_pull_of_objects_bigger_than_the_bound_keep_peak_rss_under_it(
        tmp_path: Path, moto_s3: Any, chunk_threshold: int | None) -> None:
    """Three 96 MB files (288 MB) through a real S3 server, as chunks in packs or as whole objects
    (multipart in bounded parts), both ways."""
    url = f"s3://{moto_s3.new_bucket()}/lake"
    lake = limnos.init(tmp_path / "a")
    if chunk_threshold is not None:
        lake.config["chunk_threshold"] = chunk_threshold
    src = tmp_path / "data"
    src.mkdir()
    expected = {f"part{i}.bin": write_file(src / f"part{i}.bin", 96 * MB) for i in range(3)}
    lake.add(src)
    lake.remotes.add("origin", url, **moto_s3.options())
    lake.close()
    pushed, push_peak = run_python(SYNC_CHILD, str(tmp_path / "a"), "push")
    assert pushed["ok"] and pushed["bytes"] >= 3 * 96 * MB

    other = limnos.init(tmp_path / "b")
    other.remotes.add("origin", url, **moto_s3.options())
    other.close()
    pulled, pull_peak = run_python(SYNC_CHILD, str(tmp_path / "b"), "pull")
    assert pulled["ok"]
    other = limnos.open(tmp_path / "b")
    for f in other.ls("data/"):
        assert f.hash == expected[f.name.rsplit("/", 1)[-1]]
        with f.open() as stream:  # the pulled bytes, whatever the layout
            assert hashing.hash_stream(stream)[0] == f.hash
    other.close()
    assert push_peak < BOUND_MB, f"push of 288 MB peaked at {push_peak:.0f} MB RSS"
    assert pull_peak < BOUND_MB, f"pull of 288 MB peaked at {pull_peak:.0f} MB RSS"


# ------------------------------------------------------------ the byte budget
def _watch(budget_holder: dict[str, int]) -> tuple[Any, Any]:
    lock = threading.Lock()

    def enter(weight: int) -> None:
        with lock:
            budget_holder["now"] += weight
            budget_holder["peak"] = max(budget_holder["peak"], budget_holder["now"])

    def leave(weight: int) -> None:
        with lock:
            budget_holder["now"] -= weight

    return enter, leave


@pytest.mark.parametrize("on_loop", [False, True])
def test_transfers_in_flight_stay_within_the_memory_budget(on_loop: bool) -> None:
    """Big items (each one window) and small ones, 32 jobs: the weight in flight never passes the budget,
    and big transfers still overlap (the first two meet at a barrier: a gate of one at a time would break it)."""
    sizes = [1 << 30] * 12 + [MB] * 40  # twelve 1 GiB objects and forty 1 MiB packs
    seen = {"now": 0, "peak": 0}
    lock = threading.Lock()
    done: list[int] = []
    meet = threading.Barrier(2)
    arrivals = {"big": 0}

    def enter(size: int) -> bool:
        with lock:
            seen["now"] += transfer.memory_weight(size)
            seen["peak"] = max(seen["peak"], seen["now"])
            first_two = size > MB and arrivals["big"] < 2
            arrivals["big"] += size > MB
            return first_two

    def leave(size: int) -> None:
        with lock:
            seen["now"] -= transfer.memory_weight(size)
            done.append(size)

    def work(size: int) -> int:
        if enter(size):
            meet.wait(timeout=120)  # a deadlock guard, not a time bound: it breaks only if they never overlap
        for _ in range(50):
            os.sched_yield()
        leave(size)
        return size

    async def async_work(size: int) -> int:
        if enter(size):
            await asyncio.to_thread(meet.wait, 120)
        for _ in range(5):
            await asyncio.sleep(0)
        leave(size)
        return size

    report = TransferReport("push")
    if on_loop:
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_forever, daemon=True)
        runner.start()
        try:
            run_parallel(sizes, work, lambda s: s, str, 32, "pushing", report, async_work=async_work, loop=loop)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            runner.join()
            loop.close()
    else:
        run_parallel(sizes, work, lambda s: s, str, 32, "pushing", report)
    assert report.ok, report.failed
    assert sorted(done) == sorted(sizes) and report.transferred == len(sizes)
    assert seen["peak"] <= transfer.MEMORY_BUDGET


def test_one_item_bigger_than_the_budget_runs_alone() -> None:
    async def scenario() -> None:
        gate = transfer.AsyncByteGate(10)
        await gate.acquire(25)  # nothing in flight: admitted, alone
        second = asyncio.ensure_future(gate.acquire(1))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not second.done() and gate.used == 25  # over the budget while the big one runs
        await gate.release(25)
        await second
        assert gate.used == 1

    asyncio.run(scenario())


# ------------------------------------------------------- multipart uploads
def test_multipart_parts_stay_bounded_and_within_s3s_part_limit() -> None:
    from limnos.store.objects import ObjectStore

    store = ObjectStore("s3://bucket/lake", key="k", secret="s",
                        client_kwargs={"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"})
    assert store._upload_kwargs(2 << 30) == {"chunksize": transfer.PART_SIZE, "max_concurrency": transfer.PARTS_IN_FLIGHT}
    huge = 200 << 30  # 200 GiB: 8 MiB parts would be 25,600 of them
    parts = store._upload_kwargs(huge)["chunksize"]
    assert -(-huge // parts) <= 10_000 and parts < 2 * (huge // 10_000)
    assert ObjectStore("memory://bounded-parts/lake")._upload_kwargs(huge) == {}


def test_an_object_above_the_streamed_put_size_goes_up_in_parts_and_comes_back_whole(
        tmp_path: Path, moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    from limnos.store.objects import ObjectStore

    monkeypatch.setattr(ObjectStore, "streamed_put_max", MB)  # so 20 MiB takes the multipart path
    url = f"s3://{moto_s3.new_bucket()}/lake"
    lake = limnos.init(tmp_path / "a")
    lake.config["chunk_threshold"] = 0  # one object, not chunks (the chunked layout pushes packs: test_chunks.py)
    expected = write_file(tmp_path / "big.bin", 20 * MB + 5)
    (tmp_path / "small.txt").write_text("small\n")
    big = lake.add(tmp_path / "big.bin").file
    lake.add(tmp_path / "small.txt")
    lake.remotes.add("origin", url, **moto_s3.options())
    report = lake.push()
    assert report.ok and big.hash == expected
    fs = s3fs.S3FileSystem(**moto_s3.options(), skip_instance_cache=True)
    key = f"{url[len('s3://'):]}/objects/{expected[:2]}/{expected[2:]}"
    etag = fs.info(key)["ETag"]
    assert etag.strip('"').endswith(f"-{-(-(20 * MB + 5) // transfer.PART_SIZE)}")  # a multipart upload's ETag
    other = limnos.init(tmp_path / "b")
    other.remotes.add("origin", url, **moto_s3.options())
    assert other.pull().ok
    assert hashing.hash_file(other.cache.path(expected)) == (expected, 20 * MB + 5)
    lake.close()
    other.close()


def test_a_streamed_create_of_an_existing_key_keeps_the_first_and_says_so(tmp_path: Path, moto_s3: Any) -> None:
    """The one-request PUT keeps If-None-Match: * (moto honours it): a second create loses, the key keeps its bytes."""
    from limnos.store.objects import ObjectStore

    store = ObjectStore(f"s3://{moto_s3.new_bucket()}/lake", **moto_s3.options())
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first bytes")
    second.write_bytes(b"second bytes")
    key = store._key("log/probe")
    assert store.put(str(first), key, create=True) is True
    assert store.put(str(second), key, create=True) is False
    assert store.fs.cat_file(key) == b"first bytes"
    assert store.put(str(second), key) is True  # without create it replaces, as a records file is rewritten
    assert store.fs.cat_file(key) == b"second bytes"
