"""radops (seed 002) as a test: its data-lake walkthrough and ``file_creator`` pipeline, run with limnos.

The seed's README is /work/shared/seeds/002; docs/migrating/radops.md shows the
same flow. Names differ only where limnos names things differently:
``radops datalake add local name`` is ``limnos add local --name name``,
``File(uid)`` is ``lake.get(uid)``, ``@file_creator`` is ``@limnos.step`` and
``File(output_uid)`` written inside it is ``limnos.output(output_uid)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import limnos
from helpers import doc_block
from limnos.cli.app import app
from limnos.errors import StepOutputError, StepReturnWarning

SRC = str(Path(limnos.__file__).resolve().parents[1])

# The seed's pipeline.py, adapted only where a name differs (File(output_uid) -> limnos.output(output_uid)).
PIPELINE = doc_block("migrating/radops.md", "# pipeline.py")
# The seed's "Implicit UIDs" variant: no output name, the key names the output.
IMPLICIT = doc_block("migrating/radops.md", "# pipeline.py, implicit outputs")


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"limnos {' '.join(args)} -> {result.exit_code}\n{result.stderr}\n{result.stdout}"
    return result.stdout


def python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "LIMNOS_PROGRESS": "0"}
    env.pop("LIMNOS_LAKE", None)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a lake holding ``name_in_datalake.txt``, made as the seed's CLI walkthrough does."""
    proj = tmp_path / "proj"
    proj.mkdir()
    monkeypatch.chdir(proj)
    limnos.init(str(proj / ".limnos")).close()
    Path("sample.txt").write_text("this is some data")
    cli("add", "sample.txt", "--name", "name_in_datalake.txt")     # radops datalake add sample.txt name_in_datalake.txt
    assert "name_in_datalake.txt" in cli("ls")                       # radops datalake ls
    assert "name_in_datalake.txt" in cli("info", "name_in_datalake.txt")  # radops datalake info
    with limnos.open() as lake, lake.get("name_in_datalake.txt").open("r") as fileobj:  # File(uid).open("r")
        assert fileobj.read() == "this is some data"
    return proj


def test_file_creator_pipeline_runs_once_as_a_script_and_when_imported(project: Path) -> None:
    (project / "pipeline.py").write_text(PIPELINE)
    first = python(project, "pipeline.py")
    assert first.stdout == "this is some dataadditional data\n"
    again = python(project, "pipeline.py")                 # skipped: the output is in the lake already
    assert again.stdout == first.stdout
    # The same function imported (module ``pipeline``, not ``__main__``) is the same step: a hit.
    imported = python(project, "-c", "import limnos, pipeline\n"
                      "call = pipeline.process.call(f=limnos.open().get('name_in_datalake.txt'), "
                      "output_uid='processed_file.txt')\n"
                      "print(call.hit, call.value.read_text())")
    assert imported.stdout == "True this is some dataadditional data\n"
    with limnos.open() as lake:
        assert [f.version for f in lake.history("processed_file.txt")] == [1]   # no duplicate output
        assert len(lake.steps()) == 1
        out = lake.get("processed_file.txt")
        assert [f.name for f in out.inputs] == ["name_in_datalake.txt"]
        assert out.step is not None and out.step.function.endswith("process")
        assert out.step.params["output_uid"] == "processed_file.txt"
    drawn = cli("lineage", "processed_file.txt")          # radops datalake lineage
    assert "name_in_datalake.txt" in drawn and "process" in drawn and "processed_file.txt" in drawn


def test_another_machine_skips_and_downloads_only_what_it_reads(project: Path, tmp_path: Path) -> None:
    (project / "pipeline.py").write_text(PIPELINE)
    python(project, "pipeline.py")
    with limnos.open() as lake:
        lake.remotes.add("origin", str(tmp_path / "remote"))
        lake.push()
    other = tmp_path / "elsewhere" / "proj"   # another checkout, at another place on disk
    other.mkdir(parents=True)
    (other / "pipeline.py").write_text(PIPELINE)
    bob = limnos.init(str(other / ".limnos"))
    bob.remotes.add("origin", str(tmp_path / "remote"))
    bob.pull(download=False)
    assert not bob.get("name_in_datalake.txt").is_local and not bob.get("processed_file.txt").is_local
    bob.close()
    run = python(other, "pipeline.py")
    assert run.stdout == "this is some dataadditional data\n"
    with limnos.open(str(other / ".limnos")) as bob:
        assert len(bob.steps()) == 1                               # no new execution: a hit
        assert bob.get("processed_file.txt").is_local              # read by the script, so downloaded
        assert not bob.get("name_in_datalake.txt").is_local        # the input was not needed


def test_implicit_uids_are_named_by_the_key_and_still_cached(project: Path) -> None:
    (project / "pipeline.py").write_text(IMPLICIT)
    assert python(project, "pipeline.py").stdout == "this is some dataadditional data\n"
    assert python(project, "pipeline.py").stdout == "this is some dataadditional data\n"
    with limnos.open() as lake:
        made = [f for f in lake.ls("steps/")]
        assert len(made) == 1 and made[0].name.startswith("steps/") and len(lake.steps()) == 1


def test_return_w_file_is_the_committed_file_on_miss_and_hit(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))
    seen = {}

    @lake.step
    def make(text: str) -> limnos.File:
        with lake.create("out/made.txt") as w:
            w.write_text(text)
        seen["pending"] = w.file
        with pytest.raises(StepOutputError, match="committed when its step returns"):
            _ = w.file.id  # not committed yet: says so instead of giving a wrong answer
        return w.file

    miss = make("hello")
    assert isinstance(miss, limnos.File) and miss.read_text() == "hello"
    assert seen["pending"].id == miss.id and seen["pending"] == miss  # the pending File became the real one
    hit = make.call("hello")
    assert hit.hit and hit.value == miss and hit.value.read_text() == "hello"
    lake.close()


def test_returning_none_after_writing_warns_and_an_annotated_file_step_raises(tmp_path: Path) -> None:
    lake = limnos.init(str(tmp_path / "lake"))

    @lake.step
    def forgets(text: str):  # type: ignore[no-untyped-def]
        with limnos.output("out/a.txt") as w:
            w.write_text(text)

    with pytest.warns(StepReturnWarning, match="returned None"):
        assert forgets("x") is None
    assert lake.get("out/a.txt").read_text() == "x"      # the output is still committed

    @lake.step
    def forgets_typed(text: str) -> limnos.File:
        with limnos.output("out/b.txt") as w:
            w.write_text(text)
        return None  # type: ignore[return-value]

    steps_before = len(lake.steps(failed=False))
    with pytest.raises(StepOutputError, match="annotated to return a File"):
        forgets_typed("y")
    assert lake.ls("out/b.txt") == [] and len(lake.steps(failed=False)) == steps_before  # nothing committed

    @lake.step
    def pure(n: int):  # type: ignore[no-untyped-def]
        return None

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no output, no warning
        assert pure(1) is None
    lake.close()


def test_key_names_the_file_relative_to_the_project_root(tmp_path: Path) -> None:
    from limnos.steps.key import key_function

    proj = tmp_path / "p"
    (proj / "pkg").mkdir(parents=True)
    (proj / "limnos.lock").write_text("")
    script = proj / "pkg" / "pipe.py"
    script.write_text(textwrap.dedent("def clean():\n    pass\n"))
    assert key_function("clean", "__main__", str(script)) == "pkg/pipe.py:clean"
    assert key_function("clean", "pkg.pipe", str(script)) == "pkg/pipe.py:clean"
    assert key_function("clean", "nb", None) == "nb.clean"    # no source file: module.qualname
