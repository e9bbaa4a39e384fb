"""The commit path under faults (issue 10, items 1-3 and 6): the writer guard, records checksums, failed
commits that must never come back, crafted records files, and a crash-point harness.

Every test here failed on the code before the change that made it pass (see the docstrings).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import threading
import time

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import limnos
from helpers import age
from limnos import errors
from limnos.catalog import Commit
from limnos.core.recovery import roll_forward
from limnos.store import hashing

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def old_id(seconds_ago: float = 3600.0, tail: int = 12345) -> str:
    """A valid ULID made ``seconds_ago`` seconds ago (older than any roll-forward grace)."""
    value = (int((time.time() - seconds_ago) * 1000) << 80) | tail
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def records_dir(lake: limnos.Lake) -> str:
    return os.path.join(lake.path, "records")


def record_path(lake: limnos.Lake, commit_id: str) -> str:
    return os.path.join(records_dir(lake), f"{commit_id}.jsonl")


def commit_of(lake: limnos.Lake, file: limnos.File) -> str:
    """The id of the commit that made ``file`` (its records file's name)."""
    ids = [c for c in lake.store.list_records() if file.id.encode() in lake.store.read_record(c)]
    assert len(ids) == 1
    return ids[0]


def make(lake: limnos.Lake, name: str, data: bytes = b"data", metadata: dict | None = None) -> limnos.File:
    with lake.create(name, metadata=metadata) as w:
        w.write_bytes(data)
    assert w.file is not None
    return w.file


# ------------------------------------------------------- 1. the writer guard
def test_gc_rereads_the_catalog_before_it_deletes(lake):
    """A writer that reuses an old unreferenced object while gc plans: gc sees the new reference. Failed before: lost."""
    data = b"old content " * 100
    make(lake, "old.txt", data)
    digest = lake.get("old.txt").hash
    lake.rm("old.txt")
    age(lake.store.path(digest), 2 * 86400)
    listing = lake.store.iter_objects
    made: list[limnos.File] = []

    def listing_then_writer(*args, **kwargs):  # gc has read the catalog and lists; a writer commits meanwhile
        items = list(listing(*args, **kwargs))
        if not made:
            writer = threading.Thread(target=lambda: made.append(make(lake, "new.txt", data)))
            writer.start()
            writer.join()
        return iter(items)

    lake.store.iter_objects = listing_then_writer
    try:
        lake.gc(dry_run=False)
    finally:
        lake.store.iter_objects = listing
    assert made and made[0].hash == digest
    assert lake.get("new.txt").read_bytes() == data
    assert lake.fsck(read_data=True).ok


def test_gc_waits_for_a_writer_between_reuse_and_commit(lake, monkeypatch):
    """A writer that found its object present holds gc's delete phase off until it has committed. Failed before: lost."""
    data = b"reused " * 100
    make(lake, "old.txt", data)
    digest = lake.get("old.txt").hash
    lake.rm("old.txt")
    age(lake.store.path(digest), 2 * 86400)
    state = threading.Condition()
    flags = {"reused": False, "gc_waits_or_done": False}
    commit = lake.catalog.commit

    def commit_after_gc(*args, **kwargs):  # the object was reused; now let gc try to delete it
        with state:
            flags["reused"] = True
            state.notify_all()
            assert state.wait_for(lambda: flags["gc_waits_or_done"], timeout=60)
        return commit(*args, **kwargs)

    def signal_gc() -> None:
        with state:
            flags["gc_waits_or_done"] = True
            state.notify_all()

    collecting = getattr(lake, "collecting", None)
    if collecting is not None:  # the guard: gc announces that it waits for writers, then waits

        def announced():
            signal_gc()
            return collecting()

        monkeypatch.setattr(lake, "collecting", announced)
    monkeypatch.setattr(lake.catalog, "commit", commit_after_gc)
    made: list[limnos.File] = []
    writer = threading.Thread(target=lambda: made.append(make(lake, "new.txt", data)))
    writer.start()
    with state:
        assert state.wait_for(lambda: flags["reused"], timeout=60)
    lake.gc(dry_run=False)
    signal_gc()
    writer.join()
    monkeypatch.undo()
    assert made and made[0].hash == digest
    assert lake.get("new.txt").read_bytes() == data


def test_gc_inside_a_write_is_refused(lake):
    with lake.writing(), pytest.raises(limnos.GcRefused, match="inside"):
        lake.gc(dry_run=False)


def test_writing_is_reentrant_and_shared_by_threads(lake):
    done = []
    with lake.writing(), lake.writing():
        worker = threading.Thread(target=lambda: done.append(make(lake, "t.txt")))
        worker.start()
        worker.join()
    assert done and lake.get("t.txt").read_bytes() == b"data"
    lake.gc(dry_run=False)  # nothing is left held


# ------------------------------------------------ 2. records are checked like objects
def test_records_file_ends_with_its_checksum(lake):
    f = make(lake, "a.txt", metadata={"k": 1})
    data = lake.store.read_record(commit_of(lake, f))
    body, last = data[:-1].rsplit(b"\n", 1)
    trailer = json.loads(last)
    assert trailer == {"type": "end", "blake3": hashing.hash_bytes(body + b"\n"), "rows": len(body.split(b"\n"))}
    assert json.loads(data.split(b"\n", 1)[0])["sealed"] is True
    assert Commit.from_jsonl(data).files[0]["id"] == f.id


def test_damaged_records_file_is_refused(sqlite_lake):
    """Any cut, any flipped byte: RecordsDamaged naming the commit. Failed before: a truncated file parsed."""
    f = make(sqlite_lake, "a.txt", metadata={"k": 1})
    cid = commit_of(sqlite_lake, f)
    data = sqlite_lake.store.read_record(cid)
    lines = data.splitlines(keepends=True)
    cuts = [data[:-1], data[: len(data) // 2], b"".join(lines[:-1]), b"".join(lines[:2]), b""]
    flipped = bytearray(data)
    flipped[len(lines[0]) + 5] ^= 1
    for bad in [*cuts, bytes(flipped), data.replace(b'"k"', b'"j"')]:
        with pytest.raises(errors.RecordsDamaged) as caught:
            Commit.from_jsonl(bad, cid)
        assert caught.value.commit_id == cid
        assert isinstance(caught.value, errors.IntegrityError)
    with pytest.raises(errors.RecordsDamaged, match="belongs to"):
        Commit.from_jsonl(data, old_id())


def test_legacy_records_without_trailer_are_read_whole_or_refused(sqlite_lake):
    """Records written before the trailer parse when complete; cut mid-line they are damaged."""
    f = make(sqlite_lake, "a.txt")
    cid = commit_of(sqlite_lake, f)
    lines = sqlite_lake.store.read_record(cid).splitlines(keepends=True)
    head = json.loads(lines[0])
    head.pop("sealed")
    legacy = (json.dumps(head, separators=(",", ":"), sort_keys=True) + "\n").encode() + b"".join(lines[1:-1])
    assert Commit.from_jsonl(legacy, cid).files[0]["id"] == f.id
    with pytest.raises(errors.RecordsDamaged):
        Commit.from_jsonl(legacy[:-3], cid)


def test_fsck_compares_records_and_catalog_both_ways(lake, monkeypatch):
    """Failed before: fsck --read-data said ok on a truncated and on a deleted records file."""
    a, b = make(lake, "a.txt", b"a"), make(lake, "b.txt", b"b")
    ca, cb = commit_of(lake, a), commit_of(lake, b)
    assert lake.fsck(read_data=True).ok
    with open(record_path(lake, ca), "r+b") as out:
        out.truncate(os.path.getsize(record_path(lake, ca)) - 10)
    os.unlink(record_path(lake, cb))
    report = lake.fsck(read_data=True)
    assert not report.ok
    assert report.records_damaged == [ca] and report.records_missing == [cb]
    assert lake.fsck().records_damaged == [ca]  # records are small: even a plain fsck reads them all


def test_fsck_reports_records_the_catalog_lacks(lake, tmp_path, monkeypatch):
    other = limnos.init(str(tmp_path / "other"))
    f = make(other, "theirs.txt")
    cid = commit_of(other, f)
    lake.store.write_record(cid, other.store.read_record(cid))
    other.close()
    assert lake.fsck().ok  # younger than the grace: a commit in flight
    monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "0")
    report = lake.fsck()
    assert not report.ok and report.records_unapplied == [cid]


def test_reindex_reports_what_it_could_not_restore(lake):
    """Failed before: reindex rebuilt without the damaged commit and said so only in a note."""
    a, b = make(lake, "a.txt", b"a"), make(lake, "b.txt", b"b")
    ca = commit_of(lake, a)
    with open(record_path(lake, ca), "r+b") as out:
        out.truncate(20)
    with pytest.raises(errors.RecordsDamaged, match="nothing was changed"):
        lake.reindex(force=True)  # the catalog still holds that commit: wiping it would lose it
    assert lake.get("a.txt").id == a.id
    lake.catalog.wipe()
    report = lake.reindex()
    assert not report.ok and report.records_damaged == [ca]
    assert [f.name for f in lake.ls()] == ["b.txt"] and lake.get("b.txt").id == b.id


def test_cli_reindex_exits_non_zero_when_records_are_damaged(sqlite_lake, monkeypatch):
    from typer.testing import CliRunner

    from limnos.cli import app

    a = make(sqlite_lake, "a.txt", b"a")
    make(sqlite_lake, "b.txt", b"b")
    with open(record_path(sqlite_lake, commit_of(sqlite_lake, a)), "r+b") as out:
        out.truncate(20)
    sqlite_lake.close()
    refused = CliRunner().invoke(app, ["--lake", sqlite_lake.path, "reindex", "--force"])
    assert refused.exit_code == 1 and "nothing was changed" in refused.output, refused.output
    for name in os.listdir(sqlite_lake.path):  # the catalog is lost: only the records can bring it back
        if name.startswith("catalog.sqlite"):
            os.unlink(os.path.join(sqlite_lake.path, name))
    result = CliRunner().invoke(app, ["--lake", sqlite_lake.path, "reindex", "--force"])
    assert result.exit_code == 1, result.output
    assert "could not restore 1 commit (" in result.output
    assert limnos.open(sqlite_lake.path).ls()[0].name == "b.txt"


def test_gc_refuses_while_records_and_catalog_disagree(lake):
    """Failed before: a deleted records file gave no warning and gc ran."""
    f = make(lake, "a.txt")
    os.unlink(record_path(lake, commit_of(lake, f)))
    for dry_run in (True, False):
        with pytest.raises(limnos.GcRefused, match=r"1 commit.*fsck"):
            lake.gc(dry_run=dry_run, grace=dt.timedelta(0))
    assert lake.get("a.txt").read_bytes() == b"data"


# ------------------------------------------- 3. a call that raised never takes effect later
@pytest.fixture
def failing_commit(lake):
    """Make the next catalog COMMIT fail, as a full disk or a lost connection would (once armed)."""
    with commits_failing(lake.catalog.engine, armed=False) as armed:
        yield armed


@contextlib.contextmanager
def commits_failing(engine, armed: bool = True):
    """While inside, the next COMMIT on ``engine`` fails with ENOSPC when ``armed[0]`` is True."""
    flag = [armed]

    def fail(conn):
        if flag[0]:
            flag[0] = False
            raise OSError(28, "database or disk is full")

    sa.event.listen(engine, "commit", fail)
    try:
        yield flag
    finally:
        sa.event.remove(engine, "commit", fail)


def test_failed_commit_never_rolls_forward(lake, failing_commit, monkeypatch):
    """Failed before: the records file stayed and the next open rolled the failed set_metadata forward."""
    f = make(lake, "a.txt")
    before = lake.store.list_records()
    failing_commit[0] = True
    with pytest.raises(OSError, match="disk is full"):
        lake.set_metadata("a.txt", {"label": "cat"})
    assert lake.store.list_records() == before
    assert roll_forward(lake, grace=0).rolled_forward == []
    lake.close()
    monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "0")
    again = limnos.open(lake.path, catalog=lake.catalog.url)
    assert again.get(f.id).metadata == {}
    assert again.fsck().ok
    again.close()


def test_failed_commit_is_voided_when_its_records_cannot_be_removed(lake, failing_commit, monkeypatch):
    make(lake, "a.txt")

    def cannot(commit_id: str) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(lake.store, "delete_record", cannot)
    failing_commit[0] = True
    with pytest.raises(errors.StoreFull, match="no space left"):  # a create explains a full disk as the lake's
        make(lake, "b.txt")
    monkeypatch.undo()  # the store can delete again
    voids = [n for n in os.listdir(records_dir(lake)) if n.endswith(".void")]
    assert len(voids) == 1
    assert roll_forward(lake, grace=0).rolled_forward == []
    assert [f.name for f in lake.ls()] == ["a.txt"]
    monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "0")
    assert lake.fsck().ok  # an abandoned commit is no disagreement
    lake.gc(dry_run=False, grace=dt.timedelta(0))  # nor does it stop gc, which tidies it away
    assert [n for n in os.listdir(records_dir(lake)) if n.startswith(voids[0][:-5])] == []


def test_roll_forward_grace_comes_from_the_environment(lake, monkeypatch):
    from limnos.core.commits import SimulatedCrash, crash_points

    make(lake, "first.txt")  # an empty catalog rolls every records file forward at once
    crash_points.set("after_records", SimulatedCrash.raise_it)
    try:
        with pytest.raises(SimulatedCrash):
            make(lake, "crashed.txt")
    finally:
        crash_points.clear()
    lake.close()
    url = lake.catalog.url
    young = limnos.open(lake.path, catalog=url)  # 2 minutes by default: it may be a writer mid-commit
    assert [f.name for f in young.ls()] == ["first.txt"]
    young.close()
    monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "0")
    aged = limnos.open(lake.path, catalog=url)
    assert aged.get("crashed.txt").read_bytes() == b"data"
    aged.close()
    monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "soon")
    with pytest.raises(limnos.LimnosError, match="LIMNOS_ROLL_FORWARD_GRACE"):
        limnos.open(lake.path, catalog=url)


# -------------------------------------- 6. a crafted records file never bricks the lake
def _crafted(kind: str, template: bytes) -> tuple[str, bytes]:
    """(commit id, bytes) of a crafted records file, from a real one."""
    lines = [json.loads(line) for line in template.splitlines()]
    lines = [line for line in lines if line.get("type") != "end"]
    cid = old_id(tail=hash(kind) & 0xFFFF)
    lines[0]["id"] = cid
    lines[0].pop("sealed", None)
    if kind == "garbage":
        return cid, b"\x00\xff{not json at all\n"
    if kind == "huge size":
        next(line for line in lines if line["type"] == "file")["size"] = 10**20
    elif kind == "version abc":
        next(line for line in lines if line["type"] == "file")["version"] = "abc"
    elif kind == "null id":
        lines[0]["id"] = None
    elif kind == "zero id":
        cid = lines[0]["id"] = "0" * 26
    elif kind == "not a ulid":
        cid = lines[0]["id"] = "evil"
    return cid, "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.mark.parametrize("kind", ["garbage", "huge size", "version abc", "null id", "zero id", "not a ulid"])
def test_crafted_records_file_is_quarantined_and_the_lake_opens(tmp_path, catalog_url, kind, caplog):
    """Failed before: every later open raised (OverflowError, ValueError, TypeError...)."""
    lake = limnos.init(str(tmp_path / "lake"), catalog=catalog_url)
    good = make(lake, "good.txt", b"good")
    template = lake.store.read_record(commit_of(lake, good))
    lake.close()
    cid, data = _crafted(kind, template)
    with open(os.path.join(tmp_path / "lake", "records", f"{cid}.jsonl"), "wb") as out:
        out.write(data)
    with caplog.at_level(logging.WARNING, logger="limnos"):
        lake = limnos.open(str(tmp_path / "lake"), catalog=catalog_url)
    assert any(f"{cid}.jsonl" in r.getMessage() and "quarantine" in r.getMessage() for r in caplog.records)
    assert not os.path.exists(record_path(lake, cid))
    assert os.path.exists(os.path.join(records_dir(lake), "quarantine", f"{cid}.jsonl"))
    assert lake.get("good.txt").read_bytes() == b"good"
    make(lake, "after.txt")
    report = lake.fsck()
    assert not report.ok and report.records_quarantined == [cid]
    with pytest.raises(limnos.GcRefused, match="quarantine"):
        lake.gc()
    lake.close()
    limnos.open(str(tmp_path / "lake"), catalog=catalog_url).close()  # and it keeps opening


# ------------------------------------------------------ 5. the crash-point harness
POINTS = ["after_objects", "in_transaction", "after_records", "after_commit"]
LANDS = {"after_objects": False, "in_transaction": False, "after_records": True, "after_commit": True}


def _prepare(lake: limnos.Lake, tmp_path) -> None:
    make(lake, "base.txt", b"base")
    for point in POINTS:
        folder = tmp_path / f"folder-{point}"
        folder.mkdir()
        for i in range(3):
            (folder / f"{i}.txt").write_text(f"{point} {i}")


def _do(lake: limnos.Lake, op: str, point: str, tmp_path) -> None:
    """The write under test; each crash point gets its own names, so one lake serves them all."""
    if op == "create":
        make(lake, f"made-{point}.txt", point.encode(), metadata={"k": 1})
    elif op == "add":
        lake.add(str(tmp_path / f"folder-{point}"), name=f"folder-{point}")
    else:
        lake.set_metadata("base.txt", {f"label_{point}": "cat"})


def _landed(lake: limnos.Lake, op: str, point: str) -> bool:
    """Whether the op's commit is in the lake, checking that it is there whole or not at all."""
    if op == "create":
        if f"made-{point}.txt" not in [f.name for f in lake.ls()]:
            return False
        f = lake.get(f"made-{point}.txt")
        assert f.read_bytes() == point.encode() and f.metadata == {"k": 1}
        return True
    if op == "add":
        files = lake.ls(f"folder-{point}/")
        assert len(files) in (0, 3), [f.name for f in files]
        for f in files:
            assert f.read_text() == f"{point} {f.name[-5]}"
        return bool(files)
    return lake.get("base.txt").metadata.get(f"label_{point}") == "cat"


def _check_after(lake: limnos.Lake, op: str, point: str) -> bool:
    """Whole or absent; fsck clean; gc agrees (runs, and keeps all the lake refers to)."""
    landed = _landed(lake, op, point)
    report = lake.fsck(read_data=True)
    assert report.ok, report.to_dict()
    lake.gc(dry_run=False, grace=dt.timedelta(0))
    assert _landed(lake, op, point) == landed
    assert lake.get("base.txt").read_bytes() == b"base"
    assert lake.fsck(read_data=True).ok
    return landed


@pytest.mark.parametrize("op", ["create", "add", "set_metadata"])
def test_killed_at_each_crash_point(lake, tmp_path, op, monkeypatch):
    """SIGKILL a writer at each named point of its commit; reopen: whole or absent, fsck clean, gc agrees."""
    from limnos.core.commits import crash_points, kill_process

    _prepare(lake, tmp_path)
    url, path = lake.catalog.url, lake.path
    lake.close()
    for point in POINTS:
        pid = os.fork()
        if pid == 0:  # the child: open, arm the point, write; exit 0 only if the call returned
            try:
                child = limnos.open(path, catalog=url)
                crash_points.set(point, kill_process)
                _do(child, op, point, tmp_path)
                os._exit(0)
            except BaseException:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (point, status)
        monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "0")  # the crash is over: roll forward now
        reopened = limnos.open(path, catalog=url)
        assert _check_after(reopened, op, point) == LANDS[point], point
        reopened.close()
        monkeypatch.delenv("LIMNOS_ROLL_FORWARD_GRACE")


@pytest.mark.parametrize("op", ["create", "add", "set_metadata"])
def test_raised_at_each_crash_point(lake, tmp_path, op, monkeypatch):
    """An error at each point: the call raises and its commit never appears, not even after a reopen."""
    from limnos.core.commits import crash_points

    _prepare(lake, tmp_path)

    def fail(point: str) -> None:
        raise OSError(5, f"injected at {point}")

    for point in POINTS:
        crash_points.set(point, fail)
        try:
            with pytest.raises(OSError, match=f"injected at {point}"):
                _do(lake, op, point, tmp_path)
        finally:
            crash_points.clear()
        if point == "after_commit":  # COMMIT is done: the commit is durable, and the error is reported too
            assert _landed(lake, op, point)
            continue
        assert not _landed(lake, op, point)
        assert roll_forward(lake, grace=0).rolled_forward == []
        monkeypatch.setenv("LIMNOS_ROLL_FORWARD_GRACE", "0")
        assert not _check_after(lake, op, point)
        monkeypatch.delenv("LIMNOS_ROLL_FORWARD_GRACE")


def test_crash_points_cost_nothing_when_unset():
    from limnos.core.commits import crash_points

    assert crash_points.armed() == []
    with pytest.raises(ValueError, match="after_records"):
        crash_points.set("before_lunch", lambda point: None)


# ------------------------------------------- the checksum catches every small damage
def _sample_records() -> tuple[str, bytes]:
    from limnos.names import new_id

    cid = new_id()
    commit = Commit(id=cid, created_at=dt.datetime.now(dt.timezone.utc), kind="create")
    commit.files.append({"id": new_id(), "name": "raw/a.txt", "version": 3, "hash": "ab" * 32, "size": 12,
                         "run_id": None, "kind": "object", "uri": None})
    commit.metadata.append({"file_id": commit.files[0]["id"], "key": "k", "vtype": "int", "v_int": 5,
                            "v_float": None, "v_str": None, "deleted": False})
    return cid, commit.to_jsonl()


_SAMPLE = _sample_records()


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_flipped_byte_or_cut_is_refused(data):
    """A byte changed anywhere, or the file cut anywhere: RecordsDamaged, never another error or a wrong commit."""
    cid, good = _SAMPLE
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(good) - 1))
        bad = good[:cut]
    else:
        at = data.draw(st.integers(0, len(good) - 1))
        value = data.draw(st.integers(0, 255).filter(lambda v: v != good[at]))
        bad = good[:at] + bytes([value]) + good[at + 1 :]
    with pytest.raises(errors.RecordsDamaged):
        Commit.from_jsonl(bad, cid)


# ------------------------------------------------------- a lake whose store is a bucket
def test_records_checks_on_a_bucket(tmp_path, moto_s3, monkeypatch, caplog):
    """The same rules when the records live in S3: a failed commit leaves none, a bad one is quarantined there.

    (A lake one machine writes: a team lake applies only its shared log, see test_team_log.py.)
    """
    url, options = f"s3://{moto_s3.new_bucket()}/lake", moto_s3.options()
    lake = limnos.init(url, cache=str(tmp_path / "cache"), team=False, **options)
    good = make(lake, "good.txt", b"good")
    template = lake.store.read_record(commit_of(lake, good))
    with commits_failing(lake.catalog.engine), pytest.raises(errors.StoreFull, match="no space left"):
        make(lake, "failed.txt")
    assert lake.store.list_records() == [commit_of(lake, good)]
    cid, data = _crafted("huge size", template)
    lake.store.fs.pipe_file(f"{lake.store.root}/records/{cid}.jsonl", data)
    lake.close()
    with caplog.at_level(logging.WARNING, logger="limnos"):
        lake = limnos.open(url, cache=str(tmp_path / "cache"), **options)
    assert any(f"{cid}.jsonl" in r.getMessage() for r in caplog.records)
    assert lake.store.list_quarantined() == [cid]
    assert [f.name for f in lake.ls()] == ["good.txt"]
    report = lake.fsck(read_data=True)
    assert report.records_quarantined == [cid] and not report.records_damaged and not report.missing
    lake.store.fs.rm_file(f"{lake.store.root}/records/quarantine/{cid}.jsonl")  # the user dealt with it
    assert lake.fsck(read_data=True).ok
    lake.gc(dry_run=False, grace=dt.timedelta(0))
    assert lake.get("good.txt").read_bytes() == b"good"
    lake.close()
