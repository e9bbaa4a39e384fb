"""limnos benchmarks against DVC, plain ``cp`` and ``rclone`` (DESIGN.md, "Performance targets").

    .venv/bin/python benchmarks/run.py [--small-count 10000] [--big-size-mb 1024] [--big-count 10 --big-each-mb 100]
        [--repeat 3] [--only add_10k,status_10k,add_1g,step_hit,push_10k,...] [--step-calls 1000] [--skip-dvc]
        [--work-dir DIR] [--clean] [--profile]

Source data is generated once under benchmarks/.work/data and reused; every timed
run gets a fresh lake / DVC repo under benchmarks/.work/runs (removed at the end).
DVC is installed once into benchmarks/.venv-dvc and run as a real ``dvc`` process.

To add a workload: write ``def my_workload(ctx) -> dict[str, list[float]]`` decorated
with ``@workload("name", targets=[...])``; time each tool with ``ctx.measure``.
A tool named ``limnos_<x>`` is reported as its own row ``<name>_<x>``. The push/pull
workloads against an S3 server live in remote_workloads.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
DATA = WORK / "data"
RUNS = WORK / "runs"
DVC_VENV = HERE / ".venv-dvc"
DVC = DVC_VENV / "bin" / "dvc"
RESULTS = HERE / "results.json"
AGE_SECONDS = 3600  # source mtimes are set this far in the past (limnos' stat cache ignores racy files)
CHUNK = 16 << 20
BASELINE_SRC: str | None = None  # --baseline: limnos at that ref, timed beside the working tree
#: --quick: sizes for the inner loop (each applies unless that option was given).
QUICK = {"small_count": 1000, "big_size_mb": 128, "big_count": 3, "big_each_mb": 32, "repeat": 3,
         "step_calls": 200, "query_count": 20000}

# Run by ``python -c`` so interpreter start-up and imports count, as they do for ``dvc``.
# Each prints one JSON line; "lib" is the time inside the library call alone.
LIMNOS_ADD = r"""
import json, sys, time
import limnos
lake = limnos.open(sys.argv[1])
t0 = time.perf_counter()
res = lake.add(sys.argv[2])
lib = time.perf_counter() - t0
n = len(res) if isinstance(res, list) else 1
lake.close()
print(json.dumps({"lib": lib, "files": n}))
"""
LIMNOS_STATUS = r"""
import json, sys, time
import limnos
lake = limnos.open(sys.argv[1])
t0 = time.perf_counter()
st = lake.status(sys.argv[2])
lib = time.perf_counter() - t0
lake.close()
print(json.dumps({"lib": lib, "clean": st.clean, "unchanged": len(st.unchanged),
                  "modified": len(st.modified), "new": len(st.new), "deleted": len(st.deleted)}))
"""

# A step with 10 input files: one miss (runs and records), then ``calls`` timed hits.
# "file" returns a File output (a hit reads nothing); "data" returns a dict (a hit loads the JSON).
LIMNOS_STEP_HIT = r"""
import json, statistics, sys, time
import limnos
lake = limnos.open(sys.argv[1])
calls = int(sys.argv[2])
inputs = []
for i in range(10):
    with lake.create(f"inputs/{i}.csv") as w:
        w.write_text(f"x,y\n{i},{i * i}\n")
    inputs.append(w.file)

@lake.step
def combine(files, scale: float = 1.0):
    with limnos.output("combined/summary.txt") as w:
        w.write_text(f"{len(files)} files, scale {scale}")
    return w

@lake.step
def stats(files, scale: float = 1.0):
    return {"rows": len(files), "scale": scale}

out = {}
for label, fn in (("file", combine), ("data", stats)):
    fn(inputs)                       # the miss
    for _ in range(50):              # warm-up: engine pool, statement cache
        fn(inputs)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - t0)
    assert fn.call(inputs).hit
    out[label] = statistics.median(times)
    out[label + "_p95"] = sorted(times)[int(0.95 * len(times))]
lake.close()
print(json.dumps(out))
"""


class ToolError(RuntimeError):
    pass


# ------------------------------------------------------------------ helpers
#: Peak resident set (MB) of each timed process since the current run began (``Ctx.measure_rounds`` empties it).
PEAKS: list[float] = []


#: Runs a command as its own child and reports that child's wall time and peak RSS. A small
#: process in between matters: a child's ru_maxrss starts at its parent's peak (the kernel carries
#: the forking process's high-water mark across exec), so forking from this benchmark, which has
#: imported limnos and run adds in process, would report this process's peak for every tool.
LAUNCHER = r"""
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(f"{seconds} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_child(cmd: list[Any], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str, float, float]:
    """Run a command to its end: (exit code, stdout, stderr, wall seconds, peak RSS in MB).

    The command runs under :data:`LAUNCHER` (``python -S``, a few MB), which times it from
    fork to exit and reads its ``ru_maxrss`` with ``wait4``: that process's own peak (and
    its waited-for descendants'), not this benchmark's. Output goes through files, so a
    chatty child cannot fill a pipe while we wait.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".usage") as usage:
        code = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, usage.name, *map(str, cmd)], cwd=cwd, env=env,
                              stdout=out, stderr=err, stdin=subprocess.DEVNULL, check=False).returncode
        out.seek(0)
        err.seek(0)
        fields = usage.read().split()
        seconds, peak = (float(fields[0]), int(fields[1]) / 1024) if len(fields) == 2 else (float("nan"), float("nan"))
        return code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds, peak


def sh(cmd: list[Any], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command; raise ToolError with its output's tail when it fails."""
    code, out, err, _, _ = run_child(cmd, cwd, env)
    if code != 0:
        tail = (err.strip() or out.strip())[-1500:]
        raise ToolError(f"{' '.join(map(str, cmd))[:200]} exited {code}: {tail}")
    return out


def timed(cmd: list[Any], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command, as :func:`sh`; (wall seconds from fork to exit, stdout). Its peak RSS goes to :data:`PEAKS`."""
    code, out, err, seconds, peak = run_child(cmd, cwd, env)
    if code != 0:
        tail = (err.strip() or out.strip())[-1500:]
        raise ToolError(f"{' '.join(map(str, cmd))[:200]} exited {code}: {tail}")
    PEAKS.append(peak)
    return seconds, out


def flush() -> None:
    """Write back dirty pages from untimed setup so they do not land inside a timed run."""
    os.sync()


def rmtree(path: Path) -> None:
    if path.exists():
        # Store objects are read-only files; on Linux their folder's mode is what counts.
        shutil.rmtree(path, onerror=lambda f, p, e: (os.chmod(os.path.dirname(p), 0o755), f(p)))


def clean_stale_runs() -> None:
    """Remove run folders left by interrupted runs (their process is gone)."""
    for folder in RUNS.parent.glob("*") if RUNS.parent.is_dir() else []:
        try:
            os.kill(int(folder.name), 0)  # alive (PermissionError: alive, someone else's)
        except (ValueError, ProcessLookupError):  # not a pid, or that process is gone
            rmtree(folder)
        except PermissionError:
            pass


def warm(path: Path) -> None:
    """Read every byte once (untimed) so each tool starts with a warm page cache."""
    files = [path] if path.is_file() else [Path(r) / f for r, _, fs in os.walk(path) for f in fs]
    for p in files:
        with open(p, "rb") as f:
            while f.read(CHUNK):
                pass


def fs_type(path: Path) -> str:
    # df first: ``stat -f`` names ext4 "ext2/ext3".
    for cmd in (["df", "--output=fstype", str(path)], ["stat", "-f", "-c", "%T", str(path)]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
            return out.splitlines()[-1].strip()
        except (OSError, subprocess.CalledProcessError, IndexError):
            continue
    return "unknown"


# --------------------------------------------------------------------- data
def small_dir(count: int) -> Path:
    return DATA / f"small-{count}"


def big_file(mb: int) -> Path:
    return DATA / f"big-{mb}mb.bin"


def age(paths: list[Path]) -> None:
    t = time.time() - AGE_SECONDS
    for p in paths:
        os.utime(p, (t, t))


def make_small(count: int) -> Path:
    folder = small_dir(count)
    marker = DATA / f"small-{count}.complete"
    if marker.exists():
        age([Path(r) / f for r, _, fs in os.walk(folder) for f in fs])  # old mtimes, whatever touched them since
        return folder
    rmtree(folder)
    print(f"generating {count} files of 1 KB in {folder} ...", flush=True)
    per_dir = max(1, -(-count // 100))  # ~100 subfolders
    paths = []
    for i in range(count):
        sub = folder / f"d{i // per_dir:03d}"
        if i % per_dir == 0:
            sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"f{i:06d}.bin"
        p.write_bytes(os.urandom(1024))
        paths.append(p)
    age(paths)
    marker.touch()  # beside the folder, so no tool sees it as data
    flush()
    return folder


def make_big(mb: int) -> Path:
    path = big_file(mb)
    if path.exists() and path.stat().st_size == mb << 20:
        age([path])
        return path
    print(f"generating {mb} MB of random bytes in {path} ...", flush=True)
    DATA.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    with open(part, "wb") as f:
        left = mb << 20
        while left:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n
    os.replace(part, path)
    age([path])
    flush()
    return path


# What a workload's ``needs`` name, built once before the workloads run (remote_workloads adds "bigset").
DATASETS: dict[str, Callable[[argparse.Namespace], Path]] = {
    "small": lambda args: make_small(args.small_count),
    "big": lambda args: make_big(args.big_size_mb),
}


# ---------------------------------------------------------------------- dvc
def dvc_env(run: Path | None = None) -> dict[str, str]:
    """DVC without analytics, its state/index database kept in the run folder (not /var/tmp/dvc)."""
    site = (run or WORK) / "dvc-site-cache"
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(site)}


def ensure_dvc() -> str:
    """Install DVC into its own venv once (unless --dvc named one); return its version."""
    if not DVC.exists() and DVC_VENV == HERE / ".venv-dvc":
        print(f"installing dvc into {DVC_VENV} (once) ...", flush=True)
        sh([sys.executable, "-m", "venv", DVC_VENV])
        sh([DVC_VENV / "bin" / "python", "-m", "pip", "install", "-q", "dvc"])
    return sh([DVC, "--version"], env=dvc_env()).strip()


def dvc_repo(run: Path) -> Path:
    repo = run / "dvc-repo"
    repo.mkdir()
    env = dvc_env(run)
    sh([DVC, "init", "--no-scm", "-q"], repo, env)
    sh([DVC, "config", "core.analytics", "false"], repo, env)
    sh([DVC, "config", "core.check_update", "false"], repo, env)
    sh([DVC, "config", "core.site_cache_dir", run / "dvc-site-cache"], repo, env)
    return repo


def copy_in(src: Path, repo: Path) -> str:
    """Copy source data into a DVC repo (untimed; -a keeps the aged mtimes)."""
    sh(["cp", "-a", src, repo / src.name])
    return src.name


# ------------------------------------------------------------------- limnos
def limnos_lake(run: Path, src: str | None = None, fsync: bool = True) -> Path:
    """A new lake in ``run``, made by the limnos that will use it (``src``: a --baseline's source), untimed.

    A baseline cannot open a lake the working tree made once the catalog schema has moved on.
    ``fsync=False`` sets ``fsync: false`` in its settings (an add then flushes nothing).
    """
    path = run / ".limnos"
    if src is None:
        import limnos

        limnos.init(path).close()
    else:
        sh([sys.executable, "-c", "import sys, limnos; limnos.init(sys.argv[1]).close()", path], run, limnos_env(src))
    if not fsync:
        settings = path / "limnos.yaml"
        settings.write_text(settings.read_text().replace("fsync: true", "fsync: false"))
    return path


def limnos_env(src: str | None = None) -> dict[str, str]:
    """The environment of a limnos subprocess: no progress bars; ``src`` first on the path (a --baseline)."""
    env = {**os.environ, "LIMNOS_PROGRESS": "0"}
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    return env


def limnos_py(script: str, lake: Path, target: Path, run: Path, src: str | None = None) -> tuple[float, dict[str, Any]]:
    env = limnos_env(src)
    seconds, out = timed([sys.executable, "-c", script, lake, target], run, env)
    return seconds, json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------ context
@dataclass
class Ctx:
    args: argparse.Namespace
    errors: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    #: workload -> one {timed quantity: seconds} per round, for per-round ratios
    rounds: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    #: workload -> every timed run: round, tool, seconds, peak RSS, load average before it
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    workload: str = ""
    _shared: dict[str, Any] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def shared(self, key: str, start: Callable[[], AbstractContextManager[Any]]) -> Any:
        """A resource several workloads use (an S3 server): entered on first use, exited by ``close``."""
        if key not in self._shared:
            self._shared[key] = self._stack.enter_context(start())
        return self._shared[key]

    def close(self) -> None:
        self._shared.clear()
        self._stack.close()

    def run_dir(self) -> Path:
        RUNS.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{self.workload}-", dir=RUNS))

    def measure_rounds(self, tools: dict[str, Callable[[Path], float | dict[str, float]]]) -> dict[str, list[float]]:
        """Time every tool once per round, ``--repeat`` rounds, each run in a fresh folder.

        Interleaved round by round (limnos, dvc, the floor; then rotated), so a noisy spell of
        the machine hits every tool alike rather than one; ratios are taken within a round
        (see :func:`summarize`). Each run records the load average before it and the peak
        RSS of its timed processes.
        """
        times: dict[str, list[float]] = {}
        failed: set[str] = set()
        names = list(tools)
        rounds = self.rounds.setdefault(self.workload, [])
        runs = self.runs.setdefault(self.workload, [])
        for i in range(self.args.repeat):
            order = names[i % len(names):] + names[:i % len(names)]
            this_round: dict[str, float] = {}
            rounds.append(this_round)
            for tool in order:
                if tool in failed:
                    continue
                run = self.run_dir()
                PEAKS.clear()
                load = os.getloadavg()[0]
                try:
                    result = tools[tool](run)
                except Exception as exc:
                    msg = str(exc) if isinstance(exc, ToolError) else traceback.format_exc(limit=3)
                    print(f"  [{self.workload}/{tool}] FAILED: {msg.strip()[-1500:]}", flush=True)
                    self.errors.setdefault(self.workload, {})[tool] = msg
                    failed.add(tool)
                    continue
                finally:
                    rmtree(run)
                result = result if isinstance(result, dict) else {tool: result}
                peak = max(PEAKS) if PEAKS else None
                for name, secs in result.items():
                    times.setdefault(name, []).append(secs)
                    this_round[name] = secs
                runs.append({"round": i + 1, "tool": tool, "seconds": result, "load1": round(load, 2),
                             "peak_rss_mb": None if peak is None else round(peak, 1)})
                shown = ", ".join(f"{k}={v:.3f}s" for k, v in result.items())
                rss = "" if peak is None else f", peak RSS {peak:.0f} MB"
                print(f"  [{self.workload}] round {i + 1}: {tool}: {shown} (load {load:.2f}{rss})", flush=True)
        # a tool that failed in any round reports nothing (as measure does)
        return {k: v for k, v in times.items() if not any(k == f or k.startswith(f + "_") for f in failed)}

    def measure(self, tool: str, once: Callable[[Path], float | dict[str, float]]) -> dict[str, list[float]]:
        """Call ``once(fresh_run_dir)`` ``--repeat`` times; it returns seconds, or {tool: seconds}.

        A failure prints the error, records it, and leaves that tool's cell n/a.
        """
        return self.measure_rounds({tool: once})

    def note(self, key: str, value: Any) -> None:
        self.extra.setdefault(self.workload, {}).setdefault(key, []).append(value)


# ----------------------------------------------------------------- registry
@dataclass
class Target:
    tool: str  # "dvc", "cp" or "rclone": compared as limnos / tool; "seconds": limnos' own time, max_ratio in seconds
    max_ratio: float
    label: str


@dataclass
class Workload:
    name: str
    fn: Callable[[Ctx], dict[str, list[float]]]
    targets: list[Target]
    needs: tuple[str, ...]  # data sets to build: keys of DATASETS


WORKLOADS: dict[str, Workload] = {}


def workload(name: str, targets: list[Target], needs: tuple[str, ...]) -> Callable[[Any], Any]:
    def deco(fn: Callable[[Ctx], dict[str, list[float]]]) -> Callable[[Ctx], dict[str, list[float]]]:
        WORKLOADS[name] = Workload(name, fn, targets, needs)
        return fn

    return deco


def _add(ctx: Ctx, src: Path, cp_cmd: list[str], durable_floor: bool = False) -> dict[str, list[float]]:
    """limnos add vs dvc add vs cp for one file or folder.

    ``durable_floor`` also times ``limnos`` with ``fsync: false`` (``limnos_nofsync``, against
    ``cp``) and the floor of a durable add, ``cp SRC DST && sync DST`` (``cp_sync``): coreutils'
    ``sync FILE`` flushes that file only, as limnos does, not the whole disk.
    """
    warm(src)
    out: dict[str, list[float]] = {}

    def limnos_once(run: Path, base: str | None = None, fsync: bool = True) -> dict[str, float]:
        lake = limnos_lake(run, base, fsync=fsync)
        flush()
        secs, info = limnos_py(LIMNOS_ADD, lake, src, run, base)
        expected = sum(1 for _, _, fs in os.walk(src) for _ in fs) if src.is_dir() else 1
        if info["files"] != expected:
            raise ToolError(f"limnos added {info['files']} files, expected {expected}")
        tool = ("limnos_base" if base else "limnos") + ("" if fsync else "_nofsync")
        return {tool: secs, f"{tool}_lib": info["lib"]}

    def cp_sync_once(run: Path) -> float:
        flush()
        dest = run / src.name
        return timed(["sh", "-c", 'cp "$1" "$2" && sync "$2"', "cp_sync", src, dest])[0]

    def dvc_once(run: Path) -> float:
        repo = dvc_repo(run)
        name = copy_in(src, repo)
        flush()
        secs, _ = timed([DVC, "add", name], repo, dvc_env(run))
        return secs

    def cp_once(run: Path) -> float:
        flush()
        return timed([*cp_cmd, src, run / src.name])[0]

    tools: dict[str, Callable[[Path], float | dict[str, float]]] = {"limnos": limnos_once}
    if BASELINE_SRC:
        tools["limnos_base"] = lambda run: limnos_once(run, BASELINE_SRC)
    if not ctx.args.skip_dvc:
        tools["dvc"] = dvc_once
    if durable_floor:
        tools["cp_sync"] = cp_sync_once
        tools["limnos_nofsync"] = lambda run: limnos_once(run, fsync=False)
    tools["cp"] = cp_once
    out.update(ctx.measure_rounds(tools))
    return out


@workload("add_10k", [Target("dvc", 1 / 10, "<=0.1x dvc"), Target("cp", 1.0, "<=1x cp -r")], ("small",))
def add_10k(ctx: Ctx) -> dict[str, list[float]]:
    return _add(ctx, small_dir(ctx.args.small_count), ["cp", "-r"])


@workload("status_10k", [Target("dvc", 1 / 5, "<=0.2x dvc")], ("small",))
def status_10k(ctx: Ctx) -> dict[str, list[float]]:
    src = small_dir(ctx.args.small_count)
    warm(src)
    out: dict[str, list[float]] = {}

    def limnos_once(run: Path, base: str | None = None) -> dict[str, float]:
        lake = limnos_lake(run, base)
        limnos_py(LIMNOS_ADD, lake, src, run, base)  # untimed: track the folder, fill the stat cache
        flush()
        secs, info = limnos_py(LIMNOS_STATUS, lake, src, run, base)
        ctx.note("limnos_status", info)
        if not info["clean"] or info["unchanged"] != ctx.args.small_count:
            raise ToolError(f"limnos status of unchanged data is not clean: {info}")
        tool = "limnos_base" if base else "limnos"
        return {tool: secs, f"{tool}_lib": info["lib"]}

    def dvc_once(run: Path) -> float:
        repo = dvc_repo(run)
        name = copy_in(src, repo)
        sh([DVC, "add", name], repo, dvc_env(run))  # untimed
        flush()
        secs, text = timed([DVC, "status"], repo, dvc_env(run))
        if "up to date" not in text:
            raise ToolError(f"dvc status of unchanged data is not clean: {text.strip()[:500]}")
        return secs

    tools: dict[str, Callable[[Path], float | dict[str, float]]] = {"limnos": limnos_once}
    if BASELINE_SRC:
        tools["limnos_base"] = lambda run: limnos_once(run, BASELINE_SRC)
    if not ctx.args.skip_dvc:
        tools["dvc"] = dvc_once
    out.update(ctx.measure_rounds(tools))
    return out


LS_COUNT = int(os.environ.get("LIMNOS_BENCH_LS_COUNT", "100000"))


def _ls_once(lake: Path, run: Path) -> tuple[float, float, int]:
    """``limnos ls`` of the whole lake as a fresh process, piped: (seconds to the first line, to the end, lines)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "limnos", "--lake", str(lake), "ls"], cwd=run, env=limnos_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    t_first = time.perf_counter() - t0
    lines = (1 if first else 0) + sum(1 for _ in proc.stdout)
    if proc.wait() != 0:
        raise ToolError(f"limnos ls exited {proc.returncode}")
    return t_first, time.perf_counter() - t0, lines


@workload("ls_100k", [Target("seconds", 3.0, "< 3 s")], ())
def ls_100k(ctx: Ctx) -> dict[str, list[float]]:
    """``limnos ls`` of a lake of ``$LIMNOS_BENCH_LS_COUNT`` files (100k), piped: the first line and the whole."""
    src = make_small(LS_COUNT)
    run = ctx.run_dir()
    out: dict[str, list[float]] = {}
    try:
        lake = limnos_lake(run)
        limnos_py(LIMNOS_ADD, lake, src, run)  # untimed
        flush()
        for _ in range(ctx.args.repeat):
            first, total, lines = _ls_once(lake, run)
            if lines != LS_COUNT:
                raise ToolError(f"limnos ls printed {lines} lines for {LS_COUNT} files")
            out.setdefault("limnos", []).append(total)
            out.setdefault("limnos_first_line", []).append(first)
            print(f"  [ls_100k] first line {first:.2f} s, all {lines} lines {total:.2f} s", flush=True)
    finally:
        rmtree(run)
    return out


@workload("add_1g", [Target("cp_sync", 1.3, "<=1.3x cp&&sync")], ("big",))
def add_1g(ctx: Ctx) -> dict[str, list[float]]:
    return _add(ctx, big_file(ctx.args.big_size_mb), ["cp"], durable_floor=True)


@workload("step_hit", [Target("seconds", 0.005, "< 5 ms")], ())
def step_hit(ctx: Ctx) -> dict[str, list[float]]:
    """Median time of a @step cache hit with 10 input files (SQLite catalog), over --step-calls calls."""

    def limnos_once(run: Path, base: str | None = None) -> dict[str, float]:
        lake = limnos_lake(run, base)
        out = json.loads(sh([sys.executable, "-c", LIMNOS_STEP_HIT, lake, str(ctx.args.step_calls)], run, limnos_env(base))
                         .strip().splitlines()[-1])
        ctx.note("p95_seconds", {"file": out["file_p95"], "data": out["data_p95"]})
        tool = "limnos_base" if base else "limnos"
        return {tool: out["file"], f"{tool}_data": out["data"]}

    tools: dict[str, Callable[[Path], float | dict[str, float]]] = {"limnos": limnos_once}
    if BASELINE_SRC:
        tools["limnos_base"] = lambda run: limnos_once(run, BASELINE_SRC)
    return ctx.measure_rounds(tools)


# ------------------------------------------------------------- datasources
def EPISODES(count: int) -> int:
    return max(1, count // 100)


def GROUPS(count: int) -> int:
    return max(1, count // 1000)


def _bulk_datasource(lake: Any, count: int, seed: int = 1) -> str:
    """A datasource of ``count`` reference datapoints with two indexed fields, inserted in bulk
    (executemany on SQLite, COPY on PostgreSQL): a scan of a million files is not what is timed.

    ``episode`` has 100 datapoints per value, ``group`` about 1,000."""
    import datetime as dt
    import random

    from limnos.catalog import schema as t
    from limnos.names import new_id

    rnd = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc)
    engine = lake.catalog.engine
    pg = engine.dialect.name == "postgresql"
    stamp = now.isoformat() if pg else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    commit, source = new_id(), new_id()
    files, points, meta = [], [], []
    for i in range(count):
        fid, path = new_id(), f"img/{i // 1000:04d}/{i:07d}.jpg"
        files.append((fid, f".datasources/bench/{path}", 1, rnd.randrange(1000, 100000), stamp, commit, "reference",
                      f"s3://bench/{path}"))
        points.append((new_id(), source, path, fid, "etag", stamp, commit))
        meta.append((fid, "episode", "int", i % EPISODES(count), None, stamp))
        meta.append((fid, "group", "int", rnd.randrange(GROUPS(count)), None, stamp))
        meta.append((fid, "label", "str", None, f"label{rnd.randrange(50)}", stamp))
    log = [(*row, False, commit) for row in meta]
    specs = [("files", "id,name,version,size,created_at,commit_id,kind,uri", files),
             ("datapoints", "id,datasource_id,path,file_id,fingerprint,added_at,commit_id", points),
             ("metadata", "file_id,key,type,v_int,v_str,set_at", meta),
             ("metadata_log", "file_id,key,type,v_int,v_str,set_at,deleted,commit_id", log)]
    with engine.begin() as conn:
        conn.execute(t.commits.insert().values(id=commit, created_at=now, kind="bench", run_id=None))
        conn.execute(t.datasources.insert().values(id=source, name="bench", root="s3://bench", kind="external",
                                                   created_at=now, scanned_at=now, commit_id=commit))
        conn.execute(t.key_types.insert(), [{"key": "episode", "type": "int"}, {"key": "group", "type": "int"},
                                            {"key": "label", "type": "str"}])
        conn.execute(t.datasource_fields.insert(), [{"datasource_id": source, "key": k} for k in ("episode", "group", "label")])
        raw = conn.connection.driver_connection
        for table, cols, rows in specs:
            if pg:
                with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ",".join("?" * len(cols.split(",")))
                raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
    if pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")  # what autovacuum would do after a load this size
    return source


def _time_queries(lake: Any, values: list[int], field: str, repeat: int) -> dict[str, list[float]]:
    ds = lake.datasource("bench")
    out: dict[str, list[float]] = {"all": [], "head": [], "count": []}
    for _ in range(repeat):
        per: dict[str, list[float]] = {"all": [], "head": [], "count": []}
        for v in values:
            for kind, run in (("all", lambda v=v: ds[ds[field] == v].all()), ("head", lambda v=v: ds[ds[field] == v].head(10)),
                              ("count", lambda v=v: ds[ds[field] == v].count())):
                t0 = time.perf_counter()
                got = run()
                per[kind].append(time.perf_counter() - t0)
                if kind == "all" and not len(got):
                    raise ToolError(f"{field} == {v} matched nothing")
        for kind in out:
            out[kind].append(statistics.median(per[kind]))
    return out


@workload("query_1m", [Target("seconds", 0.050, "< 50 ms")], ())
def query_1m(ctx: Ctx) -> dict[str, list[float]]:
    """An indexed equality filter over --query-count datapoints (default 1M): median seconds of
    ``ds[ds["episode"] == v].all()`` (100 matches), in process, SQLite catalog; info rows for 1,000
    matches, head(10), count(), and PostgreSQL (LIMNOS_TEST_POSTGRES_URL, when reachable)."""
    import limnos

    count = ctx.args.query_count
    run = ctx.run_dir()
    out: dict[str, list[float]] = {}
    try:
        t0 = time.perf_counter()
        lake = limnos.init(run / ".limnos")
        _bulk_datasource(lake, count)
        ctx.note("build_seconds_sqlite", round(time.perf_counter() - t0, 1))
        values = [round(i * EPISODES(count) / 20) for i in range(20)]
        ep = _time_queries(lake, values, "episode", ctx.args.repeat)
        grp = _time_queries(lake, [v % GROUPS(count) for v in values[:10]], "group", ctx.args.repeat)
        lake.close()
        out.update({"limnos": ep["all"], "limnos_head10": ep["head"], "limnos_count": ep["count"],
                    "limnos_1000_matches": grp["all"]})
        for kind in ("all", "head", "count"):
            print(f"  [query_1m] sqlite episode {kind}: {statistics.median(ep[kind]) * 1000:.1f} ms", flush=True)
        out.update(_query_1m_postgres(ctx, run, count, values))
    finally:
        rmtree(run)
    return out


def _query_1m_postgres(ctx: Ctx, run: Path, count: int, values: list[int]) -> dict[str, list[float]]:
    import uuid

    import sqlalchemy as sa

    import limnos

    url = os.environ.get("LIMNOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
        name = f"limnos_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"  [query_1m] PostgreSQL unavailable ({str(exc).splitlines()[0]}); skipping it", flush=True)
        return {}
    try:
        t0 = time.perf_counter()
        lake = limnos.init(run / "pg", catalog=f"{url.rsplit('/', 1)[0]}/{name}")
        _bulk_datasource(lake, count)
        ctx.note("build_seconds_postgres", round(time.perf_counter() - t0, 1))
        ep = _time_queries(lake, values, "episode", ctx.args.repeat)
        lake.close()
        print(f"  [query_1m] postgres episode all: {statistics.median(ep['all']) * 1000:.1f} ms", flush=True)
        return {"limnos_pg": ep["all"], "limnos_pg_head10": ep["head"]}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# The push/pull workloads against an S3 server (their own file). They use this module's helpers
# through ``import run``: make that name this module, also when it runs as a script (``__main__``).
sys.modules.setdefault("run", sys.modules[__name__])
sys.path.insert(0, str(HERE))
import remote_workloads  # noqa: E402  (needs the path and module alias set just above)
import ui  # noqa: E402, F401  (ui_pages: limnos ui's page latency; registers itself the same way)

FLOORS = ("cp", "cp_sync", "rclone")  # what a workload's limnos time is compared with besides dvc


# ------------------------------------------------------------------ report
def median(xs: list[float] | None) -> float | None:
    return statistics.median(xs) if xs else None


def round_ratios(rounds: list[dict[str, float]], a: str, b: str) -> list[float]:
    """``a / b`` within each round where both were timed: the machine's load then was the same for both."""
    return [r[a] / r[b] for r in rounds if r.get(a) is not None and r.get(b)]


def summarize(name: str, times: dict[str, list[float]], targets: list[Target],
              rounds: list[dict[str, float]] | None = None, runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row for the workload, plus one per ``limnos_<x>`` tool (no target).

    Ratios are medians of per-round ratios (limnos and the other tool timed in the same
    round), not ratios of medians: on a loaded machine that is the figure that reproduces.
    """
    med = {tool: median(xs) for tool, xs in times.items()}
    rounds = [{k: v for k, v in r.items() if k in times} for r in rounds or []]
    runs = runs or []
    peaks: dict[str, float | None] = {}
    for tool in sorted({r["tool"] for r in runs}):
        values = [r["peak_rss_mb"] for r in runs if r["tool"] == tool and r.get("peak_rss_mb") is not None]
        peaks[tool] = median(values)
    loads = [r["load1"] for r in runs if r.get("load1") is not None]
    rows = []
    for key in ["limnos", *sorted(k for k in times if k.startswith("limnos_"))]:
        lim = med.get(key)
        ratios: dict[str, float | None] = {}
        for t in ("dvc", *FLOORS):
            per_round = round_ratios(rounds, key, t)
            ratios[t] = median(per_round) if per_round else (lim / med[t] if lim is not None and med.get(t) else None)
        ratios["seconds"] = lim  # absolute targets (Target("seconds", 0.005, "< 5 ms"))
        row: dict[str, Any] = {"workload": name if key == "limnos" else f"{name}_{key[len('limnos_'):]}",
                               "limnos": lim, "dvc": med.get("dvc"), **{t: med.get(t) for t in FLOORS},
                               "limnos/dvc": ratios["dvc"], **{f"limnos/{t}": ratios[t] for t in FLOORS},
                               "ratio_of": "median of per-round ratios" if rounds else "ratio of medians",
                               "rounds": len(rounds),
                               "target": ("; ".join(t.label for t in targets) or "(none)") if key == "limnos" else "(info)",
                               "met": None, "checks": []}
        if not key.endswith("_lib"):  # limnos_nofsync's own peak stands in its row's "limnos" place
            row["peak_rss_mb"] = {**{t: v for t, v in peaks.items() if not t.startswith("limnos")}, "limnos": peaks.get(key)}
        if key == "limnos":
            row["load1_median"] = median(loads)
            for t in targets:
                r = ratios.get(t.tool)
                row["checks"].append({"target": t.label, "ratio": r, "met": None if r is None else r <= t.max_ratio})
            results = [c["met"] for c in row["checks"]]
            row["met"] = None if not results or None in results else all(results)
        rows.append(row)
    return rows


def print_baseline(raw: dict[str, dict[str, list[float]]]) -> None:
    """The working tree against --baseline, per timed quantity: medians and their ratio."""
    print("\nworking tree vs baseline (medians; ratio < 1 means the working tree is faster)")
    for name, times in raw.items():
        for key in sorted(k for k in times if k.startswith("limnos_base")):
            ours = "limnos" + key[len("limnos_base"):]
            if ours in times and times[key]:
                a, b = median(times[ours]), median(times[key])
                print(f"  {name:<12} {ours:<14} {a * 1000:10.3f} ms  base {b * 1000:10.3f} ms  ratio {a / b:5.2f}x")


def print_table(rows: list[dict[str, Any]]) -> None:
    def s(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}" if v >= 0.1 else f"{v:.6f}"

    def r(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}x"

    def met(row: dict[str, Any]) -> str:
        if row["target"] == "(info)":
            return ""
        parts = ["n/a" if c["met"] is None else ("yes" if c["met"] else "NO") for c in row["checks"]]
        return " / ".join(parts)

    # The floors: cp for local work, rclone for push/pull; a floor column only when some row has it.
    floors = [t for t in FLOORS if any(row[t] is not None for row in rows)] or ["cp"]
    def mb(row: dict[str, Any]) -> str:
        peaks = row.get("peak_rss_mb") or {}
        return "/".join("-" if peaks.get(t) is None else f"{peaks[t]:.0f}" for t in ("limnos", "dvc", *floors))

    def load(row: dict[str, Any]) -> str:
        return "" if row.get("load1_median") is None else f"{row['load1_median']:.1f}"

    header = ["workload", "limnos s", "dvc s", *(f"{t} s" for t in floors), "limnos/dvc",
              *(f"limnos/{t}" for t in floors), f"peak MB (limnos/dvc/{'/'.join(floors)})", "load", "target", "met?"]
    body = [[row["workload"], s(row["limnos"]), s(row["dvc"]), *(s(row[t]) for t in floors), r(row["limnos/dvc"]),
             *(r(row[f"limnos/{t}"]) for t in floors), mb(row), load(row), row["target"], met(row)] for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
        for line in [header, ["-" * w for w in widths], *body]:
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)))
        return
    table = Table(title="limnos benchmarks (median seconds; ratios: median of per-round ratios, < 1 means limnos is faster)")
    for i, h in enumerate(header):
        table.add_column(h, justify="right" if 0 < i < len(header) - 2 else "left", no_wrap=True)
    for line in body:
        table.add_row(*line)
    console = Console()
    if not console.is_terminal:
        console = Console(width=250)  # a log file: every column whole
    console.print(table)


def machine_info(dvc_version: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "python_executable": sys.executable,
        "platform": platform.platform(), "machine": platform.machine(), "dvc_version": dvc_version,
        "work_dir": str(WORK), "work_fs_type": fs_type(WORK),
    }
    try:
        import limnos

        info["limnos_version"] = getattr(limnos, "__version__", "unknown")
        info["limnos_file"] = limnos.__file__
    except Exception as exc:
        info["limnos_version"] = f"import failed: {exc}"
    try:
        meminfo, cpuinfo = Path("/proc/meminfo").read_text(), Path("/proc/cpuinfo").read_text()
        info["mem_total_kb"] = int(next(x.split()[1] for x in meminfo.splitlines() if x.startswith("MemTotal")))
        info["cpu_model"] = next(x.split(":", 1)[1].strip() for x in cpuinfo.splitlines() if x.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def source_version(snapshot: str | None) -> dict[str, Any]:
    """The commit of the library under test, and whether it has uncommitted edits."""
    if snapshot:
        return {"commit": snapshot, "src_dirty": False, "snapshot": True}
    try:
        return {"commit": sh(["git", "rev-parse", "HEAD"], HERE).strip(),
                "src_dirty": bool(sh(["git", "status", "--porcelain", "--", "src"], HERE.parent).strip())}
    except (ToolError, OSError) as exc:
        return {"error": str(exc)}


def export_ref(ref: str) -> tuple[str, str]:
    """Export ``src/`` as committed at ``ref`` under .work; (commit, path of that src folder)."""
    commit = sh(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], HERE).strip()
    dest = WORK / f"src-{commit[:12]}"
    if not (dest / "src" / "limnos" / "__init__.py").exists():
        rmtree(dest)
        dest.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=HERE.parent, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return commit, str(dest / "src")


def use_git_ref(ref: str) -> str:
    """Benchmark the library as committed at ``ref`` (not the working tree): export its src/
    under .work and put it first on sys.path and PYTHONPATH (ahead of the editable install)."""
    commit, src = export_ref(ref)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, src)
    print(f"benchmarking limnos at {ref} = {commit[:12]} from {src}", flush=True)
    return commit


def profile_add(count: int) -> None:
    """cProfile an in-process limnos add of the small folder; top costs to stdout and .work/."""
    import cProfile
    import io
    import pstats

    import limnos

    src = small_dir(count)
    warm(src)
    RUNS.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="profile-", dir=RUNS))
    try:
        lake = limnos.init(run / ".limnos")
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(lake.add, src)
        print(f"profiled lake.add of {count} files: {time.perf_counter() - t0:.3f}s (with profiler overhead)")
        lake.close()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        for key in ("cumulative", "tottime"):
            stats.sort_stats(key).print_stats(25)
        (WORK / "profile_add.txt").write_text(buf.getvalue())
        print(buf.getvalue())
        stats.dump_stats(str(WORK / "profile_add.prof"))
    finally:
        rmtree(run)


# -------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    global WORK, DATA, RUNS, BASELINE_SRC, DVC, DVC_VENV
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small-count", type=int, default=10000, help="number of 1 KB files (default 10000)")
    p.add_argument("--big-size-mb", type=int, default=1024, help="size of the big file in MB (default 1024)")
    p.add_argument("--big-count", type=int, default=10, help="files in push_1g/pull_1g's data (default 10)")
    p.add_argument("--big-each-mb", type=int, default=100, help="size of each of those files in MB (default 100)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per tool; the median is reported")
    p.add_argument("--step-calls", type=int, default=1000, help="cache hits timed per step_hit run (default 1000)")
    p.add_argument("--query-count", type=int, default=1_000_000, help="datapoints for query_1m (default 1000000)")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(WORKLOADS)}")
    p.add_argument("--skip-dvc", action="store_true", help="do not install or run dvc")
    p.add_argument("--clean", action="store_true", help="also delete the generated source data at the end")
    p.add_argument("--work-dir", default="", help=f"where data and runs go (default {WORK})")
    p.add_argument("--git-ref", default="", help="benchmark limnos as committed at this ref (default: the working tree)")
    p.add_argument("--results", default=str(RESULTS), help=f"where to write the JSON results (default {RESULTS})")
    p.add_argument("--baseline", default="",
                   help="also time limnos as committed at this ref (add, status, step_hit), interleaved with the working tree")
    p.add_argument("--quick", action="store_true",
                   help="the inner loop: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                   + " unless given")
    p.add_argument("--dvc", default=os.environ.get("LIMNOS_BENCH_DVC", ""),
                   help=f"the dvc executable to run (default $LIMNOS_BENCH_DVC, else {DVC}, installed there when missing)")
    p.add_argument("--readme", action="store_true",
                   help="after the run, regenerate the benchmark table in docs/performance.md from the results (readme_table.py)")
    p.add_argument("--profile", action="store_true",
                   help="cProfile an in-process add of the small files (and a push and pull of them, with push_10k or pull_10k)")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, value)
    if args.dvc:
        DVC = Path(args.dvc).resolve()
        DVC_VENV = DVC.parent.parent  # dvc-s3 goes into the same venv
    if min(args.repeat, args.small_count, args.big_size_mb, args.big_count, args.big_each_mb) < 1:
        p.error("--repeat, --small-count, --big-size-mb, --big-count and --big-each-mb must be at least 1")
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")

    if args.work_dir:  # e.g. a tmpfs, to take the disk out of the numbers
        WORK = Path(args.work_dir).resolve()
        DATA = WORK / "data"
    RUNS = WORK / "runs" / str(os.getpid())  # per process: a concurrent run must not lose its folders
    WORK.mkdir(parents=True, exist_ok=True)
    snapshot = use_git_ref(args.git_ref) if args.git_ref else None
    baseline = None
    if args.baseline:
        baseline, BASELINE_SRC = export_ref(args.baseline)
        print(f"baseline: limnos at {args.baseline} = {baseline[:12]} from {BASELINE_SRC}", flush=True)
    version_before = source_version(snapshot)
    clean_stale_runs()
    dvc_version = None
    if not args.skip_dvc:
        try:
            dvc_version = ensure_dvc()
        except Exception as exc:
            print(f"dvc unavailable, its cells will be n/a: {exc}", flush=True)
            args.skip_dvc = True
    for need in sorted({n for name in names for n in WORKLOADS[name].needs}):
        DATASETS[need](args)

    ctx = Ctx(args)
    raw: dict[str, dict[str, list[float]]] = {}
    rows: list[dict[str, Any]] = []
    started = time.time()
    try:
        for name in names:
            wl = WORKLOADS[name]
            ctx.workload = name
            print(f"== {name}", flush=True)
            try:
                raw[name] = wl.fn(ctx)
            except Exception:
                print(f"  [{name}] FAILED:\n{traceback.format_exc()}", flush=True)
                ctx.errors.setdefault(name, {})["workload"] = traceback.format_exc()
                raw[name] = {}
            rows += summarize(name, raw[name], wl.targets, ctx.rounds.get(name), ctx.runs.get(name))
        if args.profile:
            print("== profile: in-process lake.add of the small files", flush=True)
            try:
                profile_add(args.small_count)
            except Exception:
                print(f"  profile FAILED:\n{traceback.format_exc()}", flush=True)
        if args.profile and {"push_10k", "pull_10k"} & set(names):
            print("== profile: in-process lake.push and lake.pull of the small files", flush=True)
            ctx.workload = "profile_sync"
            try:
                remote_workloads.profile_sync(ctx)
            except Exception:
                print(f"  profile FAILED:\n{traceback.format_exc()}", flush=True)
    finally:
        ctx.close()  # stops the S3 server before its data goes with RUNS
        rmtree(RUNS)
        if args.clean:
            rmtree(DATA)

    print_table(rows)
    if baseline:
        print_baseline(raw)
    version_after = source_version(snapshot)
    if version_after != version_before:
        print(f"WARNING: the library changed during the run: {version_before} -> {version_after}")
    results = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "command": [sys.executable, *sys.argv],
        "baseline": baseline,
        "config": {"small_count": args.small_count, "small_file_bytes": 1024, "big_size_mb": args.big_size_mb,
                   "big_count": args.big_count, "big_each_mb": args.big_each_mb,
                   "repeat": args.repeat, "workloads": names, "skip_dvc": args.skip_dvc},
        "machine": machine_info(dvc_version),
        "limnos_source": {"before": version_before, "after": version_after},
        "workloads": {
            name: {"raw": raw.get(name, {}), "median": {t: median(xs) for t, xs in raw.get(name, {}).items()},
                   "errors": ctx.errors.get(name, {}), "extra": ctx.extra.get(name, {}),
                   "rounds": ctx.rounds.get(name, []), "runs": ctx.runs.get(name, []),
                   "rows": [r for r in rows if r["workload"] == name or r["workload"].startswith(name + "_")]}
            for name in names
        },
    }
    Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.results}")
    if args.readme:
        import readme_table

        readme_table.update_readme(readme_table.README, [Path(args.results)])
        print(f"benchmark table regenerated in {readme_table.README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
