"""Content-defined chunks: an edit of a big file costs what changed; every chunk and the whole file are checked."""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path

import pytest

import limnos
from limnos.errors import IntegrityError
from limnos.store import chunks as chunking
from limnos.store import hashing
from limnos.store.chunks import CHUNK_MAX, CHUNK_THRESHOLD, parse_chunklist

SIZE = 12 << 20  # over the chunking threshold


def _stored_bytes(lake_path):
    total = 0
    for folder, _dirs, files in os.walk(lake_path):
        if any(part in folder for part in ("records", "state", "tmp")):
            continue
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files
                     if f.endswith((".pack", ".idx")) or "chunklists" in folder or "objects" in folder)
    return total


@pytest.fixture
def big(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "big.bin"
    path.write_bytes(rng.randbytes(SIZE))
    return path


def test_a_big_file_is_chunked_and_keeps_its_whole_file_hash(tmp_path, big):
    assert SIZE >= CHUNK_THRESHOLD
    lake = limnos.init(str(tmp_path / "lake"))
    f = lake.add(str(big), "big.bin").file
    assert f.hash == hashing.hash_file(str(big))[0]  # File.hash is the BLAKE3 of the bytes, whatever the layout
    assert lake.cache.chunk_list(f.hash) is not None and not lake.cache.has_loose(f.hash)
    chunks = lake.cache.chunk_list(f.hash)
    assert 100 < len(chunks.chunks) < 400  # about 64 KiB each
    assert f.read_bytes() == big.read_bytes()
    path = f.local_path()  # a real file, put together once
    assert Path(path).read_bytes() == big.read_bytes() and f.local_path() == path
    assert lake.fsck(read_data=True).ok


@pytest.mark.parametrize("block", [CHUNK_MAX + 1, 1 << 20, 8 << 20])
def test_a_file_read_in_blocks_is_cut_exactly_as_one_stream(tmp_path, big, monkeypatch, block):
    # Cut points must not depend on where blocks end: an edited file re-added later dedups against
    # chunks stored before, whatever the block size was then.
    import io

    import blake3
    import pyfastcdc

    monkeypatch.setattr(chunking, "BLOCK", block)
    data = big.read_bytes()[: SIZE - 12345]  # not a multiple of anything
    path = tmp_path / "cut.bin"
    path.write_bytes(data)
    handed: list[tuple[str, bytes]] = []
    digest, chunks = chunking.chunk_file(str(path), lambda view, members: handed.extend(
        (h, bytes(view[o:o + n])) for h, o, n in members))
    cdc = pyfastcdc.FastCDC(chunking.CHUNK_AVG, min_size=chunking.CHUNK_MIN, max_size=CHUNK_MAX)
    expected = [(blake3.blake3(c.data).hexdigest(), c.length) for c in cdc.cut_stream(io.BytesIO(data))]
    assert list(chunks.chunks) == expected
    assert [(h, len(b)) for h, b in handed] == expected
    assert all(hashing.hash_bytes(b) == h for h, b in handed)  # each block's bytes, as they were when handed over
    assert b"".join(b for _h, b in handed) == data
    assert digest == hashing.hash_bytes(data) and chunks.size == len(data)


def test_a_one_byte_edit_and_an_insertion_store_and_push_only_what_changed(tmp_path, big):
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(big), "big.bin")
    lake.remotes.add("origin", str(tmp_path / "remote"))
    first = lake.push()
    assert first.bytes >= SIZE
    data = bytearray(big.read_bytes())
    data[SIZE // 2] ^= 0xFF
    before = _stored_bytes(str(tmp_path / "lake"))
    big.write_bytes(bytes(data))
    lake.add(str(big), "big.bin")
    stored = _stored_bytes(str(tmp_path / "lake")) - before
    pushed = lake.push().bytes
    assert stored < 600_000 and pushed < 600_000  # two chunks and a chunk list, not 12 MB
    data[SIZE // 3:SIZE // 3] = b"x" * 100  # insert: FastCDC's boundaries realign after the edit
    before = _stored_bytes(str(tmp_path / "lake"))
    big.write_bytes(bytes(data))
    lake.add(str(big), "big.bin")
    assert _stored_bytes(str(tmp_path / "lake")) - before < 800_000
    assert lake.push().bytes < 800_000
    other = limnos.init(str(tmp_path / "other"))
    other.remotes.add("origin", str(tmp_path / "remote"))
    other.pull()
    assert other.get("big.bin").read_bytes() == bytes(data)
    assert other.get("big.bin@1").read_bytes() != bytes(data)
    assert other.fsck(read_data=True).ok


def test_a_corrupt_chunk_is_detected_on_read(tmp_path, big):
    lake = limnos.init(str(tmp_path / "lake"))
    f = lake.add(str(big), "big.bin").file
    lake.remotes.add("origin", str(tmp_path / "remote"))
    lake.push()
    chunks = lake.cache.chunk_list(f.hash)
    victim = chunks.chunks[len(chunks.chunks) // 2][0]
    where = lake.cache.locate(victim)
    pack = lake.cache.packs.pack_path(where.pack)
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as out:
        out.seek(where.offset + 10)
        byte = out.read(1)
        out.seek(where.offset + 10)
        out.write(bytes([byte[0] ^ 1]))
    assert f.hash in lake.fsck(read_data=True).corrupt
    with pytest.raises(IntegrityError):
        f.read_bytes()
    assert not lake.cache.has_loose(f.hash)  # nothing half-good was kept
    assert lake.cache.in_quarantine(victim)
    # The next read fetches the one bad chunk, verified, from the remote, and checks the whole file.
    assert f.read_bytes() == big.read_bytes()
    assert Path(f.local_path()).read_bytes() == big.read_bytes()


def test_a_ranged_read_reads_only_the_chunks_it_needs(tmp_path, big):
    lake = limnos.init(str(tmp_path / "lake"))
    f = lake.add(str(big), "big.bin").file
    read = []
    real = lake.cache.read_chunk
    lake.cache.read_chunk = lambda h: read.append(h) or real(h)  # type: ignore[method-assign]
    start = SIZE // 2
    assert lake.cache.read_range(f.hash, start, start + 1000) == big.read_bytes()[start:start + 1000]
    assert 1 <= len(read) <= 2
    with f.open() as handle:
        handle.seek(SIZE - 10)
        assert handle.read() == big.read_bytes()[-10:]


def test_a_crafted_chunk_list_from_a_remote_is_refused(tmp_path, big):
    a = limnos.init(str(tmp_path / "a"))
    f = a.add(str(big), "big.bin").file
    a.remotes.add("origin", str(tmp_path / "remote"))
    a.push()
    key = tmp_path / "remote" / "chunklists" / f.hash[:2] / f.hash[2:]
    data = bytearray(key.read_bytes())
    data[-1] ^= 0x7F  # the last chunk's length: the chunks no longer add up to the size
    os.chmod(key, 0o644)
    key.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        parse_chunklist(f.hash, bytes(data))
    b = limnos.init(str(tmp_path / "b"))
    b.remotes.add("origin", str(tmp_path / "remote"))
    with pytest.raises(limnos.errors.LimnosError):
        b.pull()
    assert b.cache.chunk_list(f.hash) is None and not b.cache.has(f.hash)


def test_gc_keeps_the_chunks_of_live_files_and_frees_those_of_deleted_ones(tmp_path, big):
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(big), "one.bin")
    data = bytearray(big.read_bytes())
    data[100] ^= 1
    (tmp_path / "two.bin").write_bytes(bytes(data))
    lake.add(str(tmp_path / "two.bin"), "two.bin")
    lake.rm("one.bin")
    report = lake.gc(dry_run=False, grace=dt.timedelta(0))
    assert 1 <= len(report.deleted) <= 4  # one.bin's list and its one chunk that two.bin does not share
    assert lake.get("two.bin").read_bytes() == bytes(data)
    assert lake.fsck(read_data=True).ok


def test_a_pack_whose_fsync_fails_fails_the_add_and_publishes_nothing(tmp_path, big, monkeypatch):
    # Packs are fsynced on a background thread while the next is written; an error there must
    # still stop the add before any index, chunk list or catalog row names the pack.
    import errno

    from limnos.store import lakepacks

    real_writer = lakepacks.PackShelf.writer
    monkeypatch.setattr(lakepacks.PackShelf, "writer",  # small packs: several seal while the file is cut
                        lambda self, durable=True, pack_max=0, **kw: real_writer(self, durable, 1 << 20, **kw))
    real_fsync = os.fsync
    synced = []

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.basename(path).startswith("pack-") and not path.endswith(".idx"):
            synced.append(path)
            if len(synced) == 3:
                raise OSError(errno.EIO, "injected I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    lake = limnos.init(str(tmp_path / "lake"))
    with pytest.raises(OSError, match="injected"):
        lake.add(str(big), "big.bin")
    assert len(synced) >= SIZE // (1 << 20)  # the failure came from the background, while later packs were written
    root = tmp_path / "lake"
    assert _stored_bytes(str(root)) == 0  # no pack, index, chunk list or object
    assert [n for n in os.listdir(root / "tmp") if n.startswith("pack-")] == []  # staging files removed
    assert lake.ls() == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    f = lake.add(str(big), "big.bin").file  # and the next add works
    assert f.read_bytes() == big.read_bytes()
