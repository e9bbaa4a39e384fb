"""What sharing costs: a create on a bucket team lake (shared log), a PostgreSQL team lake, and a one-machine lake.

    .venv/bin/python benchmarks/team.py [--creates 100] [--rounds 3] [--writers 4] [--results PATH]

Starts moto's S3 server on loopback (it honours If-None-Match, as AWS S3 does)
and uses the PostgreSQL server at ``$LIMNOS_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) for the PostgreSQL mode.

Each round runs every mode once, in a rotated order (interleaved, so a noisy
machine slows all modes alike), on a fresh lake:

* ``create``: one process makes ``--creates`` small files (the library call,
  timed per create); the median per create is reported.
* ``read_after_write``: machine B's first ``get`` of a file machine A has just
  made (the catch-up a team lake does before each read).
* ``concurrent``: ``--writers`` processes, each its own machine (cache folder),
  make ``--creates`` files each at once; creates per second overall.

Figures are loopback figures: moto answers in milliseconds where AWS S3
answers in tens of milliseconds, so on a real bucket the request counts
matter more (a team-lake create makes two requests more than a one-machine
one: the log entry and the catch-up read).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODES = ("team", "postgres", "one-machine")

WRITER = textwrap.dedent(
    """
    import json, sys, time, limnos
    url, catalog, endpoint, cache, count, worker = sys.argv[1:7]
    options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    lake = limnos.open(url, catalog=catalog or None, cache=cache, **options)
    times = []
    for i in range(int(count)):
        t0 = time.perf_counter()
        with lake.create(f"w{worker}/{i % 10}.txt") as w:
            w.write_text(f"{worker}-{i}")
        times.append(time.perf_counter() - t0)
    lake.close()
    print(json.dumps(times))
    """
)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(log_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server on a free loopback port: (process, endpoint)."""
    port = free_port()
    # tests/moto_atomic.py: moto's server with If-None-Match made atomic, as S3 has it (moto checks, then writes)
    launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "moto_atomic.py")
    log = open(os.path.join(log_dir, "moto.log"), "wb")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen([sys.executable, launcher, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


def options(endpoint: str) -> dict[str, Any]:
    """s3fs options for the moto server."""
    return {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def new_bucket(endpoint: str) -> str:
    """A new, empty bucket."""
    import s3fs

    name = f"bench{uuid.uuid4().hex[:10]}"
    s3fs.S3FileSystem(**options(endpoint), skip_instance_cache=True).call_s3("create_bucket", Bucket=name)
    return name


def new_database(admin_url: str) -> str:
    """A new, empty PostgreSQL database; its URL."""
    import sqlalchemy as sa

    name = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def make_lake(mode: str, endpoint: str, pg_admin: str, work: str) -> tuple[str, str]:
    """A fresh lake for ``mode``: (url, catalog URL or "")."""
    import limnos

    url = f"s3://{new_bucket(endpoint)}/lake"
    catalog = new_database(pg_admin) if mode == "postgres" else ""
    limnos.init(url, catalog=catalog or None, cache=os.path.join(work, f"init-{uuid.uuid4().hex[:6]}"),
                team=None if mode != "one-machine" else False, **options(endpoint)).close()
    return url, catalog


def run_writers(url: str, catalog: str, endpoint: str, work: str, writers: int, creates: int) -> list[list[float]]:
    """``writers`` processes, each its own cache folder, making ``creates`` files each; their per-create times."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, catalog, endpoint,
                               os.path.join(work, f"m-{uuid.uuid4().hex[:6]}"), str(creates), str(w)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(writers)]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise RuntimeError(stderr)
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def read_after_write(url: str, catalog: str, endpoint: str, work: str, count: int) -> list[float]:
    """Seconds of machine B's first ``get`` of each file machine A has just made."""
    import limnos

    a = limnos.open(url, catalog=catalog or None, cache=os.path.join(work, f"a-{uuid.uuid4().hex[:6]}"), **options(endpoint))
    b = limnos.open(url, catalog=catalog or None, cache=os.path.join(work, f"b-{uuid.uuid4().hex[:6]}"), **options(endpoint))
    times = []
    for i in range(count):
        with a.create(f"raw/{i}.txt") as w:
            w.write_text(str(i))
        t0 = time.perf_counter()
        b.get(f"raw/{i}.txt")
        times.append(time.perf_counter() - t0)
    a.close()
    b.close()
    return times


def main() -> None:
    """Run the rounds and print (and save) the medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--results", default=str(HERE / "results-team.json"))
    args = parser.parse_args()
    pg_admin = os.environ.get("LIMNOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    work = tempfile.mkdtemp(prefix="limnos-team-bench-")
    moto, endpoint = start_moto(work)
    samples: dict[str, dict[str, list[float]]] = {m: {"create": [], "read_after_write": [], "concurrent": []} for m in MODES}
    try:
        for r in range(args.rounds):
            order = MODES[r % len(MODES):] + MODES[: r % len(MODES)]
            for mode in order:
                url, catalog = make_lake(mode, endpoint, pg_admin, work)
                samples[mode]["create"].append(statistics.median(run_writers(url, catalog, endpoint, work, 1,
                                                                             args.creates)[0]))
                if mode != "one-machine":  # one machine only: other machines are what it cannot serve
                    samples[mode]["read_after_write"].append(statistics.median(
                        read_after_write(url, catalog, endpoint, work, max(args.creates // 5, 5))))
                    url, catalog = make_lake(mode, endpoint, pg_admin, work)
                    t0 = time.perf_counter()
                    run_writers(url, catalog, endpoint, work, args.writers, args.creates)
                    samples[mode]["concurrent"].append(args.writers * args.creates / (time.perf_counter() - t0))
                print(f"round {r + 1} {mode}: create {samples[mode]['create'][-1] * 1000:.1f} ms", flush=True)
    finally:
        moto.terminate()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load": os.getloadavg()[0], "creates": args.creates, "rounds": args.rounds, "writers": args.writers,
        "median": {m: {k: (statistics.median(v) if v else None) for k, v in s.items()} for m, s in samples.items()},
        "samples": samples,
    }
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'mode':<12} {'create (ms)':>12} {'read after write (ms)':>22} {'concurrent creates/s':>22}")
    for mode, med in result["median"].items():
        conc = f"{med['concurrent']:.1f}" if med["concurrent"] else "-"
        raw = f"{med['read_after_write'] * 1000:.1f}" if med["read_after_write"] else "-"
        print(f"{mode:<12} {med['create'] * 1000:>12.1f} {raw:>22} {conc:>22}")


if __name__ == "__main__":
    main()
