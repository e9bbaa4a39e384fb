"""Every python block of docs/notebooks.md and docs/ml.md runs, in order, in one namespace per page.

docs/ml.md trains with torch and TensorFlow: without them its test skips with
the install command, except under LIMNOS_REQUIRE_TORCH=1 / LIMNOS_REQUIRE_TF=1 (CI).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.S)


def run_page(page: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}  # type: ignore[type-arg]
    for block in blocks(page):
        exec(compile(block, str(DOCS / page), "exec"), namespace)  # our own documentation
    return namespace


def test_notebooks_page_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(blocks("notebooks.md")) >= 5
    ns = run_page("notebooks.md", monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert out.startswith("<Lineage of reports/summary.txt@1: 3 files, 1 run, 3 edges>")
    assert out.rstrip().endswith("False")  # progress.in_notebook() outside a kernel
    assert "photos/1.png@1" in ns["lake"].get("photos/1.png")._repr_html_()


def _need(module: str, flag: str, install: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        reason = f"{module} is not installed ({exc}); install it with: {install}"
        if os.environ.get(flag) == "1":
            pytest.fail(reason + f" ({flag}=1)")
        pytest.skip(reason)


def test_ml_page_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _need("torch", "LIMNOS_REQUIRE_TORCH", "make torch")
    _need("tensorflow", "LIMNOS_REQUIRE_TF", "make tensorflow")
    assert len(blocks("ml.md")) >= 5
    ns = run_page("ml.md", monkeypatch, tmp_path)
    assert (tmp_path / "shapes-hf" / "dataset_info.json").exists()
    assert len(ns["hf"]) == 6


class _Shell:
    def __init__(self, kernel: object) -> None:
        self.kernel = kernel


@pytest.mark.parametrize(("shell", "expected"), [(None, False), (_Shell(None), False), (_Shell(object()), True)])
def test_a_notebook_is_a_shell_with_a_kernel(monkeypatch: pytest.MonkeyPatch, shell: object, expected: bool) -> None:
    from limnos import progress

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.in_notebook() is expected  # no kernel: terminal IPython; a kernel: Jupyter
    monkeypatch.delitem(sys.modules, "IPython")
    assert progress.in_notebook() is False  # IPython never imported: a plain script
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.delenv("LIMNOS_PROGRESS", raising=False)
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.enabled() is expected  # piped stderr: bars only in a notebook
    monkeypatch.setenv("LIMNOS_PROGRESS", "0")
    assert progress.enabled() is False
