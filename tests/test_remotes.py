"""Push, pull and lazy reads against real stores: a folder, fsspec memory, rclone S3 and moto S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import limnos
from limnos import IntegrityError, ObjectNotAvailable, RemoteError, RemoteNotFound
from limnos.store import LocalObjectStore, ObjectStore, hashing
from limnos.store.transfer import run_blocking


def machine(tmp_path, name, url, options):  # type: ignore[no-untyped-def]
    """A lake on its own 'machine' (folder) with ``origin`` set to the shared remote."""
    lake = limnos.init(str(tmp_path / name / ".limnos"))
    lake.remotes.add("origin", url, **options)
    return lake


def cached_objects(lake: limnos.Lake) -> set[str]:
    return {o.hash for o in lake.cache.iter_objects()}


def fill(lake: limnos.Lake, n: int = 5) -> None:
    for i in range(n):
        with lake.create(f"data/{i}.txt", metadata={"i": i, "split": "train" if i % 2 else "test"}) as w:
            w.write_text(f"payload {i}")
    lake.get("data/0.txt").read_text()
    with lake.create("model.bin") as w:
        w.write_bytes(b"model")


def test_round_trip_between_two_machines(tmp_path, remote):
    url, options = remote
    alice = machine(tmp_path, "alice", url, options)
    fill(alice)
    report = alice.push()
    assert report.transferred == 6 and report.records == 6
    bob = machine(tmp_path, "bob", url, options)
    first = bob.pull(download=False)
    assert first.records == 6 and first.transferred == 0
    listed = {f.name: f for f in bob.ls()}
    assert set(listed) == {f"data/{i}.txt" for i in range(5)} | {"model.bin"}
    assert not any(f.is_local for f in listed.values())
    assert [i.name for i in bob.get("model.bin").inputs] == ["data/0.txt"]
    assert bob.get("data/3.txt").metadata == {"i": 3, "split": "train"}
    second = bob.pull(["data/"])
    assert second.transferred == 5 and second.records == 0
    assert all(bob.get(f"data/{i}.txt").is_local for i in range(5)) and not bob.get("model.bin").is_local
    assert bob.get("data/4.txt").read_text() == "payload 4"
    assert bob.fsck().ok and bob.fsck().remote_only == [bob.get("model.bin").hash]
    # Bob writes too; Alice pulls his work back
    with bob.create("bob/notes.txt") as w:
        w.write_text("from bob")
    bob.push()
    alice.pull()
    assert alice.get("bob/notes.txt").read_text() == "from bob"


def test_push_is_idempotent(tmp_path, remote):
    url, options = remote
    lake = machine(tmp_path, "m", url, options)
    fill(lake, 3)
    assert lake.push().transferred == 4
    again = lake.push()
    assert again.transferred == 0 and again.records == 0 and again.skipped == 4


def test_lazy_open_downloads_exactly_one_object(tmp_path, remote):
    url, options = remote
    alice = machine(tmp_path, "alice", url, options)
    fill(alice)
    alice.push()
    bob = machine(tmp_path, "bob", url, options)
    bob.pull(download=False)
    assert cached_objects(bob) == set()
    target = bob.get("data/2.txt")
    assert target.read_text() == "payload 2"
    assert cached_objects(bob) == {target.hash}
    path = bob.get("data/1.txt").local_path()
    with open(path) as f:
        assert f.read() == "payload 1" and len(cached_objects(bob)) == 2


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_corrupt_remote_object_is_refused(tmp_path, remote, packed):
    url, options = remote
    alice = machine(tmp_path, "alice", url, options)
    fill(alice, 2)
    alice.push(pack_size=(64 << 20) if packed else 0)
    digest = alice.get("data/1.txt").hash
    store = alice.remotes.get().store
    if packed:
        where = store.pack_index(refresh=True)[digest]
        key = store.pack_key(where.pack)
        data = bytearray(store.fs.cat_file(key))
        data[where.offset] ^= 0xFF  # flip one byte of that object inside the pack
        store.fs.pipe_file(key, bytes(data))
    else:
        key = store.object_key(digest)
        if os.path.exists(key):
            os.chmod(key, 0o644)
        store.fs.pipe_file(key, b"tampered bytes")
    bob = machine(tmp_path, "bob", url, options)
    bob.pull(download=False)
    with pytest.raises(IntegrityError, match=digest[:12]):
        bob.get("data/1.txt").read_bytes()
    with pytest.raises(IntegrityError):
        bob.pull()  # whole packs come down here: the good objects are kept, the bad one is not
    assert digest not in cached_objects(bob)
    leftovers = [p for p in (tmp_path / "bob").rglob("*") if p.is_file() and (".part" in p.name or "pack-" in p.name)]
    assert leftovers == []
    assert bob.get("data/0.txt").is_local and bob.get("data/0.txt").read_text() == "payload 0"


def test_packs_make_few_requests_and_unpack_on_pull(tmp_path, remote):
    url, options = remote
    alice = machine(tmp_path, "alice", url, options)
    src = tmp_path / "small"
    src.mkdir()
    for i in range(300):
        (src / f"{i}.bin").write_bytes(os.urandom(100) + bytes([i % 256]))
    alice.add(str(src), name="small")
    report = alice.push(pack_size=10_000)
    store = alice.remotes.get().store
    assert report.transferred == 300 and len(store.pack_index(refresh=True)) == 300
    assert {o.hash for o in store.iter_objects()} == set(), "small objects travel in packs, not one by one"
    n_packs = len([k for k in store.fs.find(store._key("packs")) if str(k).endswith(".pack")])
    assert n_packs == 4  # 300 x 101 bytes in packs of at most 10 kB
    bob = machine(tmp_path, "bob", url, options)
    pulled = bob.pull()
    assert pulled.transferred == 300
    assert all(f.read_bytes()[-1] == int(f.name.split("/")[1].split(".")[0]) % 256 for f in bob.ls("small/"))
    assert bob.fsck(read_data=True).ok


def test_object_not_pushed_is_reported(tmp_path, remote):
    url, options = remote
    alice = machine(tmp_path, "alice", url, options)
    fill(alice, 2)
    alice.push(["data/0.txt"])
    bob = machine(tmp_path, "bob", url, options)
    bob.pull(download=False)
    with pytest.raises(ObjectNotAvailable, match="push it"):
        bob.get("data/1.txt").read_text()


def test_blocking_and_loop_downloads_share_one_path(tmp_path, rclone_s3):
    import fsspec.asyn

    url, options = f"s3://{rclone_s3.new_bucket()}/store", rclone_s3.options()
    writer = ObjectStore(url, **options)
    blobs = {name: f"{name} bytes".encode() for name in ("loose", "packed-a", "packed-b", "corrupt")}
    digests = {name: hashing.hash_bytes(data) for name, data in blobs.items()}
    for name, data in blobs.items():
        (tmp_path / name).write_bytes(data)
    assert writer.put_file(str(tmp_path / "loose"), digests["loose"])
    writer.put_pack([(digests[n], str(tmp_path / n)) for n in ("packed-a", "packed-b")], str(tmp_path))
    writer.fs.pipe_file(writer.object_key(digests["corrupt"]), b"not the bytes")
    assert writer.is_async
    # A fresh store has read no pack index yet: both ways must list the packs themselves.
    blocking, on_loop = ObjectStore(url, **options), ObjectStore(url, **options)
    cache = LocalObjectStore(str(tmp_path / "cache"))

    def on_the_loop(name: str) -> int:
        return fsspec.asyn.sync(on_loop.fs.loop, cache.download_from_async, on_loop, digests[name])

    assert cache.download_from(blocking, digests["loose"]) == len(blobs["loose"])
    assert cache.download_from(blocking, digests["packed-a"]) == len(blobs["packed-a"])
    assert on_the_loop("packed-b") == len(blobs["packed-b"])
    assert cache.download_from(blocking, digests["packed-b"]) == 0  # already here: nothing fetched
    for name in ("loose", "packed-a", "packed-b"):
        with cache.open(digests[name]) as f:
            assert f.read() == blobs[name]
    for fetch in (lambda d: cache.download_from(blocking, d),
                  lambda d: fsspec.asyn.sync(on_loop.fs.loop, cache.download_from_async, on_loop, d)):
        with pytest.raises(IntegrityError, match=digests["corrupt"][:12]):
            fetch(digests["corrupt"])
        with pytest.raises(ObjectNotAvailable):
            fetch("f" * 64)
    assert not cache.has(digests["corrupt"])
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and "objects" not in p.parts] == []


def test_blocking_run_refuses_a_coroutine_that_suspends():
    import asyncio

    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_blocking(suspends())


def test_store_defaults_serve_every_backend(tmp_path):
    store = ObjectStore(f"memory://limnos-defaults-{os.getpid()}/store")
    src = tmp_path / "f.txt"
    src.write_bytes(b"some bytes")
    digest = hashing.hash_bytes(b"some bytes")
    assert store.ingest(str(src)) == (digest, 10, True)
    assert store.ingest(str(src)) == (digest, 10, False)
    staged = tmp_path / "staged"
    staged.write_bytes(b"some bytes")
    assert store.ingest_staged(str(staged)) == (digest, 10, False) and not staged.exists()
    assert store.clean_staging(0) == 0  # a store on fsspec stages nothing in itself
    local = LocalObjectStore(str(tmp_path / "local"))
    assert local.object_key(digest) == local.path(digest)


def test_remote_management(tmp_path):
    lake = limnos.init(str(tmp_path / "l"))
    with pytest.raises(RemoteNotFound):
        lake.push()
    lake.remotes.add("origin", "s3://bucket/x", key="AKIAEXAMPLE", secret="very-secret-value", check=False)
    lake.remotes.add("backup", "ssh://user:hunter22@host/x", check=False)
    shown = [r.to_dict() for r in lake.remotes.list()]
    assert shown == [
        {"name": "backup", "url": "ssh://user:***@host/x", "options": {}},
        {"name": "origin", "url": "s3://bucket/x", "options": {"key": "***", "secret": "***"}},
    ]
    assert lake.remotes.default == "origin"
    assert oct(os.stat(os.path.join(lake.state_dir, "remotes.yaml")).st_mode & 0o777) == "0o600"
    lake.remotes.remove("backup")
    assert [r.name for r in lake.remotes] == ["origin"]
    with pytest.raises(RemoteNotFound):
        lake.remotes.remove("backup")
    with pytest.raises(limnos.LimnosError):
        lake.remotes.add("bad name!", "s3://x")


def test_wrong_credentials_give_clear_error_without_secret(tmp_path, rclone_s3):
    url = f"s3://{rclone_s3.new_bucket()}/remote"
    wrong_secret = "wrong-secret-do-not-print-42"
    # remote add checks the remote first: refused, nothing saved, no secret in the message.
    with pytest.raises(RemoteError) as err:
        machine(tmp_path, "m", url, rclone_s3.options(secret=wrong_secret))
    lake = limnos.open(str(tmp_path / "m" / ".limnos"))
    assert "origin" not in lake.remotes
    for message in [str(err.value)]:
        assert wrong_secret not in message and "credentials" in message
        assert len(message.splitlines()) == 1
    lake.remotes.add("origin", url, check=False, **rclone_s3.options(secret=wrong_secret))
    fill(lake, 1)
    with pytest.raises(RemoteError) as err:
        lake.push()
    message = str(err.value)
    assert wrong_secret not in message and "credentials" in message
    assert len(message.splitlines()) == 1


PUSHER = textwrap.dedent(
    """
    import json, sys, limnos
    lake = limnos.open(sys.argv[1])
    print("ready", flush=True)
    lake.push(jobs=1, pack_size=16 << 10)
    """
)


@pytest.mark.parametrize("kind", ["folder", "rclone"])
def test_resume_after_killed_push(tmp_path, kind, request):
    if kind == "folder":
        url, options = str(tmp_path / "remote"), {}
    else:
        server = request.getfixturevalue("rclone_s3")
        url, options = f"s3://{server.new_bucket()}/remote", server.options()
    lake = machine(tmp_path, "m", url, options)
    src = tmp_path / "many"
    src.mkdir()
    for i in range(400):
        (src / f"{i}.bin").write_bytes(os.urandom(2048))
    lake.add(str(src), name="many")
    lake.close()
    proc = subprocess.Popen([sys.executable, "-c", PUSHER, lake.path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    store = lake.remotes.get().store
    deadline = time.time() + 60
    while time.time() < deadline and len(store.list_hashes()) < 20:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent_before = len(store.list_hashes())
    assert 0 < sent_before < 400, "the push was not interrupted mid-way"
    lake = limnos.open(lake.path)
    report = lake.push()
    assert report.transferred == 400 - sent_before and report.skipped == sent_before
    assert len(store.list_hashes()) == 400
    assert lake.push().transferred == 0
