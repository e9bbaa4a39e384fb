"""``add`` from a URL: a real ``python -m http.server`` on loopback, a server that cuts bodies short, moto's S3.

Every failure is checked for its exact error class and for leaving the lake
as it was: no commit, no records file, no object, no staging file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import limnos
from conftest import S3Server, _free_port, _wait_port
from helpers import lake_state
from limnos.cli.main import app
from limnos.ops.add_url import CHUNK, SOURCE_KEY, is_url, source_url, url_name
from limnos.store.hashing import hash_bytes

runner = CliRunner()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder served by ``python -m http.server`` on 127.0.0.1: (folder, base URL)."""
    root = tmp_path_factory.mktemp("www")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_port(port, proc, "python -m http.server")
    yield root, f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


class _CutShort(BaseHTTPRequestHandler):
    """Announces 100,000 bytes and sends 1,000, then hangs up; or answers 500 for /error."""

    def log_message(self, *args: Any) -> None:  # keep the test output clean
        pass

    def _head(self) -> None:
        if self.path.startswith("/error"):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._head()

    def do_GET(self) -> None:
        self._head()
        if not self.path.startswith("/error"):
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


@pytest.fixture(scope="module")
def cutting_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that cuts every body short; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutShort)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _empty_state(lake: limnos.Lake) -> dict[str, Any]:
    lake.cache.staging_dir()  # exists from the start, so an empty one compares equal
    return lake_state(lake)


# ------------------------------------------------------------------ names and URLs
def test_url_helpers() -> None:
    assert is_url("https://x.org/a.csv") and is_url("s3://bucket/key") and is_url("file:///tmp/x")
    assert not is_url("data/a.csv") and not is_url("C:\\data\\a.csv") and not is_url("C://x")
    assert url_name("https://x.org/data/iris%20v2.csv?dl=1#top") == "iris v2.csv"
    assert url_name("s3://bucket/raw/part-0.parquet") == "part-0.parquet"
    for bad in ("https://x.org/", "https://x.org", "s3://bucket/folder/"):
        with pytest.raises(limnos.InvalidName):
            url_name(bad)
    shown = source_url("https://alice:pw@x.org/a.csv?X-Amz-Signature=abc&X-Amz-Credential=k&part=2")
    assert "pw" not in shown and "abc" not in shown and "=k" not in shown and "part=2" in shown
    assert "tok123" not in source_url("https://tok123@x.org/a.csv")


# ------------------------------------------------------------------ http
def test_add_http_url_streams_hashes_and_records_the_source(lake: limnos.Lake, web: tuple[Path, str]) -> None:
    root, base = web
    data = os.urandom(3 * CHUNK + 12345)  # several chunks, not a multiple of one
    (root / "iris.csv").write_bytes(data)
    result = lake.add(f"{base}/iris.csv")
    f = result.file
    assert (f.name, f.version, f.size, f.hash) == ("iris.csv", 1, len(data), hash_bytes(data))
    assert result.new_versions == 1 and f.read_bytes() == data
    assert f.metadata[SOURCE_KEY] == f"{base}/iris.csv"
    assert [x.name for x in lake.query(source_url=f"{base}/iris.csv")] == ["iris.csv"]

    again = lake.add(f"{base}/iris.csv", name="iris.csv")  # same bytes: no new version, as a local add
    assert again.new_versions == 0 and again.file.version == 1

    (root / "iris.csv").write_bytes(data[::-1])
    changed = lake.add(f"{base}/iris.csv", name="raw/iris.csv", metadata={"project": "x"})
    assert (changed.file.name, changed.file.version) == ("raw/iris.csv", 1)
    assert changed.file.metadata == {"project": "x", SOURCE_KEY: f"{base}/iris.csv"}
    assert lake.fsck(read_data=True).ok


def test_add_http_url_holds_one_chunk_at_a_time(sqlite_lake: limnos.Lake, web: tuple[Path, str]) -> None:
    root, base = web
    data = os.urandom(24 * CHUNK)
    (root / "big.bin").write_bytes(data)
    tracemalloc.start()
    try:
        f = sqlite_lake.add(f"{base}/big.bin").file
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del data
    assert f.size == 24 * CHUNK
    assert peak < 8 * CHUNK, f"adding a {f.size >> 20} MiB URL held {peak >> 20} MiB at once"


def test_add_http_404_is_source_not_found_and_writes_nothing(lake: limnos.Lake, web: tuple[Path, str]) -> None:
    _, base = web
    before = _empty_state(lake)
    with pytest.raises(limnos.SourceNotFound) as missing:
        lake.add(f"{base}/no-such-file.csv")
    assert isinstance(missing.value, FileNotFoundError) and "no-such-file.csv" in str(missing.value)
    assert lake_state(lake) == before and lake.ls() == []


def test_add_http_cut_short_or_server_error_writes_nothing(lake: limnos.Lake, cutting_server: str) -> None:
    before = _empty_state(lake)
    with pytest.raises(limnos.DownloadFailed) as cut:
        lake.add(f"{cutting_server}/data.bin?token=sekrit")
    assert "sekrit" not in str(cut.value) and cut.value.url is not None and "sekrit" not in cut.value.url
    assert lake_state(lake) == before
    with pytest.raises(limnos.DownloadFailed):
        lake.add(f"{cutting_server}/error/data.bin")
    assert lake_state(lake) == before and lake.ls() == []


def test_add_url_bad_input_fails_before_any_download(sqlite_lake: limnos.Lake, cutting_server: str) -> None:
    before = _empty_state(sqlite_lake)
    with pytest.raises(limnos.InvalidName):
        sqlite_lake.add(f"{cutting_server}/")
    with pytest.raises(limnos.InvalidName):
        sqlite_lake.add(f"{cutting_server}/x.bin", name="../escape")
    with pytest.raises(limnos.MetadataError):
        sqlite_lake.add(f"{cutting_server}/x.bin", metadata={"": 1})
    with pytest.raises(limnos.LimnosError):
        sqlite_lake.add(f"{cutting_server}/x.bin", move=True)
    assert lake_state(sqlite_lake) == before


def test_cli_add_url(sqlite_lake: limnos.Lake, web: tuple[Path, str]) -> None:
    root, base = web
    (root / "cli.txt").write_text("from the web\n")
    args = ["--lake", sqlite_lake.path]
    out = runner.invoke(app, [*args, "add", f"{base}/cli.txt", "--name", "web/cli.txt", "--json"])
    assert out.exit_code == 0, out.output
    [added] = json.loads(out.stdout)
    assert added["name"] == "web/cli.txt" and added["version"] == 1
    assert sqlite_lake.get("web/cli.txt").read_text() == "from the web\n"
    info = runner.invoke(app, [*args, "info", "web/cli.txt"], env={"COLUMNS": "200"})
    assert f"{base}/cli.txt" in info.output
    missing = runner.invoke(app, [*args, "add", f"{base}/nope.txt", "--name", "nope.txt"])
    assert missing.exit_code == 1 and "error:" in missing.output and "does not exist" in missing.output


# ------------------------------------------------------------------ s3
def test_add_s3_url(lake: limnos.Lake, moto_s3: S3Server) -> None:
    import s3fs

    bucket = moto_s3.new_bucket()
    fs = s3fs.S3FileSystem(**moto_s3.options(), skip_instance_cache=True)
    data = os.urandom(2 * CHUNK + 7)
    fs.pipe(f"{bucket}/raw/train.parquet", data)
    f = lake.add(f"s3://{bucket}/raw/train.parquet", storage_options=moto_s3.options()).file
    assert (f.name, f.hash, f.read_bytes() == data) == ("train.parquet", hash_bytes(data), True)
    assert f.metadata[SOURCE_KEY] == f"s3://{bucket}/raw/train.parquet"
    assert moto_s3.secret not in json.dumps(f.metadata) and moto_s3.secret not in json.dumps(f.run, default=str)

    before = lake_state(lake)
    with pytest.raises(limnos.SourceNotFound):
        lake.add(f"s3://{bucket}/raw/missing.parquet", storage_options=moto_s3.options())
    assert lake_state(lake) == before


def test_add_s3_url_refused_credentials_write_nothing(sqlite_lake: limnos.Lake, rclone_s3: S3Server) -> None:
    import s3fs

    bucket = rclone_s3.new_bucket()
    s3fs.S3FileSystem(**rclone_s3.options(), skip_instance_cache=True).pipe(f"{bucket}/a.bin", b"abc")
    before = _empty_state(sqlite_lake)
    with pytest.raises(limnos.DownloadFailed) as denied:  # rclone checks keys (moto takes any)
        sqlite_lake.add(f"s3://{bucket}/a.bin", storage_options=rclone_s3.options(secret="wrong-secret-0000"))
    assert "wrong-secret" not in str(denied.value)
    assert lake_state(sqlite_lake) == before
    assert sqlite_lake.add(f"s3://{bucket}/a.bin", storage_options=rclone_s3.options()).file.read_bytes() == b"abc"


def test_add_http_without_aiohttp_names_the_extra(sqlite_lake: limnos.Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _empty_state(sqlite_lake)
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(limnos.MissingExtra, match=r"limnos\[http\]"):
        sqlite_lake.add("http://127.0.0.1:9/x.bin")
    assert lake_state(sqlite_lake) == before
