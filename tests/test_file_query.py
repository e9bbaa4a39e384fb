"""One query language for files and datapoints: ``lake.query(text | condition | key=value)``, ``lake.files``
and ``limnos query``, on SQLite and PostgreSQL (the ``lake`` fixture runs each test on both)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import limnos
from helpers import lake_state
from limnos.catalog.filequery import FILE_FIELDS
from limnos.cli.main import app
from limnos.core import provenance
from limnos.errors import FieldNotFound, LimnosError, QueryError, QuerySyntaxError, SchemaError
from test_fuzz import QUERY_TEXT, examples

runner = CliRunner()


@pytest.fixture
def people(lake: limnos.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> limnos.Lake:
    """Files by two originators: ana's two tickets (one in two versions), bob's file without a ticket, a step output."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for user, name, meta in [("ana@example.org", "a/one.txt", {"ticket": "abc-1", "n": 1}),
                             ("ana@example.org", "a/two.txt", {"ticket": "xyz-2", "n": 2}),
                             ("bob@example.org", "b/three.txt", {"n": 3}),
                             ("ana@example.org", "a/one.txt", {"ticket": "abc-1", "n": 4})]:
        monkeypatch.setenv(provenance.USER_EMAIL_ENV, user)
        with lake.run(), lake.create(name, metadata=meta) as w:
            w.write_text(f"{name} {meta}")

    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "carol@example.org")

    @lake.step
    def shout(src: limnos.File) -> str:
        return src.read_text().upper()

    shout(lake.get("b/three.txt"))
    return lake


def names(result: limnos.Result) -> list[str]:
    return [f"{f.name}@{f.version}" for f in result]


def test_automatic_fields_are_queried_by_their_names(people: limnos.Lake) -> None:
    lake = people
    assert names(lake.query('user == "ana@example.org"')) == ["a/one.txt@1", "a/one.txt@2", "a/two.txt@1"]
    assert names(lake.query(user="bob@example.org")) == ["b/three.txt@1"]
    assert names(lake.query('name startswith "a/" and version >= 2')) == ["a/one.txt@2"]
    one = lake.get("a/one.txt")
    run = one.run
    assert run is not None
    assert names(lake.query(host=run["host"], name="a/one.txt")) == ["a/one.txt@1", "a/one.txt@2"]
    script = lake.query('script is not null and name == "a/two.txt"')
    assert [f.run["script"] for f in script] == [lake.get("a/two.txt").run["script"]]  # type: ignore[index]
    assert one.id in {f.id for f in lake.query(git_commit=run["git_commit"])}  # None: "git_commit is null"
    assert names(lake.query(f'size == {one.size} and id == "{one.id}"')) == ["a/one.txt@2"]
    assert names(lake.query(created_at=one.created_at)) == ["a/one.txt@2"]
    assert names(lake.query('created_at < "2001-01-01"')) == []
    outputs = lake.query("step is not null")
    assert len(outputs) == 1 and outputs[0].kind == "object"
    assert outputs["step"].tolist()[0].endswith("shout")
    assert names(lake.query('step contains "shout"')) == names(outputs)
    assert len(lake.query("step is null")) == 4


def test_the_issue_query_runs_as_text_condition_and_view(people: limnos.Lake) -> None:
    lake = people
    text = 'user == "ana@example.org" and created_at > "2001-01-01" and ticket startswith "abc"'
    files = lake.files
    cond = (files["user"] == "ana@example.org") & (files["created_at"] > "2001-01-01") & files["ticket"].startswith("abc")
    expected = ["a/one.txt@1", "a/one.txt@2"]
    assert names(lake.query(text)) == expected
    assert names(lake.query(cond)) == expected
    assert names(lake.query(limnos.parse_query(text))) == expected  # the function a web UI's query bar calls
    assert names(files[cond].all()) == expected
    assert names(files[text].all()) == expected
    assert len(files[cond]) == 2 and files[cond].count() == 2
    assert names(lake.query(text, latest=True)) == ["a/one.txt@2"]
    assert names(lake.query(cond, ticket="abc-1", n=4)) == ["a/one.txt@2"]  # a condition and the shorthand together
    assert names(lake.query({"ticket": "abc-1"}, n=1)) == ["a/one.txt@1"]


def test_same_operators_as_a_datasource(people: limnos.Lake) -> None:
    lake = people
    assert names(lake.query("n in [1, 3]")) == ["a/one.txt@1", "b/three.txt@1"]
    step_output = names(lake.query("step is not null"))
    assert names(lake.query('ticket != "abc-1"')) == sorted(["a/two.txt@1", "b/three.txt@1", *step_output])
    every = names(lake.query("size >= 0"))
    missing = names(lake.query("ticket is null"))
    has = names(lake.query("not (ticket is null)"))
    assert sorted(missing + has) == sorted(every) and not set(missing) & set(has)  # ~ is the exact complement
    # != is the complement of == (a file without the key is "not equal"), for an automatic field too
    step_ne = names(lake.query('step != "nothing"'))
    assert sorted(step_ne) == sorted(every)
    assert names(lake.query('ticket endswith "-2" or n > 3')) == ["a/one.txt@2", "a/two.txt@1"]
    assert names(lake.query('`ticket` contains "bc"')) == ["a/one.txt@1", "a/one.txt@2"]


def test_select_order_by_limit_and_latest(people: limnos.Lake) -> None:
    files = people.files
    view = files[files["n"] > 0].order_by("n", desc=True).limit(3)
    assert names(view.all()) == ["a/one.txt@2", "b/three.txt@1", "a/two.txt@1"]
    assert names(files.order_by("user").order_by("n").limit(2).all()) == ["a/one.txt@1", "a/two.txt@1"]
    frame = files[files["ticket"].is_not_null()].select("ticket", "user", "host").all().dataframe
    assert list(frame.columns) == ["name", "version", "id", "ticket", "user", "host"]
    assert frame["user"].tolist() == ["ana@example.org"] * 3
    assert names(files.latest().where('name startswith "a/"').all()) == ["a/one.txt@2", "a/two.txt@1"]
    assert names(people.query(n=1).order_by("created_at")) == ["a/one.txt@1"]


def test_as_of_sees_files_metadata_and_deletions_as_they_were(people: limnos.Lake) -> None:
    lake = people
    before = lake.get("a/two.txt").created_at
    then = max(f.created_at for f in lake.query("size >= 0"))
    lake.set_metadata("a/two.txt", {"ticket": "abc-9"})
    lake.rm("a/one.txt@1", keep_dependents=True)
    with lake.create("a/late.txt", metadata={"ticket": "abc-3"}) as w:
        w.write_text("late")
    now = names(lake.query('ticket startswith "abc"'))
    assert now == ["a/late.txt@1", "a/one.txt@2", "a/two.txt@1"]
    old = lake.query('ticket startswith "abc"').as_of(then)
    assert names(old) == ["a/one.txt@1", "a/one.txt@2"]
    assert old[0].metadata["ticket"] == "abc-1"
    assert names(lake.files.as_of(before).latest().where('name startswith "a/"').all()) == ["a/one.txt@1", "a/two.txt@1"]
    assert lake.query(name="a/two.txt").as_of(then).dataframe["ticket"].tolist() == ["xyz-2"]


@pytest.mark.parametrize(("query", "error"), [
    ('user == "ana', QuerySyntaxError),
    ("ticket startswith", QuerySyntaxError),
    ("user ==", QuerySyntaxError),
    ("(n > 1", QuerySyntaxError),
    ('tickt == "abc"', FieldNotFound),
    ("nosuchfield is null", FieldNotFound),
    ('n == "three"', SchemaError),
    ("ticket > 5", SchemaError),
    ('size contains "1"', SchemaError),
    ('created_at > "yesterday"', SchemaError),
])
def test_bad_queries_raise_the_exact_class_and_write_nothing(people: limnos.Lake, query: str, error: type) -> None:
    before = lake_state(people)
    with pytest.raises(error) as raised:
        list(people.query(query))
    assert type(raised.value) is error
    with pytest.raises(error):
        list(people.files.where(query).all())
    assert lake_state(people) == before


def test_query_objects_refuse_misuse(people: limnos.Lake) -> None:
    files = people.files
    with pytest.raises(QueryError):
        people.query(42)  # type: ignore[arg-type]
    with pytest.raises(QueryError):
        people.query(files["n"])  # type: ignore[arg-type]
    with pytest.raises(FieldNotFound):
        files["tickt"]
    with pytest.raises(QueryError):
        files.limit(-1)
    with pytest.raises(QueryError):
        files.as_of("2024-01-01")  # type: ignore[arg-type]
    assert set(FILE_FIELDS) <= set(files.fields())
    assert files.fields()["ticket"] == "str"


def test_cli_query_uses_the_ds_query_parser(people: limnos.Lake) -> None:
    path = people.path
    text = 'user == "ana@example.org" and created_at > "2001-01-01" and ticket startswith "abc"'
    out = runner.invoke(app, ["--lake", path, "query", text, "--json"])
    assert out.exit_code == 0, out.output
    assert [(f["name"], f["version"]) for f in json.loads(out.stdout)] == [("a/one.txt", 1), ("a/one.txt", 2)]
    latest = runner.invoke(app, ["--lake", path, "query", text, "--latest", "--json"])
    assert [f["version"] for f in json.loads(latest.stdout)] == [2]
    pairs = runner.invoke(app, ["--lake", path, "query", "ticket=abc-1", "n=4", "--json"])
    assert [f["version"] for f in json.loads(pairs.stdout)] == [2]
    ordered = runner.invoke(app, ["--lake", path, "query", "n > 0", "--order-by", "n", "--desc", "--limit", "1", "--json"])
    assert [f["metadata"]["n"] for f in json.loads(ordered.stdout)] == [4]
    bad = runner.invoke(app, ["--lake", path, "query", "ticket startswith"])
    assert bad.exit_code == 1 and "startswith takes a quoted string" in bad.output
    unknown = runner.invoke(app, ["--lake", path, "query", 'tickt == "x"'])
    assert unknown.exit_code == 1 and "'ticket'" in unknown.output
    when = dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc).isoformat()
    empty = runner.invoke(app, ["--lake", path, "query", "n > 0", "--as-of", when])
    assert empty.exit_code == 0 and "no file matches" in empty.output


FILE_QUERY_TEXT = QUERY_TEXT | st.tuples(
    st.sampled_from(["user", "host", "script", "git_commit", "step", "created_at", "name", "version", "kind", "n"]),
    st.sampled_from([" == ", " != ", " < ", " >= ", " contains ", " in ", " is null"]),
    st.sampled_from(['"a"', "1", "-3.5", '"2024-01-01"', '"2024-13-45"', "[1, 2]", '["x"]', "true", ""]),
).map("".join)


@settings(max_examples=examples(), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
@given(text=FILE_QUERY_TEXT)
def test_fuzz_file_query_text(lake: limnos.Lake, text: str) -> None:
    if not lake.ls():
        with lake.create("f.txt", metadata={"a": 5, "odd name": "x", "n": 1}) as w:
            w.write_text("f")
    before = lake_state(lake)
    try:
        result = lake.query(text)
        list(result)
        result.count()
        result.dataframe  # noqa: B018
    except LimnosError:
        pass
    assert lake_state(lake) == before  # a query writes nothing, and fails only with a limnos error


def test_reprs_say_what_a_view_holds(people: limnos.Lake) -> None:
    assert repr(people.query(n=3)) == "<Result n == 3: 1 file>"
    assert repr(people.query("n > 1", latest=True)) == "<Result n > 1, latest: 3 files>"
    assert repr(people.files["n > 1"].latest()) == "<FileView n > 1, latest>"
