"""Faults a user meets without trying: secrets in provenance, a full disk, Ctrl-C (issue 10 items 8, 10, 12).

Each test drives the real thing: the CLI with its real argv, a real small
file system (a tmpfs with a size limit, mounted by the test; CI runs as root),
a real ``limnos add`` subprocess stopped with SIGINT. After a failure the lake
must hold exactly what it held before: no new objects, records or commits.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import limnos
from helpers import lake_state
from limnos.cli import app
from limnos.core.provenance import MASK, scrub_argv, scrub_config
from limnos.errors import LimnosError, StoreFull
from limnos.store import LocalObjectStore

SECRET = "s3cr3t-" + uuid.uuid4().hex  # unique, so that finding it anywhere is a leak


# ------------------------------------------------------------------ helpers
def snapshot(lake: limnos.Lake) -> dict[str, Any]:
    """What a failed call must leave unchanged (see :func:`helpers.lake_state`)."""
    return lake_state(lake, staging=False)


def files_under(root: Path) -> Iterator[Path]:
    """Every regular file below ``root``."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                yield path


def cli_argv(monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """Run the CLI in-process with ``sys.argv`` as a shell would set it (provenance records sys.argv)."""
    monkeypatch.setattr(sys, "argv", ["limnos", *args])
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"limnos {' '.join(args)} -> {result.exit_code}\n{result.stderr}\n{result.stdout}"
    return result


# ------------------------------------------------------------- 8. secrets
@pytest.mark.parametrize(("argv", "hidden"), [
    (["-o", "secret=X"], ["-o", f"secret={MASK}"]),
    (["--option", "key=X"], ["--option", f"key={MASK}"]),
    (["--option=password=X"], [f"--option=password={MASK}"]),
    (["-osecret=X"], [f"-osecret={MASK}"]),
    (["-o", "client_kwargs.aws_secret_access_key=X"], ["-o", f"client_kwargs.aws_secret_access_key={MASK}"]),
    (["--password", "X", "next"], ["--password", MASK, "next"]),
    (["--token=X"], [f"--token={MASK}"]),
    (["AWS_SECRET_ACCESS_KEY=X"], [f"AWS_SECRET_ACCESS_KEY={MASK}"]),
    (["--catalog", "postgresql://me:X@db/lake"], ["--catalog", f"postgresql://me:{MASK}@db/lake"]),
    (["--catalog=postgresql://me:X/y@z@db/lake"], [f"--catalog=postgresql://me:{MASK}@db/lake"]),
    (["https://X@github.com/o/r.git"], [f"https://{MASK}@github.com/o/r.git"]),
    (["http://h/o?X-Amz-Signature=X&part=1"], [f"http://h/o?X-Amz-Signature={MASK}&part=1"]),
    (["-o", 'client_kwargs={"aws_secret_access_key": "X", "region_name": "eu"}'],
     ["-o", f'client_kwargs={{"aws_secret_access_key": "{MASK}", "region_name": "eu"}}']),
])
def test_scrub_argv_hides_every_form_of_credential(argv: list[str], hidden: list[str]) -> None:
    assert scrub_argv(argv) == hidden


def test_scrub_argv_keeps_what_is_no_secret() -> None:
    argv = ["limnos", "add", "data/", "--name", "raw", "-m", "project=x", "-o", "client_kwargs.endpoint_url=http://h:9/",
            "postgresql://me@db/lake", "s3://bucket/key.csv"]
    assert scrub_argv(argv) == argv


def test_scrub_config_masks_credential_keys_at_any_depth() -> None:
    config = {"lr": 0.1, "db": {"password": "X", "url": "postgresql://u:X@h/d"}, "tokens": [{"api_key": "X"}]}
    scrubbed = scrub_config(config)
    assert "X" not in repr(scrubbed).replace("postgresql", "")
    assert scrubbed["lr"] == 0.1 and scrubbed["db"]["url"] == f"postgresql://u:{MASK}@h/d"


def test_run_config_is_scrubbed_before_it_is_written(lake: limnos.Lake) -> None:
    with lake.run(name="train", config={"lr": 0.5, "aws_secret_access_key": SECRET}), lake.create("m.txt") as w:
        w.write_text("x")
    assert w.file is not None
    assert w.file.run["config"] == {"lr": 0.5, "aws_secret_access_key": MASK}
    assert_secret_nowhere(lake, Path(lake.path))


def pg_url_with_password(url: str) -> str:
    """The PostgreSQL URL with SECRET as the password (the test server trusts any)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{SECRET}@{host}"


def assert_secret_nowhere(lake: limnos.Lake, *roots: Path, catalog_url: str | None = None) -> None:
    """SECRET is in no file under ``roots`` (records, SQLite catalog and its WAL) and in no catalog row."""
    for root in roots:
        for path in ([root] if root.is_file() else files_under(root)):
            assert SECRET.encode() not in path.read_bytes(), f"{SECRET} leaked into {path}"
    engine = sa.create_engine(catalog_url.replace("postgresql://", "postgresql+psycopg://", 1)) if catalog_url \
        else lake.catalog.engine
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT argv, config, git_remote FROM runs")).all()
    if catalog_url:
        engine.dispose()
    assert rows, "the commands made no run row, so nothing was checked"
    for row in rows:
        assert SECRET not in repr(tuple(row)), f"{SECRET} leaked into the runs table: {row}"


def test_cli_commands_with_options_never_record_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         catalog_url: str | None) -> None:
    lake_dir, remote_dir, source = tmp_path / "lake", tmp_path / "remote", tmp_path / "images"
    source.mkdir()
    (source / "a.txt").write_text("a")
    (tmp_path / "x.csv").write_text("1,2\n")
    catalog = pg_url_with_password(catalog_url) if catalog_url else None
    cli_argv(monkeypatch, "init", str(lake_dir), *(["--catalog", catalog] if catalog else []))
    lake_opt = ["--lake", str(lake_dir)]
    cli_argv(monkeypatch, *lake_opt, "remote", "add", "origin", str(remote_dir), "--default",
             "-o", f"secret={SECRET}", "--option", f"key={SECRET}")
    cli_argv(monkeypatch, *lake_opt, "ds", "create", "imgs", str(source), "-o", f"secret={SECRET}",
             f"--option=password={SECRET}", "-o", f'client_kwargs={{"aws_secret_access_key": "{SECRET}"}}')
    cli_argv(monkeypatch, *lake_opt, "add", str(tmp_path / "x.csv"), "--name", "x.csv", "-m", "project=p")
    cli_argv(monkeypatch, *lake_opt, "push")
    cli_argv(monkeypatch, *lake_opt, "pull")
    with limnos.open(str(lake_dir)) as lake:
        # The commands did record runs with their argv (so the check below checks something).
        argvs = _argvs(lake)
        assert any("x.csv" in " ".join(argv) for argv in argvs), argvs
        here = Path(lake.path)  # init DIR made DIR/.limnos
        assert_secret_nowhere(lake, here / "records", remote_dir, catalog_url=catalog_url)
        if catalog_url is None:
            assert SECRET.encode() not in (here / "catalog.sqlite").read_bytes()


def _argvs(lake: limnos.Lake) -> list[list[str]]:
    with lake.catalog.engine.connect() as conn:
        raw = [r[0] for r in conn.execute(sa.text("SELECT argv FROM runs"))]
    return [list(json.loads(a) if isinstance(a, str) else a or []) for a in raw]


def test_a_subprocess_ds_create_records_no_secret(tmp_path: Path) -> None:
    """The real binary, as in the issue: ``limnos ds create NAME ROOT -o secret=...``."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    lake_dir = tmp_path / "lake"
    for args in (["init", str(lake_dir)],
                 ["--lake", str(lake_dir), "ds", "create", "d", str(source), "-o", f"secret={SECRET}"]):
        proc = subprocess.run([sys.executable, "-m", "limnos", *args], capture_output=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
    with limnos.open(str(lake_dir)) as lake:
        assert any("create" in argv and f"secret={MASK}" in argv for argv in _argvs(lake))
        # state/ is this machine's own (storage options are kept there on purpose); all else is shared.
        assert_secret_nowhere(lake, *(p for p in Path(lake.path).iterdir() if p.name != "state"))


# ------------------------------------------------------------ 10. full disk
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own, so a test can fill it; unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` until at most ``leave`` bytes are free; the filler file (delete it to free space)."""
    filler = disk / f"filler-{uuid.uuid4().hex[:8]}"
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        todo = max(0, free - leave)
        block = b"\0" * (64 << 10)
        while todo > 0:
            try:
                todo -= os.write(fd, block[: min(len(block), todo)])
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        if leave == 0:  # the last few blocks, one page at a time
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def random_files(folder: Path, count: int, size: int) -> Path:
    """``count`` files of ``size`` random bytes each in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"f{i:03d}.bin").write_bytes(os.urandom(size))
    return folder


def test_a_lake_on_a_full_disk_opens_for_reading_and_gc(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "lake"
    with limnos.init(str(root)) as lake:
        lake.add(str(random_files(tmp_path / "keep", 3, 100_000)), name="keep")
        lake.add(str(random_files(tmp_path / "drop", 3, 100_000)), name="drop")
        for f in lake.ls("drop/"):
            lake.rm(f.name)
    fill(small_disk)
    assert not os.path.exists(str(root / "catalog.sqlite-shm"))  # the last close removed it: opening needs space
    with limnos.open(str(root)) as lake:  # fails on main: "disk I/O error" at PRAGMA journal_mode=WAL
        assert [f.name for f in lake.ls()] == ["keep/f000.bin", "keep/f001.bin", "keep/f002.bin"]
        assert lake.get("keep/f001.bin").read_bytes() == (tmp_path / "keep" / "f001.bin").read_bytes()
        assert lake.fsck().ok
        report = lake.gc(dry_run=False, grace=dt_zero())
        assert len(report.deleted) == 3
    st = os.statvfs(small_disk)
    assert st.f_bavail * st.f_frsize >= 300_000  # gc freed the deleted files' bytes


def dt_zero() -> Any:
    import datetime as dt

    return dt.timedelta(0)


def test_the_cli_opens_a_full_lake_and_gc_frees_space(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "lake"
    with limnos.init(str(root)) as lake:
        lake.add(str(random_files(tmp_path / "drop", 2, 200_000)), name="drop")
        for f in lake.ls():
            lake.rm(f.name)
    fill(small_disk)
    result = CliRunner().invoke(app, ["--lake", str(root), "gc", "--yes", "--grace-days", "0"])
    assert result.exit_code == 0, result.stderr
    assert "deleted 2 unreferenced objects" in result.stdout
    assert "disk holding" in result.stderr and "is full" in result.stderr  # one warning line says why it is slow/exclusive


def test_add_on_a_full_disk_raises_store_full_and_removes_its_objects(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "lake"
    lake = limnos.init(str(root))
    try:
        lake.add(str(random_files(tmp_path / "first", 2, 10_000)), name="first")
        source = random_files(tmp_path / "big", 12, 100_000)
        lake.statcache.lookup_many(str(source))  # the stat cache exists before the disk fills
        before = snapshot(lake)
        fill(small_disk, leave=450_000)  # room for a few of the twelve objects, not all
        with pytest.raises(StoreFull) as caught:  # main: a bare OSError, and the objects stayed
            lake.add(str(source), name="big")
        assert caught.value.errno == errno.ENOSPC and caught.value.path == str(root)
        assert str(root) in str(caught.value) and "gc" in str(caught.value)
        assert snapshot(lake) == before  # the objects it had stored are gone again
    finally:
        lake.close()


def test_cli_add_on_a_full_disk_says_where_and_what_to_do(small_disk: Path, tmp_path: Path) -> None:
    root = small_disk / "lake"
    limnos.init(str(root)).close()
    source = random_files(tmp_path / "big", 6, 300_000)
    fill(small_disk, leave=500_000)
    result = CliRunner().invoke(app, ["--lake", str(root), "add", str(source)])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error = [line for line in lines if line.startswith("error: ")]
    assert len(error) == 1, result.stderr
    assert str(root) in error[0] and "limnos gc --yes" in error[0]
    with limnos.open(str(root)) as lake:
        assert list(lake.store.iter_objects()) == []


def test_create_whose_commit_fails_on_a_full_disk_removes_its_object(small_disk: Path) -> None:
    root = small_disk / "lake"
    with limnos.init(str(root)) as lake:
        with lake.create("seed.txt") as w:
            w.write_text("seed")
        before = snapshot(lake)
        payload = os.urandom(200_000)
        with pytest.raises(StoreFull), lake.create("big.bin") as w:  # main: OperationalError, object orphaned
            w.write_bytes(payload)
            fill(small_disk)  # the bytes are staged; the commit (records, catalog) finds no space
        assert snapshot(lake) == before


def test_create_that_cannot_even_stage_raises_store_full(small_disk: Path) -> None:
    root = small_disk / "lake"
    with limnos.init(str(root)) as lake:
        before = snapshot(lake)
        fill(small_disk, leave=100_000)
        with pytest.raises(StoreFull), lake.create("big.bin") as w:
            w.write_bytes(os.urandom(400_000))
        assert snapshot(lake) == before
        assert os.listdir(root / "tmp") == []


# ------------------------------------------------------- 10c/12. failed adds clean up
def test_a_failed_add_removes_the_objects_it_stored(lake: limnos.Lake, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lake.add(str(random_files(tmp_path / "old", 3, 1000)), name="old")
    source = random_files(tmp_path / "new", 20, 1000)
    (source / "dup.bin").write_bytes((tmp_path / "old" / "f000.bin").read_bytes())  # an object that exists already
    before = snapshot(lake)
    from limnos.core.commits import CommitBuilder

    def broken(self: CommitBuilder) -> None:
        raise OSError(errno.EIO, "catalog went away")

    monkeypatch.setattr(CommitBuilder, "write", broken)
    with pytest.raises(OSError, match="catalog went away"):
        lake.add(str(source), name="new")
    assert snapshot(lake) == before  # 20 new objects removed, the shared one kept
    assert lake.get("old/f000.bin").read_bytes() == (tmp_path / "old" / "f000.bin").read_bytes()


def test_a_create_whose_commit_fails_removes_its_new_object(lake: limnos.Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    with lake.create("old.txt") as w:
        w.write_text("shared bytes")
    before = snapshot(lake)
    from limnos.core.commits import CommitBuilder

    def broken(self: CommitBuilder) -> None:
        raise KeyboardInterrupt  # Ctrl-C while committing: the commit was not made

    monkeypatch.setattr(CommitBuilder, "write", broken)
    with pytest.raises(KeyboardInterrupt) as caught, lake.create("new.txt") as w:
        w.write_text("new bytes")  # main: the object stays, unreferenced
    assert snapshot(lake) == before
    assert "creating new.txt was not committed; its new object was removed" in caught.value.__notes__
    with pytest.raises(KeyboardInterrupt), lake.create("again.txt") as w:
        w.write_text("shared bytes")  # an object that existed already is never removed
    assert snapshot(lake) == before and lake.get("old.txt").read_text() == "shared bytes"


def test_an_interrupted_add_removes_its_objects_and_says_so(lake: limnos.Lake, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of a folder, with big files on the thread pool."""
    import limnos.ops.add as add_module

    monkeypatch.setattr(add_module, "BIG_FILE", 1)  # every file goes through the pool
    source = random_files(tmp_path / "src", 24, 5000)
    before = snapshot(lake)
    real_ingest = LocalObjectStore.ingest_packed  # small files go into the add's pack
    calls: list[str] = []

    def ingest(self: LocalObjectStore, writer: Any, src: str) -> tuple[str, int, bool]:
        calls.append(src)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real_ingest(self, writer, src)

    monkeypatch.setattr(LocalObjectStore, "ingest_packed", ingest)
    with pytest.raises(KeyboardInterrupt) as caught:
        lake.add(str(source), name="src")
    assert snapshot(lake) == before  # main: the objects written before the interrupt stay as orphans
    notes = getattr(caught.value, "__notes__", [])
    assert len(notes) == 1 and "was not committed" in notes[0] and "removed" in notes[0]


def test_an_interrupt_after_the_commit_keeps_everything(lake: limnos.Lake, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import limnos.ops.add as add_module

    source = random_files(tmp_path / "src", 5, 1000)

    def interrupted(*_args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(add_module, "_remember", interrupted)  # the step after the commit
    with pytest.raises(KeyboardInterrupt) as caught:
        lake.add(str(source), name="src")
    assert "was committed (5 new versions)" in caught.value.__notes__[0]
    assert len(lake.ls("src/")) == 5 and lake.fsck(read_data=True).ok


CTRL_C_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    from limnos.store import local
    real, seen = local.LocalObjectStore.ingest_packed_many, []  # small files go into the add's pack, in batches

    def ingest(self, writer, sources):
        out = []
        for src in sources:  # one at a time, so that exactly READY_AFTER - 1 are stored at the interrupt
            seen.append(src)
            if len(seen) == int(os.environ["READY_AFTER"]):
                open(os.environ["READY_FILE"], "w").close()  # the add is under way: the test may press Ctrl-C
                while True:
                    time.sleep(0.01)
            out += real(self, writer, [src])
        return out

    local.LocalObjectStore.ingest_packed_many = ingest
    from limnos.cli.main import main
    sys.argv = ["limnos", *sys.argv[1:]]
    main()
""")


def test_ctrl_c_during_a_long_cli_add(tmp_path: Path) -> None:
    """A real ``limnos add`` process of many files, SIGINT once it has stored objects (fails on main: silent exit)."""
    lake_dir = tmp_path / "lake"
    limnos.init(str(lake_dir)).close()
    source = tmp_path / "many"
    source.mkdir()
    for i in range(1500):
        (source / f"f{i:04d}.txt").write_text(f"file {i}\n")
    script, ready = tmp_path / "add_then_wait.py", tmp_path / "ready"
    script.write_text(CTRL_C_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "READY_FILE": str(ready),
           "READY_AFTER": "400", "LIMNOS_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, str(script), "--lake", str(lake_dir), "add", str(source)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()
            time.sleep(0.01)
        assert [p.name for p in files_under(lake_dir / "tmp") if p.name.startswith("pack-")]  # it had a pack under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert len(lines) == 1, err.decode()
    assert lines[0].startswith("interrupted: ") and "not committed" in lines[0] and "399 new objects" in lines[0]
    assert "Traceback" not in err.decode() and out == b""
    with limnos.open(str(lake_dir)) as lake:
        report = lake.fsck()
        assert report.ok and report.orphans == [] and lake.ls() == []
    assert list(files_under(lake_dir / "objects")) == []
    assert [p for p in files_under(lake_dir / "tmp") if p.name.startswith("pack-")] == []  # the staged pack went too
    assert not (lake_dir / "packs").exists() or not [n for n in os.listdir(lake_dir / "packs") if n.endswith(".pack")]
    assert os.listdir(lake_dir / "records") == []


def test_fsck_shows_orphans_and_how_to_remove_them(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    with limnos.init(str(lake_dir)) as lake:
        lake.store_blob(b"an object no file refers to")
    result = CliRunner().invoke(app, ["--lake", str(lake_dir), "fsck"])
    assert result.exit_code == 0  # orphans waste space but lose nothing: the report stays ok
    assert "1 unreferenced object (" in result.stdout and "limnos gc --yes --grace-days 0" in result.stdout
    assert result.stdout.rstrip().endswith("ok")


def test_other_errors_still_fail_as_before(lake: limnos.Lake) -> None:
    """StoreFull is only for a full disk: other OSErrors keep their type."""
    with pytest.raises(LimnosError):
        lake.add("/no/such/path")
