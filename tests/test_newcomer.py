"""The bugs and friction a newcomer hits (issue 12): metadata values, timestamps, init, messages, the CLI."""

from __future__ import annotations

import datetime as dt
import inspect
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

import limnos
from limnos.catalog.values import parse_timestamp
from limnos.errors import MetadataError

UTC = dt.timezone.utc

# (text, the datetime it means): fractional seconds of any length, Z, +0100, +01:00, a space, a date alone.
TIMESTAMPS = [
    ("2026-01-02T03:04:05.123456Z", dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ("2026-01-02T03:04:05.5Z", dt.datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
    ("2026-01-02T03:04:05.123456789+00:00", dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ("2026-01-02T03:04:05+0100", dt.datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)),
    ("2026-01-02 03:04:05.25-05:30", dt.datetime(2026, 1, 2, 8, 34, 5, 250000, tzinfo=UTC)),
    ("2026-01-02T03:04z", dt.datetime(2026, 1, 2, 3, 4, tzinfo=UTC)),
    ("2026-01-02T03:04:05+01", dt.datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "expected"), TIMESTAMPS)
def test_timestamps_parse_with_fractions_z_and_compact_offsets(text: str, expected: dt.datetime) -> None:
    assert parse_timestamp(text) == expected
    assert parse_timestamp("2026-01-02") == dt.datetime(2026, 1, 2)           # naive: callers take it as UTC
    for bad in ("2026-01-02T", "yesterday", "2026-1-2", "2026-01-02T03:04:05+1"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_timestamps_parse_the_same_on_python_3_10() -> None:
    """pyproject declares 3.10: the parser (stdlib only) gives the same answers there."""
    candidates = [shutil.which("python3.10"), *map(str, Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))]
    py310 = next((c for c in candidates if c and subprocess.run([c, "-c", "pass"], capture_output=True).returncode == 0),
                 None)
    if py310 is None:
        pytest.skip("no python3.10 on this machine")
    from limnos import times as values

    program = "\n".join(["import datetime as dt, re", "from typing import Any",
                         f"_TIMESTAMP = re.compile({values._TIMESTAMP.pattern!r})",
                         textwrap.dedent(inspect.getsource(values.parse_timestamp)),
                         "import sys",
                         "for line in sys.stdin.read().splitlines():",
                         "    print(parse_timestamp(line).isoformat())"])
    out = subprocess.run([py310, "-c", program], input="\n".join(t for t, _ in TIMESTAMPS), capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == [parse_timestamp(t).isoformat() for t, _ in TIMESTAMPS]


def test_query_and_cli_values_take_such_timestamps(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("a.txt", metadata={"seen": dt.datetime(2026, 1, 2, 2, 0, tzinfo=UTC)}) as w:
        w.write_text("a")
    from limnos.cli.app import parse_value

    assert parse_value("2026-01-02T03:00:00.5+0100") == dt.datetime(2026, 1, 2, 2, 0, 0, 500000, tzinfo=UTC)
    assert parse_value("2026-01-02T02:00:00.000Z") == dt.datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    lake.close()


def test_metadata_takes_numpy_scalars_dates_and_none(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("a.txt") as w:
        w.write_text("a")
    f = lake.set_metadata("a.txt", {
        "ok": np.bool_(True), "n": np.int64(3), "u": np.uint8(7), "x": np.float32(1.5), "s": np.str_("hi"),
        "day": dt.date(2026, 1, 2), "at": np.datetime64("2026-01-02T03:04:05.123456789"),
        "scores": [np.float64(0.5), np.int16(2)], "nested": {"flag": np.bool_(False)},
    })
    assert f.metadata == {
        "ok": True, "n": 3, "u": 7, "x": 1.5, "s": "hi",
        "day": dt.datetime(2026, 1, 2, tzinfo=UTC),                       # a date is stored as midnight UTC
        "at": dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "scores": [0.5, 2], "nested": {"flag": False},
    }
    assert type(f.metadata["ok"]) is bool and type(f.metadata["n"]) is int
    assert [g.name for g in lake.query(ok=np.bool_(True), day=dt.date(2026, 1, 2))] == ["a.txt"]

    # None unsets the key (an absent key is fine too); it is never stored as a null.
    f = lake.set_metadata("a.txt", {"ok": None, "never_set": None, "n": np.int64(4)})
    assert "ok" not in f.metadata and "never_set" not in f.metadata and f.metadata["n"] == 4
    with lake.create("b.txt", metadata={"ok": None, "n": 1}) as w:
        w.write_text("b")
    assert lake.get("b.txt").metadata == {"n": 1}

    # Still refused, and nothing written: objects metadata cannot hold.
    before = lake.get("a.txt").metadata
    with pytest.raises(MetadataError, match="cannot store a object"):
        lake.set_metadata("a.txt", {"o": object()})
    with pytest.raises(MetadataError, match="not JSON-serializable"):
        lake.set_metadata("a.txt", {"o": [object()]})
    assert lake.get("a.txt").metadata == before
    lake.close()


def test_no_library_hint_stays_python_on_the_command_line() -> None:
    """Every ``hint=`` the library gives, with its placeholders filled, reads as a command after cli/advice.py."""
    import re

    from limnos.cli.advice import shell_advice
    from limnos.cli.errors import HINTS

    src = Path(limnos.__file__).parent
    texts = set()
    for path in src.rglob("*.py"):
        if "cli" in path.relative_to(src).parts:
            continue
        for hint in re.findall(r'hint=f?"([^"]*)"', path.read_text(encoding="utf-8")):
            texts.add(re.sub(r"\{[^}]*\}", "'x'", hint))
    # The CLI gives its own advice for these errors (cli/errors.py HINTS) instead of the library's.
    own = {"pass cascade=True", "share a PostgreSQL catalog instead", "pull into it instead"}
    assert {cls.__name__ for cls in HINTS} >= {"FileHasDependents", "TeamModeUnsupported", "TeamLakeTarget"}
    python = [f"{t!r} -> {shell_advice(t)!r}" for t in sorted(texts) if not any(t.startswith(o) for o in own)
              and re.search(r"lake\.\w+\(|limnos\.\w+(\.\w+)*\(|\w=(True|False)\b", shell_advice(t))]
    assert not python, "\n".join(python)


# ---------------------------------------------------------------------- init
def _cli(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from limnos.cli.main import app

    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, f"limnos {' '.join(args)} -> {result.exit_code}\n{result.stderr}\n{result.stdout}"
    return result


def test_init_dir_makes_dir_dot_limnos_beside_the_projects_files(tmp_path: Path) -> None:
    from limnos.errors import FolderNotEmpty

    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "README.md").write_text("mine")
    before = sorted(p.name for p in proj.iterdir())
    result = _cli("init", str(proj))
    assert f"created a lake at {proj / '.limnos'}" in result.stderr
    assert sorted(p.name for p in proj.iterdir()) == sorted([*before, ".limnos"])   # nothing among the user's files
    assert (proj / ".limnos" / "limnos.yaml").is_file()
    with limnos.open(str(proj)) as lake:                                           # the project folder opens it
        assert lake.path == str(proj / ".limnos")
    again = _cli("init", str(proj), ok=False)
    assert again.exit_code == 1 and "a lake already exists" in again.stderr and "limnos.open" not in again.stderr
    assert _cli("init", str(tmp_path / "new")).exit_code == 0                       # a missing DIR is made
    assert (tmp_path / "new" / ".limnos" / "limnos.yaml").is_file()

    # Python's limnos.init(path) makes the lake in path itself, so it refuses a folder with other files.
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("a\n")
    with pytest.raises(FolderNotEmpty, match="holds other files") as info:
        limnos.init(str(other))
    assert sorted(p.name for p in other.iterdir()) == ["data.csv"]                  # nothing written
    assert ".limnos" in (info.value.hint or "")
    limnos.init(str(other / ".limnos")).close()


def test_init_dir_on_a_folder_that_is_a_lake_refuses(tmp_path: Path) -> None:
    limnos.init(str(tmp_path / "old")).close()            # a lake in the folder itself (an older init DIR)
    result = _cli("init", str(tmp_path / "old"), ok=False)
    assert result.exit_code == 1 and "a lake already exists" in result.stderr
    assert not (tmp_path / "old" / ".limnos").exists()


def test_init_inside_a_lake_project_warns_before_nesting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = tmp_path / "proj"
    _cli("init", str(proj))
    (proj / "sub").mkdir()
    monkeypatch.chdir(proj / "sub")
    result = _cli("init")
    assert result.stderr.startswith("warning: ") and str(proj / ".limnos") in result.stderr
    assert (proj / "sub" / ".limnos" / "limnos.yaml").is_file()
    quiet = _cli("init", str(tmp_path / "elsewhere"))
    assert "warning" not in quiet.stderr


# ------------------------------------------------------------- rm, fsck, gc
def test_rm_and_gc_say_when_the_space_is_freed_and_how_to_free_it_now(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    _cli("init")
    Path("a.txt").write_text("hello")
    _cli("add", "a.txt")
    rm = _cli("rm", "a.txt").stderr
    assert "its bytes stay for a day" in rm and "'limnos gc --yes --grace-days 0' now" in rm
    fsck = _cli("fsck").stdout
    assert "1 unreferenced object (" in fsck and "a day after they were written" in fsck
    assert "'limnos gc --yes --grace-days 0' removes them now" in fsck
    gc = _cli("gc", "--yes").stdout
    assert "deleted 0 unreferenced objects (0 bytes) of 1 object in the store" in gc
    assert "1 object (5 bytes) of files deleted, or written, less than a day ago is kept" in gc
    assert "a gc from " in gc and "'limnos gc --yes --grace-days 0' to free it" in gc and "lake.gc" not in gc
    report = json.loads(_cli("gc", "--json").stdout)
    assert len(report["kept"]) == 1 and report["deleted"] == []
    assert "deleted 1 unreferenced object (5 bytes)" in _cli("gc", "--yes", "--grace-days", "0").stdout
    assert json.loads(_cli("gc", "--json").stdout)["kept"] == []


def test_counts_read_in_the_right_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _cli("init")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "one.txt").write_text("1")
    assert "added 1 file from d: 1 new version, 0 unchanged" in _cli("add", "d").stderr
    assert "checked 1 file and 1 object" in _cli("fsck").stdout
    assert "rebuilt the catalog from 1 commit: 1 file" in _cli("reindex", "--force").stderr


def test_reindex_after_the_catalog_file_was_deleted_succeeds_and_says_what_it_restored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _cli("init")
    for name in ("a.txt", "b.txt"):
        Path(name).write_text(name)
        _cli("add", name)
    for p in (tmp_path / ".limnos").glob("catalog.sqlite*"):
        p.unlink()
    result = _cli("reindex")
    assert "restored the catalog from the records when the lake was opened: 2 commits, 2 files" in result.stderr
    with limnos.open() as lake:
        assert sorted(f.name for f in lake.ls()) == ["a.txt", "b.txt"]
    again = _cli("reindex", ok=False)                                      # a healthy catalog: as before
    assert again.exit_code == 1 and "not empty" in again.stderr and "limnos reindex --force" in again.stderr
    forced = _cli("reindex", "--force")
    assert "rebuilt the catalog from 2 commits: 2 files" in forced.stderr


# ------------------------------------------------------------ PostgreSQL down
def test_an_unreachable_postgresql_says_which_url_and_what_to_check(tmp_path: Path) -> None:
    import socket

    from limnos.errors import CatalogError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://ana:hunter2@127.0.0.1:{port}/lake"
    with pytest.raises(CatalogError) as info:
        limnos.init(str(tmp_path / "lake"), catalog=url)
    text = str(info.value)
    assert info.value.message.startswith(f"cannot connect to the catalog at postgresql://ana:***@127.0.0.1:{port}/lake: ")
    assert "hunter2" not in text and "OperationalError" not in text and "check that the PostgreSQL server" in text
    assert not (tmp_path / "lake").exists()                               # no half-made lake left
    result = _cli("init", str(tmp_path / "cli"), "--catalog", url, ok=False)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "hunter2" not in result.stderr
    assert result.stderr.startswith("error: cannot connect to the catalog at postgresql://ana:***@")


# ----------------------------------------------------------------- cat, get
def test_cat_of_a_prefix_says_so_and_get_makes_missing_folders(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _cli("init")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text("a")
    (tmp_path / "raw" / "b.txt").write_text("b")
    _cli("add", "raw")
    for ref in ("raw/", "raw"):
        result = _cli("cat", ref, ok=False)
        assert result.exit_code == 1 and result.stdout == ""
        assert result.stderr == "error: 'raw/' is a prefix (a folder) of 2 files, not a file; see them with 'limnos ls raw/'\n"
    assert "no file 'nothing' in the lake" in _cli("cat", "nothing", ok=False).stderr
    assert _cli("get", "raw/", "out/", ok=False).stderr.startswith("error: 'raw/' is a prefix")
    assert not (tmp_path / "out").exists()

    assert _cli("get", "raw/a.txt", "new/deeper/").stdout.strip() == str(Path("new/deeper/a.txt"))
    assert (tmp_path / "new" / "deeper" / "a.txt").read_text() == "a"
    assert _cli("get", "raw/b.txt", "other/renamed.txt").stdout.strip() == str(Path("other/renamed.txt"))
    assert (tmp_path / "other" / "renamed.txt").read_text() == "b"


# --------------------------------------------------------------- usage errors
def test_a_mistyped_command_is_one_line_with_the_suggestion_and_exit_1() -> None:
    result = _cli("lss", ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "error: no such command 'lss'; did you mean 'ls'? (see 'limnos -h')\n"
    sub = _cli("ds", "lisst", ok=False)
    assert sub.exit_code == 1 and sub.stderr == "error: no such command 'lisst'; did you mean 'list'? (see 'limnos ds -h')\n"
    bad = _cli("ls", "--bogus", ok=False)                       # a bad option: one line too, click's exit code 2
    assert bad.exit_code == 2 and bad.stderr.startswith("error: No such option: --bogus")
    assert bad.stderr.endswith(" (see 'limnos ls -h')\n") and bad.stderr.count("\n") == 1
    assert "Commands" in _cli("remote", ok=False).stdout        # a group alone still prints its help


def test_the_demo_names_a_limnos_the_user_can_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``make demo`` runs .venv/bin/limnos without activating the venv: the explore lines give its full path."""
    import sys

    from limnos.cli.demo import command_name

    exe = tmp_path / "venv" / "bin" / "limnos"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(exe), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert command_name() == str(exe)
    monkeypatch.setenv("PATH", str(exe.parent))                 # an activated venv: the bare name works
    assert command_name() == "limnos"


# -------------------------------------------------------------------- README
def _bash_blocks(section: str) -> list[str]:
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```bash\n(.*?)```", text[start:end], re.S)


def test_the_readme_cli_walkthrough_and_datasource_example_run_as_written(tmp_path: Path) -> None:
    """The README's command-line block, then the datasource commands of docs/datasources.md on the files it made."""
    import os
    import re
    import sys

    src = Path(limnos.__file__).resolve().parents[1]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, run in (("limnos", f'"{sys.executable}" -m limnos'), ("python", f'"{sys.executable}"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nPYTHONPATH="{src}" exec {run} "$@"\n')
        (bin_dir / name).chmod(0o755)
    walkthrough = _bash_blocks("The command line")[0]  # the next one, `limnos add https://...`, needs the network
    page = (Path(__file__).resolve().parents[1] / "docs" / "datasources.md").read_text(encoding="utf-8")
    [datasource] = [b for b in re.findall(r"```bash\n(.*?)```", page, re.S) if b.startswith("limnos ds create tables raw ")]
    # The one adaptation: no network in tests, so the URL example is left out.
    lines = [line for line in walkthrough.splitlines() if "https://" not in line]
    script = "set -e\n" + "\n".join(lines) + "\n" + datasource
    work = tmp_path / "readme"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "LIMNOS_PROGRESS": "0"}
    env.pop("LIMNOS_LAKE", None)
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "raw/train.csv" in proc.stdout and '"split": "train"' in proc.stdout
    assert (work / "train_v1.csv").read_text() == "x,y\n1,2\n3,4\n"
    assert (work / "train-only" / "raw" / "train.csv").is_file()
    with limnos.open(str(work)) as lake:
        assert [f.name for f in lake.get("features/train.csv").inputs] == ["raw/train.csv"]
        assert lake.dataset("reviewed") is not None
