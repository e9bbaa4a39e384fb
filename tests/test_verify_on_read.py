"""Verify on read, quarantine and repair (issue 10, item 4), on real files, both catalogs and real remotes.

A flipped byte in a local object must never be served: every reader
(``read_bytes``, ``read_text``, ``File.open``, ``local_path``, ``checkout``,
``limnos cat``, ``limnos get``) raises ``IntegrityError``, the object is moved
to ``quarantine/``, a later read fetches a clean copy from a remote,
``fsck --repair`` replaces it, and ``push`` never uploads it.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import limnos
from limnos import IntegrityError, ObjectNotAvailable
from limnos.cli.app import app
from limnos.store import hashing

PAYLOAD = bytes(range(256)) * 64 + b"tail\n"  # 16 KiB and a line end: binary, and readable as lines


# ------------------------------------------------------------------ helpers
def flip(path: str | Path, at: int = 0) -> None:
    """Flip one byte of a file in place, as bit rot or a stray write would (objects are read-only: chmod first)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))


def add(lake: limnos.Lake, name: str = "data/blob.bin", data: bytes = PAYLOAD) -> limnos.File:
    with lake.create(name) as w:
        w.write_bytes(data)
    assert w.file is not None
    return w.file


def object_path(lake: limnos.Lake, file: limnos.File) -> str:
    assert file.hash
    return lake.cache.path(file.hash)


def quarantine_of(lake: limnos.Lake, file: limnos.File) -> Path:
    assert file.hash
    return Path(lake.cache.root) / "quarantine" / file.hash


def wait_for_fs_clock(lake: limnos.Lake, path: str) -> None:
    """Wait until the filesystem's clock has moved past ``path``'s ctime (one clock tick, a few ms).

    Only then may a verification of the file be remembered (see store/verify.py); a
    loop on a condition, not a sleep for a fixed time.
    """
    ctime = os.stat(path).st_ctime_ns
    while lake.cache.fs_now_ns() <= ctime:
        time.sleep(0.001)


def read_until_remembered(lake: limnos.Lake, file: limnos.File) -> None:
    """Read the file until its verification is in the cache of verified objects."""
    path = object_path(lake, file)
    wait_for_fs_clock(lake, path)
    assert lake.get(file.ref).read_bytes() == PAYLOAD
    assert file.hash and lake.verifier.is_verified(file.hash, os.stat(path))


def folder_remote(lake: limnos.Lake, tmp_path: Path, name: str = "origin") -> str:
    url = str(tmp_path / f"remote-{name}")
    lake.remotes.add(name, url)
    return url


# Every way the library hands out bytes; each must refuse a corrupt object.
def _read_bytes(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    return f.read_bytes()


def _read_text(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    return f.read_text(encoding="latin-1")


def _open_read(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    with f.open() as h:
        return h.read()


def _open_chunks(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    out = b""
    with f.open() as h:
        while chunk := h.read(1000):
            out += chunk
    return out


def _open_lines(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    with f.open("r", encoding="latin-1") as h:
        return list(h)


def _local_path(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    return f.local_path()


def _fspath(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    return os.fspath(f)


def _checkout(lake: limnos.Lake, f: limnos.File, tmp: Path) -> Any:
    return lake.checkout(f, str(tmp / "out.bin"))


READERS: dict[str, Callable[[limnos.Lake, limnos.File, Path], Any]] = {
    "read_bytes": _read_bytes, "read_text": _read_text, "open_read": _open_read, "open_chunks": _open_chunks,
    "open_lines": _open_lines, "local_path": _local_path, "fspath": _fspath, "checkout": _checkout,
}


# ------------------------------------------------------------ verify on read
@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_refuses_a_flipped_byte(lake, tmp_path, reader):
    file = add(lake)
    flip(object_path(lake, file), at=len(PAYLOAD) // 2)
    with pytest.raises(IntegrityError, match=file.hash[:12]) as caught:
        READERS[reader](lake, lake.get("data/blob.bin"), tmp_path)
    assert "data/blob.bin@1" in str(caught.value) and caught.value.digest == file.hash
    assert "\n" not in str(caught.value)
    # quarantined: moved aside whole, not deleted; nothing handed out
    assert not os.path.exists(object_path(lake, file))
    assert quarantine_of(lake, file).read_bytes() != PAYLOAD
    assert len(quarantine_of(lake, file).read_bytes()) == len(PAYLOAD)
    assert not (tmp_path / "out.bin").exists()
    report = lake.fsck()
    assert report.quarantined == [file.hash] and report.missing == [file.hash] and not report.ok
    # no remote: the next read says the object is gone, and why
    with pytest.raises(ObjectNotAvailable, match="quarantine"):
        READERS[reader](lake, lake.get("data/blob.bin"), tmp_path)


def test_a_good_object_reads_the_same_through_every_reader(lake, tmp_path):
    file = add(lake)
    assert _read_bytes(lake, file, tmp_path) == PAYLOAD
    assert _read_text(lake, file, tmp_path) == PAYLOAD.decode("latin-1")
    assert _open_read(lake, file, tmp_path) == PAYLOAD
    assert _open_chunks(lake, file, tmp_path) == PAYLOAD
    text = PAYLOAD.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")  # text mode: universal newlines
    assert "".join(_open_lines(lake, file, tmp_path)) == text
    assert Path(_local_path(lake, file, tmp_path)).read_bytes() == PAYLOAD
    assert Path(_checkout(lake, file, tmp_path)).read_bytes() == PAYLOAD
    assert lake.fsck(read_data=True).ok and lake.fsck().quarantined == []


def test_open_raises_at_end_of_file_not_before(lake):
    file = add(lake)
    flip(object_path(lake, file), at=len(PAYLOAD) - 1)
    with lake.get(file.ref).open() as f:
        assert f.read(10) == PAYLOAD[:10]  # a read that stops early is not checked
        with pytest.raises(IntegrityError, match=re.escape("data/blob.bin@1")):
            f.read()
        with pytest.raises(IntegrityError):
            f.read()  # and it stays refused
    assert quarantine_of(lake, file).exists()


def test_empty_object_verifies(lake):
    file = add(lake, "empty.txt", b"")
    assert lake.get("empty.txt").read_bytes() == b""
    with lake.get("empty.txt").open() as f:
        assert f.read() == b""
    assert file.hash == hashing.hash_bytes(b"")


def test_seek_verifies_the_whole_object_first(lake):
    file = add(lake)
    flip(object_path(lake, file), at=len(PAYLOAD) - 1)  # damage at the end, the seek goes to the start
    with lake.get(file.ref).open() as f:
        assert f.read(1) == PAYLOAD[:1]
        with pytest.raises(IntegrityError, match=file.hash[:12]):
            f.seek(100)
        with pytest.raises(IntegrityError):
            f.read(10)  # no byte is served after the object was found corrupt


def test_seek_and_random_reads_of_a_good_object(lake):
    add(lake)
    with lake.get("data/blob.bin").open() as f:
        assert f.tell() == 0 and f.seekable()
        f.seek(0)  # where it is: still sequential
        assert f.read(4) == PAYLOAD[:4]
        f.seek(-5, io.SEEK_END)
        assert f.read() == b"tail\n"
        f.seek(300)
        assert f.read(3) == PAYLOAD[300:303] and f.tell() == 303
        assert os.fstat(f.fileno()).st_size == len(PAYLOAD)
    with lake.get("data/blob.bin").open("r", encoding="latin-1") as text:
        text.seek(0)
        assert text.read(3) == PAYLOAD[:3].decode("latin-1")


def test_fileno_verifies_the_whole_object_first(lake):
    file = add(lake)
    flip(object_path(lake, file), at=7)
    with lake.get(file.ref).open() as f, pytest.raises(IntegrityError):
        os.read(f.fileno(), 100)


def test_concurrent_readers_of_a_corrupt_object_never_get_its_bytes(lake, tmp_path):
    file = add(lake)
    folder_remote(lake, tmp_path)
    lake.push()
    flip(object_path(lake, file), at=1)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def read() -> None:
        barrier.wait()
        try:
            results.append(lake.get(file.ref).read_bytes())
        except (IntegrityError, ObjectNotAvailable) as exc:
            results.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [r for r in results if isinstance(r, bytes)]
    assert all(r == PAYLOAD for r in got), "a reader was served corrupt bytes"
    assert any(isinstance(r, IntegrityError) for r in results)
    assert lake.get(file.ref).read_bytes() == PAYLOAD  # once quarantined, the remote's copy is fetched
    assert lake.cache.quarantined() == [file.hash]


# ------------------------------------------------------ the verified cache
def test_verified_objects_are_not_rehashed(lake):
    file = add(lake)
    read_until_remembered(lake, file)
    before = hashing.stats.files_hashed
    for _ in range(3):
        assert lake.get(file.ref).read_bytes() == PAYLOAD
        with lake.get(file.ref).open() as f:
            f.seek(100)
            assert f.read(2) == PAYLOAD[100:102]
        assert Path(lake.get(file.ref).local_path()).read_bytes() == PAYLOAD
    assert hashing.stats.files_hashed == before


def test_an_edit_in_place_after_verification_is_caught(lake):
    file = add(lake)
    read_until_remembered(lake, file)
    flip(object_path(lake, file), at=3)  # same size, same inode: only ctime (and mtime) tell
    with pytest.raises(IntegrityError, match=re.escape("data/blob.bin@1")):
        lake.get(file.ref).read_bytes()


@pytest.mark.parametrize("how", ["local_path", "hardlink"])
def test_an_edit_through_a_handed_out_path_is_caught(lake, tmp_path, how):
    file = add(lake)
    read_until_remembered(lake, file)
    if how == "local_path":
        path = lake.get(file.ref).local_path()
    else:
        path = lake.checkout(file.ref, str(tmp_path / "linked.bin"), link="hardlink")
        assert os.stat(path).st_ino == os.stat(object_path(lake, file)).st_ino
    flip(path, at=10)
    with pytest.raises(IntegrityError):
        lake.get(file.ref).local_path()
    assert quarantine_of(lake, file).exists()


def test_mtime_set_back_after_an_edit_is_still_caught(lake):
    file = add(lake)
    path = object_path(lake, file)
    read_until_remembered(lake, file)
    st = os.stat(path)
    flip(path, at=5)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # a careful vandal: same size, inode and mtime
    os.chmod(path, st.st_mode)
    with pytest.raises(IntegrityError):
        lake.get(file.ref).read_bytes()


def test_fsck_read_data_and_push_ignore_the_verified_cache(lake, tmp_path):
    """Rot that leaves every stat field alone (a bad disk) is beyond the cache; fsck --read-data and push still see it."""
    file = add(lake)
    path = object_path(lake, file)
    flip(path, at=9)
    wait_for_fs_clock(lake, path)
    assert file.hash
    lake.statcache.mark_verified(path, os.stat(path))  # as if the rot came after a verification
    report = lake.fsck(read_data=True)
    assert report.corrupt == [file.hash] and not report.ok
    folder_remote(lake, tmp_path)
    with pytest.raises(IntegrityError):
        lake.push()
    assert file.hash not in lake.remotes.get().store.list_hashes()


# ----------------------------------------------------- quarantine, remotes
def test_a_quarantined_object_comes_back_from_a_remote(lake, tmp_path):
    file = add(lake)
    other = add(lake, "data/other.txt", b"other")
    folder_remote(lake, tmp_path)
    lake.push()
    flip(object_path(lake, file), at=0)
    with pytest.raises(IntegrityError):
        lake.get(file.ref).read_bytes()
    report = lake.fsck()
    assert report.ok and report.remote_only == [file.hash] and report.quarantined == [file.hash]
    assert lake.get(file.ref).read_bytes() == PAYLOAD  # a verified download
    assert Path(object_path(lake, file)).read_bytes() == PAYLOAD
    assert lake.fsck(read_data=True).ok and lake.get(other.ref).read_text() == "other"


def test_quarantine_leaves_a_clean_copy_put_there_meanwhile(sqlite_lake):
    lake = sqlite_lake
    file = add(lake)
    path = object_path(lake, file)
    bad = os.stat(path)  # the inode a reader found corrupt...
    os.chmod(path, 0o644)
    os.replace(path, path + ".old")
    Path(path).write_bytes(PAYLOAD)  # ...replaced by a clean copy (another reader's download) before it is moved
    assert file.hash
    assert lake.cache.quarantine(file.hash, bad) is None
    assert Path(path).read_bytes() == PAYLOAD and lake.cache.quarantined() == []
    with pytest.raises(ValueError):
        lake.cache.quarantine("../../etc/passwd")


def test_two_corrupt_copies_of_one_object_are_both_kept(sqlite_lake):
    lake = sqlite_lake
    file = add(lake)
    for at in (1, 2):
        flip(object_path(lake, file), at=at)
        with pytest.raises(IntegrityError):
            lake.get(file.ref).read_bytes()
        lake.cache.put_bytes(file.hash or "", PAYLOAD)  # put back whole, then damaged again
    assert lake.cache.quarantined() == [file.hash]
    assert len(list((Path(lake.cache.root) / "quarantine").iterdir())) == 2


# ------------------------------------------------------------------- repair
def test_fsck_repair_fetches_clean_copies_from_the_remotes(lake, tmp_path):
    a = add(lake, "a.bin", PAYLOAD)
    b = add(lake, "b.bin", PAYLOAD[::-1])
    c = add(lake, "c.bin", b"c" * 5000)
    folder_remote(lake, tmp_path)
    lake.push()
    d = add(lake, "d.bin", b"never pushed")
    flip(object_path(lake, a), at=4)  # found by --read-data only: same size
    flip(object_path(lake, b), at=4)
    with pytest.raises(IntegrityError):
        lake.get(b.ref).read_bytes()  # quarantined by a read
    os.chmod(object_path(lake, c), 0o644)
    with open(object_path(lake, c), "ab") as f:
        f.write(b"grown")  # found without --read-data: the size is wrong
    flip(object_path(lake, d), at=0)  # no remote has it: cannot be repaired
    report = lake.fsck(read_data=True, repair=True)
    assert sorted(report.repaired) == sorted([a.hash, b.hash, c.hash])
    assert report.unrepaired == [d.hash] and report.corrupt == [d.hash] and not report.ok
    assert set(report.quarantined) == {a.hash, b.hash, c.hash, d.hash}
    assert any("could not be repaired" in n for n in report.notes)
    for f, data in ((a, PAYLOAD), (b, PAYLOAD[::-1]), (c, b"c" * 5000)):
        assert lake.get(f.ref).read_bytes() == data  # the clean copies came down as a pack: packed here too
    again = lake.fsck(read_data=True)
    assert again.corrupt == [] and again.missing == [d.hash]


def test_fsck_repair_refuses_a_corrupt_remote_copy_and_tries_the_next(lake, tmp_path):
    file = add(lake)
    bad_url = folder_remote(lake, tmp_path, "bad")
    folder_remote(lake, tmp_path, "good")
    lake.push(remote="bad")
    lake.push(remote="good")
    remote_obj = Path(bad_url) / "objects" / file.hash[:2] / file.hash[2:]
    flip(remote_obj, at=0)  # a damaged (or hostile) remote
    flip(object_path(lake, file), at=1)
    report = lake.fsck(read_data=True, repair=True)
    assert report.repaired == [file.hash] and report.ok
    assert Path(object_path(lake, file)).read_bytes() == PAYLOAD
    lake.remotes.remove("good")
    flip(object_path(lake, file), at=1)
    report = lake.fsck(read_data=True, repair=True)
    assert report.unrepaired == [file.hash] and not report.ok
    assert any("corrupt" in n for n in report.notes)
    assert not os.path.exists(object_path(lake, file))  # the bad remote's bytes were not kept


def test_cli_fsck_repair(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    file = add(lake)
    folder_remote(lake, tmp_path)
    lake.push()
    lake.close()
    flip(tmp_path / "lake" / "objects" / file.hash[:2] / file.hash[2:], at=0)
    runner = CliRunner()
    found = runner.invoke(app, ["--lake", str(tmp_path / "lake"), "fsck", "--read-data"])
    assert found.exit_code == 1 and "corrupt" in found.stdout
    fixed = runner.invoke(app, ["--lake", str(tmp_path / "lake"), "fsck", "--read-data", "--repair", "--json"])
    assert fixed.exit_code == 0, fixed.stderr
    assert f'"repaired": [\n    "{file.hash}"' in fixed.stdout or file.hash in fixed.stdout
    shown = runner.invoke(app, ["--lake", str(tmp_path / "lake"), "fsck"])
    assert shown.exit_code == 0 and "quarantine" in shown.stdout
    assert runner.invoke(app, ["--lake", str(tmp_path / "lake"), "cat", "data/blob.bin"]).stdout_bytes == PAYLOAD


# -------------------------------------------------------------------- CLI
def test_cli_cat_and_get_refuse_a_corrupt_object(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    file = add(lake)
    lake.close()
    flip(tmp_path / "lake" / "objects" / file.hash[:2] / file.hash[2:], at=100)
    runner = CliRunner()
    cat = runner.invoke(app, ["--lake", str(tmp_path / "lake"), "cat", "data/blob.bin"])
    assert cat.exit_code != 0 and cat.stdout_bytes == b""  # not one damaged byte on stdout
    assert "corrupt" in cat.stderr and file.hash[:12] in cat.stderr
    get = runner.invoke(app, ["--lake", str(tmp_path / "lake"), "get", "data/blob.bin", str(tmp_path / "out.bin")])
    assert get.exit_code != 0 and not (tmp_path / "out.bin").exists()


# --------------------------------------------------------------------- push
@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
@pytest.mark.parametrize("kind", ["folder", "moto"])
def test_push_never_uploads_a_corrupt_object(tmp_path, request, kind, packed):
    lake = limnos.init(str(tmp_path / "lake"))
    if kind == "folder":
        lake.remotes.add("origin", str(tmp_path / "remote"))
    else:
        server = request.getfixturevalue("moto_s3")
        lake.remotes.add("origin", f"s3://{server.new_bucket()}/remote", **server.options())
    files = [add(lake, f"f{i}.bin", bytes([i]) * 3000) for i in range(4)]
    bad = files[2]
    flip(object_path(lake, bad), at=17)
    damaged = Path(object_path(lake, bad)).read_bytes()
    with pytest.raises(IntegrityError, match=bad.hash[:12]) as caught:
        lake.push(pack_size=(64 << 20) if packed else 0)
    assert caught.value.digest == bad.hash and "push refused 1 corrupt" in str(caught.value)
    store = lake.remotes.get().store
    held = store.list_hashes()
    assert bad.hash not in held
    assert {f.hash for f in files if f is not bad} <= set(held)  # the good ones went
    assert store.list_records() == []  # no records file names what the remote lacks
    blobs = [store.fs.cat_file(k) for k in store.fs.find(store.root)]
    assert not any(damaged in blob for blob in blobs), "the damaged bytes reached the remote"
    assert lake.cache.quarantined() == [bad.hash]
    with pytest.raises(limnos.LimnosError):
        lake.push()  # still refused: the object is not here to send


# ------------------------------------------------------- a lake on a remote store
def test_remote_lake_cache_is_verified_and_repaired(tmp_path, moto_s3):
    url = f"s3://{moto_s3.new_bucket()}/lake"
    lake = limnos.init(url, cache=str(tmp_path / "cache"), **moto_s3.options())
    file = add(lake)
    flip(object_path(lake, file), at=3)  # the local cached copy rots
    with pytest.raises(IntegrityError):
        lake.get(file.ref).read_bytes()
    assert lake.get(file.ref).read_bytes() == PAYLOAD  # fetched again from the store, verified
    read_until_remembered(lake, file)
    before = hashing.stats.files_hashed
    assert lake.get(file.ref).read_bytes() == PAYLOAD  # the access-time stamp does not force a re-hash
    assert hashing.stats.files_hashed == before
    lake.store.delete(file.hash or "")  # the store lost it; this machine's cache has a good copy
    report = lake.fsck(repair=True)
    assert report.repaired == [file.hash] and report.ok
    assert lake.store.has(file.hash or "")


# ------------------------------------------------------- a corruption campaign
MUTATIONS = ("flip", "zero_block", "truncate", "append", "swap")


def mutate(path: str, how: str, rng: Any, other: bytes) -> None:
    """Damage an object file one way: a flipped byte, a zeroed block, one byte cut or added, other bytes of the same size."""
    os.chmod(path, 0o644)
    data = bytearray(Path(path).read_bytes())
    if how == "flip":
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == "zero_block":
        at = rng.randrange(len(data))
        block = bytes(min(4096, len(data) - at))
        data[at : at + len(block)] = block if block != data[at : at + len(block)] else b"\x01" * len(block)
    elif how == "truncate":
        del data[-1]
    elif how == "append":
        data += b"\x00"
    else:
        data[:] = other[: len(data)].ljust(len(data), b"\x00")
    with open(path, "r+b") as f:  # in place: the same inode, as an edit through a hard link
        f.truncate(0)
        f.write(bytes(data))


def corruption_campaign(lake: limnos.Lake, trials: int, seed: int) -> dict[str, int]:
    """Damage a fresh object per trial and read it one random way; count what each reader caught.

    Returns:
        ``{"trials": n, "detected": d, "served": s}``; ``served`` counts reads that returned damaged bytes.
    """
    rng = __import__("random").Random(seed)
    readers = [*READERS, "push", "fsck_read_data"]
    out = {"trials": 0, "detected": 0, "served": 0}
    tmp = Path(lake.cache.root).parent / "campaign"
    tmp.mkdir(exist_ok=True)
    for n in range(trials):
        size = rng.choice([1, 2, 100, 4096, 65536, 1 << 20, (1 << 20) + 3]) + rng.randrange(64)
        data = rng.randbytes(size)
        file = add(lake, f"campaign/{n}.bin", data)
        path = object_path(lake, file)
        if rng.random() < 0.5:  # half the time the object was read and remembered as verified first
            wait_for_fs_clock(lake, path)
            lake.get(file.ref).read_bytes()
        mutate(path, rng.choice(MUTATIONS), rng, rng.randbytes(size))
        reader = rng.choice(readers)
        out["trials"] += 1
        try:
            if reader == "push":
                lake.push([file.ref])
                got: Any = None
            elif reader == "fsck_read_data":
                got = None if lake.fsck(read_data=True).corrupt else "undetected"
                if got is None:
                    out["detected"] += 1
                    with pytest.raises(IntegrityError):
                        lake.cache.verify(file.hash or "")  # moves it to quarantine, as a read would
                    continue
            else:
                (tmp / str(n)).mkdir()
                got = READERS[reader](lake, lake.get(file.ref), tmp / str(n))
        except IntegrityError:
            out["detected"] += 1
            continue
        out["served"] += 1
        raise AssertionError(f"trial {n}: {reader} served a damaged object ({got!r:.60})")
    return out


def test_corruption_campaign(sqlite_lake, tmp_path):
    """Random damage (flips, zeroed blocks, cut or added bytes, swapped content) to random sizes, every reader: all caught."""
    folder_remote(sqlite_lake, tmp_path)
    result = corruption_campaign(sqlite_lake, trials=40, seed=10)
    assert result == {"trials": 40, "detected": 40, "served": 0}
