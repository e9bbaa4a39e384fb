"""The ``limnos`` command line, end to end on real lakes (no mocks).

Most cases go through ``typer.testing.CliRunner`` (in-process, separate
stdout/stderr); a few through a real ``limnos`` subprocess, as a user runs it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

import limnos
from limnos.cli import errors as cli_errors
from limnos.cli.app import HELP_ORDER, app, parse_pairs, parse_value
from limnos.cli.errors import CliError
from limnos.errors import FileNotFound, LimnosError

LIMNOS_BIN = Path(sys.executable).with_name("limnos")


# ------------------------------------------------------------------ helpers
def cli(*args: str, ok: bool = True, env: dict | None = None):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, list(args), env=env)
    if ok:
        assert result.exit_code == 0, f"limnos {' '.join(args)} -> {result.exit_code}\n{result.stderr}\n{result.stdout}"
    return result


def cli_json(*args: str):  # type: ignore[no-untyped-def]
    return json.loads(cli(*args, "--json").stdout)


def run_bin(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    cmd = [str(LIMNOS_BIN)] if LIMNOS_BIN.exists() else [sys.executable, "-m", "limnos"]
    proc = subprocess.run([*cmd, *args], capture_output=True, env={**os.environ, **(env or {})}, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def assert_one_line_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    err = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def lake_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty lake made by ``limnos init DIR`` (in DIR/.limnos), chosen for later commands through $LIMNOS_LAKE=DIR."""
    path = tmp_path / "lake"
    result = cli("init", str(path))
    assert "created a lake" in result.stderr and result.stdout == ""
    monkeypatch.setenv("LIMNOS_LAKE", str(path))
    return path / ".limnos"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "work" / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "b.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "sub" / "c.txt").write_text("hello\r\nworld\n")
    return folder


@pytest.fixture
def added(lake_dir: Path, data: Path) -> Path:
    result = cli("add", str(data), "--name", "raw", "--meta", "project=x", "--meta", "n=3")
    assert result.stdout == "" and "3 new versions" in result.stderr
    return lake_dir


# --------------------------------------------------------- key=value parser
@pytest.mark.parametrize("text, expected", [
    ("42", 42), ("-7", -7), ("0", 0), ("+3", 3),
    ("0.5", 0.5), ("-1.25", -1.25), ("1e-3", 0.001), (".5", 0.5), ("2.", 2.0),
    ("true", True), ("false", False), ("True", True), ("FALSE", False),
    ("hello", "hello"), ("", ""), ("007", "007"), ("1.2.3", "1.2.3"), ("nan", "nan"), ("inf", "inf"),
    ("2024-01-02", "2024-01-02"), ('"42"', "42"), ('"true"', "true"), ("a b", "a b"),
    ('{"lr": 0.1, "layers": [1, 2]}', {"lr": 0.1, "layers": [1, 2]}), ("[1, 2, 3]", [1, 2, 3]), ("[]", []),
])
def test_parse_value_types(text, expected) -> None:  # type: ignore[no-untyped-def]
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text, expected", [
    ("2024-01-02T03:04:05Z", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("2024-01-02T03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),  # naive is UTC
    ("2024-01-02 03:04", dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.timezone.utc)),
    ("2024-01-02T05:04:05.250+02:00", dt.datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=dt.timezone.utc)),
])
def test_parse_value_datetimes(text, expected) -> None:  # type: ignore[no-untyped-def]
    value = parse_value(text)
    assert isinstance(value, dt.datetime) and value.tzinfo is not None and value == expected


@pytest.mark.parametrize("text", ["{not json", "[1, 2", "2024-13-45T00:00:00"])
def test_parse_value_rejects_broken_json_and_dates(text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CliError):
        parse_value(text)


def test_parse_pairs() -> None:
    assert parse_pairs(["a=1", "b=x=y", "c=", "a=2"]) == {"a": 2, "b": "x=y", "c": ""}
    assert parse_pairs(None) == {}
    for bad in ("novalue", "=1"):
        with pytest.raises(CliError, match="key=value"):
            parse_pairs([bad])


# -------------------------------------------------------------------- help
def command_tree() -> list[tuple[tuple[str, ...], Any]]:
    """Every group and command of ``limnos`` (the root as ``()``), walked from the real click command."""
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def test_help_lists_every_command_with_an_example() -> None:
    tree = command_tree()
    paths = {path for path, _ in tree}
    # The walk reaches nested groups and the commands registered by every command module.
    for path in [("meta", "unset"), ("remote", "remove"), ("cache", "prune"), ("ds", "save-dataset"), ("datasets",),
                 ("track",), ("push",), ("rm",), ("demo",), ("status",)]:
        assert path in paths, path
    groups = [path for path, command in tree if isinstance(command, TyperGroup)]
    assert sorted(groups) == [(), ("cache",), ("ds",), ("meta",), ("remote",)]
    for path, command in tree:
        text = cli(*path, "--help").stdout
        shown = " ".join(("limnos", *path))
        assert "Usage:" in text and re.search(r"^Examples?:\n  limnos ", text, re.MULTILINE), shown
        assert (command.help or "").strip(), f"{shown} has no help text"
        # The example (the epilog) shows this very command at work.
        assert command.epilog and command.epilog.startswith("Example: limnos"), shown
        assert shown in command.epilog, f"{shown}: {command.epilog}"
        for name in getattr(command, "commands", {}):  # a group's help lists each of its commands
            assert re.search(rf"^\W*{re.escape(name)}\s", text, re.MULTILINE), f"{shown} --help lacks {name}"


def test_help_order_places_every_command() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    assert sorted(HELP_ORDER) == sorted(root.commands)  # every command has its place in `limnos --help`
    assert root.list_commands(typer.Context(root)) == list(HELP_ORDER)


def test_version() -> None:
    assert cli("--version").stdout.strip() == f"limnos {limnos.__version__}"


# ------------------------------------------------------------ init and add
def test_init_twice_and_bad_link(tmp_path: Path) -> None:
    cli("init", str(tmp_path / "l1"), "--link", "reflink")
    assert limnos.open(str(tmp_path / "l1")).link == "reflink"
    result = cli("init", str(tmp_path / "l1"), ok=False)
    assert result.exit_code == 1
    assert_one_line_error(result, "already exists")
    assert cli("init", str(tmp_path / "l2"), "--link", "bogus", ok=False).exit_code == 2


def test_init_default_is_found_from_the_cwd(tmp_path: Path) -> None:
    cli("init")
    assert (tmp_path / "work" / ".limnos" / "limnos.yaml").is_file()
    Path("f.txt").write_text("x")
    cli("add", "f.txt")
    assert [f["name"] for f in cli_json("ls")] == ["f.txt"]


def test_add_folder_then_ls(added: Path) -> None:
    files = cli_json("ls")
    assert [f["name"] for f in files] == ["raw/a.csv", "raw/b.bin", "raw/sub/c.txt"]
    assert all(f["version"] == 1 and f["local"] is True for f in files)
    assert files[0]["metadata"] == {"project": "x", "n": 3}
    assert [f["name"] for f in cli_json("ls", "raw/sub/")] == ["raw/sub/c.txt"]
    table = cli("ls").stdout
    for name in ("raw/a.csv", "raw/b.bin", "raw/sub/c.txt", "1.0 kB"):
        assert name in table


def test_add_single_file_unchanged_and_json(lake_dir: Path, data: Path) -> None:
    first = cli("add", str(data / "a.csv"), "--name", "one.csv")
    assert "added one.csv@1" in first.stderr
    again = cli("add", str(data / "a.csv"), "--name", "one.csv")
    assert "unchanged: one.csv@1" in again.stderr
    (data / "a.csv").write_text("x,y\n1,2\n3,4\n")
    out = cli_json("add", str(data / "a.csv"), "--name", "one.csv", "--meta", "rows=2")
    assert out[0]["version"] == 2 and out[0]["metadata"] == {"rows": 2}


def test_add_move_removes_sources(lake_dir: Path, data: Path) -> None:
    cli("add", str(data / "sub"), "--name", "moved", "--move")
    assert not (data / "sub" / "c.txt").exists()
    assert [f["name"] for f in cli_json("ls", "moved/")] == ["moved/c.txt"]


def test_bad_name_writes_nothing(lake_dir: Path, data: Path) -> None:
    for name in ("../x", "a//b", "x/../y"):
        result = cli("add", str(data), "--name", name, ok=False)
        assert result.exit_code == 1
        assert_one_line_error(result, repr(name))
    assert cli_json("ls") == []
    objects = [p for p in (lake_dir / "objects").rglob("*") if p.is_file()]
    assert objects == []


def test_add_bad_metadata_writes_nothing(lake_dir: Path, data: Path) -> None:
    result = cli("add", str(data), "--meta", "name=x", ok=False)  # a reserved key
    assert_one_line_error(result, "'name'")
    result = cli("add", str(data), "--meta", "oops", ok=False)
    assert_one_line_error(result, "key=value")
    assert cli_json("ls") == []


# ------------------------------------------------------------ reading files
def test_info_text_and_json(added: Path) -> None:
    text = cli("info", "raw/a.csv").stdout
    for fragment in ("raw/a.csv@1", "project", "metadata", "made by run", "argv", "inputs: none"):
        assert fragment in text
    info = cli_json("info", "raw/a.csv@1")
    assert info["name"] == "raw/a.csv" and info["ref"] == "raw/a.csv@1" and info["size"] == 8
    assert info["metadata"] == {"project": "x", "n": 3} and info["inputs"] == []
    run = info["provenance"]
    assert run["id"] == info["run"] and isinstance(run["argv"], list) and run["limnos_version"] == limnos.__version__
    dt.datetime.fromisoformat(run["started_at"])  # an ISO string
    assert cli_json("info", info["id"])["id"] == info["id"]


def test_cat_and_get(added: Path, data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["cat", "raw/b.bin"])
    assert result.exit_code == 0 and result.stdout_bytes == (data / "b.bin").read_bytes()
    dest = tmp_path / "out"
    dest.mkdir()
    path = cli("get", "raw/sub/c.txt", str(dest)).stdout.strip()
    assert path == str(dest / "c.txt")
    copy = Path(path)
    assert copy.read_bytes() == (data / "sub" / "c.txt").read_bytes()
    mode = stat.S_IMODE(copy.stat().st_mode)
    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, oct(mode)
    assert not copy.is_symlink()
    again = cli("get", "raw/sub/c.txt", str(dest), ok=False)
    assert_one_line_error(again, "exists")
    link = cli("get", "raw/a.csv", str(dest / "a.csv"), "--link", "symlink").stdout.strip()
    assert Path(link).is_symlink() and Path(link).read_text() == "x,y\n1,2\n"


def test_history(lake_dir: Path, data: Path) -> None:
    src = data / "a.csv"
    for text in ("v1\n", "version 2\n"):
        src.write_text(text)
        cli("add", str(src), "--name", "notes.txt")
    hist = cli_json("history", "notes.txt")
    assert [h["version"] for h in hist] == [1, 2] and hist[0]["hash"] != hist[1]["hash"]
    table = cli("history", "notes.txt").stdout
    assert table.count("notes.txt") == 2
    assert cli("cat", "notes.txt@1").stdout == "v1\n"
    result = cli("history", "nope.txt", ok=False)
    assert_one_line_error(result, "'nope.txt'", "limnos ls")


# ------------------------------------------------------------------ metadata
def test_meta_set_unset_typed(added: Path) -> None:
    result = cli("meta", "set", "raw/a.csv", "count=5", "ratio=0.25", "ok=true", "when=2024-01-02T03:04:05Z",
                 'cfg={"lr": 0.1}', "tags=[1,2]", "zip=02134", "label=hello world")
    assert "count" in result.stderr and result.stdout == ""
    meta = cli_json("info", "raw/a.csv")["metadata"]
    assert meta["count"] == 5 and meta["ratio"] == 0.25 and meta["ok"] is True
    assert dt.datetime.fromisoformat(meta["when"]) == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert meta["cfg"] == {"lr": 0.1} and meta["tags"] == [1, 2] and meta["zip"] == "02134"
    assert meta["label"] == "hello world"
    with limnos.open(str(added)) as lake:  # the library sees the real types
        typed = lake.get("raw/a.csv").metadata
    assert isinstance(typed["when"], dt.datetime) and typed["ok"] is True and isinstance(typed["ratio"], float)

    cli("meta", "unset", "raw/a.csv", "count", "cfg")
    meta = cli_json("info", "raw/a.csv")["metadata"]
    assert "count" not in meta and "cfg" not in meta and meta["ok"] is True
    assert_one_line_error(cli("meta", "unset", "raw/a.csv", "count", ok=False), "'count'")
    # A key's type is fixed by its first value.
    assert_one_line_error(cli("meta", "set", "raw/a.csv", "ok=maybe", ok=False), "'ok'", "bool")
    assert_one_line_error(cli("meta", "set", "raw/a.csv", "justakey", ok=False), "key=value")


def test_query(added: Path) -> None:
    cli("meta", "set", "raw/b.bin", "project=y", "score=0.5")
    rows = cli_json("query", "project=x")
    assert sorted(r["name"] for r in rows) == ["raw/a.csv", "raw/sub/c.txt"]
    assert [r["name"] for r in cli_json("query", "project=y", "score=0.5")] == ["raw/b.bin"]
    assert cli_json("query", "n=3", "project=y")[0]["metadata"]["score"] == 0.5
    assert cli_json("query", "n=4") == []
    assert len(cli_json("query")) == 3  # no filter: every file
    table = cli("query", "project=x", "--format", "table").stdout
    assert "raw/a.csv" in table and "raw/b.bin" not in table and "project" in table
    piped = cli("query", "project=x").stdout  # piped: tab-separated lines, no header
    assert sorted(line.split("\t")[0] for line in piped.splitlines()) == ["raw/a.csv", "raw/sub/c.txt"]
    result = cli("query", "projekt=x", ok=False)
    assert_one_line_error(result, "'projekt'", "project")
    assert "no file matches" in cli("query", "n=99").stderr


def test_query_latest(lake_dir: Path, data: Path) -> None:
    src = data / "a.csv"
    cli("add", str(src), "--name", "t.csv", "--meta", "kind_=table")
    src.write_text("changed\n")
    cli("add", str(src), "--name", "t.csv", "--meta", "kind_=table")
    assert [r["version"] for r in cli_json("query", "kind_=table")] == [1, 2]
    assert [r["version"] for r in cli_json("query", "kind_=table", "--latest")] == [2]
    # "latest" is also a fine metadata key: it does not clash with the --latest flag.
    cli("meta", "set", "t.csv", "latest=true")
    assert [r["version"] for r in cli_json("query", "latest=true")] == [2]


# ------------------------------------------------------------------ lineage
@pytest.fixture
def pipeline(added: Path) -> Path:
    """raw/a.csv, raw/b.bin -> run "clean" -> clean/out.txt -> run "report" -> report.txt."""
    with limnos.open(str(added)) as lake:
        with lake.run(name="clean"):
            text = lake.get("raw/a.csv").read_text() + str(len(lake.get("raw/b.bin").read_bytes()))
            with lake.create("clean/out.txt") as w:
                w.write_text(text)
        with lake.run(name="report"), lake.create("report.txt") as w:
            w.write_text(lake.get("clean/out.txt").read_text().upper())
    return added


def test_lineage_text(pipeline: Path) -> None:
    out = cli("lineage", "clean/out.txt").stdout
    for fragment in ("input files", "created by", "output", "raw/a.csv@1", "raw/b.bin@1", "clean/out.txt@1",
                     "run clean", "limnos " + limnos.__version__, "──▶"):
        assert fragment in out, fragment
    assert "lineage (upstream)" not in out  # one level: no tree
    deep = cli("lineage", "report.txt").stdout
    assert "run report" in deep and "lineage (upstream)" in deep and "raw/a.csv@1" in deep
    shallow = cli("lineage", "report.txt", "--depth", "1").stdout
    assert "clean/out.txt@1" in shallow and "raw/a.csv" not in shallow
    down = cli("lineage", "raw/a.csv", "--down").stdout
    assert "used by" in down and "clean/out.txt@1" in down and "report.txt@1" in down
    leaf = cli("lineage", "report.txt", "--down").stdout
    assert "no file in the lake was made from report.txt@1" in leaf
    source = cli("lineage", "raw/a.csv").stdout
    assert "(none)" in source and "raw/a.csv@1" in source


def test_lineage_dot_mermaid_json(pipeline: Path) -> None:
    dot = cli("lineage", "report.txt", "--format", "dot").stdout
    lines = dot.strip().splitlines()
    assert lines[0] == "digraph lineage {" and lines[-1] == "}"
    assert sum("->" in line for line in lines) == 5  # a, b -> clean -> out -> report -> report.txt
    assert dot.count("{") == dot.count("}") and '"raw/a.csv@1"' in dot and '"report.txt@1"' in dot
    mermaid = cli("lineage", "report.txt", "-f", "mermaid").stdout.strip().splitlines()
    assert mermaid[0] == "flowchart LR"
    assert sum("-->" in line for line in mermaid) == 5
    assert any('["report.txt@1"]' in line for line in mermaid)
    graph = json.loads(cli("lineage", "report.txt", "--format", "json").stdout)
    names = {n["name"] for n in graph["nodes"] if n["type"] == "file"}
    assert names == {"raw/a.csv", "raw/b.bin", "clean/out.txt", "report.txt"}
    assert len(graph["edges"]) == 5 and graph["root"].startswith("f:")
    assert cli("lineage", "report.txt", "--format", "svg", ok=False).exit_code == 2


# ---------------------------------------------------------- status, checks
def test_status(added: Path, data: Path) -> None:
    assert cli_json("status", str(data), "--name", "raw") == {
        "clean": True, "unchanged": 3, "modified": [], "new": [], "deleted": []}
    (data / "a.csv").write_text("changed!\n")
    (data / "new.txt").write_text("new")
    (data / "sub" / "c.txt").unlink()
    changed = cli("status", str(data), "--name", "raw", "--json", ok=False)
    assert changed.exit_code == 1  # something changed, as 'dvc status' says it
    st = json.loads(changed.stdout)
    assert st["clean"] is False and st["unchanged"] == 1
    assert st["modified"] == ["raw/a.csv"] and st["new"] == ["raw/new.txt"] and st["deleted"] == ["raw/sub/c.txt"]
    text = cli("status", str(data), "--name", "raw", ok=False).stdout
    assert "modified:" in text and "raw/new.txt" in text and "deleted:" in text
    assert_one_line_error(cli("status", str(data / "missing"), ok=False), "does not exist")


def test_fsck(added: Path) -> None:
    report = cli_json("fsck")
    assert report["ok"] is True and report["files"] == 3 and report["missing"] == []
    assert cli_json("fsck", "--read-data")["bytes"] > 1000
    assert cli_json("fsck", "--subset", "50%")["bytes"] > 0
    assert "ok" in cli("fsck").stdout
    assert_one_line_error(cli("fsck", "--subset", "2", ok=False), "subset")
    victim = cli_json("info", "raw/a.csv")["hash"]
    obj = added / "objects" / victim[:2] / victim[2:]
    if obj.exists():
        os.chmod(obj, 0o644)
        obj.unlink()
    else:  # packed (small files of one add share a pack): remove that pack and its index
        for pack in (added / "packs").glob("*.*"):
            if pack.suffix in (".pack", ".idx"):
                pack.unlink()
    result = cli("fsck", "--json", ok=False)
    assert result.exit_code == 1 and victim in json.loads(result.stdout)["missing"]
    assert "problems found" in cli("fsck", ok=False).stdout


def test_gc(added: Path, tmp_path: Path) -> None:
    report = cli_json("gc")
    assert report["dry_run"] is True and report["deleted"] == []
    orphan_src = tmp_path / "orphan.bin"
    orphan_src.write_bytes(b"nobody refers to me")
    with limnos.open(str(added)) as lake:
        digest = lake.store.ingest(str(orphan_src))[0]
        obj = Path(lake.store.path(digest))
    assert cli_json("gc", "--dry-run")["deleted"] == []  # younger than the grace period
    out = cli("gc", "--dry-run", "--grace-days", "0").stdout
    assert "would delete 1" in out and digest in out and obj.exists()
    assert cli_json("gc", "--grace-days", "0")["deleted"] == [digest] and obj.exists()
    done = cli_json("gc", "--yes", "--grace-days", "0")
    assert done["dry_run"] is False and done["deleted"] == [digest] and not obj.exists()
    assert cli_json("fsck")["ok"] is True
    assert_one_line_error(cli("gc", "--dry-run", "--yes", ok=False), "--yes")


def test_reindex_after_deleting_the_catalog(added: Path) -> None:
    before = cli_json("ls")
    assert_one_line_error(cli("reindex", ok=False), "--force")
    for suffix in ("", "-wal", "-shm"):
        path = added / f"catalog.sqlite{suffix}"
        if path.exists():
            path.unlink()
    result = cli("reindex", "--force")
    assert "3 files" in result.stderr
    after = cli_json("ls")
    assert [(f["id"], f["name"], f["version"], f["hash"], f["metadata"]) for f in after] == \
        [(f["id"], f["name"], f["version"], f["hash"], f["metadata"]) for f in before]


# --------------------------------------------------------------------- errors
def test_errors_are_one_line(tmp_path: Path, added: Path) -> None:
    assert_one_line_error(cli("info", "nope.csv", ok=False), "no file 'nope.csv' in the lake", "see 'limnos ls'")
    assert_one_line_error(cli("cat", "raw/a.csv@9", ok=False), "limnos history raw/a.csv")
    assert_one_line_error(cli("ls", "../x", ok=False), "'..'")
    result = cli("ls", ok=False, env={"LIMNOS_LAKE": str(tmp_path / "nowhere")})
    assert result.exit_code == 1
    assert_one_line_error(result, "no lake at", "limnos init")


def test_error_hints_follow_the_message(tmp_path: Path, added: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI shows the library's message with advice in its own words: a registered hint, else the library's
    Python advice turned into the command that does the same."""
    with pytest.raises(FileNotFound) as caught:
        limnos.open(str(added)).get("nope.csv")
    assert caught.value.message == "no file 'nope.csv' in the lake" and caught.value.hint == "see lake.ls()"
    assert "limnos ls" not in str(caught.value)  # the library speaks Python
    assert cli("info", "nope.csv", ok=False).stderr.strip() == "error: no file 'nope.csv' in the lake; see 'limnos ls'"
    monkeypatch.setitem(cli_errors.HINTS, LimnosError, lambda exc: "a hint for every lake error")
    assert_one_line_error(cli("info", "nope.csv", ok=False), "no file 'nope.csv' in the lake; a hint for every lake error")
    monkeypatch.setitem(cli_errors.HINTS, FileNotFound, lambda exc: f"hinted {type(exc).__name__}")  # nearest class wins
    result = cli("info", "nope.csv", ok=False)
    assert result.stderr.strip() == "error: no file 'nope.csv' in the lake; hinted FileNotFound"
    monkeypatch.setitem(cli_errors.HINTS, FileNotFound, lambda exc: None)  # None: the library's advice, as a command
    assert cli("info", "nope.csv", ok=False).stderr.strip() == "error: no file 'nope.csv' in the lake; see 'limnos ls'"
    assert_one_line_error(cli("add", str(tmp_path), "--meta", "oops", ok=False), "key=value")  # not a LimnosError
    assert "hint" not in cli("add", str(tmp_path), "--meta", "oops", ok=False).stderr


def test_every_library_hint_reads_as_a_command() -> None:
    """Each Python hint the library gives becomes a command on the CLI; none stays Python there."""
    from limnos.cli.advice import shell_advice

    cases = {
        "see lake.ls()": "see 'limnos ls'",
        "see lake.history('raw/a.csv')": "see 'limnos history raw/a.csv'",
        "see lake.get('a.csv@2').metadata": "see 'limnos info a.csv@2'",
        "see lake.datasets()": "see 'limnos datasets'",
        "create it with lake.datasource('x', root) or see lake.datasources()":
            "create it with 'limnos ds create x ROOT' or see 'limnos ds list'",
        "see lake.remotes.list()": "see 'limnos remote list'",
        "add one with lake.remotes.add('origin', URL), or push from a machine that has the data":
            "add one with 'limnos remote add origin URL', or push from a machine that has the data",
        "call lake.fsck() to see what else is missing": "run 'limnos fsck' to see what else is missing",
        "read it again to fetch a clean copy from a remote, or call lake.fsck(repair=True)":
            "read it again to fetch a clean copy from a remote, or run 'limnos fsck --repair'",
        "push them from a machine that has them, then call lake.fsck(repair=True) again":
            "push them from a machine that has them, then run 'limnos fsck --repair' again",
        "call lake.gc() to free space": "use 'limnos gc' to free space",
        "call lake.push() again to retry": "run 'limnos push' again to retry",
        "call lake.unlock(ref) first if it really must go": "run 'limnos unlock' on it first if it really must go",
        "call lake.reindex(force=True) to rebuild it from the store":
            "run 'limnos reindex --force' to rebuild it from the store",
        "reopen the lake or call lake.reindex() to roll them forward":
            "reopen the lake or run 'limnos reindex' to roll them forward",
        "create one with limnos.init(), or set LIMNOS_LAKE to its path":
            "run 'limnos init' to create one, or set LIMNOS_LAKE to its path",
        "create one with limnos.init('/data/lake')": "run 'limnos init /data/lake' to create one",
        "call limnos.tracking.init_project(root) in your project's root folder":
            "run 'limnos init --project' in your project's root folder",
        "open it with limnos.open('/data/lake')": "use it with 'limnos --lake /data/lake ls'",
        "pass a new or empty folder, such as limnos.init('proj/.limnos')":
            "pass a new or empty folder, such as 'proj/.limnos'",
        "restore it from a backup or a remote (call lake.fsck() to list every damaged one)":
            "restore it from a backup or a remote (run 'limnos fsck' to list every damaged one)",
        "pass name=": "pass --name NAME",
    }
    assert {k: shell_advice(k) for k in cases} == cases


def test_no_lake_here(monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("ls", ok=False)
    assert result.exit_code == 1
    assert_one_line_error(result, "no lake here", "limnos init")


def test_global_lake_option(tmp_path: Path, data: Path) -> None:
    cli("init", str(tmp_path / "other"))
    cli("--lake", str(tmp_path / "other"), "add", str(data / "a.csv"), "--name", "x.csv")
    assert [f["name"] for f in json.loads(cli("--lake", str(tmp_path / "other"), "ls", "--json").stdout)] == ["x.csv"]


# ----------------------------------------------------------------------- demo
def test_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = cli("demo")
    out = result.stdout
    for fragment in ("1. Create a lake", "input files", "created by", "reports/top_stores.csv@2", "limnos --lake"):
        assert fragment in out, fragment
    lakes = list(tmp_path.glob("limnos-demo-*/lake"))
    assert len(lakes) == 1 and str(lakes[0]) in out
    names = [f["name"] for f in json.loads(cli("--lake", str(lakes[0]), "ls", "--json").stdout)]
    assert "clean/sales.parquet" in names and "reports/top_stores.csv" in names
    assert len(json.loads(cli("--lake", str(lakes[0]), "history", "reports/top_stores.csv", "--json").stdout)) == 2


# ------------------------------------------------------- a real subprocess
def test_subprocess_end_to_end(tmp_path: Path, data: Path) -> None:
    lake = str(tmp_path / "sub-lake")
    env = {"LIMNOS_LAKE": lake, "LIMNOS_PROGRESS": "1"}  # bars are on, but stderr is a pipe: none drawn
    init = run_bin("init", lake, env=env)
    assert init.stdout == b"" and b"created a lake" in init.stderr
    add = run_bin("add", str(data), "--name", "raw", "--meta", "project=x", env=env)
    assert add.stdout == b"" and add.stderr.decode().count("\n") == 1
    files = json.loads(run_bin("ls", "--json", env=env).stdout)
    assert [f["name"] for f in files] == ["raw/a.csv", "raw/b.bin", "raw/sub/c.txt"]
    # python -m limnos is the same command
    cat = subprocess.run([sys.executable, "-m", "limnos", "cat", "raw/sub/c.txt"], capture_output=True,
                         env={**os.environ, **env}, timeout=60)
    assert cat.returncode == 0 and cat.stderr == b""
    assert cat.stdout == (data / "sub" / "c.txt").read_bytes()


def test_subprocess_errors(tmp_path: Path) -> None:
    env = {"LIMNOS_LAKE": str(tmp_path / "l")}
    limnos.init(str(tmp_path / "l")).close()
    proc = run_bin("info", "missing.csv", env=env, check=False)
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode().strip() == "error: no file 'missing.csv' in the lake; see 'limnos ls'"
    debug = run_bin("info", "missing.csv", env={**env, "LIMNOS_DEBUG": "1"}, check=False)
    assert debug.returncode == 1 and b"Traceback" in debug.stderr and b"FileNotFound" in debug.stderr
