"""Versioned catalog migrations, applied when a lake is opened.

Each migration is a function of a connection, run once in order inside a
transaction. The applied version is kept in ``limnos_schema_version``. A
catalog written by a newer limnos (a version this code does not know) is
refused with a message to upgrade, never silently used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from ..errors import CatalogVersionError
from ..version import __version__
from . import schema
from .datasources import adopt_legacy_fields
from .engine import run_atomic

V1_TABLES = ("commits", "runs", "names", "files", "inputs", "metadata_schema", "metadata_log", "metadata")
V2_TABLES = ("tombstones", "locks", "steps", "step_outputs")
V3_TABLES = ("datasources", "datapoints", "datasource_fields", "datasets")
V5_TABLES = ("ds_values_log", "ds_values")


def _create(conn: sa.Connection, names: tuple[str, ...]) -> None:
    tables = [schema.metadata_obj.tables[n] for n in names]
    schema.metadata_obj.create_all(conn, tables=tables)


def _v1_initial(conn: sa.Connection) -> None:
    _create(conn, ("limnos_schema_version", *V1_TABLES))


def _v2_deletions_locks_steps(conn: sa.Connection) -> None:
    # names.current is the newest version not deleted; names.latest only ever grows,
    # so a deleted version number is never handed out again.
    if "current" not in {c["name"] for c in sa.inspect(conn).get_columns("names")}:
        conn.exec_driver_sql("ALTER TABLE names ADD COLUMN current INTEGER")
    conn.exec_driver_sql("UPDATE names SET current = latest")
    _create(conn, V2_TABLES)


def _v3_datasources(conn: sa.Connection) -> None:
    _create(conn, V3_TABLES)


def _v4_shared_log(conn: sa.Connection) -> None:
    # Team lakes on a bucket: each commit's position in the shared log (store/log.py).
    if "seq" not in {c["name"] for c in sa.inspect(conn).get_columns("commits")}:
        conn.exec_driver_sql("ALTER TABLE commits ADD COLUMN seq BIGINT")
    conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ix_commits_seq ON commits (seq)")
    _create(conn, ("log_refused",))


def _v5_datasource_values(conn: sa.Connection) -> None:
    # Each datasource's fields become its own, typed per datasource: the values its fields held as
    # file metadata are copied into ds_values (the file metadata stays, seen as read-only lake.<key>).
    if "type" not in {c["name"] for c in sa.inspect(conn).get_columns("datasource_fields")}:
        conn.exec_driver_sql("ALTER TABLE datasource_fields ADD COLUMN type VARCHAR(16)")
    _create(conn, V5_TABLES)
    adopt_legacy_fields(conn)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1_initial, _v2_deletions_locks_steps, _v3_datasources,
                                                     _v4_shared_log, _v5_datasource_values]
LATEST = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    """The schema version the catalog is at (0 for an empty database)."""
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(value or 0)


def migrate(engine: sa.Engine) -> int:
    """Bring the catalog to the latest schema; return the version it is at.

    Raises:
        CatalogVersionError: the catalog has a newer schema than this limnos knows.
    """
    with engine.connect() as conn:
        version = current_version(conn)
    if version > LATEST:
        raise CatalogVersionError(
            f"this catalog has schema version {version} but limnos {__version__} knows up to {LATEST}; "
            "upgrade limnos (pip install -U limnos)"
        )
    if version == LATEST:
        return version

    def apply(conn: sa.Connection) -> int:
        if conn.dialect.name == "postgresql":
            # Two processes opening a new catalog at once must not both create it.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7243051)")
        start = current_version(conn)
        for number in range(start + 1, LATEST + 1):
            MIGRATIONS[number - 1](conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=number, applied_at=dt.datetime.now(dt.timezone.utc), limnos_version=__version__
                )
            )
        return LATEST

    return int(run_atomic(engine, apply))
