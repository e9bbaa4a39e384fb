"""Opening and creating lakes: ``limnos.init`` and ``limnos.open``.

A local lake is one folder (``.limnos`` by default)::

    .limnos/limnos.yaml       settings: format, catalog URL (never a password), link mode
    .limnos/catalog.sqlite    the default catalog
    .limnos/objects/          the store
    .limnos/records/
    .limnos/state/            this machine's stat cache
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
from typing import Any

import yaml

from .catalog import Catalog
from .catalog.engine import normalize_url
from .checks import roll_forward
from .errors import LakeExists, LakeNotFound, LimnosError, redact_url
from .lake import Lake
from .store import LocalObjectStore
from .store.links import LINK_MODES

CONFIG_NAME = "limnos.yaml"
DEFAULT_DIR = ".limnos"
FORMAT = 1


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _strip_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    # URL.set() ignores None, so replace the field on the named tuple itself.
    return parsed._replace(password=None).render_as_string(hide_password=False) if parsed.password else url


def init(path: str | os.PathLike[str] = DEFAULT_DIR, catalog: str | None = None, link: str = "copy") -> Lake:
    """Create a lake in a new folder and return it open.

    ``catalog`` is a SQLAlchemy URL (``postgresql://user@host/db``); by default
    a SQLite file inside the lake. A password in the URL is used now but not
    saved: later opens take it from ``PGPASSWORD`` or ``~/.pgpass``.
    """
    path = os.fspath(path)
    if _is_url(path):
        raise LimnosError(f"lakes on remote stores ({redact_url(path)}) arrive with remotes; init a local lake for now")
    if link not in LINK_MODES:
        raise LimnosError(f"link must be one of {', '.join(LINK_MODES)}, not {link!r}")
    root = os.path.abspath(os.path.expanduser(path))
    config_path = os.path.join(root, CONFIG_NAME)
    if os.path.exists(config_path):
        raise LakeExists(f"a lake already exists at {root}; open it with limnos.open({path!r})")
    os.makedirs(root, exist_ok=True)
    for sub in ("objects", "records", "tmp", "state"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    config = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "catalog": _strip_password(catalog) if catalog else None,
        "link": link,
        "fsync": True,
    }
    try:
        lake = _open(root, config, catalog)
    except BaseException:
        # The catalog could not be created: leave no half-made lake behind.
        if not os.listdir(os.path.join(root, "objects")):
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        raise
    tmp = config_path + ".tmp"
    with builtins.open(tmp, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, config_path)
    return lake


def find_lake(start: str | None = None) -> str | None:
    """The nearest ``.limnos`` folder with a config, in ``start`` or its parents."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, DEFAULT_DIR)
        if os.path.isfile(os.path.join(candidate, CONFIG_NAME)):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def open(path: str | os.PathLike[str] | None = None, catalog: str | None = None, cache: str | None = None) -> Lake:  # noqa: A001
    """Open a lake: ``path``, else ``$LIMNOS_LAKE``, else the nearest ``.limnos/`` above the cwd."""
    if path is None:
        path = os.environ.get("LIMNOS_LAKE") or find_lake()
        if path is None:
            raise LakeNotFound("no lake here: run 'limnos init' to create one, or set LIMNOS_LAKE to its path")
    path = os.fspath(path)
    if _is_url(path):
        raise LimnosError(f"lakes on remote stores ({redact_url(path)}) arrive with remotes; open a local lake for now")
    root = os.path.abspath(os.path.expanduser(path))
    config_path = os.path.join(root, CONFIG_NAME)
    if not os.path.isfile(config_path) and os.path.isfile(os.path.join(root, DEFAULT_DIR, CONFIG_NAME)):
        root = os.path.join(root, DEFAULT_DIR)  # the project folder was given, not the lake folder
        config_path = os.path.join(root, CONFIG_NAME)
    if not os.path.isfile(config_path):
        raise LakeNotFound(f"no lake at {root}; run 'limnos init {path}' to create one")
    try:
        with builtins.open(config_path) as f:
            config = yaml.safe_load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LimnosError(f"cannot read {config_path}: {str(exc).splitlines()[0]}; fix or restore it") from None
    if not isinstance(config, dict):
        raise LimnosError(f"{config_path} is not a mapping of settings; fix or restore it")
    if int(config.get("format", 1)) > FORMAT:
        raise LimnosError(f"the lake at {root} has format {config['format']}; upgrade limnos to open it")
    lake = _open(root, config, catalog)
    report = roll_forward(lake)
    if report.rolled_forward:
        import logging

        logging.getLogger("limnos").warning("rolled %d interrupted commits forward from the records", len(report.rolled_forward))
    return lake


def _open(root: str, config: dict[str, Any], catalog: str | None) -> Lake:
    url = catalog or config.get("catalog") or "sqlite:///catalog.sqlite"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and not os.path.isabs(rel):
            url = "sqlite:///" + os.path.join(root, rel)  # relative to the lake, so the folder can move
    cat = Catalog(normalize_url(url) if url.startswith("postgres") else url)
    store = LocalObjectStore(root)
    return Lake(root, cat, store, os.path.join(root, "state"), config)
