"""gc beside writers: an object that any acknowledged commit refers to is never deleted, at any grace.

Writer processes create and add files whose contents repeat (so most writes
reuse an object that is already stored), and remove some of them again (so
the objects of those contents keep becoming unreferenced). Meanwhile this
process runs ``gc`` in a loop. With the default grace, an "ager" backdates
every object first, as if all the content were old: that is exactly the case
where a writer reuses an object whose mtime says "old and unreferenced".
Afterwards every acknowledged file that was not removed must read back
byte-identical, and ``fsck --read-data`` must be clean.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import limnos
from limnos.store import hashing

WRITER = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import limnos

    path, catalog, writer, count, contents = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    lake = limnos.open(path, catalog=catalog)
    work = tempfile.mkdtemp()
    acked, removed, failed, unreadable = [], [], [], []
    for i in range(count):
        data = (f"content {i % contents} " * 64).encode()
        name = f"w{writer}/f{i}"
        try:
            if i % 2:
                src = os.path.join(work, f"f{i}")
                with open(src, "wb") as out:
                    out.write(data)
                f = lake.add(src, name=name).file
            else:
                with lake.create(name) as w:
                    w.write_bytes(data)
                f = w.file
        except Exception as exc:  # a call that raised acknowledged nothing; counted, and the test fails on it
            failed.append(f"{type(exc).__name__}: {exc}")
            continue
        acked.append([f.id, data.hex()])
        try:  # read it straight back: a later writer of the same content could otherwise hide a loss
            if f.read_bytes() != data:
                unreadable.append(f.id)
        except limnos.LimnosError:
            unreadable.append(f.id)
        if i % 3 == 2 and len(acked) > 1:  # remove an older file of ours: its object may become unreferenced
            victim = acked[-2][0]
            if victim in removed:
                continue
            lake.rm(victim, keep_dependents=True)  # later files read it back: they were made from it
            removed.append(victim)
    lake.close()
    print(json.dumps({"acked": acked, "removed": removed, "failed": failed, "unreadable": unreadable}))
    """
)


def _age_objects(lake: limnos.Lake) -> None:
    """Backdate every object by two days, as if all the content in the lake were old."""
    old = time.time() - 2 * 86400
    for info in lake.store.iter_objects():
        with contextlib.suppress(FileNotFoundError):  # gc deleted it meanwhile
            os.utime(lake.store.path(info.hash), (old, old))


def run_race(lake: limnos.Lake, catalog_url: str | None, grace: dt.timedelta, writers: int = 3,
             count: int = 40, contents: int = 6) -> tuple[int, list[str], dict]:
    """Writers in processes, gc in a loop here; (gc runs, acknowledged files that lost their bytes, fsck report)."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, lake.path, catalog_url or "", str(w), str(count), str(contents)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(writers)]
    outputs: list[tuple[str, str]] = []

    def collect() -> None:
        outputs.extend(p.communicate(timeout=600) for p in procs)

    reader = threading.Thread(target=collect)
    reader.start()
    runs, refused = 0, []
    while reader.is_alive():
        if grace:
            _age_objects(lake)
        try:
            lake.gc(dry_run=False, grace=grace)
        except Exception as exc:  # counted, not raised: the loss is what this test measures
            refused.append(f"{type(exc).__name__}: {exc}")
        runs += 1
    reader.join()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    lost, failed = [], []
    fresh = limnos.open(lake.path, catalog=catalog_url)
    try:
        for out, _ in outputs:
            result = json.loads(out)
            removed = set(result["removed"])
            failed += result["failed"]
            lost += [f"{i} (right after it was written)" for i in result["unreadable"]]
            for file_id, data in result["acked"]:
                if file_id in removed:
                    continue
                f = fresh.get(file_id)
                try:
                    ok = f.read_bytes() == bytes.fromhex(data) and hashing.hash_bytes(bytes.fromhex(data)) == f.hash
                except limnos.LimnosError:
                    ok = False
                if not ok:
                    lost.append(f.ref)
        report = fresh.fsck(read_data=True).to_dict()
    finally:
        fresh.close()
    report["gc_failed"] = refused
    report["writes_failed"] = failed
    return runs, lost, report


@pytest.mark.slow
@pytest.mark.parametrize("grace", [dt.timedelta(0), dt.timedelta(days=1)], ids=["grace0", "default-grace"])
def test_gc_beside_writers_loses_nothing(lake, catalog_url, grace):
    runs, lost, report = run_race(lake, catalog_url, grace)
    assert runs > 1  # gc really ran beside the writers
    assert lost == [], f"{len(lost)} acknowledged files lost their bytes in {runs} gc runs"
    assert report["ok"], report
    assert report["gc_failed"] == []
    assert report["writes_failed"] == []
