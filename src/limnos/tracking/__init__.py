"""Project data dependencies: ``limnos.track(path)`` and the ``limnos.lock`` manifest.

:mod:`.manifest` is the ``limnos.lock`` file (read, write, sort, merge, lock);
:mod:`.settings` its ``settings`` block (remote, endpoint, region, profile, .gitignore);
:mod:`.project` is the project around it (its lake, ``track``, status, pull, checkout);
:mod:`.lazydata` reads a ``lazydata.yml`` into it.
The names the CLI and users need are here: ``from limnos import tracking``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each name loads its module on first use (PEP 562): the CLI reads a project's settings (manifest, settings)
# before every command, and that must not load the project machinery (project, lazydata, ops.add) with it.
_WHERE = {
    **dict.fromkeys(("LazydataImport", "import_lazydata"), "lazydata"),
    **dict.fromkeys(("MANIFEST_NAME", "LockEntry", "Manifest", "find_manifest"), "manifest"),
    **dict.fromkeys(("Project", "ProjectStatus", "PullReport", "close_projects", "expand", "init_project", "project_for",
                     "track"), "project"),
    "ProjectSettings": "settings",
}

if TYPE_CHECKING:
    from .lazydata import LazydataImport, import_lazydata
    from .manifest import MANIFEST_NAME, LockEntry, Manifest, find_manifest
    from .project import Project, ProjectStatus, PullReport, close_projects, expand, init_project, project_for, track
    from .settings import ProjectSettings


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, lazy ones included."""
    return sorted(__all__)


__all__ = [
    "MANIFEST_NAME",
    "LazydataImport",
    "LockEntry",
    "Manifest",
    "Project",
    "ProjectSettings",
    "ProjectStatus",
    "PullReport",
    "close_projects",
    "expand",
    "find_manifest",
    "import_lazydata",
    "init_project",
    "project_for",
    "track",
]
