"""Lakes on a remote store (S3) with a shared PostgreSQL catalog: team mode, cache, prune."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import limnos


@pytest.fixture
def s3_lake_url(rclone_s3):  # type: ignore[no-untyped-def]
    return f"s3://{rclone_s3.new_bucket()}/lake", rclone_s3.options()


def test_lake_on_s3_with_local_cache(tmp_path, s3_lake_url, pg_database):
    url, options = s3_lake_url
    lake = limnos.init(url, catalog=pg_database, cache=str(tmp_path / "cache-a"), **options)
    with lake.create("raw/a.csv", metadata={"rows": 1}) as w:
        w.write_text("a,b\n1,2\n")
    src = tmp_path / "folder"
    src.mkdir()
    for i in range(40):
        (src / f"{i}.txt").write_text(str(i))
    lake.add(str(src), name="many")
    digest = lake.get("raw/a.csv").hash
    assert lake.store.has(digest), "create uploads to the store at once"
    assert len(lake.store.list_hashes()) == 41
    lake.close()
    # another machine: same store and catalog, empty cache
    other = limnos.open(url, catalog=pg_database, cache=str(tmp_path / "cache-b"), **options)
    assert not other.get("raw/a.csv").is_local
    assert other.get("raw/a.csv").read_text() == "a,b\n1,2\n"
    assert other.get("raw/a.csv").is_local and not other.get("many/3.txt").is_local
    assert [f.name for f in other.query(rows=1)] == ["raw/a.csv"]
    report = other.fsck(read_data=True)
    assert report.ok and report.files == 41, report
    assert other.cache_size().objects == 1


def test_lake_on_s3_without_shared_catalog_rebuilds_from_records(tmp_path, s3_lake_url):
    url, options = s3_lake_url
    lake = limnos.init(url, cache=str(tmp_path / "c1"), team=False, **options)  # one writer: rclone lacks If-None-Match
    with lake.create("x.txt") as w:
        w.write_text("x")
    lake.close()
    other = limnos.open(url, cache=str(tmp_path / "c2"), **options)  # its own SQLite, empty: rolls forward
    assert other.get("x.txt").read_text() == "x"


def test_cache_prune_lru_and_in_use(tmp_path, s3_lake_url):
    url, options = s3_lake_url
    lake = limnos.init(url, cache=str(tmp_path / "cache"), team=False, **options)
    for i in range(6):
        with lake.create(f"f{i}.bin") as w:
            w.write_bytes(bytes([i]) * 1000)
    paths = {i: lake.get(f"f{i}.bin").local_path() for i in range(6)}
    # age the access times: f0 oldest ... f5 newest, all older than keep_recent
    for i, path in paths.items():
        os.utime(path, (1_000_000 + i, os.stat(path).st_mtime))
    assert lake.cache_size().bytes == 6000
    held = lake.get("f0.bin").open()  # the oldest, but being read
    os.utime(paths[0], (1_000_000, os.stat(paths[0]).st_mtime))
    report = lake.prune_cache("3.5KB")
    held.close()
    assert report.kept_in_use == 1
    assert report.removed == 3 and lake.cache_size().bytes == 3000
    remaining = {i for i in range(6) if os.path.exists(paths[i])}
    assert remaining == {0, 4, 5}
    assert lake.get("f1.bin").read_bytes() == bytes([1]) * 1000  # pruned objects come back lazily
    with pytest.raises(limnos.LimnosError):
        limnos.init(str(tmp_path / "local")).prune_cache("1GB")


TEAM_WRITER = textwrap.dedent(
    """
    import sys, limnos
    url, catalog, endpoint, key, secret, cache, worker, count = sys.argv[1:9]
    options = {"key": key, "secret": secret,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    lake = limnos.open(url, catalog=catalog, cache=cache, **options)
    for i in range(int(count)):
        name = "shared/log.txt" if i % 5 == 0 else f"w{worker}/{i}.txt"
        with lake.create(name, metadata={"worker": int(worker)}) as w:
            # every 10th payload is the same across workers: concurrent uploads of one object
            w.write_text("common" if i % 10 == 0 else f"{worker}-{i}")
    lake.close()
    """
)


@pytest.mark.slow
def test_team_mode_eight_writers(tmp_path, s3_lake_url, pg_database, rclone_s3):
    url, options = s3_lake_url
    limnos.init(url, catalog=pg_database, cache=str(tmp_path / "init-cache"), **options).close()
    workers, per = 8, 250
    procs = [
        subprocess.Popen([sys.executable, "-c", TEAM_WRITER, url, pg_database, rclone_s3.endpoint, rclone_s3.key,
                          rclone_s3.secret, str(tmp_path / f"cache-{w}"), str(w), str(per)],
                         stderr=subprocess.PIPE, text=True)
        for w in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
    lake = limnos.open(url, catalog=pg_database, cache=str(tmp_path / "check-cache"), **options)
    assert lake.catalog.count_files() == workers * per
    shared = lake.history("shared/log.txt")
    assert [f.version for f in shared] == list(range(1, workers * per // 5 + 1))
    report = lake.fsck(read_data=True)
    assert report.ok and report.missing == [] and report.corrupt == []
    assert len(lake.store.list_records()) == workers * per  # one records file per create
