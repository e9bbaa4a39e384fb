"""docs/fsspec.md runs as written: every Python block, in order, in one namespace, in an empty folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import fsspec
import pytest

from limnos.fs import LimnosFileSystem

PAGE = Path(__file__).resolve().parent.parent / "docs" / "fsspec.md"

if "limnos" not in fsspec.available_protocols():  # an editable install made before the entry point existed
    fsspec.register_implementation("limnos", LimnosFileSystem, clobber=True)


def test_the_fsspec_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "fsspec_page"}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    namespace["lake"].close()


def test_the_page_counts_the_suite_right() -> None:
    """The page says how many of fsspec's abstract tests run; keep it true."""
    import fsspec.tests.abstract as abstract

    classes = [abstract.AbstractCopyTests, abstract.AbstractGetTests, abstract.AbstractPutTests,
               abstract.AbstractOpenTests, abstract.AbstractPipeTests]
    count = 0
    for cls in classes:
        for name in dir(cls):
            if name.startswith("test_"):
                marks = getattr(getattr(cls, name), "pytestmark", [])
                params = [len(m.args[1]) for m in marks if m.name == "parametrize"]
                n = 1
                for p in params:
                    n *= p
                count += n
    assert f"all {count} of its" in PAGE.read_text(encoding="utf-8")
