"""Shared fixtures: real lakes on a real SQLite file and a real PostgreSQL server.

``catalog_url`` is parametrized over both backends, so every test that uses
``lake`` runs on each. PostgreSQL comes from LIMNOS_TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres); each test gets its
own database. When the server is unreachable the PostgreSQL cases skip with
the reason shown, unless LIMNOS_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

import limnos
from helpers import age  # noqa: F401  (re-exported for older imports)

PG_URL = os.environ.get("LIMNOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("LIMNOS_REQUIRE_POSTGRES") == "1"


def _pg_admin():  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


_pg_error: list[str] = []


def pg_available() -> bool:
    if _pg_error:
        return _pg_error[0] == ""
    try:
        import sqlalchemy as sa

        engine = _pg_admin()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        _pg_error.append("")
    except Exception as exc:  # any failure to connect means "no server here"
        _pg_error.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return _pg_error[0] == ""


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; its URL."""
    if not pg_available():
        reason = f"PostgreSQL unreachable at {PG_URL}: {_pg_error[0]}"
        if REQUIRE_PG:
            pytest.fail(reason + " (LIMNOS_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    import sqlalchemy as sa

    name = f"limnos_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path) -> str | None:  # type: ignore[no-untyped-def]
    """None (the default SQLite catalog inside the lake) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_database")  # type: ignore[no-any-return]


@pytest.fixture
def lake(tmp_path, catalog_url) -> Iterator[limnos.Lake]:  # type: ignore[no-untyped-def]
    lake = limnos.init(str(tmp_path / "lake"), catalog=catalog_url)
    yield lake
    lake.close()


@pytest.fixture
def sqlite_lake(tmp_path) -> Iterator[limnos.Lake]:  # type: ignore[no-untyped-def]
    lake = limnos.init(str(tmp_path / "lake"))
    yield lake
    lake.close()


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Tests run in their own folder, never find a real lake above, and draw no bars."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("LIMNOS_LAKE", raising=False)
    monkeypatch.setenv("LIMNOS_PROGRESS", "0")

