"""The benchmark harness measures honestly: interleaved rounds, per-round ratios, a child's own peak RSS,
and a README table regenerated only between its markers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import readme_table  # noqa: E402
import run as bench  # noqa: E402


def test_ratios_are_medians_of_per_round_ratios_not_ratios_of_medians() -> None:
    rounds = [{"limnos": 1.0, "dvc": 2.0}, {"limnos": 4.0, "dvc": 2.0}, {"limnos": 1.0, "dvc": 1.0}]
    times = {"limnos": [1.0, 4.0, 1.0], "dvc": [2.0, 2.0, 1.0]}
    runs = [{"round": 1, "tool": "limnos", "load1": 3.0, "peak_rss_mb": 80.0},
            {"round": 1, "tool": "dvc", "load1": 5.0, "peak_rss_mb": 60.0}]
    row = bench.summarize("add_10k", times, [bench.Target("dvc", 1.0, "<=1x dvc")], rounds, runs)[0]
    assert row["limnos/dvc"] == 1.0  # per round: 0.5, 2.0, 1.0; the ratio of medians would say 0.5
    assert row["ratio_of"] == "median of per-round ratios" and row["rounds"] == 3
    assert row["met"] is True
    assert row["peak_rss_mb"] == {"limnos": 80.0, "dvc": 60.0} and row["load1_median"] == 4.0


def test_rounds_interleave_and_rotate_each_in_a_fresh_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "RUNS", tmp_path / "runs")
    ctx = bench.Ctx(argparse.Namespace(repeat=3))
    ctx.workload = "w"
    order: list[str] = []
    folders: list[Path] = []

    def tool(name: str) -> Any:
        def once(run: Path) -> float:
            assert run.is_dir() and not any(run.iterdir())  # fresh and empty
            order.append(name)
            folders.append(run)
            return 1.0

        return once

    times = ctx.measure_rounds({"limnos": tool("limnos"), "dvc": tool("dvc"), "cp": tool("cp")})
    assert order == ["limnos", "dvc", "cp", "dvc", "cp", "limnos", "cp", "limnos", "dvc"]
    assert len(set(folders)) == 9 and not any(f.exists() for f in folders)  # each removed after its run
    assert times == {"limnos": [1.0] * 3, "dvc": [1.0] * 3, "cp": [1.0] * 3}
    assert [r["tool"] for r in ctx.runs["w"]] == order
    assert all(isinstance(r["load1"], float) for r in ctx.runs["w"])
    assert ctx.rounds["w"] == [{"limnos": 1.0, "dvc": 1.0, "cp": 1.0}] * 3


def test_a_child_reports_its_own_peak_rss_not_this_process_peak() -> None:
    """The kernel carries a forking process's high-water mark into its child: run_child forks from a small launcher."""
    ballast = bytearray(300 << 20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # touch every page: this process's peak is now over 300 MB
    child = "b = bytearray(64 << 20); b[::4096] = b'y' * len(b[::4096]); print('ok')"
    code, out, err, seconds, peak = bench.run_child([sys.executable, "-c", child])
    assert (code, out.strip()) == (0, "ok"), err
    assert seconds > 0
    assert 64 <= peak < 200, f"the child's 64 MB showed as {peak:.0f} MB"
    code, _, _, _, _ = bench.run_child(["sh", "-c", "exit 3"])
    assert code == 3
    del ballast


def _results(started: str = "2026-11-28T05:00:00+0000") -> dict[str, Any]:
    row = {"workload": "add_1g", "limnos": 1.2, "dvc": 4.0, "cp": 0.3, "cp_sync": 1.0, "rclone": None,
           "limnos/dvc": 0.3, "limnos/cp": 4.0, "limnos/cp_sync": 1.2, "limnos/rclone": None,
           "target": "<=1.3x cp&&sync", "checks": [{"target": "<=1.3x cp&&sync", "ratio": 1.2, "met": True}],
           "met": True, "peak_rss_mb": {"limnos": 55.0, "cp_sync": 3.0}}
    lib = dict(row, workload="add_1g_lib", target="(info)", checks=[], met=None)
    return {"started_at": started, "config": {"big_size_mb": 1024, "repeat": 3},
            "machine": {"cpu_model": "Test CPU", "cpu_count": 2, "work_fs_type": "ext4", "python": "3.11.7",
                        "dvc_version": "3.67.1", "mem_total_kb": 24 << 20},
            "workloads": {"add_1g": {"median": {"limnos_lib": 0.4}, "rows": [row, lib],
                                     "runs": [{"load1": 1.5}, {"load1": 2.5}]}}}


def test_readme_table_is_regenerated_between_its_markers_only(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results()))
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nintro\n\n", "\n\nmore text\n"
    readme.write_text(f"{before}{readme_table.START}\nold table\n{readme_table.END}{after}")
    readme_table.update_readme(readme, [results])
    text = readme.read_text()
    assert text.startswith(before + readme_table.START) and text.endswith(readme_table.END + after)
    assert "old table" not in text
    assert "Measured 2026-11-28 on Test CPU, 2 cores, 24 GB RAM, ext4, Python 3.11.7, DVC 3.67.1" in text
    assert "load average 1.5-2.5" in text and "3 interleaved rounds (`" in text
    line = next(x for x in text.splitlines() if x.startswith("| add one 1024 MB file"))
    assert line.rstrip(" |").split(" | ")[1:9] == ["1.20 s", "0.40 s", "4.00 s", "cp && sync 1.00 s", "0.30x", "1.20x",
                                      "55 MB (cp && sync 3)", "<=1.3x cp&&sync (met)"]
    assert "add_1g_lib" not in text  # the library time is its row's "lib" column
    readme_table.update_readme(readme, [results])  # idempotent
    assert readme.read_text() == text


def test_a_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results()))
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    with pytest.raises(SystemExit, match="markers"):
        readme_table.update_readme(readme, [results])
    assert readme.read_text() == "# no markers here\n"


def test_the_published_table_has_its_markers() -> None:
    text = readme_table.README.read_text()
    assert text.count(readme_table.START) == 1 and text.count(readme_table.END) == 1
    assert text.index(readme_table.START) < text.index(readme_table.END)


def test_a_later_run_of_a_workload_replaces_its_rows(tmp_path: Path) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps(_results("2026-11-27T05:00:00+0000")))
    later = _results("2026-11-28T06:00:00+0000")
    later["workloads"]["add_1g"]["rows"][0]["limnos"] = 9.0
    second.write_text(json.dumps(later))
    readme = tmp_path / "README.md"
    readme.write_text(f"{readme_table.START}\n{readme_table.END}\n")
    text = readme_table.update_readme(readme, [first, second])
    assert [x for x in text.splitlines() if x.startswith("| add one")] == \
        [x for x in text.splitlines() if x.startswith("| add one 1024 MB file | 9.00 s")]
    assert "2026-11-28" in text and "2026-11-27" not in text  # the first file no longer shows any row
