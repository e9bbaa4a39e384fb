"""Datasources on real SQLite and PostgreSQL catalogs, folders and a real S3 server (rclone)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import limnos
from limnos.catalog import Commit
from limnos.cli.main import app
from limnos.errors import (
    DatasetNotFound,
    DatasourceNotFound,
    FileNotFound,
    InvalidName,
    LimnosError,
    MetadataError,
    PartialResultsWarning,
    SourceNotFound,
)
from limnos.names import new_id


def make_folder(root, n_images: int = 3, texts: dict | None = None):  # type: ignore[no-untyped-def]
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    for i in range(n_images):
        Image.new("RGB", (10 + i, 20), (i, 0, 0)).save(root / "img" / f"{i}.png")
    for name, text in (texts or {"notes.txt": "hello", "deep/er/data.csv": "a,b\n1,2\n"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def paths(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [dp.path for dp in result]


# ------------------------------------------------------------------ scanning
def test_scan_folder_automatic_fields_and_incremental_rescan(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("imgs", str(src), scan=True)
    assert ds.kind == "external" and ds.root == str(src)
    assert paths(ds.all()) == ["deep/er/data.csv", "img/0.png", "img/1.png", "img/2.png", "notes.txt"]
    assert ds.fields == {"path": "str", "size": "int", "content_type": "str", "height": "int", "modified": "datetime",
                         "width": "int"}
    png = ds[ds["path"] == "img/2.png"].all()[0]
    assert (png["width"], png["height"], png["content_type"]) == (12, 20, "image/png")
    assert png.size == os.path.getsize(src / "img/2.png")
    assert png["modified"] == dt.datetime.fromtimestamp(os.path.getmtime(src / "img/2.png"), dt.timezone.utc)
    notes = ds[ds["path"] == "notes.txt"].all()[0]
    assert notes["width"] is None and notes["content_type"] == "text/plain"
    assert Path(notes.local_path()).read_text() == "hello"  # a local folder's file is served where it is
    with ds.metadata_context() as ctx:
        ctx.update_metadata("notes.txt", {"label": "keep me"})
    before_change = dt.datetime.now(dt.timezone.utc)

    report = ds.scan()
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 5) and report.complete
    time.sleep(0.01)
    (src / "notes.txt").write_text("hello, longer")
    (src / "img/0.png").unlink()
    (src / "new.txt").write_text("new")
    report = ds.scan()
    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 1, 3)
    assert paths(ds.all()) == ["deep/er/data.csv", "img/1.png", "img/2.png", "new.txt", "notes.txt"]
    notes = ds[ds["path"] == "notes.txt"].all()[0]
    assert notes.size == len("hello, longer") and notes["label"] == "keep me"  # user fields follow the path
    old = ds.as_of(before_change)
    assert "img/0.png" in paths(old.all()) and "new.txt" not in paths(old.all())
    assert old[old["path"] == "notes.txt"].all()[0].size == len("hello")
    # the references are lake files too, readable through the File API
    assert lake.get(".datasources/imgs/new.txt").read_text() == "new"
    assert lake.get(".datasources/imgs/new.txt").kind == "reference"


def test_lake_prefix_datasource(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    lake.add(str(src), name="raw/set", metadata={"project": "yoda"})
    lake.add(str(make_folder(tmp_path / "other", 1)), name="elsewhere")
    ds = lake.datasource("set", "raw/set", scan=True)
    assert ds.kind == "lake" and ds.root == "raw/set/" and ds.source_prefix == "raw/set"
    assert paths(ds.all()) == ["deep/er/data.csv", "img/0.png", "img/1.png", "img/2.png", "notes.txt"]
    # the files' own lake metadata are read-only fields under lake.
    assert paths(ds[ds["lake.project"] == "yoda"].all()) == paths(ds.all())
    assert ds.all()[0]["lake.project"] == "yoda"
    dp = ds[ds["path"] == "img/1.png"].all()[0]
    assert dp["width"] == 11 and dp.file.name == "raw/set/img/1.png" and dp.hash == lake.get("raw/set/img/1.png").hash
    assert Image.open(dp.local_path()).size == (11, 20)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("img/1.png", {"label": "cat"})
    assert "label" not in lake.get("raw/set/img/1.png").metadata  # the datasource's fields are its own
    # a new version of a file: the rescan follows it and carries the user fields over
    Image.new("RGB", (40, 20)).save(src / "img/1.png")
    lake.add(str(src / "img/1.png"), name="raw/set/img/1.png")
    assert ds[ds["path"] == "img/1.png"].all()[0]["width"] == 11  # until the rescan
    report = ds.scan()
    assert report.changed == 1
    dp = ds[ds["path"] == "img/1.png"].all()[0]
    assert (dp["width"], dp["label"]) == (40, "cat") and dp.file.version == 2
    whole = lake.datasource("everything", "", scan=True)
    assert "elsewhere/img/0.png" in paths(whole.all())
    assert not any(p.startswith(".datasources/") for p in paths(whole.all()))


def test_roots_names_and_get_or_create(lake, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    ds = lake.datasource("rel", "./src", scan=False)
    assert ds.root == str(src)
    assert lake.datasource("rel").id == ds.id
    assert lake.datasource("rel", tmp_path / "src").id == ds.id
    with pytest.raises(LimnosError, match="exists over"):
        lake.datasource("rel", "raw/other")
    with pytest.raises(DatasourceNotFound, match="create it with"):
        lake.datasource("missing")
    with pytest.raises(LimnosError, match="not valid"):
        lake.datasource("bad/name", "raw")
    with pytest.raises(SourceNotFound):
        lake.datasource("nowhere", str(tmp_path / "absent"))
    with pytest.raises(LimnosError, match="credentials"):
        lake.datasource("creds", "s3://user:secret@bucket/x")
    with pytest.raises(LimnosError, match="holds datasources"):
        lake.datasource("refs", ".datasources/rel")
    assert [d.name for d in lake.datasources()] == ["rel"]


def test_background_scan_warns_partial_and_close_waits(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A query during a background scan warns and says partial; lake.close() waits for the scan to end.

    The scan is held after listing, before its first commit, until the test releases it, so
    neither claim depends on which thread wins a race.
    """
    from limnos.datasources import scan as scan_module
    from limnos.datasources import source as source_module

    held, release = threading.Event(), threading.Event()
    events: list[str] = []
    real_list, real_scan = scan_module.list_entries, source_module.run_scan

    def held_listing(*args):  # type: ignore[no-untyped-def]
        found = real_list(*args)
        held.set()
        assert release.wait(60), "the test never released the scan"
        return found

    def recorded_scan(*args):  # type: ignore[no-untyped-def]
        try:
            return real_scan(*args)
        finally:
            events.append("scan ended")

    monkeypatch.setattr(scan_module, "list_entries", held_listing)
    monkeypatch.setattr(source_module, "run_scan", recorded_scan)
    src = tmp_path / "many"
    src.mkdir()
    for i in range(300):
        (src / f"{i:03d}.txt").write_text(str(i))
    lake = limnos.init(str(tmp_path / "lake"))
    try:
        ds = lake.datasource("many", str(src))  # scans in the background
        assert held.wait(60) and ds.scanning
        with pytest.warns(PartialResultsWarning, match="still being scanned"):
            first = ds.all()
        assert first.partial and len(first) == 0  # nothing committed yet
        release.set()
        ds.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("error", PartialResultsWarning)
            done = ds.all()
        assert len(done) == 300 and not done.partial
        unscanned = lake.datasource("later", str(src), scan=False)
        with pytest.warns(PartialResultsWarning, match="still being scanned"):
            assert unscanned.all().partial

        held.clear()
        release.clear()
        events.clear()
        again = lake.datasource("again", str(src))
        assert held.wait(60)
        scan_thread = again._shared.thread
        closer = threading.Thread(target=lambda: (lake.close(), events.append("closed")))
        closer.start()
        assert again._shared.stop.wait(60)  # close() has begun: it asked the scan to stop
        closer.join(0.5)
        assert closer.is_alive(), "lake.close() returned while the background scan was still running"
        events.append("released")
        release.set()
        closer.join(60)
        assert not closer.is_alive() and not scan_thread.is_alive()
        assert events == ["released", "scan ended", "closed"]
    finally:
        release.set()
    lake = limnos.open(str(tmp_path / "lake"))
    assert {d.name for d in lake.datasources()} == {"many", "later", "again"}
    lake.close()


# ------------------------------------------------------------------ metadata
def test_metadata_context_is_one_commit_and_creates_unscanned_datapoints(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("m", str(src), scan=False)
    commits = len(lake.catalog.commit_ids())
    with ds.metadata_context() as ctx:
        ctx.update_metadata("img/0.png", {"episode": 5, "has_baby_yoda": True})
        ctx.update_metadata(["img/1.png", "notes.txt"], {"episode": 6})
    assert len(lake.catalog.commit_ids()) == commits + 1
    with pytest.warns(PartialResultsWarning):
        assert paths(ds[ds["episode"] >= 5].all()) == ["img/0.png", "img/1.png", "notes.txt"]
    with pytest.raises(FileNotFound, match="relative to the datasource's root"), ds.metadata_context() as ctx:
        ctx.update_metadata("img/0.png", {"episode": 9})
        ctx.update_metadata("img/missing.png", {"episode": 1})
    with pytest.raises(RuntimeError), ds.metadata_context() as ctx:
        ctx.update_metadata("img/0.png", {"episode": 10})
        raise RuntimeError("user code failed")
    assert len(lake.catalog.commit_ids()) == commits + 1  # neither block wrote anything
    with pytest.raises(MetadataError, match="built-in"), ds.metadata_context() as ctx:
        ctx.update_metadata("img/0.png", {"path": "x"})
    with pytest.raises(MetadataError, match="cannot store"), ds.metadata_context() as ctx:
        ctx.update_metadata("img/0.png", {"obj": object()})
    report = ds.scan()
    assert report.added == 2 and report.unchanged == 3  # the three datapoints made by metadata stay
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialResultsWarning)
        assert ds[ds["path"] == "img/0.png"].all()[0]["episode"] == 5


def test_dataframe_upload_types_from_dtypes(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("df", str(src), scan=True)
    frame = pd.DataFrame({
        "file": ["img/0.png", "img/1.png", "notes.txt"],
        "n": [1, 2, 3],
        "x": [0.5, float("nan"), 2.0],
        "ok": [True, False, True],
        "who": ["a", None, "c"],
        "when": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
        "raw": [b"\x00\x01", None, b"zz"],
        "nullable": pd.array([1, None, 3], dtype="Int64"),
    })
    assert ds.upload_metadata_from_dataframe(frame) == 3
    assert ds.fields["n"] == "int" and ds.fields["x"] == "float" and ds.fields["ok"] == "bool"
    assert ds.fields["who"] == "str" and ds.fields["when"] == "datetime" and ds.fields["raw"] == "blob"
    assert ds.fields["nullable"] == "int"
    one = ds[ds["path"] == "img/1.png"].all()[0]
    assert one["x"] is None and one["who"] is None and one["when"] is None and one["nullable"] is None
    assert one["n"] == 2 and one["ok"] is False
    first = ds[ds["when"] < dt.datetime(2024, 2, 1)].all()
    assert paths(first) == ["img/0.png"] and first[0]["when"] == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    # by position, and the path column elsewhere
    ds.upload_metadata_from_dataframe(pd.DataFrame({"score": [0.9], "p": ["notes.txt"]}), path_column=1)
    assert ds[ds["score"] > 0.5].all()[0].path == "notes.txt"
    # a float column holding whole numbers fits an int field (NaN made it float)
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": ["img/2.png", "notes.txt"], "n": [7.0, float("nan")]}))
    assert ds[ds["path"] == "img/2.png"].all()[0]["n"] == 7
    with pytest.raises(MetadataError, match="no column"):
        ds.upload_metadata_from_dataframe(frame, path_column="nope")
    polars_frame = ds.select("n", "who").all().to_polars()
    assert polars_frame.columns == ["path", "n", "who"] and polars_frame.height == 5


def test_blobs(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("b", str(src), scan=True)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("img/0.png", {"mask": b"mask-0", "thumb": b"t0"})
        ctx.update_metadata("img/1.png", {"mask": b"mask-1"})
    result = ds[ds["mask"].is_not_null()].all()
    assert [len(dp["mask"]) for dp in result] == [64, 64]  # the hash, until fetched
    assert result[0].get_blob("mask") == b"mask-0"
    assert Path(result[0]["mask"]).read_bytes() == b"mask-0"  # now the blob's local path
    frame = ds.all().get_blob_fields("mask", "thumb", load_into_memory=True).dataframe
    by_path = frame.set_index("path")
    assert by_path.loc["img/1.png", "mask"] == b"mask-1" and by_path.loc["img/0.png", "thumb"] == b"t0"
    assert pd.isna(by_path.loc["notes.txt", "mask"])
    with pytest.raises(limnos.SchemaError, match="cannot be compared"):
        ds[ds["mask"] == "x"].all()
    with pytest.raises(limnos.FieldNotFound, match="not a blob"):
        ds.all().get_blob_fields("width")


def test_delete_metadata_and_as_of(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("t", str(src), scan=True)
    with ds.metadata_context() as ctx:
        ctx.update_metadata(["img/0.png", "img/1.png"], {"label": "cat", "score": 1})
    t1 = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.01)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("img/1.png", {"label": "dog"})
    t2 = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.01)
    ds.delete_metadata(["img/0.png", "notes.txt"], ["label"])
    assert paths(ds[ds["label"] == "cat"].all()) == []
    assert paths(ds[ds["label"].is_null()].all()) == ["deep/er/data.csv", "img/0.png", "img/2.png", "notes.txt"]
    then = ds.as_of(t1)
    assert paths(then[then["label"] == "cat"].all()) == ["img/0.png", "img/1.png"]  # deleted, still visible before
    assert then[then["path"] == "img/0.png"].all()[0]["label"] == "cat"
    mid = ds.as_of(t2)
    assert {dp.path: dp["label"] for dp in mid[mid["label"].is_not_null()].all()} == {"img/0.png": "cat", "img/1.png": "dog"}
    assert ds[ds["path"] == "img/0.png"].all()[0]["score"] == 1  # only the named key went
    assert ds.as_of(dt.datetime(2000, 1, 1)).all().datapoints == []


# ----------------------------------------------------------------- downloads
def test_download_files(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    lake.add(str(src), name="raw/set")
    for ds, prefix in ((lake.datasource("ext", str(src), scan=True), "src"),
                       (lake.datasource("in", "raw/set", scan=True), "raw/set")):
        target = tmp_path / f"out-{ds.name}"
        report = ds.all().download_files(target)
        assert report.downloaded == 5 and report.skipped == 0
        assert (target / prefix / "img/1.png").read_bytes() == (src / "img/1.png").read_bytes()
        again = ds.all().download_files(target)
        assert again.downloaded == 0 and again.skipped == 5
        (target / prefix / "notes.txt").write_text("HELLO")  # same size, different bytes
        fixed = ds.all().download_files(target)
        if ds.kind == "lake":
            assert fixed.downloaded == 1  # lake files are checked by hash
            assert (target / prefix / "notes.txt").read_text() == "hello"
        assert ds.all().download_files(target, redownload=True).downloaded == 5
        flat = ds[ds["path"].startswith("img/")].all().download_files(tmp_path / f"flat-{ds.name}", keep_source_prefix=False)
        assert sorted(os.listdir(tmp_path / f"flat-{ds.name}" / "img")) == ["0.png", "1.png", "2.png"]
        assert flat.bytes == sum(os.path.getsize(src / "img" / n) for n in ("0.png", "1.png", "2.png"))


def test_download_refuses_paths_that_escape(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A records file (from a remote, say) naming a datapoint '../x' must not write outside target_dir."""
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("evil", str(src), scan=True)
    victim = ds[ds["path"] == "notes.txt"].all()[0]
    for bad in ("../escaped.txt", "a/../../escaped.txt", "/etc/escaped.txt"):
        commit = lake.new_commit("scan")
        commit.extra.append({"type": "datapoint", "id": new_id(), "datasource_id": ds.id, "path": bad,
                             "file_id": victim.file_id, "fingerprint": victim.fingerprint})
        commit.write()
        target = tmp_path / "out" / "inner"
        with pytest.raises(InvalidName, match="outside"):
            ds[ds["path"] == bad].all().download_files(target, keep_source_prefix=False)
        with pytest.raises(InvalidName, match="outside"):
            ds.all().download_files(target)
        assert not (tmp_path / "out" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
        assert not target.exists() or not any(target.rglob("*"))  # nothing at all was written
    os.makedirs(tmp_path / "sym")
    os.symlink(tmp_path / "elsewhere", tmp_path / "sym" / "src")
    with pytest.raises(InvalidName, match="outside"):
        ds[ds["path"] == "notes.txt"].all().download_files(tmp_path / "sym")


# ------------------------------------------------------------------ datasets
def test_saved_datasets_and_pinning(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("s", str(src), scan=True)
    with ds.metadata_context() as ctx:
        ctx.update_metadata(["img/0.png", "img/1.png"], {"episode": 6})
    view = ds[ds["episode"] > 5].select("episode").order_by("path", desc=True)
    view.save_dataset("late")
    view.save_dataset("late-pinned", pin=True)
    with pytest.raises(LimnosError, match="overwrite=True"):
        view.save_dataset("late")
    with ds.metadata_context() as ctx:
        ctx.update_metadata("img/2.png", {"episode": 9})
    live, pinned = lake.dataset("late"), lake.dataset("late-pinned")
    assert paths(live.all()) == ["img/2.png", "img/1.png", "img/0.png"]
    assert paths(pinned.all()) == ["img/1.png", "img/0.png"]
    assert list(live.all().dataframe.columns) == ["path", "episode"]
    assert live.dataset == "late" and pinned.query.as_of is not None
    listed = {d.name: d.to_dict() for d in lake.datasets()}
    assert listed["late"]["query"] == "episode > 5" and listed["late"]["as_of"] is None
    assert listed["late-pinned"]["as_of"] is not None
    with pytest.raises(DatasetNotFound, match="did you mean 'late'"):
        lake.dataset("lat")
    lake.datasets()[0].delete()
    assert [d.name for d in lake.datasets()] == ["late-pinned"]


def test_delete_source(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    ds = lake.datasource("gone", str(src), scan=True)
    ds[ds["content_type"] == "image/png"].save_dataset("pngs")
    ds.delete_source()
    assert lake.datasources() == [] and lake.datasets() == []
    with pytest.raises(DatasourceNotFound):
        lake.datasource("gone")
    assert not any(f.name.startswith(".datasources/gone/") for f in lake.ls())
    again = lake.datasource("gone", str(src), scan=True)  # the name is free again
    assert len(again.all()) == 5


# ------------------------------------------------------------------- reindex
def _snapshot(lake) -> dict:  # type: ignore[no-untyped-def]
    out = {}
    for ds in lake.datasources():
        out[ds.name] = (ds.id, ds.root, ds.kind, ds.fields, [(dp.path, dp.file_id, dp.metadata) for dp in ds.all()])
    out["datasets"] = sorted((d.name, d.datasource, json.dumps(d.query, sort_keys=True), d.as_of) for d in lake.datasets())
    return out


def test_reindex_restores_datasources_and_datasets(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    lake.add(str(src), name="raw")
    ext = lake.datasource("ext", str(src), scan=True)
    inner = lake.datasource("inner", "raw", scan=True)
    with ext.metadata_context() as ctx:
        ctx.update_metadata("img/0.png", {"label": "cat", "blob": b"\x00"})
    inner.upload_metadata_from_dataframe(pd.DataFrame({"p": ["notes.txt"], "q": [1.5]}))
    t1 = dt.datetime.now(dt.timezone.utc)
    ext.delete_metadata("img/0.png", "label")
    (src / "notes.txt").write_text("changed!")
    ext.scan()
    ext[ext["content_type"] == "image/png"].save_dataset("pngs")
    ext.as_of(t1).save_dataset("old")
    lake.datasource("doomed", str(src), scan=True).delete_source()
    before = _snapshot(lake)
    old_view = lake.dataset("old")
    old = [(dp.path, dp.metadata) for dp in old_view[old_view["label"] == "cat"].all()]
    assert old and old[0][1]["label"] == "cat"
    report = lake.reindex(force=True)
    assert report.rolled_forward
    assert _snapshot(lake) == before
    old_view = lake.dataset("old")
    assert [(dp.path, dp.metadata) for dp in old_view[old_view["label"] == "cat"].all()] == old


def test_migration_from_v2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from limnos.catalog import migrations

    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("a.txt") as w:
        w.write_text("one")
    with lake.catalog.engine.begin() as conn:
        for table in ("datasets", "datasource_fields", "datapoints", "datasources"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql("DELETE FROM limnos_schema_version WHERE version > 2")
    lake.close()
    lake = limnos.open(lake.path)
    with lake.catalog.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST >= 3
    src = make_folder(tmp_path / "src")
    assert len(lake.datasource("d", str(src), scan=True).all()) == 5
    lake.close()


# ------------------------------------------------------------------------ S3
def test_external_s3_root(rclone_s3, tmp_path, catalog_url) -> None:  # type: ignore[no-untyped-def]
    import s3fs

    bucket = rclone_s3.new_bucket()
    fs = s3fs.S3FileSystem(**rclone_s3.options(), skip_instance_cache=True)
    local = make_folder(tmp_path / "src")
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"{bucket}/data/{path.relative_to(local).as_posix()}")
    lake = limnos.init(str(tmp_path / "lake"), catalog=catalog_url)
    ds = lake.datasource("bucket", f"s3://{bucket}/data", storage_options=rclone_s3.options(), scan=True)
    assert paths(ds.all()) == ["deep/er/data.csv", "img/0.png", "img/1.png", "img/2.png", "notes.txt"]
    png = ds[ds["path"] == "img/2.png"].all()[0]
    assert (png["width"], png["height"]) == (12, 20) and png.uri == f"s3://{bucket}/data/img/2.png"
    assert Path(png.local_path()).read_bytes() == (local / "img/2.png").read_bytes()  # downloaded, size-checked
    assert lake.get(".datasources/bucket/notes.txt").read_text() == "hello"
    with ds.metadata_context() as ctx:
        ctx.update_metadata("img/2.png", {"label": "owl"})
    report = ds[ds["label"] == "owl"].all().download_files(tmp_path / "out")
    assert report.downloaded == 1 and (tmp_path / "out/data/img/2.png").read_bytes() == (local / "img/2.png").read_bytes()
    fs.pipe_file(f"{bucket}/data/img/3.txt", b"three")
    fs.rm_file(f"{bucket}/data/notes.txt")
    scan = ds.scan()
    assert (scan.added, scan.removed, scan.unchanged) == (1, 1, 4)
    assert "img/3.txt" in paths(ds.all()) and "notes.txt" not in paths(ds.all())
    secrets = Path(lake.state_dir, "datasources.yaml").read_text()
    assert rclone_s3.secret in secrets and oct(os.stat(os.path.join(lake.state_dir, "datasources.yaml")).st_mode)[-3:] == "600"
    for name in os.listdir(os.path.join(lake.path, "records")):
        assert rclone_s3.secret not in Path(lake.path, "records", name).read_text()
    lake.close()


# ----------------------------------------------------------------------- CLI
def cli(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, f"{args}: {result.stderr}\n{result.stdout}"
    return result


def test_cli(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    lake_dir = tmp_path / "lk"
    limnos.init(str(lake_dir)).close()
    monkeypatch.setenv("LIMNOS_LAKE", str(lake_dir))
    cli("ds", "create", "yoda", str(src))
    cli("ds", "meta", "yoda", "img/0.png", "episode=6", "has_yoda=true")
    cli("ds", "meta", "yoda", "img/1.png", "episode=3", "has_yoda=true")
    rows = json.loads(cli("ds", "query", "yoda", "episode > 5 and has_yoda == true", "--json").stdout)
    assert [r["path"] for r in rows] == ["img/0.png"] and rows[0]["episode"] == 6
    rows = json.loads(cli("ds", "query", "yoda", "--select", "episode", "--order-by", "episode", "--desc", "--json").stdout)
    assert [r["path"] for r in rows][:2] == ["img/0.png", "img/1.png"] and set(rows[0]) == {"path", "episode"}
    assert cli("ds", "query", "yoda", "episode is null", "--count").stdout.strip() == "3"
    assert "img/1.png" in cli("ds", "query", "yoda", "has_yoda == true").stdout
    bad = cli("ds", "query", "yoda", "episode >", ok=False)
    assert bad.exit_code == 1 and "expected a value" in bad.stderr and "Traceback" not in bad.stderr
    assert "did you mean 'episode'" in cli("ds", "query", "yoda", "episod > 1", ok=False).stderr
    listed = json.loads(cli("ds", "list", "--json").stdout)
    assert listed[0]["name"] == "yoda" and listed[0]["datapoints"] == 5 and listed[0]["fields"]["episode"] == "int"
    (src / "more.txt").write_text("x")
    assert json.loads(cli("ds", "scan", "yoda", "--json").stdout)["added"] == 1
    cli("ds", "save-dataset", "yoda", "late", "episode > 5", "--pin")
    sets = json.loads(cli("datasets", "--json").stdout)
    assert sets[0]["name"] == "late" and sets[0]["query"] == "episode > 5" and sets[0]["as_of"]
    report = json.loads(cli("ds", "download", "yoda", "has_yoda == true", "--target", str(tmp_path / "dl"), "--json").stdout)
    assert report["downloaded"] == 2 and (tmp_path / "dl/src/img/0.png").exists()
    assert cli("ds", "delete", "yoda", ok=False).exit_code == 1
    cli("ds", "delete", "yoda", "--yes")
    assert json.loads(cli("ds", "list", "--json").stdout) == []
    for command in ("ds", "ds create", "ds list", "ds scan", "ds query", "ds meta", "ds download", "ds save-dataset",
                    "ds delete", "datasets"):
        text = cli(*command.split(), "--help").stdout
        assert re.search(r"^Examples?:\n  limnos ", text, re.MULTILINE), command


def test_records_carry_no_storage_options(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = make_folder(tmp_path / "src")
    lake.datasource("opts", str(src), storage_options={"token": "very-secret-token"}, scan=True)
    for cid in lake.store.list_records():
        data = lake.store.read_record(cid)
        assert b"very-secret-token" not in data
        Commit.from_jsonl(data)
