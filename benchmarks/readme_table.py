"""Regenerate the published benchmark table (docs/performance.md) from run.py's results files.

    .venv/bin/python benchmarks/readme_table.py benchmarks/results.json [more results files...] [--readme FILE]
    .venv/bin/python benchmarks/run.py --readme ...        # the same, right after a run, from its own results

The table sits between two markers (``<!-- benchmarks:start -->`` and
``<!-- benchmarks:end -->``); everything between them is replaced, nothing else is
touched. Each results file says when and where it was measured; the table's caption
names the date, the machine and the load, so a figure is never shown without them.
Ratios are the medians of per-round ratios that run.py computed (see run.py's
``summarize``), never a ratio of medians taken at different times.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Where the table is published: docs/performance.md (README.md in trees from before the docs site).
README = HERE.parent / "docs" / "performance.md"
if not README.exists():
    README = HERE.parent / "README.md"
START = "<!-- benchmarks:start -->"
END = "<!-- benchmarks:end -->"

#: How a workload reads in the table; {name} fields come from the results file's "config".
LABELS = {
    "add_10k": "add {small_count} x 1 KB",
    "status_10k": "status of those {small_count}, unchanged",
    "add_1g": "add one {big_size_mb} MB file",
    "add_1g_nofsync": "add one {big_size_mb} MB file, `fsync: false`",
    "push_10k": "push {small_count} x 1 KB to S3",
    "pull_10k": "pull {small_count} x 1 KB from S3",
    "push_1g": "push {big_count} x {big_each_mb} MB to S3",
    "pull_1g": "pull {big_count} x {big_each_mb} MB from S3",
    "step_hit": "step cache hit, 10 inputs",
    "step_hit_data": "step cache hit returning data",
    "query_1m": "equality filter, {query_count} datapoints",
    "ls_100k": "`limnos ls` of a 100k-file lake, piped, to the end",
    "ls_100k_first_line": "`limnos ls` of a 100k-file lake, the first line",
    "ui_pages": "`limnos ui`, the slowest page (100k files, 100k datapoints)",
}
FLOOR_NAMES = {"cp": "cp", "cp_sync": "cp && sync", "rclone": "rclone"}
#: The floor a row is compared with, when it has several (a durable add: cp && sync of that file).
FLOOR_FIRST = {"add_1g": "cp_sync", "add_1g_nofsync": "cp", "add_10k": "cp"}


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 0.1:
        return f"{v * 1000:.1f} ms"
    return f"{v:.2f} s"


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _label(name: str, config: dict[str, Any]) -> str:
    fields = {"small_count": "10k", "big_size_mb": 1024, "big_count": 10, "big_each_mb": 100, "query_count": "1M"}
    fields.update({k: v for k, v in config.items() if k in fields})
    if isinstance(fields["small_count"], int) and fields["small_count"] % 1000 == 0:
        fields["small_count"] = f"{fields['small_count'] // 1000}k"
    template = LABELS.get(name, name)
    try:
        return template.format(**fields)
    except (KeyError, IndexError):
        return name


def _floor(row: dict[str, Any]) -> str | None:
    preferred = FLOOR_FIRST.get(row["workload"])
    if preferred and row.get(preferred) is not None:
        return preferred
    return next((f for f in FLOOR_NAMES if row.get(f) is not None), None)


def _target(row: dict[str, Any]) -> str:
    if row["target"] in ("(info)", "(none)"):
        return "-"
    parts = []
    for check in row.get("checks", []):
        verdict = "n/a" if check["met"] is None else "met" if check["met"] else "missed"
        parts.append(f"{check['target']} ({verdict})")
    return ", ".join(parts)


def rows_of(results: dict[str, Any], only: set[str] | None = None) -> list[list[str]]:
    """The table lines of one results file, in its workloads' order (``only``: of those workloads)."""
    config = results.get("config", {})
    lines = []
    for name, wl in results.get("workloads", {}).items():
        if only is not None and name not in only:
            continue
        lib_median = wl.get("median", {})
        for row in wl.get("rows", []):
            if row["limnos"] is None or row["workload"].endswith("_lib"):
                continue  # the library-call times are the "lib" column of their row
            key = "limnos" + row["workload"][len(name):]  # add_1g_nofsync -> limnos_nofsync
            lib = lib_median.get(f"{key}_lib")
            floor = _floor(row)
            peaks = row.get("peak_rss_mb") or {}
            peak = "-" if peaks.get("limnos") is None else f"{peaks['limnos']:.0f} MB"
            if peaks.get("limnos") is not None and floor and peaks.get(floor) is not None:
                peak += f" ({FLOOR_NAMES[floor]} {peaks[floor]:.0f})"
            lines.append([
                _label(row["workload"], config), _secs(row["limnos"]), _secs(lib), _secs(row.get("dvc")),
                f"{FLOOR_NAMES[floor]} {_secs(row[floor])}" if floor else "-", _ratio(row.get("limnos/dvc")),
                _ratio(row.get(f"limnos/{floor}")) if floor else "-", peak, _target(row),
            ])
    return lines


def _machine(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    mem = f", {m['mem_total_kb'] / 1024 / 1024:.0f} GB RAM" if m.get("mem_total_kb") else ""
    dvc = f", DVC {m['dvc_version']}" if m.get("dvc_version") else ""
    return (f"{m.get('cpu_model', m.get('machine', '?'))}, {m.get('cpu_count', '?')} cores{mem}, "
            f"{m.get('work_fs_type', '?')}, Python {m.get('python', '?')}{dvc}")


def _loads(results: dict[str, Any]) -> list[float]:
    return [r["load1"] for wl in results.get("workloads", {}).values() for r in wl.get("runs", [])
            if r.get("load1") is not None]


def render(all_results: list[dict[str, Any]], sources: list[str]) -> str:
    """The Markdown between the markers: a caption per results file, then one table.

    A workload in several files is shown from the last one (a later run of it replaces the earlier).
    """
    header = ["workload", "limnos", "lib", "DVC", "floor", "limnos/DVC", "limnos/floor", "peak RSS", "target"]
    owner: dict[str, int] = {}
    for i, results in enumerate(all_results):
        for name in results.get("workloads", {}):
            owner[name] = i
    shown = [{n for n, i in owner.items() if i == k} for k in range(len(all_results))]
    out = []
    for results, source, names in zip(all_results, sources, shown, strict=True):
        if not names:
            continue
        loads = sorted(_loads(results))
        load = f"load average {loads[0]:.1f}-{loads[-1]:.1f} (1 min)" if loads else "load not recorded"
        rounds = results.get("config", {}).get("repeat", "?")
        which = ", ".join(sorted(names)) if len(all_results) > 1 else "all rows"
        out.append(f"Measured {results.get('started_at', '?')[:10]} on {_machine(results)}; {load}; "
                   f"{rounds} interleaved rounds (`{source}`: {which}).")
    out += ["", "| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for results, names in zip(all_results, shown, strict=True):
        out += ["| " + " | ".join(line) + " |" for line in rows_of(results, names)]
    return "\n".join(out)


def update_readme(readme: Path, results_paths: list[Path]) -> str:
    """Replace the table between the markers in ``readme`` with one made from ``results_paths``; the new table.

    Raises:
        SystemExit: the README lacks the markers (it is then left as it was).
    """
    all_results = [json.loads(p.read_text()) for p in results_paths]
    sources = [str(p.resolve().relative_to(HERE.parent)) if p.resolve().is_relative_to(HERE.parent) else str(p)
               for p in results_paths]
    table = render(all_results, sources)
    text = readme.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme} has no {START} ... {END} markers; add them around the benchmark table")
    readme.write_text(text[: start + len(START)] + "\n" + table + "\n" + text[end:])
    return table


def main(argv: list[str] | None = None) -> int:
    """Regenerate the README table from the results files given."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, help="results files written by run.py")
    p.add_argument("--readme", type=Path, default=README, help=f"the file to update (default {README})")
    args = p.parse_args(argv)
    print(update_readme(args.readme, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
