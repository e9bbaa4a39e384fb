"""Start-up and listing at scale: what a command imports, and ``limnos ls`` streaming.

A command's start-up is bound by its imports (SQLAlchemy, pandas, pyarrow and
rich each cost tens of milliseconds), so these tests check WHAT is imported
in a fresh interpreter, never how long it takes. ``limnos ls`` reads the
catalog page by page and prints as it goes: the tests check that the pages
join up to exactly what ``lake.ls()`` returns, even with writers in between,
and that the streamed JSON is the very text of the whole list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import limnos
from limnos.cli import app
from limnos.cli.render.console import dumps
from limnos.errors import InvalidName

SRC = str(Path(__file__).resolve().parent.parent / "src")
HEAVY = ("sqlalchemy", "pandas", "pyarrow", "numpy", "fsspec")

# Runs a command in a fresh interpreter, then writes the top-level modules it loaded to the file in $MODULES_OUT.
PROBE = """
import json, os, sys
sys.argv = ["limnos", *json.loads(os.environ["ARGS"])]
from limnos.cli.main import main
try:
    main()
except SystemExit:
    pass
finally:
    with open(os.environ["MODULES_OUT"], "w") as out:
        json.dump(sorted({name.split(".")[0] for name in sys.modules}), out)
"""


def loaded_by(tmp_path: Path, *args: str, cwd: Path | None = None) -> set[str]:
    """The top-level modules a fresh ``limnos ARGS`` process has loaded when it ends (its stdout is a pipe)."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": SRC, "ARGS": json.dumps(list(args)), "MODULES_OUT": str(out)}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd or tmp_path, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return set(json.loads(out.read_text()))


def test_importing_the_cli_loads_no_heavy_library(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    code = ("import json, sys; import limnos.cli.main; "
            f"json.dump(sorted({{n.split('.')[0] for n in sys.modules}}), open({str(out)!r}, 'w'))")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC}, check=True, timeout=120)
    loaded = set(json.loads(out.read_text()))
    assert "typer" in loaded  # the probe saw the CLI's own imports
    assert not loaded & {*HEAVY, "rich", "pygments", "pydantic", "yaml"}


def test_help_loads_no_lake_library(tmp_path: Path) -> None:
    loaded = loaded_by(tmp_path, "--help")
    assert not loaded & set(HEAVY)
    assert not loaded & {"rich", "pygments", "pydantic"}  # plain help (cli/helptext.py); no value was coerced
    assert not loaded_by(tmp_path, "ls", "--help") & {*HEAVY, "rich", "pydantic"}


def test_a_command_loads_no_project_machinery(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))
    lake.close()
    probe = ("import sys; from limnos.cli.main import main; sys.argv = ['limnos', '--lake', sys.argv[1], 'ls']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('limnos.tracking.', 'limnos.ops.'))))")
    proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "lake")], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Every command reads a project's settings first (limnos.lock); that is all of tracking it loads.
    assert proc.stdout.splitlines()[-1] == "['limnos.tracking.manifest', 'limnos.tracking.settings']"


def test_piped_ls_draws_without_rich_or_dataframes(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("a.txt") as w:
        w.write_text("a")
    lake.close()
    loaded = loaded_by(tmp_path, "--lake", str(tmp_path / "lake"), "ls")
    assert "sqlalchemy" in loaded  # it did open the lake
    assert not loaded & {"pandas", "pyarrow", "numpy", "pygments", "pydantic"}  # pydantic: see cli/app.py _LazyCoercion


@pytest.fixture
def lake(tmp_path: Path) -> limnos.Lake:
    lake = limnos.init(str(tmp_path / "lake"))
    for name in ("b/2.txt", "a/1.txt", "b/1.txt", "c.txt", "a/2.txt"):
        with lake.create(name, metadata={"n": len(name)}) as w:
            w.write_text(name)
    yield lake
    lake.close()


def test_iter_ls_pages_join_up_to_ls(lake: limnos.Lake) -> None:
    whole = [(f.id, f.metadata) for f in lake.ls()]
    for page in (1, 2, 3, 5, 1000):
        assert [(f.id, f.metadata) for f in lake.iter_ls(page=page)] == whole
    assert [f.name for f in lake.iter_ls("b/", page=1)] == ["b/1.txt", "b/2.txt"]
    assert list(lake.iter_ls("nothing/")) == []


def test_iter_ls_lists_each_name_once_while_a_writer_commits(lake: limnos.Lake) -> None:
    seen = []
    for f in lake.iter_ls(page=2):
        seen.append(f.name)
        if f.name == "a/2.txt":  # after the first page: a new version of a listed name, and new names on both sides
            for name in ("a/1.txt", "a/0.txt", "d.txt"):
                with lake.create(name) as w:
                    w.write_text("new " + name)
    assert seen == ["a/1.txt", "a/2.txt", "b/1.txt", "b/2.txt", "c.txt", "d.txt"]


def test_iter_ls_checks_its_prefix_before_reading(lake: limnos.Lake) -> None:
    with pytest.raises(InvalidName):
        lake.iter_ls("../x")  # raised by the call itself, not at the first next()


def test_ls_json_streams_the_same_text_as_the_whole_list(lake: limnos.Lake) -> None:
    env = {"LIMNOS_LAKE": lake.path}
    out = CliRunner().invoke(app, ["ls", "--json"], env=env)
    assert out.exit_code == 0, out.stderr
    expected = [{**f.to_dict(), "local": f.is_local} for f in lake.ls()]
    assert out.stdout == dumps(expected) + "\n"
    empty = CliRunner().invoke(app, ["ls", "nothing/", "--json"], env=env)
    assert empty.stdout == "[]\n" and json.loads(empty.stdout) == []


def test_piped_ls_prints_one_tab_separated_line_per_file(lake: limnos.Lake) -> None:
    with lake.create("with space.txt") as w:  # names hold no tab or newline (InvalidName): a space stays in its cell
        w.write_text("x")
    out = CliRunner().invoke(app, ["ls"], env={"LIMNOS_LAKE": lake.path})
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    files = lake.ls()
    assert len(lines) == len(files)
    cells = [line.split("\t") for line in lines]
    assert all(len(c) == 7 for c in cells)
    assert [c[0] for c in cells[:5]] == ["a/1.txt", "a/2.txt", "b/1.txt", "b/2.txt", "c.txt"]
    assert cells[5][0] == "with space.txt"
    assert [(c[1], c[5], c[6]) for c in cells] == [(str(f.version), f.hash[:12], "✓") for f in files]


def test_the_local_column_is_looked_up_a_page_at_a_time_and_says_what_is_local_says(tmp_path: Path) -> None:
    """``limnos ls`` asks for a page's locality at once (packs in one query, a stat for the rest); each flag
    is what ``File.is_local`` says alone: packed, loose, chunked, and an object that is gone."""
    import os

    from limnos.core.files import local_flags

    lake = limnos.init(str(tmp_path / "lake"))
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):  # enough small files for one pack
        (src / f"p{i}.txt").write_text(f"packed {i}")
    lake.add(str(src), name="packed")
    with lake.create("loose.txt") as w:  # one small object alone stays loose
        w.write_text("loose")
    with lake.create("gone.txt") as w:
        w.write_text("about to lose its object")
    os.chmod(os.path.dirname(lake.cache.path(w.file.hash)), 0o755)
    os.unlink(lake.cache.path(w.file.hash))
    files = lake.ls()
    flags = local_flags(files)
    assert flags == [f.is_local for f in files]
    assert dict(zip([f.name for f in files], flags, strict=True)) == {
        **{f"packed/p{i}.txt": True for i in range(6)}, "loose.txt": True, "gone.txt": False}
    lake.close()
