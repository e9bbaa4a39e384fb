"""``ui_pages``: how long each ``limnos ui`` page takes over HTTP on a big lake (issue 14: every page < 200 ms).

Imported by run.py, which registers it beside its own workloads. The lake holds
``$LIMNOS_BENCH_UI_COUNT`` files (default 100,000 x 1 KB, added with
``lake.add``, untimed) and a datasource of as many datapoints (inserted in bulk
by run.py's ``_bulk_datasource``). The server runs in this process on a free
loopback port; each page is fetched with ``urllib`` (the whole response read),
five times per round, and the median is kept. The workload's own row is the
slowest page's median, so the target holds only if every page meets it; each
page is also an info row (``ui_pages_<page>``).
"""

from __future__ import annotations

import os
import statistics
import time
import urllib.parse
import urllib.request
from typing import Any

import run as bench  # run.py itself (it registers this name before importing us)

COUNT = int(os.environ.get("LIMNOS_BENCH_UI_COUNT", "100000"))
FETCHES = 5


def _pages(lake: Any) -> dict[str, str]:
    """page name -> path, with cursors in the middle of the listings (a deep page costs what the first does)."""
    names = [f.name for f in lake.iter_ls("small", page=COUNT)][: COUNT // 2 + 1]
    middle = names[-1]
    q = urllib.parse.quote
    return {
        "files": "/files",
        "files_deep": f"/files?after={q(middle)}",
        "files_query": "/files?q=" + q("size > 1000 and version == 1"),
        "files_prefix": "/files?prefix=" + q(middle.rsplit("/", 1)[0] + "/"),
        "file": f"/file?ref={q(middle)}",
        "lineage": f"/lineage?ref={q(middle)}",
        "lineage_api": f"/api/lineage?ref={q(middle)}",
        "datasources": "/datasources",
        "gallery": "/ds?name=bench",
        "gallery_deep": "/ds?name=bench&after=" + q(f"img/{COUNT // 2000:04d}/{COUNT // 2:07d}.jpg"),
        "gallery_query": "/ds?name=bench&q=" + q("episode == 5"),
        "steps": "/steps",
    }


def _fields(lake: Any) -> None:
    """Give the bulk datasource a field to query (``episode``, 100 datapoints a value) through the public API."""
    import pandas as pd

    paths = [f"img/{i // 1000:04d}/{i:07d}.jpg" for i in range(COUNT)]
    frame = pd.DataFrame({"path": paths, "episode": [i % max(1, COUNT // 100) for i in range(COUNT)]})
    lake.datasource("bench").upload_metadata_from_dataframe(frame, path_column="path")


def _fetch(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise bench.ToolError(f"{url}: HTTP {response.status}")
    return time.perf_counter() - t0


@bench.workload("ui_pages", [bench.Target("seconds", 0.200, "< 200 ms")], ())
def ui_pages(ctx: bench.Ctx) -> dict[str, list[float]]:
    """Median seconds of each ``limnos ui`` page over HTTP; the row is the slowest page."""
    import limnos
    from limnos.web.server import launch

    run = ctx.run_dir()
    out: dict[str, list[float]] = {}
    try:
        t0 = time.perf_counter()
        source = bench.make_small(COUNT)
        lake = limnos.init(run / ".limnos")
        lake.add(str(source), name="small")
        bench._bulk_datasource(lake, COUNT)
        _fields(lake)
        ctx.note("build_seconds", round(time.perf_counter() - t0, 1))
        server = launch(lake, "/files")
        try:
            pages = _pages(lake)
            for path in pages.values():  # warm: templates compiled, catalog pages cached, as for a person clicking
                _fetch(server.base_url + path)
            for i in range(ctx.args.repeat):
                medians = {page: statistics.median([_fetch(server.base_url + path) for _ in range(FETCHES)])
                           for page, path in pages.items()}
                for page, secs in medians.items():
                    out.setdefault(f"limnos_{page}", []).append(secs)
                out.setdefault("limnos", []).append(max(medians.values()))
                slowest = max(medians, key=lambda p: medians[p])
                print(f"  [ui_pages] round {i + 1}: slowest {slowest} {medians[slowest] * 1000:.0f} ms; "
                      + ", ".join(f"{p} {s * 1000:.0f}" for p, s in medians.items()), flush=True)
        finally:
            server.stop()
            lake.close()
    finally:
        bench.rmtree(run)
    return out
