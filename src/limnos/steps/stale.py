"""Stale step outputs: made by code or from inputs that have changed since (``limnos status --steps``).

For every current file (the latest version of its name, not deleted) that a
step made, three things are compared with what the step recorded:

* **code**: the function's normalized source now, found by reading the
  recorded source file and locating ``qualname`` in its syntax tree. Nothing
  is imported or run, so checking a script that does work at import time is
  safe. When the file is gone but the module is loaded in this process, the
  live function is used; otherwise the code is reported as not checkable.
* **version**: a literal ``version=`` in the step's decorator.
* **inputs**: for each input file, the newest version of its name. A newer
  version with *different content* makes the output stale (a re-write of the
  same bytes would be a cache hit, so it is not); a deleted input too.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.files import File
from .key import UNKNOWN, code_hash_of_def, declared_version, find_def
from .step import StepRecord

if TYPE_CHECKING:
    from ..core.base import LakeBase


@dataclass
class StaleOutput:
    """A step output that would be made differently now, and why."""

    file: File
    step: StepRecord
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The stale output as JSON-ready data, for ``limnos status --steps --json``."""
        return {"name": self.file.name, "version": self.file.version, "ref": self.file.ref, "id": self.file.id,
                "function": self.step.function, "step": self.step.id, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class _Code:
    hash: str | None  # None: the code could not be found
    version: Any  # the declared version (str or None), or UNKNOWN
    missing: bool = False  # the source file exists but no longer defines the function


def _qualname(step: StepRecord) -> str:
    module = step.module or ""
    return step.function[len(module) + 1:] if module and step.function.startswith(module + ".") else step.function


def current_code(step: StepRecord) -> _Code:
    """The code hash and declared version of a step's function as it is now."""
    qualname = _qualname(step)
    if step.source_file and os.path.isfile(step.source_file):
        try:
            with open(step.source_file, encoding="utf-8") as f:
                source = f.read()
        except (OSError, UnicodeDecodeError):
            return _Code(None, UNKNOWN)
        node = find_def(source, qualname, step.source_line)
        if node is None:
            return _Code(None, UNKNOWN, missing=True)
        version = declared_version(node)
        if version is not None and version is not UNKNOWN:
            version = str(version)  # recorded as text
        return _Code(code_hash_of_def(node), version)
    live: Any = sys.modules.get(step.module or "")
    for part in qualname.split("."):
        live = getattr(live, part, None)
    code = getattr(live, "code", None)
    if live is not None and code is not None and hasattr(live, "version"):
        return _Code(code.hash, None if live.version is None else str(live.version))
    return _Code(None, UNKNOWN)


def find_stale(lake: LakeBase) -> list[StaleOutput]:
    """Every current step output whose step's code, declared version or input files changed since it was made."""
    made = lake.catalog.current_step_files()
    if not made:
        return []
    steps = {row["id"]: StepRecord.from_row(row) for _, row in made}
    names = sorted({i["name"] for s in steps.values() for i in s.inputs if i.get("name")})
    latest = lake.catalog.latest_rows(names)
    codes: dict[tuple[str, str | None, int | None], _Code] = {}
    out = []
    for file_row, row in made:
        step = steps[row["id"]]
        ident = (step.function, step.source_file, step.source_line)
        if ident not in codes:
            codes[ident] = current_code(step)
        code = codes[ident]
        reasons = []
        if code.missing:
            reasons.append(f"{step.function} is no longer defined in {step.source_file}")
        elif code.hash is not None and code.hash != step.code_hash:
            reasons.append(f"code of {step.function} changed")
        if code.version is not UNKNOWN and code.version != step.version:
            reasons.append(f"version changed ({step.version} -> {code.version})")
        for inp in step.inputs:
            now = latest.get(inp.get("name") or "")
            if now is None:
                reasons.append(f"input {inp.get('name')} was deleted")
            elif now.hash != inp.get("hash"):
                reasons.append(f"input {inp['name']} changed (@{inp.get('version')} -> @{now.version})")
        if reasons:
            out.append(StaleOutput(File(lake, file_row), step, reasons))
    return out


__all__ = ["StaleOutput", "current_code", "find_stale"]
