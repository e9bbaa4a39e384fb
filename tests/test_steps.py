"""@step: skipping work already done, outputs, failures, records, concurrency and staleness.

Every test runs on real lakes (SQLite and PostgreSQL through the ``lake``
fixture). Call counts prove skipping: a step appends to a list each time its
body runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import limnos
from limnos import StepError, StepOutputError, StepParameterError
from limnos.catalog import Commit
from limnos.cli.main import app


def put(lake: limnos.Lake, name: str, text: str) -> limnos.File:
    with lake.create(name) as w:
        w.write_text(text)
    return w.file


def objects(lake: limnos.Lake) -> set[str]:
    return {o.hash for o in lake.cache.iter_objects()}


def write_module(folder: pathlib.Path, name: str, source: str) -> pathlib.Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def modules(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A folder on sys.path for step modules written by tests, imported fresh each time."""
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a rewrite in the same second must not reuse a .pyc
    loaded: list[str] = []

    def load(name: str, source: str):  # type: ignore[no-untyped-def]
        write_module(folder, name, source)
        importlib.invalidate_caches()
        if name in sys.modules:
            module = importlib.reload(sys.modules[name])
        else:
            module = importlib.import_module(name)
            loaded.append(name)
        return module

    load.folder = folder  # type: ignore[attr-defined]
    yield load
    for name in loaded:
        sys.modules.pop(name, None)


# ------------------------------------------------------------------ skipping
def test_first_call_runs_second_does_not(lake):
    calls = []
    raw = put(lake, "raw/a.txt", "hello")

    @lake.step
    def shout(src: limnos.File, times: int = 1) -> str:
        calls.append(times)
        return src.read_text().upper() * times

    assert shout(raw) == "HELLO"
    assert shout(raw) == "HELLO"
    assert calls == [1]
    second = shout.call(raw)
    assert second.hit and second.value == "HELLO" and calls == [1]
    assert [s.status for s in lake.steps()] == ["ok"]


def test_positional_keyword_and_default_are_one_call(lake):
    calls = []
    raw = put(lake, "raw/a.txt", "x")

    @lake.step
    def f(src, a, b=2, *, c="z", **extra):  # type: ignore[no-untyped-def]
        calls.append(1)
        return {"a": a, "b": b, "c": c, "extra": extra}

    first = f(raw, 1)
    assert f(raw, 1, 2) == first
    assert f(src=raw, a=1, b=2, c="z") == first
    assert f(a=1, src=raw) == first
    assert calls == [1]
    f(raw, 1, x=1, y=2)
    f(raw, 1, y=2, x=1)  # another keyword order: the same call
    assert len(calls) == 2
    assert f.key(raw, 1, x=1, y=2) == f.key(y=2, x=1, a=1, src=raw)


def test_changed_parameter_or_input_content_runs_again(lake):
    calls = []

    @lake.step
    def count(src: limnos.File, sep: str = " ") -> int:
        calls.append(src.ref)
        return len(src.read_text().split(sep))

    v1 = put(lake, "raw/t.txt", "a b c")
    assert count(v1) == 3 and count(v1, sep=",") == 1
    assert len(calls) == 2
    v2 = put(lake, "raw/t.txt", "a b c d")  # new content under the same name: a miss
    assert count(v2) == 4 and len(calls) == 3
    assert count(v1) == 3 and len(calls) == 3  # the old version is still cached
    same = put(lake, "other/name.txt", "a b c d")  # same bytes under another name: the key is the content
    assert count(same) == 4 and len(calls) == 3


def test_cache_false_and_version(lake):
    calls = []
    raw = put(lake, "raw/a.txt", "x")

    def body(src):  # type: ignore[no-untyped-def]
        calls.append(1)
        return [1, 2]

    always = lake.step(body, cache=False)
    always(raw)
    always(raw)
    assert len(calls) == 2
    assert len(lake.steps()) == 2  # still recorded
    v1, v1b, v2 = lake.step(body, version=1), lake.step(body, version=1), lake.step(body, version="2")
    v1(raw)
    v1b(raw)
    assert len(calls) == 3
    v2(raw)
    assert len(calls) == 4
    assert v1.key(raw) != v2.key(raw) != always.key(raw)


def test_function_body_changes_invalidate_but_comments_do_not(lake, modules):
    raw = put(lake, "raw/n.txt", "3")
    source = '''
        import limnos
        CALLS = []

        @limnos.step
        def triple(src):
            """Triple the number in a file."""
            CALLS.append(1)
            return int(src.read_text()) * 3
    '''
    mod = modules("pipe_body", source)
    assert mod.triple(raw) == 9 and mod.CALLS == [1]
    key = mod.triple.key(raw)

    # Only comments, blank lines, the docstring and layout change: the same key, no run.
    cosmetic = '''
        import limnos
        CALLS = []


        @limnos.step
        def triple(src):   # a comment on the def line
            """A rewritten docstring that says much more than before."""

            # a new comment
            CALLS.append( 1 )
            return (int(src.read_text())
                    * 3)
    '''
    mod = modules("pipe_body", cosmetic)
    assert mod.triple.key(raw) == key
    assert mod.triple(raw) == 9 and mod.CALLS == []

    # The body changes: a new key, the function runs again.
    changed = '''
        import limnos
        CALLS = []

        @limnos.step
        def triple(src):
            """Triple the number in a file."""
            CALLS.append(1)
            return int(src.read_text()) * 3 + 0
    '''
    mod = modules("pipe_body", changed)
    assert mod.triple.key(raw) != key
    assert mod.triple(raw) == 9 and mod.CALLS == [1]


def test_exec_defined_function_without_source(lake):
    raw = put(lake, "raw/n.txt", "2")
    calls: list[int] = []

    def define(expr: str):  # type: ignore[no-untyped-def]
        ns = {"__name__": "generated", "calls": calls}
        exec(compile(f"def double(src):\n    calls.append(1)\n    return {expr}\n", "<generated>", "exec"), ns)
        return lake.step(ns["double"])

    assert define("int(src.read_text()) * 2")(raw) == 4
    assert define("int(src.read_text()) * 2")(raw) == 4
    assert len(calls) == 1
    assert define("int(src.read_text()) + 2")(raw) == 4
    assert len(calls) == 2


# ------------------------------------------------------------------ params
class Opaque:
    pass


@dataclasses.dataclass
class Config:
    lr: float
    layers: tuple[int, ...]


class Keyed:
    def __init__(self, name: str) -> None:
        self.name = name

    def __limnos_key__(self) -> str:
        return self.name


def test_parameters_hash_stably_or_are_refused(lake):
    calls = []

    @lake.step
    def f(x):  # type: ignore[no-untyped-def]
        calls.append(1)
        return None

    values = [dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc), pathlib.Path("a/b"), {3, 1, 2}, b"bytes",
              Config(0.1, (1, 2)), Keyed("k"), np.arange(4), pd.DataFrame({"a": [1, 2]}), float("nan"),
              {1: "int keys"}, np.float32(1.5)]
    for v in values:
        f(v)
        f(v)
    assert len(calls) == len(values)
    assert f.key({2, 1, 3}) == f.key({1, 2, 3}) and f.key(np.arange(4)) != f.key(np.arange(5))
    with pytest.raises(StepParameterError, match=r"parameter 'x' \(at x\['model'\]\[1\]\).*Opaque") as exc:
        f({"model": [1, Opaque()]})
    assert isinstance(exc.value, TypeError) and isinstance(exc.value, limnos.LimnosError)
    assert len(calls) == len(values) and not [s for s in lake.steps() if s.status == "failed"]


def test_files_inside_containers_are_inputs(lake):
    a, b, c = (put(lake, f"raw/{n}.txt", n) for n in "abc")

    @lake.step
    def join(parts: list, extra: dict) -> str:  # type: ignore[type-arg]
        return "".join(p.read_text() for p in parts) + extra["more"].read_text()

    out = join.call([a, b], {"more": c})
    assert out.value == "abc"
    record = out.files[0].step
    assert [(i["param"], i["name"]) for i in record.inputs] == [
        ("parts[0]", "raw/a.txt"), ("parts[1]", "raw/b.txt"), ("extra['more']", "raw/c.txt")]
    assert [f.name for f in out.files[0].inputs] == ["raw/a.txt", "raw/b.txt", "raw/c.txt"]
    assert join.call([a, b], {"more": c}).hit
    assert not join.call([b, a], {"more": c}).hit  # order of inputs matters


# ------------------------------------------------------------------ outputs
def test_many_outputs_keep_their_order(lake):
    raw = put(lake, "raw/a.txt", "seed")
    calls, unreturned = [], []

    @lake.step
    def split(src, n: int):  # type: ignore[no-untyped-def]
        calls.append(1)
        outs = []
        for i in reversed(range(n)):  # written in reverse, returned in order below
            with limnos.output(f"parts/{i:02d}.txt", metadata={"part": i}) as w:
                w.write_text(f"{src.read_text()}-{i}")
            outs.append(w)
        with limnos.output() as log:  # not returned: an output after the returned ones
            log.write_text("log")
        unreturned.append(log)
        return list(reversed(outs))

    miss = split.call(raw, 13)
    hit = split.call(raw, 13)
    assert hit.hit and not miss.hit and len(calls) == 1
    names = [f"parts/{i:02d}.txt" for i in range(13)]
    assert [f.name for f in miss.value] == names == [f.name for f in hit.value]
    assert [f.name for f in hit.files] == [*names, f"steps/{split.function}/{hit.key[:16]}/13"]
    assert [f.id for f in miss.files] == [f.id for f in hit.files]
    assert [f.read_text() for f in hit.value] == [f"seed-{i}" for i in range(13)]
    assert hit.value[7].metadata == {"part": 7}
    assert unreturned[0].file is not None and unreturned[0].file.read_text() == "log"

    @lake.step
    def frames(n: int):  # type: ignore[no-untyped-def]
        return [pd.DataFrame({"i": [i]}) for i in range(n)]

    got = frames(12)
    again = frames.call(12)
    assert again.hit and [int(df["i"][0]) for df in again.value] == list(range(12))
    assert [f.name for f in again.files] == [f"steps/{frames.function}/{again.key[:16]}/{i}" for i in range(12)]
    assert all(a.equals(b) for a, b in zip(got, again.value, strict=True))


def test_plain_data_round_trips(lake):
    raw = put(lake, "raw/a.txt", "x")
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, None, 2.0]}, index=[10, 20, 30])
    cases = {
        "frame": df,
        "array": np.arange(12, dtype=np.float32).reshape(3, 4),
        "json_dict": {"n": 1, "nested": {"l": [1, 2.5, None, True, "s"]}, "nan": float("nan")},
        "json_list": [1, "two", [3]],
        "raw": b"\x00\x01binary",
        "buffer": bytearray(b"mutable"),
        "text": "just a string",
        "number": 42,
        "mixed": (df, {"rows": 3}, b"blob"),
        "by_key": {"train": df, "meta": {"rows": 3}},
        "nothing": None,
    }
    calls = []

    @lake.step
    def make(src, label: str):  # type: ignore[no-untyped-def]
        calls.append(label)
        return cases[label]

    for label, value in cases.items():
        first = make.call(raw, label)
        hit = make.call(raw, label)
        assert not first.hit and hit.hit and calls.count(label) == 1, label
        assert type(hit.value) is type(value), label
        assert_same(hit.value, value)
        assert_same(first.value, value)


def assert_same(got, want):  # type: ignore[no-untyped-def]
    if isinstance(want, pd.DataFrame):
        pd.testing.assert_frame_equal(got, want)
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    elif isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    elif isinstance(want, dict) and any(isinstance(v, pd.DataFrame) for v in want.values()):
        assert list(got) == list(want)
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, dict) and "nan" in want:
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    else:
        assert got == want


def test_pickle_only_when_allowed(lake):
    raw = put(lake, "raw/a.txt", "x")
    before_files, before_objects = lake.ls(), objects(lake)

    @lake.step
    def model(src):  # type: ignore[no-untyped-def]
        return dt.date(2024, 5, 6)

    with pytest.raises(StepOutputError, match=r"the return value of step .*model.*datetime.date.*allow_pickle=True"):
        model(raw)
    assert [f.id for f in lake.ls()] == [f.id for f in before_files] and objects(lake) == before_objects
    assert [s.status for s in lake.steps()] == ["failed"]

    pickled = lake.step(model.__wrapped__, allow_pickle=True)
    assert pickled(raw) == dt.date(2024, 5, 6)
    hit = pickled.call(raw)
    assert hit.hit and hit.value == dt.date(2024, 5, 6)
    # Loading a pickle runs code: a step that did not allow it refuses to load one.
    with pytest.raises(StepOutputError, match="pickle"):
        lake.step(model.__wrapped__).call(raw).value  # noqa: B018 - same key (allow_pickle is not in it)


def test_failure_commits_nothing_and_propagates_unchanged(lake, lake_dir_env):
    raw = put(lake, "raw/a.txt", "x")
    before_files, before_objects = [f.id for f in lake.ls()], objects(lake)
    error = KeyError("the very same object")

    @lake.step
    def broken(src):  # type: ignore[no-untyped-def]
        with limnos.output("out/half.txt") as w:
            w.write_text("half written, never committed")
        with lake.create("out/also.txt") as w2:  # lake.create inside a step is a step output too
            w2.write_text("also never committed")
        raise error

    with pytest.raises(KeyError) as exc:
        broken(raw)
    assert exc.value is error
    assert [f.id for f in lake.ls()] == before_files
    assert objects(lake) == before_objects
    assert os.listdir(lake.cache.staging_dir()) == []  # no staging file left behind
    failed = lake.steps(failed=True)
    assert len(failed) == 1 and failed[0].status == "failed" and failed[0].outputs == []
    assert failed[0].error == "KeyError: 'the very same object'" and failed[0].inputs[0]["name"] == "raw/a.txt"
    assert lake.steps(failed=False) == []
    out = CliRunner().invoke(app, ["steps", "--failed"], env=lake_dir_env)
    assert out.exit_code == 0 and "broken" in out.stdout and "failed" in out.stdout and "KeyError" in out.stdout
    rows = json.loads(CliRunner().invoke(app, ["steps", "--json"], env=lake_dir_env).stdout)
    assert [r["status"] for r in rows] == ["failed"]
    # A later success is recorded normally (failures are not cached).
    error_calls = []

    @lake.step
    def flaky(src):  # type: ignore[no-untyped-def]
        error_calls.append(1)
        if len(error_calls) == 1:
            raise RuntimeError("first time")
        return "ok"

    with pytest.raises(RuntimeError):
        flaky(raw)
    assert flaky(raw) == "ok" and flaky(raw) == "ok" and len(error_calls) == 2


@pytest.fixture
def lake_dir_env(lake):  # type: ignore[no-untyped-def]
    return {"LIMNOS_LAKE": lake.path}


def test_misuse_errors(lake, tmp_path):
    with pytest.raises(StepError, match=r"limnos.output\(\) works only inside"), limnos.output("x"):
        pass
    with pytest.raises(StepError, match="async"):
        @lake.step
        async def nope():  # type: ignore[no-untyped-def]
            return 1
    raw = put(lake, "raw/a.txt", "x")
    with lake.create("made/outside.txt") as outside:
        outside.write_text("x")

    @lake.step
    def returns_foreign_writer(src):  # type: ignore[no-untyped-def]
        return outside

    with pytest.raises(StepOutputError, match="Writer that this call did not finish"):
        returns_foreign_writer(raw)

    @lake.step
    def twice(src):  # type: ignore[no-untyped-def]
        for _ in range(2):
            with limnos.output("dup.txt") as w:
                w.write_text("x")

    with pytest.raises(StepOutputError, match="twice"):
        twice(raw)
    other = limnos.init(str(tmp_path / "other"))
    foreign = put(other, "raw/f.txt", "f")
    with pytest.raises(StepError, match="File of another lake"):
        lake.step(lambda a, b: None)(raw, foreign)
    other.close()


def test_returned_existing_file_and_nested_steps(lake):
    raw = put(lake, "raw/a.txt", "abc")

    @lake.step
    def inner(src):  # type: ignore[no-untyped-def]
        return src.read_text()[::-1].encode()  # bytes: stored raw

    @lake.step
    def outer(src):  # type: ignore[no-untyped-def]
        reversed_file = inner.call(src).files[0]
        with lake.create("outer/upper.txt") as w:
            w.write_text(reversed_file.read_text().upper())
        return src, w  # an existing File, and a new output

    same, upper = outer(raw)
    assert same == raw and upper.read_text() == "CBA"
    assert {s.function.rsplit(".", 1)[-1] for s in lake.steps()} == {"inner", "outer"}
    record = upper.step
    assert record.function.endswith("outer") and [o["file_id"] for o in record.outputs] == [raw.id, upper.id]
    # the nested step's output was read inside outer: it is one of outer's inputs (lineage), not a key part
    assert {i["name"] for i in record.inputs} == {"raw/a.txt", inner.call(raw).files[0].name}
    assert raw.step is None  # returned, not made, by outer
    hit = outer.call(raw)
    assert hit.hit and hit.value == (raw, upper)


def test_deleted_output_makes_the_step_run_again(lake):
    raw = put(lake, "raw/a.txt", "x")
    calls = []

    @lake.step
    def make(src):  # type: ignore[no-untyped-def]
        calls.append(1)
        return {"v": 1}

    first = make.call(raw)
    lake.rm(first.files[0])
    again = make.call(raw)
    assert not again.hit and len(calls) == 2 and again.files[0].version == 2
    assert make.call(raw).hit


# ------------------------------------------------------------------ records
def test_step_record_and_one_commit(lake, tmp_path, modules, monkeypatch):
    repo = modules.folder
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    source = '''
        import limnos


        @limnos.step(version="v7")
        def measure(src, unit: str = "chars"):
            """Length of a file."""
            return {"n": len(src.read_text()), "unit": unit}
    '''
    write_module(repo, "pipe_record", source)
    for cmd in (["init", "-q"], ["remote", "add", "origin", "https://user:tok@github.com/acme/pipes.git"],
                ["add", "pipe_record.py"], ["commit", "-q", "-m", "m"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env, capture_output=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
    mod = modules("pipe_record", source)
    raw = put(lake, "raw/a.txt", "hello")
    started = dt.datetime.now(dt.timezone.utc)
    out = mod.measure.call(raw, unit="bytes")
    file = out.files[0]
    record = file.step
    assert record is not None and record.id == out.step_id and record.key == out.key
    assert record.function == "pipe_record.measure" and record.module == "pipe_record"
    assert record.code_hash == mod.measure.code.hash and record.version == "v7"
    assert record.source_file == os.path.realpath(repo / "pipe_record.py") and record.source_line == 5
    assert record.git_commit == sha and record.git_remote == "https://user:***@github.com/acme/pipes.git"
    assert record.permalink == f"https://github.com/acme/pipes/blob/{sha}/pipe_record.py#L5-L8"
    assert record.params == {"src": {"$file": "raw/a.txt@1", "hash": raw.hash}, "unit": "bytes"}
    assert record.inputs == [{"param": "src", "id": raw.id, "name": "raw/a.txt", "version": 1, "hash": raw.hash}]
    assert record.user == file.run["user"] and record.host == file.run["host"]
    assert record.limnos_version == limnos.__version__ and record.status == "ok" and record.error is None
    assert started <= record.started_at <= record.ended_at and record.duration >= 0
    assert record.outputs == [{"position": 0, "file_id": file.id, "label": None}]
    # outputs, lineage edges and the step row arrive in one commit (one records file)
    assert record.commit_id is not None
    commit = Commit.from_jsonl(lake.store.read_record(record.commit_id))
    assert [f["id"] for f in commit.files] == [file.id]
    assert [(e["file_id"], e["input_id"]) for e in commit.inputs] == [(file.id, raw.id)]
    assert [r["type"] for r in commit.extra] == ["step", "step_output"]
    assert [i.id for i in file.inputs] == [raw.id]
    # an uncommitted edit: the git commit is kept but no permalink points at other code
    (repo / "pipe_record.py").write_text((repo / "pipe_record.py").read_text() + "\n# edited\n")
    from limnos.core import provenance

    monkeypatch.setattr(provenance, "_GIT_TTL", 0.0)
    edited = mod.measure.call(raw, unit="words").files[0].step
    assert edited.git_commit == sha and edited.permalink is None
    # info shows the step
    text = CliRunner().invoke(app, ["info", file.ref], env={"LIMNOS_LAKE": lake.path}).stdout
    assert "made by step" in text and "pipe_record.measure" in text and "unit=" in text
    info = json.loads(CliRunner().invoke(app, ["info", file.ref, "--json"], env={"LIMNOS_LAKE": lake.path}).stdout)
    assert info["step"]["function"] == "pipe_record.measure" and info["step"]["permalink"].endswith("#L5-L8")


def test_permalinks_for_remote_forms():
    from limnos.core.provenance import permalink

    sha = "0123abcd"
    assert permalink("git@github.com:acme/p.git", sha, "src/x.py", 3, 9) == \
        "https://github.com/acme/p/blob/0123abcd/src/x.py#L3-L9"
    assert permalink("ssh://git@gitlab.com/g/sub/p.git", sha, "x.py", 4, 4) == \
        "https://gitlab.com/g/sub/p/-/blob/0123abcd/x.py#L4"
    assert permalink("https://oauth2:secret@gitlab.example.org/g/p", sha, "a b.py", 1, 2) == \
        "https://gitlab.example.org/g/p/-/blob/0123abcd/a%20b.py#L1-2"
    assert permalink("https://bitbucket.org/a/b.git", sha, "x.py", 1, 2) is None
    assert permalink(None, sha, "x.py", 1, 2) is None


def test_steps_survive_reindex(lake):
    raw = put(lake, "raw/a.txt", "x")
    calls = []

    @lake.step
    def make(src):  # type: ignore[no-untyped-def]
        calls.append(1)
        return pd.DataFrame({"x": [1]})

    first = make.call(raw)
    with pytest.raises(ValueError):
        lake.step(lambda src: (_ for _ in ()).throw(ValueError("x")))(raw)
    before = [(s.id, s.status, s.outputs) for s in lake.steps()]
    lake.reindex(force=True)
    assert [(s.id, s.status, s.outputs) for s in lake.steps()] == before
    again = make.call(raw)
    assert again.hit and again.files[0].id == first.files[0].id and len(calls) == 1


# ------------------------------------------------------------------ lakes
def test_default_lake_and_file_lake(tmp_path, monkeypatch):
    calls = []

    @limnos.step
    def hello(name: str) -> str:
        calls.append(1)
        return f"hello {name}"

    with pytest.raises(limnos.LakeNotFound, match="LIMNOS_LAKE"):
        hello("nobody")
    path = tmp_path / "default"
    limnos.init(str(path)).close()
    monkeypatch.setenv("LIMNOS_LAKE", str(path))
    assert hello("a") == "hello a" and hello("a") == "hello a" and calls == [1]
    other = limnos.init(str(tmp_path / "other"))
    raw = put(other, "raw/a.txt", "x")

    @limnos.step
    def size(src):  # type: ignore[no-untyped-def]
        return src.size

    assert size(raw) == 1  # the File's lake, not the default one
    assert [s.function.rsplit(".", 1)[-1] for s in other.steps()] == ["size"]
    other.close()


def test_steps_pickle_by_reference(modules):
    mod = modules("pipe_pickle", """
        import limnos

        @limnos.step
        def f(x):
            return x
    """)
    assert pickle.loads(pickle.dumps(mod.f)) is mod.f
    cloudpickle = pytest.importorskip("cloudpickle")  # what Dask and Ray use
    assert cloudpickle.loads(cloudpickle.dumps(mod.f)) is mod.f
    # A script's step (module __main__) travels by value and keeps its key.
    ns = {"__name__": "__main__", "limnos": limnos}
    exec(compile("@limnos.step(version=3)\ndef g(x):\n    return x + 1\n", "<script>", "exec"), ns)
    shipped = cloudpickle.loads(cloudpickle.dumps(ns["g"]))
    assert shipped is not ns["g"] and shipped.key(1) == ns["g"].key(1) and shipped.version == 3
    assert shipped.code == ns["g"].code
    raw_lake = limnos.init(str(modules.folder / "lk"))
    with pytest.raises(TypeError, match="bound to an open Lake"):
        pickle.dumps(raw_lake.step(lambda x: x))
    raw_lake.close()


def test_hit_downloads_nothing_until_read(tmp_path):
    remote = str(tmp_path / "remote")
    alice = limnos.init(str(tmp_path / "alice"))
    alice.remotes.add("origin", remote)
    raw = put(alice, "raw/a.txt", "hello")
    calls = []

    def body(src):  # type: ignore[no-untyped-def]
        calls.append(1)
        return src.read_text() * 2, b"bytes"

    assert alice.step(body).call(raw).value == ("hellohello", b"bytes")
    alice.push()
    bob = limnos.init(str(tmp_path / "bob"))
    bob.remotes.add("origin", remote)
    bob.pull(download=False)
    bobs_raw = bob.get("raw/a.txt")
    assert not bobs_raw.is_local
    hit = bob.step(body).call(bobs_raw)
    assert hit.hit and len(calls) == 1
    assert not bobs_raw.is_local and not any(f.is_local for f in hit.files)
    assert hit.value == ("hellohello", b"bytes")  # reading the value downloads it
    assert all(f.is_local for f in hit.files)
    alice.close()
    bob.close()


# ------------------------------------------------------------------ concurrency
CONCURRENT = '''
import json, os, sys, time
import limnos

@limnos.step
def slow(src, tag: str):
    here = os.environ["STEP_DIR"]
    open(os.path.join(here, f"started-{os.getpid()}"), "w").close()
    deadline = time.time() + 60
    # Both processes are inside the function before either returns: both compute.
    while len([n for n in os.listdir(here) if n.startswith("started-")]) < 2 and time.time() < deadline:
        time.sleep(0.02)
    with limnos.output("shared/named.txt") as w:
        w.write_text(src.read_text() + tag)
    return w, {"tag": tag}

if __name__ == "__main__":
    lake = limnos.open(sys.argv[1])
    result = slow.call(lake.get("raw/in.txt"), "x")
    print(json.dumps({"hit": result.hit, "step": result.step_id, "files": [f.id for f in result.files],
                      "value": [result.value[0].read_text(), result.value[1]]}))
'''


def test_concurrent_calls_with_the_same_key(lake, tmp_path):
    put(lake, "raw/in.txt", "in-")
    script = tmp_path / "concurrent_step.py"
    script.write_text(CONCURRENT)
    env = {**os.environ, "STEP_DIR": str(tmp_path / "marks"), "LIMNOS_LAKE": ""}
    os.makedirs(env["STEP_DIR"])
    procs = [subprocess.Popen([sys.executable, str(script), lake.path], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len(os.listdir(env["STEP_DIR"])) == 2  # both computed
    ok = [s for s in lake.steps() if s.status == "ok"]
    assert len(ok) == 1  # one result recorded
    assert results[0]["step"] == results[1]["step"] == ok[0].id
    assert results[0]["files"] == results[1]["files"] == [o["file_id"] for o in ok[0].outputs]
    assert results[0]["value"] == results[1]["value"] == ["in-x", {"tag": "x"}]
    assert [f.version for f in lake.history("shared/named.txt")] == [1]  # never doubled
    assert len(lake.ls("steps/")) == 1
    assert lake.fsck().ok


# ------------------------------------------------------------------ staleness
def test_stale_outputs(lake, modules):
    source = '''
        import limnos

        @limnos.step(version=1)
        def count(src):
            return len(src.read_text())

        @limnos.step
        def first(src):
            return src.read_text()[:1]
    '''
    mod = modules("pipe_stale", source)
    a, b = put(lake, "raw/a.txt", "aaa"), put(lake, "raw/b.txt", "bb")
    out_a, out_b = mod.count.call(a).files[0], mod.count.call(b).files[0]
    out_first = mod.first.call(a).files[0]
    assert lake.stale() == []
    put(lake, "raw/b.txt", "bbbb")  # b changes
    stale = {s.file.id: s.reasons for s in lake.stale()}
    assert stale == {out_b.id: ["input raw/b.txt changed (@1 -> @2)"]}
    put(lake, "raw/b.txt", "bb")  # back to the recorded bytes: no longer stale
    assert lake.stale() == []
    # The code of `count` changes on disk (not imported again: staleness reads the file, never runs it).
    write_module(modules.folder, "pipe_stale", source.replace("len(src.read_text())", "len(src.read_text()) + 1"))
    stale = {s.file.id: s.reasons for s in lake.stale()}
    assert set(stale) == {out_a.id, out_b.id}
    assert stale[out_a.id] == ["code of pipe_stale.count changed"]
    write_module(modules.folder, "pipe_stale", source.replace("version=1", "version=2"))
    assert {s.file.id: s.reasons for s in lake.stale()} == {
        out_a.id: ["version changed (1 -> 2)"], out_b.id: ["version changed (1 -> 2)"]}
    write_module(modules.folder, "pipe_stale", source)
    assert lake.stale() == []
    result = CliRunner().invoke(app, ["status", "--steps", "--json"], env={"LIMNOS_LAKE": lake.path})
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    put(lake, "raw/a.txt", "changed")
    result = CliRunner().invoke(app, ["status", "--steps"], env={"LIMNOS_LAKE": lake.path})
    assert result.exit_code == 1  # stale outputs: something changed
    assert out_a.ref in result.stdout and out_first.ref in result.stdout and "raw/a.txt changed" in result.stdout
    assert "2 step outputs are stale" in result.stdout
    bad = CliRunner().invoke(app, ["status"], env={"LIMNOS_LAKE": lake.path})
    assert bad.exit_code == 1 and "--steps" in bad.stderr


# ------------------------------------------------------------------ typing
TYPED_SNIPPET = '''
import limnos
from limnos import File
from limnos.steps.step import StepCall


@limnos.step
def clean(raw: File, min_sales: int = 0) -> dict[str, int]:
    return {}


@limnos.step(version=2, allow_pickle=True)
def load(path: str, *, rows: int | None = None) -> list[float]:
    return []


class Model:
    @limnos.step
    def fit(self, data: list[float], depth: int = 3) -> float:
        return 0.0


lake = limnos.open()


@lake.step
def bound(n: int) -> bytes:
    return b""


@lake.step(version=3)
def bound_v(n: int) -> set[int]:
    return set()


raw = lake.get("raw/sales.csv")
reveal_type(bound(1))
reveal_type(bound_v(1))
bound("one")  # E: arg-type
reveal_type(clean(raw, min_sales=10))
reveal_type(load("x.csv", rows=5))
reveal_type(clean.call(raw))
reveal_type(load.key("x.csv"))
reveal_type(Model().fit([1.0], depth=2))
result: StepCall = load.call("y.csv")
clean(raw, min_sales="ten")  # E: arg-type
clean("not a file")  # E: arg-type
load(3)  # E: arg-type
load("x.csv", 5)  # E: call-arg
clean.key(raw, colour="red")  # E: call-arg
Model().fit("no")  # E: arg-type
'''


def test_step_keeps_the_function_signature_for_type_checkers(tmp_path):
    """@step, @step(...) and @lake.step are transparent to mypy: same parameters, same return type; call() and key() too."""
    mypy_api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "typed_steps.py"
    snippet.write_text(TYPED_SNIPPET)
    src = pathlib.Path(limnos.__file__).resolve().parents[1]  # the limnos under test, not an installed copy
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {src}\npython_version = 3.10\nfollow_imports = silent\n"
                      f"ignore_missing_imports = True\ncache_dir = {tmp_path / 'mypy-cache'}\n")
    stdout, stderr, _status = mypy_api.run([str(snippet), "--config-file", str(config), "--no-error-summary"])
    assert stderr == ""
    revealed = [line.split('Revealed type is "', 1)[1].rstrip('"').replace("builtins.", "")  # older mypy prints it
                for line in stdout.splitlines() if "Revealed type is" in line]
    assert revealed == ["bytes", "set[int]", "dict[str, int]", "list[float]", "limnos.steps.step.StepCall", "str",
                        "float"], stdout
    errors = sorted((int(line.split(":")[1]), line.rsplit("[", 1)[1].rstrip("]"))
                    for line in stdout.splitlines() if ": error: " in line)
    expected = sorted((n, line.split("# E: ")[1]) for n, line in enumerate(TYPED_SNIPPET.splitlines(), 1)
                      if "# E: " in line)
    assert errors == expected, stdout
