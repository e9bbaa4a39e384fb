"""Streamed reads: ``File.open()`` on an object this machine lacks reads ranges on demand (store/ranged.py).

The first byte costs one ranged GET, an in-order reader gets readahead, the
hash is checked by the read that completes the object, and the object is
cached only when it was read whole and found right.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

import limnos
from limnos.errors import IntegrityError, ObjectNotAvailable
from limnos.store import ranged

BLOCK = 64 << 10


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stream from 256 KiB up, in 64 KiB blocks: the same code paths as 8 MiB and 4 MiB, with small files."""
    monkeypatch.setattr(ranged, "STREAM_MIN", 256 << 10)
    monkeypatch.setattr(ranged, "BLOCK", BLOCK)
    monkeypatch.setattr(ranged, "READAHEAD", 2)


def payload(size: int = 1_000_003) -> bytes:
    return os.urandom(size)


def clone(tmp_path: Path, url: str, options: dict[str, Any]) -> limnos.Lake:
    """A second lake that knows every file of the remote and holds none of their bytes."""
    other = limnos.init(str(tmp_path / "clone"))
    other.remotes.add("origin", url, **options)
    other.pull(download=False)
    return other


@pytest.fixture
def pushed(tmp_path: Path) -> tuple[limnos.Lake, bytes, str]:
    """A lake whose remote folder holds one ~1 MB object, and the object's bytes and remote path."""
    lake = limnos.init(str(tmp_path / "lake"))
    data = payload()
    with lake.create("big.bin") as w:
        w.write_bytes(data)
    remote = str(tmp_path / "remote")
    lake.remotes.add("origin", remote)
    lake.push()
    digest = lake.get("big.bin").hash
    assert digest is not None
    other = clone(tmp_path, remote, {})
    lake.close()
    yield other, data, os.path.join(remote, "objects", digest[:2], digest[2:])
    other.close()


def test_first_bytes_need_one_range_and_nothing_is_cached(pushed: tuple[limnos.Lake, bytes, str]) -> None:
    lake, data, _ = pushed
    file = lake.get("big.bin")
    assert not file.is_local
    with file.open() as f:
        reader = f.raw
        assert isinstance(reader, ranged.RangedReader)
        assert f.read(10) == data[:10]
        assert reader.requests >= 1
        f.seek(len(data) - 100)
        assert f.read() == data[-100:]  # a parquet footer, say: one more range
        fetched = reader.requests
    assert fetched < len(data) // BLOCK  # not the whole object
    assert not file.is_local  # read in part: not cached
    assert os.listdir(os.path.join(lake.path, "tmp")) == []  # the staging file went with the reader


def test_reading_whole_checks_the_hash_and_caches(pushed: tuple[limnos.Lake, bytes, str]) -> None:
    lake, data, _ = pushed
    file = lake.get("big.bin")
    with file.open() as f:
        assert f.read() == data
        assert f.raw.cached
    assert file.is_local
    assert lake.fsck(read_data=True).ok
    assert file.read_bytes() == data  # now from the cache
    with file.open() as f:
        assert not isinstance(f.raw, ranged.RangedReader)


def test_blocks_read_in_any_order_make_the_object_whole(pushed: tuple[limnos.Lake, bytes, str]) -> None:
    lake, data, _ = pushed
    file = lake.get("big.bin")
    with file.open() as f:
        starts = list(range(0, len(data), BLOCK))
        for start in reversed(starts):  # backwards: no readahead helps, the hash waits for block 0
            f.seek(start)
            assert f.read(BLOCK) == data[start : start + BLOCK]
        assert f.raw.cached
    assert file.is_local


def test_an_in_order_reader_gets_readahead(pushed: tuple[limnos.Lake, bytes, str]) -> None:
    lake, data, _ = pushed
    file = lake.get("big.bin")
    threads: list[str] = []
    source = lake.sources()[0]
    original = source.fs.cat_file

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    source.fs.cat_file = spy  # type: ignore[method-assign]
    try:
        assert file.read_bytes() == data
    finally:
        del source.fs.cat_file
    assert any(t.startswith("limnos-readahead") for t in threads)  # fetched before the reader asked
    assert len(threads) == -(-len(data) // BLOCK)  # and every block once


def test_a_corrupt_remote_object_raises_at_the_end_and_nothing_is_kept(pushed: tuple[limnos.Lake, bytes, str]) -> None:
    lake, data, remote_object = pushed
    os.chmod(remote_object, 0o644)
    bad = bytearray(data)
    bad[-1] ^= 1
    with open(remote_object, "wb") as f:
        f.write(bad)
    file = lake.get("big.bin")
    with file.open() as f:
        assert f.read(100) == data[:100]  # unchecked yet: the end decides
        with pytest.raises(IntegrityError) as caught:
            f.read()
        assert caught.value.digest == file.hash
        with pytest.raises(IntegrityError):
            f.read(1)  # nothing more is served
    assert not file.is_local
    assert os.listdir(os.path.join(lake.path, "tmp")) == []


def test_a_truncated_remote_object_is_refused(pushed: tuple[limnos.Lake, bytes, str]) -> None:
    lake, data, remote_object = pushed
    os.chmod(remote_object, 0o644)
    with open(remote_object, "wb") as f:
        f.write(data[: len(data) // 2])
    file = lake.get("big.bin")
    with pytest.raises(IntegrityError), file.open() as f:
        f.read()
    assert not file.is_local


def test_an_object_no_source_has_is_reported_as_before(pushed: tuple[limnos.Lake, bytes, str]) -> None:
    lake, _, remote_object = pushed
    os.unlink(remote_object)
    with pytest.raises(ObjectNotAvailable):
        lake.get("big.bin").open()
    assert os.listdir(os.path.join(lake.path, "tmp")) == []


def test_small_objects_download_whole(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("small.bin") as w:
        w.write_bytes(b"x" * 1000)
    lake.remotes.add("origin", str(tmp_path / "remote"))
    lake.push()
    other = clone(tmp_path, str(tmp_path / "remote"), {})
    with other.get("small.bin").open() as f:
        assert not isinstance(f.raw, ranged.RangedReader)
        assert f.read() == b"x" * 1000
    assert other.get("small.bin").is_local
    other.close()
    lake.close()


def test_a_bucket_lake_streams_from_s3(tmp_path: Path, moto_s3: Any) -> None:
    url = f"s3://{moto_s3.new_bucket()}/lake"
    writer = limnos.init(url, cache=str(tmp_path / "cache-a"), **moto_s3.options())
    data = payload(700_001)
    with writer.create("big.bin") as w:
        w.write_bytes(data)
    writer.close()
    reader_lake = limnos.open(url, cache=str(tmp_path / "cache-b"), **moto_s3.options())
    file = reader_lake.get("big.bin")
    assert not file.is_local
    with file.open() as f:
        assert isinstance(f.raw, ranged.RangedReader)
        assert f.read(5) == data[:5]
    assert not file.is_local
    assert file.read_bytes() == data
    assert file.is_local
    reader_lake.close()
