"""lazydata (seed 001) as a test: its README's track / add-remote / push / clone / pull walkthrough, with limnos.

The seed's README is /work/shared/seeds/001; docs/migrating/lazydata.md is the
migration page. Names differ only where limnos names things differently:
``from lazydata import track`` is ``from limnos import track``, ``lazydata
init`` is ``limnos init --project``, ``lazydata.yml`` is ``limnos.lock`` and
``lazydata add-remote URL`` is ``limnos remote add origin URL``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import limnos
from helpers import doc_block
from limnos import tracking
from limnos.cli.main import app
from limnos.store import hashing

SRC = str(Path(limnos.__file__).resolve().parents[1])

# The seed's my_script.py; only the import changes (and print's string concatenation, a bug in the seed).
MY_SCRIPT = doc_block("migrating/lazydata.md", "# my_script.py")


@pytest.fixture(autouse=True)
def _close_projects():  # type: ignore[no-untyped-def]
    yield
    tracking.close_projects()


def python(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "LIMNOS_PROGRESS": "0"}
    env.pop("LIMNOS_LAKE", None)
    proc = subprocess.run([sys.executable, script], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def cli(*args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"limnos {' '.join(args)} -> {result.exit_code}\n{result.stderr}\n{result.stdout}"
    return result


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def table(path: Path, rows: int, cols: int = 100) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ",".join(f"c{j}" for j in range(cols)) + "\n" + "".join(
        ",".join(str((i * 31 + j) % 97) for j in range(cols)) + "\n" for i in range(rows))
    path.write_text(data)
    return data.encode()


def entries(root: Path) -> list[dict]:
    return yaml.safe_load((root / "limnos.lock").read_text())["files"]


def test_track_push_clone_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    monkeypatch.chdir(repo)
    cli("init", "--project")                                   # lazydata init
    assert (repo / "limnos.lock").exists()

    # Storing a file: the first run tracks it.
    content = table(repo / "data" / "my_big_table.csv", rows=1000)
    (repo / "my_script.py").write_text(MY_SCRIPT)
    first = python("my_script.py", repo)
    assert first.stdout == "Data shape: (1000, 100)\n"
    assert "tracking a new file data/my_big_table.csv" in first.stderr
    assert entries(repo) == [{"path": "data/my_big_table.csv", "hash": hashing.hash_bytes(content),
                              "size": len(content), "usage": "my_script.py"}]

    # Re-running without changing the file does nothing else.
    again = python("my_script.py", repo)
    assert again.stderr == "" and len(entries(repo)) == 1

    # A modified file is versioned: another entry with the new hash.
    changed = table(repo / "data" / "my_big_table.csv", rows=1001)
    assert "changed; recorded a new version" in python("my_script.py", repo).stderr
    assert [e["hash"] for e in entries(repo)] == [hashing.hash_bytes(content), hashing.hash_bytes(changed)]

    # Sharing: add a remote (recorded in limnos.lock, as lazydata.yml records it), commit, push.
    remote = tmp_path / "bucket" / "lazydata"
    remote.parent.mkdir()                                      # the bucket exists; its prefix is made
    cli("remote", "add", "origin", str(remote))                # lazydata add-remote s3://mybucket/lazydata
    assert str(remote) in (repo / "limnos.lock").read_text()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "code and limnos.lock")
    cli("push")                                                # lazydata push
    assert "data/my_big_table.csv" in (repo / ".gitignore").read_text()   # git carries no data

    # A collaborator clones: the script and limnos.lock arrive, the data does not.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert not (clone / "data").exists() and not (clone / ".limnos").exists()
    run = python("my_script.py", clone)                        # downloads the stored file
    assert run.stdout == "Data shape: (1001, 100)\n"
    assert "restored data/my_big_table.csv from remote origin" in run.stderr
    assert (clone / "data" / "my_big_table.csv").read_bytes() == changed

    # Getting the data without running code.
    monkeypatch.chdir(clone)
    for args in (["data/my_big_table.csv"], ["my_script.py"], ["."]):   # lazydata pull FILE | SCRIPT | .
        (clone / "data" / "my_big_table.csv").unlink()
        out = json.loads(cli("pull", *args, "--json").stdout)
        assert out["restored"] == ["data/my_big_table.csv"], args
        assert (clone / "data" / "my_big_table.csv").read_bytes() == changed
    cli("pull")                                                # the latest of everything, into the lake
    with limnos.open(str(clone)) as lake:
        assert [f.hash for f in lake.history("data/my_big_table.csv")] == [hashing.hash_bytes(content),
                                                                        hashing.hash_bytes(changed)]
        assert lake.get("data/my_big_table.csv").is_local      # the latest version is on this machine


def test_lazydata_yml_is_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing lazydata project: ``limnos import-lazydata`` reads lazydata.yml once."""
    repo = tmp_path / "repo"
    content = table(repo / "data" / "my_big_table.csv", rows=10)
    import hashlib
    sha = hashlib.sha256(content).hexdigest().upper()
    (repo / "lazydata.yml").write_text(yaml.safe_dump(
        {"files": [{"path": "data/my_big_table.csv", "hash": sha, "usage": "my_script.py"}]}))
    (repo / "my_script.py").write_text(MY_SCRIPT)
    monkeypatch.chdir(repo)
    cli("import-lazydata")
    [entry] = entries(repo)
    assert entry["hash"] == hashing.hash_bytes(content) and entry["usage"] == "my_script.py"
    shutil.rmtree(repo / "data")
    assert python("my_script.py", repo).stdout == "Data shape: (10, 100)\n"
