"""``limnos.track`` and ``limnos.lock``: lazydata's workflow on real lakes, scripts and remotes (no mocks).

Scripts run as real ``python`` subprocesses, as a user runs them; the "two
machines" are two project folders that share a folder remote.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import limnos
from helpers import age
from limnos import tracking
from limnos.cli.main import app
from limnos.store import hashing


@pytest.fixture(autouse=True)
def _close_projects():  # type: ignore[no-untyped-def]
    yield
    tracking.close_projects()


def run_py(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIMNOS_PROGRESS": "0"}
    env.pop("LIMNOS_LAKE", None)
    proc = subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def cli(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, f"limnos {' '.join(args)} -> {result.exit_code}\n{result.stderr}\n{result.stdout}"
    return result


def write_csv(path: Path, rows: int = 200, seed: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "a,b\n" + "".join(f"{i},{(i * 7919 + seed) % 1000}\n" for i in range(rows))
    path.write_text(data)
    return data.encode()


def lock_entries(root: Path) -> list[dict]:
    return yaml.safe_load((root / "limnos.lock").read_text())["files"]


def blake3(data: bytes) -> str:
    return hashing.hash_bytes(data)


# ------------------------------------------------------------ lazydata's own
def test_lazydata_scenario(tmp_path: Path) -> None:
    """README of lazydata: track, a silent second run, restore from cache, and a run from a subfolder."""
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    content = write_csv(project / "data" / "my_big_table.csv", rows=1000)
    script = project / "my_script.py"
    script.write_text(textwrap.dedent("""
        from limnos import track
        import pandas as pd
        df = pd.read_csv(track("data/my_big_table.csv"))
        print("Data shape:", df.shape)
    """))

    first = run_py(script, project)
    assert "Data shape: (1000, 2)" in first.stdout
    assert "tracking a new file data/my_big_table.csv" in first.stderr
    assert "created" in first.stderr  # the first track in a git repository sets the project up
    assert lock_entries(project) == [{"path": "data/my_big_table.csv", "hash": blake3(content), "size": len(content),
                                      "usage": "my_script.py"}]
    assert ".limnos/" in (project / ".gitignore").read_text().splitlines()

    lock_before = (project / "limnos.lock").read_bytes()
    lock_mtime = (project / "limnos.lock").stat().st_mtime_ns
    second = run_py(script, project)
    assert second.stderr == ""  # silent: nothing changed
    assert (project / "limnos.lock").read_bytes() == lock_before
    assert (project / "limnos.lock").stat().st_mtime_ns == lock_mtime  # not even rewritten (git stays clean)

    shutil.rmtree(project / "data")
    third = run_py(script, project)
    assert "restored data/my_big_table.csv from cache" in third.stderr
    assert "Data shape: (1000, 2)" in third.stdout
    assert (project / "data" / "my_big_table.csv").read_bytes() == content

    notebooks = project / "notebooks"
    notebooks.mkdir()
    explore = notebooks / "explore.py"
    explore.write_text("import limnos, pandas as pd\nprint(pd.read_csv(limnos.track('../data/my_big_table.csv')).shape)\n")
    fourth = run_py(explore, notebooks)
    assert fourth.stderr == ""
    assert "(1000, 2)" in fourth.stdout
    [entry] = lock_entries(project)
    assert entry["usage"] == ["my_script.py", "notebooks/explore.py"]


# ------------------------------------------------------------------ versions
def test_versions_manifest_order_and_stat_cache(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    project, created = tracking.init_project(tmp_path / "p")
    root = Path(project.root)
    assert {Path(c).name for c in created} == {"limnos.lock", ".limnos"}
    b = root / "data" / "b.csv"
    v1 = write_csv(b, seed=1)
    assert limnos.track(str(b)) == str(b)  # the path comes back unchanged
    v2 = write_csv(b, seed=2)
    limnos.track(str(b))
    a_content = write_csv(root / "data" / "a.csv", seed=3)
    limnos.track(root / "data" / "a.csv")
    entries = lock_entries(root)
    assert [(e["path"], e["hash"]) for e in entries] == [
        ("data/a.csv", blake3(a_content)), ("data/b.csv", blake3(v1)), ("data/b.csv", blake3(v2))]
    assert all("usage" not in e for e in entries)  # called from this test file, which is outside the project

    # The manifest is the truth: a working file at an older listed version is brought to the newest.
    b.write_bytes(v1)
    err = _capture_stderr(lambda: limnos.track(str(b)))
    assert err == (f"limnos: data/b.csv held an older listed version ({blake3(v1)[:12]}); updated it to the newest "
                   f"listed version ({blake3(v2)[:12]}) from cache\n")
    assert b.read_bytes() == v2
    # Going back on purpose (force): its entry becomes the newest again, never listed twice.
    b.write_bytes(v1)
    assert project.track(str(b), force=True) == "changed"
    assert [e["hash"] for e in lock_entries(root) if e["path"] == "data/b.csv"] == [blake3(v2), blake3(v1)]
    lake = project.lake
    assert [f.hash for f in lake.history("data/b.csv")] == [blake3(v1), blake3(v2), blake3(v1)]

    # An unchanged file costs a stat: no byte is read for hashing.
    age(b)
    limnos.track(str(b))  # hashes once more, and remembers the (now old) stat
    before = hashing.stats.files_hashed
    for _ in range(3):
        limnos.track(str(b))
    assert hashing.stats.files_hashed == before


def test_missing_and_unlisted_raises_with_the_path(tmp_path: Path) -> None:
    tracking.init_project(tmp_path)
    with pytest.raises(limnos.FileNotFound, match=r"nothing/here\.csv"):
        limnos.track(str(tmp_path / "nothing" / "here.csv"))


def test_outside_any_project_says_how_to_start(tmp_path: Path) -> None:
    path = tmp_path / "loose.csv"
    write_csv(path)
    with pytest.raises(limnos.ProjectNotFound, match=r"limnos\.tracking\.init_project\("):
        limnos.track(str(path))


def test_nested_manifests_nearest_wins(tmp_path: Path) -> None:
    tracking.init_project(tmp_path)
    inner = tmp_path / "sub" / "inner"
    inner.mkdir(parents=True)
    _, created = tracking.init_project(inner)
    assert created == [str(inner / "limnos.lock")]  # it shares the lake found above it
    write_csv(inner / "data" / "x.csv")
    write_csv(tmp_path / "top.csv")
    limnos.track(str(inner / "data" / "x.csv"))
    limnos.track(str(tmp_path / "top.csv"))
    assert [e["path"] for e in lock_entries(inner)] == ["data/x.csv"]
    assert [e["path"] for e in lock_entries(tmp_path)] == ["top.csv"]


def test_manifest_merges_and_bad_files(tmp_path: Path) -> None:
    h1, h2 = "1" * 64, "2" * 64
    lock = tmp_path / "limnos.lock"
    # Both sides of a git merge added the same version: one entry, both usages.
    lock.write_text(yaml.safe_dump({"version": 1, "files": [
        {"path": "d/x.csv", "hash": h1, "size": 3, "usage": "a.py"},
        {"path": "d/x.csv", "hash": h2, "size": 4, "usage": "a.py"},
        {"path": "d/x.csv", "hash": h1, "size": 3, "usage": "b.py"}]}))
    manifest = tracking.Manifest.load(str(lock))
    assert [(e.hash, e.usage) for e in manifest.entries] == [(h1, ["a.py", "b.py"]), (h2, ["a.py"])]
    manifest.save()
    assert yaml.safe_load(lock.read_text())["files"][0]["usage"] == ["a.py", "b.py"]

    lock.write_text("version: 1\nfiles:\n<<<<<<< HEAD\n- path: x\n=======\n>>>>>>> other\n")
    with pytest.raises(limnos.ManifestError, match="merge conflict"):
        tracking.Manifest.load(str(lock))
    lock.write_text(yaml.safe_dump({"files": [{"path": "../up.csv", "hash": h1, "size": 1}]}))
    with pytest.raises(limnos.ManifestError, match=r"\.\."):
        tracking.Manifest.load(str(lock))
    lock.write_text(yaml.safe_dump({"files": [{"path": "x.csv", "hash": "abc", "size": 1}]}))
    with pytest.raises(limnos.ManifestError, match="hash"):
        tracking.Manifest.load(str(lock))


# -------------------------------------------------------------------- status
def test_status_reports_changed_missing_and_newer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, _ = tracking.init_project(tmp_path)
    for name in ("same", "edited", "gone"):
        write_csv(tmp_path / "data" / f"{name}.csv", seed=len(name))
        limnos.track(str(tmp_path / "data" / f"{name}.csv"))
    write_csv(tmp_path / "data" / "edited.csv", seed=99)
    (tmp_path / "data" / "gone.csv").unlink()
    # Someone added a later version to the lake that this manifest does not list yet.
    other = tmp_path / "elsewhere.csv"
    write_csv(other, seed=42)
    project.lake.add(str(other), name="data/same.csv")

    st = project.status()
    assert st.unchanged == ["data/same.csv"]
    assert st.changed == ["data/edited.csv"]
    assert st.missing == ["data/gone.csv"]
    assert st.newer == ["data/same.csv@2"]
    assert not st.clean

    # Stat-cached: a second status of old files reads nothing.
    for name in ("same", "edited"):
        age(tmp_path / "data" / f"{name}.csv")
    project.status()
    before = hashing.stats.files_hashed
    project.status()
    assert hashing.stats.files_hashed == before

    sub = tmp_path / "data"
    monkeypatch.chdir(sub)
    changed = cli("status", "--json", ok=False)
    assert changed.exit_code == 1  # something changed: exit 1, as dvc status
    out = json.loads(changed.stdout)
    assert out["changed"] == ["data/edited.csv"] and out["missing"] == ["data/gone.csv"]
    text = cli("status", ok=False).stdout
    assert "changed:  edited.csv" in text and "missing:  gone.csv" in text and "data/same.csv@2" in text

    # A PATH still means the old comparison with the lake.
    assert json.loads(cli("status", str(tmp_path / "data"), "--name", "data", "--json", ok=False).stdout)["modified"]


def test_status_outside_a_project_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("status", ok=False)
    assert result.exit_code == 1
    assert "limnos init --project" in result.stderr and "PATH" in result.stderr


# ------------------------------------------------------------ linked files
def test_default_never_shares_an_inode_with_the_store(tmp_path: Path) -> None:
    project, _ = tracking.init_project(tmp_path)
    path = tmp_path / "data" / "x.csv"
    original = write_csv(path)
    limnos.track(str(path))
    digest = blake3(original)
    obj = Path(project.lake.cache.path(digest))
    assert path.stat().st_ino != obj.stat().st_ino
    assert obj.stat().st_nlink == 1

    path.unlink()
    limnos.track(str(path))  # restored: a copy (or reflink), never a hard link
    assert path.stat().st_ino != obj.stat().st_ino
    assert path.stat().st_mode & stat.S_IWUSR  # independent bytes: editable, the edit becomes a version
    with open(path, "r+b") as f:  # an in-place edit, as root or not
        f.write(b"EDITED")
    assert hashing.hash_file(obj)[0] == digest  # the store is untouched
    limnos.track(str(path))
    assert [e["hash"] for e in lock_entries(tmp_path)] == [digest, hashing.hash_file(path)[0]]
    assert project.lake.fsck(read_data=True).ok


def test_hardlink_is_opt_in_and_an_in_place_edit_is_caught(tmp_path: Path) -> None:
    project, _ = tracking.init_project(tmp_path, link="hardlink")
    path = tmp_path / "data" / "x.csv"
    original = write_csv(path)
    limnos.track(str(path))
    digest = blake3(original)
    obj = Path(project.lake.cache.path(digest))
    assert path.stat().st_ino == obj.stat().st_ino  # no extra disk
    assert not path.stat().st_mode & 0o222  # read-only, as a guard
    path.unlink()
    limnos.track(str(path))
    assert path.stat().st_ino == obj.stat().st_ino

    if os.geteuid() != 0:
        with pytest.raises(PermissionError), open(path, "r+b"):
            pass
        return
    # Root ignores read-only bits: this is the documented risk of hardlink mode.
    with open(path, "r+b") as f:
        f.write(b"EDITED")
    err = _capture_stderr(lambda: limnos.track(str(path)))
    assert "edited in place while hard-linked" in err
    # The edited bytes are the new version; the object that no longer matched its hash is gone, not served.
    new_digest = hashing.hash_file(path)[0]
    assert [e["hash"] for e in lock_entries(tmp_path)] == [digest, new_digest]
    report = project.lake.fsck(read_data=True)
    assert report.corrupt == [] and report.missing == [digest]
    path.unlink()
    limnos.track(str(path))  # restores the newest version, from a fresh object
    assert hashing.hash_file(path)[0] == new_digest


def _capture_stderr(fn) -> str:  # type: ignore[no-untyped-def]
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        fn()
    return buf.getvalue()


# ------------------------------------------------------- two machines, pull
def test_pull_by_script_on_a_second_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = tmp_path / "remote"
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    a.mkdir()
    monkeypatch.chdir(a)
    cli("init", "--project")
    train = write_csv(a / "data" / "train.csv", seed=1)
    test = write_csv(a / "data" / "test.csv", seed=2)
    (a / "train.py").write_text("import limnos\nopen(limnos.track('data/train.csv')).read()\n")
    (a / "evaluate.py").write_text("import limnos\nprint(open(limnos.track('data/test.csv')).read()[:3])\n")
    run_py(a / "train.py", a)
    run_py(a / "evaluate.py", a)
    cli("remote", "add", "origin", str(remote))
    cli("push")

    # "git clone": the code and limnos.lock travel, the data does not.
    b.mkdir()
    for name in ("limnos.lock", "train.py", "evaluate.py"):
        shutil.copy(a / name, b / name)
    monkeypatch.chdir(b)
    result = cli("init", "--project")
    assert "already exists" in result.stderr
    cli("remote", "add", "origin", str(remote))
    result = cli("pull", "train.py")
    assert "remote origin" in result.stderr
    assert (b / "data" / "train.csv").read_bytes() == train
    assert not (b / "data" / "test.csv").exists()  # only what train.py uses

    # Running a script whose data is not here fetches it from the remote, and says so.
    proc = run_py(b / "evaluate.py", b)
    assert "restored data/test.csv from remote origin" in proc.stderr
    assert (b / "data" / "test.csv").read_bytes() == test

    # Folders and '.' pull through the manifest too; a local edit is kept, not overwritten.
    (b / "data" / "train.csv").unlink()
    (b / "data" / "test.csv").write_text("local edit\n")
    monkeypatch.chdir(b / "data")
    out = json.loads(cli("pull", ".", "--json").stdout)
    assert out["restored"] == ["data/train.csv"] and out["kept"] == ["data/test.csv"]
    monkeypatch.chdir(b)
    assert json.loads(cli("pull", "data", "--json").stdout)["present"] == ["data/train.csv"]

    # The second machine's catalog knows the files it pulled (records were imported).
    lake = limnos.open(str(b))
    try:
        assert lake.get("data/train.csv").hash == blake3(train)
    finally:
        lake.close()
    # Lake refs still pull the plain way.
    assert "pulled" in cli("pull", "data/train.csv@1").stderr


def test_restore_without_a_remote_says_what_to_do(tmp_path: Path) -> None:
    tracking.init_project(tmp_path)
    content = write_csv(tmp_path / "x.csv")
    manifest = tracking.Manifest(str(tmp_path / "limnos.lock"), [tracking.LockEntry("x.csv", blake3(content), len(content))])
    manifest.save()
    (tmp_path / "x.csv").unlink()  # listed, but its bytes never reached this lake
    with pytest.raises(limnos.ObjectNotAvailable, match=r"lake\.remotes\.add\("):
        limnos.track(str(tmp_path / "x.csv"))


# ----------------------------------------------------------------------- CLI
def test_cli_track_expands_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli("init", "--project")
    write_csv(tmp_path / "data" / "a.csv", seed=1)
    write_csv(tmp_path / "data" / "deep" / "b.csv", seed=2)
    out = json.loads(cli("track", "data", "--json").stdout)
    assert [(r["path"], r["state"]) for r in out] == [("data/a.csv", "new"), ("data/deep/b.csv", "new")]
    assert "2 tracked files unchanged" in cli("track", "data").stderr
    assert [e["path"] for e in lock_entries(tmp_path)] == ["data/a.csv", "data/deep/b.csv"]
    assert "usage" not in lock_entries(tmp_path)[0]  # the command line is not a script that uses the data
    assert "track" in cli("--help").stdout


def test_concurrent_tracks_lose_no_entry(tmp_path: Path) -> None:
    tracking.init_project(tmp_path)
    tracking.close_projects()
    scripts = []
    for w in range(4):
        for i in range(5):
            write_csv(tmp_path / "data" / f"w{w}-{i}.csv", seed=w * 10 + i)
        script = tmp_path / f"worker{w}.py"
        script.write_text("import limnos\n" + "".join(f"limnos.track('data/w{w}-{i}.csv')\n" for i in range(5)))
        scripts.append(script)
    env = {**os.environ, "LIMNOS_PROGRESS": "0"}
    procs = [subprocess.Popen([sys.executable, str(s)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
             for s in scripts]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    entries = lock_entries(tmp_path)
    assert len(entries) == 20
    assert {e["usage"] for e in entries} == {f"worker{w}.py" for w in range(4)}
