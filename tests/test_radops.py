"""radops parity: the originator's identity, ``rm`` of a file with dependents, ``add`` from a URL.

Identity tests point git at a config file of their own (``GIT_CONFIG_GLOBAL``,
no system config) and run outside any repository, so the machine's own git
settings never decide the result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import limnos
from helpers import lake_state
from limnos.cli.main import app
from limnos.core import provenance

runner = CliRunner()


# ------------------------------------------------------------------ identity
@pytest.fixture
def git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty global git config of the test's own, and no system config: git's user.email is unset."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv(provenance.USER_EMAIL_ENV, raising=False)
    return config


def _made_by(lake: limnos.Lake, name: str) -> limnos.File:
    """A file written in a fresh run, so the run's provenance is collected now, under the test's settings."""
    with lake.run(), lake.create(name) as w:
        w.write_text(name)
    assert w.file is not None
    return w.file


def test_originator_is_git_email_then_env_then_os_user(lake: limnos.Lake, git_config: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    os_user = provenance.os_user()
    assert _made_by(lake, "a.txt").user == os_user  # no git email, no variable: the login name, as before

    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "  ci@example.org \n")
    assert _made_by(lake, "b.txt").user == "ci@example.org"

    git_config.write_text("[user]\n\temail = alice@example.org\n")
    f = _made_by(lake, "c.txt")
    assert f.user == "alice@example.org"  # git's setting comes before the variable
    assert f.run["user"] == "alice@example.org"
    assert lake.get("c.txt").user == "alice@example.org"  # read back from the catalog


def test_originator_refuses_junk_values(git_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "evil\x1b[31m@example.org")
    assert provenance.originator(".") == provenance.os_user()
    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "x" * 400 + "@example.org")
    assert provenance.originator(".") == provenance.os_user()
    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "   ")
    assert provenance.originator(".") == provenance.os_user()


def test_query_by_user_and_steps_record_it(lake: limnos.Lake, git_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "bob@example.org")
    _made_by(lake, "bob.txt")
    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "carol@example.org")
    _made_by(lake, "carol.txt")
    with lake.run():
        lake.set_metadata("carol.txt", {"kind_of": "x"})
    assert [f.name for f in lake.query(user="bob@example.org")] == ["bob.txt"]
    assert [f.name for f in lake.query(user="carol@example.org", kind_of="x")] == ["carol.txt"]
    assert list(lake.query(user="nobody@example.org")) == []
    assert lake.query(user="bob@example.org").dataframe["user"].tolist() == ["bob@example.org"]

    with lake.run():
        @lake.step
        def make() -> bytes:
            return b"made"

        assert make() == b"made"
    assert [r.user for r in lake.steps()] == ["carol@example.org"]


def test_cli_info_and_query_show_the_email(sqlite_lake: limnos.Lake, git_config: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(provenance.USER_EMAIL_ENV, "dana@example.org")
    _made_by(sqlite_lake, "d.txt")
    args = ["--lake", sqlite_lake.path]
    shown = runner.invoke(app, [*args, "info", "d.txt"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "dana@example.org" in shown.output
    assert "dana@example.org on " in shown.output  # the run panel: who, on which host
    found = runner.invoke(app, [*args, "query", "user=dana@example.org", "--json"])
    assert found.exit_code == 0, found.output
    assert [f["name"] for f in json.loads(found.stdout)] == ["d.txt"]


# ------------------------------------------------------------------ rm with dependents
def _chain(lake: limnos.Lake) -> None:
    """raw -> clean -> model, and raw -> stats (each made in a run that read its input)."""
    with lake.create("raw.csv") as w:
        w.write_text("raw")
    for src, dst in (("raw.csv", "clean.csv"), ("clean.csv", "model.bin"), ("raw.csv", "stats.json")):
        with lake.run(name=dst):
            lake.get(src).read_text()
            with lake.create(dst) as w:
                w.write_text(dst)


def test_rm_refuses_a_file_with_dependents_and_writes_nothing(lake: limnos.Lake) -> None:
    _chain(lake)
    before = lake_state(lake)
    with pytest.raises(limnos.FileHasDependents) as refused:
        lake.rm("raw.csv")
    err = refused.value
    assert err.ref == "raw.csv@1"
    assert err.dependents[:2] == ["clean.csv@1", "stats.json@1"]  # nearest first
    assert sorted(err.dependents) == ["clean.csv@1", "model.bin@1", "stats.json@1"]
    assert "clean.csv@1" in err.message and "cascade=True" in str(err) and isinstance(err, PermissionError)
    assert lake_state(lake) == before
    assert lake.rm("model.bin")[0].ref == "model.bin@1"  # nothing was made from it: no question asked
    with pytest.raises(limnos.LimnosError):
        lake.rm("raw.csv", cascade=True, keep_dependents=True)
    assert sorted(f.ref for f in lake.ls()) == ["clean.csv@1", "raw.csv@1", "stats.json@1"]


def test_rm_cascade_deletes_the_versions_made_from_it(lake: limnos.Lake) -> None:
    _chain(lake)
    with lake.create("clean.csv") as w:  # a second version of clean.csv, not made from raw.csv
        w.write_text("clean by hand")
    deleted = lake.rm("raw.csv", cascade=True)
    assert deleted[0].ref == "raw.csv@1"
    assert sorted(f.ref for f in deleted) == ["clean.csv@1", "model.bin@1", "raw.csv@1", "stats.json@1"]
    assert [f.ref for f in lake.ls()] == ["clean.csv@2"]


def test_rm_keep_dependents_lineage_says_removed(lake: limnos.Lake) -> None:
    _chain(lake)
    lake.rm("clean.csv", keep_dependents=True)
    model = lake.get("model.bin")
    assert model.inputs == []
    assert [f.ref for f in model.removed_inputs] == ["clean.csv@1"]
    graph = lake.lineage("model.bin")
    removed = [n for n in graph.files() if n.get("removed")]
    assert [(n["name"], n["version"]) for n in removed] == [("clean.csv", 1)]
    # the walk goes on through the removed file: raw.csv is still where model.bin came from
    assert sorted(n["name"] for n in graph.files()) == ["clean.csv", "model.bin", "raw.csv"]
    assert "clean.csv@1 (removed)" in graph.to_mermaid() and "clean.csv@1 (removed)" in graph.to_dot()
    assert not any(n.get("removed") for n in lake.lineage("raw.csv", "down").files() if n["name"] != "clean.csv")
    # raw.csv's dependents still count what was made through the removed file
    with pytest.raises(limnos.FileHasDependents) as refused:
        lake.rm("raw.csv")
    assert sorted(refused.value.dependents) == ["model.bin@1", "stats.json@1"]


def test_rm_cli_refuses_lists_and_takes_the_flags(sqlite_lake: limnos.Lake) -> None:
    _chain(sqlite_lake)
    args = ["--lake", sqlite_lake.path]
    refused = runner.invoke(app, [*args, "rm", "raw.csv"])
    assert refused.exit_code == 1
    assert "clean.csv@1" in refused.output and "--cascade" in refused.output and "--keep-dependents" in refused.output
    both = runner.invoke(app, [*args, "rm", "raw.csv", "--cascade", "--keep-dependents"])
    assert both.exit_code != 0 and len(sqlite_lake.ls()) == 4

    kept = runner.invoke(app, [*args, "rm", "clean.csv", "--keep-dependents"])
    assert kept.exit_code == 0, kept.output
    lineage = runner.invoke(app, [*args, "lineage", "model.bin"], env={"COLUMNS": "200"})
    assert lineage.exit_code == 0, lineage.output
    assert "clean.csv@1 (removed)" in lineage.output and "(none)" not in lineage.output
    down = runner.invoke(app, [*args, "lineage", "raw.csv", "--down"], env={"COLUMNS": "200"})
    assert down.exit_code == 0, down.output
    assert "clean.csv@1 (removed)" in down.output
    info = runner.invoke(app, [*args, "info", "model.bin"], env={"COLUMNS": "200"})
    assert "clean.csv@1 (removed)" in info.output
    as_json = json.loads(runner.invoke(app, [*args, "info", "model.bin", "--json"]).stdout)
    assert [i["ref"] for i in as_json["removed_inputs"]] == ["clean.csv@1"]

    gone = runner.invoke(app, [*args, "rm", "raw.csv", "--cascade", "--json"])
    assert gone.exit_code == 0, gone.output
    assert sorted(f["name"] for f in json.loads(gone.stdout)) == ["model.bin", "raw.csv", "stats.json"]
    assert sqlite_lake.ls() == []
