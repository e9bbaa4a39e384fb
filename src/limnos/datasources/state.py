"""What every view of a datasource shares: its row, its state in this process, its options.

The bottom of the datasources feature: :mod:`.scan`, :mod:`.fetch` and
:mod:`.source` build on it. It holds the names the feature reserves
(:data:`REF_PREFIX`, :data:`AUTO_FIELDS`), the per-process
:class:`SourceState` of each datasource (a lock for its writers, its
background scan thread, its cached field list), and this machine's storage
options, kept in ``<lake>/state/datasources.yaml`` (mode 600, as they may
hold credentials), never in the catalog or the records.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ..catalog.datasources import SourceInfo, registered_fields
from ..errors import LimnosError

if TYPE_CHECKING:
    from ..core.base import LakeBase

#: What a datasource or dataset name may look like.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: The lake prefix under which an external datasource's reference files live.
REF_PREFIX = ".datasources"
#: The fields a scan fills in (besides the built-in path and size).
AUTO_FIELDS = ("modified", "content_type", "width", "height")


def check_name(name: str, what: str = "datasource") -> str:
    """``name``, if it is a valid datasource (or dataset) name.

    Raises:
        LimnosError: it is not.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise LimnosError(f"{what} name {name!r} is not valid; use letters, digits, '-', '_' or '.' (at most 128)")
    return name


def ref_name(source: str, path: str) -> str:
    """The lake name of the reference file for ``path`` in the external datasource ``source``."""
    return f"{REF_PREFIX}/{source}/{path}"


# ------------------------------------------------------------------ state
@dataclass
class SourceState:
    """What every view of one datasource shares in this process."""

    info: SourceInfo
    #: held while a commit of this datasource is built and written (scans, metadata, deletion)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: the background scan, if one was started
    thread: threading.Thread | None = None
    #: set to ask the background scan to stop at its next batch
    stop: threading.Event = field(default_factory=threading.Event)
    #: what the last background scan raised, until someone reports it
    scan_error: BaseException | None = None
    #: registered field -> type, or None when it must be read again
    fields: dict[str, str] | None = None

    @property
    def scanning(self) -> bool:
        """True while a background scan runs."""
        thread = self.thread
        return thread is not None and thread.is_alive()


_STATES: weakref.WeakKeyDictionary[LakeBase, dict[str, SourceState]] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def shared_state(lake: LakeBase, info: SourceInfo) -> SourceState:
    """The one :class:`SourceState` of this datasource in this lake object (made on first use).

    When the lake closes, a background scan is asked to stop and waited for.
    """
    with _STATES_LOCK:
        table = _STATES.setdefault(lake, {})
        found = table.get(info.id)
        if found is None:
            found = table[info.id] = SourceState(info)
            lake.on_close(found.stop.set)
            lake.on_close(lambda: join_scan(found))
        return found


def join_scan(state: SourceState) -> None:
    """Wait for the datasource's background scan, if one runs (and this is not it)."""
    thread = state.thread
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def known_fields(lake: LakeBase, state: SourceState, refresh: bool = False) -> dict[str, str]:
    """The fields registered on the datasource and their types (cached until a commit adds some)."""
    if state.fields is None or refresh:
        state.fields = registered_fields(lake.catalog, state.info.id)
    return state.fields


# ---------------------------------------------------------------- options
def _options_path(lake: LakeBase) -> str:
    return os.path.join(lake.state_dir, "datasources.yaml")


def load_options(lake: LakeBase, name: str) -> dict[str, Any]:
    """This machine's storage options (credentials, endpoints) for the datasource ``name``."""
    try:
        with open(_options_path(lake)) as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        return {}
    return dict((data.get(name) or {}).get("options") or {})


def save_options(lake: LakeBase, name: str, options: dict[str, Any] | None) -> None:
    """Keep ``options`` for the datasource ``name`` on this machine (None or empty: forget them)."""
    path = _options_path(lake)
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        data = {}
    if options:
        data[name] = {"options": options}
    else:
        data.pop(name, None)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold credentials
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=True)
    os.replace(tmp, path)


__all__ = ["AUTO_FIELDS", "NAME_RE", "REF_PREFIX", "SourceState", "check_name", "join_scan", "known_fields",
           "load_options", "ref_name", "save_options", "shared_state"]
