"""Round trips through the public API, on SQLite and PostgreSQL, read back in a fresh process."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import limnos
from limnos import FileNotFound, InvalidName, SchemaError


def test_create_get_read(lake):
    with lake.create("raw/train.csv", metadata={"project": "p1", "rows": 2}) as w:
        pd.DataFrame({"a": [1, 2]}).to_csv(w.path, index=False)
    f = w.file
    assert f.name == "raw/train.csv" and f.version == 1 and f.size > 0
    assert f.metadata == {"project": "p1", "rows": 2}
    got = lake.get("raw/train.csv")
    assert got == f and got.hash == f.hash
    assert pd.read_csv(got.local_path()).a.tolist() == [1, 2]
    assert got.read_text().startswith("a\n")
    assert lake.get(f.id) == f and lake.get("raw/train.csv@1") == f


def test_versions_and_history(lake):
    for text in ("one", "two", "three"):
        with lake.create("notes.txt") as w:
            w.write_text(text)
    history = lake.history("notes.txt")
    assert [h.version for h in history] == [1, 2, 3]
    assert [h.read_text() for h in history] == ["one", "two", "three"]
    assert lake.get("notes.txt").version == 3
    assert lake.get("notes.txt@2").read_text() == "two"
    with pytest.raises(FileNotFound):
        lake.get("notes.txt@4")
    with pytest.raises(KeyError):  # FileNotFound is also a KeyError
        lake.get("missing.txt")


def test_ls_prefix(lake):
    for name in ("a/1.txt", "a/2.txt", "b/1.txt", "a_b.txt"):
        with lake.create(name) as w:
            w.write_text(name)
    assert [f.name for f in lake.ls()] == ["a/1.txt", "a/2.txt", "a_b.txt", "b/1.txt"]
    assert [f.name for f in lake.ls("a/")] == ["a/1.txt", "a/2.txt"]


def test_metadata_types_and_query(lake):
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    meta = {"ticket": "abc-123", "n": 3, "score": 0.5, "ok": True, "when": when, "cfg": {"lr": 0.1, "layers": [1, 2]}}
    with lake.create("m/a.bin", metadata=meta) as w:
        w.write_bytes(b"a")
    with lake.create("m/b.bin", metadata={"ticket": "zzz", "n": 4}) as w:
        w.write_bytes(b"b")
    assert lake.get("m/a.bin").metadata == meta
    result = lake.query(ticket="abc-123")
    assert [f.name for f in result] == ["m/a.bin"]
    assert [f.name for f in lake.query(n=4)] == ["m/b.bin"]
    assert [f.name for f in lake.query(ok=True, score=0.5)] == ["m/a.bin"]
    assert [f.name for f in lake.query(when=when)] == ["m/a.bin"]
    df = lake.query(ticket="abc-123").dataframe
    assert list(df.columns[:7]) == ["name", "version", "id", "hash", "size", "created_at", "user"]
    assert df.loc[0, "ticket"] == "abc-123" and df.loc[0, "n"] == 3
    assert len(lake.query(ticket="nope").dataframe) == 0


def test_schema_error_names_key_and_types(lake):
    with lake.create("x.txt", metadata={"n": 1}) as w:
        w.write_text("x")
    with pytest.raises(SchemaError, match=r"'n'.*int.*str"):
        lake.set_metadata("x.txt", {"n": "one"})
    with pytest.raises(TypeError):  # SchemaError is a TypeError too
        lake.set_metadata("x.txt", {"n": [1]})
    assert lake.get("x.txt").metadata == {"n": 1}
    # an int is accepted where floats are fixed, not the reverse
    lake.set_metadata("x.txt", {"f": 1.5})
    lake.set_metadata("x.txt", {"f": 2})
    assert lake.get("x.txt").metadata["f"] == 2.0


def test_unset_metadata(lake):
    with lake.create("x.txt", metadata={"a": 1, "b": "two"}) as w:
        w.write_text("x")
    lake.unset_metadata("x.txt", ["a"])
    assert lake.get("x.txt").metadata == {"b": "two"}
    with pytest.raises(limnos.MetadataError):
        lake.unset_metadata("x.txt", ["a"])


def test_bad_name_writes_nothing(lake, tmp_path):
    for bad in ("", "../x", "/abs", "a/../b", "a\\b", "nul\x00", "x" * 1025):
        with pytest.raises(InvalidName), lake.create(bad) as w:
            w.write_text("never")
    assert lake.ls() == []
    assert [p for p in (tmp_path / "lake" / "objects").rglob("*") if p.is_file()] == []
    assert list((tmp_path / "lake" / "records").iterdir()) == []


def test_implicit_lineage(lake):
    with lake.create("in/a.txt") as w:
        w.write_text("a")
    with lake.create("in/b.txt") as w:
        w.write_text("b")
    lake.get("in/b.txt").read_text()
    lake.get("in/a.txt").local_path()
    lake.get("in/b.txt")  # read again: no duplicate
    with lake.create("out/c.txt") as w:
        w.write_text("c")
    assert [f.name for f in w.file.inputs] == ["in/b.txt", "in/a.txt"]
    with lake.run(name="fresh", config={"lr": 0.1}), lake.create("out/d.txt") as w2:
        w2.write_text("d")
    assert w2.file.inputs == []
    assert w2.file.run["name"] == "fresh" and w2.file.run["config"] == {"lr": 0.1}
    # the outer run's reads are back after the explicit run
    with lake.create("out/e.txt") as w3:
        w3.write_text("e")
    assert [f.name for f in w3.file.inputs] == ["in/b.txt", "in/a.txt"]


def test_run_provenance(lake):
    with lake.create("p.txt") as w:
        w.write_text("p")
    run = w.file.run
    for key in ("user", "host", "started_at", "argv", "cwd", "python", "limnos_version"):
        assert run[key] is not None, key
    assert run["limnos_version"] == limnos.__version__


READER = textwrap.dedent(
    """
    import json, sys, limnos
    lake = limnos.open(sys.argv[1], catalog=sys.argv[2] or None)
    out = {
        "ls": [f.name for f in lake.ls()],
        "history": [f.version for f in lake.history("data/x.txt")],
        "text": lake.get("data/x.txt@1").read_text(),
        "query": [f.name for f in lake.query(kind_="csv")],
        "inputs": [f.name for f in lake.get("derived.txt").inputs],
        "meta": lake.get("data/y.txt").metadata,
    }
    print(json.dumps(out))
    """
)


def test_fresh_process_reads_everything(lake, tmp_path, catalog_url):
    src = tmp_path / "src" / "data"
    src.mkdir(parents=True)
    (src / "x.txt").write_text("first")
    (src / "y.txt").write_text("y")
    lake.add(str(src), name="data", metadata={"kind_": "csv"})
    (src / "x.txt").write_text("second")
    lake.add(str(src / "x.txt"), name="data/x.txt")
    lake.get("data/x.txt@1").read_text()
    with lake.create("derived.txt") as w:
        w.write_text("d")
    lake.close()
    out = subprocess.run([sys.executable, "-c", READER, lake.path, catalog_url or ""], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got == {
        "ls": ["data/x.txt", "data/y.txt", "derived.txt"],
        "history": [1, 2],
        "text": "first",
        "query": ["data/x.txt", "data/y.txt"],
        "inputs": ["data/x.txt"],
        "meta": {"kind_": "csv"},
    }
