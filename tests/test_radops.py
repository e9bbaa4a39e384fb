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
