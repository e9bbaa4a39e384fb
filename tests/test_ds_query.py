"""Datasource queries against a pandas reference, on SQLite and PostgreSQL.

One random table per backend (datapoints with int, float, bool, str and
datetime fields, some values missing); hypothesis draws query trees over it
and every result must equal what pandas computes on the same table, with
pandas' missing-value semantics (a comparison with a missing value is False,
except !=, and ~ is the complement).
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limnos.datasources import text as ds_text
from limnos.datasources.query import And, Leaf, Not, Or, describe
from limnos.errors import FieldNotFound, QueryError, QuerySyntaxError, SchemaError

N = 48
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
STRS = ["cat", "Cat", "catalog", "dog", "a%b", "a_b", "", "émile", "x y"]
INTS = [-3, 0, 1, 2, 5, 7, 100]
FLOATS = [-1.5, 0.0, 0.25, 2.5, 3.0, 1e6]
DATES = [BASE + dt.timedelta(days=d, hours=h) for d in (0, 1, 30) for h in (0, 5)]


def _random_frame(seed: int) -> pd.DataFrame:
    rnd = random.Random(seed)

    def maybe(values):  # about one value in five is missing
        return [rnd.choice(values) if rnd.random() > 0.2 else None for _ in range(N)]

    frame = pd.DataFrame({
        "path": [f"{rnd.choice(['a', 'b', 'B'])}/{i:03d}.txt" for i in range(N)],
        "i": pd.array(maybe(INTS), dtype="Int64"),
        "f": pd.array(maybe(FLOATS), dtype="float64"),
        "b": pd.array(maybe([True, False]), dtype="boolean"),
        "s": pd.array(maybe(STRS), dtype="object"),
        "d": pd.to_datetime(pd.Series(maybe(DATES), dtype="object"), utc=True),
    })
    return frame


@pytest.fixture
def table(lake, tmp_path):  # type: ignore[no-untyped-def]
    """(datasource, reference frame) for one random table."""
    frame = _random_frame(7)
    folder = tmp_path / "src"
    for i, path in enumerate(frame["path"]):
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x" * (i % 7))
    ds = lake.datasource("t", str(folder), scan=True)
    assert ds.upload_metadata_from_dataframe(frame) == N
    frame["size"] = [i % 7 for i in range(N)]
    return ds, frame


# ---------------------------------------------------------------- reference
def reference(frame: pd.DataFrame, cond) -> pd.Series:  # type: ignore[no-untyped-def]
    if isinstance(cond, And):
        out = pd.Series(True, index=frame.index)
        for part in cond.parts:
            out &= reference(frame, part)
        return out
    if isinstance(cond, Or):
        out = pd.Series(False, index=frame.index)
        for part in cond.parts:
            out |= reference(frame, part)
        return out
    if isinstance(cond, Not):
        return ~reference(frame, cond.part)
    col = frame[cond.field].astype(object)
    present = col.notna()
    value = cond.value
    ops = {
        "eq": lambda v: v == value, "ne": lambda v: v == value, "lt": lambda v: v < value, "le": lambda v: v <= value,
        "gt": lambda v: v > value, "ge": lambda v: v >= value, "contains": lambda v: value in v,
        "startswith": lambda v: v.startswith(value), "endswith": lambda v: v.endswith(value),
        "isin": lambda v: v in value, "is_null": lambda v: False, "is_not_null": lambda v: True,
    }
    hit = pd.Series([bool(present[i]) and bool(ops[cond.op](col[i])) for i in frame.index], index=frame.index)
    if cond.op == "ne":
        return ~hit
    if cond.op == "is_null":
        return ~present
    return hit


FIELDS = {"i": [*INTS, 4, 6], "f": [*FLOATS, 1, 2.0], "b": [True, False], "s": [*STRS, "ca", "og", "É"],
          "d": [*DATES, BASE + dt.timedelta(days=2)], "size": [0, 3, 6, 9], "path": ["a/001.txt", "b/", "a", ".txt", "B/0"]}
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]
TEXT = ["contains", "startswith", "endswith"]


@st.composite
def leaves(draw):  # type: ignore[no-untyped-def]
    field = draw(st.sampled_from(sorted(FIELDS)))
    ops = COMPARE + ["isin", "is_null", "is_not_null"] + (TEXT if field in ("s", "path") else [])
    if field == "b":
        ops = ["eq", "ne", "isin", "is_null", "is_not_null"]
    op = draw(st.sampled_from(ops))
    if op in ("is_null", "is_not_null"):
        return Leaf(field, op)
    if op == "isin":
        return Leaf(field, "isin", tuple(draw(st.lists(st.sampled_from(FIELDS[field]), max_size=3))))
    value = draw(st.sampled_from(FIELDS[field]))
    if op in TEXT and not isinstance(value, str):
        value = str(value)
    return Leaf(field, op, value)


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: And(p)),
        st.tuples(inner, inner).map(lambda p: Or(p)),
        inner.map(Not),
    ),
    max_leaves=5,
)

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(cond=conditions)
def test_queries_match_pandas(table, cond) -> None:  # type: ignore[no-untyped-def]
    ds, frame = table
    expected = sorted(frame.loc[reference(frame, cond), "path"])
    got = [dp.path for dp in ds[cond].all()]
    assert got == expected, describe(cond)
    assert ds[cond].count() == len(expected)


@FUZZ
@given(field=st.sampled_from(["i", "f", "b", "s", "d", "size", "path"]), desc=st.booleans(),
       limit=st.one_of(st.none(), st.integers(0, N + 2)), cond=st.one_of(st.none(), conditions))
def test_order_and_limit_match_pandas(table, field, desc, limit, cond) -> None:  # type: ignore[no-untyped-def]
    ds, frame = table
    view = ds if cond is None else ds[cond]
    rows = frame if cond is None else frame[reference(frame, cond)]
    key = rows[field].astype(object)
    present = rows[key.notna()]
    ordered = present.assign(_k=present[field].astype(object)).sort_values(["_k", "path"], ascending=[not desc, True],
                                                                       kind="stable")
    expected = list(ordered["path"]) + sorted(rows.loc[key.isna(), "path"])
    if limit is not None:
        expected = expected[:limit]
        view = view.order_by(field, desc=desc).limit(limit)
    else:
        view = view.order_by(field, desc=desc)
    assert [dp.path for dp in view.all()] == expected


def test_chained_views_are_and(table) -> None:  # type: ignore[no-untyped-def]
    ds, _ = table
    a = ds[ds["i"] > 0]
    b = a[a["s"].contains("a")]
    both = ds[(ds["i"] > 0) & (ds["s"].contains("a"))]
    assert [d.path for d in b.all()] == [d.path for d in both.all()]
    assert len(ds.all()) == N  # views never change ds


def test_values_come_back_typed(table) -> None:  # type: ignore[no-untyped-def]
    ds, frame = table
    result = ds.select("i", "d", "b").all()
    df = result.dataframe
    assert list(df.columns) == ["path", "i", "d", "b"]
    assert str(df["i"].dtype) == "Int64" and str(df["b"].dtype) == "boolean"
    assert str(df["d"].dtype).startswith("datetime64") and str(df["d"].dt.tz) == "UTC"
    by_path = frame.set_index("path")
    for dp in result:
        want = by_path.loc[dp.path, "i"]
        assert dp["i"] == (None if pd.isna(want) else int(want))
        assert set(dp.metadata) <= {"i", "d", "b"}
    full = ds.head(5).dataframe
    assert {"path", "size", "i", "f", "b", "s", "d", "modified", "content_type", "datapoint_id", "uri"} <= set(full.columns)


# ------------------------------------------------------------------- errors
def test_precedence_mistake_says_parentheses(table) -> None:  # type: ignore[no-untyped-def]
    ds, _ = table
    with pytest.raises(QueryError, match="parentheses"):
        ds["i"] > 5 & ds["b"] == 1  # noqa: B015
    with pytest.raises(QueryError, match="parentheses"):
        ds["i"] == 1 | ds["s"] == "cat"  # noqa: B015
    with pytest.raises(QueryError, match="parentheses"):
        ds["i"] > 5 & (ds["b"] == True)  # noqa: B015,E712
    with pytest.raises(QueryError, match=r"& | ~"):
        (ds["i"] > 5) and (ds["b"] == True)  # noqa: E712


def test_field_compared_with_field_is_refused(table) -> None:  # type: ignore[no-untyped-def]
    ds, _ = table
    with pytest.raises(QueryError, match="cannot compare field 'i' with field 'f'"):
        ds["i"] > ds["f"]  # noqa: B015
    with pytest.raises(QueryError, match="isin"):
        ds["i"].isin([ds["f"]])


def test_unknown_field_lists_close_names(table) -> None:  # type: ignore[no-untyped-def]
    ds, _ = table
    with pytest.raises(FieldNotFound, match="did you mean 'content_type'"):
        ds["contenttype"]
    with pytest.raises(FieldNotFound, match="no field 'zzz'"):
        ds.order_by("zzz")
    with pytest.raises(FieldNotFound):
        ds[Leaf("nope", "eq", 1)]


def test_values_must_match_field_types(table) -> None:  # type: ignore[no-untyped-def]
    ds, _ = table
    with pytest.raises(SchemaError, match="'s' holds str values"):
        ds[ds["s"] == 5].all()
    with pytest.raises(SchemaError, match="'i' holds int"):
        ds[ds["i"] == "5"].all()
    with pytest.raises(SchemaError, match="contains works on str fields"):
        ds[ds["i"].contains("5")].all()
    with pytest.raises(QueryError, match="is_null"):
        ds["i"] == None  # noqa: B015,E711


def test_metadata_types_are_enforced(table) -> None:  # type: ignore[no-untyped-def]
    ds, _ = table
    path = ds.head(1)[0].path
    with pytest.raises(SchemaError, match="'i'"), ds.metadata_context() as ctx:
        ctx.update_metadata(path, {"i": "seven"})
    # the first use in a batch fixes the type for the rest
    with pytest.raises(SchemaError, match="'fresh'"), ds.metadata_context() as ctx:
        ctx.update_metadata(path, {"fresh": 1})
        ctx.update_metadata(ds.head(2)[1].path, {"fresh": "one"})
    assert "fresh" not in ds.fields  # nothing of the failed batch was written
    with pytest.raises(SchemaError, match="'s'"):
        ds.upload_metadata_from_dataframe(pd.DataFrame({"path": [path], "s": [3]}))


# --------------------------------------------------------------- text syntax
@pytest.mark.parametrize("text, expected", [
    ("episode > 5 and has_yoda == true", 'episode > 5 and has_yoda == true'),
    ("a = 1 or b != 'x' and not c < 2.5", 'a == 1 or b != "x" and not (c < 2.5)'),
    ("(a == 1 or b == 2) and c >= -3", "(a == 1 or b == 2) and c >= -3"),
    ("s contains \"a\\\"b\" AND s startswith 'x' or s endswith ''", 's contains "a\\"b" and s startswith "x" or s endswith ""'),
    ("t in [1, 2, 'three'] and u not in ()", 't in [1, 2, "three"] and not (u in [])'),
    ("n is null or m IS NOT NULL", "n is null or m is not null"),
    ("`odd name` == 1e3", "odd name == 1000.0"),
    ("path startswith \"img/\"", 'path startswith "img/"'),
])
def test_text_queries_parse(text, expected) -> None:  # type: ignore[no-untyped-def]
    assert describe(ds_text.parse(text)) == expected


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("episode >", "expected a value"),
    ("episode > 5 and", "expected a field name"),
    ("episode 5", "expected a comparison"),
    ("(a == 1", "expected ')'"),
    ("a == b", "comparing two fields"),
    ("a == 'x", "unexpected character"),
    ("a == null", "is null"),
    ("a == 1 b == 2", "expected 'and', 'or'"),
    ("a is 5", "expected 'null'"),
    ("__import__('os').system('x') == 1", "unexpected character"),
])
def test_text_query_errors_point_at_the_spot(text, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QuerySyntaxError, match=r"column|empty") as info:
        ds_text.parse(text)
    assert fragment in str(info.value)


@FUZZ
@given(cond=conditions)
def test_text_round_trip(table, cond) -> None:  # type: ignore[no-untyped-def]
    """describe() writes the CLI syntax; parsing it back selects the same datapoints."""
    ds, _ = table
    parsed = ds_text.parse(describe(cond))
    assert [d.path for d in ds[parsed].all()] == [d.path for d in ds[cond].all()]


def test_datetime_fields_compare_with_iso_text(table) -> None:  # type: ignore[no-untyped-def]
    ds, frame = table
    cutoff = BASE + dt.timedelta(days=1)
    via_text = ds[ds_text.parse(f'd >= "{cutoff.isoformat()}"')].all()
    via_python = ds[ds["d"] >= cutoff].all()
    assert [d.path for d in via_text] == [d.path for d in via_python]
    expected = sorted(frame.loc[frame["d"].notna() & (frame["d"] >= cutoff), "path"])
    assert [d.path for d in via_python] == expected


def test_sqlite_plans_on_a_bigger_table(sqlite_lake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Selective and unselective filters under a limit give the same answers whichever plan SQLite takes."""
    from limnos.datasources.query import PROBE_CAP, choose_plan

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        (folder / f"{i:04d}.txt").write_text(str(i))
    ds = sqlite_lake.datasource("many", str(folder), scan=True)
    ds.upload_metadata_from_dataframe(pd.DataFrame({"path": [f"{i:04d}.txt" for i in range(300)],
                                                    "k": [i % 10 for i in range(300)]}))
    assert [d.path for d in ds[ds["k"] == 3].head(5)] == [f"{i:04d}.txt" for i in (3, 13, 23, 33, 43)]
    assert [d.path for d in ds[ds["k"] >= 0].head(3)] == ["0000.txt", "0001.txt", "0002.txt"]
    types = ds._types(["k"])
    with sqlite_lake.catalog.engine.connect() as conn:
        assert choose_plan(conn, ds[ds["k"] == 3].limit(5).query, types, "sqlite") == "index"
        assert choose_plan(conn, ds[ds["k"] == 3].query, types, "sqlite") == "index"
        assert choose_plan(conn, ds[ds["path"] == "0001.txt"].query, types, "sqlite") is None
        assert choose_plan(conn, ds[ds["k"] == 3].query, types, "postgresql") is None
        assert choose_plan(conn, ds[~(ds["k"] == 3)].limit(5).query, types, "sqlite") == "scan"
        assert choose_plan(conn, ds[~(ds["k"] == 3)].query, types, "sqlite") is None
    assert [d.path for d in ds[~(ds["k"] >= 1)].head(3)] == ["0000.txt", "0010.txt", "0020.txt"]
    assert [d.path for d in ds[ds["k"] != 0].head(2)] == ["0001.txt", "0002.txt"]
    assert PROBE_CAP > 300


@FUZZ
@given(cond=conditions, plan=st.sampled_from(["index", "scan", None]), limit=st.one_of(st.none(), st.integers(0, 10)))
def test_every_plan_gives_the_same_answer(table, monkeypatch, cond, plan, limit) -> None:  # type: ignore[no-untyped-def]
    """The SQLite plan hints (drive from an index, or probe in path order) never change a result."""
    import limnos.catalog.dsquery

    ds, frame = table
    monkeypatch.setattr(limnos.catalog.dsquery, "choose_plan", lambda *a, **k: plan)
    expected = sorted(frame.loc[reference(frame, cond), "path"])[:limit]
    view = ds[cond] if limit is None else ds[cond].limit(limit)
    assert [dp.path for dp in view.all()] == expected, (plan, describe(cond))
    assert ds[cond].count() == len(sorted(frame.loc[reference(frame, cond), "path"]))
