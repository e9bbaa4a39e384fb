"""Files, lakes and results pickle as the lake's address plus ids, and reopen once per process (core/reopen.py).

Dask, Ray and ``multiprocessing`` pass arguments by pickle. A File must
arrive as the same file version, its lake opened once per worker process, and
nothing secret may be in the bytes: no password, no access key.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

import limnos
from limnos.core.files import UnpickledFile

# --------------------------------------------------------------- worker functions (importable by spawned workers)


def read_in_worker(file: limnos.File) -> tuple[int, int, str, str]:
    """What a pool worker does with a File: read it (pid, id of its lake, name, text)."""
    return os.getpid(), id(file.lake), file.name, file.read_text()


def derive_in_worker(file: limnos.File) -> str:
    """Read a File and write a file made from it, in the worker; the new file's id."""
    lake = file.lake
    with lake.run(name="worker"):
        text = file.read_text()
        with lake.create(f"derived/{file.name}") as w:  # type: ignore[attr-defined]
            w.write_text(text.upper())
    return w.file.id


def count_in_worker(result: Any) -> list[str]:
    return [f.name for f in result]


@pytest.fixture
def files(sqlite_lake: limnos.Lake) -> list[limnos.File]:
    out = []
    for i in range(6):
        with sqlite_lake.create(f"raw/{i}.txt") as w:
            w.write_text(f"text {i}")
        out.append(w.file)
    return out


# -------------------------------------------------------------------------- in process
def test_a_file_comes_back_as_the_same_version_of_this_process_lake(sqlite_lake: limnos.Lake,
                                                                   files: list[limnos.File]) -> None:
    back = pickle.loads(pickle.dumps(files[0]))
    assert isinstance(back, UnpickledFile) and back == files[0] and back.id == files[0].id
    assert back.lake is sqlite_lake  # the lake this process has open: its run records the read
    assert (back.name, back.version, back.read_text()) == ("raw/0.txt", 1, "text 0")
    assert pickle.loads(pickle.dumps(back)) == files[0]
    assert pickle.loads(pickle.dumps(sqlite_lake)) is sqlite_lake
    with sqlite_lake.run():
        pickle.loads(pickle.dumps(files[1])).read_bytes()
        with sqlite_lake.create("out.txt") as w:
            w.write_text("x")
    assert [f.name for f in sqlite_lake.get("out.txt").inputs] == ["raw/1.txt"]


def test_a_closed_lake_is_reopened_and_a_deleted_file_says_so(tmp_path: Path, sqlite_lake: limnos.Lake,
                                                              files: list[limnos.File]) -> None:
    data = pickle.dumps(files[:2])
    sqlite_lake.rm("raw/1.txt")
    sqlite_lake.close()
    first, second = pickle.loads(data)
    assert first.read_text() == "text 0"
    assert first.lake is not sqlite_lake and first.lake.path == sqlite_lake.path
    with pytest.raises(limnos.FileNotFound):
        second.read_text()


def test_results_pickle_their_query_and_keep_their_files(sqlite_lake: limnos.Lake, files: list[limnos.File]) -> None:
    lazy = sqlite_lake.query("name startswith 'raw/'")
    ran = sqlite_lake.query("name startswith 'raw/'")
    assert len(ran) == 6
    lazy_data, ran_data = pickle.dumps(lazy), pickle.dumps(ran)
    with sqlite_lake.create("raw/late.txt") as w:
        w.write_text("late")
    assert len(pickle.loads(lazy_data)) == 7  # had not run: runs where it lands
    back = pickle.loads(ran_data)
    assert [f.id for f in back] == [f.id for f in ran]  # had run: the same files
    assert list(back.dataframe["name"]) == [f.name for f in ran]


def test_a_datasource_query_result_pickles_with_its_datapoints(sqlite_lake: limnos.Lake,
                                                               files: list[limnos.File]) -> None:
    ds = sqlite_lake.datasource("texts", "raw/", scan=True)
    result = ds.all()
    back = pickle.loads(pickle.dumps(result))
    assert [dp.path for dp in back] == [dp.path for dp in result]
    assert back.datasource.name == "texts"
    assert back[0].read_bytes() == result[0].read_bytes() == b"text 0"


def test_nothing_secret_is_pickled(tmp_path: Path, pg_database: str) -> None:
    with_password = pg_database.replace("postgres@", "postgres:hunter2-secret@")
    assert with_password != pg_database
    lake = limnos.init(str(tmp_path / "pglake"), catalog=with_password)
    with lake.create("a.txt") as w:
        w.write_text("a")
    for obj in (lake, w.file, lake.query()):
        assert b"hunter2-secret" not in pickle.dumps(obj)
    lake.close()
    back = pickle.loads(pickle.dumps(w.file))
    assert back.read_text() == "a"  # reopened without the password (trust auth here; PGPASSWORD elsewhere)


def test_a_bucket_lake_pickles_its_endpoint_not_its_keys(tmp_path: Path, moto_s3: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"s3://{moto_s3.new_bucket()}/lake"
    lake = limnos.init(url, cache=str(tmp_path / "cache"), **moto_s3.options())
    with lake.create("a.txt") as w:
        w.write_text("on a bucket")
    data = pickle.dumps(w.file)
    assert moto_s3.secret.encode() not in data and moto_s3.key.encode() not in data
    assert moto_s3.endpoint.encode() in data
    lake.close()
    # A worker takes the credentials from its environment, as limnos.open would.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_s3.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_s3.secret)
    assert pickle.loads(data).read_text() == "on a bucket"


# -------------------------------------------------------------------------- other processes
@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_a_multiprocessing_pool_reads_files_with_one_lake_per_process(sqlite_lake: limnos.Lake,
                                                                      files: list[limnos.File], start: str) -> None:
    with multiprocessing.get_context(start).Pool(2) as pool:
        got = pool.map(read_in_worker, files, chunksize=1)
    assert [(name, text) for _, _, name, text in got] == [(f.name, f"text {i}") for i, f in enumerate(files)]
    lakes_per_pid: dict[int, set[int]] = {}
    for pid, lake_id, _, _ in got:
        lakes_per_pid.setdefault(pid, set()).add(lake_id)
    assert os.getpid() not in lakes_per_pid
    assert all(len(ids) == 1 for ids in lakes_per_pid.values())  # one lake per worker, however many Files


def test_workers_write_files_with_lineage(sqlite_lake: limnos.Lake, files: list[limnos.File]) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        ids = pool.map(derive_in_worker, files[:4])
    for source, new_id in zip(files[:4], ids, strict=True):
        made = sqlite_lake.get(new_id)
        assert made.name == f"derived/{source.name}" and made.read_text() == source.read_text().upper()
        assert made.inputs == [source]


@pytest.mark.slow
def test_files_travel_to_a_dask_local_cluster(sqlite_lake: limnos.Lake, files: list[limnos.File]) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        got = client.gather(client.map(read_in_worker, files))
        made = client.gather(client.map(derive_in_worker, files[:2]))
        names = client.submit(count_in_worker, sqlite_lake.query("name startswith 'raw/'")).result()
    assert [text for *_, text in got] == [f"text {i}" for i in range(6)]
    assert {pid for pid, *_ in got} != {os.getpid()}
    assert [sqlite_lake.get(i).inputs for i in made] == [[files[0]], [files[1]]]
    assert sorted(names) == sorted(f.name for f in files)


@pytest.mark.slow
def test_the_docs_dask_block_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    pytest.importorskip("distributed")
    text = (Path(__file__).resolve().parents[1] / "docs" / "steps.md").read_text(encoding="utf-8")
    section = text[text.index("**Dask and Ray.**"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    lake = limnos.init(str(tmp_path / "shared" / ".limnos"))
    for name, words in (("raw/a.txt", "one two three"), ("raw/b.txt", "four five")):
        with lake.create(name) as w:
            w.write_text(words)
    lake.close()
    monkeypatch.setenv("LIMNOS_LAKE", str(tmp_path / "shared" / ".limnos"))
    namespace: dict[str, Any] = {"__name__": "readme_dask"}
    exec(compile(block.group(1), "docs/steps.md", "exec"), namespace)
    assert namespace["counts"] == [("raw/a.txt", 3), ("raw/b.txt", 2)]
    namespace["lake"].close()
