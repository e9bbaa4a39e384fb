"""What a run records about itself: who, where, when, which code.

Collected once per run, lazily (the first time the run writes), because the
git calls cost a few milliseconds that a read-only session need not pay.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ProvenanceError
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
        "git_remote": scrub_text(remote) if remote else None,
    }


#: The environment variable that names the originator when git has no ``user.email``.
USER_EMAIL_ENV = "LIMNOS_USER_EMAIL"
_MAX_IDENTITY = 320  # the longest an email address can be (RFC 3696); longer values are not an identity


def _identity(value: str | None) -> str | None:
    """``value`` stripped, or None when it is empty, too long or holds control characters (nothing to record)."""
    value = (value or "").strip()
    if not value or len(value) > _MAX_IDENTITY or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return value


def os_user() -> str | None:
    """This process's login name (its uid where there is none, as in some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else None


def originator(cwd: str) -> str | None:
    """Who makes a run: git's ``user.email`` (seen from ``cwd``), else ``$LIMNOS_USER_EMAIL``, else the OS login name.

    The email identifies a person across machines (radops records one), where a
    login name such as ``root`` says little; git's setting comes first because
    it is what the same person's commits carry. Only that one setting is read.
    """
    return (_identity(_git(["config", "--get", "user.email"], cwd)) or _identity(os.environ.get(USER_EMAIL_ENV))
            or os_user())


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
    """The provenance row of a run: who, where, when, which code (``packages``: every installed version too).

    ``user`` is the originator (:func:`originator`): an email when git or
    ``$LIMNOS_USER_EMAIL`` gives one, else the OS login name.
    """
    cwd = os.getcwd()
    argv = scrub_argv(sys.argv)  # options, URLs and key=value pairs may carry credentials
    script = os.path.abspath(argv[0]) if argv and argv[0] and os.path.isfile(argv[0]) else None
    return {
        "id": run_id,
        "name": name,
        "user": originator(cwd),
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
        "config": _with_plugins(scrub_config(config)),
    }


# ------------------------------------------------------------ pluggable provenance
#: Functions that add fields to every run record (:func:`register`), in registration order.
_PROVIDERS: list[Callable[[], Mapping[str, Any]]] = []
#: The key of a run's ``config`` that holds the fields registered providers add.
PLUGIN_KEY = "provenance"


def register(fn: Callable[[], Mapping[str, Any]]) -> Callable[[], Mapping[str, Any]]:
    """Add a function whose fields go into every run record from now on, ElliptIO's swappable tracker.

    ``fn()`` returns a dict of JSON values (an experiment id, a ticket, a cluster
    job id...). It is called when a run's provenance is collected (at the first
    commit of each ``lake.run()``, or of the process outside one); its fields are
    kept under ``run["config"]["provenance"]``, with values under credential-like
    keys masked and URLs scrubbed, as a run's config is. A later provider's field
    wins over an earlier one's of the same name. Usable as a decorator.

    >>> @limnos.provenance.register
    ... def experiment() -> dict[str, str]:
    ...     return {"experiment_id": os.environ.get("EXPERIMENT_ID", "local")}

    Raises:
        ProvenanceError: ``fn`` is not callable.
    """
    if not callable(fn):
        raise ProvenanceError(f"provenance.register takes a function returning a dict, not {type(fn).__name__}")
    if fn not in _PROVIDERS:
        _PROVIDERS.append(fn)
    return fn


def unregister(fn: Callable[[], Mapping[str, Any]]) -> None:
    """Stop adding ``fn``'s fields to run records (nothing happens if it was not registered)."""
    with contextlib.suppress(ValueError):
        _PROVIDERS.remove(fn)


def plugin_fields() -> dict[str, Any]:
    """The fields every registered provider adds now, scrubbed of credentials.

    Raises:
        ProvenanceError: a provider raised, or returned something other than a dict of JSON values keyed by str.
    """
    fields: dict[str, Any] = {}
    for fn in _PROVIDERS:
        name = getattr(fn, "__qualname__", repr(fn))
        try:
            got = fn()
        except Exception as exc:
            raise ProvenanceError(f"provenance provider {name} failed: {exc}") from exc
        if not isinstance(got, Mapping) or not all(isinstance(k, str) for k in got):
            raise ProvenanceError(f"provenance provider {name} must return a dict with str keys, not {type(got).__name__}")
        try:
            json.dumps(dict(got))
        except (TypeError, ValueError) as exc:
            raise ProvenanceError(f"provenance provider {name} returned a value that is not JSON: {exc}") from None
        fields.update(got)
    scrubbed: dict[str, Any] = scrub_config(fields)
    return scrubbed


def _with_plugins(config: Any) -> Any:
    """A run's (scrubbed) config with the registered providers' fields under ``"provenance"``.

    A dict config gets the key; another config is kept under ``"config"``, so neither is lost.
    """
    if not _PROVIDERS:
        return config
    fields = plugin_fields()
    if config is None:
        return {PLUGIN_KEY: fields}
    if isinstance(config, dict):
        return {**config, PLUGIN_KEY: fields}
    return {"config": config, PLUGIN_KEY: fields}


# ------------------------------------------------------------ scrubbing secrets
# A run row is written to records files, the catalog and every remote it is
# pushed to, so nothing that looks like a credential may reach it. Scrubbing
# errs on the side of hiding: a masked value that was no secret costs a little
# provenance, a leaked one costs a rotated key.

#: What a scrubbed value is replaced with.
MASK = "***"
#: Fragments of a key (lowercased, punctuation removed) that mark its value as a credential.
_SECRET_FRAGMENTS = (
    "password", "passwd", "passphrase", "secret", "token", "credential", "apikey", "accesskey", "privatekey",
    "accountkey", "signature", "cookie", "sessionkey", "connectionstring",
)
#: Whole words of a key (split on punctuation) that mark its value as a credential: ``-o key=...`` is s3fs's key id.
_SECRET_WORDS = frozenset({"pass", "pwd", "pw", "key", "auth", "sig", "sas"})
_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.-]*://"
# user:password@ (the password may hold '@' or '/': hide everything up to the last '@' of the word).
_URL_PASSWORD = re.compile(rf"(?P<scheme>{_SCHEME})(?P<user>[^:/?#@\s]*):(?P<secret>\S*)@")
# https://TOKEN@host: a user alone in a web URL is usually a token (git remotes with a PAT).
_WEB_USER = re.compile(r"(?P<scheme>https?://)(?P<user>[^:/?#@\s]+)@")
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<key>[^=&#\s]+)=(?P<value>[^&#\s]*)")
_MAX_DEPTH = 64  # config nested deeper is not scrubbed further (and is not JSON a catalog can store anyway)


def is_secret_key(key: str) -> bool:
    """True when an option or setting named ``key`` (``password``, ``aws_secret_access_key``, ``-o key``) holds a credential."""
    lowered = key.lower()
    squashed = re.sub(r"[^a-z0-9]", "", lowered)
    if any(fragment in squashed for fragment in _SECRET_FRAGMENTS):
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", lowered))


def scrub_text(text: str) -> str:
    """``text`` with URL passwords, web URL users and secret query parameters masked, and JSON scrubbed."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError):
            pass
        else:
            return json.dumps(scrub_config(parsed))
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _WEB_USER.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _QUERY_PARAM.sub(
        lambda m: f"{m['sep']}{m['key']}={MASK}" if is_secret_key(m["key"]) else m.group(), text)


def _scrub_arg(arg: str) -> str:
    """One argv word: ``--password=x``, ``-osecret=x``, ``KEY=value`` and URLs scrubbed."""
    if arg.startswith("--") and "=" in arg:
        flag, _, value = arg.partition("=")
        return f"{flag}={MASK}" if is_secret_key(flag[2:]) else f"{flag}={_scrub_arg(value)}"
    if len(arg) > 2 and arg[0] == "-" and arg[1].isalpha() and "=" in arg:
        return arg[:2] + _scrub_arg(arg[2:])  # a short option with its value attached: -okey=secret
    key, eq, value = arg.partition("=")
    if eq and key and not key.startswith("-") and "://" not in key:
        return f"{key}={MASK}" if is_secret_key(key) else f"{key}={scrub_text(value)}"
    return scrub_text(arg)


def scrub_argv(argv: Sequence[str]) -> list[str]:
    """A command line fit to record: values of credential options, pairs and URL passwords masked.

    ``--password x`` and ``--password=x`` hide ``x``; ``-o secret=x``, ``-osecret=x`` and
    ``AWS_SECRET_ACCESS_KEY=x`` hide ``x``; ``postgresql://u:pw@h/db`` hides ``pw``; JSON
    option values are scrubbed key by key.
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = str(arg)
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        out.append(_scrub_arg(arg))
        # "--password x": the flag's value is the next word.
        hide_next = arg.startswith("-") and "=" not in arg and len(arg) > 1 and is_secret_key(arg.lstrip("-"))
    return out


def scrub_config(value: Any, depth: int = 0) -> Any:
    """A run's config fit to record: values under credential-looking keys masked, URLs in strings scrubbed."""
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and is_secret_key(k) else scrub_config(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_config(v, depth + 1) for v in value)
    if isinstance(value, str):
        return scrub_text(value)
    return value


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
    out["git_remote"] = scrub_text(remote) if remote else None
    rel = os.path.relpath(os.path.realpath(source_file), os.path.realpath(top))
    if not rel.startswith("..") and _committed_as_is(top, rel):
        out["permalink"] = permalink(remote, commit, rel, first, last)
    return out
