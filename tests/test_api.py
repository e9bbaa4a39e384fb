"""The public API's shapes: what ``Lake.add`` returns, and the fields errors carry."""

from __future__ import annotations

import pickle

import pytest

import limnos
from helpers import age
from limnos import AddResult, LimnosError
from limnos.errors import (
    DatasetNotFound,
    DatasourceNotFound,
    DestinationExists,
    FieldNotFound,
    FileLocked,
    FileNotFound,
    FolioItemNotFound,
    InvalidName,
    InvalidRef,
    MetadataError,
    MissingExtra,
    ObjectNotAvailable,
    RemoteNotFound,
    SourceNotFound,
    require_extra,
)


# ------------------------------------------------------------------ AddResult
def test_add_of_a_file_is_a_one_file_result(sqlite_lake, tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("one")
    result = sqlite_lake.add(str(src), name="a.txt")
    assert isinstance(result, AddResult) and isinstance(result, list)
    assert len(result) == 1 and result[0] is result.file and list(result) == [result.file]
    assert result.file.ref == "a.txt@1" and result.file.read_text() == "one"
    assert (result.new_versions, result.unchanged, result.from_folder) == (1, 0, False)

    again = sqlite_lake.add(str(src), name="a.txt")
    assert again.file.id == result.file.id
    assert (again.new_versions, again.unchanged) == (0, 1)


def test_add_of_a_folder_counts_new_and_unchanged(sqlite_lake, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_text(f"content {i}")
        age(src / f"f{i}.txt")
    first = sqlite_lake.add(str(src), name="raw")
    assert first.from_folder and (first.new_versions, first.unchanged) == (3, 0)
    assert [f.name for f in first] == ["raw/f0.txt", "raw/f1.txt", "raw/f2.txt"]
    with pytest.raises(LimnosError, match="holds 3 files, not one"):
        _ = first.file

    (src / "f1.txt").write_text("changed")
    second = sqlite_lake.add(str(src), name="raw", metadata={"batch": 2})
    assert (second.new_versions, second.unchanged) == (1, 2), "a metadata change alone makes no version"
    assert [f.version for f in second] == [1, 2, 1]
    assert all(f.metadata == {"batch": 2} for f in second)


def test_add_of_a_folder_with_one_file_is_still_a_folder_result(sqlite_lake, tmp_path):
    src = tmp_path / "single"
    src.mkdir()
    (src / "only.txt").write_text("x")
    result = sqlite_lake.add(str(src), name="one")
    assert result.from_folder and result.file.name == "one/only.txt"
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = sqlite_lake.add(str(empty), name="none")
    assert nothing == [] and (nothing.new_versions, nothing.unchanged) == (0, 0)
    with pytest.raises(LimnosError, match="holds 0 files"):
        _ = nothing.file


# ------------------------------------------------------------- error fields
def test_lookup_errors_carry_their_subject(sqlite_lake, tmp_path):
    with pytest.raises(FileNotFound) as missing:
        sqlite_lake.get("nope.txt")
    assert missing.value.ref == "nope.txt" and str(missing.value) == "no file 'nope.txt' in the lake; see lake.ls()"
    with pytest.raises(FileNotFound) as no_history:
        sqlite_lake.history("nope.txt")
    assert no_history.value.ref == "nope.txt"
    with pytest.raises(InvalidRef) as bad_ref:
        sqlite_lake.get("x@0")
    assert bad_ref.value.ref == "x@0"
    with pytest.raises(InvalidName) as bad_prefix:
        sqlite_lake.ls("a//b/")
    assert bad_prefix.value.name == "a//b/"
    with pytest.raises(SourceNotFound) as no_source:
        sqlite_lake.add(str(tmp_path / "absent"))
    assert no_source.value.path == str(tmp_path / "absent")
    with pytest.raises(RemoteNotFound):
        sqlite_lake.push(remote="origin")


def test_metadata_lock_and_checkout_errors_carry_their_subject(sqlite_lake, tmp_path):
    with sqlite_lake.create("m.txt", metadata={"a": 1}) as w:
        w.write_text("m")
    with pytest.raises(MetadataError) as unknown:
        sqlite_lake.unset_metadata("m.txt", ["zzz"])
    assert (unknown.value.key, unknown.value.ref) == ("zzz", "m.txt@1")

    sqlite_lake.lock("m.txt")
    with pytest.raises(FileLocked) as locked:
        sqlite_lake.rm("m.txt")
    assert locked.value.refs == ["m.txt@1"] and isinstance(locked.value, PermissionError)

    dest = tmp_path / "out.txt"
    dest.write_text("already here")
    with pytest.raises(DestinationExists) as exists:
        sqlite_lake.checkout("m.txt", str(dest))
    assert exists.value.path == str(dest) and isinstance(exists.value, FileExistsError)
    assert dest.read_text() == "already here"


@pytest.mark.parametrize("cls", [FileNotFound, FieldNotFound, RemoteNotFound, FolioItemNotFound,
                                 DatasourceNotFound, DatasetNotFound])
def test_key_errors_print_their_message_not_its_repr(cls):
    error = cls("no 'x' here;\nsee the docs")
    assert isinstance(error, KeyError) and isinstance(error, LimnosError)
    assert str(error) == "no 'x' here;\nsee the docs"
    assert str(cls()) == cls.empty_message and str(cls()).endswith("not found")


def test_errors_keep_their_fields_through_pickle():
    # Errors cross process boundaries (Dask workers, multiprocessing): fields must survive.
    error = pickle.loads(pickle.dumps(FileNotFound("no file 'a'", ref="a")))
    assert type(error) is FileNotFound and error.ref == "a" and str(error) == "no file 'a'"
    lost = pickle.loads(pickle.dumps(ObjectNotAvailable("gone", digest="ab" * 32, url="s3://b/x")))
    assert (lost.digest, lost.url, str(lost)) == ("ab" * 32, "s3://b/x", "gone")
    assert FileNotFound("m").ref is None  # a field the raise site did not know is None


def test_missing_extra_names_module_and_extra():
    with pytest.raises(MissingExtra) as exc:
        require_extra("limnos_no_such_module", "nothing")
    assert exc.value.name == "limnos_no_such_module" and exc.value.extra == "nothing"
    assert str(exc.value) == "limnos_no_such_module is not installed; run: pip install 'limnos[nothing]'"
    assert isinstance(exc.value, ImportError)


def test_lake_as_context_manager_is_a_lake(tmp_path):
    with limnos.init(str(tmp_path / "ctx")) as lake:
        assert isinstance(lake, limnos.Lake)
