"""Remotes: named stores to push to and pull from (``origin``, ``backup``...).

Remote settings are this machine's own, like ``~/.aws/credentials``: they
live in ``<lake>/state/remotes.yaml``, readable by the owner only, and never
in the catalog or records. Credentials usually come from the environment or
``~/.aws``; options that look like secrets are masked whenever shown.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import LimnosError, RemoteError, RemoteNotFound, redact_url
from ..store import ObjectStore
from ..store.objects import secret_values

if TYPE_CHECKING:
    from .base import LakeBase

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Remote:
    """A named store to push to and pull from; its store is opened on first use."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    _store: ObjectStore | None = field(default=None, repr=False, compare=False)

    @property
    def store(self) -> ObjectStore:
        """The remote's store: a folder (a path or ``file://``) or any fsspec URL."""
        if self._store is None:
            from ..store import LocalObjectStore

            if "://" not in self.url or self.url.startswith("file://"):
                self._store = LocalObjectStore(self.url.removeprefix("file://"))
            else:
                self._store = ObjectStore(self.url, **self.options)
        return self._store

    def check(self) -> None:
        """Make sure the remote is reachable and writable: write a small probe object there, then remove it.

        A folder remote need not exist yet (push creates it), but its parent
        folder must. Nothing else is created: a bucket that does not exist
        stays a failure here, not a new bucket.

        Raises:
            RemoteError: the remote cannot be reached or written (the message never holds a credential).
        """
        store = self.store
        if store.local:
            root = os.path.abspath(store.root)
            where = root if os.path.isdir(root) else os.path.dirname(root)
            if not os.path.isdir(where):
                raise RemoteError(f"cannot use the remote {self.name}: the folder {where} does not exist")
            if not os.access(where, os.W_OK | os.X_OK):
                raise RemoteError(f"cannot use the remote {self.name}: the folder {where} is not writable")
            return
        probe = f"{store.root}/.limnos-probe-{uuid.uuid4().hex}"
        try:
            store.fs.pipe_file(probe, b"limnos: checking that this remote is writable\n")
            store.fs.rm_file(probe)
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, FileNotFoundError) or "NoSuchBucket" in detail:
                detail += " (does the bucket exist?)"
            elif isinstance(exc, PermissionError) or "AccessDenied" in detail or "InvalidAccessKeyId" in detail:
                detail += " (check the credentials: environment, ~/.aws, or the remote's options)"
            message = f"cannot write to the remote {self.name} at {redact_url(self.url)}: {detail}"
            for secret in secret_values(self.options):
                message = message.replace(secret, "***")
            raise RemoteError(redact_url(message)) from None

    def to_dict(self) -> dict[str, Any]:
        """For display: the URL and options with every credential masked."""
        secrets = secret_values(self.options)
        masked = {k: ("***" if isinstance(v, str) and v in secrets else v) for k, v in self.options.items()}
        return {"name": self.name, "url": redact_url(self.url), "options": masked}

    def __repr__(self) -> str:
        return f"<Remote {self.name} {redact_url(self.url)}>"


class RemoteSet:
    """``lake.remotes``: add, list, remove and pick remotes."""

    def __init__(self, lake: LakeBase) -> None:
        self._path = os.path.join(lake.state_dir, "remotes.yaml")
        self._cache: dict[str, Remote] = {}

    def _load(self) -> dict[str, Any]:
        try:
            with open(self._path) as f:
                data = yaml.safe_load(f) or {}
        except FileNotFoundError:
            return {"remotes": {}}
        except yaml.YAMLError as exc:
            raise LimnosError(f"cannot read {self._path}: {str(exc).splitlines()[0]}; fix or remove it") from None
        data.setdefault("remotes", {})
        return dict(data)

    def _save(self, data: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        tmp = self._path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold credentials
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(data, f, sort_keys=True)
        os.replace(tmp, self._path)
        self._cache.clear()

    def add(self, name: str, url: str, default: bool = False, check: bool = True, **storage_options: Any) -> Remote:
        """Add (or replace) a remote. ``storage_options`` go to fsspec (``key=``, ``client_kwargs=``...).

        The first remote added, or one added with ``default=True``, becomes the default.
        With ``check`` (the default), the remote must be reachable and writable
        first (:meth:`Remote.check`); nothing is saved when it is not.

        Raises:
            LimnosError: the name or the URL is not valid.
            RemoteError: ``check`` is on and the remote cannot be reached or written.
        """
        if not _NAME.match(name or ""):
            raise LimnosError(f"remote name {name!r} is not valid; use letters, digits, '-', '_' or '.'")
        if not url:
            raise LimnosError("a remote needs a URL, such as s3://bucket/lake or /mnt/share/lake")
        if check:
            Remote(name, url, dict(storage_options)).check()
        data = self._load()
        data["remotes"][name] = {"url": url, "options": storage_options}
        if default or len(data["remotes"]) == 1:
            data["default"] = name
        self._save(data)
        return self[name]

    def remove(self, name: str) -> None:
        """Remove a remote (the default moves to another one, if any).

        Raises:
            RemoteNotFound: there is no remote of that name.
        """
        data = self._load()
        if name not in data["remotes"]:
            raise RemoteNotFound(f"no remote named {name!r}", hint="see lake.remotes.list()", name=name)
        del data["remotes"][name]
        if data.get("default") == name:
            data["default"] = next(iter(data["remotes"]), None)
        self._save(data)

    def list(self) -> list[Remote]:
        """Every remote, sorted by name."""
        return [self[name] for name in sorted(self._load()["remotes"])]

    @property
    def default(self) -> str | None:
        """The default remote's name: the one set, else ``origin``, else the first by name; None if there is none."""
        data = self._load()
        if data.get("default") in data["remotes"]:
            return str(data["default"])
        if "origin" in data["remotes"]:
            return "origin"
        return next(iter(sorted(data["remotes"])), None)

    def get(self, name: str | None = None) -> Remote:
        """A remote by name; with no name, the default one.

        Raises:
            RemoteNotFound: there is no such remote, or none at all.
        """
        if name is None:
            name = self.default
            if name is None:
                raise RemoteNotFound("no remote is configured", hint="add one with lake.remotes.add('origin', URL)")
        return self[name]

    def __getitem__(self, name: str) -> Remote:
        if name not in self._cache:
            entry = self._load()["remotes"].get(name)
            if entry is None:
                raise RemoteNotFound(f"no remote named {name!r}", hint="see lake.remotes.list()", name=name)
            self._cache[name] = Remote(name, entry["url"], dict(entry.get("options") or {}))
        return self._cache[name]

    def __contains__(self, name: object) -> bool:
        return name in self._load()["remotes"]

    def __iter__(self) -> Iterator[Remote]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._load()["remotes"])
