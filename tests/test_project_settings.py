"""Project settings that travel with git, and the manifest as the truth (issue 11, parts 2 and 3).

Real git repositories, real ``python`` subprocesses for scripts and for the
``limnos`` command where process-wide state matters (fsspec's defaults, the
environment), and moto's real S3 server. A "clone" runs with an empty HOME and
cache folders, no ``LIMNOS_*`` variables and no ``AWS_ENDPOINT_URL``: only the
credentials come from the environment, as they should.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import limnos
from limnos import tracking
from limnos.cli.main import app
from limnos.store import hashing


@pytest.fixture(autouse=True)
def _close_projects():  # type: ignore[no-untyped-def]
    yield
    tracking.close_projects()


SCRIPT = textwrap.dedent("""
    from limnos import track
    data = open(track("data/table.csv")).read()
    print("rows:", len(data.splitlines()))
""")


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def clean_env(home: Path, server: Any = None) -> dict[str, str]:
    """A new machine: empty HOME and caches, no limnos or endpoint settings; S3 credentials in the environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LIMNOS_", "AWS_", "FSSPEC_", "XDG_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
               LIMNOS_PROGRESS="0")
    if server is not None:
        env.update(AWS_ACCESS_KEY_ID=server.key, AWS_SECRET_ACCESS_KEY=server.secret)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=180)
    if ok:
        assert proc.returncode == 0, f"{args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def limnos_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "limnos", *args]


def cli(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, f"limnos {' '.join(args)} -> {result.exit_code}\n{result.stderr}\n{result.stdout}"
    return result


def write(path: Path, text: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text.encode()


def lock(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((root / "limnos.lock").read_text())
    return data


def blake3(data: bytes) -> str:
    return hashing.hash_bytes(data)


def new_project(root: Path, env: dict[str, str]) -> bytes:
    """A git repository whose script tracks data/table.csv, run once."""
    root.mkdir(parents=True)
    git(root, "init", "-q")
    content = write(root / "data" / "table.csv", "".join(f"{i},{i * i}\n" for i in range(100)))
    (root / "my_script.py").write_text(SCRIPT)
    first = run([sys.executable, "my_script.py"], root, env)
    assert "tracking a new file data/table.csv" in first.stderr
    return content


# ------------------------------------------------------------ clone and run
def test_clone_and_run_restores_data_with_no_init_and_no_remote_add(tmp_path: Path, moto_s3: Any) -> None:
    """lazydata's promise on moto: track, remote add, push, git commit; a clone runs the script and has the data."""
    a = tmp_path / "alice"
    env_a = clean_env(tmp_path / "home-a", moto_s3)
    content = new_project(a, env_a)
    url = f"s3://{moto_s3.new_bucket()}/lake"
    added = run(limnos_cmd("remote", "add", "origin", url, "-o", f"client_kwargs.endpoint_url={moto_s3.endpoint}",
                           "-o", f"key={moto_s3.key}", "-o", f"secret={moto_s3.secret}"), a, env_a)
    assert "limnos.lock names" in added.stderr and "key, secret" in added.stderr
    text = (a / "limnos.lock").read_text()
    assert moto_s3.key not in text and moto_s3.secret not in text  # credentials never enter the project file
    assert lock(a)["settings"] == {"remote": url, "endpoint_url": moto_s3.endpoint}
    run(limnos_cmd("push"), a, env_a)

    # git add -A commits the code and the manifest, never the data (.gitignore) nor the lake.
    git(a, "add", "-A")
    git(a, "commit", "-qm", "code and data manifest")
    assert sorted(git(a, "ls-files").split()) == [".gitignore", "limnos.lock", "my_script.py"]
    assert {"/data/table.csv", ".limnos/"} <= set((a / ".gitignore").read_text().splitlines())

    # Another machine: clone, run. No init, no remote add, no AWS_ENDPOINT_URL, an empty cache.
    b = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(a), str(b))
    env_b = clean_env(tmp_path / "home-b", moto_s3)
    assert not (b / "data").exists() and not (b / ".limnos").exists()
    proc = run([sys.executable, "my_script.py"], b, env_b)
    assert "rows: 100" in proc.stdout
    assert "restored data/table.csv from remote origin" in proc.stderr
    assert (b / "data" / "table.csv").read_bytes() == content
    assert git(b, "status", "--porcelain") == ""  # nothing for git to commit: the data is ignored, the lock untouched

    # A third machine gets it with the CLI alone.
    c = tmp_path / "carol"
    git(tmp_path, "clone", "-q", str(a), str(c))
    run(limnos_cmd("pull", "."), c, clean_env(tmp_path / "home-c", moto_s3))
    assert (c / "data" / "table.csv").read_bytes() == content


def test_lake_url_uses_the_project_endpoint(tmp_path: Path, moto_s3: Any) -> None:
    """``limnos --lake s3://...`` inside a project needs no AWS_ENDPOINT_URL: limnos.lock's endpoint applies."""
    url = f"s3://{moto_s3.new_bucket()}/lake"
    lake = limnos.init(url, cache=str(tmp_path / "cache"), **moto_s3.options())
    src = tmp_path / "x.csv"
    src.write_text("a\n1\n")
    lake.add(str(src), name="x.csv")
    lake.close()

    project = tmp_path / "project"
    project.mkdir()
    env = clean_env(tmp_path / "home", moto_s3)
    # No endpoint anywhere: AWS itself is asked, and fails (one attempt, not botocore's retries).
    outside = run(limnos_cmd("--lake", url, "ls", "--json"), project, {**env, "AWS_MAX_ATTEMPTS": "1"}, ok=False)
    assert outside.returncode == 1 and "amazonaws.com" in outside.stderr
    (project / "limnos.lock").write_text(f"version: 1\nsettings:\n  endpoint_url: {moto_s3.endpoint}\nfiles: []\n")
    inside = run(limnos_cmd("--lake", url, "ls", "--json"), project, env)
    assert [row["name"] for row in json.loads(inside.stdout)] == ["x.csv"]


# -------------------------------------------------- the manifest is the truth
def test_stale_working_copy_after_git_pull_is_updated(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    a, b = tmp_path / "alice", tmp_path / "bob"
    env_a = clean_env(tmp_path / "home-a")
    v1 = new_project(a, env_a)
    run(limnos_cmd("remote", "add", "origin", str(remote)), a, env_a)
    run(limnos_cmd("push"), a, env_a)
    git(a, "add", "-A")
    git(a, "commit", "-qm", "v1")

    git(tmp_path, "clone", "-q", str(a), str(b))
    env_b = clean_env(tmp_path / "home-b")
    run([sys.executable, "my_script.py"], b, env_b)
    assert (b / "data" / "table.csv").read_bytes() == v1

    # Alice makes a new version and shares it.
    v2 = write(a / "data" / "table.csv", "new,data\n" * 50)
    assert "changed; recorded a new version" in run([sys.executable, "my_script.py"], a, env_a).stderr
    run(limnos_cmd("push"), a, env_a)
    git(a, "commit", "-qam", "v2")

    # Bob pulls the code: limnos.lock lists v2 while his working file still holds v1.
    git(b, "pull", "-q")
    outdated = run(limnos_cmd("status", "--json"), b, env_b, ok=False)
    assert outdated.returncode == 1  # something to do: status says so in its exit code too
    status = json.loads(outdated.stdout)
    assert status["outdated"] == ["data/table.csv"] and status["changed"] == []
    proc = run([sys.executable, "my_script.py"], b, env_b)
    lines = proc.stderr.splitlines()
    assert lines == [f"limnos: data/table.csv held an older listed version ({blake3(v1)[:12]}); updated it to the "
                     f"newest listed version ({blake3(v2)[:12]}) from remote origin"]
    assert "rows: 50" in proc.stdout
    assert (b / "data" / "table.csv").read_bytes() == v2
    assert git(b, "status", "--porcelain") == ""  # limnos.lock was not rewritten: v1 did not become "newest"
    assert [e["hash"] for e in lock(b)["files"]] == [blake3(v1), blake3(v2)]

    # Bytes the manifest has never seen are a new version, as before.
    v3 = write(b / "data" / "table.csv", "bob's edit\n")
    assert "changed; recorded a new version" in run([sys.executable, "my_script.py"], b, env_b).stderr
    assert [e["hash"] for e in lock(b)["files"]] == [blake3(v1), blake3(v2), blake3(v3)]


def test_checkout_puts_every_tracked_file_as_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    cli("init", "--project")
    old = {n: write(tmp_path / "data" / f"{n}.csv", f"{n} old\n") for n in ("gone", "stale", "edited", "same")}
    cli("track", "data")
    new = {n: write(tmp_path / "data" / f"{n}.csv", f"{n} new\n") for n in ("gone", "stale", "edited", "same")}
    cli("track", "data")
    (tmp_path / "data" / "gone.csv").unlink()
    (tmp_path / "data" / "stale.csv").write_bytes(old["stale"])
    (tmp_path / "data" / "edited.csv").write_text("an edit not tracked yet\n")

    out = json.loads(cli("checkout", "--json").stdout)
    assert (out["restored"], out["updated"], out["kept"], out["present"]) == (
        ["data/gone.csv"], ["data/stale.csv"], ["data/edited.csv"], ["data/same.csv"])
    for name in ("gone", "stale", "same"):
        assert (tmp_path / "data" / f"{name}.csv").read_bytes() == new[name]
    assert (tmp_path / "data" / "edited.csv").read_text() == "an edit not tracked yet\n"  # kept: never lost silently
    result = cli("checkout", "data/edited.csv")
    assert "kept data/edited.csv" in result.stderr and "--force" in result.stderr

    out = json.loads(cli("checkout", "data", "--force", "--json").stdout)
    assert out["updated"] == ["data/edited.csv"]
    assert (tmp_path / "data" / "edited.csv").read_bytes() == new["edited"]
    assert cli("status", "--json").stdout and json.loads(cli("status", "--json").stdout)["clean"]
    assert cli("checkout", "nothing/here", ok=False).exit_code == 1


# ------------------------------------------------------------------ .gitignore
def test_tracked_paths_go_to_gitignore_unless_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on, off = tmp_path / "on", tmp_path / "off"
    for root, flag in ((on, "--gitignore"), (off, "--no-gitignore")):
        root.mkdir()
        git(root, "init", "-q")
        monkeypatch.chdir(root)
        cli("init", "--project", flag)
        write(root / "data" / "a.csv", "a\n")
        write(root / "data" / "sub" / "b.csv", "b\n")
        cli("track", "data")
        cli("track", "data")  # a second track adds no line twice
    assert (on / ".gitignore").read_text().splitlines() == [".limnos/", "/data/a.csv", "/data/sub/b.csv"]
    assert git(on, "status", "--porcelain", "--untracked-files=all").split() == ["??", ".gitignore", "??", "limnos.lock"]
    assert (off / ".gitignore").read_text().splitlines() == [".limnos/"]
    assert lock(off)["settings"] == {"gitignore": False}
    assert "data/a.csv" in git(off, "status", "--porcelain", "--untracked-files=all")
    tracking.close_projects()

    # limnos.track() in code does the same.
    monkeypatch.chdir(on)
    write(on / "data" / "c.csv", "c\n")
    limnos.track("data/c.csv")
    assert "/data/c.csv" in (on / ".gitignore").read_text().splitlines()


# ------------------------------------------------------------ remote add check
def test_remote_add_checks_the_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_s3: Any) -> None:
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    cli("init", "--project")
    state = tmp_path / ".limnos" / "state" / "remotes.yaml"
    before = (tmp_path / "limnos.lock").read_bytes()

    missing_bucket = "s3://no-such-bucket-limnos/lake"
    opts = ["-o", f"client_kwargs.endpoint_url={moto_s3.endpoint}", "-o", f"key={moto_s3.key}",
            "-o", f"secret={moto_s3.secret}"]
    result = cli("remote", "add", "origin", missing_bucket, *opts, ok=False)
    assert result.exit_code == 1
    assert "does the bucket exist?" in result.stderr and moto_s3.secret not in result.stderr
    result = cli("remote", "add", "origin", str(tmp_path / "no" / "such" / "folder"), ok=False)
    assert result.exit_code == 1 and "does not exist" in result.stderr
    assert not state.exists()  # nothing was written
    assert (tmp_path / "limnos.lock").read_bytes() == before
    assert not moto_s3_bucket_exists(moto_s3, "no-such-bucket-limnos")  # the check never creates a bucket

    cli("remote", "add", "origin", missing_bucket, "--no-check", *opts)
    assert yaml.safe_load(state.read_text())["remotes"]["origin"]["url"] == missing_bucket
    assert lock(tmp_path)["settings"]["remote"] == missing_bucket

    good = f"s3://{moto_s3.new_bucket()}/lake"
    cli("remote", "add", "origin", good, *opts)
    assert lock(tmp_path)["settings"]["remote"] == good
    assert not [k for k in moto_s3_keys(moto_s3, good) if ".limnos-probe" in k]  # the probe is removed


def moto_s3_bucket_exists(server: Any, bucket: str) -> bool:
    import s3fs

    fs = s3fs.S3FileSystem(**server.options(), skip_instance_cache=True)
    return bool(fs.exists(bucket))


def moto_s3_keys(server: Any, url: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(**server.options(), skip_instance_cache=True)
    return list(fs.find(url.removeprefix("s3://")))


# ----------------------------------------------------- credentials never written
def test_credentials_are_stripped_or_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli("init", "--project")
    cli("remote", "add", "origin", "s3://alice:pa55word-xyz@bucket/lake", "--no-check",
        "-o", "key=AKIAEXAMPLEKEY", "-o", "secret=very-secret-value", "-o", "token=tok-123456",
        "-o", "client_kwargs.endpoint_url=http://minio.local:9000", "-o", "client_kwargs.region_name=eu-west-1",
        "-o", "client_kwargs.aws_secret_access_key=another-secret", "-o", "profile=team")
    text = (tmp_path / "limnos.lock").read_text()
    for secret in ("pa55word-xyz", "AKIAEXAMPLEKEY", "very-secret-value", "tok-123456", "another-secret"):
        assert secret not in text
    assert lock(tmp_path)["settings"] == {"remote": "s3://alice@bucket/lake", "endpoint_url": "http://minio.local:9000",
                                          "region": "eu-west-1", "profile": "team"}
    # This machine keeps its credentials where they were: state/remotes.yaml, mode 600.
    assert "very-secret-value" in (tmp_path / ".limnos" / "state" / "remotes.yaml").read_text()

    # A hand-edited file with a credential is refused, by the library and the CLI.
    good = (tmp_path / "limnos.lock").read_text()
    for bad in ("  aws_secret_access_key: abc\n", "  key: AKIA\n", "  password: x\n"):
        (tmp_path / "limnos.lock").write_text(good.replace("settings:\n", "settings:\n" + bad))
        with pytest.raises(limnos.ManifestError, match="credential"):
            tracking.Manifest.load(str(tmp_path / "limnos.lock"))
        assert "credential" in cli("ls", ok=False).stderr
    (tmp_path / "limnos.lock").write_text(good.replace("s3://alice@bucket", "s3://alice:pw@bucket"))
    with pytest.raises(limnos.ManifestError, match="password"):
        tracking.Manifest.load(str(tmp_path / "limnos.lock"))
    (tmp_path / "limnos.lock").write_text(good.replace("settings:\n", "settings:\n  colour: blue\n"))
    with pytest.raises(limnos.ManifestError, match="unknown setting 'colour'"):
        tracking.Manifest.load(str(tmp_path / "limnos.lock"))
    # The Python API strips the same way.
    s = tracking.ProjectSettings.from_remote("https://u:p@host/x", {"key": "k", "secret": "s", "anon": True})
    assert (s.remote, s.to_yaml()) == ("https://u@host/x", {"remote": "https://u@host/x"})


# ------------------------------------------------------------ import-lazydata
def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_import_lazydata_keeps_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    old = b"old version\n"
    cur = write(tmp_path / "data" / "my_big_table.csv", "current version\n")
    other = write(tmp_path / "data" / "later.csv", "tracked later\n")
    (tmp_path / "data" / "later.csv").rename(tmp_path / "later.csv.away")
    (tmp_path / "lazydata.yml").write_text(yaml.safe_dump({
        "version": "1.0",
        "files": [
            {"path": "data/my_big_table.csv", "hash": sha256(old).upper(), "usage": "my_script.py"},
            {"path": "data/my_big_table.csv", "hash": sha256(cur).upper(), "usage": ["my_script.py", "eval.py"]},
            {"path": "data/later.csv", "hash": sha256(other)},
        ],
        "remote": "s3://mybucket/lazydata",
    }))
    before = (tmp_path / "lazydata.yml").read_bytes()

    result = cli("import-lazydata")
    assert "imported 3 versions" in result.stderr and "read 1 working file" in result.stderr
    assert "s3://mybucket/lazydata is not a limnos lake" in result.stderr
    assert "data/later.csv" in result.stderr  # its newest version is not here yet
    assert (tmp_path / "lazydata.yml").read_bytes() == before  # lazydata's file is left as it was
    files = lock(tmp_path)["files"]
    assert files == [
        {"path": "data/later.csv", "sha256": sha256(other)},
        {"path": "data/my_big_table.csv", "sha256": sha256(old), "usage": "my_script.py"},
        {"path": "data/my_big_table.csv", "hash": blake3(cur), "size": len(cur), "sha256": sha256(cur),
         "usage": ["eval.py", "my_script.py"]},
    ]
    project = tracking.project_for(str(tmp_path))
    assert project.lake.get("data/my_big_table.csv").hash == blake3(cur)  # the bytes are in the lake
    again = json.loads(cli("import-lazydata", "--json").stdout)
    assert again["imported"] == [] and again["skipped"] == 3
    assert lock(tmp_path)["files"] == files

    # The current file is unchanged; a missing file listed by lazydata only cannot be restored.
    assert project.track(str(tmp_path / "data" / "my_big_table.csv")) == "unchanged"
    with pytest.raises(limnos.ObjectNotAvailable, match="lazydata"):
        project.track(str(tmp_path / "data" / "later.csv"))
    assert json.loads(cli("checkout", "--json").stdout)["unavailable"] == ["data/later.csv"]

    # The first read of its bytes turns the entry into BLAKE3.
    (tmp_path / "later.csv.away").rename(tmp_path / "data" / "later.csv")
    assert json.loads(cli("status", "--json").stdout)["unchanged"] == 2  # matched by its SHA-256, nothing written
    assert project.track(str(tmp_path / "data" / "later.csv")) == "unchanged"
    assert lock(tmp_path)["files"][0] == {"path": "data/later.csv", "hash": blake3(other), "size": len(other),
                                          "sha256": sha256(other)}
    (tmp_path / "data" / "later.csv").unlink()
    assert project.track(str(tmp_path / "data" / "later.csv")) == "restored"
    assert (tmp_path / "data" / "later.csv").read_bytes() == other


def test_clone_makes_only_the_default_lake(tmp_path: Path) -> None:
    """A project without a lake gets .limnos/ beside limnos.lock on first use; a lake named by the caller must exist."""
    (tmp_path / "limnos.lock").write_text("version: 1\nfiles: []\n")
    typo = tmp_path / "no-such-lake"
    with pytest.raises(limnos.LakeNotFound):
        _ = tracking.Project(str(tmp_path / "limnos.lock"), lake=str(typo)).lake
    assert not typo.exists() and not (tmp_path / ".limnos").exists()
    project = tracking.Project(str(tmp_path / "limnos.lock"))
    assert project.lake.path == str(tmp_path / ".limnos")
    project.close()
