"""Engines for SQLite and PostgreSQL, and the one ``atomic()`` helper.

SQLite runs in WAL mode with ``synchronous=FULL`` (a power cut loses no
acknowledged commit) and foreign keys on. Write transactions start with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the database lock up
front instead of failing at commit time; reads stay deferred and never block
writers. PostgreSQL goes through psycopg 3, and transactions that hit a
deadlock or serialization failure are retried.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event

from ..errors import CatalogError, StoreFull, redact_url, require_extra

_RETRY_PGCODES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
T = TypeVar("T")
#: Bound on the length of ``IN (...)`` lists and on executemany batches: every package's SQL uses it.
CHUNK = 500
_FULL_BELOW = 1 << 20  # bytes free under which a disk counts as full (SQLite needs 32 KiB for its -shm file)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (for ``IN`` lists and batches)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def normalize_url(url: str) -> str:
    """A catalog URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def strip_password(url: str) -> str:
    """``url`` without its password, for saving in settings (later opens use PGPASSWORD or ~/.pgpass)."""
    parsed = sa.engine.make_url(url)
    # URL.set() ignores None, so replace the field on the named tuple itself.
    return parsed._replace(password=None).render_as_string(hide_password=False) if parsed.password else url


#: Each SQL statement the catalog runs is logged here at DEBUG: ``logging.basicConfig(level=logging.DEBUG)``,
#: the ``limnos`` logger at DEBUG, or ``LIMNOS_DEBUG=1`` (which also adds a stderr handler) show them.
sql_log = logging.getLogger("limnos.sql")
_PARAMS_SHOWN = 400  # characters of a statement's parameters a debug line shows


def debug_from_env() -> None:
    """With ``LIMNOS_DEBUG=1``, set the ``limnos`` logger to DEBUG and give it a stderr handler (once)."""
    if os.environ.get("LIMNOS_DEBUG") != "1":
        return
    logger = logging.getLogger("limnos")
    logger.setLevel(logging.DEBUG)
    if not any(getattr(h, "_limnos_debug", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        handler._limnos_debug = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def _log_statements(engine: sa.Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if not sql_log.isEnabledFor(logging.DEBUG):
            return
        if executemany:
            shown = f"[{len(parameters)} rows]"
        else:
            shown = repr(parameters)
            if len(shown) > _PARAMS_SHOWN:
                shown = shown[:_PARAMS_SHOWN] + "..."
        sql_log.debug("%s\n  parameters: %s", " ".join(statement.split()), shown)


def make_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine for a ``sqlite:///`` path or a ``postgresql://`` URL, set up as the catalog needs.

    Raises:
        CatalogError: the URL is neither SQLite nor PostgreSQL.
        MissingExtra: PostgreSQL without the ``postgres`` extra (psycopg) installed.
    """
    url = normalize_url(url)
    debug_from_env()
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 120, "check_same_thread": False})
        _sqlite_events(engine)
        _log_statements(engine)
        return engine
    if url.startswith("postgresql"):
        require_extra("psycopg", "postgres")
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8)
        _log_statements(engine)
        return engine
    raise CatalogError(
        f"unsupported catalog URL {redact_url(url)!r}; use a sqlite:/// path or a postgresql:// URL"
    )


def _sqlite_events(engine: sa.Engine) -> None:
    path = engine.url.database or ""

    @event.listens_for(engine, "do_connect")
    def _do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        dbapi_conn = dialect.connect(*cargs, **cparams)
        try:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            dbapi_conn.close()  # a connection whose WAL open failed stays broken: start afresh
            return _wal_on_full_disk(lambda: dialect.connect(*cargs, **cparams), path, exc)
        return dbapi_conn

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's own would be DEFERRED).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=120000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("limnos_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _is_wal_database(path: str) -> bool:
    """True when the SQLite file at ``path`` is in WAL mode (bytes 18 and 19 of its header are 2)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header.startswith(b"SQLite format 3\x00") and header[18] == header[19] == 2


def disk_is_full(folder: str) -> bool:
    """True when the file system holding ``folder`` has (next to) no free space left."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _FULL_BELOW


def _wal_on_full_disk(connect: Callable[[], Any], path: str, exc: sqlite3.OperationalError) -> Any:
    """Open a WAL catalog whose disk is full: its wal-index in this process's memory instead of a file.

    A WAL database needs a ``-shm`` file of 32 KiB, which a full disk cannot
    hold, so the open itself failed with "disk I/O error". In exclusive locking
    mode SQLite keeps the wal-index in memory: reads work, so the lake opens for
    ``gc`` to free space, while other processes wait for this one to finish.

    Returns:
        A new DBAPI connection, in exclusive locking mode.

    Raises:
        StoreFull: the disk is full and the database cannot be opened even so.
        sqlite3.OperationalError: the original error, when the disk is not full.
    """
    folder = os.path.dirname(os.path.abspath(path)) if path else ""
    if not folder or not disk_is_full(folder) or not _is_wal_database(path):
        raise exc
    dbapi_conn = connect()
    try:
        dbapi_conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        dbapi_conn.close()
        raise StoreFull(f"the disk holding the catalog {path} is full, so it cannot be opened",
                        hint="free space on that disk and try again", path=folder) from exc
    logging.getLogger("limnos").warning(
        "the disk holding %s is full: the catalog is open for this process alone; free space there "
        "(garbage collection deletes unreferenced objects)", folder)
    return dbapi_conn


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says a disk is full: ENOSPC or EDQUOT, SQLite's "database or disk is full",
    or PostgreSQL's ``disk_full`` (53100)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.OperationalError):
        return "database or disk is full" in str(orig)
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) == "53100"


def full_disk_error(exc: BaseException, folder: str) -> bool:
    """True when ``exc`` failed for want of space: it says so, or it is an I/O or database error
    while the disk holding ``folder`` is full (SQLite then often says only "disk I/O error")."""
    if is_disk_full(exc):
        return True
    io_error = isinstance(exc, (OSError, sqlite3.Error, sa.exc.DBAPIError))
    return io_error and disk_is_full(folder)


def is_retryable(exc: BaseException) -> bool:
    """True for a deadlock, a serialization failure, or a SQLite lock that outlived its timeout."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _RETRY_PGCODES:
        return True
    # SQLite: a lock that outlived busy_timeout.
    return "database is locked" in str(orig or "")


def is_data_error(exc: BaseException) -> bool:
    """True when a statement failed on the values it was given (out of range, wrong type, a constraint),
    not because the database is unreachable, locked or broken."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.InternalError)):
        return False
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return False
    return isinstance(exc, (sa.exc.StatementError, sa.exc.CompileError, sa.exc.ArgumentError, TypeError, ValueError,
                            KeyError, OverflowError, AttributeError))


@contextlib.contextmanager
def atomic(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: everything inside commits together or not at all."""
    with engine.connect().execution_options(limnos_write=True) as conn, conn.begin():
        yield conn


def run_atomic(engine: sa.Engine, fn: Callable[[sa.Connection], T], attempts: int = 8) -> T:
    """Call ``fn(conn)`` in :func:`atomic`, retrying deadlocks and serialization failures; its result.

    ``fn`` may run more than once, so it must have no effect outside the transaction
    that a retry would repeat wrongly (writing a records file again is fine: same bytes).
    """
    for attempt in range(attempts):
        try:
            with atomic(engine) as conn:
                return fn(conn)
        except sa.exc.DBAPIError as exc:
            if attempt + 1 == attempts or not is_retryable(exc):
                raise
            time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


BULK_AT = 256  # from this many rows, bypass per-row parameter compilation


def execute_many(conn: sa.Connection, stmt: Any, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(stmt, rows)``, with big batches sent straight to the driver's executemany.

    SQLAlchemy compiles parameters row by row, which costs more than SQLite
    itself for a folder of 10k files. For big batches the statement is
    compiled once and each column's own bind processor (datetimes, JSON) is
    applied by hand, so the driver sees exactly what Core would send.
    """
    if not rows:
        return
    if len(rows) < BULK_AT:
        conn.execute(stmt, rows)
        return
    keys = list(rows[0])
    compiled = stmt.compile(dialect=conn.dialect, column_keys=keys)
    procs = [(k, table.c[k].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)) for k in keys]
    converted = [{k: (proc(row.get(k)) if proc else row.get(k)) for k, proc in procs} for row in rows]
    if compiled.positional:
        order = compiled.positiontup or []
        params: Any = [tuple(row[name] for name in order) for row in converted]
    else:
        params = converted
    conn.exec_driver_sql(str(compiled), params)


def _dialect(conn: sa.Connection) -> Any:
    """The dialect module (for its ``insert``) of ``conn``; imported here: PostgreSQL's is slow to load."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql
    from sqlalchemy.dialects import sqlite

    return sqlite


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT rows, skipping any that collide with an existing primary key."""
    if not rows:
        return
    dialect = _dialect(conn)
    execute_many(conn, dialect.insert(table).on_conflict_do_nothing(), table, rows)


def upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT rows, replacing the non-key columns of rows that already exist."""
    if not rows:
        return
    dialect = _dialect(conn)
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    )
    execute_many(conn, stmt, table, rows)
