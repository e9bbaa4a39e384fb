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

from . import __version__
from .errors import redact_url
from .store.hashing import hash_bytes


def _git(args: list[str], cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10, check=True,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace")


def git_info(cwd: str) -> dict[str, Any]:
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
        shell = ipython.get_ipython()  # type: ignore[attr-defined]
        if shell is not None:
            for key in ("__vsc_ipynb_file__", "__session__"):
                value = shell.user_ns.get(key)
                if value:
                    return str(value)
    return None


def installed_packages() -> dict[str, str]:
    from importlib import metadata

    return {d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}


def collect(run_id: str, started_at: dt.datetime, name: str | None = None, config: Any = None,
            packages: bool = False) -> dict[str, Any]:
    cwd = os.getcwd()
    argv = [redact_url(a) for a in sys.argv]  # a URL in argv may carry a password
    script = os.path.abspath(argv[0]) if argv and argv[0] and os.path.isfile(argv[0]) else None
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
