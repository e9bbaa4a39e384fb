"""Project data dependencies: ``limnos.track(path)`` and the ``limnos.lock`` manifest.

:mod:`.manifest` is the ``limnos.lock`` file (read, write, sort, merge, lock);
:mod:`.project` is the project around it (its lake, ``track``, status, pull).
The names the CLI and users need are here: ``from limnos import tracking``.
"""

from .manifest import MANIFEST_NAME, LockEntry, Manifest, find_manifest
from .project import Project, ProjectStatus, PullReport, close_projects, expand, init_project, project_for, track

__all__ = [
    "MANIFEST_NAME",
    "LockEntry",
    "Manifest",
    "Project",
    "ProjectStatus",
    "PullReport",
    "close_projects",
    "expand",
    "find_manifest",
    "init_project",
    "project_for",
    "track",
]
