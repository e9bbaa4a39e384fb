"""Content-addressed storage: objects over fsspec, hashing, links and the stat cache."""

from .hashing import hash_bytes, hash_file
from .links import LINK_MODES, place
from .local import LocalObjectStore
from .objects import ObjectInfo, ObjectStore, object_relpath
from .statcache import StatCache

__all__ = [
    "LINK_MODES",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "StatCache",
    "hash_bytes",
    "hash_file",
    "object_relpath",
    "place",
]
