"""The store describes itself: reindex and roll-forward rebuild the catalog from records."""

from __future__ import annotations

import datetime as dt
import os

import pytest

import limnos
from limnos.core.recovery import roll_forward
from limnos.errors import CatalogVersionError, LimnosError


def snapshot(lake: limnos.Lake) -> dict:
    out = {}
    for latest in lake.ls():
        for f in lake.history(latest.name):
            out[f"{f.name}@{f.version}"] = (f.id, f.hash, f.size, f.metadata, [i.id for i in f.inputs], f.run_id)
    return out


def build(lake: limnos.Lake, tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.txt").write_text(str(i))
    lake.add(str(src), name="raw", metadata={"batch": 1})
    for v in range(3):
        with lake.create("model.bin", metadata={"epoch": v, "when": dt.datetime(2024, 1, v + 1)}) as w:
            lake.get("raw/1.txt").read_text()
            w.write_bytes(bytes([v]) * 10)
    lake.set_metadata("raw/2.txt", {"label": "cat", "tags": ["a", "b"]})
    lake.unset_metadata("raw/2.txt", ["batch"])


def test_reindex_after_catalog_deleted(tmp_path):
    lake = limnos.init(str(tmp_path / "lake"))
    build(lake, tmp_path)
    before = snapshot(lake)
    assert len(before) == 8
    lake.close()
    os.unlink(os.path.join(lake.path, "catalog.sqlite"))
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        if os.path.exists(os.path.join(lake.path, extra)):
            os.unlink(os.path.join(lake.path, extra))
    lake = limnos.open(lake.path)  # an empty catalog: opening rolls every commit forward
    assert snapshot(lake) == before
    report = lake.reindex(force=True)
    assert report.files == 8
    assert snapshot(lake) == before
    # as_of history survives too: the unset key is readable before its deletion
    f = lake.get("raw/2.txt")
    past = lake.catalog.metadata_of([f.id], as_of=lake.history("model.bin")[0].created_at)[f.id]
    assert past == {"batch": 1}


def test_reindex_postgres(tmp_path, pg_database):
    lake = limnos.init(str(tmp_path / "lake"), catalog=pg_database)
    build(lake, tmp_path)
    before = snapshot(lake)
    with pytest.raises(LimnosError, match=r"reindex\(force=True\)"):
        lake.reindex()
    lake.catalog.wipe()
    assert lake.ls() == []
    lake.reindex()
    assert snapshot(lake) == before
    lake.close()


def test_crash_between_records_and_catalog_rolls_forward(lake, tmp_path):
    """Simulate a kill after the records file is written but before COMMIT."""
    from limnos.core.commits import SimulatedCrash

    class Killed(SimulatedCrash):  # a crash, which the commit path leaves for roll-forward (an error it would undo)
        pass

    original = lake.store.write_record

    def write_then_die(commit_id, data):
        original(commit_id, data)
        raise Killed()

    lake.store.write_record = write_then_die
    with pytest.raises(Killed), lake.create("crash.txt", metadata={"k": 1}) as w:
        w.write_text("survives")
    lake.store.write_record = original
    assert lake.ls() == []  # the transaction rolled back
    assert lake.fsck().notes == []  # too young to be judged yet
    report = roll_forward(lake, grace=0)
    assert len(report.rolled_forward) == 1
    f = lake.get("crash.txt")
    assert f.read_text() == "survives" and f.metadata == {"k": 1}
    assert roll_forward(lake, grace=0).rolled_forward == []  # idempotent


def test_records_conflict_is_renumbered(sqlite_lake, tmp_path):
    """Two offline writers of version 1 of a name: the second is numbered after, nothing lost."""
    other = limnos.init(str(tmp_path / "other"))
    with other.create("x.txt") as w:
        w.write_text("theirs")
    with sqlite_lake.create("x.txt") as w:
        w.write_text("ours")
    theirs = other.store.list_records()[0]
    digest = other.get("x.txt").hash
    sqlite_lake.store.put_file(other.store.path(digest), digest)
    sqlite_lake.store.write_record(theirs, other.store.read_record(theirs))
    report = roll_forward(sqlite_lake, grace=0)
    assert report.renumbered == ["x.txt@2 was x.txt@1 in its records"]
    assert [f.read_text() for f in sqlite_lake.history("x.txt")] == ["ours", "theirs"]
    assert [f.version for f in sqlite_lake.history("x.txt")] == [1, 2]
    assert sqlite_lake.get("x.txt@1").hash != sqlite_lake.get("x.txt@2").hash


def test_newer_catalog_is_refused(sqlite_lake):
    from limnos.catalog import schema

    with sqlite_lake.catalog.engine.begin() as conn:
        now = dt.datetime.now(dt.timezone.utc)
        conn.execute(schema.schema_version.insert().values(version=999, applied_at=now, limnos_version="9.9"))
    sqlite_lake.close()
    with pytest.raises(CatalogVersionError, match="upgrade limnos"):
        limnos.open(sqlite_lake.path)


def test_fsck_and_gc(sqlite_lake, tmp_path):
    lake = sqlite_lake
    with lake.create("keep.txt") as w:
        w.write_text("keep")
    orphan_src = tmp_path / "orphan.bin"
    orphan_src.write_bytes(b"orphan")
    digest, _, _ = lake.store.ingest(str(orphan_src))
    report = lake.fsck(read_data=True)
    assert report.ok and report.orphans == [digest]
    # young orphans survive gc: a writer may be about to commit them
    assert lake.gc(dry_run=False).deleted == []
    assert lake.store.has(digest)
    dry = lake.gc(dry_run=True, grace=dt.timedelta(0))
    assert dry.deleted == [digest] and lake.store.has(digest)
    done = lake.gc(dry_run=False, grace=dt.timedelta(0))
    assert done.deleted == [digest] and not lake.store.has(digest)
    assert lake.get("keep.txt").read_text() == "keep"


def test_fsck_finds_corrupt_and_missing(sqlite_lake):
    lake = sqlite_lake
    with lake.create("a.txt") as w:
        w.write_text("aaaa")
    with lake.create("b.txt") as w:
        w.write_text("bbbb")
    a, b = lake.get("a.txt"), lake.get("b.txt")
    path = a.local_path()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:  # root ignores read-only bits: simulate an in-place edit
        f.write(b"AAAA")
    os.unlink(b.local_path())
    report = lake.fsck(read_data=True)
    assert not report.ok
    assert report.corrupt == [a.hash] and report.missing == [b.hash]
    with pytest.raises(limnos.GcRefused):
        lake.gc(dry_run=False, grace=dt.timedelta(0))


def test_migration_from_v1(tmp_path):
    """A catalog made by schema v1 (no names.current, no v2 tables) is upgraded on open."""
    import sqlalchemy as sa

    from limnos.catalog import migrations

    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("a.txt") as w:
        w.write_text("one")
    with lake.create("a.txt") as w:
        w.write_text("two")
    engine = lake.catalog.engine
    with engine.begin() as conn:
        for table in ("step_outputs", "steps", "locks", "tombstones"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("ALTER TABLE names DROP COLUMN current")
        conn.exec_driver_sql("DROP TABLE log_refused")
        conn.exec_driver_sql("DROP INDEX ix_commits_seq")
        conn.exec_driver_sql("ALTER TABLE commits DROP COLUMN seq")
        conn.exec_driver_sql("DELETE FROM limnos_schema_version WHERE version > 1")
    lake.close()
    lake = limnos.open(lake.path)
    with lake.catalog.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST == 5
        assert sa.inspect(conn).has_table("steps") and sa.inspect(conn).has_table("log_refused")
        assert "seq" in {c["name"] for c in sa.inspect(conn).get_columns("commits")}
    assert lake.get("a.txt").read_text() == "two"
    assert [f.version for f in lake.ls()] == [2]
