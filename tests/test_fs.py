"""``limnos://``: the lake as an fsspec filesystem, read and written by pandas, polars, pyarrow, DuckDB and Dask.

Every read through ``limnos://`` must count as a read of the caller's lake (a
lineage input of what it writes next), every write must be a commit, and a
write that fails must commit nothing. fsspec's own abstract suite runs in
tests/test_fs_abstract.py.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import tomllib

import limnos
from limnos.errors import DestinationExists, FileLocked, InvalidName, MetadataError, PathNotFound, UnsupportedMode
from limnos.fs import LakeWriteFile, LimnosFileSystem

ROOT = Path(__file__).resolve().parent.parent

if "limnos" not in fsspec.available_protocols():  # an editable install made before the entry point existed
    fsspec.register_implementation("limnos", LimnosFileSystem, clobber=True)


def state(lake: limnos.Lake) -> list[tuple[str, int]]:
    """Every file version in the lake, as (name, version)."""
    return sorted((f.name, f.version) for f in lake.query().files())


@pytest.fixture
def fs(sqlite_lake: limnos.Lake) -> LimnosFileSystem:
    return LimnosFileSystem(lake=sqlite_lake, skip_instance_cache=True)


def frame(i: int) -> pd.DataFrame:
    return pd.DataFrame({"a": [i, i + 1], "b": ["x", "y"]})


def write_parts(lake: limnos.Lake, n: int = 3) -> None:
    for i in range(n):
        with lake.create(f"raw/part{i}.parquet") as w:
            frame(i).to_parquet(w.path)


# ------------------------------------------------------------------ libraries
def test_pandas_reads_and_writes_with_lineage_and_metadata(sqlite_lake: limnos.Lake) -> None:
    opts = {"lake": sqlite_lake.path, "metadata": {"project": "fs"}}
    frame(1).to_parquet("limnos://raw/x.parquet", storage_options=opts)
    frame(2).to_parquet("limnos://raw/x.parquet", storage_options=opts)
    assert [f.version for f in sqlite_lake.history("raw/x.parquet")] == [1, 2]
    assert sqlite_lake.get("raw/x.parquet").metadata == {"project": "fs"}
    with sqlite_lake.run():
        old = pd.read_parquet("limnos://raw/x.parquet@1", storage_options={"lake": sqlite_lake.path})
        assert old.equals(frame(1))
        with sqlite_lake.create("report.txt") as w:
            w.write_text(str(len(old)))
    report = sqlite_lake.get("report.txt")
    assert [f.ref for f in report.inputs] == ["raw/x.parquet@1"]


def test_polars_reads_through_fsspec(sqlite_lake: limnos.Lake) -> None:
    pl = pytest.importorskip("polars")
    write_parts(sqlite_lake, 1)
    with sqlite_lake.create("raw/t.csv") as w:
        w.write_text("a,b\n1,x\n2,y\n")
    opts = {"lake": sqlite_lake.path}
    with sqlite_lake.run():
        # polars' own readers know only cloud URLs: hand it the file fsspec opens
        with fsspec.open("limnos://raw/t.csv", **opts) as f:
            csv = pl.read_csv(f)
        with fsspec.open("limnos://raw/part0.parquet", **opts) as f:
            parquet = pl.read_parquet(f)
        with sqlite_lake.create("out.txt") as w:
            w.write_text("done")
    assert csv.shape == (2, 2) and parquet["a"].to_list() == [0, 1]
    assert {f.name for f in sqlite_lake.get("out.txt").inputs} == {"raw/t.csv", "raw/part0.parquet"}


def test_pyarrow_dataset_over_a_prefix(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    import pyarrow.dataset as ds

    write_parts(sqlite_lake)
    with sqlite_lake.run():
        table = ds.dataset("raw", filesystem=fs, format="parquet").to_table()
        with sqlite_lake.create("summary.txt") as w:
            w.write_text(str(table.num_rows))
    assert table.num_rows == 6
    assert sorted(f.name for f in sqlite_lake.get("summary.txt").inputs) == [f"raw/part{i}.parquet" for i in range(3)]


def test_duckdb_queries_limnos_urls(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    duckdb = pytest.importorskip("duckdb")
    write_parts(sqlite_lake)
    con = duckdb.connect()
    con.register_filesystem(fs)
    with sqlite_lake.run():
        rows = con.sql("select count(*), sum(a) from read_parquet('limnos://raw/*.parquet')").fetchall()
        with sqlite_lake.create("q.txt") as w:
            w.write_text(str(rows))
    assert rows == [(6, 9)]
    assert sorted(f.name for f in sqlite_lake.get("q.txt").inputs) == [f"raw/part{i}.parquet" for i in range(3)]


def test_dask_dataframe_reads_a_glob(sqlite_lake: limnos.Lake) -> None:
    dd = pytest.importorskip("dask.dataframe")
    write_parts(sqlite_lake)
    with sqlite_lake.run():
        df = dd.read_parquet("limnos://raw/part*.parquet", storage_options={"lake": sqlite_lake.path}).compute()
        with sqlite_lake.create("d.txt") as w:
            w.write_text(str(len(df)))
    assert sorted(df["a"].tolist()) == [0, 1, 1, 2, 2, 3]
    assert sorted(f.name for f in sqlite_lake.get("d.txt").inputs) == [f"raw/part{i}.parquet" for i in range(3)]


# ---------------------------------------------------------------- listing
def test_info_ls_find_glob_exists(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    write_parts(sqlite_lake, 2)
    with sqlite_lake.create("raw/part0.parquet") as w:
        w.write_bytes(b"v2")
    with sqlite_lake.create("raw/deep/x.txt") as w:
        w.write_bytes(b"x")
    latest = sqlite_lake.get("raw/part0.parquet")
    info = fs.info("limnos://raw/part0.parquet")
    assert (info["type"], info["size"], info["hash"], info["version"], info["id"]) == ("file", 2, latest.hash, 2, latest.id)
    assert info["created"] == latest.created_at.timestamp()
    assert fs.info("raw/part0.parquet@1")["version"] == 1
    assert fs.info(latest.id)["version"] == 2
    assert fs.info("raw") == {"name": "raw", "size": 0, "type": "directory"}
    assert fs.ls("raw", detail=False) == ["raw/deep", "raw/part0.parquet", "raw/part1.parquet"]
    assert fs.ls("", detail=False) == ["raw"]
    assert fs.find("raw") == ["raw/deep/x.txt", "raw/part0.parquet", "raw/part1.parquet"]
    assert fs.find("raw", maxdepth=1) == ["raw/part0.parquet", "raw/part1.parquet"]
    assert fs.glob("limnos://raw/*.parquet") == ["raw/part0.parquet", "raw/part1.parquet"]
    assert fs.glob("**/x.txt") == ["raw/deep/x.txt"]
    assert fs.exists("raw/deep") and fs.isdir("raw/deep") and fs.isfile("raw/deep/x.txt")
    assert not fs.exists("raw/nope") and not fs.exists("raw/part0.parquet@9") and not fs.exists("a/../b")
    with pytest.raises(PathNotFound):
        fs.info("raw/nope")
    with pytest.raises(FileNotFoundError):
        fs.ls("raw/nope")


def test_cat_file_ranges_and_random_access(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    data = bytes(range(256)) * 40
    fs.pipe_file("b.bin", data)
    assert fs.cat_file("b.bin") == data
    assert fs.cat_file("b.bin", 10, 20) == data[10:20]
    assert fs.cat_file("b.bin", -5) == data[-5:]
    assert fs.cat_file("b.bin", 100, -100) == data[100:-100]
    assert fs.cat_file("b.bin", len(data) + 5) == b""
    with fs.open("b.bin") as f:
        f.seek(5000)
        assert f.read(3) == data[5000:5003]
        f.seek(7)
        assert f.read(2) == data[7:9]


# ---------------------------------------------------------------- writing
def test_open_wb_commits_on_close_with_metadata(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    f = fs.open("out/a.txt", "wb", metadata={"rows": 3})
    assert isinstance(f, LakeWriteFile)
    f.write(b"abc")
    assert state(sqlite_lake) == []  # nothing until closed
    f.close()
    assert f.file is not None and f.file.ref == "out/a.txt@1"
    assert sqlite_lake.get("out/a.txt").read_bytes() == b"abc"
    assert sqlite_lake.get("out/a.txt").metadata == {"rows": 3}
    with fs.open("out/a.txt", "w") as t:  # text mode through fsspec's wrapper
        t.write("second")
    assert [v.read_text() for v in sqlite_lake.history("out/a.txt")] == ["abc", "second"]


def test_a_write_that_raises_commits_nothing(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    with pytest.raises(RuntimeError), fs.open("x.bin", "wb") as f:
        f.write(b"partial")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError), fsspec.open("limnos://y.bin", "wb", lake=sqlite_lake.path) as g:
        g.write(b"partial")
        raise RuntimeError("boom")
    dropped = fs.open("z.bin", "wb")
    dropped.write(b"never closed")
    staging = dropped.raw.name
    del dropped
    assert state(sqlite_lake) == []
    assert not os.path.exists(staging)
    assert os.listdir(os.path.join(sqlite_lake.path, "tmp")) == []


def test_a_write_opened_while_handling_an_error_still_commits(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    try:
        raise KeyError("handled")
    except KeyError:
        with fs.open("log.txt", "wb") as f:
            f.write(b"written in an except block")
    assert sqlite_lake.get("log.txt").read_bytes() == b"written in an except block"


def test_bad_writes_are_refused_before_anything_is_written(sqlite_lake: limnos.Lake, fs: LimnosFileSystem) -> None:
    fs.pipe_file("a.txt", b"1")
    before = state(sqlite_lake)
    with pytest.raises(DestinationExists):
        fs.open("a.txt", "xb")
    with pytest.raises(DestinationExists):
        fs.pipe_file("a.txt", b"2", mode="create")
    with pytest.raises(UnsupportedMode):
        fs.open("a.txt", "ab")
    with pytest.raises(UnsupportedMode):
        fs.open("a.txt", "r+b")
    with pytest.raises(InvalidName):
        fs.pipe_file("a/../b.txt", b"x")
    with pytest.raises(InvalidName):
        fs.pipe_file("a.txt@2", b"x")  # a final @N reads as a version
    with pytest.raises(MetadataError):
        fs.open("m.txt", "wb", metadata={"": 1})
    with pytest.raises(MetadataError):
        LimnosFileSystem(lake=sqlite_lake, metadata={"k": object()}, skip_instance_cache=True)
    with pytest.raises(PathNotFound):
        fs.open("missing.txt", "rb")
    assert state(sqlite_lake) == before
    assert os.listdir(os.path.join(sqlite_lake.path, "tmp")) == []


def test_put_get_cp_mv_rm(sqlite_lake: limnos.Lake, fs: LimnosFileSystem, tmp_path: Path) -> None:
    local = tmp_path / "in.csv"
    local.write_text("a\n1\n")
    fs.put(str(local), "raw/in.csv", metadata={"src": "disk"})
    assert sqlite_lake.get("raw/in.csv").metadata == {"src": "disk"}
    fs.cp("raw/in.csv", "copy/in.csv")
    copy = sqlite_lake.get("copy/in.csv")
    assert copy.hash == sqlite_lake.get("raw/in.csv").hash
    assert [f.name for f in copy.inputs] == ["raw/in.csv"]
    fs.get("copy/in.csv", str(tmp_path / "out" / "got.csv"))
    assert (tmp_path / "out" / "got.csv").read_text() == "a\n1\n"
    fs.pipe_file("copy/in.csv", b"v2")
    fs.rm("copy/in.csv@1")  # one version
    assert [f.version for f in sqlite_lake.history("copy/in.csv")] == [2]
    fs.mv("copy/in.csv", "moved/in.csv")
    assert not fs.exists("copy/in.csv") and fs.cat_file("moved/in.csv") == b"v2"
    fs.pipe_file("keep.txt", b"k")
    sqlite_lake.lock("keep.txt")
    with pytest.raises(FileLocked):
        fs.rm("keep.txt")
    fs.rm("raw", recursive=True)  # every version of every name under it; the copy made from it stays
    assert not fs.exists("raw") and fs.exists("moved/in.csv")


# ---------------------------------------------------------------- which lake
def test_the_lake_comes_from_options_config_env_or_the_cwd(sqlite_lake: limnos.Lake, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with sqlite_lake.create("a.txt") as w:
        w.write_text("A")
    project = tmp_path / "proj"
    other = limnos.init(str(project / ".limnos"))
    with other.create("a.txt") as w:
        w.write_text("B")
    assert fsspec.open("limnos://a.txt", lake=sqlite_lake.path).open().read() == b"A"
    assert fsspec.open("limnos://a.txt", lake=str(project)).open().read() == b"B"  # a project folder finds .limnos
    monkeypatch.setitem(fsspec.config.conf, "limnos", {"lake": str(project)})
    assert fsspec.open("limnos://a.txt", skip_instance_cache=True).open().read() == b"B"
    monkeypatch.delitem(fsspec.config.conf, "limnos")
    monkeypatch.setenv("LIMNOS_LAKE", sqlite_lake.path)
    assert LimnosFileSystem(skip_instance_cache=True).cat_file("a.txt") == b"A"
    monkeypatch.delenv("LIMNOS_LAKE")
    monkeypatch.chdir(project)
    assert LimnosFileSystem(skip_instance_cache=True).cat_file("a.txt") == b"B"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(limnos.LakeNotFound):
        LimnosFileSystem(skip_instance_cache=True)
    other.close()


def test_the_filesystem_pickles_without_credentials(sqlite_lake: limnos.Lake) -> None:
    fs = LimnosFileSystem(lake=sqlite_lake.path, lake_options={"key": "AKIAHIDDEN", "secret": "s3cr3t-value",
                                                                "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}},
                          metadata={"team": "a"}, skip_instance_cache=True)
    data = pickle.dumps(fs)
    assert b"s3cr3t-value" not in data and b"AKIAHIDDEN" not in data
    back = pickle.loads(data)
    assert back.lake is sqlite_lake and back.metadata == {"team": "a"}
    assert pickle.loads(pickle.dumps(back)).metadata == {"team": "a"}
    assert b"127.0.0.1:9" in data  # the endpoint travels: it is no secret


# ---------------------------------------------------------------- registration
def test_pyproject_declares_the_entry_point_fsspec_loads() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["fsspec.specs"]
    assert declared == {"limnos": "limnos.fs:LimnosFileSystem"}


def test_fsspec_finds_limnos_through_package_metadata(tmp_path: Path) -> None:
    """A distribution declaring the entry point as pyproject does makes fsspec know ``limnos://`` at import."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["fsspec.specs"]
    dist = tmp_path / "site" / "limnos_probe-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: limnos-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[fsspec.specs]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items()))
    code = ("import fsspec; cls = fsspec.get_filesystem_class('limnos'); "
            "print(cls.__module__ + '.' + cls.__name__)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT / "src")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "limnos.fs.LimnosFileSystem"
