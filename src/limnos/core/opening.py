"""Opening and creating lakes: what ``limnos.init`` and ``limnos.open`` do.

A local lake is one folder (``.limnos`` by default)::

    .limnos/limnos.yaml       settings: format, catalog URL (never a password), link mode
    .limnos/catalog.sqlite    the default catalog
    .limnos/objects/          the store
    .limnos/records/
    .limnos/state/            this machine's stat cache and remotes

A lake can also live on any fsspec URL (``s3://bucket/lake``): the settings
file sits in the store, the catalog is given (PostgreSQL for a team) or is a
SQLite file in this machine's cache, and objects are cached locally under the
platformdirs cache folder (or ``cache=``).
"""

from __future__ import annotations

import builtins
import os
from typing import Any, TypeVar

import yaml

from ..catalog import Catalog
from ..catalog.engine import normalize_url, strip_password
from ..errors import FolderNotEmpty, LakeExists, LakeNotFound, LimnosError, redact_url
from ..names import new_id
from ..store import LocalObjectStore, ObjectStore
from ..store.links import LINK_MODES
from ..store.log import SharedLog
from . import reopen
from .base import LakeBase
from .recovery import roll_forward
from .runs import now
from .shared import probe_or_refuse

L = TypeVar("L", bound=LakeBase)

CONFIG_NAME = "limnos.yaml"
DEFAULT_DIR = ".limnos"
FORMAT = 1


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def default_cache_dir(url: str) -> str:
    """This machine's cache folder for the lake at ``url``."""
    import platformdirs

    from ..store.hashing import hash_bytes

    return os.path.join(platformdirs.user_cache_dir("limnos"), hash_bytes(url.encode())[:16])


def _settings(catalog: str | None, link: str) -> dict[str, Any]:
    if link not in LINK_MODES:
        raise LimnosError(f"link must be one of {', '.join(LINK_MODES)}, not {link!r}")
    return {
        "format": FORMAT,
        "id": new_id(),
        "created_at": now().isoformat(),
        "catalog": strip_password(catalog) if catalog else None,
        "link": link,
        "fsync": True,
    }


def init_lake(cls: type[L], path: str | os.PathLike[str] = DEFAULT_DIR, catalog: str | None = None,
              link: str = "copy", cache: str | None = None, team: bool | None = None, **storage_options: Any) -> L:
    """Create a lake and return it open.

    ``path`` is a local folder (``.limnos`` by default) or any fsspec URL
    (``s3://bucket/lake``; ``storage_options`` go to fsspec). ``catalog`` is a
    SQLAlchemy URL (``postgresql://user@host/db``); by default a SQLite file
    inside a local lake, or in this machine's cache for a remote one. A
    password in the URL is used now but never saved: later opens take it from
    ``PGPASSWORD`` or ``~/.pgpass``.

    A lake on a bucket without a shared catalog is a **team lake** by default
    (``team=None``): machines agree on versions through a commit log in the
    bucket (see :mod:`limnos.core.shared`), which needs the bucket to honour
    create-only-if-absent writes; that is probed now. ``team=False`` makes a
    lake only one machine writes; ``team=True`` also publishes to the log when
    a catalog is given.

    Raises:
        LakeExists: a lake is already there.
        FolderNotEmpty: ``path`` is a local folder that holds other files (a project folder, say):
            a lake is made in a folder of its own (``project/.limnos``), never among other files.
        LimnosError: ``link`` is not a link mode, or ``team`` is set for a local folder.
        CatalogError: the catalog URL is not a supported database.
        TeamModeUnsupported: a team lake was asked for (or is the default) on a bucket
            that overwrites instead of refusing a second create.
    """
    path = os.fspath(path)
    config = _settings(catalog, link)
    if _is_url(path):
        made = _init_remote(cls, path, config, catalog, cache, team, storage_options)
        reopen.register(made, catalog, cache, storage_options)
        return made
    if team:
        raise LimnosError("team=True is for lakes on a bucket; a local folder's catalog is already shared by every "
                          "process that opens it")
    root = os.path.abspath(os.path.expanduser(path))
    config_path = os.path.join(root, CONFIG_NAME)
    if os.path.exists(config_path):
        raise LakeExists(f"a lake already exists at {root}", hint=f"open it with limnos.open({path!r})", path=root)
    if os.path.isdir(root) and os.listdir(root):
        # A project folder given by mistake would get catalog.sqlite, objects/... among its own files.
        inside = os.path.join(path, DEFAULT_DIR)
        raise FolderNotEmpty(f"{root} holds other files and is not a lake; a lake needs a folder of its own",
                             hint=f"pass a new or empty folder, such as limnos.init({inside!r})", path=root)
    os.makedirs(root, exist_ok=True)
    for sub in ("objects", "records", "tmp", "state"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    try:
        lake = _open_local(cls, root, config, catalog)
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
    reopen.register(lake, catalog, cache, storage_options)
    return lake


def _init_remote(cls: type[L], url: str, config: dict[str, Any], catalog: str | None, cache: str | None,
                 team: bool | None, storage_options: dict[str, Any]) -> L:
    store = ObjectStore(url, **storage_options)
    if store.read_config() is not None:
        raise LakeExists(f"a lake already exists at {redact_url(url)}", hint=f"open it with limnos.open({redact_url(url)!r})",
                         path=redact_url(url))
    if team or (team is None and catalog is None):
        probe_or_refuse(SharedLog(store), redact_url(url))
        config["shared"] = "log"
    lake = _open_remote(cls, url, store, config, catalog, cache)
    store.write_config(yaml.safe_dump(config, sort_keys=False).encode())
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


def _parse_config(data: bytes | str, where: str) -> dict[str, Any]:
    try:
        config = yaml.safe_load(data) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LimnosError(f"cannot read {where}: {str(exc).splitlines()[0]}; fix or restore it") from None
    if not isinstance(config, dict):
        raise LimnosError(f"{where} is not a mapping of settings; fix or restore it")
    if int(config.get("format", 1)) > FORMAT:
        raise LimnosError(f"the lake at {where} has format {config['format']}; upgrade limnos to open it")
    return config


def open_lake(cls: type[L], path: str | os.PathLike[str] | None = None, catalog: str | None = None,
              cache: str | None = None, **storage_options: Any) -> L:
    """Open a lake: ``path`` (a folder or URL), else ``$LIMNOS_LAKE``, else the nearest ``.limnos/``.

    Records files that the catalog lacks (a crash mid-commit) are rolled forward first.

    Raises:
        LakeNotFound: there is no lake there.
        LimnosError: the settings file is unreadable, or from a newer limnos.
        CatalogVersionError: the catalog was written by a newer limnos.
    """
    if path is None:
        path = os.environ.get("LIMNOS_LAKE") or find_lake()
        if path is None:
            raise LakeNotFound("no lake here", hint="create one with limnos.init(), or set LIMNOS_LAKE to its path")
    path = os.fspath(path)
    if _is_url(path):
        store = ObjectStore(path, **storage_options)
        data = store.read_config()
        if data is None:
            raise LakeNotFound(f"no lake at {redact_url(path)}", hint=f"create one with limnos.init({redact_url(path)!r})",
                               path=redact_url(path))
        lake = _open_remote(cls, path, store, _parse_config(data, redact_url(path)), catalog, cache)
    else:
        root = os.path.abspath(os.path.expanduser(path))
        config_path = os.path.join(root, CONFIG_NAME)
        if not os.path.isfile(config_path) and os.path.isfile(os.path.join(root, DEFAULT_DIR, CONFIG_NAME)):
            root = os.path.join(root, DEFAULT_DIR)  # the project folder was given, not the lake folder
            config_path = os.path.join(root, CONFIG_NAME)
        if not os.path.isfile(config_path):
            raise LakeNotFound(f"no lake at {root}", hint=f"create one with limnos.init({path!r})", path=root)
        with builtins.open(config_path, "rb") as f:
            lake = _open_local(cls, root, _parse_config(f.read(), config_path), catalog)
    reopen.register(lake, catalog, cache, storage_options)  # unpickled Files and lakes of this process find it
    if lake.shared_log is not None:
        # A team lake: the bucket's log is the truth; records files it does not publish are never applied.
        lake.catch_up(force=True)
        return lake
    report = roll_forward(lake)
    lake.rolled_forward_at_open = list(report.rolled_forward)  # reindex says what the open already restored
    if report.rolled_forward:
        import logging

        logging.getLogger("limnos").warning("rolled %d commits forward from the records", len(report.rolled_forward))
    return lake


def _catalog(url: str, base: str) -> Catalog:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and not os.path.isabs(rel):
            url = "sqlite:///" + os.path.join(base, rel)  # relative to the lake, so the folder can move
    return Catalog(normalize_url(url) if url.startswith("postgres") else url)


def _open_local(cls: type[L], root: str, config: dict[str, Any], catalog: str | None) -> L:
    cat = _catalog(catalog or config.get("catalog") or "sqlite:///catalog.sqlite", root)
    store = LocalObjectStore(root)
    return cls(root, cat, store, os.path.join(root, "state"), config)


def _open_remote(cls: type[L], url: str, store: ObjectStore, config: dict[str, Any], catalog: str | None,
                 cache: str | None) -> L:
    # The lake's id is part of the folder: a lake made again at the same URL never meets the old one's catalog.
    cache_dir = os.path.abspath(os.path.expanduser(cache or default_cache_dir(url + str(config.get("id") or ""))))
    os.makedirs(cache_dir, exist_ok=True)
    # No shared catalog: this machine keeps its own, rebuilt from the store's records.
    cat = _catalog(catalog or config.get("catalog") or "sqlite:///catalog.sqlite", cache_dir)
    store.index_cache = os.path.join(cache_dir, "state", "pack-indexes")  # the bucket's indexes, read once per machine
    local = LocalObjectStore(cache_dir)
    local.packs.touch_on_read = True  # a cache: its packs are pruned least recently used first (ops/cache.py)
    return cls(url, cat, store, os.path.join(cache_dir, "state"), config, cache=local)


#: The class :func:`open_default` builds: the facade registers :class:`limnos.Lake` here when imported.
_facade: list[type[LakeBase]] = [LakeBase]


def register_facade(cls: type[LakeBase]) -> None:
    """Make ``cls`` the class of lakes that features open by themselves (``@step`` without a lake)."""
    _facade[0] = cls


def _open_address(address: reopen.LakeAddress) -> LakeBase:
    """Open the lake a pickled object names (see :mod:`limnos.core.reopen`), as its facade class."""
    cls = address.facade if isinstance(address.facade, type) and issubclass(address.facade, LakeBase) else _facade[0]
    return open_lake(cls, address.path, address.catalog, address.cache, **dict(address.options))


reopen.set_opener(_open_address)


def open_default(path: str | None = None) -> LakeBase:
    """Open the lake at ``path`` (else ``$LIMNOS_LAKE``, else the nearest ``.limnos/``) as the facade class."""
    return open_lake(_facade[0], path)
