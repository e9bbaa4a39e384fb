"""Fault campaign: random kills of writers, and gc beside writers; then check every acknowledged file.

    .venv/bin/python benchmarks/faults.py kill [--trials 100] [--catalog postgresql://...]
    .venv/bin/python benchmarks/faults.py gc [--seconds 20] [--writers 4] [--grace-days 0] [--catalog ...]

``kill``: each trial starts a writer process that adds, creates and sets
metadata in a loop, and appends the id and hash of every file a call returned
(acknowledged) to a journal, flushed and fsynced before the next call. After a
random delay the writer gets SIGKILL. The lake is then reopened (which rolls
interrupted commits forward) and checked: ``fsck --read-data`` is ok, and every
acknowledged file is in the catalog with its bytes intact.

``gc``: writers re-add and re-create the same few contents and delete half of
what they make (so objects keep becoming unreferenced and then reused) while
another process runs ``gc --yes`` in a loop. At the end every acknowledged
file that was not deleted on purpose must read back byte-identical.

Prints one JSON line per campaign with the counts; the README's Reliability
section quotes them. Nothing here is a unit test: the suite has its own
bounded versions of both (tests/test_reliability_commits.py, tests/test_gc_race.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WRITER = r"""
import json, os, sys, random
import limnos
lake = limnos.open(sys.argv[1], catalog=sys.argv[3] or None)
journal = open(sys.argv[2], "a")
rnd = random.Random(int(sys.argv[4]))
src = os.path.join(os.path.dirname(sys.argv[2]), f"src-{os.getpid()}")
os.makedirs(src, exist_ok=True)

def ack(files):
    for f in files:
        journal.write(json.dumps({"id": f.id, "hash": f.hash}) + "\n")
    journal.flush()
    os.fsync(journal.fileno())

i = 0
while True:
    i += 1
    kind = rnd.choice(["create", "create", "add_folder", "meta"])
    if kind == "create":
        with lake.create(f"c/{rnd.randrange(20)}.bin", metadata={"i": i}) as w:
            w.write_bytes(os.urandom(rnd.choice([10, 1000, 100_000])) if rnd.random() < 0.5 else b"same-%d" % (i % 7))
        ack([w.file])
    elif kind == "add_folder":
        folder = os.path.join(src, f"f{i}")
        os.makedirs(folder)
        for j in range(rnd.randrange(1, 40)):
            with open(os.path.join(folder, f"{j}.txt"), "wb") as out:
                out.write(os.urandom(50) if rnd.random() < 0.5 else b"shared-%d" % j)
        ack(list(lake.add(folder, name=f"a/{rnd.randrange(5)}")))
    else:
        files = lake.ls("c/")
        if files:
            ack([lake.set_metadata(rnd.choice(files), {"touched": i})])
"""

GC_LOOP = r"""
import sys, datetime as dt
import limnos
lake = limnos.open(sys.argv[1], catalog=sys.argv[2] or None)
grace = dt.timedelta(days=float(sys.argv[3]))
runs = 0
while True:
    try:
        lake.gc(dry_run=False, grace=grace)
        runs += 1
    except limnos.LimnosError as exc:  # gc may refuse (records and catalog disagree mid-commit): try again
        pass
    print(runs, flush=True)
"""

REUSER = r"""
import json, os, random, sys
import limnos
lake = limnos.open(sys.argv[1], catalog=sys.argv[3] or None)
journal = open(sys.argv[2], "a")
rnd = random.Random(os.getpid())
src = os.path.join(os.path.dirname(sys.argv[2]), f"reuse-{os.getpid()}")
os.makedirs(src, exist_ok=True)
for j in range(20):
    with open(os.path.join(src, f"{j}.txt"), "wb") as out:
        out.write(b"reused content %d" % j)

def note(row):
    journal.write(json.dumps(row) + "\n")
    journal.flush()
    os.fsync(journal.fileno())

i = 0
while True:
    i += 1
    if i % 4 == 0:
        files = list(lake.add(src, name=f"r/{os.getpid()}/{i % 3}"))
    else:
        # the same few contents again and again: after an rm their objects are orphans that a create reuses
        with lake.create(f"c/{os.getpid()}/{i % 5}.txt") as w:
            w.write_bytes(b"reused content %d" % rnd.randrange(20))
        files = [w.file]
    for f in files:
        note({"id": f.id, "hash": f.hash})
    if files and rnd.random() < 0.5:
        victim = rnd.choice(files)
        lake.rm(victim)  # its object becomes unreferenced, unless another file shares it
        note({"rm": victim.id})
"""


def check(lake_path: str, catalog: str | None, journals: list[Path]) -> dict[str, Any]:
    """Reopen the lake; fsck --read-data; every acknowledged file present with the right bytes."""
    import limnos
    from limnos.store import hashing

    lake = limnos.open(lake_path, catalog=catalog)
    acked: dict[str, str] = {}
    for journal in journals:
        if journal.exists():
            for line in journal.read_text().splitlines():
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError:  # the writer died mid-line, before the fsync that acknowledged it
                        continue
                    if "rm" in row:
                        acked.pop(row["rm"], None)  # deleted on purpose: not expected any more
                    else:
                        acked[row["id"]] = row["hash"]
    lost, damaged = [], []
    for file_id, digest in acked.items():
        try:
            f = lake.get(file_id)
        except limnos.FileNotFound:
            lost.append(file_id)
            continue
        if f.hash != digest or hashing.hash_bytes(f.read_bytes()) != digest:
            damaged.append(file_id)
    report = lake.fsck(read_data=True)
    lake.close()
    return {"acknowledged": len(acked), "lost": len(lost), "damaged": len(damaged), "fsck_ok": report.ok,
            "missing": len(report.missing), "corrupt": len(report.corrupt)}


def kill_campaign(args: argparse.Namespace) -> dict[str, Any]:
    import limnos

    totals = {"trials": 0, "acknowledged": 0, "lost": 0, "damaged": 0, "fsck_failures": 0}
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="limnos-kill-") as tmp:
        for trial in range(args.trials):
            lake_path = os.path.join(tmp, f"lake{trial}")
            catalog = _catalog(args.catalog, trial)
            limnos.init(lake_path, catalog=catalog).close()
            journal = Path(tmp) / f"journal{trial}.jsonl"
            proc = subprocess.Popen([sys.executable, "-c", WRITER, lake_path, str(journal), catalog or "",
                                     str(rnd.randrange(1 << 30))], env={**os.environ, "LIMNOS_PROGRESS": "0"})
            time.sleep(rnd.uniform(0.3, args.max_delay))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            result = check(lake_path, catalog, [journal])
            totals["trials"] += 1
            totals["acknowledged"] += result["acknowledged"]
            totals["lost"] += result["lost"]
            totals["damaged"] += result["damaged"]
            totals["fsck_failures"] += not result["fsck_ok"]
            print(f"trial {trial + 1}: {result}", file=sys.stderr, flush=True)
    return {"campaign": "kill", "catalog": "postgresql" if args.catalog else "sqlite", **totals}


def gc_campaign(args: argparse.Namespace) -> dict[str, Any]:
    import limnos

    with tempfile.TemporaryDirectory(prefix="limnos-gc-") as tmp:
        lake_path = os.path.join(tmp, "lake")
        catalog = _catalog(args.catalog, 0)
        limnos.init(lake_path, catalog=catalog).close()
        env = {**os.environ, "LIMNOS_PROGRESS": "0"}
        journals = [Path(tmp) / f"journal{i}.jsonl" for i in range(args.writers)]
        writers = [subprocess.Popen([sys.executable, "-c", REUSER, lake_path, str(j), catalog or ""], env=env)
                   for j in journals]
        gc = subprocess.Popen([sys.executable, "-c", GC_LOOP, lake_path, catalog or "", str(args.grace_days)],
                              env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(args.seconds)
        for proc in [*writers, gc]:
            proc.send_signal(signal.SIGTERM)
        gc_out, _ = gc.communicate()
        for proc in writers:
            proc.wait()
        runs = int((gc_out.strip().splitlines() or ["0"])[-1])
        result = check(lake_path, catalog, journals)
    return {"campaign": "gc", "catalog": "postgresql" if args.catalog else "sqlite", "grace_days": args.grace_days,
            "writers": args.writers, "seconds": args.seconds, "gc_runs": runs, **result}


def _catalog(base: str | None, n: int) -> str | None:
    """A fresh PostgreSQL database per trial (named after the process and trial), or None for SQLite."""
    if not base:
        return None
    import sqlalchemy as sa

    name = f"limnos_faults_{os.getpid()}_{n}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("campaign", choices=["kill", "gc"])
    p.add_argument("--trials", type=int, default=50, help="kill: writer processes to kill (default 50)")
    p.add_argument("--max-delay", type=float, default=3.0, help="kill: the latest a kill comes, in seconds")
    p.add_argument("--seconds", type=float, default=20.0, help="gc: how long writers and gc run side by side")
    p.add_argument("--writers", type=int, default=4, help="gc: writer processes (default 4)")
    p.add_argument("--grace-days", type=float, default=0.0, help="gc: the grace period (default 0)")
    p.add_argument("--catalog", default="", help="a PostgreSQL admin URL; each lake gets its own database")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    result = kill_campaign(args) if args.campaign == "kill" else gc_campaign(args)
    print(json.dumps(result))
    bad = result.get("lost", 0) or result.get("damaged", 0) or result.get("fsck_failures", 0) or \
        result.get("fsck_ok") is False
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
