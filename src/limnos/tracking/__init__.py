"""Project data dependencies: ``limnos.track(path)`` and the ``limnos.lock`` manifest.

:mod:`.manifest` is the ``limnos.lock`` file (read, write, sort, merge, lock);
:mod:`.settings` its ``settings`` block (remote, endpoint, region, profile, .gitignore);
:mod:`.project` is the project around it (its lake, ``track``, status, pull, checkout);
:mod:`.lazydata` reads a ``lazydata.yml`` into it.
The names the CLI and users need are here: ``from limnos import tracking``.
"""

from .lazydata import LazydataImport, import_lazydata
from .manifest import MANIFEST_NAME, LockEntry, Manifest, find_manifest
from .project import Project, ProjectStatus, PullReport, close_projects, expand, init_project, project_for, track
from .settings import ProjectSettings

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
