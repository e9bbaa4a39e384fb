"""What an edit of a big file costs, and what packs do for many small ones: limnos against DVC.

Run alone::

    PYTHONPATH=src python benchmarks/cdc.py            # 1 GB file, 10 parquet versions, 10k x 1 KB
    PYTHONPATH=src python benchmarks/cdc.py --quick    # 64 MB file, smaller table, 2k files
    PYTHONPATH=src python benchmarks/cdc.py --dvc /tmp/dvcvenv/bin/dvc --json out.json

For each case it prints the new bytes stored and the bytes pushed to a folder
remote by limnos, and the new bytes DVC's cache got (DVC stores a changed file
whole, so its push sends the same). Byte counts, not times, except the small
files case, which times one add in one process (a fresh lake each).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator


def stored_bytes(root: str) -> int:
    """Bytes of objects, packs and chunk lists under a limnos store (records, catalog and caches left out)."""
    total = 0
    for sub in ("objects", "packs", "chunklists"):
        for folder, _dirs, files in os.walk(os.path.join(root, sub)):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files if not f.startswith("lookup.sqlite"))
    return total


def dir_bytes(root: str) -> int:
    """Bytes of every file under ``root``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _s, fs in os.walk(root) for f in fs)


def edits(size: int, seed: int = 1) -> Iterator[tuple[str, bytes]]:
    """The versions of the big file: the original, a 1-byte edit in the middle, a 100-byte insertion there.

    A generator: one version in memory at a time (plus the buffer it is made from).
    """
    rng = random.Random(seed)
    data = bytearray()
    while len(data) < size:
        data += rng.randbytes(min(64 << 20, size - len(data)))
    yield "original", bytes(data)
    data[size // 2] ^= 0xFF
    yield "1-byte edit", bytes(data)
    data[size // 2:size // 2] = b"I" * 100
    yield "100-byte insert", bytes(data)


def parquet_versions(rows: int, versions: int) -> list[tuple[str, bytes]]:
    """A table that grows by ``rows`` rows per version, written as parquet each time."""
    import io

    import pandas as pd

    rng = random.Random(2)
    frames = []
    out = []
    for v in range(versions):
        frames.append(pd.DataFrame({"id": range(v * rows, (v + 1) * rows),
                                    "value": [rng.random() for _ in range(rows)],
                                    "label": [f"label-{rng.randrange(1000)}" for _ in range(rows)]}))
        buf = io.BytesIO()
        pd.concat(frames).to_parquet(buf, index=False, row_group_size=rows)
        out.append((f"parquet v{v + 1}", buf.getvalue()))
    return out


def run_limnos(versions: Iterable[tuple[str, bytes]], work: str) -> list[dict[str, object]]:
    """Add each version as a new version of one name, push each; bytes stored and pushed per version."""
    import limnos

    lake = limnos.init(os.path.join(work, "lake"))
    lake.remotes.add("origin", os.path.join(work, "remote"))
    src = os.path.join(work, "data.bin")
    rows = []
    for label, data in versions:
        with open(src, "wb") as f:
            f.write(data)
        before = stored_bytes(lake.cache.root)
        lake.add(src, "data.bin")
        stored = stored_bytes(lake.cache.root) - before
        pushed = lake.push().bytes
        rows.append({"case": label, "size": len(data), "limnos_stored": stored, "limnos_pushed": pushed})
    lake.close()
    return rows


def run_dvc(dvc: str, versions: Iterable[tuple[str, bytes]], work: str) -> list[int]:
    """New bytes in DVC's cache per version (``dvc add`` of the same file, edited)."""
    repo = os.path.join(work, "dvc")
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=repo, check=True)
    cache = os.path.join(repo, ".dvc", "cache")
    out = []
    for _label, data in versions:
        with open(os.path.join(repo, "data.bin"), "wb") as f:
            f.write(data)
        before = dir_bytes(cache) if os.path.isdir(cache) else 0
        subprocess.run([dvc, "add", "-q", "data.bin"], cwd=repo, check=True)
        out.append(dir_bytes(cache) - before)
    return out


def small_files(count: int, work: str) -> dict[str, object]:
    """One add of ``count`` files of 1 KB: packed (now) against loose (the old layout); time and files written."""
    import limnos

    src = os.path.join(work, "small")
    os.makedirs(src)
    for i in range(count):
        with open(os.path.join(src, f"f{i:06d}.bin"), "wb") as f:
            f.write(os.urandom(1024))
    old = time.time() - 3600
    for name in os.listdir(src):
        os.utime(os.path.join(src, name), (old, old))
    out: dict[str, object] = {"case": f"add {count} x 1 KB"}
    for layout, threshold in (("packed", 1 << 20), ("loose", 0)):
        lake = limnos.init(os.path.join(work, f"lake-{layout}"))
        lake.config["pack_threshold"] = threshold
        t = time.perf_counter()
        lake.add(src, "small")
        out[f"{layout}_seconds"] = round(time.perf_counter() - t, 3)
        out[f"{layout}_files"] = sum(len(fs) for d, _s, fs in os.walk(lake.cache.root)
                                     if "/objects" in d or d.endswith("packs"))
        lake.close()
    return out


def main() -> None:
    """Run the cases and print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 64 MB file, a smaller table, 2k small files")
    parser.add_argument("--dvc", default=shutil.which("dvc") or ("/tmp/dvcvenv/bin/dvc" if os.path.exists(
        "/tmp/dvcvenv/bin/dvc") else None), help="the dvc executable (default: on PATH, else /tmp/dvcvenv)")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--size-mb", type=int, default=1024, help="the big file's size (default 1024)")
    args = parser.parse_args()
    size = (64 if args.quick else args.size_mb) << 20
    rows_per_version = 20_000 if args.quick else 200_000
    cases: list[Callable[[], Iterable[tuple[str, bytes]]]] = [
        lambda: edits(size), lambda: parquet_versions(rows_per_version, 10)]
    results: list[dict[str, object]] = []
    for versions in cases:
        with tempfile.TemporaryDirectory(prefix="limnos-cdc-") as work:
            rows = run_limnos(versions(), work)
            if args.dvc:
                for row, dvc_bytes in zip(rows, run_dvc(args.dvc, versions(), work), strict=True):
                    row["dvc_stored"] = dvc_bytes
            results += rows
    with tempfile.TemporaryDirectory(prefix="limnos-small-") as work:
        small = small_files(2000 if args.quick else 10_000, work)
    print(f"{'case':<18}{'size':>14}{'limnos stored':>15}{'limnos pushed':>15}{'dvc stored':>14}")
    for row in results:
        print(f"{row['case']!s:<18}{row['size']:>14,}{row['limnos_stored']:>15,}{row['limnos_pushed']:>15,}"
              f"{row.get('dvc_stored', '-'):>14,}" if "dvc_stored" in row else
              f"{row['case']!s:<18}{row['size']:>14,}{row['limnos_stored']:>15,}{row['limnos_pushed']:>15,}{'-':>14}")
    print(f"{small['case']}: packed {small['packed_seconds']} s ({small['packed_files']} files written), "
          f"loose {small['loose_seconds']} s ({small['loose_files']} files)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "results": results, "small": small}, f, indent=2)


if __name__ == "__main__":
    main()
