"""Pickling lakes as addresses, and one lake per process to reopen them in.

A lake holds a database engine, open files and locks, none of which can
cross a process boundary. So a :class:`~limnos.core.base.LakeBase`, a
:class:`~limnos.core.files.File` and a query result pickle as an address
(:class:`LakeAddress`: where the lake is, its catalog URL without a password,
a cache folder given at open, and the storage options that are not secret)
plus an id. The process that unpickles them asks :func:`lake_for` for the
lake at that address:

* a lake this process already opened there (``limnos.open``, ``limnos.init``)
  and has not closed is used as it is, so reads in the worker count as reads
  of the caller's own lake (its run, its lineage) when they are the same process;
* else the lake is opened once and kept for the life of the process (Dask and
  Ray workers, ``multiprocessing`` pools): one lake per process, whatever
  number of Files arrive.

A forked child never uses its parent's lakes (their connections belong to the
parent): the registry starts empty after a fork.

Nothing secret is pickled. Storage options whose key names a credential
(``key``, ``secret``, ``token``, ``password``...) are dropped, as is a
password in the catalog URL; the worker takes credentials from its own
environment or fsspec configuration (``FSSPEC_S3_KEY``, ``~/.aws``,
``PGPASSWORD``, ``~/.pgpass``), as ``limnos.open`` does.

This module imports nothing else of the kernel at run time (files and the
lake base import it), so it has no import cycle: :mod:`limnos.core.opening`
hands in how to open a lake with :func:`set_opener`.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import LakeBase

#: option names that hold credentials (as store/objects.py scrubs them from messages), never pickled
_SECRET_KEY = re.compile(r"secret|password|passwd|token|key|credential|sas|session|auth|cert", re.IGNORECASE)
_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class LakeAddress:
    """Where a lake is, as much as another process needs to open it, and nothing secret.

    Attributes:
        path: the lake's folder (absolute) or URL.
        catalog: the catalog URL without its password, or None for the lake's own default.
        cache: the cache folder given when the lake was opened, or None for this machine's default.
        options: the lake store's storage options, credentials left out.
        facade: the class to open it as (``limnos.Lake``): pickled by reference, so unpickling
            an address imports the facade (and with it what opens lakes) in a fresh process.
    """

    path: str
    catalog: str | None = None
    cache: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    facade: type | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """What tells two addresses of one lake apart: its path and catalog."""
        return (self.path, self.catalog)


def public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without credentials: keys that name one dropped at any depth, and any value that is not plain data."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if not isinstance(key, str) or _SECRET_KEY.search(key):
            continue
        if isinstance(value, Mapping):
            out[key] = public_options(value)
        elif isinstance(value, _PLAIN) and not (isinstance(value, str) and "://" in value and "@" in value):
            out[key] = value  # a URL with user info may carry a password: left out
    return out


def _strip_password(url: str) -> str:
    """A database URL without its password (``user:pw@host`` becomes ``user@host``)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1@", url)


class _Registry:
    """The lakes of this process, by address: those its code opened (weakly) and those reopened here (kept)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pid = os.getpid()
        #: lake -> the address it was opened at (weak: a lake the caller dropped is forgotten)
        self.addresses: weakref.WeakKeyDictionary[LakeBase, LakeAddress] = weakref.WeakKeyDictionary()
        #: key -> lakes opened there by this process's code, newest last (weak)
        self.known: dict[tuple[str, str | None], list[weakref.ref[LakeBase]]] = {}
        #: key -> the lake reopened here for unpickled objects (kept open for the life of the process)
        self.kept: dict[tuple[str, str | None], LakeBase] = {}
        self.opener: Callable[[LakeAddress], LakeBase] | None = None

    def reset_after_fork(self) -> None:
        """A forked child starts with no lakes: its parent's connections are not its own."""
        self.lock = threading.RLock()
        self.pid = os.getpid()
        self.addresses = weakref.WeakKeyDictionary()
        self.known = {}
        self.kept = {}


_registry = _Registry()
os.register_at_fork(after_in_child=_registry.reset_after_fork)


def set_opener(opener: Callable[[LakeAddress], LakeBase]) -> None:
    """How :func:`lake_for` opens a lake no one has open here (``core/opening.py`` sets it)."""
    _registry.opener = opener


def register(lake: LakeBase, catalog: str | None, cache: str | None, options: Mapping[str, Any]) -> None:
    """Note that this process opened ``lake`` (with these arguments), so unpickled objects find it.

    Args:
        lake: the lake just opened or created.
        catalog: the catalog URL the caller gave, or None when the lake's settings chose it.
        cache: the cache folder the caller gave, or None.
        options: the storage options the caller gave (credentials are dropped here).
    """
    address = LakeAddress(lake.path, _strip_password(catalog) if catalog else None,
                          os.path.abspath(os.path.expanduser(cache)) if cache else None, public_options(options),
                          type(lake))
    reg = _registry
    with reg.lock:
        reg.addresses[lake] = address
        for key in {address.key, (address.path, None)}:
            refs = [r for r in reg.known.get(key, []) if r() is not None]
            refs.append(weakref.ref(lake))
            reg.known[key] = refs
    ref = weakref.ref(lake)
    lake.on_close(lambda: _forget(ref))


def _forget(ref: weakref.ref[LakeBase]) -> None:
    """A closed lake is no longer handed to unpickled objects."""
    lake = ref()
    if lake is None:
        return
    reg = _registry
    with reg.lock:
        for key, refs in list(reg.known.items()):
            reg.known[key] = [r for r in refs if r() is not None and r() is not lake]
        for key, kept in list(reg.kept.items()):
            if kept is lake:
                del reg.kept[key]


def address_of(lake: LakeBase) -> LakeAddress:
    """The address ``lake`` pickles as: where it was opened, else its path and catalog (without a password)."""
    found = _registry.addresses.get(lake)
    if found is not None:
        return found
    return LakeAddress(lake.path, _strip_password(lake.catalog.url), facade=type(lake))


def lake_for(address: LakeAddress) -> LakeBase:
    """The lake at ``address`` in this process: one this process has open, else one opened now and kept.

    Raises:
        LakeNotFound: there is no lake at the address (from this machine's view).
        LimnosError: the lake cannot be opened here (its catalog is unreachable, a missing extra...).
    """
    reg = _registry
    if reg.pid != os.getpid():  # a fork the hook did not see (it always should)
        reg.reset_after_fork()
    with reg.lock:
        # An address without a catalog takes whichever lake this process opened at the path, newest first.
        for ref in reversed(reg.known.get(address.key, [])):
            lake = ref()
            if lake is not None:
                return lake
        kept = reg.kept.get(address.key)
        if kept is not None:
            return kept
        if reg.opener is None:
            # Unpickling the address imported its facade class, and with it core/opening.py, which sets the opener.
            from ..errors import LimnosError

            raise LimnosError("cannot reopen a pickled lake: import limnos (limnos.open) in this process first")
        lake = reg.opener(address)
        reg.kept[address.key] = lake
        reg.addresses[lake] = address
        return lake


def reopen_lake(address: LakeAddress) -> LakeBase:
    """What an unpickled lake becomes: :func:`lake_for` its address."""
    return lake_for(address)


__all__ = ["LakeAddress", "address_of", "lake_for", "public_options", "register", "reopen_lake", "set_opener"]
