"""Folios: round trips of every item type, lazy loading, S3, lakes, overwrite rules and safety (no mocks)."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import limnos
from limnos import Folio
from limnos.folio.archive import HEAD_READ


class Model:
    """A stand-in for a trained model: plain attributes, compared by value."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.weights == self.weights


class Evil:
    """Unpickling this creates a marker file: what a malicious folio would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Items handed out as paths go to the user's cache: this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


def user_metadata(folio: Folio) -> dict:
    """The folio's metadata without the automatic created_at and updated_at."""
    return {k: v for k, v in folio.metadata.items() if k not in ("created_at", "updated_at")}


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "score": [0.5, 0.25, 0.125], "label": ["a", "b", "c"],
                         "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True)},
                        index=pd.Index([10, 20, 30], name="row"))


def full_folio(tmp_path: Path) -> tuple[Folio, dict]:
    """A folio with one item of every type, and the values each should read back as."""
    frame = sample_frame()
    artifact = tmp_path / "plot.png"
    artifact.write_bytes(b"\x89PNG\r\n" + bytes(range(256)) * 4)
    ref = tmp_path / "ref.parquet"
    frame.to_parquet(ref)
    csv_ref = tmp_path / "ref.csv"
    frame.reset_index().to_csv(csv_ref, index=False)
    inner = Folio({"stage": "inner"}).add_json("cfg", {"k": 1})
    folio = (Folio(metadata={"experiment": "exp-1", "params": {"lr": 0.01, "layers": [3, 4]}})
             .add_table("results", frame, description="scores per row", inputs=["s3://raw/x.parquet"])
             .add_array("matrix", np.arange(12, dtype=np.float32).reshape(3, 4))
             .add_array("labels", np.array(["x", "yy", "zzz"]))
             .add_json("config", {"a": [1, 2, None], "b": True, "c": "text", "d": 1.5})
             .add_artifact("plot", artifact, category="plots")
             .add_model("model", Model([1.0, 2.0]), format="joblib")
             .reference_table("features", ref, num_rows=3, description="kept where it is")
             .reference_table("features_csv", csv_ref, table_format="csv")
             .add_folio("inner", inner))
    expected = {"results": frame, "matrix": np.arange(12, dtype=np.float32).reshape(3, 4),
                "labels": np.array(["x", "yy", "zzz"]), "config": {"a": [1, 2, None], "b": True, "c": "text", "d": 1.5},
                "plot": artifact.read_bytes(), "model": Model([1.0, 2.0]), "features": frame,
                "features_csv": frame.reset_index()}
    return folio, expected


def check_values(folio: Folio, expected: dict, trusted: bool = True) -> None:
    pd.testing.assert_frame_equal(folio.get_table("results"), expected["results"])
    np.testing.assert_array_equal(folio.get_array("matrix"), expected["matrix"])
    assert folio.get_array("matrix").dtype == np.float32
    np.testing.assert_array_equal(folio.get_array("labels"), expected["labels"])
    assert folio.get_json("config") == expected["config"]
    assert Path(folio.get_artifact_path("plot")).read_bytes() == expected["plot"]
    assert folio.get_model("model", trusted=trusted) == expected["model"]
    pd.testing.assert_frame_equal(folio.get_table("features"), expected["features"])
    got_csv = folio.get_table("features_csv")
    assert got_csv[["row", "id", "score", "label"]].equals(expected["features_csv"][["row", "id", "score", "label"]])
    assert folio.get_folio("inner").get_json("cfg") == {"k": 1}
    assert user_metadata(folio) == {"experiment": "exp-1", "params": {"lr": 0.01, "layers": [3, 4]}}


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
@pytest.mark.parametrize("lazy", [True, False])
def test_round_trip_every_item_type(tmp_path: Path, suffix: str, lazy: bool) -> None:
    folio, expected = full_folio(tmp_path)
    check_values(folio, expected)  # in memory, before saving
    url = folio.save(tmp_path / "out" / f"bundle{suffix}")
    loaded = Folio.load(url, lazy=lazy)
    check_values(loaded, expected)
    contents = loaded.list_contents()
    assert list(contents["name"]) == list(folio)
    row = contents.set_index("name").loc["results"]
    assert (row["type"], row["format"], row["num_rows"], row["description"]) == ("table", "parquet", 3, "scores per row")
    assert contents.set_index("name").loc["plot", "category"] == "plots"
    assert contents.set_index("name").loc["features", "path"] == str(tmp_path / "ref.parquet")
    assert loaded.list_contents()["hash"].tolist() == folio.list_contents()["hash"].tolist()
    text = loaded.describe()
    assert "results" in text and "table" in text and "exp-1" in text and "kept where it is" in text
    with tarfile.open(url) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("folio.json"))  # type: ignore[arg-type]
        assert json.load(tar.extractfile("metadata.json")) == folio.metadata  # type: ignore[arg-type]
    assert names[:2] == ["folio.json", "metadata.json"]
    results = next(i for i in manifest["items"] if i["name"] == "results")
    assert {"type", "format", "hash", "size", "description", "inputs"} <= set(results)
    assert results["inputs"] == ["s3://raw/x.parquet"]


def test_polars_and_pyarrow_tables(tmp_path: Path) -> None:
    pl = pytest.importorskip("polars")
    import pyarrow as pa

    frame = pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    table = pa.table({"z": [1.5, 2.5]})
    folio = Folio().add_table("pl", frame).add_table("pa", table)
    loaded = Folio.load(folio.save(tmp_path / "f.tar"))
    assert loaded.get_table("pl").equals(frame)
    assert loaded.get_table("pa").equals(table)


def test_skops_models_load_safely(tmp_path: Path) -> None:
    pytest.importorskip("skops")
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.arange(10.0).reshape(-1, 1), np.arange(10.0) * 3)
    folio = Folio().add_model("lin", model).add_model("custom", Model([3.0]), format="skops")
    loaded = Folio.load(folio.save(tmp_path / "m.tar"))
    assert loaded.list_contents().set_index("name").loc["lin", "format"] == "skops"
    np.testing.assert_allclose(loaded.get_model("lin").coef_, model.coef_)  # sklearn types are trusted by skops
    with pytest.raises(limnos.UntrustedModel, match=r"test_folio\.Model"):
        loaded.get_model("custom")  # a type skops does not know is code we would run
    assert loaded.get_model("custom", trusted=True) == Model([3.0])


# -------------------------------------------------------------------- lazy
@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_lazy_load_reads_only_the_manifest(tmp_path: Path, suffix: str) -> None:
    big = np.random.default_rng(0).random(500_000)  # 4 MB that we never read
    folio = Folio({"m": 1}).add_table("small", sample_frame()).add_array("big", big).add_json("tail", {"x": 1})
    url = folio.save(tmp_path / f"lazy{suffix}")
    size = os.path.getsize(url)

    loaded = Folio.load(url)
    assert loaded.extracted == []
    assert loaded.bytes_read <= HEAD_READ  # one read at the start: the manifest
    assert user_metadata(loaded) == {"m": 1} and list(loaded) == ["small", "big", "tail"]
    pd.testing.assert_frame_equal(loaded.get_table("small"), sample_frame())
    assert loaded.extracted == ["small"]
    assert loaded.bytes_read < size / 4  # the big array was never read
    if suffix == ".tar":
        # A .tar is read by ranges: the last item too costs only its own bytes.
        assert loaded.get_json("tail") == {"x": 1}
        assert loaded.bytes_read < size / 4
    assert loaded.extracted in (["small"], ["small", "tail"])


def test_references_and_archive_on_s3(tmp_path: Path, rclone_s3) -> None:  # type: ignore[no-untyped-def]
    import s3fs

    options = rclone_s3.options()
    bucket = rclone_s3.new_bucket()
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    frame = sample_frame()
    frame.to_parquet(tmp_path / "t.parquet")
    frame.reset_index().to_csv(tmp_path / "t.csv", index=False)
    fs.put_file(str(tmp_path / "t.parquet"), f"{bucket}/lake/t.parquet")
    fs.put_file(str(tmp_path / "t.csv"), f"{bucket}/lake/t.csv")

    big = np.arange(1_000_000, dtype=np.int64)  # 8 MB left unread on the server
    folio = (Folio({"where": "s3"})
             .reference_table("pq", f"s3://{bucket}/lake/t.parquet", num_rows=3, storage_options=options)
             .reference_table("csv", f"s3://{bucket}/lake/t.csv", table_format="csv", storage_options=options)
             .add_table("included", frame).add_array("big", big))
    pd.testing.assert_frame_equal(folio.get_table("pq"), frame)
    url = folio.save(f"s3://{bucket}/folios/exp.tar", storage_options=options)
    raw = fs.cat_file(f"{bucket}/folios/exp.tar")
    assert options["secret"].encode() not in raw and options["key"].encode() not in raw  # credentials never saved

    loaded = Folio.load(url, storage_options=options)
    assert loaded.bytes_read <= HEAD_READ and loaded._reader.requests == 1  # type: ignore[union-attr]
    pd.testing.assert_frame_equal(loaded.get_table("included"), frame)  # one ranged GET of its bytes
    assert loaded.bytes_read < len(raw) / 4
    pd.testing.assert_frame_equal(loaded.get_table("pq"), frame)
    assert loaded.get_table("csv")["id"].tolist() == [1, 2, 3]
    assert loaded.get_data_path("pq") == f"s3://{bucket}/lake/t.parquet"
    np.testing.assert_array_equal(loaded.get_array("big"), big)

    # With wrong credentials the reference cannot be read: a RemoteError that names the item and where it is,
    # leaks no secret, and leaves the bucket and the folio as they were.
    bare = Folio.load(url, storage_options=options)
    fs.invalidate_cache()
    stored = {path: meta["size"] for path, meta in fs.find(bucket, detail=True).items()}
    with pytest.raises(limnos.RemoteError, match=re.escape(f"referenced table 'pq' at s3://{bucket}/lake/t.parquet")) as info:
        bare.get_table("pq", storage_options={"key": "wrong-key", "secret": "wrong-secret-0000"})
    assert type(info.value) is limnos.RemoteError
    assert "wrong-secret-0000" not in str(info.value)
    fs.invalidate_cache()
    assert {path: meta["size"] for path, meta in fs.find(bucket, detail=True).items()} == stored
    assert bare.extracted == [] and bare.get_data_path("pq") == f"s3://{bucket}/lake/t.parquet"


# -------------------------------------------------------- names, overwrite
def test_names_and_overwrite_rules(tmp_path: Path) -> None:
    folio = Folio().add_json("a", {"v": 1}).add_json("b", [1])
    with pytest.raises(limnos.FolioItemExists, match="overwrite=True"):
        folio.add_json("a", {"v": 2})
    with pytest.raises(limnos.FolioItemExists):
        folio.add_table("a", sample_frame())  # a name is taken whatever the type
    assert folio.get_json("a") == {"v": 1}
    folio.add_json("a", {"v": 2}, overwrite=True)
    assert folio.get_json("a") == {"v": 2} and list(folio) == ["b", "a"]
    folio.add_table("a", sample_frame(), overwrite=True)
    with pytest.raises(limnos.FolioItemNotFound, match="is a table"):
        folio.get_json("a")
    with pytest.raises(limnos.FolioItemNotFound, match="has no item 'zz'"):
        folio.get_table("zz")
    for bad in ["", "../x", "a/b", ".hidden", "x" * 129, "a..b", 3]:
        with pytest.raises(limnos.FolioError):
            folio.add_json(bad, {})  # type: ignore[arg-type]
    with pytest.raises(limnos.FolioError, match="JSON"):
        folio.add_json("j", {1: "int key"})
    with pytest.raises(limnos.FolioError, match="Python objects"):
        folio.add_array("o", np.array([object()]))
    with pytest.raises(limnos.SourceNotFound):
        folio.add_artifact("art", tmp_path / "missing.png")
    folio.metadata["when"] = object()
    with pytest.raises(limnos.FolioError, match="metadata must be JSON"):
        folio.save(tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()


# --------------------------------------------------------------------- safety
def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _manifest(member: str, data: bytes, offset: int) -> bytes:
    from limnos.store.hashing import hash_bytes

    return json.dumps({"format": "limnos.folio", "version": 1, "metadata": {}, "items": [
        {"name": "x", "type": "json", "format": "json", "hash": hash_bytes(data), "size": len(data),
         "description": None, "inputs": [], "member": member, "offset": offset}]}).encode()


def test_path_traversal_and_links_are_refused(tmp_path: Path) -> None:
    payload = b'{"pwned": true}'
    # 1. The manifest names a member outside items/.
    evil = tmp_path / "evil1.tar"
    _tar(evil, [(tarfile.TarInfo("folio.json"), _manifest("../../escaped.json", payload, 1536)),
                (tarfile.TarInfo("../../escaped.json"), payload)])
    with pytest.raises(limnos.UnsafeArchive, match="escaped"):
        Folio.load(evil)

    # 2. The item's member is a symlink: refused when the item is read.
    evil = tmp_path / "evil2.tar"
    link = tarfile.TarInfo("items/x.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    manifest = _manifest("items/x.json", payload, 1024)
    manifest = _manifest("items/x.json", payload, 1024 + -(-len(manifest) // 512) * 512)  # after the manifest
    _tar(evil, [(tarfile.TarInfo("folio.json"), manifest), (link, b"")])
    folio = Folio.load(evil)
    with pytest.raises(limnos.UnsafeArchive, match="link"):
        folio.get_json("x")
    with pytest.raises(limnos.UnsafeArchive):
        Folio.load(evil, lazy=False)

    # 3. A member the manifest does not name, with an absolute or '..' path: refused by a full load.
    for bad in ("../../escaped.txt", "/tmp/escaped.txt"):
        evil = tmp_path / "evil3.tar"
        good = Folio().add_json("x", {"ok": 1})
        good.save(evil)
        with tarfile.open(evil, "a") as tar:
            info = tarfile.TarInfo(bad)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        assert Folio.load(evil).get_json("x") == {"ok": 1}  # lazily, the stray member is never touched
        with pytest.raises(limnos.UnsafeArchive, match=r"absolute or '\.\.'"):
            Folio.load(evil, lazy=False)
    assert not (tmp_path / "escaped.json").exists() and not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/escaped.txt").exists()


def test_a_corrupt_item_is_refused(tmp_path: Path) -> None:
    url = Folio().add_json("x", {"value": "a" * 100}).save(tmp_path / "c.tar")
    data = bytearray(Path(url).read_bytes())
    at = data.index(b"aaaaaaaaaa")
    data[at] = ord("b")
    Path(url).write_bytes(bytes(data))
    with pytest.raises(limnos.IntegrityError, match="does not match its hash"):
        Folio.load(url).get_json("x")


def test_untrusted_models_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folio = Folio().add_model("evil", Evil(str(marker)), format="joblib").add_model("ok", Model([1.0]), format="joblib")
    url = folio.save(tmp_path / "models.tar.gz")
    loaded = Folio.load(url)
    with pytest.raises(limnos.UntrustedModel, match="trusted=True"):
        loaded.get_model("evil")
    with pytest.raises(PermissionError):
        loaded.get_model("ok")
    assert not marker.exists()  # nothing was unpickled
    assert loaded.get_model("ok", trusted=True) == Model([1.0])
    assert Folio.load(url, trusted=True).get_model("ok") == Model([1.0])
    assert folio.get_model("ok") == Model([1.0])  # built here: its bytes are our own


# ---------------------------------------------------------------------- lakes
def test_folios_in_a_lake(lake: limnos.Lake, tmp_path: Path) -> None:
    raw = tmp_path / "raw.parquet"
    sample_frame().to_parquet(raw)
    raw_file = lake.add(str(raw), name="raw/features.parquet").file
    folio, expected = full_folio(tmp_path)
    folio.reference_table("raw", raw_file, description="a lake file")
    saved = lake.save_folio("experiments/exp-1", folio, metadata={"study": "folio"})
    assert saved.ref == "experiments/exp-1@1"

    items = {f.name for f in lake.ls(".folios/experiments/exp-1/")}
    assert ".folios/experiments/exp-1/results.parquet" in items and ".folios/experiments/exp-1/model.joblib" in items
    assert {f.name for f in saved.inputs} >= items | {"raw/features.parquet"}  # lineage: items and references

    loaded = lake.get("experiments/exp-1").folio()
    assert loaded.extracted == []
    check_values(loaded, expected)
    pd.testing.assert_frame_equal(loaded.get_table("raw"), sample_frame())
    assert loaded.get_data_path("raw").endswith(raw_file.hash[2:])  # type: ignore[index]
    with pytest.raises(limnos.UntrustedModel):
        loaded.get_model("model")
    handed_out = Path(loaded.get_item_path("results"))
    results_hash = loaded.list_contents().set_index("name").loc["results", "hash"]
    assert handed_out.stat().st_ino != Path(lake.cache.path(results_hash)).stat().st_ino
    assert lake.get("experiments/exp-1").metadata == {"study": "folio"}

    # A second folio sharing an item: one object, and re-saving unchanged items makes no new versions.
    objects_before = {o.hash for o in lake.store.iter_objects()}
    other = Folio({"n": 2}).add_table("results", sample_frame())
    lake.save_folio("experiments/exp-2", other)
    assert {o.hash for o in lake.store.iter_objects()} - objects_before <= {lake.get("experiments/exp-2").hash}
    lake.save_folio("experiments/exp-1", loaded)
    assert len(lake.history(".folios/experiments/exp-1/results.parquet")) == 1
    assert lake.get("experiments/exp-1").version == 2

    # Items are files the lake keeps: gc leaves them alone, fsck finds them whole.
    report = lake.gc(dry_run=True, grace=__import__("datetime").timedelta(0))
    assert report.deleted == []
    assert lake.fsck(read_data=True).ok

    with pytest.raises(limnos.FolioError, match="not a folio"):
        raw_file.folio()


def test_a_lake_folio_travels_through_a_remote(tmp_path: Path) -> None:
    a = limnos.init(str(tmp_path / "a"))
    folio = Folio({"x": 1}).add_table("t", sample_frame()).add_json("j", {"k": [1, 2]})
    a.save_folio("f", folio)
    a.remotes.add("origin", str(tmp_path / "remote"))
    a.push()
    b = limnos.init(str(tmp_path / "b"))
    b.remotes.add("origin", str(tmp_path / "remote"))
    b.pull(download=False)  # only the catalog: items download when read
    loaded = b.get("f").folio()
    pd.testing.assert_frame_equal(loaded.get_table("t"), sample_frame())
    assert loaded.get_json("j") == {"k": [1, 2]}
    a.close()
    b.close()
