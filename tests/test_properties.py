"""Property tests (hypothesis): name validation and metadata typing."""

from __future__ import annotations

import datetime as dt
import math
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import limnos
from limnos.catalog import values
from limnos.errors import InvalidName, InvalidRef, MetadataError, SchemaError
from limnos.names import is_file_id, new_id, parse_ref, validate_name

# Names hold no control (Cc) or bidi character, and are NFC (see limnos.names.validate_name).
_BIDI_AND_SEPARATORS = "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
segment = st.text(alphabet=st.characters(blacklist_characters="/\\\x00@" + _BIDI_AND_SEPARATORS,
                                         blacklist_categories=("Cs", "Cc")),
                  min_size=1, max_size=20).map(lambda s: unicodedata.normalize("NFC", s)).filter(lambda s: s not in (".", ".."))
good_names = st.lists(segment, min_size=1, max_size=5).map("/".join).filter(lambda n: len(n.encode()) <= 1024)


@given(good_names)
def test_good_names_are_accepted_and_parse_back(name):
    assert validate_name(name) == name
    ref = parse_ref(name) if not is_file_id(name) else None
    if ref is not None:
        assert ref.name == name and ref.version is None
    assert parse_ref(f"{name}@3").version == 3


@given(good_names, st.sampled_from(["..", "", "."]), good_names)
def test_bad_segments_are_rejected(a, bad, b):
    with pytest.raises(InvalidName) as exc:
        validate_name(f"{a}/{bad}/{b}")
    assert exc.value.name == f"{a}/{bad}/{b}"


@given(good_names, st.sampled_from(["/", "\\", "\x00"]))
def test_bad_characters_are_rejected(name, bad):
    candidate = bad + name if bad == "/" else name + bad + "x"
    with pytest.raises(InvalidName):
        validate_name(candidate)


def test_length_limit():
    validate_name("a" * 1024)
    with pytest.raises(InvalidName):
        validate_name("a" * 1025)
    with pytest.raises(InvalidName):
        validate_name("é" * 513)  # 1026 bytes in UTF-8


def test_bad_refs():
    for bad in ("x@0", "", None, 5):
        with pytest.raises((InvalidRef, InvalidName)) as exc:
            parse_ref(bad)  # type: ignore[arg-type]
        assert exc.value.ref == bad if isinstance(exc.value, InvalidRef) else exc.value.name == bad


def test_ids_are_time_ordered_and_unique():
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == 2000 and all(is_file_id(i) for i in ids)


scalar = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.timezone.utc)),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@given(scalar)
def test_encode_decode_round_trip(value):
    vtype = values.infer_type(value)
    decoded = values.decode(*values.encode(value, vtype))
    if isinstance(value, float):
        assert decoded == value or (math.isnan(decoded) and math.isnan(value))
    else:
        assert decoded == value


@given(scalar, scalar)
def test_type_is_fixed_by_first_value(first, second):
    fixed = values.infer_type(first)
    other = values.infer_type(second)
    exact = other != "int" or abs(second) <= 2**53 or int(float(second)) == second
    if other == fixed or (fixed == "float" and other == "int" and exact):
        assert values.check_type("k", second, fixed) == fixed
    else:
        with pytest.raises(SchemaError) as err:
            values.check_type("k", second, fixed)
        assert "'k'" in str(err.value) and fixed in str(err.value) and other in str(err.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=scalar, second=scalar)
def test_lake_enforces_types(sqlite_lake, first, second):
    key = f"k{abs(hash((repr(first), repr(second)))) % 10**9}"
    with sqlite_lake.create("f.txt", metadata={key: first}) as w:
        w.write_text("x")
    fixed, other = values.infer_type(first), values.infer_type(second)
    exact = other != "int" or abs(second) <= 2**53 or int(float(second)) == second
    if other == fixed or (fixed == "float" and other == "int" and exact):
        sqlite_lake.set_metadata(w.file, {key: second})
        assert sqlite_lake.get(w.file.id).metadata[key] == second
    else:
        with pytest.raises(SchemaError):
            sqlite_lake.set_metadata(w.file, {key: second})
        assert sqlite_lake.get(w.file.id).metadata[key] == first


def test_an_int_without_an_exact_float_is_refused_by_a_float_key(sqlite_lake):
    """2**53 + 1 stored under a float key would come back as 2**53: refused, and the old value kept."""
    with sqlite_lake.create("f.txt", metadata={"score": 0.5}) as w:
        w.write_text("x")
    sqlite_lake.set_metadata(w.file, {"score": 2**53})  # exact as a float: taken
    assert sqlite_lake.get(w.file.id).metadata["score"] == 2**53
    with pytest.raises(SchemaError, match="no exact float"):
        sqlite_lake.set_metadata(w.file, {"score": 2**53 + 1})
    assert sqlite_lake.get(w.file.id).metadata["score"] == 2**53


@pytest.mark.parametrize("bad", [object(), {1, 2}, float("nan")])
def test_unstorable_values(bad):
    with pytest.raises(MetadataError):
        vtype = values.infer_type(bad)
        values.encode(bad, vtype)


def test_reserved_and_bad_keys():
    for key in ("name", "version", "", 5):
        with pytest.raises(MetadataError):
            values.validate_key(key)
    assert issubclass(limnos.SchemaError, TypeError) and issubclass(limnos.FileNotFound, KeyError)
