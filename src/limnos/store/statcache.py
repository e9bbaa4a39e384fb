"""Stat cache: (path, inode, size, mtime_ns) -> content hash, and the objects already verified.

Re-adding or checking an unchanged file must cost a ``stat``, not a read, as
DVC's state database does. The cache is per machine (inodes mean nothing
elsewhere), so it lives in the lake's local state folder, never in the store.
An entry is trusted only when all four stat fields match.

A second table, ``verified_objects``, remembers which local objects were
hashed and found right, keyed by (inode, size, mtime_ns, ctime_ns), so a hot
object is not re-hashed on every read. The ctime is what makes it safe: no
user call can set it back, so any write to the object (through a path that
``local_path()`` handed out, or a hard link to it) changes the key, and the
next read hashes again. :mod:`limnos.store.verify` decides when an entry may
be recorded (never while a write in the same clock tick could go unseen).

It is one SQLite file, written with the standard library's ``sqlite3``: the
SQL catalog (and SQLAlchemy) is the ``catalog`` package's business, and this
small table needs neither.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable

StatKey = tuple[int, int, int]  # inode, size, mtime_ns
VerifiedKey = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns

# The table as earlier versions created it (through SQLAlchemy), so existing files keep working.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_entries (
    path TEXT NOT NULL,
    inode BIGINT NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    hash VARCHAR(64) NOT NULL,
    PRIMARY KEY (path)
)
"""
_UPSERT = (
    "INSERT INTO stat_entries (path, inode, size, mtime_ns, hash) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (path) DO UPDATE SET inode = excluded.inode, size = excluded.size, "
    "mtime_ns = excluded.mtime_ns, hash = excluded.hash"
)
_COLUMNS = "path, inode, size, mtime_ns, hash"
_VERIFIED_SCHEMA = """
CREATE TABLE IF NOT EXISTS verified_objects (
    path TEXT NOT NULL PRIMARY KEY,
    inode BIGINT NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    ctime_ns BIGINT NOT NULL
)
"""
_VERIFIED_UPSERT = (
    "INSERT INTO verified_objects (path, inode, size, mtime_ns, ctime_ns) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (path) DO UPDATE SET inode = excluded.inode, size = excluded.size, "
    "mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns"
)


def stat_key(st: os.stat_result) -> StatKey:
    """The fields of a ``stat`` that must all match for a cached hash to be trusted."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def verified_key(st: os.stat_result) -> VerifiedKey:
    """The fields of an object's ``stat`` that must all match for an earlier verification to stand."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatCache:
    """This machine's ``path -> (stat key, hash)`` table, in one SQLite file.

    Safe to share between threads (one connection, used under a lock) and
    between processes (WAL mode; writers wait for each other).
    """

    def __init__(self, db_path: str) -> None:
        os.makedirs(os.path.dirname(db_path), exist_ok=True)
        self.db_path = db_path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        with self._lock:
            self._connection()

    def _connection(self) -> sqlite3.Connection:
        """The open connection (opened again after :meth:`close`); call with the lock held."""
        if self._conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # A lost entry only costs a re-hash, so durability is not worth an fsync here.
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA busy_timeout=30000")
            with conn:
                conn.execute(_SCHEMA)
                conn.execute(_VERIFIED_SCHEMA)
            self._conn = conn
        return self._conn

    def lookup_many(self, prefix: str) -> dict[str, tuple[StatKey, str]]:
        """Every entry whose path starts with ``prefix`` (an absolute folder or file path)."""
        sql = f"SELECT {_COLUMNS} FROM stat_entries WHERE path >= ? AND path < ?"
        with self._lock:
            rows = self._connection().execute(sql, (prefix, prefix + "\U0010ffff")).fetchall()
        return {path: ((inode, size, mtime_ns), digest) for path, inode, size, mtime_ns, digest in rows}

    def get(self, path: str, key: StatKey) -> str | None:
        """The cached hash of ``path``, if its entry has exactly this stat key."""
        with self._lock:
            row = self._connection().execute(f"SELECT {_COLUMNS} FROM stat_entries WHERE path = ?", (path,)).fetchone()
        if row is not None and (row[1], row[2], row[3]) == key:
            return str(row[4])
        return None

    def put_many(self, items: Iterable[tuple[str, StatKey, str]]) -> None:
        """Remember (path, stat key, hash) entries, replacing older entries for the same paths."""
        rows = [(path, key[0], key[1], key[2], digest) for path, key, digest in items]
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            with conn:  # one transaction: commit, or roll back on error
                conn.executemany(_UPSERT, rows)

    # -- objects already verified against their hash ---------------------------
    def is_verified(self, path: str, st: os.stat_result) -> bool:
        """True when the object at ``path`` was verified while it had exactly this stat (inode, size, mtime, ctime).

        A cache that cannot be read counts as a miss: the object is hashed again.
        """
        try:
            with self._lock:
                row = self._connection().execute(
                    "SELECT inode, size, mtime_ns, ctime_ns FROM verified_objects WHERE path = ?", (path,)).fetchone()
        except sqlite3.Error:
            return False
        return row is not None and tuple(row) == verified_key(st)

    def mark_verified(self, path: str, st: os.stat_result) -> None:
        """Remember that the object at ``path`` hashed right while it had the stat ``st``.

        Best effort: a cache that cannot be written (a full disk, a read-only
        folder) only means the object is hashed again next time.
        """
        try:
            with self._lock:
                conn = self._connection()
                with conn:
                    conn.execute(_VERIFIED_UPSERT, (path, *verified_key(st)))
        except sqlite3.Error:
            pass

    def forget_verified(self, path: str) -> None:
        """Drop the entry for ``path`` (its object was found corrupt or moved away); best effort."""
        try:
            with self._lock:
                conn = self._connection()
                with conn:
                    conn.execute("DELETE FROM verified_objects WHERE path = ?", (path,))
        except sqlite3.Error:
            pass

    def close(self) -> None:
        """Close the file; a later call opens it again."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
