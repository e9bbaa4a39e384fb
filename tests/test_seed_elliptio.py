"""ElliptIO (seed 000) parity: its README's handler example, adapted only where a name differs, and a test per item.

ElliptIO -> limnos: ``get_handler(dirpath=..., manual_metadata=...)`` -> ``limnos.open(path, metadata=...)``
(or ``lake.defaults(metadata=...)``); ``f.remote_url`` -> ``f.path``; ``h.load(file_id)`` -> ``lake.get(id)``;
``model.upload(path)`` -> ``Writer.upload(path)``; ``model.based_on`` -> ``[i.id for i in model.file.inputs]``;
``h.query({...})`` -> ``lake.query({...})`` (a Result that reads like a DataFrame); a custom tracker ->
``limnos.provenance.register(fn)``. docs/migrating/elliptio.md shows the same code (tests/test_docs.py runs it).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import limnos
from helpers import lake_state
from limnos.errors import MetadataError, ProvenanceError, SourceNotFound


@pytest.fixture
def lake_path(lake: limnos.Lake) -> str:
    """A lake on each catalog (SQLite, PostgreSQL) that the example opens again by its path."""
    return lake.path


@pytest.fixture
def experiment() -> Iterator[dict[str, Any]]:
    """A provenance provider recording an experiment id (ElliptIO's swappable tracker), registered for one test."""
    state: dict[str, Any] = {"experiment_id": "exp-42"}

    def provider() -> dict[str, Any]:
        return dict(state)

    limnos.provenance.register(provider)
    try:
        yield state
    finally:
        limnos.provenance.unregister(provider)


def test_readme_handler_example(lake: limnos.Lake, tmp_path: Path) -> None:
    """The README's "How to use" block, name for name where limnos's differ."""
    best_model = tmp_path / "best_model.pickle"
    best_model.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))

    # setup manual metadata (optional) and handler
    metadata = dict(
        ticket="abc-123",
        project="my_project",
        config=json.dumps({"example": "value"}),
        description="lorem ipsum",
    )
    h = limnos.open(lake.path, catalog=lake.catalog.url, metadata=metadata)

    # save file directly to the lake
    df = pd.DataFrame({"a": [1], "b": [2]})
    with h.create("train.txt") as f:
        df.to_csv(f.path)

    # load file. It is recorded as an input of every new file in this session (run).
    assert f.file is not None
    train_file = h.get(f.file.id)

    # upload an existing new file
    with h.create("model.pickle") as model:
        model.upload(best_model)
    assert model.file is not None
    assert [i.id for i in model.file.inputs] == [train_file.id]  # ElliptIO: model.based_on == [train_file.file_id]

    # querying the database
    df = h.query({"ticket": "abc-123"})
    assert len(df) == 2
    assert sorted(df["name"]) == ["model.pickle", "train.txt"]
    assert set(df["description"]) == {"lorem ipsum"}
    assert json.loads(df["config"][0]) == {"example": "value"}
    assert pickle.loads(h.get("model.pickle").read_bytes()) == {"weights": [1, 2, 3]}
    assert pd.read_csv(h.get("train.txt").local_path(), index_col=0).to_dict() == {"a": {0: 1}, "b": {0: 2}}
    h.close()


def test_default_metadata_goes_under_every_write_of_the_lake_object(lake: limnos.Lake, tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.mkdir()
    (src / "x.csv").write_text("x\n")
    (src / "y.csv").write_text("y\n")
    assert lake.defaults() == {}
    assert lake.defaults(metadata={"ticket": "abc-123", "stage": "raw"}) == {"ticket": "abc-123", "stage": "raw"}
    with lake.create("made.txt") as w:
        w.write_text("made")
    with lake.create("own.txt", metadata={"stage": "clean", "n": 1}) as w:
        w.write_text("own")
    lake.add(str(src / "x.csv"), name="added.csv")
    lake.add(str(src), name="folder")

    @lake.step
    def double(file: limnos.File) -> limnos.File:
        with lake.create("double.txt") as out:
            out.write_text(file.read_text() * 2)
        return out  # type: ignore[return-value]

    double(lake.get("made.txt"))
    assert lake.get("made.txt").metadata == {"ticket": "abc-123", "stage": "raw"}
    assert lake.get("own.txt").metadata == {"ticket": "abc-123", "stage": "clean", "n": 1}  # the call's own wins
    assert lake.get("added.csv").metadata == {"ticket": "abc-123", "stage": "raw"}
    assert [f.metadata["ticket"] for f in lake.ls("folder/")] == ["abc-123", "abc-123"]
    assert lake.get("double.txt").metadata["ticket"] == "abc-123"
    assert sorted(f.name for f in lake.query(ticket="abc-123", latest=True)) == [
        "added.csv", "double.txt", "folder/x.csv", "folder/y.csv", "made.txt", "own.txt"]

    other = limnos.open(lake.path, catalog=lake.catalog.url)  # another lake object: no defaults
    with other.create("plain.txt") as w:
        w.write_text("plain")
    assert other.get("plain.txt").metadata == {}
    other.close()
    lake.set_metadata("plain.txt", {"checked": True})  # set_metadata sets only what it is given
    assert lake.get("plain.txt").metadata == {"checked": True}

    lake.defaults(metadata={})
    with lake.create("after.txt") as w:
        w.write_text("after")
    assert lake.get("after.txt").metadata == {}


def test_bad_default_metadata_is_refused_and_writes_nothing(lake: limnos.Lake) -> None:
    lake.defaults(metadata={"ticket": "abc"})
    before = lake_state(lake)
    with pytest.raises(MetadataError):
        lake.defaults(metadata={"name": "reserved"})
    with pytest.raises(MetadataError):
        lake.defaults(metadata=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(MetadataError):
        limnos.open(lake.path, catalog=lake.catalog.url, metadata={"bad\x00key": 1})
    assert lake.defaults() == {"ticket": "abc"}  # unchanged
    assert lake_state(lake) == before


def test_writer_upload_takes_a_local_file(lake: limnos.Lake, tmp_path: Path) -> None:
    local = tmp_path / "best_model.pickle"
    local.write_bytes(b"\x80model bytes")
    with lake.create("models/m.pickle", metadata={"kind_": "model"}) as model:
        model.upload(str(local))
    assert model.file is not None and model.file.read_bytes() == b"\x80model bytes"
    assert local.read_bytes() == b"\x80model bytes"  # the local file is left as it is
    before = lake_state(lake)
    with pytest.raises(SourceNotFound), lake.create("models/none.pickle") as w:
        w.upload(tmp_path / "missing.pickle")
    assert lake_state(lake) == before


def test_query_result_reads_like_a_dataframe(lake: limnos.Lake) -> None:
    for i, ticket in enumerate(["abc-1", "abc-2", "zzz"]):
        with lake.create(f"f{i}.txt", metadata={"ticket": ticket, "n": i}) as w:
            w.write_text(str(i))
    result = lake.query('ticket startswith "abc"')
    assert isinstance(result, limnos.Result)
    assert len(result) == 2
    assert result["n"].tolist() == [0, 1]
    assert result[["name", "ticket"]].to_dict("records") == [{"name": "f0.txt", "ticket": "abc-1"},
                                                             {"name": "f1.txt", "ticket": "abc-2"}]
    assert list(result.head(1)["name"]) == ["f0.txt"]
    assert isinstance(result.head(), pd.DataFrame)
    assert result[0].name == "f0.txt"  # still a list of Files
    assert "<table" in result._repr_html_() and "abc-2" in result._repr_html_()
    assert result.columns[:7] == ["name", "version", "id", "hash", "size", "created_at", "user"]
    assert result.dataframe.equals(lake.query('ticket startswith "abc"').dataframe)


def test_pluggable_provenance_records_an_experiment_id(lake: limnos.Lake, experiment: dict[str, Any]) -> None:
    with lake.run(config={"lr": 0.1}), lake.create("a.txt") as w:
        w.write_text("a")
    assert w.file is not None and w.file.run is not None
    assert w.file.run["config"] == {"lr": 0.1, "provenance": {"experiment_id": "exp-42"}}
    experiment["experiment_id"] = "exp-43"
    experiment["api_token"] = "s3cret-value"  # never recorded
    with lake.run(), lake.create("b.txt") as w:
        w.write_text("b")
    assert w.file is not None and w.file.run is not None
    assert w.file.run["config"] == {"provenance": {"experiment_id": "exp-43", "api_token": "***"}}
    records = "".join(p.read_text() for p in Path(lake.path, "records").glob("*.jsonl"))
    assert "exp-43" in records and "s3cret-value" not in records
    # the records file passes validation: a full reindex replays it
    lake.reindex(force=True)
    assert lake.get("b.txt").run["config"]["provenance"]["experiment_id"] == "exp-43"  # type: ignore[index]


def test_a_failing_provider_stops_the_write(lake: limnos.Lake) -> None:
    def broken() -> dict[str, Any]:
        return {"when": object()}

    limnos.provenance.register(broken)
    try:
        before = lake_state(lake)
        with pytest.raises(ProvenanceError), lake.run(), lake.create("a.txt") as w:
            w.write_text("a")
        assert lake_state(lake) == before
    finally:
        limnos.provenance.unregister(broken)
    with pytest.raises(ProvenanceError):
        limnos.provenance.register("not a function")  # type: ignore[arg-type]

