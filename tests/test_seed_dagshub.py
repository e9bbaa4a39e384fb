"""DagsHub Data Engine (seed 004): its README's examples, run against limnos.

Each test quotes the seed's example it runs; names differ only where limnos's
do (``datasources.get_or_create(repo, name, path)`` is ``lake.datasource(name,
path)``, ``datasets.get_dataset(repo, name)`` is ``lake.dataset(name)``). The
same examples are on docs/migrating/dagshub.md. Runs on SQLite and PostgreSQL
(the ``lake`` fixture), except where a test builds an old SQLite catalog.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import limnos
from limnos.catalog import migrations
from limnos.catalog.records import seal
from limnos.errors import (
    DatasetNotFound,
    DatasourceNotFound,
    FieldNotFound,
    LimnosError,
    MetadataError,
    MissingExtra,
    RecordsInvalid,
    SchemaError,
)


def make_images(root: Path, names: tuple[str, ...] = ("005.jpg", "006.jpg", "007.jpg", "008.jpg")) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (8 + i, 6), (i * 40, 0, 0)).save(root / "images" / name)
    return root


def paths(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [dp.path for dp in result]


def yoda(lake: limnos.Lake, tmp_path: Path) -> limnos.Datasource:
    """The README's datasource with its metadata: episodes 5, 5, 5 and 0; baby yoda on the first three."""
    make_images(tmp_path / "data")
    ds = lake.datasource("path-ds", str(tmp_path / "data"), scan=True)
    with ds.metadata_context() as ctx:
        metadata = {"episode": 5, "has_baby_yoda": True}
        ctx.update_metadata("images/005.jpg", metadata)
        ctx.update_metadata(["images/006.jpg", "images/007.jpg"], metadata)
        ctx.update_metadata("images/008.jpg", {"episode": 0, "has_baby_yoda": False})
    return ds


def metadata_rows(lake: limnos.Lake) -> int:
    import sqlalchemy as sa

    from limnos.catalog import schema

    with lake.catalog.engine.connect() as conn:
        return sum(int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)
                   for t in (schema.ds_values_log, schema.metadata_log))


# -------------------------------------------------------- creating / getting
def test_creating_and_getting(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # ds = datasources.get_or_create(repo, "bucket-ds", "s3://data-bucket/prefix")  /  (repo, "path-ds", "path/to/dir")
    make_images(tmp_path / "bucket")
    lake.add(str(make_images(tmp_path / "repo")), name="path/to/dir")
    bucket = lake.datasource("bucket-ds", str(tmp_path / "bucket"), scan=True)
    path_ds = lake.datasource("path-ds", "path/to/dir", scan=True)
    assert len(bucket.all()) == len(path_ds.all()) == 4
    # ds_list = datasources.get_datasources(repo)
    assert [d.name for d in lake.datasources()] == ["bucket-ds", "path-ds"]
    # ds = datasources.get_datasource(repo, name="bucket-ds")  -- "Can accept either name argument, or id argument"
    assert lake.datasource(name="bucket-ds").id == bucket.id
    assert lake.datasource(id=bucket.id).name == "bucket-ds"
    assert lake.datasource(name="bucket-ds", id=bucket.id).root == bucket.root
    with pytest.raises(DatasourceNotFound):
        lake.datasource(id="01J0000000000000000000000X")
    with pytest.raises(LimnosError, match="is named 'bucket-ds'"):
        lake.datasource(name="path-ds", id=bucket.id)


def test_two_datasources_over_one_prefix_keep_their_metadata_apart(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # "These different datasources will not be related to each other, each one will start clean and have a
    #  separate metadata table from all the other datasources, whether they point at the same bucket/path or not."
    lake.add(str(make_images(tmp_path / "src")), name="data", metadata={"ticket": "abc-1"})
    one = lake.datasource("one", "data", scan=True)
    two = lake.datasource("two", "data", scan=True)
    with one.metadata_context() as ctx:
        ctx.update_metadata("images/005.jpg", {"label": "cat"})
    assert one.all()[0]["label"] == "cat"
    assert "label" not in two.fields and "label" not in two.all()[0].metadata
    with pytest.raises(FieldNotFound):
        two["label"]
    # Field types are fixed per datasource: "label" is a str in one, an int in two.
    with two.metadata_context() as ctx:
        ctx.update_metadata("images/005.jpg", {"label": 7})
    assert (one.fields["label"], two.fields["label"]) == ("str", "int")
    assert paths(two[two["label"] == 7].all()) == ["images/005.jpg"]
    # ...and a lake-wide key of the same name is a third thing, untouched by both.
    assert "label" not in lake.get("data/images/005.jpg").metadata
    # "you can't push mismatched data types to an existing field": refused, nothing written
    before = metadata_rows(lake)
    with pytest.raises(SchemaError), one.metadata_context() as ctx:
        ctx.update_metadata("images/006.jpg", {"label": 3})
    assert metadata_rows(lake) == before and one.fields["label"] == "str"


def test_lake_metadata_is_read_only_under_lake_prefix(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lake.add(str(make_images(tmp_path / "src")), name="data", metadata={"ticket": "abc-1"})
    lake.set_metadata("data/images/008.jpg", {"ticket": "xyz-2"})
    ds = lake.datasource("d", "data", scan=True)
    assert paths(ds[ds["lake.ticket"] == "abc-1"].all()) == ["images/005.jpg", "images/006.jpg", "images/007.jpg"]
    assert ds.all()[3]["lake.ticket"] == "xyz-2"
    assert list(ds.select("lake.ticket").all().dataframe.columns) == ["path", "lake.ticket"]
    assert ds.order_by("lake.ticket", desc=True).all()[0].path == "images/008.jpg"
    with pytest.raises(FieldNotFound, match=r"read-only field 'lake\.ticket'"):
        ds["ticket"]
    before = metadata_rows(lake)
    with pytest.raises(MetadataError, match="read-only"), ds.metadata_context() as ctx:
        ctx.update_metadata("images/005.jpg", {"lake.ticket": "no"})
    assert metadata_rows(lake) == before
    assert lake.get("data/images/005.jpg").metadata["ticket"] == "abc-1"


# ---------------------------------------------------------------- metadata
def test_adding_metadata_types_and_dataframe(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = yoda(lake, tmp_path)
    # "Int, Float, Boolean, String, Blobs (need to be of type bytes)"
    with ds.metadata_context() as ctx:
        ctx.update_metadata("images/005.jpg", {"score": 0.5, "caption": "baby yoda", "mask": b"\x00\x01"})
    dp = ds[ds["path"] == "images/005.jpg"].all()[0]
    assert (dp["episode"], dp["has_baby_yoda"], dp["score"], dp["caption"]) == (5, True, 0.5, "baby yoda")
    assert ds.fields["mask"] == "blob"
    # ds.upload_metadata_from_dataframe(df, path_column="path")
    columns = ["path", "squirrel_detected"]
    data = [["images/005.jpg", True], ["images/006.jpg", False]]
    df = pd.DataFrame(data, columns=columns)
    assert ds.upload_metadata_from_dataframe(df, path_column="path") == 2
    assert ds[ds["squirrel_detected"] == True].all()[0].path == "images/005.jpg"  # noqa: E712 - the seed's syntax


# ---------------------------------------------------------------- getting data
def test_getting_data_blobs_and_downloads(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = yoda(lake, tmp_path)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("images/005.jpg", {"binary_1": b"one", "binary_2": b"two"})
    head = ds.head(100)
    all_ = ds.all()
    assert len(head) == len(all_) == 4
    df = ds.head().dataframe
    assert list(df["path"]) == ["images/005.jpg", "images/006.jpg", "images/007.jpg", "images/008.jpg"]
    # for datapoint in ds.all(): blob_bytes = datapoint.get_blob('blob-field-name')
    blobs = [dp.get_blob("binary_1") for dp in ds[ds["binary_1"].is_not_null()].all()]
    assert blobs == [b"one"]
    # df = ds.all().get_blob_fields("binary_1", "binary_2", load_into_memory=True).dataframe
    df = ds[ds["binary_1"].is_not_null()].all().get_blob_fields("binary_1", "binary_2", load_into_memory=True).dataframe
    assert (df["binary_1"][0], df["binary_2"][0]) == (b"one", b"two")
    # qr = ds.all(); qr.download_files(target_dir=...)
    report = ds.all().download_files(target_dir=tmp_path / "out")
    assert report.downloaded == 4
    assert (tmp_path / "out" / "data" / "images" / "005.jpg").read_bytes() == (tmp_path / "data/images/005.jpg").read_bytes()


# ------------------------------------------------------------------- querying
def test_querying(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = yoda(lake, tmp_path)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("images/005.jpg", {"episode": 6})
        ctx.update_metadata("images/006.jpg", {"caption": "aaa bbb"})
    q1 = ds["episode"] > 5
    q2 = (ds["episode"] == 0) & (ds["has_baby_yoda"] == True)  # noqa: E712 - the seed's example
    df = ds[q1 | q2].all().dataframe
    assert list(df["path"]) == ["images/005.jpg"]
    q2 = (ds["episode"] == 0) & (ds["has_baby_yoda"] == False)  # noqa: E712
    assert list(ds[q1 | q2].all().dataframe["path"]) == ["images/005.jpg", "images/008.jpg"]
    # ==, !=, >, >=, <, <=, .contains(), .is_null(), is_not_null(), and ~
    assert paths(ds[ds["episode"] != 5].all()) == ["images/005.jpg", "images/008.jpg"]
    assert paths(ds[ds["episode"] >= 5].all()) == ["images/005.jpg", "images/006.jpg", "images/007.jpg"]
    assert paths(ds[ds["episode"] <= 0].all()) == paths(ds[ds["episode"] < 1].all()) == ["images/008.jpg"]
    assert paths(ds[ds["caption"].contains("aaa")].all()) == ["images/006.jpg"]
    assert paths(ds[ds["caption"].is_not_null()].all()) == ["images/006.jpg"]
    assert len(ds[ds["caption"].is_null()].all()) == 3
    assert paths(ds[~(ds["episode"] == 5)].all()) == ["images/005.jpg", "images/008.jpg"]
    # ds2 = ds[ds["episode"] > 5]; ds3 = ds2[ds2["has_baby_yoda"] == True]  is the same as one query with &
    ds2 = ds[ds["episode"] >= 5]
    ds3 = ds2[ds2["has_baby_yoda"] == True]  # noqa: E712
    both = ds[(ds["episode"] >= 5) & (ds["has_baby_yoda"] == True)]  # noqa: E712
    assert paths(ds3.all()) == paths(both.all()) == ["images/005.jpg", "images/006.jpg", "images/007.jpg"]


def test_saving_queries_and_deleting(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = yoda(lake, tmp_path)
    ds[ds["episode"] == 0].save_dataset("my-cool-dataset")
    # ds = datasets.get_dataset("user/repo", "my-cool-dataset")
    back = lake.dataset("my-cool-dataset")
    assert paths(back.all()) == ["images/008.jpg"]
    # ds.delete_source()
    ds.delete_source()
    assert lake.datasources() == []
    with pytest.raises(DatasetNotFound):
        lake.dataset("my-cool-dataset")


# -------------------------------------------------------- datasets, dataloaders
def test_ml_datasets_and_dataloaders(lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    query_result = yoda(lake, tmp_path).all()
    # dataset_tr = query_result.as_ml_dataset(flavor='torch', strategy='background', processes=9000)
    dataset_tr = query_result.as_ml_dataset(flavor="torch", strategy="background", processes=9000)
    assert dataset_tr._jobs == 9000 and len(dataset_tr) == 4
    # dataloader = query_result.as_ml_dataloader('torch', tensorizers='auto')
    dataloader = query_result.as_ml_dataloader("torch", tensorizers="auto", metadata_columns=["episode"], processes=2)
    for X, y in dataloader:  # the seed's names
        assert X.shape == (1, 3, 6, 8) and y.tolist() == [5]
        break
    # dataloader = query_result.as_ml_dataloader(dataset_tr, tensorizers='image')
    dataloader = query_result.as_ml_dataloader(dataset_tr, tensorizers="image")
    assert [tuple(x.shape) for (x,) in dataloader] == [(1, 3, 6, 8), (1, 3, 6, 9), (1, 3, 6, 10), (1, 3, 6, 11)]
    dataset_tr.close()
    with pytest.raises(LimnosError, match="disagree"):
        query_result.as_ml_dataloader("torch", processes=2, jobs=3)
    # the TensorFlow flavor is DagsHub's too (tests/test_ml_exports.py tests it in full); an identity
    # tensorizer hands TensorFlow an open file, which it cannot make a tensor of: said at once, by column
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        with pytest.raises(MissingExtra, match=r"limnos\[tensorflow\]"):
            query_result.as_ml_dataloader("tensorflow", tensorizers=[lambda x: x])
    else:
        with pytest.raises(LimnosError, match="tensorizer of column 'file' gave a BufferedReader"):
            query_result.as_ml_dataloader("tensorflow", tensorizers=[lambda x: x])
        batches = list(query_result.as_ml_dataloader("tensorflow", tensorizers="image", batch_size=1))
        assert [tuple(x.shape) for x in batches] == [(1, 6, 8, 3), (1, 6, 9, 3), (1, 6, 10, 3), (1, 6, 11, 3)]


# ----------------------------------------------------------------- debugging
def test_debug_logging_shows_each_query(lake, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    ds = yoda(lake, tmp_path)
    # import logging; logging.basicConfig(level=logging.DEBUG)  -- "we can see the executing queries"
    with caplog.at_level(logging.DEBUG, logger="limnos"):
        ds[ds["episode"] > 4].all()
    statements = [r.getMessage() for r in caplog.records if r.name == "limnos.sql"]
    assert any("FROM (SELECT datapoints.id AS dp_id" in s and "ds_values" in s for s in statements)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="limnos"):
        ds.all()
    assert not [r for r in caplog.records if r.name == "limnos.sql"]


def test_limnos_debug_env_prints_sql(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = Path(__file__).resolve().parents[1] / "src"
    code = ("import limnos, sys; lake = limnos.init(sys.argv[1]); lake.ls()")
    env = dict(os.environ, LIMNOS_DEBUG="1", PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lake")], env=env, capture_output=True, text=True,
                         check=True)
    assert "limnos.sql: SELECT files.id" in out.stderr
    env["LIMNOS_DEBUG"] = "0"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lake2")], env=env, capture_output=True, text=True,
                         check=True)
    assert "limnos.sql" not in out.stderr


# ---------------------------------------------------------------- migration
def _downgrade_to_v3_fields(lake: limnos.Lake, version: int) -> None:
    """Turn a v5 catalog into what v3/v4 held: datasource values as file metadata, fields without a type."""
    with lake.catalog.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO metadata_log (file_id, key, type, v_int, v_float, v_str, set_at, deleted, commit_id) "
            "SELECT file_id, key, type, v_int, v_float, v_str, set_at, deleted, commit_id FROM ds_values_log ORDER BY seq")
        conn.exec_driver_sql(
            "INSERT INTO metadata (file_id, key, type, v_int, v_float, v_str, set_at) "
            "SELECT file_id, key, type, v_int, v_float, v_str, set_at FROM ds_values")
        conn.exec_driver_sql("INSERT INTO metadata_schema (key, type) SELECT DISTINCT key, type FROM datasource_fields")
        conn.exec_driver_sql("DROP TABLE ds_values")
        conn.exec_driver_sql("DROP TABLE ds_values_log")
        conn.exec_driver_sql("ALTER TABLE datasource_fields DROP COLUMN type")
        if version < 4:
            conn.exec_driver_sql("DROP TABLE log_refused")
            conn.exec_driver_sql("DROP INDEX ix_commits_seq")
            conn.exec_driver_sql("ALTER TABLE commits DROP COLUMN seq")
        conn.exec_driver_sql(f"DELETE FROM limnos_schema_version WHERE version > {version}")


@pytest.mark.parametrize("version", [3, 4])
def test_migrating_a_catalog_with_datasources(tmp_path, version) -> None:  # type: ignore[no-untyped-def]
    lake = limnos.init(str(tmp_path / "lake"))
    ds = yoda(lake, tmp_path)
    before = [(dp.path, dp.metadata) for dp in ds.all()]
    ds_id = ds.id
    _downgrade_to_v3_fields(lake, version)
    lake.close()
    lake = limnos.open(str(tmp_path / "lake"))
    with lake.catalog.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST == 5
    ds = lake.datasource(id=ds_id)
    assert [(dp.path, dp.metadata) for dp in ds.all()] == before
    assert ds.fields["episode"] == "int" and paths(ds[ds["episode"] == 0].all()) == ["images/008.jpg"]
    # after the migration the datasource's fields are its own
    other = lake.datasource("other", str(tmp_path / "data"), scan=True)
    with other.metadata_context() as ctx:
        ctx.update_metadata("images/005.jpg", {"episode": "five"})
    assert ds.all()[0]["episode"] == 5 and other.all()[0]["episode"] == "five"
    lake.close()


def _as_v4_records(lake: limnos.Lake) -> None:
    """Rewrite every records file as limnos wrote it before schema v5 (values as "meta" rows, untyped fields)."""
    records = Path(lake.path) / "records"
    for path in records.glob("*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()][:-1]  # the checksum line goes
        out = []
        for row in rows:
            if row["type"] == "ds_value":
                out.append({k: v for k, v in row.items() if k != "datasource_id"} | {"type": "meta"})
            elif row["type"] == "datasource_field":
                out.append({k: v for k, v in row.items() if k != "vtype"})
            else:
                out.append(row)
        body = "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n" for r in out).encode()
        path.write_bytes(seal(body))


def test_records_written_before_v5_replay(sqlite_lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lake = sqlite_lake
    ds = yoda(lake, tmp_path)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("images/006.jpg", {"episode": 4})  # a later change of an existing field
    before = [(dp.path, dp.metadata) for dp in ds.all()]
    _as_v4_records(lake)
    lake.reindex(force=True)
    ds = lake.datasource("path-ds")
    assert [(dp.path, dp.metadata) for dp in ds.all()] == before
    assert ds.fields["episode"] == "int"


def test_hostile_datasource_rows_are_refused(sqlite_lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from limnos.catalog.records import Commit
    from limnos.catalog.validate import unresolved

    lake = sqlite_lake
    ds = yoda(lake, tmp_path)
    commit = lake.new_commit("metadata").commit
    dp = ds.all()[0]
    good = {"type": "ds_value", "datasource_id": ds.id, "file_id": dp.file.id, "key": "episode", "vtype": "int",
            "v_int": 9, "v_float": None, "v_str": None, "deleted": False}
    for bad in ({**good, "v_str": "x"}, {**good, "vtype": "weird"}, {**good, "key": ""}, {**good, "datasource_id": "x"}):
        commit.extra = [bad]
        with pytest.raises(RecordsInvalid):
            Commit.from_jsonl(commit.to_jsonl(), commit.id)
    # a well-formed row that gives a field another type than its datasource fixed is refused on import
    commit.extra = [{**good, "vtype": "str", "v_int": None, "v_str": "nine"}]
    parsed = Commit.from_jsonl(commit.to_jsonl(), commit.id)
    assert "datasource field 'episode'" in unresolved(lake.catalog, [parsed])[commit.id]
    commit.extra = [{**good, "datasource_id": "01J0000000000000000000000X"}]
    assert "datasource" in unresolved(lake.catalog, [Commit.from_jsonl(commit.to_jsonl(), commit.id)])[commit.id]
