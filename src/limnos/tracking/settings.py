"""Project settings that travel with git: the ``settings:`` block of ``limnos.lock``.

A clone of a repository must find its data with no ``init`` and no ``remote
add``, so the few settings a project shares live in the committed manifest,
before its ``files`` list::

    version: 1
    settings:
      remote: s3://team-bucket/lake      # the default remote (becomes 'origin' on each machine)
      endpoint_url: http://minio:9000    # for every s3:// URL the project opens
      region: eu-west-1
      profile: team                      # a profile name from ~/.aws, never its keys
      gitignore: false                   # do not add tracked paths to .gitignore (default: true)
    files: [...]

Credentials never enter the file: reading one that holds a secret-looking key
(or a URL with a password) fails, and :meth:`ProjectSettings.from_remote`
keeps only the URL without its password, the endpoint, the region and the
profile of a remote's options.

**How the storage options reach every URL.** The endpoint, region and profile
are fsspec per-protocol defaults (``fsspec.config.conf["s3"]``), applied when
a project is opened (:func:`apply_storage`): fsspec merges them into every
``s3://`` filesystem it creates, so remotes, ``limnos --lake s3://...``,
folios and datasources all use them without each caller passing options, and
``AWS_ENDPOINT_URL`` is optional. Options given explicitly (a remote's
``client_kwargs``) win, as fsspec's own rule is. :func:`reset_storage` takes
them back out (:func:`limnos.tracking.close_projects` calls it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from ..errors import ManifestError

#: fsspec protocols the storage settings apply to (s3fs registers both).
_PROTOCOLS = ("s3", "s3a")
_SECRET_KEY = re.compile(r"secret|password|token|credential|sas|access_key|(^|_)key$", re.IGNORECASE)
_PASSWORD_IN_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^@/]*@")


@dataclass
class ProjectSettings:
    """The non-secret settings a project shares through git (all optional)."""

    remote: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    gitignore: bool = True

    @classmethod
    def parse(cls, raw: Any, where: str) -> ProjectSettings:
        """Settings from the manifest's ``settings`` mapping.

        Raises:
            ManifestError: not a mapping, an unknown key, a value of the wrong type, or a credential.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: settings must be a mapping of remote, endpoint_url, region, profile, gitignore")
        known = {f.name for f in fields(cls)}
        for key, value in raw.items():
            if _SECRET_KEY.search(str(key)):
                raise ManifestError(f"{where}: settings.{key} looks like a credential, and limnos.lock is committed to git; "
                                    "remove it and keep credentials in the environment or ~/.aws")
            if key not in known:
                raise ManifestError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
            wanted = bool if key == "gitignore" else str
            if value is not None and (not isinstance(value, wanted) or (wanted is str and not value)):
                raise ManifestError(f"{where}: settings.{key} must be {'true or false' if wanted is bool else 'a string'}")
        settings = cls(**raw)
        if settings.remote and _PASSWORD_IN_URL.match(settings.remote):
            raise ManifestError(f"{where}: settings.remote has a password in it, and limnos.lock is committed to git; "
                                "remove it and keep credentials in the environment or ~/.aws")
        return settings

    @classmethod
    def from_remote(cls, url: str, options: dict[str, Any], base: ProjectSettings | None = None) -> ProjectSettings:
        """The settings that share a remote: its URL without a password, and the endpoint, region and
        profile of its storage options. Every other option (keys, secrets, tokens) is left out."""
        raw_client = options.get("client_kwargs")
        client: dict[str, Any] = raw_client if isinstance(raw_client, dict) else {}
        current = base or cls()
        profile = options.get("profile")
        return cls(remote=strip_password(url),
                   endpoint_url=_str(client.get("endpoint_url")) or _str(options.get("endpoint_url")) or current.endpoint_url,
                   region=_str(client.get("region_name")) or current.region,
                   profile=_str(profile) or current.profile,
                   gitignore=current.gitignore)

    def to_yaml(self) -> dict[str, Any]:
        """The settings as written: only the ones set (``gitignore`` only when off)."""
        out: dict[str, Any] = {k: v for k in ("remote", "endpoint_url", "region", "profile") if (v := getattr(self, k))}
        if not self.gitignore:
            out["gitignore"] = False
        return out

    def storage_options(self) -> dict[str, Any]:
        """The fsspec (s3fs) options these settings stand for: ``client_kwargs`` and ``profile``."""
        client = {k: v for k, v in (("endpoint_url", self.endpoint_url), ("region_name", self.region)) if v}
        if self.endpoint_url and not self.region:
            client["region_name"] = "us-east-1"  # S3-compatible servers want some region; boto3 has none by default
        out: dict[str, Any] = {"client_kwargs": client} if client else {}
        if self.profile:
            out["profile"] = self.profile
        return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def strip_password(url: str) -> str:
    """``url`` without the password of a ``user:password@`` part (the user stays)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def read_settings(manifest_path: str) -> ProjectSettings:
    """Only the ``settings`` block of a manifest, without parsing its (possibly long) ``files`` list.

    Raises:
        ManifestError: the block is not valid.
    """
    try:
        with open(manifest_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return ProjectSettings()
    start = next((n for n, line in enumerate(lines) if line.startswith("settings:")), None)
    if start is None:
        return ProjectSettings()
    end = next((n for n in range(start + 1, len(lines)) if lines[n][:1] not in ("", " ", "\t", "#", "-")), len(lines))
    try:
        data = yaml.safe_load("\n".join(lines[start:end])) or {}
    except yaml.YAMLError as exc:
        raise ManifestError(f"cannot read the settings of {manifest_path}: {str(exc).splitlines()[0]}",
                            path=manifest_path) from None
    return ProjectSettings.parse(data.get("settings") if isinstance(data, dict) else None, manifest_path)


# ----------------------------------------------------------- fsspec defaults
_saved: dict[str, dict[str, Any] | None] = {}


def apply_storage(settings: ProjectSettings) -> None:
    """Make the settings' endpoint, region and profile fsspec's defaults for ``s3://`` URLs in this process."""
    import fsspec.config

    options = settings.storage_options()
    if not options:
        return
    for proto in _PROTOCOLS:
        current = fsspec.config.conf.get(proto)
        if proto not in _saved:
            _saved[proto] = None if current is None else dict(current)
        merged = dict(current or {})
        merged.update({k: v for k, v in options.items() if k != "client_kwargs"})
        if "client_kwargs" in options:
            merged["client_kwargs"] = {**(merged.get("client_kwargs") or {}), **options["client_kwargs"]}
        fsspec.config.conf[proto] = merged


def reset_storage() -> None:
    """Put fsspec's ``s3`` defaults back as they were before :func:`apply_storage`."""
    import fsspec.config

    for proto, before in _saved.items():
        if before is None:
            fsspec.config.conf.pop(proto, None)
        else:
            fsspec.config.conf[proto] = before
    _saved.clear()


# ------------------------------------------------------------------ .gitignore
class GitIgnore:
    """The ``.gitignore`` of a project's root folder: lines are added once, never removed.

    Lines are anchored (``/data/x.csv``), so a tracked ``x.csv`` does not hide
    other files of that name in subfolders. The file is read once per instance,
    so tracking many files costs one read.
    """

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, ".gitignore")
        self._lines: set[str] | None = None

    def _read(self) -> set[str]:
        if self._lines is None:
            try:
                with open(self.path, encoding="utf-8") as f:
                    self._lines = {line.strip() for line in f}
            except FileNotFoundError:
                self._lines = set()
        return self._lines

    def covers(self, rel: str) -> bool:
        """True when ``rel`` (POSIX, relative to the root) is listed, anchored or not."""
        lines = self._read()
        return rel in lines or f"/{rel}" in lines

    def add(self, rel: str, anchored: bool = True) -> bool:
        """Add a line for ``rel`` unless it is there; True if the file was changed.

        A line not seen yet is looked for in the file as it is now (another
        process may have added it), so no line is written twice.
        """
        if self.covers(rel):
            return False
        try:
            with open(self.path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        self._lines = {line.strip() for line in current.splitlines()}
        if self.covers(rel):
            return False
        line = f"/{rel}" if anchored else rel
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(("" if not current or current.endswith("\n") else "\n") + line + "\n")
        self._lines.add(line)
        return True


__all__ = ["GitIgnore", "ProjectSettings", "apply_storage", "read_settings", "reset_storage", "strip_password"]
