"""The CLI for scripts and for reading: help text, --format/--limit, -q/-v, status exit codes, shell completion.

Help is checked on every command the app has, walked from the real click
command, so a new command is covered the day it is added. Completion runs as
the shell runs it: a real ``limnos`` process with ``_LIMNOS_COMPLETE`` set.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import limnos
from limnos.cli.app import app
from limnos.cli.completion import MAX_CANDIDATES, ref_candidates
from limnos.cli.helptext import wrap

LIMNOS_BIN = Path(sys.executable).with_name("limnos")


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def command_tree() -> dict[tuple[str, ...], Any]:
    """Every group and command of ``limnos`` (the root as ``()``), by path."""
    found: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def command_paths() -> list[tuple[str, ...]]:
    return list(command_tree())


def help_text(path: tuple[str, ...], columns: int) -> str:
    result = run(*path, "--help", env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


# --------------------------------------------------------------------- help
def test_every_help_reads_as_text_not_python() -> None:
    tree = command_tree()
    assert len(tree) > 30  # the walk reached the commands of every module
    for path, command in tree.items():
        text = help_text(path, 80)
        shown = " ".join(("limnos", *path))
        # No typer/python type names: <bool>, <str>, <int range>, <list[str]>, {path} placeholders.
        assert not re.search(r"<[a-z][a-z _\[\]|,]*>", text), f"{shown}:\n{text}"
        assert not re.search(r"\b(list|tuple|dict)\[", text), f"{shown}:\n{text}"
        assert not re.search(r"\{[a-z_]+\}", text), f"{shown}:\n{text}"
        words = " ".join(text.split())
        for sub in getattr(command, "commands", {}).values():  # a group lists each command's whole first sentence
            first = re.split(r"\.\s", " ".join(sub.help.split("\n\n")[0].split()))[0].rstrip(".")
            assert first in words, f"{shown}: {first!r} is cut short"
        if not hasattr(command, "commands"):  # a command (groups pass -q/-v on to theirs)
            for option in ("-q, --quiet", "-v, --verbose", "-h, --help"):
                assert option in text, f"{shown} lacks {option}"


def test_help_wraps_between_words_only() -> None:
    for path in command_paths():
        wide, narrow = help_text(path, 200), help_text(path, 50)
        # Wrapping only moves line breaks: the words are the very same, none cut (not at a hyphen either).
        assert wide.split() == narrow.split(), " ".join(("limnos", *path))
        assert not re.search(r"[A-Za-z]-\n", narrow), narrow


def test_wrap_keeps_words_whole_and_examples_as_written() -> None:
    text = "a --no-team option and averyveryverylongwordthatcannotfit here"
    assert wrap(text, 12) == ["a --no-team", "option and", "averyveryverylongwordthatcannotfit", "here"]
    assert wrap("para one two\n\n\b\n  limnos x   y\n  limnos z", 5) == ["para one", "two", "", "  limnos x   y", "  limnos z"]


def test_examples_print_one_per_line_in_full() -> None:
    text = help_text(("init",), 50)
    examples = text[text.index("Examples:"):].splitlines()[1:]
    assert "  limnos init /data/lake --catalog postgresql://me@db/lake" in examples  # longer than 50, kept whole
    assert "  limnos init myproject  (makes myproject/.limnos)" in examples


# ------------------------------------------------------------------ listings
@pytest.fixture
def lake(tmp_path: Path) -> Any:
    lake = limnos.init(str(tmp_path / "lake"))
    for name in ("b/2.txt", "a/1.txt", "b/1.txt", "c.txt", "a/2.txt"):
        with lake.create(name, metadata={"n": len(name)}) as w:
            w.write_text(name)
    with lake.create("c.txt") as w:
        w.write_text("second version")
    yield lake
    lake.close()


def env_for(lake: Any) -> dict[str, str]:
    return {"LIMNOS_LAKE": lake.path}


def test_ls_formats_and_limit(lake: Any) -> None:
    env = env_for(lake)
    tsv = run("ls", "--format", "tsv", env=env).stdout.splitlines()
    assert [line.split("\t")[0] for line in tsv] == ["a/1.txt", "a/2.txt", "b/1.txt", "b/2.txt", "c.txt"]
    assert tsv[4].split("\t")[1] == "2"
    as_json = json.loads(run("ls", "--format", "json", env=env).stdout)
    assert as_json == json.loads(run("ls", "--json", env=env).stdout)
    assert [f["name"] for f in as_json] == [line.split("\t")[0] for line in tsv]
    table = run("ls", "--format", "table", env=env).stdout  # a table even though stdout is not a terminal
    assert re.search(r"^\s*name\s+version\s+size", table, re.MULTILINE) and "\t" not in table
    limited = run("ls", "--limit", "2", env=env).stdout.splitlines()
    assert [line.split("\t")[0] for line in limited] == ["a/1.txt", "a/2.txt"]
    assert json.loads(run("ls", "--limit", "1", "--json", env=env).stdout)[0]["name"] == "a/1.txt"
    none = run("ls", "--limit", "0", env=env)
    assert none.exit_code == 0 and none.stdout == ""


def test_values_are_still_checked(lake: Any) -> None:
    env = env_for(lake)
    for args in (["ls", "--limit", "-1"], ["ls", "--limit", "x"], ["get", "a/1.txt", "--link", "bogus"],
                 ["--lake", lake.path, "steps", "--limit", "1.5"]):
        result = run(*args, env=env)
        assert result.exit_code == 2 and result.stdout == "", args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert run("ls", "-vvv", "--limit", "1", env=env).exit_code == 0  # a count is an int already


def test_json_and_another_format_is_refused(lake: Any) -> None:
    result = run("ls", "--json", "--format", "tsv", env=env_for(lake))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --json and --format tsv disagree")
    assert result.stdout == ""
    bad = run("ls", "--format", "csv", env=env_for(lake))
    assert bad.exit_code == 2 and bad.stdout == ""


def test_history_query_and_steps_formats(lake: Any) -> None:
    env = env_for(lake)
    history = run("history", "c.txt", "--format", "tsv", env=env).stdout.splitlines()
    assert [line.split("\t")[1] for line in history] == ["1", "2"]
    newest = run("history", "c.txt", "--limit", "1", "--format", "tsv", env=env).stdout.splitlines()
    assert [line.split("\t")[1] for line in newest] == ["2"]
    query = run("query", "n == 7", "--format", "tsv", env=env).stdout.splitlines()
    assert sorted(line.split("\t")[0] for line in query) == ["a/1.txt", "a/2.txt", "b/1.txt", "b/2.txt"]
    assert all(len(line.split("\t")) == 6 for line in query)
    steps = run("steps", "--format", "json", env=env)
    assert steps.exit_code == 0 and json.loads(steps.stdout) == []


def test_datasets_and_remotes_print_tsv(lake: Any, tmp_path: Path) -> None:
    env = env_for(lake)
    lake.remotes.add("origin", str(tmp_path / "remote"), default=True)
    lake.remotes.add("backup", str(tmp_path / "backup"))
    lines = run("remote", "list", "--format", "tsv", env=env).stdout.splitlines()
    cells = sorted(line.split("\t") for line in lines)
    assert [(c[0], c[2]) for c in cells] == [("backup", "-"), ("origin", "*")]
    empty = run("datasets", "--format", "tsv", env=env)
    assert empty.exit_code == 0 and empty.stdout == ""


# ------------------------------------------------------------ -q, -v, status
def test_quiet_hides_messages_and_verbose_shows_the_sql(lake: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIMNOS_PROGRESS", raising=False)  # as a caller's own process has it
    env = env_for(lake)
    (tmp_path / "new.txt").write_text("new")
    loud = run("add", str(tmp_path / "new.txt"), "--name", "new.txt", env=env)
    assert loud.exit_code == 0 and "added new.txt@1" in loud.stderr
    (tmp_path / "new.txt").write_text("newer")
    quiet = run("add", str(tmp_path / "new.txt"), "--name", "new.txt", "-q", env=env)
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""
    assert lake.get("new.txt").version == 2  # -q silenced it; it still did the work
    assert "LIMNOS_PROGRESS" not in os.environ  # -q turned bars off for its own command only
    verbose = run("ls", "-vv", "--limit", "1", env=env)
    assert verbose.exit_code == 0 and "SELECT" in verbose.stderr and verbose.stdout.startswith("a/1.txt\t")
    plain = run("ls", "--limit", "1", env=env)
    assert "SELECT" not in plain.stderr


def test_status_of_a_folder_exits_1_when_something_changed(lake: Any, tmp_path: Path) -> None:
    env = env_for(lake)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "x.csv").write_text("1,2\n")
    assert run("add", str(folder), "--name", "data", "-q", env=env).exit_code == 0
    clean = run("status", str(folder), "--name", "data", env=env)
    assert clean.exit_code == 0, clean.stderr
    (folder / "x.csv").write_text("1,2,3\n")
    changed = run("status", str(folder), "--name", "data", env=env)
    assert changed.exit_code == 1 and "x.csv" in changed.stdout and changed.stderr == ""
    quiet = run("status", str(folder), "--name", "data", "-q", env=env)
    assert quiet.exit_code == 1 and quiet.stdout == "" and quiet.stderr == ""
    as_json = run("status", str(folder), "--name", "data", "--json", env=env)
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["modified"] == ["data/x.csv"]
    assert run("status", "--steps", env=env).exit_code == 0  # no step outputs: nothing stale


def test_status_of_a_project_exits_1_when_a_tracked_file_changed(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    assert run("init", "--project", "-q").exit_code == 0
    data = tmp_path / "d.csv"
    data.write_text("a\n")
    assert run("track", "d.csv", "-q").exit_code == 0
    assert run("status").exit_code == 0
    data.write_text("b\n")
    changed = run("status", "-q")
    assert changed.exit_code == 1 and changed.stdout == "" and changed.stderr == ""
    data.unlink()
    assert run("status").exit_code == 1  # missing counts as changed


def test_status_error_prints_an_error_line(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    result = run("status")  # no project here: an error, not a difference
    assert result.exit_code == 1 and result.stderr.startswith("error: no limnos.lock")


# ---------------------------------------------------------------- completion
def complete(words: str, cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    """What bash would offer for the last word of ``words`` (a real limnos process, as the shell runs it)."""
    cmd = [str(LIMNOS_BIN)] if LIMNOS_BIN.exists() else [sys.executable, "-m", "limnos"]
    parts = words.split(" ")
    full_env = {**os.environ, "_LIMNOS_COMPLETE": "complete_bash", "COMP_WORDS": words,
                "COMP_CWORD": str(len(parts) - 1), **(env or {})}
    full_env.pop("LIMNOS_LAKE", None) if env is None or "LIMNOS_LAKE" not in env else None
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return [line.split(",", 1)[-1] for line in proc.stdout.splitlines() if line]


def test_completion_offers_names_a_folder_at_a_time_and_versions(lake: Any, tmp_path: Path) -> None:
    where = f"--lake {lake.path}"
    assert complete(f"limnos {where} info ", tmp_path) == ["a/", "b/", "c.txt"]
    assert complete(f"limnos {where} info b", tmp_path) == ["b/"]
    assert complete(f"limnos {where} get b/", tmp_path) == ["b/1.txt", "b/2.txt"]
    assert complete(f"limnos {where} cat c.txt@", tmp_path) == ["c.txt@2", "c.txt@1"]
    assert complete(f"limnos {where} history a/2", tmp_path) == ["a/2.txt"]
    assert complete("limnos info a/", tmp_path, env={"LIMNOS_LAKE": lake.path}) == ["a/1.txt", "a/2.txt"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_in_zsh_and_fish(lake: Any, tmp_path: Path, shell: str) -> None:
    cmd = [str(LIMNOS_BIN)] if LIMNOS_BIN.exists() else [sys.executable, "-m", "limnos"]
    env = {**os.environ, "_LIMNOS_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_FISH_ACTION": "get-args",
           "_TYPER_COMPLETE_ARGS": f"limnos --lake {lake.path} cat b/"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert re.findall(r"b/[12]\.txt", proc.stdout) == ["b/1.txt", "b/2.txt"], proc.stdout


def test_completion_of_remotes_and_without_a_lake(lake: Any, tmp_path: Path) -> None:
    lake.remotes.add("origin", str(tmp_path / "r1"), default=True)
    lake.remotes.add("other", str(tmp_path / "r2"))
    assert sorted(complete(f"limnos --lake {lake.path} push --remote o", tmp_path)) == ["origin", "other"]
    assert complete(f"limnos --lake {lake.path} remote remove or", tmp_path) == ["origin"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert complete("limnos info a", empty) == []  # no lake here: nothing offered, and no error in the shell
    assert complete(f"limnos --lake {tmp_path / 'nope'} info a", tmp_path) == []


def test_completion_stops_reading_at_its_limit(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(MAX_CANDIDATES + 20):
        (folder / f"{i:05d}.txt").write_text(str(i))
    lake = limnos.init(str(tmp_path / "big"))
    try:
        lake.add(str(folder), name="f")
        found = ref_candidates(lake, "f/")
        assert len(found) == MAX_CANDIDATES and found[0] == "f/00000.txt"
        assert ref_candidates(lake, "") == ["f/"]
    finally:
        lake.close()
