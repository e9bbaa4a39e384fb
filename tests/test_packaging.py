"""Packaging: the core install works without pandas and pyarrow, extras are named when they are missing,
and an unsupported platform is refused with a clear error.

The core-without-DataFrames test runs in a fresh interpreter whose imports of
pandas, pyarrow and numpy fail (a ``sys.meta_path`` finder, as if they were
not installed), since this test process has them loaded already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import limnos
from limnos.errors import SCHEME_EXTRAS, MissingExtra, require_protocol
from limnos.steps import formats

ROOT = Path(__file__).resolve().parent.parent
SRC = str(ROOT / "src")

# Makes the named top-level modules unimportable, then runs the script in $SCRIPT.
BLOCKING = """
import os, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in os.environ["BLOCK"].split(","):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
exec(compile(open(os.environ["SCRIPT"]).read(), os.environ["SCRIPT"], "exec"))
"""

CORE = """
import json, os, sys
import limnos
from limnos.cli.main import main

work = os.environ["WORK"]
os.makedirs(f"{work}/data/sub")
for name in ("a.csv", "sub/b.txt"):
    with open(f"{work}/data/{name}", "w") as f:
        f.write(name * 10)
lake = limnos.init(f"{work}/lake")
added = lake.add(f"{work}/data", name="raw", metadata={"project": "x"})
one = lake.add(f"{work}/data/a.csv", name="single.csv")
got = lake.get("raw/sub/b.txt")
path = lake.checkout("raw/a.csv", f"{work}/out/a.csv")
lake.remotes.add("origin", f"{work}/remote")
pushed = lake.push()
found = [f.name for f in lake.query(project="x")]
report = {"added": len(added), "read": got.read_text(), "checked_out": open(path).read(),
          "ls": [f.name for f in lake.ls()], "query": found, "history": len(lake.history("single.csv"))}
try:
    lake.query(project="x").dataframe
except limnos.MissingExtra as exc:
    report["dataframe"] = [type(exc).__name__, exc.extra, str(exc)]
lake.close()
clone = limnos.init(f"{work}/clone")
clone.remotes.add("origin", f"{work}/remote")
clone.pull(["raw/a.csv"])
report["pulled"] = clone.get("raw/a.csv").read_text()
clone.close()
sys.argv = ["limnos", "--lake", f"{work}/lake", "ls", "--format", "tsv"]
try:
    main()
except SystemExit as exc:
    report["cli_exit"] = exc.code
report["loaded"] = sorted({m.split(".")[0] for m in sys.modules} & {"pandas", "pyarrow", "numpy"})
with open(f"{work}/report.json", "w") as f:
    json.dump(report, f)
"""


def run_blocked(tmp_path: Path, script: str, block: str) -> subprocess.CompletedProcess[str]:
    script_path = tmp_path / "script.py"
    script_path.write_text(script)
    env = {**os.environ, "PYTHONPATH": SRC, "BLOCK": block, "SCRIPT": str(script_path), "WORK": str(tmp_path / "w")}
    return subprocess.run([sys.executable, "-c", BLOCKING], env=env, capture_output=True, text=True, timeout=300)


def test_the_core_works_without_pandas_pyarrow_or_numpy(tmp_path: Path) -> None:
    proc = run_blocked(tmp_path, CORE, "pandas,pyarrow,numpy")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "w" / "report.json").read_text())
    assert report["added"] == 2 and report["read"] == "sub/b.txt" * 10
    assert report["checked_out"] == "a.csv" * 10 and report["pulled"] == "a.csv" * 10
    assert report["ls"] == ["raw/a.csv", "raw/sub/b.txt", "single.csv"] and report["history"] == 1
    assert sorted(report["query"]) == ["raw/a.csv", "raw/sub/b.txt"]
    # The DataFrame is asked for: the error names the extra, at that moment and not before.
    assert report["dataframe"][:2] == ["MissingExtra", "pandas"]
    assert "pip install 'limnos[pandas]'" in report["dataframe"][2]
    assert report["cli_exit"] in (None, 0)
    assert proc.stdout.splitlines()[0].startswith("raw/a.csv\t1\t")
    assert report["loaded"] == []


def test_demo_without_pandas_names_the_extra(tmp_path: Path) -> None:
    script = ("import sys\nfrom limnos.cli.main import main\nsys.argv = ['limnos', 'demo']\n"
              "try:\n    main()\nexcept SystemExit as exc:\n    print('exit', exc.code)\n")
    proc = run_blocked(tmp_path, script, "pandas,pyarrow,numpy")
    assert proc.stdout.strip() == "exit 1", proc.stderr
    assert proc.stderr.strip() == "error: limnos demo needs pandas, which is not installed; run: pip install 'limnos[pandas]'"


def test_a_step_output_as_parquet_without_pyarrow_names_the_extra(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2]})
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    target = tmp_path / "out.parquet"
    with pytest.raises(MissingExtra) as exc:
        formats.write(frame, "parquet", str(target), "clean()'s output", allow_pickle=True)
    assert exc.value.extra == "pandas" and "clean()'s output as parquet needs pyarrow" in str(exc.value)
    assert not target.exists()  # no pickle fallback either: the extra is the fix


@pytest.mark.parametrize(("url", "module", "extra"), [
    ("gs://bucket/lake", "gcsfs", "gcs"),
    ("az://container/lake", "adlfs", "azure"),
    ("abfs://container/lake", "adlfs", "azure"),
    ("ssh://host/srv/lake", "paramiko", "ssh"),
    ("s3://bucket/lake", "s3fs", "s3"),
])
def test_a_missing_protocol_names_the_limnos_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   url: str, module: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # not installed, whether or not this machine has it
    lake = limnos.init(str(tmp_path / "lake"))
    try:
        with pytest.raises(MissingExtra) as exc:
            lake.remotes.add("far", url)
        assert exc.value.extra == extra and exc.value.name == module
        assert str(exc.value).endswith(f"run: pip install 'limnos[{extra}]'")
        assert lake.remotes.list() == []  # nothing was saved
        with pytest.raises(MissingExtra, match=rf"limnos\[{extra}\]"):
            limnos.open(url)
        with pytest.raises(MissingExtra, match=rf"limnos\[{extra}\]"):
            lake.add(url + "/x.csv", name="x.csv")
        assert lake.ls() == []
    finally:
        lake.close()


def test_unknown_and_local_schemes_are_left_to_fsspec() -> None:
    require_protocol("memory://x")
    require_protocol("/plain/path")
    require_protocol("file:///tmp/x")
    require_protocol("nosuchscheme://x")  # fsspec says "Protocol not known" itself


def test_unsupported_platform_is_refused_at_import(tmp_path: Path) -> None:
    script = ("try:\n    import limnos\nexcept Exception as exc:\n"
              "    print(type(exc).__name__, isinstance(exc, OSError), exc.platform)\n    print(exc)\n")
    proc = run_blocked(tmp_path, script, "fcntl")
    lines = proc.stdout.splitlines()
    assert lines[0] == f"UnsupportedPlatform True {sys.platform}", proc.stderr
    assert "POSIX file locks" in lines[1] and "WSL" in lines[1]


# ---------------------------------------------------------------- metadata
def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text()))


def test_core_dependencies_leave_dataframes_and_torch_to_extras() -> None:
    project = pyproject()["project"]
    core = {dep.split(">")[0].split("[")[0].split("=")[0].lower() for dep in project["dependencies"]}
    assert not core & {"pandas", "pyarrow", "numpy", "torch"}
    extras = project["optional-dependencies"]
    assert any(dep.startswith("pandas") for dep in extras["pandas"]) and any(d.startswith("pyarrow") for d in extras["pandas"])
    everything = extras["all"][0]
    assert "pandas" in everything and "torch" not in everything  # all must not pull a CUDA build
    assert "limnos[pandas" in extras["dev"][0]  # the tests need DataFrames
    for _module, extra in SCHEME_EXTRAS.values():  # every extra an error names exists, and all brings it
        assert extra in extras, extra
        assert extra in everything, extra


def test_license_and_classifiers() -> None:
    project = pyproject()["project"]
    text = (ROOT / "LICENSE").read_text()
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert "Operating System :: POSIX :: Linux" in project["classifiers"]
    assert not any("Windows" in c for c in project["classifiers"])
