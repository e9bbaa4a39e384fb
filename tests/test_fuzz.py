"""Hostile and odd input to the public API: only LimnosError escapes, and a call that raised wrote nothing.

A fuzz campaign (issue 10 item 11) found raw exceptions: OverflowError and
DataError for metadata ints of 2**63 and more, RecursionError for deep dicts
and deep query text, UnicodeEncodeError for lone surrogates, ProgrammingError
and DataError on PostgreSQL for a key ``5`` or a NUL in a key (validation ran
after the first query), ValueError/TypeError for a ``limnos.lock`` version,
AttributeError for ``add(name=123)``. Each has a regression test here, and a
hypothesis-driven fuzz over create / add / set_metadata / query / ds query
text checks the rule for everything else, on SQLite and PostgreSQL.

Every LimnosError subclass is also the builtin that fits (``MetadataError`` is a
``ValueError``, ``SchemaError`` a ``TypeError``...), so catching those still works.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import limnos
from helpers import lake_state
from limnos.datasources.text import parse
from limnos.errors import InvalidName, LimnosError, ManifestError, MetadataError, QuerySyntaxError
from limnos.tracking.manifest import Manifest

#: Bounded, so the suite stays fast; raise it locally for a longer campaign: LIMNOS_FUZZ_EXAMPLES=2000.
EXAMPLES = 60


def examples() -> int:
    """How many cases each fuzz test tries."""
    import os

    return int(os.environ.get("LIMNOS_FUZZ_EXAMPLES", EXAMPLES))


def snapshot(lake: limnos.Lake) -> dict[str, Any]:
    """What a failed call must leave unchanged (see :func:`helpers.lake_state`)."""
    return lake_state(lake, staging=True)


def deep(levels: int) -> dict[str, Any]:
    """A dict nested ``levels`` deep."""
    out: dict[str, Any] = {}
    node = out
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return out


# ------------------------------------------------------------ the regressions
BAD_METADATA = {
    "int 2**63": {"n": 2**63},
    "int below -2**63": {"n": -(2**63) - 1},
    "int 10**30 in a list": {"j": {"ok": [1, 2]}, "n": 10**30},
    "nested 5000 deep": {"d": deep(5000)},
    "lone surrogate value": {"s": "a\ud800b"},
    "lone surrogate key": {"\udcff": 1},
    "key 5": {5: 1},
    "NUL in key": {"a\x00b": 1},
    "NUL in value": {"s": "a\x00b"},
    "NaN": {"x": math.nan},
    "a set": {"s": {1, 2}},
    "datetime out of range in UTC": {"t": dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))},
    "not a mapping": [("a", 1)],
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_bad_metadata_is_refused_before_anything_is_written(lake: limnos.Lake, tmp_path: Path, case: str) -> None:
    metadata: Any = BAD_METADATA[case]
    with lake.create("seed.txt", metadata={"n": 1, "s": "x"}) as w:
        w.write_text("seed")
    source = tmp_path / "f.txt"
    source.write_text("a file")
    before = snapshot(lake)
    with pytest.raises(MetadataError), lake.create("new.txt", metadata=metadata) as w:
        w.write_text("new bytes")  # main: OverflowError after the object was stored
    with pytest.raises(MetadataError):
        lake.add(str(source), name="f.txt", metadata=metadata)
    with pytest.raises(MetadataError):
        lake.set_metadata("seed.txt", metadata)
    assert snapshot(lake) == before


@pytest.mark.parametrize("filters", [{5: 1}, {"a\x00": 1}, {"\ud800": 1}, {"": 1}])
def test_a_query_with_an_impossible_key_is_refused_before_it_runs(lake: limnos.Lake, filters: dict[Any, Any]) -> None:
    with pytest.raises(MetadataError):
        list(lake.query(filters))


@pytest.mark.parametrize("value", [2**63, -(2**64), "a\x00", "\ud800", {1, 2}])
def test_a_query_with_an_unstorable_value_raises_a_limnos_error(lake: limnos.Lake, value: Any) -> None:
    with lake.create("a.txt", metadata={"n": 1, "s": "x"}) as w:
        w.write_text("a")
    key = "n" if isinstance(value, int) else "s"
    with pytest.raises(LimnosError):
        list(lake.query({key: value}))


@pytest.mark.parametrize("name", [123, None.__class__, b"bytes", ["a"]])
def test_add_and_create_refuse_a_name_that_is_no_str(lake: limnos.Lake, tmp_path: Path, name: Any) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    before = snapshot(lake)
    with pytest.raises(InvalidName):
        lake.add(str(source), name=name)  # main: AttributeError: 'int' object has no attribute 'rstrip'
    with pytest.raises(InvalidName), lake.create(name) as w:
        w.write_text("x")
    assert snapshot(lake) == before


@pytest.mark.parametrize("text", [
    "version: abc\nfiles: []\n",        # main: ValueError
    "version: [1]\nfiles: []\n",        # main: TypeError
    "version: 1.5\nfiles: []\n",
    "version: true\nfiles: []\n",
    "version: 0\nfiles: []\n",
    "version: 1\nfiles:\n- {path: a, hash: " + "a" * 64 + ", size: true}\n",
    "files: " + "[" * 3000 + "]" * 3000 + "\n",
])
def test_a_bad_limnos_lock_raises_manifest_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "limnos.lock"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        Manifest.load(str(path))
    assert str(path) in str(caught.value)


def test_a_limnos_lock_that_is_not_utf8_raises_manifest_error(tmp_path: Path) -> None:
    path = tmp_path / "limnos.lock"
    path.write_bytes(b"version: 1\nfiles: []\n# \xff\xfe\n")
    with pytest.raises(ManifestError):
        Manifest.load(str(path))


@pytest.mark.parametrize("text", [
    "(" * 400 + "a == 1" + ")" * 400,   # main: RecursionError
    "not " * 2000 + "a == 1",
    "a == " + "9" * 5000,               # Python refuses to parse ints this long
])
def test_query_text_that_nests_too_deep_is_a_syntax_error(text: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    assert len(str(caught.value)) < 400  # one readable line, not the whole query


def test_query_text_nested_a_little_still_parses() -> None:
    assert set(parse("(" * 30 + "a == 1" + ")" * 30).fields()) == {"a"}


# ---------------------------------------------------------------- the fuzzing
def json_values(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """JSON-like values over ``leaf``, sometimes deep."""
    return st.recursive(leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                         max_size=3), max_leaves=8)


ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)  # surrogates included
INTS = st.integers(min_value=-(2**65), max_value=2**65) | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1])
LEAVES = (INTS | st.floats() | st.booleans() | ANY_TEXT | st.none() | st.binary(max_size=8)
          | st.datetimes(timezones=st.none() | st.timezones()) | st.builds(deep, st.sampled_from([3000]))
          | st.sampled_from([frozenset({1, 2}), object()]))
KEYS = ANY_TEXT | st.integers() | st.sampled_from(["id", "name", "n", "s", "a\x00", "\ud800", "x" * 300, None])
METADATA = st.none() | st.dictionaries(KEYS, json_values(LEAVES), max_size=3) | st.sampled_from([[1], "a=1", 5])
NAMES = ANY_TEXT | st.sampled_from(["a.txt", "dir/b.txt", "../x", "/etc/passwd", "", "a\x00b", 7, None])
counter = itertools.count()


def call(lake: limnos.Lake, fn: Any) -> None:
    """Run ``fn``: it succeeds, or raises a LimnosError and leaves the lake as it was."""
    before = snapshot(lake)
    try:
        fn()
    except LimnosError:
        assert snapshot(lake) == before, "a call that raised wrote something"


@settings(max_examples=examples(), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
@given(name=NAMES, metadata=METADATA, filters=st.dictionaries(KEYS, LEAVES, max_size=2))
def test_fuzz_the_public_write_and_query_api(lake: limnos.Lake, tmp_path: Path, name: Any, metadata: Any,
                                            filters: dict[Any, Any]) -> None:
    source = tmp_path / f"src-{next(counter)}.txt"
    source.write_text(f"bytes {source.name}")

    def create() -> None:
        with lake.create(name, metadata=metadata) as w:
            w.write_text(f"created {next(counter)}")

    call(lake, create)
    call(lake, lambda: lake.add(str(source), name=name, metadata=metadata))
    if lake.ls():
        call(lake, lambda: lake.set_metadata(lake.ls()[0].name, metadata))
    call(lake, lambda: list(lake.query(filters)))
    call(lake, lambda: list(lake.query(filters, latest=True)))


QUERY_PIECES = st.sampled_from([
    "(", ")", "not ", " and ", " or ", "a", "size", "path", "`odd name`", "`a\x00b`", "`\ud800`", " == ", " != ",
    " < ", " >= ", " contains ", " startswith ", " in ", " is null", " is not null", "[", "]", ",", "1", "-2.5e3",
    "1e999", "9" * 30, '"x"', '"a\x00"', '"\ud800"', "'q\\'s'", "true", "false", "null", "\\", "\n", "@",
])


def quoted(text: str) -> str:
    """``text`` as a double-quoted string literal of the query syntax."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Mostly fields the datasource has (a query naming an unknown field stops at FieldNotFound, before the database).
QUERY_FIELDS = (st.sampled_from(["a", "size", "path", "`odd name`"])
                | st.sampled_from(["modified", "`a\x00b`", "`\ud800`", "missing"]))
QUERY_VALUES = (st.integers(min_value=-(2**70), max_value=2**70).map(str) | ANY_TEXT.map(quoted)
                | st.sampled_from(["1e999", "-1e999", "9" * 25, '"2024-01-01"', '"0001-01-01T00:00:00+05:00"', "true"])
                | st.floats().map(repr))
QUERY_LEAVES = st.one_of(
    st.tuples(QUERY_FIELDS, st.sampled_from([" == ", " != ", " < ", " <= ", " > ", " >= "]), QUERY_VALUES).map("".join),
    st.tuples(QUERY_FIELDS, st.sampled_from([" contains ", " startswith ", " endswith "]), ANY_TEXT.map(quoted))
    .map("".join),
    st.tuples(QUERY_FIELDS, st.sampled_from([" in ", " not in "]), st.lists(QUERY_VALUES, max_size=3))
    .map(lambda t: f"{t[0]}{t[1]}[{', '.join(t[2])}]"),
    st.tuples(QUERY_FIELDS, st.sampled_from([" is null", " is not null"])).map("".join),
)
QUERY_CONDITIONS = st.recursive(QUERY_LEAVES, lambda inner: st.one_of(
    inner.map(lambda c: f"({c})"), inner.map(lambda c: f"not {c}"),
    st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map("".join)), max_leaves=6)
QUERY_TEXT = QUERY_LEAVES | QUERY_CONDITIONS | st.lists(QUERY_PIECES, max_size=14).map("".join) | ANY_TEXT


@settings(max_examples=examples() * 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
@given(text=QUERY_TEXT)
def test_fuzz_datasource_query_text(lake: limnos.Lake, tmp_path: Path, text: str) -> None:
    folder = tmp_path / "ds"
    if not folder.exists():
        folder.mkdir()
        for i in range(3):
            (folder / f"{i}.txt").write_text(str(i))
    ds = lake.datasource("d", str(folder), scan=True)
    if not ds.fields.get("a"):
        with ds.metadata_context() as ctx:
            ctx.update_metadata("0.txt", {"a": 5, "odd name": "x"})
    before = snapshot(lake)
    try:
        view = ds[parse(text)]
        view.all()
        view.count()
    except LimnosError:
        pass
    assert snapshot(lake) == before  # a query writes nothing, whatever it says
