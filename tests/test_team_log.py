"""Team lakes on a bare bucket: machines agree on versions through the bucket's commit log, with no server.

Two cache folders stand in for two machines: each has its own SQLite catalog,
and they share only the bucket (moto's S3 server, which honours If-None-Match).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import limnos
from limnos import errors
from limnos.core.commits import crash_points
from limnos.store.log import entry_relpath


@pytest.fixture(autouse=True)
def _no_grace_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # Visibility must come from the log, never from a roll-forward grace of 0.
    monkeypatch.delenv("LIMNOS_ROLL_FORWARD_GRACE", raising=False)
    monkeypatch.delenv("LIMNOS_CATCH_UP_INTERVAL", raising=False)


@pytest.fixture
def team(tmp_path, moto_s3):  # type: ignore[no-untyped-def]
    """(url, options, open_machine): a new team lake on moto, and a way to open it as another machine."""
    url, options = f"s3://{moto_s3.new_bucket()}/lake", moto_s3.options()
    limnos.init(url, cache=str(tmp_path / "init"), **options).close()
    opened: list[limnos.Lake] = []

    def machine(name: str) -> limnos.Lake:
        lake = limnos.open(url, cache=str(tmp_path / name), **options)
        opened.append(lake)
        return lake

    yield url, options, machine
    for lake in opened:
        lake.close()


def write(lake: limnos.Lake, name: str, text: str) -> limnos.File:
    with lake.create(name) as w:
        w.write_text(text)
    return w.file


def versions(lake: limnos.Lake, name: str) -> list[tuple[int, str]]:
    return [(f.version, f.id) for f in lake.history(name)]


def test_init_probes_the_bucket_and_refuses_one_that_overwrites(tmp_path, rclone_s3, moto_s3):
    bucket = rclone_s3.new_bucket()
    url = f"s3://{bucket}/lake"
    with pytest.raises(errors.TeamModeUnsupported, match="If-None-Match") as caught:
        limnos.init(url, cache=str(tmp_path / "c"), **rclone_s3.options())
    assert "catalog='postgresql://" in caught.value.hint and "team=False" in caught.value.hint
    fs = limnos.store.ObjectStore(url, **rclone_s3.options()).fs
    assert fs.find(bucket) == [], "a refused init leaves nothing in the bucket"
    # one machine only: allowed when asked for
    lake = limnos.init(url, cache=str(tmp_path / "c"), team=False, **rclone_s3.options())
    assert lake.shared_log is None and "shared" not in lake.config
    lake.close()
    good = limnos.init(f"s3://{moto_s3.new_bucket()}/lake", cache=str(tmp_path / "m"), **moto_s3.options())
    assert good.config["shared"] == "log" and good.shared_log is not None
    assert good.store.fs.find(f"{good.store.root}/log") == [], "the probe key is removed"
    good.close()


def test_a_file_made_on_one_machine_is_visible_on_the_next_call_of_another(team):
    _url, _options, machine = team
    a, b = machine("a"), machine("b")
    made = write(a, "data/x.txt", "from a")
    got = b.get("data/x.txt")  # no grace, no pull: B's next call
    assert (got.id, got.version, got.read_text()) == (made.id, 1, "from a")
    write(b, "data/x.txt", "from b")
    write(a, "data/x.txt", "from a again")
    write(b, "data/y.txt", "y")
    assert versions(a, "data/x.txt") == versions(b, "data/x.txt")
    assert [v for v, _ in versions(a, "data/x.txt")] == [1, 2, 3]
    assert [f.read_text() for f in a.history("data/x.txt")] == ["from a", "from b", "from a again"]
    assert [f.name for f in a.ls()] == [f.name for f in b.ls()] == ["data/x.txt", "data/y.txt"]
    assert a.get("data/x.txt@2").id == b.get("data/x.txt@2").id
    assert a.fsck().ok and b.fsck().ok


def test_a_writer_that_lost_the_race_catches_up_and_takes_the_next_version(team, monkeypatch):
    _url, _options, machine = team
    a, b = machine("a"), machine("b")
    monkeypatch.setenv("LIMNOS_CATCH_UP_INTERVAL", "3600")  # B does not look before writing: its first try must lose
    first = write(a, "x.txt", "a")
    second = write(b, "x.txt", "b")
    assert (first.version, second.version) == (1, 2)
    monkeypatch.delenv("LIMNOS_CATCH_UP_INTERVAL")
    assert versions(a, "x.txt") == versions(b, "x.txt") == [(1, first.id), (2, second.id)]
    log_keys = sorted(p.rsplit("/", 1)[-1] for p in a.store.fs.find(f"{a.store.root}/log"))
    assert log_keys == [entry_relpath(1).split("/")[1], entry_relpath(2).split("/")[1]]


def test_a_step_run_on_one_machine_is_a_hit_on_another(team, tmp_path):
    _url, _options, machine = team
    a, b = machine("a"), machine("b")
    calls: list[str] = []

    @limnos.step
    def upper(src: limnos.File) -> str:
        calls.append(src.id)
        return src.read_text().upper()

    source = write(a, "in.txt", "hello")
    out_a = upper(a.get("in.txt"))
    out_b = upper(b.get("in.txt"))  # the same input file, seen through machine B
    assert calls == [source.id], "the step ran once, on A"
    assert out_a == out_b == "HELLO"


def test_a_published_commit_that_fails_locally_still_took_effect(team):
    _url, _options, machine = team
    a, b = machine("a"), machine("b")

    def disk_full(point: str) -> None:
        raise OSError(28, "No space left on device")

    crash_points.set("after_records", disk_full)  # after the log entry is published, before the local COMMIT
    try:
        made = write(a, "x.txt", "published")
    finally:
        crash_points.clear()
    assert made.version == 1
    assert a.get("x.txt").id == b.get("x.txt").id == made.id
    assert a.fsck().ok


def test_a_records_file_no_log_entry_publishes_is_never_applied(team, monkeypatch):
    _url, _options, machine = team
    a = machine("a")
    kept = write(a, "kept.txt", "kept")
    (cid,) = a.catalog.commit_ids()  # the one commit so far
    data = a.store.read_record(cid)
    # A writer that died between its records file and its log entry: the same rows under a new commit id.
    ghost = limnos.names.new_id()
    a.store.fs.pipe_file(f"{a.store.root}/records/{ghost}.jsonl", _renamed(data, cid, ghost))
    b = machine("b")
    assert [f.id for f in b.ls()] == [kept.id]
    assert ghost not in b.catalog.commit_ids()
    monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "0")  # old enough to judge: not a writer in flight
    report = b.fsck()
    assert report.ok and any("never published" in n for n in report.notes)
    b.gc(dry_run=False, grace=dt.timedelta(0))
    assert ghost not in b.store.list_records(), "gc tidies an unpublished records file away"
    assert b.get("kept.txt").read_text() == "kept"


def _renamed(data: bytes, old: str, new: str) -> bytes:
    from limnos.catalog.records import Commit

    commit = Commit.from_jsonl(data, old)
    commit.id = new
    for row in commit.files:
        row["id"] = limnos.names.new_id()
    return commit.to_jsonl()


def test_a_hostile_log_entry_is_refused_and_the_log_goes_on(team, caplog):
    _url, _options, machine = team
    a = machine("a")
    write(a, "first.txt", "1")
    # An attacker with write access to the bucket plants entry 2: not a sealed records file.
    a.store.fs.pipe_file(f"{a.store.root}/{entry_relpath(2)}", b'{"type":"commit","id":"../../etc"}\n')
    later = write(a, "later.txt", "3")  # A catches up (refusing entry 2) and publishes entry 3
    b = machine("b")
    assert [f.name for f in b.ls()] == ["first.txt", "later.txt"]
    assert b.get("later.txt").id == later.id
    assert b.catalog.log_position() == 3
    report = b.fsck()
    assert not report.ok and report.records_damaged == ["log/2"]
    with pytest.raises(errors.GcRefused, match="shared log"):
        b.gc(dry_run=False)


def test_a_pull_into_a_team_lake_is_published_to_its_log(team, tmp_path):
    _url, _options, machine = team
    a, b = machine("a"), machine("b")
    solo = limnos.init(str(tmp_path / "solo"))
    with solo.create("from-solo.txt") as w:
        w.write_text("solo")
    solo.remotes.add("backup", str(tmp_path / "backup"))
    solo.push(remote="backup")
    write(a, "from-solo.txt", "a was first")
    a.remotes.add("backup", str(tmp_path / "backup"))
    a.pull(remote="backup")
    assert versions(a, "from-solo.txt") == versions(b, "from-solo.txt")
    assert [f.read_text() for f in b.history("from-solo.txt")] == ["a was first", "solo"]


def test_reindex_of_a_team_lake_replays_its_log(team):
    _url, _options, machine = team
    a = machine("a")
    for text in ("1", "2", "3"):
        write(a, "x.txt", text)
    before = versions(a, "x.txt")
    report = a.reindex(force=True)
    assert len(report.rolled_forward) == 3 and versions(a, "x.txt") == before


WRITER = textwrap.dedent(
    """
    import sys, limnos
    url, endpoint, key, secret, cache, worker, count = sys.argv[1:8]
    options = {"key": key, "secret": secret,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    lake = limnos.open(url, cache=cache, **options)
    for i in range(int(count)):
        name = "shared/log.txt" if i % 5 == 0 else f"w{worker}/{i}.txt"
        with lake.create(name, metadata={"worker": int(worker)}) as w:
            # every 10th payload is the same across workers: concurrent uploads of one object
            w.write_text("common" if i % 10 == 0 else f"{worker}-{i}")
    lake.close()
    """
)


def test_the_test_bucket_lets_exactly_one_of_many_concurrent_creates_win(moto_s3):
    """The commit log's premise, on the server the team tests use: of 8 processes racing to create one key,
    exactly one succeeds, and the key holds its bytes. moto's own server checked and then wrote (two steps),
    so two racers could both win; tests/moto_atomic.py makes it atomic, as S3 is."""
    bucket = moto_s3.new_bucket()
    racer = textwrap.dedent("""
        import json, os, sys, time, s3fs
        fs = s3fs.S3FileSystem(**json.loads(os.environ["OPTIONS"]), skip_instance_cache=True)
        me, start = sys.argv[1], float(sys.argv[2])
        fs.ls(os.environ["BUCKET"])  # connected before the start
        while time.time() < start:  # all racers begin at once
            time.sleep(0.001)
        won = []
        for i in range(200):
            try:
                fs.pipe_file(f"{os.environ['BUCKET']}/race/{i}", me.encode(), mode="create")
                won.append(i)
            except (FileExistsError, OSError):
                pass
        print(json.dumps(won))
    """)
    env = {**os.environ, "OPTIONS": json.dumps(moto_s3.options()), "BUCKET": bucket}
    start = str(time.time() + 8)  # after every racer has started and connected
    procs = [subprocess.Popen([sys.executable, "-c", racer, str(n), start], env=env, stdout=subprocess.PIPE, text=True)
             for n in range(8)]
    wins = {str(n): json.loads(p.communicate(timeout=300)[0]) for n, p in enumerate(procs)}
    import s3fs

    fs = s3fs.S3FileSystem(**moto_s3.options(), skip_instance_cache=True)
    for i in range(200):
        winners = [me for me, won in wins.items() if i in won]
        assert len(winners) == 1, f"key {i}: {winners} all created it"
        assert fs.cat_file(f"{bucket}/race/{i}").decode() == winners[0]


def _run_writers(url: str, moto_s3, caches: list[Path], per: int) -> None:  # type: ignore[no-untyped-def]
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, moto_s3.endpoint, moto_s3.key, moto_s3.secret,
                          str(cache), str(w), str(per)], stderr=subprocess.PIPE, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("LIMNOS_")})
        for w, cache in enumerate(caches)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        assert proc.returncode == 0, err


@pytest.mark.slow
def test_eight_machines_write_at_once_with_no_server(tmp_path, moto_s3):
    """The 8 processes x 250 creates of the PostgreSQL team test, with only a bucket: 2,000 files, gap-free."""
    url, options = f"s3://{moto_s3.new_bucket()}/lake", moto_s3.options()
    limnos.init(url, cache=str(tmp_path / "init"), **options).close()
    workers, per = 8, 250
    # 8 processes on 4 "machines": two share each cache (and its SQLite catalog), as two scripts on one laptop would
    _run_writers(url, moto_s3, [tmp_path / f"machine-{w // 2}" for w in range(workers)], per)
    one = limnos.open(url, cache=str(tmp_path / "machine-0"), **options)
    fresh = limnos.open(url, cache=str(tmp_path / "fresh"), **options)  # a new machine: replays the log
    for lake in (one, fresh):
        assert lake.catalog.count_files() == workers * per
        assert [f.version for f in lake.history("shared/log.txt")] == list(range(1, workers * per // 5 + 1))
    assert versions(one, "shared/log.txt") == versions(fresh, "shared/log.txt")
    assert json.dumps(sorted((f.name, f.version, f.id) for f in one.ls())) == \
        json.dumps(sorted((f.name, f.version, f.id) for f in fresh.ls()))
    report = fresh.fsck(read_data=True)
    assert report.ok and report.missing == [] and report.corrupt == []
    assert fresh.catalog.log_position() == workers * per
    one.close()
    fresh.close()


def test_gc_spares_what_another_machine_may_be_reusing(team):
    """gc on one machine cannot see another machine's writers: recently deleted files keep their objects
    for the grace, and a writer that reuses an unreferenced object makes it young again."""
    from limnos.store import hash_bytes

    _url, _options, machine = team
    a, b = machine("a"), machine("b")
    gone = write(a, "gone.txt", "deleted a moment ago")
    a.rm("gone.txt")
    # An orphan: stored by a write that never committed (on some machine, long ago as far as gc can tell).
    orphan = b"stored, never committed"
    digest = hash_bytes(orphan)
    staged = tmp = Path(b.cache.root) / "orphan.bin"
    tmp.write_bytes(orphan)
    b.store.put_file(str(staged), digest)
    before = b.store.fs.info(b.store.object_key(digest))["LastModified"]
    time.sleep(1.1)  # S3 times have one-second resolution
    reused = write(b, "reused.txt", orphan.decode())
    assert reused.hash == digest
    after = b.store.fs.info(b.store.object_key(digest))["LastModified"]
    assert after > before, "the reused orphan was uploaded again: another machine's gc now counts it as young"
    report = a.gc(dry_run=False, grace=dt.timedelta(0))
    assert gone.hash in report.deleted and digest not in report.deleted  # referenced by now
    assert a.get("reused.txt").read_bytes() == orphan


def test_gc_keeps_the_objects_of_files_deleted_within_the_grace(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    old = write(lake, "old.txt", "made two days ago, deleted now")
    two_days_ago = time.time() - 2 * 86400
    os.utime(lake.cache.path(old.hash), (two_days_ago, two_days_ago))
    lake.rm("old.txt")
    report = lake.gc(dry_run=False)  # grace: one day
    assert old.hash not in report.deleted and lake.store.has(old.hash), "deleted minutes ago: a writer may reuse it"
    assert old.hash in lake.gc(dry_run=False, grace=dt.timedelta(0)).deleted


def test_a_commit_published_without_its_records_file_is_restored_from_the_log(team, monkeypatch):
    _url, _options, machine = team
    a, b = machine("a"), machine("b")

    def refuse(commit_id: str, data: bytes) -> None:
        raise errors.RemoteError("cannot write records to the bucket: connection reset")

    monkeypatch.setattr(a.store, "write_record", refuse)  # the log entry went in; its records copy does not
    made = write(a, "x.txt", "published")
    monkeypatch.undo()
    assert b.get("x.txt").id == made.id, "published: it took effect everywhere"
    (cid,) = b.catalog.commit_ids()
    assert cid not in b.store.list_records()
    report = b.fsck()
    assert report.ok and any("shared log holds them" in n for n in report.notes)
    b.gc(dry_run=False)  # nothing is unknown: the log holds the commit
    repaired = b.fsck(repair=True)
    assert any("restored 1 records files" in n for n in repaired.notes)
    assert cid in b.store.list_records()
    from limnos.catalog.records import Commit

    assert Commit.from_jsonl(b.store.read_record(cid), cid).files[0]["id"] == made.id


def test_a_push_to_a_team_lake_is_refused_and_a_pull_into_it_works(team, tmp_path):
    url, options, machine = team
    a, b = machine("a"), machine("b")
    laptop = limnos.init(str(tmp_path / "laptop"))
    made = write(laptop, "notes.txt", "from the laptop")
    laptop.remotes.add("team", url, **options)
    before = sorted(a.store.fs.find(a.store.root))
    with pytest.raises(errors.TeamLakeTarget, match="team lake") as caught:
        laptop.push(remote="team")
    assert "team.pull(remote='mine')" in caught.value.hint
    assert sorted(a.store.fs.find(a.store.root)) == before, "nothing was sent"
    a.remotes.add("mine", laptop.path)
    a.pull(remote="mine")
    got = b.get("notes.txt")
    assert (got.id, got.read_text()) == (made.id, "from the laptop")


def test_a_transaction_the_database_retries_after_publishing_publishes_once(team):
    """run_atomic retries a locked COMMIT: the commit was already published, so it must not be published again."""
    import sqlite3

    import sqlalchemy as sa

    _url, _options, machine = team
    a, b = machine("a"), machine("b")
    calls = []

    def locked_once(point: str) -> None:
        calls.append(point)
        if len(calls) == 1:
            raise sa.exc.OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))

    crash_points.set("after_records", locked_once)
    try:
        made = write(a, "x.txt", "once")
    finally:
        crash_points.clear()
    assert made.version == 1
    assert [f.id for f in b.history("x.txt")] == [made.id] == [f.id for f in a.history("x.txt")]
    assert a.catalog.log_position() == b.catalog.log_position() == 1, "one log entry, not two"
    assert a.fsck().ok


def test_the_readme_team_lake_block_runs_on_a_bucket(tmp_path, moto_s3):
    """docs/sharing.md, way 2 (was in the README), as written but for the bucket name, with the endpoint from the environment."""
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "sharing.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if b.startswith('lake = limnos.init("s3://team-bucket/lake")')]
    assert len(blocks) == 1, "docs/sharing.md lost its team-lake block"
    url = f"s3://{moto_s3.new_bucket()}/lake"
    script = "import limnos\n" + blocks[0].replace("s3://team-bucket/lake", url) + textwrap.dedent(
        """
        with lake.create("raw/x.txt") as w:
            w.write_text("shared")
        print(lake.shared_log is not None, limnos.open(URL).get("raw/x.txt").read_text())
        """).replace("URL", repr(url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIMNOS_", "AWS_"))}
    env.update(AWS_ENDPOINT_URL=moto_s3.endpoint, AWS_ACCESS_KEY_ID=moto_s3.key, AWS_SECRET_ACCESS_KEY=moto_s3.secret,
               AWS_DEFAULT_REGION="us-east-1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "shared"]
