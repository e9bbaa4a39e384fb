"""Stat cache: (path, inode, size, mtime_ns) -> content hash.

Re-adding or checking an unchanged file must cost a ``stat``, not a read, as
DVC's state database does. The cache is per machine (inodes mean nothing
elsewhere), so it lives in the lake's local state folder, never in the store.
An entry is trusted only when all four stat fields match.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

_meta = sa.MetaData()
entries = sa.Table(
    "stat_entries",
    _meta,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("inode", sa.BigInteger, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

StatKey = tuple[int, int, int]  # inode, size, mtime_ns


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class StatCache:
    def __init__(self, db_path: str) -> None:
        os.makedirs(os.path.dirname(db_path), exist_ok=True)
        self.engine = sa.create_engine(f"sqlite:///{db_path}")

        @sa.event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # A lost entry only costs a re-hash, so durability is not worth an fsync here.
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        _meta.create_all(self.engine)

    def lookup_many(self, prefix: str) -> dict[str, tuple[StatKey, str]]:
        """Every entry whose path starts with ``prefix`` (an absolute folder or file path)."""
        stmt = sa.select(entries).where(entries.c.path >= prefix, entries.c.path < prefix + "\U0010ffff")
        with self.engine.connect() as conn:
            return {r.path: ((r.inode, r.size, r.mtime_ns), r.hash) for r in conn.execute(stmt)}

    def get(self, path: str, key: StatKey) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(entries).where(entries.c.path == path)).first()
        if row is not None and (row.inode, row.size, row.mtime_ns) == key:
            return str(row.hash)
        return None

    def put_many(self, items: Iterable[tuple[str, StatKey, str]]) -> None:
        rows = [
            {"path": p, "inode": k[0], "size": k[1], "mtime_ns": k[2], "hash": h} for p, k, h in items
        ]
        if not rows:
            return
        stmt = sqlite.insert(entries)
        stmt = stmt.on_conflict_do_update(
            index_elements=["path"],
            set_={c: stmt.excluded[c] for c in ("inode", "size", "mtime_ns", "hash")},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def close(self) -> None:
        self.engine.dispose()
