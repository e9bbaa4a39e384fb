"""Locks, rm and cascades; pull by script; the sharing commands through the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import limnos
from limnos import FileLocked
from limnos.cli import app


def chain(lake: limnos.Lake) -> None:
    """raw -> clean -> model, and raw -> stats."""
    with lake.create("raw.csv") as w:
        w.write_text("raw")
    with lake.run(name="clean"):
        lake.get("raw.csv").read_text()
        with lake.create("clean.csv") as w:
            w.write_text("clean")
    with lake.run(name="train"):
        lake.get("clean.csv").read_text()
        with lake.create("model.bin") as w:
            w.write_text("model")
    with lake.run(name="stats"):
        lake.get("raw.csv").read_text()
        with lake.create("stats.json") as w:
            w.write_text("{}")


def test_rm_single_keeps_downstream(lake):
    chain(lake)
    deleted = lake.rm("clean.csv", keep_dependents=True)
    assert [f.name for f in deleted] == ["clean.csv"]
    assert [f.name for f in lake.ls()] == ["model.bin", "raw.csv", "stats.json"]
    with pytest.raises(limnos.FileNotFound):
        lake.get("clean.csv")


def test_rm_cascade_and_locks(lake):
    chain(lake)
    lake.lock("model.bin")
    assert lake.is_locked("model.bin")
    with pytest.raises(FileLocked, match=r"model\.bin@1 is locked"):
        lake.rm("raw.csv", cascade=True)
    with pytest.raises(PermissionError):  # FileLocked is a PermissionError too
        lake.rm("model.bin")
    assert len(lake.ls()) == 4, "a refused cascade deletes nothing"
    lake.unlock("model.bin")
    deleted = lake.rm("raw.csv", cascade=True)
    assert sorted(f.name for f in deleted) == ["clean.csv", "model.bin", "raw.csv", "stats.json"]
    assert lake.ls() == []


def test_rm_then_versions_and_gc(lake):
    for text in ("one", "two"):
        with lake.create("x.txt") as w:
            w.write_text(text)
    lake.rm("x.txt@2")
    assert lake.get("x.txt").version == 1 and [f.version for f in lake.history("x.txt")] == [1]
    with lake.create("x.txt") as w:
        w.write_text("three")
    assert lake.get("x.txt").version == 3, "a deleted version number is never reused"
    report = lake.gc(dry_run=False, grace=dt.timedelta(0))
    assert len(report.deleted) == 1  # only gc removes the bytes of the deleted version
    assert lake.fsck(read_data=True).ok


def test_locks_and_deletions_survive_reindex(sqlite_lake):
    lake = sqlite_lake
    chain(lake)
    lake.lock("raw.csv")
    lake.rm("stats.json")
    lake.reindex(force=True)
    assert lake.is_locked("raw.csv") and [f.name for f in lake.ls()] == ["clean.csv", "model.bin", "raw.csv"]


SCRIPT = """
import limnos
lake = limnos.open()
lake.get("inputs/a.txt").read_text()
with lake.create("outputs/made-by-script.txt") as w:
    w.write_text("out")
"""


def test_pull_by_script(tmp_path, monkeypatch):
    remote = str(tmp_path / "remote")
    project = tmp_path / "alice"
    project.mkdir()
    alice = limnos.init(str(project / ".limnos"))
    alice.remotes.add("origin", remote)
    for name in ("inputs/a.txt", "inputs/b.txt"):
        with alice.create(name) as w:
            w.write_text(name)
    (project / "job.py").write_text(SCRIPT)
    subprocess.run([sys.executable, "job.py"], cwd=project, check=True)
    alice.push()
    bob = limnos.init(str(tmp_path / "bob" / ".limnos"))
    bob.remotes.add("origin", remote)
    bob.pull(download=False)
    (tmp_path / "bob" / "job.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path / "bob")
    report = bob.pull(["job.py"])
    assert report.transferred == 1
    assert bob.get("inputs/a.txt").is_local and not bob.get("inputs/b.txt").is_local


def test_sharing_cli(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    run("init", "a")
    run("--lake", "a", "remote", "add", "origin", str(tmp_path / "r"), "-o", "secret=hush-hush-123")
    listed = json.loads(run("--lake", "a", "remote", "list", "--json"))
    assert listed == [{"name": "origin", "url": str(tmp_path / "r"), "options": {"secret": "***"}, "default": True}]
    (tmp_path / "f.txt").write_text("f")
    run("--lake", "a", "add", str(tmp_path / "f.txt"), "--name", "f.txt")
    pushed = json.loads(run("--lake", "a", "push", "--json"))
    assert pushed["transferred"] == 1 and pushed["records"] == 1
    assert json.loads(run("--lake", "a", "push", "--json"))["transferred"] == 0
    run("init", "b")
    run("--lake", "b", "remote", "add", "origin", str(tmp_path / "r"))
    run("--lake", "b", "pull", "--no-download")
    assert [(f["name"], f["local"]) for f in json.loads(run("--lake", "b", "ls", "--json"))] == [("f.txt", False)]
    run("--lake", "b", "pull", "f.txt")
    assert [f["local"] for f in json.loads(run("--lake", "b", "ls", "--json"))] == [True]
    run("--lake", "b", "lock", "f.txt")
    refused = runner.invoke(app, ["--lake", "b", "rm", "f.txt"])
    assert refused.exit_code == 1 and "locked" in refused.stderr
    run("--lake", "b", "unlock", "f.txt")
    assert json.loads(run("--lake", "b", "rm", "f.txt", "--json"))[0]["name"] == "f.txt"
    size = runner.invoke(app, ["--lake", "b", "cache", "prune", "--max-size", "1KB"])
    assert size.exit_code == 1 and "gc" in size.stderr
    with open(os.path.join("a", ".limnos", "limnos.yaml")) as config:  # init DIR made DIR/.limnos
        assert "hush-hush-123" not in config.read()
