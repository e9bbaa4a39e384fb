"""What a run records about itself: who, where, when, which code.

Collected once per run, lazily (the first time the run writes), because the
git calls cost a few milliseconds that a read-only session need not pay.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import platform
import socket
import subprocess
import sys
from typing import Any

from ..errors import redact_url
from ..store.hashing import hash_bytes
from ..version import __version__


def _git(args: list[str], cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10, check=True,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace")


def git_root(start: str) -> str | None:
    """The nearest folder at or above ``start`` that holds a ``.git``, without running git."""
    here = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def git_info(cwd: str) -> dict[str, Any]:
    """The git commit, dirty flag, hash of the uncommitted diff, and remote of the repository at ``cwd``.

    Every value is None outside a repository (or without git).
    """
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_diff_hash": None, "git_remote": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    diff = _git(["diff", "HEAD"], cwd) or ""
    remote = (_git(["config", "--get", "remote.origin.url"], cwd) or "").strip() or None
    return {
        "git_commit": commit.strip(),
        "git_dirty": bool(status.strip()),
        "git_diff_hash": hash_bytes(diff.encode()) if diff else None,
        "git_remote": redact_url(remote) if remote else None,
    }


def notebook_path() -> str | None:
    """The notebook this kernel runs, when Jupyter or VS Code says so."""
    for var in ("JPY_SESSION_NAME", "__vsc_ipynb_file__"):
        if os.environ.get(var):
            return os.environ[var]
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        shell = ipython.get_ipython()
        if shell is not None:
            for key in ("__vsc_ipynb_file__", "__session__"):
                value = shell.user_ns.get(key)
                if value:
                    return str(value)
    return None


def installed_packages() -> dict[str, str]:
    """name -> version of every installed distribution."""
    from importlib import metadata

    return {d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}


def collect(run_id: str, started_at: dt.datetime, name: str | None = None, config: Any = None,
            packages: bool = False) -> dict[str, Any]:
    """The provenance row of a run: who, where, when, which code (``packages``: every installed version too)."""
    cwd = os.getcwd()
    argv = [redact_url(a) for a in sys.argv]  # a URL in argv may carry a password
    script = os.path.abspath(argv[0]) if argv and argv[0] and os.path.isfile(argv[0]) else None
    user: str | None
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else None
    return {
        "id": run_id,
        "name": name,
        "user": user,
        "host": socket.gethostname(),
        "started_at": started_at,
        "argv": argv,
        "cwd": cwd,
        "script": script,
        **git_info(cwd),
        "python": platform.python_version(),
        "limnos_version": __version__,
        "notebook": notebook_path(),
        "packages": installed_packages() if packages else None,
        "config": config,
    }


# ------------------------------------------------------------ step code links
# A step records where its code lives in git, and a permalink to the exact
# lines when the remote is on GitHub or GitLab. Git answers are cached for a
# few seconds per repository, so a burst of step misses does not spawn a
# dozen git processes each; a hit never asks git anything.
_GIT_TTL = 10.0
_repo_cache: dict[str, tuple[float, tuple[str, str, str | None] | None]] = {}
_file_cache: dict[str, tuple[float, bool]] = {}


def _repo_of(directory: str) -> tuple[str, str, str | None] | None:
    """(toplevel, HEAD commit, origin URL) of the repository holding ``directory``, or None."""
    import time

    hit = _repo_cache.get(directory)
    if hit and time.monotonic() - hit[0] < _GIT_TTL:
        return hit[1]
    out = _git(["rev-parse", "--show-toplevel", "HEAD"], directory)
    repo = None
    if out and len(out.split()) >= 2:
        top, commit = out.strip().splitlines()[:2]
        remote = (_git(["config", "--get", "remote.origin.url"], directory) or "").strip() or None
        repo = (top, commit, remote)
    _repo_cache[directory] = (time.monotonic(), repo)
    return repo


def _committed_as_is(top: str, rel: str) -> bool:
    """True if ``rel`` is tracked and has no changes against HEAD (so a permalink shows what ran)."""
    import time

    key = os.path.join(top, rel)
    hit = _file_cache.get(key)
    if hit and time.monotonic() - hit[0] < _GIT_TTL:
        return hit[1]
    tracked = bool((_git(["ls-files", "--", rel], top) or "").strip())
    clean = tracked and _git(["status", "--porcelain", "--", rel], top) == ""
    _file_cache[key] = (time.monotonic(), clean)
    return clean


def _split_remote(remote: str) -> tuple[str, str] | None:
    """(host, owner/repo path) of a git remote URL in https, ssh:// or scp-like form."""
    import re
    from urllib.parse import urlsplit

    remote = remote.strip()
    if "://" in remote:
        parts = urlsplit(remote)
        host, path = (parts.hostname or ""), parts.path
    else:
        match = re.match(r"^(?:[^@/]+@)?([^:/]+):(.+)$", remote)  # git@github.com:owner/repo.git
        if not match:
            return None
        host, path = match.group(1), match.group(2)
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if not host or "/" not in path:
        return None
    return host.lower(), path


def permalink(remote: str | None, commit: str | None, relpath: str, first: int | None, last: int | None) -> str | None:
    """A link to the lines of ``relpath`` at ``commit`` on GitHub or GitLab, else None."""
    from urllib.parse import quote

    if not remote or not commit:
        return None
    split = _split_remote(remote)
    if split is None:
        return None
    host, path = split
    rel = quote(relpath.replace(os.sep, "/"))
    if "github" in host:
        lines = f"#L{first}" + (f"-L{last}" if last and last != first else "") if first else ""
        return f"https://{host}/{path}/blob/{commit}/{rel}{lines}"
    if "gitlab" in host:
        lines = f"#L{first}" + (f"-{last}" if last and last != first else "") if first else ""
        return f"https://{host}/{path}/-/blob/{commit}/{rel}{lines}"
    return None


def source_link(source_file: str | None, first: int | None, last: int | None) -> dict[str, Any]:
    """git commit, remote and permalink for a step's source file (None where unknown).

    The permalink is only given when the file is committed unchanged, as a link
    to other code than what ran would mislead.
    """
    out: dict[str, Any] = {"git_commit": None, "git_remote": None, "permalink": None}
    if not source_file or not os.path.isfile(source_file):
        return out
    repo = _repo_of(os.path.dirname(source_file))
    if repo is None:
        return out
    top, commit, remote = repo
    out["git_commit"] = commit
    out["git_remote"] = redact_url(remote) if remote else None
    rel = os.path.relpath(os.path.realpath(source_file), os.path.realpath(top))
    if not rel.startswith("..") and _committed_as_is(top, rel):
        out["permalink"] = permalink(remote, commit, rel, first, last)
    return out
